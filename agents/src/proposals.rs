//! How an agent puts an operation up for decision: it hands a [`policies::Proposal`] to the
//! runtime's gatekeeper through [`ProposalGate`] and gets back what the gate decided. The agent
//! never executes anything; an approved proposal is executed by the runtime.
//!
//! Proposal ids are deterministic (`{agent}.{kind}.{subject}.{episode}`), so the same condition
//! proposes the same fix once: the gate refuses a known id, which counts as already proposed.

use std::future::Future;
use std::pin::Pin;

use policies::Proposal;
use serde::{Deserialize, Serialize};

/// What the gate did with a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub id: String,
    /// The proposal's state after the decision (`pending`, `denied`, `executed`, ...), or
    /// `duplicate` when the id was already known.
    pub state: String,
}

pub type SubmitFuture<'a> = Pin<Box<dyn Future<Output = Result<Submitted, String>> + Send + 'a>>;

/// The gatekeeper as agents see it.
pub trait ProposalGate: Send + Sync {
    /// Puts the proposal up for decision; durable when it returns `Ok`.
    fn submit(&self, proposal: Proposal) -> SubmitFuture<'_>;
}

/// A proposal id from its parts: letters, digits, `-`, `_` and `.` only, at most 64
/// characters (what the gate accepts); other characters become `-`.
pub fn proposal_id(agent: &str, kind: &str, subject: &str, episode: &str) -> String {
    let raw = format!("{agent}.{kind}.{subject}.{episode}");
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.len() > 64 {
        // Keep the episode (the tail) and the start; a short hash keeps ids distinct.
        let hash = raw.bytes().fold(0xcbf2_9ce4_8422_2325u64, |state, byte| {
            (state ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let tail = format!("-{:08x}", hash as u32);
        id.truncate(64 - tail.len());
        id.push_str(&tail);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::proposal_id;

    #[test]
    fn ids_are_what_the_gate_accepts() {
        assert_eq!(
            proposal_id("validators", "restart_node", "validator 1", "1700000000"),
            "validators.restart_node.validator-1.1700000000"
        );
        let long = proposal_id("validators", "join_election", &"x".repeat(80), "1");
        assert_eq!(long.len(), 64);
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        );
        assert_ne!(
            long,
            proposal_id("validators", "join_election", &"x".repeat(81), "1")
        );
    }
}

//! Walking the chain and reporting the first thing wrong with it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{GENESIS_HASH, JournalEntry, key_seq};
use crate::checkpoint::Checkpoint;
use crate::error::StoreError;

/// Outcome of [`super::Journal::verify`]. The walk stops at the first problem, so `entries` and
/// `head_hash` describe the run of entries that verified before it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head_hash: Option<String>,
    pub problem: Option<ChainProblem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first problem found. `seq` is the seq (sled key) of the entry where it was detected, or
/// for `Truncated` the first missing seq, or for `CheckpointMismatch` the checkpoint's count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainProblem {
    pub seq: u64,
    pub kind: ProblemKind,
    /// For humans: names the entry, what is wrong and the likely cause.
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemKind {
    /// The entry's hash does not match its content.
    Edited,
    /// `prev_hash` differs from the previous entry's hash: an entry was dropped, reordered or
    /// edited (hash included) before this one.
    BrokenLink,
    /// The chain links up but seqs are not contiguous.
    SequenceGap { expected: u64, found: u64 },
    /// A checkpoint recorded more entries than the journal holds.
    Truncated { checkpoint_count: u64, found: u64 },
    /// Entry #count's hash differs from the checkpoint's `head_hash`.
    CheckpointMismatch { count: u64 },
    /// The entry's bytes do not decode.
    Unreadable,
}

pub(crate) fn verify_tree(
    tree: &sled::Tree,
    path: &Path,
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport, StoreError> {
    // count -> checkpoints with that count, checked when the walk reaches that entry.
    let mut pending: BTreeMap<u64, Vec<&Checkpoint>> = BTreeMap::new();
    for checkpoint in checkpoints {
        pending
            .entry(checkpoint.count)
            .or_default()
            .push(checkpoint);
    }

    let mut verified: u64 = 0;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut head_hash: Option<String> = None;
    let report = |verified: u64, head_hash: Option<String>, problem: ChainProblem| VerifyReport {
        entries: verified,
        head_hash,
        problem: Some(problem),
    };

    for item in tree.iter() {
        let (key, value) = item.map_err(|source| StoreError::Database {
            action: "reading the journal for verification",
            location: format!("{} after seq {verified}", path.display()),
            source,
        })?;
        let expected = verified + 1;
        let Some(seq) = key_seq(&key) else {
            let problem = ChainProblem {
                seq: expected,
                kind: ProblemKind::Unreadable,
                message: format!(
                    "the journal key after entry #{verified} is {} bytes, not an 8-byte seq; \
                     the journal tree was written by something other than this store",
                    key.len()
                ),
            };
            return Ok(report(verified, head_hash, problem));
        };
        let entry: JournalEntry = match serde_json::from_slice(&value) {
            Ok(entry) => entry,
            Err(error) => {
                let problem = ChainProblem {
                    seq,
                    kind: ProblemKind::Unreadable,
                    message: format!(
                        "entry #{seq} does not decode ({error}); its bytes were damaged on disk or overwritten"
                    ),
                };
                return Ok(report(verified, head_hash, problem));
            }
        };
        if entry.compute_hash() != entry.hash {
            let problem = ChainProblem {
                seq,
                kind: ProblemKind::Edited,
                message: format!(
                    "entry #{seq} ({} by {}) does not match its hash; its content was edited after it was written",
                    entry.kind, entry.actor
                ),
            };
            return Ok(report(verified, head_hash, problem));
        }
        if entry.prev_hash != prev_hash {
            let problem = ChainProblem {
                seq,
                kind: ProblemKind::BrokenLink,
                message: format!(
                    "entry #{seq} (which says it is #{}) does not link to the entry before it (#{verified}); \
                     an entry was removed, entries were reordered, or an earlier entry was rewritten",
                    entry.seq
                ),
            };
            return Ok(report(verified, head_hash, problem));
        }
        if seq != expected || entry.seq != expected {
            let found = if seq != expected { seq } else { entry.seq };
            let problem = ChainProblem {
                seq,
                kind: ProblemKind::SequenceGap { expected, found },
                message: format!(
                    "expected entry #{expected} but found #{found} (stored under key #{seq}); \
                     entries were renumbered or moved"
                ),
            };
            return Ok(report(verified, head_hash, problem));
        }
        if let Some(at_count) = pending.remove(&seq)
            && let Some(checkpoint) = at_count
                .iter()
                .find(|checkpoint| checkpoint.head_hash != entry.hash)
        {
            let problem = ChainProblem {
                seq,
                kind: ProblemKind::CheckpointMismatch { count: seq },
                message: format!(
                    "the checkpoint taken at {} says entry #{seq} has hash {} but it has {}; \
                     the journal was rewritten from entry #{seq} or earlier since that checkpoint",
                    checkpoint.at.to_rfc3339(),
                    checkpoint.head_hash,
                    entry.hash
                ),
            };
            return Ok(report(verified, head_hash, problem));
        }
        verified = seq;
        prev_hash = entry.hash;
        head_hash = Some(prev_hash.clone());
    }

    // Checkpoints with count 0 describe an empty journal and need no entry.
    pending.remove(&0);
    if let Some((&checkpoint_count, at_count)) = pending.iter().next_back() {
        let taken = at_count
            .first()
            .map(|checkpoint| checkpoint.at.to_rfc3339())
            .unwrap_or_default();
        let problem = ChainProblem {
            seq: verified + 1,
            kind: ProblemKind::Truncated {
                checkpoint_count,
                found: verified,
            },
            message: format!(
                "the checkpoint taken at {taken} recorded {checkpoint_count} entries but the journal ends at #{verified}; \
                 entries #{}..=#{checkpoint_count} were removed from the end",
                verified + 1
            ),
        };
        return Ok(report(verified, head_hash, problem));
    }

    Ok(VerifyReport {
        entries: verified,
        head_hash,
        problem: None,
    })
}

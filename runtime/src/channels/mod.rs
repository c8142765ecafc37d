//! Where people talk to Command Center besides the CLI and the API: Slack and Telegram.
//! Every channel parses through the shared command layer ([`crate::commands`]) and decides
//! approvals through the gate as the person its user id maps to.

pub mod slack;
pub mod telegram;

use crate::gate::Gatekeeper;

/// What a button press asks: `approve:<id>`, `reject:<id>` or `details:<id>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ButtonVerb {
    Approve,
    Reject,
    Details,
}

/// Reads a button's action id; `None` for anything else (tampered or unknown).
pub fn parse_button(action_id: &str) -> Option<(ButtonVerb, &str)> {
    let (verb, id) = action_id.split_once(':')?;
    let verb = match verb {
        "approve" => ButtonVerb::Approve,
        "reject" => ButtonVerb::Reject,
        "details" => ButtonVerb::Details,
        _ => return None,
    };
    (!id.is_empty()).then_some((verb, id))
}

/// Decides through the gate as `user`; the line the chat shows (who decided, or why not).
pub async fn decide(gate: &Gatekeeper, verb: ButtonVerb, id: &str, user: &str) -> String {
    let outcome = match verb {
        ButtonVerb::Approve => gate
            .approve(id, user)
            .await
            .map(|record| format!("approved by {user} ({})", record.state.as_str())),
        ButtonVerb::Reject => gate
            .reject(id, user)
            .await
            .map(|record| format!("rejected by {user} ({})", record.state.as_str())),
        ButtonVerb::Details => gate.get(id).map(|record| match record {
            Some(record) => format!("{} — {}", record.state.as_str(), record.proposal.rationale),
            None => "no such proposal".to_owned(),
        }),
    };
    match outcome {
        Ok(text) => format!("{id}: {text}"),
        Err(error) => format!("{id}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{ButtonVerb, parse_button};

    #[test]
    fn buttons_parse_and_tampered_ones_do_not() {
        assert_eq!(
            parse_button("approve:validators.restart_node.v1.17"),
            Some((ButtonVerb::Approve, "validators.restart_node.v1.17"))
        );
        assert_eq!(parse_button("reject:x"), Some((ButtonVerb::Reject, "x")));
        assert_eq!(parse_button("details:x"), Some((ButtonVerb::Details, "x")));
        assert_eq!(parse_button("approve:"), None);
        assert_eq!(parse_button("execute:x"), None);
        assert_eq!(parse_button("approve"), None);
    }
}

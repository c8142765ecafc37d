//! What is decided: a proposal (who wants which operation) and the context limits need.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How risky an operation is, as its proposer judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// Who proposes: an agent, or a person with roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proposer {
    Agent { name: String, domain: String },
    User { name: String, roles: Vec<String> },
}

impl Proposer {
    pub fn name(&self) -> &str {
        match self {
            Proposer::Agent { name, .. } | Proposer::User { name, .. } => name,
        }
    }
}

/// The operation asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// `notify`, `command`, `webhook`, `ton_transfer`, ...
    pub kind: String,
    /// `validators`, `finance`, `market`, `operations`.
    pub domain: String,
    pub risk: Risk,
    /// Funds moved, in nanoton (0 when none).
    #[serde(default)]
    pub amount_nanoton: u64,
    /// Money spent, in cents of the reporting currency (expenses; 0 when none).
    #[serde(default)]
    pub amount_cents: u64,
    /// What it acts on: a validator, an address, a receiver; for an expense, its category.
    #[serde(default)]
    pub target: String,
    /// The executor's typed parameters (validated by the executor, not here).
    #[serde(default)]
    pub parameters: serde_json::Value,
}

/// A proposal put up for decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub id: String,
    pub proposer: Proposer,
    pub operation: Operation,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

/// What limits need to know at decision time. Supplied by the caller: this crate reads no
/// clock and no store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionContext {
    /// Executions of the same kind in the last hour and day.
    pub executions_last_hour: u32,
    pub executions_last_day: u32,
    /// Local hour of day, 0-23, for business-hours policies.
    pub local_hour: u8,
    /// The kill switch: autonomy is paused.
    pub autonomy_paused: bool,
}

/// The gate's answer. Denial is a value, not an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Never runs, not even with approvals.
    Deny { by: Vec<String>, reason: String },
    /// Runs on its own.
    Auto { by: Vec<String> },
    /// Runs once `approvals` distinct people holding one of `eligible_roles` approve within
    /// `expires_in`.
    NeedsApproval {
        approvals: u32,
        eligible_roles: Vec<String>,
        #[serde(with = "duration_text")]
        expires_in: Duration,
        by: Vec<String>,
        reason: String,
    },
}

impl Decision {
    /// The policies that determined the decision.
    pub fn by(&self) -> &[String] {
        match self {
            Decision::Deny { by, .. }
            | Decision::Auto { by }
            | Decision::NeedsApproval { by, .. } => by,
        }
    }

    /// `deny`, `auto` or `needs_approval`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Deny { .. } => "deny",
            Decision::Auto { .. } => "auto",
            Decision::NeedsApproval { .. } => "needs_approval",
        }
    }
}

/// Whether one person may approve one proposal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ApprovalCheck {
    Allowed { by: Vec<String> },
    Refused { by: Vec<String>, reason: String },
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

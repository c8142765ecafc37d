//! The alert value agents emit and the runtime routes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use memory::Sample;
use serde::{Deserialize, Serialize};

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// Whether the condition holds now or has just ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        })
    }
}

/// One alert event: a condition starting (firing) or ending (resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity of the condition, e.g. `market.price_move/the-open-network`; a firing and
    /// its resolution share it.
    pub key: String,
    /// Rule name, e.g. `price_move`, `source_unavailable`.
    pub rule: String,
    pub status: AlertStatus,
    pub severity: Severity,
    /// One line a person reads first.
    pub summary: String,
    /// Labels for routing and grouping (`domain`, `coin`, `source`, ...).
    pub labels: BTreeMap<String, String>,
    /// What the agent saw: numbers, sample times, error texts.
    pub evidence: serde_json::Value,
    /// When the condition started.
    pub starts_at: DateTime<Utc>,
    /// When this event was produced (equals `starts_at` for a firing).
    pub at: DateTime<Utc>,
    /// When the data behind the event was observed (the sample time), for latency accounting.
    pub observed_at: DateTime<Utc>,
}

impl Alert {
    /// Label value or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Prefix of firing alerts in the state store.
pub const ACTIVE_PREFIX: &str = "alerts/active/";

/// State-store key of a firing alert.
pub fn active_key(alert_key: &str) -> String {
    format!("{ACTIVE_PREFIX}{alert_key}")
}

/// A firing alert remembered in the state store, so a restarted agent or process neither fires
/// twice nor forgets to announce the recovery, and status can list what is firing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ActiveAlert {
    pub alert: Alert,
    /// The value before the move (move alerts only).
    pub reference: Option<Sample>,
}

/// The firing alert stored under `key`, if any.
pub fn active(
    store: &memory::Store,
    agent: &str,
    key: &str,
) -> Result<Option<ActiveAlert>, crate::AgentError> {
    store
        .state()
        .get::<ActiveAlert>(&active_key(key))
        .map_err(|source| crate::AgentError::store(agent, source))
}

/// Records an alert event of `agent`: journaled first, then remembered (firing) or forgotten
/// (resolved) in the state store, then counted and logged. The same road for every agent.
pub async fn record(
    auditor: &crate::audit::Auditor,
    telemetry: &crate::telemetry::Telemetry,
    agent: &str,
    alert: Alert,
    reference: Option<Sample>,
) -> Result<Alert, crate::AgentError> {
    let kind = match alert.status {
        AlertStatus::Firing => "alert.firing",
        AlertStatus::Resolved => "alert.resolved",
    };
    auditor
        .record(agent, kind, &alert.key, &alert)
        .await
        .map_err(|source| crate::AgentError::audit(agent, source))?;
    let state = auditor.store().state();
    let state_key = active_key(&alert.key);
    match alert.status {
        AlertStatus::Firing => state.put(
            &state_key,
            &ActiveAlert {
                alert: alert.clone(),
                reference,
            },
        ),
        AlertStatus::Resolved => state.delete(&state_key),
    }
    .map_err(|source| crate::AgentError::store(agent, source))?;
    telemetry
        .alerts
        .get_or_create(&crate::telemetry::AlertLabels {
            rule: alert.rule.clone(),
            status: alert.status.to_string(),
        })
        .inc();
    tracing::info!(
        alert = %alert.key,
        status = %alert.status,
        severity = %alert.severity,
        summary = %alert.summary,
        "alert"
    );
    Ok(alert)
}

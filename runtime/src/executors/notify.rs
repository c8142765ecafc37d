//! `notify`: tells people something, through the notifier's alert queue.

use agents::{Alert, AlertStatus, Severity};
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ExecutionOutcome, ExecutionRequest, ExecutorError, OutcomeStatus, TypedExecutor};
use crate::supervisor::AlertSink;

/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 4000;

/// How urgent the notification is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifySeverity {
    #[default]
    Info,
    Warning,
    Critical,
}

impl From<NotifySeverity> for Severity {
    fn from(severity: NotifySeverity) -> Self {
        match severity {
            NotifySeverity::Info => Severity::Info,
            NotifySeverity::Warning => Severity::Warning,
            NotifySeverity::Critical => Severity::Critical,
        }
    }
}

/// Parameters of a `notify` operation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyParams {
    /// What people should read (1 to 4000 characters).
    #[schemars(length(min = 1, max = 4000))]
    pub message: String,
    /// `info` unless said otherwise.
    #[serde(default)]
    pub severity: NotifySeverity,
}

/// Sends an alert on the notifier's queue.
pub struct NotifyExecutor {
    alerts: AlertSink,
}

impl NotifyExecutor {
    pub fn new(alerts: AlertSink) -> Self {
        Self { alerts }
    }
}

/// The first line of `message`, for the alert's one-line summary.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

impl TypedExecutor for NotifyExecutor {
    const KIND: &'static str = "notify";
    type Params = NotifyParams;

    fn check(&self, params: &NotifyParams) -> Result<(), ExecutorError> {
        let chars = params.message.chars().count();
        let detail = if params.message.trim().is_empty() {
            Some("message: must not be empty".to_owned())
        } else if chars > MAX_MESSAGE_CHARS {
            Some(format!(
                "message: {chars} characters is too long; at most {MAX_MESSAGE_CHARS}"
            ))
        } else {
            None
        };
        match detail {
            Some(detail) => Err(ExecutorError::InvalidParameters {
                kind: Self::KIND.to_owned(),
                detail,
            }),
            None => Ok(()),
        }
    }

    async fn run(&self, request: &ExecutionRequest, params: NotifyParams) -> ExecutionOutcome {
        let severity = Severity::from(params.severity);
        let key = format!("notify/{}", request.proposal_id);
        let details = serde_json::json!({
            "alert": key,
            "severity": severity,
            "message": params.message,
        });
        if request.dry_run {
            return ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!("would notify ({severity}): {}", first_line(&params.message)),
                details,
                true,
            );
        }
        let now = Utc::now();
        let alert = Alert {
            key: key.clone(),
            rule: "notify".to_owned(),
            status: AlertStatus::Firing,
            severity,
            summary: first_line(&params.message).to_owned(),
            labels: [
                ("domain".to_owned(), "operations".to_owned()),
                ("proposal_id".to_owned(), request.proposal_id.clone()),
            ]
            .into_iter()
            .collect(),
            evidence: serde_json::json!({
                "message": params.message,
                "proposal_id": request.proposal_id,
                "idempotency_key": request.idempotency_key,
            }),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        match self.alerts.send(alert) {
            Ok(()) => ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!("notified ({severity}, {key})"),
                details,
                false,
            ),
            Err(_) => ExecutionOutcome::new(
                OutcomeStatus::Failed,
                "the notifier is not running; nothing was sent",
                details,
                false,
            ),
        }
    }
}

//! The notifier: delivers alert events to the log and to webhooks, journaling each delivery.
//!
//! It reads an unbounded queue so no alert is ever dropped; on shutdown it drains the queue
//! before returning.

use std::time::{Duration, Instant};

use agents::audit::Auditor;
use agents::telemetry::{NotificationLabels, Telemetry};
use agents::{Alert, AlertStatus, Severity};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;
use tools::http::{RetryPolicy, backoff_delay};
use tools::secret::Secret;

use crate::config::{NotifyConfig, WebhookReceiverConfig};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when the receiver has a secret.
pub const SIGNATURE_HEADER: &str = "x-command-center-signature";
/// Header carrying the event kind (`alert.firing`, `alert.resolved`).
pub const EVENT_HEADER: &str = "x-command-center-event";

/// JSON body POSTed to webhooks.
#[derive(Debug, Serialize)]
pub struct WebhookPayload<'a> {
    pub version: u32,
    pub event: &'static str,
    #[serde(flatten)]
    pub alert: &'a Alert,
}

fn event_kind(alert: &Alert) -> &'static str {
    match alert.status {
        AlertStatus::Firing => "alert.firing",
        AlertStatus::Resolved => "alert.resolved",
    }
}

/// `sha256=<hex>` signature of `body` with `secret`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC accepts keys of any length; this branch cannot be reached.
        Err(_) => String::new(),
    }
}

struct Webhook {
    config: WebhookReceiverConfig,
}

/// Delivers alerts; built from `[notify]`.
pub struct Notifier {
    log: bool,
    webhooks: Vec<Webhook>,
    client: reqwest::Client,
    auditor: Auditor,
    telemetry: Telemetry,
}

#[derive(Debug)]
struct DeliveryOutcome {
    attempts: u32,
    status: Option<u16>,
    error: Option<String>,
}

impl Notifier {
    pub fn new(config: &NotifyConfig, auditor: Auditor, telemetry: Telemetry) -> Self {
        Self {
            log: config.log,
            webhooks: config
                .webhooks
                .iter()
                .cloned()
                .map(|config| Webhook { config })
                .collect(),
            client: reqwest::Client::new(),
            auditor,
            telemetry,
        }
    }

    /// Delivers until `stop` turns true (or every sender is gone), then delivers whatever is
    /// still queued and returns. The daemon stops the agents first, so nothing arrives later.
    pub async fn run(
        self,
        mut queue: mpsc::UnboundedReceiver<Alert>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let next = tokio::select! {
                biased;
                alert = queue.recv() => alert,
                stopped = stop.wait_for(|stop| *stop) => {
                    // Either way (stop, or the daemon dropped the sender) we are done.
                    let _ = stopped.is_ok();
                    None
                }
            };
            match next {
                Some(alert) => self.deliver(&alert).await,
                None => break,
            }
        }
        while let Ok(alert) = queue.try_recv() {
            self.deliver(&alert).await;
        }
        tracing::debug!("notifier drained");
    }

    /// Delivers one alert event to every receiver.
    pub async fn deliver(&self, alert: &Alert) {
        if self.log {
            match (alert.status, alert.severity) {
                (AlertStatus::Firing, Severity::Critical) => {
                    tracing::error!(alert = %alert.key, severity = %alert.severity, "ALERT {}", alert.summary)
                }
                (AlertStatus::Firing, _) => {
                    tracing::warn!(alert = %alert.key, severity = %alert.severity, "ALERT {}", alert.summary)
                }
                (AlertStatus::Resolved, _) => {
                    tracing::info!(alert = %alert.key, severity = %alert.severity, "RESOLVED {}", alert.summary)
                }
            }
            self.count("log", "sent");
        }
        let body = match serde_json::to_vec(&WebhookPayload {
            version: 1,
            event: event_kind(alert),
            alert,
        }) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, alert = %alert.key, "alert is not serializable");
                return;
            }
        };
        for webhook in &self.webhooks {
            let started = Instant::now();
            let outcome = self.post(webhook, alert, &body).await;
            let delivered = outcome.error.is_none();
            if delivered {
                let latency = (Utc::now() - alert.at).to_std().unwrap_or(Duration::ZERO);
                self.telemetry
                    .alert_delivery_latency
                    .observe(latency.as_secs_f64());
            }
            self.count(
                &webhook.config.name,
                if delivered { "sent" } else { "failed" },
            );
            let kind = if delivered {
                "notification.sent"
            } else {
                "notification.failed"
            };
            let record = serde_json::json!({
                "receiver": webhook.config.name,
                "channel": "webhook",
                "alert": alert.key,
                "status": alert.status,
                "attempts": outcome.attempts,
                "http_status": outcome.status,
                "error": outcome.error,
                "duration_ms": started.elapsed().as_millis() as u64,
            });
            if let Err(error) = self
                .auditor
                .record("notifier", kind, &alert.key, &record)
                .await
            {
                tracing::error!(%error, "could not journal a notification");
            }
            if let Some(error) = outcome.error {
                tracing::error!(receiver = %webhook.config.name, alert = %alert.key, %error, "webhook delivery failed");
            }
        }
    }

    fn count(&self, receiver: &str, outcome: &str) {
        self.telemetry
            .notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    async fn post(&self, webhook: &Webhook, alert: &Alert, body: &[u8]) -> DeliveryOutcome {
        let config = &webhook.config;
        let policy = RetryPolicy {
            max_attempts: config.max_attempts,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            timeout: config.timeout,
        };
        let mut last_status = None;
        let mut last_error = String::new();
        let mut attempts = 0;
        for attempt in 1..=config.max_attempts {
            attempts = attempt;
            let mut request = self
                .client
                .post(&config.url)
                .timeout(config.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_HEADER, event_kind(alert))
                .body(body.to_vec());
            if let Some(secret) = &config.secret {
                request = request.header(SIGNATURE_HEADER, sign(secret, body));
            }
            let retry_after = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return DeliveryOutcome {
                        attempts: attempt,
                        status: Some(response.status().as_u16()),
                        error: None,
                    };
                }
                Ok(response) => {
                    let status = response.status();
                    last_status = Some(status.as_u16());
                    last_error = format!("receiver answered HTTP {status}");
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| {
                            tools::http::parse_retry_after(value, std::time::SystemTime::now())
                        });
                    let retryable = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retryable {
                        break;
                    }
                    retry_after
                }
                Err(error) => {
                    // reqwest errors name the URL; webhook URLs may carry tokens, so drop it.
                    last_error = if error.is_timeout() {
                        format!(
                            "no answer within {}",
                            agents::duration::format(config.timeout)
                        )
                    } else if error.is_connect() {
                        "connection refused or unreachable".to_owned()
                    } else {
                        error.without_url().to_string()
                    };
                    None
                }
            };
            if attempt < config.max_attempts {
                let delay = backoff_delay(&policy, attempt, retry_after, rand::random::<f64>());
                tokio::time::sleep(delay).await;
            }
        }
        DeliveryOutcome {
            attempts,
            status: last_status,
            error: Some(last_error),
        }
    }
}

#[cfg(test)]
mod tests;

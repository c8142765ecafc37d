//! Telegram webhook mode: Telegram posts each update to `POST /telegram/webhook` with the
//! secret token given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! A request without the token, or with another one, gets 401 and a `chat.refused` journal
//! entry; a body that is not an update gets 400 and an entry too; neither reaches the bot.
//! Accepted updates are answered 200 at once (Telegram waits for the answer and retries slow
//! ones) and handled by one task in arrival order; an update id seen recently is handled once
//! however often Telegram delivers it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use agents::audit::Auditor;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tools::http::SourceError;
use tools::secret::Secret;

use super::Bot;
use super::client::{Update, parse_update};

/// Where the daemon takes Telegram's posts.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";
/// The header carrying the secret token.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Update ids remembered to drop redeliveries.
const REMEMBERED: usize = 4096;

#[derive(Clone)]
struct Intake {
    secret: [u8; 32],
    updates: mpsc::UnboundedSender<Update>,
    auditor: Auditor,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equal tokens, compared without an early exit (over digests, so lengths leak nothing).
fn same_token(expected: &[u8; 32], given: &[u8]) -> bool {
    crate::config::constant_time_eq(expected, &digest(given))
}

/// The webhook route, and the queue of the updates it accepts (for [`super::start`]).
pub fn routes(secret: &Secret, auditor: Auditor) -> (Router, mpsc::UnboundedReceiver<Update>) {
    let (updates, queue) = mpsc::unbounded_channel();
    let intake = Intake {
        secret: digest(secret.expose().as_bytes()),
        updates,
        auditor,
    };
    (
        Router::new()
            .route(WEBHOOK_PATH, post(receive))
            .with_state(intake),
        queue,
    )
}

async fn refuse(intake: &Intake, reason: &str, body: serde_json::Value) {
    let mut record = json!({ "channel": "telegram", "transport": "webhook", "reason": reason });
    if let (Some(record), serde_json::Value::Object(extra)) = (record.as_object_mut(), body) {
        record.extend(extra);
    }
    if let Err(error) = intake
        .auditor
        .record("telegram", "chat.refused", "telegram:webhook", &record)
        .await
    {
        tracing::error!(%error, "could not journal a refused Telegram webhook request");
    }
}

async fn receive(State(intake): State<Intake>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if !same_token(&intake.secret, given) {
        let reason = if given.is_empty() {
            "webhook request without the secret token"
        } else {
            "webhook request with a wrong secret token"
        };
        tracing::warn!(
            reason,
            "telegram: refused a webhook request (not from Telegram?)"
        );
        refuse(&intake, reason, json!({ "bytes": body.len() })).await;
        return StatusCode::UNAUTHORIZED;
    }
    match parse_update(&body) {
        Ok(update) => {
            if intake.updates.send(update).is_err() {
                // Shutting down: Telegram keeps the update and delivers it again.
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            StatusCode::OK
        }
        Err(error) => {
            tracing::warn!(%error, "telegram: a webhook request is not an update");
            refuse(
                &intake,
                "malformed update",
                json!({ "error": error, "bytes": body.len() }),
            )
            .await;
            StatusCode::BAD_REQUEST
        }
    }
}

/// Recently handled update ids, oldest dropped first.
#[derive(Default)]
struct Seen {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Seen {
    /// True the first time `id` comes.
    fn first_time(&mut self, id: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// Sets the webhook (retrying while Telegram cannot be reached) and handles the updates the
/// route accepts until `stop`.
pub(super) fn serve(
    bot: Arc<Bot>,
    url: &str,
    secret: &Secret,
    mut updates: mpsc::UnboundedReceiver<Update>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let setter = bot.clone();
    let (url, secret) = (url.to_owned(), secret.clone());
    let mut setter_stop = stop.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        loop {
            match setter.client.set_webhook(&url, &secret).await {
                Ok(()) => {
                    tracing::info!(
                        url = %crate::config::redact_url(&url),
                        "telegram: webhook set; Telegram posts updates to it"
                    );
                    setter
                        .app
                        .health
                        .source_succeeded("telegram", chrono::Utc::now());
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "telegram: setWebhook failed; no updates arrive until it succeeds");
                    setter.app.health.source_failed(
                        "telegram",
                        &error.to_string(),
                        chrono::Utc::now(),
                    );
                    if matches!(
                        error,
                        SourceError::Rejected { .. } | SourceError::InvalidInput { .. }
                    ) {
                        return;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = setter_stop.wait_for(|stop| *stop) => return,
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    });
    tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            let update = tokio::select! {
                biased;
                update = updates.recv() => update,
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let Some(update) = update else {
                break;
            };
            if !seen.first_time(update.update_id()) {
                tracing::debug!(
                    update_id = update.update_id(),
                    "telegram: an update delivered again; handled once"
                );
                continue;
            }
            bot.handle(update).await;
        }
        tracing::info!("telegram: webhook updates stopped for shutdown");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly() {
        let expected = digest(b"s3cr3t-token_1");
        assert!(same_token(&expected, b"s3cr3t-token_1"));
        assert!(!same_token(&expected, b"s3cr3t-token_2"));
        assert!(!same_token(&expected, b"s3cr3t-token_1 "));
        assert!(!same_token(&expected, b""));
    }

    #[test]
    fn an_update_id_is_handled_once_and_old_ones_are_forgotten() {
        let mut seen = Seen::default();
        assert!(seen.first_time(10));
        assert!(!seen.first_time(10));
        for id in 11..(11 + REMEMBERED as i64) {
            assert!(seen.first_time(id));
        }
        assert_eq!(seen.order.len(), REMEMBERED);
        // 10 was the oldest and is forgotten; a random restart of the id sequence still works.
        assert!(seen.first_time(10));
        assert!(!seen.first_time(11 + REMEMBERED as i64 - 1));
    }
}

//! Slack: the slash command `/cc <subcommand>` (`POST /slack/commands`) and the approval
//! buttons of interactive messages (`POST /slack/actions`).
//!
//! Every request is verified with the app's signing secret (v0 HMAC-SHA256 over
//! `v0:timestamp:body`, five-minute window, constant-time compare, replays refused) before its
//! body is read. A slash command is acknowledged at once (Slack allows three seconds) and the
//! full answer, from the shared command layer, is posted to the command's `response_url`. A
//! button press decides through the gate as the Slack user's configured person
//! (`[[access.users]] slack_id`); people Slack ids do not map to get a polite refusal. Every
//! refusal and every command is journaled; nothing refused changes state.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::json;
use tools::secret::Secret;
use tools::slack::{ReplayGuard, SlackClient};

use crate::commands::{self, Caller, Context};
use crate::config::UserConfig;
use crate::http::AppState;

/// Requests remembered against replays (Slack's window is five minutes).
const REPLAY_CAPACITY: usize = 10_000;
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNATURE_HEADER: &str = "x-slack-signature";

/// The Slack side of the daemon.
pub struct SlackChannel {
    signing_secret: Secret,
    guard: ReplayGuard,
    client: Arc<SlackClient>,
    users: Vec<UserConfig>,
}

impl SlackChannel {
    pub fn new(signing_secret: Secret, client: Arc<SlackClient>, users: &[UserConfig]) -> Self {
        Self {
            signing_secret,
            guard: ReplayGuard::new(REPLAY_CAPACITY),
            client,
            users: users
                .iter()
                .filter(|user| user.slack_id.is_some())
                .cloned()
                .collect(),
        }
    }

    /// The person a Slack user id maps to.
    fn user(&self, slack_id: &str) -> Option<&UserConfig> {
        self.users
            .iter()
            .find(|user| user.slack_id.as_deref() == Some(slack_id))
    }

    /// Verifies signature, window and replay; `Err` is the answer to send.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), (StatusCode, String)> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        self.guard
            .verify(
                &self.signing_secret,
                header(TIMESTAMP_HEADER),
                header(SIGNATURE_HEADER),
                body,
                Utc::now().timestamp(),
            )
            .map_err(|error| (StatusCode::UNAUTHORIZED, error.to_string()))
    }
}

#[derive(Clone)]
struct SlackState {
    app: AppState,
    slack: Arc<SlackChannel>,
}

/// `POST /slack/commands` and `POST /slack/actions`.
pub fn routes(app: AppState, slack: Arc<SlackChannel>) -> Router {
    Router::new()
        .route("/slack/commands", post(slash_command))
        .route("/slack/actions", post(block_actions))
        .with_state(SlackState { app, slack })
}

async fn journal(state: &SlackState, kind: &str, subject: &str, body: serde_json::Value) {
    if let Err(error) = state
        .app
        .auditor
        .record("slack", kind, subject, &body)
        .await
    {
        tracing::error!(error = %error, kind, "could not journal a Slack request");
    }
}

fn ephemeral(text: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({ "response_type": "ephemeral", "text": text.into() })),
    )
        .into_response()
}

async fn refuse_unverified(state: &SlackState, endpoint: &str, reason: String) -> Response {
    tracing::warn!(endpoint, reason = %reason, "refused an unverified Slack request");
    journal(
        state,
        "chat.refused",
        endpoint,
        json!({ "channel": "slack", "reason": reason }),
    )
    .await;
    (StatusCode::UNAUTHORIZED, "request not verified").into_response()
}

async fn slash_command(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((_, reason)) = state.slack.verify(&headers, &body) {
        return refuse_unverified(&state, "/slack/commands", reason).await;
    }
    let command = match tools::slack::parse_slash_command(&body) {
        Ok(command) => command,
        Err(error) => {
            journal(
                &state,
                "chat.refused",
                "/slack/commands",
                json!({ "channel": "slack", "reason": error.to_string() }),
            )
            .await;
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let Some(user) = state.slack.user(&command.user_id).cloned() else {
        journal(
            &state,
            "chat.refused",
            &format!("slack:{}", command.user_id),
            json!({ "channel": "slack", "user_id": command.user_id, "reason": "unknown user" }),
        )
        .await;
        return ephemeral(
            "Sorry, this Command Center does not know you. Ask an administrator to add your Slack user id to [[access.users]].",
        );
    };
    journal(
        &state,
        "chat.command",
        &format!("slack:{}", user.name),
        json!({ "channel": "slack", "user": user.name, "text": command.text }),
    )
    .await;
    // Acknowledge now; the answer goes to the response_url.
    let acknowledged = format!("Working on `{}`…", command.text.trim());
    let task_state = state.clone();
    tokio::spawn(async move {
        let context = Context::from_app(&task_state.app, Caller::from(&user));
        let answer = commands::respond(&command.text, &context).await;
        // `{"text", "blocks"}`, answered in the channel for everyone to see.
        let mut body = commands::render::slack::render(&answer);
        if let Some(fields) = body.as_object_mut() {
            fields.insert("response_type".to_owned(), json!("in_channel"));
        }
        if let Err(error) = task_state
            .slack
            .client
            .respond(&command.response_url, &body)
            .await
        {
            tracing::warn!(error = %error, "could not post the answer to Slack's response_url");
        }
    });
    ephemeral(acknowledged)
}

async fn block_actions(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((_, reason)) = state.slack.verify(&headers, &body) {
        return refuse_unverified(&state, "/slack/actions", reason).await;
    }
    let action = match tools::slack::parse_block_actions(&body) {
        Ok(action) => action,
        Err(error) => {
            journal(
                &state,
                "chat.refused",
                "/slack/actions",
                json!({ "channel": "slack", "reason": error.to_string() }),
            )
            .await;
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let Some(user) = state.slack.user(&action.user_id).cloned() else {
        journal(
            &state,
            "chat.refused",
            &format!("slack:{}", action.user_id),
            json!({ "channel": "slack", "user_id": action.user_id, "reason": "unknown user" }),
        )
        .await;
        return ephemeral("Sorry, you are not allowed to decide here.");
    };
    let mut lines = Vec::new();
    for pressed in &action.actions {
        let Some((verb, id)) = super::parse_button(&pressed.action_id) else {
            journal(
                &state,
                "chat.refused",
                &format!("slack:{}", user.name),
                json!({ "channel": "slack", "user": user.name, "action_id": pressed.action_id, "reason": "unknown action" }),
            )
            .await;
            lines.push(format!("unknown action {:?}", pressed.action_id));
            continue;
        };
        lines.push(super::decide(&state.app.gate, verb, id, &user.name).await);
    }
    let text = lines.join("\n");
    journal(
        &state,
        "chat.action",
        &format!("slack:{}", user.name),
        json!({ "channel": "slack", "user": user.name, "result": text }),
    )
    .await;
    if let Some(response_url) = &action.response_url {
        // Replace the buttons with who decided, so nobody presses them twice.
        let body = json!({ "replace_original": true, "text": text });
        if let Err(error) = state.slack.client.respond(response_url, &body).await {
            tracing::warn!(error = %error, "could not update the Slack message");
        }
    }
    ephemeral(text)
}

//! Slack: the slash command `/cc <subcommand>` and the approval buttons of interactive
//! messages, over either of Slack's transports:
//!
//! - HTTP: `POST /slack/commands` and `POST /slack/actions`. Every request is verified with
//!   the app's signing secret (v0 HMAC-SHA256 over `v0:timestamp:body`, five-minute window,
//!   constant-time compare, replays refused) before its body is read.
//! - Socket Mode ([`socket`]), for teams with no public URL: the daemon opens a WebSocket to
//!   Slack with the app-level token and Slack sends the same requests over it.
//!
//! Both hand what they read to one [`SlackService`], so a command or a button press does the
//! same whichever way it came: a slash command is acknowledged at once (Slack allows three
//! seconds) and the full answer, from the shared command layer, is posted to the command's
//! `response_url`; a button press decides through the gate as the Slack user's configured
//! person (`[[access.users]] slack_id`); people Slack ids do not map to get a polite refusal
//! (for a button, an ephemeral message through its `response_url`).
//! Every refusal and every command is journaled; nothing refused changes state.

pub mod socket;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use tools::secret::Secret;
use tools::slack::{BlockAction, ReplayGuard, SlackClient, SlashCommand};

use crate::commands::{self, Caller, Context};
use crate::config::UserConfig;
use crate::http::AppState;

/// Requests remembered against replays (Slack's window is five minutes).
const REPLAY_CAPACITY: usize = 10_000;
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNATURE_HEADER: &str = "x-slack-signature";

/// How a request reached the daemon; journaled with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    SocketMode,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::SocketMode => "socket_mode",
        }
    }
}

/// What a slash command or a button press does, whichever transport brought it.
#[derive(Clone)]
pub struct SlackService {
    app: AppState,
    client: Arc<SlackClient>,
    /// The people of `[[access.users]]` that have a `slack_id`.
    users: Arc<[UserConfig]>,
}

/// The body of an immediate answer only the person who asked sees.
fn ephemeral(text: impl Into<String>) -> Value {
    json!({ "response_type": "ephemeral", "text": text.into() })
}

impl SlackService {
    pub fn new(app: AppState, client: Arc<SlackClient>, users: &[UserConfig]) -> Self {
        Self {
            app,
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

    async fn journal(&self, kind: &str, subject: &str, body: Value) {
        if let Err(error) = self.app.auditor.record("slack", kind, subject, &body).await {
            tracing::error!(error = %error, kind, "could not journal a Slack request");
        }
    }

    /// A request that was refused before it could be read (unverified, malformed):
    /// journaled as `chat.refused` under `subject` (the endpoint, or the Socket Mode
    /// envelope type). `reason` must not carry the request body.
    pub async fn refuse(&self, transport: Transport, subject: &str, reason: &str) {
        self.journal(
            "chat.refused",
            subject,
            json!({ "channel": "slack", "transport": transport.as_str(), "reason": reason }),
        )
        .await;
    }

    /// A slash command: refused for people Slack ids do not map to; otherwise journaled,
    /// answered in the background at its `response_url`, and acknowledged. Returns the
    /// immediate answer (an ephemeral message) for the acknowledgement.
    pub async fn slash_command(&self, command: SlashCommand, transport: Transport) -> Value {
        let Some(user) = self.user(&command.user_id).cloned() else {
            self.journal(
                "chat.refused",
                &format!("slack:{}", command.user_id),
                json!({
                    "channel": "slack",
                    "transport": transport.as_str(),
                    "user_id": command.user_id,
                    "reason": "unknown user",
                }),
            )
            .await;
            return ephemeral(
                "Sorry, this Command Center does not know you. Ask an administrator to add your Slack user id to [[access.users]].",
            );
        };
        self.journal(
            "chat.command",
            &format!("slack:{}", user.name),
            json!({
                "channel": "slack",
                "transport": transport.as_str(),
                "user": user.name,
                "text": command.text,
            }),
        )
        .await;
        // Acknowledge now; the answer goes to the response_url.
        let acknowledged = format!("Working on `{}`…", command.text.trim());
        let service = self.clone();
        tokio::spawn(async move {
            let context = Context::from_app(&service.app, Caller::from(&user));
            let answer = commands::respond(&command.text, &context).await;
            // `{"text", "blocks"}`, answered in the channel for everyone to see.
            let mut body = commands::render::slack::render(&answer);
            if let Some(fields) = body.as_object_mut() {
                fields.insert("response_type".to_owned(), json!("in_channel"));
            }
            if let Err(error) = service.client.respond(&command.response_url, &body).await {
                tracing::warn!(error = %error, "could not post the answer to Slack's response_url");
            }
        });
        ephemeral(acknowledged)
    }

    /// A button press: each action decides through the gate as the person the Slack user
    /// maps to (strangers decide nothing), the message's buttons are replaced by who decided
    /// (through its `response_url`), and the outcome is journaled. Returns the outcome as an
    /// ephemeral message.
    pub async fn block_actions(&self, action: BlockAction, transport: Transport) -> Value {
        let Some(user) = self.user(&action.user_id).cloned() else {
            self.journal(
                "chat.refused",
                &format!("slack:{}", action.user_id),
                json!({
                    "channel": "slack",
                    "transport": transport.as_str(),
                    "user_id": action.user_id,
                    "reason": "unknown user",
                }),
            )
            .await;
            let refusal = ephemeral("Sorry, you are not allowed to decide here.");
            // Slack shows nothing of the answer to a button press; the person learns why
            // through the response_url, in a message only they see.
            if let Some(response_url) = &action.response_url {
                let mut body = refusal.clone();
                body["replace_original"] = json!(false);
                if let Err(error) = self.client.respond(response_url, &body).await {
                    tracing::warn!(error = %error, "could not tell a Slack user they may not decide");
                }
            }
            return refusal;
        };
        let mut lines = Vec::new();
        for pressed in &action.actions {
            let Some((verb, id)) = super::parse_button(&pressed.action_id) else {
                self.journal(
                    "chat.refused",
                    &format!("slack:{}", user.name),
                    json!({
                        "channel": "slack",
                        "transport": transport.as_str(),
                        "user": user.name,
                        "action_id": pressed.action_id,
                        "reason": "unknown action",
                    }),
                )
                .await;
                lines.push(format!("unknown action {:?}", pressed.action_id));
                continue;
            };
            lines.push(super::decide(&self.app.gate, verb, id, &user.name).await);
        }
        let text = lines.join("\n");
        self.journal(
            "chat.action",
            &format!("slack:{}", user.name),
            json!({
                "channel": "slack",
                "transport": transport.as_str(),
                "user": user.name,
                "result": text,
            }),
        )
        .await;
        if let Some(response_url) = &action.response_url {
            // Replace the buttons with who decided, so nobody presses them twice.
            let body = json!({ "replace_original": true, "text": text });
            if let Err(error) = self.client.respond(response_url, &body).await {
                tracing::warn!(error = %error, "could not update the Slack message");
            }
        }
        ephemeral(text)
    }
}

/// Checks HTTP requests are Slack's: signature, window and replay.
pub struct SlackRequestVerifier {
    signing_secret: Secret,
    guard: ReplayGuard,
}

impl SlackRequestVerifier {
    pub fn new(signing_secret: Secret) -> Self {
        Self {
            signing_secret,
            guard: ReplayGuard::new(REPLAY_CAPACITY),
        }
    }

    /// `Err` is why the request is refused.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        self.guard
            .verify(
                &self.signing_secret,
                header(TIMESTAMP_HEADER),
                header(SIGNATURE_HEADER),
                body,
                Utc::now().timestamp(),
            )
            .map_err(|error| error.to_string())
    }
}

#[derive(Clone)]
struct HttpState {
    service: SlackService,
    verifier: Arc<SlackRequestVerifier>,
}

/// `POST /slack/commands` and `POST /slack/actions`.
pub fn routes(service: SlackService, verifier: SlackRequestVerifier) -> Router {
    Router::new()
        .route("/slack/commands", post(slash_command))
        .route("/slack/actions", post(block_actions))
        .with_state(HttpState {
            service,
            verifier: Arc::new(verifier),
        })
}

fn answer(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Verifies, or journals and answers the refusal.
async fn verified(
    state: &HttpState,
    endpoint: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Response> {
    let Err(reason) = state.verifier.verify(headers, body) else {
        return Ok(());
    };
    tracing::warn!(endpoint, reason = %reason, "refused an unverified Slack request");
    state
        .service
        .refuse(Transport::Http, endpoint, &reason)
        .await;
    Err((StatusCode::UNAUTHORIZED, "request not verified").into_response())
}

async fn malformed(state: &HttpState, endpoint: &str, reason: String) -> Response {
    state
        .service
        .refuse(Transport::Http, endpoint, &reason)
        .await;
    (StatusCode::BAD_REQUEST, reason).into_response()
}

async fn slash_command(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "/slack/commands";
    if let Err(refused) = verified(&state, ENDPOINT, &headers, &body).await {
        return refused;
    }
    match tools::slack::parse_slash_command(&body) {
        Ok(command) => answer(state.service.slash_command(command, Transport::Http).await),
        Err(error) => malformed(&state, ENDPOINT, error.to_string()).await,
    }
}

async fn block_actions(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "/slack/actions";
    if let Err(refused) = verified(&state, ENDPOINT, &headers, &body).await {
        return refused;
    }
    match tools::slack::parse_block_actions(&body) {
        Ok(action) => answer(state.service.block_actions(action, Transport::Http).await),
        Err(error) => malformed(&state, ENDPOINT, error.to_string()).await,
    }
}

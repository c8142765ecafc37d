//! A simulated Slack workspace: the Web API methods an alerting bot calls,
//! `POST /slack/api/chat.postMessage` and `POST /slack/api/chat.update` (JSON bodies, as
//! Slack takes them), and a `response_url` sink, `POST /slack/response/{id}`. What it
//! accepted is recorded, served under `slack` in `GET /_sim/state` and read with
//! [`SimHandle::slack_calls`](super::SimHandle::slack_calls) and
//! [`SimHandle::slack_responses`](super::SimHandle::slack_responses).
//!
//! Like Slack, failures are HTTP 200 with `{"ok": false, "error": <code>}`: `not_authed`
//! without `Authorization: Bearer <token>`, `invalid_auth` for a token not starting with
//! `xox`, `token_revoked` for one starting with `xoxb-revoked`, `channel_not_found` for an
//! empty channel, `no_text` with neither text nor blocks, `invalid_blocks` when blocks are
//! not an array, `message_not_found` when `chat.update` names a message never posted,
//! `invalid_json` for a body that is not a JSON object. Faults (service `slack`): `rate_limit`
//! answers HTTP 429 `{"ok": false, "error": "ratelimited"}` with `Retry-After`, and
//! `api_error` answers any code (`channel_not_found`, `not_in_channel`, ...) on the
//! `chat.*` methods. Rate limits are not modelled otherwise: the sim accepts any pace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::scenario::SimService;
use super::server::serve;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/slack/api/chat.postMessage", post(post_message))
        .route("/slack/api/chat.update", post(update_message))
        .route("/slack/response/{id}", post(response_sink))
}

/// The bot id the sim's messages carry.
const SIM_BOT_ID: &str = "BSIMBOT001";

/// One Web API call the sim accepted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlackCall {
    /// Wall clock, not sim time: delivery latency and spacing are real.
    pub received_at: DateTime<Utc>,
    /// `chat.postMessage` or `chat.update`.
    pub method: String,
    pub channel: String,
    /// The ts the sim gave the message (`chat.postMessage`) or the one updated.
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// The whole JSON body as received.
    pub body: Value,
}

/// One POST the `response_url` sink received.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlackResponse {
    /// Wall clock.
    pub received_at: DateTime<Utc>,
    /// The `{id}` of `/slack/response/{id}`.
    pub response_id: String,
    /// Whether an `Authorization` header came along (it should not: the URL is the
    /// credential). The value is never kept.
    pub authorization_present: bool,
    /// The JSON body, or the raw text as a JSON string when it was not JSON.
    pub body: Value,
}

/// The workspace's records, owned by `World` behind their own lock (never held across an
/// await).
pub(crate) struct SlackWorkspace {
    state: Mutex<SlackState>,
    /// Calls plus responses recorded; `wait_for_slack` waits on it.
    recorded: watch::Sender<usize>,
}

#[derive(Default)]
struct SlackState {
    calls: Vec<SlackCall>,
    responses: Vec<SlackResponse>,
    /// (channel, ts) of every message posted, for `chat.update`.
    messages: BTreeSet<(String, String)>,
    /// Makes each ts unique within a second.
    next_ts_suffix: u64,
}

impl Default for SlackWorkspace {
    fn default() -> Self {
        let (recorded, _) = watch::channel(0);
        Self {
            state: Mutex::new(SlackState::default()),
            recorded,
        }
    }
}

impl SlackWorkspace {
    fn state(&self) -> MutexGuard<'_, SlackState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self, state: &SlackState) {
        self.recorded
            .send_replace(state.calls.len() + state.responses.len());
    }

    pub(crate) fn calls(&self) -> Vec<SlackCall> {
        self.state().calls.clone()
    }

    pub(crate) fn responses(&self) -> Vec<SlackResponse> {
        self.state().responses.clone()
    }

    /// What `/_sim/state` shows under `slack`.
    pub(crate) fn state_json(&self) -> Value {
        let state = self.state();
        json!({
            "calls_received": state.calls.len(),
            "calls": state.calls,
            "responses_received": state.responses.len(),
            "responses": state.responses,
        })
    }
}

impl super::SimHandle {
    /// The Web API root the sim serves (`SlackClient::new` base url).
    pub fn slack_api_url(&self) -> String {
        format!("{}/slack/api", self.base_url())
    }

    /// A `response_url` the sim records under `id`.
    pub fn slack_response_url(&self, id: &str) -> String {
        format!("{}/slack/response/{id}", self.base_url())
    }

    /// Web API calls accepted, in arrival order.
    pub fn slack_calls(&self) -> Vec<SlackCall> {
        self.inner.world.slack.calls()
    }

    /// `response_url` posts received, in arrival order.
    pub fn slack_responses(&self) -> Vec<SlackResponse> {
        self.inner.world.slack.responses()
    }

    /// Waits until at least `count` calls and responses together were recorded or `timeout`
    /// passed; returns how many were recorded (possibly fewer than `count`).
    pub async fn wait_for_slack(&self, count: usize, timeout: Duration) -> usize {
        let slack = &self.inner.world.slack;
        let mut recorded = slack.recorded.subscribe();
        // Timeout or a closed channel both end the wait; the caller checks the number.
        let _ = tokio::time::timeout(timeout, recorded.wait_for(|n| *n >= count)).await;
        let state = slack.state();
        state.calls.len() + state.responses.len()
    }
}

type Answer = (StatusCode, Value);

fn slack_error(code: &str) -> Answer {
    (StatusCode::OK, json!({"ok": false, "error": code}))
}

/// Slack's checks of the bot token, in its order: none, malformed, revoked.
fn check_token(headers: &HeaderMap) -> Result<(), Answer> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match token {
        None => Err(slack_error("not_authed")),
        Some(token) if !token.starts_with("xox") => Err(slack_error("invalid_auth")),
        Some(token) if token.starts_with("xoxb-revoked") => Err(slack_error("token_revoked")),
        Some(_) => Ok(()),
    }
}

/// The JSON object body, and whether Slack would warn about a missing charset.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<(Value, bool), Answer> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) if content_type.starts_with("application/json") => {
            Ok((value, !content_type.contains("charset")))
        }
        _ => Err(slack_error("invalid_json")),
    }
}

fn non_empty(body: &Value, field: &str) -> Option<String> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
}

/// `text` and `blocks` as Slack checks them: at least one, blocks an array.
fn content(body: &Value) -> Result<(Option<String>, Option<Value>), Answer> {
    let text = non_empty(body, "text");
    let blocks = match body.get("blocks") {
        None | Some(Value::Null) => None,
        Some(blocks @ Value::Array(_)) => Some(blocks.clone()),
        Some(_) => return Err(slack_error("invalid_blocks")),
    };
    if text.is_none() && blocks.as_ref().is_none_or(|blocks| blocks == &json!([])) {
        return Err(slack_error("no_text"));
    }
    Ok((text, blocks))
}

fn with_warning(mut answer: Value, missing_charset: bool) -> Value {
    if missing_charset {
        answer["warning"] = json!("missing_charset");
        answer["response_metadata"] = json!({"warnings": ["missing_charset"]});
    }
    answer
}

fn message_json(ts: &str, text: &Option<String>, blocks: &Option<Value>) -> Value {
    let mut message = json!({
        "type": "message",
        "subtype": "bot_message",
        "bot_id": SIM_BOT_ID,
        "text": text.clone().unwrap_or_default(),
        "ts": ts,
    });
    if let Some(blocks) = blocks {
        message["blocks"] = blocks.clone();
    }
    message
}

fn accept_post(world: &World, headers: &HeaderMap, body: &[u8]) -> Result<Answer, Answer> {
    check_token(headers)?;
    let (body, missing_charset) = json_body(headers, body)?;
    let channel = non_empty(&body, "channel").ok_or_else(|| slack_error("channel_not_found"))?;
    let (text, blocks) = content(&body)?;
    let seconds = world.now().timestamp();
    let slack = &world.slack;
    let mut state = slack.state();
    state.next_ts_suffix += 1;
    let ts = format!("{seconds}.{:06}", state.next_ts_suffix % 1_000_000);
    state.messages.insert((channel.clone(), ts.clone()));
    let answer = json!({
        "ok": true,
        "channel": channel,
        "ts": ts,
        "message": message_json(&ts, &text, &blocks),
    });
    state.calls.push(SlackCall {
        received_at: Utc::now(),
        method: "chat.postMessage".to_owned(),
        channel,
        ts,
        text,
        blocks,
        body,
    });
    slack.notify(&state);
    Ok((StatusCode::OK, with_warning(answer, missing_charset)))
}

fn accept_update(world: &World, headers: &HeaderMap, body: &[u8]) -> Result<Answer, Answer> {
    check_token(headers)?;
    let (body, missing_charset) = json_body(headers, body)?;
    let channel = non_empty(&body, "channel").ok_or_else(|| slack_error("channel_not_found"))?;
    let ts = non_empty(&body, "ts").ok_or_else(|| slack_error("message_not_found"))?;
    let (text, blocks) = content(&body)?;
    let slack = &world.slack;
    let mut state = slack.state();
    if !state.messages.contains(&(channel.clone(), ts.clone())) {
        return Err(slack_error("message_not_found"));
    }
    let answer = json!({
        "ok": true,
        "channel": channel,
        "ts": ts,
        "text": text.clone().unwrap_or_default(),
        "message": message_json(&ts, &text, &blocks),
    });
    state.calls.push(SlackCall {
        received_at: Utc::now(),
        method: "chat.update".to_owned(),
        channel,
        ts,
        text,
        blocks,
        body,
    });
    slack.notify(&state);
    Ok((StatusCode::OK, with_warning(answer, missing_charset)))
}

async fn post_message(
    State(world): State<Arc<World>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&world, SimService::Slack, "chat.postMessage", || {
        accept_post(&world, &headers, &body).unwrap_or_else(|refused| refused)
    })
    .await
}

async fn update_message(
    State(world): State<Arc<World>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&world, SimService::Slack, "chat.update", || {
        accept_update(&world, &headers, &body).unwrap_or_else(|refused| refused)
    })
    .await
}

async fn response_sink(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&world, SimService::Slack, "response", || {
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let slack = &world.slack;
        let mut state = slack.state();
        state.responses.push(SlackResponse {
            received_at: Utc::now(),
            response_id: id,
            authorization_present: headers.contains_key(header::AUTHORIZATION),
            body,
        });
        slack.notify(&state);
        (StatusCode::OK, json!({"ok": true}))
    })
    .await
}

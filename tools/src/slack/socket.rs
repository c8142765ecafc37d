//! Socket Mode building blocks, without the WebSocket itself: [`SocketModeOpener`] asks
//! `apps.connections.open` for a fresh WebSocket URL with the app-level token (`xapp-...`),
//! [`parse_envelope`] reads what Slack sends over the socket, and [`ack`] writes the answer
//! every envelope needs within three seconds.
//!
//! Envelopes: `hello` once a connection is ready; `disconnect` with a reason
//! (`refresh_requested`, `warning`: open a new connection; `link_disabled`: Socket Mode was
//! turned off for the app); and requests with an `envelope_id` to acknowledge:
//! `slash_commands` (the payload carries the slash command form's fields),
//! `interactive` (a `block_actions` payload, as the HTTP form's `payload`) and `events_api`.
//! Parsing never panics and errors never echo the frame: it can carry a `response_url`, which
//! is a credential.

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Envelope, MAX_ANSWER_BYTES, SOURCE, clean_code, http_failure, slack_error};
use crate::http::{HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

/// The Web API method that hands out Socket Mode URLs.
pub const CONNECTIONS_OPEN: &str = "apps.connections.open";

/// Why `apps.connections.open` gave no URL.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectionsOpenError {
    /// Slack refused the app-level token: asking again with it cannot help.
    #[error("Slack refused the app-level token: {CONNECTIONS_OPEN} answered {code}: {hint}")]
    Denied { code: String, hint: &'static str },
    /// Anything else (network, rate limit, Slack's own trouble): ask again later.
    #[error("{CONNECTIONS_OPEN} failed: {0}")]
    Unavailable(SourceError),
}

/// What to do about an `apps.connections.open` error code that no retry fixes; `None` for
/// codes worth retrying.
fn denial_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "not_authed" | "missing_args" => {
            "no app-level token was sent; set COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN or channels.slack.app_token_file"
        }
        "invalid_auth" | "token_revoked" | "token_expired" | "account_inactive"
        | "invalid_token" => {
            "the app-level token (xapp-...) is invalid, revoked or expired; generate a new one in the app's settings (Basic Information, App-Level Tokens, scope connections:write)"
        }
        "not_allowed_token_type" => {
            "this is not an app-level token; Socket Mode needs the xapp-... token from Basic Information, App-Level Tokens, not the bot token (xoxb-...)"
        }
        "missing_scope"
        | "no_permission"
        | "access_denied"
        | "forbidden_team"
        | "team_access_not_granted" => {
            "the app-level token may not open connections; give it the connections:write scope (Basic Information, App-Level Tokens) and check Socket Mode is on"
        }
        _ => return None,
    })
}

/// `apps.connections.open` with the app-level token. The token goes in the `Authorization`
/// header only (Slack refuses it as a form field for this method) and never into a message.
pub struct SocketModeOpener {
    api: HttpCore,
    url: Url,
}

enum OpenAnswer {
    Opened(Url),
    Denied(String),
}

impl SocketModeOpener {
    /// `api_base_url` is the Web API root (`https://slack.com/api`, or the sim's
    /// `slack_api_url()`).
    pub fn new(
        api_base_url: &str,
        app_token: Secret,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        let url = join_url(SOURCE, api_base_url, CONNECTIONS_OPEN)?;
        let token = app_token.expose();
        if token.trim().is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE}: the app-level token is empty; set the app's App-Level Token (xapp-...)"
                ),
            });
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE}: the app-level token contains characters not allowed in an Authorization header"
                ),
            }
        })?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        // apps.connections.open is rate limited per minute; reconnects are rare and backed
        // off by the caller, so the client-side limit is only a cap.
        let api = HttpCore::new(SOURCE, 1.0, retry, headers, Some(app_token))?
            .with_max_body_bytes(MAX_ANSWER_BYTES);
        Ok(Self { api, url })
    }

    /// A fresh `wss://` URL (each is good for one connection). A rate-limited call is retried
    /// after `Retry-After` within the retry policy.
    pub async fn open(&self) -> Result<Url, ConnectionsOpenError> {
        let answer = self
            .api
            .post_json(&self.url, CONNECTIONS_OPEN, &json!({}), interpret_open)
            .await
            .map_err(ConnectionsOpenError::Unavailable)?;
        match answer.value {
            OpenAnswer::Opened(url) => Ok(url),
            OpenAnswer::Denied(code) => {
                let hint = denial_hint(&code).unwrap_or("see the method's error list");
                Err(ConnectionsOpenError::Denied { code, hint })
            }
        }
    }
}

#[derive(Deserialize)]
struct OpenedUrl {
    url: Option<String>,
}

fn interpret_open(answer: HttpAnswer) -> Result<OpenAnswer, SourceError> {
    if let Some(error) = http_failure(&answer) {
        return Err(error);
    }
    answer.ensure_json()?;
    let envelope: Envelope = answer.parse_json()?;
    match (envelope.ok, envelope.error) {
        (Some(true), _) => {}
        (_, Some(code)) if denial_hint(&clean_code(&code)).is_some() => {
            return Ok(OpenAnswer::Denied(clean_code(&code)));
        }
        (_, Some(code)) => return Err(slack_error(&answer, &code)),
        (ok, None) => {
            return Err(SourceError::InvalidResponse {
                detail: format!(
                    "{}: expected {{\"ok\": true|false, ...}}, got ok = {ok:?} without an error code",
                    answer.origin
                ),
            });
        }
    }
    let opened: OpenedUrl = answer.parse_json()?;
    let invalid = |why: &str| SourceError::InvalidResponse {
        // The URL carries a connection ticket: never printed.
        detail: format!("{}: `url` {why}", answer.origin),
    };
    let text = opened.url.ok_or_else(|| invalid("is missing"))?;
    let url = Url::parse(&text).map_err(|_| invalid("is not a URL"))?;
    match url.scheme() {
        "wss" | "ws" if url.host_str().is_some() => Ok(OpenAnswer::Opened(url)),
        _ => Err(invalid("is not a ws:// or wss:// URL with a host")),
    }
}

/// Why Slack asks to close a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The connection is due to be refreshed: open a new one.
    RefreshRequested,
    /// The connection will be closed in about ten seconds: open a new one.
    Warning,
    /// Socket Mode was turned off for the app: reconnecting cannot help.
    LinkDisabled,
    Other(String),
}

impl DisconnectReason {
    pub fn as_str(&self) -> &str {
        match self {
            Self::RefreshRequested => "refresh_requested",
            Self::Warning => "warning",
            Self::LinkDisabled => "link_disabled",
            Self::Other(reason) => reason,
        }
    }
}

/// The kinds of request envelopes; each must be acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    SlashCommands,
    Interactive,
    EventsApi,
    Other(String),
}

impl RequestKind {
    pub fn as_str(&self) -> &str {
        match self {
            Self::SlashCommands => "slash_commands",
            Self::Interactive => "interactive",
            Self::EventsApi => "events_api",
            Self::Other(kind) => kind,
        }
    }
}

/// An envelope that needs an acknowledgement (`{"envelope_id": ...}`).
#[derive(Clone, Debug, PartialEq)]
pub struct SocketRequest {
    pub envelope_id: String,
    pub kind: RequestKind,
    /// The request itself; read it with [`super::slash_command_from_json`] or
    /// [`super::block_actions_from_json`].
    pub payload: Value,
    /// Whether the acknowledgement may carry a response (slash commands: shown to the user).
    pub accepts_response_payload: bool,
    /// 0 for the first delivery; Slack redelivers what was not acknowledged in time.
    pub retry_attempt: u32,
    pub retry_reason: Option<String>,
}

/// One frame from Slack, read.
#[derive(Clone, Debug, PartialEq)]
pub enum SocketEnvelope {
    /// The connection is ready.
    Hello {
        num_connections: Option<u64>,
        app_id: Option<String>,
    },
    Disconnect {
        reason: DisconnectReason,
    },
    Request(SocketRequest),
}

/// A frame that could not be read. When the frame still named an `envelope_id`, it is given
/// so the envelope can be acknowledged anyway (or Slack would send it again).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Socket Mode frame not understood: {reason}")]
pub struct EnvelopeError {
    pub envelope_id: Option<String>,
    pub reason: String,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<Value>,
    #[serde(default)]
    accepts_response_payload: bool,
    retry_attempt: Option<u32>,
    retry_reason: Option<String>,
    reason: Option<String>,
    num_connections: Option<u64>,
    connection_info: Option<RawConnectionInfo>,
}

#[derive(Deserialize)]
struct RawConnectionInfo {
    app_id: Option<String>,
}

/// Longest envelope id kept; Slack's are a UUID.
const MAX_ENVELOPE_ID: usize = 128;

/// Reads one text frame.
pub fn parse_envelope(text: &str) -> Result<SocketEnvelope, EnvelopeError> {
    let value: Value = serde_json::from_str(text).map_err(|error| EnvelopeError {
        envelope_id: None,
        reason: format!(
            "not JSON ({} at line {} column {})",
            error_category(&error),
            error.line(),
            error.column()
        ),
    })?;
    if !value.is_object() {
        return Err(EnvelopeError {
            envelope_id: None,
            reason: "not a JSON object".to_owned(),
        });
    }
    // The id first, so a frame with a broken rest can still be acknowledged.
    let envelope_id = value
        .get("envelope_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_ENVELOPE_ID)
        .map(str::to_owned);
    let failed = |reason: String| EnvelopeError {
        envelope_id: envelope_id.clone(),
        reason,
    };
    let raw: RawEnvelope = serde_path_to_error::deserialize(&value).map_err(|error| {
        failed(format!(
            "field `{}` has the wrong type: {}",
            error.path(),
            error.inner()
        ))
    })?;
    let kind = raw
        .kind
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| failed("`type` is missing".to_owned()))?;
    match kind.as_str() {
        "hello" => {
            return Ok(SocketEnvelope::Hello {
                num_connections: raw.num_connections,
                app_id: raw.connection_info.and_then(|info| info.app_id),
            });
        }
        "disconnect" => {
            let reason = match raw.reason.as_deref() {
                Some("refresh_requested") => DisconnectReason::RefreshRequested,
                Some("warning") => DisconnectReason::Warning,
                Some("link_disabled") => DisconnectReason::LinkDisabled,
                Some(other) => DisconnectReason::Other(clean_code(other)),
                None => DisconnectReason::Other(String::new()),
            };
            return Ok(SocketEnvelope::Disconnect { reason });
        }
        _ => {}
    }
    let kind = match kind.as_str() {
        "slash_commands" => RequestKind::SlashCommands,
        "interactive" => RequestKind::Interactive,
        "events_api" => RequestKind::EventsApi,
        other => RequestKind::Other(clean_code(other)),
    };
    let Some(envelope_id) = envelope_id.clone() else {
        return Err(failed(format!(
            "a `{}` envelope without a usable `envelope_id`",
            kind.as_str()
        )));
    };
    let payload = raw
        .payload
        .ok_or_else(|| failed(format!("a `{}` envelope without `payload`", kind.as_str())))?;
    Ok(SocketEnvelope::Request(SocketRequest {
        envelope_id,
        kind,
        payload,
        accepts_response_payload: raw.accepts_response_payload,
        retry_attempt: raw.retry_attempt.unwrap_or(0),
        retry_reason: raw.retry_reason.filter(|reason| !reason.is_empty()),
    }))
}

/// serde_json's error without the input it quotes.
fn error_category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "cut off",
    }
}

/// The acknowledgement of an envelope: `{"envelope_id": ...}`, with `payload` (e.g. the
/// slash command's immediate answer) when given.
pub fn ack(envelope_id: &str, payload: Option<&Value>) -> String {
    let mut ack = json!({ "envelope_id": envelope_id });
    if let Some(payload) = payload {
        ack["payload"] = payload.clone();
    }
    ack.to_string()
}

#[cfg(test)]
mod tests;

//! Slack building blocks: verifying inbound requests (slash commands, interactivity),
//! parsing their form bodies, and a Web API client for `chat.postMessage`, `chat.update`
//! and `response_url` answers.
//!
//! Inbound: [`verify_request`] checks Slack's v0 signature (HMAC-SHA256 of
//! `v0:{timestamp}:{raw body}` with the signing secret, compared in constant time) and the
//! 5-minute window; [`ReplayGuard`] remembers what it accepted inside that window so the same
//! signed request is served once. Only then are bodies parsed: [`parse_slash_command`] and
//! [`parse_block_actions`]. None of these panics on any input; errors name the header or
//! field and never carry the secret, the expected signature or the body.
//!
//! Outbound: [`SlackClient`] posts with the bot token as `Authorization: Bearer`, reads
//! Slack's `{"ok": false, "error": ...}` answers (HTTP 200) as [`SourceError`]s carrying the
//! Slack error code, lets the HTTP core retry `ratelimited`/HTTP 429 after `Retry-After`, and
//! spaces posts to one channel (Slack allows about one message per second per channel)
//! without delaying other channels.
//!
//! Socket Mode (no public URL): [`socket`] opens connections with the app-level token and
//! reads the envelopes; the same parsers read their payloads ([`slash_command_from_json`],
//! [`block_actions_from_json`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

pub mod socket;

const SOURCE: &str = "slack";

/// Header carrying the Unix time (seconds) Slack signed the request at.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Header carrying `v0=` and the hex HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// How far a request timestamp may be from now, either way, in seconds (Slack's advice).
pub const REPLAY_WINDOW_SECONDS: i64 = 300;
/// The Web API root.
pub const SLACK_API_BASE_URL: &str = "https://slack.com/api";
/// Slack's guidance for `chat.postMessage`: about one message per second per channel.
pub const DEFAULT_CHANNEL_INTERVAL: Duration = Duration::from_secs(1);
/// Requests per second over all channels when the caller has no better number.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

// ---- request verification ----

/// Why an inbound request is refused before its body is read. Messages say what was wrong
/// and never contain the signing secret, the expected signature or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackAuthError {
    #[error(
        "the Slack signing secret is empty; set it (Slack app settings, Basic Information, Signing Secret) before accepting requests"
    )]
    NoSigningSecret,
    #[error(
        "header {header} is missing; requests from Slack carry {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
    )]
    MissingHeader { header: &'static str },
    #[error("header {TIMESTAMP_HEADER} is not a Unix time in whole seconds")]
    MalformedTimestamp,
    #[error("header {SIGNATURE_HEADER} is not `v0=` followed by 64 hex digits")]
    MalformedSignature,
    #[error(
        "request timestamp is {} s in the {}, outside the {window_seconds} s window: a replay, or this server's clock is off (check NTP)",
        skew_seconds.unsigned_abs(),
        if *skew_seconds > 0 { "past" } else { "future" }
    )]
    Stale {
        /// Now minus the request timestamp: positive for the past, negative for the future.
        skew_seconds: i64,
        window_seconds: i64,
    },
    #[error(
        "signature does not match the request: it was not signed with this app's signing secret, or the body was changed on the way"
    )]
    BadSignature,
    #[error("this signed request was already accepted within the replay window: a replay")]
    Replayed,
}

impl SlackAuthError {
    /// Stable label for metrics and audit entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoSigningSecret => "no_signing_secret",
            Self::MissingHeader { .. } => "missing_header",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::MalformedSignature => "malformed_signature",
            Self::Stale { .. } => "stale",
            Self::BadSignature => "bad_signature",
            Self::Replayed => "replayed",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`:
/// `v0=` + hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}")). For tests and for signing
/// requests to a local endpoint; never log its result.
pub fn sign_request(signing_secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    match signature_mac(signing_secret, &timestamp.to_string(), body) {
        Some(mac) => format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        // Unreachable (HMAC takes keys of any length); an empty value never verifies.
        None => String::new(),
    }
}

/// The MAC over `v0:{timestamp}:{body}`; `None` only if the key were refused, which HMAC
/// never does.
fn signature_mac(signing_secret: &Secret, timestamp: &str, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(signing_secret.expose().as_bytes()).ok()?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    Some(mac)
}

fn parse_timestamp(header: &str) -> Result<i64, SlackAuthError> {
    let header = header.trim();
    // Digits only: no sign, no fraction; 12 digits is far beyond any real Unix time.
    if header.is_empty() || header.len() > 12 || !header.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlackAuthError::MalformedTimestamp);
    }
    header
        .parse::<i64>()
        .map_err(|_| SlackAuthError::MalformedTimestamp)
}

/// The 32 signature bytes of `v0=<64 hex digits>` (either case).
fn parse_signature(header: &str) -> Result<[u8; 32], SlackAuthError> {
    let hex_digits = header
        .trim()
        .strip_prefix("v0=")
        .ok_or(SlackAuthError::MalformedSignature)?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| SlackAuthError::MalformedSignature)?;
    Ok(bytes)
}

fn check_window(timestamp: i64, now_unix: i64) -> Result<(), SlackAuthError> {
    let skew_seconds = now_unix.saturating_sub(timestamp);
    if skew_seconds.unsigned_abs() > REPLAY_WINDOW_SECONDS.unsigned_abs() {
        return Err(SlackAuthError::Stale {
            skew_seconds,
            window_seconds: REPLAY_WINDOW_SECONDS,
        });
    }
    Ok(())
}

/// Checks a request from Slack: both headers present, the timestamp within
/// [`REPLAY_WINDOW_SECONDS`] of `now_unix` either way, and the signature equal, in
/// constant time, to the HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing
/// secret. `body` is the raw body as received, before any parsing.
///
/// This does not remember requests; pair it with a [`ReplayGuard`] (or call
/// [`ReplayGuard::verify`]) so a captured request cannot be sent again within the window.
pub fn verify_request(
    signing_secret: &Secret,
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SlackAuthError> {
    if signing_secret.expose().is_empty() {
        return Err(SlackAuthError::NoSigningSecret);
    }
    let timestamp_header = timestamp_header.ok_or(SlackAuthError::MissingHeader {
        header: TIMESTAMP_HEADER,
    })?;
    let signature_header = signature_header.ok_or(SlackAuthError::MissingHeader {
        header: SIGNATURE_HEADER,
    })?;
    let timestamp = parse_timestamp(timestamp_header)?;
    check_window(timestamp, now_unix)?;
    let signature = parse_signature(signature_header)?;
    // The MAC is over the timestamp exactly as sent, like Slack computes it.
    signature_mac(signing_secret, timestamp_header.trim(), body)
        .ok_or(SlackAuthError::BadSignature)?
        .verify_slice(&signature)
        .map_err(|_| SlackAuthError::BadSignature)
}

/// Remembers the (timestamp, signature) of accepted requests for the replay window, so a
/// signed request captured on the way is served once. Bounded: entries older than the
/// window are evicted on every check, and past `capacity` the oldest entry goes first (it
/// is the closest to expiring anyway; a warning is logged, since that many signed requests
/// in five minutes is unusual).
pub struct ReplayGuard {
    capacity: usize,
    /// (timestamp, signature bytes) of accepted requests, oldest timestamp first. Bytes, not
    /// the header text, so the same signature in upper-case hex is the same entry.
    seen: Mutex<BTreeSet<(i64, [u8; 32])>>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl ReplayGuard {
    /// `capacity` is the most entries kept (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    fn seen(&self) -> MutexGuard<'_, BTreeSet<(i64, [u8; 32])>> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// [`verify_request`], then [`ReplayGuard::check_and_remember`]: the one call an
    /// endpoint makes before reading the body.
    pub fn verify(
        &self,
        signing_secret: &Secret,
        timestamp_header: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SlackAuthError> {
        verify_request(
            signing_secret,
            timestamp_header,
            signature_header,
            body,
            now_unix,
        )?;
        // Both are present: verify_request checked.
        self.check_and_remember(
            timestamp_header.unwrap_or_default(),
            signature_header.unwrap_or_default(),
            now_unix,
        )
    }

    /// Refuses a (timestamp, signature) already accepted within the window, otherwise
    /// remembers it. Call after [`verify_request`] succeeded, with the same headers.
    pub fn check_and_remember(
        &self,
        timestamp_header: &str,
        signature_header: &str,
        now_unix: i64,
    ) -> Result<(), SlackAuthError> {
        let timestamp = parse_timestamp(timestamp_header)?;
        check_window(timestamp, now_unix)?;
        let signature = parse_signature(signature_header)?;
        let mut seen = self.seen();
        let oldest_kept = now_unix.saturating_sub(REPLAY_WINDOW_SECONDS);
        while seen
            .first()
            .is_some_and(|(timestamp, _)| *timestamp < oldest_kept)
        {
            seen.pop_first();
        }
        if seen.contains(&(timestamp, signature)) {
            return Err(SlackAuthError::Replayed);
        }
        if seen.len() >= self.capacity {
            warn!(
                capacity = self.capacity,
                "Slack replay guard is full; forgetting the oldest accepted request early"
            );
            seen.pop_first();
        }
        seen.insert((timestamp, signature));
        Ok(())
    }

    /// Entries remembered now.
    pub fn len(&self) -> usize {
        self.seen().len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen().is_empty()
    }
}

// ---- payload parsing ----

/// Why a (verified) Slack body could not be read. Names the field; never echoes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackPayloadError {
    #[error("the Slack request body is empty; expected an application/x-www-form-urlencoded form")]
    EmptyBody,
    #[error(
        "the Slack request body is not UTF-8 (invalid byte at offset {offset}); expected an application/x-www-form-urlencoded form"
    )]
    NotUtf8 { offset: usize },
    #[error(
        "the Slack request body is not an application/x-www-form-urlencoded form (no key=value pair)"
    )]
    NotAForm,
    #[error("form field `{field}` appears more than once; Slack sends each field once")]
    DuplicateField { field: String },
    #[error("`{field}` is missing from the Slack payload")]
    MissingField { field: String },
    #[error("`{field}` in the Slack payload is invalid: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("the Slack `payload` is not the expected JSON (at `{path}`: {message})")]
    InvalidJson { path: String, message: String },
    #[error("Slack interaction type {found:?} is not handled here; expected \"block_actions\"")]
    UnsupportedType { found: String },
}

impl SlackPayloadError {
    /// Stable label for metrics and audit entries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::NotAForm => "not_a_form",
            Self::DuplicateField { .. } => "duplicate_field",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::InvalidJson { .. } => "invalid_json",
            Self::UnsupportedType { .. } => "unsupported_type",
        }
    }
}

/// A slash command invocation (`/cc status`), as Slack posts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlashCommand {
    /// The command typed, with its slash: `/cc`.
    pub command: String,
    /// Everything after the command, as typed (may be empty).
    pub text: String,
    pub user_id: String,
    /// Slack's (legacy) user name; empty when Slack leaves it out. Not for access checks:
    /// match on `user_id`.
    pub user_name: String,
    pub channel_id: String,
    pub team_id: String,
    /// Where the full answer goes (up to 5 times within 30 minutes).
    pub response_url: String,
    /// For opening a modal within 3 seconds.
    pub trigger_id: String,
    pub enterprise_id: Option<String>,
    pub api_app_id: Option<String>,
}

/// A button press (or menu choice) in a message, from an interactive `block_actions` payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockAction {
    pub user_id: String,
    pub user_name: Option<String>,
    pub team_id: Option<String>,
    /// The channel of the message the action was in (`channel.id`, else
    /// `container.channel_id`); `None` for actions outside messages (modals, App Home).
    pub channel_id: Option<String>,
    /// The `ts` of that message (`container.message_ts`, else `message.ts`), for
    /// `chat.update`.
    pub message_ts: Option<String>,
    /// Where to answer; `None` outside messages.
    pub response_url: Option<String>,
    pub trigger_id: Option<String>,
    /// At least one.
    pub actions: Vec<SlackAction>,
}

/// One action of a [`BlockAction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackAction {
    pub action_id: String,
    pub block_id: Option<String>,
    /// A button's `value`, or a select menu's `selected_option.value`.
    pub value: Option<String>,
    /// `button`, `static_select`, ...
    pub action_type: Option<String>,
    pub action_ts: Option<String>,
}

/// Longest field name echoed in an error, so a hostile key cannot make a huge message.
const MAX_ECHOED_NAME: usize = 40;

fn echoed_name(name: &str) -> String {
    let mut shown: String = name.chars().take(MAX_ECHOED_NAME).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    shown
}

/// Decodes an `application/x-www-form-urlencoded` body into its fields. Percent-decoded
/// bytes that are not UTF-8 become U+FFFD, as with every form parser.
fn form_fields(body: &[u8]) -> Result<BTreeMap<String, String>, SlackPayloadError> {
    if body.is_empty() {
        return Err(SlackPayloadError::EmptyBody);
    }
    let text = std::str::from_utf8(body).map_err(|error| SlackPayloadError::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    if !text.split('&').any(|pair| pair.contains('=')) {
        return Err(SlackPayloadError::NotAForm);
    }
    let mut fields = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if fields.contains_key(key.as_ref()) {
            return Err(SlackPayloadError::DuplicateField {
                field: echoed_name(&key),
            });
        }
        fields.insert(key.into_owned(), value.into_owned());
    }
    Ok(fields)
}

fn required(
    fields: &mut BTreeMap<String, String>,
    name: &str,
) -> Result<String, SlackPayloadError> {
    match fields.remove(name) {
        None => Err(SlackPayloadError::MissingField {
            field: name.to_owned(),
        }),
        Some(value) if value.trim().is_empty() => Err(SlackPayloadError::InvalidField {
            field: name.to_owned(),
            reason: "is empty".to_owned(),
        }),
        Some(value) => Ok(value),
    }
}

fn optional(fields: &mut BTreeMap<String, String>, name: &str) -> Option<String> {
    fields.remove(name).filter(|value| !value.trim().is_empty())
}

/// Checks a `response_url` is an absolute http(s) URL; the reason never repeats the URL,
/// whose path is a credential.
fn check_response_url(field: &str, value: &str) -> Result<Url, SlackPayloadError> {
    let invalid = |reason: &str| SlackPayloadError::InvalidField {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(value).map_err(|_| invalid("is not an absolute URL"))?;
    match url.scheme() {
        "https" | "http" if url.host_str().is_some() => Ok(url),
        _ => Err(invalid("is not an http(s) URL with a host")),
    }
}

/// Parses a slash command's form body (`command`, `text`, `user_id`, `user_name`,
/// `channel_id`, `team_id`, `response_url`, `trigger_id`, ...). Call only after the request
/// was verified. `text` may be absent or empty; the others are required (`user_name` is
/// empty when absent).
pub fn parse_slash_command(body: &[u8]) -> Result<SlashCommand, SlackPayloadError> {
    slash_command_from_fields(form_fields(body)?)
}

/// Reads the `payload` of a Socket Mode `slash_commands` envelope: a JSON object with the
/// same fields as the form body (Slack sends them as strings; a number or a boolean is read
/// as its text). Same rules as [`parse_slash_command`].
pub fn slash_command_from_json(payload: &Value) -> Result<SlashCommand, SlackPayloadError> {
    let Value::Object(object) = payload else {
        return Err(SlackPayloadError::InvalidJson {
            path: "payload".to_owned(),
            message: "expected a JSON object".to_owned(),
        });
    };
    let mut fields = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text.clone(),
            Value::Bool(_) | Value::Number(_) => value.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(SlackPayloadError::InvalidField {
                    field: format!("payload.{}", echoed_name(key)),
                    reason: "is not a string".to_owned(),
                });
            }
        };
        fields.insert(key.clone(), text);
    }
    slash_command_from_fields(fields)
}

fn slash_command_from_fields(
    mut fields: BTreeMap<String, String>,
) -> Result<SlashCommand, SlackPayloadError> {
    let command = required(&mut fields, "command")?;
    if !command.starts_with('/') {
        return Err(SlackPayloadError::InvalidField {
            field: "command".to_owned(),
            reason: "does not start with '/'".to_owned(),
        });
    }
    let response_url = required(&mut fields, "response_url")?;
    check_response_url("response_url", &response_url)?;
    Ok(SlashCommand {
        command,
        text: fields.remove("text").unwrap_or_default(),
        user_id: required(&mut fields, "user_id")?,
        user_name: fields.remove("user_name").unwrap_or_default(),
        channel_id: required(&mut fields, "channel_id")?,
        team_id: required(&mut fields, "team_id")?,
        response_url,
        trigger_id: required(&mut fields, "trigger_id")?,
        enterprise_id: optional(&mut fields, "enterprise_id"),
        api_app_id: optional(&mut fields, "api_app_id"),
    })
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<RawUser>,
    team: Option<RawId>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    message: Option<RawMessage>,
    response_url: Option<String>,
    trigger_id: Option<String>,
    actions: Option<Vec<RawAction>>,
}

#[derive(Deserialize)]
struct RawUser {
    id: Option<String>,
    username: Option<String>,
    name: Option<String>,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct RawId {
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer {
    message_ts: Option<String>,
    channel_id: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    ts: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: Option<String>,
    block_id: Option<String>,
    value: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    action_ts: Option<String>,
    selected_option: Option<RawOption>,
}

#[derive(Deserialize)]
struct RawOption {
    value: Option<String>,
}

fn present(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

/// Parses an interactive body (`payload=<JSON>`) of type `block_actions`. Call only after
/// the request was verified. Other interaction types are
/// [`SlackPayloadError::UnsupportedType`].
pub fn parse_block_actions(body: &[u8]) -> Result<BlockAction, SlackPayloadError> {
    let mut fields = form_fields(body)?;
    let payload = required(&mut fields, "payload")?;
    // serde would also read a struct from a JSON array; Slack sends an object.
    if !payload.trim_start().starts_with('{') {
        return Err(not_an_object());
    }
    block_actions_from(&mut serde_json::Deserializer::from_str(&payload))
}

/// Reads the `payload` of a Socket Mode `interactive` envelope of type `block_actions`: the
/// same JSON object the HTTP form carries in its `payload` field. Same rules as
/// [`parse_block_actions`].
pub fn block_actions_from_json(payload: &Value) -> Result<BlockAction, SlackPayloadError> {
    if !payload.is_object() {
        return Err(not_an_object());
    }
    block_actions_from(payload)
}

fn not_an_object() -> SlackPayloadError {
    SlackPayloadError::InvalidJson {
        path: "payload".to_owned(),
        message: "expected a JSON object".to_owned(),
    }
}

fn block_actions_from<'de, D>(deserializer: D) -> Result<BlockAction, SlackPayloadError>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    let raw: RawInteraction = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // serde_path_to_error says `?` or `.` for the top level.
        let path = match error.path().to_string() {
            top if top == "?" || top == "." => "payload".to_owned(),
            index if index.starts_with('[') => format!("payload{index}"),
            inner => format!("payload.{inner}"),
        };
        SlackPayloadError::InvalidJson {
            path,
            message: error.into_inner().to_string(),
        }
    })?;
    let missing = |field: &str| SlackPayloadError::MissingField {
        field: format!("payload.{field}"),
    };
    match raw.kind.as_deref() {
        Some("block_actions") => {}
        Some(other) => {
            return Err(SlackPayloadError::UnsupportedType {
                found: echoed_name(other),
            });
        }
        None => return Err(missing("type")),
    }
    let user = raw.user.ok_or_else(|| missing("user"))?;
    let user_id = present(user.id).ok_or_else(|| missing("user.id"))?;
    let raw_actions = raw.actions.ok_or_else(|| missing("actions"))?;
    if raw_actions.is_empty() {
        return Err(SlackPayloadError::InvalidField {
            field: "payload.actions".to_owned(),
            reason: "is empty; a block_actions payload carries at least one action".to_owned(),
        });
    }
    let actions = raw_actions
        .into_iter()
        .enumerate()
        .map(|(index, action)| {
            Ok(SlackAction {
                action_id: present(action.action_id)
                    .ok_or_else(|| missing(&format!("actions[{index}].action_id")))?,
                block_id: present(action.block_id),
                value: action
                    .value
                    .or_else(|| action.selected_option.and_then(|option| option.value)),
                action_type: present(action.kind),
                action_ts: present(action.action_ts),
            })
        })
        .collect::<Result<Vec<_>, SlackPayloadError>>()?;
    let response_url = present(raw.response_url);
    if let Some(url) = &response_url {
        check_response_url("payload.response_url", url)?;
    }
    let (container_channel, container_ts) = raw
        .container
        .map(|container| (container.channel_id, container.message_ts))
        .unwrap_or_default();
    Ok(BlockAction {
        user_id,
        user_name: present(user.username).or(present(user.name)),
        team_id: present(user.team_id).or(raw.team.and_then(|team| present(team.id))),
        channel_id: raw
            .channel
            .and_then(|channel| present(channel.id))
            .or(present(container_channel)),
        message_ts: present(container_ts).or(raw.message.and_then(|message| present(message.ts))),
        response_url,
        trigger_id: present(raw.trigger_id),
        actions,
    })
}

// ---- Web API client ----

/// A message Slack accepted: where it is, for threading and `chat.update`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PostedMessage {
    /// The channel id (Slack answers with the id even when posted by name).
    pub channel: String,
    pub ts: String,
}

/// Spaces posts to each channel at least `interval` apart; each channel has its own next
/// allowed instant, so a burst to one channel does not delay another. The slot is reserved
/// under the lock and awaited outside it, so concurrent posts to a channel go in order.
pub(crate) struct ChannelLimiter {
    interval: Duration,
    /// Next instant a post to each channel may start. Entries in the past impose nothing
    /// and are dropped once the map grows, so it stays small.
    next_allowed: Mutex<HashMap<String, Instant>>,
}

/// Channels remembered before past entries are swept.
const CHANNEL_SWEEP_THRESHOLD: usize = 64;

impl ChannelLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            next_allowed: Mutex::new(HashMap::new()),
        }
    }

    fn next_allowed(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.next_allowed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for this channel's next slot and takes it.
    pub(crate) async fn acquire(&self, channel: &str) {
        let slot = {
            let mut next_allowed = self.next_allowed();
            let now = Instant::now();
            if next_allowed.len() > CHANNEL_SWEEP_THRESHOLD {
                next_allowed.retain(|_, next| *next > now);
            }
            let slot = next_allowed
                .get(channel)
                .map_or(now, |next| (*next).max(now));
            next_allowed.insert(channel.to_owned(), slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Pushes the channel's next slot to at least `by` from now (Slack said `Retry-After`).
    pub(crate) fn defer(&self, channel: &str, by: Duration) {
        let until = Instant::now() + by;
        let mut next_allowed = self.next_allowed();
        let next = next_allowed.entry(channel.to_owned()).or_insert(until);
        *next = (*next).max(until);
    }

    #[cfg(test)]
    pub(crate) fn tracked_channels(&self) -> usize {
        self.next_allowed().len()
    }
}

/// Slack Web API client: `chat.postMessage`, `chat.update`, and answers to a `response_url`.
pub struct SlackClient {
    /// Web API calls; sends the bot token.
    api: HttpCore,
    /// `response_url` posts; never sends the token (the URL is the credential).
    responses: HttpCore,
    api_base_url: String,
    channels: ChannelLimiter,
}

impl SlackClient {
    /// `api_base_url` is the Web API root ([`SLACK_API_BASE_URL`], or the sim's
    /// `slack_api_url()`); `requests_per_second` spaces all calls of this client; posts to
    /// one channel are further spaced by [`DEFAULT_CHANNEL_INTERVAL`] (see
    /// [`SlackClient::with_channel_interval`]).
    pub fn new(
        api_base_url: &str,
        bot_token: Secret,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, api_base_url, "chat.postMessage")?;
        let token = bot_token.expose();
        if token.trim().is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE}: the bot token is empty; set the app's Bot User OAuth Token (xoxb-...)"
                ),
            });
        }
        if !token.starts_with("xoxb-") {
            warn!(
                source = SOURCE,
                "the Slack token does not start with xoxb-; chat.postMessage as a bot needs the Bot User OAuth Token"
            );
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE}: the bot token contains characters not allowed in an Authorization header"
                ),
            }
        })?;
        authorization.set_sensitive(true);
        let mut api_headers = HeaderMap::new();
        api_headers.insert(AUTHORIZATION, authorization);
        let api = HttpCore::new(
            SOURCE,
            requests_per_second,
            retry.clone(),
            api_headers,
            Some(bot_token.clone()),
        )?
        .with_max_body_bytes(MAX_ANSWER_BYTES);
        let responses = HttpCore::new(
            SOURCE,
            requests_per_second,
            retry,
            HeaderMap::new(),
            Some(bot_token),
        )?
        .with_max_body_bytes(MAX_ANSWER_BYTES);
        Ok(Self {
            api,
            responses,
            api_base_url: api_base_url.to_owned(),
            channels: ChannelLimiter::new(DEFAULT_CHANNEL_INTERVAL),
        })
    }

    /// Spaces posts to one channel `interval` apart instead of one second.
    pub fn with_channel_interval(mut self, interval: Duration) -> Self {
        self.channels = ChannelLimiter::new(interval);
        self
    }

    pub fn source(&self) -> &'static str {
        SOURCE
    }

    /// `chat.postMessage`: posts `text` (the notification fallback) and optional Block Kit
    /// `blocks` (a JSON array) to `channel` (an id like `C0123ABCD` is best: the per-channel
    /// spacing is keyed by the string given). Waits for the channel's slot first; retried
    /// only when Slack refused it (`ratelimited`/429, after `Retry-After`), never after a
    /// timeout or a server error, so a message is not posted twice.
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<Fetched<PostedMessage>, SourceError> {
        let method = "chat.postMessage";
        check_channel(method, channel)?;
        let body = message_body(method, channel, None, text, blocks)?;
        let url = join_url(SOURCE, &self.api_base_url, method)?;
        let started = Instant::now();
        self.channels.acquire(channel).await;
        let mut fetched = self
            .api
            .post_json(&url, method, &body, |answer| {
                let result = interpret_api::<PostedMessage>(answer, method);
                if let Err(SourceError::RateLimited {
                    retry_after: Some(after),
                    ..
                }) = &result
                {
                    // The refused post is sent again after `after` and takes that slot;
                    // the next post to this channel comes one interval later.
                    self.channels
                        .defer(channel, after.saturating_add(self.channels.interval));
                }
                result
            })
            .await?;
        // The wait for the channel's slot is rate limiting too.
        fetched.latency = started.elapsed();
        Ok(fetched)
    }

    /// `chat.update`: replaces the text and blocks of the message at (`channel`, `ts`), e.g.
    /// to show who approved. Not spaced per channel (Slack limits it per workspace); the
    /// client-wide rate and `Retry-After` still apply.
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<Fetched<PostedMessage>, SourceError> {
        let method = "chat.update";
        check_channel(method, channel)?;
        if ts.trim().is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE} {method}: ts is empty; pass the ts chat.postMessage returned"
                ),
            });
        }
        let body = message_body(method, channel, Some(ts), text, blocks)?;
        let url = join_url(SOURCE, &self.api_base_url, method)?;
        self.api
            .post_json(&url, method, &body, |answer| {
                interpret_api::<PostedMessage>(answer, method)
            })
            .await
    }

    /// POSTs `body` (`{"text": ..., "blocks": [...], "response_type": "ephemeral" |
    /// "in_channel", "replace_original": bool}`) to a `response_url` from a slash command or
    /// an interaction. No token is sent: the URL is the credential, so it is never printed
    /// either (messages show only its host).
    pub async fn respond(
        &self,
        response_url: &str,
        body: &Value,
    ) -> Result<Fetched<()>, SourceError> {
        let url = check_response_url("response_url", response_url).map_err(|error| {
            SourceError::InvalidInput {
                detail: format!("{SOURCE} respond: {error}"),
            }
        })?;
        if !body.is_object() {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE} respond: the body must be a JSON object like {{\"text\": \"...\"}}"
                ),
            });
        }
        let shown_as = format!("response_url on {}", url.host_str().unwrap_or("?"));
        self.responses
            .post_json(&url, &shown_as, body, interpret_response_url)
            .await
    }
}

/// Largest answer read from Slack; real ones are a few KiB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

fn check_channel(method: &str, channel: &str) -> Result<(), SourceError> {
    if channel.trim().is_empty() || channel.chars().any(char::is_whitespace) {
        return Err(SourceError::InvalidInput {
            detail: format!(
                "{SOURCE} {method}: channel {channel:?} is not a channel id; use the id (C0123ABCD) from the channel's details"
            ),
        });
    }
    Ok(())
}

fn message_body(
    method: &str,
    channel: &str,
    ts: Option<&str>,
    text: &str,
    blocks: Option<Value>,
) -> Result<Value, SourceError> {
    match &blocks {
        Some(Value::Array(_)) => {}
        Some(_) => {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE} {method}: blocks must be a JSON array of Block Kit blocks"
                ),
            });
        }
        None if text.trim().is_empty() => {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} {method}: give text, blocks or both; both are empty"),
            });
        }
        None => {}
    }
    let mut body = json!({"channel": channel, "text": text});
    if let Some(ts) = ts {
        body["ts"] = json!(ts);
    }
    if let Some(blocks) = blocks {
        body["blocks"] = blocks;
    }
    Ok(body)
}

/// Slack's envelope: every Web API answer has `ok`, failures an `error` code.
#[derive(Deserialize)]
struct Envelope {
    ok: Option<bool>,
    error: Option<String>,
    warning: Option<String>,
}

/// A Slack error code, cut to a sane length and to the characters codes use, since it is
/// echoed in messages.
fn clean_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

fn hint(code: &str) -> &'static str {
    match code {
        "channel_not_found" => {
            "the channel does not exist, or it is private and the app is not in it; use the channel id (C0123ABCD) and invite the app"
        }
        "not_in_channel" => "the app is not a member of the channel; invite it (/invite @app)",
        "is_archived" => "the channel is archived; unarchive it or route to another channel",
        "msg_too_long" => "the text is too long; split the message",
        "no_text" => "the message has neither text nor blocks",
        "invalid_blocks" | "invalid_blocks_format" | "too_many_blocks" => {
            "the blocks do not follow Block Kit (at most 50 blocks, valid types and fields)"
        }
        "message_not_found" => "no message with that ts in that channel",
        "cant_update_message" | "edit_window_closed" => "this message cannot be edited by the app",
        "not_authed"
        | "invalid_auth"
        | "token_revoked"
        | "token_expired"
        | "account_inactive"
        | "not_allowed_token_type" => {
            "the bot token is missing, invalid or revoked; set a current Bot User OAuth Token (xoxb-...)"
        }
        "missing_scope"
        | "no_permission"
        | "access_denied"
        | "team_access_not_granted"
        | "ekm_access_denied"
        | "restricted_action" => {
            "the app lacks a permission; add the chat:write scope (and reinstall the app) or ask a workspace admin"
        }
        _ => "see the method's error list at https://api.slack.com/methods",
    }
}

fn slack_error(answer: &HttpAnswer, code: &str) -> SourceError {
    let code = clean_code(code);
    let message = format!(
        "{}: Slack answered {code} (HTTP {}): {}",
        answer.origin,
        answer.status,
        hint(&code)
    );
    match code.as_str() {
        "ratelimited" | "rate_limited" => SourceError::RateLimited {
            retry_after: answer.retry_after,
            message,
        },
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            SourceError::Unavailable {
                status: answer.status,
                message,
            }
        }
        _ => SourceError::Rejected {
            status: answer.status,
            message,
        },
    }
}

fn envelope(answer: &HttpAnswer) -> Option<Envelope> {
    serde_json::from_slice::<Envelope>(&answer.body).ok()
}

/// HTTP-level failures common to the Web API and `response_url`.
fn http_failure(answer: &HttpAnswer) -> Option<SourceError> {
    let code = envelope(answer).and_then(|envelope| envelope.error);
    match (answer.status, code) {
        (200..=299, _) => None,
        (429, _) => Some(SourceError::RateLimited {
            retry_after: answer.retry_after,
            message: format!("{}: Slack answered HTTP 429 ratelimited", answer.origin),
        }),
        (status @ 500..=599, code) => Some(SourceError::Unavailable {
            status,
            message: match code {
                Some(code) => format!("{}: Slack answered {}", answer.origin, clean_code(&code)),
                None => format!(
                    "{}: HTTP {status}; body starts with {:?}",
                    answer.origin,
                    answer.snippet()
                ),
            },
        }),
        (_, Some(code)) => Some(slack_error(answer, &code)),
        (status, None) => Some(SourceError::Rejected {
            status,
            message: format!(
                "{}: HTTP {status}; body starts with {:?}",
                answer.origin,
                answer.snippet()
            ),
        }),
    }
}

fn interpret_api<T: DeserializeOwned>(answer: HttpAnswer, method: &str) -> Result<T, SourceError> {
    if let Some(error) = http_failure(&answer) {
        return Err(error);
    }
    answer.ensure_json()?;
    let envelope: Envelope = answer.parse_json()?;
    match (envelope.ok, envelope.error) {
        (Some(true), _) => {}
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
    if let Some(warning) = envelope.warning {
        debug!(source = SOURCE, method, warning = %clean_code(&warning), "Slack answered with a warning");
    }
    answer.parse_json()
}

/// A `response_url` answers `ok` (plain text) or `{"ok": true}`; failures are a JSON or
/// plain-text code, with HTTP 404 once the URL expired.
fn interpret_response_url(answer: HttpAnswer) -> Result<(), SourceError> {
    if answer.status == 404 {
        return Err(SourceError::Rejected {
            status: 404,
            message: format!(
                "{}: HTTP 404: the response_url is unknown, expired or used up (Slack takes 5 answers within 30 minutes); post with chat.postMessage instead",
                answer.origin
            ),
        });
    }
    if let Some(error) = http_failure(&answer) {
        return Err(error);
    }
    let text = String::from_utf8_lossy(&answer.body);
    let text = text.trim();
    if text.is_empty() || text == "ok" {
        return Ok(());
    }
    match envelope(&answer) {
        Some(Envelope { ok: Some(true), .. }) => Ok(()),
        Some(Envelope {
            error: Some(code), ..
        }) => Err(slack_error(&answer, &code)),
        _ => Err(SourceError::InvalidResponse {
            detail: format!(
                "{}: expected `ok` or {{\"ok\": true}}; body starts with {:?}",
                answer.origin,
                answer.snippet()
            ),
        }),
    }
}

#[cfg(test)]
mod tests;

//! A simulated Telegram Bot API: `/telegram/bot{token}/{method}` (GET with a query string or
//! POST with a JSON body, as the real API takes them) for `getUpdates` (offset confirms,
//! `limit`, long polling with `timeout`, and a newer `getUpdates` ends a waiting one with
//! the real 409 "terminated by other getUpdates request"), `sendMessage`, `editMessageText`,
//! `answerCallbackQuery`, `setMyCommands` and `getMe`. Every call the sim answers is
//! recorded (parameters, HTTP status; never the token), served under `telegram` in
//! `GET /_sim/state` and read with [`SimHandle::telegram_calls`](super::SimHandle::telegram_calls).
//!
//! Updates are injected with `POST /_sim/telegram/update` and a [`TelegramInjected`]
//! (`{"message": {...}}` or `{"callback_query": {...}}`); the sim builds the real update
//! JSON around them.
//!
//! Like the real API, failures are `{"ok": false, "error_code", "description"}` with the
//! same HTTP status: 404 "Not Found" for a malformed token or unknown method, 401
//! "Unauthorized" for a token containing `revoked`, 400 for a missing chat or text, text
//! over 4096 characters, MarkdownV2 with an unescaped reserved character (`#+-={}.!`
//! outside code), callback data over 64 bytes, a message to edit that was never sent, an
//! edit that changes nothing, an unknown or already answered callback query, and invalid
//! bot commands. Faults (service `telegram`): `rate_limit` answers 429 with
//! `parameters.retry_after`, `conflict` answers `getUpdates` with 409. Flood limits are
//! not modelled otherwise: the sim accepts any pace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::scenario::SimService;
use super::server::serve;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/telegram/{bot_token}/{method}", any(bot_method))
        .route("/_sim/telegram/update", post(control_update))
}

/// The sim bot's own user.
const SIM_BOT_ID: i64 = 7_000_000_001;
const SIM_BOT_USERNAME: &str = "sim_ops_bot";
/// First update id handed out; real ids are large positive numbers.
const FIRST_UPDATE_ID: i64 = 544_181_600;
/// Longest long poll the sim holds a request for, whatever `timeout` asks.
const MAX_LONG_POLL: Duration = Duration::from_secs(50);
const MAX_TEXT_CHARS: usize = 4096;
const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// One Bot API call the sim answered.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TelegramCall {
    /// Wall clock, not sim time: spacing between sends is real.
    pub received_at: DateTime<Utc>,
    /// The method as called (`sendMessage`).
    pub method: String,
    /// The parameters (JSON body, or the query string as strings).
    pub params: Value,
    /// HTTP status of the answer (`error_code` on failure).
    pub status: u16,
}

/// An update to inject: what a user did. The sim wraps it in the real update JSON.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TelegramInjected {
    /// A user wrote `text` in `chat_id`.
    Message {
        chat_id: i64,
        user_id: i64,
        #[serde(default)]
        username: Option<String>,
        text: String,
    },
    /// A user pressed an inline button with `data` under the bot's message `message_id`.
    CallbackQuery {
        chat_id: i64,
        user_id: i64,
        #[serde(default)]
        username: Option<String>,
        message_id: i32,
        data: String,
    },
}

/// The bot's records, owned by `World` behind their own lock (never held across an await).
pub(crate) struct TelegramBotState {
    state: Mutex<BotState>,
    /// Bumped on every recorded call, injected update and new `getUpdates`; long polls and
    /// `wait_for_telegram` wait on it.
    changed: watch::Sender<u64>,
}

struct BotState {
    calls: Vec<TelegramCall>,
    /// Unconfirmed updates, oldest first.
    pending: Vec<(i64, Value)>,
    next_update_id: i64,
    next_message_id: i32,
    /// (chat_id, message_id) → (text, reply_markup) of every message the bot sent.
    messages: BTreeMap<(i64, i32), (String, Option<Value>)>,
    /// Callback query ids injected and not answered yet.
    open_callbacks: BTreeSet<String>,
    next_callback_id: u64,
    commands: Value,
    /// Counts `getUpdates` calls: a waiting poll that sees it move was superseded.
    poll_generation: u64,
    /// `setWebhook`'s URL and secret token: updates are pushed there instead of polled.
    webhook: Option<(String, Option<String>)>,
    /// Whether the task pushing updates to the webhook runs.
    pushing: bool,
    /// Every push to the webhook: (update_id, HTTP status; 0 when it could not connect).
    webhook_deliveries: Vec<(i64, u16)>,
}

impl Default for BotState {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            pending: Vec::new(),
            next_update_id: FIRST_UPDATE_ID,
            next_message_id: 100,
            messages: BTreeMap::new(),
            open_callbacks: BTreeSet::new(),
            next_callback_id: 1_445_037_213_726_431_234,
            commands: json!([]),
            poll_generation: 0,
            webhook: None,
            pushing: false,
            webhook_deliveries: Vec::new(),
        }
    }
}

impl Default for TelegramBotState {
    fn default() -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            state: Mutex::new(BotState::default()),
            changed,
        }
    }
}

impl TelegramBotState {
    fn state(&self) -> MutexGuard<'_, BotState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    pub(crate) fn calls(&self) -> Vec<TelegramCall> {
        self.state().calls.clone()
    }

    /// What `/_sim/state` shows under `telegram`.
    pub(crate) fn state_json(&self) -> Value {
        let state = self.state();
        let messages: Vec<Value> = state
            .messages
            .iter()
            .map(|((chat_id, message_id), (text, markup))| {
                json!({"chat_id": chat_id, "message_id": message_id, "text": text, "reply_markup": markup})
            })
            .collect();
        json!({
            "calls_received": state.calls.len(),
            "calls": state.calls,
            "pending_updates": state.pending.len(),
            "messages": messages,
            "commands": state.commands,
        })
    }

    /// Queues an update; returns its `update_id`.
    pub(crate) fn inject(&self, injected: &TelegramInjected, now: DateTime<Utc>) -> i64 {
        let mut state = self.state();
        let update_id = state.next_update_id;
        state.next_update_id += 1;
        let date = now.timestamp();
        let update = match injected {
            TelegramInjected::Message {
                chat_id,
                user_id,
                username,
                text,
            } => {
                let mut message = json!({
                    "message_id": state.next_message_id,
                    "from": user_json(*user_id, username.as_deref()),
                    "chat": chat_json(*chat_id, username.as_deref()),
                    "date": date,
                    "text": text,
                });
                state.next_message_id += 1;
                if let Some(command) = text.split_whitespace().next()
                    && command.starts_with('/')
                {
                    message["entities"] = json!([{
                        "offset": 0,
                        "length": command.encode_utf16().count(),
                        "type": "bot_command",
                    }]);
                }
                json!({"update_id": update_id, "message": message})
            }
            TelegramInjected::CallbackQuery {
                chat_id,
                user_id,
                username,
                message_id,
                data,
            } => {
                let (text, markup) = state
                    .messages
                    .get(&(*chat_id, *message_id))
                    .cloned()
                    .unwrap_or_else(|| ("(a message the sim did not send)".to_owned(), None));
                let mut message = json!({
                    "message_id": message_id,
                    "from": bot_user_json(),
                    "chat": chat_json(*chat_id, username.as_deref()),
                    "date": date,
                    "text": text,
                });
                if let Some(markup) = markup {
                    message["reply_markup"] = markup;
                }
                let id = state.next_callback_id.to_string();
                state.next_callback_id += 1;
                state.open_callbacks.insert(id.clone());
                json!({"update_id": update_id, "callback_query": {
                    "id": id,
                    "from": user_json(*user_id, username.as_deref()),
                    "message": message,
                    "chat_instance": format!("-{}", chat_id.unsigned_abs() ^ 0x5eed),
                    "data": data,
                }})
            }
        };
        state.pending.push((update_id, update));
        drop(state);
        self.bump();
        update_id
    }
}

impl super::SimHandle {
    /// The Bot API root the sim serves (`TelegramClient::new` api url).
    pub fn telegram_api_url(&self) -> String {
        format!("{}/telegram", self.base_url())
    }

    /// Queues an update for `getUpdates`; returns its `update_id`.
    pub fn telegram_inject(&self, injected: TelegramInjected) -> i64 {
        let world = &self.inner.world;
        world.telegram.inject(&injected, world.now())
    }

    /// Bot API calls answered, in arrival order.
    pub fn telegram_calls(&self) -> Vec<TelegramCall> {
        self.inner.world.telegram.calls()
    }

    /// Webhook pushes so far: (update_id, HTTP status the bot answered; 0: no connection).
    pub fn telegram_webhook_deliveries(&self) -> Vec<(i64, u16)> {
        self.inner.world.telegram.state().webhook_deliveries.clone()
    }

    /// Waits until at least `count` webhook pushes were answered 2xx or `timeout` passed;
    /// returns every push so far.
    pub async fn wait_for_telegram_webhook(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<(i64, u16)> {
        let telegram = &self.inner.world.telegram;
        let mut changed = telegram.changed.subscribe();
        let delivered = || {
            telegram
                .state()
                .webhook_deliveries
                .iter()
                .filter(|(_, status)| (200..300).contains(status))
                .count()
        };
        // Timeout or a closed channel both end the wait; the caller checks the length.
        let _ = tokio::time::timeout(timeout, async {
            while delivered() < count {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.telegram_webhook_deliveries()
    }

    /// Waits until at least `count` calls of `method` were answered or `timeout` passed;
    /// returns those calls (possibly fewer than `count`).
    pub async fn wait_for_telegram(
        &self,
        method: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<TelegramCall> {
        let telegram = &self.inner.world.telegram;
        let mut changed = telegram.changed.subscribe();
        let matching = || {
            telegram
                .calls()
                .into_iter()
                .filter(|call| call.method == method)
                .collect::<Vec<_>>()
        };
        // Timeout or a closed channel both end the wait; the caller checks the length.
        let _ = tokio::time::timeout(timeout, async {
            while matching().len() < count {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        matching()
    }
}

fn user_json(user_id: i64, username: Option<&str>) -> Value {
    let mut user = json!({
        "id": user_id,
        "is_bot": false,
        "first_name": username.unwrap_or("User"),
        "language_code": "en",
    });
    if let Some(username) = username {
        user["username"] = json!(username);
    }
    user
}

fn bot_user_json() -> Value {
    json!({"id": SIM_BOT_ID, "is_bot": true, "first_name": "SimOps", "username": SIM_BOT_USERNAME})
}

/// Positive ids are private chats, negative ones groups, as on Telegram.
fn chat_json(chat_id: i64, username: Option<&str>) -> Value {
    if chat_id > 0 {
        let mut chat =
            json!({"id": chat_id, "type": "private", "first_name": username.unwrap_or("User")});
        if let Some(username) = username {
            chat["username"] = json!(username);
        }
        chat
    } else {
        json!({"id": chat_id, "type": "supergroup", "title": format!("Sim group {chat_id}")})
    }
}

type Answer = (StatusCode, Value);

fn api_error(status: StatusCode, description: &str) -> Answer {
    (
        status,
        json!({"ok": false, "error_code": status.as_u16(), "description": description}),
    )
}

fn bad_request(description: &str) -> Answer {
    api_error(
        StatusCode::BAD_REQUEST,
        &format!("Bad Request: {description}"),
    )
}

fn ok(result: Value) -> Answer {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

/// The body of a 429, for the sim's `rate_limit` fault.
pub(crate) fn rate_limited_body(retry_after_seconds: Option<u64>) -> Value {
    match retry_after_seconds {
        Some(seconds) => json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {seconds}"),
            "parameters": {"retry_after": seconds},
        }),
        None => json!({"ok": false, "error_code": 429, "description": "Too Many Requests"}),
    }
}

/// The real 409 a superseded poller gets.
pub(crate) fn conflict_answer() -> Answer {
    api_error(
        StatusCode::CONFLICT,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    )
}

/// Bot tokens look like `123456:ABC-def_...`; anything else is a path Telegram does not know.
fn token_problem(segment: &str) -> Option<Answer> {
    let Some(token) = segment.strip_prefix("bot") else {
        return Some(api_error(StatusCode::NOT_FOUND, "Not Found"));
    };
    let well_formed = token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !well_formed {
        return Some(api_error(StatusCode::NOT_FOUND, "Not Found"));
    }
    if token.contains("revoked") {
        return Some(api_error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    None
}

/// Parameters from a JSON object body, else from the query string.
fn params_of(headers: &HeaderMap, body: &[u8], query: BTreeMap<String, String>) -> Value {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("json"));
    if is_json && let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(body) {
        return value;
    }
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
        .and_then(|value| value.split("boundary=").nth(1))
        .map(|boundary| boundary.trim_matches('"').to_owned());
    if let Some(boundary) = boundary {
        return multipart_params(body, &boundary);
    }
    json!(query)
}

/// The text fields of a `multipart/form-data` body (teloxide sends setWebhook so); values that
/// hold JSON arrays or objects are read as JSON.
fn multipart_params(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut params = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed = match serde_json::from_str::<Value>(value) {
            Ok(json @ (Value::Array(_) | Value::Object(_))) => json,
            _ => Value::String(value.to_owned()),
        };
        params.insert(name.to_owned(), parsed);
    }
    Value::Object(params)
}

/// An integer parameter given as a JSON number or a numeric string.
fn int_param(params: &Value, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn str_param(params: &Value, name: &str) -> Option<String> {
    params.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// `reply_markup`, as an object (a query string carries it as a JSON string).
fn markup_param(params: &Value) -> Result<Option<Value>, Answer> {
    let markup = match params.get("reply_markup") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|_| bad_request("can't parse reply keyboard markup JSON object"))?,
        Some(other) => other.clone(),
    };
    let Some(rows) = markup.get("inline_keyboard").and_then(Value::as_array) else {
        return Err(bad_request("can't parse reply keyboard markup JSON object"));
    };
    for row in rows {
        let Some(buttons) = row.as_array() else {
            return Err(bad_request(
                "field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
            ));
        };
        for button in buttons {
            if button.get("text").and_then(Value::as_str).is_none() {
                return Err(bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ));
            }
            match (
                button.get("callback_data").and_then(Value::as_str),
                button.get("url").and_then(Value::as_str),
            ) {
                (Some(data), _) if data.is_empty() || data.len() > MAX_CALLBACK_DATA_BYTES => {
                    return Err(bad_request("BUTTON_DATA_INVALID"));
                }
                (None, None) => {
                    return Err(bad_request(
                        "can't parse inline keyboard button: InlineKeyboardButton must have exactly one optional field",
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(Some(markup))
}

/// The first MarkdownV2 character that must be escaped and is not: the ones that are never
/// markup (`#+-={}.!`), outside code spans.
fn unescaped_reserved(text: &str) -> Option<char> {
    let mut escaped = false;
    let mut in_code = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '`' => in_code = !in_code,
            '#' | '+' | '-' | '=' | '{' | '}' | '.' | '!' if !in_code => return Some(c),
            _ => {}
        }
    }
    None
}

/// The checks `sendMessage` and `editMessageText` share: text present, not too long, and
/// parseable in the given `parse_mode`.
fn text_param(params: &Value) -> Result<String, Answer> {
    let text = str_param(params, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(bad_request("message is too long"));
    }
    if str_param(params, "parse_mode").as_deref() == Some("MarkdownV2")
        && let Some(c) = unescaped_reserved(&text)
    {
        return Err(bad_request(&format!(
            "can't parse entities: Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )));
    }
    Ok(text)
}

fn message_json(
    chat_id: i64,
    message_id: i32,
    date: i64,
    text: &str,
    markup: &Option<Value>,
) -> Value {
    let mut message = json!({
        "message_id": message_id,
        "from": bot_user_json(),
        "chat": chat_json(chat_id, None),
        "date": date,
        "text": text,
    });
    if let Some(markup) = markup {
        message["reply_markup"] = markup.clone();
    }
    message
}

fn send_message(world: &World, params: &Value) -> Answer {
    let Some(chat_id) = int_param(params, "chat_id") else {
        return bad_request("chat not found");
    };
    let text = match text_param(params) {
        Ok(text) => text,
        Err(refused) => return refused,
    };
    let markup = match markup_param(params) {
        Ok(markup) => markup,
        Err(refused) => return refused,
    };
    let mut state = world.telegram.state();
    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let message = message_json(chat_id, message_id, world.now().timestamp(), &text, &markup);
    state.messages.insert((chat_id, message_id), (text, markup));
    ok(message)
}

fn edit_message_text(world: &World, params: &Value) -> Answer {
    let (Some(chat_id), Some(message_id)) = (
        int_param(params, "chat_id"),
        int_param(params, "message_id").and_then(|id| i32::try_from(id).ok()),
    ) else {
        return bad_request("message to edit not found");
    };
    let text = match text_param(params) {
        Ok(text) => text,
        Err(refused) => return refused,
    };
    let markup = match markup_param(params) {
        Ok(markup) => markup,
        Err(refused) => return refused,
    };
    let mut state = world.telegram.state();
    let Some(current) = state.messages.get_mut(&(chat_id, message_id)) else {
        return bad_request("message to edit not found");
    };
    if current.0 == text && current.1 == markup {
        return bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        );
    }
    *current = (text.clone(), markup.clone());
    ok(message_json(
        chat_id,
        message_id,
        world.now().timestamp(),
        &text,
        &markup,
    ))
}

fn answer_callback_query(world: &World, params: &Value) -> Answer {
    let id = str_param(params, "callback_query_id").unwrap_or_default();
    if !world.telegram.state().open_callbacks.remove(&id) {
        return bad_request("query is too old and response timeout expired or query ID is invalid");
    }
    ok(json!(true))
}

fn set_my_commands(world: &World, params: &Value) -> Answer {
    let commands = match params.get("commands") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let Some(list) = commands.as_array() else {
        return bad_request("parameter \"commands\" is required");
    };
    for command in list {
        let name = command
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let description = command
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return bad_request("BOT_COMMAND_INVALID");
        }
        if !(1..=256).contains(&description.chars().count()) {
            return bad_request("command description must be non-empty");
        }
    }
    world.telegram.state().commands = commands;
    ok(json!(true))
}

fn get_me() -> Answer {
    ok(json!({
        "id": SIM_BOT_ID,
        "is_bot": true,
        "first_name": "SimOps",
        "username": SIM_BOT_USERNAME,
        "can_join_groups": true,
        "can_read_all_group_messages": false,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false,
    }))
}

/// Confirms updates below `offset` and returns up to `limit` pending ones.
fn take_updates(world: &World, offset: Option<i64>, limit: usize) -> Answer {
    let mut state = world.telegram.state();
    if let Some(offset) = offset {
        if offset >= 0 {
            state.pending.retain(|(id, _)| *id >= offset);
        } else {
            // A negative offset keeps the last -offset updates and forgets the rest.
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let drop = state.pending.len().saturating_sub(keep);
            state.pending.drain(..drop);
        }
    }
    let updates: Vec<Value> = state
        .pending
        .iter()
        .take(limit)
        .map(|(_, update)| update.clone())
        .collect();
    ok(Value::Array(updates))
}

fn has_pending(world: &World, offset: Option<i64>) -> bool {
    world
        .telegram
        .state()
        .pending
        .iter()
        .any(|(id, _)| offset.is_none_or(|offset| offset < 0 || *id >= offset))
}

/// Whether a fault would answer this `getUpdates` (then it must not wait first).
fn fault_due(world: &World) -> bool {
    world
        .active_faults()
        .iter()
        .any(|fault| fault.service == SimService::Telegram && fault.kind.hits("getUpdates"))
}

async fn get_updates(world: &World, params: &Value) -> Response {
    let offset = int_param(params, "offset");
    let limit = int_param(params, "limit")
        .map(|limit| limit.clamp(1, 100))
        .unwrap_or(100) as usize;
    let timeout = int_param(params, "timeout").unwrap_or(0).max(0);
    let telegram = &world.telegram;
    let mut changed = telegram.changed.subscribe();
    let generation = {
        let mut state = telegram.state();
        state.poll_generation += 1;
        state.poll_generation
    };
    telegram.bump();
    let mut superseded = false;
    if timeout > 0 && !has_pending(world, offset) && !fault_due(world) {
        let wait = Duration::from_secs(timeout.unsigned_abs()).min(MAX_LONG_POLL);
        // Timeout or a closed channel both end the wait with whatever is pending.
        let _ = tokio::time::timeout(wait, async {
            loop {
                if changed.changed().await.is_err() {
                    return;
                }
                if telegram.state().poll_generation != generation {
                    superseded = true;
                    return;
                }
                if has_pending(world, offset) {
                    return;
                }
            }
        })
        .await;
    }
    let response = serve(world, SimService::Telegram, "getUpdates", || {
        if superseded {
            conflict_answer()
        } else {
            take_updates(world, offset, limit)
        }
    })
    .await;
    record(world, "getUpdates", params, &response);
    response
}

/// Records a call with the status it was answered with, faults included.
fn record(world: &World, method: &str, params: &Value, response: &Response) {
    let telegram = &world.telegram;
    telegram.state().calls.push(TelegramCall {
        received_at: Utc::now(),
        method: method.to_owned(),
        params: params.clone(),
        status: response.status().as_u16(),
    });
    telegram.bump();
}

async fn bot_method(
    State(world): State<Arc<World>>,
    Path((bot_token, method)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = token_problem(&bot_token) {
        return (refused.0, axum::Json(refused.1)).into_response();
    }
    let params = params_of(&headers, &body, query);
    // Methods are case-insensitive on the real API.
    let known = [
        "getUpdates",
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "setMyCommands",
        "getMe",
        "setWebhook",
        "deleteWebhook",
    ];
    let Some(method) = known
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(&method))
    else {
        let answer = api_error(StatusCode::NOT_FOUND, "Not Found");
        return (answer.0, axum::Json(answer.1)).into_response();
    };
    if method == "getUpdates" {
        if world.telegram.state().webhook.is_some() {
            let answer = api_error(
                StatusCode::CONFLICT,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            );
            record(&world, method, &params, &answer.clone().into_http());
            return answer.into_http();
        }
        return get_updates(&world, &params).await;
    }
    if method == "setWebhook" || method == "deleteWebhook" {
        let answer = set_webhook(&world, method, &params);
        let response = answer.into_http();
        record(&world, method, &params, &response);
        return response;
    }
    let response = serve(&world, SimService::Telegram, method, || match method {
        "sendMessage" => send_message(&world, &params),
        "editMessageText" => edit_message_text(&world, &params),
        "answerCallbackQuery" => answer_callback_query(&world, &params),
        "setMyCommands" => set_my_commands(&world, &params),
        _ => get_me(),
    })
    .await;
    record(&world, method, &params, &response);
    response
}

trait IntoHttp {
    fn into_http(self) -> Response;
}

impl IntoHttp for Answer {
    fn into_http(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// `setWebhook` / `deleteWebhook`: while a webhook is set, updates are pushed to it (in order,
/// each until the bot answers 2xx) with the secret token header, as Telegram does.
fn set_webhook(world: &Arc<World>, method: &str, params: &Value) -> Answer {
    let mut state = world.telegram.state();
    if method == "deleteWebhook" {
        state.webhook = None;
        drop(state);
        world.telegram.bump();
        return ok(json!(true));
    }
    let Some(url) = params.get("url").and_then(Value::as_str) else {
        return bad_request("parameter \"url\" is required");
    };
    if !(url.starts_with("https://") || url.starts_with("http://127.0.0.1")) {
        return bad_request("bad webhook: An HTTPS URL must be provided for webhook");
    }
    let secret = params
        .get("secret_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(secret) = &secret
        && (secret.is_empty()
            || secret.len() > 256
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return bad_request("bad webhook: secret token contains unallowed characters");
    }
    state.webhook = Some((url.to_owned(), secret));
    let start = !state.pushing;
    state.pushing = true;
    drop(state);
    if start {
        tokio::spawn(push_updates(world.clone()));
    }
    world.telegram.bump();
    ok(json!(true))
}

/// Pushes pending updates to the webhook, oldest first, until the webhook is deleted.
async fn push_updates(world: Arc<World>) {
    crate::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let telegram = &world.telegram;
    let mut changed = telegram.changed.subscribe();
    loop {
        let (hook, next) = {
            let mut state = telegram.state();
            let Some(hook) = state.webhook.clone() else {
                state.pushing = false;
                return;
            };
            (hook, state.pending.first().cloned())
        };
        let Some((update_id, update)) = next else {
            if changed.changed().await.is_err() {
                return;
            }
            continue;
        };
        let (url, secret) = hook;
        let mut request = client
            .post(&url)
            .timeout(Duration::from_secs(10))
            .json(&update);
        if let Some(secret) = &secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let status = match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        {
            let mut state = telegram.state();
            state.webhook_deliveries.push((update_id, status));
            if (200..300).contains(&status) {
                state.pending.retain(|(id, _)| *id != update_id);
            }
        }
        telegram.bump();
        if !(200..300).contains(&status) {
            // As Telegram: try again later (a new update or a second, whichever first).
            let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
        }
    }
}

async fn control_update(State(world): State<Arc<World>>, body: Bytes) -> Response {
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    match serde_path_to_error::deserialize::<_, TelegramInjected>(&mut deserializer) {
        Ok(injected) => {
            let update_id = world.telegram.inject(&injected, world.now());
            (StatusCode::OK, axum::Json(json!({"update_id": update_id}))).into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": format!(
                "POST /_sim/telegram/update expects {{\"message\": {{\"chat_id\", \"user_id\", \"username\"?, \"text\"}}}} or {{\"callback_query\": {{\"chat_id\", \"user_id\", \"username\"?, \"message_id\", \"data\"}}}}: at `{}`: {}",
                error.path(),
                error.inner()
            )})),
        )
            .into_response(),
    }
}

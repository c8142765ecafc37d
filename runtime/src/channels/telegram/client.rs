//! The Telegram transport: a Bot API client on teloxide, an outbox that paces messages per
//! chat and overall, and a long-polling loop.
//!
//! teloxide is named only in this module: its requests and types are mapped to our own
//! ([`Update`], [`IncomingMessage`], [`CallbackQuery`], [`InlineKeyboard`]) and its errors to
//! [`SourceError`], so the rest of the workspace compiles against these and a backend
//! could be swapped.
//!
//! - [`TelegramClient`]: `getMe`, `setMyCommands`, `getUpdates`, `sendMessage` (always
//!   MarkdownV2, optional inline keyboard), `editMessageText`, `answerCallbackQuery`.
//!   A 429 becomes [`SourceError::RateLimited`] with `parameters.retry_after`; a 409 a
//!   [`SourceError::Rejected`] that says another poller uses the token; a 401 one that says
//!   the token was refused. The client itself never retries: the outbox and the poller do.
//! - [`Outbox`]: per-chat FIFO queues in front of send and edit: about one message per
//!   second per chat and 30 per second overall, a 429 pauses the chat (every chat, when a
//!   second chat is refused while the first is paused) for `retry_after` and the same
//!   message is sent again, a burst is coalesced into fewer messages, nothing is dropped,
//!   and every message ends in one [`OutboxReceipt`] for the caller to journal.
//! - [`poll`]: getUpdates with a moving offset, backoff on errors, a clear error on a
//!   persistent 409.
//!
//! The bot token is the credential, and teloxide puts it in every URL: it never reaches a
//! log line or an error message (teloxide redacts reqwest's URL; every text that comes out
//! of teloxide is scrubbed here again).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, GetUpdatesSetters, SendMessageSetters,
    SetWebhookSetters,
};
use teloxide::prelude::Requester;
use teloxide::types::{
    BotCommand, CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId,
    ParseMode, UpdateKind,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use tools::http::{RetryPolicy, SourceError, backoff_delay, install_crypto_provider};
use tools::secret::Secret;

/// Telegram's limit on a message's text, in characters after entity parsing (counted here
/// on the raw text, which is never shorter).
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Telegram's limit on an inline button's `callback_data`.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;
/// The longest long poll asked of Telegram; `get_updates` clamps its timeout to this.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(50);
/// The real Bot API root.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

// ---- our own types ----

/// One update from `getUpdates`, as the command layer needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Message(IncomingMessage),
    Callback(CallbackQuery),
    /// Any other update (edited messages, channel posts, a message without a sender, an
    /// update teloxide could not parse); kept so the offset still moves past it.
    Other {
        update_id: i64,
        kind: String,
    },
}

impl Update {
    pub fn update_id(&self) -> i64 {
        match self {
            Self::Message(message) => message.update_id,
            Self::Callback(query) => query.update_id,
            Self::Other { update_id, .. } => *update_id,
        }
    }
}

/// A message a user sent to the bot.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingMessage {
    pub update_id: i64,
    /// Positive for private chats, negative for groups.
    pub chat_id: i64,
    pub user_id: i64,
    /// The sender's @username, without the `@`, when they have one.
    pub username: Option<String>,
    /// `None` for messages without text (photos, stickers, ...).
    pub text: Option<String>,
    pub message_id: i32,
}

/// A press on one of the bot's inline buttons. Must be answered
/// ([`TelegramClient::answer_callback_query`]) or the user's client shows a spinner.
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackQuery {
    pub update_id: i64,
    /// The id to answer.
    pub id: String,
    /// The chat and message the button was under; `None` for inline-mode messages.
    pub chat_id: Option<i64>,
    pub user_id: i64,
    pub username: Option<String>,
    /// The button's `callback_data`; `None` for game buttons.
    pub data: Option<String>,
    pub message_id: Option<i32>,
}

/// An inline keyboard: rows of buttons under a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineKeyboard {
    pub rows: Vec<Vec<InlineButton>>,
}

/// One inline button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineButton {
    pub text: String,
    pub action: ButtonAction,
}

/// What pressing a button does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ButtonAction {
    /// Sends a [`CallbackQuery`] with this data (at most 64 bytes).
    Callback(String),
    /// Opens this URL.
    Url(String),
}

impl InlineKeyboard {
    /// One row of callback buttons: `[(label, data)]`.
    pub fn callback_row(buttons: &[(&str, &str)]) -> Self {
        Self {
            rows: vec![
                buttons
                    .iter()
                    .map(|(text, data)| InlineButton {
                        text: (*text).to_owned(),
                        action: ButtonAction::Callback((*data).to_owned()),
                    })
                    .collect(),
            ],
        }
    }
}

/// Who the bot is (`getMe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotIdentity {
    pub id: i64,
    pub username: Option<String>,
}

/// Escapes text for MarkdownV2: every character Telegram reserves gets a backslash.
pub fn escape_markdown_v2(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '_' | '*'
                | '['
                | ']'
                | '('
                | ')'
                | '~'
                | '`'
                | '>'
                | '#'
                | '+'
                | '-'
                | '='
                | '|'
                | '{'
                | '}'
                | '.'
                | '!'
                | '\\'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

// ---- the client ----

/// A Bot API client. Cheap to clone (teloxide's `Bot` shares its connection pool).
#[derive(Clone)]
pub struct TelegramClient {
    /// Sends, edits and answers: timeout `request_timeout`.
    bot: teloxide::Bot,
    /// getUpdates: timeout `request_timeout + MAX_LONG_POLL`, so a long poll is not cut.
    polling_bot: teloxide::Bot,
    /// Kept only to scrub it from any text teloxide hands back.
    token: Secret,
    request_timeout: Duration,
}

impl fmt::Debug for TelegramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramClient")
            .field("api_url", &self.bot.api_url().as_str())
            .field("token", &self.token)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl TelegramClient {
    /// A client of the Bot API at `api_url` ([`TELEGRAM_API_URL`], or the sim's
    /// `telegram_api_url()`), with a 15 s timeout per request.
    pub fn new(token: Secret, api_url: &str) -> Result<Self, SourceError> {
        Self::with_timeout(token, api_url, Duration::from_secs(15))
    }

    pub fn with_timeout(
        token: Secret,
        api_url: &str,
        request_timeout: Duration,
    ) -> Result<Self, SourceError> {
        install_crypto_provider();
        if token.expose().trim().is_empty() {
            return Err(SourceError::InvalidInput {
                detail: "telegram: the bot token is empty; set it to the token @BotFather gave"
                    .to_owned(),
            });
        }
        let url = url::Url::parse(api_url.trim_end_matches('/')).map_err(|error| {
            SourceError::InvalidInput {
                detail: format!(
                    "telegram: api_url {api_url:?} is not a valid absolute URL: {error}"
                ),
            }
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "telegram: api_url must be http or https, got scheme {:?}",
                    url.scheme()
                ),
            });
        }
        let build = |timeout: Duration| {
            teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map(|client| {
                    teloxide::Bot::with_client(token.expose(), client).set_api_url(url.clone())
                })
                .map_err(|error| SourceError::InvalidInput {
                    detail: format!("telegram: cannot build the HTTP client: {error}"),
                })
        };
        Ok(Self {
            bot: build(request_timeout)?,
            polling_bot: build(request_timeout + MAX_LONG_POLL)?,
            token,
            request_timeout,
        })
    }

    /// Who the bot is; a cheap check that the token works.
    pub async fn get_me(&self) -> Result<BotIdentity, SourceError> {
        let me = self
            .bot
            .get_me()
            .await
            .map_err(|error| self.map_error("getMe", error))?;
        Ok(BotIdentity {
            id: i64::try_from(me.user.id.0).unwrap_or(i64::MAX),
            username: me.user.username.clone(),
        })
    }

    /// Registers the command menu: `[("status", "Validator status")]` (a leading `/` is
    /// dropped). Names are 1–32 of `a-z0-9_`, descriptions 1–256 characters.
    pub async fn set_my_commands(&self, commands: &[(&str, &str)]) -> Result<(), SourceError> {
        let mut checked = Vec::with_capacity(commands.len());
        for (index, (command, description)) in commands.iter().enumerate() {
            let command = command.trim_start_matches('/');
            let name_ok = (1..=32).contains(&command.len())
                && command
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(SourceError::InvalidInput {
                    detail: format!(
                        "telegram setMyCommands: commands[{index}] {command:?} must be 1-32 characters of a-z, 0-9 and _"
                    ),
                });
            }
            if !(1..=256).contains(&description.chars().count()) {
                return Err(SourceError::InvalidInput {
                    detail: format!(
                        "telegram setMyCommands: commands[{index}] ({command}) needs a description of 1-256 characters"
                    ),
                });
            }
            checked.push(BotCommand::new(command, *description));
        }
        self.bot
            .set_my_commands(checked)
            .await
            .map_err(|error| self.map_error("setMyCommands", error))?;
        Ok(())
    }

    /// Updates from `offset` on (the last `update_id` + 1 confirms everything before it),
    /// waiting up to `timeout` (clamped to [`MAX_LONG_POLL`]) when there are none.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<Update>, SourceError> {
        let timeout_secs = u32::try_from(timeout.min(MAX_LONG_POLL).as_secs()).unwrap_or(50);
        let mut request = self.polling_bot.get_updates().timeout(timeout_secs);
        if let Some(offset) = offset {
            let offset = i32::try_from(offset).map_err(|_| SourceError::InvalidInput {
                detail: format!("telegram getUpdates: offset {offset} is out of range"),
            })?;
            request = request.offset(offset);
        }
        let updates = request
            .await
            .map_err(|error| self.map_error("getUpdates", error))?;
        Ok(updates.into_iter().map(map_update).collect())
    }

    /// Webhook mode: Telegram posts messages and button presses to `url`, each request with
    /// `secret` in the `X-Telegram-Bot-Api-Secret-Token` header. Updates that waited are kept.
    pub async fn set_webhook(&self, url: &str, secret: &Secret) -> Result<(), SourceError> {
        let url = url::Url::parse(url).map_err(|error| SourceError::InvalidInput {
            detail: format!("telegram setWebhook: {url:?} is not a URL: {error}"),
        })?;
        self.bot
            .set_webhook(url)
            .secret_token(secret.expose().to_owned())
            .allowed_updates(vec![
                teloxide::types::AllowedUpdate::Message,
                teloxide::types::AllowedUpdate::CallbackQuery,
            ])
            .await
            .map_err(|error| self.map_error("setWebhook", error))?;
        Ok(())
    }

    /// Back to getUpdates: removes the webhook (updates that waited are kept).
    pub async fn delete_webhook(&self) -> Result<(), SourceError> {
        self.bot
            .delete_webhook()
            .await
            .map_err(|error| self.map_error("deleteWebhook", error))?;
        Ok(())
    }

    /// Sends `text` (MarkdownV2: escape with [`escape_markdown_v2`]) to `chat_id`; returns
    /// the new message's id.
    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        keyboard: Option<&InlineKeyboard>,
    ) -> Result<i32, SourceError> {
        check_text("sendMessage", text)?;
        let mut request = self
            .bot
            .send_message(ChatId(chat_id), text)
            .parse_mode(ParseMode::MarkdownV2);
        if let Some(keyboard) = keyboard {
            request = request.reply_markup(to_markup("sendMessage", keyboard)?);
        }
        let message = request
            .await
            .map_err(|error| self.map_error("sendMessage", error))?;
        Ok(message.id.0)
    }

    /// Replaces a sent message's text (MarkdownV2) and keyboard (`None` removes it). An
    /// edit that changes nothing succeeds, so a repeated edit is harmless.
    pub async fn edit_message_text(
        &self,
        chat_id: i64,
        message_id: i32,
        text: &str,
        keyboard: Option<&InlineKeyboard>,
    ) -> Result<(), SourceError> {
        check_text("editMessageText", text)?;
        let mut request = self
            .bot
            .edit_message_text(ChatId(chat_id), MessageId(message_id), text)
            .parse_mode(ParseMode::MarkdownV2);
        if let Some(keyboard) = keyboard {
            request = request.reply_markup(to_markup("editMessageText", keyboard)?);
        }
        match request.await {
            Ok(_) => Ok(()),
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(error) => Err(self.map_error("editMessageText", error)),
        }
    }

    /// Stops the button's spinner; `text` shows as a short notice to the user.
    pub async fn answer_callback_query(
        &self,
        id: &str,
        text: Option<&str>,
    ) -> Result<(), SourceError> {
        let mut request = self
            .bot
            .answer_callback_query(CallbackQueryId(id.to_owned()));
        if let Some(text) = text {
            request = request.text(text);
        }
        request
            .await
            .map_err(|error| self.map_error("answerCallbackQuery", error))?;
        Ok(())
    }

    /// Replaces the token (and its secret half) in text that came out of teloxide.
    fn scrub(&self, text: String) -> String {
        let token = self.token.expose();
        let mut text = text.replace(token, "***");
        if let Some((_, secret)) = token.split_once(':')
            && secret.len() >= 8
        {
            text = text.replace(secret, "***");
        }
        text
    }

    fn map_error(&self, method: &str, error: RequestError) -> SourceError {
        let mapped = match error {
            RequestError::RetryAfter(seconds) => SourceError::RateLimited {
                retry_after: Some(seconds.duration()),
                message: format!(
                    "telegram {method}: flood control, Telegram asks to wait {} s before the next request",
                    seconds.seconds()
                ),
            },
            RequestError::MigrateToChatId(chat_id) => SourceError::Rejected {
                status: 400,
                message: format!(
                    "telegram {method}: the group was upgraded to a supergroup; its new chat id is {}: put that id in the configuration",
                    chat_id.0
                ),
            },
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => conflict_error(method),
            RequestError::Api(ApiError::CantGetUpdates) => SourceError::Rejected {
                status: 409,
                message: format!(
                    "telegram {method}: a webhook is set for this bot, so getUpdates is refused; use webhook mode, or delete the webhook (deleteWebhook) to poll"
                ),
            },
            RequestError::Api(ApiError::InvalidToken) => SourceError::Rejected {
                status: 401,
                message: format!(
                    "telegram {method}: the bot token was refused (Unauthorized); check the token @BotFather gave and that it was not revoked"
                ),
            },
            RequestError::Api(ApiError::Unknown(description)) => {
                let description = self.scrub(description);
                if description.starts_with("Too Many Requests") {
                    SourceError::RateLimited {
                        retry_after: None,
                        message: format!("telegram {method}: {description}"),
                    }
                } else if description.starts_with("Conflict") {
                    SourceError::Rejected {
                        status: 409,
                        message: format!("telegram {method}: {description}"),
                    }
                } else {
                    SourceError::Upstream {
                        code: None,
                        message: format!("telegram {method}: {description}"),
                    }
                }
            }
            RequestError::Api(api_error) => SourceError::Upstream {
                code: None,
                message: format!("telegram {method}: {api_error}"),
            },
            RequestError::Network(error) => {
                let text = self.scrub(error_chain(error.as_ref()));
                if error.is_timeout() {
                    SourceError::Timeout {
                        after: self.request_timeout,
                    }
                } else if error.is_connect() {
                    SourceError::Connect {
                        message: format!("telegram {method}: cannot connect: {text}"),
                    }
                } else {
                    SourceError::InvalidResponse {
                        detail: format!(
                            "telegram {method}: the request was sent but no answer came back ({text}); it may have been acted on"
                        ),
                    }
                }
            }
            RequestError::InvalidJson { raw, .. } => {
                let snippet: String = raw.chars().take(120).collect();
                SourceError::InvalidResponse {
                    detail: format!(
                        "telegram {method}: the answer is not the Bot API's JSON; body starts with {:?}",
                        self.scrub(snippet)
                    ),
                }
            }
            RequestError::Io(error) => SourceError::Connect {
                message: format!("telegram {method}: {}", self.scrub(error.to_string())),
            },
        };
        scrub_error(mapped, |text| self.scrub(text))
    }
}

fn conflict_error(method: &str) -> SourceError {
    SourceError::Rejected {
        status: 409,
        message: format!(
            "telegram {method}: another bot instance is polling getUpdates with this token (Telegram: terminated by other getUpdates request); stop the other instance, or run this one in webhook mode"
        ),
    }
}

/// Whether `error` is Telegram's 409: another poller, or a webhook in the way.
pub fn is_conflict(error: &SourceError) -> bool {
    matches!(error, SourceError::Rejected { status: 409, .. })
}

/// A last pass over every text of an error, so no path can leak the token.
fn scrub_error(error: SourceError, scrub: impl Fn(String) -> String) -> SourceError {
    match error {
        SourceError::RateLimited {
            retry_after,
            message,
        } => SourceError::RateLimited {
            retry_after,
            message: scrub(message),
        },
        SourceError::Unavailable { status, message } => SourceError::Unavailable {
            status,
            message: scrub(message),
        },
        SourceError::Timeout { after } => SourceError::Timeout { after },
        SourceError::Connect { message } => SourceError::Connect {
            message: scrub(message),
        },
        SourceError::InvalidResponse { detail } => SourceError::InvalidResponse {
            detail: scrub(detail),
        },
        SourceError::Upstream { code, message } => SourceError::Upstream {
            code,
            message: scrub(message),
        },
        SourceError::Rejected { status, message } => SourceError::Rejected {
            status,
            message: scrub(message),
        },
        SourceError::InvalidInput { detail } => SourceError::InvalidInput {
            detail: scrub(detail),
        },
    }
}

/// An error and its sources joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn check_text(method: &str, text: &str) -> Result<(), SourceError> {
    if text.trim().is_empty() {
        return Err(SourceError::InvalidInput {
            detail: format!(
                "telegram {method}: the text is empty; Telegram refuses empty messages"
            ),
        });
    }
    let chars = text.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(SourceError::InvalidInput {
            detail: format!(
                "telegram {method}: the text is {chars} characters, over Telegram's {MAX_MESSAGE_CHARS}; split it into several messages"
            ),
        });
    }
    Ok(())
}

fn to_markup(method: &str, keyboard: &InlineKeyboard) -> Result<InlineKeyboardMarkup, SourceError> {
    let mut rows = Vec::with_capacity(keyboard.rows.len());
    for (row_index, row) in keyboard.rows.iter().enumerate() {
        let mut buttons = Vec::with_capacity(row.len());
        for (index, button) in row.iter().enumerate() {
            let at = format!("rows[{row_index}][{index}] ({:?})", button.text);
            buttons.push(match &button.action {
                ButtonAction::Callback(data) => {
                    if data.is_empty() || data.len() > MAX_CALLBACK_DATA_BYTES {
                        return Err(SourceError::InvalidInput {
                            detail: format!(
                                "telegram {method}: keyboard {at}: callback data is {} bytes; it must be 1-{MAX_CALLBACK_DATA_BYTES}",
                                data.len()
                            ),
                        });
                    }
                    InlineKeyboardButton::callback(button.text.clone(), data.clone())
                }
                ButtonAction::Url(url) => {
                    let parsed = url::Url::parse(url).map_err(|error| SourceError::InvalidInput {
                        detail: format!("telegram {method}: keyboard {at}: invalid URL {url:?}: {error}"),
                    })?;
                    InlineKeyboardButton::url(button.text.clone(), parsed)
                }
            });
        }
        rows.push(buttons);
    }
    Ok(InlineKeyboardMarkup::new(rows))
}

/// One update as Telegram posts it to a webhook (the JSON of a getUpdates element).
pub fn parse_update(body: &[u8]) -> Result<Update, String> {
    // The id first, so even an update of a kind teloxide cannot read moves the offset.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let update_id = value
        .get("update_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| "no numeric update_id".to_owned())?;
    // From the bytes: teloxide reads some kinds only from a byte deserializer (from a
    // `Value` a message comes out as its `Error` kind).
    Ok(
        match serde_json::from_slice::<teloxide::types::Update>(body) {
            Ok(update) => map_update(update),
            Err(error) => {
                debug!(update_id, %error, "telegram: an update teloxide cannot read");
                Update::Other {
                    update_id,
                    kind: "unreadable".to_owned(),
                }
            }
        },
    )
}

fn map_update(update: teloxide::types::Update) -> Update {
    let update_id = i64::from(update.id.0);
    match update.kind {
        UpdateKind::Message(message) => match &message.from {
            Some(user) => Update::Message(IncomingMessage {
                update_id,
                chat_id: message.chat.id.0,
                user_id: i64::try_from(user.id.0).unwrap_or(i64::MAX),
                username: user.username.clone(),
                text: message.text().map(str::to_owned),
                message_id: message.id.0,
            }),
            None => Update::Other {
                update_id,
                kind: "message without a sender".to_owned(),
            },
        },
        UpdateKind::CallbackQuery(query) => Update::Callback(CallbackQuery {
            update_id,
            id: query.id.0,
            chat_id: query.message.as_ref().map(|message| message.chat().id.0),
            user_id: i64::try_from(query.from.id.0).unwrap_or(i64::MAX),
            username: query.from.username.clone(),
            data: query.data,
            message_id: query.message.as_ref().map(|message| message.id().0),
        }),
        other => {
            let debug = format!("{other:?}");
            let kind = debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned();
            Update::Other { update_id, kind }
        }
    }
}

// ---- long polling ----

/// How [`poll`] polls.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// Long-poll timeout asked of Telegram per getUpdates.
    pub long_poll: Duration,
    /// The first offset (a persisted `next_offset`); `None` takes what Telegram holds.
    pub initial_offset: Option<i64>,
    /// Backoff between failed getUpdates (attempts are not limited: a poller keeps going;
    /// `max_delay` caps even a server's `retry_after`).
    pub backoff: RetryPolicy,
    /// Consecutive 409 answers after which polling stops with the error.
    pub conflict_attempts: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            long_poll: Duration::from_secs(25),
            initial_offset: None,
            backoff: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(60),
                timeout: Duration::from_secs(15),
            },
            conflict_attempts: 3,
        }
    }
}

/// Why [`poll`] returned without an error: the handler asked it to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollStopped {
    /// The offset that confirms every update handed to the handler; persist it and pass
    /// it as [`PollConfig::initial_offset`] to resume.
    pub next_offset: Option<i64>,
}

/// Polls getUpdates and hands each update, in order, to `handler` until it returns
/// `ControlFlow::Break`. Transient errors (rate limits, connection failures, timeouts,
/// garbled answers) are retried with backoff, honouring `retry_after`. Stops with the
/// error on a token Telegram refuses, on another refusal, and on the
/// `conflict_attempts`-th consecutive 409 (another instance polls with this token).
pub async fn poll<H, Fut>(
    client: &TelegramClient,
    config: &PollConfig,
    mut handler: H,
) -> Result<PollStopped, SourceError>
where
    H: FnMut(Update) -> Fut,
    Fut: Future<Output = ControlFlow<()>>,
{
    let mut offset = config.initial_offset;
    let mut failures: u32 = 0;
    let mut conflicts: u32 = 0;
    loop {
        match client.get_updates(offset, config.long_poll).await {
            Ok(updates) => {
                failures = 0;
                conflicts = 0;
                for update in updates {
                    offset = Some(update.update_id() + 1);
                    if handler(update).await.is_break() {
                        return Ok(PollStopped {
                            next_offset: offset,
                        });
                    }
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                if is_conflict(&error) {
                    conflicts += 1;
                    if conflicts >= config.conflict_attempts.max(1) {
                        warn!(conflicts, %error, "telegram polling stopped: another poller holds the token");
                        return Err(match error {
                            SourceError::Rejected { status, message } => SourceError::Rejected {
                                status,
                                message: format!(
                                    "{message} (gave up after {conflicts} consecutive 409 answers)"
                                ),
                            },
                            other => other,
                        });
                    }
                } else if !error.is_transient() {
                    warn!(%error, "telegram polling stopped");
                    return Err(error);
                }
                let retry_after = match &error {
                    SourceError::RateLimited { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let delay = backoff_delay(
                    &config.backoff,
                    failures,
                    retry_after,
                    rand::random::<f64>(),
                );
                warn!(failures, kind = error.kind(), %error, delay_ms = delay.as_millis() as u64, "telegram getUpdates failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

// ---- the outbox ----

/// What the outbox needs from a client; [`TelegramClient`] implements it, tests use fakes.
pub trait OutboxTransport: Send + Sync + 'static {
    fn send(
        &self,
        chat_id: i64,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> impl Future<Output = Result<i32, SourceError>> + Send;

    fn edit(
        &self,
        chat_id: i64,
        message_id: i32,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

impl OutboxTransport for TelegramClient {
    async fn send(
        &self,
        chat_id: i64,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<i32, SourceError> {
        self.send_message(chat_id, &text, keyboard.as_ref()).await
    }

    async fn edit(
        &self,
        chat_id: i64,
        message_id: i32,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<(), SourceError> {
        self.edit_message_text(chat_id, message_id, &text, keyboard.as_ref())
            .await
    }
}

/// Pace and retry settings of an [`Outbox`].
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// Least time between two messages to the same chat.
    pub per_chat_interval: Duration,
    /// Messages per second to all chats together.
    pub global_per_second: u32,
    /// When more than this many messages wait for one chat, consecutive plain messages
    /// (sends without a keyboard) go out joined, up to [`MAX_MESSAGE_CHARS`].
    pub coalesce_after: usize,
    /// Pause after a 429 that names no `retry_after`.
    pub default_retry_after: Duration,
    /// Attempts for a message that failed before reaching Telegram (connection refused,
    /// 5xx); rate limits are retried without limit, other errors not at all.
    pub max_attempts: u32,
    /// Backoff between those attempts.
    pub retry: RetryPolicy,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            per_chat_interval: Duration::from_secs(1),
            global_per_second: 30,
            coalesce_after: 3,
            default_retry_after: Duration::from_secs(5),
            max_attempts: 5,
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(60),
                timeout: Duration::from_secs(15),
            },
        }
    }
}

/// The outbox's id for one queued message, unique per outbox, increasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId(pub u64);

/// How one queued message ended. Every message enqueued gets exactly one.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxReceipt {
    pub id: OutboxId,
    pub chat_id: i64,
    pub outcome: OutboxOutcome,
    /// Attempts made, rate-limited ones included.
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OutboxOutcome {
    /// Sent as `message_id`; `coalesced_with` lists the other queued messages that went out
    /// joined in the same Telegram message (empty when it went alone).
    Sent {
        message_id: i32,
        coalesced_with: Vec<OutboxId>,
    },
    Edited,
    /// Given up: Telegram refused it, or it kept failing before reaching Telegram.
    Failed {
        error: SourceError,
    },
}

#[derive(Clone, Debug)]
enum OutgoingKind {
    Send {
        keyboard: Option<InlineKeyboard>,
    },
    Edit {
        message_id: i32,
        keyboard: Option<InlineKeyboard>,
    },
}

#[derive(Clone, Debug)]
struct Outgoing {
    id: OutboxId,
    chat_id: i64,
    text: String,
    kind: OutgoingKind,
}

impl Outgoing {
    fn coalescible(&self) -> bool {
        matches!(self.kind, OutgoingKind::Send { keyboard: None })
    }
}

/// A per-chat paced queue in front of send and edit. Clones enqueue into the same queue;
/// when the last clone is dropped the worker still delivers everything queued, sends the
/// last receipts and closes the receipt channel.
#[derive(Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Outgoing>,
    next_id: Arc<AtomicU64>,
    waiters: Waiters,
}

/// Receipts someone waits for one by one ([`Outbox::send_tracked`]), by message id.
type Waiters = Arc<std::sync::Mutex<HashMap<OutboxId, oneshot::Sender<OutboxReceipt>>>>;

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("next_id", &self.next_id.load(Ordering::Relaxed))
            .finish()
    }
}

impl Outbox {
    /// Starts the worker on the current tokio runtime; receipts arrive on the receiver.
    /// The queue is unbounded: enqueueing never blocks and never drops.
    pub fn start<T: OutboxTransport>(
        transport: T,
        config: OutboxConfig,
    ) -> (Self, mpsc::UnboundedReceiver<OutboxReceipt>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (receipts, receipts_rx) = mpsc::unbounded_channel();
        let waiters = Waiters::default();
        let worker = Worker {
            waiters: waiters.clone(),
            transport: Arc::new(transport),
            config,
            chats: HashMap::new(),
            global_paused_until: None,
            recent: VecDeque::new(),
            receipts,
        };
        tokio::spawn(worker.run(receiver));
        (
            Self {
                sender,
                next_id: Arc::new(AtomicU64::new(1)),
                waiters,
            },
            receipts_rx,
        )
    }

    /// Queues a message (MarkdownV2) for `chat_id`. Fails at once for text Telegram would
    /// refuse (empty, over 4096 characters) or a bad keyboard.
    pub fn send(
        &self,
        chat_id: i64,
        text: impl Into<String>,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<OutboxId, SourceError> {
        let text = text.into();
        check_text("sendMessage", &text)?;
        if let Some(keyboard) = &keyboard {
            to_markup("sendMessage", keyboard)?;
        }
        self.enqueue(chat_id, text, OutgoingKind::Send { keyboard })
    }

    /// Like [`Outbox::send`], with this message's receipt delivered to the returned receiver
    /// too (it also goes to the receipt channel). The receiver errs only if the worker stopped
    /// before the message was done.
    pub fn send_tracked(
        &self,
        chat_id: i64,
        text: impl Into<String>,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<(OutboxId, oneshot::Receiver<OutboxReceipt>), SourceError> {
        let (done, receipt) = oneshot::channel();
        let mut waiters = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Registered under the lock before the worker can see the message.
        let id = self.send(chat_id, text, keyboard)?;
        waiters.insert(id, done);
        Ok((id, receipt))
    }

    /// Queues an edit of a sent message, behind the messages already queued for that chat.
    pub fn edit(
        &self,
        chat_id: i64,
        message_id: i32,
        text: impl Into<String>,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<OutboxId, SourceError> {
        let text = text.into();
        check_text("editMessageText", &text)?;
        if let Some(keyboard) = &keyboard {
            to_markup("editMessageText", keyboard)?;
        }
        self.enqueue(
            chat_id,
            text,
            OutgoingKind::Edit {
                message_id,
                keyboard,
            },
        )
    }

    fn enqueue(
        &self,
        chat_id: i64,
        text: String,
        kind: OutgoingKind,
    ) -> Result<OutboxId, SourceError> {
        let id = OutboxId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.sender
            .send(Outgoing {
                id,
                chat_id,
                text,
                kind,
            })
            .map_err(|_| SourceError::InvalidInput {
                detail: "telegram outbox: the worker has stopped (its runtime shut down); the message was not queued".to_owned(),
            })?;
        Ok(id)
    }
}

/// Messages that go out as one request: one message, or several plain ones joined.
struct Batch {
    items: Vec<Outgoing>,
    attempts: u32,
}

impl Batch {
    fn text(&self) -> String {
        let texts: Vec<&str> = self.items.iter().map(|item| item.text.as_str()).collect();
        texts.join("\n\n")
    }
}

/// One chat's queue and pacing, owned by the worker.
#[derive(Default)]
struct ChatQueue {
    queue: VecDeque<Outgoing>,
    /// A batch that failed and goes again before anything else.
    retry: Option<Batch>,
    /// The batch being sent; at most one per chat, which keeps the chat FIFO.
    in_flight: Option<Batch>,
    /// Earliest start of the next request (spacing and backoff).
    next_at: Option<Instant>,
    /// Set by a 429.
    paused_until: Option<Instant>,
}

impl ChatQueue {
    fn has_work(&self) -> bool {
        self.in_flight.is_none() && (self.retry.is_some() || !self.queue.is_empty())
    }

    /// The id that has waited longest, for fair order across chats.
    fn head_id(&self) -> Option<OutboxId> {
        self.retry
            .as_ref()
            .and_then(|batch| batch.items.first().map(|item| item.id))
            .or_else(|| self.queue.front().map(|item| item.id))
    }
}

struct Worker<T> {
    transport: Arc<T>,
    config: OutboxConfig,
    chats: HashMap<i64, ChatQueue>,
    global_paused_until: Option<Instant>,
    /// Start times of requests in the last second, oldest first.
    recent: VecDeque<Instant>,
    receipts: mpsc::UnboundedSender<OutboxReceipt>,
    waiters: Waiters,
}

type SendResult = Result<Option<i32>, SourceError>;

impl<T: OutboxTransport> Worker<T> {
    async fn run(mut self, mut incoming: mpsc::UnboundedReceiver<Outgoing>) {
        let mut tasks: JoinSet<(i64, SendResult)> = JoinSet::new();
        let mut task_chats: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut open = true;
        loop {
            self.dispatch(&mut tasks, &mut task_chats);
            if !open && tasks.is_empty() && self.chats.values().all(|chat| !chat.has_work()) {
                return;
            }
            let wake = self.next_wake();
            tokio::select! {
                received = incoming.recv(), if open => match received {
                    Some(item) => {
                        self.chats.entry(item.chat_id).or_default().queue.push_back(item);
                        // Take the whole burst before dispatching, so it can be coalesced.
                        while let Ok(item) = incoming.try_recv() {
                            self.chats.entry(item.chat_id).or_default().queue.push_back(item);
                        }
                    }
                    None => open = false,
                },
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (chat_id, result) = match joined {
                        Ok((task_id, (chat_id, result))) => {
                            task_chats.remove(&task_id);
                            (chat_id, result)
                        }
                        Err(error) => {
                            let Some(chat_id) = task_chats.remove(&error.id()) else { continue };
                            (chat_id, Err(SourceError::InvalidResponse {
                                detail: format!("telegram outbox: the send task failed ({error}); the message may have been delivered"),
                            }))
                        }
                    };
                    self.finish(chat_id, result);
                }
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
        }
    }

    fn ready_at(&self, chat: &ChatQueue) -> Option<Instant> {
        [chat.next_at, chat.paused_until, self.global_paused_until]
            .into_iter()
            .flatten()
            .max()
    }

    /// When the global window lets another request start.
    fn global_ready_at(&mut self, now: Instant) -> Option<Instant> {
        let window = Duration::from_secs(1);
        while self
            .recent
            .front()
            .is_some_and(|start| *start + window <= now)
        {
            self.recent.pop_front();
        }
        let limit = self.config.global_per_second.max(1) as usize;
        if self.recent.len() < limit {
            None
        } else {
            self.recent.front().map(|start| *start + window)
        }
    }

    fn next_wake(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let global = self.global_ready_at(now);
        self.chats
            .values()
            .filter(|chat| chat.has_work())
            .map(|chat| {
                let ready = self.ready_at(chat).unwrap_or(now);
                global.map_or(ready, |global| ready.max(global))
            })
            .min()
    }

    fn dispatch(
        &mut self,
        tasks: &mut JoinSet<(i64, SendResult)>,
        task_chats: &mut HashMap<tokio::task::Id, i64>,
    ) {
        let now = Instant::now();
        let mut ready: Vec<(OutboxId, i64)> = self
            .chats
            .iter()
            .filter(|(_, chat)| chat.has_work() && self.ready_at(chat).is_none_or(|at| at <= now))
            .filter_map(|(chat_id, chat)| chat.head_id().map(|id| (id, *chat_id)))
            .collect();
        ready.sort();
        for (_, chat_id) in ready {
            if self.global_ready_at(now).is_some() {
                return;
            }
            let coalesce_after = self.config.coalesce_after;
            let per_chat_interval = self.config.per_chat_interval;
            let Some(chat) = self.chats.get_mut(&chat_id) else {
                continue;
            };
            let batch = match chat.retry.take() {
                Some(batch) => batch,
                None => {
                    let Some(batch) = next_batch(&mut chat.queue, coalesce_after) else {
                        continue;
                    };
                    batch
                }
            };
            let Some(first) = batch.items.first() else {
                continue;
            };
            let text = batch.text();
            let kind = first.kind.clone();
            chat.in_flight = Some(batch);
            chat.next_at = Some(now + per_chat_interval);
            self.recent.push_back(now);
            let transport = Arc::clone(&self.transport);
            let handle = tasks.spawn(async move {
                let result = match kind {
                    OutgoingKind::Send { keyboard } => {
                        transport.send(chat_id, text, keyboard).await.map(Some)
                    }
                    OutgoingKind::Edit {
                        message_id,
                        keyboard,
                    } => transport
                        .edit(chat_id, message_id, text, keyboard)
                        .await
                        .map(|()| None),
                };
                (chat_id, result)
            });
            task_chats.insert(handle.id(), chat_id);
        }
    }

    fn finish(&mut self, chat_id: i64, result: SendResult) {
        let now = Instant::now();
        let other_chat_paused = self.chats.iter().any(|(other, chat)| {
            *other != chat_id && chat.paused_until.is_some_and(|until| until > now)
        });
        let Some(chat) = self.chats.get_mut(&chat_id) else {
            return;
        };
        let Some(mut batch) = chat.in_flight.take() else {
            return;
        };
        batch.attempts += 1;
        let error = match result {
            Ok(message_id) => {
                let ids: Vec<OutboxId> = batch.items.iter().map(|item| item.id).collect();
                for item in &batch.items {
                    let outcome = match message_id {
                        Some(message_id) => OutboxOutcome::Sent {
                            message_id,
                            coalesced_with: ids
                                .iter()
                                .copied()
                                .filter(|id| *id != item.id)
                                .collect(),
                        },
                        None => OutboxOutcome::Edited,
                    };
                    self.report(item, outcome, batch.attempts);
                }
                return;
            }
            Err(error) => error,
        };
        match &error {
            SourceError::RateLimited { retry_after, .. } => {
                let pause = retry_after.unwrap_or(self.config.default_retry_after);
                let until = now + pause;
                chat.paused_until = Some(until);
                chat.retry = Some(batch);
                if other_chat_paused {
                    // A second chat refused while the first waits: the limit is the bot's.
                    self.global_paused_until = Some(until);
                }
                warn!(chat_id, pause_ms = pause.as_millis() as u64, global = other_chat_paused, %error, "telegram outbox: rate limited; pausing and retrying the same message");
            }
            SourceError::Connect { .. } | SourceError::Unavailable { .. }
                if batch.attempts < self.config.max_attempts.max(1) =>
            {
                let delay = backoff_delay(
                    &self.config.retry,
                    batch.attempts,
                    None,
                    rand::random::<f64>(),
                );
                chat.next_at = Some(now + delay);
                warn!(chat_id, attempts = batch.attempts, delay_ms = delay.as_millis() as u64, %error, "telegram outbox: not delivered; retrying");
                chat.retry = Some(batch);
            }
            _ => {
                warn!(chat_id, attempts = batch.attempts, %error, "telegram outbox: giving up on a message");
                for item in &batch.items {
                    self.report(
                        item,
                        OutboxOutcome::Failed {
                            error: error.clone(),
                        },
                        batch.attempts,
                    );
                }
            }
        }
    }

    fn report(&self, item: &Outgoing, outcome: OutboxOutcome, attempts: u32) {
        debug!(
            id = item.id.0,
            chat_id = item.chat_id,
            attempts,
            "telegram outbox: message done"
        );
        let receipt = OutboxReceipt {
            id: item.id,
            chat_id: item.chat_id,
            outcome,
            attempts,
        };
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&item.id);
        if let Some(waiter) = waiter {
            // Err: the waiter gave up; the receipt channel below still has it.
            let _ = waiter.send(receipt.clone());
        }
        // Err means the caller dropped the receiver: nobody journals, delivery still happened.
        let _ = self.receipts.send(receipt);
    }
}

/// Takes the next message, joined with the plain ones right behind it when more than
/// `coalesce_after` wait and the joined text stays within [`MAX_MESSAGE_CHARS`].
fn next_batch(queue: &mut VecDeque<Outgoing>, coalesce_after: usize) -> Option<Batch> {
    let waiting = queue.len();
    let first = queue.pop_front()?;
    let mut chars = first.text.chars().count();
    let coalesce = waiting > coalesce_after && first.coalescible();
    let mut items = vec![first];
    if coalesce {
        while let Some(next) = queue.front() {
            let joined = chars + 2 + next.text.chars().count();
            if !next.coalescible() || joined > MAX_MESSAGE_CHARS {
                break;
            }
            chars = joined;
            if let Some(next) = queue.pop_front() {
                items.push(next);
            }
        }
    }
    Some(Batch { items, attempts: 0 })
}

#[cfg(test)]
mod tests;

//! Telegram: the bot people keep in their pocket. Long polling (getUpdates) hands each message
//! to the shared command layer and each inline-button press to the gate; answers go out through
//! a per-chat outbox (about one message a second per chat, 30 a second overall, 429s waited
//! out, nothing dropped).
//!
//! Only configured people are served: a Telegram user id maps to a person through
//! `[[access.users]] telegram_id`, and group chats must be listed in `chats`. Everyone else
//! gets a polite refusal and a `chat.refused` journal entry; nothing they send changes state.
//! The Bot API client, its outbox and long polling are in [`client`], the one place teloxide
//! is named.
//! The polling offset is kept in the state store after every update, so a restart neither
//! loses nor repeats a command.
//!
//! Webhook mode (`webhook_url` set) replaces polling: the bot calls setWebhook with a secret
//! token, Telegram posts each update to `POST /telegram/webhook`, and [`webhook`] accepts only
//! requests carrying that token (compared in constant time), answers at once and hands the
//! update to the same handler, in order, each update id once.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tools::secret::Secret;
pub mod client;
pub mod webhook;

use client::{
    ButtonAction, CallbackQuery, IncomingMessage, InlineButton, InlineKeyboard, Outbox,
    OutboxConfig, OutboxOutcome, PollConfig, TelegramClient, Update, escape_markdown_v2,
};

use crate::commands::{self, Caller, Context};
use crate::config::UserConfig;
use crate::http::AppState;

/// State key of the next getUpdates offset.
pub const OFFSET_STATE_KEY: &str = "channels.telegram.offset";

/// What the bot needs from the configuration.
#[derive(Clone, Debug)]
pub struct TelegramSettings {
    pub token: Secret,
    pub api_url: String,
    /// Group chats served besides the private chats of configured people.
    pub chats: BTreeSet<i64>,
    pub long_poll: Duration,
    /// Webhook mode: the public URL and the secret token; `None`: long polling.
    pub webhook: Option<(String, Secret)>,
}

struct Bot {
    app: AppState,
    client: TelegramClient,
    outbox: Outbox,
    users: Vec<UserConfig>,
    chats: BTreeSet<i64>,
}

/// The bot's client and its outbox, made before the notifier so alerts can go to chats too.
pub fn connect(
    settings: &TelegramSettings,
) -> Result<(TelegramClient, Outbox), tools::http::SourceError> {
    let client = TelegramClient::new(settings.token.clone(), &settings.api_url)?;
    let (outbox, mut receipts) = Outbox::start(client.clone(), OutboxConfig::default());
    tokio::spawn(async move {
        while let Some(receipt) = receipts.recv().await {
            if let OutboxOutcome::Failed { error } = receipt.outcome {
                tracing::warn!(chat_id = receipt.chat_id, error = %error, "telegram: a message could not be delivered");
            }
        }
    });
    Ok((client, outbox))
}

/// Starts the bot: registers the commands, then polls until `stop` turns true. Returns the
/// polling task.
pub async fn start(
    app: AppState,
    settings: TelegramSettings,
    (client, outbox): (TelegramClient, Outbox),
    users: &[UserConfig],
    webhook_updates: Option<tokio::sync::mpsc::UnboundedReceiver<Update>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let listed: Vec<(&str, &str)> = commands::COMMANDS
        .iter()
        .map(|spec| (spec.name, spec.description))
        .collect();
    if let Err(error) = client.set_my_commands(&listed).await {
        tracing::warn!(error = %error, "telegram: setMyCommands failed; commands still work when typed");
    }
    let bot = Arc::new(Bot {
        app,
        client,
        outbox,
        users: users
            .iter()
            .filter(|user| user.telegram_id.is_some())
            .cloned()
            .collect(),
        chats: settings.chats.clone(),
    });
    if let (Some((url, secret)), Some(updates)) = (&settings.webhook, webhook_updates) {
        return webhook::serve(bot, url, secret, updates, stop);
    }
    let initial_offset = bot
        .app
        .store
        .state()
        .get::<i64>(OFFSET_STATE_KEY)
        .ok()
        .flatten();
    let config = PollConfig {
        long_poll: settings.long_poll,
        initial_offset,
        ..PollConfig::default()
    };
    let stopping_flag = stop.clone();
    tokio::spawn(async move {
        let polling = client::poll(&bot.client, &config, |update| {
            let bot = bot.clone();
            let stopping = *stopping_flag.borrow();
            async move {
                if stopping {
                    return ControlFlow::Break(());
                }
                let next = update.update_id() + 1;
                bot.handle(update).await;
                if let Err(error) = bot.app.store.state().put(OFFSET_STATE_KEY, &next) {
                    tracing::error!(error = %error, "telegram: could not store the polling offset");
                }
                ControlFlow::Continue(())
            }
        });
        tokio::select! {
            result = polling => match result {
                Ok(_) => tracing::info!("telegram: polling stopped"),
                Err(error) => {
                    tracing::error!(error = %error, "telegram: polling stopped; the bot no longer answers");
                    bot.app.health.source_failed("telegram", &error.to_string(), chrono::Utc::now());
                }
            },
            _ = stop.wait_for(|stop| *stop) => tracing::info!("telegram: polling stopped for shutdown"),
        }
    })
}

/// The renderer's `{"inline_keyboard": [[{"text", "callback_data"}]]}` as the client's type.
fn keyboard(markup: Option<&serde_json::Value>) -> Option<InlineKeyboard> {
    let rows = markup?.get("inline_keyboard")?.as_array()?;
    let rows: Vec<Vec<InlineButton>> = rows
        .iter()
        .filter_map(|row| row.as_array())
        .map(|row| {
            row.iter()
                .filter_map(|button| {
                    Some(InlineButton {
                        text: button.get("text")?.as_str()?.to_owned(),
                        action: ButtonAction::Callback(
                            button.get("callback_data")?.as_str()?.to_owned(),
                        ),
                    })
                })
                .collect()
        })
        .collect();
    (!rows.is_empty()).then_some(InlineKeyboard { rows })
}

impl Bot {
    fn user(&self, telegram_id: i64) -> Option<&UserConfig> {
        self.users
            .iter()
            .find(|user| user.telegram_id == Some(telegram_id))
    }

    async fn journal(&self, kind: &str, subject: &str, body: serde_json::Value) {
        if let Err(error) = self
            .app
            .auditor
            .record("telegram", kind, subject, &body)
            .await
        {
            tracing::error!(error = %error, kind, "could not journal a Telegram update");
        }
    }

    fn send_plain(&self, chat_id: i64, text: &str) {
        if let Err(error) = self.outbox.send(chat_id, escape_markdown_v2(text), None) {
            tracing::warn!(error = %error, "telegram: could not queue a message");
        }
    }

    async fn handle(&self, update: Update) {
        match update {
            Update::Message(message) => self.on_message(message).await,
            Update::Callback(query) => self.on_callback(query).await,
            Update::Other { kind, .. } => {
                tracing::debug!(kind, "telegram: update ignored");
            }
        }
    }

    async fn on_message(&self, message: IncomingMessage) {
        let Some(text) = message.text.as_deref() else {
            return;
        };
        let user = self.user(message.user_id).cloned();
        let private = message.chat_id == message.user_id;
        let allowed_chat = private || self.chats.contains(&message.chat_id);
        let Some(user) = user.filter(|_| allowed_chat) else {
            self.journal(
                "chat.refused",
                &format!("telegram:{}", message.user_id),
                json!({
                    "channel": "telegram",
                    "chat_id": message.chat_id,
                    "user_id": message.user_id,
                    "reason": if allowed_chat { "unknown user" } else { "chat not served" },
                }),
            )
            .await;
            self.send_plain(
                message.chat_id,
                &format!(
                    "Sorry, this bot only serves its team. If you are on it, ask an administrator to add your Telegram id ({}) to [[access.users]].",
                    message.user_id
                ),
            );
            return;
        };
        self.journal(
            "chat.command",
            &format!("telegram:{}", user.name),
            json!({ "channel": "telegram", "user": user.name, "chat_id": message.chat_id, "text": text }),
        )
        .await;
        let context = Context::from_app(&self.app, Caller::from(&user));
        let answer = commands::respond(text, &context).await;
        for part in commands::render::telegram::render(&answer) {
            if let Err(error) = self.outbox.send(
                message.chat_id,
                part.text,
                keyboard(part.reply_markup.as_ref()),
            ) {
                tracing::warn!(error = %error, "telegram: could not queue an answer");
            }
        }
    }

    async fn on_callback(&self, query: CallbackQuery) {
        let answer = |text: String| {
            let client = self.client.clone();
            let id = query.id.clone();
            async move {
                if let Err(error) = client.answer_callback_query(&id, Some(&text)).await {
                    tracing::warn!(error = %error, "telegram: answerCallbackQuery failed");
                }
            }
        };
        let Some(user) = self.user(query.user_id).cloned() else {
            self.journal(
                "chat.refused",
                &format!("telegram:{}", query.user_id),
                json!({ "channel": "telegram", "user_id": query.user_id, "reason": "unknown user", "data": query.data }),
            )
            .await;
            answer("Sorry, you are not allowed to decide here.".to_owned()).await;
            return;
        };
        let data = query.data.clone().unwrap_or_default();
        let Some((verb, id)) = super::parse_button(&data) else {
            self.journal(
                "chat.refused",
                &format!("telegram:{}", user.name),
                json!({ "channel": "telegram", "user": user.name, "data": data, "reason": "unknown action" }),
            )
            .await;
            answer("Unknown or expired button.".to_owned()).await;
            return;
        };
        let text = super::decide(&self.app.gate, verb, id, &user.name).await;
        self.journal(
            "chat.action",
            &format!("telegram:{}", user.name),
            json!({ "channel": "telegram", "user": user.name, "data": data, "result": text }),
        )
        .await;
        answer(text.clone()).await;
        // Decisions replace the buttons with who decided, so nobody presses them twice.
        if verb != super::ButtonVerb::Details
            && let (Some(chat_id), Some(message_id)) = (query.chat_id, query.message_id)
            && let Err(error) =
                self.outbox
                    .edit(chat_id, message_id, escape_markdown_v2(&text), None)
        {
            tracing::warn!(error = %error, "telegram: could not queue the edit");
        }
    }
}

//! The notifier: delivers the alert router's dispatches to the log, webhooks, chats and
//! email ([`email`]), journaling each delivery.
//!
//! It reads an unbounded queue so no dispatch is ever dropped; on shutdown it drains the queue
//! before returning. What a killed run had not delivered is in [`pending`], and goes out first
//! on the next start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents::audit::Auditor;
use agents::telemetry::{NotificationLabels, Telemetry};
use agents::{Alert, AlertStatus, Severity};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tools::http::{RetryPolicy, backoff_delay};
use tools::secret::Secret;

use crate::config::{
    AlertingConfig, DEFAULT_RECEIVER, NotifyConfig, ReceiverKind, WebhookReceiverConfig,
};
use crate::router::{Dispatch, DispatchKind, Silence};

pub mod email;
pub mod pending;
use pending::{Completion, Pending};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when the receiver has a secret.
pub const SIGNATURE_HEADER: &str = "x-command-center-signature";
/// Header carrying the event kind (`alert.firing`, `alert.resolved`, `silence.expiring`).
pub const EVENT_HEADER: &str = "x-command-center-event";

/// The group a webhook notification carries.
#[derive(Debug, Serialize)]
pub struct GroupPayload<'a> {
    pub key: &'a str,
    pub receiver: &'a str,
    /// `notification`, `repeat`, `escalation`, `silence_expiring`.
    pub kind: DispatchKind,
    pub status: AlertStatus,
    pub labels: &'a BTreeMap<String, String>,
    pub alerts: &'a [Alert],
    /// Keys whose news this notification is (new or resolved since the last one).
    pub changed: &'a [String],
}

/// JSON body POSTed to webhooks: the first alert's fields at the top level (as before the
/// router existed), and the whole group under `group`.
#[derive(Debug, Serialize)]
pub struct WebhookPayload<'a> {
    pub version: u32,
    pub event: &'static str,
    #[serde(flatten)]
    pub alert: Option<&'a Alert>,
    pub group: GroupPayload<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence: Option<&'a Silence>,
}

fn event_kind(dispatch: &Dispatch) -> &'static str {
    match (dispatch.kind, dispatch.status) {
        (DispatchKind::SilenceExpiring, _) => "silence.expiring",
        (DispatchKind::Briefing, _) => "briefing",
        (_, AlertStatus::Firing) => "alert.firing",
        (_, AlertStatus::Resolved) => "alert.resolved",
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

/// Where one receiver's dispatches go.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Log,
    /// Index into the webhooks.
    Webhook(usize),
    /// A Telegram chat, through the bot's outbox.
    Telegram(i64),
    /// A Slack channel, through chat.postMessage.
    Slack(String),
    /// Mail to these recipients, through `[notify.email]`.
    Email(Vec<lettre::message::Mailbox>),
    /// A receiver kind this build cannot deliver (validation refuses it; kept for safety).
    Unavailable(&'static str),
}

impl Target {
    /// How a pending dispatch names this target when marking it done.
    fn label(&self, webhooks: &[Webhook]) -> String {
        match self {
            Target::Log => "log".to_owned(),
            Target::Webhook(index) => format!(
                "webhook:{}",
                webhooks
                    .get(*index)
                    .map_or("?", |webhook| webhook.config.name.as_str())
            ),
            Target::Telegram(chat) => format!("telegram:{chat}"),
            Target::Slack(channel) => format!("slack:{channel}"),
            Target::Email(to) => {
                let to: Vec<String> = to.iter().map(|mailbox| mailbox.email.to_string()).collect();
                format!("email:{}", to.join(","))
            }
            Target::Unavailable(kind) => (*kind).to_owned(),
        }
    }
}

/// The chat channels' senders, when those channels are on.
#[derive(Clone, Default)]
pub struct ChatSenders {
    pub telegram: Option<crate::channels::telegram::client::Outbox>,
    pub slack: Option<std::sync::Arc<tools::slack::SlackClient>>,
}

fn severity_mark(alert: &Alert) -> &'static str {
    match (alert.status, alert.severity) {
        (AlertStatus::Resolved, _) => "✅",
        (_, Severity::Critical) => "🔴",
        (_, Severity::Warning) => "🟠",
        (_, Severity::Info) => "🔵",
    }
}

/// Proposals waiting for a decision in this dispatch (the gate's `approval/<id>` alerts).
fn pending_approvals(dispatch: &Dispatch) -> Vec<&str> {
    dispatch
        .alerts
        .iter()
        .filter(|alert| alert.status == AlertStatus::Firing && alert.rule == "approval")
        .filter(|alert| alert.key.starts_with("approval/"))
        .filter_map(|alert| alert.labels.get("proposal").map(String::as_str))
        .collect()
}

/// Approve / Reject / Details under an approval request (callback data must fit 64 bytes).
fn telegram_buttons(
    dispatch: &Dispatch,
) -> Option<crate::channels::telegram::client::InlineKeyboard> {
    let rows: Vec<Vec<crate::channels::telegram::client::InlineButton>> =
        pending_approvals(dispatch)
            .into_iter()
            .filter(|id| {
                format!("approve:{id}").len()
                    <= crate::channels::telegram::client::MAX_CALLBACK_DATA_BYTES
            })
            .map(|id| {
                [
                    ("Approve", "approve"),
                    ("Reject", "reject"),
                    ("Details", "details"),
                ]
                .into_iter()
                .map(
                    |(label, verb)| crate::channels::telegram::client::InlineButton {
                        text: label.to_owned(),
                        action: crate::channels::telegram::client::ButtonAction::Callback(format!(
                            "{verb}:{id}"
                        )),
                    },
                )
                .collect()
            })
            .collect();
    (!rows.is_empty()).then_some(crate::channels::telegram::client::InlineKeyboard { rows })
}

/// The same as Block Kit: the text, then one actions block per pending approval.
fn slack_blocks(dispatch: &Dispatch, text: &str) -> Option<serde_json::Value> {
    let pending = pending_approvals(dispatch);
    if pending.is_empty() {
        return None;
    }
    let mut blocks = vec![serde_json::json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")},
    })];
    for id in pending {
        blocks.push(serde_json::json!({
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": format!("approve:{id}"), "value": id, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": format!("reject:{id}"), "value": id, "style": "danger",
                 "text": {"type": "plain_text", "text": "Reject"}},
                {"type": "button", "action_id": format!("details:{id}"), "value": id,
                 "text": {"type": "plain_text", "text": "Details"}},
            ],
        }));
    }
    Some(serde_json::Value::Array(blocks))
}

/// What a person reads in a chat: one line per alert, news first, the rest as context.
pub fn chat_text(dispatch: &Dispatch) -> String {
    if dispatch.kind == DispatchKind::Briefing {
        return dispatch
            .alerts
            .iter()
            .map(|alert| {
                format!(
                    "📋 {}\n\n{}",
                    alert.summary,
                    alert.evidence["text"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    if let Some(silence) = &dispatch.silence {
        return format!(
            "⏰ Silence {} ({}) ends at {} — set by {}: {}",
            silence.id,
            silence.matchers.join(", "),
            silence.ends_at.format("%Y-%m-%d %H:%M UTC"),
            silence.created_by,
            silence.comment
        );
    }
    let prefix = match dispatch.kind {
        DispatchKind::Repeat => "Still firing: ",
        DispatchKind::Escalation => "Escalated (nobody acknowledged): ",
        _ => "",
    };
    let mut lines = Vec::new();
    for alert in &dispatch.alerts {
        let status = match alert.status {
            AlertStatus::Firing => alert.severity.to_string().to_uppercase(),
            AlertStatus::Resolved => "RESOLVED".to_owned(),
        };
        lines.push(format!(
            "{} {prefix}{status}: {} [{}]",
            severity_mark(alert),
            alert.summary,
            alert.key
        ));
    }
    lines.join("\n")
}

/// Deliveries under way at once (each holds a permit while it waits for the one before it in
/// its lane, so the queue is read only as fast as deliveries finish).
const CONCURRENT_DELIVERIES: usize = 32;

/// Deliveries under way, each in its lane ([`Notifier::lane`]): a dispatch waits for the one
/// before it in its lane, so a group's notifications arrive in the order the router made them.
/// Dropping it (the notifier aborted at the end of the grace period) aborts them all; what they
/// had not delivered is still pending, and goes out on the next start.
struct Lanes {
    deliveries: JoinSet<()>,
    /// Per lane, closed when its last delivery so far is over.
    last: std::collections::HashMap<Option<(String, String)>, tokio::sync::oneshot::Receiver<()>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Lanes {
    fn new() -> Self {
        Self {
            deliveries: JoinSet::new(),
            last: std::collections::HashMap::new(),
            permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DELIVERIES)),
        }
    }

    async fn start(&mut self, notifier: &Arc<Notifier>, dispatch: Dispatch) {
        // The semaphore is never closed; without a permit the delivery still goes out.
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok();
        let lane = notifier.lane(&dispatch);
        let (over, next) = tokio::sync::oneshot::channel::<()>();
        let before = self.last.insert(lane, next);
        let notifier = Arc::clone(notifier);
        self.deliveries.spawn(async move {
            let _permit = permit;
            if let Some(before) = before {
                // Closed, never sent: the one before is over (delivered, or it panicked).
                let _ = before.await;
            }
            notifier.deliver(&dispatch).await;
            drop(over);
        });
        while self.deliveries.try_join_next().is_some() {}
        // Unfinished deliveries hold permits, so at most CONCURRENT_DELIVERIES lanes stay.
        if self.last.len() > 4 * CONCURRENT_DELIVERIES {
            self.last.retain(|_, last| {
                matches!(
                    last.try_recv(),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                )
            });
        }
    }

    /// Waits for every delivery started.
    async fn finish(mut self) {
        while self.deliveries.join_next().await.is_some() {}
    }
}

/// Delivers dispatches; built from `[notify]` and `[alerting.receivers]`.
pub struct Notifier {
    chat: ChatSenders,
    receivers: BTreeMap<String, Vec<Target>>,
    webhooks: Vec<Webhook>,
    /// The SMTP sender of `[notify.email]`, or why there is none.
    email: Result<email::EmailSender, String>,
    client: reqwest::Client,
    auditor: Auditor,
    telemetry: Telemetry,
    /// What a previous run left undelivered ([`Notifier::recover`]).
    replay: Vec<Pending>,
    /// Telegram deliveries waiting for their receipts; awaited before [`Notifier::run`] returns.
    receipts: std::sync::Mutex<JoinSet<()>>,
}

#[derive(Debug)]
struct DeliveryOutcome {
    attempts: u32,
    status: Option<u16>,
    error: Option<String>,
}

impl Notifier {
    pub fn new(
        config: &NotifyConfig,
        alerting: &AlertingConfig,
        auditor: Auditor,
        telemetry: Telemetry,
    ) -> Self {
        let webhooks: Vec<Webhook> = config
            .webhooks
            .iter()
            .cloned()
            .map(|config| Webhook { config })
            .collect();
        let mut receivers = BTreeMap::new();
        let mut default = Vec::new();
        if config.log {
            default.push(Target::Log);
        }
        default.extend((0..webhooks.len()).map(Target::Webhook));
        receivers.insert(DEFAULT_RECEIVER.to_owned(), default);
        for receiver in &alerting.receivers {
            let target = match receiver.kind {
                ReceiverKind::Log => Target::Log,
                ReceiverKind::Webhook => match webhooks
                    .iter()
                    .position(|webhook| Some(&webhook.config.name) == receiver.webhook.as_ref())
                {
                    Some(index) => Target::Webhook(index),
                    None => Target::Unavailable("webhook"),
                },
                ReceiverKind::Telegram => receiver
                    .chat
                    .as_deref()
                    .and_then(|chat| chat.trim().parse::<i64>().ok())
                    .map_or(Target::Unavailable("telegram"), Target::Telegram),
                ReceiverKind::Slack => receiver
                    .channel
                    .clone()
                    .map_or(Target::Unavailable("slack"), Target::Slack),
                ReceiverKind::Email => match email::parse_recipients(&receiver.to) {
                    Ok(to) if !to.is_empty() => Target::Email(to),
                    _ => Target::Unavailable("email"),
                },
            };
            receivers.insert(receiver.name.clone(), vec![target]);
        }
        let email = match &config.email {
            Some(email) => email::EmailSender::new(email).map_err(|error| error.to_string()),
            None => Err("no SMTP server: add [notify.email]".to_owned()),
        };
        if let (Err(error), true) = (&email, config.email.is_some()) {
            tracing::error!(%error, "email receivers cannot send");
        }
        Self {
            chat: ChatSenders::default(),
            receivers,
            webhooks,
            email,
            client: reqwest::Client::new(),
            auditor,
            telemetry,
            replay: Vec::new(),
            receipts: std::sync::Mutex::new(JoinSet::new()),
        }
    }

    /// Loads what a previous run dispatched and did not deliver; [`Notifier::run`] delivers
    /// it first. Call before the router starts. Returns how many dispatches wait.
    pub fn recover(&mut self) -> Result<usize, memory::StoreError> {
        self.replay = pending::load(self.auditor.store().state())?;
        Ok(self.replay.len())
    }

    /// The lane a dispatch is delivered in: its group's own when every target of its receiver
    /// is a webhook or the log (as Alertmanager delivers each group on its own), one lane for
    /// all the rest, so chats and mail servers get their messages one at a time, in order.
    fn lane(&self, dispatch: &Dispatch) -> Option<(String, String)> {
        let parallel = self
            .receivers
            .get(&dispatch.receiver)
            .is_some_and(|targets| {
                targets
                    .iter()
                    .all(|target| matches!(target, Target::Log | Target::Webhook(_)))
            });
        parallel.then(|| (dispatch.receiver.clone(), dispatch.group_key.clone()))
    }

    /// Delivers `telegram` and `slack` receivers through these senders.
    pub fn with_chat(mut self, chat: ChatSenders) -> Self {
        self.chat = chat;
        self
    }

    /// Delivers until `stop` turns true (or every sender is gone), then delivers whatever is
    /// still queued and returns. The daemon stops the router first, so nothing arrives later.
    pub async fn run(
        mut self,
        mut queue: mpsc::UnboundedReceiver<Dispatch>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        for Pending { dispatch, done } in std::mem::take(&mut self.replay) {
            let targets: Vec<String> = self
                .receivers
                .get(&dispatch.receiver)
                .into_iter()
                .flatten()
                .map(|target| target.label(&self.webhooks))
                .filter(|label| !done.contains(label))
                .collect();
            tracing::warn!(dispatch = dispatch.id, group = %dispatch.group_key, ?targets, "delivering a dispatch the previous run did not finish");
            self.journal(
                "notification.replayed",
                &dispatch.group_key,
                serde_json::json!({
                    "dispatch": dispatch.id,
                    "receiver": dispatch.receiver,
                    "kind": dispatch.kind,
                    "dispatched_at": dispatch.at,
                    "targets": targets,
                    "already_delivered": done,
                }),
            )
            .await;
            self.deliver_to(&dispatch, &done).await;
        }
        let notifier = Arc::new(self);
        let mut lanes = Lanes::new();
        loop {
            let next = tokio::select! {
                biased;
                dispatch = queue.recv() => dispatch,
                stopped = stop.wait_for(|stop| *stop) => {
                    // Either way (stop, or the daemon dropped the sender) we are done.
                    let _ = stopped.is_ok();
                    None
                }
            };
            match next {
                Some(dispatch) => lanes.start(&notifier, dispatch).await,
                None => break,
            }
        }
        while let Ok(dispatch) = queue.try_recv() {
            lanes.start(&notifier, dispatch).await;
        }
        lanes.finish().await;
        let mut receipts = std::mem::take(
            &mut *notifier
                .receipts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        while receipts.join_next().await.is_some() {}
        tracing::debug!("notifier drained");
    }

    fn log(dispatch: &Dispatch) {
        if dispatch.kind == DispatchKind::Briefing {
            for alert in &dispatch.alerts {
                tracing::info!(group = %dispatch.group_key, "BRIEFING {}", alert.summary);
            }
            return;
        }
        if let Some(silence) = &dispatch.silence {
            tracing::warn!(
                silence = %silence.id,
                ends_at = %silence.ends_at.to_rfc3339(),
                created_by = %silence.created_by,
                "SILENCE {} expires soon: {}",
                silence.matchers.join(","),
                silence.comment
            );
        }
        // A group notification carries the whole group; the log tells only the news (a
        // repeat or an escalation is news about all of it).
        let news = dispatch.kind != DispatchKind::Notification || dispatch.changed.is_empty();
        for alert in dispatch
            .alerts
            .iter()
            .filter(|alert| news || dispatch.changed.contains(&alert.key))
        {
            let kind = dispatch.kind.as_str();
            match (alert.status, alert.severity) {
                (AlertStatus::Firing, Severity::Critical) => {
                    tracing::error!(alert = %alert.key, severity = %alert.severity, group = %dispatch.group_key, kind, "ALERT {}", alert.summary)
                }
                (AlertStatus::Firing, _) => {
                    tracing::warn!(alert = %alert.key, severity = %alert.severity, group = %dispatch.group_key, kind, "ALERT {}", alert.summary)
                }
                (AlertStatus::Resolved, _) => {
                    tracing::info!(alert = %alert.key, severity = %alert.severity, group = %dispatch.group_key, kind, "RESOLVED {}", alert.summary)
                }
            }
        }
    }

    /// Journals a delivery under the first alert's key (or the silence id).
    async fn journal(&self, kind: &str, subject: &str, record: serde_json::Value) {
        if let Err(error) = self
            .auditor
            .record("notifier", kind, subject, &record)
            .await
        {
            tracing::error!(%error, "could not journal a notification");
        }
    }

    /// Delivers one dispatch to every target of its receiver.
    pub async fn deliver(&self, dispatch: &Dispatch) {
        self.deliver_to(dispatch, &BTreeSet::new()).await;
    }

    /// Delivers one dispatch to the targets of its receiver not in `done`.
    async fn deliver_to(&self, dispatch: &Dispatch, done: &BTreeSet<String>) {
        let first = dispatch.alerts.first();
        let subject = first
            .map(|alert| alert.key.clone())
            .or_else(|| dispatch.silence.as_ref().map(|silence| silence.id.clone()))
            .unwrap_or_default();
        let keys: Vec<&str> = dispatch
            .alerts
            .iter()
            .map(|alert| alert.key.as_str())
            .collect();
        let record = |receiver: &str, channel: &str| {
            serde_json::json!({
                "receiver": receiver,
                "channel": channel,
                "alert": subject,
                "alerts": keys,
                "group": dispatch.group_key,
                "dispatch": dispatch.kind,
                "status": dispatch.status,
            })
        };
        let Some(targets) = self.receivers.get(&dispatch.receiver) else {
            tracing::error!(receiver = %dispatch.receiver, "dispatch to an unknown receiver");
            self.count(&dispatch.receiver, "failed");
            let mut body = record(&dispatch.receiver, "none");
            body["error"] = serde_json::json!("no such receiver in [alerting.receivers]");
            self.journal("notification.failed", &subject, body).await;
            Completion::new(self.auditor.store().state().clone(), dispatch.id, 0);
            return;
        };
        let targets: Vec<(&Target, String)> = targets
            .iter()
            .map(|target| (target, target.label(&self.webhooks)))
            .filter(|(_, label)| !done.contains(label))
            .collect();
        let completion = Completion::new(
            self.auditor.store().state().clone(),
            dispatch.id,
            targets.len(),
        );
        let body = match serde_json::to_vec(&WebhookPayload {
            version: 1,
            event: event_kind(dispatch),
            alert: first,
            group: GroupPayload {
                key: &dispatch.group_key,
                receiver: &dispatch.receiver,
                kind: dispatch.kind,
                status: dispatch.status,
                labels: &dispatch.group_labels,
                alerts: &dispatch.alerts,
                changed: &dispatch.changed,
            },
            silence: dispatch.silence.as_ref(),
        }) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, group = %dispatch.group_key, "dispatch is not serializable");
                return;
            }
        };
        for (target, label) in targets {
            match target {
                Target::Log => {
                    Self::log(dispatch);
                    self.count("log", "sent");
                    completion.done(&label);
                }
                Target::Telegram(chat_id) => {
                    let text =
                        crate::channels::telegram::client::escape_markdown_v2(&chat_text(dispatch));
                    // A big group goes out in several messages, the buttons under the last.
                    let parts = crate::commands::render::telegram::split(
                        &text,
                        crate::channels::telegram::client::MAX_MESSAGE_CHARS,
                    );
                    let queued = match &self.chat.telegram {
                        Some(outbox) => {
                            let last = parts.len().saturating_sub(1);
                            parts
                                .into_iter()
                                .enumerate()
                                .map(|(index, part)| {
                                    let buttons =
                                        (index == last).then(|| telegram_buttons(dispatch));
                                    outbox
                                        .send_tracked(*chat_id, part, buttons.flatten())
                                        .map(|(_, receipt)| receipt)
                                })
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(|error| error.to_string())
                        }
                        None => Err("the Telegram bot is not running".to_owned()),
                    };
                    let mut body = record(&dispatch.receiver, "telegram");
                    body["chat_id"] = serde_json::json!(chat_id);
                    match queued {
                        Ok(receipts) => {
                            // The outbox paces per chat; the receipt says how it ended.
                            let notifier = TelegramReceipt {
                                auditor: self.auditor.clone(),
                                telemetry: self.telemetry.clone(),
                                receiver: dispatch.receiver.clone(),
                                subject: subject.clone(),
                                body,
                                completion: completion.clone(),
                                label,
                            };
                            self.receipts
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .spawn(notifier.wait(receipts));
                            self.reap_receipts();
                        }
                        Err(error) => {
                            body["error"] = serde_json::json!(error);
                            self.count(&dispatch.receiver, "failed");
                            completion.done(&label);
                            self.journal("notification.failed", &subject, body).await;
                        }
                    }
                }
                Target::Slack(channel) => {
                    let text = chat_text(dispatch);
                    let posted = match &self.chat.slack {
                        Some(client) => client
                            .post_message(channel, &text, slack_blocks(dispatch, &text))
                            .await
                            .map(|fetched| fetched.value.ts)
                            .map_err(|error| error.to_string()),
                        None => Err("the Slack app is not configured".to_owned()),
                    };
                    let mut body = record(&dispatch.receiver, "slack");
                    body["slack_channel"] = serde_json::json!(channel);
                    body["ts"] = serde_json::json!(posted.as_ref().ok());
                    body["error"] = serde_json::json!(posted.as_ref().err());
                    self.count(
                        &dispatch.receiver,
                        if posted.is_ok() { "sent" } else { "failed" },
                    );
                    let kind = if posted.is_ok() {
                        "notification.sent"
                    } else {
                        "notification.failed"
                    };
                    if let Err(error) = &posted {
                        tracing::error!(receiver = %dispatch.receiver, %error, "slack delivery failed");
                    }
                    // Marked before the journal entry, whose flush makes the mark durable.
                    completion.done(&label);
                    self.journal(kind, &subject, body).await;
                }
                Target::Email(to) => {
                    let started = Instant::now();
                    let recipients: Vec<String> =
                        to.iter().map(|mailbox| mailbox.email.to_string()).collect();
                    let outcome = match &self.email {
                        Ok(sender) => sender.deliver(dispatch, to).await,
                        Err(message) => email::EmailOutcome {
                            attempts: 0,
                            message_id: String::new(),
                            code: None,
                            error: Some(email::EmailError::InvalidInput {
                                key: "notify.email".to_owned(),
                                message: message.clone(),
                            }),
                        },
                    };
                    let delivered = outcome.error.is_none();
                    if delivered && let Some(alert) = first {
                        let latency = (Utc::now() - alert.at).to_std().unwrap_or(Duration::ZERO);
                        self.telemetry
                            .alert_delivery_latency
                            .observe(latency.as_secs_f64());
                    }
                    self.count(
                        &dispatch.receiver,
                        if delivered { "sent" } else { "failed" },
                    );
                    let mut body = record(&dispatch.receiver, "email");
                    body["recipients"] = serde_json::json!(recipients);
                    body["message_id"] = serde_json::json!(outcome.message_id);
                    body["attempts"] = serde_json::json!(outcome.attempts);
                    body["smtp_code"] = serde_json::json!(outcome.code);
                    body["error"] =
                        serde_json::json!(outcome.error.as_ref().map(ToString::to_string));
                    body["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
                    let kind = if delivered {
                        "notification.sent"
                    } else {
                        "notification.failed"
                    };
                    if let Some(error) = &outcome.error {
                        tracing::error!(receiver = %dispatch.receiver, group = %dispatch.group_key, attempts = outcome.attempts, %error, "email delivery failed");
                    }
                    completion.done(&label);
                    self.journal(kind, &subject, body).await;
                }
                Target::Unavailable(kind) => {
                    tracing::error!(receiver = %dispatch.receiver, kind, "receiver kind cannot deliver in this build");
                    self.count(&dispatch.receiver, "failed");
                    let mut body = record(&dispatch.receiver, kind);
                    body["error"] =
                        serde_json::json!(format!("{kind} receivers are not available yet"));
                    completion.done(&label);
                    self.journal("notification.failed", &subject, body).await;
                }
                Target::Webhook(index) => {
                    let Some(webhook) = self.webhooks.get(*index) else {
                        completion.done(&label);
                        continue;
                    };
                    let started = Instant::now();
                    let outcome = self.post(webhook, event_kind(dispatch), &body).await;
                    let delivered = outcome.error.is_none();
                    if delivered && let Some(alert) = first {
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
                    let mut body = record(&webhook.config.name, "webhook");
                    body["attempts"] = serde_json::json!(outcome.attempts);
                    body["http_status"] = serde_json::json!(outcome.status);
                    body["error"] = serde_json::json!(outcome.error);
                    body["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
                    completion.done(&label);
                    self.journal(kind, &subject, body).await;
                    if let Some(error) = outcome.error {
                        tracing::error!(receiver = %webhook.config.name, group = %dispatch.group_key, %error, "webhook delivery failed");
                    }
                }
            }
        }
    }

    fn count(&self, receiver: &str, outcome: &str) {
        count(&self.telemetry, receiver, outcome);
    }

    /// Drops the receipt tasks that have finished.
    fn reap_receipts(&self) {
        let mut receipts = self
            .receipts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while receipts.try_join_next().is_some() {}
    }

    async fn post(&self, webhook: &Webhook, event: &'static str, body: &[u8]) -> DeliveryOutcome {
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
                .header(EVENT_HEADER, event)
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

fn count(telemetry: &Telemetry, receiver: &str, outcome: &str) {
    telemetry
        .notifications
        .get_or_create(&NotificationLabels {
            receiver: receiver.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Journals a Telegram delivery when the outbox has sent it (or given up).
struct TelegramReceipt {
    auditor: Auditor,
    telemetry: Telemetry,
    receiver: String,
    subject: String,
    body: serde_json::Value,
    completion: Arc<Completion>,
    label: String,
}

impl TelegramReceipt {
    async fn wait(
        mut self,
        receipts: Vec<
            tokio::sync::oneshot::Receiver<crate::channels::telegram::client::OutboxReceipt>,
        >,
    ) {
        use crate::channels::telegram::client::OutboxOutcome;
        let mut message_ids = Vec::new();
        let mut attempts = 0;
        let mut errors = Vec::new();
        for receipt in receipts {
            let Ok(receipt) = receipt.await else {
                // The outbox stopped with the message queued (shutdown): not done, so the
                // next run sends it.
                tracing::warn!(receiver = %self.receiver, "telegram outbox stopped before a notification went out; it goes out on the next start");
                return;
            };
            attempts += receipt.attempts;
            match receipt.outcome {
                OutboxOutcome::Sent { message_id, .. } => message_ids.push(message_id),
                OutboxOutcome::Edited => {}
                OutboxOutcome::Failed { error } => errors.push(error.to_string()),
            }
        }
        self.body["attempts"] = serde_json::json!(attempts);
        self.body["message_ids"] = serde_json::json!(message_ids);
        let kind = if errors.is_empty() {
            "notification.sent"
        } else {
            self.body["error"] = serde_json::json!(errors.join("; "));
            "notification.failed"
        };
        count(
            &self.telemetry,
            &self.receiver,
            if kind == "notification.sent" {
                "sent"
            } else {
                "failed"
            },
        );
        self.completion.done(&self.label);
        if let Err(error) = self
            .auditor
            .record("notifier", kind, &self.subject, &self.body)
            .await
        {
            tracing::error!(%error, "could not journal a notification");
        }
    }
}

#[cfg(test)]
mod tests;

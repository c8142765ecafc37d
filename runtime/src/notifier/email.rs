//! Email receivers: the SMTP transport of `[notify.email]` (lettre on rustls with ring;
//! STARTTLS, implicit TLS, or plain to a loopback relay; AUTH PLAIN/LOGIN), a dispatch
//! rendered as a plain-text mail, and delivery with retries of temporary failures only.
//!
//! The password is handed to lettre once, when the transport is built, and is scrubbed from
//! every error text this module returns (a hostile server could echo it back).

use agents::{Alert, AlertStatus};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};
use tools::http::{RetryPolicy, backoff_delay};

use crate::config::{EmailConfig, SmtpSecurity};
use crate::router::{Dispatch, DispatchKind};

/// Longest subject line; longer ones end in `...`.
const MAX_SUBJECT_CHARS: usize = 200;

/// Why a mail was not delivered; the variants are what an operator acts on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EmailError {
    /// `[notify.email]` cannot make a transport (validation reports the same).
    #[error("{key}: {message}")]
    InvalidInput { key: String, message: String },
    /// The server refused the login.
    #[error(
        "{server} refused the login of {username:?} ({code} {message}); check notify.email.username and the password (COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD or notify.email.password_file)"
    )]
    Denied {
        server: String,
        username: String,
        code: u16,
        message: String,
    },
    /// A permanent (5xx) refusal of the message or a recipient; sending again would not help.
    #[error("{server} rejected the mail ({code} {message})")]
    Rejected {
        server: String,
        code: u16,
        message: String,
    },
    /// A temporary failure (4xx), a lost connection or a timeout, still so after the last
    /// attempt.
    #[error("{server} is unavailable: {message}")]
    Unavailable {
        server: String,
        code: Option<u16>,
        message: String,
    },
    /// The TLS handshake failed or the server offered no STARTTLS: never retried, never
    /// downgraded.
    #[error("TLS with {server} failed: {message}")]
    Tls { server: String, message: String },
}

impl EmailError {
    /// The SMTP reply code, when the server gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            EmailError::Denied { code, .. } | EmailError::Rejected { code, .. } => Some(*code),
            EmailError::Unavailable { code, .. } => *code,
            EmailError::InvalidInput { .. } | EmailError::Tls { .. } => None,
        }
    }

    /// Worth another attempt: temporary failures and lost connections.
    pub fn is_transient(&self) -> bool {
        matches!(self, EmailError::Unavailable { .. })
    }
}

/// What one delivery came to.
#[derive(Debug)]
pub struct EmailOutcome {
    pub attempts: u32,
    /// The `Message-ID` of the mail.
    pub message_id: String,
    /// The server's last reply code (250 on success).
    pub code: Option<u16>,
    pub error: Option<EmailError>,
}

/// The TLS settings of `config`: the public roots plus the CAs of `ca_file`. None for
/// `security = "none"`.
pub fn tls_parameters(config: &EmailConfig) -> Result<Option<TlsParameters>, EmailError> {
    if config.security == SmtpSecurity::None {
        return Ok(None);
    }
    let invalid = |key: &str, message: String| EmailError::InvalidInput {
        key: format!("notify.email.{key}"),
        message,
    };
    let mut builder = TlsParameters::builder(config.host.trim().to_owned());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            invalid(
                "ca_file",
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid(
                "ca_file",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the server's certificate",
                    path.display()
                ),
            ));
        }
        let certificate = Certificate::from_pem(&pem).map_err(|error| {
            invalid(
                "ca_file",
                format!("{} is not a PEM certificate: {error}", path.display()),
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map(Some).map_err(|error| {
        invalid(
            if config.ca_file.is_some() {
                "ca_file"
            } else {
                "host"
            },
            format!("cannot set up TLS: {error}"),
        )
    })
}

/// Sends dispatches as mail through one SMTP server; built once from `[notify.email]`.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
    username: Option<String>,
    /// Texts that must never leave this module: the password and its AUTH encodings.
    scrub: Vec<String>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    pub fn new(config: &EmailConfig) -> Result<Self, EmailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|error| EmailError::InvalidInput {
                key: "notify.email.from".to_owned(),
                message: format!("{:?} is not an email address: {error}", config.from),
            })?;
        let host = config.host.trim().to_owned();
        let port = config.port();
        let tls = match (config.security, tls_parameters(config)?) {
            (SmtpSecurity::Starttls, Some(parameters)) => Tls::Required(parameters),
            (SmtpSecurity::Tls, Some(parameters)) => Tls::Wrapper(parameters),
            _ => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout));
        let mut scrub = Vec::new();
        match (&config.username, &config.password) {
            (Some(username), Some(password)) => {
                let password = password.expose();
                scrub.push(password.to_owned());
                scrub.push(BASE64.encode(password));
                scrub.push(BASE64.encode(format!("\0{username}\0{password}")));
                builder =
                    builder.credentials(Credentials::new(username.clone(), password.to_owned()));
            }
            (None, None) => {}
            _ => {
                return Err(EmailError::InvalidInput {
                    key: "notify.email.username".to_owned(),
                    message: "username and password go together".to_owned(),
                });
            }
        }
        scrub.retain(|text| !text.is_empty());
        Ok(Self {
            transport: builder.build(),
            from,
            server: format!("{host}:{port}"),
            username: config.username.clone(),
            scrub,
            policy: RetryPolicy {
                max_attempts: config.max_attempts.max(1),
                base_delay: config.backoff_initial,
                max_delay: config.backoff_max,
                timeout: config.timeout,
            },
        })
    }

    /// Renders `dispatch` for `to` and sends it, retrying temporary failures with backoff.
    pub async fn deliver(&self, dispatch: &Dispatch, to: &[Mailbox]) -> EmailOutcome {
        let message_id = message_id(dispatch, self.from.email.domain(), Utc::now());
        let message = match render(dispatch, &self.from, to, &message_id) {
            Ok(message) => message,
            Err(error) => {
                return EmailOutcome {
                    attempts: 0,
                    message_id,
                    code: None,
                    error: Some(error),
                };
            }
        };
        let mut attempts = 0;
        let mut last_error = None;
        for attempt in 1..=self.policy.max_attempts {
            attempts = attempt;
            match self.transport.send(message.clone()).await {
                Ok(response) => {
                    return EmailOutcome {
                        attempts,
                        message_id,
                        code: Some(u16::from(response.code())),
                        error: None,
                    };
                }
                Err(error) => {
                    let error = self.classify(&error);
                    let transient = error.is_transient();
                    if transient && attempt < self.policy.max_attempts {
                        tracing::warn!(server = %self.server, attempt, %error, "mail not sent; trying again");
                    }
                    last_error = Some(error);
                    if !transient {
                        break;
                    }
                }
            }
            if attempt < self.policy.max_attempts {
                tokio::time::sleep(backoff_delay(
                    &self.policy,
                    attempt,
                    None,
                    rand::random::<f64>(),
                ))
                .await;
            }
        }
        EmailOutcome {
            attempts,
            message_id,
            code: last_error.as_ref().and_then(EmailError::code),
            error: last_error,
        }
    }

    fn clean(&self, text: &str) -> String {
        self.scrub
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
    }

    /// What lettre's error means for the operator, without the password.
    fn classify(&self, error: &lettre::transport::smtp::Error) -> EmailError {
        let server = self.server.clone();
        if let Some(code) = error.status() {
            let code = u16::from(code);
            // lettre shows "permanent error (535): <server text>"; keep the server's text.
            let text = error.to_string();
            let message = self.clean(
                text.split_once("): ")
                    .map_or(text.as_str(), |(_, message)| message)
                    .trim(),
            );
            return match code {
                534 | 535 => EmailError::Denied {
                    server,
                    username: self.username.clone().unwrap_or_default(),
                    code,
                    message,
                },
                500..=599 => EmailError::Rejected {
                    server,
                    code,
                    message,
                },
                _ => EmailError::Unavailable {
                    server,
                    code: Some(code),
                    message: format!("{code} {message}"),
                },
            };
        }
        let text = self.clean(&error.to_string());
        if tls_failure(error) {
            return EmailError::Tls {
                server,
                message: format!(
                    "{text}; if the server's certificate comes from a private CA, give that CA in notify.email.ca_file"
                ),
            };
        }
        if text.contains("STARTTLS is not supported") {
            return EmailError::Tls {
                server,
                message: "the server does not offer STARTTLS; use security = \"tls\" if it speaks TLS from the first byte (port 465)".to_owned(),
            };
        }
        if error.is_timeout() {
            return EmailError::Unavailable {
                server,
                code: None,
                message: format!(
                    "no answer within {}",
                    agents::duration::format(self.policy.timeout)
                ),
            };
        }
        if error.is_client() {
            // lettre refused before anything was sent (no AUTH mechanism in common, 8-bit
            // content to a server without 8BITMIME): trying again gives the same answer.
            return EmailError::Rejected {
                server,
                code: 0,
                message: text,
            };
        }
        EmailError::Unavailable {
            server,
            code: None,
            message: text,
        }
    }
}

/// Whether a rustls error (a certificate not trusted, a name mismatch, a failed handshake)
/// is somewhere in `error`'s chain.
fn tls_failure(error: &lettre::transport::smtp::Error) -> bool {
    if error.is_tls() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        if current.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// The id all mails of one group refer to, so mail clients show them as one thread.
pub fn thread_id(dispatch: &Dispatch, domain: &str) -> String {
    let thread = match &dispatch.silence {
        Some(silence) => format!("silence:{}", silence.id),
        None => format!("{}\n{}", dispatch.receiver, dispatch.group_key),
    };
    let digest = hex::encode(Sha256::digest(thread.as_bytes()));
    format!("<cc.{}@{domain}>", &digest[..32])
}

/// A new `Message-ID` within the group's thread.
pub fn message_id(dispatch: &Dispatch, domain: &str, now: DateTime<Utc>) -> String {
    let thread = thread_id(dispatch, domain);
    let local = thread
        .trim_start_matches('<')
        .split('@')
        .next()
        .unwrap_or("cc");
    format!(
        "<{local}.{}.{:08x}@{domain}>",
        now.timestamp_millis(),
        rand::random::<u32>()
    )
}

/// The group's labels as `name=value` pairs, or the first alert's key.
fn group_name(dispatch: &Dispatch) -> String {
    if dispatch.group_labels.is_empty() {
        return dispatch
            .alerts
            .first()
            .map(|alert| alert.key.clone())
            .unwrap_or_default();
    }
    dispatch
        .group_labels
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[FIRING:2] validator=bravo: bravo is short of stake` (the first firing alert's summary),
/// `[RESOLVED] ...`, `[FIRING:1, escalated] ...`, `[SILENCE EXPIRING] ...`.
pub fn subject(dispatch: &Dispatch) -> String {
    let text = if dispatch.kind == DispatchKind::Briefing {
        let title = dispatch
            .alerts
            .first()
            .map(|alert| alert.summary.as_str())
            .unwrap_or_default();
        format!("[BRIEFING] {title}")
    } else if let Some(silence) = &dispatch.silence {
        format!(
            "[SILENCE EXPIRING] {} ends {}",
            silence.matchers.join(", "),
            silence.ends_at.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        let firing: Vec<&Alert> = dispatch
            .alerts
            .iter()
            .filter(|alert| alert.status == AlertStatus::Firing)
            .collect();
        let tag = match (dispatch.status, dispatch.kind) {
            (AlertStatus::Resolved, _) => "[RESOLVED]".to_owned(),
            (_, DispatchKind::Repeat) => format!("[FIRING:{}, repeat]", firing.len()),
            (_, DispatchKind::Escalation) => format!("[FIRING:{}, escalated]", firing.len()),
            _ => format!("[FIRING:{}]", firing.len()),
        };
        let headline = firing
            .first()
            .copied()
            .or(dispatch.alerts.first())
            .map(|alert| alert.summary.as_str())
            .unwrap_or_default();
        format!("{tag} {}: {headline}", group_name(dispatch))
    };
    // Headers are one line; summaries should be, but are not checked upstream.
    let text = text.replace(['\r', '\n'], " ");
    if text.chars().count() > MAX_SUBJECT_CHARS {
        let cut: String = text.chars().take(MAX_SUBJECT_CHARS - 3).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// http(s) links anywhere in `value` (release notes, dashboards), at most `limit`.
fn links(value: &serde_json::Value, limit: usize, found: &mut Vec<String>) {
    if found.len() >= limit {
        return;
    }
    match value {
        serde_json::Value::String(text)
            if (text.starts_with("https://") || text.starts_with("http://"))
                && !text.contains(char::is_whitespace)
                && !found.contains(text) =>
        {
            found.push(text.clone());
        }
        serde_json::Value::Array(items) => {
            for item in items {
                links(item, limit, found);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values() {
                links(item, limit, found);
            }
        }
        _ => {}
    }
}

/// The plain-text body: the chat text, then each alert with its labels, evidence and links,
/// then how to acknowledge or silence from the CLI.
pub fn body(dispatch: &Dispatch) -> String {
    let mut out = super::chat_text(dispatch);
    if dispatch.kind == DispatchKind::Briefing {
        out.push('\n');
        return out;
    }
    out.push_str("\n\n");
    if dispatch.silence.is_none() {
        out.push_str(&format!(
            "Group: {}\nReceiver: {}\n",
            group_name(dispatch),
            dispatch.receiver
        ));
    }
    for alert in &dispatch.alerts {
        let status = match alert.status {
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "RESOLVED",
        };
        let news = if dispatch.changed.contains(&alert.key) {
            " (new)"
        } else {
            ""
        };
        out.push_str(&format!(
            "\n-- {} --\nStatus:   {status}{news}, {}\nRule:     {}\nSummary:  {}\nSince:    {}\n",
            alert.key,
            alert.severity,
            alert.rule,
            alert.summary,
            alert.starts_at.format("%Y-%m-%d %H:%M:%S UTC"),
        ));
        if alert.status == AlertStatus::Resolved {
            out.push_str(&format!(
                "Resolved: {}\n",
                alert.at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        if !alert.labels.is_empty() {
            out.push_str("Labels:\n");
            for (name, value) in &alert.labels {
                out.push_str(&format!("  {name} = {value}\n"));
            }
        }
        if !alert.evidence.is_null() {
            let evidence = serde_json::to_string_pretty(&alert.evidence).unwrap_or_default();
            out.push_str("Evidence:\n");
            for line in evidence.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        let mut found = Vec::new();
        links(&alert.evidence, 5, &mut found);
        if !found.is_empty() {
            out.push_str("Links:\n");
            for link in found {
                out.push_str(&format!("  {link}\n"));
            }
        }
    }
    let firing: Vec<&Alert> = dispatch
        .alerts
        .iter()
        .filter(|alert| alert.status == AlertStatus::Firing)
        .collect();
    if let Some(first) = firing.first() {
        out.push_str(&format!(
            "\nAcknowledge (stops repeats and escalation):\n  command-center alerts ack {key}\nSilence:\n  command-center silence add --matcher key={key} --for 2h --comment \"...\"\n",
            key = first.key
        ));
    }
    out.push_str("\n-- \nCommand Center\n");
    out
}

/// The mail for `dispatch`: threaded by group (`References` and `In-Reply-To` name the
/// group's thread id), marked as automatic (`Auto-Submitted`) so vacation responders stay
/// quiet, and carrying the event kind for filters.
pub fn render(
    dispatch: &Dispatch,
    from: &Mailbox,
    to: &[Mailbox],
    message_id: &str,
) -> Result<Message, EmailError> {
    let thread = thread_id(dispatch, from.email.domain());
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject(dispatch))
        .message_id(Some(message_id.to_owned()))
        .in_reply_to(thread.clone())
        .references(thread)
        .user_agent("Command Center".to_owned())
        .header(ContentType::TEXT_PLAIN);
    for recipient in to {
        builder = builder.to(recipient.clone());
    }
    let mut message = builder
        .body(body(dispatch))
        .map_err(|error| EmailError::InvalidInput {
            key: "alerting.receivers.to".to_owned(),
            message: format!("cannot build the mail: {error}"),
        })?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_owned(),
    ));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Command-Center-Event"),
        super::event_kind(dispatch).to_owned(),
    ));
    Ok(message)
}

/// `to` as mailboxes; the problems (index, message) of those that do not parse.
pub fn parse_recipients(to: &[String]) -> Result<Vec<Mailbox>, Vec<(usize, String)>> {
    let mut mailboxes = Vec::new();
    let mut problems = Vec::new();
    for (index, text) in to.iter().enumerate() {
        match text.trim().parse::<Mailbox>() {
            Ok(mailbox) => mailboxes.push(mailbox),
            Err(error) => problems.push((
                index,
                format!("{text:?} is not an email address ({error}); write name@example.com or \"Name <name@example.com>\""),
            )),
        }
    }
    if problems.is_empty() {
        Ok(mailboxes)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;

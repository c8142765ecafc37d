//! A simulated SMTP server for the email receivers' tests: tokio on 127.0.0.1, one task per
//! connection, the commands a submission client sends (`EHLO`/`HELO`, `STARTTLS`,
//! `AUTH PLAIN` and `AUTH LOGIN`, `MAIL FROM`, `RCPT TO`, `DATA` with dot-unstuffing, `RSET`,
//! `NOOP`, `QUIT`), STARTTLS or implicit TLS with a certificate the test supplies (see
//! [`SimCertificates::generate`]: a private CA and a leaf for the loopback names), and
//! injected faults ([`SmtpFault`]: 421/451 temporary failures, 535 refused logins, 550
//! rejections). Like a real submission server it refuses `MAIL` and `AUTH` before `STARTTLS`
//! when TLS is on, and `MAIL` before `AUTH` when a login is configured.
//!
//! Every accepted message is recorded ([`SmtpSim::messages`]); [`SmtpSim::wait_for_messages`]
//! waits for a count without polling. Passwords are compared, never recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::SimError;

/// The name the sim greets with.
pub const SMTP_SIM_HOSTNAME: &str = "smtp.sim.local";
/// Longest command line read (RFC 5321 allows 512; AUTH lines may be longer).
const MAX_LINE_BYTES: usize = 4096;
/// Largest message kept; larger ones get 552.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// A private CA and a server certificate it signed, for TLS on loopback. The test writes
/// [`SimCertificates::ca_pem`] to the client's CA file; the client verifies as usual.
#[derive(Clone)]
pub struct SimCertificates {
    /// The CA certificate, PEM: what a client must trust.
    pub ca_pem: String,
    /// The server's certificate chain (leaf first).
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for SimCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCertificates")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SimCertificates {
    /// A new CA ("Command Center sim CA") and a leaf for `names` (DNS names or IP addresses,
    /// e.g. `["localhost", "127.0.0.1"]`) signed by it.
    pub fn generate(names: &[&str]) -> Result<Self, SimError> {
        let fail = |error: rcgen::Error| SimError::Certificate {
            message: error.to_string(),
        };
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Command Center sim CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(fail)?;

        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut leaf_params = rcgen::CertificateParams::new(names).map_err(fail)?;
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, SMTP_SIM_HOSTNAME);
        leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = rcgen::KeyPair::generate().map_err(fail)?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(fail)?;
        Ok(Self {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key_der: leaf_key.serialize_der(),
        })
    }

    fn acceptor(&self) -> Result<TlsAcceptor, SimError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(self.chain.clone(), key)
            })
            .map_err(|error| SimError::Certificate {
                message: error.to_string(),
            })?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// How clients reach the sim.
#[derive(Clone, Debug, Default)]
pub enum SmtpSimSecurity {
    /// Plain text only (no STARTTLS offered).
    #[default]
    Plain,
    /// Plain connect; `STARTTLS` must come before `AUTH` and `MAIL`.
    Starttls(SimCertificates),
    /// TLS from the first byte.
    ImplicitTls(SimCertificates),
}

/// What the sim requires.
#[derive(Clone, Debug, Default)]
pub struct SmtpSimOptions {
    pub security: SmtpSimSecurity,
    /// `(username, password)`: `AUTH` is offered and required before `MAIL`. None: no AUTH.
    pub login: Option<(String, String)>,
}

/// Where in a session a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpStage {
    /// The greeting (a 4xx here is what a busy server says before closing).
    Connect,
    /// `AUTH`, whatever the credentials (535 or 454).
    Auth,
    /// `MAIL FROM`: the start of a transaction.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// After the data's final dot; the message is not kept.
    Data,
}

/// Answer the next `count` commands of `stage` with `code` instead of success. `421` also
/// closes the connection, as servers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SmtpFault {
    pub stage: SmtpStage,
    pub code: u16,
    pub count: u32,
}

/// One message the sim accepted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SmtpMessage {
    /// Wall clock.
    pub received_at: DateTime<Utc>,
    /// The `MAIL FROM` address (without the angle brackets).
    pub mail_from: String,
    /// The `RCPT TO` addresses, in order.
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the final dot (CRLF line ends).
    pub data: String,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The username the session logged in with.
    pub authenticated_as: Option<String>,
}

impl SmtpMessage {
    /// The header block, unfolded: `(name, raw value)` in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self
            .data
            .split_once("\r\n\r\n")
            .map_or(self.data.as_str(), |(head, _)| head);
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        headers
    }

    /// The first header named `name` (any case), unfolded, with RFC 2047 encoded words
    /// (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| decode_encoded_words(&value))
    }

    /// The body of a single-part message, its transfer encoding (quoted-printable, base64)
    /// undone; line ends as sent (CRLF).
    pub fn text_body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body);
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                BASE64
                    .decode(compact)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|_| body.to_owned())
            }
            _ => body.to_owned(),
        }
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'=' if bytes.get(index + 1..index + 3) == Some(b"\r\n") => index += 3,
            b'=' if bytes.get(index + 1) == Some(&b'\n') => index += 2,
            b'=' => match bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    index += 3;
                }
                None => {
                    out.push(b'=');
                    index += 1;
                }
            },
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes the `=?charset?b|q?text?=` words of a header value (UTF-8 and ASCII charsets);
/// whitespace between two encoded words is dropped, as RFC 2047 says.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut previous_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        let decoded = candidate[2..].split_once('?').and_then(|(_, after)| {
            let (encoding, after) = after.split_once('?')?;
            let (text, after) = after.split_once("?=")?;
            let bytes = match encoding.to_ascii_lowercase().as_str() {
                "b" => BASE64.decode(text).ok()?,
                "q" => decode_quoted_printable(&text.replace('_', " ")).into_bytes(),
                _ => return None,
            };
            Some((String::from_utf8_lossy(&bytes).into_owned(), after))
        });
        match decoded {
            Some((word, after)) => {
                if !(previous_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&word);
                rest = after;
                previous_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                previous_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What the sim saw, owned by the server behind one lock (never held across an await).
#[derive(Default)]
struct SmtpState {
    messages: Vec<SmtpMessage>,
    faults: Vec<SmtpFault>,
    sessions: u32,
    /// `MAIL FROM` commands seen, failed ones included.
    transactions: u32,
    /// `AUTH` exchanges that ended in a refusal.
    auth_failures: u32,
    /// Command verbs in order, per session (`AUTH` arguments are never kept).
    commands: Vec<Vec<String>>,
}

impl SmtpState {
    fn take_fault(&mut self, stage: SmtpStage) -> Option<u16> {
        let fault = self
            .faults
            .iter_mut()
            .find(|fault| fault.stage == stage && fault.count > 0)?;
        fault.count -= 1;
        Some(fault.code)
    }
}

struct Shared {
    options: SmtpSimOptions,
    acceptor: Option<TlsAcceptor>,
    state: Mutex<SmtpState>,
    /// Count of accepted messages, for [`SmtpSim::wait_for_messages`].
    received: watch::Sender<usize>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, SmtpState> {
        // A panicking session must not take the records with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulated SMTP server; stops when dropped.
pub struct SmtpSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSim {
    fn drop(&mut self) {
        // The accept task owns the sessions' JoinSet, so they end with it.
        self.task.abort();
    }
}

impl SmtpSim {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(options: SmtpSimOptions) -> Result<SmtpSim, SimError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| SimError::Bind {
                addr,
                message: error.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|error| SimError::Bind {
            addr,
            message: error.to_string(),
        })?;
        let acceptor = match &options.security {
            SmtpSimSecurity::Plain => None,
            SmtpSimSecurity::Starttls(certificates)
            | SmtpSimSecurity::ImplicitTls(certificates) => Some(certificates.acceptor()?),
        };
        let (received, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            options,
            acceptor,
            state: Mutex::new(SmtpState::default()),
            received,
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let shared = Arc::clone(&serving);
                            sessions.spawn(async move {
                                if let Err(error) = session(shared, stream).await {
                                    tracing::debug!(%peer, %error, "smtp sim session ended with an error");
                                }
                            });
                        }
                        Err(error) => {
                            tracing::warn!(%error, "smtp sim accept failed");
                        }
                    },
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        });
        tracing::info!(addr = %local_addr, "smtp sim listening");
        Ok(SmtpSim {
            addr: local_addr,
            shared,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Adds a fault; faults of one stage are used in the order they were added.
    pub fn inject(&self, fault: SmtpFault) {
        self.shared.state().faults.push(fault);
    }

    /// The messages accepted so far.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.shared.state().messages.clone()
    }

    /// Waits until `count` messages were accepted (or `timeout` passed) and returns them all;
    /// the caller checks the length.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<SmtpMessage> {
        let mut received = self.shared.received.subscribe();
        // Timeout or a closed channel both end the wait.
        let _ = tokio::time::timeout(timeout, received.wait_for(|n| *n >= count)).await;
        self.messages()
    }

    /// Connections accepted.
    pub fn sessions(&self) -> u32 {
        self.shared.state().sessions
    }

    /// `MAIL FROM` commands seen, refused ones included.
    pub fn transactions(&self) -> u32 {
        self.shared.state().transactions
    }

    /// `AUTH` exchanges refused.
    pub fn auth_failures(&self) -> u32 {
        self.shared.state().auth_failures
    }

    /// The command verbs of each session, in order (`EHLO`, `STARTTLS`, `AUTH`, ...).
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.shared.state().commands.clone()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The standard text of a reply code the sim sends for a fault.
fn fault_reply(code: u16) -> String {
    let text = match code {
        421 => "4.3.2 Service not available, closing transmission channel",
        450 => "4.2.1 Mailbox busy, try again later",
        451 => "4.3.0 Temporary local problem, try again later",
        452 => "4.3.1 Insufficient system storage",
        454 => "4.7.0 Temporary authentication failure",
        535 => "5.7.8 Authentication credentials invalid",
        550 => "5.1.1 Mailbox unavailable",
        552 => "5.3.4 Message size exceeds fixed limit",
        553 => "5.1.3 Mailbox name not allowed",
        554 => "5.7.1 Message rejected",
        _ => "simulated failure",
    };
    format!("{code} {text}")
}

/// Per-connection state.
#[derive(Default)]
struct Session {
    greeted: bool,
    tls: bool,
    authenticated_as: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Session {
    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }
}

struct Connection {
    reader: BufReader<Box<dyn Io>>,
}

impl Connection {
    async fn reply(&mut self, line: &str) -> std::io::Result<()> {
        self.reader.get_mut().write_all(line.as_bytes()).await?;
        self.reader.get_mut().write_all(b"\r\n").await?;
        self.reader.get_mut().flush().await
    }

    /// One line without its CRLF; None at end of stream.
    async fn read_line(&mut self, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(limit as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

/// Strips `<...>` around a path (`FROM:<a@b> SIZE=10` -> `a@b`).
fn path_argument(argument: &str, prefix: &str) -> Option<String> {
    let argument = argument.trim();
    if argument.len() < prefix.len() || !argument[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let (path, _) = inner.split_once('>')?;
    Some(path.to_owned())
}

async fn session(shared: Arc<Shared>, stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let session_index = {
        let mut state = shared.state();
        state.sessions += 1;
        state.commands.push(Vec::new());
        state.commands.len() - 1
    };
    let mut session = Session::default();
    let implicit = matches!(shared.options.security, SmtpSimSecurity::ImplicitTls(_));
    let io: Box<dyn Io> = match (&shared.acceptor, implicit) {
        (Some(acceptor), true) => {
            session.tls = true;
            Box::new(acceptor.accept(stream).await?)
        }
        _ => Box::new(stream),
    };
    let mut connection = Connection {
        reader: BufReader::new(io),
    };
    let connect_fault = shared.state().take_fault(SmtpStage::Connect);
    if let Some(code) = connect_fault {
        connection.reply(&fault_reply(code)).await?;
        return Ok(());
    }
    connection
        .reply(&format!(
            "220 {SMTP_SIM_HOSTNAME} ESMTP Command Center sim ready"
        ))
        .await?;
    let starttls_offered = matches!(shared.options.security, SmtpSimSecurity::Starttls(_));
    loop {
        let Some(line) = connection.read_line(MAX_LINE_BYTES).await? else {
            return Ok(());
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        if let Some(commands) = shared.state().commands.get_mut(session_index) {
            commands.push(verb.clone());
        }
        // TLS is on but not yet up: a submission server wants STARTTLS first.
        let needs_tls = starttls_offered && !session.tls;
        match verb.as_str() {
            "EHLO" | "HELO" => {
                session.greeted = true;
                session.reset_transaction();
                if verb == "HELO" {
                    connection
                        .reply(&format!("250 {SMTP_SIM_HOSTNAME}"))
                        .await?;
                    continue;
                }
                let mut lines = vec![
                    format!("{SMTP_SIM_HOSTNAME} greets {}", argument.trim()),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    format!("SIZE {MAX_MESSAGE_BYTES}"),
                ];
                if needs_tls {
                    lines.push("STARTTLS".to_owned());
                }
                if shared.options.login.is_some() && !needs_tls {
                    lines.push("AUTH PLAIN LOGIN".to_owned());
                }
                let last = lines.len() - 1;
                for (index, text) in lines.iter().enumerate() {
                    let separator = if index == last { ' ' } else { '-' };
                    connection.reply(&format!("250{separator}{text}")).await?;
                }
            }
            "STARTTLS" => match (&shared.acceptor, needs_tls) {
                (Some(acceptor), true) => {
                    connection.reply("220 2.0.0 Ready to start TLS").await?;
                    // Anything pipelined after STARTTLS is discarded (RFC 3207).
                    let io = std::mem::replace(
                        &mut connection.reader,
                        BufReader::new(Box::new(tokio::io::duplex(1).0)),
                    )
                    .into_inner();
                    let tls = acceptor.accept(io).await?;
                    connection.reader = BufReader::new(Box::new(tls));
                    session = Session {
                        tls: true,
                        ..Session::default()
                    };
                }
                (Some(_), false) => connection.reply("503 5.5.1 TLS already active").await?,
                (None, _) => connection.reply("454 4.7.0 TLS not available").await?,
            },
            "AUTH" => {
                if !session.greeted {
                    connection.reply("503 5.5.1 Send EHLO first").await?;
                } else if needs_tls {
                    connection
                        .reply("530 5.7.0 Must issue a STARTTLS command first")
                        .await?;
                } else if shared.options.login.is_none() {
                    connection.reply("503 5.5.1 AUTH not offered").await?;
                } else if session.authenticated_as.is_some() {
                    connection.reply("503 5.5.1 Already authenticated").await?;
                } else {
                    let closed = auth(&shared, &mut connection, &mut session, &argument).await?;
                    if closed {
                        return Ok(());
                    }
                }
            }
            "MAIL" => {
                let Some(from) = path_argument(&argument, "FROM:") else {
                    connection
                        .reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                        .await?;
                    continue;
                };
                if !session.greeted {
                    connection.reply("503 5.5.1 Send EHLO first").await?;
                } else if needs_tls {
                    connection
                        .reply("530 5.7.0 Must issue a STARTTLS command first")
                        .await?;
                } else if shared.options.login.is_some() && session.authenticated_as.is_none() {
                    connection
                        .reply("530 5.7.0 Authentication required")
                        .await?;
                } else if session.mail_from.is_some() {
                    connection.reply("503 5.5.1 Nested MAIL command").await?;
                } else {
                    let fault = {
                        let mut state = shared.state();
                        state.transactions += 1;
                        state.take_fault(SmtpStage::Mail)
                    };
                    match fault {
                        Some(code) => {
                            connection.reply(&fault_reply(code)).await?;
                            if code == 421 {
                                return Ok(());
                            }
                        }
                        None => {
                            session.mail_from = Some(from);
                            connection.reply("250 2.1.0 Ok").await?;
                        }
                    }
                }
            }
            "RCPT" => {
                let Some(to) = path_argument(&argument, "TO:") else {
                    connection
                        .reply("501 5.5.4 Syntax: RCPT TO:<address>")
                        .await?;
                    continue;
                };
                if session.mail_from.is_none() {
                    connection.reply("503 5.5.1 Need MAIL before RCPT").await?;
                    continue;
                }
                let fault = shared.state().take_fault(SmtpStage::Rcpt);
                match fault {
                    Some(code) => {
                        connection.reply(&fault_reply(code)).await?;
                        if code == 421 {
                            return Ok(());
                        }
                    }
                    None => {
                        session.rcpt_to.push(to);
                        connection.reply("250 2.1.5 Ok").await?;
                    }
                }
            }
            "DATA" => {
                if session.mail_from.is_none() || session.rcpt_to.is_empty() {
                    connection.reply("503 5.5.1 Need RCPT before DATA").await?;
                    continue;
                }
                connection
                    .reply("354 End data with <CR><LF>.<CR><LF>")
                    .await?;
                let Some(data) = read_data(&mut connection).await? else {
                    return Ok(());
                };
                let fault = shared.state().take_fault(SmtpStage::Data);
                if let Some(code) = fault {
                    session.reset_transaction();
                    connection.reply(&fault_reply(code)).await?;
                    if code == 421 {
                        return Ok(());
                    }
                    continue;
                }
                let Some(data) = data else {
                    session.reset_transaction();
                    connection.reply(&fault_reply(552)).await?;
                    continue;
                };
                let message = SmtpMessage {
                    received_at: Utc::now(),
                    mail_from: session.mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut session.rcpt_to),
                    data,
                    tls: session.tls,
                    authenticated_as: session.authenticated_as.clone(),
                };
                let count = {
                    let mut state = shared.state();
                    state.messages.push(message);
                    state.messages.len()
                };
                shared.received.send_replace(count);
                connection
                    .reply(&format!("250 2.0.0 Ok: queued as SIM{count:06}"))
                    .await?;
            }
            "RSET" => {
                session.reset_transaction();
                connection.reply("250 2.0.0 Ok").await?;
            }
            "NOOP" => connection.reply("250 2.0.0 Ok").await?,
            "QUIT" => {
                connection.reply("221 2.0.0 Bye").await?;
                return Ok(());
            }
            "VRFY" => {
                connection
                    .reply("252 2.0.0 Cannot VRFY user, but will accept message")
                    .await?
            }
            _ => connection.reply("502 5.5.2 Command not recognized").await?,
        }
    }
}

/// Reads the data up to the lone dot and undoes dot-stuffing. Ok(None): the stream ended;
/// Ok(Some(None)): the message was too large (read to its end all the same).
async fn read_data(connection: &mut Connection) -> std::io::Result<Option<Option<String>>> {
    let mut data: Vec<u8> = Vec::new();
    let mut too_large = false;
    loop {
        let Some(line) = connection.read_line(MAX_LINE_BYTES * 256).await? else {
            return Ok(None);
        };
        if line == b"." {
            break;
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() + 2 > MAX_MESSAGE_BYTES {
            too_large = true;
            continue;
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    if too_large {
        return Ok(Some(None));
    }
    Ok(Some(Some(String::from_utf8_lossy(&data).into_owned())))
}

/// The credentials of an `AUTH` exchange; Ok(true) when the client went away mid-way.
async fn auth(
    shared: &Shared,
    connection: &mut Connection,
    session: &mut Session,
    argument: &str,
) -> std::io::Result<bool> {
    let (mechanism, initial) = match argument.trim().split_once(' ') {
        Some((mechanism, initial)) => (mechanism.to_ascii_uppercase(), Some(initial.trim())),
        None => (argument.trim().to_ascii_uppercase(), None),
    };
    let decode = |text: &str| -> Option<String> {
        BASE64
            .decode(text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let credentials: Option<(String, String)> = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(initial) if initial != "=" => initial.to_owned(),
                _ => {
                    connection.reply("334 ").await?;
                    match connection.read_line(MAX_LINE_BYTES).await? {
                        Some(line) => String::from_utf8_lossy(&line).into_owned(),
                        None => return Ok(true),
                    }
                }
            };
            if response.trim() == "*" {
                connection
                    .reply("501 5.7.0 Authentication cancelled")
                    .await?;
                return Ok(false);
            }
            // authzid \0 authcid \0 password
            decode(&response).and_then(|text| {
                let mut parts = text.split('\0');
                let _authorization = parts.next()?;
                let user = parts.next()?.to_owned();
                let password = parts.next()?.to_owned();
                Some((user, password))
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(initial) => decode(initial),
                None => {
                    connection.reply("334 VXNlcm5hbWU6").await?;
                    match connection.read_line(MAX_LINE_BYTES).await? {
                        Some(line) => decode(&String::from_utf8_lossy(&line)),
                        None => return Ok(true),
                    }
                }
            };
            connection.reply("334 UGFzc3dvcmQ6").await?;
            let password = match connection.read_line(MAX_LINE_BYTES).await? {
                Some(line) => decode(&String::from_utf8_lossy(&line)),
                None => return Ok(true),
            };
            user.zip(password)
        }
        _ => {
            connection
                .reply("504 5.5.4 Unrecognized authentication type")
                .await?;
            return Ok(false);
        }
    };
    let fault = shared.state().take_fault(SmtpStage::Auth);
    let accepted = fault.is_none()
        && credentials.as_ref().is_some_and(|(user, password)| {
            shared
                .options
                .login
                .as_ref()
                .is_some_and(|(expected_user, expected_password)| {
                    user == expected_user && password == expected_password
                })
        });
    if accepted {
        session.authenticated_as = credentials.map(|(user, _)| user);
        connection
            .reply("235 2.7.0 Authentication successful")
            .await?;
    } else {
        shared.state().auth_failures += 1;
        connection.reply(&fault_reply(fault.unwrap_or(535))).await?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests;

//! Slack Socket Mode: for teams whose daemon has no public URL. The daemon asks
//! `apps.connections.open` for a WebSocket URL with the app-level token (`xapp-...`),
//! connects, and Slack sends slash commands and button presses over the socket instead of
//! POSTing them. The one place tokio-tungstenite is named.
//!
//! Every envelope is acknowledged at once (`{"envelope_id": ...}`; Slack allows three
//! seconds and sends it again otherwise). A slash command's acknowledgement carries the
//! immediate answer and its full answer goes to its `response_url`; a button press is
//! acknowledged first and then decided. Both go through [`super::SlackService`], exactly as
//! over HTTP. An envelope whose id was seen lately (a redelivery) is acknowledged and not run
//! again. A frame that cannot be read is logged and journaled (`chat.refused`) and the
//! connection goes on.
//!
//! Connections: `disconnect` with `refresh_requested` or `warning` is answered by opening a
//! new connection with a fresh URL at once; a closed or broken connection, or one silent for
//! two ping intervals, is replaced after a backoff; `link_disabled` (Socket Mode was turned
//! off for the app) and a refused app-level token stop the channel with a clear error, since
//! trying again cannot help. The state is in [`SocketModeStatus`] and in `/v1/status` as the
//! source `slack_socket`.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tools::http::{RetryPolicy, SourceError, backoff_delay};
use tools::secret::Secret;
use tools::slack::socket::{
    ConnectionsOpenError, DisconnectReason, RequestKind, SocketEnvelope, SocketModeOpener,
    SocketRequest, ack, parse_envelope,
};
use tools::slack::{SlackPayloadError, block_actions_from_json, slash_command_from_json};
use tracing::{debug, error, info, warn};

use super::{SlackService, Transport};

/// The health registry's name for the connection.
pub const HEALTH_SOURCE: &str = "slack_socket";
/// Envelope ids remembered against redeliveries (Slack redelivers within minutes).
const RECENT_ENVELOPES: usize = 4096;

/// What Socket Mode needs from the configuration.
#[derive(Clone, Debug)]
pub struct SocketModeSettings {
    /// The app-level token (`xapp-...`, scope `connections:write`).
    pub app_token: Secret,
    pub api_base_url: String,
    /// For `apps.connections.open`; its `timeout` also bounds the WebSocket handshake.
    pub retry: RetryPolicy,
    /// How often a ping goes out; a connection silent for two intervals is replaced.
    pub ping_interval: Duration,
    /// First pause before reconnecting after a failure; doubles up to `reconnect_max`.
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
}

impl SocketModeSettings {
    pub fn new(app_token: Secret, api_base_url: &str, retry: RetryPolicy) -> Self {
        Self {
            app_token,
            api_base_url: api_base_url.to_owned(),
            retry,
            ping_interval: Duration::from_secs(10),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
        }
    }
}

/// Where the Socket Mode channel is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketModeStatus {
    /// Opening the first connection.
    Connecting,
    /// Slack said hello; `connections` counts the connections made so far (a refresh makes
    /// one more).
    Connected { connections: u64 },
    /// The connection was lost or could not be made; trying again after a pause.
    Reconnecting { error: String },
    /// Stopped: for shutdown (`error: None`) or for a problem no retry fixes.
    Stopped { error: Option<String> },
}

/// The running channel: its status, and its task for shutdown.
pub struct SocketModeHandle {
    status: watch::Receiver<SocketModeStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl SocketModeHandle {
    pub fn status(&self) -> SocketModeStatus {
        self.status.borrow().clone()
    }

    /// Waits until the status satisfies `done` or `timeout` passes; the status then.
    pub async fn wait_for(
        &self,
        done: impl FnMut(&SocketModeStatus) -> bool,
        timeout: Duration,
    ) -> SocketModeStatus {
        let mut status = self.status.clone();
        // A timeout, or the task gone, ends the wait; the caller looks at the status.
        let _ = tokio::time::timeout(timeout, status.wait_for(done)).await;
        self.status()
    }

    /// Waits (at most `grace`) for the task to end after the stop signal, else aborts it.
    pub async fn join(mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            warn!("slack: Socket Mode did not stop within the grace period");
            self.task.abort();
        }
    }
}

/// Starts Socket Mode; it runs until `stop` turns true or a problem no retry fixes.
pub fn start(
    service: SlackService,
    settings: SocketModeSettings,
    stop: watch::Receiver<bool>,
) -> Result<SocketModeHandle, SourceError> {
    let opener = SocketModeOpener::new(
        &settings.api_base_url,
        settings.app_token.clone(),
        settings.retry.clone(),
    )?;
    let (status, status_rx) = watch::channel(SocketModeStatus::Connecting);
    let runner = Runner {
        service,
        opener,
        settings,
        status,
        stop,
        recent: RecentEnvelopes::new(RECENT_ENVELOPES),
        connections: 0,
    };
    Ok(SocketModeHandle {
        status: status_rx,
        task: tokio::spawn(runner.run()),
    })
}

/// Envelope ids seen lately, so a redelivered envelope is acknowledged and not run twice.
/// Bounded: past `capacity` the oldest id is forgotten.
struct RecentEnvelopes {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentEnvelopes {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Remembers `id`; false when it was already remembered.
    fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

/// How one connection ended.
enum Ended {
    /// Shutdown.
    Stop,
    /// Slack asked for a new connection.
    Refresh(DisconnectReason),
    /// Lost, or never made: reconnect after a pause.
    Lost { error: String, had_hello: bool },
    /// Nothing to retry: stop with this error.
    Fatal(String),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The channel's loop: owns the envelope memory across connections (a redelivery may
/// come on the next connection) and the status.
struct Runner {
    service: SlackService,
    opener: SocketModeOpener,
    settings: SocketModeSettings,
    status: watch::Sender<SocketModeStatus>,
    stop: watch::Receiver<bool>,
    recent: RecentEnvelopes,
    /// Connections made so far.
    connections: u64,
}

impl Runner {
    async fn run(mut self) {
        let backoff = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: self.settings.reconnect_initial,
            max_delay: self.settings.reconnect_max,
            timeout: self.settings.retry.timeout,
        };
        let mut failures: u32 = 0;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let error = match self.connect_once().await {
                Ended::Stop => break,
                Ended::Refresh(reason) => {
                    info!(
                        reason = reason.as_str(),
                        "slack: Slack asked for a new Socket Mode connection; opening one"
                    );
                    failures = 0;
                    continue;
                }
                Ended::Fatal(message) => {
                    error!(error = %message, "slack: Socket Mode stopped; Slack commands and buttons no longer reach this daemon");
                    self.service.app.health.source_failed(
                        HEALTH_SOURCE,
                        &message,
                        chrono::Utc::now(),
                    );
                    self.status.send_replace(SocketModeStatus::Stopped {
                        error: Some(message),
                    });
                    return;
                }
                Ended::Lost { error, had_hello } => {
                    if had_hello {
                        failures = 0;
                    }
                    error
                }
            };
            failures = failures.saturating_add(1);
            let delay = backoff_delay(&backoff, failures, None, rand::random::<f64>());
            warn!(error = %error, attempt = failures, retry_in = ?delay, "slack: Socket Mode connection lost; reconnecting");
            self.service
                .app
                .health
                .source_failed(HEALTH_SOURCE, &error, chrono::Utc::now());
            self.status
                .send_replace(SocketModeStatus::Reconnecting { error });
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        info!("slack: Socket Mode stopped for shutdown");
        self.status
            .send_replace(SocketModeStatus::Stopped { error: None });
    }

    /// Opens one connection with a fresh URL and serves it until it ends.
    async fn connect_once(&mut self) -> Ended {
        let mut stop = self.stop.clone();
        let opened = tokio::select! {
            opened = self.opener.open() => opened,
            _ = stopped(&mut stop) => return Ended::Stop,
        };
        let url = match opened {
            Ok(url) => url,
            Err(denied @ ConnectionsOpenError::Denied { .. }) => {
                return Ended::Fatal(format!("channels.slack.app_token: {denied}"));
            }
            Err(unavailable @ ConnectionsOpenError::Unavailable(_)) => {
                return Ended::Lost {
                    error: unavailable.to_string(),
                    had_hello: false,
                };
            }
        };
        // The URL's query is a connection ticket: only the host is ever shown.
        let host = url.host_str().unwrap_or("?").to_owned();
        let handshake = tokio::time::timeout(
            self.settings.retry.timeout,
            tokio_tungstenite::connect_async(url.as_str()),
        );
        let connected = tokio::select! {
            connected = handshake => connected,
            _ = stopped(&mut stop) => return Ended::Stop,
        };
        let socket = match connected {
            Ok(Ok((socket, _response))) => socket,
            Ok(Err(error)) => {
                let mut error = error.to_string();
                if let Some(ticket) = url.query().filter(|query| !query.is_empty()) {
                    error = error.replace(ticket, "***");
                }
                return Ended::Lost {
                    error: format!("cannot open the Socket Mode WebSocket on {host}: {error}"),
                    had_hello: false,
                };
            }
            Err(_) => {
                return Ended::Lost {
                    error: format!(
                        "no WebSocket handshake with {host} within {:?}",
                        self.settings.retry.timeout
                    ),
                    had_hello: false,
                };
            }
        };
        self.connections += 1;
        debug!(connection = self.connections, host = %host, "slack: Socket Mode WebSocket open");
        self.serve(socket).await
    }

    /// Reads frames, sends acknowledgements and pings, until the connection ends.
    async fn serve(&mut self, mut socket: Socket) -> Ended {
        let connection = self.connections;
        let mut stop = self.stop.clone();
        // Acknowledgements of envelopes handled in their own tasks.
        let (acks, mut queued_acks) = mpsc::unbounded_channel::<String>();
        let ping_interval = self.settings.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut had_hello = false;
        let lost = |error: String, had_hello: bool| Ended::Lost { error, had_hello };
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => {
                    let _ = socket.close(None).await;
                    return Ended::Stop;
                }
                frame = socket.next() => {
                    let frame = match frame {
                        None => return lost("Slack closed the connection".to_owned(), had_hello),
                        Some(Err(error)) => return lost(format!("the connection broke: {error}"), had_hello),
                        Some(Ok(frame)) => frame,
                    };
                    last_heard = Instant::now();
                    match frame {
                        Message::Text(text) => {
                            match self.on_text(text.as_str(), &acks, &mut had_hello).await {
                                Some(DisconnectReason::LinkDisabled) => {
                                    let _ = socket.close(None).await;
                                    return Ended::Fatal(
                                        "Slack disabled this app's Socket Mode connections (disconnect: link_disabled); turn Socket Mode back on in the app's settings, or set channels.slack.socket_mode = false and use the HTTP endpoints".to_owned(),
                                    );
                                }
                                Some(reason) => {
                                    let _ = socket.close(None).await;
                                    return Ended::Refresh(reason);
                                }
                                None => {}
                            }
                        }
                        Message::Close(frame) => {
                            let why = frame
                                .map(|frame| format!(" (code {}, {:?})", u16::from(frame.code), frame.reason.as_str()))
                                .unwrap_or_default();
                            return lost(format!("Slack closed the connection{why}"), had_hello);
                        }
                        Message::Binary(_) => {
                            warn!(connection, "slack: a binary Socket Mode frame was ignored; Slack sends text");
                        }
                        // tungstenite answers pings itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Some(ack) = queued_acks.recv() => {
                    if let Err(error) = socket.send(Message::Text(ack.into())).await {
                        return lost(format!("could not send an acknowledgement: {error}"), had_hello);
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= ping_interval * 2 {
                        return lost(
                            format!("nothing from Slack for {:?}, not even a pong; replacing the connection", last_heard.elapsed()),
                            had_hello,
                        );
                    }
                    if let Err(error) = socket.send(Message::Ping(Vec::new().into())).await {
                        return lost(format!("could not send a ping: {error}"), had_hello);
                    }
                }
            }
        }
    }

    /// Handles one text frame; `Some` when Slack asks to disconnect.
    async fn on_text(
        &mut self,
        text: &str,
        acks: &mpsc::UnboundedSender<String>,
        had_hello: &mut bool,
    ) -> Option<DisconnectReason> {
        let connection = self.connections;
        match parse_envelope(text) {
            Err(error) => {
                warn!(connection, error = %error, "slack: a Socket Mode frame was not understood; the connection goes on");
                self.service
                    .refuse(Transport::SocketMode, "socket_mode", &error.reason)
                    .await;
                // Acknowledged all the same, or Slack would send it again.
                if let Some(envelope_id) = &error.envelope_id {
                    let _ = acks.send(ack(envelope_id, None));
                }
            }
            Ok(SocketEnvelope::Hello {
                num_connections,
                app_id,
            }) => {
                *had_hello = true;
                info!(
                    connection,
                    num_connections,
                    app_id = app_id.as_deref().unwrap_or("?"),
                    "slack: Socket Mode connected"
                );
                self.service
                    .app
                    .health
                    .source_succeeded(HEALTH_SOURCE, chrono::Utc::now());
                self.status.send_replace(SocketModeStatus::Connected {
                    connections: connection,
                });
            }
            Ok(SocketEnvelope::Disconnect { reason }) => return Some(reason),
            Ok(SocketEnvelope::Request(request)) => self.on_request(request, acks),
        }
        None
    }

    fn on_request(&mut self, request: SocketRequest, acks: &mpsc::UnboundedSender<String>) {
        let envelope_id = request.envelope_id.clone();
        if !self.recent.first_time(&envelope_id) {
            info!(
                envelope_id = %envelope_id,
                kind = request.kind.as_str(),
                retry_attempt = request.retry_attempt,
                retry_reason = request.retry_reason.as_deref().unwrap_or(""),
                "slack: a redelivered Socket Mode envelope was acknowledged and not run again"
            );
            let _ = acks.send(ack(&envelope_id, None));
            return;
        }
        let service = self.service.clone();
        match request.kind {
            RequestKind::SlashCommands => {
                let acks = acks.clone();
                // The acknowledgement carries the immediate answer, so it waits for it (a
                // journal write); the full answer goes to the response_url afterwards.
                tokio::spawn(async move {
                    let immediate = match slash_command_from_json(&request.payload) {
                        Ok(command) => {
                            Some(service.slash_command(command, Transport::SocketMode).await)
                        }
                        Err(error) => {
                            refuse_payload(&service, "slash_commands", &error).await;
                            None
                        }
                    };
                    let payload = immediate.filter(|_| request.accepts_response_payload);
                    // The connection may be gone; Slack then redelivers on the next one.
                    let _ = acks.send(ack(&envelope_id, payload.as_ref()));
                });
            }
            RequestKind::Interactive => {
                // Acknowledged first: a decision may take longer than Slack waits.
                let _ = acks.send(ack(&envelope_id, None));
                tokio::spawn(async move {
                    match block_actions_from_json(&request.payload) {
                        Ok(action) => {
                            service.block_actions(action, Transport::SocketMode).await;
                        }
                        Err(SlackPayloadError::UnsupportedType { found }) => {
                            debug!(kind = %found, "slack: an interaction type this daemon does not handle was acknowledged");
                        }
                        Err(error) => refuse_payload(&service, "interactive", &error).await,
                    }
                });
            }
            RequestKind::EventsApi | RequestKind::Other(_) => {
                let _ = acks.send(ack(&envelope_id, None));
                debug!(
                    kind = request.kind.as_str(),
                    "slack: a Socket Mode envelope this daemon does not use was acknowledged"
                );
            }
        }
    }
}

/// Resolves once shutdown was asked for (or nobody can ask any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Err: the sender is gone, which means shutdown too.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn refuse_payload(service: &SlackService, kind: &str, error: &SlackPayloadError) {
    warn!(kind, error = %error, "slack: a Socket Mode payload was not understood");
    service
        .refuse(Transport::SocketMode, kind, &error.to_string())
        .await;
}

#[cfg(test)]
mod tests;

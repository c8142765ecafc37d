//! Simulated Slack Socket Mode: `POST /slack/api/apps.connections.open` hands out a one-use
//! `ws://<sim>/slack/socket/{ticket}` URL, and that URL is a WebSocket on which the sim sends
//! `hello`, then whatever a test pushes (slash commands, `block_actions`, `disconnect`, raw
//! text), and records every acknowledgement (`{"envelope_id": ..., "payload": ...}`).
//!
//! Like Slack, `apps.connections.open` checks the app-level token: `not_authed` without
//! `Authorization: Bearer <token>`, `not_allowed_token_type` for a token not starting with
//! `xapp-` (a bot token, say), `invalid_auth` for one starting with `xapp-invalid`,
//! `token_revoked` for one starting with `xapp-revoked`. Faults for service `slack` apply to
//! it (`rate_limit`, `server_error`, `api_error`, ...). A ticket is good for one connection;
//! an unknown or used one is refused with HTTP 401 before the upgrade.
//!
//! Tests wait for connections and acknowledgements without sleeping: every change wakes the
//! waiters ([`tokio::sync::Notify`]), which then look again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::scenario::SimService;
use super::server::serve;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route(
            "/slack/api/apps.connections.open",
            post(apps_connections_open),
        )
        .route("/slack/socket/{ticket}", get(socket))
}

/// The app id the sim's `hello` names.
pub const SIM_APP_ID: &str = "A0SIMAPP01";

/// One `apps.connections.open` call.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlackSocketOpen {
    pub received_at: DateTime<Utc>,
    /// The ticket handed out; `None` when the call was refused.
    pub ticket: Option<String>,
    /// The error code answered, if any.
    pub error: Option<String>,
}

/// One WebSocket connection made with a ticket.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlackSocketConnection {
    /// 1 for the first connection, then 2, ...
    pub number: usize,
    pub ticket: String,
    pub hello_sent: bool,
    /// Until the client closed it or it broke.
    pub open: bool,
    /// Pings received from the client (each answered with a pong, unless gone silent).
    pub pings: usize,
}

/// One acknowledgement received.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlackSocketAck {
    pub received_at: DateTime<Utc>,
    /// The connection it came on.
    pub connection: usize,
    pub envelope_id: String,
    /// The response carried with it (a slash command's immediate answer), if any.
    pub payload: Option<Value>,
}

enum Outgoing {
    Text(String),
    Close,
    /// Stop reading and answering (pongs included) but keep the TCP connection open.
    GoSilent,
}

struct Connection {
    record: SlackSocketConnection,
    /// Frames for the connection's task; `None` once it ended.
    sender: Option<mpsc::UnboundedSender<Outgoing>>,
}

#[derive(Default)]
struct SocketState {
    next_ticket: u64,
    /// Handed out and not used yet.
    unused_tickets: BTreeSet<String>,
    opens: Vec<SlackSocketOpen>,
    connections: Vec<Connection>,
    acks: Vec<SlackSocketAck>,
    /// Text frames from clients that were not acknowledgements.
    other_frames: Vec<String>,
}

/// The Socket Mode side of the simulated workspace, owned by `World` behind its own lock
/// (never held across an await).
#[derive(Default)]
pub(crate) struct SlackSocketServer {
    state: Mutex<SocketState>,
    /// Woken on every change; waiters look again.
    changed: Notify,
}

impl SlackSocketServer {
    fn state(&self) -> MutexGuard<'_, SocketState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn changed(&self) {
        self.changed.notify_waiters();
    }

    /// Waits until `check` finds something or `timeout` passes.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&SocketState) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a change between the look and the wait wakes it.
            notified.as_mut().enable();
            if let Some(found) = check(&self.state()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.state());
            }
        }
    }

    fn open(&self, error: Option<&str>) -> Option<String> {
        let mut state = self.state();
        let ticket = match error {
            Some(_) => None,
            None => {
                state.next_ticket += 1;
                let ticket = format!("sim-ticket-{}", state.next_ticket);
                state.unused_tickets.insert(ticket.clone());
                Some(ticket)
            }
        };
        state.opens.push(SlackSocketOpen {
            received_at: Utc::now(),
            ticket: ticket.clone(),
            error: error.map(str::to_owned),
        });
        drop(state);
        self.changed();
        ticket
    }

    fn take_ticket(&self, ticket: &str) -> bool {
        self.state().unused_tickets.remove(ticket)
    }

    fn connected(&self, ticket: String, sender: mpsc::UnboundedSender<Outgoing>) -> usize {
        let mut state = self.state();
        let number = state.connections.len() + 1;
        state.connections.push(Connection {
            record: SlackSocketConnection {
                number,
                ticket,
                hello_sent: false,
                open: true,
                pings: 0,
            },
            sender: Some(sender),
        });
        number
    }

    fn with_connection(&self, number: usize, change: impl FnOnce(&mut Connection)) {
        if let Some(connection) = self.state().connections.get_mut(number.wrapping_sub(1)) {
            change(connection);
        }
        self.changed();
    }

    fn received(&self, connection: usize, text: &str) {
        let ack = serde_json::from_str::<Value>(text).ok().and_then(|value| {
            let envelope_id = value.get("envelope_id")?.as_str()?.to_owned();
            Some((envelope_id, value.get("payload").cloned()))
        });
        let mut state = self.state();
        match ack {
            Some((envelope_id, payload)) => state.acks.push(SlackSocketAck {
                received_at: Utc::now(),
                connection,
                envelope_id,
                payload,
            }),
            None => state.other_frames.push(text.to_owned()),
        }
        drop(state);
        self.changed();
    }

    /// Queues `outgoing` on the newest open connection; its number, or why not.
    fn send(&self, outgoing: Outgoing) -> Result<usize, String> {
        let state = self.state();
        let connection = state
            .connections
            .iter()
            .rev()
            .find(|connection| connection.record.open && connection.record.hello_sent)
            .ok_or_else(|| "no open Socket Mode connection".to_owned())?;
        let number = connection.record.number;
        connection
            .sender
            .as_ref()
            .and_then(|sender| sender.send(outgoing).ok())
            .ok_or_else(|| format!("connection {number} is closing"))?;
        Ok(number)
    }

    /// What `/_sim/state` shows under `slack_socket`.
    pub(crate) fn state_json(&self) -> Value {
        let state = self.state();
        json!({
            "opens": state.opens,
            "connections": state.connections.iter().map(|c| &c.record).collect::<Vec<_>>(),
            "acks": state.acks,
            "other_frames": state.other_frames,
        })
    }
}

impl super::SimHandle {
    /// Every `apps.connections.open` call, refused ones included.
    pub fn slack_socket_opens(&self) -> Vec<SlackSocketOpen> {
        self.inner.world.slack_socket.state().opens.clone()
    }

    /// Every connection made, in order.
    pub fn slack_socket_connections(&self) -> Vec<SlackSocketConnection> {
        let server = &self.inner.world.slack_socket;
        server
            .state()
            .connections
            .iter()
            .map(|connection| connection.record.clone())
            .collect()
    }

    /// Acknowledgements received, in arrival order.
    pub fn slack_socket_acks(&self) -> Vec<SlackSocketAck> {
        self.inner.world.slack_socket.state().acks.clone()
    }

    /// Text frames from clients that were not acknowledgements.
    pub fn slack_socket_other_frames(&self) -> Vec<String> {
        self.inner.world.slack_socket.state().other_frames.clone()
    }

    /// Waits until connection number `number` is open and has had its `hello`; `None` when
    /// `timeout` passed first.
    pub async fn wait_for_slack_connection(
        &self,
        number: usize,
        timeout: Duration,
    ) -> Option<SlackSocketConnection> {
        self.inner
            .world
            .slack_socket
            .wait_until(timeout, |state| {
                state
                    .connections
                    .get(number.wrapping_sub(1))
                    .map(|connection| &connection.record)
                    .filter(|record| record.open && record.hello_sent)
                    .cloned()
            })
            .await
    }

    /// Waits until connection number `number` received `pings` pings; its record then, or
    /// `None` when `timeout` passed first.
    pub async fn wait_for_slack_pings(
        &self,
        number: usize,
        pings: usize,
        timeout: Duration,
    ) -> Option<SlackSocketConnection> {
        self.inner
            .world
            .slack_socket
            .wait_until(timeout, |state| {
                state
                    .connections
                    .get(number.wrapping_sub(1))
                    .map(|connection| &connection.record)
                    .filter(|record| record.pings >= pings)
                    .cloned()
            })
            .await
    }

    /// Waits until connection number `number` is closed; whether it is.
    pub async fn wait_for_slack_connection_closed(&self, number: usize, timeout: Duration) -> bool {
        self.inner
            .world
            .slack_socket
            .wait_until(timeout, |state| {
                state
                    .connections
                    .get(number.wrapping_sub(1))
                    .filter(|connection| !connection.record.open)
                    .map(|_| ())
            })
            .await
            .is_some()
    }

    /// Waits until `count` acknowledgements of `envelope_id` arrived; those received by then
    /// (possibly fewer when `timeout` passed).
    pub async fn wait_for_slack_ack(
        &self,
        envelope_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<SlackSocketAck> {
        let server = &self.inner.world.slack_socket;
        let acks_of = |state: &SocketState| -> Vec<SlackSocketAck> {
            state
                .acks
                .iter()
                .filter(|ack| ack.envelope_id == envelope_id)
                .cloned()
                .collect()
        };
        server
            .wait_until(timeout, |state| {
                let acks = acks_of(state);
                (acks.len() >= count).then_some(acks)
            })
            .await
            .unwrap_or_else(|| acks_of(&server.state()))
    }

    /// Waits until `count` `apps.connections.open` calls were made; how many were.
    pub async fn wait_for_slack_socket_opens(&self, count: usize, timeout: Duration) -> usize {
        let server = &self.inner.world.slack_socket;
        server
            .wait_until(timeout, |state| {
                (state.opens.len() >= count).then_some(state.opens.len())
            })
            .await
            .unwrap_or_else(|| server.state().opens.len())
    }

    /// Sends an envelope on the newest open connection; that connection's number.
    pub fn slack_socket_send(&self, envelope: &Value) -> Result<usize, String> {
        self.slack_socket_send_text(envelope.to_string())
    }

    /// Sends any text frame (malformed ones included) on the newest open connection.
    pub fn slack_socket_send_text(&self, text: impl Into<String>) -> Result<usize, String> {
        self.inner
            .world
            .slack_socket
            .send(Outgoing::Text(text.into()))
    }

    /// Sends `{"type": "disconnect", "reason": reason}` on the newest open connection, as
    /// Slack does before it refreshes a connection (`refresh_requested`), a few seconds
    /// before it drops one (`warning`), or when Socket Mode was turned off (`link_disabled`).
    pub fn slack_socket_disconnect(&self, reason: &str) -> Result<usize, String> {
        self.slack_socket_send(&json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "sim-applink"},
        }))
    }

    /// Closes the newest open connection from the server's side, without a `disconnect`.
    pub fn slack_socket_drop(&self) -> Result<usize, String> {
        self.inner.world.slack_socket.send(Outgoing::Close)
    }

    /// The newest open connection stops reading and answering, pings included, while its
    /// TCP connection stays open: a peer that vanished without closing. It still counts as
    /// open here, since the sim cannot tell when the client gives up on it.
    pub fn slack_socket_go_silent(&self) -> Result<usize, String> {
        self.inner.world.slack_socket.send(Outgoing::GoSilent)
    }
}

/// An envelope as Slack sends it: `slash_commands` (its payload is the slash command form's
/// fields), `interactive` (a `block_actions` payload) or `events_api`.
pub fn slack_envelope(envelope_id: &str, kind: &str, payload: Value) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": kind,
        "payload": payload,
        "accepts_response_payload": kind == "slash_commands",
        "retry_attempt": 0,
        "retry_reason": "",
    })
}

fn slack_error(code: &str) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": false, "error": code}))
}

/// Slack's checks of the app-level token, in its order.
fn check_app_token(headers: &HeaderMap) -> Result<(), &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match token {
        None => Err("not_authed"),
        Some(token) if !token.starts_with("xapp-") => Err("not_allowed_token_type"),
        Some(token) if token.starts_with("xapp-invalid") => Err("invalid_auth"),
        Some(token) if token.starts_with("xapp-revoked") => Err("token_revoked"),
        Some(_) => Ok(()),
    }
}

async fn apps_connections_open(State(world): State<Arc<World>>, headers: HeaderMap) -> Response {
    serve(&world, SimService::Slack, "apps.connections.open", || {
        let server = &world.slack_socket;
        if let Err(code) = check_app_token(&headers) {
            server.open(Some(code));
            return slack_error(code);
        }
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("127.0.0.1");
        match server.open(None) {
            Some(ticket) => (
                StatusCode::OK,
                json!({"ok": true, "url": format!("ws://{host}/slack/socket/{ticket}")}),
            ),
            None => slack_error("internal_error"),
        }
    })
    .await
}

async fn socket(
    State(world): State<Arc<World>>,
    Path(ticket): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !world.slack_socket.take_ticket(&ticket) {
        return (
            StatusCode::UNAUTHORIZED,
            "unknown or used ticket; call apps.connections.open for a new URL",
        )
            .into_response();
    }
    upgrade.on_upgrade(move |socket| run_connection(world, ticket, socket))
}

async fn run_connection(world: Arc<World>, ticket: String, mut socket: WebSocket) {
    let server = &world.slack_socket;
    let (sender, mut outgoing) = mpsc::unbounded_channel();
    let number = server.connected(ticket, sender);
    let hello = json!({
        "type": "hello",
        "num_connections": 1,
        "debug_info": {"host": "sim-applink", "approximate_connection_time": 18060},
        "connection_info": {"app_id": SIM_APP_ID},
    });
    let hello_sent = socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok();
    server.with_connection(number, |connection| {
        connection.record.hello_sent = hello_sent
    });
    if hello_sent {
        serve_connection(number, server, &mut socket, &mut outgoing).await;
    }
    server.with_connection(number, |connection| {
        connection.record.open = false;
        connection.sender = None;
    });
}

/// Relays frames both ways until either side closes.
async fn serve_connection(
    number: usize,
    server: &SlackSocketServer,
    socket: &mut WebSocket,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
) {
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => server.received(number, text.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // axum answers the ping itself; counted so tests can see the keepalive.
                Some(Ok(Message::Ping(_))) => {
                    server.with_connection(number, |connection| connection.record.pings += 1);
                }
                // Pongs and binary frames carry nothing here.
                Some(Ok(_)) => {}
            },
            queued = outgoing.recv() => match queued {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
                Some(Outgoing::GoSilent) => {
                    // Holds the socket without reading it until told to close.
                    while let Some(next) = outgoing.recv().await {
                        if matches!(next, Outgoing::Close) {
                            break;
                        }
                    }
                    break;
                }
            },
        }
    }
}

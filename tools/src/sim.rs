//! The simulated world: one HTTP server that speaks the real CoinGecko and toncenter v2
//! wire formats from a scenario, injects faults, and records webhooks, so the daemon and
//! its tests run without the internet.
//!
//! Paths: `/coingecko/api/v3/simple/price`, `/toncenter/api/v2/{getMasterchainInfo,
//! getAddressInformation,getAddressBalance,getWalletInformation,getTransactions}` and
//! `POST /toncenter/api/v2/sendBoc` (a signed v4r2/v5r1 wallet transfer is applied at once:
//! seqno, balances, transactions; a stale seqno or an expired message is rejected with the
//! liteserver's HTTP 500 text; the signature is not checked), `POST /webhook/sink`,
//! toncenter's operator APIs `/elections/{getValidationCycles,getElections,getComplaints}`
//! and `/qos/cycleScoreboard` (see `elections_api`), tonapi v2
//! `/tonapi/v2/blockchain/validators`, `/tonapi/v2/accounts/{id}` and
//! `POST /tonapi/v2/accounts/_bulk` (see `tonapi`), the Slack Web API
//! `POST /slack/api/{chat.postMessage,chat.update}` and a `response_url` sink
//! `POST /slack/response/{id}` (see `slack`; recorded under `slack` in `/_sim/state`),
//! Slack Socket Mode `POST /slack/api/apps.connections.open` and the WebSocket
//! `GET /slack/socket/{ticket}` (see `slack_socket`; under `slack_socket`),
//! the Telegram Bot API `/telegram/bot{token}/{method}` with `POST /_sim/telegram/update`
//! to inject updates (see `telegram`; recorded under `telegram` in `/_sim/state`),
//! and control: `POST /_sim/advance {"seconds": f64}`, `POST /_sim/fault <Fault>`,
//! `GET /_sim/state` (request counts by service, and in `requests_by_route` by route with
//! `getConfigParam`'s `config_id` and `runGetMethod`'s `method`).
//!
//! Besides that HTTP server, [`smtp`] is a simulated SMTP server (its own TCP listener,
//! STARTTLS or implicit TLS with a generated private CA, AUTH, fault injection) for the
//! email receivers.
//!
//! Sim clock: `now = start + real_elapsed * speed + advanced`.

mod chain;
mod elections_api;
mod node_metrics;
pub mod openai;
mod releases;
mod scenario;
mod server;
mod slack;
mod slack_socket;
pub mod smtp;
mod telegram;
mod tonapi;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{error, info};

pub use chain::{
    NextSet, SimElection, SimNominator, SimPastElection, SimPool, SimPoolKind, sim_adnl,
    sim_adnl_at, sim_public_key, sim_public_key_at,
};
pub use node_metrics::SimNode;
pub use scenario::{
    Fault, FaultKind, Scenario, SimCocoonNode, SimCoin, SimEvent, SimService, SimValidator,
    format_offset, parse_sim_offset,
};
pub use slack::{SlackCall, SlackResponse};
pub use slack_socket::{
    SIM_APP_ID, SlackSocketAck, SlackSocketConnection, SlackSocketOpen, slack_envelope,
};
pub use smtp::{
    SimCertificates, SmtpFault, SmtpMessage, SmtpSim, SmtpSimOptions, SmtpSimSecurity, SmtpStage,
};
pub use telegram::{TelegramCall, TelegramInjected};
use world::World;

/// Errors of the sim boundary: scenario files and starting the server.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SimError {
    /// The TOML does not parse or does not fit the scenario schema.
    #[error("{origin}{}: {}{message}", line.map(|line| format!(":{line}")).unwrap_or_default(),
        if key_path.is_empty() { String::new() } else { format!("at `{key_path}`: ") })]
    Parse {
        origin: String,
        line: Option<usize>,
        key_path: String,
        message: String,
    },
    /// The scenario parses but is inconsistent; every problem is listed.
    #[error("{origin}: invalid scenario, {} problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
    #[error("sim: cannot listen on {addr}: {message} (pick a free port, or port 0)")]
    Bind { addr: SocketAddr, message: String },
    /// The simulated SMTP server's certificate could not be made or loaded.
    #[error("sim: TLS certificate: {message}")]
    Certificate { message: String },
}

/// One request the webhook sink received.
#[derive(Clone, Debug, Serialize)]
pub struct ReceivedWebhook {
    /// Wall clock, not sim time: delivery latency is real.
    pub received_at: DateTime<Utc>,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, or the raw text as a JSON string when the body was not JSON.
    pub body: serde_json::Value,
}

/// One `sendBoc` the sim read as a wallet transfer, accepted or not.
#[derive(Clone, Debug, Serialize)]
pub struct SentTransfer {
    /// Sim time.
    pub received_at: DateTime<Utc>,
    /// Sending wallet, raw `wc:hex`.
    pub wallet: String,
    pub seqno: u32,
    /// External message hash, standard base64.
    pub message_hash: String,
    /// First internal message: raw destination, amount, comment.
    pub destination: Option<String>,
    pub amount_nanoton: Option<u128>,
    pub comment: Option<String>,
    pub accepted: bool,
    /// The liteserver text sent back when not accepted.
    pub rejection: Option<String>,
}

/// A transaction in the sim's ledger, served by `getTransactions`.
#[derive(Clone, Debug, Serialize)]
pub struct SimTransaction {
    pub lt: u64,
    pub hash: String,
    pub utime: i64,
    pub fee_nanoton: u128,
    pub in_msg: SimMessage,
    pub out_msgs: Vec<SimMessage>,
}

/// A message as `getTransactions` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SimMessage {
    /// User-friendly address; empty for an external message's source.
    pub source: String,
    pub destination: String,
    pub value_nanoton: u128,
    pub body_hash: String,
    pub comment: Option<String>,
    /// Hash of the whole message (external in-messages only).
    pub hash: Option<String>,
    pub created_lt: u64,
}

pub struct SimWorld;

impl SimWorld {
    /// Validates the scenario, binds `addr` (port 0 picks a free port) and serves until
    /// [`SimHandle::shutdown`].
    pub async fn start(scenario: Scenario, addr: SocketAddr) -> Result<SimHandle, SimError> {
        scenario.validate(&format!("scenario {:?}", scenario.name))?;
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| SimError::Bind {
                    addr,
                    message: error.to_string(),
                })?;
        let local_addr = listener.local_addr().map_err(|error| SimError::Bind {
            addr,
            message: error.to_string(),
        })?;
        let world = Arc::new(World::new(scenario));
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let app = server::router(Arc::clone(&world));
        info!(addr = %local_addr, scenario = %world.scenario.name, "sim world listening");
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Err means every handle is gone, which also ends the sim.
                    let _ = shutdown_rx.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(error) = served {
                error!(addr = %local_addr, %error, "sim world server stopped with an error");
            }
        });
        Ok(SimHandle {
            inner: Arc::new(HandleInner {
                world,
                addr: local_addr,
                shutdown,
            }),
        })
    }
}

/// Control of a running sim; clones share the same world.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    world: Arc<World>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn coingecko_url(&self) -> String {
        format!("{}/coingecko/api/v3", self.base_url())
    }

    pub fn toncenter_url(&self) -> String {
        format!("{}/toncenter/api/v2", self.base_url())
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhook/sink", self.base_url())
    }

    /// Current sim time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.world.now()
    }

    /// Moves the sim clock forward; events due in between take effect at once.
    pub fn advance(&self, by: Duration) {
        self.inner.world.advance(by);
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.inner.world.inject_fault(fault);
    }

    /// Pins a coin's price (the walk and events no longer apply) until set again.
    pub fn set_price(&self, coin_id: &str, usd: f64) {
        self.inner.world.set_price(coin_id, usd);
    }

    /// The price the sim would serve now; `None` for a coin not in the scenario.
    pub fn price(&self, coin_id: &str) -> Option<f64> {
        self.inner.world.price(coin_id)
    }

    /// Requests received by `"coingecko"`, `"toncenter"`, `"elections"` (elections and QoS),
    /// `"tonapi"`, `"slack"` (Web API and `response_url` sink), `"telegram"` (Bot API) or
    /// `"webhook"`, faulted ones included.
    pub fn request_count(&self, service: &str) -> u64 {
        self.inner.world.request_count(service)
    }

    /// Every `sendBoc` that parsed as a wallet transfer, accepted or rejected.
    pub fn sent_transfers(&self) -> Vec<SentTransfer> {
        self.inner.world.sent_transfers()
    }

    /// The seqno `getWalletInformation` would serve for a scenario wallet.
    pub fn wallet_seqno(&self, address: &str) -> Option<u32> {
        self.inner.world.wallet(address).map(|(seqno, _)| seqno)
    }

    /// The balance the sim would serve now, transfers included.
    pub fn balance_nanoton(&self, address: &str) -> Option<u128> {
        let world = &self.inner.world;
        world.balance_nanoton(address, world.elapsed_seconds())
    }

    pub fn webhooks(&self) -> Vec<ReceivedWebhook> {
        self.inner.world.webhooks()
    }

    /// Waits until at least `count` webhooks arrived or `timeout` passed, then returns
    /// all received so far (possibly fewer than `count`).
    pub async fn wait_for_webhooks(&self, count: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let mut received = self.inner.world.webhook_count.subscribe();
        // Timeout or a closed channel both end the wait; the caller checks the length.
        let _ = tokio::time::timeout(timeout, received.wait_for(|n| *n >= count)).await;
        self.webhooks()
    }

    /// Stops accepting connections; in-flight requests finish.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

#[cfg(test)]
mod tests;

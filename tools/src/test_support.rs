//! Helpers shared by the unit tests: a fast retry policy, a frozen-clock scenario, and a
//! loopback server that answers every request with one fixed response.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::http::RetryPolicy;
use crate::sim::{Scenario, SimHandle, SimWorld};

pub const SECRET: &str = "SECRET-KEY-123";

/// Three attempts, millisecond backoff (Retry-After is capped at 5 ms), 2 s per attempt.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(2),
    }
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Frozen clock (speed 0) at a fixed start, so prices only move with `advance`.
pub const TEST_SCENARIO: &str = r#"
name = "unit-test"
seed = 7
speed = 0.0
start = "2025-01-01T00:00:00Z"

[[coins]]
id = "the-open-network"
symbol = "TON"
price_usd = 5.0
volatility_percent_per_hour = 2.0

[[coins]]
id = "bitcoin"
symbol = "BTC"
price_usd = 67000.0
volatility_percent_per_hour = 0.8

[[coins]]
id = "ethereum"
symbol = "ETH"
price_usd = 3500.0

[[validators]]
name = "validator-1"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
balance_ton = 12500.123456789
stake_ton = 400000.0

[[events]]
at = "5m"
kind = "balance_change"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
delta_ton = -500.0
"#;

pub async fn start_sim() -> SimHandle {
    // Tests that build their own reqwest client need the provider a ToncenterClient installs.
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(TEST_SCENARIO, "test_support.rs").unwrap();
    SimWorld::start(scenario, loopback()).await.unwrap()
}

/// A server that answers every request with `status`, `content_type` and `body`, and keeps
/// the headers of the last request.
pub struct FixedServer {
    pub addr: SocketAddr,
    pub last_headers: Arc<Mutex<Option<HeaderMap>>>,
}

pub async fn fixed_server(
    status: u16,
    content_type: &'static str,
    body: &'static str,
) -> FixedServer {
    let last_headers = Arc::new(Mutex::new(None));
    let recorded = Arc::clone(&last_headers);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let recorded = Arc::clone(&recorded);
        async move {
            *recorded.lock().unwrap() = Some(headers);
            (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, content_type)],
                body,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FixedServer { addr, last_headers }
}

//! In-process pipeline benchmark: simulated CoinGecko -> market agent -> series + journal ->
//! move rule -> notifier -> webhook. Prints one JSON object on stdout.
//!
//! Run: `cargo bench -p runtime --bench pipeline`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::config::{Config, ConfigSource, WebhookReceiverConfig};
use runtime::daemon::{Daemon, RunOptions};
use runtime::supervisor::TickNow;
use tools::sim::{Scenario, SimCoin, SimWorld};

const TON: &str = "the-open-network";
const TICKS: usize = 300;
const ALERT_ROUNDS: usize = 100;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn flat_scenario() -> Scenario {
    let coin = |id: &str, symbol: &str, price: f64| SimCoin {
        id: id.into(),
        symbol: symbol.into(),
        price_usd: price,
        volatility_percent_per_hour: 0.0,
    };
    Scenario {
        name: "bench-flat".into(),
        seed: 1,
        speed: 1.0,
        start: None,
        coins: vec![
            coin(TON, "TON", 5.0),
            coin("bitcoin", "BTC", 67_000.0),
            coin("ethereum", "ETH", 3_500.0),
        ],
        validators: Vec::new(),
        events: Vec::new(),
        faults: Vec::new(),
        pools: Vec::new(),
        cocoon_nodes: Vec::new(),
        jettons: Vec::new(),
    }
}

fn config_for(sim: &tools::sim::SimHandle, data_dir: &Path) -> Config {
    let mut config = runtime::config::load(&ConfigSource::Embedded, &[]).expect("embedded config");
    config.daemon.data_dir = data_dir.to_path_buf();
    config.daemon.http_listen = "127.0.0.1:0".parse().unwrap();
    config.daemon.policies_dir = workspace_root().join("policies");
    config.daemon.prompts_dir = workspace_root().join("prompts");
    let coingecko = &mut config.sources.coingecko;
    coingecko.base_url = sim.coingecko_url();
    coingecko.requests_per_second = 100_000.0;
    coingecko.retry.max_attempts = 2;
    coingecko.retry.timeout = Duration::from_millis(500);
    coingecko.retry.backoff_initial = Duration::from_millis(1);
    coingecko.retry.backoff_max = Duration::from_millis(5);
    config.agents.market.interval = Duration::from_secs(3600);
    config.agents.market.poll_on_start = false;
    config.notify.webhooks.push(WebhookReceiverConfig {
        name: "bench".into(),
        url: sim.webhook_url(),
        secret: None,
        secret_file: None,
        timeout: Duration::from_secs(2),
        max_attempts: 3,
    });
    config
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() {
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    let report = system.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(flat_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let config = config_for(&sim, &dir.path().join("data"));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let market = daemon.agent("market").unwrap().clone();
        let store = daemon.state.store.clone();

        // Warm-up: baseline sample, connection pool, sled caches.
        for _ in 0..5 {
            sim.advance(Duration::from_secs(60));
            let summary = market.send(TickNow).await.unwrap().unwrap();
            assert_eq!(summary.observations, 3);
            assert!(summary.alerts.is_empty());
        }

        // a) Throughput: fetch + store 3 prices + journal a batch + evaluate the move rule.
        let journal_before = store.journal().len();
        let mut tick_ms = Vec::with_capacity(TICKS);
        let mut observations = 0usize;
        let started = Instant::now();
        for _ in 0..TICKS {
            sim.advance(Duration::from_secs(60));
            let tick_started = Instant::now();
            let summary = market.send(TickNow).await.unwrap().unwrap();
            tick_ms.push(ms(tick_started.elapsed()));
            assert!(summary.alerts.is_empty(), "flat prices must stay quiet");
            observations += summary.observations;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let journal_appended = store.journal().len() - journal_before;
        assert_eq!(observations, 3 * TICKS);
        let tick_ms = sorted(tick_ms);

        // b) Latency: price move -> tick -> alert -> notifier -> webhook sink.
        let hooks_before = sim.webhooks().len();
        let mut alert_ms = Vec::with_capacity(ALERT_ROUNDS);
        let mut alert_tick_ms = Vec::with_capacity(ALERT_ROUNDS);
        let mut after_tick_ms = Vec::with_capacity(ALERT_ROUNDS);
        let mut wall_ms = Vec::with_capacity(ALERT_ROUNDS);
        for round in 0..ALERT_ROUNDS {
            // Even rounds drop 20% (fires), odd rounds return to 5.00 (resolves).
            sim.set_price(TON, if round % 2 == 0 { 4.0 } else { 5.0 });
            sim.advance(Duration::from_secs(60));
            let wall_before = chrono::Utc::now();
            let before = Instant::now();
            let summary = market.send(TickNow).await.unwrap().unwrap();
            let ticked = Instant::now();
            assert_eq!(
                summary.alerts,
                vec![format!("market.price_move/{TON}")],
                "round {round}"
            );
            let expected = hooks_before + round + 1;
            let hooks = sim
                .wait_for_webhooks(expected, Duration::from_secs(10))
                .await;
            let arrived = Instant::now();
            assert!(hooks.len() >= expected, "round {round}: webhook missing");
            let hook = &hooks[expected - 1];
            let event = if round % 2 == 0 {
                "alert.firing"
            } else {
                "alert.resolved"
            };
            assert_eq!(hook.body["event"], event, "round {round}");
            alert_ms.push(ms(arrived - before));
            alert_tick_ms.push(ms(ticked - before));
            after_tick_ms.push(ms(arrived.saturating_duration_since(ticked)));
            wall_ms.push(
                (hook.received_at - wall_before)
                    .to_std()
                    .map(ms)
                    .unwrap_or(0.0),
            );
        }
        let journal_total = store.journal().len();
        daemon.shutdown("bench finished").await.unwrap();
        sim.shutdown();

        let alert_ms = sorted(alert_ms);
        let alert_tick_ms = sorted(alert_tick_ms);
        let after_tick_ms = sorted(after_tick_ms);
        let wall_ms = sorted(wall_ms);
        serde_json::json!({
            "ticks": TICKS,
            "elapsed_s": round3(elapsed),
            "ticks_per_sec": round3(TICKS as f64 / elapsed),
            "observations_per_sec": round3(observations as f64 / elapsed),
            "journal_entries_appended": journal_appended,
            "journal_entries_per_tick": round3(journal_appended as f64 / TICKS as f64),
            "tick_ms_p50": round3(percentile(&tick_ms, 50.0)),
            "tick_ms_p99": round3(percentile(&tick_ms, 99.0)),
            "tick_ms_max": round3(percentile(&tick_ms, 100.0)),
            "alert_rounds": ALERT_ROUNDS,
            "alert_to_webhook_ms_p50": round3(percentile(&alert_ms, 50.0)),
            "alert_to_webhook_ms_p99": round3(percentile(&alert_ms, 99.0)),
            "alert_to_webhook_ms_max": round3(percentile(&alert_ms, 100.0)),
            "alert_tick_ms_p50": round3(percentile(&alert_tick_ms, 50.0)),
            "alert_tick_ms_p99": round3(percentile(&alert_tick_ms, 99.0)),
            "tick_return_to_webhook_ms_p50": round3(percentile(&after_tick_ms, 50.0)),
            "tick_return_to_webhook_ms_p99": round3(percentile(&after_tick_ms, 99.0)),
            "received_at_minus_tick_start_ms_p50": round3(percentile(&wall_ms, 50.0)),
            "received_at_minus_tick_start_ms_p99": round3(percentile(&wall_ms, 99.0)),
            "journal_entries_total": journal_total,
        })
    });
    println!("{report}");
}

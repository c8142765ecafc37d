//! One polling round of the validators agent for 50 validators, in the daemon (sled store in a
//! temp dir, gate, journal) against the simulated world over loopback HTTP: wall time of the
//! first round and of steady-state rounds, the requests each round made by route (counted by
//! the sim: `requests_by_route` of `GET /_sim/state`), and RSS. Prints one JSON object.
//!
//! The world: 50 validators with a stake, a wallet and a node metrics page; config 34 (the
//! sim's set is its stakers, so 50 rather than mainnet's ~400); an open election all 50 take
//! part in; a past election with their stakes frozen and two complaints against others; the
//! release the nodes run. Every answer is healthy, so no round fires an alert.
//!
//! Then the same rounds with the agent built as the daemon builds it, but with the node
//! metrics scraper's 500 requests/s cap (one limiter for all nodes) lifted: the agent's own
//! cost. toncenter's limit (1/s by default) is lifted in both.
//!
//! Run: `cargo bench -p runtime --bench validators_round`; `VALIDATORS_BENCH_UNCAPPED_ROUNDS`
//! sets the steady rounds of the uncapped agent (20), e.g. to watch RSS over many rounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agents::validators::WatchedValidator;
use runtime::config::{Config, ConfigSource};
use runtime::daemon::{Daemon, RunOptions};
use runtime::supervisor::TickNow;
use tools::sim::{Scenario, SimHandle, SimWorld, sim_public_key};

const VALIDATORS: usize = 50;
const STEADY_ROUNDS: usize = 20;
/// Sim time between rounds: the default polling interval.
const ROUND_INTERVAL: Duration = Duration::from_secs(60);
/// Election ids are unix times; in 2030 so the frozen stakes stay frozen (the sim starts at
/// the wall clock).
const ELECTION_ID: u64 = 1_900_000_000;
const PAST_ELECTION_ID: u64 = 1_899_934_464;
const RUNNING_RELEASE: &str = "v2025.02";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validator_name(index: usize) -> String {
    format!("validator-{index:02}")
}

/// The scenario as a file would hold it (so it is validated like one).
fn scenario_toml() -> String {
    let mut text = String::from(
        "name = \"bench-validators-50\"\nseed = 50\n# Frozen clock: rounds advance it.\nspeed = 0.0\n",
    );
    for index in 0..VALIDATORS {
        // Wallets hold more than param 17's min_stake (300,000 TON) + margin: no low_balance.
        let _ = write!(
            text,
            "\n[[validators]]\nname = \"{}\"\naddress = \"-1:{:064x}\"\nbalance_ton = 400000.0\nstake_ton = {}.0\n[validators.node]\n",
            validator_name(index),
            0xbe00_0000_u64 + index as u64,
            350_000 + 1_000 * index,
        );
    }
    let participants: Vec<String> = (0..VALIDATORS)
        .map(|index| format!("\"{}\"", validator_name(index)))
        .collect();
    let _ = write!(
        text,
        r#"
[[events]]
at = "0s"
kind = "release"
repo = "ton-blockchain/ton"
tag = "{RUNNING_RELEASE}"
published_before_start = "30d"

[[events]]
at = "0s"
kind = "election"
id = {ELECTION_ID}
participants = [{}]

[[events.past]]
election_id = {PAST_ELECTION_ID}
bonuses_ton = 240.0
complaints = 2
"#,
        participants.join(", ")
    );
    text
}

fn config_for(sim: &SimHandle, scenario: &Scenario, data_dir: &Path) -> Config {
    let mut config = runtime::config::load(&ConfigSource::Embedded, &[]).expect("embedded config");
    config.daemon.data_dir = data_dir.to_path_buf();
    config.daemon.http_listen = "127.0.0.1:0".parse().unwrap();
    config.daemon.policies_dir = workspace_root().join("policies");
    config.daemon.prompts_dir = workspace_root().join("prompts");
    config.agents.market.enabled = false;
    // The agent is measured, not toncenter's rate limit (see `default_toncenter_rps` in the
    // output for what the limit makes of a round).
    let toncenter = &mut config.sources.toncenter;
    toncenter.base_url = sim.toncenter_url();
    toncenter.elections_url = sim.elections_url();
    toncenter.qos_url = sim.qos_url();
    toncenter.requests_per_second = 100_000.0;
    toncenter.retry.max_attempts = 2;
    toncenter.retry.timeout = Duration::from_secs(2);
    toncenter.retry.backoff_initial = Duration::from_millis(1);
    toncenter.retry.backoff_max = Duration::from_millis(5);
    config.sources.tonapi.base_url = sim.tonapi_url();
    let watched = &mut config.agents.validators;
    watched.enabled = true;
    // Rounds come from the benchmark, not the clock.
    watched.interval = Duration::from_secs(3600);
    watched.poll_on_start = false;
    watched.github_base_url = sim.github_url();
    watched.validators = scenario
        .validators
        .iter()
        .map(|validator| WatchedValidator {
            name: validator.name.clone(),
            wallet: validator.address.clone(),
            public_key: Some(sim_public_key(validator)),
            metrics_url: Some(sim.metrics_url(&validator.name)),
            running_version: Some(RUNNING_RELEASE.to_owned()),
            ..Default::default()
        })
        .collect();
    config
}

/// The sim's request counts by route, control endpoints excluded.
async fn requests_by_route(http: &reqwest::Client, sim: &SimHandle) -> BTreeMap<String, u64> {
    let state: serde_json::Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(state["requests_by_route"].clone()).unwrap()
}

fn difference(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(route, count)| {
            (
                route.clone(),
                count - before.get(route).copied().unwrap_or(0),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// VmRSS and VmHWM of this process in MiB (sim, daemon and agent share it).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        round2(kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn rss_json((rss, hwm): (f64, f64)) -> serde_json::Value {
    serde_json::json!({"vm_rss_mib": rss, "vm_hwm_mib": hwm})
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn total(routes: &BTreeMap<String, u64>) -> u64 {
    routes.values().sum()
}

/// Requests of routes answered once per validator (wallets, metrics pages) and the rest.
fn split_per_validator(routes: &BTreeMap<String, u64>) -> (u64, u64) {
    let per_validator = routes
        .values()
        .filter(|count| **count == VALIDATORS as u64)
        .sum::<u64>();
    (per_validator, total(routes) - per_validator)
}

/// What a series of rounds did: one first round, then the steady ones.
struct Rounds {
    first_ms: f64,
    first_routes: BTreeMap<String, u64>,
    first_alerts: Vec<String>,
    first_samples: usize,
    first_journal: u64,
    /// Sorted.
    steady_ms: Vec<f64>,
    steady_routes: Vec<BTreeMap<String, u64>>,
    steady_alerts: Vec<String>,
    steady_samples: usize,
    steady_journal_max: u64,
}

/// Runs the first round and `steady_rounds` more, advancing the sim clock by the interval
/// before each; `round` returns (series samples, alert keys).
async fn measure(
    http: &reqwest::Client,
    sim: &SimHandle,
    store: &memory::Store,
    steady_rounds: usize,
    mut round: impl AsyncFnMut() -> (usize, Vec<String>),
) -> Rounds {
    let mut timed = async || {
        sim.advance(ROUND_INTERVAL);
        let before = requests_by_route(http, sim).await;
        let journal_before = store.journal().len();
        let started = Instant::now();
        let (samples, alerts) = round().await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let routes = difference(&requests_by_route(http, sim).await, &before);
        (
            ms,
            routes,
            alerts,
            samples,
            store.journal().len() - journal_before,
        )
    };
    let (first_ms, first_routes, first_alerts, first_samples, first_journal) = timed().await;
    let mut rounds = Rounds {
        first_ms,
        first_routes,
        first_alerts,
        first_samples,
        first_journal,
        steady_ms: Vec::with_capacity(steady_rounds),
        steady_routes: Vec::with_capacity(steady_rounds),
        steady_alerts: Vec::new(),
        steady_samples: 0,
        steady_journal_max: 0,
    };
    for _ in 0..steady_rounds {
        let (ms, routes, alerts, samples, journal) = timed().await;
        rounds.steady_ms.push(ms);
        rounds.steady_routes.push(routes);
        rounds.steady_alerts.extend(alerts);
        rounds.steady_samples = samples;
        rounds.steady_journal_max = rounds.steady_journal_max.max(journal);
    }
    rounds.steady_ms.sort_by(f64::total_cmp);
    if !rounds.first_alerts.is_empty() || !rounds.steady_alerts.is_empty() {
        eprintln!(
            "alerts: first round {:?}, steady rounds {:?}",
            rounds.first_alerts, rounds.steady_alerts
        );
    }
    rounds
}

impl Rounds {
    fn timing_json(&self) -> serde_json::Value {
        let ms = &self.steady_ms;
        serde_json::json!({
            "first_round_ms": round3(self.first_ms),
            "steady_round_ms_p50": round3(percentile(ms, 50.0)),
            "steady_round_ms_p95": round3(percentile(ms, 95.0)),
            "steady_round_ms_min": round3(ms[0]),
            "steady_round_ms_max": round3(ms[ms.len() - 1]),
            "alerts_first_round": self.first_alerts.len(),
            "alerts_steady_rounds": self.steady_alerts.len(),
        })
    }
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
        tools::http::install_crypto_provider();
        let rss_at_start = memory_mib();
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::from_toml(&scenario_toml(), "validators_round.rs").unwrap();
        let sim = SimWorld::start(scenario.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let rss_after_sim = memory_mib();
        let defaults = runtime::config::load(&ConfigSource::Embedded, &[]).unwrap();
        let default_toncenter_rps = defaults.sources.toncenter.requests_per_second;
        let default_interval = defaults.agents.validators.interval;
        let static_params_ttl = defaults.agents.validators.static_params_ttl;
        let config = config_for(&sim, &scenario, &dir.path().join("data"));
        let http = reqwest::Client::new();

        // a) The daemon as shipped, the agent ticked through its supervisor.
        let daemon = Daemon::start(config.clone(), RunOptions::default())
            .await
            .unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        let rss_after_daemon = memory_mib();
        let shipped = measure(&http, &sim, &store, STEADY_ROUNDS, async || {
            let summary = agent.send(TickNow).await.unwrap().unwrap();
            (summary.observations, summary.alerts)
        })
        .await;
        let rss_after_rounds = memory_mib();
        daemon.shutdown("bench finished").await.unwrap();

        // c) The daemon with balances from tonapi: one batched `/v2/accounts/_bulk` request
        // for every wallet instead of one `getWalletInformation` each.
        let mut bulk_config = config_for(&sim, &scenario, &dir.path().join("data-bulk"));
        bulk_config.agents.validators.providers.balances = agents::validators::Provider::Tonapi;
        bulk_config.sources.tonapi.api_key = Some(tools::secret::Secret::new("bench-key"));
        bulk_config.sources.tonapi.requests_per_second = 100_000.0;
        let bulk_daemon = Daemon::start(bulk_config, RunOptions::default())
            .await
            .unwrap();
        let bulk_agent = bulk_daemon.agent("validators").unwrap().clone();
        let bulk_store = bulk_daemon.state.store.clone();
        let bulk = measure(&http, &sim, &bulk_store, STEADY_ROUNDS, async || {
            let summary = bulk_agent.send(TickNow).await.unwrap().unwrap();
            (summary.observations, summary.alerts)
        })
        .await;
        bulk_daemon.shutdown("bench finished").await.unwrap();

        // b) The same agent built as the daemon builds it, but with the node metrics scraper's
        // rate limit lifted: what the round costs the agent itself.
        let store = tokio::task::spawn_blocking({
            let data_dir = dir.path().join("data-uncapped");
            move || memory::Store::open(&data_dir)
        })
        .await
        .unwrap()
        .unwrap();
        let telemetry = agents::telemetry::Telemetry::default();
        let auditor = agents::audit::Auditor::new(store.clone(), telemetry.clone());
        let source = &config.sources.toncenter;
        let toncenter = tools::toncenter::ToncenterClient::new(
            &source.base_url,
            None,
            source.requests_per_second,
            source.retry.policy(),
        )
        .unwrap();
        let scraper = tools::prometheus::PrometheusScraper::new(
            100_000.0,
            source.retry.policy(),
            tools::prometheus::DEFAULT_MAX_BODY_BYTES,
        )
        .unwrap();
        let elections = tools::elections::ElectionsClient::new(
            &source.elections_url,
            &source.qos_url,
            None,
            source.requests_per_second,
            source.retry.policy(),
        )
        .unwrap();
        let github = tools::github::GithubClient::new(
            &config.agents.validators.github_base_url,
            None,
            10.0,
            source.retry.policy(),
        )
        .unwrap();
        let mut uncapped_agent = agents::validators::ValidatorsAgent::new(
            config.agents.validators.clone(),
            toncenter,
            scraper,
            auditor,
            agents::health::HealthRegistry::new(),
            telemetry,
        )
        .with_elections(elections)
        .with_github(github);
        let uncapped_rounds = std::env::var("VALIDATORS_BENCH_UNCAPPED_ROUNDS")
            .ok()
            .and_then(|rounds| rounds.parse().ok())
            .unwrap_or(STEADY_ROUNDS);
        let rss_before_uncapped = memory_mib();
        let uncapped = measure(&http, &sim, &store, uncapped_rounds, async || {
            let report = uncapped_agent.run_tick().await.unwrap();
            let alerts = report.alerts.into_iter().map(|alert| alert.key).collect();
            (report.observations, alerts)
        })
        .await;
        let rss_after_uncapped = memory_mib();
        sim.shutdown();

        let steady = shipped.steady_routes[0].clone();
        let same_every_round = shipped
            .steady_routes
            .iter()
            .chain(&uncapped.steady_routes)
            .all(|routes| *routes == steady);
        let (first_per_validator, first_per_round) = split_per_validator(&shipped.first_routes);
        let (steady_per_validator, steady_per_round) = split_per_validator(&steady);
        let toncenter_steady: u64 = steady
            .iter()
            .filter(|(route, _)| route.contains(" /toncenter/"))
            .map(|(_, count)| count)
            .sum();
        serde_json::json!({
            "validators": VALIDATORS,
            "validators_in_current_set": VALIDATORS,
            "election_participants": VALIDATORS,
            "steady_rounds": STEADY_ROUNDS,
            "uncapped_steady_rounds": uncapped_rounds,
            "daemon": shipped.timing_json(),
            "agent_scraper_uncapped": uncapped.timing_json(),
            "daemon_balances_from_tonapi_bulk": bulk.timing_json(),
            "requests_steady_round_balances_from_tonapi_bulk_total": total(&bulk.steady_routes[0]),
            "requests_steady_round_balances_from_tonapi_bulk": bulk.steady_routes[0].clone(),
            "requests_first_round_total": total(&shipped.first_routes),
            "requests_first_round_per_validator_routes": first_per_validator,
            "requests_first_round_other": first_per_round,
            "requests_first_round": shipped.first_routes,
            "requests_steady_round_total": total(&steady),
            "requests_steady_round_per_validator_routes": steady_per_validator,
            "requests_steady_round_other": steady_per_round,
            "requests_steady_round": steady,
            "requests_same_every_steady_round": same_every_round,
            "requests_first_round_same_uncapped": uncapped.first_routes == shipped.first_routes,
            "static_params_ttl_s": static_params_ttl.as_secs(),
            "node_metrics_scraper_rps": 500.0,
            "toncenter_requests_steady_round": toncenter_steady,
            "default_toncenter_rps": default_toncenter_rps,
            "default_interval_s": default_interval.as_secs(),
            "steady_round_floor_s_at_default_toncenter_rps": round2(toncenter_steady as f64 / default_toncenter_rps),
            "series_samples_first_round": shipped.first_samples,
            "series_samples_per_steady_round": shipped.steady_samples,
            "journal_entries_first_round": shipped.first_journal,
            "journal_entries_per_steady_round_max": shipped.steady_journal_max,
            "memory": {
                "at_start": rss_json(rss_at_start),
                "after_sim_start": rss_json(rss_after_sim),
                "after_daemon_start": rss_json(rss_after_daemon),
                "after_daemon_rounds": rss_json(rss_after_rounds),
                "before_uncapped_rounds": rss_json(rss_before_uncapped),
                "after_uncapped_rounds": rss_json(rss_after_uncapped),
            },
        })
    });
    println!("{report}");
}

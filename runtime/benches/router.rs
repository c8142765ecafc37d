//! The alert router against Prometheus Alertmanager 0.25, side by side in one run: the same
//! alert stream, sent as Prometheus sends it (`POST /api/v2/alerts`, batches of up to 64 from a
//! few concurrent senders), to Command Center (the daemon in-process: router, journal,
//! notifier) and then to Alertmanager (its own process), each routing with `group_by
//! [alertname]` and `group_wait 0` to one local webhook sink. Every alert is its own group, so
//! every alert is one webhook delivery. Measured per system: alerts delivered per second
//! (first send to last arrival), latency from an alert's POST to its arrival at the sink
//! (p50/p90/p99/max), alerts delivered and missing, CPU time and RSS. Prints one JSON object.
//! Command Center runs in this process with the senders and the sink, so its CPU time and
//! RSS include theirs (`alertmanager.cpu_s.benchmark_process_s` is about what they cost).
//!
//! The systems run one after the other, not together (2 cores). Resolutions are not measured:
//! both hold a group's next notification for `group_interval` (5 min here).
//!
//! Run: `cargo bench -p runtime --bench router`. `ROUTER_BENCH_ALERTS` (5000),
//! `ROUTER_BENCH_BATCH` (64), `ROUTER_BENCH_SENDERS` (4) change the stream;
//! `ROUTER_BENCH_ALERTMANAGER` names the binary (`/usr/bin/prometheus-alertmanager`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use parking_lot::Mutex;
use runtime::config::{
    AlertReceiverConfig, ReceiverKind, RouteConfig, UserConfig, WebhookReceiverConfig,
};
use runtime::daemon::{Daemon, RunOptions};
use sha2::Digest;

const TOKEN: &str = "cc_router_bench_token";
const WARMUP_ALERTS: usize = 128;
/// No arrival for this long after the last send: what has not arrived is missing.
const STALL: Duration = Duration::from_secs(20);
const GROUP_INTERVAL: Duration = Duration::from_secs(300);
const REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|value| *value > 0)
        .unwrap_or(default)
}

/// Where each alert (by `alertname`) first arrived, for one system.
#[derive(Default)]
struct Arrivals {
    first: Mutex<HashMap<String, Instant>>,
    /// Alerts that arrived firing again after their first arrival.
    duplicates: AtomicUsize,
    requests: AtomicUsize,
}

impl Arrivals {
    fn take(&self) -> HashMap<String, Instant> {
        std::mem::take(&mut *self.first.lock())
    }

    fn count(&self) -> usize {
        self.first.lock().len()
    }
}

/// `/cc`: Command Center's payload (`group.alerts[]`); `/am`: Alertmanager's (`alerts[]`).
#[derive(Clone, Default)]
struct Sink {
    command_center: Arc<Arrivals>,
    alertmanager: Arc<Arrivals>,
}

async fn receive(
    State(sink): State<Sink>,
    UrlPath(system): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let (arrivals, alerts) = match system.as_str() {
        "cc" => (&sink.command_center, &payload["group"]["alerts"]),
        "am" => (&sink.alertmanager, &payload["alerts"]),
        _ => return StatusCode::NOT_FOUND,
    };
    arrivals.requests.fetch_add(1, Ordering::Relaxed);
    let mut first = arrivals.first.lock();
    for alert in alerts.as_array().into_iter().flatten() {
        if alert["status"] != "firing" {
            continue;
        }
        let Some(name) = alert["labels"]["alertname"].as_str() else {
            continue;
        };
        if first.insert(name.to_owned(), arrived).is_some() {
            arrivals.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::OK
}

async fn start_sink(sink: Sink) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/{system}", axum::routing::post(receive))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The stream: `count` alerts named `{prefix}_{i}`, in batches of `batch`.
fn batches(prefix: &str, count: usize, batch: usize) -> Vec<Vec<(String, serde_json::Value)>> {
    let starts_at = chrono::Utc::now().to_rfc3339();
    let alerts: Vec<(String, serde_json::Value)> = (0..count)
        .map(|index| {
            let name = format!("{prefix}_{index:06}");
            let body = serde_json::json!({
                "labels": {
                    "alertname": name,
                    "instance": format!("node-{}:9100", index % 50),
                    "job": "node",
                    "severity": if index % 10 == 0 { "critical" } else { "warning" },
                },
                "annotations": {"summary": format!("bench alert {index} fires")},
                "startsAt": starts_at,
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            });
            (name, body)
        })
        .collect();
    alerts.chunks(batch).map(<[_]>::to_vec).collect()
}

/// What one stream did.
struct Sent {
    /// When each alert's POST started, by name.
    at: HashMap<String, Instant>,
    first: Instant,
    last: Instant,
    requests: usize,
}

/// Posts `batches` from `senders` concurrent tasks, each taking the next batch when its last
/// POST is answered (as Prometheus's notifier does per Alertmanager); every answer must be 200.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    batches: Vec<Vec<(String, serde_json::Value)>>,
    senders: usize,
) -> Sent {
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (client, url, token) = (client.clone(), url.to_owned(), token.map(str::to_owned));
        let (batches, next) = (Arc::clone(&batches), Arc::clone(&next));
        tasks.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(index) else {
                    break;
                };
                let body: Vec<&serde_json::Value> = batch.iter().map(|(_, body)| body).collect();
                let started = Instant::now();
                let mut request = client.post(&url).json(&body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(status.is_success(), "POST {url}: {status} {text}");
                sent.push((index, started));
            }
            sent
        });
    }
    let mut at = HashMap::new();
    let mut starts = Vec::new();
    while let Some(sent) = tasks.join_next().await {
        for (index, started) in sent.unwrap() {
            starts.push(started);
            for (name, _) in &batches[index] {
                at.insert(name.clone(), started);
            }
        }
    }
    Sent {
        at,
        first: starts.iter().copied().min().unwrap(),
        last: starts.iter().copied().max().unwrap(),
        requests: starts.len(),
    }
}

/// Waits until `expected` alerts arrived, or nothing arrived for [`STALL`].
async fn wait_for(arrivals: &Arrivals, expected: usize) {
    let mut count = arrivals.count();
    let mut progress = Instant::now();
    while count < expected && progress.elapsed() < STALL {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = arrivals.count();
        if now > count {
            count = now;
            progress = Instant::now();
        }
    }
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// (VmRSS, VmHWM) of a process in MiB.
fn memory_mib(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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

/// CPU time (user + system) a process has used, in seconds, from `/proc/{pid}/stat`.
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock
    // ticks, 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends the warm-up stream, then the measured one, and sums up what arrived. `router_pid`:
/// the router's own process when it is not this one.
#[allow(clippy::too_many_arguments)]
async fn measure(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    arrivals: &Arrivals,
    router_pid: Option<&str>,
    alerts: usize,
    batch: usize,
    senders: usize,
) -> serde_json::Value {
    // Connections, pools and lazily built state, before anything is timed.
    send(
        client,
        url,
        token,
        batches("warmup", WARMUP_ALERTS, batch),
        senders,
    )
    .await;
    wait_for(arrivals, WARMUP_ALERTS).await;
    let warmed_up = arrivals.take().len();
    arrivals.requests.store(0, Ordering::Relaxed);
    arrivals.duplicates.store(0, Ordering::Relaxed);

    let cpu_before = (cpu_s("self"), router_pid.map(cpu_s));
    let sent = send(client, url, token, batches("bench", alerts, batch), senders).await;
    let sent_s = (sent.last - sent.first).as_secs_f64();
    wait_for(arrivals, alerts).await;
    let cpu_after = (cpu_s("self"), router_pid.map(cpu_s));
    let cpu = match (cpu_before, cpu_after) {
        ((own_before, Some(router_before)), (own_after, Some(router_after))) => serde_json::json!({
            "router_process_s": round2(router_after - router_before),
            "benchmark_process_s": round2(own_after - own_before),
        }),
        ((own_before, _), (own_after, _)) => serde_json::json!({
            "benchmark_process_s": round2(own_after - own_before),
        }),
    };
    let arrived = arrivals.take();
    let mut latencies: Vec<f64> = sent
        .at
        .iter()
        .filter_map(|(name, started)| {
            arrived
                .get(name)
                .map(|at| at.saturating_duration_since(*started).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let last_arrival = arrived.values().copied().max().unwrap_or(sent.first);
    let elapsed_s = (last_arrival - sent.first).as_secs_f64();
    let delivered = latencies.len();
    serde_json::json!({
        "alerts_sent": sent.at.len(),
        "post_requests": sent.requests,
        "send_s": round3(sent_s),
        "alerts_posted_per_sec": round2(sent.at.len() as f64 / sent_s.max(1e-9)),
        "alerts_delivered": delivered,
        "alerts_missing": sent.at.len() - delivered,
        "duplicate_deliveries": arrivals.duplicates.load(Ordering::Relaxed),
        "webhook_requests": arrivals.requests.load(Ordering::Relaxed),
        "first_send_to_last_arrival_s": round3(elapsed_s),
        "alerts_delivered_per_sec": round2(delivered as f64 / elapsed_s.max(1e-9)),
        "latency_ms_p50": round3(percentile(&latencies, 50.0)),
        "latency_ms_p90": round3(percentile(&latencies, 90.0)),
        "latency_ms_p99": round3(percentile(&latencies, 99.0)),
        "latency_ms_max": round3(latencies.last().copied().unwrap_or(f64::NAN)),
        "warmup_alerts_delivered": warmed_up,
        "cpu_s": cpu,
    })
}

fn command_center_config(data_dir: &Path, sink: std::net::SocketAddr) -> runtime::config::Config {
    let mut config = runtime::config::load(&runtime::config::ConfigSource::Embedded, &[])
        .expect("embedded config");
    config.daemon.data_dir = data_dir.to_path_buf();
    config.daemon.http_listen = "127.0.0.1:0".parse().unwrap();
    config.daemon.policies_dir = workspace_root().join("policies");
    config.daemon.prompts_dir = workspace_root().join("prompts");
    config.agents.market.enabled = false;
    config.agents.validators.enabled = false;
    config.notify.webhooks.push(WebhookReceiverConfig {
        name: "sink".into(),
        url: format!("http://{sink}/cc"),
        secret: None,
        secret_file: None,
        timeout: Duration::from_secs(10),
        max_attempts: 3,
    });
    config.access.users.push(UserConfig {
        name: "prometheus".into(),
        roles: vec!["viewer".into()],
        token_sha256: Some(hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))),
        telegram_id: None,
        slack_id: None,
    });
    config.alerting.receivers.push(AlertReceiverConfig {
        name: "sink".into(),
        kind: ReceiverKind::Webhook,
        webhook: Some("sink".into()),
        chat: None,
        channel: None,
        to: Vec::new(),
    });
    config.alerting.route = RouteConfig {
        receiver: Some("sink".into()),
        group_by: Some(vec!["alertname".into()]),
        group_wait: Some(Duration::ZERO),
        group_interval: Some(GROUP_INTERVAL),
        repeat_interval: Some(REPEAT_INTERVAL),
        ..RouteConfig::default()
    };
    config
}

fn alertmanager_config(sink: std::net::SocketAddr) -> String {
    format!(
        "route:\n  receiver: sink\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: {}s\n  repeat_interval: {}s\nreceivers:\n  - name: sink\n    webhook_configs:\n      - url: http://{sink}/am\n        send_resolved: true\n",
        GROUP_INTERVAL.as_secs(),
        REPEAT_INTERVAL.as_secs(),
    )
}

fn alertmanager_binary() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("ROUTER_BENCH_ALERTMANAGER")
            .unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".to_owned()),
    );
    path.exists().then_some(path)
}

fn alertmanager_version(binary: &Path) -> String {
    let output = Command::new(binary).arg("--version").output().unwrap();
    let text = [output.stdout, output.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills Alertmanager when the benchmark ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn bench_alertmanager(
    binary: &Path,
    client: &reqwest::Client,
    sink_addr: std::net::SocketAddr,
    sink: &Sink,
    (alerts, batch, senders): (usize, usize, usize),
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, alertmanager_config(sink_addr)).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
    let mut child = Running(
        Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ready = client
            .get(format!("{base}/-/ready"))
            .send()
            .await
            .is_ok_and(|response| response.status() == StatusCode::OK);
        if ready {
            break;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.path().join("alertmanager.log"));
            panic!("alertmanager exited before ready ({status}): {log:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "alertmanager not ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.0.id().to_string();
    let rss_ready = memory_mib(&pid);
    let mut report = measure(
        client,
        &format!("{base}/api/v2/alerts"),
        None,
        &sink.alertmanager,
        Some(&pid),
        alerts,
        batch,
        senders,
    )
    .await;
    let rss_after = memory_mib(&pid);
    report["memory"] = serde_json::json!({
        "process": "alertmanager (its own process)",
        "ready_vm_rss_mib": rss_ready.0,
        "after_vm_rss_mib": rss_after.0,
        "vm_hwm_mib": rss_after.1,
    });
    drop(child);
    report
}

fn main() {
    let alerts = env_usize("ROUTER_BENCH_ALERTS", 5000);
    let batch = env_usize("ROUTER_BENCH_BATCH", 64);
    let senders = env_usize("ROUTER_BENCH_SENDERS", 4);
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    let report = system.block_on(async {
        tools::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let sink = Sink::default();
        let sink_addr = start_sink(sink.clone()).await;
        let rss_before = memory_mib("self");

        // Command Center: the daemon in this process (router, journal, notifier).
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(
            command_center_config(&dir.path().join("data"), sink_addr),
            RunOptions::default(),
        )
        .await
        .unwrap();
        let rss_ready = memory_mib("self");
        let url = format!("http://{}/api/v2/alerts", daemon.http_addr);
        let mut command_center = measure(
            &client,
            &url,
            Some(TOKEN),
            &sink.command_center,
            None,
            alerts,
            batch,
            senders,
        )
        .await;
        let rss_after = memory_mib("self");
        command_center["memory"] = serde_json::json!({
            "process": "the benchmark's (daemon, senders and sink)",
            "before_daemon_vm_rss_mib": rss_before.0,
            "ready_vm_rss_mib": rss_ready.0,
            "after_vm_rss_mib": rss_after.0,
            "vm_hwm_mib": rss_after.1,
        });
        command_center["journal_entries"] = serde_json::json!(daemon.state.store.journal().len());
        daemon.shutdown("bench finished").await.unwrap();

        let (alertmanager, version) = match alertmanager_binary() {
            Some(binary) => (
                bench_alertmanager(&binary, &client, sink_addr, &sink, (alerts, batch, senders))
                    .await,
                alertmanager_version(&binary),
            ),
            None => (
                serde_json::json!({"skipped": "prometheus-alertmanager not found; apt-get install prometheus-alertmanager"}),
                String::new(),
            ),
        };
        let commit = Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(workspace_root())
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
        serde_json::json!({
            "alerts": alerts,
            "batch": batch,
            "senders": senders,
            "warmup_alerts": WARMUP_ALERTS,
            "route": {"group_by": ["alertname"], "group_wait_s": 0, "group_interval_s": GROUP_INTERVAL.as_secs(), "repeat_interval_s": REPEAT_INTERVAL.as_secs()},
            "cores": std::thread::available_parallelism().map_or(0, usize::from),
            "versions": {"command_center": commit, "alertmanager": version},
            "command_center": command_center,
            "alertmanager": alertmanager,
        })
    });
    println!("{report}");
}

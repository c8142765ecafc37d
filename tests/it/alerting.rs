//! The alert router in the real daemon: validator alerts from the simulated world are grouped
//! into one webhook delivery, a silence made through the API holds back the next alert, and an
//! acknowledgement stops the repeats. Alerts travel over real sockets, so the router's clock is
//! driven with explicit times (`AlertRouter::tick`) instead of sleeps.

use std::time::Duration;

use agents::validators::WatchedValidator;
use chrono::Utc;
use memory::JournalQuery;
use runtime::config::{RouteConfig, UserConfig};
use runtime::daemon::{Daemon, RunOptions};
use runtime::router::AlertEntry;
use sha2::Digest;
use tools::sim::{SimNode, SimWorld, sim_public_key};

use crate::support::webhook_receiver;
use crate::support::{
    config_for, ops_webhook, point_chain_at, quiet_scenario, sim_validator, system, tick,
};

const ALPHA: &str = "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BRAVO: &str = "-1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "cc_alerting_test_token";

fn dispatched(store: &memory::Store) -> Vec<memory::JournalEntry> {
    store
        .journal()
        .query(&JournalQuery {
            kind: Some("router.dispatched".into()),
            ..Default::default()
        })
        .unwrap()
}

/// Polls `GET /v1/alerts?status=firing` until `done` holds (the router reads its queue in
/// its own task).
async fn firing_until(
    client: &reqwest::Client,
    http: &str,
    done: impl Fn(&[AlertEntry]) -> bool,
) -> Vec<AlertEntry> {
    let mut last = Vec::new();
    for _ in 0..200 {
        last = client
            .get(format!("{http}/v1/alerts?status=firing"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the router never reached the expected state: {last:?}");
}

#[test]
fn validator_alerts_are_grouped_silenced_and_acknowledged() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut scenario = quiet_scenario();
        // Alpha stops syncing 3 minutes in; bravo is short of stake and out of the set.
        let mut alpha = sim_validator("alpha", ALPHA, 400_000.0, 400_000.0);
        alpha.node = Some(SimNode {
            out_of_sync_at: Some(Duration::from_secs(180)),
            ..SimNode::default()
        });
        let bravo = sim_validator("bravo", BRAVO, 1_000.0, 0.0);
        let (alpha_key, bravo_key) = (sim_public_key(&alpha), sim_public_key(&bravo));
        scenario.validators = vec![alpha, bravo];
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.agents.market.enabled = false;
        point_chain_at(&mut config, &sim);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.check_releases = false;
        watched.validators = vec![
            WatchedValidator {
                name: "alpha".into(),
                wallet: ALPHA.into(),
                public_key: Some(alpha_key),
                metrics_url: Some(sim.metrics_url("alpha")),
                ..Default::default()
            },
            WatchedValidator {
                name: "bravo".into(),
                wallet: BRAVO.into(),
                public_key: Some(bravo_key),
                metrics_url: None,
                ..Default::default()
            },
        ];
        config.notify.webhooks.push(ops_webhook(&sim, None));
        config.access.users.push(UserConfig {
            name: "alice".into(),
            roles: vec!["operator".into()],
            token_sha256: Some(hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))),
            telegram_id: None,
            slack_id: None,
        });
        let alerting = &mut config.alerting;
        alerting.receivers.push(webhook_receiver("ops"));
        alerting.route = RouteConfig {
            receiver: Some("ops".into()),
            group_by: Some(vec!["validator".into()]),
            group_wait: Some(Duration::from_secs(60)),
            group_interval: Some(Duration::from_secs(300)),
            repeat_interval: Some(Duration::from_secs(3600)),
            ..RouteConfig::default()
        };
        // The test drives the router's clock itself.
        alerting.evaluation_interval = Duration::from_secs(24 * 3600);
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        let router = daemon.state.router.clone();
        let http = format!("http://{}", daemon.http_addr);
        let client = reqwest::Client::new();

        // Two alerts of bravo: one group, held for group_wait, then one delivery.
        let first = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(first.alerts.len(), 2, "{:?}", first.alerts);
        firing_until(&client, &http, |alerts| alerts.len() == 2).await;
        assert!(dispatched(&store).is_empty(), "group_wait holds the group");
        let start = Utc::now();
        router.tick(start + chrono::Duration::seconds(61)).await.unwrap();
        let hooks = sim.wait_for_webhooks(1, Duration::from_secs(10)).await;
        assert_eq!(hooks.len(), 1);
        let body = &hooks[0].body;
        assert_eq!(body["event"], "alert.firing");
        assert_eq!(body["group"]["receiver"], "ops");
        assert_eq!(body["group"]["kind"], "notification");
        assert_eq!(body["group"]["labels"]["validator"], "bravo");
        let mut keys: Vec<&str> = body["group"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|alert| alert["key"].as_str().unwrap())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            ["validators.low_balance/bravo", "validators.not_in_set/bravo"]
        );
        let group_key = body["group"]["key"].as_str().unwrap().to_owned();

        // A silence needs a known user; the API records who made it.
        let refused = client
            .post(format!("{http}/v1/silences"))
            .json(&serde_json::json!({"matchers": ["rule=out_of_sync"], "duration": "24h", "comment": "resync"}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        let silence: runtime::router::Silence = client
            .post(format!("{http}/v1/silences"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"matchers": ["rule=out_of_sync"], "duration": "24h", "comment": "resync"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(silence.created_by, "alice");

        // Alpha falls behind (300 s in): the silence holds its alert back.
        let mut fired = Vec::new();
        for _ in 0..4 {
            fired.extend(tick(&sim, &agent).await.unwrap().unwrap().alerts);
        }
        assert_eq!(fired, ["validators.out_of_sync/alpha"]);
        let firing = firing_until(&client, &http, |alerts| alerts.len() == 3).await;
        let alpha = firing
            .iter()
            .find(|entry| entry.alert.key == "validators.out_of_sync/alpha")
            .unwrap();
        assert_eq!(alpha.state, "silenced");
        assert_eq!(alpha.silenced_by, std::slice::from_ref(&silence.id));
        router.tick(start + chrono::Duration::seconds(300)).await.unwrap();
        assert_eq!(dispatched(&store).len(), 1, "silenced: nothing sent");

        // Unacknowledged, bravo's group repeats after repeat_interval ...
        router.tick(start + chrono::Duration::seconds(3700)).await.unwrap();
        let hooks = sim.wait_for_webhooks(2, Duration::from_secs(10)).await;
        assert_eq!(hooks[1].body["group"]["kind"], "repeat");
        // ... until someone acknowledges it (group keys go percent-encoded in the path).
        let ack = client
            .post(format!(
                "{http}/v1/alerts/{}/ack",
                runtime::cli::encode_segment(&group_key)
            ))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"comment": "topping up"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ack.status(), 200);
        let ack: runtime::router::Ack = ack.json().await.unwrap();
        assert_eq!((ack.by.as_str(), ack.key.as_str()), ("alice", group_key.as_str()));
        router.tick(start + chrono::Duration::seconds(3 * 3600)).await.unwrap();
        assert_eq!(dispatched(&store).len(), 2, "acknowledged: no more repeats");
        let unknown = client
            .post(format!("{http}/v1/alerts/nothing/ack"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);

        // The history answers with label matchers.
        let history: Vec<AlertEntry> = client
            .get(format!("{http}/v1/alerts?matchers=validator%3Dbravo"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "{history:?}");
        assert!(history.iter().all(|entry| entry.state == "firing"));

        daemon.shutdown("test").await.unwrap();
        let kinds: Vec<String> = store
            .journal()
            .query(&JournalQuery::default())
            .unwrap()
            .into_iter()
            .map(|entry| entry.kind)
            .filter(|kind| kind.starts_with("silence.") || kind.starts_with("ack."))
            .collect();
        assert_eq!(kinds, ["silence.created", "ack.created"]);
        sim.shutdown();
    });
}

/// The Alertmanager-style route used by the tests below: one group per alert name.
fn prometheus_route() -> RouteConfig {
    RouteConfig {
        receiver: Some("ops".into()),
        group_by: Some(vec!["alertname".into()]),
        group_wait: Some(Duration::ZERO),
        group_interval: Some(Duration::from_secs(300)),
        repeat_interval: Some(Duration::from_secs(3600)),
        ..RouteConfig::default()
    }
}

#[test]
fn alerts_posted_the_alertmanager_way_are_routed_and_resolved() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.agents.market.enabled = false;
        config.notify.webhooks.push(ops_webhook(&sim, None));
        config.access.users.push(UserConfig {
            name: "prometheus".into(),
            roles: vec!["viewer".into()],
            token_sha256: Some(hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))),
            telegram_id: None,
            slack_id: None,
        });
        config.alerting.receivers.push(webhook_receiver("ops"));
        config.alerting.route = prometheus_route();
        config.alerting.evaluation_interval = Duration::from_secs(24 * 3600);
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let store = daemon.state.store.clone();
        let url = format!("http://{}/api/v2/alerts", daemon.http_addr);
        let client = reqwest::Client::new();
        let post = |body: serde_json::Value, token: Option<&str>| {
            let mut request = client.post(&url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let cpu = serde_json::json!({
            "labels": {"alertname": "HighCPU", "instance": "node-1:9100", "severity": "critical"},
            "annotations": {"summary": "CPU above 90 % for 10 minutes"},
            "startsAt": "2026-11-24T05:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu",
        });

        // Unknown senders are refused; nothing is routed.
        let refused = post(serde_json::json!([cpu]), None).await.unwrap();
        assert_eq!(refused.status(), 401);
        assert!(dispatched(&store).is_empty());

        let answer = post(serde_json::json!([cpu]), Some(TOKEN)).await.unwrap();
        assert_eq!(answer.status(), 200);
        let received: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(received["firing"], 1);
        let hooks = sim.wait_for_webhooks(1, Duration::from_secs(10)).await;
        let body = &hooks[0].body;
        assert_eq!(body["event"], "alert.firing");
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["summary"], "CPU above 90 % for 10 minutes");
        assert_eq!(body["labels"]["instance"], "node-1:9100");
        assert_eq!(body["group"]["labels"]["alertname"], "HighCPU");
        let key = body["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("prometheus.HighCPU/"), "{key}");

        // Prometheus re-sends what still fires: refreshed, not sent again.
        let again: serde_json::Value = post(serde_json::json!([cpu]), Some(TOKEN))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(again["refreshed"], 1);
        assert_eq!(dispatched(&store).len(), 1);

        // A bad alert is named by its place and refuses the whole request.
        let bad = post(
            serde_json::json!([cpu, {"labels": {"instance": "x"}}]),
            Some(TOKEN),
        )
        .await
        .unwrap();
        assert_eq!(bad.status(), 400);
        let text = bad.text().await.unwrap();
        assert!(
            text.contains("alerts[1].labels.alertname: missing"),
            "{text}"
        );
        let malformed = client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("[{\"labels\": ")
            .send()
            .await
            .unwrap();
        assert!(malformed.status().is_client_error());

        // The end: a recovery notice, and the history holds both, journaled as the sender.
        let mut resolved = cpu.clone();
        resolved["endsAt"] = serde_json::json!("2026-11-24T05:10:00Z");
        let done: serde_json::Value = post(serde_json::json!([resolved]), Some(TOKEN))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(done["resolved"], 1);
        // As in Alertmanager, the group's next notification waits for group_interval.
        daemon
            .state
            .router
            .tick(Utc::now() + chrono::Duration::seconds(301))
            .await
            .unwrap();
        let hooks = sim.wait_for_webhooks(2, Duration::from_secs(10)).await;
        assert_eq!(hooks[1].body["event"], "alert.resolved");
        assert_eq!(hooks[1].body["key"], key.as_str());
        // Resolutions keep coming for a while: ignored once the alert is gone.
        let late: serde_json::Value = post(serde_json::json!([resolved]), Some(TOKEN))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(late["ignored"], 1);
        let history = store
            .journal()
            .query(&JournalQuery {
                kind: Some("alert.*".into()),
                ..Default::default()
            })
            .unwrap();
        let kinds: Vec<(&str, &str)> = history
            .iter()
            .map(|entry| (entry.kind.as_str(), entry.actor.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("alert.firing", "api:prometheus"),
                ("alert.resolved", "api:prometheus")
            ]
        );
        daemon.shutdown("test over").await.unwrap();
    });
}

/// A webhook receiver that takes requests and never answers; says when one arrived.
fn unresponsive_receiver() -> (u16, std::sync::mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (arrived, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buffer = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buffer);
            held.push(stream);
            if arrived.send(()).is_err() {
                break;
            }
        }
    });
    (port, arrivals)
}

#[test]
fn a_dispatch_a_killed_run_did_not_deliver_goes_out_on_the_next_start() {
    use crate::support::{Daemon as Child, free_port, write_team_config};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |webhook_url: &str| {
        format!(
            r#"
[[notify.webhooks]]
name = "ops"
url = "{webhook_url}"
timeout = "60s"
max_attempts = 1

[[alerting.receivers]]
name = "ops"
kind = "webhook"
webhook = "ops"

[alerting.route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "0s"
"#
        )
    };
    // The receiver is up but never answers: the dispatch is journaled, delivery hangs.
    let (hung_port, arrivals) = unresponsive_receiver();
    write_team_config(
        dir.path(),
        port,
        TOKEN,
        "cc_carol_unused",
        &config(&format!("http://127.0.0.1:{hung_port}/hook")),
    );
    let mut first = Child::spawn(dir.path(), &["run"]);
    first.wait_for("ready", Duration::from_secs(60));
    tools::http::install_crypto_provider();
    let rt = system();
    let posted = rt
        .block_on(
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!([{
                    "labels": {"alertname": "NodeDown", "instance": "validator-1"},
                    "annotations": {"summary": "validator-1 is down"},
                }]))
                .send(),
        )
        .unwrap();
    assert_eq!(posted.status(), 200);
    arrivals.recv_timeout(Duration::from_secs(30)).unwrap();
    first.signal(libc::SIGKILL);
    assert_eq!(first.wait_exit(Duration::from_secs(30)), None);

    // The next run, with the receiver answering again, sends it before anything else.
    let sim = rt.block_on(async {
        SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    write_team_config(
        dir.path(),
        port,
        TOKEN,
        "cc_carol_unused",
        &config(&sim.webhook_url()),
    );
    let mut second = Child::spawn(dir.path(), &["run"]);
    second.wait_for(
        "delivering a dispatch the previous run did not finish",
        Duration::from_secs(60),
    );
    let hooks = rt.block_on(sim.wait_for_webhooks(1, Duration::from_secs(30)));
    assert_eq!(hooks[0].body["event"], "alert.firing");
    assert_eq!(hooks[0].body["summary"], "validator-1 is down");
    second.wait_for("ready", Duration::from_secs(60));
    second.signal(libc::SIGTERM);
    let code = second.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", second.log.join("\n"));

    // Journaled: dispatched once, replayed, sent; nothing left pending; the router did not
    // dispatch it a second time.
    let store = memory::Store::open(&dir.path().join("data")).unwrap();
    let entries = store.journal().query(&JournalQuery::default()).unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|entry| entry.kind.as_str())
        .filter(|kind| kind.starts_with("router.") || kind.starts_with("notification."))
        .collect();
    assert_eq!(
        kinds,
        [
            "router.dispatched",
            "notification.replayed",
            "notification.sent"
        ]
    );
    let pending: Vec<(String, serde_json::Value)> = store
        .state()
        .scan_prefix(runtime::notifier::pending::PENDING_PREFIX)
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

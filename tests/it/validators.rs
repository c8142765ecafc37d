//! The validators agent end to end against the simulated world: toncenter (wallets, config
//! params 17 and 34) and node metrics pages -> series + journal -> alerts and recoveries.

use std::sync::Arc;
use std::time::Duration;

use agents::validators::{
    RELEASE_STATE_KEY, ReleaseMemory, WatchedValidator, balance_key, in_set_key, sync_lag_key,
};
use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tools::sim::{SimEvent, SimNode, SimValidator, SimWorld, sim_public_key};

use crate::support::{config_for, quiet_scenario, system, tick};

const ALPHA: &str = "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BRAVO: &str = "-1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CHARLIE: &str = "-1:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

fn sim_validator(name: &str, address: &str, balance_ton: f64, stake_ton: f64) -> SimValidator {
    SimValidator {
        name: name.into(),
        address: address.into(),
        balance_ton,
        stake_ton,
        seqno: 0,
        wallet_type: None,
        node: None,
    }
}

/// A node metrics page the test controls: `Some(page)` answers 200 with it, `None` answers 503.
#[derive(Clone)]
struct MetricsPage(Arc<std::sync::Mutex<Option<String>>>);

impl MetricsPage {
    fn set_lag(&self, seconds: f64) {
        *self.0.lock().unwrap() = Some(format!(
            "# TYPE validator_masterchain_out_of_sync_seconds gauge\nvalidator_masterchain_out_of_sync_seconds {seconds}\nvalidator_console_up 1\n"
        ));
    }

    fn fail(&self) {
        *self.0.lock().unwrap() = None;
    }

    async fn serve() -> (MetricsPage, String) {
        let page = MetricsPage(Arc::new(std::sync::Mutex::new(None)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let served = page.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = served.0.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = vec![0_u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (page, url)
    }
}

#[test]
fn validators_fire_and_recover_on_sync_balance_set_and_metrics() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut scenario = quiet_scenario();
        let mut alpha = sim_validator("alpha", ALPHA, 400_000.0, 400_000.0);
        // Stops syncing 3 minutes in: lag = 2 s + time since.
        alpha.node = Some(SimNode {
            out_of_sync_at: Some(Duration::from_secs(180)),
            ..SimNode::default()
        });
        // No stake: absent from config 34; a wallet far below min_stake (300,000 TON) + 10.
        let bravo = sim_validator("bravo", BRAVO, 1_000.0, 0.0);
        let charlie = sim_validator("charlie", CHARLIE, 500_000.0, 300_000.0);
        let bravo_key = sim_public_key(&bravo);
        let alpha_key = sim_public_key(&alpha);
        scenario.validators = vec![alpha, bravo, charlie];
        // Bravo's wallet is topped up 10 minutes in.
        scenario.events.push(SimEvent::BalanceChange {
            at: Duration::from_secs(600),
            address: BRAVO.into(),
            delta_ton: 300_100.0,
        });
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (page, page_url) = MetricsPage::serve().await;
        page.set_lag(4.0);

        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.agents.market.enabled = false;
        let toncenter = &mut config.sources.toncenter;
        toncenter.base_url = sim.toncenter_url();
        toncenter.requests_per_second = 1000.0;
        toncenter.retry.max_attempts = 1;
        toncenter.retry.timeout = Duration::from_secs(2);
        toncenter.retry.backoff_initial = Duration::from_millis(1);
        toncenter.retry.backoff_max = Duration::from_millis(5);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        // The sim's GitHub knows no such repository (404): the release check fails every tick
        // without failing the tick or alerting; only the `github` source is degraded.
        watched.github_base_url = sim.github_url();
        watched.release_repo = "nobody/nothing".into();
        watched.release_check_interval = Duration::from_millis(1);
        watched.validators = vec![
            WatchedValidator {
                name: "alpha".into(),
                wallet: ALPHA.into(),
                public_key: Some(alpha_key),
                metrics_url: Some(sim.metrics_url("alpha")),
            },
            WatchedValidator {
                name: "bravo".into(),
                wallet: BRAVO.into(),
                public_key: Some(bravo_key),
                metrics_url: None,
            },
            WatchedValidator {
                name: "charlie".into(),
                wallet: CHARLIE.into(),
                public_key: None,
                metrics_url: Some(page_url),
            },
        ];
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        let sorted = |mut alerts: Vec<String>| {
            alerts.sort();
            alerts
        };

        // t = 60 s: bravo is short of the next election's stake and not in the current set.
        let first = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(first.alerts),
            [
                "validators.low_balance/bravo",
                "validators.not_in_set/bravo"
            ]
        );
        let series = store.series();
        assert_eq!(
            series.latest(&balance_key("bravo")).unwrap().unwrap().value,
            1_000.0
        );
        assert_eq!(
            series.latest(&in_set_key("alpha")).unwrap().unwrap().value,
            1.0
        );
        assert_eq!(
            series.latest(&in_set_key("bravo")).unwrap().unwrap().value,
            0.0
        );
        assert!(
            series.latest(&in_set_key("charlie")).unwrap().is_none(),
            "no key, no check"
        );
        assert_eq!(
            series
                .latest(&sync_lag_key("alpha"))
                .unwrap()
                .unwrap()
                .value,
            2.0,
            "in sync"
        );
        assert_eq!(
            series
                .latest(&sync_lag_key("charlie"))
                .unwrap()
                .unwrap()
                .value,
            4.0
        );
        let disk = memory::SeriesKey::new("validator_disk_used_percent")
            .with_label("validator", "alpha")
            .with_label("mountpoint", "/var/ton-work");
        assert!((series.latest(&disk).unwrap().unwrap().value - 40.0).abs() < 0.1);

        // Alpha stopped syncing at 180 s; at 300 s it is 122 s behind (> 120 s).
        for _ in 0..3 {
            let quiet = tick(&sim, &agent).await.unwrap().unwrap();
            assert!(quiet.alerts.is_empty(), "{:?}", quiet.alerts);
        }
        let behind = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(behind.alerts, ["validators.out_of_sync/alpha"]);
        let firing = store
            .journal()
            .query(&JournalQuery {
                kind: Some("alert.firing".into()),
                ..Default::default()
            })
            .unwrap();
        let out_of_sync = firing
            .iter()
            .find(|entry| entry.subject == "validators.out_of_sync/alpha")
            .unwrap();
        assert_eq!(out_of_sync.body["severity"], "critical");
        // 122 s plus the wall time the test took (the sim also runs in real time).
        let lag = out_of_sync.body["evidence"]["sync_lag_seconds"]
            .as_f64()
            .unwrap();
        assert!((122.0..140.0).contains(&lag), "{lag}");

        // Charlie's node falls behind, then catches up: fired once, then the recovery notice.
        page.set_lag(500.0);
        let charlie_behind = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(charlie_behind.alerts, ["validators.out_of_sync/charlie"]);
        let still = tick(&sim, &agent).await.unwrap().unwrap();
        assert!(
            still.alerts.is_empty(),
            "deduplicated while firing: {:?}",
            still.alerts
        );
        page.set_lag(3.0);
        let caught_up = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(caught_up.alerts, ["validators.out_of_sync/charlie"]);

        // Charlie's metrics page fails: the alert comes on the third failure, recovery on the
        // first answer. t = 540..720 s; bravo's top-up at 600 s resolves its balance alert.
        page.fail();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(tick(&sim, &agent).await.unwrap().unwrap().alerts);
        }
        assert_eq!(
            sorted(seen),
            [
                "validators.low_balance/bravo",
                "validators.metrics_unreachable/charlie"
            ]
        );
        page.set_lag(3.0);
        let back = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(back.alerts, ["validators.metrics_unreachable/charlie"]);

        let resolved: Vec<(String, String)> = store
            .journal()
            .query(&JournalQuery {
                kind: Some("alert.resolved".into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|entry| {
                (
                    entry.subject,
                    entry.body["summary"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(resolved.len(), 3, "{resolved:?}");
        assert!(
            resolved.iter().any(
                |(subject, summary)| subject == "validators.low_balance/bravo"
                    && summary.contains("topped up")
            ),
            "{resolved:?}"
        );
        // Still firing and remembered for restarts: alpha out of sync, bravo not in the set.
        let active: Vec<String> = store
            .state()
            .scan_prefix::<agents::alert::ActiveAlert>(agents::alert::ACTIVE_PREFIX)
            .unwrap()
            .into_iter()
            .map(|(_, active)| active.alert.key)
            .collect();
        assert_eq!(
            sorted(active),
            [
                "validators.not_in_set/bravo",
                "validators.out_of_sync/alpha"
            ]
        );
        let batches = store
            .journal()
            .query(&JournalQuery {
                kind: Some("observation.batch".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(batches.len(), 12, "one batch per tick");
        let github = daemon.state.health.source("github").unwrap();
        assert_eq!(github.state, agents::health::HealthState::Degraded);
        assert_eq!(
            github.consecutive_failures, 12,
            "checked every tick, never fatal"
        );
        assert_eq!(
            batches[0].body["required_balance_ton"], 300_010.0,
            "param 17 min_stake + 10 TON margin"
        );

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

#[test]
fn service_down_and_a_new_release_fire_from_the_sim() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut scenario = quiet_scenario();
        let mut delta = sim_validator("delta", ALPHA, 500_000.0, 400_000.0);
        // The validator service stops 150 s in: `validator_console_up 0` from then on.
        delta.node = Some(SimNode {
            down_at: Some(Duration::from_secs(150)),
            ..SimNode::default()
        });
        scenario.validators = vec![delta];
        // The release the node runs, out before the start; a new one 150 s in.
        scenario.events.push(SimEvent::Release {
            at: Duration::ZERO,
            repo: "ton-blockchain/ton".into(),
            tag: "v2025.02".into(),
            name: Some("TON v2025.02".into()),
            body: "Stability fixes.".into(),
            prerelease: false,
            draft: false,
            published_before_start: Some(Duration::from_secs(30 * 86_400)),
        });
        scenario.events.push(SimEvent::Release {
            at: Duration::from_secs(150),
            repo: "ton-blockchain/ton".into(),
            tag: "v2025.03".into(),
            name: Some("TON v2025.03".into()),
            body: "Faster catch-up after restarts\n\n- more".into(),
            prerelease: false,
            draft: false,
            published_before_start: None,
        });
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.agents.market.enabled = false;
        let toncenter = &mut config.sources.toncenter;
        toncenter.base_url = sim.toncenter_url();
        toncenter.requests_per_second = 1000.0;
        toncenter.retry.max_attempts = 1;
        toncenter.retry.timeout = Duration::from_secs(2);
        toncenter.retry.backoff_initial = Duration::from_millis(1);
        toncenter.retry.backoff_max = Duration::from_millis(5);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.check_releases = true;
        watched.github_base_url = sim.github_url();
        // The agent spaces checks by wall time; the test's ticks are sim minutes apart.
        watched.release_check_interval = Duration::from_millis(1);
        watched.validators = vec![WatchedValidator {
            name: "delta".into(),
            wallet: ALPHA.into(),
            public_key: None,
            metrics_url: Some(sim.metrics_url("delta")),
        }];
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        let sorted = |mut alerts: Vec<String>| {
            alerts.sort();
            alerts
        };

        // t = 60 s: service up; the first release check records v2025.02 without an alert.
        let first = tick(&sim, &agent).await.unwrap().unwrap();
        assert!(first.alerts.is_empty(), "{:?}", first.alerts);
        let memory: ReleaseMemory = store.state().get(RELEASE_STATE_KEY).unwrap().unwrap();
        assert_eq!(memory.last_tag.as_deref(), Some("v2025.02"));
        assert!(memory.last_checked.is_some());
        // t = 120 s: the same tag again is nothing; a second CPU scrape gives a rate (35%).
        let second = tick(&sim, &agent).await.unwrap().unwrap();
        assert!(second.alerts.is_empty(), "{:?}", second.alerts);

        // t = 180 s: the service is down and v2025.03 is out.
        let third = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(third.alerts),
            [
                "validators.new_release/ton-blockchain/ton",
                "validators.service_down/delta",
            ]
        );
        let firing = store
            .journal()
            .query(&JournalQuery {
                kind: Some("alert.firing".into()),
                ..Default::default()
            })
            .unwrap();
        let down = firing
            .iter()
            .find(|entry| entry.subject == "validators.service_down/delta")
            .unwrap();
        assert_eq!(down.body["severity"], "critical");
        assert_eq!(down.body["evidence"]["validator_console_up"], 0);
        let release = firing
            .iter()
            .find(|entry| entry.subject == "validators.new_release/ton-blockchain/ton")
            .unwrap();
        assert_eq!(release.body["severity"], "info");
        assert_eq!(
            release.body["summary"],
            "new validator software release v2025.03: Faster catch-up after restarts"
        );
        let html_url = release.body["evidence"]["html_url"].as_str().unwrap();
        assert!(html_url.ends_with("v2025.03"), "{html_url}");

        // t = 240 s: the release notice is closed at the next check; the service stays down
        // (firing, not re-sent).
        let fourth = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(fourth.alerts, ["validators.new_release/ton-blockchain/ton"]);
        let resolved = store
            .journal()
            .query(&JournalQuery {
                kind: Some("alert.resolved".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        let memory: ReleaseMemory = store.state().get(RELEASE_STATE_KEY).unwrap().unwrap();
        assert_eq!(memory.last_tag.as_deref(), Some("v2025.03"));
        let active: Vec<String> = store
            .state()
            .scan_prefix::<agents::alert::ActiveAlert>(agents::alert::ACTIVE_PREFIX)
            .unwrap()
            .into_iter()
            .map(|(_, active)| active.alert.key)
            .collect();
        assert_eq!(active, ["validators.service_down/delta"]);
        // The observation batch carries the CPU rate from the second scrape on.
        let batches = store
            .journal()
            .query(&JournalQuery {
                kind: Some("observation.batch".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(batches[0].body["validators"][0]["cpu_busy_percent"].is_null());
        let busy = batches[1].body["validators"][0]["cpu_busy_percent"]
            .as_f64()
            .unwrap();
        assert!((busy - 35.0).abs() < 0.5, "{busy}");

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

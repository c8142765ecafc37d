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
use tools::sim::{SimEvent, SimNode, SimWorld, sim_public_key};

use crate::support::{
    config_for, echo_program, point_chain_at, quiet_scenario, sim_validator, system, tick,
};

const ALPHA: &str = "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BRAVO: &str = "-1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CHARLIE: &str = "-1:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const DELTA: &str = "-1:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

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
        point_chain_at(&mut config, &sim);
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
                ..Default::default()
            },
            WatchedValidator {
                name: "bravo".into(),
                wallet: BRAVO.into(),
                public_key: Some(bravo_key),
                metrics_url: None,
                ..Default::default()
            },
            WatchedValidator {
                name: "charlie".into(),
                wallet: CHARLIE.into(),
                public_key: None,
                metrics_url: Some(page_url),
                ..Default::default()
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
        point_chain_at(&mut config, &sim);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.check_releases = true;
        watched.github_base_url = sim.github_url();
        // The agent spaces checks by wall time; the test's ticks are sim minutes apart.
        watched.release_check_interval = Duration::from_millis(1);
        // Reminders of what still fires, at every tick here.
        watched.resend_interval = Duration::from_millis(1);
        watched.validators = vec![WatchedValidator {
            name: "delta".into(),
            wallet: ALPHA.into(),
            public_key: None,
            metrics_url: Some(sim.metrics_url("delta")),
            ..Default::default()
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
        // and is sent again as a reminder (resend_interval).
        let fourth = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(fourth.alerts),
            [
                "validators.new_release/ton-blockchain/ton",
                "validators.service_down/delta",
            ]
        );
        let reminder: Vec<_> = journal(&store, "alert.firing")
            .into_iter()
            .filter(|entry| entry.subject == "validators.service_down/delta")
            .collect();
        assert_eq!(reminder.len(), 2, "fired, then reminded");
        assert!(
            reminder[1].body["summary"]
                .as_str()
                .unwrap()
                .starts_with("still firing since "),
            "{}",
            reminder[1].body["summary"]
        );
        assert_eq!(reminder[1].body["evidence"]["reminder"], true);
        assert_eq!(reminder[1].body["starts_at"], reminder[0].body["starts_at"]);
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

/// Election ids and unfreeze times are unix seconds; the sim starts at the wall clock.
fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

fn journal(store: &memory::Store, kind: &str) -> Vec<memory::JournalEntry> {
    store
        .journal()
        .query(&JournalQuery {
            kind: Some(kind.into()),
            ..Default::default()
        })
        .unwrap()
}

/// A whole election cycle at accelerated time: keys learned by wallet, set membership, rank
/// and share, a missing election stake, a complaint, efficiency, a node that falls out of sync
/// (and stops producing blocks) with a standby ready, stakes released with their rewards
/// (earnings in TON and USD, income for finance), a stake the wallet has to recover, a pool
/// losing delegation, the next set without one validator, a release the nodes lag behind —
/// and each fix proposed to the gate once.
#[test]
fn an_election_cycle_walks_through_the_agent_and_its_proposals() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let now = unix_now();
        let election_id = now + 3600;
        let round = 65536;
        let text = format!(
            r#"
name = "cycle"
seed = 7
speed = 1.0

[[coins]]
id = "the-open-network"
symbol = "TON"
price_usd = 5.0

[[validators]]
name = "alpha"
address = "{ALPHA}"
balance_ton = 800000.0
stake_ton = 400000.0
[validators.node]
out_of_sync_at = "150s"
in_sync_at = "500s"
low_efficiency_at = "0s"
low_efficiency_percent = 61.5

[[validators]]
name = "bravo"
address = "{BRAVO}"
balance_ton = 1000.0
stake_ton = 350000.0

# A new validator with funds, outside the set, not yet staking.
[[validators]]
name = "delta"
address = "{DELTA}"
balance_ton = 600000.5
stake_ton = 1.0

[[pools]]
name = "alpha-pool"
address = "{CHARLIE}"
validator = "alpha"
[[pools.nominators]]
address = "0:{nominator_a}"
amount_ton = 60000.0
[[pools.nominators]]
address = "0:{nominator_b}"
amount_ton = 40000.0

# Open from the start; bravo sends no stake.
[[events]]
at = "0s"
kind = "election"
id = {election_id}
participants = ["alpha"]
current_set = ["alpha", "bravo"]

# The round in force: both stakes frozen, released 4 minutes in.
[[events.past]]
election_id = {previous}
stakes = ["alpha", "bravo"]
bonuses_ton = 300.0
unfreeze_at = {unfreeze}

# An older election still holding bravo's stake, with a complaint against bravo.
[[events.past]]
election_id = {older}
stakes = ["bravo"]
unfreeze_at = {far}
complaints_against = ["bravo"]

[[events]]
at = "200s"
kind = "delegation_change"
pool = "alpha-pool"
nominator = "0:{nominator_a}"
delta_ton = -30000.0

# The elector pays alpha's released stake out (recovered): 400,000 + 160 TON.
[[events]]
at = "330s"
kind = "stake_returned"
validator = "alpha"
amount_ton = 400160.0

# The election ends: only alpha is elected.
[[events]]
at = "400s"
kind = "election"
id = {election_id}
participants = ["alpha"]
current_set = ["alpha", "bravo"]
finished = true
next_set = ["alpha"]

[[events.past]]
election_id = {previous}
stakes = ["alpha", "bravo"]
bonuses_ton = 300.0
unfreeze_at = {unfreeze}

[[events.past]]
election_id = {older}
stakes = ["bravo"]
unfreeze_at = {far}
complaints_against = ["bravo"]

[[events]]
at = "0s"
kind = "release"
tag = "v2025.03"
body = "Faster catch-up."
published_before_start = "1d"
"#,
            nominator_a = "a1".repeat(32),
            nominator_b = "b2".repeat(32),
            previous = election_id - round,
            older = election_id - 2 * round,
            unfreeze = now + 270,
            far = now + 10 * round,
        );
        let scenario = tools::sim::Scenario::from_toml(&text, "cycle.toml").unwrap();
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (standby, standby_url) = MetricsPage::serve().await;
        standby.set_lag(3.0);

        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        point_chain_at(&mut config, &sim);
        echo_program(&mut config, "restart_validator", &["{validator}"]);
        echo_program(&mut config, "upgrade_validator", &["{validator}", "{version}"]);
        echo_program(&mut config, "failover_validator", &["{validator}", "{standby}"]);
        echo_program(&mut config, "recover_stake", &["{validator}"]);
        echo_program(
            &mut config,
            "join_election",
            &["{validator}", "{stake_ton}", "{max_factor}"],
        );
        // People who may approve (the default policies ask an operator, and two treasurers
        // when funds move).
        for (name, roles) in [("olga", vec!["operator", "treasurer"]), ("tom", vec!["treasurer"])] {
            config.access.users.push(
                serde_json::from_value(serde_json::json!({ "name": name, "roles": roles }))
                    .unwrap(),
            );
        }
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.github_base_url = sim.github_url();
        watched.release_check_interval = Duration::from_millis(1);
        watched.participation_grace = Duration::from_secs(3600);
        watched.stake_return_grace = Duration::from_secs(3600);
        // Wall-clock windows: the test's ticks are sim minutes but wall milliseconds apart.
        watched.zero_blocks_window = Duration::from_millis(1);
        watched.resend_interval = Duration::ZERO;
        watched.validators = vec![
            WatchedValidator {
                name: "alpha".into(),
                wallet: ALPHA.into(),
                metrics_url: Some(sim.metrics_url("alpha")),
                running_version: Some("v2025.02".into()),
                pool: Some(CHARLIE.into()),
                pool_kind: Some(agents::validators::PoolKind::Nominator),
                standby: Some(agents::validators::StandbyNode {
                    name: "alpha-standby".into(),
                    metrics_url: Some(standby_url),
                }),
                ..Default::default()
            },
            WatchedValidator {
                name: "bravo".into(),
                wallet: BRAVO.into(),
                ..Default::default()
            },
            WatchedValidator {
                name: "delta".into(),
                wallet: DELTA.into(),
                ..Default::default()
            },
        ];
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        let sorted = |mut alerts: Vec<String>| {
            alerts.sort();
            alerts
        };

        // t = 60 s. No key is configured: alpha's and bravo's are learned from the elector by
        // wallet; delta has none yet (it never staked), so its set membership is not judged.
        let first = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(first.alerts),
            [
                "validators.complaint/bravo",
                "validators.low_balance/bravo",
                "validators.low_efficiency/alpha",
                "validators.no_election_stake/bravo",
                "validators.no_election_stake/delta",
            ]
        );
        let summary = agents::validators_report::summary(&store, "alpha", chrono::Utc::now())
            .unwrap();
        assert_eq!(summary.in_current_set, Some(true));
        assert_eq!((summary.rank, summary.set_size), (Some(1), Some(2)));
        let share = summary.share_percent.unwrap();
        assert!((share - 400.0 / 750.0 * 100.0).abs() < 0.01, "{share}");
        assert_eq!(summary.stake_ton, Some(400_000.0));
        assert_eq!(summary.efficiency_percent, Some(61.5));
        let bravo = agents::validators_report::summary(&store, "bravo", chrono::Utc::now())
            .unwrap();
        assert_eq!(bravo.rank, Some(2));
        let complaint = journal(&store, "alert.firing")
            .into_iter()
            .find(|entry| entry.subject == "validators.complaint/bravo")
            .unwrap();
        assert_eq!(complaint.body["severity"], "critical");
        assert!(
            complaint.body["summary"]
                .as_str()
                .unwrap()
                .contains("suggested fine 101.00 TON"),
            "{}",
            complaint.body["summary"]
        );

        // t = 120 s: the release check saw v2025.03 at t = 60; alpha runs v2025.02.
        let second = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(second.alerts, ["validators.behind_release/alpha"]);

        // t = 180 s: alpha stopped syncing at 150 s; t = 240 s: its block counters stood
        // still; t = 300 s: 152 s behind, and the stakes of the previous round are released
        // (unfreeze at +270 s): rewards recorded, alpha's stake waits in the elector. The pool
        // lost 30% of its delegation at 200 s.
        let third = tick(&sim, &agent).await.unwrap().unwrap();
        assert!(third.alerts.is_empty(), "{:?}", third.alerts);
        let fourth = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(fourth.alerts),
            [
                "validators.delegation_change/alpha",
                "validators.zero_blocks/alpha",
            ]
        );
        let fifth = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(fifth.alerts),
            [
                "validators.delegation_change/alpha",
                "validators.out_of_sync/alpha",
                "validators.stake_unrecovered/alpha",
                "validators.stake_unrecovered/bravo",
            ],
            "the delegation notice closes at the next poll"
        );
        let income = journal(&store, "income.recorded");
        assert_eq!(income.len(), 2, "{income:?}");
        let alpha_income = income
            .iter()
            .find(|entry| entry.body["validator"] == "alpha")
            .unwrap();
        assert_eq!(alpha_income.body["stream"], "validators");
        assert_eq!(alpha_income.body["reward_ton"], 160.0);
        assert_eq!(alpha_income.body["election_id"], election_id - round);
        // No market agent ran in this test, so no TON price: USD is absent, not invented.
        assert!(alpha_income.body["reward_usd"].is_null());
        let apy = alpha_income.body["apy_percent"].as_f64().unwrap();
        assert!((apy - 160.0 / 400_000.0 * 365.0 * 86_400.0 / 65_536.0 * 100.0).abs() < 1e-6);

        // t = 360 s: the elector paid alpha's stake out (330 s).
        let sixth = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(sixth.alerts, ["validators.stake_unrecovered/alpha"]);
        // t = 420 s: the election finished without bravo.
        let seventh = tick(&sim, &agent).await.unwrap().unwrap();
        assert_eq!(
            sorted(seventh.alerts),
            ["validators.not_elected/bravo", "validators.not_elected/delta"],
            "the missing stakes stay firing (the finished election still stands)"
        );

        let week = agents::validators_report::earnings(
            &store,
            agents::validators_report::Period::Week,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(week.total.reward_ton, 300.0);
        assert_eq!(week.total.rounds, 2);
        let ranking = agents::validators_report::ranking(&store, chrono::Utc::now()).unwrap();
        assert_eq!(ranking[0].name, "alpha");
        assert_eq!(ranking[0].rank, Some(1));
        // The same through the API the chat channels and the console use.
        let http = reqwest::Client::new();
        let api = format!("http://{}", daemon.http_addr);
        let week: serde_json::Value = http
            .get(format!("{api}/v1/earnings?period=week"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(week["total"]["reward_ton"], 300.0);
        assert_eq!(week["period"], "week");
        let bad = http
            .get(format!("{api}/v1/earnings?period=year"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(bad.text().await.unwrap().contains("day, week or month"));
        let ranked: serde_json::Value = http
            .get(format!("{api}/v1/ranking"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ranked[0]["name"], "alpha");
        assert_eq!(ranked[1]["rank"], 2);

        // Every fix once, decided by the gate (commands need an operator's approval).
        let mut proposals: Vec<(String, String)> = daemon
            .state
            .gate
            .list(None)
            .unwrap()
            .into_iter()
            .map(|record| {
                (
                    record.proposal.id.split('.').take(3).collect::<Vec<_>>().join("."),
                    record.state.as_str().to_owned(),
                )
            })
            .collect();
        proposals.sort();
        assert_eq!(
            proposals,
            [
                ("validators.failover.alpha".to_owned(), "pending".to_owned()),
                ("validators.join_election.delta".to_owned(), "pending".to_owned()),
                ("validators.recover_stake.alpha".to_owned(), "pending".to_owned()),
                ("validators.recover_stake.bravo".to_owned(), "pending".to_owned()),
                ("validators.restart_node.alpha".to_owned(), "pending".to_owned()),
                ("validators.top_up.bravo".to_owned(), "denied".to_owned()),
                ("validators.upgrade_node.alpha".to_owned(), "pending".to_owned()),
            ],
            "bravo cannot cover the minimum stake: no join proposal; no TON executor: the top-up is denied with the reason"
        );
        let upgrade = daemon
            .state
            .gate
            .list(None)
            .unwrap()
            .into_iter()
            .find(|record| record.proposal.id.starts_with("validators.upgrade_node.alpha"))
            .unwrap();
        assert_eq!(upgrade.proposal.operation.kind, "command");
        // Delta's stake: the wallet minus the 50 TON reserve, in whole TON, as funds moved.
        let join = daemon
            .state
            .gate
            .list(None)
            .unwrap()
            .into_iter()
            .find(|record| record.proposal.id.starts_with("validators.join_election.delta"))
            .unwrap();
        assert_eq!(join.proposal.operation.parameters["vars"]["stake_ton"], "599950");
        assert_eq!(join.proposal.operation.parameters["vars"]["max_factor"], "3.0");
        assert_eq!(join.proposal.operation.amount_nanoton, 599_950_000_000_000);
        assert_eq!(
            join.proposal.id,
            format!("validators.join_election.delta.{election_id}")
        );
        assert_eq!(
            upgrade.proposal.operation.parameters["vars"]["version"],
            "v2025.03"
        );
        // The observation batch says what each validator's keys are.
        let batches = journal(&store, "observation.batch");
        assert_eq!(batches.len(), 7);
        assert_eq!(
            batches[0].body["validators"][0]["keys"][0],
            sim_public_key(&sim_validator("alpha", ALPHA, 0.0, 0.0))
        );

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

/// mytonctrl makes a new validator key for every election: the agent follows the wallet, so a
/// validator whose key changed between cycles stays recognised in the set.
#[test]
fn a_validator_whose_keys_changed_between_cycles_is_still_recognised() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let election_id = unix_now() + 3600;
        let mut scenario = quiet_scenario();
        let mut echo = sim_validator("echo", ALPHA, 500_000.0, 400_000.0);
        echo.rotate_keys_at = Some(Duration::from_secs(150));
        let first_key = sim_public_key(&echo);
        let second_key = tools::sim::sim_public_key_at(&echo, Duration::from_secs(150));
        assert_ne!(first_key, second_key);
        scenario.validators = vec![echo];
        scenario.events.push(SimEvent::Election(
            serde_json::from_value(serde_json::json!({ "at": "0s", "id": election_id })).unwrap(),
        ));
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        point_chain_at(&mut config, &sim);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.check_releases = false;
        // Balances from tonapi (one batched request a round), the rest from toncenter.
        watched.providers.balances = agents::validators::Provider::Tonapi;
        config.sources.tonapi.api_key = Some(tools::secret::Secret::new("test-key"));
        config.sources.tonapi.requests_per_second = 1000.0;
        let watched = &mut config.agents.validators;
        watched.validators = vec![WatchedValidator {
            name: "echo".into(),
            wallet: ALPHA.into(),
            // The key of the first cycle only, as an operator would have written it.
            public_key: Some(first_key.clone()),
            ..Default::default()
        }];
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();
        for _ in 0..4 {
            let report = tick(&sim, &agent).await.unwrap().unwrap();
            assert!(report.alerts.is_empty(), "{:?}", report.alerts);
        }
        let batches = journal(&store, "observation.batch");
        let keys_at = |index: usize| -> Vec<String> {
            serde_json::from_value(batches[index].body["validators"][0]["keys"].clone()).unwrap()
        };
        assert_eq!(keys_at(0), std::slice::from_ref(&first_key));
        let mut both = vec![first_key, second_key.clone()];
        both.sort();
        assert_eq!(keys_at(3), both);
        // The tick after the rotation reports the new key once.
        assert_eq!(batches[2].body["validators"][0]["new_keys"][0], second_key);
        assert_eq!(
            batches[3].body["validators"][0]["new_keys"],
            serde_json::json!([])
        );
        assert_eq!(
            store
                .series()
                .latest(&in_set_key("echo"))
                .unwrap()
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            store
                .series()
                .latest(&balance_key("echo"))
                .unwrap()
                .unwrap()
                .value,
            500_000.0
        );
        assert_eq!(sim.request_count("tonapi"), 4, "one bulk request per round");
        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

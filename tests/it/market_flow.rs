//! The thin domain end to end: CoinGecko (simulated) -> market agent -> series + journal ->
//! alert -> notifier -> webhook, and the recovery notice.

use std::time::Duration;

use memory::{JournalQuery, SeriesKey};
use runtime::daemon::{Daemon, RunOptions};

use tools::secret::Secret;
use tools::sim::SimWorld;

use crate::support::{config_for, quiet_scenario, system, tick};

const TON: &str = "the-open-network";

fn kinds(store: &memory::Store) -> Vec<(u64, String, String)> {
    store
        .journal()
        .query(&JournalQuery::default())
        .unwrap()
        .into_iter()
        .map(|entry| (entry.seq, entry.kind, entry.subject))
        .collect()
}

#[test]
fn a_price_drop_alerts_through_the_webhook_and_recovers() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.notify.webhooks.push(crate::support::ops_webhook(
            &sim,
            Some(Secret::new("hook-secret")),
        ));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let market = daemon.agent("market").unwrap().clone();
        let store = daemon.state.store.clone();
        let http = format!("http://{}", daemon.http_addr);

        let first = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(first.observations, 3, "TON, BTC and ETH");
        assert!(first.alerts.is_empty());
        let ton = SeriesKey::new("price")
            .with_label("coin", TON)
            .with_label("vs", "usd");
        assert_eq!(store.series().latest(&ton).unwrap().unwrap().value, 5.0);

        // TON drops 15%: one alert, delivered and signed.
        sim.set_price(TON, 4.25);
        let drop = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(drop.alerts, vec![format!("market.price_move/{TON}")]);
        let hooks = sim.wait_for_webhooks(1, Duration::from_secs(10)).await;
        assert_eq!(hooks.len(), 1);
        let body = &hooks[0].body;
        assert_eq!(body["event"], "alert.firing");
        assert_eq!(body["key"], format!("market.price_move/{TON}"));
        assert!(
            body["summary"]
                .as_str()
                .unwrap()
                .starts_with("TON fell 15.0% within 1h"),
            "{body}"
        );
        // The HMAC itself is checked against RFC 4231 in the notifier's unit tests.
        let signature = hooks[0].headers.get("x-command-center-signature").unwrap();
        let hex = signature.strip_prefix("sha256=").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));

        // Still down: no second alert.
        let again = tick(&sim, &market).await.unwrap().unwrap();
        assert!(again.alerts.is_empty(), "deduplicated while firing");

        // Back within 5% of 5.00: the recovery notice.
        sim.set_price(TON, 4.9);
        let recovery = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(recovery.alerts, vec![format!("market.price_move/{TON}")]);
        let hooks = sim.wait_for_webhooks(2, Duration::from_secs(10)).await;
        assert_eq!(hooks[1].body["event"], "alert.resolved");
        assert!(
            hooks[1].body["summary"]
                .as_str()
                .unwrap()
                .starts_with("TON recovered"),
            "{}",
            hooks[1].body
        );

        // Everything is on the record, and each alert before its notification.
        let journal = kinds(&store);
        let position = |kind: &str| {
            journal
                .iter()
                .position(|(_, k, _)| k == kind)
                .unwrap_or_else(|| panic!("no {kind} in {journal:?}"))
        };
        assert!(position("daemon.started") < position("observation.batch"));
        assert!(position("alert.firing") < position("notification.sent"));
        assert!(position("notification.sent") < position("alert.resolved"));
        assert!(
            journal
                .iter()
                .filter(|(_, kind, _)| kind == "observation.batch")
                .count()
                >= 4,
            "one batch per tick"
        );

        // The HTTP port tells the same story.
        let client = reqwest::Client::new();
        let ready = client.get(format!("{http}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let metrics = client
            .get(format!("{http}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for needle in [
            "command_center_alerts_total{rule=\"price_move\",status=\"firing\"} 1",
            "command_center_alerts_total{rule=\"price_move\",status=\"resolved\"} 1",
            // The count is checked in the journal after shutdown: the notifier journals and
            // counts a delivery after the receiver has answered.
            "command_center_notifications_total{receiver=\"ops\",outcome=\"sent\"}",
            "command_center_journal_appends_total",
            "command_center_alert_delivery_latency_seconds_bucket",
            "command_center_source_request_duration_seconds_count{source=\"coingecko\"}",
        ] {
            assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
        }
        let status: runtime::http::StatusReport = client
            .get(format!("{http}/v1/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(status.ready);
        assert!(status.firing_alerts.is_empty(), "resolved alerts are gone");
        assert_eq!(status.sources[0].name, "coingecko");
        assert_eq!(status.sources[0].consecutive_failures, 0);
        let audit: Vec<memory::JournalEntry> = client
            .get(format!("{http}/v1/audit?kind=alert.*"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(audit.len(), 2);

        daemon.shutdown("test").await.unwrap();
        let journal = kinds(&store);
        assert_eq!(journal.last().unwrap().1, "daemon.stopped");
        assert_eq!(
            journal
                .iter()
                .filter(|(_, kind, _)| kind == "notification.sent")
                .count(),
            2,
            "the notifier drained before the stop: {journal:?}"
        );
        let report = store.journal().verify(&[]).unwrap();
        assert!(report.problem.is_none(), "{report:?}");
    });
}

#[test]
fn a_restarted_agent_does_not_fire_twice() {
    let sim = crate::support::spawn_sim();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
    // First process: the alert fires.
    system().block_on(async {
        let daemon = Daemon::start(config.clone(), RunOptions::default())
            .await
            .unwrap();
        let market = daemon.agent("market").unwrap().clone();
        tick(&sim, &market).await.unwrap().unwrap();
        sim.set_price(TON, 4.0);
        let fired = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(fired.alerts.len(), 1);
        daemon.shutdown("restart").await.unwrap();
    });
    // Second process on the same data directory remembers the firing alert.
    system().block_on(async {
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let market = daemon.agent("market").unwrap().clone();
        let polled = tick(&sim, &market).await.unwrap().unwrap();
        assert!(
            polled.alerts.is_empty(),
            "the alert survived the restart and is not re-sent"
        );
        sim.set_price(TON, 5.0);
        let polled = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(polled.alerts.len(), 1, "the recovery is still announced");
        daemon.shutdown("test").await.unwrap();
    });
}

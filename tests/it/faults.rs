//! Upstream faults: retries honour Retry-After, the source turns degraded, an alert fires after
//! N consecutive failed polls, nothing crashes, the gap is visible in status, and recovery
//! resolves the alert.

use std::time::Duration;

use agents::health::HealthState;
use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};

use tools::sim::{Fault, FaultKind, SimService, SimWorld};

use crate::support::{config_for, quiet_scenario, system, tick};

fn fault(kind: FaultKind, count: u32) -> Fault {
    Fault {
        service: SimService::Coingecko,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

#[test]
fn every_upstream_fault_degrades_the_source_then_alerts_then_recovers() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config
            .notify
            .webhooks
            .push(crate::support::ops_webhook(&sim, None));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let market = daemon.agent("market").unwrap().clone();
        let health = daemon.state.health.clone();
        let store = daemon.state.store.clone();

        tick(&sim, &market).await.unwrap().unwrap();
        let last_good = health.source("coingecko").unwrap().last_success.unwrap();

        // A single 429 with Retry-After is retried within the same poll: no failure at all.
        let before = sim.request_count("coingecko");
        sim.inject_fault(fault(
            FaultKind::RateLimit {
                retry_after_seconds: Some(1),
            },
            1,
        ));
        let polled = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(polled.observations, 3);
        assert_eq!(sim.request_count("coingecko") - before, 2, "one retry");
        assert_eq!(
            health.source("coingecko").unwrap().state,
            HealthState::Healthy
        );

        // Each poll below exhausts its two attempts.
        let failures = [
            FaultKind::RateLimit {
                retry_after_seconds: Some(1),
            },
            FaultKind::RateLimit {
                retry_after_seconds: None,
            },
            FaultKind::RateLimitHtml,
            FaultKind::ServerError { status: 500 },
            FaultKind::ServerError { status: 502 },
            FaultKind::ServerError { status: 504 },
            FaultKind::Timeout { delay_ms: 600 },
            FaultKind::Garbage,
            FaultKind::Truncated,
        ];
        let mut alerts = Vec::new();
        for (index, kind) in failures.iter().enumerate() {
            sim.inject_fault(fault(kind.clone(), 2));
            let polled = tick(&sim, &market)
                .await
                .unwrap()
                .unwrap_or_else(|error| panic!("{kind:?} crashed the agent: {error}"));
            assert_eq!(polled.observations, 0, "{kind:?}");
            alerts.extend(polled.alerts);
            let source = health.source("coingecko").unwrap();
            assert_eq!(source.state, HealthState::Degraded, "{kind:?}");
            assert_eq!(source.consecutive_failures as usize, index + 1);
            assert_eq!(
                source.last_success,
                Some(last_good).max(source.last_success)
            );
            if index + 1 == 3 {
                assert_eq!(
                    alerts,
                    vec!["market.source_unavailable/coingecko".to_owned()]
                );
            }
        }
        assert_eq!(
            alerts.len(),
            1,
            "one alert for the whole outage: {alerts:?}"
        );
        let failed = store
            .journal()
            .query(&JournalQuery {
                kind: Some("source.failed".into()),
                ..Default::default()
            })
            .unwrap();
        let kinds: Vec<&str> = failed
            .iter()
            .map(|entry| entry.body["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "rate_limited",
                "rate_limited",
                "rate_limited",
                "unavailable",
                "unavailable",
                "unavailable",
                "timeout",
                "invalid_response",
                "invalid_response"
            ]
        );

        // The gap shows in status: the last success is the one before the outage.
        let status = runtime::http::status_report(&daemon.state).unwrap();
        let source = status
            .sources
            .iter()
            .find(|s| s.name == "coingecko")
            .unwrap();
        assert_eq!(source.consecutive_failures, 9);
        assert!(
            source.last_error.as_deref().unwrap().contains("JSON")
                || source.last_error.as_deref().unwrap().contains("json"),
            "{source:?}"
        );
        assert_eq!(status.firing_alerts.len(), 1);
        let rendered = runtime::cli::render_status(&status);
        assert!(rendered.contains("9 failures in a row"), "{rendered}");
        assert_eq!(status.actors[0].restarts, 0, "nothing crashed");

        // Recovery.
        let polled = tick(&sim, &market).await.unwrap().unwrap();
        assert_eq!(polled.observations, 3);
        assert_eq!(
            polled.alerts,
            vec!["market.source_unavailable/coingecko".to_owned()]
        );
        assert_eq!(
            health.source("coingecko").unwrap().state,
            HealthState::Healthy
        );
        let hooks = sim.wait_for_webhooks(2, Duration::from_secs(10)).await;
        assert_eq!(hooks[0].body["event"], "alert.firing");
        assert_eq!(hooks[1].body["event"], "alert.resolved");
        daemon.shutdown("test").await.unwrap();
    });
}

use chrono::Utc;

use super::*;

#[test]
fn source_failures_count_until_success() {
    let registry = HealthRegistry::new();
    let now = Utc::now();
    assert_eq!(registry.source_failed("coingecko", "HTTP 502", now), 1);
    assert_eq!(registry.source_failed("coingecko", "HTTP 502", now), 2);
    let source = registry.source("coingecko").unwrap();
    assert_eq!(source.state, HealthState::Degraded);
    assert_eq!(source.last_error.as_deref(), Some("HTTP 502"));
    registry.source_succeeded("coingecko", now);
    let source = registry.source("coingecko").unwrap();
    assert_eq!(source.state, HealthState::Healthy);
    assert_eq!(source.consecutive_failures, 0);
    assert_eq!(
        source.last_error.as_deref(),
        Some("HTTP 502"),
        "last error is kept for status"
    );
}

#[test]
fn readiness_waits_for_every_actor() {
    let registry = HealthRegistry::new();
    assert!(!registry.all_actors_started(), "no actor yet");
    registry.actor_starting("market");
    registry.actor_starting("validators");
    registry.actor_running("market");
    assert!(!registry.all_actors_started());
    registry.actor_running("validators");
    assert!(registry.all_actors_started());
    registry.actor_restarted("market");
    assert!(!registry.all_actors_started());
    assert_eq!(registry.actor("market").unwrap().restarts, 1);
}

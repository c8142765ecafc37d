use chrono::TimeZone;

use super::*;
use crate::alert::{Alert, AlertStatus, Severity, active_key};
use crate::validators::disk_key;

#[test]
fn summaries_read_the_latest_samples_and_the_firing_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let series = store.series();
    series
        .append(&balance_key("v1"), now - Duration::hours(20), 1000.0)
        .unwrap();
    series
        .append(&balance_key("v1"), now - Duration::hours(1), 970.5)
        .unwrap();
    series
        .append(&in_set_key("v1"), now - Duration::hours(1), 1.0)
        .unwrap();
    series
        .append(&sync_lag_key("v1"), now - Duration::hours(1), 3.0)
        .unwrap();
    series
        .append(
            &disk_key("v1", "/var/ton-work"),
            now - Duration::hours(1),
            82.5,
        )
        .unwrap();
    series
        .append(&balance_key("v2"), now - Duration::hours(1), 5.0)
        .unwrap();
    series
        .append(&in_set_key("v2"), now - Duration::hours(1), 0.0)
        .unwrap();
    let alert = Alert {
        key: "validators.disk_usage/v1:/var/ton-work".into(),
        rule: "disk_usage".into(),
        status: AlertStatus::Firing,
        severity: Severity::Warning,
        summary: "disk 82.5%".into(),
        labels: [("validator".to_owned(), "v1".to_owned())]
            .into_iter()
            .collect(),
        evidence: serde_json::Value::Null,
        starts_at: now - Duration::hours(1),
        at: now - Duration::hours(1),
        observed_at: now - Duration::hours(1),
    };
    store
        .state()
        .put(
            &active_key(&alert.key),
            &ActiveAlert {
                alert,
                reference: None,
            },
        )
        .unwrap();

    let all = summaries(&store, now).unwrap();
    assert_eq!(all.len(), 2);
    let v1 = &all[0];
    assert_eq!(v1.name, "v1");
    assert_eq!(v1.balance_ton.unwrap().value, 970.5);
    assert_eq!(v1.balance_change_24h_ton, Some(-29.5));
    assert_eq!(v1.in_current_set, Some(true));
    assert_eq!(v1.sync_lag_seconds, Some(3.0));
    assert_eq!(v1.disk_used_percent.get("/var/ton-work"), Some(&82.5));
    assert_eq!(v1.firing.len(), 1);
    let v2 = &all[1];
    assert_eq!(v2.in_current_set, Some(false));
    assert_eq!(v2.balance_change_24h_ton, None, "one sample is no change");
    assert!(v2.firing.is_empty());

    let detail = detail(&store, "v1", now).unwrap().unwrap();
    assert_eq!(detail.balance_hourly.len(), 2);
    assert!(super::detail(&store, "nobody", now).unwrap().is_none());
}

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
            now - Duration::hours(20),
            70.0,
        )
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
    // 70% 20 h ago, 82.5% an hour ago: the database grows 15.8 points a day.
    let growth = v1.disk_growth_percent_per_day["/var/ton-work"];
    assert!((growth - 12.5 / 19.0 * 24.0).abs() < 1e-9, "{growth}");
    assert_eq!(v1.firing.len(), 1);
    let v2 = &all[1];
    assert_eq!(v2.in_current_set, Some(false));
    assert_eq!(v2.balance_change_24h_ton, None, "one sample is no change");
    assert!(v2.firing.is_empty());

    let detail = detail(&store, "v1", now).unwrap().unwrap();
    assert_eq!(detail.balance_hourly.len(), 2);
    assert!(super::detail(&store, "nobody", now).unwrap().is_none());
}

#[test]
fn earnings_sum_by_period_with_usd_trend_and_apy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let series = store.series();
    let reward = |name: &str, hours_ago: i64, ton: f64, usd: Option<f64>, apy: f64| {
        let at = now - Duration::hours(hours_ago);
        series.append(&balance_key(name), at, 1000.0).unwrap();
        series
            .append(&validator_series(REWARD_SERIES, name), at, ton)
            .unwrap();
        if let Some(usd) = usd {
            series
                .append(&validator_series(REWARD_USD_SERIES, name), at, usd)
                .unwrap();
        }
        series
            .append(&validator_series(APY_SERIES, name), at, apy)
            .unwrap();
    };
    // v1: two rounds this week (one today), one the week before.
    reward("v1", 2, 400.0, Some(2000.0), 40.0);
    reward("v1", 80, 300.0, Some(1560.0), 30.0);
    reward("v1", 8 * 24, 350.0, Some(1800.0), 35.0);
    // v2: one round this week, no price on record.
    reward("v2", 30, 100.0, None, 20.0);

    let day = earnings(&store, Period::Day, now).unwrap();
    assert_eq!(day.total.reward_ton, 400.0);
    assert_eq!(day.validators[0].reward_usd, Some(2000.0));
    assert_eq!(day.validators[1].rounds, 0);
    assert_eq!(
        day.validators[1].apy_percent,
        Some(20.0),
        "latest known APY"
    );

    let week = earnings(&store, Period::Week, now).unwrap();
    let v1 = &week.validators[0];
    assert_eq!((v1.reward_ton, v1.rounds), (700.0, 2));
    assert_eq!(v1.reward_usd, Some(3560.0));
    assert_eq!(v1.previous_reward_ton, 350.0);
    assert_eq!(v1.trend_percent, Some(100.0));
    assert_eq!(v1.apy_percent, Some(35.0));
    assert_eq!(
        week.validators[1].reward_usd, None,
        "a reward without a price"
    );
    assert_eq!(week.total.reward_ton, 800.0);
    assert_eq!(week.total.reward_usd, None);
    assert_eq!(week.total.rounds, 3);
    assert_eq!(
        week.daily_ton.iter().map(|day| day.value).sum::<f64>(),
        800.0
    );
    let month = earnings(&store, Period::Month, now).unwrap();
    assert_eq!(month.total.reward_ton, 1150.0);
    assert_eq!(Period::parse("Weekly"), Ok(Period::Week));
    assert!(
        Period::parse("year")
            .unwrap_err()
            .contains("day, week or month")
    );
}

#[test]
fn ranking_orders_by_rank_and_keeps_the_previous_round() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let series = store.series();
    for (name, rank, in_set) in [("a", 40, 1.0), ("b", 7, 1.0), ("c", 3, 0.0)] {
        series.append(&balance_key(name), now, 1.0).unwrap();
        series.append(&in_set_key(name), now, in_set).unwrap();
        let position = SetPosition {
            public_key: "00".repeat(32),
            adnl: None,
            index: 0,
            rank,
            set_size: 400,
            weight: 1,
            share_percent: 0.25,
            utime_since: 1,
            utime_until: 2,
        };
        store
            .state()
            .put(&format!("{POSITION_STATE_PREFIX}{name}"), &position)
            .unwrap();
        let mut ranks = RankMemory::default();
        ranks.observe(0, rank + 5);
        ranks.observe(1, rank);
        store
            .state()
            .put(&format!("{RANK_STATE_PREFIX}{name}"), &ranks)
            .unwrap();
    }
    let rows = ranking(&store, now).unwrap();
    let order: Vec<(&str, Option<usize>)> = rows
        .iter()
        .map(|row| (row.name.as_str(), row.rank))
        .collect();
    // c left the set: its old position is not shown as a rank.
    assert_eq!(order, vec![("b", Some(7)), ("a", Some(40)), ("c", None)]);
    assert_eq!(rows[0].previous_rank, Some(12));
    assert_eq!(rows[0].set_size, Some(400));
}

#[test]
fn nothing_earned_prints_as_zero_not_minus_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    store.series().append(&balance_key("v1"), now, 1.0).unwrap();
    let report = earnings(&store, Period::Day, now).unwrap();
    for value in [
        report.total.reward_ton,
        report.total.previous_reward_ton,
        report.validators[0].reward_ton,
        report.validators[0].reward_usd.unwrap(),
    ] {
        assert!(value == 0.0 && value.is_sign_positive(), "{value}");
    }
}

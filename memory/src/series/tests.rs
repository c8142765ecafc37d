use chrono::{TimeZone, Utc};

use super::*;
use crate::test_support::temp_store;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn values(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|sample| sample.value).collect()
}

#[test]
fn display_is_prometheus_style_with_sorted_escaped_labels() {
    let key = SeriesKey::new("cpu_load")
        .with_label("zone", "eu \"west\"")
        .with_label("host", "a\\b");
    assert_eq!(
        key.to_string(),
        r#"cpu_load{host="a\\b",zone="eu \"west\""}"#
    );
    assert_eq!(SeriesKey::new("uptime").to_string(), "uptime");
    assert_ne!(key.id(), SeriesKey::new("cpu_load").id());
}

#[test]
fn range_is_half_open_ascending_and_per_series() {
    let (_dir, store) = temp_store();
    let series = store.series();
    let web = SeriesKey::new("requests").with_label("host", "web");
    let db = SeriesKey::new("requests").with_label("host", "db");
    // Out of order on purpose.
    series
        .append(&web, at("2025-03-01T10:02:00Z"), 3.0)
        .unwrap();
    series
        .append(&web, at("2025-03-01T10:00:00Z"), 1.0)
        .unwrap();
    series
        .append(&web, at("2025-03-01T10:01:00Z"), 2.0)
        .unwrap();
    series
        .append(&db, at("2025-03-01T10:01:00Z"), 99.0)
        .unwrap();

    let samples = series
        .range(&web, at("2025-03-01T10:00:00Z"), at("2025-03-01T10:02:00Z"))
        .unwrap();
    assert_eq!(values(&samples), [1.0, 2.0]);
    assert_eq!(samples[0].at, at("2025-03-01T10:00:00Z"));
    assert_eq!(
        values(
            &series
                .range(&db, at("2025-03-01T00:00:00Z"), at("2025-03-02T00:00:00Z"))
                .unwrap()
        ),
        [99.0]
    );
    assert!(
        series
            .range(&web, at("2025-03-01T11:00:00Z"), at("2025-03-01T10:00:00Z"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn same_timestamp_overwrites_and_latest_is_newest() {
    let (_dir, store) = temp_store();
    let series = store.series();
    let key = SeriesKey::new("queue_depth");
    assert_eq!(series.latest(&key).unwrap(), None);
    series
        .append(&key, at("2025-03-01T10:00:00Z"), 1.0)
        .unwrap();
    series
        .append(&key, at("2025-03-01T12:00:00Z"), 5.0)
        .unwrap();
    series
        .append(&key, at("2025-03-01T12:00:00Z"), 6.0)
        .unwrap();
    series
        .append(
            &SeriesKey::new("queue_depth").with_label("a", "b"),
            at("2030-01-01T00:00:00Z"),
            0.0,
        )
        .unwrap();
    let all = series
        .range(&key, at("2025-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(values(&all), [1.0, 6.0]);
    assert_eq!(
        series.latest(&key).unwrap(),
        Some(Sample {
            at: at("2025-03-01T12:00:00Z"),
            value: 6.0
        })
    );
}

#[test]
fn timestamps_before_1970_sort_before_later_ones() {
    let (_dir, store) = temp_store();
    let key = SeriesKey::new("historic");
    store
        .series()
        .append(&key, at("1969-12-31T23:59:59Z"), 1.0)
        .unwrap();
    store
        .series()
        .append(&key, at("1970-01-01T00:00:01Z"), 2.0)
        .unwrap();
    store
        .series()
        .append(&key, at("1900-01-01T00:00:00Z"), 0.0)
        .unwrap();
    let all = store
        .series()
        .range(&key, at("1800-01-01T00:00:00Z"), at("2000-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(values(&all), [0.0, 1.0, 2.0]);
    assert_eq!(store.series().latest(&key).unwrap().unwrap().value, 2.0);
}

#[test]
fn downsample_aggregates_per_utc_bucket() {
    let (_dir, store) = temp_store();
    let key = SeriesKey::new("latency_ms");
    let samples: Vec<(SeriesKey, DateTime<Utc>, f64)> = [
        ("2025-03-01T10:05:00Z", 4.0),
        ("2025-03-01T10:55:00Z", 2.0),
        ("2025-03-01T10:30:00Z", 6.0),
        ("2025-03-01T12:00:00Z", 10.0),
        ("2025-03-02T00:00:00Z", 1.0),
    ]
    .into_iter()
    .map(|(time, value)| (key.clone(), at(time), value))
    .collect();
    store.series().append_batch(&samples).unwrap();
    let from = at("2025-03-01T00:00:00Z");
    let to = at("2025-03-03T00:00:00Z");
    let hourly = |aggregation| {
        store
            .series()
            .downsample(&key, from, to, Resolution::Hour, aggregation)
            .unwrap()
    };

    let sums = hourly(Aggregation::Sum);
    assert_eq!(
        sums.iter().map(|sample| sample.at).collect::<Vec<_>>(),
        [
            at("2025-03-01T10:00:00Z"),
            at("2025-03-01T12:00:00Z"),
            at("2025-03-02T00:00:00Z")
        ]
    );
    assert_eq!(values(&sums), [12.0, 10.0, 1.0]);
    assert_eq!(values(&hourly(Aggregation::Avg)), [4.0, 10.0, 1.0]);
    assert_eq!(values(&hourly(Aggregation::Min)), [2.0, 10.0, 1.0]);
    assert_eq!(values(&hourly(Aggregation::Max)), [6.0, 10.0, 1.0]);
    // Last in time, not last written.
    assert_eq!(values(&hourly(Aggregation::Last)), [2.0, 10.0, 1.0]);

    let daily = store
        .series()
        .downsample(&key, from, to, Resolution::Day, Aggregation::Sum)
        .unwrap();
    assert_eq!(
        daily,
        vec![
            Sample {
                at: Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(),
                value: 22.0
            },
            Sample {
                at: Utc.with_ymd_and_hms(2025, 3, 2, 0, 0, 0).unwrap(),
                value: 1.0
            },
        ]
    );
}

#[test]
fn list_returns_every_written_key_sorted() {
    let (_dir, store) = temp_store();
    let b = SeriesKey::new("b");
    let a = SeriesKey::new("a").with_label("x", "1");
    store
        .series()
        .append_batch(&[
            (b.clone(), at("2025-01-01T00:00:00Z"), 1.0),
            (a.clone(), at("2025-01-01T00:00:00Z"), 1.0),
        ])
        .unwrap();
    store
        .series()
        .append(&b, at("2025-01-02T00:00:00Z"), 2.0)
        .unwrap();
    assert_eq!(store.series().list().unwrap(), vec![a, b]);
}

#[test]
fn resolution_and_aggregation_parse_and_serialize_snake_case() {
    assert_eq!("hour".parse::<Resolution>().unwrap(), Resolution::Hour);
    assert_eq!("Day".parse::<Resolution>().unwrap(), Resolution::Day);
    assert_eq!("avg".parse::<Aggregation>().unwrap(), Aggregation::Avg);
    assert_eq!("last".parse::<Aggregation>().unwrap(), Aggregation::Last);
    let error = "median".parse::<Aggregation>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid aggregation \"median\": expected one of sum, avg, min, max, last"
    );
    assert_eq!(serde_json::to_string(&Aggregation::Max).unwrap(), "\"max\"");
    assert_eq!(
        serde_json::from_str::<Resolution>("\"day\"").unwrap(),
        Resolution::Day
    );
}

use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::*;

fn rule(percent: f64) -> MoveAlertRule {
    MoveAlertRule {
        coin: "the-open-network".into(),
        percent,
        window: Duration::from_secs(600),
        recovery_percent: None,
        severity: Severity::Warning,
    }
}

fn samples(values: &[f64]) -> Vec<Sample> {
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    values
        .iter()
        .enumerate()
        .map(|(i, value)| Sample {
            at: start + chrono::Duration::minutes(i as i64),
            value: *value,
        })
        .collect()
}

fn check(values: &[f64], percent: f64, active: Option<f64>) -> MoveVerdict {
    let window = samples(values);
    let latest = *window.last().unwrap();
    let reference = active.map(|value| Sample {
        at: window[0].at,
        value,
    });
    evaluate_move(&rule(percent), &window, latest, reference)
}

#[test]
fn small_moves_are_quiet() {
    assert_eq!(
        check(&[5.0, 5.1, 4.9, 5.05], 10.0, None),
        MoveVerdict::Quiet
    );
}

#[test]
fn a_drop_from_the_window_high_fires() {
    let MoveVerdict::Fire {
        reference,
        change_percent,
    } = check(&[5.0, 5.2, 4.9, 4.6], 10.0, None)
    else {
        panic!("expected a firing verdict");
    };
    assert_eq!(reference.value, 5.2, "reference is the window high");
    assert!((change_percent - (4.6 / 5.2 - 1.0) * 100.0).abs() < 1e-9);
}

#[test]
fn a_rise_from_the_window_low_fires() {
    let verdict = check(&[5.0, 4.8, 5.4], 10.0, None);
    let MoveVerdict::Fire {
        reference,
        change_percent,
    } = verdict
    else {
        panic!("expected a firing verdict, got {verdict:?}");
    };
    assert_eq!(reference.value, 4.8);
    assert!(change_percent > 12.0);
}

#[test]
fn recovery_needs_the_price_back_within_the_band() {
    // Fired at reference 5.2; recovery band is 5% by default (half of 10%).
    assert!(matches!(
        check(&[4.6, 4.8], 10.0, Some(5.2)),
        MoveVerdict::StillFiring { .. }
    ));
    assert!(matches!(
        check(&[4.6, 5.0], 10.0, Some(5.2)),
        MoveVerdict::Recovered { .. }
    ));
}

#[test]
fn non_finite_samples_are_ignored() {
    assert_eq!(
        check(&[f64::NAN, 5.0, 5.01], 10.0, None),
        MoveVerdict::Quiet
    );
}

#[test]
fn config_validation_reports_every_problem_with_its_path() {
    let config = MarketAgentConfig {
        coins: vec!["bitcoin".into()],
        source_failure_alert_after: 0,
        move_alerts: vec![MoveAlertRule {
            recovery_percent: Some(12.0),
            ..rule(-1.0)
        }],
        ..MarketAgentConfig::default()
    };
    let paths: Vec<String> = config
        .validate()
        .into_iter()
        .map(|problem| problem.path)
        .collect();
    assert_eq!(
        paths,
        vec![
            "source_failure_alert_after",
            "move_alerts[0].coin",
            "move_alerts[0].percent",
            "move_alerts[0].recovery_percent",
        ]
    );
}

#[test]
fn default_config_is_valid() {
    assert!(MarketAgentConfig::default().validate().is_empty());
}

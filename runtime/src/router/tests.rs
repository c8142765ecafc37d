use std::collections::BTreeMap;
use std::time::Duration;

use agents::{Alert, AlertStatus, Severity};
use chrono::{DateTime, TimeZone, Utc};

use super::engine::{Dispatch, DispatchKind, Engine, RouterState, Silence};
use super::matcher::Matcher;
use super::schedule::WeeklyWindow;
use crate::config::{
    AlertingConfig, EscalationConfig, InhibitRuleConfig, MaintenanceWindowConfig, RouteConfig,
};

/// Friday 2026-11-20 12:00:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(seconds)
}

fn alert(key: &str, status: AlertStatus, labels: &[(&str, &str)]) -> Alert {
    let (prefix, _) = key.split_once('/').unwrap_or((key, ""));
    let rule = prefix
        .split_once('.')
        .map(|(_, rule)| rule)
        .unwrap_or(prefix);
    Alert {
        key: key.to_owned(),
        rule: rule.to_owned(),
        status,
        severity: Severity::Warning,
        summary: format!("{key} {status}"),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        evidence: serde_json::Value::Null,
        starts_at: t0(),
        at: t0(),
        observed_at: t0(),
    }
}

fn firing(key: &str, labels: &[(&str, &str)]) -> Alert {
    alert(key, AlertStatus::Firing, labels)
}

fn resolved(key: &str, labels: &[(&str, &str)]) -> Alert {
    alert(key, AlertStatus::Resolved, labels)
}

fn engine(config: &AlertingConfig) -> Engine {
    Engine::new(config, RouterState::default()).unwrap()
}

fn keys(dispatch: &Dispatch) -> Vec<&str> {
    dispatch.alerts.iter().map(|a| a.key.as_str()).collect()
}

/// (receiver, kind, status, alert keys) of each dispatch: the check helper's shape.
fn summary(dispatches: &[Dispatch]) -> Vec<(String, DispatchKind, AlertStatus, Vec<String>)> {
    dispatches
        .iter()
        .map(|d| {
            (
                d.receiver.clone(),
                d.kind,
                d.status,
                keys(d).into_iter().map(str::to_owned).collect(),
            )
        })
        .collect()
}

fn grouped_config() -> AlertingConfig {
    AlertingConfig {
        route: RouteConfig {
            group_by: Some(vec!["domain".into()]),
            group_wait: Some(Duration::from_secs(30)),
            group_interval: Some(Duration::from_secs(300)),
            repeat_interval: Some(Duration::from_secs(3600)),
            ..RouteConfig::default()
        },
        ..AlertingConfig::default()
    }
}

const V1: &[(&str, &str)] = &[("validator", "v1")];
const V2: &[(&str, &str)] = &[("validator", "v2")];

#[test]
fn the_default_route_sends_each_event_at_once_to_the_default_receiver() {
    let mut engine = engine(&AlertingConfig::default());
    let sent = engine.ingest(firing("market.price_move/ton", &[]), at(0));
    assert_eq!(
        summary(&sent),
        [(
            "default".to_owned(),
            DispatchKind::Notification,
            AlertStatus::Firing,
            vec!["market.price_move/ton".to_owned()]
        )]
    );
    let back = engine.ingest(resolved("market.price_move/ton", &[]), at(60));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].status, AlertStatus::Resolved);
    assert!(engine.state().groups.is_empty(), "a resolved group is gone");
}

#[test]
fn group_wait_collects_a_group_and_group_interval_batches_changes() {
    let mut engine = engine(&grouped_config());
    assert!(
        engine
            .ingest(firing("validators.out_of_sync/v1", V1), at(0))
            .is_empty()
    );
    assert!(
        engine
            .ingest(firing("validators.disk_full/v2", V2), at(10))
            .is_empty()
    );
    assert!(engine.tick(at(29)).is_empty(), "group_wait is 30s");
    let first = engine.tick(at(30));
    assert_eq!(first.len(), 1, "two alerts, one notification");
    assert_eq!(
        keys(&first[0]),
        ["validators.disk_full/v2", "validators.out_of_sync/v1"]
    );
    assert_eq!(
        first[0].group_labels,
        BTreeMap::from([("domain".to_owned(), "validators".to_owned())])
    );
    // A third alert joins; it waits for group_interval after the last notification.
    assert!(
        engine
            .ingest(firing("validators.cpu_busy/v1", V1), at(60))
            .is_empty()
    );
    assert!(engine.tick(at(329)).is_empty());
    let second = engine.tick(at(330));
    assert_eq!(second[0].kind, DispatchKind::Notification);
    assert_eq!(second[0].alerts.len(), 3);
    assert_eq!(second[0].changed, ["validators.cpu_busy/v1"], "the news");
    // Nothing changed: quiet until repeat_interval after the last notification.
    assert!(engine.tick(at(330 + 3599)).is_empty());
    let repeat = engine.tick(at(330 + 3600));
    assert_eq!(repeat.len(), 1);
    assert_eq!(repeat[0].kind, DispatchKind::Repeat);
    assert_eq!(repeat[0].alerts.len(), 3);
}

#[test]
fn the_same_key_and_status_is_deduplicated_until_repeat_interval() {
    let mut engine = engine(&AlertingConfig {
        route: RouteConfig {
            repeat_interval: Some(Duration::from_secs(600)),
            ..RouteConfig::default()
        },
        ..AlertingConfig::default()
    });
    assert_eq!(engine.ingest(firing("a.x/1", &[]), at(0)).len(), 1);
    // The agent's own reminder, a minute later: the router already told everyone.
    assert!(engine.ingest(firing("a.x/1", &[]), at(60)).is_empty());
    assert!(engine.tick(at(599)).is_empty());
    let repeat = engine.tick(at(600));
    assert_eq!(summary(&repeat)[0].1, DispatchKind::Repeat);
    assert!(engine.ingest(firing("a.x/1", &[]), at(700)).is_empty());
}

#[test]
fn recovery_goes_only_to_receivers_that_got_the_firing() {
    let mut config = grouped_config();
    config.route.group_wait = Some(Duration::ZERO);
    config.route.group_interval = Some(Duration::ZERO);
    let mut engine = engine(&config);
    engine.ingest(firing("validators.low_balance/v1", V1), at(0));
    let recovered = engine.ingest(resolved("validators.low_balance/v1", V1), at(10));
    assert_eq!(
        summary(&recovered),
        [(
            "default".to_owned(),
            DispatchKind::Notification,
            AlertStatus::Resolved,
            vec!["validators.low_balance/v1".to_owned()]
        )]
    );
    // Never sent (fired and resolved inside a silence): no recovery either.
    engine
        .add_silence(silence("s1", &["rule=low_balance"], 0, 3600))
        .unwrap();
    assert!(
        engine
            .ingest(firing("validators.low_balance/v2", V2), at(20))
            .is_empty()
    );
    assert!(
        engine
            .ingest(resolved("validators.low_balance/v2", V2), at(30))
            .is_empty()
    );
    assert!(
        engine
            .tick(at(4000))
            .iter()
            .all(|d| d.kind == DispatchKind::SilenceExpiring)
    );
    // A resolution of something the router never saw is nobody's news.
    assert!(
        engine
            .ingest(resolved("validators.unknown/v9", &[]), at(40))
            .is_empty()
    );
}

fn routed_config(continue_matching: bool) -> AlertingConfig {
    AlertingConfig {
        route: RouteConfig {
            routes: vec![
                RouteConfig {
                    receiver: Some("ops".into()),
                    matchers: vec!["severity=~warning|critical".into()],
                    continue_matching,
                    ..empty_route()
                },
                RouteConfig {
                    receiver: Some("validators".into()),
                    matchers: vec!["domain=validators".into()],
                    ..empty_route()
                },
            ],
            ..RouteConfig::default()
        },
        ..AlertingConfig::default()
    }
}

fn empty_route() -> RouteConfig {
    RouteConfig {
        receiver: None,
        group_by: None,
        group_wait: None,
        group_interval: None,
        repeat_interval: None,
        ..RouteConfig::default()
    }
}

#[test]
fn an_alert_whose_labels_move_it_to_another_route_is_not_left_behind() {
    let mut engine = engine(&routed_config(false));
    let mut news = firing("validators.out_of_sync/v1", V1);
    news.severity = Severity::Info;
    assert_eq!(engine.ingest(news.clone(), at(0))[0].receiver, "validators");
    news.severity = Severity::Critical;
    assert_eq!(engine.ingest(news.clone(), at(10))[0].receiver, "ops");
    assert_eq!(engine.state().groups.len(), 1, "moved, not copied");
    let mut over = resolved("validators.out_of_sync/v1", V1);
    over.severity = Severity::Info;
    let sent = engine.ingest(over, at(20));
    assert_eq!(
        summary(&sent)[0].0,
        "ops",
        "the receiver that was told it fires"
    );
    assert!(engine.state().groups.is_empty());
    assert!(
        engine.tick(at(100_000)).is_empty(),
        "nothing left to repeat"
    );
}

#[test]
fn the_groups_each_alert_is_in_stay_known_through_moves_flushes_and_restarts() {
    for config in [grouped_config(), routed_config(true), routed_config(false)] {
        let mut engine = engine(&config);
        let mut steps = Vec::new();
        let mut news = firing("validators.out_of_sync/v1", V1);
        news.severity = Severity::Info;
        steps.push(engine.ingest(news.clone(), at(0)));
        steps.push(engine.ingest(firing("validators.disk_full/v2", V2), at(5)));
        assert!(engine.memberships_agree());
        // Its severity moves it to another route.
        news.severity = Severity::Critical;
        steps.push(engine.ingest(news.clone(), at(10)));
        assert!(engine.memberships_agree());
        steps.push(engine.tick(at(40)));
        steps.push(engine.ingest(resolved("validators.disk_full/v2", V2), at(50)));
        assert!(engine.memberships_agree());
        // A restart rebuilds it from the persisted groups.
        let mut engine = Engine::new(&config, engine.state().clone()).unwrap();
        assert!(engine.memberships_agree());
        let mut over = resolved("validators.out_of_sync/v1", V1);
        over.severity = Severity::Critical;
        steps.push(engine.ingest(over, at(60)));
        steps.push(engine.tick(at(1_000)));
        assert!(engine.memberships_agree());
        assert!(
            engine.state().groups.is_empty(),
            "{:?}",
            engine.state().groups
        );
        assert!(steps.iter().flatten().count() >= 2, "{steps:?}");
    }
}

#[test]
fn the_first_matching_route_wins_unless_it_says_continue() {
    let mut stop = engine(&routed_config(false));
    let sent = stop.ingest(firing("validators.out_of_sync/v1", V1), at(0));
    assert_eq!(
        sent.iter().map(|d| d.receiver.as_str()).collect::<Vec<_>>(),
        ["ops"]
    );
    let mut go_on = engine(&routed_config(true));
    let sent = go_on.ingest(firing("validators.out_of_sync/v1", V1), at(0));
    assert_eq!(
        sent.iter().map(|d| d.receiver.as_str()).collect::<Vec<_>>(),
        ["ops", "validators"]
    );
    // No child matches: the root takes it.
    let mut info = firing("market.news/x", &[]);
    info.severity = Severity::Info;
    let sent = go_on.ingest(info, at(0));
    assert_eq!(sent[0].receiver, "default");
}

#[test]
fn a_service_down_inhibits_the_same_validators_low_efficiency() {
    let mut engine = engine(&AlertingConfig {
        inhibit_rules: vec![InhibitRuleConfig {
            source_matchers: vec!["rule=service_down".into()],
            target_matchers: vec!["rule=low_efficiency".into()],
            equal: vec!["validator".into()],
        }],
        ..AlertingConfig::default()
    });
    assert_eq!(
        engine
            .ingest(firing("validators.service_down/v1", V1), at(0))
            .len(),
        1
    );
    assert!(
        engine
            .ingest(firing("validators.low_efficiency/v1", V1), at(10))
            .is_empty(),
        "inhibited by v1's service_down"
    );
    assert_eq!(
        engine
            .ingest(firing("validators.low_efficiency/v2", V2), at(10))
            .len(),
        1,
        "v2 is up: not inhibited"
    );
    let views = engine.views(at(10));
    let v1 = views
        .iter()
        .find(|v| v.alert.key == "validators.low_efficiency/v1")
        .unwrap();
    assert_eq!(v1.state, "inhibited");
    // The service is back: the efficiency alert of v1 goes out now.
    engine.ingest(resolved("validators.service_down/v1", V1), at(20));
    let sent = engine.tick(at(21));
    assert_eq!(summary(&sent)[0].3, ["validators.low_efficiency/v1"]);
}

fn silence(id: &str, matchers: &[&str], from: i64, to: i64) -> Silence {
    Silence {
        id: id.to_owned(),
        matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
        starts_at: at(from),
        ends_at: at(to),
        created_by: "alice".into(),
        comment: "maintenance".into(),
        created_at: at(from),
        expired_by: None,
        reminded: false,
        expiry_noted: false,
    }
}

#[test]
fn a_silence_mutes_reminds_before_it_expires_and_then_stops_applying() {
    let mut engine = engine(&AlertingConfig::default());
    engine
        .add_silence(silence("s1", &["rule=low_efficiency"], 0, 3600))
        .unwrap();
    assert!(
        engine
            .ingest(firing("validators.low_efficiency/v1", V1), at(60))
            .is_empty()
    );
    assert_eq!(
        engine
            .ingest(firing("validators.service_down/v1", V1), at(60))
            .len(),
        1
    );
    assert_eq!(engine.views(at(60))[0].silenced_by, ["s1"]);
    assert!(engine.tick(at(3600 - 901)).is_empty());
    // 15 minutes before the end: one reminder, to the root receiver.
    let reminder = engine.tick(at(3600 - 900));
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0].kind, DispatchKind::SilenceExpiring);
    assert_eq!(reminder[0].silence.as_ref().unwrap().id, "s1");
    assert!(engine.tick(at(3600 - 800)).is_empty(), "reminded once");
    // Expired: the still-firing alert is sent, and the expiry is journaled once.
    let after = engine.tick(at(3600));
    assert_eq!(summary(&after)[0].3, ["validators.low_efficiency/v1"]);
    let (_, events) = engine.take_changes();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "silence.expired")
            .count(),
        1
    );
    engine.tick(at(3700));
    assert!(engine.take_changes().1.is_empty());
}

#[test]
fn an_expired_silence_releases_what_it_held() {
    let mut engine = engine(&AlertingConfig::default());
    engine
        .add_silence(silence("s1", &["validator=v1"], 0, 7200))
        .unwrap();
    assert!(
        engine
            .ingest(firing("validators.x/v1", V1), at(10))
            .is_empty()
    );
    engine.expire_silence("s1", "bob", at(20)).unwrap();
    assert_eq!(
        engine.state().silences["s1"].expired_by.as_deref(),
        Some("bob")
    );
    assert_eq!(engine.tick(at(20)).len(), 1);
    assert!(
        engine.expire_silence("s1", "bob", at(30)).is_err(),
        "already expired"
    );
    assert!(
        engine.add_silence(silence("s2", &[], 0, 10)).is_err(),
        "no matchers"
    );
    assert!(
        engine
            .add_silence(silence("s3", &["rule=~("], 0, 10))
            .is_err(),
        "bad regex"
    );
}

#[test]
fn a_maintenance_window_across_midnight_mutes_only_inside_it() {
    let window = WeeklyWindow::parse("fri 23:00-01:00 +00:00").unwrap();
    let friday = |h, m| Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap();
    let saturday = |h, m| Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap();
    assert!(!window.contains(friday(22, 59)));
    assert!(window.contains(friday(23, 0)));
    assert!(
        window.contains(saturday(0, 30)),
        "after midnight, the Friday window goes on"
    );
    assert!(!window.contains(saturday(1, 0)));
    assert!(!window.contains(saturday(23, 30)), "Saturday has no window");
    // In +03:00, Saturday 02:00-04:00 is Friday 23:00 - Saturday 01:00 UTC.
    let offset = WeeklyWindow::parse("sat 02:00-04:00 +03:00").unwrap();
    assert!(offset.contains(friday(23, 30)));
    assert!(!offset.contains(saturday(1, 0)));
    let weekdays = WeeklyWindow::parse("mon-fri 22:00-02:00").unwrap();
    assert!(weekdays.contains(saturday(1, 0)), "Friday's night");
    assert!(
        !Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0)
            .single()
            .map(|t| weekdays.contains(t))
            .unwrap(),
        "Sunday's night is off"
    );
    for bad in [
        "sat 02:00",
        "xyz 02:00-04:00",
        "sat 02:00-02:00",
        "sat 02:00-04:00 CET",
    ] {
        assert!(WeeklyWindow::parse(bad).is_err(), "{bad}");
    }

    let mut engine = engine(&AlertingConfig {
        maintenance_windows: vec![MaintenanceWindowConfig {
            name: "night upgrades".into(),
            schedule: "fri 23:00-01:00 +00:00".into(),
            matchers: vec!["domain=validators".into()],
        }],
        ..AlertingConfig::default()
    });
    let night = (saturday(0, 30) - t0()).num_seconds();
    assert!(
        engine
            .ingest(firing("validators.out_of_sync/v1", V1), at(night))
            .is_empty()
    );
    assert_eq!(
        engine.views(at(night))[0].maintenance.as_deref(),
        Some("night upgrades")
    );
    assert_eq!(
        engine
            .ingest(firing("market.price_move/ton", &[]), at(night))
            .len(),
        1
    );
    let morning = (saturday(1, 0) - t0()).num_seconds();
    assert_eq!(
        summary(&engine.tick(at(morning)))[0].3,
        ["validators.out_of_sync/v1"]
    );
}

fn escalating_config() -> AlertingConfig {
    AlertingConfig {
        route: RouteConfig {
            repeat_interval: Some(Duration::from_secs(600)),
            ..RouteConfig::default()
        },
        escalation: vec![EscalationConfig {
            matchers: vec!["severity=critical".into()],
            escalate_after: Duration::from_secs(1800),
            receiver: "pager".into(),
        }],
        ..AlertingConfig::default()
    }
}

fn critical(key: &str) -> Alert {
    let mut alert = firing(key, V1);
    alert.severity = Severity::Critical;
    alert
}

#[test]
fn an_unacknowledged_alert_escalates_once_and_its_recovery_follows() {
    let mut engine = engine(&escalating_config());
    engine.ingest(critical("validators.service_down/v1"), at(0));
    let mut escalations = Vec::new();
    for minute in 1..=40 {
        escalations.extend(
            engine
                .tick(at(minute * 60))
                .into_iter()
                .filter(|d| d.kind == DispatchKind::Escalation),
        );
    }
    assert_eq!(summary(&escalations)[0].0, "pager");
    assert_eq!(escalations.len(), 1, "once");
    assert_eq!(escalations[0].at, at(1800));
    let mut back = resolved("validators.service_down/v1", V1);
    back.severity = Severity::Critical;
    let recovered = engine.ingest(back, at(3000));
    let receivers: Vec<&str> = recovered.iter().map(|d| d.receiver.as_str()).collect();
    assert_eq!(receivers, ["pager", "default"]);
    assert!(recovered.iter().all(|d| d.status == AlertStatus::Resolved));
}

#[test]
fn an_ack_stops_repeats_and_escalation_until_the_alert_fires_again() {
    let mut engine = engine(&escalating_config());
    engine.ingest(critical("validators.service_down/v1"), at(0));
    let ack = engine
        .ack("validators.service_down/v1", "alice", "on it", at(60))
        .unwrap();
    assert_eq!(ack.by, "alice");
    assert_eq!(engine.views(at(60))[0].state, "acknowledged");
    for minute in 2..=120 {
        assert!(engine.tick(at(minute * 60)).is_empty(), "minute {minute}");
    }
    // Resolved, then fires anew: the ack is gone and repeats come back.
    engine.ingest(resolved("validators.service_down/v1", V1), at(7300));
    assert_eq!(
        engine
            .ingest(critical("validators.service_down/v1"), at(7400))
            .len(),
        1
    );
    let (_, events) = engine.take_changes();
    assert!(events.iter().any(|e| e.kind == "ack.cleared"), "{events:?}");
    assert_eq!(engine.tick(at(7400 + 600))[0].kind, DispatchKind::Repeat);
    assert!(engine.ack("nope", "alice", "", at(0)).is_err());
}

#[test]
fn a_group_ack_covers_every_alert_in_the_group() {
    let mut config = grouped_config();
    config.route.group_wait = Some(Duration::ZERO);
    let mut engine = engine(&config);
    let sent = engine.ingest(firing("validators.a/v1", V1), at(0));
    let group = sent[0].group_key.clone();
    engine.ingest(firing("validators.b/v2", V2), at(0));
    engine.ack(&group, "bob", "", at(10)).unwrap();
    assert!(
        engine
            .views(at(10))
            .iter()
            .all(|v| v.state == "acknowledged")
    );
    assert!(
        engine
            .tick(at(400))
            .iter()
            .all(|d| d.kind != DispatchKind::Repeat)
    );
    assert!(engine.tick(at(5000)).is_empty());
}

#[test]
fn state_survives_a_restart_without_losing_or_duplicating() {
    let config = grouped_config();
    let mut first = engine(&config);
    first.ingest(firing("validators.a/v1", V1), at(0));
    assert_eq!(first.tick(at(30)).len(), 1);
    first
        .add_silence(silence("s1", &["rule=b"], 0, 7200))
        .unwrap();
    first.ingest(firing("validators.c/v1", V1), at(40));
    first.ack("validators.c/v1", "alice", "", at(41)).unwrap();

    // What the router writes to the store, read back as a restarted process would.
    let mut stored: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let (changes, _) = first.take_changes();
    for (key, value) in changes {
        match value {
            Some(value) => stored.insert(key, value),
            None => stored.remove(&key),
        };
    }
    let mut state = RouterState::default();
    for (key, value) in &stored {
        if key.starts_with(super::engine::GROUPS_PREFIX) {
            let group: super::engine::GroupState = serde_json::from_value(value.clone()).unwrap();
            state.groups.insert(group.key.clone(), group);
        } else if key.starts_with(super::engine::ALERTS_PREFIX) {
            let record: super::engine::AlertRecord = serde_json::from_value(value.clone()).unwrap();
            state.alerts.insert(record.alert.key.clone(), record);
        } else if key.starts_with(super::engine::SILENCES_PREFIX) {
            let silence: Silence = serde_json::from_value(value.clone()).unwrap();
            state.silences.insert(silence.id.clone(), silence);
        } else if key.starts_with(super::engine::ACKS_PREFIX) {
            let ack: super::engine::Ack = serde_json::from_value(value.clone()).unwrap();
            state.acks.insert(ack.key.clone(), ack);
        }
    }
    let mut second = Engine::new(&config, state).unwrap();
    assert_eq!(second.state(), first.state());
    // The agent re-sends what still fires: not news.
    assert!(
        second
            .ingest(firing("validators.a/v1", V1), at(100))
            .is_empty()
    );
    assert!(
        second
            .ingest(firing("validators.b/v1", V1), at(100))
            .is_empty(),
        "silence kept"
    );
    // c joined after the first notification: it goes out after group_interval, once.
    let changed = second.tick(at(330));
    assert_eq!(changed.len(), 1);
    assert_eq!(keys(&changed[0]), ["validators.a/v1", "validators.c/v1"]);
    assert!(second.tick(at(331)).is_empty());
}

#[test]
fn matchers_parse_and_match_labels_and_builtins() {
    let alert = firing("validators.low_efficiency/v1", V1);
    for (text, expected) in [
        ("rule=low_efficiency", true),
        ("rule!=low_efficiency", false),
        ("domain=validators", true),
        ("severity=~warn.*", true),
        ("severity=~warn", false),
        ("validator!~v[23]", true),
        ("validator=\"v1\"", true),
        ("missing=", true),
    ] {
        assert_eq!(
            Matcher::parse(text).unwrap().matches(&alert),
            expected,
            "{text}"
        );
    }
    for bad in ["rule", "=x", "rule=~(", "ru le=x"] {
        assert!(Matcher::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn the_router_persists_journals_and_reopens_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let auditor =
        agents::audit::Auditor::new(store.clone(), agents::telemetry::Telemetry::default());
    let config = AlertingConfig::default();
    let (sink, mut queue) = tokio::sync::mpsc::unbounded_channel();
    let router = super::AlertRouter::open(&config, auditor.clone(), sink).unwrap();
    router
        .ingest(firing("validators.a/v1", V1), at(0))
        .await
        .unwrap();
    assert_eq!(queue.try_recv().unwrap().alerts[0].key, "validators.a/v1");
    let silence = router
        .add_silence(
            super::NewSilence {
                matchers: vec!["rule=b".into()],
                duration: Some("2h".into()),
                comment: "upgrading".into(),
                ..Default::default()
            },
            "alice",
            at(1),
        )
        .await
        .unwrap();
    router
        .ack("validators.a/v1", "bob", "looking", at(2))
        .await
        .unwrap();
    assert!(
        router
            .add_silence(super::NewSilence::default(), "alice", at(3))
            .await
            .is_err()
    );
    drop(router);

    let (sink, mut queue) = tokio::sync::mpsc::unbounded_channel();
    let reopened = super::AlertRouter::open(&config, auditor, sink).unwrap();
    reopened
        .ingest(firing("validators.a/v1", V1), at(10))
        .await
        .unwrap();
    reopened
        .ingest(firing("validators.b/v1", V1), at(10))
        .await
        .unwrap();
    reopened.tick(at(5_000)).await.unwrap();
    assert!(
        queue.try_recv().is_err(),
        "no duplicate, silenced, acknowledged"
    );
    assert_eq!(reopened.silences().await[0].id, silence.id);
    let firing_now = reopened
        .query(
            &super::AlertQuery {
                status: Some("firing".into()),
                ..Default::default()
            },
            at(10),
        )
        .await
        .unwrap();
    let states: Vec<(&str, &str)> = firing_now
        .iter()
        .map(|entry| (entry.alert.key.as_str(), entry.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("validators.a/v1", "acknowledged"),
            ("validators.b/v1", "silenced")
        ]
    );
    let kinds: Vec<String> = store
        .journal()
        .query(&memory::JournalQuery::default())
        .unwrap()
        .into_iter()
        .map(|entry| entry.kind)
        .collect();
    assert_eq!(
        kinds,
        ["router.dispatched", "silence.created", "ack.created"],
        "every dispatch and every change is journaled"
    );
}

const ALERTING_EXAMPLE: &str = r#"
[[notify.webhooks]]
name = "ops"
url = "http://127.0.0.1:9000/alerts"

[alerting]
[[alerting.receivers]]
name = "ops"
kind = "webhook"
webhook = "ops"

[[alerting.receivers]]
name = "journal"
kind = "log"

[alerting.route]
receiver = "default"
group_by = ["domain"]

[[alerting.route.routes]]
matchers = ["domain=validators", "severity=~warning|critical"]
receiver = "ops"
group_by = ["validator"]
group_wait = "30s"
continue = true

[[alerting.inhibit_rules]]
source_matchers = ["rule=service_down"]
target_matchers = ["rule=low_efficiency"]
equal = ["validator"]

[[alerting.escalation]]
matchers = ["severity=critical"]
escalate_after = "30m"
receiver = "journal"

[[alerting.maintenance_windows]]
name = "weekend upgrades"
schedule = "sat,sun 02:00-04:00 +00:00"
"#;

#[test]
fn an_alerting_section_loads_and_builds_an_engine() {
    let config = crate::config::load_text(ALERTING_EXAMPLE, "test.toml", &[])
        .unwrap_or_else(|errors| panic!("{errors}"));
    let route = &config.alerting.route.routes[0];
    assert!(route.continue_matching);
    assert_eq!(route.group_wait, Some(Duration::from_secs(30)));
    assert_eq!(config.alerting.receivers.len(), 2);
    let mut engine = Engine::new(&config.alerting, RouterState::default()).unwrap();
    let mut critical = firing("validators.service_down/v1", V1);
    critical.severity = Severity::Critical;
    // The matching child takes it (the root only takes what no child does), after its 30s.
    assert!(engine.ingest(critical, at(0)).is_empty());
    assert_eq!(engine.tick(at(30))[0].receiver, "ops");
    // A market alert matches no child: the root's default receiver, at once.
    let sent = engine.ingest(firing("market.price_move/ton", &[]), at(40));
    assert_eq!(sent[0].receiver, "default");
}

#[test]
fn alerting_problems_are_reported_with_key_paths() {
    let text = r#"
[alerting]
[[alerting.receivers]]
name = "chat"
kind = "telegram"
chat = "-100123"

[[alerting.receivers]]
name = "hook"
kind = "webhook"
webhook = "nope"

[alerting.route]
receiver = "missing"
matchers = ["rule=~("]

[[alerting.maintenance_windows]]
name = "w"
schedule = "someday 02:00-04:00"
"#;
    let errors = crate::config::load_text(text, "test.toml", &[]).expect_err("problems");
    let found: Vec<String> = errors.problems.iter().map(ToString::to_string).collect();
    let paths: Vec<&str> = errors.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "alerting.receivers[0].kind",
            "alerting.receivers[1].webhook",
            "alerting.route.receiver",
            "alerting.route.matchers[0]",
            "alerting.maintenance_windows[0].schedule",
        ],
        "{found:#?}"
    );
    assert!(
        found[0].starts_with(
            "test.toml:5: alerting.receivers[0].kind: telegram receivers send through the bot: enable [channels.telegram] first"
        ),
        "{found:#?}"
    );
    let unknown = crate::config::load_text("[alerting]\nroutes = []\n", "test.toml", &[])
        .expect_err("unknown key");
    assert_eq!(unknown.problems.len(), 1, "{unknown}");
}

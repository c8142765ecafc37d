use std::time::Duration;

use tools::ton::config::{StakeLimits, ValidatorDescr, ValidatorSet};

use super::*;

const KEY_A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const KEY_B: &str = "bb00000000000000000000000000000000000000000000000000000000000002";

fn watched(name: &str, wallet: &str) -> WatchedValidator {
    WatchedValidator {
        name: name.into(),
        wallet: wallet.into(),
        ..Default::default()
    }
}

fn valid_config() -> ValidatorsAgentConfig {
    ValidatorsAgentConfig {
        enabled: true,
        validators: vec![WatchedValidator {
            public_key: Some(KEY_A.into()),
            metrics_url: Some("http://10.0.0.5:9100/metrics".into()),
            ..watched(
                "v1",
                "-1:3333333333333333333333333333333333333333333333333333333333333333",
            )
        }],
        ..ValidatorsAgentConfig::default()
    }
}

fn paths(config: &ValidatorsAgentConfig) -> Vec<String> {
    config.validate().into_iter().map(|p| p.path).collect()
}

fn set(keys: &[&str]) -> ValidatorSet {
    ValidatorSet {
        utime_since: 1_700_000_000,
        utime_until: 1_700_065_536,
        total: keys.len() as u16,
        main: keys.len() as u16,
        total_weight: 10 * keys.len() as u64,
        validators: keys
            .iter()
            .map(|key| ValidatorDescr {
                public_key: (*key).to_owned(),
                weight: 10,
                adnl_address: None,
            })
            .collect(),
    }
}

fn limits(min_stake_ton: u128) -> StakeLimits {
    StakeLimits {
        min_stake: min_stake_ton * 1_000_000_000,
        max_stake: 10_000_000 * 1_000_000_000,
        min_total_stake: 75_000_000 * 1_000_000_000,
        max_stake_factor: 196_608,
    }
}

fn severity(verdict: &Verdict) -> Option<Severity> {
    match verdict {
        Verdict::Breach { severity, .. } => Some(*severity),
        _ => None,
    }
}

#[test]
fn defaults_are_disabled_and_valid() {
    let config = ValidatorsAgentConfig::default();
    assert!(!config.enabled);
    assert!(config.validators.is_empty());
    assert_eq!(config.interval, Duration::from_secs(60));
    assert_eq!(config.max_sync_lag, Duration::from_secs(120));
    assert_eq!(config.disk_warning_percent, 80.0);
    assert_eq!(config.disk_critical_percent, 95.0);
    assert_eq!(config.source_failure_alert_after, 3);
    assert!(config.validate().is_empty());
    assert!(valid_config().validate().is_empty());
}

#[test]
fn a_bad_wallet_address_is_reported_at_its_key_path() {
    let mut config = valid_config();
    config.validators[0].wallet = "not-an-address".into();
    assert_eq!(paths(&config), ["validators[0].wallet"]);
}

#[test]
fn user_friendly_addresses_are_accepted() {
    let mut config = valid_config();
    config.validators[0].wallet = "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF".into();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
}

#[test]
fn every_other_problem_has_its_key_path() {
    let mut config = valid_config();
    config.validators.push(WatchedValidator {
        public_key: Some("xyz".into()),
        metrics_url: Some("ftp://host/metrics".into()),
        ..watched("v1", "0:zz")
    });
    config
        .validators
        .push(watched(" ", &config.validators[0].wallet.clone()));
    config.interval = Duration::from_millis(10);
    config.min_balance_ton = Some(-1.0);
    config.balance_margin_ton = f64::NAN;
    config.max_sync_lag = Duration::ZERO;
    config.disk_warning_percent = 96.0;
    config.source_failure_alert_after = 0;
    assert_eq!(
        paths(&config),
        [
            "interval",
            "validators[1].name",
            "validators[1].wallet",
            "validators[1].public_key",
            "validators[1].metrics_url",
            "validators[2].name",
            "min_balance_ton",
            "balance_margin_ton",
            "max_sync_lag",
            "disk_critical_percent",
            "source_failure_alert_after",
        ]
    );
}

#[test]
fn enabled_without_validators_is_a_problem() {
    let config = ValidatorsAgentConfig {
        enabled: true,
        ..ValidatorsAgentConfig::default()
    };
    assert_eq!(paths(&config), ["validators"]);
}

#[test]
fn the_balance_line_is_min_stake_plus_margin_or_the_fixed_line() {
    let mut config = ValidatorsAgentConfig::default();
    assert_eq!(config.required_balance_ton(None), None);
    assert_eq!(
        config.required_balance_ton(Some(&limits(300_000))),
        Some(300_010.0)
    );
    config.min_balance_ton = Some(500.0);
    assert_eq!(
        config.required_balance_ton(Some(&limits(300_000))),
        Some(500.0)
    );
}

#[test]
fn balance_below_the_line_fires_and_above_recovers() {
    let low = evaluate_balance("v1", Some(250_000.0), Some(300_010.0));
    assert_eq!(severity(&low), Some(Severity::Warning));
    let Verdict::Breach {
        summary, evidence, ..
    } = low
    else {
        panic!("expected a breach");
    };
    assert!(summary.contains("250000.00 TON"), "{summary}");
    assert_eq!(evidence["shortfall_ton"], 50_010.0);
    assert!(matches!(
        evaluate_balance("v1", Some(300_010.0), Some(300_010.0)),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_balance("v1", None, Some(1.0)), Verdict::Unknown);
    assert_eq!(evaluate_balance("v1", Some(1.0), None), Verdict::Unknown);
}

#[test]
fn membership_is_checked_by_any_known_key() {
    let current = set(&[KEY_B, KEY_A]);
    let keys =
        |list: &[&str]| -> BTreeSet<String> { list.iter().map(|k| (*k).to_owned()).collect() };
    let Verdict::Healthy { evidence, .. } =
        cycle::evaluate_current_set("v1", &keys(&[KEY_A]), Some(&current))
    else {
        panic!("expected healthy");
    };
    assert_eq!(evidence["index"], 1);
    // An older key of the same validator does not hide the new one.
    assert!(matches!(
        cycle::evaluate_current_set("v1", &keys(&[KEY_B, KEY_A]), Some(&set(&[KEY_A]))),
        Verdict::Healthy { .. }
    ));
    let absent = cycle::evaluate_current_set("v1", &keys(&[KEY_A]), Some(&set(&[KEY_B])));
    assert_eq!(severity(&absent), Some(Severity::Critical));
    assert_eq!(
        severity(&cycle::evaluate_current_set(
            "v1",
            &keys(&[KEY_A]),
            Some(&set(&[]))
        )),
        Some(Severity::Critical),
        "an empty set has nobody in it"
    );
    assert_eq!(
        cycle::evaluate_current_set("v1", &keys(&[]), Some(&current)),
        Verdict::Unknown,
        "no key known yet: nothing to say"
    );
    assert_eq!(
        cycle::evaluate_current_set("v1", &keys(&[KEY_A]), None),
        Verdict::Unknown
    );
}

#[test]
fn unreachable_fires_only_after_the_threshold() {
    assert!(matches!(
        evaluate_reachability("m", 0, 3, None),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        evaluate_reachability("m", 2, 3, Some("refused")),
        Verdict::Unknown
    );
    let Verdict::Breach {
        severity, summary, ..
    } = evaluate_reachability("m", 3, 3, Some("HTTP 502"))
    else {
        panic!("expected a breach");
    };
    assert_eq!(severity, Severity::Warning);
    assert!(
        summary.contains("3 polls failed") && summary.contains("HTTP 502"),
        "{summary}"
    );
}

#[test]
fn sync_lag_beyond_the_limit_fires() {
    let limit = Duration::from_secs(120);
    assert_eq!(
        severity(&evaluate_sync("v1", Some(121.0), limit)),
        Some(Severity::Critical)
    );
    assert!(matches!(
        evaluate_sync("v1", Some(120.0), limit),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_sync("v1", None, limit), Verdict::Unknown);
    assert_eq!(evaluate_sync("v1", Some(f64::NAN), limit), Verdict::Unknown);
}

#[test]
fn disk_warning_and_critical_lines() {
    let disk = |used| evaluate_disk("v1", "/var/ton-work", used, 80.0, 95.0);
    assert!(matches!(disk(Some(79.9)), Verdict::Healthy { .. }));
    assert_eq!(severity(&disk(Some(80.0))), Some(Severity::Warning));
    assert_eq!(severity(&disk(Some(94.9))), Some(Severity::Warning));
    assert_eq!(severity(&disk(Some(95.0))), Some(Severity::Critical));
    assert_eq!(disk(None), Verdict::Unknown);
}

#[test]
fn transitions_fire_once_escalate_and_resolve() {
    let breach = |severity| Verdict::Breach {
        severity,
        summary: "s".into(),
        evidence: serde_json::Value::Null,
    };
    let healthy = Verdict::Healthy {
        summary: "ok".into(),
        evidence: serde_json::Value::Null,
    };
    let now = Utc::now();
    let firing = Alert {
        key: "validators.disk_usage/v1:/".into(),
        rule: "disk_usage".into(),
        status: AlertStatus::Firing,
        severity: Severity::Warning,
        summary: "s".into(),
        labels: BTreeMap::new(),
        evidence: serde_json::Value::Null,
        starts_at: now,
        at: now,
        observed_at: now,
    };
    assert_eq!(
        transition(&breach(Severity::Warning), None),
        Transition::Fire
    );
    assert_eq!(
        transition(&breach(Severity::Warning), Some(&firing)),
        Transition::None,
        "no re-fire while firing"
    );
    assert_eq!(
        transition(&breach(Severity::Critical), Some(&firing)),
        Transition::Fire,
        "escalation fires again"
    );
    assert_eq!(transition(&healthy, Some(&firing)), Transition::Resolve);
    assert_eq!(transition(&healthy, None), Transition::None);
    assert_eq!(
        transition(&Verdict::Unknown, Some(&firing)),
        Transition::None
    );
}

#[test]
fn metrics_urls_are_redacted_to_scheme_and_host() {
    assert_eq!(
        redact("http://user:pw@10.0.0.5:9100/metrics?token=x"),
        "http://10.0.0.5:9100"
    );
    assert_eq!(redact("nonsense"), "(invalid URL)");
}

#[test]
fn the_config_round_trips_through_toml() {
    let text = "enabled = true\n[[validators]]\nname = \"v1\"\nwallet = \"-1:3333333333333333333333333333333333333333333333333333333333333333\"\n";
    let config: ValidatorsAgentConfig = toml::from_str(text).unwrap();
    assert_eq!(config.validators[0].name, "v1");
    assert_eq!(config.balance_margin_ton, 10.0);
    assert!(toml::from_str::<ValidatorsAgentConfig>("unknown = 1").is_err());
}

#[test]
fn new_thresholds_have_defaults_and_are_validated() {
    let config = ValidatorsAgentConfig::default();
    assert_eq!(config.memory_available_min_percent, 10.0);
    assert_eq!(config.cpu_busy_warning_percent, 90.0);
    assert!(config.check_releases);
    assert_eq!(config.release_repo, "ton-blockchain/ton");
    assert_eq!(config.github_base_url, "https://api.github.com");
    assert_eq!(config.release_check_interval, Duration::from_secs(3600));
    assert_eq!(config.release_owner_repo(), Some(("ton-blockchain", "ton")));
    let mut bad = valid_config();
    bad.memory_available_min_percent = 0.0;
    bad.cpu_busy_warning_percent = 101.0;
    bad.release_repo = "ton".into();
    bad.github_base_url = "api.github.com".into();
    bad.release_check_interval = Duration::ZERO;
    assert_eq!(
        paths(&bad),
        [
            "memory_available_min_percent",
            "cpu_busy_warning_percent",
            "release_repo",
            "github_base_url",
            "release_check_interval",
        ]
    );
    bad.release_repo = "a/b/c".into();
    assert!(bad.release_owner_repo().is_none());
}

#[test]
fn service_down_only_on_an_explicit_zero() {
    let down = evaluate_service("v1", Some(false));
    assert_eq!(severity(&down), Some(Severity::Critical));
    let Verdict::Breach { summary, .. } = down else {
        panic!("expected a breach");
    };
    assert!(summary.contains("down"), "{summary}");
    assert!(matches!(
        evaluate_service("v1", Some(true)),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        evaluate_service("v1", None),
        Verdict::Unknown,
        "an absent gauge is not down"
    );
}

#[test]
fn memory_below_the_available_share_fires() {
    let gib = 1024.0 * 1024.0 * 1024.0;
    let memory = |available| evaluate_memory("v1", Some(100.0 * gib), available, 10.0);
    let low = memory(Some(9.0 * gib));
    assert_eq!(severity(&low), Some(Severity::Warning));
    let Verdict::Breach { evidence, .. } = low else {
        panic!("expected a breach");
    };
    assert!((evidence["available_percent"].as_f64().unwrap() - 9.0).abs() < 1e-9);
    assert!(matches!(memory(Some(10.0 * gib)), Verdict::Healthy { .. }));
    assert_eq!(memory(None), Verdict::Unknown);
    assert_eq!(
        evaluate_memory("v1", None, Some(1.0), 10.0),
        Verdict::Unknown
    );
    assert_eq!(
        evaluate_memory("v1", Some(0.0), Some(0.0), 10.0),
        Verdict::Unknown,
        "a zero total says nothing"
    );
}

fn modes(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(m, v)| ((*m).to_owned(), *v)).collect()
}

#[test]
fn cpu_busy_is_a_rate_between_two_scrapes() {
    assert_eq!(CpuCounters::from_modes(&BTreeMap::new()), None);
    let before = CpuCounters::from_modes(&modes(&[
        ("idle", 1000.0),
        ("iowait", 10.0),
        ("user", 500.0),
        ("system", 100.0),
    ]))
    .unwrap();
    assert_eq!(before.total_seconds, 1610.0);
    assert_eq!(before.idle_seconds, 1010.0);
    // 100 CPU-seconds later: 5 idle, 0 iowait, 95 busy.
    let after = CpuCounters::from_modes(&modes(&[
        ("idle", 1005.0),
        ("iowait", 10.0),
        ("user", 585.0),
        ("system", 110.0),
    ]))
    .unwrap();
    let busy = cpu_busy_percent(Some(&before), &after).unwrap();
    assert!((busy - 95.0).abs() < 1e-9, "{busy}");
    assert_eq!(
        cpu_busy_percent(None, &after),
        None,
        "one scrape is no rate"
    );
    assert_eq!(
        cpu_busy_percent(Some(&before), &before),
        None,
        "no time passed"
    );
    assert_eq!(
        cpu_busy_percent(Some(&after), &before),
        None,
        "counters reset (reboot)"
    );
    assert_eq!(
        severity(&evaluate_cpu("v1", Some(busy), 90.0)),
        Some(Severity::Warning)
    );
    assert!(matches!(
        evaluate_cpu("v1", Some(90.0), 90.0),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_cpu("v1", None, 90.0), Verdict::Unknown);
}

fn release(tag: &str, body: &str) -> Release {
    Release {
        tag: tag.into(),
        name: Some(format!("TON {tag}")),
        published_at: None,
        html_url: format!("https://github.com/ton-blockchain/ton/releases/tag/{tag}"),
        body: body.into(),
        prerelease: false,
        draft: false,
    }
}

#[test]
fn release_memory_records_first_then_announces_a_new_tag_once() {
    let first = release("v2025.01", "## Update\nfixes");
    assert_eq!(evaluate_release(None, &first), ReleaseDecision::Record);
    assert_eq!(
        evaluate_release(Some("v2025.01"), &first),
        ReleaseDecision::Unchanged
    );
    let next = release("v2025.03", "\n  Faster catch-up after restarts  \nmore");
    let ReleaseDecision::Announce(verdict) = evaluate_release(Some("v2025.01"), &next) else {
        panic!("expected an announcement");
    };
    assert_eq!(severity(&verdict), Some(Severity::Info));
    let Verdict::Breach {
        summary, evidence, ..
    } = verdict
    else {
        panic!("expected a breach");
    };
    assert_eq!(
        summary,
        "new validator software release v2025.03: Faster catch-up after restarts"
    );
    assert_eq!(
        evidence["html_url"],
        "https://github.com/ton-blockchain/ton/releases/tag/v2025.03"
    );
    assert_eq!(evidence["previous_tag"], "v2025.01");
    // Once remembered, the same tag again is nothing.
    assert_eq!(
        evaluate_release(Some("v2025.03"), &next),
        ReleaseDecision::Unchanged
    );
    // No notes: the release name stands in.
    let ReleaseDecision::Announce(Verdict::Breach { summary, .. }) =
        evaluate_release(Some("v2025.03"), &release("v2025.04", ""))
    else {
        panic!("expected an announcement");
    };
    assert!(summary.ends_with(": TON v2025.04"), "{summary}");
}

#[test]
fn release_checks_are_spaced_by_the_interval() {
    let now = Utc::now();
    let hour = Duration::from_secs(3600);
    assert!(release_check_due(None, now, hour));
    assert!(!release_check_due(
        Some(now - chrono::Duration::minutes(59)),
        now,
        hour
    ));
    assert!(release_check_due(
        Some(now - chrono::Duration::minutes(60)),
        now,
        hour
    ));
    assert!(
        release_check_due(Some(now + chrono::Duration::minutes(5)), now, hour),
        "a clock that went backwards does not stop checks"
    );
}

#[test]
fn cycle_settings_pools_standbys_and_proposals_are_validated_at_their_key_paths() {
    let mut config = valid_config();
    let validator = &mut config.validators[0];
    validator.adnl = Some("not hex".into());
    validator.pool = Some("EQ-not-a-pool".into());
    validator.standby = Some(StandbyNode {
        name: " ".into(),
        metrics_url: Some("10.0.0.6:9100".into()),
    });
    validator.running_version = Some("".into());
    config.efficiency_min_percent = 0.0;
    config.efficiency_after_round_fraction = 1.5;
    config.delegation_change_percent = f64::INFINITY;
    config.zero_blocks_window = Duration::ZERO;
    config.proposals.restart_command = "".into();
    config.proposals.stake_reserve_ton = -5.0;
    config.proposals.max_stake_ton = Some(0.0);
    config.proposals.max_factor = 3.5;
    let problems = config.validate();
    let found: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        found,
        [
            "validators[0].adnl",
            "validators[0].pool",
            "validators[0].pool_kind",
            "validators[0].standby.name",
            "validators[0].standby.metrics_url",
            "validators[0].running_version",
            "efficiency_min_percent",
            "efficiency_after_round_fraction",
            "delegation_change_percent",
            "zero_blocks_window",
            "proposals.restart_command",
            "proposals.stake_reserve_ton",
            "proposals.max_stake_ton",
            "proposals.max_factor",
        ]
    );
    let pool = problems
        .iter()
        .find(|p| p.path == "validators[0].pool")
        .unwrap();
    assert!(pool.message.contains("EQ-not-a-pool"), "{}", pool.message);
    let factor = problems
        .iter()
        .find(|p| p.path == "proposals.max_factor")
        .unwrap();
    assert!(factor.message.contains("3.5"), "{}", factor.message);
    // And the TOML forms parse: a pool kind, a standby table.
    let text = "enabled = true\n[[validators]]\nname = \"v1\"\nwallet = \"-1:3333333333333333333333333333333333333333333333333333333333333333\"\npool = \"-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\npool_kind = \"single_nominator\"\nstandby = { name = \"v1b\" }\n[providers]\nbalances = \"tonapi\"\n";
    let parsed: ValidatorsAgentConfig = toml::from_str(text).unwrap();
    assert!(parsed.validate().is_empty(), "{:?}", parsed.validate());
    assert_eq!(
        parsed.validators[0].pool_kind,
        Some(PoolKind::SingleNominator)
    );
    assert_eq!(parsed.providers.balances, Provider::Tonapi);
    let unknown = toml::from_str::<ValidatorsAgentConfig>(
        "[[validators]]\nname = \"v1\"\nwallet = \"x\"\npool_kind = \"whales\"\n",
    )
    .unwrap_err();
    assert!(
        unknown.to_string().contains("single_nominator"),
        "{unknown}"
    );
}

#[test]
fn reminders_are_due_after_the_interval_and_never_when_zero() {
    let sent = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let later = |seconds| sent + chrono::Duration::seconds(seconds);
    let hour = Duration::from_secs(3600);
    assert!(!reminder_due(sent, later(3599), hour));
    assert!(reminder_due(sent, later(3600), hour));
    assert!(!reminder_due(sent, later(100_000), Duration::ZERO));
    assert!(
        !reminder_due(later(10), sent, hour),
        "a clock step back is no reminder"
    );
}

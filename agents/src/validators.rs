//! The validators agent: watches each configured TON validator's wallet, its membership in the
//! current validator set, and its node's metrics (sync lag, disk), stores what it sees as
//! series, and alerts with evidence and recovery notices.
//!
//! Rules (thresholds in `[agents.validators]`):
//! - `low_balance`: the wallet holds less than the next election needs. The need is
//!   `min_balance_ton` when set, else config param 17's `min_stake` (in TON) plus
//!   `balance_margin_ton` for fees. Deliberately simple: stake already in the elector is not
//!   counted.
//! - `not_in_set`: the configured public key is absent from config param 34 (only validators
//!   with a `public_key`).
//! - `metrics_unreachable`: `source_failure_alert_after` scrapes in a row failed.
//! - `out_of_sync`: the masterchain lag exceeds `max_sync_lag`.
//! - `disk_usage`: a file system of the node is above `disk_warning_percent` (warning) or
//!   `disk_critical_percent` (critical).
//! - `source_unavailable`: toncenter failed `source_failure_alert_after` ticks in a row.
//! - `service_down` (critical): the node's `validator_console_up` gauge is 0; unknown when
//!   the gauge is absent (absence is never taken for down).
//! - `memory_high` (warning): available/total memory below `memory_available_min_percent`.
//! - `cpu_busy` (warning): the busy share of all CPUs between two scrapes (counters kept in
//!   the state store per validator; idle and iowait count as not busy) above
//!   `cpu_busy_warning_percent`.
//! - `new_release` (info): the latest GitHub release of `release_repo` has a tag the agent has
//!   not seen; checked at most every `release_check_interval`, resolved at the next check (a
//!   notice, not a standing condition). The first check only records the tag.
//!
//! Every firing alert is kept in the state store, so a restart neither fires twice nor forgets
//! to announce the recovery.

pub mod cycle;
pub mod round;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use memory::{SeriesKey, Store};
use serde::{Deserialize, Serialize};
use tools::elections::ElectionsClient;
use tools::github::{GithubClient, Release};
use tools::http::SourceError;
use tools::prometheus::{NodeExporterSummary, PrometheusScraper, ValidatorNodeMetrics};
use tools::ton::config::{ElectionTiming, StakeLimits};
use tools::tonapi::TonapiClient;
use tools::toncenter::ToncenterClient;

use crate::alert::{ActiveAlert, Alert, AlertStatus, Severity};
use crate::audit::Auditor;
use crate::health::HealthRegistry;
use crate::market::ConfigProblem;
use crate::proposals::ProposalGate;
use crate::telemetry::{SourceErrorLabels, SourceLabels, Telemetry};
use crate::{AgentError, DomainAgent, TickFuture, TickReport};
use round::RuleVerdict;

/// Name of the agent in logs, health, metrics and the audit log.
pub const AGENT: &str = "validators";
/// Chain data source name in health and metrics.
pub const TONCENTER: &str = "toncenter";
/// Prefix of each node's metrics source in health (`node_metrics/{validator}`).
pub const NODE_METRICS: &str = "node_metrics";
/// Release source name in health and metrics.
pub const GITHUB: &str = "github";
/// State key of the release check memory ([`ReleaseMemory`]).
pub const RELEASE_STATE_KEY: &str = "validators.release";
/// State key prefix of each validator's previous CPU counters ([`CpuCounters`]).
pub const CPU_STATE_PREFIX: &str = "validators.cpu/";

/// Series names; label `validator` (and `mountpoint` for disk).
pub const BALANCE_SERIES: &str = "validator_balance_ton";
pub const IN_SET_SERIES: &str = "validator_in_current_set";
pub const SYNC_LAG_SERIES: &str = "validator_sync_lag_seconds";
pub const DISK_SERIES: &str = "validator_disk_used_percent";
pub const MEMORY_AVAILABLE_SERIES: &str = "validator_memory_available_percent";
pub const CPU_BUSY_SERIES: &str = "validator_cpu_busy_percent";

const NANOTON_PER_TON: f64 = 1e9;

fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_true() -> bool {
    true
}
fn default_balance_margin_ton() -> f64 {
    10.0
}
fn default_max_sync_lag() -> Duration {
    Duration::from_secs(120)
}
fn default_disk_warning_percent() -> f64 {
    80.0
}
fn default_disk_critical_percent() -> f64 {
    95.0
}
fn default_failure_alert_after() -> u32 {
    3
}
fn default_memory_available_min_percent() -> f64 {
    10.0
}
fn default_cpu_busy_warning_percent() -> f64 {
    90.0
}
fn default_release_repo() -> String {
    "ton-blockchain/ton".to_owned()
}
fn default_github_base_url() -> String {
    tools::github::DEFAULT_BASE_URL.to_owned()
}
fn default_release_check_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_efficiency_min_percent() -> f64 {
    90.0
}
fn default_efficiency_after_round_fraction() -> f64 {
    0.8
}
fn default_zero_blocks_window() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_participation_grace() -> Duration {
    Duration::from_secs(2 * 3600)
}
fn default_stake_return_grace() -> Duration {
    Duration::from_secs(3600)
}
fn default_rank_drop_places() -> u32 {
    10
}
fn default_delegation_change_percent() -> f64 {
    10.0
}
fn default_resend_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_static_params_ttl() -> Duration {
    Duration::from_secs(3600)
}

/// `[agents.validators]` in the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidatorsAgentConfig {
    /// Off by default: there is nothing to watch until validators are listed.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_interval", with = "crate::duration")]
    pub interval: Duration,
    #[serde(default = "default_true")]
    pub poll_on_start: bool,
    #[serde(default)]
    pub validators: Vec<WatchedValidator>,
    /// Fixed alert line for the wallet balance; when absent the line is param 17's
    /// `min_stake` plus `balance_margin_ton`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_balance_ton: Option<f64>,
    #[serde(default = "default_balance_margin_ton")]
    pub balance_margin_ton: f64,
    #[serde(default = "default_max_sync_lag", with = "crate::duration")]
    pub max_sync_lag: Duration,
    #[serde(default = "default_disk_warning_percent")]
    pub disk_warning_percent: f64,
    #[serde(default = "default_disk_critical_percent")]
    pub disk_critical_percent: f64,
    /// Alert after this many consecutive failed polls of a source (each already retried).
    #[serde(default = "default_failure_alert_after")]
    pub source_failure_alert_after: u32,
    /// `memory_high` when available memory is below this share of the total.
    #[serde(default = "default_memory_available_min_percent")]
    pub memory_available_min_percent: f64,
    /// `cpu_busy` when the CPUs were busier than this between two scrapes.
    #[serde(default = "default_cpu_busy_warning_percent")]
    pub cpu_busy_warning_percent: f64,
    /// Announce new GitHub releases of `release_repo` (`new_release`).
    #[serde(default = "default_true")]
    pub check_releases: bool,
    /// `owner/repo` whose latest release is the validator software.
    #[serde(default = "default_release_repo")]
    pub release_repo: String,
    /// The GitHub API root.
    #[serde(default = "default_github_base_url")]
    pub github_base_url: String,
    /// Check for a new release at most this often (GitHub allows ~60 anonymous requests/h).
    #[serde(default = "default_release_check_interval", with = "crate::duration")]
    pub release_check_interval: Duration,
    /// `low_efficiency` when the round's efficiency is below this (percent)...
    #[serde(default = "default_efficiency_min_percent")]
    pub efficiency_min_percent: f64,
    /// ...once this share of the round has passed (efficiency reads low early in a round).
    #[serde(default = "default_efficiency_after_round_fraction")]
    pub efficiency_after_round_fraction: f64,
    /// `zero_blocks` when a validator in the set created or validated no block for this long
    /// (mytonctrl: about half a round).
    #[serde(default = "default_zero_blocks_window", with = "crate::duration")]
    pub zero_blocks_window: Duration,
    /// `no_election_stake` when the wallet has no stake in an election open this long.
    #[serde(default = "default_participation_grace", with = "crate::duration")]
    pub participation_grace: Duration,
    /// `stake_not_returned` when a frozen stake is still held this long after it was due.
    #[serde(default = "default_stake_return_grace", with = "crate::duration")]
    pub stake_return_grace: Duration,
    /// `rank_drop` when the network rank falls by this many places between rounds (0 = off).
    #[serde(default = "default_rank_drop_places")]
    pub rank_drop_places: u32,
    /// `delegation_change` when a pool's delegated stake moves by this share between polls.
    #[serde(default = "default_delegation_change_percent")]
    pub delegation_change_percent: f64,
    /// A firing alert is sent again as a reminder this often ("0s" = never).
    #[serde(default = "default_resend_interval", with = "crate::duration")]
    pub resend_interval: Duration,
    /// Config params 15 and 17 change only by a network vote: read them this often.
    #[serde(default = "default_static_params_ttl", with = "crate::duration")]
    pub static_params_ttl: Duration,
    /// Which service answers which question.
    #[serde(default)]
    pub providers: Providers,
    /// The fixes the agent proposes to the gate (it never runs them itself).
    #[serde(default)]
    pub proposals: ProposalSettings,
}

/// Where a kind of data comes from.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    Toncenter,
    Tonapi,
}

/// `[agents.validators.providers]`: one provider per data kind. Efficiency and complaints
/// come from toncenter's elections/QoS APIs when `elections_api` is on.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    /// Wallet balances: toncenter `getWalletInformation` or tonapi `/v2/accounts`. (Elector
    /// data always comes from toncenter: tonapi's validator list is the round in force, one
    /// election behind the participant list.)
    #[serde(default)]
    pub balances: Provider,
    /// Read efficiency (QoS scoreboard) and complaints from toncenter's operator APIs.
    #[serde(default = "default_true")]
    pub elections_api: bool,
}

impl Default for Providers {
    fn default() -> Self {
        Self {
            balances: Provider::Toncenter,
            elections_api: true,
        }
    }
}

fn default_restart_command() -> String {
    "restart_validator".to_owned()
}
fn default_upgrade_command() -> String {
    "upgrade_validator".to_owned()
}
fn default_failover_command() -> String {
    "failover_validator".to_owned()
}
fn default_recover_command() -> String {
    "recover_stake".to_owned()
}
fn default_join_command() -> String {
    "join_election".to_owned()
}
fn default_stake_reserve_ton() -> f64 {
    50.0
}
fn default_max_factor() -> f64 {
    3.0
}

/// `[agents.validators.proposals]`: which fixes to propose and with what. Node operations are
/// `command` operations naming programs of `[executors.command.programs]`; a top-up is a
/// `ton_transfer` from the executor's wallet. The policies decide what runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProposalSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Program restarting the node (vars: `validator`).
    #[serde(default = "default_restart_command")]
    pub restart_command: String,
    /// Program upgrading the node (vars: `validator`, `version`).
    #[serde(default = "default_upgrade_command")]
    pub upgrade_command: String,
    /// Program switching to the standby node (vars: `validator`, `standby`).
    #[serde(default = "default_failover_command")]
    pub failover_command: String,
    /// Program sending the recover-stake request from the wallet (vars: `validator`).
    #[serde(default = "default_recover_command")]
    pub recover_command: String,
    /// Program sending the election stake (vars: `validator`, `stake_ton`, `max_factor`).
    #[serde(default = "default_join_command")]
    pub join_command: String,
    /// Propose a `ton_transfer` topping up a wallet below the election need.
    #[serde(default = "default_true")]
    pub top_up: bool,
    /// TON left in the wallet for fees when staking.
    #[serde(default = "default_stake_reserve_ton")]
    pub stake_reserve_ton: f64,
    /// Upper bound of a proposed stake (besides config 17's max_stake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stake_ton: Option<f64>,
    /// Max factor of a proposed stake (1.0-3.0).
    #[serde(default = "default_max_factor")]
    pub max_factor: f64,
}

impl Default for ProposalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            restart_command: default_restart_command(),
            upgrade_command: default_upgrade_command(),
            failover_command: default_failover_command(),
            recover_command: default_recover_command(),
            join_command: default_join_command(),
            top_up: true,
            stake_reserve_ton: default_stake_reserve_ton(),
            max_stake_ton: None,
            max_factor: default_max_factor(),
        }
    }
}

impl Default for ValidatorsAgentConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_interval(),
            poll_on_start: true,
            validators: Vec::new(),
            min_balance_ton: None,
            balance_margin_ton: default_balance_margin_ton(),
            max_sync_lag: default_max_sync_lag(),
            disk_warning_percent: default_disk_warning_percent(),
            disk_critical_percent: default_disk_critical_percent(),
            source_failure_alert_after: default_failure_alert_after(),
            memory_available_min_percent: default_memory_available_min_percent(),
            cpu_busy_warning_percent: default_cpu_busy_warning_percent(),
            check_releases: true,
            release_repo: default_release_repo(),
            github_base_url: default_github_base_url(),
            release_check_interval: default_release_check_interval(),
            efficiency_min_percent: default_efficiency_min_percent(),
            efficiency_after_round_fraction: default_efficiency_after_round_fraction(),
            zero_blocks_window: default_zero_blocks_window(),
            participation_grace: default_participation_grace(),
            stake_return_grace: default_stake_return_grace(),
            rank_drop_places: default_rank_drop_places(),
            delegation_change_percent: default_delegation_change_percent(),
            resend_interval: default_resend_interval(),
            static_params_ttl: default_static_params_ttl(),
            providers: Providers::default(),
            proposals: ProposalSettings::default(),
        }
    }
}

/// `[[agents.validators.validators]]`: one validator to watch.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchedValidator {
    pub name: String,
    /// The validator's wallet (raw `-1:hex` or user-friendly form).
    pub wallet: String,
    /// Ed25519 validator public key (64 hex characters); enables the current-set check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The node's Prometheus metrics page (node_exporter and mytonctrl gauges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
    /// The node's ADNL address (64 hex); learned from the election when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adnl: Option<String>,
    /// The nominator pool that stakes for this validator (its address is what the elector
    /// sees); `pool_kind` says which contract it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_kind: Option<PoolKind>,
    /// A standby node to fail over to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyNode>,
    /// The release the node runs (e.g. "v2025.02"), compared with the latest release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_version: Option<String>,
}

/// Which pool contract stakes for the validator.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// The TON Foundation nominator pool (`get_pool_data`, `list_nominators`).
    Nominator,
    /// The single-nominator pool (`get_roles`).
    SingleNominator,
}

/// `[agents.validators.validators.standby]`: the node that can take over.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StandbyNode {
    pub name: String,
    /// Its metrics page: failover is proposed only to a standby that is in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
}

fn is_hex_key(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

impl ValidatorsAgentConfig {
    /// Every semantic problem at once; paths are relative to `[agents.validators]`.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| {
            problems.push(ConfigProblem { path, message });
        };
        if self.interval < Duration::from_millis(100) {
            problem("interval".into(), "must be at least 100ms".into());
        }
        if self.enabled && self.validators.is_empty() {
            problem(
                "validators".into(),
                "the agent is enabled but watches nothing; add [[agents.validators.validators]] entries or set enabled = false".into(),
            );
        }
        let mut names = BTreeSet::new();
        for (index, validator) in self.validators.iter().enumerate() {
            let at = |key: &str| format!("validators[{index}].{key}");
            if validator.name.trim().is_empty() {
                problem(at("name"), "must not be empty".into());
            } else if !names.insert(validator.name.as_str()) {
                problem(
                    at("name"),
                    format!(
                        "{:?} is used by another validator; names must be unique",
                        validator.name
                    ),
                );
            }
            if let Err(error) = tools::ton::parse_address(&validator.wallet) {
                problem(
                    at("wallet"),
                    format!(
                        "{:?} is not a TON address ({error}); write the raw form (-1:<64 hex>) or the 48-character user-friendly form",
                        validator.wallet
                    ),
                );
            }
            if let Some(key) = &validator.public_key
                && !is_hex_key(key)
            {
                problem(
                    at("public_key"),
                    "must be 64 hex characters (the validator's Ed25519 public key)".into(),
                );
            }
            if let Some(url) = &validator.metrics_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                problem(
                    at("metrics_url"),
                    format!(
                        "{url:?} must be an http:// or https:// URL, e.g. http://10.0.0.5:9100/metrics"
                    ),
                );
            }
            if let Some(adnl) = &validator.adnl
                && !is_hex_key(adnl)
            {
                problem(
                    at("adnl"),
                    "must be 64 hex characters (the node's ADNL address)".into(),
                );
            }
            if let Some(pool) = &validator.pool
                && let Err(error) = tools::ton::parse_address(pool)
            {
                problem(
                    at("pool"),
                    format!("{pool:?} is not a TON address ({error})"),
                );
            }
            if validator.pool_kind.is_some() != validator.pool.is_some() {
                problem(
                    at("pool_kind"),
                    "set pool and pool_kind together (pool_kind = \"nominator\" or \"single_nominator\")".into(),
                );
            }
            if let Some(standby) = &validator.standby {
                if standby.name.trim().is_empty() {
                    problem(at("standby.name"), "must not be empty".into());
                }
                if let Some(url) = &standby.metrics_url
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    problem(
                        at("standby.metrics_url"),
                        format!("{url:?} must be an http:// or https:// URL"),
                    );
                }
            }
            if let Some(version) = &validator.running_version
                && version.trim().is_empty()
            {
                problem(
                    at("running_version"),
                    "must not be empty; write the release tag, e.g. \"v2025.02\", or leave it out"
                        .into(),
                );
            }
        }
        let percent_ok = |value: f64| value.is_finite() && value > 0.0 && value <= 100.0;
        if !percent_ok(self.efficiency_min_percent) {
            problem(
                "efficiency_min_percent".into(),
                "must be above 0 and at most 100".into(),
            );
        }
        let fraction = self.efficiency_after_round_fraction;
        if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
            problem(
                "efficiency_after_round_fraction".into(),
                "must be between 0 and 1 (0.8 = judge after 80% of the round)".into(),
            );
        }
        if !percent_ok(self.delegation_change_percent) {
            problem(
                "delegation_change_percent".into(),
                "must be above 0 and at most 100".into(),
            );
        }
        for (key, value) in [
            ("zero_blocks_window", self.zero_blocks_window),
            ("participation_grace", self.participation_grace),
            ("static_params_ttl", self.static_params_ttl),
        ] {
            if value.is_zero() {
                problem(key.into(), "must be longer than 0s".into());
            }
        }
        let proposals = &self.proposals;
        for (key, value) in [
            ("proposals.restart_command", &proposals.restart_command),
            ("proposals.upgrade_command", &proposals.upgrade_command),
            ("proposals.failover_command", &proposals.failover_command),
            ("proposals.recover_command", &proposals.recover_command),
            ("proposals.join_command", &proposals.join_command),
        ] {
            if value.trim().is_empty() {
                problem(
                    key.into(),
                    "must name a program of [executors.command.programs]".into(),
                );
            }
        }
        if !(proposals.stake_reserve_ton.is_finite() && proposals.stake_reserve_ton >= 0.0) {
            problem(
                "proposals.stake_reserve_ton".into(),
                "must be a number of TON, 0 or more".into(),
            );
        }
        if let Some(max) = proposals.max_stake_ton
            && !(max.is_finite() && max > 0.0)
        {
            problem(
                "proposals.max_stake_ton".into(),
                "must be a number of TON above 0".into(),
            );
        }
        if !(proposals.max_factor.is_finite() && (1.0..=3.0).contains(&proposals.max_factor)) {
            problem(
                "proposals.max_factor".into(),
                format!(
                    "must be between 1.0 and 3.0 (the network's cap), got {}",
                    proposals.max_factor
                ),
            );
        }
        if let Some(line) = self.min_balance_ton
            && !(line.is_finite() && line >= 0.0)
        {
            problem(
                "min_balance_ton".into(),
                "must be a number of TON, 0 or more".into(),
            );
        }
        if !(self.balance_margin_ton.is_finite() && self.balance_margin_ton >= 0.0) {
            problem(
                "balance_margin_ton".into(),
                "must be a number of TON, 0 or more".into(),
            );
        }
        if self.max_sync_lag.is_zero() {
            problem("max_sync_lag".into(), "must be longer than 0s".into());
        }
        let warning = self.disk_warning_percent;
        let critical = self.disk_critical_percent;
        if !(warning.is_finite() && warning > 0.0 && warning <= 100.0) {
            problem(
                "disk_warning_percent".into(),
                "must be above 0 and at most 100".into(),
            );
        }
        if !(critical.is_finite() && critical > 0.0 && critical <= 100.0 && critical > warning) {
            problem(
                "disk_critical_percent".into(),
                format!("must be above disk_warning_percent ({warning}) and at most 100"),
            );
        }
        if self.source_failure_alert_after == 0 {
            problem(
                "source_failure_alert_after".into(),
                "must be 1 or more".into(),
            );
        }
        for (key, value) in [
            (
                "memory_available_min_percent",
                self.memory_available_min_percent,
            ),
            ("cpu_busy_warning_percent", self.cpu_busy_warning_percent),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= 100.0) {
                problem(key.into(), "must be above 0 and at most 100".into());
            }
        }
        if self.release_owner_repo().is_none() {
            problem(
                "release_repo".into(),
                format!(
                    "{:?} must be a GitHub repository as owner/repo, e.g. ton-blockchain/ton",
                    self.release_repo
                ),
            );
        }
        let base = &self.github_base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            problem(
                "github_base_url".into(),
                format!("{base:?} must be an http:// or https:// URL, e.g. https://api.github.com"),
            );
        }
        if self.release_check_interval.is_zero() {
            problem(
                "release_check_interval".into(),
                "must be longer than 0s".into(),
            );
        }
        problems
    }

    /// `release_repo` split into owner and repository, when well formed.
    pub fn release_owner_repo(&self) -> Option<(&str, &str)> {
        let (owner, repo) = self.release_repo.split_once('/')?;
        let part_ok = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (part_ok(owner) && part_ok(repo)).then_some((owner, repo))
    }

    /// The wallet balance the next election needs, in TON (see the module docs).
    pub fn required_balance_ton(&self, limits: Option<&StakeLimits>) -> Option<f64> {
        self.min_balance_ton.or_else(|| {
            limits.map(|limits| limits.min_stake as f64 / NANOTON_PER_TON + self.balance_margin_ton)
        })
    }
}

/// What one rule concludes about one subject.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not enough data to say anything: a firing alert stays firing, nothing new fires.
    Unknown,
    /// The condition does not hold; `summary` is the recovery notice if an alert was firing.
    Healthy {
        summary: String,
        evidence: serde_json::Value,
    },
    /// The condition holds.
    Breach {
        severity: Severity,
        summary: String,
        evidence: serde_json::Value,
    },
}

/// Low balance: `balance_ton` against the election need (`None` when param 17 is unknown and
/// no fixed line is set).
pub fn evaluate_balance(
    name: &str,
    balance_ton: Option<f64>,
    required_ton: Option<f64>,
) -> Verdict {
    let (Some(balance), Some(required)) = (balance_ton, required_ton) else {
        return Verdict::Unknown;
    };
    let evidence = serde_json::json!({
        "balance_ton": balance,
        "required_ton": required,
        "shortfall_ton": (required - balance).max(0.0),
    });
    if balance < required {
        Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: wallet holds {balance:.2} TON, below the {required:.2} TON the next election needs (short by {:.2} TON)",
                required - balance
            ),
            evidence,
        }
    } else {
        Verdict::Healthy {
            summary: format!(
                "{name}: wallet topped up to {balance:.2} TON (needs {required:.2} TON)"
            ),
            evidence,
        }
    }
}

/// A source (a node's metrics page, toncenter) that failed `failures` polls in a row.
pub fn evaluate_reachability(
    subject: &str,
    failures: u32,
    threshold: u32,
    last_error: Option<&str>,
) -> Verdict {
    if failures == 0 {
        return Verdict::Healthy {
            summary: format!("{subject} is answering again"),
            evidence: serde_json::json!({ "consecutive_failures": 0 }),
        };
    }
    if failures < threshold {
        return Verdict::Unknown;
    }
    Verdict::Breach {
        severity: Severity::Warning,
        summary: format!(
            "{subject} unreachable: {failures} polls failed in a row ({})",
            last_error.unwrap_or("no error text")
        ),
        evidence: serde_json::json!({
            "consecutive_failures": failures,
            "threshold": threshold,
            "last_error": last_error,
        }),
    }
}

/// Out of sync: the masterchain lag reported by the node against `max_lag`.
pub fn evaluate_sync(name: &str, lag_seconds: Option<f64>, max_lag: Duration) -> Verdict {
    let Some(lag) = lag_seconds.filter(|lag| lag.is_finite()) else {
        return Verdict::Unknown;
    };
    let max = max_lag.as_secs_f64();
    let evidence = serde_json::json!({ "sync_lag_seconds": lag, "max_sync_lag_seconds": max });
    if lag > max {
        Verdict::Breach {
            severity: Severity::Critical,
            summary: format!("{name}: node is {lag:.0}s behind the masterchain (limit {max:.0}s)"),
            evidence,
        }
    } else {
        Verdict::Healthy {
            summary: format!("{name}: node is in sync again ({lag:.0}s behind, limit {max:.0}s)"),
            evidence,
        }
    }
}

/// Disk usage of one file system against the warning and critical lines.
pub fn evaluate_disk(
    name: &str,
    mountpoint: &str,
    used_percent: Option<f64>,
    warning_percent: f64,
    critical_percent: f64,
) -> Verdict {
    let Some(used) = used_percent.filter(|used| used.is_finite()) else {
        return Verdict::Unknown;
    };
    let evidence = serde_json::json!({
        "mountpoint": mountpoint,
        "used_percent": used,
        "warning_percent": warning_percent,
        "critical_percent": critical_percent,
    });
    let severity = if used >= critical_percent {
        Severity::Critical
    } else if used >= warning_percent {
        Severity::Warning
    } else {
        return Verdict::Healthy {
            summary: format!(
                "{name}: {mountpoint} is back to {used:.1}% used (warning at {warning_percent}%)"
            ),
            evidence,
        };
    };
    let line = if severity == Severity::Critical {
        critical_percent
    } else {
        warning_percent
    };
    Verdict::Breach {
        severity,
        summary: format!("{name}: {mountpoint} is {used:.1}% full (above {line}%)"),
        evidence,
    }
}

/// Service down: the node's `validator_console_up` gauge (`None` when absent: unknown).
pub fn evaluate_service(name: &str, console_up: Option<bool>) -> Verdict {
    match console_up {
        None => Verdict::Unknown,
        Some(true) => Verdict::Healthy {
            summary: format!("{name}: validator service is up again"),
            evidence: serde_json::json!({ "validator_console_up": 1 }),
        },
        Some(false) => Verdict::Breach {
            severity: Severity::Critical,
            summary: format!(
                "{name}: validator service is down (validator_console_up = 0): the node does not validate"
            ),
            evidence: serde_json::json!({ "validator_console_up": 0 }),
        },
    }
}

/// Memory: available against total bytes, alerting below `min_available_percent`.
pub fn evaluate_memory(
    name: &str,
    total_bytes: Option<f64>,
    available_bytes: Option<f64>,
    min_available_percent: f64,
) -> Verdict {
    let (Some(total), Some(available)) = (total_bytes, available_bytes) else {
        return Verdict::Unknown;
    };
    if !(total.is_finite() && available.is_finite() && total > 0.0 && available >= 0.0) {
        return Verdict::Unknown;
    }
    let percent = available / total * 100.0;
    let evidence = serde_json::json!({
        "memory_total_bytes": total,
        "memory_available_bytes": available,
        "available_percent": percent,
        "min_available_percent": min_available_percent,
    });
    if percent < min_available_percent {
        Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: only {percent:.1}% of memory available (below {min_available_percent}%)"
            ),
            evidence,
        }
    } else {
        Verdict::Healthy {
            summary: format!("{name}: {percent:.1}% of memory available again"),
            evidence,
        }
    }
}

/// CPU seconds summed over all CPUs, as kept between scrapes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuCounters {
    /// All modes.
    pub total_seconds: f64,
    /// `idle` plus `iowait` (waiting, not busy).
    pub idle_seconds: f64,
}

impl CpuCounters {
    /// `None` when the page has no CPU counters.
    pub fn from_modes(by_mode: &BTreeMap<String, f64>) -> Option<Self> {
        if by_mode.is_empty() {
            return None;
        }
        let total_seconds = by_mode.values().sum();
        let idle_seconds = ["idle", "iowait"]
            .iter()
            .filter_map(|mode| by_mode.get(*mode))
            .sum();
        Some(Self {
            total_seconds,
            idle_seconds,
        })
    }
}

/// The busy share (percent) between two scrapes; `None` without a previous scrape, when no
/// CPU time passed, or after a counter reset (a reboot).
pub fn cpu_busy_percent(previous: Option<&CpuCounters>, current: &CpuCounters) -> Option<f64> {
    let previous = previous?;
    let total = current.total_seconds - previous.total_seconds;
    let idle = current.idle_seconds - previous.idle_seconds;
    if !(total.is_finite() && idle.is_finite()) || total <= 0.0 || idle < 0.0 || idle > total {
        return None;
    }
    Some((1.0 - idle / total) * 100.0)
}

/// CPU busy share against the warning line.
pub fn evaluate_cpu(name: &str, busy_percent: Option<f64>, warning_percent: f64) -> Verdict {
    let Some(busy) = busy_percent.filter(|busy| busy.is_finite()) else {
        return Verdict::Unknown;
    };
    let evidence =
        serde_json::json!({ "cpu_busy_percent": busy, "warning_percent": warning_percent });
    if busy > warning_percent {
        Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: CPUs {busy:.1}% busy since the last scrape (above {warning_percent}%)"
            ),
            evidence,
        }
    } else {
        Verdict::Healthy {
            summary: format!("{name}: CPUs back to {busy:.1}% busy"),
            evidence,
        }
    }
}

/// What the agent remembers of release checks (state key [`RELEASE_STATE_KEY`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseMemory {
    pub last_checked: Option<DateTime<Utc>>,
    pub last_tag: Option<String>,
}

/// Pure: whether a release check is due.
pub fn release_check_due(
    last_checked: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    interval: Duration,
) -> bool {
    let Some(last) = last_checked else {
        return true;
    };
    let elapsed = now.signed_duration_since(last).to_std();
    // A clock that went backwards counts as due rather than never.
    elapsed.map_or(true, |elapsed| elapsed >= interval)
}

/// Pure: what a fetched latest release means given the last tag seen.
#[derive(Clone, Debug, PartialEq)]
pub enum ReleaseDecision {
    /// First check: remember the tag, announce nothing (no alert storm on install).
    Record,
    /// Same tag as last time.
    Unchanged,
    /// A tag not seen before.
    Announce(Verdict),
}

pub fn evaluate_release(last_tag: Option<&str>, latest: &Release) -> ReleaseDecision {
    match last_tag {
        None => ReleaseDecision::Record,
        Some(tag) if tag == latest.tag => ReleaseDecision::Unchanged,
        Some(previous) => {
            let first_line = latest
                .body
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .or(latest.name.as_deref())
                .unwrap_or("no release notes");
            ReleaseDecision::Announce(Verdict::Breach {
                severity: Severity::Info,
                summary: format!(
                    "new validator software release {}: {first_line}",
                    latest.tag
                ),
                evidence: serde_json::json!({
                    "tag": latest.tag,
                    "previous_tag": previous,
                    "name": latest.name,
                    "published_at": latest.published_at,
                    "html_url": latest.html_url,
                }),
            })
        }
    }
}

/// What to do with a verdict given the alert already firing (if any).
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    None,
    /// Fire (new, or a change of severity while firing).
    Fire,
    Resolve,
}

/// Pure: firing when not firing (or the severity changed), resolving when healthy again.
pub fn transition(verdict: &Verdict, active: Option<&Alert>) -> Transition {
    match (verdict, active) {
        (Verdict::Breach { .. }, None) => Transition::Fire,
        (Verdict::Breach { severity, .. }, Some(active)) if *severity != active.severity => {
            Transition::Fire
        }
        (Verdict::Healthy { .. }, Some(_)) => Transition::Resolve,
        _ => Transition::None,
    }
}

/// Pure: a firing alert last sent at `last_sent` is due for a reminder (`interval` 0 = never).
pub fn reminder_due(last_sent: DateTime<Utc>, now: DateTime<Utc>, interval: Duration) -> bool {
    !interval.is_zero()
        && now
            .signed_duration_since(last_sent)
            .to_std()
            .is_ok_and(|age| age >= interval)
}

fn series(name: &str, validator: &str) -> SeriesKey {
    SeriesKey::new(name).with_label("validator", validator)
}

/// Series key of a validator's wallet balance.
pub fn balance_key(validator: &str) -> SeriesKey {
    series(BALANCE_SERIES, validator)
}
/// Series key of a validator's membership in the current set (1/0).
pub fn in_set_key(validator: &str) -> SeriesKey {
    series(IN_SET_SERIES, validator)
}
/// Series key of a validator node's masterchain lag.
pub fn sync_lag_key(validator: &str) -> SeriesKey {
    series(SYNC_LAG_SERIES, validator)
}
/// Series key of a node file system's used share.
pub fn disk_key(validator: &str, mountpoint: &str) -> SeriesKey {
    series(DISK_SERIES, validator).with_label("mountpoint", mountpoint)
}

/// What one tick saw of one validator (journaled in `observation.batch`).
#[derive(Clone, Debug, Default, Serialize)]
struct ValidatorObservation {
    name: String,
    balance_ton: Option<f64>,
    wallet_error: Option<String>,
    in_current_set: Option<bool>,
    sync_lag_seconds: Option<f64>,
    console_up: Option<bool>,
    disks: BTreeMap<String, f64>,
    metrics_error: Option<String>,
    metrics_failures: u32,
    memory_available_percent: Option<f64>,
    cpu_busy_percent: Option<f64>,
    blocks_total: Option<f64>,
    returned_stake_ton: Option<f64>,
    #[serde(flatten)]
    cycle: round::CycleObservation,
}

/// The agent's domain logic, hosted by a supervised actor in the runtime.
pub struct ValidatorsAgent {
    config: ValidatorsAgentConfig,
    toncenter: ToncenterClient,
    scraper: PrometheusScraper,
    github: Option<GithubClient>,
    store: Store,
    auditor: Auditor,
    health: HealthRegistry,
    telemetry: Telemetry,
    gate: Option<Arc<dyn ProposalGate>>,
    elections: Option<ElectionsClient>,
    tonapi: Option<TonapiClient>,
    /// Params 15 and 17 as last read, and when.
    static_params: Option<(Instant, Option<ElectionTiming>, Option<StakeLimits>)>,
}

impl ValidatorsAgent {
    pub fn new(
        config: ValidatorsAgentConfig,
        toncenter: ToncenterClient,
        scraper: PrometheusScraper,
        auditor: Auditor,
        health: HealthRegistry,
        telemetry: Telemetry,
    ) -> Self {
        Self {
            config,
            toncenter,
            scraper,
            github: None,
            store: auditor.store().clone(),
            auditor,
            health,
            telemetry,
            gate: None,
            elections: None,
            tonapi: None,
            static_params: None,
        }
    }

    /// Reads efficiency (and complaints, when the elector cannot be read) from toncenter's
    /// operator APIs (with `providers.elections_api`).
    pub fn with_elections(mut self, elections: ElectionsClient) -> Self {
        self.elections = Some(elections);
        self
    }

    /// tonapi, for the data kinds `providers` assigns to it.
    pub fn with_tonapi(mut self, tonapi: TonapiClient) -> Self {
        self.tonapi = Some(tonapi);
        self
    }

    /// Lets the agent propose fixes (restart, upgrade, failover, recover stake, top up, join
    /// the election) to the gate.
    pub fn with_gate(mut self, gate: Arc<dyn ProposalGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Enables the `new_release` check (when `check_releases` is on).
    pub fn with_github(mut self, github: GithubClient) -> Self {
        self.github = Some(github);
        self
    }

    fn store_error(source: memory::StoreError) -> AgentError {
        AgentError::store(AGENT, source)
    }

    fn audit_error(source: crate::audit::AuditError) -> AgentError {
        AgentError::audit(AGENT, source)
    }

    fn active(&self, alert_key: &str) -> Result<Option<ActiveAlert>, AgentError> {
        crate::alert::active(&self.store, AGENT, alert_key)
    }

    /// Times a source call and counts it in telemetry.
    fn observe_request(&self, source: &str, started: Instant) {
        let labels = SourceLabels {
            source: source.to_owned(),
        };
        self.telemetry.source_requests.get_or_create(&labels).inc();
        self.telemetry
            .source_latency
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    fn count_error(&self, source: &str, error: &SourceError) {
        self.telemetry
            .source_errors
            .get_or_create(&SourceErrorLabels {
                source: source.to_owned(),
                kind: error.kind().to_owned(),
            })
            .inc();
    }

    /// Journals the alert event, then records or clears it in the state store (audit first).
    async fn emit(&self, alert: Alert) -> Result<Alert, AgentError> {
        crate::alert::record(&self.auditor, &self.telemetry, AGENT, alert, None).await
    }

    /// Applies a verdict to the alert `rule/subject`, firing or resolving durably.
    async fn apply(
        &self,
        rule: &str,
        subject: &str,
        labels: BTreeMap<String, String>,
        verdict: Verdict,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), AgentError> {
        let key = format!("{AGENT}.{rule}/{subject}");
        let active = self.active(&key)?.map(|active| active.alert);
        let alert = match (transition(&verdict, active.as_ref()), verdict, active) {
            (
                Transition::Fire,
                Verdict::Breach {
                    severity,
                    summary,
                    evidence,
                },
                active,
            ) => {
                let mut all_labels = labels;
                all_labels.insert("domain".to_owned(), AGENT.to_owned());
                Alert {
                    key,
                    rule: rule.to_owned(),
                    status: AlertStatus::Firing,
                    severity,
                    summary,
                    labels: all_labels,
                    evidence,
                    starts_at: active.map_or(now, |active| active.starts_at),
                    at: now,
                    observed_at: now,
                }
            }
            (Transition::Resolve, Verdict::Healthy { summary, evidence }, Some(active)) => Alert {
                status: AlertStatus::Resolved,
                summary,
                evidence,
                at: now,
                observed_at: now,
                ..active
            },
            // Still firing: a reminder every `resend_interval` (from the last send).
            (
                Transition::None,
                Verdict::Breach {
                    summary,
                    mut evidence,
                    ..
                },
                Some(active),
            ) if reminder_due(active.at, now, self.config.resend_interval) => {
                if let Some(fields) = evidence.as_object_mut() {
                    fields.insert("reminder".to_owned(), serde_json::Value::Bool(true));
                }
                Alert {
                    summary: format!(
                        "still firing since {}: {summary}",
                        active.starts_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    evidence,
                    at: now,
                    observed_at: now,
                    ..active
                }
            }
            _ => return Ok(()),
        };
        report.alerts.push(self.emit(alert).await?);
        Ok(())
    }

    /// One poll: collect, remember, evaluate, propose.
    pub async fn run_tick(&mut self) -> Result<TickReport, AgentError> {
        let now = Utc::now();
        let mut report = TickReport::default();
        let view = self.fetch_view().await;
        let mut toncenter_errors = view.errors.clone();
        let required_ton = self.config.required_balance_ton(view.limits.as_ref());
        let latest_release = self
            .store
            .state()
            .get::<ReleaseMemory>(RELEASE_STATE_KEY)
            .map_err(Self::store_error)?
            .and_then(|memory| memory.last_tag);
        let round_seconds = view
            .timing
            .as_ref()
            .map(|timing| timing.validators_elected_for)
            .or_else(|| {
                view.current
                    .as_ref()
                    .map(|set| set.utime_until.saturating_sub(set.utime_since))
            });
        let mut samples: Vec<(SeriesKey, DateTime<Utc>, f64)> = Vec::new();
        let mut observations = Vec::with_capacity(self.config.validators.len());
        let mut verdicts: Vec<RuleVerdict> = Vec::new();
        let mut settled_all: Vec<(String, Vec<cycle::Settled>)> = Vec::new();
        // Failures of sources other than toncenter (tonapi, the operator APIs), by source.
        let mut other_errors: BTreeMap<&'static str, Vec<String>> = view.other_errors.clone();
        let prefetched = self.prefetch_balances().await;

        for validator in self.config.validators.clone() {
            let name = validator.name.as_str();
            let labels = BTreeMap::from([("validator".to_owned(), name.to_owned())]);
            let mut observed = ValidatorObservation {
                name: name.to_owned(),
                ..Default::default()
            };

            let (source, balance) = self
                .balance_nanoton(&validator.wallet, prefetched.as_ref())
                .await;
            let errors = if source == TONCENTER {
                &mut toncenter_errors
            } else {
                other_errors.entry(source).or_default()
            };
            match balance {
                Ok(nanoton) => {
                    let balance = nanoton as f64 / NANOTON_PER_TON;
                    samples.push((balance_key(name), now, balance));
                    observed.balance_ton = Some(balance);
                }
                Err(error) => {
                    let message = format!("wallet of {name}: {error}");
                    observed.wallet_error = Some(message.clone());
                    errors.push(message);
                }
            }
            verdicts.push((
                "low_balance".into(),
                name.to_owned(),
                labels.clone(),
                evaluate_balance(name, observed.balance_ton, required_ton),
            ));

            let cycle = self.evaluate_cycle(
                &validator,
                &view,
                latest_release.as_deref(),
                now,
                &mut samples,
                &mut verdicts,
            )?;
            if view.current.is_some() && !cycle.keys.is_empty() {
                observed.in_current_set = Some(cycle.position.is_some());
            }
            if let Some(member) = observed.in_current_set {
                samples.push((in_set_key(name), now, if member { 1.0 } else { 0.0 }));
            }
            // The elector credits a returned stake to the wallet's account in the elector;
            // look only when a stake was just released or an unrecovered one is on record.
            let unrecovered_key = format!("{AGENT}.stake_unrecovered/{name}");
            if !cycle.settled.is_empty() || self.active(&unrecovered_key)?.is_some() {
                let returned = self.returned_stake(&validator, &mut toncenter_errors).await;
                observed.returned_stake_ton = returned.map(|n| n as f64 / NANOTON_PER_TON);
                verdicts.push((
                    "stake_unrecovered".into(),
                    name.to_owned(),
                    labels.clone(),
                    cycle::evaluate_unrecovered(name, returned),
                ));
            }
            if !cycle.settled.is_empty() {
                settled_all.push((name.to_owned(), cycle.settled.clone()));
            }
            if let Some(verdict) = self
                .evaluate_pool(&validator, now, &mut samples, &mut toncenter_errors)
                .await?
            {
                verdicts.push(verdict);
            }

            if let Some(url) = &validator.metrics_url {
                let source = format!("{NODE_METRICS}/{name}");
                let started = Instant::now();
                let scraped = self.scraper.scrape(url).await;
                self.observe_request(&source, started);
                match scraped {
                    Ok(fetched) => {
                        self.health.source_succeeded(&source, now);
                        let metrics = &fetched.value.metrics;
                        let node = ValidatorNodeMetrics::from_metrics(metrics);
                        let host = NodeExporterSummary::from_metrics(metrics);
                        observed.sync_lag_seconds = node.masterchain_out_of_sync_seconds;
                        observed.console_up = node.console_up;
                        if let Some(lag) = observed.sync_lag_seconds {
                            samples.push((sync_lag_key(name), now, lag));
                        }
                        verdicts.push((
                            "out_of_sync".into(),
                            name.to_owned(),
                            labels.clone(),
                            evaluate_sync(
                                name,
                                observed.sync_lag_seconds,
                                self.config.max_sync_lag,
                            ),
                        ));
                        verdicts.push((
                            "service_down".into(),
                            name.to_owned(),
                            labels.clone(),
                            evaluate_service(name, observed.console_up),
                        ));
                        observed.blocks_total = round::blocks_total(&node);
                        let zero_blocks = self.evaluate_blocks(
                            name,
                            observed.blocks_total,
                            observed.in_current_set,
                            now,
                            &mut samples,
                        )?;
                        verdicts.push((
                            "zero_blocks".into(),
                            name.to_owned(),
                            labels.clone(),
                            zero_blocks,
                        ));
                        if let (Some(total), Some(available)) =
                            (host.memory_total_bytes, host.memory_available_bytes)
                            && total > 0.0
                        {
                            let percent = available / total * 100.0;
                            observed.memory_available_percent = Some(percent);
                            samples.push((series(MEMORY_AVAILABLE_SERIES, name), now, percent));
                        }
                        verdicts.push((
                            "memory_high".into(),
                            name.to_owned(),
                            labels.clone(),
                            evaluate_memory(
                                name,
                                host.memory_total_bytes,
                                host.memory_available_bytes,
                                self.config.memory_available_min_percent,
                            ),
                        ));
                        if let Some(current) = CpuCounters::from_modes(&host.cpu_seconds_by_mode) {
                            let state_key = format!("{CPU_STATE_PREFIX}{name}");
                            let previous = self
                                .store
                                .state()
                                .get::<CpuCounters>(&state_key)
                                .map_err(Self::store_error)?;
                            observed.cpu_busy_percent =
                                cpu_busy_percent(previous.as_ref(), &current);
                            if let Some(busy) = observed.cpu_busy_percent {
                                samples.push((series(CPU_BUSY_SERIES, name), now, busy));
                            }
                            self.store
                                .state()
                                .put(&state_key, &current)
                                .map_err(Self::store_error)?;
                        }
                        verdicts.push((
                            "cpu_busy".into(),
                            name.to_owned(),
                            labels.clone(),
                            evaluate_cpu(
                                name,
                                observed.cpu_busy_percent,
                                self.config.cpu_busy_warning_percent,
                            ),
                        ));
                        for fs in &host.filesystems {
                            let used = fs.used_percent();
                            if let Some(used) = used.filter(|used| used.is_finite()) {
                                samples.push((disk_key(name, &fs.mountpoint), now, used));
                                observed.disks.insert(fs.mountpoint.clone(), used);
                            }
                            let mut disk_labels = labels.clone();
                            disk_labels.insert("mountpoint".to_owned(), fs.mountpoint.clone());
                            verdicts.push((
                                "disk_usage".into(),
                                format!("{name}:{}", fs.mountpoint),
                                disk_labels,
                                evaluate_disk(
                                    name,
                                    &fs.mountpoint,
                                    used,
                                    self.config.disk_warning_percent,
                                    self.config.disk_critical_percent,
                                ),
                            ));
                        }
                    }
                    Err(error) => {
                        self.count_error(&source, &error);
                        let message = error.to_string();
                        observed.metrics_failures =
                            self.health.source_failed(&source, &message, now);
                        observed.metrics_error = Some(message);
                        tracing::warn!(validator = name, error = %error, "node metrics scrape failed");
                    }
                }
                verdicts.push((
                    "metrics_unreachable".into(),
                    name.to_owned(),
                    labels.clone(),
                    evaluate_reachability(
                        &format!("{name}: node metrics at {}", redact(url)),
                        observed.metrics_failures,
                        self.config.source_failure_alert_after,
                        observed.metrics_error.as_deref(),
                    ),
                ));
            }
            observed.cycle = cycle;
            observations.push(observed);
        }

        for (source, errors) in &other_errors {
            if errors.is_empty() {
                self.health.source_succeeded(source, now);
            } else {
                let message = errors.join("; ");
                tracing::warn!(source = %source, error = %message, "reads failed");
                self.health.source_failed(source, &message, now);
            }
        }
        let toncenter_failures = if toncenter_errors.is_empty() {
            self.health.source_succeeded(TONCENTER, now);
            0
        } else {
            let message = toncenter_errors.join("; ");
            tracing::warn!(source = TONCENTER, error = %message, "toncenter reads failed");
            self.health.source_failed(TONCENTER, &message, now)
        };
        verdicts.push((
            "source_unavailable".into(),
            TONCENTER.to_owned(),
            BTreeMap::from([("source".to_owned(), TONCENTER.to_owned())]),
            evaluate_reachability(
                TONCENTER,
                toncenter_failures,
                self.config.source_failure_alert_after,
                toncenter_errors.first().map(String::as_str),
            ),
        ));

        for (name, settled) in &settled_all {
            self.record_earnings(name, settled, round_seconds, now, &mut samples)
                .await?;
        }
        self.store
            .series()
            .append_batch(&samples)
            .map_err(Self::store_error)?;
        report.observations = samples.len();
        self.auditor
            .record(
                AGENT,
                "observation.batch",
                "validators/poll",
                &serde_json::json!({
                    "validators": observations,
                    "stake_limits": view.limits,
                    "election_timing": view.timing,
                    "required_balance_ton": required_ton,
                    "current_set_size": view.current.as_ref().map(|set| set.validators.len()),
                    "next_set_size": view.next.as_ref().map(|set| set.validators.len()),
                    "election_id": view.election.as_ref().map(|e| e.elect_at),
                    "toncenter_errors": toncenter_errors,
                    "samples": samples.len(),
                }),
            )
            .await
            .map_err(Self::audit_error)?;

        let mut breaches: Vec<(String, String)> = Vec::new();
        for (rule, subject, labels, verdict) in verdicts {
            if matches!(verdict, Verdict::Breach { .. }) {
                breaches.push((rule.clone(), subject.clone()));
            }
            self.apply(&rule, &subject, labels, verdict, now, &mut report)
                .await?;
        }
        self.check_release(now, &mut report).await?;
        if self.config.proposals.enabled && self.gate.is_some() {
            self.propose_fixes(
                &breaches,
                &observations,
                &view,
                required_ton,
                latest_release.as_deref(),
            )
            .await?;
        }
        Ok(report)
    }

    /// At most every `release_check_interval`: resolves the last release notice, fetches the
    /// latest release and announces a tag not seen before. A GitHub failure only degrades the
    /// `github` source in health.
    async fn check_release(
        &self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), AgentError> {
        if !self.config.check_releases {
            return Ok(());
        }
        let (Some(github), Some((owner, repo))) = (&self.github, self.config.release_owner_repo())
        else {
            return Ok(());
        };
        let mut memory = self
            .store
            .state()
            .get::<ReleaseMemory>(RELEASE_STATE_KEY)
            .map_err(Self::store_error)?
            .unwrap_or_default();
        if !release_check_due(memory.last_checked, now, self.config.release_check_interval) {
            return Ok(());
        }
        let key = format!("{AGENT}.new_release/{}", self.config.release_repo);
        // The notice stood until this check.
        if let Some(active) = self.active(&key)? {
            let active = active.alert;
            let summary = format!("release notice closed: {}", active.summary);
            let resolved = Alert {
                status: AlertStatus::Resolved,
                summary,
                at: now,
                observed_at: now,
                ..active
            };
            report.alerts.push(self.emit(resolved).await?);
        }
        memory.last_checked = Some(now);
        let started = Instant::now();
        let fetched = github.latest_release(owner, repo).await;
        self.observe_request(GITHUB, started);
        match fetched {
            Ok(fetched) => {
                self.health.source_succeeded(GITHUB, now);
                let latest = fetched.value;
                match evaluate_release(memory.last_tag.as_deref(), &latest) {
                    ReleaseDecision::Unchanged => {}
                    ReleaseDecision::Record => {
                        tracing::info!(tag = %latest.tag, "recorded the current validator software release");
                    }
                    ReleaseDecision::Announce(verdict) => {
                        let labels =
                            BTreeMap::from([("repo".to_owned(), self.config.release_repo.clone())]);
                        self.apply(
                            "new_release",
                            &self.config.release_repo,
                            labels,
                            verdict,
                            now,
                            report,
                        )
                        .await?;
                    }
                }
                memory.last_tag = Some(latest.tag);
            }
            Err(error) => {
                self.count_error(GITHUB, &error);
                let message = error.to_string();
                self.health.source_failed(GITHUB, &message, now);
                tracing::warn!(source = GITHUB, error = %message, "release check failed");
            }
        }
        self.store
            .state()
            .put(RELEASE_STATE_KEY, &memory)
            .map_err(Self::store_error)
    }
}

/// Scheme, host and port of a URL (metrics URLs may carry credentials or tokens).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(invalid URL)".to_owned();
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

impl DomainAgent for ValidatorsAgent {
    fn name(&self) -> &str {
        AGENT
    }

    fn tick(&mut self) -> TickFuture<'_> {
        Box::pin(self.run_tick())
    }
}

#[cfg(test)]
mod tests;

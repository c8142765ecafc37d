//! The market agent: polls prices, stores them as series, alerts on large moves and on a data
//! source that stays down, and announces recoveries.
//!
//! Evaluation runs on sample times (CoinGecko's `last_updated_at`), not on the wall clock, so a
//! simulated world that runs faster than real time, or a backfill, gives the same alerts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use memory::{Sample, SeriesKey, Store};
use serde::{Deserialize, Serialize};
use tools::coingecko::{CoinGeckoClient, PriceQuote};

use crate::alert::{ActiveAlert, Alert, AlertStatus, Severity};
use crate::audit::Auditor;
use crate::health::HealthRegistry;
use crate::telemetry::{SourceErrorLabels, SourceLabels, Telemetry};
use crate::{AgentError, DomainAgent, TickFuture, TickReport};

/// Name of the agent in logs, health, metrics and the audit log.
pub const AGENT: &str = "market";
/// Name of the price source in health and metrics.
pub const SOURCE: &str = "coingecko";
/// Series name of stored prices; labels `coin` and `vs`.
pub const PRICE_SERIES: &str = "price";

fn default_enabled() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_coins() -> Vec<String> {
    vec![
        "the-open-network".to_owned(),
        "bitcoin".to_owned(),
        "ethereum".to_owned(),
    ]
}
fn default_vs_currency() -> String {
    "usd".to_owned()
}
fn default_failure_alert_after() -> u32 {
    3
}
fn default_severity() -> Severity {
    Severity::Warning
}
fn default_move_alerts() -> Vec<MoveAlertRule> {
    vec![MoveAlertRule {
        coin: "the-open-network".to_owned(),
        percent: 10.0,
        window: Duration::from_secs(3600),
        recovery_percent: Some(5.0),
        severity: Severity::Warning,
    }]
}

/// `[agents.market]` in the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarketAgentConfig {
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// How often prices are polled.
    #[serde(default = "default_interval", with = "crate::duration")]
    pub interval: Duration,
    /// Poll once right at start (else the first poll waits one interval).
    #[serde(default = "default_enabled")]
    pub poll_on_start: bool,
    /// CoinGecko coin ids.
    #[serde(default = "default_coins")]
    pub coins: Vec<String>,
    #[serde(default = "default_vs_currency")]
    pub vs_currency: String,
    /// Alert after this many consecutive failed polls (each already retried).
    #[serde(default = "default_failure_alert_after")]
    pub source_failure_alert_after: u32,
    /// Defaults to TON moving 10% within an hour; `move_alerts = []` turns them off.
    #[serde(default = "default_move_alerts")]
    pub move_alerts: Vec<MoveAlertRule>,
}

impl Default for MarketAgentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_interval(),
            poll_on_start: true,
            coins: default_coins(),
            vs_currency: default_vs_currency(),
            source_failure_alert_after: default_failure_alert_after(),
            move_alerts: default_move_alerts(),
        }
    }
}

/// `[[agents.market.move_alerts]]`: alert when `coin` moves more than `percent` within `window`,
/// and announce the recovery when it comes back within `recovery_percent` of where it was.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MoveAlertRule {
    pub coin: String,
    pub percent: f64,
    #[serde(with = "crate::duration")]
    pub window: Duration,
    /// Defaults to half of `percent`.
    #[serde(default)]
    pub recovery_percent: Option<f64>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

impl MoveAlertRule {
    pub fn recovery_percent(&self) -> f64 {
        self.recovery_percent.unwrap_or(self.percent / 2.0)
    }
}

/// One configuration problem: key path relative to `[agents.market]` and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl MarketAgentConfig {
    /// Every semantic problem at once.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| {
            problems.push(ConfigProblem { path, message });
        };
        if self.interval < Duration::from_millis(100) {
            problem(
                "interval".into(),
                "must be at least 100ms (CoinGecko's public API allows a few calls a minute)"
                    .into(),
            );
        }
        if self.coins.is_empty() {
            problem(
                "coins".into(),
                "list at least one CoinGecko coin id, e.g. \"the-open-network\"".into(),
            );
        }
        if self.vs_currency.trim().is_empty() {
            problem(
                "vs_currency".into(),
                "must not be empty, e.g. \"usd\"".into(),
            );
        }
        if self.source_failure_alert_after == 0 {
            problem(
                "source_failure_alert_after".into(),
                "must be 1 or more".into(),
            );
        }
        for (index, rule) in self.move_alerts.iter().enumerate() {
            let at = |key: &str| format!("move_alerts[{index}].{key}");
            if !self.coins.contains(&rule.coin) {
                problem(
                    at("coin"),
                    format!(
                        "coin {:?} is not polled; add it to agents.market.coins ({})",
                        rule.coin,
                        self.coins.join(", ")
                    ),
                );
            }
            if !(rule.percent.is_finite() && rule.percent > 0.0) {
                problem(at("percent"), "must be a positive number of percent".into());
            }
            let recovery = rule.recovery_percent();
            if !(recovery.is_finite() && recovery >= 0.0 && recovery < rule.percent) {
                problem(
                    at("recovery_percent"),
                    format!(
                        "must be at least 0 and below percent ({}), or the alert would resolve as it fires",
                        rule.percent
                    ),
                );
            }
            if rule.window.is_zero() {
                problem(at("window"), "must be longer than 0s".into());
            }
        }
        problems
    }
}

/// Display symbol of a CoinGecko id.
pub fn symbol(coin_id: &str) -> String {
    match coin_id {
        "the-open-network" => "TON".to_owned(),
        "bitcoin" => "BTC".to_owned(),
        "ethereum" => "ETH".to_owned(),
        "tether" => "USDT".to_owned(),
        other => other.to_uppercase(),
    }
}

/// Series key of a coin's price.
pub fn price_key(coin_id: &str, vs_currency: &str) -> SeriesKey {
    SeriesKey::new(PRICE_SERIES)
        .with_label("coin", coin_id)
        .with_label("vs", vs_currency)
}

/// What the move rule concludes from the samples in its window.
#[derive(Clone, Debug, PartialEq)]
pub enum MoveVerdict {
    /// Nothing to say.
    Quiet,
    /// The price moved by `change_percent` from `reference` (the window's high or low).
    Fire {
        reference: Sample,
        change_percent: f64,
    },
    /// While firing: the price is back within the recovery band of the reference.
    Recovered { change_percent: f64 },
    /// While firing: still away from the reference.
    StillFiring { change_percent: f64 },
}

fn percent_change(from: f64, to: f64) -> f64 {
    if from == 0.0 {
        0.0
    } else {
        (to / from - 1.0) * 100.0
    }
}

/// Pure evaluation of one move rule. `window` holds the samples with
/// `at` in `[latest.at - rule.window, latest.at]`, ascending, `latest` included.
pub fn evaluate_move(
    rule: &MoveAlertRule,
    window: &[Sample],
    latest: Sample,
    active_reference: Option<Sample>,
) -> MoveVerdict {
    if let Some(reference) = active_reference {
        let change_percent = percent_change(reference.value, latest.value);
        return if change_percent.abs() <= rule.recovery_percent() {
            MoveVerdict::Recovered { change_percent }
        } else {
            MoveVerdict::StillFiring { change_percent }
        };
    }
    let mut high: Option<Sample> = None;
    let mut low: Option<Sample> = None;
    for sample in window.iter().filter(|sample| sample.value.is_finite()) {
        if high.is_none_or(|high| sample.value > high.value) {
            high = Some(*sample);
        }
        if low.is_none_or(|low| sample.value < low.value) {
            low = Some(*sample);
        }
    }
    let (Some(high), Some(low)) = (high, low) else {
        return MoveVerdict::Quiet;
    };
    let drop = percent_change(high.value, latest.value);
    let rise = percent_change(low.value, latest.value);
    let (reference, change_percent) = if drop.abs() >= rise.abs() {
        (high, drop)
    } else {
        (low, rise)
    };
    if change_percent.abs() >= rule.percent {
        MoveVerdict::Fire {
            reference,
            change_percent,
        }
    } else {
        MoveVerdict::Quiet
    }
}

/// The agent's domain logic, hosted by a supervised actor in the runtime.
pub struct MarketAgent {
    config: MarketAgentConfig,
    client: CoinGeckoClient,
    store: Store,
    auditor: Auditor,
    health: HealthRegistry,
    telemetry: Telemetry,
}

#[derive(Serialize)]
struct ObservedPrice<'a> {
    coin: &'a str,
    price: f64,
    change_24h_percent: Option<f64>,
    at: DateTime<Utc>,
}

impl MarketAgent {
    pub fn new(
        config: MarketAgentConfig,
        client: CoinGeckoClient,
        auditor: Auditor,
        health: HealthRegistry,
        telemetry: Telemetry,
    ) -> Self {
        Self {
            config,
            client,
            store: auditor.store().clone(),
            auditor,
            health,
            telemetry,
        }
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

    /// Journals the alert event, then records or clears it in the state store (audit first).
    async fn emit(&self, alert: Alert, reference: Option<Sample>) -> Result<Alert, AgentError> {
        crate::alert::record(&self.auditor, &self.telemetry, AGENT, alert, reference).await
    }

    /// One poll: collect, remember, evaluate.
    pub async fn run_tick(&mut self) -> Result<TickReport, AgentError> {
        let started = Instant::now();
        let now = Utc::now();
        let source_labels = SourceLabels {
            source: SOURCE.to_owned(),
        };
        self.telemetry
            .source_requests
            .get_or_create(&source_labels)
            .inc();
        let result = self
            .client
            .simple_price(&self.config.coins, &self.config.vs_currency)
            .await;
        self.telemetry
            .source_latency
            .get_or_create(&source_labels)
            .observe(started.elapsed().as_secs_f64());
        let mut report = TickReport::default();
        match result {
            Ok(fetched) => {
                self.health.source_succeeded(SOURCE, now);
                let quotes = fetched.value;
                report.observations = quotes.len();
                self.remember(&quotes, now, fetched.attempts).await?;
                if let Some(alert) = self.resolve_source_alert(now).await? {
                    report.alerts.push(alert);
                }
                for rule in self.config.move_alerts.clone() {
                    if let Some(alert) = self.evaluate_rule(&rule, now).await? {
                        report.alerts.push(alert);
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                let failures = self.health.source_failed(SOURCE, &message, now);
                self.telemetry
                    .source_errors
                    .get_or_create(&SourceErrorLabels {
                        source: SOURCE.to_owned(),
                        kind: error.kind().to_owned(),
                    })
                    .inc();
                tracing::warn!(source = SOURCE, failures, error = %message, "price poll failed");
                self.auditor
                    .record(
                        AGENT,
                        "source.failed",
                        SOURCE,
                        &serde_json::json!({
                            "error": message,
                            "kind": error.kind(),
                            "consecutive_failures": failures,
                        }),
                    )
                    .await
                    .map_err(Self::audit_error)?;
                if failures >= self.config.source_failure_alert_after
                    && let Some(alert) = self.fire_source_alert(&message, failures, now).await?
                {
                    report.alerts.push(alert);
                }
            }
        }
        Ok(report)
    }

    async fn remember(
        &self,
        quotes: &[PriceQuote],
        now: DateTime<Utc>,
        attempts: u32,
    ) -> Result<(), AgentError> {
        let vs = &self.config.vs_currency;
        let mut samples = Vec::with_capacity(quotes.len());
        let mut observed = Vec::with_capacity(quotes.len());
        for quote in quotes.iter().filter(|quote| quote.price.is_finite()) {
            let at = quote.last_updated_at.unwrap_or(now);
            samples.push((price_key(&quote.coin_id, vs), at, quote.price));
            observed.push(ObservedPrice {
                coin: &quote.coin_id,
                price: quote.price,
                change_24h_percent: quote.change_24h_percent,
                at,
            });
        }
        let missing: Vec<&String> = self
            .config
            .coins
            .iter()
            .filter(|coin| !quotes.iter().any(|quote| &quote.coin_id == *coin))
            .collect();
        self.store
            .series()
            .append_batch(&samples)
            .map_err(Self::store_error)?;
        self.auditor
            .record(
                AGENT,
                "observation.batch",
                "coingecko/simple_price",
                &serde_json::json!({
                    "source": SOURCE,
                    "vs_currency": vs,
                    "prices": observed,
                    "missing": missing,
                    "attempts": attempts,
                }),
            )
            .await
            .map_err(Self::audit_error)?;
        Ok(())
    }

    fn source_alert_key() -> String {
        format!("{AGENT}.source_unavailable/{SOURCE}")
    }

    async fn fire_source_alert(
        &self,
        message: &str,
        failures: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>, AgentError> {
        let key = Self::source_alert_key();
        if self.active(&key)?.is_some() {
            return Ok(None);
        }
        let last_success = self.health.source(SOURCE).and_then(|h| h.last_success);
        let alert = Alert {
            key,
            rule: "source_unavailable".to_owned(),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            summary: format!(
                "{SOURCE} unreachable: {failures} polls failed in a row, prices are stale ({message})"
            ),
            labels: BTreeMap::from([
                ("domain".to_owned(), AGENT.to_owned()),
                ("source".to_owned(), SOURCE.to_owned()),
            ]),
            evidence: serde_json::json!({
                "consecutive_failures": failures,
                "last_error": message,
                "last_success": last_success,
            }),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        self.emit(alert, None).await.map(Some)
    }

    async fn resolve_source_alert(&self, now: DateTime<Utc>) -> Result<Option<Alert>, AgentError> {
        let key = Self::source_alert_key();
        let Some(active) = self.active(&key)? else {
            return Ok(None);
        };
        let alert = Alert {
            status: AlertStatus::Resolved,
            summary: format!(
                "{SOURCE} is answering again; prices flow since {}",
                now.format("%H:%M:%S UTC")
            ),
            at: now,
            observed_at: now,
            ..active.alert
        };
        self.emit(alert, None).await.map(Some)
    }

    async fn evaluate_rule(
        &self,
        rule: &MoveAlertRule,
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>, AgentError> {
        let key = price_key(&rule.coin, &self.config.vs_currency);
        let Some(latest) = self
            .store
            .series()
            .latest(&key)
            .map_err(Self::store_error)?
        else {
            return Ok(None);
        };
        let window_start =
            latest.at - chrono::Duration::from_std(rule.window).unwrap_or(chrono::Duration::MAX);
        let window = self
            .store
            .series()
            .range(
                &key,
                window_start,
                latest.at + chrono::Duration::milliseconds(1),
            )
            .map_err(Self::store_error)?;
        let alert_key = format!("{AGENT}.price_move/{}", rule.coin);
        let active = self.active(&alert_key)?;
        let verdict = evaluate_move(
            rule,
            &window,
            latest,
            active.as_ref().and_then(|active| active.reference),
        );
        let sym = symbol(&rule.coin);
        let vs = self.config.vs_currency.to_uppercase();
        match (verdict, active) {
            (
                MoveVerdict::Fire {
                    reference,
                    change_percent,
                },
                _,
            ) => {
                let direction = if change_percent < 0.0 { "fell" } else { "rose" };
                let alert = Alert {
                    key: alert_key,
                    rule: "price_move".to_owned(),
                    status: AlertStatus::Firing,
                    severity: rule.severity,
                    summary: format!(
                        "{sym} {direction} {:.1}% within {}: {:.4} -> {:.4} {vs}",
                        change_percent.abs(),
                        crate::duration::format(rule.window),
                        reference.value,
                        latest.value
                    ),
                    labels: BTreeMap::from([
                        ("domain".to_owned(), AGENT.to_owned()),
                        ("coin".to_owned(), rule.coin.clone()),
                        ("symbol".to_owned(), sym.clone()),
                    ]),
                    evidence: serde_json::json!({
                        "reference": reference,
                        "latest": latest,
                        "change_percent": change_percent,
                        "threshold_percent": rule.percent,
                        "window": crate::duration::format(rule.window),
                        "samples_in_window": window.len(),
                    }),
                    starts_at: latest.at,
                    at: now,
                    observed_at: latest.at,
                };
                self.emit(alert, Some(reference)).await.map(Some)
            }
            (MoveVerdict::Recovered { change_percent }, Some(active)) => {
                let reference = active.reference.map(|r| r.value).unwrap_or(latest.value);
                let alert = Alert {
                    status: AlertStatus::Resolved,
                    summary: format!(
                        "{sym} recovered: {:.4} {vs} is within {:.1}% of {:.4} (now {:+.1}%)",
                        latest.value,
                        rule.recovery_percent(),
                        reference,
                        change_percent
                    ),
                    evidence: serde_json::json!({
                        "reference": active.reference,
                        "latest": latest,
                        "change_percent": change_percent,
                        "recovery_percent": rule.recovery_percent(),
                    }),
                    at: now,
                    observed_at: latest.at,
                    ..active.alert
                };
                self.emit(alert, None).await.map(Some)
            }
            _ => Ok(None),
        }
    }
}

impl DomainAgent for MarketAgent {
    fn name(&self) -> &str {
        AGENT
    }

    fn tick(&mut self) -> TickFuture<'_> {
        Box::pin(self.run_tick())
    }
}

#[cfg(test)]
mod tests;

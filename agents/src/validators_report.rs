//! What the validators agent has stored, as people read it: the summary table, one
//! validator's detail (`command-center validators`, `GET /v1/validators`), earnings by period
//! (`command-center earnings`, `GET /v1/earnings`) and the network ranking
//! (`command-center ranking`, `GET /v1/ranking`). Reads only.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use memory::{Aggregation, Resolution, Sample, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::alert::{ACTIVE_PREFIX, ActiveAlert};
use crate::validators::cycle::{RankMemory, SetPosition};
use crate::validators::round::{
    APY_SERIES, EFFICIENCY_SERIES, IN_NEXT_SET_SERIES, POSITION_STATE_PREFIX, RANK_STATE_PREFIX,
    REWARD_SERIES, REWARD_USD_SERIES, STAKE_SERIES, validator_series,
};
use crate::validators::{
    BALANCE_SERIES, CPU_BUSY_SERIES, DISK_SERIES, IN_SET_SERIES, MEMORY_AVAILABLE_SERIES,
    SYNC_LAG_SERIES, balance_key, in_set_key, sync_lag_key,
};

/// A firing alert, briefly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiringBrief {
    pub key: String,
    pub severity: String,
    pub summary: String,
    pub since: DateTime<Utc>,
}

/// One row of the summary table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorSummary {
    pub name: String,
    pub balance_ton: Option<Sample>,
    /// Balance change over the last 24 hours of samples, in TON.
    pub balance_change_24h_ton: Option<f64>,
    pub in_current_set: Option<bool>,
    /// Elected for the next round (only between an election's end and the round's start).
    #[serde(default)]
    pub in_next_set: Option<bool>,
    /// Rank by weight in the current set (1 = heaviest) and the set's size.
    #[serde(default)]
    pub rank: Option<usize>,
    #[serde(default)]
    pub set_size: Option<usize>,
    /// Share of the set's weight, in percent.
    #[serde(default)]
    pub share_percent: Option<f64>,
    /// The stake frozen for the current round, in TON.
    #[serde(default)]
    pub stake_ton: Option<f64>,
    /// Efficiency this round (toncenter QoS), in percent.
    #[serde(default)]
    pub efficiency_percent: Option<f64>,
    pub sync_lag_seconds: Option<f64>,
    /// Latest used share per mountpoint.
    pub disk_used_percent: BTreeMap<String, f64>,
    /// Growth of the used share per day over the last 24 hours of samples (the validator
    /// database grows), per mountpoint.
    #[serde(default)]
    pub disk_growth_percent_per_day: BTreeMap<String, f64>,
    /// Available memory, in percent of the total; CPU busy share between the last scrapes.
    #[serde(default)]
    pub memory_available_percent: Option<f64>,
    #[serde(default)]
    pub cpu_busy_percent: Option<f64>,
    pub firing: Vec<FiringBrief>,
}

/// One validator in detail: the summary plus hourly balance history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidatorDetail {
    pub summary: ValidatorSummary,
    /// Last balance of each hour over the last 7 days.
    pub balance_hourly: Vec<Sample>,
}

/// Names of the validators the agent has data for, sorted.
pub fn names(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = store
        .series()
        .list()?
        .into_iter()
        .filter(|key| {
            [BALANCE_SERIES, IN_SET_SERIES, SYNC_LAG_SERIES, DISK_SERIES]
                .contains(&key.name.as_str())
        })
        .filter_map(|key| key.labels.get("validator").cloned())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

fn firing(store: &Store, name: &str) -> Result<Vec<FiringBrief>, StoreError> {
    let mut briefs: Vec<FiringBrief> = store
        .state()
        .scan_prefix::<ActiveAlert>(ACTIVE_PREFIX)?
        .into_iter()
        .map(|(_, active)| active.alert)
        .filter(|alert| alert.label("validator") == name)
        .map(|alert| FiringBrief {
            key: alert.key,
            severity: alert.severity.to_string(),
            summary: alert.summary,
            since: alert.starts_at,
        })
        .collect();
    briefs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(briefs)
}

/// The summary of one validator at `now`.
pub fn summary(
    store: &Store,
    name: &str,
    now: DateTime<Utc>,
) -> Result<ValidatorSummary, StoreError> {
    let series = store.series();
    let balance = series.latest(&balance_key(name))?;
    let day_ago = series
        .range(
            &balance_key(name),
            now - Duration::hours(24),
            now + Duration::seconds(1),
        )?
        .first()
        .copied();
    let balance_change_24h_ton = match (balance, day_ago) {
        (Some(latest), Some(first)) if latest.at > first.at => Some(latest.value - first.value),
        _ => None,
    };
    let mut disk_used_percent = BTreeMap::new();
    let mut disk_growth_percent_per_day = BTreeMap::new();
    for key in series.list()? {
        if key.name == DISK_SERIES
            && key.labels.get("validator").map(String::as_str) == Some(name)
            && let (Some(mountpoint), Some(sample)) =
                (key.labels.get("mountpoint"), series.latest(&key)?)
        {
            disk_used_percent.insert(mountpoint.clone(), sample.value);
            let day = series.range(&key, now - Duration::hours(24), now + Duration::seconds(1))?;
            if let (Some(first), Some(last)) = (day.first(), day.last()) {
                let hours = (last.at - first.at).num_seconds() as f64 / 3600.0;
                // At least an hour of samples, or the rate is noise.
                if hours >= 1.0 {
                    disk_growth_percent_per_day.insert(
                        mountpoint.clone(),
                        (last.value - first.value) / hours * 24.0,
                    );
                }
            }
        }
    }
    let position = store
        .state()
        .get::<SetPosition>(&format!("{POSITION_STATE_PREFIX}{name}"))?;
    let in_current_set = series.latest(&in_set_key(name))?.map(|s| s.value >= 0.5);
    // The position is only meaningful while the validator is in the set.
    let position = position.filter(|_| in_current_set == Some(true));
    let latest = |series_name: &str| -> Result<Option<f64>, StoreError> {
        Ok(series
            .latest(&validator_series(series_name, name))?
            .map(|sample| sample.value))
    };
    Ok(ValidatorSummary {
        name: name.to_owned(),
        balance_ton: balance,
        balance_change_24h_ton,
        in_current_set,
        in_next_set: latest(IN_NEXT_SET_SERIES)?.map(|value| value >= 0.5),
        rank: position.as_ref().map(|at| at.rank),
        set_size: position.as_ref().map(|at| at.set_size),
        share_percent: position.as_ref().map(|at| at.share_percent),
        stake_ton: latest(STAKE_SERIES)?,
        efficiency_percent: latest(EFFICIENCY_SERIES)?,
        memory_available_percent: latest(MEMORY_AVAILABLE_SERIES)?,
        cpu_busy_percent: latest(CPU_BUSY_SERIES)?,
        disk_growth_percent_per_day,
        sync_lag_seconds: series.latest(&sync_lag_key(name))?.map(|s| s.value),
        disk_used_percent,
        firing: firing(store, name)?,
    })
}

/// Every validator's summary.
pub fn summaries(store: &Store, now: DateTime<Utc>) -> Result<Vec<ValidatorSummary>, StoreError> {
    names(store)?
        .iter()
        .map(|name| summary(store, name, now))
        .collect()
}

/// One validator in detail, or None when the agent has no data for it.
pub fn detail(
    store: &Store,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<ValidatorDetail>, StoreError> {
    if !names(store)?.iter().any(|known| known == name) {
        return Ok(None);
    }
    let balance_hourly = store.series().downsample(
        &balance_key(name),
        now - Duration::days(7),
        now + Duration::seconds(1),
        Resolution::Hour,
        Aggregation::Last,
    )?;
    Ok(Some(ValidatorDetail {
        summary: summary(store, name, now)?,
        balance_hourly,
    }))
}

/// An earnings period, counted back from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// `day`, `week` or `month` (also `24h`, `7d`, `30d`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" | "24h" | "1d" => Ok(Period::Day),
            "week" | "weekly" | "7d" => Ok(Period::Week),
            "month" | "monthly" | "30d" => Ok(Period::Month),
            other => Err(format!("unknown period {other:?}; use day, week or month")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn length(self) -> Duration {
        match self {
            Period::Day => Duration::days(1),
            Period::Week => Duration::days(7),
            Period::Month => Duration::days(30),
        }
    }
}

/// One validator's (or the total's) earnings in a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarningsRow {
    pub name: String,
    /// Rewards of the stakes the elector released in the period.
    pub reward_ton: f64,
    /// The same at each day's TON price; `None` when a reward has no price on record.
    pub reward_usd: Option<f64>,
    /// Stakes released (rounds paid) in the period.
    pub rounds: usize,
    /// The period before, for the trend.
    pub previous_reward_ton: f64,
    /// Change against the period before, in percent (`None` when that earned nothing).
    pub trend_percent: Option<f64>,
    /// Mean APY of the rounds paid in the period (else the latest known), in percent.
    pub apy_percent: Option<f64>,
}

/// Earnings by period: per validator, the total, and the total per day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarningsReport {
    pub period: Period,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub validators: Vec<EarningsRow>,
    pub total: EarningsRow,
    /// Total TON earned per UTC day in the period (days with earnings only).
    pub daily_ton: Vec<Sample>,
}

/// A sum that is 0.0, not -0.0, when empty (f64's `Sum` starts at -0.0).
fn total(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |sum, value| sum + value)
}

fn trend(current: f64, previous: f64) -> Option<f64> {
    (previous > 0.0).then(|| (current - previous) / previous * 100.0)
}

fn earnings_row(
    store: &Store,
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    length: Duration,
) -> Result<EarningsRow, StoreError> {
    let series = store.series();
    let rewards = series.range(&validator_series(REWARD_SERIES, name), from, to)?;
    let usd = series.range(&validator_series(REWARD_USD_SERIES, name), from, to)?;
    let previous: f64 = series
        .range(&validator_series(REWARD_SERIES, name), from - length, from)?
        .iter()
        .map(|sample| sample.value)
        .fold(0.0, |sum, value| sum + value);
    let apys = series.range(&validator_series(APY_SERIES, name), from, to)?;
    let apy_percent = if apys.is_empty() {
        series
            .latest(&validator_series(APY_SERIES, name))?
            .map(|sample| sample.value)
    } else {
        Some(apys.iter().map(|sample| sample.value).sum::<f64>() / apys.len() as f64)
    };
    let reward_ton = total(rewards.iter().map(|sample| sample.value));
    Ok(EarningsRow {
        name: name.to_owned(),
        reward_ton,
        reward_usd: (usd.len() == rewards.len()).then(|| total(usd.iter().map(|s| s.value))),
        rounds: rewards.len(),
        previous_reward_ton: previous,
        trend_percent: trend(reward_ton, previous),
        apy_percent,
    })
}

/// Earnings of every validator over the last `period` before `now`.
pub fn earnings(
    store: &Store,
    period: Period,
    now: DateTime<Utc>,
) -> Result<EarningsReport, StoreError> {
    let to = now + Duration::seconds(1);
    let from = to - period.length();
    let mut validators = Vec::new();
    let mut daily: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for name in names(store)? {
        validators.push(earnings_row(store, &name, from, to, period.length())?);
        for day in store.series().downsample(
            &validator_series(REWARD_SERIES, &name),
            from,
            to,
            Resolution::Day,
            Aggregation::Sum,
        )? {
            *daily.entry(day.at).or_default() += day.value;
        }
    }
    let reward_ton = total(validators.iter().map(|row| row.reward_ton));
    let previous = total(validators.iter().map(|row| row.previous_reward_ton));
    let apys: Vec<f64> = validators
        .iter()
        .filter_map(|row| row.apy_percent)
        .collect();
    let total = EarningsRow {
        name: "total".to_owned(),
        reward_ton,
        reward_usd: validators
            .iter()
            .map(|row| row.reward_usd)
            .try_fold(0.0, |sum, usd| usd.map(|usd| sum + usd)),
        rounds: validators.iter().map(|row| row.rounds).sum(),
        previous_reward_ton: previous,
        trend_percent: trend(reward_ton, previous),
        apy_percent: (!apys.is_empty()).then(|| apys.iter().sum::<f64>() / apys.len() as f64),
    };
    Ok(EarningsReport {
        period,
        from,
        to,
        validators,
        total,
        daily_ton: daily
            .into_iter()
            .map(|(at, value)| Sample { at, value })
            .collect(),
    })
}

/// One of the company's validators in the network ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingRow {
    pub name: String,
    /// Rank by weight in the current set (1 = heaviest); `None` when not in it.
    pub rank: Option<usize>,
    pub set_size: Option<usize>,
    pub share_percent: Option<f64>,
    pub stake_ton: Option<f64>,
    /// Rank in the previous round the agent saw.
    pub previous_rank: Option<usize>,
    pub in_current_set: Option<bool>,
}

/// The company's validators by network rank (validators outside the set last).
pub fn ranking(store: &Store, now: DateTime<Utc>) -> Result<Vec<RankingRow>, StoreError> {
    let mut rows = Vec::new();
    for summary in summaries(store, now)? {
        let ranks = store
            .state()
            .get::<RankMemory>(&format!("{RANK_STATE_PREFIX}{}", summary.name))?
            .unwrap_or_default();
        rows.push(RankingRow {
            previous_rank: ranks.last_two().map(|(previous, _)| previous),
            name: summary.name,
            rank: summary.rank,
            set_size: summary.set_size,
            share_percent: summary.share_percent,
            stake_ton: summary.stake_ton,
            in_current_set: summary.in_current_set,
        });
    }
    rows.sort_by_key(|row| (row.rank.unwrap_or(usize::MAX), row.name.clone()));
    Ok(rows)
}

#[cfg(test)]
mod tests;

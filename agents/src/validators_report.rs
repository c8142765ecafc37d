//! What the validators agent has stored, as people read it: the summary table and one
//! validator's detail (`command-center validators`, `GET /v1/validators`). Reads only.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use memory::{Aggregation, Resolution, Sample, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::alert::{ACTIVE_PREFIX, ActiveAlert};
use crate::validators::{
    BALANCE_SERIES, DISK_SERIES, IN_SET_SERIES, SYNC_LAG_SERIES, balance_key, in_set_key,
    sync_lag_key,
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
    pub sync_lag_seconds: Option<f64>,
    /// Latest used share per mountpoint.
    pub disk_used_percent: BTreeMap<String, f64>,
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
    for key in series.list()? {
        if key.name == DISK_SERIES
            && key.labels.get("validator").map(String::as_str) == Some(name)
            && let (Some(mountpoint), Some(sample)) =
                (key.labels.get("mountpoint"), series.latest(&key)?)
        {
            disk_used_percent.insert(mountpoint.clone(), sample.value);
        }
    }
    Ok(ValidatorSummary {
        name: name.to_owned(),
        balance_ton: balance,
        balance_change_24h_ton,
        in_current_set: series.latest(&in_set_key(name))?.map(|s| s.value >= 0.5),
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

#[cfg(test)]
mod tests;

//! The ledger as daily series, forecast: revenue per stream, expenses per category, net cash
//! flow and the cash balance, with 80% and 95% intervals; runway with an interval; anomalies
//! and the predictive runway alert; backtests of every series.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use memory::StoreError;
use memory::ledger::{Ledger, LedgerEntry};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::FinanceConfig;
use super::forecast::{
    self, Anomaly, AnomalyKind, BacktestReport, Forecast, Runway, first_breach, runway_from_balance,
};
use super::report::{MissingRate, UNATTRIBUTED, Valuer};
use crate::alert::{Alert, AlertStatus, Severity};

/// Mean days per month (365.25 / 12).
pub const DAYS_PER_MONTH: f64 = 30.4375;

/// Daily series over `from..=to` (one value per day, zeros on quiet days), in the reporting
/// currency: `revenue:<stream>` (money in), `expense:<category>` (money out, positive),
/// `net` (in minus out), and `balance` when the opening balance and date are configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DailySeries {
    pub from: Option<NaiveDate>,
    pub series: BTreeMap<String, Vec<f64>>,
    pub missing_rates: Vec<MissingRate>,
}

fn day_index(from: NaiveDate, date: NaiveDate) -> Option<usize> {
    usize::try_from(date.signed_duration_since(from).num_days()).ok()
}

/// The line an entry belongs to: `revenue:<stream>` or `expense:<category>`.
pub fn line_of(entry: &LedgerEntry, value: Decimal) -> String {
    if value.is_sign_negative() || entry.category.is_some() {
        format!(
            "expense:{}",
            entry.category.as_deref().unwrap_or(UNATTRIBUTED)
        )
    } else {
        format!(
            "revenue:{}",
            entry.stream.as_deref().unwrap_or(UNATTRIBUTED)
        )
    }
}

/// Builds the daily series of the `history_days` days up to `as_of` (not before the opening
/// date, when one is set).
pub fn daily_series(
    ledger: &Ledger,
    config: &FinanceConfig,
    as_of: NaiveDate,
    history_days: u64,
) -> Result<DailySeries, StoreError> {
    let mut from = as_of
        .checked_sub_days(Days::new(history_days.saturating_sub(1)))
        .unwrap_or(as_of);
    if let Some(opening) = config.opening_date
        && opening > from
    {
        from = opening.min(as_of);
    }
    let entries = ledger.entries(config.opening_date, Some(as_of))?;
    // A ledger younger than the window starts at its first entry, not with months of zeros.
    if let Some(first) = entries.first()
        && first.date > from
    {
        from = first.date;
    }
    let days = day_index(from, as_of).map_or(1, |index| index + 1);
    let valuer = Valuer::new(ledger, config);
    let (valued, missing_rates) = valuer.value_all(entries)?;
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut net = vec![0.0; days];
    let mut before_window = Decimal::ZERO;
    for (entry, value) in &valued {
        let Some(index) = day_index(from, entry.date) else {
            before_window += *value;
            continue;
        };
        let amount = value.to_f64().unwrap_or(0.0);
        let line = line_of(entry, *value);
        let signed = if line.starts_with("expense:") {
            -amount
        } else {
            amount
        };
        series.entry(line).or_insert_with(|| vec![0.0; days])[index] += signed;
        net[index] += amount;
    }
    if config.opening_date.is_some() {
        let start = (config.opening_balance + before_window)
            .to_f64()
            .unwrap_or(0.0);
        let balance = net
            .iter()
            .scan(start, |running, change| {
                *running += change;
                Some(*running)
            })
            .collect();
        series.insert("balance".to_owned(), balance);
    }
    series.insert("net".to_owned(), net);
    Ok(DailySeries {
        from: Some(from),
        series,
        missing_rates,
    })
}

/// One series forecast, or why it was not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesOutlook {
    pub name: String,
    pub history_days: usize,
    /// Sum of the last 30 days of history.
    pub last_30_days: f64,
    pub forecast: Option<Forecast>,
    /// Sums of the point forecast (and the 80% band of the daily values summed) over 30, 60
    /// and 90 days, when the horizon reaches.
    pub totals: Vec<HorizonTotal>,
    pub skipped: Option<String>,
    pub anomalies: Vec<Anomaly>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HorizonTotal {
    pub days: usize,
    pub point: f64,
    pub lower80: f64,
    pub upper80: f64,
}

/// When the 80% lower band of the cash balance falls below the floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloorBreach {
    /// `runway_floor_months` × monthly net burn.
    pub floor: f64,
    pub date: NaiveDate,
    pub days_ahead: usize,
    pub lower80: f64,
}

/// The forecast of everything, in the reporting currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outlook {
    pub currency: String,
    pub as_of: NaiveDate,
    pub horizon_days: usize,
    pub series: Vec<SeriesOutlook>,
    /// Months until the balance crosses zero: point, and where the 80% band's low and high
    /// edges cross (low comes first).
    pub runway: Option<Runway>,
    /// Mean net outflow per month over the last 90 days (negative: cash grows).
    pub monthly_net_burn: Option<f64>,
    pub floor_breach: Option<FloorBreach>,
    pub missing_rates: Vec<MissingRate>,
}

fn horizon_totals(forecast: &Forecast) -> Vec<HorizonTotal> {
    [30, 60, 90]
        .into_iter()
        .filter(|days| *days <= forecast.point.len())
        .map(|days| HorizonTotal {
            days,
            point: forecast.point[..days].iter().sum(),
            lower80: forecast.lower80[..days].iter().sum(),
            upper80: forecast.upper80[..days].iter().sum(),
        })
        .collect()
}

/// A series with money on fewer than half its days (weekly invoices, monthly rent and payroll)
/// is lumpy: a daily model sees mostly zeros and calls every payment a spike.
pub fn is_sparse(values: &[f64]) -> bool {
    let busy = values.iter().filter(|value| **value != 0.0).count();
    busy * 2 < values.len()
}

/// Sums of `size`-day buckets ending on the last day (the oldest days that do not fill a
/// bucket are left out), and the index of the first day counted.
pub fn bucket_sums(values: &[f64], size: usize) -> (Vec<f64>, usize) {
    let size = size.max(1);
    let start = values.len() % size;
    (
        values[start..]
            .chunks(size)
            .map(|bucket| bucket.iter().sum())
            .collect(),
        start,
    )
}

/// The days per bucket a line is modelled in: 1 for a dense series; 7 for a sparse one
/// (weekly invoices); 30 when even its weekly sums are mostly empty (monthly bills, payroll)
/// and there are eight 30-day buckets of history. Too short for buckets: 1.
pub fn bucket_size(values: &[f64]) -> usize {
    if !is_sparse(values) || values.len() < 7 * forecast::MIN_POINTS {
        return 1;
    }
    let (weeks, _) = bucket_sums(values, 7);
    if !is_sparse(&weeks) || values.len() < 30 * forecast::MIN_POINTS {
        7
    } else {
        30
    }
}

fn bucket_name(size: usize) -> &'static str {
    match size {
        1 => "daily",
        7 => "weekly sums",
        _ => "30-day sums",
    }
}

/// Forecast and anomalies of one line. Dense ([`bucket_size`] 1): anomalies by day, and the
/// forecast of the series with one-day spikes replaced ([`without_spikes`]). Lumpy: both on
/// 7- or 30-day sums (no anomalies for 30-day sums), the forecast spread evenly over each bucket's days (so sums over 30, 60
/// or 90 days are right, not the day a bill falls on), an anomaly reported on its bucket's last
/// day.
pub fn forecast_line(
    values: &[f64],
    horizon: usize,
    sigmas: f64,
) -> (Result<Forecast, forecast::ForecastError>, Vec<Anomaly>) {
    let size = bucket_size(values);
    if size == 1 {
        // The level shifts found here are the ones the forecast adjusts for.
        let spikes = forecast::anomalies(values, sigmas);
        let result = forecast::forecast_after(&without_spikes(values, &spikes), horizon, &spikes);
        return (result, spikes);
    }
    let (sums, start) = bucket_sums(values, size);
    // 30-day windows do not follow calendar months, so a window with two paydays or none is
    // no anomaly: lines billed monthly are not checked for spikes (see docs/finance.md).
    let (anomalies, result) = if size == 30 {
        (
            Vec::new(),
            forecast::forecast(&sums, horizon.div_ceil(size)),
        )
    } else {
        let found = forecast::anomalies(&sums, sigmas);
        let result = forecast::forecast_after(&sums, horizon.div_ceil(size), &found);
        (found, result)
    };
    let anomalies = anomalies
        .into_iter()
        .map(|mut anomaly| {
            anomaly.index = start + anomaly.index * size + size - 1;
            anomaly.reason = format!("{} to this day: {}", bucket_name(size), anomaly.reason);
            anomaly
        })
        .collect();
    let result = result.map(|buckets| {
        let daily = |band: &[f64]| -> Vec<f64> {
            (0..horizon)
                .map(|day| band.get(day / size).copied().unwrap_or(0.0) / size as f64)
                .collect()
        };
        Forecast {
            model: format!("{}, {}", bucket_name(size), buckets.model),
            point: daily(&buckets.point),
            lower80: daily(&buckets.lower80),
            upper80: daily(&buckets.upper80),
            lower95: daily(&buckets.lower95),
            upper95: daily(&buckets.upper95),
            seasonal_periods: buckets.seasonal_periods,
        }
    });
    (result, anomalies)
}

/// Net cash flow as revenue lines minus expense lines. Its band puts every revenue line at
/// its low edge and every expense at its high edge (and the reverse): as if all lines erred
/// the same bad way at once, wider than independence, the safe side for cash.
pub fn compose_net(revenue: &[&Forecast], expenses: &[&Forecast], horizon: usize) -> Forecast {
    let sum = |forecasts: &[&Forecast], pick: fn(&Forecast) -> &Vec<f64>| -> Vec<f64> {
        (0..horizon)
            .map(|day| {
                forecasts
                    .iter()
                    .map(|f| pick(f).get(day).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect()
    };
    let minus =
        |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.iter().zip(&b).map(|(a, b)| a - b).collect() };
    Forecast {
        model: format!(
            "sum of {} revenue and {} expense lines",
            revenue.len(),
            expenses.len()
        ),
        point: minus(sum(revenue, |f| &f.point), sum(expenses, |f| &f.point)),
        lower80: minus(sum(revenue, |f| &f.lower80), sum(expenses, |f| &f.upper80)),
        upper80: minus(sum(revenue, |f| &f.upper80), sum(expenses, |f| &f.lower80)),
        lower95: minus(sum(revenue, |f| &f.lower95), sum(expenses, |f| &f.upper95)),
        upper95: minus(sum(revenue, |f| &f.upper95), sum(expenses, |f| &f.lower95)),
        seasonal_periods: Vec::new(),
    }
}

/// Forecasts every revenue and expense line of `series` (cut to its first `length` days) and
/// composes the net; the error of the first line that cannot be forecast otherwise.
fn net_from_lines(
    series: &BTreeMap<String, Vec<f64>>,
    length: usize,
    horizon: usize,
    sigmas: f64,
) -> Result<Forecast, forecast::ForecastError> {
    let lines: Vec<(&String, Result<Forecast, forecast::ForecastError>)> = series
        .iter()
        .filter(|(name, _)| is_line(name))
        .map(|(name, values)| {
            let history = &values[..length.min(values.len())];
            (name, forecast_line(history, horizon, sigmas).0)
        })
        .collect();
    compose_lines(
        lines.iter().map(|(name, result)| (name.as_str(), result)),
        horizon,
    )
}

/// A revenue or expense line (not `net` or `balance`).
fn is_line(name: &str) -> bool {
    name.starts_with("revenue:") || name.starts_with("expense:")
}

/// The net of forecast lines; the first line's error when one could not be forecast.
fn compose_lines<'a>(
    lines: impl Iterator<Item = (&'a str, &'a Result<Forecast, forecast::ForecastError>)>,
    horizon: usize,
) -> Result<Forecast, forecast::ForecastError> {
    let mut revenue = Vec::new();
    let mut expenses = Vec::new();
    for (name, result) in lines {
        let forecast = result.as_ref().map_err(Clone::clone)?;
        if name.starts_with("revenue:") {
            revenue.push(forecast);
        } else {
            expenses.push(forecast);
        }
    }
    Ok(compose_net(&revenue, &expenses, horizon))
}

/// The series with each one-day spike or drop replaced by the median of the week either side
/// of it, so a one-off payment is reported (as an anomaly) but not extrapolated. Level shifts
/// are kept: they are the new normal.
pub fn without_spikes(values: &[f64], anomalies: &[Anomaly]) -> Vec<f64> {
    let mut cleaned = values.to_vec();
    for anomaly in anomalies {
        if anomaly.kind == AnomalyKind::LevelShift {
            continue;
        }
        let from = anomaly.index.saturating_sub(7);
        let to = (anomaly.index + 8).min(values.len());
        let mut around: Vec<f64> = (from..to)
            .filter(|index| *index != anomaly.index)
            .map(|index| values[index])
            .collect();
        if around.is_empty() {
            continue;
        }
        around.sort_by(f64::total_cmp);
        if let Some(slot) = cleaned.get_mut(anomaly.index) {
            *slot = around[around.len() / 2];
        }
    }
    cleaned
}

/// The cash balance ahead: today's balance plus the running sum of the net cash flow forecast.
/// The bands add up the net forecast's band half-widths day by day, as if every day's error
/// went the same way (ETS errors are carried forward by the level, so they are strongly
/// correlated): wider than assuming independent days, which is the safe side for a runway.
pub fn balance_from_net(balance: f64, net: &Forecast) -> Forecast {
    let running = |values: &[f64]| -> Vec<f64> {
        values
            .iter()
            .scan(balance, |total, value| {
                *total += value;
                Some(*total)
            })
            .collect()
    };
    Forecast {
        model: format!("balance + cumulative {}", net.model),
        point: running(&net.point),
        lower80: running(&net.lower80),
        upper80: running(&net.upper80),
        lower95: running(&net.lower95),
        upper95: running(&net.upper95),
        seasonal_periods: net.seasonal_periods.clone(),
    }
}

/// Forecasts every series of the last `history_days` days for `horizon_days` days, finds
/// anomalies in the last `recent_days` of each, and checks the cash floor.
pub fn outlook(
    ledger: &Ledger,
    config: &FinanceConfig,
    as_of: NaiveDate,
    history_days: u64,
    horizon_days: usize,
) -> Result<Outlook, StoreError> {
    let daily = daily_series(ledger, config, as_of, history_days)?;
    let mut series = Vec::new();
    let mut runway = None;
    let mut balance_forecast = None;
    // Each line is forecast once; the net and the balance are composed from those.
    let mut lines: BTreeMap<&str, (Result<Forecast, forecast::ForecastError>, Vec<Anomaly>)> =
        daily
            .series
            .iter()
            .filter(|(name, _)| is_line(name))
            .map(|(name, values)| {
                (
                    name.as_str(),
                    forecast_line(values, horizon_days, config.anomaly_sigmas),
                )
            })
            .collect();
    let net_forecast = compose_lines(
        lines.iter().map(|(name, (result, _))| (*name, result)),
        horizon_days,
    );
    for (name, values) in &daily.series {
        let last_30_days = values.iter().rev().take(30).sum();
        let (result, anomalies) = match name.as_str() {
            "net" => (net_forecast.clone(), Vec::new()),
            "balance" => (
                net_forecast
                    .clone()
                    .map(|net| balance_from_net(values.last().copied().unwrap_or(0.0), &net)),
                Vec::new(),
            ),
            line => lines
                .remove(line)
                .unwrap_or_else(|| forecast_line(values, horizon_days, config.anomaly_sigmas)),
        };
        let (forecast, skipped) = match result {
            Ok(forecast) => (Some(forecast), None),
            Err(error) => (None, Some(error.to_string())),
        };
        if name == "balance"
            && let Some(forecast) = &forecast
        {
            runway = Some(runway_from_balance(forecast, DAYS_PER_MONTH));
            balance_forecast = Some(forecast.clone());
        }
        series.push(SeriesOutlook {
            name: name.clone(),
            history_days: values.len(),
            last_30_days,
            totals: forecast.as_ref().map(horizon_totals).unwrap_or_default(),
            forecast,
            skipped,
            anomalies,
        });
    }
    let monthly_net_burn = daily.series.get("net").and_then(|net| {
        let recent: Vec<f64> = net.iter().rev().take(90).copied().collect();
        (!recent.is_empty())
            .then(|| -recent.iter().sum::<f64>() / recent.len() as f64 * DAYS_PER_MONTH)
    });
    let floor_breach = match (&balance_forecast, monthly_net_burn) {
        (Some(balance), Some(burn)) if burn > 0.0 => {
            let floor = config.runway_floor_months * burn;
            first_breach(&balance.lower80, floor).and_then(|index| {
                Some(FloorBreach {
                    floor,
                    date: as_of.checked_add_days(Days::new(index as u64 + 1))?,
                    days_ahead: index + 1,
                    lower80: balance.lower80[index],
                })
            })
        }
        _ => None,
    };
    Ok(Outlook {
        currency: config.reporting_currency.clone(),
        as_of,
        horizon_days,
        series,
        runway,
        monthly_net_burn,
        floor_breach,
        missing_rates: daily.missing_rates,
    })
}

/// Alerts from an outlook: the cash floor breach ahead, expense spikes and revenue drops or
/// downward level shifts within the last `recent_days` of history.
pub fn alerts(outlook: &Outlook, recent_days: usize, now: DateTime<Utc>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        std::iter::once(("domain", "finance"))
            .chain(pairs.iter().copied())
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    };
    if let Some(breach) = &outlook.floor_breach {
        alerts.push(Alert {
            key: "finance.cash_floor".to_owned(),
            rule: "cash_floor".to_owned(),
            status: AlertStatus::Firing,
            severity: if breach.days_ahead <= 30 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            summary: format!(
                "cash may fall below {:.0} {} (the runway floor) by {} ({} days ahead, 80% band)",
                breach.floor, outlook.currency, breach.date, breach.days_ahead
            ),
            labels: labels(&[]),
            evidence: serde_json::json!({
                "floor": breach.floor,
                "date": breach.date,
                "lower80": breach.lower80,
                "monthly_net_burn": outlook.monthly_net_burn,
                "runway": outlook.runway,
            }),
            starts_at: now,
            at: now,
            observed_at: now,
        });
    }
    for series in &outlook.series {
        let length = series.history_days;
        for anomaly in &series.anomalies {
            if anomaly.index + recent_days < length {
                continue;
            }
            let (rule, wanted) = if series.name.starts_with("expense:") {
                ("expense_spike", anomaly.kind == AnomalyKind::Spike)
            } else if series.name.starts_with("revenue:") {
                (
                    "revenue_drop",
                    anomaly.kind == AnomalyKind::Drop
                        || (anomaly.kind == AnomalyKind::LevelShift
                            && anomaly.reason.contains("down")),
                )
            } else {
                continue;
            };
            if !wanted {
                continue;
            }
            let line = series.name.split_once(':').map_or("", |(_, line)| line);
            let days_ago = length.saturating_sub(anomaly.index + 1);
            alerts.push(Alert {
                key: format!("finance.{rule}/{line}"),
                rule: rule.to_owned(),
                status: AlertStatus::Firing,
                severity: Severity::Warning,
                summary: format!(
                    "{} {line}: {:.0} {} {} day(s) ago ({})",
                    if rule == "expense_spike" {
                        "expense spike in"
                    } else {
                        "revenue drop in"
                    },
                    anomaly.value,
                    outlook.currency,
                    days_ago,
                    anomaly.reason
                ),
                labels: labels(&[("line", line)]),
                evidence: serde_json::to_value(anomaly).unwrap_or_default(),
                starts_at: now,
                at: now,
                observed_at: now,
            });
        }
    }
    alerts
}

/// Backtest results of every series, as stored and journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestRun {
    pub as_of: NaiveDate,
    pub ran_at: DateTime<Utc>,
    pub horizon_days: usize,
    pub origins: usize,
    pub results: BTreeMap<String, BacktestReport>,
    /// Series too short or otherwise not evaluable, and why.
    pub skipped: BTreeMap<String, String>,
}

/// Rolling-origin backtest of every daily series (the balance excepted: it is the sum of net),
/// season 7 for MASE against the weekly seasonal naive forecast.
pub fn backtest_all(
    ledger: &Ledger,
    config: &FinanceConfig,
    as_of: NaiveDate,
    history_days: u64,
    horizon_days: usize,
    origins: usize,
    now: DateTime<Utc>,
) -> Result<BacktestRun, StoreError> {
    let daily = daily_series(ledger, config, as_of, history_days)?;
    let mut results = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    for (name, values) in &daily.series {
        if name == "balance" {
            continue;
        }
        let sigmas = config.anomaly_sigmas;
        let size = if name == "net" {
            1
        } else {
            bucket_size(values)
        };
        let (label, result) = if name == "net" {
            // The net forecast the cash projection uses: composed from the lines, each cut
            // at the origin.
            let forecaster = |history: &[f64], horizon: usize| {
                net_from_lines(&daily.series, history.len(), horizon, sigmas)
            };
            (
                name.clone(),
                forecast::backtest_with(values, horizon_days, origins, 7, forecaster),
            )
        } else if size == 1 {
            let forecaster =
                |history: &[f64], horizon: usize| forecast_line(history, horizon, sigmas).0;
            (
                name.clone(),
                forecast::backtest_with(values, horizon_days, origins, 7, forecaster),
            )
        } else {
            // A lumpy line is judged on the sums it is modelled in, against the naive
            // forecast "same as the last bucket": spreading a bill over its days is right for
            // totals and wrong for every single day.
            let (sums, _) = bucket_sums(values, size);
            (
                format!("{name} ({})", bucket_name(size)),
                forecast::backtest(&sums, horizon_days.div_ceil(size), origins, 1),
            )
        };
        match result {
            Ok(report) => {
                results.insert(label, report);
            }
            Err(error) => {
                skipped.insert(label, error.to_string());
            }
        }
    }
    Ok(BacktestRun {
        as_of,
        ran_at: now,
        horizon_days,
        origins,
        results,
        skipped,
    })
}

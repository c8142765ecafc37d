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
    let days = day_index(from, as_of).map_or(1, |index| index + 1);
    let valuer = Valuer::new(ledger, config);
    let (valued, missing_rates) =
        valuer.value_all(ledger.entries(config.opening_date, Some(as_of))?)?;
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
    let net_forecast = daily.series.get("net").map(|net| {
        let spikes = forecast::anomalies(net, config.anomaly_sigmas);
        forecast::forecast(&without_spikes(net, &spikes), horizon_days)
    });
    for (name, values) in &daily.series {
        let last_30_days = values.iter().rev().take(30).sum();
        let result = match (name.as_str(), &net_forecast) {
            ("net", Some(net)) => net.clone(),
            ("balance", Some(net)) => net
                .clone()
                .map(|net| balance_from_net(values.last().copied().unwrap_or(0.0), &net)),
            _ => {
                let spikes = forecast::anomalies(values, config.anomaly_sigmas);
                forecast::forecast(&without_spikes(values, &spikes), horizon_days)
            }
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
        let anomalies = if name == "balance" {
            Vec::new()
        } else {
            forecast::anomalies(values, config.anomaly_sigmas)
        };
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
            } else if series.name.starts_with("revenue:") || series.name == "net" {
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
            let line = series.name.split_once(':').map_or("net", |(_, line)| line);
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
        match forecast::backtest(values, horizon_days, origins, 7) {
            Ok(report) => {
                results.insert(name.clone(), report);
            }
            Err(error) => {
                skipped.insert(name.clone(), error.to_string());
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

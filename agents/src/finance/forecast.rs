//! Forecasts with prediction intervals, rolling-origin backtests, anomalies and cash runway over
//! daily series (`&[f64]`, index = day, no gaps), on the augurs crate.
//!
//! - [`forecast`]: MSTL (periods from [`detect_seasonality`]) with a non-seasonal AutoETS on the
//!   deseasonalised series when the series is seasonal, a non-seasonal AutoETS otherwise; 80 % and
//!   95 % intervals. [`forecast_with_periods`] takes the periods explicitly.
//! - [`backtest`] / [`backtest_with`]: rolling-origin evaluation (MAE, MASE, interval coverage)
//!   against the seasonal-naive forecast.
//! - [`anomalies`]: spikes and drops (robust z-score) and level shifts (Bayesian online
//!   changepoint detection, confirmed by the medians on either side).
//! - [`runway_from_balance`] / [`first_breach`]: when a forecast balance first goes below zero.
//!
//! Everything here is a pure function: no I/O, no clock, no randomness (the same input always gives
//! the same output). Intervals assume the model's errors are roughly Gaussian and independent; they
//! do not include the uncertainty of the seasonal components or of the model choice, so they are
//! somewhat too narrow on short or irregular series (see the backtest's coverage).

use std::borrow::Cow;

use augurs::changepoint::dist::NormalGamma;
use augurs::changepoint::{Detector as _, NormalGammaDetector};
use augurs::ets::{AutoETS, FittedAutoETS};
use augurs::mstl::{FittedTrendModel, MSTLModel, TrendModel};
use augurs::seasons::PeriodogramDetector;
use augurs::{Fit, Predict};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The fewest points [`forecast`] accepts.
pub const MIN_POINTS: usize = 8;

/// Seasonal periods [`detect_seasonality`] looks for, in days, with the tolerance (days) within
/// which a periodogram peak counts as that period: weekly and monthly.
const CANDIDATE_PERIODS: [(usize, u32); 2] = [(7, 1), (30, 2)];

/// A candidate period needs this many full cycles in the series to be detected.
const MIN_CYCLES: usize = 3;

/// A periodogram peak near a candidate period must have at least this fraction of the strongest
/// power in the periodogram.
const MIN_RELATIVE_POWER: f64 = 0.05;

/// Share of the (locally detrended) variance the seasonal profile must explain, at least; the
/// bar is raised on short series, where noise alone explains about `(period - 1) / n`.
const MIN_SEASONAL_STRENGTH: f64 = 0.2;

/// Half-width (days) of the centred rolling median that spikes are measured against (15 days).
const LOCAL_WINDOW: usize = 7;

/// Days compared on either side of a level shift; also the least distance between two shifts.
const SHIFT_WINDOW: usize = 14;

/// Robust sigmas a level shift must have for [`forecast`] to adjust the history before it.
pub const LEVEL_SHIFT_SIGMAS: f64 = 4.0;

/// Expected run length (days) between changepoints, the prior of the changepoint detector.
const CHANGEPOINT_HAZARD: f64 = 250.0;

/// Scale from the median absolute deviation to the standard deviation of a normal distribution.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// A forecast for the days after the last observation: `point[0]` is the day after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The model that produced it, e.g. `AutoETS(A,Ad,N)` (error, trend, season; `d` =
    /// damped), `MSTL[7,30]+AutoETS(M,A,N)`, `MSTL[7]+Constant` (exactly periodic) or `Constant`.
    pub model: String,
    /// Point forecasts (the conditional mean), one per day of the horizon.
    pub point: Vec<f64>,
    /// Lower bound of the 80 % prediction interval.
    pub lower80: Vec<f64>,
    /// Upper bound of the 80 % prediction interval.
    pub upper80: Vec<f64>,
    /// Lower bound of the 95 % prediction interval.
    pub lower95: Vec<f64>,
    /// Upper bound of the 95 % prediction interval.
    pub upper95: Vec<f64>,
    /// Seasonal periods (days) the model removed before forecasting the rest; empty for a
    /// non-seasonal model.
    pub seasonal_periods: Vec<usize>,
}

/// Why a forecast or a backtest could not be made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// The series is too short for the model (or for the backtest's windows).
    #[error("series too short: {have} points, need at least {need}")]
    TooShort {
        /// Points in the series.
        have: usize,
        /// Points needed.
        need: usize,
    },
    /// A value is NaN or infinite.
    #[error("value at index {index} is not a finite number")]
    NotFinite {
        /// Index of the first such value.
        index: usize,
    },
    /// The model could not be built or fitted (bad arguments, or the fit failed).
    #[error("model: {0}")]
    Model(String),
}

/// Seasonal periods (days) of a daily series: 7 (weekly) and/or 30 (monthly), sorted; empty when
/// neither is there.
///
/// A period is reported when (1) the series holds at least three full cycles of it, (2) the
/// Welch periodogram (augurs-seasons) of the linearly detrended series has a peak within ±1 day
/// of 7 or ±2 days of 30 with at least 5 % of the periodogram's strongest power, and (3) a
/// classical decomposition confirms it: after removing a centred moving average of one period,
/// the mean profile by phase explains at least 20 % of the variance (more on short series, where
/// noise alone explains about `(period - 1) / n`). The third test keeps noise and random walks,
/// whose strongest periodogram peaks can land anywhere, from being called seasonal.
///
/// Limits: only these two periods are considered (other cycles are ignored); a series with
/// non-finite values, or shorter than 21 points, gives an empty list; a weak monthly cycle next to
/// a strong weekly one can be missed, since the weekly variance counts against it.
pub fn detect_seasonality(series: &[f64]) -> Vec<usize> {
    let n = series.len();
    if n < MIN_CYCLES * CANDIDATE_PERIODS[0].0 || series.iter().any(|y| !y.is_finite()) {
        return Vec::new();
    }
    let detrended = detrend_linear(series);
    if detrended
        .iter()
        .all(|r| r.abs() <= f64::EPSILON * scale_of(series))
    {
        return Vec::new();
    }
    let periodogram = PeriodogramDetector::builder()
        .min_period(4)
        .build()
        .periodogram(&detrended);
    let strongest = periodogram
        .powers
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .fold(0.0_f64, f64::max);
    if strongest <= 0.0 {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (period, tolerance) in CANDIDATE_PERIODS {
        if n < MIN_CYCLES * period {
            continue;
        }
        let lo = period as u32 - tolerance;
        let hi = period as u32 + tolerance;
        let peak = periodogram
            .periods
            .iter()
            .zip(&periodogram.powers)
            .filter(|(p, power)| (lo..=hi).contains(*p) && power.is_finite())
            .map(|(_, power)| *power)
            .fold(0.0_f64, f64::max);
        if peak < MIN_RELATIVE_POWER * strongest {
            continue;
        }
        if let Some(strength) = seasonal_strength(series, period) {
            let noise_share = (period as f64 - 1.0) / (n - period) as f64;
            if strength >= MIN_SEASONAL_STRENGTH.max(3.0 * noise_share) {
                found.push(period);
            }
        }
    }
    found
}

/// Forecasts `horizon` days after the end of `series`, with the seasonal periods chosen by
/// [`detect_seasonality`]: MSTL with a non-seasonal AutoETS on the deseasonalised series when
/// seasonal, a non-seasonal AutoETS otherwise (see [`forecast_with_periods`] for the details).
/// A level shift in the history is taken as the new normal: the days before it are moved by it
/// first (the model name then ends in ` (level-adjusted)`).
///
/// # Errors
///
/// [`ForecastError::TooShort`] under [`MIN_POINTS`] points, [`ForecastError::NotFinite`] on a NaN
/// or infinite value, [`ForecastError::Model`] when the model cannot be fitted.
pub fn forecast(series: &[f64], horizon: usize) -> Result<Forecast, ForecastError> {
    check_series(series)?;
    forecast_after(series, horizon, &anomalies(series, LEVEL_SHIFT_SIGMAS))
}

/// [`forecast`] with the anomalies of the series already found (by [`anomalies`], at any
/// threshold): its level shifts are the ones adjusted for, so a caller that looked for
/// anomalies anyway does not look twice.
///
/// # Errors
///
/// As [`forecast`].
pub fn forecast_after(
    series: &[f64],
    horizon: usize,
    found: &[Anomaly],
) -> Result<Forecast, ForecastError> {
    check_series(series)?;
    let (adjusted, shifts) = level_adjusted(series, found);
    let periods = detect_seasonality(&adjusted);
    let mut forecast = forecast_with_periods(&adjusted, horizon, &periods)?;
    if shifts > 0 {
        forecast.model.push_str(" (level-adjusted)");
    }
    Ok(forecast)
}

/// The series with the days before each level shift of `found` moved by the shift, so the history reads as if the level
/// had always been today's: a model fitted to it forecasts the new level with its usual
/// smoothing, instead of learning from the jump that the level wanders (a large smoothing
/// weight, and forecasts as noisy as the last days). The shape before the shift (trend,
/// seasons) is kept. Also the number of shifts.
fn level_adjusted(series: &[f64], found: &[Anomaly]) -> (Vec<f64>, usize) {
    let mut adjusted = series.to_vec();
    let mut count = 0;
    for anomaly in found {
        if let (AnomalyKind::LevelShift, Some(shift)) = (&anomaly.kind, anomaly.shift) {
            for value in adjusted.iter_mut().take(anomaly.index) {
                *value += shift;
            }
            count += 1;
        }
    }
    (adjusted, count)
}

/// Forecasts `horizon` days after the end of `series` with the given seasonal periods: MSTL
/// decomposition (augurs-mstl) with those periods, then AutoETS (augurs-ets, error additive or
/// multiplicative, trend none, additive or damped, no seasonality; chosen by AICc) on the trend
/// plus remainder, the last cycle of each seasonal component added back to the forecast and its
/// intervals. With no periods, AutoETS on the series itself.
///
/// Intervals are AutoETS's analytical 80 % and 95 % intervals (Hyndman et al., 2008, class 1 and
/// 2 models). A constant series (no variation at all, where ETS has nothing to estimate) gives a
/// flat forecast with zero-width intervals and model `Constant`.
///
/// # Errors
///
/// [`ForecastError::TooShort`] under [`MIN_POINTS`] points or under two cycles of the longest
/// period; [`ForecastError::NotFinite`] on a NaN or infinite value; [`ForecastError::Model`] for a
/// period under 2, or when the fit fails or gives a non-finite forecast.
pub fn forecast_with_periods(
    series: &[f64],
    horizon: usize,
    periods: &[usize],
) -> Result<Forecast, ForecastError> {
    check_series(series)?;
    let n = series.len();
    let mut periods = periods.to_vec();
    periods.sort_unstable();
    periods.dedup();
    if let Some(&bad) = periods.iter().find(|&&p| p < 2) {
        return Err(ForecastError::Model(format!(
            "seasonal period {bad} is not a period (must be at least 2)"
        )));
    }
    if let Some(&longest) = periods.last()
        && n < 2 * longest
    {
        return Err(ForecastError::TooShort {
            have: n,
            need: 2 * longest,
        });
    }
    if is_constant(series) {
        let value = series.iter().sum::<f64>() / n as f64;
        let flat = vec![value; horizon];
        return Ok(Forecast {
            model: "Constant".into(),
            point: flat.clone(),
            lower80: flat.clone(),
            upper80: flat.clone(),
            lower95: flat.clone(),
            upper95: flat,
            seasonal_periods: Vec::new(),
        });
    }
    // Non-seasonal ETS only, also under MSTL: augurs 0.10 has no prediction intervals for
    // several seasonal ETS models (they panic with `todo!`), nor for multiplicative trends
    // (simulated, random), which "ZZN" leaves out by default.
    let ets = AutoETS::new(1, "ZZN").map_err(|e| ForecastError::Model(e.to_string()))?;
    let (model, (point, lower80, upper80), (_, lower95, upper95)) = if periods.is_empty() {
        let fitted = ets
            .fit(series)
            .map_err(|e| ForecastError::Model(format!("AutoETS: {e}")))?;
        let name = format!("AutoETS({})", describe_ets(&fitted));
        let p80 = predict_ets(&fitted, horizon, 0.80)?;
        let p95 = predict_ets(&fitted, horizon, 0.95)?;
        (name, p80, p95)
    } else {
        let trend = NamedEts {
            ets,
            chosen: Mutex::new(None),
        };
        let mstl = MSTLModel::new(periods.clone(), trend);
        let fitted = mstl
            .fit(series)
            .map_err(|e| ForecastError::Model(e.to_string()))?;
        let chosen = mstl.trend_model().chosen.lock().clone().unwrap_or_default();
        let list = periods
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let name = format!("MSTL[{list}]+{chosen}");
        let p80 = split(fitted.predict(horizon, 0.80), horizon)?;
        let p95 = split(fitted.predict(horizon, 0.95), horizon)?;
        (name, p80, p95)
    };
    let forecast = Forecast {
        model,
        point,
        lower80,
        upper80,
        lower95,
        upper95,
        seasonal_periods: periods,
    };
    let all = [
        &forecast.point,
        &forecast.lower80,
        &forecast.upper80,
        &forecast.lower95,
        &forecast.upper95,
    ];
    if all.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
        return Err(ForecastError::Model(format!(
            "{} gave a non-finite forecast",
            forecast.model
        )));
    }
    Ok(forecast)
}

/// Accuracy of a forecaster over rolling origins (see [`backtest`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// Forecast origins evaluated.
    pub origins: usize,
    /// Days forecast from each origin.
    pub horizon: usize,
    /// Season of the naive benchmark and of the MASE scale (1 = plain naive).
    pub season: usize,
    /// Mean absolute error over every (origin, day) pair.
    pub mae: f64,
    /// Mean absolute error of the seasonal-naive forecast (the value one season earlier) over the
    /// same pairs.
    pub naive_mae: f64,
    /// Mean absolute scaled error: each absolute error divided by the in-sample MAE of the
    /// one-season difference (`y[t] - y[t - season]`) of that origin's training part, averaged
    /// (Hyndman & Koehler, 2006). Under 1: better than the in-sample seasonal-naive. Infinite when
    /// a training part repeats exactly every season and the forecast still errs.
    /// Infinite (`null` in JSON) when the training part has no seasonal-naive error at all
    /// but the forecast errs.
    #[serde(deserialize_with = "null_as_infinity")]
    pub mase: f64,
    /// Share of actual values inside the 80 % interval.
    pub coverage80: f64,
    /// Share of actual values inside the 95 % interval.
    pub coverage95: f64,
    /// The distinct models used across origins, in order of first use, with how many origins each
    /// served when there is more than one, e.g. `AutoETS(A,N,N) x3, AutoETS(A,A,N) x1`.
    pub model: String,
}

/// Rolling-origin backtest of [`forecast`]: see [`backtest_with`].
///
/// # Errors
///
/// As [`backtest_with`].
pub fn backtest(
    series: &[f64],
    horizon: usize,
    origins: usize,
    season: usize,
) -> Result<BacktestReport, ForecastError> {
    backtest_with(series, horizon, origins, season, forecast)
}

/// Rolling-origin backtest of any forecaster (e.g. `|y, h| forecast_with_periods(y, h, &[12])`).
///
/// Origin `k` (0-based, oldest first) is `t = n - horizon - (origins - 1 - k) * step`: the
/// forecaster sees `series[..t]` and its `horizon` forecasts are compared with `series[t..t +
/// horizon]`. The step is `horizon` (non-overlapping test windows) when the first training part
/// still has at least `max(MIN_POINTS, 2 * season + 1)` points, else 1 (windows overlap, so the
/// errors are correlated and the figures less stable). The last window ends at the end of the
/// series.
///
/// # Errors
///
/// [`ForecastError::Model`] for a zero horizon, origin count or season;
/// [`ForecastError::NotFinite`] on a NaN or infinite value; [`ForecastError::TooShort`] when even
/// a step of 1 leaves too short a first training part; any error of the forecaster at an origin.
pub fn backtest_with<F>(
    series: &[f64],
    horizon: usize,
    origins: usize,
    season: usize,
    forecaster: F,
) -> Result<BacktestReport, ForecastError>
where
    F: Fn(&[f64], usize) -> Result<Forecast, ForecastError>,
{
    if horizon == 0 || origins == 0 || season == 0 {
        return Err(ForecastError::Model(format!(
            "backtest needs a positive horizon, origin count and season (got {horizon}, {origins}, {season})"
        )));
    }
    if let Some(index) = series.iter().position(|y| !y.is_finite()) {
        return Err(ForecastError::NotFinite { index });
    }
    let n = series.len();
    let min_train = MIN_POINTS.max(2 * season + 1);
    let first_origin = |step: usize| {
        n.checked_sub(horizon + (origins - 1) * step)
            .filter(|&t| t >= min_train)
    };
    let (step, first) = match first_origin(horizon) {
        Some(t) => (horizon, t),
        None => match first_origin(1) {
            Some(t) => (1, t),
            None => {
                return Err(ForecastError::TooShort {
                    have: n,
                    need: min_train + horizon + origins - 1,
                });
            }
        },
    };
    let mut abs_errors = 0.0;
    let mut naive_errors = 0.0;
    let mut scaled_errors = 0.0;
    let mut inside80 = 0usize;
    let mut inside95 = 0usize;
    let mut models: Vec<(String, usize)> = Vec::new();
    for k in 0..origins {
        let t = first + k * step;
        let train = &series[..t];
        let actual = &series[t..t + horizon];
        let fc = forecaster(train, horizon)?;
        if fc.point.len() != horizon
            || [&fc.lower80, &fc.upper80, &fc.lower95, &fc.upper95]
                .iter()
                .any(|v| v.len() != horizon)
        {
            return Err(ForecastError::Model(format!(
                "{} returned a forecast of the wrong length",
                fc.model
            )));
        }
        match models.iter_mut().find(|(name, _)| *name == fc.model) {
            Some((_, count)) => *count += 1,
            None => models.push((fc.model.clone(), 1)),
        }
        let scale = seasonal_diff_mae(train, season);
        for (j, &y) in actual.iter().enumerate() {
            let error = (y - fc.point[j]).abs();
            abs_errors += error;
            scaled_errors += if scale > 0.0 {
                error / scale
            } else if error == 0.0 {
                0.0
            } else {
                f64::INFINITY
            };
            let naive = train[t - season + j % season];
            naive_errors += (y - naive).abs();
            inside80 += usize::from(fc.lower80[j] <= y && y <= fc.upper80[j]);
            inside95 += usize::from(fc.lower95[j] <= y && y <= fc.upper95[j]);
        }
    }
    let pairs = (origins * horizon) as f64;
    let model = if models.len() == 1 {
        models.into_iter().map(|(name, _)| name).collect()
    } else {
        models
            .iter()
            .map(|(name, count)| format!("{name} x{count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(BacktestReport {
        origins,
        horizon,
        season,
        mae: abs_errors / pairs,
        naive_mae: naive_errors / pairs,
        mase: scaled_errors / pairs,
        coverage80: inside80 as f64 / pairs,
        coverage95: inside95 as f64 / pairs,
        model,
    })
}

/// What kind of anomaly a point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnomalyKind {
    /// One day far above its neighbourhood.
    Spike,
    /// One day far below its neighbourhood.
    Drop,
    /// The level of the series moved, and stayed, from this day on.
    LevelShift,
}

/// One anomalous day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Day (index into the series).
    pub index: usize,
    /// The series' value that day.
    pub value: f64,
    /// Spike, drop or level shift.
    pub kind: AnomalyKind,
    /// Size in robust standard deviations of the noise (always positive).
    pub score: f64,
    /// One plain sentence for people.
    pub reason: String,
    /// For a level shift: how far the level moved (the median of the days after less the
    /// median of the days before, seasonality removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<f64>,
}

/// Spikes, drops and level shifts in a daily series, sorted by day; `threshold_sigmas` is how many
/// robust standard deviations of the noise make an anomaly (4 is a sensible default).
///
/// First the seasonal components of the periods [`detect_seasonality`] finds are removed (MSTL
/// decomposition). Noise is measured as the residual from a centred rolling median over 15 days,
/// and its scale as 1.4826 × the median absolute deviation (MAD) of those residuals, so the
/// anomalies themselves barely move it and a level shift does not turn every later day into an
/// outlier.
///
/// - Spike / Drop: a day whose residual exceeds `threshold_sigmas` scales (robust z-score).
/// - LevelShift: a changepoint of Bayesian online changepoint detection (augurs-changepoint,
///   Normal-Gamma model on the standardised series) where the medians of the 14 days before and
///   after (placed at the day that maximises the difference, within 3 days of the changepoint)
///   differ by more than `threshold_sigmas` scales; shifts closer than 14 days keep the stronger.
///
/// augurs-outlier is not used: its MAD and DBSCAN detectors compare several series with each
/// other at each time step (which host misbehaves), and cannot tell which day of one series is
/// odd.
///
/// Limits: under 8 points, or with a NaN or infinite value, the result is empty; a spike within
/// a week of another spike, or a shift shorter than about a week, may be seen as neither; a
/// trend steep relative to the noise over 15 days widens the scale.
pub fn anomalies(series: &[f64], threshold_sigmas: f64) -> Vec<Anomaly> {
    let n = series.len();
    if n < MIN_POINTS
        || series.iter().any(|y| !y.is_finite())
        || threshold_sigmas.is_nan()
        || threshold_sigmas <= 0.0
    {
        return Vec::new();
    }
    let periods = detect_seasonality(series);
    let deseasonalised = deseasonalise(series, &periods);
    let local = rolling_median(&deseasonalised, LOCAL_WINDOW);
    let residuals: Vec<f64> = deseasonalised
        .iter()
        .zip(&local)
        .map(|(d, m)| d - m)
        .collect();
    // Floor: a millionth of the series' scale, below MSTL's f32 rounding, so an exactly
    // periodic or constant series does not turn rounding into anomalies.
    let sigma = robust_sigma(&residuals).max(FLAT_TREND * scale_of(series));

    let mut found = Vec::new();
    for (index, r) in residuals.iter().enumerate() {
        let score = r.abs() / sigma;
        if score > threshold_sigmas {
            let kind = if *r > 0.0 {
                AnomalyKind::Spike
            } else {
                AnomalyKind::Drop
            };
            let direction = if *r > 0.0 { "above" } else { "below" };
            found.push(Anomaly {
                index,
                value: series[index],
                kind,
                score,
                reason: format!(
                    "{} is {score:.1} sigma {direction} the local median {:.2} (sigma {sigma:.3})",
                    series[index],
                    series[index] - r
                ),
                shift: None,
            });
        }
    }

    let centre = median(&deseasonalised);
    let standardised: Vec<f64> = deseasonalised
        .iter()
        .map(|d| (d - centre) / sigma)
        .collect();
    let mut detector = NormalGammaDetector::normal_gamma(
        CHANGEPOINT_HAZARD,
        NormalGamma::new_unchecked(0.0, 1.0, 1.0, 1.0),
    );
    let mut shifts: Vec<(usize, f64, f64, f64)> = Vec::new();
    for changepoint in detector.detect_changepoints(&standardised) {
        let lo = changepoint.saturating_sub(3).max(3);
        let hi = (changepoint + 3).min(n.saturating_sub(3));
        let best = (lo..=hi)
            .filter_map(|t| {
                let (before, after) = shift_medians(&deseasonalised, t)?;
                Some((t, (after - before).abs() / sigma, before, after))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some(shift) = best
            && shift.1 > threshold_sigmas
        {
            match shifts.last_mut() {
                Some(last) if shift.0 < last.0 + SHIFT_WINDOW => {
                    if shift.1 > last.1 {
                        *last = shift;
                    }
                }
                _ => shifts.push(shift),
            }
        }
    }
    for (index, score, before, after) in shifts {
        found.push(Anomaly {
            index,
            value: series[index],
            kind: AnomalyKind::LevelShift,
            score,
            reason: format!(
                "level moved {} from {before:.2} to {after:.2} ({score:.1} sigma, medians of up \
                 to {SHIFT_WINDOW} days before and after; sigma {sigma:.3})",
                if after < before { "down" } else { "up" }
            ),
            shift: Some(after - before),
        });
    }
    found.sort_by_key(|a| a.index);
    found
}

/// How long a forecast balance lasts, in months from the day after the last observation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Runway {
    /// When the point forecast first goes below zero; `None` = not within the horizon.
    pub months_point: Option<f64>,
    /// When the lower 80 % bound first goes below zero (the pessimistic runway, the earliest).
    pub months_low: Option<f64>,
    /// When the upper 80 % bound first goes below zero (the optimistic runway, the latest).
    pub months_high: Option<f64>,
}

/// Runway of a balance forecast: for the point forecast and the 80 % band, the first day the
/// balance is below zero, as months (`days / days_per_month`, e.g. 30.4375). Forecast index `i` is
/// day `i + 1` after the last observation, so a balance below zero at index 0 is a runway of one
/// day. `None` when the balance stays at or above zero through the horizon (the runway is longer
/// than the forecast, not infinite), or when `days_per_month` is not a positive number.
pub fn runway_from_balance(forecast: &Forecast, days_per_month: f64) -> Runway {
    let months = |band: &[f64]| {
        if !days_per_month.is_finite() || days_per_month <= 0.0 {
            return None;
        }
        first_breach(band, 0.0).map(|i| (i + 1) as f64 / days_per_month)
    };
    Runway {
        months_point: months(&forecast.point),
        months_low: months(&forecast.lower80),
        months_high: months(&forecast.upper80),
    }
}

/// Index of the first value of `band` strictly below `floor`; `None` if there is none. A NaN
/// counts as a breach (the forecast no longer says anything).
pub fn first_breach(band: &[f64], floor: f64) -> Option<usize> {
    band.iter().position(|&v| v < floor || v.is_nan())
}

/// AutoETS as MSTL's trend model, remembering which ETS model it chose (MSTL keeps the fitted
/// trend model private).
#[derive(Debug)]
struct NamedEts {
    ets: AutoETS,
    chosen: Mutex<Option<String>>,
}

/// The fitted trend model: AutoETS, or a flat line when the deseasonalised series does not vary
/// (an exactly periodic series), where ETS has nothing to estimate and may fail.
#[derive(Debug)]
enum FittedNamedEts {
    Ets(Box<FittedAutoETS>),
    Flat { value: f64, n: usize },
}

/// Relative variation under which MSTL's deseasonalised series counts as flat (MSTL works in
/// `f32`, so an exactly periodic series leaves a remainder of about 1e-7 of its scale).
const FLAT_TREND: f64 = 1e-6;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for NamedEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("AutoETS")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if y.is_empty() || hi - lo <= FLAT_TREND * scale_of(y) {
            *self.chosen.lock() = Some("Constant".into());
            let value = y.iter().sum::<f64>() / y.len().max(1) as f64;
            return Ok(Box::new(FittedNamedEts::Flat { value, n: y.len() }));
        }
        let fitted = self.ets.fit(y)?;
        *self.chosen.lock() = Some(format!("AutoETS({})", describe_ets(&fitted)));
        Ok(Box::new(FittedNamedEts::Ets(Box::new(fitted))))
    }
}

impl FittedTrendModel for FittedNamedEts {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut augurs::Forecast,
    ) -> Result<(), BoxError> {
        match self {
            Self::Ets(fitted) => Ok(fitted.predict_inplace(horizon, level, forecast)?),
            Self::Flat { value, .. } => {
                flat_into(*value, horizon, level, forecast);
                Ok(())
            }
        }
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut augurs::Forecast,
    ) -> Result<(), BoxError> {
        match self {
            Self::Ets(fitted) => Ok(fitted.predict_in_sample_inplace(level, forecast)?),
            Self::Flat { value, n } => {
                flat_into(*value, *n, level, forecast);
                Ok(())
            }
        }
    }

    fn training_data_size(&self) -> Option<usize> {
        match self {
            Self::Ets(fitted) => Some(fitted.training_data_size()),
            Self::Flat { n, .. } => Some(*n),
        }
    }
}

/// `len` copies of `value`, with zero-width intervals when a level is asked for.
fn flat_into(value: f64, len: usize, level: Option<f64>, forecast: &mut augurs::Forecast) {
    forecast.point = vec![value; len];
    forecast.intervals = level.map(|level| augurs::ForecastIntervals {
        level,
        lower: vec![value; len],
        upper: vec![value; len],
    });
}

/// `A,Ad,N`-style name of the ETS model AutoETS chose (error, trend, season).
fn describe_ets(fitted: &FittedAutoETS) -> String {
    let model = fitted.model();
    let kind = model.model_type();
    let damped = if model.damped() { "d" } else { "" };
    format!("{},{}{damped},{}", kind.error, kind.trend, kind.season)
}

type Bands = (Vec<f64>, Vec<f64>, Vec<f64>);

fn predict_ets(fitted: &FittedAutoETS, horizon: usize, level: f64) -> Result<Bands, ForecastError> {
    split(fitted.predict(horizon, level), horizon)
}

/// Point, lower and upper of an augurs forecast, checked for length.
fn split<E: ToString>(
    result: Result<augurs::Forecast, E>,
    horizon: usize,
) -> Result<Bands, ForecastError> {
    let forecast = result.map_err(|e| ForecastError::Model(e.to_string()))?;
    let (lower, upper) = match forecast.intervals {
        Some(intervals) => (intervals.lower, intervals.upper),
        None => (forecast.point.clone(), forecast.point.clone()),
    };
    if forecast.point.len() != horizon || lower.len() != horizon || upper.len() != horizon {
        return Err(ForecastError::Model(format!(
            "model returned {} points for a horizon of {horizon}",
            forecast.point.len()
        )));
    }
    Ok((forecast.point, lower, upper))
}

fn check_series(series: &[f64]) -> Result<(), ForecastError> {
    if let Some(index) = series.iter().position(|y| !y.is_finite()) {
        return Err(ForecastError::NotFinite { index });
    }
    if series.len() < MIN_POINTS {
        return Err(ForecastError::TooShort {
            have: series.len(),
            need: MIN_POINTS,
        });
    }
    Ok(())
}

/// Magnitude of the series (at least 1), for relative tolerances.
fn scale_of(series: &[f64]) -> f64 {
    series.iter().fold(1.0_f64, |m, y| m.max(y.abs()))
}

/// No variation beyond floating-point noise.
fn is_constant(series: &[f64]) -> bool {
    let (lo, hi) = series
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
            (lo.min(y), hi.max(y))
        });
    hi - lo <= 1e-12 * scale_of(series)
}

/// The series minus its least-squares line.
fn detrend_linear(series: &[f64]) -> Vec<f64> {
    let n = series.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = series.iter().sum::<f64>() / n;
    let (sxy, sxx) = series
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(sxy, sxx), (i, y)| {
            let dx = i as f64 - mean_x;
            (sxy + dx * (y - mean_y), sxx + dx * dx)
        });
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    series
        .iter()
        .enumerate()
        .map(|(i, y)| y - mean_y - slope * (i as f64 - mean_x))
        .collect()
}

/// Share of variance explained by the mean profile by phase of `period`, after removing a
/// centred moving average of one period (2×period for an even period); `None` when there is
/// too little data or no variance.
fn seasonal_strength(series: &[f64], period: usize) -> Option<f64> {
    let n = series.len();
    let half = period / 2;
    if n < 2 * period + 1 {
        return None;
    }
    let mut detrended = Vec::with_capacity(n);
    for t in half..n - half {
        let average = if period % 2 == 1 {
            series[t - half..=t + half].iter().sum::<f64>() / period as f64
        } else {
            let inner: f64 = series[t - half + 1..t + half].iter().sum();
            (inner + 0.5 * (series[t - half] + series[t + half])) / period as f64
        };
        detrended.push((t, series[t] - average));
    }
    let mut sums = vec![0.0; period];
    let mut counts = vec![0usize; period];
    for &(t, d) in &detrended {
        sums[t % period] += d;
        counts[t % period] += 1;
    }
    let profile: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    let m = detrended.len() as f64;
    let mean = detrended.iter().map(|(_, d)| d).sum::<f64>() / m;
    let total: f64 = detrended.iter().map(|(_, d)| (d - mean).powi(2)).sum();
    if total <= 0.0 {
        return None;
    }
    let explained: f64 = detrended
        .iter()
        .map(|&(t, _)| (profile[t % period] - mean).powi(2))
        .sum();
    Some((explained / total).min(1.0))
}

/// The series minus its MSTL seasonal components (unchanged when there are none or MSTL fails).
fn deseasonalise(series: &[f64], periods: &[usize]) -> Vec<f64> {
    if periods.is_empty() {
        return series.to_vec();
    }
    match MSTLModel::naive(periods.to_vec()).fit(series) {
        Ok(fitted) => {
            let mut out = series.to_vec();
            for component in fitted.fit().seasonal() {
                for (o, c) in out.iter_mut().zip(component) {
                    *o -= f64::from(*c);
                }
            }
            out
        }
        Err(_) => series.to_vec(),
    }
}

/// Centred rolling median with `half` points on each side (fewer at the ends).
fn rolling_median(series: &[f64], half: usize) -> Vec<f64> {
    let n = series.len();
    (0..n)
        .map(|t| median(&series[t.saturating_sub(half)..(t + half + 1).min(n)]))
        .collect()
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        0.5 * (sorted[mid - 1] + sorted[mid])
    }
}

/// 1.4826 × MAD: the standard deviation for normal data, robust to a few outliers.
fn robust_sigma(values: &[f64]) -> f64 {
    let centre = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    MAD_TO_SIGMA * median(&deviations)
}

/// Medians of up to [`SHIFT_WINDOW`] days before `t` and from `t` on; `None` with fewer than three
/// days on a side.
fn shift_medians(series: &[f64], t: usize) -> Option<(f64, f64)> {
    let before = &series[t.saturating_sub(SHIFT_WINDOW)..t.min(series.len())];
    let after = &series[t.min(series.len())..(t + SHIFT_WINDOW).min(series.len())];
    (before.len() >= 3 && after.len() >= 3).then(|| (median(before), median(after)))
}

/// In-sample MAE of the `season`-lag difference; 0 when the series is not longer than a season.
fn seasonal_diff_mae(series: &[f64], season: usize) -> f64 {
    if series.len() <= season {
        return 0.0;
    }
    let total: f64 = series
        .windows(season + 1)
        .map(|w| (w[season] - w[0]).abs())
        .sum();
    total / (series.len() - season) as f64
}

/// Reads a number written by serde_json, where an infinite value was written as `null`.
fn null_as_infinity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value: Option<f64> = Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or(f64::INFINITY))
}

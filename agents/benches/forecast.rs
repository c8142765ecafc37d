//! Speed and accuracy of `agents::finance::forecast` on 50 synthetic daily series of 365 days
//! (ten each of: linear trend, weekly season, monthly season, weekly and monthly seasons on a
//! trend, random walk; Gaussian noise from a seeded SplitMix64, so every run sees the same data),
//! ten more with a level shift of 8 sigma between days 150 and 250 (accuracy only, also against
//! the same model on the unadjusted history), and on AirPassengers (Box & Jenkins' monthly
//! airline passengers, 1949-1960).
//!
//! Speed: wall time of `forecast` (level shifts, seasonality detection, model fit, 80 % and 95 %
//! intervals) for a 90-day horizon on each of the 50 synthetic series, in total and per series,
//! and how often each model was chosen. Accuracy: for each kind, the mean over its ten series of a rolling-origin backtest
//! (`backtest`: 3 origins, 30-day horizon; season 7 for weekly kinds, 30 for monthly, 1 otherwise)
//! — MAE in units of the noise sigma, MASE, the seasonal-naive forecast's MAE, and the 80 % / 95 %
//! interval coverage; for AirPassengers, `forecast_with_periods(.., &[12])` on the logarithms and
//! on the raw values, 4 yearly origins, 12-month horizon, season 12. Prints one JSON object.
//!
//! Run: `cargo bench -p agents --bench forecast`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::Instant;

use agents::finance::forecast::{
    BacktestReport, backtest, backtest_with, forecast, forecast_with_periods,
};
use serde_json::{Value, json};

const DAYS: usize = 365;
const HORIZON: usize = 90;
const PER_KIND: usize = 10;
const SIGMA: f64 = 1.0;

/// SplitMix64 with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

const KINDS: [(&str, usize); 6] = [
    ("trend", 1),
    ("weekly", 7),
    ("monthly", 30),
    ("weekly_monthly_trend", 7),
    ("random_walk", 1),
    ("level_shift", 1),
];

/// Kinds whose forecasts are timed (the 50 series of the speed figure).
const TIMED: usize = 5;

fn synthetic(kind: &str, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let level = 100.0 + 10.0 * rng.uniform();
    let slope = 0.2 * (rng.uniform() - 0.5);
    let phase = 2.0 * PI * rng.uniform();
    let shift_day = 150.0 + 100.0 * rng.uniform();
    let week = [0.0, 1.0, 0.6, -0.4, -1.0, 1.5, -1.7];
    let mut walk = level;
    (0..DAYS)
        .map(|t| {
            let x = t as f64;
            let e = SIGMA * rng.normal();
            match kind {
                "trend" => level + slope * x + e,
                "weekly" => level + 8.0 * week[t % 7] + e,
                "monthly" => level + 6.0 * (2.0 * PI * x / 30.0 + phase).sin() + e,
                "weekly_monthly_trend" => {
                    level
                        + slope * x
                        + 5.0 * week[t % 7]
                        + 5.0 * (2.0 * PI * x / 30.0 + phase).sin()
                        + e
                }
                "level_shift" => level + if x < shift_day { 0.0 } else { 8.0 * SIGMA } + e,
                _ => {
                    walk += e;
                    walk
                }
            }
        })
        .collect()
}

/// Monthly international airline passengers (thousands), 1949-1960.
const AIR_PASSENGERS: [f64; 144] = [
    112., 118., 132., 129., 121., 135., 148., 148., 136., 119., 104., 118., //
    115., 126., 141., 135., 125., 149., 170., 170., 158., 133., 114., 140., //
    145., 150., 178., 163., 172., 178., 199., 199., 184., 162., 146., 166., //
    171., 180., 193., 181., 183., 218., 230., 242., 209., 191., 172., 194., //
    196., 196., 236., 235., 229., 243., 264., 272., 237., 211., 180., 201., //
    204., 188., 235., 227., 234., 264., 302., 293., 259., 229., 203., 229., //
    242., 233., 267., 269., 270., 315., 364., 347., 312., 274., 237., 278., //
    284., 277., 317., 313., 318., 374., 413., 405., 355., 306., 271., 306., //
    315., 301., 356., 348., 355., 422., 465., 467., 404., 347., 305., 336., //
    340., 318., 362., 348., 363., 435., 491., 505., 404., 359., 310., 337., //
    360., 342., 406., 396., 420., 472., 548., 559., 463., 407., 362., 405., //
    417., 391., 419., 461., 472., 535., 622., 606., 508., 461., 390., 432., //
];

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn report_json(report: &BacktestReport) -> Value {
    json!({
        "origins": report.origins,
        "horizon": report.horizon,
        "season": report.season,
        "mae": round(report.mae, 4),
        "naive_mae": round(report.naive_mae, 4),
        "mase": round(report.mase, 4),
        "coverage80": round(report.coverage80, 4),
        "coverage95": round(report.coverage95, 4),
        "model": report.model,
    })
}

fn main() {
    let all: Vec<(&str, usize, Vec<f64>)> = KINDS
        .iter()
        .flat_map(|&(kind, season)| {
            (0..PER_KIND as u64).map(move |i| (kind, season, synthetic(kind, 1000 + i)))
        })
        .collect();

    // Speed: one 90-day forecast per series.
    let mut models: BTreeMap<String, usize> = BTreeMap::new();
    let mut periods_by_kind: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let started = Instant::now();
    let mut slowest_ms = 0.0_f64;
    let timed: Vec<&(&str, usize, Vec<f64>)> = all
        .iter()
        .filter(|(kind, _, _)| KINDS[..TIMED].iter().any(|(timed, _)| timed == kind))
        .collect();
    for (kind, _, y) in &timed {
        let one = Instant::now();
        let fc = forecast(y, HORIZON).unwrap();
        slowest_ms = slowest_ms.max(one.elapsed().as_secs_f64() * 1e3);
        *models.entry(fc.model.clone()).or_default() += 1;
        *periods_by_kind
            .entry(kind)
            .or_default()
            .entry(format!("{:?}", fc.seasonal_periods))
            .or_default() += 1;
    }
    let total = started.elapsed().as_secs_f64();

    // Accuracy: mean backtest figures per kind.
    let backtest_started = Instant::now();
    let mut by_kind = serde_json::Map::new();
    for &(kind, season) in &KINDS {
        let reports: Vec<BacktestReport> = all
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, _, y)| backtest(y, 30, 3, season).unwrap())
            .collect();
        let mean = |f: fn(&BacktestReport) -> f64| {
            round(reports.iter().map(f).sum::<f64>() / reports.len() as f64, 4)
        };
        by_kind.insert(
            kind.to_string(),
            json!({
                "series": reports.len(),
                "season": season,
                "mae_over_sigma": mean(|r| r.mae / SIGMA),
                "naive_mae_over_sigma": mean(|r| r.naive_mae / SIGMA),
                "mase": mean(|r| r.mase),
                "coverage80": mean(|r| r.coverage80),
                "coverage95": mean(|r| r.coverage95),
            }),
        );
    }
    let backtest_seconds = backtest_started.elapsed().as_secs_f64();
    // The level-shift series with the same model on the history as it is.
    let unadjusted: Vec<BacktestReport> = all
        .iter()
        .filter(|(kind, _, _)| *kind == "level_shift")
        .map(|(_, _, y)| {
            backtest_with(y, 30, 3, 1, |y, h| forecast_with_periods(y, h, &[])).unwrap()
        })
        .collect();
    let mean_unadjusted = |f: fn(&BacktestReport) -> f64| {
        round(
            unadjusted.iter().map(f).sum::<f64>() / unadjusted.len() as f64,
            4,
        )
    };
    by_kind.insert(
        "level_shift_unadjusted".to_owned(),
        json!({
            "series": unadjusted.len(),
            "season": 1,
            "mae_over_sigma": mean_unadjusted(|r| r.mae / SIGMA),
            "naive_mae_over_sigma": mean_unadjusted(|r| r.naive_mae / SIGMA),
            "mase": mean_unadjusted(|r| r.mase),
            "coverage80": mean_unadjusted(|r| r.coverage80),
            "coverage95": mean_unadjusted(|r| r.coverage95),
        }),
    );

    let yearly = |y: &[f64], h: usize| forecast_with_periods(y, h, &[12]);
    let logs: Vec<f64> = AIR_PASSENGERS.iter().map(|y| y.ln()).collect();
    let air_log = backtest_with(&logs, 12, 4, 12, yearly).unwrap();
    let air_raw = backtest_with(&AIR_PASSENGERS, 12, 4, 12, yearly).unwrap();

    let out = json!({
        "bench": "finance::forecast",
        "series": timed.len(),
        "days": DAYS,
        "horizon": HORIZON,
        "forecast_total_ms": round(total * 1e3, 1),
        "forecast_per_series_ms": round(total * 1e3 / timed.len() as f64, 2),
        "forecast_slowest_ms": round(slowest_ms, 2),
        "models": models,
        "detected_periods_by_kind": periods_by_kind,
        "backtest": {
            "origins": 3,
            "horizon": 30,
            "seconds": round(backtest_seconds, 2),
            "by_kind": by_kind,
        },
        "air_passengers": {
            "log": report_json(&air_log),
            "raw": report_json(&air_raw),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}

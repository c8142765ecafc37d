#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, good-enough, seeded generator.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` days of `f(t) + sigma * noise`.
fn series(seed: u64, n: usize, sigma: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n).map(|t| f(t as f64) + sigma * rng.normal()).collect()
}

/// E|X| for X ~ N(0, 1).
const MEAN_ABS_NORMAL: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)

/// Monthly international airline passengers (thousands), January 1949 to December 1960: Box,
/// Jenkins & Reinsel, "Time Series Analysis", series G (R's `AirPassengers`).
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

fn assert_well_formed(fc: &Forecast, horizon: usize) {
    for band in [
        &fc.point,
        &fc.lower80,
        &fc.upper80,
        &fc.lower95,
        &fc.upper95,
    ] {
        assert_eq!(band.len(), horizon, "{fc:?}");
        assert!(band.iter().all(|v| v.is_finite()), "{fc:?}");
    }
    for i in 0..horizon {
        assert!(
            fc.lower95[i] <= fc.lower80[i]
                && fc.lower80[i] <= fc.point[i]
                && fc.point[i] <= fc.upper80[i]
                && fc.upper80[i] <= fc.upper95[i],
            "bands not nested at {i}: {fc:?}"
        );
    }
}

#[test]
fn trend_with_gaussian_noise_backtests_near_the_noise_floor() {
    // y_t = 100 + 0.5 t + e_t, e_t ~ N(0, sigma^2) iid. The best possible forecast is the line
    // itself, whose error is e_t: E|e| = sigma * sqrt(2/pi) ~ 0.798 sigma. The fitted model also
    // estimates level and slope from 400 noisy points (plus smoothing), which adds a little:
    // below 1.0 sigma is the bar; above 0.6 sigma says the figure is not too good to be true
    // (70 pairs: the sample MAE's standard deviation is about 0.6 sigma / sqrt(70) ~ 0.07 sigma).
    // Intervals: a Gaussian error lands inside the 95 % band 95 % of the time and inside the 80 %
    // band 80 % of the time; with 70 correlated pairs and estimated parameters, >= 0.85 and
    // 0.6..=0.95.
    let sigma = 2.0;
    let y = series(1, 400, sigma, |t| 100.0 + 0.5 * t);
    assert_eq!(detect_seasonality(&y), Vec::<usize>::new());
    let report = backtest(&y, 7, 10, 1).unwrap();
    println!("{report:?}");
    assert_eq!((report.origins, report.horizon, report.season), (10, 7, 1));
    assert!(report.model.contains("AutoETS("), "{report:?}");
    assert!(report.mae < 1.0 * sigma, "{report:?}");
    assert!(report.mae > 0.75 * MEAN_ABS_NORMAL * sigma, "{report:?}");
    assert!(report.coverage95 >= 0.85, "{report:?}");
    assert!(
        (0.6..=0.95).contains(&report.coverage80),
        "coverage80 {report:?}"
    );

    let fc = forecast(&y, 30).unwrap();
    assert_well_formed(&fc, 30);
    // 30 days past t = 399: the line is at 100 + 0.5 * 429 = 314.5; the slope is estimated from
    // 400 points, so the point is within a few sigma.
    assert!((fc.point[29] - 314.5).abs() < 3.0 * sigma, "{fc:?}");
}

#[test]
fn a_level_shift_is_followed_and_then_forecast_near_the_noise_floor() {
    // y_t = 100 + e_t until day 250, 100 + 10 sigma after (a new customer, a price change);
    // sigma = 2. The 10 backtest origins × 7 days are the last 70 days, 45 days or more past
    // the shift, so a model whose level has caught up errs by e_t alone: 0.798 sigma (above).
    // The naive forecast (the last value) errs by e_t - e_origin: sqrt(2) × 0.798 = 1.128
    // sigma, which is also the in-sample MASE scale; a model stuck between the old and the new
    // level (the whole-series mean is 106.3, 3.2 sigma below the new level) would be far
    // worse. Bars: MAE below 1.0 sigma, MASE below 0.9 (0.71 is the ideal), and the next days
    // forecast within 1.5 sigma of 120.
    let sigma = 2.0;
    let y = series(9, 365, sigma, |t| if t < 250.0 { 100.0 } else { 120.0 });
    assert_eq!(detect_seasonality(&y), Vec::<usize>::new());
    let report = backtest(&y, 7, 10, 1).unwrap();
    println!("{report:?}");
    assert!(report.model.contains("(level-adjusted)"), "{report:?}");
    assert!(report.mae < 1.0 * sigma, "{report:?}");
    assert!(report.mae > 0.6 * MEAN_ABS_NORMAL * sigma, "{report:?}");
    assert!(report.mase < 0.9, "{report:?}");
    // The same model on the history as it is learns from the jump that the level wanders: a
    // large smoothing weight, forecasts as noisy as the last days, the naive forecast's error
    // (1.128 sigma) or worse.
    let unadjusted = backtest_with(&y, 7, 10, 1, |y, h| forecast_with_periods(y, h, &[])).unwrap();
    println!("{unadjusted:?}");
    assert!(unadjusted.mae > 1.05 * sigma, "{unadjusted:?}");
    assert!(unadjusted.mae > report.mae, "{unadjusted:?}");
    let fc = forecast(&y, 14).unwrap();
    assert_well_formed(&fc, 14);
    for point in &fc.point {
        assert!((point - 120.0).abs() < 1.5 * sigma, "{fc:?}");
    }
}

#[test]
fn weekly_seasonality_is_detected_and_beats_seasonal_naive() {
    // y_t = 50 + 10 * w(t mod 7) + e_t, sigma = 1, so the weekly amplitude is ~20 sigma.
    // Seasonal naive predicts y_{t-7}: its error e_t - e_{t-7} ~ N(0, 2 sigma^2), so its MAE (and
    // the in-sample MASE scale) is sqrt(2) * 0.798 sigma = 1.128 sigma. A model that knows the
    // weekly profile errs by e_t alone, 0.798 sigma: MASE ~ 0.798 / 1.128 = 0.71. The weekly
    // profile is estimated from noisy cycles (MSTL), which costs a little: MASE < 0.9, and below
    // the seasonal-naive forecast's own MAE on the same windows.
    let pattern = [0.0, 1.0, 0.6, -0.4, -1.0, 1.5, -1.7];
    let y = series(2, 365, 1.0, |t| 50.0 + 10.0 * pattern[t as usize % 7]);
    assert_eq!(detect_seasonality(&y), vec![7]);
    let report = backtest(&y, 14, 8, 7).unwrap();
    println!("{report:?}");
    assert!(report.model.starts_with("MSTL[7]+AutoETS("), "{report:?}");
    assert!(report.mase < 0.9, "{report:?}");
    assert!(report.mae < report.naive_mae, "{report:?}");
    // The seasonal-naive forecast's MAE is itself ~1.128 sigma (derived above).
    let naive_expected = std::f64::consts::SQRT_2 * MEAN_ABS_NORMAL;
    assert!(
        (report.naive_mae / naive_expected - 1.0).abs() < 0.25,
        "naive MAE {report:?}"
    );

    let fc = forecast(&y, 21).unwrap();
    assert_eq!(fc.seasonal_periods, vec![7]);
    assert_well_formed(&fc, 21);
}

#[test]
fn monthly_seasonality_is_detected() {
    // A 30-day sine of amplitude 8 sigma over a year (12 cycles): the periodogram peaks at 30
    // (the nearest bin, within 2 days) and the phase profile explains ~97 % of the variance
    // (signal variance 32 against noise variance 1). Nothing weekly is there.
    let y = series(3, 365, 1.0, |t| {
        200.0 + 8.0 * (2.0 * std::f64::consts::PI * t / 30.0).sin()
    });
    assert_eq!(detect_seasonality(&y), vec![30]);
    let fc = forecast(&y, 45).unwrap();
    assert_eq!(fc.seasonal_periods, vec![30]);
    assert!(fc.model.starts_with("MSTL[30]+AutoETS("), "{}", fc.model);
    assert_well_formed(&fc, 45);
}

#[test]
fn weekly_and_monthly_together_are_both_detected() {
    let pattern = [0.0, 1.0, 0.6, -0.4, -1.0, 1.5, -1.7];
    let y = series(4, 365, 1.0, |t| {
        100.0
            + 0.05 * t
            + 6.0 * pattern[t as usize % 7]
            + 6.0 * (2.0 * std::f64::consts::PI * t / 30.0).cos()
    });
    assert_eq!(detect_seasonality(&y), vec![7, 30]);
}

#[test]
fn noise_and_random_walks_are_not_seasonal() {
    // White noise and random walks have no cycle: whatever periodogram peak lands near 7 or 30,
    // the phase profile explains only ~(period - 1) / n of the variance.
    for seed in 10..20 {
        let noise = series(seed, 365, 1.0, |_| 0.0);
        assert_eq!(
            detect_seasonality(&noise),
            Vec::<usize>::new(),
            "seed {seed}"
        );
        let steps = series(seed + 100, 365, 1.0, |_| 0.0);
        let walk: Vec<f64> = steps
            .iter()
            .scan(0.0, |level, s| {
                *level += s;
                Some(*level)
            })
            .collect();
        assert_eq!(
            detect_seasonality(&walk),
            Vec::<usize>::new(),
            "walk seed {seed}"
        );
    }
}

#[test]
fn level_shift_and_spike_are_found_and_clean_noise_is_quiet() {
    // Clean N(0, 1) noise at 4 sigma: P(|z| > 4) = 6.3e-5 per day, so ~0.01 false alarms in 200
    // days; the robust sigma (MAD of residuals from a 15-day median) is close to 1.
    let clean = series(5, 200, 1.0, |_| 10.0);
    assert_eq!(anomalies(&clean, 4.0), Vec::new());

    // A level shift of 8 sigma at day 120.
    let shifted = series(6, 200, 1.0, |t| if t < 120.0 { 10.0 } else { 18.0 });
    let found = anomalies(&shifted, 4.0);
    println!("{found:?}");
    let shifts: Vec<_> = found
        .iter()
        .filter(|a| a.kind == AnomalyKind::LevelShift)
        .collect();
    assert_eq!(shifts.len(), 1, "{found:?}");
    assert!(shifts[0].index.abs_diff(120) <= 3, "{found:?}");
    assert!(shifts[0].score > 4.0, "{found:?}");
    // Its size: the difference of two medians of 14 noisy days, 8 give or take about 0.5.
    let size = shifts[0].shift.unwrap();
    assert!((size - 8.0).abs() < 1.0, "{found:?}");
    // The spikes below carry no shift.

    // One spike of 10 sigma at day 77, and one drop of 9 sigma at day 150.
    let mut spiked = clean.clone();
    spiked[77] += 10.0;
    spiked[150] -= 9.0;
    let found = anomalies(&spiked, 4.0);
    println!("{found:?}");
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].index, found[0].kind), (77, AnomalyKind::Spike));
    assert_eq!(found[0].value, spiked[77]);
    assert!(found[0].score > 7.0, "{found:?}");
    assert_eq!((found[1].index, found[1].kind), (150, AnomalyKind::Drop));
    assert!(found.iter().all(|a| a.shift.is_none()), "{found:?}");
}

#[test]
fn spikes_on_a_weekly_series_are_found_after_removing_the_season() {
    // The weekly swing (+-17) is far larger than the spike (8 sigma): without removing the
    // season, the spike would hide inside the weekly range.
    let pattern = [0.0, 1.0, 0.6, -0.4, -1.0, 1.5, -1.7];
    let mut y = series(7, 280, 1.0, |t| 50.0 + 10.0 * pattern[t as usize % 7]);
    y[200] += 8.0;
    let found = anomalies(&y, 4.0);
    println!("{found:?}");
    assert!(
        found
            .iter()
            .any(|a| a.index == 200 && a.kind == AnomalyKind::Spike),
        "{found:?}"
    );
    assert!(found.len() <= 2, "{found:?}");
}

#[test]
fn air_passengers_beats_seasonal_naive() {
    assert_eq!(AIR_PASSENGERS.len(), 144);
    assert_eq!(AIR_PASSENGERS.iter().sum::<f64>(), 40363.0);
    // The classical treatment: logs make the growing seasonal swing additive. Four yearly origins
    // (1957..1960), each forecasting 12 months. In-sample seasonal naive (y_t - y_{t-12}) errs by
    // the yearly growth (~0.1 in logs); a model with trend and season should do better out of
    // sample: MASE < 1.
    let logs: Vec<f64> = AIR_PASSENGERS.iter().map(|y| y.ln()).collect();
    let report =
        backtest_with(&logs, 12, 4, 12, |y, h| forecast_with_periods(y, h, &[12])).unwrap();
    println!("AirPassengers (log): {report:?}");
    assert!(report.model.contains("MSTL[12]+AutoETS("), "{report:?}");
    assert!(report.mase < 1.0, "{report:?}");
    assert!(report.mae < report.naive_mae, "{report:?}");

    let raw = backtest_with(&AIR_PASSENGERS, 12, 4, 12, |y, h| {
        forecast_with_periods(y, h, &[12])
    })
    .unwrap();
    println!("AirPassengers (raw): {raw:?}");
    // On the raw values the seasonal swing grows with the level, which an additive MSTL season
    // only follows with a lag: measured MASE 0.98 (logs: 0.32). Asserted: better than the
    // seasonal-naive forecast on the same windows (MAE 29.0 against 37.0).
    assert!(raw.mae < raw.naive_mae, "{raw:?}");
}

#[test]
fn degenerate_inputs_give_errors_or_flat_forecasts() {
    // Constant: flat forecast, zero-width bands, no NaN.
    let constant = vec![42.0; 60];
    let fc = forecast(&constant, 10).unwrap();
    assert_eq!(fc.model, "Constant");
    assert_eq!(fc.point, vec![42.0; 10]);
    assert_eq!(fc.lower95, vec![42.0; 10]);
    assert_eq!(fc.upper95, vec![42.0; 10]);
    assert_well_formed(&fc, 10);
    let report = backtest(&constant, 5, 3, 7).unwrap();
    assert_eq!((report.mae, report.naive_mae, report.mase), (0.0, 0.0, 0.0));
    assert_eq!((report.coverage80, report.coverage95), (1.0, 1.0));
    assert_eq!(anomalies(&constant, 4.0), Vec::new());
    assert_eq!(detect_seasonality(&constant), Vec::<usize>::new());
    assert_eq!(detect_seasonality(&[0.0; 100]), Vec::<usize>::new());
    assert_eq!(forecast(&[0.0; 9], 3).unwrap().point, vec![0.0; 3], "zeros");

    // Exactly periodic (a fixed weekly pattern, no noise): MSTL leaves nothing for ETS, so the
    // trend is flat and the forecast repeats the week.
    let pattern = [100.0, 0.0, 0.0, 250.0, 0.0, 0.0, 40.0];
    let weekly: Vec<f64> = (0..70).map(|t| pattern[t % 7]).collect();
    let fc = forecast_with_periods(&weekly, 14, &[7]).unwrap();
    assert_eq!(fc.model, "MSTL[7]+Constant");
    assert_well_formed(&fc, 14);
    for (j, p) in fc.point.iter().enumerate() {
        assert!((p - pattern[(70 + j) % 7]).abs() < 1e-3, "{fc:?}");
    }
    let fc = forecast(&weekly, 14).unwrap();
    assert_well_formed(&fc, 14);
    assert_eq!(anomalies(&weekly, 4.0), Vec::new());
    let mut one_spike = constant.clone();
    one_spike[30] = 50.0;
    let found = anomalies(&one_spike, 4.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].index, found[0].kind), (30, AnomalyKind::Spike));

    // Too short.
    assert_eq!(
        forecast(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3),
        Err(ForecastError::TooShort { have: 7, need: 8 })
    );
    assert_eq!(
        forecast(&[], 3),
        Err(ForecastError::TooShort { have: 0, need: 8 })
    );
    // Exactly MIN_POINTS.
    let eight = [3.0, 4.0, 3.5, 5.0, 4.5, 4.0, 5.5, 5.0];
    let fc = forecast(&eight, 4).unwrap();
    assert_well_formed(&fc, 4);
    // Explicit periods need two cycles; a period under 2 is refused.
    let y = series(8, 40, 1.0, |t| t);
    assert_eq!(
        forecast_with_periods(&y, 5, &[30]),
        Err(ForecastError::TooShort { have: 40, need: 60 })
    );
    assert!(matches!(
        forecast_with_periods(&y, 5, &[1]),
        Err(ForecastError::Model(_))
    ));
    // Horizon 0: empty forecast.
    let fc = forecast(&y, 0).unwrap();
    assert!(fc.point.is_empty() && fc.upper95.is_empty());

    // NaN and infinity.
    let mut bad = series(9, 30, 1.0, |_| 5.0);
    bad[3] = f64::NAN;
    assert_eq!(
        forecast(&bad, 3),
        Err(ForecastError::NotFinite { index: 3 })
    );
    assert_eq!(anomalies(&bad, 4.0), Vec::new());
    assert_eq!(detect_seasonality(&bad), Vec::<usize>::new());
    assert_eq!(
        backtest(&bad, 3, 2, 1),
        Err(ForecastError::NotFinite { index: 3 })
    );
    bad[3] = 5.0;
    bad[20] = f64::INFINITY;
    assert_eq!(
        forecast_with_periods(&bad, 3, &[7]),
        Err(ForecastError::NotFinite { index: 20 })
    );

    // Backtests that do not fit.
    assert!(matches!(
        backtest(&y, 0, 3, 1),
        Err(ForecastError::Model(_))
    ));
    assert!(matches!(
        backtest(&y, 10, 30, 7),
        Err(ForecastError::TooShort { have: 40, .. })
    ));
    // 40 points, horizon 10, 3 origins, season 7: step 10 leaves 10 < 15 training points, so the
    // step falls back to 1 (first origin 40 - 10 - 2 = 28).
    let report = backtest(&y, 10, 3, 7).unwrap();
    assert_eq!(report.origins, 3);
    assert!(report.mae.is_finite());

    // Error messages say what is wrong.
    assert_eq!(
        ForecastError::TooShort { have: 7, need: 8 }.to_string(),
        "series too short: 7 points, need at least 8"
    );
    assert_eq!(
        ForecastError::NotFinite { index: 3 }.to_string(),
        "value at index 3 is not a finite number"
    );
}

#[test]
fn runway_of_a_linear_decline() {
    // Balance after day d (d = index + 1): 1000 - 10 d. The point is below zero first at d = 101
    // (1000 - 1010 = -10; at d = 100 it is exactly 0, not below). The 80 % band is +-100: the
    // lower bound 900 - 10 d is below zero first at d = 91, the upper 1100 - 10 d at d = 111.
    let days: Vec<f64> = (1..=200).map(f64::from).collect();
    let point: Vec<f64> = days.iter().map(|d| 1000.0 - 10.0 * d).collect();
    let shift = |delta: f64| point.iter().map(|p| p + delta).collect::<Vec<_>>();
    let fc = Forecast {
        model: "test".into(),
        point: point.clone(),
        lower80: shift(-100.0),
        upper80: shift(100.0),
        lower95: shift(-200.0),
        upper95: shift(200.0),
        seasonal_periods: Vec::new(),
    };
    assert_eq!(first_breach(&fc.point, 0.0), Some(100));
    assert_eq!(first_breach(&fc.lower80, 0.0), Some(90));
    assert_eq!(first_breach(&fc.upper80, 0.0), Some(110));
    let runway = runway_from_balance(&fc, 30.0);
    assert_eq!(
        runway,
        Runway {
            months_point: Some(101.0 / 30.0),
            months_low: Some(91.0 / 30.0),
            months_high: Some(111.0 / 30.0),
        }
    );
    // A 100-day horizon never sees the upper bound cross.
    let short = Forecast {
        point: fc.point[..100].to_vec(),
        lower80: fc.lower80[..100].to_vec(),
        upper80: fc.upper80[..100].to_vec(),
        ..fc.clone()
    };
    let runway = runway_from_balance(&short, 30.0);
    assert_eq!(runway.months_point, None);
    assert_eq!(runway.months_low, Some(91.0 / 30.0));
    assert_eq!(runway.months_high, None);
    assert_eq!(runway_from_balance(&fc, 0.0).months_point, None);

    assert_eq!(first_breach(&[], 0.0), None);
    assert_eq!(first_breach(&[5.0, 1.0, 0.0], 0.0), None);
    assert_eq!(first_breach(&[5.0, 1.0, -0.01], 0.0), Some(2));
    assert_eq!(first_breach(&[5.0, f64::NAN], 0.0), Some(1));
    assert_eq!(first_breach(&[5.0, 4.0], 4.5), Some(1));
}

#[test]
fn reports_round_trip_through_json() {
    let y = series(11, 120, 1.0, |t| 20.0 + 0.1 * t);
    let report = backtest(&y, 7, 3, 7).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(
        serde_json::from_str::<BacktestReport>(&json).unwrap(),
        report
    );
    let fc = forecast(&y, 5).unwrap();
    let json = serde_json::to_string(&fc).unwrap();
    assert_eq!(serde_json::from_str::<Forecast>(&json).unwrap(), fc);
}

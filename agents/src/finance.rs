//! Finance: forecasts, backtests and anomalies over daily money series.

pub mod forecast;

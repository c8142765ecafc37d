//! The finance domain: the ledger's vocabulary (streams and categories), statement imports,
//! valuation in the reporting currency, reports, forecasts, backtests and anomaly alerts.
//!
//! Everything here is plain functions over the [`memory::ledger::Ledger`]; the runtime hosts
//! them (CLI, API, the monthly backtest) and books approved expenses.

pub mod forecast;
pub mod import;
pub mod onchain;
pub mod outlook;
pub mod portfolio;
pub mod report;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

fn default_currency() -> String {
    "USD".to_owned()
}

fn default_streams() -> Vec<String> {
    ["validators", "cocoon", "investments", "services"]
        .map(str::to_owned)
        .to_vec()
}

fn default_categories() -> BTreeMap<String, Vec<String>> {
    [
        ("infrastructure", &["servers", "bandwidth", "cloud"][..]),
        ("personnel", &["salaries", "contractors"][..]),
        ("legal_and_compliance", &["legal", "audit", "licences"][..]),
        ("marketing", &["ads", "events"][..]),
    ]
    .into_iter()
    .map(|(name, subs)| {
        (
            name.to_owned(),
            subs.iter().map(|sub| (*sub).to_owned()).collect(),
        )
    })
    .collect()
}

fn default_runway_floor_months() -> f64 {
    6.0
}

fn default_anomaly_sigmas() -> f64 {
    4.0
}

fn default_max_rate_age_days() -> u64 {
    7
}

/// `[finance]`: the vocabulary of the ledger and what the reports start from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceConfig {
    /// Every report and forecast is in this currency.
    #[serde(default = "default_currency")]
    pub reporting_currency: String,
    /// Revenue streams an income entry may be attributed to.
    #[serde(default = "default_streams")]
    pub streams: Vec<String>,
    /// Expense categories and their sub-categories.
    #[serde(default = "default_categories")]
    pub categories: BTreeMap<String, Vec<String>>,
    /// Cash in the reporting currency at the start of `opening_date`; the balance is this plus
    /// every entry dated on or after it.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub opening_balance: Decimal,
    #[serde(default)]
    pub opening_date: Option<NaiveDate>,
    /// Alert when the 80% lower band of the cash forecast falls below this many months of burn.
    #[serde(default = "default_runway_floor_months")]
    pub runway_floor_months: f64,
    /// A rate up to this many days older than an entry values it (weekends, holidays).
    #[serde(default = "default_max_rate_age_days")]
    pub max_rate_age_days: u64,
    /// A day this many robust standard deviations away from its neighbours is an expense
    /// spike or a revenue drop.
    #[serde(default = "default_anomaly_sigmas")]
    pub anomaly_sigmas: f64,
    /// CoinGecko coin id for each crypto currency code held (TON -> the-open-network).
    #[serde(default = "default_coin_ids")]
    pub coin_ids: BTreeMap<String, String>,
    /// `[finance.onchain]`: TON accounts whose incoming transfers are income.
    #[serde(default)]
    pub onchain: onchain::OnchainConfig,
    /// `[finance.portfolio]`: wallets valued daily, concentration limits, rebalancing.
    #[serde(default)]
    pub portfolio: portfolio::PortfolioConfig,
}

fn default_coin_ids() -> BTreeMap<String, String> {
    [("TON", "the-open-network"), ("USDT", "tether")]
        .into_iter()
        .map(|(code, id)| (code.to_owned(), id.to_owned()))
        .collect()
}

impl Default for FinanceConfig {
    fn default() -> Self {
        FinanceConfig {
            reporting_currency: default_currency(),
            streams: default_streams(),
            categories: default_categories(),
            opening_balance: Decimal::ZERO,
            opening_date: None,
            runway_floor_months: default_runway_floor_months(),
            max_rate_age_days: default_max_rate_age_days(),
            anomaly_sigmas: default_anomaly_sigmas(),
            coin_ids: default_coin_ids(),
            onchain: onchain::OnchainConfig::default(),
            portfolio: portfolio::PortfolioConfig::default(),
        }
    }
}

impl FinanceConfig {
    /// Every problem with the section, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_currency_code(&self.reporting_currency) {
            problems.push(format!(
                "finance.reporting_currency: {:?} is not a currency code (3 to 5 capital letters, e.g. USD)",
                self.reporting_currency
            ));
        }
        if self.streams.is_empty() {
            problems.push("finance.streams: name at least one revenue stream".to_owned());
        }
        for name in self.streams.iter().chain(self.categories.keys()) {
            if !is_name(name) {
                problems.push(format!(
                    "finance: {name:?} is not a valid stream or category name (lower-case letters, digits and _)"
                ));
            }
        }
        if !(self.runway_floor_months.is_finite() && self.runway_floor_months >= 0.0) {
            problems.push(
                "finance.runway_floor_months: must be a number of months, 0 or more".to_owned(),
            );
        }
        if !(self.anomaly_sigmas.is_finite() && self.anomaly_sigmas > 0.0) {
            problems.push("finance.anomaly_sigmas: must be a positive number".to_owned());
        }
        for code in self.coin_ids.keys() {
            if !is_currency_code(code) {
                problems.push(format!("finance.coin_ids: {code:?} is not a currency code"));
            }
        }
        problems.extend(self.onchain.problems(self));
        problems.extend(self.portfolio.problems());
        problems
    }

    pub fn has_stream(&self, stream: &str) -> bool {
        self.streams.iter().any(|known| known == stream)
    }

    /// Whether `category` (and `subcategory`, when given) is configured.
    pub fn has_category(&self, category: &str, subcategory: Option<&str>) -> bool {
        self.categories
            .get(category)
            .is_some_and(|subs| subcategory.is_none_or(|sub| subs.iter().any(|known| known == sub)))
    }

    /// Checks an entry's attribution against the configuration.
    pub fn check_attribution(
        &self,
        stream: Option<&str>,
        category: Option<&str>,
        subcategory: Option<&str>,
    ) -> Result<(), String> {
        if stream.is_some() && category.is_some() {
            return Err(
                "an entry is income of a stream or an expense of a category, not both".to_owned(),
            );
        }
        if let Some(stream) = stream
            && !self.has_stream(stream)
        {
            return Err(format!(
                "unknown stream {stream:?} (configured: {})",
                self.streams.join(", ")
            ));
        }
        if subcategory.is_some() && category.is_none() {
            return Err("a sub-category needs a category".to_owned());
        }
        if let Some(category) = category
            && !self.has_category(category, subcategory)
        {
            return Err(match self.categories.get(category) {
                None => format!(
                    "unknown category {category:?} (configured: {})",
                    self.categories
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(subs) => format!(
                    "unknown sub-category {:?} of {category} (configured: {})",
                    subcategory.unwrap_or_default(),
                    subs.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// 3 to 5 ASCII capitals or digits, starting with a letter (USD, TON, USDT).
pub fn is_currency_code(code: &str) -> bool {
    (3..=5).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

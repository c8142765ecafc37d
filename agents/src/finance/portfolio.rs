//! The portfolio: balance snapshots of every account (exchanges, custody, wallets, brokerage,
//! private positions) valued day by day in the reporting currency; allocation, P&L,
//! volatility, concentration limits with a rebalancing plan, and the yield of the operator's
//! own validators against the public staking pools.
//!
//! Balances are snapshots ([`Holding`]), not movements: a position holds the quantity of its
//! latest snapshot until the next one, and a snapshot of quantity 0 closes it. A position
//! that cannot be valued on a day (no rate within `finance.max_rate_age_days`) is listed in
//! [`PortfolioReport::missing`] and left out of that day's total, never counted as zero.
//!
//! Plain functions over the [`Ledger`]; the runtime fetches wallet balances and pools and
//! hosts the CLI and API. Nothing here moves money: a [`RebalanceStep`] is a proposal.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, Utc};
use memory::StoreError;
use memory::ledger::{AssetClass, Holding, HoldingSource, Ledger, Valuation};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use tools::tonapi::StakingPool;

use super::import::{ImportError, RowError, data_rows, strip_bom};
use super::report::{Valuer, aligned, money};
use super::{FinanceConfig, is_currency_code};

/// The asset a wallet balance is in; also the asset a [`RebalanceStep::Transfer`] moves.
pub const TON: &str = "TON";

/// Fewer daily returns than this give no volatility.
pub const MIN_RETURNS_FOR_VOLATILITY: usize = 10;

/// Own stake cycles that returned within this many days of the latest one make the own APY.
pub const OWN_APY_WINDOW_DAYS: i64 = 90;

const NANOTON_SCALE: u32 = 9;

/// A position worth more than this (10^20 in the reporting currency) is a broken quantity or
/// rate, not wealth: it is listed as unvalued, and the sums of the others cannot overflow.
const MAX_POSITION_VALUE: Decimal = Decimal::from_parts(1_661_992_960, 1_808_227_885, 5, false, 0);

/// The largest jetton quantity taken as a holding (10^18 tokens): more is a hostile supply.
const MAX_JETTON_QUANTITY: Decimal = Decimal::from_parts(2_808_348_672, 232_830_643, 0, false, 0);

fn default_volatility_window_days() -> u32 {
    30
}

/// `[finance.portfolio]`: which wallets to read, the concentration limits and where excess TON
/// would go.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioConfig {
    /// TON wallets whose balance the runtime stores as holdings (see [`wallet_holding`]).
    #[serde(default)]
    pub wallets: Vec<PortfolioWallet>,
    #[serde(default)]
    pub limits: Vec<ConcentrationLimit>,
    /// A TON address excess TON would be sent to (an exchange deposit address, usually).
    #[serde(default)]
    pub rebalance_to: Option<String>,
    /// Days of daily returns behind the annualized volatility.
    #[serde(default = "default_volatility_window_days")]
    pub volatility_window_days: u32,
    /// Which jettons in the wallets count (see [`JettonPolicy`]).
    #[serde(default)]
    pub jettons: JettonPolicy,
}

/// Which jettons (tokens on TON) of the portfolio wallets are holdings. Anyone can mint a
/// jetton called USDT and airdrop it with a made-up price, so by default only tonapi's white
/// list counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JettonPolicy {
    /// tonapi's white list only.
    #[default]
    Verified,
    /// Everything but the black list.
    All,
    /// No jettons: TON balances only.
    None,
}

impl JettonPolicy {
    /// Whether a jetton of tonapi's `verification` counts.
    pub fn admits(self, verification: &str) -> bool {
        match self {
            JettonPolicy::Verified => verification == "whitelist",
            JettonPolicy::All => verification != "blacklist",
            JettonPolicy::None => false,
        }
    }
}

/// Stablecoin codes: a jetton with one of these asset codes is in the stablecoin class.
pub const STABLECOINS: [&str; 8] = [
    "USDT", "USDC", "DAI", "USDE", "TUSD", "FDUSD", "PYUSD", "USDD",
];

/// Fiat codes no jetton may take as its asset code: a token called EUR would otherwise price
/// every EUR entry (and the expense approval limits) at its own market.
const FIAT_CODES: [&str; 24] = [
    "USD", "EUR", "GBP", "JPY", "CHF", "CNY", "RUB", "AED", "SGD", "HKD", "CAD", "AUD", "KRW",
    "INR", "TRY", "UAH", "KZT", "BRL", "PLN", "SEK", "NOK", "DKK", "CZK", "ILS",
];

/// The asset code of a jetton. A white-listed jetton with a plain symbol (letters and digits,
/// at most 12) is its symbol in capitals, `₮` read as `T` (tonapi's `USD₮` is Tether's USDT).
/// Any other jetton, and one whose symbol is TON, the reporting currency or a fiat code, keeps
/// the start of its master in the code (`USDT (b113a994)`): anyone can mint a jetton called
/// USDT or EUR, and it must never merge with, or set the rate of, the real thing.
pub fn jetton_asset(jetton: &tools::tonapi::JettonBalance, reporting_currency: &str) -> String {
    let code = jetton.symbol.trim().replace('₮', "T").to_uppercase();
    let plain = !code.is_empty()
        && code.chars().count() <= 12
        && code.chars().all(|c| c.is_ascii_alphanumeric());
    let reserved = code == TON
        || code.eq_ignore_ascii_case(reporting_currency)
        || FIAT_CODES.contains(&code.as_str());
    if jetton.verification == "whitelist" && plain && !reserved {
        return code;
    }
    let mut clean: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    if clean.is_empty() {
        clean = "JETTON".to_owned();
    }
    let short: String = jetton
        .master
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .chars()
        .take(8)
        .collect();
    format!("{clean} ({short})")
}

/// A jetton balance of a portfolio wallet on `date` as a holding: quantity = raw balance /
/// 10^decimals, asset code from [`jetton_asset`]. `None` when the balance does not fit a
/// decimal or is above 10^18 tokens (a hostile supply).
pub fn jetton_holding(
    wallet: &PortfolioWallet,
    date: NaiveDate,
    jetton: &tools::tonapi::JettonBalance,
    reporting_currency: &str,
) -> Option<Holding> {
    let raw = i128::try_from(jetton.raw_balance).ok()?;
    let quantity = Decimal::try_from_i128_with_scale(raw, jetton.decimals)
        .ok()?
        .normalize();
    if quantity > MAX_JETTON_QUANTITY {
        return None;
    }
    let asset = jetton_asset(jetton, reporting_currency);
    let class = if STABLECOINS.contains(&asset.as_str()) {
        AssetClass::Stablecoin
    } else {
        AssetClass::Crypto
    };
    Some(Holding {
        date,
        account: wallet.label.clone(),
        asset,
        class,
        quantity,
        valuation: None,
        cost_basis: None,
        source: HoldingSource::OnChain {
            address: wallet.address.clone(),
        },
    })
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        PortfolioConfig {
            wallets: Vec::new(),
            limits: Vec::new(),
            rebalance_to: None,
            volatility_window_days: default_volatility_window_days(),
            jettons: JettonPolicy::default(),
        }
    }
}

/// A TON wallet of the portfolio. Its balance is stored as a holding whose account is the
/// label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioWallet {
    /// Raw (`wc:hex`) or user-friendly.
    pub address: String,
    pub label: String,
}

/// At most `max_share` of the portfolio's value in one asset, or in one class: give exactly
/// one of `asset` and `class`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcentrationLimit {
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub class: Option<AssetClass>,
    /// A share in (0, 1]: 0.4 is 40%.
    pub max_share: f64,
}

impl ConcentrationLimit {
    /// "asset TON", "class crypto".
    pub fn label(&self) -> String {
        match (&self.asset, self.class) {
            (Some(asset), _) => format!("asset {asset}"),
            (None, Some(class)) => format!("class {class}"),
            (None, None) => "nothing".to_owned(),
        }
    }
}

impl PortfolioConfig {
    /// Every problem with the section, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut addresses: HashMap<String, usize> = HashMap::new();
        let mut labels: HashMap<&str, usize> = HashMap::new();
        for (index, wallet) in self.wallets.iter().enumerate() {
            let at = format!("finance.portfolio.wallets[{index}]");
            match tools::ton::parse_address(&wallet.address) {
                Ok(parsed) => {
                    if let Some(first) = addresses.insert(parsed.raw, index) {
                        problems.push(format!(
                            "{at}.address: the same wallet as finance.portfolio.wallets[{first}]"
                        ));
                    }
                }
                Err(error) => problems.push(format!(
                    "{at}.address: {:?} is not a TON address ({error})",
                    wallet.address
                )),
            }
            let label = wallet.label.trim();
            if label.is_empty() {
                problems.push(format!(
                    "{at}.label: name the wallet (its balance is stored under that account name)"
                ));
            } else if let Some(first) = labels.insert(label, index) {
                problems.push(format!(
                    "{at}.label: {label:?} is already the label of finance.portfolio.wallets[{first}]"
                ));
            }
        }
        for (index, limit) in self.limits.iter().enumerate() {
            let at = format!("finance.portfolio.limits[{index}]");
            match (&limit.asset, limit.class) {
                (Some(_), Some(_)) | (None, None) => problems.push(format!(
                    "{at}: give exactly one of `asset` (e.g. \"TON\") or `class` (e.g. \"crypto\")"
                )),
                (Some(asset), None) if asset.trim().is_empty() => {
                    problems.push(format!("{at}.asset: is empty"));
                }
                _ => {}
            }
            if !(limit.max_share.is_finite() && limit.max_share > 0.0 && limit.max_share <= 1.0) {
                problems.push(format!(
                    "{at}.max_share: {} is not a share in (0, 1] (0.4 means 40%)",
                    limit.max_share
                ));
            }
        }
        if let Some(address) = &self.rebalance_to
            && let Err(error) = tools::ton::parse_address(address)
        {
            problems.push(format!(
                "finance.portfolio.rebalance_to: {address:?} is not a TON address ({error})"
            ));
        }
        if (self.volatility_window_days as usize) < MIN_RETURNS_FOR_VOLATILITY {
            problems.push(format!(
                "finance.portfolio.volatility_window_days: {} is too short; at least {MIN_RETURNS_FOR_VOLATILITY} (one daily return per day)",
                self.volatility_window_days
            ));
        }
        problems
    }
}

/// The holding a wallet balance is stored as: account = the wallet's label, asset TON.
pub fn wallet_holding(wallet: &PortfolioWallet, date: NaiveDate, balance_nanoton: u128) -> Holding {
    let quantity = super::onchain::ton(balance_nanoton);
    Holding {
        date,
        account: wallet.label.clone(),
        asset: TON.to_owned(),
        class: AssetClass::Crypto,
        quantity,
        valuation: None,
        cost_basis: None,
        source: HoldingSource::OnChain {
            address: wallet.address.clone(),
        },
    }
}

// ---- balance import ----

const REQUIRED_COLUMNS: [&str; 5] = ["date", "account", "asset", "class", "quantity"];
const OPTIONAL_COLUMNS: [&str; 3] = ["value", "currency", "cost_basis"];

/// An equity ticker: 1 to 12 capitals, digits, `.` or `-` (AAPL, BRK.B, 7203.T).
fn is_ticker(code: &str) -> bool {
    (1..=12).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_alphanumeric())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

fn parse_decimal(text: &str, what: &str) -> Result<Decimal, String> {
    let value = Decimal::from_str(text)
        .map_err(|_| format!("{what} {text:?} is not a decimal number (e.g. 1234.56)"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("{what} {text:?} is negative"));
    }
    Ok(value)
}

/// Reads a balances file: CSV with the header `date,account,asset,class,quantity` and the
/// optional columns `value,currency` (a manual valuation of the whole position) and
/// `cost_basis` (in the reporting currency), in any order. Dates are `YYYY-MM-DD`, numbers
/// use `.` and no thousands separator. Crypto, fiat and stablecoin codes and equity tickers
/// are upper-cased; a private position's name is kept as written.
///
/// All or nothing like a statement import: every bad row is reported with its line (as an
/// editor shows it) and the reason. `file` names the file in errors and in each holding's
/// source.
pub fn parse_balances(text: &str, file: &str) -> Result<Vec<Holding>, ImportError> {
    let body = strip_bom(text.as_bytes());
    let file_error = |message: String| ImportError::File {
        file: file.to_owned(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|error| file_error(format!("cannot read the header row: {error}")))?
        .clone();
    let expected = || {
        format!(
            "expected {} and optionally {}",
            REQUIRED_COLUMNS.join(","),
            OPTIONAL_COLUMNS.join(",")
        )
    };
    let mut columns: HashMap<String, usize> = HashMap::new();
    let mut header_problems = Vec::new();
    for (index, header) in headers.iter().enumerate() {
        let name = header.to_ascii_lowercase();
        if !REQUIRED_COLUMNS.contains(&name.as_str()) && !OPTIONAL_COLUMNS.contains(&name.as_str())
        {
            header_problems.push(format!(
                "line 1: unknown column {header:?} ({})",
                expected()
            ));
        } else if columns.insert(name, index).is_some() {
            header_problems.push(format!("line 1: column {header:?} appears twice"));
        }
    }
    for name in REQUIRED_COLUMNS {
        if !columns.contains_key(name) && !headers.iter().all(str::is_empty) {
            header_problems.push(format!("line 1: no column {name:?} ({})", expected()));
        }
    }
    if headers.iter().all(str::is_empty) {
        header_problems.push(format!("the file is empty ({})", expected()));
    }
    if columns.contains_key("value") != columns.contains_key("currency") {
        header_problems.push(
            "line 1: the columns value and currency go together (a valuation and its currency)"
                .to_owned(),
        );
    }
    if !header_problems.is_empty() {
        return Err(file_error(header_problems.join("; ")));
    }

    let mut holdings = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<(String, String, NaiveDate), u64> = HashMap::new();
    let width = headers.len();
    for row in data_rows(&mut reader, body, 0, width) {
        let (line, record) = match row {
            Ok(row) => row,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let field = |name: &str| {
            columns
                .get(name)
                .and_then(|&index| record.get(index))
                .unwrap_or("")
        };
        let mut problems = Vec::new();
        let date_text = field("date");
        let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
            .map_err(|_| problems.push(format!("date {date_text:?} is not a date (YYYY-MM-DD)")))
            .ok();
        let account = field("account").to_owned();
        if account.is_empty() {
            problems.push("account is empty".to_owned());
        }
        let class_text = field("class");
        let class = AssetClass::parse(class_text);
        if class.is_none() {
            problems.push(format!(
                "class {class_text:?} is not one of {}",
                AssetClass::ALL.map(AssetClass::name).join(", ")
            ));
        }
        let asset_text = field("asset");
        let asset = match class {
            _ if asset_text.is_empty() => {
                problems.push("asset is empty".to_owned());
                String::new()
            }
            Some(AssetClass::Private) | None => asset_text.to_owned(),
            Some(AssetClass::Equity) => {
                let ticker = asset_text.to_ascii_uppercase();
                if !is_ticker(&ticker) {
                    problems.push(format!(
                        "asset {asset_text:?} is not a ticker (capitals, digits, . or -, e.g. AAPL)"
                    ));
                }
                ticker
            }
            Some(_) => {
                let code = asset_text.to_ascii_uppercase();
                if !is_currency_code(&code) {
                    problems.push(format!(
                        "asset {asset_text:?} is not a currency code (3 to 5 capitals or digits, e.g. TON)"
                    ));
                }
                code
            }
        };
        let quantity = parse_decimal(field("quantity"), "quantity")
            .map_err(|problem| problems.push(problem))
            .ok();
        let valuation = match (field("value"), field("currency")) {
            ("", "") => None,
            ("", _) | (_, "") => {
                problems.push(
                    "give both value and currency (the valuation of the whole position), or neither"
                        .to_owned(),
                );
                None
            }
            (value, currency) => {
                let value = parse_decimal(value, "value")
                    .map_err(|problem| problems.push(problem))
                    .ok();
                let code = currency.to_ascii_uppercase();
                if !is_currency_code(&code) {
                    problems.push(format!("currency {currency:?} is not a currency code"));
                }
                value.map(|value| Valuation {
                    value,
                    currency: code,
                })
            }
        };
        let cost_basis = match field("cost_basis") {
            "" => None,
            text => parse_decimal(text, "cost_basis")
                .map_err(|problem| problems.push(problem))
                .ok(),
        };
        let (Some(date), Some(class), Some(quantity), true) =
            (date, class, quantity, problems.is_empty())
        else {
            errors.push(RowError {
                line,
                message: problems.join("; "),
            });
            continue;
        };
        if let Some(first) = seen.insert((account.clone(), asset.clone(), date), line) {
            errors.push(RowError {
                line,
                message: format!(
                    "the same account, asset and date as line {first} (one balance per position and day)"
                ),
            });
            continue;
        }
        holdings.push(Holding {
            date,
            account,
            asset,
            class,
            quantity,
            valuation,
            cost_basis,
            source: HoldingSource::Import {
                file: file.to_owned(),
                line: usize::try_from(line).unwrap_or(usize::MAX),
            },
        });
    }
    if !errors.is_empty() {
        return Err(ImportError::Rows {
            file: file.to_owned(),
            rows: errors,
        });
    }
    if holdings.is_empty() {
        return Err(file_error(
            "no balance rows below the header; nothing imported".to_owned(),
        ));
    }
    Ok(holdings)
}

// ---- valuation ----

/// The portfolio's value on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayValue {
    pub date: NaiveDate,
    /// Sum of the positions valued that day.
    pub total: Decimal,
    /// Positions held that day without a value, left out of `total`.
    pub unvalued: usize,
}

/// One position (account and asset) at the end of the period. A position closed during the
/// period (held at `from`, quantity 0 at `to`) is listed with quantity and value 0, so the
/// changes add up to the P&L.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionRow {
    pub account: String,
    pub asset: String,
    pub class: AssetClass,
    pub quantity: Decimal,
    /// The date of the snapshot in force at `to`.
    pub as_of: NaiveDate,
    /// Per unit, in the reporting currency; `None` when not valued.
    pub price: Option<Decimal>,
    /// In the reporting currency; `None` when not valued (see `missing`).
    pub value: Option<Decimal>,
    /// Of the total at `to`.
    pub share: Option<f64>,
    pub cost_basis: Option<Decimal>,
    /// Value minus cost basis.
    pub unrealized: Option<Decimal>,
    /// Value at `to` minus value at `from` (0 when not held then); `None` when either is unknown.
    pub change: Option<Decimal>,
    /// A manual valuation's date.
    pub valuation_date: Option<NaiveDate>,
    /// Days from the manual valuation to `to`.
    pub stale_days: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAllocation {
    pub class: AssetClass,
    pub value: Decimal,
    pub share: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetAllocation {
    pub asset: String,
    pub class: AssetClass,
    pub value: Decimal,
    pub share: f64,
}

/// Annualized volatility of one asset's daily rate in the reporting currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetVolatility {
    pub asset: String,
    /// `None` with fewer than [`MIN_RETURNS_FOR_VOLATILITY`] returns, or for a manually
    /// valued asset.
    pub annualized: Option<f64>,
}

/// A concentration limit exceeded at `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// "asset TON", "class crypto".
    pub limit: String,
    pub asset: Option<String>,
    pub class: Option<AssetClass>,
    /// The asset's or class's value at `to`.
    pub value: Decimal,
    pub share: f64,
    pub max_share: f64,
    /// Value above the limit: selling this much (the proceeds staying in the portfolio)
    /// brings the share down to `max_share`.
    pub excess_value: Decimal,
}

/// A position left out of the totals on some days for want of a rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingValue {
    pub account: String,
    pub asset: String,
    /// The currency with no rate to the reporting currency: the asset, or a manual
    /// valuation's currency.
    pub currency: String,
    pub days: usize,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

/// The portfolio over `from..=to`, in `currency`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortfolioReport {
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DayValue>,
    /// The total at `to`.
    pub total: Decimal,
    /// By value at `to`, largest first.
    pub positions: Vec<PositionRow>,
    pub allocation_by_class: Vec<ClassAllocation>,
    pub allocation_by_asset: Vec<AssetAllocation>,
    /// Total at `to` minus total at `from`: market moves and money in or out alike.
    pub pnl: Decimal,
    /// The part of `pnl` from prices, rates and revaluations: each day, every position held
    /// the day before at its quantity of that day, valued at the new price less the old.
    /// `pnl - market_pnl` is money moved in or out, trades, and positions that gained or
    /// lost a rate.
    pub market_pnl: Decimal,
    /// Annualized (× √365) sample standard deviation of the total's daily log returns over
    /// the `volatility_window_days` days to `to`; returns touching a day with an unvalued
    /// position are left out. `None` with fewer than [`MIN_RETURNS_FOR_VOLATILITY`] returns.
    pub volatility: Option<f64>,
    pub volatility_window_days: u32,
    pub asset_volatility: Vec<AssetVolatility>,
    pub breaches: Vec<Breach>,
    pub missing: Vec<MissingValue>,
}

/// Rates through the [`Valuer`], each (currency, day) looked up once.
struct Pricer<'a> {
    valuer: Valuer<'a>,
    cache: HashMap<(String, NaiveDate), Option<Decimal>>,
}

impl Pricer<'_> {
    fn rate(&mut self, currency: &str, date: NaiveDate) -> Result<Option<Decimal>, StoreError> {
        let key = (currency.to_owned(), date);
        if let Some(rate) = self.cache.get(&key) {
            return Ok(*rate);
        }
        let rate = self.valuer.rate(currency, date)?;
        self.cache.insert(key, rate);
        Ok(rate)
    }

    /// What the position whose snapshots (oldest first) are `snapshots` is worth on `date`.
    fn worth<'h>(
        &mut self,
        snapshots: &'h [Holding],
        date: NaiveDate,
    ) -> Result<(Worth, Option<&'h Holding>), StoreError> {
        let in_force = snapshots.partition_point(|holding| holding.date <= date);
        let Some(holding) = in_force.checked_sub(1).and_then(|i| snapshots.get(i)) else {
            return Ok((Worth::Absent, None));
        };
        if holding.quantity.is_zero() {
            return Ok((Worth::Absent, Some(holding)));
        }
        let (amount, currency) = match &holding.valuation {
            Some(valuation) => (valuation.value, valuation.currency.as_str()),
            None => (holding.quantity, holding.asset.as_str()),
        };
        let worth = match self.rate(currency, date)? {
            Some(rate) => match amount
                .checked_mul(rate)
                .filter(|value| value.abs() <= MAX_POSITION_VALUE)
            {
                Some(value) => {
                    let value = value.round_dp(2);
                    let price = if holding.valuation.is_some() {
                        value
                            .checked_div(holding.quantity)
                            .map(|price| price.round_dp(6).normalize())
                    } else {
                        Some(rate)
                    };
                    Worth::Valued { value, price }
                }
                None => Worth::Unvalued {
                    currency: currency.to_owned(),
                },
            },
            None => Worth::Unvalued {
                currency: currency.to_owned(),
            },
        };
        Ok((worth, Some(holding)))
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Worth {
    Absent,
    Valued {
        value: Decimal,
        price: Option<Decimal>,
    },
    Unvalued {
        currency: String,
    },
}

impl Worth {
    /// The value, 0 when not held, `None` when held but not valued.
    fn value_or_zero(&self) -> Option<Decimal> {
        match self {
            Worth::Absent => Some(Decimal::ZERO),
            Worth::Valued { value, .. } => Some(*value),
            Worth::Unvalued { .. } => None,
        }
    }
}

/// The market part of one position's change from one day to the next: the same snapshot
/// valued anew (a price, a rate, a revaluation) is all market; a new snapshot of a priced asset
/// is the old quantity at the new price less the old value (the rest is money in or out); a
/// new manual valuation of the same quantity is a revaluation. Anything involving an absent or
/// unvalued day is not market.
fn market_move(
    before: &Worth,
    held_before: Option<&Holding>,
    now: &Worth,
    held_now: Option<&Holding>,
) -> Decimal {
    let (
        Worth::Valued {
            value: old,
            price: old_price,
        },
        Worth::Valued {
            value: new,
            price: new_price,
        },
        Some(held_before),
        Some(held_now),
    ) = (before, now, held_before, held_now)
    else {
        return Decimal::ZERO;
    };
    if held_before.date == held_now.date {
        return new - old;
    }
    match (
        &held_before.valuation,
        &held_now.valuation,
        old_price,
        new_price,
    ) {
        (None, None, _, Some(price)) => held_before
            .quantity
            .checked_mul(*price)
            .map_or(Decimal::ZERO, |value| value.round_dp(2) - old),
        (Some(_), Some(_), _, _) if held_before.quantity == held_now.quantity => new - old,
        _ => Decimal::ZERO,
    }
}

fn days_between(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    std::iter::successors(Some(from), move |day| {
        day.checked_add_days(Days::new(1))
            .filter(|next| *next <= to)
    })
    .filter(move |day| *day <= to)
}

fn share_of(value: Decimal, total: Decimal) -> f64 {
    if total > Decimal::ZERO {
        value
            .checked_div(total)
            .and_then(|share| share.to_f64())
            .unwrap_or(0.0)
    } else {
        0.0
    }
}

/// A share limit as an exact decimal (0.4 stays 0.4, not the nearest binary fraction).
fn share_decimal(share: f64) -> Decimal {
    Decimal::from_str(&share.to_string())
        .or_else(|_| Decimal::from_scientific(&format!("{share:e}")))
        .unwrap_or(Decimal::ONE)
}

/// Annualized sample standard deviation of `returns`.
fn annualized_volatility(returns: &[f64]) -> Option<f64> {
    if returns.len() < MIN_RETURNS_FOR_VOLATILITY {
        return None;
    }
    let count = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / count;
    let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (count - 1.0);
    Some(variance.sqrt() * 365f64.sqrt())
}

/// Daily log returns of a series with gaps: only between consecutive days both present and
/// positive.
fn log_returns(series: &[Option<Decimal>]) -> Vec<f64> {
    series
        .windows(2)
        .filter_map(|pair| {
            let before = pair.first().copied().flatten()?.to_f64()?;
            let after = pair.get(1).copied().flatten()?.to_f64()?;
            (before > 0.0 && after > 0.0).then(|| (after / before).ln())
        })
        .collect()
}

/// Values the portfolio every day of `from..=to` (a `from` after `to` is taken as `to`), from
/// the holdings in the ledger and its rates (the [`Valuer`]'s rules: direct, inverse or
/// USD-cross, at most `finance.max_rate_age_days` old). Days before `from` back to the
/// volatility window are valued too, for the volatility only. Limits and the window come
/// from `finance.portfolio`.
pub fn valuation(
    ledger: &Ledger,
    finance: &FinanceConfig,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PortfolioReport, StoreError> {
    let portfolio = &finance.portfolio;
    let from = from.min(to);
    let window = portfolio.volatility_window_days.max(1);
    let history_from = to
        .checked_sub_days(Days::new(u64::from(window)))
        .unwrap_or(to)
        .min(from);
    let mut positions: BTreeMap<(String, String), Vec<Holding>> = BTreeMap::new();
    for holding in ledger.holdings(to)? {
        positions
            .entry((holding.account.clone(), holding.asset.clone()))
            .or_default()
            .push(holding);
    }
    for snapshots in positions.values_mut() {
        snapshots.sort_by_key(|holding| holding.date);
    }
    let mut pricer = Pricer {
        valuer: Valuer::new(ledger, finance),
        cache: HashMap::new(),
    };

    let mut totals: Vec<(NaiveDate, Decimal, usize)> = Vec::new();
    let mut missing: BTreeMap<(String, String, String), (usize, NaiveDate, NaiveDate)> =
        BTreeMap::new();
    let mut market_pnl = Decimal::ZERO;
    // Each position's worth and snapshot the day before.
    let mut yesterday: HashMap<(String, String), (Worth, Option<Holding>)> = HashMap::new();
    for date in days_between(history_from, to) {
        let mut total = Decimal::ZERO;
        let mut unvalued = 0;
        for ((account, asset), snapshots) in &positions {
            let (worth, holding) = pricer.worth(snapshots, date)?;
            let key = (account.clone(), asset.clone());
            if date > from
                && let Some((before, held)) = yesterday.get(&key)
            {
                market_pnl =
                    market_pnl.saturating_add(market_move(before, held.as_ref(), &worth, holding));
            }
            yesterday.insert(key, (worth.clone(), holding.cloned()));
            match worth {
                Worth::Absent => {}
                Worth::Valued { value, .. } => total += value,
                Worth::Unvalued { currency } => {
                    unvalued += 1;
                    if date >= from {
                        let entry = missing
                            .entry((account.clone(), asset.clone(), currency))
                            .or_insert((0, date, date));
                        entry.0 += 1;
                        entry.2 = date;
                    }
                }
            }
        }
        totals.push((date, total, unvalued));
    }
    let total_on = |date: NaiveDate| {
        totals
            .iter()
            .find(|(day, ..)| *day == date)
            .map_or(Decimal::ZERO, |(_, total, _)| *total)
    };
    let total = total_on(to);
    let pnl = total - total_on(from);

    let mut rows = Vec::new();
    for snapshots in positions.values() {
        let (at_to, holding_to) = pricer.worth(snapshots, to)?;
        let (at_from, _) = pricer.worth(snapshots, from)?;
        let Some(holding) = holding_to else {
            continue;
        };
        if at_to == Worth::Absent && at_from == Worth::Absent {
            continue;
        }
        let (price, value) = match &at_to {
            Worth::Valued { value, price } => (*price, Some(*value)),
            Worth::Absent => (None, Some(Decimal::ZERO)),
            Worth::Unvalued { .. } => (None, None),
        };
        let change = match (at_to.value_or_zero(), at_from.value_or_zero()) {
            (Some(now), Some(before)) => Some(now - before),
            _ => None,
        };
        let valuation_date = holding.valuation.as_ref().map(|_| holding.date);
        rows.push(PositionRow {
            account: holding.account.clone(),
            asset: holding.asset.clone(),
            class: holding.class,
            quantity: holding.quantity,
            as_of: holding.date,
            price,
            value,
            share: value.map(|value| share_of(value, total)),
            cost_basis: holding.cost_basis,
            unrealized: value
                .zip(holding.cost_basis)
                .filter(|_| !holding.quantity.is_zero())
                .and_then(|(value, cost)| value.checked_sub(cost)),
            change,
            valuation_date,
            stale_days: valuation_date.map(|date| (to - date).num_days()),
        });
    }
    rows.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then_with(|| a.account.cmp(&b.account))
            .then_with(|| a.asset.cmp(&b.asset))
    });

    let mut by_class: BTreeMap<AssetClass, Decimal> = BTreeMap::new();
    let mut by_asset: BTreeMap<String, (AssetClass, Decimal, bool)> = BTreeMap::new();
    for row in &rows {
        let Some(value) = row.value.filter(|_| !row.quantity.is_zero()) else {
            continue;
        };
        *by_class.entry(row.class).or_default() += value;
        let entry = by_asset
            .entry(row.asset.clone())
            .or_insert((row.class, Decimal::ZERO, false));
        entry.1 += value;
        entry.2 |= row.valuation_date.is_some();
    }
    let mut allocation_by_class: Vec<ClassAllocation> = by_class
        .iter()
        .map(|(class, value)| ClassAllocation {
            class: *class,
            value: *value,
            share: share_of(*value, total),
        })
        .collect();
    allocation_by_class.sort_by(|a, b| b.value.cmp(&a.value).then(a.class.cmp(&b.class)));
    let mut allocation_by_asset: Vec<AssetAllocation> = by_asset
        .iter()
        .map(|(asset, (class, value, _))| AssetAllocation {
            asset: asset.clone(),
            class: *class,
            value: *value,
            share: share_of(*value, total),
        })
        .collect();
    allocation_by_asset.sort_by(|a, b| b.value.cmp(&a.value).then(a.asset.cmp(&b.asset)));

    // Volatility over the window ending at `to`: window + 1 days give `window` returns.
    let window_from = to
        .checked_sub_days(Days::new(u64::from(window)))
        .unwrap_or(to);
    let total_series: Vec<Option<Decimal>> = totals
        .iter()
        .filter(|(date, ..)| *date >= window_from)
        .map(|(_, total, unvalued)| (*unvalued == 0).then_some(*total))
        .collect();
    let volatility = annualized_volatility(&log_returns(&total_series));
    let mut asset_volatility = Vec::new();
    for allocation in &allocation_by_asset {
        let manual = by_asset
            .get(&allocation.asset)
            .is_some_and(|(_, _, manual)| *manual);
        let annualized = if manual {
            None
        } else {
            let mut rates = Vec::new();
            for date in days_between(window_from, to) {
                rates.push(pricer.rate(&allocation.asset, date)?);
            }
            annualized_volatility(&log_returns(&rates))
        };
        asset_volatility.push(AssetVolatility {
            asset: allocation.asset.clone(),
            annualized,
        });
    }

    let mut breaches = Vec::new();
    for limit in &portfolio.limits {
        let value = match (&limit.asset, limit.class) {
            (Some(asset), _) => by_asset.get(asset).map_or(Decimal::ZERO, |entry| entry.1),
            (None, Some(class)) => by_class.get(&class).copied().unwrap_or_default(),
            (None, None) => continue,
        };
        let allowed = (total * share_decimal(limit.max_share)).round_dp(2);
        if value > allowed {
            breaches.push(Breach {
                limit: limit.label(),
                asset: limit.asset.clone(),
                class: if limit.asset.is_some() {
                    None
                } else {
                    limit.class
                },
                value,
                share: share_of(value, total),
                max_share: limit.max_share,
                excess_value: value - allowed,
            });
        }
    }

    Ok(PortfolioReport {
        currency: finance.reporting_currency.clone(),
        from,
        to,
        days: totals
            .iter()
            .filter(|(date, ..)| *date >= from)
            .map(|(date, total, unvalued)| DayValue {
                date: *date,
                total: *total,
                unvalued: *unvalued,
            })
            .collect(),
        total,
        positions: rows,
        allocation_by_class,
        allocation_by_asset,
        pnl,
        market_pnl,
        volatility,
        volatility_window_days: window,
        asset_volatility,
        breaches,
        missing: missing
            .into_iter()
            .map(
                |((account, asset, currency), (days, first_day, last_day))| MissingValue {
                    account,
                    asset,
                    currency,
                    days,
                    first_day,
                    last_day,
                },
            )
            .collect(),
    })
}

// ---- rebalancing ----

/// One step towards the limits. Nothing is executed: a transfer is for a person (or an
/// approval) to carry out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RebalanceStep {
    /// Send `quantity` TON from a portfolio wallet to `finance.portfolio.rebalance_to`.
    Transfer {
        limit: String,
        asset: String,
        quantity: Decimal,
        /// At the price at `to`, in the reporting currency.
        value: Decimal,
        from_label: String,
        from_address: String,
        to_address: String,
        description: String,
    },
    /// Sell `value` (reporting currency) of the asset or class; how is up to a person.
    Reduce {
        limit: String,
        value: Decimal,
        description: String,
    },
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Steps that bring every breached limit of `report` back to its share. For TON above its
/// limit, with `rebalance_to` set: the TON to move (the excess value at the TON price at `to`,
/// rounded down to the nanoton) from the configured wallets holding the most TON, largest
/// first, and a [`RebalanceStep::Reduce`] for what the wallets do not hold. For any other
/// breach (or without `rebalance_to`): a `Reduce` naming the value to sell.
pub fn rebalance_plan(report: &PortfolioReport, config: &PortfolioConfig) -> Vec<RebalanceStep> {
    let mut steps = Vec::new();
    for breach in &report.breaches {
        let what = match (&breach.asset, breach.class) {
            (Some(asset), _) => asset.clone(),
            (None, Some(class)) => format!("{class} positions"),
            (None, None) => continue,
        };
        let reduce = |value: Decimal, note: &str| RebalanceStep::Reduce {
            limit: breach.limit.clone(),
            value,
            description: format!(
                "sell {} {} of {what}: {} is {} of the portfolio, the limit is {}{note}",
                money(value),
                report.currency,
                breach.limit,
                percent(breach.share),
                percent(breach.max_share)
            ),
        };
        let ton_price = report
            .positions
            .iter()
            .filter(|row| row.asset == TON && row.valuation_date.is_none())
            .find_map(|row| row.price)
            .filter(|price| *price > Decimal::ZERO);
        let (Some(TON), Some(to_address), Some(price)) = (
            breach.asset.as_deref(),
            config.rebalance_to.as_deref(),
            ton_price,
        ) else {
            let note = if breach.asset.as_deref() == Some(TON) && config.rebalance_to.is_none() {
                " (set finance.portfolio.rebalance_to for a transfer plan)"
            } else {
                ""
            };
            steps.push(reduce(breach.excess_value, note));
            continue;
        };
        let mut remaining = breach
            .excess_value
            .checked_div(price)
            .unwrap_or_default()
            .round_dp_with_strategy(NANOTON_SCALE, RoundingStrategy::ToZero);
        let mut wallets: Vec<(&PortfolioWallet, Decimal)> = config
            .wallets
            .iter()
            .map(|wallet| {
                let held: Decimal = report
                    .positions
                    .iter()
                    .filter(|row| {
                        row.asset == TON
                            && (row.account == wallet.label || row.account == wallet.address)
                    })
                    .fold(Decimal::ZERO, |held, row| held.saturating_add(row.quantity));
                (wallet, held)
            })
            .filter(|(_, held)| *held > Decimal::ZERO)
            .collect();
        wallets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.label.cmp(&b.0.label)));
        for (wallet, held) in wallets {
            if remaining <= Decimal::ZERO {
                break;
            }
            let quantity = remaining.min(held).normalize();
            remaining -= quantity;
            let value = (quantity * price).round_dp(2);
            steps.push(RebalanceStep::Transfer {
                limit: breach.limit.clone(),
                asset: TON.to_owned(),
                quantity,
                value,
                from_label: wallet.label.clone(),
                from_address: wallet.address.clone(),
                to_address: to_address.to_owned(),
                description: format!(
                    "send {} TON ({} {}) from {} to {to_address} to sell: {} is {} of the portfolio, the limit is {}",
                    quantity.normalize(),
                    money(value),
                    report.currency,
                    wallet.label,
                    breach.limit,
                    percent(breach.share),
                    percent(breach.max_share)
                ),
            });
        }
        if remaining > Decimal::ZERO {
            let value = (remaining * price).round_dp(2);
            let others: BTreeSet<&str> = report
                .positions
                .iter()
                .filter(|row| {
                    row.asset == TON
                        && row.quantity > Decimal::ZERO
                        && !config
                            .wallets
                            .iter()
                            .any(|w| row.account == w.label || row.account == w.address)
                })
                .map(|row| row.account.as_str())
                .collect();
            let held = if others.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} TON more, held in {})",
                    remaining.normalize(),
                    others.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            steps.push(reduce(value, &held));
        }
    }
    steps
}

// ---- staking comparison ----

/// One stake of an own validator: sent to the elector at `staked_at`, back with its reward at
/// `returned_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StakeCycle {
    pub validator: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub staked_ton: Decimal,
    /// Negative after a fine.
    #[serde(with = "rust_decimal::serde::str")]
    pub reward_ton: Decimal,
    pub staked_at: DateTime<Utc>,
    pub returned_at: DateTime<Utc>,
}

/// A public pool as the comparison shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    pub name: String,
    pub address: String,
    pub implementation: String,
    /// Percent a year.
    pub apy: f64,
    pub verified: bool,
    pub min_stake_ton: Decimal,
}

/// Own validators' yield against the public pools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StakingComparison {
    /// Percent a year; `None` without a usable cycle.
    pub own_apy: Option<f64>,
    /// The cycles behind `own_apy`.
    pub cycles_used: usize,
    /// Highest APY first.
    pub pools: Vec<PoolRow>,
    /// The verified pool with the highest APY.
    pub best_pool: Option<PoolRow>,
    /// `best_pool`'s APY minus `own_apy`, in percentage points.
    pub spread_pct_points: Option<f64>,
    pub suggestion: String,
}

/// The yield of one cycle, compounded per cycle over a year: (1 + reward/stake)^(365 days /
/// cycle length) − 1, as a fraction. `None` for a cycle without stake or duration.
fn cycle_apy(cycle: &StakeCycle) -> Option<f64> {
    let seconds = (cycle.returned_at - cycle.staked_at).num_seconds();
    if seconds <= 0 || cycle.staked_ton <= Decimal::ZERO {
        return None;
    }
    let growth = 1.0 + cycle.reward_ton.checked_div(cycle.staked_ton)?.to_f64()?;
    if growth <= 0.0 {
        return None;
    }
    let periods = 365.0 * 86_400.0 / seconds as f64;
    let apy = growth.powf(periods) - 1.0;
    apy.is_finite().then_some(apy)
}

/// Compares own validators (stake-weighted over the cycles that returned within
/// [`OWN_APY_WINDOW_DAYS`] of the latest one) with the pools tonapi lists.
pub fn staking_comparison(cycles: &[StakeCycle], pools: &[StakingPool]) -> StakingComparison {
    let latest = cycles.iter().map(|cycle| cycle.returned_at).max();
    let mut weighted = 0.0;
    let mut weights = 0.0;
    let mut cycles_used = 0;
    if let Some(latest) = latest {
        let since = latest - chrono::Duration::days(OWN_APY_WINDOW_DAYS);
        for cycle in cycles.iter().filter(|cycle| cycle.returned_at >= since) {
            let (Some(apy), Some(stake)) = (cycle_apy(cycle), cycle.staked_ton.to_f64()) else {
                continue;
            };
            weighted += apy * stake;
            weights += stake;
            cycles_used += 1;
        }
    }
    let own_apy = (weights > 0.0).then(|| weighted / weights * 100.0);

    let mut rows: Vec<PoolRow> = pools
        .iter()
        .filter(|pool| pool.apy.is_finite())
        .map(|pool| PoolRow {
            name: pool.name.clone(),
            address: pool.address.clone(),
            implementation: pool.implementation.clone(),
            apy: pool.apy,
            verified: pool.verified,
            min_stake_ton: super::onchain::ton(pool.min_stake_nanoton),
        })
        .collect();
    rows.sort_by(|a, b| b.apy.total_cmp(&a.apy).then_with(|| a.name.cmp(&b.name)));
    let best_pool = rows.iter().find(|pool| pool.verified).cloned();
    let spread_pct_points = own_apy
        .zip(best_pool.as_ref())
        .map(|(own, best)| best.apy - own);
    let better_unverified = rows
        .first()
        .filter(|top| !top.verified && best_pool.as_ref().is_none_or(|best| top.apy > best.apy));
    let mut suggestion = match (own_apy, &best_pool, spread_pct_points) {
        (_, _, _) if rows.is_empty() => "tonapi lists no staking pools to compare with".to_owned(),
        (None, Some(best), _) => format!(
            "no own stake cycle returned in the last {OWN_APY_WINDOW_DAYS} days to compare; the best verified pool is {} at {:.2}%",
            best.name, best.apy
        ),
        (None, None, _) => format!(
            "no own stake cycle returned in the last {OWN_APY_WINDOW_DAYS} days to compare, and no verified pool"
        ),
        (Some(own), None, _) => {
            format!("own validators earn {own:.2}% a year; no verified pool to compare with")
        }
        (Some(own), Some(best), Some(spread)) if spread > 0.0 => format!(
            "own validators earn {own:.2}% against {:.2}% at {} (verified), {spread:.2} percentage points less; \
             the pool would have paid more on the same stake (minimum {} TON)",
            best.apy, best.name, best.min_stake_ton
        ),
        (Some(own), Some(best), _) => format!(
            "own validators earn {own:.2}%, {:.2} percentage points more than the best verified pool ({} at {:.2}%); keep validating",
            own - best.apy,
            best.name,
            best.apy
        ),
    };
    if let Some(top) = better_unverified {
        suggestion.push_str(&format!(
            "; {} pays {:.2}% but is not verified",
            top.name, top.apy
        ));
    }
    StakingComparison {
        own_apy,
        cycles_used,
        pools: rows,
        best_pool,
        spread_pct_points,
        suggestion,
    }
}

// ---- rendering ----

fn signed_money(value: Decimal) -> String {
    let text = money(value);
    if value.round_dp(0) > Decimal::ZERO {
        format!("+{text}")
    } else {
        text
    }
}

fn optional(value: Option<Decimal>, show: fn(Decimal) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), show)
}

/// A plain-text report for a terminal: positions, totals and P&L, allocation, volatility,
/// breaches and what could not be valued.
pub fn render_table(report: &PortfolioReport) -> String {
    let currency = &report.currency;
    let mut rows = vec![vec![
        "account".to_owned(),
        "asset".to_owned(),
        "class".to_owned(),
        "quantity".to_owned(),
        format!("price ({currency})"),
        format!("value ({currency})"),
        "share".to_owned(),
        "change".to_owned(),
        "unrealized".to_owned(),
        "note".to_owned(),
    ]];
    for row in &report.positions {
        let note = match (row.value, row.valuation_date, row.stale_days) {
            (None, ..) => "no rate".to_owned(),
            (_, Some(date), Some(days)) => format!("valued {date} ({days} days old)"),
            _ if row.quantity.is_zero() => format!("closed {}", row.as_of),
            _ => String::new(),
        };
        rows.push(vec![
            row.account.clone(),
            row.asset.clone(),
            row.class.to_string(),
            row.quantity.normalize().to_string(),
            optional(row.price, |price| price.normalize().to_string()),
            optional(row.value, money),
            row.share.map_or_else(|| "-".to_owned(), percent),
            optional(row.change, signed_money),
            optional(row.unrealized, signed_money),
            note,
        ]);
    }
    let mut out = aligned(&rows, &[0, 1, 2, 9]);
    out.push_str(&format!(
        "\ntotal on {}: {} {currency}; P&L since {}: {} {currency} (market {}, money in or out and trades {})\n",
        report.to,
        money(report.total),
        report.from,
        signed_money(report.pnl),
        signed_money(report.market_pnl),
        signed_money(report.pnl - report.market_pnl)
    ));
    if !report.allocation_by_class.is_empty() {
        let classes: Vec<String> = report
            .allocation_by_class
            .iter()
            .map(|allocation| format!("{} {}", allocation.class, percent(allocation.share)))
            .collect();
        out.push_str(&format!("allocation: {}\n", classes.join(", ")));
    }
    let volatility = |value: Option<f64>| {
        value.map_or_else(
            || format!("unknown (fewer than {MIN_RETURNS_FOR_VOLATILITY} daily returns)"),
            percent,
        )
    };
    out.push_str(&format!(
        "volatility ({} days, annualized): {}",
        report.volatility_window_days,
        volatility(report.volatility)
    ));
    let assets: Vec<String> = report
        .asset_volatility
        .iter()
        .filter_map(|asset| {
            asset
                .annualized
                .map(|value| format!("{} {}", asset.asset, percent(value)))
        })
        .collect();
    if !assets.is_empty() {
        out.push_str(&format!("; {}", assets.join(", ")));
    }
    out.push('\n');
    for breach in &report.breaches {
        out.push_str(&format!(
            "limit exceeded: {} is {} of the portfolio, the limit is {}: {} {currency} above it\n",
            breach.limit,
            percent(breach.share),
            percent(breach.max_share),
            money(breach.excess_value)
        ));
    }
    for missing in &report.missing {
        out.push_str(&format!(
            "warning: {} in {} has no {currency} value on {} day(s) ({} to {}): no {}/{currency} rate \
             (load rates with `command-center finance rates`, or give the position a value and currency)\n",
            missing.asset,
            missing.account,
            missing.days,
            missing.first_day,
            missing.last_day,
            missing.currency
        ));
    }
    out
}

//! The finance ledger: money in and out, one entry per movement, and the exchange rates that
//! value it in the reporting currency.
//!
//! Three sled trees: `ledger` (key = the entry's stable id, value = JSON), `rates` (key =
//! `BASE/QUOTE/YYYY-MM-DD`, value = the price of one BASE in QUOTE as a decimal string) and
//! `holdings` (key = account, asset and date, value = the [`Holding`] as JSON).
//! Amounts are [`Decimal`], never floats: a ledger that rounds is not a ledger.
//!
//! Re-importing a file never duplicates: an entry's id is derived from what it is (see
//! [`stable_id`]), and [`Ledger::insert_batch`] stores a whole batch or nothing, skipping ids
//! it already holds.

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::gate::MutationGate;

pub(crate) const LEDGER_TREE: &str = "ledger";
pub(crate) const RATES_TREE: &str = "rates";
pub(crate) const HOLDINGS_TREE: &str = "holdings";

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntrySource {
    /// A row of an imported statement (CSV file or JSON through the API).
    Import { file: String, line: u64 },
    /// A transaction on chain.
    OnChain { tx: String, address: String },
    /// Typed by a person (CLI, chat, API).
    Manual { by: String },
    /// An approved expense proposal, booked by the gate's executor.
    Approval { approval_id: String },
}

/// One movement of money. `amount` is signed: positive is income, negative is an expense.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: String,
    pub date: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Upper-case code: USD, EUR, TON, USDT.
    pub currency: String,
    /// Revenue stream (validators, cocoon, ...), for income.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Expense category (infrastructure, personnel, ...), for costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    #[serde(default)]
    pub counterparty: String,
    #[serde(default)]
    pub description: String,
    pub source: EntrySource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The id of an entry that has no id of its own: the first 16 bytes (hex) of SHA-256 over
/// `scope` (an account or file kind), the date, the amount, the currency, the counterparty, the
/// description and `occurrence` (how many identical rows came before it in the same file, so
/// two real identical payments on one day stay two entries, and a re-import maps each to itself).
pub fn stable_id(
    scope: &str,
    date: NaiveDate,
    amount: Decimal,
    currency: &str,
    counterparty: &str,
    description: &str,
    occurrence: u32,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        scope,
        &date.to_string(),
        &amount.normalize().to_string(),
        currency,
        counterparty,
        description,
        &occurrence.to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What [`Ledger::insert_batch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertOutcome {
    pub inserted: usize,
    /// Ids already in the ledger (or repeated in the batch), left as they were.
    pub duplicates: Vec<String>,
}

/// One exchange rate: one `base` costs `rate` `quote` on `date`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub base: String,
    pub quote: String,
    pub date: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
}

/// What kind of asset a holding is; decides how it is valued and how allocation is grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    Crypto,
    Fiat,
    Stablecoin,
    Equity,
    Private,
}

impl AssetClass {
    pub const ALL: [AssetClass; 5] = [
        AssetClass::Crypto,
        AssetClass::Fiat,
        AssetClass::Stablecoin,
        AssetClass::Equity,
        AssetClass::Private,
    ];

    /// The snake_case name, as in configuration and CSV files.
    pub fn name(self) -> &'static str {
        match self {
            AssetClass::Crypto => "crypto",
            AssetClass::Fiat => "fiat",
            AssetClass::Stablecoin => "stablecoin",
            AssetClass::Equity => "equity",
            AssetClass::Private => "private",
        }
    }

    /// Reads a class by its name, ignoring case and surrounding spaces.
    pub fn parse(text: &str) -> Option<AssetClass> {
        let text = text.trim();
        AssetClass::ALL
            .into_iter()
            .find(|class| class.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for AssetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A manual valuation of a whole position (not per unit), as of the holding's date: for
/// equities and private positions that have no stored rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Valuation {
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
    /// Upper-case currency code of `value`.
    pub currency: String,
}

/// Where a balance snapshot came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HoldingSource {
    /// A row of an imported balances file.
    Import { file: String, line: usize },
    /// A wallet balance read from the chain.
    OnChain { address: String },
    /// Typed by a person (CLI, chat, API).
    Manual { by: String },
}

/// A snapshot of one position: how much of `asset` `account` held on `date`. A later snapshot
/// of the same account and asset on the same date replaces it; the position holds its last
/// snapshot's quantity until the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub date: NaiveDate,
    /// Where it is held: "binance", "custody-anchorage", "treasury-wallet", ...
    pub account: String,
    /// Upper-case code (TON, BTC, USDT, AAPL) or the name of a private position.
    pub asset: String,
    pub class: AssetClass,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valuation: Option<Valuation>,
    /// What the position cost, in the reporting currency.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub cost_basis: Option<Decimal>,
    pub source: HoldingSource,
}

/// The key of a holding: account, asset and date joined by the ASCII unit separator, so an
/// account or asset name may hold any printable character (a `/` in a fund's name) without
/// two positions sharing a key. Sorted by position, then date.
fn holding_key(account: &str, asset: &str, date: NaiveDate) -> String {
    format!("{account}\u{1f}{asset}\u{1f}{date}")
}

/// Handle to the `ledger`, `rates` and `holdings` trees.
#[derive(Clone)]
pub struct Ledger {
    entries: sled::Tree,
    rates: sled::Tree,
    holdings: sled::Tree,
    path: PathBuf,
    gate: Arc<MutationGate>,
    /// Serialises check-then-write so two imports of one file cannot both insert.
    writer: Arc<Mutex<()>>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn rate_key(base: &str, quote: &str, date: NaiveDate) -> String {
    format!("{base}/{quote}/{date}")
}

impl Ledger {
    pub(crate) fn open(
        db: &sled::Db,
        path: &Path,
        gate: Arc<MutationGate>,
    ) -> Result<Ledger, StoreError> {
        let open = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Database {
                action: "opening the ledger",
                location: format!("{} tree {name}", path.display()),
                source,
            })
        };
        Ok(Ledger {
            entries: open(LEDGER_TREE)?,
            rates: open(RATES_TREE)?,
            holdings: open(HOLDINGS_TREE)?,
            path: path.to_path_buf(),
            gate,
            writer: Arc::new(Mutex::new(())),
        })
    }

    fn database_error(&self, action: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        let location = format!("{} ledger", self.path.display());
        move |source| StoreError::Database {
            action,
            location,
            source,
        }
    }

    fn decode_entry(&self, key: &[u8], bytes: &[u8]) -> Result<LedgerEntry, StoreError> {
        serde_json::from_slice(bytes).map_err(|error| StoreError::Decode {
            what: format!(
                "ledger entry {:?} in {}",
                String::from_utf8_lossy(key),
                self.path.display()
            ),
            message: error.to_string(),
        })
    }

    /// Stores every entry whose id is new, all in one atomic batch: after a crash either the
    /// whole batch is there or none of it. Ids already stored (or repeated within `entries`)
    /// are reported as duplicates and left untouched.
    pub fn insert_batch(&self, entries: &[LedgerEntry]) -> Result<InsertOutcome, StoreError> {
        let _writer = self.writer.lock();
        let mut outcome = InsertOutcome::default();
        let mut batch = sled::Batch::default();
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            let known = !seen.insert(entry.id.as_str())
                || self
                    .entries
                    .contains_key(entry.id.as_bytes())
                    .map_err(self.database_error("looking up an entry id"))?;
            if known {
                outcome.duplicates.push(entry.id.clone());
                continue;
            }
            let json = serde_json::to_vec(entry).map_err(|source| StoreError::Encode {
                what: format!("ledger entry {}", entry.id),
                source,
            })?;
            batch.insert(entry.id.as_bytes(), json);
            outcome.inserted += 1;
        }
        if outcome.inserted > 0 {
            let _mutating = self.gate.mutate();
            self.entries
                .apply_batch(batch)
                .map_err(self.database_error("writing entries"))?;
            self.entries
                .flush()
                .map_err(self.database_error("flushing entries"))?;
        }
        Ok(outcome)
    }

    pub fn get(&self, id: &str) -> Result<Option<LedgerEntry>, StoreError> {
        self.entries
            .get(id.as_bytes())
            .map_err(self.database_error("reading an entry"))?
            .map(|bytes| self.decode_entry(id.as_bytes(), &bytes))
            .transpose()
    }

    /// Every entry dated within `from..=to` (either bound open), oldest first, ties by id.
    pub fn entries(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut found = Vec::new();
        for item in self.entries.iter() {
            let (key, bytes) = item.map_err(self.database_error("reading entries"))?;
            let entry = self.decode_entry(&key, &bytes)?;
            if from.is_some_and(|from| entry.date < from) || to.is_some_and(|to| entry.date > to) {
                continue;
            }
            found.push(entry);
        }
        found.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.id.cmp(&b.id)));
        Ok(found)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stores rates, replacing any for the same pair and day. Returns how many were written.
    pub fn put_rates(&self, rates: &[Rate]) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        for rate in rates {
            batch.insert(
                rate_key(&rate.base, &rate.quote, rate.date).as_bytes(),
                rate.rate.to_string().as_bytes(),
            );
        }
        let _mutating = self.gate.mutate();
        self.rates
            .apply_batch(batch)
            .map_err(self.database_error("writing rates"))?;
        Ok(rates.len())
    }

    /// The rate of `base` in `quote` on `date`, or the nearest earlier day at most
    /// `max_age_days` before it: (the day the rate is from, the rate).
    pub fn rate_on(
        &self,
        base: &str,
        quote: &str,
        date: NaiveDate,
        max_age_days: u64,
    ) -> Result<Option<(NaiveDate, Decimal)>, StoreError> {
        let earliest = date
            .checked_sub_days(Days::new(max_age_days))
            .unwrap_or(date);
        let low = rate_key(base, quote, earliest);
        let high = rate_key(base, quote, date);
        let Some(item) = self
            .rates
            .range(low.as_bytes()..=high.as_bytes())
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = item.map_err(self.database_error("reading rates"))?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let bad = |message: String| StoreError::Decode {
            what: format!("rate {key:?} in {}", self.path.display()),
            message,
        };
        let day = key
            .rsplit('/')
            .next()
            .and_then(|day| day.parse::<NaiveDate>().ok())
            .ok_or_else(|| bad("the key does not end in a date".to_owned()))?;
        let rate = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse::<Decimal>().ok())
            .ok_or_else(|| bad("the value is not a decimal".to_owned()))?;
        Ok(Some((day, rate)))
    }

    /// Every stored rate of `base` in `quote`, oldest first.
    pub fn rates(&self, base: &str, quote: &str) -> Result<Vec<Rate>, StoreError> {
        let prefix = format!("{base}/{quote}/");
        let mut found = Vec::new();
        for item in self.rates.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item.map_err(self.database_error("reading rates"))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let date = key[prefix.len()..].parse::<NaiveDate>().ok();
            let rate = std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse::<Decimal>().ok());
            if let (Some(date), Some(rate)) = (date, rate) {
                found.push(Rate {
                    base: base.to_owned(),
                    quote: quote.to_owned(),
                    date,
                    rate,
                });
            }
        }
        Ok(found)
    }

    /// Stores balance snapshots in one atomic batch (all or none after a crash), replacing any
    /// snapshot of the same account, asset and date. Returns how many distinct snapshots were
    /// written (a repeated key within `holdings` counts once; the last one wins).
    pub fn put_holdings(&self, holdings: &[Holding]) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut keys = std::collections::HashSet::new();
        for holding in holdings {
            let key = holding_key(&holding.account, &holding.asset, holding.date);
            let json = serde_json::to_vec(holding).map_err(|source| StoreError::Encode {
                what: format!(
                    "holding of {} in {} on {}",
                    holding.asset, holding.account, holding.date
                ),
                source,
            })?;
            batch.insert(key.as_bytes(), json);
            keys.insert(key);
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let _mutating = self.gate.mutate();
        self.holdings
            .apply_batch(batch)
            .map_err(self.database_error("writing holdings"))?;
        self.holdings
            .flush()
            .map_err(self.database_error("flushing holdings"))?;
        Ok(keys.len())
    }

    /// Every balance snapshot dated on or before `to`, by account, then asset, then date.
    pub fn holdings(&self, to: NaiveDate) -> Result<Vec<Holding>, StoreError> {
        let mut found = Vec::new();
        for item in self.holdings.iter() {
            let (key, bytes) = item.map_err(self.database_error("reading holdings"))?;
            let holding: Holding =
                serde_json::from_slice(&bytes).map_err(|error| StoreError::Decode {
                    what: format!(
                        "holding {:?} in {}",
                        String::from_utf8_lossy(&key).replace('\u{1f}', "/"),
                        self.path.display()
                    ),
                    message: error.to_string(),
                })?;
            if holding.date <= to {
                found.push(holding);
            }
        }
        Ok(found)
    }

    /// How many balance snapshots are stored.
    pub fn holdings_len(&self) -> usize {
        self.holdings.len()
    }
}

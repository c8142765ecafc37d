//! Reads the watched TON accounts' new transactions from toncenter and books their income
//! (see [`agents::finance::onchain`]); Cocoon nodes' utilization and customer gauges go to the
//! time series. The CLI (`finance onchain sync`), the API and the daemon's hourly task call
//! [`sync`].

use std::collections::BTreeSet;

use agents::finance::FinanceConfig;
use agents::finance::onchain::{
    AccountKind, AccountState, CocoonMetrics, OnchainAccount, Unmatched, Watched, attribute,
    cocoon_metrics,
};
use agents::finance::portfolio::StakeCycle;
use agents::validators::WatchedValidator;
use chrono::Utc;
use memory::Store;
use rust_decimal::Decimal;
use serde::Serialize;
use tools::prometheus::PrometheusScraper;
use tools::toncenter::{ToncenterClient, Transaction, TransactionCursor};

use super::{Every, FinanceError, journal};

/// What a sync reads from: toncenter, the Cocoon nodes' metrics pages, and the validators.
pub struct OnchainSources {
    pub toncenter: ToncenterClient,
    /// Liquid staking pools' APY, for the staking comparison.
    pub tonapi: tools::tonapi::TonapiClient,
    pub scraper: PrometheusScraper,
    pub validators: Vec<WatchedValidator>,
}

impl OnchainSources {
    pub fn from_config(config: &crate::config::Config) -> Result<Self, tools::http::SourceError> {
        let source = &config.sources.toncenter;
        Ok(Self {
            toncenter: ToncenterClient::new(
                &source.base_url,
                source.api_key.clone(),
                source.requests_per_second,
                source.retry.policy(),
            )?,
            tonapi: tools::tonapi::TonapiClient::new(
                &config.sources.tonapi.base_url,
                config.sources.tonapi.api_key.clone(),
                config.sources.tonapi.requests_per_second,
                config.sources.tonapi.retry.policy(),
            )?,
            scraper: PrometheusScraper::new(
                50.0,
                source.retry.policy(),
                tools::prometheus::DEFAULT_MAX_BODY_BYTES,
            )?,
            validators: config.agents.validators.validators.clone(),
        })
    }

    pub async fn sync(
        &self,
        store: &Store,
        config: &FinanceConfig,
        actor: &str,
    ) -> Result<SyncSummary, FinanceError> {
        sync(
            store,
            config,
            &self.validators,
            &self.toncenter,
            Some(&self.scraper),
            actor,
        )
        .await
    }
}

/// The daemon's task when `finance.onchain.enabled`: a sync on start and every hour.
pub async fn hourly(
    store: Store,
    config: std::sync::Arc<FinanceConfig>,
    sources: std::sync::Arc<OnchainSources>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = Every::new(std::time::Duration::from_secs(3600), stop);
    while every.tick().await {
        match sources.sync(&store, &config, "agent:finance").await {
            Ok(summary) => {
                for account in &summary.accounts {
                    if let Some(error) = &account.error {
                        tracing::warn!(account = %account.label, %error, "finance: on-chain account not read");
                    }
                }
                tracing::info!(
                    new_entries = summary.new_entries(),
                    "finance: on-chain income synced"
                );
            }
            Err(error) => tracing::warn!(%error, "finance: on-chain sync failed"),
        }
    }
}

/// Transactions asked for per page.
const PAGE: u32 = 50;

/// State key of an account's cursor, pending stakes and cycles.
pub fn state_key(raw: &str) -> String {
    format!("finance/onchain/{raw}")
}

/// Series of a Cocoon node's gauges, labelled by account.
pub fn utilization_series(label: &str) -> memory::SeriesKey {
    memory::SeriesKey::new("finance.cocoon.utilization").with_label("account", label)
}

pub fn customers_series(label: &str) -> memory::SeriesKey {
    memory::SeriesKey::new("finance.cocoon.customers").with_label("account", label)
}

/// One account's sync.
#[derive(Clone, Debug, Serialize)]
pub struct AccountSync {
    pub label: String,
    pub address: String,
    pub kind: AccountKind,
    pub stream: String,
    /// New transactions read.
    pub read: usize,
    pub new_entries: usize,
    pub duplicates: usize,
    /// Income booked now, in TON.
    #[serde(with = "rust_decimal::serde::str")]
    pub income_ton: Decimal,
    pub cycles: Vec<StakeCycle>,
    pub unmatched: Vec<Unmatched>,
    pub skipped: usize,
    pub payers: usize,
    /// More new transactions than `max_pages` pages: the oldest of them were not read.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<CocoonMetrics>,
    /// Why the account (or its metrics page) could not be read; the others still were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncSummary {
    pub accounts: Vec<AccountSync>,
}

impl SyncSummary {
    pub fn new_entries(&self) -> usize {
        self.accounts
            .iter()
            .map(|account| account.new_entries)
            .sum()
    }
}

/// The accounts to read: `[finance.onchain.accounts]`, then each validator not listed there
/// (its pool when one stakes for it, else its wallet).
pub fn watched_accounts(
    config: &FinanceConfig,
    validators: &[WatchedValidator],
) -> Result<Vec<Watched>, FinanceError> {
    let mut accounts: Vec<OnchainAccount> = config.onchain.accounts.clone();
    if config.onchain.include_validators {
        let listed: BTreeSet<String> = accounts
            .iter()
            .filter_map(|account| tools::ton::parse_address(&account.address).ok())
            .map(|parsed| parsed.raw)
            .collect();
        for validator in validators {
            let address = validator.pool.clone().unwrap_or(validator.wallet.clone());
            let Ok(parsed) = tools::ton::parse_address(&address) else {
                continue;
            };
            if listed.contains(&parsed.raw) {
                continue;
            }
            accounts.push(OnchainAccount {
                address,
                label: validator.name.clone(),
                kind: AccountKind::Validator,
                stream: None,
                reward_share: None,
                metrics_url: None,
                utilization_metric: String::new(),
                customers_metric: String::new(),
                rules: Vec::new(),
            });
        }
    }
    accounts
        .into_iter()
        .map(|account| Watched::new(account).map_err(FinanceError::Invalid))
        .collect()
}

/// The transactions newer than `after_lt`, oldest first; `true` when `max_pages` ran out first.
async fn new_transactions(
    client: &ToncenterClient,
    address: &str,
    after_lt: u64,
    max_pages: u32,
) -> Result<(Vec<Transaction>, bool), tools::http::SourceError> {
    let mut found: Vec<Transaction> = Vec::new();
    let mut cursor: Option<TransactionCursor> = None;
    for _ in 0..max_pages.max(1) {
        let page = client
            .get_transactions(address, PAGE, cursor.as_ref(), false)
            .await?
            .value;
        let full = page.len() == PAGE as usize;
        // A continued page starts with the transaction it continues from.
        let fresh: Vec<Transaction> = page
            .into_iter()
            .filter(|tx| cursor.as_ref().is_none_or(|from| tx.lt < from.lt))
            .collect();
        let reached_known = fresh.iter().any(|tx| tx.lt <= after_lt);
        cursor = fresh.last().map(|tx| TransactionCursor {
            lt: tx.lt,
            hash: tx.hash.clone(),
        });
        found.extend(fresh.into_iter().filter(|tx| tx.lt > after_lt));
        if reached_known || !full || cursor.is_none() {
            found.reverse();
            return Ok((found, false));
        }
    }
    found.reverse();
    Ok((found, true))
}

/// Reads every watched account once and books what is new. An account that cannot be read is
/// reported and the others still are; nothing is booked twice.
pub async fn sync(
    store: &Store,
    config: &FinanceConfig,
    validators: &[WatchedValidator],
    client: &ToncenterClient,
    scraper: Option<&PrometheusScraper>,
    actor: &str,
) -> Result<SyncSummary, FinanceError> {
    let watched = watched_accounts(config, validators)?;
    let own: BTreeSet<String> = watched.iter().map(|account| account.raw.clone()).collect();
    let mut summary = SyncSummary::default();
    for account in &watched {
        let key = state_key(&account.raw);
        let mut state: AccountState = store.state().get(&key)?.unwrap_or_default();
        let mut row = AccountSync {
            label: account.account.label.clone(),
            address: account.account.address.clone(),
            kind: account.account.kind,
            stream: account.stream.clone(),
            read: 0,
            new_entries: 0,
            duplicates: 0,
            income_ton: Decimal::ZERO,
            cycles: Vec::new(),
            unmatched: Vec::new(),
            skipped: 0,
            payers: 0,
            truncated: false,
            metrics: None,
            error: None,
        };
        match new_transactions(
            client,
            &account.account.address,
            state.last_lt,
            config.onchain.max_pages,
        )
        .await
        {
            Ok((transactions, truncated)) => {
                row.read = transactions.len();
                row.truncated = truncated;
                let attribution = attribute(account, &own, &transactions, &mut state);
                let outcome = store.ledger().insert_batch(&attribution.entries)?;
                store.state().put(&key, &state)?;
                row.new_entries = outcome.inserted;
                row.duplicates = outcome.duplicates.len();
                row.income_ton = attribution
                    .entries
                    .iter()
                    .fold(Decimal::ZERO, |sum, entry| sum.saturating_add(entry.amount));
                row.cycles = attribution.cycles;
                row.unmatched = attribution.unmatched;
                row.skipped = attribution.skipped;
                row.payers = attribution.payers.len();
            }
            Err(error) => row.error = Some(error.to_string()),
        }
        if let (Some(url), Some(scraper)) = (&account.account.metrics_url, scraper) {
            match scraper.scrape(url).await {
                Ok(scrape) => {
                    let metrics = cocoon_metrics(&account.account, &scrape.value.metrics);
                    let now = Utc::now();
                    let series = store.series();
                    if let Some(value) = metrics.utilization {
                        series.append(&utilization_series(&row.label), now, value)?;
                    }
                    if let Some(value) = metrics.customers {
                        series.append(&customers_series(&row.label), now, value)?;
                    }
                    row.metrics = Some(metrics);
                }
                Err(error) => {
                    let message = format!("metrics: {error}");
                    row.error = Some(match row.error.take() {
                        Some(first) => format!("{first}; {message}"),
                        None => message,
                    });
                }
            }
        }
        summary.accounts.push(row);
    }
    if summary.new_entries() > 0
        || summary
            .accounts
            .iter()
            .any(|account| !account.unmatched.is_empty())
    {
        journal(
            store,
            actor,
            "finance.onchain_synced",
            "ledger",
            serde_json::json!({
                "accounts": summary.accounts.iter().map(|account| serde_json::json!({
                    "label": account.label,
                    "new_entries": account.new_entries,
                    "income_ton": account.income_ton.to_string(),
                    "unmatched": account.unmatched.len(),
                })).collect::<Vec<_>>(),
            }),
        );
    }
    Ok(summary)
}

/// The completed stake cycles of every validator account, oldest first.
pub fn stake_cycles(store: &Store) -> Result<Vec<StakeCycle>, FinanceError> {
    let mut cycles: Vec<StakeCycle> = store
        .state()
        .scan_prefix::<AccountState>("finance/onchain/")?
        .into_iter()
        .flat_map(|(_, state)| state.cycles)
        .collect();
    cycles.sort_by_key(|cycle| cycle.returned_at);
    Ok(cycles)
}

/// A table for the CLI.
pub fn render(summary: &SyncSummary) -> String {
    let mut out = String::new();
    for account in &summary.accounts {
        let kind = match account.kind {
            AccountKind::Validator => "validator",
            AccountKind::Cocoon => "cocoon",
            AccountKind::Income => "income",
        };
        out.push_str(&format!(
            "{:<20} {:<9} {:>4} read  {:>4} new  {:>16} TON  -> {}",
            account.label,
            kind,
            account.read,
            account.new_entries,
            account.income_ton,
            account.stream
        ));
        if account.kind == AccountKind::Cocoon {
            out.push_str(&format!("  payers {}", account.payers));
        }
        out.push('\n');
        for cycle in &account.cycles {
            out.push_str(&format!(
                "    stake {} TON from {} returned {} with {} TON\n",
                cycle.staked_ton,
                cycle.staked_at.format("%Y-%m-%d"),
                cycle.returned_at.format("%Y-%m-%d"),
                cycle.reward_ton
            ));
        }
        for unmatched in &account.unmatched {
            out.push_str(&format!(
                "    not booked: {} TON returned by the elector on {} (tx {}) with no stake in the history read; book the reward by hand\n",
                unmatched.returned_ton,
                unmatched.at.format("%Y-%m-%d"),
                unmatched.tx
            ));
        }
        if let Some(metrics) = &account.metrics {
            out.push_str(&format!(
                "    node: utilization {}, customers {}\n",
                metrics
                    .utilization
                    .map_or_else(|| "-".to_owned(), |value| format!("{:.0}%", value * 100.0)),
                metrics
                    .customers
                    .map_or_else(|| "-".to_owned(), |value| format!("{value}")),
            ));
        }
        if account.truncated {
            out.push_str("    more new transactions than finance.onchain.max_pages pages: the oldest were not read\n");
        }
        if let Some(error) = &account.error {
            out.push_str(&format!("    error: {error}\n"));
        }
    }
    if summary.accounts.is_empty() {
        out.push_str("no accounts to watch: add [[finance.onchain.accounts]] or validators\n");
    }
    out
}

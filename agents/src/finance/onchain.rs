//! On-chain income: the transactions of watched TON accounts attributed to revenue streams.
//!
//! - A **validator** account (a validator's wallet, or the pool that stakes for it) sends its
//!   stake to the elector and later gets it back with the reward. The returned message is
//!   split: the stakes sent since the last return are principal, the rest is the reward, and
//!   only the reward (times `reward_share`, for a pool whose nominators own the rest) is income.
//!   The elector's confirmation of a stake (1 TON of the message sent back) lowers the
//!   principal; a stake that comes back whole (refused) is neither income nor a cycle; a return
//!   pays back the oldest pending stakes it covers, so the next election's stake, sent while
//!   this one was frozen, stays pending.
//!   A return with no stake in the history read is reported, not guessed at.
//! - A **cocoon** account receives payments for AI compute: each incoming transfer is income
//!   of the `cocoon` stream, the sender is the customer.
//! - An **income** account: every incoming transfer is income of its `stream`.
//!
//! Rules (by sender address and/or comment regex) override the stream or ignore a transfer;
//! transfers between watched accounts are internal and never income. Entries are idempotent:
//! the id is the transaction hash, so reading the same history twice adds nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use memory::ledger::{EntrySource, LedgerEntry};
use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tools::toncenter::{Transaction, TransactionMessage};

use super::FinanceConfig;
use super::portfolio::StakeCycle;

/// How an account's incoming transfers are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Validator,
    Cocoon,
    Income,
}

fn default_true() -> bool {
    true
}

fn default_utilization_metric() -> String {
    "cocoon_worker_utilization_ratio".to_owned()
}

fn default_customers_metric() -> String {
    "cocoon_active_customers".to_owned()
}

fn default_max_pages() -> u32 {
    20
}

/// Overrides for some incoming transfers of an account: the first rule that matches wins.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnchainRule {
    /// The sender (any address form).
    #[serde(default)]
    pub from: Option<String>,
    /// A regex on the transfer's text comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// The stream the transfer is income of.
    #[serde(default)]
    pub stream: Option<String>,
    /// Not income at all (a loan, a refund, a transfer from a personal wallet).
    #[serde(default)]
    pub ignore: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `[[finance.onchain.accounts]]`: one watched address.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnchainAccount {
    pub address: String,
    /// A short name for reports ("cocoon-worker-1").
    pub label: String,
    pub kind: AccountKind,
    /// [default: `validators` for a validator account, `cocoon` for a cocoon one; required for
    /// an income account]
    #[serde(default)]
    pub stream: Option<String>,
    /// The part of a validator reward that is ours (a nominator pool's validator share, e.g.
    /// 0.3); 1 for a validator staking its own TON.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub reward_share: Option<Decimal>,
    /// The Cocoon node's Prometheus page, for utilization and customer counts.
    #[serde(default)]
    pub metrics_url: Option<String>,
    #[serde(default = "default_utilization_metric")]
    pub utilization_metric: String,
    #[serde(default = "default_customers_metric")]
    pub customers_metric: String,
    #[serde(default)]
    pub rules: Vec<OnchainRule>,
}

/// `[finance.onchain]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnchainConfig {
    /// The daemon reads the accounts on start and every hour (`finance onchain sync` and
    /// `POST /v1/finance/onchain/sync` work either way).
    #[serde(default)]
    pub enabled: bool,
    /// Watch the validators of `[agents.validators]` too (the pool when one stakes for the
    /// validator, else its wallet).
    #[serde(default = "default_true")]
    pub include_validators: bool,
    #[serde(default)]
    pub accounts: Vec<OnchainAccount>,
    /// Pages of 50 transactions read per account and sync, newest first, until the last one
    /// already seen.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

impl Default for OnchainConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            include_validators: true,
            accounts: Vec::new(),
            max_pages: default_max_pages(),
        }
    }
}

impl OnchainConfig {
    /// Every problem, naming its key.
    pub fn problems(&self, finance: &FinanceConfig) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, account) in self.accounts.iter().enumerate() {
            let at = format!("finance.onchain.accounts[{index}]");
            match tools::ton::parse_address(&account.address) {
                Ok(parsed) => {
                    if !seen.insert(parsed.raw) {
                        problems.push(format!("{at}.address: {} is listed twice", account.address));
                    }
                }
                Err(error) => problems.push(format!("{at}.address: {error}")),
            }
            if account.label.trim().is_empty() {
                problems.push(format!("{at}.label: give the account a short name"));
            }
            match (account.kind, account.stream.as_deref()) {
                (AccountKind::Income, None) => problems.push(format!(
                    "{at}.stream: an income account needs the stream its transfers are income of"
                )),
                (_, Some(stream)) if !finance.streams.iter().any(|known| known == stream) => {
                    problems.push(format!(
                        "{at}.stream: {stream:?} is not one of finance.streams ({})",
                        finance.streams.join(", ")
                    ))
                }
                _ => {}
            }
            if let Some(share) = account.reward_share
                && (share <= Decimal::ZERO || share > Decimal::ONE)
            {
                problems.push(format!(
                    "{at}.reward_share: {share} must be more than 0 and at most 1"
                ));
            }
            for (rule_index, rule) in account.rules.iter().enumerate() {
                let at = format!("{at}.rules[{rule_index}]");
                if rule.from.is_none() && rule.comment.is_none() {
                    problems.push(format!("{at}: give `from`, `comment` or both"));
                }
                if let Some(from) = &rule.from
                    && let Err(error) = tools::ton::parse_address(from)
                {
                    problems.push(format!("{at}.from: {error}"));
                }
                if let Some(comment) = &rule.comment
                    && let Err(error) = Regex::new(comment)
                {
                    problems.push(format!("{at}.comment: not a regex: {error}"));
                }
                if let Some(stream) = &rule.stream
                    && !finance.streams.iter().any(|known| known == stream)
                {
                    problems.push(format!(
                        "{at}.stream: {stream:?} is not one of finance.streams"
                    ));
                }
                if rule.ignore && rule.stream.is_some() {
                    problems.push(format!("{at}: `ignore` and `stream` contradict each other"));
                }
            }
        }
        problems
    }
}

/// A stake sent to the elector and not yet returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingStake {
    pub nanoton: u128,
    pub sent_at: DateTime<Utc>,
    pub tx: String,
}

/// What a sync remembers per account between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// Logical time of the newest transaction attributed.
    pub last_lt: u64,
    pub pending_stakes: Vec<PendingStake>,
    /// Completed stake cycles (validator accounts), oldest first; the last 100 are kept.
    pub cycles: Vec<StakeCycle>,
}

/// A watched account with its rules compiled and its address in raw form.
pub struct Watched {
    pub account: OnchainAccount,
    pub raw: String,
    pub stream: String,
    rules: Vec<(Option<String>, Option<Regex>, OnchainRule)>,
}

impl Watched {
    /// `None` with the reason when the account does not hold up (see [`OnchainConfig::problems`]).
    pub fn new(account: OnchainAccount) -> Result<Self, String> {
        let raw = tools::ton::parse_address(&account.address)
            .map_err(|error| format!("{}: {error}", account.label))?
            .raw;
        let stream = match (&account.stream, account.kind) {
            (Some(stream), _) => stream.clone(),
            (None, AccountKind::Validator) => "validators".to_owned(),
            (None, AccountKind::Cocoon) => "cocoon".to_owned(),
            (None, AccountKind::Income) => {
                return Err(format!(
                    "{}: an income account needs a stream",
                    account.label
                ));
            }
        };
        let mut rules = Vec::new();
        for rule in &account.rules {
            let from = match &rule.from {
                Some(from) => Some(
                    tools::ton::parse_address(from)
                        .map_err(|error| format!("{}: rule from: {error}", account.label))?
                        .raw,
                ),
                None => None,
            };
            let comment = match &rule.comment {
                Some(pattern) => Some(
                    Regex::new(pattern)
                        .map_err(|error| format!("{}: rule comment: {error}", account.label))?,
                ),
                None => None,
            };
            rules.push((from, comment, rule.clone()));
        }
        Ok(Self {
            account,
            raw,
            stream,
            rules,
        })
    }

    fn rule_for(&self, sender_raw: &str, comment: Option<&str>) -> Option<&OnchainRule> {
        self.rules
            .iter()
            .find(|(from, pattern, _)| {
                from.as_deref().is_none_or(|from| from == sender_raw)
                    && pattern
                        .as_ref()
                        .is_none_or(|pattern| comment.is_some_and(|text| pattern.is_match(text)))
            })
            .map(|(_, _, rule)| rule)
    }
}

/// A returned stake the history read holds no stake for: not booked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    pub account: String,
    pub tx: String,
    pub at: DateTime<Utc>,
    #[serde(with = "rust_decimal::serde::str")]
    pub returned_ton: Decimal,
}

/// What one account's new transactions come to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Attribution {
    pub entries: Vec<LedgerEntry>,
    pub cycles: Vec<StakeCycle>,
    pub unmatched: Vec<Unmatched>,
    /// Incoming transfers left out: internal, ignored by a rule, or bounced/empty.
    pub skipped: usize,
    /// Distinct paying senders (cocoon accounts: customers).
    pub payers: BTreeSet<String>,
}

const NANOTON_PER_TON: u32 = 1_000_000_000;

/// What the elector sends back when it accepts a stake: 1 TON (the forward fee comes off it).
/// Anything from the elector up to this much is such a confirmation.
const ELECTOR_CONFIRMATION_NANOTON: u128 = NANOTON_PER_TON as u128;

/// Nanotons as an exact TON amount.
pub fn ton(nanoton: u128) -> Decimal {
    // Exact up to 2^96 nanotons, far above the supply; a nonsense amount beyond it is capped
    // rather than a panic.
    i128::try_from(nanoton)
        .ok()
        .and_then(|nanoton| Decimal::try_from_i128_with_scale(nanoton, 9).ok())
        .unwrap_or(Decimal::MAX)
        .normalize()
}

fn raw(address: &str) -> Option<String> {
    tools::ton::parse_address(address)
        .ok()
        .map(|parsed| parsed.raw)
}

fn utc(utime: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(utime, 0).unwrap_or_default()
}

/// A ledger id from a transaction hash (base64 may hold `/` and `+`).
pub fn entry_id(tx_hash: &str) -> String {
    format!(
        "onchain:{}",
        tx_hash
            .chars()
            .map(|c| match c {
                '/' => '_',
                '+' => '-',
                other => other,
            })
            .collect::<String>()
    )
}

fn entry(
    watched: &Watched,
    tx: &Transaction,
    message: &TransactionMessage,
    amount: Decimal,
    stream: String,
    description: String,
    tags: Vec<String>,
) -> LedgerEntry {
    LedgerEntry {
        id: entry_id(&tx.hash),
        date: utc(tx.utime).date_naive(),
        amount,
        currency: "TON".to_owned(),
        stream: Some(stream),
        category: None,
        subcategory: None,
        counterparty: message.source.clone(),
        description,
        source: EntrySource::OnChain {
            tx: tx.hash.clone(),
            address: watched.account.address.clone(),
        },
        tags,
        recorded_at: Utc::now(),
    }
}

/// An incoming transfer booked whole as income of `stream`, its sender counted as a payer.
fn payment(
    result: &mut Attribution,
    watched: &Watched,
    tx: &Transaction,
    message: &TransactionMessage,
    stream: String,
    description: String,
    tags: Vec<String>,
) {
    result.payers.insert(message.source.clone());
    result.entries.push(entry(
        watched,
        tx,
        message,
        ton(message.value_nanoton),
        stream,
        description,
        tags,
    ));
}

/// Attributes `transactions` (oldest first, only those newer than `state.last_lt`) of one
/// account, updating `state`. `own` holds the raw addresses of every watched account.
pub fn attribute(
    watched: &Watched,
    own: &BTreeSet<String>,
    transactions: &[Transaction],
    state: &mut AccountState,
) -> Attribution {
    let elector = tools::ton::elector::ELECTOR_ADDRESS;
    let mut result = Attribution::default();
    for tx in transactions {
        if tx.lt <= state.last_lt {
            continue;
        }
        state.last_lt = tx.lt;
        if watched.account.kind == AccountKind::Validator {
            for out in &tx.out_msgs {
                if raw(&out.destination).as_deref() == Some(elector) && out.value_nanoton > 0 {
                    state.pending_stakes.push(PendingStake {
                        nanoton: out.value_nanoton,
                        sent_at: utc(tx.utime),
                        tx: tx.hash.clone(),
                    });
                }
            }
        }
        let Some(message) = &tx.in_msg else {
            continue;
        };
        // External messages (the wallet's own orders) carry no value and have no source.
        if message.source.is_empty() || message.value_nanoton == 0 {
            continue;
        }
        let Some(sender) = raw(&message.source) else {
            result.skipped += 1;
            continue;
        };
        let comment = message.comment.as_deref().filter(|text| !text.is_empty());
        if let Some(rule) = watched.rule_for(&sender, comment) {
            if rule.ignore {
                result.skipped += 1;
                continue;
            }
            let stream = rule
                .stream
                .clone()
                .unwrap_or_else(|| watched.stream.clone());
            let mut tags = vec!["onchain".to_owned()];
            tags.extend(rule.tags.iter().cloned());
            let description = comment.unwrap_or("transfer matched by a rule").to_owned();
            payment(&mut result, watched, tx, message, stream, description, tags);
            continue;
        }
        if own.contains(&sender) {
            result.skipped += 1;
            continue;
        }
        match watched.account.kind {
            AccountKind::Validator if sender == elector => {
                let value = message.value_nanoton;
                // The elector accepts a stake by sending 1 TON of it back (less the forward
                // fee): principal coming back at once, not a return.
                if value <= ELECTOR_CONFIRMATION_NANOTON {
                    if let Some(stake) = state.pending_stakes.last_mut() {
                        stake.nanoton = stake.nanoton.saturating_sub(value);
                    }
                    state.pending_stakes.retain(|stake| stake.nanoton > 0);
                    result.skipped += 1;
                    continue;
                }
                let returned = ton(value);
                if state.pending_stakes.is_empty() {
                    result.unmatched.push(Unmatched {
                        account: watched.account.label.clone(),
                        tx: tx.hash.clone(),
                        at: utc(tx.utime),
                        returned_ton: returned,
                    });
                    continue;
                }
                // A stake that comes back whole (less fees): refused by the elector or
                // recovered unused. Not a cycle, nothing earned.
                if let Some(index) = state.pending_stakes.iter().position(|stake| {
                    stake.nanoton >= value && stake.nanoton - value < ELECTOR_CONFIRMATION_NANOTON
                }) {
                    state.pending_stakes.remove(index);
                    result.skipped += 1;
                    continue;
                }
                // The stakes this return pays back: oldest first, as many as it covers (the
                // messages of one election come back together; the next election's stake,
                // sent while this one was frozen, stays pending). Less than the oldest stake
                // is that stake with a fine.
                let mut count = 0;
                let mut staked_nanoton: u128 = 0;
                for stake in &state.pending_stakes {
                    match staked_nanoton.checked_add(stake.nanoton) {
                        Some(sum) if sum <= value => {
                            staked_nanoton = sum;
                            count += 1;
                        }
                        _ => break,
                    }
                }
                if count == 0 {
                    count = 1;
                    staked_nanoton = state.pending_stakes.first().map_or(0, |s| s.nanoton);
                }
                let principal: Vec<PendingStake> = state.pending_stakes.drain(..count).collect();
                let staked = ton(staked_nanoton);
                let staked_at = principal
                    .first()
                    .map(|stake| stake.sent_at)
                    .unwrap_or_else(|| utc(tx.utime));
                let reward = returned - staked;
                let share = watched.account.reward_share.unwrap_or(Decimal::ONE);
                let ours = (reward * share).round_dp(9);
                let cycle = StakeCycle {
                    validator: watched.account.label.clone(),
                    staked_ton: staked,
                    reward_ton: reward,
                    staked_at,
                    returned_at: utc(tx.utime),
                };
                result.cycles.push(cycle.clone());
                state.cycles.push(cycle);
                if ours.is_zero() {
                    continue;
                }
                let mut description = format!(
                    "stake returned: {returned} TON for {staked} TON staked on {}",
                    staked_at.format("%Y-%m-%d")
                );
                if share != Decimal::ONE {
                    description.push_str(&format!("; our share {share} of {reward} TON"));
                }
                let tag = if ours.is_sign_negative() {
                    "validator-fine"
                } else {
                    "validator-reward"
                };
                result.entries.push(entry(
                    watched,
                    tx,
                    message,
                    ours,
                    watched.stream.clone(),
                    description,
                    vec!["onchain".to_owned(), tag.to_owned()],
                ));
            }
            // Anything else reaching a validator wallet is a top-up, not income.
            AccountKind::Validator => result.skipped += 1,
            AccountKind::Cocoon | AccountKind::Income => {
                let tag = if watched.account.kind == AccountKind::Cocoon {
                    "cocoon-payment"
                } else {
                    "transfer-in"
                };
                payment(
                    &mut result,
                    watched,
                    tx,
                    message,
                    watched.stream.clone(),
                    comment.unwrap_or("payment").to_owned(),
                    vec!["onchain".to_owned(), tag.to_owned()],
                );
            }
        }
    }
    let keep = state.cycles.len().saturating_sub(100);
    state.cycles.drain(..keep);
    result
}

/// Utilization and customers read from a Cocoon node's metrics page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CocoonMetrics {
    /// 0..=1 (a percentage over 1 is divided by 100).
    pub utilization: Option<f64>,
    pub customers: Option<f64>,
}

/// Reads `account`'s utilization and customer gauges (summed over label sets) from a parsed
/// exposition.
pub fn cocoon_metrics(
    account: &OnchainAccount,
    metrics: &tools::prometheus::ParsedMetrics,
) -> CocoonMetrics {
    let sum = |name: &str| {
        let values: Vec<f64> = metrics
            .samples_named(name)
            .map(|sample| sample.value)
            .filter(|value| value.is_finite())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>())
    };
    let mean = |name: &str| {
        let values: Vec<f64> = metrics
            .samples_named(name)
            .map(|sample| sample.value)
            .filter(|value| value.is_finite())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    CocoonMetrics {
        utilization: mean(&account.utilization_metric)
            .map(|value| if value > 1.0 { value / 100.0 } else { value }),
        customers: sum(&account.customers_metric),
    }
}

#[cfg(test)]
mod tests;

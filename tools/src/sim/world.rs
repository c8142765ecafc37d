//! The sim's state and physics: the clock, the price walk, balances, faults, webhooks.
//! Plain methods on a plain struct; the HTTP layer in `server.rs` only forwards to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::scenario::{Fault, FaultKind, Scenario, SimCoin, SimEvent, SimService};
use super::{ReceivedWebhook, SentTransfer, SimMessage, SimTransaction};
use crate::ton::{self, TonError, WalletKind};

/// Step of the price walk; prices are interpolated in log space between steps.
const WALK_STEP_SECONDS: f64 = 60.0;
const NANOTON_PER_TON: f64 = 1e9;
/// What the sim charges a wallet for one transfer (real fees vary; the sim's are fixed so
/// tests can compute balances).
pub(crate) const SIM_TRANSFER_FEE_NANOTON: u128 = 2_000_000;
/// First logical time the sim hands out; each transaction takes the next ones.
const FIRST_SIM_LT: u64 = 47_000_000_000_000;

pub(crate) struct World {
    pub(crate) scenario: Scenario,
    /// Sim time at offset 0.
    start: DateTime<Utc>,
    /// Real instant the clock started; sim offset = real elapsed * speed + advanced.
    real_start: Instant,
    state: Mutex<WorldState>,
    /// Count of webhooks received; `wait_for_webhooks` waits on it.
    pub(crate) webhook_count: watch::Sender<usize>,
    /// What the simulated Slack workspace received (`sim::slack`); it has its own lock.
    pub(crate) slack: super::slack::SlackWorkspace,
    /// Socket Mode connections and acknowledgements (`sim::slack_socket`); its own lock.
    pub(crate) slack_socket: super::slack_socket::SlackSocketServer,
    /// What the simulated Telegram bot received and holds (`sim::telegram`); its own lock.
    pub(crate) telegram: super::telegram::TelegramBotState,
}

/// Mutable state, owned by the `World` behind one mutex that is never held across an await.
#[derive(Default)]
struct WorldState {
    advanced: Duration,
    pinned_prices: HashMap<String, f64>,
    faults: Vec<ActiveFault>,
    request_counts: BTreeMap<String, u64>,
    /// Requests by route (`GET /metrics/{validator}`), counted by `server::count_by_route`.
    requests_by_route: BTreeMap<String, u64>,
    webhooks: Vec<ReceivedWebhook>,
    /// Changes made by accepted `sendBoc` messages, by raw address (`wc:hex`).
    ledger: BTreeMap<String, WalletLedger>,
    /// Every `sendBoc` that parsed as a transfer, accepted or rejected, in arrival order.
    sent: Vec<SentTransfer>,
    /// Last logical time handed out; 0 before the first transaction.
    last_lt: u64,
    /// Indexes of the scenario events (`stake_returned`) whose transactions are in the
    /// ledger already.
    recorded_events: BTreeSet<usize>,
}

/// What sent messages did to one account.
#[derive(Default)]
struct WalletLedger {
    seqno_increments: u32,
    delta_nanoton: i128,
    /// Oldest first.
    transactions: Vec<SimTransaction>,
}

struct ActiveFault {
    fault: Fault,
    /// Requests it may still hit when the fault has a `count`.
    remaining: Option<u32>,
}

impl World {
    pub(crate) fn new(scenario: Scenario) -> Self {
        let start = scenario.start.unwrap_or_else(Utc::now);
        let faults = scenario
            .faults
            .iter()
            .cloned()
            .map(|fault| ActiveFault {
                remaining: fault.count,
                fault,
            })
            .collect();
        let (webhook_count, _) = watch::channel(0);
        Self {
            scenario,
            start,
            real_start: Instant::now(),
            state: Mutex::new(WorldState {
                faults,
                ..WorldState::default()
            }),
            webhook_count,
            slack: super::slack::SlackWorkspace::default(),
            slack_socket: super::slack_socket::SlackSocketServer::default(),
            telegram: super::telegram::TelegramBotState::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, WorldState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sim seconds since the scenario start.
    pub(crate) fn elapsed_seconds(&self) -> f64 {
        let advanced = self.state().advanced;
        self.real_start.elapsed().as_secs_f64() * self.scenario.speed + advanced.as_secs_f64()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.time_at(self.elapsed_seconds())
    }

    pub(crate) fn time_at(&self, elapsed_seconds: f64) -> DateTime<Utc> {
        let millis = (elapsed_seconds * 1000.0).round() as i64;
        self.start + chrono::Duration::milliseconds(millis)
    }

    pub(crate) fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.advanced = state.advanced.saturating_add(by);
    }

    pub(crate) fn set_price(&self, coin_id: &str, usd: f64) {
        self.state().pinned_prices.insert(coin_id.to_owned(), usd);
    }

    fn coin(&self, coin_id: &str) -> Option<&SimCoin> {
        self.scenario.coins.iter().find(|coin| coin.id == coin_id)
    }

    /// Price at sim offset `t`, ignoring pins.
    fn model_price(&self, coin: &SimCoin, t: f64) -> f64 {
        let walk = walk_factor(
            self.scenario.seed,
            &coin.id,
            coin.volatility_percent_per_hour,
            t,
        );
        let events: f64 = self
            .scenario
            .events
            .iter()
            .filter_map(|event| match event {
                SimEvent::PriceMove {
                    at,
                    coin: id,
                    percent,
                    over,
                } if *id == coin.id => {
                    let since = t - at.as_secs_f64();
                    let progress = if over.is_zero() {
                        if since >= 0.0 { 1.0 } else { 0.0 }
                    } else {
                        (since / over.as_secs_f64()).clamp(0.0, 1.0)
                    };
                    Some(1.0 + percent / 100.0 * progress)
                }
                _ => None,
            })
            .product();
        coin.price_usd * walk * events
    }

    /// (price, 24 h change in percent) at sim offset `t`. A pinned price has no change
    /// (CoinGecko sends `null` for stale prices).
    pub(crate) fn quote_at(&self, coin_id: &str, t: f64) -> Option<(f64, Option<f64>)> {
        let coin = self.coin(coin_id)?;
        if let Some(pinned) = self.state().pinned_prices.get(coin_id) {
            return Some((*pinned, None));
        }
        let now = self.model_price(coin, t);
        let day_ago = self.model_price(coin, t - 86_400.0);
        Some((now, Some((now / day_ago - 1.0) * 100.0)))
    }

    pub(crate) fn price(&self, coin_id: &str) -> Option<f64> {
        self.quote_at(coin_id, self.elapsed_seconds())
            .map(|(price, _)| price)
    }

    pub(crate) fn prices(&self) -> BTreeMap<String, f64> {
        let t = self.elapsed_seconds();
        self.scenario
            .coins
            .iter()
            .filter_map(|coin| Some((coin.id.clone(), self.quote_at(&coin.id, t)?.0)))
            .collect()
    }

    /// Nanoton balance at sim offset `t` of a scenario validator (scenario value, events and
    /// transfers) or of an account only transfers touched; `None` for any other address.
    pub(crate) fn balance_nanoton(&self, address: &str, t: f64) -> Option<u128> {
        let raw = ton::parse_address(address).ok().map(|parsed| parsed.raw);
        let delta = raw.as_ref().and_then(|raw| {
            self.state()
                .ledger
                .get(raw)
                .map(|ledger| ledger.delta_nanoton)
        });
        let Some(validator) = self.validator(address) else {
            return delta.map(|delta| u128::try_from(delta.max(0)).unwrap_or(0));
        };
        let deltas: f64 = self
            .scenario
            .events
            .iter()
            .filter_map(|event| match event {
                SimEvent::BalanceChange {
                    at,
                    address: target,
                    delta_ton,
                } if *target == validator.address && at.as_secs_f64() <= t => Some(*delta_ton),
                SimEvent::Transfer {
                    at,
                    from,
                    to,
                    amount_ton,
                    ..
                } if at.as_secs_f64() <= t => {
                    let own = ton::parse_address(&validator.address)
                        .ok()
                        .map(|parsed| parsed.raw);
                    let raw = |address: &str| ton::parse_address(address).ok().map(|p| p.raw);
                    if own.is_some() && raw(to) == own {
                        Some(*amount_ton)
                    } else if own.is_some() && raw(from) == own {
                        Some(-*amount_ton)
                    } else {
                        None
                    }
                }
                _ => None,
            })
            .sum();
        let returned: f64 = self
            .scenario
            .events
            .iter()
            .filter_map(|event| match event {
                SimEvent::StakeReturned {
                    at,
                    validator: name,
                    amount_ton,
                } if *name == validator.name && at.as_secs_f64() <= t => Some(*amount_ton),
                _ => None,
            })
            .sum();
        let ton = (validator.balance_ton + deltas + returned).max(0.0);
        let scenario = (ton * NANOTON_PER_TON).round() as i128;
        Some(u128::try_from((scenario + delta.unwrap_or(0)).max(0)).unwrap_or(0))
    }

    /// The scenario validator at `address`, matched verbatim or by raw form.
    fn validator(&self, address: &str) -> Option<&super::SimValidator> {
        if let Some(found) = self
            .scenario
            .validators
            .iter()
            .find(|v| v.address == address)
        {
            return Some(found);
        }
        let raw = ton::parse_address(address).ok()?.raw;
        self.scenario.validators.iter().find(|validator| {
            ton::parse_address(&validator.address).is_ok_and(|parsed| parsed.raw == raw)
        })
    }

    /// (seqno, wallet type) of a scenario validator's wallet.
    pub(crate) fn wallet(&self, address: &str) -> Option<(u32, String)> {
        let validator = self.validator(address)?;
        let raw = ton::parse_address(address).ok().map(|parsed| parsed.raw);
        let increments = raw
            .and_then(|raw| self.state().ledger.get(&raw).map(|l| l.seqno_increments))
            .unwrap_or(0);
        let wallet_type = validator
            .wallet_type
            .clone()
            .unwrap_or_else(|| "wallet v3 r2".to_owned());
        Some((validator.seqno.saturating_add(increments), wallet_type))
    }

    /// Transactions of `address`, newest first, starting at logical time `from_lt` (inclusive)
    /// when given; `None` when the address is not one the sim knows.
    pub(crate) fn transactions(
        &self,
        address: &str,
        limit: usize,
        from_lt: Option<u64>,
    ) -> Option<Vec<SimTransaction>> {
        let raw = ton::parse_address(address).ok()?.raw;
        let t = self.elapsed_seconds();
        let mut state = self.state();
        self.record_due_events(&mut state, t);
        let ledger = state.ledger.get(&raw);
        if ledger.is_none() && self.validator(address).is_none() {
            return None;
        }
        Some(
            ledger
                .map(|ledger| {
                    ledger
                        .transactions
                        .iter()
                        .rev()
                        .filter(|tx| from_lt.is_none_or(|lt| tx.lt <= lt))
                        .take(limit)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub(crate) fn sent_transfers(&self) -> Vec<SentTransfer> {
        self.state().sent.clone()
    }

    /// Applies a `sendBoc` the way a wallet contract would, or returns the liteserver's
    /// rejection text.
    pub(crate) fn send_boc(&self, boc_base64: &str) -> Result<SentTransfer, String> {
        const CANNOT_APPLY: &str =
            "LITE_SERVER_UNKNOWN: cannot apply external message to current state : ";
        let parsed = match ton::parse_transfer(boc_base64) {
            Ok(parsed) => parsed,
            Err(TonError::InvalidBoc { .. }) => {
                return Err(format!(
                    "{CANNOT_APPLY}failed to parse external message external message is not a valid bag of cells"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "{CANNOT_APPLY}failed to parse external message: external message is not a (Message Any) according to automated checks"
                ));
            }
        };
        let now = self.now();
        let t = self.elapsed_seconds();
        let not_accepted = |exit_code: u32, state: &mut WorldState| {
            state.last_lt += 1;
            format!(
                "{CANNOT_APPLY}External message was not accepted\nCannot run message on account: inbound external message rejected by transaction {}:\nexitcode={exit_code}, steps=40, gas_used=0",
                hex_id(state.last_lt)
            )
        };
        let balance = self.balance_nanoton(&parsed.wallet_raw, t);
        let wallet = self.wallet(&parsed.wallet_raw);
        let mut state = self.state();
        // Earlier events take their logical times before this message.
        self.record_due_events(&mut state, t);
        let mut record = SentTransfer {
            received_at: now,
            wallet: parsed.wallet_raw.clone(),
            seqno: parsed.seqno,
            message_hash: parsed.message_hash.clone(),
            destination: parsed.internal.first().map(|m| m.destination_raw.clone()),
            amount_nanoton: parsed.internal.first().map(|m| m.amount_nanoton),
            comment: parsed.internal.first().and_then(|m| m.comment.clone()),
            accepted: false,
            rejection: None,
        };
        // Exit codes of the real contracts: v4 throws 33 (seqno) and 36 (expired); v5r1
        // throws 133 and 136.
        let (seqno_code, expired_code) = match parsed.wallet_kind {
            WalletKind::V4r2 => (33, 36),
            WalletKind::V5r1 => (133, 136),
        };
        let rejection = match (&wallet, balance) {
            (None, _) | (_, None) => Some(not_accepted(0, &mut state)),
            (Some((seqno, _)), _) if *seqno != parsed.seqno => {
                Some(not_accepted(seqno_code, &mut state))
            }
            _ if i64::from(parsed.valid_until) <= now.timestamp() => {
                Some(not_accepted(expired_code, &mut state))
            }
            _ => None,
        };
        if let Some(text) = rejection {
            record.rejection = Some(text.clone());
            state.sent.push(record);
            return Err(text);
        }
        let balance = balance.unwrap_or(0);
        let wanted: u128 = parsed.internal.iter().map(|m| m.amount_nanoton).sum();
        // Mode 3 ignores action-phase errors: without the funds, the seqno still moves
        // and the fee is paid, but nothing leaves.
        let funded = balance >= wanted + SIM_TRANSFER_FEE_NANOTON;
        let fee = SIM_TRANSFER_FEE_NANOTON.min(balance);
        state.last_lt += 1;
        let lt = FIRST_SIM_LT + state.last_lt;
        let wallet_friendly = friendly(&parsed.wallet_raw);
        let mut out_msgs = Vec::new();
        if funded {
            for message in &parsed.internal {
                out_msgs.push(SimMessage {
                    source: wallet_friendly.clone(),
                    destination: friendly(&message.destination_raw),
                    value_nanoton: message.amount_nanoton,
                    body_hash: message.body_hash.clone(),
                    comment: message.comment.clone(),
                    hash: None,
                    created_lt: lt + 1,
                });
            }
        }
        let transaction = SimTransaction {
            lt,
            hash: tx_hash(self.scenario.seed, lt),
            utime: now.timestamp(),
            fee_nanoton: fee,
            in_msg: SimMessage {
                source: String::new(),
                destination: wallet_friendly,
                value_nanoton: 0,
                body_hash: parsed.message_hash.clone(),
                comment: None,
                hash: Some(parsed.message_hash.clone()),
                created_lt: 0,
            },
            out_msgs: out_msgs.clone(),
        };
        let sender = state.ledger.entry(parsed.wallet_raw.clone()).or_default();
        sender.seqno_increments += 1;
        sender.delta_nanoton -= i128::try_from(fee).unwrap_or(0);
        sender.transactions.push(transaction);
        for (message, out) in parsed.internal.iter().zip(out_msgs) {
            let amount = i128::try_from(message.amount_nanoton).unwrap_or(i128::MAX);
            state
                .ledger
                .entry(parsed.wallet_raw.clone())
                .or_default()
                .delta_nanoton -= amount;
            state.last_lt += 2;
            let lt = FIRST_SIM_LT + state.last_lt;
            let hash = tx_hash(self.scenario.seed, lt);
            let receiver = state
                .ledger
                .entry(message.destination_raw.clone())
                .or_default();
            receiver.delta_nanoton += amount;
            receiver.transactions.push(SimTransaction {
                lt,
                hash,
                utime: now.timestamp(),
                fee_nanoton: 0,
                in_msg: out,
                out_msgs: Vec::new(),
            });
        }
        record.accepted = true;
        state.sent.push(record.clone());
        Ok(record)
    }

    /// Puts the transactions of scenario events due by offset `t` into the ledger, in time
    /// order, once each: a `stake_returned` is an incoming message from the elector (its
    /// amount is in the balance through `balance_nanoton`, not the ledger delta).
    fn record_due_events(&self, state: &mut WorldState, t: f64) {
        let mut due: Vec<(usize, Duration)> = self
            .scenario
            .events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| match event {
                SimEvent::StakeReturned { at, .. } | SimEvent::Transfer { at, .. }
                    if at.as_secs_f64() <= t && !state.recorded_events.contains(&index) =>
                {
                    Some((index, *at))
                }
                _ => None,
            })
            .collect();
        due.sort_by_key(|(index, at)| (*at, *index));
        for (index, at) in due {
            state.recorded_events.insert(index);
            let utime = self.time_at(at.as_secs_f64()).timestamp();
            match &self.scenario.events[index] {
                SimEvent::StakeReturned {
                    validator: name,
                    amount_ton,
                    ..
                } => {
                    let Some(raw) = self
                        .scenario
                        .validators
                        .iter()
                        .find(|validator| validator.name == *name)
                        .and_then(|validator| ton::parse_address(&validator.address).ok())
                        .map(|parsed| parsed.raw)
                    else {
                        continue;
                    };
                    let message = SimMessage {
                        source: friendly(ton::elector::ELECTOR_ADDRESS),
                        destination: friendly(&raw),
                        value_nanoton: nanoton(*amount_ton),
                        body_hash: ton::comment_body_hash(None).unwrap_or_default(),
                        comment: None,
                        hash: None,
                        created_lt: 0,
                    };
                    self.record_incoming(state, &raw, utime, message);
                }
                SimEvent::Transfer {
                    from,
                    to,
                    amount_ton,
                    comment,
                    ..
                } => {
                    let (Ok(from), Ok(to)) = (ton::parse_address(from), ton::parse_address(to))
                    else {
                        continue;
                    };
                    let message = SimMessage {
                        source: from.friendly.clone(),
                        destination: to.friendly.clone(),
                        value_nanoton: nanoton(*amount_ton),
                        body_hash: ton::comment_body_hash(comment.as_deref()).unwrap_or_default(),
                        comment: comment.clone(),
                        hash: None,
                        created_lt: 0,
                    };
                    // The sender's wallet runs the order (an external message) and sends it.
                    state.last_lt += 2;
                    let lt = FIRST_SIM_LT + state.last_lt;
                    let mut sent = message.clone();
                    sent.created_lt = lt + 1;
                    let order = SimTransaction {
                        lt,
                        hash: tx_hash(self.scenario.seed, lt),
                        utime,
                        fee_nanoton: 3_000_000,
                        in_msg: SimMessage {
                            source: String::new(),
                            destination: from.friendly.clone(),
                            value_nanoton: 0,
                            body_hash: String::new(),
                            comment: None,
                            hash: None,
                            created_lt: 0,
                        },
                        out_msgs: vec![sent],
                    };
                    state
                        .ledger
                        .entry(from.raw.clone())
                        .or_default()
                        .transactions
                        .push(order);
                    self.record_incoming(state, &to.raw, utime, message);
                }
                _ => {}
            }
        }
    }

    /// Appends an incoming transaction carrying `message` to `raw`'s ledger.
    fn record_incoming(
        &self,
        state: &mut WorldState,
        raw: &str,
        utime: i64,
        mut message: SimMessage,
    ) {
        state.last_lt += 2;
        let lt = FIRST_SIM_LT + state.last_lt;
        message.created_lt = lt - 1;
        let transaction = SimTransaction {
            lt,
            hash: tx_hash(self.scenario.seed, lt),
            utime,
            fee_nanoton: 0,
            in_msg: message,
            out_msgs: Vec::new(),
        };
        state
            .ledger
            .entry(raw.to_owned())
            .or_default()
            .transactions
            .push(transaction);
    }

    pub(crate) fn inject_fault(&self, fault: Fault) {
        self.state().faults.push(ActiveFault {
            remaining: fault.count,
            fault,
        });
    }

    pub(crate) fn active_faults(&self) -> Vec<Fault> {
        let t = self.elapsed_seconds();
        self.state()
            .faults
            .iter()
            .filter(|active| fault_window_contains(&active.fault, t))
            .map(|active| active.fault.clone())
            .collect()
    }

    /// Counts a request to `service` and returns the fault to serve, if any, consuming one
    /// use of a counted fault.
    pub(crate) fn record_request(&self, service: SimService, endpoint: &str) -> Option<FaultKind> {
        let t = self.elapsed_seconds();
        let mut state = self.state();
        *state
            .request_counts
            .entry(service.as_str().to_owned())
            .or_default() += 1;
        let index = state.faults.iter().position(|active| {
            active.fault.service == service
                && active.fault.kind.hits(endpoint)
                && active.remaining != Some(0)
                && fault_window_contains(&active.fault, t)
        })?;
        let active = &mut state.faults[index];
        let kind = active.fault.kind.clone();
        if let Some(remaining) = active.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                state.faults.remove(index);
            }
        }
        Some(kind)
    }

    pub(crate) fn count_webhook_request(&self) {
        *self
            .state()
            .request_counts
            .entry("webhook".to_owned())
            .or_default() += 1;
    }

    pub(crate) fn request_count(&self, service: &str) -> u64 {
        self.state()
            .request_counts
            .get(service)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn request_counts(&self) -> BTreeMap<String, u64> {
        self.state().request_counts.clone()
    }

    pub(crate) fn count_route(&self, route: String) {
        *self.state().requests_by_route.entry(route).or_default() += 1;
    }

    pub(crate) fn requests_by_route(&self) -> BTreeMap<String, u64> {
        self.state().requests_by_route.clone()
    }

    pub(crate) fn record_webhook(&self, webhook: ReceivedWebhook) {
        let count = {
            let mut state = self.state();
            state.webhooks.push(webhook);
            state.webhooks.len()
        };
        self.webhook_count.send_replace(count);
    }

    pub(crate) fn webhooks(&self) -> Vec<ReceivedWebhook> {
        self.state().webhooks.clone()
    }
}

fn fault_window_contains(fault: &Fault, t: f64) -> bool {
    fault.from.is_none_or(|from| t >= from.as_secs_f64())
        && fault.until.is_none_or(|until| t < until.as_secs_f64())
}

/// Multiplier of the deterministic random walk at sim offset `t` (seconds; may be negative,
/// so the 24 h change is defined right after the start). Log-normal steps every
/// `WALK_STEP_SECONDS`, each drawn from a hash of (seed, coin, step index), linearly
/// interpolated in log space so the price is continuous.
pub(crate) fn walk_factor(
    seed: u64,
    coin_id: &str,
    volatility_percent_per_hour: f64,
    t: f64,
) -> f64 {
    if volatility_percent_per_hour <= 0.0 || !t.is_finite() {
        return 1.0;
    }
    let sigma = volatility_percent_per_hour / 100.0 * (WALK_STEP_SECONDS / 3600.0).sqrt();
    let coin_hash = fnv1a(coin_id.as_bytes());
    let position = t / WALK_STEP_SECONDS;
    let step = position.floor() as i64;
    let fraction = position - step as f64;
    let shock = |index: i64| sigma * standard_normal(seed ^ coin_hash, index);
    let log_at_step: f64 = if step >= 0 {
        (0..step).map(shock).sum()
    } else {
        -(step..0).map(shock).sum::<f64>()
    };
    (log_at_step + fraction * shock(step)).exp()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A standard normal draw that depends only on (key, index): Box-Muller on two hashes.
fn standard_normal(key: u64, index: i64) -> f64 {
    let a = splitmix64(key ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let b = splitmix64(a);
    // Uniforms in (0, 1]: 53 random bits, shifted away from 0 so ln() is finite.
    let u1 = ((a >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (b >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn nanoton(ton: f64) -> u128 {
    (ton * NANOTON_PER_TON).round().max(0.0) as u128
}

fn friendly(raw: &str) -> String {
    ton::parse_address(raw)
        .map(|parsed| parsed.friendly)
        .unwrap_or_else(|_| raw.to_owned())
}

/// A transaction hash for the sim: 32 bytes from the seed and lt, standard base64.
fn tx_hash(seed: u64, lt: u64) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..4u64)
        .flat_map(|i| splitmix64(seed ^ lt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i).to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex_id(lt: u64) -> String {
    format!("{:064X}", u128::from(splitmix64(lt)) << 64 | u128::from(lt))
}

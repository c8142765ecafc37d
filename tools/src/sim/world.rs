//! The sim's state and physics: the clock, the price walk, balances, faults, webhooks.
//! Plain methods on a plain struct; the HTTP layer in `server.rs` only forwards to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::ReceivedWebhook;
use super::scenario::{Fault, FaultKind, Scenario, SimCoin, SimEvent, SimService};

/// Step of the price walk; prices are interpolated in log space between steps.
const WALK_STEP_SECONDS: f64 = 60.0;
const NANOTON_PER_TON: f64 = 1e9;

pub(crate) struct World {
    pub(crate) scenario: Scenario,
    /// Sim time at offset 0.
    start: DateTime<Utc>,
    /// Real instant the clock started; sim offset = real elapsed * speed + advanced.
    real_start: Instant,
    state: Mutex<WorldState>,
    /// Count of webhooks received; `wait_for_webhooks` waits on it.
    pub(crate) webhook_count: watch::Sender<usize>,
}

/// Mutable state, owned by the `World` behind one mutex that is never held across an await.
#[derive(Default)]
struct WorldState {
    advanced: Duration,
    pinned_prices: HashMap<String, f64>,
    faults: Vec<ActiveFault>,
    request_counts: BTreeMap<String, u64>,
    webhooks: Vec<ReceivedWebhook>,
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

    /// Nanoton balance of a scenario validator at sim offset `t`.
    pub(crate) fn balance_nanoton(&self, address: &str, t: f64) -> Option<u128> {
        let validator = self
            .scenario
            .validators
            .iter()
            .find(|validator| validator.address == address)?;
        let deltas: f64 = self
            .scenario
            .events
            .iter()
            .filter_map(|event| match event {
                SimEvent::BalanceChange {
                    at,
                    address: target,
                    delta_ton,
                } if target == address && at.as_secs_f64() <= t => Some(*delta_ton),
                _ => None,
            })
            .sum();
        let ton = (validator.balance_ton + deltas).max(0.0);
        Some((ton * NANOTON_PER_TON).round() as u128)
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
    pub(crate) fn record_request(&self, service: SimService) -> Option<FaultKind> {
        let t = self.elapsed_seconds();
        let mut state = self.state();
        *state
            .request_counts
            .entry(service.as_str().to_owned())
            .or_default() += 1;
        let index = state.faults.iter().position(|active| {
            active.fault.service == service
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

//! Token accounting: what each agent spent on the model, per UTC day, kept in the state store
//! (`reasoner/usage/<agent>/<YYYY-MM-DD>`) so budgets hold across restarts.

use chrono::NaiveDate;
use memory::{Store, StoreError};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "reasoner/usage/";

/// One agent's use on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub model_calls: u64,
}

impl UsageTotals {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The ledger over the store.
#[derive(Clone)]
pub struct UsageLedger {
    store: Store,
    /// One writer at a time, so concurrent questions do not lose each other's counts.
    lock: std::sync::Arc<parking_lot::Mutex<()>>,
}

fn key(agent: &str, day: NaiveDate) -> String {
    format!("{PREFIX}{agent}/{day}")
}

impl UsageLedger {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            lock: std::sync::Arc::default(),
        }
    }

    pub fn day(&self, agent: &str, day: NaiveDate) -> Result<UsageTotals, StoreError> {
        Ok(self
            .store
            .state()
            .get::<UsageTotals>(&key(agent, day))?
            .unwrap_or_default())
    }

    /// Adds one model call's tokens.
    pub fn add(
        &self,
        agent: &str,
        day: NaiveDate,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) -> Result<UsageTotals, StoreError> {
        let _writing = self.lock.lock();
        let mut totals = self.day(agent, day)?;
        totals.prompt_tokens += prompt_tokens;
        totals.completion_tokens += completion_tokens;
        totals.model_calls += 1;
        self.store.state().put(&key(agent, day), &totals)?;
        Ok(totals)
    }
}

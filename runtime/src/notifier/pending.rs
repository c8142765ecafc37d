//! Dispatches journaled by the router and not yet delivered to every target.
//!
//! The router keeps a dispatch here (state key `notify/pending/{id}`) right after its
//! `router.dispatched` entry and before handing it to the notifier; the notifier marks each
//! target done (`notify/done/{id}/{target}`) when that target has it (or has refused it for
//! good), and removes both when the last target is done. A run that dies in between (kill -9,
//! power loss) leaves the record behind, and the next run delivers what is missing before
//! anything new. Delivery is at least once: a target that received a message a moment before
//! the crash, with its mark not yet written, gets it again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use memory::{StateStore, StoreError};

use crate::router::Dispatch;

/// State prefix of the dispatches still being delivered.
pub const PENDING_PREFIX: &str = "notify/pending/";
const DONE_PREFIX: &str = "notify/done/";

fn pending_key(id: u64) -> String {
    format!("{PENDING_PREFIX}{id:020}")
}

fn done_prefix(id: u64) -> String {
    format!("{DONE_PREFIX}{id:020}/")
}

/// Keeps `dispatch` until every target has it.
pub fn keep(state: &StateStore, dispatch: &Dispatch) -> Result<(), StoreError> {
    state.put(&pending_key(dispatch.id), dispatch)
}

/// A dispatch a previous run did not finish, with the targets that already have it.
#[derive(Debug)]
pub struct Pending {
    pub dispatch: Dispatch,
    pub done: BTreeSet<String>,
}

/// Every unfinished dispatch, oldest first.
pub fn load(state: &StateStore) -> Result<Vec<Pending>, StoreError> {
    let mut pending = Vec::new();
    for (_, dispatch) in state.scan_prefix::<Dispatch>(PENDING_PREFIX)? {
        let prefix = done_prefix(dispatch.id);
        let done = state
            .scan_prefix::<bool>(&prefix)?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        pending.push(Pending { dispatch, done });
    }
    // Keys are zero-padded sequence numbers: the scan is already oldest first.
    Ok(pending)
}

/// Counts one dispatch's targets down to zero, marking each as it finishes.
pub struct Completion {
    state: StateStore,
    id: u64,
    remaining: AtomicUsize,
}

impl Completion {
    /// `targets` of dispatch `id` are still to deliver (`0`: nothing to do, forgotten now).
    pub fn new(state: StateStore, id: u64, targets: usize) -> Arc<Self> {
        let completion = Arc::new(Self {
            state,
            id,
            remaining: AtomicUsize::new(targets),
        });
        if targets == 0 {
            completion.forget();
        }
        completion
    }

    /// `target` has the dispatch, or refused it for good.
    pub fn done(&self, target: &str) {
        if self.id == 0 {
            return;
        }
        let before = self.remaining.fetch_sub(1, Ordering::AcqRel);
        if before <= 1 {
            self.forget();
        } else if let Err(error) = self
            .state
            .put(&format!("{}{target}", done_prefix(self.id)), &true)
        {
            tracing::error!(%error, dispatch = self.id, target, "could not mark a delivery done; it may be sent again after a restart");
        }
    }

    fn forget(&self) {
        if self.id == 0 {
            return;
        }
        let result = self
            .state
            .scan_prefix::<bool>(&done_prefix(self.id))
            .and_then(|marks| {
                marks
                    .into_iter()
                    .try_for_each(|(key, _)| self.state.delete(&key))
            })
            .and_then(|()| self.state.delete(&pending_key(self.id)));
        if let Err(error) = result {
            tracing::error!(%error, dispatch = self.id, "could not forget a delivered dispatch; it may be sent again after a restart");
        }
    }
}

//! The gate that makes online snapshots consistent across trees.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Every mutation (journal batch, series append, state put/delete, checkpoint write) holds a read
/// guard while it writes; a snapshot holds the write guard while it copies, so it sees either all
/// or none of each mutation. Owned by `Store`, shared with the journal writer thread, the series
/// store and the state store.
#[derive(Debug, Default)]
pub(crate) struct MutationGate {
    lock: RwLock<()>,
}

impl MutationGate {
    pub(crate) fn mutate(&self) -> RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic while it was held left nothing half-written in it.
        self.lock
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn freeze(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

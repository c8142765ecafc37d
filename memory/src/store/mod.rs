//! The `Store`: one sled database under `<data_dir>/store` plus the checkpoints file, and the
//! handles to the journal, series and state held in it.

mod snapshot;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use crate::checkpoint::{CHECKPOINTS_FILE, Checkpoint, append_checkpoint};
use crate::error::StoreError;
use crate::gate::MutationGate;
use crate::journal::{GENESIS_HASH, Journal};
use crate::ledger::Ledger;
use crate::series::SeriesStore;
use crate::state::StateStore;

pub use snapshot::SnapshotManifest;

pub(crate) const STORE_DIR: &str = "store";

/// The daemon's persistent memory. Cheap to clone; all clones share one database and one
/// journal writer thread, which stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

/// Field order is drop order: the journal (and its writer thread) goes before the database.
#[derive(Debug)]
struct StoreInner {
    journal: Journal,
    series: SeriesStore,
    state: StateStore,
    ledger: Ledger,
    db: sled::Db,
    data_dir: PathBuf,
    gate: Arc<MutationGate>,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/store`. Fails with [`StoreError::Locked`] when
    /// another process has it open.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            action: "creating data directory",
            path: data_dir.to_path_buf(),
            source,
        })?;
        let store_path = data_dir.join(STORE_DIR);
        let db = open_db(&store_path, data_dir)?;
        let gate = Arc::new(MutationGate::default());
        let journal = Journal::open(&db, &store_path, Arc::clone(&gate))?;
        let series = SeriesStore::open(&db, &store_path, Arc::clone(&gate))?;
        let state = StateStore::open(&db, &store_path, Arc::clone(&gate))?;
        let ledger = Ledger::open(&db, &store_path, Arc::clone(&gate))?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                journal,
                series,
                state,
                ledger,
                db,
                data_dir: data_dir.to_path_buf(),
                gate,
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn series(&self) -> &SeriesStore {
        &self.inner.series
    }

    pub fn state(&self) -> &StateStore {
        &self.inner.state
    }

    /// The finance ledger and its exchange rates.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    fn store_path(&self) -> PathBuf {
        self.inner.data_dir.join(STORE_DIR)
    }

    fn checkpoints_path(&self) -> PathBuf {
        self.inner.data_dir.join(CHECKPOINTS_FILE)
    }

    /// Writes everything to disk and fsyncs it.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .flush()
            .map_err(|source| StoreError::Database {
                action: "flushing",
                location: self.store_path().display().to_string(),
                source,
            })?;
        Ok(())
    }

    /// Appends the current journal head to `<data_dir>/checkpoints.jsonl` (fsynced) and returns
    /// it. An empty journal gives `count: 0` with the genesis hash.
    pub fn write_checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let _mutating = self.inner.gate.mutate();
        let head = self.inner.journal.current_head();
        let checkpoint = Checkpoint {
            count: head.count,
            head_hash: head.hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
            at: Utc::now(),
        };
        append_checkpoint(&self.checkpoints_path(), &checkpoint)?;
        Ok(checkpoint)
    }

    /// Consistent online backup into the new or empty directory `dest`: `<dest>/store`,
    /// `<dest>/checkpoints.jsonl` (if any) and `<dest>/manifest.json`. Mutations wait while it
    /// copies.
    pub fn snapshot(&self, dest: &Path) -> Result<SnapshotManifest, StoreError> {
        snapshot::take(self, dest)
    }

    /// Offline restore of a snapshot into `data_dir`. The snapshot's journal must verify. An
    /// existing `<data_dir>/store` is refused unless `force`, which moves it (and the
    /// checkpoints file) aside to `store.replaced-<unix-ts>`.
    pub fn restore(
        snapshot_dir: &Path,
        data_dir: &Path,
        force: bool,
    ) -> Result<SnapshotManifest, StoreError> {
        snapshot::restore(snapshot_dir, data_dir, force)
    }
}

/// sled's page cache size. sled counts it in on-disk (log) bytes, per page, over 256 LRU shards,
/// so it does not bound memory. Measured with the validators round's writes (550 samples and one
/// ~53 KB journal entry a round): the samples alone settle near 400 MiB RSS (after ~4,500
/// rounds), their pages costing several times their log size in memory; the journal alone
/// settles near 240 MiB whether the cap is 16 or 64 MiB (its leaves hold up to 16 entries, so
/// 0.5-0.9 MB each); and paged-out pages keep costing up to ~1 MiB per MB of samples written.
pub const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Opens a sled database, turning sled's lock failure into [`StoreError::Locked`] naming
/// `data_dir`.
pub(crate) fn open_db(store_path: &Path, data_dir: &Path) -> Result<sled::Db, StoreError> {
    // sled releases its file lock from a background thread after the last handle drops, so a
    // reopen in the same process can race it: retry briefly before calling it locked.
    let mut attempts = 0;
    let opened = loop {
        // sled's page cache defaults to 1 GiB, which a daemon running all day grows into;
        // see CACHE_CAPACITY_BYTES for what the cap does and does not bound.
        let result = sled::Config::new()
            .path(store_path)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open();
        match &result {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock") && attempts < 40 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            _ => break result,
        }
    };
    opened.map_err(|source| match &source {
        sled::Error::Io(error) if error.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                path: data_dir.to_path_buf(),
            }
        }
        _ => StoreError::Database {
            action: "opening the database",
            location: store_path.display().to_string(),
            source,
        },
    })
}

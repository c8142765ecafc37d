//! Persistent memory of Command Center: everything the daemon must still know after a restart.
//!
//! What this crate holds, all in one sled database at `<data_dir>/store`:
//! - the **journal**: an append-only, hash-chained audit log of what happened and who did it
//!   ([`Journal`]), with checkpoints of its head in `<data_dir>/checkpoints.jsonl` so truncation
//!   and rewrites can be detected ([`Store::write_checkpoint`], [`Journal::verify`]);
//! - **series**: numeric samples by metric name and labels, with hour/day downsampling
//!   ([`SeriesStore`]);
//! - **state**: small JSON documents by string key ([`StateStore`]);
//! - the finance **ledger** and exchange rates, amounts as exact decimals ([`ledger::Ledger`]);
//! - **vector memory**: documents with provenance, searched by meaning and keywords, in the
//!   Qdrant engine embedded in process under `<data_dir>/vectors/` or on a Qdrant server over
//!   gRPC ([`vector::MemoryStore`], [`vector::EmbeddedStore`], [`vector::QdrantStore`],
//!   [`vector::Embedder`]);
//! - consistent online **snapshots** and offline **restore** ([`Store::snapshot`],
//!   [`Store::restore`]);
//! - the **local embedder** ([`minilm`]): all-MiniLM-L6-v2 on the CPU through candle.
//!
//! What it must never do:
//! - let any other crate see sled or Qdrant: this is the only crate that names them, so a
//!   backend can be replaced here alone;
//! - mix vector spaces: a vector store holds the vectors of one embedder, and a different one
//!   needs a reindex first;
//! - rewrite or delete journal entries, or acknowledge an append before it is flushed to disk;
//! - hold secrets: callers put no credentials in entries, series labels or state, and errors
//!   here only name paths, seqs, keys and server URLs (never a Qdrant API key);
//! - panic on bad data: damaged bytes become a [`StoreError`] or a [`ChainProblem`].

mod checkpoint;
mod error;
mod gate;
mod journal;
pub mod ledger;
pub mod minilm;
mod series;
mod state;
mod store;
pub mod vector;

pub use checkpoint::{Checkpoint, read_checkpoints};
pub use error::StoreError;
pub use journal::{
    ChainProblem, GENESIS_HASH, Journal, JournalEntry, JournalQuery, NewEntry, ProblemKind,
    VerifyReport, write_csv, write_jsonl,
};
pub use series::{Aggregation, Resolution, Sample, SeriesKey, SeriesStore};
pub use state::StateStore;
pub use store::{SnapshotManifest, Store};

#[cfg(test)]
mod test_support;

//! Vector memory: documents (news, releases, reports, incidents, conversations, notes) with
//! their provenance, searchable by meaning and by exact words.
//!
//! - [`MemoryStore`] is the object-safe boundary every backend implements; [`EmbeddedStore`]
//!   (the Qdrant engine in process, under `<data_dir>/vectors/`) is the default; [`QdrantStore`]
//!   keeps the same records on a Qdrant server over gRPC. Both pass the same `suite`.
//! - [`Embedder`] turns text into vectors; [`HashingEmbedder`] needs no files or network.
//!
//! **Invariant:** one store holds vectors of one embedder. A store opened with another embedder
//! refuses search and upsert ([`VectorError::EmbedderMismatch`]) until
//! [`MemoryStore::reindex`] has re-embedded every stored text; spaces are never mixed.

mod embed;
mod embedded;
mod generation;
mod points;
mod qdrant;
#[cfg(test)]
mod qdrant_sim;
mod record;
#[cfg(test)]
pub mod suite;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use embed::{EmbedError, Embedder, HASHING_DIMS, HashingEmbedder};
pub use embedded::EmbeddedStore;
pub use qdrant::{DEFAULT_COLLECTION, QdrantConfig, QdrantStore};
pub use record::{
    ExpireReport, HybridWeights, Kind, MAX_SEARCH_LIMIT, MemoryRecord, MemoryStats, ReindexReport,
    Retention, SearchFilter, SearchHit, SearchQuery, Trust, UpsertReport, content_id, rank,
};

/// The vector memory boundary. Synchronous: the embedded engine is blocking CPU and disk work,
/// so async callers use `spawn_blocking`; a network backend blocks on its runtime handle there.
pub trait MemoryStore: Send + Sync {
    /// `embedded` or `qdrant`, for stats and logs.
    fn backend(&self) -> &'static str;

    /// Embeds and stores records; a record whose id is already stored replaces it.
    fn upsert(&self, records: Vec<MemoryRecord>) -> Result<UpsertReport, VectorError>;

    /// Hybrid search: dense similarity and keyword score, weighted, with a recency factor;
    /// expired records (own expiry before the query's `now`) are never returned.
    fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, VectorError>;

    fn get(&self, id: &str) -> Result<Option<MemoryRecord>, VectorError>;

    /// Whether a record with this id was there.
    fn delete(&self, id: &str) -> Result<bool, VectorError>;

    /// Counts every record by kind and domain (reads them all).
    fn stats(&self) -> Result<MemoryStats, VectorError>;

    /// Whether the stored vectors were made by another embedder than the configured one
    /// (from the store's metadata; cheap).
    fn needs_reindex(&self) -> bool;

    /// Removes every record whose own expiry or whose kind's retention has passed at `now`.
    fn expire(
        &self,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<ExpireReport, VectorError>;

    /// Every record, without vectors, in no particular order.
    fn export(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<MemoryRecord, VectorError>> + '_>, VectorError>;

    /// Re-embeds every stored text with `embedder`, which becomes the store's embedder. The old
    /// vectors stay searchable until the new ones are complete.
    fn reindex(&self, embedder: Arc<dyn Embedder>) -> Result<ReindexReport, VectorError>;
}

/// What can go wrong in vector memory; the variants are what a caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The caller passed something no store accepts; the message names the field.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },

    /// The stored vectors were made by another embedder than the configured one.
    #[error(
        "vector memory at {location} holds vectors of embedder {stored:?} but the configured \
         embedder is {configured:?}; run `command-center memory reindex` to re-embed, or \
         configure {stored:?} again"
    )]
    EmbedderMismatch {
        location: String,
        stored: String,
        configured: String,
    },

    #[error(transparent)]
    Embed(#[from] EmbedError),

    /// The vector engine failed.
    #[error("vector engine error while {action} in {location}: {message}")]
    Engine {
        action: &'static str,
        location: String,
        message: String,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Stored data did not decode (a damaged payload or metadata file).
    #[error("could not decode {what}: {message}")]
    Corrupt { what: String, message: String },
}

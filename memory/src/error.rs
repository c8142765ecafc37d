//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in the store. Each message names what failed and where (path,
/// journal seq, series key or state key) and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (usually the running daemon) holds sled's lock on the data directory.
    #[error(
        "the data directory {path} is in use by another process (is the daemon running?); \
         stop it or use a different data directory"
    )]
    Locked { path: PathBuf },

    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The embedded database reported an error.
    #[error("database error while {action} in {location}: {source}")]
    Database {
        action: &'static str,
        location: String,
        #[source]
        source: sled::Error,
    },

    /// A value could not be turned into JSON (state values, series keys, manifests).
    #[error("could not encode {what} as JSON: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// Stored bytes did not decode into the expected type.
    #[error("could not decode {what}: {message}")]
    Decode { what: String, message: String },

    /// A line of a checkpoints file is not a valid checkpoint.
    #[error(
        "{path}:{line}: not a valid checkpoint ({message}); fix or remove that line \
         (each line must be {{\"count\":N,\"head_hash\":\"<hex>\",\"at\":\"<RFC3339>\"}})"
    )]
    BadCheckpoint {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// The journal writer could not make a batch durable; none of the batch was acknowledged.
    #[error(
        "journal append of seq {first_seq}..={last_seq} failed in {path}: {message}; \
         the entries were not acknowledged and may be retried"
    )]
    JournalWrite {
        path: PathBuf,
        first_seq: u64,
        last_seq: u64,
        message: String,
    },

    /// The journal writer thread is gone (the store is shutting down or the thread died).
    #[error("the journal writer for {path} has stopped; reopen the store")]
    JournalClosed { path: PathBuf },

    /// Two different series keys hash to the same 8-byte series id.
    #[error(
        "series id collision in {path}: {new_key} has the same id as the stored series {stored_key}; \
         rename one of them"
    )]
    SeriesIdCollision {
        path: PathBuf,
        new_key: String,
        stored_key: String,
    },

    /// A snapshot destination, or a restore target, already holds data.
    #[error("{path} already exists and is not empty; {hint}")]
    AlreadyExists { path: PathBuf, hint: &'static str },

    /// A snapshot is missing files or does not match its manifest or its own journal.
    #[error("snapshot {path} is not usable: {message}")]
    InvalidSnapshot { path: PathBuf, message: String },

    /// A caller passed a value the store does not understand.
    #[error("invalid {what} {given:?}: expected {expected}")]
    InvalidInput {
        what: &'static str,
        given: String,
        expected: &'static str,
    },

    /// Writing a CSV export failed.
    #[error("could not write the journal CSV export ({position}): {source}")]
    Csv {
        position: String,
        #[source]
        source: csv::Error,
    },
}

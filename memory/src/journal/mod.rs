//! The append-only, hash-chained audit journal.
//!
//! Entries live in the sled tree `journal`, keyed by their seq as a big-endian `u64` so that key
//! order is seq order, with the entry's JSON as value. One writer thread assigns seq, `at`,
//! `prev_hash` and `hash`, so the chain is built in one place and appenders never race.

mod export;
mod query;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::error::StoreError;
use crate::gate::MutationGate;

pub use export::{write_csv, write_jsonl};
pub use query::JournalQuery;
pub(crate) use verify::verify_tree;
pub use verify::{ChainProblem, ProblemKind, VerifyReport};

pub(crate) const JOURNAL_TREE: &str = "journal";

/// `prev_hash` of entry #1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller hands to the journal; the writer adds seq, time and hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub body: serde_json::Value,
}

/// One journal entry as stored and exported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub body: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl JournalEntry {
    /// The hash this entry should carry given its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        entry_hash(
            &self.prev_hash,
            &CanonicalEntry {
                actor: &self.actor,
                at: self.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                body: Sorted(&self.body),
                kind: &self.kind,
                seq: self.seq,
                subject: &self.subject,
            },
        )
    }
}

/// The hashed form of an entry. Fields are declared in alphabetical order, so serde_json writes
/// the same bytes as it would for a sorted JSON object; `body` maps are sorted by [`Sorted`],
/// whatever map type serde_json was built with (another crate in the tree may enable
/// `preserve_order`, which would otherwise make the hash depend on insertion order).
#[derive(Serialize)]
struct CanonicalEntry<'a> {
    actor: &'a str,
    at: String,
    body: Sorted<'a>,
    kind: &'a str,
    seq: u64,
    subject: &'a str,
}

/// `hex(SHA-256(prev_hash || "\n" || canonical_json))`.
fn entry_hash(prev_hash: &str, canonical: &CanonicalEntry<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    // Writing JSON into a hasher cannot fail: the types hold only strings, integers and
    // `serde_json::Value`, whose map keys are always strings.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), canonical);
    hex::encode(hasher.finalize())
}

/// Serializes a JSON value with every object's keys in sorted order.
pub(crate) struct Sorted<'a>(&'a serde_json::Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    if let Some(value) = map.get(key) {
                        out.serialize_entry(key, &Sorted(value))?;
                    }
                }
                out.end()
            }
            serde_json::Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Sorted(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub(crate) fn key_seq(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

pub(crate) fn decode_entry(
    path: &Path,
    seq: u64,
    bytes: &[u8],
) -> Result<JournalEntry, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Decode {
        what: format!("journal entry seq {seq} in {}", path.display()),
        message: format!(
            "{error}; run `verify` to check the chain, restore from a snapshot if it is damaged"
        ),
    })
}

/// The newest entry as the writer last made it durable. Written only by the writer thread,
/// read by `len`/`head`/`write_checkpoint`.
#[derive(Clone, Debug, Default)]
pub(crate) struct JournalHead {
    pub(crate) count: u64,
    pub(crate) hash: Option<String>,
    pub(crate) at: Option<DateTime<Utc>>,
}

impl JournalHead {
    fn as_checkpoint(&self) -> Option<Checkpoint> {
        match (&self.hash, self.at) {
            (Some(hash), Some(at)) => Some(Checkpoint {
                count: self.count,
                head_hash: hash.clone(),
                at,
            }),
            _ => None,
        }
    }
}

/// Handle to the journal. Appends go through the single writer thread; reads go straight to sled.
pub struct Journal {
    tree: sled::Tree,
    /// `<data_dir>/store`, for error messages.
    path: PathBuf,
    head: Arc<Mutex<JournalHead>>,
    /// `None` only while dropping.
    writer: Option<writer::WriterHandle>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Journal {
    pub(crate) fn open(
        db: &sled::Db,
        path: &Path,
        gate: Arc<MutationGate>,
    ) -> Result<Journal, StoreError> {
        let tree = db
            .open_tree(JOURNAL_TREE)
            .map_err(|source| StoreError::Database {
                action: "opening the journal tree",
                location: path.display().to_string(),
                source,
            })?;
        let head = load_head(&tree, path)?;
        let head = Arc::new(Mutex::new(head));
        let writer = writer::spawn(tree.clone(), path.to_path_buf(), Arc::clone(&head), gate)?;
        Ok(Journal {
            tree,
            path: path.to_path_buf(),
            head,
            writer: Some(writer),
        })
    }

    /// Appends one entry; returns once it is flushed to disk. Concurrent callers share flushes.
    pub async fn append(&self, entry: NewEntry) -> Result<JournalEntry, StoreError> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        self.submit(vec![entry], writer::Reply::Async(reply))?;
        let mut entries = receiver.await.map_err(|_| self.closed())??;
        entries.pop().ok_or_else(|| self.closed())
    }

    /// Appends one entry from synchronous code; blocks until it is flushed to disk.
    pub fn append_blocking(&self, entry: NewEntry) -> Result<JournalEntry, StoreError> {
        let mut entries = self.append_many_blocking(vec![entry])?;
        entries.pop().ok_or_else(|| self.closed())
    }

    /// Appends entries as one contiguous run with a single flush; blocks until durable.
    pub fn append_many_blocking(
        &self,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, receiver) = mpsc::sync_channel(1);
        self.submit(entries, writer::Reply::Blocking(reply))?;
        receiver.recv().map_err(|_| self.closed())?
    }

    fn submit(&self, entries: Vec<NewEntry>, reply: writer::Reply) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or_else(|| self.closed())?;
        writer
            .requests
            .send(writer::AppendRequest { entries, reply })
            .map_err(|_| self.closed())
    }

    fn closed(&self) -> StoreError {
        StoreError::JournalClosed {
            path: self.path.clone(),
        }
    }

    pub(crate) fn current_head(&self) -> JournalHead {
        self.head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Number of durable entries (the seq of the newest one).
    pub fn len(&self) -> u64 {
        self.current_head().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest durable entry as a checkpoint (`at` is that entry's time); `None` when empty.
    pub fn head(&self) -> Option<Checkpoint> {
        self.current_head().as_checkpoint()
    }

    pub fn get(&self, seq: u64) -> Result<Option<JournalEntry>, StoreError> {
        let bytes = self
            .tree
            .get(seq_key(seq))
            .map_err(|source| StoreError::Database {
                action: "reading a journal entry",
                location: format!("{} seq {seq}", self.path.display()),
                source,
            })?;
        bytes
            .map(|bytes| decode_entry(&self.path, seq, &bytes))
            .transpose()
    }

    pub fn query(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, StoreError> {
        query::run(&self.tree, &self.path, query)
    }

    /// Walks the whole chain; see [`VerifyReport`] for what is checked.
    pub fn verify(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport, StoreError> {
        verify::verify_tree(&self.tree, &self.path, checkpoints)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish queued batches and exit; joining it means
        // sled's file lock is released by the time the `Store` is gone.
        if let Some(writer) = self.writer.take() {
            writer.shut_down();
        }
    }
}

fn load_head(tree: &sled::Tree, path: &Path) -> Result<JournalHead, StoreError> {
    let last = tree.last().map_err(|source| StoreError::Database {
        action: "reading the newest journal entry",
        location: path.display().to_string(),
        source,
    })?;
    let Some((key, value)) = last else {
        return Ok(JournalHead::default());
    };
    let seq = key_seq(&key).ok_or_else(|| StoreError::Decode {
        what: format!("newest journal key in {}", path.display()),
        message: format!(
            "key {} is not an 8-byte seq; the journal tree is damaged, restore from a snapshot",
            hex::encode(&key)
        ),
    })?;
    let entry = decode_entry(path, seq, &value)?;
    Ok(JournalHead {
        count: seq,
        hash: Some(entry.hash),
        at: Some(entry.at),
    })
}

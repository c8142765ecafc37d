//! The single journal writer thread: group commit with one flush per batch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use chrono::{SecondsFormat, Utc};

use super::{CanonicalEntry, JournalEntry, JournalHead, NewEntry, entry_hash, seq_key};
use crate::error::StoreError;
use crate::gate::MutationGate;

/// Upper bound on entries committed under one flush, so one huge queue does not delay the first
/// waiters for long. A single `append_many_blocking` call is never split.
const MAX_BATCH_ENTRIES: usize = 8192;

pub(super) type AppendResult = Result<Vec<JournalEntry>, StoreError>;

pub(super) enum Reply {
    Async(tokio::sync::oneshot::Sender<AppendResult>),
    Blocking(mpsc::SyncSender<AppendResult>),
}

impl Reply {
    fn send(self, result: AppendResult) {
        // A waiter that went away (dropped future) no longer wants the answer; the entries are
        // durable either way.
        match self {
            Reply::Async(sender) => {
                let _ = sender.send(result);
            }
            Reply::Blocking(sender) => {
                let _ = sender.send(result);
            }
        }
    }
}

pub(super) struct AppendRequest {
    pub(super) entries: Vec<NewEntry>,
    pub(super) reply: Reply,
}

pub(super) struct WriterHandle {
    pub(super) requests: mpsc::Sender<AppendRequest>,
    thread: JoinHandle<()>,
}

impl WriterHandle {
    pub(super) fn shut_down(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

pub(super) fn spawn(
    tree: sled::Tree,
    path: PathBuf,
    shared_head: Arc<Mutex<JournalHead>>,
    gate: Arc<MutationGate>,
) -> Result<WriterHandle, StoreError> {
    let (requests, receiver) = mpsc::channel();
    let head = shared_head
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let writer = Writer {
        tree,
        path: path.clone(),
        next_seq: head.count + 1,
        prev_hash: head.hash.unwrap_or_else(|| super::GENESIS_HASH.to_owned()),
        shared_head,
        gate,
    };
    let thread = std::thread::Builder::new()
        .name("journal-writer".to_owned())
        .spawn(move || writer.run(receiver))
        .map_err(|source| StoreError::Io {
            action: "starting the journal writer thread for",
            path,
            source,
        })?;
    Ok(WriterHandle { requests, thread })
}

struct Writer {
    tree: sled::Tree,
    path: PathBuf,
    /// Seq the next entry gets; only advanced after a successful flush.
    next_seq: u64,
    /// Hash of entry `next_seq - 1`, or the genesis hash.
    prev_hash: String,
    shared_head: Arc<Mutex<JournalHead>>,
    gate: Arc<MutationGate>,
}

impl Writer {
    fn run(mut self, receiver: mpsc::Receiver<AppendRequest>) {
        while let Ok(first) = receiver.recv() {
            let mut queued = first.entries.len();
            let mut batch = vec![first];
            while queued < MAX_BATCH_ENTRIES {
                match receiver.try_recv() {
                    Ok(request) => {
                        queued += request.entries.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, requests: Vec<AppendRequest>) {
        let _mutating = self.gate.mutate();
        let first_seq = self.next_seq;
        let mut seq = self.next_seq;
        let mut prev_hash = self.prev_hash.clone();
        let mut sled_batch = sled::Batch::default();
        let mut answers = Vec::with_capacity(requests.len());
        let mut encode_error = None;
        for request in requests {
            let mut made = Vec::with_capacity(request.entries.len());
            for new in request.entries {
                let at = Utc::now();
                let hash = entry_hash(
                    &prev_hash,
                    &CanonicalEntry {
                        actor: &new.actor,
                        at: at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                        body: super::Sorted(&new.body),
                        kind: &new.kind,
                        seq,
                        subject: &new.subject,
                    },
                );
                let entry = JournalEntry {
                    seq,
                    at,
                    actor: new.actor,
                    kind: new.kind,
                    subject: new.subject,
                    body: new.body,
                    prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                    hash,
                };
                match serde_json::to_vec(&entry) {
                    Ok(bytes) => sled_batch.insert(&seq_key(seq), bytes),
                    Err(error) => {
                        encode_error.get_or_insert_with(|| format!("encoding seq {seq}: {error}"));
                    }
                }
                made.push(entry);
                seq += 1;
            }
            answers.push((request.reply, made));
        }
        let last_seq = seq - 1;

        let outcome = match encode_error {
            Some(message) => Err(message),
            None => self.write_durably(sled_batch, first_seq, last_seq),
        };
        match outcome {
            Ok(()) => {
                self.next_seq = seq;
                self.prev_hash = prev_hash.clone();
                {
                    let mut head = self
                        .shared_head
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    head.count = last_seq;
                    head.hash = Some(prev_hash);
                    head.at = answers
                        .iter()
                        .rev()
                        .find_map(|(_, made)| made.last())
                        .map(|entry| entry.at);
                }
                for (reply, made) in answers {
                    reply.send(Ok(made));
                }
            }
            Err(message) => {
                tracing::error!(path = %self.path.display(), first_seq, last_seq, %message, "journal batch failed");
                for (reply, _) in answers {
                    reply.send(Err(StoreError::JournalWrite {
                        path: self.path.clone(),
                        first_seq,
                        last_seq,
                        message: message.clone(),
                    }));
                }
            }
        }
    }

    fn write_durably(
        &self,
        batch: sled::Batch,
        first_seq: u64,
        last_seq: u64,
    ) -> Result<(), String> {
        self.tree
            .apply_batch(batch)
            .map_err(|error| format!("inserting the batch: {error}"))?;
        if let Err(error) = self.tree.flush() {
            // Take the unacknowledged entries back out so readers do not see them and the next
            // batch reuses their seqs; best effort, the next batch overwrites them anyway.
            let mut undo = sled::Batch::default();
            for seq in first_seq..=last_seq {
                undo.remove(&seq_key(seq));
            }
            let _ = self.tree.apply_batch(undo);
            return Err(format!("flushing to disk: {error}"));
        }
        Ok(())
    }
}

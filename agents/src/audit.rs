//! The one door to the journal for agents and the runtime: every write is timed and counted.

use std::time::Instant;

use memory::{JournalEntry, NewEntry, Store};
use serde::Serialize;

use crate::telemetry::Telemetry;

/// Why an audit write failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("journal append of {kind} ({subject}) failed: {source}")]
    Store {
        kind: String,
        subject: String,
        #[source]
        source: memory::StoreError,
    },
    #[error("journal body of {kind} ({subject}) is not serializable: {source}")]
    Body {
        kind: String,
        subject: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Journals events; cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    store: Store,
    telemetry: Telemetry,
}

impl Auditor {
    pub fn new(store: Store, telemetry: Telemetry) -> Self {
        Self { store, telemetry }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends one entry and returns once it is durable.
    pub async fn record<B: Serialize>(
        &self,
        actor: &str,
        kind: &str,
        subject: &str,
        body: &B,
    ) -> Result<JournalEntry, AuditError> {
        let body = serde_json::to_value(body).map_err(|source| AuditError::Body {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            source,
        })?;
        let started = Instant::now();
        let entry = self
            .store
            .journal()
            .append(NewEntry {
                actor: actor.to_owned(),
                kind: kind.to_owned(),
                subject: subject.to_owned(),
                body,
            })
            .await
            .map_err(|source| AuditError::Store {
                kind: kind.to_owned(),
                subject: subject.to_owned(),
                source,
            })?;
        self.telemetry
            .journal_append_latency
            .observe(started.elapsed().as_secs_f64());
        self.telemetry.journal_appends.inc();
        Ok(entry)
    }
}

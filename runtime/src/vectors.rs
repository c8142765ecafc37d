//! The daemon's vector memory: the store `[memory]` chooses, with its embedder, kept up to date.
//!
//! - [`open`] picks the backend and embedder (`auto`: the local model when its files are there,
//!   else hashing, so `run` always starts).
//! - [`VectorMemory::maintain`] re-embeds everything when the embedder changed (the store
//!   refuses mixed spaces until then), remembers what the journal records (alerts as
//!   incidents, answered questions as conversations) from a durable cursor, and removes
//!   records past their retention.
//!
//! What it must never do: block the async runtime (every store call runs under
//! `spawn_blocking`), lose a journal entry (the cursor moves only after the records are
//! stored), or mix two embedders' vectors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agents::audit::Auditor;
use chrono::{DateTime, Utc};
use memory::JournalQuery;
use memory::vector::{
    EmbeddedStore, Embedder, HashingEmbedder, Kind, MemoryRecord, MemoryStats, MemoryStore,
    SearchHit, SearchQuery, Trust, VectorError,
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::{EmbedderChoice, MemoryBackend, MemorySection};

/// State key of the journal cursor: the last entry's seq already remembered.
const CURSOR_KEY: &str = "memory/journal_cursor";
/// Journal entries read per pass.
const JOURNAL_BATCH: usize = 256;
/// How often the journal is looked at for new entries.
const JOURNAL_INTERVAL: Duration = Duration::from_secs(5);
/// Longest text remembered from one journal entry, in bytes.
const MAX_ENTRY_TEXT: usize = 2000;

/// The open vector memory and the settings it is searched with.
pub struct VectorMemory {
    store: Arc<dyn MemoryStore>,
    /// The same store when it is the embedded engine, whose index is built in the background.
    embedded: Option<Arc<EmbeddedStore>>,
    embedder: Arc<dyn Embedder>,
    settings: MemorySection,
    /// How the embedder was chosen (`auto` falls back with a reason).
    pub embedder_note: String,
}

impl std::fmt::Debug for VectorMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorMemory")
            .field("backend", &self.store.backend())
            .field("embedder", &self.embedder.id())
            .finish_non_exhaustive()
    }
}

/// The embedder `[memory]` asks for, and a note saying which one it is and why.
pub fn embedder(
    section: &MemorySection,
    data_dir: &Path,
) -> Result<(Arc<dyn Embedder>, String), String> {
    let model_dir = section.model_dir(data_dir);
    match section.embedder {
        EmbedderChoice::Hashing => Ok((
            Arc::new(HashingEmbedder::new()),
            "hashing (shared words, not meaning)".to_owned(),
        )),
        EmbedderChoice::Local => {
            let model = memory::minilm::MiniLm::load(&model_dir)
                .map_err(|error| format!("memory.embedder = \"local\": {error}"))?;
            Ok((
                Arc::new(model),
                format!("local all-MiniLM-L6-v2 from {}", model_dir.display()),
            ))
        }
        EmbedderChoice::Auto => match memory::minilm::MiniLm::load(&model_dir) {
            Ok(model) => Ok((
                Arc::new(model),
                format!("local all-MiniLM-L6-v2 from {}", model_dir.display()),
            )),
            Err(memory::minilm::MiniLmError::Missing { .. }) => Ok((
                Arc::new(HashingEmbedder::new()),
                format!(
                    "hashing (shared words, not meaning): no model in {}; `command-center models install` puts it there",
                    model_dir.display()
                ),
            )),
            Err(error) => Err(format!("memory.embedder = \"auto\": {error}")),
        },
        EmbedderChoice::Openai => {
            let openai = &section.openai;
            let embedder = agents::reasoner::embed::OpenAiEmbedder::new(
                agents::reasoner::embed::OpenAiEmbedderConfig {
                    base_url: openai.base_url.clone(),
                    model: openai.model.clone(),
                    api_key: openai.api_key.clone(),
                    dimensions: (openai.dimensions > 0).then_some(openai.dimensions),
                    ..agents::reasoner::embed::OpenAiEmbedderConfig::default()
                },
            )
            .map_err(|error| format!("memory.embedder = \"openai\": {error}"))?;
            Ok((
                Arc::new(embedder),
                format!("openai {} at {}", openai.model, openai.base_url),
            ))
        }
    }
}

/// Opens the memory `[memory]` describes; `None` when it is off. Blocking: call it from
/// `spawn_blocking`.
pub fn open(section: &MemorySection, data_dir: &Path) -> Result<Option<VectorMemory>, String> {
    if !section.enabled {
        return Ok(None);
    }
    let (embedder, embedder_note) = embedder(section, data_dir)?;
    let mut embedded = None;
    let store: Arc<dyn MemoryStore> = match section.backend {
        MemoryBackend::Embedded => {
            let store = Arc::new(
                EmbeddedStore::open(data_dir, embedder.clone())
                    .map_err(|error| format!("memory: {error}"))?,
            );
            embedded = Some(store.clone());
            store
        }
        MemoryBackend::Qdrant => {
            let qdrant = &section.qdrant;
            let config = memory::vector::QdrantConfig {
                url: qdrant.url.clone(),
                api_key: qdrant.api_key.as_ref().map(|key| key.expose().to_owned()),
                collection: qdrant.collection.clone(),
                timeout: qdrant.timeout,
            };
            Arc::new(
                memory::vector::QdrantStore::connect(config, embedder.clone())
                    .map_err(|error| format!("memory.qdrant: {error}"))?,
            )
        }
    };
    Ok(Some(VectorMemory {
        store,
        embedded,
        embedder,
        settings: section.clone(),
        embedder_note,
    }))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, VectorError> + Send + 'static,
) -> Result<T, VectorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| VectorError::Engine {
            action: "running a memory task",
            location: "the daemon".to_owned(),
            message: error.to_string(),
        })?
}

impl VectorMemory {
    /// The store, for blocking callers (the CLI).
    pub fn store(&self) -> Arc<dyn MemoryStore> {
        self.store.clone()
    }

    pub fn embedder(&self) -> Arc<dyn Embedder> {
        self.embedder.clone()
    }

    /// A query with the configured recency half-life.
    pub fn query(&self, text: impl Into<String>) -> SearchQuery {
        SearchQuery::new(text).recency_half_life(Some(self.settings.recency_half_life))
    }

    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>, VectorError> {
        let store = self.store.clone();
        blocking(move || store.search(&query)).await
    }

    pub async fn upsert(&self, records: Vec<MemoryRecord>) -> Result<usize, VectorError> {
        let store = self.store.clone();
        blocking(move || {
            store
                .upsert(records)
                .map(|report| report.inserted + report.replaced)
        })
        .await
    }

    pub async fn stats(&self) -> Result<MemoryStats, VectorError> {
        let store = self.store.clone();
        blocking(move || store.stats()).await
    }

    /// Re-embeds with the configured embedder when the stored vectors are another's; journals
    /// `memory.reindexed`. Returns whether it did.
    pub async fn reindex_if_needed(&self, auditor: &Auditor) -> Result<bool, VectorError> {
        if !self.store.needs_reindex() {
            return Ok(false);
        }
        let store = self.store.clone();
        let embedder = self.embedder.clone();
        tracing::info!(
            embedder = embedder.id(),
            "memory: the embedder changed; re-embedding every record (search waits until done)"
        );
        let report = blocking(move || store.reindex(embedder)).await?;
        tracing::info!(?report, "memory: re-embedded");
        if let Err(error) = auditor
            .record("memory", "memory.reindexed", self.embedder.id(), &report)
            .await
        {
            tracing::error!(%error, "could not journal a reindex");
        }
        Ok(true)
    }

    /// Remembers the journal entries after the cursor; returns how many records were stored.
    pub async fn remember_journal(&self, journal_store: &memory::Store) -> Result<usize, String> {
        let state = journal_store.state();
        let mut cursor: u64 = state
            .get(CURSOR_KEY)
            .map_err(|error| error.to_string())?
            .unwrap_or(0);
        let mut stored = 0;
        loop {
            let entries = journal_store
                .journal()
                .query(&JournalQuery {
                    after_seq: Some(cursor),
                    limit: Some(JOURNAL_BATCH),
                    ..JournalQuery::default()
                })
                .map_err(|error| error.to_string())?;
            let Some(last) = entries.last().map(|entry| entry.seq) else {
                return Ok(stored);
            };
            let records: Vec<MemoryRecord> = entries
                .iter()
                .filter_map(|entry| from_journal(entry.seq, &entry.kind, entry.at, &entry.body))
                .collect();
            if !records.is_empty() {
                stored += self
                    .upsert(records)
                    .await
                    .map_err(|error| error.to_string())?;
            }
            cursor = last;
            state
                .put(CURSOR_KEY, &cursor)
                .map_err(|error| error.to_string())?;
            if entries.len() < JOURNAL_BATCH {
                return Ok(stored);
            }
        }
    }

    /// Removes what is past its retention.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<usize, VectorError> {
        let store = self.store.clone();
        let retention = self.settings.retention.retention();
        blocking(move || store.expire(now, &retention).map(|report| report.removed)).await
    }

    /// Builds the embedded engine's search index over what was added since the last time
    /// (searches stay exact, and slower, over segments not yet indexed). Writes wait meanwhile.
    pub async fn optimize(&self) {
        let Some(store) = self.embedded.clone() else {
            return;
        };
        let started = std::time::Instant::now();
        match blocking(move || store.optimize()).await {
            Ok(true) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "memory: search index built"
            ),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "memory: building the search index failed; retrying later")
            }
        }
    }

    /// Runs until `stop`: reindex when needed, then remember the journal and expire old
    /// records on their intervals.
    pub async fn maintain(
        self: Arc<Self>,
        journal_store: memory::Store,
        auditor: Auditor,
        mut stop: watch::Receiver<bool>,
    ) {
        if let Err(error) = self.reindex_if_needed(&auditor).await {
            tracing::error!(%error, "memory: re-embedding failed; search stays off until it succeeds (`command-center memory reindex`)");
        }
        let mut journal_tick = tokio::time::interval(JOURNAL_INTERVAL);
        let mut expire_tick = tokio::time::interval(self.settings.expire_interval);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = journal_tick.tick(), if self.settings.remember_journal => {
                    match self.remember_journal(&journal_store).await {
                        Ok(0) => {}
                        Ok(stored) => tracing::debug!(stored, "memory: remembered journal entries"),
                        Err(error) => tracing::warn!(%error, "memory: could not remember journal entries; retrying"),
                    }
                }
                _ = expire_tick.tick() => {
                    match self.expire(Utc::now()).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "memory: removed records past their retention"),
                        Err(error) => tracing::warn!(%error, "memory: expiry failed; retrying"),
                    }
                    self.optimize().await;
                }
            }
        }
    }
}

/// The record a journal entry becomes, if it is worth remembering.
pub fn from_journal(seq: u64, kind: &str, at: DateTime<Utc>, body: &Value) -> Option<MemoryRecord> {
    let text_of = |value: &Value| value.as_str().unwrap_or_default().trim().to_owned();
    let record = match kind {
        "alert.firing" | "alert.resolved" => {
            let summary = text_of(&body["summary"]);
            if summary.is_empty() {
                return None;
            }
            let domain = body["labels"]["domain"]
                .as_str()
                .filter(|domain| !domain.is_empty())
                .unwrap_or("operations");
            let state = if kind == "alert.firing" {
                "Alert firing"
            } else {
                "Alert resolved"
            };
            let severity = body["severity"].as_str().unwrap_or("unknown");
            let evidence = cut(&body["evidence"].to_string());
            MemoryRecord::new(
                format!("{state} ({severity}): {summary}. Evidence: {evidence}"),
                domain,
                Kind::Incident,
                at,
            )
            .with_trust(Trust::Internal)
        }
        "conversation.answered" => {
            let question = text_of(&body["question"]);
            let answer = text_of(&body["answer"]);
            if question.is_empty() || answer.is_empty() {
                return None;
            }
            let user = body["user"].as_str().unwrap_or("someone");
            // What people typed is not ours to trust.
            MemoryRecord::new(
                cut(&format!("{user} asked: {question}\nAnswer: {answer}")),
                "operations",
                Kind::Conversation,
                at,
            )
        }
        _ => return None,
    };
    Some(record.with_source_url(format!("journal:{seq}")))
}

fn cut(text: &str) -> String {
    ::tools::llm::truncate(text, MAX_ENTRY_TEXT).0
}

/// `memory:<first 12 hex digits of the id>`: how answers cite a record.
pub fn citation(id: &str) -> String {
    format!("memory:{}", id.get(..12).unwrap_or(id))
}

/// A hit as the API, the CLI and the tool show it.
pub fn hit_json(hit: &SearchHit) -> Value {
    let record = &hit.record;
    json!({
        "id": record.id,
        "citation": citation(&record.id),
        "kind": record.kind.as_str(),
        "domain": record.domain,
        "trust": record.trust.as_str(),
        "fetched_at": record.fetched_at,
        "source_url": record.source_url,
        "score": hit.score,
        "text": record.text,
    })
}

/// A search as the API's query string and the CLI's flags give it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SearchParams {
    /// The words to look for.
    pub q: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Kinds, comma-separated (`incident,report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// RFC 3339, or a duration back from now (`7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `internal` or `external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl SearchParams {
    /// The store query, or what is wrong with a parameter (named).
    pub fn query(
        &self,
        recency_half_life: Duration,
        now: DateTime<Utc>,
    ) -> Result<SearchQuery, String> {
        if self.q.trim().is_empty() {
            return Err("q: say what to look for".to_owned());
        }
        let limit = self.limit.unwrap_or(10);
        if !(1..=memory::vector::MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(format!(
                "limit: {limit} is not between 1 and {}",
                memory::vector::MAX_SEARCH_LIMIT
            ));
        }
        let kinds = match &self.kind {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|kind| !kind.is_empty())
                .map(|kind| {
                    kind.parse::<Kind>().map_err(|_| {
                        format!(
                            "kind: {kind:?} is not one of {}",
                            Kind::ALL.map(Kind::as_str).join(", ")
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let since = self
            .since
            .as_deref()
            .map(|text| {
                agents::duration::parse_time(text, now)
                    .map_err(|message| format!("since: {message}"))
            })
            .transpose()?;
        let trust = match self.trust.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("internal") => Some(Trust::Internal),
            Some("external") => Some(Trust::External),
            Some(other) => {
                return Err(format!("trust: {other:?} is not internal or external"));
            }
        };
        Ok(SearchQuery::new(self.q.clone())
            .limit(limit)
            .recency_half_life(Some(recency_half_life))
            .filter(memory::vector::SearchFilter {
                domains: self.domain.iter().cloned().collect(),
                kinds,
                since,
                until: None,
                trust,
            }))
    }
}

impl VectorMemory {
    pub fn recency_half_life(&self) -> Duration {
        self.settings.recency_half_life
    }
}

/// `GET /v1/memory/search`, `GET /v1/memory/stats`, `GET /v1/memory/export` (JSON lines).
pub fn routes() -> axum::Router<crate::http::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/memory/search", get(http::search))
        .route("/v1/memory/stats", get(http::stats))
        .route("/v1/memory/export", get(http::export))
}

mod http {
    use axum::Json;
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use memory::vector::VectorError;
    use serde_json::{Value, json};

    use super::{SearchParams, VectorMemory};
    use crate::http::{ApiError, AppState};

    fn memory(state: &AppState) -> Result<&VectorMemory, ApiError> {
        state.memory.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "vector memory is off ([memory] enabled = false)",
            )
        })
    }

    fn failed(error: VectorError) -> ApiError {
        let status = match error {
            VectorError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            VectorError::EmbedderMismatch { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }

    pub async fn search(
        State(state): State<AppState>,
        Query(params): Query<SearchParams>,
    ) -> Result<Json<Vec<Value>>, ApiError> {
        let memory = memory(&state)?;
        let query = params
            .query(memory.recency_half_life(), chrono::Utc::now())
            .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
        let hits = memory.search(query).await.map_err(failed)?;
        Ok(Json(hits.iter().map(super::hit_json).collect()))
    }

    pub async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
        let memory = memory(&state)?;
        let stats = memory.stats().await.map_err(failed)?;
        let mut value = serde_json::to_value(&stats)
            .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        value["embedder_note"] = json!(memory.embedder_note);
        Ok(Json(value))
    }

    pub async fn export(State(state): State<AppState>) -> Result<Response, ApiError> {
        let store = memory(&state)?.store();
        let text = tokio::task::spawn_blocking(move || super::export_lines(store.as_ref()))
            .await
            .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?
            .map_err(failed)?;
        Ok(([("content-type", "application/x-ndjson")], text).into_response())
    }
}

/// Every record as JSON lines (no vectors), oldest first.
pub fn export_lines(store: &dyn MemoryStore) -> Result<String, VectorError> {
    let mut records = store.export()?.collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| a.fetched_at.cmp(&b.fetched_at).then(a.id.cmp(&b.id)));
    let mut out = String::new();
    for record in records {
        let line = serde_json::to_string(&record).map_err(|error| VectorError::Corrupt {
            what: format!("record {}", record.id),
            message: error.to_string(),
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

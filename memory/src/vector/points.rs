//! What both Qdrant-shaped backends (the engine in process and a Qdrant server) keep per point,
//! and the hybrid ranking they share, so the two answer a search the same way.
//!
//! A record is one point: id derived from its content id, a dense vector [`DENSE`] (cosine) and
//! a sparse vector [`SPARSE`] (Qdrant's BM25 document embedding, IDF applied by the engine), and
//! a payload holding the record's fields plus millisecond timestamps for range filters.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::uuid::Uuid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::embed::check_vectors;
use super::{
    Embedder, ExpireReport, Kind, MemoryRecord, Retention, SearchHit, SearchQuery, VectorError,
    rank,
};

pub(crate) const DENSE: &str = "dense";
pub(crate) const SPARSE: &str = "bm25";
/// Records embedded and written per engine update.
pub(crate) const BATCH: usize = 256;
/// Records read per scroll page.
pub(crate) const PAGE: usize = 512;
/// Payload fields filtered by exact value; both backends index them.
pub(crate) const KEYWORD_FIELDS: [&str; 3] = ["domain", "kind", "trust"];
/// Payload fields filtered by range (milliseconds since the epoch); both backends index them.
pub(crate) const INTEGER_FIELDS: [&str; 2] = ["fetched_at_ms", "expires_at_ms"];
pub(crate) const META_FORMAT: u32 = 1;

/// Which generation of a store is live and whose vectors it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub generation: u64,
    pub embedder_id: String,
    pub dims: usize,
}

impl Meta {
    pub fn new(generation: u64, embedder: &dyn Embedder) -> Self {
        Self {
            format: META_FORMAT,
            generation,
            embedder_id: embedder.id().to_owned(),
            dims: embedder.dims(),
        }
    }

    /// The refusal to mix spaces, when `embedder` did not make the stored vectors.
    pub fn mismatch(&self, location: &str, embedder: &dyn Embedder) -> Option<VectorError> {
        (self.embedder_id != embedder.id() || self.dims != embedder.dims()).then(|| {
            VectorError::EmbedderMismatch {
                location: location.to_owned(),
                stored: format!("{} ({} dims)", self.embedder_id, self.dims),
                configured: format!("{} ({} dims)", embedder.id(), embedder.dims()),
            }
        })
    }
}

/// Qdrant's BM25 tokenizer with its defaults, the same for documents and queries everywhere.
pub(crate) fn bm25(location: &str) -> Result<EdgeBm25, VectorError> {
    EdgeBm25::new(EdgeBm25Config::default()).map_err(|error| VectorError::Engine {
        action: "building the BM25 tokenizer",
        location: location.to_owned(),
        message: error.to_string(),
    })
}

/// The point id of a record: the first 16 bytes of its SHA-256 content id as a UUID.
pub(crate) fn point_uuid(id: &str) -> Result<Uuid, VectorError> {
    let bytes = hex::decode(id)
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| VectorError::InvalidInput {
            field: "id",
            message: format!("{id:?} is not a record id (64 hex digits)"),
        })?;
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&bytes[..16]);
    Ok(Uuid::from_bytes(uuid))
}

/// Validates records and keeps one per id (the same document twice in one call is one record,
/// the last one wins).
pub(crate) fn unique_valid(records: Vec<MemoryRecord>) -> Result<Vec<MemoryRecord>, VectorError> {
    for (index, record) in records.iter().enumerate() {
        record.validate(index)?;
    }
    let mut unique: BTreeMap<String, MemoryRecord> = BTreeMap::new();
    for record in records {
        unique.insert(record.id.clone(), record);
    }
    Ok(unique.into_values().collect())
}

/// One checked dense vector per record text.
pub(crate) fn embed_records(
    embedder: &dyn Embedder,
    records: &[MemoryRecord],
) -> Result<Vec<Vec<f32>>, VectorError> {
    let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
    let vectors = embedder.embed(&texts)?;
    check_vectors(embedder, texts.len(), &vectors)?;
    Ok(vectors)
}

/// The checked dense vector of a search text.
pub(crate) fn embed_query(embedder: &dyn Embedder, text: &str) -> Result<Vec<f32>, VectorError> {
    let vectors = embedder.embed(&[text])?;
    check_vectors(embedder, 1, &vectors)?;
    Ok(vectors.into_iter().next().unwrap_or_default())
}

/// The payload of a record: its fields plus `fetched_at_ms` and `expires_at_ms`.
pub(crate) fn record_payload(record: &MemoryRecord) -> Result<Map<String, Value>, VectorError> {
    let value = serde_json::to_value(record).map_err(|error| VectorError::Corrupt {
        what: format!("record {}", record.id),
        message: error.to_string(),
    })?;
    let Value::Object(mut map) = value else {
        return Err(VectorError::Corrupt {
            what: format!("record {}", record.id),
            message: "did not serialize to a JSON object".to_owned(),
        });
    };
    map.insert(
        "fetched_at_ms".to_owned(),
        json!(record.fetched_at.timestamp_millis()),
    );
    if let Some(expires_at) = record.expires_at {
        map.insert(
            "expires_at_ms".to_owned(),
            json!(expires_at.timestamp_millis()),
        );
    }
    Ok(map)
}

pub(crate) fn record_from_payload(map: Map<String, Value>) -> Result<MemoryRecord, VectorError> {
    serde_json::from_value(Value::Object(map)).map_err(|error| VectorError::Corrupt {
        what: "a stored record".to_owned(),
        message: error.to_string(),
    })
}

/// What a search's filter asks of the payload, in payload terms; each backend translates it
/// into its engine's filter.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFilter {
    /// Lowercase; empty means any.
    pub domains: Vec<String>,
    /// Empty means any.
    pub kinds: Vec<&'static str>,
    pub trust: Option<&'static str>,
    pub fetched_since_ms: Option<i64>,
    pub fetched_until_ms: Option<i64>,
    /// Records whose own expiry is at or before this are hidden.
    pub expired_at_ms: i64,
}

impl RecordFilter {
    pub fn new(query: &SearchQuery, now: DateTime<Utc>) -> Self {
        let filter = &query.filter;
        Self {
            domains: filter
                .domains
                .iter()
                .map(|d| d.trim().to_lowercase())
                .collect(),
            kinds: filter.kinds.iter().map(|k| k.as_str()).collect(),
            trust: filter.trust.map(|t| t.as_str()),
            fetched_since_ms: filter.since.map(|t| t.timestamp_millis()),
            fetched_until_ms: filter.until.map(|t| t.timestamp_millis()),
            expired_at_ms: now.timestamp_millis(),
        }
    }
}

/// How many candidates each half of a hybrid search fetches.
pub(crate) fn candidate_count(query: &SearchQuery) -> usize {
    (query.limit * 4).clamp(40, 1000)
}

/// The candidates of one hybrid search: by record id, the record, its dense cosine and its raw
/// BM25 score.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    found: HashMap<String, (MemoryRecord, f32, f32)>,
}

impl Candidates {
    /// A dense-search hit with its cosine similarity.
    pub fn add_dense(&mut self, record: MemoryRecord, cosine: f32) {
        self.found.insert(record.id.clone(), (record, cosine, 0.0));
    }

    /// A keyword-search hit with its raw BM25 score; a record the dense search did not return
    /// gets its cosine from its stored dense vector (0 without one).
    pub fn add_keyword(
        &mut self,
        record: MemoryRecord,
        bm25: f32,
        stored_dense: Option<&[f32]>,
        query_vector: &[f32],
    ) {
        if let Some(entry) = self.found.get_mut(&record.id) {
            entry.2 = bm25;
        } else {
            let dense = stored_dense
                .map(|stored| cosine(query_vector, stored))
                .unwrap_or(0.0);
            self.found.insert(record.id.clone(), (record, dense, bm25));
        }
    }

    /// Keyword scores normalized to the best candidate's, combined, ranked, cut to the limit.
    pub fn ranked(self, query: &SearchQuery, now: DateTime<Utc>) -> Vec<SearchHit> {
        let best_keyword = self
            .found
            .values()
            .map(|entry| entry.2)
            .fold(0.0f32, f32::max);
        let mut hits: Vec<SearchHit> = self
            .found
            .into_values()
            .map(|(record, dense, keyword_raw)| {
                let keyword = if best_keyword > 0.0 {
                    (keyword_raw / best_keyword).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                SearchHit {
                    score: query.combine(dense, keyword, record.fetched_at, now),
                    dense_score: dense,
                    keyword_score: keyword,
                    record,
                }
            })
            .collect();
        rank(&mut hits);
        hits.truncate(query.limit);
        hits
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm_a = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norm_b = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        dot / (norm_a * norm_b)
    }
}

/// Records per domain and per kind, for stats.
pub(crate) fn tally(records: &[MemoryRecord]) -> (BTreeMap<String, usize>, BTreeMap<Kind, usize>) {
    let mut by_domain = BTreeMap::new();
    let mut by_kind = BTreeMap::new();
    for record in records {
        *by_domain.entry(record.domain.clone()).or_insert(0) += 1;
        *by_kind.entry(record.kind).or_insert(0) += 1;
    }
    (by_domain, by_kind)
}

/// The records due at `now` and the report of removing them.
pub(crate) fn due<'a>(
    records: &'a [MemoryRecord],
    now: DateTime<Utc>,
    retention: &Retention,
) -> (ExpireReport, Vec<&'a MemoryRecord>) {
    let mut report = ExpireReport::default();
    let due: Vec<&MemoryRecord> = records
        .iter()
        .filter(|record| retention.is_due(record, now))
        .collect();
    for record in &due {
        *report.removed_by_kind.entry(record.kind).or_insert(0) += 1;
    }
    report.removed = due.len();
    (report, due)
}

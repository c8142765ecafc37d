//! What vector memory stores and how it is asked: records, queries, hits, retention, stats.
//! Pure data and pure functions, shared by every backend.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::VectorError;

/// What sort of document a record is; retention is configured per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    News,
    Release,
    Report,
    Incident,
    Conversation,
    Note,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::News,
        Kind::Release,
        Kind::Report,
        Kind::Incident,
        Kind::Conversation,
        Kind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::News => "news",
            Kind::Release => "release",
            Kind::Report => "report",
            Kind::Incident => "incident",
            Kind::Conversation => "conversation",
            Kind::Note => "note",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = VectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| VectorError::InvalidInput {
                field: "kind",
                message: format!(
                    "{s:?} is not a kind; expected one of news, release, report, incident, \
                     conversation, note"
                ),
            })
    }
}

/// Where a text came from: written by the company's own people and systems, or fetched from
/// outside (which stays untrusted data when it reaches a model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Internal,
    External,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Internal => "internal",
            Trust::External => "external",
        }
    }
}

/// One remembered document with its provenance. The vector is the store's business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// Hex SHA-256 of the normalized text, domain and kind ([`content_id`]), so the same
    /// document is stored once however often it is fetched.
    pub id: String,
    pub text: String,
    /// The agent domain it belongs to (`validators`, `finance`, `market`, `operations`, ...).
    pub domain: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub fetched_at: DateTime<Utc>,
    pub trust: Trust,
    /// Removed by [`super::MemoryStore::expire`] once this time has passed, whatever the
    /// retention of its kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl MemoryRecord {
    /// A record with its content id; external trust and no source or expiry until set.
    pub fn new(
        text: impl Into<String>,
        domain: impl Into<String>,
        kind: Kind,
        fetched_at: DateTime<Utc>,
    ) -> Self {
        let text = text.into();
        let domain = domain.into().trim().to_lowercase();
        Self {
            id: content_id(&text, &domain, kind),
            text,
            domain,
            kind,
            source_url: None,
            fetched_at,
            trust: Trust::External,
            expires_at: None,
        }
    }

    pub fn with_source_url(mut self, url: impl Into<String>) -> Self {
        self.source_url = Some(url.into());
        self
    }

    pub fn with_trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    pub fn with_expiry(mut self, expires_at: DateTime<Utc>) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Checks what a store must not accept: empty text or domain, and an id that is not the
    /// content id (which would defeat dedup).
    pub fn validate(&self, index: usize) -> Result<(), VectorError> {
        let invalid = |field: &'static str, message: String| VectorError::InvalidInput {
            field,
            message: format!("record #{index}: {message}"),
        };
        if self.text.trim().is_empty() {
            return Err(invalid("text", "the text is empty".to_owned()));
        }
        if !self.text.chars().any(char::is_alphanumeric) {
            return Err(invalid(
                "text",
                "the text has no letters or digits".to_owned(),
            ));
        }
        if self.domain.trim().is_empty() {
            return Err(invalid("domain", "the domain is empty".to_owned()));
        }
        let expected = content_id(&self.text, &self.domain, self.kind);
        if self.id != expected {
            return Err(invalid(
                "id",
                format!(
                    "id {} is not the content id {expected}; build records with MemoryRecord::new",
                    self.id
                ),
            ));
        }
        Ok(())
    }
}

/// Hex SHA-256 over the text with its whitespace collapsed, the lowercase domain and the kind.
pub fn content_id(text: &str, domain: &str, kind: Kind) -> String {
    let normalized_text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut hasher = Sha256::new();
    hasher.update(b"memory-record-v1\0");
    hasher.update(domain.trim().to_lowercase().as_bytes());
    hasher.update(b"\0");
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(normalized_text.as_bytes());
    hex::encode(hasher.finalize())
}

/// Narrows a search; an empty list or `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchFilter {
    pub domains: Vec<String>,
    pub kinds: Vec<Kind>,
    /// Fetched at or after.
    pub since: Option<DateTime<Utc>>,
    /// Fetched at or before.
    pub until: Option<DateTime<Utc>>,
    pub trust: Option<Trust>,
}

/// How the parts of a hybrid score are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HybridWeights {
    /// Weight of the dense cosine similarity.
    pub dense: f32,
    /// Weight of the keyword (BM25) score, normalized to the best candidate's.
    pub keyword: f32,
    /// Share of the score that decays with age when a half-life is set: the score is multiplied
    /// by `(1 - recency) + recency * 0.5^(age / half_life)`.
    pub recency: f32,
}

impl Default for HybridWeights {
    fn default() -> Self {
        Self {
            dense: 0.6,
            keyword: 0.4,
            recency: 0.3,
        }
    }
}

/// The largest `limit` a search accepts.
pub const MAX_SEARCH_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: String,
    pub limit: usize,
    pub filter: SearchFilter,
    /// Age at which the recency part of the score halves; `None` turns the boost off.
    pub recency_half_life: Option<Duration>,
    pub weights: HybridWeights,
    /// The time ages are measured from, and before which expired records are hidden; `None` is
    /// now.
    pub now: Option<DateTime<Utc>>,
}

impl SearchQuery {
    /// Ten best matches for `text`, no filters, a 7-day recency half-life.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            limit: 10,
            filter: SearchFilter::default(),
            recency_half_life: Some(Duration::from_secs(7 * 24 * 3600)),
            weights: HybridWeights::default(),
            now: None,
        }
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn filter(mut self, filter: SearchFilter) -> Self {
        self.filter = filter;
        self
    }

    pub fn recency_half_life(mut self, half_life: Option<Duration>) -> Self {
        self.recency_half_life = half_life;
        self
    }

    pub fn weights(mut self, weights: HybridWeights) -> Self {
        self.weights = weights;
        self
    }

    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    /// Rejects what no backend can answer sensibly.
    pub fn validate(&self) -> Result<(), VectorError> {
        let invalid =
            |field: &'static str, message: String| VectorError::InvalidInput { field, message };
        if !self.text.chars().any(char::is_alphanumeric) {
            return Err(invalid(
                "text",
                "the search text is empty or has no letters or digits".to_owned(),
            ));
        }
        if self.limit == 0 || self.limit > MAX_SEARCH_LIMIT {
            return Err(invalid(
                "limit",
                format!(
                    "limit {} is out of range; expected 1..={MAX_SEARCH_LIMIT}",
                    self.limit
                ),
            ));
        }
        let weights = [
            ("weights.dense", self.weights.dense),
            ("weights.keyword", self.weights.keyword),
            ("weights.recency", self.weights.recency),
        ];
        for (field, weight) in weights {
            if !weight.is_finite() || weight < 0.0 {
                return Err(invalid(
                    field,
                    format!("{weight} is not a finite, non-negative weight"),
                ));
            }
        }
        if self.weights.recency > 1.0 {
            return Err(invalid(
                "weights.recency",
                format!(
                    "{} is above 1 (it is a share of the score)",
                    self.weights.recency
                ),
            ));
        }
        if self.weights.dense + self.weights.keyword <= 0.0 {
            return Err(invalid(
                "weights",
                "the dense and keyword weights are both zero".to_owned(),
            ));
        }
        if self.recency_half_life.is_some_and(|h| h.is_zero()) {
            return Err(invalid(
                "recency_half_life",
                "a zero half-life; use None to turn the boost off".to_owned(),
            ));
        }
        if let (Some(since), Some(until)) = (self.filter.since, self.filter.until)
            && since > until
        {
            return Err(invalid(
                "filter.since",
                format!("since {since} is after until {until}"),
            ));
        }
        Ok(())
    }

    /// The final score of a candidate: weighted dense and keyword parts, then the recency factor.
    /// `keyword` is already normalized to 0..=1.
    pub fn combine(
        &self,
        dense: f32,
        keyword: f32,
        fetched_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> f32 {
        let base = self.weights.dense * dense.max(0.0) + self.weights.keyword * keyword;
        match self.recency_half_life {
            Some(half_life) => {
                let age_secs = (now - fetched_at).num_milliseconds().max(0) as f64 / 1000.0;
                let decay = 0.5f64.powf(age_secs / half_life.as_secs_f64()) as f32;
                base * ((1.0 - self.weights.recency) + self.weights.recency * decay)
            }
            None => base,
        }
    }
}

/// One answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub record: MemoryRecord,
    /// What the ranking used: [`SearchQuery::combine`] of the two parts below.
    pub score: f32,
    /// Cosine similarity of the query and record vectors.
    pub dense_score: f32,
    /// BM25 score normalized to the best candidate of this search (0..=1).
    pub keyword_score: f32,
}

/// Orders hits best first; equal scores put the newer record first, then the smaller id, so
/// results are stable.
pub fn rank(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.record.fetched_at.cmp(&a.record.fetched_at))
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
}

/// How long each kind is kept after it was fetched; kinds not listed are kept until their own
/// expiry, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub per_kind: BTreeMap<Kind, Duration>,
}

impl Retention {
    pub fn keep(mut self, kind: Kind, duration: Duration) -> Self {
        self.per_kind.insert(kind, duration);
        self
    }

    /// Whether `record` should be gone at `now`: its own expiry has passed, or its kind's
    /// retention has.
    pub fn is_due(&self, record: &MemoryRecord, now: DateTime<Utc>) -> bool {
        if record.expires_at.is_some_and(|at| at <= now) {
            return true;
        }
        match self.per_kind.get(&record.kind) {
            Some(keep) => match chrono::Duration::from_std(*keep) {
                Ok(keep) => record
                    .fetched_at
                    .checked_add_signed(keep)
                    .is_some_and(|until| until <= now),
                // longer than chrono can count: kept forever
                Err(_) => false,
            },
            None => false,
        }
    }
}

/// What [`super::MemoryStore::upsert`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpsertReport {
    /// Records that were not there before.
    pub inserted: usize,
    /// Records whose id was already stored (same document again): replaced, not duplicated.
    pub replaced: usize,
}

/// What [`super::MemoryStore::expire`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpireReport {
    pub removed: usize,
    pub removed_by_kind: BTreeMap<Kind, usize>,
}

/// What [`super::MemoryStore::reindex`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReindexReport {
    pub records: usize,
    /// The embedder that had made the vectors before (`None` for an empty store).
    pub from_embedder: Option<String>,
    pub to_embedder: String,
}

/// A store's contents at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    pub backend: &'static str,
    pub records: usize,
    pub by_domain: BTreeMap<String, usize>,
    pub by_kind: BTreeMap<Kind, usize>,
    /// The embedder whose vectors are stored.
    pub embedder_id: String,
    pub dims: usize,
    /// Set when the configured embedder differs from the stored one: search and upsert refuse
    /// until a reindex.
    pub configured_embedder_id: String,
    pub needs_reindex: bool,
    /// Bytes on disk (0 for a remote backend that does not say).
    pub disk_bytes: u64,
}

//! The record-level behaviour of a Qdrant-shaped store, written once over the point-level
//! operations of one generation ([`Generation`]): a shard in process for the embedded store, a
//! collection on a server for the Qdrant store. Callers hold their own locks and check the
//! embedder first; these functions only read and write the generation they are given.

use chrono::{DateTime, Utc};
use qdrant_edge::SparseVector;
use qdrant_edge::bm25_embed::EdgeBm25;

use super::points::{self, BATCH, Candidates, RecordFilter};
use super::{
    Embedder, ExpireReport, MemoryRecord, Retention, SearchHit, SearchQuery, UpsertReport,
    VectorError,
};

/// A record with its vectors, ready to be written as one point.
pub(crate) struct PointData<'a> {
    pub record: &'a MemoryRecord,
    pub dense: Vec<f32>,
    pub sparse: SparseVector,
}

/// A keyword-search hit: the record, its raw BM25 score and its stored dense vector.
pub(crate) type KeywordHit = (MemoryRecord, f32, Option<Vec<f32>>);

/// Point-level operations on one generation of a store.
pub(crate) trait Generation {
    /// The engine's point id.
    type Id: Clone;

    /// The point id of a record id (checked: 64 hex digits).
    fn point(record_id: &str) -> Result<Self::Id, VectorError>;

    /// How many of `ids` are stored.
    fn count_stored(&self, ids: Vec<Self::Id>) -> Result<usize, VectorError>;

    /// Stores points durably (replacing points of the same id) before it returns.
    fn write(&self, points: Vec<PointData<'_>>) -> Result<(), VectorError>;

    /// Removes points durably before it returns.
    fn remove(&self, ids: Vec<Self::Id>) -> Result<(), VectorError>;

    fn get(&self, id: Self::Id) -> Result<Option<MemoryRecord>, VectorError>;

    /// One page of records after `offset`, and the offset of the next page.
    fn page(
        &self,
        offset: Option<Self::Id>,
    ) -> Result<(Vec<MemoryRecord>, Option<Self::Id>), VectorError>;

    /// The records nearest to a dense vector, with their cosine similarity.
    fn nearest_dense(
        &self,
        vector: Vec<f32>,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryRecord, f32)>, VectorError>;

    /// The records best matching a BM25 query vector, with their stored dense vectors.
    fn nearest_keyword(
        &self,
        query: SparseVector,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<KeywordHit>, VectorError>;
}

/// Embeds `records` with `embedder` and writes them, a batch at a time.
pub(crate) fn write_records<G: Generation>(
    generation: &G,
    embedder: &dyn Embedder,
    bm25: &EdgeBm25,
    records: &[MemoryRecord],
) -> Result<(), VectorError> {
    for batch in records.chunks(BATCH) {
        write_batch(generation, embedder, bm25, batch)?;
    }
    Ok(())
}

fn write_batch<G: Generation>(
    generation: &G,
    embedder: &dyn Embedder,
    bm25: &EdgeBm25,
    batch: &[MemoryRecord],
) -> Result<(), VectorError> {
    let vectors = points::embed_records(embedder, batch)?;
    let points = batch
        .iter()
        .zip(vectors)
        .map(|(record, dense)| PointData {
            record,
            dense,
            sparse: bm25.embed_document(&record.text),
        })
        .collect();
    generation.write(points)
}

/// Validated, deduplicated records written, counting those that replace a stored one.
pub(crate) fn upsert<G: Generation>(
    generation: &G,
    embedder: &dyn Embedder,
    bm25: &EdgeBm25,
    records: &[MemoryRecord],
) -> Result<UpsertReport, VectorError> {
    let mut report = UpsertReport::default();
    for batch in records.chunks(BATCH) {
        let ids = batch
            .iter()
            .map(|r| G::point(&r.id))
            .collect::<Result<Vec<_>, _>>()?;
        let existing = generation.count_stored(ids)?;
        write_batch(generation, embedder, bm25, batch)?;
        report.replaced += existing;
        report.inserted += batch.len() - existing;
    }
    Ok(report)
}

/// Hybrid search over a validated query: dense and keyword candidates under the same filter,
/// ranked together.
pub(crate) fn search<G: Generation>(
    generation: &G,
    embedder: &dyn Embedder,
    bm25: &EdgeBm25,
    query: &SearchQuery,
) -> Result<Vec<SearchHit>, VectorError> {
    let now = query.now.unwrap_or_else(Utc::now);
    let query_vector = points::embed_query(embedder, &query.text)?;
    let filter = RecordFilter::new(query, now);
    let candidates = points::candidate_count(query);
    let mut found = Candidates::default();
    for (record, cosine) in generation.nearest_dense(query_vector.clone(), &filter, candidates)? {
        found.add_dense(record, cosine);
    }
    let keyword_query = bm25.embed_query(&query.text);
    if !keyword_query.indices.is_empty() && query.weights.keyword > 0.0 {
        for (record, score, stored) in
            generation.nearest_keyword(keyword_query, &filter, candidates)?
        {
            found.add_keyword(record, score, stored.as_deref(), &query_vector);
        }
    }
    Ok(found.ranked(query, now))
}

pub(crate) fn get<G: Generation>(
    generation: &G,
    id: &str,
) -> Result<Option<MemoryRecord>, VectorError> {
    generation.get(G::point(id)?)
}

/// Whether the record was there.
pub(crate) fn delete<G: Generation>(generation: &G, id: &str) -> Result<bool, VectorError> {
    let point = G::point(id)?;
    let existed = generation.count_stored(vec![point.clone()])? > 0;
    if existed {
        generation.remove(vec![point])?;
    }
    Ok(existed)
}

pub(crate) fn all_records<G: Generation>(generation: &G) -> Result<Vec<MemoryRecord>, VectorError> {
    let mut records = Vec::new();
    let mut offset = None;
    loop {
        let (page, next) = generation.page(offset)?;
        records.extend(page);
        match next {
            Some(next) => offset = Some(next),
            None => return Ok(records),
        }
    }
}

/// Removes what is due at `now`.
pub(crate) fn expire<G: Generation>(
    generation: &G,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<ExpireReport, VectorError> {
    let records = all_records(generation)?;
    let (report, due) = points::due(&records, now, retention);
    let due = due
        .into_iter()
        .map(|record| G::point(&record.id))
        .collect::<Result<Vec<_>, _>>()?;
    for batch in due.chunks(BATCH) {
        generation.remove(batch.to_vec())?;
    }
    Ok(report)
}

/// Pages through a store, asking `next_page` for each page after the last one's offset; the
/// caller reads each page under its lock, so a reindex between pages is a switch to the new
/// generation (with the same ids).
pub(crate) struct Pages<Id, F> {
    next_page: F,
    buffer: std::vec::IntoIter<MemoryRecord>,
    offset: Option<Id>,
    done: bool,
}

impl<Id, F> Pages<Id, F>
where
    F: FnMut(Option<Id>) -> Result<(Vec<MemoryRecord>, Option<Id>), VectorError>,
{
    pub fn new(next_page: F) -> Self {
        Self {
            next_page,
            buffer: Vec::new().into_iter(),
            offset: None,
            done: false,
        }
    }
}

impl<Id, F> Iterator for Pages<Id, F>
where
    F: FnMut(Option<Id>) -> Result<(Vec<MemoryRecord>, Option<Id>), VectorError>,
{
    type Item = Result<MemoryRecord, VectorError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.buffer.next() {
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            match (self.next_page)(self.offset.take()) {
                Ok((records, next)) => {
                    self.buffer = records.into_iter();
                    self.done = next.is_none();
                    self.offset = next;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

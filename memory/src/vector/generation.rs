//! The one implementation of [`MemoryStore`] for Qdrant-shaped backends: [`Store`] over a
//! [`Backend`] (where generations live and how one replaces another) and the point-level
//! operations of one generation ([`Generation`]): a shard in process for the embedded store, a
//! collection on a server for the Qdrant store.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use qdrant_edge::SparseVector;
use qdrant_edge::bm25_embed::EdgeBm25;

use super::points::{self, BATCH, Candidates, Meta, RecordFilter};
use super::{
    Embedder, ExpireReport, MemoryRecord, MemoryStats, MemoryStore, ReindexReport, Retention,
    SearchHit, SearchQuery, UpsertReport, VectorError,
};

/// Where a store's generations live and how one replaces another.
pub trait Backend: Send + Sync {
    /// What names a generation: the shard itself, or the collection's name.
    type Handle: Send + Sync;
    /// The engine's point id.
    type Id: Clone;
    type Generation<'a>: Generation<Id = Self::Id>
    where
        Self: 'a;

    /// `embedded` or `qdrant`.
    const NAME: &'static str;

    /// Where the store is, for errors (a path, or the server and collection).
    fn location(&self) -> &str;

    /// The point operations of a generation.
    fn generation<'a>(&'a self, handle: &'a Self::Handle, meta: &Meta) -> Self::Generation<'a>;

    /// A new, empty generation for `meta` (a leftover of the same generation is removed first).
    fn create(&self, meta: &Meta) -> Result<Self::Handle, VectorError>;

    /// Records `meta` with the filled generation and makes it the live one, durably.
    fn commit(&self, handle: &Self::Handle, meta: &Meta) -> Result<(), VectorError>;

    /// Removes a replaced generation; a failure only warns (the live one is untouched).
    fn retire(&self, handle: Self::Handle, meta: &Meta);

    /// Bytes on disk (0 when the backend does not say).
    fn disk_bytes(&self) -> u64;
}

/// The live generation of a store and what its vectors are. Replaced whole by a reindex.
pub struct Live<H> {
    pub handle: H,
    pub meta: Meta,
    /// The configured embedder; differs from `meta.embedder_id` until a reindex.
    pub embedder: Arc<dyn Embedder>,
}

/// Vector memory over a backend's generations.
pub struct Store<B: Backend> {
    pub(super) backend: B,
    bm25: EdgeBm25,
    pub(super) live: RwLock<Live<B::Handle>>,
    /// Serializes this store's writes: an engine flush must not run beside another update, and
    /// a reindex must see every record.
    pub(super) writes: Mutex<()>,
}

impl<B: Backend> std::fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &B::NAME)
            .field("location", &self.backend.location())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Store<B> {
    /// The store over an opened live generation. A store whose vectors another embedder made
    /// refuses search and upsert until [`MemoryStore::reindex`]; an empty one simply switches to
    /// the configured embedder.
    pub(super) fn new(backend: B, live: Live<B::Handle>) -> Result<Self, VectorError> {
        let bm25 = points::bm25(backend.location())?;
        let store = Self {
            backend,
            bm25,
            live: RwLock::new(live),
            writes: Mutex::new(()),
        };
        let empty_with_other_embedder = {
            let live = store.live.read();
            store.mismatch(&live).is_some() && store.generation(&live).count()? == 0
        };
        if empty_with_other_embedder {
            let embedder = store.live.read().embedder.clone();
            store.reindex(embedder)?;
        }
        Ok(store)
    }

    fn mismatch(&self, live: &Live<B::Handle>) -> Option<VectorError> {
        live.meta
            .mismatch(self.backend.location(), live.embedder.as_ref())
    }

    fn generation<'a>(&'a self, live: &'a Live<B::Handle>) -> B::Generation<'a> {
        self.backend.generation(&live.handle, &live.meta)
    }
}

impl<B: Backend> MemoryStore for Store<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn needs_reindex(&self) -> bool {
        self.mismatch(&self.live.read()).is_some()
    }

    fn upsert(&self, records: Vec<MemoryRecord>) -> Result<UpsertReport, VectorError> {
        let records = points::unique_valid(records)?;
        let _writes = self.writes.lock();
        let live = self.live.read();
        if let Some(mismatch) = self.mismatch(&live) {
            return Err(mismatch);
        }
        upsert(
            &self.generation(&live),
            live.embedder.as_ref(),
            &self.bm25,
            &records,
        )
    }

    fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, VectorError> {
        query.validate()?;
        let live = self.live.read();
        if let Some(mismatch) = self.mismatch(&live) {
            return Err(mismatch);
        }
        search(
            &self.generation(&live),
            live.embedder.as_ref(),
            &self.bm25,
            query,
        )
    }

    fn get(&self, id: &str) -> Result<Option<MemoryRecord>, VectorError> {
        let live = self.live.read();
        let generation = self.generation(&live);
        generation.get(generation.point(id)?)
    }

    fn delete(&self, id: &str) -> Result<bool, VectorError> {
        let _writes = self.writes.lock();
        let live = self.live.read();
        let generation = self.generation(&live);
        let point = generation.point(id)?;
        let existed = generation.count_stored(vec![point.clone()])? > 0;
        if existed {
            generation.remove(vec![point])?;
        }
        Ok(existed)
    }

    fn stats(&self) -> Result<MemoryStats, VectorError> {
        let live = self.live.read();
        let records = all_records(&self.generation(&live))?;
        let (by_domain, by_kind) = points::tally(&records);
        Ok(MemoryStats {
            backend: B::NAME,
            records: records.len(),
            by_domain,
            by_kind,
            embedder_id: live.meta.embedder_id.clone(),
            dims: live.meta.dims,
            configured_embedder_id: live.embedder.id().to_owned(),
            needs_reindex: self.mismatch(&live).is_some(),
            disk_bytes: self.backend.disk_bytes(),
        })
    }

    fn expire(
        &self,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<ExpireReport, VectorError> {
        let _writes = self.writes.lock();
        let live = self.live.read();
        let generation = self.generation(&live);
        let records = all_records(&generation)?;
        let (report, due) = points::due(&records, now, retention);
        let due = due
            .into_iter()
            .map(|record| generation.point(&record.id))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in due.chunks(BATCH) {
            generation.remove(batch.to_vec())?;
        }
        Ok(report)
    }

    fn export(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<MemoryRecord, VectorError>> + '_>, VectorError> {
        Ok(Box::new(Pages::new(move |offset| {
            let live = self.live.read();
            self.generation(&live).page(offset)
        })))
    }

    fn reindex(&self, embedder: Arc<dyn Embedder>) -> Result<ReindexReport, VectorError> {
        let _writes = self.writes.lock();
        let (records, from, generation) = {
            let live = self.live.read();
            let records = all_records(&self.generation(&live))?;
            let from = (!records.is_empty()).then(|| live.meta.embedder_id.clone());
            (records, from, live.meta.generation)
        };
        let meta = Meta::new(generation + 1, embedder.as_ref());
        // searches keep using the old generation until the new one is complete
        let handle = self.backend.create(&meta)?;
        write_records(
            &self.backend.generation(&handle, &meta),
            embedder.as_ref(),
            &self.bm25,
            &records,
        )?;
        self.backend.commit(&handle, &meta)?;
        let old = std::mem::replace(
            &mut *self.live.write(),
            Live {
                handle,
                meta,
                embedder: embedder.clone(),
            },
        );
        self.backend.retire(old.handle, &old.meta);
        Ok(ReindexReport {
            records: records.len(),
            from_embedder: from,
            to_embedder: embedder.id().to_owned(),
        })
    }
}

/// A record with its vectors, ready to be written as one point.
pub struct PointData<'a> {
    pub record: &'a MemoryRecord,
    pub dense: Vec<f32>,
    pub sparse: SparseVector,
}

/// A keyword-search hit: the record, its raw BM25 score and its stored dense vector.
pub type KeywordHit = (MemoryRecord, f32, Option<Vec<f32>>);

/// Point-level operations on one generation of a store.
pub trait Generation {
    /// The engine's point id.
    type Id: Clone;

    /// The point id of a record id (checked: 64 hex digits).
    fn point(&self, record_id: &str) -> Result<Self::Id, VectorError>;

    /// How many records the generation holds.
    fn count(&self) -> Result<usize, VectorError>;

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
fn write_records<G: Generation>(
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
fn upsert<G: Generation>(
    generation: &G,
    embedder: &dyn Embedder,
    bm25: &EdgeBm25,
    records: &[MemoryRecord],
) -> Result<UpsertReport, VectorError> {
    let mut report = UpsertReport::default();
    for batch in records.chunks(BATCH) {
        let ids = batch
            .iter()
            .map(|r| generation.point(&r.id))
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
fn search<G: Generation>(
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

fn all_records<G: Generation>(generation: &G) -> Result<Vec<MemoryRecord>, VectorError> {
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

/// Pages through a store, asking `next_page` for each page after the last one's offset; the
/// caller reads each page under its lock, so a reindex between pages is a switch to the new
/// generation (with the same ids).
struct Pages<Id, F> {
    next_page: F,
    buffer: std::vec::IntoIter<MemoryRecord>,
    offset: Option<Id>,
    done: bool,
}

impl<Id, F> Pages<Id, F>
where
    F: FnMut(Option<Id>) -> Result<(Vec<MemoryRecord>, Option<Id>), VectorError>,
{
    fn new(next_page: F) -> Self {
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

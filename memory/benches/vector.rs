//! Embedded vector memory: bulk upsert of N synthetic records (`VECTOR_BENCH_N`, default 10,000)
//! embedded by the 384-dim hashing embedder, HNSW build, hybrid search latency with and without
//! filters, recall@10 of the dense search against exact brute force, size on disk and reopen
//! time. Prints one JSON object.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use memory::vector::{
    EmbeddedStore, Embedder, HashingEmbedder, HybridWeights, Kind, MemoryRecord, MemoryStore,
    SearchFilter, SearchQuery,
};

const BATCH: usize = 1_000;
const QUERIES: usize = 200;
const DOMAINS: [&str; 4] = ["validators", "finance", "market", "operations"];

/// xorshift64*: a fixed, dependency-free sequence so every run stores the same corpus.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sentence(sequence: &mut Sequence, words: usize) -> String {
    (0..words)
        .map(|_| format!("w{}", sequence.below(5_000)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let index = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    (sorted_ms[index] * 1000.0).round() / 1000.0
}

fn latencies(store: &dyn MemoryStore, queries: &[SearchQuery]) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(queries.len());
    for query in queries {
        let started = Instant::now();
        store.search(query)?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}

fn top10_exact(query: &[f32], vectors: &[Vec<f32>], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .filter(|(index, _)| keep(*index))
        .map(|(index, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum(), index))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(10)
        .map(|(_, index)| index)
        .collect()
}

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::var("VECTOR_BENCH_N") {
        Ok(text) => text.parse()?,
        Err(_) => 10_000,
    };
    let embedder = Arc::new(HashingEmbedder::new());
    let t0 = Utc
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("t0"))?;
    let mut sequence = Sequence(0x9e37_79b9_7f4a_7c15);
    let records: Vec<MemoryRecord> = (0..n)
        .map(|number| {
            let kind = Kind::ALL[number % Kind::ALL.len()];
            MemoryRecord::new(
                format!("{} item {number}", sentence(&mut sequence, 12)),
                DOMAINS[number % DOMAINS.len()],
                kind,
                t0 + chrono::Duration::minutes(number as i64),
            )
        })
        .collect();

    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open(dir.path(), embedder.clone())?;
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        store.upsert(batch.to_vec())?;
    }
    let upsert_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    store.optimize()?;
    let optimize_seconds = started.elapsed().as_secs_f64();

    let query_texts: Vec<String> = (0..QUERIES).map(|_| sentence(&mut sequence, 6)).collect();
    let hybrid: Vec<SearchQuery> = query_texts
        .iter()
        .map(|text| SearchQuery::new(text.clone()).at(t0))
        .collect();
    let filter = SearchFilter {
        domains: vec!["finance".to_owned()],
        kinds: vec![Kind::News, Kind::Report, Kind::Incident],
        ..Default::default()
    };
    let hybrid_filtered: Vec<SearchQuery> = hybrid
        .iter()
        .map(|query| query.clone().filter(filter.clone()))
        .collect();
    let dense_only = HybridWeights {
        dense: 1.0,
        keyword: 0.0,
        recency: 0.0,
    };
    let dense: Vec<SearchQuery> = hybrid
        .iter()
        .map(|query| query.clone().weights(dense_only).recency_half_life(None))
        .collect();
    let dense_filtered: Vec<SearchQuery> = dense
        .iter()
        .map(|query| query.clone().filter(filter.clone()))
        .collect();

    let (hybrid_p50, hybrid_p99) = latencies(&store, &hybrid)?;
    let (hybrid_filtered_p50, hybrid_filtered_p99) = latencies(&store, &hybrid_filtered)?;
    let (dense_p50, dense_p99) = latencies(&store, &dense)?;

    // recall@10 of the dense search (HNSW) against brute force over the same vectors
    let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
    let vectors = embedder.embed(&texts)?;
    let id_index: std::collections::HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(index, r)| (r.id.as_str(), index))
        .collect();
    let recall = |queries: &[SearchQuery], filtered: bool| -> anyhow::Result<f64> {
        let mut found = 0usize;
        let mut wanted = 0usize;
        for query in queries {
            let query_vector = embedder.embed(&[query.text.as_str()])?.remove(0);
            let exact = top10_exact(&query_vector, &vectors, |index| {
                !filtered
                    || (records[index].domain == "finance"
                        && filter.kinds.contains(&records[index].kind))
            });
            let got: std::collections::HashSet<usize> = store
                .search(query)?
                .iter()
                .filter_map(|hit| id_index.get(hit.record.id.as_str()).copied())
                .collect();
            wanted += exact.len();
            found += exact.iter().filter(|index| got.contains(index)).count();
        }
        Ok((found as f64 / wanted.max(1) as f64 * 1000.0).round() / 1000.0)
    };
    let recall_at_10 = recall(&dense, false)?;
    let recall_at_10_filtered = recall(&dense_filtered, true)?;

    let stats = store.stats()?;
    drop(store);
    let started = Instant::now();
    let store = EmbeddedStore::open(dir.path(), embedder.clone())?;
    store.search(&hybrid[0])?;
    let reopen_ms = started.elapsed().as_secs_f64() * 1000.0;

    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "records": n,
            "dims": embedder.dims(),
            "upsert_per_sec": (n as f64 / upsert_seconds).round(),
            "optimize_s": round(optimize_seconds),
            "hybrid_search_ms_p50": hybrid_p50,
            "hybrid_search_ms_p99": hybrid_p99,
            "hybrid_filtered_search_ms_p50": hybrid_filtered_p50,
            "hybrid_filtered_search_ms_p99": hybrid_filtered_p99,
            "dense_search_ms_p50": dense_p50,
            "dense_search_ms_p99": dense_p99,
            "recall_at_10": recall_at_10,
            "recall_at_10_filtered": recall_at_10_filtered,
            "disk_mb": round(stats.disk_bytes as f64 / 1_048_576.0),
            "reopen_and_first_search_ms": round(reopen_ms),
        })
    );
    Ok(())
}

//! The behaviour every [`MemoryStore`] backend must show, as functions a backend's tests call.
//!
//! Each case takes a [`StoreFactory`] over one fresh, empty location; opening it again returns
//! a store over the same data (a restart). Cases panic with a message on failure, like tests.
//! Compiled for this crate's tests (the backends live in this crate).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::{
    EmbedError, Embedder, HashingEmbedder, HybridWeights, Kind, MAX_SEARCH_LIMIT, MemoryRecord,
    MemoryStore, Retention, SearchFilter, SearchQuery, Trust, VectorError,
};

/// Opens a store over one location; every call sees the same data.
pub trait StoreFactory {
    fn open(&self, embedder: Arc<dyn Embedder>) -> Result<Box<dyn MemoryStore>, VectorError>;
}

impl<F> StoreFactory for F
where
    F: Fn(Arc<dyn Embedder>) -> Result<Box<dyn MemoryStore>, VectorError>,
{
    fn open(&self, embedder: Arc<dyn Embedder>) -> Result<Box<dyn MemoryStore>, VectorError> {
        self(embedder)
    }
}

/// One case of the suite.
pub type Case = fn(&dyn StoreFactory);

/// Every case, by name, for a backend test that runs them all.
pub const CASES: &[(&str, Case)] = &[
    ("dedup", dedup),
    ("filters", filters),
    ("keyword_ranking", keyword_ranking),
    ("recency_boost", recency_boost),
    ("expiry_and_retention", expiry_and_retention),
    ("reopen", reopen),
    ("embedder_mismatch", embedder_mismatch),
    ("bad_input", bad_input),
    ("get_delete_export", get_delete_export),
];

/// The time the suite's records are measured against.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

fn hashing() -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::new())
}

fn open(factory: &dyn StoreFactory) -> Box<dyn MemoryStore> {
    factory.open(hashing()).expect("open the store")
}

fn all_ids(store: &dyn MemoryStore) -> BTreeSet<String> {
    store
        .export()
        .unwrap()
        .map(|record| record.unwrap().id)
        .collect()
}

fn hit_ids(store: &dyn MemoryStore, query: &SearchQuery) -> BTreeSet<String> {
    store
        .search(query)
        .unwrap()
        .into_iter()
        .map(|hit| hit.record.id)
        .collect()
}

/// The same document fetched again is one record; another domain is another record.
pub fn dedup(factory: &dyn StoreFactory) {
    let store = open(factory);
    let record = MemoryRecord::new(
        "TON validator election round 42 opened",
        "validators",
        Kind::News,
        t0(),
    );
    let first = store.upsert(vec![record.clone()]).unwrap();
    assert_eq!((first.inserted, first.replaced), (1, 0));

    let again = MemoryRecord::new(
        "  TON validator   election round 42\nopened ",
        "Validators",
        Kind::News,
        t0() + days(1),
    );
    assert_eq!(
        again.id, record.id,
        "whitespace and domain case do not make a new id"
    );
    let second = store.upsert(vec![again.clone(), again]).unwrap();
    assert_eq!((second.inserted, second.replaced), (0, 1));
    assert_eq!(store.stats().unwrap().records, 1);
    assert_eq!(
        store.get(&record.id).unwrap().unwrap().fetched_at,
        t0() + days(1),
        "the later fetch replaced the earlier one"
    );

    let other_domain = MemoryRecord::new(
        "TON validator election round 42 opened",
        "finance",
        Kind::News,
        t0(),
    );
    store.upsert(vec![other_domain]).unwrap();
    assert_eq!(store.stats().unwrap().records, 2);
}

fn filter_corpus() -> Vec<MemoryRecord> {
    vec![
        MemoryRecord::new(
            "status: validator v1 healthy",
            "validators",
            Kind::Report,
            t0() - days(1),
        )
        .with_trust(Trust::Internal),
        MemoryRecord::new(
            "status: validator v2 missed blocks",
            "validators",
            Kind::Incident,
            t0() - days(3),
        )
        .with_trust(Trust::Internal),
        MemoryRecord::new(
            "status: toncenter release 2.1 notes",
            "validators",
            Kind::Release,
            t0() - days(10),
        ),
        MemoryRecord::new(
            "status: treasury balance report",
            "finance",
            Kind::Report,
            t0() - days(2),
        )
        .with_trust(Trust::Internal),
        MemoryRecord::new(
            "status: stablecoin depeg news",
            "finance",
            Kind::News,
            t0() - days(20),
        ),
        MemoryRecord::new(
            "status: gpu prices news",
            "market",
            Kind::News,
            t0() - days(5),
        ),
        MemoryRecord::new(
            "status: operator asked about payouts",
            "operations",
            Kind::Conversation,
            t0(),
        )
        .with_trust(Trust::Internal),
        MemoryRecord::new(
            "status: remember to rotate keys",
            "operations",
            Kind::Note,
            t0() - days(30),
        )
        .with_trust(Trust::Internal)
        .with_source_url("https://wiki.example/keys"),
    ]
}

/// Each filter returns exactly the records it describes.
pub fn filters(factory: &dyn StoreFactory) {
    let store = open(factory);
    let corpus = filter_corpus();
    store.upsert(corpus.clone()).unwrap();
    let query = |filter: SearchFilter| {
        SearchQuery::new("status")
            .limit(100)
            .filter(filter)
            .at(t0())
    };
    let expected = |keep: &dyn Fn(&MemoryRecord) -> bool| -> BTreeSet<String> {
        corpus
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.id.clone())
            .collect()
    };

    assert_eq!(
        hit_ids(store.as_ref(), &query(SearchFilter::default())).len(),
        corpus.len()
    );

    type Keep = Box<dyn Fn(&MemoryRecord) -> bool>;
    let cases: Vec<(&str, SearchFilter, Keep)> = vec![
        (
            "one domain",
            SearchFilter {
                domains: vec!["finance".into()],
                ..Default::default()
            },
            Box::new(|r| r.domain == "finance"),
        ),
        (
            "two domains",
            SearchFilter {
                domains: vec!["market".into(), "Operations".into()],
                ..Default::default()
            },
            Box::new(|r| r.domain == "market" || r.domain == "operations"),
        ),
        (
            "kinds",
            SearchFilter {
                kinds: vec![Kind::News, Kind::Incident],
                ..Default::default()
            },
            Box::new(|r| matches!(r.kind, Kind::News | Kind::Incident)),
        ),
        (
            "trust",
            SearchFilter {
                trust: Some(Trust::External),
                ..Default::default()
            },
            Box::new(|r| r.trust == Trust::External),
        ),
        (
            "since",
            SearchFilter {
                since: Some(t0() - days(3)),
                ..Default::default()
            },
            Box::new(|r| r.fetched_at >= t0() - days(3)),
        ),
        (
            "until",
            SearchFilter {
                until: Some(t0() - days(10)),
                ..Default::default()
            },
            Box::new(|r| r.fetched_at <= t0() - days(10)),
        ),
        (
            "everything at once",
            SearchFilter {
                domains: vec!["validators".into(), "finance".into()],
                kinds: vec![Kind::Report, Kind::Incident],
                since: Some(t0() - days(2)),
                until: Some(t0()),
                trust: Some(Trust::Internal),
            },
            Box::new(|r| {
                ["validators", "finance"].contains(&r.domain.as_str())
                    && matches!(r.kind, Kind::Report | Kind::Incident)
                    && r.fetched_at >= t0() - days(2)
                    && r.trust == Trust::Internal
            }),
        ),
        (
            "nothing matches",
            SearchFilter {
                domains: vec!["nowhere".into()],
                ..Default::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (name, filter, keep) in cases {
        let want = expected(keep.as_ref());
        assert!(want.len() < corpus.len(), "{name}: the filter must narrow");
        assert_eq!(
            hit_ids(store.as_ref(), &query(filter)),
            want,
            "filter {name}"
        );
    }
}

/// A rare exact term finds its document even when many others share more common words.
pub fn keyword_ranking(factory: &dyn StoreFactory) {
    let store = open(factory);
    let mut corpus: Vec<MemoryRecord> = (0..12)
        .map(|n| {
            MemoryRecord::new(
                format!("validator node sync lag warning on host {n} after restart"),
                "validators",
                Kind::Incident,
                t0(),
            )
        })
        .collect();
    let target = MemoryRecord::new(
        "power outage at the Kyzylorda datacenter",
        "operations",
        Kind::Incident,
        t0(),
    );
    corpus.push(target.clone());
    store.upsert(corpus).unwrap();

    let text = "validator node sync lag kyzylorda";
    let dense_only = store
        .search(
            &SearchQuery::new(text)
                .limit(3)
                .at(t0())
                .weights(HybridWeights {
                    dense: 1.0,
                    keyword: 0.0,
                    recency: 0.0,
                }),
        )
        .unwrap();
    assert!(
        dense_only.iter().all(|hit| hit.record.id != target.id),
        "with dense similarity alone the common words win"
    );

    let hybrid = store
        .search(&SearchQuery::new(text).limit(3).at(t0()))
        .unwrap();
    let found = hybrid
        .iter()
        .find(|hit| hit.record.id == target.id)
        .expect("the hybrid ranking finds the exact-term match");
    assert!(
        hybrid
            .iter()
            .all(|hit| hit.keyword_score <= found.keyword_score),
        "the rare term scores highest on keywords: {hybrid:#?}"
    );
    assert!(found.keyword_score > 0.99);
}

/// With a half-life, newer matches rise above slightly better older ones; without, they do not.
pub fn recency_boost(factory: &dyn StoreFactory) {
    let store = open(factory);
    let old = MemoryRecord::new(
        "validator v3 restarted after kernel upgrade",
        "validators",
        Kind::Incident,
        t0() - days(60),
    );
    let new = MemoryRecord::new(
        "validator v3 restarted after kernel upgrade again",
        "validators",
        Kind::Incident,
        t0() - days(1),
    );
    let equal_old = MemoryRecord::new("gpu node rebooted", "market", Kind::Note, t0() - days(9));
    let equal_new = MemoryRecord::new(
        "gpu node rebooted",
        "operations",
        Kind::Note,
        t0() - days(2),
    );
    store
        .upsert(vec![
            old.clone(),
            new.clone(),
            equal_old.clone(),
            equal_new.clone(),
        ])
        .unwrap();

    let text = "validator v3 restarted after kernel upgrade";
    let ids = |query: SearchQuery| -> Vec<String> {
        store
            .search(&query)
            .unwrap()
            .into_iter()
            .map(|hit| hit.record.id)
            .collect()
    };
    let without = ids(SearchQuery::new(text)
        .limit(2)
        .recency_half_life(None)
        .at(t0()));
    assert_eq!(
        without,
        vec![old.id.clone(), new.id.clone()],
        "exact match first without boost"
    );
    let with = ids(SearchQuery::new(text)
        .limit(2)
        .recency_half_life(Some(Duration::from_secs(7 * 24 * 3600)))
        .at(t0()));
    assert_eq!(
        with,
        vec![new.id, old.id],
        "newer first with a one-week half-life"
    );

    let equal = ids(SearchQuery::new("gpu node rebooted").limit(2).at(t0()));
    assert_eq!(
        equal,
        vec![equal_new.id, equal_old.id],
        "equal matches: newest first"
    );
}

/// Expiry removes what is due (own expiry or kind retention) and nothing else; search hides
/// records past their own expiry even before the sweep.
pub fn expiry_and_retention(factory: &dyn StoreFactory) {
    let store = open(factory);
    let expired_note = MemoryRecord::new(
        "temporary maintenance window note",
        "operations",
        Kind::Note,
        t0() - days(2),
    )
    .with_expiry(t0() - days(1));
    let live_note = MemoryRecord::new(
        "maintenance window next week note",
        "operations",
        Kind::Note,
        t0() - days(2),
    )
    .with_expiry(t0() + days(1));
    let old_news = MemoryRecord::new(
        "maintenance of ton network news",
        "market",
        Kind::News,
        t0() - days(40),
    );
    let fresh_news = MemoryRecord::new(
        "maintenance release news today",
        "market",
        Kind::News,
        t0() - days(10),
    );
    let ancient_report = MemoryRecord::new(
        "maintenance yearly report",
        "finance",
        Kind::Report,
        t0() - days(400),
    );
    let boundary_news = MemoryRecord::new(
        "maintenance exactly thirty days",
        "market",
        Kind::News,
        t0() - days(30),
    );
    store
        .upsert(vec![
            expired_note.clone(),
            live_note.clone(),
            old_news.clone(),
            fresh_news.clone(),
            ancient_report.clone(),
            boundary_news.clone(),
        ])
        .unwrap();

    let visible = hit_ids(
        store.as_ref(),
        &SearchQuery::new("maintenance").limit(50).at(t0()),
    );
    assert!(
        !visible.contains(&expired_note.id),
        "search hides a record past its expiry"
    );
    assert_eq!(visible.len(), 5);

    let retention = Retention::default()
        .keep(Kind::News, Duration::from_secs(30 * 24 * 3600))
        .keep(Kind::Conversation, Duration::from_secs(24 * 3600));
    let report = store.expire(t0(), &retention).unwrap();
    assert_eq!(report.removed, 3, "{report:?}");
    assert_eq!(report.removed_by_kind.get(&Kind::Note), Some(&1));
    assert_eq!(report.removed_by_kind.get(&Kind::News), Some(&2));
    let left = all_ids(store.as_ref());
    let want: BTreeSet<String> = [live_note.id, fresh_news.id, ancient_report.id].into();
    assert_eq!(left, want);

    let again = store.expire(t0(), &retention).unwrap();
    assert_eq!(again.removed, 0, "nothing more is due");
}

/// A reopened store has every record, unchanged, and still searches.
pub fn reopen(factory: &dyn StoreFactory) {
    let corpus = filter_corpus();
    {
        let store = open(factory);
        store.upsert(corpus.clone()).unwrap();
        store.delete(&corpus[0].id).unwrap();
    }
    let store = open(factory);
    assert_eq!(store.stats().unwrap().records, corpus.len() - 1);
    assert!(
        store.get(&corpus[0].id).unwrap().is_none(),
        "the delete survived the restart"
    );
    for record in &corpus[1..] {
        assert_eq!(store.get(&record.id).unwrap().as_ref(), Some(record));
    }
    let hits = store
        .search(&SearchQuery::new("treasury balance").limit(1).at(t0()))
        .unwrap();
    assert_eq!(hits[0].record.id, corpus[3].id);
}

/// A store reopened with another embedder refuses to mix spaces until a reindex.
pub fn embedder_mismatch(factory: &dyn StoreFactory) {
    let corpus = filter_corpus();
    {
        let store = open(factory);
        store.upsert(corpus.clone()).unwrap();
    }
    let narrow: Arc<dyn Embedder> = Arc::new(HashingEmbedder::with_dims(64));
    let store = factory.open(narrow.clone()).unwrap();
    let query = SearchQuery::new("treasury balance").limit(1).at(t0());
    assert!(matches!(
        store.search(&query),
        Err(VectorError::EmbedderMismatch { .. })
    ));
    let extra = MemoryRecord::new("a new note", "operations", Kind::Note, t0());
    assert!(matches!(
        store.upsert(vec![extra.clone()]),
        Err(VectorError::EmbedderMismatch { .. })
    ));
    let stats = store.stats().unwrap();
    assert!(stats.needs_reindex);
    assert_eq!(stats.embedder_id, "hashing-384-v1");
    assert_eq!(stats.configured_embedder_id, "hashing-64-v1");
    assert_eq!(
        all_ids(store.as_ref()).len(),
        corpus.len(),
        "reading still works"
    );

    let report = store.reindex(narrow.clone()).unwrap();
    assert_eq!(report.records, corpus.len());
    assert_eq!(report.from_embedder.as_deref(), Some("hashing-384-v1"));
    assert_eq!(report.to_embedder, "hashing-64-v1");
    let stats = store.stats().unwrap();
    assert!(!stats.needs_reindex);
    assert_eq!(
        (stats.embedder_id.as_str(), stats.dims),
        ("hashing-64-v1", 64)
    );
    assert_eq!(store.search(&query).unwrap()[0].record.id, corpus[3].id);
    store.upsert(vec![extra]).unwrap();
    drop(store);

    let store = factory.open(narrow).unwrap();
    assert_eq!(store.stats().unwrap().records, corpus.len() + 1);
    assert_eq!(store.search(&query).unwrap()[0].record.id, corpus[3].id);
    drop(store);
    let store = open(factory);
    assert!(matches!(
        store.search(&query),
        Err(VectorError::EmbedderMismatch { .. })
    ));
}

/// An embedder that returns NaN, to prove a store checks what it is given.
struct NanEmbedder;

impl Embedder for NanEmbedder {
    fn id(&self) -> &str {
        "hashing-384-v1"
    }

    fn dims(&self) -> usize {
        384
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|_| vec![f32::NAN; 384]).collect())
    }
}

/// Bad input is an `InvalidInput` or `Embed` error naming what was wrong, never a panic, and
/// leaves the store unchanged.
pub fn bad_input(factory: &dyn StoreFactory) {
    let store = open(factory);
    let good = MemoryRecord::new("a fine record", "operations", Kind::Note, t0());
    store.upsert(vec![good.clone()]).unwrap();

    let invalid = |result: Result<_, VectorError>, field: &str| match result {
        Err(VectorError::InvalidInput {
            field: got,
            message,
        }) => {
            assert_eq!(got, field, "{message}");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("expected invalid {field}, got {other}"),
        Ok(_) => panic!("expected invalid {field}, got success"),
    };
    invalid(
        store
            .upsert(vec![MemoryRecord::new("", "ops", Kind::Note, t0())])
            .map(|_| ()),
        "text",
    );
    invalid(
        store
            .upsert(vec![MemoryRecord::new(" \n\t", "ops", Kind::Note, t0())])
            .map(|_| ()),
        "text",
    );
    invalid(
        store
            .upsert(vec![MemoryRecord::new("?!", "ops", Kind::Note, t0())])
            .map(|_| ()),
        "text",
    );
    invalid(
        store
            .upsert(vec![MemoryRecord::new("text", " ", Kind::Note, t0())])
            .map(|_| ()),
        "domain",
    );
    let mut tampered = MemoryRecord::new("some text", "ops", Kind::Note, t0());
    tampered.text = "other text".to_owned();
    invalid(store.upsert(vec![tampered]).map(|_| ()), "id");

    invalid(store.search(&SearchQuery::new("")).map(|_| ()), "text");
    invalid(
        store.search(&SearchQuery::new("fine").limit(0)).map(|_| ()),
        "limit",
    );
    invalid(
        store
            .search(&SearchQuery::new("fine").limit(MAX_SEARCH_LIMIT + 1))
            .map(|_| ()),
        "limit",
    );
    invalid(
        store
            .search(&SearchQuery::new("fine").limit(usize::MAX))
            .map(|_| ()),
        "limit",
    );
    invalid(
        store
            .search(&SearchQuery::new("fine").weights(HybridWeights {
                dense: f32::NAN,
                keyword: 0.4,
                recency: 0.3,
            }))
            .map(|_| ()),
        "weights.dense",
    );
    invalid(
        store
            .search(&SearchQuery::new("fine").filter(SearchFilter {
                since: Some(t0()),
                until: Some(t0() - days(1)),
                ..Default::default()
            }))
            .map(|_| ()),
        "filter.since",
    );
    invalid(store.get("not-a-hex-id").map(|_| ()), "id");
    invalid(store.delete("abc").map(|_| ()), "id");
    drop(store);

    let store = factory.open(Arc::new(NanEmbedder)).unwrap();
    let nan = MemoryRecord::new("this will embed to NaN", "ops", Kind::Note, t0());
    match store.upsert(vec![nan.clone()]) {
        Err(VectorError::Embed(EmbedError::BadOutput { message, .. })) => {
            assert!(message.contains("NaN"), "{message}")
        }
        other => panic!("expected a bad-output error, got {other:?}"),
    }
    assert!(store.get(&nan.id).unwrap().is_none());
    assert!(matches!(
        store.search(&SearchQuery::new("fine")),
        Err(VectorError::Embed(EmbedError::BadOutput { .. }))
    ));
    assert_eq!(all_ids(store.as_ref()), [good.id].into());
}

/// get, delete and export agree with what was stored.
pub fn get_delete_export(factory: &dyn StoreFactory) {
    let store = open(factory);
    let corpus = filter_corpus();
    store.upsert(corpus.clone()).unwrap();
    assert_eq!(store.get(&corpus[7].id).unwrap().as_ref(), Some(&corpus[7]));
    assert!(store.delete(&corpus[7].id).unwrap());
    assert!(
        !store.delete(&corpus[7].id).unwrap(),
        "a second delete finds nothing"
    );
    assert!(store.get(&corpus[7].id).unwrap().is_none());
    let exported: Vec<MemoryRecord> = store.export().unwrap().map(Result::unwrap).collect();
    assert_eq!(exported.len(), corpus.len() - 1);
    for record in &exported {
        assert!(
            corpus.contains(record),
            "exported record {} is what was stored",
            record.id
        );
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.by_domain.get("validators"), Some(&3));
    assert_eq!(stats.by_kind.get(&Kind::News), Some(&2));
    assert!(stats.disk_bytes > 0 || stats.backend != "embedded");
}

use std::sync::Arc;

use super::suite::{self, StoreFactory};
use super::{
    EmbeddedStore, Embedder, HashingEmbedder, Kind, MemoryRecord, MemoryStore, Retention,
    content_id,
};

/// A fresh directory; every open is an `EmbeddedStore` over it.
fn embedded_location() -> (tempfile::TempDir, impl StoreFactory) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let open = move |embedder: Arc<dyn Embedder>| {
        EmbeddedStore::open(&path, embedder).map(|store| Box::new(store) as Box<dyn MemoryStore>)
    };
    (dir, open)
}

macro_rules! embedded_suite {
    ($($case:ident),* $(,)?) => {
        mod embedded_suite {
            $(
                #[test]
                fn $case() {
                    let (_dir, open) = super::embedded_location();
                    super::suite::$case(&open);
                }
            )*

            #[test]
            fn every_case_of_the_suite_runs_here() {
                let here = [$(stringify!($case)),*];
                let cases: Vec<&str> = super::suite::CASES.iter().map(|(name, _)| *name).collect();
                assert_eq!(cases, here);
            }
        }
    };
}

embedded_suite!(
    dedup,
    filters,
    keyword_ranking,
    recency_boost,
    expiry_and_retention,
    reopen,
    embedder_mismatch,
    bad_input,
    get_delete_export,
);

#[test]
fn hashing_embedder_is_deterministic() {
    let texts = [
        "Validator v3 missed 12 blocks",
        "TON price up 4%",
        "validator",
    ];
    let first = HashingEmbedder::new().embed(&texts).unwrap();
    let second = HashingEmbedder::new().embed(&texts).unwrap();
    assert_eq!(first, second);
    // pinned so a change of hash, tokenizer or weights (which would need a new id) is noticed
    let checksum: f64 = first[0]
        .iter()
        .enumerate()
        .map(|(index, x)| (index as f64 + 1.0) * f64::from(*x))
        .sum();
    assert!(
        (checksum - PINNED_CHECKSUM).abs() < 1e-3,
        "checksum {checksum}"
    );
}

const PINNED_CHECKSUM: f64 = -112.545_458;

#[test]
fn hashing_embedder_gives_unit_vectors_of_its_width() {
    let embedder = HashingEmbedder::new();
    assert_eq!((embedder.id(), embedder.dims()), ("hashing-384-v1", 384));
    let vectors = embedder.embed(&["one two three", "x"]).unwrap();
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    let narrow = HashingEmbedder::with_dims(64);
    assert_eq!((narrow.id(), narrow.dims()), ("hashing-64-v1", 64));
}

#[test]
fn hashing_embedder_puts_shared_words_closer() {
    let embedder = HashingEmbedder::new();
    let vectors = embedder
        .embed(&[
            "validator missed blocks",
            "validators missed many blocks",
            "treasury bought bitcoin",
        ])
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&vectors[0], &vectors[1]) > 0.5);
    assert!(dot(&vectors[0], &vectors[2]) < 0.2);
}

#[test]
fn hashing_embedder_rejects_text_without_words() {
    let error = HashingEmbedder::new()
        .embed(&["fine", "  ?! "])
        .unwrap_err();
    assert!(error.to_string().contains("#1"), "{error}");
}

#[test]
fn content_id_ignores_whitespace_and_domain_case_only() {
    let id = content_id("a  b\nc", "Ops", Kind::Note);
    assert_eq!(id, content_id("a b c", "ops", Kind::Note));
    assert_ne!(id, content_id("a b c", "ops", Kind::News));
    assert_ne!(id, content_id("A b c", "ops", Kind::Note));
    assert_eq!(id.len(), 64);
}

#[test]
fn retention_counts_from_fetch_time_and_own_expiry_wins() {
    let t0 = suite::t0();
    let day = chrono::Duration::days(1);
    let retention = Retention::default().keep(Kind::News, std::time::Duration::from_secs(86_400));
    let news = MemoryRecord::new("n", "market", Kind::News, t0 - day);
    assert!(retention.is_due(&news, t0));
    assert!(!retention.is_due(&news, t0 - chrono::Duration::seconds(1)));
    let note = MemoryRecord::new("n", "ops", Kind::Note, t0 - day * 1000);
    assert!(!retention.is_due(&note, t0), "no retention for notes");
    assert!(retention.is_due(&note.clone().with_expiry(t0), t0));
    let forever = Retention::default().keep(Kind::Note, std::time::Duration::MAX);
    assert!(!forever.is_due(&note, t0));
}

#[test]
fn the_store_lives_under_vectors_and_records_its_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), Arc::new(HashingEmbedder::new())).unwrap();
    assert_eq!(store.path(), dir.path().join("vectors"));
    let meta = std::fs::read_to_string(dir.path().join("vectors/meta.json")).unwrap();
    assert!(
        meta.contains("\"embedder_id\": \"hashing-384-v1\""),
        "{meta}"
    );
    assert!(!store.needs_reindex());
    drop(store);
    // an empty store just switches embedders
    let store = EmbeddedStore::open(dir.path(), Arc::new(HashingEmbedder::with_dims(32))).unwrap();
    assert!(!store.needs_reindex());
    assert_eq!(store.stats().unwrap().dims, 32);
}

#[test]
fn reopening_removes_shards_an_interrupted_reindex_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let record = MemoryRecord::new("kept across the restart", "ops", Kind::Note, suite::t0());
    {
        let store = EmbeddedStore::open(dir.path(), Arc::new(HashingEmbedder::new())).unwrap();
        store.upsert(vec![record.clone()]).unwrap();
    }
    let stale = dir.path().join("vectors/gen-7");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("leftover"), b"x").unwrap();
    let store = EmbeddedStore::open(dir.path(), Arc::new(HashingEmbedder::new())).unwrap();
    assert!(!stale.exists());
    assert_eq!(store.get(&record.id).unwrap(), Some(record));
}

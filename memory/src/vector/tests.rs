use std::sync::Arc;

use super::qdrant_sim::QdrantSim;
use super::suite::{self, StoreFactory};
use super::{
    DEFAULT_COLLECTION, EmbeddedStore, Embedder, HashingEmbedder, Kind, MemoryRecord, MemoryStore,
    QdrantConfig, QdrantStore, Retention, SearchQuery, VectorError, content_id,
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

/// Runs every case of the suite, one test each, over the locations `$location` opens.
macro_rules! suite_on {
    ($module:ident, $location:path, $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    if let Some((_guard, open)) = $location(stringify!($case)) {
                        super::suite::$case(&open);
                    }
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

macro_rules! every_suite {
    ($($case:ident),* $(,)?) => {
        suite_on!(embedded_suite, super::embedded_case, $($case),*);
        suite_on!(qdrant_suite, super::qdrant_case, $($case),*);
        suite_on!(real_qdrant_suite, super::real_qdrant_case, $($case),*);
    };
}

fn embedded_case(_case: &str) -> Option<(tempfile::TempDir, impl StoreFactory)> {
    Some(embedded_location())
}

/// A fresh simulated Qdrant server; every open is a `QdrantStore` over its default collection.
fn qdrant_location(api_key: Option<&str>) -> (QdrantSim, impl StoreFactory) {
    let sim = QdrantSim::start(api_key);
    let mut config = QdrantConfig::new(sim.url());
    if let Some(key) = api_key {
        config = config.with_api_key(key);
    }
    let open = move |embedder: Arc<dyn Embedder>| {
        QdrantStore::connect(config.clone(), embedder)
            .map(|store| Box::new(store) as Box<dyn MemoryStore>)
    };
    (sim, open)
}

fn qdrant_case(_case: &str) -> Option<(QdrantSim, impl StoreFactory)> {
    Some(qdrant_location(Some("suite-key")))
}

/// Drops a test's collection on the real server when the test ends.
struct RealCollection {
    config: QdrantConfig,
}

impl Drop for RealCollection {
    fn drop(&mut self) {
        let dropped = QdrantStore::connect(self.config.clone(), Arc::new(HashingEmbedder::new()))
            .and_then(QdrantStore::drop_collection);
        if let Err(error) = dropped {
            eprintln!(
                "could not drop test collection {}: {error}",
                self.config.collection
            );
        }
    }
}

/// A unique collection on the server `QDRANT_URL` names (key from `QDRANT_API_KEY`), or `None`
/// with the skip printed when the variable is unset.
fn real_qdrant_case(case: &str) -> Option<(RealCollection, impl StoreFactory)> {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        println!(
            "skipped: set QDRANT_URL (and QDRANT_API_KEY if needed) to run the suite case {case} against a real Qdrant server"
        );
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut config = QdrantConfig::new(url)
        .with_collection(format!("cc_test_{case}_{}_{nanos}", std::process::id()));
    if let Ok(key) = std::env::var("QDRANT_API_KEY") {
        config = config.with_api_key(key);
    }
    let guard = RealCollection {
        config: config.clone(),
    };
    let open = move |embedder: Arc<dyn Embedder>| {
        QdrantStore::connect(config.clone(), embedder)
            .map(|store| Box::new(store) as Box<dyn MemoryStore>)
    };
    Some((guard, open))
}

every_suite!(
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

/// A port nothing listens on: bound, then released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn qdrant_server_down_is_an_engine_error_naming_the_url_without_the_key() {
    let url = closed_port_url();
    let config = QdrantConfig::new(&url)
        .with_api_key("very-secret-key-123")
        .with_timeout(std::time::Duration::from_secs(5));
    let error = QdrantStore::connect(config, Arc::new(HashingEmbedder::new())).unwrap_err();
    let VectorError::Engine {
        action, location, ..
    } = &error
    else {
        panic!("expected an engine error, got {error:?}");
    };
    assert_eq!(*action, "connecting to the Qdrant server");
    assert_eq!(location, &url);
    let shown = error.to_string();
    assert!(shown.contains(&url), "{shown}");
    assert!(shown.contains("6334"), "says what to check: {shown}");
    assert!(!shown.contains("very-secret-key-123"), "{shown}");
    assert!(!format!("{error:?}").contains("very-secret-key-123"));
}

#[test]
fn qdrant_api_key_is_sent_and_a_wrong_or_missing_one_is_refused() {
    let (sim, open) = qdrant_location(Some("right-key-456"));
    let record = MemoryRecord::new("kept behind a key", "ops", Kind::Note, suite::t0());
    let store = open.open(Arc::new(HashingEmbedder::new())).unwrap();
    store.upsert(vec![record.clone()]).unwrap();
    assert_eq!(store.get(&record.id).unwrap(), Some(record));

    for key in [Some("wrong-key-789"), None] {
        let mut config = QdrantConfig::new(sim.url());
        if let Some(key) = key {
            config = config.with_api_key(key);
        }
        let error = QdrantStore::connect(config, Arc::new(HashingEmbedder::new())).unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, VectorError::Engine { .. }), "{error:?}");
        assert!(shown.contains("refused the request's API key"), "{shown}");
        assert!(shown.contains(sim.url()), "{shown}");
        assert!(!shown.contains("wrong-key-789"), "{shown}");
        assert!(!shown.contains("right-key-456"), "{shown}");
    }
}

/// Connects with `config` and expects it refused as invalid `field`; returns the message shown.
fn refused_config(config: QdrantConfig, field: &str) -> String {
    match QdrantStore::connect(config, Arc::new(HashingEmbedder::new())) {
        Err(error @ VectorError::InvalidInput { field: got, .. }) if got == field => {
            error.to_string()
        }
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

#[test]
fn qdrant_config_checks_the_key_without_showing_it() {
    let config = QdrantConfig::new("http://127.0.0.1:6334").with_api_key("bad\nkey-abc");
    assert!(!format!("{config:?}").contains("key-abc"));
    let shown = refused_config(config, "api_key");
    assert!(!shown.contains("key-abc"), "{shown}");
    let shown = refused_config(QdrantConfig::new("localhost:6334"), "url");
    assert!(
        shown.contains("http://host:6334"),
        "says what is expected: {shown}"
    );
    let shown = refused_config(
        QdrantConfig::new("ftp://user:pass-xyz@host:6334/a@b"),
        "url",
    );
    assert!(shown.contains("ftp://[redacted]@host:6334/a@b"), "{shown}");
    refused_config(
        QdrantConfig::new("http://127.0.0.1:6334").with_collection("no spaces"),
        "collection",
    );
}

#[test]
fn qdrant_reopen_after_a_client_restart_sees_the_data_under_the_alias() {
    let (sim, open) = qdrant_location(None);
    let record = MemoryRecord::new("survives the client", "ops", Kind::Note, suite::t0());
    {
        let store = open.open(Arc::new(HashingEmbedder::new())).unwrap();
        store.upsert(vec![record.clone()]).unwrap();
    }
    let store = open.open(Arc::new(HashingEmbedder::new())).unwrap();
    assert_eq!(store.get(&record.id).unwrap(), Some(record.clone()));
    assert_eq!(
        store.stats().unwrap().records,
        1,
        "the meta point is not a record"
    );
    let generation = format!("{DEFAULT_COLLECTION}-gen-1");
    assert_eq!(sim.collections(), vec![generation.clone()]);
    assert_eq!(sim.aliases().get(DEFAULT_COLLECTION), Some(&generation));

    store
        .reindex(Arc::new(HashingEmbedder::with_dims(32)))
        .unwrap();
    let generation = format!("{DEFAULT_COLLECTION}-gen-2");
    assert_eq!(
        sim.collections(),
        vec![generation.clone()],
        "the old generation is dropped"
    );
    assert_eq!(sim.aliases().get(DEFAULT_COLLECTION), Some(&generation));
    drop(store);
    let store = open.open(Arc::new(HashingEmbedder::with_dims(32))).unwrap();
    assert_eq!(store.get(&record.id).unwrap(), Some(record));
}

#[test]
fn qdrant_store_works_from_spawn_blocking_and_drops_inside_a_runtime() {
    let (sim, _open) = qdrant_location(None);
    let config = QdrantConfig::new(sim.url()).with_collection("from_async");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hits = runtime.block_on(async move {
        let store = tokio::task::spawn_blocking(move || {
            let store = QdrantStore::connect(config, Arc::new(HashingEmbedder::new())).unwrap();
            let record = MemoryRecord::new(
                "written from a blocking task",
                "ops",
                Kind::Note,
                suite::t0(),
            );
            store.upsert(vec![record]).unwrap();
            store
        })
        .await
        .unwrap();
        let store = Arc::new(store);
        let searcher = store.clone();
        let hits = tokio::task::spawn_blocking(move || {
            searcher
                .search(&SearchQuery::new("blocking task").at(suite::t0()))
                .unwrap()
        })
        .await
        .unwrap();
        // dropped on a runtime thread: must not block or panic
        drop(store);
        hits
    });
    assert_eq!(hits.len(), 1);
    assert_eq!(
        sim.aliases().get("from_async"),
        Some(&"from_async-gen-1".to_owned())
    );
}

/// A plain qdrant-client on its own runtime, to change a server behind a store's back.
fn raw_client(url: &str) -> (tokio::runtime::Runtime, qdrant_client::Qdrant) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = qdrant_client::Qdrant::from_url(url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    (runtime, client)
}

#[test]
fn qdrant_without_its_alias_adopts_the_newest_finished_generation() {
    use qdrant_client::qdrant::{CreateCollection, DeleteAlias};
    let (sim, open) = qdrant_location(None);
    let record = MemoryRecord::new("kept through a crash", "ops", Kind::Note, suite::t0());
    open.open(Arc::new(HashingEmbedder::new()))
        .unwrap()
        .upsert(vec![record.clone()])
        .unwrap();
    // a crash in a reindex: the alias gone, generation 2 created but not finished (no meta)
    let (runtime, client) = raw_client(sim.url());
    runtime.block_on(async {
        client
            .delete_alias(DeleteAlias {
                alias_name: DEFAULT_COLLECTION.to_owned(),
            })
            .await
            .unwrap();
        client
            .create_collection(CreateCollection {
                collection_name: format!("{DEFAULT_COLLECTION}-gen-2"),
                ..Default::default()
            })
            .await
            .unwrap();
    });
    assert!(sim.aliases().is_empty());

    let store = open.open(Arc::new(HashingEmbedder::new())).unwrap();
    assert_eq!(store.get(&record.id).unwrap(), Some(record));
    let generation = format!("{DEFAULT_COLLECTION}-gen-1");
    assert_eq!(
        sim.collections(),
        vec![generation.clone()],
        "the unfinished one is dropped"
    );
    assert_eq!(sim.aliases().get(DEFAULT_COLLECTION), Some(&generation));
}

#[test]
fn qdrant_refuses_a_collection_it_did_not_create_and_drops_its_own() {
    use qdrant_client::qdrant::CreateCollection;
    let (sim, _open) = qdrant_location(None);
    let (runtime, client) = raw_client(sim.url());
    runtime.block_on(async {
        client
            .create_collection(CreateCollection {
                collection_name: "someone_elses".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let foreign = QdrantConfig::new(sim.url()).with_collection("someone_elses");
    let shown = refused_config(foreign, "collection");
    assert!(shown.contains("did not create"), "{shown}");
    assert_eq!(
        sim.collections(),
        vec!["someone_elses".to_owned()],
        "left alone"
    );

    let ours = QdrantConfig::new(sim.url()).with_collection("ours");
    let store = QdrantStore::connect(ours, Arc::new(HashingEmbedder::new())).unwrap();
    assert_eq!(store.collection(), "ours");
    assert!(sim.aliases().contains_key("ours"));
    store.drop_collection().unwrap();
    assert!(sim.aliases().is_empty());
    assert_eq!(sim.collections(), vec!["someone_elses".to_owned()]);
}

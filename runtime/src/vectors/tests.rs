use std::path::{Path, PathBuf};

use agents::audit::Auditor;
use agents::telemetry::Telemetry;
use chrono::TimeZone;
use serde_json::json;

use super::*;

fn section(embedder: EmbedderChoice) -> MemorySection {
    MemorySection {
        embedder,
        ..MemorySection::default()
    }
}

/// The model directory `.ci/run` prepares, or `COMMAND_CENTER_MINILM_DIR`.
fn minilm_dir() -> PathBuf {
    std::env::var_os("COMMAND_CENTER_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-minilm-l6-v2")
        })
}

fn alert_body(summary: &str, domain: &str) -> serde_json::Value {
    json!({
        "key": "validators.disk/validator-2",
        "rule": "disk_full",
        "status": "firing",
        "severity": "critical",
        "summary": summary,
        "labels": {"domain": domain, "validator": "validator-2"},
        "evidence": {"disk_used_percent": 97.5},
    })
}

#[test]
fn journal_entries_become_records_with_their_provenance() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
    let incident = from_journal(
        7,
        "alert.firing",
        at,
        &alert_body("validator-2 disk is 97% full", "validators"),
    )
    .unwrap();
    assert_eq!(incident.kind, Kind::Incident);
    assert_eq!(incident.domain, "validators");
    assert_eq!(incident.trust, Trust::Internal);
    assert_eq!(incident.source_url.as_deref(), Some("journal:7"));
    assert_eq!(incident.fetched_at, at);
    assert!(
        incident
            .text
            .starts_with("Alert firing (critical): validator-2 disk is 97% full")
    );
    assert!(incident.text.contains("97.5"), "{}", incident.text);

    let talk = from_journal(
        9,
        "conversation.answered",
        at,
        &json!({"user": "alice", "question": "why is v2 slow?", "answer": "Its disk is full."}),
    )
    .unwrap();
    assert_eq!(talk.kind, Kind::Conversation);
    // What people typed is never trusted.
    assert_eq!(talk.trust, Trust::External);
    assert!(talk.text.contains("alice asked: why is v2 slow?"));

    for (kind, body) in [
        ("decision.made", json!({"summary": "x"})),
        ("alert.firing", json!({"summary": "  "})),
        ("conversation.answered", json!({"question": "q"})),
        ("alert.firing", json!("not an object")),
    ] {
        assert!(from_journal(1, kind, at, &body).is_none(), "{kind} {body}");
    }
}

#[test]
fn search_parameters_are_checked_and_named() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let half_life = Duration::from_secs(3600);
    let params = SearchParams {
        q: "disk".into(),
        domain: Some("validators".into()),
        kind: Some("incident, report".into()),
        since: Some("7d".into()),
        trust: Some("internal".into()),
        limit: Some(3),
    };
    let query = params.query(half_life, now).unwrap();
    assert_eq!(query.limit, 3);
    assert_eq!(query.filter.kinds, vec![Kind::Incident, Kind::Report]);
    assert_eq!(query.filter.since, Some(now - chrono::Duration::days(7)));
    assert_eq!(query.filter.trust, Some(Trust::Internal));
    assert_eq!(query.recency_half_life, Some(half_life));

    let error = |params: SearchParams| params.query(half_life, now).unwrap_err();
    assert!(error(SearchParams::default()).starts_with("q:"));
    let base = SearchParams {
        q: "x".into(),
        ..SearchParams::default()
    };
    assert!(
        error(SearchParams {
            kind: Some("gossip".into()),
            ..base.clone()
        })
        .starts_with("kind: \"gossip\" is not one of news, release")
    );
    assert!(
        error(SearchParams {
            since: Some("last tuesday".into()),
            ..base.clone()
        })
        .starts_with("since:")
    );
    assert!(
        error(SearchParams {
            trust: Some("maybe".into()),
            ..base.clone()
        })
        .starts_with("trust:")
    );
    assert!(
        error(SearchParams {
            limit: Some(0),
            ..base
        })
        .starts_with("limit:")
    );
}

#[test]
fn auto_falls_back_to_hashing_and_local_says_how_to_get_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (chosen, note) = embedder(&section(EmbedderChoice::Auto), dir.path()).unwrap();
    assert_eq!(chosen.id(), "hashing-384-v1");
    assert!(note.contains("command-center models install"), "{note}");
    let Err(error) = embedder(&section(EmbedderChoice::Local), dir.path()) else {
        panic!("a missing local model must be an error");
    };
    assert!(error.contains("memory.embedder = \"local\""), "{error}");
    assert!(error.contains("command-center models install"), "{error}");
    let off = MemorySection {
        enabled: false,
        ..MemorySection::default()
    };
    assert!(open(&off, dir.path()).unwrap().is_none());
}

#[tokio::test]
async fn the_journal_is_remembered_once_from_a_durable_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let auditor = Auditor::new(store.clone(), Telemetry::default());
    let memory = open(&section(EmbedderChoice::Hashing), dir.path())
        .unwrap()
        .unwrap();
    auditor
        .record(
            "validators",
            "alert.firing",
            "validators.disk/validator-2",
            &alert_body("validator-2 disk is 97% full", "validators"),
        )
        .await
        .unwrap();
    auditor
        .record(
            "gate",
            "decision.made",
            "p-1",
            &json!({"decision": "allow"}),
        )
        .await
        .unwrap();
    assert_eq!(memory.remember_journal(&store).await.unwrap(), 1);
    // Nothing new: nothing stored again.
    assert_eq!(memory.remember_journal(&store).await.unwrap(), 0);
    auditor
        .record(
            "conversation",
            "conversation.answered",
            "alice",
            &json!({"user": "alice", "question": "is the disk fixed?", "answer": "Not yet."}),
        )
        .await
        .unwrap();
    assert_eq!(memory.remember_journal(&store).await.unwrap(), 1);

    // Building the index in the background changes no answer.
    memory.optimize().await;
    let hits = memory
        .search(memory.query("disk full validator-2").limit(5))
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].record.kind, Kind::Incident);
    let shown = hit_json(&hits[0]);
    assert_eq!(shown["citation"], citation(&hits[0].record.id));
    assert_eq!(
        shown["citation"].as_str().unwrap().len(),
        "memory:".len() + 12
    );
    let stats = memory.stats().await.unwrap();
    assert_eq!(stats.records, 2);

    // A restart resumes from the cursor: the same entries are not stored again.
    drop(memory);
    let memory = open(&section(EmbedderChoice::Hashing), dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(memory.remember_journal(&store).await.unwrap(), 0);
    let lines = export_lines(memory.store().as_ref()).unwrap();
    assert_eq!(lines.lines().count(), 2);
    let first: MemoryRecord = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first.kind, Kind::Incident);
}

#[tokio::test]
async fn changing_the_embedder_re_embeds_on_start_and_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let auditor = Auditor::new(store.clone(), Telemetry::default());
    let hashing = open(&section(EmbedderChoice::Hashing), dir.path())
        .unwrap()
        .unwrap();
    let now = Utc::now();
    hashing
        .upsert(vec![
            MemoryRecord::new(
                "Toncoin lost a tenth of its value within an hour",
                "market",
                Kind::News,
                now,
            ),
            MemoryRecord::new(
                "The disk on validator-2 is nearly full",
                "validators",
                Kind::Incident,
                now,
            ),
        ])
        .await
        .unwrap();
    assert!(!hashing.reindex_if_needed(&auditor).await.unwrap());
    drop(hashing);

    let local = MemorySection {
        model_dir: Some(minilm_dir()),
        ..section(EmbedderChoice::Local)
    };
    let memory = match open(&local, dir.path()) {
        Ok(memory) => memory.unwrap(),
        Err(error) => {
            panic!("{error}\n(.ci/run fetches the model into target/models; run it once)")
        }
    };
    // Until re-embedded, search refuses rather than compare two spaces.
    assert!(matches!(
        memory.search(memory.query("price")).await,
        Err(VectorError::EmbedderMismatch { .. })
    ));
    assert!(memory.reindex_if_needed(&auditor).await.unwrap());
    let hits = memory
        .search(memory.query("TON price crash").limit(1))
        .await
        .unwrap();
    assert_eq!(hits[0].record.domain, "market");
    let entries = store
        .journal()
        .query(&JournalQuery {
            kind: Some("memory.reindexed".into()),
            ..JournalQuery::default()
        })
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].body["records"], 2);
    assert_eq!(entries[0].body["from_embedder"], "hashing-384-v1");
    assert_eq!(entries[0].body["to_embedder"], "minilm-l6-v2");
    assert!(!memory.reindex_if_needed(&auditor).await.unwrap());
}

#[test]
fn a_qdrant_server_that_is_not_there_is_named_without_its_key() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = section(EmbedderChoice::Hashing);
    config.backend = MemoryBackend::Qdrant;
    config.qdrant.url = format!("http://127.0.0.1:{port}");
    config.qdrant.api_key = Some(::tools::secret::Secret::new("qdrant-secret-key-123"));
    config.qdrant.timeout = Duration::from_secs(2);
    let Err(error) = open(&config, dir.path()) else {
        panic!("nothing listens there");
    };
    assert!(error.starts_with("memory.qdrant:"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(!error.contains("qdrant-secret-key-123"), "{error}");
}

#[test]
fn an_openai_compatible_endpoint_embeds_the_memory() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let model = runtime
        .block_on(::tools::sim::openai::ScriptedOpenAi::start())
        .unwrap();
    model.set_embedding_dims(Some(64));
    let dir = tempfile::tempdir().unwrap();
    let mut config = section(EmbedderChoice::Openai);
    config.openai.base_url = model.base_url();
    config.openai.model = "text-embedding-test".into();
    config.openai.dimensions = 64;
    config.openai.api_key = Some(::tools::secret::Secret::new("sk-embed-test"));
    let memory = open(&config, dir.path()).unwrap().unwrap();
    assert!(
        memory
            .embedder_note
            .starts_with("openai text-embedding-test")
    );
    let store = memory.store();
    store
        .upsert(vec![MemoryRecord::new(
            "The disk on validator-2 is nearly full",
            "validators",
            Kind::Incident,
            Utc::now(),
        )])
        .unwrap();
    let hits = store
        .search(&SearchQuery::new("The disk on validator-2 is nearly full"))
        .unwrap();
    assert_eq!(hits.len(), 1);
    let stats = store.stats().unwrap();
    assert_eq!(stats.embedder_id, "openai:text-embedding-test:64");
    assert_eq!(stats.dims, 64);
}

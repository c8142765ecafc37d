//! The gate through the real binary: bearer-token authentication, proposals and approvals
//! from the CLI, backtest of a candidate policy set, and exactly-once execution when the
//! process is killed with -9 at random points.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::support::{Daemon, free_port, run_cli_env, workspace_root, write_team_config};

/// The team, and a `mark` program (mkdir) proposals can run.
fn write_gate_config(dir: &Path, port: u16) {
    write_team_config(
        dir,
        port,
        ALICE,
        CAROL,
        "\n[executors.command.programs.mark]\nprogram = \"/usr/bin/mkdir\"\nargs = [\"{path}\"]\ntimeout = \"10s\"\n",
    );
}

const ALICE: &str = "cc_test_token_alice_operator";
const CAROL: &str = "cc_test_token_carol_treasurer";

fn mark_proposal(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": name,
        "operation": {
            "kind": "command",
            "domain": "validators",
            "risk": "medium",
            "target": "validator-1",
            "parameters": { "command": "mark", "vars": { "path": dir.join("marks").join(name).display().to_string() } }
        },
        "rationale": "test"
    })
}

#[test]
fn tokens_proposals_approvals_and_backtest_through_the_binary() {
    tools::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("marks")).unwrap();
    let port = free_port();
    write_gate_config(dir.path(), port);
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let anonymous = client
            .get(format!("{url}/v1/proposals"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        let forged = client
            .get(format!("{url}/v1/proposals"))
            .bearer_auth("cc_not_a_real_token")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
        let body: serde_json::Value = forged.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("unknown token"),
            "{body}"
        );
        let garbage = client
            .post(format!("{url}/v1/proposals"))
            .bearer_auth(ALICE)
            .header("content-type", "application/json")
            .body("{\"operation\": {\"kind\": 5}}")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 422);
    });

    // Propose from the CLI as alice; alice cannot approve her own; carol can.
    let file = dir.path().join("restart.json");
    std::fs::write(&file, mark_proposal(dir.path(), "restart-1").to_string()).unwrap();
    let env_alice = [("COMMAND_CENTER_TOKEN", ALICE)];
    let env_carol = [("COMMAND_CENTER_TOKEN", CAROL)];
    // A dry-run shows the argv and runs nothing.
    let (code, stdout, stderr) = run_cli_env(
        dir.path(),
        &["proposals", "dry-run", file.to_str().unwrap()],
        &env_alice,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("dry-run (Succeeded)"), "{stdout}");
    assert!(stdout.contains("/usr/bin/mkdir"), "{stdout}");
    assert!(!dir.path().join("marks/restart-1").exists());
    let (code, stdout, stderr) = run_cli_env(
        dir.path(),
        &["proposals", "new", file.to_str().unwrap()],
        &env_alice,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("restart-1"), "{stdout}");
    assert!(stdout.contains("pending"), "{stdout}");
    let (code, _, stderr) = run_cli_env(
        dir.path(),
        &["proposals", "approve", "restart-1"],
        &env_alice,
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("403") && stderr.contains("cannot also approve"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run_cli_env(
        dir.path(),
        &["proposals", "approve", "restart-1"],
        &env_carol,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("executed"), "{stdout}");
    assert!(dir.path().join("marks/restart-1").is_dir());
    let (code, stdout, _) = run_cli_env(
        dir.path(),
        &["proposals", "list", "--state", "executed"],
        &env_carol,
    );
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (code, _, stderr) = run_cli_env(dir.path(), &["proposals", "list"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("COMMAND_CENTER_TOKEN"), "{stderr}");

    // A candidate set that lets commands run on their own: backtest names the change.
    let candidate = dir.path().join("candidate");
    std::fs::create_dir_all(&candidate).unwrap();
    let root = workspace_root();
    std::fs::copy(
        root.join("policies/schema.cedarschema"),
        candidate.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::copy(
        root.join("policies/default.cedar"),
        candidate.join("default.cedar"),
    )
    .unwrap();
    std::fs::write(
        candidate.join("loose.cedar"),
        "@id(\"commands-auto\")\npermit (principal, action == Action::\"execute\", resource) when { resource.kind == \"command\" };\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_cli_env(
        dir.path(),
        &[
            "policy",
            "backtest",
            "--policies",
            candidate.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("restart-1 command by alice"), "{stdout}");
    assert!(stdout.contains("now: auto: runs on its own"), "{stdout}");
    assert!(stdout.contains("1 decisions replayed"), "{stdout}");
    assert!(stdout.contains("1 would change"), "{stdout}");

    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
    let (code, stdout, _) = run_cli_env(
        dir.path(),
        &["audit", "search", "--kind", "auth.refused"],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        !stdout.contains("cc_not_a_real_token"),
        "tokens never reach the journal"
    );
}

#[test]
fn kill_9_at_random_points_never_runs_twice_and_loses_no_approval() {
    tools::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("marks")).unwrap();
    let port = free_port();
    write_gate_config(dir.path(), port);
    let url = format!("http://127.0.0.1:{port}");
    // Approvals the API acknowledged: proposal id -> approver.
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    let runs = 6;
    for run in 0..runs {
        let mut daemon = Daemon::spawn(dir.path(), &["run"]);
        daemon.wait_for("ready", Duration::from_secs(60));
        // Kill after a random number of acknowledged steps, while others are in flight.
        let kill_after = 2 + rand::random::<u32>() % 12;
        let (sender, receiver) = std::sync::mpsc::channel::<(String, String)>();
        for worker in 0..3 {
            let sender = sender.clone();
            let url = url.clone();
            let marks = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let client = reqwest::Client::new();
                    for n in 0..50 {
                        let id = format!("r{run}-w{worker}-{n}");
                        let proposed = client
                            .post(format!("{url}/v1/proposals"))
                            .bearer_auth(ALICE)
                            .json(&mark_proposal(&marks, &id))
                            .send()
                            .await;
                        if !proposed.is_ok_and(|r| r.status().is_success()) {
                            return;
                        }
                        let approved = client
                            .post(format!("{url}/v1/proposals/{id}/approve"))
                            .bearer_auth(CAROL)
                            .send()
                            .await;
                        match approved {
                            Ok(response) if response.status().is_success() => {
                                if sender.send((id, "carol".into())).is_err() {
                                    return;
                                }
                            }
                            _ => return,
                        }
                    }
                });
            });
        }
        drop(sender);
        for _ in 0..kill_after {
            match receiver.recv_timeout(Duration::from_secs(30)) {
                Ok((id, user)) => {
                    acknowledged.insert(id, user);
                }
                Err(_) => break,
            }
        }
        daemon.signal(libc::SIGKILL);
        assert_eq!(daemon.wait_exit(Duration::from_secs(10)), None);
        while let Ok((id, user)) = receiver.recv_timeout(Duration::from_millis(500)) {
            acknowledged.insert(id, user);
        }
    }
    // One more start: recovery finishes or reconciles what the kills interrupted.
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));

    let store = memory::Store::open(&dir.path().join("data")).unwrap();
    assert!(store.journal().verify(&[]).unwrap().problem.is_none());
    let started = store
        .journal()
        .query(&memory::JournalQuery {
            kind: Some("execution.started".into()),
            ..Default::default()
        })
        .unwrap();
    let mut seen = BTreeSet::new();
    for entry in &started {
        assert!(
            seen.insert(entry.subject.clone()),
            "{} was executed twice",
            entry.subject
        );
    }
    let records: BTreeMap<String, serde_json::Value> = store
        .state()
        .scan_prefix::<serde_json::Value>("proposals/")
        .unwrap()
        .into_iter()
        .map(|(key, value)| (key.trim_start_matches("proposals/").to_owned(), value))
        .collect();
    assert!(!acknowledged.is_empty());
    for (id, user) in &acknowledged {
        let record = records.get(id).unwrap_or_else(|| panic!("{id} lost"));
        let voters: Vec<&str> = record["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|vote| vote["user"].as_str().unwrap())
            .collect();
        assert!(
            voters.contains(&user.as_str()),
            "approval of {id} lost: {record}"
        );
        let state = record["state"].as_str().unwrap();
        assert!(
            ["executed", "unknown"].contains(&state),
            "{id} was approved but is {state}"
        );
    }
    // Every executed proposal ran exactly once: its directory exists and it started once.
    for (id, record) in &records {
        if record["state"] == "executed" {
            assert!(dir.path().join("marks").join(id).is_dir(), "{id}");
            assert!(seen.contains(id), "{id} executed without a start entry");
        }
    }
    eprintln!(
        "{runs} kills: {} approvals acknowledged, {} executions started, states: {:?}",
        acknowledged.len(),
        started.len(),
        records
            .values()
            .fold(BTreeMap::<String, usize>::new(), |mut counts, record| {
                *counts
                    .entry(record["state"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
                counts
            })
    );
}

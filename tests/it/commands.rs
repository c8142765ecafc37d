//! The chat command layer through the real binary: `POST /v1/commands` with a bearer token and
//! `command-center ask`, against a data directory holding validator data written through the
//! agents' own series keys.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::support::{Daemon, free_port, run_cli_env, write_team_config};

const ALICE: &str = "cc_test_token_alice_commands";
const CAROL: &str = "cc_test_token_carol_commands";

/// What the validators and market agents would have stored, before the daemon starts.
fn seed(data: &Path) {
    let store = memory::Store::open(data).unwrap();
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    let series = store.series();
    use agents::validators::{balance_key, in_set_key, sync_lag_key};
    series
        .append(&balance_key("validator-1"), now - hour * 20, 1000.0)
        .unwrap();
    series
        .append(&balance_key("validator-1"), now - hour, 970.5)
        .unwrap();
    series
        .append(&in_set_key("validator-1"), now - hour, 1.0)
        .unwrap();
    series
        .append(&sync_lag_key("validator-1"), now - hour, 3.0)
        .unwrap();
    series
        .append(&balance_key("validator-2"), now - hour, 5.0)
        .unwrap();
    series
        .append(&in_set_key("validator-2"), now - hour, 0.0)
        .unwrap();
    series
        .append(
            &agents::market::price_key("the-open-network", "usd"),
            now - hour,
            5.25,
        )
        .unwrap();
    store.flush().unwrap();
}

#[test]
fn chat_commands_through_the_api_and_the_ask_command() {
    tools::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_team_config(dir.path(), port, ALICE, CAROL, "");
    seed(&dir.path().join("data"));
    let mut daemon = Daemon::spawn(dir.path(), &["run"]);
    daemon.wait_for("ready", Duration::from_secs(60));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/commands");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |token: Option<&'static str>, body: serde_json::Value| {
            let mut request = client.post(&url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let anonymous = post(None, serde_json::json!({ "text": "/validators" }))
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);

        let response = post(Some(ALICE), serde_json::json!({ "text": "/validators" }))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["outcome"], "ok", "{answer}");
        assert_eq!(answer["title"], "Validators");
        assert_eq!(answer["tables"][0]["rows"][0][0], "validator-1");
        assert_eq!(answer["tables"][0]["rows"][0][1], "970.50");
        assert_eq!(answer["tables"][0]["rows"][1][2], "NO");
        let text = answer["text"].as_str().unwrap();
        assert!(text.starts_with("Validators\n"), "{text}");
        assert!(text.contains("validator-2"), "{text}");

        // Slack's `/cc market` arrives without the slash.
        let market: serde_json::Value = post(Some(ALICE), serde_json::json!({ "text": "market" }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(market["tables"][0]["rows"][0][0], "TON", "{market}");
        assert_eq!(market["tables"][0]["rows"][0][1], "5.25 USD");

        let status: serde_json::Value = post(Some(ALICE), serde_json::json!({ "text": "/status" }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["outcome"], "ok", "{status}");
        assert!(
            status["facts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|fact| fact["label"] == "Ready" && fact["value"] == "yes"),
            "{status}"
        );

        let bad: serde_json::Value =
            post(Some(ALICE), serde_json::json!({ "text": "/earnings year" }))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(bad["outcome"], "invalid");
        assert!(
            bad["text"]
                .as_str()
                .unwrap()
                .contains("day, week and month"),
            "{bad}"
        );
        let oversize: serde_json::Value = post(
            Some(ALICE),
            serde_json::json!({ "text": "x".repeat(100_000) }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(oversize["outcome"], "invalid");
        let malformed = post(Some(ALICE), serde_json::json!({ "text": 5 }))
            .await
            .unwrap();
        assert_eq!(malformed.status(), 422);

        // Pausing needs the operator role, as in the gate's API.
        let refused: serde_json::Value = post(
            Some(CAROL),
            serde_json::json!({ "text": "/pause all test" }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(refused["outcome"], "refused", "{refused}");
        let paused: serde_json::Value = post(
            Some(ALICE),
            serde_json::json!({ "text": "/pause all test" }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(paused["outcome"], "ok", "{paused}");
        let pauses: serde_json::Value = client
            .get(format!("http://127.0.0.1:{port}/v1/autonomy"))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(pauses[0][0], "all", "{pauses}");
        assert_eq!(pauses[0][1]["by"], "alice");
        let resumed: serde_json::Value =
            post(Some(ALICE), serde_json::json!({ "text": "/resume" }))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(resumed["outcome"], "ok");

        // Refusals are journaled with their reason.
        let refusals: serde_json::Value = client
            .get(format!(
                "http://127.0.0.1:{port}/v1/audit?kind=command.refused"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(refusals.as_array().unwrap().len(), 3, "{refusals}");
        assert_eq!(refusals[2]["actor"], "user:carol");
    });

    // The CLI goes through the same endpoint and prints the plain rendering.
    let env_alice = [("COMMAND_CENTER_TOKEN", ALICE)];
    let (code, stdout, stderr) = run_cli_env(dir.path(), &["ask", "/validators"], &env_alice);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("Validators\n"), "{stdout}");
    assert!(stdout.contains("NAME"), "{stdout}");
    assert!(stdout.contains("validator-1 970.50"), "{stdout}");
    let (code, stdout, _) = run_cli_env(
        dir.path(),
        &["ask", "how", "much", "did", "we", "earn?"],
        &env_alice,
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("/earnings [day|week|month]"), "{stdout}");
    let (code, stdout, _) = run_cli_env(dir.path(), &["ask", "/earnings", "year"], &env_alice);
    assert_eq!(code, 2, "invalid input exits 2");
    assert!(stdout.contains("day, week and month"), "{stdout}");
    let token_file = dir.path().join("carol.token");
    std::fs::write(&token_file, format!("{CAROL}\n")).unwrap();
    let (code, stdout, _) = run_cli_env(
        dir.path(),
        &[
            "ask",
            "--token-file",
            token_file.to_str().unwrap(),
            "/resume",
        ],
        &[],
    );
    assert_eq!(code, 1, "carol may not resume");
    assert!(stdout.contains("carol needs the operator role"), "{stdout}");
    let (code, _, stderr) = run_cli_env(dir.path(), &["ask", "/help"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no API token"), "{stderr}");

    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
}

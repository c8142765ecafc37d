//! Slack end to end: real HTTP POSTs signed as Slack signs them to the daemon's
//! `/slack/commands` and `/slack/actions`, answers posted to a `response_url` in the simulated
//! world, approvals decided through the gate — and forged, stale, replayed, malformed and
//! unknown-user requests refused, journaled, and changing nothing.

use std::time::Duration;

use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};
use serde_json::json;
use tools::secret::Secret;
use tools::sim::SimWorld;

use crate::support::{config_for, echo_program, quiet_scenario, system};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", key, url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn url_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

struct Signed {
    timestamp: String,
    signature: String,
    body: String,
}

fn signed(body: String, timestamp: i64) -> Signed {
    let signature =
        tools::slack::sign_request(&Secret::new(SIGNING_SECRET), timestamp, body.as_bytes());
    Signed {
        timestamp: timestamp.to_string(),
        signature,
        body,
    }
}

async fn post(http: &reqwest::Client, url: &str, request: &Signed) -> (u16, String) {
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &request.timestamp)
        .header("x-slack-signature", &request.signature)
        .body(request.body.clone())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn entries(store: &memory::Store, kind: &str) -> Vec<memory::JournalEntry> {
    store
        .journal()
        .query(&JournalQuery {
            kind: Some(kind.into()),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn slack_commands_and_approvals_are_verified_answered_and_journaled() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        let slack = &mut config.channels.slack;
        slack.enabled = true;
        slack.signing_secret = Some(Secret::new(SIGNING_SECRET));
        slack.bot_token = Some(Secret::new("xoxb-test-token"));
        slack.api_base_url = sim.slack_api_url();
        for (name, roles, slack_id) in [
            ("alice", vec!["operator"], "U0ALICE"),
            ("carol", vec!["treasurer"], "U0CAROL"),
        ] {
            config.access.users.push(
                serde_json::from_value(
                    json!({ "name": name, "roles": roles, "slack_id": slack_id }),
                )
                .unwrap(),
            );
        }
        echo_program(&mut config, "restart_validator", &["{validator}"]);
        // Critical alerts also go to the ops channel.
        config.alerting.receivers.push(
            serde_json::from_value(
                json!({ "name": "ops-slack", "kind": "slack", "channel": "C0OPS" }),
            )
            .unwrap(),
        );
        config.alerting.route.routes.push(
            serde_json::from_value(
                json!({ "matchers": ["severity=critical"], "receiver": "ops-slack" }),
            )
            .unwrap(),
        );
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let store = daemon.state.store.clone();
        let http = reqwest::Client::new();
        let base = format!("http://{}", daemon.http_addr);
        let commands = format!("{base}/slack/commands");
        let actions = format!("{base}/slack/actions");
        let now = chrono::Utc::now().timestamp();
        let slash = |user: &str, text: &str, response: &str| {
            form(&[
                ("token", "legacy"),
                ("team_id", "T0CC0001"),
                ("channel_id", "C0OPS"),
                ("user_id", user),
                ("user_name", "someone"),
                ("command", "/cc"),
                ("text", text),
                ("response_url", &sim.slack_response_url(response)),
                ("trigger_id", "1.2.3"),
            ])
        };

        // A verified command from a known user: acknowledged at once, answered at the URL.
        let help = signed(slash("U0ALICE", "help", "help-1"), now);
        let (status, ack) = post(&http, &commands, &help).await;
        assert_eq!(status, 200, "{ack}");
        assert!(ack.contains("Working on"), "{ack}");
        assert_eq!(sim.wait_for_slack(1, Duration::from_secs(10)).await, 1);
        let answered = sim.slack_responses();
        assert_eq!(answered[0].response_id, "help-1");
        assert!(
            !answered[0].authorization_present,
            "the URL is the credential"
        );
        assert_eq!(answered[0].body["response_type"], "in_channel");
        let blocks = answered[0].body["blocks"].to_string();
        assert!(blocks.contains("/validators"), "{blocks}");

        // The same request again is a replay; forged and stale ones are refused too.
        let (status, _) = post(&http, &commands, &help).await;
        assert_eq!(status, 401, "replayed");
        let mut forged = signed(slash("U0ALICE", "pause", "forged"), now);
        forged.signature = format!("v0={}", "0".repeat(64));
        assert_eq!(post(&http, &commands, &forged).await.0, 401);
        let stale = signed(slash("U0ALICE", "pause", "stale"), now - 600);
        assert_eq!(post(&http, &commands, &stale).await.0, 401);
        let malformed = signed("text=%ZZ&&=".to_owned(), now);
        assert_eq!(post(&http, &commands, &malformed).await.0, 400);
        // Someone the configuration does not know: a polite refusal, nothing run.
        let stranger = signed(slash("U0STRANGER", "pause", "stranger"), now);
        let (status, refusal) = post(&http, &commands, &stranger).await;
        assert_eq!(status, 200);
        assert!(refusal.contains("does not know you"), "{refusal}");
        assert_eq!(entries(&store, "chat.refused").len(), 5);
        assert!(
            daemon.state.gate.pauses().unwrap().is_empty(),
            "nothing paused"
        );
        assert_eq!(
            sim.slack_responses().len(),
            1,
            "no answer for refused requests"
        );

        // An approval from a button: the operation runs once, the message says who decided.
        let proposal: policies::Proposal = serde_json::from_value(json!({
            "id": "slack-restart-1",
            "proposer": {"type": "agent", "name": "validators", "domain": "validators"},
            "operation": {
                "kind": "command", "domain": "validators", "risk": "medium",
                "target": "validator-1",
                "parameters": {"command": "restart_validator", "vars": {"validator": "validator-1"}}
            },
            "rationale": "node out of sync"
        }))
        .unwrap();
        let record = daemon.state.gate.submit(proposal).await.unwrap();
        assert_eq!(record.state.as_str(), "pending");
        let press = |user: &str, action_id: &str, response: &str| {
            let payload = json!({
                "type": "block_actions",
                "user": {"id": user},
                "team": {"id": "T0CC0001"},
                "channel": {"id": "C0OPS"},
                "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0OPS"},
                "response_url": sim.slack_response_url(response),
                "actions": [{"action_id": action_id, "type": "button", "value": "x"}],
            });
            form(&[("payload", &payload.to_string())])
        };
        let tampered = signed(press("U0STRANGER", "approve:slack-restart-1", "t"), now);
        let (status, _) = post(&http, &actions, &tampered).await;
        assert_eq!(status, 200);
        // Told so in a message only they see.
        assert_eq!(sim.wait_for_slack(2, Duration::from_secs(10)).await, 2);
        let told = &sim.slack_responses()[1];
        assert_eq!(told.response_id, "t");
        assert_eq!(told.body["response_type"], "ephemeral");
        assert_eq!(told.body["replace_original"], false);
        assert_eq!(
            daemon
                .state
                .gate
                .get("slack-restart-1")
                .unwrap()
                .unwrap()
                .state
                .as_str(),
            "pending",
            "an unknown user decides nothing"
        );
        let approve = signed(
            press("U0ALICE", "approve:slack-restart-1", "approve-1"),
            now,
        );
        let (status, decided) = post(&http, &actions, &approve).await;
        assert_eq!(status, 200, "{decided}");
        assert!(decided.contains("approved by alice"), "{decided}");
        assert_eq!(sim.wait_for_slack(3, Duration::from_secs(10)).await, 3);
        let update = &sim.slack_responses()[2];
        assert_eq!(update.response_id, "approve-1");
        assert_eq!(update.body["replace_original"], true);
        let executed = daemon.state.gate.get("slack-restart-1").unwrap().unwrap();
        assert_eq!(executed.state.as_str(), "executed");
        // A second press (or a replayed one) runs nothing again.
        let again = signed(
            press("U0ALICE", "approve:slack-restart-1", "approve-2"),
            now + 1,
        );
        let (_, second) = post(&http, &actions, &again).await;
        assert!(!second.contains("approved by"), "{second}");
        assert_eq!(entries(&store, "execution.started").len(), 1);
        assert!(!entries(&store, "chat.command").is_empty());

        // A critical alert is posted to the channel with chat.postMessage.
        let now = chrono::Utc::now();
        let alert = agents::Alert {
            key: "validators.service_down/validator-2".into(),
            rule: "service_down".into(),
            status: agents::AlertStatus::Firing,
            severity: agents::Severity::Critical,
            summary: "validator-2: the validator service is down".into(),
            labels: [("domain".to_owned(), "validators".to_owned())]
                .into_iter()
                .collect(),
            evidence: json!({}),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        daemon.state.router.ingest(alert, now).await.unwrap();
        // Four response_url answers so far (help, the stranger's refusal, the approval, the
        // second press), then the post.
        assert_eq!(sim.wait_for_slack(5, Duration::from_secs(10)).await, 5);
        let posted = sim.slack_calls();
        let post = posted.last().unwrap();
        assert_eq!(post.body["channel"], "C0OPS");
        let text = post.body["text"].as_str().unwrap();
        assert!(
            text.contains("CRITICAL") && text.contains("service is down"),
            "{text}"
        );
        assert!(!entries(&store, "chat.action").is_empty());

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

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

// ---- Socket Mode ----

const APP_TOKEN: &str = "xapp-1-A0SIMAPP01-SOCKET-SECRET";
const WAIT: Duration = Duration::from_secs(15);

/// A daemon in Socket Mode against `sim`: no signing secret, alice (operator) and carol
/// (treasurer) mapped from Slack ids, and a harmless restart program.
async fn socket_mode_daemon(
    sim: &tools::sim::SimHandle,
    data_dir: &std::path::Path,
    app_token: &str,
) -> Daemon {
    let mut config = config_for(&sim.coingecko_url(), data_dir);
    let slack = &mut config.channels.slack;
    slack.enabled = true;
    slack.socket_mode = true;
    slack.app_token = Some(Secret::new(app_token));
    slack.bot_token = Some(Secret::new("xoxb-test-token"));
    slack.api_base_url = sim.slack_api_url();
    for (name, roles, slack_id) in [
        ("alice", vec!["operator"], "U0ALICE"),
        ("carol", vec!["treasurer"], "U0CAROL"),
    ] {
        config.access.users.push(
            serde_json::from_value(json!({ "name": name, "roles": roles, "slack_id": slack_id }))
                .unwrap(),
        );
    }
    echo_program(&mut config, "restart_validator", &["{validator}"]);
    Daemon::start(config, RunOptions::default()).await.unwrap()
}

/// A slash command's payload as Socket Mode carries it: the form's fields, as strings.
fn slash_payload(
    sim: &tools::sim::SimHandle,
    user: &str,
    text: &str,
    response: &str,
) -> serde_json::Value {
    json!({
        "token": "legacy",
        "team_id": "T0CC0001",
        "team_domain": "ops",
        "channel_id": "C0OPS",
        "channel_name": "ops",
        "user_id": user,
        "user_name": "someone",
        "command": "/cc",
        "text": text,
        "api_app_id": tools::sim::SIM_APP_ID,
        "is_enterprise_install": "false",
        "response_url": sim.slack_response_url(response),
        "trigger_id": "1.2.3",
    })
}

fn button_payload(
    sim: &tools::sim::SimHandle,
    user: &str,
    action_id: &str,
    response: &str,
) -> serde_json::Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": "T0CC0001"},
        "api_app_id": tools::sim::SIM_APP_ID,
        "team": {"id": "T0CC0001"},
        "channel": {"id": "C0OPS"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0OPS"},
        "response_url": sim.slack_response_url(response),
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "x", "action_ts": "1.3"}],
    })
}

fn responses_to(sim: &tools::sim::SimHandle, id: &str) -> Vec<tools::sim::SlackResponse> {
    sim.slack_responses()
        .into_iter()
        .filter(|response| response.response_id == id)
        .collect()
}

/// The restart proposal the buttons decide.
async fn pending_restart(daemon: &Daemon, id: &str) {
    let proposal: policies::Proposal = serde_json::from_value(json!({
        "id": id,
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
}

fn proposal_state(daemon: &Daemon, id: &str) -> String {
    daemon
        .state
        .gate
        .get(id)
        .unwrap()
        .unwrap()
        .state
        .as_str()
        .to_owned()
}

#[test]
fn slack_socket_mode_serves_commands_and_approvals_like_the_http_endpoints() {
    use runtime::channels::slack::socket::SocketModeStatus;
    use tools::sim::slack_envelope;

    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let daemon = socket_mode_daemon(&sim, &dir.path().join("data"), APP_TOKEN).await;
        let store = daemon.state.store.clone();
        let socket = daemon.slack_socket().expect("Socket Mode is on");
        let first = sim.wait_for_slack_connection(1, WAIT).await.unwrap();
        let status = socket
            .wait_for(
                |status| matches!(status, SocketModeStatus::Connected { .. }),
                WAIT,
            )
            .await;
        assert_eq!(status, SocketModeStatus::Connected { connections: 1 });
        // No signing secret, no HTTP endpoints: nothing can reach them unverified.
        let http = reqwest::Client::new();
        let posted = http
            .post(format!("http://{}/slack/commands", daemon.http_addr))
            .body("command=%2Fcc")
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status().as_u16(), 404);

        // `/cc status`: acknowledged with the immediate answer, answered at the response_url.
        sim.slack_socket_send(&slack_envelope(
            "cmd-status",
            "slash_commands",
            slash_payload(&sim, "U0ALICE", "status", "status-1"),
        ))
        .unwrap();
        let acks = sim.wait_for_slack_ack("cmd-status", 1, WAIT).await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].connection, 1);
        let immediate = acks[0]
            .payload
            .clone()
            .expect("the ack carries the immediate answer");
        assert_eq!(immediate["response_type"], "ephemeral");
        assert!(
            immediate["text"]
                .as_str()
                .unwrap()
                .contains("Working on `status`"),
            "{immediate}"
        );
        assert_eq!(sim.wait_for_slack(1, WAIT).await, 1);
        let answered = &sim.slack_responses()[0];
        assert_eq!(answered.response_id, "status-1");
        assert!(!answered.authorization_present, "the URL is the credential");
        assert_eq!(answered.body["response_type"], "in_channel");
        let blocks = answered.body["blocks"].to_string();
        assert!(blocks.contains("Version"), "{blocks}");
        let commands = entries(&store, "chat.command");
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].body["transport"], "socket_mode");

        // Someone the configuration does not know: refused in the ack, journaled, nothing run.
        sim.slack_socket_send(&slack_envelope(
            "cmd-stranger",
            "slash_commands",
            slash_payload(&sim, "U0STRANGER", "pause", "stranger-1"),
        ))
        .unwrap();
        let acks = sim.wait_for_slack_ack("cmd-stranger", 1, WAIT).await;
        let refusal = acks[0].payload.clone().unwrap();
        assert!(
            refusal["text"]
                .as_str()
                .unwrap()
                .contains("does not know you"),
            "{refusal}"
        );
        let refused = entries(&store, "chat.refused");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].subject, "slack:U0STRANGER");
        assert_eq!(refused[0].body["transport"], "socket_mode");
        assert!(
            daemon.state.gate.pauses().unwrap().is_empty(),
            "nothing paused"
        );

        // A redelivered envelope (same envelope_id, as Slack sends one it thinks was not
        // acknowledged) is acknowledged again but runs once.
        let help = slack_envelope(
            "cmd-help",
            "slash_commands",
            slash_payload(&sim, "U0ALICE", "help", "help-1"),
        );
        sim.slack_socket_send(&help).unwrap();
        let mut again = help.clone();
        again["retry_attempt"] = json!(1);
        again["retry_reason"] = json!("timeout");
        sim.slack_socket_send(&again).unwrap();
        let acks = sim.wait_for_slack_ack("cmd-help", 2, WAIT).await;
        assert_eq!(acks.len(), 2);
        assert_eq!(
            acks.iter().filter(|ack| ack.payload.is_some()).count(),
            1,
            "only the first delivery ran: {acks:?}"
        );
        assert_eq!(
            entries(&store, "chat.command").len(),
            2,
            "status and help, once each"
        );

        // Frames that cannot be read are journaled and the connection goes on.
        sim.slack_socket_send_text("this is not JSON {").unwrap();
        sim.slack_socket_send_text(r#"{"envelope_id": "bad-type", "type": 7}"#)
            .unwrap();
        sim.slack_socket_send(&slack_envelope(
            "bad-payload",
            "slash_commands",
            json!({"command": "/cc", "user_id": "U0ALICE"}),
        ))
        .unwrap();
        sim.slack_socket_send(&slack_envelope(
            "event-1",
            "events_api",
            json!({"event": {"type": "app_mention"}}),
        ))
        .unwrap();
        // Acknowledged even though unreadable, or Slack would send them again.
        for envelope_id in ["bad-type", "bad-payload", "event-1"] {
            let acks = sim.wait_for_slack_ack(envelope_id, 1, WAIT).await;
            assert_eq!(acks.len(), 1, "{envelope_id}");
            assert_eq!(acks[0].payload, None, "{envelope_id}");
            assert_eq!(acks[0].connection, 1, "{envelope_id}");
        }
        let refused = entries(&store, "chat.refused");
        let reasons: Vec<String> = refused
            .iter()
            .map(|entry| format!("{}: {}", entry.subject, entry.body["reason"]))
            .collect();
        assert_eq!(refused.len(), 4, "{reasons:?}");
        assert!(
            reasons[1].starts_with("socket_mode: \"not JSON (syntax error"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].contains("field `type` has the wrong type"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].starts_with("slash_commands: ")
                && reasons[3].contains("`response_url` is missing"),
            "{reasons:?}"
        );
        assert_eq!(
            sim.slack_socket_connections().len(),
            1,
            "the same connection"
        );

        // Approvals: a stranger's press decides nothing and is told so; alice's approves
        // through the gate, the restart runs once, and the message shows who decided.
        pending_restart(&daemon, "socket-restart-1").await;
        sim.slack_socket_send(&slack_envelope(
            "act-stranger",
            "interactive",
            button_payload(
                &sim,
                "U0STRANGER",
                "approve:socket-restart-1",
                "stranger-press",
            ),
        ))
        .unwrap();
        assert_eq!(
            sim.wait_for_slack_ack("act-stranger", 1, WAIT).await.len(),
            1
        );
        assert_eq!(sim.wait_for_slack(3, WAIT).await, 3);
        let told = responses_to(&sim, "stranger-press");
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].body["response_type"], "ephemeral");
        assert_eq!(told[0].body["replace_original"], false);
        assert!(
            told[0].body["text"]
                .as_str()
                .unwrap()
                .contains("not allowed to decide")
        );
        assert_eq!(proposal_state(&daemon, "socket-restart-1"), "pending");
        let refused = entries(&store, "chat.refused");
        assert_eq!(refused.len(), 5);
        assert_eq!(refused[4].subject, "slack:U0STRANGER");

        sim.slack_socket_send(&slack_envelope(
            "act-alice",
            "interactive",
            button_payload(&sim, "U0ALICE", "approve:socket-restart-1", "alice-press"),
        ))
        .unwrap();
        let acks = sim.wait_for_slack_ack("act-alice", 1, WAIT).await;
        assert_eq!(acks[0].payload, None, "interactive acks carry nothing");
        assert_eq!(sim.wait_for_slack(4, WAIT).await, 4);
        let decided = responses_to(&sim, "alice-press");
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].body["replace_original"], true);
        let text = decided[0].body["text"].as_str().unwrap();
        assert!(text.contains("approved by alice"), "{text}");
        assert_eq!(proposal_state(&daemon, "socket-restart-1"), "executed");
        assert_eq!(entries(&store, "execution.started").len(), 1);
        let actions = entries(&store, "chat.action");
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].body["transport"], "socket_mode");

        // Slack refreshes the connection: a fresh URL, a new connection, commands go on.
        sim.slack_socket_disconnect("refresh_requested").unwrap();
        let second = sim.wait_for_slack_connection(2, WAIT).await.unwrap();
        assert!(sim.wait_for_slack_connection_closed(1, WAIT).await);
        assert_ne!(second.ticket, first.ticket, "a fresh URL");
        assert_eq!(sim.slack_socket_opens().len(), 2);
        let status = socket
            .wait_for(
                |status| *status == SocketModeStatus::Connected { connections: 2 },
                WAIT,
            )
            .await;
        assert_eq!(status, SocketModeStatus::Connected { connections: 2 });
        sim.slack_socket_send(&slack_envelope(
            "cmd-after-refresh",
            "slash_commands",
            slash_payload(&sim, "U0ALICE", "approvals", "approvals-1"),
        ))
        .unwrap();
        let acks = sim.wait_for_slack_ack("cmd-after-refresh", 1, WAIT).await;
        assert_eq!(acks[0].connection, 2);
        assert_eq!(sim.wait_for_slack(5, WAIT).await, 5);
        assert_eq!(responses_to(&sim, "approvals-1").len(), 1);
        // The redelivered help never ran: one answer only.
        assert_eq!(responses_to(&sim, "help-1").len(), 1);

        // Socket Mode turned off for the app: stop with a clear error, no retries.
        sim.slack_socket_disconnect("link_disabled").unwrap();
        let status = socket
            .wait_for(
                |status| matches!(status, SocketModeStatus::Stopped { .. }),
                WAIT,
            )
            .await;
        let SocketModeStatus::Stopped { error: Some(error) } = status else {
            panic!("stopped with an error: {status:?}");
        };
        assert!(
            error.contains("link_disabled") && error.contains("socket_mode"),
            "{error}"
        );
        assert!(sim.wait_for_slack_connection_closed(2, WAIT).await);
        assert_eq!(sim.slack_socket_opens().len(), 2, "no reconnection");
        let health = daemon.state.health.source("slack_socket").unwrap();
        assert!(health.last_error.unwrap().contains("link_disabled"));

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

#[test]
fn slack_socket_mode_with_a_refused_app_token_stops_with_a_clear_error() {
    use runtime::channels::slack::socket::SocketModeStatus;

    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let daemon =
            socket_mode_daemon(&sim, &dir.path().join("data"), "xapp-invalid-SOCKET-SECRET").await;
        let socket = daemon.slack_socket().expect("Socket Mode is on");
        let status = socket
            .wait_for(|status| matches!(status, SocketModeStatus::Stopped { .. }), WAIT)
            .await;
        let SocketModeStatus::Stopped { error: Some(error) } = status else {
            panic!("stopped with an error: {status:?}");
        };
        assert!(
            error.starts_with("channels.slack.app_token: Slack refused the app-level token: apps.connections.open answered invalid_auth"),
            "{error}"
        );
        assert!(error.contains("App-Level Tokens"), "says what to do: {error}");
        assert!(!error.contains("SOCKET-SECRET"), "the token leaked: {error}");
        // Refused once, not retried; no connection made.
        let opens = sim.slack_socket_opens();
        assert_eq!(opens.len(), 1);
        assert_eq!(opens[0].error.as_deref(), Some("invalid_auth"));
        assert!(sim.slack_socket_connections().is_empty());
        let health = daemon.state.health.source("slack_socket").unwrap();
        assert!(health.last_error.unwrap().contains("invalid_auth"));
        // The token is in no journal entry either.
        let journal = serde_json::to_string(
            &daemon
                .state
                .store
                .journal()
                .query(&JournalQuery::default())
                .unwrap(),
        )
        .unwrap();
        assert!(!journal.contains("SOCKET-SECRET"));

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

#[test]
fn slack_socket_mode_replaces_a_silent_connection_and_stops_cleanly() {
    use runtime::channels::slack::SlackService;
    use runtime::channels::slack::socket::{SocketModeSettings, SocketModeStatus, start};

    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        // The channel on its own, with a quick keepalive: pings every 100 ms, a connection
        // silent for 200 ms is replaced.
        let retry = tools::http::RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_secs(2),
        };
        let client = tools::slack::SlackClient::new(
            &sim.slack_api_url(),
            Secret::new("xoxb-test-token"),
            1000.0,
            retry.clone(),
        )
        .unwrap();
        let service = SlackService::new(daemon.state.clone(), std::sync::Arc::new(client), &[]);
        let mut settings =
            SocketModeSettings::new(Secret::new(APP_TOKEN), &sim.slack_api_url(), retry);
        settings.ping_interval = Duration::from_millis(100);
        settings.reconnect_initial = Duration::from_millis(10);
        settings.reconnect_max = Duration::from_millis(50);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let socket = start(service, settings, stop_rx).unwrap();
        assert!(sim.wait_for_slack_connection(1, WAIT).await.is_some());
        let status = socket
            .wait_for(
                |status| matches!(status, SocketModeStatus::Connected { .. }),
                WAIT,
            )
            .await;
        assert_eq!(status, SocketModeStatus::Connected { connections: 1 });
        // Pongs keep a quiet connection alive: without them the client would give up before
        // its third ping (200 ms of silence), so three pings on the first connection, still
        // open and still the only one, show the keepalive working.
        let pinged = sim.wait_for_slack_pings(1, 3, WAIT).await.unwrap();
        assert!(pinged.open);
        assert_eq!(sim.slack_socket_connections().len(), 1);

        // The peer goes silent without closing: no pong comes back, and the connection is
        // replaced by a new one with a fresh URL.
        sim.slack_socket_go_silent().unwrap();
        let second = sim.wait_for_slack_connection(2, WAIT).await.unwrap();
        assert_eq!(sim.slack_socket_opens().len(), 2);
        assert_ne!(second.ticket, sim.slack_socket_connections()[0].ticket);
        let status = socket
            .wait_for(
                |status| *status == SocketModeStatus::Connected { connections: 2 },
                WAIT,
            )
            .await;
        assert_eq!(status, SocketModeStatus::Connected { connections: 2 });
        sim.slack_socket_send(&tools::sim::slack_envelope(
            "event-after-silence",
            "events_api",
            json!({"event": {}}),
        ))
        .unwrap();
        let acks = sim.wait_for_slack_ack("event-after-silence", 1, WAIT).await;
        assert_eq!(acks[0].connection, 2);
        let health = daemon.state.health.source("slack_socket").unwrap();
        assert_eq!(
            health.consecutive_failures, 0,
            "healthy again after the hello"
        );

        // Shutdown closes the connection and ends the task.
        stop.send_replace(true);
        let status = socket
            .wait_for(
                |status| matches!(status, SocketModeStatus::Stopped { .. }),
                WAIT,
            )
            .await;
        assert_eq!(status, SocketModeStatus::Stopped { error: None });
        assert!(sim.wait_for_slack_connection_closed(2, WAIT).await);
        socket.join(Duration::from_secs(5)).await;
        assert_eq!(
            sim.slack_socket_opens().len(),
            2,
            "no reconnection after the stop"
        );

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

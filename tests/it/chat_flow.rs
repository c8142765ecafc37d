//! The whole road from a validator alert to an operation, through both chats: a node goes down
//! in the simulated world, the validators agent proposes a restart, the approval request
//! reaches Telegram and Slack with its buttons, one person approves on Telegram and a second on
//! Slack, the restart runs once, both chats show the outcome, and the audit log holds each step.

use std::time::Duration;

use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};
use serde_json::json;
use tools::secret::Secret;
use tools::sim::{SimNode, SimValidator, SimWorld, TelegramInjected};

use crate::support::{
    config_for, echo_program, point_chain_at, quiet_scenario, sim_validator, system, tick,
    workspace_root,
};

const ALICE: i64 = 1001;
const SIGNING_SECRET: &str = "flow-signing-secret";
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn a_validator_alert_is_approved_on_telegram_and_slack_and_runs_once() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut scenario = quiet_scenario();
        scenario.validators = vec![SimValidator {
            // The validator service is down from the start.
            node: Some(SimNode {
                down_at: Some(Duration::ZERO),
                ..SimNode::default()
            }),
            ..sim_validator(
                "v1",
                "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                500_000.0,
                400_000.0,
            )
        }];
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        // The company's policies plus one: node operations need two people.
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        for file in ["default.cedar", "schema.cedarschema"] {
            std::fs::copy(
                workspace_root().join("policies").join(file),
                policies.join(file),
            )
            .unwrap();
        }
        std::fs::write(
            policies.join("two-people.cedar"),
            r#"@id("validators-commands-two-people")
@approvals("2")
@reason("node operations need two people")
forbid (principal is Agent, action == Action::"execute", resource)
when { resource.domain == "validators" && resource.kind == "command" };
"#,
        )
        .unwrap();

        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.daemon.policies_dir = policies;
        point_chain_at(&mut config, &sim);
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = Duration::from_secs(3600);
        watched.poll_on_start = false;
        watched.check_releases = false;
        watched.validators = vec![agents::validators::WatchedValidator {
            name: "v1".into(),
            wallet: "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            metrics_url: Some(sim.metrics_url("v1")),
            ..Default::default()
        }];
        echo_program(&mut config, "restart_validator", &["{validator}"]);
        for user in [
            json!({ "name": "alice", "roles": ["operator"], "telegram_id": ALICE }),
            json!({ "name": "carol", "roles": ["operator"], "slack_id": "U0CAROL" }),
        ] {
            config
                .access
                .users
                .push(serde_json::from_value(user).unwrap());
        }
        let telegram = &mut config.channels.telegram;
        telegram.enabled = true;
        telegram.bot_token = Some(Secret::new("123456:FLOW-token"));
        telegram.api_url = sim.telegram_api_url();
        telegram.long_poll = Duration::from_secs(1);
        let slack = &mut config.channels.slack;
        slack.enabled = true;
        slack.signing_secret = Some(Secret::new(SIGNING_SECRET));
        slack.bot_token = Some(Secret::new("xoxb-flow"));
        slack.api_base_url = sim.slack_api_url();
        for receiver in [
            json!({ "name": "phone", "kind": "telegram", "chat": ALICE.to_string() }),
            json!({ "name": "ops", "kind": "slack", "channel": "C0OPS" }),
        ] {
            config
                .alerting
                .receivers
                .push(serde_json::from_value(receiver).unwrap());
        }
        for route in [
            json!({ "matchers": ["domain=validators"], "receiver": "phone", "continue": true }),
            json!({ "matchers": ["domain=validators"], "receiver": "ops" }),
        ] {
            config
                .alerting
                .route
                .routes
                .push(serde_json::from_value(route).unwrap());
        }
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let agent = daemon.agent("validators").unwrap().clone();
        let store = daemon.state.store.clone();

        // The node is down: the alert fires and a restart is proposed, waiting for two people.
        let report = tick(&sim, &agent).await.unwrap().unwrap();
        assert!(
            report
                .alerts
                .contains(&"validators.service_down/v1".to_owned()),
            "{:?}",
            report.alerts
        );
        let pending = daemon.state.gate.list(None).unwrap();
        assert_eq!(pending.len(), 1);
        let id = pending[0].proposal.id.clone();
        assert!(id.starts_with("validators.restart_node.v1."), "{id}");
        assert_eq!(pending[0].approvals_needed(), 2);

        // The request reaches both chats with its buttons.
        let approve = format!("approve:{id}");
        // Event waits, no sleeps: each wait returns as soon as the k-th call has arrived.
        let mut telegram_request = None;
        for count in 1..=10 {
            let sent = sim.wait_for_telegram("sendMessage", count, WAIT).await;
            telegram_request = sent
                .iter()
                .position(|call| call.params["reply_markup"].to_string().contains(&approve));
            if telegram_request.is_some() || sent.len() < count {
                break;
            }
        }
        let telegram_request = telegram_request.expect("the request with buttons on Telegram");
        let message_id = 100 + i32::try_from(telegram_request).unwrap();
        let slack_has = |needle: &str, in_blocks: bool| {
            sim.slack_calls().iter().any(|call| {
                if in_blocks {
                    call.blocks
                        .as_ref()
                        .is_some_and(|blocks| blocks.to_string().contains(needle))
                } else {
                    call.text
                        .as_deref()
                        .is_some_and(|text| text.contains(needle))
                }
            })
        };
        for count in 1..=10 {
            let recorded = sim.wait_for_slack(count, WAIT).await;
            if slack_has(&approve, true) || recorded < count {
                break;
            }
        }
        assert!(slack_has(&approve, true), "{:#?}", sim.slack_calls());

        // Alice taps Approve on Telegram: one of two.
        sim.telegram_inject(TelegramInjected::CallbackQuery {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            message_id,
            data: approve.clone(),
        });
        let answered = sim.wait_for_telegram("answerCallbackQuery", 1, WAIT).await;
        let first = answered[0].params["text"].as_str().unwrap();
        assert!(first.contains("approved by alice (pending)"), "{first}");

        // Carol approves on Slack: the second person; the restart runs.
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U0CAROL"},
            "channel": {"id": "C0OPS"},
            "container": {"type": "message", "message_ts": "1.1", "channel_id": "C0OPS"},
            "response_url": sim.slack_response_url("carol-approve"),
            "actions": [{"action_id": approve, "type": "button", "value": id}],
        });
        let body = format!(
            "payload={}",
            payload
                .to_string()
                .bytes()
                .map(|byte| match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        char::from(byte).to_string()
                    }
                    _ => format!("%{byte:02X}"),
                })
                .collect::<String>()
        );
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            tools::slack::sign_request(&Secret::new(SIGNING_SECRET), timestamp, body.as_bytes());
        let response = reqwest::Client::new()
            .post(format!("http://{}/slack/actions", daemon.http_addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let second = response.text().await.unwrap();
        assert!(second.contains("approved by carol (executed)"), "{second}");
        let record = daemon.state.gate.get(&id).unwrap().unwrap();
        assert_eq!(record.state.as_str(), "executed");
        let voters: Vec<&str> = record
            .approvals
            .iter()
            .map(|vote| vote.user.as_str())
            .collect();
        assert_eq!(voters, ["alice", "carol"]);

        // Both chats show the outcome.
        let telegram_has = |needle: &str, calls: &[tools::sim::TelegramCall]| {
            calls
                .iter()
                .any(|call| call.params["text"].as_str().unwrap_or("").contains(needle))
        };
        for count in 1..=20 {
            let sent = sim.wait_for_telegram("sendMessage", count, WAIT).await;
            if telegram_has("command executed", &sent) || sent.len() < count {
                break;
            }
        }
        assert!(
            telegram_has(
                "command executed",
                &sim.wait_for_telegram("sendMessage", 1, WAIT).await
            ),
            "{:#?}",
            sim.telegram_calls()
        );
        for count in 1..=20 {
            let recorded = sim.wait_for_slack(count, WAIT).await;
            if slack_has("command executed", false) || recorded < count {
                break;
            }
        }
        assert!(
            slack_has("command executed", false),
            "{:#?}",
            sim.slack_calls()
        );

        // Once, and every step is in the audit log.
        let kinds: Vec<String> = store
            .journal()
            .query(&JournalQuery::default())
            .unwrap()
            .into_iter()
            .filter(|entry| {
                entry.subject.contains(&id)
                    || entry.kind.starts_with("chat.")
                    || entry.subject == "validators.service_down/v1"
            })
            .map(|entry| entry.kind)
            .collect();
        for kind in [
            "alert.firing",
            "proposal.received",
            "decision.made",
            "approval.requested",
            "approval.granted",
            "chat.action",
            "execution.started",
            "execution.finished",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
        }
        assert_eq!(
            kinds.iter().filter(|k| *k == "execution.started").count(),
            1,
            "{kinds:?}"
        );
        assert_eq!(kinds.iter().filter(|k| *k == "chat.action").count(), 2);

        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

//! Telegram end to end: teloxide pointed at the simulated Bot API on 127.0.0.1. Commands are
//! registered, a configured person's messages are answered in MarkdownV2, strangers get a
//! polite refusal (journaled, nothing changed), and an Approve button decides through the gate
//! and replaces the buttons with who decided.

use std::time::Duration;

use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};
use serde_json::json;
use tools::secret::Secret;
use tools::sim::{SimWorld, TelegramInjected};

use crate::support::{config_for, echo_program, quiet_scenario, system};

const ALICE: i64 = 1001;
const STRANGER: i64 = 2002;
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn telegram_commands_refusals_and_an_approval_button() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        let telegram = &mut config.channels.telegram;
        telegram.enabled = true;
        telegram.bot_token = Some(Secret::new("123456:TEST-token-for-the-sim"));
        telegram.api_url = sim.telegram_api_url();
        telegram.long_poll = Duration::from_secs(1);
        config.access.users.push(
            serde_json::from_value(
                json!({ "name": "alice", "roles": ["operator"], "telegram_id": ALICE }),
            )
            .unwrap(),
        );
        echo_program(&mut config, "restart_validator", &["{validator}"]);
        // Validator alerts also go to alice's chat (the rest to the default receiver).
        config.alerting.receivers.push(
            serde_json::from_value(
                json!({ "name": "alice-phone", "kind": "telegram", "chat": ALICE.to_string() }),
            )
            .unwrap(),
        );
        config.alerting.route.routes.push(
            serde_json::from_value(
                json!({ "matchers": ["domain=validators"], "receiver": "alice-phone" }),
            )
            .unwrap(),
        );
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let store = daemon.state.store.clone();

        // The command menu is registered at start.
        let registered = sim.wait_for_telegram("setMyCommands", 1, WAIT).await;
        assert_eq!(registered.len(), 1);
        let listed = registered[0].params["commands"].to_string();
        assert!(listed.contains("validators"), "{listed}");

        // A configured person asks for help: answered in MarkdownV2.
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/help".into(),
        });
        let sent = sim.wait_for_telegram("sendMessage", 1, WAIT).await;
        assert_eq!(sent[0].status, 200, "{:?}", sent[0]);
        assert_eq!(sent[0].params["parse_mode"], "MarkdownV2");
        let help = sent[0].params["text"].as_str().unwrap();
        assert!(help.contains("validators"), "{help}");

        // A stranger: a polite refusal, journaled, nothing run.
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: STRANGER,
            user_id: STRANGER,
            username: None,
            text: "/pause".into(),
        });
        let sent = sim.wait_for_telegram("sendMessage", 2, WAIT).await;
        let refusal = sent[1].params["text"].as_str().unwrap();
        assert_eq!(sent[1].params["chat_id"], STRANGER);
        assert!(refusal.contains("only serves its team"), "{refusal}");
        assert!(daemon.state.gate.pauses().unwrap().is_empty());

        // A proposal waiting for an operator, listed with buttons, approved with one tap.
        let proposal: policies::Proposal = serde_json::from_value(json!({
            "id": "tg-restart-1",
            "proposer": {"type": "agent", "name": "validators", "domain": "validators"},
            "operation": {
                "kind": "command", "domain": "validators", "risk": "medium",
                "target": "validator-1",
                "parameters": {"command": "restart_validator", "vars": {"validator": "validator-1"}}
            },
            "rationale": "node out of sync"
        }))
        .unwrap();
        daemon.state.gate.submit(proposal).await.unwrap();
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/approvals".into(),
        });
        let sent = sim.wait_for_telegram("sendMessage", 4, WAIT).await;
        // The approval request itself arrives too: the gate's alert, routed to alice's chat.
        assert!(
            sent.iter().any(|call| call.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("approval needed")),
            "{sent:#?}"
        );
        let listing = sent
            .iter()
            .position(|call| {
                call.params["reply_markup"]
                    .to_string()
                    .contains("approve:tg-restart-1")
            })
            .unwrap_or_else(|| panic!("{sent:#?}"));
        // The sim numbers the bot's messages from 100, in the order it received them.
        let message_id = 100 + i32::try_from(listing).unwrap();
        // A stranger's press decides nothing.
        sim.telegram_inject(TelegramInjected::CallbackQuery {
            chat_id: ALICE,
            user_id: STRANGER,
            username: None,
            message_id,
            data: "approve:tg-restart-1".into(),
        });
        sim.telegram_inject(TelegramInjected::CallbackQuery {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            message_id,
            data: "approve:tg-restart-1".into(),
        });
        let answered = sim.wait_for_telegram("answerCallbackQuery", 2, WAIT).await;
        assert_eq!(answered.len(), 2);
        assert!(
            answered[0].params["text"]
                .as_str()
                .unwrap()
                .contains("not allowed")
        );
        assert!(
            answered[1].params["text"]
                .as_str()
                .unwrap()
                .contains("approved by alice"),
            "{:?}",
            answered[1].params
        );
        let edited = sim.wait_for_telegram("editMessageText", 1, WAIT).await;
        assert_eq!(edited[0].params["message_id"], message_id);
        assert!(
            edited[0].params["text"]
                .as_str()
                .unwrap()
                .contains("approved by alice")
        );
        let record = daemon.state.gate.get("tg-restart-1").unwrap().unwrap();
        assert_eq!(record.state.as_str(), "executed");

        // Silences and acknowledgements go to the alert router as the caller.
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/silence rule=low_efficiency 2h node maintenance".into(),
        });
        // Both the outcome of the execution (routed to alice's chat) and the answer arrive.
        let texts = |calls: &[tools::sim::TelegramCall]| -> Vec<String> {
            calls
                .iter()
                .map(|call| call.params["text"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let sent = texts(&sim.wait_for_telegram("sendMessage", 6, WAIT).await);
        assert!(
            sent.iter().any(|text| text.contains("command executed")),
            "{sent:#?}"
        );
        assert!(
            sent.iter().any(|text| text.contains("Silenced")),
            "{sent:#?}"
        );
        let silences = daemon.state.router.silences().await;
        assert_eq!(silences.len(), 1);
        assert_eq!(silences[0].created_by, "alice");
        assert_eq!(silences[0].comment, "node maintenance");
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/ack validators.nothing/here".into(),
        });
        let sent = texts(&sim.wait_for_telegram("sendMessage", 7, WAIT).await);
        assert!(
            sent.iter().any(|text| text.contains("No such alert")),
            "{sent:#?}"
        );

        // An alert routed to the chat arrives as a message.
        let now = chrono::Utc::now();
        let alert = agents::Alert {
            key: "validators.out_of_sync/validator-1".into(),
            rule: "out_of_sync".into(),
            status: agents::AlertStatus::Firing,
            severity: agents::Severity::Critical,
            summary: "validator-1: node is 300s behind the masterchain (limit 120s)".into(),
            labels: [
                ("domain".to_owned(), "validators".to_owned()),
                ("validator".to_owned(), "validator-1".to_owned()),
            ]
            .into_iter()
            .collect(),
            evidence: json!({}),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        daemon.state.router.ingest(alert, now).await.unwrap();
        let sent = sim.wait_for_telegram("sendMessage", 8, WAIT).await;
        let delivered = sent
            .iter()
            .find(|call| {
                call.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("300s behind")
            })
            .unwrap_or_else(|| panic!("{sent:#?}"));
        assert_eq!(delivered.params["chat_id"], ALICE);
        assert!(
            delivered.params["text"]
                .as_str()
                .unwrap()
                .contains("CRITICAL")
        );

        let journal = |kind: &str| {
            store
                .journal()
                .query(&JournalQuery {
                    kind: Some(kind.into()),
                    ..Default::default()
                })
                .unwrap()
        };
        assert_eq!(
            journal("chat.refused").len(),
            2,
            "the stranger's message and press"
        );
        assert_eq!(journal("chat.command").len(), 4);
        assert_eq!(journal("chat.action").len(), 1);
        daemon.shutdown("test done").await.unwrap();
        sim.shutdown();
    });
}

#[test]
fn telegram_webhook_mode_takes_only_updates_with_the_secret_token() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        let port = crate::support::free_port();
        config.daemon.http_listen = format!("127.0.0.1:{port}").parse().unwrap();
        let telegram = &mut config.channels.telegram;
        telegram.enabled = true;
        telegram.bot_token = Some(Secret::new("123456:TEST-token-for-the-sim"));
        telegram.api_url = sim.telegram_api_url();
        let hook = format!("http://127.0.0.1:{port}/telegram/webhook");
        telegram.webhook_url = Some(hook.clone());
        telegram.webhook_secret = Some(Secret::new("hook-secret_0123456789"));
        config.access.users.push(
            serde_json::from_value(
                json!({ "name": "alice", "roles": ["operator"], "telegram_id": ALICE }),
            )
            .unwrap(),
        );
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let store = daemon.state.store.clone();

        // setWebhook with the URL, the secret token and the two update kinds the bot reads;
        // nobody polls.
        let set = sim.wait_for_telegram("setWebhook", 1, WAIT).await;
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].params["url"], hook.as_str());
        assert_eq!(set[0].params["secret_token"], "hook-secret_0123456789");
        assert_eq!(
            set[0].params["allowed_updates"],
            json!(["message", "callback_query"])
        );

        // Telegram (the sim) pushes a message: answered like a polled one.
        let update_id = sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/help".into(),
        });
        let sent = sim.wait_for_telegram("sendMessage", 1, WAIT).await;
        assert_eq!(sent.len(), 1, "{:?}", sim.telegram_webhook_deliveries());
        assert!(
            sent[0].params["text"]
                .as_str()
                .unwrap()
                .contains("validators")
        );
        let pushed = sim.wait_for_telegram_webhook(1, WAIT).await;
        assert_eq!(pushed, [(update_id, 200)]);

        // Forged requests: no token, a wrong token, a body that is no update.
        let client = reqwest::Client::new();
        let forged = json!({"update_id": 1, "message": {
            "message_id": 1, "date": 0, "text": "/pause",
            "chat": {"id": ALICE, "type": "private", "first_name": "A"},
            "from": {"id": ALICE, "is_bot": false, "first_name": "A"}}});
        let without = client.post(&hook).json(&forged).send().await.unwrap();
        assert_eq!(without.status(), 401);
        let wrong = client
            .post(&hook)
            .header("X-Telegram-Bot-Api-Secret-Token", "hook-secret_0123456780")
            .json(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let garbage = client
            .post(&hook)
            .header("X-Telegram-Bot-Api-Secret-Token", "hook-secret_0123456789")
            .body("{\"message\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
        assert!(daemon.state.gate.pauses().unwrap().is_empty());

        // Telegram delivering the same update twice (say, our answer was lost): handled once.
        let mut again = forged.clone();
        again["update_id"] = json!(update_id);
        again["message"]["text"] = json!("/status");
        let repeated = client
            .post(&hook)
            .header("X-Telegram-Bot-Api-Secret-Token", "hook-secret_0123456789")
            .json(&again)
            .send()
            .await
            .unwrap();
        assert_eq!(repeated.status(), 200);
        // A later update goes through, and is the second answer: the repeat was dropped.
        sim.telegram_inject(TelegramInjected::Message {
            chat_id: ALICE,
            user_id: ALICE,
            username: Some("alice".into()),
            text: "/help".into(),
        });
        let sent = sim.wait_for_telegram("sendMessage", 2, WAIT).await;
        assert_eq!(sent.len(), 2);
        assert!(
            sent[1].params["text"]
                .as_str()
                .unwrap()
                .contains("validators")
        );

        // While the webhook is set, getUpdates would be refused: the bot never polls.
        assert!(
            sim.telegram_calls()
                .iter()
                .all(|call| call.method != "getUpdates")
        );
        let refused = store
            .journal()
            .query(&JournalQuery {
                kind: Some("chat.refused".into()),
                ..Default::default()
            })
            .unwrap();
        let reasons: Vec<&str> = refused
            .iter()
            .map(|entry| entry.body["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "webhook request without the secret token",
                "webhook request with a wrong secret token",
                "malformed update"
            ]
        );
        let journal =
            serde_json::to_string(&store.journal().query(&JournalQuery::default()).unwrap())
                .unwrap();
        assert!(
            !journal.contains("hook-secret_0123456789"),
            "the secret is never journaled"
        );
        daemon.shutdown("test over").await.unwrap();
    });
}

//! The conversation agent in a running daemon, its model a scripted OpenAI-compatible server:
//! a free question is answered from a tool's result, "restart validator-1" becomes a proposal
//! the gate holds for approval (nothing runs), and when the model is out of quota the person
//! still gets the no-LLM answer.

use memory::JournalQuery;
use runtime::commands::{Caller, Context, respond};
use runtime::daemon::{Daemon, RunOptions};
use tools::sim::SimWorld;
use tools::sim::openai::{Scripted, ScriptedOpenAi};

use crate::support::{config_for, quiet_scenario, system, workspace_root};
use crate::support::{scripted_reasoner, touch_program, user};

#[test]
fn free_questions_go_through_the_reasoner_and_the_gate() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let model = ScriptedOpenAi::start().await.unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.daemon.prompts_dir = workspace_root().join("prompts");
        scripted_reasoner(&mut config, &model, "sk-conversation-test-key");
        let marker = dir.path().join("restarted");
        touch_program(&mut config, &marker);
        config.access.users.push(user("alice", &["operator"], None));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let context = Context::from_app(
            &daemon.state,
            Caller {
                name: "alice".into(),
                roles: vec!["operator".into()],
            },
        );

        // A question: the model asks for the alerts, then answers from them.
        model.push([
            Scripted::tool_calls(&[("call_1", "firing_alerts", "{}")], 400),
            Scripted::reply("Nothing is firing right now.", 500, 12),
        ]);
        let answer = respond("is anything on fire?", &context).await;
        assert_eq!(answer.title, "Answer");
        assert_eq!(answer.paragraphs[0], "Nothing is firing right now.");
        assert_eq!(answer.tables[0].rows[0][0], "firing_alerts");
        let requests = model.requests();
        let first = &requests[0].body;
        let offered: Vec<&str> = first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect();
        assert!(offered.contains(&"propose_action"), "{offered:?}");
        assert!(offered.contains(&"validator_status"), "{offered:?}");
        let system_prompt = first["messages"][0]["content"].as_str().unwrap();
        assert!(system_prompt.contains("talking with alice (roles: operator)"), "{system_prompt}");
        assert_eq!(
            first["messages"][1]["content"],
            "<untrusted source=\"user:alice\">is anything on fire?</untrusted>"
        );
        let fed = requests[1].body["messages"][3]["content"].as_str().unwrap();
        assert!(fed.contains("\"alerts\""), "{fed}");

        // An operation asked for in words: proposed to the gate, which waits for an approval.
        model.push([
            Scripted::tool_calls(
                &[(
                    "call_2",
                    "propose_action",
                    r#"{"operation": {"kind": "command", "domain": "validators", "risk": "medium", "target": "validator-1", "parameters": {"command": "restart_validator", "vars": {}}}, "rationale": "alice asked for a restart"}"#,
                )],
                600,
            ),
            Scripted::reply("I proposed the restart; it waits for an operator's approval.", 700, 15),
        ]);
        let answer = respond("please restart validator-1", &context).await;
        assert!(answer.paragraphs[0].contains("waits for"), "{answer:?}");
        let pending = daemon
            .state
            .gate
            .list(Some(runtime::gate::ProposalState::Pending))
            .unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert!(!marker.exists(), "nothing ran without the approval");
        // The history went along: the earlier exchange is in the second question's messages.
        let third = &model.requests()[2].body["messages"];
        assert_eq!(third[2]["content"], "Nothing is firing right now.");

        // Out of quota: the no-LLM answer, saying why.
        model.push([Scripted::error(
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota",
        )]);
        let answer = respond("how much did the validators earn?", &context).await;
        assert_eq!(answer.title, "Answered without the language model");
        assert!(answer.paragraphs[0].contains("insufficient_quota"), "{answer:?}");
        assert!(
            answer.tables[0]
                .rows
                .iter()
                .any(|row| row[0].starts_with("/earnings")),
            "{answer:?}"
        );

        let store = daemon.state.store.clone();
        let kinds: Vec<String> = store
            .journal()
            .query(&JournalQuery {
                kind: Some("conversation.*".into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|entry| entry.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "conversation.answered",
                "conversation.answered",
                "conversation.failed"
            ]
        );
        let everything =
            serde_json::to_string(&store.journal().query(&JournalQuery::default()).unwrap())
                .unwrap();
        assert!(!everything.contains("sk-conversation-test-key"));
        daemon.shutdown("test over").await.unwrap();
    });
}

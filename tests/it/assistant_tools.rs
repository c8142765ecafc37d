//! The reasoner's tools inside a running daemon (`AssistantContext::from_app`): prices the
//! market agent stored from the simulated CoinGecko, and a restart proposed through the same
//! gate as everything else, which waits for an approval and runs nothing.

use runtime::assistant::{AssistantContext, registry};
use runtime::commands::Caller;
use runtime::daemon::{Daemon, RunOptions};
use serde_json::{Value, json};
use tools::sim::SimWorld;

use crate::support::{config_for, quiet_scenario, system, tick};
use crate::support::{touch_program, user};

#[test]
fn tools_read_the_daemons_data_and_propose_through_its_gate() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        let marker = dir.path().join("restarted");
        touch_program(&mut config, &marker);
        // Someone who may approve; without one the gate denies what needs an approval.
        config.access.users.push(user("alice", &["operator"], None));
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let market = daemon.agent("market").unwrap().clone();
        tick(&sim, &market).await.unwrap().unwrap();

        let context = AssistantContext::from_app(
            &daemon.state,
            Caller {
                name: "alice".into(),
                roles: vec!["operator".into()],
            },
            "it:1",
        );
        let tools = registry(&context);
        let call = |name: &'static str, arguments: Value| {
            let tools = tools.clone();
            async move {
                let call = tools.call(name, &arguments.to_string()).await;
                serde_json::from_str::<Value>(&call.content).unwrap()
            }
        };

        let prices = call("market_prices", json!({})).await;
        let ton = prices["prices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|quote| quote["symbol"] == "TON")
            .unwrap_or_else(|| panic!("{prices}"));
        assert_eq!(ton["price"], 5.0);

        let alerts = call("firing_alerts", json!({})).await;
        assert_eq!(alerts["alerts"], json!([]), "{alerts}");

        let decision = call(
            "propose_action",
            json!({
                "operation": {
                    "kind": "command", "domain": "validators", "risk": "medium",
                    "target": "validator-1",
                    "parameters": {"command": "restart_validator"}
                },
                "rationale": "out of sync for an hour"
            }),
        )
        .await;
        assert_eq!(decision["decision"], "needs_approval", "{decision}");
        assert_eq!(decision["state"], "pending");
        let id = decision["proposal_id"].as_str().unwrap().to_owned();

        let pending = call("pending_approvals", json!({})).await;
        assert_eq!(pending["pending"][0]["id"], id.as_str(), "{pending}");
        let audit = call(
            "audit_search",
            json!({"kind": "decision.*", "text": id.as_str()}),
        )
        .await;
        assert_eq!(audit["entries"][0]["subject"], id.as_str(), "{audit}");
        let executions = call("audit_search", json!({"kind": "execution.*"})).await;
        assert_eq!(executions["entries"], json!([]), "{executions}");
        assert!(!marker.exists(), "nothing ran");

        daemon.shutdown("test done").await.unwrap();
    });
}

//! Hot reload of the policy set: a broken change is rejected, the old set stays in force, an
//! alert fires and the journal says so; a good change takes effect and resolves the alert.

use std::time::Duration;

use memory::JournalQuery;
use runtime::daemon::{Daemon, RunOptions};
use runtime::policy_watch::ReloadOutcome;
use tools::sim::SimWorld;

use crate::support::{config_for, quiet_scenario, system, workspace_root};

fn copy_policies(to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["schema.cedarschema", "default.cedar"] {
        std::fs::copy(workspace_root().join("policies").join(name), to.join(name)).unwrap();
    }
}

#[test]
fn a_broken_policy_change_is_rejected_and_the_old_set_stays() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        copy_policies(&policies);
        let sim = SimWorld::start(quiet_scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = config_for(&sim.coingecko_url(), &dir.path().join("data"));
        config.daemon.policies_dir = policies.clone();
        config.daemon.policy_reload_interval = Duration::from_secs(3600);
        config
            .notify
            .webhooks
            .push(crate::support::ops_webhook(&sim, None));
        let daemon = Daemon::start(config.clone(), RunOptions::default())
            .await
            .unwrap();
        let holder = daemon.state.policies.clone();
        assert_eq!(holder.engine().summary().policies, 13);
        assert_eq!(holder.reload().await, ReloadOutcome::Unchanged);

        // Someone saves a broken file.
        std::fs::write(
            policies.join("extra.cedar"),
            "permit (principal is Agent, action == Action::\"execute\", resource)\nwhen { resource.colour == \"red\" };\n",
        )
        .unwrap();
        let ReloadOutcome::Rejected { problems } = holder.reload().await else {
            panic!("a broken set must be rejected");
        };
        assert!(problems[0].contains("extra.cedar:2:"), "{problems:?}");
        assert_eq!(holder.engine().summary().policies, 13, "the old set stays in force");
        let hooks = sim.wait_for_webhooks(1, Duration::from_secs(10)).await;
        assert_eq!(hooks[0].body["event"], "alert.firing");
        assert_eq!(hooks[0].body["rule"], "policy_reload");
        let status = runtime::http::status_report(&daemon.state).unwrap();
        assert!(status.policies.rejected_change.is_some());
        assert_eq!(status.firing_alerts.len(), 1);
        // Asking again does not alert again for the same broken content.
        assert_eq!(holder.reload().await, ReloadOutcome::Unchanged);

        // The fix takes effect and resolves the alert.
        std::fs::write(
            policies.join("extra.cedar"),
            "@id(\"validators-restart-auto\")\npermit (principal is Agent, action == Action::\"execute\", resource)\nwhen { resource.kind == \"command\" && resource.risk == \"low\" };\n",
        )
        .unwrap();
        assert_eq!(holder.reload().await, ReloadOutcome::Reloaded { policies: 14 });
        assert!(holder.engine().policy("validators-restart-auto").is_some());
        let hooks = sim.wait_for_webhooks(2, Duration::from_secs(10)).await;
        assert_eq!(hooks[1].body["event"], "alert.resolved");
        let status = runtime::http::status_report(&daemon.state).unwrap();
        assert!(status.policies.rejected_change.is_none());
        assert!(status.firing_alerts.is_empty());

        let store = daemon.state.store.clone();
        daemon.shutdown("test").await.unwrap();
        let kinds: Vec<String> = store
            .journal()
            .query(&JournalQuery {
                kind: Some("policy.*".into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|entry| entry.kind)
            .collect();
        assert_eq!(
            kinds,
            ["policy.loaded", "policy.reload_rejected", "policy.reloaded"]
        );
        drop(store);

        // A daemon does not start on a broken set.
        std::fs::write(policies.join("extra.cedar"), "permit (principal,").unwrap();
        let error = Daemon::start(config, RunOptions::default())
            .await
            .err()
            .expect("a broken set stops the start");
        let invalid = error
            .downcast_ref::<runtime::policy_watch::InvalidPolicies>()
            .expect("InvalidPolicies");
        assert!(invalid.problems[0].contains("extra.cedar"), "{invalid}");
    });
}

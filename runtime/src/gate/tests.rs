use std::collections::BTreeMap;
use std::path::PathBuf;

use policies::{Operation, Risk};
use tokio::sync::mpsc;

use super::*;
use crate::config::UserConfig;
use crate::executors::{CommandExecutorConfig, ExecutorsConfig};

struct Harness {
    gate: Gatekeeper,
    alerts: mpsc::UnboundedReceiver<Alert>,
    store: memory::Store,
    dir: tempfile::TempDir,
}

fn user(name: &str, roles: &[&str]) -> UserConfig {
    UserConfig {
        name: name.into(),
        roles: roles.iter().map(|role| role.to_string()).collect(),
        token_sha256: None,
        telegram_id: None,
        slack_id: None,
    }
}

async fn harness() -> Harness {
    let fixture = crate::test_support::gate_fixture(
        |_| ExecutorsConfig {
            command: CommandExecutorConfig {
                programs: BTreeMap::from([(
                    "mark".to_owned(),
                    crate::test_support::program("/usr/bin/touch", vec!["{path}".into()]),
                )]),
            },
            ..ExecutorsConfig::default()
        },
        vec![
            user("alice", &["operator"]),
            user("bob", &["treasurer"]),
            user("carol", &["treasurer"]),
            user("dave", &["treasurer"]),
            user("mallory", &[]),
        ],
    )
    .await;
    Harness {
        gate: fixture.gate,
        alerts: fixture.alerts,
        store: fixture.store,
        dir: fixture.dir,
    }
}

fn agent_proposal(id: &str, kind: &str, parameters: serde_json::Value) -> Proposal {
    Proposal {
        id: id.into(),
        proposer: Proposer::Agent {
            name: "validators".into(),
            domain: "validators".into(),
        },
        operation: Operation {
            kind: kind.into(),
            domain: "validators".into(),
            risk: Risk::Low,
            amount_nanoton: 0,
            amount_cents: 0,
            target: "validator-1".into(),
            parameters,
        },
        rationale: "test".into(),
        evidence: serde_json::Value::Null,
    }
}

fn notify(id: &str) -> Proposal {
    agent_proposal(
        id,
        "notify",
        serde_json::json!({ "message": "node 2 restarted", "severity": "info" }),
    )
}

impl Harness {
    fn marker(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn mark(&self, id: &str, name: &str) -> Proposal {
        agent_proposal(
            id,
            "command",
            serde_json::json!({ "command": "mark", "vars": { "path": self.marker(name).display().to_string() } }),
        )
    }

    fn kinds(&self, subject: &str) -> Vec<String> {
        self.store
            .journal()
            .query(&memory::JournalQuery::default())
            .unwrap()
            .into_iter()
            .filter(|entry| entry.subject == subject)
            .map(|entry| entry.kind)
            .collect()
    }
}

#[tokio::test]
async fn an_automatic_notification_runs_once_and_every_step_is_journaled_in_order() {
    let mut h = harness().await;
    let record = h.gate.submit(notify("n-1")).await.unwrap();
    assert_eq!(record.state, ProposalState::Executed);
    assert_eq!(
        record.decision,
        Decision::Auto {
            by: vec!["auto-notify".into()]
        }
    );
    assert_eq!(
        h.kinds("n-1"),
        [
            "proposal.received",
            "decision.made",
            "execution.started",
            "execution.finished"
        ]
    );
    let delivered = h.alerts.recv().await.unwrap();
    assert_eq!(delivered.summary, "node 2 restarted");
    let report = h.alerts.recv().await.unwrap();
    assert!(
        report.summary.starts_with("notify executed (n-1)"),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn a_command_waits_for_an_operator_and_runs_once() {
    let h = harness().await;
    let record = h.gate.submit(h.mark("c-1", "marker")).await.unwrap();
    assert_eq!(record.state, ProposalState::Pending);
    assert!(!h.marker("marker").exists(), "nothing runs before approval");

    let refused = h.gate.approve("c-1", "mallory").await.unwrap_err();
    assert!(matches!(refused, GateError::Forbidden(_)), "{refused}");
    let refused = h.gate.approve("c-1", "eve").await.unwrap_err();
    assert!(
        matches!(refused, GateError::UnknownUser { .. }),
        "{refused}"
    );

    let record = h.gate.approve("c-1", "alice").await.unwrap();
    assert_eq!(record.state, ProposalState::Executed);
    assert!(h.marker("marker").exists());
    let again = h.gate.approve("c-1", "alice").await.unwrap_err();
    assert!(
        again.to_string().contains("is executed, not pending"),
        "{again}"
    );
    let kinds = h.kinds("c-1");
    assert_eq!(
        kinds.iter().filter(|k| *k == "execution.started").count(),
        1
    );
    assert_eq!(kinds.iter().filter(|k| *k == "approval.refused").count(), 3);
}

#[tokio::test]
async fn funds_need_two_distinct_treasurers_and_never_the_proposer() {
    let h = harness().await;
    let mut proposal = h.mark("f-1", "paid");
    proposal.proposer = Proposer::User {
        name: "bob".into(),
        roles: vec!["treasurer".into()],
    };
    proposal.operation.amount_nanoton = 5_000_000_000;
    let record = h.gate.submit(proposal).await.unwrap();
    assert_eq!(record.state, ProposalState::Pending);
    assert_eq!(record.approvals_needed(), 2);

    let own = h.gate.approve("f-1", "bob").await.unwrap_err();
    assert!(own.to_string().contains("cannot also approve it"), "{own}");
    let operator = h.gate.approve("f-1", "alice").await.unwrap_err();
    assert!(matches!(operator, GateError::Forbidden(_)), "{operator}");
    let one = h.gate.approve("f-1", "carol").await.unwrap();
    assert_eq!(one.state, ProposalState::Pending);
    let twice = h.gate.approve("f-1", "carol").await.unwrap_err();
    assert!(twice.to_string().contains("already approved"), "{twice}");
    assert!(!h.marker("paid").exists());
    let two = h.gate.approve("f-1", "dave").await.unwrap();
    assert_eq!(two.state, ProposalState::Executed);
    assert!(h.marker("paid").exists());
    let voters: Vec<&str> = two
        .approvals
        .iter()
        .map(|vote| vote.user.as_str())
        .collect();
    assert_eq!(voters, ["carol", "dave"]);
}

#[tokio::test]
async fn bad_proposals_and_forged_ids_get_clear_answers_and_journal_entries() {
    let h = harness().await;
    let denied = h
        .gate
        .submit(agent_proposal(
            "bad-1",
            "command",
            serde_json::json!({ "command": "mark" }),
        ))
        .await
        .unwrap();
    assert_eq!(denied.state, ProposalState::Denied);
    let Decision::Deny { reason, .. } = &denied.decision else {
        panic!("expected a denial")
    };
    assert!(
        reason.contains("invalid parameters for command"),
        "{reason}"
    );

    let unknown_kind = h
        .gate
        .submit(agent_proposal(
            "bad-2",
            "reboot_universe",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(unknown_kind.state, ProposalState::Denied);

    let duplicate = h.gate.submit(notify("bad-1")).await.unwrap_err();
    assert!(
        matches!(duplicate, GateError::Duplicate { .. }),
        "{duplicate}"
    );
    let invalid_id = h.gate.submit(notify("../../etc")).await.unwrap_err();
    assert!(matches!(invalid_id, GateError::Invalid(_)), "{invalid_id}");
    let forged = h
        .gate
        .approve("no-such-proposal", "alice")
        .await
        .unwrap_err();
    assert!(matches!(forged, GateError::NotFound { .. }), "{forged}");
    assert_eq!(h.kinds("no-such-proposal"), ["approval.refused"]);
    assert!(h.kinds("bad-1").contains(&"proposal.refused".to_owned()));
}

#[tokio::test]
async fn expired_requests_refuse_approvals_and_are_swept() {
    let h = harness().await;
    h.gate.submit(h.mark("e-1", "late")).await.unwrap();
    let mut record = h.gate.get("e-1").unwrap().unwrap();
    record.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    h.gate.save(&record).unwrap();
    let late = h.gate.approve("e-1", "alice").await.unwrap_err();
    assert!(late.to_string().contains("expired"), "{late}");
    h.gate.sweep(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(
        h.gate.get("e-1").unwrap().unwrap().state,
        ProposalState::Expired
    );
    assert!(!h.marker("late").exists());
}

#[tokio::test]
async fn an_unanswered_request_is_escalated_once() {
    let mut h = harness().await;
    h.gate.submit(h.mark("s-1", "slow")).await.unwrap();
    let requested = h.alerts.recv().await.unwrap();
    assert_eq!(requested.label("audience"), "approvers");
    h.gate.sweep(Duration::ZERO).await.unwrap();
    h.gate.sweep(Duration::ZERO).await.unwrap();
    let escalated = h.alerts.recv().await.unwrap();
    assert_eq!(escalated.label("audience"), "escalation");
    assert_eq!(escalated.severity, Severity::Critical);
    assert!(h.alerts.try_recv().is_err(), "escalated once");
    assert!(h.gate.get("s-1").unwrap().unwrap().escalated);
}

#[tokio::test]
async fn the_kill_switch_sends_everything_to_people() {
    let h = harness().await;
    h.gate.pause(None, "alice", "maintenance").await.unwrap();
    let paused = h.gate.submit(notify("k-1")).await.unwrap();
    assert_eq!(paused.state, ProposalState::Pending);
    assert_eq!(paused.decision.by(), ["kill-switch"]);
    h.gate.resume(None, "alice").await.unwrap();
    assert_eq!(
        h.gate.submit(notify("k-2")).await.unwrap().state,
        ProposalState::Executed
    );

    // Per agent: only that agent is paused.
    h.gate
        .pause(Some("validators"), "alice", "flapping")
        .await
        .unwrap();
    assert_eq!(
        h.gate.submit(notify("k-3")).await.unwrap().state,
        ProposalState::Pending
    );
    let mut other = notify("k-4");
    other.proposer = Proposer::Agent {
        name: "market".into(),
        domain: "market".into(),
    };
    assert_eq!(
        h.gate.submit(other).await.unwrap().state,
        ProposalState::Executed
    );
    let pauses = h.gate.pauses().unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].0, "validators");
    assert_eq!(h.kinds("all"), ["autonomy.paused", "autonomy.resumed"]);
}

#[tokio::test]
async fn reject_and_cancel_need_the_right_people() {
    let h = harness().await;
    h.gate.submit(h.mark("r-1", "never")).await.unwrap();
    assert!(matches!(
        h.gate.reject("r-1", "mallory").await.unwrap_err(),
        GateError::Forbidden(_)
    ));
    assert_eq!(
        h.gate.reject("r-1", "alice").await.unwrap().state,
        ProposalState::Rejected
    );
    assert!(
        h.gate.approve("r-1", "alice").await.is_err(),
        "rejected is final"
    );

    h.gate.submit(h.mark("r-2", "never2")).await.unwrap();
    assert!(matches!(
        h.gate.cancel("r-2", "carol").await.unwrap_err(),
        GateError::Forbidden(_)
    ));
    assert_eq!(
        h.gate.cancel("r-2", "alice").await.unwrap().state,
        ProposalState::Cancelled
    );
    assert!(!h.marker("never").exists() && !h.marker("never2").exists());
}

#[tokio::test]
async fn after_a_crash_started_work_is_never_rerun_blindly_and_approved_work_runs_once() {
    let mut h = harness().await;
    // Crash while executing: the record says executing.
    h.gate.submit(h.mark("x-1", "maybe")).await.unwrap();
    let mut interrupted = h.gate.get("x-1").unwrap().unwrap();
    interrupted.state = ProposalState::Executing;
    interrupted.execution = Some(ExecutionState {
        idempotency_key: "cc-x-1".into(),
        started_at: Utc::now(),
        finished_at: None,
        outcome: None,
    });
    h.gate.save(&interrupted).unwrap();
    // Crash after approval, before execution started.
    h.gate.submit(h.mark("x-2", "surely")).await.unwrap();
    let mut approved = h.gate.get("x-2").unwrap().unwrap();
    approved.state = ProposalState::Approved;
    h.gate.save(&approved).unwrap();
    while h.alerts.try_recv().is_ok() {}

    h.gate.recover().await.unwrap();
    let unknown = h.gate.get("x-1").unwrap().unwrap();
    assert_eq!(unknown.state, ProposalState::Unknown);
    assert!(!h.marker("maybe").exists(), "not re-run");
    let ran = h.gate.get("x-2").unwrap().unwrap();
    assert_eq!(ran.state, ProposalState::Executed);
    assert!(h.marker("surely").exists());
    let alert = h.alerts.recv().await.unwrap();
    assert_eq!(alert.severity, Severity::Critical, "{alert:?}");
    assert!(alert.summary.contains("unknown"), "{}", alert.summary);

    // A second recovery does nothing more.
    h.gate.recover().await.unwrap();
    assert_eq!(
        h.kinds("x-2")
            .iter()
            .filter(|k| *k == "execution.started")
            .count(),
        1
    );
}

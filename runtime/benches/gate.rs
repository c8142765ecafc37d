//! End-to-end gate benchmark: a proposal for an automatic `notify` through the whole road
//! (proposal journaled, Cedar decision, decision journaled, execution started and finished
//! journaled, the notify executor delivering to the notifier). Prints one JSON object.
//!
//! Run: `cargo bench -p runtime --bench gate`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use policies::{Operation, Proposal, Proposer, Risk};
use runtime::config::ConfigSource;
use runtime::daemon::{Daemon, RunOptions};
use runtime::gate::ProposalState;

const PROPOSALS: usize = 400;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[index] * 1000.0).round() / 1000.0
}

fn main() {
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    system.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = runtime::config::load(&ConfigSource::Embedded, &[]).unwrap();
        config.daemon.data_dir = dir.path().join("data");
        config.daemon.http_listen = "127.0.0.1:0".parse().unwrap();
        config.daemon.policies_dir = workspace_root().join("policies");
        config.daemon.prompts_dir = workspace_root().join("prompts");
        config.agents.market.enabled = false;
        config.notify.log = false;
        // Someone must be able to approve what the rate limit sends to people.
        config.access.users.push(runtime::config::UserConfig {
            name: "alice".into(),
            roles: vec!["operator".into()],
            token_sha256: None,
            telegram_id: None,
            slack_id: None,
        });
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let gate = daemon.state.gate.clone();
        let mut latencies = Vec::with_capacity(PROPOSALS);
        let started = Instant::now();
        for n in 0..PROPOSALS {
            let proposal = Proposal {
                id: format!("bench-{n}"),
                proposer: Proposer::Agent {
                    name: format!("agent-{}", n % 16),
                    domain: "operations".into(),
                },
                operation: Operation {
                    kind: "notify".into(),
                    domain: "operations".into(),
                    risk: Risk::Low,
                    amount_nanoton: 0,
                    amount_cents: 0,
                    target: "ops".into(),
                    parameters: serde_json::json!({ "message": format!("bench {n}") }),
                },
                rationale: String::new(),
                evidence: serde_json::Value::Null,
            };
            let one = Instant::now();
            let record = gate.submit(proposal).await.unwrap();
            latencies.push(one.elapsed().as_secs_f64() * 1000.0);
            // The rate-limit policy (30 an hour) sends the rest to people: count both.
            assert!(matches!(
                record.state,
                ProposalState::Executed | ProposalState::Pending
            ));
        }
        let elapsed = started.elapsed();
        let executed = gate.list(Some(ProposalState::Executed)).unwrap().len();
        let pending = gate.list(Some(ProposalState::Pending)).unwrap().len();
        let mut executed_latencies: Vec<f64> = Vec::new();
        for (n, latency) in latencies.iter().enumerate() {
            if gate.get(&format!("bench-{n}")).unwrap().unwrap().state == ProposalState::Executed {
                executed_latencies.push(*latency);
            }
        }
        latencies.sort_by(f64::total_cmp);
        executed_latencies.sort_by(f64::total_cmp);
        let journal = daemon.state.store.journal().len();
        daemon.shutdown("bench").await.unwrap();
        let report = serde_json::json!({
            "proposals": PROPOSALS,
            "executed_auto": executed,
            "sent_to_people_by_rate_limit": pending,
            "proposals_per_sec": (PROPOSALS as f64 / elapsed.as_secs_f64()).round(),
            "proposal_to_executed_notify_ms_p50": percentile(&executed_latencies, 0.5),
            "proposal_to_executed_notify_ms_p99": percentile(&executed_latencies, 0.99),
            "proposal_to_decision_any_ms_p50": percentile(&latencies, 0.5),
            "proposal_to_decision_any_ms_p99": percentile(&latencies, 0.99),
            "journal_entries": journal,
        });
        println!("{report}");
    });
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Decision latency and single-core throughput of the policy engine.
//!
//! Run with `cargo bench -p policies --bench decide`. Prints one JSON object on stdout.
//!
//! Two policy sets are measured: the shipped `default.cedar` (13 policies) plus generated,
//! valid policies with distinct `@id`s on distinct operation kinds (`kind-N`), up to 10 and
//! up to 200 policies. The generated policies cover all three actions and carry `when`
//! conditions on `amount_nanoton`, `risk`, `context.local_hour` and
//! `context.executions_last_hour`, so Cedar evaluates every one of them on every request of
//! its action, but none of them matches the proposals' kinds: the decisions stay those of
//! the shipped cases, which the bench checks.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use policies::{
    ApprovalCheck, DecisionContext, Operation, PolicyEngine, Proposal, Proposer, Risk, SCHEMA_FILE,
};
use serde_json::{Value, json};

const SET_SIZES: [usize; 2] = [10, 200];
const WARMUP: usize = 2_000;
const DECISIONS: usize = 20_000;
const APPROVAL_CHECKS: usize = 5_000;

/// Generated policy number `n`: one of six shapes, each about its own kind `kind-n`.
fn generated_policy(n: usize) -> String {
    let kind = format!("kind-{n}");
    match n % 6 {
        0 => format!(
            "@id(\"gen-{n}-auto-low-risk\")\n\
             permit (principal is Agent, action == Action::\"execute\", resource)\n\
             when {{ resource.kind == \"{kind}\" && resource.risk == \"low\" \
             && context.executions_last_hour < {} }};\n",
            5 + n % 50
        ),
        1 => format!(
            "@id(\"gen-{n}-funds-three-approvers\")\n\
             @approvals(\"3\")\n\
             @expires(\"2h\")\n\
             @reason(\"{kind} above {} nanoton needs three people\")\n\
             forbid (principal, action == Action::\"execute\", resource)\n\
             when {{ resource.kind == \"{kind}\" && resource.amount_nanoton > {} }};\n",
            1_000_000_000 * (n as u64 + 1),
            1_000_000_000 * (n as u64 + 1)
        ),
        2 => format!(
            "@id(\"gen-{n}-business-hours\")\n\
             @reason(\"{kind} runs on its own only during business hours\")\n\
             forbid (principal is Agent, action == Action::\"execute\", resource)\n\
             when {{ resource.kind == \"{kind}\" \
             && (context.local_hour < 8 || context.local_hour > 19) }};\n"
        ),
        3 => format!(
            "@id(\"gen-{n}-operators-approve\")\n\
             permit (principal in Role::\"operator\", action == Action::\"approve\", resource)\n\
             when {{ resource.kind == \"{kind}\" && resource.risk != \"high\" \
             && resource.amount_nanoton == 0 }};\n"
        ),
        4 => format!(
            "@id(\"gen-{n}-no-flood\")\n\
             @never\n\
             @reason(\"{kind} ran too often this hour\")\n\
             forbid (principal, action == Action::\"execute\", resource)\n\
             when {{ resource.kind == \"{kind}\" && context.executions_last_hour >= {} }};\n",
            20 + n % 40
        ),
        _ => format!(
            "@id(\"gen-{n}-propose-limit\")\n\
             @reason(\"{kind} is proposed at most {} times a day\")\n\
             forbid (principal is Agent, action == Action::\"propose\", resource)\n\
             when {{ resource.kind == \"{kind}\" && context.executions_last_day > {} \
             && resource.domain == \"operations\" }};\n",
            100 + n,
            100 + n
        ),
    }
}

fn engine_with(total: usize, dir: &Path, schema: &str, default: &str) -> PolicyEngine {
    let generated: String = (0..total.saturating_sub(13))
        .map(generated_policy)
        .collect::<Vec<_>>()
        .join("\n");
    let files = vec![
        (dir.join("default.cedar"), default.to_owned()),
        (dir.join("generated.cedar"), generated),
    ];
    let engine = match PolicyEngine::from_sources(&dir.join(SCHEMA_FILE), schema, &files) {
        Ok(engine) => engine,
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            panic!("the generated policy set of {total} is invalid");
        }
    };
    assert_eq!(engine.summary().policies, total, "policy count");
    engine
}

fn agent(name: &str) -> Proposer {
    Proposer::Agent {
        name: name.to_owned(),
        domain: name.to_owned(),
    }
}

fn proposal(id: &str, proposer: Proposer, kind: &str, domain: &str, risk: Risk) -> Proposal {
    Proposal {
        id: id.to_owned(),
        proposer,
        operation: Operation {
            kind: kind.to_owned(),
            domain: domain.to_owned(),
            risk,
            amount_nanoton: 0,
            amount_cents: 0,
            target: String::new(),
            parameters: Value::Null,
        },
        rationale: String::new(),
        evidence: Value::Null,
    }
}

struct Shape {
    name: &'static str,
    expect: &'static str,
    proposal: Proposal,
    context: DecisionContext,
}

/// The shapes of the shipped cases (policies/tests/default.toml).
fn shapes() -> Vec<Shape> {
    let business_hours = DecisionContext {
        executions_last_hour: 3,
        executions_last_day: 40,
        local_hour: 14,
        autonomy_paused: false,
    };
    let mut notify = proposal("p-notify", agent("market"), "notify", "market", Risk::Low);
    notify.operation.target = "ops".to_owned();
    let mut restart = proposal(
        "p-restart",
        agent("validators"),
        "command",
        "validators",
        Risk::Medium,
    );
    restart.operation.target = "validator-1".to_owned();
    let mut transfer = proposal(
        "p-transfer",
        Proposer::User {
            name: "bob".to_owned(),
            roles: vec!["treasurer".to_owned()],
        },
        "ton_transfer",
        "finance",
        Risk::High,
    );
    transfer.operation.amount_nanoton = 500_000_000_000;
    transfer.operation.target = "EQD...pool".to_owned();
    let mut huge = proposal(
        "p-huge",
        agent("finance"),
        "ton_transfer",
        "finance",
        Risk::High,
    );
    huge.operation.amount_nanoton = 20_000_000_000_000;
    huge.operation.target = "EQD...x".to_owned();
    vec![
        Shape {
            name: "notify_auto",
            expect: "auto",
            proposal: notify,
            context: business_hours.clone(),
        },
        Shape {
            name: "command_one_approval",
            expect: "needs_approval",
            proposal: restart,
            context: business_hours.clone(),
        },
        Shape {
            name: "transfer_two_approvals",
            expect: "needs_approval",
            proposal: transfer,
            context: business_hours.clone(),
        },
        Shape {
            name: "huge_transfer_denied",
            expect: "deny",
            proposal: huge,
            context: business_hours,
        },
    ]
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1_000.0
}

/// p50, p99, max and mean of latencies in nanoseconds, in microseconds.
fn stats(samples: &mut [u64]) -> Value {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return json!({ "count": 0 });
    }
    let at = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    let mean = samples.iter().sum::<u64>() as f64 / n as f64;
    json!({
        "count": n,
        "p50_us": micros(at(0.50)),
        "p99_us": micros(at(0.99)),
        "max_us": micros(samples[n - 1]),
        "mean_us": micros(mean.round() as u64),
    })
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    (count as f64 / elapsed.as_secs_f64()).round()
}

fn bench_set(engine: &PolicyEngine, shapes: &[Shape], roles: &[String]) -> Value {
    // Warm up caches and the allocator; check every shape decides as the shipped cases say.
    for index in 0..WARMUP {
        let shape = &shapes[index % shapes.len()];
        let decision = engine.decide(&shape.proposal, &shape.context, roles);
        assert_eq!(
            decision.kind(),
            shape.expect,
            "{}: {decision:?}",
            shape.name
        );
    }

    // Latency: every decision timed on its own.
    let mut all = Vec::with_capacity(DECISIONS);
    let mut by_shape: Vec<Vec<u64>> = shapes
        .iter()
        .map(|_| Vec::with_capacity(DECISIONS / shapes.len() + 1))
        .collect();
    let mut by_kind: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let started = Instant::now();
    for index in 0..DECISIONS {
        let which = index % shapes.len();
        let shape = &shapes[which];
        let start = Instant::now();
        let decision = engine.decide(black_box(&shape.proposal), black_box(&shape.context), roles);
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let kind = black_box(decision).kind();
        all.push(nanos);
        by_shape[which].push(nanos);
        by_kind.entry(kind).or_default().push(nanos);
        *counts.entry(kind).or_default() += 1;
    }
    let timed_elapsed = started.elapsed();

    // Throughput: the same mix, back to back, without per-decision timers.
    let started = Instant::now();
    for index in 0..DECISIONS {
        let shape = &shapes[index % shapes.len()];
        black_box(engine.decide(black_box(&shape.proposal), black_box(&shape.context), roles));
    }
    let throughput_elapsed = started.elapsed();

    // may_approve: a treasurer (not the proposer) approving the transfer.
    let transfer = shapes
        .iter()
        .find(|shape| shape.name == "transfer_two_approvals")
        .expect("transfer shape");
    let carol = vec!["treasurer".to_owned()];
    let mut approvals = Vec::with_capacity(APPROVAL_CHECKS);
    for _ in 0..APPROVAL_CHECKS {
        let start = Instant::now();
        let check = engine.may_approve(
            black_box("carol"),
            &carol,
            black_box(&transfer.proposal),
            &transfer.context,
        );
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        assert!(matches!(check, ApprovalCheck::Allowed { .. }), "{check:?}");
        approvals.push(nanos);
    }

    json!({
        "policies": engine.summary().policies,
        "decisions": DECISIONS,
        "latency": stats(&mut all),
        "decisions_per_sec": per_second(DECISIONS, throughput_elapsed),
        "decisions_per_sec_timed_loop": per_second(DECISIONS, timed_elapsed),
        "decision_counts": counts,
        "latency_by_decision": by_kind
            .into_iter()
            .map(|(kind, mut samples)| (kind, stats(&mut samples)))
            .collect::<BTreeMap<_, _>>(),
        "latency_by_shape": shapes
            .iter()
            .zip(by_shape.iter_mut())
            .map(|(shape, samples)| (shape.name, stats(samples)))
            .collect::<BTreeMap<_, _>>(),
        "may_approve": stats(&mut approvals),
    })
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let schema = std::fs::read_to_string(dir.join(SCHEMA_FILE)).expect("schema");
    let default = std::fs::read_to_string(dir.join("default.cedar")).expect("default.cedar");
    let roles = vec!["operator".to_owned(), "treasurer".to_owned()];
    let shapes = shapes();

    let mut sets = BTreeMap::new();
    for total in SET_SIZES {
        let engine = engine_with(total, &dir, &schema, &default);
        sets.insert(
            format!("policies_{total}"),
            bench_set(&engine, &shapes, &roles),
        );
    }

    let report = json!({
        "bench": "policies/decide",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "thread": "single, sequential",
        "roles": roles,
        "mix": shapes
            .iter()
            .map(|shape| json!({ "shape": shape.name, "expect": shape.expect }))
            .collect::<Vec<_>>(),
        "warmup_decisions": WARMUP,
        "sets": sets,
    });
    println!("{report}");
}

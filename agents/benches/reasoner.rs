//! The reasoner's cost per answered question over a scripted suite of twelve questions against
//! the simulated OpenAI server (`tools::sim::openai::ScriptedOpenAi` on 127.0.0.1): a plain
//! answer, one tool, parallel tools, two rounds, malformed arguments recovered, an unknown
//! tool, a 429 and a 502 before the answer, a refusal, a long tool result cut to the budget,
//! and two streamed questions. For each: model calls (the reasoner's count), HTTP requests
//! (retries included), prompt and completion tokens, request bytes and wall time; then the
//! means. Prints one JSON object.
//!
//! The scripted answers carry no token usage, so the tokens are the reasoner's own estimate
//! (one per four bytes) of the requests it really built: the system prompt, the history, the
//! four tool schemas and the tool results fed back. They measure what our prompts cost, not
//! what any model would say. Wall time includes the retry waits of async-openai's retry layer
//! (as `Retry-After` asks: 0 s in the scripted 429; 100 ms after a 5xx).
//!
//! Run: `cargo bench -p agents --bench reasoner`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use agents::reasoner::{Question, Reasoner, ReasonerConfig, ToolBox, ToolDefinition, Turn};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tools::sim::openai::{Scripted, ScriptedOpenAi};

/// Four read-only tools shaped like the runtime's, answering from a table.
struct BenchTools;

impl ToolBox for BenchTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        let tool = |name: &str, description: &str, parameters: Value| ToolDefinition {
            name: name.into(),
            description: description.into(),
            parameters,
        };
        vec![
            tool(
                "validator_status",
                "Sync state, lag, stake and last election of one validator (by name) or of all",
                json!({"type": "object", "properties": {"name": {"type": "string", "description": "validator name, e.g. validator-1"}}}),
            ),
            tool(
                "market_prices",
                "Latest prices and 24 h change of the tracked coins",
                json!({"type": "object", "properties": {"coins": {"type": "array", "items": {"type": "string"}}}}),
            ),
            tool(
                "firing_alerts",
                "Alerts firing now, with labels and since when",
                json!({"type": "object", "properties": {"severity": {"type": "string", "enum": ["critical", "warning", "info"]}}}),
            ),
            tool(
                "node_logs",
                "The last lines of a node's log",
                json!({"type": "object", "properties": {"node": {"type": "string"}, "lines": {"type": "integer", "minimum": 1, "maximum": 500}}, "required": ["node"]}),
            ),
        ]
    }

    fn call<'a>(&'a self, name: &'a str, arguments: &'a str) -> BoxFuture<'a, String> {
        let result = match (name, serde_json::from_str::<Value>(arguments)) {
            (_, Err(error)) => {
                json!({"error": format!("arguments: {error}"), "kind": "invalid_arguments"})
            }
            ("validator_status", Ok(args)) => json!({
                "name": args["name"], "in_sync": false, "lag_seconds": 268, "stake_ton": 350_000,
                "last_election": {"id": 1_795_400_000, "won": true, "bonus_ton": 412.5}
            }),
            ("market_prices", Ok(_)) => json!({
                "the-open-network": {"usd": 5.12, "change_24h": -3.1},
                "bitcoin": {"usd": 97_120.0, "change_24h": 0.4}
            }),
            ("firing_alerts", Ok(_)) => json!([
                {"alertname": "ValidatorOutOfSync", "severity": "critical", "instance": "validator-1", "since": "2026-11-24T07:58:00Z"},
                {"alertname": "DiskAlmostFull", "severity": "warning", "instance": "validator-2", "since": "2026-11-24T06:10:00Z"}
            ]),
            ("node_logs", Ok(_)) => json!({"lines": (0..200)
                .map(|i| format!("[2026-11-24 08:{:02}:{:02}] validator: applying block {} of the masterchain", i / 60, i % 60, 41_000_000 + i))
                .collect::<Vec<_>>()}),
            (other, Ok(_)) => {
                json!({"error": format!("no tool named {other}"), "kind": "unknown_tool"})
            }
        };
        Box::pin(async move { result.to_string() })
    }
}

struct Case {
    name: &'static str,
    question: &'static str,
    script: Vec<Scripted>,
    streamed: bool,
}

fn cases() -> Vec<Case> {
    let reply = |text: &str| Scripted::reply(text, 0, 0).without_usage();
    let calls = |calls: &[(&str, &str, &str)]| Scripted::tool_calls(calls, 0).without_usage();
    let case = |name, question, script, streamed| Case {
        name,
        question,
        script,
        streamed,
    };
    vec![
        case(
            "plain answer",
            "hello, what can you do?",
            vec![reply(
                "I read the validators, the market and the alerts, and I can propose actions for an operator to approve.",
            )],
            false,
        ),
        case(
            "one tool",
            "is validator-1 in sync?",
            vec![
                calls(&[("c1", "validator_status", r#"{"name":"validator-1"}"#)]),
                reply("No: validator-1 is 268 s behind the masterchain."),
            ],
            false,
        ),
        case(
            "parallel tools (2)",
            "why is validator-1 behind, and how is TON doing?",
            vec![
                calls(&[
                    ("c1", "validator_status", r#"{"name":"validator-1"}"#),
                    ("c2", "market_prices", "{}"),
                ]),
                reply("validator-1 is 268 s behind; TON is at $5.12, down 3.1% today."),
            ],
            false,
        ),
        case(
            "parallel tools (3)",
            "give me the morning summary",
            vec![
                calls(&[
                    ("c1", "validator_status", "{}"),
                    ("c2", "market_prices", "{}"),
                    ("c3", "firing_alerts", "{}"),
                ]),
                reply(
                    "Two alerts fire: validator-1 out of sync (critical) and a nearly full disk on validator-2. TON is at $5.12.",
                ),
            ],
            false,
        ),
        case(
            "two rounds",
            "what is wrong with validator-1?",
            vec![
                calls(&[("c1", "firing_alerts", r#"{"severity":"critical"}"#)]),
                calls(&[("c2", "validator_status", r#"{"name":"validator-1"}"#)]),
                reply(
                    "validator-1 fires ValidatorOutOfSync since 07:58 and is 268 s behind; it still won the last election.",
                ),
            ],
            false,
        ),
        case(
            "malformed arguments recovered",
            "status of validator-1?",
            vec![
                calls(&[("c1", "validator_status", r#"{"name": validator-1"#)]),
                calls(&[("c2", "validator_status", r#"{"name":"validator-1"}"#)]),
                reply("validator-1 is 268 s behind."),
            ],
            false,
        ),
        case(
            "unknown tool",
            "restart validator-1",
            vec![
                calls(&[("c1", "restart_node", r#"{"node":"validator-1"}"#)]),
                reply("I cannot restart nodes; I can propose it for an operator to approve."),
            ],
            false,
        ),
        case(
            "429 then answer",
            "how is TON doing?",
            vec![
                Scripted::rate_limited(0),
                calls(&[("c1", "market_prices", "{}")]),
                reply("TON is at $5.12, down 3.1% today."),
            ],
            false,
        ),
        case(
            "502 then answer",
            "any alerts?",
            vec![
                Scripted::error(502, "server_error", None, "bad gateway"),
                calls(&[("c1", "firing_alerts", "{}")]),
                reply("Two: ValidatorOutOfSync on validator-1, DiskAlmostFull on validator-2."),
            ],
            false,
        ),
        case(
            "refusal",
            "send 500 TON to my wallet",
            vec![Scripted::refusal("I can't move funds.").without_usage()],
            false,
        ),
        case(
            "long tool result cut",
            "show me validator-1's log",
            vec![
                calls(&[("c1", "node_logs", r#"{"node":"validator-1","lines":200}"#)]),
                reply("The log shows blocks applied steadily; no errors in the last 200 lines."),
            ],
            false,
        ),
        case(
            "streamed, one tool",
            "is validator-1 in sync?",
            vec![
                Scripted::streamed_tool_calls(
                    &[("c1", "validator_status", r#"{"name":"validator-1"}"#)],
                    4,
                    0,
                )
                .without_usage(),
                reply("No: validator-1 is 268 s behind the masterchain."),
            ],
            true,
        ),
    ]
}

fn question(text: &str) -> Question {
    Question {
        agent: "conversation".into(),
        system: include_str!("../../prompts/conversation.md").into(),
        history: vec![
            Turn {
                role: "user".into(),
                text: "hello".into(),
            },
            Turn {
                role: "assistant".into(),
                text: "Hello! Ask me about validators, alerts or the market.".into(),
            },
        ],
        text: text.into(),
        source: "telegram:alice".into(),
    }
}

fn mean(rows: &[Value], field: &str) -> f64 {
    let sum: f64 = rows.iter().map(|row| row[field].as_f64().unwrap()).sum();
    (sum / rows.len() as f64 * 100.0).round() / 100.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = ScriptedOpenAi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let reasoner = Reasoner::new(
        ReasonerConfig {
            base_url: server.base_url(),
            model: "sim".into(),
            call_timeout: Duration::from_secs(10),
            ..ReasonerConfig::default()
        },
        store,
    )
    .unwrap();
    let mut rows = Vec::new();
    for case in cases() {
        server.push(case.script);
        let before = server.requests().len();
        let started = Instant::now();
        let mut deltas = 0usize;
        let reply = if case.streamed {
            reasoner
                .answer_streaming(&question(case.question), &BenchTools, |_| deltas += 1)
                .await
        } else {
            reasoner.answer(&question(case.question), &BenchTools).await
        }
        .unwrap_or_else(|error| panic!("{}: {error}", case.name));
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let requests = server.requests();
        let request_bytes: usize = requests[before..]
            .iter()
            .map(|request| request.body.to_string().len())
            .sum();
        assert_eq!(server.remaining(), 0, "{}: script not used up", case.name);
        rows.push(json!({
            "question": case.name,
            "model_calls": reply.model_calls,
            "http_requests": requests.len() - before,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "request_bytes": request_bytes,
            "deltas": deltas,
            "wall_ms": (wall_ms * 10.0).round() / 10.0,
        }));
    }
    let report = json!({
        "questions": rows.len(),
        "mean": {
            "model_calls": mean(&rows, "model_calls"),
            "http_requests": mean(&rows, "http_requests"),
            "prompt_tokens": mean(&rows, "prompt_tokens"),
            "completion_tokens": mean(&rows, "completion_tokens"),
            "request_bytes": mean(&rows, "request_bytes"),
            "wall_ms": mean(&rows, "wall_ms"),
        },
        "per_question": rows,
        "tokens": "estimated by the reasoner from the request and answer sizes (the script reports no usage)",
    });
    println!("{report}");
}

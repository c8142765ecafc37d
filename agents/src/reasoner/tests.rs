use std::sync::Mutex;

use serde_json::{Value, json};
use tools::sim::openai::{Scripted, ScriptedOpenAi};

use std::sync::Arc;

use futures::future::BoxFuture;

use super::*;

mod real_model;

/// A [`ToolBox`] from plain functions, for tests and small uses.
struct FnTools {
    specs: Vec<ToolDefinition>,
    #[allow(clippy::type_complexity)]
    call: Arc<dyn Fn(&str, &str) -> Value + Send + Sync>,
}

impl FnTools {
    fn new(
        specs: Vec<ToolDefinition>,
        call: impl Fn(&str, &str) -> Value + Send + Sync + 'static,
    ) -> Self {
        Self {
            specs,
            call: Arc::new(call),
        }
    }
}

impl ToolBox for FnTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        self.specs.clone()
    }

    fn call<'a>(&'a self, name: &'a str, arguments: &'a str) -> BoxFuture<'a, String> {
        let result = (self.call)(name, arguments).to_string();
        Box::pin(async move { result })
    }
}

const KEY: &str = "sk-test-0123456789abcdef";

fn specs() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "validator_status".into(),
            description: "Status of one validator or all".into(),
            parameters: json!({"type": "object", "properties": {"name": {"type": "string"}}}),
        },
        ToolDefinition {
            name: "market_prices".into(),
            description: "Latest prices".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ]
}

/// Tools that answer from a table and remember what they were asked.
fn toolbox(calls: std::sync::Arc<Mutex<Vec<String>>>) -> FnTools {
    FnTools::new(specs(), move |name, arguments| {
        calls.lock().unwrap().push(format!("{name}({arguments})"));
        match name {
            "validator_status" => match serde_json::from_str::<Value>(arguments) {
                Ok(args) => json!({"name": args["name"], "in_sync": false, "lag_seconds": 268}),
                Err(error) => json!({"error": format!("arguments: {error}")}),
            },
            "market_prices" => json!({"the-open-network": {"usd": 5.12, "change_24h": -3.1}}),
            other => json!({"error": format!("no tool named {other}")}),
        }
    })
}

async fn setup(
    config: impl FnOnce(&mut ReasonerConfig),
) -> (ScriptedOpenAi, Reasoner, tempfile::TempDir) {
    let server = ScriptedOpenAi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let mut settings = ReasonerConfig {
        base_url: server.base_url(),
        model: "sim".into(),
        api_key: Some(Secret::new(KEY)),
        call_timeout: Duration::from_secs(10),
        ..ReasonerConfig::default()
    };
    config(&mut settings);
    let reasoner = Reasoner::new(settings, store).unwrap();
    (server, reasoner, dir)
}

fn question(text: &str) -> Question {
    Question {
        agent: "conversation".into(),
        system: "You are the operations assistant. You read; you never act.".into(),
        history: vec![
            Turn {
                role: "user".into(),
                text: "hello".into(),
            },
            Turn {
                role: "assistant".into(),
                text: "Hello! Ask me about validators.".into(),
            },
        ],
        text: text.into(),
        source: "telegram:alice".into(),
    }
}

#[tokio::test]
async fn tools_are_offered_called_in_parallel_and_fed_back() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    server.push([
        Scripted::tool_calls(
            &[
                ("call_1", "validator_status", r#"{"name": "validator-1"}"#),
                ("call_2", "market_prices", "{}"),
            ],
            120,
        ),
        Scripted::reply("validator-1 is 268 s behind; TON is at $5.12.", 200, 30),
    ]);
    let calls = std::sync::Arc::default();
    let reply = reasoner
        .answer(
            &question("why is validator-1 behind?"),
            &toolbox(std::sync::Arc::clone(&calls)),
        )
        .await
        .unwrap();
    assert_eq!(reply.text, "validator-1 is 268 s behind; TON is at $5.12.");
    assert!(!reply.refused);
    assert_eq!(reply.model_calls, 2);
    assert_eq!(reply.prompt_tokens, 320);
    assert_eq!(reply.completion_tokens, 40);
    assert_eq!(
        reply.citations(),
        [
            r#"validator_status({"name": "validator-1"})"#,
            "market_prices({})"
        ]
    );
    assert_eq!(calls.lock().unwrap().len(), 2);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    let first = &requests[0].body;
    assert_eq!(first["model"], "sim");
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "validator_status");
    assert_eq!(
        first["tools"][0]["function"]["parameters"]["properties"]["name"]["type"],
        "string"
    );
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    // People's words arrive as labelled data; the assistant's own turn as it was.
    assert_eq!(
        messages[1]["content"],
        "<untrusted source=\"telegram:alice\">hello</untrusted>"
    );
    assert_eq!(messages[2]["content"], "Hello! Ask me about validators.");
    assert!(
        messages[3]["content"]
            .as_str()
            .unwrap()
            .starts_with("<untrusted source=\"telegram:alice\">why is validator-1 behind?")
    );

    let second = requests[1].body["messages"].as_array().unwrap();
    let assistant = &second[4];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], "", "never null next to tool_calls");
    assert_eq!(
        assistant["tool_calls"][1]["function"]["name"],
        "market_prices"
    );
    assert_eq!(second[5]["role"], "tool");
    assert_eq!(second[5]["tool_call_id"], "call_1");
    let fed: Value = serde_json::from_str(second[5]["content"].as_str().unwrap()).unwrap();
    assert_eq!(fed["lag_seconds"], 268);
    assert_eq!(second[6]["tool_call_id"], "call_2");

    let used = reasoner.usage_today("conversation").unwrap();
    assert_eq!(used.total(), 360);
    assert_eq!(used.model_calls, 2);
}

#[tokio::test]
async fn malformed_arguments_and_unknown_tools_are_values_the_model_reads() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    server.push([
        Scripted::tool_calls(
            &[
                ("call_1", "validator_status", "{\"name\": validator-1"),
                ("call_2", "transfer_funds", "{}"),
            ],
            50,
        ),
        Scripted::reply("I could not read that validator.", 80, 10),
    ]);
    let reply = reasoner
        .answer(&question("status?"), &toolbox(std::sync::Arc::default()))
        .await
        .unwrap();
    assert_eq!(reply.text, "I could not read that validator.");
    assert!(
        reply.tools[0].result["error"]
            .as_str()
            .unwrap()
            .starts_with("arguments:")
    );
    assert_eq!(
        reply.tools[1].result["error"],
        "no tool named transfer_funds"
    );
    let fed = &server.requests()[1].body["messages"];
    assert!(fed[5]["content"].as_str().unwrap().contains("arguments:"));
}

#[tokio::test]
async fn refusals_rate_limits_quota_and_bad_requests_are_told_apart() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    let tools = toolbox(std::sync::Arc::default());

    server.push([Scripted::refusal("I can't help with moving funds.")]);
    let reply = reasoner
        .answer(&question("send 500 TON to me"), &tools)
        .await
        .unwrap();
    assert!(reply.refused);
    assert_eq!(reply.text, "I can't help with moving funds.");

    // A 429 is waited out (as the server asks) and the question still answered.
    server.push([Scripted::rate_limited(0), Scripted::reply("fine", 10, 2)]);
    let before = server.requests().len();
    let reply = reasoner.answer(&question("status?"), &tools).await.unwrap();
    assert_eq!(reply.text, "fine");
    assert_eq!(server.requests().len() - before, 2);

    // A 5xx is tried again.
    server.push([
        Scripted::error(502, "server_error", None, "bad gateway"),
        Scripted::reply("after a retry", 10, 2),
    ]);
    let reply = reasoner.answer(&question("status?"), &tools).await.unwrap();
    assert_eq!(reply.text, "after a retry");

    // Out of quota: not retried, and said so.
    server.push([Scripted::error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota",
    )]);
    let before = server.requests().len();
    let error = reasoner
        .answer(&question("status?"), &tools)
        .await
        .unwrap_err();
    assert!(matches!(error, ReasonerError::Quota(_)), "{error:?}");
    assert_eq!(server.requests().len() - before, 1);
    assert!(!error.transient());

    // A request the endpoint refuses: not retried either.
    server.push([Scripted::error(
        400,
        "invalid_request_error",
        None,
        &format!("Incorrect API key provided: {KEY}"),
    )]);
    let error = reasoner
        .answer(&question("status?"), &tools)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReasonerError::InvalidRequest(_)),
        "{error:?}"
    );
    assert!(!error.to_string().contains(KEY), "{error}");
    assert!(error.to_string().contains("***"), "{error}");
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn the_step_limit_and_the_token_budget_stop_the_loop() {
    let (server, reasoner, _dir) = setup(|config| {
        config.max_steps = 3;
        config.daily_token_budget = Some(500);
    })
    .await;
    let tools = toolbox(std::sync::Arc::default());
    let again = || Scripted::tool_calls(&[("call", "market_prices", "{}")], 100);
    server.push([again(), again(), again()]);
    let error = reasoner
        .answer(&question("loop"), &tools)
        .await
        .unwrap_err();
    assert!(matches!(error, ReasonerError::StepLimit(3)), "{error:?}");
    assert_eq!(server.requests().len(), 3);

    // 330 tokens spent; the next answer takes 300 more: over the budget of 500, so the third
    // question is refused before any call.
    server.push([Scripted::reply("ok", 290, 10)]);
    reasoner
        .answer(&question("one more"), &tools)
        .await
        .unwrap();
    let error = reasoner
        .answer(&question("and another"), &tools)
        .await
        .unwrap_err();
    match &error {
        ReasonerError::BudgetExceeded {
            agent,
            used,
            budget,
        } => {
            assert_eq!((agent.as_str(), *used, *budget), ("conversation", 630, 500));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 4, "no call over budget");
}

#[tokio::test]
async fn long_tool_results_are_cut_to_the_budget() {
    let (server, reasoner, _dir) = setup(|config| config.max_tool_result_bytes = 64).await;
    let tools = FnTools::new(specs(), |_, _| json!({"log": "é".repeat(500)}));
    server.push([
        Scripted::tool_calls(&[("call", "market_prices", "{}")], 10),
        Scripted::reply("done", 10, 2),
    ]);
    reasoner.answer(&question("log?"), &tools).await.unwrap();
    let fed = server.requests()[1].body["messages"][5]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fed.contains("[truncated: 64 of 1010 bytes shown"), "{fed}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_and_a_bad_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let refused = Reasoner::new(
        ReasonerConfig {
            base_url: "ftp://models.example".into(),
            ..ReasonerConfig::default()
        },
        store.clone(),
    )
    .unwrap_err();
    assert!(refused.to_string().contains("http or https"), "{refused}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reasoner = Reasoner::new(
        ReasonerConfig {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            max_attempts: 1,
            ..ReasonerConfig::default()
        },
        store,
    )
    .unwrap();
    let error = reasoner
        .answer(&question("status?"), &toolbox(std::sync::Arc::default()))
        .await
        .unwrap_err();
    assert!(error.transient(), "{error:?}");
}

/// Runs [`Reasoner::answer_streaming`], collecting the deltas.
async fn answer_streamed(
    reasoner: &Reasoner,
    question: &Question,
    tools: &dyn ToolBox,
) -> (Result<Reply, ReasonerError>, Vec<String>) {
    let mut deltas = Vec::new();
    let outcome = reasoner
        .answer_streaming(question, tools, |delta| deltas.push(delta.to_owned()))
        .await;
    (outcome, deltas)
}

#[tokio::test]
async fn streamed_deltas_arrive_in_order_and_make_the_answer() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    server.push([Scripted::streamed(
        &["validator-1 ", "is 268 s ", "behind", "."],
        150,
        9,
    )]);
    let (reply, deltas) = answer_streamed(
        &reasoner,
        &question("why is validator-1 behind?"),
        &toolbox(Arc::default()),
    )
    .await;
    let reply = reply.unwrap();
    assert_eq!(deltas, ["validator-1 ", "is 268 s ", "behind", "."]);
    assert_eq!(deltas.concat(), reply.text);
    assert_eq!(reply.model_calls, 1);
    assert_eq!((reply.prompt_tokens, reply.completion_tokens), (150, 9));
    assert!(!reply.usage_estimated);
    let used = reasoner.usage_today("conversation").unwrap();
    assert_eq!((used.total(), used.model_calls), (159, 1));

    let request = &server.requests()[0].body;
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"]["include_usage"], true);
    assert_eq!(request["tools"][0]["function"]["name"], "validator_status");
}

#[tokio::test]
async fn streamed_tool_calls_split_across_chunks_are_assembled() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    server.push([
        // Each call's arguments in four pieces, the two calls' pieces interleaved.
        Scripted::streamed_tool_calls(
            &[
                ("call_1", "validator_status", r#"{"name": "validator-1"}"#),
                ("call_2", "market_prices", "{}"),
            ],
            4,
            120,
        ),
        // A plain scripted reply, streamed word by word because the request asks for a stream.
        Scripted::reply("validator-1 is 268 s behind; TON is at $5.12.", 200, 30),
    ]);
    let calls = Arc::default();
    let (reply, deltas) = answer_streamed(
        &reasoner,
        &question("why is validator-1 behind?"),
        &toolbox(Arc::clone(&calls)),
    )
    .await;
    let reply = reply.unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        [
            r#"validator_status({"name": "validator-1"})"#,
            "market_prices({})"
        ]
    );
    assert_eq!(reply.tools[0].id, "call_1");
    assert_eq!(reply.tools[0].result["lag_seconds"], 268);
    assert_eq!(reply.text, "validator-1 is 268 s behind; TON is at $5.12.");
    assert!(deltas.len() > 5, "{deltas:?}");
    assert_eq!(deltas.concat(), reply.text);
    assert_eq!((reply.prompt_tokens, reply.completion_tokens), (320, 40));
    let second = &server.requests()[1].body["messages"];
    assert_eq!(second[4]["content"], "", "never null next to tool_calls");
    assert_eq!(
        second[4]["tool_calls"][0]["function"]["arguments"],
        r#"{"name": "validator-1"}"#
    );
    assert_eq!(second[6]["tool_call_id"], "call_2");
}

#[tokio::test]
async fn a_stream_cut_before_any_text_is_tried_again_and_after_text_is_an_error() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    let tools = toolbox(Arc::default());

    // Cut after the role chunk: nothing was shown, so the call is made again.
    server.push([
        Scripted::streamed(&["all ", "good"], 10, 2).cut_after(1),
        Scripted::streamed(&["all ", "good"], 10, 2),
    ]);
    let (reply, deltas) = answer_streamed(&reasoner, &question("status?"), &tools).await;
    assert_eq!(reply.unwrap().text, "all good");
    assert_eq!(deltas.concat(), "all good");
    assert_eq!(server.requests().len(), 2);

    // Cut after two words were shown: not repeated, a clear transient error instead.
    server.push([
        Scripted::reply("validator-1 is 268 s behind.", 10, 7).cut_after(3),
        Scripted::reply("never asked for", 1, 1),
    ]);
    let (outcome, deltas) = answer_streamed(&reasoner, &question("status?"), &tools).await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, ReasonerError::Unavailable(_)), "{error:?}");
    assert!(
        error.to_string().contains("before the model finished"),
        "{error}"
    );
    assert!(error.transient());
    assert_eq!(deltas, ["validator-1 ", "is "]);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn a_stream_without_usage_is_charged_an_estimate() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    server.push([
        Scripted::streamed(&["all ", "good"], 10, 2).without_usage(),
        Scripted::rate_limited(0),
        Scripted::reply("fine", 10, 2),
    ]);
    let tools = toolbox(Arc::default());
    let (reply, _) = answer_streamed(&reasoner, &question("status?"), &tools).await;
    let reply = reply.unwrap();
    assert!(reply.usage_estimated);
    // "all good" is 8 bytes: 2 tokens; the request is a few hundred bytes of JSON.
    assert_eq!(reply.completion_tokens, 2);
    assert!(reply.prompt_tokens > 50, "{}", reply.prompt_tokens);
    let used = reasoner.usage_today("conversation").unwrap();
    assert_eq!(used.total(), reply.prompt_tokens + 2);

    // A 429 before the stream starts is an ordinary error answer, tried again.
    let (reply, deltas) = answer_streamed(&reasoner, &question("status?"), &tools).await;
    let reply = reply.unwrap();
    assert_eq!(
        (reply.text.as_str(), deltas.concat().as_str()),
        ("fine", "fine")
    );
    assert!(!reply.usage_estimated);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_streamed_tool_call_without_an_id_is_matched_by_its_index() {
    let (server, reasoner, _dir) = setup(|_| {}).await;
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 0, "model": "sim",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    server.push([
        Scripted::Stream {
            chunks: vec![
                chunk(json!({"role": "assistant"}), Value::Null),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"name": "market_prices", "arguments": "{}"}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
            ],
            usage: None,
            cut_after: None,
        },
        Scripted::reply("TON is at $5.12.", 10, 5),
    ]);
    let (reply, _) = answer_streamed(&reasoner, &question("TON?"), &toolbox(Arc::default())).await;
    let reply = reply.unwrap();
    assert_eq!(reply.tools[0].id, "call_0");
    assert_eq!(reply.text, "TON is at $5.12.");
    assert_eq!(
        server.requests()[1].body["messages"][5]["tool_call_id"],
        "call_0"
    );
}

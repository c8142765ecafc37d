//! A scripted OpenAI-compatible server for the reasoner's tests: each
//! `POST /v1/chat/completions` takes the next scripted answer, in order,
//! and every request body is kept so a test can check what the client sent (the tools offered,
//! the tool results fed back, how untrusted text was wrapped).
//!
//! Answers are recorded exchanges: a plain reply, tool calls (several at once for parallel
//! calls), a refusal, or an error with its HTTP status (429 rate limit, 429
//! `insufficient_quota`, 400, 500). When the script runs out the server
//! answers 500 with `script exhausted`, which a test sees as a failure of its own script.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Scripted {
    /// A JSON answer with this status and extra headers (`retry-after`, say).
    Json {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
}

impl Scripted {
    /// A final answer with token usage.
    pub fn reply(text: &str, prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self::Json {
            status: 200,
            body: completion(
                json!({"role": "assistant", "content": text}),
                "stop",
                prompt_tokens,
                completion_tokens,
            ),
            headers: Vec::new(),
        }
    }

    /// Tool calls: `(call id, tool name, arguments as the model wrote them)`; several make
    /// parallel calls.
    pub fn tool_calls(calls: &[(&str, &str, &str)], prompt_tokens: u32) -> Self {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        Self::Json {
            status: 200,
            body: completion(
                json!({"role": "assistant", "content": null, "tool_calls": calls}),
                "tool_calls",
                prompt_tokens,
                10,
            ),
            headers: Vec::new(),
        }
    }

    /// The model declines (`message.refusal`).
    pub fn refusal(text: &str) -> Self {
        Self::Json {
            status: 200,
            body: completion(
                json!({"role": "assistant", "content": null, "refusal": text}),
                "stop",
                20,
                5,
            ),
            headers: Vec::new(),
        }
    }

    /// An error answer as OpenAI writes it.
    pub fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Self {
        Self::Json {
            status,
            body: json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
            headers: Vec::new(),
        }
    }

    /// A 429 rate limit asking to wait `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self::Json {
            status: 429,
            body: json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
            headers: vec![("retry-after".to_owned(), seconds.to_string())],
        }
    }
}

fn completion(message: Value, finish: &str, prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": 1_795_500_000,
        "model": "sim",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct ScriptedRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct ScriptState {
    script: VecDeque<Scripted>,
    requests: Vec<ScriptedRequest>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<ScriptState>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ScriptState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running server; dropped, it stops.
pub struct ScriptedOpenAi {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedOpenAi {
    /// Listens on 127.0.0.1 (an ephemeral port).
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            state: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The `base_url` to configure (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Adds answers to the end of the script.
    pub fn push(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.state().script.extend(answers);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ScriptedRequest> {
        self.shared.state().requests.clone()
    }

    /// Answers not used yet.
    pub fn remaining(&self) -> usize {
        self.shared.state().script.len()
    }
}

async fn answer(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let next = {
        let mut state = shared.state();
        state.requests.push(ScriptedRequest {
            path: uri.path().to_owned(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body,
        });
        state.script.pop_front()
    };
    match next {
        Some(Scripted::Json {
            status,
            body,
            headers,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, axum::Json(body)).into_response();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    header::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": {"message": "script exhausted: the test pushed fewer answers than the client asked for", "type": "server_error", "param": null, "code": null}})),
        )
            .into_response(),
    }
}

//! A scripted OpenAI-compatible server for the reasoner's tests and benchmarks: each
//! `POST /v1/chat/completions` takes the next scripted answer, in order,
//! and every request body is kept so a test can check what the client sent (the tools offered,
//! the tool results fed back, how untrusted text was wrapped).
//!
//! Answers are recorded exchanges: a plain reply, tool calls (several at once for parallel
//! calls), a refusal, or an error with its HTTP status (429 rate limit, 429
//! `insufficient_quota`, 400, 500). When the script runs out the server
//! answers 500 with `script exhausted`, which a test sees as a failure of its own script.
//!
//! Streaming: a request with `"stream": true` gets its 200 answer as server-sent events
//! (`data: {chat.completion.chunk}` lines, then `data: [DONE]`), content split at word ends and
//! each tool call's arguments split across chunks, parallel calls interleaved by `index`, as
//! OpenAI streams them; with `stream_options.include_usage` a last chunk with empty `choices`
//! carries the usage. Errors stay JSON answers, as they are before a real stream starts.
//! [`Scripted::cut_after`] ends a stream early (no finish reason, no usage, no `[DONE]`).
//!
//! `POST /v1/embeddings` answers deterministic unit vectors ([`embedding_for`]: from a hash of
//! the text) of the requested `dimensions` (16 when none is asked for), unless
//! [`ScriptedOpenAi::set_embedding_dims`] fixes a width (a server that ignores the parameter)
//! or [`ScriptedOpenAi::push_embeddings`] scripted an error for the next request.

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
    /// A streamed answer: `chunks` as `data:` lines, then `usage` (when there is one and the
    /// request asked for it with `stream_options.include_usage`), then `data: [DONE]`. With
    /// `cut_after: Some(n)` the body ends after `n` chunks, as when a connection drops.
    Stream {
        chunks: Vec<Value>,
        usage: Option<Value>,
        cut_after: Option<usize>,
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

    /// A streamed final answer in exactly these `parts` (one content delta each).
    pub fn streamed(parts: &[&str], prompt_tokens: u32, completion_tokens: u32) -> Self {
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        chunks.extend(
            parts
                .iter()
                .map(|part| chunk(json!({"content": part}), None)),
        );
        chunks.push(chunk(json!({}), Some("stop")));
        Self::Stream {
            chunks,
            usage: Some(usage(prompt_tokens, completion_tokens)),
            cut_after: None,
        }
    }

    /// Streamed tool calls, each call's arguments split into `pieces` deltas, parallel calls
    /// interleaved.
    pub fn streamed_tool_calls(
        calls: &[(&str, &str, &str)],
        pieces: usize,
        prompt_tokens: u32,
    ) -> Self {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": null}), None)];
        chunks.extend(tool_call_chunks(&calls, pieces));
        chunks.push(chunk(json!({}), Some("tool_calls")));
        Self::Stream {
            chunks,
            usage: Some(usage(prompt_tokens, 10)),
            cut_after: None,
        }
    }

    /// The same answer without token usage (a server that reports none, streamed or not).
    pub fn without_usage(self) -> Self {
        match self {
            Self::Json {
                status,
                mut body,
                headers,
            } => {
                if let Some(object) = body.as_object_mut() {
                    object.remove("usage");
                }
                Self::Json {
                    status,
                    body,
                    headers,
                }
            }
            Self::Stream {
                chunks, cut_after, ..
            } => Self::Stream {
                chunks,
                usage: None,
                cut_after,
            },
        }
    }

    /// The same answer streamed and cut after `chunks` chunks: the body ends there, with no
    /// finish reason, no usage and no `[DONE]`. (An error answer stays as it is.)
    pub fn cut_after(self, chunks: usize) -> Self {
        match self.into_stream() {
            Self::Stream {
                chunks: all, usage, ..
            } => Self::Stream {
                chunks: all,
                usage,
                cut_after: Some(chunks),
            },
            other => other,
        }
    }

    /// A 200 chat completion as the stream OpenAI would send for it; anything else unchanged.
    fn into_stream(self) -> Self {
        let Self::Json {
            status: 200, body, ..
        } = &self
        else {
            return self;
        };
        if body["object"] != "chat.completion" {
            return self;
        }
        let choice = &body["choices"][0];
        let message = &choice["message"];
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        if let Some(text) = message["content"].as_str() {
            chunks.extend(
                text.split_inclusive(' ')
                    .map(|part| chunk(json!({"content": part}), None)),
            );
        }
        if let Some(refusal) = message["refusal"].as_str() {
            chunks.extend(
                refusal
                    .split_inclusive(' ')
                    .map(|part| chunk(json!({"refusal": part}), None)),
            );
        }
        if let Some(calls) = message["tool_calls"].as_array() {
            chunks.extend(tool_call_chunks(calls, 2));
        }
        let finish = choice["finish_reason"].as_str().unwrap_or("stop");
        chunks.push(chunk(json!({}), Some(finish)));
        Self::Stream {
            chunks,
            usage: body.get("usage").cloned(),
            cut_after: None,
        }
    }
}

/// One `chat.completion.chunk` with a single choice.
fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion.chunk",
        "created": 1_795_500_000,
        "model": "sim",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
    })
}

fn usage(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens
    })
}

/// Tool calls as OpenAI streams them: one chunk per call with its id and name (arguments
/// empty), then the arguments in `pieces` parts, the calls' parts interleaved.
fn tool_call_chunks(calls: &[Value], pieces: usize) -> Vec<Value> {
    let mut chunks: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            chunk(
                json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}]}),
                None,
            )
        })
        .collect();
    let split: Vec<Vec<String>> = calls
        .iter()
        .map(|call| split_text(call["function"]["arguments"].as_str().unwrap_or(""), pieces))
        .collect();
    for piece in 0..pieces.max(1) {
        for (index, parts) in split.iter().enumerate() {
            if let Some(part) = parts.get(piece) {
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
                    None,
                ));
            }
        }
    }
    chunks
}

/// `text` in `pieces` parts of about equal length, cut on character boundaries; empty parts
/// are left out.
fn split_text(text: &str, pieces: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(pieces.max(1)).max(1);
    chars
        .chunks(size)
        .map(|part| part.iter().collect())
        .collect()
}

/// The scripted server's embedding of `text`: `dims` values from a fixed hash of the text
/// (FNV-1a seeding xorshift64*), L2-normalized; the same text gives the same vector every time.
pub fn embedding_for(text: &str, dims: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    }) | 1;
    let mut vector: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
            (bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

fn completion(message: Value, finish: &str, prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": 1_795_500_000,
        "model": "sim",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage(prompt_tokens, completion_tokens)
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
    /// Answers for `/v1/embeddings` before it computes vectors again (errors, usually).
    embedding_script: VecDeque<Scripted>,
    /// A width every embedding has whatever the request asks (`None`: as asked).
    embedding_dims: Option<usize>,
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
            .route("/v1/embeddings", post(embeddings))
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

    /// Answers not used yet (chat and embeddings).
    pub fn remaining(&self) -> usize {
        let state = self.shared.state();
        state.script.len() + state.embedding_script.len()
    }

    /// Answers for the next `/v1/embeddings` requests, in order, before the server computes
    /// vectors again (errors such as [`Scripted::rate_limited`]).
    pub fn push_embeddings(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.state().embedding_script.extend(answers);
    }

    /// Makes every embedding `dims` wide whatever the request asks (`None`: as asked).
    pub fn set_embedding_dims(&self, dims: Option<usize>) {
        self.shared.state().embedding_dims = dims;
    }
}

impl Shared {
    /// Records the request; returns its body.
    fn record(
        &self,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> (Value, MutexGuard<'_, ScriptState>) {
        let body: Value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let mut state = self.state();
        state.requests.push(ScriptedRequest {
            path: uri.path().to_owned(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
        });
        (body, state)
    }
}

async fn answer(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (body, next) = {
        let (body, mut state) = shared.record(&uri, &headers, &body);
        let next = state.script.pop_front();
        (body, next)
    };
    let Some(next) = next else {
        return exhausted();
    };
    let next = if body["stream"] == true {
        next.into_stream()
    } else {
        next
    };
    let include_usage = body["stream_options"]["include_usage"] == true;
    respond(next, include_usage)
}

async fn embeddings(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (body, next, fixed_dims) = {
        let (body, mut state) = shared.record(&uri, &headers, &body);
        let next = state.embedding_script.pop_front();
        (body, next, state.embedding_dims)
    };
    if let Some(next) = next {
        return respond(next, false);
    }
    let dims = fixed_dims
        .or_else(|| {
            body["dimensions"]
                .as_u64()
                .and_then(|dims| usize::try_from(dims).ok())
        })
        .unwrap_or(16);
    let texts: Vec<&str> = match &body["input"] {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if texts.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "'input' must be a string or an array of strings", "type": "invalid_request_error", "param": "input", "code": null}})),
        )
            .into_response();
    }
    let tokens: usize = texts
        .iter()
        .map(|text| text.split_whitespace().count())
        .sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embedding_for(text, dims)}))
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}

fn exhausted() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": {"message": "script exhausted: the test pushed fewer answers than the client asked for", "type": "server_error", "param": null, "code": null}})),
    )
        .into_response()
}

fn respond(answer: Scripted, include_usage: bool) -> Response {
    match answer {
        Scripted::Json {
            status,
            body,
            headers,
        } => {
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
        Scripted::Stream {
            chunks,
            usage,
            cut_after,
        } => {
            let mut text = String::new();
            let sent = cut_after.unwrap_or(chunks.len());
            for mut chunk in chunks.into_iter().take(sent) {
                if include_usage {
                    chunk["usage"] = Value::Null;
                }
                text.push_str(&format!("data: {chunk}\n\n"));
            }
            if cut_after.is_none() {
                if let (true, Some(usage)) = (include_usage, usage) {
                    let last = json!({"id": "chatcmpl-sim", "object": "chat.completion.chunk",
                        "created": 1_795_500_000, "model": "sim", "choices": [], "usage": usage});
                    text.push_str(&format!("data: {last}\n\n"));
                }
                text.push_str("data: [DONE]\n\n");
            }
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/event-stream"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                text,
            )
                .into_response()
        }
    }
}

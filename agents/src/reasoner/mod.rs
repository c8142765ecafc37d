//! The reasoner: an LLM tool loop over any OpenAI-compatible endpoint (OpenAI, Azure, vLLM,
//! llama.cpp server, Ollama), through async-openai (named nowhere else).
//!
//! It asks the model, runs the tools the model calls (in parallel, each with a timeout, each
//! result cut to a byte budget) and feeds the results back, for at most `max_steps` model calls,
//! then returns the answer with the tool results it used as citations. It only reads: the one
//! tool that changes anything, `propose_action`, hands a proposal to the gate and returns the
//! gate's decision.
//!
//! [`Reasoner::answer_streaming`] is the same loop with every model call streamed (server-sent
//! events): the answer's text reaches a callback delta by delta as the model writes it, so a chat
//! or the console can show progress; tool calls are assembled from their deltas. Token usage is
//! asked for with `stream_options.include_usage`; a server that sends none (or any answer
//! without `usage`) is charged an estimate of one token per four bytes of request and answer,
//! and the reply says so ([`Reply::usage_estimated`]).
//!
//! [`embed::OpenAiEmbedder`] turns texts into vectors through the same kind of endpoint
//! (`/v1/embeddings`), for the vector memory.
//!
//! What it must never do: act, let text from outside read as instructions (the question and
//! anything fetched are wrapped as untrusted data), spend past a token budget (each agent's
//! tokens are counted per day in the store; over budget it refuses and the caller falls back to
//! no-LLM answers), or put a secret in a prompt or an error.

use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionResponse,
};
use chrono::Utc;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
pub use tools::llm::{ToolDefinition, ToolRegistry, truncate, untrusted};
use tools::secret::Secret;

pub mod embed;
pub mod usage;

use usage::{UsageLedger, UsageTotals};

/// Where and how the reasoner talks to a model.
#[derive(Clone, Debug)]
pub struct ReasonerConfig {
    /// `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1` (llama.cpp server), ...
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    /// Model calls per question, tool rounds included.
    pub max_steps: u32,
    /// One model call, retries included.
    pub call_timeout: Duration,
    /// One tool call.
    pub tool_timeout: Duration,
    /// Longest tool result fed back, in bytes (cut on a character boundary, marked).
    pub max_tool_result_bytes: usize,
    /// Attempts of a model call that failed transiently (5xx, connection); 429s are waited out
    /// by the client as the server asks, `insufficient_quota` is never retried.
    pub max_attempts: u32,
    /// Tokens (prompt + completion) one agent may use per UTC day; `None`: no limit.
    pub daily_token_budget: Option<u64>,
    pub temperature: Option<f32>,
}

impl Default for ReasonerConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            api_key: None,
            max_steps: 6,
            call_timeout: Duration::from_secs(60),
            tool_timeout: Duration::from_secs(20),
            max_tool_result_bytes: 8 * 1024,
            max_attempts: 3,
            daily_token_budget: None,
            temperature: Some(0.2),
        }
    }
}

/// The tools a question may use: the runtime's [`ToolRegistry`]. A tool's failure, malformed
/// arguments or an unknown name are values (JSON text the model reads), never errors.
pub trait ToolBox: Send + Sync {
    fn definitions(&self) -> Vec<ToolDefinition>;
    fn call<'a>(&'a self, name: &'a str, arguments: &'a str) -> BoxFuture<'a, String>;
}

impl ToolBox for ToolRegistry {
    fn definitions(&self) -> Vec<ToolDefinition> {
        ToolRegistry::definitions(self)
    }

    fn call<'a>(&'a self, name: &'a str, arguments: &'a str) -> BoxFuture<'a, String> {
        Box::pin(async move { ToolRegistry::call(self, name, arguments).await.content })
    }
}

/// One turn of earlier conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
}

/// What to answer.
#[derive(Clone, Debug)]
pub struct Question {
    /// Whose budget pays (`conversation`, `market`, ...).
    pub agent: String,
    /// The rendered system prompt (trusted: from `prompts/`).
    pub system: String,
    /// Earlier turns, oldest first (wrapped as untrusted when they came from people).
    pub history: Vec<Turn>,
    /// The question (untrusted: typed by a person or built from fetched text).
    pub text: String,
    /// Where the question came from, for the untrusted label (`telegram:alice`).
    pub source: String,
}

/// A tool call the model made and what it got back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub result: Value,
    pub duration_ms: u64,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    /// The model declined (its refusal is the text).
    pub refused: bool,
    pub model_calls: u32,
    pub tools: Vec<ToolUse>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Some model call came back without token usage, so its tokens were estimated (one per
    /// four bytes of request and answer) for the totals and the budget.
    #[serde(default)]
    pub usage_estimated: bool,
}

impl Reply {
    /// `tool(arguments)` for each tool result the answer rests on, in call order.
    pub fn citations(&self) -> Vec<String> {
        self.tools
            .iter()
            .map(|tool| format!("{}({})", tool.name, tool.arguments))
            .collect()
    }
}

/// Why there is no answer. Texts never hold the API key.
#[derive(Debug, thiserror::Error)]
pub enum ReasonerError {
    #[error("the model endpoint is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the model endpoint is out of quota (insufficient_quota): {0}; add credit or lower the use"
    )]
    Quota(String),
    #[error("the model endpoint refused the request: {0}")]
    InvalidRequest(String),
    #[error("no answer from the model within {0:?}")]
    Timeout(Duration),
    #[error(
        "agent {agent} used {used} of its {budget} tokens for today; answers without the model until midnight UTC"
    )]
    BudgetExceeded {
        agent: String,
        used: u64,
        budget: u64,
    },
    #[error("no answer after {0} model calls (the step limit); ask something narrower")]
    StepLimit(u32),
    #[error("the model's answer could not be read: {0}")]
    Malformed(String),
    #[error("usage ledger: {0}")]
    Store(#[from] memory::StoreError),
}

impl ReasonerError {
    /// Worth trying again later (as opposed to fixing something first).
    pub fn transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }
}

/// The running reasoner.
pub struct Reasoner {
    config: ReasonerConfig,
    client: Client<OpenAIConfig>,
    ledger: UsageLedger,
}

impl std::fmt::Debug for Reasoner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reasoner")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl Reasoner {
    pub fn new(config: ReasonerConfig, store: memory::Store) -> Result<Self, ReasonerError> {
        tools::http::install_crypto_provider();
        let url = reqwest::Url::parse(&config.base_url).map_err(|error| {
            ReasonerError::InvalidRequest(format!(
                "base_url {:?} is not a URL: {error}",
                config.base_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReasonerError::InvalidRequest(format!(
                "base_url must be http or https, got {:?}",
                url.scheme()
            )));
        }
        let mut openai = OpenAIConfig::new().with_api_base(config.base_url.trim_end_matches('/'));
        if let Some(key) = &config.api_key {
            openai = openai.with_api_key(key.expose());
        }
        let http = reqwest::Client::builder()
            .timeout(config.call_timeout)
            .build()
            .map_err(|error| ReasonerError::Unavailable(error.without_url().to_string()))?;
        Ok(Self {
            client: Client::with_config(openai).with_http_client(http),
            ledger: UsageLedger::new(store),
            config,
        })
    }

    /// Tokens `agent` used today.
    pub fn usage_today(&self, agent: &str) -> Result<UsageTotals, ReasonerError> {
        Ok(self.ledger.day(agent, Utc::now().date_naive())?)
    }

    fn check_budget(&self, agent: &str) -> Result<(), ReasonerError> {
        if let Some(budget) = self.config.daily_token_budget {
            let used = self.ledger.day(agent, Utc::now().date_naive())?.total();
            if used >= budget {
                return Err(ReasonerError::BudgetExceeded {
                    agent: agent.to_owned(),
                    used,
                    budget,
                });
            }
        }
        Ok(())
    }

    /// Answers `question` with `tools`.
    pub async fn answer(
        &self,
        question: &Question,
        tools: &dyn ToolBox,
    ) -> Result<Reply, ReasonerError> {
        self.run(question, tools, None).await
    }

    /// Answers `question` with `tools`, every model call streamed: `on_delta` gets the text as
    /// the model writes it, in order (the final answer's text; a refusal's text too, and the
    /// rare words a model writes next to its tool calls). The deltas concatenated are
    /// [`Reply::text`] before trimming.
    ///
    /// A stream that breaks off is [`ReasonerError::Unavailable`]; it is tried again under the
    /// usual rules only while that call has passed nothing to `on_delta` (text already shown is
    /// never repeated), otherwise the error is returned and the text shown so far is partial.
    pub async fn answer_streaming(
        &self,
        question: &Question,
        tools: &dyn ToolBox,
        mut on_delta: impl FnMut(&str) + Send,
    ) -> Result<Reply, ReasonerError> {
        self.run(question, tools, Some(&mut on_delta)).await
    }

    async fn run(
        &self,
        question: &Question,
        tools: &dyn ToolBox,
        mut on_delta: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Reply, ReasonerError> {
        let definitions = tools.definitions();
        let offered: Vec<Value> = definitions
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
            })
            .collect();
        let mut messages = vec![json!({"role": "system", "content": question.system})];
        for turn in &question.history {
            let content = if turn.role == "assistant" {
                turn.text.clone()
            } else {
                untrusted(&turn.text, &question.source)
            };
            let role = if turn.role == "assistant" {
                "assistant"
            } else {
                "user"
            };
            messages.push(json!({"role": role, "content": content}));
        }
        messages
            .push(json!({"role": "user", "content": untrusted(&question.text, &question.source)}));
        let mut reply = Reply {
            text: String::new(),
            refused: false,
            model_calls: 0,
            tools: Vec::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            usage_estimated: false,
        };
        while reply.model_calls < self.config.max_steps {
            self.check_budget(&question.agent)?;
            let mut body = json!({"model": self.config.model, "messages": messages});
            if !offered.is_empty() {
                body["tools"] = Value::Array(offered.clone());
                body["parallel_tool_calls"] = json!(true);
            }
            if let Some(temperature) = self.config.temperature {
                body["temperature"] = json!(temperature);
            }
            let request_bytes = body.to_string().len();
            let turn = match on_delta.as_mut() {
                None => self.call_model(body).await?,
                Some(sink) => self.call_model_streaming(body, &mut **sink).await?,
            };
            reply.model_calls += 1;
            let (prompt_tokens, completion_tokens) = match turn.usage {
                Some(usage) => usage,
                None => {
                    reply.usage_estimated = true;
                    (
                        estimate_tokens(request_bytes),
                        estimate_tokens(turn.bytes()),
                    )
                }
            };
            reply.prompt_tokens += prompt_tokens;
            reply.completion_tokens += completion_tokens;
            self.ledger.add(
                &question.agent,
                Utc::now().date_naive(),
                prompt_tokens,
                completion_tokens,
            )?;
            if let Some(refusal) = turn.refusal {
                reply.text = refusal;
                reply.refused = true;
                return Ok(reply);
            }
            if turn.calls.is_empty() {
                reply.text = turn.content.unwrap_or_default().trim().to_owned();
                return Ok(reply);
            }
            // The assistant turn goes back with its calls; content "" (not null: llama.cpp's
            // server answers 500 to a null content next to tool_calls).
            messages.push(json!({
                "role": "assistant",
                "content": turn.content.unwrap_or_default(),
                "tool_calls": turn.calls.iter().map(|(id, name, arguments)| json!({
                    "id": id, "type": "function", "function": {"name": name, "arguments": arguments}
                })).collect::<Vec<_>>(),
            }));
            let results = futures::future::join_all(
                turn.calls
                    .iter()
                    .map(|(id, name, arguments)| self.run_tool(tools, id, name, arguments)),
            )
            .await;
            for used in results {
                let (text, _) =
                    truncate(&used.result.to_string(), self.config.max_tool_result_bytes);
                messages.push(json!({"role": "tool", "tool_call_id": used.id, "content": text}));
                reply.tools.push(used);
            }
        }
        Err(ReasonerError::StepLimit(self.config.max_steps))
    }

    async fn run_tool(
        &self,
        tools: &dyn ToolBox,
        id: &str,
        name: &str,
        arguments: &str,
    ) -> ToolUse {
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.config.tool_timeout, tools.call(name, arguments)).await
            {
                // Registry results are JSON; anything else is kept as a string.
                Ok(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                Err(_) => json!({"error": format!(
                    "tool {name} gave no answer within {:?}", self.config.tool_timeout
                ), "kind": "timeout"}),
            };
        tracing::debug!(
            tool = name,
            ms = started.elapsed().as_millis() as u64,
            "reasoner: tool called"
        );
        ToolUse {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
            result,
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }

    fn request(&self, body: Value) -> Result<CreateChatCompletionRequest, ReasonerError> {
        serde_json::from_value(body).map_err(|error| {
            ReasonerError::InvalidRequest(format!("building the request: {error}"))
        })
    }

    /// One model call with the retries transient failures deserve.
    async fn call_model(&self, body: Value) -> Result<ModelTurn, ReasonerError> {
        let request = self.request(body)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout(
                self.config.call_timeout,
                self.client.chat().create(request.clone()),
            )
            .await;
            let error = match outcome {
                Err(_) => ReasonerError::Timeout(self.config.call_timeout),
                Ok(Ok(response)) => return ModelTurn::from_response(response),
                Ok(Err(error)) => self.classify(error),
            };
            if !error.transient() || attempt >= self.config.max_attempts {
                return Err(error);
            }
            tracing::warn!(%error, attempt, "reasoner: model call failed; trying again");
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// One streamed model call: content deltas go to `sink` as they arrive. Retried like
    /// [`Self::call_model`], but only while this call has passed nothing to `sink`.
    async fn call_model_streaming(
        &self,
        body: Value,
        sink: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ModelTurn, ReasonerError> {
        let mut request = self.request(body)?;
        request.stream = Some(true);
        request.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut emitted = false;
            let outcome = tokio::time::timeout(
                self.config.call_timeout,
                self.stream_once(request.clone(), sink, &mut emitted),
            )
            .await;
            let error = match outcome {
                Err(_) => ReasonerError::Timeout(self.config.call_timeout),
                Ok(Ok(turn)) => return Ok(turn),
                Ok(Err(error)) => error,
            };
            if !error.transient() || attempt >= self.config.max_attempts {
                return Err(error);
            }
            if emitted {
                tracing::warn!(%error, attempt, "reasoner: the answer stream broke off after text was shown; not trying again");
                return Err(error);
            }
            tracing::warn!(%error, attempt, "reasoner: model call failed; trying again");
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    async fn stream_once(
        &self,
        request: CreateChatCompletionRequest,
        sink: &mut (dyn FnMut(&str) + Send),
        emitted: &mut bool,
    ) -> Result<ModelTurn, ReasonerError> {
        let mut stream = self
            .client
            .chat()
            .create_stream(request)
            .await
            .map_err(|error| self.classify(error))?;
        let mut turn = ModelTurn::default();
        // Tool calls by their `index`: id and name come first, arguments in pieces.
        let mut calls: std::collections::BTreeMap<u32, (String, String, String)> =
            std::collections::BTreeMap::new();
        let mut finished = false;
        let mut chunks = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| self.classify(error))?;
            chunks += 1;
            if let Some(usage) = chunk.usage {
                turn.usage = Some((
                    u64::from(usage.prompt_tokens),
                    u64::from(usage.completion_tokens),
                ));
            }
            // One choice is asked for (no `n`); others would be alternatives, not more text.
            let Some(choice) = chunk.choices.into_iter().find(|choice| choice.index == 0) else {
                continue;
            };
            let delta = choice.delta;
            for text in [&delta.content, &delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    sink(text);
                    *emitted = true;
                }
            }
            if let Some(text) = delta.content {
                turn.content.get_or_insert_with(String::new).push_str(&text);
            }
            if let Some(text) = delta.refusal {
                turn.refusal.get_or_insert_with(String::new).push_str(&text);
            }
            for piece in delta.tool_calls.unwrap_or_default() {
                let call = calls.entry(piece.index).or_default();
                if let Some(id) = piece.id {
                    call.0 = id;
                }
                if let Some(function) = piece.function {
                    if let Some(name) = function.name {
                        call.1.push_str(&name);
                    }
                    if let Some(arguments) = function.arguments {
                        call.2.push_str(&arguments);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                finished = true;
            }
        }
        if !finished {
            return Err(ReasonerError::Unavailable(format!(
                "the answer stream ended after {chunks} chunks, before the model finished (no finish_reason)"
            )));
        }
        // A server that leaves out a call's id still gets its result matched: by index.
        turn.calls = calls
            .into_iter()
            .map(|(index, (id, name, arguments))| {
                let id = if id.is_empty() {
                    format!("call_{index}")
                } else {
                    id
                };
                (id, name, arguments)
            })
            .collect();
        if let Some((id, ..)) = turn.calls.iter().find(|(_, name, _)| name.is_empty()) {
            return Err(ReasonerError::Malformed(format!(
                "the streamed tool call {id} came without a tool name"
            )));
        }
        Ok(turn)
    }

    fn classify(&self, error: OpenAIError) -> ReasonerError {
        classify(
            error,
            self.config.api_key.as_ref(),
            self.config.call_timeout,
        )
    }
}

/// What one model call gave back, streamed or not.
#[derive(Debug, Default)]
struct ModelTurn {
    content: Option<String>,
    refusal: Option<String>,
    /// `(call id, tool name, arguments)`, in the model's order.
    calls: Vec<(String, String, String)>,
    /// `(prompt, completion)` tokens as the server counted them; `None` when it did not say.
    usage: Option<(u64, u64)>,
}

impl ModelTurn {
    fn from_response(response: CreateChatCompletionResponse) -> Result<Self, ReasonerError> {
        let usage = response.usage.map(|usage| {
            (
                u64::from(usage.prompt_tokens),
                u64::from(usage.completion_tokens),
            )
        });
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(ReasonerError::Malformed(
                "the answer has no choices".to_owned(),
            ));
        };
        let message = choice.message;
        let calls = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => {
                    Some((call.id, call.function.name, call.function.arguments))
                }
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        Ok(Self {
            content: message.content,
            refusal: message.refusal,
            calls,
            usage,
        })
    }

    /// Bytes of what the model wrote, for estimating its tokens.
    fn bytes(&self) -> usize {
        let text = |text: &Option<String>| text.as_ref().map_or(0, String::len);
        text(&self.content)
            + text(&self.refusal)
            + self
                .calls
                .iter()
                .map(|(id, name, arguments)| id.len() + name.len() + arguments.len())
                .sum::<usize>()
    }
}

/// Tokens of `bytes` bytes of text (or JSON) when the server did not count them: one per four
/// bytes, as OpenAI's tokenizers average on English, and at least one.
fn estimate_tokens(bytes: usize) -> u64 {
    (bytes.div_ceil(4) as u64).max(1)
}

/// The wait before attempt `attempt + 1`: 250 ms doubling, at most 8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.saturating_pow(attempt.saturating_sub(1)))
        .min(Duration::from_secs(8))
}

/// An async-openai error as the kind a caller acts on, with the key (if any) masked.
pub(crate) fn classify(
    error: OpenAIError,
    api_key: Option<&Secret>,
    timeout: Duration,
) -> ReasonerError {
    let scrub = |text: String| match api_key {
        Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
        _ => text,
    };
    match error {
        OpenAIError::ApiError(response) => {
            let status = response.status_code.as_u16();
            let api = &response.api_error;
            let text = scrub(format!("HTTP {status}: {}", api.message));
            let quota = api.r#type.as_deref() == Some("insufficient_quota")
                || api.code.as_deref() == Some("insufficient_quota");
            if quota {
                ReasonerError::Quota(text)
            } else if status == 429 || status >= 500 {
                ReasonerError::Unavailable(text)
            } else {
                ReasonerError::InvalidRequest(text)
            }
        }
        OpenAIError::Reqwest(error) => {
            if error.is_timeout() {
                ReasonerError::Timeout(timeout)
            } else {
                ReasonerError::Unavailable(scrub(error.without_url().to_string()))
            }
        }
        OpenAIError::JSONDeserialize(error, content) => {
            let snippet: String = content.chars().take(160).collect();
            ReasonerError::Malformed(scrub(format!("{error}; the body starts {snippet:?}")))
        }
        OpenAIError::StreamError(error) => {
            ReasonerError::Unavailable(scrub(format!("the answer stream broke off: {error}")))
        }
        other => ReasonerError::Unavailable(scrub(other.to_string())),
    }
}

#[cfg(test)]
mod tests;

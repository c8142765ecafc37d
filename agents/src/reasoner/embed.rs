//! Embeddings from an OpenAI-compatible endpoint (`POST /v1/embeddings`: OpenAI, Azure, vLLM,
//! llama.cpp server, Ollama) as a [`memory::vector::Embedder`].
//!
//! The trait is synchronous (embedding is usually CPU work); this one is a network call, so the
//! embedder owns a small tokio runtime (one worker thread) that makes the calls, and
//! [`Embedder::embed`] waits for the answer on a plain channel. That never deadlocks and never
//! panics, whatever thread calls it: a plain thread, `tokio::task::spawn_blocking` (the
//! intended way from async code), even an async task (which it then blocks, so don't).
//!
//! Texts go in batches ([`OpenAiEmbedderConfig::batch_size`], 64 by default); 429s and 5xx are
//! tried again as the reasoner does (async-openai's own retries inside each of `max_attempts`); every vector is checked (count, width, finite, not zero) and
//! L2-normalized (OpenAI's already are; other servers' may not be). The id is
//! `openai:<model>:<dims>`, so another model or width is another vector space. Errors never
//! hold the API key.

use std::sync::mpsc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use memory::vector::{EmbedError, Embedder};
use tools::secret::Secret;

use super::{ReasonerError, backoff, classify};

/// Where and how to embed.
#[derive(Clone, Debug)]
pub struct OpenAiEmbedderConfig {
    /// `https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`, ...
    pub base_url: String,
    /// `text-embedding-3-small`, ...
    pub model: String,
    pub api_key: Option<Secret>,
    /// Asked of the endpoint as `dimensions` (text-embedding-3-* can shorten their vectors).
    /// `None`: the model's own width, known for OpenAI's models and otherwise learned from one
    /// probe call when the embedder is built.
    pub dimensions: Option<u32>,
    /// Texts per request.
    pub batch_size: usize,
    /// One request, retries not included.
    pub call_timeout: Duration,
    /// Attempts of a request that failed transiently (429, 5xx, connection, timeout); each
    /// attempt is async-openai's call, which itself retries 429, 5xx and connection errors three
    /// times (100 ms doubling, or as `Retry-After` asks). `insufficient_quota` is never retried.
    pub max_attempts: u32,
}

impl Default for OpenAiEmbedderConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "text-embedding-3-small".to_owned(),
            api_key: None,
            dimensions: None,
            batch_size: 64,
            call_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

/// Widths of OpenAI's embedding models at their full size.
fn known_dims(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

/// The embedder. Dropping it stops its runtime (without waiting, so dropping it anywhere is
/// fine, async code included).
pub struct OpenAiEmbedder {
    calls: Calls,
    id: String,
    dims: usize,
    /// Owned here and only used to run [`Calls::embed`]; an `Option` so `Drop` can take it.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("id", &self.id)
            .field("base_url", &self.calls.config.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for OpenAiEmbedder {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a call needs, cloned into the runtime's task.
#[derive(Clone)]
struct Calls {
    client: Client<OpenAIConfig>,
    config: OpenAiEmbedderConfig,
    /// For error messages: `openai:<model>` until the width is known.
    name: String,
}

impl OpenAiEmbedder {
    /// Builds the client and its runtime; when neither the config nor the model name says the
    /// width, asks the endpoint once (so this may block for one call: from async code, build it
    /// under `spawn_blocking`).
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, EmbedError> {
        let name = format!("openai:{}", config.model);
        let unavailable = |message: String| EmbedError::Unavailable {
            embedder: name.clone(),
            message,
        };
        tools::http::install_crypto_provider();
        let url = reqwest::Url::parse(&config.base_url).map_err(|error| {
            unavailable(format!(
                "base_url {:?} is not a URL: {error}",
                config.base_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(unavailable(format!(
                "base_url must be http or https, got {:?}",
                url.scheme()
            )));
        }
        if config.batch_size == 0 {
            return Err(unavailable("batch_size must be at least 1".to_owned()));
        }
        let mut openai = OpenAIConfig::new().with_api_base(config.base_url.trim_end_matches('/'));
        if let Some(key) = &config.api_key {
            openai = openai.with_api_key(key.expose());
        }
        let http = reqwest::Client::builder()
            .timeout(config.call_timeout)
            .build()
            .map_err(|error| unavailable(error.without_url().to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("openai-embedder")
            .enable_all()
            .build()
            .map_err(|error| unavailable(format!("starting its runtime: {error}")))?;
        let calls = Calls {
            client: Client::with_config(openai).with_http_client(http),
            config,
            name,
        };
        let mut embedder = Self {
            id: String::new(),
            dims: 0,
            runtime: Some(runtime),
            calls,
        };
        let dims = match (
            embedder.calls.config.dimensions,
            known_dims(&embedder.calls.config.model),
        ) {
            (Some(dims), _) => dims as usize,
            (None, Some(dims)) => dims,
            (None, None) => {
                let probe = embedder.run(vec!["dimension probe".to_owned()])?;
                probe.first().map_or(0, Vec::len)
            }
        };
        if dims == 0 {
            return Err(EmbedError::BadOutput {
                embedder: embedder.calls.name.clone(),
                message: "the endpoint answered an empty vector".to_owned(),
            });
        }
        embedder.dims = dims;
        embedder.id = format!("openai:{}:{dims}", embedder.calls.config.model);
        embedder.calls.name = embedder.id.clone();
        Ok(embedder)
    }

    /// Runs the calls for `texts` on the owned runtime and waits for them.
    fn run(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let unavailable = |message: &str| EmbedError::Unavailable {
            embedder: self.calls.name.clone(),
            message: message.to_owned(),
        };
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| unavailable("its runtime is stopped"))?;
        let (sender, receiver) = mpsc::sync_channel(1);
        let calls = self.calls.clone();
        runtime.spawn(async move {
            let _ = sender.send(calls.embed(texts).await);
        });
        receiver
            .recv()
            .map_err(|_| unavailable("the embedding task stopped without an answer"))?
    }
}

impl Calls {
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            vectors.extend(self.batch(batch).await?);
        }
        Ok(vectors)
    }

    async fn batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let request = CreateEmbeddingRequest {
            model: self.config.model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            dimensions: self.config.dimensions,
            ..CreateEmbeddingRequest::default()
        };
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let outcome = tokio::time::timeout(
                self.config.call_timeout,
                self.client.embeddings().create(request.clone()),
            )
            .await;
            let error = match outcome {
                Err(_) => ReasonerError::Timeout(self.config.call_timeout),
                Ok(Ok(response)) => break response,
                Ok(Err(error)) => classify(
                    error,
                    self.config.api_key.as_ref(),
                    self.config.call_timeout,
                ),
            };
            if !error.transient() || attempt >= self.config.max_attempts {
                return Err(match error {
                    ReasonerError::Malformed(message) => EmbedError::BadOutput {
                        embedder: self.name.clone(),
                        message,
                    },
                    other => EmbedError::Unavailable {
                        embedder: self.name.clone(),
                        message: other.to_string(),
                    },
                });
            }
            tracing::warn!(embedder = %self.name, %error, attempt, "embedding call failed; trying again");
            tokio::time::sleep(backoff(attempt)).await;
        };
        let bad = |message: String| EmbedError::BadOutput {
            embedder: self.name.clone(),
            message,
        };
        let mut data = response.data;
        if data.len() != texts.len() {
            return Err(bad(format!(
                "{} vectors for {} texts",
                data.len(),
                texts.len()
            )));
        }
        data.sort_by_key(|embedding| embedding.index);
        let mut vectors = Vec::with_capacity(data.len());
        for (position, embedding) in data.into_iter().enumerate() {
            if embedding.index as usize != position {
                return Err(bad(format!(
                    "the answer's indexes are not 0..{}",
                    texts.len()
                )));
            }
            let mut vector = embedding.embedding;
            if let Some(expected) = self.config.dimensions
                && vector.len() != expected as usize
            {
                return Err(bad(format!(
                    "vector #{position} has {} values, expected {expected} (does the endpoint honour `dimensions`?)",
                    vector.len()
                )));
            }
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!(
                    "vector #{position} holds NaN or infinite values"
                )));
            }
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm == 0.0 {
                return Err(bad(format!(
                    "vector #{position} is all zeros (cosine is undefined)"
                )));
            }
            for x in &mut vector {
                *x /= norm;
            }
            vectors.push(vector);
        }
        Ok(vectors)
    }
}

impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(index) = texts.iter().position(|text| text.trim().is_empty()) {
            return Err(EmbedError::InvalidInput {
                index,
                reason: "the text is empty".to_owned(),
            });
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = self.run(texts.iter().map(|text| (*text).to_owned()).collect())?;
        if let Some((index, vector)) = vectors
            .iter()
            .enumerate()
            .find(|(_, vector)| vector.len() != self.dims)
        {
            return Err(EmbedError::BadOutput {
                embedder: self.id.clone(),
                message: format!(
                    "vector #{index} has {} values, expected {}",
                    vector.len(),
                    self.dims
                ),
            });
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests;

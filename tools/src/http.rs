//! The HTTP core every client of the outside world shares: retries with backoff that honour
//! `Retry-After`, a per-source client-side rate limiter, and body checks that never assume JSON.

use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime};

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::warn;

use crate::secret::Secret;

/// How a client retries one logical request.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included. `0` is treated as `1`.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles per attempt.
    pub base_delay: Duration,
    /// Cap on any delay, `Retry-After` included, so a hostile header cannot park a poller.
    pub max_delay: Duration,
    /// Time allowed for one attempt (connect, headers and body).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
///
/// A server's `Retry-After` wins (capped at `max_delay`, no jitter: the server said when).
/// Otherwise `base_delay * 2^(attempt-1)`, capped at `max_delay`, then scaled into
/// `[d/2, d]` by `jitter` in `0..=1` ("equal jitter"), so clients that failed together
/// do not retry together but never retry sooner than half the nominal delay.
pub fn backoff_delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    if let Some(retry_after) = retry_after {
        return retry_after.min(policy.max_delay);
    }
    let exponent = attempt.saturating_sub(1).min(31);
    let nominal = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    nominal.mul_f64(0.5 + 0.5 * jitter)
}

/// Parses a `Retry-After` value: delta-seconds (`"119"`) or an HTTP-date
/// (`"Thu, 29 Sep 2022 16:17:14 GMT"`). A date in the past means "now" (`Duration::ZERO`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What went wrong talking to an outside service, as the kinds a caller acts on.
/// Messages name the source and endpoint; they never carry an API key.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SourceError {
    #[error("rate limited ({}): {message}", retry_hint(.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("service unavailable (HTTP {status}): {message}; retry later")]
    Unavailable { status: u16, message: String },
    #[error(
        "no response within {after:?}; the attempt was abandoned (raise the retry timeout if the service is only slow)"
    )]
    Timeout { after: Duration },
    #[error("connection failed: {message}")]
    Connect { message: String },
    #[error("invalid response: {detail}")]
    InvalidResponse { detail: String },
    #[error("upstream error{}: {message}", code_hint(.code))]
    Upstream { code: Option<i64>, message: String },
    #[error("request rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("invalid input: {detail}")]
    InvalidInput { detail: String },
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("server asks to retry after {}s", after.as_secs()),
        None => "no Retry-After given".to_owned(),
    }
}

fn code_hint(code: &Option<i64>) -> String {
    code.map(|code| format!(" (code {code})"))
        .unwrap_or_default()
}

impl SourceError {
    /// Whether the same request may succeed if sent again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Connect { .. }
                | Self::InvalidResponse { .. }
        )
    }

    /// Stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::Upstream { .. } => "upstream",
            Self::Rejected { .. } => "rejected",
            Self::InvalidInput { .. } => "invalid_input",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Rewrites every free-text field; used to scrub a secret a server echoed back.
    fn map_text(self, f: impl Fn(String) -> String) -> Self {
        match self {
            Self::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message: f(message),
            },
            Self::Unavailable { status, message } => Self::Unavailable {
                status,
                message: f(message),
            },
            Self::Timeout { after } => Self::Timeout { after },
            Self::Connect { message } => Self::Connect {
                message: f(message),
            },
            Self::InvalidResponse { detail } => Self::InvalidResponse { detail: f(detail) },
            Self::Upstream { code, message } => Self::Upstream {
                code,
                message: f(message),
            },
            Self::Rejected { status, message } => Self::Rejected {
                status,
                message: f(message),
            },
            Self::InvalidInput { detail } => Self::InvalidInput { detail: f(detail) },
        }
    }
}

/// A successful result plus how it was obtained, for metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched<T> {
    pub value: T,
    /// Attempts used, the successful one included.
    pub attempts: u32,
    /// Wall time from the first attempt to the answer, backoff and rate limiting included.
    pub latency: Duration,
}

/// Installs the rustls `ring` provider as the process default. Idempotent; every client
/// constructor calls it, because reqwest is built with `rustls-no-provider`.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One HTTP answer with its body read, handed to a source-specific interpreter.
pub(crate) struct HttpAnswer {
    /// "<source> GET <path>" without the query, for messages.
    pub origin: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<Duration>,
    /// All response headers, for sources that read more than `Retry-After` (GitHub's
    /// `Link` and `x-ratelimit-*`).
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub(crate) fn is_html(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|ct| ct.contains("text/html"))
            || self.body.trim_ascii_start().starts_with(b"<")
    }

    /// The first 120 characters of the body, for error messages.
    pub(crate) fn snippet(&self) -> String {
        body_snippet(&self.body)
    }

    /// Fails unless the Content-Type (when given) says JSON.
    pub(crate) fn ensure_json(&self) -> Result<(), SourceError> {
        match &self.content_type {
            Some(ct) if !ct.contains("json") => Err(SourceError::InvalidResponse {
                detail: format!(
                    "{}: expected a JSON body but got Content-Type {ct} (HTTP {}); body starts with {:?}",
                    self.origin,
                    self.status,
                    self.snippet()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Parses the body as `T`; the error names the JSON path, serde's line/column and
    /// the start of the body.
    pub(crate) fn parse_json<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            SourceError::InvalidResponse {
                detail: format!(
                    "{}: body is not the expected JSON (at `{path}`: {}); body starts with {:?}",
                    self.origin,
                    error.into_inner(),
                    self.snippet()
                ),
            }
        })
    }
}

pub(crate) fn body_snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(120).collect()
}

/// The URL with the values of `api_key`-like query parameters replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    let mut redacted = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            let hidden = lower.contains("api_key") || lower.contains("token");
            let value = if hidden {
                "***".to_owned()
            } else {
                value.into_owned()
            };
            (key.into_owned(), value)
        })
        .collect();
    if pairs.is_empty() {
        return redacted.to_string();
    }
    redacted.query_pairs_mut().clear().extend_pairs(pairs);
    redacted.to_string()
}

/// Spaces requests at least `min_interval` apart; the slot is reserved under the lock and
/// awaited outside it, so concurrent callers queue in order.
struct RateLimiter {
    min_interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl RateLimiter {
    async fn acquire(&self) {
        let wait = {
            let mut next_slot = self
                .next_slot
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let slot = next_slot.map_or(now, |next| next.max(now));
            *next_slot = Some(slot + self.min_interval);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The shared client core. One per source; cheap to share behind the client struct.
pub(crate) struct HttpCore {
    source: &'static str,
    client: reqwest::Client,
    retry: RetryPolicy,
    limiter: RateLimiter,
    /// Kept only to scrub it from any text a server echoes back.
    secret: Option<Secret>,
    /// Bodies larger than this are abandoned while streaming; `None` reads any size.
    max_body_bytes: Option<usize>,
}

impl HttpCore {
    pub(crate) fn new(
        source: &'static str,
        requests_per_second: f64,
        retry: RetryPolicy,
        default_headers: HeaderMap,
        secret: Option<Secret>,
    ) -> Result<Self, SourceError> {
        install_crypto_provider();
        let min_interval = if requests_per_second.is_finite() && requests_per_second > 0.0 {
            Duration::try_from_secs_f64(1.0 / requests_per_second).unwrap_or(Duration::ZERO)
        } else {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{source}: requests_per_second must be a positive number, got {requests_per_second}"
                ),
            });
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("command-center-tools/", env!("CARGO_PKG_VERSION")))
            .default_headers(default_headers)
            .connect_timeout(retry.timeout)
            .build()
            .map_err(|error| SourceError::InvalidInput {
                detail: format!(
                    "{source}: cannot build the HTTP client: {}",
                    error_chain(&error)
                ),
            })?;
        Ok(Self {
            source,
            client,
            retry,
            limiter: RateLimiter {
                min_interval,
                next_slot: Mutex::new(None),
            },
            secret,
            max_body_bytes: None,
        })
    }

    /// Abandons bodies larger than `limit` bytes (Content-Length checked first, then the
    /// stream), so a misconfigured URL cannot make a poller buffer a huge download.
    pub(crate) fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    pub(crate) fn source(&self) -> &'static str {
        self.source
    }

    /// GETs `url`, interprets the answer, retries transient failures per the policy.
    pub(crate) async fn get<T>(
        &self,
        url: &Url,
        interpret: impl Fn(HttpAnswer) -> Result<T, SourceError>,
    ) -> Result<Fetched<T>, SourceError> {
        let started = Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let result = match self.send(url).await {
                Ok(answer) => interpret(answer),
                Err(error) => Err(error),
            };
            let error = match result {
                Ok(value) => {
                    return Ok(Fetched {
                        value,
                        attempts: attempt,
                        latency: started.elapsed(),
                    });
                }
                Err(error) => self.scrub(error),
            };
            let giving_up = attempt >= max_attempts || !error.is_transient();
            warn!(
                source = self.source,
                url = %redact_url(url),
                attempt,
                max_attempts,
                kind = error.kind(),
                giving_up,
                error = %error,
                "request attempt failed"
            );
            if giving_up {
                return Err(error);
            }
            let delay = backoff_delay(
                &self.retry,
                attempt,
                error.retry_after(),
                rand::random::<f64>(),
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// POSTs a JSON body for a request that must not run twice (`sendBoc`). Retried only
    /// when the connection could not be made, so nothing reached the server; a timeout, a
    /// dropped connection or any answer ends it. Errors then keep that distinction:
    /// [`SourceError::Connect`] means nothing was delivered, every other error means it may
    /// have been.
    pub(crate) async fn post_json_once<T>(
        &self,
        url: &Url,
        body: &serde_json::Value,
        interpret: impl Fn(HttpAnswer) -> Result<T, SourceError>,
    ) -> Result<Fetched<T>, SourceError> {
        let started = Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let origin = format!("{} POST {}", self.source, url.path());
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let sent = self
                .client
                .post(url.clone())
                .timeout(self.retry.timeout)
                .json(body)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) if error.is_connect() && attempt < max_attempts => {
                    warn!(source = self.source, url = %redact_url(url), attempt, max_attempts,
                        error = %error_chain(&error.without_url()), "connection failed before sending; retrying");
                    let delay = backoff_delay(&self.retry, attempt, None, rand::random::<f64>());
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(error) if error.is_connect() => {
                    return Err(self.scrub(self.transport_error(&origin, error)));
                }
                Err(error) if error.is_timeout() => {
                    return Err(SourceError::Timeout {
                        after: self.retry.timeout,
                    });
                }
                Err(error) => {
                    return Err(self.scrub(SourceError::InvalidResponse {
                        detail: format!(
                            "{origin}: the request was sent but no answer came back ({}); it may have been delivered",
                            error_chain(&error.without_url())
                        ),
                    }));
                }
            };
            let answer = self
                .read_answer(&origin, response)
                .await
                .map_err(|error| match error {
                    // The body was cut off: the server had the request.
                    SourceError::Connect { message } => SourceError::InvalidResponse {
                        detail: format!("{message}; it may have been delivered"),
                    },
                    other => other,
                });
            let result = answer
                .and_then(&interpret)
                .map_err(|error| self.scrub(error));
            return result.map(|value| Fetched {
                value,
                attempts: attempt,
                latency: started.elapsed(),
            });
        }
    }

    /// POSTs a JSON body (`application/json; charset=utf-8`) for a request the server must
    /// not act on twice (posting a chat message). Sent again only when the server surely did
    /// not act on it: the connection could not be made, or the interpreted answer is
    /// [`SourceError::RateLimited`] (after the server's `Retry-After`, capped by the
    /// policy). Any other error ends it, a timeout included, since the server may have acted.
    ///
    /// `shown_as` stands for the URL in messages and logs, for URLs whose path is itself a
    /// credential (Slack's `response_url`).
    pub(crate) async fn post_json<T>(
        &self,
        url: &Url,
        shown_as: &str,
        body: &serde_json::Value,
        interpret: impl Fn(HttpAnswer) -> Result<T, SourceError>,
    ) -> Result<Fetched<T>, SourceError> {
        let started = Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let origin = format!("{} POST {shown_as}", self.source);
        let payload = serde_json::to_vec(body).map_err(|error| SourceError::InvalidInput {
            detail: format!("{origin}: the request body cannot be serialized: {error}"),
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let sent = self
                .client
                .post(url.clone())
                .timeout(self.retry.timeout)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(payload.clone())
                .send()
                .await;
            let (error, nothing_done) = match sent {
                Err(error) if error.is_connect() => (self.transport_error(&origin, error), true),
                Err(error) if error.is_timeout() => (self.transport_error(&origin, error), false),
                Err(error) => (
                    SourceError::InvalidResponse {
                        detail: format!(
                            "{origin}: the request was sent but no answer came back ({}); it may have been delivered",
                            error_chain(&error.without_url())
                        ),
                    },
                    false,
                ),
                Ok(response) => match self.read_answer(&origin, response).await {
                    // The body was cut off: the server had the request.
                    Err(SourceError::Connect { message }) => (
                        SourceError::InvalidResponse {
                            detail: format!("{message}; it may have been delivered"),
                        },
                        false,
                    ),
                    Err(error) => (error, false),
                    Ok(answer) => match interpret(answer) {
                        Ok(value) => {
                            return Ok(Fetched {
                                value,
                                attempts: attempt,
                                latency: started.elapsed(),
                            });
                        }
                        Err(error) => {
                            let refused = matches!(error, SourceError::RateLimited { .. });
                            (error, refused)
                        }
                    },
                },
            };
            let error = self.scrub(error);
            let giving_up = attempt >= max_attempts || !nothing_done;
            warn!(
                source = self.source,
                url = shown_as,
                attempt,
                max_attempts,
                kind = error.kind(),
                giving_up,
                error = %error,
                "POST attempt failed"
            );
            if giving_up {
                return Err(error);
            }
            let delay = backoff_delay(
                &self.retry,
                attempt,
                error.retry_after(),
                rand::random::<f64>(),
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send(&self, url: &Url) -> Result<HttpAnswer, SourceError> {
        let origin = format!("{} GET {}", self.source, url.path());
        let response = self
            .client
            .get(url.clone())
            .timeout(self.retry.timeout)
            .send()
            .await
            .map_err(|error| self.transport_error(&origin, error))?;
        self.read_answer(&origin, response).await
    }

    async fn read_answer(
        &self,
        origin: &str,
        response: reqwest::Response,
    ) -> Result<HttpAnswer, SourceError> {
        let origin = origin.to_owned();
        let status = response.status().as_u16();
        let headers = response.headers();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase);
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let headers = headers.clone();
        let body = match self.max_body_bytes {
            None => response
                .bytes()
                .await
                .map_err(|error| self.transport_error(&origin, error))?
                .to_vec(),
            Some(limit) => self.read_limited(&origin, response, limit).await?,
        };
        Ok(HttpAnswer {
            origin,
            status,
            content_type,
            retry_after,
            headers,
            body,
        })
    }

    async fn read_limited(
        &self,
        origin: &str,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Vec<u8>, SourceError> {
        let too_large = |size: String| SourceError::InvalidResponse {
            detail: format!(
                "{origin}: body is {size} bytes, over the limit of {limit} bytes; check the URL points at the right endpoint or raise the limit"
            ),
        };
        if let Some(length) = response.content_length()
            && length > limit as u64
        {
            return Err(too_large(length.to_string()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport_error(origin, error))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large(format!("more than {}", body.len() + chunk.len())));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, origin: &str, error: reqwest::Error) -> SourceError {
        if error.is_timeout() {
            return SourceError::Timeout {
                after: self.retry.timeout,
            };
        }
        let what = if error.is_connect() {
            "cannot connect"
        } else if error.is_body() {
            "connection dropped while reading the body"
        } else {
            "request failed"
        };
        SourceError::Connect {
            message: format!("{origin}: {what}: {}", error_chain(&error.without_url())),
        }
    }

    fn scrub(&self, error: SourceError) -> SourceError {
        match &self.secret {
            Some(secret) if !secret.expose().is_empty() => {
                error.map_text(|text| text.replace(secret.expose(), "***"))
            }
            _ => error,
        }
    }
}

/// An error and its sources joined with ": ", since reqwest's top-level message alone
/// ("error sending request") does not say what failed.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Builds `{base}/{path}` and checks it is an absolute http(s) URL.
pub(crate) fn join_url(source: &str, base_url: &str, path: &str) -> Result<Url, SourceError> {
    let joined = format!("{}/{}", base_url.trim_end_matches('/'), path);
    let url = Url::parse(&joined).map_err(|error| SourceError::InvalidInput {
        // The raw value is not printed: it may carry an `api_key` query parameter.
        detail: format!("{source}: base_url is not a valid absolute URL: {error}"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(SourceError::InvalidInput {
            detail: format!(
                "{source}: base_url must be http or https, got scheme {other:?} in {}",
                redact_url(&url)
            ),
        }),
    }
}

#[cfg(test)]
mod tests;

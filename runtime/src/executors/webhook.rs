//! `webhook`: POSTs a JSON payload to one of the targets listed in
//! `[[executors.webhook.targets]]`, signed with the target's HMAC key and carrying the
//! operation's idempotency key, so a retried delivery can be recognised by the receiver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tools::http::{RetryPolicy, backoff_delay};
use tools::secret::Secret;

use super::{ExecutionOutcome, ExecutionRequest, ExecutorError, OutcomeStatus, TypedExecutor};
use crate::config::redact_url;
use crate::notifier::{SIGNATURE_HEADER, sign};

/// Header carrying the operation's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How much of a receiver's answer goes into the outcome.
const MAX_RESPONSE_EXCERPT_BYTES: usize = 2048;

fn default_target_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_target_attempts() -> u32 {
    3
}

/// `[executors.webhook]`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookExecutorConfig {
    /// Where an operation may POST. Empty: nowhere.
    #[serde(default)]
    pub targets: Vec<WebhookTargetConfig>,
}

/// `[[executors.webhook.targets]]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTargetConfig {
    /// What a proposal's `target` parameter says.
    pub name: String,
    /// Serialized with only scheme, host and port: the path may carry a token.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// File holding the HMAC-SHA256 key for `X-Command-Center-Signature`; read when the
    /// registry is built. Operations are always signed.
    pub secret_file: PathBuf,
    #[serde(default = "default_target_timeout", with = "agents::duration")]
    pub timeout: Duration,
    /// Attempts in total, the first included; retried on 5xx, 429, 408 and transport errors.
    #[serde(default = "default_target_attempts")]
    pub max_attempts: u32,
}

fn serialize_redacted_url<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// Parameters of a `webhook` operation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookParams {
    /// A target name from `[[executors.webhook.targets]]`.
    pub target: String,
    /// The JSON body to POST.
    pub payload: serde_json::Value,
}

struct Target {
    url: String,
    secret: Secret,
    timeout: Duration,
    max_attempts: u32,
}

/// POSTs to configured targets.
pub struct WebhookExecutor {
    targets: BTreeMap<String, Target>,
    client: reqwest::Client,
}

/// How one delivery ended.
enum Ending {
    Answered {
        status: reqwest::StatusCode,
        /// From `Retry-After`, when the receiver said when to come back.
        retry_after: Option<Duration>,
        excerpt: String,
    },
    /// Never reached the receiver: nothing was sent.
    NotConnected(String),
    /// Sent (or partly sent) without an answer: the receiver may have acted.
    NoAnswer(String),
}

impl WebhookExecutor {
    /// Builds from `[executors.webhook]`, reading every secret file and adding
    /// `(key path, message)` for every problem.
    pub fn new(config: &WebhookExecutorConfig, problems: &mut Vec<(String, String)>) -> Self {
        let mut targets = BTreeMap::new();
        let mut names = std::collections::BTreeSet::new();
        for (index, target) in config.targets.iter().enumerate() {
            let at = |key: &str| format!("executors.webhook.targets[{index}].{key}");
            let before = problems.len();
            if target.name.trim().is_empty() {
                problems.push((at("name"), "must not be empty".to_owned()));
            } else if !names.insert(target.name.as_str()) {
                problems.push((
                    at("name"),
                    format!(
                        "{:?} is used by another target; names must be unique",
                        target.name
                    ),
                ));
            }
            match reqwest::Url::parse(&target.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                Ok(_) => problems.push((
                    at("url"),
                    format!(
                        "{} must be an http:// or https:// URL with a host",
                        redact_url(&target.url)
                    ),
                )),
                // The parse error names no part of the URL, which may carry a token.
                Err(error) => problems.push((at("url"), format!("not a valid URL: {error}"))),
            }
            let secret = read_secret(&target.secret_file, &at("secret_file"), problems);
            if target.timeout.is_zero() {
                problems.push((at("timeout"), "must be longer than 0s".to_owned()));
            }
            if target.max_attempts == 0 {
                problems.push((at("max_attempts"), "must be 1 or more".to_owned()));
            }
            if let Some(secret) = secret
                && problems.len() == before
            {
                targets.insert(
                    target.name.clone(),
                    Target {
                        url: target.url.clone(),
                        secret,
                        timeout: target.timeout,
                        max_attempts: target.max_attempts,
                    },
                );
            }
        }
        tools::http::install_crypto_provider();
        // A redirect would carry the signed body somewhere the configuration did not name.
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                problems.push((
                    "executors.webhook".to_owned(),
                    format!("cannot build the HTTP client: {error}"),
                ));
                reqwest::Client::new()
            }
        };
        Self { targets, client }
    }

    fn not_allowed(&self, name: &str) -> ExecutorError {
        super::not_allowed(
            <Self as TypedExecutor>::KIND,
            "target",
            "targets",
            "[[executors.webhook.targets]]",
            &format!("{name:?}"),
            self.targets.keys().map(String::as_str),
        )
    }

    async fn attempt(&self, target: &Target, idempotency_key: &str, body: &[u8]) -> Ending {
        let request = self
            .client
            .post(&target.url)
            .timeout(target.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(&target.secret, body))
            .header(IDEMPOTENCY_HEADER, idempotency_key)
            .body(body.to_vec());
        match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| {
                        tools::http::parse_retry_after(value, std::time::SystemTime::now())
                    });
                let mut kept = Vec::new();
                while kept.len() < MAX_RESPONSE_EXCERPT_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = MAX_RESPONSE_EXCERPT_BYTES - kept.len();
                            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                Ending::Answered {
                    status,
                    retry_after,
                    excerpt: String::from_utf8_lossy(&kept).into_owned(),
                }
            }
            // reqwest errors name the URL; the URL may carry a token, so drop it.
            Err(error) if error.is_connect() => Ending::NotConnected(format!(
                "connection refused or unreachable: {}",
                error.without_url()
            )),
            Err(error) if error.is_timeout() => Ending::NoAnswer(format!(
                "no answer within {}",
                agents::duration::format(target.timeout)
            )),
            Err(error) => Ending::NoAnswer(error.without_url().to_string()),
        }
    }
}

fn read_secret(
    path: &std::path::Path,
    key: &str,
    problems: &mut Vec<(String, String)>,
) -> Option<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_owned())),
        Ok(_) => {
            problems.push((
                key.to_owned(),
                format!("secret file {} is empty", path.display()),
            ));
            None
        }
        Err(error) => {
            problems.push((
                key.to_owned(),
                format!(
                    "cannot read secret file {}: {error}; create it with the HMAC key the receiver checks",
                    path.display()
                ),
            ));
            None
        }
    }
}

fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

impl TypedExecutor for WebhookExecutor {
    const KIND: &'static str = "webhook";
    type Params = WebhookParams;

    fn check(&self, params: &WebhookParams) -> Result<(), ExecutorError> {
        if self.targets.contains_key(&params.target) {
            Ok(())
        } else {
            Err(self.not_allowed(&params.target))
        }
    }

    async fn run(&self, request: &ExecutionRequest, params: WebhookParams) -> ExecutionOutcome {
        let Some(target) = self.targets.get(&params.target) else {
            let error = self.not_allowed(&params.target);
            return ExecutionOutcome::new(
                OutcomeStatus::Failed,
                format!("not run: {error}"),
                serde_json::Value::Null,
                request.dry_run,
            );
        };
        let name = &params.target;
        let shown_url = redact_url(&target.url);
        let body = match serde_json::to_vec(&params.payload) {
            Ok(body) => body,
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    format!("not run: the payload cannot be serialized: {error}"),
                    serde_json::Value::Null,
                    request.dry_run,
                );
            }
        };
        let mut details = serde_json::json!({
            "target": name,
            "url": shown_url,
            "body_bytes": body.len(),
        });
        if reqwest::header::HeaderValue::from_str(&request.idempotency_key).is_err() {
            return ExecutionOutcome::new(
                OutcomeStatus::Failed,
                "not run: the idempotency key is not a valid HTTP header value",
                details,
                request.dry_run,
            );
        }
        if request.dry_run {
            details["max_attempts"] = serde_json::json!(target.max_attempts);
            return ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!(
                    "would POST {} bytes of JSON to webhook target {name} ({shown_url}), signed, up to {} attempt{}",
                    body.len(),
                    target.max_attempts,
                    if target.max_attempts == 1 { "" } else { "s" }
                ),
                details,
                true,
            );
        }

        let policy = RetryPolicy {
            max_attempts: target.max_attempts,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            timeout: target.timeout,
        };
        let mut attempts = 0;
        let mut ending = Ending::NotConnected("not attempted".to_owned());
        for attempt in 1..=target.max_attempts.max(1) {
            attempts = attempt;
            ending = self.attempt(target, &request.idempotency_key, &body).await;
            let retry_after = match &ending {
                Ending::Answered { status, .. } if !retryable(*status) => break,
                Ending::Answered { retry_after, .. } => *retry_after,
                Ending::NotConnected(_) | Ending::NoAnswer(_) => None,
            };
            if attempt < target.max_attempts {
                tracing::warn!(proposal_id = %request.proposal_id, target = %name, attempt, "webhook attempt failed; retrying");
                let delay = backoff_delay(&policy, attempt, retry_after, rand::random::<f64>());
                tokio::time::sleep(delay).await;
            }
        }
        details["attempts"] = serde_json::json!(attempts);
        let tries = if attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{attempts} attempts")
        };
        let (status, summary) = match ending {
            Ending::Answered {
                status, excerpt, ..
            } => {
                details["http_status"] = serde_json::json!(status.as_u16());
                details["response"] = serde_json::Value::String(excerpt);
                if status.is_success() {
                    (
                        OutcomeStatus::Succeeded,
                        format!(
                            "webhook {name} accepted it (HTTP {}) after {tries}",
                            status.as_u16()
                        ),
                    )
                } else {
                    (
                        OutcomeStatus::Failed,
                        format!("webhook {name} answered HTTP {status} after {tries}"),
                    )
                }
            }
            Ending::NotConnected(error) => {
                details["error"] = serde_json::Value::String(error.clone());
                (
                    OutcomeStatus::Failed,
                    format!("webhook {name} not reached after {tries}: {error}"),
                )
            }
            Ending::NoAnswer(error) => {
                details["error"] = serde_json::Value::String(error.clone());
                (
                    OutcomeStatus::Unknown,
                    format!(
                        "webhook {name} gave no answer after {tries} ({error}); it may have acted, and a retry with the same Idempotency-Key is safe"
                    ),
                )
            }
        };
        ExecutionOutcome::new(status, summary, details, false)
    }
}

//! Executors: the code that carries out an operation once the gate has allowed it.
//!
//! Each operation kind (`notify`, `command`, `webhook`, and `ton_transfer` when configured)
//! has one executor. An executor parses its
//! parameters into a typed struct (whose JSON Schema it publishes), checks them against what the
//! configuration allows, and runs the operation once, reporting the result as an
//! [`ExecutionOutcome`]. Nothing is allowed until `[executors]` lists it.
//!
//! What an executor must never do: run a program through a shell, accept a parameter it did not
//! check, or put a secret (webhook keys, URL paths that may carry tokens) into an outcome, an
//! error or a log line.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod command;
mod expense;
mod notify;
mod ton_transfer;
mod webhook;

#[cfg(test)]
mod tests;

pub use command::{CommandExecutor, CommandExecutorConfig, CommandParams, CommandProgramConfig};
pub use expense::{ExpenseExecutor, ExpenseParams, expense_cents};
pub use notify::{NotifyExecutor, NotifyParams, NotifySeverity};
pub use ton_transfer::{TonTransferExecutor, TonTransferExecutorConfig, TonTransferParams};
pub use webhook::{WebhookExecutor, WebhookExecutorConfig, WebhookParams, WebhookTargetConfig};

/// One approved operation handed to an executor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionRequest {
    pub proposal_id: String,
    /// Stable across retries and restarts, so a receiver can drop a duplicate.
    pub idempotency_key: String,
    pub kind: String,
    pub target: String,
    pub parameters: serde_json::Value,
    pub dry_run: bool,
}

/// Whether the operation took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
    /// It may or may not have happened; a person must check.
    Unknown,
}

/// What happened when an operation ran (or, for a dry run, what would happen).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionOutcome {
    pub status: OutcomeStatus,
    /// One line for people.
    pub summary: String,
    /// Captured output, HTTP status, argv, ...; never secrets.
    pub details: serde_json::Value,
    pub dry_run: bool,
}

impl ExecutionOutcome {
    pub(crate) fn new(
        status: OutcomeStatus,
        summary: impl Into<String>,
        details: serde_json::Value,
        dry_run: bool,
    ) -> Self {
        Self {
            status,
            summary: summary.into(),
            details,
            dry_run,
        }
    }
}

/// Why an operation cannot even be attempted. Failures while running are outcomes, not errors.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("invalid parameters for {kind}: {detail}")]
    InvalidParameters { kind: String, detail: String },
    #[error("{kind} is not allowed: {detail}")]
    NotAllowed { kind: String, detail: String },
    #[error("no executor for operation kind {kind:?}; known: {known}")]
    UnknownKind { kind: String, known: String },
}

pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = ExecutionOutcome> + Send + 'a>>;

/// The object-safe executor the gate and the daemon hold. Implement [`TypedExecutor`] instead;
/// every `TypedExecutor` is an `Executor`.
pub trait Executor: Send + Sync {
    fn kind(&self) -> &'static str;
    /// JSON Schema of the parameters, generated with schemars from the typed params struct
    /// (never hand-written).
    fn parameters_schema(&self) -> serde_json::Value;
    /// Parses and checks parameters (typed); the gate calls it before deciding, so a malformed
    /// proposal is refused with a clear message.
    fn validate(&self, parameters: &serde_json::Value) -> Result<(), ExecutorError>;
    /// [`Executor::validate`], plus the checks that compare the parameters with the rest of
    /// the operation the policies decide on (an expense's category and amount).
    fn validate_operation(&self, operation: &policies::Operation) -> Result<(), ExecutorError> {
        self.validate(&operation.parameters)
    }
    /// Runs once (or describes what it would do when `request.dry_run`). Failures are outcomes
    /// (status Failed), not errors.
    fn execute<'a>(&'a self, request: &'a ExecutionRequest) -> ExecFuture<'a>;
    /// After a crash between "started" and "finished": can the executor tell whether it
    /// happened? Default: Unknown (a person is asked).
    fn reconcile<'a>(&'a self, _request: &'a ExecutionRequest) -> ExecFuture<'a> {
        Box::pin(async {
            ExecutionOutcome {
                status: OutcomeStatus::Unknown,
                summary: "cannot tell whether it ran; a person must check".into(),
                details: serde_json::Value::Null,
                dry_run: false,
            }
        })
    }
}

/// The typed side of an executor: its parameters are a struct, so the schema, the parsing and
/// the checks cannot drift apart.
pub trait TypedExecutor: Send + Sync {
    const KIND: &'static str;
    type Params: DeserializeOwned + JsonSchema + Send + Sync;

    /// Checks the types cannot express: names from the configuration, value formats, lengths.
    fn check(&self, params: &Self::Params) -> Result<(), ExecutorError>;

    /// Checks the parameters against the operation's other fields. Default: nothing to check.
    fn check_operation(
        &self,
        _params: &Self::Params,
        _operation: &policies::Operation,
    ) -> Result<(), ExecutorError> {
        Ok(())
    }

    /// Runs once with checked parameters (or describes, when `request.dry_run`).
    fn run<'a>(
        &'a self,
        request: &'a ExecutionRequest,
        params: Self::Params,
    ) -> impl Future<Output = ExecutionOutcome> + Send + 'a;

    /// [`Executor::reconcile`] for this executor. Default: Unknown (a person is asked).
    fn reconcile_typed<'a>(
        &'a self,
        _request: &'a ExecutionRequest,
    ) -> impl Future<Output = ExecutionOutcome> + Send + 'a {
        async {
            ExecutionOutcome {
                status: OutcomeStatus::Unknown,
                summary: "cannot tell whether it ran; a person must check".into(),
                details: serde_json::Value::Null,
                dry_run: false,
            }
        }
    }
}

impl<T: TypedExecutor> Executor for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }

    fn parameters_schema(&self) -> serde_json::Value {
        serde_json::Value::from(schemars::schema_for!(T::Params))
    }

    fn validate(&self, parameters: &serde_json::Value) -> Result<(), ExecutorError> {
        let params = parse_parameters::<T::Params>(T::KIND, parameters)?;
        self.check(&params)
    }

    fn validate_operation(&self, operation: &policies::Operation) -> Result<(), ExecutorError> {
        let params = parse_parameters::<T::Params>(T::KIND, &operation.parameters)?;
        self.check(&params)?;
        self.check_operation(&params, operation)
    }

    fn execute<'a>(&'a self, request: &'a ExecutionRequest) -> ExecFuture<'a> {
        Box::pin(async move {
            let params = match parse_parameters::<T::Params>(T::KIND, &request.parameters)
                .and_then(|params| self.check(&params).map(|()| params))
            {
                Ok(params) => params,
                // The gate validates first; this guards a request that bypassed it.
                Err(error) => {
                    return ExecutionOutcome::new(
                        OutcomeStatus::Failed,
                        format!("not run: {error}"),
                        serde_json::json!({ "error": error.to_string() }),
                        request.dry_run,
                    );
                }
            };
            self.run(request, params).await
        })
    }

    fn reconcile<'a>(&'a self, request: &'a ExecutionRequest) -> ExecFuture<'a> {
        Box::pin(self.reconcile_typed(request))
    }
}

/// Deserializes parameters, naming the offending field (`vars.unit: invalid type: ...`).
/// `shown_name` (already quoted for display) is not among the `known` names of `section`.
pub(crate) fn not_allowed<'a>(
    kind: &str,
    what: &str,
    things: &str,
    section: &str,
    shown_name: &str,
    known: impl Iterator<Item = &'a str>,
) -> ExecutorError {
    let known: Vec<&str> = known.collect();
    let allowed = if known.is_empty() {
        format!("no {things} are configured in {section}")
    } else {
        format!("allowed: {}", known.join(", "))
    };
    ExecutorError::NotAllowed {
        kind: kind.to_owned(),
        detail: format!("{what} {shown_name} is not in {section}; {allowed}"),
    }
}

pub(crate) fn parse_parameters<P: DeserializeOwned>(
    kind: &str,
    parameters: &serde_json::Value,
) -> Result<P, ExecutorError> {
    let invalid = |detail: String| ExecutorError::InvalidParameters {
        kind: kind.to_owned(),
        detail,
    };
    if !parameters.is_object() {
        return Err(invalid(format!(
            "parameters must be a JSON object, not {}",
            json_type_name(parameters)
        )));
    }
    serde_path_to_error::deserialize(parameters).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path.is_empty() || path == "." {
            invalid(inner.to_string())
        } else {
            invalid(format!("{path}: {inner}"))
        }
    })
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `[executors]`. The default allows nothing beyond `notify`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorsConfig {
    #[serde(default)]
    pub command: CommandExecutorConfig,
    #[serde(default)]
    pub webhook: WebhookExecutorConfig,
    /// Absent: no `ton_transfer` executor (the kind is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ton_transfer: Option<TonTransferExecutorConfig>,
}

/// Every executor, by operation kind.
pub struct ExecutorRegistry {
    executors: BTreeMap<&'static str, Arc<dyn Executor>>,
}

impl ExecutorRegistry {
    /// Builds every executor from `[executors]`, reading webhook secret files. On failure
    /// returns every problem at once as `(key path, message)`.
    pub fn new(
        config: &ExecutorsConfig,
        alerts: crate::supervisor::AlertSink,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let command = CommandExecutor::new(&config.command, &mut problems);
        let webhook = WebhookExecutor::new(&config.webhook, &mut problems);
        let ton_transfer = config
            .ton_transfer
            .as_ref()
            .and_then(|config| TonTransferExecutor::new(config, &mut problems));
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut executors: Vec<Arc<dyn Executor>> = vec![
            Arc::new(NotifyExecutor::new(alerts)),
            Arc::new(command),
            Arc::new(webhook),
        ];
        if let Some(ton_transfer) = ton_transfer {
            executors.push(Arc::new(ton_transfer));
        }
        Ok(Self {
            executors: executors
                .into_iter()
                .map(|executor| (executor.kind(), executor))
                .collect(),
        })
    }

    pub fn get(&self, kind: &str) -> Result<Arc<dyn Executor>, ExecutorError> {
        self.executors
            .get(kind)
            .cloned()
            .ok_or_else(|| ExecutorError::UnknownKind {
                kind: kind.to_owned(),
                known: self.kinds().join(", "),
            })
    }

    /// Operation kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.executors.keys().copied().collect()
    }

    pub fn validate(
        &self,
        kind: &str,
        parameters: &serde_json::Value,
    ) -> Result<(), ExecutorError> {
        self.get(kind)?.validate(parameters)
    }

    /// Validates an operation's parameters and how they agree with its other fields.
    pub fn validate_operation(&self, operation: &policies::Operation) -> Result<(), ExecutorError> {
        self.get(&operation.kind)?.validate_operation(operation)
    }

    /// Adds (or replaces) the executor of its kind: executors that need the store, like
    /// `expense`, are added by the daemon once the store is open.
    pub fn with(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executors.insert(executor.kind(), executor);
        self
    }
}

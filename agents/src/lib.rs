//! Domain agents: one supervised actor per domain, plus what they share.
//!
//! This crate holds
//! - [`market`]: the market-intelligence agent (prices, moves, recoveries);
//! - [`validators`]: the validators agent (wallet balance, current set, node sync and disk);
//! - [`alert`]: the alert value every agent emits;
//! - [`finance`]: the ledger's vocabulary, statement imports, valuation, monthly reports,
//!   forecasts with intervals, rolling-origin backtests, anomalies and cash runway
//!   over daily series (pure functions on augurs);
//! - [`health`]: the registry of actor and data-source health that status, `/readyz` and
//!   `/metrics` read;
//! - [`telemetry`]: the Prometheus metric families agents and the runtime update;
//! - [`audit`]: the [`audit::Auditor`] every journal write goes through;
//! - [`reasoner`]: the LLM tool loop over any OpenAI-compatible endpoint (plain or streamed),
//!   and [`reasoner::embed::OpenAiEmbedder`], embeddings from such an endpoint; the only
//!   module that names async-openai;
//! - [`DomainAgent`]: the trait the runtime's supervisor drives.
//!
//! What it must never do: cause a side effect. Agents read through `tools` clients, remember
//! through `memory`, and emit alerts and (later) proposals; every effect is executed by `runtime`
//! after a policy decision. Alerts to the company's own people are the one exception, and even
//! those are delivered by the runtime's notifier, not from here.

pub mod alert;
pub mod audit;
pub mod duration;
pub mod finance;
pub mod health;
pub mod market;
pub mod prompts;
pub mod proposals;
pub mod reasoner;
pub mod telemetry;
pub mod validators;
pub mod validators_report;

use std::future::Future;
use std::pin::Pin;

pub use alert::{Alert, AlertStatus, Severity};

/// What one tick of an agent produced.
#[derive(Clone, Debug, Default)]
pub struct TickReport {
    /// Observations stored (samples, facts, documents).
    pub observations: usize,
    /// Alerts raised or resolved in this tick, already journaled.
    pub alerts: Vec<Alert>,
}

/// Why a tick failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent cannot go on (bad state, storage gone): the supervisor restarts it.
    #[error("agent {agent} failed: {message}")]
    Fatal { agent: String, message: String },
    /// Storage failed underneath the agent.
    #[error("storage error in agent {agent}: {source}")]
    Store {
        agent: String,
        #[source]
        source: Box<memory::StoreError>,
    },
    /// The journal refused a write: the agent stops rather than act unrecorded.
    #[error("agent {agent} could not journal: {source}")]
    Audit {
        agent: String,
        #[source]
        source: Box<audit::AuditError>,
    },
}

impl AgentError {
    /// Storage failed underneath `agent`.
    pub fn store(agent: &str, source: memory::StoreError) -> Self {
        AgentError::Store {
            agent: agent.to_owned(),
            source: Box::new(source),
        }
    }

    /// The journal refused a write of `agent`.
    pub fn audit(agent: &str, source: audit::AuditError) -> Self {
        AgentError::Audit {
            agent: agent.to_owned(),
            source: Box::new(source),
        }
    }
}

/// Boxed future returned by [`DomainAgent::tick`] (object-safe without `async-trait`).
pub type TickFuture<'a> = Pin<Box<dyn Future<Output = Result<TickReport, AgentError>> + Send + 'a>>;

/// A domain agent as the supervisor sees it: something that can be ticked.
///
/// An agent keeps its durable state in the store, so a fresh instance built after a crash picks
/// up where the old one stopped. Source failures are not errors of the agent: they are recorded
/// in the health registry and turned into alerts; a tick fails only when the agent itself
/// cannot go on.
pub trait DomainAgent: Send {
    /// Stable name, used in logs, metrics, health and the audit log (`market`, `validators`).
    fn name(&self) -> &str;
    /// Collect, remember, evaluate; return what happened.
    fn tick(&mut self) -> TickFuture<'_>;
}

//! The reasoner's tools over what the daemon knows: validators, earnings, prices, alerts,
//! approvals, the audit log and the time series, plus `propose_action`, which puts an
//! operation before the same policy gate as every other proposal and returns its decision.
//!
//! The trait, the registry and the untrusted-text convention are `tools::llm`; the tools live
//! here because this is where the store, the gate and the alert router are. Each reads
//! through the functions the chat commands and the HTTP API use, so a tool's answer and
//! `GET /v1/...` never disagree.
//!
//! What these tools must never do: execute an operation (`propose_action` only submits to the
//! gate, which executes nothing without the policy's say), hand a model a secret (nothing
//! here reads the configuration's tokens or keys), or pass text people typed or the outside
//! world sent as anything but [`::tools::llm::Untrusted`] data.

use std::sync::Arc;

use ::tools::llm::ToolRegistry;
use memory::Store;

use crate::commands::Caller;
use crate::gate::Gatekeeper;
use crate::http::AppState;
use crate::router::AlertRouter;

mod tools;

pub use self::tools::{
    AuditSearch, FiringAlerts, MarketPrices, MemorySearch, MetricsQuery, PendingApprovals,
    ProposeAction, REASONER, ValidatorEarnings, ValidatorStatus,
};

/// What the tools read, and for whom: one per conversation.
#[derive(Clone)]
pub struct AssistantContext {
    pub store: Store,
    pub gate: Arc<Gatekeeper>,
    /// The running router (silences and acknowledgements); without it, firing alerts are read
    /// from the store as the agents left them.
    pub router: Option<Arc<AlertRouter>>,
    /// The person the reasoner answers; proposals are made on their behalf.
    pub caller: Caller,
    /// Names the conversation in proposals and audit entries (`telegram:42`, `slack:C1`).
    pub conversation: String,
    /// The vector memory, when `[memory]` is on: `memory_search` is offered only then.
    pub memory: Option<Arc<crate::vectors::VectorMemory>>,
}

impl AssistantContext {
    pub fn from_app(state: &AppState, caller: Caller, conversation: impl Into<String>) -> Self {
        Self {
            store: state.store.clone(),
            gate: state.gate.clone(),
            router: Some(state.router.clone()),
            caller,
            conversation: conversation.into(),
            memory: state.memory.clone(),
        }
    }
}

/// Every tool, for one conversation.
pub fn registry(context: &AssistantContext) -> ToolRegistry {
    let mut registry = ToolRegistry::new();
    registry
        .register(ValidatorStatus::new(context))
        .register(ValidatorEarnings::new(context))
        .register(MarketPrices::new(context))
        .register(FiringAlerts::new(context))
        .register(PendingApprovals::new(context))
        .register(AuditSearch::new(context))
        .register(MetricsQuery::new(context))
        .register(ProposeAction::new(context));
    if let Some(memory) = &context.memory {
        registry.register(MemorySearch::new(memory.clone()));
    }
    registry
}

pub mod conversation;

#[cfg(test)]
mod tests;

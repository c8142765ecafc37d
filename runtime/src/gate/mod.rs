//! The gatekeeper: proposal -> decision -> (approval) -> execution -> outcome, each step
//! journaled and its state stored before the next one starts.
//!
//! Exactly once: a proposal's state is stored (durably) as `executing`, then
//! `execution.started` is journaled, then its executor runs. After a crash, an `approved` proposal that never
//! started runs; an `executing` one is never re-run blindly: its executor reconciles, and one
//! that cannot tell is marked `unknown` and a person is asked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agents::audit::{AuditError, Auditor};
use agents::{Alert, AlertStatus, Severity};
use chrono::{DateTime, Timelike, Utc};
use policies::{ApprovalCheck, Decision, DecisionContext, Proposal, Proposer};
use serde::{Deserialize, Serialize};

use crate::config::AccessConfig;
use crate::executors::{ExecutionOutcome, ExecutionRequest, ExecutorRegistry, OutcomeStatus};
use crate::policy_watch::PolicyHolder;
use crate::supervisor::AlertSink;

const PROPOSALS: &str = "proposals/";
const EXECUTIONS: &str = "executions/";
const PAUSED: &str = "autonomy/paused";

/// Where a proposal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    Denied,
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
    Executing,
    Executed,
    Failed,
    /// It may or may not have run (crash while executing, executor cannot tell): a person checks.
    Unknown,
}

impl ProposalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Denied => "denied",
            ProposalState::Pending => "pending",
            ProposalState::Approved => "approved",
            ProposalState::Rejected => "rejected",
            ProposalState::Expired => "expired",
            ProposalState::Cancelled => "cancelled",
            ProposalState::Executing => "executing",
            ProposalState::Executed => "executed",
            ProposalState::Failed => "failed",
            ProposalState::Unknown => "unknown",
        }
    }
}

/// One person's vote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub user: String,
    pub at: DateTime<Utc>,
}

/// What happened when it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionState {
    pub idempotency_key: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<ExecutionOutcome>,
}

/// A proposal and everything decided about it; stored under `proposals/<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub proposal: Proposal,
    pub decision: Decision,
    pub context: DecisionContext,
    pub state: ProposalState,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub approvals: Vec<Vote>,
    pub rejected_by: Option<Vote>,
    pub cancelled_by: Option<Vote>,
    pub escalated: bool,
    pub execution: Option<ExecutionState>,
}

impl ProposalRecord {
    pub fn approvals_needed(&self) -> u32 {
        match &self.decision {
            Decision::NeedsApproval { approvals, .. } => *approvals,
            _ => 0,
        }
    }
}

/// The kill switch, globally or for one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// Why a request to the gate was refused. Each is journaled.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no proposal {id:?}")]
    NotFound { id: String },
    #[error("proposal id {id:?} is already taken; ids are never reused")]
    Duplicate { id: String },
    #[error("{user:?} is not a configured user")]
    UnknownUser { user: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid proposal: {0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Store(String),
}

impl From<AuditError> for GateError {
    fn from(error: AuditError) -> Self {
        GateError::Store(error.to_string())
    }
}

impl From<memory::StoreError> for GateError {
    fn from(error: memory::StoreError) -> Self {
        GateError::Store(error.to_string())
    }
}

/// The gatekeeper; one per daemon.
pub struct Gatekeeper {
    policies: Arc<PolicyHolder>,
    auditor: Auditor,
    executors: Arc<ExecutorRegistry>,
    access: AccessConfig,
    alerts: AlertSink,
    /// Serializes state transitions, so two approvals of one proposal cannot race.
    transitions: tokio::sync::Mutex<()>,
}

fn key(id: &str) -> String {
    format!("{PROPOSALS}{id}")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl Gatekeeper {
    pub fn new(
        policies: Arc<PolicyHolder>,
        auditor: Auditor,
        executors: Arc<ExecutorRegistry>,
        access: AccessConfig,
        alerts: AlertSink,
    ) -> Self {
        Self {
            policies,
            auditor,
            executors,
            access,
            alerts,
            transitions: tokio::sync::Mutex::new(()),
        }
    }

    pub fn access(&self) -> &AccessConfig {
        &self.access
    }

    fn state(&self) -> &memory::StateStore {
        self.auditor.store().state()
    }

    pub fn get(&self, id: &str) -> Result<Option<ProposalRecord>, GateError> {
        Ok(self.state().get::<ProposalRecord>(&key(id))?)
    }

    /// Every proposal, newest first, optionally only in one state.
    pub fn list(&self, state: Option<ProposalState>) -> Result<Vec<ProposalRecord>, GateError> {
        let mut records: Vec<ProposalRecord> = self
            .state()
            .scan_prefix::<ProposalRecord>(PROPOSALS)?
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| state.is_none_or(|state| record.state == state))
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
        Ok(records)
    }

    /// Stores the record durably: nobody is answered, and nothing runs, before it is on disk.
    fn save(&self, record: &ProposalRecord) -> Result<(), GateError> {
        self.state().put(&key(&record.proposal.id), record)?;
        Ok(self.auditor.store().flush()?)
    }

    fn alert(
        &self,
        key: String,
        severity: Severity,
        summary: String,
        record: &ProposalRecord,
        audience: &str,
    ) {
        let now = Utc::now();
        let alert = Alert {
            key,
            rule: "approval".to_owned(),
            status: AlertStatus::Firing,
            severity,
            summary,
            labels: BTreeMap::from([
                (
                    "domain".to_owned(),
                    record.proposal.operation.domain.clone(),
                ),
                ("proposal".to_owned(), record.proposal.id.clone()),
                ("audience".to_owned(), audience.to_owned()),
            ]),
            evidence: serde_json::json!({
                "proposal": record.proposal,
                "decision": record.decision,
                "state": record.state,
                "approvals": record.approvals,
                "expires_at": record.expires_at,
            }),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        let _ = self.alerts.send(alert);
    }

    /// Whether autonomy is paused globally or for this proposer.
    pub fn paused(&self, proposer: &Proposer) -> Result<Option<Pause>, GateError> {
        if let Some(pause) = self.state().get::<Pause>(PAUSED)? {
            return Ok(Some(pause));
        }
        if let Proposer::Agent { name, .. } = proposer {
            return Ok(self.state().get::<Pause>(&format!("{PAUSED}/{name}"))?);
        }
        Ok(None)
    }

    fn context(
        &self,
        proposal: &Proposal,
        now: DateTime<Utc>,
    ) -> Result<DecisionContext, GateError> {
        let history: Vec<DateTime<Utc>> = self
            .state()
            .get(&format!("{EXECUTIONS}{}", proposal.operation.kind))?
            .unwrap_or_default();
        let within = |window: chrono::Duration| {
            history.iter().filter(|at| now - **at < window).count() as u32
        };
        Ok(DecisionContext {
            executions_last_hour: within(chrono::Duration::hours(1)),
            executions_last_day: within(chrono::Duration::days(1)),
            local_hour: chrono::Local::now().hour() as u8,
            autonomy_paused: self.paused(&proposal.proposer)?.is_some(),
        })
    }

    fn count_execution(&self, kind: &str, now: DateTime<Utc>) -> Result<(), GateError> {
        let key = format!("{EXECUTIONS}{kind}");
        let mut history: Vec<DateTime<Utc>> = self.state().get(&key)?.unwrap_or_default();
        history.retain(|at| now - *at < chrono::Duration::days(1));
        history.push(now);
        Ok(self.state().put(&key, &history)?)
    }

    /// Puts a proposal up for decision. Denial is a value: the record says `denied` and why.
    pub async fn submit(&self, proposal: Proposal) -> Result<ProposalRecord, GateError> {
        let record = {
            let _transition = self.transitions.lock().await;
            let actor = format!("proposer:{}", proposal.proposer.name());
            if !valid_id(&proposal.id) {
                let message = format!(
                    "proposal id {:?} must be 1-64 characters of letters, digits, '-', '_' or '.'",
                    proposal.id
                );
                self.auditor
                    .record(
                        &actor,
                        "proposal.refused",
                        "proposal",
                        &serde_json::json!({ "reason": message }),
                    )
                    .await?;
                return Err(GateError::Invalid(message));
            }
            if self.get(&proposal.id)?.is_some() {
                self.auditor
                    .record(
                        &actor,
                        "proposal.refused",
                        &proposal.id,
                        &serde_json::json!({ "reason": "duplicate id (replayed?)" }),
                    )
                    .await?;
                return Err(GateError::Duplicate { id: proposal.id });
            }
            let now = Utc::now();
            self.auditor
                .record(&actor, "proposal.received", &proposal.id, &proposal)
                .await?;
            let context = self.context(&proposal, now)?;
            let validation = self.executors.validate_operation(&proposal.operation);
            let parameters_valid = validation.is_ok();
            let decision = match validation {
                Err(error) => Decision::Deny {
                    by: Vec::new(),
                    reason: error.to_string(),
                },
                Ok(()) => self
                    .policies
                    .engine()
                    .decide(&proposal, &context, &self.access.roles()),
            };
            self.auditor
                .record(
                    "gate",
                    "decision.made",
                    &proposal.id,
                    &serde_json::json!({
                        "proposal": proposal,
                        "context": context,
                        "decision": decision,
                        "parameters_valid": parameters_valid,
                        "roles": self.access.roles(),
                        "policies": self.policies.status().fingerprint,
                    }),
                )
                .await?;
            let (state, expires_at) = match &decision {
                Decision::Deny { .. } => (ProposalState::Denied, None),
                Decision::Auto { .. } => (ProposalState::Approved, None),
                Decision::NeedsApproval { expires_in, .. } => {
                    (ProposalState::Pending, Some(now + to_chrono(*expires_in)))
                }
            };
            let record = ProposalRecord {
                proposal,
                decision,
                context,
                state,
                created_at: now,
                expires_at,
                approvals: Vec::new(),
                rejected_by: None,
                cancelled_by: None,
                escalated: false,
                execution: None,
            };
            self.save(&record)?;
            if record.state == ProposalState::Pending {
                self.auditor
                    .record(
                        "gate",
                        "approval.requested",
                        &record.proposal.id,
                        &record.decision,
                    )
                    .await?;
                let reason = match &record.decision {
                    Decision::NeedsApproval {
                        reason,
                        eligible_roles,
                        approvals,
                        ..
                    } => format!(
                        "{approvals} approval(s) from {} needed: {reason}",
                        eligible_roles.join(" or ")
                    ),
                    _ => String::new(),
                };
                self.alert(
                    format!("approval/{}", record.proposal.id),
                    Severity::Info,
                    format!(
                        "approval needed for {} {} by {} ({}); {reason}",
                        record.proposal.operation.kind,
                        record.proposal.operation.target,
                        record.proposal.proposer.name(),
                        record.proposal.id
                    ),
                    &record,
                    "approvers",
                );
            }
            record
        };
        if record.state == ProposalState::Approved {
            return self.execute(&record.proposal.id).await;
        }
        Ok(record)
    }

    /// Journals a refused request and returns the error to answer with.
    async fn refuse(&self, id: &str, user: &str, kind: &str, error: GateError) -> GateError {
        match self
            .auditor
            .record(
                &format!("user:{user}"),
                kind,
                id,
                &serde_json::json!({ "reason": error.to_string() }),
            )
            .await
        {
            Ok(_) => error,
            Err(journal) => GateError::from(journal),
        }
    }

    /// The configured person and the pending proposal they act on; a refusal is journaled
    /// under `refusal` before it is returned.
    async fn person_and_pending(
        &self,
        id: &str,
        user: &str,
        refusal: &str,
        now: DateTime<Utc>,
    ) -> Result<(crate::config::UserConfig, ProposalRecord), GateError> {
        let Some(person) = self.access.user(user).cloned() else {
            let error = GateError::UnknownUser {
                user: user.to_owned(),
            };
            return Err(self.refuse(id, user, refusal, error).await);
        };
        match self.pending(id, now) {
            Ok(record) => Ok((person, record)),
            Err(error) => Err(self.refuse(id, user, refusal, error).await),
        }
    }

    fn pending(&self, id: &str, now: DateTime<Utc>) -> Result<ProposalRecord, GateError> {
        let record = self
            .get(id)?
            .ok_or_else(|| GateError::NotFound { id: id.to_owned() })?;
        if record.state != ProposalState::Pending {
            return Err(GateError::Conflict(format!(
                "proposal {id} is {}, not pending",
                record.state.as_str()
            )));
        }
        if record.expires_at.is_some_and(|expires| now >= expires) {
            return Err(GateError::Conflict(format!(
                "the approval request for {id} expired at {}",
                record
                    .expires_at
                    .map(|at| at.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        Ok(record)
    }

    /// One person approves; enough distinct approvals execute it.
    pub async fn approve(&self, id: &str, user: &str) -> Result<ProposalRecord, GateError> {
        {
            let _transition = self.transitions.lock().await;
            let now = Utc::now();
            let (person, mut record) = self
                .person_and_pending(id, user, "approval.refused", now)
                .await?;
            if record.approvals.iter().any(|vote| vote.user == user) {
                return Err(self
                    .refuse(
                        id,
                        user,
                        "approval.refused",
                        GateError::Conflict(format!("{user} has already approved {id}")),
                    )
                    .await);
            }
            match self.policies.engine().may_approve(
                user,
                &person.roles,
                &record.proposal,
                &record.context,
            ) {
                ApprovalCheck::Refused { reason, .. } => {
                    return Err(self
                        .refuse(id, user, "approval.refused", GateError::Forbidden(reason))
                        .await);
                }
                ApprovalCheck::Allowed { by } => {
                    record.approvals.push(Vote {
                        user: user.to_owned(),
                        at: now,
                    });
                    self.auditor
                        .record(
                            &format!("user:{user}"),
                            "approval.granted",
                            id,
                            &serde_json::json!({
                                "by": by,
                                "approvals": record.approvals.len(),
                                "needed": record.approvals_needed(),
                            }),
                        )
                        .await?;
                }
            }
            let ready = record.approvals.len() as u32 >= record.approvals_needed();
            if ready {
                record.state = ProposalState::Approved;
                self.auditor
                    .record("gate", "proposal.approved", id, &record.approvals)
                    .await?;
            }
            self.save(&record)?;
            if !ready {
                return Ok(record);
            }
        };
        self.execute(id).await
    }

    /// An eligible approver says no: the proposal ends.
    pub async fn reject(&self, id: &str, user: &str) -> Result<ProposalRecord, GateError> {
        let _transition = self.transitions.lock().await;
        let now = Utc::now();
        let (person, record) = self
            .person_and_pending(id, user, "rejection.refused", now)
            .await?;
        if let ApprovalCheck::Refused { reason, .. } = self.policies.engine().may_approve(
            user,
            &person.roles,
            &record.proposal,
            &record.context,
        ) {
            return Err(self
                .refuse(
                    id,
                    user,
                    "rejection.refused",
                    GateError::Forbidden(format!(
                        "only people who may approve it may reject it: {reason}"
                    )),
                )
                .await);
        }
        self.close(record, ProposalState::Rejected, user, now).await
    }

    /// The proposer, or anyone holding the `operator` role, withdraws a pending proposal.
    pub async fn cancel(&self, id: &str, user: &str) -> Result<ProposalRecord, GateError> {
        let _transition = self.transitions.lock().await;
        let now = Utc::now();
        let (person, record) = self
            .person_and_pending(id, user, "cancel.refused", now)
            .await?;
        let is_proposer =
            matches!(&record.proposal.proposer, Proposer::User { name, .. } if name == user);
        if !is_proposer && !person.roles.iter().any(|role| role == "operator") {
            return Err(self
                .refuse(
                    id,
                    user,
                    "cancel.refused",
                    GateError::Forbidden(format!(
                        "only the proposer or an operator may cancel {id}"
                    )),
                )
                .await);
        }
        self.close(record, ProposalState::Cancelled, user, now)
            .await
    }

    /// Ends a pending proposal by a person's word (rejected or cancelled): journaled, stored.
    async fn close(
        &self,
        mut record: ProposalRecord,
        state: ProposalState,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<ProposalRecord, GateError> {
        let vote = Some(Vote {
            user: user.to_owned(),
            at: now,
        });
        let kind = match state {
            ProposalState::Rejected => {
                record.rejected_by = vote;
                "proposal.rejected"
            }
            _ => {
                record.cancelled_by = vote;
                "proposal.cancelled"
            }
        };
        record.state = state;
        self.auditor
            .record(
                &format!("user:{user}"),
                kind,
                &record.proposal.id,
                &serde_json::json!({}),
            )
            .await?;
        self.save(&record)?;
        Ok(record)
    }

    /// Runs an approved proposal once.
    async fn execute(&self, id: &str) -> Result<ProposalRecord, GateError> {
        let (mut record, request) = {
            let _transition = self.transitions.lock().await;
            let mut record = self
                .get(id)?
                .ok_or_else(|| GateError::NotFound { id: id.to_owned() })?;
            if record.state != ProposalState::Approved {
                return Err(GateError::Conflict(format!(
                    "proposal {id} is {}, not approved",
                    record.state.as_str()
                )));
            }
            let request = ExecutionRequest {
                proposal_id: id.to_owned(),
                idempotency_key: format!("cc-{id}"),
                kind: record.proposal.operation.kind.clone(),
                target: record.proposal.operation.target.clone(),
                parameters: record.proposal.operation.parameters.clone(),
                dry_run: false,
            };
            // State first, durably: from here on a crash leaves it `executing`, which is never
            // re-run blindly. Then the journal, then the executor.
            record.state = ProposalState::Executing;
            record.execution = Some(ExecutionState {
                idempotency_key: request.idempotency_key.clone(),
                started_at: Utc::now(),
                finished_at: None,
                outcome: None,
            });
            self.save(&record)?;
            // Rate limits count executions that started, whatever their outcome.
            self.count_execution(&record.proposal.operation.kind, Utc::now())?;
            self.auditor
                .record("gate", "execution.started", id, &request)
                .await?;
            (record, request)
        };
        let outcome = match self.executors.get(&request.kind) {
            Ok(executor) => executor.execute(&request).await,
            Err(error) => ExecutionOutcome {
                status: OutcomeStatus::Failed,
                summary: error.to_string(),
                details: serde_json::Value::Null,
                dry_run: false,
            },
        };
        self.finish(&mut record, outcome, "execution.finished")
            .await?;
        Ok(record)
    }

    async fn finish(
        &self,
        record: &mut ProposalRecord,
        outcome: ExecutionOutcome,
        kind: &str,
    ) -> Result<(), GateError> {
        let _transition = self.transitions.lock().await;
        let now = Utc::now();
        let id = record.proposal.id.clone();
        self.auditor.record("gate", kind, &id, &outcome).await?;
        record.state = match outcome.status {
            OutcomeStatus::Succeeded => ProposalState::Executed,
            OutcomeStatus::Failed => ProposalState::Failed,
            OutcomeStatus::Unknown => ProposalState::Unknown,
        };
        if let Some(execution) = record.execution.as_mut() {
            execution.finished_at = Some(now);
            execution.outcome = Some(outcome.clone());
        }
        self.save(record)?;
        let severity = match outcome.status {
            OutcomeStatus::Succeeded => Severity::Info,
            OutcomeStatus::Failed => Severity::Warning,
            OutcomeStatus::Unknown => Severity::Critical,
        };
        self.alert(
            format!("execution/{id}"),
            severity,
            format!(
                "{} {} ({id}): {}",
                record.proposal.operation.kind,
                record.state.as_str(),
                outcome.summary
            ),
            record,
            if outcome.status == OutcomeStatus::Unknown {
                "approvers"
            } else {
                "proposer"
            },
        );
        Ok(())
    }

    /// After a restart: runs approved proposals that never started; reconciles the ones that
    /// were executing when the process died.
    pub async fn recover(&self) -> Result<(), GateError> {
        for mut record in self.list(Some(ProposalState::Executing))? {
            let Some(execution) = record.execution.clone() else {
                continue;
            };
            let request = ExecutionRequest {
                proposal_id: record.proposal.id.clone(),
                idempotency_key: execution.idempotency_key.clone(),
                kind: record.proposal.operation.kind.clone(),
                target: record.proposal.operation.target.clone(),
                parameters: record.proposal.operation.parameters.clone(),
                dry_run: false,
            };
            let outcome = match self.executors.get(&request.kind) {
                Ok(executor) => executor.reconcile(&request).await,
                Err(error) => ExecutionOutcome {
                    status: OutcomeStatus::Unknown,
                    summary: format!("cannot reconcile: {error}"),
                    details: serde_json::Value::Null,
                    dry_run: false,
                },
            };
            tracing::warn!(proposal = %record.proposal.id, status = ?outcome.status, "reconciled an execution interrupted by a restart");
            self.finish(&mut record, outcome, "execution.reconciled")
                .await?;
        }
        for record in self.list(Some(ProposalState::Approved))? {
            tracing::info!(proposal = %record.proposal.id, "running an approved proposal that never started");
            self.execute(&record.proposal.id).await?;
        }
        Ok(())
    }

    /// Expires pending proposals past their time and escalates the ones nobody answered.
    pub async fn sweep(&self, escalate_after: Duration) -> Result<(), GateError> {
        let now = Utc::now();
        for mut record in self.list(Some(ProposalState::Pending))? {
            let _transition = self.transitions.lock().await;
            let Some(current) = self.get(&record.proposal.id)? else {
                continue;
            };
            if current.state != ProposalState::Pending {
                continue;
            }
            record = current;
            let id = record.proposal.id.clone();
            if record.expires_at.is_some_and(|expires| now >= expires) {
                record.state = ProposalState::Expired;
                self.auditor
                    .record("gate", "proposal.expired", &id, &record.approvals)
                    .await?;
                self.save(&record)?;
                continue;
            }
            if !record.escalated && now - record.created_at >= to_chrono(escalate_after) {
                record.escalated = true;
                self.auditor
                    .record("gate", "approval.escalated", &id, &record.approvals)
                    .await?;
                self.save(&record)?;
                self.alert(
                    format!("approval-escalated/{id}"),
                    Severity::Critical,
                    format!(
                        "nobody has answered the approval request for {} {} ({id}) for {}; it expires at {}",
                        record.proposal.operation.kind,
                        record.proposal.operation.target,
                        humantime::format_duration(escalate_after),
                        record.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default()
                    ),
                    &record,
                    "escalation",
                );
            }
        }
        Ok(())
    }

    /// What an operation would do, without doing it: parameters checked, the executor's
    /// dry-run (a transfer is signed and its fee estimated, nothing is sent). Journaled.
    pub async fn dry_run(
        &self,
        user: &str,
        operation: &policies::Operation,
    ) -> Result<ExecutionOutcome, GateError> {
        self.executors
            .validate_operation(operation)
            .map_err(|error| GateError::Invalid(error.to_string()))?;
        let executor = self
            .executors
            .get(&operation.kind)
            .map_err(|error| GateError::Invalid(error.to_string()))?;
        let request = ExecutionRequest {
            proposal_id: format!("dry-run-{}", Utc::now().timestamp_millis()),
            idempotency_key: "dry-run".to_owned(),
            kind: operation.kind.clone(),
            target: operation.target.clone(),
            parameters: operation.parameters.clone(),
            dry_run: true,
        };
        let outcome = executor.execute(&request).await;
        self.auditor
            .record(
                &format!("user:{user}"),
                "dry_run.executed",
                &operation.kind,
                &serde_json::json!({ "operation": operation, "outcome": outcome }),
            )
            .await?;
        Ok(outcome)
    }

    /// Pauses autonomy globally (`agent` None) or for one agent.
    pub async fn pause(
        &self,
        agent: Option<&str>,
        by: &str,
        reason: &str,
    ) -> Result<Pause, GateError> {
        let pause = Pause {
            by: by.to_owned(),
            at: Utc::now(),
            reason: reason.to_owned(),
        };
        let key = match agent {
            Some(agent) => format!("{PAUSED}/{agent}"),
            None => PAUSED.to_owned(),
        };
        self.auditor
            .record(
                &format!("user:{by}"),
                "autonomy.paused",
                agent.unwrap_or("all"),
                &pause,
            )
            .await?;
        self.state().put(&key, &pause)?;
        Ok(pause)
    }

    pub async fn resume(&self, agent: Option<&str>, by: &str) -> Result<(), GateError> {
        let key = match agent {
            Some(agent) => format!("{PAUSED}/{agent}"),
            None => PAUSED.to_owned(),
        };
        self.auditor
            .record(
                &format!("user:{by}"),
                "autonomy.resumed",
                agent.unwrap_or("all"),
                &serde_json::json!({}),
            )
            .await?;
        self.state().delete(&key)?;
        Ok(())
    }

    /// Global and per-agent pauses in force.
    pub fn pauses(&self) -> Result<Vec<(String, Pause)>, GateError> {
        let mut pauses: Vec<(String, Pause)> = self
            .state()
            .scan_prefix::<Pause>(PAUSED)?
            .into_iter()
            .map(|(key, pause)| {
                let scope = key
                    .strip_prefix(PAUSED)
                    .map(|rest| rest.trim_start_matches('/'))
                    .filter(|rest| !rest.is_empty())
                    .unwrap_or("all")
                    .to_owned();
                (scope, pause)
            })
            .collect();
        pauses.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(pauses)
    }
}

pub mod http;

#[cfg(test)]
mod tests;

/// Agents put their proposals through the same gate as people.
impl agents::proposals::ProposalGate for Gatekeeper {
    fn submit(&self, proposal: Proposal) -> agents::proposals::SubmitFuture<'_> {
        Box::pin(async move {
            match Gatekeeper::submit(self, proposal).await {
                Ok(record) => Ok(agents::proposals::Submitted {
                    id: record.proposal.id,
                    state: record.state.as_str().to_owned(),
                }),
                Err(GateError::Duplicate { id }) => Ok(agents::proposals::Submitted {
                    id,
                    state: "duplicate".to_owned(),
                }),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

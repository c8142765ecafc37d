//! The concrete tools. Each holds what it reads (cheap clones of the store and handles) and
//! answers from it; errors reading the store are `unavailable` values.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::tools::llm::{Tool, ToolError, Untrusted};
use agents::alert::{ACTIVE_PREFIX, ActiveAlert};
use agents::validators_report::{self, Period};
use chrono::{DateTime, Duration, Utc};
use memory::{JournalQuery, SeriesKey, Store};
use policies::{Decision, Operation, Proposal, Proposer, Risk};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AssistantContext;
use crate::commands::{Caller, MarketQuote, market_quotes};
use crate::executors::{CommandParams, NotifyParams, TonTransferParams, WebhookParams};
use crate::gate::{GateError, Gatekeeper, ProposalState};
use crate::router::AlertRouter;

/// The proposer name of everything the reasoner proposes.
pub const REASONER: &str = "reasoner";

fn unavailable(what: &str, error: impl std::fmt::Display) -> ToolError {
    tracing::warn!(%error, what, "a tool could not read its data");
    ToolError::Unavailable(format!("reading {what} failed: {error}"))
}

/// A time argument, as `agents::duration::parse_time` reads it.
fn parse_time(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ToolError> {
    agents::duration::parse_time(text, now)
        .map_err(|message| ToolError::InvalidArguments(format!("at `{field}`: {message}")))
}

/// Alert summaries can quote the outside world (release notes, Prometheus annotations).
fn untrusted_summary(summary: &str, key: &str) -> Untrusted {
    Untrusted::new(summary, format!("alert:{key}"))
}

// ---------------------------------------------------------------------------------------------

/// `validator_status`
pub struct ValidatorStatus {
    store: Store,
}

impl ValidatorStatus {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidatorStatusArgs {
    /// One validator by name; omit for all of them.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ValidatorStatusOutput {
    /// Balance, election set, rank, stake, efficiency, sync lag, disk, memory, CPU and the
    /// alerts firing for each validator.
    pub validators: Vec<serde_json::Value>,
}

/// A summary with its alert summaries marked as untrusted data.
fn summary_value(summary: &validators_report::ValidatorSummary) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).unwrap_or_default();
    if let Some(firing) = value.get_mut("firing").and_then(|f| f.as_array_mut()) {
        for (brief, original) in firing.iter_mut().zip(&summary.firing) {
            brief["summary"] =
                serde_json::to_value(untrusted_summary(&original.summary, &original.key))
                    .unwrap_or_default();
        }
    }
    value
}

impl Tool for ValidatorStatus {
    const NAME: &'static str = "validator_status";
    const DESCRIPTION: &'static str = "Our TON validators now: balance (TON), whether in the \
        current and next election set, rank and network share, stake, efficiency, sync lag, \
        disk, memory and CPU, and the alerts firing for each. All of them, or one by name.";
    type Args = ValidatorStatusArgs;
    type Output = ValidatorStatusOutput;

    async fn call(&self, args: ValidatorStatusArgs) -> Result<ValidatorStatusOutput, ToolError> {
        let now = Utc::now();
        let summaries = match &args.name {
            None => validators_report::summaries(&self.store, now)
                .map_err(|e| unavailable("the validators", e))?,
            Some(name) => {
                match validators_report::detail(&self.store, name, now)
                    .map_err(|e| unavailable("the validator", e))?
                {
                    Some(detail) => vec![detail.summary],
                    None => {
                        let known = validators_report::names(&self.store)
                            .map_err(|e| unavailable("the validators", e))?;
                        return Err(ToolError::NotFound(format!(
                            "no validator {name:?}; known: {}",
                            if known.is_empty() {
                                "none yet".to_owned()
                            } else {
                                known.join(", ")
                            }
                        )));
                    }
                }
            }
        };
        Ok(ValidatorStatusOutput {
            validators: summaries.iter().map(summary_value).collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `validator_earnings`
pub struct ValidatorEarnings {
    store: Store,
}

impl ValidatorEarnings {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
        }
    }
}

/// An earnings period, counted back from now.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EarningsPeriod {
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    #[default]
    Week,
    /// The last 30 days.
    Month,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEarningsArgs {
    /// `week` unless said otherwise.
    #[serde(default)]
    pub period: EarningsPeriod,
}

impl Tool for ValidatorEarnings {
    const NAME: &'static str = "validator_earnings";
    const DESCRIPTION: &'static str = "Validator rewards over a period (day, week or month \
        back from now): per validator and in total, in TON and USD, rounds paid, the trend \
        against the period before, APY, and the total per day.";
    type Args = ValidatorEarningsArgs;
    type Output = validators_report::EarningsReport;

    async fn call(
        &self,
        args: ValidatorEarningsArgs,
    ) -> Result<validators_report::EarningsReport, ToolError> {
        let period = match args.period {
            EarningsPeriod::Day => Period::Day,
            EarningsPeriod::Week => Period::Week,
            EarningsPeriod::Month => Period::Month,
        };
        validators_report::earnings(&self.store, period, Utc::now())
            .map_err(|e| unavailable("the earnings", e))
    }
}

// ---------------------------------------------------------------------------------------------

/// `market_prices`
pub struct MarketPrices {
    store: Store,
}

impl MarketPrices {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
        }
    }
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

#[derive(Debug, Serialize)]
pub struct MarketPricesOutput {
    pub prices: Vec<MarketQuote>,
}

impl Tool for MarketPrices {
    const NAME: &'static str = "market_prices";
    const DESCRIPTION: &'static str = "The latest price of every coin the market agent \
        watches (TON, BTC, ETH, ...), when it was taken, and its change over the last 24 hours \
        in percent.";
    type Args = NoArguments;
    type Output = MarketPricesOutput;

    async fn call(&self, _args: NoArguments) -> Result<MarketPricesOutput, ToolError> {
        Ok(MarketPricesOutput {
            prices: market_quotes(&self.store, Utc::now())
                .map_err(|e| unavailable("the prices", e))?,
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `firing_alerts`
pub struct FiringAlerts {
    store: Store,
    router: Option<Arc<AlertRouter>>,
}

impl FiringAlerts {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
            router: context.router.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FiringAlert {
    pub key: String,
    pub rule: String,
    pub severity: String,
    pub summary: Untrusted,
    pub labels: BTreeMap<String, String>,
    pub since: DateTime<Utc>,
    /// `active`, `silenced`, `inhibited`, `maintenance` or `acknowledged`.
    pub state: String,
    pub silenced_by: Vec<String>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_comment: Option<Untrusted>,
}

#[derive(Debug, Serialize)]
pub struct FiringAlertsOutput {
    pub alerts: Vec<FiringAlert>,
}

impl Tool for FiringAlerts {
    const NAME: &'static str = "firing_alerts";
    const DESCRIPTION: &'static str = "Alerts firing now, most severe first, each with its \
        state in the alert router: active, silenced (and by which silence), inhibited, in a \
        maintenance window, or acknowledged (by whom).";
    type Args = NoArguments;
    type Output = FiringAlertsOutput;

    async fn call(&self, _args: NoArguments) -> Result<FiringAlertsOutput, ToolError> {
        let mut alerts: Vec<(agents::Severity, FiringAlert)> = match &self.router {
            Some(router) => router
                .firing(Utc::now())
                .await
                .into_iter()
                .map(|view| {
                    let alert = &view.alert;
                    (
                        alert.severity,
                        FiringAlert {
                            key: alert.key.clone(),
                            rule: alert.rule.clone(),
                            severity: alert.severity.to_string(),
                            summary: untrusted_summary(&alert.summary, &alert.key),
                            labels: alert.labels.clone(),
                            since: alert.starts_at,
                            state: view.state.clone(),
                            silenced_by: view.silenced_by.clone(),
                            acknowledged_by: view.acknowledged.as_ref().map(|ack| ack.by.clone()),
                            acknowledged_comment: view.acknowledged.as_ref().map(|ack| {
                                Untrusted::new(&ack.comment, format!("user:{}", ack.by))
                            }),
                        },
                    )
                })
                .collect(),
            None => self
                .store
                .state()
                .scan_prefix::<ActiveAlert>(ACTIVE_PREFIX)
                .map_err(|e| unavailable("the firing alerts", e))?
                .into_iter()
                .map(|(_, active)| {
                    let alert = active.alert;
                    (
                        alert.severity,
                        FiringAlert {
                            summary: untrusted_summary(&alert.summary, &alert.key),
                            key: alert.key,
                            rule: alert.rule,
                            severity: alert.severity.to_string(),
                            labels: alert.labels,
                            since: alert.starts_at,
                            state: "active".to_owned(),
                            silenced_by: Vec::new(),
                            acknowledged_by: None,
                            acknowledged_comment: None,
                        },
                    )
                })
                .collect(),
        };
        alerts.sort_by(|(a_severity, a), (b_severity, b)| {
            b_severity.cmp(a_severity).then(a.since.cmp(&b.since))
        });
        Ok(FiringAlertsOutput {
            alerts: alerts.into_iter().map(|(_, alert)| alert).collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `pending_approvals`
pub struct PendingApprovals {
    gate: Arc<Gatekeeper>,
}

impl PendingApprovals {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            gate: context.gate.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PendingApproval {
    pub id: String,
    pub kind: String,
    pub domain: String,
    pub target: String,
    pub risk: String,
    pub amount_nanoton: u64,
    pub proposer: String,
    pub rationale: Untrusted,
    pub approvals: Vec<String>,
    pub approvals_needed: u32,
    pub eligible_roles: Vec<String>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct PendingApprovalsOutput {
    pub pending: Vec<PendingApproval>,
}

/// A person's proposal has a rationale they typed; an agent's may quote the outside world.
fn rationale(proposal: &Proposal) -> Untrusted {
    let source = match &proposal.proposer {
        Proposer::Agent { name, .. } => format!("agent:{name}"),
        Proposer::User { name, .. } => format!("user:{name}"),
    };
    Untrusted::new(&proposal.rationale, source)
}

impl Tool for PendingApprovals {
    const NAME: &'static str = "pending_approvals";
    const DESCRIPTION: &'static str = "Proposals waiting for people to approve, newest first: \
        what would run (kind, target, risk, amount), who proposed it and why, the votes so \
        far, how many are needed and from which roles, and when the request expires.";
    type Args = NoArguments;
    type Output = PendingApprovalsOutput;

    async fn call(&self, _args: NoArguments) -> Result<PendingApprovalsOutput, ToolError> {
        let records = self
            .gate
            .list(Some(ProposalState::Pending))
            .map_err(|e| unavailable("the approvals", e))?;
        Ok(PendingApprovalsOutput {
            pending: records
                .iter()
                .map(|record| {
                    let operation = &record.proposal.operation;
                    let (eligible_roles, reason) = match &record.decision {
                        Decision::NeedsApproval {
                            eligible_roles,
                            reason,
                            ..
                        } => (eligible_roles.clone(), reason.clone()),
                        _ => (Vec::new(), String::new()),
                    };
                    PendingApproval {
                        id: record.proposal.id.clone(),
                        kind: operation.kind.clone(),
                        domain: operation.domain.clone(),
                        target: operation.target.clone(),
                        risk: operation.risk.as_str().to_owned(),
                        amount_nanoton: operation.amount_nanoton,
                        proposer: record.proposal.proposer.name().to_owned(),
                        rationale: rationale(&record.proposal),
                        approvals: record.approvals.iter().map(|v| v.user.clone()).collect(),
                        approvals_needed: record.approvals_needed(),
                        eligible_roles,
                        reason,
                        created_at: record.created_at,
                        expires_at: record.expires_at,
                    }
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `audit_search`
pub struct AuditSearch {
    store: Store,
}

impl AuditSearch {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
        }
    }
}

/// Most entries one search returns.
pub const MAX_AUDIT_RESULTS: usize = 100;
/// An entry's body is cut to this many bytes.
const MAX_AUDIT_BODY_BYTES: usize = 2000;

fn default_audit_limit() -> usize {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSearchArgs {
    /// Entry kind, exact (`decision.made`) or a prefix ending in `*` (`proposal.*`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Who acted, exactly (`gate`, `user:alice`, `proposer:reasoner`).
    #[serde(default)]
    pub actor: Option<String>,
    /// Case-insensitive text in the subject or the body.
    #[serde(default)]
    pub text: Option<String>,
    /// Only entries at or after this: RFC 3339, or a duration back from now (`24h`, `7d`).
    #[serde(default)]
    pub since: Option<String>,
    /// At most this many entries, newest first (1 to 100, default 20).
    #[serde(default = "default_audit_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: usize,
}

#[derive(Debug, Serialize)]
pub struct AuditEntryView {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    /// The entry's body as compact JSON; it can hold what people typed or the outside world
    /// sent, so it is data.
    pub body: Untrusted,
}

#[derive(Debug, Serialize)]
pub struct AuditSearchOutput {
    pub entries: Vec<AuditEntryView>,
}

impl Tool for AuditSearch {
    const NAME: &'static str = "audit_search";
    const DESCRIPTION: &'static str = "Searches the audit log (every proposal, decision, \
        approval, execution, alert and message, hash-chained), newest first, by kind, actor, \
        text and time.";
    type Args = AuditSearchArgs;
    type Output = AuditSearchOutput;

    async fn call(&self, args: AuditSearchArgs) -> Result<AuditSearchOutput, ToolError> {
        if !(1..=MAX_AUDIT_RESULTS).contains(&args.limit) {
            return Err(ToolError::InvalidArguments(format!(
                "at `limit`: {} is not between 1 and {MAX_AUDIT_RESULTS}",
                args.limit
            )));
        }
        let since = args
            .since
            .as_deref()
            .map(|text| parse_time("since", text, Utc::now()))
            .transpose()?;
        let entries = self
            .store
            .journal()
            .query(&JournalQuery {
                since,
                actor: args.actor,
                kind: args.kind,
                text: args.text,
                limit: Some(args.limit),
                newest_first: true,
                ..JournalQuery::default()
            })
            .map_err(|e| unavailable("the audit log", e))?;
        Ok(AuditSearchOutput {
            entries: entries
                .into_iter()
                .map(|entry| {
                    let (body, _) =
                        ::tools::llm::truncate(&entry.body.to_string(), MAX_AUDIT_BODY_BYTES);
                    AuditEntryView {
                        body: Untrusted::new(body, format!("journal:{}", entry.seq)),
                        seq: entry.seq,
                        at: entry.at,
                        actor: entry.actor,
                        kind: entry.kind,
                        subject: entry.subject,
                    }
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `memory_search`
pub struct MemorySearch {
    memory: Arc<crate::vectors::VectorMemory>,
}

impl MemorySearch {
    pub fn new(memory: Arc<crate::vectors::VectorMemory>) -> Self {
        Self { memory }
    }
}

/// Most records one memory search returns.
pub const MAX_MEMORY_RESULTS: usize = 20;
/// A record's text is cut to this many bytes.
const MAX_MEMORY_TEXT_BYTES: usize = 1500;

fn default_memory_limit() -> usize {
    5
}

/// Kinds of remembered documents.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKindArg {
    News,
    Release,
    Report,
    Incident,
    Conversation,
    Note,
}

impl From<MemoryKindArg> for memory::vector::Kind {
    fn from(kind: MemoryKindArg) -> Self {
        use memory::vector::Kind;
        match kind {
            MemoryKindArg::News => Kind::News,
            MemoryKindArg::Release => Kind::Release,
            MemoryKindArg::Report => Kind::Report,
            MemoryKindArg::Incident => Kind::Incident,
            MemoryKindArg::Conversation => Kind::Conversation,
            MemoryKindArg::Note => Kind::Note,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySearchArgs {
    /// What to look for, in words; matched by meaning and by exact words.
    pub query: String,
    /// Only this domain (`validators`, `market`, `finance`, `operations`).
    #[serde(default)]
    pub domain: Option<String>,
    /// Only these kinds.
    #[serde(default)]
    pub kinds: Vec<MemoryKindArg>,
    /// Only records fetched at or after this: RFC 3339, or a duration back from now (`7d`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only `internal` (our own reports and incidents) or `external` (fetched, or typed by people).
    #[serde(default)]
    pub trust: Option<TrustArg>,
    /// At most this many records, best first (1 to 20, default 5).
    #[serde(default = "default_memory_limit")]
    #[schemars(range(min = 1, max = 20))]
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrustArg {
    Internal,
    External,
}

#[derive(Debug, Serialize)]
pub struct MemoryHitView {
    /// Cite it as this (`memory:0123456789ab`).
    pub citation: String,
    pub kind: &'static str,
    pub domain: String,
    pub trust: &'static str,
    pub fetched_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub score: f32,
    /// The remembered text: documents from outside can hold anything, so it is data.
    pub text: Untrusted,
}

#[derive(Debug, Serialize)]
pub struct MemorySearchOutput {
    pub hits: Vec<MemoryHitView>,
}

impl Tool for MemorySearch {
    const NAME: &'static str = "memory_search";
    const DESCRIPTION: &'static str = "Searches what Command Center remembers (incidents, \
        releases, news, daily reports, past conversations, notes) by meaning and by words, \
        newer first among equals. Cite the records you use by their `citation`.";
    type Args = MemorySearchArgs;
    type Output = MemorySearchOutput;

    async fn call(&self, args: MemorySearchArgs) -> Result<MemorySearchOutput, ToolError> {
        if !(1..=MAX_MEMORY_RESULTS).contains(&args.limit) {
            return Err(ToolError::InvalidArguments(format!(
                "at `limit`: {} is not between 1 and {MAX_MEMORY_RESULTS}",
                args.limit
            )));
        }
        if args.query.trim().is_empty() {
            return Err(ToolError::InvalidArguments(
                "at `query`: say what to look for".to_owned(),
            ));
        }
        let since = args
            .since
            .as_deref()
            .map(|text| parse_time("since", text, Utc::now()))
            .transpose()?;
        let filter = memory::vector::SearchFilter {
            domains: args.domain.into_iter().collect(),
            kinds: args.kinds.into_iter().map(Into::into).collect(),
            since,
            until: None,
            trust: args.trust.map(|trust| match trust {
                TrustArg::Internal => memory::vector::Trust::Internal,
                TrustArg::External => memory::vector::Trust::External,
            }),
        };
        let query = self
            .memory
            .query(args.query)
            .limit(args.limit)
            .filter(filter);
        let hits = self
            .memory
            .search(query)
            .await
            .map_err(|error| match error {
                memory::vector::VectorError::InvalidInput { field, message } => {
                    ToolError::InvalidArguments(format!("at `{field}`: {message}"))
                }
                other => unavailable("the memory", other),
            })?;
        Ok(MemorySearchOutput {
            hits: hits
                .into_iter()
                .map(|hit| {
                    let record = hit.record;
                    let citation = crate::vectors::citation(&record.id);
                    let (text, _) = ::tools::llm::truncate(&record.text, MAX_MEMORY_TEXT_BYTES);
                    MemoryHitView {
                        text: Untrusted::new(text, citation.clone()),
                        citation,
                        kind: record.kind.as_str(),
                        domain: record.domain,
                        trust: record.trust.as_str(),
                        fetched_at: record.fetched_at,
                        source_url: record.source_url,
                        score: hit.score,
                    }
                })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `metrics_query`
pub struct MetricsQuery {
    store: Store,
}

impl MetricsQuery {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            store: context.store.clone(),
        }
    }
}

/// Most samples one query returns.
pub const MAX_METRIC_SAMPLES: usize = 500;
/// Most series names listed.
const MAX_LISTED_SERIES: usize = 200;

/// Bucket width.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricResolution {
    /// Every stored sample.
    #[default]
    Raw,
    /// One value per UTC hour.
    Hour,
    /// One value per UTC day.
    Day,
}

/// How the samples of one bucket combine.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricAggregation {
    Sum,
    Avg,
    Min,
    Max,
    #[default]
    Last,
}

fn default_metric_since() -> String {
    "24h".to_owned()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsQueryArgs {
    /// The series name (`validator_balance_ton`, `market_price`); omit to list every series.
    #[serde(default)]
    pub series: Option<String>,
    /// Labels that pick one series of that name (`{"validator": "validator-1"}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start: RFC 3339, or a duration back from now (default `24h`).
    #[serde(default = "default_metric_since")]
    pub since: String,
    /// End (exclusive): RFC 3339 or a duration back from now; default now.
    #[serde(default)]
    pub until: Option<String>,
    /// `raw` (default), `hour` or `day`.
    #[serde(default)]
    pub resolution: MetricResolution,
    /// How buckets combine when `resolution` is not `raw` (default `last`).
    #[serde(default)]
    pub aggregation: MetricAggregation,
}

#[derive(Debug, Serialize)]
pub struct MetricsQueryOutput {
    /// Every series written, as `name{label="value"}` (when no series was asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub available: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub samples: Vec<memory::Sample>,
    /// Samples left out beyond the newest 500.
    pub omitted: usize,
}

impl Tool for MetricsQuery {
    const NAME: &'static str = "metrics_query";
    const DESCRIPTION: &'static str = "Reads one stored time series (balances, sync lag, \
        disk, prices, rewards, ...) over a time range, raw or per hour or day with an \
        aggregation. Without `series` it lists every series there is.";
    type Args = MetricsQueryArgs;
    type Output = MetricsQueryOutput;

    async fn call(&self, args: MetricsQueryArgs) -> Result<MetricsQueryOutput, ToolError> {
        let series = self.store.series();
        let keys = series.list().map_err(|e| unavailable("the series", e))?;
        let Some(name) = args.series else {
            return Ok(MetricsQueryOutput {
                available: keys
                    .iter()
                    .take(MAX_LISTED_SERIES)
                    .map(ToString::to_string)
                    .collect(),
                series: None,
                from: None,
                to: None,
                samples: Vec::new(),
                omitted: keys.len().saturating_sub(MAX_LISTED_SERIES),
            });
        };
        let key = SeriesKey {
            name: name.clone(),
            labels: args.labels,
        };
        if !keys.contains(&key) {
            let same_name: Vec<String> = keys
                .iter()
                .filter(|known| known.name == name)
                .map(ToString::to_string)
                .collect();
            return Err(ToolError::NotFound(if same_name.is_empty() {
                format!(
                    "no series named {name:?}; call metrics_query without `series` to list them"
                )
            } else {
                format!(
                    "no series {key}; with that name there are: {}",
                    same_name.join(", ")
                )
            }));
        }
        let now = Utc::now();
        let from = parse_time("since", &args.since, now)?;
        let to = match &args.until {
            Some(text) => parse_time("until", text, now)?,
            None => now + Duration::seconds(1),
        };
        if to <= from {
            return Err(ToolError::InvalidArguments(
                "`until` must be after `since`".to_owned(),
            ));
        }
        let aggregation = match args.aggregation {
            MetricAggregation::Sum => memory::Aggregation::Sum,
            MetricAggregation::Avg => memory::Aggregation::Avg,
            MetricAggregation::Min => memory::Aggregation::Min,
            MetricAggregation::Max => memory::Aggregation::Max,
            MetricAggregation::Last => memory::Aggregation::Last,
        };
        let mut samples = match args.resolution {
            MetricResolution::Raw => series.range(&key, from, to),
            MetricResolution::Hour => {
                series.downsample(&key, from, to, memory::Resolution::Hour, aggregation)
            }
            MetricResolution::Day => {
                series.downsample(&key, from, to, memory::Resolution::Day, aggregation)
            }
        }
        .map_err(|e| unavailable("the series", e))?;
        let omitted = samples.len().saturating_sub(MAX_METRIC_SAMPLES);
        samples.drain(..omitted);
        Ok(MetricsQueryOutput {
            available: Vec::new(),
            series: Some(key.to_string()),
            from: Some(from),
            to: Some(to),
            samples,
            omitted,
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// `propose_action`
pub struct ProposeAction {
    gate: Arc<Gatekeeper>,
    caller: Caller,
    conversation: String,
    /// Makes ids unique within one conversation's millisecond.
    counter: AtomicU64,
}

impl ProposeAction {
    pub fn new(context: &AssistantContext) -> Self {
        Self {
            gate: context.gate.clone(),
            caller: context.caller.clone(),
            conversation: context.conversation.clone(),
            counter: AtomicU64::new(0),
        }
    }
}

/// The domain an operation belongs to.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationDomain {
    Validators,
    Finance,
    Market,
    Operations,
}

impl OperationDomain {
    fn as_str(self) -> &'static str {
        match self {
            OperationDomain::Validators => "validators",
            OperationDomain::Finance => "finance",
            OperationDomain::Market => "market",
            OperationDomain::Operations => "operations",
        }
    }
}

/// How risky the operation is, as the proposer judges it.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationRisk {
    Low,
    Medium,
    High,
}

impl From<OperationRisk> for Risk {
    fn from(risk: OperationRisk) -> Risk {
        match risk {
            OperationRisk::Low => Risk::Low,
            OperationRisk::Medium => Risk::Medium,
            OperationRisk::High => Risk::High,
        }
    }
}

/// One operation, typed by kind; its parameters are the executor's own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProposedOperation {
    /// Run a configured program (restart a node, upgrade, failover, ...).
    Command {
        domain: OperationDomain,
        risk: OperationRisk,
        /// What it acts on: the validator's name, a host.
        target: String,
        parameters: CommandParams,
    },
    /// Tell the company's own people something.
    Notify {
        domain: OperationDomain,
        risk: OperationRisk,
        parameters: NotifyParams,
    },
    /// POST to a configured webhook target.
    Webhook {
        domain: OperationDomain,
        risk: OperationRisk,
        parameters: WebhookParams,
    },
    /// Send TON from the configured wallet; always needs people to approve.
    TonTransfer {
        risk: OperationRisk,
        parameters: TonTransferParams,
    },
}

impl ProposedOperation {
    fn operation(self) -> Result<Operation, ToolError> {
        let encode = |parameters: Result<serde_json::Value, serde_json::Error>| {
            parameters.map_err(|e| ToolError::InvalidArguments(format!("parameters: {e}")))
        };
        Ok(match self {
            ProposedOperation::Command {
                domain,
                risk,
                target,
                parameters,
            } => Operation {
                kind: "command".to_owned(),
                domain: domain.as_str().to_owned(),
                risk: risk.into(),
                amount_nanoton: 0,
                amount_cents: 0,
                target,
                parameters: encode(serde_json::to_value(parameters))?,
            },
            ProposedOperation::Notify {
                domain,
                risk,
                parameters,
            } => Operation {
                kind: "notify".to_owned(),
                domain: domain.as_str().to_owned(),
                risk: risk.into(),
                amount_nanoton: 0,
                amount_cents: 0,
                target: String::new(),
                parameters: encode(serde_json::to_value(parameters))?,
            },
            ProposedOperation::Webhook {
                domain,
                risk,
                parameters,
            } => Operation {
                kind: "webhook".to_owned(),
                domain: domain.as_str().to_owned(),
                risk: risk.into(),
                amount_nanoton: 0,
                amount_cents: 0,
                target: parameters.target.clone(),
                parameters: encode(serde_json::to_value(parameters))?,
            },
            ProposedOperation::TonTransfer { risk, parameters } => Operation {
                kind: "ton_transfer".to_owned(),
                domain: "finance".to_owned(),
                risk: risk.into(),
                amount_nanoton: parameters.amount_nanoton,
                amount_cents: 0,
                target: parameters.destination.clone(),
                parameters: encode(serde_json::to_value(parameters))?,
            },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeActionArgs {
    pub operation: ProposedOperation,
    /// Why, in a sentence or two people will read before approving.
    #[schemars(length(min = 1, max = 2000))]
    pub rationale: String,
}

/// What the gate decided; nothing was executed by the tool itself.
#[derive(Debug, Serialize)]
pub struct ProposeActionOutput {
    pub proposal_id: String,
    /// `auto` (runs on its own), `needs_approval` or `deny`.
    pub decision: String,
    /// Where the proposal stands now (`pending`, `denied`, `approved`, `executed`, ...).
    pub state: String,
    /// The policies that decided.
    pub by: Vec<String>,
    pub reason: Option<String>,
    pub approvals_needed: u32,
    pub eligible_roles: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// What to tell the person.
    pub next: String,
}

impl Tool for ProposeAction {
    const NAME: &'static str = "propose_action";
    const DESCRIPTION: &'static str = "Proposes one operation to the policy gate on behalf of \
        the person you are answering, and returns the gate's decision: allowed to run on its \
        own, waiting for approval from people with certain roles, or denied and why. It never \
        executes anything itself; say to the person what the gate decided.";
    type Args = ProposeActionArgs;
    type Output = ProposeActionOutput;

    async fn call(&self, args: ProposeActionArgs) -> Result<ProposeActionOutput, ToolError> {
        if args.rationale.trim().is_empty() {
            return Err(ToolError::InvalidArguments(
                "at `rationale`: say why, in a sentence people will read".to_owned(),
            ));
        }
        let operation = args.operation.operation()?;
        let episode = format!(
            "{}-{}",
            Utc::now().timestamp_millis(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let id =
            agents::proposals::proposal_id(REASONER, &operation.kind, &operation.target, &episode);
        let proposal = Proposal {
            id,
            proposer: Proposer::Agent {
                name: REASONER.to_owned(),
                domain: operation.domain.clone(),
            },
            operation,
            rationale: args.rationale,
            evidence: serde_json::json!({
                "on_behalf_of": self.caller.name,
                "conversation": self.conversation,
            }),
        };
        // On its own task: a caller that stops waiting (the registry's timeout) must not cut
        // the gate off between two of its journaled steps.
        let gate = self.gate.clone();
        let submitted = tokio::spawn(async move { gate.submit(proposal).await })
            .await
            .map_err(|error| unavailable("the gate", error))?;
        let record = match submitted {
            Ok(record) => record,
            Err(GateError::Invalid(message)) => return Err(ToolError::InvalidArguments(message)),
            Err(error) => return Err(unavailable("the gate", error)),
        };
        let (reason, eligible_roles) = match &record.decision {
            Decision::Deny { reason, .. } => (Some(reason.clone()), Vec::new()),
            Decision::Auto { .. } => (None, Vec::new()),
            Decision::NeedsApproval {
                reason,
                eligible_roles,
                ..
            } => (Some(reason.clone()), eligible_roles.clone()),
        };
        let next = match &record.decision {
            Decision::Deny { .. } => {
                "Denied by policy: it will not run, not even with approvals.".to_owned()
            }
            Decision::Auto { .. } => {
                "The policy lets it run on its own; the runtime executes and journals it."
                    .to_owned()
            }
            Decision::NeedsApproval { approvals, .. } => format!(
                "Waiting for {approvals} approval(s) from {}; they see it under /approvals.",
                eligible_roles.join(" or ")
            ),
        };
        Ok(ProposeActionOutput {
            proposal_id: record.proposal.id.clone(),
            decision: record.decision.kind().to_owned(),
            state: record.state.as_str().to_owned(),
            by: record.decision.by().to_vec(),
            approvals_needed: record.approvals_needed(),
            reason,
            eligible_roles,
            expires_at: record.expires_at,
            next,
        })
    }
}

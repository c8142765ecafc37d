//! The daemon's HTTP port: `/healthz`, `/readyz`, `/metrics` and the JSON API under `/v1`.
//!
//! Write endpoints (`POST`) answer only to loopback clients until API tokens exist.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix::Addr;
use agents::Alert;
use agents::audit::Auditor;
use agents::health::{ComponentHealth, HealthRegistry};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use memory::{Checkpoint, JournalEntry, JournalQuery, Store, VerifyReport};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::supervisor::{AgentSupervisor, TickNow};

/// Everything the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auditor: Auditor,
    pub health: HealthRegistry,
    pub registry: Arc<Registry>,
    pub started_at: DateTime<Utc>,
    pub demo: bool,
    pub agents: Arc<BTreeMap<String, Addr<AgentSupervisor>>>,
    pub policies: Arc<crate::policy_watch::PolicyHolder>,
    pub gate: Arc<crate::gate::Gatekeeper>,
    pub router: Arc<crate::router::AlertRouter>,
    /// Free questions through the language model, when `[reasoner]` is on.
    pub conversation: Option<Arc<crate::assistant::conversation::Conversation>>,
    /// The vector memory, when `[memory]` is on.
    pub memory: Option<Arc<crate::vectors::VectorMemory>>,
    /// `[briefings]`: who gets the daily briefings.
    pub briefings: Arc<crate::config::BriefingsSection>,
    /// `[finance]`: streams, categories, reporting currency.
    pub finance: Arc<agents::finance::FinanceConfig>,
    /// What the on-chain income sync reads from.
    pub onchain: Arc<crate::finance::onchain::OnchainSources>,
}

/// `GET /v1/status`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub uptime_seconds: i64,
    pub ready: bool,
    pub demo: bool,
    pub data_dir: String,
    pub actors: Vec<ComponentHealth>,
    pub sources: Vec<ComponentHealth>,
    pub firing_alerts: Vec<Alert>,
    pub journal: JournalStatus,
    pub policies: crate::policy_watch::PolicyStatus,
    /// Proposals waiting for people.
    pub pending_approvals: usize,
    /// Kill switches in force: ("all" or an agent, who, when, why).
    pub paused: Vec<(String, crate::gate::Pause)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalStatus {
    pub entries: u64,
    pub head: Option<Checkpoint>,
}

/// An error body: `{"error": "..."}` with a status code.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

pub(crate) fn loopback_only(peer: SocketAddr) -> Result<(), ApiError> {
    if peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "write endpoints answer only to clients on this machine (loopback)",
        ))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/validators", get(validators))
        .route("/v1/validators/{name}", get(validator))
        .route("/v1/earnings", get(earnings))
        .route("/v1/ranking", get(ranking))
        .route("/v1/audit", get(audit_query))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/audit/notes", post(audit_note))
        .route("/v1/audit/{seq}", get(audit_entry))
        .route("/v1/agents/{name}/tick", post(agent_tick))
        .route("/v1/admin/backup", post(backup))
        .route("/v1/policies/reload", post(reload_policies))
        .route("/v1/commands", post(command))
        .merge(crate::gate::http::routes())
        .merge(crate::router::http::routes())
        .merge(crate::vectors::routes())
        .merge(crate::briefing::routes())
        .merge(crate::finance::routes())
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once storage is open and every agent has started.
pub fn is_ready(state: &AppState) -> bool {
    state.agents.is_empty() || state.health.all_actors_started()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if is_ready(&state) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let starting: Vec<String> = state
            .health
            .snapshot()
            .actors
            .into_iter()
            .filter(|actor| actor.state == agents::health::HealthState::Starting)
            .map(|actor| actor.name)
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: starting {}\n", starting.join(", ")),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.registry).map_err(internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Builds the status report (also used by tests in-process).
pub fn status_report(state: &AppState) -> Result<StatusReport, String> {
    let snapshot = state.health.snapshot();
    let firing_alerts = state
        .store
        .state()
        .scan_prefix::<agents::alert::ActiveAlert>(agents::alert::ACTIVE_PREFIX)
        .map_err(|error| error.to_string())?
        .into_iter()
        .map(|(_, active)| active.alert)
        .collect();
    let now = Utc::now();
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state.started_at,
        now,
        uptime_seconds: (now - state.started_at).num_seconds(),
        ready: is_ready(state),
        demo: state.demo,
        data_dir: state.store.data_dir().display().to_string(),
        actors: snapshot.actors,
        sources: snapshot.sources,
        firing_alerts,
        journal: JournalStatus {
            entries: state.store.journal().len(),
            head: state.store.journal().head(),
        },
        policies: state.policies.status(),
        pending_approvals: state
            .gate
            .list(Some(crate::gate::ProposalState::Pending))
            .map_err(|error| error.to_string())?
            .len(),
        paused: state.gate.pauses().map_err(|error| error.to_string())?,
    })
}

async fn status(State(state): State<AppState>) -> Result<Json<StatusReport>, ApiError> {
    status_report(&state).map(Json).map_err(internal)
}

async fn audit_query(
    State(state): State<AppState>,
    Query(query): Query<JournalQuery>,
) -> Result<Json<Vec<JournalEntry>>, ApiError> {
    let store = state.store.clone();
    let entries = tokio::task::spawn_blocking(move || store.journal().query(&query))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(entries))
}

async fn audit_entry(
    State(state): State<AppState>,
    Path(seq): Path<u64>,
) -> Result<Json<JournalEntry>, ApiError> {
    match state.store.journal().get(seq).map_err(internal)? {
        Some(entry) => Ok(Json(entry)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no journal entry #{seq}; the journal has {} entries",
                state.store.journal().len()
            ),
        )),
    }
}

async fn audit_verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, ApiError> {
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || {
        let checkpoints =
            memory::read_checkpoints(&store.data_dir().join(crate::daemon::CHECKPOINT_FILE))?;
        store.journal().verify(&checkpoints)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(Json(report))
}

/// `POST /v1/audit/notes`: an operator's note in the audit log.
#[derive(Debug, Deserialize)]
pub struct NoteRequest {
    pub author: String,
    pub text: String,
}

async fn audit_note(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(note): Json<NoteRequest>,
) -> Result<Json<JournalEntry>, ApiError> {
    loopback_only(peer)?;
    let author = note.author.trim();
    if author.is_empty() || author.len() > 64 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "author must be 1 to 64 characters",
        ));
    }
    if note.text.trim().is_empty() || note.text.len() > 16 * 1024 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text must be 1 byte to 16 KiB",
        ));
    }
    let entry = state
        .auditor
        .record(
            &format!("operator:{author}"),
            "note.added",
            "note",
            &serde_json::json!({ "text": note.text }),
        )
        .await
        .map_err(internal)?;
    Ok(Json(entry))
}

async fn agent_tick(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Result<Json<crate::supervisor::TickSummary>, ApiError> {
    loopback_only(peer)?;
    let Some(addr) = state.agents.get(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no agent named {name:?}; running agents: {}",
                state.agents.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    match addr.send(TickNow).await {
        Ok(Ok(summary)) => Ok(Json(summary)),
        Ok(Err(message)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)),
        Err(error) => Err(internal(format!("agent {name} is not running: {error}"))),
    }
}

/// `POST /v1/admin/backup`: a consistent snapshot of the data directory into `dir`.
#[derive(Debug, Deserialize)]
pub struct BackupRequest {
    pub dir: PathBuf,
}

async fn backup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<BackupRequest>,
) -> Result<Json<memory::SnapshotManifest>, ApiError> {
    loopback_only(peer)?;
    if !request.dir.is_absolute() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dir must be an absolute path (the daemon's working directory may differ from yours)",
        ));
    }
    let store = state.store.clone();
    let dir = request.dir.clone();
    let manifest = tokio::task::spawn_blocking(move || store.snapshot(&dir))
        .await
        .map_err(internal)?
        .map_err(|error| ApiError::new(StatusCode::CONFLICT, error.to_string()))?;
    let _ = state
        .auditor
        .record(
            "runtime",
            "backup.created",
            &request.dir.display().to_string(),
            &manifest,
        )
        .await;
    Ok(Json(manifest))
}

async fn reload_policies(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Json<serde_json::Value>, ApiError> {
    loopback_only(peer)?;
    let outcome = state.policies.reload().await;
    let body = match outcome {
        crate::policy_watch::ReloadOutcome::Unchanged => {
            serde_json::json!({ "outcome": "unchanged" })
        }
        crate::policy_watch::ReloadOutcome::Reloaded { policies } => {
            serde_json::json!({ "outcome": "reloaded", "policies": policies })
        }
        crate::policy_watch::ReloadOutcome::Rejected { problems } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "policy change rejected; the previous policies stay in force: {}",
                    problems.join("; ")
                ),
            ));
        }
    };
    Ok(Json(body))
}

async fn validators(
    State(state): State<AppState>,
) -> Result<Json<Vec<agents::validators_report::ValidatorSummary>>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || agents::validators_report::summaries(&store, Utc::now()))
        .await
        .map_err(internal)?
        .map(Json)
        .map_err(internal)
}

#[derive(serde::Deserialize)]
struct EarningsQuery {
    period: Option<String>,
}

async fn earnings(
    State(state): State<AppState>,
    Query(query): Query<EarningsQuery>,
) -> Result<Json<agents::validators_report::EarningsReport>, ApiError> {
    let period =
        agents::validators_report::Period::parse(query.period.as_deref().unwrap_or("week"))
            .map_err(|message| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("period: {message}"))
            })?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        agents::validators_report::earnings(&store, period, Utc::now())
    })
    .await
    .map_err(internal)?
    .map(Json)
    .map_err(internal)
}

async fn ranking(
    State(state): State<AppState>,
) -> Result<Json<Vec<agents::validators_report::RankingRow>>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || agents::validators_report::ranking(&store, Utc::now()))
        .await
        .map_err(internal)?
        .map(Json)
        .map_err(internal)
}

async fn validator(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<agents::validators_report::ValidatorDetail>, ApiError> {
    let store = state.store.clone();
    let lookup = name.clone();
    let detail = tokio::task::spawn_blocking(move || {
        agents::validators_report::detail(&store, &lookup, Utc::now())
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    detail.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no data for a validator named {name:?}; is it listed in [agents.validators]?"),
        )
    })
}

/// `POST /v1/commands`: one chat command or question, as the token's user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    pub text: String,
}

/// The structured answer plus its plain-text rendering.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommandResponse {
    #[serde(flatten)]
    pub answer: crate::commands::Answer,
    pub text: String,
}

/// A JSON request body, or 422 saying what is wrong with it.
pub(crate) fn json_body<T>(
    payload: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    payload
        .map(|Json(value)| value)
        .map_err(|rejection| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, rejection.body_text()))
}

async fn command(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    payload: Result<Json<CommandRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CommandResponse>, ApiError> {
    let request = json_body(payload)?;
    let context = crate::commands::Context::from_app(&state, (&user).into());
    let answer = crate::commands::respond(&request.text, &context).await;
    if matches!(
        answer.outcome,
        crate::commands::Outcome::Invalid | crate::commands::Outcome::Refused
    ) {
        // The reason, not the text: an oversize or hostile message stays out of the journal.
        let _ = state
            .auditor
            .record(
                &format!("user:{}", user.name),
                "command.refused",
                "commands",
                &serde_json::json!({
                    "outcome": answer.outcome,
                    "reason": answer.paragraphs.first(),
                    "bytes": request.text.len(),
                }),
            )
            .await;
    }
    let text = crate::commands::render::plain::render(&answer);
    Ok(Json(CommandResponse { answer, text }))
}

//! The gate's JSON API. Every request carries `Authorization: Bearer <token>`; the token's
//! SHA-256 maps it to a configured user, whose name and roles the policies see.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use policies::{Operation, Proposal, Proposer};
use serde::Deserialize;

use super::{GateError, Pause, ProposalRecord, ProposalState};
use crate::config::UserConfig;
use crate::http::{ApiError, AppState};

/// The user a request authenticated as.
pub struct Authenticated(pub UserConfig);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty());
        let reason = match token {
            None => "no bearer token",
            Some(token) => match state.gate.access().user_by_token(token) {
                Some(user) => return Ok(Authenticated(user.clone())),
                None => "unknown token",
            },
        };
        // The token itself is never recorded.
        let _ = state
            .auditor
            .record(
                "http",
                "auth.refused",
                parts.uri.path(),
                &serde_json::json!({ "reason": reason, "method": parts.method.as_str() }),
            )
            .await;
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "{reason}: send `Authorization: Bearer <token>` (see `command-center token new`)"
            ),
        ))
    }
}

pub(crate) fn gate_error(error: GateError) -> ApiError {
    let status = match &error {
        GateError::NotFound { .. } => StatusCode::NOT_FOUND,
        GateError::Duplicate { .. } | GateError::Conflict(_) => StatusCode::CONFLICT,
        GateError::UnknownUser { .. } | GateError::Forbidden(_) => StatusCode::FORBIDDEN,
        GateError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        GateError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, error.to_string())
}

use crate::http::json_body as body;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/proposals", get(list).post(propose))
        .route("/v1/proposals/{id}", get(show))
        .route("/v1/proposals/{id}/{action}", post(act))
        .route("/v1/dry-run", post(dry_run))
        .route("/v1/autonomy", get(autonomy))
        .route("/v1/autonomy/pause", post(pause))
        .route("/v1/autonomy/resume", post(resume))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<ProposalState>,
}

async fn list(
    State(state): State<AppState>,
    _user: Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<ProposalRecord>>, ApiError> {
    state.gate.list(query.state).map(Json).map_err(gate_error)
}

async fn show(
    State(state): State<AppState>,
    _user: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ProposalRecord>, ApiError> {
    match state.gate.get(&id).map_err(gate_error)? {
        Some(record) => Ok(Json(record)),
        None => Err(gate_error(GateError::NotFound { id })),
    }
}

/// `POST /v1/proposals`: a person proposes an operation; it passes the same gate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProposal {
    #[serde(default)]
    pub id: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

async fn propose(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<NewProposal>, JsonRejection>,
) -> Result<(StatusCode, Json<ProposalRecord>), ApiError> {
    let new = body(payload)?;
    let id = new.id.unwrap_or_else(|| {
        format!(
            "p-{}-{:06x}",
            Utc::now().format("%Y%m%d%H%M%S"),
            rand::random::<u32>() & 0xff_ffff
        )
    });
    let proposal = Proposal {
        id,
        proposer: Proposer::User {
            name: user.name.clone(),
            roles: user.roles.clone(),
        },
        operation: new.operation,
        rationale: new.rationale,
        evidence: new.evidence,
    };
    let record = state.gate.submit(proposal).await.map_err(gate_error)?;
    Ok((StatusCode::CREATED, Json(record)))
}

async fn dry_run(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<NewProposal>, JsonRejection>,
) -> Result<Json<crate::executors::ExecutionOutcome>, ApiError> {
    let new = body(payload)?;
    state
        .gate
        .dry_run(&user.name, &new.operation)
        .await
        .map(Json)
        .map_err(gate_error)
}

/// `POST /v1/proposals/{id}/approve|reject|cancel`, as the token's user.
async fn act(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<ProposalRecord>, ApiError> {
    let gate = &state.gate;
    let result = match action.as_str() {
        "approve" => gate.approve(&id, &user.name).await,
        "reject" => gate.reject(&id, &user.name).await,
        "cancel" => gate.cancel(&id, &user.name).await,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}; use approve, reject or cancel"),
            ));
        }
    };
    result.map(Json).map_err(gate_error)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub reason: String,
}

async fn autonomy(
    State(state): State<AppState>,
    _user: Authenticated,
) -> Result<Json<Vec<(String, Pause)>>, ApiError> {
    state.gate.pauses().map(Json).map_err(gate_error)
}

fn require_operator(user: &UserConfig) -> Result<(), ApiError> {
    if user.roles.iter().any(|role| role == "operator") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} needs the operator role to pause or resume autonomy",
                user.name
            ),
        ))
    }
}

async fn pause(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<PauseRequest>, JsonRejection>,
) -> Result<Json<Pause>, ApiError> {
    require_operator(&user)?;
    let request = body(payload)?;
    state
        .gate
        .pause(request.agent.as_deref(), &user.name, &request.reason)
        .await
        .map(Json)
        .map_err(gate_error)
}

async fn resume(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<PauseRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_operator(&user)?;
    let request = body(payload)?;
    state
        .gate
        .resume(request.agent.as_deref(), &user.name)
        .await
        .map_err(gate_error)?;
    Ok(Json(
        serde_json::json!({ "resumed": request.agent.unwrap_or_else(|| "all".to_owned()) }),
    ))
}

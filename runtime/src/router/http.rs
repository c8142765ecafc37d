//! The router's JSON API. Every request carries a user's bearer token (as the gate's API
//! does): silences and acknowledgements record who made them.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;

use super::{Ack, AlertEntry, AlertQuery, NewSilence, RouterError, Silence};
use crate::gate::http::Authenticated;
use crate::http::{ApiError, AppState};

fn router_error(error: RouterError) -> ApiError {
    let status = match &error {
        RouterError::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
        RouterError::NotFound(_) => StatusCode::NOT_FOUND,
        RouterError::Store(_) | RouterError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, error.to_string())
}

use crate::http::json_body as body;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(alerts))
        .route("/v1/alerts/{key}/ack", post(ack))
        .route("/v1/silences", get(silences).post(add_silence))
        .route("/v1/silences/{id}", delete(expire_silence))
        // Alertmanager's path, so Prometheus and friends can send here as they are.
        .route("/api/v2/alerts", post(receive_alerts))
}

/// `POST /api/v2/alerts`: Alertmanager's alert payload, from any known user (give Prometheus
/// a token of its own: `authorization: { credentials_file: ... }` in `alerting`).
async fn receive_alerts(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<Vec<super::ingest::PostableAlert>>, JsonRejection>,
) -> Result<Json<super::ingest::Received>, ApiError> {
    let posted = body(payload)?;
    let now = Utc::now();
    let sender = format!("api:{}", user.name);
    let alerts = super::ingest::convert(posted, &sender, now)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
    state
        .router
        .receive(alerts, &sender, now)
        .await
        .map(Json)
        .map_err(router_error)
}

async fn alerts(
    State(state): State<AppState>,
    _user: Authenticated,
    Query(query): Query<AlertQuery>,
) -> Result<Json<Vec<AlertEntry>>, ApiError> {
    state
        .router
        .query(&query, Utc::now())
        .await
        .map(Json)
        .map_err(router_error)
}

async fn silences(State(state): State<AppState>, _user: Authenticated) -> Json<Vec<Silence>> {
    Json(state.router.silences().await)
}

async fn add_silence(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    payload: Result<Json<NewSilence>, JsonRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let request = body(payload)?;
    state
        .router
        .add_silence(request, &user.name, Utc::now())
        .await
        .map(|silence| (StatusCode::CREATED, Json(silence)))
        .map_err(router_error)
}

async fn expire_silence(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Silence>, ApiError> {
    state
        .router
        .expire_silence(&id, &user.name, Utc::now())
        .await
        .map(Json)
        .map_err(router_error)
}

/// `POST /v1/alerts/{key}/ack` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default)]
    pub comment: String,
}

async fn ack(
    State(state): State<AppState>,
    Authenticated(user): Authenticated,
    Path(key): Path<String>,
    payload: Option<Json<AckRequest>>,
) -> Result<Json<Ack>, ApiError> {
    let comment = payload
        .map(|Json(request)| request.comment)
        .unwrap_or_default();
    state
        .router
        .ack(&key, &user.name, &comment, Utc::now())
        .await
        .map(Json)
        .map_err(router_error)
}

//! Daily briefings: once a day each domain agent's state is summed up for people.
//!
//! The facts come from the chat commands (`/validators`, `/earnings day`, `/market`, `/alerts`,
//! `/approvals`), so a briefing never disagrees with what a person can ask. With `[reasoner]`
//! on, the model writes the briefing from those facts (`prompts/briefing.md`, no tools, the
//! domain's own token budget); without it, or when the model fails, the facts themselves are
//! the briefing (the template). Either way it is remembered (kind `report`), journaled as
//! `briefing.sent` and sent to the `[briefings]` receivers through the router, so a run killed
//! before delivery sends it on the next start.
//!
//! What it must never do: let the model act (it gets no tools), or send the same day's
//! briefing twice (the last date sent is kept per domain).

use chrono::{DateTime, NaiveDate, Utc};
use memory::vector::{Kind, MemoryRecord, Trust};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::commands::{self, Caller, Command, Context};
use crate::config::BriefingsSection;
use crate::http::AppState;

/// The domains that write a briefing.
pub const DOMAINS: &[&str] = &["validators", "market"];
/// The actor of briefings in the journal, and the caller the facts are read as.
pub const ACTOR: &str = "briefing";
const LAST_SENT_PREFIX: &str = "briefing/last_sent/";

/// One written briefing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Briefing {
    pub domain: String,
    pub date: NaiveDate,
    pub title: String,
    pub text: String,
    /// `reasoner` or `template`.
    pub written_by: String,
    /// Why the template was used although a reasoner is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub model_calls: u32,
    pub tokens: u64,
    /// The memory record it was stored as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
}

/// The commands whose answers are a domain's facts.
fn fact_commands(domain: &str) -> Vec<Command> {
    match domain {
        "validators" => vec![
            Command::Validators,
            Command::Earnings {
                period: agents::validators_report::Period::Day,
            },
            Command::Alerts,
            Command::Approvals,
        ],
        _ => vec![Command::Market, Command::Alerts],
    }
}

/// The facts, as plain text.
pub async fn facts(app: &AppState, domain: &str) -> String {
    let context = Context::from_app(
        app,
        Caller {
            name: ACTOR.to_owned(),
            roles: Vec::new(),
        },
    );
    let mut parts = Vec::new();
    for command in fact_commands(domain) {
        let answer = commands::execute(&command, &context).await;
        parts.push(commands::render::plain::render(&answer));
    }
    parts.join("\n\n")
}

/// Writes `domain`'s briefing for the day of `now`.
pub async fn write(app: &AppState, domain: &str, now: DateTime<Utc>) -> Briefing {
    let date = now.date_naive();
    let title = format!("Daily briefing: {domain}, {date}");
    let facts = facts(app, domain).await;
    let mut briefing = Briefing {
        domain: domain.to_owned(),
        date,
        title,
        text: facts.clone(),
        written_by: "template".to_owned(),
        fallback_reason: None,
        model_calls: 0,
        tokens: 0,
        memory_id: None,
    };
    if let Some(conversation) = &app.conversation {
        match conversation.brief(app, domain, date, &facts).await {
            Ok(reply) if !reply.refused && !reply.text.trim().is_empty() => {
                briefing.text = reply.text;
                briefing.written_by = "reasoner".to_owned();
                briefing.model_calls = reply.model_calls;
                briefing.tokens = reply.prompt_tokens + reply.completion_tokens;
            }
            Ok(reply) => {
                briefing.model_calls = reply.model_calls;
                briefing.fallback_reason =
                    Some("the model gave no briefing (refused or empty)".to_owned());
            }
            Err(error) => briefing.fallback_reason = Some(error.to_string()),
        }
    }
    briefing
}

/// Writes, remembers, journals and sends `domain`'s briefing to `receivers`.
pub async fn send(
    app: &AppState,
    domain: &str,
    receivers: &[String],
    now: DateTime<Utc>,
) -> Result<Briefing, String> {
    let mut briefing = write(app, domain, now).await;
    if let Some(memory) = &app.memory {
        let record = MemoryRecord::new(
            format!("{}\n\n{}", briefing.title, briefing.text),
            domain,
            Kind::Report,
            now,
        )
        .with_trust(Trust::Internal);
        let id = record.id.clone();
        match memory.upsert(vec![record]).await {
            Ok(_) => briefing.memory_id = Some(id),
            Err(error) => tracing::warn!(%error, domain, "could not remember a briefing"),
        }
    }
    app.auditor
        .record(
            ACTOR,
            "briefing.sent",
            domain,
            &json!({
                "briefing": &briefing,
                "receivers": receivers,
            }),
        )
        .await
        .map_err(|error| format!("journal: {error}"))?;
    // Noted before delivery: a failed hand-over below is not a reason to write it again.
    if let Err(error) = app
        .store
        .state()
        .put(&last_sent_key(domain), &briefing.date)
    {
        tracing::error!(%error, domain, "could not note the briefing as sent");
    }
    for receiver in receivers {
        app.router
            .send_briefing(receiver, &briefing.title, &briefing.text, domain, now)
            .await
            .map_err(|error| format!("sending to {receiver}: {error}"))?;
    }
    Ok(briefing)
}

/// Sends each domain's briefing once a day at `[briefings] at`, until `stop`.
pub async fn run(app: AppState, section: BriefingsSection, mut stop: watch::Receiver<bool>) {
    let Ok(at) = section.time() else {
        return;
    };
    loop {
        let now = Utc::now();
        for domain in &section.domains {
            if !due(&app, domain, at, now) {
                continue;
            }
            match send(&app, domain, &section.receivers, now).await {
                Ok(briefing) => {
                    tracing::info!(domain, written_by = %briefing.written_by, "briefing sent");
                }
                Err(error) => {
                    tracing::error!(%error, domain, "briefing failed; retrying in a minute")
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}

fn last_sent_key(domain: &str) -> String {
    format!("{LAST_SENT_PREFIX}{domain}")
}

/// Whether `domain`'s briefing for today is due: the time has come and today's is not sent.
fn due(app: &AppState, domain: &str, at: chrono::NaiveTime, now: DateTime<Utc>) -> bool {
    if now.time() < at {
        return false;
    }
    match app.store.state().get::<NaiveDate>(&last_sent_key(domain)) {
        Ok(last) => last.is_none_or(|last| last < now.date_naive()),
        Err(error) => {
            tracing::error!(%error, domain, "cannot read when the last briefing went out");
            false
        }
    }
}

/// `POST /v1/briefings/{domain}` (loopback only): writes a briefing now and returns it;
/// `{"send": true}` also remembers, journals and sends it to the `[briefings]` receivers.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/briefings/{domain}", axum::routing::post(http::brief))
}

/// The body of `POST /v1/briefings/{domain}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BriefRequest {
    #[serde(default)]
    pub send: bool,
}

mod http {
    use std::net::SocketAddr;

    use axum::Json;
    use axum::extract::{ConnectInfo, Path, State};
    use axum::http::StatusCode;
    use chrono::Utc;

    use super::{BriefRequest, Briefing, DOMAINS};
    use crate::http::{ApiError, AppState, loopback_only};

    pub async fn brief(
        State(state): State<AppState>,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        Path(domain): Path<String>,
        body: Option<Json<BriefRequest>>,
    ) -> Result<Json<Briefing>, ApiError> {
        loopback_only(peer)?;
        if !DOMAINS.contains(&domain.as_str()) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no domain agent {domain:?}; known: {}", DOMAINS.join(", ")),
            ));
        }
        let request = body.map(|Json(request)| request).unwrap_or_default();
        if !request.send {
            return Ok(Json(super::write(&state, &domain, Utc::now()).await));
        }
        if state.briefings.receivers.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no receivers: set [briefings] receivers in the configuration",
            ));
        }
        super::send(&state, &domain, &state.briefings.receivers, Utc::now())
            .await
            .map(Json)
            .map_err(|message| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message))
    }
}

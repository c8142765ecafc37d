//! The conversation agent: free questions from chat, the console, the CLI and the API answered
//! by the reasoner over the read-only tools (and `propose_action`, which asks the gate), with a
//! short history per person. With no `[reasoner]`, or when the model fails or the day's token
//! budget is spent, the command layer answers without it.

use std::path::Path;

use agents::reasoner::{Question, Reasoner, ReasonerError, Reply, Turn};
use chrono::Utc;
use serde_json::json;

use super::{AssistantContext, registry};
use crate::commands::Caller;
use crate::config::ReasonerSection;
use crate::http::AppState;

/// Turns kept per person (question and answer each count one).
const HISTORY_TURNS: usize = 6;
const HISTORY_PREFIX: &str = "conversation/history/";

/// The running conversation agent.
pub struct Conversation {
    reasoner: Reasoner,
    prompt: agents::prompts::Prompt,
    briefing_prompt: agents::prompts::Prompt,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("reasoner", &self.reasoner)
            .finish_non_exhaustive()
    }
}

/// The memory records an answer rests on: every hit of its `memory_search` calls, once each,
/// in call order (`citation`, `kind`, `domain`, `fetched_at`, `source_url`).
pub fn memory_citations(reply: &Reply) -> Vec<serde_json::Value> {
    let mut seen = std::collections::BTreeSet::new();
    let mut cited = Vec::new();
    for tool in reply
        .tools
        .iter()
        .filter(|tool| tool.name == "memory_search")
    {
        let Some(hits) = tool.result["hits"].as_array() else {
            continue;
        };
        for hit in hits {
            let Some(citation) = hit["citation"].as_str() else {
                continue;
            };
            if seen.insert(citation.to_owned()) {
                cited.push(json!({
                    "citation": citation,
                    "kind": hit["kind"],
                    "domain": hit["domain"],
                    "fetched_at": hit["fetched_at"],
                    "source_url": hit["source_url"],
                }));
            }
        }
    }
    cited
}

fn read_prompt(prompts_dir: &Path, file: &str) -> Result<agents::prompts::Prompt, String> {
    let path = prompts_dir.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
    agents::prompts::parse(&path, &text).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

impl Conversation {
    /// Builds it from `[reasoner]` and `prompts/conversation.md`; `None` when the section is off.
    pub fn start(
        section: &ReasonerSection,
        prompts_dir: &Path,
        store: memory::Store,
    ) -> Result<Option<Self>, String> {
        if !section.enabled {
            return Ok(None);
        }
        let prompt = read_prompt(prompts_dir, "conversation.md")?;
        let briefing_prompt = read_prompt(prompts_dir, "briefing.md")?;
        let reasoner = Reasoner::new(section.settings(), store)
            .map_err(|error| format!("reasoner: {error}"))?;
        Ok(Some(Self {
            reasoner,
            prompt,
            briefing_prompt,
        }))
    }

    /// Writes `domain`'s daily briefing from `facts` (the chat commands' answers), with no
    /// tools, on the domain's own token budget.
    pub async fn brief(
        &self,
        app: &AppState,
        domain: &str,
        date: chrono::NaiveDate,
        facts: &str,
    ) -> Result<Reply, ReasonerError> {
        let date = date.to_string();
        let system = self
            .briefing_prompt
            .render(&[("domain", domain), ("date", &date)])
            .map_err(ReasonerError::InvalidRequest)?;
        let question = Question {
            agent: domain.to_owned(),
            system,
            history: Vec::new(),
            text: facts.to_owned(),
            source: format!("facts:{domain}"),
        };
        let outcome = self
            .reasoner
            .answer(&question, &::tools::llm::ToolRegistry::new())
            .await;
        self.watch_budget(app, domain, &outcome).await;
        outcome
    }

    /// Fires `reasoner.budget_exceeded/<agent>` when an agent's daily token budget is spent
    /// (it answers without the model until midnight UTC), and resolves it at its next answer.
    /// The router keeps the alert's state across restarts: a repeated firing only refreshes
    /// it, and a resolution of an alert that is not firing is ignored.
    async fn watch_budget(
        &self,
        app: &AppState,
        agent: &str,
        outcome: &Result<Reply, ReasonerError>,
    ) {
        let (status, summary, evidence) = match outcome {
            Err(error @ ReasonerError::BudgetExceeded { used, budget, .. }) => (
                agents::AlertStatus::Firing,
                format!(
                    "{agent}: the language model budget for today is spent; answering without it"
                ),
                json!({ "used": used, "budget": budget, "message": error.to_string() }),
            ),
            Ok(_) => (
                agents::AlertStatus::Resolved,
                format!("{agent}: the language model answers again"),
                json!({}),
            ),
            Err(_) => return,
        };
        let now = Utc::now();
        let alert = agents::Alert {
            key: format!("reasoner.budget_exceeded/{agent}"),
            rule: "budget_exceeded".to_owned(),
            status,
            severity: agents::Severity::Warning,
            summary,
            labels: [
                ("domain".to_owned(), "operations".to_owned()),
                ("agent".to_owned(), agent.to_owned()),
            ]
            .into_iter()
            .collect(),
            evidence,
            starts_at: now,
            at: now,
            observed_at: now,
        };
        if let Err(error) = app.router.receive(vec![alert], "reasoner", now).await {
            tracing::error!(%error, agent, "could not raise the token budget alert");
        }
    }

    /// Answers `text` for `caller`, remembering the exchange.
    pub async fn answer(
        &self,
        app: &AppState,
        caller: &Caller,
        text: &str,
    ) -> Result<Reply, ReasonerError> {
        let source = format!("user:{}", caller.name);
        let roles = if caller.roles.is_empty() {
            "none".to_owned()
        } else {
            caller.roles.join(", ")
        };
        let now = Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
        let system = self
            .prompt
            .render(&[("user", &caller.name), ("roles", &roles), ("now", &now)])
            .map_err(ReasonerError::InvalidRequest)?;
        let key = format!("{HISTORY_PREFIX}{}", caller.name);
        let history: Vec<Turn> = app.store.state().get(&key)?.unwrap_or_default();
        let question = Question {
            agent: "conversation".to_owned(),
            system,
            history: history.clone(),
            text: text.to_owned(),
            source: source.clone(),
        };
        let tools = registry(&AssistantContext::from_app(app, caller.clone(), source));
        let outcome = self.reasoner.answer(&question, &tools).await;
        self.watch_budget(app, "conversation", &outcome).await;
        let record = match &outcome {
            Ok(reply) => json!({
                "user": caller.name,
                "question": text,
                "answer": reply.text,
                "refused": reply.refused,
                "tools": reply.citations(),
                "memory": memory_citations(reply),
                "model_calls": reply.model_calls,
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
            }),
            Err(error) => {
                json!({ "user": caller.name, "question": text, "error": error.to_string() })
            }
        };
        let kind = if outcome.is_ok() {
            "conversation.answered"
        } else {
            "conversation.failed"
        };
        if let Err(error) = app
            .auditor
            .record("conversation", kind, &caller.name, &record)
            .await
        {
            tracing::error!(%error, "could not journal a conversation");
        }
        if let Ok(reply) = &outcome {
            let mut history = history;
            history.push(Turn {
                role: "user".to_owned(),
                text: text.to_owned(),
            });
            history.push(Turn {
                role: "assistant".to_owned(),
                text: reply.text.clone(),
            });
            let keep = history.len().saturating_sub(HISTORY_TURNS);
            history.drain(..keep);
            app.store.state().put(&key, &history)?;
        }
        outcome
    }
}

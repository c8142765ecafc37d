//! One command layer for Telegram, Slack, the CLI (`command-center ask`) and the API
//! (`POST /v1/commands`): a text parses once into a [`Command`], [`execute`] returns a
//! structured [`Answer`], and each channel renders it ([`render::plain`],
//! [`render::telegram`], [`render::slack`]).
//!
//! Commands read through the same functions as the CLI and the HTTP API
//! (`agents::validators_report`, the gatekeeper, the health registry), so a chat answer and
//! `GET /v1/...` never disagree. Commands that change state (`/pause`, `/resume`) check the
//! caller's roles the way the gate's HTTP API does.

use std::sync::Arc;

use agents::health::HealthRegistry;
use agents::validators_report::Period;
use memory::Store;
use serde::{Deserialize, Serialize};

use crate::config::UserConfig;
use crate::gate::Gatekeeper;
use crate::http::AppState;

mod answer;
mod execute;
mod parse;
pub mod render;

pub use answer::{Action, ActionStyle, AlertLine, Answer, Fact, Outcome, Table};
pub use execute::{MarketQuote, OPERATOR_ROLE, execute, market_quotes};
pub use parse::{
    DEFAULT_AUDIT_ENTRIES, ExpenseRequest, IncomeRequest, MAX_AUDIT_ENTRIES, MAX_INPUT_BYTES,
    ParseError, parse,
};

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Start,
    Help,
    Status,
    Validators,
    Validator {
        name: String,
    },
    Earnings {
        period: Period,
    },
    Ranking,
    Finance,
    /// `/expense AMOUNT CURRENCY CATEGORY[/SUB] COUNTERPARTY[: DESCRIPTION]`: a proposal.
    Expense(ExpenseRequest),
    /// `/income AMOUNT CURRENCY STREAM PAYER[: DESCRIPTION]`: a manual ledger entry.
    Income(IncomeRequest),
    Market,
    Alerts,
    /// Parsed so the words are known; the alert router will act on them.
    Silence {
        arguments: String,
    },
    Ack {
        arguments: String,
    },
    Approvals,
    Audit {
        limit: usize,
    },
    /// `agent` None pauses everything.
    Pause {
        agent: Option<String>,
        reason: String,
    },
    Resume {
        agent: Option<String>,
    },
    /// Free text: a question for the conversation agent.
    Ask(String),
}

/// One command as `/help` lists it and as chat apps register it (Telegram setMyCommands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub description: &'static str,
    /// Words a question may use for it, for the answer to free text.
    pub keywords: &'static [&'static str],
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "start",
        usage: "/start",
        description: "Greeting and the command list",
        keywords: &["hello", "hi", "begin"],
    },
    CommandSpec {
        name: "help",
        usage: "/help",
        description: "The command list",
        keywords: &["commands", "usage", "command"],
    },
    CommandSpec {
        name: "status",
        usage: "/status",
        description: "How the daemon is: agents, sources, alerts, journal",
        keywords: &[
            "health", "daemon", "running", "up", "uptime", "agents", "sources",
        ],
    },
    CommandSpec {
        name: "validators",
        usage: "/validators",
        description: "Every validator: balance, set, sync, disk, alerts",
        keywords: &[
            "validator",
            "nodes",
            "node",
            "balance",
            "sync",
            "disk",
            "lag",
            "set",
        ],
    },
    CommandSpec {
        name: "validator",
        usage: "/validator NAME",
        description: "One validator in detail",
        keywords: &["validator", "node", "detail", "balance", "stake"],
    },
    CommandSpec {
        name: "earnings",
        usage: "/earnings [day|week|month]",
        description: "Validator rewards by period, TON and USD",
        keywords: &[
            "earn", "earned", "rewards", "reward", "income", "apy", "profit", "money", "week",
            "month",
        ],
    },
    CommandSpec {
        name: "ranking",
        usage: "/ranking",
        description: "Our validators in the network ranking",
        keywords: &["rank", "position", "weight", "share", "network"],
    },
    CommandSpec {
        name: "finance",
        usage: "/finance",
        description: "Cash, runway, this month's income and costs, expenses awaiting approval",
        keywords: &[
            "treasury", "wallet", "wallets", "funds", "cash", "money", "budget",
        ],
    },
    CommandSpec {
        name: "expense",
        usage: "/expense AMOUNT CURRENCY CATEGORY[/SUB] COUNTERPARTY[: DESCRIPTION]",
        description: "Submit an expense; the policies route it for approval, then it is booked",
        keywords: &["expense", "spend", "pay", "invoice", "bill", "purchase"],
    },
    CommandSpec {
        name: "income",
        usage: "/income AMOUNT CURRENCY STREAM PAYER[: DESCRIPTION]",
        description: "Book income by hand (a payment the imports and the chain do not see)",
        keywords: &["income", "revenue", "received", "earned", "sale", "paid"],
    },
    CommandSpec {
        name: "market",
        usage: "/market",
        description: "Latest prices: TON, BTC, ETH",
        keywords: &[
            "price", "prices", "ton", "btc", "eth", "bitcoin", "ethereum", "usd", "coin",
        ],
    },
    CommandSpec {
        name: "alerts",
        usage: "/alerts",
        description: "Alerts firing now",
        keywords: &[
            "alert", "firing", "problem", "problems", "wrong", "incident", "down",
        ],
    },
    CommandSpec {
        name: "silence",
        usage: "/silence MATCHERS DURATION COMMENT",
        description: "Silence matching alerts for a while",
        keywords: &["mute", "quiet", "maintenance"],
    },
    CommandSpec {
        name: "ack",
        usage: "/ack ALERT [COMMENT]",
        description: "Acknowledge an alert: no more repeats",
        keywords: &["acknowledge", "seen"],
    },
    CommandSpec {
        name: "approvals",
        usage: "/approvals",
        description: "Proposals waiting for approval",
        keywords: &[
            "approve",
            "approval",
            "pending",
            "proposal",
            "proposals",
            "reject",
            "waiting",
        ],
    },
    CommandSpec {
        name: "audit",
        usage: "/audit [N]",
        description: "The last N audit log entries (default 10)",
        keywords: &["log", "journal", "history", "happened", "who", "changes"],
    },
    CommandSpec {
        name: "pause",
        usage: "/pause [all|AGENT] [reason]",
        description: "Stop autonomous actions (operators)",
        keywords: &["stop", "halt", "kill", "switch", "autonomy"],
    },
    CommandSpec {
        name: "resume",
        usage: "/resume [all|AGENT]",
        description: "Resume autonomous actions (operators)",
        keywords: &["continue", "restart", "unpause", "autonomy"],
    },
];

/// Who is asking: the user a token, a Telegram id or a Slack id maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }
}

impl From<&UserConfig> for Caller {
    fn from(user: &UserConfig) -> Self {
        Self {
            name: user.name.clone(),
            roles: user.roles.clone(),
        }
    }
}

/// What [`execute`] reads and acts through.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    /// `[finance]`: the categories `/expense` accepts and the currency `/finance` reports in.
    pub finance: Arc<agents::finance::FinanceConfig>,
    pub gate: Arc<Gatekeeper>,
    pub health: HealthRegistry,
    pub caller: Caller,
    /// The daemon's whole state when running inside it: `/status` then answers exactly what
    /// `GET /v1/status` returns. Without it `/status` reads the health registry, the firing
    /// alerts and the gate directly.
    pub app: Option<AppState>,
}

impl Context {
    pub fn from_app(state: &AppState, caller: Caller) -> Self {
        Self {
            store: state.store.clone(),
            finance: Arc::clone(&state.finance),
            gate: state.gate.clone(),
            health: state.health.clone(),
            caller,
            app: Some(state.clone()),
        }
    }
}

/// Parses and executes one message; a parse error is an [`Outcome::Invalid`] answer that says
/// what to send instead.
pub async fn respond(text: &str, context: &Context) -> Answer {
    match parse(text) {
        Ok(command) => execute(&command, context).await,
        Err(error) => Answer::with_outcome(Outcome::Invalid, "Not understood", error.to_string()),
    }
}

#[cfg(test)]
mod tests;

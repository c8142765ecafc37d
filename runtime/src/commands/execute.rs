//! [`execute`]: a command's answer, read through the same functions the CLI and the API use.

use agents::alert::{ACTIVE_PREFIX, ActiveAlert};
use agents::validators_report::{self, Period, ValidatorSummary};
use chrono::{DateTime, Duration, Utc};
use memory::JournalQuery;

use super::{Action, ActionStyle, AlertLine, Answer, COMMANDS, Command, Context, Outcome, Table};
use crate::gate::ProposalState;

/// The role the gate's HTTP API asks of whoever pauses or resumes autonomy.
pub const OPERATOR_ROLE: &str = "operator";

/// Proposals `/approvals` lists with buttons; more are counted, not shown.
const MAX_APPROVALS_SHOWN: usize = 10;

fn or_dash<T>(value: Option<T>, format: impl Fn(T) -> String) -> String {
    value.map(format).unwrap_or_else(|| "-".to_owned())
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn failed(what: &str, error: impl std::fmt::Display) -> Answer {
    tracing::warn!(%error, command = what, "command failed");
    Answer::with_outcome(
        Outcome::Failed,
        format!("Cannot read {what}"),
        format!("reading {what} failed: {error}; the daemon's log has details, try again"),
    )
}

fn alert_line(alert: &agents::Alert) -> AlertLine {
    AlertLine {
        key: alert.key.clone(),
        severity: alert.severity.to_string(),
        summary: alert.summary.clone(),
        since: alert.starts_at,
    }
}

/// Runs one command as `context.caller`.
pub async fn execute(command: &Command, context: &Context) -> Answer {
    let now = Utc::now();
    match command {
        Command::Start => help(Answer::new("Command Center").paragraph(format!(
            "Hello {}. I watch the validators, the market and the approvals. Send a command, \
             or ask a question in plain words.",
            context.caller.name
        ))),
        Command::Help => help(
            Answer::new("Commands").paragraph("Send a command, or ask a question in plain words."),
        ),
        Command::Status => status(context, now),
        Command::Validators => validators(context, now),
        Command::Validator { name } => validator(context, name, now),
        Command::Earnings { period } => earnings(context, *period, now),
        Command::Ranking => ranking(context, now),
        Command::Finance => finance(context, now),
        Command::Expense(request) => expense(context, request).await,
        Command::Income(request) => income(context, request, now),
        Command::Market => market(context, now),
        Command::Alerts => alerts(context),
        Command::Silence { arguments } => silence(context, arguments, now).await,
        Command::Ack { arguments } => ack(context, arguments, now).await,
        Command::Approvals => approvals(context),
        Command::Audit { limit } => audit(context, *limit),
        Command::Pause { agent, reason } => pause(context, agent.as_deref(), reason).await,
        Command::Resume { agent } => resume(context, agent.as_deref()).await,
        Command::Ask(text) => converse(context, text).await,
    }
}

fn help(answer: Answer) -> Answer {
    let mut table = Table::new(["COMMAND", "WHAT IT DOES"]);
    for spec in COMMANDS {
        table.row([spec.usage, spec.description]);
    }
    answer.table(table)
}

/// A free question: the conversation agent when the language model is on, else (or when it
/// fails) the matching commands and journal entries.
async fn converse(context: &Context, text: &str) -> Answer {
    let Some((app, conversation)) = context.app.as_ref().and_then(|app| {
        app.conversation
            .as_ref()
            .map(|conversation| (app, conversation))
    }) else {
        return ask(context, text);
    };
    match conversation.answer(app, &context.caller, text).await {
        Ok(reply) => {
            let mut answer = Answer::new("Answer").paragraph(reply.text.clone());
            if !reply.tools.is_empty() {
                let mut sources = Table::new(["SOURCE", "ARGUMENTS"]);
                sources.title = Some("From".to_owned());
                for tool in &reply.tools {
                    sources.row([tool.name.clone(), tool.arguments.clone()]);
                }
                answer = answer.table(sources);
            }
            let cited = crate::assistant::conversation::memory_citations(&reply);
            if !cited.is_empty() {
                let mut records = Table::new(["RECORD", "KIND", "DOMAIN", "DATE", "SOURCE"]);
                records.title = Some("Remembered".to_owned());
                for record in &cited {
                    let field = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
                    records.row([
                        field("citation"),
                        field("kind"),
                        field("domain"),
                        field("fetched_at").get(..10).unwrap_or_default().to_owned(),
                        field("source_url"),
                    ]);
                }
                answer = answer.table(records);
            }
            answer
        }
        Err(error) => {
            tracing::warn!(%error, "the conversation agent could not answer; answering without it");
            let mut answer = ask(context, text);
            answer.title = "Answered without the language model".to_owned();
            // In place of "no language model is configured".
            if let Some(first) = answer.paragraphs.first_mut() {
                *first = format!("The language model could not answer: {error}.");
            }
            answer
        }
    }
}

/// Words too common to say what a question is about.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "what", "when", "where", "which", "who", "why",
    "how", "did", "does", "with", "this", "that", "from", "have", "has", "had", "our", "any",
    "about", "there", "their", "much", "many", "can", "you", "your", "today", "now", "all", "not",
    "but", "its", "been", "will", "would", "should", "could", "into", "than", "then", "last",
    "show", "tell", "give", "please", "some", "get",
];

/// Journal entries looked through for a question (newest first).
const MEMORY_SCAN: usize = 5000;

/// What an entry says, in a line: its summary, comment, rationale or text, else its subject.
fn entry_line(entry: &memory::JournalEntry) -> String {
    ["summary", "comment", "rationale", "text", "error", "reason"]
        .iter()
        .find_map(|field| entry.body.get(*field).and_then(|value| value.as_str()))
        .map_or_else(|| entry.subject.clone(), str::to_owned)
}

/// The journal entries that share the most of the question's words (at least one), best
/// first, newest first among equals.
fn memory_matches(
    context: &Context,
    words: &[String],
) -> Result<Vec<memory::JournalEntry>, memory::StoreError> {
    let words: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|word| word.chars().count() >= 3 && !STOPWORDS.contains(word))
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let entries = context.store.journal().query(&JournalQuery {
        newest_first: true,
        limit: Some(MEMORY_SCAN),
        ..JournalQuery::default()
    })?;
    let mut scored: Vec<(usize, memory::JournalEntry)> = entries
        .into_iter()
        // What happened, not its plumbing: chat traffic would find the question itself,
        // deliveries and raw observations repeat what the alerts already say.
        .filter(|entry| {
            ![
                "chat.",
                "notification.",
                "router.",
                "daemon.",
                "policy.",
                "observation.",
            ]
            .iter()
            .any(|prefix| entry.kind.starts_with(prefix))
        })
        .filter_map(|entry| {
            let haystack =
                format!("{} {} {}", entry.kind, entry.subject, entry.body).to_lowercase();
            let score = words.iter().filter(|word| haystack.contains(*word)).count();
            (score > 0).then_some((score, entry))
        })
        .collect();
    // Stable: among equal scores the newest stays first.
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let mut seen = std::collections::BTreeSet::new();
    Ok(scored
        .into_iter()
        .map(|(_, entry)| entry)
        // One line per thing remembered: the newest entry about each subject and kind.
        .filter(|entry| seen.insert((entry.kind.clone(), entry.subject.clone())))
        .take(3)
        .collect())
}

fn ask(context: &Context, text: &str) -> Answer {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() >= 2)
        .map(str::to_lowercase)
        .collect();
    let mut scored: Vec<(usize, &super::CommandSpec)> = COMMANDS
        .iter()
        .map(|spec| {
            let score = words
                .iter()
                .filter(|word| {
                    word.as_str() == spec.name
                        || (word.len() >= 4 && spec.name.starts_with(word.as_str()))
                        || spec.keywords.contains(&word.as_str())
                })
                .count();
            (score, spec)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let mut answer = Answer::new("No conversation agent configured").paragraph(
        "No language model is configured, so I cannot answer questions in plain words yet.",
    );
    let mut table = Table::new(["COMMAND", "WHAT IT DOES"]);
    if scored.is_empty() {
        answer = answer.paragraph("None of the commands matches your words; these are all:");
        for spec in COMMANDS {
            table.row([spec.usage, spec.description]);
        }
    } else {
        answer = answer.paragraph("These commands may answer it:");
        for (_, spec) in scored.iter().take(5) {
            table.row([spec.usage, spec.description]);
        }
    }
    answer = answer.table(table);
    match memory_matches(context, &words) {
        Ok(matches) if !matches.is_empty() => {
            let mut remembered = Table::new(["WHEN", "WHAT", "ABOUT", "SEQ"]);
            remembered.title = Some(
                "What I remember that matches your words (command-center audit show SEQ)"
                    .to_owned(),
            );
            for entry in &matches {
                remembered.row([
                    time(entry.at),
                    entry.kind.clone(),
                    entry_line(entry),
                    entry.seq.to_string(),
                ]);
            }
            answer.table(remembered)
        }
        Ok(_) => answer,
        Err(error) => {
            tracing::warn!(%error, "reading the journal for a question failed");
            answer.paragraph("(The journal could not be searched just now.)")
        }
    }
}

fn status(context: &Context, now: DateTime<Utc>) -> Answer {
    let mut answer = Answer::new("Status");
    let (actors, sources, firing, entries, pending, paused) = match &context.app {
        Some(app) => match crate::http::status_report(app) {
            Ok(report) => {
                answer = answer
                    .fact("Version", report.version.clone())
                    .fact(
                        "Uptime",
                        humantime::format_duration(std::time::Duration::from_secs(
                            report.uptime_seconds.max(0).unsigned_abs(),
                        ))
                        .to_string(),
                    )
                    .fact("Ready", if report.ready { "yes" } else { "NO" })
                    .fact("Mode", if report.demo { "demo" } else { "live" })
                    .fact("Policies", format!("{} loaded", report.policies.policies));
                (
                    report.actors,
                    report.sources,
                    report.firing_alerts,
                    report.journal.entries,
                    report.pending_approvals,
                    report.paused,
                )
            }
            Err(error) => return failed("the status", error),
        },
        None => {
            let snapshot = context.health.snapshot();
            let firing = match context
                .store
                .state()
                .scan_prefix::<ActiveAlert>(ACTIVE_PREFIX)
            {
                Ok(active) => active.into_iter().map(|(_, active)| active.alert).collect(),
                Err(error) => return failed("the firing alerts", error),
            };
            let pending = match context.gate.list(Some(ProposalState::Pending)) {
                Ok(pending) => pending.len(),
                Err(error) => return failed("the approvals", error),
            };
            let paused = match context.gate.pauses() {
                Ok(paused) => paused,
                Err(error) => return failed("the pauses", error),
            };
            (
                snapshot.actors,
                snapshot.sources,
                firing,
                context.store.journal().len(),
                pending,
                paused,
            )
        }
    };
    answer = answer
        .fact("Firing alerts", firing.len().to_string())
        .fact("Pending approvals", pending.to_string())
        .fact("Journal entries", entries.to_string())
        .fact(
            "Autonomy",
            if paused.is_empty() {
                "running".to_owned()
            } else {
                paused
                    .iter()
                    .map(|(scope, pause)| format!("{scope} paused by {}", pause.by))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
    let mut table = Table::new(["COMPONENT", "STATE", "FAILS", "LAST OK"]);
    for component in actors.iter().chain(sources.iter()) {
        table.row([
            component.name.clone(),
            component.state.to_string(),
            component.consecutive_failures.to_string(),
            or_dash(component.last_success, |at| {
                let age = now - at;
                if age < Duration::minutes(1) {
                    format!("{}s ago", age.num_seconds().max(0))
                } else if age < Duration::hours(1) {
                    format!("{}m ago", age.num_minutes())
                } else {
                    format!("{}h ago", age.num_hours())
                }
            }),
        ]);
    }
    if !table.rows.is_empty() {
        answer = answer.table(table);
    }
    answer.alerts = firing.iter().map(alert_line).collect();
    answer
}

fn validators(context: &Context, now: DateTime<Utc>) -> Answer {
    let summaries = match validators_report::summaries(&context.store, now) {
        Ok(summaries) => summaries,
        Err(error) => return failed("the validators", error),
    };
    if summaries.is_empty() {
        return Answer::new("Validators").paragraph(
            "No validator data yet: list validators under [agents.validators] and wait for the \
             first round of checks.",
        );
    }
    let mut table = Table::new([
        "NAME", "TON", "SET", "LAG", "DISK", "24H", "RANK", "EFFIC", "ALERTS",
    ]);
    for summary in &summaries {
        table.row(validator_row(summary));
    }
    let in_set = summaries
        .iter()
        .filter(|summary| summary.in_current_set == Some(true))
        .count();
    let mut answer = Answer::new("Validators")
        .fact("Total", summaries.len().to_string())
        .fact(
            "In the current set",
            format!("{in_set} of {}", summaries.len()),
        )
        .table(table);
    answer.alerts = summaries
        .iter()
        .flat_map(|summary| {
            summary.firing.iter().map(|brief| AlertLine {
                key: brief.key.clone(),
                severity: brief.severity.clone(),
                // Most summaries already name their validator.
                summary: if brief.summary.contains(&summary.name) {
                    brief.summary.clone()
                } else {
                    format!("{}: {}", summary.name, brief.summary)
                },
                since: brief.since,
            })
        })
        .collect();
    answer
}

fn validator_row(summary: &ValidatorSummary) -> Vec<String> {
    vec![
        summary.name.clone(),
        or_dash(summary.balance_ton, |sample| format!("{:.2}", sample.value)),
        match summary.in_current_set {
            Some(true) => "yes".to_owned(),
            Some(false) => "NO".to_owned(),
            None => "-".to_owned(),
        },
        or_dash(summary.sync_lag_seconds, |lag| format!("{lag:.0}s")),
        or_dash(
            summary.disk_used_percent.values().copied().reduce(f64::max),
            |used| format!("{used:.0}%"),
        ),
        or_dash(summary.balance_change_24h_ton, |change| {
            format!("{change:+.2}")
        }),
        match (summary.rank, summary.set_size) {
            (Some(rank), Some(size)) => format!("{rank}/{size}"),
            _ => "-".to_owned(),
        },
        or_dash(summary.efficiency_percent, |value| format!("{value:.1}%")),
        summary.firing.len().to_string(),
    ]
}

fn validator(context: &Context, name: &str, now: DateTime<Utc>) -> Answer {
    let detail = match validators_report::detail(&context.store, name, now) {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            let known = validators_report::names(&context.store).unwrap_or_default();
            return Answer::with_outcome(
                Outcome::NotFound,
                format!("No validator {name}"),
                if known.is_empty() {
                    format!("No data for a validator named {name}: no validator has data yet.")
                } else {
                    format!(
                        "No data for a validator named {name}; the validators are: {}",
                        known.join(", ")
                    )
                },
            );
        }
        Err(error) => return failed("the validator", error),
    };
    let summary = &detail.summary;
    let mut answer = Answer::new(format!("Validator {}", summary.name))
        .fact(
            "Balance",
            or_dash(summary.balance_ton, |sample| {
                format!("{:.2} TON at {}", sample.value, time(sample.at))
            }),
        )
        .fact(
            "24h change",
            or_dash(summary.balance_change_24h_ton, |change| {
                format!("{change:+.2} TON")
            }),
        )
        .fact(
            "Current set",
            match summary.in_current_set {
                Some(true) => "in the set".to_owned(),
                Some(false) => "NOT in the set".to_owned(),
                None => "-".to_owned(),
            },
        );
    let mut optional = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            answer.facts.push(super::Fact {
                label: label.to_owned(),
                value,
            });
        }
    };
    optional(
        "Next round",
        summary
            .in_next_set
            .map(|elected| if elected { "elected" } else { "NOT elected" }.to_owned()),
    );
    optional(
        "Rank",
        summary
            .rank
            .zip(summary.set_size)
            .map(|(rank, size)| format!("{rank} of {size}")),
    );
    optional(
        "Network share",
        summary.share_percent.map(|share| format!("{share:.3}%")),
    );
    optional(
        "Stake",
        summary.stake_ton.map(|stake| format!("{stake:.2} TON")),
    );
    optional(
        "Efficiency",
        summary
            .efficiency_percent
            .map(|value| format!("{value:.1}%")),
    );
    optional(
        "Sync lag",
        summary.sync_lag_seconds.map(|lag| format!("{lag:.0} s")),
    );
    for (mountpoint, used) in &summary.disk_used_percent {
        let growth = summary
            .disk_growth_percent_per_day
            .get(mountpoint)
            .map(|growth| format!(", {growth:+.2} points/day"))
            .unwrap_or_default();
        optional(
            &format!("Disk {mountpoint}"),
            Some(format!("{used:.1}% used{growth}")),
        );
    }
    optional(
        "Memory available",
        summary.memory_available_percent.map(|m| format!("{m:.1}%")),
    );
    optional(
        "CPU busy",
        summary.cpu_busy_percent.map(|c| format!("{c:.1}%")),
    );
    let mut history = Table::new(["HOUR", "BALANCE TON"]).titled("Balance, last 12 hours");
    for sample in detail.balance_hourly.iter().rev().take(12).rev() {
        history.row([
            sample.at.format("%m-%d %H:00").to_string(),
            format!("{:.2}", sample.value),
        ]);
    }
    if !history.rows.is_empty() {
        answer = answer.table(history);
    }
    answer.alerts = summary
        .firing
        .iter()
        .map(|brief| AlertLine {
            key: brief.key.clone(),
            severity: brief.severity.clone(),
            summary: brief.summary.clone(),
            since: brief.since,
        })
        .collect();
    answer
}

fn earnings(context: &Context, period: Period, now: DateTime<Utc>) -> Answer {
    let report = match validators_report::earnings(&context.store, period, now) {
        Ok(report) => report,
        Err(error) => return failed("the earnings", error),
    };
    let mut table = Table::new(["NAME", "TON", "USD", "TREND", "APY", "ROUNDS"]);
    for row in report
        .validators
        .iter()
        .chain(std::iter::once(&report.total))
    {
        table.row([
            row.name.clone(),
            format!("{:.2}", row.reward_ton),
            or_dash(row.reward_usd, |usd| format!("{usd:.0}")),
            or_dash(row.trend_percent, |trend| format!("{trend:+.0}%")),
            or_dash(row.apy_percent, |apy| format!("{apy:.1}%")),
            row.rounds.to_string(),
        ]);
    }
    Answer::new(format!("Earnings, last {}", period.as_str()))
        .fact("From", time(report.from))
        .fact("To", time(report.to))
        .fact("Total", format!("{:.2} TON", report.total.reward_ton))
        .fact(
            "Total USD",
            or_dash(report.total.reward_usd, |usd| format!("{usd:.2} USD")),
        )
        .table(table)
}

fn ranking(context: &Context, now: DateTime<Utc>) -> Answer {
    let rows = match validators_report::ranking(&context.store, now) {
        Ok(rows) => rows,
        Err(error) => return failed("the ranking", error),
    };
    if rows.is_empty() {
        return Answer::new("Ranking").paragraph("No validator data yet.");
    }
    let mut table = Table::new(["NAME", "RANK", "PREV", "SHARE", "STAKE TON"]);
    for row in &rows {
        table.row([
            row.name.clone(),
            match (row.rank, row.set_size) {
                (Some(rank), Some(size)) => format!("{rank}/{size}"),
                _ if row.in_current_set == Some(false) => "out".to_owned(),
                _ => "-".to_owned(),
            },
            or_dash(row.previous_rank, |rank| rank.to_string()),
            or_dash(row.share_percent, |share| format!("{share:.3}%")),
            or_dash(row.stake_ton, |stake| format!("{stake:.0}")),
        ]);
    }
    Answer::new("Ranking").table(table)
}

/// The latest price of one coin, as the market agent stored it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarketQuote {
    /// The CoinGecko id (`the-open-network`).
    pub coin: String,
    /// `TON`, `BTC`, ...
    pub symbol: String,
    /// The currency it is quoted in (`usd`).
    pub vs: String,
    pub price: f64,
    pub at: DateTime<Utc>,
    /// Change against the oldest sample of the last 24 hours, in percent.
    pub change_24h_percent: Option<f64>,
}

/// Every coin's latest price and 24-hour change, from the series the market agent writes
/// (what `/market` shows and the reasoner's `market_prices` tool answers).
pub fn market_quotes(
    store: &memory::Store,
    now: DateTime<Utc>,
) -> Result<Vec<MarketQuote>, memory::StoreError> {
    let series = store.series();
    let mut quotes = Vec::new();
    for key in series
        .list()?
        .iter()
        .filter(|key| key.name == agents::market::PRICE_SERIES)
    {
        let (Some(coin), Some(vs)) = (key.labels.get("coin"), key.labels.get("vs")) else {
            continue;
        };
        // The same key the market agent writes.
        let key = agents::market::price_key(coin, vs);
        let Some(latest) = series.latest(&key)? else {
            continue;
        };
        let day_ago = series
            .range(&key, now - Duration::hours(24), now + Duration::seconds(1))
            .ok()
            .and_then(|samples| samples.first().copied())
            .filter(|first| first.at < latest.at && first.value != 0.0);
        quotes.push(MarketQuote {
            coin: coin.clone(),
            symbol: agents::market::symbol(coin),
            vs: vs.clone(),
            price: latest.value,
            at: latest.at,
            change_24h_percent: day_ago
                .map(|first| (latest.value - first.value) / first.value * 100.0),
        });
    }
    Ok(quotes)
}

fn market(context: &Context, now: DateTime<Utc>) -> Answer {
    let quotes = match market_quotes(&context.store, now) {
        Ok(quotes) => quotes,
        Err(error) => return failed("the prices", error),
    };
    let mut table = Table::new(["COIN", "PRICE", "24H", "AT"]);
    for quote in &quotes {
        table.row([
            quote.symbol.clone(),
            format!("{} {}", price(quote.price), quote.vs.to_uppercase()),
            or_dash(quote.change_24h_percent, |change| format!("{change:+.1}%")),
            quote.at.format("%H:%M").to_string(),
        ]);
    }
    if table.rows.is_empty() {
        return Answer::new("Market").paragraph(
            "No prices yet: the market agent stores them after its first poll ([agents.market]).",
        );
    }
    Answer::new("Market").table(table)
}

fn price(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn alerts(context: &Context) -> Answer {
    let mut firing: Vec<agents::Alert> = match context
        .store
        .state()
        .scan_prefix::<ActiveAlert>(ACTIVE_PREFIX)
    {
        Ok(active) => active.into_iter().map(|(_, active)| active.alert).collect(),
        Err(error) => return failed("the firing alerts", error),
    };
    firing.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.starts_at.cmp(&b.starts_at))
    });
    let mut answer = Answer::new("Alerts");
    if firing.is_empty() {
        answer = answer.paragraph("No alerts firing.");
    } else {
        answer = answer.fact("Firing", firing.len().to_string());
    }
    answer.alerts = firing.iter().map(alert_line).collect();
    answer
}

fn approvals(context: &Context) -> Answer {
    let pending = match context.gate.list(Some(ProposalState::Pending)) {
        Ok(pending) => pending,
        Err(error) => return failed("the approvals", error),
    };
    if pending.is_empty() {
        return Answer::new("Approvals").paragraph("Nothing is waiting for approval.");
    }
    let mut answer = Answer::new("Approvals").fact("Pending", pending.len().to_string());
    let mut table = Table::new(["ID", "KIND", "TARGET", "RISK", "VOTES"]);
    for record in pending.iter().take(MAX_APPROVALS_SHOWN) {
        let operation = &record.proposal.operation;
        table.row([
            record.proposal.id.clone(),
            operation.kind.clone(),
            operation.target.clone(),
            format!("{:?}", operation.risk).to_lowercase(),
            format!("{}/{}", record.approvals.len(), record.approvals_needed()),
        ]);
        let id = &record.proposal.id;
        answer.actions.extend(approval_actions(id));
        answer.actions.push(Action {
            label: "Details".to_owned(),
            action_id: format!("details:{id}"),
            style: ActionStyle::Default,
        });
    }
    answer = answer.table(table);
    if pending.len() > MAX_APPROVALS_SHOWN {
        answer = answer.paragraph(format!(
            "{} more; `command-center proposals list --state pending` lists them all.",
            pending.len() - MAX_APPROVALS_SHOWN
        ));
    }
    answer
}

fn audit(context: &Context, limit: usize) -> Answer {
    let query = JournalQuery {
        limit: Some(limit),
        newest_first: true,
        ..JournalQuery::default()
    };
    let mut entries = match context.store.journal().query(&query) {
        Ok(entries) => entries,
        Err(error) => return failed("the audit log", error),
    };
    entries.reverse();
    if entries.is_empty() {
        return Answer::new("Audit log").paragraph("The audit log is empty.");
    }
    let mut table = Table::new(["SEQ", "TIME", "KIND", "ACTOR", "SUBJECT"]);
    for entry in &entries {
        table.row([
            entry.seq.to_string(),
            entry.at.format("%m-%d %H:%M").to_string(),
            entry.kind.clone(),
            entry.actor.clone(),
            entry.subject.clone(),
        ]);
    }
    Answer::new(format!("Audit log, last {}", entries.len()))
        .fact(
            "Entries in the log",
            context.store.journal().len().to_string(),
        )
        .table(table)
}

fn refused(context: &Context, what: &str) -> Answer {
    Answer::with_outcome(
        Outcome::Refused,
        "Not allowed",
        format!(
            "{} needs the {OPERATOR_ROLE} role to {what} autonomy; nothing was changed. Ask an \
             administrator to add the role under [[access.users]].",
            context.caller.name
        ),
    )
}

async fn pause(context: &Context, agent: Option<&str>, reason: &str) -> Answer {
    if !context.caller.has_role(OPERATOR_ROLE) {
        return refused(context, "pause");
    }
    match context
        .gate
        .pause(agent, &context.caller.name, reason)
        .await
    {
        Ok(pause) => Answer::new("Autonomy paused")
            .paragraph(match agent {
                Some(agent) => format!("{agent} takes no action on its own until /resume {agent}."),
                None => "Nothing runs on its own until /resume.".to_owned(),
            })
            .fact("Scope", agent.unwrap_or("all"))
            .fact("By", pause.by)
            .fact("At", time(pause.at))
            .fact(
                "Reason",
                if pause.reason.is_empty() {
                    "-".to_owned()
                } else {
                    pause.reason
                },
            ),
        Err(error) => failed("the pause", error),
    }
}

async fn resume(context: &Context, agent: Option<&str>) -> Answer {
    if !context.caller.has_role(OPERATOR_ROLE) {
        return refused(context, "resume");
    }
    match context.gate.resume(agent, &context.caller.name).await {
        Ok(()) => Answer::new("Autonomy resumed")
            .paragraph("Agents act within their policies again.")
            .fact("Scope", agent.unwrap_or("all"))
            .fact("By", context.caller.name.clone()),
        Err(error) => failed("the resume", error),
    }
}

const SILENCE_USAGE: &str = "/silence MATCHERS DURATION COMMENT, e.g. /silence rule=low_efficiency,validator=validator-1 2h node maintenance";

/// `/silence MATCHERS DURATION COMMENT`: a silence in the alert router, created as the caller.
async fn silence(context: &Context, arguments: &str, now: DateTime<Utc>) -> Answer {
    let Some(app) = &context.app else {
        return Answer::with_outcome(
            Outcome::Unavailable,
            "Silences need the running daemon",
            "Send /silence through chat or POST /v1/commands.",
        );
    };
    let mut words = arguments.split_whitespace();
    let (Some(matchers), Some(duration)) = (words.next(), words.next()) else {
        return Answer::with_outcome(
            Outcome::Invalid,
            "Not understood",
            format!("usage: {SILENCE_USAGE}"),
        );
    };
    let comment = words.collect::<Vec<_>>().join(" ");
    if comment.is_empty() {
        return Answer::with_outcome(
            Outcome::Invalid,
            "Not understood",
            format!("say why after the duration; usage: {SILENCE_USAGE}"),
        );
    }
    let request = crate::router::NewSilence {
        matchers: matchers.split(',').map(str::to_owned).collect(),
        starts_at: None,
        ends_at: None,
        duration: Some(duration.to_owned()),
        comment,
    };
    match app.router.add_silence(request, &context.caller.name, now).await {
        Ok(silence) => Answer::new("Silenced")
            .paragraph("Matching alerts are held back until the silence ends; you get a reminder before it does.")
            .fact("Id", silence.id)
            .fact("Matchers", silence.matchers.join(", "))
            .fact("Until", time(silence.ends_at))
            .fact("By", silence.created_by)
            .fact("Why", silence.comment),
        Err(crate::router::RouterError::InvalidInput(message)) => Answer::with_outcome(
            Outcome::Invalid,
            "Not understood",
            format!("{message}; usage: {SILENCE_USAGE}"),
        ),
        Err(error) => failed("the silence", error),
    }
}

/// `/ack ALERT_OR_GROUP_KEY [COMMENT]`: stops repeats and escalation until it fires anew.
async fn ack(context: &Context, arguments: &str, now: DateTime<Utc>) -> Answer {
    let Some(app) = &context.app else {
        return Answer::with_outcome(
            Outcome::Unavailable,
            "Acknowledgements need the running daemon",
            "Send /ack through chat or POST /v1/commands.",
        );
    };
    let mut words = arguments.split_whitespace();
    let Some(key) = words.next() else {
        return Answer::with_outcome(
            Outcome::Invalid,
            "Not understood",
            "usage: /ack ALERT_KEY [comment], e.g. /ack validators.out_of_sync/validator-1 restarting it",
        );
    };
    let comment = words.collect::<Vec<_>>().join(" ");
    match app
        .router
        .ack(key, &context.caller.name, &comment, now)
        .await
    {
        Ok(_) => Answer::new("Acknowledged")
            .paragraph("No more repeats or escalation until it fires anew.")
            .fact("Alert", key)
            .fact("By", context.caller.name.clone()),
        Err(crate::router::RouterError::NotFound(message)) => Answer::with_outcome(
            Outcome::NotFound,
            "No such alert",
            format!("{message}; /alerts lists what fires now"),
        ),
        Err(error) => failed("the acknowledgement", error),
    }
}

/// `/finance`: cash, runway and burn, this month and the last complete one, and the expenses
/// waiting for approval.
fn finance(context: &Context, now: DateTime<Utc>) -> Answer {
    let today = now.date_naive();
    // Three complete months before this one: the burn (and so the runway) is their mean, the
    // same figure `finance report` shows; the table shows the last two.
    let from = today
        .checked_sub_months(chrono::Months::new(3))
        .unwrap_or(today);
    let report = match crate::finance::report(
        &context.store,
        &context.finance,
        Some(&agents::finance::report::month_of(from)),
        None,
        today,
    ) {
        Ok(report) => report,
        Err(error) => return failed("the ledger", error),
    };
    let currency = report.currency.clone();
    let money = |value: rust_decimal::Decimal| format!("{:.2} {currency}", value);
    let mut answer = Answer::new("Finance")
        .fact(
            "Cash",
            report.cash.map_or_else(
                || "unknown (set finance.opening_balance and opening_date)".to_owned(),
                money,
            ),
        )
        .fact(
            "Runway",
            match (report.runway_months, report.net_burn) {
                (Some(months), _) => format!("{months:.1} months"),
                (None, Some(burn)) if burn <= rust_decimal::Decimal::ZERO => {
                    "not burning cash".to_owned()
                }
                _ => "-".to_owned(),
            },
        )
        .fact(
            "Net burn / month",
            or_dash(report.net_burn, |burn| {
                format!("{} (mean of the last 3 complete months)", money(burn))
            }),
        );
    let mut table = Table::new(["MONTH", "REVENUE", "EXPENSES", "NET"]);
    let shown = report.months.len().saturating_sub(2);
    for row in &report.months[shown..] {
        table.row([
            format!(
                "{}{}",
                row.month,
                if row.partial { " (to date)" } else { "" }
            ),
            money(row.revenue_total),
            money(row.expense_total),
            money(row.net),
        ]);
    }
    answer = answer.table(table);
    if !report.missing_rates.is_empty() {
        let missing: usize = report.missing_rates.iter().map(|m| m.entries).sum();
        answer = answer.paragraph(format!(
            "{missing} entries have no exchange rate and are left out: `command-center finance rates fetch` or `rates import`."
        ));
    }
    let pending = match context.gate.list(Some(ProposalState::Pending)) {
        Ok(pending) => pending,
        Err(error) => return failed("the approvals", error),
    };
    let expenses: Vec<_> = pending
        .iter()
        .filter(|record| record.proposal.operation.kind == "expense")
        .collect();
    if expenses.is_empty() {
        answer = answer.paragraph("No expense is waiting for approval.");
    } else {
        let mut waiting = Table::new(["ID", "CATEGORY", "AMOUNT", "VOTES"]);
        waiting.title = Some("Expenses awaiting approval".to_owned());
        for record in expenses {
            let parameters = &record.proposal.operation.parameters;
            let field = |key: &str| parameters[key].as_str().unwrap_or_default().to_owned();
            waiting.row([
                record.proposal.id.clone(),
                record.proposal.operation.target.clone(),
                format!("{} {}", field("amount"), field("currency")),
                format!("{}/{}", record.approvals.len(), record.approvals_needed()),
            ]);
        }
        answer = answer.table(waiting);
    }
    answer
}

/// `/income`: a manual ledger entry of today, booked as the caller (no money moves, so no
/// approval; the journal keeps who booked it). The same income (amount, stream, payer and
/// description) twice on a day is one entry, whoever sends it: a description tells two apart.
fn income(context: &Context, request: &super::IncomeRequest, now: DateTime<Utc>) -> Answer {
    let caller = context.caller.name.clone();
    let entry = agents::finance::import::NewEntry {
        date: now.date_naive(),
        amount: agents::finance::import::AmountInput::Text(request.amount.clone()),
        currency: request.currency.clone(),
        stream: Some(request.stream.clone()),
        category: None,
        subcategory: None,
        counterparty: request.counterparty.clone(),
        description: request.description.clone(),
        tags: vec!["chat".to_owned()],
        id: None,
    };
    let outcome = crate::finance::add_entries(
        &context.store,
        &context.finance,
        vec![entry],
        &format!("chat:income:{}", request.stream),
        || memory::ledger::EntrySource::Manual { by: caller.clone() },
    );
    let amount = format!("{} {}", request.amount, request.currency);
    match outcome {
        Ok(outcome) if outcome.inserted == 1 => Answer::new("Income booked")
            .fact("Amount", amount)
            .fact("Stream", request.stream.clone())
            .fact("From", request.counterparty.clone())
            .paragraph("In the ledger as a manual entry of today, booked by you."),
        Ok(_) => Answer::with_outcome(
            Outcome::Invalid,
            "Already booked",
            format!(
                "{amount} from {} to {} is already in the ledger today; nothing was added. \
                 Add a description after a ':' to book a second one.",
                request.counterparty, request.stream
            ),
        ),
        Err(crate::finance::FinanceError::Invalid(message)) => Answer::with_outcome(
            Outcome::Invalid,
            "Income not booked",
            message.replace("entries[0]: ", ""),
        ),
        Err(error) => failed("the ledger", error),
    }
}

/// The Approve and Reject buttons of a pending proposal.
fn approval_actions(id: &str) -> [Action; 2] {
    [
        Action {
            label: "Approve".to_owned(),
            action_id: format!("approve:{id}"),
            style: ActionStyle::Primary,
        },
        Action {
            label: "Reject".to_owned(),
            action_id: format!("reject:{id}"),
            style: ActionStyle::Danger,
        },
    ]
}

/// `/expense`: a proposal from the caller; the policies decide whether it is booked at once,
/// waits for approvers, or is refused.
async fn expense(context: &Context, request: &super::ExpenseRequest) -> Answer {
    let expense = crate::executors::ExpenseParams {
        amount: request.amount.clone(),
        currency: request.currency.clone(),
        category: request.category.clone(),
        subcategory: request.subcategory.clone(),
        counterparty: request.counterparty.clone(),
        description: request.description.clone(),
        date: None,
        tags: vec!["chat".to_owned()],
    };
    let proposer = policies::Proposer::User {
        name: context.caller.name.clone(),
        roles: context.caller.roles.clone(),
    };
    let proposal = match crate::finance::expense_proposal(
        &context.store,
        &context.finance,
        expense,
        proposer,
        format!("submitted in chat by {}", context.caller.name),
        Utc::now().date_naive(),
    ) {
        Ok(proposal) => proposal,
        Err(crate::finance::FinanceError::Invalid(message)) => {
            return Answer::with_outcome(Outcome::Invalid, "Expense not submitted", message);
        }
        Err(error) => return failed("the ledger", error),
    };
    let record = match context.gate.submit(proposal).await {
        Ok(record) => record,
        Err(error) => return failed("the expense proposal", error),
    };
    let id = record.proposal.id.clone();
    let amount = format!("{} {}", request.amount, request.currency);
    let category = match &request.subcategory {
        Some(sub) => format!("{}/{sub}", request.category),
        None => request.category.clone(),
    };
    let base = |answer: Answer| {
        answer
            .fact("Proposal", id.clone())
            .fact("Amount", amount.clone())
            .fact("Category", category.clone())
            .fact("Paid to", request.counterparty.clone())
    };
    match record.state {
        ProposalState::Executed => base(Answer::new("Expense booked"))
            .paragraph("The policies let it run on its own; it is in the ledger."),
        ProposalState::Pending => {
            let who = match &record.decision {
                policies::Decision::NeedsApproval { eligible_roles, .. } => {
                    format!(" from a {}", eligible_roles.join(" or "))
                }
                _ => String::new(),
            };
            let mut answer = base(Answer::new("Expense awaiting approval")).paragraph(format!(
                "It needs {} approval(s){who}; it is booked once approved.",
                record.approvals_needed()
            ));
            answer.actions.extend(approval_actions(&id));
            answer
        }
        ProposalState::Denied => Answer::with_outcome(
            Outcome::Refused,
            "Expense refused",
            format!(
                "The policies refuse it: {}",
                crate::cli::policy::describe(&record.decision)
            ),
        )
        .fact("Proposal", id),
        other => base(Answer::new("Expense submitted"))
            .paragraph(format!("The proposal is {}.", other.as_str())),
    }
}

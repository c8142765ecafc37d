//! `command-center policy check|test|explain`.

use std::path::{Path, PathBuf};

use policies::{Decision, DecisionContext, PolicyEngine, Proposal};

use super::{EXIT_INVALID, Exit, PolicyCommand};
use crate::config::Config;

fn load_engine(dir: &Path) -> Result<PolicyEngine, Exit> {
    PolicyEngine::load(dir).map_err(|problems| {
        eprintln!(
            "{} problem{} in {}:",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            dir.display()
        );
        for problem in problems {
            eprintln!("  - {problem}");
        }
        Exit(EXIT_INVALID)
    })
}

/// One line per decision, for people.
pub fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Auto { .. } => "auto: runs on its own".to_owned(),
        Decision::Deny { reason, .. } => format!("deny: never runs ({reason})"),
        Decision::NeedsApproval {
            approvals,
            eligible_roles,
            expires_in,
            reason,
            ..
        } => format!(
            "needs approval: {approvals} distinct approver{} holding {} within {} ({reason})",
            if *approvals == 1 { "" } else { "s" },
            eligible_roles.join(" or "),
            humantime::format_duration(*expires_in)
        ),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, Exit> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        eprintln!("error: cannot read {what} {}: {error}", path.display());
        Exit(EXIT_INVALID)
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path_in = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(head, _)| head);
        eprintln!(
            "error: {}:{}:{}: {what}{}: {message}",
            path.display(),
            inner.line(),
            inner.column(),
            if path_in == "." {
                String::new()
            } else {
                format!(" at `{path_in}`")
            }
        );
        Exit(EXIT_INVALID)
    })
}

fn case_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("tests"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

pub fn run(config: &Config, command: &PolicyCommand) -> Result<(), Exit> {
    match command {
        PolicyCommand::Check { policies } => {
            let dir = policies
                .clone()
                .unwrap_or_else(|| config.daemon.policies_dir.clone());
            let engine = load_engine(&dir)?;
            let summary = engine.summary();
            println!(
                "policies {}: ok ({} policies in {} files, validated against {})",
                dir.display(),
                summary.policies,
                summary.files,
                summary.schema
            );
            Ok(())
        }
        PolicyCommand::Test { policies } => {
            let dir = policies
                .clone()
                .unwrap_or_else(|| config.daemon.policies_dir.clone());
            let engine = load_engine(&dir)?;
            let files = case_files(&dir);
            if files.is_empty() {
                eprintln!(
                    "error: no example cases in {}; add *.toml files (see policies/tests/default.toml)",
                    dir.join("tests").display()
                );
                return Err(Exit(EXIT_INVALID));
            }
            let (mut passed, mut failed) = (0, 0);
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|error| {
                    eprintln!("error: cannot read {}: {error}", file.display());
                    Exit(EXIT_INVALID)
                })?;
                let outcomes = policies::run_cases(&engine, &file, &text).map_err(|problem| {
                    eprintln!("error: {problem}");
                    Exit(EXIT_INVALID)
                })?;
                println!("{}", file.display());
                for outcome in outcomes {
                    if outcome.passed() {
                        passed += 1;
                        println!(
                            "  ok    {}  -> {} [{}]",
                            outcome.name,
                            outcome.decision.kind(),
                            outcome.decision.by().join(", ")
                        );
                    } else {
                        failed += 1;
                        println!("  FAIL  {}", outcome.name);
                        for mismatch in &outcome.mismatches {
                            println!("          {mismatch}");
                        }
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            if failed > 0 { Err(Exit(1)) } else { Ok(()) }
        }
        PolicyCommand::Backtest { .. } => Ok(()),
        PolicyCommand::Explain {
            proposal,
            context,
            paused,
            executions_last_hour,
            executions_last_day,
            local_hour,
            roles,
            policies,
            json,
        } => {
            let dir = policies
                .clone()
                .unwrap_or_else(|| config.daemon.policies_dir.clone());
            let engine = load_engine(&dir)?;
            let proposal: Proposal = read_json(proposal, "proposal")?;
            let mut context: DecisionContext = match context {
                Some(path) => read_json(path, "context")?,
                None => DecisionContext::default(),
            };
            context.autonomy_paused |= *paused;
            if let Some(count) = executions_last_hour {
                context.executions_last_hour = *count;
            }
            if let Some(count) = executions_last_day {
                context.executions_last_day = *count;
            }
            if let Some(hour) = local_hour {
                context.local_hour = *hour;
            }
            let decision = engine.decide(&proposal, &context, roles);
            if *json {
                let text = serde_json::to_string_pretty(&decision).map_err(|error| {
                    eprintln!("error: {error}");
                    Exit(1)
                })?;
                println!("{text}");
                return Ok(());
            }
            println!(
                "proposal {}: {} by {}",
                proposal.id,
                proposal.operation.kind,
                proposal.proposer.name()
            );
            println!("decision: {}", describe(&decision));
            if decision.by().is_empty() {
                println!("decided by: no policy matched (Cedar denies what nothing permits)");
            } else {
                println!("decided by:");
                for id in decision.by() {
                    match engine.policy(id) {
                        Some(meta) => {
                            println!("  {id}  ({}, {})", meta.file.display(), meta.effect)
                        }
                        None => println!("  {id}"),
                    }
                }
            }
            Ok(())
        }
    }
}

/// `policy backtest`: replays journaled decisions against a candidate set.
pub async fn backtest(config: Config, candidate: &Path, since: &str) -> Result<(), Exit> {
    let engine = load_engine(candidate)?;
    let since = super::parse_time(since, chrono::Utc::now()).map_err(|message| {
        eprintln!("error: --since: {message}");
        Exit(EXIT_INVALID)
    })?;
    let access = super::audit::Access::open(&config).await?;
    let mut query = memory::JournalQuery {
        since: Some(since),
        kind: Some("decision.made".to_owned()),
        limit: Some(5_000),
        ..memory::JournalQuery::default()
    };
    let (mut replayed, mut changed, mut skipped) = (0u64, 0u64, 0u64);
    loop {
        let page = access.query(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = Some(last.seq);
        for entry in &page {
            let body = &entry.body;
            if body["parameters_valid"] == serde_json::Value::Bool(false) {
                skipped += 1;
                continue;
            }
            let parsed = (
                serde_json::from_value::<Proposal>(body["proposal"].clone()),
                serde_json::from_value::<DecisionContext>(body["context"].clone()),
                serde_json::from_value::<Decision>(body["decision"].clone()),
                serde_json::from_value::<Vec<String>>(body["roles"].clone()),
            );
            let (Ok(proposal), Ok(context), Ok(before), Ok(roles)) = parsed else {
                skipped += 1;
                continue;
            };
            replayed += 1;
            let after = engine.decide(&proposal, &context, &roles);
            if after != before {
                changed += 1;
                println!(
                    "#{} {} {} {} by {}:\n    was: {}\n    now: {}",
                    entry.seq,
                    entry.at.format("%Y-%m-%d %H:%M"),
                    proposal.id,
                    proposal.operation.kind,
                    proposal.proposer.name(),
                    describe(&before),
                    describe(&after)
                );
            }
        }
    }
    println!(
        "{replayed} decisions replayed since {}, {changed} would change{}",
        since.format("%Y-%m-%d %H:%M"),
        if skipped > 0 {
            format!(" ({skipped} skipped: invalid parameters or unreadable entries)")
        } else {
            String::new()
        }
    );
    Ok(())
}

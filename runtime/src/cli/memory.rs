//! `command-center memory search|stats|export|reindex`: through the running daemon when one
//! answers (it holds the store open), else on the data directory.

use std::io::Write;
use std::path::PathBuf;

use chrono::Utc;
use serde_json::Value;

use super::audit::{Access, daemon_answers, daemon_url};
use super::{EXIT_INVALID, Exit, MemoryCommand};
use crate::config::Config;
use crate::vectors::{SearchParams, VectorMemory};

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

fn open_local(config: &Config) -> Result<VectorMemory, Exit> {
    crate::vectors::open(&config.memory, &config.daemon.data_dir)
        .map_err(fail)?
        .ok_or_else(|| fail("vector memory is off ([memory] enabled = false)"))
}

async fn local<T: Send + 'static>(
    config: &Config,
    work: impl FnOnce(VectorMemory) -> Result<T, Exit> + Send + 'static,
) -> Result<T, Exit> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || work(open_local(&config)?))
        .await
        .map_err(fail)?
}

pub async fn run(config: Config, command: &MemoryCommand) -> Result<(), Exit> {
    let client = reqwest::Client::new();
    let url = daemon_url(&config);
    let remote = daemon_answers(&client, &url).await;
    match command {
        MemoryCommand::Search {
            query,
            domain,
            kind,
            since,
            trust,
            limit,
            json,
        } => {
            let params = SearchParams {
                q: query.join(" "),
                domain: domain.clone(),
                kind: kind.clone(),
                since: since.clone(),
                trust: trust.clone(),
                limit: Some(*limit),
            };
            let hits: Vec<Value> = if remote {
                Access::remote_json(
                    &client,
                    client.get(format!("{url}/v1/memory/search")).query(&params),
                    "memory search",
                )
                .await?
            } else {
                local(&config, move |memory| {
                    let query = params
                        .query(memory.recency_half_life(), Utc::now())
                        .map_err(|message| {
                            eprintln!("error: {message}");
                            Exit(EXIT_INVALID)
                        })?;
                    let hits = memory.store().search(&query).map_err(fail)?;
                    Ok(hits.iter().map(crate::vectors::hit_json).collect())
                })
                .await?
            };
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&hits).unwrap_or_default()
                );
            } else {
                print_hits(&hits);
            }
            Ok(())
        }
        MemoryCommand::Stats { json } => {
            let stats: Value = if remote {
                Access::remote_json(
                    &client,
                    client.get(format!("{url}/v1/memory/stats")),
                    "memory stats",
                )
                .await?
            } else {
                local(&config, |memory| {
                    let stats = memory.store().stats().map_err(fail)?;
                    let mut value = serde_json::to_value(&stats).map_err(fail)?;
                    value["embedder_note"] = Value::from(memory.embedder_note.clone());
                    Ok(value)
                })
                .await?
            };
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&stats).unwrap_or_default()
                );
            } else {
                print_stats(&stats);
            }
            Ok(())
        }
        MemoryCommand::Export { output } => {
            let text = if remote {
                let response = client
                    .get(format!("{url}/v1/memory/export"))
                    .send()
                    .await
                    .map_err(|error| fail(format!("memory export: {}", error.without_url())))?;
                let status = response.status();
                let body = response
                    .text()
                    .await
                    .map_err(|error| fail(format!("memory export: {}", error.without_url())))?;
                if !status.is_success() {
                    return Err(fail(format!(
                        "memory export: daemon answered {status}: {body}"
                    )));
                }
                body
            } else {
                local(&config, |memory| {
                    crate::vectors::export_lines(memory.store().as_ref()).map_err(fail)
                })
                .await?
            };
            write_output(output.as_ref(), &text)
        }
        MemoryCommand::Reindex => {
            if remote {
                return Err(fail(format!(
                    "a daemon is running at {url} and holds the memory open; it re-embeds on \
                     start when [memory] embedder changed, so restart it (or stop it and run \
                     this again)"
                )));
            }
            let report = local(&config, |memory| {
                eprintln!(
                    "re-embedding every record with {} ...",
                    memory.embedder_note
                );
                memory.store().reindex(memory.embedder()).map_err(fail)
            })
            .await?;
            println!(
                "re-embedded {} records: {} -> {}",
                report.records,
                report.from_embedder.as_deref().unwrap_or("(empty store)"),
                report.to_embedder
            );
            Ok(())
        }
    }
}

fn write_output(output: Option<&PathBuf>, text: &str) -> Result<(), Exit> {
    match output {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|error| fail(format!("{}: {error}", path.display())))?;
            eprintln!(
                "wrote {} records to {}",
                text.lines().count(),
                path.display()
            );
            Ok(())
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|error| fail(format!("stdout: {error}"))),
    }
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn print_hits(hits: &[Value]) {
    if hits.is_empty() {
        println!("nothing found");
        return;
    }
    println!(
        "{:<6} {:<12} {:<11} {:<16} {:<19} TEXT",
        "SCORE", "KIND", "DOMAIN", "FETCHED", "CITATION"
    );
    for hit in hits {
        let fetched = hit["fetched_at"]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        println!(
            "{:<6.3} {:<12} {:<11} {:<16} {:<19} {}",
            hit["score"].as_f64().unwrap_or_default(),
            hit["kind"].as_str().unwrap_or_default(),
            hit["domain"].as_str().unwrap_or_default(),
            fetched,
            hit["citation"].as_str().unwrap_or_default(),
            one_line(hit["text"].as_str().unwrap_or_default(), 80)
        );
    }
}

fn print_stats(stats: &Value) {
    let line = |label: &str, value: String| println!("{label:<18} {value}");
    line(
        "backend",
        stats["backend"].as_str().unwrap_or_default().to_owned(),
    );
    line("records", stats["records"].to_string());
    line(
        "embedder",
        stats["embedder_note"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    line(
        "stored vectors",
        format!(
            "{} ({} dims)",
            stats["embedder_id"].as_str().unwrap_or_default(),
            stats["dims"]
        ),
    );
    if stats["needs_reindex"].as_bool() == Some(true) {
        line(
            "needs reindex",
            format!(
                "yes: configured {}; run `command-center memory reindex` or restart the daemon",
                stats["configured_embedder_id"].as_str().unwrap_or_default()
            ),
        );
    }
    for (label, key) in [("by kind", "by_kind"), ("by domain", "by_domain")] {
        let parts: Vec<String> = stats[key]
            .as_object()
            .map(|map| map.iter().map(|(k, v)| format!("{k} {v}")).collect())
            .unwrap_or_default();
        line(label, parts.join(", "));
    }
    let bytes = stats["disk_bytes"].as_u64().unwrap_or_default();
    line(
        "on disk",
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0)),
    );
}

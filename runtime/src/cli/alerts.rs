//! `alerts`, `alerts ack`, `silence add|list|expire`: the alert router from the command line,
//! through the running daemon's authenticated API (like `proposals`).

use std::path::PathBuf;

use chrono::Utc;

use super::gate::{Client, fail};
use super::{AlertsArgs, AlertsCommand, Exit, SilenceCommand};
use crate::config::Config;
use crate::router::{Ack, AlertEntry, Silence};

/// Percent-encodes one path segment (alert keys hold '/', group keys braces and quotes).
pub fn encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn short_time(time: chrono::DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// One line per alert: what fires now (`--status firing`) or the history; `width` is the
/// key column's.
pub fn format_entry(entry: &AlertEntry, width: usize) -> String {
    let alert = &entry.alert;
    let mut notes = Vec::new();
    if let Some(by) = &entry.acknowledged_by {
        notes.push(format!("acked by {by}"));
    }
    if !entry.silenced_by.is_empty() {
        notes.push(format!("silenced by {}", entry.silenced_by.join(",")));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("  [{}]", notes.join("; "))
    };
    format!(
        "{:<12} {:<8} {:<width$} {}  {}{notes}",
        entry.state,
        alert.severity.to_string(),
        alert.key,
        short_time(if entry.seq.is_some() {
            alert.at
        } else {
            alert.starts_at
        }),
        alert.summary,
    )
}

/// One line per silence.
pub fn format_silence(silence: &Silence) -> String {
    let now = Utc::now();
    format!(
        "{:<24} {:<8} until {}  by {:<10} {}  ({})",
        silence.id,
        silence.state(now),
        short_time(silence.ends_at),
        silence.created_by,
        silence.matchers.join(","),
        silence.comment
    )
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Exit> {
    println!("{}", serde_json::to_string_pretty(value).map_err(fail)?);
    Ok(())
}

pub async fn alerts(config: Config, args: &AlertsArgs) -> Result<(), Exit> {
    let client = Client::new(&config, args.token_file.as_deref())?;
    match &args.command {
        Some(AlertsCommand::Ack { key, comment }) => {
            let ack: Ack = client
                .send(
                    reqwest::Method::POST,
                    &format!("/v1/alerts/{}/ack", encode_segment(key)),
                    Some(serde_json::json!({ "comment": comment })),
                )
                .await?;
            println!(
                "acknowledged {} by {} at {}: no repeats or escalation until it fires again",
                ack.key,
                ack.by,
                short_time(ack.at)
            );
        }
        None => {
            let mut query = Vec::new();
            if let Some(status) = &args.status {
                query.push(format!("status={}", encode_segment(status)));
            }
            if let Some(since) = &args.since {
                let since = super::parse_time(since, Utc::now()).map_err(fail)?;
                query.push(format!("since={}", encode_segment(&since.to_rfc3339())));
            }
            if !args.matchers.is_empty() {
                query.push(format!(
                    "matchers={}",
                    encode_segment(&args.matchers.join(","))
                ));
            }
            query.push(format!("limit={}", args.limit));
            let entries: Vec<AlertEntry> = client
                .send(
                    reqwest::Method::GET,
                    &format!("/v1/alerts?{}", query.join("&")),
                    None,
                )
                .await?;
            if args.json {
                return print_json(&entries);
            }
            let width = entries
                .iter()
                .map(|entry| entry.alert.key.len())
                .max()
                .unwrap_or(0);
            for entry in &entries {
                println!("{}", format_entry(entry, width));
            }
            if entries.is_empty() {
                eprintln!("no alerts");
            }
        }
    }
    Ok(())
}

pub async fn silence(
    config: Config,
    command: &SilenceCommand,
    token_file: Option<PathBuf>,
) -> Result<(), Exit> {
    let client = Client::new(&config, token_file.as_deref())?;
    match command {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
        } => {
            let silence: Silence = client
                .send(
                    reqwest::Method::POST,
                    "/v1/silences",
                    Some(serde_json::json!({
                        "matchers": matchers,
                        "duration": duration,
                        "comment": comment,
                    })),
                )
                .await?;
            println!("{}", format_silence(&silence));
        }
        SilenceCommand::List { json, all } => {
            let silences: Vec<Silence> = client
                .send(reqwest::Method::GET, "/v1/silences", None)
                .await?;
            let now = Utc::now();
            let shown: Vec<&Silence> = silences
                .iter()
                .filter(|silence| *all || silence.state(now) != "expired")
                .collect();
            if *json {
                return print_json(&shown);
            }
            for silence in &shown {
                println!("{}", format_silence(silence));
            }
            if shown.is_empty() {
                eprintln!(
                    "no silences{}",
                    if *all {
                        ""
                    } else {
                        " in force (--all lists expired ones)"
                    }
                );
            }
        }
        SilenceCommand::Expire { id } => {
            let silence: Silence = client
                .send(
                    reqwest::Method::DELETE,
                    &format!("/v1/silences/{}", encode_segment(id)),
                    None,
                )
                .await?;
            println!("{}", format_silence(&silence));
        }
    }
    Ok(())
}

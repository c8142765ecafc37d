//! `command-center audit ...`: through the running daemon's API when one answers, else
//! straight from the data directory.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use memory::{JournalEntry, JournalQuery, Store, VerifyReport};

use super::{AuditCommand, AuditFilters, EXIT_INVALID, Exit, ExportFormat, parse_time};
use crate::config::Config;
use crate::daemon::CHECKPOINT_FILE;

/// Where the journal is read from.
pub enum Access {
    Local(Store),
    Remote {
        client: reqwest::Client,
        url: String,
    },
}

/// `http://host:port` of the configured daemon (wildcard listen addresses become loopback).
pub fn daemon_url(config: &Config) -> String {
    let mut addr = config.daemon.http_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// True when a daemon answers `/healthz` at `url`.
pub async fn daemon_answers(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(format!("{url}/healthz"))
        .timeout(std::time::Duration::from_millis(800))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

impl Access {
    pub async fn open(config: &Config) -> Result<Access, Exit> {
        let client = reqwest::Client::new();
        let url = daemon_url(config);
        if daemon_answers(&client, &url).await {
            return Ok(Access::Remote { client, url });
        }
        let dir = config.daemon.data_dir.clone();
        match tokio::task::spawn_blocking(move || Store::open(&dir)).await {
            Ok(Ok(store)) => Ok(Access::Local(store)),
            Ok(Err(error)) => Err(fail(format!(
                "{error} (no daemon answered at {url} either)"
            ))),
            Err(error) => Err(fail(error)),
        }
    }

    pub(super) async fn remote_json<T: serde::de::DeserializeOwned>(
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, Exit> {
        let _ = client;
        let response = request
            .send()
            .await
            .map_err(|error| fail(format!("{what}: {}", error.without_url())))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| fail(format!("{what}: {}", error.without_url())))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| {
                    value
                        .get("error")
                        .and_then(|e| e.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or(body);
            return Err(fail(format!("{what}: daemon answered {status}: {message}")));
        }
        serde_json::from_str(&body).map_err(|error| {
            fail(format!(
                "{what}: unexpected answer from the daemon: {error}"
            ))
        })
    }

    pub async fn query(&self, query: &JournalQuery) -> Result<Vec<JournalEntry>, Exit> {
        match self {
            Access::Local(store) => store.journal().query(query).map_err(fail),
            Access::Remote { client, url } => {
                Self::remote_json(
                    client,
                    client.get(format!("{url}/v1/audit")).query(query),
                    "audit query",
                )
                .await
            }
        }
    }

    pub async fn get(&self, seq: u64) -> Result<JournalEntry, Exit> {
        match self {
            Access::Local(store) => match store.journal().get(seq).map_err(fail)? {
                Some(entry) => Ok(entry),
                None => Err(fail(format!(
                    "no journal entry #{seq}; the journal has {} entries",
                    store.journal().len()
                ))),
            },
            Access::Remote { client, url } => {
                Self::remote_json(
                    client,
                    client.get(format!("{url}/v1/audit/{seq}")),
                    "audit show",
                )
                .await
            }
        }
    }

    async fn verify(&self, external: Option<&Path>) -> Result<(VerifyReport, usize), Exit> {
        match self {
            Access::Local(store) => {
                let path = external
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| store.data_dir().join(CHECKPOINT_FILE));
                let checkpoints = memory::read_checkpoints(&path).map_err(fail)?;
                let report = store.journal().verify(&checkpoints).map_err(fail)?;
                Ok((report, checkpoints.len()))
            }
            Access::Remote { client, url } => {
                let mut report: VerifyReport = Self::remote_json(
                    client,
                    client.get(format!("{url}/v1/audit/verify")),
                    "audit verify",
                )
                .await?;
                let Some(path) = external else {
                    return Ok((report, 0));
                };
                // Check the external checkpoints against what the daemon serves.
                let checkpoints = memory::read_checkpoints(path).map_err(fail)?;
                if report.problem.is_none() {
                    for checkpoint in &checkpoints {
                        if checkpoint.count == 0 {
                            continue;
                        }
                        if checkpoint.count > report.entries {
                            report.problem = Some(memory::ChainProblem {
                                seq: report.entries + 1,
                                kind: memory::ProblemKind::Truncated {
                                    checkpoint_count: checkpoint.count,
                                    found: report.entries,
                                },
                                message: format!(
                                    "checkpoint of {} says the journal had {} entries; it has {}: entries were removed",
                                    checkpoint.at, checkpoint.count, report.entries
                                ),
                            });
                            break;
                        }
                        let entry = self.get(checkpoint.count).await?;
                        if entry.hash != checkpoint.head_hash {
                            report.problem = Some(memory::ChainProblem {
                                seq: checkpoint.count,
                                kind: memory::ProblemKind::CheckpointMismatch {
                                    count: checkpoint.count,
                                },
                                message: format!(
                                    "entry #{} does not match the checkpoint of {}: history up to it was rewritten",
                                    checkpoint.count, checkpoint.at
                                ),
                            });
                            break;
                        }
                    }
                }
                Ok((report, checkpoints.len()))
            }
        }
    }
}

fn to_query(filters: &AuditFilters) -> Result<JournalQuery, Exit> {
    let now = Utc::now();
    let time = |text: &Option<String>, flag: &str| -> Result<_, Exit> {
        text.as_deref()
            .map(|text| parse_time(text, now))
            .transpose()
            .map_err(|message| {
                eprintln!("error: {flag}: {message}");
                Exit(EXIT_INVALID)
            })
    };
    Ok(JournalQuery {
        since: time(&filters.since, "--since")?,
        until: time(&filters.until, "--until")?,
        actor: filters.actor.clone(),
        kind: filters.kind.clone(),
        text: filters.text.clone(),
        ..JournalQuery::default()
    })
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// One line per entry, for `tail` and `search`.
pub fn format_line(entry: &JournalEntry) -> String {
    let body = serde_json::to_string(&entry.body).unwrap_or_default();
    format!(
        "#{:<6} {}  {:<10} {:<20} {:<28} {}",
        entry.seq,
        entry.at.format("%Y-%m-%d %H:%M:%S"),
        shorten(&entry.actor, 10),
        shorten(&entry.kind, 20),
        shorten(&entry.subject, 28),
        shorten(&body, 90)
    )
}

async fn export(
    access: &Access,
    format: ExportFormat,
    output: Option<&Path>,
    mut query: JournalQuery,
) -> Result<u64, Exit> {
    let mut writer: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|error| fail(format!("cannot create {}: {error}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    const PAGE: usize = 5_000;
    query.limit = Some(PAGE);
    query.newest_first = false;
    let mut written = 0u64;
    let mut csv_header = true;
    loop {
        let page = access.query(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = Some(last.seq);
        match format {
            ExportFormat::Jsonl => memory::write_jsonl(&page, &mut writer)
                .map_err(|error| fail(format!("export: {error}")))?,
            ExportFormat::Csv => {
                let mut buffer = Vec::new();
                memory::write_csv(&page, &mut buffer)
                    .map_err(|error| fail(format!("export: {error}")))?;
                // Each page carries the header line; keep only the first.
                let text = String::from_utf8_lossy(&buffer);
                let text = if csv_header {
                    text.to_string()
                } else {
                    text.split_once('\n')
                        .map(|(_, rest)| rest.to_owned())
                        .unwrap_or_default()
                };
                csv_header = false;
                writer
                    .write_all(text.as_bytes())
                    .map_err(|error| fail(format!("export: {error}")))?;
            }
        }
        written += page.len() as u64;
        if page.len() < PAGE {
            break;
        }
    }
    writer
        .flush()
        .map_err(|error| fail(format!("export: {error}")))?;
    Ok(written)
}

pub async fn run(config: Config, command: &AuditCommand) -> Result<(), Exit> {
    let access = Access::open(&config).await?;
    match command {
        AuditCommand::Tail { lines, filters } => {
            let mut query = to_query(filters)?;
            query.newest_first = true;
            query.limit = Some(*lines);
            let mut entries = access.query(&query).await?;
            entries.reverse();
            for entry in &entries {
                println!("{}", format_line(entry));
            }
            if entries.is_empty() {
                eprintln!("no matching entries");
            }
        }
        AuditCommand::Show { seq } => {
            let entry = access.get(*seq).await?;
            println!("{}", serde_json::to_string_pretty(&entry).map_err(fail)?);
        }
        AuditCommand::Search { filters, limit } => {
            let mut query = to_query(filters)?;
            query.limit = Some(*limit);
            let entries = access.query(&query).await?;
            for entry in &entries {
                println!("{}", format_line(entry));
            }
            eprintln!(
                "{} entr{}{}",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                if entries.len() == *limit {
                    " (limit reached; use --limit or narrow the filters)"
                } else {
                    ""
                }
            );
        }
        AuditCommand::Verify { checkpoints } => {
            let (report, checked) = access.verify(checkpoints.as_deref()).await?;
            match report.problem {
                None => println!(
                    "journal verified: {} entries, head {}, consistent with {} checkpoint{}",
                    report.entries,
                    report.head_hash.as_deref().unwrap_or("(empty)"),
                    checked,
                    if checked == 1 { "" } else { "s" }
                ),
                Some(problem) => {
                    println!(
                        "journal verification FAILED at entry #{}: {}",
                        problem.seq, problem.message
                    );
                    return Err(Exit(1));
                }
            }
        }
        AuditCommand::Export {
            format,
            output,
            filters,
        } => {
            let query = to_query(filters)?;
            let written = export(&access, *format, output.as_deref(), query).await?;
            if let Some(path) = output {
                eprintln!("exported {written} entries to {}", path.display());
            }
        }
    }
    Ok(())
}

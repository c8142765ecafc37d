//! `token new`, `proposals ...`, `propose`, `pause`, `resume`: the gate from the command line,
//! through the running daemon's authenticated API.

use std::path::{Path, PathBuf};

use sha2::Digest;

use super::audit::daemon_url;
use super::{Exit, ProposalsCommand};
use crate::config::Config;
use crate::gate::{Pause, ProposalRecord};

pub(super) fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

/// `command-center token new --user NAME [--role R]`.
pub fn new_token(user: &str, roles: &[String]) -> Result<(), Exit> {
    let bytes: [u8; 32] = rand::random();
    let token = format!("cc_{}", hex::encode(bytes));
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    println!("API token for {user} (shown once; keep it like a password):\n\n  {token}\n");
    println!("Add this to command-center.toml (only the hash is stored):\n");
    println!("[[access.users]]");
    println!("name = {}", serde_json::Value::String(user.to_owned()));
    println!(
        "roles = [{}]",
        roles
            .iter()
            .map(|role| serde_json::Value::String(role.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("token_sha256 = \"{hash}\"");
    Ok(())
}

/// Reads the caller's token: `--token-file`, else `COMMAND_CENTER_TOKEN`.
pub(super) fn token(token_file: Option<&Path>) -> Result<String, Exit> {
    if let Some(path) = token_file {
        return std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .map_err(|error| {
                fail(format!(
                    "cannot read token file {}: {error}",
                    path.display()
                ))
            });
    }
    std::env::var("COMMAND_CENTER_TOKEN").map_err(|_| {
        fail("no API token: set COMMAND_CENTER_TOKEN or pass --token-file (make one with `command-center token new`)")
    })
}

pub(super) struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    pub(super) fn new(config: &Config, token_file: Option<&Path>) -> Result<Self, Exit> {
        Ok(Self {
            http: reqwest::Client::new(),
            url: daemon_url(config),
            token: token(token_file)?,
        })
    }

    pub(super) async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Exit> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| {
            fail(format!(
                "no daemon answers at {}: {}",
                self.url,
                error.without_url()
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| fail(error.without_url()))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|value| {
                    value
                        .get("error")
                        .and_then(|e| e.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or(text);
            return Err(fail(format!("{status}: {message}")));
        }
        serde_json::from_str(&text).map_err(|error| fail(format!("unexpected answer: {error}")))
    }
}

fn read_json_file(file: &Path) -> Result<serde_json::Value, Exit> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| fail(format!("cannot read {}: {error}", file.display())))?;
    serde_json::from_str(&text).map_err(|error| {
        fail(format!(
            "{}:{}:{}: {error}",
            file.display(),
            error.line(),
            error.column()
        ))
    })
}

/// One line per proposal.
pub fn format_record(record: &ProposalRecord) -> String {
    let needed = record.approvals_needed();
    format!(
        "{:<28} {:<10} {:<14} {:<20} by {:<12} approvals {}/{}  {}",
        record.proposal.id,
        record.state.as_str(),
        record.proposal.operation.kind,
        record.proposal.operation.target,
        record.proposal.proposer.name(),
        record.approvals.len(),
        needed,
        crate::cli::policy::describe(&record.decision)
    )
}

pub async fn proposals(
    config: Config,
    command: &ProposalsCommand,
    token_file: Option<PathBuf>,
) -> Result<(), Exit> {
    let client = Client::new(&config, token_file.as_deref())?;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    match command {
        ProposalsCommand::List { state } => {
            let path = match state {
                Some(state) => format!("/v1/proposals?state={state}"),
                None => "/v1/proposals".to_owned(),
            };
            let records: Vec<ProposalRecord> = client.send(get, &path, None).await?;
            for record in &records {
                println!("{}", format_record(record));
            }
            if records.is_empty() {
                eprintln!("no proposals");
            }
        }
        ProposalsCommand::Show { id } => {
            let record: ProposalRecord = client
                .send(get, &format!("/v1/proposals/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&record).map_err(fail)?);
        }
        ProposalsCommand::Approve { id }
        | ProposalsCommand::Reject { id }
        | ProposalsCommand::Cancel { id } => {
            let verb = match command {
                ProposalsCommand::Approve { .. } => "approve",
                ProposalsCommand::Reject { .. } => "reject",
                _ => "cancel",
            };
            let record: ProposalRecord = client
                .send(post, &format!("/v1/proposals/{id}/{verb}"), None)
                .await?;
            println!("{}", format_record(&record));
        }
        ProposalsCommand::New { file } => {
            let body = read_json_file(file)?;
            let record: ProposalRecord = client.send(post, "/v1/proposals", Some(body)).await?;
            println!("{}", format_record(&record));
        }
        ProposalsCommand::DryRun { file } => {
            let body = read_json_file(file)?;
            let outcome: crate::executors::ExecutionOutcome =
                client.send(post, "/v1/dry-run", Some(body)).await?;
            println!("dry-run ({:?}): {}", outcome.status, outcome.summary);
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome.details).map_err(fail)?
            );
        }
        ProposalsCommand::Pause { agent, reason } => {
            let pause: Pause = client
                .send(
                    post,
                    "/v1/autonomy/pause",
                    Some(serde_json::json!({ "agent": agent, "reason": reason })),
                )
                .await?;
            println!(
                "autonomy paused for {} by {} at {}",
                agent.as_deref().unwrap_or("all agents"),
                pause.by,
                pause.at.to_rfc3339()
            );
        }
        ProposalsCommand::Resume { agent } => {
            let _: serde_json::Value = client
                .send(
                    post,
                    "/v1/autonomy/resume",
                    Some(serde_json::json!({ "agent": agent })),
                )
                .await?;
            println!(
                "autonomy resumed for {}",
                agent.as_deref().unwrap_or("all agents")
            );
        }
    }
    Ok(())
}

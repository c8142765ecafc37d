//! `check`, `status`, `backup`, `restore`.

use chrono::Utc;

use super::audit::{daemon_answers, daemon_url};
use super::{BackupArgs, Cli, EXIT_INVALID, Exit, RestoreArgs, StatusArgs, load_config};
use crate::config::Config;
use crate::http::StatusReport;

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

/// `command-center check`: every problem of config, policies and prompts, then exit 2 if any.
pub fn check(cli: &Cli) -> Result<(), Exit> {
    let config = load_config(cli)?;
    let mut problems = Vec::new();
    let policies = match policies::check_dir(&config.daemon.policies_dir) {
        Ok(summary) => Some(summary),
        Err(found) => {
            problems.extend(found.into_iter().map(|problem| problem.to_string()));
            None
        }
    };
    let prompts = match agents::prompts::check_dir(&config.daemon.prompts_dir) {
        Ok(found) => Some(found),
        Err(found) => {
            problems.extend(found.into_iter().map(|problem| problem.to_string()));
            None
        }
    };
    if !problems.is_empty() {
        eprintln!(
            "{} problem{} found:",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for problem in &problems {
            eprintln!("  - {problem}");
        }
        return Err(Exit(EXIT_INVALID));
    }
    let source = crate::config::ConfigSource::locate(cli.config.as_deref());
    println!("configuration {}: ok", source.name());
    if let Some(summary) = policies {
        println!(
            "policies {}: ok ({} policies in {} files, validated against {})",
            config.daemon.policies_dir.display(),
            summary.policies,
            summary.files,
            summary.schema
        );
    }
    if let Some(prompts) = prompts {
        println!(
            "prompts {}: ok ({})",
            config.daemon.prompts_dir.display(),
            prompts
                .iter()
                .map(|prompt| prompt.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn ago(seconds: i64) -> String {
    match seconds {
        s if s < 0 => "just now".to_owned(),
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// Human rendering of a status report.
pub fn render_status(report: &StatusReport) -> String {
    let mut out = String::new();
    let uptime = agents::duration::format(std::time::Duration::from_secs(
        report.uptime_seconds.max(0) as u64,
    ));
    out.push_str(&format!(
        "Command Center {}{} — up {uptime}, {}\n",
        report.version,
        if report.demo { " (demo)" } else { "" },
        if report.ready { "ready" } else { "NOT READY" }
    ));
    let since = |time: Option<chrono::DateTime<Utc>>| match time {
        Some(time) => format!(
            "{} ({})",
            time.format("%H:%M:%S"),
            ago((report.now - time).num_seconds())
        ),
        None => "never".to_owned(),
    };
    out.push_str("\nActors\n");
    for actor in &report.actors {
        out.push_str(&format!(
            "  {:<12} {:<9} restarts {:<3} last tick {}{}\n",
            actor.name,
            actor.state.to_string(),
            actor.restarts,
            since(actor.last_success),
            actor
                .last_error
                .as_ref()
                .filter(|_| actor.state != agents::health::HealthState::Healthy)
                .map(|error| format!("\n               last error: {error}"))
                .unwrap_or_default()
        ));
    }
    out.push_str("\nSources\n");
    if report.sources.is_empty() {
        out.push_str("  (no requests yet)\n");
    }
    for source in &report.sources {
        out.push_str(&format!(
            "  {:<12} {:<9} last success {}",
            source.name,
            source.state.to_string(),
            since(source.last_success)
        ));
        if source.consecutive_failures > 0 {
            out.push_str(&format!(
                "\n               {} failure{} in a row since then; last error: {}",
                source.consecutive_failures,
                if source.consecutive_failures == 1 {
                    ""
                } else {
                    "s"
                },
                source.last_error.as_deref().unwrap_or("-")
            ));
        }
        out.push('\n');
    }
    out.push_str("\nFiring alerts\n");
    if report.firing_alerts.is_empty() {
        out.push_str("  none\n");
    }
    for alert in &report.firing_alerts {
        out.push_str(&format!(
            "  {:<8} {}  since {}\n           {}\n",
            alert.severity.to_string(),
            alert.key,
            since(Some(alert.at)),
            alert.summary
        ));
    }
    out.push_str(&format!(
        "\nPolicies: {} policies in {} files from {}, loaded {}{}\n",
        report.policies.policies,
        report.policies.files,
        report.policies.dir,
        since(Some(report.policies.loaded_at)),
        match &report.policies.rejected_change {
            Some(problems) => format!(
                "\n  a newer change was REJECTED (the set above stays in force): {}",
                problems.join("; ")
            ),
            None => String::new(),
        }
    ));
    for (scope, pause) in &report.paused {
        out.push_str(&format!(
            "AUTONOMY PAUSED for {scope} by {} since {}: {}\n",
            pause.by,
            since(Some(pause.at)),
            pause.reason
        ));
    }
    out.push_str(&format!(
        "Approvals waiting: {}\n",
        report.pending_approvals
    ));
    out.push_str(&format!(
        "Journal: {} entries, head {}\n",
        report.journal.entries,
        report
            .journal
            .head
            .as_ref()
            .map(|head| head.head_hash.as_str())
            .unwrap_or("(empty)")
    ));
    out
}

/// `command-center status`.
pub async fn status(config: Config, args: &StatusArgs) -> Result<(), Exit> {
    let url = args.url.clone().unwrap_or_else(|| daemon_url(&config));
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/v1/status", url.trim_end_matches('/')))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|error| {
            fail(format!(
                "no daemon answers at {url} (daemon.http_listen): {}. Start it with `command-center run` (or `run --demo`).",
                error.without_url()
            ))
        })?;
    let body = response
        .text()
        .await
        .map_err(|error| fail(error.without_url()))?;
    let report: StatusReport = serde_json::from_str(&body)
        .map_err(|error| fail(format!("unexpected answer from {url}: {error}")))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(fail)?);
    } else {
        print!("{}", render_status(&report));
    }
    Ok(())
}

fn describe(manifest: &memory::SnapshotManifest) -> String {
    format!(
        "{} journal entries (head {}), {} trees, taken {}",
        manifest.journal_entries,
        manifest.head_hash.as_deref().unwrap_or("(empty)"),
        manifest.trees.len(),
        manifest.created_at.to_rfc3339()
    )
}

/// `command-center backup DIR`: through the daemon when it runs (it holds the data directory),
/// else directly.
pub async fn backup(config: Config, args: &BackupArgs) -> Result<(), Exit> {
    let dir = std::path::absolute(&args.dir)
        .map_err(|error| fail(format!("{}: {error}", args.dir.display())))?;
    let client = reqwest::Client::new();
    let url = daemon_url(&config);
    let manifest: memory::SnapshotManifest = if daemon_answers(&client, &url).await {
        let response = client
            .post(format!("{url}/v1/admin/backup"))
            .json(&serde_json::json!({ "dir": dir }))
            .send()
            .await
            .map_err(|error| fail(error.without_url()))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| fail(error.without_url()))?;
        if !status.is_success() {
            return Err(fail(format!(
                "daemon refused the backup ({status}): {body}"
            )));
        }
        serde_json::from_str(&body).map_err(fail)?
    } else {
        let data_dir = config.daemon.data_dir.clone();
        let target = dir.clone();
        tokio::task::spawn_blocking(move || {
            memory::Store::open(&data_dir).and_then(|store| store.snapshot(&target))
        })
        .await
        .map_err(fail)?
        .map_err(fail)?
    };
    println!(
        "backup written to {}: {}",
        dir.display(),
        describe(&manifest)
    );
    Ok(())
}

/// `command-center restore DIR`: only with the daemon stopped.
pub fn restore(config: Config, args: &RestoreArgs) -> Result<(), Exit> {
    // Opening an existing store proves no daemon holds it; close it again before replacing it.
    if config.daemon.data_dir.join("store").exists() {
        match memory::Store::open(&config.daemon.data_dir) {
            Ok(store) => drop(store),
            Err(error) => {
                return Err(fail(format!("{error}; stop the daemon before restoring")));
            }
        }
    }
    let manifest =
        memory::Store::restore(&args.dir, &config.daemon.data_dir, args.force).map_err(fail)?;
    println!(
        "restored {} into {}: {}",
        args.dir.display(),
        config.daemon.data_dir.display(),
        describe(&manifest)
    );
    Ok(())
}

/// `command-center briefing DOMAIN [--send]`: through the running daemon.
pub async fn briefing(config: Config, domain: &str, send: bool, json: bool) -> Result<(), Exit> {
    let url = daemon_url(&config);
    let client = reqwest::Client::new();
    let briefing: crate::briefing::Briefing = super::audit::Access::remote_json(
        &client,
        client
            .post(format!("{url}/v1/briefings/{domain}"))
            .json(&crate::briefing::BriefRequest { send }),
        "briefing",
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&briefing).map_err(fail)?);
        return Ok(());
    }
    println!("{}\n\n{}", briefing.title, briefing.text);
    let mut footer = format!("\n(written by the {}", briefing.written_by);
    if let Some(reason) = &briefing.fallback_reason {
        footer.push_str(&format!(": the model could not write it: {reason}"));
    }
    footer.push(')');
    println!("{footer}");
    Ok(())
}

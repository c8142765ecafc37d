//! `command-center validators [NAME]`: the summary table, or one validator in detail.

use agents::validators_report::{ValidatorDetail, ValidatorSummary};
use chrono::Utc;

use super::Exit;
use super::audit::Access;
use crate::config::Config;

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

fn row(summary: &ValidatorSummary) -> String {
    let balance = summary
        .balance_ton
        .map(|sample| format!("{:.2}", sample.value))
        .unwrap_or_else(|| "-".to_owned());
    let change = summary
        .balance_change_24h_ton
        .map(|change| format!("{change:+.2}"))
        .unwrap_or_else(|| "-".to_owned());
    let in_set = match summary.in_current_set {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    };
    let lag = summary
        .sync_lag_seconds
        .map(|lag| format!("{lag:.0}s"))
        .unwrap_or_else(|| "-".to_owned());
    let disk = summary
        .disk_used_percent
        .values()
        .copied()
        .reduce(f64::max)
        .map(|used| format!("{used:.0}%"))
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{:<16} {:>14} {:>10} {:>6} {:>8} {:>6} {:>6}",
        summary.name,
        balance,
        change,
        in_set,
        lag,
        disk,
        summary.firing.len()
    )
}

/// The table people read.
pub fn render_table(summaries: &[ValidatorSummary]) -> String {
    let mut out = format!(
        "{:<16} {:>14} {:>10} {:>6} {:>8} {:>6} {:>6}\n",
        "VALIDATOR", "BALANCE TON", "24H", "IN SET", "LAG", "DISK", "ALERTS"
    );
    for summary in summaries {
        out.push_str(&row(summary));
        out.push('\n');
    }
    for summary in summaries {
        for alert in &summary.firing {
            out.push_str(&format!(
                "  {} {:<8} {}\n",
                summary.name, alert.severity, alert.summary
            ));
        }
    }
    out
}

pub async fn run(config: Config, name: Option<String>, json: bool) -> Result<(), Exit> {
    let access = Access::open(&config).await?;
    match name {
        None => {
            let summaries: Vec<ValidatorSummary> = match &access {
                Access::Local(store) => {
                    agents::validators_report::summaries(store, Utc::now()).map_err(fail)?
                }
                Access::Remote { client, url } => client
                    .get(format!("{url}/v1/validators"))
                    .send()
                    .await
                    .map_err(|error| fail(error.without_url()))?
                    .json()
                    .await
                    .map_err(|error| fail(error.without_url()))?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summaries).map_err(fail)?
                );
            } else if summaries.is_empty() {
                eprintln!("no validator data yet: enable [agents.validators] and list validators");
            } else {
                print!("{}", render_table(&summaries));
            }
        }
        Some(name) => {
            let detail: Option<ValidatorDetail> = match &access {
                Access::Local(store) => {
                    agents::validators_report::detail(store, &name, Utc::now()).map_err(fail)?
                }
                Access::Remote { client, url } => {
                    let response = client
                        .get(format!("{url}/v1/validators/{name}"))
                        .send()
                        .await
                        .map_err(|error| fail(error.without_url()))?;
                    if response.status() == reqwest::StatusCode::NOT_FOUND {
                        None
                    } else {
                        Some(
                            response
                                .json()
                                .await
                                .map_err(|error| fail(error.without_url()))?,
                        )
                    }
                }
            };
            let Some(detail) = detail else {
                return Err(fail(format!(
                    "no data for a validator named {name:?}; `command-center validators` lists them"
                )));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&detail).map_err(fail)?);
            } else {
                print!("{}", render_table(std::slice::from_ref(&detail.summary)));
                println!("\nbalance, last of each hour (TON):");
                for sample in detail.balance_hourly.iter().rev().take(24).rev() {
                    println!(
                        "  {}  {:.2}",
                        sample.at.format("%Y-%m-%d %H:00"),
                        sample.value
                    );
                }
            }
        }
    }
    Ok(())
}

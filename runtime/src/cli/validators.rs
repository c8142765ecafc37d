//! `command-center validators [NAME]`: the summary table, or one validator in detail;
//! `command-center earnings` and `command-center ranking`.

use agents::validators_report::{
    EarningsReport, EarningsRow, Period, RankingRow, ValidatorDetail, ValidatorSummary,
};
use chrono::Utc;
use serde::de::DeserializeOwned;

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
    let rank = match (summary.rank, summary.set_size) {
        (Some(rank), Some(size)) => format!("{rank}/{size}"),
        _ => "-".to_owned(),
    };
    let efficiency = summary
        .efficiency_percent
        .map(|value| format!("{value:.1}%"))
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{:<16} {:>14} {:>10} {:>6} {:>8} {:>7} {:>8} {:>6} {:>6}",
        summary.name,
        balance,
        change,
        in_set,
        rank,
        efficiency,
        lag,
        disk,
        summary.firing.len()
    )
}

/// One validator's further facts, one per line (what the table has no room for).
pub fn render_facts(summary: &ValidatorSummary) -> String {
    let mut out = String::new();
    let mut fact = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            out.push_str(&format!("  {label:<22} {value}\n"));
        }
    };
    fact(
        "next round",
        summary.in_next_set.map(|elected| {
            if elected {
                "elected".to_owned()
            } else {
                "NOT elected".to_owned()
            }
        }),
    );
    fact(
        "stake",
        summary.stake_ton.map(|stake| format!("{stake:.2} TON")),
    );
    fact(
        "network share",
        summary.share_percent.map(|share| format!("{share:.3}%")),
    );
    fact(
        "memory available",
        summary.memory_available_percent.map(|m| format!("{m:.1}%")),
    );
    fact(
        "cpu busy",
        summary.cpu_busy_percent.map(|c| format!("{c:.1}%")),
    );
    for (mountpoint, growth) in &summary.disk_growth_percent_per_day {
        fact(
            &format!("db growth {mountpoint}"),
            Some(format!("{growth:+.2} points/day")),
        );
    }
    out
}

/// The table people read.
pub fn render_table(summaries: &[ValidatorSummary]) -> String {
    let mut out = format!(
        "{:<16} {:>14} {:>10} {:>6} {:>8} {:>7} {:>8} {:>6} {:>6}\n",
        "VALIDATOR", "BALANCE TON", "24H", "IN SET", "RANK", "EFFIC", "LAG", "DISK", "ALERTS"
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
                print!("{}", render_facts(&detail.summary));
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

async fn fetch<T: DeserializeOwned>(
    access: &Access,
    path: &str,
    local: impl FnOnce(&memory::Store) -> Result<T, memory::StoreError>,
) -> Result<T, Exit> {
    match access {
        Access::Local(store) => local(store).map_err(fail),
        Access::Remote { client, url } => {
            let response = client
                .get(format!("{url}{path}"))
                .send()
                .await
                .map_err(|error| fail(error.without_url()))?;
            if !response.status().is_success() {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                return Err(fail(format!("the daemon answered {status}: {body}")));
            }
            response
                .json()
                .await
                .map_err(|error| fail(error.without_url()))
        }
    }
}

fn money(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"))
}

fn earnings_line(row: &EarningsRow) -> String {
    format!(
        "{:<16} {:>12.2} {:>12} {:>6} {:>12.2} {:>8} {:>7}",
        row.name,
        row.reward_ton,
        money(row.reward_usd),
        row.rounds,
        row.previous_reward_ton,
        row.trend_percent
            .map_or_else(|| "-".to_owned(), |trend| format!("{trend:+.1}%")),
        row.apy_percent
            .map_or_else(|| "-".to_owned(), |apy| format!("{apy:.2}%")),
    )
}

/// The earnings table people read.
pub fn render_earnings(report: &EarningsReport) -> String {
    let mut out = format!(
        "earnings, last {} ({} to {})\n{:<16} {:>12} {:>12} {:>6} {:>12} {:>8} {:>7}\n",
        report.period.as_str(),
        report.from.format("%Y-%m-%d %H:%M"),
        report.to.format("%Y-%m-%d %H:%M UTC"),
        "VALIDATOR",
        "REWARD TON",
        "USD",
        "ROUNDS",
        "PREVIOUS",
        "TREND",
        "APY"
    );
    for row in &report.validators {
        out.push_str(&earnings_line(row));
        out.push('\n');
    }
    out.push_str(&earnings_line(&report.total));
    out.push('\n');
    if !report.daily_ton.is_empty() {
        out.push_str("\nper day (TON):\n");
        for day in &report.daily_ton {
            out.push_str(&format!(
                "  {}  {:.2}\n",
                day.at.format("%Y-%m-%d"),
                day.value
            ));
        }
    }
    out
}

pub async fn earnings(config: Config, period: &str, json: bool) -> Result<(), Exit> {
    let period = Period::parse(period).map_err(|message| {
        eprintln!("error: --period: {message}");
        Exit(2)
    })?;
    let access = Access::open(&config).await?;
    let report: EarningsReport = fetch(
        &access,
        &format!("/v1/earnings?period={}", period.as_str()),
        |store| agents::validators_report::earnings(store, period, Utc::now()),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(fail)?);
    } else {
        print!("{}", render_earnings(&report));
    }
    Ok(())
}

/// The ranking table people read.
pub fn render_ranking(rows: &[RankingRow]) -> String {
    let mut out = format!(
        "{:<16} {:>9} {:>9} {:>9} {:>14}\n",
        "VALIDATOR", "RANK", "PREVIOUS", "SHARE", "STAKE TON"
    );
    for row in rows {
        let rank = match (row.rank, row.set_size) {
            (Some(rank), Some(size)) => format!("{rank}/{size}"),
            _ if row.in_current_set == Some(false) => "not in set".to_owned(),
            _ => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<16} {:>9} {:>9} {:>9} {:>14}\n",
            row.name,
            rank,
            row.previous_rank
                .map_or_else(|| "-".to_owned(), |rank| rank.to_string()),
            row.share_percent
                .map_or_else(|| "-".to_owned(), |share| format!("{share:.3}%")),
            money(row.stake_ton),
        ));
    }
    out
}

pub async fn ranking(config: Config, json: bool) -> Result<(), Exit> {
    let access = Access::open(&config).await?;
    let rows: Vec<RankingRow> = fetch(&access, "/v1/ranking", |store| {
        agents::validators_report::ranking(store, Utc::now())
    })
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(fail)?);
    } else if rows.is_empty() {
        eprintln!("no validator data yet: enable [agents.validators] and list validators");
    } else {
        print!("{}", render_ranking(&rows));
    }
    Ok(())
}

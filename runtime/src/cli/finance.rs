//! `command-center finance import|add|entries|rates|report|forecast|backtest`, on the data
//! directory (the daemon stopped; while it runs, the same is under `/v1/finance/...`).

use std::path::Path;

use agents::finance::import::{AmountInput, Mapping, NewEntry};
use agents::finance::outlook::Outlook;
use agents::finance::report::{render_csv, render_table};
use chrono::{NaiveDate, Utc};
use memory::Store;
use memory::ledger::EntrySource;
use rust_decimal::Decimal;

use super::{EXIT_INVALID, Exit, FinanceCommand, RatesCommand, ReportFormat};
use crate::config::Config;
use crate::finance::{self, FinanceError};

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit(1)
}

fn finance_error(error: FinanceError) -> Exit {
    match error {
        FinanceError::Invalid(message) => {
            eprintln!("error: {message}");
            Exit(EXIT_INVALID)
        }
        FinanceError::Store(error) => fail(error),
    }
}

fn open_store(config: &Config) -> Result<Store, Exit> {
    Store::open(&config.daemon.data_dir).map_err(|error| {
        fail(format!(
            "{error}\n(while the daemon runs, use its API: /v1/finance/report, /v1/finance/entries, \
             /v1/finance/import)"
        ))
    })
}

fn read(path: &Path) -> Result<Vec<u8>, Exit> {
    std::fs::read(path).map_err(|error| {
        eprintln!("error: cannot read {}: {error}", path.display());
        Exit(EXIT_INVALID)
    })
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Exit> {
    println!("{}", serde_json::to_string_pretty(value).map_err(fail)?);
    Ok(())
}

fn actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|name| !name.is_empty())
        .map_or_else(|| "cli".to_owned(), |name| format!("cli:{name}"))
}

fn parse_day(text: &str, flag: &str) -> Result<NaiveDate, Exit> {
    text.parse().map_err(|_| {
        eprintln!("error: {flag} {text:?} is not a date (YYYY-MM-DD)");
        Exit(EXIT_INVALID)
    })
}

pub fn run(config: Config, command: &FinanceCommand) -> Result<(), Exit> {
    let finance = &config.finance;
    let today = Utc::now().date_naive();
    match command {
        FinanceCommand::Import {
            file,
            mapping,
            dry_run,
            json,
        } => {
            let mapping = Mapping::load(mapping, finance).map_err(|error| {
                eprintln!("error: {error}");
                Exit(EXIT_INVALID)
            })?;
            let bytes = read(file)?;
            let store = open_store(&config)?;
            let name = file.display().to_string();
            let summary = finance::import_csv(&store, &bytes, &name, &mapping, *dry_run, &actor())
                .map_err(finance_error)?;
            if *json {
                return print_json(&summary);
            }
            println!(
                "{}{name}: {} rows, {} new, {} already in the ledger, {} unattributed",
                if *dry_run {
                    "dry run, nothing stored: "
                } else {
                    ""
                },
                summary.rows,
                summary.new_entries,
                summary.duplicates,
                summary.unattributed
            );
            if let (Some(first), Some(last)) = (summary.first_date, summary.last_date) {
                println!("dates: {first} to {last}");
            }
            for (currency, amount) in &summary.income {
                println!("money in:  {amount} {currency}");
            }
            for (currency, amount) in &summary.expenses {
                println!("money out: {amount} {currency}");
            }
            for (line, count) in &summary.by_attribution {
                println!("  {line}: {count}");
            }
            if *dry_run {
                for entry in &summary.preview {
                    println!(
                        "  {}  {:>12} {}  {:<28} {}",
                        entry.date,
                        entry.amount,
                        entry.currency,
                        entry.counterparty,
                        entry
                            .stream
                            .as_deref()
                            .or(entry.category.as_deref())
                            .unwrap_or("(unattributed)")
                    );
                }
            }
            Ok(())
        }
        FinanceCommand::Add {
            date,
            amount,
            currency,
            stream,
            category,
            subcategory,
            counterparty,
            description,
            tag,
            json,
        } => {
            let entry = NewEntry {
                date: match date {
                    Some(date) => parse_day(date, "--date")?,
                    None => today,
                },
                amount: AmountInput::Text(amount.clone()),
                currency: currency
                    .clone()
                    .unwrap_or_else(|| finance.reporting_currency.clone()),
                stream: stream.clone(),
                category: category.clone(),
                subcategory: subcategory.clone(),
                counterparty: counterparty.clone().unwrap_or_default(),
                description: description.clone().unwrap_or_default(),
                tags: tag.clone(),
                id: None,
            };
            let store = open_store(&config)?;
            let by = actor();
            let outcome = finance::add_entries(&store, finance, vec![entry], &by, || {
                EntrySource::Manual { by: by.clone() }
            })
            .map_err(finance_error)?;
            if *json {
                return print_json(&outcome);
            }
            if outcome.inserted == 1 {
                println!("added to the ledger");
            } else {
                println!("already in the ledger (same date, amount, counterparty and description)");
            }
            Ok(())
        }
        FinanceCommand::Expense {
            amount,
            currency,
            category,
            subcategory,
            counterparty,
            description,
            date,
            tag,
            rationale,
            token_file,
            json,
        } => {
            let expense = crate::executors::ExpenseParams {
                amount: amount.clone(),
                currency: currency
                    .clone()
                    .unwrap_or_else(|| finance.reporting_currency.clone()),
                category: category.clone(),
                subcategory: subcategory.clone(),
                counterparty: counterparty.clone(),
                description: description.clone(),
                date: date.clone(),
                tags: tag.clone(),
            };
            // The API takes the expense's fields and `rationale` side by side.
            let mut body = serde_json::to_value(&expense).map_err(fail)?;
            body["rationale"] = serde_json::Value::String(rationale.clone());
            super::block_on(async {
                let client = super::gate::Client::new(&config, token_file.as_deref())?;
                let record: crate::gate::ProposalRecord = client
                    .send(reqwest::Method::POST, "/v1/finance/expenses", Some(body))
                    .await?;
                if *json {
                    return print_json(&record);
                }
                println!("{}", super::gate::format_record(&record));
                println!("{}", expense_outcome(&record));
                Ok(())
            })
        }
        FinanceCommand::Onchain { json } => {
            let sources =
                crate::finance::onchain::OnchainSources::from_config(&config).map_err(fail)?;
            let store = open_store(&config)?;
            let summary = super::block_on_value(sources.sync(&store, finance, &actor()))?
                .map_err(finance_error)?;
            if *json {
                return print_json(&summary);
            }
            print!("{}", crate::finance::onchain::render(&summary));
            if summary
                .accounts
                .iter()
                .any(|account| account.error.is_some())
            {
                return Err(Exit(1));
            }
            Ok(())
        }
        FinanceCommand::Balances {
            file,
            dry_run,
            json,
        } => {
            let bytes = read(file)?;
            let store = open_store(&config)?;
            let name = file.display().to_string();
            let summary = crate::finance::portfolio::import_balances(
                &store,
                &bytes,
                &name,
                *dry_run,
                &actor(),
            )
            .map_err(finance_error)?;
            if *json {
                return print_json(&summary);
            }
            println!(
                "{}{name}: {} balances{}",
                if *dry_run {
                    "dry run, nothing stored: "
                } else {
                    ""
                },
                summary.rows,
                if *dry_run {
                    String::new()
                } else {
                    format!(", {} stored", summary.stored)
                }
            );
            Ok(())
        }
        FinanceCommand::Portfolio {
            days,
            offline,
            json,
        } => {
            let store = open_store(&config)?;
            let view = if *offline {
                let from = today
                    .checked_sub_days(chrono::Days::new(*days))
                    .unwrap_or(today);
                let (report, plan) =
                    crate::finance::portfolio::report(&store, finance, from, today)
                        .map_err(finance_error)?;
                crate::finance::portfolio::PortfolioView {
                    report,
                    plan,
                    staking: None,
                    wallets: Vec::new(),
                    problems: Vec::new(),
                }
            } else {
                let sources =
                    crate::finance::onchain::OnchainSources::from_config(&config).map_err(fail)?;
                super::block_on_value(crate::finance::portfolio::view(
                    &store, finance, &sources, *days, today,
                ))?
                .map_err(finance_error)?
            };
            if *json {
                return print_json(&view);
            }
            print!("{}", agents::finance::portfolio::render_table(&view.report));
            for step in &view.plan {
                let description = match step {
                    agents::finance::portfolio::RebalanceStep::Transfer { description, .. }
                    | agents::finance::portfolio::RebalanceStep::Reduce { description, .. } => {
                        description
                    }
                };
                println!("rebalance: {description}");
            }
            if let Some(staking) = &view.staking {
                println!("staking: {}", staking.suggestion);
            }
            for wallet in view
                .wallets
                .iter()
                .filter(|w| !w.ignored_jettons.is_empty())
            {
                println!(
                    "not counted in {}: {}",
                    wallet.label,
                    wallet.ignored_jettons.join("; ")
                );
            }
            for problem in &view.problems {
                eprintln!("warning: {problem}");
            }
            Ok(())
        }
        FinanceCommand::Entries { from, to, json } => {
            let from = from
                .as_deref()
                .map(|d| parse_day(d, "--from"))
                .transpose()?;
            let to = to.as_deref().map(|d| parse_day(d, "--to")).transpose()?;
            let store = open_store(&config)?;
            let entries = store.ledger().entries(from, to).map_err(fail)?;
            if *json {
                return print_json(&entries);
            }
            for entry in &entries {
                println!(
                    "{}  {:>14} {:<5} {:<24} {:<28} {}",
                    entry.date,
                    entry.amount,
                    entry.currency,
                    entry
                        .stream
                        .as_deref()
                        .map(|s| format!("revenue:{s}"))
                        .or_else(|| entry.category.as_deref().map(|c| format!("expense:{c}")))
                        .unwrap_or_else(|| "(unattributed)".to_owned()),
                    entry.counterparty,
                    entry.id
                );
            }
            println!("{} entries", entries.len());
            Ok(())
        }
        FinanceCommand::Rates(RatesCommand::Import { file }) => {
            let bytes = read(file)?;
            let name = file.display().to_string();
            let rates = finance::parse_rates(&bytes, &name).map_err(finance_error)?;
            let store = open_store(&config)?;
            let count =
                finance::store_rates(&store, &rates, &actor(), &name).map_err(finance_error)?;
            println!("{count} rates stored from {name}");
            Ok(())
        }
        FinanceCommand::Rates(RatesCommand::Fetch { from, to }) => {
            let to = match to {
                Some(to) => parse_day(to, "--to")?,
                None => today,
            };
            let from = match from {
                Some(from) => parse_day(from, "--from")?,
                None => to.checked_sub_days(chrono::Days::new(365)).unwrap_or(to),
            };
            if from > to {
                eprintln!("error: --from {from} is after --to {to}");
                return Err(Exit(EXIT_INVALID));
            }
            let rates = fetch_rates(&config, from, to)?;
            let store = open_store(&config)?;
            let count = finance::store_rates(&store, &rates, &actor(), "coingecko")
                .map_err(finance_error)?;
            println!("{count} daily rates stored from CoinGecko ({from} to {to})");
            Ok(())
        }
        FinanceCommand::Report { from, to, format } => {
            let store = open_store(&config)?;
            let report = finance::report(&store, finance, from.as_deref(), to.as_deref(), today)
                .map_err(finance_error)?;
            match format {
                ReportFormat::Table => print!("{}", render_table(&report)),
                ReportFormat::Json => print_json(&report)?,
                ReportFormat::Csv => print!("{}", render_csv(&report).map_err(fail)?),
            }
            Ok(())
        }
        FinanceCommand::Forecast {
            horizon,
            history,
            json,
        } => {
            let store = open_store(&config)?;
            let outlook = finance::outlook(&store, finance, today, *history, *horizon)
                .map_err(finance_error)?;
            if *json {
                return print_json(&outlook);
            }
            print!("{}", render_outlook(&outlook));
            Ok(())
        }
        FinanceCommand::Backtest {
            horizon,
            origins,
            json,
        } => {
            let store = open_store(&config)?;
            let run = finance::backtest(&store, finance, today, *horizon, *origins, &actor())
                .map_err(finance_error)?;
            if *json {
                return print_json(&run);
            }
            println!(
                "rolling-origin backtest, {} origins × {} days, MASE against the weekly seasonal naive forecast",
                run.origins, run.horizon_days
            );
            println!(
                "{:<32} {:>10} {:>7} {:>8} {:>8}  model",
                "series", "MAE", "MASE", "cov 80%", "cov 95%"
            );
            for (name, report) in &run.results {
                println!(
                    "{name:<32} {:>10.2} {:>7.2} {:>7.0}% {:>7.0}%  {}",
                    report.mae,
                    report.mase,
                    report.coverage80 * 100.0,
                    report.coverage95 * 100.0,
                    report.model
                );
            }
            for (name, reason) in &run.skipped {
                println!("{name:<32} skipped: {reason}");
            }
            let history = finance::backtest_history(&store).map_err(finance_error)?;
            println!(
                "stored; {} run(s) kept (`command-center finance backtest --json`, GET /v1/finance/backtest)",
                history.len()
            );
            Ok(())
        }
    }
}

fn render_outlook(outlook: &Outlook) -> String {
    let mut out = format!(
        "forecast from {} for {} days, {} (80% band)\n",
        outlook.as_of, outlook.horizon_days, outlook.currency
    );
    out.push_str(&format!(
        "{:<32} {:>12} {:>26} {:>26} {:>26}  model\n",
        "series", "last 30 d", "next 30 d", "next 60 d", "next 90 d"
    ));
    for series in &outlook.series {
        if series.name == "balance" {
            continue;
        }
        let cells: Vec<String> = [30, 60, 90]
            .iter()
            .map(|days| {
                series
                    .totals
                    .iter()
                    .find(|total| total.days == *days)
                    .map_or_else(
                        || "-".to_owned(),
                        |total| {
                            format!(
                                "{:.0} [{:.0}, {:.0}]",
                                total.point, total.lower80, total.upper80
                            )
                        },
                    )
            })
            .collect();
        out.push_str(&format!(
            "{:<32} {:>12.0} {:>26} {:>26} {:>26}  {}\n",
            series.name,
            series.last_30_days,
            cells[0],
            cells[1],
            cells[2],
            series.forecast.as_ref().map_or_else(
                || series.skipped.clone().unwrap_or_default(),
                |f| f.model.clone()
            )
        ));
    }
    if let Some(balance) = outlook.series.iter().find(|s| s.name == "balance")
        && let Some(forecast) = &balance.forecast
    {
        for days in [30usize, 60, 90] {
            if let Some(index) = days.checked_sub(1).filter(|i| *i < forecast.point.len()) {
                out.push_str(&format!(
                    "cash in {days} days: {:.0} (80%: {:.0} to {:.0}; 95%: {:.0} to {:.0})\n",
                    forecast.point[index],
                    forecast.lower80[index],
                    forecast.upper80[index],
                    forecast.lower95[index],
                    forecast.upper95[index]
                ));
            }
        }
    }
    let months = |value: Option<f64>| {
        value.map_or_else(
            || "beyond the horizon".to_owned(),
            |m| format!("{m:.1} months"),
        )
    };
    match &outlook.runway {
        Some(runway) => out.push_str(&format!(
            "runway: {} (80% band: {} to {})\n",
            months(runway.months_point),
            months(runway.months_low),
            months(runway.months_high)
        )),
        None => {
            out.push_str("runway: unknown (set finance.opening_balance and finance.opening_date)\n")
        }
    }
    if let Some(breach) = &outlook.floor_breach {
        out.push_str(&format!(
            "ALERT: cash may fall below the floor of {:.0} {} by {} ({} days ahead, 80% band)\n",
            breach.floor, outlook.currency, breach.date, breach.days_ahead
        ));
    }
    for alert in agents::finance::outlook::alerts(outlook, 7, Utc::now()) {
        if alert.rule != "cash_floor" {
            out.push_str(&format!("ALERT: {}\n", alert.summary));
        }
    }
    if !outlook.missing_rates.is_empty() {
        let count: usize = outlook.missing_rates.iter().map(|m| m.entries).sum();
        out.push_str(&format!(
            "warning: {count} entries left out for want of a rate (`command-center finance rates import`)\n"
        ));
    }
    out
}

/// One rate per coin and day (the day's first point: 00:00 UTC for hourly and daily data),
/// for every `finance.coin_ids` entry, in the reporting currency.
fn fetch_rates(
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<memory::ledger::Rate>, Exit> {
    let source = &config.sources.coingecko;
    let client = tools::coingecko::CoinGeckoClient::new(
        &source.base_url,
        source.plan,
        source.api_key.clone(),
        source.requests_per_second,
        source.retry.policy(),
    )
    .map_err(fail)?;
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = to
        .succ_opt()
        .unwrap_or(to)
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        - chrono::Duration::seconds(1);
    let quote = config.finance.reporting_currency.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let mut rates = Vec::new();
    for (code, id) in &config.finance.coin_ids {
        let points = runtime
            .block_on(client.market_chart_range(id, &quote, start, end))
            .map_err(|error| fail(format!("{code} ({id}): {error}")))?;
        let mut days = std::collections::BTreeMap::new();
        for (at, price) in points.value {
            days.entry(at.date_naive()).or_insert(price);
        }
        for (date, price) in days {
            let Ok(rate) = Decimal::try_from(price) else {
                continue;
            };
            rates.push(memory::ledger::Rate {
                base: code.clone(),
                quote: quote.clone(),
                date,
                rate: rate.round_dp(8),
            });
        }
        eprintln!(
            "{code}: prices for {} days",
            rates.iter().filter(|r| &r.base == code).count()
        );
    }
    Ok(rates)
}

/// What happened to a submitted expense, in one sentence.
pub(crate) fn expense_outcome(record: &crate::gate::ProposalRecord) -> String {
    use crate::gate::ProposalState;
    let id = &record.proposal.id;
    match record.state {
        ProposalState::Pending => format!(
            "waiting for {} approval(s): `command-center proposals approve {id}` by a cfo or ceo",
            (record.approvals_needed() as usize).saturating_sub(record.approvals.len())
        ),
        ProposalState::Executed => {
            format!(
                "booked in the ledger without approval (policy: {})",
                crate::cli::policy::describe(&record.decision)
            )
        }
        ProposalState::Denied => {
            format!("denied: {}", crate::cli::policy::describe(&record.decision))
        }
        other => other.as_str().to_owned(),
    }
}

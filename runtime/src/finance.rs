//! The finance domain in the runtime: imports, manual entries, rates, reports, forecasts and
//! backtests over the store, each write journaled; the CLI (on the data directory) and the
//! JSON API (in the daemon) both call these.

use std::sync::Arc;

use agents::finance::FinanceConfig;
use agents::finance::import::{ImportSummary, Mapping, NewEntry, StatementMapping};
use agents::finance::outlook::{BacktestRun, Outlook};
use agents::finance::report::{MonthlyReport, month_of, parse_month};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Months, NaiveDate, Utc};
use memory::ledger::{EntrySource, InsertOutcome, Rate};
use memory::{NewEntry as JournalNewEntry, Store, StoreError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, AppState, json_body};

pub mod onchain;
pub mod portfolio;

#[cfg(test)]
mod tests;

/// What went wrong, for the CLI's message and the API's status code.
#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// The request or file is wrong; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<agents::finance::import::ImportError> for FinanceError {
    fn from(error: agents::finance::import::ImportError) -> Self {
        match error {
            agents::finance::import::ImportError::Store(error) => FinanceError::Store(error),
            other => FinanceError::Invalid(other.to_string()),
        }
    }
}

fn journal(store: &Store, actor: &str, kind: &str, subject: &str, body: serde_json::Value) {
    let entry = JournalNewEntry {
        actor: actor.to_owned(),
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        body,
    };
    if let Err(error) = store.journal().append_blocking(entry) {
        tracing::error!(%error, kind, "could not journal a finance change");
    }
}

/// Imports (or previews) a statement; journals `finance.imported` when something was stored.
pub fn import_csv(
    store: &Store,
    bytes: &[u8],
    file: &str,
    mapping: &Mapping,
    dry_run: bool,
    actor: &str,
) -> Result<ImportSummary, FinanceError> {
    let summary =
        agents::finance::import::import_statement(store.ledger(), bytes, file, mapping, dry_run)?;
    if !dry_run {
        journal(
            store,
            actor,
            "finance.imported",
            file,
            serde_json::json!({
                "account": mapping.spec().account,
                "rows": summary.rows,
                "new_entries": summary.new_entries,
                "duplicates": summary.duplicates,
                "first_date": summary.first_date,
                "last_date": summary.last_date,
            }),
        );
    }
    Ok(summary)
}

/// Checks every entry first (all problems, each with its index) and stores all or none.
pub fn add_entries(
    store: &Store,
    config: &FinanceConfig,
    entries: Vec<NewEntry>,
    actor: &str,
    source: impl Fn() -> EntrySource,
) -> Result<InsertOutcome, FinanceError> {
    if entries.is_empty() {
        return Err(FinanceError::Invalid("no entries given".to_owned()));
    }
    let mut problems = Vec::new();
    let mut ready = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry.into_entry(config, actor, source()) {
            Ok(entry) => ready.push(entry),
            Err(found) => problems.extend(
                found
                    .into_iter()
                    .map(|problem| format!("entries[{index}]: {problem}")),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(FinanceError::Invalid(format!(
            "nothing stored: {}",
            problems.join("; ")
        )));
    }
    let outcome = store.ledger().insert_batch(&ready)?;
    let ids: Vec<&str> = ready.iter().map(|entry| entry.id.as_str()).collect();
    journal(
        store,
        actor,
        "finance.entries_added",
        "ledger",
        serde_json::json!({ "ids": ids, "inserted": outcome.inserted, "duplicates": outcome.duplicates.len() }),
    );
    Ok(outcome)
}

/// Reads a rates file: CSV with the header `date,base,quote,rate` (ISO dates, `.` decimals).
pub fn parse_rates(bytes: &[u8], file: &str) -> Result<Vec<Rate>, FinanceError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(agents::finance::import::strip_bom(bytes));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|error| FinanceError::Invalid(format!("{file}: cannot read the header: {error}")))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    if headers != ["date", "base", "quote", "rate"] {
        return Err(FinanceError::Invalid(format!(
            "{file}:1: the header must be `date,base,quote,rate`, not `{}`",
            headers.join(",")
        )));
    }
    let mut rates = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                problems.push(format!("{file}:{line}: {error}"));
                continue;
            }
        };
        let field = |at: usize| record.get(at).unwrap_or("");
        let date = field(0).parse::<NaiveDate>();
        let rate = field(3).parse::<Decimal>();
        let (base, quote) = (field(1).to_ascii_uppercase(), field(2).to_ascii_uppercase());
        match (date, rate) {
            (Ok(date), Ok(rate))
                if rate > Decimal::ZERO
                    && agents::finance::is_currency_code(&base)
                    && agents::finance::is_currency_code(&quote) =>
            {
                rates.push(Rate {
                    base,
                    quote,
                    date,
                    rate,
                });
            }
            _ => problems.push(format!(
                "{file}:{line}: expected YYYY-MM-DD,CODE,CODE,positive rate; got {:?}",
                record.iter().collect::<Vec<_>>().join(",")
            )),
        }
    }
    if problems.is_empty() {
        Ok(rates)
    } else {
        Err(FinanceError::Invalid(format!(
            "nothing stored:\n{}",
            problems.join("\n")
        )))
    }
}

pub fn store_rates(
    store: &Store,
    rates: &[Rate],
    actor: &str,
    origin: &str,
) -> Result<usize, FinanceError> {
    let count = store.ledger().put_rates(rates)?;
    journal(
        store,
        actor,
        "finance.rates_stored",
        origin,
        serde_json::json!({ "rates": count }),
    );
    Ok(count)
}

/// The report's months: `from..=to` as `YYYY-MM`, by default the last 12 months to today's.
pub fn report(
    store: &Store,
    config: &FinanceConfig,
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<MonthlyReport, FinanceError> {
    let to = match to {
        Some(to) => parse_month(to).map_err(FinanceError::Invalid)?,
        None => parse_month(&month_of(today)).map_err(FinanceError::Invalid)?,
    };
    let from = match from {
        Some(from) => parse_month(from).map_err(FinanceError::Invalid)?,
        None => to.checked_sub_months(Months::new(11)).unwrap_or(to),
    };
    if from > to {
        return Err(FinanceError::Invalid(format!(
            "--from {} is after --to {}",
            month_of(from),
            month_of(to)
        )));
    }
    Ok(agents::finance::report::monthly_report(
        store.ledger(),
        config,
        from,
        to,
        today,
    )?)
}

/// The day forecasts start from: the newest entry's date (today's entries are rarely all in
/// yet, and a half-booked day reads as a revenue drop), today when the ledger is empty.
pub fn latest_day(store: &Store, today: NaiveDate) -> Result<NaiveDate, FinanceError> {
    Ok(store
        .ledger()
        .entries(None, Some(today))?
        .last()
        .map_or(today, |entry| entry.date))
}

/// Longest forecast horizon, in days.
pub const MAX_HORIZON_DAYS: usize = 365;

/// Forecasts from the newest entry ([`latest_day`]) on or before `today`.
pub fn outlook(
    store: &Store,
    config: &FinanceConfig,
    today: NaiveDate,
    history_days: u64,
    horizon_days: usize,
) -> Result<Outlook, FinanceError> {
    let as_of = latest_day(store, today)?;
    if horizon_days == 0 || horizon_days > MAX_HORIZON_DAYS {
        return Err(FinanceError::Invalid(format!(
            "horizon must be 1 to {MAX_HORIZON_DAYS} days"
        )));
    }
    Ok(agents::finance::outlook::outlook(
        store.ledger(),
        config,
        as_of,
        history_days,
        horizon_days,
    )?)
}

/// State key of the newest backtest run; each run is also kept under `finance/backtest/<date>`.
pub const LATEST_BACKTEST: &str = "finance/backtest/latest";

/// Runs the rolling-origin backtest of every series, stores it (latest and by date) and
/// journals `finance.backtest` with each series' MASE and coverage.
pub fn backtest(
    store: &Store,
    config: &FinanceConfig,
    today: NaiveDate,
    horizon_days: usize,
    origins: usize,
    actor: &str,
) -> Result<BacktestRun, FinanceError> {
    let as_of = latest_day(store, today)?;
    if horizon_days == 0 || origins == 0 {
        return Err(FinanceError::Invalid(
            "horizon and origins must be at least 1".to_owned(),
        ));
    }
    let run = agents::finance::outlook::backtest_all(
        store.ledger(),
        config,
        as_of,
        730,
        horizon_days,
        origins,
        Utc::now(),
    )?;
    store.state().put(LATEST_BACKTEST, &run)?;
    store
        .state()
        .put(&format!("finance/backtest/{as_of}"), &run)?;
    let summary: serde_json::Map<String, serde_json::Value> = run
        .results
        .iter()
        .map(|(name, report)| {
            (
                name.clone(),
                serde_json::json!({
                    "mae": report.mae,
                    "mase": report.mase,
                    "coverage80": report.coverage80,
                    "coverage95": report.coverage95,
                }),
            )
        })
        .collect();
    journal(
        store,
        actor,
        "finance.backtest",
        &as_of.to_string(),
        serde_json::json!({
            "horizon_days": horizon_days,
            "origins": origins,
            "results": summary,
            "skipped": run.skipped,
        }),
    );
    Ok(run)
}

/// Every stored backtest run, oldest first: how forecast accuracy moves over time.
pub fn backtest_history(store: &Store) -> Result<Vec<BacktestRun>, FinanceError> {
    Ok(store
        .state()
        .scan_prefix::<BacktestRun>("finance/backtest/2")?
        .into_iter()
        .map(|(_, run)| run)
        .collect())
}

/// Runs the monthly backtest when this month has none yet; returns whether it ran.
pub fn backtest_if_due(
    store: &Store,
    config: &FinanceConfig,
    today: NaiveDate,
) -> Result<bool, FinanceError> {
    const LAST_MONTH: &str = "finance/backtest_month";
    let month = month_of(today);
    let last: Option<String> = store.state().get(LAST_MONTH)?;
    if last.as_deref() == Some(month.as_str()) || store.ledger().is_empty() {
        return Ok(false);
    }
    backtest(store, config, today, 30, 3, "scheduler")?;
    store.state().put(LAST_MONTH, &month)?;
    Ok(true)
}

/// A periodic task's clock: the first tick at once, then every `period` (a late tick delays
/// the next rather than bunching up), until `stop` turns true.
pub(crate) struct Every {
    ticker: tokio::time::Interval,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Every {
    pub(crate) fn new(
        period: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { ticker, stop }
    }

    /// Waits for the next tick: false once `stop` turned true (or its sender is gone).
    pub(crate) async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.ticker.tick() => {}
            _ = self.stop.changed() => return false,
        }
        !*self.stop.borrow()
    }
}

/// The daemon's monthly backtest: checks once an hour (and at start) whether this month has a
/// stored run, and runs one when not, until `stop` turns true.
pub async fn monthly_backtests(
    store: Store,
    config: Arc<FinanceConfig>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = Every::new(std::time::Duration::from_secs(3600), stop);
    while every.tick().await {
        let (store, config) = (store.clone(), Arc::clone(&config));
        let today = Utc::now().date_naive();
        match tokio::task::spawn_blocking(move || backtest_if_due(&store, &config, today)).await {
            Ok(Ok(true)) => tracing::info!("finance: monthly backtest stored"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "finance: monthly backtest failed"),
            Err(error) => tracing::warn!(%error, "finance: monthly backtest task failed"),
        }
    }
}

// --- HTTP ---------------------------------------------------------------------------------

fn api_error(error: FinanceError) -> ApiError {
    match error {
        FinanceError::Invalid(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
        FinanceError::Store(error) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FinanceError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?
        .map_err(api_error)
}

#[derive(Debug, Deserialize)]
struct ReportParams {
    from: Option<String>,
    to: Option<String>,
}

async fn report_handler(
    State(state): State<AppState>,
    Query(params): Query<ReportParams>,
) -> Result<Json<MonthlyReport>, ApiError> {
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    blocking(move || {
        report(
            &store,
            &config,
            params.from.as_deref(),
            params.to.as_deref(),
            Utc::now().date_naive(),
        )
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
struct OutlookParams {
    horizon: Option<usize>,
    history: Option<u64>,
}

async fn outlook_handler(
    State(state): State<AppState>,
    Query(params): Query<OutlookParams>,
) -> Result<Json<Outlook>, ApiError> {
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    blocking(move || {
        outlook(
            &store,
            &config,
            Utc::now().date_naive(),
            params.history.unwrap_or(365),
            params.horizon.unwrap_or(90),
        )
    })
    .await
    .map(Json)
}

/// `POST /v1/finance/entries`: `{"entries": [...]}`, all or nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesRequest {
    entries: Vec<NewEntry>,
}

async fn entries_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    payload: Result<Json<EntriesRequest>, JsonRejection>,
) -> Result<Json<InsertOutcome>, ApiError> {
    let request = json_body(payload)?;
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    let actor = format!("user:{}", user.name);
    blocking(move || {
        let by = actor.clone();
        add_entries(&store, &config, request.entries, &actor, move || {
            EntrySource::Manual { by: by.clone() }
        })
    })
    .await
    .map(Json)
}

/// `POST /v1/finance/import`: a CSV statement with its mapping, as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    /// The file's name, for errors and the entries' source.
    file: String,
    csv: String,
    mapping: StatementMapping,
    #[serde(default)]
    dry_run: bool,
}

async fn import_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    payload: Result<Json<ImportRequest>, JsonRejection>,
) -> Result<Json<ImportSummary>, ApiError> {
    let request = json_body(payload)?;
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    let actor = format!("user:{}", user.name);
    blocking(move || {
        let mapping = Mapping::new(request.mapping, &config).map_err(|problems| {
            FinanceError::Invalid(format!("mapping: {}", problems.join("; ")))
        })?;
        import_csv(
            &store,
            request.csv.as_bytes(),
            &request.file,
            &mapping,
            request.dry_run,
            &actor,
        )
    })
    .await
    .map(Json)
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BacktestRequest {
    #[serde(default)]
    horizon: Option<usize>,
    #[serde(default)]
    origins: Option<usize>,
}

async fn backtest_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    payload: Result<Json<BacktestRequest>, JsonRejection>,
) -> Result<Json<BacktestRun>, ApiError> {
    let request = json_body(payload)?;
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    let actor = format!("user:{}", user.name);
    blocking(move || {
        backtest(
            &store,
            &config,
            Utc::now().date_naive(),
            request.horizon.unwrap_or(30),
            request.origins.unwrap_or(3),
            &actor,
        )
    })
    .await
    .map(Json)
}

async fn backtests_handler(
    State(state): State<AppState>,
) -> Result<Json<Vec<BacktestRun>>, ApiError> {
    let store = state.store.clone();
    blocking(move || backtest_history(&store)).await.map(Json)
}

/// `POST /v1/finance/expenses`: an expense to approve. It becomes an `expense` proposal whose
/// category and amount in the reporting currency the policies route by; once approved (or
/// allowed on its own) the executor books it with the proposal's id as approval id.
/// (Unknown fields are refused by the flattened parameters.)
#[derive(Debug, Deserialize)]
struct ExpenseRequest {
    #[serde(flatten)]
    expense: crate::executors::ExpenseParams,
    #[serde(default)]
    rationale: String,
}

/// Builds the proposal for an expense: dated today when undated, valued now.
pub fn expense_proposal(
    store: &Store,
    config: &FinanceConfig,
    mut expense: crate::executors::ExpenseParams,
    proposer: policies::Proposer,
    rationale: String,
    today: NaiveDate,
) -> Result<policies::Proposal, FinanceError> {
    if expense.date.is_none() {
        expense.date = Some(today.to_string());
    }
    let cents = crate::executors::expense_cents(store, config, &expense)
        .map_err(|error| FinanceError::Invalid(error.to_string()))?;
    let risk = if cents > 1_000_000 {
        policies::Risk::Medium
    } else {
        policies::Risk::Low
    };
    let parameters =
        serde_json::to_value(&expense).map_err(|error| FinanceError::Invalid(error.to_string()))?;
    Ok(policies::Proposal {
        id: format!(
            "expense-{}-{:06x}",
            Utc::now().format("%Y%m%d%H%M%S"),
            rand::random::<u32>() & 0xff_ffff
        ),
        proposer,
        operation: policies::Operation {
            kind: "expense".to_owned(),
            domain: "finance".to_owned(),
            risk,
            amount_nanoton: 0,
            amount_cents: cents,
            target: expense.category.clone(),
            parameters,
        },
        rationale,
        evidence: serde_json::Value::Null,
    })
}

async fn expense_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    payload: Result<Json<ExpenseRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<crate::gate::ProposalRecord>), ApiError> {
    let request = json_body(payload)?;
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    let proposer = policies::Proposer::User {
        name: user.name.clone(),
        roles: user.roles.clone(),
    };
    let proposal = blocking(move || {
        expense_proposal(
            &store,
            &config,
            request.expense,
            proposer,
            request.rationale,
            Utc::now().date_naive(),
        )
    })
    .await?;
    let record = state
        .gate
        .submit(proposal)
        .await
        .map_err(crate::gate::http::gate_error)?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Debug, Deserialize)]
struct EntriesParams {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

async fn list_entries(
    State(state): State<AppState>,
    Query(params): Query<EntriesParams>,
) -> Result<Json<Vec<memory::ledger::LedgerEntry>>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(store.ledger().entries(params.from, params.to)?))
        .await
        .map(Json)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/finance/expenses", post(expense_handler))
        .route("/v1/finance/report", get(report_handler))
        .route("/v1/finance/outlook", get(outlook_handler))
        .route(
            "/v1/finance/entries",
            get(list_entries).post(entries_handler),
        )
        .route("/v1/finance/import", post(import_handler))
        .route(
            "/v1/finance/backtest",
            get(backtests_handler).post(backtest_handler),
        )
        .route("/v1/finance/onchain/sync", post(onchain_sync_handler))
        .route("/v1/finance/portfolio", get(portfolio_handler))
        .route("/v1/finance/balances", post(balances_handler))
}

#[derive(Debug, Deserialize)]
struct PortfolioParams {
    /// Days back from today [default: 30].
    days: Option<u64>,
}

/// `GET /v1/finance/portfolio?days=30`: the stored holdings valued day by day, with the
/// rebalancing plan (wallet balances are snapshotted by the daily check and the CLI).
async fn portfolio_handler(
    State(state): State<AppState>,
    Query(params): Query<PortfolioParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (store, config) = (state.store.clone(), Arc::clone(&state.finance));
    let today = Utc::now().date_naive();
    let from = today
        .checked_sub_days(chrono::Days::new(params.days.unwrap_or(30)))
        .unwrap_or(today);
    let (report, plan) = blocking(move || portfolio::report(&store, &config, from, today)).await?;
    Ok(Json(serde_json::json!({ "report": report, "plan": plan })))
}

#[derive(Debug, Deserialize)]
struct BalancesParams {
    /// The file name messages refer to [default: "balances.csv"].
    file: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/finance/balances?file=NAME&dry_run=true` with the CSV as the body.
async fn balances_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
    Query(params): Query<BalancesParams>,
    body: axum::body::Bytes,
) -> Result<Json<portfolio::BalancesImport>, ApiError> {
    let store = state.store.clone();
    let file = params.file.unwrap_or_else(|| "balances.csv".to_owned());
    let actor = format!("user:{}", user.name);
    blocking(move || portfolio::import_balances(&store, &body, &file, params.dry_run, &actor))
        .await
        .map(Json)
}

/// `POST /v1/finance/onchain/sync`: reads the watched TON accounts now and books new income.
async fn onchain_sync_handler(
    State(state): State<AppState>,
    crate::gate::http::Authenticated(user): crate::gate::http::Authenticated,
) -> Result<Json<onchain::SyncSummary>, ApiError> {
    state
        .onchain
        .sync(&state.store, &state.finance, &format!("user:{}", user.name))
        .await
        .map(Json)
        .map_err(api_error)
}

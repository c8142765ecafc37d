//! `expense`: books an approved expense in the finance ledger, with the proposal's id as its
//! approval id. The policies route an expense by its category (`target`) and its amount in the
//! reporting currency (`amount_cents`); this executor checks both against the parameters, so a
//! proposal cannot understate what it spends.

use std::str::FromStr;
use std::sync::Arc;

use agents::finance::report::Valuer;
use agents::finance::{FinanceConfig, is_currency_code};
use chrono::{NaiveDate, Utc};
use memory::Store;
use memory::ledger::{EntrySource, LedgerEntry, stable_id};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ExecutionOutcome, ExecutionRequest, ExecutorError, OutcomeStatus, TypedExecutor};

/// Parameters of an `expense` operation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpenseParams {
    /// Money out, positive, as a decimal string ("1200.00").
    pub amount: String,
    /// Currency code (USD, EUR, TON).
    pub currency: String,
    /// A configured expense category (`[finance.categories]`).
    pub category: String,
    #[serde(default)]
    pub subcategory: Option<String>,
    /// Who is paid.
    pub counterparty: String,
    #[serde(default)]
    pub description: String,
    /// YYYY-MM-DD the expense is booked on [default: the day it runs].
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Books approved expenses.
pub struct ExpenseExecutor {
    store: Store,
    config: Arc<FinanceConfig>,
}

fn invalid(detail: impl Into<String>) -> ExecutorError {
    ExecutorError::InvalidParameters {
        kind: ExpenseExecutor::KIND.to_owned(),
        detail: detail.into(),
    }
}

fn amount_of(params: &ExpenseParams) -> Result<Decimal, ExecutorError> {
    let amount = Decimal::from_str(params.amount.trim()).map_err(|_| {
        invalid(format!(
            "amount: {:?} is not a decimal number",
            params.amount
        ))
    })?;
    if amount <= Decimal::ZERO {
        return Err(invalid(
            "amount: must be more than 0 (money out is positive here)",
        ));
    }
    Ok(amount)
}

fn date_of(params: &ExpenseParams) -> Result<Option<NaiveDate>, ExecutorError> {
    params
        .date
        .as_deref()
        .map(|text| {
            text.parse::<NaiveDate>()
                .map_err(|_| invalid(format!("date: {text:?} is not a date (YYYY-MM-DD)")))
        })
        .transpose()
}

/// The expense in cents of the reporting currency at its day's rate (today when undated).
pub fn expense_cents(
    store: &Store,
    config: &FinanceConfig,
    params: &ExpenseParams,
) -> Result<u64, ExecutorError> {
    let amount = amount_of(params)?;
    let date = date_of(params)?.unwrap_or_else(|| Utc::now().date_naive());
    let currency = params.currency.trim().to_ascii_uppercase();
    let rate = Valuer::new(store.ledger(), config)
        .rate(&currency, date)
        .map_err(|error| invalid(format!("cannot read exchange rates: {error}")))?
        .ok_or_else(|| {
            invalid(format!(
                "no {currency} to {} rate for {date} (load one with `command-center finance rates import`)",
                config.reporting_currency
            ))
        })?;
    (amount * rate * Decimal::ONE_HUNDRED)
        .round()
        .to_u64()
        .ok_or_else(|| invalid("amount: too large"))
}

impl ExpenseExecutor {
    pub fn new(store: Store, config: Arc<FinanceConfig>) -> Self {
        Self { store, config }
    }

    fn entry_id(proposal_id: &str, date: NaiveDate) -> String {
        stable_id("approval", date, Decimal::ZERO, "", "", proposal_id, 0)
    }
}

impl TypedExecutor for ExpenseExecutor {
    const KIND: &'static str = "expense";
    type Params = ExpenseParams;

    fn check(&self, params: &ExpenseParams) -> Result<(), ExecutorError> {
        amount_of(params)?;
        date_of(params)?;
        if !is_currency_code(&params.currency.trim().to_ascii_uppercase()) {
            return Err(invalid(format!(
                "currency: {:?} is not a currency code",
                params.currency
            )));
        }
        if params.counterparty.trim().is_empty() {
            return Err(invalid("counterparty: say who is paid"));
        }
        self.config
            .check_attribution(None, Some(&params.category), params.subcategory.as_deref())
            .map_err(invalid)
    }

    fn check_operation(
        &self,
        params: &ExpenseParams,
        operation: &policies::Operation,
    ) -> Result<(), ExecutorError> {
        if operation.target != params.category {
            return Err(invalid(format!(
                "target {:?} must be the expense's category {:?} (the policies route by it)",
                operation.target, params.category
            )));
        }
        let cents = expense_cents(&self.store, &self.config, params)?;
        if operation.amount_cents != cents {
            return Err(invalid(format!(
                "amount_cents {} does not match {} {} = {cents} cents of {} (the policies route by it)",
                operation.amount_cents,
                params.amount,
                params.currency,
                self.config.reporting_currency
            )));
        }
        Ok(())
    }

    async fn run(&self, request: &ExecutionRequest, params: ExpenseParams) -> ExecutionOutcome {
        let date = match date_of(&params) {
            Ok(date) => date.unwrap_or_else(|| Utc::now().date_naive()),
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    error.to_string(),
                    serde_json::Value::Null,
                    request.dry_run,
                );
            }
        };
        let amount = match amount_of(&params) {
            Ok(amount) => amount,
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    error.to_string(),
                    serde_json::Value::Null,
                    request.dry_run,
                );
            }
        };
        let entry = LedgerEntry {
            id: Self::entry_id(&request.proposal_id, date),
            date,
            amount: -amount,
            currency: params.currency.trim().to_ascii_uppercase(),
            stream: None,
            category: Some(params.category.clone()),
            subcategory: params.subcategory.clone(),
            counterparty: params.counterparty.clone(),
            description: params.description.clone(),
            source: EntrySource::Approval {
                approval_id: request.proposal_id.clone(),
            },
            tags: params.tags.clone(),
            recorded_at: Utc::now(),
        };
        let summary = format!(
            "{} {} to {} ({}) on {date}",
            amount, entry.currency, entry.counterparty, params.category
        );
        if request.dry_run {
            return ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!("would book {summary}"),
                serde_json::json!({ "entry_id": entry.id }),
                true,
            );
        }
        let store = self.store.clone();
        let booked = entry.clone();
        let result =
            tokio::task::spawn_blocking(move || store.ledger().insert_batch(&[booked])).await;
        match result {
            Ok(Ok(outcome)) => ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                if outcome.inserted == 1 {
                    format!("booked {summary}")
                } else {
                    format!("already booked: {summary}")
                },
                serde_json::json!({ "entry_id": entry.id, "approval_id": request.proposal_id }),
                false,
            ),
            Ok(Err(error)) => ExecutionOutcome::new(
                OutcomeStatus::Failed,
                format!("not booked: {error}"),
                serde_json::Value::Null,
                false,
            ),
            Err(error) => ExecutionOutcome::new(
                OutcomeStatus::Unknown,
                format!("the booking task failed: {error}"),
                serde_json::Value::Null,
                false,
            ),
        }
    }

    /// Booked or not is a ledger lookup: the entry's id comes from the proposal's.
    async fn reconcile_typed(&self, request: &ExecutionRequest) -> ExecutionOutcome {
        let params: Option<ExpenseParams> = serde_json::from_value(request.parameters.clone()).ok();
        let date = params
            .as_ref()
            .and_then(|params| date_of(params).ok().flatten());
        let Some(date) = date else {
            return ExecutionOutcome::new(
                OutcomeStatus::Unknown,
                "an undated expense: look for the approval id in `command-center finance entries`",
                serde_json::json!({ "approval_id": request.proposal_id }),
                false,
            );
        };
        match self
            .store
            .ledger()
            .get(&Self::entry_id(&request.proposal_id, date))
        {
            Ok(Some(_)) => ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                "booked before the restart",
                serde_json::Value::Null,
                false,
            ),
            Ok(None) => ExecutionOutcome::new(
                OutcomeStatus::Failed,
                "not booked",
                serde_json::Value::Null,
                false,
            ),
            Err(error) => ExecutionOutcome::new(
                OutcomeStatus::Unknown,
                format!("cannot read the ledger: {error}"),
                serde_json::Value::Null,
                false,
            ),
        }
    }
}

//! Valuation in the reporting currency and the monthly report: P&L by stream and category,
//! revenue change month over month and year over year, burn, cash and runway.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use memory::StoreError;
use memory::ledger::{Ledger, LedgerEntry};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::FinanceConfig;

/// Label of income no stream was given to, and of costs without a category.
pub const UNATTRIBUTED: &str = "unattributed";

/// An entry that could not be valued: no rate for its currency within the allowed age.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRate {
    pub currency: String,
    pub date: NaiveDate,
    pub entries: usize,
}

/// Entries with their value in the reporting currency.
pub type Valued = Vec<(LedgerEntry, Decimal)>;

/// Values amounts in the reporting currency at the day's rate.
pub struct Valuer<'a> {
    ledger: &'a Ledger,
    reporting: &'a str,
    max_age_days: u64,
}

impl<'a> Valuer<'a> {
    pub fn new(ledger: &'a Ledger, config: &'a FinanceConfig) -> Self {
        Valuer {
            ledger,
            reporting: &config.reporting_currency,
            max_age_days: config.max_rate_age_days,
        }
    }

    /// The price of one `currency` in the reporting currency on `date`: a direct rate, an
    /// inverse one, or a cross rate through USD. `None` when none is stored within the age.
    pub fn rate(&self, currency: &str, date: NaiveDate) -> Result<Option<Decimal>, StoreError> {
        if currency == self.reporting {
            return Ok(Some(Decimal::ONE));
        }
        let lookup = |base: &str, quote: &str| {
            self.ledger
                .rate_on(base, quote, date, self.max_age_days)
                .map(|found| found.map(|(_, rate)| rate))
        };
        if let Some(rate) = lookup(currency, self.reporting)? {
            return Ok(Some(rate));
        }
        if let Some(inverse) = lookup(self.reporting, currency)?
            && !inverse.is_zero()
        {
            return Ok(Decimal::ONE.checked_div(inverse));
        }
        if currency != "USD" && self.reporting != "USD" {
            let base_usd = if currency == "USD" {
                Some(Decimal::ONE)
            } else {
                lookup(currency, "USD")?
            };
            let reporting_usd = lookup(self.reporting, "USD")?;
            if let (Some(base), Some(reporting)) = (base_usd, reporting_usd)
                && !reporting.is_zero()
            {
                return Ok(base.checked_div(reporting));
            }
        }
        Ok(None)
    }

    /// Values every entry; the ones without a rate are counted per currency and day.
    pub fn value_all(
        &self,
        entries: Vec<LedgerEntry>,
    ) -> Result<(Valued, Vec<MissingRate>), StoreError> {
        let mut valued = Vec::with_capacity(entries.len());
        let mut missing: BTreeMap<(String, NaiveDate), usize> = BTreeMap::new();
        let mut cache: BTreeMap<(String, NaiveDate), Option<Decimal>> = BTreeMap::new();
        for entry in entries {
            let key = (entry.currency.clone(), entry.date);
            let rate = match cache.get(&key) {
                Some(rate) => *rate,
                None => {
                    let rate = self.rate(&entry.currency, entry.date)?;
                    cache.insert(key.clone(), rate);
                    rate
                }
            };
            match rate.and_then(|rate| entry.amount.checked_mul(rate)) {
                Some(value) => valued.push((entry, value.round_dp(2))),
                None => *missing.entry(key).or_default() += 1,
            }
        }
        let missing = missing
            .into_iter()
            .map(|((currency, date), entries)| MissingRate {
                currency,
                date,
                entries,
            })
            .collect();
        Ok((valued, missing))
    }
}

/// `YYYY-MM` of a date.
pub fn month_of(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The first day of a `YYYY-MM` month.
pub fn parse_month(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a month (YYYY-MM)"))
}

/// Change of a revenue line against the month before and the same month a year before, in
/// percent; `None` when the earlier value is zero or absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub mom_pct: Option<f64>,
    pub yoy_pct: Option<f64>,
}

/// One month of the report. Expenses are positive numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthRow {
    pub month: String,
    /// The month is not over (it is `today`'s month): its sums and changes are to date.
    pub partial: bool,
    pub revenue: BTreeMap<String, Decimal>,
    pub expenses: BTreeMap<String, Decimal>,
    pub revenue_total: Decimal,
    pub expense_total: Decimal,
    pub net: Decimal,
    /// Per stream, and `total`.
    pub revenue_change: BTreeMap<String, Change>,
}

/// The monthly report, in `currency`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    pub currency: String,
    pub streams: Vec<String>,
    pub categories: Vec<String>,
    pub months: Vec<MonthRow>,
    /// Mean monthly expenses of the last three complete months in the report.
    pub gross_burn: Option<Decimal>,
    /// Mean monthly expenses minus revenue of those months (positive: cash goes down).
    pub net_burn: Option<Decimal>,
    /// Opening balance plus every valued entry since the opening date (needs `opening_date`).
    pub cash: Option<Decimal>,
    /// Cash over net burn; `None` when not burning or cash unknown.
    pub runway_months: Option<f64>,
    /// Entries left out for want of a rate.
    pub missing_rates: Vec<MissingRate>,
}

fn pct(now: Decimal, before: Option<&Decimal>) -> Option<f64> {
    let before = before?;
    if before.is_zero() {
        return None;
    }
    ((now - before) / before.abs() * Decimal::ONE_HUNDRED)
        .round_dp(1)
        .to_f64()
}

/// Builds the report for the months `from..=to` (first days of months), with `today` deciding
/// which months are complete for the burn rate.
pub fn monthly_report(
    ledger: &Ledger,
    config: &FinanceConfig,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<MonthlyReport, StoreError> {
    let valuer = Valuer::new(ledger, config);
    // A year before `from` too, for year-over-year change.
    let history_from = from.checked_sub_months(Months::new(12)).unwrap_or(from);
    let end = to
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(to);
    let earliest = match config.opening_date {
        Some(opening) => opening.min(history_from),
        None => history_from,
    };
    let (valued, missing_rates) = valuer.value_all(ledger.entries(Some(earliest), None)?)?;

    let mut revenue: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    let mut expenses: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
    let mut streams: BTreeSet<String> = config.streams.iter().cloned().collect();
    let mut categories: BTreeSet<String> = config.categories.keys().cloned().collect();
    let mut cash = config.opening_date.map(|_| config.opening_balance);
    for (entry, value) in &valued {
        if let (Some(opening), Some(cash)) = (config.opening_date, cash.as_mut())
            && entry.date >= opening
            && entry.date <= today
        {
            *cash += *value;
        }
        if entry.date < history_from || entry.date > end {
            continue;
        }
        let month = month_of(entry.date);
        if value.is_sign_negative() || entry.category.is_some() {
            let category = entry
                .category
                .clone()
                .unwrap_or_else(|| UNATTRIBUTED.to_owned());
            categories.insert(category.clone());
            *expenses
                .entry(month)
                .or_default()
                .entry(category)
                .or_default() -= *value;
        } else {
            let stream = entry
                .stream
                .clone()
                .unwrap_or_else(|| UNATTRIBUTED.to_owned());
            streams.insert(stream.clone());
            *revenue.entry(month).or_default().entry(stream).or_default() += *value;
        }
    }

    let mut months = Vec::new();
    let mut cursor = from;
    while cursor <= to {
        let month = month_of(cursor);
        let row_revenue = revenue.get(&month).cloned().unwrap_or_default();
        let row_expenses = expenses.get(&month).cloned().unwrap_or_default();
        let revenue_total: Decimal = row_revenue.values().sum();
        let expense_total: Decimal = row_expenses.values().sum();
        let previous = cursor
            .checked_sub_months(Months::new(1))
            .map(month_of)
            .unwrap_or_default();
        let year_before = cursor
            .checked_sub_months(Months::new(12))
            .map(month_of)
            .unwrap_or_default();
        let mut revenue_change = BTreeMap::new();
        for stream in &streams {
            let now = row_revenue.get(stream).copied().unwrap_or_default();
            let before = |month: &str| revenue.get(month).and_then(|row| row.get(stream));
            revenue_change.insert(
                stream.clone(),
                Change {
                    mom_pct: pct(now, before(&previous)),
                    yoy_pct: pct(now, before(&year_before)),
                },
            );
        }
        let total_of = |month: &str| revenue.get(month).map(|row| row.values().sum::<Decimal>());
        revenue_change.insert(
            "total".to_owned(),
            Change {
                mom_pct: pct(revenue_total, total_of(&previous).as_ref()),
                yoy_pct: pct(revenue_total, total_of(&year_before).as_ref()),
            },
        );
        months.push(MonthRow {
            partial: month == month_of(today),
            month,
            revenue: row_revenue,
            expenses: row_expenses,
            revenue_total,
            expense_total,
            net: revenue_total - expense_total,
            revenue_change,
        });
        match cursor.checked_add_months(Months::new(1)) {
            Some(next) => cursor = next,
            None => break,
        }
    }

    let current_month = month_of(today);
    let complete: Vec<&MonthRow> = months
        .iter()
        .filter(|row| row.month < current_month)
        .rev()
        .take(3)
        .collect();
    let (gross_burn, net_burn) = if complete.is_empty() {
        (None, None)
    } else {
        let count = Decimal::from(complete.len());
        let gross: Decimal = complete.iter().map(|row| row.expense_total).sum();
        let net: Decimal = complete.iter().map(|row| -row.net).sum();
        (
            Some((gross / count).round_dp(2)),
            Some((net / count).round_dp(2)),
        )
    };
    let runway_months = match (cash, net_burn) {
        (Some(cash), Some(burn)) if burn > Decimal::ZERO => {
            (cash.max(Decimal::ZERO) / burn).round_dp(1).to_f64()
        }
        _ => None,
    };
    Ok(MonthlyReport {
        currency: config.reporting_currency.clone(),
        streams: streams.into_iter().collect(),
        categories: categories.into_iter().collect(),
        months,
        gross_burn,
        net_burn,
        cash: cash.map(|cash| cash.round_dp(2)),
        runway_months,
        missing_rates,
    })
}

/// Whole units with thousands commas: `-1,234`.
pub(crate) fn money(value: Decimal) -> String {
    let rounded = value.round_dp(0);
    let digits = rounded.abs().to_string();
    let mut grouped = String::new();
    for (index, c) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if rounded.is_sign_negative() && !rounded.is_zero() {
        format!("-{grouped}")
    } else {
        grouped
    }
}

fn change_text(change: Option<&Change>, pick: fn(&Change) -> Option<f64>) -> String {
    change
        .and_then(pick)
        .map_or_else(|| "-".to_owned(), |value| format!("{value:+.1}%"))
}

/// The lines of the report as rows of cells: a header, revenue per stream, total revenue,
/// expenses per category, total expenses and net; one column per month, then the last month's
/// change (revenue lines). Shared by the table and CSV renderings.
pub fn report_rows(report: &MonthlyReport, plain_numbers: bool) -> Vec<Vec<String>> {
    let cell = |value: Decimal| {
        if plain_numbers {
            value.round_dp(2).normalize().to_string()
        } else {
            money(value)
        }
    };
    let last = report.months.last();
    let mut header = vec![format!("{} ({})", "line", report.currency)];
    header.extend(report.months.iter().map(|row| {
        if row.partial && !plain_numbers {
            format!("{}*", row.month)
        } else {
            row.month.clone()
        }
    }));
    header.push("MoM".to_owned());
    header.push("YoY".to_owned());
    let mut rows = vec![header];
    let mut line =
        |label: String, value: &dyn Fn(&MonthRow) -> Decimal, change: Option<&Change>| {
            let mut row = vec![label];
            row.extend(report.months.iter().map(|month| cell(value(month))));
            row.push(change_text(change, |c| c.mom_pct));
            row.push(change_text(change, |c| c.yoy_pct));
            rows.push(row);
        };
    for stream in &report.streams {
        line(
            format!("revenue: {stream}"),
            &|row| row.revenue.get(stream).copied().unwrap_or_default(),
            last.and_then(|row| row.revenue_change.get(stream)),
        );
    }
    line(
        "revenue total".to_owned(),
        &|row| row.revenue_total,
        last.and_then(|row| row.revenue_change.get("total")),
    );
    for category in &report.categories {
        line(
            format!("expense: {category}"),
            &|row| row.expenses.get(category).copied().unwrap_or_default(),
            None,
        );
    }
    line("expense total".to_owned(), &|row| row.expense_total, None);
    line("net".to_owned(), &|row| row.net, None);
    rows
}

/// Rows as aligned columns: text columns (`left`) padded on the right, numbers on the left.
pub(crate) fn aligned(rows: &[Vec<String>], left: &[usize]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|column| {
            rows.iter()
                .map(|row| row.get(column).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if left.contains(&column) {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if index == 0 {
            out.push_str(
                &"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)),
            );
            out.push('\n');
        }
    }
    out
}

/// A plain-text table for a terminal, followed by burn, cash, runway and missing rates.
pub fn render_table(report: &MonthlyReport) -> String {
    let rows = report_rows(report, false);
    let mut out = aligned(&rows, &[0]);
    if report.months.iter().any(|row| row.partial) {
        out.push_str("* month to date: its sums and changes are not final\n");
    }
    let show = |value: Option<Decimal>| value.map_or_else(|| "unknown".to_owned(), money);
    out.push_str(&format!(
        "\nburn (mean of the last 3 complete months): gross {} {cur}/month, net {} {cur}/month\n",
        show(report.gross_burn),
        show(report.net_burn),
        cur = report.currency
    ));
    out.push_str(&format!(
        "cash: {}{}\n",
        report.cash.map_or_else(
            || "unknown (set finance.opening_balance and finance.opening_date)".to_owned(),
            |cash| format!("{} {}", money(cash), report.currency)
        ),
        match (report.runway_months, report.net_burn) {
            (Some(months), _) => format!("; runway {months:.1} months"),
            (None, Some(burn)) if burn <= Decimal::ZERO => "; not burning cash".to_owned(),
            _ => String::new(),
        }
    ));
    if !report.missing_rates.is_empty() {
        let count: usize = report.missing_rates.iter().map(|m| m.entries).sum();
        let currencies: BTreeSet<&str> = report
            .missing_rates
            .iter()
            .map(|m| m.currency.as_str())
            .collect();
        out.push_str(&format!(
            "warning: {count} entries left out: no {} rate for {} on their days \
             (load rates with `command-center finance rates`)\n",
            report.currency,
            currencies.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    out
}

/// CSV with the same lines as the table, numbers unformatted.
pub fn render_csv(report: &MonthlyReport) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in report_rows(report, true) {
        writer.write_record(&row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| csv::Error::from(error.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

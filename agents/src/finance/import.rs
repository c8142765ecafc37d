//! Bank and card statements into the ledger: a CSV file read through a mapping (which columns,
//! which date and number formats, which sign means an expense, which rules attribute a row),
//! or entries as JSON through the API.
//!
//! A file is all or nothing: every bad row is reported with its line number and the reason, and
//! if there is one, nothing of the file is stored. Rows already in the ledger (same stable id)
//! are skipped, so importing a statement twice, or an overlapping one, never duplicates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use memory::ledger::{EntrySource, Ledger, LedgerEntry, stable_id};
use regex::{Regex, RegexBuilder};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{FinanceConfig, is_currency_code};

/// Which sign an expense has in the amount column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignConvention {
    /// -12.00 is money out (most bank exports).
    #[default]
    NegativeIsExpense,
    /// 12.00 is money out (most card exports: a charge is positive, a refund negative).
    PositiveIsExpense,
}

/// The columns of the statement, by header name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    pub date: String,
    /// One signed amount column ...
    #[serde(default)]
    pub amount: Option<String>,
    /// ... or money out and money in in two columns (both positive).
    #[serde(default)]
    pub debit: Option<String>,
    #[serde(default)]
    pub credit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to the description when absent.
    #[serde(default)]
    pub counterparty: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// The bank's own transaction id, when the export has one: it becomes the entry's id.
    #[serde(default)]
    pub id: Option<String>,
}

/// Attributes matching rows: every pattern given must match (case-insensitive regex).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    #[serde(default)]
    pub counterparty: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub subcategory: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_delimiter() -> char {
    ','
}
fn default_decimal() -> char {
    '.'
}

/// A statement mapping, usually one TOML file per bank account or card.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementMapping {
    /// The account this statement is from; part of every entry's id.
    pub account: String,
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Lines before the header row (bank name, account number, period).
    #[serde(default)]
    pub skip_lines: usize,
    /// chrono format of the date column: %Y-%m-%d, %m/%d/%Y, %d.%m.%Y ...
    pub date_format: String,
    #[serde(default = "default_decimal")]
    pub decimal_separator: char,
    #[serde(default)]
    pub thousands_separator: Option<char>,
    #[serde(default)]
    pub sign: SignConvention,
    /// The currency of every row when there is no currency column.
    #[serde(default)]
    pub currency: Option<String>,
    pub columns: ColumnMapping,
    /// First matching rule wins; rows no rule matches are stored unattributed.
    #[serde(default)]
    pub rules: Vec<CategoryRule>,
    /// Tags put on every entry of the file.
    #[serde(default)]
    pub tags: Vec<String>,
}

struct CompiledRule {
    counterparty: Option<Regex>,
    description: Option<Regex>,
    rule: CategoryRule,
}

/// A mapping checked against the configuration, its rules compiled.
pub struct Mapping {
    spec: StatementMapping,
    rules: Vec<CompiledRule>,
}

/// The file or the mapping is not usable; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("mapping {path}: {problems}", problems = problems.join("; "))]
    Mapping { path: String, problems: Vec<String> },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error(
        "{file}: {count} bad row(s), nothing imported:\n{rows}",
        count = rows.len(),
        rows = rows.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    )]
    Rows { file: String, rows: Vec<RowError> },
    #[error("storing the import failed, nothing was stored: {0}")]
    Store(#[from] memory::StoreError),
}

/// One bad row: its line in the file (1-based, counting the preamble) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "  line {}: {}", self.line, self.message)
    }
}

fn compile(pattern: &str, what: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|error| format!("{what}: {pattern:?} is not a valid regex: {error}"))
}

impl Mapping {
    /// Reads and checks a TOML mapping file.
    pub fn load(path: &Path, config: &FinanceConfig) -> Result<Mapping, ImportError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ImportError::Mapping {
            path: shown.clone(),
            problems: vec![format!("cannot read it: {error}")],
        })?;
        let spec: StatementMapping =
            toml::from_str(&text).map_err(|error| ImportError::Mapping {
                path: shown.clone(),
                problems: vec![error.to_string()],
            })?;
        Mapping::new(spec, config).map_err(|problems| ImportError::Mapping {
            path: shown,
            problems,
        })
    }

    /// Checks `spec` against the configured streams and categories; every problem at once.
    pub fn new(spec: StatementMapping, config: &FinanceConfig) -> Result<Mapping, Vec<String>> {
        let mut problems = Vec::new();
        if spec.account.trim().is_empty() {
            problems.push("account: name the account (it is part of every entry's id)".to_owned());
        }
        let columns = &spec.columns;
        match (&columns.amount, &columns.debit, &columns.credit) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => problems
                .push("columns: give either `amount`, or both `debit` and `credit`".to_owned()),
        }
        if columns.currency.is_none() && spec.currency.is_none() {
            problems.push(
                "currency: set `currency = \"USD\"` (or map a `columns.currency` column)"
                    .to_owned(),
            );
        }
        if let Some(currency) = &spec.currency
            && !is_currency_code(currency)
        {
            problems.push(format!("currency: {currency:?} is not a currency code"));
        }
        if spec.decimal_separator == spec.delimiter {
            problems.push("decimal_separator: must differ from the delimiter".to_owned());
        }
        if Some(spec.decimal_separator) == spec.thousands_separator {
            problems.push("thousands_separator: must differ from the decimal separator".to_owned());
        }
        if chrono::format::StrftimeItems::new(&spec.date_format)
            .any(|item| matches!(item, chrono::format::Item::Error))
        {
            problems.push(format!(
                "date_format: {:?} is not a valid chrono format (e.g. %d.%m.%Y)",
                spec.date_format
            ));
        }
        let mut rules = Vec::new();
        for (index, rule) in spec.rules.iter().enumerate() {
            let at = format!("rules[{index}]");
            let counterparty = rule
                .counterparty
                .as_deref()
                .map(|pattern| compile(pattern, &format!("{at}.counterparty")))
                .transpose();
            let description = rule
                .description
                .as_deref()
                .map(|pattern| compile(pattern, &format!("{at}.description")))
                .transpose();
            if rule.counterparty.is_none() && rule.description.is_none() {
                problems.push(format!(
                    "{at}: give a `counterparty` or `description` pattern"
                ));
            }
            if rule.stream.is_none() && rule.category.is_none() && rule.tags.is_empty() {
                problems.push(format!("{at}: give a `stream`, a `category` or `tags`"));
            }
            if let Err(problem) = config.check_attribution(
                rule.stream.as_deref(),
                rule.category.as_deref(),
                rule.subcategory.as_deref(),
            ) {
                problems.push(format!("{at}: {problem}"));
            }
            match (counterparty, description) {
                (Ok(counterparty), Ok(description)) => rules.push(CompiledRule {
                    counterparty,
                    description,
                    rule: rule.clone(),
                }),
                (counterparty, description) => {
                    problems.extend(counterparty.err());
                    problems.extend(description.err());
                }
            }
        }
        if problems.is_empty() {
            Ok(Mapping { spec, rules })
        } else {
            Err(problems)
        }
    }

    pub fn spec(&self) -> &StatementMapping {
        &self.spec
    }

    fn attribute(&self, counterparty: &str, description: &str) -> Option<&CategoryRule> {
        self.rules
            .iter()
            .find(|compiled| {
                compiled
                    .counterparty
                    .as_ref()
                    .is_none_or(|regex| regex.is_match(counterparty))
                    && compiled
                        .description
                        .as_ref()
                        .is_none_or(|regex| regex.is_match(description))
            })
            .map(|compiled| &compiled.rule)
    }

    /// Parses a money amount as this statement writes it: thousands separators, a decimal
    /// comma, a currency sign, a leading + or -, or accounting parentheses `(12.00)`.
    pub fn parse_amount(&self, text: &str) -> Result<Decimal, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("the amount is empty".to_owned());
        }
        let (negative, body) = match trimmed.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
            Some(inner) => (true, inner),
            None => (false, trimmed),
        };
        let mut cleaned = String::with_capacity(body.len());
        for c in body.chars() {
            if Some(c) == self.spec.thousands_separator || c.is_whitespace() || c == '\u{a0}' {
                continue;
            }
            if c == self.spec.decimal_separator {
                cleaned.push('.');
            } else if matches!(c, '$' | '€' | '£' | '¥') {
                continue;
            } else if c == '\u{2212}' {
                cleaned.push('-');
            } else {
                cleaned.push(c);
            }
        }
        let value = Decimal::from_str(&cleaned).map_err(|_| {
            format!(
                "{text:?} is not an amount (decimal separator {:?}{})",
                self.spec.decimal_separator,
                self.spec
                    .thousands_separator
                    .map(|sep| format!(", thousands separator {sep:?}"))
                    .unwrap_or_default()
            )
        })?;
        Ok(if negative { -value } else { value })
    }
}

/// What a file would add, before anything is stored (`--dry-run`), or what it added.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImportSummary {
    pub file: String,
    pub rows: usize,
    pub new_entries: usize,
    pub duplicates: usize,
    /// Rows no rule attributed to a stream or category.
    pub unattributed: usize,
    /// Per currency: money in and money out (positive) of the new entries.
    pub income: BTreeMap<String, String>,
    pub expenses: BTreeMap<String, String>,
    /// Rows per stream or category ("stream:validators", "category:infrastructure", "unattributed").
    pub by_attribution: BTreeMap<String, usize>,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
    pub dry_run: bool,
    /// The first few new entries, as they would be stored.
    pub preview: Vec<LedgerEntry>,
}

const PREVIEW_ROWS: usize = 10;

/// The data rows of a CSV `body` whose header `reader` has read: each with the line an editor
/// shows (the reader's own count skips blank lines, so newlines up to each record's byte offset
/// are counted instead; `lines_before` is what was cut off before `body`, a preamble), blank
/// rows skipped, and a row that cannot be read or has another number of fields than the
/// header's `width` as a [`RowError`].
pub(crate) fn data_rows<'a>(
    reader: &'a mut csv::Reader<&'a [u8]>,
    body: &'a [u8],
    lines_before: u64,
    width: usize,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), RowError>> + 'a {
    let newlines: Vec<u64> = body
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .map(|(index, _)| index as u64)
        .collect();
    let line_at = move |position: Option<&csv::Position>| -> u64 {
        position.map_or(0, |position| {
            // A record's position can point at blank lines before it.
            let mut start = position.byte();
            while body
                .get(start as usize)
                .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
            {
                start += 1;
            }
            newlines.partition_point(|&newline| newline < start) as u64 + 1 + lines_before
        })
    };
    reader.records().filter_map(move |record| {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                return Some(Err(RowError {
                    line: line_at(error.position()),
                    message: format!("not readable as CSV: {error}"),
                }));
            }
        };
        let line = line_at(record.position());
        if record.iter().all(str::is_empty) {
            return None;
        }
        if record.len() != width {
            return Some(Err(RowError {
                line,
                message: format!("{} fields where the header has {width}", record.len()),
            }));
        }
        Some(Ok((line, record)))
    })
}

/// `bytes` without a UTF-8 byte order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Turns a statement into entries, or every bad row. `file` names the file in errors and in
/// each entry's source.
pub fn parse_statement(
    bytes: &[u8],
    file: &str,
    mapping: &Mapping,
) -> Result<Vec<LedgerEntry>, ImportError> {
    let spec = &mapping.spec;
    let text = strip_bom(bytes);
    let file_error = |message: String| ImportError::File {
        file: file.to_owned(),
        message,
    };
    // Skip the preamble by lines, so line numbers in errors are the file's.
    let mut offset = 0;
    for _ in 0..spec.skip_lines {
        match text[offset..].iter().position(|&b| b == b'\n') {
            Some(end) => offset += end + 1,
            None => {
                return Err(file_error(format!(
                    "the file has fewer than skip_lines = {} lines",
                    spec.skip_lines
                )));
            }
        }
    }
    let delimiter = u8::try_from(spec.delimiter)
        .map_err(|_| file_error("the delimiter must be one ASCII character".to_owned()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&text[offset..]);
    let headers = reader
        .headers()
        .map_err(|error| file_error(format!("cannot read the header row: {error}")))?
        .clone();
    let header_line = spec.skip_lines as u64 + 1;
    let find = |name: &Option<String>| -> Result<Option<usize>, String> {
        match name {
            None => Ok(None),
            Some(name) => headers
                .iter()
                .position(|header| header.eq_ignore_ascii_case(name))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "line {header_line}: no column {name:?} in the header (columns: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                }),
        }
    };
    let columns = &spec.columns;
    let mut missing = Vec::new();
    let mut column = |name: &Option<String>| match find(name) {
        Ok(found) => found,
        Err(message) => {
            missing.push(message);
            None
        }
    };
    let date_column = column(&Some(columns.date.clone()));
    let amount_column = column(&columns.amount);
    let debit_column = column(&columns.debit);
    let credit_column = column(&columns.credit);
    let description_column = column(&columns.description);
    let counterparty_column = column(&columns.counterparty);
    let currency_column = column(&columns.currency);
    let id_column = column(&columns.id);
    if !missing.is_empty() {
        return Err(file_error(missing.join("; ")));
    }

    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut occurrences: HashMap<(NaiveDate, Decimal, String, String, String), u32> =
        HashMap::new();
    let recorded_at = Utc::now();
    let body = &text[offset..];
    for row in data_rows(&mut reader, body, spec.skip_lines as u64, headers.len()) {
        let (line, record) = match row {
            Ok(row) => row,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let field = |index: Option<usize>| index.and_then(|i| record.get(i)).unwrap_or("");
        let mut problems = Vec::new();
        let date_text = field(date_column);
        let date = NaiveDate::parse_from_str(date_text, &spec.date_format)
            .map_err(|_| {
                problems.push(format!(
                    "date {date_text:?} does not match {:?}",
                    spec.date_format
                ))
            })
            .ok();
        let amount = if amount_column.is_some() {
            mapping
                .parse_amount(field(amount_column))
                .map_err(|message| problems.push(message))
                .ok()
                .map(|value| match spec.sign {
                    SignConvention::NegativeIsExpense => value,
                    SignConvention::PositiveIsExpense => -value,
                })
        } else {
            let part = |index: Option<usize>, what: &str, problems: &mut Vec<String>| {
                let text = field(index);
                if text.is_empty() {
                    Some(Decimal::ZERO)
                } else {
                    mapping
                        .parse_amount(text)
                        .map_err(|message| problems.push(format!("{what}: {message}")))
                        .ok()
                        .map(|value| value.abs())
                }
            };
            let debit = part(debit_column, "debit", &mut problems);
            let credit = part(credit_column, "credit", &mut problems);
            match (debit, credit) {
                (Some(debit), Some(credit)) if debit.is_zero() && credit.is_zero() => {
                    problems.push("both debit and credit are empty".to_owned());
                    None
                }
                (Some(debit), Some(credit)) if !debit.is_zero() && !credit.is_zero() => {
                    problems.push("both debit and credit are filled in".to_owned());
                    None
                }
                (Some(debit), Some(credit)) => Some(credit - debit),
                _ => None,
            }
        };
        let currency = match currency_column {
            Some(_) => field(currency_column).to_ascii_uppercase(),
            None => spec.currency.clone().unwrap_or_default(),
        };
        if !is_currency_code(&currency) {
            problems.push(format!("currency {currency:?} is not a currency code"));
        }
        let description = field(description_column).to_owned();
        let counterparty = match counterparty_column {
            Some(_) => field(counterparty_column).to_owned(),
            None => description.clone(),
        };
        let bank_id = field(id_column).to_owned();
        if id_column.is_some() && bank_id.is_empty() {
            problems.push("the id column is empty".to_owned());
        }
        let (Some(date), Some(amount), true) = (date, amount, problems.is_empty()) else {
            errors.push(RowError {
                line,
                message: problems.join("; "),
            });
            continue;
        };
        if amount.is_zero() {
            errors.push(RowError {
                line,
                message: "the amount is zero".to_owned(),
            });
            continue;
        }
        let id = if bank_id.is_empty() {
            let occurrence = occurrences
                .entry((
                    date,
                    amount.normalize(),
                    currency.clone(),
                    counterparty.clone(),
                    description.clone(),
                ))
                .or_insert(0);
            let id = stable_id(
                &spec.account,
                date,
                amount,
                &currency,
                &counterparty,
                &description,
                *occurrence,
            );
            *occurrence += 1;
            id
        } else {
            stable_id(&spec.account, date, Decimal::ZERO, "", "", &bank_id, 0)
        };
        let rule = mapping.attribute(&counterparty, &description);
        // A rule's stream applies to income and its category to expenses; a refund matched by
        // an expense rule stays in that category (as a negative cost).
        let (stream, category, subcategory) = match rule {
            Some(rule) => (
                rule.stream.clone(),
                rule.category.clone(),
                rule.subcategory.clone(),
            ),
            None => (None, None, None),
        };
        let mut tags = spec.tags.clone();
        if let Some(rule) = rule {
            tags.extend(rule.tags.iter().cloned());
        }
        entries.push(LedgerEntry {
            id,
            date,
            amount,
            currency,
            stream,
            category,
            subcategory,
            counterparty,
            description,
            source: EntrySource::Import {
                file: file.to_owned(),
                line,
            },
            tags,
            recorded_at,
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ImportError::Rows {
            file: file.to_owned(),
            rows: errors,
        })
    }
}

/// Summarises the entries of `entries` whose ids are not in `duplicates`.
fn summarise(
    file: &str,
    entries: &[LedgerEntry],
    duplicates: &HashSet<String>,
    dry_run: bool,
) -> ImportSummary {
    let mut summary = ImportSummary {
        file: file.to_owned(),
        rows: entries.len(),
        dry_run,
        ..ImportSummary::default()
    };
    let mut income: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut expenses: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut seen = HashSet::new();
    for entry in entries {
        if !seen.insert(entry.id.as_str()) || duplicates.contains(&entry.id) {
            summary.duplicates += 1;
            continue;
        }
        summary.new_entries += 1;
        let bucket = if entry.amount.is_sign_negative() {
            &mut expenses
        } else {
            &mut income
        };
        *bucket.entry(entry.currency.clone()).or_default() += entry.amount.abs();
        let attribution = match (&entry.stream, &entry.category) {
            (Some(stream), _) => format!("stream:{stream}"),
            (None, Some(category)) => format!("category:{category}"),
            (None, None) => {
                summary.unattributed += 1;
                "unattributed".to_owned()
            }
        };
        *summary.by_attribution.entry(attribution).or_default() += 1;
        summary.first_date = Some(summary.first_date.map_or(entry.date, |d| d.min(entry.date)));
        summary.last_date = Some(summary.last_date.map_or(entry.date, |d| d.max(entry.date)));
        if summary.preview.len() < PREVIEW_ROWS {
            summary.preview.push(entry.clone());
        }
    }
    summary.income = income
        .into_iter()
        .map(|(c, v)| (c, v.to_string()))
        .collect();
    summary.expenses = expenses
        .into_iter()
        .map(|(c, v)| (c, v.to_string()))
        .collect();
    summary
}

/// Parses and (unless `dry_run`) stores a statement, all or nothing.
pub fn import_statement(
    ledger: &Ledger,
    bytes: &[u8],
    file: &str,
    mapping: &Mapping,
    dry_run: bool,
) -> Result<ImportSummary, ImportError> {
    let entries = parse_statement(bytes, file, mapping)?;
    // One lookup per id either way: the dry run asks the ledger, the import lets the batch
    // insert report what it skipped.
    let duplicates: HashSet<String> = if dry_run {
        let mut known = HashSet::new();
        for entry in &entries {
            if ledger.get(&entry.id)?.is_some() {
                known.insert(entry.id.clone());
            }
        }
        known
    } else {
        ledger
            .insert_batch(&entries)?
            .duplicates
            .into_iter()
            .collect()
    };
    Ok(summarise(file, &entries, &duplicates, dry_run))
}

/// An amount as JSON gives it: a string ("-1234.50", exact) or a number.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AmountInput {
    Text(String),
    Number(serde_json::Number),
}

impl AmountInput {
    pub fn parse(&self) -> Result<Decimal, String> {
        let text = match self {
            AmountInput::Text(text) => text.trim().to_owned(),
            AmountInput::Number(number) => number.to_string(),
        };
        Decimal::from_str(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| format!("amount {text:?} is not a decimal number"))
    }
}

/// One entry as the API, the CLI and chat take it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    pub date: NaiveDate,
    /// Signed: positive is income, negative an expense.
    pub amount: AmountInput,
    pub currency: String,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub subcategory: Option<String>,
    #[serde(default)]
    pub counterparty: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Your own id for the entry: sending it again does not duplicate.
    #[serde(default)]
    pub id: Option<String>,
}

impl NewEntry {
    /// Checks the entry against the configuration and makes it a ledger entry from `source`.
    /// `scope` keeps ids of different senders apart ("api", "manual:ana").
    pub fn into_entry(
        self,
        config: &FinanceConfig,
        scope: &str,
        source: EntrySource,
    ) -> Result<LedgerEntry, Vec<String>> {
        let mut problems = Vec::new();
        let amount = self
            .amount
            .parse()
            .map_err(|problem| problems.push(problem))
            .ok();
        if amount.is_some_and(|amount| amount.is_zero()) {
            problems.push("amount: must not be zero".to_owned());
        }
        let currency = self.currency.trim().to_ascii_uppercase();
        if !is_currency_code(&currency) {
            problems.push(format!(
                "currency: {:?} is not a currency code",
                self.currency
            ));
        }
        if let Err(problem) = config.check_attribution(
            self.stream.as_deref(),
            self.category.as_deref(),
            self.subcategory.as_deref(),
        ) {
            problems.push(problem);
        }
        let Some(amount) = amount else {
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let id = match &self.id {
            Some(own) => stable_id(scope, self.date, Decimal::ZERO, "", "", own, 0),
            None => stable_id(
                scope,
                self.date,
                amount,
                &currency,
                &self.counterparty,
                &self.description,
                0,
            ),
        };
        Ok(LedgerEntry {
            id,
            date: self.date,
            amount,
            currency,
            stream: self.stream,
            category: self.category,
            subcategory: self.subcategory,
            counterparty: self.counterparty,
            description: self.description,
            source,
            tags: self.tags,
            recorded_at: Utc::now(),
        })
    }
}

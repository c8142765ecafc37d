//! Text to [`Command`]: once, for every channel.

use agents::validators_report::Period;

use super::{COMMANDS, Command};

/// Longest text accepted, in bytes (Telegram's own message limit is 4096 characters).
pub const MAX_INPUT_BYTES: usize = 4096;
/// Most journal entries `/audit N` shows.
pub const MAX_AUDIT_ENTRIES: usize = 50;
/// Entries `/audit` shows without N.
pub const DEFAULT_AUDIT_ENTRIES: usize = 10;

/// Why a text is not a command; the message says what to send instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty; send /help for the commands")]
    Empty,
    #[error("the message is {bytes} bytes; the limit is {max} bytes, send a shorter one")]
    TooLong { bytes: usize, max: usize },
    #[error("unknown command /{name}; the commands are: {}", command_list())]
    UnknownCommand { name: String },
    #[error("/{command} needs {argument}; usage: {usage}")]
    MissingArgument {
        command: &'static str,
        argument: &'static str,
        usage: &'static str,
    },
    #[error("/{command}: {message}; usage: {usage}")]
    InvalidArgument {
        command: &'static str,
        message: String,
        usage: &'static str,
    },
}

fn command_list() -> String {
    COMMANDS
        .iter()
        .map(|spec| format!("/{}", spec.name))
        .collect::<Vec<_>>()
        .join(" ")
}

fn usage(name: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|spec| spec.name == name)
        .map(|spec| spec.usage)
        .unwrap_or("/help")
}

fn no_arguments(
    command: &'static str,
    rest: &[&str],
    parsed: Command,
) -> Result<Command, ParseError> {
    if rest.is_empty() {
        Ok(parsed)
    } else {
        Err(ParseError::InvalidArgument {
            command,
            message: format!("takes no arguments, got {:?}", rest.join(" ")),
            usage: usage(command),
        })
    }
}

/// A validator or agent name: what the config allows, and nothing a renderer must escape
/// beyond `-`, `_` and `.`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn name_argument(command: &'static str, name: &str) -> Result<String, ParseError> {
    if valid_name(name) {
        Ok(name.to_owned())
    } else {
        Err(ParseError::InvalidArgument {
            command,
            message: format!(
                "{:?} is not a name (letters, digits, '-', '_' and '.', at most 64)",
                name.chars().take(80).collect::<String>()
            ),
            usage: usage(command),
        })
    }
}

/// Parses one message. A leading `/` is optional (Slack's `/cc validators` arrives as
/// `validators`), a Telegram `@botname` suffix is dropped, names are case-insensitive. A text
/// that does not start with a command is a question: [`Command::Ask`].
pub fn parse(text: &str) -> Result<Command, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLong {
            bytes: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let slashed = text.starts_with('/');
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    let first = first.trim_start_matches('/');
    // `/validators@CommandCenterBot`: the suffix names the bot the command is for.
    let name = first.split('@').next().unwrap_or_default().to_lowercase();
    let Some(spec) = COMMANDS.iter().find(|spec| spec.name == name) else {
        if slashed {
            return Err(ParseError::UnknownCommand {
                name: name.chars().take(40).collect(),
            });
        }
        return Ok(Command::Ask(text.to_owned()));
    };
    let command = spec.name;
    match command {
        "start" => no_arguments(command, &rest, Command::Start),
        "help" => no_arguments(command, &rest, Command::Help),
        "status" => no_arguments(command, &rest, Command::Status),
        "validators" => no_arguments(command, &rest, Command::Validators),
        "ranking" => no_arguments(command, &rest, Command::Ranking),
        "finance" => no_arguments(command, &rest, Command::Finance),
        "expense" => expense(&rest, spec.usage).map(Command::Expense),
        "income" => income(&rest, spec.usage).map(Command::Income),
        "market" => no_arguments(command, &rest, Command::Market),
        "alerts" => no_arguments(command, &rest, Command::Alerts),
        "approvals" => no_arguments(command, &rest, Command::Approvals),
        "validator" => match rest.as_slice() {
            [] => Err(ParseError::MissingArgument {
                command,
                argument: "a validator NAME",
                usage: spec.usage,
            }),
            [name] => Ok(Command::Validator {
                name: name_argument(command, name)?,
            }),
            _ => Err(ParseError::InvalidArgument {
                command,
                message: "takes one validator name".to_owned(),
                usage: spec.usage,
            }),
        },
        "earnings" => match rest.as_slice() {
            [] => Ok(Command::Earnings {
                period: Period::Week,
            }),
            [period] => Period::parse(period)
                .map(|period| Command::Earnings { period })
                .map_err(|_| ParseError::InvalidArgument {
                    command,
                    message: format!(
                        "unknown period {:?}; the periods are day, week and month",
                        period.chars().take(40).collect::<String>()
                    ),
                    usage: spec.usage,
                }),
            _ => Err(ParseError::InvalidArgument {
                command,
                message: "takes one period: day, week or month".to_owned(),
                usage: spec.usage,
            }),
        },
        "audit" => match rest.as_slice() {
            [] => Ok(Command::Audit {
                limit: DEFAULT_AUDIT_ENTRIES,
            }),
            [count] => match count.parse::<usize>() {
                Ok(limit) if (1..=MAX_AUDIT_ENTRIES).contains(&limit) => {
                    Ok(Command::Audit { limit })
                }
                _ => Err(ParseError::InvalidArgument {
                    command,
                    message: format!(
                        "N must be a number from 1 to {MAX_AUDIT_ENTRIES}, not {:?}",
                        count.chars().take(40).collect::<String>()
                    ),
                    usage: spec.usage,
                }),
            },
            _ => Err(ParseError::InvalidArgument {
                command,
                message: "takes at most one number".to_owned(),
                usage: spec.usage,
            }),
        },
        "pause" => {
            let (scope, reason) = match rest.split_first() {
                None => (None, String::new()),
                Some((scope, reason)) => (Some(*scope), reason.join(" ")),
            };
            Ok(Command::Pause {
                agent: scope_argument(command, scope)?,
                reason,
            })
        }
        "resume" => match rest.as_slice() {
            [] => Ok(Command::Resume { agent: None }),
            [scope] => Ok(Command::Resume {
                agent: scope_argument(command, Some(scope))?,
            }),
            _ => Err(ParseError::InvalidArgument {
                command,
                message: "takes at most one agent name (or all)".to_owned(),
                usage: spec.usage,
            }),
        },
        "silence" => Ok(Command::Silence {
            arguments: rest.join(" "),
        }),
        "ack" => Ok(Command::Ack {
            arguments: rest.join(" "),
        }),
        _ => Err(ParseError::UnknownCommand { name }),
    }
}

/// `all` (or nothing) is every agent; anything else names one agent.
fn scope_argument(
    command: &'static str,
    scope: Option<&str>,
) -> Result<Option<String>, ParseError> {
    match scope {
        None => Ok(None),
        Some(scope) if scope.eq_ignore_ascii_case("all") => Ok(None),
        Some(scope) => name_argument(command, scope).map(Some),
    }
}

/// What `/expense` was given; the category and the amount's size are checked against
/// `[finance]` when the proposal is built.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpenseRequest {
    /// Positive, as typed ("49.90").
    pub amount: String,
    /// Upper case.
    pub currency: String,
    pub category: String,
    pub subcategory: Option<String>,
    pub counterparty: String,
    pub description: String,
}

/// `AMOUNT CURRENCY CATEGORY[/SUB] COUNTERPARTY[: DESCRIPTION]`; the counterparty may be
/// several words, the description starts after the first `:`.
fn expense(rest: &[&str], usage: &'static str) -> Result<ExpenseRequest, ParseError> {
    let line = money_line(
        ("expense", "category"),
        (
            "an amount, a currency, a category and who is paid",
            "who is paid (before the ':')",
        ),
        rest,
        usage,
    )?;
    Ok(ExpenseRequest {
        amount: line.amount,
        currency: line.currency,
        category: line.name,
        subcategory: line.sub,
        counterparty: line.counterparty,
        description: line.description,
    })
}

/// What `/income` was given; the stream is checked against `[finance]` when it is booked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncomeRequest {
    /// Positive, as typed ("1200.50").
    pub amount: String,
    /// Upper case.
    pub currency: String,
    pub stream: String,
    pub counterparty: String,
    pub description: String,
}

/// `AMOUNT CURRENCY STREAM PAYER[: DESCRIPTION]`, as `/expense` reads its line.
fn income(rest: &[&str], usage: &'static str) -> Result<IncomeRequest, ParseError> {
    let line = money_line(
        ("income", "stream"),
        (
            "an amount, a currency, a stream and who paid",
            "who paid (before the ':')",
        ),
        rest,
        usage,
    )?;
    if let Some(sub) = line.sub {
        return Err(ParseError::InvalidArgument {
            command: "income",
            message: format!(
                "a revenue stream has no sub-stream: give {:?}, not {:?}",
                line.name,
                format!("{}/{sub}", line.name)
            ),
            usage,
        });
    }
    Ok(IncomeRequest {
        amount: line.amount,
        currency: line.currency,
        stream: line.name,
        counterparty: line.counterparty,
        description: line.description,
    })
}

/// `AMOUNT CURRENCY NAME[/SUB] COUNTERPARTY[: DESCRIPTION]`, read for `/expense` and
/// `/income`.
struct MoneyLine {
    amount: String,
    currency: String,
    name: String,
    sub: Option<String>,
    counterparty: String,
    description: String,
}

/// `(command, what the name is)`, `(what is missing, what is missing after the name)`.
fn money_line(
    (command, what): (&'static str, &'static str),
    (arguments, who): (&'static str, &'static str),
    rest: &[&str],
    usage: &'static str,
) -> Result<MoneyLine, ParseError> {
    let invalid = |message: String| ParseError::InvalidArgument {
        command,
        message,
        usage,
    };
    let (amount, currency, category, tail) = match rest {
        [amount, currency, category, tail @ ..] if !tail.is_empty() => {
            (*amount, *currency, *category, tail.join(" "))
        }
        _ => {
            return Err(ParseError::MissingArgument {
                command,
                argument: arguments,
                usage,
            });
        }
    };
    let clip = |text: &str| text.chars().take(40).collect::<String>();
    // A comma is a decimal comma ("49,90"); "1,200" could be either, so it is asked again.
    if let Some((_, after)) = amount.rsplit_once(',')
        && after.len() == 3
        && after.bytes().all(|b| b.is_ascii_digit())
        && !amount.contains('.')
    {
        return Err(invalid(format!(
            "{:?} is ambiguous: write 1200 for twelve hundred, 1.2 for one point two",
            clip(amount)
        )));
    }
    let normalized = amount.replace(',', ".");
    let valid_amount = normalized
        .parse::<rust_decimal::Decimal>()
        .ok()
        .filter(|value| value.is_sign_positive() && !value.is_zero());
    if valid_amount.is_none() {
        return Err(invalid(format!(
            "the amount {:?} is not a positive number like 49.90",
            clip(amount)
        )));
    }
    let currency = currency.to_uppercase();
    if !agents::finance::is_currency_code(&currency) {
        return Err(invalid(format!(
            "{:?} is not a currency code like USD, EUR or TON",
            clip(&currency)
        )));
    }
    let (category, subcategory) = match category.split_once('/') {
        Some((category, sub)) => (category, Some(sub)),
        None => (category, None),
    };
    for part in std::iter::once(category).chain(subcategory) {
        if !valid_name(part) {
            return Err(invalid(format!(
                "{:?} is not a {what} name (letters, digits, '-', '_' and '.')",
                clip(part)
            )));
        }
    }
    let (counterparty, description) = match tail.split_once(':') {
        Some((counterparty, description)) => (counterparty.trim(), description.trim()),
        None => (tail.trim(), ""),
    };
    if counterparty.is_empty() {
        return Err(ParseError::MissingArgument {
            command,
            argument: who,
            usage,
        });
    }
    Ok(MoneyLine {
        amount: normalized,
        currency,
        name: category.to_lowercase(),
        sub: subcategory.map(str::to_lowercase),
        counterparty: counterparty.to_owned(),
        description: description.to_owned(),
    })
}

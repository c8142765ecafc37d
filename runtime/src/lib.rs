//! The `command-center` daemon and CLI.
//!
//! This crate holds configuration ([`config`]), the supervision tree ([`supervisor`]), the
//! alert router ([`router`]), the notifier ([`notifier`]), the HTTP port ([`http`]), the chat
//! command layer shared by Telegram, Slack, the CLI and the API ([`commands`]), the reasoner's
//! read-only tools and `propose_action` ([`assistant`]), the finance ledger's imports, reports,
//! forecasts and backtests ([`finance`]), the daemon's
//! wiring ([`daemon`]) and the command line ([`cli`]). It is the only crate that executes
//! effects; agents only read and propose.
//!
//! What it must never do: put a secret in a log line, an audit entry or an error message, or
//! act before the journal has recorded why.

pub mod assistant;
pub mod briefing;
pub mod channels;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod executors;
pub mod finance;
pub mod gate;
pub mod http;
pub mod logging;
pub mod notifier;
pub mod policy_watch;
pub mod router;
pub mod supervisor;
#[cfg(test)]
mod test_support;
pub mod vectors;

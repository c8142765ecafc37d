//! Policies: which operations may run on their own, which need whose approval, which never run.
//!
//! This crate holds proposals and decisions ([`Proposal`], [`Decision`]), the gate
//! ([`PolicyEngine`]: policy files validated against `schema.cedarschema`, evaluated with
//! Cedar), and the example cases that pin what the policies decide ([`run_cases`]).
//!
//! What it must never do: IO other than reading the policy files it is pointed at, read a
//! clock, or touch the network. Evaluation is pure and total: a broken policy file never
//! loosens anything.

use std::fmt;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

mod cases;
mod engine;
mod proposal;

pub use cases::{CaseOutcome, run_cases};
pub use engine::{DEFAULT_APPROVAL_WINDOW, PolicyEngine, PolicyMeta};
pub use proposal::{ApprovalCheck, Decision, DecisionContext, Operation, Proposal, Proposer, Risk};

/// Name of the schema file inside a policy directory.
pub const SCHEMA_FILE: &str = "schema.cedarschema";

/// One problem in a policy directory.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What a valid policy directory holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySummary {
    pub files: usize,
    pub policies: usize,
    pub schema: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub(crate) fn diagnostic_problems(
    file: &Path,
    text: &str,
    diagnostic: &dyn Diagnostic,
    prefix: &str,
) -> Vec<PolicyProblem> {
    let mut message = format!("{prefix}{diagnostic}");
    if let Some(help) = diagnostic.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    let line = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| line_of(text, label.offset()));
    let mut problems = vec![PolicyProblem {
        file: file.to_path_buf(),
        line,
        message,
    }];
    if let Some(related) = diagnostic.related() {
        for inner in related {
            problems.extend(diagnostic_problems(file, text, inner, prefix));
        }
    }
    problems
}

pub(crate) fn read(file: &Path) -> Result<String, PolicyProblem> {
    std::fs::read_to_string(file).map_err(|error| PolicyProblem {
        file: file.to_path_buf(),
        line: None,
        message: format!("cannot read: {error}"),
    })
}

/// Validates every `*.cedar` file of `dir` against `dir/schema.cedarschema`, and their
/// annotations; every problem at once.
pub fn check_dir(dir: &Path) -> Result<PolicySummary, Vec<PolicyProblem>> {
    PolicyEngine::load(dir).map(|engine| engine.summary().clone())
}

#[cfg(test)]
mod tests;

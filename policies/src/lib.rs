//! Policies: which operations may run on their own, which need whose approval, which never run.
//!
//! This crate holds the policy files' validation against `schema.cedarschema` (Cedar), used by
//! `command-center check`; the gate that evaluates proposals builds on the same loader.
//!
//! What it must never do: IO other than reading the policy files it is pointed at, read a
//! clock, or touch the network. Evaluation is pure and total: a broken policy file never
//! loosens anything.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

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

fn diagnostic_problems(
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

fn read(file: &Path) -> Result<String, PolicyProblem> {
    std::fs::read_to_string(file).map_err(|error| PolicyProblem {
        file: file.to_path_buf(),
        line: None,
        message: format!("cannot read: {error}"),
    })
}

/// Validates every `*.cedar` file of `dir` against `dir/schema.cedarschema`; every problem at
/// once.
pub fn check_dir(dir: &Path) -> Result<PolicySummary, Vec<PolicyProblem>> {
    let schema_path = dir.join(SCHEMA_FILE);
    let schema_text = read(&schema_path).map_err(|problem| vec![problem])?;
    let schema = match Schema::from_cedarschema_str(&schema_text) {
        Ok((schema, _warnings)) => schema,
        Err(error) => {
            return Err(diagnostic_problems(&schema_path, &schema_text, &error, ""));
        }
    };
    let validator = Validator::new(schema);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cedar"))
            .collect(),
        Err(error) => {
            return Err(vec![PolicyProblem {
                file: dir.to_path_buf(),
                line: None,
                message: format!("cannot list the policy directory: {error}"),
            }]);
        }
    };
    files.sort();
    if files.is_empty() {
        return Err(vec![PolicyProblem {
            file: dir.to_path_buf(),
            line: None,
            message: "no *.cedar policy files; without policies nothing may run on its own"
                .to_owned(),
        }]);
    }
    let mut problems = Vec::new();
    let mut policies = 0;
    for file in &files {
        let text = match read(file) {
            Ok(text) => text,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let set = match PolicySet::from_str(&text) {
            Ok(set) => set,
            Err(errors) => {
                problems.extend(diagnostic_problems(file, &text, &errors, ""));
                continue;
            }
        };
        policies += set.policies().count();
        let result = validator.validate(&set, ValidationMode::Strict);
        for error in result.validation_errors() {
            problems.extend(diagnostic_problems(file, &text, error, ""));
        }
    }
    if problems.is_empty() {
        Ok(PolicySummary {
            files: files.len(),
            policies,
            schema: schema_path.display().to_string(),
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;

//! Prompts are Markdown files in `prompts/`, one per agent, with named variables.
//!
//! A prompt starts with a front matter block that declares its variables:
//! ```text
//! ---
//! name: market
//! variables: prices, window
//! ---
//! Summarise {{prices}} over {{window}}.
//! ```
//! `command-center check` reports undeclared and unused variables with file and line.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// A valid prompt file.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    pub name: String,
    pub path: PathBuf,
    pub variables: BTreeSet<String>,
    pub body: String,
}

/// One problem in a prompt file.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PromptProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Parses one prompt file's text.
pub fn parse(path: &Path, text: &str) -> Result<Prompt, Vec<PromptProblem>> {
    let problem = |line: Option<usize>, message: String| PromptProblem {
        file: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, line)| line.trim()) != Some("---") {
        return Err(vec![problem(
            Some(1),
            "missing front matter: start with a line `---`, then `name:` and `variables:`, then `---`".to_owned(),
        )]);
    }
    let mut name = None;
    let mut variables = BTreeSet::new();
    let mut body_start = None;
    let mut problems = Vec::new();
    for (index, line) in lines.by_ref() {
        let line = line.trim();
        if line == "---" {
            body_start = Some(index + 1);
            break;
        }
        match line.split_once(':') {
            Some(("name", value)) => name = Some(value.trim().to_owned()),
            Some(("variables", value)) => {
                variables.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                );
            }
            _ if line.is_empty() || line.starts_with('#') => {}
            _ => problems.push(problem(
                Some(index + 1),
                format!("unknown front matter line {line:?}; expected `name:` or `variables:`"),
            )),
        }
    }
    let Some(body_start) = body_start else {
        return Err(vec![problem(
            None,
            "front matter is not closed with a `---` line".to_owned(),
        )]);
    };
    let Some(name) = name.filter(|name| !name.is_empty()) else {
        problems.push(problem(Some(1), "front matter has no `name:`".to_owned()));
        return Err(problems);
    };
    let mut used = BTreeSet::new();
    let body: String = text.lines().skip(body_start).collect::<Vec<_>>().join("\n");
    for (offset, line) in text.lines().enumerate().skip(body_start) {
        let mut rest = line;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                problems.push(problem(
                    Some(offset + 1),
                    "`{{` without a closing `}}`".to_owned(),
                ));
                break;
            };
            let variable = after[..close].trim();
            if !variables.contains(variable) {
                problems.push(problem(
                    Some(offset + 1),
                    format!(
                        "variable {{{{{variable}}}}} is not declared in `variables:` ({})",
                        variables.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            used.insert(variable.to_owned());
            rest = &after[close + 2..];
        }
    }
    for unused in variables.difference(&used) {
        problems.push(problem(
            None,
            format!("variable {unused:?} is declared but never used"),
        ));
    }
    if problems.is_empty() {
        Ok(Prompt {
            name,
            path: path.to_path_buf(),
            variables,
            body,
        })
    } else {
        Err(problems)
    }
}

impl Prompt {
    /// Fills in every variable; a missing value is an error naming it.
    pub fn render(&self, values: &[(&str, &str)]) -> Result<String, String> {
        let mut out = self.body.clone();
        for variable in &self.variables {
            let Some((_, value)) = values.iter().find(|(name, _)| name == variable) else {
                return Err(format!(
                    "prompt {} needs a value for {{{{{variable}}}}}",
                    self.name
                ));
            };
            out = out.replace(&format!("{{{{{variable}}}}}",), value);
        }
        Ok(out)
    }
}

/// Parses every `*.md` in `dir`; every problem at once.
pub fn check_dir(dir: &Path) -> Result<Vec<Prompt>, Vec<PromptProblem>> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        vec![PromptProblem {
            file: dir.to_path_buf(),
            line: None,
            message: format!("cannot list the prompts directory: {error}"),
        }]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    let mut prompts = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&path, &text) {
                Ok(prompt) => prompts.push(prompt),
                Err(found) => problems.extend(found),
            },
            Err(error) => problems.push(PromptProblem {
                file: path.clone(),
                line: None,
                message: format!("cannot read: {error}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(prompts)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;

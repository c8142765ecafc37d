//! The structured answer every command returns; each channel renders it its own way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a command went, so a channel can colour it and the CLI can pick an exit code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Ok,
    /// The text did not parse (unknown command, bad argument, oversize).
    Invalid,
    /// The caller lacks a role the command needs.
    Refused,
    /// The thing asked about does not exist (a validator name nobody has data for).
    NotFound,
    /// The command exists but what it needs is not built yet.
    Unavailable,
    /// Reading or writing the store failed.
    Failed,
}

/// One labelled value ("Balance: 1 000.00 TON").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

/// A table; columns are ordered by importance, so a narrow screen drops them from the right.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A firing alert, as one line a person reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertLine {
    pub key: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    pub since: DateTime<Utc>,
}

/// How a button looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStyle {
    #[default]
    Default,
    Primary,
    Danger,
}

/// A button. `action_id` is opaque to channels: they hand it back unchanged when pressed
/// (`approve:<proposal id>`, `reject:<id>`, `details:<id>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub label: String,
    pub action_id: String,
    #[serde(default)]
    pub style: ActionStyle,
}

/// What a command answers, before any channel formats it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub outcome: Outcome,
    pub title: String,
    #[serde(default)]
    pub paragraphs: Vec<String>,
    #[serde(default)]
    pub facts: Vec<Fact>,
    #[serde(default)]
    pub tables: Vec<Table>,
    #[serde(default)]
    pub alerts: Vec<AlertLine>,
    #[serde(default)]
    pub actions: Vec<Action>,
}

impl Answer {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// An answer that is only a message with an outcome other than ok.
    pub fn with_outcome(
        outcome: Outcome,
        title: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            outcome,
            title: title.into(),
            paragraphs: vec![text.into()],
            ..Self::default()
        }
    }

    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.paragraphs.push(text.into());
        self
    }

    pub fn fact(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.facts.push(Fact {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    pub fn table(mut self, table: Table) -> Self {
        self.tables.push(table);
        self
    }
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            title: None,
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

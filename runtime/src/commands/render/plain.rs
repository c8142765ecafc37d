//! Plain text: what `command-center ask` prints and the API's `text` field.

use super::layout_table;
use crate::commands::Answer;

/// The answer as plain text, tables at full width.
pub fn render(answer: &Answer) -> String {
    let mut out = String::new();
    out.push_str(&answer.title);
    out.push('\n');
    for paragraph in &answer.paragraphs {
        out.push('\n');
        out.push_str(paragraph);
        out.push('\n');
    }
    if !answer.facts.is_empty() {
        out.push('\n');
        let label_width = answer
            .facts
            .iter()
            .map(|fact| fact.label.chars().count() + 1)
            .max()
            .unwrap_or(0);
        for fact in &answer.facts {
            out.push_str(&format!(
                "  {:<label_width$} {}\n",
                format!("{}:", fact.label),
                fact.value
            ));
        }
    }
    for table in &answer.tables {
        out.push('\n');
        if let Some(title) = &table.title {
            out.push_str(title);
            out.push('\n');
        }
        for line in layout_table(table, None).0 {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !answer.alerts.is_empty() {
        out.push_str("\nAlerts:\n");
        for alert in &answer.alerts {
            out.push_str(&format!(
                "  {:<8} {} (since {})\n",
                alert.severity,
                alert.summary,
                alert.since.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
    if !answer.actions.is_empty() {
        out.push_str("\nActions:\n");
        for action in &answer.actions {
            out.push_str(&format!("  [{}] {}\n", action.label, action.action_id));
        }
    }
    out
}

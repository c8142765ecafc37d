//! Telegram: MarkdownV2 text split into messages Telegram accepts, and an inline keyboard.

use serde::Serialize;

use super::{layout_table, wrap};
use crate::commands::{Action, Answer};

/// Telegram's limit on one message's text.
pub const MESSAGE_LIMIT: usize = 4096;
/// Monospace columns a phone shows without wrapping.
pub const PHONE_COLUMNS: usize = 34;
/// Telegram's limit on a button's callback_data, in bytes.
pub const CALLBACK_DATA_LIMIT: usize = 64;
/// Buttons per keyboard row.
const BUTTONS_PER_ROW: usize = 3;
/// Longest paragraph line before escaping; keeps every line far below the message limit.
const PARAGRAPH_LINE_CHARS: usize = 1000;

const RESERVED: &[char] = &[
    '_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!', '\\',
];

/// One message to send with `parse_mode = "MarkdownV2"`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TelegramMessage {
    pub text: String,
    /// `{"inline_keyboard": [[{"text", "callback_data"}]]}`, on the last message only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<serde_json::Value>,
}

/// Escapes text outside code: every reserved character gets a backslash.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if RESERVED.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text inside a code block: only `` ` `` and `\`.
pub fn escape_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '`' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn severity_mark(severity: &str) -> &'static str {
    match severity {
        "critical" => "🔴",
        "warning" => "🟠",
        _ => "🔵",
    }
}

/// The whole answer as one MarkdownV2 text (before splitting).
pub fn markdown(answer: &Answer) -> String {
    let mut lines: Vec<String> = vec![format!("*{}*", escape(&answer.title))];
    for paragraph in &answer.paragraphs {
        lines.push(String::new());
        lines.extend(
            wrap(paragraph, PARAGRAPH_LINE_CHARS)
                .iter()
                .map(|line| escape(line)),
        );
    }
    if !answer.facts.is_empty() {
        lines.push(String::new());
        for fact in &answer.facts {
            lines.push(format!(
                "*{}:* {}",
                escape(&fact.label),
                escape(&fact.value)
            ));
        }
    }
    for table in &answer.tables {
        lines.push(String::new());
        if let Some(title) = &table.title {
            lines.push(format!("_{}_", escape(title)));
        }
        let (table_lines, dropped) = layout_table(table, Some(PHONE_COLUMNS));
        lines.push("```".to_owned());
        lines.extend(table_lines.iter().map(|line| escape_code(line)));
        lines.push("```".to_owned());
        if !dropped.is_empty() {
            lines.push(format!(
                "_{}_",
                escape(&format!("Left out on a phone: {}", dropped.join(", ")))
            ));
        }
    }
    if !answer.alerts.is_empty() {
        lines.push(String::new());
        lines.push("*Alerts*".to_owned());
        for alert in &answer.alerts {
            lines.push(format!(
                "{} {} {}",
                severity_mark(&alert.severity),
                escape(&alert.summary),
                escape(&format!("(since {})", alert.since.format("%m-%d %H:%M")))
            ));
        }
    }
    if answer.actions.iter().any(|action| !callback_fits(action)) {
        lines.push(String::new());
        lines.push(escape(
            "Some buttons could not be attached (identifier too long); use /approvals in the CLI: command-center proposals list.",
        ));
    }
    lines.join("\n")
}

fn callback_fits(action: &Action) -> bool {
    !action.action_id.is_empty() && action.action_id.len() <= CALLBACK_DATA_LIMIT
}

/// The inline keyboard for the answer's actions; actions whose id does not fit in
/// callback_data are left out (the text says so).
pub fn keyboard(actions: &[Action]) -> Option<serde_json::Value> {
    let buttons: Vec<serde_json::Value> = actions
        .iter()
        .filter(|action| callback_fits(action))
        .map(|action| {
            serde_json::json!({
                "text": action.label,
                "callback_data": action.action_id,
            })
        })
        .collect();
    if buttons.is_empty() {
        return None;
    }
    let rows: Vec<serde_json::Value> = buttons
        .chunks(BUTTONS_PER_ROW)
        .map(|row| serde_json::Value::Array(row.to_vec()))
        .collect();
    Some(serde_json::json!({ "inline_keyboard": rows }))
}

/// Telegram counts text in UTF-16 code units; so does this.
fn length(text: &str) -> usize {
    text.encode_utf16().count()
}

fn is_fence(line: &str) -> bool {
    line.starts_with("```")
}

/// Splits MarkdownV2 text into parts of at most `limit` UTF-16 units, on line boundaries; a
/// code block cut by a split is closed at the end of one part and reopened in the next.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    const FENCE: &str = "```";
    // Room for a closing fence ("\n```") and a reopening fence ("```\n").
    let reserve = FENCE.len() + 1;
    let limit = limit.max(4 * reserve);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_code = false;
    // Whether `current` has no line yet (an empty line is still a line).
    let mut fresh = true;
    for source_line in text.split('\n') {
        // A line too long for a part on its own is cut (never between `\` and what it escapes).
        let mut pieces = Vec::new();
        let mut rest = source_line.to_owned();
        let piece_limit = limit - 2 * reserve;
        while length(&rest) > piece_limit {
            let mut head = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                let extra = if c == '\\' {
                    chars.peek().map_or(0, |next| next.len_utf16())
                } else {
                    0
                };
                if length(&head) + c.len_utf16() + extra > piece_limit {
                    break;
                }
                head.push(c);
                if extra > 0
                    && let Some(next) = chars.next()
                {
                    head.push(next);
                }
            }
            rest = rest[head.len()..].to_owned();
            pieces.push(head);
        }
        pieces.push(rest);
        for line in pieces {
            let opens_or_closes = is_fence(&line);
            let in_code_after = in_code != opens_or_closes;
            let separator = usize::from(!fresh);
            let closing = if in_code_after { reserve } else { 0 };
            if !fresh && length(&current) + separator + length(&line) + closing > limit {
                if in_code {
                    current.push('\n');
                    current.push_str(FENCE);
                }
                parts.push(std::mem::take(&mut current));
                fresh = true;
                if in_code {
                    current.push_str(FENCE);
                    fresh = false;
                }
            }
            if !fresh {
                current.push('\n');
            }
            fresh = false;
            current.push_str(&line);
            in_code = in_code_after;
        }
    }
    if !fresh {
        if in_code {
            current.push('\n');
            current.push_str(FENCE);
        }
        parts.push(current);
    }
    parts
}

/// The answer as messages to send in order; the keyboard rides on the last one.
pub fn render(answer: &Answer) -> Vec<TelegramMessage> {
    let parts = split(&markdown(answer), MESSAGE_LIMIT);
    let count = parts.len();
    let keyboard = keyboard(&answer.actions);
    parts
        .into_iter()
        .enumerate()
        .map(|(index, text)| TelegramMessage {
            text,
            reply_markup: if index + 1 == count {
                keyboard.clone()
            } else {
                None
            },
        })
        .collect()
}

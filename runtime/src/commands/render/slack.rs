//! Slack: Block Kit JSON within Slack's limits (50 blocks, 3000 characters a section).

use serde_json::{Value, json};

use super::{layout_table, wrap};
use crate::commands::{ActionStyle, Answer};

/// Blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Characters in a section's text.
pub const SECTION_TEXT_LIMIT: usize = 3000;
/// Characters in a header's text.
pub const HEADER_TEXT_LIMIT: usize = 150;
/// Fields in one section, and characters in one field.
pub const FIELDS_PER_SECTION: usize = 10;
pub const FIELD_TEXT_LIMIT: usize = 2000;
/// Buttons in one actions block, and characters of a button's label.
pub const BUTTONS_PER_BLOCK: usize = 25;
pub const BUTTON_TEXT_LIMIT: usize = 75;
/// Identifier lengths Slack accepts.
pub const ACTION_ID_LIMIT: usize = 255;
/// Slack's desktop shows this much monospace text without wrapping; phones scroll.
const TABLE_COLUMNS: usize = 72;
/// The notification text.
const FALLBACK_CHARS: usize = 300;

/// Escapes the three characters Slack's mrkdwn reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn cut(text: &str, max: usize) -> String {
    super::cut(text, max)
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

/// Packs escaped lines into section texts of at most `limit` characters, each wrapped in
/// `prefix`/`suffix` (a code fence, or nothing).
fn pack(lines: &[String], prefix: &str, suffix: &str) -> Vec<String> {
    let room = SECTION_TEXT_LIMIT - chars(prefix) - chars(suffix);
    let mut texts = Vec::new();
    let mut current = String::new();
    let mut fresh = true;
    for line in lines.iter().flat_map(|line| wrap(line, room)) {
        if !fresh && chars(&current) + 1 + chars(&line) > room {
            texts.push(format!("{prefix}{current}{suffix}"));
            current.clear();
            fresh = true;
        }
        if !fresh {
            current.push('\n');
        }
        current.push_str(&line);
        fresh = false;
    }
    if !fresh {
        texts.push(format!("{prefix}{current}{suffix}"));
    }
    texts
}

fn severity_mark(severity: &str) -> &'static str {
    match severity {
        "critical" => ":red_circle:",
        "warning" => ":large_orange_circle:",
        _ => ":large_blue_circle:",
    }
}

/// The answer as a message payload: `{"text": <notification text>, "blocks": [...]}`.
pub fn render(answer: &Answer) -> Value {
    let mut blocks: Vec<Value> = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": cut(&answer.title, HEADER_TEXT_LIMIT), "emoji": true }
    })];
    for paragraph in &answer.paragraphs {
        let lines: Vec<String> = paragraph.split('\n').map(escape).collect();
        blocks.extend(pack(&lines, "", "").into_iter().map(section));
    }
    for facts in answer.facts.chunks(FIELDS_PER_SECTION) {
        let fields: Vec<Value> = facts
            .iter()
            .map(|fact| {
                json!({
                    "type": "mrkdwn",
                    "text": cut(
                        &format!("*{}*\n{}", escape(&fact.label), escape(&fact.value)),
                        FIELD_TEXT_LIMIT
                    ),
                })
            })
            .collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    for table in &answer.tables {
        if let Some(title) = &table.title {
            blocks.push(section(format!("*{}*", escape(title))));
        }
        let (lines, dropped) = layout_table(table, Some(TABLE_COLUMNS));
        let lines: Vec<String> = lines.iter().map(|line| escape(line)).collect();
        blocks.extend(pack(&lines, "```\n", "\n```").into_iter().map(section));
        if !dropped.is_empty() {
            blocks.push(json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": escape(&format!("Left out: {}", dropped.join(", "))) }]
            }));
        }
    }
    if !answer.alerts.is_empty() {
        let lines: Vec<String> = answer
            .alerts
            .iter()
            .map(|alert| {
                format!(
                    "{} *{}* {} (since {})",
                    severity_mark(&alert.severity),
                    escape(&alert.severity),
                    escape(&alert.summary),
                    alert.since.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .collect();
        blocks.extend(pack(&lines, "", "").into_iter().map(section));
    }
    let buttons: Vec<Value> = answer
        .actions
        .iter()
        .filter(|action| !action.action_id.is_empty() && action.action_id.len() <= ACTION_ID_LIMIT)
        .map(|action| {
            let mut button = json!({
                "type": "button",
                "text": { "type": "plain_text", "text": cut(&action.label, BUTTON_TEXT_LIMIT) },
                "action_id": action.action_id,
                "value": action.action_id,
            });
            let style = match action.style {
                ActionStyle::Primary => Some("primary"),
                ActionStyle::Danger => Some("danger"),
                ActionStyle::Default => None,
            };
            if let (Some(style), Some(object)) = (style, button.as_object_mut()) {
                object.insert("style".to_owned(), json!(style));
            }
            button
        })
        .collect();
    let mut action_blocks: Vec<Value> = buttons
        .chunks(BUTTONS_PER_BLOCK)
        .map(|chunk| json!({ "type": "actions", "elements": chunk }))
        .collect();
    // Buttons matter most: content gives way to them when the message is too long.
    let room = MAX_BLOCKS.saturating_sub(action_blocks.len());
    if blocks.len() > room {
        let keep = room.saturating_sub(1);
        let left_out = blocks.len() - keep;
        blocks.truncate(keep);
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!(
                "Cut short: {left_out} more blocks did not fit in one Slack message; `command-center ask` prints it all."
            ) }]
        }));
    }
    blocks.append(&mut action_blocks);
    blocks.truncate(MAX_BLOCKS);
    let fallback = match answer.paragraphs.first() {
        Some(first) => format!("{}: {first}", answer.title),
        None => answer.title.clone(),
    };
    // The notification text is mrkdwn too.
    let fallback = escape(&fallback);
    json!({ "text": cut(&fallback, FALLBACK_CHARS), "blocks": blocks })
}

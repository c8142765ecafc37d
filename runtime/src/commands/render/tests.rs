use chrono::{TimeZone, Utc};

use super::{plain, slack, telegram};
use crate::commands::{Action, ActionStyle, AlertLine, Answer, Table};

const RESERVED: &str = "_*[]()~`>#+-=|{}.!";

fn validators_answer() -> Answer {
    let mut table = Table::new([
        "NAME", "TON", "SET", "LAG", "DISK", "24H", "RANK", "EFFIC", "ALERTS",
    ]);
    table.row([
        "validator-1",
        "970.50",
        "yes",
        "3s",
        "83%",
        "-29.50",
        "12/400",
        "99.8%",
        "1",
    ]);
    table.row(["validator-2", "5.00", "NO", "-", "-", "-", "-", "-", "0"]);
    let mut answer = Answer::new("Validators")
        .fact("Total", "2")
        .fact("In the current set", "1 of 2")
        .table(table);
    answer.alerts.push(AlertLine {
        key: "validators.disk_usage/validator-1:/var/ton-work".into(),
        severity: "warning".into(),
        summary: "validator-1: disk 82.5% on /var/ton-work".into(),
        since: Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap(),
    });
    answer
}

/// Text outside code spans with escapes removed must contain no bare reserved character.
fn assert_escaped(markdown: &str) {
    let mut in_code = false;
    for line in markdown.split('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next();
                    assert!(
                        matches!(next, Some('`' | '\\')),
                        "bad escape in code: {line}"
                    );
                } else {
                    assert_ne!(c, '`', "bare backtick in code: {line}");
                }
            }
            continue;
        }
        // Formatting we add: *bold* and _italic_ wrappers at the ends of a line or a label.
        let mut chars = line.chars().peekable();
        let mut position = 0;
        let length = line.chars().count();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next();
                assert!(
                    next.is_some_and(|next| RESERVED.contains(next) || next == '\\'),
                    "escape of a plain character in {line:?}"
                );
                position += 2;
                continue;
            }
            if RESERVED.contains(c) {
                let wrapper = (c == '*' || c == '_')
                    && (position == 0 || position + 1 == length || line[..].starts_with('*'));
                assert!(wrapper, "bare {c:?} at {position} in {line:?}");
            }
            position += 1;
        }
    }
}

#[test]
fn markdown_v2_escapes_every_reserved_character_outside_code() {
    assert_eq!(
        telegram::escape(RESERVED),
        "\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!"
    );
    for c in RESERVED.chars() {
        assert_eq!(telegram::escape(&c.to_string()), format!("\\{c}"));
    }
    assert_eq!(telegram::escape("a\\b"), "a\\\\b");
    assert_eq!(telegram::escape("plain words 123"), "plain words 123");
    assert_eq!(telegram::escape_code("a`b\\c_*."), "a\\`b\\\\c_*.");

    let mut answer = validators_answer();
    answer.title = format!("Title {RESERVED}");
    answer.paragraphs.push(format!("para {RESERVED} end"));
    answer = answer.fact(format!("label {RESERVED}"), format!("value {RESERVED}"));
    let mut table = Table::new(["K", "V"]);
    table.row(["`x`", "a\\b"]);
    answer.tables.push(table.titled(format!("t {RESERVED}")));
    let markdown = telegram::markdown(&answer);
    assert!(markdown.contains(&format!("*Title {}*", telegram::escape(RESERVED))));
    assert!(markdown.contains(&format!("para {} end", telegram::escape(RESERVED))));
    assert!(markdown.contains("\\`x\\`"), "{markdown}");
    assert_escaped(&markdown);
}

#[test]
fn telegram_tables_fit_a_phone() {
    let answer = validators_answer();
    let markdown = telegram::markdown(&answer);
    let mut in_code = false;
    let mut code_lines = 0;
    for line in markdown.split('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if in_code {
            code_lines += 1;
            assert!(
                line.chars().count() <= telegram::PHONE_COLUMNS,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
    assert_eq!(code_lines, 3, "header and two rows:\n{markdown}");
    assert!(markdown.contains("Left out on a phone"), "{markdown}");
    // Two-column tables become pairs instead of losing their second column.
    let mut help = Table::new(["COMMAND", "WHAT IT DOES"]);
    help.row([
        "/pause [all|AGENT] [reason]",
        "Stop autonomous actions (operators)",
    ]);
    let (lines, dropped) = super::layout_table(&help, Some(telegram::PHONE_COLUMNS));
    assert!(dropped.is_empty());
    assert_eq!(
        lines,
        [
            "/pause [all|AGENT] [reason]",
            "  Stop autonomous actions",
            "  (operators)"
        ]
    );
}

fn fence_balance(part: &str) -> usize {
    part.split('\n')
        .filter(|line| line.starts_with("```"))
        .count()
}

#[test]
fn a_ten_thousand_character_answer_splits_into_valid_messages_losing_nothing() {
    let mut answer = Answer::new("Long");
    for index in 0..40 {
        answer = answer.paragraph(format!("Paragraph {index}: {}", "words. ".repeat(20)));
    }
    let mut table = Table::new(["N", "VALUE"]);
    for index in 0..600 {
        table.row([format!("{index}"), format!("value-{index}")]);
    }
    answer = answer.table(table);
    answer.paragraphs.push("x".repeat(6000));
    let whole = telegram::markdown(&answer);
    assert!(whole.chars().count() > 10_000, "{}", whole.chars().count());
    let parts = telegram::split(&whole, telegram::MESSAGE_LIMIT);
    assert!(parts.len() >= 3, "{}", parts.len());
    for part in &parts {
        assert!(part.encode_utf16().count() <= telegram::MESSAGE_LIMIT);
        assert!(part.chars().count() <= telegram::MESSAGE_LIMIT);
        assert_eq!(fence_balance(part) % 2, 0, "unbalanced code block:\n{part}");
        assert!(!part.ends_with('\\'), "a split inside an escape");
    }
    // Nothing lost: without fences, the parts joined are the whole text.
    let content = |text: &str| -> String {
        text.split('\n')
            .filter(|line| !line.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let joined: Vec<String> = parts.iter().map(|part| content(part)).collect();
    assert_eq!(joined.join("\n"), content(&whole));
    // A split inside the table closes the block and reopens it in the next part.
    assert!(
        parts.iter().any(|part| part.starts_with("```\n")),
        "reopened"
    );

    let messages = telegram::render(&answer);
    assert_eq!(messages.len(), parts.len());

    // A tiny limit still terminates and keeps every part within it.
    for part in telegram::split(&whole, 100) {
        assert!(part.encode_utf16().count() <= 100, "{part}");
        assert_eq!(fence_balance(&part) % 2, 0);
    }
    // A long line of escapes is never cut between a backslash and its character.
    let dots = telegram::escape(&".".repeat(5000));
    for part in telegram::split(&dots, telegram::MESSAGE_LIMIT) {
        assert!(
            part.len() % 2 == 0 && part.starts_with('\\'),
            "cut inside an escape"
        );
    }
}

fn approval_actions(id: &str) -> Vec<Action> {
    vec![
        Action {
            label: "Approve".into(),
            action_id: format!("approve:{id}"),
            style: ActionStyle::Primary,
        },
        Action {
            label: "Reject".into(),
            action_id: format!("reject:{id}"),
            style: ActionStyle::Danger,
        },
        Action {
            label: "Details".into(),
            action_id: format!("details:{id}"),
            style: ActionStyle::Default,
        },
    ]
}

#[test]
fn telegram_buttons_are_an_inline_keyboard_with_short_callback_data() {
    let mut answer = Answer::new("Approvals");
    answer.actions = approval_actions("p-20261124120000-1a2b3c");
    answer.actions.extend(approval_actions(&"x".repeat(64)));
    let messages = telegram::render(&answer);
    let keyboard = messages.last().unwrap().reply_markup.clone().unwrap();
    let rows = keyboard["inline_keyboard"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the too-long ids are left out");
    assert_eq!(
        rows[0],
        serde_json::json!([
            { "text": "Approve", "callback_data": "approve:p-20261124120000-1a2b3c" },
            { "text": "Reject", "callback_data": "reject:p-20261124120000-1a2b3c" },
            { "text": "Details", "callback_data": "details:p-20261124120000-1a2b3c" },
        ])
    );
    for row in rows {
        for button in row.as_array().unwrap() {
            assert!(
                button["callback_data"].as_str().unwrap().len() <= telegram::CALLBACK_DATA_LIMIT
            );
        }
    }
    assert!(
        messages
            .last()
            .unwrap()
            .text
            .contains("could not be attached")
    );
    assert!(telegram::keyboard(&[]).is_none());
}

#[test]
fn slack_blocks_respect_slack_limits_and_escape_mrkdwn() {
    assert_eq!(slack::escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    let mut answer = validators_answer();
    answer.paragraphs.push("<!channel> & <@U123>".into());
    answer.actions = approval_actions("p-1");
    let message = slack::render(&answer);
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Validators");
    let text = message.to_string();
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;@U123&gt;"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"));
    let fields = blocks
        .iter()
        .find(|block| block.get("fields").is_some())
        .unwrap();
    assert_eq!(fields["fields"][0]["text"], "*Total*\n2");
    assert!(blocks.iter().any(|block| {
        block["text"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("```\nNAME"))
    }));
    let actions = blocks.last().unwrap();
    assert_eq!(actions["type"], "actions");
    assert_eq!(
        actions["elements"][0],
        serde_json::json!({
            "type": "button",
            "text": { "type": "plain_text", "text": "Approve" },
            "action_id": "approve:p-1",
            "value": "approve:p-1",
            "style": "primary",
        })
    );
    assert!(actions["elements"][2].get("style").is_none());

    // A huge answer: at most 50 blocks, each section at most 3000 characters, buttons kept.
    let mut huge = Answer::new("T".repeat(500));
    for index in 0..100 {
        huge = huge.paragraph(format!("{index} {}", "word ".repeat(800)));
    }
    let mut table = Table::new(["N", "VALUE"]);
    for index in 0..2000 {
        table.row([format!("{index}"), "v".repeat(30)]);
    }
    huge = huge.table(table);
    for index in 0..25 {
        huge = huge.fact(format!("fact {index}"), "y".repeat(5000));
    }
    huge.actions = approval_actions("p-2");
    let message = slack::render(&huge);
    let blocks = message["blocks"].as_array().unwrap();
    assert!(blocks.len() <= slack::MAX_BLOCKS, "{}", blocks.len());
    assert_eq!(blocks.last().unwrap()["type"], "actions", "buttons survive");
    assert!(
        blocks[blocks.len() - 2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Cut short")
    );
    assert!(
        blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= slack::HEADER_TEXT_LIMIT
    );
    for block in blocks {
        if let Some(text) = block["text"]["text"].as_str() {
            assert!(text.chars().count() <= slack::SECTION_TEXT_LIMIT);
        }
        if let Some(fields) = block["fields"].as_array() {
            assert!(fields.len() <= slack::FIELDS_PER_SECTION);
            for field in fields {
                assert!(field["text"].as_str().unwrap().chars().count() <= slack::FIELD_TEXT_LIMIT);
            }
        }
    }
    // Long tables become several code sections, each a closed block.
    let mut long_table = Answer::new("t");
    let mut table = Table::new(["N", "VALUE"]);
    for index in 0..400 {
        table.row([format!("{index}"), "v".repeat(30)]);
    }
    long_table = long_table.table(table);
    let message = slack::render(&long_table);
    let sections: Vec<&str> = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|block| block["text"]["text"].as_str())
        .filter(|text| text.starts_with("```"))
        .collect();
    assert!(sections.len() >= 2);
    for section in sections {
        assert!(section.ends_with("\n```") && section.chars().count() <= slack::SECTION_TEXT_LIMIT);
    }
}

#[test]
fn plain_text_keeps_every_column() {
    let text = plain::render(&validators_answer());
    let expected = "\
Validators

  Total:              2
  In the current set: 1 of 2

NAME           TON SET LAG DISK    24H   RANK EFFIC ALERTS
validator-1 970.50 yes  3s  83% -29.50 12/400 99.8%      1
validator-2   5.00 NO    -    -      -      -     -      0

Alerts:
  warning  validator-1: disk 82.5% on /var/ton-work (since 2026-11-24 11:00 UTC)
";
    assert_eq!(text, expected, "\n{text}");
}

use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::*;
use crate::sim::{Fault, FaultKind, SimHandle, SimService};
use crate::test_support::{SECRET, fast_policy, fixed_server, start_sim};

// ---- fixtures ----

/// Slack's worked example from "Verifying requests from Slack".
const DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DOCS_TIMESTAMP: &str = "1531420618";
const DOCS_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOCS_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const DOCS_NOW: i64 = 1_531_420_618;

fn docs_secret() -> Secret {
    Secret::new(DOCS_SECRET)
}

fn verify_docs(
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SlackAuthError> {
    verify_request(&docs_secret(), timestamp, signature, body, now)
}

/// A form body encoded the way Slack encodes it.
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

const SLASH_FIELDS: [(&str, &str); 10] = [
    ("team_id", "T0CC0001"),
    ("team_domain", "ops"),
    ("channel_id", "C0ALERTS1"),
    ("channel_name", "alerts"),
    ("user_id", "U0OPERATOR"),
    ("user_name", "operator"),
    ("command", "/cc"),
    ("text", "validator validator-1 & more"),
    (
        "response_url",
        "https://hooks.slack.com/commands/T0CC0001/1/abc",
    ),
    ("trigger_id", "1.2.3"),
];

fn slash_without(field: &str) -> String {
    let pairs: Vec<_> = SLASH_FIELDS
        .iter()
        .copied()
        .filter(|(k, _)| *k != field)
        .collect();
    form(&pairs)
}

fn slash_with(field: &str, value: &str) -> String {
    let pairs: Vec<_> = SLASH_FIELDS
        .iter()
        .map(|(k, v)| (*k, if *k == field { value } else { *v }))
        .collect();
    form(&pairs)
}

/// A block_actions payload shaped like a real one (a button in a bot message).
fn approval_payload() -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": "U0APPROVER", "username": "alice", "name": "alice", "team_id": "T0CC0001"},
        "api_app_id": "A0CC",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1719936116.634509", "channel_id": "C0ALERTS1", "is_ephemeral": false},
        "trigger_id": "7377717242017.2625160776.f3e5c5297f73a70d5844279fb4e7a26f",
        "team": {"id": "T0CC0001", "domain": "ops"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "C0ALERTS1", "name": "alerts"},
        "message": {"type": "message", "ts": "1719936116.634509", "bot_id": "B0CC", "text": "Approve transfer?", "blocks": []},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0CC0001/1/xyz",
        "actions": [{
            "action_id": "approve",
            "block_id": "approval-42",
            "text": {"type": "plain_text", "text": "Approve", "emoji": true},
            "value": "approval-42",
            "type": "button",
            "action_ts": "1719936125.886532"
        }]
    })
}

fn interaction_body(payload: &Value) -> String {
    form(&[("payload", &payload.to_string())])
}

// ---- request verification ----

#[test]
fn slacks_documented_signing_example_verifies() {
    assert_eq!(
        sign_request(&docs_secret(), DOCS_NOW, DOCS_BODY.as_bytes()),
        DOCS_SIGNATURE
    );
    assert_eq!(
        verify_docs(
            Some(DOCS_TIMESTAMP),
            Some(DOCS_SIGNATURE),
            DOCS_BODY.as_bytes(),
            DOCS_NOW + 10
        ),
        Ok(())
    );
    // Upper-case hex is the same signature.
    let upper = format!("v0={}", DOCS_SIGNATURE[3..].to_ascii_uppercase());
    assert_eq!(
        verify_docs(
            Some(DOCS_TIMESTAMP),
            Some(&upper),
            DOCS_BODY.as_bytes(),
            DOCS_NOW
        ),
        Ok(())
    );
}

#[test]
fn forged_signatures_are_refused() {
    let body = DOCS_BODY.as_bytes();
    let other_secret = sign_request(&Secret::new("not-the-secret"), DOCS_NOW, body);
    let mut flipped = DOCS_SIGNATURE.to_owned();
    flipped.replace_range(
        10..11,
        if &DOCS_SIGNATURE[10..11] == "0" {
            "1"
        } else {
            "0"
        },
    );
    let mut tampered = body.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    // The signature was made for another timestamp (still inside the window).
    let moved = sign_request(&docs_secret(), DOCS_NOW - 1, body);
    for (case, signature, body) in [
        ("other secret", other_secret.as_str(), body),
        ("one digit flipped", flipped.as_str(), body),
        ("body changed", DOCS_SIGNATURE, tampered.as_slice()),
        ("other timestamp", moved.as_str(), body),
        (
            "all zeros",
            "v0=0000000000000000000000000000000000000000000000000000000000000000",
            body,
        ),
    ] {
        assert_eq!(
            verify_docs(Some(DOCS_TIMESTAMP), Some(signature), body, DOCS_NOW),
            Err(SlackAuthError::BadSignature),
            "{case}"
        );
    }
}

#[test]
fn stale_requests_are_refused_and_the_window_is_five_minutes_inclusive() {
    let body = DOCS_BODY.as_bytes();
    let at = |now| verify_docs(Some(DOCS_TIMESTAMP), Some(DOCS_SIGNATURE), body, now);
    assert_eq!(at(DOCS_NOW + 300), Ok(()));
    assert_eq!(
        at(DOCS_NOW + 301),
        Err(SlackAuthError::Stale {
            skew_seconds: 301,
            window_seconds: 300
        })
    );
    let message = at(DOCS_NOW + 86_400).unwrap_err().to_string();
    assert!(message.contains("86400 s in the past"), "{message}");
    assert!(message.contains("300 s window"), "{message}");
    // A stale request is refused before its signature is looked at.
    assert!(matches!(
        verify_docs(Some(DOCS_TIMESTAMP), Some("v0=00"), body, DOCS_NOW + 301),
        Err(SlackAuthError::Stale { .. })
    ));
}

#[test]
fn requests_from_the_future_are_refused() {
    let body = DOCS_BODY.as_bytes();
    let at = |now| verify_docs(Some(DOCS_TIMESTAMP), Some(DOCS_SIGNATURE), body, now);
    assert_eq!(at(DOCS_NOW - 300), Ok(()));
    let error = at(DOCS_NOW - 301).unwrap_err();
    assert_eq!(
        error,
        SlackAuthError::Stale {
            skew_seconds: -301,
            window_seconds: 300
        }
    );
    assert!(error.to_string().contains("301 s in the future"), "{error}");
    // Extreme clocks do not overflow.
    assert!(matches!(at(i64::MIN), Err(SlackAuthError::Stale { .. })));
    assert!(matches!(at(i64::MAX), Err(SlackAuthError::Stale { .. })));
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let body = DOCS_BODY.as_bytes();
    assert_eq!(
        verify_docs(None, Some(DOCS_SIGNATURE), body, DOCS_NOW),
        Err(SlackAuthError::MissingHeader {
            header: TIMESTAMP_HEADER
        })
    );
    assert_eq!(
        verify_docs(Some(DOCS_TIMESTAMP), None, body, DOCS_NOW),
        Err(SlackAuthError::MissingHeader {
            header: SIGNATURE_HEADER
        })
    );
    for timestamp in [
        "",
        "abc",
        "-1531420618",
        "+1531420618",
        "1531420618.5",
        "99999999999999999999",
        "1 5",
    ] {
        assert_eq!(
            verify_docs(Some(timestamp), Some(DOCS_SIGNATURE), body, DOCS_NOW),
            Err(SlackAuthError::MalformedTimestamp),
            "{timestamp:?}"
        );
    }
    let hex64 = &DOCS_SIGNATURE[3..];
    for signature in [
        String::new(),
        hex64.to_owned(),
        format!("v1={hex64}"),
        format!("v0={}", &hex64[..62]),
        format!("v0={hex64}00"),
        format!("v0={}zz", &hex64[..62]),
        "v0=".to_owned(),
    ] {
        assert_eq!(
            verify_docs(Some(DOCS_TIMESTAMP), Some(&signature), body, DOCS_NOW),
            Err(SlackAuthError::MalformedSignature),
            "{signature:?}"
        );
    }
    let message = SlackAuthError::MissingHeader {
        header: SIGNATURE_HEADER,
    }
    .to_string();
    assert!(message.contains("x-slack-signature"), "{message}");
}

#[test]
fn empty_and_non_utf8_bodies_are_verified_as_raw_bytes() {
    let secret = Secret::new(SECRET);
    let now = 1_700_000_000;
    for body in [
        &b""[..],
        &[0xff, 0xfe, 0x00, 0x80][..],
        "payload=%FF".as_bytes(),
    ] {
        let signature = sign_request(&secret, now, body);
        assert_eq!(
            verify_request(&secret, Some(&now.to_string()), Some(&signature), body, now),
            Ok(()),
            "{body:?}"
        );
        let mut other = body.to_vec();
        other.push(b'x');
        assert_eq!(
            verify_request(
                &secret,
                Some(&now.to_string()),
                Some(&signature),
                &other,
                now
            ),
            Err(SlackAuthError::BadSignature)
        );
    }
    // Verified is not parsed: a signed non-UTF-8 body is still refused by the parser.
    assert_eq!(
        parse_slash_command(&[0xff, 0xfe]),
        Err(SlackPayloadError::NotUtf8 { offset: 0 })
    );
}

#[test]
fn an_empty_signing_secret_refuses_everything() {
    let empty = Secret::new("");
    let now = 1_700_000_000;
    let signature = sign_request(&empty, now, b"x");
    assert_eq!(
        verify_request(&empty, Some(&now.to_string()), Some(&signature), b"x", now),
        Err(SlackAuthError::NoSigningSecret)
    );
}

#[test]
fn auth_errors_never_show_the_secret_or_the_expected_signature() {
    let body = DOCS_BODY.as_bytes();
    let wrong = sign_request(&Secret::new("other"), DOCS_NOW, body);
    let guard = ReplayGuard::default();
    guard
        .verify(
            &docs_secret(),
            Some(DOCS_TIMESTAMP),
            Some(DOCS_SIGNATURE),
            body,
            DOCS_NOW,
        )
        .unwrap();
    let errors = [
        verify_docs(Some(DOCS_TIMESTAMP), Some(&wrong), body, DOCS_NOW),
        verify_docs(Some(DOCS_TIMESTAMP), Some("v0=12"), body, DOCS_NOW),
        verify_docs(Some("x"), Some(&wrong), body, DOCS_NOW),
        verify_docs(Some(DOCS_TIMESTAMP), Some(&wrong), body, DOCS_NOW + 999),
        verify_docs(None, None, body, DOCS_NOW),
        guard.verify(
            &docs_secret(),
            Some(DOCS_TIMESTAMP),
            Some(DOCS_SIGNATURE),
            body,
            DOCS_NOW,
        ),
    ];
    for error in errors {
        let error = error.unwrap_err();
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(DOCS_SECRET), "{shown}");
            assert!(!shown.contains(&DOCS_SIGNATURE[3..]), "{shown}");
            assert!(!shown.contains(&wrong[3..]), "{shown}");
            assert!(!shown.contains("xyzz0WbapA4vBCDEFasx0q6G"), "{shown}");
        }
        assert!(!error.kind().is_empty());
    }
}

#[test]
fn a_replayed_request_is_refused_after_it_was_accepted_once() {
    let guard = ReplayGuard::default();
    let body = DOCS_BODY.as_bytes();
    let verify = |signature: &str, now| {
        guard.verify(
            &docs_secret(),
            Some(DOCS_TIMESTAMP),
            Some(signature),
            body,
            now,
        )
    };
    assert_eq!(verify(DOCS_SIGNATURE, DOCS_NOW), Ok(()));
    assert_eq!(
        verify(DOCS_SIGNATURE, DOCS_NOW + 5),
        Err(SlackAuthError::Replayed)
    );
    // The same signature spelled in upper-case hex is the same request.
    let upper = format!("v0={}", DOCS_SIGNATURE[3..].to_ascii_uppercase());
    assert_eq!(verify(&upper, DOCS_NOW + 6), Err(SlackAuthError::Replayed));
    // Once out of the window it is stale, not forgotten-and-accepted.
    assert!(matches!(
        verify(DOCS_SIGNATURE, DOCS_NOW + 301),
        Err(SlackAuthError::Stale { .. })
    ));
    // A forged request is refused as forged and not remembered.
    let forged = sign_request(&Secret::new("x"), DOCS_NOW, body);
    assert_eq!(verify(&forged, DOCS_NOW), Err(SlackAuthError::BadSignature));
    assert_eq!(guard.len(), 1);
    // A different request with the same timestamp is not a replay.
    let secret = docs_secret();
    let other_body = b"command=%2Fcc&text=status";
    let other = sign_request(&secret, DOCS_NOW, other_body);
    assert_eq!(
        guard.verify(
            &secret,
            Some(DOCS_TIMESTAMP),
            Some(&other),
            other_body,
            DOCS_NOW
        ),
        Ok(())
    );
}

#[test]
fn the_replay_guard_evicts_expired_entries_and_stays_bounded() {
    let guard = ReplayGuard::new(3);
    let signature = |n: u8| format!("v0={}", hex::encode([n; 32]));
    let now = 1_700_000_000;
    for n in 0..3u8 {
        guard
            .check_and_remember(&(now + i64::from(n)).to_string(), &signature(n), now)
            .unwrap();
    }
    assert_eq!(guard.len(), 3);
    // Full: the oldest goes first to make room.
    guard
        .check_and_remember(&(now + 10).to_string(), &signature(9), now)
        .unwrap();
    assert_eq!(guard.len(), 3);
    assert_eq!(
        guard.check_and_remember(&(now + 10).to_string(), &signature(9), now),
        Err(SlackAuthError::Replayed)
    );
    // Five minutes later every entry has expired and is swept on the next check.
    let later = now + 10 + REPLAY_WINDOW_SECONDS + 1;
    guard
        .check_and_remember(&later.to_string(), &signature(7), later)
        .unwrap();
    assert_eq!(guard.len(), 1);
    assert!(!guard.is_empty());
    // check_and_remember enforces the window itself too.
    assert!(matches!(
        guard.check_and_remember(&now.to_string(), &signature(1), later),
        Err(SlackAuthError::Stale { .. })
    ));
    assert_eq!(
        guard.check_and_remember("soon", &signature(1), later),
        Err(SlackAuthError::MalformedTimestamp)
    );
}

// ---- payload parsing ----

#[test]
fn the_documented_slash_command_body_parses() {
    let command = parse_slash_command(DOCS_BODY.as_bytes()).unwrap();
    assert_eq!(
        command,
        SlashCommand {
            command: "/webhook-collect".to_owned(),
            text: String::new(),
            user_id: "U2CERLKJA".to_owned(),
            user_name: "roadrunner".to_owned(),
            channel_id: "G8PSS9T3V".to_owned(),
            team_id: "T1DC2JH3J".to_owned(),
            response_url:
                "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
                    .to_owned(),
            trigger_id: "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c".to_owned(),
            enterprise_id: None,
            api_app_id: None,
        }
    );
}

#[test]
fn slash_command_text_is_decoded_and_optional_fields_are_read() {
    let mut pairs = SLASH_FIELDS.to_vec();
    pairs.push(("api_app_id", "A0CC"));
    pairs.push(("enterprise_id", ""));
    let command = parse_slash_command(form(&pairs).as_bytes()).unwrap();
    assert_eq!(command.command, "/cc");
    assert_eq!(command.text, "validator validator-1 & more");
    assert_eq!(command.api_app_id.as_deref(), Some("A0CC"));
    assert_eq!(command.enterprise_id, None);
    // `+` is a space in forms.
    let plus = slash_with("text", "x").replace("text=x", "text=earnings+7d");
    assert_eq!(
        parse_slash_command(plus.as_bytes()).unwrap().text,
        "earnings 7d"
    );
    // text and user_name may be absent.
    let bare = parse_slash_command(slash_without("text").as_bytes()).unwrap();
    assert_eq!(bare.text, "");
    assert_eq!(
        parse_slash_command(slash_without("user_name").as_bytes())
            .unwrap()
            .user_name,
        ""
    );
}

#[test]
fn slash_command_missing_or_invalid_fields_are_named() {
    let check = |body: String, expected: SlackPayloadError| {
        let error = parse_slash_command(body.as_bytes()).unwrap_err();
        assert_eq!(error, expected, "{body}");
        let field = match &expected {
            SlackPayloadError::MissingField { field }
            | SlackPayloadError::InvalidField { field, .. } => field.clone(),
            _ => String::new(),
        };
        assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
    };
    for field in [
        "command",
        "user_id",
        "channel_id",
        "team_id",
        "response_url",
        "trigger_id",
    ] {
        check(
            slash_without(field),
            SlackPayloadError::MissingField {
                field: field.to_owned(),
            },
        );
        check(
            slash_with(field, " "),
            SlackPayloadError::InvalidField {
                field: field.to_owned(),
                reason: "is empty".to_owned(),
            },
        );
    }
    check(
        slash_with("command", "cc"),
        SlackPayloadError::InvalidField {
            field: "command".to_owned(),
            reason: "does not start with '/'".to_owned(),
        },
    );
    for url in [
        "not a url",
        "/relative/path",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ] {
        let error = parse_slash_command(slash_with("response_url", url).as_bytes()).unwrap_err();
        assert!(
            matches!(&error, SlackPayloadError::InvalidField { field, .. } if field == "response_url"),
            "{url}: {error:?}"
        );
        // The URL is a credential: never repeated.
        assert!(!error.to_string().contains(url), "{error}");
    }
}

#[test]
fn malformed_form_bodies_are_errors_not_panics() {
    let long_key = "k".repeat(10_000);
    let cases: Vec<(Vec<u8>, SlackPayloadError)> = vec![
        (Vec::new(), SlackPayloadError::EmptyBody),
        (
            vec![b'a', b'=', 0xc3],
            SlackPayloadError::NotUtf8 { offset: 2 },
        ),
        (b"just some text".to_vec(), SlackPayloadError::NotAForm),
        (
            b"{\"command\": \"/cc\"}".to_vec(),
            SlackPayloadError::NotAForm,
        ),
        (
            format!("{}&user_id=U2", slash_without("x")).into_bytes(),
            SlackPayloadError::DuplicateField {
                field: "user_id".to_owned(),
            },
        ),
        (
            format!("{long_key}=1&{long_key}=2").into_bytes(),
            SlackPayloadError::DuplicateField {
                field: format!("{}…", "k".repeat(40)),
            },
        ),
        (
            b"&&&=&=".to_vec(),
            SlackPayloadError::DuplicateField {
                field: String::new(),
            },
        ),
        (
            b"command=%2Fcc".to_vec(),
            SlackPayloadError::MissingField {
                field: "response_url".to_owned(),
            },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            parse_slash_command(&body),
            Err(expected.clone()),
            "{:?}",
            String::from_utf8_lossy(&body)
        );
        assert!(!expected.kind().is_empty());
    }
    // Broken percent escapes decode leniently, like every form parser; the command still
    // has to be well-formed.
    let broken = slash_with("text", "x").replace("text=x", "text=%ZZ%");
    assert_eq!(parse_slash_command(broken.as_bytes()).unwrap().text, "%ZZ%");
}

#[test]
fn a_block_actions_payload_parses_like_slack_sends_it() {
    let action = parse_block_actions(interaction_body(&approval_payload()).as_bytes()).unwrap();
    assert_eq!(
        action,
        BlockAction {
            user_id: "U0APPROVER".to_owned(),
            user_name: Some("alice".to_owned()),
            team_id: Some("T0CC0001".to_owned()),
            channel_id: Some("C0ALERTS1".to_owned()),
            message_ts: Some("1719936116.634509".to_owned()),
            response_url: Some("https://hooks.slack.com/actions/T0CC0001/1/xyz".to_owned()),
            trigger_id: Some(
                "7377717242017.2625160776.f3e5c5297f73a70d5844279fb4e7a26f".to_owned()
            ),
            actions: vec![SlackAction {
                action_id: "approve".to_owned(),
                block_id: Some("approval-42".to_owned()),
                value: Some("approval-42".to_owned()),
                action_type: Some("button".to_owned()),
                action_ts: Some("1719936125.886532".to_owned()),
            }],
        }
    );
}

#[test]
fn block_actions_fall_back_to_container_and_message_and_read_select_menus() {
    let mut payload = approval_payload();
    let object = payload.as_object_mut().unwrap();
    object.remove("channel");
    object["container"] = json!({"type": "message", "channel_id": "C0OTHER"});
    object["actions"] = json!([{
        "action_id": "silence",
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "1 hour"}, "value": "3600"}
    }]);
    let action = parse_block_actions(interaction_body(&payload).as_bytes()).unwrap();
    assert_eq!(action.channel_id.as_deref(), Some("C0OTHER"));
    assert_eq!(action.message_ts.as_deref(), Some("1719936116.634509"));
    assert_eq!(action.actions[0].value.as_deref(), Some("3600"));
    assert_eq!(action.actions[0].block_id, None);
    // An action in a modal: no channel, message or response_url.
    let modal = json!({
        "type": "block_actions",
        "user": {"id": "U1"},
        "container": {"type": "view", "view_id": "V1"},
        "actions": [{"action_id": "pick", "type": "button"}]
    });
    let action = parse_block_actions(interaction_body(&modal).as_bytes()).unwrap();
    assert_eq!(
        (action.channel_id, action.message_ts, action.response_url),
        (None, None, None)
    );
    assert_eq!(action.actions[0].value, None);
}

#[test]
fn block_actions_errors_name_the_field() {
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut payload = approval_payload();
        edit(payload.as_object_mut().unwrap());
        interaction_body(&payload)
    };
    let missing = |field: &str| SlackPayloadError::MissingField {
        field: field.to_owned(),
    };
    let cases: Vec<(String, SlackPayloadError)> = vec![
        (form(&[("text", "x")]), missing("payload")),
        (
            form(&[("payload", "{not json")]),
            SlackPayloadError::InvalidJson {
                path: "payload".to_owned(),
                message: "key must be a string at line 1 column 2".to_owned(),
            },
        ),
        (
            form(&[("payload", "[1, 2]")]),
            SlackPayloadError::InvalidJson {
                path: "payload".to_owned(),
                message: "expected a JSON object".to_owned(),
            },
        ),
        (
            with(&|p| {
                p.remove("type");
            }),
            missing("payload.type"),
        ),
        (
            with(&|p| {
                p["type"] = json!("view_submission");
            }),
            SlackPayloadError::UnsupportedType {
                found: "view_submission".to_owned(),
            },
        ),
        (
            with(&|p| {
                p.remove("user");
            }),
            missing("payload.user"),
        ),
        (
            with(&|p| {
                p["user"] = json!({"name": "x"});
            }),
            missing("payload.user.id"),
        ),
        (
            with(&|p| {
                p.remove("actions");
            }),
            missing("payload.actions"),
        ),
        (
            with(&|p| {
                p["actions"] = json!([]);
            }),
            SlackPayloadError::InvalidField {
                field: "payload.actions".to_owned(),
                reason: "is empty; a block_actions payload carries at least one action".to_owned(),
            },
        ),
        (
            with(&|p| {
                p["actions"] = json!([{"action_id": "a"}, {"value": "v"}]);
            }),
            missing("payload.actions[1].action_id"),
        ),
        (
            with(&|p| {
                p["response_url"] = json!("ftp://hooks.slack.com/x");
            }),
            SlackPayloadError::InvalidField {
                field: "payload.response_url".to_owned(),
                reason: "is not an http(s) URL with a host".to_owned(),
            },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            parse_block_actions(body.as_bytes()),
            Err(expected),
            "{body}"
        );
    }
    // A wrong type deep inside names the JSON path.
    let body = with(&|p| {
        p["user"]["id"] = json!(42);
    });
    let error = parse_block_actions(body.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, SlackPayloadError::InvalidJson { path, .. } if path == "payload.user.id"),
        "{error:?}"
    );
    assert!(error.to_string().contains("`payload.user.id`"), "{error}");
    let body = with(&|p| {
        p["actions"][0]["value"] = json!({"nested": true});
    });
    assert!(matches!(
        parse_block_actions(body.as_bytes()),
        Err(SlackPayloadError::InvalidJson { path, .. }) if path == "payload.actions[0].value"
    ));
}

#[test]
fn random_and_truncated_bodies_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let secret = Secret::new(SECRET);
    let interaction = interaction_body(&approval_payload());
    for valid in [DOCS_BODY.as_bytes(), interaction.as_bytes()] {
        for cut in 0..valid.len() {
            let _ = parse_slash_command(&valid[..cut]);
            let _ = parse_block_actions(&valid[..cut]);
        }
    }
    for _ in 0..2_000 {
        let len = rng.random_range(0..200);
        let body: Vec<u8> = (0..len)
            .map(|_| match rng.random_range(0..4) {
                0 => b"=&%+{}[]\""[rng.random_range(0..9)],
                1 => rng.random_range(b'a'..=b'z'),
                _ => rng.random(),
            })
            .collect();
        let _ = parse_slash_command(&body);
        let _ = parse_block_actions(&body);
        let header = String::from_utf8_lossy(&body[..len.min(20)]).into_owned();
        assert!(verify_request(&secret, Some(&header), Some(&header), &body, 0).is_err());
    }
}

// ---- per-channel spacing ----

#[tokio::test(start_paused = true)]
async fn the_channel_limiter_spaces_one_channel_and_leaves_others_alone() {
    let limiter = ChannelLimiter::new(Duration::from_secs(1));
    let start = Instant::now();
    let post = |channel: &'static str| {
        let limiter = &limiter;
        async move {
            limiter.acquire(channel).await;
            (channel, start.elapsed())
        }
    };
    let times =
        futures::future::join_all([post("C1"), post("C1"), post("C2"), post("C1"), post("C2")])
            .await;
    let seconds: Vec<(&str, u64)> = times
        .into_iter()
        .map(|(channel, elapsed)| (channel, elapsed.as_millis() as u64))
        .collect();
    assert_eq!(
        seconds,
        [
            ("C1", 0),
            ("C1", 1000),
            ("C2", 0),
            ("C1", 2000),
            ("C2", 1000)
        ]
    );
    // After a quiet period there is no wait.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = Instant::now();
    limiter.acquire("C1").await;
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_channel_waits_for_retry_after() {
    let limiter = ChannelLimiter::new(Duration::from_secs(1));
    let start = Instant::now();
    limiter.acquire("C1").await;
    limiter.defer("C1", Duration::from_secs(30));
    // A shorter deferral does not pull the slot earlier.
    limiter.defer("C1", Duration::from_secs(2));
    limiter.acquire("C2").await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    limiter.acquire("C1").await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn the_channel_map_stays_small() {
    let limiter = ChannelLimiter::new(Duration::from_millis(10));
    for n in 0..1_000 {
        limiter.acquire(&format!("C{n}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        limiter.tracked_channels() <= 66,
        "{}",
        limiter.tracked_channels()
    );
}

// ---- Web API client against the sim ----

const TOKEN: &str = "xoxb-1-SECRET-KEY-123";

fn client(sim: &SimHandle, retry: RetryPolicy) -> SlackClient {
    SlackClient::new(&sim.slack_api_url(), Secret::new(TOKEN), 1000.0, retry)
        .unwrap()
        .with_channel_interval(Duration::from_millis(1))
}

fn slack_fault(kind: FaultKind, count: u32) -> Fault {
    Fault {
        service: SimService::Slack,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

fn api_error(code: &str) -> FaultKind {
    FaultKind::ApiError {
        error: code.to_owned(),
    }
}

fn assert_no_token(error: &SourceError) {
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("SECRET-KEY-123"), "{shown}");
    }
}

#[tokio::test]
async fn post_message_reaches_the_sim_and_returns_channel_and_ts() {
    let sim = start_sim().await;
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*Validator efficiency* 82% < 90%"}}]);
    let posted = client(&sim, fast_policy())
        .post_message(
            "C0ALERTS1",
            "Validator efficiency below 90%",
            Some(blocks.clone()),
        )
        .await
        .unwrap();
    assert_eq!(posted.attempts, 1);
    assert_eq!(posted.value.channel, "C0ALERTS1");
    assert!(posted.value.ts.contains('.'), "{:?}", posted.value);
    let calls = sim.slack_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "chat.postMessage");
    assert_eq!(calls[0].ts, posted.value.ts);
    assert_eq!(
        calls[0].text.as_deref(),
        Some("Validator efficiency below 90%")
    );
    assert_eq!(calls[0].blocks, Some(blocks));
    assert_eq!(sim.request_count("slack"), 1);
    // /_sim/state shows it under `slack`.
    let state: Value = reqwest::get(format!("{}/_sim/state", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["slack"]["calls_received"], 1);
    assert_eq!(state["slack"]["calls"][0]["channel"], "C0ALERTS1");
    assert_eq!(state["slack"]["calls"][0]["ts"], json!(posted.value.ts));
    assert_eq!(state["request_counts"]["slack"], 1);
}

#[tokio::test]
async fn update_message_edits_a_posted_message_and_an_unknown_ts_is_message_not_found() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    let posted = client
        .post_message("C0ALERTS1", "Approve transfer?", None)
        .await
        .unwrap()
        .value;
    let updated = client
        .update_message(&posted.channel, &posted.ts, "Approved by alice", None)
        .await
        .unwrap();
    assert_eq!(updated.value, posted);
    let calls = sim.slack_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].method, "chat.update");
    assert_eq!(calls[1].text.as_deref(), Some("Approved by alice"));
    let error = client
        .update_message("C0ALERTS1", "1.000000", "x", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { message, .. } if message.contains("message_not_found")),
        "{error}"
    );
    // Another channel's message is not this one.
    let error = client
        .update_message("C0OTHER", &posted.ts, "x", None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("message_not_found"), "{error}");
}

#[tokio::test]
async fn respond_posts_to_the_response_url_without_the_token() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    let body = json!({"text": "validator-1: healthy", "response_type": "ephemeral"});
    let fetched = client
        .respond(&sim.slack_response_url("cmd-1"), &body)
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 1);
    let responses = sim.slack_responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].response_id, "cmd-1");
    assert_eq!(responses[0].body, body);
    assert!(!responses[0].authorization_present);
    assert_eq!(sim.wait_for_slack(1, Duration::from_secs(1)).await, 1);
    // Bad inputs never leave the process, and never echo the URL.
    let sink = sim.slack_response_url("cmd-1");
    for (url, body) in [
        ("not a url", json!({"text": "x"})),
        ("ftp://hooks.slack.com/x", json!({"text": "x"})),
        (sink.as_str(), json!("just text")),
    ] {
        let error = client.respond(url, &body).await.unwrap_err();
        assert!(matches!(error, SourceError::InvalidInput { .. }), "{error}");
        assert!(!error.to_string().contains("cmd-1"), "{error}");
    }
    assert_eq!(sim.slack_responses().len(), 1);
}

#[tokio::test]
async fn the_bot_token_goes_in_a_bearer_header_to_the_api_only() {
    let server = fixed_server(
        200,
        "application/json",
        r#"{"ok":true,"channel":"C1","ts":"1.2"}"#,
    )
    .await;
    let base = format!("http://{}/api", server.addr);
    let client = SlackClient::new(&base, Secret::new(TOKEN), 1000.0, fast_policy()).unwrap();
    client.post_message("C1", "hello", None).await.unwrap();
    let headers = server.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    client
        .respond(
            &format!("http://{}/commands/T1/2/abc", server.addr),
            &json!({"text": "ok"}),
        )
        .await
        .unwrap();
    let headers = server.last_headers.lock().unwrap().clone().unwrap();
    assert!(headers.get("authorization").is_none(), "{headers:?}");
}

#[tokio::test]
async fn ratelimited_is_retried_after_retry_after() {
    let sim = start_sim().await;
    sim.inject_fault(slack_fault(
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
        1,
    ));
    let retry = RetryPolicy {
        max_delay: Duration::from_secs(5),
        ..fast_policy()
    };
    let posted = client(&sim, retry)
        .post_message("C0ALERTS1", "after the limit", None)
        .await
        .unwrap();
    assert_eq!(posted.attempts, 2);
    assert!(
        posted.latency >= Duration::from_millis(950),
        "{:?}",
        posted.latency
    );
    assert_eq!(sim.request_count("slack"), 2);
    assert_eq!(sim.slack_calls().len(), 1);
}

#[tokio::test]
async fn rate_limited_until_attempts_run_out_is_a_rate_limited_error() {
    let sim = start_sim().await;
    sim.inject_fault(slack_fault(
        FaultKind::RateLimit {
            retry_after_seconds: Some(30),
        },
        3,
    ));
    let error = client(&sim, fast_policy())
        .post_message("C0ALERTS1", "x", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::RateLimited { retry_after: Some(after), .. } if *after == Duration::from_secs(30)),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(sim.request_count("slack"), 3);
    assert!(sim.slack_calls().is_empty());
}

#[tokio::test]
async fn slack_errors_are_not_retried_and_carry_the_code() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    for (code, hint) in [
        ("channel_not_found", "invite the app"),
        ("not_in_channel", "/invite"),
        ("is_archived", "archived"),
        ("invalid_blocks", "Block Kit"),
        ("some_new_code", "api.slack.com/methods"),
    ] {
        sim.inject_fault(slack_fault(api_error(code), 1));
        let before = sim.request_count("slack");
        let error = client
            .post_message("C0ALERTS1", "x", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, SourceError::Rejected { status: 200, message } if message.contains(code) && message.contains(hint)),
            "{code}: {error}"
        );
        assert!(!error.is_transient(), "{code}");
        assert_eq!(sim.request_count("slack"), before + 1, "{code} was retried");
        assert_no_token(&error);
    }
    // An ok:false ratelimited (HTTP 200) is a rate limit too.
    sim.inject_fault(slack_fault(api_error("ratelimited"), 1));
    let posted = client.post_message("C0ALERTS1", "x", None).await.unwrap();
    assert_eq!(posted.attempts, 2);
    // Server-side codes are transient for the caller, but not re-sent: the message may exist.
    sim.inject_fault(slack_fault(api_error("internal_error"), 1));
    let error = client
        .post_message("C0ALERTS1", "x", None)
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::Unavailable { .. }), "{error}");
    // api_error hits the chat methods, not the response sink.
    sim.inject_fault(slack_fault(api_error("channel_not_found"), 1));
    client
        .respond(&sim.slack_response_url("r"), &json!({"text": "x"}))
        .await
        .unwrap();
    assert_eq!(sim.slack_responses().len(), 1);
}

#[tokio::test]
async fn bad_tokens_are_rejected_without_the_token_in_the_message() {
    let sim = start_sim().await;
    for (token, code) in [
        ("xoxb-revoked-SECRET-KEY-123", "token_revoked"),
        ("SECRET-KEY-123", "invalid_auth"),
    ] {
        let client = SlackClient::new(
            &sim.slack_api_url(),
            Secret::new(token),
            1000.0,
            fast_policy(),
        )
        .unwrap();
        let error = client
            .post_message("C0ALERTS1", "x", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, SourceError::Rejected { message, .. } if message.contains(code) && message.contains("Bot User OAuth Token")),
            "{error}"
        );
        assert_no_token(&error);
    }
    let error = SlackClient::new(
        &sim.slack_api_url(),
        Secret::new(" "),
        1000.0,
        fast_policy(),
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains("bot token is empty"), "{error}");
    let error = SlackClient::new(
        &sim.slack_api_url(),
        Secret::new("xoxb-SECRET-KEY-123\n"),
        1000.0,
        fast_policy(),
    )
    .err()
    .unwrap();
    assert!(matches!(error, SourceError::InvalidInput { .. }), "{error}");
    assert_no_token(&error);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_not_resent() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    sim.inject_fault(slack_fault(FaultKind::ServerError { status: 503 }, 1));
    let error = client
        .post_message("C0ALERTS1", "x", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SourceError::Unavailable { status: 503, .. }),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(sim.request_count("slack"), 1);
    let quick = RetryPolicy {
        timeout: Duration::from_millis(200),
        ..fast_policy()
    };
    let impatient =
        SlackClient::new(&sim.slack_api_url(), Secret::new(TOKEN), 1000.0, quick).unwrap();
    sim.inject_fault(slack_fault(FaultKind::Timeout { delay_ms: 1_000 }, 1));
    let error = impatient
        .post_message("C0ALERTS1", "x", None)
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::Timeout { .. }), "{error}");
    assert_eq!(sim.request_count("slack"), 2);
    sim.inject_fault(slack_fault(FaultKind::Garbage, 1));
    let error = client
        .post_message("C0ALERTS1", "x", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SourceError::InvalidResponse { .. }),
        "{error}"
    );
    assert_eq!(sim.request_count("slack"), 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error_meaning_nothing_was_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = SlackClient::new(
        &format!("http://{addr}/api"),
        Secret::new(TOKEN),
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let error = client.post_message("C1", "x", None).await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error}");
}

#[tokio::test]
async fn inputs_are_checked_before_anything_is_sent() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    let cases = [
        client.post_message("", "x", None).await,
        client.post_message("C1 C2", "x", None).await,
        client.post_message("C1", " ", None).await,
        client
            .post_message("C1", "x", Some(json!({"type": "section"})))
            .await,
        client.update_message("C1", "", "x", None).await,
    ];
    for result in cases {
        let error = result.unwrap_err();
        assert!(matches!(error, SourceError::InvalidInput { .. }), "{error}");
    }
    // Blocks alone are enough.
    client
        .post_message("C1", "", Some(json!([{"type": "divider"}])))
        .await
        .unwrap();
    assert_eq!(sim.request_count("slack"), 1);
    assert!(SlackClient::new("not a url", Secret::new(TOKEN), 1.0, fast_policy()).is_err());
    assert!(
        SlackClient::new(&sim.slack_api_url(), Secret::new(TOKEN), 0.0, fast_policy()).is_err()
    );
}

#[tokio::test]
async fn posts_to_one_channel_are_spaced_and_other_channels_are_not_delayed() {
    let sim = start_sim().await;
    let interval = Duration::from_millis(150);
    let client = SlackClient::new(
        &sim.slack_api_url(),
        Secret::new(TOKEN),
        1000.0,
        fast_policy(),
    )
    .unwrap()
    .with_channel_interval(interval);
    let started = Instant::now();
    let (a, b, c, other) = tokio::join!(
        client.post_message("C0BUSY", "1", None),
        client.post_message("C0BUSY", "2", None),
        client.post_message("C0BUSY", "3", None),
        client.post_message("C0QUIET", "q", None),
    );
    for result in [&a, &b, &c, &other] {
        assert!(result.is_ok(), "{result:?}");
    }
    let other = other.unwrap();
    assert!(other.latency < interval, "{:?}", other.latency);
    assert!(started.elapsed() >= interval * 2, "{:?}", started.elapsed());
    let calls = sim.slack_calls();
    let busy: Vec<_> = calls
        .iter()
        .filter(|call| call.channel == "C0BUSY")
        .collect();
    assert_eq!(
        busy.iter()
            .map(|call| call.text.as_deref().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    for pair in busy.windows(2) {
        let gap = (pair[1].received_at - pair[0].received_at)
            .to_std()
            .unwrap();
        // Arrival times jitter a little around the send times.
        assert!(gap >= interval - Duration::from_millis(20), "{gap:?}");
    }
    let quiet = calls.iter().find(|call| call.channel == "C0QUIET").unwrap();
    assert!(quiet.received_at < busy[1].received_at);
}

#[tokio::test]
async fn a_retry_after_defers_later_posts_to_that_channel_only() {
    let sim = start_sim().await;
    sim.inject_fault(slack_fault(
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
        1,
    ));
    let retry = RetryPolicy {
        max_delay: Duration::from_secs(5),
        ..fast_policy()
    };
    let client = SlackClient::new(&sim.slack_api_url(), Secret::new(TOKEN), 1000.0, retry)
        .unwrap()
        .with_channel_interval(Duration::from_millis(200));
    let later = |channel: &'static str, text: &'static str| {
        let client = &client;
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            client.post_message(channel, text, None).await
        }
    };
    // "first" is refused with Retry-After: 1 and sent again a second later; "second",
    // started meanwhile, waits for that too instead of overtaking it; the quiet channel
    // does not wait.
    let (first, second, quiet) = tokio::join!(
        client.post_message("C0BUSY", "first", None),
        later("C0BUSY", "second"),
        later("C0QUIET", "quiet"),
    );
    assert_eq!(first.unwrap().attempts, 2);
    let second = second.unwrap();
    assert_eq!(second.attempts, 1);
    assert!(
        second.latency >= Duration::from_millis(600),
        "{:?}",
        second.latency
    );
    assert!(quiet.unwrap().latency < Duration::from_millis(300));
    let order: Vec<String> = sim
        .slack_calls()
        .into_iter()
        .filter_map(|call| call.text)
        .collect();
    assert_eq!(order, ["quiet", "first", "second"]);
}

// ---- interpreting answers ----

fn answer(status: u16, content_type: Option<&str>, body: &str) -> HttpAnswer {
    HttpAnswer {
        origin: "slack POST chat.postMessage".to_owned(),
        status,
        content_type: content_type.map(str::to_owned),
        retry_after: Some(Duration::from_secs(7)),
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn answers_are_read_as_slack_sends_them() {
    let json_type = Some("application/json; charset=utf-8");
    let posted = interpret_api::<PostedMessage>(
        answer(
            200,
            json_type,
            r#"{"ok":true,"channel":"C1H9RESGL","ts":"1503435956.000247","message":{"text":"hi"},"warning":"missing_charset"}"#,
        ),
        "chat.postMessage",
    );
    assert_eq!(
        posted,
        Ok(PostedMessage {
            channel: "C1H9RESGL".to_owned(),
            ts: "1503435956.000247".to_owned()
        })
    );
    let check = |answer: HttpAnswer, expected_kind: &str, needle: &str| {
        let error = interpret_api::<PostedMessage>(answer, "chat.postMessage").unwrap_err();
        assert_eq!(error.kind(), expected_kind, "{error}");
        assert!(error.to_string().contains(needle), "{error}");
    };
    check(answer(429, Some("text/plain"), ""), "rate_limited", "7s");
    check(
        answer(200, json_type, r#"{"ok":false,"error":"ratelimited"}"#),
        "rate_limited",
        "ratelimited",
    );
    check(
        answer(
            200,
            json_type,
            r#"{"ok":false,"error":"channel_not_found"}"#,
        ),
        "rejected",
        "channel_not_found",
    );
    check(
        answer(200, json_type, r#"{"ok":false,"error":"fatal_error"}"#),
        "unavailable",
        "fatal_error",
    );
    check(
        answer(503, Some("text/html"), "<html>down</html>"),
        "unavailable",
        "HTTP 503",
    );
    check(
        answer(404, json_type, r#"{"ok":false,"error":"unknown_method"}"#),
        "rejected",
        "unknown_method",
    );
    check(
        answer(400, Some("text/plain"), "invalid_payload"),
        "rejected",
        "invalid_payload",
    );
    check(
        answer(200, Some("text/html"), "<html>portal</html>"),
        "invalid_response",
        "Content-Type",
    );
    check(
        answer(200, json_type, r#"{"ok":true}"#),
        "invalid_response",
        "channel",
    );
    check(
        answer(200, json_type, r#"{"channel":"C1","ts":"1"}"#),
        "invalid_response",
        "without an error code",
    );
    // A hostile error code is cut down before it is echoed.
    let long = format!(r#"{{"ok":false,"error":"{}<script>"}}"#, "a".repeat(500));
    let error = interpret_api::<PostedMessage>(answer(200, json_type, &long), "chat.postMessage")
        .unwrap_err();
    assert!(!error.to_string().contains("<script>"), "{error}");
    assert!(error.to_string().len() < 400, "{error}");
}

#[test]
fn response_url_answers_are_read_as_text_or_json() {
    assert_eq!(
        interpret_response_url(answer(200, Some("text/html"), "ok")),
        Ok(())
    );
    assert_eq!(
        interpret_response_url(answer(200, Some("application/json"), r#"{"ok":true}"#)),
        Ok(())
    );
    assert_eq!(interpret_response_url(answer(200, None, "")), Ok(()));
    let error = interpret_response_url(answer(404, Some("text/plain"), "expired_url")).unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 404, message } if message.contains("expired")),
        "{error}"
    );
    let error = interpret_response_url(answer(
        200,
        Some("application/json"),
        r#"{"ok":false,"error":"no_text"}"#,
    ))
    .unwrap_err();
    assert!(error.to_string().contains("no_text"), "{error}");
    let error = interpret_response_url(answer(200, Some("text/html"), "<html>")).unwrap_err();
    assert_eq!(error.kind(), "invalid_response");
    assert_eq!(
        interpret_response_url(answer(429, None, ""))
            .unwrap_err()
            .kind(),
        "rate_limited"
    );
}

// ---- the simulated workspace ----

#[tokio::test]
async fn the_sim_refuses_what_slack_refuses() {
    let sim = start_sim().await;
    let http = reqwest::Client::new();
    let call = |method: &str, token: Option<&str>, body: Value| {
        let mut request = http
            .post(format!("{}/{method}", sim.slack_api_url()))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let ok_body = json!({"channel": "C1", "text": "x"});
    for (method, token, body, code) in [
        ("chat.postMessage", None, ok_body.clone(), "not_authed"),
        (
            "chat.postMessage",
            Some("bearer"),
            ok_body.clone(),
            "invalid_auth",
        ),
        (
            "chat.postMessage",
            Some("xoxb-revoked-1"),
            ok_body.clone(),
            "token_revoked",
        ),
        (
            "chat.postMessage",
            Some(TOKEN),
            json!({"text": "x"}),
            "channel_not_found",
        ),
        (
            "chat.postMessage",
            Some(TOKEN),
            json!({"channel": "C1"}),
            "no_text",
        ),
        (
            "chat.postMessage",
            Some(TOKEN),
            json!({"channel": "C1", "blocks": {}}),
            "invalid_blocks",
        ),
        (
            "chat.postMessage",
            Some(TOKEN),
            json!(["C1"]),
            "invalid_json",
        ),
        (
            "chat.update",
            Some(TOKEN),
            json!({"channel": "C1", "text": "x"}),
            "message_not_found",
        ),
    ] {
        let answer = call(method, token, body).await;
        assert_eq!(
            answer,
            json!({"ok": false, "error": code}),
            "{method} {code}"
        );
    }
    // Slack warns when the JSON content type has no charset (reqwest's `.json` sends none).
    let answer = call("chat.postMessage", Some(TOKEN), ok_body).await;
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["warning"], "missing_charset");
    assert_eq!(sim.slack_calls().len(), 1);
}

#[test]
fn slack_faults_parse_and_api_error_is_slack_only() {
    let fault: Fault = serde_json::from_value(
        json!({"service": "slack", "count": 1, "kind": "api_error", "error": "channel_not_found"}),
    )
    .unwrap();
    assert_eq!(fault.kind, api_error("channel_not_found"));
    assert_eq!(
        serde_json::to_value(&fault).unwrap(),
        json!({"service": "slack", "count": 1, "kind": "api_error", "error": "channel_not_found"})
    );
    let rate: Fault = serde_json::from_value(
        json!({"service": "slack", "kind": "rate_limit", "retry_after_seconds": 3}),
    )
    .unwrap();
    assert_eq!(rate.service.as_str(), "slack");
    for (spec, needle) in [
        (
            json!({"service": "toncenter", "kind": "api_error", "error": "x"}),
            r#"needs service "slack""#,
        ),
        (
            json!({"service": "slack", "kind": "api_error"}),
            "api_error needs `error`",
        ),
        (
            json!({"service": "slack", "kind": "api_error", "error": "Not A Code"}),
            "Slack error code",
        ),
        (
            json!({"service": "slack", "kind": "garbage", "error": "x"}),
            "`error` does not apply",
        ),
    ] {
        let error = serde_json::from_value::<Fault>(spec.clone())
            .unwrap_err()
            .to_string();
        assert!(error.contains(needle), "{spec}: {error}");
    }
}

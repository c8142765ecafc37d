use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::sim::{Fault, FaultKind, SimHandle, SimService, slack_envelope};
use crate::slack::{
    SlackPayloadError, block_actions_from_json, parse_block_actions, parse_slash_command,
    slash_command_from_json,
};
use crate::test_support::{fast_policy, start_sim};

const APP_TOKEN: &str = "xapp-1-A0SIM-SECRET-KEY-123";
const WAIT: Duration = Duration::from_secs(10);

fn opener(sim: &SimHandle, token: &str) -> SocketModeOpener {
    SocketModeOpener::new(&sim.slack_api_url(), Secret::new(token), fast_policy()).unwrap()
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

fn slash_payload() -> Value {
    json!({
        "token": "legacy",
        "team_id": "T0CC0001",
        "team_domain": "ops",
        "channel_id": "C0OPS",
        "channel_name": "ops",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "command": "/cc",
        "text": "status",
        "api_app_id": "A0SIMAPP01",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T0CC0001/1/xyz",
        "trigger_id": "1.2.3",
    })
}

fn form_of(payload: &Value) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in payload.as_object().unwrap() {
        form.append_pair(key, value.as_str().unwrap());
    }
    form.finish()
}

// ---- envelopes ----

#[test]
fn slack_envelopes_are_read() {
    let hello = parse_envelope(
        r#"{"type":"hello","num_connections":2,"debug_info":{"host":"applink-1"},"connection_info":{"app_id":"A0CC"}}"#,
    )
    .unwrap();
    assert_eq!(
        hello,
        SocketEnvelope::Hello {
            num_connections: Some(2),
            app_id: Some("A0CC".to_owned()),
        }
    );
    for (reason, expected) in [
        ("refresh_requested", DisconnectReason::RefreshRequested),
        ("warning", DisconnectReason::Warning),
        ("link_disabled", DisconnectReason::LinkDisabled),
        (
            "something_new",
            DisconnectReason::Other("something_new".to_owned()),
        ),
    ] {
        let text = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "x"}});
        assert_eq!(
            parse_envelope(&text.to_string()).unwrap(),
            SocketEnvelope::Disconnect { reason: expected }
        );
    }
    let slash = slack_envelope("e-1", "slash_commands", slash_payload());
    let SocketEnvelope::Request(request) = parse_envelope(&slash.to_string()).unwrap() else {
        panic!("a request");
    };
    assert_eq!(request.envelope_id, "e-1");
    assert_eq!(request.kind, RequestKind::SlashCommands);
    assert!(request.accepts_response_payload);
    assert_eq!((request.retry_attempt, request.retry_reason), (0, None));
    assert_eq!(request.payload, slash_payload());
    let events = json!({
        "envelope_id": "e-2", "type": "events_api", "payload": {"event": {}},
        "retry_attempt": 2, "retry_reason": "timeout", "accepts_response_payload": false
    });
    let SocketEnvelope::Request(request) = parse_envelope(&events.to_string()).unwrap() else {
        panic!("a request");
    };
    assert_eq!(request.kind, RequestKind::EventsApi);
    assert_eq!(request.retry_attempt, 2);
    assert_eq!(request.retry_reason.as_deref(), Some("timeout"));
    let other = json!({"envelope_id": "e-3", "type": "new_thing", "payload": {}});
    assert!(matches!(
        parse_envelope(&other.to_string()),
        Ok(SocketEnvelope::Request(SocketRequest { kind: RequestKind::Other(kind), .. })) if kind == "new_thing"
    ));
}

#[test]
fn malformed_frames_are_errors_that_keep_the_envelope_id_when_they_can() {
    let check = |text: &str, envelope_id: Option<&str>, reason: &str| {
        let error = parse_envelope(text).unwrap_err();
        assert_eq!(error.envelope_id.as_deref(), envelope_id, "{text}");
        assert!(error.reason.contains(reason), "{text}: {error}");
    };
    check("", None, "not JSON (cut off");
    check("not json at all", None, "not JSON (syntax error");
    check(r#"{"type": "hello""#, None, "not JSON (cut off");
    check("[1, 2]", None, "not a JSON object");
    check(r#""hello""#, None, "not a JSON object");
    check(
        r#"{"envelope_id": "e-1"}"#,
        Some("e-1"),
        "`type` is missing",
    );
    check(
        r#"{"envelope_id": "e-1", "type": 7}"#,
        Some("e-1"),
        "field `type` has the wrong type",
    );
    check(
        r#"{"envelope_id": "e-1", "type": "slash_commands", "retry_attempt": "x", "payload": {}}"#,
        Some("e-1"),
        "field `retry_attempt`",
    );
    check(
        r#"{"envelope_id": "e-1", "type": "slash_commands"}"#,
        Some("e-1"),
        "without `payload`",
    );
    check(
        r#"{"type": "slash_commands", "payload": {}}"#,
        None,
        "without a usable `envelope_id`",
    );
    check(
        r#"{"envelope_id": "", "type": "interactive", "payload": {}}"#,
        None,
        "without a usable `envelope_id`",
    );
    let long = "e".repeat(500);
    check(
        &json!({"envelope_id": long, "type": "interactive", "payload": {}}).to_string(),
        None,
        "without a usable `envelope_id`",
    );
    // The frame itself (a response_url is a credential) is never repeated.
    let secret = r#"{"envelope_id": "e-9", "type": 1, "payload": {"response_url": "https://hooks.slack.com/SECRET-PATH"}}"#;
    let error = parse_envelope(secret).unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("SECRET-PATH"),
        "{error}"
    );
    let garbage = "SECRET-PATH not json";
    let error = parse_envelope(garbage).unwrap_err();
    assert!(!error.to_string().contains("SECRET-PATH"), "{error}");
}

#[test]
fn acknowledgements_carry_the_envelope_id_and_an_optional_payload() {
    let plain: Value = serde_json::from_str(&ack("e-1", None)).unwrap();
    assert_eq!(plain, json!({"envelope_id": "e-1"}));
    let answer = json!({"response_type": "ephemeral", "text": "Working on `status`…"});
    let with: Value = serde_json::from_str(&ack("e-2", Some(&answer))).unwrap();
    assert_eq!(with, json!({"envelope_id": "e-2", "payload": answer}));
}

#[test]
fn socket_payloads_read_exactly_like_the_http_forms() {
    let from_socket = slash_command_from_json(&slash_payload()).unwrap();
    let from_http = parse_slash_command(form_of(&slash_payload()).as_bytes()).unwrap();
    assert_eq!(from_socket, from_http);
    assert_eq!(from_socket.text, "status");
    // Numbers and booleans are read as their text; null is absent; nested values are not
    // slash command fields.
    let mut payload = slash_payload();
    payload["is_enterprise_install"] = json!(false);
    payload["text"] = Value::Null;
    let command = slash_command_from_json(&payload).unwrap();
    assert_eq!(command.text, "");
    payload["user_id"] = json!({"id": "U0"});
    assert_eq!(
        slash_command_from_json(&payload),
        Err(SlackPayloadError::InvalidField {
            field: "payload.user_id".to_owned(),
            reason: "is not a string".to_owned(),
        })
    );
    let mut missing = slash_payload();
    missing.as_object_mut().unwrap().remove("response_url");
    assert_eq!(
        slash_command_from_json(&missing),
        Err(SlackPayloadError::MissingField {
            field: "response_url".to_owned(),
        })
    );
    for not_an_object in [json!([1]), json!("text"), Value::Null] {
        assert!(matches!(
            slash_command_from_json(&not_an_object),
            Err(SlackPayloadError::InvalidJson { .. })
        ));
        assert!(matches!(
            block_actions_from_json(&not_an_object),
            Err(SlackPayloadError::InvalidJson { .. })
        ));
    }

    let press = json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "team_id": "T0CC0001"},
        "channel": {"id": "C0OPS"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0OPS"},
        "response_url": "https://hooks.slack.com/actions/T0CC0001/1/xyz",
        "actions": [{"action_id": "approve:p-1", "type": "button", "value": "x"}],
    });
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &press.to_string())
        .finish();
    assert_eq!(
        block_actions_from_json(&press).unwrap(),
        parse_block_actions(form.as_bytes()).unwrap()
    );
    let mut view = press.clone();
    view["type"] = json!("view_submission");
    assert_eq!(
        block_actions_from_json(&view),
        Err(SlackPayloadError::UnsupportedType {
            found: "view_submission".to_owned(),
        })
    );
    let mut broken = press;
    broken["actions"] = json!([{"action_id": 5}]);
    assert!(matches!(
        block_actions_from_json(&broken),
        Err(SlackPayloadError::InvalidJson { path, .. }) if path == "payload.actions[0].action_id"
    ));
}

// ---- apps.connections.open against the sim ----

#[tokio::test]
async fn connections_open_hands_out_a_fresh_websocket_url_each_time() {
    let sim = start_sim().await;
    let opener = opener(&sim, APP_TOKEN);
    let first = opener.open().await.unwrap();
    let second = opener.open().await.unwrap();
    assert_eq!(first.scheme(), "ws");
    assert_eq!(first.host_str(), Some("127.0.0.1"));
    assert_ne!(first, second, "each URL is good for one connection");
    let opens = sim.slack_socket_opens();
    assert_eq!(opens.len(), 2);
    assert!(opens.iter().all(|open| open.error.is_none()));
}

#[tokio::test]
async fn refused_app_tokens_are_denied_with_a_hint_and_never_shown() {
    let sim = start_sim().await;
    for (token, code, hint) in [
        (
            "xapp-invalid-SECRET-KEY-123",
            "invalid_auth",
            "invalid, revoked or expired",
        ),
        (
            "xapp-revoked-SECRET-KEY-123",
            "token_revoked",
            "invalid, revoked or expired",
        ),
        (
            "xoxb-SECRET-KEY-123",
            "not_allowed_token_type",
            "not the bot token",
        ),
    ] {
        let error = opener(&sim, token).open().await.unwrap_err();
        assert!(
            matches!(&error, ConnectionsOpenError::Denied { code: found, .. } if found == code),
            "{error:?}"
        );
        let shown = format!("{error} {error:?}");
        assert!(shown.contains(hint), "{shown}");
        assert!(!shown.contains("SECRET-KEY-123"), "{shown}");
    }
    // Denied at once: no retries of a refused token.
    assert_eq!(sim.slack_socket_opens().len(), 3);
    let empty = SocketModeOpener::new(&sim.slack_api_url(), Secret::new(" "), fast_policy());
    assert!(matches!(empty, Err(SourceError::InvalidInput { .. })));
}

#[tokio::test]
async fn slack_trouble_is_unavailable_and_rate_limits_are_waited_out() {
    let sim = start_sim().await;
    let opener = opener(&sim, APP_TOKEN);
    sim.inject_fault(slack_fault(
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
        1,
    ));
    // Retry-After is capped by the fast policy; the second attempt gets the URL.
    assert!(opener.open().await.is_ok());
    sim.inject_fault(slack_fault(
        FaultKind::ApiError {
            error: "internal_error".to_owned(),
        },
        1,
    ));
    let error = opener.open().await.unwrap_err();
    assert!(
        matches!(
            &error,
            ConnectionsOpenError::Unavailable(SourceError::Unavailable { .. })
        ),
        "{error:?}"
    );
    sim.inject_fault(slack_fault(FaultKind::Garbage, 1));
    assert!(matches!(
        opener.open().await,
        Err(ConnectionsOpenError::Unavailable(_))
    ));
}

// ---- the simulated Socket Mode server ----

#[tokio::test]
async fn the_sim_says_hello_takes_envelopes_and_records_acknowledgements() {
    let sim = start_sim().await;
    let url = opener(&sim, APP_TOKEN).open().await.unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    let hello = parse_envelope(hello.to_text().unwrap()).unwrap();
    assert!(matches!(hello, SocketEnvelope::Hello { .. }), "{hello:?}");
    let connection = sim.wait_for_slack_connection(1, WAIT).await.unwrap();
    assert!(connection.open && connection.hello_sent);

    // A ticket is good once.
    let reused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(reused.is_err(), "a used ticket is refused");

    let envelope = slack_envelope("e-1", "slash_commands", slash_payload());
    assert_eq!(sim.slack_socket_send(&envelope), Ok(1));
    let received = socket.next().await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(received.to_text().unwrap()).unwrap(),
        envelope
    );
    let answer = json!({"text": "Working on it"});
    socket
        .send(Message::Text(ack("e-1", Some(&answer)).into()))
        .await
        .unwrap();
    socket
        .send(Message::Text("not an ack".into()))
        .await
        .unwrap();
    let acks = sim.wait_for_slack_ack("e-1", 1, WAIT).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].connection, acks[0].payload.clone()),
        (1, Some(answer))
    );

    sim.slack_socket_disconnect("refresh_requested").unwrap();
    let disconnect = socket.next().await.unwrap().unwrap();
    assert!(matches!(
        parse_envelope(disconnect.to_text().unwrap()),
        Ok(SocketEnvelope::Disconnect {
            reason: DisconnectReason::RefreshRequested
        })
    ));
    socket.close(None).await.unwrap();
    assert!(sim.wait_for_slack_connection_closed(1, WAIT).await);
    assert_eq!(
        sim.slack_socket_other_frames(),
        vec!["not an ack".to_owned()]
    );
    assert!(
        sim.slack_socket_send(&envelope).is_err(),
        "no open connection"
    );
    // Nothing waits for ever: an ack that never comes ends the wait empty.
    assert!(
        sim.wait_for_slack_ack("never", 1, Duration::from_millis(50))
            .await
            .is_empty()
    );
}

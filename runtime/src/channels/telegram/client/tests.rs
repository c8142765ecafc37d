use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::*;
use tools::sim::{
    Fault, FaultKind, Scenario, SimHandle, SimService, SimWorld, TelegramCall, TelegramInjected,
};

/// A still simulated world (speed 0) on an ephemeral loopback port.
async fn start_sim() -> SimHandle {
    install_crypto_provider();
    let mut scenario = Scenario::demo();
    scenario.speed = 0.0;
    SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

struct FixedServer {
    addr: std::net::SocketAddr,
}

/// A server answering every request with `status`, `content_type` and `body`.
async fn fixed_server(status: u16, content_type: &'static str, body: &'static str) -> FixedServer {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FixedServer { addr }
}

const TOKEN: &str = "700000001:SimTokenSecretPart_abcdefXYZ";
const TOKEN_SECRET_HALF: &str = "SimTokenSecretPart_abcdefXYZ";
const OPERATOR_CHAT: i64 = 336_435_018;
const GROUP_CHAT: i64 = -1_001_234_567_890;

fn client(sim: &SimHandle) -> TelegramClient {
    TelegramClient::with_timeout(
        Secret::new(TOKEN),
        &sim.telegram_api_url(),
        Duration::from_secs(5),
    )
    .unwrap()
}

fn fault(count: u32, kind: FaultKind) -> Fault {
    Fault {
        service: SimService::Telegram,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

fn message(user_id: i64, text: &str) -> TelegramInjected {
    TelegramInjected::Message {
        chat_id: user_id,
        user_id,
        username: Some("operator1".to_owned()),
        text: text.to_owned(),
    }
}

fn calls_of(sim: &SimHandle, method: &str) -> Vec<TelegramCall> {
    sim.telegram_calls()
        .into_iter()
        .filter(|call| call.method == method)
        .collect()
}

/// The error in every form a log line or a user could see it.
fn assert_no_token(error: &SourceError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains(TOKEN_SECRET_HALF), "token leaked: {text}");
    }
}

fn approval_keyboard() -> InlineKeyboard {
    InlineKeyboard {
        rows: vec![
            vec![
                InlineButton {
                    text: "Approve".to_owned(),
                    action: ButtonAction::Callback("approve:op-42".to_owned()),
                },
                InlineButton {
                    text: "Reject".to_owned(),
                    action: ButtonAction::Callback("reject:op-42".to_owned()),
                },
            ],
            vec![InlineButton {
                text: "Details".to_owned(),
                action: ButtonAction::Url("https://tonviewer.com/".to_owned()),
            }],
        ],
    }
}

// ---- the client against the sim ----

#[tokio::test]
async fn send_edit_answer_and_set_commands_round_trip_through_the_sim() {
    let sim = start_sim().await;
    let client = client(&sim);

    let me = client.get_me().await.unwrap();
    assert_eq!(me.username.as_deref(), Some("sim_ops_bot"));

    client
        .set_my_commands(&[
            ("/status", "Validator status"),
            ("approvals", "Pending approvals"),
        ])
        .await
        .unwrap();
    let state: Value = reqwest::get(format!("{}/_sim/state", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["telegram"]["commands"],
        json!([
            {"command": "status", "description": "Validator status"},
            {"command": "approvals", "description": "Pending approvals"},
        ])
    );

    let text = format!("*Approve* transfer of {}", escape_markdown_v2("12.5 TON?"));
    let message_id = client
        .send_message(OPERATOR_CHAT, &text, Some(&approval_keyboard()))
        .await
        .unwrap();
    let sent = calls_of(&sim, "sendMessage");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, 200);
    assert_eq!(sent[0].params["chat_id"], json!(OPERATOR_CHAT));
    assert_eq!(
        sent[0].params["text"],
        json!("*Approve* transfer of 12\\.5 TON?")
    );
    assert_eq!(sent[0].params["parse_mode"], json!("MarkdownV2"));
    assert_eq!(
        sent[0].params["reply_markup"],
        json!({"inline_keyboard": [
            [{"text": "Approve", "callback_data": "approve:op-42"},
             {"text": "Reject", "callback_data": "reject:op-42"}],
            [{"text": "Details", "url": "https://tonviewer.com/"}],
        ]})
    );

    let update_id = sim.telegram_inject(TelegramInjected::CallbackQuery {
        chat_id: OPERATOR_CHAT,
        user_id: OPERATOR_CHAT,
        username: Some("operator1".to_owned()),
        message_id,
        data: "approve:op-42".to_owned(),
    });
    let updates = client.get_updates(None, Duration::ZERO).await.unwrap();
    let [Update::Callback(query)] = updates.as_slice() else {
        panic!("expected one callback query, got {updates:?}");
    };
    assert_eq!(query.update_id, update_id);
    assert_eq!(query.chat_id, Some(OPERATOR_CHAT));
    assert_eq!(query.message_id, Some(message_id));
    assert_eq!(query.user_id, OPERATOR_CHAT);
    assert_eq!(query.username.as_deref(), Some("operator1"));
    assert_eq!(query.data.as_deref(), Some("approve:op-42"));

    client
        .answer_callback_query(&query.id, Some("Approved"))
        .await
        .unwrap();
    let answered = calls_of(&sim, "answerCallbackQuery");
    assert_eq!(answered[0].params["callback_query_id"], json!(query.id));
    assert_eq!(answered[0].params["text"], json!("Approved"));
    // A second answer to the same query is refused, as Telegram does.
    let again = client.answer_callback_query(&query.id, None).await;
    assert!(
        matches!(&again, Err(SourceError::Upstream { message, .. }) if message.contains("query is too old")),
        "{again:?}"
    );

    let decided = "*Approved* by @operator1";
    client
        .edit_message_text(OPERATOR_CHAT, message_id, decided, None)
        .await
        .unwrap();
    // The same edit again changes nothing and still succeeds.
    client
        .edit_message_text(OPERATOR_CHAT, message_id, decided, None)
        .await
        .unwrap();
    let edits = calls_of(&sim, "editMessageText");
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[0].params["message_id"], json!(message_id));
    assert_eq!(edits[0].status, 200);
    assert_eq!(edits[1].status, 400);
    let edit_missing = client
        .edit_message_text(OPERATOR_CHAT, message_id + 1000, decided, None)
        .await;
    assert!(
        matches!(&edit_missing, Err(SourceError::Upstream { message, .. }) if message.contains("message to edit not found")),
        "{edit_missing:?}"
    );
}

#[tokio::test]
async fn get_updates_maps_messages_and_the_offset_confirms_them() {
    let sim = start_sim().await;
    let client = client(&sim);
    let first = sim.telegram_inject(message(OPERATOR_CHAT, "/status"));
    let second = sim.telegram_inject(TelegramInjected::Message {
        chat_id: GROUP_CHAT,
        user_id: 42,
        username: None,
        text: "how are the validators?".to_owned(),
    });

    let updates = client.get_updates(None, Duration::ZERO).await.unwrap();
    assert_eq!(
        updates.iter().map(Update::update_id).collect::<Vec<_>>(),
        vec![first, second]
    );
    let Update::Message(status) = &updates[0] else {
        panic!("expected a message, got {:?}", updates[0]);
    };
    assert_eq!(status.chat_id, OPERATOR_CHAT);
    assert_eq!(status.user_id, OPERATOR_CHAT);
    assert_eq!(status.username.as_deref(), Some("operator1"));
    assert_eq!(status.text.as_deref(), Some("/status"));
    let Update::Message(question) = &updates[1] else {
        panic!("expected a message, got {:?}", updates[1]);
    };
    assert_eq!(question.chat_id, GROUP_CHAT);
    assert_eq!(question.user_id, 42);
    assert_eq!(question.username, None);
    assert_ne!(question.message_id, status.message_id);

    // Not confirmed yet: asked again without an offset, both come back.
    assert_eq!(
        client
            .get_updates(None, Duration::ZERO)
            .await
            .unwrap()
            .len(),
        2
    );
    // offset = last + 1 confirms both.
    let after = client
        .get_updates(Some(second + 1), Duration::ZERO)
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    let third = sim.telegram_inject(message(OPERATOR_CHAT, "/help"));
    let updates = client.get_updates(None, Duration::ZERO).await.unwrap();
    assert_eq!(
        updates.iter().map(Update::update_id).collect::<Vec<_>>(),
        vec![third]
    );
    let offsets: Vec<Value> = calls_of(&sim, "getUpdates")
        .iter()
        .map(|call| call.params["offset"].clone())
        .collect();
    assert_eq!(
        offsets,
        vec![Value::Null, Value::Null, json!(second + 1), Value::Null]
    );
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_an_update_arrives() {
    let sim = start_sim().await;
    let client = client(&sim);
    let started = std::time::Instant::now();
    let poll = tokio::spawn({
        let client = client.clone();
        async move { client.get_updates(None, Duration::from_secs(30)).await }
    });
    let update_id = sim.telegram_inject(message(OPERATOR_CHAT, "/status"));
    let updates = poll.await.unwrap().unwrap();
    assert_eq!(
        updates.iter().map(Update::update_id).collect::<Vec<_>>(),
        vec![update_id]
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(calls_of(&sim, "getUpdates")[0].params["timeout"], json!(30));
}

#[tokio::test]
async fn a_rate_limit_carries_retry_after_from_the_parameters() {
    let sim = start_sim().await;
    let client = client(&sim);
    sim.inject_fault(fault(
        1,
        FaultKind::RateLimit {
            retry_after_seconds: Some(7),
        },
    ));
    let error = client
        .send_message(OPERATOR_CHAT, "hello", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::RateLimited { retry_after: Some(after), .. } if *after == Duration::from_secs(7)),
        "{error:?}"
    );
    assert!(error.to_string().contains("sendMessage"), "{error}");
    assert_eq!(calls_of(&sim, "sendMessage")[0].status, 429);
    assert_no_token(&error);
}

#[tokio::test]
async fn a_conflict_says_another_instance_polls_with_this_token() {
    let sim = start_sim().await;
    let client = client(&sim);
    sim.inject_fault(fault(1, FaultKind::Conflict));
    let error = client
        .get_updates(None, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(is_conflict(&error), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("HTTP 409"), "{text}");
    assert!(text.contains("another bot instance"), "{text}");
    assert!(text.contains("webhook mode"), "{text}");
    assert_no_token(&error);
}

#[tokio::test]
async fn a_second_get_updates_ends_the_waiting_one_with_409() {
    let sim = start_sim().await;
    let first = client(&sim);
    let second = client(&sim);
    let waiting =
        tokio::spawn(async move { first.get_updates(None, Duration::from_secs(30)).await });
    // Keep polling from the second client until the first one has been superseded.
    let mut result = None;
    for _ in 0..200 {
        second.get_updates(None, Duration::ZERO).await.unwrap();
        if waiting.is_finished() {
            result = Some(waiting.await.unwrap());
            break;
        }
        tokio::task::yield_now().await;
    }
    let Some(result) = result else {
        panic!("the first poll was never superseded");
    };
    let error = result.unwrap_err();
    assert!(is_conflict(&error), "{error:?}");
}

#[tokio::test]
async fn a_refused_token_is_reported_without_the_token() {
    let sim = start_sim().await;
    let revoked = "700000001:revoked_SecretHalfXYZ123";
    let client = TelegramClient::new(Secret::new(revoked), &sim.telegram_api_url()).unwrap();
    let error = client.get_me().await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 401, message } if message.contains("token was refused")),
        "{error:?}"
    );
    let text = format!("{error} {error:?} {client:?}");
    assert!(!text.contains(revoked), "{text}");
    assert!(!text.contains("revoked_SecretHalfXYZ123"), "{text}");
}

#[tokio::test]
async fn errors_never_carry_the_token() {
    // Nothing listens: connection refused, with the token in teloxide's URL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = TelegramClient::new(Secret::new(TOKEN), &format!("http://{addr}")).unwrap();
    let error = client
        .send_message(OPERATOR_CHAT, "hello", None)
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert_no_token(&error);
    assert!(!format!("{client:?}").contains(TOKEN_SECRET_HALF));

    // A proxy page that echoes the request path back.
    static ECHO: &str = "<html><body>no route for /bot700000001:SimTokenSecretPart_abcdefXYZ/sendMessage</body></html>";
    let server = fixed_server(200, "text/html", ECHO).await;
    let client =
        TelegramClient::new(Secret::new(TOKEN), &format!("http://{}", server.addr)).unwrap();
    let error = client
        .send_message(OPERATOR_CHAT, "hello", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("no route for /bot***")),
        "{error:?}"
    );
    assert_no_token(&error);

    // A server error whose description echoes the token.
    static UNKNOWN: &str = r#"{"ok":false,"error_code":400,"description":"Bad Request: token 700000001:SimTokenSecretPart_abcdefXYZ is odd"}"#;
    let server = fixed_server(400, "application/json", UNKNOWN).await;
    let client =
        TelegramClient::new(Secret::new(TOKEN), &format!("http://{}", server.addr)).unwrap();
    let error = client.get_me().await.unwrap_err();
    assert!(matches!(error, SourceError::Upstream { .. }), "{error:?}");
    assert_no_token(&error);
}

#[tokio::test]
async fn markdown_v2_must_be_escaped() {
    let sim = start_sim().await;
    let client = client(&sim);
    let raw = "efficiency 82.5% < 90% (validator-1)!";
    let error = client
        .send_message(OPERATOR_CHAT, raw, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Upstream { message, .. } if message.contains("can't parse entities")),
        "{error:?}"
    );
    client
        .send_message(OPERATOR_CHAT, &escape_markdown_v2(raw), None)
        .await
        .unwrap();
    assert_eq!(
        escape_markdown_v2("a_b*c[d](e)~`>#+-=|{}.!\\"),
        "a\\_b\\*c\\[d\\]\\(e\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let sim = start_sim().await;
    let client = client(&sim);
    let too_long = "x".repeat(MAX_MESSAGE_CHARS + 1);
    let cases: Vec<(Result<i32, SourceError>, &str)> = vec![
        (
            client.send_message(OPERATOR_CHAT, &too_long, None).await,
            "split it",
        ),
        (
            client.send_message(OPERATOR_CHAT, "  ", None).await,
            "empty",
        ),
        (
            client
                .send_message(
                    OPERATOR_CHAT,
                    "hi",
                    Some(&InlineKeyboard::callback_row(&[("Ack", &"a".repeat(65))])),
                )
                .await,
            "callback data is 65 bytes",
        ),
        (
            client
                .send_message(
                    OPERATOR_CHAT,
                    "hi",
                    Some(&InlineKeyboard {
                        rows: vec![vec![InlineButton {
                            text: "Open".to_owned(),
                            action: ButtonAction::Url("not a url".to_owned()),
                        }]],
                    }),
                )
                .await,
            "invalid URL",
        ),
    ];
    for (result, expected) in cases {
        assert!(
            matches!(&result, Err(SourceError::InvalidInput { detail }) if detail.contains(expected)),
            "expected {expected:?}: {result:?}"
        );
    }
    let commands = client.set_my_commands(&[("Status", "x")]).await;
    assert!(
        matches!(&commands, Err(SourceError::InvalidInput { detail }) if detail.contains("a-z")),
        "{commands:?}"
    );
    assert!(sim.telegram_calls().is_empty());
    assert!(TelegramClient::new(Secret::new(""), &sim.telegram_api_url()).is_err());
    assert!(TelegramClient::new(Secret::new(TOKEN), "ftp://example.com").is_err());
}

#[tokio::test]
async fn the_sim_takes_updates_and_faults_over_http() {
    let sim = start_sim().await;
    let client = client(&sim);
    let http = reqwest::Client::new();
    let injected: Value = http
        .post(format!("{}/_sim/telegram/update", sim.base_url()))
        .json(&json!({"message": {"chat_id": OPERATOR_CHAT, "user_id": OPERATOR_CHAT, "text": "/status"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let updates = client.get_updates(None, Duration::ZERO).await.unwrap();
    assert_eq!(
        updates.iter().map(Update::update_id).collect::<Vec<_>>(),
        vec![injected["update_id"].as_i64().unwrap()]
    );

    let refused = http
        .post(format!("{}/_sim/telegram/update", sim.base_url()))
        .json(&json!({"message": {"chat_id": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("user_id"),
        "{body}"
    );

    let fault = http
        .post(format!("{}/_sim/fault", sim.base_url()))
        .json(&json!({"service": "telegram", "count": 1, "kind": "conflict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status().as_u16(), 200);
    let error = client.get_updates(None, Duration::ZERO).await.unwrap_err();
    assert!(is_conflict(&error), "{error:?}");
    let wrong_service = http
        .post(format!("{}/_sim/fault", sim.base_url()))
        .json(&json!({"service": "slack", "kind": "conflict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_service.status().as_u16(), 400);

    let state: Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = state["telegram"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["status"], json!(409));
    assert!(!state.to_string().contains(TOKEN_SECRET_HALF));
}

// ---- polling ----

fn fast_poll() -> PollConfig {
    PollConfig {
        long_poll: Duration::from_secs(5),
        initial_offset: None,
        backoff: RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_secs(5),
        },
        conflict_attempts: 3,
    }
}

#[tokio::test]
async fn poll_hands_updates_in_order_and_resumes_from_next_offset() {
    let sim = start_sim().await;
    let client = client(&sim);
    let ids: Vec<i64> = ["/status", "/alerts", "/help"]
        .into_iter()
        .map(|text| sim.telegram_inject(message(OPERATOR_CHAT, text)))
        .collect();

    let mut seen = Vec::new();
    let stopped = poll(&client, &fast_poll(), |update| {
        seen.push(update);
        let done = seen.len() == 2;
        async move {
            if done {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(stopped.next_offset, Some(ids[1] + 1));
    let texts: Vec<Option<String>> = seen
        .iter()
        .map(|update| match update {
            Update::Message(message) => message.text.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        vec![Some("/status".to_owned()), Some("/alerts".to_owned())]
    );

    let config = PollConfig {
        initial_offset: stopped.next_offset,
        ..fast_poll()
    };
    let mut rest = Vec::new();
    let stopped = poll(&client, &config, |update| {
        rest.push(update.update_id());
        async { ControlFlow::Break(()) }
    })
    .await
    .unwrap();
    assert_eq!(rest, vec![ids[2]]);
    assert_eq!(stopped.next_offset, Some(ids[2] + 1));
}

#[tokio::test]
async fn poll_backs_off_on_rate_limits_and_garbage_then_goes_on() {
    let sim = start_sim().await;
    let client = client(&sim);
    sim.inject_fault(fault(
        1,
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
    ));
    sim.inject_fault(fault(1, FaultKind::Garbage));
    let update_id = sim.telegram_inject(message(OPERATOR_CHAT, "/status"));
    let mut seen = Vec::new();
    poll(&client, &fast_poll(), |update| {
        seen.push(update.update_id());
        async { ControlFlow::Break(()) }
    })
    .await
    .unwrap();
    assert_eq!(seen, vec![update_id]);
    let statuses: Vec<u16> = calls_of(&sim, "getUpdates")
        .iter()
        .map(|call| call.status)
        .collect();
    // The garbage page is a 200 the client could not read.
    assert_eq!(statuses, vec![429, 200, 200]);
}

#[tokio::test]
async fn poll_stops_with_a_clear_error_after_repeated_conflicts() {
    let sim = start_sim().await;
    let client = client(&sim);
    sim.inject_fault(Fault {
        count: None,
        ..fault(1, FaultKind::Conflict)
    });
    sim.telegram_inject(message(OPERATOR_CHAT, "/status"));
    let mut handled = 0;
    let error = poll(&client, &fast_poll(), |_| {
        handled += 1;
        async { ControlFlow::Continue(()) }
    })
    .await
    .unwrap_err();
    assert_eq!(handled, 0);
    assert!(is_conflict(&error), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("another bot instance"), "{text}");
    assert!(text.contains("gave up after 3 consecutive 409"), "{text}");
    assert_eq!(calls_of(&sim, "getUpdates").len(), 3);
}

#[tokio::test]
async fn poll_stops_at_once_on_a_refused_token() {
    let sim = start_sim().await;
    let client = TelegramClient::new(
        Secret::new("700000001:revoked_SecretHalfXYZ123"),
        &sim.telegram_api_url(),
    )
    .unwrap();
    let error = poll(&client, &fast_poll(), |_| async {
        ControlFlow::Continue(())
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, SourceError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(sim.request_count("telegram"), 0);
}

// ---- the outbox against the sim ----

#[tokio::test]
async fn outbox_waits_out_a_429_and_delivers_everything_in_order() {
    let sim = start_sim().await;
    sim.inject_fault(fault(
        1,
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
    ));
    let config = OutboxConfig {
        per_chat_interval: Duration::from_millis(10),
        coalesce_after: 100,
        ..OutboxConfig::default()
    };
    let (outbox, mut receipts) = Outbox::start(client(&sim), config);
    let ids: Vec<OutboxId> = ["first", "second", "third"]
        .into_iter()
        .map(|text| outbox.send(OPERATOR_CHAT, text, None).unwrap())
        .collect();
    drop(outbox);
    let mut done = Vec::new();
    while let Some(receipt) = receipts.recv().await {
        done.push(receipt);
    }
    assert_eq!(done.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert!(
        done.iter()
            .all(|r| matches!(r.outcome, OutboxOutcome::Sent { .. })),
        "{done:?}"
    );
    assert_eq!(done[0].attempts, 2);
    assert_eq!(done[1].attempts, 1);

    let sends = calls_of(&sim, "sendMessage");
    let seen: Vec<(u16, &str)> = sends
        .iter()
        .map(|call| {
            (
                call.status,
                call.params["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (429, "first"),
            (200, "first"),
            (200, "second"),
            (200, "third")
        ]
    );
    let waited = sends[1].received_at - sends[0].received_at;
    assert!(
        waited >= chrono::Duration::milliseconds(990),
        "retried after {waited}"
    );
}

// ---- the outbox under paused time ----

/// Records every call with its (paused) time; fails chosen texts with chosen errors.
#[derive(Clone, Default)]
struct FakeTransport {
    calls: Arc<Mutex<Vec<FakeCall>>>,
    failures: Arc<Mutex<HashMap<String, VecDeque<SourceError>>>>,
    next_message_id: Arc<AtomicU64>,
}

#[derive(Clone, Debug, PartialEq)]
struct FakeCall {
    at: Instant,
    chat_id: i64,
    text: String,
    keyboard: bool,
    edit: bool,
}

impl FakeTransport {
    fn fail(&self, text: &str, errors: Vec<SourceError>) {
        self.failures
            .lock()
            .unwrap()
            .insert(text.to_owned(), errors.into());
    }

    fn calls(&self) -> Vec<FakeCall> {
        self.calls.lock().unwrap().clone()
    }

    fn record(
        &self,
        chat_id: i64,
        text: &str,
        keyboard: bool,
        edit: bool,
    ) -> Result<(), SourceError> {
        self.calls.lock().unwrap().push(FakeCall {
            at: Instant::now(),
            chat_id,
            text: text.to_owned(),
            keyboard,
            edit,
        });
        match self
            .failures
            .lock()
            .unwrap()
            .get_mut(text)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl OutboxTransport for FakeTransport {
    async fn send(
        &self,
        chat_id: i64,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<i32, SourceError> {
        // Some latency, so requests overlap like real ones.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.record(chat_id, &text, keyboard.is_some(), false)?;
        Ok(i32::try_from(self.next_message_id.fetch_add(1, Ordering::Relaxed)).unwrap() + 1)
    }

    async fn edit(
        &self,
        chat_id: i64,
        _message_id: i32,
        text: String,
        keyboard: Option<InlineKeyboard>,
    ) -> Result<(), SourceError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.record(chat_id, &text, keyboard.is_some(), true)
    }
}

fn no_coalescing() -> OutboxConfig {
    OutboxConfig {
        coalesce_after: usize::MAX,
        ..OutboxConfig::default()
    }
}

async fn drain(mut receipts: mpsc::UnboundedReceiver<OutboxReceipt>) -> Vec<OutboxReceipt> {
    let mut done = Vec::new();
    while let Some(receipt) = receipts.recv().await {
        done.push(receipt);
    }
    done
}

/// (seconds since `start`, rounded to 0.1 s; chat; text) of every call.
fn timeline(start: Instant, calls: &[FakeCall]) -> Vec<(f64, i64, String)> {
    calls
        .iter()
        .map(|call| {
            let seconds = (call.at - start).as_secs_f64();
            (
                (seconds * 10.0).round() / 10.0,
                call.chat_id,
                call.text.clone(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn outbox_spaces_one_chat_and_interleaves_two() {
    let fake = FakeTransport::default();
    let (outbox, receipts) = Outbox::start(fake.clone(), no_coalescing());
    let start = Instant::now();
    for text in ["a1", "a2", "a3"] {
        outbox.send(1, text, None).unwrap();
    }
    for text in ["b1", "b2"] {
        outbox.send(2, text, None).unwrap();
    }
    drop(outbox);
    let done = drain(receipts).await;
    assert_eq!(done.len(), 5);
    assert_eq!(
        timeline(start, &fake.calls()),
        vec![
            (0.1, 1, "a1".to_owned()),
            (0.1, 2, "b1".to_owned()),
            (1.1, 1, "a2".to_owned()),
            (1.1, 2, "b2".to_owned()),
            (2.1, 1, "a3".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn outbox_caps_requests_per_second_overall() {
    let fake = FakeTransport::default();
    let config = OutboxConfig {
        global_per_second: 2,
        ..no_coalescing()
    };
    let (outbox, receipts) = Outbox::start(fake.clone(), config);
    let start = Instant::now();
    for chat in 1..=5 {
        outbox.send(chat, format!("to {chat}"), None).unwrap();
    }
    drop(outbox);
    assert_eq!(drain(receipts).await.len(), 5);
    let seconds: Vec<f64> = timeline(start, &fake.calls())
        .into_iter()
        .map(|(at, _, _)| at)
        .collect();
    assert_eq!(seconds, vec![0.1, 0.1, 1.1, 1.1, 2.1]);
    // Oldest first across chats.
    let chats: Vec<i64> = fake.calls().iter().map(|call| call.chat_id).collect();
    assert_eq!(chats, vec![1, 2, 3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn outbox_429_pauses_that_chat_and_resends_the_same_message() {
    let fake = FakeTransport::default();
    fake.fail(
        "a1",
        vec![SourceError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            message: "telegram sendMessage: flood control".to_owned(),
        }],
    );
    let (outbox, receipts) = Outbox::start(fake.clone(), no_coalescing());
    let start = Instant::now();
    let a1 = outbox.send(1, "a1", None).unwrap();
    outbox.send(1, "a2", None).unwrap();
    outbox.send(2, "b1", None).unwrap();
    outbox.send(2, "b2", None).unwrap();
    drop(outbox);
    let done = drain(receipts).await;
    assert_eq!(done.len(), 4);
    assert!(
        done.iter()
            .all(|r| matches!(r.outcome, OutboxOutcome::Sent { .. }))
    );
    assert_eq!(
        done.iter().find(|r| r.id == a1).map(|r| r.attempts),
        Some(2)
    );
    assert_eq!(
        timeline(start, &fake.calls()),
        vec![
            (0.1, 1, "a1".to_owned()),
            (0.1, 2, "b1".to_owned()),
            // Chat 2 is not held up by chat 1's pause.
            (1.1, 2, "b2".to_owned()),
            // 429 at 0.05 s + retry_after 3 s, then the send's own latency.
            (3.1, 1, "a1".to_owned()),
            (4.1, 1, "a2".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn outbox_pauses_every_chat_when_two_chats_are_rate_limited() {
    let fake = FakeTransport::default();
    let flood = || SourceError::RateLimited {
        retry_after: Some(Duration::from_secs(5)),
        message: "telegram sendMessage: flood control".to_owned(),
    };
    fake.fail("a1", vec![flood()]);
    fake.fail("b1", vec![flood()]);
    let (outbox, receipts) = Outbox::start(fake.clone(), no_coalescing());
    let start = Instant::now();
    outbox.send(1, "a1", None).unwrap();
    outbox.send(2, "b1", None).unwrap();
    // Chat 3's message arrives while both are paused: it waits for the global pause too.
    let late = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            outbox.send(3, "c1", None).unwrap();
        }
    });
    late.await.unwrap();
    drop(outbox);
    assert_eq!(drain(receipts).await.len(), 3);
    let calls = timeline(start, &fake.calls());
    let c1 = calls.iter().find(|(_, chat, _)| *chat == 3).unwrap();
    assert!(
        c1.0 >= 5.0,
        "chat 3 went out during the global pause: {calls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn outbox_coalesces_a_burst_of_plain_messages() {
    let fake = FakeTransport::default();
    let config = OutboxConfig {
        coalesce_after: 2,
        ..OutboxConfig::default()
    };
    let (outbox, receipts) = Outbox::start(fake.clone(), config);
    let plain: Vec<OutboxId> = ["m1", "m2", "m3", "m4"]
        .into_iter()
        .map(|text| outbox.send(1, text, None).unwrap())
        .collect();
    let keyboard = outbox
        .send(
            1,
            "approve?",
            Some(InlineKeyboard::callback_row(&[("Approve", "approve:1")])),
        )
        .unwrap();
    let last = outbox.send(1, "m6", None).unwrap();
    drop(outbox);
    let done = drain(receipts).await;

    let calls = fake.calls();
    let texts: Vec<(&str, bool)> = calls
        .iter()
        .map(|call| (call.text.as_str(), call.keyboard))
        .collect();
    assert_eq!(
        texts,
        vec![
            ("m1\n\nm2\n\nm3\n\nm4", false),
            ("approve?", true),
            ("m6", false)
        ]
    );
    assert_eq!(done.len(), 6);
    let sent_as = |id: OutboxId| {
        done.iter()
            .find(|r| r.id == id)
            .map(|r| r.outcome.clone())
            .unwrap()
    };
    let OutboxOutcome::Sent {
        message_id: joined_id,
        coalesced_with,
    } = sent_as(plain[0])
    else {
        panic!("m1 not sent");
    };
    assert_eq!(coalesced_with, plain[1..].to_vec());
    for id in &plain[1..] {
        assert!(
            matches!(sent_as(*id), OutboxOutcome::Sent { message_id, .. } if message_id == joined_id)
        );
    }
    assert!(
        matches!(sent_as(keyboard), OutboxOutcome::Sent { message_id, ref coalesced_with } if message_id != joined_id && coalesced_with.is_empty())
    );
    assert!(matches!(sent_as(last), OutboxOutcome::Sent { .. }));
}

#[tokio::test(start_paused = true)]
async fn outbox_coalescing_stays_within_4096_characters() {
    let fake = FakeTransport::default();
    let config = OutboxConfig {
        coalesce_after: 1,
        ..OutboxConfig::default()
    };
    let (outbox, receipts) = Outbox::start(fake.clone(), config);
    let long = |c: char| c.to_string().repeat(2000);
    for c in ['a', 'b', 'c', 'd'] {
        outbox.send(1, long(c), None).unwrap();
    }
    drop(outbox);
    assert_eq!(drain(receipts).await.len(), 4);
    let lengths: Vec<usize> = fake
        .calls()
        .iter()
        .map(|call| call.text.chars().count())
        .collect();
    assert_eq!(lengths, vec![4002, 4002]);
    assert!(fake.calls()[0].text.starts_with('a') && fake.calls()[0].text.ends_with('b'));
}

#[tokio::test(start_paused = true)]
async fn outbox_reports_failures_and_goes_on() {
    let fake = FakeTransport::default();
    fake.fail(
        "to a blocked user",
        vec![SourceError::Upstream {
            code: None,
            message: "telegram sendMessage: Forbidden: bot was blocked by the user".to_owned(),
        }],
    );
    fake.fail(
        "unreachable",
        (0..5)
            .map(|_| SourceError::Connect {
                message: "telegram sendMessage: cannot connect".to_owned(),
            })
            .collect(),
    );
    let config = OutboxConfig {
        max_attempts: 3,
        ..no_coalescing()
    };
    let (outbox, receipts) = Outbox::start(fake.clone(), config);
    let blocked = outbox.send(1, "to a blocked user", None).unwrap();
    let after = outbox.send(1, "next", None).unwrap();
    let unreachable = outbox.send(2, "unreachable", None).unwrap();
    let edit = outbox.edit(2, 77, "edited", None).unwrap();
    drop(outbox);
    let done = drain(receipts).await;
    let receipt = |id: OutboxId| done.iter().find(|r| r.id == id).cloned().unwrap();
    assert!(matches!(
        receipt(blocked).outcome,
        OutboxOutcome::Failed {
            error: SourceError::Upstream { .. }
        }
    ));
    assert_eq!(receipt(blocked).attempts, 1);
    assert!(matches!(receipt(after).outcome, OutboxOutcome::Sent { .. }));
    assert!(matches!(
        receipt(unreachable).outcome,
        OutboxOutcome::Failed {
            error: SourceError::Connect { .. }
        }
    ));
    assert_eq!(receipt(unreachable).attempts, 3);
    // The edit waited behind the failing message of its chat, then went out.
    assert_eq!(receipt(edit).outcome, OutboxOutcome::Edited);
    let chat2: Vec<(String, bool)> = fake
        .calls()
        .iter()
        .filter(|call| call.chat_id == 2)
        .map(|call| (call.text.clone(), call.edit))
        .collect();
    assert_eq!(
        chat2,
        vec![
            ("unreachable".to_owned(), false),
            ("unreachable".to_owned(), false),
            ("unreachable".to_owned(), false),
            ("edited".to_owned(), true),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn outbox_refuses_what_telegram_would_refuse_at_enqueue() {
    let fake = FakeTransport::default();
    let (outbox, receipts) = Outbox::start(fake.clone(), OutboxConfig::default());
    assert!(outbox.send(1, "", None).is_err());
    assert!(
        outbox
            .send(1, "x".repeat(MAX_MESSAGE_CHARS + 1), None)
            .is_err()
    );
    assert!(
        outbox
            .send(1, "x", Some(InlineKeyboard::callback_row(&[("A", "")])))
            .is_err()
    );
    drop(outbox);
    assert!(drain(receipts).await.is_empty());
    assert!(fake.calls().is_empty());
}

#[test]
fn webhook_bodies_are_read_like_polled_updates() {
    let body = br#"{"update_id": 7, "message": {"message_id": 100, "from": {"id": 1001, "is_bot": false, "first_name": "alice", "username": "alice"}, "chat": {"id": 1001, "type": "private", "first_name": "alice"}, "date": 1795500000, "text": "/help"}}"#;
    match parse_update(body).unwrap() {
        Update::Message(message) => {
            assert_eq!(message.update_id, 7);
            assert_eq!(message.user_id, 1001);
            assert_eq!(message.text.as_deref(), Some("/help"));
        }
        other => panic!("{other:?}"),
    }
    // A kind the bot does not read still has its id (so it is not handled twice).
    let poll = br#"{"update_id": 8, "poll": {"id": "1"}}"#;
    assert_eq!(parse_update(poll).unwrap().update_id(), 8);
    assert!(
        parse_update(b"{\"message\": {}}")
            .unwrap_err()
            .contains("update_id")
    );
    assert!(parse_update(b"<html>").unwrap_err().starts_with("not JSON"));
}

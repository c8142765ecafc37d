use std::time::Duration;

use super::*;
use crate::sim::{Fault, FaultKind, SimHandle, SimService};
use crate::test_support::{SECRET, fast_policy, fixed_server, start_sim};

const VALIDATOR: &str = "-1:3333333333333333333333333333333333333333333333333333333333333333";

fn client(base_url: &str) -> ToncenterClient {
    ToncenterClient::new(base_url, Some(Secret::new(SECRET)), 1000.0, fast_policy()).unwrap()
}

fn counted(kind: FaultKind, count: u32) -> Fault {
    Fault {
        service: SimService::Toncenter,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

fn assert_no_secret(error: &SourceError) {
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{text}");
}

async fn sim_client() -> (SimHandle, ToncenterClient) {
    let sim = start_sim().await;
    let client = client(&sim.toncenter_url());
    (sim, client)
}

#[tokio::test]
async fn masterchain_info_advances_with_the_sim_clock() {
    let (sim, client) = sim_client().await;
    let first = client.get_masterchain_info().await.unwrap().value;
    assert_eq!(first.init_seqno, 0);
    assert!(!first.last_root_hash.is_empty());
    sim.advance(Duration::from_secs(50));
    let later = client.get_masterchain_info().await.unwrap().value;
    assert_eq!(later.last_seqno, first.last_seqno + 10);
}

#[tokio::test]
async fn validator_balance_string_is_parsed_to_exact_nanotons() {
    let (sim, client) = sim_client().await;
    let info = client.get_address_information(VALIDATOR).await.unwrap();
    assert_eq!(info.attempts, 1);
    assert_eq!(info.value.balance_nanoton, 12_500_123_456_789);
    assert_eq!(info.value.state, "active");
    assert!(info.value.last_transaction_lt.is_some());
    assert_eq!(info.value.sync_utime, Some(sim.now().timestamp()));
    // The scenario takes 500 TON at 5 min.
    sim.advance(Duration::from_secs(5 * 60));
    let after = client
        .get_address_information(VALIDATOR)
        .await
        .unwrap()
        .value;
    assert_eq!(after.balance_nanoton, 12_000_123_456_789);
}

#[tokio::test]
async fn an_unknown_but_valid_address_is_uninitialized_with_no_transactions() {
    let (_sim, client) = sim_client().await;
    let info = client
        .get_address_information("EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N")
        .await
        .unwrap()
        .value;
    assert_eq!(info.balance_nanoton, 0);
    assert_eq!(info.state, "uninitialized");
    assert_eq!(info.last_transaction_lt, None);
}

#[tokio::test]
async fn an_incorrect_address_is_invalid_input_and_not_retried() {
    let (sim, client) = sim_client().await;
    let error = client
        .get_address_information("not-an-address")
        .await
        .unwrap_err();
    match &error {
        SourceError::InvalidInput { detail } => {
            assert!(detail.contains("Incorrect address"), "{detail}");
            assert!(
                detail.contains("toncenter GET /toncenter/api/v2/getAddressInformation"),
                "{detail}"
            );
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(sim.request_count("toncenter"), 1);
    assert_no_secret(&error);
}

#[tokio::test]
async fn live_429_with_the_message_in_result_is_rate_limited() {
    let (sim, client) = sim_client().await;
    sim.inject_fault(counted(
        FaultKind::RateLimit {
            retry_after_seconds: None,
        },
        3,
    ));
    let error = client.get_masterchain_info().await.unwrap_err();
    match &error {
        SourceError::RateLimited { message, .. } => {
            assert!(message.contains("Ratelimit exceed"), "{message}")
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(sim.request_count("toncenter"), 3);
    assert_no_secret(&error);
    assert_eq!(client.get_masterchain_info().await.unwrap().attempts, 1);
}

#[tokio::test]
async fn documented_429_with_the_message_in_error_is_rate_limited() {
    let server = fixed_server(
        429,
        "application/json",
        r#"{"ok":false,"code":429,"error":"Ratelimit exceeded"}"#,
    )
    .await;
    let error = client(&format!("http://{}/api/v2", server.addr))
        .get_masterchain_info()
        .await
        .unwrap_err();
    match &error {
        SourceError::RateLimited { message, .. } => {
            assert!(message.ends_with(": Ratelimit exceeded"), "{message}")
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let headers = server.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers.get("x-api-key").unwrap(), SECRET);
}

#[tokio::test]
async fn liteserver_timeout_504_is_retried_then_clears() {
    let (sim, client) = sim_client().await;
    sim.inject_fault(counted(FaultKind::ServerError { status: 504 }, 1));
    let fetched = client.get_address_information(VALIDATOR).await.unwrap();
    assert_eq!(fetched.attempts, 2);
    sim.inject_fault(counted(FaultKind::ServerError { status: 504 }, 3));
    let error = client.get_address_information(VALIDATOR).await.unwrap_err();
    match &error {
        SourceError::Unavailable {
            status: 504,
            message,
        } => {
            assert!(message.contains("Liteserver timeout"), "{message}")
        }
        other => panic!("expected Unavailable 504, got {other:?}"),
    }
    assert!(error.is_transient());
}

#[tokio::test]
async fn garbage_truncated_and_html_502_are_transient_and_retried() {
    let (sim, client) = sim_client().await;
    for kind in [
        FaultKind::Garbage,
        FaultKind::Truncated,
        FaultKind::ServerError { status: 502 },
        FaultKind::Timeout { delay_ms: 0 },
    ] {
        sim.inject_fault(counted(kind.clone(), 2));
        let fetched = client.get_masterchain_info().await.unwrap();
        let expected = if matches!(kind, FaultKind::Timeout { .. }) {
            1
        } else {
            3
        };
        assert_eq!(fetched.attempts, expected, "{kind:?}");
    }
}

#[tokio::test]
async fn lite_server_unknown_500_is_upstream_and_not_retried() {
    let server = fixed_server(
        500,
        "application/json",
        r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: cannot apply external message to current state : failed to parse external message","code":500}"#,
    )
    .await;
    let client = client(&format!("http://{}/api/v2", server.addr));
    let error = client.get_masterchain_info().await.unwrap_err();
    match &error {
        SourceError::Upstream { code, message } => {
            assert_eq!(*code, Some(500));
            assert!(message.contains("LITE_SERVER_UNKNOWN"), "{message}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
    assert!(!error.is_transient());
}

#[tokio::test]
async fn huge_balances_fit_u128_and_bad_balances_name_the_field() {
    let huge = fixed_server(
        200,
        "application/json",
        r#"{"ok":true,"result":{"@type":"raw.fullAccountState","balance":"340282366920938463463374607431768211455","state":"active","last_transaction_id":{"@type":"internal.transactionId","lt":"34789408000007","hash":"x"},"sync_utime":1687338490}}"#,
    )
    .await;
    let info = client(&format!("http://{}/api/v2", huge.addr))
        .get_address_information(VALIDATOR)
        .await
        .unwrap()
        .value;
    assert_eq!(info.balance_nanoton, u128::MAX);
    assert_eq!(info.last_transaction_lt, Some(34_789_408_000_007));
    assert_eq!(info.sync_utime, Some(1_687_338_490));

    let bad = fixed_server(
        200,
        "application/json",
        r#"{"ok":true,"result":{"balance":"12.5","state":"active"}}"#,
    )
    .await;
    let error = client(&format!("http://{}/api/v2", bad.addr))
        .get_address_information(VALIDATOR)
        .await
        .unwrap_err();
    match &error {
        SourceError::InvalidResponse { detail } => {
            assert!(detail.contains("result.balance"), "{detail}");
            assert!(detail.contains("\"12.5\""), "{detail}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn an_api_key_in_the_base_url_never_reaches_error_text() {
    let base = format!("http://127.0.0.1:1/api/v2?api_key={SECRET}");
    let client = ToncenterClient::new(&base, None, 1000.0, fast_policy()).unwrap();
    let error = client.get_masterchain_info().await.unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{text}");
}

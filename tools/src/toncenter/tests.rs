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

// ---- sendBoc, getWalletInformation, getTransactions ----

const DESTINATION: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";

fn signer() -> crate::ton::WalletSigner {
    let words = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test_wallet.mnemonic"
    ))
    .unwrap();
    crate::ton::WalletSigner::from_mnemonic(&words, crate::ton::WalletKind::V4r2).unwrap()
}

async fn wallet_sim(wallet: &str) -> (SimHandle, ToncenterClient) {
    let scenario = crate::sim::Scenario::from_toml(
        &format!(
            "name = \"wallet\"\n[[validators]]\nname = \"w\"\naddress = \"{wallet}\"\nbalance_ton = 10.0\nseqno = 3\nwallet_type = \"wallet v4 r2\"\n"
        ),
        "toncenter/tests.rs",
    )
    .unwrap();
    let sim = crate::sim::SimWorld::start(scenario, crate::test_support::loopback())
        .await
        .unwrap();
    let client = client(&sim.toncenter_url());
    (sim, client)
}

fn sign(signer: &crate::ton::WalletSigner, seqno: u32, amount: u64) -> crate::ton::SignedTransfer {
    signer
        .sign_transfer(&crate::ton::TransferRequest {
            destination: DESTINATION,
            amount_nanoton: amount,
            comment: Some("hello [cc-1]"),
            seqno,
            valid_until: u32::try_from(chrono::Utc::now().timestamp() + 60).unwrap(),
            with_state_init: false,
        })
        .unwrap()
}

#[tokio::test]
async fn a_sent_transfer_shows_in_seqno_and_transactions_and_a_replay_is_rejected_once() {
    let signer = signer();
    let wallet = signer.address().friendly;
    let (sim, client) = wallet_sim(&wallet).await;
    let before = client.get_wallet_information(&wallet).await.unwrap().value;
    assert!(before.wallet);
    assert_eq!(before.seqno, Some(3));
    assert_eq!(before.account_state, "active");
    assert_eq!(before.wallet_type.as_deref(), Some("wallet v4 r2"));
    assert_eq!(before.balance_nanoton, 10_000_000_000);
    assert!(
        client
            .get_transactions(&wallet, 10, None, false)
            .await
            .unwrap()
            .value
            .is_empty()
    );

    let signed = sign(&signer, 3, 1_000_000_000);
    let sent = client.send_boc(&signed.boc_base64).await.unwrap();
    assert_eq!(sent.attempts, 1);
    let after = client.get_wallet_information(&wallet).await.unwrap().value;
    assert_eq!(after.seqno, Some(4));
    assert!(after.balance_nanoton < 9_000_000_000);

    let transactions = client
        .get_transactions(&wallet, 10, None, true)
        .await
        .unwrap()
        .value;
    assert_eq!(transactions.len(), 1);
    let tx = &transactions[0];
    assert!(tx.lt > 0 && !tx.hash.is_empty() && tx.utime > 0);
    let in_msg = tx.in_msg.as_ref().unwrap();
    assert_eq!(in_msg.source, "");
    assert_eq!(in_msg.hash.as_deref(), Some(signed.message_hash.as_str()));
    assert_eq!(tx.out_msgs.len(), 1);
    let out = &tx.out_msgs[0];
    assert_eq!(
        crate::ton::parse_address(&out.destination).unwrap().raw,
        DESTINATION
    );
    assert_eq!(
        crate::ton::parse_address(&out.source).unwrap().raw,
        signer.address().raw
    );
    assert_eq!(out.value_nanoton, 1_000_000_000);
    assert_eq!(out.comment.as_deref(), Some("hello [cc-1]"));
    assert_eq!(out.body_hash.as_deref(), Some(signed.body_hash.as_str()));
    // The receiver sees it too, and the cursor pages from a transaction on.
    let received = client
        .get_transactions(DESTINATION, 10, None, false)
        .await
        .unwrap()
        .value;
    assert_eq!(
        received[0].in_msg.as_ref().unwrap().value_nanoton,
        1_000_000_000
    );
    let cursor = TransactionCursor {
        lt: tx.lt,
        hash: tx.hash.clone(),
    };
    let page = client
        .get_transactions(&wallet, 10, Some(&cursor), false)
        .await
        .unwrap()
        .value;
    assert_eq!(page.len(), 1);

    // The same BOC again: the wallet's seqno moved on, so it is refused, once, for good.
    let error = client.send_boc(&signed.boc_base64).await.unwrap_err();
    assert!(
        matches!(
            error,
            SourceError::Upstream {
                code: Some(500),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(
        text.contains(&format!("{MESSAGE_NOT_ACCEPTED} (toncenter POST ")),
        "{text}"
    );
    assert!(text.contains("exitcode=33"), "{text}");
    assert_no_secret(&error);
    let records = sim.sent_transfers();
    assert_eq!(records.len(), 2, "one record per sendBoc: no retries");
    assert!(records[0].accepted && !records[1].accepted);
    assert_eq!(
        client
            .get_wallet_information(&wallet)
            .await
            .unwrap()
            .value
            .seqno,
        Some(4)
    );
}

#[tokio::test]
async fn a_bad_boc_is_rejected_with_the_liteserver_text() {
    let signer = signer();
    let (sim, client) = wallet_sim(&signer.address().friendly).await;
    let error = client.send_boc("dGhpcyBpcyBubyBib2M=").await.unwrap_err();
    assert!(matches!(error, SourceError::Upstream { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not a valid bag of cells"),
        "{error}"
    );
    assert_eq!(sim.request_count("toncenter"), 1);
    assert!(matches!(
        client.send_boc("  ").await,
        Err(SourceError::InvalidInput { .. })
    ));
    assert!(matches!(
        client.get_transactions(DESTINATION, 0, None, false).await,
        Err(SourceError::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn send_boc_is_never_retried_after_a_timeout_or_an_answer() {
    let signer = signer();
    let wallet = signer.address().friendly;
    let (sim, client) = wallet_sim(&wallet).await;
    // Applied, then no answer in time: the client cannot know; it must not send again.
    sim.inject_fault(counted(
        FaultKind::AppliedThenTimeout { delay_ms: 3_000 },
        1,
    ));
    let error = client
        .send_boc(&sign(&signer, 3, 1).boc_base64)
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::Timeout { .. }), "{error:?}");
    assert_eq!(sim.request_count("toncenter"), 1);
    assert_eq!(sim.sent_transfers().len(), 1);
    assert_eq!(sim.wallet_seqno(&wallet), Some(4));
    // The applied_then_timeout fault only hits sendBoc; a plain 503 is not retried either.
    sim.inject_fault(counted(FaultKind::ServerError { status: 503 }, 1));
    let error = client
        .send_boc(&sign(&signer, 4, 1).boc_base64)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SourceError::Unavailable { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(sim.request_count("toncenter"), 2);
    assert_eq!(sim.wallet_seqno(&wallet), Some(4));
}

#[tokio::test]
async fn send_boc_retries_only_a_connection_that_never_opened() {
    // A port nothing listens on: every attempt fails to connect, nothing was delivered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client(&format!("http://{addr}/api/v2"));
    let error = client.send_boc("dGVzdA==").await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn rejections_are_normalized_whatever_the_status() {
    // Our own bodies in the shapes toncenter and other providers use.
    let cases: [(u16, &'static str, bool); 4] = [
        (
            500,
            r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\nexitcode=36, steps=5","code":500}"#,
            true,
        ),
        (
            406,
            r#"{"ok":false,"error":"External message was not accepted: exitcode=135","code":406}"#,
            true,
        ),
        (
            200,
            r#"{"ok":false,"result":"LITE_SERVER_UNKNOWN: cannot apply external message to current state : failed to parse external message","code":500}"#,
            true,
        ),
        (
            504,
            r#"{"ok":false,"error":"LITE_SERVER_NETWORK timeout","code":504}"#,
            false,
        ),
    ];
    for (status, body, rejection) in cases {
        let server = fixed_server(status, "application/json", body).await;
        let client = client(&format!("http://{}/api/v2", server.addr));
        let error = client.send_boc("dGVzdA==").await.unwrap_err();
        if rejection {
            assert!(
                matches!(error, SourceError::Upstream { .. }),
                "{status}: {error:?}"
            );
            assert!(error.to_string().contains(MESSAGE_NOT_ACCEPTED), "{error}");
            assert!(!error.is_transient());
        } else {
            assert!(error.is_transient(), "{status}: {error:?}");
        }
    }
    let server = fixed_server(
        200,
        "application/json",
        r#"{"ok":true,"result":{"@type":"ok"}}"#,
    )
    .await;
    let sent = client(&format!("http://{}/api/v2", server.addr))
        .send_boc("dGVzdA==")
        .await
        .unwrap();
    assert_eq!(sent.value.message_hash, None);
}

#[tokio::test]
async fn transactions_parse_toncenter_v2_messages() {
    let body = r#"{"ok":true,"result":[{"@type":"raw.transaction","utime":1700000000,"data":"",
        "transaction_id":{"@type":"internal.transactionId","lt":"41000000000003","hash":"q83vEjRWeJA="},
        "fee":"2500000","storage_fee":"1","other_fee":"2499999",
        "in_msg":{"@type":"raw.message","source":"","destination":"EQAREREREREREREREREREREREREREREREREREREREREREaFq","value":"0",
          "fwd_fee":"0","ihr_fee":"0","created_lt":"0","body_hash":"AAAA","message":"",
          "msg_data":{"@type":"msg.dataRaw","body":"","init_state":""}},
        "out_msgs":[{"@type":"raw.message","source":"EQAREREREREREREREREREREREREREREREREREREREREREaFq",
          "destination":"Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF","value":"1500000000",
          "fwd_fee":"1","ihr_fee":"0","created_lt":"41000000000004","body_hash":"BBBB","message":"top up",
          "msg_data":{"@type":"msg.dataText","text":"dG9wIHVw"}}]}]}"#;
    let server = fixed_server(200, "application/json", body).await;
    let transactions = client(&format!("http://{}/api/v2", server.addr))
        .get_transactions(VALIDATOR, 5, None, false)
        .await
        .unwrap()
        .value;
    assert_eq!(transactions.len(), 1);
    let tx = &transactions[0];
    assert_eq!(
        (tx.lt, tx.hash.as_str(), tx.utime, tx.fee_nanoton),
        (41_000_000_000_003, "q83vEjRWeJA=", 1_700_000_000, 2_500_000)
    );
    assert_eq!(tx.in_msg.as_ref().unwrap().hash, None);
    assert_eq!(tx.in_msg.as_ref().unwrap().comment, None);
    assert_eq!(tx.out_msgs[0].value_nanoton, 1_500_000_000);
    assert_eq!(tx.out_msgs[0].comment.as_deref(), Some("top up"));
    assert_eq!(tx.out_msgs[0].body_hash.as_deref(), Some("BBBB"));
    let failing = fixed_server(
        200,
        "application/json",
        r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: lt not in db","code":500}"#,
    )
    .await;
    let error = client(&format!("http://{}/api/v2", failing.addr))
        .get_transactions(VALIDATOR, 5, None, true)
        .await
        .unwrap_err();
    assert!(matches!(error, SourceError::Upstream { .. }), "{error:?}");
}

#[tokio::test]
async fn estimate_fee_reads_the_source_fees_of_the_signed_body() {
    let signer = signer();
    let wallet = signer.address().friendly;
    let (sim, client) = wallet_sim(&wallet).await;
    let signed = sign(&signer, 3, 1_000_000_000);
    let estimate = client
        .estimate_fee(&wallet, &signed.body_base64)
        .await
        .unwrap()
        .value;
    // The sim charges 0.002 TON per transfer; the breakdown adds up to it.
    assert_eq!(estimate.total(), 2_000_000);
    assert!(estimate.gas_fee > 0 && estimate.in_fwd_fee > 0);
    // Estimating sends nothing.
    assert!(sim.sent_transfers().is_empty());
    assert_eq!(sim.wallet_seqno(&wallet), Some(3));
    let error = client.estimate_fee(&wallet, "").await.unwrap_err();
    assert!(!error.to_string().is_empty());
}

// ---- on-chain reads against the sim's chain (config params, elector get-methods) ----

const CHAIN_SCENARIO: &str = r#"
name = "chain"
speed = 0.0
start = "2026-05-13T12:00:00Z"

[[validators]]
name = "v1"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 100.0
stake_ton = 400000.0

[[validators]]
name = "v2"
address = "-1:2222222222222222222222222222222222222222222222222222222222222222"
balance_ton = 100.0
stake_ton = 350000.0

[[validators]]
name = "idle"
address = "-1:4444444444444444444444444444444444444444444444444444444444444444"
balance_ton = 5.0

[[events]]
kind = "election"
at = "0s"
id = 1778685466
min_stake_ton = 10000.0
next_set = true

[[events.past]]
election_id = 1778619930
bonuses_ton = 1234.5
complaints = 2
banned = ["v2"]
"#;

async fn chain_sim() -> (SimHandle, ToncenterClient) {
    let scenario = crate::sim::Scenario::from_toml(CHAIN_SCENARIO, "chain.toml").unwrap();
    let sim = crate::sim::SimWorld::start(scenario, crate::test_support::loopback())
        .await
        .unwrap();
    let client = client(&sim.toncenter_url());
    (sim, client)
}

#[tokio::test]
async fn config_params_from_the_sim_decode_to_typed_values() {
    use crate::ton::config::ConfigParam;
    let (_sim, client) = chain_sim().await;
    let timing = client.get_config_param(15).await.unwrap().value;
    let ConfigParam::ElectionTiming(timing) = timing else {
        unreachable!("{timing:?}")
    };
    assert_eq!(timing.validators_elected_for, 65536);
    let ConfigParam::StakeLimits(limits) = client.get_config_param(17).await.unwrap().value else {
        unreachable!()
    };
    assert_eq!(limits.max_stake_factor, 196_608);
    let ConfigParam::ValidatorSet { param, set } = client.get_config_param(34).await.unwrap().value
    else {
        unreachable!()
    };
    assert_eq!(param, 34);
    // Only validators with a stake are in the set.
    assert_eq!(set.total, 2);
    assert_eq!(set.validators.len(), 2);
    assert_eq!(set.utime_since, 1_778_685_466 - 65536);
    assert_eq!(set.total_weight, 750_000_000);
    assert!(set.validators.iter().all(|v| v.adnl_address.is_some()));
    let ConfigParam::ValidatorSet { set: next, .. } =
        client.get_config_param(36).await.unwrap().value
    else {
        unreachable!()
    };
    assert_eq!(next.utime_since, 1_778_685_466);
    // Not asked for by the scenario: absent, not an error.
    assert_eq!(
        client.get_config_param(32).await.unwrap().value,
        ConfigParam::Absent { param: 32 }
    );
}

#[tokio::test]
async fn elector_get_methods_from_the_sim_decode_to_typed_values() {
    use crate::ton::elector::FrozenStakes;
    let (sim, client) = chain_sim().await;
    assert_eq!(
        client.active_election_id().await.unwrap().value,
        Some(1_778_685_466)
    );
    let election = client.participant_list_extended().await.unwrap().value;
    assert_eq!(election.elect_at, 1_778_685_466);
    assert_eq!(election.elect_close, 1_778_685_466 - 8192);
    assert_eq!(election.min_stake, 10_000_000_000_000);
    assert_eq!(election.total_stake, 750_000_000_000_000);
    assert_eq!(election.participants.len(), 2);
    let first = &election.participants[0];
    assert_eq!(first.stake, 400_000_000_000_000);
    assert_eq!(first.max_factor, 196_608);
    assert_eq!(
        first.wallet_address,
        "-1:1111111111111111111111111111111111111111111111111111111111111111"
    );
    assert!(!election.failed && !election.finished);
    let pairs = client.participant_list().await.unwrap().value;
    assert_eq!(
        pairs,
        election
            .participants
            .iter()
            .map(|p| (p.public_key.clone(), p.stake))
            .collect::<Vec<_>>()
    );
    let past = client.past_elections().await.unwrap().value;
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].election_id, 1_778_619_930);
    assert_eq!(past[0].unfreeze_at, 1_778_619_930 + 65536 + 32768);
    assert_eq!(past[0].bonuses, 1_234_500_000_000);
    assert_eq!(past[0].complaints, Some(2));
    let FrozenStakes::Decoded { stakes } = &past[0].frozen else {
        unreachable!("{:?}", past[0].frozen)
    };
    assert_eq!(stakes.len(), 2);
    let banned: Vec<&str> = stakes
        .iter()
        .filter(|stake| stake.banned)
        .map(|stake| stake.address.as_str())
        .collect();
    assert_eq!(
        banned,
        ["-1:2222222222222222222222222222222222222222222222222222222222222222"]
    );
    assert!(sim.request_count("toncenter") >= 4);
}

#[tokio::test]
async fn a_failing_get_method_is_a_clear_upstream_error() {
    let (_sim, client) = chain_sim().await;
    let error = client
        .run_get_method(crate::ton::elector::ELECTOR_ADDRESS, "no_such_method", &[])
        .await
        .unwrap_err();
    let SourceError::Upstream { code, message } = &error else {
        unreachable!("{error:?}")
    };
    assert_eq!(*code, Some(11));
    assert!(message.contains("get-method `no_such_method`"), "{message}");
    assert!(message.contains("TVM exit code 11"), "{message}");
}

#[tokio::test]
async fn a_wrong_type_stack_from_the_server_names_the_element() {
    // A server whose participant list holds a cell where a stake belongs.
    let body = serde_json::json!({"ok": true, "result": {"@type": "smc.runResult", "exit_code": 0,
        "stack": [["num", "0x1"], ["num", "0x1"], ["num", "0x1"], ["num", "0x1"],
            ["list", {"@type": "tvm.list", "elements": [
                {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": [
                    {"@type": "tvm.stackEntryNumber", "number": {"number": "5"}},
                    {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": [
                        {"@type": "tvm.stackEntryCell", "cell": {"bytes": "AAAA"}},
                        {"@type": "tvm.stackEntryNumber", "number": {"number": "1"}},
                        {"@type": "tvm.stackEntryNumber", "number": {"number": "1"}},
                        {"@type": "tvm.stackEntryNumber", "number": {"number": "1"}}]}}]}}]}],
            ["num", "0x0"], ["num", "0x0"]]}});
    let body: &'static str = Box::leak(body.to_string().into_boxed_str());
    let server = fixed_server(200, "application/json", body).await;
    let client = client(&format!("http://{}/api/v2", server.addr));
    let error = client.participant_list_extended().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("participant_list_extended[4][0][1][0]: expected a number, got a cell"),
        "{error}"
    );
}

// ---- a full election cycle, complaints, returned stakes and nominator pools in the sim ----

/// Starts 2026-05-13T12:00:00Z (unix 1778673600). Election 1778685466 opens with three
/// participants, finishes at 10m without v2, its set takes over at 20m with the election
/// in `past` (unfreezes at 30m, one complaint against v3); v1 withdraws its stake at 35m
/// and rotates its keys at 45m.
const CYCLE_SCENARIO: &str = r#"
name = "cycle"
speed = 0.0
start = "2026-05-13T12:00:00Z"

[[validators]]
name = "v1"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 100.0
stake_ton = 400000.0
rotate_keys_at = "45m"

[[validators]]
name = "v2"
address = "-1:2222222222222222222222222222222222222222222222222222222222222222"
balance_ton = 100.0
stake_ton = 350000.0

[[validators]]
name = "v3"
address = "-1:5555555555555555555555555555555555555555555555555555555555555555"
balance_ton = 50.0
stake_ton = 300000.0

[[events]]
kind = "election"
at = "0s"
id = 1778685466
participants = ["v1", "v2", "v3"]

[[events]]
kind = "election"
at = "10m"
id = 1778685466
participants = ["v1", "v2", "v3"]
finished = true
next_set = ["v1", "v3"]

[[events]]
kind = "election"
at = "20m"
id = 0
current_set = ["v1", "v3"]

[[events.past]]
election_id = 1778685466
stakes = ["v1", "v3"]
bonuses_ton = 700.0
unfreeze_at = 1778675400
complaints_against = ["v3"]

[[events]]
kind = "stake_returned"
at = "35m"
validator = "v1"
amount_ton = 400400.0
"#;

const ELECTION: u64 = 1_778_685_466;
const V1: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
const V3: &str = "-1:5555555555555555555555555555555555555555555555555555555555555555";

async fn scenario_sim(text: &str) -> (SimHandle, ToncenterClient) {
    let scenario = crate::sim::Scenario::from_toml(text, "cycle.toml").unwrap();
    let sim = crate::sim::SimWorld::start(scenario, crate::test_support::loopback())
        .await
        .unwrap();
    let client = client(&sim.toncenter_url());
    (sim, client)
}

/// Moves the sim clock through its control endpoint, as an operator's test harness would.
async fn advance_over_http(sim: &SimHandle, seconds: f64) {
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/advance", sim.base_url()))
        .json(&serde_json::json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn validator_set(
    client: &ToncenterClient,
    param: u32,
) -> Option<crate::ton::config::ValidatorSet> {
    use crate::ton::config::ConfigParam;
    match client.get_config_param(param).await.unwrap().value {
        ConfigParam::ValidatorSet { set, .. } => Some(set),
        ConfigParam::Absent { .. } => None,
        other => unreachable!("{other:?}"),
    }
}

fn keys(set: &crate::ton::config::ValidatorSet) -> Vec<String> {
    set.validators
        .iter()
        .map(|validator| validator.public_key.clone())
        .collect()
}

#[tokio::test]
async fn a_full_election_cycle_walks_through_the_toncenter_client() {
    use crate::sim::{sim_public_key, sim_public_key_at};
    use crate::ton::elector::FrozenStakes;
    let (sim, client) = scenario_sim(CYCLE_SCENARIO).await;
    let scenario = crate::sim::Scenario::from_toml(CYCLE_SCENARIO, "cycle.toml").unwrap();
    let key = |index: usize| sim_public_key(&scenario.validators[index]);

    // 0s: the election is open with its three participants; no next set yet.
    assert_eq!(
        client.active_election_id().await.unwrap().value,
        Some(ELECTION)
    );
    let open = client.participant_list_extended().await.unwrap().value;
    assert_eq!(open.participants.len(), 3);
    assert_eq!(open.total_stake, 1_050_000_000_000_000);
    assert!(!open.finished);
    assert_eq!(client.participant_list().await.unwrap().value.len(), 3);
    assert_eq!(validator_set(&client, 36).await, None);
    assert_eq!(
        validator_set(&client, 34).await.unwrap().validators.len(),
        3
    );

    // 10m: finished; the next set lists only the elected.
    advance_over_http(&sim, 600.0).await;
    assert!(
        client
            .participant_list_extended()
            .await
            .unwrap()
            .value
            .finished
    );
    let next = validator_set(&client, 36).await.unwrap();
    assert_eq!(keys(&next), [key(0), key(2)]);
    assert_eq!(next.utime_since, ELECTION as u32);

    // 20m: rotation. The elected are the current set, the election is past with frozen
    // stakes and bonuses, and a complaint against v3 is filed.
    advance_over_http(&sim, 600.0).await;
    assert_eq!(client.active_election_id().await.unwrap().value, None);
    assert_eq!(
        keys(&validator_set(&client, 34).await.unwrap()),
        [key(0), key(2)]
    );
    assert_eq!(validator_set(&client, 36).await, None);
    let past = client.past_elections().await.unwrap().value;
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].election_id, ELECTION);
    assert_eq!(past[0].unfreeze_at, 1_778_675_400);
    assert_eq!(past[0].total_stake, 700_000_000_000_000);
    assert_eq!(past[0].bonuses, 700_000_000_000);
    assert_eq!(past[0].complaints, Some(1));
    let FrozenStakes::Decoded { stakes } = &past[0].frozen else {
        unreachable!("{:?}", past[0].frozen)
    };
    let mut frozen: Vec<(&str, u128)> = stakes
        .iter()
        .map(|stake| (stake.address.as_str(), stake.stake))
        .collect();
    frozen.sort();
    assert_eq!(
        frozen,
        [(V1, 400_000_000_000_000), (V3, 300_000_000_000_000)]
    );
    let complaints = client.list_complaints(ELECTION).await.unwrap().value;
    assert_eq!(complaints.len(), 1);
    assert_eq!(complaints[0].validator_pubkey, key(2));
    assert_eq!(complaints[0].suggested_fine, 101_000_000_000);
    assert_eq!(
        complaints[0].created_at,
        1_778_673_600 + 20 * 60,
        "filed when the event took effect"
    );
    assert!(!complaints[0].passed && complaints[0].weight_remaining > 0);
    assert_eq!(client.list_complaints(1).await.unwrap().value, Vec::new());
    // Still frozen: nothing to recover.
    assert_eq!(client.compute_returned_stake(V1).await.unwrap().value, 0);

    // 31m: unfrozen. The elector dropped the entry and credits stake + bonus share
    // (bonuses * stake / total_stake).
    advance_over_http(&sim, 660.0).await;
    assert_eq!(client.past_elections().await.unwrap().value, Vec::new());
    assert_eq!(
        client.list_complaints(ELECTION).await.unwrap().value,
        Vec::new()
    );
    let v1_friendly = crate::ton::parse_address(V1).unwrap().friendly;
    assert_eq!(
        client
            .compute_returned_stake(&v1_friendly)
            .await
            .unwrap()
            .value,
        400_400_000_000_000
    );
    assert_eq!(
        client.compute_returned_stake(V3).await.unwrap().value,
        300_300_000_000_000
    );
    let before = client.get_address_information(V1).await.unwrap().value;
    assert_eq!(before.balance_nanoton, 100_000_000_000);
    assert!(
        client
            .get_transactions(V1, 10, None, false)
            .await
            .unwrap()
            .value
            .is_empty()
    );

    // 35m: v1's stake comes back: balance up by the amount, a transaction from the
    // elector, nothing left to recover.
    advance_over_http(&sim, 240.0).await;
    let after = client.get_address_information(V1).await.unwrap().value;
    assert_eq!(
        after.balance_nanoton - before.balance_nanoton,
        400_400_000_000_000
    );
    let transactions = client
        .get_transactions(V1, 10, None, false)
        .await
        .unwrap()
        .value;
    assert_eq!(transactions.len(), 1);
    let incoming = transactions[0].in_msg.as_ref().unwrap();
    assert_eq!(
        crate::ton::parse_address(&incoming.source).unwrap().raw,
        crate::ton::elector::ELECTOR_ADDRESS
    );
    assert_eq!(
        crate::ton::parse_address(&incoming.destination)
            .unwrap()
            .raw,
        V1
    );
    assert_eq!(incoming.value_nanoton, 400_400_000_000_000);
    assert_eq!(transactions[0].utime, 1_778_673_600 + 35 * 60);
    assert_eq!(client.compute_returned_stake(V1).await.unwrap().value, 0);
    assert_eq!(
        client.compute_returned_stake(V3).await.unwrap().value,
        300_300_000_000_000
    );
    // Listed once, however often it is read.
    assert_eq!(
        client
            .get_transactions(V1, 10, None, false)
            .await
            .unwrap()
            .value,
        transactions
    );

    // 46m: v1 rotated its keys at 45m; config 34 shows the new one.
    advance_over_http(&sim, 660.0).await;
    let rotated = sim_public_key_at(&scenario.validators[0], Duration::from_secs(45 * 60));
    assert_ne!(rotated, key(0));
    assert_eq!(
        keys(&validator_set(&client, 34).await.unwrap()),
        [rotated, key(2)]
    );
}

#[tokio::test]
async fn key_rotation_changes_the_key_in_config_34_and_the_open_election() {
    use crate::sim::{sim_adnl, sim_adnl_at, sim_public_key, sim_public_key_at};
    let text = CHAIN_SCENARIO.replace(
        "stake_ton = 350000.0\n",
        "stake_ton = 350000.0\nrotate_keys_at = \"1h\"\n",
    );
    let (sim, client) = scenario_sim(&text).await;
    let scenario = crate::sim::Scenario::from_toml(&text, "rotate.toml").unwrap();
    let v2 = &scenario.validators[1];
    assert_eq!(v2.rotate_keys_at, Some(Duration::from_secs(3600)));
    let old_key = sim_public_key(v2);
    assert_eq!(sim_public_key_at(v2, Duration::from_secs(3599)), old_key);
    let new_key = sim_public_key_at(v2, Duration::from_secs(3600));
    assert_ne!(new_key, old_key);
    assert_ne!(sim_adnl_at(v2, Duration::from_secs(3600)), sim_adnl(v2));

    let before = validator_set(&client, 34).await.unwrap();
    assert!(keys(&before).contains(&old_key));
    sim.advance(Duration::from_secs(3600));
    let after = validator_set(&client, 34).await.unwrap();
    assert!(keys(&after).contains(&new_key), "{after:?}");
    assert!(!keys(&after).contains(&old_key));
    let adnl = after
        .validators
        .iter()
        .find(|validator| validator.public_key == new_key)
        .and_then(|validator| validator.adnl_address.clone());
    assert_eq!(adnl, Some(sim_adnl_at(v2, Duration::from_secs(3600))));
    let participants = client.participant_list().await.unwrap().value;
    assert!(participants.iter().any(|(key, _)| *key == new_key));
    // Past elections keep the key the stake was frozen with (the event took effect at 0s).
    let past = client.past_elections().await.unwrap().value;
    let crate::ton::elector::FrozenStakes::Decoded { stakes } = &past[0].frozen else {
        unreachable!()
    };
    assert!(stakes.iter().any(|stake| stake.public_key == old_key));
}

const POOL_SCENARIO: &str = r#"
name = "pools"
speed = 0.0
start = "2026-05-13T12:00:00Z"

[[validators]]
name = "v1"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 100.0
stake_ton = 400000.0

[[events]]
kind = "election"
at = "0s"
id = 1778685466

[[pools]]
name = "pool-a"
address = "-1:6666666666666666666666666666666666666666666666666666666666666666"
kind = "nominator"
validator = "v1"
validator_amount_ton = 50000.0

[[pools.nominators]]
address = "0:7777777777777777777777777777777777777777777777777777777777777777"
amount_ton = 20000.0

[[pools.nominators]]
address = "0:8888888888888888888888888888888888888888888888888888888888888888"
amount_ton = 15000.0
withdraw_requested = true

[[pools]]
name = "solo"
address = "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
kind = "single_nominator"
validator = "v1"
owner = "0:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

[[events]]
kind = "delegation_change"
at = "5m"
pool = "pool-a"
nominator = "0:8888888888888888888888888888888888888888888888888888888888888888"
delta_ton = -15000.0

[[events]]
kind = "delegation_change"
at = "5m"
pool = "pool-a"
nominator = "0:9999999999999999999999999999999999999999999999999999999999999999"
delta_ton = 12000.0

[[events]]
kind = "delegation_change"
at = "6m"
pool = "pool-a"
nominator = "0:7777777777777777777777777777777777777777777777777777777777777777"
delta_ton = -5000.0
"#;

const POOL_A: &str = "-1:6666666666666666666666666666666666666666666666666666666666666666";

fn nominator_amounts(nominators: &[crate::ton::pool::Nominator]) -> Vec<(String, u128, bool)> {
    nominators
        .iter()
        .map(|nominator| {
            (
                nominator.address[..4].to_owned(),
                nominator.amount,
                nominator.withdraw_requested,
            )
        })
        .collect()
}

#[tokio::test]
async fn pool_data_and_nominators_decode_and_follow_delegation_changes() {
    let (sim, client) = scenario_sim(POOL_SCENARIO).await;
    let data = client.pool_data(POOL_A).await.unwrap().value;
    assert_eq!(
        data,
        crate::ton::pool::PoolData {
            state: 2,
            nominators_count: 2,
            stake_amount_sent: 400_000_000_000_000,
            validator_amount: 50_000_000_000_000,
            validator_address: V1.to_owned(),
            validator_reward_share: 4000,
            max_nominators_count: 40,
            min_validator_stake: 10_000_000_000_000,
            min_nominator_stake: 10_000_000_000_000,
            stake_at: ELECTION,
            stake_held_for: 32_768,
        }
    );
    let nominators = client.list_nominators(POOL_A).await.unwrap().value;
    assert_eq!(
        nominator_amounts(&nominators),
        [
            ("0:77".to_owned(), 20_000_000_000_000, false),
            ("0:88".to_owned(), 15_000_000_000_000, true),
        ]
    );
    assert!(
        nominators
            .iter()
            .all(|nominator| nominator.pending_deposit == 0)
    );

    // 5m: one nominator leaves, another joins; 6m: a partial withdrawal.
    sim.advance(Duration::from_secs(300));
    let nominators = client.list_nominators(POOL_A).await.unwrap().value;
    assert_eq!(
        nominator_amounts(&nominators),
        [
            ("0:77".to_owned(), 20_000_000_000_000, false),
            ("0:99".to_owned(), 12_000_000_000_000, false),
        ]
    );
    sim.advance(Duration::from_secs(60));
    let pool_friendly = crate::ton::parse_address(POOL_A).unwrap().friendly;
    let nominators = client.list_nominators(&pool_friendly).await.unwrap().value;
    assert_eq!(nominators[0].amount, 15_000_000_000_000);
    assert_eq!(
        client
            .pool_data(POOL_A)
            .await
            .unwrap()
            .value
            .nominators_count,
        2
    );

    let roles = client
        .single_nominator_roles(
            "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        roles,
        crate::ton::pool::SingleNominatorRoles {
            owner: "0:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
            validator: V1.to_owned(),
        }
    );
    // A nominator pool has no get_roles, a single nominator pool no get_pool_data.
    let error = client.single_nominator_roles(POOL_A).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Upstream { code: Some(11), .. }),
        "{error:?}"
    );
    let error = client
        .pool_data("-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Upstream { code: Some(11), .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn get_methods_check_arguments_and_unknown_accounts_have_no_code() {
    let (_sim, client) = scenario_sim(POOL_SCENARIO).await;
    // No argument: stack underflow, as the elector would throw.
    let error = client
        .run_get_method(crate::ton::elector::ELECTOR_ADDRESS, "list_complaints", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Upstream { code: Some(2), .. }),
        "{error:?}"
    );
    let error = client
        .run_get_method(
            crate::ton::elector::ELECTOR_ADDRESS,
            "compute_returned_stake",
            &[TvmValue::Cell(
                crate::ton::config::empty_cell_boc().unwrap(),
            )],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Upstream { code: Some(7), .. }),
        "{error:?}"
    );
    // An account the sim does not run: no code (-256), as before pools existed.
    let error = client
        .pool_data("-1:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SourceError::Upstream {
                code: Some(-256),
                ..
            }
        ),
        "{error:?}"
    );
    // A bad wallet address never reaches the network.
    let error = client.compute_returned_stake("nope").await.unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidInput { detail } if detail.contains("compute_returned_stake")),
        "{error:?}"
    );
}

#[tokio::test]
async fn malformed_complaint_and_pool_stacks_are_invalid_responses_naming_the_position() {
    for (body, call, expected) in [
        (
            r#"{"ok":true,"result":{"@type":"smc.runResult","exit_code":0,"stack":[["list",{"@type":"tvm.list","elements":[{"@type":"tvm.stackEntryNumber","number":{"number":"5"}}]}]]}}"#,
            "complaints",
            "list_complaints[0][0]: expected a tuple or list, got a number",
        ),
        (
            r#"{"ok":true,"result":{"@type":"smc.runResult","exit_code":0,"stack":[["num","0x1"],["num","0x2"]]}}"#,
            "pool",
            "get_pool_data: expected at least 16 stack entries, got 2 (truncated stack?)",
        ),
        (
            r#"{"ok":true,"result":{"@type":"smc.runResult","exit_code":0,"stack":[["cell",{"bytes":"te6cckEBAQEAAgAAAEysuc0="}]]}}"#,
            "returned",
            "compute_returned_stake[0]: expected a number, got a cell",
        ),
        (
            r#"{"ok":true,"result":{"@type":"smc.runResult","exit_code":0,"stack":[["num","0x1"],["num","0x2"]]}}"#,
            "roles",
            "get_roles[0]: expected an address slice, got a number",
        ),
    ] {
        let server = fixed_server(200, "application/json", body).await;
        let client = client(&format!("http://{}/api/v2", server.addr));
        let error = match call {
            "complaints" => client.list_complaints(1).await.map(|_| ()).unwrap_err(),
            "pool" => client.pool_data(POOL_A).await.map(|_| ()).unwrap_err(),
            "returned" => client
                .compute_returned_stake(V1)
                .await
                .map(|_| ())
                .unwrap_err(),
            _ => client
                .single_nominator_roles(POOL_A)
                .await
                .map(|_| ())
                .unwrap_err(),
        };
        assert!(
            matches!(&error, SourceError::InvalidResponse { detail } if detail.contains(expected)),
            "{call}: {error:?}"
        );
    }
}

/// A liteserver that no longer holds old transactions answers "lt not in db" unless asked for
/// an archival node; the client asks again once with `archival=true`.
#[tokio::test]
async fn old_transactions_fall_back_to_an_archival_node_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let asked: Arc<AtomicU32> = Arc::default();
    let archival_asked: Arc<AtomicU32> = Arc::default();
    let (counter, archival_counter) = (asked.clone(), archival_asked.clone());
    let app = axum::Router::new().route(
        "/api/v2/getTransactions",
        axum::routing::get(
            move |axum::extract::Query(query): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let (counter, archival_counter) = (counter.clone(), archival_counter.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if query.get("archival").map(String::as_str) == Some("true") {
                        archival_counter.fetch_add(1, Ordering::SeqCst);
                        r#"{"ok":true,"result":[{"@type":"raw.transaction","utime":1600000000,"data":"","transaction_id":{"lt":"1000","hash":"AAAA"},"fee":"1","storage_fee":"0","other_fee":"1","in_msg":null,"out_msgs":[]}]}"#
                    } else {
                        r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: lt not in db","code":500}"#
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client(&format!("http://{addr}/api/v2"));
    let cursor = TransactionCursor {
        lt: 1000,
        hash: "AAAA".into(),
    };
    let old = client
        .get_transactions(VALIDATOR, 5, Some(&cursor), false)
        .await
        .unwrap()
        .value;
    assert_eq!(old[0].lt, 1000);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "the regular node, then the archival one"
    );
    assert_eq!(archival_asked.load(Ordering::SeqCst), 1);
    // Asked for archival from the start: no second try when even that fails.
    assert!(super::needs_archival(&SourceError::Upstream {
        code: Some(500),
        message: "LITE_SERVER_UNKNOWN: lt not in db".into(),
    }));
    assert!(!super::needs_archival(&SourceError::Upstream {
        code: Some(500),
        message: "LITE_SERVER_UNKNOWN: cannot apply external message".into(),
    }));
}

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

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tools::sim::{Fault, FaultKind, Scenario, SimHandle, SimService, SimWorld};
use tools::ton::{WalletKind, WalletSigner};

use super::*;
use crate::executors::{Executor, ExecutorRegistry, ExecutorsConfig};

const DESTINATION: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";
const NANOTON: u64 = 1_000_000_000;
const START_BALANCE_TON: u64 = 100;
const START_SEQNO: u32 = 5;
/// Must match the sim's fixed fee per transfer.
const SIM_FEE: u128 = 2_000_000;

fn mnemonic_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/tests/fixtures/test_wallet.mnemonic")
}

fn wallet() -> String {
    let words = std::fs::read_to_string(mnemonic_fixture()).unwrap();
    WalletSigner::from_mnemonic(&words, WalletKind::V4r2)
        .unwrap()
        .address()
        .friendly
}

async fn start_sim() -> SimHandle {
    let scenario: Scenario = toml::from_str(&format!(
        r#"
name = "ton-transfer"
speed = 1.0
[[validators]]
name = "operator-wallet"
address = "{}"
balance_ton = {START_BALANCE_TON}
seqno = {START_SEQNO}
wallet_type = "wallet v4 r2"
"#,
        wallet()
    ))
    .unwrap();
    SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn config(sim: &SimHandle, mnemonic_file: PathBuf) -> TonTransferExecutorConfig {
    TonTransferExecutorConfig {
        wallet_version: WalletKind::V4r2,
        mnemonic_file,
        base_url: sim.toncenter_url(),
        requests_per_second: 1000.0,
        confirm_timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(100),
        max_amount_nanoton: 10 * NANOTON,
        send: true,
    }
}

fn executor(sim: &SimHandle) -> TonTransferExecutor {
    let mut problems = Vec::new();
    let executor = TonTransferExecutor::new(&config(sim, mnemonic_fixture()), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    executor.unwrap()
}

fn request(key: &str, amount_nanoton: u64, dry_run: bool) -> ExecutionRequest {
    ExecutionRequest {
        proposal_id: key.to_owned(),
        idempotency_key: format!("cc-{key}"),
        kind: "ton_transfer".to_owned(),
        target: DESTINATION.to_owned(),
        parameters: serde_json::json!({
            "destination": DESTINATION,
            "amount_nanoton": amount_nanoton,
            "comment": "validator top-up",
        }),
        dry_run,
    }
}

#[tokio::test]
async fn dry_run_signs_but_sends_nothing() {
    let sim = start_sim().await;
    let outcome = executor(&sim).execute(&request("p1", NANOTON, true)).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(outcome.dry_run);
    assert_eq!(outcome.details["destination"], DESTINATION);
    assert_eq!(outcome.details["amount_nanoton"], NANOTON);
    // The sim charges a fixed 0.002 TON per transfer; estimateFee says the same.
    assert_eq!(outcome.details["estimated_fee"], 2_000_000);
    assert!(
        outcome.summary.contains("fee about 0.002000000 TON"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.details["seqno"], START_SEQNO);
    assert!(
        outcome.details["message_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 44)
    );
    assert!(
        outcome.summary.contains("would send 1.000000000 TON"),
        "{}",
        outcome.summary
    );
    assert!(sim.sent_transfers().is_empty());
    assert_eq!(sim.wallet_seqno(&wallet()), Some(START_SEQNO));
}

#[tokio::test]
async fn without_send_an_approved_transfer_is_only_a_dry_run() {
    let sim = start_sim().await;
    let mut problems = Vec::new();
    let cautious = TonTransferExecutor::new(
        &TonTransferExecutorConfig {
            send: false,
            ..config(&sim, mnemonic_fixture())
        },
        &mut problems,
    )
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let outcome = cautious.execute(&request("p-safe", NANOTON, false)).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(outcome.dry_run);
    assert!(
        outcome
            .summary
            .contains("set executors.ton_transfer.send = true"),
        "{}",
        outcome.summary
    );
    assert!(sim.sent_transfers().is_empty());
    // And the default is off.
    let parsed: TonTransferExecutorConfig = toml::from_str(
        "wallet_version = \"v4r2\"\nmnemonic_file = \"/x\"\nmax_amount_nanoton = 1\n",
    )
    .unwrap();
    assert!(!parsed.send);
}

#[tokio::test]
async fn a_transfer_is_sent_once_and_confirmed_on_chain() {
    let sim = start_sim().await;
    let amount = 3 * NANOTON / 2;
    let outcome = executor(&sim).execute(&request("p2", amount, false)).await;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(outcome.details["transaction"]["lt"].as_u64().is_some());
    assert!(outcome.details["transaction"]["hash"].as_str().is_some());
    assert_eq!(outcome.details["comment"], "validator top-up [cc-p2]");
    let sent = sim.sent_transfers();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].accepted);
    assert_eq!(sent[0].seqno, START_SEQNO);
    assert_eq!(sent[0].destination.as_deref(), Some(DESTINATION));
    assert_eq!(sent[0].amount_nanoton, Some(u128::from(amount)));
    assert_eq!(sim.wallet_seqno(&wallet()), Some(START_SEQNO + 1));
    assert_eq!(sim.balance_nanoton(DESTINATION), Some(u128::from(amount)));
    assert_eq!(
        sim.balance_nanoton(&wallet()),
        Some(u128::from(START_BALANCE_TON * NANOTON - amount) - SIM_FEE)
    );
}

#[tokio::test]
async fn a_rejected_message_fails_and_is_not_sent_again() {
    let sim = start_sim().await;
    // The chain's clock is an hour ahead: the wallet refuses the message as expired.
    sim.advance(Duration::from_secs(3600));
    let outcome = executor(&sim).execute(&request("p3", NANOTON, false)).await;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert!(
        outcome
            .summary
            .contains("External message was not accepted"),
        "{}",
        outcome.summary
    );
    let sent = sim.sent_transfers();
    assert_eq!(sent.len(), 1, "sendBoc must not be retried: {sent:?}");
    assert!(!sent[0].accepted);
    assert_eq!(sim.wallet_seqno(&wallet()), Some(START_SEQNO));
}

#[tokio::test]
async fn a_send_that_timed_out_after_landing_is_unknown_then_reconciled_to_succeeded() {
    let sim = start_sim().await;
    sim.inject_fault(Fault {
        service: SimService::Toncenter,
        from: None,
        until: None,
        count: Some(1),
        kind: FaultKind::AppliedThenTimeout { delay_ms: 10_000 },
    });
    let executor = executor(&sim);
    let request = request("p4", NANOTON, false);
    let outcome = executor.execute(&request).await;
    assert_eq!(outcome.status, OutcomeStatus::Unknown, "{outcome:?}");
    assert_eq!(sim.sent_transfers().len(), 1);
    let reconciled = executor.reconcile(&request).await;
    assert_eq!(
        reconciled.status,
        OutcomeStatus::Succeeded,
        "{reconciled:?}"
    );
    assert!(reconciled.details["transaction"]["lt"].as_u64().is_some());
    assert_eq!(sim.sent_transfers().len(), 1, "reconcile must not send");
    assert_eq!(sim.wallet_seqno(&wallet()), Some(START_SEQNO + 1));
}

#[tokio::test]
async fn a_transfer_never_sent_reconciles_to_failed() {
    let sim = start_sim().await;
    let executor = executor(&sim);
    // Another transfer is in the history; it must not be mistaken for this one.
    let other = executor.execute(&request("p5-other", NANOTON, false)).await;
    assert_eq!(other.status, OutcomeStatus::Succeeded, "{other:?}");
    let reconciled = executor.reconcile(&request("p5", NANOTON, false)).await;
    assert_eq!(reconciled.status, OutcomeStatus::Failed, "{reconciled:?}");
    assert!(
        reconciled.summary.contains("not sent"),
        "{}",
        reconciled.summary
    );
    assert_eq!(sim.sent_transfers().len(), 1);
}

#[tokio::test]
async fn parameters_are_checked_before_anything_is_sent() {
    let sim = start_sim().await;
    let executor = executor(&sim);
    let check = |parameters: serde_json::Value| Executor::validate(&executor, &parameters);
    assert!(check(serde_json::json!({"destination": DESTINATION, "amount_nanoton": 1})).is_ok());
    let friendly = tools::ton::parse_address(DESTINATION).unwrap().friendly;
    assert!(check(serde_json::json!({"destination": friendly, "amount_nanoton": 1})).is_ok());
    for (parameters, expected) in [
        (
            serde_json::json!({"destination": "0:xyz", "amount_nanoton": 1}),
            "destination: invalid TON address",
        ),
        (
            serde_json::json!({"destination": DESTINATION, "amount_nanoton": 0}),
            "amount_nanoton: must be more than 0",
        ),
        (
            serde_json::json!({"destination": DESTINATION, "amount_nanoton": -1}),
            "amount_nanoton: invalid value",
        ),
        (
            serde_json::json!({"destination": DESTINATION, "amount_nanoton": 1, "comment": "x".repeat(121)}),
            "comment: 121 characters",
        ),
        (
            serde_json::json!({"destination": DESTINATION, "amount_nanoton": 1, "memo": "x"}),
            "unknown field `memo`",
        ),
    ] {
        let error = check(parameters).unwrap_err();
        assert!(
            matches!(error, ExecutorError::InvalidParameters { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
    let over =
        check(serde_json::json!({"destination": DESTINATION, "amount_nanoton": 10 * NANOTON + 1}))
            .unwrap_err();
    assert!(matches!(over, ExecutorError::NotAllowed { .. }), "{over}");
    assert!(over.to_string().contains("max_amount_nanoton"), "{over}");
    // A request that bypassed the gate is refused without touching the network.
    let outcome = executor
        .execute(&ExecutionRequest {
            parameters: serde_json::json!({"destination": DESTINATION, "amount_nanoton": 0}),
            ..request("p6", 1, false)
        })
        .await;
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(sim.sent_transfers().is_empty());
    assert_eq!(sim.request_count("toncenter"), 0);
}

#[tokio::test]
async fn the_registry_has_the_kind_only_when_configured_and_reports_mnemonic_problems() {
    let sim = start_sim().await;
    let (sink, _alerts) = mpsc::unbounded_channel();
    let registry = ExecutorRegistry::new(&ExecutorsConfig::default(), sink.clone()).unwrap();
    assert!(matches!(
        registry.get("ton_transfer"),
        Err(ExecutorError::UnknownKind { .. })
    ));

    let configured = ExecutorsConfig {
        ton_transfer: Some(config(&sim, mnemonic_fixture())),
        ..ExecutorsConfig::default()
    };
    let registry = ExecutorRegistry::new(&configured, sink.clone()).unwrap();
    assert!(registry.kinds().contains(&"ton_transfer"));
    let schema = registry.get("ton_transfer").unwrap().parameters_schema();
    assert!(
        schema["properties"]["amount_nanoton"].is_object(),
        "{schema}"
    );

    let dir = tempfile::tempdir().unwrap();
    let garbled = dir.path().join("garbled");
    let words = std::fs::read_to_string(mnemonic_fixture()).unwrap();
    let mut swapped: Vec<&str> = words.split_whitespace().collect();
    swapped.swap(2, 3);
    std::fs::write(&garbled, swapped.join(" ")).unwrap();
    for (file, expected) in [
        (dir.path().join("missing"), "cannot read"),
        (garbled, "checksum"),
    ] {
        let broken = ExecutorsConfig {
            ton_transfer: Some(TonTransferExecutorConfig {
                max_amount_nanoton: 0,
                ..config(&sim, file)
            }),
            ..ExecutorsConfig::default()
        };
        let Err(problems) = ExecutorRegistry::new(&broken, sink.clone()) else {
            panic!("a broken ton_transfer config built");
        };
        let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "executors.ton_transfer.mnemonic_file",
                "executors.ton_transfer.max_amount_nanoton"
            ],
            "{problems:?}"
        );
        assert!(problems[0].1.contains(expected), "{problems:?}");
        for word in words.split_whitespace() {
            assert!(
                !problems[0].1.contains(&format!(" {word} ")),
                "{problems:?}"
            );
        }
    }
}

#[test]
fn the_config_section_parses_with_defaults() {
    let config: TonTransferExecutorConfig = toml::from_str(
        r#"
wallet_version = "v5r1"
mnemonic_file = "/etc/command-center/wallet.mnemonic"
max_amount_nanoton = 5000000000
"#,
    )
    .unwrap();
    assert_eq!(config.wallet_version, WalletKind::V5r1);
    assert_eq!(config.base_url, "https://toncenter.com/api/v2");
    assert_eq!(config.confirm_timeout, Duration::from_secs(60));
    assert_eq!(config.poll_interval, Duration::from_secs(2));
    assert!(
        toml::from_str::<TonTransferExecutorConfig>(
            "wallet_version = \"v3r2\"\nmnemonic_file = \"x\"\nmax_amount_nanoton = 1"
        )
        .is_err()
    );
}

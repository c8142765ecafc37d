use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::{BigInt, BigUint};
use serde_json::json;
use tonlib_core::cell::{BagOfCells, CellBuilder};

use super::*;
use crate::ton::config::{
    ElectionTiming, ValidatorSet, empty_cell_boc, encode_election_timing, encode_validator_set,
};
use crate::ton::pool::address_slice_boc;
use crate::ton::stack::TvmValue;
use crate::toncenter::stack::encode_legacy_stack;

fn hint(param: Option<u32>, method: Option<&str>) -> SavedHint {
    SavedHint {
        param,
        method: method.map(str::to_owned),
    }
}

fn n(value: i64) -> TvmValue {
    TvmValue::number(value)
}

/// A 256-bit number whose 32 bytes are all `seed`.
fn key_number(seed: u8) -> TvmValue {
    TvmValue::Number(BigInt::from(BigUint::from_bytes_be(&[seed; 32])))
}

fn hex(seed: u8) -> String {
    crate::ton::config::to_hex(&[seed; 32])
}

fn null() -> TvmValue {
    TvmValue::List(Vec::new())
}

/// A toncenter v2 `runGetMethod` answer carrying `stack` in the legacy encoding.
fn run_result(stack: &[TvmValue]) -> String {
    json!({"ok": true, "result": {
        "@type": "smc.runResult", "gas_used": 3391, "stack": encode_legacy_stack(stack),
        "exit_code": 0, "@extra": "1732000000.1:0:0.5"
    }})
    .to_string()
}

/// A toncenter v2 `getConfigParam` answer carrying `bytes` as the param's BOC.
fn config_info(bytes: &str) -> String {
    json!({"ok": true, "result": {
        "@type": "configInfo", "config": {"@type": "tvm.cell", "bytes": bytes},
        "@extra": "1732000000.2:0:0.5"
    }})
    .to_string()
}

/// Decodes and compares the whole output, so a change of shape shows in the diff.
#[track_caller]
fn check(saved: &str, hint: &SavedHint, expected: Value) {
    let decoded = decode_saved(saved, hint).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(decoded, expected);
}

#[track_caller]
fn check_error(saved: &str, hint: &SavedHint, expected: &str) {
    let error = decode_saved(saved, hint).unwrap_err();
    assert_eq!(error, expected);
}

#[test]
fn a_saved_config_param_decodes_to_typed_json() {
    let bytes = encode_election_timing(&ElectionTiming {
        validators_elected_for: 65536,
        elections_start_before: 32768,
        elections_end_before: 8192,
        stake_held_for: 32768,
    })
    .unwrap();
    let saved = config_info(&bytes);
    check(
        &saved,
        &hint(Some(15), None),
        json!({"kind": "config_param", "param": 15, "value": {
            "kind": "election_timing", "validators_elected_for": 65536,
            "elections_start_before": 32768, "elections_end_before": 8192, "stake_held_for": 32768
        }}),
    );

    let missing = decode_saved(&saved, &hint(None, None)).unwrap_err();
    assert!(missing.contains("--param"), "{missing}");
    let wrong = decode_saved(&saved, &hint(Some(34), None)).unwrap_err();
    assert!(wrong.starts_with("config param 34: "), "{wrong}");
    assert!(
        wrong.ends_with("check that --param 34 is the config_id the answer was fetched with"),
        "{wrong}"
    );
}

#[test]
fn an_absent_config_param_decodes_to_absent_not_an_error() {
    // toncenter sends an empty cell for an unset param; an empty string is read the same.
    let expected =
        json!({"kind": "config_param", "param": 36, "value": {"kind": "absent", "param": 36}});
    check(
        &config_info(&empty_cell_boc().unwrap()),
        &hint(Some(36), None),
        expected.clone(),
    );
    check(&config_info(""), &hint(Some(36), None), expected);
}

#[test]
fn an_empty_validator_set_decodes_to_an_empty_list() {
    let bytes = encode_validator_set(&ValidatorSet {
        utime_since: 1_778_685_466,
        utime_until: 1_778_751_002,
        total: 0,
        main: 0,
        total_weight: 0,
        validators: Vec::new(),
    })
    .unwrap();
    check(
        &config_info(&bytes),
        &hint(Some(34), None),
        json!({"kind": "config_param", "param": 34, "value": {
            "kind": "validator_set", "param": 34, "set": {
                "utime_since": 1_778_685_466, "utime_until": 1_778_751_002, "total": 0,
                "main": 0, "total_weight": 0, "validators": []
            }
        }}),
    );
}

#[test]
fn a_cell_that_does_not_decode_names_the_param_and_field() {
    // Param 15 cut after three of its four fields.
    let mut builder = CellBuilder::new();
    builder
        .store_u32(32, 65536)
        .and_then(|b| b.store_u32(32, 32768))
        .and_then(|b| b.store_u32(32, 8192))
        .unwrap();
    let cell = builder.build().unwrap();
    let bytes = BASE64.encode(BagOfCells::from_root(cell).serialize(true).unwrap());
    let error = decode_saved(&config_info(&bytes), &hint(Some(15), None)).unwrap_err();
    assert!(
        error.starts_with(
            "config param 15: cannot read `stake_held_for` (0 bits left in the cell; truncated?)"
        ),
        "{error}"
    );

    let not_base64 = decode_saved(&config_info("%%%"), &hint(Some(17), None)).unwrap_err();
    assert!(
        not_base64.starts_with("config param 17: the BOC is not base64"),
        "{not_base64}"
    );
    let no_bytes = json!({"ok": true, "result": {"@type": "configInfo", "config": {}}});
    check_error(
        &no_bytes.to_string(),
        &hint(Some(17), None),
        "result.config.bytes is missing or not a string",
    );
}

fn complaint(seed: u8, voters: Vec<TvmValue>, weight_remaining: i64) -> TvmValue {
    // elector-code.fc: pair(chash, [complaint, voters, vset_id, weight_remaining]).
    TvmValue::Tuple(vec![
        key_number(seed + 10),
        TvmValue::Tuple(vec![
            TvmValue::Tuple(vec![
                key_number(seed),
                TvmValue::Cell("te6cckEBAQEAAgAAAEysuc0=".to_owned()),
                n(1_778_700_000),
                n(1),
                key_number(seed + 1),
                n(10_100_000_000),
                n(101_000_000_000),
                n(0),
            ]),
            TvmValue::List(voters),
            key_number(seed + 20),
            n(weight_remaining),
        ]),
    ])
}

fn pool_data_stack() -> Vec<TvmValue> {
    vec![
        n(2),
        n(3),
        n(1_200_000_000_000_000),
        n(50_000_000_000_000),
        key_number(0xaa),
        n(4000),
        n(40),
        n(10_000_000_000_000),
        n(10_000_000_000_000),
        null(),
        null(),
        n(1_778_685_466),
        key_number(7),
        n(0),
        n(0),
        n(32_768),
        null(),
    ]
}

#[test]
fn every_known_get_method_decodes_a_saved_stack() {
    let get_method = |method: &str, value: Value| json!({"kind": "get_method", "method": method, "value": value});
    check(
        &run_result(&[n(1_778_685_466)]),
        &hint(None, Some("active_election_id")),
        get_method("active_election_id", json!(1_778_685_466u64)),
    );
    check(
        &run_result(&[TvmValue::List(vec![
            complaint(1, vec![n(0), n(3)], -12),
            complaint(4, Vec::new(), 5_000),
        ])]),
        &hint(None, Some("list_complaints")),
        get_method(
            "list_complaints",
            json!([
                {"hash": hex(11), "validator_pubkey": hex(1), "created_at": 1_778_700_000,
                 "severity": 1, "reward_address": format!("-1:{}", hex(2)),
                 "paid": 10_100_000_000u64, "suggested_fine": 101_000_000_000u64,
                 "suggested_fine_part": 0, "voters": [0, 3], "vset_id": hex(21),
                 "weight_remaining": -12, "passed": true},
                {"hash": hex(14), "validator_pubkey": hex(4), "created_at": 1_778_700_000,
                 "severity": 1, "reward_address": format!("-1:{}", hex(5)),
                 "paid": 10_100_000_000u64, "suggested_fine": 101_000_000_000u64,
                 "suggested_fine_part": 0, "voters": [], "vset_id": hex(24),
                 "weight_remaining": 5_000, "passed": false}
            ]),
        ),
    );
    // No complaints: the elector returns null.
    check(
        &run_result(&[null()]),
        &hint(None, Some("list_complaints")),
        get_method("list_complaints", json!([])),
    );
    check(
        &run_result(&[n(400_123_500_000_000)]),
        &hint(None, Some("compute_returned_stake")),
        get_method("compute_returned_stake", json!(400_123_500_000_000u64)),
    );
    check(
        &run_result(&pool_data_stack()),
        &hint(None, Some("get_pool_data")),
        get_method(
            "get_pool_data",
            json!({
                "state": 2, "nominators_count": 3, "stake_amount_sent": 1_200_000_000_000_000u64,
                "validator_amount": 50_000_000_000_000u64,
                "validator_address": format!("-1:{}", hex(0xaa)),
                "validator_reward_share": 4000, "max_nominators_count": 40,
                "min_validator_stake": 10_000_000_000_000u64,
                "min_nominator_stake": 10_000_000_000_000u64, "stake_at": 1_778_685_466,
                "stake_held_for": 32_768
            }),
        ),
    );
    check(
        &run_result(&[TvmValue::List(vec![
            TvmValue::Tuple(vec![key_number(0x31), n(20_000_000_000_000), n(0), n(0)]),
            TvmValue::Tuple(vec![
                key_number(0x32),
                n(5_000_000_000_000),
                n(1_000),
                n(-1),
            ]),
        ])]),
        &hint(None, Some("list_nominators")),
        get_method(
            "list_nominators",
            json!([
                {"address": format!("0:{}", hex(0x31)), "amount": 20_000_000_000_000u64,
                 "pending_deposit": 0, "withdraw_requested": false},
                {"address": format!("0:{}", hex(0x32)), "amount": 5_000_000_000_000u64,
                 "pending_deposit": 1_000, "withdraw_requested": true}
            ]),
        ),
    );
    let owner = format!("0:{}", hex(0x11));
    let validator = format!("-1:{}", hex(0x22));
    check(
        &run_result(&[
            TvmValue::Slice(address_slice_boc(&owner).unwrap()),
            TvmValue::Slice(address_slice_boc(&validator).unwrap()),
        ]),
        &hint(None, Some("get_roles")),
        get_method("get_roles", json!({"owner": owner, "validator": validator})),
    );
}

#[test]
fn an_unknown_method_prints_the_stack_and_a_missing_one_lists_the_known() {
    let saved = run_result(&[n(7), null()]);
    check(
        &saved,
        &hint(None, Some("seqno")),
        json!({"kind": "get_method", "method": "seqno", "value": [
            {"type": "number", "value": "7"}, {"type": "list", "value": []}
        ]}),
    );
    check_error(
        &saved,
        &hint(None, None),
        "a runGetMethod answer does not say which get-method it is: pass --method NAME, one of \
         active_election_id, participant_list, participant_list_extended, past_elections, \
         list_complaints, compute_returned_stake, get_pool_data, list_nominators, get_roles \
         (another name prints the stack as read)",
    );
    // A failed run says so before anything asks for the method.
    let failed =
        json!({"ok": true, "result": {"@type": "smc.runResult", "stack": [], "exit_code": 11}});
    check_error(
        &failed.to_string(),
        &hint(None, None),
        "the get-method failed on chain: exit_code 11",
    );
}

#[test]
fn a_truncated_stack_names_the_method_and_entry() {
    check_error(
        &run_result(&pool_data_stack()[..11]),
        &hint(None, Some("get_pool_data")),
        "get_pool_data: expected at least 16 stack entries, got 11 (truncated stack?)",
    );
    // A complaint whose own tuple was cut to five of its eight elements.
    let mut short = complaint(1, Vec::new(), 0);
    if let TvmValue::Tuple(pair) = &mut short
        && let TvmValue::Tuple(status) = &mut pair[1]
        && let TvmValue::Tuple(fields) = &mut status[0]
    {
        fields.truncate(5);
    }
    check_error(
        &run_result(&[TvmValue::List(vec![short])]),
        &hint(None, Some("list_complaints")),
        "list_complaints[0][0][1][0]: expected at least 8 elements, got 5 (truncated stack?)",
    );
    check_error(
        &run_result(&[]),
        &hint(None, Some("compute_returned_stake")),
        "compute_returned_stake: expected at least 1 stack entries, got 0 (truncated stack?)",
    );
    check_error(
        &run_result(&[n(1)]),
        &hint(None, Some("get_roles")),
        "get_roles: expected at least 2 stack entries, got 1 (truncated stack?)",
    );
    check_error(
        &run_result(&[TvmValue::List(vec![TvmValue::Tuple(vec![
            key_number(1),
            n(2),
        ])])]),
        &hint(None, Some("list_nominators")),
        "list_nominators[0][0]: expected at least 4 elements, got 2 (truncated stack?)",
    );
    check_error(
        &run_result(&[TvmValue::Cell("te6cckEBAQEAAgAAAEysuc0=".to_owned())]),
        &hint(None, Some("participant_list_extended")),
        "participant_list_extended: expected at least 7 stack entries, got 1 (truncated stack?)",
    );
    // An entry cut in the saved JSON itself.
    let cut = json!({"ok": true, "result": {"@type": "smc.runResult", "exit_code": 0,
        "stack": [["num", "0x10"], ["num"]]}});
    check_error(
        &cut.to_string(),
        &hint(None, Some("get_pool_data")),
        "get_pool_data[1]: expected a [type, value] pair, got an array",
    );
}

#[test]
fn wallet_information_errors_and_unknown_shapes() {
    let wallet = json!({"ok": true, "result": {"wallet": true, "balance": "830500000000", "account_state": "active", "wallet_type": "wallet v4 r2", "seqno": 7}});
    let decoded = decode_saved(&wallet.to_string(), &SavedHint::default()).unwrap();
    assert_eq!(decoded["kind"], "wallet_information");
    assert_eq!(decoded["value"]["balance_nanoton"], 830_500_000_000u64);
    assert_eq!(decoded["value"]["seqno"], 7);

    let error = json!({"ok": false, "result": "Ratelimit exceed", "code": 429});
    check_error(
        &error.to_string(),
        &SavedHint::default(),
        "the saved answer is an error (ok:false): Ratelimit exceed",
    );
    let unknown = json!({"ok": true, "result": {"@type": "raw.fullAccountState"}});
    assert!(
        decode_saved(&unknown.to_string(), &SavedHint::default())
            .unwrap_err()
            .starts_with(
                "not a response this command knows (result @type \"raw.fullAccountState\")"
            )
    );
    let keys = decode_saved(r#"{"rates": {}}"#, &SavedHint::default()).unwrap_err();
    assert!(
        keys.starts_with("not a response this command knows (top-level keys: rates)"),
        "{keys}"
    );
    assert!(
        decode_saved("{not json", &SavedHint::default())
            .unwrap_err()
            .starts_with("line 1 column 2: not JSON: ")
    );
}

#[test]
fn html_instead_of_json_says_it_is_a_page() {
    let page =
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudflare</body></html>";
    let error = decode_saved(page, &hint(Some(34), None)).unwrap_err();
    assert!(
        error.starts_with("line 1 column 1: not JSON: the file is an HTML page"),
        "{error}"
    );
    assert!(error.contains("502 Bad Gateway"), "{error}");
}

/// A `/v2/blockchain/validators` answer in tonapi's shape (opentonapi `Validators`), with
/// numbers both as JSON numbers and as strings, and a user-friendly address to normalize.
fn tonapi_validators() -> Value {
    json!({
        "elect_at": 1_778_685_466,
        "elect_close": 1_778_685_166,
        "min_stake": 10_000_000_000_000u64,
        "total_stake": "5000006000000000",
        "validators": [
            {"address": "-1:7B1F0D5C3A0E2F6E8D4C1B0A99887766554433221100FFEEDDCCBBAA99887766",
             "adnl_address": "E527A2A40D255B0BA2EC9F54DD3D5A472CDE4FD46A0DD93D5E04C02B45E66F78",
             "stake": 3_000_000_000_000_000u64, "max_factor": 196_608},
            {"address": "-1:1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
             "adnl_address": "15ac93a1d1a54b2f1e723b71a6fb6d360e3732f034f133b5af45a17e7282fa85",
             "stake": "2000006000000000", "max_factor": "1966080"}
        ]
    })
}

#[test]
fn tonapi_validators_and_accounts_decode_like_the_client() {
    check(
        &tonapi_validators().to_string(),
        &SavedHint::default(),
        json!({"kind": "tonapi_validators", "value": {
            "elect_at": 1_778_685_466u64, "elect_close": 1_778_685_166u64,
            "min_stake": 10_000_000_000_000u64, "total_stake": 5_000_006_000_000_000u64,
            "validators": [
                {"address": "-1:7b1f0d5c3a0e2f6e8d4c1b0a99887766554433221100ffeeddccbbaa99887766",
                 "adnl_address": "e527a2a40d255b0ba2ec9f54dd3d5a472cde4fd46a0dd93d5e04c02b45e66f78",
                 "stake": 3_000_000_000_000_000u64, "max_factor": 196_608},
                {"address": "-1:1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
                 "adnl_address": "15ac93a1d1a54b2f1e723b71a6fb6d360e3732f034f133b5af45a17e7282fa85",
                 "stake": 2_000_006_000_000_000u64, "max_factor": 1_966_080}
            ]
        }}),
    );
    // A set between rounds: no validators is a list, not an error.
    let mut empty = tonapi_validators();
    empty["validators"] = json!([]);
    let decoded = decode_saved(&empty.to_string(), &SavedHint::default()).unwrap();
    assert_eq!(decoded["value"]["validators"], json!([]));

    let account = json!({
        "address": "0:aa6e7f5e2c6f7b0b53c1f4e7c4d3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a1",
        "balance": 375_813_296_426u64, "last_activity": 1_734_515_552, "status": "active",
        "interfaces": ["wallet_v4r2"], "is_scam": false, "get_methods": ["seqno"],
        "is_wallet": true
    });
    check(
        &account.to_string(),
        &SavedHint::default(),
        json!({"kind": "tonapi_account", "value": {
            "address": "0:aa6e7f5e2c6f7b0b53c1f4e7c4d3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a1",
            "balance": 375_813_296_426u64, "status": "active", "last_activity": 1_734_515_552
        }}),
    );
    // tonapi's 0 for "never" reads as absent, as the client does.
    let never =
        json!({"address": "0:00", "balance": "0", "status": "nonexist", "last_activity": 0});
    check(
        &never.to_string(),
        &SavedHint::default(),
        json!({"kind": "tonapi_account", "value": {
            "address": "0:00", "balance": 0, "status": "nonexist", "last_activity": null
        }}),
    );
}

#[test]
fn tonapi_error_bodies_and_bad_fields_are_clear_errors() {
    check_error(
        r#"{"error": "rate limit: 1 request per 4 seconds"}"#,
        &SavedHint::default(),
        "the saved answer is a tonapi error body, not data: rate limit: 1 request per 4 seconds; \
         fetch it again (with an api key if it was rate limited)",
    );
    check_error(
        r#"{"error": "account not found", "error_code": 404}"#,
        &SavedHint::default(),
        "the saved answer is a tonapi error body, not data: account not found (error_code 404); \
         fetch it again (with an api key if it was rate limited)",
    );
    let mut bad_stake = tonapi_validators();
    bad_stake["validators"][1]["stake"] = json!("lots");
    let error = decode_saved(&bad_stake.to_string(), &SavedHint::default()).unwrap_err();
    assert!(
        error.starts_with(
            "invalid response: tonapi /v2/blockchain/validators: not the expected JSON (at `validators[1].stake`: "
        ),
        "{error}"
    );
    let no_balance = json!({"address": "0:00", "balance": null, "status": "active"});
    let error = decode_saved(&no_balance.to_string(), &SavedHint::default()).unwrap_err();
    assert!(
        error.starts_with(
            "invalid response: tonapi /v2/accounts/{id}: not the expected JSON (at `balance`: "
        ),
        "{error}"
    );
}

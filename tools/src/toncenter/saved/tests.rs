use serde_json::json;

use super::*;
use crate::ton::config::{ElectionTiming, encode_election_timing};
use crate::ton::stack::TvmValue;
use crate::toncenter::stack::encode_legacy_stack;

fn hint(param: Option<u32>, method: Option<&str>) -> SavedHint {
    SavedHint {
        param,
        method: method.map(str::to_owned),
    }
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
    let saved = json!({"ok": true, "result": {"@type": "configInfo", "config": {"@type": "tvm.cell", "bytes": bytes}}});
    let decoded = decode_saved(&saved.to_string(), &hint(Some(15), None)).unwrap();
    assert_eq!(decoded["kind"], "config_param");
    assert_eq!(decoded["value"]["validators_elected_for"], 65536);
    assert_eq!(decoded["value"]["stake_held_for"], 32768);

    let missing = decode_saved(&saved.to_string(), &hint(None, None)).unwrap_err();
    assert!(missing.contains("--param"), "{missing}");
    let wrong = decode_saved(&saved.to_string(), &hint(Some(34), None)).unwrap_err();
    assert!(wrong.contains("config param 34"), "{wrong}");
}

#[test]
fn a_saved_get_method_stack_decodes_per_method() {
    let stack = encode_legacy_stack(&[TvmValue::number(1778685466u64)]);
    let saved = json!({"ok": true, "result": {"@type": "smc.runResult", "gas_used": 0, "stack": stack, "exit_code": 0}});
    let decoded =
        decode_saved(&saved.to_string(), &hint(None, Some("active_election_id"))).unwrap();
    assert_eq!(decoded["value"], 1778685466u64);
    // A stack of the wrong shape names the path.
    let error = decode_saved(
        &saved.to_string(),
        &hint(None, Some("participant_list_extended")),
    )
    .unwrap_err();
    assert!(error.contains("participant_list_extended"), "{error}");
    let failed =
        json!({"ok": true, "result": {"@type": "smc.runResult", "stack": [], "exit_code": 11}});
    assert!(
        decode_saved(&failed.to_string(), &hint(None, None))
            .unwrap_err()
            .contains("exit_code 11")
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
    assert!(
        decode_saved(&error.to_string(), &SavedHint::default())
            .unwrap_err()
            .contains("Ratelimit exceed")
    );
    let unknown = json!({"ok": true, "result": {"@type": "raw.fullAccountState"}});
    assert!(
        decode_saved(&unknown.to_string(), &SavedHint::default())
            .unwrap_err()
            .contains("raw.fullAccountState")
    );
    assert!(
        decode_saved("{not json", &SavedHint::default())
            .unwrap_err()
            .starts_with("line 1 column 2")
    );
}

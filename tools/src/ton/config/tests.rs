use super::*;

/// Real mainnet cell bytes of config params 15 and 17 (tonkeeper/opentonapi
/// `pkg/api/testdata/config-params-1.boc`, Oct 2023), serialized as toncenter sends them in
/// `result.config.bytes`; the decoded values are tonapi's JSON of the same snapshot.
const MAINNET_PARAM_15: &str = "te6cckEBAQEAEgAAIAABAAAAAIAAAAAgAAAAgAAP3PIs";
const MAINNET_PARAM_17: &str = "te6cckEBAQEAHgAAN3ARDZMW7AAHI4byb8EAAIAQp0GkYngAAAAwAAhFxfKI";

fn key(seed: usize) -> String {
    let mut bytes = [seed as u8; 32];
    bytes[0] = (seed >> 8) as u8;
    to_hex(&bytes)
}

fn sample_set(count: usize) -> ValidatorSet {
    let validators: Vec<ValidatorDescr> = (0..count)
        .map(|index| ValidatorDescr {
            public_key: key(index),
            weight: 1_000 + index as u64,
            adnl_address: (index % 2 == 0).then(|| key(1000 + index)),
        })
        .collect();
    ValidatorSet {
        utime_since: 1_698_385_672,
        utime_until: 1_698_451_208,
        total: count as u16,
        main: count.min(100) as u16,
        total_weight: validators.iter().map(|v| v.weight).sum(),
        validators,
    }
}

#[test]
fn real_mainnet_param_15_decodes_to_the_documented_timing() {
    let decoded = decode_config_param(15, MAINNET_PARAM_15).unwrap();
    assert_eq!(
        decoded,
        ConfigParam::ElectionTiming(ElectionTiming {
            validators_elected_for: 65536,
            elections_start_before: 32768,
            elections_end_before: 8192,
            stake_held_for: 32768,
        })
    );
}

#[test]
fn real_mainnet_param_17_decodes_to_the_documented_stake_limits() {
    let decoded = decode_config_param(17, MAINNET_PARAM_17).unwrap();
    assert_eq!(
        decoded,
        ConfigParam::StakeLimits(StakeLimits {
            min_stake: 300_000_000_000_000,
            max_stake: 10_000_000_000_000_000,
            min_total_stake: 75_000_000_000_000_000,
            max_stake_factor: 196_608,
        })
    );
}

#[test]
fn the_encoders_write_what_the_decoder_reads_and_match_mainnet_bytes() {
    let ConfigParam::ElectionTiming(timing) = decode_config_param(15, MAINNET_PARAM_15).unwrap()
    else {
        unreachable!("param 15 decodes to timing")
    };
    let ConfigParam::StakeLimits(limits) = decode_config_param(17, MAINNET_PARAM_17).unwrap()
    else {
        unreachable!("param 17 decodes to limits")
    };
    // Same cells, same serialization: byte-identical to the real ones.
    assert_eq!(encode_election_timing(&timing).unwrap(), MAINNET_PARAM_15);
    assert_eq!(encode_stake_limits(&limits).unwrap(), MAINNET_PARAM_17);
}

#[test]
fn validator_sets_round_trip_with_and_without_adnl_addresses() {
    for count in [1, 7, 400] {
        let set = sample_set(count);
        let boc = encode_validator_set(&set).unwrap();
        for param in [32, 34, 36] {
            let decoded = decode_config_param(param, &boc).unwrap();
            assert_eq!(
                decoded,
                ConfigParam::ValidatorSet {
                    param,
                    set: set.clone()
                }
            );
        }
    }
    let decoded = decode_validator_set(
        "t",
        &BagOfCells::parse_base64(&encode_validator_set(&sample_set(3)).unwrap())
            .unwrap()
            .single_root()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded.validators[0].adnl_address, Some(key(1000)));
    assert_eq!(decoded.validators[1].adnl_address, None);
}

#[test]
fn an_absent_param_is_a_value_not_an_error() {
    assert_eq!(
        decode_config_param(36, "").unwrap(),
        ConfigParam::Absent { param: 36 }
    );
    let empty = empty_cell_boc().unwrap();
    assert_eq!(
        decode_config_param(36, &empty).unwrap(),
        ConfigParam::Absent { param: 36 }
    );
}

#[test]
fn unknown_params_are_kept_raw() {
    assert_eq!(
        decode_config_param(1, MAINNET_PARAM_15).unwrap(),
        ConfigParam::Raw {
            param: 1,
            boc_base64: MAINNET_PARAM_15.to_owned()
        }
    );
}

#[test]
fn bad_cells_name_the_param_and_what_failed() {
    // Param 15 read as a validator set: the first byte (0x00) is no validator-set tag.
    let wrong_tag = decode_config_param(34, MAINNET_PARAM_15).unwrap_err();
    assert_eq!(wrong_tag.context, "config param 34");
    assert!(
        wrong_tag
            .detail
            .contains("wrong tag 0x00: expected a validator set"),
        "{wrong_tag}"
    );
    // A 64-bit cell read as param 15: the third field is missing.
    let mut builder = CellBuilder::new();
    builder.store_u64(64, 7).unwrap();
    let short = boc_base64(builder.build().unwrap()).unwrap();
    let truncated = decode_config_param(15, &short).unwrap_err();
    assert!(
        truncated
            .to_string()
            .starts_with("config param 15: cannot read `elections_end_before` (0 bits left"),
        "{truncated}"
    );
    let not_base64 = decode_config_param(17, "%%%").unwrap_err();
    assert!(
        not_base64
            .to_string()
            .contains("config param 17: the BOC is not base64")
    );
    let not_boc = decode_config_param(17, "AAAA").unwrap_err();
    assert!(
        not_boc.to_string().contains("not a bag of cells"),
        "{not_boc}"
    );
}

#[test]
fn a_validator_list_that_disagrees_with_total_is_an_error() {
    let mut set = sample_set(3);
    let boc = encode_validator_set(&set).unwrap();
    set.main = 5; // main > total
    let bad_main = encode_validator_set(&set).unwrap();
    assert!(decode_config_param(34, &boc).is_ok());
    let error = decode_config_param(34, &bad_main).unwrap_err();
    assert!(
        error
            .detail
            .contains("`main` (5) is larger than `total` (3)"),
        "{error}"
    );
}

#[test]
fn a_wrong_validator_descr_tag_names_the_entry() {
    let mut entries = HashMap::new();
    let mut descr = CellBuilder::new();
    descr.store_u8(8, 0x99).unwrap().store_u64(64, 1).unwrap();
    entries.insert(0u16, descr.build().unwrap());
    let mut builder = CellBuilder::new();
    builder
        .store_u8(8, TAG_VALIDATORS_EXT)
        .unwrap()
        .store_u32(32, 1)
        .unwrap()
        .store_u32(32, 2)
        .unwrap()
        .store_u16(16, 1)
        .unwrap()
        .store_u16(16, 1)
        .unwrap()
        .store_u64(64, 1)
        .unwrap()
        .store_dict(16, store_inline, entries)
        .unwrap();
    let boc = boc_base64(builder.build().unwrap()).unwrap();
    let error = decode_config_param(34, &boc).unwrap_err();
    assert_eq!(error.context, "config param 34 list[0]");
    assert!(error.detail.contains("wrong tag 0x99"), "{error}");
}

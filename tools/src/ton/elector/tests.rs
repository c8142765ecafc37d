use super::*;

fn n(value: i64) -> TvmValue {
    TvmValue::number(value)
}

fn key(seed: u8) -> String {
    to_hex(&[seed; 32])
}

fn key_number(seed: u8) -> TvmValue {
    TvmValue::Number(num_bigint::BigInt::from(BigUint::from_bytes_be(
        &[seed; 32],
    )))
}

fn participant(seed: u8, stake: i64) -> TvmValue {
    TvmValue::Tuple(vec![
        key_number(seed),
        TvmValue::Tuple(vec![
            n(stake),
            n(196_608),
            key_number(seed + 1),
            key_number(seed + 2),
        ]),
    ])
}

fn election_stack(participants: Vec<TvmValue>) -> TvmStack {
    vec![
        n(1_778_685_466),
        n(1_778_685_166),
        n(10_000_000_000_000),
        n(51_230_000_000_000_000),
        TvmValue::List(participants),
        n(0),
        n(-1),
    ]
}

#[test]
fn participant_list_extended_decodes_every_field() {
    let election =
        participant_list_extended(&election_stack(vec![participant(1, 2_999_999_000_000_000)]))
            .unwrap();
    assert_eq!(
        election,
        Election {
            elect_at: 1_778_685_466,
            elect_close: 1_778_685_166,
            min_stake: 10_000_000_000_000,
            total_stake: 51_230_000_000_000_000,
            participants: vec![Participant {
                public_key: key(1),
                stake: 2_999_999_000_000_000,
                max_factor: 196_608,
                wallet_address: format!("-1:{}", key(2)),
                adnl: key(3),
            }],
            failed: false,
            finished: true,
        }
    );
}

#[test]
fn wrong_types_and_truncation_name_the_element_path() {
    let mut bad = participant(1, 5);
    if let TvmValue::Tuple(items) = &mut bad
        && let TvmValue::Tuple(details) = &mut items[1]
    {
        details[1] = TvmValue::Cell("x".to_owned());
    }
    let error =
        participant_list_extended(&election_stack(vec![participant(4, 1), bad])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "participant_list_extended[4][1][1][1]: expected a number, got a cell"
    );
    let mut truncated = election_stack(Vec::new());
    truncated.truncate(5);
    assert_eq!(
        participant_list_extended(&truncated)
            .unwrap_err()
            .to_string(),
        "participant_list_extended: expected at least 7 stack entries, got 5 (truncated stack?)"
    );
    let short_details = TvmValue::Tuple(vec![key_number(1), TvmValue::Tuple(vec![n(1), n(2)])]);
    assert_eq!(
        participant_list_extended(&election_stack(vec![short_details]))
            .unwrap_err()
            .to_string(),
        "participant_list_extended[4][0][1]: expected at least 4 elements, got 2 (truncated stack?)"
    );
    assert_eq!(
        active_election_id(&vec![TvmValue::List(Vec::new())])
            .unwrap_err()
            .to_string(),
        "active_election_id[0]: expected a number, got null (an empty list)"
    );
    assert_eq!(
        participant_list(&vec![n(-3)]).unwrap_err().to_string(),
        "participant_list[0]: expected a tuple or list, got a number"
    );
}

#[test]
fn active_election_id_zero_means_none() {
    assert_eq!(active_election_id(&vec![n(0)]).unwrap(), None);
    assert_eq!(
        active_election_id(&vec![n(1_778_685_466)]).unwrap(),
        Some(1_778_685_466)
    );
}

#[test]
fn participant_list_reads_pairs() {
    let stack = vec![TvmValue::List(vec![
        TvmValue::Tuple(vec![key_number(9), n(300)]),
        TvmValue::Tuple(vec![key_number(8), n(200)]),
    ])];
    assert_eq!(
        participant_list(&stack).unwrap(),
        vec![(key(9), 300), (key(8), 200)]
    );
}

fn past_entry(frozen: TvmValue, complaints: TvmValue) -> TvmValue {
    TvmValue::Tuple(vec![
        n(1_698_385_672),
        n(1_698_483_976),
        n(32_768),
        key_number(7),
        frozen,
        n(700),
        n(42),
        complaints,
    ])
}

#[test]
fn past_elections_decode_frozen_stakes_and_count_complaints() {
    let stakes = vec![
        Frozen {
            public_key: key(1),
            address: format!("-1:{}", key(11)),
            weight: 10,
            stake: 400,
            banned: false,
        },
        Frozen {
            public_key: key(2),
            address: format!("-1:{}", key(12)),
            weight: 20,
            stake: 300,
            banned: true,
        },
    ];
    let frozen = TvmValue::Cell(encode_frozen_dict(&stakes).unwrap().unwrap());
    let complaints = TvmValue::Cell(encode_complaints(3, 5).unwrap().unwrap());
    let decoded = past_elections(&vec![TvmValue::List(vec![
        past_entry(frozen, complaints),
        past_entry(TvmValue::List(Vec::new()), TvmValue::List(Vec::new())),
    ])])
    .unwrap();
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[0].election_id, 1_698_385_672);
    assert_eq!(decoded[0].unfreeze_at, 1_698_483_976);
    assert_eq!(decoded[0].stake_held, 32_768);
    assert_eq!(decoded[0].vset_hash, key(7));
    assert_eq!(decoded[0].total_stake, 700);
    assert_eq!(decoded[0].bonuses, 42);
    assert_eq!(decoded[0].frozen, FrozenStakes::Decoded { stakes });
    assert_eq!(decoded[0].complaints, Some(3));
    assert_eq!(
        decoded[1].frozen,
        FrozenStakes::Decoded { stakes: Vec::new() }
    );
    assert_eq!(decoded[1].complaints, Some(0));
}

#[test]
fn an_undecodable_frozen_dict_is_reported_not_invented() {
    // A cell of 8 bits is no 256-bit-keyed dictionary.
    let mut builder = CellBuilder::new();
    builder.store_u8(8, 0xff).unwrap();
    let bytes = tonlib_core::cell::BagOfCells::from_root(builder.build().unwrap())
        .serialize(true)
        .unwrap();
    use base64::Engine;
    let junk = base64::engine::general_purpose::STANDARD.encode(bytes);
    let decoded = past_elections(&vec![TvmValue::List(vec![past_entry(
        TvmValue::Cell(junk.clone()),
        TvmValue::Cell(junk),
    )])])
    .unwrap();
    let FrozenStakes::Undecodable { reason } = &decoded[0].frozen else {
        unreachable!("{:?}", decoded[0].frozen)
    };
    assert!(reason.starts_with("past_elections[0][0][4]"), "{reason}");
    assert_eq!(decoded[0].complaints, None);
    // A number where the dictionary belongs is a wrong type, not "undecodable".
    let error = past_elections(&vec![TvmValue::List(vec![past_entry(n(1), n(0))])]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "past_elections[0][0][4]: expected a dictionary (a cell or null), got a number"
    );
}

// ---- list_complaints, compute_returned_stake ----

fn complaint_tuple(seed: u8, created_at: i64) -> TvmValue {
    TvmValue::Tuple(vec![
        key_number(seed),
        TvmValue::Cell("te6cckEBAQEAAgAAAEysuc0=".to_owned()),
        n(created_at),
        n(1),
        key_number(seed + 1),
        n(10_100_000_000),
        n(101_000_000_000),
        n(0),
    ])
}

/// elector-code.fc's shape: `pair(chash, [complaint, voters, vset_id, weight_remaining])`.
fn nested_complaint(seed: u8, voters: Vec<TvmValue>, weight_remaining: i64) -> TvmValue {
    TvmValue::Tuple(vec![
        key_number(seed + 10),
        TvmValue::Tuple(vec![
            complaint_tuple(seed, 1_778_700_000),
            TvmValue::List(voters),
            key_number(seed + 20),
            n(weight_remaining),
        ]),
    ])
}

#[test]
fn list_complaints_decodes_the_elector_shape_and_the_flat_one() {
    let stack = vec![TvmValue::List(vec![
        nested_complaint(1, vec![n(0), n(3)], -12),
        nested_complaint(4, Vec::new(), 5_000),
    ])];
    let complaints = list_complaints(&stack).unwrap();
    assert_eq!(
        complaints[0],
        ComplaintInfo {
            hash: key(11),
            validator_pubkey: key(1),
            created_at: 1_778_700_000,
            severity: 1,
            reward_address: format!("-1:{}", key(2)),
            paid: 10_100_000_000,
            suggested_fine: 101_000_000_000,
            suggested_fine_part: 0,
            voters: vec![0, 3],
            vset_id: key(21),
            weight_remaining: -12,
            passed: true,
        }
    );
    assert_eq!(complaints[1].validator_pubkey, key(4));
    assert!(!complaints[1].passed);
    assert_eq!(complaints[1].weight_remaining, 5_000);

    let flat = TvmValue::Tuple(vec![
        key_number(11),
        complaint_tuple(1, 1_778_700_000),
        TvmValue::List(vec![n(0), n(3)]),
        key_number(21),
        n(-12),
    ]);
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![flat])]).unwrap(),
        vec![complaints[0].clone()]
    );
    // No complaints (or an unknown election): null.
    assert_eq!(
        list_complaints(&vec![TvmValue::List(Vec::new())]).unwrap(),
        Vec::new()
    );
}

#[test]
fn list_complaints_errors_name_the_method_and_position() {
    assert_eq!(
        list_complaints(&Vec::new()).unwrap_err().to_string(),
        "list_complaints: expected at least 1 stack entries, got 0 (truncated stack?)"
    );
    let mut short = nested_complaint(1, Vec::new(), 1);
    if let TvmValue::Tuple(items) = &mut short
        && let TvmValue::Tuple(status) = &mut items[1]
        && let TvmValue::Tuple(complaint) = &mut status[0]
    {
        complaint.truncate(5);
    }
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![short])])
            .unwrap_err()
            .to_string(),
        "list_complaints[0][0][1][0]: expected at least 8 elements, got 5 (truncated stack?)"
    );
    let mut wrong_weight = nested_complaint(1, Vec::new(), 1);
    if let TvmValue::Tuple(items) = &mut wrong_weight
        && let TvmValue::Tuple(status) = &mut items[1]
    {
        status[3] = TvmValue::Cell("x".to_owned());
    }
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![
            nested_complaint(2, Vec::new(), 1),
            wrong_weight
        ])])
        .unwrap_err()
        .to_string(),
        "list_complaints[0][1][1][3]: expected a number, got a cell"
    );
    let huge_weight = TvmValue::Tuple(vec![
        key_number(11),
        TvmValue::Tuple(vec![
            complaint_tuple(1, 5),
            TvmValue::List(Vec::new()),
            key_number(3),
            TvmValue::Number(num_bigint::BigInt::from(u64::MAX)),
        ]),
    ]);
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![huge_weight])])
            .unwrap_err()
            .to_string(),
        format!(
            "list_complaints[0][0][1][3]: expected a signed 64-bit number, got {}",
            u64::MAX
        )
    );
    let bad_voter = nested_complaint(1, vec![TvmValue::Tuple(Vec::new())], 1);
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![bad_voter])])
            .unwrap_err()
            .to_string(),
        "list_complaints[0][0][1][1][0]: expected a number, got a tuple"
    );
    assert_eq!(
        list_complaints(&vec![TvmValue::List(vec![TvmValue::Tuple(vec![
            key_number(1)
        ])])])
        .unwrap_err()
        .to_string(),
        "list_complaints[0][0]: expected at least 2 elements, got 1 (truncated stack?)"
    );
}

#[test]
fn returned_stake_reads_one_amount() {
    assert_eq!(
        returned_stake(&vec![n(400_123_500_000_000)]).unwrap(),
        400_123_500_000_000
    );
    assert_eq!(returned_stake(&vec![n(0)]).unwrap(), 0);
    assert_eq!(
        returned_stake(&Vec::new()).unwrap_err().to_string(),
        "compute_returned_stake: expected at least 1 stack entries, got 0 (truncated stack?)"
    );
    assert_eq!(
        returned_stake(&vec![TvmValue::List(Vec::new())])
            .unwrap_err()
            .to_string(),
        "compute_returned_stake[0]: expected a number, got null (an empty list)"
    );
    assert_eq!(
        returned_stake(&vec![n(-1)]).unwrap_err().to_string(),
        "compute_returned_stake[0]: expected an unsigned 128-bit number, got -1"
    );
}

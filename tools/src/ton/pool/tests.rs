use num_bigint::{BigInt, BigUint};

use super::*;

fn n(value: i64) -> TvmValue {
    TvmValue::number(value)
}

fn hash_number(seed: u8) -> TvmValue {
    TvmValue::Number(BigInt::from(BigUint::from_bytes_be(&[seed; 32])))
}

fn hex(seed: u8) -> String {
    super::super::config::to_hex(&[seed; 32])
}

fn null() -> TvmValue {
    TvmValue::List(Vec::new())
}

fn pool_stack() -> TvmStack {
    vec![
        n(2),
        n(3),
        n(1_200_000_000_000_000),
        n(50_000_000_000_000),
        hash_number(0xaa),
        n(4000),
        n(40),
        n(10_000_000_000_000),
        n(10_000_000_000_000),
        null(),
        null(),
        n(1_778_685_466),
        hash_number(7),
        n(0),
        n(0),
        n(32_768),
        null(),
    ]
}

#[test]
fn pool_data_decodes_the_numbers_and_tolerates_trailing_entries() {
    let expected = PoolData {
        state: 2,
        nominators_count: 3,
        stake_amount_sent: 1_200_000_000_000_000,
        validator_amount: 50_000_000_000_000,
        validator_address: format!("-1:{}", hex(0xaa)),
        validator_reward_share: 4000,
        max_nominators_count: 40,
        min_validator_stake: 10_000_000_000_000,
        min_nominator_stake: 10_000_000_000_000,
        stake_at: 1_778_685_466,
        stake_held_for: 32_768,
    };
    assert_eq!(pool_data(&pool_stack()).unwrap(), expected);
    let mut longer = pool_stack();
    longer.push(n(99));
    assert_eq!(pool_data(&longer).unwrap(), expected);
    // Without config_proposal_votings (older pools): still readable.
    let mut shorter = pool_stack();
    shorter.truncate(16);
    assert_eq!(pool_data(&shorter).unwrap(), expected);
}

#[test]
fn pool_data_errors_name_the_method_and_position() {
    let mut truncated = pool_stack();
    truncated.truncate(11);
    assert_eq!(
        pool_data(&truncated).unwrap_err().to_string(),
        "get_pool_data: expected at least 16 stack entries, got 11 (truncated stack?)"
    );
    let mut wrong = pool_stack();
    wrong[4] = TvmValue::Cell("te6cckEBAQEAAgAAAEysuc0=".to_owned());
    assert_eq!(
        pool_data(&wrong).unwrap_err().to_string(),
        "get_pool_data[4]: expected a number, got a cell"
    );
    let mut negative = pool_stack();
    negative[2] = n(-5);
    assert_eq!(
        pool_data(&negative).unwrap_err().to_string(),
        "get_pool_data[2]: expected an unsigned 128-bit number, got -5"
    );
    assert_eq!(
        pool_data(&Vec::new()).unwrap_err().to_string(),
        "get_pool_data: expected at least 16 stack entries, got 0 (truncated stack?)"
    );
}

fn nominator(seed: u8, amount: i64, pending: i64, withdraw: i64) -> TvmValue {
    TvmValue::Tuple(vec![hash_number(seed), n(amount), n(pending), n(withdraw)])
}

#[test]
fn list_nominators_reads_basechain_addresses_and_flags() {
    let stack = vec![TvmValue::List(vec![
        nominator(1, 20_000_000_000_000, 0, 0),
        nominator(2, 15_000_000_000_000, 5_000_000_000_000, -1),
    ])];
    assert_eq!(
        list_nominators(&stack).unwrap(),
        vec![
            Nominator {
                address: format!("0:{}", hex(1)),
                amount: 20_000_000_000_000,
                pending_deposit: 0,
                withdraw_requested: false,
            },
            Nominator {
                address: format!("0:{}", hex(2)),
                amount: 15_000_000_000_000,
                pending_deposit: 5_000_000_000_000,
                withdraw_requested: true,
            },
        ]
    );
    // A pool without nominators returns null.
    assert_eq!(list_nominators(&vec![null()]).unwrap(), Vec::new());
}

#[test]
fn list_nominators_errors_name_the_method_and_position() {
    let short = TvmValue::Tuple(vec![hash_number(1), n(1), n(2)]);
    assert_eq!(
        list_nominators(&vec![TvmValue::List(vec![nominator(3, 1, 0, 0), short])])
            .unwrap_err()
            .to_string(),
        "list_nominators[0][1]: expected at least 4 elements, got 3 (truncated stack?)"
    );
    let wrong = TvmValue::Tuple(vec![hash_number(1), null(), n(0), n(0)]);
    assert_eq!(
        list_nominators(&vec![TvmValue::List(vec![wrong])])
            .unwrap_err()
            .to_string(),
        "list_nominators[0][0][1]: expected a number, got null (an empty list)"
    );
    assert_eq!(
        list_nominators(&vec![n(1)]).unwrap_err().to_string(),
        "list_nominators[0]: expected a tuple or list, got a number"
    );
    assert_eq!(
        list_nominators(&Vec::new()).unwrap_err().to_string(),
        "list_nominators: expected at least 1 stack entries, got 0 (truncated stack?)"
    );
}

const OWNER: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";
const VALIDATOR: &str = "-1:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn get_roles_reads_the_owner_and_validator_slices() {
    let stack = vec![
        TvmValue::Slice(address_slice_boc(OWNER).unwrap()),
        TvmValue::Slice(address_slice_boc(VALIDATOR).unwrap()),
    ];
    assert_eq!(
        single_nominator_roles(&stack).unwrap(),
        SingleNominatorRoles {
            owner: OWNER.to_owned(),
            validator: VALIDATOR.to_owned(),
        }
    );
    // A user-friendly address encodes to the same slice.
    let friendly = crate::ton::parse_address(VALIDATOR).unwrap().friendly;
    assert_eq!(
        address_slice_boc(&friendly).unwrap(),
        address_slice_boc(VALIDATOR).unwrap()
    );
}

#[test]
fn get_roles_errors_name_the_method_and_position() {
    let owner = TvmValue::Slice(address_slice_boc(OWNER).unwrap());
    assert_eq!(
        single_nominator_roles(&vec![owner.clone()])
            .unwrap_err()
            .to_string(),
        "get_roles: expected at least 2 stack entries, got 1 (truncated stack?)"
    );
    assert_eq!(
        single_nominator_roles(&vec![owner.clone(), n(5)])
            .unwrap_err()
            .to_string(),
        "get_roles[1]: expected an address slice, got a number"
    );
    let garbage = single_nominator_roles(&vec![TvmValue::Slice("%%%".to_owned()), owner.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        garbage.starts_with("get_roles[0]: the BOC is not base64"),
        "{garbage}"
    );
    // A cell with too few bits for an address.
    let empty = crate::ton::config::empty_cell_boc().unwrap();
    assert_eq!(
        single_nominator_roles(&vec![owner, TvmValue::Slice(empty)])
            .unwrap_err()
            .to_string(),
        "get_roles[1]: expected an address slice, got an empty cell"
    );
    assert!(address_slice_boc("not an address").is_err());
}

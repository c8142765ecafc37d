use super::*;

const TON: u128 = 1_000_000_000;

#[test]
fn the_proposed_stake_respects_reserve_caps_and_the_minimum() {
    // 400,050 TON in the wallet, 50 kept for fees.
    assert_eq!(
        proposed_stake_nanoton(400_050.5, 50.0, None, 300_000 * TON, None),
        Some(400_000 * 1_000_000_000)
    );
    // Capped by the configured limit, then by config 17's max_stake.
    assert_eq!(
        proposed_stake_nanoton(900_000.0, 50.0, Some(500_000.0), 300_000 * TON, None),
        Some(500_000 * 1_000_000_000)
    );
    assert_eq!(
        proposed_stake_nanoton(900_000.0, 50.0, None, 300_000 * TON, Some(350_000 * TON)),
        Some(350_000 * 1_000_000_000)
    );
    // Below the election's minimum: nothing to propose.
    assert_eq!(
        proposed_stake_nanoton(200_000.0, 50.0, None, 300_000 * TON, None),
        None
    );
    assert_eq!(proposed_stake_nanoton(10.0, 50.0, None, 0, None), None);
    assert_eq!(proposed_stake_nanoton(f64::NAN, 50.0, None, 0, None), None);
}

#[test]
fn wallets_include_the_pool_in_raw_form() {
    let validator = WatchedValidator {
        name: "v1".into(),
        wallet: "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF".into(),
        pool: Some("-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
        ..Default::default()
    };
    let wallets = wallet_set(&validator);
    assert!(wallets.contains(&format!("-1:{}", "3".repeat(64))));
    assert!(wallets.contains(&format!("-1:{}", "a".repeat(64))));
}

#[test]
fn blocks_total_needs_at_least_one_counter() {
    let mut node = tools::prometheus::ValidatorNodeMetrics::default();
    assert_eq!(blocks_total(&node), None);
    node.blocks_validated_master = Some(10.0);
    node.blocks_collated_shard = Some(2.0);
    assert_eq!(blocks_total(&node), Some(12.0));
}

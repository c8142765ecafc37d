use std::collections::BTreeSet;

use memory::ledger::EntrySource;
use rust_decimal::Decimal;
use tools::toncenter::{Transaction, TransactionMessage};

use super::*;

const VALIDATOR: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
const POOL: &str = "-1:2222222222222222222222222222222222222222222222222222222222222222";
const COCOON: &str = "0:4444444444444444444444444444444444444444444444444444444444444444";
const TREASURY: &str = "0:5555555555555555555555555555555555555555555555555555555555555555";
const CUSTOMER_A: &str = "0:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CUSTOMER_B: &str = "0:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const GRANT: &str = "0:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

const TON: u128 = 1_000_000_000;
/// 2026-11-01 00:00 UTC.
const NOV_1: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

/// Addresses as toncenter sends them: user-friendly.
fn friendly(raw: &str) -> String {
    tools::ton::parse_address(raw).unwrap().friendly
}

fn message(from: &str, to: &str, nanoton: u128, comment: Option<&str>) -> TransactionMessage {
    TransactionMessage {
        source: if from.is_empty() {
            String::new()
        } else {
            friendly(from)
        },
        destination: friendly(to),
        value_nanoton: nanoton,
        body_hash: None,
        hash: None,
        comment: comment.map(str::to_owned),
    }
}

fn incoming(
    lt: u64,
    utime: i64,
    from: &str,
    to: &str,
    nanoton: u128,
    comment: Option<&str>,
) -> Transaction {
    Transaction {
        lt,
        hash: format!("tx+{lt}/=="),
        utime,
        fee_nanoton: 0,
        in_msg: Some(message(from, to, nanoton, comment)),
        out_msgs: Vec::new(),
    }
}

/// The wallet's own order (an external message) sending `nanoton` to `to`.
fn outgoing(lt: u64, utime: i64, wallet: &str, to: &str, nanoton: u128) -> Transaction {
    Transaction {
        lt,
        hash: format!("tx+{lt}/=="),
        utime,
        fee_nanoton: 5_000_000,
        in_msg: Some(message("", wallet, 0, None)),
        out_msgs: vec![message(wallet, to, nanoton, None)],
    }
}

fn account(address: &str, label: &str, kind: AccountKind) -> OnchainAccount {
    OnchainAccount {
        address: friendly(address),
        label: label.to_owned(),
        kind,
        stream: None,
        reward_share: None,
        metrics_url: None,
        utilization_metric: "cocoon_worker_utilization_ratio".to_owned(),
        customers_metric: "cocoon_active_customers".to_owned(),
        rules: Vec::new(),
    }
}

fn own() -> BTreeSet<String> {
    [VALIDATOR, POOL, COCOON, TREASURY]
        .map(str::to_owned)
        .into_iter()
        .collect()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[test]
fn a_returned_stake_books_only_the_reward_and_remembers_the_cycle() {
    let elector = tools::ton::elector::ELECTOR_ADDRESS;
    let watched = Watched::new(account(VALIDATOR, "validator-1", AccountKind::Validator)).unwrap();
    let mut state = AccountState::default();
    // Two stake messages in one election (a top-up), the elector's confirmation of the first
    // (1 TON of it sent back), a returned stake 18 days later; then a top-up from the treasury,
    // which is ours and not income.
    let history = [
        outgoing(10, NOV_1, VALIDATOR, elector, 600_000 * TON),
        incoming(11, NOV_1 + 60, elector, VALIDATOR, TON, None),
        outgoing(12, NOV_1 + 3600, VALIDATOR, elector, 100_000 * TON),
        incoming(
            20,
            NOV_1 + 18 * DAY,
            elector,
            VALIDATOR,
            700_122 * TON + 456_789_012,
            None,
        ),
        incoming(22, NOV_1 + 19 * DAY, TREASURY, VALIDATOR, 5_000 * TON, None),
    ];
    let result = attribute(&watched, &own(), &history, &mut state);
    assert_eq!(result.entries.len(), 1, "{:?}", result.entries);
    let reward = &result.entries[0];
    // 700,122.456789012 returned − 699,999 staked (700,000 sent, 1 confirmed back).
    assert_eq!(reward.amount, dec("123.456789012"));
    assert_eq!(reward.currency, "TON");
    assert_eq!(reward.stream.as_deref(), Some("validators"));
    assert_eq!(reward.date.to_string(), "2026-11-19");
    assert_eq!(reward.id, "onchain:tx-20_==");
    assert_eq!(
        reward.source,
        EntrySource::OnChain {
            tx: "tx+20/==".to_owned(),
            address: friendly(VALIDATOR)
        }
    );
    assert_eq!(reward.tags, ["onchain", "validator-reward"]);
    assert_eq!(
        reward.description,
        "stake returned: 700122.456789012 TON for 699999 TON staked on 2026-11-01"
    );
    assert_eq!(
        result.skipped, 2,
        "the confirmation and the treasury top-up"
    );
    assert_eq!(result.cycles.len(), 1);
    assert_eq!(result.cycles[0].staked_ton, dec("699999"));
    assert_eq!(result.cycles[0].reward_ton, dec("123.456789012"));
    assert_eq!(result.cycles[0].staked_at.timestamp(), NOV_1);
    assert!(state.pending_stakes.is_empty());
    assert_eq!(state.last_lt, 22);

    // Reading the same history again adds nothing; the next cycle continues from the state.
    let again = attribute(&watched, &own(), &history, &mut state);
    assert!(again.entries.is_empty() && again.cycles.is_empty());
    let next = [
        outgoing(30, NOV_1 + 20 * DAY, VALIDATOR, elector, 700_000 * TON),
        // A fine: less comes back than went in.
        incoming(
            32,
            NOV_1 + 38 * DAY,
            elector,
            VALIDATOR,
            699_990 * TON,
            None,
        ),
    ];
    let fined = attribute(&watched, &own(), &next, &mut state);
    assert_eq!(fined.entries[0].amount, dec("-10"));
    assert_eq!(fined.entries[0].tags, ["onchain", "validator-fine"]);
    assert_eq!(state.cycles.len(), 2);
}

#[test]
fn overlapping_stakes_are_paid_back_oldest_first_and_a_refused_stake_is_no_cycle() {
    // One wallet validating every round: the stake for the next election goes out while the
    // last one is still frozen, so two stakes are pending when the first comes back.
    let elector = tools::ton::elector::ELECTOR_ADDRESS;
    let watched = Watched::new(account(VALIDATOR, "validator-1", AccountKind::Validator)).unwrap();
    let mut state = AccountState::default();
    let history = [
        outgoing(10, NOV_1, VALIDATOR, elector, 400_000 * TON),
        // The confirmation less its forward fee.
        incoming(11, NOV_1 + 60, elector, VALIDATOR, 999_000_000, None),
        outgoing(20, NOV_1 + DAY, VALIDATOR, elector, 400_000 * TON),
        incoming(21, NOV_1 + DAY + 60, elector, VALIDATOR, TON, None),
        // The first stake back with 51 TON: 399,999.001 staked.
        incoming(
            30,
            NOV_1 + 2 * DAY,
            elector,
            VALIDATOR,
            400_050 * TON + 1_000_000,
            None,
        ),
    ];
    let result = attribute(&watched, &own(), &history, &mut state);
    assert_eq!(result.entries.len(), 1, "{:?}", result.entries);
    assert_eq!(result.entries[0].amount, dec("51"));
    assert_eq!(result.cycles[0].staked_ton, dec("399999.001"));
    assert_eq!(result.cycles[0].staked_at.timestamp(), NOV_1);
    // The second stake is still out, less its confirmation.
    assert_eq!(state.pending_stakes.len(), 1);
    assert_eq!(state.pending_stakes[0].nanoton, 399_999 * TON);

    // A third stake the elector refuses (sent back whole, less fees): no cycle, no entry, and
    // it does not take the second stake's place. Then the second comes back with 60 TON.
    let next = [
        outgoing(40, NOV_1 + 3 * DAY, VALIDATOR, elector, 250_000 * TON),
        incoming(
            41,
            NOV_1 + 3 * DAY + 60,
            elector,
            VALIDATOR,
            250_000 * TON - 40_000_000,
            None,
        ),
        incoming(50, NOV_1 + 4 * DAY, elector, VALIDATOR, 400_059 * TON, None),
    ];
    let later = attribute(&watched, &own(), &next, &mut state);
    assert_eq!(later.entries.len(), 1, "{:?}", later.entries);
    assert_eq!(later.entries[0].amount, dec("60"));
    assert_eq!(later.cycles.len(), 1);
    assert_eq!(later.skipped, 1, "the refused stake");
    assert!(
        state.pending_stakes.is_empty(),
        "{:?}",
        state.pending_stakes
    );

    // A fine while the next stake is pending: less than the oldest stake comes back; only
    // that stake is settled.
    let fined = [
        outgoing(60, NOV_1 + 5 * DAY, VALIDATOR, elector, 300_000 * TON),
        outgoing(70, NOV_1 + 6 * DAY, VALIDATOR, elector, 300_000 * TON),
        incoming(80, NOV_1 + 7 * DAY, elector, VALIDATOR, 299_900 * TON, None),
    ];
    let fine = attribute(&watched, &own(), &fined, &mut state);
    assert_eq!(fine.entries[0].amount, dec("-100"));
    assert_eq!(fine.entries[0].tags, ["onchain", "validator-fine"]);
    assert_eq!(state.pending_stakes.len(), 1);
    assert_eq!(state.pending_stakes[0].nanoton, 300_000 * TON);
}

#[test]
fn a_pool_books_its_share_and_a_return_without_a_stake_is_reported_not_guessed() {
    let elector = tools::ton::elector::ELECTOR_ADDRESS;
    let mut pool = account(POOL, "pool-1", AccountKind::Validator);
    pool.reward_share = Some(dec("0.3"));
    let watched = Watched::new(pool).unwrap();
    let mut state = AccountState::default();
    let history = [
        // Returned before any stake the history holds: the first sync started mid-cycle.
        incoming(5, NOV_1 - DAY, elector, POOL, 1_000_050 * TON, None),
        outgoing(10, NOV_1, POOL, elector, 1_000_000 * TON),
        incoming(20, NOV_1 + 18 * DAY, elector, POOL, 1_000_200 * TON, None),
    ];
    let result = attribute(&watched, &own(), &history, &mut state);
    assert_eq!(result.unmatched.len(), 1);
    assert_eq!(result.unmatched[0].returned_ton, dec("1000050"));
    assert_eq!(result.unmatched[0].tx, "tx+5/==");
    assert_eq!(result.entries.len(), 1);
    // 200 TON of pool reward, 30% of it ours.
    assert_eq!(result.entries[0].amount, dec("60.0"));
    assert_eq!(
        result.entries[0].description,
        "stake returned: 1000200 TON for 1000000 TON staked on 2026-11-01; our share 0.3 of 200 TON"
    );
    assert_eq!(result.cycles[0].reward_ton, dec("200"));
}

#[test]
fn cocoon_payments_are_income_per_customer_and_rules_redirect_or_ignore() {
    let mut cocoon = account(COCOON, "cocoon-worker-1", AccountKind::Cocoon);
    cocoon.rules = vec![
        OnchainRule {
            from: Some(friendly(GRANT)),
            stream: Some("investments".to_owned()),
            tags: vec!["grant".to_owned()],
            ..OnchainRule::default()
        },
        OnchainRule {
            comment: Some("(?i)^refund".to_owned()),
            ignore: true,
            ..OnchainRule::default()
        },
    ];
    let watched = Watched::new(cocoon).unwrap();
    let mut state = AccountState::default();
    let history = [
        incoming(
            1,
            NOV_1,
            CUSTOMER_A,
            COCOON,
            12 * TON + 500_000_000,
            Some("inference job 881"),
        ),
        incoming(2, NOV_1 + DAY, CUSTOMER_B, COCOON, 40 * TON, None),
        incoming(
            3,
            NOV_1 + 2 * DAY,
            CUSTOMER_A,
            COCOON,
            7 * TON,
            Some("inference job 902"),
        ),
        incoming(
            4,
            NOV_1 + 3 * DAY,
            GRANT,
            COCOON,
            1_000 * TON,
            Some("ecosystem grant"),
        ),
        incoming(
            5,
            NOV_1 + 4 * DAY,
            CUSTOMER_B,
            COCOON,
            3 * TON,
            Some("Refund of overpayment"),
        ),
        incoming(6, NOV_1 + 5 * DAY, TREASURY, COCOON, 50 * TON, None),
        // A bounce or a zero-value notification carries no income.
        incoming(7, NOV_1 + 6 * DAY, CUSTOMER_A, COCOON, 0, None),
    ];
    let result = attribute(&watched, &own(), &history, &mut state);
    let booked: Vec<(String, Decimal, String)> = result
        .entries
        .iter()
        .map(|e| (e.stream.clone().unwrap(), e.amount, e.description.clone()))
        .collect();
    assert_eq!(
        booked,
        [
            (
                "cocoon".to_owned(),
                dec("12.5"),
                "inference job 881".to_owned()
            ),
            ("cocoon".to_owned(), dec("40"), "payment".to_owned()),
            (
                "cocoon".to_owned(),
                dec("7"),
                "inference job 902".to_owned()
            ),
            (
                "investments".to_owned(),
                dec("1000"),
                "ecosystem grant".to_owned()
            ),
        ]
    );
    assert_eq!(result.entries[0].counterparty, friendly(CUSTOMER_A));
    assert_eq!(result.entries[0].tags, ["onchain", "cocoon-payment"]);
    assert_eq!(result.entries[3].tags, ["onchain", "grant"]);
    assert_eq!(result.skipped, 2, "the refund rule and the treasury");
    // Customers: A and B paid; the grant is a payer of another kind.
    assert_eq!(result.payers.len(), 3);
}

#[test]
fn configuration_problems_name_their_key() {
    let finance = FinanceConfig::default();
    let mut bad_rule = account(COCOON, "cocoon", AccountKind::Cocoon);
    bad_rule.rules = vec![
        OnchainRule::default(),
        OnchainRule {
            comment: Some("(unclosed".to_owned()),
            stream: Some("lottery".to_owned()),
            ..OnchainRule::default()
        },
    ];
    let mut income = account(TREASURY, " ", AccountKind::Income);
    income.reward_share = Some(dec("1.5"));
    let config = OnchainConfig {
        accounts: vec![
            bad_rule,
            income,
            OnchainAccount {
                address: "EQ-not-an-address".to_owned(),
                ..account(POOL, "pool", AccountKind::Validator)
            },
            account(COCOON, "again", AccountKind::Cocoon),
        ],
        ..OnchainConfig::default()
    };
    let problems = config.problems(&finance).join("\n");
    for expected in [
        "finance.onchain.accounts[0].rules[0]: give `from`, `comment` or both",
        "finance.onchain.accounts[0].rules[1].comment: not a regex",
        "finance.onchain.accounts[0].rules[1].stream: \"lottery\" is not one of finance.streams",
        "finance.onchain.accounts[1].label: give the account a short name",
        "finance.onchain.accounts[1].stream: an income account needs the stream",
        "finance.onchain.accounts[1].reward_share: 1.5 must be more than 0 and at most 1",
        "finance.onchain.accounts[2].address:",
        "finance.onchain.accounts[3].address:",
    ] {
        assert!(problems.contains(expected), "{expected}\nin:\n{problems}");
    }
    assert!(problems.contains("is listed twice"), "{problems}");
}

#[test]
fn cocoon_gauges_are_read_from_the_metrics_page() {
    let watched = account(COCOON, "cocoon", AccountKind::Cocoon);
    let page = "# TYPE cocoon_worker_utilization_ratio gauge\n\
                cocoon_worker_utilization_ratio{gpu=\"0\"} 0.9\n\
                cocoon_worker_utilization_ratio{gpu=\"1\"} 0.5\n\
                # TYPE cocoon_active_customers gauge\n\
                cocoon_active_customers{model=\"llama\"} 7\n\
                cocoon_active_customers{model=\"qwen\"} 5\n";
    let metrics = cocoon_metrics(&watched, &tools::prometheus::parse_text(page));
    assert_eq!(
        metrics,
        CocoonMetrics {
            utilization: Some(0.7),
            customers: Some(12.0)
        }
    );
    let percent = cocoon_metrics(
        &watched,
        &tools::prometheus::parse_text("cocoon_worker_utilization_ratio 85\n"),
    );
    assert_eq!(percent.utilization, Some(0.85));
    assert_eq!(percent.customers, None, "absent, not zero");
}

#[test]
fn nanotons_convert_exactly() {
    assert_eq!(ton(1), dec("0.000000001"));
    assert_eq!(ton(1_500_000_000), dec("1.5"));
    assert_eq!(ton(u128::from(u64::MAX)), dec("18446744073.709551615"));
    // Beyond what a decimal holds: capped, not a panic.
    assert_eq!(ton(u128::MAX), Decimal::MAX);
}

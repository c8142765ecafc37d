use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tools::ton::config::{ElectionTiming, ValidatorDescr, ValidatorSet};
use tools::ton::elector::{Election, Frozen, FrozenStakes, Participant, PastElection};

use super::*;
use crate::alert::Severity;
use crate::validators::Verdict;

const WALLET: &str = "-1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER: &str = "-1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TON: u128 = 1_000_000_000;

fn key(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn wallets() -> BTreeSet<String> {
    BTreeSet::from([WALLET.to_owned()])
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap()
}

fn election(id: u64, participants: &[(&str, u8, u128)]) -> Election {
    Election {
        elect_at: id,
        elect_close: id - 8192,
        min_stake: 300_000 * TON,
        total_stake: participants.iter().map(|p| p.2).sum(),
        participants: participants
            .iter()
            .map(|(wallet, key_byte, stake)| Participant {
                public_key: key(*key_byte),
                stake: *stake,
                max_factor: 196_608,
                wallet_address: (*wallet).to_owned(),
                adnl: key(key_byte + 100),
            })
            .collect(),
        failed: false,
        finished: false,
    }
}

fn past(
    id: u64,
    unfreeze_at: u64,
    bonuses: u128,
    stakes: &[(&str, u8, u128, bool)],
) -> PastElection {
    PastElection {
        election_id: id,
        unfreeze_at,
        stake_held: 32768,
        vset_hash: "00".repeat(32),
        total_stake: stakes.iter().map(|s| s.2).sum(),
        bonuses,
        frozen: FrozenStakes::Decoded {
            stakes: stakes
                .iter()
                .map(|(address, key_byte, stake, banned)| Frozen {
                    public_key: key(*key_byte),
                    address: (*address).to_owned(),
                    weight: 1,
                    stake: *stake,
                    banned: *banned,
                })
                .collect(),
        },
        complaints: Some(0),
    }
}

fn set(entries: &[(u8, u64)], since: u32) -> ValidatorSet {
    ValidatorSet {
        utime_since: since,
        utime_until: since + 65536,
        total: entries.len() as u16,
        main: entries.len() as u16,
        total_weight: entries.iter().map(|e| e.1).sum(),
        validators: entries
            .iter()
            .map(|(key_byte, weight)| ValidatorDescr {
                public_key: key(*key_byte),
                weight: *weight,
                adnl_address: Some(key(key_byte + 100)),
            })
            .collect(),
    }
}

const TIMING: ElectionTiming = ElectionTiming {
    validators_elected_for: 65536,
    elections_start_before: 32768,
    elections_end_before: 8192,
    stake_held_for: 32768,
};

fn severity(verdict: &Verdict) -> Option<Severity> {
    match verdict {
        Verdict::Breach { severity, .. } => Some(*severity),
        _ => None,
    }
}

#[test]
fn keys_are_learned_by_wallet_and_follow_a_rotation() {
    let mut memory = KeyMemory::default();
    let first = election(
        1_700_000_000,
        &[(WALLET, 1, 400_000 * TON), (OTHER, 2, TON)],
    );
    assert_eq!(
        memory.learn(&wallets(), None, Some(&first), None),
        vec![key(1)]
    );
    assert_eq!(
        memory.keys[&key(1)].adnl.as_deref(),
        Some(key(101).as_str())
    );
    // The next election: mytonctrl made a new key; the old one is still validating.
    let second = election(1_700_065_536, &[(WALLET, 3, 400_000 * TON)]);
    assert_eq!(
        memory.learn(&wallets(), None, Some(&second), None),
        vec![key(3)]
    );
    assert_eq!(memory.key_set(), BTreeSet::from([key(1), key(3)]));
    // Learning again changes nothing; the other wallet's key is never taken.
    assert!(
        memory
            .learn(&wallets(), None, Some(&second), None)
            .is_empty()
    );
    assert!(!memory.keys.contains_key(&key(2)));
    // Frozen stakes name the wallet too, and upper-case configured keys are normalised.
    let frozen = past(1_699_934_464, 1_700_100_000, 0, &[(WALLET, 4, TON, false)]);
    let configured = key(5).to_uppercase();
    let learned = memory.learn(&wallets(), Some(&configured), None, Some(&[frozen]));
    assert_eq!(learned, vec![key(5), key(4)]);
    // Bounded: the oldest learned keys go first, the configured one stays.
    for n in 10..20u8 {
        let e = election(1_700_100_000 + u64::from(n), &[(WALLET, n, TON)]);
        memory.learn(&wallets(), None, Some(&e), None);
    }
    assert_eq!(memory.keys.len(), 8);
    assert!(memory.keys.contains_key(&key(5)));
    assert!(memory.keys.contains_key(&key(19)));
    assert!(!memory.keys.contains_key(&key(1)));
}

#[test]
fn position_ranks_by_weight_and_computes_the_share() {
    let current = set(&[(1, 50), (2, 30), (3, 30), (4, 10)], 1_700_000_000);
    let at = position(&current, &BTreeSet::from([key(3)])).unwrap();
    assert_eq!(
        (at.index, at.rank, at.set_size),
        (2, 2, 4),
        "ties share rank 2"
    );
    assert!((at.share_percent - 25.0).abs() < 1e-9);
    assert_eq!(position(&current, &BTreeSet::from([key(9)])), None);
    // An empty set: nobody, no division by zero.
    assert_eq!(position(&set(&[], 0), &BTreeSet::from([key(1)])), None);
}

#[test]
fn participation_waits_for_the_grace_then_fires_until_the_stake_shows() {
    let id = 1_700_065_536;
    let opened = id - u64::from(TIMING.elections_start_before);
    let grace = Duration::from_secs(3600);
    let others = election(id, &[(OTHER, 2, TON)]);
    let early = at(opened as i64 + 600);
    assert_eq!(
        evaluate_participation("v1", Some(&others), Some(&TIMING), &wallets(), early, grace),
        Verdict::Unknown
    );
    let late = at(opened as i64 + 7200);
    let missing =
        evaluate_participation("v1", Some(&others), Some(&TIMING), &wallets(), late, grace);
    assert_eq!(severity(&missing), Some(Severity::Warning));
    let joined = election(id, &[(OTHER, 2, TON), (WALLET, 1, 500_000 * TON)]);
    let Verdict::Healthy { summary, evidence } =
        evaluate_participation("v1", Some(&joined), Some(&TIMING), &wallets(), late, grace)
    else {
        panic!("expected the stake to be seen");
    };
    assert!(summary.contains("500000.00 TON accepted"), "{summary}");
    assert_eq!(evidence["max_factor"], 3.0);
    // No election: healthy (closes a standing alert), not an error.
    assert!(matches!(
        evaluate_participation("v1", None, Some(&TIMING), &wallets(), late, grace),
        Verdict::Healthy { .. }
    ));
}

#[test]
fn elected_is_judged_on_the_next_set_only() {
    let keys = BTreeSet::from([key(1)]);
    let next = set(&[(1, 10), (2, 10)], 1_700_065_536);
    assert!(matches!(
        evaluate_elected("v1", &keys, Some(&next), true),
        Verdict::Healthy { .. }
    ));
    let without = set(&[(2, 10)], 1_700_065_536);
    assert_eq!(
        severity(&evaluate_elected("v1", &keys, Some(&without), true)),
        Some(Severity::Critical)
    );
    assert!(matches!(
        evaluate_elected("v1", &keys, None, true),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_elected("v1", &keys, None, false), Verdict::Unknown);
}

#[test]
fn frozen_stakes_carry_their_bonus_share_and_settle_when_released() {
    let stakes = [
        (WALLET, 1, 300_000 * TON, false),
        (OTHER, 2, 900_000 * TON, false),
    ];
    let election = past(1_700_000_000, 1_700_100_000, 1_200 * TON, &stakes);
    let own = own_frozen(std::slice::from_ref(&election), &wallets());
    assert_eq!(own.len(), 1);
    // 1200 TON of bonuses split by stake: a quarter is ours.
    assert_eq!(own[0].reward_nanoton, 300 * TON);
    let mut memory = StakeMemory::default();
    assert!(memory.settle(&own).is_empty());
    // Bonuses grow while frozen; the last seen share is what is paid.
    let grown = past(1_700_000_000, 1_700_100_000, 1_600 * TON, &stakes);
    assert!(memory.settle(&own_frozen(&[grown], &wallets())).is_empty());
    let settled = memory.settle(&[]);
    assert_eq!(
        settled,
        vec![Settled {
            election_id: 1_700_000_000,
            stake_nanoton: 300_000 * TON,
            reward_nanoton: 400 * TON,
            banned: false,
        }]
    );
    assert!(memory.frozen.is_empty());
    assert!(memory.settle(&[]).is_empty(), "settled once");
    // A stake frozen as a fine earns nothing.
    let fined = past(
        1_700_000_000,
        1_700_100_000,
        1_200 * TON,
        &[(WALLET, 1, TON, true)],
    );
    memory.settle(&own_frozen(&[fined], &wallets()));
    assert_eq!(memory.settle(&[])[0].reward_nanoton, 0);
    assert_eq!(reward_share(5, 1, 0), 0, "no total stake: no division");
}

#[test]
fn stake_return_is_overdue_only_after_the_grace() {
    let own = own_frozen(
        &[past(
            1_700_000_000,
            1_700_100_000,
            0,
            &[(WALLET, 1, TON, false)],
        )],
        &wallets(),
    );
    let grace = Duration::from_secs(600);
    assert!(matches!(
        evaluate_stake_return("v1", Some(&own), at(1_700_100_500), grace),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        severity(&evaluate_stake_return(
            "v1",
            Some(&own),
            at(1_700_100_700),
            grace
        )),
        Some(Severity::Warning)
    );
    assert_eq!(
        evaluate_stake_return("v1", None, at(0), grace),
        Verdict::Unknown
    );
    assert_eq!(
        severity(&evaluate_unrecovered("v1", Some(TON))),
        Some(Severity::Warning)
    );
    assert!(matches!(
        evaluate_unrecovered("v1", Some(0)),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_unrecovered("v1", None), Verdict::Unknown);
}

#[test]
fn complaints_and_fines_are_critical() {
    let complaint = OwnComplaint {
        election_id: 1_700_000_000,
        against: key(1),
        suggested_fine_nanoton: 101 * TON,
        passed: false,
        source: "elector".into(),
    };
    let Verdict::Breach {
        severity, summary, ..
    } = evaluate_complaints("v1", Some(std::slice::from_ref(&complaint)), Some(&[]))
    else {
        panic!("expected a breach");
    };
    assert_eq!(severity, Severity::Critical);
    assert!(summary.contains("suggested fine 101.00 TON"), "{summary}");
    let fined = own_frozen(
        &[past(1_700_000_000, 1, 0, &[(WALLET, 1, TON, true)])],
        &wallets(),
    );
    assert!(matches!(
        evaluate_complaints("v1", Some(&[]), Some(&fined)),
        Verdict::Breach { .. }
    ));
    assert!(matches!(
        evaluate_complaints("v1", Some(&[]), Some(&[])),
        Verdict::Healthy { .. }
    ));
    assert_eq!(evaluate_complaints("v1", None, Some(&[])), Verdict::Unknown);
}

#[test]
fn efficiency_is_judged_late_in_the_round() {
    assert_eq!(
        evaluate_efficiency("v1", Some(50.0), Some(0.5), 90.0, 0.8),
        Verdict::Unknown
    );
    assert_eq!(
        severity(&evaluate_efficiency(
            "v1",
            Some(50.0),
            Some(0.85),
            90.0,
            0.8
        )),
        Some(Severity::Warning)
    );
    assert!(matches!(
        evaluate_efficiency("v1", Some(95.0), Some(0.1), 90.0, 0.8),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        evaluate_efficiency("v1", None, Some(0.9), 90.0, 0.8),
        Verdict::Unknown
    );
    assert_eq!(
        evaluate_efficiency("v1", Some(f64::NAN), Some(0.9), 90.0, 0.8),
        Verdict::Unknown
    );
    let current = set(&[(1, 1)], 1_700_000_000);
    assert_eq!(round_fraction(&current, at(1_700_032_768)), Some(0.5));
    assert_eq!(round_fraction(&current, at(1_600_000_000)), Some(0.0));
}

#[test]
fn zero_blocks_fires_after_the_window_in_the_set() {
    let window = Duration::from_secs(3600);
    let mut memory = BlocksMemory::default();
    memory.observe(100.0, at(1_000));
    memory.observe(100.0, at(2_000));
    assert_eq!(memory.changed_at, Some(at(1_000)));
    assert!(matches!(
        evaluate_zero_blocks("v1", Some(true), &memory, at(2_000), window),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        severity(&evaluate_zero_blocks(
            "v1",
            Some(true),
            &memory,
            at(4_600),
            window
        )),
        Some(Severity::Critical)
    );
    // Out of the set, no blocks are expected.
    assert!(matches!(
        evaluate_zero_blocks("v1", Some(false), &memory, at(4_600), window),
        Verdict::Healthy { .. }
    ));
    memory.observe(101.0, at(4_700));
    assert!(matches!(
        evaluate_zero_blocks("v1", Some(true), &memory, at(4_700), window),
        Verdict::Healthy { .. }
    ));
    assert_eq!(
        evaluate_zero_blocks("v1", Some(true), &BlocksMemory::default(), at(0), window),
        Verdict::Unknown
    );
}

#[test]
fn rank_drop_compares_rounds() {
    let mut ranks = RankMemory::default();
    ranks.observe(100, 12);
    assert_eq!(ranks.last_two(), None);
    ranks.observe(200, 25);
    assert_eq!(ranks.last_two(), Some((12, 25)));
    assert_eq!(
        severity(&evaluate_rank("v1", ranks.last_two(), 10)),
        Some(Severity::Warning)
    );
    assert!(matches!(
        evaluate_rank("v1", Some((12, 15)), 10),
        Verdict::Healthy { .. }
    ));
    assert!(matches!(
        evaluate_rank("v1", Some((12, 40)), 0),
        Verdict::Healthy { .. }
    ));
    for round in 300..320 {
        ranks.observe(round, 1);
    }
    assert_eq!(ranks.by_round.len(), 8);
}

#[test]
fn version_behind_the_latest_release_warns() {
    assert_eq!(
        severity(&evaluate_version("v1", Some("v2025.02"), Some("v2025.03"))),
        Some(Severity::Warning)
    );
    assert!(matches!(
        evaluate_version("v1", Some("v2025.03"), Some("v2025.03")),
        Verdict::Healthy { .. }
    ));
    // A commit hash (what mytonctrl shows) cannot be ordered: no verdict, no false alarm.
    assert_eq!(
        evaluate_version("v1", Some("5c7d6a8"), Some("v2025.03")),
        Verdict::Unknown
    );
    assert_eq!(
        evaluate_version("v1", None, Some("v2025.03")),
        Verdict::Unknown
    );
}

#[test]
fn apy_scales_one_round_to_a_year() {
    // 0.1% per 18.2-hour round ≈ 48% a year (not compounded).
    let apy = apy_percent(400 * TON, 400_000 * TON, 65536).unwrap();
    assert!((apy - 48.12).abs() < 0.01, "{apy}");
    assert_eq!(apy_percent(1, 0, 65536), None);
    assert_eq!(format_unix(0), "1970-01-01 00:00 UTC");
}

#[test]
fn delegation_moves_above_the_threshold_are_noticed_once() {
    let first = evaluate_delegation("v1", &DelegationMemory::default(), 1_000 * TON, 3, 10.0);
    assert!(
        matches!(first, Verdict::Healthy { .. }),
        "first look records"
    );
    let seen = DelegationMemory {
        total_nanoton: Some(1_000 * TON),
        nominators: Some(3),
    };
    let withdrawal = evaluate_delegation("v1", &seen, 850 * TON, 2, 10.0);
    let Verdict::Breach {
        severity, summary, ..
    } = withdrawal
    else {
        panic!("expected a notice");
    };
    assert_eq!(severity, Severity::Warning);
    assert!(summary.contains("fell by 150.00 TON (-15.0%)"), "{summary}");
    assert_eq!(
        severity_of(&evaluate_delegation("v1", &seen, 1_200 * TON, 4, 10.0)),
        Some(Severity::Info)
    );
    assert!(matches!(
        evaluate_delegation("v1", &seen, 1_050 * TON, 3, 10.0),
        Verdict::Healthy { .. }
    ));
}

fn severity_of(verdict: &Verdict) -> Option<Severity> {
    severity(verdict)
}

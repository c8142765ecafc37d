//! The election cycle as one validator sees it: which public keys are its own, its place in the
//! current and next set, its election participation, frozen stakes and their return, bonuses
//! and earnings, complaints and fines, efficiency, blocks created and ranking.
//!
//! Keys are followed by wallet, not by configuration: mytonctrl generates a new validator key
//! for every election, so a key written in the config file is only a hint. Every election
//! participant and every frozen stake names the wallet (or pool) it belongs to; the agent learns
//! the keys from there and remembers them ([`KeyMemory`]) for the rounds they validate.
//!
//! Everything here is pure: inputs in, verdicts and updated memories out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tools::ton::config::{ElectionTiming, ValidatorSet};
use tools::ton::elector::{Election, FrozenStakes, PastElection};

use super::Verdict;
use crate::alert::Severity;

const NANOTON_PER_TON: f64 = 1e9;
/// Keys remembered per validator (about four rounds of fresh keys and their predecessors).
const KEYS_KEPT: usize = 8;

fn ton(nanoton: u128) -> f64 {
    nanoton as f64 / NANOTON_PER_TON
}

/// Where a key was learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The election that used the key (0: from the configuration file).
    pub election_id: u64,
    /// The ADNL address announced with it, when known.
    pub adnl: Option<String>,
}

/// A validator's public keys, learned from its wallet's election participation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMemory {
    /// Public key (64 lower-case hex) → where it was learned.
    pub keys: BTreeMap<String, KeyInfo>,
}

impl KeyMemory {
    /// Learns the keys the elector ties to `wallets` (raw addresses: the wallet and the pool),
    /// plus the configured key. Keeps the newest [`KEYS_KEPT`]. Returns the keys newly learned.
    pub fn learn(
        &mut self,
        wallets: &BTreeSet<String>,
        configured: Option<&str>,
        election: Option<&Election>,
        past: Option<&[PastElection]>,
    ) -> Vec<String> {
        let mut learned = Vec::new();
        let mut insert = |key: &str, info: KeyInfo| {
            let key = key.to_ascii_lowercase();
            match self.keys.get_mut(&key) {
                Some(known) => {
                    if info.election_id > known.election_id {
                        known.election_id = info.election_id;
                    }
                    if known.adnl.is_none() {
                        known.adnl = info.adnl;
                    }
                }
                None => {
                    learned.push(key.clone());
                    self.keys.insert(key, info);
                }
            }
        };
        if let Some(key) = configured {
            insert(
                key,
                KeyInfo {
                    election_id: 0,
                    adnl: None,
                },
            );
        }
        if let Some(election) = election {
            for participant in &election.participants {
                if wallets.contains(&participant.wallet_address.to_ascii_lowercase()) {
                    insert(
                        &participant.public_key,
                        KeyInfo {
                            election_id: election.elect_at,
                            adnl: Some(participant.adnl.to_ascii_lowercase()),
                        },
                    );
                }
            }
        }
        for past in past.unwrap_or_default() {
            if let FrozenStakes::Decoded { stakes } = &past.frozen {
                for frozen in stakes {
                    if wallets.contains(&frozen.address.to_ascii_lowercase()) {
                        insert(
                            &frozen.public_key,
                            KeyInfo {
                                election_id: past.election_id,
                                adnl: None,
                            },
                        );
                    }
                }
            }
        }
        if self.keys.len() > KEYS_KEPT {
            let mut by_age: Vec<(u64, String)> = self
                .keys
                .iter()
                .filter(|(_, info)| info.election_id > 0)
                .map(|(key, info)| (info.election_id, key.clone()))
                .collect();
            by_age.sort();
            let excess = self.keys.len() - KEYS_KEPT;
            for (_, key) in by_age.into_iter().take(excess) {
                self.keys.remove(&key);
            }
        }
        learned
    }

    pub fn key_set(&self) -> BTreeSet<String> {
        self.keys.keys().cloned().collect()
    }
}

/// A validator's place in a validator set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetPosition {
    pub public_key: String,
    pub adnl: Option<String>,
    /// Index in the set (the dictionary key).
    pub index: usize,
    /// 1 = the heaviest validator; ties share a rank.
    pub rank: usize,
    pub set_size: usize,
    pub weight: u64,
    /// Share of the set's total weight, in percent (the share of blocks and rewards).
    pub share_percent: f64,
    pub utime_since: u32,
    pub utime_until: u32,
}

/// Where any of `keys` sits in `set`, or `None` when absent.
pub fn position(set: &ValidatorSet, keys: &BTreeSet<String>) -> Option<SetPosition> {
    let (index, descr) = set
        .validators
        .iter()
        .enumerate()
        .find(|(_, descr)| keys.contains(&descr.public_key.to_ascii_lowercase()))?;
    let rank = 1 + set
        .validators
        .iter()
        .filter(|other| other.weight > descr.weight)
        .count();
    let total = if set.total_weight > 0 {
        set.total_weight
    } else {
        set.validators.iter().map(|v| v.weight).sum()
    };
    Some(SetPosition {
        public_key: descr.public_key.clone(),
        adnl: descr.adnl_address.clone(),
        index,
        rank,
        set_size: set.validators.len(),
        weight: descr.weight,
        share_percent: if total > 0 {
            descr.weight as f64 / total as f64 * 100.0
        } else {
            0.0
        },
        utime_since: set.utime_since,
        utime_until: set.utime_until,
    })
}

/// Membership in the current set (config 34) by any of the validator's keys.
pub fn evaluate_current_set(
    name: &str,
    keys: &BTreeSet<String>,
    set: Option<&ValidatorSet>,
) -> Verdict {
    let Some(set) = set else {
        return Verdict::Unknown;
    };
    if keys.is_empty() {
        return Verdict::Unknown;
    }
    match position(set, keys) {
        Some(at) => Verdict::Healthy {
            summary: format!(
                "{name} is in the current validator set (index {}, rank {} of {}, {:.3}% of the weight)",
                at.index, at.rank, at.set_size, at.share_percent
            ),
            evidence: serde_json::json!({
                "public_key": at.public_key,
                "index": at.index,
                "rank": at.rank,
                "weight": at.weight,
                "share_percent": at.share_percent,
                "total_weight": set.total_weight,
                "utime_since": set.utime_since,
                "utime_until": set.utime_until,
            }),
        },
        None => Verdict::Breach {
            severity: Severity::Critical,
            summary: format!(
                "{name} is not in the current validator set (config 34, {} validators): it earns nothing this round",
                set.validators.len()
            ),
            evidence: serde_json::json!({
                "known_keys": keys,
                "set_size": set.validators.len(),
                "utime_since": set.utime_since,
                "utime_until": set.utime_until,
            }),
        },
    }
}

/// The wallet's stake in the election under way, if it takes part.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Participation {
    pub election_id: u64,
    pub stake_nanoton: u128,
    pub max_factor: f64,
    pub public_key: String,
    pub adnl: String,
}

/// This validator's entry among the election's participants (by wallet or pool).
pub fn participation(election: &Election, wallets: &BTreeSet<String>) -> Option<Participation> {
    election
        .participants
        .iter()
        .find(|p| wallets.contains(&p.wallet_address.to_ascii_lowercase()))
        .map(|p| Participation {
            election_id: election.elect_at,
            stake_nanoton: p.stake,
            max_factor: f64::from(p.max_factor) / 65536.0,
            public_key: p.public_key.clone(),
            adnl: p.adnl.clone(),
        })
}

/// Election participation: once an election has been open for `grace`, a validator whose
/// wallet is not among the participants has not sent (or the elector did not accept) its stake.
pub fn evaluate_participation(
    name: &str,
    election: Option<&Election>,
    timing: Option<&ElectionTiming>,
    wallets: &BTreeSet<String>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Verdict {
    let Some(election) = election.filter(|e| e.elect_at > 0) else {
        return Verdict::Healthy {
            summary: format!("{name}: no election under way"),
            evidence: serde_json::json!({ "election_open": false }),
        };
    };
    if let Some(entry) = participation(election, wallets) {
        return Verdict::Healthy {
            summary: format!(
                "{name}: stake of {:.2} TON accepted in election {} (max factor {:.2})",
                ton(entry.stake_nanoton),
                election.elect_at,
                entry.max_factor
            ),
            evidence: serde_json::json!({
                "election_id": election.elect_at,
                "stake_ton": ton(entry.stake_nanoton),
                "max_factor": entry.max_factor,
                "public_key": entry.public_key,
                "participants": election.participants.len(),
            }),
        };
    }
    let opened_at = timing.map_or(election.elect_at, |timing| {
        election
            .elect_at
            .saturating_sub(u64::from(timing.elections_start_before))
    });
    let now_unix = u64::try_from(now.timestamp()).unwrap_or(0);
    let open_for = now_unix.saturating_sub(opened_at);
    if open_for < grace.as_secs() && !election.finished {
        return Verdict::Unknown;
    }
    Verdict::Breach {
        severity: Severity::Warning,
        summary: format!(
            "{name}: no stake in election {} ({} participants, min stake {:.0} TON, closes at {}): not participating or the stake was not accepted",
            election.elect_at,
            election.participants.len(),
            ton(election.min_stake),
            format_unix(election.elect_close)
        ),
        evidence: serde_json::json!({
            "election_id": election.elect_at,
            "elect_close": election.elect_close,
            "min_stake_ton": ton(election.min_stake),
            "total_stake_ton": ton(election.total_stake),
            "participants": election.participants.len(),
            "open_for_seconds": open_for,
            "finished": election.finished,
        }),
    }
}

/// Elected or not: judged on config 36 (the next set, present between the end of an election
/// and the start of the round). `next_fetched` says config 36 was read (absent = no next set).
pub fn evaluate_elected(
    name: &str,
    keys: &BTreeSet<String>,
    next: Option<&ValidatorSet>,
    next_fetched: bool,
) -> Verdict {
    match next {
        Some(set) => match position(set, keys) {
            Some(at) => Verdict::Healthy {
                summary: format!(
                    "{name} is elected for the round from {} (rank {} of {}, {:.3}% of the weight)",
                    format_unix(u64::from(set.utime_since)),
                    at.rank,
                    at.set_size,
                    at.share_percent
                ),
                evidence: serde_json::json!({
                    "public_key": at.public_key,
                    "rank": at.rank,
                    "weight": at.weight,
                    "share_percent": at.share_percent,
                    "utime_since": set.utime_since,
                }),
            },
            None => Verdict::Breach {
                severity: Severity::Critical,
                summary: format!(
                    "{name} was not elected: absent from the next validator set (config 36, {} validators, from {})",
                    set.validators.len(),
                    format_unix(u64::from(set.utime_since))
                ),
                evidence: serde_json::json!({
                    "known_keys": keys,
                    "next_set_size": set.validators.len(),
                    "utime_since": set.utime_since,
                    "utime_until": set.utime_until,
                }),
            },
        },
        None if next_fetched => Verdict::Healthy {
            summary: format!("{name}: the elected round has started (no next set pending)"),
            evidence: serde_json::json!({ "next_set": null }),
        },
        None => Verdict::Unknown,
    }
}

/// One of this validator's stakes frozen in the elector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenStake {
    pub election_id: u64,
    pub public_key: String,
    pub stake_nanoton: u128,
    /// `bonuses * stake / total_stake`: the reward the elector pays with the stake.
    pub reward_nanoton: u128,
    pub unfreeze_at: u64,
    pub banned: bool,
    pub complaints: Option<usize>,
}

/// This validator's frozen stakes in `past` (by wallet or pool address).
pub fn own_frozen(past: &[PastElection], wallets: &BTreeSet<String>) -> Vec<FrozenStake> {
    let mut own = Vec::new();
    for election in past {
        let FrozenStakes::Decoded { stakes } = &election.frozen else {
            continue;
        };
        for frozen in stakes {
            if !wallets.contains(&frozen.address.to_ascii_lowercase()) {
                continue;
            }
            own.push(FrozenStake {
                election_id: election.election_id,
                public_key: frozen.public_key.clone(),
                stake_nanoton: frozen.stake,
                reward_nanoton: reward_share(election.bonuses, frozen.stake, election.total_stake),
                unfreeze_at: election.unfreeze_at,
                banned: frozen.banned,
                complaints: election.complaints,
            });
        }
    }
    own
}

/// The elector's split of an election's bonuses: proportional to the stake.
pub fn reward_share(bonuses: u128, stake: u128, total_stake: u128) -> u128 {
    if total_stake == 0 {
        return 0;
    }
    // u128 is wide enough: bonuses and stakes are below 2^64 nanotons on any real chain.
    bonuses.saturating_mul(stake) / total_stake
}

/// A stake the elector has let go since the last look: the reward it carried is earned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    pub election_id: u64,
    pub stake_nanoton: u128,
    pub reward_nanoton: u128,
    /// Frozen as a fine: the stake (or part of it) is not coming back, and there is no reward.
    pub banned: bool,
}

/// Last seen frozen stakes of a validator (state store), to notice when one is released.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StakeMemory {
    pub frozen: BTreeMap<u64, FrozenStake>,
}

impl StakeMemory {
    /// Compares with what `past_elections` shows now: stakes gone from it are settled.
    pub fn settle(&mut self, seen: &[FrozenStake]) -> Vec<Settled> {
        let seen_ids: BTreeSet<u64> = seen.iter().map(|stake| stake.election_id).collect();
        let gone: Vec<u64> = self
            .frozen
            .keys()
            .filter(|id| !seen_ids.contains(id))
            .copied()
            .collect();
        let mut settled = Vec::new();
        for id in gone {
            if let Some(stake) = self.frozen.remove(&id) {
                settled.push(Settled {
                    election_id: id,
                    stake_nanoton: stake.stake_nanoton,
                    reward_nanoton: if stake.banned {
                        0
                    } else {
                        stake.reward_nanoton
                    },
                    banned: stake.banned,
                });
            }
        }
        for stake in seen {
            self.frozen.insert(stake.election_id, stake.clone());
        }
        settled
    }
}

/// A stake still frozen `grace` after it was due back.
pub fn evaluate_stake_return(
    name: &str,
    frozen: Option<&[FrozenStake]>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Verdict {
    let Some(frozen) = frozen else {
        return Verdict::Unknown;
    };
    let now_unix = u64::try_from(now.timestamp()).unwrap_or(0);
    let overdue: Vec<&FrozenStake> = frozen
        .iter()
        .filter(|stake| {
            !stake.banned && stake.unfreeze_at.saturating_add(grace.as_secs()) < now_unix
        })
        .collect();
    match overdue.first() {
        Some(first) => Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: stake of {:.2} TON from election {} not returned; it was due at {}",
                ton(first.stake_nanoton),
                first.election_id,
                format_unix(first.unfreeze_at)
            ),
            evidence: serde_json::json!({ "overdue": overdue, "grace_seconds": grace.as_secs() }),
        },
        None => Verdict::Healthy {
            summary: format!("{name}: every stake due back has been returned"),
            evidence: serde_json::json!({ "frozen": frozen.len() }),
        },
    }
}

/// Stake the elector holds for the wallet to collect (`compute_returned_stake`): returned,
/// but not yet recovered with a recover-stake message.
pub fn evaluate_unrecovered(name: &str, returned_nanoton: Option<u128>) -> Verdict {
    match returned_nanoton {
        None => Verdict::Unknown,
        Some(0) => Verdict::Healthy {
            summary: format!("{name}: returned stake recovered to the wallet"),
            evidence: serde_json::json!({ "returned_ton": 0.0 }),
        },
        Some(amount) => Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: the elector holds {:.2} TON returned stake that the wallet has not recovered",
                ton(amount)
            ),
            evidence: serde_json::json!({ "returned_ton": ton(amount), "returned_nanoton": amount.to_string() }),
        },
    }
}

/// A complaint against one of the validator's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnComplaint {
    pub election_id: u64,
    /// The key or ADNL address the complaint names.
    pub against: String,
    pub suggested_fine_nanoton: u128,
    /// Accepted by the validators' vote (the fine is taken from the frozen stake).
    pub passed: bool,
    /// `elector` (`list_complaints`) or `elections_api`.
    pub source: String,
}

/// Complaints against this validator, and frozen stakes kept as a fine.
pub fn evaluate_complaints(
    name: &str,
    complaints: Option<&[OwnComplaint]>,
    frozen: Option<&[FrozenStake]>,
) -> Verdict {
    let (Some(complaints), Some(frozen)) = (complaints, frozen) else {
        return Verdict::Unknown;
    };
    let banned: Vec<&FrozenStake> = frozen.iter().filter(|stake| stake.banned).collect();
    if complaints.is_empty() && banned.is_empty() {
        return Verdict::Healthy {
            summary: format!("{name}: no open complaints or fines"),
            evidence: serde_json::json!({ "complaints": 0 }),
        };
    }
    let fine: u128 = complaints.iter().map(|c| c.suggested_fine_nanoton).sum();
    let passed = complaints.iter().filter(|c| c.passed).count();
    let summary = if let Some(first) = complaints.first() {
        format!(
            "{name}: {} complaint(s) in election {} ({} passed), suggested fine {:.2} TON{}",
            complaints.len(),
            first.election_id,
            passed,
            ton(fine),
            if banned.is_empty() {
                String::new()
            } else {
                format!(
                    "; stake of election {} frozen as a fine",
                    banned[0].election_id
                )
            }
        )
    } else {
        format!(
            "{name}: stake of election {} ({:.2} TON) frozen as a fine",
            banned[0].election_id,
            ton(banned[0].stake_nanoton)
        )
    };
    Verdict::Breach {
        severity: Severity::Critical,
        summary,
        evidence: serde_json::json!({
            "complaints": complaints,
            "suggested_fine_ton": ton(fine),
            "banned_stakes": banned,
        }),
    }
}

/// How far into its round the current set is, 0..=1.
pub fn round_fraction(set: &ValidatorSet, now: DateTime<Utc>) -> Option<f64> {
    let since = i64::from(set.utime_since);
    let until = i64::from(set.utime_until);
    (until > since)
        .then(|| ((now.timestamp() - since) as f64 / (until - since) as f64).clamp(0.0, 1.0))
}

/// Efficiency (percent, toncenter's QoS scoreboard) below `min_percent`, judged only once
/// `after_fraction` of the round has passed (it reads low early in a round, which is normal).
pub fn evaluate_efficiency(
    name: &str,
    efficiency_percent: Option<f64>,
    round_fraction: Option<f64>,
    min_percent: f64,
    after_fraction: f64,
) -> Verdict {
    let (Some(efficiency), Some(fraction)) = (
        efficiency_percent.filter(|value| value.is_finite()),
        round_fraction,
    ) else {
        return Verdict::Unknown;
    };
    let evidence = serde_json::json!({
        "efficiency_percent": efficiency,
        "min_percent": min_percent,
        "round_elapsed_percent": fraction * 100.0,
    });
    if efficiency >= min_percent {
        return Verdict::Healthy {
            summary: format!("{name}: efficiency {efficiency:.1}% (at least {min_percent}%)"),
            evidence,
        };
    }
    if fraction < after_fraction {
        return Verdict::Unknown;
    }
    Verdict::Breach {
        severity: Severity::Warning,
        summary: format!(
            "{name}: efficiency {efficiency:.1}% this round, below {min_percent}% with {:.0}% of the round gone",
            fraction * 100.0
        ),
        evidence,
    }
}

/// Blocks the node signed or created, as last seen, for the zero-blocks rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlocksMemory {
    pub total: Option<f64>,
    /// When `total` last grew (or was first seen).
    pub changed_at: Option<DateTime<Utc>>,
}

impl BlocksMemory {
    /// Notes the current total (collated + validated, master + shard).
    pub fn observe(&mut self, total: f64, now: DateTime<Utc>) {
        let grew = self
            .total
            .is_none_or(|previous| (total - previous).abs() > f64::EPSILON);
        if grew || self.changed_at.is_none() {
            self.changed_at = Some(now);
        }
        self.total = Some(total);
    }
}

/// No blocks created or validated for `window` while in the current set.
pub fn evaluate_zero_blocks(
    name: &str,
    in_set: Option<bool>,
    memory: &BlocksMemory,
    now: DateTime<Utc>,
    window: Duration,
) -> Verdict {
    let (Some(total), Some(changed_at)) = (memory.total, memory.changed_at) else {
        return Verdict::Unknown;
    };
    let idle = now
        .signed_duration_since(changed_at)
        .to_std()
        .unwrap_or_default();
    let evidence = serde_json::json!({
        "blocks_total": total,
        "last_change": changed_at,
        "idle_seconds": idle.as_secs(),
        "window_seconds": window.as_secs(),
    });
    match in_set {
        Some(true) if idle >= window => Verdict::Breach {
            severity: Severity::Critical,
            summary: format!(
                "{name}: no blocks created or validated for {} while in the validator set",
                humantime::format_duration(Duration::from_secs(idle.as_secs()))
            ),
            evidence,
        },
        Some(true) if idle < window => Verdict::Healthy {
            summary: format!("{name}: creating blocks again ({total:.0} in total)"),
            evidence,
        },
        Some(false) => Verdict::Healthy {
            summary: format!("{name}: left the validator set; blocks no longer expected"),
            evidence,
        },
        _ => Verdict::Unknown,
    }
}

/// Rank in the current set, per round, for the ranking-drop rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RankMemory {
    /// Round (`utime_since`) → rank.
    pub by_round: BTreeMap<u32, usize>,
}

impl RankMemory {
    /// Notes the rank for this round; keeps the last 8 rounds.
    pub fn observe(&mut self, round: u32, rank: usize) {
        self.by_round.insert(round, rank);
        while self.by_round.len() > 8 {
            self.by_round.pop_first();
        }
    }

    /// (previous round's rank, this round's rank) when both are known.
    pub fn last_two(&self) -> Option<(usize, usize)> {
        let mut newest = self.by_round.values().rev();
        let current = *newest.next()?;
        let previous = *newest.next()?;
        Some((previous, current))
    }
}

/// The rank fell by at least `places` since the previous round.
pub fn evaluate_rank(name: &str, ranks: Option<(usize, usize)>, places: u32) -> Verdict {
    let Some((previous, current)) = ranks else {
        return Verdict::Unknown;
    };
    let evidence =
        serde_json::json!({ "previous_rank": previous, "rank": current, "alert_places": places });
    let drop = current.saturating_sub(previous);
    if places > 0 && drop >= places as usize {
        Verdict::Breach {
            severity: Severity::Warning,
            summary: format!(
                "{name}: network rank fell from {previous} to {current} this round (stake or weight fell behind the others)"
            ),
            evidence,
        }
    } else {
        Verdict::Healthy {
            summary: format!("{name}: network rank {current} (was {previous})"),
            evidence,
        }
    }
}

/// The node runs an older release than the latest one.
pub fn evaluate_version(name: &str, running: Option<&str>, latest: Option<&str>) -> Verdict {
    let (Some(running), Some(latest)) = (running, latest) else {
        return Verdict::Unknown;
    };
    match tools::github::compare_versions(running, latest) {
        Ok(tools::github::VersionStanding::Behind { running, latest }) => Verdict::Breach {
            severity: Severity::Warning,
            summary: format!("{name}: runs {running}, behind the latest release {latest}"),
            evidence: serde_json::json!({ "running": running, "latest": latest }),
        },
        Ok(tools::github::VersionStanding::Unknown { running, reason }) => {
            tracing::debug!(validator = name, %running, %reason, "running version not comparable");
            Verdict::Unknown
        }
        Ok(_) => Verdict::Healthy {
            summary: format!("{name}: runs {running}, the latest release is {latest}"),
            evidence: serde_json::json!({ "running": running, "latest": latest }),
        },
        Err(_) => Verdict::Unknown,
    }
}

/// A pool's delegated stake as last seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelegationMemory {
    pub total_nanoton: Option<u128>,
    pub nominators: Option<usize>,
}

/// Delegated stake (nominators' amounts plus pending deposits) moved by at least
/// `threshold_percent` since the last poll: a notice that closes at the next poll without a
/// further move. Withdrawals warn; deposits inform.
pub fn evaluate_delegation(
    name: &str,
    previous: &DelegationMemory,
    total_nanoton: u128,
    nominators: usize,
    threshold_percent: f64,
) -> Verdict {
    let evidence = serde_json::json!({
        "delegated_ton": ton(total_nanoton),
        "previous_delegated_ton": previous.total_nanoton.map(ton),
        "nominators": nominators,
        "previous_nominators": previous.nominators,
        "threshold_percent": threshold_percent,
    });
    let Some(before) = previous.total_nanoton else {
        return Verdict::Healthy {
            summary: format!(
                "{name}: pool holds {:.2} TON from {nominators} nominators",
                ton(total_nanoton)
            ),
            evidence,
        };
    };
    let change = total_nanoton as f64 - before as f64;
    let percent = if before > 0 {
        change / before as f64 * 100.0
    } else if total_nanoton > 0 {
        100.0
    } else {
        0.0
    };
    if percent.abs() < threshold_percent {
        return Verdict::Healthy {
            summary: format!(
                "{name}: delegation steady at {:.2} TON from {nominators} nominators",
                ton(total_nanoton)
            ),
            evidence,
        };
    }
    Verdict::Breach {
        severity: if change < 0.0 {
            Severity::Warning
        } else {
            Severity::Info
        },
        summary: format!(
            "{name}: delegated stake {} by {:.2} TON ({percent:+.1}%) to {:.2} TON; nominators {} -> {nominators}",
            if change < 0.0 { "fell" } else { "rose" },
            change.abs() / NANOTON_PER_TON,
            ton(total_nanoton),
            previous
                .nominators
                .map_or_else(|| "?".to_owned(), |count| count.to_string()),
        ),
        evidence,
    }
}

/// Annual percentage yield of one round: `reward / stake` scaled to a year, not compounded.
pub fn apy_percent(reward_nanoton: u128, stake_nanoton: u128, round_seconds: u32) -> Option<f64> {
    (stake_nanoton > 0 && round_seconds > 0).then(|| {
        reward_nanoton as f64 / stake_nanoton as f64
            * (365.0 * 86_400.0 / f64::from(round_seconds))
            * 100.0
    })
}

/// Unix seconds as `2025-01-01 12:00 UTC`.
pub fn format_unix(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map_or_else(
            || unix.to_string(),
            |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

#[cfg(test)]
mod tests;

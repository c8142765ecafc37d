//! The sim's chain state for validator operators: config params 15, 17, 32/34/36 and the
//! elector's get-methods, built from the scenario's validators and its latest `election`
//! event, encoded with the same cell layouts `ton::config` / `ton::elector` decode.
//!
//! Routes: `GET /toncenter/api/v2/getConfigParam?config_id=N` and
//! `POST /toncenter/api/v2/runGetMethod` for the elector `-1:3333…3333` (`active_election_id`,
//! `participant_list(_extended)`, `past_elections`, `list_complaints(election_id)`,
//! `compute_returned_stake(account)`, arguments read from the request's legacy `stack`) and
//! the scenario's `[[pools]]` (`get_pool_data`, `list_nominators`; single nominator pools
//! `get_roles`). Any other address answers exit code -256 (no code).
//!
//! A validator's key is the one it has now (`sim_public_key_at`) in configs 34/36 and the
//! open election, and the one it had when the election event took effect in past elections
//! and complaints. A past election is listed until its `unfreeze_at`; from then on its
//! stakes (not banned ones) and bonus shares are credits (`compute_returned_stake`) until a
//! `stake_returned` event for the validator takes effect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use num_bigint::{BigInt, BigUint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::scenario::{SimEvent, SimService, SimValidator};
use super::server::serve;
use super::world::World;
use crate::ton::config::{
    ElectionTiming, StakeLimits, ValidatorDescr, ValidatorSet, encode_election_timing,
    encode_stake_limits, encode_validator_set,
};
use crate::ton::elector::{ELECTOR_ADDRESS, Frozen, encode_complaints, encode_frozen_dict};
use crate::ton::pool::address_slice_boc;
use crate::ton::stack::TvmValue;
use crate::toncenter::stack::{encode_legacy_stack, parse_legacy_stack};

const NANOTON_PER_TON: f64 = 1e9;
/// Mainnet values of config 15 and 17 (Oct 2023 snapshot), served as they are.
pub(crate) const SIM_TIMING: ElectionTiming = ElectionTiming {
    validators_elected_for: 65536,
    elections_start_before: 32768,
    elections_end_before: 8192,
    stake_held_for: 32768,
};
pub(crate) const SIM_STAKE_LIMITS: StakeLimits = StakeLimits {
    min_stake: 300_000_000_000_000,
    max_stake: 10_000_000_000_000_000,
    min_total_stake: 75_000_000_000_000_000,
    max_stake_factor: 196_608,
};

/// An election the elector runs from `at` on (the latest one due is served).
/// TOML: `[[events]] kind = "election" at = "0s" id = 1735700000 ...`.
///
/// A full cycle is a series of these events: an open election (`participants`), the same
/// election `finished` with the elected in `next_set`, then a later event whose
/// `current_set` is the elected and whose `past` holds the election with frozen stakes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimElection {
    #[serde(
        serialize_with = "serialize_offset",
        deserialize_with = "deserialize_offset"
    )]
    pub at: Duration,
    /// Election id = `elect_at` (unix time); 0 means no election is open.
    pub id: u64,
    /// Defaults to `id - elections_end_before`.
    #[serde(default)]
    pub elect_close: Option<u64>,
    #[serde(default = "default_min_stake_ton")]
    pub min_stake_ton: f64,
    /// Every participant's max factor (3.0 = the mainnet cap).
    #[serde(default = "default_max_factor")]
    pub max_factor: f64,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub failed: bool,
    /// Validator names taking part in the open election (`participant_list*`); every
    /// validator with a stake when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<String>>,
    /// Validator names in config 34 (the current set); every validator with a stake when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_set: Option<Vec<String>>,
    /// Serve config 32 (previous set: every validator with a stake); otherwise absent.
    #[serde(default)]
    pub previous_set: bool,
    /// Config 36 (the next set): `true` serves every validator with a stake (the old
    /// meaning), `false` or absent serves none, a list of validator names serves those
    /// (the elected of a finished election).
    #[serde(default)]
    pub next_set: NextSet,
    /// Elections whose stakes are still frozen, newest first.
    #[serde(default)]
    pub past: Vec<SimPastElection>,
}

/// Config 36 in a [`SimElection`]: TOML `next_set = true` or `next_set = ["v1", "v2"]`.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum NextSet {
    /// `false`: config 36 is absent.
    #[default]
    Absent,
    /// `true`: every validator with a stake.
    AllStakers,
    /// These validator names.
    Members(Vec<String>),
}

impl Serialize for NextSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Absent => serializer.serialize_bool(false),
            Self::AllStakers => serializer.serialize_bool(true),
            Self::Members(names) => names.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for NextSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NextSetVisitor;

        impl<'de> serde::de::Visitor<'de> for NextSetVisitor {
            type Value = NextSet;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(
                    "true (every validator with a stake), false (no config 36) or a list of validator names",
                )
            }

            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<NextSet, E> {
                Ok(if value {
                    NextSet::AllStakers
                } else {
                    NextSet::Absent
                })
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NextSet, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(NextSet::Members(names))
            }
        }

        deserializer.deserialize_any(NextSetVisitor)
    }
}

/// A past election in a [`SimElection`]: listed by `past_elections` until `unfreeze_at`,
/// then unfrozen (gone from the list, its stakes credited: `compute_returned_stake`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimPastElection {
    pub election_id: u64,
    #[serde(default)]
    pub bonuses_ton: f64,
    /// Complaints against no scenario validator (made-up public keys), on top of
    /// `complaints_against`.
    #[serde(default)]
    pub complaints: u32,
    /// Names of validators whose frozen stake is banned (fined): not credited on unfreeze,
    /// and complaints against them are shown as passed.
    #[serde(default)]
    pub banned: Vec<String>,
    /// Names of validators whose stake is frozen in it; every validator with a stake when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stakes: Option<Vec<String>>,
    /// Unix time; defaults to `election_id + validators_elected_for + stake_held_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfreeze_at: Option<u64>,
    /// Names of validators with one complaint each (`list_complaints(election_id)`),
    /// created when this event takes effect.
    #[serde(default)]
    pub complaints_against: Vec<String>,
    /// The fine each complaint suggests.
    #[serde(default = "default_suggested_fine_ton")]
    pub suggested_fine_ton: f64,
}

fn default_suggested_fine_ton() -> f64 {
    101.0
}

/// A nominator pool the sim answers get-methods for. TOML:
/// `[[pools]] name = "pool-a" address = "-1:…" kind = "nominator" validator = "v1"` with
/// `[[pools.nominators]] address = "0:…" amount_ton = 20000.0`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimPool {
    pub name: String,
    /// The pool contract (masterchain, any address form).
    pub address: String,
    #[serde(default)]
    pub kind: SimPoolKind,
    /// The `[[validators]]` name that validates with it.
    pub validator: String,
    /// Single nominator pools: the owner's wallet; a made-up basechain address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The validator's own TON in the pool.
    #[serde(default)]
    pub validator_amount_ton: f64,
    /// The validator's share of rewards in percent.
    #[serde(default = "default_reward_share_percent")]
    pub validator_reward_share_percent: f64,
    #[serde(default = "default_max_nominators")]
    pub max_nominators: u32,
    #[serde(default = "default_min_pool_stake_ton")]
    pub min_validator_stake_ton: f64,
    #[serde(default = "default_min_pool_stake_ton")]
    pub min_nominator_stake_ton: f64,
    /// Nominators at the start; `delegation_change` events move them.
    #[serde(default)]
    pub nominators: Vec<SimNominator>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SimPoolKind {
    /// ton-blockchain/nominator-pool: `get_pool_data`, `list_nominators`.
    #[default]
    Nominator,
    /// The single nominator pool: `get_roles`.
    SingleNominator,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimNominator {
    /// Basechain wallet, any address form.
    pub address: String,
    pub amount_ton: f64,
    /// Deposited, joins the stake next round.
    #[serde(default)]
    pub pending_deposit_ton: f64,
    #[serde(default)]
    pub withdraw_requested: bool,
}

fn default_reward_share_percent() -> f64 {
    40.0
}

fn default_max_nominators() -> u32 {
    40
}

fn default_min_pool_stake_ton() -> f64 {
    10_000.0
}

fn serialize_offset<S: serde::Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&super::scenario::format_offset(*at))
}

fn deserialize_offset<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    super::scenario::parse_sim_offset(&text).map_err(serde::de::Error::custom)
}

fn default_min_stake_ton() -> f64 {
    10_000.0
}

fn default_max_factor() -> f64 {
    3.0
}

impl SimElection {
    /// Problems as (key path, message); `index` is the event's index.
    pub(crate) fn problems(
        &self,
        index: usize,
        validators: &[SimValidator],
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check_names = |path: String, names: &[String]| {
            for name in names {
                if !validators.iter().any(|validator| &validator.name == name) {
                    problems.push((
                        path.clone(),
                        format!("unknown validator name {name:?}; use a [[validators]] name"),
                    ));
                }
            }
        };
        if let Some(names) = &self.participants {
            check_names(format!("events[{index}].participants"), names);
        }
        if let Some(names) = &self.current_set {
            check_names(format!("events[{index}].current_set"), names);
        }
        if let NextSet::Members(names) = &self.next_set {
            check_names(format!("events[{index}].next_set"), names);
        }
        for (past_index, past) in self.past.iter().enumerate() {
            let path = |field: &str| format!("events[{index}].past[{past_index}].{field}");
            check_names(path("banned"), &past.banned);
            check_names(path("complaints_against"), &past.complaints_against);
            if let Some(names) = &past.stakes {
                check_names(path("stakes"), names);
            }
        }
        if !(self.min_stake_ton.is_finite() && self.min_stake_ton >= 0.0) {
            problems.push((
                format!("events[{index}].min_stake_ton"),
                format!("min_stake_ton must be >= 0, got {}", self.min_stake_ton),
            ));
        }
        if !(self.max_factor.is_finite() && (1.0..=100.0).contains(&self.max_factor)) {
            problems.push((
                format!("events[{index}].max_factor"),
                format!("max_factor must be 1..=100, got {}", self.max_factor),
            ));
        }
        for (past_index, past) in self.past.iter().enumerate() {
            for (field, value) in [
                ("bonuses_ton", past.bonuses_ton),
                ("suggested_fine_ton", past.suggested_fine_ton),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    problems.push((
                        format!("events[{index}].past[{past_index}].{field}"),
                        format!("{field} must be >= 0, got {value}"),
                    ));
                }
            }
        }
        problems
    }
}

/// The raw address of a nominator's wallet, which must be in the basechain.
pub(crate) fn nominator_account(address: &str) -> Result<String, String> {
    match crate::ton::parse_address(address) {
        Ok(parsed) if parsed.raw.starts_with("0:") => Ok(parsed.raw),
        Ok(parsed) => Err(format!(
            "nominator {address:?} is in workchain {}; nominators are basechain (0:…) wallets",
            parsed.raw.split(':').next().unwrap_or_default()
        )),
        Err(error) => Err(error.to_string()),
    }
}

/// Problems of the `[[pools]]` tables as (key path, message).
pub(crate) fn pool_problems(
    pools: &[SimPool],
    validators: &[SimValidator],
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let mut addresses = std::collections::BTreeSet::new();
    for (index, pool) in pools.iter().enumerate() {
        let path = |field: &str| format!("pools[{index}].{field}");
        if pool.name.trim().is_empty() {
            problems.push((path("name"), "pool name is empty".to_owned()));
        } else if !names.insert(pool.name.as_str()) {
            problems.push((path("name"), format!("duplicate pool name {:?}", pool.name)));
        }
        match crate::ton::parse_address(&pool.address) {
            Ok(parsed) if parsed.raw == ELECTOR_ADDRESS => problems.push((
                path("address"),
                "a pool cannot be at the elector's address".to_owned(),
            )),
            Ok(parsed) => {
                if !addresses.insert(parsed.raw) {
                    problems.push((
                        path("address"),
                        format!("duplicate pool address {:?}", pool.address),
                    ));
                }
            }
            Err(error) => problems.push((path("address"), error.to_string())),
        }
        if !validators
            .iter()
            .any(|validator| validator.name == pool.validator)
        {
            problems.push((
                path("validator"),
                format!(
                    "unknown validator name {:?}; use a [[validators]] name",
                    pool.validator
                ),
            ));
        }
        if let Some(owner) = &pool.owner
            && let Err(error) = crate::ton::parse_address(owner)
        {
            problems.push((path("owner"), error.to_string()));
        }
        for (field, value) in [
            ("validator_amount_ton", pool.validator_amount_ton),
            ("min_validator_stake_ton", pool.min_validator_stake_ton),
            ("min_nominator_stake_ton", pool.min_nominator_stake_ton),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((path(field), format!("{field} must be >= 0, got {value}")));
            }
        }
        let share = pool.validator_reward_share_percent;
        if !(share.is_finite() && (0.0..=100.0).contains(&share)) {
            problems.push((
                path("validator_reward_share_percent"),
                format!("validator_reward_share_percent must be 0..=100, got {share}"),
            ));
        }
        for (nominator_index, nominator) in pool.nominators.iter().enumerate() {
            let path =
                |field: &str| format!("pools[{index}].nominators[{nominator_index}].{field}");
            if let Err(message) = nominator_account(&nominator.address) {
                problems.push((path("address"), message));
            }
            for (field, value) in [
                ("amount_ton", nominator.amount_ton),
                ("pending_deposit_ton", nominator.pending_deposit_ton),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    problems.push((path(field), format!("{field} must be >= 0, got {value}")));
                }
            }
        }
    }
    problems
}

pub(crate) fn nanoton(ton: f64) -> u128 {
    (ton * NANOTON_PER_TON).round().max(0.0) as u128
}

/// 32 deterministic bytes for a sim identity (public key, ADNL, hash), as 64 hex.
pub(crate) fn derived_hex(seed: &str, salt: &str) -> String {
    let mut state = 0xcbf2_9ce4_8422_2325u64;
    for byte in seed.bytes().chain(salt.bytes()) {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    crate::ton::config::to_hex(&bytes)
}

/// Whether the validator has rotated its keys by sim offset `at`.
fn rotated(validator: &SimValidator, at: Duration) -> bool {
    validator.rotate_keys_at.is_some_and(|rotate| at >= rotate)
}

/// The validator's public key in the sim at the start (derived from its address).
pub fn sim_public_key(validator: &SimValidator) -> String {
    derived_hex(&validator.address, "public_key")
}

/// The validator's ADNL address in the sim at the start (derived from its address).
pub fn sim_adnl(validator: &SimValidator) -> String {
    derived_hex(&validator.address, "adnl")
}

/// The validator's public key at sim offset `at`: [`sim_public_key`] until its
/// `rotate_keys_at`, another derived key from then on.
pub fn sim_public_key_at(validator: &SimValidator, at: Duration) -> String {
    if rotated(validator, at) {
        derived_hex(&validator.address, "public_key2")
    } else {
        sim_public_key(validator)
    }
}

/// The validator's ADNL address at sim offset `at` (changes with its keys).
pub fn sim_adnl_at(validator: &SimValidator, at: Duration) -> String {
    if rotated(validator, at) {
        derived_hex(&validator.address, "adnl2")
    } else {
        sim_adnl(validator)
    }
}

/// The 256-bit account part of the validator's wallet address.
pub(crate) fn account_hex(validator: &SimValidator) -> String {
    crate::ton::parse_address(&validator.address)
        .ok()
        .and_then(|parsed| parsed.raw.split_once(':').map(|(_, hex)| hex.to_owned()))
        .unwrap_or_else(|| derived_hex(&validator.address, "wallet"))
}

fn hex_number(hex: &str) -> TvmValue {
    let bytes = crate::ton::config::from_hex(hex).unwrap_or_default();
    TvmValue::Number(BigInt::from(BigUint::from_bytes_be(&bytes)))
}

pub(crate) fn stakers(world: &World) -> Vec<&SimValidator> {
    world
        .scenario
        .validators
        .iter()
        .filter(|validator| validator.stake_ton > 0.0)
        .collect()
}

/// The validators named in `names` (scenario order), or every staker when `None`.
pub(crate) fn members<'w>(world: &'w World, names: Option<&[String]>) -> Vec<&'w SimValidator> {
    match names {
        None => stakers(world),
        Some(names) => world
            .scenario
            .validators
            .iter()
            .filter(|validator| names.contains(&validator.name))
            .collect(),
    }
}

/// Weight: the stake in micro-TON, so ratios match stakes.
pub(crate) fn weight(validator: &SimValidator) -> u64 {
    (validator.stake_ton * 1e3).round().max(0.0) as u64
}

/// The latest election event due at sim offset `t`.
pub(crate) fn current_election(world: &World, t: f64) -> Option<&SimElection> {
    world
        .scenario
        .events
        .iter()
        .filter_map(|event| match event {
            SimEvent::Election(election) if election.at.as_secs_f64() <= t => Some(election),
            _ => None,
        })
        .max_by(|a, b| a.at.cmp(&b.at))
}

/// A sim offset in seconds as a `Duration` (negative and non-finite offsets are 0).
pub(crate) fn offset(t: f64) -> Duration {
    Duration::try_from_secs_f64(t.max(0.0)).unwrap_or_default()
}

fn validator_set(members: &[&SimValidator], utime_since: u32, at: Duration) -> ValidatorSet {
    let validators: Vec<ValidatorDescr> = members
        .iter()
        .map(|validator| ValidatorDescr {
            public_key: sim_public_key_at(validator, at),
            weight: weight(validator),
            adnl_address: Some(sim_adnl_at(validator, at)),
        })
        .collect();
    let total = u16::try_from(validators.len()).unwrap_or(u16::MAX);
    ValidatorSet {
        utime_since,
        utime_until: utime_since.saturating_add(SIM_TIMING.validators_elected_for),
        total,
        main: total.min(100),
        total_weight: validators.iter().map(|v| v.weight).sum(),
        validators,
    }
}

/// The BOC of config param `param` now, or `None` when absent.
pub(crate) fn config_param_boc(world: &World, param: u32) -> Result<Option<String>, String> {
    let t = world.elapsed_seconds();
    let now = u32::try_from(world.time_at(t).timestamp()).unwrap_or(0);
    let election = current_election(world, t);
    let round = SIM_TIMING.validators_elected_for;
    // The current round started when the open election's predecessor took effect.
    let current_since = match election {
        Some(election) if election.id > 0 => u32::try_from(election.id)
            .unwrap_or(now)
            .saturating_sub(round),
        _ => now.saturating_sub(round / 2),
    };
    let at = offset(t);
    let current = members(world, election.and_then(|e| e.current_set.as_deref()));
    let next = match election.map(|e| &e.next_set) {
        None | Some(NextSet::Absent) => None,
        Some(NextSet::AllStakers) => Some(stakers(world)),
        Some(NextSet::Members(names)) => Some(members(world, Some(names))),
    };
    let encoded = match (param, next) {
        (15, _) => encode_election_timing(&SIM_TIMING).map(Some),
        (17, _) => encode_stake_limits(&SIM_STAKE_LIMITS).map(Some),
        (34, _) => encode_validator_set(&validator_set(&current, current_since, at)).map(Some),
        (32, _) if election.is_some_and(|e| e.previous_set) => encode_validator_set(
            &validator_set(&stakers(world), current_since.saturating_sub(round), at),
        )
        .map(Some),
        (36, Some(next)) => encode_validator_set(&validator_set(
            &next,
            current_since.saturating_add(round),
            at,
        ))
        .map(Some),
        _ => Ok(None),
    };
    encoded.map_err(|error| error.to_string())
}

impl SimPastElection {
    /// Unix time the elector unfreezes it.
    pub(crate) fn unfreeze_time(&self) -> u64 {
        self.unfreeze_at.unwrap_or(
            self.election_id
                + u64::from(SIM_TIMING.validators_elected_for)
                + u64::from(SIM_TIMING.stake_held_for),
        )
    }
}

/// What a past election froze: per validator (stake, banned), and the total.
pub(crate) fn frozen_members<'w>(
    world: &'w World,
    past: &SimPastElection,
) -> (Vec<(&'w SimValidator, u128, bool)>, u128) {
    let frozen: Vec<(&SimValidator, u128, bool)> = members(world, past.stakes.as_deref())
        .into_iter()
        .map(|validator| {
            (
                validator,
                nanoton(validator.stake_ton),
                past.banned.contains(&validator.name),
            )
        })
        .collect();
    let total = frozen.iter().map(|(_, stake, _)| stake).sum();
    (frozen, total)
}

/// `compute_returned_stake` for the wallet with this 256-bit account id (64 hex): the
/// stakes (plus their bonus share, `bonuses * stake / total_stake`) of every past election
/// of the current `election` event that is unfrozen by now and not banned, unless a
/// `stake_returned` event for that validator took effect at or after the unfreeze.
fn returned_stake(world: &World, t: f64, account: &str) -> u128 {
    let Some(election) = current_election(world, t) else {
        return 0;
    };
    let now = u64::try_from(world.time_at(t).timestamp()).unwrap_or(0);
    let mut credit = 0u128;
    for past in &election.past {
        let unfreeze = past.unfreeze_time();
        if unfreeze > now {
            continue;
        }
        let (frozen, total) = frozen_members(world, past);
        for (validator, stake, banned) in frozen {
            if banned || account_hex(validator) != account {
                continue;
            }
            let withdrawn = world.scenario.events.iter().any(|event| {
                matches!(event, SimEvent::StakeReturned { at, validator: name, .. }
                    if *name == validator.name
                        && at.as_secs_f64() <= t
                        && u64::try_from(world.time_at(at.as_secs_f64()).timestamp())
                            .unwrap_or(0)
                            >= unfreeze)
            });
            if withdrawn {
                continue;
            }
            let bonus = if total == 0 {
                0
            } else {
                let share = BigUint::from(nanoton(past.bonuses_ton)) * BigUint::from(stake)
                    / BigUint::from(total);
                u128::try_from(share).unwrap_or(0)
            };
            credit = credit.saturating_add(stake).saturating_add(bonus);
        }
    }
    credit
}

/// `list_complaints(election_id)`: one complaint per `complaints_against` name (with the
/// key the validator had when the election event took effect) and `complaints` more
/// against made-up keys, as elector-code.fc lists them: `[chash, [complaint, voters,
/// vset_id, weight_remaining]]`. A complaint against a `banned` validator has passed
/// (weight_remaining < 0); the others wait for votes.
pub(crate) fn complaints_stack(
    world: &World,
    t: f64,
    election_id: u64,
) -> Result<Vec<TvmValue>, String> {
    let Some(election) = current_election(world, t) else {
        return Ok(vec![TvmValue::List(Vec::new())]);
    };
    let now = u64::try_from(world.time_at(t).timestamp()).unwrap_or(0);
    let Some(past) = election
        .past
        .iter()
        .find(|past| past.election_id == election_id && past.unfreeze_time() > now)
    else {
        return Ok(vec![TvmValue::List(Vec::new())]);
    };
    let created_at = world.time_at(election.at.as_secs_f64()).timestamp();
    let description = crate::ton::config::empty_cell_boc().map_err(|error| error.to_string())?;
    let (frozen, _) = frozen_members(world, past);
    let total_weight: u64 = frozen
        .iter()
        .map(|(validator, _, _)| weight(validator))
        .sum();
    let needed = i64::try_from(total_weight * 2 / 3).unwrap_or(i64::MAX);
    let vset_id = derived_hex(&past.election_id.to_string(), "vset_hash");
    let named = past.complaints_against.iter().filter_map(|name| {
        let validator = world.scenario.validators.iter().find(|v| &v.name == name)?;
        Some((
            sim_public_key_at(validator, election.at),
            past.banned.contains(name),
        ))
    });
    let anonymous = (0..past.complaints).map(|index| {
        (
            derived_hex(&format!("{}/{index}", past.election_id), "accused"),
            false,
        )
    });
    let entries = named
        .chain(anonymous)
        .enumerate()
        .map(|(index, (public_key, passed))| {
            let complaint = TvmValue::Tuple(vec![
                hex_number(&public_key),
                TvmValue::Cell(description.clone()),
                TvmValue::number(created_at),
                TvmValue::number(1),
                hex_number(&derived_hex(&public_key, "reward_addr")),
                TvmValue::number(nanoton(past.suggested_fine_ton) / 10),
                TvmValue::number(nanoton(past.suggested_fine_ton)),
                TvmValue::number(0),
            ]);
            let (voters, weight_remaining) = if passed {
                (vec![TvmValue::number(0)], -1)
            } else {
                (Vec::new(), needed)
            };
            TvmValue::Tuple(vec![
                hex_number(&derived_hex(
                    &format!("{}/{index}/{public_key}", past.election_id),
                    "complaint",
                )),
                TvmValue::Tuple(vec![
                    complaint,
                    TvmValue::List(voters),
                    hex_number(&vset_id),
                    TvmValue::number(weight_remaining),
                ]),
            ])
        })
        .collect();
    Ok(vec![TvmValue::List(entries)])
}

/// Why an elector get-method cannot answer: no such method (TVM exit code 11) or a missing
/// or wrong argument (exit code 2 / 7).
#[derive(Debug, PartialEq)]
pub(crate) enum GetMethodFailure {
    ExitCode(i64),
    Internal(String),
}

/// Argument `index` (from the top of the argument stack) as a number.
fn number_argument(args: &[TvmValue], index: usize) -> Result<&BigInt, GetMethodFailure> {
    match args.iter().rev().nth(index) {
        Some(TvmValue::Number(number)) => Ok(number),
        Some(_) => Err(GetMethodFailure::ExitCode(7)),
        None => Err(GetMethodFailure::ExitCode(2)),
    }
}

/// The result stack of an elector get-method now.
pub(crate) fn elector_stack(
    world: &World,
    method: &str,
    args: &[TvmValue],
) -> Result<Vec<TvmValue>, GetMethodFailure> {
    let t = world.elapsed_seconds();
    let at = offset(t);
    let election = current_election(world, t);
    let open = election.filter(|election| election.id > 0);
    let participants: Vec<&SimValidator> = match open {
        Some(election) => members(world, election.participants.as_deref()),
        None => Vec::new(),
    };
    let stake = |validator: &SimValidator| TvmValue::number(nanoton(validator.stake_ton));
    let internal = |error: crate::ton::TonError| GetMethodFailure::Internal(error.to_string());
    match method {
        "active_election_id" => Ok(vec![TvmValue::number(open.map_or(0, |e| e.id))]),
        "participant_list" => Ok(vec![TvmValue::List(
            participants
                .iter()
                .map(|validator| {
                    TvmValue::Tuple(vec![
                        hex_number(&sim_public_key_at(validator, at)),
                        stake(validator),
                    ])
                })
                .collect(),
        )]),
        "participant_list_extended" => {
            let Some(election) = open else {
                // No election: the elector returns zeros and a null list.
                return Ok(vec![
                    TvmValue::number(0),
                    TvmValue::number(0),
                    TvmValue::number(0),
                    TvmValue::number(0),
                    TvmValue::List(Vec::new()),
                    TvmValue::number(0),
                    TvmValue::number(0),
                ]);
            };
            let max_factor = (election.max_factor * 65536.0).round() as u64;
            let total: u128 = participants.iter().map(|v| nanoton(v.stake_ton)).sum();
            let elect_close = election.elect_close.unwrap_or(
                election
                    .id
                    .saturating_sub(u64::from(SIM_TIMING.elections_end_before)),
            );
            let flag = |on: bool| TvmValue::number(if on { -1 } else { 0 });
            Ok(vec![
                TvmValue::number(election.id),
                TvmValue::number(elect_close),
                TvmValue::number(nanoton(election.min_stake_ton)),
                TvmValue::number(total),
                TvmValue::List(
                    participants
                        .iter()
                        .map(|validator| {
                            TvmValue::Tuple(vec![
                                hex_number(&sim_public_key_at(validator, at)),
                                TvmValue::Tuple(vec![
                                    stake(validator),
                                    TvmValue::number(max_factor),
                                    hex_number(&account_hex(validator)),
                                    hex_number(&sim_adnl_at(validator, at)),
                                ]),
                            ])
                        })
                        .collect(),
                ),
                flag(election.failed),
                flag(election.finished),
            ])
        }
        "past_elections" => {
            let now = u64::try_from(world.time_at(t).timestamp()).unwrap_or(0);
            let mut entries = Vec::new();
            for past in election.map(|e| e.past.as_slice()).unwrap_or_default() {
                // Unfrozen: the elector moved the stakes to its credits and dropped it.
                if past.unfreeze_time() <= now {
                    continue;
                }
                let keys_at = election.map_or(Duration::ZERO, |e| e.at);
                let (members, total) = frozen_members(world, past);
                let frozen: Vec<Frozen> = members
                    .into_iter()
                    .map(|(validator, stake, banned)| Frozen {
                        public_key: sim_public_key_at(validator, keys_at),
                        address: format!("-1:{}", account_hex(validator)),
                        weight: weight(validator),
                        stake,
                        banned,
                    })
                    .collect();
                let dict =
                    |boc: Option<String>| boc.map_or(TvmValue::List(Vec::new()), TvmValue::Cell);
                let frozen_dict = encode_frozen_dict(&frozen).map_err(internal)?;
                let count = past.complaints as usize + past.complaints_against.len();
                let complaints = encode_complaints(count, past.election_id).map_err(internal)?;
                entries.push(TvmValue::Tuple(vec![
                    TvmValue::number(past.election_id),
                    TvmValue::number(past.unfreeze_time()),
                    TvmValue::number(SIM_TIMING.stake_held_for),
                    hex_number(&derived_hex(&past.election_id.to_string(), "vset_hash")),
                    dict(frozen_dict),
                    TvmValue::number(total),
                    TvmValue::number(nanoton(past.bonuses_ton)),
                    dict(complaints),
                ]));
            }
            Ok(vec![TvmValue::List(entries)])
        }
        "list_complaints" => {
            let election_id = u64::try_from(number_argument(args, 0)?).unwrap_or(0);
            complaints_stack(world, t, election_id).map_err(GetMethodFailure::Internal)
        }
        "compute_returned_stake" => {
            let account = number_argument(args, 0)?;
            let (sign, bytes) = account.to_bytes_be();
            if sign == num_bigint::Sign::Minus || bytes.len() > 32 {
                return Ok(vec![TvmValue::number(0)]);
            }
            let mut padded = vec![0u8; 32 - bytes.len()];
            padded.extend_from_slice(&bytes);
            let account = crate::ton::config::to_hex(&padded);
            Ok(vec![TvmValue::number(returned_stake(world, t, &account))])
        }
        _ => Err(GetMethodFailure::ExitCode(11)),
    }
}

/// Nanotons of each nominator of `pool` at sim offset `t`: the start amounts moved by every
/// due `delegation_change`, by raw address; (amount, pending deposit, withdraw requested).
fn nominators_at(world: &World, pool: &SimPool, t: f64) -> Vec<(String, u128, u128, bool)> {
    let mut nominators: Vec<(String, i128, u128, bool)> = pool
        .nominators
        .iter()
        .filter_map(|nominator| {
            let raw = nominator_account(&nominator.address).ok()?;
            Some((
                raw,
                i128::try_from(nanoton(nominator.amount_ton)).unwrap_or(i128::MAX),
                nanoton(nominator.pending_deposit_ton),
                nominator.withdraw_requested,
            ))
        })
        .collect();
    for event in &world.scenario.events {
        let SimEvent::DelegationChange {
            at,
            pool: name,
            nominator,
            delta_ton,
        } = event
        else {
            continue;
        };
        if *name != pool.name || at.as_secs_f64() > t {
            continue;
        }
        let Ok(raw) = nominator_account(nominator) else {
            continue;
        };
        let delta = (delta_ton * NANOTON_PER_TON).round() as i128;
        match nominators.iter_mut().find(|(address, ..)| *address == raw) {
            Some(entry) => entry.1 = entry.1.saturating_add(delta),
            None => nominators.push((raw, delta, 0, false)),
        }
    }
    nominators
        .into_iter()
        .filter(|(_, amount, pending, _)| *amount > 0 || *pending > 0)
        .map(|(address, amount, pending, withdraw)| {
            (
                address,
                u128::try_from(amount.max(0)).unwrap_or(0),
                pending,
                withdraw,
            )
        })
        .collect()
}

/// The result stack of a pool get-method now.
fn pool_stack(
    world: &World,
    pool: &SimPool,
    method: &str,
) -> Result<Vec<TvmValue>, GetMethodFailure> {
    let t = world.elapsed_seconds();
    let internal = |error: crate::ton::TonError| GetMethodFailure::Internal(error.to_string());
    let validator = world
        .scenario
        .validators
        .iter()
        .find(|validator| validator.name == pool.validator);
    let null = || TvmValue::List(Vec::new());
    match (pool.kind, method) {
        (SimPoolKind::Nominator, "get_pool_data") => {
            let nominators = nominators_at(world, pool, t);
            let sent = validator.map_or(0, |validator| nanoton(validator.stake_ton));
            let stake_at = current_election(world, t).map_or(0, |election| election.id);
            let validator_hex =
                validator.map_or_else(|| derived_hex(&pool.address, "validator"), account_hex);
            Ok(vec![
                TvmValue::number(if sent > 0 { 2 } else { 0 }),
                TvmValue::number(nominators.len()),
                TvmValue::number(sent),
                TvmValue::number(nanoton(pool.validator_amount_ton)),
                hex_number(&validator_hex),
                TvmValue::number((pool.validator_reward_share_percent * 100.0).round() as u64),
                TvmValue::number(pool.max_nominators),
                TvmValue::number(nanoton(pool.min_validator_stake_ton)),
                TvmValue::number(nanoton(pool.min_nominator_stake_ton)),
                null(),
                null(),
                TvmValue::number(stake_at),
                hex_number(&derived_hex(&stake_at.to_string(), "vset_hash")),
                TvmValue::number(0),
                TvmValue::number(0),
                TvmValue::number(SIM_TIMING.stake_held_for),
                null(),
            ])
        }
        (SimPoolKind::Nominator, "list_nominators") => Ok(vec![TvmValue::List(
            nominators_at(world, pool, t)
                .into_iter()
                .map(|(address, amount, pending, withdraw)| {
                    let hex = address.split_once(':').map_or("", |(_, hex)| hex);
                    TvmValue::Tuple(vec![
                        hex_number(hex),
                        TvmValue::number(amount),
                        TvmValue::number(pending),
                        TvmValue::number(if withdraw { -1 } else { 0 }),
                    ])
                })
                .collect(),
        )]),
        (SimPoolKind::SingleNominator, "get_roles") => {
            let owner = pool
                .owner
                .clone()
                .unwrap_or_else(|| format!("0:{}", derived_hex(&pool.address, "owner")));
            let validator_address = validator.map_or_else(
                || format!("-1:{}", derived_hex(&pool.address, "validator")),
                |validator| format!("-1:{}", account_hex(validator)),
            );
            Ok(vec![
                TvmValue::Slice(address_slice_boc(&owner).map_err(internal)?),
                TvmValue::Slice(address_slice_boc(&validator_address).map_err(internal)?),
            ])
        }
        _ => Err(GetMethodFailure::ExitCode(11)),
    }
}

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/toncenter/api/v2/getConfigParam", get(get_config_param))
        .route("/toncenter/api/v2/runGetMethod", post(run_get_method))
}

fn ok(result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"ok": false, "error": message, "code": status.as_u16()}),
    )
}

async fn get_config_param(
    State(world): State<Arc<World>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Toncenter, "getConfigParam", || {
        let Some(param) = params
            .get("config_id")
            .and_then(|id| id.parse::<u32>().ok())
        else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "config_id: expected an integer",
            );
        };
        match config_param_boc(&world, param) {
            // An absent param comes back as an empty cell.
            Ok(boc) => match boc.map_or_else(crate::ton::config::empty_cell_boc, Ok) {
                Ok(bytes) => ok(json!({
                    "@type": "configInfo",
                    "config": {"@type": "tvm.cell", "bytes": bytes},
                })),
                Err(problem) => error(StatusCode::INTERNAL_SERVER_ERROR, &problem.to_string()),
            },
            Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        }
    })
    .await
}

#[derive(Deserialize)]
struct RunGetMethodRequest {
    address: String,
    method: String,
    /// Arguments in toncenter's legacy encoding (`[["num", "0x…"]]`).
    #[serde(default)]
    stack: Value,
}

async fn run_get_method(State(world): State<Arc<World>>, body: Bytes) -> Response {
    serve(&world, SimService::Toncenter, "runGetMethod", || {
        let request: RunGetMethodRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(problem) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("body: expected {{\"address\", \"method\", \"stack\"}}: {problem}"),
                );
            }
        };
        let args = if request.stack.is_null() {
            Vec::new()
        } else {
            match parse_legacy_stack("stack", &request.stack) {
                Ok(args) => args,
                Err(problem) => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!("stack: expected [[\"num\", \"0x…\"], …]: {problem}"),
                    );
                }
            }
        };
        let raw = crate::ton::parse_address(&request.address)
            .map(|parsed| parsed.raw)
            .ok();
        let run = |exit_code: i64, stack: Value| {
            ok(json!({"@type": "smc.runResult", "gas_used": 0, "stack": stack, "exit_code": exit_code}))
        };
        let pool = world.scenario.pools.iter().find(|pool| {
            crate::ton::parse_address(&pool.address).is_ok_and(|parsed| Some(parsed.raw) == raw)
        });
        let result = if raw.as_deref() == Some(ELECTOR_ADDRESS) {
            elector_stack(&world, &request.method, &args)
        } else if let Some(pool) = pool {
            pool_stack(&world, pool, &request.method)
        } else {
            // The sim runs no other contract: as if the account had no code.
            return run(-256, json!([]));
        };
        match result {
            Ok(stack) => run(0, encode_legacy_stack(&stack)),
            // An unknown method throws 11 and a missing argument 2, as on chain.
            Err(GetMethodFailure::ExitCode(code)) => run(code, json!([])),
            Err(GetMethodFailure::Internal(message)) => {
                error(StatusCode::INTERNAL_SERVER_ERROR, &message)
            }
        }
    })
    .await
}

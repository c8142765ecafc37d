//! The sim's chain state for validator operators: config params 15, 17, 32/34/36 and the
//! elector's get-methods, built from the scenario's validators and its latest `election`
//! event, encoded with the same cell layouts `ton::config` / `ton::elector` decode.
//!
//! Routes: `GET /toncenter/api/v2/getConfigParam?config_id=N` and
//! `POST /toncenter/api/v2/runGetMethod` (elector `-1:3333…3333` only).

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
use crate::ton::stack::TvmValue;
use crate::toncenter::stack::encode_legacy_stack;

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
    /// Serve config 32 (previous set) and 36 (next set); otherwise they are absent.
    #[serde(default)]
    pub previous_set: bool,
    #[serde(default)]
    pub next_set: bool,
    /// Elections whose stakes are still frozen, newest first.
    #[serde(default)]
    pub past: Vec<SimPastElection>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimPastElection {
    pub election_id: u64,
    #[serde(default)]
    pub bonuses_ton: f64,
    #[serde(default)]
    pub complaints: u32,
    /// Names of validators whose frozen stake is banned (fined).
    #[serde(default)]
    pub banned: Vec<String>,
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
            for name in &past.banned {
                if !validators.iter().any(|validator| &validator.name == name) {
                    problems.push((
                        format!("events[{index}].past[{past_index}].banned"),
                        format!("unknown validator name {name:?}; use a [[validators]] name"),
                    ));
                }
            }
            if !(past.bonuses_ton.is_finite() && past.bonuses_ton >= 0.0) {
                problems.push((
                    format!("events[{index}].past[{past_index}].bonuses_ton"),
                    format!("bonuses_ton must be >= 0, got {}", past.bonuses_ton),
                ));
            }
        }
        problems
    }
}

fn nanoton(ton: f64) -> u128 {
    (ton * NANOTON_PER_TON).round().max(0.0) as u128
}

/// 32 deterministic bytes for a sim identity (public key, ADNL, hash), as 64 hex.
fn derived_hex(seed: &str, salt: &str) -> String {
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

/// The validator's public key in the sim (derived from its address).
pub fn sim_public_key(validator: &SimValidator) -> String {
    derived_hex(&validator.address, "public_key")
}

/// The validator's ADNL address in the sim (derived from its address).
pub fn sim_adnl(validator: &SimValidator) -> String {
    derived_hex(&validator.address, "adnl")
}

/// The 256-bit account part of the validator's wallet address.
fn account_hex(validator: &SimValidator) -> String {
    crate::ton::parse_address(&validator.address)
        .ok()
        .and_then(|parsed| parsed.raw.split_once(':').map(|(_, hex)| hex.to_owned()))
        .unwrap_or_else(|| derived_hex(&validator.address, "wallet"))
}

fn hex_number(hex: &str) -> TvmValue {
    let bytes = crate::ton::config::from_hex(hex).unwrap_or_default();
    TvmValue::Number(BigInt::from(BigUint::from_bytes_be(&bytes)))
}

fn stakers(world: &World) -> Vec<&SimValidator> {
    world
        .scenario
        .validators
        .iter()
        .filter(|validator| validator.stake_ton > 0.0)
        .collect()
}

/// Weight: the stake in micro-TON, so ratios match stakes.
fn weight(validator: &SimValidator) -> u64 {
    (validator.stake_ton * 1e3).round().max(0.0) as u64
}

/// The latest election event due at sim offset `t`.
fn current_election(world: &World, t: f64) -> Option<&SimElection> {
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

fn validator_set(world: &World, utime_since: u32) -> ValidatorSet {
    let validators: Vec<ValidatorDescr> = stakers(world)
        .into_iter()
        .map(|validator| ValidatorDescr {
            public_key: sim_public_key(validator),
            weight: weight(validator),
            adnl_address: Some(sim_adnl(validator)),
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
    let encoded = match param {
        15 => encode_election_timing(&SIM_TIMING).map(Some),
        17 => encode_stake_limits(&SIM_STAKE_LIMITS).map(Some),
        34 => encode_validator_set(&validator_set(world, current_since)).map(Some),
        32 if election.is_some_and(|e| e.previous_set) => {
            encode_validator_set(&validator_set(world, current_since.saturating_sub(round)))
                .map(Some)
        }
        36 if election.is_some_and(|e| e.next_set) => {
            encode_validator_set(&validator_set(world, current_since.saturating_add(round)))
                .map(Some)
        }
        _ => Ok(None),
    };
    encoded.map_err(|error| error.to_string())
}

/// The result stack of an elector get-method now.
pub(crate) fn elector_stack(world: &World, method: &str) -> Result<Vec<TvmValue>, String> {
    let election = current_election(world, world.elapsed_seconds());
    let open = election.filter(|election| election.id > 0);
    let participants: Vec<&SimValidator> = if open.is_some() {
        stakers(world)
    } else {
        Vec::new()
    };
    let stake = |validator: &SimValidator| TvmValue::number(nanoton(validator.stake_ton));
    match method {
        "active_election_id" => Ok(vec![TvmValue::number(open.map_or(0, |e| e.id))]),
        "participant_list" => Ok(vec![TvmValue::List(
            participants
                .iter()
                .map(|validator| {
                    TvmValue::Tuple(vec![
                        hex_number(&sim_public_key(validator)),
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
                                hex_number(&sim_public_key(validator)),
                                TvmValue::Tuple(vec![
                                    stake(validator),
                                    TvmValue::number(max_factor),
                                    hex_number(&account_hex(validator)),
                                    hex_number(&sim_adnl(validator)),
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
            let mut entries = Vec::new();
            for past in election.map(|e| e.past.as_slice()).unwrap_or_default() {
                let frozen: Vec<Frozen> = stakers(world)
                    .into_iter()
                    .map(|validator| Frozen {
                        public_key: sim_public_key(validator),
                        address: format!("-1:{}", account_hex(validator)),
                        weight: weight(validator),
                        stake: nanoton(validator.stake_ton),
                        banned: past.banned.contains(&validator.name),
                    })
                    .collect();
                let total: u128 = frozen.iter().map(|f| f.stake).sum();
                let dict =
                    |boc: Option<String>| boc.map_or(TvmValue::List(Vec::new()), TvmValue::Cell);
                let frozen_dict = encode_frozen_dict(&frozen).map_err(|e| e.to_string())?;
                let complaints = encode_complaints(past.complaints as usize, past.election_id)
                    .map_err(|e| e.to_string())?;
                entries.push(TvmValue::Tuple(vec![
                    TvmValue::number(past.election_id),
                    TvmValue::number(
                        past.election_id
                            + u64::from(SIM_TIMING.validators_elected_for)
                            + u64::from(SIM_TIMING.stake_held_for),
                    ),
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
        other => Err(other.to_owned()),
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
        let is_elector = crate::ton::parse_address(&request.address)
            .is_ok_and(|parsed| parsed.raw == ELECTOR_ADDRESS);
        let run = |exit_code: i64, stack: Value| {
            ok(json!({"@type": "smc.runResult", "gas_used": 0, "stack": stack, "exit_code": exit_code}))
        };
        if !is_elector {
            // The sim runs no other contract: as if the account had no code.
            return run(-256, json!([]));
        }
        match elector_stack(&world, &request.method) {
            Ok(stack) => run(0, encode_legacy_stack(&stack)),
            // An unknown method: the contract throws 11, as on chain.
            Err(_) => run(11, json!([])),
        }
    })
    .await
}

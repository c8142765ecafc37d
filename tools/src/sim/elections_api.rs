//! toncenter's validator-operator APIs, from the same world as `sim::chain`:
//! `GET /elections/getValidationCycles?limit=N`, `GET /elections/getElections?limit=N`,
//! `GET /elections/getComplaints?election_id=X&limit=N` (elections.toncenter.com) and
//! `GET /qos/cycleScoreboard?cycle_id=X&limit=N` (toncenter.com/api/qos).
//!
//! No captured response of these services exists, so the shapes follow the field names
//! their known consumers read (see the client, `crate::elections`). Stakes and fines go out
//! as decimal strings and weights as numbers, so clients meet both spellings.
//!
//! Everything is read through `sim::chain`'s own functions, so these answers agree with
//! `getConfigParam` and the elector's get-methods at the same sim time:
//! - cycles: the set of config 34 (`config_param_boc(34)`: the latest election event's
//!   `current_set`, every staker when absent; keys as of now), `cycle_id` = its
//!   `utime_since`; then, when served, config 32 (the previous round); newest first.
//! - elections: the open election (id not 0) with its `participants` (every staker when
//!   absent; keys as of now, as `participant_list_extended`), then every past election
//!   `past_elections` still lists (not unfrozen yet), with its frozen `stakes` (keys as of
//!   the election event, as in the frozen dictionary).
//! - complaints: exactly what the elector's `list_complaints(election_id)` lists (one per
//!   `complaints_against` name, `complaints` more against made-up keys), with its suggested
//!   fine and `is_passed` = `weight_remaining < 0`; a validator's ADNL address is the one
//!   it had when the election event took effect (a made-up key gets a made-up address).
//! - scoreboard: one row per config 34 member (its index there), each with its node's
//!   efficiency now (`[validators.node] efficiency_percent`, `low_efficiency_at`,
//!   `low_efficiency_percent`; 98.0 without a node section), for any cycle id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::chain::{
    SIM_TIMING, account_hex, complaints_stack, config_param_boc, current_election, derived_hex,
    frozen_members, members, nanoton, offset, sim_adnl_at, sim_public_key_at,
};
use super::scenario::{SimService, SimValidator};
use super::server::serve;
use super::world::World;
use crate::ton::config::{ConfigParam, ValidatorDescr, decode_config_param};

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/elections/getValidationCycles", get(validation_cycles))
        .route("/elections/getElections", get(elections))
        .route("/elections/getComplaints", get(complaints))
        .route("/qos/cycleScoreboard", get(cycle_scoreboard))
}

impl super::SimHandle {
    /// The elections API root the sim serves (`ElectionsClient::new` elections base URL).
    pub fn elections_url(&self) -> String {
        format!("{}/elections", self.base_url())
    }

    /// The QoS API root the sim serves (`ElectionsClient::new` qos base URL).
    pub fn qos_url(&self) -> String {
        format!("{}/qos", self.base_url())
    }
}

/// A validator set config param as `chain::config_param_boc` serves it now, each member
/// with the scenario validator it is.
pub(crate) struct ServedSet<'w> {
    pub(crate) utime_since: u64,
    pub(crate) utime_until: u64,
    /// In index order.
    pub(crate) members: Vec<(ValidatorDescr, &'w SimValidator)>,
}

impl ServedSet<'_> {
    /// Nanotons staked by the members.
    pub(crate) fn total_stake(&self) -> u128 {
        self.members
            .iter()
            .map(|(_, validator)| nanoton(validator.stake_ton))
            .sum()
    }
}

/// Config `param` (32, 34 or 36) as the sim serves it now, decoded; `None` when absent.
/// Members are matched to scenario validators by public key (either key, so a rotation
/// between the two clock reads cannot lose one).
pub(crate) fn served_set(world: &World, param: u32) -> Result<Option<ServedSet<'_>>, String> {
    let Some(boc) = config_param_boc(world, param)? else {
        return Ok(None);
    };
    let set = match decode_config_param(param, &boc).map_err(|error| error.to_string())? {
        ConfigParam::ValidatorSet { set, .. } => set,
        ConfigParam::Absent { .. } => return Ok(None),
        other => return Err(format!("config {param}: not a validator set: {other:?}")),
    };
    let members = set
        .validators
        .into_iter()
        .map(|descr| {
            let validator = world.scenario.validators.iter().find(|validator| {
                [Duration::ZERO, Duration::MAX]
                    .iter()
                    .any(|at| sim_public_key_at(validator, *at) == descr.public_key)
            });
            match validator {
                Some(validator) => Ok((descr, validator)),
                None => Err(format!(
                    "config {param}: no scenario validator has public key {}",
                    descr.public_key
                )),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Some(ServedSet {
        utime_since: u64::from(set.utime_since),
        utime_until: u64::from(set.utime_until),
        members,
    }))
}

fn internal(message: &str) -> (StatusCode, Value) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"detail": message}),
    )
}

/// FastAPI-style validation error, as toncenter's Python services send them.
fn invalid(message: &str) -> (StatusCode, Value) {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"loc": ["query"], "msg": message, "type": "value_error"}]}),
    )
}

/// `limit` from the query: `default` when absent, an error text when not 1..=`max`.
fn limit(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, String> {
    match params.get("limit").map(|limit| limit.parse::<usize>()) {
        None => Ok(default),
        Some(Ok(limit)) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(format!("limit: ensure this value is between 1 and {max}")),
    }
}

fn required_u64(params: &HashMap<String, String>, name: &str) -> Result<u64, String> {
    match params.get(name).map(|value| value.parse::<u64>()) {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) => Err(format!("{name}: value is not a valid integer")),
        None => Err(format!("{name}: field required")),
    }
}

fn wallet_address(validator: &SimValidator) -> String {
    format!("-1:{}", account_hex(validator))
}

/// The member's ADNL address as the set serves it (the current one when left out).
pub(crate) fn member_adnl(descr: &ValidatorDescr, validator: &SimValidator, t: f64) -> String {
    descr
        .adnl_address
        .clone()
        .unwrap_or_else(|| sim_adnl_at(validator, offset(t)))
}

async fn validation_cycles(
    State(world): State<Arc<World>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Elections, "getValidationCycles", || {
        let limit = match limit(&params, 10, 100) {
            Ok(limit) => limit,
            Err(message) => return invalid(&message),
        };
        let t = world.elapsed_seconds();
        let mut cycles = Vec::new();
        // Config 34 (the round in force), then config 32 (the one before) when served.
        for param in [34, 32] {
            let set = match served_set(&world, param) {
                Ok(Some(set)) => set,
                Ok(None) => continue,
                Err(message) => return internal(&message),
            };
            let validators: Vec<Value> = set
                .members
                .iter()
                .enumerate()
                .map(|(index, (descr, validator))| {
                    json!({
                        "adnl_addr": member_adnl(descr, validator, t),
                        "pubkey": descr.public_key,
                        "weight": descr.weight,
                        "stake": nanoton(validator.stake_ton).to_string(),
                        "index": index,
                        "wallet_address": wallet_address(validator),
                        "complaints": [],
                    })
                })
                .collect();
            cycles.push(json!({
                "cycle_id": set.utime_since,
                "cycle_info": {
                    "utime_since": set.utime_since,
                    "utime_until": set.utime_until,
                    "total_stake": set.total_stake().to_string(),
                    "total_participants": validators.len(),
                    "validators": validators,
                },
            }));
        }
        cycles.truncate(limit);
        (StatusCode::OK, Value::Array(cycles))
    })
    .await
}

async fn elections(
    State(world): State<Arc<World>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Elections, "getElections", || {
        let limit = match limit(&params, 10, 100) {
            Ok(limit) => limit,
            Err(message) => return invalid(&message),
        };
        let t = world.elapsed_seconds();
        let Some(election) = current_election(&world, t) else {
            return (StatusCode::OK, json!([]));
        };
        let now = u64::try_from(world.time_at(t).timestamp()).unwrap_or(0);
        let max_factor = (election.max_factor * 65536.0).round() as u64;
        let min_stake = nanoton(election.min_stake_ton).to_string();
        let participant = |validator: &SimValidator, stake: u128, keys_at: Duration| {
            json!({
                "adnl_addr": sim_adnl_at(validator, keys_at),
                "pubkey": sim_public_key_at(validator, keys_at),
                "stake": stake.to_string(),
                "max_factor": max_factor,
                "wallet_address": wallet_address(validator),
            })
        };
        let mut records = Vec::new();
        // The open election, as `participant_list_extended` serves it (keys as of now).
        if election.id > 0 {
            let participants = members(&world, election.participants.as_deref());
            let total: u128 = participants.iter().map(|v| nanoton(v.stake_ton)).sum();
            let elect_close = election.elect_close.unwrap_or(
                election
                    .id
                    .saturating_sub(u64::from(SIM_TIMING.elections_end_before)),
            );
            records.push(json!({
                "election_id": election.id,
                "elect_close": elect_close,
                "min_stake": min_stake,
                "total_stake": total.to_string(),
                "finished": election.finished,
                "failed": election.failed,
                "participants_list": participants
                    .iter()
                    .map(|validator| participant(validator, nanoton(validator.stake_ton), offset(t)))
                    .collect::<Vec<Value>>(),
            }));
        }
        // The past elections `past_elections` lists (not unfrozen yet), with their frozen
        // stakes and the keys of when the election event took effect.
        for past in &election.past {
            if past.unfreeze_time() <= now {
                continue;
            }
            let (frozen, total) = frozen_members(&world, past);
            records.push(json!({
                "election_id": past.election_id,
                "elect_close": past
                    .election_id
                    .saturating_sub(u64::from(SIM_TIMING.elections_end_before)),
                "min_stake": min_stake,
                "total_stake": total.to_string(),
                "finished": true,
                "unfreeze_at": past.unfreeze_time(),
                "participants_list": frozen
                    .iter()
                    .map(|(validator, stake, _)| participant(validator, *stake, election.at))
                    .collect::<Vec<Value>>(),
            }));
        }
        records.truncate(limit);
        (StatusCode::OK, Value::Array(records))
    })
    .await
}

async fn complaints(
    State(world): State<Arc<World>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Elections, "getComplaints", || {
        let election_id = match required_u64(&params, "election_id") {
            Ok(id) => id,
            Err(message) => return invalid(&message),
        };
        let limit = match limit(&params, 100, 1000) {
            Ok(limit) => limit,
            Err(message) => return invalid(&message),
        };
        let t = world.elapsed_seconds();
        // The elector's own list, decoded as a client of `list_complaints` would.
        let listed = complaints_stack(&world, t, election_id).and_then(|stack| {
            crate::ton::elector::list_complaints(&stack).map_err(|error| error.to_string())
        });
        let listed = match listed {
            Ok(listed) => listed,
            Err(message) => return internal(&message),
        };
        // The keys in the list are the ones of when the election event took effect.
        let keys_at = current_election(&world, t).map_or(Duration::ZERO, |e| e.at);
        let mut list: Vec<Value> = listed
            .iter()
            .map(|complaint| {
                let accused = world.scenario.validators.iter().find(|validator| {
                    sim_public_key_at(validator, keys_at) == complaint.validator_pubkey
                });
                let adnl = accused.map_or_else(
                    || derived_hex(&complaint.validator_pubkey, "adnl"),
                    |validator| sim_adnl_at(validator, keys_at),
                );
                json!({
                    "election_id": election_id,
                    "adnl_addr": adnl,
                    "pubkey": complaint.validator_pubkey,
                    "suggested_fine": complaint.suggested_fine.to_string(),
                    "is_passed": complaint.passed,
                    "created_time": complaint.created_at,
                })
            })
            .collect();
        list.truncate(limit);
        (StatusCode::OK, Value::Array(list))
    })
    .await
}

async fn cycle_scoreboard(
    State(world): State<Arc<World>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Elections, "cycleScoreboard", || {
        let cycle_id = match required_u64(&params, "cycle_id") {
            Ok(id) => id,
            Err(message) => return invalid(&message),
        };
        let limit = match limit(&params, 1000, 1000) {
            Ok(limit) => limit,
            Err(message) => return invalid(&message),
        };
        let t = world.elapsed_seconds();
        let set = match served_set(&world, 34) {
            Ok(set) => set,
            Err(message) => return internal(&message),
        };
        let rows: Vec<Value> = set
            .iter()
            .flat_map(|set| set.members.iter())
            .enumerate()
            .take(limit)
            .map(|(index, (descr, validator))| {
                let efficiency = validator
                    .node
                    .clone()
                    .unwrap_or_default()
                    .efficiency_percent_at(t);
                json!({
                    "cycle_id": cycle_id,
                    "adnl_addr": member_adnl(descr, validator, t),
                    "idx": index,
                    "stake": nanoton(validator.stake_ton).to_string(),
                    "efficiency": efficiency,
                })
            })
            .collect();
        (StatusCode::OK, json!({"scoreboard": rows}))
    })
    .await
}

//! tonapi.io v2, the reads an operator needs, from the same world as `sim::chain`:
//! `GET /tonapi/v2/blockchain/validators`, `GET /tonapi/v2/accounts/{id}` and
//! `POST /tonapi/v2/accounts/_bulk`.
//!
//! Validators: like tonapi, the election record of the set in force: config 34 as
//! `sim::chain` serves it now (the latest election event's `current_set`, every staker when
//! absent), `elect_at` is its `utime_since`, each member with its stake and its ADNL address
//! of now, stakes in nanotons and `max_factor` scaled by 65536, all as JSON integers.
//! `min_stake` and the max factor come from the latest `election` event (config 17's values
//! without one).
//!
//! Accounts: a scenario validator's wallet (raw or user-friendly id) is `active` with its
//! balance; any other valid address is `nonexist` with balance 0; anything else is tonapi's
//! 400 `{"error": ...}`. Errors are JSON `{"error": "..."}` as tonapi sends them.
//!
//! Bulk: `{"account_ids": [...]}` answered as `{"accounts": [...]}`, each id as
//! `/v2/accounts/{id}` answers it, in the order asked (duplicates repeated). Like tonapi, the
//! whole request is a 400 when the list is empty, longer than [`MAX_BULK_IDS`], or holds an
//! id that is not an address (or when the body is not that JSON).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::chain::{SIM_STAKE_LIMITS, SIM_TIMING, account_hex, current_election, nanoton};
use super::elections_api::{member_adnl, served_set};
use super::scenario::{SimEvent, SimService};
use super::server::serve;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/tonapi/v2/blockchain/validators", get(validators))
        .route("/tonapi/v2/accounts/{id}", get(account))
        .route("/tonapi/v2/accounts/_bulk", post(accounts_bulk))
}

/// tonapi's bulk limit: ids per `POST /v2/accounts/_bulk`.
pub(crate) const MAX_BULK_IDS: usize = 100;

impl super::SimHandle {
    /// The tonapi root the sim serves (`TonapiClient::new` base_url; paths add `/v2/...`).
    pub fn tonapi_url(&self) -> String {
        format!("{}/tonapi", self.base_url())
    }
}

/// JSON integers: tonapi's int64 fields. Nanoton amounts fit in 64 bits (the total supply
/// is about 5e18); a larger value is capped instead of failing the answer.
fn int(value: u128) -> Value {
    json!(u64::try_from(value).unwrap_or(u64::MAX))
}

async fn validators(State(world): State<Arc<World>>) -> Response {
    serve(&world, SimService::Tonapi, "validators", || {
        let t = world.elapsed_seconds();
        let election = current_election(&world, t);
        let set = match served_set(&world, 34) {
            Ok(Some(set)) => set,
            // Config 34 is always served; an empty set otherwise.
            Ok(None) => super::elections_api::ServedSet {
                utime_since: 0,
                utime_until: 0,
                members: Vec::new(),
            },
            Err(message) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": message}));
            }
        };
        let elect_at = set.utime_since;
        let min_stake = election.map_or(SIM_STAKE_LIMITS.min_stake, |e| nanoton(e.min_stake_ton));
        let max_factor = election.map_or(u64::from(SIM_STAKE_LIMITS.max_stake_factor), |e| {
            (e.max_factor * 65536.0).round() as u64
        });
        let total_stake = set.total_stake();
        let members: Vec<Value> = set
            .members
            .iter()
            .map(|(descr, validator)| {
                json!({
                    "address": format!("-1:{}", account_hex(validator)),
                    "adnl_address": member_adnl(descr, validator, t),
                    "stake": int(nanoton(validator.stake_ton)),
                    "max_factor": max_factor,
                })
            })
            .collect();
        (
            StatusCode::OK,
            json!({
                "elect_at": elect_at,
                "elect_close": elect_at.saturating_sub(u64::from(SIM_TIMING.elections_end_before)),
                "min_stake": int(min_stake),
                "total_stake": int(total_stake),
                "validators": members,
            }),
        )
    })
    .await
}

/// Unix time of the account's last activity: its latest transaction or balance event due
/// by offset `t`, the scenario start otherwise.
fn last_activity(world: &World, address: &str, raw: &str, t: f64) -> i64 {
    let start = world.time_at(0.0).timestamp();
    let transaction = world
        .transactions(address, 1, None)
        .and_then(|transactions| transactions.first().map(|tx| tx.utime))
        .unwrap_or(start);
    let event = world
        .scenario
        .events
        .iter()
        .filter_map(|event| match event {
            SimEvent::BalanceChange {
                at,
                address: target,
                ..
            } if at.as_secs_f64() <= t
                && crate::ton::parse_address(target).is_ok_and(|parsed| parsed.raw == raw) =>
            {
                Some(world.time_at(at.as_secs_f64()).timestamp())
            }
            _ => None,
        })
        .max()
        .unwrap_or(start);
    start.max(transaction).max(event)
}

async fn account(State(world): State<Arc<World>>, Path(id): Path<String>) -> Response {
    serve(
        &world,
        SimService::Tonapi,
        "accounts",
        || match account_body(&world, &id, world.elapsed_seconds()) {
            Ok(body) => (StatusCode::OK, body),
            Err(error) => (StatusCode::BAD_REQUEST, error),
        },
    )
    .await
}

async fn accounts_bulk(State(world): State<Arc<World>>, body: Bytes) -> Response {
    serve(&world, SimService::Tonapi, "accounts/_bulk", || {
        let bad = |message: String| (StatusCode::BAD_REQUEST, json!({"error": message}));
        #[derive(serde::Deserialize)]
        struct AccountIds {
            account_ids: Vec<String>,
        }
        let ids = match serde_json::from_slice::<AccountIds>(&body) {
            Ok(request) => request.account_ids,
            Err(error) => return bad(format!("decode request: {error}")),
        };
        if ids.is_empty() {
            return bad("empty list of ids".to_owned());
        }
        if ids.len() > MAX_BULK_IDS {
            return bad(format!(
                "the maximum number of accounts to request at once: {MAX_BULK_IDS}"
            ));
        }
        let t = world.elapsed_seconds();
        let accounts: Result<Vec<Value>, Value> =
            ids.iter().map(|id| account_body(&world, id, t)).collect();
        match accounts {
            Ok(accounts) => (StatusCode::OK, json!({ "accounts": accounts })),
            Err(error) => (StatusCode::BAD_REQUEST, error),
        }
    })
    .await
}

/// `/v2/accounts/{id}`'s answer for `id` at offset `t`; `Err` is the 400 body for an id
/// that is not an address.
fn account_body(world: &World, id: &str, t: f64) -> Result<Value, Value> {
    let Ok(parsed) = crate::ton::parse_address(id) else {
        return Err(json!({"error": format!("can't decode address {id}")}));
    };
    Ok(match world.balance_nanoton(id, t) {
        Some(balance) => json!({
            "address": parsed.raw,
            "balance": int(balance),
            "last_activity": last_activity(world, id, &parsed.raw, t),
            "status": "active",
            "interfaces": ["wallet_v3r2"],
            "get_methods": ["seqno", "get_public_key"],
            "is_wallet": true,
        }),
        None => json!({
            "address": parsed.raw,
            "balance": 0,
            "last_activity": 0,
            "status": "nonexist",
            "get_methods": [],
            "is_wallet": false,
        }),
    })
}

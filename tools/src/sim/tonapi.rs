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
//! Staking pools: `GET /tonapi/v2/staking/pools` answers a fixed, deterministic list of three
//! public pools ([`SIM_STAKING_POOLS`]: a verified TF pool at 5.31%, a verified whales pool at
//! 4.8%, an unverified liquid pool at 4.6%), their cycle the validation round of config 34
//! (the scenario start and one 65536 s round without one), with tonapi's `implementations`
//! map. The scenario's own `[[pools]]` are not listed: tonapi lists pools open to the public.
//!
//! Jettons: `GET /tonapi/v2/accounts/{id}/jettons` lists the scenario's `[[jettons]]` of that
//! owner (any address form matches), each with a master derived from its symbol and, when
//! `currencies` includes usd and the jetton has a `price_usd`, tonapi's `price` object (the
//! diffs signed the way tonapi signs them: `+` or U+2212). An id that is not an address is a
//! 400.
//!
//! Bulk: `{"account_ids": [...]}` answered as `{"accounts": [...]}`, each id as
//! `/v2/accounts/{id}` answers it, in the order asked (duplicates repeated). Like tonapi, the
//! whole request is a 400 when the list is empty, longer than [`MAX_BULK_IDS`], or holds an
//! id that is not an address (or when the body is not that JSON).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::chain::{
    SIM_STAKE_LIMITS, SIM_TIMING, account_hex, current_election, derived_hex, nanoton,
};
use super::elections_api::{member_adnl, served_set};
use super::scenario::{SimEvent, SimService};
use super::server::serve;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/tonapi/v2/blockchain/validators", get(validators))
        .route("/tonapi/v2/accounts/{id}", get(account))
        .route("/tonapi/v2/accounts/_bulk", post(accounts_bulk))
        .route("/tonapi/v2/staking/pools", get(staking_pools))
        .route("/tonapi/v2/accounts/{id}/jettons", get(account_jettons))
}

/// One pool of the simulated `/v2/staking/pools`.
pub(crate) struct SimStakingPool {
    pub(crate) name: &'static str,
    /// Any address form; a seed for a made-up masterchain address when it does not parse.
    pub(crate) address: &'static str,
    pub(crate) implementation: &'static str,
    pub(crate) apy: f64,
    pub(crate) min_stake_ton: f64,
    pub(crate) total_ton: f64,
    pub(crate) validator_stake_ton: f64,
    pub(crate) verified: bool,
    pub(crate) current_nominators: u32,
    pub(crate) max_nominators: u32,
    pub(crate) liquid: bool,
}

/// The pools every simulated world lists, in tonapi's order (not sorted by APY).
pub(crate) const SIM_STAKING_POOLS: [SimStakingPool; 3] = [
    SimStakingPool {
        name: "Very First Pool #1",
        // A real TF pool address (opentonapi's address book).
        address: "Ef8gQpp7pKD9GzBrcr3ju9faPjEWHPerhZ4tFpSiDoDUINxn",
        implementation: "tf",
        apy: 5.31,
        min_stake_ton: 10_000.0,
        total_ton: 4_200_000.0,
        validator_stake_ton: 200_000.0,
        verified: true,
        current_nominators: 38,
        max_nominators: 40,
        liquid: false,
    },
    SimStakingPool {
        name: "Whales Pool #1",
        address: "sim-whales-pool",
        implementation: "whales",
        apy: 4.8,
        min_stake_ton: 50.0,
        total_ton: 1_250_000.0,
        validator_stake_ton: 0.0,
        verified: true,
        current_nominators: 1850,
        max_nominators: 40_000,
        liquid: false,
    },
    SimStakingPool {
        name: "Tonstakers",
        address: "sim-tonstakers-pool",
        implementation: "liquidTF",
        apy: 4.6,
        min_stake_ton: 1.0,
        total_ton: 12_000_000.0,
        validator_stake_ton: 0.0,
        verified: false,
        current_nominators: 25_000,
        max_nominators: 100_000,
        liquid: true,
    },
];

impl SimStakingPool {
    /// Raw lower-case `wc:hex`.
    pub(crate) fn raw_address(&self) -> String {
        crate::ton::parse_address(self.address)
            .map(|parsed| parsed.raw)
            .unwrap_or_else(|_| format!("-1:{}", derived_hex(self.address, "pool")))
    }
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

async fn staking_pools(State(world): State<Arc<World>>) -> Response {
    serve(&world, SimService::Tonapi, "staking/pools", || {
        let (cycle_start, cycle_end) = match served_set(&world, 34) {
            Ok(Some(set)) => (set.utime_since, set.utime_until),
            Ok(None) => {
                let start = u64::try_from(world.time_at(0.0).timestamp()).unwrap_or(0);
                (start, start + 65_536)
            }
            Err(message) => {
                return (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": message}));
            }
        };
        let pools: Vec<Value> = SIM_STAKING_POOLS
            .iter()
            .map(|pool| {
                let total = nanoton(pool.total_ton);
                let validator = nanoton(pool.validator_stake_ton);
                let mut body = json!({
                    "address": pool.raw_address(),
                    "name": pool.name,
                    "total_amount": int(total),
                    "implementation": pool.implementation,
                    "apy": pool.apy,
                    "min_stake": int(nanoton(pool.min_stake_ton)),
                    "cycle_start": cycle_start,
                    "cycle_end": cycle_end,
                    "verified": pool.verified,
                    "current_nominators": pool.current_nominators,
                    "max_nominators": pool.max_nominators,
                    "nominators_stake": int(total.saturating_sub(validator)),
                    "validator_stake": int(validator),
                    "cycle_length": cycle_end.saturating_sub(cycle_start),
                });
                if pool.liquid
                    && let Some(fields) = body.as_object_mut()
                {
                    fields.insert(
                        "liquid_jetton_master".to_owned(),
                        json!(format!("0:{}", derived_hex(pool.address, "jetton"))),
                    );
                }
                body
            })
            .collect();
        (
            StatusCode::OK,
            json!({
                "pools": pools,
                "implementations": {
                    "tf": {
                        "name": "TON Foundation",
                        "description": "Nominator pool by TON Foundation",
                        "url": "https://github.com/ton-blockchain/nominator-pool",
                        "socials": [],
                    },
                    "whales": {
                        "name": "TON Whales",
                        "description": "Oldest pool with minimal staking amount 50 Gram",
                        "url": "https://tonvalidators.org/",
                        "socials": ["https://t.me/tonwhales"],
                    },
                    "liquidTF": {
                        "name": "Liquid staking",
                        "description": "Liquid staking with a jetton",
                        "url": "https://tonstakers.com/",
                        "socials": [],
                    },
                },
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

async fn account_jettons(
    State(world): State<Arc<World>>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Tonapi, "accounts/jettons", || {
        let Ok(owner) = crate::ton::parse_address(&id) else {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("can't decode address {id}")}),
            );
        };
        let usd = query.get("currencies").is_some_and(|currencies| {
            currencies
                .split(',')
                .any(|currency| currency.trim().eq_ignore_ascii_case("usd"))
        });
        let balances: Vec<Value> = world
            .scenario
            .jettons
            .iter()
            .filter(|jetton| {
                crate::ton::parse_address(&jetton.owner).is_ok_and(|parsed| parsed.raw == owner.raw)
            })
            .map(|jetton| {
                let master = format!("0:{}", derived_hex(&jetton.symbol, "jetton-master"));
                let wallet = format!(
                    "0:{}",
                    derived_hex(&format!("{}{}", owner.raw, jetton.symbol), "jetton-wallet")
                );
                let mut body = json!({
                    "balance": jetton.balance,
                    "wallet_address": {"address": wallet, "is_scam": false, "is_wallet": false},
                    "jetton": {
                        "address": master,
                        "name": jetton.name,
                        "symbol": jetton.symbol,
                        "decimals": jetton.decimals,
                        "image": "https://cache.tonapi.io/images/jetton.jpg",
                        "verification": jetton.verification,
                        "score": 0,
                    },
                });
                if let (true, Some(price), Some(fields)) =
                    (usd, jetton.price_usd, body.as_object_mut())
                {
                    fields.insert(
                        "price".to_owned(),
                        json!({
                            "prices": {"USD": price},
                            "diff_24h": {"USD": "\u{2212}0.02%"},
                            "diff_7d": {"USD": "+0.01%"},
                            "diff_30d": {"USD": "+0.00%"},
                        }),
                    );
                }
                body
            })
            .collect();
        (StatusCode::OK, json!({ "balances": balances }))
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

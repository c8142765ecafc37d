//! The sim's HTTP face: the real wire formats of CoinGecko and toncenter v2, a webhook sink
//! and control endpoints. Handlers forward to `World`; faults are applied in `serve`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ReceivedWebhook;
use super::scenario::{Fault, FaultKind, SimService};
use super::world::World;

type Shared = State<Arc<World>>;

pub(crate) fn router(world: Arc<World>) -> Router {
    Router::new()
        .route(
            "/coingecko/api/v3/simple/price",
            get(coingecko_simple_price),
        )
        .route(
            "/coingecko/api/v3/coins/{id}/market_chart/range",
            get(coingecko_market_chart_range),
        )
        .route(
            "/toncenter/api/v2/getMasterchainInfo",
            get(toncenter_masterchain_info),
        )
        .route(
            "/toncenter/api/v2/getAddressInformation",
            get(toncenter_address_information),
        )
        .route(
            "/toncenter/api/v2/getAddressBalance",
            get(toncenter_address_balance),
        )
        .route(
            "/toncenter/api/v2/getWalletInformation",
            get(toncenter_wallet_information),
        )
        .route(
            "/toncenter/api/v2/getTransactions",
            get(toncenter_transactions),
        )
        .route("/toncenter/api/v2/sendBoc", post(toncenter_send_boc))
        .route(
            "/toncenter/api/v2/estimateFee",
            post(toncenter_estimate_fee),
        )
        .route("/webhook/sink", post(webhook_sink))
        .route("/_sim/advance", post(control_advance))
        .route("/_sim/fault", post(control_fault))
        .route("/_sim/state", get(control_state))
        .merge(super::node_metrics::routes())
        .merge(super::releases::routes())
        .merge(super::chain::routes())
        .merge(super::elections_api::routes())
        .merge(super::tonapi::routes())
        .merge(super::slack::routes())
        .merge(super::slack_socket::routes())
        .merge(super::telegram::routes())
        // Last, so it wraps every route above (the node metrics pages and GitHub, which do
        // not go through `serve`, included).
        .route_layer(middleware::from_fn_with_state(
            world.clone(),
            count_by_route,
        ))
        .with_state(world)
}

/// Largest `runGetMethod` body read for its method name (axum's default body limit).
const MAX_COUNTED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Counts each request but the control endpoints by route (`GET /metrics/{validator}`), with
/// the `config_id` of `getConfigParam` and the `method` of `runGetMethod` appended, so a
/// benchmark can tell per-round reads from per-validator ones and see which params are cached.
async fn count_by_route(
    State(world): Shared,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let path = matched.as_str();
    if path.starts_with("/_sim/") {
        return next.run(request).await;
    }
    let mut route = format!("{} {path}", request.method());
    if path.ends_with("/getConfigParam")
        && let Some(id) = request.uri().query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("config_id="))
        })
    {
        route.push_str(&format!("?config_id={id}"));
    }
    let request = if path.ends_with("/runGetMethod") {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_COUNTED_BODY_BYTES).await else {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "request body unreadable or over 2 MiB"}),
            )
                .into_response_json();
        };
        #[derive(Deserialize)]
        struct MethodOnly {
            method: String,
        }
        if let Ok(MethodOnly { method }) = serde_json::from_slice(&bytes) {
            route.push_str(&format!(" method={method}"));
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    world.count_route(route);
    next.run(request).await
}

/// Counts the request, then serves the fault due (if any) or the normal answer.
pub(super) async fn serve(
    world: &World,
    service: SimService,
    endpoint: &str,
    answer: impl FnOnce() -> (StatusCode, Value),
) -> Response {
    let Some(fault) = world.record_request(service, endpoint) else {
        return answer().into_response_json();
    };
    match fault {
        FaultKind::AppliedThenTimeout { delay_ms } => {
            let response = answer();
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            response.into_response_json()
        }
        FaultKind::Timeout { delay_ms } => {
            // Real time on purpose: the client's timeout is real time.
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            answer().into_response_json()
        }
        FaultKind::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>upstream placeholder</body></html>",
        )
            .into_response(),
        FaultKind::Truncated => {
            let full = answer().1.to_string();
            let half = full.len() / 2;
            let cut = (0..=half).rev().find(|i| full.is_char_boundary(*i)).unwrap_or(0);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                full[..cut].to_owned(),
            )
                .into_response()
        }
        FaultKind::RateLimit {
            retry_after_seconds,
        } => {
            let body = match service {
                SimService::Coingecko => json!({"status": {
                    "error_code": 429,
                    "error_message": "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."
                }}),
                SimService::Toncenter => json!({"ok": false, "result": "Ratelimit exceed", "code": 429}),
                SimService::Elections => json!({"detail": "Too Many Requests"}),
                SimService::Tonapi => json!({"error": "rate limit: free tier allows 1 request per 4 seconds; use an api key"}),
                SimService::Slack => json!({"ok": false, "error": "ratelimited"}),
                SimService::Telegram => super::telegram::rate_limited_body(retry_after_seconds),
            };
            let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response_json();
            if let Some(seconds) = retry_after_seconds {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        FaultKind::RateLimitHtml => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "<!DOCTYPE html>\n<html><head><title>Access denied | api.coingecko.com used Cloudflare to restrict access</title></head><body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>",
        )
            .into_response(),
        FaultKind::ServerError { status } => server_error(service, status),
        FaultKind::ApiError { error } => {
            (StatusCode::OK, json!({"ok": false, "error": error})).into_response_json()
        }
        FaultKind::Conflict => super::telegram::conflict_answer().into_response_json(),
    }
}

fn server_error(service: SimService, status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match (service, status) {
        (SimService::Toncenter, 504) => {
            (code, json!({"ok": false, "error": "Liteserver timeout", "code": 504})).into_response_json()
        }
        (SimService::Toncenter, 500) => {
            (code, json!({"ok": false, "error": "Internal server error", "code": 500})).into_response_json()
        }
        (SimService::Coingecko, 500) => (
            code,
            json!({"status": {"error_code": 500, "error_message": "Internal server error"}}),
        )
            .into_response_json(),
        // 502/503 (and CoinGecko 504) come from the proxy in front: HTML, not JSON.
        _ => (
            code,
            [(header::CONTENT_TYPE, "text/html")],
            format!("<html><head><title>{status} Bad Gateway</title></head><body><center><h1>{status}</h1></center><hr><center>cloudflare</center></body></html>"),
        )
            .into_response(),
    }
}

trait IntoResponseJson {
    fn into_response_json(self) -> Response;
}

impl IntoResponseJson for (StatusCode, Value) {
    fn into_response_json(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

// ---- CoinGecko ----

async fn coingecko_simple_price(
    State(world): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Coingecko, "simple/price", || {
        simple_price(&world, &params)
    })
    .await
}

async fn coingecko_market_chart_range(
    State(world): Shared,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Coingecko, "market_chart/range", || {
        market_chart_range(&world, &id, &params)
    })
    .await
}

/// The scenario's price path: hourly points within 90 days, daily at 00:00 UTC beyond, as
/// CoinGecko's automatic granularity does; only `usd`.
fn market_chart_range(
    world: &World,
    id: &str,
    params: &HashMap<String, String>,
) -> (StatusCode, Value) {
    let seconds = |name: &str| params.get(name).and_then(|value| value.parse::<i64>().ok());
    let (Some(from), Some(to), Some(vs)) =
        (seconds("from"), seconds("to"), params.get("vs_currency"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "Missing parameter vs_currency, from or to"}),
        );
    };
    if vs != "usd" {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid vs_currency"}),
        );
    }
    if world.quote_at(id, 0.0).is_none() {
        return (StatusCode::NOT_FOUND, json!({"error": "coin not found"}));
    }
    let step = if to - from > 90 * 86_400 {
        86_400
    } else {
        3_600
    };
    let start = world.time_at(0.0).timestamp();
    let mut prices = Vec::new();
    let mut at = from.div_euclid(step) * step;
    if at < from {
        at += step;
    }
    while at <= to && prices.len() < 20_000 {
        if let Some((price, _)) = world.quote_at(id, (at - start) as f64) {
            prices.push(json!([at * 1000, price]));
        }
        at += step;
    }
    (
        StatusCode::OK,
        json!({ "prices": prices, "market_caps": [], "total_volumes": [] }),
    )
}

fn simple_price(world: &World, params: &HashMap<String, String>) -> (StatusCode, Value) {
    let (Some(ids), Some(vs_currencies)) = (params.get("ids"), params.get("vs_currencies")) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "Missing parameter ids or vs_currencies"}),
        );
    };
    let flag = |name: &str| params.get(name).is_some_and(|value| value == "true");
    let t = world.elapsed_seconds();
    let last_updated_at = world.time_at(t).timestamp();
    let mut body = serde_json::Map::new();
    for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let Some((price, change)) = world.quote_at(id, t) else {
            continue; // unknown ids are silently absent, as on the real API
        };
        let mut entry = serde_json::Map::new();
        for vs in vs_currencies.split(',').map(str::trim) {
            // The sim only quotes USD; other currencies are absent like unlisted pairs.
            if vs != "usd" {
                continue;
            }
            entry.insert(vs.to_owned(), json!(price));
            if flag("include_24hr_change") {
                entry.insert(format!("{vs}_24h_change"), json!(change));
            }
        }
        if flag("include_last_updated_at") {
            entry.insert("last_updated_at".to_owned(), json!(last_updated_at));
        }
        body.insert(id.to_owned(), Value::Object(entry));
    }
    (StatusCode::OK, Value::Object(body))
}

// ---- toncenter v2 ----

fn toncenter_ok(result: Value) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

fn toncenter_error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"ok": false, "error": message, "code": status.as_u16()}),
    )
}

/// A pseudo hash for sim block/transaction ids, base64-shaped like toncenter's.
fn fake_hash(seed: u64, salt: u64) -> String {
    let bytes: Vec<u8> = (0..4u64)
        .flat_map(|i| {
            (seed
                ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9))
            .wrapping_mul(0x94d0_49bb_1331_11eb)
            .to_le_bytes()
        })
        .collect();
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded: String = bytes
        .chunks(3)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            (0..4).map(move |i| ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char)
        })
        .collect();
    encoded.truncate(43);
    encoded.push('=');
    encoded
}

async fn toncenter_masterchain_info(State(world): Shared) -> Response {
    serve(&world, SimService::Toncenter, "getMasterchainInfo", || {
        // About one masterchain block every 5 sim seconds.
        let seqno = 40_000_000 + (world.elapsed_seconds().max(0.0) / 5.0) as u64;
        let seed = world.scenario.seed;
        let block = |seqno: u64| {
            json!({
                "@type": "ton.blockIdExt",
                "workchain": -1,
                "shard": "-9223372036854775808",
                "seqno": seqno,
                "root_hash": fake_hash(seed, seqno),
                "file_hash": fake_hash(seed ^ 1, seqno),
            })
        };
        toncenter_ok(json!({
            "@type": "blocks.masterchainInfo",
            "last": block(seqno),
            "state_root_hash": fake_hash(seed ^ 2, seqno),
            "init": block(0),
            "@extra": "sim",
        }))
    })
    .await
}

/// toncenter answers 416 "Incorrect address" for strings that are no address at all.
fn plausible_address(address: &str) -> bool {
    let friendly = address.len() == 48
        && address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+/".contains(&b));
    let raw = address.split_once(':').is_some_and(|(workchain, hex)| {
        matches!(workchain, "0" | "-1")
            && hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    friendly || raw
}

/// (balance nanotons, state, last lt) for an address, or the toncenter error to send.
fn account(
    world: &World,
    params: &HashMap<String, String>,
) -> Result<(u128, &'static str, u64), (StatusCode, Value)> {
    let Some(address) = params.get("address") else {
        return Err(toncenter_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "field required: address",
        ));
    };
    let t = world.elapsed_seconds();
    if let Some(balance) = world.balance_nanoton(address, t) {
        // Deterministic lt that grows with sim time like a busy wallet's.
        let lt = 34_789_408_000_000 + (t.max(0.0) as u64) * 1_000;
        return Ok((balance, "active", lt));
    }
    if plausible_address(address) {
        return Ok((0, "uninitialized", 0));
    }
    Err(toncenter_error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "Incorrect address",
    ))
}

async fn toncenter_address_information(
    State(world): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(
        &world,
        SimService::Toncenter,
        "getAddressInformation",
        || {
            let (balance, state, lt) = match account(&world, &params) {
                Ok(account) => account,
                Err(error) => return error,
            };
            let seqno = 40_000_000 + (world.elapsed_seconds().max(0.0) / 5.0) as u64;
            toncenter_ok(json!({
                "@type": "raw.fullAccountState",
                "balance": balance.to_string(),
                "code": "",
                "data": "",
                "frozen_hash": "",
                "last_transaction_id": {
                    "@type": "internal.transactionId",
                    "hash": fake_hash(world.scenario.seed, lt),
                    "lt": lt.to_string(),
                },
                "block_id": {
                    "@type": "ton.blockIdExt",
                    "workchain": -1,
                    "shard": "-9223372036854775808",
                    "seqno": seqno,
                    "root_hash": fake_hash(world.scenario.seed, seqno),
                    "file_hash": fake_hash(world.scenario.seed ^ 1, seqno),
                },
                "state": state,
                "sync_utime": world.now().timestamp(),
                "@extra": "sim",
            }))
        },
    )
    .await
}

async fn toncenter_address_balance(
    State(world): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(
        &world,
        SimService::Toncenter,
        "getAddressBalance",
        || match account(&world, &params) {
            Ok((balance, _, _)) => toncenter_ok(json!(balance.to_string())),
            Err(error) => error,
        },
    )
    .await
}

async fn toncenter_wallet_information(
    State(world): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(
        &world,
        SimService::Toncenter,
        "getWalletInformation",
        || {
            let (balance, state, lt) = match account(&world, &params) {
                Ok(account) => account,
                Err(error) => return error,
            };
            let mut result = json!({
                "account_state": state,
                "balance": balance.to_string(),
                "last_transaction_id": {
                    "@type": "internal.transactionId",
                    "hash": fake_hash(world.scenario.seed, lt),
                    "lt": lt.to_string(),
                },
                "wallet": state == "active",
            });
            let address = params
                .get("address")
                .map(String::as_str)
                .unwrap_or_default();
            if let Some((seqno, wallet_type)) = world.wallet(address) {
                result["seqno"] = json!(seqno);
                result["wallet_id"] = json!(698_983_191);
                result["wallet_type"] = json!(wallet_type);
            } else {
                result["wallet"] = json!(false);
            }
            toncenter_ok(result)
        },
    )
    .await
}

fn message_json(message: &crate::sim::SimMessage) -> Value {
    use base64::Engine;
    let msg_data = match &message.comment {
        Some(text) => json!({
            "@type": "msg.dataText",
            "text": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
        }),
        None => json!({"@type": "msg.dataRaw", "body": "", "init_state": ""}),
    };
    let mut value = json!({
        "@type": "raw.message",
        "source": message.source,
        "destination": message.destination,
        "value": message.value_nanoton.to_string(),
        "fwd_fee": "0",
        "ihr_fee": "0",
        "created_lt": message.created_lt.to_string(),
        "body_hash": message.body_hash,
        "msg_data": msg_data,
        "message": message.comment.clone().unwrap_or_default(),
    });
    if let Some(hash) = &message.hash {
        value["hash"] = json!(hash);
    }
    value
}

async fn toncenter_transactions(
    State(world): Shared,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    serve(&world, SimService::Toncenter, "getTransactions", || {
        let Some(address) = params.get("address") else {
            return toncenter_error(StatusCode::UNPROCESSABLE_ENTITY, "field required: address");
        };
        let limit = match params.get("limit").map(|limit| limit.parse::<usize>()) {
            None => 10,
            Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
            Some(_) => {
                return toncenter_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "limit: ensure this value is between 1 and 100",
                );
            }
        };
        let from_lt = match (params.get("lt"), params.get("hash")) {
            (Some(lt), Some(_)) => match lt.parse::<u64>() {
                Ok(lt) => Some(lt),
                Err(_) => {
                    return toncenter_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "lt: value is not a valid integer",
                    );
                }
            },
            (None, None) => None,
            _ => {
                return toncenter_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "lt and hash must be sent together",
                );
            }
        };
        match world.transactions(address, limit, from_lt) {
            Some(transactions) => toncenter_ok(Value::Array(
                transactions
                    .iter()
                    .map(|tx| {
                        json!({
                            "@type": "raw.transaction",
                            "utime": tx.utime,
                            "data": "",
                            "transaction_id": {
                                "@type": "internal.transactionId",
                                "lt": tx.lt.to_string(),
                                "hash": tx.hash,
                            },
                            "fee": tx.fee_nanoton.to_string(),
                            "storage_fee": "0",
                            "other_fee": tx.fee_nanoton.to_string(),
                            "in_msg": message_json(&tx.in_msg),
                            "out_msgs": tx.out_msgs.iter().map(message_json).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            )),
            None if plausible_address(address) => toncenter_ok(json!([])),
            None => toncenter_error(StatusCode::RANGE_NOT_SATISFIABLE, "Incorrect address"),
        }
    })
    .await
}

#[derive(Deserialize)]
struct SendBocRequest {
    boc: String,
}

async fn toncenter_send_boc(State(world): Shared, body: Bytes) -> Response {
    serve(&world, SimService::Toncenter, "sendBoc", || {
        let request: SendBocRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return toncenter_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("body: expected {{\"boc\": \"<base64>\"}}: {error}"),
                );
            }
        };
        match world.send_boc(&request.boc) {
            Ok(_) => toncenter_ok(json!({"@type": "ok", "@extra": "sim"})),
            Err(text) => toncenter_error(StatusCode::INTERNAL_SERVER_ERROR, &text),
        }
    })
    .await
}

#[derive(Deserialize)]
struct EstimateFeeRequest {
    address: String,
    body: String,
    #[serde(default)]
    #[allow(dead_code)]
    ignore_chksig: Option<bool>,
}

/// The sim's fees are fixed ([`super::world::SIM_TRANSFER_FEE_NANOTON`]); the breakdown adds
/// up to exactly what a transfer is then charged.
async fn toncenter_estimate_fee(State(world): Shared, body: Bytes) -> Response {
    serve(&world, SimService::Toncenter, "estimateFee", || {
        let request: EstimateFeeRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return toncenter_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("body: expected {{\"address\": ..., \"body\": \"<base64>\"}}: {error}"),
                );
            }
        };
        if request.address.trim().is_empty() || request.body.trim().is_empty() {
            return toncenter_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "address and body are required",
            );
        }
        let total = u64::try_from(super::world::SIM_TRANSFER_FEE_NANOTON).unwrap_or(u64::MAX);
        let (in_fwd, storage, fwd) = (total / 5, total / 20, total / 4);
        let gas = total - in_fwd - storage - fwd;
        toncenter_ok(json!({
            "@type": "query.fees",
            "source_fees": {"@type": "fees", "in_fwd_fee": in_fwd, "storage_fee": storage, "gas_fee": gas, "fwd_fee": fwd},
            "destination_fees": [],
        }))
    })
    .await
}

// ---- webhook sink and control ----

async fn webhook_sink(State(world): Shared, headers: HeaderMap, body: Bytes) -> Response {
    world.count_webhook_request();
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    world.record_webhook(ReceivedWebhook {
        received_at: Utc::now(),
        headers,
        body,
    });
    (StatusCode::OK, json!({"ok": true})).into_response_json()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: f64,
}

async fn control_advance(State(world): Shared, body: Bytes) -> Response {
    let request: AdvanceRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("POST /_sim/advance expects {{\"seconds\": <number >= 0>}}: {error}")}),
            )
                .into_response_json();
        }
    };
    match Duration::try_from_secs_f64(request.seconds) {
        Ok(by) => {
            world.advance(by);
            (StatusCode::OK, json!({"sim_time": world.now()})).into_response_json()
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("POST /_sim/advance: seconds must be a finite number >= 0, got {}", request.seconds)}),
        )
            .into_response_json(),
    }
}

async fn control_fault(State(world): Shared, body: Bytes) -> Response {
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    match serde_path_to_error::deserialize::<_, Fault>(&mut deserializer) {
        Ok(fault) => {
            world.inject_fault(fault.clone());
            (StatusCode::OK, json!({"injected": fault})).into_response_json()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            json!({"error": format!("POST /_sim/fault: at `{}`: {}", error.path(), error.inner())}),
        )
            .into_response_json(),
    }
}

async fn control_state(State(world): Shared) -> Response {
    let t = world.elapsed_seconds();
    let balances: BTreeMap<String, String> = world
        .scenario
        .validators
        .iter()
        .filter_map(|validator| {
            let balance = world.balance_nanoton(&validator.address, t)?;
            Some((validator.address.clone(), balance.to_string()))
        })
        .collect();
    let webhooks = world.webhooks();
    (
        StatusCode::OK,
        json!({
            "scenario": world.scenario.name,
            "seed": world.scenario.seed,
            "speed": world.scenario.speed,
            "sim_time": world.time_at(t),
            "sim_elapsed_seconds": t,
            "prices": world.prices(),
            "balances_nanoton": balances,
            "validators": world.scenario.validators,
            "request_counts": world.request_counts(),
            "requests_by_route": world.requests_by_route(),
            "active_faults": world.active_faults(),
            "webhooks_received": webhooks.len(),
            "webhooks": webhooks,
            "slack": world.slack.state_json(),
            "slack_socket": world.slack_socket.state_json(),
            "telegram": world.telegram.state_json(),
        }),
    )
        .into_response_json()
}

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap as AxumHeaders, StatusCode, Uri};
use axum::response::IntoResponse;

use super::*;
use crate::sim::{
    Fault, FaultKind, Scenario, SimHandle, SimService, SimWorld, sim_adnl, sim_adnl_at,
};
use crate::test_support::{SECRET, fast_policy, loopback};
use crate::ton::config::{ConfigParam, ValidatorSet};

const START: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const ELECTION_ID: u64 = 1_735_720_000;

const TONAPI_SCENARIO: &str = r#"
name = "tonapi"
speed = 0.0
start = "2025-01-01T00:00:00Z"

[[validators]]
name = "alpha"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 1000.5
stake_ton = 400000.0

[[validators]]
name = "beta"
address = "-1:2222222222222222222222222222222222222222222222222222222222222222"
balance_ton = 500.0
stake_ton = 300000.0
rotate_keys_at = "5m"

[[validators]]
name = "gamma"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
balance_ton = 50.0
stake_ton = 200000.0

[[validators]]
name = "observer"
address = "0:4444444444444444444444444444444444444444444444444444444444444444"
balance_ton = 10.0

[[events]]
kind = "election"
at = "0s"
id = 1735720000
min_stake_ton = 20000.0
max_factor = 2.5
current_set = ["alpha", "beta"]

[[events]]
kind = "balance_change"
at = "5m"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
delta_ton = -0.5
"#;

/// tonapi answers the next `count` requests with 429 and `Retry-After: seconds`.
fn rate_limited(count: u32, seconds: u64) -> Fault {
    Fault {
        service: SimService::Tonapi,
        from: None,
        until: None,
        count: Some(count),
        kind: FaultKind::RateLimit {
            retry_after_seconds: Some(seconds),
        },
    }
}

async fn start_tonapi_sim() -> (SimHandle, Scenario) {
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(TONAPI_SCENARIO, "tonapi/tests.rs").unwrap();
    let sim = SimWorld::start(scenario.clone(), loopback()).await.unwrap();
    (sim, scenario)
}

fn keyed(base_url: &str) -> TonapiClient {
    TonapiClient::new(base_url, Some(Secret::new(SECRET)), 1000.0, fast_policy()).unwrap()
}

/// Config 34 as the sim's toncenter serves it.
async fn config_34(sim: &SimHandle) -> ValidatorSet {
    let chain =
        crate::toncenter::ToncenterClient::new(&sim.toncenter_url(), None, 1000.0, fast_policy())
            .unwrap();
    match chain.get_config_param(34).await.unwrap().value {
        ConfigParam::ValidatorSet { set, .. } => set,
        other => panic!("config 34: {other:?}"),
    }
}

#[tokio::test]
async fn validators_from_the_sim_are_the_members_of_config_34() {
    let (sim, scenario) = start_tonapi_sim().await;
    let fetched = keyed(&sim.tonapi_url()).validators().await.unwrap();
    assert_eq!(fetched.attempts, 1);
    let set = fetched.value;
    // The set in force took effect one round (65536 s) before the open election's id.
    let elect_at = ELECTION_ID - 65_536;
    assert_eq!(set.elect_at, elect_at);
    assert_eq!(set.elect_close, elect_at - 8192);
    assert_eq!(set.min_stake, 20_000_000_000_000);
    // Gamma stakes but is not in `current_set`: neither in config 34 nor here.
    assert_eq!(set.total_stake, 700_000_000_000_000);
    let expected: Vec<TonapiValidator> = scenario.validators[..2]
        .iter()
        .map(|validator| TonapiValidator {
            address: validator.address.clone(),
            adnl_address: sim_adnl(validator),
            stake: (validator.stake_ton * 1e9) as u128,
            // 2.5 in the elector's fixed point.
            max_factor: 163_840,
        })
        .collect();
    assert_eq!(set.validators, expected);
    let config = config_34(&sim).await;
    assert_eq!(set.elect_at, u64::from(config.utime_since));
    let adnls = |set: &TonapiValidators| -> Vec<String> {
        set.validators
            .iter()
            .map(|v| v.adnl_address.clone())
            .collect()
    };
    let config_adnls = |config: &ValidatorSet| -> Vec<String> {
        config
            .validators
            .iter()
            .map(|v| v.adnl_address.clone().unwrap())
            .collect()
    };
    assert_eq!(adnls(&set), config_adnls(&config));

    // Beta rotated its keys at 5m: its ADNL address of now, as in config 34.
    sim.advance(Duration::from_secs(600));
    let set = keyed(&sim.tonapi_url()).validators().await.unwrap().value;
    let beta = &scenario.validators[1];
    assert_eq!(
        set.validators[1].adnl_address,
        sim_adnl_at(beta, Duration::from_secs(600))
    );
    assert_ne!(set.validators[1].adnl_address, sim_adnl(beta));
    assert_eq!(adnls(&set), config_adnls(&config_34(&sim).await));
    assert_eq!(sim.request_count("tonapi"), 2);
}

#[tokio::test]
async fn accounts_from_the_sim_follow_balance_events_and_unknown_ones_do_not_exist() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    let alpha = "-1:1111111111111111111111111111111111111111111111111111111111111111";
    let account = client.account(alpha).await.unwrap().value;
    assert_eq!(
        account,
        TonapiAccount {
            address: alpha.to_owned(),
            balance: 1_000_500_000_000,
            status: "active".to_owned(),
            last_activity: Some(START),
        }
    );
    sim.advance(Duration::from_secs(600));
    let account = client.account(alpha).await.unwrap().value;
    assert_eq!(account.balance, 1_000_000_000_000);
    assert_eq!(account.last_activity, Some(START + 300));

    let nobody = "0:5555555555555555555555555555555555555555555555555555555555555555";
    let account = client.account(nobody).await.unwrap().value;
    assert_eq!(account.status, "nonexist");
    assert_eq!(account.balance, 0);
    assert_eq!(account.last_activity, None);

    let error = client.account("not-an-address").await.unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidInput { detail } if detail.contains("can't decode address not-an-address")),
        "{error:?}"
    );
    assert!(!error.is_transient());
    let error = client.account("  ").await.unwrap_err();
    assert!(
        matches!(error, SourceError::InvalidInput { .. }),
        "{error:?}"
    );
    // The empty address never reached the sim.
    assert_eq!(sim.request_count("tonapi"), 4);
}

#[tokio::test]
async fn sim_rate_limit_on_tonapi_is_retried_then_reported_with_the_hint() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    let fault = |count| rate_limited(count, 4);
    sim.inject_fault(fault(1));
    assert_eq!(client.validators().await.unwrap().attempts, 2);
    sim.inject_fault(fault(3));
    let error = client.validators().await.unwrap_err();
    let SourceError::RateLimited {
        retry_after,
        message,
    } = &error
    else {
        panic!("expected RateLimited, got {error:?}");
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(4)));
    assert!(message.contains("rate limit: free tier"), "{message}");
    assert!(message.contains("1 request per 4 s"), "{message}");
    assert!(
        message.contains("GET /tonapi/v2/blockchain/validators"),
        "{message}"
    );
}

// ---- a scripted server for wire variants ----

/// Whether an error is the one a case expects.
type Check = fn(&SourceError) -> bool;

#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    retry_after: Option<&'static str>,
}

fn reply(status: u16, content_type: &'static str, body: &str) -> Reply {
    Reply {
        status,
        content_type,
        body: body.to_owned(),
        retry_after: None,
    }
}

/// Answers requests with `replies` in order (the last one repeats) and records each
/// request's path and headers.
struct Scripted {
    base_url: String,
    requests: Arc<Mutex<Vec<(String, AxumHeaders)>>>,
}

async fn scripted(replies: Vec<Reply>) -> Scripted {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: AxumHeaders| {
        let recorded = Arc::clone(&recorded);
        let replies = replies.clone();
        async move {
            let index = {
                let mut recorded = recorded.lock().unwrap();
                recorded.push((uri.to_string(), headers));
                recorded.len() - 1
            };
            let reply = replies[index.min(replies.len() - 1)].clone();
            let mut response = (
                StatusCode::from_u16(reply.status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, reply.content_type)],
                reply.body,
            )
                .into_response();
            if let Some(retry_after) = reply.retry_after {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static(retry_after),
                );
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Scripted {
        base_url: format!("http://{addr}"),
        requests,
    }
}

const JSON: &str = "application/json; charset=utf-8";

#[tokio::test]
async fn numbers_as_strings_and_unknown_fields_are_tolerated() {
    let server = scripted(vec![reply(
        200,
        JSON,
        r#"{"elect_at": "1778685466", "elect_close": 1778685166, "min_stake": "10000000000000",
            "total_stake": 51221406119735104, "note": "extra",
            "validators": [{"address": "-1:668AA12D3E1852519FFF52BF2240976794DD4DC9F11661897F9F5DE9A11A00DE",
              "adnl_address": "E527A2A40D255B0BA2EC9F54DD3D5A472CDE4FD46A0DD93D5E04C02B45E66F78",
              "stake": "2999999000000000", "max_factor": "1966080", "weight": 1}]}"#,
    )])
    .await;
    let set = keyed(&server.base_url).validators().await.unwrap().value;
    assert_eq!(set.elect_at, 1_778_685_466);
    assert_eq!(set.min_stake, 10_000_000_000_000);
    assert_eq!(set.total_stake, 51_221_406_119_735_104);
    assert_eq!(
        set.validators,
        [TonapiValidator {
            address: "-1:668aa12d3e1852519fff52bf2240976794dd4dc9f11661897f9f5de9a11a00de"
                .to_owned(),
            adnl_address: "e527a2a40d255b0ba2ec9f54dd3d5a472cde4fd46a0dd93d5e04c02b45e66f78"
                .to_owned(),
            stake: 2_999_999_000_000_000,
            max_factor: 1_966_080,
        }]
    );
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].0, "/v2/blockchain/validators");
    assert_eq!(
        requests[0].1["authorization"],
        format!("Bearer {SECRET}").as_str()
    );
}

#[tokio::test]
async fn the_real_account_sample_parses_and_a_keyless_client_sends_no_auth_at_4_s_spacing() {
    // tonapi's own landing-page sample (the shared reference), retyped.
    let server = scripted(vec![reply(
        200,
        JSON,
        r#"{"address": "0:cdce58745d265d6f9fd0ae5c79423c991d500eef8bf9a0c79556bb45ff956dd6",
            "balance": 375813296426, "last_activity": 1734515552, "status": "active",
            "interfaces": ["wallet_v5_beta"], "name": "subbotin.ton", "is_scam": false,
            "memo_required": false, "get_methods": ["seqno"], "is_wallet": true}"#,
    )])
    .await;
    let keyless = TonapiClient::new(&server.base_url, None, 50.0, fast_policy()).unwrap();
    assert_eq!(keyless.requests_per_second(), KEYLESS_REQUESTS_PER_SECOND);
    assert_eq!(keyed(&server.base_url).requests_per_second(), 1000.0);
    let account = keyless
        .account("0:CDCE58745D265D6F9FD0AE5C79423C991D500EEF8BF9A0C79556BB45FF956DD6")
        .await
        .unwrap()
        .value;
    assert_eq!(
        account,
        TonapiAccount {
            address: "0:cdce58745d265d6f9fd0ae5c79423c991d500eef8bf9a0c79556bb45ff956dd6"
                .to_owned(),
            balance: 375_813_296_426,
            status: "active".to_owned(),
            last_activity: Some(1_734_515_552),
        }
    );
    let requests = server.requests.lock().unwrap();
    // The raw form goes in the path, lower-cased.
    assert_eq!(
        requests[0].0,
        "/v2/accounts/0:cdce58745d265d6f9fd0ae5c79423c991d500eef8bf9a0c79556bb45ff956dd6"
    );
    assert!(requests[0].1.get("authorization").is_none());
}

#[tokio::test]
async fn a_name_is_sent_as_one_escaped_path_segment() {
    let server = scripted(vec![reply(
        200,
        JSON,
        r#"{"address": "0:00", "balance": "5", "status": "uninit", "last_activity": null}"#,
    )])
    .await;
    let account = keyed(&server.base_url)
        .account("foo bar/x.ton")
        .await
        .unwrap()
        .value;
    assert_eq!(account.balance, 5);
    assert_eq!(account.last_activity, None);
    assert_eq!(
        server.requests.lock().unwrap()[0].0,
        "/v2/accounts/foo%20bar%2Fx.ton"
    );
}

#[tokio::test]
async fn error_bodies_json_plain_text_and_html_become_clear_errors() {
    let cases: Vec<(Reply, Check)> = vec![
        (
            reply(
                404,
                JSON,
                r#"{"error": "entity not found", "error_code": 404}"#,
            ),
            |error| {
                matches!(error, SourceError::Rejected { status: 404, message }
                    if message.contains("GET /v2/accounts/") && message.ends_with("HTTP 404: entity not found"))
            },
        ),
        (
            reply(
                500,
                "text/plain",
                "upstream connect error or disconnect/reset",
            ),
            |error| {
                matches!(error, SourceError::Unavailable { status: 500, message }
                    if message.contains("upstream connect error"))
            },
        ),
        (
            reply(503, JSON, r#""maintenance""#),
            |error| matches!(error, SourceError::Unavailable { status: 503, message } if message.contains("maintenance")),
        ),
        (
            reply(
                502,
                "text/html",
                "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
            ),
            |error| {
                matches!(error, SourceError::Unavailable { status: 502, message }
                    if message.contains("HTML page") && message.contains("502 Bad Gateway"))
            },
        ),
        (
            reply(200, "text/html", "<!DOCTYPE html><html>login</html>"),
            |error| matches!(error, SourceError::InvalidResponse { detail } if detail.contains("HTML page instead of JSON")),
        ),
        (
            reply(200, JSON, r#"{"address": "0:00"}"#),
            |error| matches!(error, SourceError::InvalidResponse { detail } if detail.contains("missing field `balance`")),
        ),
    ];
    let address = "0:cdce58745d265d6f9fd0ae5c79423c991d500eef8bf9a0c79556bb45ff956dd6";
    for (reply, check) in cases {
        let status = reply.status;
        let server = scripted(vec![reply]).await;
        let error = keyed(&server.base_url).account(address).await.unwrap_err();
        assert!(check(&error), "{status}: {error:?}");
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_by_the_core() {
    let limited = Reply {
        status: 429,
        content_type: JSON,
        body: r#"{"error": "rate limit"}"#.to_owned(),
        retry_after: Some("4"),
    };
    let ok = reply(
        200,
        JSON,
        r#"{"elect_at": 1, "elect_close": 0, "min_stake": 1, "total_stake": 0, "validators": []}"#,
    );
    // Retry-After 4 s is capped by the policy's 5 ms max_delay: no real wait.
    let server = scripted(vec![limited.clone(), limited, ok]).await;
    let fetched = keyed(&server.base_url).validators().await.unwrap();
    assert_eq!(fetched.attempts, 3);
    assert!(fetched.value.validators.is_empty());
    assert_eq!(server.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error() {
    let server = scripted(vec![reply(
        401,
        JSON,
        &format!(r#"{{"error": "invalid token Bearer {SECRET}"}}"#),
    )])
    .await;
    let error = keyed(&server.base_url).validators().await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("check the tonapi api_key"), "{text}");
    // Not transient: asked once.
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

// ---- POST /v2/accounts/_bulk ----

const ALPHA: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
const OBSERVER: &str = "0:4444444444444444444444444444444444444444444444444444444444444444";
const NOBODY: &str = "0:5555555555555555555555555555555555555555555555555555555555555555";

/// `0:<i as 64 hex digits>`: distinct valid addresses, none in the scenario.
fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("0:{i:064x}")).collect()
}

#[tokio::test]
async fn bulk_accounts_from_the_sim_equal_the_single_account_answers() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    sim.advance(Duration::from_secs(600));
    // The observer in user-friendly form and alpha in upper case: sent (and answered) raw.
    let observer = crate::ton::parse_address(OBSERVER).unwrap().friendly;
    let alpha_upper = ALPHA.to_uppercase();
    let fetched = client
        .accounts(&[&alpha_upper, &observer, NOBODY])
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 1);
    assert_eq!(sim.request_count("tonapi"), 1);
    let mut singles = Vec::new();
    for address in [ALPHA, OBSERVER, NOBODY] {
        singles.push(client.account(address).await.unwrap().value);
    }
    assert_eq!(fetched.value, singles);
    // The balance event at 5m applied, and the unknown account does not exist.
    assert_eq!(fetched.value[0].address, ALPHA);
    assert_eq!(fetched.value[0].balance, 1_000_000_000_000);
    assert_eq!(fetched.value[1].address, OBSERVER);
    assert_eq!(fetched.value[1].status, "active");
    assert_eq!(fetched.value[2].address, NOBODY);
    assert_eq!(fetched.value[2].status, "nonexist");
    assert_eq!(fetched.value[2].balance, 0);

    // Nothing to ask: nothing sent.
    let fetched = client.accounts(&[]).await.unwrap();
    assert!(fetched.value.is_empty());
    assert_eq!(fetched.attempts, 0);
    assert_eq!(sim.request_count("tonapi"), 4);
}

#[tokio::test]
async fn bulk_of_150_addresses_is_two_requests_answered_in_order() {
    let (sim, _) = start_tonapi_sim().await;
    let mut addresses = numbered(150);
    addresses[120] = ALPHA.to_owned();
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let fetched = keyed(&sim.tonapi_url()).accounts(&refs).await.unwrap();
    assert_eq!(fetched.attempts, 2);
    assert_eq!(sim.request_count("tonapi"), 2);
    let answered: Vec<&str> = fetched
        .value
        .iter()
        .map(|account| account.address.as_str())
        .collect();
    assert_eq!(answered, refs);
    assert_eq!(fetched.value[120].balance, 1_000_500_000_000);
    assert_eq!(fetched.value[120].status, "active");
    assert!(
        fetched
            .value
            .iter()
            .enumerate()
            .all(|(i, account)| i == 120 || account.status == "nonexist")
    );
}

/// Answers `POST /v2/accounts/_bulk` with each id as a `nonexist` account (the first `drop`
/// ids of each request left out), recording each request's ids.
async fn bulk_echo(drop: usize) -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let app = axum::Router::new().route(
        "/v2/accounts/_bulk",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = Arc::clone(&recorded);
            async move {
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let ids: Vec<String> =
                    serde_json::from_value(request["account_ids"].clone()).unwrap();
                recorded.lock().unwrap().push(ids.clone());
                let accounts: Vec<serde_json::Value> = ids
                    .iter()
                    .skip(drop)
                    .map(
                        |id| serde_json::json!({"address": id, "balance": 0, "status": "nonexist"}),
                    )
                    .collect();
                axum::Json(serde_json::json!({ "accounts": accounts }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), requests)
}

#[tokio::test]
async fn bulk_chunks_are_100_ids_sent_raw_in_order_and_missing_accounts_are_absent() {
    let (base_url, requests) = bulk_echo(0).await;
    let client = keyed(&base_url);
    let addresses = numbered(250);
    // User-friendly and upper-case forms go out raw in lower case.
    let friendly = crate::ton::parse_address(&addresses[3]).unwrap().friendly;
    let upper = addresses[200].to_uppercase();
    let mut refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    refs[3] = &friendly;
    refs[200] = &upper;
    let fetched = client.accounts(&refs).await.unwrap();
    assert_eq!(fetched.attempts, 3);
    let sent = requests.lock().unwrap().clone();
    assert_eq!(
        sent.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(sent.concat(), addresses);
    let answered: Vec<String> = fetched.value.into_iter().map(|a| a.address).collect();
    assert_eq!(answered, addresses);

    // An answer that leaves accounts out: they are absent, not an error.
    let (base_url, _) = bulk_echo(1).await;
    let refs: Vec<&str> = addresses[..150].iter().map(String::as_str).collect();
    let fetched = keyed(&base_url).accounts(&refs).await.unwrap();
    let answered: Vec<&str> = fetched.value.iter().map(|a| a.address.as_str()).collect();
    let expected: Vec<&str> = refs[1..100].iter().chain(&refs[101..]).copied().collect();
    assert_eq!(answered, expected);
}

#[tokio::test]
async fn bulk_with_an_invalid_address_is_refused_before_anything_is_sent() {
    let (base_url, requests) = bulk_echo(0).await;
    let client = keyed(&base_url);
    let mut addresses = numbered(150);
    // In the second chunk: the first one is not sent either.
    addresses[120] = "foo.ton".to_owned();
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let error = client.accounts(&refs).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidInput { detail }
            if detail.contains("\"foo.ton\"") && detail.contains("accounts/_bulk") && detail.contains("nothing was sent")),
        "{error:?}"
    );
    assert!(!error.is_transient());
    let error = client.accounts(&[ALPHA, "  "]).await.unwrap_err();
    assert!(
        matches!(error, SourceError::InvalidInput { .. }),
        "{error:?}"
    );
    assert!(requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bulk_error_bodies_become_clear_errors_and_transient_ones_are_retried() {
    let address = "0:cdce58745d265d6f9fd0ae5c79423c991d500eef8bf9a0c79556bb45ff956dd6";
    // tonapi's 400 for the whole request: named, not retried.
    let server = scripted(vec![reply(
        400,
        JSON,
        r#"{"error": "can't decode address foo"}"#,
    )])
    .await;
    let error = keyed(&server.base_url)
        .accounts(&[address])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidInput { detail }
            if detail.contains("tonapi POST /v2/accounts/_bulk: HTTP 400: can't decode address foo")),
        "{error:?}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);

    // A 5xx is retried like a GET (read-only), up to the policy's 3 attempts.
    let server = scripted(vec![reply(
        502,
        "text/html",
        "<html>502 Bad Gateway</html>",
    )])
    .await;
    let error = keyed(&server.base_url)
        .accounts(&[address])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Unavailable { status: 502, message } if message.contains("HTML page")),
        "{error:?}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 3);

    // 429 then 200: the second attempt answers.
    let limited = Reply {
        status: 429,
        content_type: JSON,
        body: r#"{"error": "rate limit"}"#.to_owned(),
        retry_after: Some("4"),
    };
    let ok = reply(
        200,
        JSON,
        &format!(
            r#"{{"accounts": [{{"address": "{address}", "balance": "7", "status": "active"}}]}}"#
        ),
    );
    let server = scripted(vec![limited, ok]).await;
    let fetched = keyed(&server.base_url).accounts(&[address]).await.unwrap();
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.value[0].balance, 7);
    assert_eq!(server.requests.lock().unwrap()[0].0, "/v2/accounts/_bulk");

    // Not the `Accounts` shape.
    let server = scripted(vec![reply(200, JSON, r#"{"address": "0:00"}"#)]).await;
    let error = keyed(&server.base_url)
        .accounts(&[address])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("missing field `accounts`")),
        "{error:?}"
    );
}

#[tokio::test]
async fn sim_bulk_honours_tonapi_faults_and_answers_a_bad_request_with_400() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    sim.inject_fault(rate_limited(1, 4));
    let fetched = client.accounts(&[ALPHA, NOBODY]).await.unwrap();
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.value.len(), 2);

    // What the client refuses to send, the sim refuses like tonapi: the whole request.
    let url = format!("{}/v2/accounts/_bulk", sim.tonapi_url());
    let http = reqwest::Client::new();
    let cases = [
        (
            serde_json::json!({"account_ids": [ALPHA, "not-an-address"]}),
            "can't decode address not-an-address",
        ),
        (serde_json::json!({"account_ids": []}), "empty list of ids"),
        (
            serde_json::json!({"account_ids": numbered(101)}),
            "the maximum number of accounts to request at once: 100",
        ),
        (serde_json::json!({"ids": [ALPHA]}), "decode request"),
    ];
    for (body, expected) in cases {
        let response = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    // 100 ids is the limit, not over it.
    let body = serde_json::json!({"account_ids": numbered(100)});
    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let accounts = parse_accounts(&response.json().await.unwrap()).unwrap();
    assert_eq!(accounts.len(), 100);
}

// ---- staking pools ----

const VERY_FIRST_POOL: &str = "Ef8gQpp7pKD9GzBrcr3ju9faPjEWHPerhZ4tFpSiDoDUINxn";

#[tokio::test]
async fn staking_pools_from_the_sim_are_three_fixed_pools_cycling_with_config_34() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    let fetched = client.staking_pools().await.unwrap();
    assert_eq!(fetched.attempts, 1);
    let pools = fetched.value;
    let config = config_34(&sim).await;
    // The round in force: config 34, one round (65536 s) before the open election.
    assert_eq!(u64::from(config.utime_since), ELECTION_ID - 65_536);
    let cycle_start = i64::from(config.utime_since);
    let cycle_end = i64::from(config.utime_until);
    let first_raw = crate::ton::parse_address(VERY_FIRST_POOL).unwrap().raw;
    assert_eq!(
        pools[0],
        StakingPool {
            address: first_raw,
            name: "Very First Pool #1".to_owned(),
            implementation: "tf".to_owned(),
            apy: 5.31,
            min_stake_nanoton: 10_000_000_000_000,
            total_amount_nanoton: 4_200_000_000_000_000,
            verified: true,
            current_nominators: 38,
            max_nominators: 40,
            cycle_start,
            cycle_end,
        }
    );
    let summary: Vec<(&str, &str, f64, u128, bool)> = pools
        .iter()
        .map(|pool| {
            (
                pool.name.as_str(),
                pool.implementation.as_str(),
                pool.apy,
                pool.min_stake_nanoton,
                pool.verified,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Very First Pool #1", "tf", 5.31, 10_000_000_000_000, true),
            ("Whales Pool #1", "whales", 4.8, 50_000_000_000, true),
            ("Tonstakers", "liquidTF", 4.6, 1_000_000_000, false),
        ]
    );
    for pool in &pools {
        assert!(pool.address.starts_with("-1:"), "{}", pool.address);
        assert_eq!(pool.address.len(), 67, "{}", pool.address);
        assert_eq!((pool.cycle_start, pool.cycle_end), (cycle_start, cycle_end));
    }
    assert_ne!(pools[1].address, pools[2].address);
    // Deterministic: the same answer again.
    assert_eq!(client.staking_pools().await.unwrap().value, pools);
    assert_eq!(sim.request_count("tonapi"), 2);
}

#[tokio::test]
async fn sim_staking_pools_honour_tonapi_faults() {
    let (sim, _) = start_tonapi_sim().await;
    let client = keyed(&sim.tonapi_url());
    sim.inject_fault(rate_limited(1, 1));
    let fetched = client.staking_pools().await.unwrap();
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.value.len(), 3);
    assert_eq!(sim.request_count("tonapi"), 2);
}

#[tokio::test]
async fn staking_pools_tolerate_strings_extras_and_missing_counts() {
    // The shared reference (`staking_pools.CONSTRUCTED.json`), retyped, its numbers partly
    // as strings, a second pool without nominator counts or cycle times.
    let server = scripted(vec![reply(
        200,
        JSON,
        r#"{"_comment": "constructed", "pools": [
            {"address": "Ef8gQpp7pKD9GzBrcr3ju9faPjEWHPerhZ4tFpSiDoDUINxn", "name": "Very First Pool #1",
             "total_amount": 0, "implementation": "tf", "apy": 5.31, "min_stake": "5000000000",
             "cycle_start": 1678223064, "cycle_end": "1678223064", "verified": true,
             "current_nominators": 10, "max_nominators": 100, "nominators_stake": 5000000000,
             "validator_stake": 5000000000, "cycle_length": 0},
            {"address": "0:48FB0195A7FC7454512377B9BD704503DED27F6E7C4C4A9D136FDAB3EF9EC04C",
             "name": "Tonkeeper pool", "total_amount": "12000000000000000",
             "implementation": "ffvault", "apy": "4.2", "min_stake": 1000000000,
             "verified": "false", "current_nominators": null}],
          "implementations": {"tf": {"name": "TF", "description": "", "url": "", "socials": []}}}"#,
    )])
    .await;
    let pools = keyed(&server.base_url).staking_pools().await.unwrap().value;
    assert_eq!(
        pools,
        [
            StakingPool {
                address: crate::ton::parse_address(VERY_FIRST_POOL).unwrap().raw,
                name: "Very First Pool #1".to_owned(),
                implementation: "tf".to_owned(),
                apy: 5.31,
                min_stake_nanoton: 5_000_000_000,
                total_amount_nanoton: 0,
                verified: true,
                current_nominators: 10,
                max_nominators: 100,
                cycle_start: 1_678_223_064,
                cycle_end: 1_678_223_064,
            },
            StakingPool {
                address: "0:48fb0195a7fc7454512377b9bd704503ded27f6e7c4c4a9d136fdab3ef9ec04c"
                    .to_owned(),
                name: "Tonkeeper pool".to_owned(),
                implementation: "ffvault".to_owned(),
                apy: 4.2,
                min_stake_nanoton: 1_000_000_000,
                total_amount_nanoton: 12_000_000_000_000_000,
                verified: false,
                current_nominators: 0,
                max_nominators: 0,
                cycle_start: 0,
                cycle_end: 0,
            },
        ]
    );
    assert_eq!(server.requests.lock().unwrap()[0].0, "/v2/staking/pools");
}

#[tokio::test]
async fn a_malformed_staking_pools_body_is_a_clear_error_naming_the_field() {
    let pool = |apy: &str| {
        format!(
            r#"{{"pools": [{{"address": "0:00", "name": "p", "implementation": "tf", {apy}
                "min_stake": 1, "total_amount": 1, "verified": true}}], "implementations": {{}}}}"#
        )
    };
    let cases: Vec<(Reply, Check)> = vec![
        (reply(200, JSON, &pool("")), |error| {
            matches!(error, SourceError::InvalidResponse { detail }
                if detail.contains("missing field `apy`"))
        }),
        (reply(200, JSON, &pool(r#""apy": "high","#)), |error| {
            matches!(error, SourceError::InvalidResponse { detail }
                if detail.contains("expected a number") && detail.contains("\"high\""))
        }),
        (
            reply(200, JSON, r#"{"pools": {"a": 1}}"#),
            |error| matches!(error, SourceError::InvalidResponse { detail } if detail.contains("pools")),
        ),
        (
            reply(200, JSON, r#"{"pools": [{"address": "0:00""#),
            |error| matches!(error, SourceError::InvalidResponse { .. }),
        ),
    ];
    for (reply, check) in cases {
        let body = reply.body.clone();
        let server = scripted(vec![reply]).await;
        let policy = RetryPolicy {
            max_attempts: 1,
            ..fast_policy()
        };
        let client =
            TonapiClient::new(&server.base_url, Some(Secret::new(SECRET)), 1000.0, policy).unwrap();
        let error = client.staking_pools().await.unwrap_err();
        assert!(check(&error), "{body}: {error:?}");
    }

    // A saved answer names the JSON path of the bad field.
    let body: serde_json::Value = serde_json::from_str(&pool(r#""apy": "high","#)).unwrap();
    let error = parse_staking_pools(&body).unwrap_err();
    let SourceError::InvalidResponse { detail } = &error else {
        panic!("expected InvalidResponse, got {error:?}");
    };
    assert!(
        detail.contains("/v2/staking/pools") && detail.contains("at `pools[0].apy`"),
        "{detail}"
    );
}

// ---- jettons ----

const HOLDER: &str = "0:5555555555555555555555555555555555555555555555555555555555555555";

#[tokio::test]
async fn jettons_keep_good_entries_and_name_the_broken_ones() {
    // Shapes as tonapi sends them: balances as strings, Tether's symbol `USD₮`, prices as
    // numbers with diffs signed `+` or U+2212, a spam jetton on the black list, an entry
    // without a symbol and one whose metadata claims 255 decimals.
    let body = r#"{"balances": [
        {"balance": "1500250000", "price": {"prices": {"USD": 0.9998}, "diff_24h": {"USD": "−0.02%"},
          "diff_7d": {"USD": "+0.01%"}},
         "wallet_address": {"address": "0:aa", "is_scam": false, "is_wallet": false},
         "jetton": {"address": "0:B113A994B5024A16719F69139328EB759596C38A25F59028B146FECDC3621DFE",
           "name": "Tether USD", "symbol": "USD₮", "decimals": 6, "image": "x",
           "verification": "whitelist", "score": 100}},
        {"balance": 5000000000000,
         "wallet_address": {"address": "0:bb", "is_scam": true, "is_wallet": false},
         "jetton": {"address": "0:cc", "name": "Free USDT", "symbol": "USDT", "decimals": "9",
           "image": "x", "verification": "blacklist", "score": -100}},
        {"balance": "7", "jetton": {"address": "0:dd", "name": "nameless", "decimals": 9}},
        {"balance": "1", "jetton": {"address": "0:ee", "symbol": "HUGE", "decimals": 255}},
        {"balance": "2500000000", "price": {"prices": {"usd": "2.5", "TON": null}},
         "jetton": {"address": "0:ff", "symbol": "tsTON", "decimals": 9}}
    ]}"#;
    let server = scripted(vec![reply(200, JSON, body)]).await;
    let client = keyed(&server.base_url);
    let jettons = client
        .account_jettons(HOLDER, &["usd"])
        .await
        .unwrap()
        .value;
    assert_eq!(
        server.requests.lock().unwrap()[0].0,
        format!("/v2/accounts/{HOLDER}/jettons?currencies=usd")
    );
    let read: Vec<(&str, u32, u128, &str)> = jettons
        .balances
        .iter()
        .map(|j| {
            (
                j.symbol.as_str(),
                j.decimals,
                j.raw_balance,
                j.verification.as_str(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("USD₮", 6, 1_500_250_000, "whitelist"),
            ("USDT", 9, 5_000_000_000_000, "blacklist"),
            ("tsTON", 9, 2_500_000_000, "none"),
        ]
    );
    let tether = &jettons.balances[0];
    assert_eq!(
        tether.master,
        "0:b113a994b5024a16719f69139328eb759596c38a25f59028b146fecdc3621dfe"
    );
    assert_eq!(tether.name, "Tether USD");
    assert_eq!(tether.prices.get("USD"), Some(&0.9998));
    assert!(jettons.balances[1].prices.is_empty());
    // A price sent as a string is read; a null one is not a price.
    assert_eq!(
        jettons.balances[2].prices.iter().collect::<Vec<_>>(),
        [(&"USD".to_owned(), &2.5)]
    );
    assert_eq!(jettons.skipped.len(), 2, "{:?}", jettons.skipped);
    assert!(
        jettons.skipped[0].starts_with("balances[2]: at `jetton`")
            && jettons.skipped[0].contains("symbol"),
        "{:?}",
        jettons.skipped
    );
    assert!(
        jettons.skipped[1].contains("balances[3] (HUGE): 255 decimals"),
        "{:?}",
        jettons.skipped
    );

    // No balances array at all is an error naming it, not an empty wallet.
    let error = parse_jettons(&serde_json::json!({"jettons": []})).unwrap_err();
    assert!(error.to_string().contains("balances"), "{error}");
}

#[tokio::test]
async fn jettons_from_the_sim_belong_to_their_owner_and_carry_a_price_when_asked() {
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(
        &format!(
            r#"
name = "jettons"
speed = 0.0

[[jettons]]
owner = "{HOLDER}"
symbol = "USD₮"
name = "Tether USD"
decimals = 6
balance = "2500000000"
price_usd = 1.0

[[jettons]]
owner = "{HOLDER}"
symbol = "SCAM"
balance = "1000000000000"
verification = "blacklist"

[[jettons]]
owner = "0:6666666666666666666666666666666666666666666666666666666666666666"
symbol = "NOT"
balance = "5"
"#
        ),
        "jettons",
    )
    .unwrap();
    let sim = SimWorld::start(scenario, loopback()).await.unwrap();
    let client = keyed(&sim.tonapi_url());
    // Upper-case hex is the same owner.
    let jettons = client
        .account_jettons(&HOLDER.to_uppercase(), &["usd"])
        .await
        .unwrap()
        .value;
    assert!(jettons.skipped.is_empty(), "{:?}", jettons.skipped);
    let symbols: Vec<&str> = jettons.balances.iter().map(|j| j.symbol.as_str()).collect();
    assert_eq!(symbols, ["USD₮", "SCAM"]);
    assert_eq!(jettons.balances[0].raw_balance, 2_500_000_000);
    assert_eq!(jettons.balances[0].decimals, 6);
    assert_eq!(jettons.balances[0].prices.get("USD"), Some(&1.0));
    assert_eq!(jettons.balances[1].verification, "blacklist");
    assert!(jettons.balances[1].prices.is_empty());
    // Without currencies, no price.
    let unpriced = client.account_jettons(HOLDER, &[]).await.unwrap().value;
    assert!(unpriced.balances[0].prices.is_empty());
    // Not an address: tonapi's 400, as a clear error.
    let error = client
        .account_jettons("not-an-address", &["usd"])
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("can't decode address"),
        "{error}"
    );
}

use std::time::Duration;

use super::*;
use crate::sim::{Fault, FaultKind, SimHandle, SimService};
use crate::test_support::{SECRET, fast_policy, fixed_server, start_sim};

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

fn client(sim: &SimHandle, retry: RetryPolicy) -> CoinGeckoClient {
    CoinGeckoClient::new(
        &sim.coingecko_url(),
        CoinGeckoPlan::Demo,
        Some(Secret::new(SECRET)),
        1000.0,
        retry,
    )
    .unwrap()
}

fn counted(kind: FaultKind, count: u32) -> Fault {
    Fault {
        service: SimService::Coingecko,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

const TON_BTC_ETH: [&str; 3] = ["the-open-network", "bitcoin", "ethereum"];

#[tokio::test]
async fn simple_price_returns_ton_btc_eth_as_the_sim_serves_them() {
    let sim = start_sim().await;
    sim.advance(Duration::from_secs(3600));
    let fetched = client(&sim, fast_policy())
        .simple_price(&ids(&TON_BTC_ETH), "USD")
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 1);
    let quotes = fetched.value;
    assert_eq!(
        quotes
            .iter()
            .map(|q| q.coin_id.as_str())
            .collect::<Vec<_>>(),
        TON_BTC_ETH
    );
    for quote in &quotes {
        assert_eq!(quote.vs_currency, "usd");
        assert_eq!(Some(quote.price), sim.price(&quote.coin_id), "{quote:?}");
        assert!(quote.change_24h_percent.is_some(), "{quote:?}");
        assert_eq!(quote.last_updated_at, Some(sim.now()));
    }
    // ETH has zero volatility in the test scenario: flat price, zero change.
    assert_eq!(quotes[2].price, 3500.0);
    assert_eq!(quotes[2].change_24h_percent, Some(0.0));
    assert_eq!(sim.request_count("coingecko"), 1);
}

#[tokio::test]
async fn unknown_ids_and_unquoted_currencies_are_silently_absent() {
    let sim = start_sim().await;
    let client = client(&sim, fast_policy());
    let quotes = client
        .simple_price(&ids(&["no-such-coin", "bitcoin"]), "usd")
        .await
        .unwrap()
        .value;
    assert_eq!(quotes.len(), 1);
    assert_eq!(quotes[0].coin_id, "bitcoin");
    let in_eur = client
        .simple_price(&ids(&["bitcoin"]), "eur")
        .await
        .unwrap();
    assert!(in_eur.value.is_empty(), "{:?}", in_eur.value);
}

#[tokio::test]
async fn a_pinned_price_is_served_with_a_null_24h_change() {
    let sim = start_sim().await;
    sim.set_price("the-open-network", 1.25);
    let quotes = client(&sim, fast_policy())
        .simple_price(&ids(&["the-open-network"]), "usd")
        .await
        .unwrap()
        .value;
    assert_eq!(quotes[0].price, 1.25);
    assert_eq!(quotes[0].change_24h_percent, None);
}

#[tokio::test]
async fn a_single_429_with_retry_after_is_retried_and_then_succeeds() {
    let sim = start_sim().await;
    sim.inject_fault(counted(
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
        1,
    ));
    // Retry-After (1 s) is capped by the policy's 5 ms max_delay, so no real wait.
    let fetched = client(&sim, fast_policy())
        .simple_price(&ids(&["bitcoin"]), "usd")
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 2);
    assert_eq!(fetched.value.len(), 1);
    assert_eq!(sim.request_count("coingecko"), 2);
}

/// Injects `kind` for exactly `max_attempts` requests, expects the client to give up with an
/// error `check` accepts after using every attempt, then to succeed on the next call.
async fn fails_after_all_attempts_then_recovers(
    kind: FaultKind,
    retry: RetryPolicy,
    check: impl Fn(&SourceError),
) {
    let sim = start_sim().await;
    let attempts = retry.max_attempts;
    sim.inject_fault(counted(kind.clone(), attempts));
    let client = client(&sim, retry);
    let error = client
        .simple_price(&ids(&TON_BTC_ETH), "usd")
        .await
        .unwrap_err();
    check(&error);
    assert!(error.is_transient(), "{kind:?}: {error}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{kind:?} leaked the key: {text}");
    assert_eq!(
        sim.request_count("coingecko"),
        u64::from(attempts),
        "{kind:?}"
    );
    let recovered = client
        .simple_price(&ids(&TON_BTC_ETH), "usd")
        .await
        .unwrap();
    assert_eq!(recovered.attempts, 1);
    assert_eq!(recovered.value.len(), 3);
}

#[tokio::test]
async fn persistent_429_with_retry_after_ends_rate_limited() {
    fails_after_all_attempts_then_recovers(
        FaultKind::RateLimit {
            retry_after_seconds: Some(30),
        },
        fast_policy(),
        |error| match error {
            SourceError::RateLimited {
                retry_after,
                message,
            } => {
                assert_eq!(*retry_after, Some(Duration::from_secs(30)));
                assert!(message.contains("exceeded the Rate Limit"), "{message}");
                assert!(
                    message.contains("coingecko GET /coingecko/api/v3/simple/price"),
                    "{message}"
                );
            }
            other => panic!("expected RateLimited, got {other:?}"),
        },
    )
    .await;
}

#[tokio::test]
async fn persistent_429_without_retry_after_ends_rate_limited() {
    fails_after_all_attempts_then_recovers(
        FaultKind::RateLimit {
            retry_after_seconds: None,
        },
        fast_policy(),
        |error| {
            assert!(
                matches!(
                    error,
                    SourceError::RateLimited {
                        retry_after: None,
                        ..
                    }
                ),
                "{error:?}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn html_429_is_rate_limited_without_parsing_json() {
    fails_after_all_attempts_then_recovers(FaultKind::RateLimitHtml, fast_policy(), |error| {
        match error {
            SourceError::RateLimited { message, .. } => {
                assert!(message.contains("HTML page"), "{message}");
                assert!(message.contains("Cloudflare"), "{message}");
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn server_errors_end_unavailable_with_their_status() {
    for status in [500, 502, 503, 504] {
        fails_after_all_attempts_then_recovers(
            FaultKind::ServerError { status },
            fast_policy(),
            |error| {
                assert!(
                    matches!(error, SourceError::Unavailable { status: s, .. } if *s == status),
                    "{status}: {error:?}"
                );
            },
        )
        .await;
    }
}

#[tokio::test]
async fn slow_answers_end_in_timeout() {
    let retry = RetryPolicy {
        timeout: Duration::from_millis(50),
        ..fast_policy()
    };
    fails_after_all_attempts_then_recovers(FaultKind::Timeout { delay_ms: 500 }, retry, |error| {
        assert_eq!(
            *error,
            SourceError::Timeout {
                after: Duration::from_millis(50)
            }
        );
    })
    .await;
}

#[tokio::test]
async fn a_non_json_200_is_an_invalid_response_naming_the_content_type() {
    fails_after_all_attempts_then_recovers(
        FaultKind::Garbage,
        fast_policy(),
        |error| match error {
            SourceError::InvalidResponse { detail } => {
                assert!(detail.contains("Content-Type text/html"), "{detail}");
                assert!(detail.contains("<!DOCTYPE html>"), "{detail}");
            }
            other => panic!("expected InvalidResponse, got {other:?}"),
        },
    )
    .await;
}

#[tokio::test]
async fn truncated_json_is_an_invalid_response_with_the_parse_position() {
    fails_after_all_attempts_then_recovers(
        FaultKind::Truncated,
        fast_policy(),
        |error| match error {
            SourceError::InvalidResponse { detail } => {
                assert!(detail.contains("EOF while parsing"), "{detail}");
                assert!(detail.contains("line 1 column"), "{detail}");
                assert!(detail.contains("body starts with"), "{detail}");
            }
            other => panic!("expected InvalidResponse, got {other:?}"),
        },
    )
    .await;
}

#[tokio::test]
async fn demo_key_is_sent_in_its_header_and_never_in_errors() {
    let server = fixed_server(
        401,
        "application/json",
        r#"{"status":{"error_code":10002,"error_message":"API Key Missing or invalid: SECRET-KEY-123"}}"#,
    )
    .await;
    let client = CoinGeckoClient::new(
        &format!("http://{}/api/v3", server.addr),
        CoinGeckoPlan::Demo,
        Some(Secret::new(SECRET)),
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let error = client
        .simple_price(&ids(&["bitcoin"]), "usd")
        .await
        .unwrap_err();
    let headers = server.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers.get("x-cg-demo-api-key").unwrap(), SECRET);
    // 401 is not transient: one request, and the echoed key is scrubbed.
    assert!(
        matches!(error, SourceError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("API Key Missing or invalid: ***"), "{text}");
}

#[tokio::test]
async fn html_403_from_cloudflare_is_a_transient_block() {
    let server = fixed_server(
        403,
        "text/html; charset=UTF-8",
        "<!DOCTYPE html><title>Access denied | Error 1020</title>",
    )
    .await;
    let client = CoinGeckoClient::new(
        &format!("http://{}/api/v3", server.addr),
        CoinGeckoPlan::Public,
        None,
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let error = client
        .simple_price(&ids(&["bitcoin"]), "usd")
        .await
        .unwrap_err();
    assert!(
        matches!(error, SourceError::Unavailable { status: 403, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[test]
fn demo_and_pro_plans_need_a_key_and_inputs_are_checked() {
    let error = CoinGeckoClient::new(
        "http://127.0.0.1:1/api/v3",
        CoinGeckoPlan::Pro,
        None,
        1.0,
        RetryPolicy::default(),
    )
    .err()
    .unwrap();
    assert!(error.to_string().contains("x-cg-pro-api-key"), "{error}");
    assert!(validate_inputs(&[], "usd").is_err());
    assert!(validate_inputs(&ids(&["bitcoin,ethereum"]), "usd").is_err());
    assert!(validate_inputs(&ids(&["bitcoin"]), "us d").is_err());
    assert!(validate_inputs(&ids(&["the-open-network"]), "usd").is_ok());
}

#[test]
fn plan_deserializes_from_snake_case() {
    let plan: CoinGeckoPlan = serde_json::from_str("\"demo\"").unwrap();
    assert_eq!(plan, CoinGeckoPlan::Demo);
}

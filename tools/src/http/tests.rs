use std::time::{Duration, SystemTime};

use super::*;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn default_policy_matches_the_documented_values() {
    let default = RetryPolicy::default();
    assert_eq!(default.max_attempts, 4);
    assert_eq!(default.base_delay, Duration::from_millis(500));
    assert_eq!(default.max_delay, Duration::from_secs(60));
    assert_eq!(default.timeout, Duration::from_secs(10));
}

#[test]
fn backoff_doubles_per_attempt_at_full_jitter() {
    let policy = policy();
    let delays: Vec<Duration> = (1..=4)
        .map(|attempt| backoff_delay(&policy, attempt, None, 1.0))
        .collect();
    assert_eq!(
        delays,
        [500, 1000, 2000, 4000].map(Duration::from_millis).to_vec()
    );
}

#[test]
fn backoff_jitter_scales_into_half_to_full() {
    let policy = policy();
    assert_eq!(
        backoff_delay(&policy, 2, None, 0.0),
        Duration::from_millis(500)
    );
    assert_eq!(
        backoff_delay(&policy, 2, None, 0.5),
        Duration::from_millis(750)
    );
    // Out-of-range jitter is clamped, not trusted.
    assert_eq!(
        backoff_delay(&policy, 2, None, 7.0),
        Duration::from_millis(1000)
    );
    assert_eq!(
        backoff_delay(&policy, 2, None, f64::NAN),
        Duration::from_millis(1000)
    );
}

#[test]
fn backoff_is_capped_at_max_delay_even_for_huge_attempts() {
    let policy = policy();
    assert_eq!(
        backoff_delay(&policy, 10, None, 1.0),
        Duration::from_secs(60)
    );
    assert_eq!(
        backoff_delay(&policy, u32::MAX, None, 1.0),
        Duration::from_secs(60)
    );
}

#[test]
fn retry_after_wins_over_backoff_and_is_capped() {
    let policy = policy();
    assert_eq!(
        backoff_delay(&policy, 1, Some(Duration::from_secs(7)), 0.0),
        Duration::from_secs(7)
    );
    assert_eq!(
        backoff_delay(&policy, 1, Some(Duration::from_secs(119 * 60)), 0.0),
        Duration::from_secs(60)
    );
}

#[test]
fn parse_retry_after_reads_delta_seconds() {
    let now = SystemTime::now();
    assert_eq!(
        parse_retry_after("119", now),
        Some(Duration::from_secs(119))
    );
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("-5", now), None);
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("", now), None);
}

#[test]
fn parse_retry_after_reads_http_dates() {
    let now = httpdate::parse_http_date("Thu, 29 Sep 2022 16:17:14 GMT").unwrap();
    assert_eq!(
        parse_retry_after("Thu, 29 Sep 2022 16:19:14 GMT", now),
        Some(Duration::from_secs(120))
    );
    // A date in the past means retry now.
    assert_eq!(
        parse_retry_after("Thu, 29 Sep 2022 16:00:00 GMT", now),
        Some(Duration::ZERO)
    );
}

#[test]
fn transient_kinds_and_labels() {
    let cases = [
        (
            SourceError::RateLimited {
                retry_after: None,
                message: String::new(),
            },
            true,
            "rate_limited",
        ),
        (
            SourceError::Unavailable {
                status: 503,
                message: String::new(),
            },
            true,
            "unavailable",
        ),
        (
            SourceError::Timeout {
                after: Duration::from_secs(1),
            },
            true,
            "timeout",
        ),
        (
            SourceError::Connect {
                message: String::new(),
            },
            true,
            "connect",
        ),
        (
            SourceError::InvalidResponse {
                detail: String::new(),
            },
            true,
            "invalid_response",
        ),
        (
            SourceError::Upstream {
                code: Some(500),
                message: String::new(),
            },
            false,
            "upstream",
        ),
        (
            SourceError::Rejected {
                status: 401,
                message: String::new(),
            },
            false,
            "rejected",
        ),
        (
            SourceError::InvalidInput {
                detail: String::new(),
            },
            false,
            "invalid_input",
        ),
    ];
    for (error, transient, kind) in cases {
        assert_eq!(error.is_transient(), transient, "{error:?}");
        assert_eq!(error.kind(), kind);
    }
}

#[test]
fn redact_url_hides_api_keys_and_keeps_other_params() {
    let url = Url::parse(
        "https://toncenter.com/api/v2/getAddressInformation?address=EQabc&api_key=SECRET-KEY-123",
    )
    .unwrap();
    let printed = redact_url(&url);
    assert!(!printed.contains("SECRET-KEY-123"), "{printed}");
    assert!(
        printed.contains("api_key=***") || printed.contains("api_key=%2A%2A%2A"),
        "{printed}"
    );
    assert!(printed.contains("address=EQabc"), "{printed}");
}

#[test]
fn client_rejects_a_non_positive_rate() {
    let error = HttpCore::new("test", 0.0, RetryPolicy::default(), HeaderMap::new(), None)
        .err()
        .unwrap();
    assert_eq!(error.kind(), "invalid_input");
    assert!(error.to_string().contains("requests_per_second"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn rate_limiter_spaces_requests_by_the_minimum_interval() {
    let limiter = RateLimiter {
        min_interval: Duration::from_millis(250),
        next_slot: Mutex::new(None),
    };
    let started = Instant::now();
    for _ in 0..4 {
        limiter.acquire().await;
    }
    // First request immediately, then three more 250 ms apart (virtual time).
    // Tokio timers have millisecond resolution, so allow one tick per wait.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(750) && elapsed <= Duration::from_millis(760),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transient_connect_error_without_the_key() {
    // Bind then drop a listener to get a loopback port nobody listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let core = HttpCore::new(
        "test",
        1000.0,
        crate::test_support::fast_policy(),
        HeaderMap::new(),
        Some(Secret::new(crate::test_support::SECRET)),
    )
    .unwrap();
    let url = Url::parse(&format!(
        "http://{addr}/x?api_key={}",
        crate::test_support::SECRET
    ))
    .unwrap();
    let error = core.get(&url, |_| Ok(())).await.unwrap_err();
    assert_eq!(error.kind(), "connect", "{error}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(crate::test_support::SECRET), "{text}");
    assert!(text.contains("test GET /x"), "{text}");
}

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::IntoResponse;

use super::*;
use crate::sim::{Scenario, SimHandle, SimWorld};
use crate::test_support::{SECRET, fast_policy, loopback};

/// First lines of ton-blockchain/ton's `recent_changelog.md` for 2024.12 (retyped from the
/// shared reference), used as a release body.
const NOTES_2024_12: &str = "## 2024.12 Update\n\n1. FunC 0.4.6: Fix in try/catch handling, fixing pure flag for functions stored in variables\n";

fn releases_scenario() -> String {
    let mut text =
        String::from("name = \"releases\"\nspeed = 0.0\nstart = \"2025-01-01T00:00:00Z\"\n");
    for (index, tag) in ["v2024.08", "v2024.09", "v2024.10", "v2024.11"]
        .iter()
        .enumerate()
    {
        let days = 150 - index * 30;
        text.push_str(&format!(
            "[[events]]\nkind = \"release\"\nat = \"0s\"\ntag = \"{tag}\"\npublished_before_start = \"{days}d\"\n"
        ));
    }
    text.push_str(&format!(
        "[[events]]\nkind = \"release\"\nat = \"0s\"\ntag = \"v2024.12\"\npublished_before_start = \"20d\"\nbody = {NOTES_2024_12:?}\n"
    ));
    text.push_str("[[events]]\nkind = \"release\"\nat = \"0s\"\ntag = \"v2025.01-rc\"\nprerelease = true\npublished_before_start = \"1d\"\n");
    text.push_str("[[events]]\nkind = \"release\"\nat = \"10m\"\ntag = \"v2025.02\"\nname = \"TON Update 2025.02\"\nbody = \"New release\"\n");
    text
}

async fn start_releases_sim() -> SimHandle {
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(&releases_scenario(), "github/tests.rs").unwrap();
    SimWorld::start(scenario, loopback()).await.unwrap()
}

fn client(base_url: &str, token: Option<Secret>) -> GithubClient {
    GithubClient::new(base_url, token, 1000.0, fast_policy()).unwrap()
}

#[tokio::test]
async fn latest_release_skips_prereleases_and_a_new_release_appears_at_its_time() {
    let sim = start_releases_sim().await;
    let github = client(&sim.github_url(), None);
    let latest = github
        .latest_release("ton-blockchain", "ton")
        .await
        .unwrap()
        .value;
    assert_eq!(latest.tag, "v2024.12");
    assert_eq!(latest.body, NOTES_2024_12);
    assert_eq!(
        latest.published_at,
        Some("2024-12-12T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        latest.html_url,
        "https://github.com/ton-blockchain/ton/releases/tag/v2024.12"
    );
    assert!(!latest.prerelease && !latest.draft);

    sim.advance(std::time::Duration::from_secs(600));
    let latest = github
        .latest_release("ton-blockchain", "ton")
        .await
        .unwrap()
        .value;
    assert_eq!(latest.tag, "v2025.02");
    assert_eq!(latest.name.as_deref(), Some("TON Update 2025.02"));
    assert_eq!(
        compare_versions("v2024.12", &latest.tag),
        Ok(VersionStanding::Behind {
            running: "v2024.12".into(),
            latest: "v2025.02".into()
        })
    );
}

#[tokio::test]
async fn releases_follow_link_pagination_newest_first() {
    let sim = start_releases_sim().await;
    let github = client(&sim.github_url(), None);
    let fetched = github.releases("ton-blockchain", "ton", 2).await.unwrap();
    let tags: Vec<_> = fetched.value.iter().map(|r| r.tag.as_str()).collect();
    assert_eq!(
        tags,
        [
            "v2025.01-rc",
            "v2024.12",
            "v2024.11",
            "v2024.10",
            "v2024.09",
            "v2024.08"
        ]
    );
    // Three pages, one attempt each.
    assert_eq!(fetched.attempts, 3);
    assert!(fetched.value[0].prerelease);
}

#[tokio::test]
async fn unknown_repository_is_a_clear_rejection() {
    let sim = start_releases_sim().await;
    let error = client(&sim.github_url(), None)
        .latest_release("ton-blockchain", "no-such-repo")
        .await
        .unwrap_err();
    let SourceError::Rejected {
        status: 404,
        message,
    } = &error
    else {
        panic!("expected a 404 rejection, got {error:?}");
    };
    assert!(message.contains("Not Found"), "{message}");
    assert!(
        message.contains("ton-blockchain/no-such-repo not found"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_owner_or_per_page_is_input_error_without_a_request() {
    let github = client("http://127.0.0.1:9", None);
    for (owner, repo) in [("a/b", "ton"), ("ton-blockchain", ".."), ("", "ton")] {
        let error = github.latest_release(owner, repo).await.unwrap_err();
        assert!(
            matches!(error, SourceError::InvalidInput { .. }),
            "{error:?}"
        );
    }
    let error = github.releases("o", "r", 0).await.unwrap_err();
    assert!(
        matches!(error, SourceError::InvalidInput { .. }),
        "{error:?}"
    );
}

/// A server answering every request with `status`, the given headers and body, recording
/// request headers and counting requests.
struct Scripted {
    base_url: String,
    requests: Arc<Mutex<Vec<AxumHeaders>>>,
}

async fn scripted(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Scripted {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let app = axum::Router::new().fallback(move |request_headers: AxumHeaders| {
        let recorded = Arc::clone(&recorded);
        async move {
            recorded.lock().unwrap().push(request_headers);
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(*name, axum::http::HeaderValue::from_static(value));
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

#[tokio::test]
async fn rate_limit_403_with_remaining_zero_is_rate_limited_and_headers_are_sent() {
    let server = scripted(
        403,
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "4102444800"),
        ],
        r#"{"message":"API rate limit exceeded for 127.0.0.1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}"#,
    )
    .await;
    let error = client(&server.base_url, Some(Secret::new(SECRET)))
        .latest_release("ton-blockchain", "ton")
        .await
        .unwrap_err();
    let SourceError::RateLimited {
        retry_after,
        message,
    } = &error
    else {
        panic!("expected RateLimited, got {error:?}");
    };
    // Reset is in 2100: far away, and read from x-ratelimit-reset.
    assert!(
        retry_after.unwrap() > Duration::from_secs(365 * 86400),
        "{retry_after:?}"
    );
    assert!(message.contains("API rate limit exceeded"), "{message}");
    assert!(!message.contains(SECRET));
    let requests = server.requests.lock().unwrap();
    // Transient: retried per the policy (3 attempts).
    assert_eq!(requests.len(), 3);
    let headers = &requests[0];
    assert_eq!(headers["accept"], "application/vnd.github+json");
    assert_eq!(headers["x-github-api-version"], "2022-11-28");
    assert_eq!(
        headers["authorization"],
        format!("Bearer {SECRET}").as_str()
    );
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("command-center-tools/")
    );
}

#[tokio::test]
async fn plain_403_is_a_rejection_and_422_lists_the_validation_errors() {
    let forbidden = scripted(
        403,
        &[
            ("content-type", "application/json"),
            ("x-ratelimit-remaining", "4999"),
        ],
        r#"{"message":"Resource not accessible by integration"}"#,
    )
    .await;
    let error = client(&forbidden.base_url, None)
        .latest_release("o", "r")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 403, message } if message.contains("Resource not accessible")),
        "{error:?}"
    );
    assert_eq!(forbidden.requests.lock().unwrap().len(), 1);

    // Body shape from octokit/fixtures `scenarios/api.github.com/errors` (retyped).
    let invalid = scripted(
        422,
        &[("content-type", "application/json")],
        r#"{"message":"Validation Failed","errors":[{"resource":"Label","code":"invalid","field":"color"}],"documentation_url":"https://docs.github.com/rest/reference/issues#create-a-label"}"#,
    )
    .await;
    let error = client(&invalid.base_url, None)
        .releases("o", "r", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 422, message } if message.contains("Validation Failed: Label.color: invalid")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let server = scripted(
        200,
        &[
            ("content-type", "application/json"),
            (
                "link",
                "<https://evil.example/repos/o/r/releases?page=2>; rel=\"next\"",
            ),
        ],
        "[]",
    )
    .await;
    let error = client(&server.base_url, Some(Secret::new(SECRET)))
        .releases("o", "r", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("another origin")),
        "{error:?}"
    );
}

#[test]
fn next_link_reads_the_octokit_pagination_header() {
    // Link header from octokit/fixtures `scenarios/api.github.com/paginate-issues` (retyped).
    let mut headers = HeaderMap::new();
    headers.insert(
        LINK,
        HeaderValue::from_static(
            "<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel=\"next\", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\"",
        ),
    );
    assert_eq!(
        next_link(&headers).as_deref(),
        Some("https://api.github.com/repositories/1000/issues?per_page=3&page=2")
    );
    headers.insert(
        LINK,
        HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
    );
    assert_eq!(next_link(&headers), None);
}

#[test]
fn reset_header_in_seconds_or_milliseconds() {
    let now = UNIX_EPOCH + Duration::from_secs(1_507_651_000);
    assert_eq!(
        reset_delay("1507651200", now),
        Some(Duration::from_secs(200))
    );
    // octokit's normalized fixture carries 1507651200000.
    assert_eq!(
        reset_delay("1507651200000", now),
        Some(Duration::from_secs(200))
    );
    assert_eq!(reset_delay("1507650000", now), Some(Duration::ZERO));
    assert_eq!(reset_delay("soon", now), None);
}

#[test]
fn release_tags_parse_and_order() {
    let v = |tag: &str| ReleaseVersion::parse(tag).unwrap();
    assert_eq!(
        (v("v2024.12").year, v("v2024.12").month, v("v2024.12").patch),
        (2024, 12, 0)
    );
    assert_eq!(v("v2025.03-1").patch, 1);
    assert_eq!(v("2024.08").month, 8);
    assert_eq!(v("v2024.10.1").patch, 1);
    assert!(v("v2024.08") < v("v2024.12"));
    assert!(v("v2024.12") < v("v2025.03"));
    assert!(v("v2025.03") < v("v2025.03-1"));
    assert_eq!(v("v2024.12"), v("v2024.12"));
    for bad in [
        "",
        "latest",
        "v2024",
        "v2024.13",
        "v2024.1x",
        "v1999.01",
        "2024.12.1-2",
        "abc123def",
    ] {
        assert!(ReleaseVersion::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        compare_versions("v2025.03", "v2025.03"),
        Ok(VersionStanding::UpToDate)
    );
    assert!(matches!(
        compare_versions("2025.04", "v2025.03"),
        Ok(VersionStanding::Ahead { .. })
    ));
    assert!(matches!(
        compare_versions("a1b2c3d (master)", "v2025.03"),
        Ok(VersionStanding::Unknown { .. })
    ));
    assert!(compare_versions("v2025.03", "nightly").is_err());
}

#[tokio::test]
async fn scenario_rejects_inconsistent_release_and_node_fields() {
    let text = "name = \"bad\"\n[[validators]]\nname = \"v\"\naddress = \"a\"\nbalance_ton = 1.0\n[validators.node]\ndisk_used_percent = 120.0\n[[events]]\nkind = \"release\"\nat = \"5m\"\ntag = \"v2024.12\"\npublished_before_start = \"1d\"\n";
    let error = Scenario::from_toml(text, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("validators[0].node.disk_used_percent"),
        "{error}"
    );
    assert!(error.contains("events[0].at"), "{error}");
}

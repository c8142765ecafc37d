//! GitHub REST releases (`/repos/{owner}/{repo}/releases[/latest]`), for "is the node
//! software behind the latest ton-blockchain/ton release", and the release-tag version order.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LINK};
use serde::{Deserialize, Serialize};

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

const SOURCE: &str = "github";

pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// Pages `releases` follows at most; 10 pages of 100 is years of TON releases.
pub const MAX_PAGES: u32 = 10;

const API_VERSION: &str = "2022-11-28";

/// One release, as much of it as an operator needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub tag: String,
    pub name: Option<String>,
    /// `None` for drafts.
    pub published_at: Option<DateTime<Utc>>,
    pub html_url: String,
    /// Release notes (Markdown); empty when the release has none.
    pub body: String,
    pub prerelease: bool,
    pub draft: bool,
}

/// The wire form; GitHub sends many more fields, which are ignored.
#[derive(Deserialize)]
struct ReleaseWire {
    tag_name: String,
    name: Option<String>,
    published_at: Option<DateTime<Utc>>,
    html_url: String,
    body: Option<String>,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    draft: bool,
}

impl From<ReleaseWire> for Release {
    fn from(wire: ReleaseWire) -> Self {
        Self {
            tag: wire.tag_name,
            name: wire.name.filter(|name| !name.is_empty()),
            published_at: wire.published_at,
            html_url: wire.html_url,
            body: wire.body.unwrap_or_default(),
            prerelease: wire.prerelease,
            draft: wire.draft,
        }
    }
}

pub struct GithubClient {
    core: HttpCore,
    base_url: String,
}

impl GithubClient {
    /// `base_url` is the API root, [`DEFAULT_BASE_URL`] in production. Without a token GitHub
    /// allows about 60 requests an hour per IP, so poll releases hourly at most.
    pub fn new(
        base_url: &str,
        token: Option<Secret>,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, base_url, "repos")?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            HeaderName::from_static("x-github-api-version"),
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(token) = &token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| SourceError::InvalidInput {
                    detail: format!(
                        "{SOURCE}: the token contains characters not allowed in an Authorization header"
                    ),
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        // The core sets a User-Agent (`command-center-tools/<version>`); GitHub rejects
        // requests without one.
        Ok(Self {
            core: HttpCore::new(SOURCE, requests_per_second, retry, headers, token)?,
            base_url: base_url.to_owned(),
        })
    }

    /// The latest published, non-draft, non-prerelease release.
    pub async fn latest_release(
        &self,
        owner: &str,
        repo: &str,
    ) -> Result<Fetched<Release>, SourceError> {
        check_repo_part("owner", owner)?;
        check_repo_part("repo", repo)?;
        let url = join_url(
            SOURCE,
            &self.base_url,
            &format!("repos/{owner}/{repo}/releases/latest"),
        )?;
        self.core
            .get(&url, |answer| {
                let wire: ReleaseWire = interpret_ok(&answer, owner, repo)?;
                Ok(Release::from(wire))
            })
            .await
    }

    /// Releases newest first, following `Link: rel="next"` for at most [`MAX_PAGES`] pages.
    /// `attempts` and `latency` in the result add up over all pages.
    pub async fn releases(
        &self,
        owner: &str,
        repo: &str,
        per_page: u32,
    ) -> Result<Fetched<Vec<Release>>, SourceError> {
        check_repo_part("owner", owner)?;
        check_repo_part("repo", repo)?;
        if !(1..=100).contains(&per_page) {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE}: per_page must be 1..=100, got {per_page}"),
            });
        }
        let base = join_url(SOURCE, &self.base_url, "")?;
        let mut url = join_url(
            SOURCE,
            &self.base_url,
            &format!("repos/{owner}/{repo}/releases"),
        )?;
        url.query_pairs_mut()
            .append_pair("per_page", &per_page.to_string());
        let mut releases = Vec::new();
        let mut attempts = 0;
        let mut latency = Duration::ZERO;
        for _ in 0..MAX_PAGES {
            let page = self
                .core
                .get(&url, |answer| {
                    let wire: Vec<ReleaseWire> = interpret_ok(&answer, owner, repo)?;
                    let next = next_link(&answer.headers);
                    Ok((wire, next))
                })
                .await?;
            attempts += page.attempts;
            latency += page.latency;
            let (wire, next) = page.value;
            releases.extend(wire.into_iter().map(Release::from));
            let Some(next) = next else {
                return Ok(Fetched {
                    value: releases,
                    attempts,
                    latency,
                });
            };
            url = same_origin_next(&base, &next)?;
        }
        tracing::warn!(
            source = SOURCE,
            owner,
            repo,
            max_pages = MAX_PAGES,
            "stopped following release pages at the page limit"
        );
        Ok(Fetched {
            value: releases,
            attempts,
            latency,
        })
    }
}

fn check_repo_part(what: &str, value: &str) -> Result<(), SourceError> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && value != "."
        && value != "..";
    if valid {
        Ok(())
    } else {
        Err(SourceError::InvalidInput {
            detail: format!(
                "{SOURCE}: {what} {value:?} is not a GitHub name (letters, digits, '-', '_', '.'; e.g. ton-blockchain/ton)"
            ),
        })
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|part| {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|param| {
                let param = param.trim();
                param == "rel=\"next\"" || param == "rel=next"
            });
            let target = target.strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

/// The token goes with every request, so a next link is followed only on the API's own
/// scheme, host and port.
fn same_origin_next(base: &Url, next: &str) -> Result<Url, SourceError> {
    let url = Url::parse(next).map_err(|error| SourceError::InvalidResponse {
        detail: format!("{SOURCE}: Link rel=\"next\" is not a URL ({error})"),
    })?;
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return Err(SourceError::InvalidResponse {
            detail: format!(
                "{SOURCE}: Link rel=\"next\" points at another origin ({}://{}); not followed, so the token is not sent there",
                url.scheme(),
                url.host_str().unwrap_or("?")
            ),
        });
    }
    Ok(url)
}

fn interpret_ok<T: serde::de::DeserializeOwned>(
    answer: &HttpAnswer,
    owner: &str,
    repo: &str,
) -> Result<T, SourceError> {
    if answer.status != 200 {
        return Err(classify_error(answer, owner, repo, SystemTime::now()));
    }
    answer.ensure_json()?;
    answer.parse_json()
}

/// `{"message": "...", "errors": [{"resource","field","code","message"}], "documentation_url"}`.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    resource: Option<String>,
    field: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |value: &Option<String>| value.clone().unwrap_or_else(|| "?".to_owned());
        write!(
            f,
            "{}.{}: {}",
            part(&self.resource),
            part(&self.field),
            part(&self.code)
        )?;
        if let Some(message) = &self.message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

fn error_message(answer: &HttpAnswer) -> String {
    if answer.is_html() {
        return format!(
            "{}: HTTP {} with an HTML page; body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        );
    }
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(ErrorBody {
            message: Some(message),
            errors,
        }) if errors.is_empty() => format!("{}: {message}", answer.origin),
        Ok(ErrorBody { message, errors }) => format!(
            "{}: {}: {}",
            answer.origin,
            message.unwrap_or_else(|| "error".to_owned()),
            errors
                .iter()
                .map(ErrorDetail::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Err(_) => format!(
            "{}: HTTP {}; body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        ),
    }
}

fn header<'a>(answer: &'a HttpAnswer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Time until `x-ratelimit-reset` (epoch seconds). Values that only make sense as epoch
/// milliseconds (octokit's normalized fixtures carry those) are read as such.
fn reset_delay(reset: &str, now: SystemTime) -> Option<Duration> {
    let mut epoch_seconds: u64 = reset.parse().ok()?;
    if epoch_seconds > 100_000_000_000 {
        epoch_seconds /= 1000;
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(epoch_seconds.saturating_sub(now)))
}

fn classify_error(answer: &HttpAnswer, owner: &str, repo: &str, now: SystemTime) -> SourceError {
    let message = error_message(answer);
    let exhausted = header(answer, "x-ratelimit-remaining") == Some("0");
    match answer.status {
        // Primary limit: 403 or 429 with remaining 0; wait until the reset. Secondary limit:
        // 403/429 with Retry-After.
        403 | 429 if exhausted || answer.retry_after.is_some() || answer.status == 429 => {
            let retry_after = answer.retry_after.or_else(|| {
                header(answer, "x-ratelimit-reset").and_then(|reset| reset_delay(reset, now))
            });
            SourceError::RateLimited {
                retry_after,
                message: format!(
                    "{message} (GitHub rate limit; unauthenticated clients get about 60 requests an hour, configure a token for more)"
                ),
            }
        }
        401 => SourceError::Rejected {
            status: 401,
            message: format!("{message} (the GitHub token is invalid or expired; replace it)"),
        },
        403 => SourceError::Rejected {
            status: 403,
            message: format!("{message} (the token lacks access to {owner}/{repo})"),
        },
        404 => SourceError::Rejected {
            status: 404,
            message: format!(
                "{message} (repository {owner}/{repo} not found, or it has no published non-prerelease release; a private repository needs a token with access)"
            ),
        },
        500..=599 => SourceError::Unavailable {
            status: answer.status,
            message,
        },
        400..=499 => SourceError::Rejected {
            status: answer.status,
            message,
        },
        status => SourceError::InvalidResponse {
            detail: format!("{message} (unexpected HTTP status {status})"),
        },
    }
}

// ---- versions ----

/// A ton-blockchain/ton release tag read as a date version: `v2024.12` -> 2024.12.0,
/// `v2025.03-1` -> 2025.03.1, `2024.08` -> 2024.08.0, `v2024.10.1` -> 2024.10.1.
/// Ordered by (year, month, patch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseVersion {
    pub year: u32,
    pub month: u32,
    pub patch: u32,
    /// The tag as written.
    pub raw: String,
}

impl Ord for ReleaseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.year, self.month, self.patch).cmp(&(other.year, other.month, other.patch))
    }
}

impl PartialOrd for ReleaseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl ReleaseVersion {
    pub fn parse(tag: &str) -> Result<Self, String> {
        let raw = tag.trim();
        let text = raw
            .strip_prefix('v')
            .or_else(|| raw.strip_prefix('V'))
            .unwrap_or(raw);
        let bad = || {
            format!("version {raw:?} is not a TON release tag like v2024.12, v2025.03-1 or 2024.08")
        };
        let (date, patch) = match text.split_once(['-', '_']) {
            Some((date, patch)) => (date, Some(patch)),
            None => (text, None),
        };
        let mut parts = date.split('.');
        let number = |part: Option<&str>| -> Result<u32, String> {
            let part = part.ok_or_else(bad)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let year = number(parts.next())?;
        let month = number(parts.next())?;
        let dotted_patch = parts.next();
        if parts.next().is_some() || !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        let patch = match (dotted_patch, patch) {
            (Some(_), Some(_)) => return Err(bad()),
            (Some(part), None) | (None, Some(part)) => number(Some(part))?,
            (None, None) => 0,
        };
        Ok(Self {
            year,
            month,
            patch,
            raw: raw.to_owned(),
        })
    }
}

/// How a running node's version stands against the latest release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VersionStanding {
    UpToDate,
    Behind {
        running: String,
        latest: String,
    },
    /// Running something newer than the latest release (a pre-release or a build from master).
    Ahead {
        running: String,
        latest: String,
    },
    /// The running version is not a release tag (e.g. a commit hash, which is what
    /// mytonctrl's status shows); compare by commit instead.
    Unknown {
        running: String,
        reason: String,
    },
}

/// Compares the version a node runs with the latest release tag.
pub fn compare_versions(running: &str, latest: &str) -> Result<VersionStanding, String> {
    let latest_version = ReleaseVersion::parse(latest)?;
    let running_version = match ReleaseVersion::parse(running) {
        Ok(version) => version,
        Err(reason) => {
            return Ok(VersionStanding::Unknown {
                running: running.to_owned(),
                reason,
            });
        }
    };
    Ok(match running_version.cmp(&latest_version) {
        Ordering::Equal => VersionStanding::UpToDate,
        Ordering::Less => VersionStanding::Behind {
            running: running_version.raw,
            latest: latest_version.raw,
        },
        Ordering::Greater => VersionStanding::Ahead {
            running: running_version.raw,
            latest: latest_version.raw,
        },
    })
}

#[cfg(test)]
mod tests;

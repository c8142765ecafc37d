//! `GET /github/repos/{owner}/{repo}/releases[?per_page&page]` and `.../releases/latest`,
//! in GitHub's wire format (a subset of the fields), from `kind = "release"` events.
//! A release is listed from its event's `at`; the list pages with a `Link` header.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::scenario::SimEvent;
use super::world::World;

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/github/repos/{owner}/{repo}/releases", get(list_releases))
        .route(
            "/github/repos/{owner}/{repo}/releases/latest",
            get(latest_release),
        )
}

impl super::SimHandle {
    /// The GitHub API root the sim serves (`GithubClient::new` base_url).
    pub fn github_url(&self) -> String {
        format!("{}/github", self.base_url())
    }
}

/// A release visible now, with its publication time.
struct Visible<'a> {
    id: usize,
    published_at: DateTime<Utc>,
    tag: &'a str,
    name: Option<&'a str>,
    body: &'a str,
    prerelease: bool,
    draft: bool,
}

/// Releases of `owner/repo` visible now, newest first; `None` when the scenario never
/// names the repository (GitHub's 404).
fn visible<'a>(world: &'a World, owner: &str, repo: &str) -> Option<Vec<Visible<'a>>> {
    let full_name = format!("{owner}/{repo}");
    let t = world.elapsed_seconds();
    let mut known = false;
    let mut releases = Vec::new();
    for (id, event) in world.scenario.events.iter().enumerate() {
        let SimEvent::Release {
            at,
            repo,
            tag,
            name,
            body,
            prerelease,
            draft,
            published_before_start,
        } = event
        else {
            continue;
        };
        if !repo.eq_ignore_ascii_case(&full_name) {
            continue;
        }
        known = true;
        if at.as_secs_f64() > t {
            continue;
        }
        let published_at = match published_before_start {
            Some(before) => world.time_at(-before.as_secs_f64()),
            None => world.time_at(at.as_secs_f64()),
        };
        releases.push(Visible {
            id: id + 1000,
            published_at,
            tag,
            name: name.as_deref(),
            body,
            prerelease: *prerelease,
            draft: *draft,
        });
    }
    releases.sort_by(|a, b| b.published_at.cmp(&a.published_at).then(b.id.cmp(&a.id)));
    known.then_some(releases)
}

fn wire(owner: &str, repo: &str, release: &Visible<'_>) -> Value {
    let api = format!("https://api.github.com/repos/{owner}/{repo}");
    let published = release
        .published_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "url": format!("{api}/releases/{}", release.id),
        "html_url": format!("https://github.com/{owner}/{repo}/releases/tag/{}", release.tag),
        "id": release.id,
        "tag_name": release.tag,
        "target_commitish": "master",
        "name": release.name.unwrap_or(release.tag),
        "draft": release.draft,
        "prerelease": release.prerelease,
        "created_at": published,
        "published_at": if release.draft { Value::Null } else { json!(published) },
        "assets": [],
        "tarball_url": format!("{api}/tarball/{}", release.tag),
        "zipball_url": format!("{api}/zipball/{}", release.tag),
        "body": release.body,
    })
}

fn not_found(documentation: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "message": "Not Found",
            "documentation_url": documentation,
            "status": "404"
        })),
    )
        .into_response()
}

async fn list_releases(
    State(world): State<Arc<World>>,
    Path((owner, repo)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(releases) = visible(&world, &owner, &repo) else {
        return not_found("https://docs.github.com/rest/releases/releases#list-releases");
    };
    // Drafts are only listed to users with push access; the sim has none.
    let releases: Vec<_> = releases.into_iter().filter(|r| !r.draft).collect();
    let number = |key: &str, default: usize| {
        params
            .get(key)
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).clamp(1, 100);
    let page = number("page", 1).max(1);
    let last_page = releases.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = releases
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|release| wire(&owner, &repo, release))
        .collect();
    let mut response = (StatusCode::OK, axum::Json(Value::Array(body))).into_response();
    if page < last_page {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("127.0.0.1");
        let link = |page: usize| {
            format!(
                "http://{host}/github/repos/{owner}/{repo}/releases?per_page={per_page}&page={page}"
            )
        };
        let value = format!(
            "<{}>; rel=\"next\", <{}>; rel=\"last\"",
            link(page + 1),
            link(last_page)
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

async fn latest_release(
    State(world): State<Arc<World>>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let latest = visible(&world, &owner, &repo)
        .and_then(|releases| releases.into_iter().find(|r| !r.draft && !r.prerelease));
    match latest {
        Some(release) => {
            (StatusCode::OK, axum::Json(wire(&owner, &repo, &release))).into_response()
        }
        None => not_found("https://docs.github.com/rest/releases/releases#get-the-latest-release"),
    }
}

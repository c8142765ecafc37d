//! CoinGecko `simple/price` client (public, demo and pro plans).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

const SOURCE: &str = "coingecko";

/// Which CoinGecko plan the key belongs to; decides the auth header.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CoinGeckoPlan {
    /// No key; heavily throttled (about 5-15 calls/min per IP).
    Public,
    /// `x-cg-demo-api-key`, on `https://api.coingecko.com/api/v3`.
    Demo,
    /// `x-cg-pro-api-key`, on `https://pro-api.coingecko.com/api/v3`.
    Pro,
}

/// One coin's price in one currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceQuote {
    pub coin_id: String,
    pub vs_currency: String,
    pub price: f64,
    /// `None` when CoinGecko sends `null` (stale price) or omits it.
    pub change_24h_percent: Option<f64>,
    pub last_updated_at: Option<DateTime<Utc>>,
}

pub struct CoinGeckoClient {
    core: HttpCore,
    base_url: String,
}

impl CoinGeckoClient {
    /// `base_url` is the API root, e.g. `https://api.coingecko.com/api/v3`.
    pub fn new(
        base_url: &str,
        plan: CoinGeckoPlan,
        api_key: Option<Secret>,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, base_url, "simple/price")?;
        let header = match plan {
            CoinGeckoPlan::Public => None,
            CoinGeckoPlan::Demo => Some("x-cg-demo-api-key"),
            CoinGeckoPlan::Pro => Some("x-cg-pro-api-key"),
        };
        let mut headers = HeaderMap::new();
        let api_key = match (header, api_key) {
            (Some(header), Some(key)) => {
                let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                    SourceError::InvalidInput {
                        detail: format!(
                            "{SOURCE}: the api_key contains characters not allowed in the {header} header"
                        ),
                    }
                })?;
                value.set_sensitive(true);
                headers.insert(HeaderName::from_static(header), value);
                Some(key)
            }
            (Some(header), None) => {
                return Err(SourceError::InvalidInput {
                    detail: format!(
                        "{SOURCE}: plan {plan:?} needs an api_key (sent as {header}); set one or use plan \"public\""
                    ),
                });
            }
            (None, Some(_)) => {
                warn!(
                    source = SOURCE,
                    "an api_key is configured but the plan is public; the key is not sent"
                );
                None
            }
            (None, None) => None,
        };
        Ok(Self {
            core: HttpCore::new(SOURCE, requests_per_second, retry, headers, api_key)?,
            base_url: base_url.to_owned(),
        })
    }

    /// Prices of `ids` in `vs_currency` with 24 h change and update time. Ids CoinGecko
    /// does not know (or has no price for in that currency) are absent from the result;
    /// quotes come back in the order of `ids`.
    pub async fn simple_price(
        &self,
        ids: &[String],
        vs_currency: &str,
    ) -> Result<Fetched<Vec<PriceQuote>>, SourceError> {
        let vs_currency = vs_currency.trim().to_ascii_lowercase();
        validate_inputs(ids, &vs_currency)?;
        let mut url = join_url(SOURCE, &self.base_url, "simple/price")?;
        url.query_pairs_mut()
            .append_pair("ids", &ids.join(","))
            .append_pair("vs_currencies", &vs_currency)
            .append_pair("include_24hr_change", "true")
            .append_pair("include_last_updated_at", "true");
        self.core
            .get(&url, |answer| {
                interpret_simple_price(answer, ids, &vs_currency)
            })
            .await
    }

    /// Prices of coin `id` in `vs_currency` between `from` and `to`, oldest first, as
    /// CoinGecko's `coins/{id}/market_chart/range` gives them: 5-minute points for a range
    /// within a day, hourly within 90 days, daily (00:00 UTC) beyond; the last point may be
    /// "now". Points CoinGecko sends as `null` are left out.
    pub async fn market_chart_range(
        &self,
        id: &str,
        vs_currency: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Fetched<Vec<(DateTime<Utc>, f64)>>, SourceError> {
        let vs_currency = vs_currency.trim().to_ascii_lowercase();
        validate_inputs(&[id.to_owned()], &vs_currency)?;
        if from >= to {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} market_chart_range: from {from} is not before to {to}"),
            });
        }
        let mut url = join_url(
            SOURCE,
            &self.base_url,
            &format!("coins/{id}/market_chart/range"),
        )?;
        url.query_pairs_mut()
            .append_pair("vs_currency", &vs_currency)
            .append_pair("from", &from.timestamp().to_string())
            .append_pair("to", &to.timestamp().to_string());
        self.core.get(&url, interpret_market_chart).await
    }

    pub fn source(&self) -> &'static str {
        self.core.source()
    }
}

/// `{"prices": [[ms, value|null], ...], "market_caps": [...], "total_volumes": [...]}`.
#[derive(Deserialize)]
struct MarketChartBody {
    prices: Vec<(f64, Option<f64>)>,
}

fn interpret_market_chart(answer: HttpAnswer) -> Result<Vec<(DateTime<Utc>, f64)>, SourceError> {
    if answer.status != 200 {
        return Err(classify_error(&answer));
    }
    answer.ensure_json()?;
    let body: MarketChartBody = answer.parse_json()?;
    let mut points: Vec<(DateTime<Utc>, f64)> = body
        .prices
        .into_iter()
        .filter_map(|(millis, price)| {
            let price = price.filter(|price| price.is_finite() && *price > 0.0)?;
            Some((DateTime::from_timestamp_millis(millis as i64)?, price))
        })
        .collect();
    points.sort_by_key(|(at, _)| *at);
    Ok(points)
}

fn validate_inputs(ids: &[String], vs_currency: &str) -> Result<(), SourceError> {
    if ids.is_empty() {
        return Err(SourceError::InvalidInput {
            detail: format!("{SOURCE} simple_price: ids is empty; pass at least one coin id"),
        });
    }
    let valid_id = |id: &str| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if let Some(bad) = ids.iter().find(|id| !valid_id(id)) {
        return Err(SourceError::InvalidInput {
            detail: format!(
                "{SOURCE} simple_price: coin id {bad:?} is not a CoinGecko id (lowercase letters, digits, '-', e.g. \"the-open-network\")"
            ),
        });
    }
    if vs_currency.is_empty() || !vs_currency.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SourceError::InvalidInput {
            detail: format!(
                "{SOURCE} simple_price: vs_currency {vs_currency:?} is not a currency code like \"usd\""
            ),
        });
    }
    Ok(())
}

/// `{<coin id>: {<vs>: number, <vs>_24h_change: number|null, last_updated_at: int}}`.
type SimplePriceBody = BTreeMap<String, BTreeMap<String, Option<f64>>>;

fn interpret_simple_price(
    answer: HttpAnswer,
    ids: &[String],
    vs_currency: &str,
) -> Result<Vec<PriceQuote>, SourceError> {
    if answer.status != 200 {
        return Err(classify_error(&answer));
    }
    answer.ensure_json()?;
    let body: SimplePriceBody = answer.parse_json()?;
    let change_key = format!("{vs_currency}_24h_change");
    let quotes = ids
        .iter()
        .filter_map(|id| {
            let entry = body.get(id)?;
            let price = (*entry.get(vs_currency)?)?;
            let change_24h_percent = entry.get(&change_key).copied().flatten();
            let last_updated_at = entry
                .get("last_updated_at")
                .copied()
                .flatten()
                .and_then(|seconds| DateTime::from_timestamp(seconds as i64, 0));
            Some(PriceQuote {
                coin_id: id.clone(),
                vs_currency: vs_currency.to_owned(),
                price,
                change_24h_percent,
                last_updated_at,
            })
        })
        .collect();
    Ok(quotes)
}

/// CoinGecko error bodies: `{"status":{"error_code":429,"error_message":".."}}` (current),
/// `{"error":".."}` (older endpoints), or a Cloudflare HTML page.
#[derive(Deserialize)]
struct ErrorBody {
    status: Option<ErrorStatus>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ErrorStatus {
    error_message: Option<String>,
}

fn error_message(answer: &HttpAnswer) -> String {
    if answer.is_html() {
        return format!(
            "{}: HTTP {} with an HTML page (likely a Cloudflare block); body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        );
    }
    let parsed = serde_json::from_slice::<ErrorBody>(&answer.body).ok();
    let message = parsed.and_then(|body| {
        body.status
            .and_then(|status| status.error_message)
            .or(body.error)
    });
    match message {
        Some(message) => format!("{}: {message}", answer.origin),
        None => format!(
            "{}: HTTP {}; body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        ),
    }
}

fn classify_error(answer: &HttpAnswer) -> SourceError {
    let message = error_message(answer);
    match answer.status {
        429 => SourceError::RateLimited {
            retry_after: answer.retry_after,
            message,
        },
        // Cloudflare "Access denied" (403/1020) pages are temporary blocks, not a bad key.
        403 if answer.is_html() => SourceError::Unavailable {
            status: 403,
            message,
        },
        500..=599 => SourceError::Unavailable {
            status: answer.status,
            message,
        },
        400..=499 => SourceError::Rejected {
            status: answer.status,
            message: format!("{message} (check the api_key, plan and coin ids)"),
        },
        status => SourceError::InvalidResponse {
            detail: format!("{message} (unexpected HTTP status {status})"),
        },
    }
}

#[cfg(test)]
mod tests;

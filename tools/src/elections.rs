//! toncenter's validator-operator APIs: validation cycles, elections and complaints from
//! `https://elections.toncenter.com`, and per-validator efficiency from the QoS scoreboard
//! at `https://toncenter.com/api/qos`.
//!
//! No captured response of these services is public; the field names are the ones their
//! known consumers read (mytonctrl_bot, a TypeScript client). So the parsing is tolerant:
//! numbers may come as JSON numbers or decimal strings, unknown fields are ignored, missing
//! optional fields are `None`, and a list may also come wrapped as `{"result": [...]}` or
//! `{"data": [...]}`. Anything else (an HTML maintenance page, another shape) is a
//! [`SourceError`] naming the endpoint; the services are sometimes down for hours.

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

const SOURCE: &str = "toncenter_elections";

pub const DEFAULT_ELECTIONS_URL: &str = "https://elections.toncenter.com";
pub const DEFAULT_QOS_URL: &str = "https://toncenter.com/api/qos";

/// Largest `limit` the client sends; the scoreboard is asked for this many rows.
pub const MAX_LIMIT: u32 = 1000;

/// One validation round (a validator set in force), from `getValidationCycles`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidationCycle {
    /// The round's id; toncenter uses the set's `utime_since` (= the election id).
    pub cycle_id: u64,
    pub utime_since: Option<u64>,
    pub utime_until: Option<u64>,
    /// Nanotons.
    pub total_stake: Option<u128>,
    pub validators: Vec<CycleValidator>,
}

/// A member of a round's validator set (`cycle_info.validators[]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CycleValidator {
    /// Lower-case hex (see [`normalize_key`]).
    pub adnl_addr: String,
    /// Lower-case hex when hex or base64 of 32 bytes.
    pub pubkey: Option<String>,
    pub weight: Option<u64>,
    /// Nanotons.
    pub stake: Option<u128>,
    pub index: Option<u32>,
    pub wallet_address: Option<String>,
}

/// One election, from `getElections` (index 0 = the latest).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElectionRecord {
    pub election_id: u64,
    /// `false` when the service omits it.
    pub finished: bool,
    /// Wire name `participants_list`; empty when absent or null.
    pub participants: Vec<ElectionParticipant>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElectionParticipant {
    /// Lower-case hex.
    pub adnl_addr: String,
    pub pubkey: Option<String>,
    /// Nanotons.
    pub stake: u128,
    pub wallet_address: Option<String>,
}

/// A complaint against a validator of a past round, from `getComplaints`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Complaint {
    /// Lower-case hex.
    pub adnl_addr: String,
    /// The election asked for when the row does not repeat it.
    pub election_id: u64,
    /// Nanotons.
    pub suggested_fine: u128,
    /// `false` when the service omits it.
    pub is_passed: bool,
    pub pubkey: Option<String>,
}

/// A validator's efficiency in a round, from the QoS `cycleScoreboard`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreRow {
    /// Lower-case hex; read from `adnl_addr` or `validator_adnl`.
    pub adnl_addr: String,
    /// Percent, 0..=100, as the API reports it (toncenter's docs: below 80% over a long
    /// window the validator is not working properly; keep it above 90% for a round). Not
    /// rescaled: a value <= 1.0 is 1 percent or less, not a fraction. `None` when the
    /// service sends null (no data yet) or a non-finite value.
    pub efficiency: Option<f64>,
}

pub struct ElectionsClient {
    core: HttpCore,
    elections_url: String,
    qos_url: String,
}

impl ElectionsClient {
    /// `elections_base_url` is [`DEFAULT_ELECTIONS_URL`] (testnet:
    /// `https://testnet-elections.toncenter.com`), `qos_base_url` is [`DEFAULT_QOS_URL`].
    /// The key, when given, goes with every request as `X-API-Key` (both services belong to
    /// toncenter); they answer without one too.
    pub fn new(
        elections_base_url: &str,
        qos_base_url: &str,
        api_key: Option<Secret>,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, elections_base_url, "getElections")?;
        join_url(SOURCE, qos_base_url, "cycleScoreboard")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &api_key {
            let mut value =
                HeaderValue::from_str(key.expose()).map_err(|_| SourceError::InvalidInput {
                    detail: format!(
                        "{SOURCE}: the api_key contains characters not allowed in the X-API-Key header"
                    ),
                })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        Ok(Self {
            core: HttpCore::new(SOURCE, requests_per_second, retry, headers, api_key)?,
            elections_url: elections_base_url.to_owned(),
            qos_url: qos_base_url.to_owned(),
        })
    }

    pub fn source(&self) -> &'static str {
        self.core.source()
    }

    /// The latest `limit` validation rounds, newest (the current one) first.
    pub async fn validation_cycles(
        &self,
        limit: u32,
    ) -> Result<Fetched<Vec<ValidationCycle>>, SourceError> {
        let url = self.url(&self.elections_url, "getValidationCycles", &[], limit)?;
        self.core
            .get(&url, |answer| {
                let wire: Vec<CycleWire> = interpret_list(&answer, "validation cycles")?;
                Ok(wire.into_iter().map(ValidationCycle::from).collect())
            })
            .await
    }

    /// The latest `limit` elections, newest first.
    pub async fn elections(&self, limit: u32) -> Result<Fetched<Vec<ElectionRecord>>, SourceError> {
        let url = self.url(&self.elections_url, "getElections", &[], limit)?;
        self.core
            .get(&url, |answer| {
                let wire: Vec<ElectionWire> = interpret_list(&answer, "elections")?;
                Ok(wire.into_iter().map(ElectionRecord::from).collect())
            })
            .await
    }

    /// Complaints filed in election `election_id` (up to 100).
    pub async fn complaints(
        &self,
        election_id: u64,
    ) -> Result<Fetched<Vec<Complaint>>, SourceError> {
        let id = election_id.to_string();
        let url = self.url(
            &self.elections_url,
            "getComplaints",
            &[("election_id", &id)],
            100,
        )?;
        self.core
            .get(&url, |answer| {
                let wire: Vec<ComplaintWire> = interpret_list(&answer, "complaints")?;
                Ok(wire
                    .into_iter()
                    .map(|row| Complaint {
                        adnl_addr: normalize_key(&row.adnl_addr),
                        election_id: row.election_id.unwrap_or(election_id),
                        suggested_fine: row.suggested_fine,
                        is_passed: row.is_passed.unwrap_or(false),
                        pubkey: row.pubkey.as_deref().map(normalize_key),
                    })
                    .collect())
            })
            .await
    }

    /// Every validator's efficiency in round `cycle_id` (up to [`MAX_LIMIT`] rows).
    pub async fn cycle_scoreboard(
        &self,
        cycle_id: u64,
    ) -> Result<Fetched<Vec<ScoreRow>>, SourceError> {
        let id = cycle_id.to_string();
        let url = self.url(
            &self.qos_url,
            "cycleScoreboard",
            &[("cycle_id", &id)],
            MAX_LIMIT,
        )?;
        self.core
            .get(&url, |answer| {
                check_answer(&answer)?;
                let body: ScoreboardWire = parse_value(&answer, answer_value(&answer)?)?;
                Ok(body
                    .scoreboard
                    .into_iter()
                    .map(|row| ScoreRow {
                        adnl_addr: normalize_key(&row.adnl_addr),
                        efficiency: row.efficiency.filter(|value| value.is_finite()),
                    })
                    .collect())
            })
            .await
    }

    fn url(
        &self,
        base: &str,
        endpoint: &str,
        params: &[(&str, &str)],
        limit: u32,
    ) -> Result<Url, SourceError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} {endpoint}: limit must be 1..={MAX_LIMIT}, got {limit}"),
            });
        }
        let mut url = join_url(SOURCE, base, endpoint)?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                query.append_pair(key, value);
            }
            query.append_pair("limit", &limit.to_string());
        }
        Ok(url)
    }
}

/// An ADNL address or public key as lower-case hex: 64 hex digits are lower-cased, base64
/// of 32 bytes is converted; anything else is kept trimmed and lower-cased.
pub fn normalize_key(text: &str) -> String {
    use base64::Engine;
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return text.to_ascii_lowercase();
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    for engine in engines {
        if let Ok(bytes) = engine.decode(text)
            && bytes.len() == 32
        {
            return crate::ton::config::to_hex(&bytes);
        }
    }
    text.to_ascii_lowercase()
}

/// Fails on a non-200 answer (classified) and on an HTML page in a 200.
fn check_answer(answer: &HttpAnswer) -> Result<(), SourceError> {
    if answer.status != 200 {
        return Err(classify_error(answer));
    }
    if answer.is_html() {
        return Err(SourceError::InvalidResponse {
            detail: format!(
                "{}: HTTP 200 with an HTML page instead of JSON (the service may be down for maintenance); body starts with {:?}",
                answer.origin,
                answer.snippet()
            ),
        });
    }
    answer.ensure_json()
}

fn answer_value(answer: &HttpAnswer) -> Result<Value, SourceError> {
    answer.parse_json::<Value>()
}

/// Deserializes `value`; the error names the endpoint and the JSON path.
fn parse_value<T: DeserializeOwned>(answer: &HttpAnswer, value: Value) -> Result<T, SourceError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        SourceError::InvalidResponse {
            detail: format!(
                "{}: body is not the expected JSON (at `{path}`: {}); body starts with {:?}",
                answer.origin,
                error.into_inner(),
                answer.snippet()
            ),
        }
    })
}

/// A JSON list, or one wrapped as `{"result": [...]}` / `{"data": [...]}`.
fn interpret_list<T: DeserializeOwned>(
    answer: &HttpAnswer,
    what: &str,
) -> Result<Vec<T>, SourceError> {
    check_answer(answer)?;
    let list = match answer_value(answer)? {
        list @ Value::Array(_) => list,
        Value::Object(mut object) => {
            match ["result", "data"]
                .iter()
                .find_map(|key| object.remove(*key).filter(Value::is_array))
            {
                Some(list) => list,
                None => {
                    let keys: Vec<&String> = object.keys().collect();
                    return Err(SourceError::InvalidResponse {
                        detail: format!(
                            "{}: expected a JSON list of {what}, got an object with keys {keys:?}; body starts with {:?}",
                            answer.origin,
                            answer.snippet()
                        ),
                    });
                }
            }
        }
        other => {
            return Err(SourceError::InvalidResponse {
                detail: format!(
                    "{}: expected a JSON list of {what}, got {}; body starts with {:?}",
                    answer.origin,
                    json_kind(&other),
                    answer.snippet()
                ),
            });
        }
    };
    parse_value(answer, list)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Error bodies: FastAPI's `{"detail": "..."}` or `{"detail": [{"msg": ...}]}`,
/// `{"error": "..."}`, `{"message": "..."}`, plain text, or a proxy's HTML page.
fn error_message(answer: &HttpAnswer) -> String {
    if answer.is_html() {
        return format!(
            "{}: HTTP {} with an HTML page (the service may be down or behind a proxy error); body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        );
    }
    let text = |value: &Value| -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Array(items) => {
                let messages: Vec<String> = items
                    .iter()
                    .filter_map(|item| {
                        item.get("msg")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .or_else(|| item.as_str().map(str::to_owned))
                    })
                    .collect();
                (!messages.is_empty()).then(|| messages.join("; "))
            }
            _ => None,
        }
    };
    let parsed = serde_json::from_slice::<Value>(&answer.body).ok();
    let message = parsed.as_ref().and_then(|body| {
        ["detail", "error", "message"]
            .iter()
            .find_map(|key| body.get(*key).and_then(text))
    });
    match message {
        Some(message) => format!("{}: HTTP {}: {message}", answer.origin, answer.status),
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
        500..=599 => SourceError::Unavailable {
            status: answer.status,
            message,
        },
        401 | 403 => SourceError::Rejected {
            status: answer.status,
            message: format!("{message} (check the toncenter api_key)"),
        },
        404 => SourceError::Rejected {
            status: 404,
            message: format!(
                "{message} (check the elections and qos base URLs, e.g. {DEFAULT_ELECTIONS_URL} and {DEFAULT_QOS_URL})"
            ),
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

// ---- wire forms; unknown fields are ignored ----

#[derive(Deserialize)]
struct CycleWire {
    #[serde(deserialize_with = "lenient::u64_required")]
    cycle_id: u64,
    #[serde(default)]
    cycle_info: Option<CycleInfoWire>,
}

#[derive(Deserialize, Default)]
struct CycleInfoWire {
    #[serde(default, deserialize_with = "lenient::u64_optional")]
    utime_since: Option<u64>,
    #[serde(default, deserialize_with = "lenient::u64_optional")]
    utime_until: Option<u64>,
    #[serde(default, deserialize_with = "lenient::u128_optional")]
    total_stake: Option<u128>,
    #[serde(default, deserialize_with = "lenient::list")]
    validators: Vec<CycleValidatorWire>,
}

#[derive(Deserialize)]
struct CycleValidatorWire {
    adnl_addr: String,
    #[serde(default)]
    pubkey: Option<String>,
    #[serde(default, deserialize_with = "lenient::u64_optional")]
    weight: Option<u64>,
    #[serde(default, deserialize_with = "lenient::u128_optional")]
    stake: Option<u128>,
    #[serde(default, deserialize_with = "lenient::u32_optional")]
    index: Option<u32>,
    #[serde(default)]
    wallet_address: Option<String>,
}

impl From<CycleWire> for ValidationCycle {
    fn from(wire: CycleWire) -> Self {
        let info = wire.cycle_info.unwrap_or_default();
        Self {
            cycle_id: wire.cycle_id,
            utime_since: info.utime_since,
            utime_until: info.utime_until,
            total_stake: info.total_stake,
            validators: info
                .validators
                .into_iter()
                .map(|validator| CycleValidator {
                    adnl_addr: normalize_key(&validator.adnl_addr),
                    pubkey: non_empty(validator.pubkey).map(|key| normalize_key(&key)),
                    weight: validator.weight,
                    stake: validator.stake,
                    index: validator.index,
                    wallet_address: non_empty(validator.wallet_address),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct ElectionWire {
    #[serde(deserialize_with = "lenient::u64_required")]
    election_id: u64,
    #[serde(default, deserialize_with = "lenient::bool_optional")]
    finished: Option<bool>,
    #[serde(default, deserialize_with = "lenient::list")]
    participants_list: Vec<ParticipantWire>,
}

#[derive(Deserialize)]
struct ParticipantWire {
    adnl_addr: String,
    #[serde(default)]
    pubkey: Option<String>,
    #[serde(deserialize_with = "lenient::u128_required")]
    stake: u128,
    #[serde(default)]
    wallet_address: Option<String>,
}

impl From<ElectionWire> for ElectionRecord {
    fn from(wire: ElectionWire) -> Self {
        Self {
            election_id: wire.election_id,
            finished: wire.finished.unwrap_or(false),
            participants: wire
                .participants_list
                .into_iter()
                .map(|participant| ElectionParticipant {
                    adnl_addr: normalize_key(&participant.adnl_addr),
                    pubkey: non_empty(participant.pubkey).map(|key| normalize_key(&key)),
                    stake: participant.stake,
                    wallet_address: non_empty(participant.wallet_address),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct ComplaintWire {
    adnl_addr: String,
    #[serde(default, deserialize_with = "lenient::u64_optional")]
    election_id: Option<u64>,
    #[serde(deserialize_with = "lenient::u128_required")]
    suggested_fine: u128,
    #[serde(default, deserialize_with = "lenient::bool_optional")]
    is_passed: Option<bool>,
    #[serde(default)]
    pubkey: Option<String>,
}

#[derive(Deserialize)]
struct ScoreboardWire {
    #[serde(deserialize_with = "lenient::list")]
    scoreboard: Vec<ScoreRowWire>,
}

#[derive(Deserialize)]
struct ScoreRowWire {
    #[serde(alias = "validator_adnl")]
    adnl_addr: String,
    #[serde(default, deserialize_with = "lenient::f64_optional")]
    efficiency: Option<f64>,
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.trim().is_empty())
}

/// Deserializers that accept a number either as a JSON number or as a decimal string
/// (nanoton amounts often come as strings, because they overflow JavaScript numbers), and
/// read null or `""` as absent.
pub(crate) mod lenient {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn describe(value: &Value) -> String {
        let text = value.to_string();
        if text.chars().count() > 40 {
            format!("{}...", text.chars().take(40).collect::<String>())
        } else {
            text
        }
    }

    /// `None` for null, a missing value or an empty string.
    fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
        Ok(match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(value) => Some(value),
        })
    }

    fn to_u128(value: &Value) -> Option<u128> {
        match value {
            Value::Number(number) => number.as_u64().map(u128::from).or_else(|| {
                // Integers past u64 arrive as floats; accept whole, non-negative ones.
                number
                    .as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e38)
                    .map(|f| f as u128)
            }),
            Value::String(text) => text.trim().parse::<u128>().ok(),
            _ => None,
        }
    }

    fn to_f64(value: &Value) -> Option<f64> {
        match value {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    fn to_bool(value: &Value) -> Option<bool> {
        match value {
            Value::Bool(flag) => Some(*flag),
            Value::Number(number) => match number.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn optional<'de, D: Deserializer<'de>, T>(
        deserializer: D,
        convert: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, D::Error> {
        match present(deserializer)? {
            None => Ok(None),
            Some(value) => convert(&value).map(Some).ok_or_else(|| {
                D::Error::custom(format!("expected {expected}, got {}", describe(&value)))
            }),
        }
    }

    fn required<'de, D: Deserializer<'de>, T>(
        deserializer: D,
        convert: impl Fn(&Value) -> Option<T>,
        expected: &str,
    ) -> Result<T, D::Error> {
        optional(deserializer, convert, expected)?
            .ok_or_else(|| D::Error::custom(format!("expected {expected}, got null")))
    }

    const UNSIGNED: &str = "a non-negative integer (number or decimal string)";

    pub(crate) fn u128_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u128>, D::Error> {
        optional(deserializer, to_u128, UNSIGNED)
    }

    pub(crate) fn u128_required<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u128, D::Error> {
        required(deserializer, to_u128, UNSIGNED)
    }

    pub(crate) fn u64_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        optional(
            deserializer,
            |value| to_u128(value).and_then(|n| u64::try_from(n).ok()),
            UNSIGNED,
        )
    }

    pub(crate) fn u64_required<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u64, D::Error> {
        required(
            deserializer,
            |value| to_u128(value).and_then(|n| u64::try_from(n).ok()),
            UNSIGNED,
        )
    }

    pub(crate) fn u32_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        optional(
            deserializer,
            |value| to_u128(value).and_then(|n| u32::try_from(n).ok()),
            "an integer 0..=4294967295 (number or decimal string)",
        )
    }

    pub(crate) fn u32_required<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u32, D::Error> {
        required(
            deserializer,
            |value| to_u128(value).and_then(|n| u32::try_from(n).ok()),
            "an integer 0..=4294967295 (number or decimal string)",
        )
    }

    pub(crate) fn i64_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        optional(
            deserializer,
            |value| match value {
                Value::Number(number) => number.as_i64(),
                Value::String(text) => text.trim().parse::<i64>().ok(),
                _ => None,
            },
            "an integer (number or decimal string)",
        )
    }

    pub(crate) fn f64_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        optional(deserializer, to_f64, "a number (or a decimal string)")
    }

    pub(crate) fn bool_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<bool>, D::Error> {
        optional(deserializer, to_bool, "a boolean (true/false, 1/0)")
    }

    /// A list; null or absent is empty.
    pub(crate) fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;

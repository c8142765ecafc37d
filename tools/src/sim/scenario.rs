//! Scenario files: what the simulated world contains and what happens in it, on a sim clock.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::node_metrics::SimNode;

/// A simulated world: coins with a deterministic price walk, validators with balances,
/// scheduled events and faults. All times are offsets from the scenario start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Seeds the price walk: the same scenario at the same sim time gives the same prices.
    #[serde(default)]
    pub seed: u64,
    /// Sim seconds per real second; `0` freezes the clock except for `advance`.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Sim time at start, RFC 3339 string; the wall clock when absent.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub coins: Vec<SimCoin>,
    #[serde(default)]
    pub validators: Vec<SimValidator>,
    #[serde(default)]
    pub events: Vec<SimEvent>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Nominator pools the sim's `runGetMethod` answers for (see `sim::chain`).
    #[serde(default)]
    pub pools: Vec<super::chain::SimPool>,
    /// Cocoon compute nodes whose metrics page `/cocoon/{name}/metrics` serves.
    #[serde(default)]
    pub cocoon_nodes: Vec<SimCocoonNode>,
    /// Jetton balances tonapi's `/v2/accounts/{id}/jettons` lists.
    #[serde(default)]
    pub jettons: Vec<SimJetton>,
}

/// A jetton an account holds: tonapi lists it with its master (derived from the symbol),
/// metadata, verification and, when `price_usd` is set and USD is asked for, its price.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimJetton {
    /// The holder, any address form.
    pub owner: String,
    pub symbol: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "default_jetton_decimals")]
    pub decimals: u32,
    /// In the jetton's smallest units, as tonapi sends it (a string of digits).
    pub balance: String,
    /// "whitelist", "graylist", "blacklist" or "none".
    #[serde(default = "default_verification")]
    pub verification: String,
    #[serde(default)]
    pub price_usd: Option<f64>,
}

fn default_jetton_decimals() -> u32 {
    9
}

fn default_verification() -> String {
    "whitelist".to_owned()
}

/// A Cocoon (AI compute) node: its Prometheus page shows `cocoon_worker_utilization_ratio`
/// per GPU and `cocoon_active_customers`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimCocoonNode {
    pub name: String,
    /// Per GPU, 0..=1.
    pub utilization: Vec<f64>,
    pub customers: u32,
}

fn default_speed() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimCoin {
    /// CoinGecko id, e.g. "the-open-network".
    pub id: String,
    pub symbol: String,
    /// Price at sim offset 0.
    pub price_usd: f64,
    /// Standard deviation of the hourly log return, in percent.
    #[serde(default)]
    pub volatility_percent_per_hour: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimValidator {
    pub name: String,
    /// Wallet address as toncenter would be asked for it (any form; matched verbatim).
    pub address: String,
    pub balance_ton: f64,
    #[serde(default)]
    pub stake_ton: f64,
    /// The wallet's seqno at the start; every accepted `sendBoc` to it adds one.
    #[serde(default)]
    pub seqno: u32,
    /// What `getWalletInformation` calls the contract; "wallet v3 r2" when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_type: Option<String>,
    /// What the node's metrics page (`/metrics/{name}`) shows; defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<SimNode>,
    /// From this offset the validator uses new keys: config 34/36, the elector's lists and
    /// complaints show another public key and ADNL address (`sim_public_key_at`).
    #[serde(
        default,
        with = "offset_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rotate_keys_at: Option<Duration>,
}

/// Something that happens at a sim offset. TOML: `[[events]] at = "2m" kind = "price_move" ...`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimEvent {
    /// Multiplies the coin's walk by `1 + percent/100`, ramped linearly over `over`.
    PriceMove {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        coin: String,
        percent: f64,
        #[serde(
            serialize_with = "offset::serialize",
            deserialize_with = "offset::over",
            default
        )]
        over: Duration,
    },
    /// Adds `delta_ton` (may be negative) to a validator's balance at `at`.
    BalanceChange {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        address: String,
        delta_ton: f64,
    },
    /// A GitHub release of `repo`, listed by `/github/...` from `at` on and published then,
    /// or `published_before_start` before the start (a release that already exists; `at`
    /// must then be "0s").
    Release {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        #[serde(default = "default_release_repo")]
        repo: String,
        tag: String,
        #[serde(default)]
        name: Option<String>,
        /// Release notes (Markdown).
        #[serde(default)]
        body: String,
        #[serde(default)]
        prerelease: bool,
        #[serde(default)]
        draft: bool,
        #[serde(default, with = "offset_option")]
        published_before_start: Option<Duration>,
    },
    /// The elector's state from `at` on: an open election, config 32/36, past elections
    /// with frozen stakes (see `sim::chain`).
    Election(super::chain::SimElection),
    /// The elector returns a frozen stake (with its reward) to the validator's wallet at
    /// `at`: the balance grows by `amount_ton` and `getTransactions` lists an incoming
    /// message from the elector (`-1:3333…3333`) carrying it.
    StakeReturned {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        /// A `[[validators]]` name.
        validator: String,
        amount_ton: f64,
    },
    /// A transfer at `at` between two basechain or masterchain addresses (a customer paying a
    /// Cocoon wallet, a validator wallet sending its stake to the elector): `getTransactions`
    /// lists it as incoming for `to` and as sent (an external order with one outgoing
    /// message) for `from`; a scenario validator's balance moves with it.
    Transfer {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        from: String,
        to: String,
        amount_ton: f64,
        #[serde(default)]
        comment: Option<String>,
    },
    /// A nominator of a `[[pools]]` pool deposits (`delta_ton > 0`) or withdraws (`< 0`) at
    /// `at`; `list_nominators` and `get_pool_data` show it from then on.
    DelegationChange {
        #[serde(serialize_with = "offset::serialize", deserialize_with = "offset::at")]
        at: Duration,
        /// A `[[pools]]` name.
        pool: String,
        /// The nominator's wallet (basechain, any address form).
        nominator: String,
        delta_ton: f64,
    },
}

fn default_release_repo() -> String {
    "ton-blockchain/ton".to_owned()
}

impl SimEvent {
    pub fn at(&self) -> Duration {
        match self {
            Self::PriceMove { at, .. }
            | Self::BalanceChange { at, .. }
            | Self::Release { at, .. }
            | Self::StakeReturned { at, .. }
            | Self::Transfer { at, .. }
            | Self::DelegationChange { at, .. } => *at,
            Self::Election(election) => election.at,
        }
    }
}

/// Which simulated service a fault hits.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SimService {
    Coingecko,
    Toncenter,
    /// toncenter's operator APIs: `/elections/...` and the QoS `/qos/cycleScoreboard`.
    Elections,
    /// tonapi.io v2: `/tonapi/v2/...`.
    Tonapi,
    /// The Slack Web API (`/slack/api/...`) and `response_url` sink (`/slack/response/...`).
    Slack,
    /// The Telegram Bot API (`/telegram/bot{token}/{method}`).
    Telegram,
}

impl SimService {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coingecko => "coingecko",
            Self::Toncenter => "toncenter",
            Self::Elections => "elections",
            Self::Tonapi => "tonapi",
            Self::Slack => "slack",
            Self::Telegram => "telegram",
        }
    }
}

/// A failure the sim serves instead of (or before) the normal answer. Active while the sim
/// offset is in `[from, until)` (open ends when absent) and, with `count`, for the next
/// `count` matching requests only. Flat on the wire:
/// `{"service":"coingecko","count":1,"kind":"rate_limit","retry_after_seconds":1}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "FaultSpec", into = "FaultSpec")]
pub struct Fault {
    pub service: SimService,
    pub from: Option<Duration>,
    pub until: Option<Duration>,
    pub count: Option<u32>,
    pub kind: FaultKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// 429 with the service's JSON body and, when given, `Retry-After`.
    RateLimit { retry_after_seconds: Option<u64> },
    /// 429 with a Cloudflare-style HTML page.
    RateLimitHtml,
    /// 500, 502, 503 or 504 with the body the service sends for it.
    ServerError { status: u16 },
    /// The normal answer after `delay_ms` real milliseconds.
    Timeout { delay_ms: u64 },
    /// 200 with a non-JSON body.
    Garbage,
    /// 200 with the normal JSON cut in half.
    Truncated,
    /// `sendBoc` only (other requests are not hit): the message is applied as usual, then
    /// the answer is held for `delay_ms` real milliseconds, so a client that times out
    /// cannot know the transfer happened.
    AppliedThenTimeout { delay_ms: u64 },
    /// Slack Web API methods only (`chat.*` and `apps.connections.open`; other requests
    /// are not hit): HTTP 200 with `{"ok": false, "error": <error>}`, Slack's way of failing
    /// a call (`channel_not_found`, `not_in_channel`, `invalid_auth`, ...).
    ApiError { error: String },
    /// Telegram `getUpdates` only (other requests are not hit): HTTP 409 "Conflict:
    /// terminated by other getUpdates request", what a second poller with the same token
    /// causes.
    Conflict,
}

impl FaultKind {
    /// Whether this fault may hit a request to `endpoint` (the last path segment).
    pub(crate) fn hits(&self, endpoint: &str) -> bool {
        match self {
            Self::AppliedThenTimeout { .. } => endpoint == "sendBoc",
            Self::ApiError { .. } => endpoint.starts_with("chat.") || endpoint.starts_with("apps."),
            Self::Conflict => endpoint == "getUpdates",
            _ => true,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum FaultKindName {
    RateLimit,
    RateLimitHtml,
    ServerError,
    Timeout,
    Garbage,
    Truncated,
    AppliedThenTimeout,
    ApiError,
    Conflict,
}

/// The flat wire form of [`Fault`], checked on conversion.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    service: SimService,
    #[serde(
        default,
        with = "offset_option",
        skip_serializing_if = "Option::is_none"
    )]
    from: Option<Duration>,
    #[serde(
        default,
        with = "offset_option",
        skip_serializing_if = "Option::is_none"
    )]
    until: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    kind: FaultKindName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Self, String> {
        let name = spec.kind;
        let only_for = |field: &str, present: bool, allowed: FaultKindName| {
            if present && name != allowed {
                Err(format!(
                    "`{field}` does not apply to kind {name:?}; it belongs to kind {allowed:?}"
                ))
            } else {
                Ok(())
            }
        };
        only_for(
            "retry_after_seconds",
            spec.retry_after_seconds.is_some(),
            FaultKindName::RateLimit,
        )?;
        only_for("status", spec.status.is_some(), FaultKindName::ServerError)?;
        only_for("error", spec.error.is_some(), FaultKindName::ApiError)?;
        if name == FaultKindName::ApiError && spec.service != SimService::Slack {
            return Err(format!(
                "api_error is Slack's `{{\"ok\": false}}` answer; it needs service \"slack\", not {:?}",
                spec.service.as_str()
            ));
        }
        if name == FaultKindName::Conflict && spec.service != SimService::Telegram {
            return Err(format!(
                "conflict is Telegram's 409 to a second getUpdates poller; it needs service \"telegram\", not {:?}",
                spec.service.as_str()
            ));
        }
        if name != FaultKindName::AppliedThenTimeout {
            only_for("delay_ms", spec.delay_ms.is_some(), FaultKindName::Timeout)?;
        }
        let kind = match name {
            FaultKindName::RateLimit => FaultKind::RateLimit {
                retry_after_seconds: spec.retry_after_seconds,
            },
            FaultKindName::RateLimitHtml => FaultKind::RateLimitHtml,
            FaultKindName::ServerError => match spec.status {
                Some(status @ (500 | 502 | 503 | 504)) => FaultKind::ServerError { status },
                Some(other) => {
                    return Err(format!(
                        "server_error status must be 500, 502, 503 or 504, got {other}"
                    ));
                }
                None => return Err("server_error needs `status` (500, 502, 503 or 504)".into()),
            },
            FaultKindName::Timeout => match spec.delay_ms {
                Some(delay_ms) => FaultKind::Timeout { delay_ms },
                None => return Err("timeout needs `delay_ms` (real milliseconds)".into()),
            },
            FaultKindName::Garbage => FaultKind::Garbage,
            FaultKindName::Truncated => FaultKind::Truncated,
            FaultKindName::AppliedThenTimeout => match spec.delay_ms {
                Some(delay_ms) => FaultKind::AppliedThenTimeout { delay_ms },
                None => {
                    return Err("applied_then_timeout needs `delay_ms` (real milliseconds)".into());
                }
            },
            FaultKindName::Conflict => FaultKind::Conflict,
            FaultKindName::ApiError => match spec.error {
                Some(error)
                    if !error.is_empty()
                        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
                {
                    FaultKind::ApiError { error }
                }
                Some(other) => {
                    return Err(format!(
                        "api_error `error` must be a Slack error code like \"channel_not_found\" (lower-case letters and '_'), got {other:?}"
                    ));
                }
                None => {
                    return Err(
                        "api_error needs `error`, a Slack error code like \"channel_not_found\""
                            .into(),
                    );
                }
            },
        };
        if let (Some(from), Some(until)) = (spec.from, spec.until)
            && from >= until
        {
            return Err(format!(
                "fault window is empty: from ({}) must be before until ({})",
                format_offset(from),
                format_offset(until)
            ));
        }
        Ok(Fault {
            service: spec.service,
            from: spec.from,
            until: spec.until,
            count: spec.count,
            kind,
        })
    }
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> Self {
        let mut spec = FaultSpec {
            service: fault.service,
            from: fault.from,
            until: fault.until,
            count: fault.count,
            kind: FaultKindName::Garbage,
            retry_after_seconds: None,
            status: None,
            delay_ms: None,
            error: None,
        };
        match fault.kind {
            FaultKind::RateLimit {
                retry_after_seconds,
            } => {
                spec.kind = FaultKindName::RateLimit;
                spec.retry_after_seconds = retry_after_seconds;
            }
            FaultKind::RateLimitHtml => spec.kind = FaultKindName::RateLimitHtml,
            FaultKind::ServerError { status } => {
                spec.kind = FaultKindName::ServerError;
                spec.status = Some(status);
            }
            FaultKind::Timeout { delay_ms } => {
                spec.kind = FaultKindName::Timeout;
                spec.delay_ms = Some(delay_ms);
            }
            FaultKind::Garbage => spec.kind = FaultKindName::Garbage,
            FaultKind::Truncated => spec.kind = FaultKindName::Truncated,
            FaultKind::AppliedThenTimeout { delay_ms } => {
                spec.kind = FaultKindName::AppliedThenTimeout;
                spec.delay_ms = Some(delay_ms);
            }
            FaultKind::ApiError { error } => {
                spec.kind = FaultKindName::ApiError;
                spec.error = Some(error);
            }
            FaultKind::Conflict => spec.kind = FaultKindName::Conflict,
        }
        spec
    }
}

/// Parses a sim offset: a number with a unit (`ms`, `s`, `m`, `h`, `d`), several
/// concatenated (`"1m30s"`), decimals allowed (`"1.5h"`).
pub fn parse_sim_offset(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. \"90s\", \"10m\" or \"2h\"".into());
    }
    let mut total = 0.0_f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?}; write e.g. \"90s\", \"10m\" or \"2h\""
            ));
        }
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: {number:?} is not a number"))?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: {number:?} has no unit; write e.g. \"{number}s\" or \"{number}m\""
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?}; use ms, s, m, h or d"
                ));
            }
        };
        total += value * seconds_per_unit;
        rest = next;
    }
    Duration::try_from_secs_f64(total)
        .map_err(|error| format!("invalid duration {text:?}: {error}"))
}

/// Formats an offset the way [`parse_sim_offset`] reads it back.
pub fn format_offset(offset: Duration) -> String {
    if offset.subsec_millis() == 0 && offset.subsec_nanos() == 0 {
        format!("{}s", offset.as_secs())
    } else {
        format!("{}ms", offset.as_millis())
    }
}

mod offset {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(offset: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_offset(*offset))
    }

    /// Names the field in the message: inside an internally tagged enum (events) the
    /// error path stops at the table, so the key would otherwise be lost.
    fn named<'de, D: Deserializer<'de>>(
        deserializer: D,
        field: &str,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)
            .map_err(|error| serde::de::Error::custom(format!("field `{field}`: {error}")))?;
        super::parse_sim_offset(&text)
            .map_err(|error| serde::de::Error::custom(format!("field `{field}`: {error}")))
    }

    pub fn at<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        named(deserializer, "at")
    }

    pub fn over<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        named(deserializer, "over")
    }
}

mod offset_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        offset: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match offset {
            Some(offset) => super::offset::serialize(offset, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse_sim_offset(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

impl Scenario {
    /// Parses and validates a scenario. Errors name `origin:line`, the key path and what
    /// to change; validation reports every problem at once.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let parse_error = |key_path: String, error: toml::de::Error| SimError::Parse {
            origin: origin.to_owned(),
            line: error.span().map(|span| line_of(text, span.start)),
            key_path,
            message: error.message().trim().to_owned(),
        };
        let deserializer =
            toml::Deserializer::parse(text).map_err(|error| parse_error(String::new(), error))?;
        let scenario: Scenario =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let key_path = error.path().to_string();
                parse_error(key_path, error.into_inner())
            })?;
        let problems = scenario.problems();
        if problems.is_empty() {
            return Ok(scenario);
        }
        let document = toml_edit::Document::parse(text).ok();
        let problems = problems
            .into_iter()
            .map(|(key_path, message)| {
                let line = document
                    .as_ref()
                    .and_then(|document| locate(document.as_item(), &key_path))
                    .map(|offset| line_of(text, offset));
                match line {
                    Some(line) => format!("{origin}:{line}: at `{key_path}`: {message}"),
                    None => format!("{origin}: at `{key_path}`: {message}"),
                }
            })
            .collect();
        Err(SimError::Invalid {
            origin: origin.to_owned(),
            problems,
        })
    }

    /// The demo world: TON, BTC, ETH; two validators; a ~12% TON drop over 2 minutes
    /// starting 2 minutes in and a recovery later; a short CoinGecko 429 window.
    pub fn demo() -> Scenario {
        const DEMO: &str = include_str!("demo.toml");
        match Scenario::from_toml(DEMO, "tools/src/sim/demo.toml") {
            Ok(scenario) => scenario,
            // The embedded file is checked by a unit test; this fallback keeps `demo()`
            // infallible without panicking.
            Err(error) => {
                tracing::error!(%error, "embedded demo scenario is invalid; using an empty world");
                Scenario {
                    name: "demo (invalid embedded file)".to_owned(),
                    seed: 0,
                    speed: 1.0,
                    start: None,
                    coins: Vec::new(),
                    validators: Vec::new(),
                    events: Vec::new(),
                    faults: Vec::new(),
                    pools: Vec::new(),
                    cocoon_nodes: Vec::new(),
                    jettons: Vec::new(),
                }
            }
        }
    }

    /// Checks a scenario built in code the way `from_toml` checks a file.
    pub fn validate(&self, origin: &str) -> Result<(), SimError> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(SimError::Invalid {
            origin: origin.to_owned(),
            problems: problems
                .into_iter()
                .map(|(key_path, message)| format!("{origin}: at `{key_path}`: {message}"))
                .collect(),
        })
    }

    /// Every semantic problem as (key path, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push((path, message));
        if self.name.trim().is_empty() {
            problem("name".into(), "name is empty".into());
        }
        if !(self.speed.is_finite() && self.speed >= 0.0) {
            problem(
                "speed".into(),
                format!(
                    "speed must be a number >= 0 (sim seconds per real second), got {}",
                    self.speed
                ),
            );
        }
        let mut coin_ids = BTreeSet::new();
        for (index, coin) in self.coins.iter().enumerate() {
            if coin.id.trim().is_empty() {
                problem(format!("coins[{index}].id"), "coin id is empty".into());
            } else if !coin_ids.insert(coin.id.as_str()) {
                problem(
                    format!("coins[{index}].id"),
                    format!("duplicate coin id {:?}", coin.id),
                );
            }
            if !(coin.price_usd.is_finite() && coin.price_usd > 0.0) {
                problem(
                    format!("coins[{index}].price_usd"),
                    format!("price_usd must be > 0, got {}", coin.price_usd),
                );
            }
            if !(coin.volatility_percent_per_hour.is_finite()
                && coin.volatility_percent_per_hour >= 0.0)
            {
                problem(
                    format!("coins[{index}].volatility_percent_per_hour"),
                    format!(
                        "volatility_percent_per_hour must be >= 0, got {}",
                        coin.volatility_percent_per_hour
                    ),
                );
            }
        }
        for (index, jetton) in self.jettons.iter().enumerate() {
            if crate::ton::parse_address(&jetton.owner).is_err() {
                problem(
                    format!("jettons[{index}].owner"),
                    format!("{:?} is not a TON address", jetton.owner),
                );
            }
            if jetton.balance.is_empty() || !jetton.balance.bytes().all(|b| b.is_ascii_digit()) {
                problem(
                    format!("jettons[{index}].balance"),
                    format!(
                        "balance must be digits (smallest units), got {:?}",
                        jetton.balance
                    ),
                );
            }
            if jetton
                .price_usd
                .is_some_and(|price| !(price.is_finite() && price >= 0.0))
            {
                problem(
                    format!("jettons[{index}].price_usd"),
                    "price_usd must be >= 0".into(),
                );
            }
        }
        let mut addresses = BTreeSet::new();
        for (index, validator) in self.validators.iter().enumerate() {
            if validator.address.trim().is_empty() {
                problem(
                    format!("validators[{index}].address"),
                    "address is empty".into(),
                );
            } else if !addresses.insert(validator.address.as_str()) {
                problem(
                    format!("validators[{index}].address"),
                    format!("duplicate validator address {:?}", validator.address),
                );
            }
            for (field, value) in [
                ("balance_ton", validator.balance_ton),
                ("stake_ton", validator.stake_ton),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    problem(
                        format!("validators[{index}].{field}"),
                        format!("{field} must be >= 0, got {value}"),
                    );
                }
            }
            if let Some(node) = &validator.node {
                for (path, message) in node.problems(&format!("validators[{index}].node")) {
                    problem(path, message);
                }
            }
        }
        for (index, event) in self.events.iter().enumerate() {
            match event {
                SimEvent::PriceMove { coin, percent, .. } => {
                    if !coin_ids.contains(coin.as_str()) {
                        problem(
                            format!("events[{index}].coin"),
                            format!("unknown coin {coin:?}; known coins: {coin_ids:?}"),
                        );
                    }
                    if !(percent.is_finite() && *percent > -100.0) {
                        problem(
                            format!("events[{index}].percent"),
                            format!("percent must be > -100, got {percent}"),
                        );
                    }
                }
                SimEvent::BalanceChange {
                    address, delta_ton, ..
                } => {
                    if !addresses.contains(address.as_str()) {
                        problem(
                            format!("events[{index}].address"),
                            format!(
                                "unknown validator address {address:?}; add it under [[validators]]"
                            ),
                        );
                    }
                    if !delta_ton.is_finite() {
                        problem(
                            format!("events[{index}].delta_ton"),
                            format!("delta_ton must be a finite number, got {delta_ton}"),
                        );
                    }
                }
                SimEvent::Election(election) => {
                    for (path, message) in election.problems(index, &self.validators) {
                        problem(path, message);
                    }
                }
                SimEvent::Transfer {
                    from,
                    to,
                    amount_ton,
                    ..
                } => {
                    for (key, address) in [("from", from), ("to", to)] {
                        if let Err(error) = crate::ton::parse_address(address) {
                            problem(format!("events[{index}].{key}"), error.to_string());
                        }
                    }
                    if !(amount_ton.is_finite() && *amount_ton > 0.0) {
                        problem(
                            format!("events[{index}].amount_ton"),
                            format!("amount_ton must be > 0, got {amount_ton}"),
                        );
                    }
                }
                SimEvent::StakeReturned {
                    validator,
                    amount_ton,
                    ..
                } => {
                    if !self.validators.iter().any(|known| &known.name == validator) {
                        problem(
                            format!("events[{index}].validator"),
                            format!(
                                "unknown validator name {validator:?}; use a [[validators]] name"
                            ),
                        );
                    }
                    if !(amount_ton.is_finite() && *amount_ton >= 0.0) {
                        problem(
                            format!("events[{index}].amount_ton"),
                            format!("amount_ton must be >= 0, got {amount_ton}"),
                        );
                    }
                }
                SimEvent::DelegationChange {
                    pool,
                    nominator,
                    delta_ton,
                    ..
                } => {
                    if !self.pools.iter().any(|known| &known.name == pool) {
                        problem(
                            format!("events[{index}].pool"),
                            format!("unknown pool {pool:?}; use a [[pools]] name"),
                        );
                    }
                    if let Err(message) = super::chain::nominator_account(nominator) {
                        problem(format!("events[{index}].nominator"), message);
                    }
                    if !delta_ton.is_finite() {
                        problem(
                            format!("events[{index}].delta_ton"),
                            format!("delta_ton must be a finite number, got {delta_ton}"),
                        );
                    }
                }
                SimEvent::Release {
                    at,
                    repo,
                    tag,
                    published_before_start,
                    ..
                } => {
                    if repo.split('/').count() != 2 || tag.trim().is_empty() {
                        problem(
                            format!("events[{index}].tag"),
                            format!(
                                "a release needs repo \"owner/name\" and a tag; got repo {repo:?}, tag {tag:?}"
                            ),
                        );
                    }
                    if published_before_start.is_some() && !at.is_zero() {
                        problem(
                            format!("events[{index}].at"),
                            "with published_before_start the release exists from the start; set at = \"0s\"".into(),
                        );
                    }
                }
            }
        }
        for (path, message) in super::chain::pool_problems(&self.pools, &self.validators) {
            problem(path, message);
        }
        problems
    }
}

fn line_of(text: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Byte offset of the item at `key_path` (`events[2].coin`), or of its nearest ancestor.
fn locate(root: &toml_edit::Item, key_path: &str) -> Option<usize> {
    let mut item = root;
    let mut best = None;
    for segment in key_path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        if !key.is_empty() {
            match item.get(key) {
                Some(child) => item = child,
                None => return best,
            }
            best = item.span().map(|span| span.start).or(best);
        }
        if let Some(index) = index {
            match item.get(index) {
                Some(child) => item = child,
                None => return best,
            }
            best = item.span().map(|span| span.start).or(best);
        }
    }
    best
}

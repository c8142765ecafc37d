//! tonapi.io v2 as an alternative provider of chain data: the current validator set with
//! stakes (`/v2/blockchain/validators`), an account's balance and status
//! (`/v2/accounts/{id}`, or many at once with `POST /v2/accounts/_bulk`) and the staking pools
//! open to nominators with their APY (`/v2/staking/pools`), and an account's jetton balances
//! with their prices (`/v2/accounts/{id}/jettons`).
//!
//! Auth is `Authorization: Bearer <key>` (keys from tonconsole.com). Without a key tonapi
//! allows 1 request per 4 seconds per IP, so a keyless client spaces its requests 4 s apart
//! whatever rate it is given ([`KEYLESS_REQUESTS_PER_SECOND`]); with a key the configured
//! rate applies (it follows the paid plan).

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::elections::lenient;
use crate::http::{
    Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, backoff_delay, join_url,
};
use crate::secret::Secret;

const SOURCE: &str = "tonapi";

pub const DEFAULT_BASE_URL: &str = "https://tonapi.io";

/// tonapi's free tier: one request per 4 seconds.
pub const KEYLESS_REQUESTS_PER_SECOND: f64 = 0.25;

/// Most account ids tonapi takes in one `POST /v2/accounts/_bulk` (its bulk limit); longer
/// lists go as several requests.
pub const MAX_BULK_ACCOUNTS: usize = 100;

/// The validator set tonapi reports: the elector's record of the election whose set is in
/// force (config 34), so during an election it is one round behind the participant list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TonapiValidators {
    /// Unix time the set took effect (= its election id).
    pub elect_at: u64,
    pub elect_close: u64,
    /// Nanotons.
    pub min_stake: u128,
    /// Nanotons.
    pub total_stake: u128,
    pub validators: Vec<TonapiValidator>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TonapiValidator {
    /// The validator's wallet, raw `-1:<hex>` in lower case.
    pub address: String,
    /// Lower-case hex.
    pub adnl_address: String,
    /// Nanotons.
    pub stake: u128,
    /// The elector's fixed-point max factor: 65536 = 1.0, 196608 = 3.0 (the mainnet cap).
    pub max_factor: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TonapiAccount {
    /// Raw `wc:hex` in lower case (tonapi sends that form; anything unparseable is kept as
    /// sent), so a caller can match it against its own addresses normalised the same way.
    pub address: String,
    /// Nanotons.
    pub balance: u128,
    /// "active", "uninit", "frozen" or "nonexist".
    pub status: String,
    /// Unix time of the last transaction; `None` when absent or 0 (tonapi's value for an
    /// account that never had one).
    pub last_activity: Option<i64>,
}

/// A staking pool as `/v2/staking/pools` lists it (`PoolInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StakingPool {
    /// Raw `wc:hex` in lower case when it parses as an address; as sent otherwise.
    pub address: String,
    pub name: String,
    /// tonapi's `PoolImplementationType`: "tf", "whales", "liquidTF", "ffvault" (or a newer one,
    /// kept as sent).
    pub implementation: String,
    /// Annual yield in percent, as tonapi estimates it for nominators (after the pool's fee).
    pub apy: f64,
    pub min_stake_nanoton: u128,
    pub total_amount_nanoton: u128,
    /// Verified source code or run by a trusted company (tonapi's white list).
    pub verified: bool,
    pub current_nominators: u32,
    pub max_nominators: u32,
    /// Unix times of the current nomination cycle; 0 when tonapi leaves them out.
    pub cycle_start: i64,
    pub cycle_end: i64,
}

/// One jetton an account holds, as `/v2/accounts/{id}/jettons` lists it (`JettonBalance`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JettonBalance {
    /// The jetton master, raw `wc:hex` in lower case (as sent when it does not parse).
    pub master: String,
    pub name: String,
    /// As the master's metadata says it (`USD₮` for Tether's USDT on TON).
    pub symbol: String,
    pub decimals: u32,
    /// In the jetton's smallest units: `quantity = raw_balance / 10^decimals`.
    pub raw_balance: u128,
    /// tonapi's `JettonVerificationType`: "whitelist", "graylist", "blacklist" or "none" (a
    /// newer value kept as sent). Anyone can mint a jetton named USDT: only whitelisted ones
    /// are the real thing.
    pub verification: String,
    /// The price in each currency asked for, keys upper-case ("USD"); empty when tonapi has
    /// none (an illiquid or new jetton).
    pub prices: std::collections::BTreeMap<String, f64>,
}

/// An account's jettons: the entries that could be read, and what was wrong with the others.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JettonBalances {
    pub balances: Vec<JettonBalance>,
    /// One line per entry left out, naming its position and the reason.
    pub skipped: Vec<String>,
}

pub struct TonapiClient {
    core: HttpCore,
    base_url: String,
    requests_per_second: f64,
    /// The core's policy, for the read-only POST that [`HttpCore::post_json_once`] does not
    /// retry by itself.
    retry: RetryPolicy,
}

impl TonapiClient {
    /// `base_url` is the API root without `/v2`: [`DEFAULT_BASE_URL`], or
    /// `https://testnet.tonapi.io`. `requests_per_second` applies with an `api_key`; without
    /// one the client uses [`KEYLESS_REQUESTS_PER_SECOND`].
    pub fn new(
        base_url: &str,
        api_key: Option<Secret>,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, base_url, "v2/blockchain/validators")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| SourceError::InvalidInput {
                    detail: format!(
                        "{SOURCE}: the api_key contains characters not allowed in an Authorization header"
                    ),
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let requests_per_second = if api_key.is_some() {
            requests_per_second
        } else {
            KEYLESS_REQUESTS_PER_SECOND
        };
        Ok(Self {
            core: HttpCore::new(SOURCE, requests_per_second, retry.clone(), headers, api_key)?,
            base_url: base_url.to_owned(),
            requests_per_second,
            retry,
        })
    }

    pub fn source(&self) -> &'static str {
        self.core.source()
    }

    /// The client-side rate limit in force: the configured one with a key, 0.25 without.
    pub fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    /// `GET /v2/blockchain/validators`.
    pub async fn validators(&self) -> Result<Fetched<TonapiValidators>, SourceError> {
        let url = join_url(SOURCE, &self.base_url, "v2/blockchain/validators")?;
        self.core
            .get(&url, |answer| {
                let wire: ValidatorsWire = interpret_ok(&answer)?;
                Ok(TonapiValidators::from(wire))
            })
            .await
    }

    /// `GET /v2/staking/pools`: the pools tonapi lists (its white list; `verified` tells them
    /// apart when it includes others), in the order sent. The `implementations` map of the
    /// answer is not kept.
    pub async fn staking_pools(&self) -> Result<Fetched<Vec<StakingPool>>, SourceError> {
        let url = join_url(SOURCE, &self.base_url, "v2/staking/pools")?;
        self.core
            .get(&url, |answer| {
                let wire: StakingPoolsWire = interpret_ok(&answer)?;
                Ok(wire.pools.into_iter().map(StakingPool::from).collect())
            })
            .await
    }

    /// `GET /v2/accounts/{address}`; `address` is raw (`wc:hex`) or user-friendly, or a name
    /// tonapi resolves (`foo.ton`).
    pub async fn account(&self, address: &str) -> Result<Fetched<TonapiAccount>, SourceError> {
        let url = self.account_url(address)?;
        self.core
            .get(&url, |answer| {
                let wire: AccountWire = interpret_ok(&answer)?;
                Ok(TonapiAccount::from(wire))
            })
            .await
    }

    /// `GET /v2/accounts/{address}/jettons?currencies=...`: the jettons the account holds with
    /// their price in each of `currencies` (e.g. `["usd"]`). An entry that cannot be read (a
    /// spam jetton with broken metadata: no symbol, decimals above 28) is left out and named
    /// in [`JettonBalances::skipped`]; the others are kept.
    pub async fn account_jettons(
        &self,
        address: &str,
        currencies: &[&str],
    ) -> Result<Fetched<JettonBalances>, SourceError> {
        let mut url = self.account_url(address)?;
        url.path_segments_mut()
            .map_err(|()| SourceError::InvalidInput {
                detail: format!("{SOURCE}: base_url cannot carry a path"),
            })?
            .push("jettons");
        if !currencies.is_empty() {
            url.query_pairs_mut()
                .append_pair("currencies", &currencies.join(","));
        }
        self.core
            .get(&url, |answer| {
                let wire: JettonsWire = interpret_ok(&answer)?;
                Ok(JettonBalances::from(wire))
            })
            .await
    }

    /// `POST /v2/accounts/_bulk {"account_ids": [...]}`: many accounts' balance and status,
    /// [`MAX_BULK_ACCOUNTS`] ids per request, one request per chunk in turn, the answers
    /// concatenated in request order.
    ///
    /// Each address must be raw (`wc:hex`) or user-friendly; it is sent in the raw lower-case
    /// form. Names (`foo.ton`) are not taken here. An invalid address fails the whole call with
    /// [`SourceError::InvalidInput`] naming it, before anything is sent; an empty list sends
    /// nothing and returns an empty list. tonapi answers an unknown account as `nonexist`
    /// with balance 0; an account missing from an answer is missing from the result, so a
    /// caller matches accounts by [`TonapiAccount::address`], not by position.
    ///
    /// Read-only, so each request is retried like a GET on transient failures. `attempts`
    /// counts the requests of every chunk; a chunk that fails ends the call with its error.
    pub async fn accounts(
        &self,
        addresses: &[&str],
    ) -> Result<Fetched<Vec<TonapiAccount>>, SourceError> {
        let ids = addresses
            .iter()
            .map(|address| bulk_account_id(address))
            .collect::<Result<Vec<_>, _>>()?;
        let started = tokio::time::Instant::now();
        let mut accounts = Vec::with_capacity(ids.len());
        let mut attempts = 0;
        if !ids.is_empty() {
            let url = join_url(SOURCE, &self.base_url, "v2/accounts/_bulk")?;
            for chunk in ids.chunks(MAX_BULK_ACCOUNTS) {
                let body = serde_json::json!({ "account_ids": chunk });
                let fetched = self
                    .post_json_idempotent(&url, &body, |answer| {
                        let wire: AccountsWire = interpret_ok(&answer)?;
                        Ok(wire.accounts)
                    })
                    .await?;
                attempts += fetched.attempts;
                accounts.extend(fetched.value.into_iter().map(TonapiAccount::from));
            }
        }
        Ok(Fetched {
            value: accounts,
            attempts,
            latency: started.elapsed(),
        })
    }

    /// POSTs a JSON body for a read-only request and retries transient failures per the
    /// policy, as [`HttpCore::get`] does for a GET. The core's `post_json_once` retries only a
    /// connection that could not be made (and gives up with [`SourceError::Connect`] once its
    /// attempts are spent, so that error ends the loop here too); everything else transient
    /// (429 with its `Retry-After`, 5xx, timeout, cut-off or garbled answer) is sent again.
    async fn post_json_idempotent<T>(
        &self,
        url: &Url,
        body: &Value,
        interpret: impl Fn(HttpAnswer) -> Result<T, SourceError>,
    ) -> Result<Fetched<T>, SourceError> {
        let started = tokio::time::Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let mut failed = 0;
        loop {
            match self.core.post_json_once(url, body, &interpret).await {
                Ok(fetched) => {
                    return Ok(Fetched {
                        value: fetched.value,
                        attempts: failed + fetched.attempts,
                        latency: started.elapsed(),
                    });
                }
                Err(error) => {
                    failed += 1;
                    let spent = matches!(error, SourceError::Connect { .. });
                    if spent || failed >= max_attempts || !error.is_transient() {
                        return Err(error);
                    }
                    let retry_after = match &error {
                        SourceError::RateLimited { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay =
                        backoff_delay(&self.retry, failed, retry_after, rand::random::<f64>());
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn account_url(&self, address: &str) -> Result<Url, SourceError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} account: the address is empty"),
            });
        }
        // The raw form needs no escaping; anything else goes as one escaped path segment.
        let id = crate::ton::parse_address(address)
            .map(|parsed| parsed.raw)
            .unwrap_or_else(|_| address.to_owned());
        let mut url = join_url(SOURCE, &self.base_url, "v2/accounts")?;
        url.path_segments_mut()
            .map_err(|()| SourceError::InvalidInput {
                detail: format!("{SOURCE}: base_url cannot carry a path"),
            })?
            .push(&id);
        Ok(url)
    }
}

/// An address for `/v2/accounts/_bulk`: its raw lower-case form, or InvalidInput naming it.
fn bulk_account_id(address: &str) -> Result<String, SourceError> {
    crate::ton::parse_address(address)
        .map(|parsed| parsed.raw)
        .map_err(|error| SourceError::InvalidInput {
            detail: format!(
                "{SOURCE} accounts/_bulk: {error} (an id must be a raw wc:hex or user-friendly address); nothing was sent"
            ),
        })
}

/// Lower-case raw form when the text parses as an address; as sent otherwise.
fn raw_address(text: &str) -> String {
    crate::ton::parse_address(text)
        .map(|parsed| parsed.raw)
        .unwrap_or_else(|_| text.trim().to_owned())
}

fn interpret_ok<T: DeserializeOwned>(answer: &HttpAnswer) -> Result<T, SourceError> {
    if !(200..300).contains(&answer.status) {
        return Err(classify_error(answer));
    }
    if answer.is_html() {
        return Err(SourceError::InvalidResponse {
            detail: format!(
                "{}: HTTP {} with an HTML page instead of JSON; body starts with {:?}",
                answer.origin,
                answer.status,
                answer.snippet()
            ),
        });
    }
    answer.ensure_json()?;
    answer.parse_json()
}

/// `{"error": "...", "error_code"?: n}` (opentonapi's Error response), a plain string (JSON
/// or not), or a proxy's HTML page.
fn error_message(answer: &HttpAnswer) -> String {
    if answer.is_html() {
        return format!(
            "{}: HTTP {} with an HTML page (a proxy or Cloudflare error); body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        );
    }
    let message = match serde_json::from_slice::<Value>(&answer.body) {
        Ok(body) => error_body_message(&body),
        // Plain text: the message itself, cut like any snippet.
        Err(_) => Some(answer.snippet().trim().to_owned()).filter(|text| !text.is_empty()),
    };
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

/// The message of a parsed tonapi error body: `{"error": "..."}` (or `"message"`), or a
/// plain JSON string; `None` for any other JSON.
pub(crate) fn error_body_message(body: &Value) -> Option<String> {
    match body {
        Value::Object(fields) => fields
            .get("error")
            .or_else(|| fields.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// Reads a `/v2/blockchain/validators` body already parsed as JSON (a saved answer, for
/// `command-center ton decode`), with the same wire rules as [`TonapiClient::validators`].
/// The error names the JSON path.
pub fn parse_validators(body: &Value) -> Result<TonapiValidators, SourceError> {
    parse_wire::<ValidatorsWire>("/v2/blockchain/validators", body).map(TonapiValidators::from)
}

/// Reads a `/v2/accounts/{id}` body already parsed as JSON, with the same wire rules as
/// [`TonapiClient::account`]. The error names the JSON path.
pub fn parse_account(body: &Value) -> Result<TonapiAccount, SourceError> {
    parse_wire::<AccountWire>("/v2/accounts/{id}", body).map(TonapiAccount::from)
}

/// Reads a `POST /v2/accounts/_bulk` body (`{"accounts": [...]}`) already parsed as JSON,
/// with the same wire rules as [`TonapiClient::accounts`]. The error names the JSON path.
pub fn parse_accounts(body: &Value) -> Result<Vec<TonapiAccount>, SourceError> {
    parse_wire::<AccountsWire>("/v2/accounts/_bulk", body)
        .map(|wire| wire.accounts.into_iter().map(TonapiAccount::from).collect())
}

/// Reads a `/v2/staking/pools` body (`{"pools": [...], "implementations": {...}}`) already
/// parsed as JSON, with the same wire rules as [`TonapiClient::staking_pools`]. The error
/// names the JSON path.
pub fn parse_staking_pools(body: &Value) -> Result<Vec<StakingPool>, SourceError> {
    parse_wire::<StakingPoolsWire>("/v2/staking/pools", body)
        .map(|wire| wire.pools.into_iter().map(StakingPool::from).collect())
}

/// Reads a `/v2/accounts/{id}/jettons` body (`{"balances": [...]}`) already parsed as JSON,
/// with the same wire rules as [`TonapiClient::account_jettons`].
pub fn parse_jettons(body: &Value) -> Result<JettonBalances, SourceError> {
    parse_wire::<JettonsWire>("/v2/accounts/{id}/jettons", body).map(JettonBalances::from)
}

fn parse_wire<T: DeserializeOwned>(endpoint: &str, body: &Value) -> Result<T, SourceError> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        SourceError::InvalidResponse {
            detail: format!(
                "{SOURCE} {endpoint}: not the expected JSON (at `{path}`: {})",
                error.into_inner()
            ),
        }
    })
}

fn classify_error(answer: &HttpAnswer) -> SourceError {
    let message = error_message(answer);
    match answer.status {
        429 => SourceError::RateLimited {
            retry_after: answer.retry_after,
            message: format!(
                "{message} (tonapi allows 1 request per 4 s without an api key; configure one for more)"
            ),
        },
        500..=599 => SourceError::Unavailable {
            status: answer.status,
            message,
        },
        400 => SourceError::InvalidInput {
            detail: format!(
                "{message} (tonapi rejected the request; an account id must be a raw wc:hex or user-friendly address, or a name)"
            ),
        },
        401 | 403 => SourceError::Rejected {
            status: answer.status,
            message: format!("{message} (check the tonapi api_key)"),
        },
        402 | 404..=499 => SourceError::Rejected {
            status: answer.status,
            message,
        },
        status => SourceError::InvalidResponse {
            detail: format!("{message} (unexpected HTTP status {status})"),
        },
    }
}

// ---- wire forms; unknown fields are ignored, numbers may be strings ----

#[derive(Deserialize)]
struct ValidatorsWire {
    #[serde(deserialize_with = "lenient::u64_required")]
    elect_at: u64,
    #[serde(deserialize_with = "lenient::u64_required")]
    elect_close: u64,
    #[serde(deserialize_with = "lenient::u128_required")]
    min_stake: u128,
    #[serde(deserialize_with = "lenient::u128_required")]
    total_stake: u128,
    #[serde(default, deserialize_with = "lenient::list")]
    validators: Vec<ValidatorWire>,
}

#[derive(Deserialize)]
struct ValidatorWire {
    address: String,
    adnl_address: String,
    #[serde(deserialize_with = "lenient::u128_required")]
    stake: u128,
    #[serde(deserialize_with = "lenient::u32_required")]
    max_factor: u32,
}

impl From<ValidatorsWire> for TonapiValidators {
    fn from(wire: ValidatorsWire) -> Self {
        Self {
            elect_at: wire.elect_at,
            elect_close: wire.elect_close,
            min_stake: wire.min_stake,
            total_stake: wire.total_stake,
            validators: wire
                .validators
                .into_iter()
                .map(|validator| TonapiValidator {
                    address: raw_address(&validator.address),
                    adnl_address: crate::elections::normalize_key(&validator.adnl_address),
                    stake: validator.stake,
                    max_factor: validator.max_factor,
                })
                .collect(),
        }
    }
}

impl From<AccountWire> for TonapiAccount {
    fn from(wire: AccountWire) -> Self {
        Self {
            address: raw_address(&wire.address),
            balance: wire.balance,
            status: wire.status,
            last_activity: wire.last_activity.filter(|at| *at > 0),
        }
    }
}

/// `Accounts`: one entry per id asked, in the order asked (unknown ones `nonexist`).
#[derive(Deserialize)]
struct AccountsWire {
    accounts: Vec<AccountWire>,
}

#[derive(Deserialize)]
struct AccountWire {
    address: String,
    #[serde(deserialize_with = "lenient::u128_required")]
    balance: u128,
    status: String,
    #[serde(default, deserialize_with = "lenient::i64_optional")]
    last_activity: Option<i64>,
}

/// `{pools: PoolInfo[], implementations: {...}}`; `implementations` is not read.
#[derive(Deserialize)]
struct StakingPoolsWire {
    pools: Vec<PoolWire>,
}

/// `PoolInfo`. What a comparison needs (address, name, APY, minimum stake, total, verified)
/// is required; the nominator counts and cycle times default to 0 when absent or null.
#[derive(Deserialize)]
struct PoolWire {
    address: String,
    name: String,
    implementation: String,
    #[serde(deserialize_with = "f64_required")]
    apy: f64,
    #[serde(deserialize_with = "lenient::u128_required")]
    min_stake: u128,
    #[serde(deserialize_with = "lenient::u128_required")]
    total_amount: u128,
    #[serde(deserialize_with = "bool_required")]
    verified: bool,
    #[serde(default, deserialize_with = "lenient::u32_optional")]
    current_nominators: Option<u32>,
    #[serde(default, deserialize_with = "lenient::u32_optional")]
    max_nominators: Option<u32>,
    #[serde(default, deserialize_with = "lenient::i64_optional")]
    cycle_start: Option<i64>,
    #[serde(default, deserialize_with = "lenient::i64_optional")]
    cycle_end: Option<i64>,
}

fn f64_required<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    lenient::f64_optional(deserializer)?
        .filter(|value| value.is_finite())
        .ok_or_else(|| serde::de::Error::custom("expected a finite number, got null or inf"))
}

fn bool_required<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    lenient::bool_optional(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("expected a boolean, got null"))
}

impl From<PoolWire> for StakingPool {
    fn from(wire: PoolWire) -> Self {
        Self {
            address: raw_address(&wire.address),
            name: wire.name,
            implementation: wire.implementation,
            apy: wire.apy,
            min_stake_nanoton: wire.min_stake,
            total_amount_nanoton: wire.total_amount,
            verified: wire.verified,
            current_nominators: wire.current_nominators.unwrap_or(0),
            max_nominators: wire.max_nominators.unwrap_or(0),
            cycle_start: wire.cycle_start.unwrap_or(0),
            cycle_end: wire.cycle_end.unwrap_or(0),
        }
    }
}

/// `JettonsBalances`: each entry is read on its own, so one broken entry does not hide the
/// others.
#[derive(Deserialize)]
struct JettonsWire {
    balances: Vec<Value>,
}

#[derive(Deserialize)]
struct JettonBalanceWire {
    #[serde(deserialize_with = "lenient::u128_required")]
    balance: u128,
    #[serde(default)]
    price: Option<TokenRatesWire>,
    jetton: JettonPreviewWire,
}

#[derive(Deserialize)]
struct TokenRatesWire {
    #[serde(default)]
    prices: Option<std::collections::BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct JettonPreviewWire {
    address: String,
    #[serde(default)]
    name: Option<String>,
    symbol: String,
    /// TEP-64: 9 when the metadata leaves it out.
    #[serde(default, deserialize_with = "lenient::u32_optional")]
    decimals: Option<u32>,
    #[serde(default)]
    verification: Option<String>,
}

/// Most decimals a balance can be scaled by exactly (a `rust_decimal` holds 28 digits after
/// the point; more is a broken or hostile metadata).
const MAX_JETTON_DECIMALS: u32 = 28;

impl From<JettonsWire> for JettonBalances {
    fn from(wire: JettonsWire) -> Self {
        let mut result = JettonBalances::default();
        for (index, entry) in wire.balances.into_iter().enumerate() {
            let parsed: Result<JettonBalanceWire, _> = serde_path_to_error::deserialize(&entry);
            let entry = match parsed {
                Ok(entry) => entry,
                Err(error) => {
                    let path = error.path().to_string();
                    result.skipped.push(format!(
                        "balances[{index}]: at `{path}`: {}",
                        error.into_inner()
                    ));
                    continue;
                }
            };
            let symbol = entry.jetton.symbol.trim().to_owned();
            let decimals = entry.jetton.decimals.unwrap_or(9);
            if symbol.is_empty() {
                result
                    .skipped
                    .push(format!("balances[{index}]: the jetton has no symbol"));
                continue;
            }
            if decimals > MAX_JETTON_DECIMALS {
                result.skipped.push(format!(
                    "balances[{index}] ({symbol}): {decimals} decimals (at most {MAX_JETTON_DECIMALS} are taken)"
                ));
                continue;
            }
            let prices = entry
                .price
                .and_then(|price| price.prices)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(currency, value)| {
                    let value = match value {
                        Value::Number(number) => number.as_f64(),
                        Value::String(text) => text.trim().parse::<f64>().ok(),
                        _ => None,
                    }?;
                    (value.is_finite() && value >= 0.0)
                        .then(|| (currency.trim().to_uppercase(), value))
                })
                .collect();
            result.balances.push(JettonBalance {
                master: raw_address(&entry.jetton.address),
                name: entry.jetton.name.unwrap_or_default().trim().to_owned(),
                symbol,
                decimals,
                raw_balance: entry.balance,
                verification: entry
                    .jetton
                    .verification
                    .unwrap_or_else(|| "none".to_owned()),
                prices,
            });
        }
        result
    }
}

#[cfg(test)]
mod tests;

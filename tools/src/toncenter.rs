//! toncenter API v2 client (`getMasterchainInfo`, `getAddressInformation`,
//! `getWalletInformation`, `getTransactions`, and `sendBoc`, the one call that is not a read),
//! plus on-chain reads: config params and get-methods of the elector and nominator pools.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::http::{
    Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, backoff_delay, join_url,
};
use crate::secret::Secret;
use crate::ton::config::{ConfigParam, DecodeError, decode_config_param};
use crate::ton::elector::{self, ComplaintInfo, ELECTOR_ADDRESS, Election, PastElection};
use crate::ton::pool::{Nominator, PoolData, SingleNominatorRoles};
use crate::ton::stack::{TvmStack, TvmValue};

pub mod saved;
pub mod stack;

const SOURCE: &str = "toncenter";

/// The masterchain head as toncenter sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MasterchainInfo {
    pub last_seqno: u64,
    pub last_root_hash: String,
    pub init_seqno: u64,
}

/// One account's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AddressInformation {
    /// Toncenter sends nanotons as a decimal string; 1 TON = 10^9 nanotons.
    pub balance_nanoton: u128,
    /// "active", "uninitialized" or "frozen".
    pub state: String,
    /// `None` when the account has no transactions (toncenter sends lt "0").
    pub last_transaction_lt: Option<u64>,
    pub sync_utime: Option<i64>,
}

/// A wallet's state as `getWalletInformation` reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WalletInformation {
    /// Whether toncenter recognised a wallet contract at the address.
    pub wallet: bool,
    pub balance_nanoton: u128,
    /// "active", "uninitialized" or "frozen".
    pub account_state: String,
    /// `None` when the account is no (deployed) wallet.
    pub seqno: Option<u32>,
    /// e.g. "wallet v4 r2".
    pub wallet_type: Option<String>,
}

/// One transaction of `getTransactions`, with what confirming a transfer needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transaction {
    pub lt: u64,
    /// Standard base64, as toncenter sends it.
    pub hash: String,
    pub utime: i64,
    pub fee_nanoton: u128,
    pub in_msg: Option<TransactionMessage>,
    pub out_msgs: Vec<TransactionMessage>,
}

/// A message of a transaction. Addresses are as toncenter sends them (user-friendly);
/// an external message's source is empty.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransactionMessage {
    pub source: String,
    pub destination: String,
    pub value_nanoton: u128,
    /// Hash of the message body (standard base64), when toncenter reports it.
    pub body_hash: Option<String>,
    /// Hash of the whole message, when toncenter reports it (newer versions do).
    pub hash: Option<String>,
    /// The text comment, when the body is one (`msg.dataText`).
    pub comment: Option<String>,
}

/// Where `getTransactions` starts: the transaction with this lt and hash (inclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionCursor {
    pub lt: u64,
    pub hash: String,
}

/// `sendBoc` accepted the message into a liteserver's queue. That is not confirmation: the
/// wallet may still refuse it (poll transactions to know).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendResult {
    /// The message hash when the server returned one (`sendBocReturnHash`-style results).
    pub message_hash: Option<String>,
}

/// The phrase every provider's rejection of an external message is normalized to.
pub const MESSAGE_NOT_ACCEPTED: &str = "External message was not accepted";

pub struct ToncenterClient {
    core: HttpCore,
    base_url: String,
    /// Kept for the read-only POSTs (`runGetMethod`), which retry like GETs.
    retry: RetryPolicy,
}

impl ToncenterClient {
    /// `base_url` ends in `/api/v2`, e.g. `https://toncenter.com/api/v2`. Without a key
    /// toncenter allows 1 request per second; pass `requests_per_second` accordingly.
    pub fn new(
        base_url: &str,
        api_key: Option<Secret>,
        requests_per_second: f64,
        retry: RetryPolicy,
    ) -> Result<Self, SourceError> {
        join_url(SOURCE, base_url, "getMasterchainInfo")?;
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
            core: HttpCore::new(SOURCE, requests_per_second, retry.clone(), headers, api_key)?,
            base_url: base_url.to_owned(),
            retry,
        })
    }

    pub fn source(&self) -> &'static str {
        self.core.source()
    }

    pub async fn get_masterchain_info(&self) -> Result<Fetched<MasterchainInfo>, SourceError> {
        let url = join_url(SOURCE, &self.base_url, "getMasterchainInfo")?;
        self.core
            .get(&url, |answer| {
                let raw: RawMasterchainInfo = interpret_envelope(answer)?;
                Ok(MasterchainInfo {
                    last_seqno: raw.last.seqno,
                    last_root_hash: raw.last.root_hash,
                    init_seqno: raw.init.seqno,
                })
            })
            .await
    }

    /// `address` in any form toncenter accepts (user-friendly or raw `wc:hex`).
    pub async fn get_address_information(
        &self,
        address: &str,
    ) -> Result<Fetched<AddressInformation>, SourceError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} getAddressInformation: address is empty"),
            });
        }
        let mut url = join_url(SOURCE, &self.base_url, "getAddressInformation")?;
        url.query_pairs_mut().append_pair("address", address);
        self.core
            .get(&url, |answer| {
                let raw: RawAddressInformation = interpret_envelope(answer)?;
                Ok(AddressInformation {
                    balance_nanoton: raw.balance,
                    state: raw.state,
                    last_transaction_lt: raw
                        .last_transaction_id
                        .map(|id| id.lt)
                        .filter(|lt| *lt != 0),
                    sync_utime: raw.sync_utime,
                })
            })
            .await
    }
}

impl ToncenterClient {
    /// `getWalletInformation`.
    pub async fn get_wallet_information(
        &self,
        address: &str,
    ) -> Result<Fetched<WalletInformation>, SourceError> {
        let address = non_empty_address("getWalletInformation", address)?;
        let mut url = join_url(SOURCE, &self.base_url, "getWalletInformation")?;
        url.query_pairs_mut().append_pair("address", address);
        self.core
            .get(&url, |answer| {
                let raw: RawWalletInformation = interpret_envelope(answer)?;
                Ok(raw.into_information())
            })
            .await
    }

    /// `getTransactions`, newest first. `limit` is 1..=100; `from` continues a previous page
    /// (the transaction it names is included); `archival` asks for nodes with full history.
    /// Without `archival`, a liteserver that no longer holds the page ("lt not in db", a
    /// block it cannot load) is asked again once with `archival=true`.
    pub async fn get_transactions(
        &self,
        address: &str,
        limit: u32,
        from: Option<&TransactionCursor>,
        archival: bool,
    ) -> Result<Fetched<Vec<Transaction>>, SourceError> {
        match self
            .fetch_transactions(address, limit, from, archival)
            .await
        {
            Err(error) if !archival && needs_archival(&error) => {
                tracing::info!(source = SOURCE, error = %error, "transactions are gone from a regular liteserver; asking an archival one");
                self.fetch_transactions(address, limit, from, true).await
            }
            other => other,
        }
    }

    async fn fetch_transactions(
        &self,
        address: &str,
        limit: u32,
        from: Option<&TransactionCursor>,
        archival: bool,
    ) -> Result<Fetched<Vec<Transaction>>, SourceError> {
        let address = non_empty_address("getTransactions", address)?;
        if !(1..=100).contains(&limit) {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} getTransactions: limit must be 1..=100, got {limit}"),
            });
        }
        let mut url = join_url(SOURCE, &self.base_url, "getTransactions")?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("address", address)
                .append_pair("limit", &limit.to_string());
            if let Some(cursor) = from {
                query
                    .append_pair("lt", &cursor.lt.to_string())
                    .append_pair("hash", &cursor.hash);
            }
            if archival {
                query.append_pair("archival", "true");
            }
        }
        self.core
            .get(&url, |answer| {
                let raw: Vec<RawTransaction> = interpret_envelope(answer)?;
                Ok(raw
                    .into_iter()
                    .map(RawTransaction::into_transaction)
                    .collect())
            })
            .await
    }

    /// `POST estimateFee {"address", "body", "ignore_chksig": true}`: what the sending wallet
    /// pays for this message, in nanotons (source fees: import, storage, gas, forwarding).
    /// Read-only, but sent at most once like any POST here.
    pub async fn estimate_fee(
        &self,
        address: &str,
        body_base64: &str,
    ) -> Result<Fetched<FeeEstimate>, SourceError> {
        let address = non_empty_address("estimateFee", address)?;
        let url = join_url(SOURCE, &self.base_url, "estimateFee")?;
        let body = serde_json::json!({
            "address": address,
            "body": body_base64.trim(),
            "ignore_chksig": true,
        });
        self.core
            .post_json_once(&url, &body, |answer| {
                let fees: RawQueryFees = interpret_envelope(answer)?;
                Ok(fees.into_estimate())
            })
            .await
    }

    /// `POST sendBoc {"boc": ...}`: hands a signed external message to the network, once.
    ///
    /// Never resent after a connection was made: sending the same BOC twice is exactly what
    /// must not happen. A liteserver rejection (HTTP 500 / `LITE_SERVER_UNKNOWN`, or any
    /// "External message was not accepted") is [`SourceError::Upstream`], never transient,
    /// and its message starts with [`MESSAGE_NOT_ACCEPTED`]. [`SourceError::Connect`] means
    /// nothing was delivered; any other error means the message may have been.
    pub async fn send_boc(&self, boc_base64: &str) -> Result<Fetched<SendResult>, SourceError> {
        let boc = boc_base64.trim();
        if boc.is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} sendBoc: the BOC is empty"),
            });
        }
        let url = join_url(SOURCE, &self.base_url, "sendBoc")?;
        let body = serde_json::json!({ "boc": boc });
        self.core
            .post_json_once(&url, &body, |answer| {
                let status = answer.status;
                let origin = answer.origin.clone();
                match interpret_envelope::<serde_json::Value>(answer) {
                    Ok(result) => Ok(SendResult {
                        message_hash: result
                            .get("hash")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned),
                    }),
                    Err(error) => Err(send_boc_error(&origin, status, error)),
                }
            })
            .await
    }
}

/// On-chain reads: config params and get-methods.
impl ToncenterClient {
    /// `getConfigParam?config_id=param`, decoded: 15, 17, 32, 34, 36 typed, others raw, and
    /// [`ConfigParam::Absent`] when the chain does not have it.
    pub async fn get_config_param(&self, param: u32) -> Result<Fetched<ConfigParam>, SourceError> {
        let mut url = join_url(SOURCE, &self.base_url, "getConfigParam")?;
        url.query_pairs_mut()
            .append_pair("config_id", &param.to_string());
        self.core
            .get(&url, |answer| {
                let origin = answer.origin.clone();
                let raw: RawConfigInfo = interpret_envelope(answer)?;
                let bytes = raw.config.and_then(|cell| cell.bytes).unwrap_or_default();
                decode_config_param(param, &bytes).map_err(|error| decode_failed(&origin, error))
            })
            .await
    }

    /// `POST runGetMethod {"address", "method", "stack"}`: the result stack, parsed from
    /// toncenter's legacy encoding. A non-zero TVM exit code is [`SourceError::Upstream`]
    /// with the code. Read-only, so transient failures are retried.
    pub async fn run_get_method(
        &self,
        address: &str,
        method: &str,
        stack: &[TvmValue],
    ) -> Result<Fetched<TvmStack>, SourceError> {
        let address = non_empty_address("runGetMethod", address)?;
        if method.trim().is_empty() {
            return Err(SourceError::InvalidInput {
                detail: format!("{SOURCE} runGetMethod: method is empty"),
            });
        }
        let url = join_url(SOURCE, &self.base_url, "runGetMethod")?;
        let body = serde_json::json!({
            "address": address,
            "method": method,
            "stack": stack::encode_legacy_stack(stack),
        });
        let started = std::time::Instant::now();
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            let result = self
                .core
                .post_json_once(&url, &body, |answer| {
                    let origin = answer.origin.clone();
                    let raw: RawRunResult = interpret_envelope(answer)?;
                    if raw.exit_code != 0 {
                        return Err(SourceError::Upstream {
                            code: Some(raw.exit_code),
                            message: format!(
                                "{origin}: get-method `{method}` on {address} failed with TVM exit code {} ({})",
                                raw.exit_code,
                                exit_code_meaning(raw.exit_code)
                            ),
                        });
                    }
                    stack::parse_legacy_stack(method, &raw.stack)
                        .map_err(|error| decode_failed(&origin, error))
                })
                .await;
            match result {
                Ok(fetched) => {
                    return Ok(Fetched {
                        value: fetched.value,
                        attempts: attempts + fetched.attempts,
                        latency: started.elapsed(),
                    });
                }
                Err(error) => {
                    attempts += 1;
                    if attempts >= max_attempts || !error.is_transient() {
                        return Err(error);
                    }
                    let retry_after = match &error {
                        SourceError::RateLimited { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay =
                        backoff_delay(&self.retry, attempts, retry_after, rand::random::<f64>());
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn elector<T>(
        &self,
        method: &str,
        decode: fn(&TvmStack) -> Result<T, DecodeError>,
    ) -> Result<Fetched<T>, SourceError> {
        self.get_method_decoded(ELECTOR_ADDRESS, method, &[], decode)
            .await
    }

    /// Runs a get-method with `args` and decodes its result stack.
    async fn get_method_decoded<T>(
        &self,
        address: &str,
        method: &str,
        args: &[TvmValue],
        decode: fn(&TvmStack) -> Result<T, DecodeError>,
    ) -> Result<Fetched<T>, SourceError> {
        let fetched = self.run_get_method(address, method, args).await?;
        let value = decode(&fetched.value).map_err(|error| {
            decode_failed(&format!("{SOURCE} POST runGetMethod {method}"), error)
        })?;
        Ok(Fetched {
            value,
            attempts: fetched.attempts,
            latency: fetched.latency,
        })
    }

    /// The elector's open election id; `None` when none is open.
    pub async fn active_election_id(&self) -> Result<Fetched<Option<u64>>, SourceError> {
        self.elector("active_election_id", elector::active_election_id)
            .await
    }

    /// The election under way with every participant.
    pub async fn participant_list_extended(&self) -> Result<Fetched<Election>, SourceError> {
        self.elector(
            "participant_list_extended",
            elector::participant_list_extended,
        )
        .await
    }

    /// `(public key hex, stake nanotons)` of every participant of the open election.
    pub async fn participant_list(&self) -> Result<Fetched<Vec<(String, u128)>>, SourceError> {
        self.elector("participant_list", elector::participant_list)
            .await
    }

    /// Past elections whose stakes are still frozen, with bonuses and complaints.
    pub async fn past_elections(&self) -> Result<Fetched<Vec<PastElection>>, SourceError> {
        self.elector("past_elections", elector::past_elections)
            .await
    }

    /// The complaints filed in past election `election_id` (empty when none, or when the
    /// election is no longer in `past_elections`).
    pub async fn list_complaints(
        &self,
        election_id: u64,
    ) -> Result<Fetched<Vec<ComplaintInfo>>, SourceError> {
        self.get_method_decoded(
            ELECTOR_ADDRESS,
            "list_complaints",
            &[TvmValue::number(election_id)],
            elector::list_complaints,
        )
        .await
    }

    /// Nanotons the elector holds for `wallet` (returned stake plus bonuses), which a
    /// recover-stake message from that wallet withdraws; 0 when nothing is due. `wallet` in
    /// any address form; its 256-bit account id is what the elector keys credits by.
    pub async fn compute_returned_stake(&self, wallet: &str) -> Result<Fetched<u128>, SourceError> {
        let account = account_number("compute_returned_stake", wallet)?;
        self.get_method_decoded(
            ELECTOR_ADDRESS,
            "compute_returned_stake",
            &[account],
            elector::returned_stake,
        )
        .await
    }

    /// `get_pool_data` of a nominator pool at `pool`.
    pub async fn pool_data(&self, pool: &str) -> Result<Fetched<PoolData>, SourceError> {
        self.get_method_decoded(pool, "get_pool_data", &[], crate::ton::pool::pool_data)
            .await
    }

    /// `list_nominators` of a nominator pool at `pool`.
    pub async fn list_nominators(
        &self,
        pool: &str,
    ) -> Result<Fetched<Vec<Nominator>>, SourceError> {
        self.get_method_decoded(
            pool,
            "list_nominators",
            &[],
            crate::ton::pool::list_nominators,
        )
        .await
    }

    /// `get_roles` of a single nominator pool at `pool`: its owner and validator.
    pub async fn single_nominator_roles(
        &self,
        pool: &str,
    ) -> Result<Fetched<SingleNominatorRoles>, SourceError> {
        self.get_method_decoded(
            pool,
            "get_roles",
            &[],
            crate::ton::pool::single_nominator_roles,
        )
        .await
    }
}

/// The 256-bit account id of `address` as a get-method argument.
fn account_number(method: &str, address: &str) -> Result<TvmValue, SourceError> {
    let parsed = crate::ton::parse_address(address).map_err(|error| SourceError::InvalidInput {
        detail: format!("{SOURCE} {method}: {error}"),
    })?;
    let hex = parsed
        .raw
        .split_once(':')
        .map(|(_, hex)| hex)
        .unwrap_or_default();
    let account = num_bigint::BigUint::parse_bytes(hex.as_bytes(), 16).ok_or_else(|| {
        SourceError::InvalidInput {
            detail: format!("{SOURCE} {method}: address {address:?} has no account id"),
        }
    })?;
    Ok(TvmValue::Number(account.into()))
}

/// A well-formed answer whose on-chain content does not decode.
fn decode_failed(origin: &str, error: DecodeError) -> SourceError {
    SourceError::InvalidResponse {
        detail: format!("{origin}: {error}"),
    }
}

/// What common TVM exit codes of a get-method mean.
fn exit_code_meaning(code: i64) -> &'static str {
    match code {
        11 => "no such get-method, or the contract threw: check the method name and address",
        -13 | 13 => "out of gas",
        -14 => "out of gas",
        -256 => "the account is not active (no code to run)",
        2 | 3 => "stack underflow/overflow: wrong arguments",
        7 => "type check error: wrong argument types",
        _ => "the contract threw",
    }
}

#[derive(Deserialize)]
struct RawConfigCell {
    #[serde(default)]
    bytes: Option<String>,
}

#[derive(Deserialize)]
struct RawConfigInfo {
    #[serde(default)]
    config: Option<RawConfigCell>,
}

#[derive(Deserialize)]
struct RawRunResult {
    exit_code: i64,
    #[serde(default)]
    stack: serde_json::Value,
}

fn non_empty_address<'a>(method: &str, address: &'a str) -> Result<&'a str, SourceError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(SourceError::InvalidInput {
            detail: format!("{SOURCE} {method}: address is empty"),
        });
    }
    Ok(address)
}

/// A liteserver's answer that the history asked for is older than it keeps.
fn needs_archival(error: &SourceError) -> bool {
    let message = match error {
        SourceError::Upstream { message, .. }
        | SourceError::Unavailable { message, .. }
        | SourceError::Rejected { message, .. } => message.to_ascii_lowercase(),
        _ => return false,
    };
    [
        "not in db",
        "cannot load block",
        "block is not applied",
        "archival",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Turns a liteserver's refusal of an external message into a permanent
/// [`SourceError::Upstream`] whose text starts with [`MESSAGE_NOT_ACCEPTED`], whatever
/// status the provider used for it; other errors pass through.
fn send_boc_error(origin: &str, status: u16, error: SourceError) -> SourceError {
    let text = match &error {
        SourceError::Upstream { message, .. }
        | SourceError::Unavailable { message, .. }
        | SourceError::Rejected { message, .. } => message.clone(),
        _ => return error,
    };
    let rejected = text.contains("LITE_SERVER_UNKNOWN")
        || text.contains(MESSAGE_NOT_ACCEPTED)
        || text.contains("cannot apply external message");
    let transient =
        text.contains("LITE_SERVER_NETWORK") || text.to_ascii_lowercase().contains("timeout");
    if !rejected || transient {
        return error;
    }
    let detail = text
        .strip_prefix(&format!("{origin}: "))
        .unwrap_or(&text)
        .to_owned();
    SourceError::Upstream {
        code: Some(i64::from(status)),
        message: format!("{MESSAGE_NOT_ACCEPTED} ({origin}, HTTP {status}): {detail}"),
    }
}

/// `{"ok": bool, "result": .., "error"?: str, "code"?: int}`. On `ok:false` the live 429
/// puts the message in `result`, the documented form in `error`.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: serde_json::Value,
    error: Option<String>,
    code: Option<i64>,
}

fn interpret_envelope<T: DeserializeOwned>(answer: HttpAnswer) -> Result<T, SourceError> {
    let envelope = if answer.is_html() {
        None
    } else {
        serde_json::from_slice::<Envelope>(&answer.body).ok()
    };
    let Some(envelope) = envelope else {
        // No envelope: a proxy page, garbage or a cut-off body.
        if answer.status == 200 {
            answer.ensure_json()?;
            answer.parse_json::<Envelope>()?;
        }
        let message = format!(
            "{}: HTTP {} without a toncenter JSON envelope; body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        );
        return Err(classify(&answer, None, message));
    };
    if envelope.ok && answer.status == 200 {
        return serde_path_to_error::deserialize(envelope.result).map_err(|error| {
            SourceError::InvalidResponse {
                detail: format!(
                    "{}: unexpected `result` at `result.{}`: {}",
                    answer.origin,
                    error.path(),
                    error.inner()
                ),
            }
        });
    }
    let text = envelope
        .error
        .or_else(|| envelope.result.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("no message; body starts with {:?}", answer.snippet()));
    let message = format!("{}: {text}", answer.origin);
    Err(classify(&answer, envelope.code, message))
}

fn classify(answer: &HttpAnswer, code: Option<i64>, message: String) -> SourceError {
    let status = if answer.status == 200 {
        // ok:false inside a 200: trust the envelope's code.
        code.and_then(|code| u16::try_from(code).ok())
            .unwrap_or(500)
    } else {
        answer.status
    };
    let lower = message.to_ascii_lowercase();
    let liteserver = message.contains("LITE_SERVER_");
    let transient_liteserver = lower.contains("timeout") || message.contains("LITE_SERVER_NETWORK");
    match status {
        429 => SourceError::RateLimited {
            retry_after: answer.retry_after,
            message,
        },
        416 => SourceError::InvalidInput {
            detail: format!("{message} (pass a user-friendly or raw wc:hex address)"),
        },
        // Liteserver timeouts and network hiccups clear on their own; retry them.
        504 => SourceError::Unavailable { status, message },
        500 | 542 if liteserver && !transient_liteserver => SourceError::Upstream {
            code: code.or(Some(i64::from(status))),
            message,
        },
        500..=599 => SourceError::Unavailable { status, message },
        401 | 403 => SourceError::Rejected {
            status,
            message: format!("{message} (check the toncenter api_key and network)"),
        },
        400..=499 => SourceError::Rejected { status, message },
        _ => SourceError::InvalidResponse {
            detail: format!("{message} (unexpected HTTP status {status})"),
        },
    }
}

#[derive(Deserialize)]
struct RawBlockId {
    seqno: u64,
    root_hash: String,
}

#[derive(Deserialize)]
struct RawMasterchainInfo {
    last: RawBlockId,
    init: RawBlockId,
}

#[derive(Deserialize)]
struct RawTransactionId {
    #[serde(deserialize_with = "u64_from_string_or_number")]
    lt: u64,
}

#[derive(Deserialize)]
struct RawAddressInformation {
    #[serde(deserialize_with = "u128_from_string_or_number")]
    balance: u128,
    state: String,
    last_transaction_id: Option<RawTransactionId>,
    sync_utime: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct RawWalletInformation {
    #[serde(default)]
    wallet: bool,
    #[serde(deserialize_with = "u128_from_string_or_number")]
    balance: u128,
    account_state: String,
    #[serde(default)]
    seqno: Option<u32>,
    #[serde(default)]
    wallet_type: Option<String>,
}

impl RawWalletInformation {
    pub(crate) fn into_information(self) -> WalletInformation {
        WalletInformation {
            wallet: self.wallet,
            balance_nanoton: self.balance,
            account_state: self.account_state,
            seqno: self.seqno,
            wallet_type: self.wallet_type,
        }
    }
}

#[derive(Deserialize)]
struct RawFullTransactionId {
    #[serde(deserialize_with = "u64_from_string_or_number")]
    lt: u64,
    hash: String,
}

#[derive(Deserialize)]
struct RawTransaction {
    transaction_id: RawFullTransactionId,
    #[serde(default)]
    utime: i64,
    #[serde(default, deserialize_with = "optional_u128")]
    fee: Option<u128>,
    #[serde(default)]
    in_msg: Option<RawMessage>,
    #[serde(default)]
    out_msgs: Vec<RawMessage>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
    #[serde(default, deserialize_with = "optional_u128")]
    value: Option<u128>,
    #[serde(default)]
    body_hash: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    msg_data: Option<RawMessageData>,
}

#[derive(Deserialize)]
struct RawMessageData {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl RawTransaction {
    fn into_transaction(self) -> Transaction {
        Transaction {
            lt: self.transaction_id.lt,
            hash: self.transaction_id.hash,
            utime: self.utime,
            fee_nanoton: self.fee.unwrap_or(0),
            in_msg: self.in_msg.map(RawMessage::into_message),
            out_msgs: self
                .out_msgs
                .into_iter()
                .map(RawMessage::into_message)
                .collect(),
        }
    }
}

impl RawMessage {
    fn into_message(self) -> TransactionMessage {
        use base64::Engine;
        let comment = self
            .msg_data
            .filter(|data| data.kind == "msg.dataText")
            .and_then(|data| data.text)
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        TransactionMessage {
            source: self.source,
            destination: self.destination,
            value_nanoton: self.value.unwrap_or(0),
            body_hash: self.body_hash.filter(|hash| !hash.is_empty()),
            hash: self.hash.filter(|hash| !hash.is_empty()),
            comment,
        }
    }
}

fn optional_u128<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u128>, D::Error> {
    u128_from_string_or_number(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(u64),
}

fn u128_from_string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<u128, D::Error> {
    match StringOrNumber::deserialize(deserializer)? {
        StringOrNumber::Number(number) => Ok(u128::from(number)),
        StringOrNumber::String(text) => text.parse::<u128>().map_err(|error| {
            serde::de::Error::custom(format!(
                "expected a decimal nanoton amount, got {text:?}: {error}"
            ))
        }),
    }
}

fn u64_from_string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match StringOrNumber::deserialize(deserializer)? {
        StringOrNumber::Number(number) => Ok(number),
        StringOrNumber::String(text) => text.parse::<u64>().map_err(|error| {
            serde::de::Error::custom(format!("expected a decimal integer, got {text:?}: {error}"))
        }),
    }
}

#[cfg(test)]
mod tests;

/// Fees the sending wallet pays for one message, in nanotons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEstimate {
    pub in_fwd_fee: u64,
    pub storage_fee: u64,
    pub gas_fee: u64,
    pub fwd_fee: u64,
}

impl FeeEstimate {
    pub fn total(&self) -> u64 {
        self.in_fwd_fee
            .saturating_add(self.storage_fee)
            .saturating_add(self.gas_fee)
            .saturating_add(self.fwd_fee)
    }
}

#[derive(Deserialize)]
struct RawFees {
    #[serde(default)]
    in_fwd_fee: u64,
    #[serde(default)]
    storage_fee: u64,
    #[serde(default)]
    gas_fee: u64,
    #[serde(default)]
    fwd_fee: u64,
}

#[derive(Deserialize)]
struct RawQueryFees {
    source_fees: RawFees,
}

impl RawQueryFees {
    fn into_estimate(self) -> FeeEstimate {
        FeeEstimate {
            in_fwd_fee: self.source_fees.in_fwd_fee,
            storage_fee: self.source_fees.storage_fee,
            gas_fee: self.source_fees.gas_fee,
            fwd_fee: self.source_fees.fwd_fee,
        }
    }
}

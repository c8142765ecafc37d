//! toncenter API v2 client (`getMasterchainInfo`, `getAddressInformation`).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, join_url};
use crate::secret::Secret;

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

pub struct ToncenterClient {
    core: HttpCore,
    base_url: String,
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
            core: HttpCore::new(SOURCE, requests_per_second, retry, headers, api_key)?,
            base_url: base_url.to_owned(),
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

//! `ton_transfer`: sends TON from the operator's wallet (v4r2 or v5r1, key from a mnemonic
//! file) to an address, once, and confirms it on chain.
//!
//! The message is signed and handed to toncenter's `sendBoc` exactly once; it is never
//! resent (a second send of the same seqno is refused by the wallet at best). Success is
//! never taken from `sendBoc`'s `ok`: the executor polls the wallet's transactions until the
//! out message shows up.
//!
//! The on-chain comment ends with `[<idempotency key>]`, so the transfer can be recognised
//! later from the request alone: that is how [`Executor::reconcile`](super::Executor) settles
//! an execution a crash interrupted. The key is the gate's `cc-<proposal id>`: it is public
//! on chain, which is why it carries no secret.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tools::http::{RetryPolicy, SourceError};
use tools::ton::{
    ParsedAddress, SignedTransfer, TransferRequest, WalletKind, WalletSigner, comment_body_hash,
    parse_address,
};
use tools::toncenter::{ToncenterClient, Transaction, TransactionCursor};
use tracing::warn;

use super::{
    ExecutionOutcome, ExecutionRequest, ExecutorError, OutcomeStatus, TypedExecutor,
    parse_parameters,
};

/// Longest comment a proposal may carry, in characters.
pub const MAX_COMMENT_CHARS: usize = 120;
/// Transactions one `getTransactions` page asks for.
const PAGE_SIZE: u32 = 50;
/// How far back reconcile looks for the transfer before it gives up telling.
const RECONCILE_SCAN_LIMIT: usize = 500;

fn default_base_url() -> String {
    "https://toncenter.com/api/v2".to_owned()
}
fn default_requests_per_second() -> f64 {
    1.0
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}

/// `[executors.ton_transfer]`. Absent: the kind does not exist.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TonTransferExecutorConfig {
    /// `"v4r2"` or `"v5r1"`: the wallet contract the mnemonic controls.
    pub wallet_version: WalletKind,
    /// File holding the 24 words; read when the registry is built, never logged.
    pub mnemonic_file: PathBuf,
    /// toncenter API v2, ending in `/api/v2`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: f64,
    /// How long to wait for the transfer to show on chain. Also the message's lifetime:
    /// the wallet refuses it after that, so a transfer not seen by then will never happen.
    #[serde(default = "default_confirm_timeout", with = "agents::duration")]
    pub confirm_timeout: Duration,
    #[serde(default = "default_poll_interval", with = "agents::duration")]
    pub poll_interval: Duration,
    /// Hard cap per transfer; a proposal above it is refused.
    pub max_amount_nanoton: u64,
    /// Off by default: approved transfers are signed and described (BOC hash, amount,
    /// destination) but not sent. Set `send = true` once the dry runs look right.
    #[serde(default)]
    pub send: bool,
}

/// Parameters of a `ton_transfer` operation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TonTransferParams {
    /// Recipient: raw (`0:<64 hex>`, `-1:<64 hex>`) or user-friendly (48 characters).
    pub destination: String,
    /// Amount in nanotons (1 TON = 1 000 000 000); more than 0, at most the configured cap.
    pub amount_nanoton: u64,
    /// Text shown to the recipient, at most 120 characters; the idempotency key is appended.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Signs with the configured wallet and sends through toncenter.
pub struct TonTransferExecutor {
    signer: WalletSigner,
    wallet: ParsedAddress,
    client: ToncenterClient,
    confirm_timeout: Duration,
    poll_interval: Duration,
    max_amount_nanoton: u64,
    send: bool,
}

/// What identifies the transfer on chain, derived from the request alone.
struct Expected {
    destination_raw: String,
    amount_nanoton: u64,
    /// The full on-chain comment and its body hash.
    comment: String,
    body_hash: String,
    /// The external message's hash, when this process sent it.
    message_hash: Option<String>,
}

/// A matching transaction, for the outcome.
struct Found {
    lt: u64,
    hash: String,
    utime: i64,
}

impl TonTransferExecutor {
    /// Builds from `[executors.ton_transfer]`, reading the mnemonic file and adding
    /// `(key path, message)` for every problem. `None` when any problem was found.
    pub fn new(
        config: &TonTransferExecutorConfig,
        problems: &mut Vec<(String, String)>,
    ) -> Option<Self> {
        let at = |key: &str| format!("executors.ton_transfer.{key}");
        let before = problems.len();
        let signer = match std::fs::read_to_string(&config.mnemonic_file) {
            Ok(words) => match WalletSigner::from_mnemonic(&words, config.wallet_version) {
                Ok(signer) => Some(signer),
                Err(error) => {
                    problems.push((
                        at("mnemonic_file"),
                        format!(
                            "{}: {error}; the file must hold the wallet's 24 words",
                            config.mnemonic_file.display()
                        ),
                    ));
                    None
                }
            },
            Err(error) => {
                problems.push((
                    at("mnemonic_file"),
                    format!(
                        "cannot read {}: {error}; create it (mode 0600) with the wallet's 24 words",
                        config.mnemonic_file.display()
                    ),
                ));
                None
            }
        };
        // It is also the message's lifetime on chain (`valid_until` has whole seconds).
        if config.confirm_timeout < Duration::from_secs(2) {
            problems.push((
                at("confirm_timeout"),
                "must be at least 2s: it is also how long the signed message stays valid on chain"
                    .to_owned(),
            ));
        }
        if config.poll_interval.is_zero() {
            problems.push((at("poll_interval"), "must be longer than 0s".to_owned()));
        }
        if config.max_amount_nanoton == 0 {
            problems.push((
                at("max_amount_nanoton"),
                "must be more than 0 (it is the largest transfer allowed, in nanotons)".to_owned(),
            ));
        }
        let retry = RetryPolicy {
            max_attempts: 3,
            timeout: Duration::from_secs(10)
                .min(config.confirm_timeout.max(Duration::from_secs(1))),
            ..RetryPolicy::default()
        };
        let client =
            match ToncenterClient::new(&config.base_url, None, config.requests_per_second, retry) {
                Ok(client) => Some(client),
                Err(error) => {
                    let key = if error.to_string().contains("requests_per_second") {
                        "requests_per_second"
                    } else {
                        "base_url"
                    };
                    problems.push((at(key), error.to_string()));
                    None
                }
            };
        if problems.len() != before {
            return None;
        }
        let (signer, client) = (signer?, client?);
        Some(Self {
            wallet: signer.address(),
            signer,
            client,
            confirm_timeout: config.confirm_timeout,
            poll_interval: config.poll_interval,
            max_amount_nanoton: config.max_amount_nanoton,
            send: config.send,
        })
    }

    /// The wallet transfers leave from.
    pub fn wallet_address(&self) -> &ParsedAddress {
        &self.wallet
    }

    fn invalid(detail: String) -> ExecutorError {
        ExecutorError::InvalidParameters {
            kind: <Self as TypedExecutor>::KIND.to_owned(),
            detail,
        }
    }

    fn expected(
        &self,
        request: &ExecutionRequest,
        params: &TonTransferParams,
    ) -> Result<Expected, String> {
        let destination = parse_address(&params.destination).map_err(|error| error.to_string())?;
        let comment = on_chain_comment(params.comment.as_deref(), &request.idempotency_key);
        let body_hash = comment_body_hash(Some(&comment)).map_err(|error| error.to_string())?;
        Ok(Expected {
            destination_raw: destination.raw,
            amount_nanoton: params.amount_nanoton,
            comment,
            body_hash,
            message_hash: None,
        })
    }

    /// Reads the seqno and signs a message valid for `confirm_timeout`.
    async fn sign(
        &self,
        params: &TonTransferParams,
        comment: &str,
    ) -> Result<SignedTransfer, String> {
        let information = self
            .client
            .get_wallet_information(&self.wallet.friendly)
            .await
            .map_err(|error| format!("cannot read the wallet's seqno: {error}"))?
            .value;
        let deployed = information.account_state == "active";
        let seqno = match (deployed, information.seqno) {
            (true, Some(seqno)) => seqno,
            (true, None) => {
                return Err(format!(
                    "{} is active but toncenter reports no seqno (wallet_type {:?}); is wallet_version right?",
                    self.wallet.friendly, information.wallet_type
                ));
            }
            (false, _) => 0,
        };
        let valid_until = Utc::now()
            .timestamp()
            .saturating_add(i64::try_from(self.confirm_timeout.as_secs()).unwrap_or(i64::MAX));
        self.signer
            .sign_transfer(&TransferRequest {
                destination: &params.destination,
                amount_nanoton: params.amount_nanoton,
                comment: Some(comment),
                seqno,
                valid_until: u32::try_from(valid_until).unwrap_or(u32::MAX),
                with_state_init: !deployed,
            })
            .map_err(|error| error.to_string())
    }

    /// Looks through the newest `limit` transactions of the wallet. `Ok((found, complete))`:
    /// `complete` says the whole history was seen.
    async fn find(
        &self,
        expected: &Expected,
        limit: usize,
    ) -> Result<(Option<Found>, bool), SourceError> {
        let mut cursor: Option<TransactionCursor> = None;
        let mut seen = 0;
        loop {
            let page = self
                .client
                .get_transactions(&self.wallet.friendly, PAGE_SIZE, cursor.as_ref(), false)
                .await?
                .value;
            // A page after the first starts with the cursor's transaction again.
            let fresh: Vec<&Transaction> = page
                .iter()
                .filter(|tx| cursor.as_ref().is_none_or(|c| tx.lt < c.lt))
                .collect();
            if let Some(tx) = fresh.iter().find(|tx| matches(tx, expected)) {
                return Ok((
                    Some(Found {
                        lt: tx.lt,
                        hash: tx.hash.clone(),
                        utime: tx.utime,
                    }),
                    false,
                ));
            }
            seen += fresh.len();
            let complete = page.len() < PAGE_SIZE as usize || fresh.is_empty();
            if complete || seen >= limit {
                return Ok((None, complete));
            }
            cursor = page.last().map(|tx| TransactionCursor {
                lt: tx.lt,
                hash: tx.hash.clone(),
            });
        }
    }

    fn found_outcome(&self, expected: &Expected, found: &Found, how: &str) -> ExecutionOutcome {
        ExecutionOutcome::new(
            OutcomeStatus::Succeeded,
            format!(
                "sent {} to {} ({how}; transaction lt {})",
                format_ton(expected.amount_nanoton),
                expected.destination_raw,
                found.lt
            ),
            serde_json::json!({
                "wallet": self.wallet.friendly,
                "destination": expected.destination_raw,
                "amount_nanoton": expected.amount_nanoton,
                "comment": expected.comment,
                "transaction": { "lt": found.lt, "hash": found.hash, "utime": found.utime },
                "message_hash": expected.message_hash,
            }),
            false,
        )
    }

    /// Polls until the transfer shows up or `confirm_timeout` (plus one poll) passed.
    async fn confirm(&self, expected: &Expected) -> Option<Found> {
        let deadline = tokio::time::Instant::now() + self.confirm_timeout + self.poll_interval;
        loop {
            tokio::time::sleep(self.poll_interval).await;
            match self.find(expected, PAGE_SIZE as usize).await {
                Ok((Some(found), _)) => return Some(found),
                Ok((None, _)) => {}
                Err(error) => {
                    warn!(kind = <Self as TypedExecutor>::KIND, %error, "polling for the transfer failed; polling on");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }
}

/// The comment as it goes on chain: the proposal's text, then the idempotency key.
fn on_chain_comment(comment: Option<&str>, idempotency_key: &str) -> String {
    match comment.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => format!("{text} [{idempotency_key}]"),
        None => format!("[{idempotency_key}]"),
    }
}

/// The wallet's transaction that carries our message: by external message hash when
/// toncenter reports it, otherwise by an out message with our destination, amount and
/// comment (or its body hash).
fn matches(tx: &Transaction, expected: &Expected) -> bool {
    if let (Some(ours), Some(theirs)) = (
        &expected.message_hash,
        tx.in_msg.as_ref().and_then(|m| m.hash.as_ref()),
    ) && ours == theirs
    {
        return true;
    }
    tx.out_msgs.iter().any(|message| {
        let to_destination = parse_address(&message.destination)
            .is_ok_and(|parsed| parsed.raw == expected.destination_raw);
        let same_body = message.body_hash.as_deref() == Some(expected.body_hash.as_str())
            || message.comment.as_deref() == Some(expected.comment.as_str());
        to_destination && message.value_nanoton == u128::from(expected.amount_nanoton) && same_body
    })
}

fn format_ton(nanoton: u64) -> String {
    format!(
        "{}.{:09} TON",
        nanoton / 1_000_000_000,
        nanoton % 1_000_000_000
    )
}

fn outcome(status: OutcomeStatus, summary: String, details: serde_json::Value) -> ExecutionOutcome {
    ExecutionOutcome::new(status, summary, details, false)
}

impl TypedExecutor for TonTransferExecutor {
    const KIND: &'static str = "ton_transfer";
    type Params = TonTransferParams;

    fn check(&self, params: &TonTransferParams) -> Result<(), ExecutorError> {
        parse_address(&params.destination)
            .map_err(|error| Self::invalid(format!("destination: {error}")))?;
        if params.amount_nanoton == 0 {
            return Err(Self::invalid(
                "amount_nanoton: must be more than 0 (1 TON = 1000000000)".to_owned(),
            ));
        }
        if params.amount_nanoton > self.max_amount_nanoton {
            return Err(ExecutorError::NotAllowed {
                kind: Self::KIND.to_owned(),
                detail: format!(
                    "amount_nanoton {} ({}) is above the cap of {} ({}) set by executors.ton_transfer.max_amount_nanoton",
                    params.amount_nanoton,
                    format_ton(params.amount_nanoton),
                    self.max_amount_nanoton,
                    format_ton(self.max_amount_nanoton)
                ),
            });
        }
        if let Some(comment) = &params.comment {
            let chars = comment.chars().count();
            if chars > MAX_COMMENT_CHARS {
                return Err(Self::invalid(format!(
                    "comment: {chars} characters; at most {MAX_COMMENT_CHARS} are allowed"
                )));
            }
        }
        Ok(())
    }

    async fn reconcile_typed(&self, request: &ExecutionRequest) -> ExecutionOutcome {
        self.reconcile_request(request).await
    }

    async fn run(&self, request: &ExecutionRequest, params: TonTransferParams) -> ExecutionOutcome {
        // Dry-run by default: nothing leaves until the operator sets `send = true`.
        let dry_run = request.dry_run || !self.send;
        let mut expected = match self.expected(request, &params) {
            Ok(expected) => expected,
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    format!("not sent: {error}"),
                    serde_json::json!({ "error": error }),
                    dry_run,
                );
            }
        };
        let signed = match self.sign(&params, &expected.comment).await {
            Ok(signed) => signed,
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    format!("not sent: {error}"),
                    serde_json::json!({ "wallet": self.wallet.friendly, "error": error }),
                    dry_run,
                );
            }
        };
        expected.message_hash = Some(signed.message_hash.clone());
        let fee = match self
            .client
            .estimate_fee(&self.wallet.friendly, &signed.body_base64)
            .await
        {
            Ok(fetched) => serde_json::json!(fetched.value.total()),
            Err(error) => serde_json::json!(format!("unknown ({error})")),
        };
        let fee_text = match fee.as_u64() {
            Some(total) => format!("fee about {}", format_ton(total)),
            None => "fee unknown".to_owned(),
        };
        let details = serde_json::json!({
            "wallet": self.wallet.friendly,
            "wallet_version": self.signer.kind().as_str(),
            "destination": signed.destination.raw,
            "amount_nanoton": params.amount_nanoton,
            "comment": expected.comment,
            "seqno": signed.seqno,
            "valid_until": signed.valid_until,
            "message_hash": signed.message_hash,
            // toncenter's estimateFee for the signed body: what the wallet pays on top of the
            // amount (nanotons), or why it is unknown.
            "estimated_fee": fee,
        });
        if dry_run {
            return ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!(
                    "would send {} from {} to {} (message {}, {fee_text}){}",
                    format_ton(params.amount_nanoton),
                    self.wallet.friendly,
                    signed.destination.raw,
                    signed.message_hash,
                    if self.send || request.dry_run {
                        ""
                    } else {
                        "; dry-run: set executors.ton_transfer.send = true to send"
                    }
                ),
                details,
                true,
            );
        }
        match self.client.send_boc(&signed.boc_base64).await {
            Ok(_) => {}
            Err(SourceError::Upstream { message, .. }) => {
                return outcome(
                    OutcomeStatus::Failed,
                    format!("rejected by the network, not sent: {message}"),
                    with_error(details, &message),
                );
            }
            Err(
                error @ (SourceError::Connect { .. }
                | SourceError::RateLimited { .. }
                | SourceError::Rejected { .. }
                | SourceError::InvalidInput { .. }),
            ) => {
                // No connection, or refused before it reached a liteserver.
                return outcome(
                    OutcomeStatus::Failed,
                    format!("not sent: {error}"),
                    with_error(details, &error.to_string()),
                );
            }
            Err(error) => {
                return outcome(
                    OutcomeStatus::Unknown,
                    format!(
                        "sent, but toncenter did not answer ({error}); it may still land until valid_until {}; reconcile or check the wallet",
                        signed.valid_until
                    ),
                    with_error(details, &error.to_string()),
                );
            }
        }
        match self.confirm(&expected).await {
            Some(found) => self.found_outcome(&expected, &found, "confirmed on chain"),
            None => outcome(
                OutcomeStatus::Unknown,
                format!(
                    "sent, but not seen on chain within {}; check the wallet {}",
                    agents::duration::format(self.confirm_timeout),
                    self.wallet.friendly
                ),
                details,
            ),
        }
    }
}

fn with_error(mut details: serde_json::Value, error: &str) -> serde_json::Value {
    details["error"] = serde_json::Value::String(error.to_owned());
    details
}

impl TonTransferExecutor {
    /// After a crash: finds the transfer on chain by its comment. Not found once any message
    /// sent before the crash has expired, with the whole history seen: Failed (definitely not
    /// sent). Otherwise Unknown.
    async fn reconcile_request(&self, request: &ExecutionRequest) -> ExecutionOutcome {
        let unknown =
            |summary: String| outcome(OutcomeStatus::Unknown, summary, serde_json::Value::Null);
        let params: TonTransferParams = match parse_parameters(Self::KIND, &request.parameters) {
            Ok(params) => params,
            Err(error) => return unknown(format!("cannot reconcile: {error}")),
        };
        let expected = match self.expected(request, &params) {
            Ok(expected) => expected,
            Err(error) => return unknown(format!("cannot reconcile: {error}")),
        };
        // A message sent before this call is valid for at most confirm_timeout: once that
        // passed (plus a poll for the chain's clock), it has landed or never will.
        let deadline = tokio::time::Instant::now() + self.confirm_timeout + self.poll_interval;
        let mut complete;
        loop {
            match self.find(&expected, RECONCILE_SCAN_LIMIT).await {
                Ok((Some(found), _)) => {
                    return self.found_outcome(&expected, &found, "found on chain after a restart");
                }
                Ok((None, whole_history)) => complete = whole_history,
                Err(error) => {
                    warn!(kind = Self::KIND, %error, "reconcile: reading transactions failed");
                    complete = false;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.poll_interval).await;
        }
        let details = serde_json::json!({
            "wallet": self.wallet.friendly,
            "destination": expected.destination_raw,
            "amount_nanoton": expected.amount_nanoton,
            "comment": expected.comment,
        });
        if complete {
            outcome(
                OutcomeStatus::Failed,
                format!(
                    "not sent: no transfer with comment {:?} in the wallet's history, and any message sent before the restart has expired",
                    expected.comment
                ),
                details,
            )
        } else {
            outcome(
                OutcomeStatus::Unknown,
                format!(
                    "not found in the wallet's last {RECONCILE_SCAN_LIMIT} transactions (or toncenter failed); check {} for comment {:?}",
                    self.wallet.friendly, expected.comment
                ),
                details,
            )
        }
    }
}

#[cfg(test)]
mod tests;

//! TON wallets: addresses, and transfers built and signed from a 24-word mnemonic
//! (wallet v4r2 or v5r1), plus the reverse, reading such a transfer back out of its BOC (the
//! sim uses it to apply what a client sent).
//!
//! The only module that names `tonlib-core`; everything it hands out is plain strings and
//! numbers. A [`WalletSigner`] holds the private key: it never prints it (its `Debug` shows the
//! address only) and never writes it anywhere.

use std::fmt;
use std::str::FromStr;

pub mod config;
pub mod elector;
pub mod pool;
pub mod stack;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use tonlib_core::TonAddress;
use tonlib_core::cell::{ArcCell, BagOfCells, Cell, CellBuilder};
use tonlib_core::tlb_types::block::coins::{CurrencyCollection, Grams};
use tonlib_core::tlb_types::block::message::{CommonMsgInfo, IntMsgInfo, Message};
use tonlib_core::tlb_types::block::msg_address::MsgAddress;
use tonlib_core::tlb_types::tlb::TLB;
use tonlib_core::wallet::error::MnemonicError;
use tonlib_core::wallet::mnemonic::Mnemonic;
use tonlib_core::wallet::ton_wallet::TonWallet;
use tonlib_core::wallet::versioned::v4::WalletExtMsgBodyV4;
use tonlib_core::wallet::versioned::v5::WalletExtMsgBodyV5;
use tonlib_core::wallet::wallet_version::WalletVersion;

/// Op code of a text comment in an internal message body.
const TEXT_COMMENT_OP: u32 = 0;
/// Bytes of text in the first cell of a comment (1023 bits less the 32-bit op) and in
/// each following cell of the snake chain.
const FIRST_CELL_TEXT_BYTES: usize = 123;
const NEXT_CELL_TEXT_BYTES: usize = 127;

/// What went wrong building, signing or reading a TON message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TonError {
    /// The mnemonic is not 24 words of the TON word list with a valid checksum. The words
    /// themselves are never quoted.
    #[error("invalid mnemonic: {detail}")]
    InvalidMnemonic { detail: String },
    #[error("invalid TON address {address:?}: {detail}")]
    InvalidAddress { address: String, detail: String },
    /// The BOC is not base64 or not a bag of cells.
    #[error("not a valid bag of cells: {detail}")]
    InvalidBoc { detail: String },
    /// A bag of cells, but not an external message to a v4/v5 wallet with one transfer.
    #[error("not a wallet transfer: {detail}")]
    NotATransfer { detail: String },
    #[error("cannot build the message: {detail}")]
    Build { detail: String },
}

fn build_error(error: impl fmt::Display) -> TonError {
    TonError::Build {
        detail: error.to_string(),
    }
}

/// The wallet contracts this crate signs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletKind {
    V4r2,
    V5r1,
}

impl WalletKind {
    fn version(self) -> WalletVersion {
        match self {
            Self::V4r2 => WalletVersion::V4R2,
            Self::V5r1 => WalletVersion::V5R1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4r2 => "v4r2",
            Self::V5r1 => "v5r1",
        }
    }
}

/// An address in the forms toncenter and people use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParsedAddress {
    /// `wc:hex`, lower-case: the form to compare addresses by.
    pub raw: String,
    /// User-friendly, URL-safe base64, bounceable, mainnet.
    pub friendly: String,
    /// Whether a transfer to it should bounce back if the account does not exist: false only
    /// for a user-friendly non-bounceable address (`UQ...`).
    pub bounceable: bool,
}

fn describe(address: &TonAddress, bounceable: bool) -> ParsedAddress {
    ParsedAddress {
        raw: raw_form(address),
        friendly: address.to_base64_url(),
        bounceable,
    }
}

fn raw_form(address: &TonAddress) -> String {
    format!("{}:{}", address.workchain, address.hash_part.to_hex())
}

/// Parses a raw (`0:hex`, `-1:hex`) or user-friendly (48 base64 characters, either alphabet)
/// address.
pub fn parse_address(text: &str) -> Result<ParsedAddress, TonError> {
    let text = text.trim();
    let invalid = |detail: String| TonError::InvalidAddress {
        address: text.to_owned(),
        detail,
    };
    if text.len() == 48 {
        let url_safe = text.contains('-') || text.contains('_');
        let parsed = if url_safe {
            TonAddress::from_base64_url_flags(text)
        } else {
            TonAddress::from_base64_std_flags(text)
        };
        let (address, non_bounceable, _testnet) = parsed.map_err(|error| {
            invalid(format!(
                "not a user-friendly address ({error}); check for a typo or a truncated copy"
            ))
        })?;
        return Ok(describe(&address, !non_bounceable));
    }
    let address = TonAddress::from_str(text).map_err(|error| {
        invalid(format!(
            "expected a raw address (0:<64 hex>) or a 48-character user-friendly one: {error}"
        ))
    })?;
    if !matches!(address.workchain, 0 | -1) {
        return Err(invalid(format!(
            "workchain {} does not exist; use 0 (basechain) or -1 (masterchain)",
            address.workchain
        )));
    }
    Ok(describe(&address, true))
}

/// Standard base64 (with padding), the form toncenter uses for hashes.
fn hash_base64(cell: &Cell) -> String {
    BASE64.encode(cell.cell_hash().as_slice())
}

/// The body of an internal message carrying `text` as a comment: op 0, then the UTF-8
/// bytes in a snake chain of cells.
fn comment_body(text: &str) -> Result<Cell, TonError> {
    let bytes = text.as_bytes();
    let (first, rest) = bytes.split_at(bytes.len().min(FIRST_CELL_TEXT_BYTES));
    // Build the chain from its tail so each cell can reference the next.
    let mut tail: Option<ArcCell> = None;
    let chunks: Vec<&[u8]> = rest.chunks(NEXT_CELL_TEXT_BYTES).collect();
    for chunk in chunks.into_iter().rev() {
        let mut builder = CellBuilder::new();
        builder.store_slice(chunk).map_err(build_error)?;
        if let Some(next) = &tail {
            builder.store_reference(next).map_err(build_error)?;
        }
        tail = Some(builder.build().map_err(build_error)?.to_arc());
    }
    let mut builder = CellBuilder::new();
    builder
        .store_u32(32, TEXT_COMMENT_OP)
        .map_err(build_error)?
        .store_slice(first)
        .map_err(build_error)?;
    if let Some(next) = &tail {
        builder.store_reference(next).map_err(build_error)?;
    }
    builder.build().map_err(build_error)
}

/// The `body_hash` toncenter reports for an internal message whose body is this comment
/// (or an empty body when `None`).
pub fn comment_body_hash(comment: Option<&str>) -> Result<String, TonError> {
    let body = match comment {
        Some(text) => comment_body(text)?,
        None => Cell::default(),
    };
    Ok(hash_base64(&body))
}

/// One transfer to sign.
#[derive(Clone, Debug)]
pub struct TransferRequest<'a> {
    pub destination: &'a str,
    pub amount_nanoton: u64,
    pub comment: Option<&'a str>,
    /// The wallet's current seqno (0 for a wallet never used).
    pub seqno: u32,
    /// Unix time after which the wallet refuses the message.
    pub valid_until: u32,
    /// Deploys the wallet contract with this message (needed while it is uninitialized).
    pub with_state_init: bool,
}

/// A signed external message, ready for `sendBoc`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignedTransfer {
    /// Bag of cells, standard base64: the `boc` of `sendBoc`.
    pub boc_base64: String,
    /// The signed wallet body alone (standard base64 BOC): the `body` of `estimateFee`.
    pub body_base64: String,
    /// Hash of the external message cell (standard base64), as toncenter reports it.
    pub message_hash: String,
    /// Hash of the internal message's body: toncenter's `body_hash` of the out message.
    pub body_hash: String,
    pub seqno: u32,
    pub valid_until: u32,
    pub destination: ParsedAddress,
    pub amount_nanoton: u64,
}

/// A wallet key pair derived from a mnemonic. Debug prints only the address.
pub struct WalletSigner {
    wallet: TonWallet,
    kind: WalletKind,
}

impl fmt::Debug for WalletSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletSigner")
            .field("kind", &self.kind)
            .field("address", &self.wallet.address.to_base64_url())
            .finish_non_exhaustive()
    }
}

impl WalletSigner {
    /// `mnemonic`: 24 words separated by whitespace (newlines allowed), no password.
    pub fn from_mnemonic(mnemonic: &str, kind: WalletKind) -> Result<Self, TonError> {
        let words: Vec<&str> = mnemonic.split_whitespace().collect();
        if words.len() != 24 {
            return Err(TonError::InvalidMnemonic {
                detail: format!("expected 24 words, found {}", words.len()),
            });
        }
        // tonlib-core's errors name the offending word; a mnemonic word is part of the
        // secret, so only the kind of problem is reported.
        let mnemonic = Mnemonic::new(words, &None).map_err(|error| TonError::InvalidMnemonic {
            detail: mnemonic_problem(&error),
        })?;
        let key_pair = mnemonic
            .to_key_pair()
            .map_err(|_| TonError::InvalidMnemonic {
                detail: "cannot derive a key pair from it".to_owned(),
            })?;
        let wallet = TonWallet::new(kind.version(), key_pair).map_err(build_error)?;
        Ok(Self { wallet, kind })
    }

    pub fn kind(&self) -> WalletKind {
        self.kind
    }

    /// The wallet's own address (workchain 0, default wallet id).
    pub fn address(&self) -> ParsedAddress {
        describe(&self.wallet.address, true)
    }

    /// Builds and signs an external message carrying one internal transfer.
    pub fn sign_transfer(&self, request: &TransferRequest<'_>) -> Result<SignedTransfer, TonError> {
        let destination = parse_address(request.destination)?;
        let destination_address =
            TonAddress::from_str(&destination.raw).map_err(|error| TonError::InvalidAddress {
                address: request.destination.to_owned(),
                detail: error.to_string(),
            })?;
        let body = match request.comment {
            Some(text) => comment_body(text)?,
            None => Cell::default(),
        };
        let body_hash = hash_base64(&body);
        let info = IntMsgInfo {
            ihr_disabled: true,
            bounce: destination.bounceable,
            bounced: false,
            src: MsgAddress::NONE,
            dest: destination_address.to_msg_address(),
            value: CurrencyCollection::new(BigUint::from(request.amount_nanoton)),
            ihr_fee: Grams::new(BigUint::from(0u32)),
            fwd_fee: Grams::new(BigUint::from(0u32)),
            created_lt: 0,
            created_at: 0,
        };
        let internal = Message::new(CommonMsgInfo::Int(info), body.to_arc())
            .to_cell()
            .map_err(build_error)?
            .to_arc();
        // Built step by step (what `create_external_msg` does) to keep the signed body,
        // which toncenter's estimateFee takes.
        let unsigned = self
            .wallet
            .create_external_body(request.valid_until, request.seqno, [internal])
            .map_err(build_error)?;
        let signed_body = self
            .wallet
            .sign_external_body(&unsigned)
            .map_err(build_error)?;
        let signed_body_boc = BagOfCells::from_root(signed_body.clone())
            .serialize(true)
            .map_err(build_error)?;
        let external = self
            .wallet
            .wrap_signed_body(signed_body, request.with_state_init)
            .map_err(build_error)?;
        let message_hash = hash_base64(&external);
        let boc = BagOfCells::from_root(external)
            .serialize(true)
            .map_err(build_error)?;
        Ok(SignedTransfer {
            boc_base64: BASE64.encode(boc),
            body_base64: BASE64.encode(signed_body_boc),
            message_hash,
            body_hash,
            seqno: request.seqno,
            valid_until: request.valid_until,
            destination,
            amount_nanoton: request.amount_nanoton,
        })
    }
}

/// Turns tonlib-core's mnemonic error into a message that quotes no word.
fn mnemonic_problem(error: &MnemonicError) -> String {
    match error {
        MnemonicError::UnexpectedWordCount(count) => format!("expected 24 words, found {count}"),
        MnemonicError::InvalidWord(_) => {
            "a word is not in the TON (BIP-39 English) word list; check for a typo".to_owned()
        }
        _ => "the checksum does not match: the words are not a TON mnemonic (a phrase from another chain, or words out of order)".to_owned(),
    }
}

/// A wallet transfer read back from an external-message BOC.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParsedTransfer {
    /// The wallet the message is addressed to, `wc:hex`.
    pub wallet_raw: String,
    pub wallet_kind: WalletKind,
    pub seqno: u32,
    pub valid_until: u32,
    /// Hash of the external message cell, standard base64.
    pub message_hash: String,
    /// Whether the message carries a StateInit (deploys the wallet).
    pub with_state_init: bool,
    pub internal: Vec<ParsedInternal>,
}

/// One internal message a wallet transfer asks the wallet to send.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParsedInternal {
    pub destination_raw: String,
    pub amount_nanoton: u128,
    pub bounce: bool,
    pub body_hash: String,
    /// The text comment, when the body is one (op 0).
    pub comment: Option<String>,
}

/// Reads a signed v4/v5 wallet transfer. The signature is not checked: the reader does not
/// know the wallet's public key.
pub fn parse_transfer(boc_base64: &str) -> Result<ParsedTransfer, TonError> {
    let bytes = BASE64
        .decode(boc_base64.trim())
        .map_err(|error| TonError::InvalidBoc {
            detail: format!("not base64: {error}"),
        })?;
    let root = BagOfCells::parse(&bytes)
        .and_then(BagOfCells::single_root)
        .map_err(|error| TonError::InvalidBoc {
            detail: error.to_string(),
        })?;
    let not_transfer = |detail: String| TonError::NotATransfer { detail };
    let message = Message::from_cell(&root)
        .map_err(|error| not_transfer(format!("not a message: {error}")))?;
    let CommonMsgInfo::ExtIn(info) = &message.info else {
        return Err(not_transfer("not an inbound external message".to_owned()));
    };
    let wallet = TonAddress::from_msg_address(MsgAddress::Int(info.dest.clone()))
        .map_err(|error| not_transfer(format!("destination: {error}")))?;
    let body = message.body.value.clone();
    let (wallet_kind, seqno, valid_until, msgs) = match WalletExtMsgBodyV5::from_cell(&body) {
        Ok(v5) => (WalletKind::V5r1, v5.msg_seqno, v5.valid_until, v5.msgs),
        Err(_) => {
            let mut parser = body.parser();
            parser
                .skip_bits(512)
                .map_err(|error| not_transfer(format!("no signature: {error}")))?;
            let v4 = WalletExtMsgBodyV4::read(&mut parser)
                .map_err(|error| not_transfer(format!("not a v4 or v5 wallet body: {error}")))?;
            (WalletKind::V4r2, v4.msg_seqno, v4.valid_until, v4.msgs)
        }
    };
    let internal = msgs
        .iter()
        .map(|cell| parse_internal(cell).map_err(not_transfer))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedTransfer {
        wallet_raw: raw_form(&wallet),
        wallet_kind,
        seqno,
        valid_until,
        message_hash: hash_base64(&root),
        with_state_init: message.init.is_some(),
        internal,
    })
}

fn parse_internal(cell: &Cell) -> Result<ParsedInternal, String> {
    let message = Message::from_cell(cell).map_err(|error| format!("internal message: {error}"))?;
    let CommonMsgInfo::Int(info) = &message.info else {
        return Err("a wallet action that is not an internal message".to_owned());
    };
    let destination = TonAddress::from_msg_address(info.dest.clone())
        .map_err(|error| format!("internal destination: {error}"))?;
    let amount_nanoton = u128::try_from(&info.value.grams.amount)
        .map_err(|_| "amount does not fit 128 bits".to_owned())?;
    let body: &Cell = &message.body.value;
    Ok(ParsedInternal {
        destination_raw: raw_form(&destination),
        amount_nanoton,
        bounce: info.bounce,
        body_hash: hash_base64(body),
        comment: read_comment(body),
    })
}

fn read_comment(body: &Cell) -> Option<String> {
    let mut parser = body.parser();
    if parser.remaining_bits() < 32 || parser.load_u32(32).ok()? != TEXT_COMMENT_OP {
        return None;
    }
    let bytes = parser.load_snake_format_aligned(false).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests;

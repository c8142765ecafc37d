//! Blockchain config params read from (and, for the sim and benches, written to) the BOC
//! toncenter's `getConfigParam` returns in `result.config.bytes`.
//!
//! TL-B (crypto/block/block.tlb):
//! - 15: `validators_elected_for:uint32 elections_start_before:uint32
//!   elections_end_before:uint32 stake_held_for:uint32`
//! - 17: `min_stake:Grams max_stake:Grams min_total_stake:Grams max_stake_factor:uint32`
//! - 32/34/36: `validators#11 utime_since:uint32 utime_until:uint32 total:(## 16) main:(## 16)
//!   list:(Hashmap 16 ValidatorDescr)` or `validators_ext#12 ... total_weight:uint64
//!   list:(HashmapE 16 ValidatorDescr)`, where `validator#53 public_key:SigPubKey weight:uint64`
//!   and `validator_addr#73 public_key:SigPubKey weight:uint64 adnl_addr:bits256`, and
//!   `ed25519_pubkey#8e81278a pubkey:bits256 = SigPubKey`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigUint;
use serde::Serialize;
use tonlib_core::cell::dict::predefined_readers::{key_reader_u16, val_reader_cell};
use tonlib_core::cell::{ArcCell, BagOfCells, Cell, CellBuilder, CellParser, TonCellError};

use super::{TonError, build_error};

const TAG_VALIDATORS: u8 = 0x11;
const TAG_VALIDATORS_EXT: u8 = 0x12;
const TAG_VALIDATOR: u8 = 0x53;
const TAG_VALIDATOR_ADDR: u8 = 0x73;
const TAG_ED25519_PUBKEY: u32 = 0x8e81_278a;

/// Something on-chain that did not decode: `context` names what was being read (a config
/// param, a get-method stack element path), `detail` what failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{context}: {detail}")]
pub struct DecodeError {
    pub context: String,
    pub detail: String,
}

impl DecodeError {
    pub(crate) fn new(context: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            detail: detail.into(),
        }
    }
}

/// Config param 15.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElectionTiming {
    pub validators_elected_for: u32,
    pub elections_start_before: u32,
    pub elections_end_before: u32,
    pub stake_held_for: u32,
}

/// Config param 17. Amounts in nanotons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StakeLimits {
    pub min_stake: u128,
    pub max_stake: u128,
    pub min_total_stake: u128,
    /// Times 65536: 196608 = 3.0.
    pub max_stake_factor: u32,
}

/// Config params 32 (previous), 34 (current), 36 (next) validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidatorSet {
    pub utime_since: u32,
    pub utime_until: u32,
    pub total: u16,
    pub main: u16,
    /// Sum of the weights (`validators#11` has no such field; it is computed then).
    pub total_weight: u64,
    /// In index order (the dictionary key).
    pub validators: Vec<ValidatorDescr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidatorDescr {
    /// Ed25519 public key, 64 lower-case hex characters.
    pub public_key: String,
    pub weight: u64,
    /// ADNL address, 64 hex characters; `None` for a plain `validator#53` entry.
    pub adnl_address: Option<String>,
}

/// A decoded `getConfigParam` answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConfigParam {
    ElectionTiming(ElectionTiming),
    StakeLimits(StakeLimits),
    ValidatorSet {
        param: u32,
        set: ValidatorSet,
    },
    /// A param this crate does not type: the BOC as received.
    Raw {
        param: u32,
        boc_base64: String,
    },
    /// Not set on chain (param 36 exists only between election close and the new round).
    Absent {
        param: u32,
    },
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

pub(crate) fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses a standard-base64 BOC with one root. `Ok(None)` for an empty string or an empty
/// root cell, which is how an absent value comes back.
pub(crate) fn parse_boc(context: &str, boc_base64: &str) -> Result<Option<ArcCell>, DecodeError> {
    let text = boc_base64.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bytes = BASE64
        .decode(text)
        .map_err(|error| DecodeError::new(context, format!("the BOC is not base64: {error}")))?;
    let root = BagOfCells::parse(&bytes)
        .and_then(BagOfCells::single_root)
        .map_err(|error| {
            DecodeError::new(context, format!("the BOC is not a bag of cells: {error}"))
        })?;
    if root.bit_len() == 0 && root.references().is_empty() {
        return Ok(None);
    }
    Ok(Some(root))
}

/// Reads one field, naming it and the bits left when it is not there.
pub(crate) fn field<'c, T>(
    context: &str,
    name: &str,
    parser: &mut CellParser<'c>,
    read: impl FnOnce(&mut CellParser<'c>) -> Result<T, TonCellError>,
) -> Result<T, DecodeError> {
    let left = parser.remaining_bits();
    read(parser).map_err(|error| {
        DecodeError::new(
            context,
            format!("cannot read `{name}` ({left} bits left in the cell; truncated?): {error}"),
        )
    })
}

fn grams(context: &str, name: &str, parser: &mut CellParser<'_>) -> Result<u128, DecodeError> {
    let value = field(context, name, parser, CellParser::load_coins)?;
    u128::try_from(&value)
        .map_err(|_| DecodeError::new(context, format!("`{name}` does not fit 128 bits")))
}

/// Decodes the `config.bytes` BOC of `getConfigParam?config_id=param`.
pub fn decode_config_param(param: u32, boc_base64: &str) -> Result<ConfigParam, DecodeError> {
    let context = format!("config param {param}");
    let Some(root) = parse_boc(&context, boc_base64)? else {
        return Ok(ConfigParam::Absent { param });
    };
    match param {
        15 => decode_election_timing(&context, &root).map(ConfigParam::ElectionTiming),
        17 => decode_stake_limits(&context, &root).map(ConfigParam::StakeLimits),
        32 | 34 | 36 => decode_validator_set(&context, &root)
            .map(|set| ConfigParam::ValidatorSet { param, set }),
        _ => Ok(ConfigParam::Raw {
            param,
            boc_base64: boc_base64.trim().to_owned(),
        }),
    }
}

fn decode_election_timing(context: &str, cell: &Cell) -> Result<ElectionTiming, DecodeError> {
    let mut parser = cell.parser();
    let mut u32_field = |name: &str| field(context, name, &mut parser, |p| p.load_u32(32));
    Ok(ElectionTiming {
        validators_elected_for: u32_field("validators_elected_for")?,
        elections_start_before: u32_field("elections_start_before")?,
        elections_end_before: u32_field("elections_end_before")?,
        stake_held_for: u32_field("stake_held_for")?,
    })
}

fn decode_stake_limits(context: &str, cell: &Cell) -> Result<StakeLimits, DecodeError> {
    let mut parser = cell.parser();
    Ok(StakeLimits {
        min_stake: grams(context, "min_stake", &mut parser)?,
        max_stake: grams(context, "max_stake", &mut parser)?,
        min_total_stake: grams(context, "min_total_stake", &mut parser)?,
        max_stake_factor: field(context, "max_stake_factor", &mut parser, |p| p.load_u32(32))?,
    })
}

fn decode_validator_set(context: &str, cell: &Cell) -> Result<ValidatorSet, DecodeError> {
    let mut parser = cell.parser();
    let tag = field(context, "tag", &mut parser, |p| p.load_u8(8))?;
    if tag != TAG_VALIDATORS && tag != TAG_VALIDATORS_EXT {
        return Err(DecodeError::new(
            context,
            format!(
                "wrong tag 0x{tag:02x}: expected a validator set (validators#11 or validators_ext#12)"
            ),
        ));
    }
    let utime_since = field(context, "utime_since", &mut parser, |p| p.load_u32(32))?;
    let utime_until = field(context, "utime_until", &mut parser, |p| p.load_u32(32))?;
    let total = field(context, "total", &mut parser, |p| p.load_u16(16))?;
    let main = field(context, "main", &mut parser, |p| p.load_u16(16))?;
    let (declared_weight, entries) = if tag == TAG_VALIDATORS_EXT {
        let weight = field(context, "total_weight", &mut parser, |p| p.load_u64(64))?;
        let entries = field(context, "list", &mut parser, |p| {
            p.load_dict(16, key_reader_u16, val_reader_cell)
        })?;
        (Some(weight), entries)
    } else {
        let entries = field(context, "list", &mut parser, |p| {
            p.load_dict_data(16, key_reader_u16, val_reader_cell)
        })?;
        (None, entries)
    };
    let mut indexed: Vec<(u16, Cell)> = entries.into_iter().collect();
    indexed.sort_by_key(|(index, _)| *index);
    let validators = indexed
        .iter()
        .map(|(index, cell)| decode_validator_descr(&format!("{context} list[{index}]"), cell))
        .collect::<Result<Vec<_>, _>>()?;
    if validators.len() != usize::from(total) {
        return Err(DecodeError::new(
            context,
            format!(
                "the list has {} validators but `total` says {total}",
                validators.len()
            ),
        ));
    }
    if main > total {
        return Err(DecodeError::new(
            context,
            format!("`main` ({main}) is larger than `total` ({total})"),
        ));
    }
    let computed_weight = validators
        .iter()
        .fold(0u64, |sum, validator| sum.saturating_add(validator.weight));
    Ok(ValidatorSet {
        utime_since,
        utime_until,
        total,
        main,
        total_weight: declared_weight.unwrap_or(computed_weight),
        validators,
    })
}

fn decode_validator_descr(context: &str, cell: &Cell) -> Result<ValidatorDescr, DecodeError> {
    let mut parser = cell.parser();
    let tag = field(context, "tag", &mut parser, |p| p.load_u8(8))?;
    if tag != TAG_VALIDATOR && tag != TAG_VALIDATOR_ADDR {
        return Err(DecodeError::new(
            context,
            format!(
                "wrong tag 0x{tag:02x}: expected a validator description (validator#53 or validator_addr#73)"
            ),
        ));
    }
    let key_tag = field(context, "public_key tag", &mut parser, |p| p.load_u32(32))?;
    if key_tag != TAG_ED25519_PUBKEY {
        return Err(DecodeError::new(
            context,
            format!("wrong public key tag 0x{key_tag:08x}: expected ed25519_pubkey#8e81278a"),
        ));
    }
    let public_key = field(context, "public_key", &mut parser, |p| p.load_bytes(32))?;
    let weight = field(context, "weight", &mut parser, |p| p.load_u64(64))?;
    let adnl_address = if tag == TAG_VALIDATOR_ADDR {
        Some(to_hex(&field(context, "adnl_addr", &mut parser, |p| {
            p.load_bytes(32)
        })?))
    } else {
        None
    };
    Ok(ValidatorDescr {
        public_key: to_hex(&public_key),
        weight,
        adnl_address,
    })
}

// ---- encoding: the same layouts, for the sim, tests and benchmarks ----

fn boc_base64(cell: Cell) -> Result<String, TonError> {
    let bytes = BagOfCells::from_root(cell)
        .serialize(true)
        .map_err(build_error)?;
    Ok(BASE64.encode(bytes))
}

fn hex32(name: &str, text: &str) -> Result<Vec<u8>, TonError> {
    match from_hex(text) {
        Some(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(TonError::Build {
            detail: format!("{name} must be 64 hex characters, got {text:?}"),
        }),
    }
}

/// The BOC of an empty cell: what the sim serves for an absent param.
pub fn empty_cell_boc() -> Result<String, TonError> {
    boc_base64(Cell::default())
}

/// Param 15 as a BOC (standard base64).
pub fn encode_election_timing(timing: &ElectionTiming) -> Result<String, TonError> {
    let mut builder = CellBuilder::new();
    builder
        .store_u32(32, timing.validators_elected_for)
        .and_then(|b| b.store_u32(32, timing.elections_start_before))
        .and_then(|b| b.store_u32(32, timing.elections_end_before))
        .and_then(|b| b.store_u32(32, timing.stake_held_for))
        .map_err(build_error)?;
    boc_base64(builder.build().map_err(build_error)?)
}

/// Param 17 as a BOC (standard base64).
pub fn encode_stake_limits(limits: &StakeLimits) -> Result<String, TonError> {
    let mut builder = CellBuilder::new();
    builder
        .store_coins(&BigUint::from(limits.min_stake))
        .and_then(|b| b.store_coins(&BigUint::from(limits.max_stake)))
        .and_then(|b| b.store_coins(&BigUint::from(limits.min_total_stake)))
        .and_then(|b| b.store_u32(32, limits.max_stake_factor))
        .map_err(build_error)?;
    boc_base64(builder.build().map_err(build_error)?)
}

fn store_inline(builder: &mut CellBuilder, cell: Cell) -> Result<(), TonCellError> {
    builder.store_cell(&cell).map(|_| ())
}

/// Param 32/34/36 as a `validators_ext#12` BOC (standard base64). `total` is the number
/// of validators; `main` and `total_weight` are written as given.
pub fn encode_validator_set(set: &ValidatorSet) -> Result<String, TonError> {
    let mut entries: HashMap<u16, Cell> = HashMap::with_capacity(set.validators.len());
    for (index, validator) in set.validators.iter().enumerate() {
        let index = u16::try_from(index).map_err(build_error)?;
        let public_key = hex32("public_key", &validator.public_key)?;
        let mut builder = CellBuilder::new();
        let tag = if validator.adnl_address.is_some() {
            TAG_VALIDATOR_ADDR
        } else {
            TAG_VALIDATOR
        };
        builder
            .store_u8(8, tag)
            .and_then(|b| b.store_u32(32, TAG_ED25519_PUBKEY))
            .and_then(|b| b.store_slice(&public_key))
            .and_then(|b| b.store_u64(64, validator.weight))
            .map_err(build_error)?;
        if let Some(adnl) = &validator.adnl_address {
            builder
                .store_slice(&hex32("adnl_address", adnl)?)
                .map_err(build_error)?;
        }
        entries.insert(index, builder.build().map_err(build_error)?);
    }
    let total = u16::try_from(set.validators.len()).map_err(build_error)?;
    let mut builder = CellBuilder::new();
    builder
        .store_u8(8, TAG_VALIDATORS_EXT)
        .and_then(|b| b.store_u32(32, set.utime_since))
        .and_then(|b| b.store_u32(32, set.utime_until))
        .and_then(|b| b.store_u16(16, total))
        .and_then(|b| b.store_u16(16, set.main))
        .and_then(|b| b.store_u64(64, set.total_weight))
        .and_then(|b| b.store_dict(16, store_inline, entries))
        .map_err(build_error)?;
    boc_base64(builder.build().map_err(build_error)?)
}

#[cfg(test)]
mod tests;

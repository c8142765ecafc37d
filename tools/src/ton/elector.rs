//! The elector contract's get-methods (`-1:3333…3333`) read from their result stacks, and
//! the dictionaries inside them (frozen stakes, complaints).
//!
//! Layouts follow elector-code.fc: `participant_list_extended` returns
//! `[elect_at, elect_close, min_stake, total_stake, list([pubkey, [stake, max_factor,
//! wallet_addr, adnl]]), failed, finished]`; `past_elections` a list of
//! `[election_id, unfreeze_at, stake_held, vset_hash, frozen_dict, total_stake, bonuses,
//! complaints]`; a frozen stake is `addr:bits256 weight:uint64 stake:Grams banned:Bool`
//! keyed by the 256-bit public key. `list_complaints` and `compute_returned_stake` take an
//! argument (the election id, the wallet's 256-bit account id).

use std::collections::HashMap;

use num_bigint::BigUint;
use serde::Serialize;
use tonlib_core::cell::dict::predefined_readers::{key_reader_uint, val_reader_cell};
use tonlib_core::cell::{Cell, CellBuilder, CellParser, TonCellError};

use super::config::{DecodeError, field, from_hex, parse_boc, to_hex};
use super::stack::{At, TvmStack, TvmValue};
use super::{TonError, build_error};

/// The elector's raw address.
pub const ELECTOR_ADDRESS: &str =
    "-1:3333333333333333333333333333333333333333333333333333333333333333";

/// `participant_list_extended`: the election under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Election {
    pub elect_at: u64,
    pub elect_close: u64,
    pub min_stake: u128,
    pub total_stake: u128,
    pub participants: Vec<Participant>,
    pub failed: bool,
    pub finished: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Participant {
    /// 64 hex characters.
    pub public_key: String,
    /// Nanotons.
    pub stake: u128,
    /// Times 65536: 196608 = 3.0.
    pub max_factor: u32,
    /// Raw masterchain address, `-1:<64 hex>`.
    pub wallet_address: String,
    /// 64 hex characters.
    pub adnl: String,
}

/// One entry of `past_elections`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PastElection {
    pub election_id: u64,
    pub unfreeze_at: u64,
    pub stake_held: u64,
    /// 64 hex characters.
    pub vset_hash: String,
    pub total_stake: u128,
    pub bonuses: u128,
    pub frozen: FrozenStakes,
    /// Entries of the complaints dictionary; `None` when it did not decode.
    pub complaints: Option<usize>,
}

/// The frozen-stakes dictionary: decoded, or why not (never guessed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FrozenStakes {
    Decoded { stakes: Vec<Frozen> },
    Undecodable { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frozen {
    /// The dictionary key: the validator's public key, 64 hex characters.
    pub public_key: String,
    /// Raw masterchain address the stake returns to, `-1:<64 hex>`.
    pub address: String,
    pub weight: u64,
    pub stake: u128,
    pub banned: bool,
}

/// The stack, when it holds at least `len` entries (shared with the pool get-methods).
pub(super) fn top<'a>(
    method: &'a str,
    stack: &'a TvmStack,
    len: usize,
) -> Result<&'a [TvmValue], DecodeError> {
    if stack.len() < len {
        return Err(DecodeError::new(
            method,
            format!(
                "expected at least {len} stack entries, got {} (truncated stack?)",
                stack.len()
            ),
        ));
    }
    Ok(stack)
}

/// `active_election_id`: `None` when no election is open (the elector returns 0).
pub fn active_election_id(stack: &TvmStack) -> Result<Option<u64>, DecodeError> {
    let method = "active_election_id";
    let values = top(method, stack, 1)?;
    let names = top_names(method, 1);
    let id = element(&names, values, 0).u64()?;
    Ok((id != 0).then_some(id))
}

/// Element `index` of the top-level stack, with its path.
fn element<'a>(names: &'a [String], values: &'a [TvmValue], index: usize) -> At<'a> {
    At::root(&names[index], &values[index])
}

pub(super) fn top_names(method: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("{method}[{index}]"))
        .collect()
}

/// `participant_list_extended`.
pub fn participant_list_extended(stack: &TvmStack) -> Result<Election, DecodeError> {
    let method = "participant_list_extended";
    let values = top(method, stack, 7)?;
    let names = top_names(method, 7);
    let at = |index: usize| element(&names, values, index);
    let list = at(4);
    let participants = list
        .items()?
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let entry = list.child(index, 0)?;
            let public_key = entry.child(0, 2)?.hex256()?;
            let details = entry.child(1, 2)?;
            let max_factor = details.child(1, 4)?;
            let max_factor_value = max_factor.u64()?;
            Ok(Participant {
                public_key,
                stake: details.child(0, 4)?.u128()?,
                max_factor: u32::try_from(max_factor_value).map_err(|_| {
                    max_factor.error(format!(
                        "max_factor {max_factor_value} does not fit 32 bits"
                    ))
                })?,
                wallet_address: format!("-1:{}", details.child(2, 4)?.hex256()?),
                adnl: details.child(3, 4)?.hex256()?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(Election {
        elect_at: at(0).u64()?,
        elect_close: at(1).u64()?,
        min_stake: at(2).u128()?,
        total_stake: at(3).u128()?,
        participants,
        failed: at(5).bool()?,
        finished: at(6).bool()?,
    })
}

/// `participant_list`: `(public key hex, stake nanotons)` pairs.
pub fn participant_list(stack: &TvmStack) -> Result<Vec<(String, u128)>, DecodeError> {
    let method = "participant_list";
    let values = top(method, stack, 1)?;
    let names = top_names(method, 1);
    let list = element(&names, values, 0);
    list.items()?
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let entry = list.child(index, 0)?;
            Ok((entry.child(0, 2)?.hex256()?, entry.child(1, 2)?.u128()?))
        })
        .collect()
}

/// `past_elections`.
pub fn past_elections(stack: &TvmStack) -> Result<Vec<PastElection>, DecodeError> {
    let method = "past_elections";
    let values = top(method, stack, 1)?;
    let names = top_names(method, 1);
    let list = element(&names, values, 0);
    list.items()?
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let entry = list.child(index, 0)?;
            let frozen_at = entry.child(4, 8)?;
            let complaints_at = entry.child(7, 8)?;
            Ok(PastElection {
                election_id: entry.child(0, 8)?.u64()?,
                unfreeze_at: entry.child(1, 8)?.u64()?,
                stake_held: entry.child(2, 8)?.u64()?,
                vset_hash: entry.child(3, 8)?.hex256()?,
                total_stake: entry.child(5, 8)?.u128()?,
                bonuses: entry.child(6, 8)?.u128()?,
                frozen: match dict_cell(&frozen_at)? {
                    None => FrozenStakes::Decoded { stakes: Vec::new() },
                    Some(boc) => match decode_frozen_dict(&frozen_at.path(), boc) {
                        Ok(stakes) => FrozenStakes::Decoded { stakes },
                        Err(error) => FrozenStakes::Undecodable {
                            reason: error.to_string(),
                        },
                    },
                },
                complaints: match dict_cell(&complaints_at)? {
                    None => Some(0),
                    Some(boc) => count_dict_entries(&complaints_at.path(), boc).ok(),
                },
            })
        })
        .collect()
}

/// A dictionary on the stack: a cell, or null for an empty one.
fn dict_cell<'a>(at: &At<'a>) -> Result<Option<&'a str>, DecodeError> {
    match at.value {
        TvmValue::Cell(boc) | TvmValue::Slice(boc) => Ok(Some(boc)),
        value if value.is_null() => Ok(None),
        value => Err(at.error(format!(
            "expected a dictionary (a cell or null), got {}",
            value.describe()
        ))),
    }
}

/// Decodes a frozen-stakes dictionary root (`Hashmap 256`).
pub fn decode_frozen_dict(context: &str, boc_base64: &str) -> Result<Vec<Frozen>, DecodeError> {
    let Some(root) = parse_boc(context, boc_base64)? else {
        return Ok(Vec::new());
    };
    let mut parser = root.parser();
    let entries = field(context, "frozen dictionary", &mut parser, |p| {
        p.load_dict_data(256, key_reader_uint, val_reader_cell)
    })?;
    let mut stakes = entries
        .into_iter()
        .map(|(key, cell)| {
            let public_key = key_hex(&key);
            let context = format!("{context} frozen[{public_key}]");
            let mut parser = cell.parser();
            let address = field(&context, "addr", &mut parser, |p| p.load_bytes(32))?;
            let weight = field(&context, "weight", &mut parser, |p| p.load_u64(64))?;
            let stake = field(&context, "stake", &mut parser, CellParser::load_coins)?;
            let banned = field(&context, "banned", &mut parser, CellParser::load_bit)?;
            Ok(Frozen {
                public_key,
                address: format!("-1:{}", to_hex(&address)),
                weight,
                stake: u128::try_from(&stake).map_err(|_| {
                    DecodeError::new(context.clone(), "stake does not fit 128 bits")
                })?,
                banned,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    stakes.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    Ok(stakes)
}

fn count_dict_entries(context: &str, boc_base64: &str) -> Result<usize, DecodeError> {
    let Some(root) = parse_boc(context, boc_base64)? else {
        return Ok(0);
    };
    let mut parser = root.parser();
    field(context, "dictionary", &mut parser, |p| {
        p.load_dict_data(256, key_reader_uint, val_reader_cell)
    })
    .map(|entries| entries.len())
}

fn key_hex(key: &BigUint) -> String {
    let bytes = key.to_bytes_be();
    let mut padded = vec![0u8; 32usize.saturating_sub(bytes.len())];
    padded.extend_from_slice(&bytes);
    to_hex(&padded)
}

fn key_from_hex(name: &str, text: &str) -> Result<BigUint, TonError> {
    match from_hex(text) {
        Some(bytes) if bytes.len() == 32 => Ok(BigUint::from_bytes_be(&bytes)),
        _ => Err(TonError::Build {
            detail: format!("{name} must be 64 hex characters, got {text:?}"),
        }),
    }
}

fn store_inline(builder: &mut CellBuilder, cell: Cell) -> Result<(), TonCellError> {
    builder.store_cell(&cell).map(|_| ())
}

fn dict_boc(entries: HashMap<BigUint, Cell>) -> Result<Option<String>, TonError> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut builder = CellBuilder::new();
    builder
        .store_dict_data(256, store_inline, entries)
        .map_err(build_error)?;
    let cell = builder.build().map_err(build_error)?;
    let bytes = tonlib_core::cell::BagOfCells::from_root(cell)
        .serialize(true)
        .map_err(build_error)?;
    use base64::Engine;
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

/// The frozen-stakes dictionary as the elector stores it; `None` (TVM null) when empty.
pub fn encode_frozen_dict(stakes: &[Frozen]) -> Result<Option<String>, TonError> {
    let mut entries = HashMap::with_capacity(stakes.len());
    for stake in stakes {
        let key = key_from_hex("public_key", &stake.public_key)?;
        let address = stake
            .address
            .strip_prefix("-1:")
            .ok_or_else(|| TonError::Build {
                detail: format!("frozen address must be -1:<hex>, got {:?}", stake.address),
            })?;
        let address = key_from_hex("address", address)?;
        let mut builder = CellBuilder::new();
        builder
            .store_uint(256, &address)
            .and_then(|b| b.store_u64(64, stake.weight))
            .and_then(|b| b.store_coins(&BigUint::from(stake.stake)))
            .and_then(|b| b.store_bit(stake.banned))
            .map_err(build_error)?;
        entries.insert(key, builder.build().map_err(build_error)?);
    }
    dict_boc(entries)
}

/// A complaints dictionary with `count` entries keyed by made-up complaint hashes; only
/// the count is read back. `None` (TVM null) when zero.
pub fn encode_complaints(count: usize, seed: u64) -> Result<Option<String>, TonError> {
    let mut entries = HashMap::with_capacity(count);
    for index in 0..count {
        let key = BigUint::from(seed) * BigUint::from(1_000_003u64) + BigUint::from(index);
        let mut builder = CellBuilder::new();
        builder.store_u64(64, index as u64).map_err(build_error)?;
        entries.insert(key, builder.build().map_err(build_error)?);
    }
    dict_boc(entries)
}

/// One complaint of `list_complaints(election_id)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComplaintInfo {
    /// The complaint hash (its dictionary key), 64 hex characters.
    pub hash: String,
    /// The accused validator's public key, 64 hex characters.
    pub validator_pubkey: String,
    pub created_at: u64,
    pub severity: u64,
    /// Raw masterchain address the reward goes to, `-1:<64 hex>`.
    pub reward_address: String,
    /// Nanotons the complainer paid to file it.
    pub paid: u128,
    /// Nanotons.
    pub suggested_fine: u128,
    /// Share of the stake, times 2^32.
    pub suggested_fine_part: u64,
    /// Indexes (in the validator set) of the validators who voted for it.
    pub voters: Vec<u64>,
    /// Hash of the validator set the votes count in, 64 hex characters.
    pub vset_id: String,
    /// Weight still needed; the complaint passed when it is below zero.
    pub weight_remaining: i64,
    pub passed: bool,
}

/// `list_complaints(election_id)`: every complaint of that past election (an empty list,
/// or null, when there are none or the election is unknown).
///
/// elector-code.fc returns `pair(chash, [complaint, voters, vset_id, weight_remaining])`
/// where `complaint = [validator_pubkey, description, created_at, severity, reward_addr,
/// paid, suggested_fine, suggested_fine_part]` (what mytonctrl reads); the flat form
/// `[chash, complaint, voters, vset_id, weight_remaining]` is read too. The description
/// cell is not decoded.
pub fn list_complaints(stack: &TvmStack) -> Result<Vec<ComplaintInfo>, DecodeError> {
    let method = "list_complaints";
    let values = top(method, stack, 1)?;
    let names = top_names(method, 1);
    let list = element(&names, values, 0);
    list.items()?
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let entry = list.child(index, 0)?;
            let hash = entry.child(0, 2)?.hex256()?;
            if entry.items()?.len() >= 5 {
                complaint_info(
                    hash,
                    &entry.child(1, 5)?,
                    &entry.child(2, 5)?,
                    &entry.child(3, 5)?,
                    &entry.child(4, 5)?,
                )
            } else {
                let status = entry.child(1, 2)?;
                complaint_info(
                    hash,
                    &status.child(0, 4)?,
                    &status.child(1, 4)?,
                    &status.child(2, 4)?,
                    &status.child(3, 4)?,
                )
            }
        })
        .collect()
}

fn complaint_info(
    hash: String,
    complaint: &At<'_>,
    voters: &At<'_>,
    vset_id: &At<'_>,
    weight_remaining: &At<'_>,
) -> Result<ComplaintInfo, DecodeError> {
    let voter_indexes = voters
        .items()?
        .iter()
        .enumerate()
        .map(|(index, _)| voters.child(index, 0)?.u64())
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let weight_number = weight_remaining.number()?;
    let weight = i64::try_from(weight_number).map_err(|_| {
        weight_remaining.error(format!(
            "expected a signed 64-bit number, got {weight_number}"
        ))
    })?;
    // Element 1 (the description cell) is not read: its layout varies and nothing uses it.
    Ok(ComplaintInfo {
        hash,
        validator_pubkey: complaint.child(0, 8)?.hex256()?,
        created_at: complaint.child(2, 8)?.u64()?,
        severity: complaint.child(3, 8)?.u64()?,
        reward_address: format!("-1:{}", complaint.child(4, 8)?.hex256()?),
        paid: complaint.child(5, 8)?.u128()?,
        suggested_fine: complaint.child(6, 8)?.u128()?,
        suggested_fine_part: complaint.child(7, 8)?.u64()?,
        voters: voter_indexes,
        vset_id: vset_id.hex256()?,
        weight_remaining: weight,
        passed: weight < 0,
    })
}

/// `compute_returned_stake(wallet_addr)`: nanotons the elector holds for that wallet
/// (returned stakes and bonuses), which a recover-stake message withdraws.
pub fn returned_stake(stack: &TvmStack) -> Result<u128, DecodeError> {
    let method = "compute_returned_stake";
    let values = top(method, stack, 1)?;
    let names = top_names(method, 1);
    element(&names, values, 0).u128()
}

#[cfg(test)]
mod tests;

//! Nominator pools read from their get-method stacks: the TON nominator pool
//! (ton-blockchain/nominator-pool: `get_pool_data`, `list_nominators`) and the single
//! nominator pool (`get_roles`).
//!
//! Layouts (nominator-pool.fc): `get_pool_data` returns `[state, nominators_count,
//! stake_amount_sent, validator_amount, validator_address, validator_reward_share,
//! max_nominators_count, min_validator_stake, min_nominator_stake, nominators,
//! withdraw_requests, stake_at, saved_validator_set_hash, validator_set_changes_count,
//! validator_set_change_time, stake_held_for, config_proposal_votings]` (later entries are
//! tolerated); `list_nominators` a list of `[address, amount, pending_deposit_amount,
//! withdraw_requested]`; `get_roles` two address slices, `(owner, validator)`.

use serde::Serialize;
use tonlib_core::TonAddress;
use tonlib_core::cell::{BagOfCells, CellBuilder, CellParser};

use super::config::{DecodeError, field, parse_boc};
use super::stack::{At, TvmStack, TvmValue};
use super::{TonError, build_error};

/// `get_pool_data` of a nominator pool: the numbers an operator watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolData {
    /// 0: stake not sent, 1: sent to the elector, 2: accepted (held).
    pub state: u64,
    pub nominators_count: u64,
    /// Nanotons sent to the elector for the current round.
    pub stake_amount_sent: u128,
    /// The validator's own nanotons in the pool.
    pub validator_amount: u128,
    /// The validator's wallet, raw masterchain `-1:<64 hex>`.
    pub validator_address: String,
    /// The validator's share of rewards, in 1/10000 (4000 = 40%).
    pub validator_reward_share: u64,
    pub max_nominators_count: u64,
    pub min_validator_stake: u128,
    pub min_nominator_stake: u128,
    /// Election id the stake was sent for; 0 when none.
    pub stake_at: u64,
    pub stake_held_for: u64,
}

/// One entry of `list_nominators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Nominator {
    /// Nominators live in the basechain: raw `0:<64 hex>`.
    pub address: String,
    /// Nanotons staked.
    pub amount: u128,
    /// Nanotons deposited but not yet in the stake (they join at the next round).
    pub pending_deposit: u128,
    pub withdraw_requested: bool,
}

/// `get_roles` of a single nominator pool, raw `wc:hex` addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SingleNominatorRoles {
    pub owner: String,
    pub validator: String,
}

const POOL_DATA_ENTRIES: usize = 16;

/// The stack's first `len` entries and their paths (`method[i]`), or why not.
fn top<'a>(
    method: &'a str,
    stack: &'a TvmStack,
    len: usize,
) -> Result<(&'a [TvmValue], Vec<String>), DecodeError> {
    Ok((
        super::elector::top(method, stack, len)?,
        super::elector::top_names(method, len),
    ))
}

/// `get_pool_data` of a nominator pool.
pub fn pool_data(stack: &TvmStack) -> Result<PoolData, DecodeError> {
    let (values, names) = top("get_pool_data", stack, POOL_DATA_ENTRIES)?;
    let at = |index: usize| At::root(&names[index], &values[index]);
    Ok(PoolData {
        state: at(0).u64()?,
        nominators_count: at(1).u64()?,
        stake_amount_sent: at(2).u128()?,
        validator_amount: at(3).u128()?,
        validator_address: format!("-1:{}", at(4).hex256()?),
        validator_reward_share: at(5).u64()?,
        max_nominators_count: at(6).u64()?,
        min_validator_stake: at(7).u128()?,
        min_nominator_stake: at(8).u128()?,
        stake_at: at(11).u64()?,
        stake_held_for: at(15).u64()?,
    })
}

/// `list_nominators` of a nominator pool (null when it has none).
pub fn list_nominators(stack: &TvmStack) -> Result<Vec<Nominator>, DecodeError> {
    let (values, names) = top("list_nominators", stack, 1)?;
    let list = At::root(&names[0], &values[0]);
    list.items()?
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let entry = list.child(index, 0)?;
            Ok(Nominator {
                address: format!("0:{}", entry.child(0, 4)?.hex256()?),
                amount: entry.child(1, 4)?.u128()?,
                pending_deposit: entry.child(2, 4)?.u128()?,
                withdraw_requested: entry.child(3, 4)?.bool()?,
            })
        })
        .collect()
}

/// `get_roles` of a single nominator pool.
pub fn single_nominator_roles(stack: &TvmStack) -> Result<SingleNominatorRoles, DecodeError> {
    let (values, names) = top("get_roles", stack, 2)?;
    Ok(SingleNominatorRoles {
        owner: slice_address(&At::root(&names[0], &values[0]))?,
        validator: slice_address(&At::root(&names[1], &values[1]))?,
    })
}

/// An address held in a slice (or cell) BOC, as raw `wc:hex`.
fn slice_address(at: &At<'_>) -> Result<String, DecodeError> {
    let boc = match at.value {
        TvmValue::Slice(boc) | TvmValue::Cell(boc) => boc,
        other => {
            return Err(at.error(format!(
                "expected an address slice, got {}",
                other.describe()
            )));
        }
    };
    let path = at.path();
    let Some(cell) = parse_boc(&path, boc)? else {
        return Err(at.error("expected an address slice, got an empty cell"));
    };
    let mut parser = cell.parser();
    let address = field(&path, "address", &mut parser, CellParser::load_address)?;
    Ok(format!(
        "{}:{}",
        address.workchain,
        address.hash_part.to_hex()
    ))
}

/// A slice holding `address` (a `MsgAddressInt`), as the standard-base64 BOC of its cell:
/// what a contract returns for an address (the sim serves it).
pub fn address_slice_boc(address: &str) -> Result<String, TonError> {
    use base64::Engine;
    let parsed = super::parse_address(address).map_err(|error| TonError::Build {
        detail: error.to_string(),
    })?;
    let ton_address: TonAddress = parsed.raw.parse().map_err(build_error)?;
    let mut builder = CellBuilder::new();
    builder.store_address(&ton_address).map_err(build_error)?;
    let cell = builder.build().map_err(build_error)?;
    let bytes = BagOfCells::from_root(cell)
        .serialize(true)
        .map_err(build_error)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests;

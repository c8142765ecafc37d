//! TVM stack values as a get-method returns them, independent of any provider's wire
//! encoding (toncenter's legacy encoding is read in `toncenter::stack`).

use num_bigint::BigInt;
use serde::{Serialize, Serializer};

use super::config::DecodeError;

/// One stack entry. A TVM null arrives as an empty list, and is kept as one.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum TvmValue {
    /// Serialized as a decimal string: 256-bit keys do not fit a JSON number.
    Number(#[serde(serialize_with = "decimal")] BigInt),
    /// A cell as a standard-base64 BOC.
    Cell(String),
    /// A slice as a standard-base64 BOC of its cell.
    Slice(String),
    Tuple(Vec<TvmValue>),
    List(Vec<TvmValue>),
}

fn decimal<S: Serializer>(number: &BigInt, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&number.to_str_radix(10))
}

/// A get-method's result stack, bottom first (the order toncenter lists it).
pub type TvmStack = Vec<TvmValue>;

impl TvmValue {
    pub fn number(value: impl Into<BigInt>) -> Self {
        Self::Number(value.into())
    }

    /// What the value is, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Number(_) => "a number",
            Self::Cell(_) => "a cell",
            Self::Slice(_) => "a slice",
            Self::Tuple(_) => "a tuple",
            Self::List(items) if items.is_empty() => "null (an empty list)",
            Self::List(_) => "a list",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Self::List(items) if items.is_empty())
    }
}

/// A value with the path it was reached by (`participant_list_extended[4][2][1]`), so
/// every error names the element.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) value: &'a TvmValue,
    path: &'a str,
    index: Option<usize>,
    parent: Option<&'a At<'a>>,
}

impl<'a> At<'a> {
    pub(crate) fn root(path: &'a str, value: &'a TvmValue) -> Self {
        Self {
            value,
            path,
            index: None,
            parent: None,
        }
    }

    pub(crate) fn path(&self) -> String {
        let mut indexes = Vec::new();
        let mut node = Some(self);
        let mut base = "";
        while let Some(at) = node {
            if let Some(index) = at.index {
                indexes.push(index);
            } else {
                base = at.path;
            }
            node = at.parent;
        }
        let mut text = base.to_owned();
        for index in indexes.iter().rev() {
            text.push_str(&format!("[{index}]"));
        }
        text
    }

    pub(crate) fn error(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError::new(self.path(), detail)
    }

    fn expected(&self, what: &str) -> DecodeError {
        self.error(format!("expected {what}, got {}", self.value.describe()))
    }

    /// The elements of a tuple or list (toncenter sends either for the same TVM shape).
    pub(crate) fn items(&self) -> Result<&'a [TvmValue], DecodeError> {
        match self.value {
            TvmValue::Tuple(items) | TvmValue::List(items) => Ok(items),
            _ => Err(self.expected("a tuple or list")),
        }
    }

    /// Element `index` of a tuple or list of at least `len` elements.
    pub(crate) fn child<'b>(&'b self, index: usize, len: usize) -> Result<At<'b>, DecodeError> {
        let items = self.items()?;
        if items.len() < len {
            return Err(self.error(format!(
                "expected at least {len} elements, got {} (truncated stack?)",
                items.len()
            )));
        }
        match items.get(index) {
            Some(value) => Ok(At {
                value,
                path: self.path,
                index: Some(index),
                parent: Some(self),
            }),
            None => Err(self.error(format!("no element {index}"))),
        }
    }

    pub(crate) fn number(&self) -> Result<&'a BigInt, DecodeError> {
        match self.value {
            TvmValue::Number(number) => Ok(number),
            _ => Err(self.expected("a number")),
        }
    }

    pub(crate) fn u64(&self) -> Result<u64, DecodeError> {
        let number = self.number()?;
        u64::try_from(number)
            .map_err(|_| self.error(format!("expected an unsigned 64-bit number, got {number}")))
    }

    pub(crate) fn u128(&self) -> Result<u128, DecodeError> {
        let number = self.number()?;
        u128::try_from(number)
            .map_err(|_| self.error(format!("expected an unsigned 128-bit number, got {number}")))
    }

    /// A 256-bit unsigned number (key, address, hash) as 64 lower-case hex characters.
    pub(crate) fn hex256(&self) -> Result<String, DecodeError> {
        let number = self.number()?;
        let (sign, bytes) = number.to_bytes_be();
        if sign == num_bigint::Sign::Minus || bytes.len() > 32 {
            return Err(self.error(format!("expected an unsigned 256-bit number, got {number}")));
        }
        let mut padded = vec![0u8; 32 - bytes.len()];
        padded.extend_from_slice(&bytes);
        Ok(super::config::to_hex(&padded))
    }

    /// A TVM bool: 0 is false, any other number (-1) is true.
    pub(crate) fn bool(&self) -> Result<bool, DecodeError> {
        Ok(self.number()? != &BigInt::from(0))
    }
}

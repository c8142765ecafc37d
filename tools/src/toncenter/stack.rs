//! toncenter v2's legacy `runGetMethod` stack encoding (tvm_valuetypes `serialize_tvm_element`):
//! top-level entries are `["num", "0x.."]`, `["cell", {"bytes": ..}]`, `["slice", {"bytes": ..}]`,
//! `["tuple", {"@type": "tvm.tuple", "elements": [..]}]`, `["list", {"@type": "tvm.list",
//! "elements": [..]}]`; nested entries stay raw tonlib objects (`tvm.stackEntryNumber` with a
//! DECIMAL `number.number`, `tvm.stackEntryCell`, `tvm.stackEntrySlice`,
//! `tvm.stackEntryTuple`, `tvm.stackEntryList`). A TVM null is an empty list.

use num_bigint::BigInt;
use serde_json::{Value, json};

use crate::ton::config::DecodeError;
use crate::ton::stack::{TvmStack, TvmValue};

/// Reads the `stack` array of a `smc.runResult`. `method` names the paths in errors.
pub fn parse_legacy_stack(method: &str, stack: &Value) -> Result<TvmStack, DecodeError> {
    let Some(entries) = stack.as_array() else {
        return Err(DecodeError::new(
            format!("{method} stack"),
            format!("expected an array, got {}", json_kind(stack)),
        ));
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| parse_top(&format!("{method}[{index}]"), entry))
        .collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_number(path: &str, text: &str) -> Result<BigInt, DecodeError> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let parsed = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => BigInt::parse_bytes(hex.as_bytes(), 16),
        None => BigInt::parse_bytes(digits.as_bytes(), 10),
    };
    match parsed {
        Some(number) if negative => Ok(-number),
        Some(number) => Ok(number),
        None => Err(DecodeError::new(
            path,
            format!("expected a number, got the text {text:?}"),
        )),
    }
}

fn cell_bytes(path: &str, object: &Value) -> Result<String, DecodeError> {
    object
        .get("bytes")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| DecodeError::new(path, "a cell without `bytes`"))
}

fn elements(path: &str, object: &Value) -> Result<TvmStack, DecodeError> {
    let Some(items) = object.get("elements").and_then(Value::as_array) else {
        return Err(DecodeError::new(path, "a tuple or list without `elements`"));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_nested(&format!("{path}[{index}]"), item))
        .collect()
}

fn parse_top(path: &str, entry: &Value) -> Result<TvmValue, DecodeError> {
    let pair = entry.as_array().filter(|pair| pair.len() == 2);
    let Some(pair) = pair else {
        return Err(DecodeError::new(
            path,
            format!("expected a [type, value] pair, got {}", json_kind(entry)),
        ));
    };
    let kind = pair[0].as_str().unwrap_or_default();
    let value = &pair[1];
    match kind {
        "num" | "number" | "int" => match value {
            Value::String(text) => parse_number(path, text).map(TvmValue::Number),
            Value::Number(number) => parse_number(path, &number.to_string()).map(TvmValue::Number),
            other => Err(DecodeError::new(
                path,
                format!("a number given as {}", json_kind(other)),
            )),
        },
        "cell" => cell_bytes(path, value).map(TvmValue::Cell),
        "slice" => cell_bytes(path, value).map(TvmValue::Slice),
        "tuple" => elements(path, value).map(TvmValue::Tuple),
        "list" => elements(path, value).map(TvmValue::List),
        "null" => Ok(TvmValue::List(Vec::new())),
        other => Err(DecodeError::new(
            path,
            format!("unknown stack entry type {other:?}"),
        )),
    }
}

fn parse_nested(path: &str, entry: &Value) -> Result<TvmValue, DecodeError> {
    let kind = entry
        .get("@type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "tvm.stackEntryNumber" => {
            let number = entry
                .get("number")
                .and_then(|number| number.get("number"))
                .and_then(Value::as_str)
                .ok_or_else(|| DecodeError::new(path, "a number entry without `number.number`"))?;
            parse_number(path, number).map(TvmValue::Number)
        }
        "tvm.stackEntryCell" => entry
            .get("cell")
            .ok_or_else(|| DecodeError::new(path, "a cell entry without `cell`"))
            .and_then(|cell| cell_bytes(path, cell))
            .map(TvmValue::Cell),
        "tvm.stackEntrySlice" => entry
            .get("slice")
            .ok_or_else(|| DecodeError::new(path, "a slice entry without `slice`"))
            .and_then(|slice| cell_bytes(path, slice))
            .map(TvmValue::Slice),
        "tvm.stackEntryTuple" => entry
            .get("tuple")
            .ok_or_else(|| DecodeError::new(path, "a tuple entry without `tuple`"))
            .and_then(|tuple| elements(path, tuple))
            .map(TvmValue::Tuple),
        "tvm.stackEntryList" => entry
            .get("list")
            .ok_or_else(|| DecodeError::new(path, "a list entry without `list`"))
            .and_then(|list| elements(path, list))
            .map(TvmValue::List),
        "" => Err(DecodeError::new(
            path,
            format!(
                "expected a tonlib stack entry with `@type`, got {}",
                json_kind(entry)
            ),
        )),
        other => Err(DecodeError::new(
            path,
            format!("unknown stack entry type {other:?}"),
        )),
    }
}

/// The legacy encoding of a stack, as toncenter would send it (the sim serves this).
pub fn encode_legacy_stack(stack: &[TvmValue]) -> Value {
    Value::Array(stack.iter().map(encode_top).collect())
}

fn hex_number(number: &BigInt) -> String {
    let (sign, magnitude) = (number.sign(), number.magnitude());
    let minus = if sign == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    format!("{minus}0x{}", magnitude.to_str_radix(16))
}

fn encode_top(value: &TvmValue) -> Value {
    match value {
        TvmValue::Number(number) => json!(["num", hex_number(number)]),
        TvmValue::Cell(boc) => json!(["cell", {"bytes": boc, "object": {}}]),
        TvmValue::Slice(boc) => json!(["slice", {"bytes": boc, "object": {}}]),
        TvmValue::Tuple(items) => {
            json!(["tuple", {"@type": "tvm.tuple", "elements": encode_items(items)}])
        }
        TvmValue::List(items) => {
            json!(["list", {"@type": "tvm.list", "elements": encode_items(items)}])
        }
    }
}

fn encode_items(items: &[TvmValue]) -> Vec<Value> {
    items.iter().map(encode_nested).collect()
}

fn encode_nested(value: &TvmValue) -> Value {
    match value {
        TvmValue::Number(number) => json!({
            "@type": "tvm.stackEntryNumber",
            "number": {"@type": "tvm.numberDecimal", "number": number.to_str_radix(10)}
        }),
        TvmValue::Cell(boc) => json!({
            "@type": "tvm.stackEntryCell",
            "cell": {"@type": "tvm.cell", "bytes": boc}
        }),
        TvmValue::Slice(boc) => json!({
            "@type": "tvm.stackEntrySlice",
            "slice": {"@type": "tvm.slice", "bytes": boc}
        }),
        TvmValue::Tuple(items) => json!({
            "@type": "tvm.stackEntryTuple",
            "tuple": {"@type": "tvm.tuple", "elements": encode_items(items)}
        }),
        TvmValue::List(items) => json!({
            "@type": "tvm.stackEntryList",
            "list": {"@type": "tvm.list", "elements": encode_items(items)}
        }),
    }
}

#[cfg(test)]
mod tests;

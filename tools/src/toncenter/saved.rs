//! Decoding a provider response saved to a file, for `command-center ton decode`: the
//! operator sees exactly what the product understood.
//!
//! Reads toncenter v2 answers (`getConfigParam`, `runGetMethod` on the elector and on
//! nominator pools, `getWalletInformation`) and tonapi v2 answers (`/v2/blockchain/validators`,
//! `/v2/accounts/{id}`), with the same decoders the product uses on fetched answers.

use serde::Serialize;
use serde_json::Value;

use crate::ton::config::{DecodeError, decode_config_param};
use crate::ton::stack::TvmStack;
use crate::ton::{elector, pool};
use crate::tonapi;
use crate::toncenter::stack::parse_legacy_stack;

/// What the saved response is, when the file alone cannot say.
#[derive(Clone, Debug, Default)]
pub struct SavedHint {
    /// The `config_id` of a `getConfigParam` answer (the answer does not carry it).
    pub param: Option<u32>,
    /// The get-method of a `runGetMethod` answer.
    pub method: Option<String>,
}

type StackDecoder = fn(&TvmStack) -> Result<Value, String>;

/// The get-methods whose stacks decode to typed JSON; any other name prints the stack as
/// read, since the answer does not carry the method name.
const GET_METHODS: &[(&str, StackDecoder)] = &[
    ("active_election_id", |stack| {
        typed(elector::active_election_id(stack))
    }),
    ("participant_list", |stack| {
        typed(elector::participant_list(stack))
    }),
    ("participant_list_extended", |stack| {
        typed(elector::participant_list_extended(stack))
    }),
    ("past_elections", |stack| {
        typed(elector::past_elections(stack))
    }),
    ("list_complaints", |stack| {
        typed(elector::list_complaints(stack))
    }),
    ("compute_returned_stake", |stack| {
        typed(elector::returned_stake(stack))
    }),
    ("get_pool_data", |stack| typed(pool::pool_data(stack))),
    ("list_nominators", |stack| {
        typed(pool::list_nominators(stack))
    }),
    ("get_roles", |stack| {
        typed(pool::single_nominator_roles(stack))
    }),
];

fn known_methods() -> String {
    GET_METHODS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|error| error.to_string())
}

fn typed<T: Serialize>(decoded: Result<T, DecodeError>) -> Result<Value, String> {
    to_json(&decoded.map_err(|error| error.to_string())?)
}

/// Decodes a saved response into typed JSON, or says what is wrong and where.
pub fn decode_saved(text: &str, hint: &SavedHint) -> Result<Value, String> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let place = format!("line {} column {}", error.line(), error.column());
        if text.trim_start().starts_with('<') {
            format!(
                "{place}: not JSON: the file is an HTML page (a proxy, Cloudflare or login page saved instead of the API answer?); it starts with {:?}; save the response body of the API call itself",
                crate::http::body_snippet(text.trim_start().as_bytes())
            )
        } else {
            format!("{place}: not JSON: {error}")
        }
    })?;
    if document.get("ok") == Some(&Value::Bool(false)) {
        let message = document
            .get("error")
            .or_else(|| document.get("result"))
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!(
            "the saved answer is an error (ok:false): {message}"
        ));
    }
    if let Some(decoded) = decode_tonapi(&document)? {
        return Ok(decoded);
    }
    let result = document.get("result").unwrap_or(&document);
    let kind = result.get("@type").and_then(Value::as_str).unwrap_or("");
    if kind == "configInfo" {
        return decode_config(result, hint);
    }
    if kind == "smc.runResult" || result.get("stack").is_some() {
        return decode_run_result(result, hint);
    }
    if result.get("account_state").is_some() && result.get("wallet").is_some() {
        let raw: super::RawWalletInformation = serde_json::from_value(result.clone())
            .map_err(|error| format!("wallet information: {error}"))?;
        return Ok(
            serde_json::json!({ "kind": "wallet_information", "value": to_json(&raw.into_information())? }),
        );
    }
    let what = if kind.is_empty() {
        match result.as_object() {
            Some(fields) => format!(
                "top-level keys: {}",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => "not a JSON object".to_owned(),
        }
    } else {
        format!("result @type {kind:?}")
    };
    Err(format!(
        "not a response this command knows ({what}); it reads toncenter v2 getConfigParam, runGetMethod and getWalletInformation answers and tonapi v2 /v2/blockchain/validators and /v2/accounts/{{id}} answers"
    ))
}

fn decode_config(result: &Value, hint: &SavedHint) -> Result<Value, String> {
    let Some(param) = hint.param else {
        return Err(
            "a getConfigParam answer does not say which param it is: pass --param N (15, 17, 32, 34 or 36)"
                .to_owned(),
        );
    };
    let bytes = result
        .pointer("/config/bytes")
        .and_then(Value::as_str)
        .ok_or_else(|| "result.config.bytes is missing or not a string".to_owned())?;
    // An absent param (an empty BOC) decodes to `{"kind": "absent"}`, not an error: param 36
    // is unset for most of a round.
    let decoded = decode_config_param(param, bytes).map_err(|error| {
        format!("{error}; check that --param {param} is the config_id the answer was fetched with")
    })?;
    Ok(serde_json::json!({ "kind": "config_param", "param": param, "value": to_json(&decoded)? }))
}

fn decode_run_result(result: &Value, hint: &SavedHint) -> Result<Value, String> {
    let exit_code = result.get("exit_code").and_then(Value::as_i64).unwrap_or(0);
    if exit_code != 0 {
        return Err(format!(
            "the get-method failed on chain: exit_code {exit_code}"
        ));
    }
    let Some(method) = hint.method.as_deref() else {
        return Err(format!(
            "a runGetMethod answer does not say which get-method it is: pass --method NAME, one of {} (another name prints the stack as read)",
            known_methods()
        ));
    };
    let stack = parse_legacy_stack(method, result.get("stack").unwrap_or(&Value::Null))
        .map_err(|error| error.to_string())?;
    let value = match GET_METHODS.iter().find(|(name, _)| *name == method) {
        Some((_, decode)) => decode(&stack)?,
        None => to_json(&stack)?,
    };
    Ok(serde_json::json!({ "kind": "get_method", "method": method, "value": value }))
}

/// tonapi v2 answers carry no envelope: they are told apart by their fields.
fn decode_tonapi(document: &Value) -> Result<Option<Value>, String> {
    let has = |key: &str| document.get(key).is_some();
    if has("elect_at") && has("validators") {
        let validators = tonapi::parse_validators(document).map_err(|error| error.to_string())?;
        return Ok(Some(
            serde_json::json!({ "kind": "tonapi_validators", "value": to_json(&validators)? }),
        ));
    }
    if has("address") && has("balance") && has("status") {
        let account = tonapi::parse_account(document).map_err(|error| error.to_string())?;
        return Ok(Some(
            serde_json::json!({ "kind": "tonapi_account", "value": to_json(&account)? }),
        ));
    }
    if document.get("error").is_some_and(Value::is_string) {
        let message = tonapi::error_body_message(document).unwrap_or_default();
        let code = match document.get("error_code") {
            Some(code) => format!(" (error_code {code})"),
            None => String::new(),
        };
        return Err(format!(
            "the saved answer is a tonapi error body, not data: {message}{code}; fetch it again (with an api key if it was rate limited)"
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;

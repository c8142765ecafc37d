//! Decoding a toncenter v2 response saved to a file, for `command-center ton decode`: the
//! operator sees exactly what the product understood.

use serde_json::Value;

use crate::ton::config::decode_config_param;
use crate::ton::elector;
use crate::toncenter::stack::parse_legacy_stack;

/// What the saved response is, when the file alone cannot say.
#[derive(Clone, Debug, Default)]
pub struct SavedHint {
    /// The `config_id` of a `getConfigParam` answer (the answer does not carry it).
    pub param: Option<u32>,
    /// The get-method of a `runGetMethod` answer.
    pub method: Option<String>,
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|error| error.to_string())
}

/// Decodes a saved response into typed JSON, or says what is wrong and where.
pub fn decode_saved(text: &str, hint: &SavedHint) -> Result<Value, String> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        format!(
            "line {} column {}: not JSON: {error}",
            error.line(),
            error.column()
        )
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
    let result = document.get("result").unwrap_or(&document);
    let kind = result.get("@type").and_then(Value::as_str).unwrap_or("");
    if kind == "configInfo" {
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
        let decoded = decode_config_param(param, bytes).map_err(|error| error.to_string())?;
        return Ok(
            serde_json::json!({ "kind": "config_param", "param": param, "value": to_json(&decoded)? }),
        );
    }
    if kind == "smc.runResult" || result.get("stack").is_some() {
        let exit_code = result.get("exit_code").and_then(Value::as_i64).unwrap_or(0);
        if exit_code != 0 {
            return Err(format!(
                "the get-method failed on chain: exit_code {exit_code}"
            ));
        }
        let method = hint.method.as_deref().unwrap_or("stack");
        let stack = parse_legacy_stack(method, result.get("stack").unwrap_or(&Value::Null))
            .map_err(|error| error.to_string())?;
        let value = match method {
            "active_election_id" => {
                to_json(&elector::active_election_id(&stack).map_err(|e| e.to_string())?)?
            }
            "participant_list" => {
                to_json(&elector::participant_list(&stack).map_err(|e| e.to_string())?)?
            }
            "participant_list_extended" => {
                to_json(&elector::participant_list_extended(&stack).map_err(|e| e.to_string())?)?
            }
            "past_elections" => {
                to_json(&elector::past_elections(&stack).map_err(|e| e.to_string())?)?
            }
            _ => to_json(&stack)?,
        };
        return Ok(serde_json::json!({ "kind": "get_method", "method": method, "value": value }));
    }
    if result.get("account_state").is_some() && result.get("wallet").is_some() {
        let raw: super::RawWalletInformation = serde_json::from_value(result.clone())
            .map_err(|error| format!("wallet information: {error}"))?;
        return Ok(
            serde_json::json!({ "kind": "wallet_information", "value": to_json(&raw.into_information())? }),
        );
    }
    Err(format!(
        "not a response this command knows (result @type {kind:?}); it reads toncenter v2 getConfigParam, runGetMethod and getWalletInformation answers"
    ))
}

#[cfg(test)]
mod tests;

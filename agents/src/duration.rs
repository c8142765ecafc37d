//! Durations in configuration files are written the way people say them: "90s", "10m", "1h 30m".

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "agents::duration")]` for `Duration` fields.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*value))
}

/// Parses "90s", "10m", "1h 30m", "250ms".
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration {text:?}: {error} (write it like \"30s\", \"10m\" or \"1h 30m\")")
    })
}

/// Formats a duration the way [`parse`] reads it.
pub fn format(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

//! Durations in configuration files are written the way people say them: "90s", "10m", "1h 30m".

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

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

/// Parses a time bound as people write it in the CLI, the API and tool arguments: RFC 3339
/// (`2026-11-24T12:00:00Z`), a date (`2026-11-24`, midnight UTC) or an age before `now`
/// (`30m`, `24h`, `7d`).
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    let age = if let Some(days) = text.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
        Duration::from_secs(days * 86_400)
    } else {
        humantime::parse_duration(text).map_err(|_| {
            format!("{text:?} is not a time: use RFC 3339 (2026-11-24T12:00:00Z), a date (2026-11-24) or an age (30m, 24h, 7d)")
        })?
    };
    chrono::Duration::from_std(age)
        .map(|age| now - age)
        .map_err(|_| format!("{text:?} is too far back"))
}

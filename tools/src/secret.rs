//! A string that must never be printed: API keys and tokens.

use std::fmt;

use serde::Deserialize;

/// An API key or token. `Debug` and `Display` print `***`, so a `Secret` can sit inside
/// any config or client struct that is logged without leaking; only [`Secret::expose`]
/// hands out the value, and only the code that puts it on the wire should call it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The raw value, for an HTTP header. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests;

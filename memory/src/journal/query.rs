//! Filtering the journal.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JournalEntry, decode_entry, key_seq, seq_key};
use crate::error::StoreError;

/// Filters for [`super::Journal::query`]; every set field must match.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JournalQuery {
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries strictly before this time.
    pub until: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    /// Exact kind, or a prefix when it ends with `*` (`"deploy.*"`).
    pub kind: Option<String>,
    /// Case-insensitive substring of the subject or of the body's compact JSON.
    pub text: Option<String>,
    /// Only entries with seq greater than this (a cursor); the scan starts there.
    pub after_seq: Option<u64>,
    /// At most this many entries; the scan stops once it has them.
    pub limit: Option<usize>,
    /// Newest first (a reverse scan) instead of oldest first.
    pub newest_first: bool,
}

struct Matcher {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    actor: Option<String>,
    kind: Option<KindPattern>,
    text: Option<String>,
}

enum KindPattern {
    Exact(String),
    Prefix(String),
}

impl Matcher {
    fn new(query: &JournalQuery) -> Matcher {
        Matcher {
            since: query.since,
            until: query.until,
            actor: query.actor.clone(),
            kind: query
                .kind
                .as_ref()
                .map(|kind| match kind.strip_suffix('*') {
                    Some(prefix) => KindPattern::Prefix(prefix.to_owned()),
                    None => KindPattern::Exact(kind.clone()),
                }),
            text: query.text.as_ref().map(|text| text.to_lowercase()),
        }
    }

    fn matches(&self, entry: &JournalEntry) -> bool {
        if self.since.is_some_and(|since| entry.at < since)
            || self.until.is_some_and(|until| entry.at >= until)
        {
            return false;
        }
        if self
            .actor
            .as_ref()
            .is_some_and(|actor| *actor != entry.actor)
        {
            return false;
        }
        let kind_matches = match &self.kind {
            None => true,
            Some(KindPattern::Exact(kind)) => *kind == entry.kind,
            Some(KindPattern::Prefix(prefix)) => entry.kind.starts_with(prefix.as_str()),
        };
        if !kind_matches {
            return false;
        }
        match &self.text {
            None => true,
            Some(needle) => {
                entry.subject.to_lowercase().contains(needle.as_str())
                    || entry
                        .body
                        .to_string()
                        .to_lowercase()
                        .contains(needle.as_str())
            }
        }
    }
}

pub(super) fn run(
    tree: &sled::Tree,
    path: &Path,
    query: &JournalQuery,
) -> Result<Vec<JournalEntry>, StoreError> {
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    let matcher = Matcher::new(query);
    let range = match query.after_seq {
        Some(after) => match after.checked_add(1) {
            Some(start) => tree.range(seq_key(start)..),
            None => return Ok(found),
        },
        None => tree.iter(),
    };
    let scan: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
        if query.newest_first {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
    for item in scan {
        let (key, value) = item.map_err(|source| StoreError::Database {
            action: "scanning the journal",
            location: path.display().to_string(),
            source,
        })?;
        let seq = key_seq(&key).unwrap_or_default();
        let entry = decode_entry(path, seq, &value)?;
        if matcher.matches(&entry) {
            found.push(entry);
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}

//! Exporting entries as JSON lines or CSV.

use std::io::Write;

use super::JournalEntry;
use crate::error::StoreError;

/// One compact JSON object per line.
pub fn write_jsonl<'a, W: Write>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
    mut w: W,
) -> std::io::Result<()> {
    for entry in entries {
        serde_json::to_writer(&mut w, entry)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Header `seq,at,actor,kind,subject,body,prev_hash,hash`; `at` is RFC 3339, `body` compact JSON.
pub fn write_csv<'a, W: Write>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
    w: W,
) -> Result<(), StoreError> {
    let mut writer = csv::Writer::from_writer(w);
    writer
        .write_record([
            "seq",
            "at",
            "actor",
            "kind",
            "subject",
            "body",
            "prev_hash",
            "hash",
        ])
        .map_err(|source| StoreError::Csv {
            position: "header".to_owned(),
            source,
        })?;
    for entry in entries {
        let seq = entry.seq.to_string();
        let at = entry
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        // Sorted keys, whatever map order serde_json was built with: the same bytes the hash covers.
        let body = serde_json::to_string(&super::Sorted(&entry.body)).unwrap_or_default();
        writer
            .write_record([
                seq.as_str(),
                at.as_str(),
                entry.actor.as_str(),
                entry.kind.as_str(),
                entry.subject.as_str(),
                body.as_str(),
                entry.prev_hash.as_str(),
                entry.hash.as_str(),
            ])
            .map_err(|source| StoreError::Csv {
                position: format!("entry #{}", entry.seq),
                source,
            })?;
    }
    writer.flush().map_err(|source| StoreError::Csv {
        position: "final flush".to_owned(),
        source: source.into(),
    })
}

//! Checkpoints: the journal head written to `<data_dir>/checkpoints.jsonl`, outside sled, so a
//! truncated or rewritten journal can be detected later.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

/// The journal had `count` entries and entry #count had `head_hash`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub count: u64,
    pub head_hash: String,
    pub at: DateTime<Utc>,
}

/// Reads a checkpoints file, one JSON object per line; blank lines are skipped. A missing file
/// means no checkpoints were written yet and gives an empty list.
pub fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading checkpoints from",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut checkpoints = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint = serde_json::from_str(line).map_err(|error| StoreError::BadCheckpoint {
            path: path.to_path_buf(),
            line: index + 1,
            message: error.to_string(),
        })?;
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

/// Appends one line and fsyncs the file (and the directory when the file is new).
pub(crate) fn append_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), StoreError> {
    let io_error = |action: &'static str| {
        move |source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut line = serde_json::to_vec(checkpoint).map_err(|source| StoreError::Encode {
        what: format!("checkpoint for {}", path.display()),
        source,
    })?;
    line.push(b'\n');
    let is_new = !path.exists();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error("opening checkpoints file"))?;
    file.write_all(&line)
        .map_err(io_error("appending a checkpoint to"))?;
    file.sync_all()
        .map_err(io_error("syncing checkpoints file"))?;
    if is_new && let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes a new or renamed directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StoreError::Io {
            action: "syncing directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests;

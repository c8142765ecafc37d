//! Small JSON documents by string key (component state, cursors, settings).

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::gate::MutationGate;

pub(crate) const STATE_TREE: &str = "state";

/// Handle to the `state` tree: key = UTF-8 key, value = JSON.
#[derive(Clone)]
pub struct StateStore {
    tree: sled::Tree,
    /// `<data_dir>/store`, for error messages.
    path: PathBuf,
    gate: Arc<MutationGate>,
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    pub(crate) fn open(
        db: &sled::Db,
        path: &Path,
        gate: Arc<MutationGate>,
    ) -> Result<StateStore, StoreError> {
        let tree = db
            .open_tree(STATE_TREE)
            .map_err(|source| StoreError::Database {
                action: "opening the state tree",
                location: path.display().to_string(),
                source,
            })?;
        Ok(StateStore {
            tree,
            path: path.to_path_buf(),
            gate,
        })
    }

    fn database_error(
        &self,
        action: &'static str,
        key: &str,
    ) -> impl FnOnce(sled::Error) -> StoreError + use<> {
        let location = format!("{} state key {key:?}", self.path.display());
        move |source| StoreError::Database {
            action,
            location,
            source,
        }
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|error| StoreError::Decode {
            what: format!("state key {key:?} in {}", self.path.display()),
            message: format!("{error}; the stored value does not have the requested type"),
        })
    }

    /// Stores `value` as JSON under `key`, replacing any previous value.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(|source| StoreError::Encode {
            what: format!("state key {key:?}"),
            source,
        })?;
        let _mutating = self.gate.mutate();
        self.tree
            .insert(key.as_bytes(), json)
            .map_err(self.database_error("writing", key))?;
        Ok(())
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let bytes = self
            .tree
            .get(key.as_bytes())
            .map_err(self.database_error("reading", key))?;
        bytes.map(|bytes| self.decode(key, &bytes)).transpose()
    }

    /// Removes `key`; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _mutating = self.gate.mutate();
        self.tree
            .remove(key.as_bytes())
            .map_err(self.database_error("deleting", key))?;
        Ok(())
    }

    /// All entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(prefix.as_bytes()) {
            let (key, bytes) =
                item.map_err(self.database_error("scanning keys starting with", prefix))?;
            let key = String::from_utf8(key.to_vec()).map_err(|error| StoreError::Decode {
                what: format!(
                    "a state key starting with {prefix:?} in {}",
                    self.path.display()
                ),
                message: format!("key is not UTF-8: {error}"),
            })?;
            let value = self.decode(&key, &bytes)?;
            found.push((key, value));
        }
        Ok(found)
    }
}

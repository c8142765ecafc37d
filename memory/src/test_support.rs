//! Helpers shared by the unit tests.

use crate::{NewEntry, Store};

pub(crate) fn new_entry(number: u64) -> NewEntry {
    NewEntry {
        actor: if number.is_multiple_of(2) {
            "scheduler"
        } else {
            "operator:ana"
        }
        .to_owned(),
        kind: if number.is_multiple_of(3) {
            "deploy.finished"
        } else {
            "check.ran"
        }
        .to_owned(),
        subject: format!("service-{number}"),
        body: serde_json::json!({ "number": number, "zeta": "last key", "alpha": ["first", number] }),
    }
}

pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A store whose journal holds entries 1..=count.
pub(crate) fn store_with_entries(count: u64) -> (tempfile::TempDir, Store) {
    let (dir, store) = temp_store();
    store
        .journal()
        .append_many_blocking((1..=count).map(new_entry).collect())
        .unwrap();
    (dir, store)
}

use std::sync::mpsc;

use chrono::DateTime;

use super::*;
use crate::journal::JOURNAL_TREE;
use crate::series::SeriesKey;
use crate::test_support::{new_entry, store_with_entries, temp_store};
use crate::{JournalEntry, ProblemKind, read_checkpoints};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn second_open_of_a_data_dir_in_use_is_locked() {
    let (dir, _store) = temp_store();
    let error = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, StoreError::Locked { path } if path == dir.path()),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("in use by another process"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn dropping_the_last_clone_releases_the_lock() {
    let (dir, store) = temp_store();
    let clone = store.clone();
    drop(store);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    drop(clone);
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(reopened.data_dir(), dir.path());
    reopened.flush().unwrap();
}

#[test]
fn snapshot_while_appending_restores_a_consistent_store() {
    let (_dir, store) = store_with_entries(20);
    store
        .series()
        .append(
            &SeriesKey::new("disk_free"),
            at("2025-01-01T00:00:00Z"),
            0.5,
        )
        .unwrap();
    store.state().put("agent/cursor", &17u64).unwrap();
    store.write_checkpoint().unwrap();

    let (started, wait_started) = mpsc::channel();
    let appender = {
        let store = store.clone();
        std::thread::spawn(move || {
            for number in 0..200u64 {
                store.journal().append_blocking(new_entry(number)).unwrap();
                let series = SeriesKey::new("appended");
                store
                    .series()
                    .append(
                        &series,
                        at("2025-01-01T00:00:00Z") + chrono::Duration::seconds(number as i64),
                        number as f64,
                    )
                    .unwrap();
                if number == 10 {
                    started.send(()).unwrap();
                }
            }
        })
    };
    wait_started.recv().unwrap();
    let snapshot_dir = tempfile::tempdir().unwrap();
    let snapshot_path = snapshot_dir.path().join("snap");
    let manifest = store.snapshot(&snapshot_path).unwrap();
    appender.join().unwrap();

    assert!(manifest.journal_entries >= 31, "{manifest:?}");
    assert_eq!(
        manifest.trees.get(JOURNAL_TREE),
        Some(&manifest.journal_entries)
    );
    // Journal and series were written in lockstep, so the snapshot cut both at the same point.
    let appended_journal = manifest.journal_entries - 20;
    let appended_series = manifest.trees.get("series").copied().unwrap_or_default() - 1;
    assert!(
        appended_series == appended_journal || appended_series + 1 == appended_journal,
        "{manifest:?}"
    );
    assert!(snapshot_path.join("manifest.json").is_file());
    assert_eq!(
        read_checkpoints(&snapshot_path.join(crate::checkpoint::CHECKPOINTS_FILE))
            .unwrap()
            .len(),
        1
    );

    let restored_dir = tempfile::tempdir().unwrap();
    let restored_manifest = Store::restore(&snapshot_path, restored_dir.path(), false).unwrap();
    assert_eq!(restored_manifest.journal_entries, manifest.journal_entries);
    let restored = Store::open(restored_dir.path()).unwrap();
    let checkpoints = read_checkpoints(
        &restored_dir
            .path()
            .join(crate::checkpoint::CHECKPOINTS_FILE),
    )
    .unwrap();
    let report = restored.journal().verify(&checkpoints).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, manifest.journal_entries);
    assert_eq!(restored.journal().len(), manifest.journal_entries);
    assert_eq!(report.head_hash, manifest.head_hash);
    assert_eq!(
        restored.state().get::<u64>("agent/cursor").unwrap(),
        Some(17)
    );
    assert_eq!(
        restored
            .series()
            .latest(&SeriesKey::new("disk_free"))
            .unwrap()
            .unwrap()
            .value,
        0.5
    );
    assert_eq!(restored.series().list().unwrap().len(), 2);
    // The restored journal keeps growing from its head.
    let next = restored.journal().append_blocking(new_entry(0)).unwrap();
    assert_eq!(next.seq, manifest.journal_entries + 1);
}

#[test]
fn snapshot_refuses_a_non_empty_destination() {
    let (_dir, store) = store_with_entries(1);
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("keep.txt"), "mine").unwrap();
    let error = store.snapshot(dest.path()).unwrap_err();
    assert!(
        matches!(&error, StoreError::AlreadyExists { path, .. } if path == dest.path()),
        "{error:?}"
    );
    // An existing empty directory is fine.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(store.snapshot(empty.path()).unwrap().journal_entries, 1);
}

fn snapshot_of(entries: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (_dir, store) = store_with_entries(entries);
    let snapshot_dir = tempfile::tempdir().unwrap();
    let path = snapshot_dir.path().join("snap");
    store.snapshot(&path).unwrap();
    (snapshot_dir, path)
}

#[test]
fn restore_over_existing_data_needs_force_and_moves_it_aside() {
    let (_snapshot_dir, snapshot) = snapshot_of(5);
    let data_dir = tempfile::tempdir().unwrap();
    {
        let old = Store::open(data_dir.path()).unwrap();
        old.journal()
            .append_many_blocking((1..=9).map(new_entry).collect())
            .unwrap();
        old.write_checkpoint().unwrap();
    }

    let error = Store::restore(&snapshot, data_dir.path(), false).unwrap_err();
    assert!(
        matches!(error, StoreError::AlreadyExists { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("force"), "{error}");

    Store::restore(&snapshot, data_dir.path(), true).unwrap();
    let names: Vec<String> = std::fs::read_dir(data_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|name| name.starts_with("store.replaced-")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|name| name.starts_with("checkpoints.jsonl.replaced-")),
        "{names:?}"
    );
    let restored = Store::open(data_dir.path()).unwrap();
    assert_eq!(restored.journal().len(), 5);
    // The old checkpoint (count 9) was moved aside, so it does not flag the restored journal.
    let checkpoints =
        read_checkpoints(&data_dir.path().join(crate::checkpoint::CHECKPOINTS_FILE)).unwrap();
    assert!(restored.journal().verify(&checkpoints).unwrap().is_ok());
}

#[test]
fn restore_refuses_a_data_dir_in_use() {
    let (_snapshot_dir, snapshot) = snapshot_of(2);
    let (data_dir, running) = store_with_entries(1);
    let error = Store::restore(&snapshot, data_dir.path(), true).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert_eq!(running.journal().len(), 1);
}

#[test]
fn restore_refuses_a_snapshot_whose_journal_does_not_verify() {
    let (_snapshot_dir, snapshot) = snapshot_of(4);
    {
        let db = super::open_db(&snapshot.join(STORE_DIR), &snapshot).unwrap();
        let tree = db.open_tree(JOURNAL_TREE).unwrap();
        let mut entry: JournalEntry =
            serde_json::from_slice(&tree.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        entry.actor = "someone else".to_owned();
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&entry).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let data_dir = tempfile::tempdir().unwrap();
    let error = Store::restore(&snapshot, data_dir.path(), false).unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidSnapshot { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("does not verify") && message.contains("entry #2"),
        "{message}"
    );
    assert!(!data_dir.path().join(STORE_DIR).exists());
}

#[test]
fn restore_refuses_a_directory_without_manifest() {
    let empty = tempfile::tempdir().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let error = Store::restore(empty.path(), data_dir.path(), false).unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidSnapshot { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("manifest.json"), "{error}");
}

#[test]
fn write_checkpoint_then_tail_loss_is_detected_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .journal()
            .append_many_blocking((1..=6).map(new_entry).collect())
            .unwrap();
        store.write_checkpoint().unwrap();
    }
    {
        let db = super::open_db(&dir.path().join(STORE_DIR), dir.path()).unwrap();
        db.open_tree(JOURNAL_TREE)
            .unwrap()
            .remove(6u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.journal().len(), 5);
    let checkpoints =
        read_checkpoints(&dir.path().join(crate::checkpoint::CHECKPOINTS_FILE)).unwrap();
    let problem = store
        .journal()
        .verify(&checkpoints)
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(
        problem.kind,
        ProblemKind::Truncated {
            checkpoint_count: 6,
            found: 5
        }
    );
}

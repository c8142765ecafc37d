use super::*;
use crate::test_support::store_with_entries;

#[test]
fn write_checkpoint_appends_lines_that_read_back() {
    let (dir, store) = store_with_entries(3);
    let first = store.write_checkpoint().unwrap();
    store
        .journal()
        .append_blocking(crate::test_support::new_entry(4))
        .unwrap();
    let second = store.write_checkpoint().unwrap();
    assert_eq!((first.count, second.count), (3, 4));
    assert_eq!(second.head_hash, store.journal().head().unwrap().head_hash);
    let read = read_checkpoints(&dir.path().join(CHECKPOINTS_FILE)).unwrap();
    assert_eq!(read, vec![first, second]);
}

#[test]
fn empty_journal_checkpoint_uses_the_genesis_hash() {
    let (_dir, store) = crate::test_support::temp_store();
    let checkpoint = store.write_checkpoint().unwrap();
    assert_eq!(
        (checkpoint.count, checkpoint.head_hash.as_str()),
        (0, crate::GENESIS_HASH)
    );
    assert!(store.journal().verify(&[checkpoint]).unwrap().is_ok());
}

#[test]
fn missing_file_means_no_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        read_checkpoints(&dir.path().join("absent.jsonl")).unwrap(),
        Vec::new()
    );
}

#[test]
fn bad_line_is_reported_with_file_and_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CHECKPOINTS_FILE);
    let good = r#"{"count":1,"head_hash":"ab","at":"2025-01-01T00:00:00Z"}"#;
    std::fs::write(&path, format!("{good}\n\n{good}\n{{\"count\":\"two\"}}\n")).unwrap();
    let error = read_checkpoints(&path).unwrap_err();
    assert!(
        matches!(error, StoreError::BadCheckpoint { line: 4, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}:4: ", path.display())),
        "{message}"
    );
}

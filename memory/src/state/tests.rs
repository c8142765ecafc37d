use std::collections::BTreeMap;

use crate::StoreError;
use crate::test_support::temp_store;

#[test]
fn put_get_and_delete_round_trip() {
    let (_dir, store) = temp_store();
    let state = store.state();
    let value: BTreeMap<String, u32> = [("retries".to_owned(), 3)].into();
    state.put("collector/disk", &value).unwrap();
    assert_eq!(
        state
            .get::<BTreeMap<String, u32>>("collector/disk")
            .unwrap(),
        Some(value)
    );
    state.put("collector/disk", &"replaced").unwrap();
    assert_eq!(
        state.get::<String>("collector/disk").unwrap().as_deref(),
        Some("replaced")
    );
    state.delete("collector/disk").unwrap();
    assert_eq!(state.get::<String>("collector/disk").unwrap(), None);
    state.delete("never/there").unwrap();
}

#[test]
fn scan_prefix_returns_matching_keys_in_order() {
    let (_dir, store) = temp_store();
    let state = store.state();
    for (key, value) in [("agent/b", 2), ("agent/a", 1), ("agents", 9), ("tool/x", 3)] {
        state.put(key, &value).unwrap();
    }
    let found: Vec<(String, i32)> = state.scan_prefix("agent/").unwrap();
    assert_eq!(
        found,
        vec![("agent/a".to_owned(), 1), ("agent/b".to_owned(), 2)]
    );
    assert_eq!(state.scan_prefix::<i32>("").unwrap().len(), 4);
}

#[test]
fn wrong_type_is_a_decode_error_naming_the_key() {
    let (_dir, store) = temp_store();
    store.state().put("cursor", &"not a number").unwrap();
    let error = store.state().get::<u64>("cursor").unwrap_err();
    assert!(matches!(error, StoreError::Decode { .. }), "{error:?}");
    assert!(
        error.to_string().contains("state key \"cursor\""),
        "{error}"
    );
}

#[test]
fn values_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = crate::Store::open(dir.path()).unwrap();
        store.state().put("k", &42u8).unwrap();
    }
    let store = crate::Store::open(dir.path()).unwrap();
    assert_eq!(store.state().get::<u8>("k").unwrap(), Some(42));
}

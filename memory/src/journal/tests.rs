use std::sync::Arc;

use chrono::{Duration, SecondsFormat};
use sha2::{Digest, Sha256};

use super::*;
use crate::Store;
use crate::test_support::{new_entry, store_with_entries, temp_store};

fn raw(journal: &Journal, seq: u64) -> sled::IVec {
    journal.tree.get(seq_key(seq)).unwrap().unwrap()
}

fn problem(journal: &Journal, checkpoints: &[Checkpoint]) -> ChainProblem {
    journal.verify(checkpoints).unwrap().problem.unwrap()
}

#[tokio::test]
async fn append_assigns_contiguous_seqs_and_links_hashes() {
    let (_dir, store) = temp_store();
    let journal = store.journal();
    assert!(journal.is_empty());
    assert_eq!(journal.head(), None);

    let first = journal.append(new_entry(1)).await.unwrap();
    let second = journal.append(new_entry(2)).await.unwrap();
    let third = journal.append_blocking(new_entry(3)).unwrap();

    assert_eq!([first.seq, second.seq, third.seq], [1, 2, 3]);
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(third.prev_hash, second.hash);
    assert_eq!(third.hash, third.compute_hash());
    assert_eq!(journal.len(), 3);
    let head = journal.head().unwrap();
    assert_eq!(
        (head.count, head.head_hash.as_str(), head.at),
        (3, third.hash.as_str(), third.at)
    );
    assert_eq!(journal.get(2).unwrap(), Some(second));
    assert_eq!(journal.get(4).unwrap(), None);
}

#[test]
fn hash_is_sha256_of_prev_hash_newline_and_sorted_canonical_json() {
    let (_dir, store) = store_with_entries(2);
    let entry = store.journal().get(2).unwrap().unwrap();
    // Keys sorted by hand, at every level: the canonical form must not depend on whether
    // serde_json preserves insertion order (cedar-policy turns that feature on in the workspace).
    let text = format!(
        r#"{{"actor":{},"at":{},"body":{},"kind":{},"seq":{},"subject":{}}}"#,
        serde_json::to_string(&entry.actor).unwrap(),
        serde_json::to_string(&entry.at.to_rfc3339_opts(SecondsFormat::Nanos, true)).unwrap(),
        serde_json::to_string(&super::Sorted(&entry.body)).unwrap(),
        serde_json::to_string(&entry.kind).unwrap(),
        entry.seq,
        serde_json::to_string(&entry.subject).unwrap(),
    );
    assert!(text.starts_with(r#"{"actor":"scheduler","at":""#), "{text}");
    assert!(
        text.contains(r#""body":{"alpha":["first",2],"number":2,"zeta":"last key"}"#),
        "{text}"
    );
    let mut hasher = Sha256::new();
    hasher.update(entry.prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(text.as_bytes());
    assert_eq!(entry.hash, hex::encode(hasher.finalize()));
}

#[test]
fn reopening_continues_the_chain_from_the_stored_head() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = Store::open(dir.path()).unwrap();
        store
            .journal()
            .append_many_blocking((1..=5).map(new_entry).collect())
            .unwrap();
        store.journal().head().unwrap()
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.journal().head().unwrap(), before);
    let next = store.journal().append_blocking(new_entry(6)).unwrap();
    assert_eq!(next.seq, 6);
    assert_eq!(next.prev_hash, before.head_hash);
    let report = store.journal().verify(&[before]).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 6);
    assert_eq!(report.head_hash, Some(next.hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_unique_seqs_in_one_valid_chain() {
    let (_dir, store) = temp_store();
    let mut tasks = Vec::new();
    for task in 0..64u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for number in 0..10 {
                seqs.push(
                    store
                        .journal()
                        .append(new_entry(task * 100 + number))
                        .await
                        .unwrap()
                        .seq,
                );
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=640).collect::<Vec<_>>());
    let report = store.journal().verify(&[]).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, 640);
}

#[test]
fn append_many_is_one_contiguous_run() {
    let (_dir, store) = store_with_entries(2);
    let made = store
        .journal()
        .append_many_blocking((3..=7).map(new_entry).collect())
        .unwrap();
    assert_eq!(
        made.iter().map(|entry| entry.seq).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7]
    );
    assert_eq!(
        made[0].prev_hash,
        store.journal().get(2).unwrap().unwrap().hash
    );
    assert_eq!(
        store.journal().append_many_blocking(Vec::new()).unwrap(),
        Vec::new()
    );
    assert_eq!(store.journal().len(), 7);
}

#[test]
fn verify_accepts_an_untouched_chain_and_matching_checkpoints() {
    let (_dir, store) = store_with_entries(10);
    let checkpoint = store.write_checkpoint().unwrap();
    let report = store
        .journal()
        .verify(std::slice::from_ref(&checkpoint))
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        (report.entries, report.head_hash),
        (10, Some(checkpoint.head_hash))
    );
}

#[test]
fn verify_reports_an_edited_body() {
    let (_dir, store) = store_with_entries(10);
    let journal = store.journal();
    let mut entry: JournalEntry = serde_json::from_slice(&raw(journal, 5)).unwrap();
    entry.body = serde_json::json!({ "number": 5, "approved": true });
    journal
        .tree
        .insert(seq_key(5), serde_json::to_vec(&entry).unwrap())
        .unwrap();

    let report = journal.verify(&[]).unwrap();
    assert_eq!(report.entries, 4);
    let problem = report.problem.unwrap();
    assert_eq!((problem.seq, problem.kind), (5, ProblemKind::Edited));
    assert!(
        problem.message.contains("entry #5") && problem.message.contains("edited"),
        "{}",
        problem.message
    );
}

#[test]
fn verify_reports_a_removed_middle_entry_as_broken_link() {
    let (_dir, store) = store_with_entries(10);
    store.journal().tree.remove(seq_key(5)).unwrap();
    let problem = problem(store.journal(), &[]);
    assert_eq!((problem.seq, problem.kind), (6, ProblemKind::BrokenLink));
    assert!(problem.message.contains("removed"), "{}", problem.message);
}

#[test]
fn verify_reports_swapped_entries_as_broken_link_at_the_first() {
    let (_dir, store) = store_with_entries(10);
    let journal = store.journal();
    let (fourth, fifth) = (raw(journal, 4), raw(journal, 5));
    journal.tree.insert(seq_key(4), fifth).unwrap();
    journal.tree.insert(seq_key(5), fourth).unwrap();
    let problem = problem(journal, &[]);
    assert_eq!((problem.seq, problem.kind), (4, ProblemKind::BrokenLink));
}

#[test]
fn verify_reports_a_rewritten_hash_as_broken_link_on_the_next_entry() {
    let (_dir, store) = store_with_entries(10);
    let journal = store.journal();
    // Edit entry 3 and recompute its hash, as a careful forger would.
    let mut entry: JournalEntry = serde_json::from_slice(&raw(journal, 3)).unwrap();
    entry.subject = "nothing to see".to_owned();
    entry.hash = entry.compute_hash();
    journal
        .tree
        .insert(seq_key(3), serde_json::to_vec(&entry).unwrap())
        .unwrap();
    let problem = problem(journal, &[]);
    assert_eq!((problem.seq, problem.kind), (4, ProblemKind::BrokenLink));
}

#[test]
fn verify_reports_a_removed_tail_against_a_checkpoint() {
    let (_dir, store) = store_with_entries(10);
    let checkpoint = store.write_checkpoint().unwrap();
    for seq in 8..=10 {
        store.journal().tree.remove(seq_key(seq)).unwrap();
    }
    assert!(
        store.journal().verify(&[]).unwrap().is_ok(),
        "without checkpoints a cut tail is invisible"
    );
    let report = store.journal().verify(&[checkpoint]).unwrap();
    assert_eq!(report.entries, 7);
    let problem = report.problem.unwrap();
    assert_eq!(problem.seq, 8);
    assert_eq!(
        problem.kind,
        ProblemKind::Truncated {
            checkpoint_count: 10,
            found: 7
        }
    );
}

#[test]
fn verify_reports_a_checkpoint_that_disagrees_with_the_chain() {
    let (_dir, store) = store_with_entries(10);
    let mut checkpoint = store.write_checkpoint().unwrap();
    checkpoint.count = 6;
    let problem = problem(store.journal(), &[checkpoint]);
    assert_eq!(
        (problem.seq, problem.kind),
        (6, ProblemKind::CheckpointMismatch { count: 6 })
    );
}

#[test]
fn verify_reports_undecodable_bytes() {
    let (_dir, store) = store_with_entries(10);
    store
        .journal()
        .tree
        .insert(seq_key(3), &b"{not json"[..])
        .unwrap();
    let problem = problem(store.journal(), &[]);
    assert_eq!((problem.seq, problem.kind), (3, ProblemKind::Unreadable));
}

#[test]
fn verify_reports_an_entry_moved_to_another_key_as_sequence_gap() {
    let (_dir, store) = store_with_entries(10);
    let journal = store.journal();
    let fifth = raw(journal, 5);
    for seq in 5..=10 {
        journal.tree.remove(seq_key(seq)).unwrap();
    }
    journal.tree.insert(seq_key(7), fifth).unwrap();
    let problem = problem(journal, &[]);
    assert_eq!(
        (problem.seq, problem.kind),
        (
            7,
            ProblemKind::SequenceGap {
                expected: 5,
                found: 7
            }
        )
    );
}

#[test]
fn problem_kind_serializes_with_a_kind_tag() {
    let json = serde_json::to_value(ProblemKind::SequenceGap {
        expected: 5,
        found: 7,
    })
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "kind": "sequence_gap", "expected": 5, "found": 7 })
    );
}

fn seqs(entries: &[JournalEntry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.seq).collect()
}

#[test]
fn query_filters_by_actor_kind_and_text() {
    let (_dir, store) = store_with_entries(12);
    let journal = store.journal();
    let query = |query: JournalQuery| seqs(&journal.query(&query).unwrap());

    assert_eq!(query(JournalQuery::default()), (1..=12).collect::<Vec<_>>());
    assert_eq!(
        query(JournalQuery {
            actor: Some("scheduler".into()),
            ..Default::default()
        }),
        [2, 4, 6, 8, 10, 12]
    );
    assert_eq!(
        query(JournalQuery {
            kind: Some("deploy.finished".into()),
            ..Default::default()
        }),
        [3, 6, 9, 12]
    );
    assert_eq!(
        query(JournalQuery {
            kind: Some("deploy.*".into()),
            ..Default::default()
        }),
        [3, 6, 9, 12]
    );
    assert_eq!(
        query(JournalQuery {
            kind: Some("deploy".into()),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    // Subject, case-insensitive.
    assert_eq!(
        query(JournalQuery {
            text: Some("SERVICE-11".into()),
            ..Default::default()
        }),
        [11]
    );
    // Body JSON.
    assert_eq!(
        query(JournalQuery {
            text: Some("\"number\":7".into()),
            ..Default::default()
        }),
        [7]
    );
    assert_eq!(
        query(JournalQuery {
            actor: Some("scheduler".into()),
            kind: Some("deploy.*".into()),
            ..Default::default()
        }),
        [6, 12]
    );
}

#[test]
fn query_pages_with_after_seq_limit_and_newest_first() {
    let (_dir, store) = store_with_entries(20);
    let journal = store.journal();
    let query = |query: JournalQuery| seqs(&journal.query(&query).unwrap());

    assert_eq!(
        query(JournalQuery {
            after_seq: Some(15),
            ..Default::default()
        }),
        [16, 17, 18, 19, 20]
    );
    assert_eq!(
        query(JournalQuery {
            after_seq: Some(5),
            limit: Some(3),
            ..Default::default()
        }),
        [6, 7, 8]
    );
    assert_eq!(
        query(JournalQuery {
            limit: Some(3),
            newest_first: true,
            ..Default::default()
        }),
        [20, 19, 18]
    );
    assert_eq!(
        query(JournalQuery {
            after_seq: Some(17),
            limit: Some(10),
            newest_first: true,
            ..Default::default()
        }),
        [20, 19, 18]
    );
    assert_eq!(
        query(JournalQuery {
            actor: Some("scheduler".into()),
            limit: Some(2),
            newest_first: true,
            ..Default::default()
        }),
        [20, 18]
    );
    assert_eq!(
        query(JournalQuery {
            limit: Some(0),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    assert_eq!(
        query(JournalQuery {
            after_seq: Some(u64::MAX),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
}

#[test]
fn query_filters_by_time_with_inclusive_since_and_exclusive_until() {
    let (_dir, store) = store_with_entries(5);
    let journal = store.journal();
    let all = journal.query(&JournalQuery::default()).unwrap();
    let since = all[1].at;
    let until = all[3].at;
    let found = journal
        .query(&JournalQuery {
            since: Some(since),
            until: Some(until),
            ..Default::default()
        })
        .unwrap();
    // Entries written in the same instant are indistinguishable by time; compare against times.
    let expected: Vec<u64> = all
        .iter()
        .filter(|entry| entry.at >= since && entry.at < until)
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(seqs(&found), expected);
    assert!(found.iter().any(|entry| entry.seq == 2));
    let later = journal
        .query(&JournalQuery {
            since: Some(all[4].at + Duration::seconds(1)),
            ..Default::default()
        })
        .unwrap();
    assert!(later.is_empty());
}

#[test]
fn query_deserializes_from_partial_json() {
    let query: JournalQuery = serde_json::from_str(r#"{"kind":"deploy.*","limit":5}"#).unwrap();
    assert_eq!(
        (query.kind.as_deref(), query.limit, query.newest_first),
        (Some("deploy.*"), Some(5), false)
    );
}

#[test]
fn jsonl_export_round_trips() {
    let (_dir, store) = store_with_entries(3);
    let entries = store.journal().query(&JournalQuery::default()).unwrap();
    let mut out = Vec::new();
    write_jsonl(&entries, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let parsed: Vec<JournalEntry> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(parsed, entries);
}

#[test]
fn csv_export_has_header_and_compact_json_body() {
    let (_dir, store) = store_with_entries(2);
    let entries = store.journal().query(&JournalQuery::default()).unwrap();
    let mut out = Vec::new();
    write_csv(&entries, &mut out).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "seq",
            "at",
            "actor",
            "kind",
            "subject",
            "body",
            "prev_hash",
            "hash"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[1][0], "2");
    assert_eq!(
        &rows[1][5],
        r#"{"alpha":["first",2],"number":2,"zeta":"last key"}"#
    );
    assert_eq!(&rows[1][6], entries[0].hash);
    assert_eq!(&rows[1][7], entries[1].hash);
}

#[test]
fn appends_after_the_store_is_shared_across_threads_stay_durable_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for number in 0..25 {
                        store
                            .journal()
                            .append_blocking(new_entry(thread * 100 + number))
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.journal().len(), 100);
    assert!(store.journal().verify(&[]).unwrap().is_ok());
}

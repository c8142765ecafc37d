//! `command-center audit ...` on a data directory: tail, show, search, export, and verify
//! naming the first edited, dropped, reordered or truncated entry.

use memory::{NewEntry, Store};

use crate::support::{free_port, run_cli, write_config};

fn populate(data: &std::path::Path, count: usize) {
    let store = Store::open(data).unwrap();
    let entries = (1..=count)
        .map(|n| NewEntry {
            actor: if n % 2 == 0 { "market" } else { "notifier" }.to_owned(),
            kind: if n % 3 == 0 {
                "alert.firing"
            } else {
                "observation.batch"
            }
            .to_owned(),
            subject: format!("subject-{n}"),
            body: serde_json::json!({ "n": n, "text": if n == 7 { "TON fell" } else { "quiet" } }),
        })
        .collect();
    store.journal().append_many_blocking(entries).unwrap();
    store.write_checkpoint().unwrap();
}

fn setup(count: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), None);
    populate(&dir.path().join("data"), count);
    (dir, config.display().to_string())
}

#[test]
fn tail_show_search_and_export() {
    let (dir, config) = setup(30);
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str(), "audit"];
        all.extend_from_slice(args);
        run_cli(dir.path(), &all)
    };

    let (code, stdout, stderr) = cli(&["tail", "-n", "3"]);
    assert_eq!(code, 0, "{stderr}");
    let seqs: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seqs, ["#28", "#29", "#30"], "{stdout}");

    let (code, stdout, _) = cli(&["show", "7"]);
    assert_eq!(code, 0);
    let entry: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(entry["seq"], 7);
    assert_eq!(entry["body"]["text"], "TON fell");
    let (code, _, stderr) = cli(&["show", "99"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no journal entry #99; the journal has 30 entries"),
        "{stderr}"
    );

    let (code, stdout, stderr) = cli(&["search", "--kind", "alert.*", "--actor", "market"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 5, "n divisible by 6: {stdout}");
    let (_, stdout, _) = cli(&["search", "--text", "ton FELL"]);
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("#7 "), "{stdout}");
    let (_, stdout, _) = cli(&["search", "--since", "1h", "--limit", "4"]);
    assert_eq!(stdout.lines().count(), 4);
    let (_, stdout, _) = cli(&["search", "--until", "2000-01-01"]);
    assert_eq!(stdout.lines().count(), 0);
    let (code, _, stderr) = cli(&["search", "--since", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--since"), "{stderr}");

    let csv = dir.path().join("audit.csv");
    let (code, _, stderr) = cli(&[
        "export",
        "--format",
        "csv",
        "--output",
        csv.to_str().unwrap(),
        "--actor",
        "market",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("seq,at,actor,kind,subject,body,prev_hash,hash\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 16, "header + 15 market entries");

    let (code, stdout, _) = cli(&["export", "--format", "jsonl"]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[29]["seq"], 30);
}

fn tamper(data: &std::path::Path, change: impl FnOnce(&sled::Tree)) {
    // sled releases the lock of the store just closed from a background thread; wait for it
    // (bounded), as `memory::Store::open` does.
    let mut attempts = 0;
    let db = loop {
        match sled::open(data.join("store")) {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock") && attempts < 80 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            opened => break opened.unwrap(),
        }
    };
    let tree = db.open_tree("journal").unwrap();
    change(&tree);
    db.flush().unwrap();
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn verify(dir: &tempfile::TempDir, config: &str) -> (i32, String) {
    let (code, stdout, stderr) = run_cli(dir.path(), &["--config", config, "audit", "verify"]);
    (code, format!("{stdout}{stderr}"))
}

#[test]
fn verify_passes_on_an_untouched_journal() {
    let (dir, config) = setup(20);
    let (code, output) = verify(&dir, &config);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("journal verified: 20 entries"), "{output}");
    assert!(output.contains("consistent with 1 checkpoint"), "{output}");
}

#[test]
fn verify_names_an_edited_entry() {
    let (dir, config) = setup(20);
    tamper(&dir.path().join("data"), |tree| {
        let raw = tree.get(key(12)).unwrap().unwrap();
        let mut entry: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        entry["body"]["n"] = serde_json::json!(1200);
        tree.insert(key(12), serde_json::to_vec(&entry).unwrap())
            .unwrap();
    });
    let (code, output) = verify(&dir, &config);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("FAILED at entry #12"), "{output}");
}

#[test]
fn verify_names_a_dropped_entry() {
    let (dir, config) = setup(20);
    tamper(&dir.path().join("data"), |tree| {
        tree.remove(key(9)).unwrap();
    });
    let (code, output) = verify(&dir, &config);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("FAILED at entry #10"), "{output}");
}

#[test]
fn verify_names_reordered_entries() {
    let (dir, config) = setup(20);
    tamper(&dir.path().join("data"), |tree| {
        let a = tree.get(key(4)).unwrap().unwrap();
        let b = tree.get(key(5)).unwrap().unwrap();
        tree.insert(key(4), b).unwrap();
        tree.insert(key(5), a).unwrap();
    });
    let (code, output) = verify(&dir, &config);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("FAILED at entry #4"), "{output}");
}

#[test]
fn verify_names_a_truncated_tail_against_an_external_checkpoint() {
    let (dir, config) = setup(20);
    let offsite = dir.path().join("offsite-checkpoints.jsonl");
    std::fs::copy(dir.path().join("data/checkpoints.jsonl"), &offsite).unwrap();
    tamper(&dir.path().join("data"), |tree| {
        for seq in 18..=20 {
            tree.remove(key(seq)).unwrap();
        }
    });
    // Someone also rewrote the local checkpoints file.
    std::fs::write(dir.path().join("data/checkpoints.jsonl"), "").unwrap();
    let (code, output) = verify(&dir, &config);
    assert_eq!(
        code, 0,
        "without the offsite copy the cut is invisible: {output}"
    );
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &[
            "--config",
            &config,
            "audit",
            "verify",
            "--checkpoints",
            offsite.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAILED at entry #18"), "{stdout}");
}

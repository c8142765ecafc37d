//! Journal throughput: durable appends from one and from 64 concurrent writers, then bulk load
//! and verify of N entries (`JOURNAL_BENCH_VERIFY_N`, default 1,000,000). Prints one JSON object.

use std::time::Instant;

use memory::{NewEntry, Store};

const SEQUENTIAL_APPENDS: u64 = 2_000;
const CONCURRENT_TASKS: u64 = 64;
const CONCURRENT_APPENDS: u64 = 20_000;
const BULK_CHUNK: u64 = 10_000;

fn entry(number: u64) -> NewEntry {
    NewEntry {
        actor: "bench".to_owned(),
        kind: "bench.append".to_owned(),
        subject: format!("item-{number}"),
        body: serde_json::json!({ "number": number, "note": "benchmark entry" }),
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    (count as f64 / seconds).round()
}

fn main() -> anyhow::Result<()> {
    let verify_n: u64 = match std::env::var("JOURNAL_BENCH_VERIFY_N") {
        Ok(text) => text.parse()?,
        Err(_) => 1_000_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let sequential_dir = tempfile::tempdir()?;
    let store = Store::open(sequential_dir.path())?;
    let started = Instant::now();
    runtime.block_on(async {
        for number in 0..SEQUENTIAL_APPENDS {
            store.journal().append(entry(number)).await?;
        }
        anyhow::Ok(())
    })?;
    let sequential_seconds = started.elapsed().as_secs_f64();
    drop(store);

    let concurrent_dir = tempfile::tempdir()?;
    let store = Store::open(concurrent_dir.path())?;
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CONCURRENT_TASKS)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Task t takes numbers t, t + 64, t + 128, ... so the total is exact.
                    for number in (task..CONCURRENT_APPENDS).step_by(CONCURRENT_TASKS as usize) {
                        store.journal().append(entry(number)).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    })?;
    let concurrent_seconds = started.elapsed().as_secs_f64();
    let concurrent_total = store.journal().len();
    drop(store);

    let bulk_dir = tempfile::tempdir()?;
    let store = Store::open(bulk_dir.path())?;
    let started = Instant::now();
    let mut loaded = 0;
    while loaded < verify_n {
        let chunk = BULK_CHUNK.min(verify_n - loaded);
        store
            .journal()
            .append_many_blocking((loaded..loaded + chunk).map(entry).collect())?;
        loaded += chunk;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = store.journal().verify(&[])?;
    let verify_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.problem.is_none() && report.entries == verify_n,
        "verify failed: {report:?}"
    );

    let result = serde_json::json!({
        "sequential_appends": SEQUENTIAL_APPENDS,
        "sequential_durable_appends_per_sec": per_second(SEQUENTIAL_APPENDS, sequential_seconds),
        "concurrent_tasks": CONCURRENT_TASKS,
        "concurrent_appends": concurrent_total,
        "concurrent_durable_appends_per_sec": per_second(concurrent_total, concurrent_seconds),
        "verify_n": verify_n,
        "bulk_load_seconds": (load_seconds * 1000.0).round() / 1000.0,
        "bulk_load_entries_per_sec": per_second(verify_n, load_seconds),
        "verify_seconds": (verify_seconds * 1000.0).round() / 1000.0,
        "verify_entries_per_sec": per_second(verify_n, verify_seconds),
    });
    println!("{result}");
    Ok(())
}

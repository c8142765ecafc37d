//! Embedding throughput: the local model (all-MiniLM-L6-v2 through candle, `MiniLm::embed`
//! called directly) and the 384-dim hashing embedder, in sentences per second at batch sizes 1
//! and 32, over the same N operations-style sentences of 8 to 20 words (`EMBED_BENCH_N`,
//! default 256). Each run is preceded by one warm-up batch. Prints one JSON object.
//!
//! The model is read from `COMMAND_CENTER_MINILM_DIR` or `target/models/all-minilm-l6-v2`
//! (`.ci/fetch-models` puts it there); without it the `minilm` entry says why it was skipped.
//!
//! Run: `cargo bench -p memory --bench embedder`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use memory::minilm::MiniLm;
use memory::vector::{Embedder, HashingEmbedder};
use serde_json::{Value, json};

const BATCHES: [usize; 2] = [1, 32];
const WORDS: [&str; 40] = [
    "validator",
    "node",
    "is",
    "out",
    "of",
    "sync",
    "with",
    "the",
    "masterchain",
    "price",
    "dropped",
    "ten",
    "percent",
    "in",
    "an",
    "hour",
    "disk",
    "on",
    "nearly",
    "full",
    "restart",
    "service",
    "election",
    "stake",
    "returned",
    "bonus",
    "invoice",
    "paid",
    "late",
    "alert",
    "firing",
    "since",
    "yesterday",
    "memory",
    "usage",
    "grew",
    "after",
    "upgrade",
    "wallet",
    "balance",
];

/// A fixed sequence (xorshift64*), so every run embeds the same sentences.
fn sentences(n: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|_| {
            let words = 8 + (next() % 13) as usize;
            (0..words)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Sentences per second embedding all of `texts` in batches of `batch`.
fn throughput(
    texts: &[&str],
    batch: usize,
    embed: &dyn Fn(&[&str]) -> anyhow::Result<usize>,
) -> anyhow::Result<Value> {
    embed(&texts[..batch.min(texts.len())])?;
    let started = Instant::now();
    let mut embedded = 0;
    for chunk in texts.chunks(batch) {
        embedded += embed(chunk)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "sentences_per_s": (embedded as f64 / seconds).round(),
        "ms_per_batch": (seconds * 1000.0 / texts.chunks(batch).len() as f64 * 1000.0).round() / 1000.0,
    }))
}

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::var("EMBED_BENCH_N") {
        Ok(text) => text.parse()?,
        Err(_) => 256,
    };
    let owned = sentences(n);
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut report = json!({"sentences": n});

    let hashing = HashingEmbedder::new();
    let mut entry = json!({"id": hashing.id()});
    for batch in BATCHES {
        entry[format!("batch_{batch}")] =
            throughput(&texts, batch, &|chunk| Ok(hashing.embed(chunk)?.len()))?;
    }
    report["hashing"] = entry;

    let dir = std::env::var_os("COMMAND_CENTER_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-minilm-l6-v2")
        });
    let started = Instant::now();
    report["minilm"] = match MiniLm::load(&dir) {
        Ok(model) => {
            let mut entry = json!({
                "id": memory::minilm::EMBEDDER_ID,
                "load_ms": (started.elapsed().as_secs_f64() * 1000.0).round(),
            });
            for batch in BATCHES {
                entry[format!("batch_{batch}")] =
                    throughput(&texts, batch, &|chunk| Ok(model.embed(chunk)?.len()))?;
            }
            entry
        }
        Err(error) => json!({"skipped": format!("{error} (run .ci/fetch-models)")}),
    };
    println!("{report}");
    Ok(())
}

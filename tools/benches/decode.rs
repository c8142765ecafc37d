//! Decoding a mainnet-size validator set (config param 34, 400 entries): time per decode.
//! The BOC is built here with the same encoder the sim uses. Prints one JSON object.

use std::time::Instant;

use tools::ton::config::{
    ConfigParam, ValidatorDescr, ValidatorSet, decode_config_param, encode_validator_set,
};

const VALIDATORS: usize = 400;
const ROUNDS: usize = 200;

fn hex32(seed: usize, salt: u8) -> String {
    (0..32)
        .map(|i| {
            format!(
                "{:02x}",
                (seed.wrapping_mul(31) + i * 7 + usize::from(salt)) as u8
            )
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let validators: Vec<ValidatorDescr> = (0..VALIDATORS)
        .map(|index| ValidatorDescr {
            public_key: hex32(index, 1),
            weight: 1_000_000 + index as u64,
            adnl_address: Some(hex32(index, 2)),
        })
        .collect();
    let set = ValidatorSet {
        utime_since: 1_698_385_672,
        utime_until: 1_698_451_208,
        total: VALIDATORS as u16,
        main: 100,
        total_weight: validators.iter().map(|v| v.weight).sum(),
        validators,
    };
    let boc = encode_validator_set(&set)?;
    let mut nanos = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let decoded = decode_config_param(34, &boc)?;
        nanos.push(started.elapsed().as_nanos());
        match decoded {
            ConfigParam::ValidatorSet { set: decoded, .. } if decoded == set => {}
            other => return Err(format!("decoded something else: {other:?}").into()),
        }
    }
    nanos.sort_unstable();
    let percentile = |p: f64| nanos[((nanos.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
    println!(
        "{}",
        serde_json::json!({
            "bench": "decode_validator_set",
            "validators": VALIDATORS,
            "boc_bytes": boc.len() * 3 / 4,
            "rounds": ROUNDS,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "max_ms": percentile(1.0),
        })
    );
    Ok(())
}

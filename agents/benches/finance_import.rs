//! Statement import throughput: a generated 100,000-row bank CSV (German dialect: `;`, decimal
//! commas, thousands dots, `DD.MM.YYYY`, six category rules by counterparty) parsed, attributed
//! and stored in a real sled ledger in a temporary directory; then the same file again (every
//! row a duplicate); then the monthly report and the 90-day outlook over the 100,000 entries.
//! Prints one JSON object with rows per second and the process's peak RSS (VmHWM).
//!
//! Run: `cargo bench -p agents --bench finance_import` (`FINANCE_BENCH_ROWS` to change the size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::time::Instant;

use agents::finance::FinanceConfig;
use agents::finance::import::{Mapping, StatementMapping, import_statement};

const MAPPING: &str = r#"
account = "bench"
delimiter = ";"
date_format = "%d.%m.%Y"
decimal_separator = ","
thousands_separator = "."
currency = "EUR"
columns = { date = "Datum", amount = "Betrag", description = "Text", counterparty = "Partner" }
[[rules]]
counterparty = "^ton pool"
stream = "validators"
[[rules]]
counterparty = "cocoon"
stream = "cocoon"
[[rules]]
counterparty = "hetzner|ovh|aws"
category = "infrastructure"
[[rules]]
description = "gehalt|salary"
category = "personnel"
[[rules]]
counterparty = "kanzlei"
category = "legal_and_compliance"
[[rules]]
description = "google ads|meta ads"
category = "marketing"
"#;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 * 10.0).round() / 10.0)
}

fn statement(rows: usize) -> String {
    let partners = [
        ("TON Pool", "Auszahlung", 1),
        ("Cocoon Compute", "Rechnung", 1),
        ("Hetzner Online GmbH", "Server", -1),
        ("Mitarbeiter", "Gehalt November", -1),
        ("Kanzlei Meyer", "Beratung", -1),
        ("Google Ireland", "Google Ads", -1),
        ("Bäckerei", "Kaffee", -1),
    ];
    let mut text = String::from("Datum;Partner;Text;Betrag\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for row in 0..rows {
        let date = start + chrono::Days::new((row / 100) as u64);
        let (partner, text_field, sign) = partners[row % partners.len()];
        let cents = 1_000 + (row * 7_919) % 900_000;
        let whole = cents / 100;
        let grouped = if whole >= 1000 {
            format!("{}.{:03}", whole / 1000, whole % 1000)
        } else {
            whole.to_string()
        };
        let amount = format!(
            "{}{grouped},{:02}",
            if sign < 0 { "-" } else { "" },
            cents % 100
        );
        writeln!(
            text,
            "{};{partner};{text_field} {row};{amount}",
            date.format("%d.%m.%Y")
        )
        .unwrap();
    }
    text
}

fn main() {
    let rows: usize = std::env::var("FINANCE_BENCH_ROWS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    let config = FinanceConfig::default();
    let spec: StatementMapping = toml::from_str(MAPPING).unwrap();
    let mapping = Mapping::new(spec, &config).unwrap();
    let csv = statement(rows);
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let rss_before = peak_rss_mib();

    let started = Instant::now();
    let first =
        import_statement(store.ledger(), csv.as_bytes(), "bench.csv", &mapping, false).unwrap();
    let import_seconds = started.elapsed().as_secs_f64();
    assert_eq!(first.new_entries, rows, "{first:?}");

    let started = Instant::now();
    let again =
        import_statement(store.ledger(), csv.as_bytes(), "bench.csv", &mapping, false).unwrap();
    let reimport_seconds = started.elapsed().as_secs_f64();
    assert_eq!(again.duplicates, rows);

    let last_day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
        + chrono::Days::new(((rows - 1) / 100) as u64);
    let rates: Vec<memory::ledger::Rate> = (0..=((rows - 1) / 100) as u64)
        .map(|day| memory::ledger::Rate {
            base: "EUR".to_owned(),
            quote: "USD".to_owned(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day),
            rate: rust_decimal::Decimal::new(110, 2),
        })
        .collect();
    store.ledger().put_rates(&rates).unwrap();
    let started = Instant::now();
    let from = agents::finance::report::parse_month("2025-01").unwrap();
    let to =
        agents::finance::report::parse_month(&agents::finance::report::month_of(last_day)).unwrap();
    let report =
        agents::finance::report::monthly_report(store.ledger(), &config, from, to, last_day)
            .unwrap();
    let report_seconds = started.elapsed().as_secs_f64();
    assert!(report.missing_rates.is_empty());
    let started = Instant::now();
    let outlook =
        agents::finance::outlook::outlook(store.ledger(), &config, last_day, 365, 90).unwrap();
    let outlook_seconds = started.elapsed().as_secs_f64();

    let json = serde_json::json!({
        "bench": "finance::import",
        "rows": rows,
        "csv_bytes": csv.len(),
        "import_seconds": (import_seconds * 1000.0).round() / 1000.0,
        "import_rows_per_second": (rows as f64 / import_seconds).round(),
        "reimport_seconds": (reimport_seconds * 1000.0).round() / 1000.0,
        "reimport_rows_per_second": (rows as f64 / reimport_seconds).round(),
        "attributed": rows - first.unattributed,
        "report_seconds_over_all_entries": (report_seconds * 1000.0).round() / 1000.0,
        "report_months": report.months.len(),
        "outlook_seconds_365d_history_90d_horizon": (outlook_seconds * 1000.0).round() / 1000.0,
        "outlook_series": outlook.series.len(),
        "peak_rss_mib_before": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{}", serde_json::to_string_pretty(&json).unwrap());
}

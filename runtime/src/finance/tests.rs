use agents::finance::FinanceConfig;
use chrono::{Days, NaiveDate, Utc};
use memory::Store;
use memory::ledger::{EntrySource, LedgerEntry, stable_id};
use rust_decimal::Decimal;

use super::{LATEST_BACKTEST, backtest_history, backtest_if_due, parse_rates};

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn revenue(date: NaiveDate, amount: i64) -> LedgerEntry {
    let amount = Decimal::from(amount);
    LedgerEntry {
        id: stable_id("test", date, amount, "USD", "pool", "", 0),
        date,
        amount,
        currency: "USD".to_owned(),
        stream: Some("validators".to_owned()),
        category: None,
        subcategory: None,
        counterparty: "pool".to_owned(),
        description: String::new(),
        source: EntrySource::Manual {
            by: "test".to_owned(),
        },
        tags: Vec::new(),
        recorded_at: Utc::now(),
    }
}

#[test]
fn the_monthly_backtest_runs_once_a_month_and_keeps_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = FinanceConfig::default();
    assert!(!backtest_if_due(&store, &config, day("2026-10-31")).unwrap());

    let entries: Vec<LedgerEntry> = (0..150u64)
        .map(|offset| {
            let date = day("2026-06-01")
                .checked_add_days(Days::new(offset))
                .unwrap();
            // A weekly pattern and deterministic noise (period 23, not a multiple of 7).
            let noise = (offset * 37 % 23) as i64 - 11;
            revenue(
                date,
                1000 + [50, 20, 0, -20, -50, 30, -30][offset as usize % 7] + noise,
            )
        })
        .collect();
    store.ledger().insert_batch(&entries).unwrap();
    assert!(backtest_if_due(&store, &config, day("2026-10-31")).unwrap());
    assert!(!backtest_if_due(&store, &config, day("2026-10-31")).unwrap());
    // The ledger ends 2026-10-28: November's run is from there too, but it is November's.
    assert!(backtest_if_due(&store, &config, day("2026-11-01")).unwrap());
    assert!(!backtest_if_due(&store, &config, day("2026-11-30")).unwrap());
    let history = backtest_history(&store).unwrap();
    assert_eq!(
        history.len(),
        1,
        "both runs are as of the ledger's last day"
    );
    let latest: agents::finance::outlook::BacktestRun =
        store.state().get(LATEST_BACKTEST).unwrap().unwrap();
    let validators = latest
        .results
        .get("revenue:validators")
        .unwrap_or_else(|| panic!("{latest:?}"));
    assert!(
        validators.mase.is_finite() && validators.mase < 1.5,
        "{validators:?}"
    );
    let journaled = store
        .journal()
        .query(&memory::JournalQuery {
            kind: Some("finance.backtest".to_owned()),
            ..memory::JournalQuery::default()
        })
        .unwrap();
    assert_eq!(journaled.len(), 2);
}

#[test]
fn a_rates_file_is_all_or_nothing_with_line_numbers() {
    let rates = parse_rates(b"date,base,quote,rate\n2026-11-01,eur,usd,1.08\n", "r.csv").unwrap();
    assert_eq!(rates[0].base, "EUR");
    assert_eq!(rates[0].rate, Decimal::new(108, 2));
    let error = parse_rates(
        b"date,base,quote,rate\n2026-11-01,EUR,USD,1.08\n01.11.2026,EUR,USD,1.08\n2026-11-02,EUR,USD,-1\n",
        "r.csv",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("r.csv:3: expected YYYY-MM-DD"), "{error}");
    assert!(error.contains("r.csv:4: expected"), "{error}");
    let header = parse_rates(b"day,rate\n", "r.csv").unwrap_err().to_string();
    assert!(
        header.contains("r.csv:1: the header must be `date,base,quote,rate`"),
        "{header}"
    );
}

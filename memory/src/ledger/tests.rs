use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{
    AssetClass, EntrySource, Holding, HoldingSource, LedgerEntry, Rate, Valuation, stable_id,
};
use crate::Store;
use crate::test_support::temp_store;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn entry(date: &str, amount: &str, counterparty: &str, occurrence: u32) -> LedgerEntry {
    let date = day(date);
    let amount = Decimal::from_str(amount).unwrap();
    LedgerEntry {
        id: stable_id("bank", date, amount, "USD", counterparty, "", occurrence),
        date,
        amount,
        currency: "USD".to_owned(),
        stream: None,
        category: Some("infrastructure".to_owned()),
        subcategory: None,
        counterparty: counterparty.to_owned(),
        description: String::new(),
        source: EntrySource::Import {
            file: "statement.csv".to_owned(),
            line: 2,
        },
        tags: vec!["q4".to_owned()],
        recorded_at: Utc::now(),
    }
}

#[test]
fn stable_id_ignores_trailing_zeros_but_not_occurrence() {
    let date = day("2026-11-02");
    let a = stable_id(
        "bank",
        date,
        Decimal::from_str("12.50").unwrap(),
        "USD",
        "Hetzner",
        "",
        0,
    );
    let b = stable_id(
        "bank",
        date,
        Decimal::from_str("12.5").unwrap(),
        "USD",
        "Hetzner",
        "",
        0,
    );
    let c = stable_id(
        "bank",
        date,
        Decimal::from_str("12.5").unwrap(),
        "USD",
        "Hetzner",
        "",
        1,
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 32);
}

#[test]
fn a_batch_is_inserted_once_and_round_trips_exactly() {
    let (dir, store) = temp_store();
    let batch = vec![
        entry("2026-11-02", "-1234.56", "Hetzner", 0),
        entry("2026-11-02", "-1234.56", "Hetzner", 1),
        entry("2026-10-30", "0.000000001", "pool", 0),
    ];
    let first = store.ledger().insert_batch(&batch).unwrap();
    assert_eq!(first.inserted, 3);
    assert!(first.duplicates.is_empty());
    let again = store.ledger().insert_batch(&batch).unwrap();
    assert_eq!(again.inserted, 0);
    assert_eq!(again.duplicates.len(), 3);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let stored = store.ledger().entries(None, None).unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].date, day("2026-10-30"));
    assert_eq!(stored[0].amount.to_string(), "0.000000001");
    assert_eq!(
        store.ledger().get(&batch[0].id).unwrap().as_ref(),
        Some(&batch[0])
    );
    let november = store
        .ledger()
        .entries(Some(day("2026-11-01")), Some(day("2026-11-30")))
        .unwrap();
    assert_eq!(november.len(), 2);
}

#[test]
fn a_repeated_id_within_one_batch_is_a_duplicate() {
    let (_dir, store) = temp_store();
    let one = entry("2026-11-02", "-5", "Hetzner", 0);
    let outcome = store
        .ledger()
        .insert_batch(&[one.clone(), one.clone()])
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    assert_eq!(outcome.duplicates, vec![one.id]);
}

#[test]
fn rates_are_found_on_the_day_or_up_to_max_age_before() {
    let (_dir, store) = temp_store();
    let ledger = store.ledger();
    let rate = |date: &str, value: &str| Rate {
        base: "TON".to_owned(),
        quote: "USD".to_owned(),
        date: day(date),
        rate: Decimal::from_str(value).unwrap(),
    };
    ledger
        .put_rates(&[rate("2026-11-01", "5.10"), rate("2026-11-05", "5.50")])
        .unwrap();
    let on = |date: &str, age| ledger.rate_on("TON", "USD", day(date), age).unwrap();
    assert_eq!(
        on("2026-11-05", 7),
        Some((day("2026-11-05"), Decimal::from_str("5.50").unwrap()))
    );
    assert_eq!(
        on("2026-11-04", 7),
        Some((day("2026-11-01"), Decimal::from_str("5.10").unwrap()))
    );
    assert_eq!(on("2026-11-04", 2), None);
    assert_eq!(on("2026-10-31", 7), None);
    assert_eq!(
        ledger.rate_on("TON", "EUR", day("2026-11-05"), 7).unwrap(),
        None
    );
    assert_eq!(ledger.rates("TON", "USD").unwrap().len(), 2);
}

fn holding(account: &str, asset: &str, date: &str, quantity: &str) -> Holding {
    Holding {
        date: day(date),
        account: account.to_owned(),
        asset: asset.to_owned(),
        class: AssetClass::Crypto,
        quantity: Decimal::from_str(quantity).unwrap(),
        valuation: None,
        cost_basis: None,
        source: HoldingSource::Manual {
            by: "operator:ana".to_owned(),
        },
    }
}

#[test]
fn a_later_snapshot_of_the_same_account_asset_and_day_replaces_the_earlier_one() {
    let (dir, store) = temp_store();
    let first = holding("binance", "TON", "2026-11-02", "1000");
    let mut private = holding("private", "Fund A/B", "2026-11-02", "1");
    private.class = AssetClass::Private;
    private.valuation = Some(Valuation {
        value: Decimal::from_str("250000.00").unwrap(),
        currency: "EUR".to_owned(),
    });
    private.cost_basis = Some(Decimal::from_str("200000").unwrap());
    private.source = HoldingSource::Import {
        file: "balances.csv".to_owned(),
        line: 3,
    };
    assert_eq!(
        store
            .ledger()
            .put_holdings(&[first.clone(), private.clone()])
            .unwrap(),
        2
    );
    let replacement = holding("binance", "TON", "2026-11-02", "1200.5");
    // A repeated key within one batch is written once: the last one wins.
    assert_eq!(
        store
            .ledger()
            .put_holdings(&[first.clone(), replacement.clone()])
            .unwrap(),
        1
    );
    assert_eq!(store.ledger().holdings_len(), 2);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let stored = store.ledger().holdings(day("2026-12-31")).unwrap();
    assert_eq!(stored, vec![replacement, private]);
    assert_eq!(stored[1].cost_basis.unwrap().to_string(), "200000");
}

#[test]
fn holdings_are_those_dated_on_or_before_the_day_by_account_asset_and_date() {
    let (_dir, store) = temp_store();
    let ledger = store.ledger();
    let batch = vec![
        holding("treasury-wallet", "TON", "2026-11-03", "5"),
        holding("binance", "TON", "2026-11-03", "2"),
        holding("binance", "TON", "2026-11-01", "1"),
        holding("binance", "BTC", "2026-11-02", "0.5"),
        holding("binance", "TON", "2026-11-04", "3"),
    ];
    assert_eq!(ledger.put_holdings(&batch).unwrap(), 5);
    let keys = |to: &str| -> Vec<(String, String, NaiveDate)> {
        ledger
            .holdings(day(to))
            .unwrap()
            .into_iter()
            .map(|h| (h.account, h.asset, h.date))
            .collect()
    };
    let key =
        |account: &str, asset: &str, date: &str| (account.to_owned(), asset.to_owned(), day(date));
    assert_eq!(
        keys("2026-11-03"),
        vec![
            key("binance", "BTC", "2026-11-02"),
            key("binance", "TON", "2026-11-01"),
            key("binance", "TON", "2026-11-03"),
            key("treasury-wallet", "TON", "2026-11-03"),
        ]
    );
    assert_eq!(
        keys("2026-11-01"),
        vec![key("binance", "TON", "2026-11-01")]
    );
    assert!(keys("2026-10-31").is_empty());
    assert_eq!(keys("2026-11-30").len(), 5);
    assert_eq!(ledger.put_holdings(&[]).unwrap(), 0);
}

//! Imports in several bank dialects, bad rows, re-imports, valuation, the monthly report and
//! the outlook's alerts, on a real sled store in a temporary directory.

use std::str::FromStr;

use chrono::{Days, NaiveDate, Utc};
use memory::Store;
use memory::ledger::{EntrySource, LedgerEntry, Rate, stable_id};
use rust_decimal::Decimal;

use super::FinanceConfig;
use super::import::{ImportError, Mapping, NewEntry, StatementMapping, import_statement};
use super::outlook::{alerts, outlook};
use super::report::{monthly_report, parse_month, render_csv, render_table};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn mapping(toml_text: &str) -> Mapping {
    let spec: StatementMapping = toml::from_str(toml_text).unwrap();
    Mapping::new(spec, &FinanceConfig::default()).unwrap()
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

const US_MAPPING: &str = r#"
account = "chase-checking"
date_format = "%m/%d/%Y"
thousands_separator = ","
currency = "USD"
columns = { date = "Date", amount = "Amount", description = "Description" }
[[rules]]
description = "hetzner"
category = "infrastructure"
subcategory = "servers"
[[rules]]
description = "ton (foundation|pool) payout"
stream = "validators"
tags = ["staking"]
"#;

const US_STATEMENT: &str = "Date,Description,Amount\n\
11/03/2026,HETZNER ONLINE GMBH,\"-1,234.56\"\n\
11/04/2026,TON Pool payout,\"12,000.00\"\n\
11/05/2026,Coffee,-4.50\n\
11/05/2026,Coffee,-4.50\n";

#[test]
fn us_statement_is_imported_with_rules_and_thousands_separators() {
    let (_dir, store) = store();
    let ledger = store.ledger();
    let summary = import_statement(
        ledger,
        US_STATEMENT.as_bytes(),
        "us.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap();
    assert_eq!(summary.new_entries, 4);
    assert_eq!(summary.unattributed, 2);
    assert_eq!(summary.income["USD"], "12000.00");
    assert_eq!(summary.expenses["USD"], "1243.56");
    let entries = ledger.entries(None, None).unwrap();
    let hetzner = entries
        .iter()
        .find(|e| e.description.contains("HETZNER"))
        .unwrap();
    assert_eq!(hetzner.amount, dec("-1234.56"));
    assert_eq!(hetzner.category.as_deref(), Some("infrastructure"));
    assert_eq!(hetzner.subcategory.as_deref(), Some("servers"));
    assert_eq!(hetzner.date, day("2026-11-03"));
    assert_eq!(
        hetzner.source,
        EntrySource::Import {
            file: "us.csv".to_owned(),
            line: 2
        }
    );
    let payout = entries.iter().find(|e| e.stream.is_some()).unwrap();
    assert_eq!(payout.stream.as_deref(), Some("validators"));
    assert_eq!(payout.tags, vec!["staking".to_owned()]);
    // Two identical coffees on one day are two entries.
    assert_eq!(
        entries.iter().filter(|e| e.description == "Coffee").count(),
        2
    );

    // Importing the same file again adds nothing.
    let again = import_statement(
        ledger,
        US_STATEMENT.as_bytes(),
        "us-again.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap();
    assert_eq!((again.new_entries, again.duplicates), (0, 4));
    // A later statement overlapping the first (one coffee, plus a new row) adds only the new.
    let overlapping = "Date,Description,Amount\n11/05/2026,Coffee,-4.50\n11/06/2026,Coffee,-4.50\n";
    let later = import_statement(
        ledger,
        overlapping.as_bytes(),
        "us-later.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap();
    assert_eq!((later.new_entries, later.duplicates), (1, 1));
    assert_eq!(ledger.len(), 5);
}

#[test]
fn german_statement_with_bom_preamble_semicolons_and_decimal_commas() {
    let (_dir, store) = store();
    let mapping = mapping(
        r#"
account = "sparkasse"
delimiter = ";"
skip_lines = 3
date_format = "%d.%m.%Y"
decimal_separator = ","
thousands_separator = "."
columns = { date = "Buchungstag", amount = "Betrag", description = "Verwendungszweck", counterparty = "Empfänger", currency = "Währung" }
[[rules]]
counterparty = "^hetzner"
category = "infrastructure"
"#,
    );
    let file = "\u{feff}Kontoauszug;;;;\nKonto;DE12 3456;;;\nZeitraum;01.11.2026 - 30.11.2026;;;\n\
Buchungstag;Empfänger;Verwendungszweck;Betrag;Währung\n\
03.11.2026;Hetzner Online GmbH;Rechnung 123;-1.234,56;EUR\n\
04.11.2026;Kunde AG;Beratung November;2.500,00;eur\n";
    let summary =
        import_statement(store.ledger(), file.as_bytes(), "de.csv", &mapping, false).unwrap();
    assert_eq!(summary.new_entries, 2);
    let entries = store.ledger().entries(None, None).unwrap();
    assert_eq!(entries[0].amount, dec("-1234.56"));
    assert_eq!(entries[0].currency, "EUR");
    assert_eq!(entries[0].counterparty, "Hetzner Online GmbH");
    assert_eq!(entries[0].category.as_deref(), Some("infrastructure"));
    assert_eq!(
        entries[0].source,
        EntrySource::Import {
            file: "de.csv".to_owned(),
            line: 5
        }
    );
    assert_eq!(entries[1].amount, dec("2500"));
}

#[test]
fn card_statement_with_debit_and_credit_columns_and_bank_ids() {
    let (_dir, store) = store();
    let mapping = mapping(
        r#"
account = "amex"
date_format = "%Y-%m-%d"
currency = "USD"
columns = { date = "Transaction Date", debit = "Debit", credit = "Credit", description = "Description", id = "Reference" }
[[rules]]
description = "google ads"
category = "marketing"
subcategory = "ads"
"#,
    );
    let file = "Transaction Date,Reference,Description,Debit,Credit\n\
2026-11-01,R1,GOOGLE ADS,350.00,\n\
2026-11-02,R2,REFUND GOOGLE ADS,,50.00\n\
2026-11-02,R3,AWS,(20.00),\n";
    import_statement(store.ledger(), file.as_bytes(), "card.csv", &mapping, false).unwrap();
    let entries = store.ledger().entries(None, None).unwrap();
    let by_description = |text: &str| entries.iter().find(|e| e.description == text).unwrap();
    assert_eq!(by_description("GOOGLE ADS").amount, dec("-350"));
    assert_eq!(by_description("AWS").amount, dec("-20"));
    let refund = by_description("REFUND GOOGLE ADS");
    assert_eq!(refund.amount, dec("50"));
    // The refund matched the ads rule: it stays in marketing and lowers its cost.
    assert_eq!(refund.category.as_deref(), Some("marketing"));
    // With a bank reference the id depends on it alone: a corrected description keeps the id.
    let corrected = file.replace("AWS", "Amazon Web Services");
    let again = import_statement(
        store.ledger(),
        corrected.as_bytes(),
        "card2.csv",
        &mapping,
        false,
    )
    .unwrap();
    assert_eq!((again.new_entries, again.duplicates), (0, 3));
}

#[test]
fn a_file_with_bad_rows_is_rejected_whole_with_line_numbers() {
    let (_dir, store) = store();
    import_statement(
        store.ledger(),
        US_STATEMENT.as_bytes(),
        "us.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap();
    let bad = "Date,Description,Amount\n\
11/10/2026,Fine row,-10.00\n\
2026-11-11,ISO date,-10.00\n\
11/12/2026,Not a number,ten\n\
11/13/2026,Too,many,fields\n\
\n\
11/14/2026,Zero,0.00\n\
11/15/2026,Another fine row,-3.00\n";
    let error = import_statement(
        store.ledger(),
        bad.as_bytes(),
        "bad.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap_err();
    let ImportError::Rows { rows, .. } = &error else {
        panic!("expected row errors, got {error}");
    };
    let lines: Vec<u64> = rows.iter().map(|row| row.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 7]);
    let message = error.to_string();
    assert!(
        message.contains("line 3: date \"2026-11-11\" does not match \"%m/%d/%Y\""),
        "{message}"
    );
    assert!(
        message.contains("line 4: \"ten\" is not an amount"),
        "{message}"
    );
    assert!(
        message.contains("line 5: 4 fields where the header has 3"),
        "{message}"
    );
    assert!(message.contains("nothing imported"), "{message}");
    // Nothing of the bad file was stored, and the earlier import is intact.
    assert_eq!(store.ledger().len(), 4);
}

#[test]
fn missing_columns_and_bad_mappings_are_reported_together() {
    let spec: StatementMapping = toml::from_str(
        r#"
account = ""
date_format = "%Y-%m-%d"
columns = { date = "Date", amount = "Amount", debit = "Out" }
[[rules]]
description = "(unclosed"
category = "infrastructure"
[[rules]]
counterparty = "x"
category = "catering"
[[rules]]
counterparty = "y"
stream = "validators"
category = "marketing"
"#,
    )
    .unwrap();
    let problems = Mapping::new(spec, &FinanceConfig::default()).err().unwrap();
    let text = problems.join("\n");
    for expected in [
        "account: name the account",
        "columns: give either `amount`, or both `debit` and `credit`",
        "currency: set `currency",
        "rules[0].description: \"(unclosed\" is not a valid regex",
        "rules[1]: unknown category \"catering\"",
        "rules[2]: an entry is income of a stream or an expense of a category, not both",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let (_dir, store) = store();
    let error = import_statement(
        store.ledger(),
        b"When,What,HowMuch\n11/01/2026,x,1\n",
        "other.csv",
        &mapping(US_MAPPING),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("line 1: no column \"Date\" in the header (columns: When, What, HowMuch)"),
        "{error}"
    );
}

#[test]
fn dry_run_previews_and_stores_nothing() {
    let (_dir, store) = store();
    let summary = import_statement(
        store.ledger(),
        US_STATEMENT.as_bytes(),
        "us.csv",
        &mapping(US_MAPPING),
        true,
    )
    .unwrap();
    assert!(summary.dry_run);
    assert_eq!(summary.new_entries, 4);
    assert_eq!(summary.preview.len(), 4);
    assert_eq!(summary.by_attribution["category:infrastructure"], 1);
    assert_eq!(summary.first_date, Some(day("2026-11-03")));
    assert!(store.ledger().is_empty());
}

#[test]
fn manual_entries_are_checked_against_the_configuration() {
    let config = FinanceConfig::default();
    let parse = |json: &str| serde_json::from_str::<NewEntry>(json).unwrap();
    let source = || EntrySource::Manual {
        by: "ana".to_owned(),
    };
    let entry = parse(r#"{"date":"2026-11-20","amount":"-99.90","currency":"eur","category":"legal_and_compliance","subcategory":"audit","counterparty":"KPMG"}"#)
        .into_entry(&config, "manual", source())
        .unwrap();
    assert_eq!(entry.amount, dec("-99.90"));
    assert_eq!(entry.currency, "EUR");
    let numeric =
        parse(r#"{"date":"2026-11-20","amount":1500.25,"currency":"USD","stream":"cocoon"}"#)
            .into_entry(&config, "manual", source())
            .unwrap();
    assert_eq!(numeric.amount, dec("1500.25"));
    let problems =
        parse(r#"{"date":"2026-11-20","amount":"12,5","currency":"dollars","stream":"lottery"}"#)
            .into_entry(&config, "manual", source())
            .unwrap_err()
            .join("; ");
    assert!(
        problems.contains("amount \"12,5\" is not a decimal number"),
        "{problems}"
    );
    assert!(
        problems.contains("currency: \"dollars\" is not a currency code"),
        "{problems}"
    );
    assert!(
        problems.contains("unknown stream \"lottery\""),
        "{problems}"
    );
    assert!(
        serde_json::from_str::<NewEntry>(
            r#"{"date":"2026-11-20","amount":1,"currency":"USD","colour":"red"}"#
        )
        .is_err()
    );
}

fn manual(date: NaiveDate, amount: &str, currency: &str, line: (&str, &str)) -> LedgerEntry {
    let amount = dec(amount);
    let (kind, name) = line;
    LedgerEntry {
        id: stable_id("test", date, amount, currency, name, kind, 0),
        date,
        amount,
        currency: currency.to_owned(),
        stream: (kind == "stream").then(|| name.to_owned()),
        category: (kind == "category").then(|| name.to_owned()),
        subcategory: None,
        counterparty: name.to_owned(),
        description: kind.to_owned(),
        source: EntrySource::Manual {
            by: "test".to_owned(),
        },
        tags: Vec::new(),
        recorded_at: Utc::now(),
    }
}

#[test]
fn monthly_report_values_crypto_at_the_days_rate_and_computes_burn_and_runway() {
    let (_dir, store) = store();
    let ledger = store.ledger();
    let rate = |date: &str, base: &str, value: &str| Rate {
        base: base.to_owned(),
        quote: "USD".to_owned(),
        date: day(date),
        rate: dec(value),
    };
    ledger
        .put_rates(&[
            rate("2025-10-01", "TON", "5.00"),
            rate("2026-09-01", "TON", "2.00"),
            rate("2026-10-01", "TON", "2.50"),
            rate("2026-10-01", "EUR", "1.10"),
        ])
        .unwrap();
    let entries = vec![
        manual(day("2025-10-01"), "100", "TON", ("stream", "validators")),
        manual(day("2026-09-01"), "1000", "TON", ("stream", "validators")),
        manual(
            day("2026-09-03"),
            "-3000",
            "USD",
            ("category", "infrastructure"),
        ),
        // Valued at the rate of 2026-10-01 (weekend, 3 days old).
        manual(day("2026-10-04"), "1000", "TON", ("stream", "validators")),
        manual(day("2026-10-01"), "-1000", "EUR", ("category", "personnel")),
        manual(
            day("2026-10-02"),
            "-2000",
            "USD",
            ("category", "infrastructure"),
        ),
        // No rate at all for BTC: left out and reported.
        manual(day("2026-10-05"), "0.1", "BTC", ("stream", "investments")),
        manual(day("2026-11-02"), "500", "USD", ("stream", "services")),
    ];
    ledger.insert_batch(&entries).unwrap();
    let config = FinanceConfig {
        opening_balance: dec("10000"),
        opening_date: Some(day("2026-09-01")),
        ..FinanceConfig::default()
    };
    let report = monthly_report(
        ledger,
        &config,
        parse_month("2026-09").unwrap(),
        parse_month("2026-11").unwrap(),
        day("2026-11-24"),
    )
    .unwrap();
    let [september, october, november] = &report.months[..] else {
        panic!("three months expected: {:?}", report.months);
    };
    assert_eq!(september.revenue["validators"], dec("2000"));
    assert_eq!(october.revenue["validators"], dec("2500"));
    assert_eq!(october.expenses["personnel"], dec("1100"));
    assert_eq!(october.expense_total, dec("3100"));
    assert_eq!(november.net, dec("500"));
    // +25% on September; October 2025 was 100 TON × 5.00 = 500 USD, so +400% year over year.
    assert_eq!(october.revenue_change["validators"].mom_pct, Some(25.0));
    assert_eq!(october.revenue_change["validators"].yoy_pct, Some(400.0));
    // Complete months are September and October: expenses (3000 + 3100) / 2, net
    // (3000 − 2000 + 3100 − 2500) / 2 = 800.
    assert_eq!(report.gross_burn, Some(dec("3050")));
    assert_eq!(report.net_burn, Some(dec("800")));
    // Cash: 10000 + 2000 − 3000 + 2500 − 1100 − 2000 + 500 = 8900, runway 8900 / 800.
    assert_eq!(report.cash, Some(dec("8900")));
    assert_eq!(report.runway_months, Some(11.1));
    assert_eq!(report.missing_rates.len(), 1);
    assert_eq!(report.missing_rates[0].currency, "BTC");

    let table = render_table(&report);
    assert!(table.contains("revenue: validators"), "{table}");
    assert!(table.contains("runway 11.1 months"), "{table}");
    assert!(table.contains("warning: 1 entries left out"), "{table}");
    let csv = render_csv(&report).unwrap();
    assert!(
        csv.starts_with("line (USD),2026-09,2026-10,2026-11,MoM,YoY\n"),
        "{csv}"
    );
    assert!(
        csv.contains("revenue: validators,2000,2500,0,-100.0%,-"),
        "{csv}"
    );
}

#[test]
fn outlook_warns_before_cash_crosses_the_floor_and_flags_an_expense_spike() {
    let (_dir, store) = store();
    let ledger = store.ledger();
    let start = day("2026-06-01");
    let as_of = day("2026-11-24");
    let mut entries = Vec::new();
    let mut date = start;
    let mut index = 0u32;
    while date <= as_of {
        // Revenue 1000/day with a weekly pattern; costs 1400/day: net burn 400/day.
        let weekday = index % 7;
        let revenue = 1000 + [150, 100, 50, 0, -50, -100, -150][weekday as usize];
        entries.push(manual(
            date,
            &revenue.to_string(),
            "USD",
            ("stream", "validators"),
        ));
        let cost = if date == as_of {
            -9000
        } else {
            -1400 - i64::from(index % 3) * 10 + 10
        };
        entries.push(manual(
            date,
            &cost.to_string(),
            "USD",
            ("category", "infrastructure"),
        ));
        index += 1;
        date = date.checked_add_days(Days::new(1)).unwrap();
    }
    ledger.insert_batch(&entries).unwrap();
    let config = FinanceConfig {
        opening_balance: dec("100000"),
        opening_date: Some(start),
        runway_floor_months: 3.0,
        ..FinanceConfig::default()
    };
    let outlook = outlook(ledger, &config, as_of, 365, 90).unwrap();
    let balance = outlook
        .series
        .iter()
        .find(|series| series.name == "balance")
        .unwrap();
    assert!(balance.forecast.is_some(), "{:?}", balance.skipped);
    // 177 days × −400, and −7,600 more on the last day: 100,000 − 70,800 − 7,600 = 21,600
    // left. Net burn over the last 90 days: (90 × 400 + 7,600) / 90 × 30.44 = 14,747 a month,
    // so the floor is 3 × 14,747 = 44,240, already above the cash: the breach is tomorrow.
    let breach = outlook.floor_breach.clone().expect("a floor breach");
    // (The weekly revenue pattern does not fill whole weeks in 90 days: up to ±300 more.)
    assert!((breach.floor - 44_240.0).abs() < 400.0, "{breach:?}");
    assert_eq!(breach.days_ahead, 1);
    let runway = outlook.runway.unwrap();
    let low = runway.months_low.unwrap();
    let point = runway.months_point.unwrap();
    assert!(low <= point, "{runway:?}");
    // 21,600 / 400 a day = 54 days = 1.77 months, if the model sees through the one-off
    // spike; allow for its level moving some way towards it.
    assert!((1.2..2.2).contains(&point), "{runway:?}");
    let revenue = outlook
        .series
        .iter()
        .find(|series| series.name == "revenue:validators")
        .unwrap();
    assert_eq!(
        revenue.totals.iter().map(|t| t.days).collect::<Vec<_>>(),
        vec![30, 60, 90]
    );
    let thirty = &revenue.totals[0];
    assert!((thirty.point - 30_000.0).abs() < 1_500.0, "{thirty:?}");

    let raised = alerts(&outlook, 7, Utc::now());
    let rules: Vec<&str> = raised.iter().map(|alert| alert.rule.as_str()).collect();
    assert!(rules.contains(&"cash_floor"), "{rules:?}");
    assert!(rules.contains(&"expense_spike"), "{rules:?}");
    let spike = raised.iter().find(|a| a.rule == "expense_spike").unwrap();
    assert_eq!(spike.labels["line"], "infrastructure");
}

#[test]
fn lumpy_bills_are_forecast_as_sums_and_the_net_is_composed_from_the_lines() {
    let (_dir, store) = store();
    let start = day("2026-01-01");
    let as_of = day("2026-11-23");
    let mut entries = Vec::new();
    let mut date = start;
    while date <= as_of {
        entries.push(manual(date, "1000", "USD", ("stream", "validators")));
        if date.format("%d").to_string() == "25" {
            entries.push(manual(date, "-20000", "USD", ("category", "personnel")));
        }
        date = date.checked_add_days(Days::new(1)).unwrap();
    }
    store.ledger().insert_batch(&entries).unwrap();
    let config = FinanceConfig {
        opening_balance: dec("50000"),
        opening_date: Some(start),
        ..FinanceConfig::default()
    };
    let outlook = outlook(store.ledger(), &config, as_of, 365, 90).unwrap();
    let line = |name: &str| {
        outlook
            .series
            .iter()
            .find(|series| series.name == name)
            .unwrap()
    };
    let personnel = line("expense:personnel");
    // 327 days, one payroll a month: modelled as 30-day sums, never as spikes.
    assert!(
        personnel
            .forecast
            .as_ref()
            .unwrap()
            .model
            .starts_with("30-day sums"),
        "{personnel:?}"
    );
    assert!(personnel.anomalies.is_empty(), "{:?}", personnel.anomalies);
    // 90 days hold about three payrolls: 60,000 (a 30-day window holds one 25th, rarely none).
    let payroll_90 = personnel.totals[2].point;
    assert!((payroll_90 - 60_000.0).abs() < 12_000.0, "{payroll_90}");
    // Net over 90 days: 90 × 1,000 − ~60,000 = ~30,000, with the payroll in it.
    let net_90 = line("net").totals[2].point;
    assert!((net_90 - 30_000.0).abs() < 12_000.0, "{net_90}");
    assert!(
        line("net")
            .forecast
            .as_ref()
            .unwrap()
            .model
            .starts_with("sum of 1 revenue and 1 expense")
    );
    // No alerts: revenue is flat and payroll is regular.
    let raised = alerts(&outlook, 7, Utc::now());
    assert!(
        raised.iter().all(|alert| alert.rule == "cash_floor"),
        "{raised:?}"
    );
}

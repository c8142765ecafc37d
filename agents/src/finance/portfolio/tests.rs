//! Balance imports, daily valuation with carried-forward snapshots and manual valuations,
//! allocation, concentration breaches and the rebalancing plan, volatility and the staking
//! comparison, on a real sled store in a temporary directory. Every expected number is
//! worked out by hand in the comments.

use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, Utc};
use memory::Store;
use memory::ledger::{AssetClass, Holding, HoldingSource, Rate, Valuation};
use rust_decimal::Decimal;
use tools::tonapi::StakingPool;

use super::*;
use crate::finance::FinanceConfig;
use crate::finance::import::ImportError;

fn finance(portfolio: &PortfolioConfig) -> FinanceConfig {
    FinanceConfig {
        portfolio: portfolio.clone(),
        ..FinanceConfig::default()
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn rate(base: &str, date: &str, value: &str) -> Rate {
    Rate {
        base: base.to_owned(),
        quote: "USD".to_owned(),
        date: day(date),
        rate: dec(value),
    }
}

fn holding(date: &str, account: &str, asset: &str, class: AssetClass, quantity: &str) -> Holding {
    Holding {
        date: day(date),
        account: account.to_owned(),
        asset: asset.to_owned(),
        class,
        quantity: dec(quantity),
        valuation: None,
        cost_basis: None,
        source: HoldingSource::Manual {
            by: "operator:ana".to_owned(),
        },
    }
}

const TREASURY: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";
const COLD: &str = "0:2222222222222222222222222222222222222222222222222222222222222222";
const EXCHANGE: &str = "0:3333333333333333333333333333333333333333333333333333333333333333";

fn wallets() -> Vec<PortfolioWallet> {
    vec![
        PortfolioWallet {
            address: COLD.to_owned(),
            label: "cold-wallet".to_owned(),
        },
        PortfolioWallet {
            address: TREASURY.to_owned(),
            label: "treasury-wallet".to_owned(),
        },
    ]
}

fn limit_asset(asset: &str, max_share: f64) -> ConcentrationLimit {
    ConcentrationLimit {
        asset: Some(asset.to_owned()),
        class: None,
        max_share,
    }
}

fn limit_class(class: AssetClass, max_share: f64) -> ConcentrationLimit {
    ConcentrationLimit {
        asset: None,
        class: Some(class),
        max_share,
    }
}

// ---- configuration ----

#[test]
fn an_empty_section_is_the_default_and_valid() {
    let config: PortfolioConfig = toml::from_str("").unwrap();
    assert_eq!(config.volatility_window_days, 30);
    assert!(config.wallets.is_empty() && config.limits.is_empty());
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    assert!(PortfolioConfig::default().problems().is_empty());
    let unknown = toml::from_str::<PortfolioConfig>("max_share = 0.5").unwrap_err();
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");
}

#[test]
fn every_problem_of_the_section_names_its_key() {
    let config: PortfolioConfig = toml::from_str(&format!(
        r#"
        rebalance_to = "not-an-address"
        volatility_window_days = 5
        [[wallets]]
        address = "{TREASURY}"
        label = "treasury"
        [[wallets]]
        address = "{TREASURY}"
        label = "treasury"
        [[wallets]]
        address = "nope"
        label = " "
        [[limits]]
        asset = "TON"
        max_share = 0.4
        [[limits]]
        asset = "TON"
        class = "crypto"
        max_share = 1.5
        [[limits]]
        max_share = 0.0
        [[limits]]
        class = "private"
        max_share = 1.0
        "#
    ))
    .unwrap();
    let problems = config.problems();
    let expect = [
        "finance.portfolio.wallets[1].address: the same wallet as finance.portfolio.wallets[0]",
        "finance.portfolio.wallets[1].label: \"treasury\" is already the label of finance.portfolio.wallets[0]",
        "finance.portfolio.wallets[2].address: \"nope\" is not a TON address",
        "finance.portfolio.wallets[2].label: name the wallet",
        "finance.portfolio.limits[1]: give exactly one of `asset`",
        "finance.portfolio.limits[1].max_share: 1.5 is not a share in (0, 1]",
        "finance.portfolio.limits[2]: give exactly one of `asset`",
        "finance.portfolio.limits[2].max_share: 0 is not a share in (0, 1]",
        "finance.portfolio.rebalance_to: \"not-an-address\" is not a TON address",
        "finance.portfolio.volatility_window_days: 5 is too short; at least 10",
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expect) {
        assert!(problem.starts_with(expected), "{problem:?} vs {expected:?}");
    }
}

#[test]
fn a_wallet_balance_becomes_a_ton_holding_under_the_wallet_label() {
    let wallet = &wallets()[1];
    let holding = wallet_holding(wallet, day("2026-11-03"), 80_000_123_456_789);
    assert_eq!(holding.account, "treasury-wallet");
    assert_eq!(holding.asset, "TON");
    assert_eq!(holding.class, AssetClass::Crypto);
    assert_eq!(holding.quantity, dec("80000.123456789"));
    assert_eq!(
        holding.source,
        HoldingSource::OnChain {
            address: TREASURY.to_owned()
        }
    );
}

fn jetton(
    symbol: &str,
    decimals: u32,
    raw_balance: u128,
    verification: &str,
) -> tools::tonapi::JettonBalance {
    tools::tonapi::JettonBalance {
        master: "0:b113a994b5024a16719f69139328eb759596c38a25f59028b146fecdc3621dfe".to_owned(),
        name: String::new(),
        symbol: symbol.to_owned(),
        decimals,
        raw_balance,
        verification: verification.to_owned(),
        prices: Default::default(),
    }
}

#[test]
fn a_jetton_becomes_a_holding_scaled_by_its_decimals_and_named_by_its_symbol() {
    let wallet = &wallets()[1];
    let date = day("2026-11-03");
    let hold = |symbol: &str, decimals: u32, raw: u128, verification: &str| {
        jetton_holding(
            wallet,
            date,
            &jetton(symbol, decimals, raw, verification),
            "USD",
        )
    };
    let tether = hold("USD₮", 6, 1_500_250_000, "whitelist").unwrap();
    // 1,500,250,000 units at 6 decimals.
    assert_eq!(tether.quantity, dec("1500.25"));
    assert_eq!(tether.asset, "USDT");
    assert_eq!(tether.class, AssetClass::Stablecoin);
    assert_eq!(tether.account, "treasury-wallet");
    let staked = hold("tsTON", 9, 2_500_000_000, "whitelist").unwrap();
    assert_eq!(
        (staked.asset.as_str(), staked.quantity, staked.class),
        ("TSTON", dec("2.5"), AssetClass::Crypto)
    );
    // Not on the white list: the master stays in the code, so a fake USDT is neither the real
    // one's position nor priced by its rate, and is no stablecoin.
    let fake = hold("USDT", 6, 5_000_000, "none").unwrap();
    assert_eq!(fake.asset, "USDT (b113a994)");
    assert_eq!(fake.class, AssetClass::Crypto);
    // TON, the reporting currency and fiat codes are never a jetton's bare code, even white
    // listed; nor are symbols with anything but letters and digits.
    assert_eq!(
        hold("ton", 9, 1, "whitelist").unwrap().asset,
        "TON (b113a994)"
    );
    assert_eq!(
        hold("EUR", 2, 1, "whitelist").unwrap().asset,
        "EUR (b113a994)"
    );
    assert_eq!(
        jetton_holding(wallet, date, &jetton("GBP", 2, 1, "whitelist"), "GBP")
            .unwrap()
            .asset,
        "GBP (b113a994)"
    );
    assert_eq!(
        hold("a/b\u{1f}c", 9, 1, "whitelist").unwrap().asset,
        "ABC (b113a994)"
    );
    assert_eq!(
        hold("\u{1f}", 9, 1, "none").unwrap().asset,
        "JETTON (b113a994)"
    );
    // More than a decimal holds (2^100 units), or above 10^18 tokens: no holding rather than
    // a wrong one.
    assert!(hold("BIG", 0, 1u128 << 100, "none").is_none());
    assert!(hold("BIG", 0, 10u128.pow(18) + 1, "none").is_none());
    assert!(hold("BIG", 0, 10u128.pow(18), "none").is_some());

    assert!(JettonPolicy::Verified.admits("whitelist"));
    assert!(!JettonPolicy::Verified.admits("none"));
    assert!(JettonPolicy::All.admits("graylist") && JettonPolicy::All.admits("none"));
    assert!(!JettonPolicy::All.admits("blacklist"));
    assert!(!JettonPolicy::None.admits("whitelist"));
    let config: PortfolioConfig = toml::from_str("jettons = \"all\"").unwrap();
    assert_eq!(config.jettons, JettonPolicy::All);
    assert_eq!(PortfolioConfig::default().jettons, JettonPolicy::Verified);
    let wrong = toml::from_str::<PortfolioConfig>("jettons = \"some\"").unwrap_err();
    assert!(wrong.to_string().contains("verified"), "{wrong}");
}

// ---- balance import ----

#[test]
fn a_balances_file_with_optional_columns_is_read_row_by_row() {
    let text = "\u{feff}Date,Account,Asset,Class,Quantity,Value,Currency,Cost_Basis\n\
        2026-11-01,binance,ton,crypto,20000.5,,,\n\
        \n\
        2026-11-01,equity-brokerage,brk.b,Equity,10,,,4100\n\
        2026-11-01,private,Fund A/B,private,1,250000,eur,200000\n";
    let holdings = parse_balances(text, "balances.csv").unwrap();
    assert_eq!(holdings.len(), 3);
    assert_eq!(holdings[0].asset, "TON");
    assert_eq!(holdings[0].quantity, dec("20000.5"));
    assert_eq!(holdings[0].valuation, None);
    assert_eq!(
        holdings[0].source,
        HoldingSource::Import {
            file: "balances.csv".to_owned(),
            line: 2
        }
    );
    assert_eq!(holdings[1].asset, "BRK.B");
    assert_eq!(holdings[1].class, AssetClass::Equity);
    assert_eq!(holdings[1].cost_basis, Some(dec("4100")));
    // Line 4: the blank line 3 counts, as in an editor.
    assert_eq!(
        holdings[1].source,
        HoldingSource::Import {
            file: "balances.csv".to_owned(),
            line: 4
        }
    );
    assert_eq!(holdings[2].asset, "Fund A/B");
    assert_eq!(
        holdings[2].valuation,
        Some(Valuation {
            value: dec("250000"),
            currency: "EUR".to_owned()
        })
    );

    // The optional columns may be absent altogether.
    let minimal = parse_balances(
        "date,account,asset,class,quantity\n2026-11-01,cold-wallet,TON,crypto,50000\n",
        "wallets.csv",
    )
    .unwrap();
    assert_eq!(minimal.len(), 1);
    assert_eq!(minimal[0].cost_basis, None);
}

#[test]
fn bad_rows_reject_the_whole_file_with_their_lines_and_reasons() {
    let text = "date,account,asset,class,quantity,value,currency\n\
        2026-11-01,binance,TON,crypto,100,,\n\
        11/02/2026,binance,TON,crypto,100,,\n\
        2026-11-02,,TON,coins,-5,,\n\
        2026-11-02,private,Fund,private,1,1000,\n\
        2026-11-02,binance,TOOLONGCODE,crypto,1.2.3,,\n\
        2026-11-01,binance,ton,crypto,200,,\n\
        2026-11-03,binance,TON,crypto\n";
    let error = parse_balances(text, "bad.csv").unwrap_err();
    let ImportError::Rows { file, rows } = &error else {
        panic!("expected Rows, got {error:?}");
    };
    assert_eq!(file, "bad.csv");
    let lines: Vec<u64> = rows.iter().map(|row| row.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8]);
    let message = |line: u64| {
        rows.iter()
            .find(|row| row.line == line)
            .map(|row| row.message.clone())
            .unwrap()
    };
    assert!(
        message(3).contains("date \"11/02/2026\" is not a date (YYYY-MM-DD)"),
        "{}",
        message(3)
    );
    let four = message(4);
    assert!(four.contains("account is empty"), "{four}");
    assert!(
        four.contains("class \"coins\" is not one of crypto, fiat, stablecoin, equity, private"),
        "{four}"
    );
    assert!(four.contains("quantity \"-5\" is negative"), "{four}");
    assert!(
        message(5).contains("give both value and currency"),
        "{}",
        message(5)
    );
    let six = message(6);
    assert!(
        six.contains("asset \"TOOLONGCODE\" is not a currency code"),
        "{six}"
    );
    assert!(
        six.contains("quantity \"1.2.3\" is not a decimal number"),
        "{six}"
    );
    assert!(
        message(7).contains("the same account, asset and date as line 2"),
        "{}",
        message(7)
    );
    assert!(
        message(8).contains("4 fields where the header has 7"),
        "{}",
        message(8)
    );
    assert!(
        error
            .to_string()
            .starts_with("bad.csv: 6 bad row(s), nothing imported:")
    );
}

#[test]
fn a_wrong_header_or_an_empty_file_is_a_file_error() {
    let cases = [
        (
            "date,account,asset,klass,quantity\n",
            "line 1: unknown column \"klass\" (expected date,account,asset,class,quantity and optionally value,currency,cost_basis)",
        ),
        (
            "date,account,asset,class\n",
            "line 1: no column \"quantity\"",
        ),
        (
            "date,account,asset,class,quantity,value\n",
            "the columns value and currency go together",
        ),
        ("", "the file is empty"),
        (
            "date,account,asset,class,quantity\n\n",
            "no balance rows below the header",
        ),
    ];
    for (text, expected) in cases {
        let error = parse_balances(text, "b.csv").unwrap_err();
        let ImportError::File { file, message } = &error else {
            panic!("{text:?}: expected File, got {error:?}");
        };
        assert_eq!(file, "b.csv");
        assert!(message.contains(expected), "{text:?}: {message}");
    }
}

// ---- valuation ----

/// Three days of a portfolio in USD:
///
/// | position                | 11-01                 | 11-02                 | 11-03                 |
/// |-------------------------|-----------------------|-----------------------|-----------------------|
/// | treasury-wallet TON     | 100000 × 5.00 = 500000| 80000 × 5.50 = 440000 | 80000 × 5.20 = 416000 |
/// | cold-wallet TON (10-20) | 50000 × 5.00 = 250000 | 50000 × 5.50 = 275000 | 50000 × 5.20 = 260000 |
/// | binance TON (from 11-02)| -                     | 20000 × 5.50 = 110000 | 20000 × 5.20 = 104000 |
/// | binance BTC             | 2 × 60000 = 120000    | 2 × 60000 = 120000 (*)| 2 × 62000 = 124000    |
/// | binance USDT (0 on 11-03)| 100000 × 1 = 100000  | 100000                | closed                |
/// | private Fund A (10-15)  | 200000 EUR × 1.10 = 220000 (EUR/USD of 11-01 carried) | 220000 | 220000 |
/// | equity-brokerage AAPL   | no rate               | no rate               | no rate               |
/// | total                   | 1190000               | 1265000               | 1124000               |
///
/// (*) the BTC rate of 11-01, one day old. P&L = 1124000 − 1190000 = −66000.
fn three_days(store: &Store) {
    let ledger = store.ledger();
    ledger
        .put_rates(&[
            rate("TON", "2026-11-01", "5.00"),
            rate("TON", "2026-11-02", "5.50"),
            rate("TON", "2026-11-03", "5.20"),
            rate("BTC", "2026-11-01", "60000"),
            rate("BTC", "2026-11-03", "62000"),
            rate("USDT", "2026-11-01", "1"),
            rate("EUR", "2026-11-01", "1.10"),
        ])
        .unwrap();
    let mut fund = holding("2026-10-15", "private", "Fund A", AssetClass::Private, "1");
    fund.valuation = Some(Valuation {
        value: dec("200000"),
        currency: "EUR".to_owned(),
    });
    fund.cost_basis = Some(dec("180000"));
    let mut treasury = holding(
        "2026-11-02",
        "treasury-wallet",
        "TON",
        AssetClass::Crypto,
        "80000",
    );
    treasury.source = HoldingSource::OnChain {
        address: TREASURY.to_owned(),
    };
    ledger
        .put_holdings(&[
            holding(
                "2026-11-01",
                "treasury-wallet",
                "TON",
                AssetClass::Crypto,
                "100000",
            ),
            treasury,
            holding(
                "2026-10-20",
                "cold-wallet",
                "TON",
                AssetClass::Crypto,
                "50000",
            ),
            holding("2026-11-02", "binance", "TON", AssetClass::Crypto, "20000"),
            holding("2026-11-01", "binance", "BTC", AssetClass::Crypto, "2"),
            holding(
                "2026-11-01",
                "binance",
                "USDT",
                AssetClass::Stablecoin,
                "100000",
            ),
            holding("2026-11-03", "binance", "USDT", AssetClass::Stablecoin, "0"),
            fund,
            holding(
                "2026-11-01",
                "equity-brokerage",
                "AAPL",
                AssetClass::Equity,
                "100",
            ),
            // After `to`: not seen.
            holding("2026-11-04", "binance", "TON", AssetClass::Crypto, "999999"),
        ])
        .unwrap();
}

fn three_day_config() -> PortfolioConfig {
    PortfolioConfig {
        wallets: wallets(),
        limits: vec![
            limit_asset("TON", 0.5),
            limit_class(AssetClass::Crypto, 0.9),
            limit_class(AssetClass::Private, 0.15),
        ],
        rebalance_to: Some(EXCHANGE.to_owned()),
        volatility_window_days: 30,
        jettons: JettonPolicy::Verified,
    }
}

#[test]
fn every_day_carries_each_position_forward_and_unvalued_ones_are_listed_not_zero() {
    let (_dir, store) = store();
    three_days(&store);
    let config = three_day_config();
    let report = valuation(
        store.ledger(),
        &finance(&config),
        day("2026-11-01"),
        day("2026-11-03"),
    )
    .unwrap();
    assert_eq!(report.currency, "USD");
    let days: Vec<(NaiveDate, Decimal, usize)> = report
        .days
        .iter()
        .map(|d| (d.date, d.total, d.unvalued))
        .collect();
    assert_eq!(
        days,
        [
            (day("2026-11-01"), dec("1190000"), 1),
            (day("2026-11-02"), dec("1265000"), 1),
            (day("2026-11-03"), dec("1124000"), 1),
        ]
    );
    assert_eq!(report.total, dec("1124000"));
    assert_eq!(report.pnl, dec("-66000"));
    // Market moves: on the 2nd TON goes 5.00 -> 5.50 on the 100,000 the treasury held the
    // day before (its 20,000 sent away are not market) and the cold wallet's 50,000:
    // +50,000 + 25,000; on the 3rd TON 5.50 -> 5.20 on 80,000 + 50,000 + 20,000 = -45,000
    // and BTC 60,000 -> 62,000 on 2 = +4,000. The fund's EUR rate did not move; AAPL has no
    // price. 75,000 - 41,000 = 34,000; the other -100,000 are the USDT that left binance.
    assert_eq!(report.market_pnl, dec("34000"));

    /// account, asset, quantity, price, value, change.
    type Row<'a> = (&'a str, &'a str, Decimal, Prices, Prices, Prices);
    type Prices = Option<Decimal>;
    let rows: Vec<Row> = report
        .positions
        .iter()
        .map(|row| {
            (
                row.account.as_str(),
                row.asset.as_str(),
                row.quantity,
                row.price,
                row.value,
                row.change,
            )
        })
        .collect();
    let some = |text: &str| Some(dec(text));
    assert_eq!(
        rows,
        [
            // 80000 × 5.2; change 416000 − 500000.
            (
                "treasury-wallet",
                "TON",
                dec("80000"),
                some("5.20"),
                some("416000"),
                some("-84000")
            ),
            (
                "cold-wallet",
                "TON",
                dec("50000"),
                some("5.20"),
                some("260000"),
                some("10000")
            ),
            // 200000 EUR × 1.10, unchanged; the price of one unit is the whole value.
            (
                "private",
                "Fund A",
                dec("1"),
                some("220000"),
                some("220000"),
                some("0")
            ),
            (
                "binance",
                "BTC",
                dec("2"),
                some("62000"),
                some("124000"),
                some("4000")
            ),
            // Not held on 11-01: the whole value is the change.
            (
                "binance",
                "TON",
                dec("20000"),
                some("5.20"),
                some("104000"),
                some("104000")
            ),
            // Closed on 11-03: listed so the changes add up to the P&L.
            (
                "binance",
                "USDT",
                dec("0"),
                None,
                some("0"),
                some("-100000")
            ),
            ("equity-brokerage", "AAPL", dec("100"), None, None, None),
        ]
    );
    let changes: Decimal = report.positions.iter().filter_map(|row| row.change).sum();
    assert_eq!(changes, report.pnl);
    let fund = &report.positions[2];
    assert_eq!(fund.cost_basis, some("180000"));
    assert_eq!(fund.unrealized, some("40000"));
    assert_eq!(fund.valuation_date, Some(day("2026-10-15")));
    // 16 days to the end of October, 3 into November.
    assert_eq!(fund.stale_days, Some(19));
    assert_eq!(fund.as_of, day("2026-10-15"));
    let treasury = &report.positions[0];
    assert_eq!(treasury.valuation_date, None);
    assert_eq!(treasury.as_of, day("2026-11-02"));
    assert!((treasury.share.unwrap() - 416_000.0 / 1_124_000.0).abs() < 1e-12);
    assert_eq!(report.positions[6].share, None);

    assert_eq!(
        report.missing,
        [MissingValue {
            account: "equity-brokerage".to_owned(),
            asset: "AAPL".to_owned(),
            currency: "AAPL".to_owned(),
            days: 3,
            first_day: day("2026-11-01"),
            last_day: day("2026-11-03"),
        }]
    );

    // Crypto: TON 780000 + BTC 124000; private 220000. The closed USDT and the unvalued
    // AAPL are not allocated.
    let classes: Vec<(AssetClass, Decimal)> = report
        .allocation_by_class
        .iter()
        .map(|a| (a.class, a.value))
        .collect();
    assert_eq!(
        classes,
        [
            (AssetClass::Crypto, dec("904000")),
            (AssetClass::Private, dec("220000")),
        ]
    );
    let assets: Vec<(&str, Decimal)> = report
        .allocation_by_asset
        .iter()
        .map(|a| (a.asset.as_str(), a.value))
        .collect();
    assert_eq!(
        assets,
        [
            ("TON", dec("780000")),
            ("Fund A", dec("220000")),
            ("BTC", dec("124000")),
        ]
    );
    assert!((report.allocation_by_asset[0].share - 780_000.0 / 1_124_000.0).abs() < 1e-12);

    // TON: 780000 > 0.5 × 1124000 = 562000, 218000 above. Crypto: 904000 ≤ 0.9 × 1124000 =
    // 1011600. Private: 220000 > 0.15 × 1124000 = 168600, 51400 above.
    let breaches: Vec<(&str, Decimal, Decimal)> = report
        .breaches
        .iter()
        .map(|b| (b.limit.as_str(), b.value, b.excess_value))
        .collect();
    assert_eq!(
        breaches,
        [
            ("asset TON", dec("780000"), dec("218000")),
            ("class private", dec("220000"), dec("51400")),
        ]
    );
    assert_eq!(report.breaches[0].asset.as_deref(), Some("TON"));
    assert_eq!(report.breaches[1].class, Some(AssetClass::Private));
    assert_eq!(report.breaches[1].max_share, 0.15);

    // Three days of history are too few returns.
    assert_eq!(report.volatility, None);
    assert!(
        report
            .asset_volatility
            .iter()
            .all(|a| a.annualized.is_none())
    );

    // JSON keeps exact decimals.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["positions"][0]["class"], "crypto");
    assert_eq!(json["missing"][0]["days"], 3);
}

#[test]
fn a_period_of_one_day_and_a_from_after_to_value_that_day() {
    let (_dir, store) = store();
    three_days(&store);
    let finance = finance(&three_day_config());
    let one = valuation(
        store.ledger(),
        &finance,
        day("2026-11-02"),
        day("2026-11-02"),
    )
    .unwrap();
    assert_eq!(one.days.len(), 1);
    assert_eq!(one.total, dec("1265000"));
    assert_eq!(one.pnl, Decimal::ZERO);
    assert_eq!(one.missing[0].days, 1);
    let reversed = valuation(
        store.ledger(),
        &finance,
        day("2026-11-09"),
        day("2026-11-02"),
    )
    .unwrap();
    assert_eq!(reversed, one);
}

#[test]
fn a_revaluation_of_the_same_stake_is_market_and_a_larger_stake_is_money_in() {
    let (_dir, store) = store();
    let ledger = store.ledger();
    ledger
        .put_rates(&[rate("EUR", "2026-11-01", "1.10")])
        .unwrap();
    let fund = |date: &str, quantity: &str, value: &str| {
        let mut fund = holding(date, "private", "Fund A", AssetClass::Private, quantity);
        fund.valuation = Some(Valuation {
            value: dec(value),
            currency: "EUR".to_owned(),
        });
        fund
    };
    ledger
        .put_holdings(&[
            fund("2026-11-01", "1", "200000"),
            // Marked up by the manager: same stake, 230,000 EUR.
            fund("2026-11-02", "1", "230000"),
            // A second unit bought: 2 units valued 460,000 EUR.
            fund("2026-11-03", "2", "460000"),
        ])
        .unwrap();
    let report = valuation(
        ledger,
        &finance(&PortfolioConfig::default()),
        day("2026-11-01"),
        day("2026-11-03"),
    )
    .unwrap();
    // 220,000 -> 253,000 -> 506,000 USD: the mark-up (30,000 EUR at 1.10) is market, the
    // second unit is money in.
    assert_eq!(report.pnl, dec("286000"));
    assert_eq!(report.market_pnl, dec("33000"));
    let text = render_table(&report);
    assert!(
        text.contains("P&L since 2026-11-01: +286,000 USD (market +33,000, money in or out and trades +253,000)"),
        "{text}"
    );
}

#[test]
fn a_rate_older_than_the_max_age_leaves_the_position_unvalued() {
    let (_dir, store) = store();
    three_days(&store);
    let finance = FinanceConfig {
        max_rate_age_days: 0,
        ..finance(&three_day_config())
    };
    let report = valuation(
        store.ledger(),
        &finance,
        day("2026-11-02"),
        day("2026-11-02"),
    )
    .unwrap();
    // BTC, USDT and EUR have no rate of 11-02 itself.
    let missing: Vec<(&str, &str)> = report
        .missing
        .iter()
        .map(|m| (m.asset.as_str(), m.currency.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            ("BTC", "BTC"),
            ("USDT", "USDT"),
            ("AAPL", "AAPL"),
            ("Fund A", "EUR"),
        ]
    );
    // The three TON positions: 440000 + 275000 + 110000.
    assert_eq!(report.total, dec("825000"));
    assert_eq!(report.days[0].unvalued, 4);
}

// ---- rebalancing ----

fn report_with(limits: Vec<ConcentrationLimit>) -> (PortfolioReport, PortfolioConfig) {
    let (_dir, store) = store();
    three_days(&store);
    let config = PortfolioConfig {
        limits,
        ..three_day_config()
    };
    let report = valuation(
        store.ledger(),
        &finance(&config),
        day("2026-11-01"),
        day("2026-11-03"),
    )
    .unwrap();
    (report, config)
}

#[test]
fn excess_ton_moves_from_the_wallet_holding_the_most_and_other_breaches_are_sales() {
    let (report, config) = report_with(three_day_config().limits);
    let steps = rebalance_plan(&report, &config);
    // 218000 / 5.20 = 41923.0769230769..., rounded down to 9 decimals; the treasury wallet
    // (80000 TON) holds more than the cold one (50000) and covers it alone.
    assert_eq!(steps.len(), 2, "{steps:#?}");
    let RebalanceStep::Transfer {
        limit,
        asset,
        quantity,
        value,
        from_label,
        from_address,
        to_address,
        description,
    } = &steps[0]
    else {
        panic!("expected a transfer, got {:?}", steps[0]);
    };
    assert_eq!(limit, "asset TON");
    assert_eq!(asset, "TON");
    assert_eq!(*quantity, dec("41923.076923076"));
    // 41923.076923076 × 5.2 = 217999.9999999952, to the cent.
    assert_eq!(*value, dec("218000.00"));
    assert_eq!(from_label, "treasury-wallet");
    assert_eq!(from_address, TREASURY);
    assert_eq!(to_address, EXCHANGE);
    assert_eq!(
        description,
        &format!(
            "send 41923.076923076 TON (218,000 USD) from treasury-wallet to {EXCHANGE} to sell: \
             asset TON is 69.4% of the portfolio, the limit is 50.0%"
        )
    );
    assert_eq!(
        steps[1],
        RebalanceStep::Reduce {
            limit: "class private".to_owned(),
            value: dec("51400"),
            description: "sell 51,400 USD of private positions: class private is 19.6% of the \
                          portfolio, the limit is 15.0%"
                .to_owned(),
        }
    );
}

#[test]
fn excess_ton_beyond_the_largest_wallet_comes_from_the_next_and_the_rest_is_a_sale() {
    // 20%: 780000 − 0.2 × 1124000 = 555200 above; / 5.2 = 106769.230769230 TON: the treasury
    // wallet's 80000, then 26769.230769230 of the cold wallet's 50000.
    let (report, config) = report_with(vec![limit_asset("TON", 0.2)]);
    let steps = rebalance_plan(&report, &config);
    let transfers: Vec<(&str, Decimal)> = steps
        .iter()
        .map(|step| match step {
            RebalanceStep::Transfer {
                from_label,
                quantity,
                ..
            } => (from_label.as_str(), *quantity),
            other => panic!("expected transfers only, got {other:?}"),
        })
        .collect();
    assert_eq!(
        transfers,
        [
            ("treasury-wallet", dec("80000")),
            ("cold-wallet", dec("26769.230769230")),
        ]
    );

    // 5%: 780000 − 56200 = 723800 above; / 5.2 = 139192.307692307 TON. The wallets hold
    // 130000; the 9192.307692307 TON left (47800.00 USD) are in binance.
    let (report, config) = report_with(vec![limit_asset("TON", 0.05)]);
    let steps = rebalance_plan(&report, &config);
    assert_eq!(steps.len(), 3, "{steps:#?}");
    let RebalanceStep::Reduce {
        value, description, ..
    } = &steps[2]
    else {
        panic!("expected a sale, got {:?}", steps[2]);
    };
    assert_eq!(*value, dec("47800.00"));
    assert!(
        description.ends_with("(9192.307692307 TON more, held in binance)"),
        "{description}"
    );

    // Without a destination, the whole excess is a sale with a hint.
    let config = PortfolioConfig {
        rebalance_to: None,
        ..config
    };
    let steps = rebalance_plan(&report, &config);
    let [
        RebalanceStep::Reduce {
            value, description, ..
        },
    ] = steps.as_slice()
    else {
        panic!("expected one sale, got {steps:?}");
    };
    assert_eq!(*value, dec("723800"));
    assert!(
        description.ends_with("(set finance.portfolio.rebalance_to for a transfer plan)"),
        "{description}"
    );
}

// ---- volatility ----

/// 1000 TON in a wallet from 10-02; TON alternates 5.00 and 5.50 a day from 10-01 to 10-31
/// (31 days). Over a 30-day window to 10-31 the total's daily log returns are ±ln 1.1, 15 of
/// each, 30 in all: mean 0, sample variance 30 (ln 1.1)² / 29.
#[test]
fn volatility_is_the_annualized_stdev_of_daily_log_returns_over_the_window() {
    let (_dir, store) = store();
    let ledger = store.ledger();
    let start = day("2026-10-01");
    let rates: Vec<Rate> = (0..31u64)
        .map(|offset| Rate {
            base: "TON".to_owned(),
            quote: "USD".to_owned(),
            date: start.checked_add_days(Days::new(offset)).unwrap(),
            rate: if offset % 2 == 0 {
                dec("5.00")
            } else {
                dec("5.50")
            },
        })
        .collect();
    ledger.put_rates(&rates).unwrap();
    ledger
        .put_holdings(&[holding(
            "2026-09-01",
            "cold-wallet",
            "TON",
            AssetClass::Crypto,
            "1000",
        )])
        .unwrap();
    let config = PortfolioConfig::default();
    let report = valuation(
        ledger,
        &finance(&config),
        day("2026-10-31"),
        day("2026-10-31"),
    )
    .unwrap();
    let expected = 1.1f64.ln() * (30.0f64 / 29.0).sqrt() * 365f64.sqrt();
    let volatility = report.volatility.unwrap();
    assert!(
        (volatility - expected).abs() < 1e-12,
        "{volatility} vs {expected}"
    );
    assert_eq!(report.volatility_window_days, 30);
    assert_eq!(report.asset_volatility.len(), 1);
    let asset = report.asset_volatility[0].annualized.unwrap();
    assert!((asset - expected).abs() < 1e-12, "{asset} vs {expected}");
    // One day shown, the window valued behind it.
    assert_eq!(report.days.len(), 1);

    // Holdings from 10-23 give 8 returns in the window: too few.
    let (_dir, store) = self::store();
    store.ledger().put_rates(&rates).unwrap();
    store
        .ledger()
        .put_holdings(&[holding(
            "2026-10-23",
            "cold-wallet",
            "TON",
            AssetClass::Crypto,
            "1000",
        )])
        .unwrap();
    let report = valuation(
        store.ledger(),
        &finance(&config),
        day("2026-10-31"),
        day("2026-10-31"),
    )
    .unwrap();
    assert_eq!(report.volatility, None);
    // The rate itself has the whole window.
    assert!(report.asset_volatility[0].annualized.is_some());
}

// ---- staking comparison ----

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn pool(name: &str, apy: f64, verified: bool, min_stake_nanoton: u128) -> StakingPool {
    StakingPool {
        address: format!("-1:{}", "ab".repeat(32)),
        name: name.to_owned(),
        implementation: "tf".to_owned(),
        apy,
        min_stake_nanoton,
        total_amount_nanoton: 0,
        verified,
        current_nominators: 0,
        max_nominators: 0,
        cycle_start: 0,
        cycle_end: 0,
    }
}

fn cycle(stake: &str, reward: &str, staked_at: &str, returned_at: &str) -> StakeCycle {
    StakeCycle {
        validator: "v1".to_owned(),
        staked_ton: dec(stake),
        reward_ton: dec(reward),
        staked_at: at(staked_at),
        returned_at: at(returned_at),
    }
}

/// A: 300000 TON earn 1% in 91.25 days (4 cycles a year): 1.01⁴ − 1 = 4.060401%.
/// B: 100000 TON earn 0.5% in 73 days (5 a year): 1.005⁵ − 1 = 2.5251253128125%.
/// Stake-weighted: (3 × 4.060401 + 2.5251253128125) / 4 = 3.676582078203125%.
fn cycles() -> Vec<StakeCycle> {
    vec![
        cycle(
            "300000",
            "3000",
            "2026-08-01T00:00:00Z",
            "2026-10-31T06:00:00Z",
        ),
        cycle(
            "100000",
            "500",
            "2026-08-19T00:00:00Z",
            "2026-10-31T00:00:00Z",
        ),
        // Returned more than 90 days before the latest: left out.
        cycle(
            "500000",
            "50000",
            "2026-06-01T00:00:00Z",
            "2026-07-31T00:00:00Z",
        ),
        // Back before it was sent: left out.
        cycle(
            "100000",
            "10",
            "2026-10-02T00:00:00Z",
            "2026-10-01T00:00:00Z",
        ),
    ]
}

#[test]
fn own_yield_is_compounded_per_cycle_and_stake_weighted_against_the_best_verified_pool() {
    let pools = [
        pool("Whales Pool #1", 4.8, true, 50_000_000_000),
        pool("Tonstakers", 6.0, false, 1_000_000_000),
        pool("Very First Pool #1", 5.31, true, 10_000_000_000_000),
    ];
    let comparison = staking_comparison(&cycles(), &pools);
    let own = comparison.own_apy.unwrap();
    assert!((own - 3.676_582_078_203_125).abs() < 1e-9, "{own}");
    assert_eq!(comparison.cycles_used, 2);
    let names: Vec<&str> = comparison.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["Tonstakers", "Very First Pool #1", "Whales Pool #1"]
    );
    let best = comparison.best_pool.as_ref().unwrap();
    assert_eq!(best.name, "Very First Pool #1");
    assert_eq!(best.min_stake_ton, dec("10000"));
    assert_eq!(comparison.pools[0].min_stake_ton, dec("1"));
    let spread = comparison.spread_pct_points.unwrap();
    assert!(
        (spread - (5.31 - 3.676_582_078_203_125)).abs() < 1e-9,
        "{spread}"
    );
    assert_eq!(
        comparison.suggestion,
        "own validators earn 3.68% against 5.31% at Very First Pool #1 (verified), 1.63 percentage \
         points less; the pool would have paid more on the same stake (minimum 10000 TON); \
         Tonstakers pays 6.00% but is not verified"
    );
}

#[test]
fn the_suggestion_says_when_own_validators_earn_more_or_there_is_nothing_to_compare() {
    let pools = [pool("Whales Pool #1", 3.0, true, 50_000_000_000)];
    let comparison = staking_comparison(&cycles(), &pools);
    assert_eq!(
        comparison.suggestion,
        "own validators earn 3.68%, 0.68 percentage points more than the best verified pool \
         (Whales Pool #1 at 3.00%); keep validating"
    );
    assert!(comparison.spread_pct_points.unwrap() < 0.0);

    let nothing_own = staking_comparison(&[], &pools);
    assert_eq!(nothing_own.own_apy, None);
    assert_eq!(nothing_own.spread_pct_points, None);
    assert_eq!(
        nothing_own.suggestion,
        "no own stake cycle returned in the last 90 days to compare; the best verified pool is \
         Whales Pool #1 at 3.00%"
    );

    let no_pools = staking_comparison(&cycles(), &[]);
    assert_eq!(no_pools.best_pool, None);
    assert_eq!(
        no_pools.suggestion,
        "tonapi lists no staking pools to compare with"
    );

    let unverified_only = staking_comparison(&cycles(), &[pool("Tonstakers", 4.6, false, 1)]);
    assert_eq!(
        unverified_only.suggestion,
        "own validators earn 3.68% a year; no verified pool to compare with; Tonstakers pays \
         4.60% but is not verified"
    );
}

// ---- rendering ----

#[test]
fn the_table_shows_positions_totals_breaches_and_what_has_no_value() {
    let (report, _) = report_with(three_day_config().limits);
    let table = render_table(&report);
    let expected = "\
account           asset   class       quantity  price (USD)  value (USD)  share    change  unrealized  note
--------------------------------------------------------------------------------------------------------------------------------------
treasury-wallet   TON     crypto         80000          5.2      416,000  37.0%   -84,000           -
cold-wallet       TON     crypto         50000          5.2      260,000  23.1%   +10,000           -
private           Fund A  private            1       220000      220,000  19.6%         0     +40,000  valued 2026-10-15 (19 days old)
binance           BTC     crypto             2        62000      124,000  11.0%    +4,000           -
binance           TON     crypto         20000          5.2      104,000   9.3%  +104,000           -
binance           USDT    stablecoin         0            -            0   0.0%  -100,000           -  closed 2026-11-03
equity-brokerage  AAPL    equity           100            -            -      -         -           -  no rate
";
    assert!(table.starts_with(expected), "{table}");
    for line in [
        "total on 2026-11-03: 1,124,000 USD; P&L since 2026-11-01: -66,000 USD",
        "allocation: crypto 80.4%, private 19.6%",
        "volatility (30 days, annualized): unknown (fewer than 10 daily returns)",
        "limit exceeded: asset TON is 69.4% of the portfolio, the limit is 50.0%: 218,000 USD above it",
        "limit exceeded: class private is 19.6% of the portfolio, the limit is 15.0%: 51,400 USD above it",
        "warning: AAPL in equity-brokerage has no USD value on 3 day(s) (2026-11-01 to 2026-11-03): no AAPL/USD rate",
    ] {
        assert!(table.contains(line), "missing {line:?} in\n{table}");
    }
}

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

mod onchain_sync {
    use std::time::Duration;

    use agents::finance::onchain::{AccountKind, OnchainAccount};
    use agents::validators::WatchedValidator;
    use memory::ledger::EntrySource;
    use rust_decimal::Decimal;
    use tools::prometheus::PrometheusScraper;
    use tools::sim::{Scenario, SimWorld};
    use tools::toncenter::ToncenterClient;

    use crate::finance::onchain::{customers_series, stake_cycles, sync, utilization_series};

    const V1: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
    const COCOON: &str = "0:4444444444444444444444444444444444444444444444444444444444444444";
    const ALICE: &str = "0:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BOB: &str = "0:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// v1 stakes 700,000 TON at 1m and gets 700,123.5 back at 30m; two customers pay the
    /// Cocoon wallet; v1 also tops up the Cocoon wallet (internal, not income).
    fn scenario() -> Scenario {
        let elector = tools::ton::elector::ELECTOR_ADDRESS;
        Scenario::from_toml(
            &format!(
                r#"
name = "onchain income"
seed = 7
start = "2026-11-02T00:00:00Z"

[[validators]]
name = "v1"
address = "{V1}"
balance_ton = 800000.0

[[cocoon_nodes]]
name = "worker-1"
utilization = [0.9, 0.6]
customers = 4

[[events]]
kind = "transfer"
at = "1m"
from = "{V1}"
to = "{elector}"
amount_ton = 700000.0

[[events]]
kind = "transfer"
at = "5m"
from = "{ALICE}"
to = "{COCOON}"
amount_ton = 12.5
comment = "job 881"

[[events]]
kind = "transfer"
at = "6m"
from = "{V1}"
to = "{COCOON}"
amount_ton = 100.0

[[events]]
kind = "transfer"
at = "7m"
from = "{BOB}"
to = "{COCOON}"
amount_ton = 40.0

[[events]]
kind = "stake_returned"
at = "30m"
validator = "v1"
amount_ton = 700123.5

[[events]]
kind = "transfer"
at = "40m"
from = "{ALICE}"
to = "{COCOON}"
amount_ton = 7.25
comment = "job 902"
"#
            ),
            "onchain.toml",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn validator_rewards_and_cocoon_payments_are_booked_once_from_the_simulated_chain() {
        let sim = SimWorld::start(scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let retry = tools::http::RetryPolicy::default();
        let client =
            ToncenterClient::new(&sim.toncenter_url(), None, 1000.0, retry.clone()).unwrap();
        let scraper = PrometheusScraper::new(1000.0, retry, 1 << 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = memory::Store::open(dir.path()).unwrap();
        let mut config = agents::finance::FinanceConfig::default();
        config.onchain.accounts.push(OnchainAccount {
            address: COCOON.to_owned(),
            label: "worker-1".to_owned(),
            kind: AccountKind::Cocoon,
            stream: None,
            reward_share: None,
            metrics_url: Some(sim.cocoon_metrics_url("worker-1")),
            utilization_metric: "cocoon_worker_utilization_ratio".to_owned(),
            customers_metric: "cocoon_active_customers".to_owned(),
            rules: Vec::new(),
        });
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        let validators: Vec<WatchedValidator> = serde_json::from_value(serde_json::json!([
            { "name": "v1", "wallet": tools::ton::parse_address(V1).unwrap().friendly }
        ]))
        .unwrap();

        let sync_now = || async {
            sync(
                &store,
                &config,
                &validators,
                &client,
                Some(&scraper),
                "test",
            )
            .await
            .unwrap()
        };

        // 10m: the stake is out, two customers have paid; nothing came back yet.
        sim.advance(Duration::from_secs(600));
        let first = sync_now().await;
        let cocoon = &first.accounts[0];
        assert_eq!(cocoon.error, None);
        assert_eq!((cocoon.read, cocoon.new_entries, cocoon.payers), (3, 2, 2));
        assert_eq!(cocoon.income_ton, Decimal::new(525, 1));
        assert_eq!(cocoon.skipped, 1, "v1's top-up is ours");
        let metrics = cocoon.metrics.as_ref().unwrap();
        assert_eq!(metrics.customers, Some(4.0));
        assert!((metrics.utilization.unwrap() - 0.75).abs() < 1e-12);
        let v1 = &first.accounts[1];
        assert_eq!((v1.label.as_str(), v1.kind), ("v1", AccountKind::Validator));
        assert_eq!(
            (v1.read, v1.new_entries),
            (2, 0),
            "the stake and the top-up"
        );
        assert!(v1.cycles.is_empty());

        // 45m: the stake came back with 123.5 TON, and Alice paid again.
        sim.advance(Duration::from_secs(2100));
        let second = sync_now().await;
        assert_eq!(
            (second.accounts[0].read, second.accounts[0].new_entries),
            (1, 1),
            "only what is new is read"
        );
        let v1 = &second.accounts[1];
        assert_eq!((v1.read, v1.new_entries), (1, 1));
        assert_eq!(v1.income_ton, Decimal::new(1235, 1));
        assert_eq!(v1.cycles[0].staked_ton, Decimal::from(700_000));

        let entries = store.ledger().entries(None, None).unwrap();
        let booked: Vec<(&str, String, &str)> = entries
            .iter()
            .map(|entry| {
                (
                    entry.stream.as_deref().unwrap(),
                    entry.amount.normalize().to_string(),
                    entry.description.as_str(),
                )
            })
            .collect();
        assert_eq!(booked.len(), 4, "{booked:?}");
        for expected in [
            ("cocoon", "12.5".to_owned(), "job 881"),
            ("cocoon", "40".to_owned(), "payment"),
            ("cocoon", "7.25".to_owned(), "job 902"),
            (
                "validators",
                "123.5".to_owned(),
                "stake returned: 700123.5 TON for 700000 TON staked on 2026-11-02",
            ),
        ] {
            assert!(booked.contains(&expected), "{expected:?} in {booked:?}");
        }
        assert!(entries.iter().all(|entry| entry.currency == "TON"
            && matches!(&entry.source, EntrySource::OnChain { tx, .. } if !tx.is_empty())));

        // A third sync with nothing new books nothing; the cycle is kept for the APY.
        let third = sync_now().await;
        assert_eq!(third.new_entries(), 0);
        assert_eq!(store.ledger().len(), 4);
        let cycles = stake_cycles(&store).unwrap();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].reward_ton, Decimal::new(1235, 1));
        let series = store.series();
        let now = chrono::Utc::now() + chrono::Duration::hours(1);
        let from = now - chrono::Duration::days(1);
        let utilization = series
            .range(&utilization_series("worker-1"), from, now)
            .unwrap();
        assert!((utilization.last().unwrap().value - 0.75).abs() < 1e-12);
        let customers = series
            .range(&customers_series("worker-1"), from, now)
            .unwrap();
        assert_eq!(customers.last().unwrap().value, 4.0);
        let journal = store
            .journal()
            .query(&memory::JournalQuery::default())
            .unwrap();
        assert_eq!(
            journal
                .iter()
                .filter(|entry| entry.kind == "finance.onchain_synced")
                .count(),
            2,
            "journaled when something was booked"
        );
    }

    #[tokio::test]
    async fn an_unreachable_account_is_reported_and_the_others_still_sync() {
        let sim = SimWorld::start(scenario(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        sim.advance(Duration::from_secs(600));
        let retry = tools::http::RetryPolicy {
            max_attempts: 1,
            ..tools::http::RetryPolicy::default()
        };
        let client =
            ToncenterClient::new(&sim.toncenter_url(), None, 1000.0, retry.clone()).unwrap();
        let scraper = PrometheusScraper::new(1000.0, retry, 1 << 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = memory::Store::open(dir.path()).unwrap();
        let mut config = agents::finance::FinanceConfig::default();
        let cocoon = OnchainAccount {
            address: COCOON.to_owned(),
            label: "worker-1".to_owned(),
            kind: AccountKind::Cocoon,
            stream: None,
            reward_share: None,
            // A node that is not in the scenario: 404.
            metrics_url: Some(sim.cocoon_metrics_url("worker-9")),
            utilization_metric: "cocoon_worker_utilization_ratio".to_owned(),
            customers_metric: "cocoon_active_customers".to_owned(),
            rules: Vec::new(),
        };
        config.onchain.accounts.push(cocoon);
        let summary = sync(&store, &config, &[], &client, Some(&scraper), "test")
            .await
            .unwrap();
        let account = &summary.accounts[0];
        // The payments are booked; v1 is not watched here, so its transfer counts as a customer's.
        assert_eq!(account.new_entries, 3);
        let error = account.error.as_deref().unwrap();
        assert!(error.starts_with("metrics: "), "{error}");
        assert!(error.contains("404"), "{error}");
    }
}

mod portfolio_check {
    use agents::alert::AlertStatus;
    use agents::finance::portfolio::{ConcentrationLimit, PortfolioWallet};
    use chrono::Utc;
    use memory::ledger::Rate;
    use rust_decimal::Decimal;
    use tools::sim::{Scenario, SimWorld};

    use crate::finance::onchain::OnchainSources;
    use crate::finance::portfolio::{check, import_balances, view};

    const TREASURY: &str = "-1:1111111111111111111111111111111111111111111111111111111111111111";
    const EXCHANGE: &str = "0:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

    #[tokio::test]
    async fn a_broken_limit_alerts_once_proposes_the_transfer_and_resolves() {
        let (_sim, mut config) = jetton_world(&[]).await;
        let fixture = crate::test_support::gate_fixture(
            |_| crate::executors::ExecutorsConfig::default(),
            vec![crate::config::UserConfig {
                name: "tess".into(),
                roles: vec!["treasurer".into(), "operator".into()],
                token_sha256: None,
                telegram_id: None,
                slack_id: None,
            }],
        )
        .await;
        let store = fixture.store.clone();
        config.finance.portfolio.limits = vec![ConcentrationLimit {
            asset: Some("TON".to_owned()),
            class: None,
            max_share: 0.5,
        }];
        config.finance.portfolio.rebalance_to = Some(EXCHANGE.to_owned());
        assert!(
            config.finance.problems().is_empty(),
            "{:?}",
            config.finance.problems()
        );
        let finance = &config.finance;
        let sources = OnchainSources::from_config(&config).unwrap();
        let today = Utc::now().date_naive();
        let rate = |base: &str, rate: i64| Rate {
            base: base.to_owned(),
            quote: "USD".to_owned(),
            date: today,
            rate: Decimal::from(rate),
        };
        store
            .ledger()
            .put_rates(&[rate("TON", 5), rate("USDT", 1)])
            .unwrap();
        let custody = |usdt: u32| {
            format!("date,account,asset,class,quantity\n{today},custody,USDT,stablecoin,{usdt}\n")
        };
        import_balances(
            &store,
            custody(3000).as_bytes(),
            "custody.csv",
            false,
            "test",
        )
        .unwrap();

        // 1,000 TON at 5 USD = 5,000 of 8,000: 62.5% against a 50% limit, 1,000 USD over,
        // so 200 TON go to the exchange.
        let first = view(&store, finance, &sources, 30, today).await.unwrap();
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!(first.wallets[0].balance_ton, Some(Decimal::from(1000)));
        assert_eq!(first.report.total, Decimal::from(8000));
        assert_eq!(first.report.breaches.len(), 1);
        assert_eq!(first.report.breaches[0].excess_value, Decimal::from(1000));
        let staking = first.staking.as_ref().unwrap();
        assert_eq!(staking.pools.len(), 3, "the simulated tonapi pools");
        assert_eq!(staking.own_apy, None, "no stake cycle yet");

        let telemetry = agents::telemetry::Telemetry::default();
        let outcome = check(&first, &fixture.auditor, &telemetry, Some(&fixture.gate))
            .await
            .unwrap();
        assert_eq!(outcome.alerts.len(), 1);
        let alert = &outcome.alerts[0];
        assert_eq!(alert.key, "finance.concentration/asset_TON");
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(
            alert.summary,
            "asset TON is 62.5% of the portfolio, above its 50.0% limit: 1000.00 USD over"
        );
        assert_eq!(outcome.proposals.len(), 1);
        let operation = &outcome.proposals[0].proposal.operation;
        assert_eq!(operation.kind, "ton_transfer");
        assert_eq!(operation.amount_nanoton, 200_000_000_000);
        assert_eq!(operation.amount_cents, 100_000);
        assert_eq!(operation.parameters["destination"], EXCHANGE);
        assert_eq!(operation.parameters["amount_nanoton"], 200_000_000_000u64);

        // The next day's check: still broken, but already announced: nothing new.
        let again = view(&store, finance, &sources, 30, today).await.unwrap();
        let repeat = check(&again, &fixture.auditor, &telemetry, Some(&fixture.gate))
            .await
            .unwrap();
        assert!(repeat.alerts.is_empty() && repeat.proposals.is_empty());

        // More stablecoins: 5,000 of 12,000 is 41.7%, the alert resolves.
        import_balances(
            &store,
            custody(7000).as_bytes(),
            "custody.csv",
            false,
            "test",
        )
        .unwrap();
        let within = view(&store, finance, &sources, 30, today).await.unwrap();
        assert!(within.report.breaches.is_empty());
        let resolved = check(&within, &fixture.auditor, &telemetry, Some(&fixture.gate))
            .await
            .unwrap();
        assert_eq!(resolved.alerts.len(), 1);
        assert_eq!(resolved.alerts[0].status, AlertStatus::Resolved);
        assert_eq!(
            resolved.alerts[0].summary,
            "asset TON is back within its limit"
        );
    }

    /// A treasury wallet of 1,000 TON holding `jettons` (TOML `[[jettons]]` bodies), read
    /// through a fresh sim; the sources follow the config of the returned sim.
    async fn jetton_world(jettons: &[&str]) -> (tools::sim::SimHandle, crate::config::Config) {
        let mut text = format!(
            "name = \"jettons\"\nseed = 3\n\n[[validators]]\nname = \"treasury\"\naddress = \"{TREASURY}\"\nbalance_ton = 1000.0\n"
        );
        for jetton in jettons {
            text.push_str(&format!(
                "\n[[jettons]]\nowner = \"{TREASURY}\"\n{jetton}\n"
            ));
        }
        let scenario = Scenario::from_toml(&text, "jettons.toml").unwrap();
        let sim = SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut config = crate::config::load(&crate::config::ConfigSource::Embedded, &[]).unwrap();
        config.sources.toncenter.base_url = sim.toncenter_url();
        config.sources.tonapi.base_url = sim.tonapi_url();
        config.sources.toncenter.requests_per_second = 1000.0;
        config.sources.tonapi.api_key = Some(tools::secret::Secret::new("test-key"));
        // With a key tonapi's limit is the configured one (4 s between keyless requests).
        config.sources.tonapi.requests_per_second = 1000.0;
        config.finance.portfolio.wallets = vec![PortfolioWallet {
            address: TREASURY.to_owned(),
            label: "treasury".to_owned(),
        }];
        (sim, config)
    }

    const TETHER: &str =
        "symbol = \"USD₮\"\ndecimals = 6\nbalance = \"2500000000\"\nprice_usd = 1.0";
    const TSTON: &str = "symbol = \"tsTON\"\nbalance = \"10000000000\"\nprice_usd = 5.5";
    const UNLISTED: &str = "symbol = \"USDT\"\ndecimals = 6\nbalance = \"1000000000\"\nverification = \"none\"\nprice_usd = 1.0";
    const SCAM: &str = "symbol = \"USDT\"\nname = \"Claim your USDT\"\nbalance = \"1000000000000000\"\nverification = \"blacklist\"\nprice_usd = 1.0";

    #[tokio::test]
    async fn jettons_are_holdings_priced_by_tonapi_spam_is_named_and_a_jetton_gone_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = memory::Store::open(dir.path()).unwrap();
        let today = Utc::now().date_naive();
        let rate = |base: &str, rate: &str| Rate {
            base: base.to_owned(),
            quote: "USD".to_owned(),
            date: today,
            rate: rate.parse().unwrap(),
        };
        // TON at 5; a USDT rate the day already has (CoinGecko, a file) stays.
        store
            .ledger()
            .put_rates(&[rate("TON", "5"), rate("USDT", "0.99")])
            .unwrap();

        let (_sim, config) = jetton_world(&[TETHER, TSTON, SCAM]).await;
        let sources = OnchainSources::from_config(&config).unwrap();
        let first = view(&store, &config.finance, &sources, 30, today)
            .await
            .unwrap();
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        let wallet = &first.wallets[0];
        let counted: Vec<(&str, String)> = wallet
            .jettons
            .iter()
            .map(|j| (j.asset.as_str(), j.quantity.to_string()))
            .collect();
        assert_eq!(
            counted,
            [("USDT", "2500".to_owned()), ("TSTON", "10".to_owned())]
        );
        assert_eq!(
            wallet.ignored_jettons.len(),
            1,
            "{:?}",
            wallet.ignored_jettons
        );
        assert!(
            wallet.ignored_jettons[0].starts_with("USDT: blacklist"),
            "{:?}",
            wallet.ignored_jettons
        );
        // 1,000 TON × 5 + 2,500 USDT × 0.99 (the stored rate, not tonapi's 1.0) + 10 tsTON ×
        // 5.5 (tonapi's price, stored as the day's rate) = 5,000 + 2,475 + 55.
        assert_eq!(first.report.total, Decimal::from(7530));
        let class = |asset: &str| {
            first
                .report
                .positions
                .iter()
                .find(|row| row.asset == asset)
                .map(|row| row.class)
        };
        assert_eq!(class("USDT"), Some(memory::ledger::AssetClass::Stablecoin));
        assert_eq!(class("TSTON"), Some(memory::ledger::AssetClass::Crypto));
        assert_eq!(
            store.ledger().rate_on("TSTON", "USD", today, 0).unwrap(),
            Some((today, "5.5".parse().unwrap()))
        );
        assert_eq!(
            store.ledger().rate_on("USDT", "USD", today, 0).unwrap(),
            Some((today, "0.99".parse().unwrap()))
        );

        // The tsTON were sent away: tonapi no longer lists them, the position is closed at 0
        // instead of being carried forward.
        let (_sim, config) = jetton_world(&[TETHER]).await;
        let sources = OnchainSources::from_config(&config).unwrap();
        let second = view(&store, &config.finance, &sources, 30, today)
            .await
            .unwrap();
        assert_eq!(second.report.total, Decimal::from(7475));

        // `jettons = "all"` counts all but the black list; a USDT off the white list is its
        // own position with its own price, never the real USDT.
        let (_sim, mut config) = jetton_world(&[TETHER, SCAM, UNLISTED]).await;
        config.finance.portfolio.jettons = agents::finance::portfolio::JettonPolicy::All;
        let sources = OnchainSources::from_config(&config).unwrap();
        let all = view(&store, &config.finance, &sources, 30, today)
            .await
            .unwrap();
        let assets: Vec<&str> = all.wallets[0]
            .jettons
            .iter()
            .map(|j| j.asset.as_str())
            .collect();
        assert_eq!(assets.len(), 2, "{assets:?}");
        assert_eq!(assets[0], "USDT");
        assert!(assets[1].starts_with("USDT ("), "{assets:?}");
        // 5,000 + 2,475 + 1,000 unlisted "USDT" at tonapi's 1.0.
        assert_eq!(all.report.total, Decimal::from(8475));

        // With `jettons = "none"` nothing is asked of tonapi's jettons, and those held are
        // closed: TON alone remains.
        let (sim, mut config) = jetton_world(&[TETHER, SCAM]).await;
        config.finance.portfolio.jettons = agents::finance::portfolio::JettonPolicy::None;
        let sources = OnchainSources::from_config(&config).unwrap();
        let none = view(&store, &config.finance, &sources, 30, today)
            .await
            .unwrap();
        assert!(none.wallets[0].jettons.is_empty() && none.wallets[0].ignored_jettons.is_empty());
        assert_eq!(sim.request_count("tonapi"), 1, "the staking pools only");
        assert_eq!(none.report.total, Decimal::from(5000));
    }

    #[tokio::test]
    async fn jettons_that_cannot_be_read_are_a_problem_and_the_ton_balance_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = memory::Store::open(dir.path()).unwrap();
        let today = Utc::now().date_naive();
        store
            .ledger()
            .put_rates(&[Rate {
                base: "TON".to_owned(),
                quote: "USD".to_owned(),
                date: today,
                rate: Decimal::from(5),
            }])
            .unwrap();
        let (_sim, mut config) = jetton_world(&[TETHER]).await;
        // tonapi unreachable: a closed port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        config.sources.tonapi.base_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        config.sources.tonapi.retry.max_attempts = 1;
        let sources = OnchainSources::from_config(&config).unwrap();
        let outcome = view(&store, &config.finance, &sources, 30, today)
            .await
            .unwrap();
        assert_eq!(outcome.report.total, Decimal::from(5000));
        assert!(
            outcome.problems[0].starts_with("wallet treasury jettons: "),
            "{:?}",
            outcome.problems
        );
        assert!(
            outcome.problems[1].starts_with("staking pools: "),
            "{:?}",
            outcome.problems
        );
    }

    #[test]
    fn a_bad_balances_file_is_refused_whole_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store = memory::Store::open(dir.path()).unwrap();
        let text = "date,account,asset,class,quantity\n2026-11-20,custody,USDT,stablecoin,100\n2026-11-20,custody,BTC,metal,1\n2026-13-01,custody,ETH,crypto,2\n";
        let error = import_balances(&store, text.as_bytes(), "custody.csv", false, "test")
            .unwrap_err()
            .to_string();
        assert!(error.contains("custody.csv"), "{error}");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("line 4"), "{error}");
        assert_eq!(
            store.ledger().holdings_len(),
            0,
            "nothing from a rejected file"
        );
    }
}

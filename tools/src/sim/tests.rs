use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::coingecko::{CoinGeckoClient, CoinGeckoPlan};
use crate::test_support::{TEST_SCENARIO, fast_policy, loopback, start_sim};

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text, "test.toml").unwrap()
}

fn parse_error(text: &str) -> String {
    Scenario::from_toml(text, "bad.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn the_embedded_demo_scenario_loads_and_validates() {
    let demo = Scenario::demo();
    assert_eq!(demo.name, "demo");
    assert_eq!(demo.speed, 1.0);
    let coins: Vec<&str> = demo.coins.iter().map(|coin| coin.symbol.as_str()).collect();
    assert_eq!(coins, ["TON", "BTC", "ETH"]);
    assert_eq!(demo.validators.len(), 2);
    let drop = demo
        .events
        .iter()
        .find_map(|event| match event {
            SimEvent::PriceMove {
                at,
                coin,
                percent,
                over,
            } if *percent < 0.0 => Some((*at, coin.clone(), *percent, *over)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        drop,
        (
            Duration::from_secs(120),
            "the-open-network".to_owned(),
            -12.0,
            Duration::from_secs(120)
        )
    );
    assert!(
        demo.faults
            .iter()
            .any(|fault| fault.service == SimService::Coingecko
                && matches!(fault.kind, FaultKind::RateLimit { .. }))
    );
    demo.validate("demo").unwrap();
}

#[test]
fn offsets_parse_units_and_explain_mistakes() {
    assert_eq!(parse_sim_offset("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_sim_offset("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_sim_offset("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_sim_offset("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_sim_offset("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_sim_offset("250ms"), Ok(Duration::from_millis(250)));
    assert!(parse_sim_offset("90").unwrap_err().contains("has no unit"));
    assert!(
        parse_sim_offset("m5")
            .unwrap_err()
            .contains("expected a number")
    );
    assert!(
        parse_sim_offset("5w")
            .unwrap_err()
            .contains("unknown unit \"w\"")
    );
    assert!(parse_sim_offset("").unwrap_err().contains("empty"));
    assert_eq!(
        parse_sim_offset(&format_offset(Duration::from_secs(150))),
        Ok(Duration::from_secs(150))
    );
}

#[test]
fn toml_errors_name_origin_line_and_key_path() {
    let unknown_key = parse_error(
        "name = \"x\"\n\n[[coins]]\nid = \"a\"\nsymbol = \"A\"\nprice_usd = 1.0\ncolour = \"red\"\n",
    );
    assert!(unknown_key.starts_with("bad.toml:"), "{unknown_key}");
    assert!(
        unknown_key.contains("unknown field `colour`"),
        "{unknown_key}"
    );
    assert!(unknown_key.contains("`coins[0]"), "{unknown_key}");

    let bad_offset = parse_error(
        "name = \"x\"\n[[coins]]\nid = \"a\"\nsymbol = \"A\"\nprice_usd = 1.0\n\n[[events]]\nat = \"90\"\nkind = \"price_move\"\ncoin = \"a\"\npercent = 5.0\n",
    );
    // serde buffers internally tagged tables, so the line is the event's `[[events]]`
    // header and the field is named in the message.
    assert!(bad_offset.starts_with("bad.toml:7:"), "{bad_offset}");
    assert!(bad_offset.contains("`events[0]`"), "{bad_offset}");
    assert!(bad_offset.contains("field `at`"), "{bad_offset}");
    assert!(bad_offset.contains("has no unit"), "{bad_offset}");

    let wrong_type = parse_error("name = \"x\"\nspeed = \"fast\"\n");
    assert!(wrong_type.starts_with("bad.toml:2:"), "{wrong_type}");
    assert!(wrong_type.contains("`speed`"), "{wrong_type}");

    let bad_fault = parse_error(
        "name = \"x\"\n\n[[faults]]\nservice = \"coingecko\"\nkind = \"server_error\"\nstatus = 418\n",
    );
    assert!(bad_fault.starts_with("bad.toml:3:"), "{bad_fault}");
    assert!(bad_fault.contains("`faults[0]`"), "{bad_fault}");
    assert!(
        bad_fault.contains("500, 502, 503 or 504, got 418"),
        "{bad_fault}"
    );
}

#[test]
fn validation_collects_every_problem_with_lines() {
    let text = "name = \"x\"\nspeed = -1.0\n\n[[coins]]\nid = \"a\"\nsymbol = \"A\"\nprice_usd = 0.0\n\n[[events]]\nat = \"1m\"\nkind = \"price_move\"\ncoin = \"zzz\"\npercent = 5.0\n";
    let error = Scenario::from_toml(text, "bad.toml").unwrap_err();
    let SimError::Invalid { problems, .. } = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("bad.toml:2: at `speed`"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("bad.toml:7: at `coins[0].price_usd`"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].starts_with("bad.toml:12: at `events[0].coin`"),
        "{}",
        problems[2]
    );
    assert!(
        problems[2].contains("unknown coin \"zzz\""),
        "{}",
        problems[2]
    );
}

#[tokio::test]
async fn the_walk_is_deterministic_per_seed_and_sim_time() {
    let first = start_sim().await;
    let second = start_sim().await;
    let other_seed = SimWorld::start(
        scenario(&TEST_SCENARIO.replace("seed = 7", "seed = 8")),
        loopback(),
    )
    .await
    .unwrap();
    let at_start = first.price("the-open-network").unwrap();
    assert_eq!(at_start, 5.0);
    for sim in [&first, &second, &other_seed] {
        sim.advance(Duration::from_secs(7 * 3600 + 17));
    }
    let ton = first.price("the-open-network").unwrap();
    assert_eq!(Some(ton), second.price("the-open-network"));
    assert_ne!(ton, 5.0);
    assert_ne!(Some(ton), other_seed.price("the-open-network"));
    // A 2 %/h walk stays in a sane band over 7 h.
    assert!((3.0..8.0).contains(&ton), "{ton}");
    assert_eq!(first.price("no-such-coin"), None);
}

#[tokio::test]
async fn a_price_move_ramps_in_after_advance_and_clients_see_it() {
    let text = r#"
name = "drop"
speed = 0.0
[[coins]]
id = "the-open-network"
symbol = "TON"
price_usd = 5.0
[[events]]
at = "2m"
kind = "price_move"
coin = "the-open-network"
percent = -12.0
over = "2m"
"#;
    let sim = SimWorld::start(scenario(text), loopback()).await.unwrap();
    let client = CoinGeckoClient::new(
        &sim.coingecko_url(),
        CoinGeckoPlan::Public,
        None,
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let ton = vec!["the-open-network".to_owned()];
    let price = |quotes: Vec<crate::coingecko::PriceQuote>| quotes[0].price;
    assert_eq!(
        price(client.simple_price(&ton, "usd").await.unwrap().value),
        5.0
    );
    sim.advance(Duration::from_secs(180));
    let halfway = price(client.simple_price(&ton, "usd").await.unwrap().value);
    assert!((halfway - 4.7).abs() < 1e-9, "{halfway}");
    sim.advance(Duration::from_secs(600));
    let quote = client
        .simple_price(&ton, "usd")
        .await
        .unwrap()
        .value
        .remove(0);
    assert!((quote.price - 4.4).abs() < 1e-9, "{quote:?}");
    // The 24 h window reaches back before the drop.
    assert!(
        (quote.change_24h_percent.unwrap() + 12.0).abs() < 1e-9,
        "{quote:?}"
    );
}

#[tokio::test]
async fn a_fault_window_follows_the_sim_clock() {
    let text = format!(
        "{TEST_SCENARIO}\n[[faults]]\nservice = \"coingecko\"\nfrom = \"1m\"\nuntil = \"2m\"\nkind = \"server_error\"\nstatus = 503\n"
    );
    let sim = SimWorld::start(scenario(&text), loopback()).await.unwrap();
    let client = CoinGeckoClient::new(
        &sim.coingecko_url(),
        CoinGeckoPlan::Public,
        None,
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let btc = vec!["bitcoin".to_owned()];
    assert_eq!(client.simple_price(&btc, "usd").await.unwrap().attempts, 1);
    sim.advance(Duration::from_secs(90));
    let error = client.simple_price(&btc, "usd").await.unwrap_err();
    assert_eq!(error.kind(), "unavailable", "{error}");
    sim.advance(Duration::from_secs(30));
    assert_eq!(client.simple_price(&btc, "usd").await.unwrap().attempts, 1);
    assert_eq!(sim.request_count("coingecko"), 1 + 3 + 1);
}

#[tokio::test]
async fn the_webhook_sink_records_bodies_and_headers_and_wakes_waiters() {
    let sim = start_sim().await;
    let waiter = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.wait_for_webhooks(2, Duration::from_secs(10)).await })
    };
    let http = reqwest::Client::new();
    for n in 1..=2 {
        let response = http
            .post(sim.webhook_url())
            .header("x-signature", format!("sig-{n}"))
            .json(&json!({"alert": "ton_price_drop", "n": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let received = waiter.await.unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].body, json!({"alert": "ton_price_drop", "n": 2}));
    assert_eq!(
        received[0].headers.get("x-signature").map(String::as_str),
        Some("sig-1")
    );
    assert_eq!(
        received[0].headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(sim.request_count("webhook"), 2);
    // Asking for more than arrived returns what there is once the timeout passes.
    assert_eq!(
        sim.wait_for_webhooks(3, Duration::from_millis(20))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn control_endpoints_advance_inject_and_report_state() {
    let sim = start_sim().await;
    let http = reqwest::Client::new();
    let start = sim.now();
    let advanced = http
        .post(format!("{}/_sim/advance", sim.base_url()))
        .json(&json!({"seconds": 90.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(advanced.status(), 200);
    assert_eq!(sim.now() - start, chrono::Duration::seconds(90));

    let injected = http
        .post(format!("{}/_sim/fault", sim.base_url()))
        .json(&json!({"service": "toncenter", "count": 1, "kind": "rate_limit", "retry_after_seconds": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), 200);
    let limited = http
        .get(format!("{}/getMasterchainInfo", sim.toncenter_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers().get("retry-after").unwrap(), "2");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "result": "Ratelimit exceed", "code": 429})
    );

    let rejected = http
        .post(format!("{}/_sim/fault", sim.base_url()))
        .json(&json!({"service": "toncenter", "kind": "timeout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);
    let message: Value = rejected.json().await.unwrap();
    assert!(
        message["error"]
            .as_str()
            .unwrap()
            .contains("timeout needs `delay_ms`"),
        "{message}"
    );

    let state: Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["scenario"], "unit-test");
    assert_eq!(state["sim_elapsed_seconds"], 90.0);
    assert_eq!(state["sim_time"], "2025-01-01T00:01:30Z");
    assert_eq!(state["request_counts"]["toncenter"], 1);
    assert_eq!(state["prices"]["ethereum"], 3500.0);
    assert_eq!(
        state["balances_nanoton"]["-1:3333333333333333333333333333333333333333333333333333333333333333"],
        "12500123456789"
    );
    assert_eq!(state["active_faults"], json!([]));
    assert_eq!(state["webhooks_received"], 0);
}

#[tokio::test]
async fn wallet_information_and_balance_speak_toncenter_v2() {
    let sim = start_sim().await;
    let http = reqwest::Client::new();
    let address = "-1:3333333333333333333333333333333333333333333333333333333333333333";
    let wallet: Value = http
        .get(format!(
            "{}/getWalletInformation?address={address}",
            sim.toncenter_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wallet["ok"], true);
    assert_eq!(wallet["result"]["balance"], "12500123456789");
    assert_eq!(wallet["result"]["wallet_type"], "wallet v3 r2");
    let balance: Value = http
        .get(format!(
            "{}/getAddressBalance?address={address}",
            sim.toncenter_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(balance, json!({"ok": true, "result": "12500123456789"}));
}

#[tokio::test]
async fn start_rejects_an_invalid_scenario_and_a_taken_port() {
    let mut invalid = scenario(TEST_SCENARIO);
    invalid.coins[0].price_usd = -1.0;
    let error = SimWorld::start(invalid, loopback()).await.err().unwrap();
    assert!(error.to_string().contains("coins[0].price_usd"), "{error}");

    let running = start_sim().await;
    let error = SimWorld::start(scenario(TEST_SCENARIO), running.addr())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SimError::Bind { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&running.addr().to_string()),
        "{error}"
    );
}

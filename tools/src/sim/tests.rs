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

const NODE_TIMELINE_SCENARIO: &str = r#"
name = "node-timeline"
speed = 0.0
start = "2025-01-01T00:00:00Z"

[[validators]]
name = "validator-1"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
balance_ton = 10.0
stake_ton = 400000.0
[validators.node]
out_of_sync_at = "10m"
in_sync_at = "20m"
down_at = "1h"
"#;

#[tokio::test]
async fn block_counters_stand_still_while_out_of_sync_or_down_and_the_node_comes_back_in_sync() {
    use crate::prometheus::{DEFAULT_MAX_BODY_BYTES, PrometheusScraper, ValidatorNodeMetrics};

    crate::http::install_crypto_provider();
    let sim = SimWorld::start(scenario(NODE_TIMELINE_SCENARIO), loopback())
        .await
        .unwrap();
    let scraper = PrometheusScraper::new(1000.0, fast_policy(), DEFAULT_MAX_BODY_BYTES).unwrap();
    let url = sim.metrics_url("validator-1");
    // (advance by seconds, lag, validated, collated, up) after each step.
    let timeline = [
        (0, 2.0, 0.0, 0.0, true),
        (600, 2.0, 120.0, 10.0, true),
        // Out of sync since 10m: the lag grows, the counters stand still.
        (300, 302.0, 120.0, 10.0, true),
        // Back in sync at 20m.
        (300, 2.0, 120.0, 10.0, true),
        (600, 2.0, 240.0, 20.0, true),
        // Down at 1h: 50 minutes of work in total.
        (1800, 2.0, 600.0, 50.0, false),
        (3600, 2.0, 600.0, 50.0, false),
    ];
    for (advance, lag, validated, collated, up) in timeline {
        sim.advance(Duration::from_secs(advance));
        let scrape = scraper.scrape(&url).await.unwrap().value;
        let node = ValidatorNodeMetrics::from_metrics(&scrape.metrics);
        let at = sim.now();
        assert_eq!(node.masterchain_out_of_sync_seconds, Some(lag), "{at}");
        assert_eq!(node.blocks_validated_master, Some(validated), "{at}");
        assert_eq!(node.blocks_validated_shard, Some(validated), "{at}");
        assert_eq!(node.blocks_collated_master, Some(collated), "{at}");
        assert_eq!(node.blocks_collated_shard, Some(collated), "{at}");
        assert_eq!(node.console_up, Some(up), "{at}");
    }
}

#[test]
fn node_efficiency_and_in_sync_fields_are_validated() {
    let with_node = |node: &str| {
        format!(
            "name = \"n\"\n[[validators]]\nname = \"v\"\naddress = \"-1:33\"\nbalance_ton = 1.0\n[validators.node]\n{node}\n"
        )
    };
    let error = parse_error(&with_node(
        "efficiency_percent = 120.0\nlow_efficiency_percent = -1.0\nin_sync_at = \"5m\"",
    ));
    assert!(
        error.contains("validators[0].node.efficiency_percent"),
        "{error}"
    );
    assert!(
        error.contains("validators[0].node.low_efficiency_percent"),
        "{error}"
    );
    assert!(error.contains("set out_of_sync_at too"), "{error}");
    let error = parse_error(&with_node("out_of_sync_at = \"10m\"\nin_sync_at = \"5m\""));
    assert!(
        error.contains("in_sync_at must be after out_of_sync_at"),
        "{error}"
    );
    let fine = scenario(&with_node(
        "efficiency_percent = 91.0\nlow_efficiency_at = \"1h\"",
    ));
    let node = fine.validators[0].node.clone().unwrap();
    assert_eq!(node.efficiency_percent, 91.0);
    assert_eq!(node.low_efficiency_percent, 60.0);
    assert_eq!(node.in_sync_at, None);
    let default = SimNode::default();
    assert_eq!(
        (default.efficiency_percent, default.low_efficiency_percent),
        (98.0, 60.0)
    );
}

#[tokio::test]
async fn elections_qos_and_tonapi_routes_answer_bad_queries_like_the_services() {
    let sim = start_sim().await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let response = http.get(path).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = get(format!("{}/getComplaints", sim.elections_url())).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["msg"], "election_id: field required");
    let (status, _) = get(format!(
        "{}/getValidationCycles?limit=0",
        sim.elections_url()
    ))
    .await;
    assert_eq!(status, 422);
    let (status, _) = get(format!("{}/cycleScoreboard?cycle_id=x", sim.qos_url())).await;
    assert_eq!(status, 422);
    // No election event: one cycle, half a round old, with the one staker.
    let (status, cycles) = get(format!("{}/getValidationCycles", sim.elections_url())).await;
    assert_eq!(status, 200);
    let since = sim.now().timestamp() as u64 - 65_536 / 2;
    assert_eq!(cycles[0]["cycle_id"], since);
    assert_eq!(
        cycles[0]["cycle_info"]["validators"][0]["stake"],
        "400000000000000"
    );
    // The cycle is config 34 as toncenter serves it.
    let crate::ton::config::ConfigParam::ValidatorSet { set, .. } =
        toncenter(&sim).get_config_param(34).await.unwrap().value
    else {
        panic!("config 34 is always served")
    };
    assert_eq!(cycles[0]["cycle_id"], set.utime_since);
    assert_eq!(
        cycles[0]["cycle_info"]["validators"][0]["pubkey"],
        set.validators[0].public_key
    );
    assert_eq!(
        cycles[0]["cycle_info"]["validators"][0]["adnl_addr"],
        set.validators[0].adnl_address.clone().unwrap()
    );
    assert_eq!(cycles.as_array().unwrap().len(), 1, "no config 32");
    let (_, elections) = get(format!("{}/getElections", sim.elections_url())).await;
    assert_eq!(elections, json!([]));
    let (status, scoreboard) = get(format!("{}/cycleScoreboard?cycle_id=1", sim.qos_url())).await;
    assert_eq!(status, 200);
    assert_eq!(scoreboard["scoreboard"][0]["efficiency"], 98.0);
    assert_eq!(sim.request_count("elections"), 6);

    let (status, body) = get(format!("{}/v2/accounts/nope", sim.tonapi_url())).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error": "can't decode address nope"}));
    let (status, body) = get(format!("{}/v2/blockchain/validators", sim.tonapi_url())).await;
    assert_eq!(status, 200);
    assert_eq!(body["elect_at"], set.utime_since);
    assert_eq!(body["validators"][0]["stake"], 400_000_000_000_000u64);
    assert_eq!(body["validators"][0]["max_factor"], 196_608);
    assert_eq!(
        body["validators"][0]["adnl_address"],
        set.validators[0].adnl_address.clone().unwrap()
    );
    assert_eq!(sim.request_count("tonapi"), 2);
}

// ---- election cycle, stake returns, nominator pools ----

fn toncenter(sim: &SimHandle) -> crate::toncenter::ToncenterClient {
    crate::toncenter::ToncenterClient::new(&sim.toncenter_url(), None, 1000.0, fast_policy())
        .unwrap()
}

fn elections_api(sim: &SimHandle) -> crate::elections::ElectionsClient {
    crate::elections::ElectionsClient::new(
        &sim.elections_url(),
        &sim.qos_url(),
        None,
        1000.0,
        fast_policy(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_demo_walks_an_election_cycle_after_a_quiet_start() {
    use crate::ton::config::ConfigParam;
    let mut demo = Scenario::demo();
    demo.speed = 0.0;
    demo.start = Some("2026-11-24T00:00:00Z".parse().unwrap());
    let keys: Vec<String> = demo.validators.iter().map(sim_public_key).collect();
    let validator_1 = demo.validators[0].address.clone();
    let sim = SimWorld::start(demo, loopback()).await.unwrap();
    let client = toncenter(&sim);
    let api = elections_api(&sim);
    let past_id = 1_899_934_464;
    // getElections as (id, participants): the open election, then what past_elections lists.
    let listed = || async {
        let elections = api.elections(10).await.unwrap().value;
        let listed: Vec<(u64, usize)> = elections
            .iter()
            .map(|e| (e.election_id, e.participants.len()))
            .collect();
        let past: Vec<u64> = client
            .past_elections()
            .await
            .unwrap()
            .value
            .iter()
            .map(|p| p.election_id)
            .collect();
        assert_eq!(
            listed[1..].iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            past
        );
        listed
    };
    let balance_before = sim.balance_nanoton(&validator_1).unwrap();

    // 0s and 16m: an open election with both validators and the previous round's stakes of
    // both frozen, without complaints.
    for advance_after in [16 * 60, 2 * 60] {
        let election = client.participant_list_extended().await.unwrap().value;
        assert_eq!(election.elect_at, 1_900_000_000);
        assert_eq!(election.participants.len(), 2);
        assert!(!election.finished);
        assert_eq!(
            client.get_config_param(36).await.unwrap().value,
            ConfigParam::Absent { param: 36 }
        );
        let past = client.past_elections().await.unwrap().value;
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].complaints, Some(0));
        assert!(
            client
                .list_complaints(past_id)
                .await
                .unwrap()
                .value
                .is_empty()
        );
        // The elections API agrees: both stakes frozen in the past election, no complaints.
        assert_eq!(listed().await, [(1_900_000_000, 2), (past_id, 2)]);
        assert!(api.complaints(past_id).await.unwrap().value.is_empty());
        assert_eq!(
            client
                .compute_returned_stake(&validator_1)
                .await
                .unwrap()
                .value,
            0
        );
        sim.advance(Duration::from_secs(advance_after));
    }

    // 18m: finished without validator-2.
    assert!(
        client
            .participant_list_extended()
            .await
            .unwrap()
            .value
            .finished
    );
    let ConfigParam::ValidatorSet { set: next, .. } =
        client.get_config_param(36).await.unwrap().value
    else {
        panic!("config 36 should be served once the election finished")
    };
    let next_keys: Vec<&str> = next
        .validators
        .iter()
        .map(|v| v.public_key.as_str())
        .collect();
    assert_eq!(next_keys, [keys[0].as_str()], "validator-2 is not elected");

    sim.advance(Duration::from_secs(2 * 60));
    let complaints = client.list_complaints(past_id).await.unwrap().value;
    assert_eq!(complaints.len(), 1);
    assert_eq!(complaints[0].validator_pubkey, keys[1]);
    assert_eq!(complaints[0].suggested_fine, 101_000_000_000);
    let past = client.past_elections().await.unwrap().value;
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].complaints, Some(1));
    // The elections API lists the same: validator-2's frozen stake, the same complaint.
    assert_eq!(listed().await, [(1_900_000_000, 2), (past_id, 1)]);
    let api_complaints = api.complaints(past_id).await.unwrap().value;
    assert_eq!(api_complaints.len(), 1);
    assert_eq!(
        api_complaints[0].pubkey.as_deref(),
        Some(complaints[0].validator_pubkey.as_str())
    );
    assert_eq!(
        api_complaints[0].suggested_fine,
        complaints[0].suggested_fine
    );
    assert_eq!(api_complaints[0].is_passed, complaints[0].passed);
    assert_eq!(
        sim.balance_nanoton(&validator_1).unwrap() - balance_before,
        400_123_500_000_000
    );
}

#[test]
fn next_set_reads_a_bool_or_a_list_of_names() {
    let with = |next_set: &str| {
        format!(
            "{TEST_SCENARIO}\n[[events]]\nkind = \"election\"\nat = \"0s\"\nid = 5\nnext_set = {next_set}\n"
        )
    };
    let next_set = |text: &str| match scenario(text).events.last() {
        Some(SimEvent::Election(election)) => election.next_set.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(next_set(&with("true")), NextSet::AllStakers);
    assert_eq!(next_set(&with("false")), NextSet::Absent);
    assert_eq!(
        next_set(&with("[\"validator-1\"]")),
        NextSet::Members(vec!["validator-1".to_owned()])
    );
    let absent = format!("{TEST_SCENARIO}\n[[events]]\nkind = \"election\"\nat = \"0s\"\nid = 5\n");
    assert_eq!(next_set(&absent), NextSet::Absent);
    let wrong = parse_error(&with("\"yes\""));
    assert!(
        wrong.contains(
            "true (every validator with a stake), false (no config 36) or a list of validator names"
        ),
        "{wrong}"
    );
    let unknown = parse_error(&with("[\"validator-9\"]"));
    assert!(unknown.contains("at `events[1].next_set`"), "{unknown}");
    assert!(
        unknown.contains("unknown validator name \"validator-9\""),
        "{unknown}"
    );
}

#[test]
fn cycle_events_and_pools_name_unknown_names_with_key_paths() {
    let text = r#"name = "bad-cycle"

[[validators]]
name = "v1"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 1.0
stake_ton = 1.0

[[events]]
kind = "election"
at = "0s"
id = 5
participants = ["v1", "ghost"]
current_set = ["ghost"]

[[events.past]]
election_id = 4
stakes = ["nobody"]
complaints_against = ["v2"]
suggested_fine_ton = -1.0

[[events]]
kind = "stake_returned"
at = "1m"
validator = "v9"
amount_ton = -3.0

[[events]]
kind = "delegation_change"
at = "1m"
pool = "missing"
nominator = "-1:2222222222222222222222222222222222222222222222222222222222222222"
delta_ton = 5.0

[[pools]]
name = "p"
address = "-1:6666666666666666666666666666666666666666666666666666666666666666"
validator = "v7"

[[pools.nominators]]
address = "not-an-address"
amount_ton = 1.0
"#;
    let error = Scenario::from_toml(text, "bad.toml").unwrap_err();
    let SimError::Invalid { problems, .. } = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    let expected = [
        (
            "bad.toml:13: at `events[0].participants`",
            "unknown validator name \"ghost\"",
        ),
        (
            "bad.toml:14: at `events[0].current_set`",
            "unknown validator name \"ghost\"",
        ),
        (
            "bad.toml:19: at `events[0].past[0].complaints_against`",
            "\"v2\"",
        ),
        ("bad.toml:18: at `events[0].past[0].stakes`", "\"nobody\""),
        (
            "bad.toml:20: at `events[0].past[0].suggested_fine_ton`",
            "must be >= 0",
        ),
        (
            "bad.toml:25: at `events[1].validator`",
            "unknown validator name \"v9\"",
        ),
        (
            "bad.toml:26: at `events[1].amount_ton`",
            "amount_ton must be >= 0",
        ),
        (
            "bad.toml:31: at `events[2].pool`",
            "unknown pool \"missing\"",
        ),
        (
            "bad.toml:32: at `events[2].nominator`",
            "nominators are basechain",
        ),
        (
            "bad.toml:38: at `pools[0].validator`",
            "unknown validator name \"v7\"",
        ),
        (
            "bad.toml:41: at `pools[0].nominators[0].address`",
            "not-an-address",
        ),
    ];
    for (location, message) in expected {
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains(location) && problem.contains(message)),
            "no problem with {location:?} and {message:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[tokio::test]
async fn run_get_method_reads_legacy_stack_arguments() {
    let text = format!(
        "{TEST_SCENARIO}\n[[events]]\nkind = \"election\"\nat = \"0s\"\nid = 0\n\n[[events.past]]\nelection_id = 1735000000\nunfreeze_at = 1900000000\ncomplaints_against = [\"validator-1\"]\n"
    );
    let sim = SimWorld::start(scenario(&text), loopback()).await.unwrap();
    let http = reqwest::Client::new();
    let run = |stack: Value, method: &'static str| {
        let http = http.clone();
        let url = format!("{}/runGetMethod", sim.toncenter_url());
        async move {
            let response = http
                .post(url)
                .json(&json!({
                    "address": "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF",
                    "method": method,
                    "stack": stack,
                }))
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = run(
        json!([["num", format!("{:#x}", 1_735_000_000u64)]]),
        "list_complaints",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["exit_code"], 0);
    let stack =
        crate::toncenter::stack::parse_legacy_stack("list_complaints", &body["result"]["stack"])
            .unwrap();
    let complaints = crate::ton::elector::list_complaints(&stack).unwrap();
    assert_eq!(complaints.len(), 1);
    let validator_key = sim_public_key(&scenario(&text).validators[0]);
    assert_eq!(complaints[0].validator_pubkey, validator_key);
    // getComplaints lists the same complaint, with the elector's fine and vote state.
    let api = elections_api(&sim);
    let listed = api.complaints(1_735_000_000).await.unwrap().value;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pubkey.as_deref(), Some(validator_key.as_str()));
    assert_eq!(
        listed[0].adnl_addr,
        sim_adnl(&scenario(&text).validators[0])
    );
    assert_eq!(listed[0].suggested_fine, complaints[0].suggested_fine);
    assert_eq!(listed[0].is_passed, complaints[0].passed);
    assert!(!listed[0].is_passed);
    // No open election (id 0): getElections lists only the still frozen past election.
    let elections = api.elections(10).await.unwrap().value;
    let ids: Vec<(u64, usize)> = elections
        .iter()
        .map(|e| (e.election_id, e.participants.len()))
        .collect();
    assert_eq!(ids, [(1_735_000_000, 1)]);
    assert!(api.complaints(5).await.unwrap().value.is_empty());
    // Another election id: no complaints.
    let (_, body) = run(json!([["num", "0x5"]]), "list_complaints").await;
    assert_eq!(body["result"]["stack"][0][1]["elements"], json!([]));
    // No argument: stack underflow (exit code 2), as the elector would throw.
    let (_, body) = run(json!([]), "list_complaints").await;
    assert_eq!(body["result"]["exit_code"], 2);
    // A stack that is not the legacy encoding: 422 naming the entry.
    let (status, body) = run(json!([["zzz", 1]]), "list_complaints").await;
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("stack[0]: unknown stack entry type \"zzz\""),
        "{body}"
    );
}

#[tokio::test]
async fn state_counts_requests_by_route_with_config_id_and_get_method() {
    let sim = start_sim().await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    for config_id in [15, 15, 34] {
        let url = format!(
            "{}/getConfigParam?config_id={config_id}",
            sim.toncenter_url()
        );
        assert_eq!(get(url).await, 200);
    }
    for method in ["past_elections", "active_election_id", "past_elections"] {
        let status = http
            .post(format!("{}/runGetMethod", sim.toncenter_url()))
            .json(&json!({
                "address": "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF",
                "method": method,
                "stack": [],
            }))
            .send()
            .await
            .unwrap()
            .status();
        // The body still reaches the handler after the counter read it.
        assert_eq!(status, 200);
    }
    let wallet = format!(
        "{}/getWalletInformation?address=-1:3333333333333333333333333333333333333333333333333333333333333333",
        sim.toncenter_url()
    );
    assert_eq!(get(wallet).await, 200);
    // Node metrics pages and GitHub do not go through `serve` and are counted all the same;
    // so is a 404 of a known route. Control endpoints are not counted.
    assert_eq!(get(sim.metrics_url("validator-1")).await, 200);
    assert_eq!(get(sim.metrics_url("nobody")).await, 404);
    let releases = format!(
        "{}/repos/ton-blockchain/ton/releases/latest",
        sim.github_url()
    );
    assert_eq!(get(releases).await, 404);
    let state: Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["requests_by_route"],
        json!({
            "GET /github/repos/{owner}/{repo}/releases/latest": 1,
            "GET /metrics/{validator}": 2,
            "GET /toncenter/api/v2/getConfigParam?config_id=15": 2,
            "GET /toncenter/api/v2/getConfigParam?config_id=34": 1,
            "GET /toncenter/api/v2/getWalletInformation": 1,
            "POST /toncenter/api/v2/runGetMethod method=active_election_id": 1,
            "POST /toncenter/api/v2/runGetMethod method=past_elections": 2,
        })
    );
    // The per-service counts of `serve` are unchanged by it.
    assert_eq!(state["request_counts"]["toncenter"], 7);
}

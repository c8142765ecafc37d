use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap as AxumHeaders, StatusCode, Uri};
use axum::response::IntoResponse;

use super::*;
use crate::sim::{
    Fault, FaultKind, Scenario, SimHandle, SimService, SimWorld, sim_adnl, sim_adnl_at,
    sim_public_key, sim_public_key_at,
};
use crate::test_support::{SECRET, fast_policy, loopback};
use crate::ton::config::{ConfigParam, ValidatorSet};
use crate::ton::elector::FrozenStakes;
use crate::toncenter::ToncenterClient;

/// Start 2025-01-01T00:00:00Z = 1735689600. The open election's round starts at
/// `ELECTION_ID - 65536`; `previous_set` adds the round before.
const ELECTION_ID: u64 = 1_735_720_000;
const ROUND: u64 = 65_536;
/// Past elections: `FROZEN` stays frozen (default unfreeze 1735752768), `UNFREEZING` is
/// unfrozen 5 minutes in, `UNFROZEN` was unfrozen before the start (default unfreeze
/// 1735621696).
const FROZEN: u64 = 1_735_654_464;
const UNFREEZING: u64 = 1_735_588_928;
const UNFROZEN: u64 = 1_735_523_392;

/// Gamma stakes but is not in config 34 (`current_set`); beta does not take part in the
/// open election (`participants`) and rotates its keys 5 minutes in.
const ELECTIONS_SCENARIO: &str = r#"
name = "elections"
speed = 0.0
start = "2025-01-01T00:00:00Z"

[[validators]]
name = "alpha"
address = "-1:1111111111111111111111111111111111111111111111111111111111111111"
balance_ton = 1000.0
stake_ton = 400000.0
[validators.node]
efficiency_percent = 99.5
low_efficiency_at = "10m"
low_efficiency_percent = 55.5

[[validators]]
name = "beta"
address = "-1:2222222222222222222222222222222222222222222222222222222222222222"
balance_ton = 500.0
stake_ton = 300000.5
rotate_keys_at = "5m"

[[validators]]
name = "gamma"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
balance_ton = 50.0
stake_ton = 200000.0

[[validators]]
name = "observer"
address = "0:4444444444444444444444444444444444444444444444444444444444444444"
balance_ton = 10.0

[[events]]
kind = "election"
at = "0s"
id = 1735720000
max_factor = 2.5
previous_set = true
participants = ["alpha", "gamma"]
current_set = ["alpha", "beta"]

[[events.past]]
election_id = 1735654464
complaints = 1
complaints_against = ["beta"]
banned = ["beta"]
suggested_fine_ton = 250.5

[[events.past]]
election_id = 1735588928
stakes = ["alpha"]
unfreeze_at = 1735689900
complaints_against = ["alpha"]

[[events.past]]
election_id = 1735523392
complaints_against = ["gamma"]
"#;

async fn start_elections_sim() -> (SimHandle, Scenario) {
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(ELECTIONS_SCENARIO, "elections/tests.rs").unwrap();
    let sim = SimWorld::start(scenario.clone(), loopback()).await.unwrap();
    (sim, scenario)
}

fn sim_client(sim: &SimHandle, retry: RetryPolicy) -> ElectionsClient {
    ElectionsClient::new(
        &sim.elections_url(),
        &sim.qos_url(),
        Some(Secret::new(SECRET)),
        1000.0,
        retry,
    )
    .unwrap()
}

/// The chain view of the same sim (config params and the elector's get-methods).
fn chain_client(sim: &SimHandle) -> ToncenterClient {
    ToncenterClient::new(&sim.toncenter_url(), None, 1000.0, fast_policy()).unwrap()
}

async fn config_set(chain: &ToncenterClient, param: u32) -> ValidatorSet {
    match chain.get_config_param(param).await.unwrap().value {
        ConfigParam::ValidatorSet { set, .. } => set,
        other => panic!("config {param}: {other:?}"),
    }
}

/// A cycle's members as (pubkey, ADNL, weight), to compare with a config param.
fn cycle_keys(cycle: &ValidationCycle) -> Vec<(Option<String>, String, Option<u64>)> {
    cycle
        .validators
        .iter()
        .map(|v| (v.pubkey.clone(), v.adnl_addr.clone(), v.weight))
        .collect()
}

fn config_keys(set: &ValidatorSet) -> Vec<(Option<String>, String, Option<u64>)> {
    set.validators
        .iter()
        .map(|v| {
            (
                Some(v.public_key.clone()),
                v.adnl_address.clone().unwrap(),
                Some(v.weight),
            )
        })
        .collect()
}

fn fault(kind: FaultKind, count: u32) -> Fault {
    Fault {
        service: SimService::Elections,
        from: None,
        until: None,
        count: Some(count),
        kind,
    }
}

#[tokio::test]
async fn cycles_from_the_sim_are_config_34_then_config_32() {
    let (sim, scenario) = start_elections_sim().await;
    let (alpha, beta) = (&scenario.validators[0], &scenario.validators[1]);
    let chain = chain_client(&sim);
    let fetched = sim_client(&sim, fast_policy())
        .validation_cycles(10)
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 1);
    let cycles = fetched.value;
    let ids: Vec<u64> = cycles.iter().map(|cycle| cycle.cycle_id).collect();
    assert_eq!(ids, [ELECTION_ID - ROUND, ELECTION_ID - 2 * ROUND]);
    let current = &cycles[0];
    assert_eq!(current.utime_since, Some(ELECTION_ID - ROUND));
    assert_eq!(current.utime_until, Some(ELECTION_ID));
    // Config 34 is the `current_set`: gamma stakes but is not in it.
    assert_eq!(current.total_stake, Some(700_000_500_000_000));
    assert_eq!(
        current.validators,
        [
            CycleValidator {
                adnl_addr: sim_adnl(alpha),
                pubkey: Some(sim_public_key(alpha)),
                weight: Some(400_000_000),
                stake: Some(400_000_000_000_000),
                index: Some(0),
                wallet_address: Some(alpha.address.clone()),
            },
            CycleValidator {
                adnl_addr: sim_adnl(beta),
                pubkey: Some(sim_public_key(beta)),
                weight: Some(300_000_500),
                stake: Some(300_000_500_000_000),
                index: Some(1),
                wallet_address: Some(beta.address.clone()),
            },
        ]
    );
    let config_34 = config_set(&chain, 34).await;
    assert_eq!(current.cycle_id, u64::from(config_34.utime_since));
    assert_eq!(current.utime_until, Some(u64::from(config_34.utime_until)));
    assert_eq!(cycle_keys(current), config_keys(&config_34));
    // The previous cycle is config 32: every staker, gamma included.
    let previous = &cycles[1];
    let config_32 = config_set(&chain, 32).await;
    assert_eq!(previous.cycle_id, u64::from(config_32.utime_since));
    assert_eq!(cycle_keys(previous), config_keys(&config_32));
    assert_eq!(previous.validators.len(), 3);
    assert_eq!(previous.total_stake, Some(900_000_500_000_000));

    // Beta rotated its keys at 5m: both config 34 and the cycle show its new keys.
    sim.advance(Duration::from_secs(600));
    let cycles = sim_client(&sim, fast_policy())
        .validation_cycles(1)
        .await
        .unwrap()
        .value;
    assert_eq!(cycles.len(), 1);
    let rotated = Duration::from_secs(600);
    assert_eq!(
        cycles[0].validators[1].pubkey,
        Some(sim_public_key_at(beta, rotated))
    );
    assert_ne!(cycles[0].validators[1].adnl_addr, sim_adnl(beta));
    assert_eq!(
        cycle_keys(&cycles[0]),
        config_keys(&config_set(&chain, 34).await)
    );
    assert_eq!(sim.request_count("elections"), 2);
}

#[tokio::test]
async fn elections_from_the_sim_are_the_electors_open_and_still_frozen_elections() {
    let (sim, scenario) = start_elections_sim().await;
    let (alpha, beta, gamma) = (
        &scenario.validators[0],
        &scenario.validators[1],
        &scenario.validators[2],
    );
    let chain = chain_client(&sim);
    let client = sim_client(&sim, fast_policy());
    let elections = client.elections(10).await.unwrap().value;
    let summary: Vec<(u64, bool, usize)> = elections
        .iter()
        .map(|e| (e.election_id, e.finished, e.participants.len()))
        .collect();
    // The unfrozen election is not listed; the one unfreezing at 5m still is.
    assert_eq!(
        summary,
        [
            (ELECTION_ID, false, 2),
            (FROZEN, true, 3),
            (UNFREEZING, true, 1),
        ]
    );
    // The open election: its `participants` (not beta), as participant_list_extended.
    assert_eq!(
        elections[0].participants[1],
        ElectionParticipant {
            adnl_addr: sim_adnl(gamma),
            pubkey: Some(sim_public_key(gamma)),
            stake: 200_000_000_000_000,
            wallet_address: Some(gamma.address.clone()),
        }
    );
    let open = chain.participant_list_extended().await.unwrap().value;
    assert_eq!(open.elect_at, elections[0].election_id);
    let participants = |record: &ElectionRecord| -> Vec<(String, u128)> {
        record
            .participants
            .iter()
            .map(|p| (p.pubkey.clone().unwrap(), p.stake))
            .collect()
    };
    let elector_participants: Vec<(String, u128)> = open
        .participants
        .iter()
        .map(|p| (p.public_key.clone(), p.stake))
        .collect();
    assert_eq!(participants(&elections[0]), elector_participants);
    // Past elections: what past_elections lists, with the frozen stakes.
    let past = chain.past_elections().await.unwrap().value;
    let past_ids: Vec<u64> = past.iter().map(|p| p.election_id).collect();
    assert_eq!(past_ids, [FROZEN, UNFREEZING]);
    for (record, past) in elections[1..].iter().zip(&past) {
        assert_eq!(record.election_id, past.election_id);
        let FrozenStakes::Decoded { stakes } = &past.frozen else {
            panic!("{:?}", past.frozen)
        };
        let mut frozen: Vec<(String, u128)> = stakes
            .iter()
            .map(|f| (f.public_key.clone(), f.stake))
            .collect();
        let mut listed = participants(record);
        frozen.sort();
        listed.sort();
        assert_eq!(listed, frozen, "election {}", record.election_id);
    }
    assert_eq!(
        elections[2].participants,
        [ElectionParticipant {
            adnl_addr: sim_adnl(alpha),
            pubkey: Some(sim_public_key(alpha)),
            stake: 400_000_000_000_000,
            wallet_address: Some(alpha.address.clone()),
        }]
    );
    assert_eq!(client.elections(2).await.unwrap().value.len(), 2);

    // 10m: the second past election is unfrozen; beta's frozen stake keeps the key of when
    // the election event took effect, as in the frozen dictionary.
    sim.advance(Duration::from_secs(600));
    let elections = client.elections(10).await.unwrap().value;
    let ids: Vec<u64> = elections.iter().map(|e| e.election_id).collect();
    assert_eq!(ids, [ELECTION_ID, FROZEN]);
    let past = chain.past_elections().await.unwrap().value;
    assert_eq!(past.len(), 1);
    let beta_frozen = elections[1]
        .participants
        .iter()
        .find(|p| p.wallet_address.as_deref() == Some(beta.address.as_str()))
        .unwrap();
    assert_eq!(beta_frozen.pubkey, Some(sim_public_key(beta)));
    assert_eq!(beta_frozen.adnl_addr, sim_adnl(beta));
}

#[tokio::test]
async fn complaints_from_the_sim_are_the_electors_list_complaints() {
    let (sim, scenario) = start_elections_sim().await;
    let (alpha, beta) = (&scenario.validators[0], &scenario.validators[1]);
    let chain = chain_client(&sim);
    let client = sim_client(&sim, fast_policy());

    // `complaints_against` beta (banned: passed) and one against a made-up key.
    let complaints = client.complaints(FROZEN).await.unwrap().value;
    assert_eq!(complaints.len(), 2);
    assert_eq!(
        complaints[0],
        Complaint {
            adnl_addr: sim_adnl(beta),
            election_id: FROZEN,
            suggested_fine: 250_500_000_000,
            is_passed: true,
            pubkey: Some(sim_public_key(beta)),
        }
    );
    assert!(!complaints[1].is_passed);
    let elector = chain.list_complaints(FROZEN).await.unwrap().value;
    let agree = |complaints: &[Complaint], elector: &[crate::ton::elector::ComplaintInfo]| {
        let ours: Vec<(Option<String>, u128, bool)> = complaints
            .iter()
            .map(|c| (c.pubkey.clone(), c.suggested_fine, c.is_passed))
            .collect();
        let theirs: Vec<(Option<String>, u128, bool)> = elector
            .iter()
            .map(|c| {
                (
                    Some(c.validator_pubkey.clone()),
                    c.suggested_fine,
                    c.weight_remaining < 0,
                )
            })
            .collect();
        assert_eq!(ours, theirs);
    };
    agree(&complaints, &elector);

    // Against alpha, not banned: waiting for votes, the default fine.
    let complaints = client.complaints(UNFREEZING).await.unwrap().value;
    assert_eq!(
        complaints,
        [Complaint {
            adnl_addr: sim_adnl(alpha),
            election_id: UNFREEZING,
            suggested_fine: 101_000_000_000,
            is_passed: false,
            pubkey: Some(sim_public_key(alpha)),
        }]
    );
    agree(
        &complaints,
        &chain.list_complaints(UNFREEZING).await.unwrap().value,
    );
    // An unfrozen election and an unknown one: the elector lists nothing.
    for election_id in [UNFROZEN, 42] {
        assert!(
            client
                .complaints(election_id)
                .await
                .unwrap()
                .value
                .is_empty()
        );
        assert!(
            chain
                .list_complaints(election_id)
                .await
                .unwrap()
                .value
                .is_empty()
        );
    }

    // 10m: beta has rotated its keys, but the complaint names the key of the election;
    // the second past election is unfrozen and its complaint gone.
    sim.advance(Duration::from_secs(600));
    let complaints = client.complaints(FROZEN).await.unwrap().value;
    assert_eq!(complaints[0].pubkey, Some(sim_public_key(beta)));
    assert_eq!(complaints[0].adnl_addr, sim_adnl(beta));
    agree(
        &complaints,
        &chain.list_complaints(FROZEN).await.unwrap().value,
    );
    assert!(
        client
            .complaints(UNFREEZING)
            .await
            .unwrap()
            .value
            .is_empty()
    );
}

#[tokio::test]
async fn the_scoreboard_lists_config_34_and_follows_each_nodes_efficiency() {
    let (sim, scenario) = start_elections_sim().await;
    let (alpha, beta) = (&scenario.validators[0], &scenario.validators[1]);
    let chain = chain_client(&sim);
    let client = sim_client(&sim, fast_policy());
    let cycle_id = ELECTION_ID - ROUND;
    let before = client.cycle_scoreboard(cycle_id).await.unwrap().value;
    // Gamma stakes but is not in config 34: no row.
    assert_eq!(
        before,
        [
            ScoreRow {
                adnl_addr: sim_adnl(alpha),
                efficiency: Some(99.5),
            },
            // No node section: the default 98.0.
            ScoreRow {
                adnl_addr: sim_adnl(beta),
                efficiency: Some(98.0),
            },
        ]
    );
    sim.advance(Duration::from_secs(600));
    let after = client.cycle_scoreboard(cycle_id).await.unwrap().value;
    assert_eq!(after[0].efficiency, Some(55.5));
    assert_eq!(after[1].efficiency, Some(98.0));
    // Beta rotated its keys at 5m: the scoreboard shows its ADNL of now, as config 34 does.
    assert_eq!(
        after[1].adnl_addr,
        sim_adnl_at(beta, Duration::from_secs(600))
    );
    assert_ne!(after[1].adnl_addr, sim_adnl(beta));
    let config_adnls: Vec<String> = config_set(&chain, 34)
        .await
        .validators
        .into_iter()
        .map(|v| v.adnl_address.unwrap())
        .collect();
    let row_adnls: Vec<String> = after.into_iter().map(|row| row.adnl_addr).collect();
    assert_eq!(row_adnls, config_adnls);
    assert_eq!(sim.request_count("elections"), 2);
}

#[tokio::test]
async fn sim_faults_on_the_elections_service_are_retried_or_reported() {
    let (sim, _) = start_elections_sim().await;
    let client = sim_client(&sim, fast_policy());
    sim.inject_fault(fault(
        FaultKind::RateLimit {
            retry_after_seconds: Some(1),
        },
        1,
    ));
    let fetched = client.validation_cycles(2).await.unwrap();
    assert_eq!(fetched.attempts, 2);

    sim.inject_fault(fault(FaultKind::Garbage, 3));
    let error = client.elections(1).await.unwrap_err();
    let SourceError::InvalidResponse { detail } = &error else {
        panic!("expected InvalidResponse, got {error:?}");
    };
    assert!(detail.contains("/elections/getElections"), "{detail}");
    assert!(detail.contains("HTML page"), "{detail}");

    sim.inject_fault(fault(FaultKind::ServerError { status: 503 }, 3));
    let error = client.cycle_scoreboard(1).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Unavailable { status: 503, message } if message.contains("/qos/cycleScoreboard")),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains(SECRET));
    // Recovered once the faults are used up.
    assert_eq!(client.cycle_scoreboard(1).await.unwrap().value.len(), 2);
}

// ---- a scripted server for wire variants ----

/// Whether an error is the one a case expects.
type Check = fn(&SourceError) -> bool;

#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    retry_after: Option<&'static str>,
}

fn json_reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: body.to_owned(),
        retry_after: None,
    }
}

/// Answers requests with `replies` in order (the last one repeats) and records each
/// request's path with query and headers.
struct Scripted {
    base_url: String,
    requests: Arc<Mutex<Vec<(String, AxumHeaders)>>>,
}

async fn scripted(replies: Vec<Reply>) -> Scripted {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: AxumHeaders| {
        let recorded = Arc::clone(&recorded);
        let replies = replies.clone();
        async move {
            let index = {
                let mut recorded = recorded.lock().unwrap();
                recorded.push((uri.to_string(), headers));
                recorded.len() - 1
            };
            let reply = replies[index.min(replies.len() - 1)].clone();
            let mut response = (
                StatusCode::from_u16(reply.status).unwrap(),
                [(axum::http::header::CONTENT_TYPE, reply.content_type)],
                reply.body,
            )
                .into_response();
            if let Some(retry_after) = reply.retry_after {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static(retry_after),
                );
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Scripted {
        base_url: format!("http://{addr}"),
        requests,
    }
}

fn scripted_client(server: &Scripted) -> ElectionsClient {
    ElectionsClient::new(
        &server.base_url,
        &format!("{}/api/qos", server.base_url),
        Some(Secret::new(SECRET)),
        1000.0,
        fast_policy(),
    )
    .unwrap()
}

const ADNL_UPPER: &str = "E527A2A40D255B0BA2EC9F54DD3D5A472CDE4FD46A0DD93D5E04C02B45E66F78";
const ADNL_LOWER: &str = "e527a2a40d255b0ba2ec9f54dd3d5a472cde4fd46a0dd93d5e04c02b45e66f78";

#[tokio::test]
async fn numbers_as_strings_unknown_fields_and_missing_options_are_tolerated() {
    // The pubkey is base64 of 32 bytes (0x01..=0x20); one validator has only its ADNL.
    let body = format!(
        r#"[{{"cycle_id": "1735654464", "extra": {{"nested": true}},
             "cycle_info": {{"utime_since": 1735654464, "utime_until": "1735720000",
               "total_stake": "51221406119735104", "min_stake": 1, "total_participants": 2,
               "validators": [
                 {{"adnl_addr": "{ADNL_UPPER}", "pubkey": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
                   "weight": "1152921504606846976", "stake": 2999999000000000, "index": "0",
                   "wallet_address": "-1:668aa12d3e1852519fff52bf2240976794dd4dc9f11661897f9f5de9a11a00de",
                   "complaints": []}},
                 {{"adnl_addr": "15ac93a1d1a54b2f1e723b71a6fb6d360e3732f034f133b5af45a17e7282fa85",
                   "pubkey": null, "stake": ""}}
               ]}}}},
           {{"cycle_id": 1735588928}}]"#
    );
    let server = scripted(vec![json_reply(200, &body)]).await;
    let fetched = scripted_client(&server).validation_cycles(2).await.unwrap();
    let cycles = fetched.value;
    assert_eq!(cycles.len(), 2);
    assert_eq!(cycles[0].cycle_id, 1_735_654_464);
    assert_eq!(cycles[0].utime_until, Some(1_735_720_000));
    assert_eq!(cycles[0].total_stake, Some(51_221_406_119_735_104));
    let first = &cycles[0].validators[0];
    assert_eq!(first.adnl_addr, ADNL_LOWER);
    assert_eq!(
        first.pubkey.as_deref(),
        Some("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
    );
    assert_eq!(first.weight, Some(1_152_921_504_606_846_976));
    assert_eq!(first.stake, Some(2_999_999_000_000_000));
    assert_eq!(first.index, Some(0));
    let second = &cycles[0].validators[1];
    assert_eq!((second.pubkey.as_ref(), second.stake), (None, None));
    assert_eq!(second.wallet_address, None);
    // A cycle without cycle_info: nothing known but its id.
    assert_eq!(
        cycles[1],
        ValidationCycle {
            cycle_id: 1_735_588_928,
            utime_since: None,
            utime_until: None,
            total_stake: None,
            validators: Vec::new(),
        }
    );
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].0, "/getValidationCycles?limit=2");
    assert_eq!(requests[0].1["x-api-key"], SECRET);
}

#[tokio::test]
async fn elections_complaints_accept_string_stakes_a_wrapped_list_and_missing_flags() {
    let server = scripted(vec![
        json_reply(
            200,
            r#"{"result": [{"election_id": 1735720000, "finished": "true", "participants_list": [
                {"adnl_addr": "AA00000000000000000000000000000000000000000000000000000000000000", "stake": "300000000000000000000", "max_factor": 196608}]},
              {"election_id": 1735654464, "participants_list": null}]}"#,
        ),
        json_reply(
            200,
            r#"[{"adnl_addr": "BB00000000000000000000000000000000000000000000000000000000000000", "suggested_fine": "101000000000", "is_passed": 1, "created_time": 1735700000},
               {"adnl_addr": "CC00000000000000000000000000000000000000000000000000000000000000", "election_id": 7, "suggested_fine": 5.0e12}]"#,
        ),
    ])
    .await;
    let client = scripted_client(&server);
    let elections = client.elections(5).await.unwrap().value;
    assert!(elections[0].finished);
    // Beyond u64 as a string: u128 keeps it.
    assert_eq!(
        elections[0].participants[0].stake,
        300_000_000_000_000_000_000
    );
    assert_eq!(
        elections[0].participants[0].adnl_addr,
        "aa00000000000000000000000000000000000000000000000000000000000000"
    );
    assert!(!elections[1].finished);
    assert!(elections[1].participants.is_empty());

    let complaints = client.complaints(1_735_654_464).await.unwrap().value;
    assert_eq!(complaints[0].election_id, 1_735_654_464);
    assert_eq!(complaints[0].suggested_fine, 101_000_000_000);
    assert!(complaints[0].is_passed);
    assert_eq!(complaints[1].election_id, 7);
    assert_eq!(complaints[1].suggested_fine, 5_000_000_000_000);
    assert!(!complaints[1].is_passed);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].0, "/getElections?limit=5");
    assert_eq!(
        requests[1].0,
        "/getComplaints?election_id=1735654464&limit=100"
    );
}

#[tokio::test]
async fn scoreboard_efficiency_may_be_null_a_string_or_under_validator_adnl() {
    let server = scripted(vec![json_reply(
        200,
        &format!(
            r#"{{"scoreboard": [
                {{"adnl_addr": "{ADNL_UPPER}", "efficiency": null, "efficiency_mc": null}},
                {{"validator_adnl": "{ADNL_LOWER}", "efficiency": "97.25", "idx": 3}},
                {{"adnl_addr": "{ADNL_LOWER}", "efficiency": 0.5}},
                {{"adnl_addr": "{ADNL_LOWER}"}}
            ], "total": 4}}"#
        ),
    )])
    .await;
    let rows = scripted_client(&server)
        .cycle_scoreboard(1_735_654_464)
        .await
        .unwrap()
        .value;
    let efficiencies: Vec<Option<f64>> = rows.iter().map(|row| row.efficiency).collect();
    // 0.5 stays 0.5 percent: the API reports percent, nothing is rescaled.
    assert_eq!(efficiencies, [None, Some(97.25), Some(0.5), None]);
    assert!(rows.iter().all(|row| row.adnl_addr == ADNL_LOWER));
    let requests = server.requests.lock().unwrap();
    assert_eq!(
        requests[0].0,
        "/api/qos/cycleScoreboard?cycle_id=1735654464&limit=1000"
    );
}

#[tokio::test]
async fn html_and_unexpected_shapes_are_invalid_responses_naming_the_endpoint() {
    let html = Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: "<!DOCTYPE html><html><body>Service under maintenance</body></html>".to_owned(),
        retry_after: None,
    };
    let server = scripted(vec![html]).await;
    let error = scripted_client(&server)
        .validation_cycles(2)
        .await
        .unwrap_err();
    let SourceError::InvalidResponse { detail } = &error else {
        panic!("expected InvalidResponse, got {error:?}");
    };
    assert!(detail.contains("GET /getValidationCycles"), "{detail}");
    assert!(detail.contains("HTML page"), "{detail}");
    assert!(detail.contains("Service under maintenance"), "{detail}");
    // Transient: every attempt was used.
    assert_eq!(server.requests.lock().unwrap().len(), 3);

    for (body, expected) in [
        (
            r#"{"detail": "nothing here"}"#,
            "expected a JSON list of elections, got an object with keys [\"detail\"]",
        ),
        (r#""ok""#, "expected a JSON list of elections, got a string"),
        (
            r#"[{"election_id": 1, "participants_list": [{"adnl_addr": "aa", "stake": "lots"}]}]"#,
            "at `[0].participants_list[0].stake`",
        ),
        (r#"[{"finished": true}]"#, "missing field `election_id`"),
    ] {
        let server = scripted(vec![json_reply(200, body)]).await;
        let error = scripted_client(&server).elections(1).await.unwrap_err();
        let SourceError::InvalidResponse { detail } = &error else {
            panic!("{body}: expected InvalidResponse, got {error:?}");
        };
        assert!(detail.contains(expected), "{body}: {detail}");
        assert!(detail.contains("GET /getElections"), "{detail}");
    }

    let server = scripted(vec![json_reply(200, r#"{"rows": []}"#)]).await;
    let error = scripted_client(&server)
        .cycle_scoreboard(1)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("missing field `scoreboard`") && detail.contains("cycleScoreboard")),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_statuses_are_classified_with_the_services_message() {
    let cases: Vec<(Reply, Check)> = vec![
        (json_reply(404, r#"{"detail": "Not Found"}"#), |error| {
            matches!(error, SourceError::Rejected { status: 404, message }
                if message.contains("Not Found") && message.contains("base URLs"))
        }),
        (
            json_reply(
                422,
                r#"{"detail": [{"loc": ["query", "limit"], "msg": "ensure this value is less than or equal to 100", "type": "value_error"}]}"#,
            ),
            |error| {
                matches!(error, SourceError::Rejected { status: 422, message }
                    if message.contains("ensure this value is less than or equal to 100"))
            },
        ),
        (
            json_reply(400, r#"{"error": "bad election_id"}"#),
            |error| matches!(error, SourceError::Rejected { status: 400, message } if message.contains("bad election_id")),
        ),
        (
            Reply {
                status: 502,
                content_type: "text/html",
                body: "<html><head><title>502 Bad Gateway</title></head></html>".to_owned(),
                retry_after: None,
            },
            |error| matches!(error, SourceError::Unavailable { status: 502, message } if message.contains("HTML page")),
        ),
    ];
    for (reply, check) in cases {
        let status = reply.status;
        let server = scripted(vec![reply]).await;
        let error = scripted_client(&server).complaints(1).await.unwrap_err();
        assert!(check(&error), "{status}: {error:?}");
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_a_persistent_one_is_rate_limited() {
    let limited = Reply {
        status: 429,
        content_type: "application/json",
        body: r#"{"detail": "Too Many Requests"}"#.to_owned(),
        retry_after: Some("7"),
    };
    // Retry-After 7 s is capped by the policy's 5 ms max_delay: no real wait.
    let server = scripted(vec![limited.clone(), json_reply(200, "[]")]).await;
    let fetched = scripted_client(&server).elections(1).await.unwrap();
    assert_eq!(fetched.attempts, 2);
    assert!(fetched.value.is_empty());

    let server = scripted(vec![limited]).await;
    let error = scripted_client(&server).elections(1).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::RateLimited { retry_after: Some(after), message }
            if *after == Duration::from_secs(7) && message.contains("Too Many Requests")),
        "{error:?}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error() {
    let server = scripted(vec![json_reply(
        403,
        &format!(r#"{{"detail": "API key {SECRET} is not valid"}}"#),
    )])
    .await;
    let error = scripted_client(&server)
        .validation_cycles(2)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 403, .. }),
        "{error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("check the toncenter api_key"), "{text}");
}

#[tokio::test]
async fn a_service_that_is_down_is_a_connect_error_and_bad_input_sends_nothing() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = format!("http://{addr}");
    let client = ElectionsClient::new(
        &base,
        &base,
        Some(Secret::new(SECRET)),
        1000.0,
        fast_policy(),
    )
    .unwrap();
    let error = client.validation_cycles(2).await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert!(error.is_transient());

    for limit in [0, MAX_LIMIT + 1] {
        let error = client.elections(limit).await.unwrap_err();
        assert!(
            matches!(&error, SourceError::InvalidInput { detail } if detail.contains("limit must be 1..=1000")),
            "{error:?}"
        );
    }
    let error = ElectionsClient::new("not a url", &base, None, 1.0, fast_policy())
        .err()
        .unwrap();
    assert!(
        matches!(error, SourceError::InvalidInput { .. }),
        "{error:?}"
    );
}

#[test]
fn keys_normalize_to_lower_case_hex() {
    assert_eq!(normalize_key(&format!(" {ADNL_UPPER} ")), ADNL_LOWER);
    assert_eq!(
        normalize_key("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="),
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
    );
    assert_eq!(normalize_key("Not-A-Key"), "not-a-key");
}

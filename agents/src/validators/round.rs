//! What the validators agent reads about the network once per tick ([`ChainView`]), and what it
//! concludes from it for one validator: set membership, rank and share, election
//! participation, frozen stakes and earnings, complaints, efficiency, version, and the fixes it
//! proposes.
//!
//! Requests per tick do not grow with the number of validators except for each wallet's
//! balance and each node's metrics page: config params, the elector's get-methods and the
//! operator APIs are read once and shared; params 15 and 17 are cached for
//! `static_params_ttl`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use memory::SeriesKey;
use policies::{Operation, Proposal, Proposer, Risk};
use serde::Serialize;
use tools::ton::config::{ConfigParam, ElectionTiming, StakeLimits, ValidatorSet};
use tools::ton::elector::{Election, PastElection};

use super::cycle::{
    self, BlocksMemory, KeyMemory, OwnComplaint, RankMemory, SetPosition, Settled, StakeMemory,
};
use super::{AGENT, NANOTON_PER_TON, TONCENTER, ValidatorsAgent, Verdict, WatchedValidator};
use crate::AgentError;
use crate::proposals::proposal_id;

/// State key prefixes (per validator name).
pub const KEYS_STATE_PREFIX: &str = "validators.keys/";
pub const STAKES_STATE_PREFIX: &str = "validators.stakes/";
pub const RANK_STATE_PREFIX: &str = "validators.rank/";
pub const BLOCKS_STATE_PREFIX: &str = "validators.blocks/";
/// A pool's delegation as last seen ([`cycle::DelegationMemory`]).
pub const DELEGATION_STATE_PREFIX: &str = "validators.delegation/";
/// The validator's place in the current set as last seen ([`SetPosition`]).
pub const POSITION_STATE_PREFIX: &str = "validators.position/";
/// State key prefix of proposals already made (by proposal id).
pub const PROPOSED_STATE_PREFIX: &str = "validators.proposed/";

/// Series names; label `validator`.
pub const RANK_SERIES: &str = "validator_rank";
pub const SHARE_SERIES: &str = "validator_weight_share_percent";
pub const STAKE_SERIES: &str = "validator_stake_ton";
pub const IN_NEXT_SET_SERIES: &str = "validator_in_next_set";
pub const REWARD_SERIES: &str = "validator_reward_ton";
pub const REWARD_USD_SERIES: &str = "validator_reward_usd";
pub const APY_SERIES: &str = "validator_apy_percent";
pub const EFFICIENCY_SERIES: &str = "validator_efficiency_percent";
pub const BLOCKS_SERIES: &str = "validator_blocks_total";
pub const DELEGATED_SERIES: &str = "validator_pool_delegated_ton";
pub const NOMINATORS_SERIES: &str = "validator_pool_nominators";
/// The TON price the market agent stores (CoinGecko id, USD).
pub const TON_COIN: &str = "the-open-network";

pub fn validator_series(name: &str, validator: &str) -> SeriesKey {
    SeriesKey::new(name).with_label("validator", validator)
}

/// The network as read in one tick.
#[derive(Clone, Debug, Default)]
pub struct ChainView {
    pub timing: Option<ElectionTiming>,
    pub limits: Option<StakeLimits>,
    pub current: Option<ValidatorSet>,
    pub next: Option<ValidatorSet>,
    /// Config 36 was read (so `next == None` means there is no next set).
    pub next_fetched: bool,
    /// The election under way (`None`: none open, or not read).
    pub election: Option<Election>,
    pub election_fetched: bool,
    pub past: Option<Vec<PastElection>>,
    /// Complaints by election, against keys or ADNL addresses (lower case).
    pub complaints: Option<Vec<OwnComplaint>>,
    /// Efficiency (percent) by ADNL address, from the QoS scoreboard.
    pub efficiency: Option<BTreeMap<String, f64>>,
    /// toncenter failures (they feed `source_unavailable`).
    pub errors: Vec<String>,
    /// Other sources read (tonapi, the operator APIs): failures by source, empty = answered.
    pub other_errors: BTreeMap<&'static str, Vec<String>>,
}

/// What the cycle part of a tick saw of one validator (journaled in `observation.batch`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CycleObservation {
    pub keys: Vec<String>,
    pub new_keys: Vec<String>,
    pub in_next_set: Option<bool>,
    pub position: Option<SetPosition>,
    pub election_stake_ton: Option<f64>,
    /// Stakes frozen in the elector: how many and how much (the details are in the alerts'
    /// evidence when they matter; repeating them every round would bloat the journal).
    pub frozen_stakes: Option<usize>,
    pub frozen_ton: Option<f64>,
    pub settled: Vec<Settled>,
    pub returned_stake_ton: Option<f64>,
    pub efficiency_percent: Option<f64>,
    pub complaints: usize,
}

/// A verdict for the alert `rule/subject`.
pub type RuleVerdict = (String, String, BTreeMap<String, String>, Verdict);

impl ValidatorsAgent {
    /// Reads the chain once for every validator. Failures are collected, never fatal.
    pub(super) async fn fetch_view(&mut self) -> ChainView {
        let mut view = ChainView::default();
        let fresh = self
            .static_params
            .as_ref()
            .is_some_and(|(at, _, _)| at.elapsed() < self.config.static_params_ttl);
        if fresh && let Some((_, timing, limits)) = &self.static_params {
            view.timing = timing.clone();
            view.limits = limits.clone();
        }
        let mut params: Vec<u32> = Vec::with_capacity(4);
        if !fresh {
            params.extend([15, 17]);
        }
        params.extend([34, 36]);
        for param in params {
            let started = Instant::now();
            let result = self.toncenter.get_config_param(param).await;
            self.observe_request(TONCENTER, started);
            match result.map(|fetched| fetched.value) {
                Ok(ConfigParam::ElectionTiming(value)) => view.timing = Some(value),
                Ok(ConfigParam::StakeLimits(value)) => view.limits = Some(value),
                Ok(ConfigParam::ValidatorSet { param: 34, set }) => view.current = Some(set),
                Ok(ConfigParam::ValidatorSet { param: 36, set }) => {
                    view.next = Some(set);
                    view.next_fetched = true;
                }
                Ok(ConfigParam::Absent { param: 36 }) => view.next_fetched = true,
                Ok(other) => view.errors.push(format!(
                    "config param {param}: unexpected answer {}",
                    serde_json::to_string(&other).unwrap_or_default()
                )),
                Err(error) => {
                    self.count_error(TONCENTER, &error);
                    view.errors.push(format!("config param {param}: {error}"));
                }
            }
        }
        if !fresh && view.timing.is_some() && view.limits.is_some() {
            self.static_params = Some((Instant::now(), view.timing.clone(), view.limits.clone()));
        }

        let started = Instant::now();
        let active = self.toncenter.active_election_id().await;
        self.observe_request(TONCENTER, started);
        match active.map(|fetched| fetched.value) {
            Ok(Some(id)) if id > 0 => {
                let started = Instant::now();
                let election = self.toncenter.participant_list_extended().await;
                self.observe_request(TONCENTER, started);
                match election {
                    Ok(fetched) => {
                        view.election = Some(fetched.value);
                        view.election_fetched = true;
                    }
                    Err(error) => {
                        self.count_error(TONCENTER, &error);
                        view.errors
                            .push(format!("elector participant_list_extended: {error}"));
                    }
                }
            }
            Ok(_) => view.election_fetched = true,
            Err(error) => {
                self.count_error(TONCENTER, &error);
                view.errors
                    .push(format!("elector active_election_id: {error}"));
            }
        }

        let started = Instant::now();
        let past = self.toncenter.past_elections().await;
        self.observe_request(TONCENTER, started);
        match past {
            Ok(fetched) => view.past = Some(fetched.value),
            Err(error) => {
                self.count_error(TONCENTER, &error);
                view.errors.push(format!("elector past_elections: {error}"));
            }
        }
        self.fetch_complaints(&mut view).await;
        self.fetch_efficiency(&mut view).await;
        view
    }

    /// Complaints of the elections whose stakes are still frozen and that have any: from the
    /// elector (`list_complaints`), or from toncenter's elections API when the elector cannot
    /// be read and `providers.elections_api` is on.
    async fn fetch_complaints(&self, view: &mut ChainView) {
        let Some(past) = &view.past else {
            return;
        };
        let with_complaints: Vec<u64> = past
            .iter()
            .filter(|election| election.complaints.is_none_or(|count| count > 0))
            .map(|election| election.election_id)
            .collect();
        let mut complaints = Vec::new();
        for election_id in with_complaints {
            let started = Instant::now();
            let listed = self.toncenter.list_complaints(election_id).await;
            self.observe_request(TONCENTER, started);
            match listed {
                Ok(fetched) => {
                    complaints.extend(fetched.value.into_iter().map(|complaint| OwnComplaint {
                        election_id,
                        against: complaint.validator_pubkey.to_ascii_lowercase(),
                        suggested_fine_nanoton: complaint.suggested_fine,
                        passed: complaint.passed,
                        source: "elector".to_owned(),
                    }))
                }
                Err(error) => {
                    self.count_error(TONCENTER, &error);
                    let elections = self
                        .elections
                        .as_ref()
                        .filter(|_| self.config.providers.elections_api);
                    let Some(elections) = elections else {
                        view.errors
                            .push(format!("elector list_complaints({election_id}): {error}"));
                        return;
                    };
                    let source = elections.source();
                    let started = Instant::now();
                    let answered = elections.complaints(election_id).await;
                    self.observe_request(source, started);
                    match answered {
                        Ok(fetched) => {
                            view.other_errors.entry(source).or_default();
                            complaints.extend(fetched.value.into_iter().map(|complaint| {
                                OwnComplaint {
                                    election_id,
                                    against: complaint
                                        .pubkey
                                        .unwrap_or(complaint.adnl_addr)
                                        .to_ascii_lowercase(),
                                    suggested_fine_nanoton: complaint.suggested_fine,
                                    passed: complaint.is_passed,
                                    source: "elections_api".to_owned(),
                                }
                            }));
                        }
                        Err(api_error) => {
                            self.count_error(source, &api_error);
                            view.errors.push(format!(
                                "complaints of election {election_id}: elector: {error}; elections API: {api_error}"
                            ));
                            return;
                        }
                    }
                }
            }
        }
        view.complaints = Some(complaints);
    }

    /// This round's efficiency from toncenter's QoS scoreboard (round id = the current set's
    /// `utime_since`). The service is sometimes down: a failure only degrades its health.
    async fn fetch_efficiency(&self, view: &mut ChainView) {
        let (Some(elections), Some(current)) = (
            self.elections
                .as_ref()
                .filter(|_| self.config.providers.elections_api),
            &view.current,
        ) else {
            return;
        };
        let source = elections.source();
        let started = Instant::now();
        let board = elections
            .cycle_scoreboard(u64::from(current.utime_since))
            .await;
        self.observe_request(source, started);
        match board {
            Ok(fetched) => {
                view.other_errors.entry(source).or_default();
                view.efficiency = Some(
                    fetched
                        .value
                        .into_iter()
                        .filter_map(|row| {
                            Some((row.adnl_addr.to_ascii_lowercase(), row.efficiency?))
                        })
                        .collect(),
                );
            }
            Err(error) => {
                self.count_error(source, &error);
                view.other_errors
                    .entry(source)
                    .or_default()
                    .push(format!("QoS scoreboard: {error}"));
            }
        }
    }

    /// Every wallet's balance in one batched tonapi request (`/v2/accounts/_bulk`), when
    /// balances come from tonapi: raw address (lower case) → nanotons, or why not.
    pub(super) async fn prefetch_balances(&self) -> Option<Result<BTreeMap<String, u128>, String>> {
        if self.config.providers.balances != super::Provider::Tonapi {
            return None;
        }
        let tonapi = self.tonapi.as_ref()?;
        let wallets: Vec<&str> = self
            .config
            .validators
            .iter()
            .map(|validator| validator.wallet.as_str())
            .collect();
        let started = Instant::now();
        let result = tonapi.accounts(&wallets).await;
        self.observe_request(tonapi.source(), started);
        Some(match result {
            Ok(fetched) => Ok(fetched
                .value
                .into_iter()
                .filter_map(|account| {
                    let raw = tools::ton::parse_address(&account.address).ok()?.raw;
                    Some((raw.to_ascii_lowercase(), account.balance))
                })
                .collect()),
            Err(error) => {
                self.count_error(tonapi.source(), &error);
                Err(error.to_string())
            }
        })
    }

    /// The wallet's balance from the configured provider (the batched tonapi answer when
    /// there is one), and which source answered.
    pub(super) async fn balance_nanoton(
        &self,
        wallet: &str,
        prefetched: Option<&Result<BTreeMap<String, u128>, String>>,
    ) -> (&'static str, Result<u128, String>) {
        if let (Some(prefetched), Some(tonapi)) = (prefetched, &self.tonapi) {
            let raw = tools::ton::parse_address(wallet)
                .map(|parsed| parsed.raw.to_ascii_lowercase())
                .unwrap_or_default();
            let balance = match prefetched {
                Ok(balances) => balances
                    .get(&raw)
                    .copied()
                    .ok_or_else(|| "tonapi's bulk answer does not list this account".to_owned()),
                Err(error) => Err(error.clone()),
            };
            return (tonapi.source(), balance);
        }
        let started = Instant::now();
        let result = self.toncenter.get_wallet_information(wallet).await;
        self.observe_request(TONCENTER, started);
        if let Err(error) = &result {
            self.count_error(TONCENTER, error);
        }
        (
            TONCENTER,
            result
                .map(|fetched| fetched.value.balance_nanoton)
                .map_err(|error| error.to_string()),
        )
    }

    /// The cycle rules for one validator; pushes samples and verdicts.
    pub(super) fn evaluate_cycle(
        &self,
        validator: &WatchedValidator,
        view: &ChainView,
        latest_release: Option<&str>,
        now: DateTime<Utc>,
        samples: &mut Vec<(SeriesKey, DateTime<Utc>, f64)>,
        verdicts: &mut Vec<RuleVerdict>,
    ) -> Result<CycleObservation, AgentError> {
        let name = validator.name.as_str();
        let labels = BTreeMap::from([("validator".to_owned(), name.to_owned())]);
        let mut push = |rule: &str, verdict: Verdict| {
            verdicts.push((rule.to_owned(), name.to_owned(), labels.clone(), verdict));
        };
        let mut observed = CycleObservation::default();
        let wallets = wallet_set(validator);
        let state = self.store.state();

        // Keys, learned by wallet (rotated every election by mytonctrl).
        let keys_key = format!("{KEYS_STATE_PREFIX}{name}");
        let mut keys: KeyMemory = state
            .get(&keys_key)
            .map_err(Self::store_error)?
            .unwrap_or_default();
        let had_keys = !keys.keys.is_empty();
        let learned = keys.learn(
            &wallets,
            validator.public_key.as_deref(),
            view.election.as_ref(),
            view.past.as_deref(),
        );
        if !learned.is_empty() {
            state.put(&keys_key, &keys).map_err(Self::store_error)?;
            if had_keys {
                tracing::info!(validator = name, keys = ?learned, "validator uses a new key");
                observed.new_keys = learned;
            }
        }
        let key_set = keys.key_set();
        observed.keys = key_set.iter().cloned().collect();

        // Current set: membership, rank, share, rank history.
        push(
            "not_in_set",
            cycle::evaluate_current_set(name, &key_set, view.current.as_ref()),
        );
        let position = view
            .current
            .as_ref()
            .and_then(|set| cycle::position(set, &key_set));
        if let Some(at) = &position {
            samples.push((validator_series(RANK_SERIES, name), now, at.rank as f64));
            samples.push((validator_series(SHARE_SERIES, name), now, at.share_percent));
            let rank_key = format!("{RANK_STATE_PREFIX}{name}");
            let mut ranks: RankMemory = state
                .get(&rank_key)
                .map_err(Self::store_error)?
                .unwrap_or_default();
            if ranks.by_round.get(&at.utime_since) != Some(&at.rank) {
                ranks.observe(at.utime_since, at.rank);
                state.put(&rank_key, &ranks).map_err(Self::store_error)?;
            }
            push(
                "rank_drop",
                cycle::evaluate_rank(name, ranks.last_two(), self.config.rank_drop_places),
            );
            let position_key = format!("{POSITION_STATE_PREFIX}{name}");
            if state
                .get::<SetPosition>(&position_key)
                .map_err(Self::store_error)?
                .as_ref()
                != Some(at)
            {
                state.put(&position_key, at).map_err(Self::store_error)?;
            }
        }
        observed.position = position.clone();

        // Next set and the election under way.
        let elected =
            cycle::evaluate_elected(name, &key_set, view.next.as_ref(), view.next_fetched);
        observed.in_next_set = match &elected {
            Verdict::Healthy { .. } if view.next.is_some() => Some(true),
            Verdict::Breach { .. } => Some(false),
            _ => None,
        };
        if let Some(member) = observed.in_next_set {
            samples.push((
                validator_series(IN_NEXT_SET_SERIES, name),
                now,
                if member { 1.0 } else { 0.0 },
            ));
        }
        push("not_elected", elected);
        if view.election_fetched {
            push(
                "no_election_stake",
                cycle::evaluate_participation(
                    name,
                    view.election.as_ref(),
                    view.timing.as_ref(),
                    &wallets,
                    now,
                    self.config.participation_grace,
                ),
            );
        }
        if let Some(entry) = view
            .election
            .as_ref()
            .and_then(|election| cycle::participation(election, &wallets))
        {
            observed.election_stake_ton = Some(entry.stake_nanoton as f64 / NANOTON_PER_TON);
        }

        // Frozen stakes: the reward they carry, their return, fines.
        let frozen = view
            .past
            .as_deref()
            .map(|past| cycle::own_frozen(past, &wallets));
        if let Some(frozen) = &frozen {
            if let Some(current) = frozen
                .iter()
                .filter(|stake| key_set.contains(&stake.public_key.to_ascii_lowercase()))
                .max_by_key(|stake| stake.election_id)
            {
                samples.push((
                    validator_series(STAKE_SERIES, name),
                    now,
                    current.stake_nanoton as f64 / NANOTON_PER_TON,
                ));
            }
            let stakes_key = format!("{STAKES_STATE_PREFIX}{name}");
            let mut memory: StakeMemory = state
                .get(&stakes_key)
                .map_err(Self::store_error)?
                .unwrap_or_default();
            let before = memory.clone();
            let settled = memory.settle(frozen);
            // Written only when something changed (bonuses grow, stakes come and go).
            if memory != before {
                state.put(&stakes_key, &memory).map_err(Self::store_error)?;
            }
            observed.settled = settled;
        }
        push(
            "stake_not_returned",
            cycle::evaluate_stake_return(
                name,
                frozen.as_deref(),
                now,
                self.config.stake_return_grace,
            ),
        );
        let complaints: Option<Vec<OwnComplaint>> = view.complaints.as_ref().map(|all| {
            let adnls: BTreeSet<String> = keys
                .keys
                .values()
                .filter_map(|info| info.adnl.clone())
                .chain(validator.adnl.iter().map(|a| a.to_ascii_lowercase()))
                .chain(position.as_ref().and_then(|at| at.adnl.clone()))
                .collect();
            all.iter()
                .filter(|c| key_set.contains(&c.against) || adnls.contains(&c.against))
                .cloned()
                .collect()
        });
        observed.complaints = complaints.as_ref().map_or(0, Vec::len);
        push(
            "complaint",
            cycle::evaluate_complaints(name, complaints.as_deref(), frozen.as_deref()),
        );
        observed.frozen_stakes = frozen.as_ref().map(Vec::len);
        observed.frozen_ton = frozen.as_ref().map(|stakes| {
            stakes
                .iter()
                .map(|stake| stake.stake_nanoton as f64 / NANOTON_PER_TON)
                .fold(0.0, |sum, ton| sum + ton)
        });

        // Efficiency (QoS scoreboard, by ADNL).
        let adnl = validator
            .adnl
            .as_ref()
            .map(|a| a.to_ascii_lowercase())
            .or_else(|| position.as_ref().and_then(|at| at.adnl.clone()));
        observed.efficiency_percent = match (&view.efficiency, &adnl) {
            (Some(board), Some(adnl)) => board.get(adnl).copied(),
            _ => None,
        };
        if let Some(efficiency) = observed.efficiency_percent {
            samples.push((validator_series(EFFICIENCY_SERIES, name), now, efficiency));
        }
        if position.is_some() {
            push(
                "low_efficiency",
                cycle::evaluate_efficiency(
                    name,
                    observed.efficiency_percent,
                    view.current
                        .as_ref()
                        .and_then(|set| cycle::round_fraction(set, now)),
                    self.config.efficiency_min_percent,
                    self.config.efficiency_after_round_fraction,
                ),
            );
        } else {
            push(
                "low_efficiency",
                Verdict::Healthy {
                    summary: format!("{name}: not validating this round; efficiency not judged"),
                    evidence: serde_json::json!({ "in_current_set": false }),
                },
            );
        }

        push(
            "behind_release",
            cycle::evaluate_version(name, validator.running_version.as_deref(), latest_release),
        );
        Ok(observed)
    }

    /// Notes the node's block counters and evaluates the zero-blocks rule.
    pub(super) fn evaluate_blocks(
        &self,
        name: &str,
        total: Option<f64>,
        in_set: Option<bool>,
        now: DateTime<Utc>,
        samples: &mut Vec<(SeriesKey, DateTime<Utc>, f64)>,
    ) -> Result<Verdict, AgentError> {
        let Some(total) = total else {
            return Ok(Verdict::Unknown);
        };
        samples.push((validator_series(BLOCKS_SERIES, name), now, total));
        let key = format!("{BLOCKS_STATE_PREFIX}{name}");
        let state = self.store.state();
        let mut memory: BlocksMemory = state
            .get(&key)
            .map_err(Self::store_error)?
            .unwrap_or_default();
        memory.observe(total, now);
        state.put(&key, &memory).map_err(Self::store_error)?;
        Ok(cycle::evaluate_zero_blocks(
            name,
            in_set,
            &memory,
            now,
            self.config.zero_blocks_window,
        ))
    }

    /// Records earned rewards: series in TON and USD (at the latest stored TON price), the APY
    /// of the round, and an `income.recorded` journal entry attributed to the validators
    /// revenue stream for the finance domain.
    pub(super) async fn record_earnings(
        &self,
        name: &str,
        settled: &[Settled],
        round_seconds: Option<u32>,
        now: DateTime<Utc>,
        samples: &mut Vec<(SeriesKey, DateTime<Utc>, f64)>,
    ) -> Result<(), AgentError> {
        if settled.is_empty() {
            return Ok(());
        }
        let price = self
            .store
            .series()
            .latest(&crate::market::price_key(TON_COIN, "usd"))
            .map_err(Self::store_error)?;
        for stake in settled {
            let reward_ton = stake.reward_nanoton as f64 / NANOTON_PER_TON;
            let apy = round_seconds.and_then(|round| {
                cycle::apy_percent(stake.reward_nanoton, stake.stake_nanoton, round)
            });
            let reward_usd = price.as_ref().map(|price| reward_ton * price.value);
            samples.push((validator_series(REWARD_SERIES, name), now, reward_ton));
            if let Some(usd) = reward_usd {
                samples.push((validator_series(REWARD_USD_SERIES, name), now, usd));
            }
            if let Some(apy) = apy {
                samples.push((validator_series(APY_SERIES, name), now, apy));
            }
            self.auditor
                .record(
                    AGENT,
                    "income.recorded",
                    &format!("validators/{name}/{}", stake.election_id),
                    &serde_json::json!({
                        "stream": "validators",
                        "domain": "finance",
                        "validator": name,
                        "election_id": stake.election_id,
                        "stake_ton": stake.stake_nanoton as f64 / NANOTON_PER_TON,
                        "reward_ton": reward_ton,
                        "reward_nanoton": stake.reward_nanoton.to_string(),
                        "price_usd": price.as_ref().map(|p| p.value),
                        "price_at": price.as_ref().map(|p| p.at),
                        "reward_usd": reward_usd,
                        "apy_percent": apy,
                        "fined": stake.banned,
                    }),
                )
                .await
                .map_err(Self::audit_error)?;
            tracing::info!(
                validator = name,
                election_id = stake.election_id,
                reward_ton,
                "stake returned by the elector; reward recorded"
            );
        }
        Ok(())
    }

    /// Puts a fix up for decision once per episode (the id says which). Failures are logged
    /// and retried next tick; the agent never executes anything itself.
    pub(super) async fn propose(&self, proposal: Proposal) -> Result<(), AgentError> {
        let Some(gate) = &self.gate else {
            return Ok(());
        };
        let key = format!("{PROPOSED_STATE_PREFIX}{}", proposal.id);
        let state = self.store.state();
        if state
            .get::<String>(&key)
            .map_err(Self::store_error)?
            .is_some()
        {
            return Ok(());
        }
        let id = proposal.id.clone();
        let kind = proposal.operation.kind.clone();
        match gate.submit(proposal).await {
            Ok(submitted) => {
                tracing::info!(proposal = %id, kind = %kind, state = %submitted.state, "proposed");
                state.put(&key, &submitted.state).map_err(Self::store_error)
            }
            Err(message) => {
                tracing::warn!(proposal = %id, error = %message, "proposal not accepted by the gate; retrying next tick");
                Ok(())
            }
        }
    }
}

/// The raw addresses the elector may tie to this validator: its wallet and its pool.
pub fn wallet_set(validator: &WatchedValidator) -> BTreeSet<String> {
    [Some(&validator.wallet), validator.pool.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|address| tools::ton::parse_address(address).ok())
        .map(|parsed| parsed.raw.to_ascii_lowercase())
        .collect()
}

/// A validators-domain proposal.
pub fn operation_proposal(
    kind: &str,
    validator: &str,
    episode: &str,
    operation: Operation,
    rationale: String,
    evidence: serde_json::Value,
) -> Proposal {
    Proposal {
        id: proposal_id(AGENT, kind, validator, episode),
        proposer: Proposer::Agent {
            name: AGENT.to_owned(),
            domain: AGENT.to_owned(),
        },
        operation,
        rationale,
        evidence,
    }
}

/// A `command` operation running `program` with `vars`.
pub fn command_operation(
    program: &str,
    validator: &str,
    risk: Risk,
    amount_nanoton: u64,
    vars: BTreeMap<&str, String>,
) -> Operation {
    Operation {
        kind: "command".to_owned(),
        domain: AGENT.to_owned(),
        risk,
        amount_nanoton,
        amount_cents: 0,
        target: validator.to_owned(),
        parameters: serde_json::json!({ "command": program, "vars": vars }),
    }
}

/// The stake to propose for the next election: what the wallet holds minus the reserve,
/// capped by the configured and the network maximum; `None` below the election's minimum.
pub fn proposed_stake_nanoton(
    balance_ton: f64,
    reserve_ton: f64,
    max_stake_ton: Option<f64>,
    min_stake_nanoton: u128,
    network_max_nanoton: Option<u128>,
) -> Option<u64> {
    let available = ((balance_ton - reserve_ton) * NANOTON_PER_TON).floor();
    if !(available.is_finite() && available > 0.0) {
        return None;
    }
    let mut stake = available as u128;
    if let Some(max) = max_stake_ton {
        stake = stake.min((max * NANOTON_PER_TON).floor().max(0.0) as u128);
    }
    if let Some(max) = network_max_nanoton.filter(|max| *max > 0) {
        stake = stake.min(max);
    }
    // Whole TON: the stake is sent as an amount people read.
    stake -= stake % 1_000_000_000;
    (stake >= min_stake_nanoton && stake > 0)
        .then(|| u64::try_from(stake).ok())
        .flatten()
}

/// Blocks collated and validated (masterchain and shardchains) as the node counts them;
/// `None` when the node exports none of the counters.
pub fn blocks_total(node: &tools::prometheus::ValidatorNodeMetrics) -> Option<f64> {
    let counters = [
        node.blocks_collated_master,
        node.blocks_validated_master,
        node.blocks_collated_shard,
        node.blocks_validated_shard,
    ];
    counters
        .iter()
        .any(Option::is_some)
        .then(|| counters.iter().flatten().filter(|v| v.is_finite()).sum())
}

impl ValidatorsAgent {
    /// The validator's pool: delegation (nominator pool) or roles (single-nominator pool).
    pub(super) async fn evaluate_pool(
        &self,
        validator: &WatchedValidator,
        now: DateTime<Utc>,
        samples: &mut Vec<(SeriesKey, DateTime<Utc>, f64)>,
        errors: &mut Vec<String>,
    ) -> Result<Option<RuleVerdict>, AgentError> {
        let (Some(pool), Some(kind)) = (&validator.pool, validator.pool_kind) else {
            return Ok(None);
        };
        let name = validator.name.as_str();
        let labels = BTreeMap::from([("validator".to_owned(), name.to_owned())]);
        match kind {
            super::PoolKind::Nominator => {
                let started = Instant::now();
                let listed = self.toncenter.list_nominators(pool).await;
                self.observe_request(TONCENTER, started);
                let nominators = match listed {
                    Ok(fetched) => fetched.value,
                    Err(error) => {
                        self.count_error(TONCENTER, &error);
                        errors.push(format!("pool of {name}: list_nominators: {error}"));
                        return Ok(None);
                    }
                };
                let total: u128 = nominators
                    .iter()
                    .map(|n| n.amount.saturating_add(n.pending_deposit))
                    .sum();
                samples.push((
                    validator_series(DELEGATED_SERIES, name),
                    now,
                    total as f64 / NANOTON_PER_TON,
                ));
                samples.push((
                    validator_series(NOMINATORS_SERIES, name),
                    now,
                    nominators.len() as f64,
                ));
                let key = format!("{DELEGATION_STATE_PREFIX}{name}");
                let state = self.store.state();
                let previous: cycle::DelegationMemory = state
                    .get(&key)
                    .map_err(Self::store_error)?
                    .unwrap_or_default();
                let verdict = cycle::evaluate_delegation(
                    name,
                    &previous,
                    total,
                    nominators.len(),
                    self.config.delegation_change_percent,
                );
                state
                    .put(
                        &key,
                        &cycle::DelegationMemory {
                            total_nanoton: Some(total),
                            nominators: Some(nominators.len()),
                        },
                    )
                    .map_err(Self::store_error)?;
                Ok(Some((
                    "delegation_change".to_owned(),
                    name.to_owned(),
                    labels,
                    verdict,
                )))
            }
            super::PoolKind::SingleNominator => {
                let started = Instant::now();
                let roles = self.toncenter.single_nominator_roles(pool).await;
                self.observe_request(TONCENTER, started);
                let roles = match roles {
                    Ok(fetched) => fetched.value,
                    Err(error) => {
                        self.count_error(TONCENTER, &error);
                        errors.push(format!("pool of {name}: get_roles: {error}"));
                        return Ok(None);
                    }
                };
                let wallet = tools::ton::parse_address(&validator.wallet)
                    .map(|parsed| parsed.raw.to_ascii_lowercase())
                    .unwrap_or_default();
                let evidence = serde_json::json!({
                    "pool": pool,
                    "owner": roles.owner,
                    "validator": roles.validator,
                    "wallet": wallet,
                });
                let verdict = if roles.validator.to_ascii_lowercase() == wallet {
                    Verdict::Healthy {
                        summary: format!(
                            "{name}: the single-nominator pool names this wallet as its validator"
                        ),
                        evidence,
                    }
                } else {
                    Verdict::Breach {
                        severity: crate::alert::Severity::Critical,
                        summary: format!(
                            "{name}: the single-nominator pool's validator is {}, not the configured wallet {wallet}",
                            roles.validator
                        ),
                        evidence,
                    }
                };
                Ok(Some((
                    "pool_roles".to_owned(),
                    name.to_owned(),
                    labels,
                    verdict,
                )))
            }
        }
    }

    /// What the elector holds for the validator's wallet (and pool) to recover.
    pub(super) async fn returned_stake(
        &self,
        validator: &WatchedValidator,
        errors: &mut Vec<String>,
    ) -> Option<u128> {
        let mut total = 0u128;
        for wallet in wallet_set(validator) {
            let started = Instant::now();
            let result = self.toncenter.compute_returned_stake(&wallet).await;
            self.observe_request(TONCENTER, started);
            match result {
                Ok(fetched) => total = total.saturating_add(fetched.value),
                Err(error) => {
                    self.count_error(TONCENTER, &error);
                    errors.push(format!(
                        "elector compute_returned_stake for {}: {error}",
                        validator.name
                    ));
                    return None;
                }
            }
        }
        Some(total)
    }

    /// Whether the standby node answers and is in sync (failover makes sense only then).
    async fn standby_ready(&self, validator: &WatchedValidator) -> bool {
        let Some(url) = validator
            .standby
            .as_ref()
            .and_then(|standby| standby.metrics_url.as_ref())
        else {
            // A standby without a metrics page: the operator vouches for it.
            return validator.standby.is_some();
        };
        let source = format!("{}/{}", super::NODE_METRICS, validator.name);
        let started = Instant::now();
        let scraped = self.scraper.scrape(url).await;
        self.observe_request(&format!("{source}/standby"), started);
        match scraped {
            Ok(fetched) => {
                let node =
                    tools::prometheus::ValidatorNodeMetrics::from_metrics(&fetched.value.metrics);
                node.console_up != Some(false)
                    && node
                        .masterchain_out_of_sync_seconds
                        .is_some_and(|lag| lag <= self.config.max_sync_lag.as_secs_f64())
            }
            Err(error) => {
                tracing::warn!(validator = %validator.name, error = %error, "standby metrics unreachable; no failover proposed");
                false
            }
        }
    }

    /// One proposal per firing condition that has a fix; see the module docs of `validators`.
    pub(super) async fn propose_fixes(
        &self,
        breaches: &[(String, String)],
        observations: &[super::ValidatorObservation],
        view: &ChainView,
        required_ton: Option<f64>,
        latest_release: Option<&str>,
    ) -> Result<(), AgentError> {
        let settings = &self.config.proposals;
        for (rule, subject) in breaches {
            let Some(validator) = self.config.validators.iter().find(|v| &v.name == subject) else {
                continue;
            };
            let name = validator.name.as_str();
            let Some(active) = self.active(&format!("{AGENT}.{rule}/{subject}"))? else {
                continue;
            };
            let alert = active.alert;
            let episode = alert.starts_at.timestamp().to_string();
            let evidence = serde_json::json!({
                "alert": alert.key,
                "summary": alert.summary,
                "evidence": alert.evidence,
            });
            let balance = observations
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| o.balance_ton);
            let vars = |pairs: &[(&'static str, String)]| -> BTreeMap<&'static str, String> {
                let mut vars: BTreeMap<&'static str, String> =
                    BTreeMap::from([("validator", name.to_owned())]);
                vars.extend(pairs.iter().cloned());
                vars
            };
            let proposal = match rule.as_str() {
                "service_down" | "zero_blocks" | "out_of_sync" => {
                    let standby = validator.standby.as_ref();
                    if rule == "out_of_sync"
                        && let Some(standby) = standby
                        && self.standby_ready(validator).await
                    {
                        Some(operation_proposal(
                            "failover",
                            name,
                            &episode,
                            command_operation(
                                &settings.failover_command,
                                name,
                                Risk::High,
                                0,
                                vars(&[("standby", standby.name.clone())]),
                            ),
                            format!(
                                "{}; the standby {} is in sync, so switch validation to it",
                                alert.summary, standby.name
                            ),
                            evidence,
                        ))
                    } else {
                        Some(operation_proposal(
                            "restart_node",
                            name,
                            &episode,
                            command_operation(
                                &settings.restart_command,
                                name,
                                Risk::Medium,
                                0,
                                vars(&[]),
                            ),
                            format!("{}; a restart of the node usually clears it", alert.summary),
                            evidence,
                        ))
                    }
                }
                "behind_release" => latest_release.map(|latest| {
                    operation_proposal(
                        "upgrade_node",
                        name,
                        latest,
                        command_operation(
                            &settings.upgrade_command,
                            name,
                            Risk::Medium,
                            0,
                            vars(&[("version", latest.to_owned())]),
                        ),
                        format!("{}; upgrade the node to {latest}", alert.summary),
                        evidence,
                    )
                }),
                "stake_unrecovered" => Some(operation_proposal(
                    "recover_stake",
                    name,
                    &episode,
                    command_operation(&settings.recover_command, name, Risk::Low, 0, vars(&[])),
                    format!(
                        "{}; send the recover-stake request from the wallet",
                        alert.summary
                    ),
                    evidence,
                )),
                "low_balance" if settings.top_up => match (balance, required_ton) {
                    (Some(balance), Some(required)) if required > balance => {
                        let amount_ton = (required - balance).ceil();
                        let amount = (amount_ton * NANOTON_PER_TON) as u64;
                        Some(operation_proposal(
                            "top_up",
                            name,
                            &episode,
                            Operation {
                                kind: "ton_transfer".to_owned(),
                                domain: AGENT.to_owned(),
                                risk: Risk::Medium,
                                amount_nanoton: amount,
                                amount_cents: 0,
                                target: name.to_owned(),
                                parameters: serde_json::json!({
                                    "destination": validator.wallet,
                                    "amount_nanoton": amount,
                                    "comment": format!("top-up of {name} for the next election"),
                                }),
                            },
                            format!(
                                "{}; send {amount_ton:.0} TON so the wallet holds what the next election needs",
                                alert.summary
                            ),
                            evidence,
                        ))
                    }
                    _ => None,
                },
                "no_election_stake" => {
                    let election = view.election.as_ref();
                    let stake = match (balance, election) {
                        (Some(balance), Some(election)) => proposed_stake_nanoton(
                            balance,
                            settings.stake_reserve_ton,
                            settings.max_stake_ton,
                            election.min_stake,
                            view.limits.as_ref().map(|limits| limits.max_stake),
                        ),
                        _ => None,
                    };
                    match (stake, election) {
                        (Some(stake), Some(election)) => {
                            let stake_ton = stake / 1_000_000_000;
                            Some(operation_proposal(
                                "join_election",
                                name,
                                &election.elect_at.to_string(),
                                command_operation(
                                    &settings.join_command,
                                    name,
                                    Risk::High,
                                    stake,
                                    vars(&[
                                        ("stake_ton", stake_ton.to_string()),
                                        ("max_factor", format!("{:.1}", settings.max_factor)),
                                    ]),
                                ),
                                format!(
                                    "{}; stake {stake_ton} TON (wallet {:.2} TON minus a {:.0} TON reserve, within the limits) with max factor {:.1}",
                                    alert.summary,
                                    balance.unwrap_or_default(),
                                    settings.stake_reserve_ton,
                                    settings.max_factor
                                ),
                                evidence,
                            ))
                        }
                        _ => {
                            tracing::info!(
                                validator = name,
                                "no election stake proposed: the wallet cannot cover the minimum stake"
                            );
                            None
                        }
                    }
                }
                _ => None,
            };
            if let Some(proposal) = proposal {
                self.propose(proposal).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

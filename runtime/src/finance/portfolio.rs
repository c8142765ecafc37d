//! The portfolio in the runtime: balance imports, wallet snapshots from toncenter, the daily
//! valuation, concentration alerts with a rebalancing proposal, and the staking comparison.
//! The CLI (`finance balances import`, `finance portfolio`), the API and the daemon's daily
//! check call these.

use std::collections::BTreeMap;

use agents::alert::{Alert, AlertStatus, Severity};
use agents::finance::FinanceConfig;
use agents::finance::portfolio::{
    JettonPolicy, PortfolioReport, RebalanceStep, StakingComparison, jetton_holding,
    parse_balances, rebalance_plan, staking_comparison, valuation, wallet_holding,
};
use chrono::{Days, NaiveDate, Utc};
use memory::Store;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use super::onchain::{OnchainSources, stake_cycles};
use super::{Every, FinanceError, journal};

/// The agent name alerts and proposals carry.
pub const AGENT: &str = "finance";

/// A balances file read (and stored unless a dry run).
#[derive(Clone, Debug, Serialize)]
pub struct BalancesImport {
    pub file: String,
    pub rows: usize,
    pub stored: usize,
    pub dry_run: bool,
    pub holdings: Vec<memory::ledger::Holding>,
}

/// Reads a `date,account,asset,class,quantity[,value,currency][,cost_basis]` file; all rows
/// or none are stored (a later snapshot of the same account, asset and day replaces the
/// earlier one).
pub fn import_balances(
    store: &Store,
    bytes: &[u8],
    file: &str,
    dry_run: bool,
    actor: &str,
) -> Result<BalancesImport, FinanceError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| FinanceError::Invalid(format!("{file}: not UTF-8 text: {error}")))?;
    let holdings = parse_balances(text, file)?;
    let stored = if dry_run {
        0
    } else {
        let stored = store.ledger().put_holdings(&holdings)?;
        journal(
            store,
            actor,
            "finance.balances_imported",
            file,
            serde_json::json!({ "rows": holdings.len(), "stored": stored }),
        );
        stored
    };
    Ok(BalancesImport {
        file: file.to_owned(),
        rows: holdings.len(),
        stored,
        dry_run,
        holdings,
    })
}

/// One portfolio wallet's balance today.
#[derive(Clone, Debug, Serialize)]
pub struct WalletSnapshot {
    pub label: String,
    pub address: String,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub balance_ton: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The jettons counted as holdings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jettons: Vec<JettonSnapshot>,
    /// Jettons held but not counted, with the reason ("SCAM: blacklist").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_jettons: Vec<String>,
    /// Why the jettons could not be read (the TON balance is still stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jetton_error: Option<String>,
}

/// A jetton of a wallet stored as a holding.
#[derive(Clone, Debug, Serialize)]
pub struct JettonSnapshot {
    pub asset: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    /// tonapi's price in the reporting currency, stored as the day's rate when no other
    /// source gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// Reads each `finance.portfolio.wallets` balance (toncenter) and, unless
/// `finance.portfolio.jettons = "none"`, its jettons (tonapi), and stores them as today's
/// holdings. A jetton held before and gone now is stored as 0, so it is not carried forward.
pub async fn snapshot_wallets(
    store: &Store,
    config: &FinanceConfig,
    sources: &OnchainSources,
    today: NaiveDate,
) -> Result<Vec<WalletSnapshot>, FinanceError> {
    let mut snapshots = Vec::new();
    let mut holdings = Vec::new();
    let mut rates = Vec::new();
    let previous = if config.portfolio.wallets.is_empty() {
        Vec::new()
    } else {
        store.ledger().holdings(today)?
    };
    for wallet in &config.portfolio.wallets {
        let mut snapshot = WalletSnapshot {
            label: wallet.label.clone(),
            address: wallet.address.clone(),
            balance_ton: None,
            error: None,
            jettons: Vec::new(),
            ignored_jettons: Vec::new(),
            jetton_error: None,
        };
        match sources
            .toncenter
            .get_address_information(&wallet.address)
            .await
        {
            Ok(information) => {
                let nanoton = information.value.balance_nanoton;
                holdings.push(wallet_holding(wallet, today, nanoton));
                snapshot.balance_ton = Some(agents::finance::onchain::ton(nanoton));
            }
            Err(error) => snapshot.error = Some(error.to_string()),
        }
        // The jettons now held, when known: `None` when they could not all be read.
        let held = if config.portfolio.jettons == JettonPolicy::None {
            Some(std::collections::BTreeSet::new())
        } else {
            jettons(
                store,
                config,
                sources,
                wallet,
                today,
                &mut snapshot,
                &mut holdings,
                &mut rates,
            )
            .await?
        };
        if let Some(held) = held {
            holdings.extend(closed_jettons(wallet, today, &previous, &held));
        }
        snapshots.push(snapshot);
    }
    store.ledger().put_holdings(&holdings)?;
    if !rates.is_empty() {
        store.ledger().put_rates(&rates)?;
    }
    Ok(snapshots)
}

/// A wallet's jettons from tonapi: the admitted ones as holdings (and tonapi's price as the
/// day's rate when there is none), the others named. The asset codes held, or `None` when the
/// list could not be read whole (so nothing is closed on a guess).
#[allow(clippy::too_many_arguments)]
async fn jettons(
    store: &Store,
    config: &FinanceConfig,
    sources: &OnchainSources,
    wallet: &agents::finance::portfolio::PortfolioWallet,
    today: NaiveDate,
    snapshot: &mut WalletSnapshot,
    holdings: &mut Vec<memory::ledger::Holding>,
    rates: &mut Vec<memory::ledger::Rate>,
) -> Result<Option<std::collections::BTreeSet<String>>, FinanceError> {
    let currency = config.reporting_currency.to_uppercase();
    let fetched = match sources
        .tonapi
        .account_jettons(&wallet.address, &[currency.to_lowercase().as_str()])
        .await
    {
        Ok(fetched) => fetched.value,
        Err(error) => {
            snapshot.jetton_error = Some(error.to_string());
            return Ok(None);
        }
    };
    let complete = fetched.skipped.is_empty();
    snapshot.ignored_jettons.extend(fetched.skipped);
    let mut present = std::collections::BTreeSet::new();
    for jetton in &fetched.balances {
        if jetton.raw_balance == 0 {
            continue;
        }
        if !config.portfolio.jettons.admits(&jetton.verification) {
            snapshot.ignored_jettons.push(format!(
                "{}: {} (finance.portfolio.jettons = \"{}\")",
                jetton.symbol,
                jetton.verification,
                match config.portfolio.jettons {
                    JettonPolicy::Verified => "verified",
                    JettonPolicy::All => "all",
                    JettonPolicy::None => "none",
                }
            ));
            continue;
        }
        let Some(holding) = jetton_holding(wallet, today, jetton, &currency) else {
            snapshot.ignored_jettons.push(format!(
                "{}: a balance of {} units at {} decimals is too large to count",
                jetton.symbol, jetton.raw_balance, jetton.decimals
            ));
            continue;
        };
        // Two jettons with one code in one wallet (two white-listed bridges of a coin): one
        // position, their sum.
        if !present.insert(holding.asset.clone()) {
            if let Some(same) = holdings.iter_mut().find(|same| {
                same.account == holding.account && same.asset == holding.asset && same.date == today
            }) {
                same.quantity = same.quantity.saturating_add(holding.quantity);
            }
            if let Some(same) = snapshot
                .jettons
                .iter_mut()
                .find(|same| same.asset == holding.asset)
            {
                same.quantity = same.quantity.saturating_add(holding.quantity);
            }
            continue;
        }
        let price = jetton.prices.get(&currency).copied();
        if let Some(rate) = price
            .and_then(|price| Decimal::try_from(price).ok())
            .and_then(|rate| rate.round_sf(12))
            .filter(|rate| *rate > Decimal::ZERO)
            && store
                .ledger()
                .rate_on(&holding.asset, &currency, today, 0)?
                .is_none()
        {
            rates.push(memory::ledger::Rate {
                base: holding.asset.clone(),
                quote: currency.clone(),
                date: today,
                rate: rate.normalize(),
            });
        }
        snapshot.jettons.push(JettonSnapshot {
            asset: holding.asset.clone(),
            quantity: holding.quantity,
            price,
        });
        holdings.push(holding);
    }
    Ok(complete.then_some(present))
}

/// Zero holdings today for the wallet's jettons held before and not in `held`: a jetton no
/// longer listed was sent away, so it is not carried forward.
fn closed_jettons(
    wallet: &agents::finance::portfolio::PortfolioWallet,
    today: NaiveDate,
    previous: &[memory::ledger::Holding],
    held: &std::collections::BTreeSet<String>,
) -> Vec<memory::ledger::Holding> {
    let mut latest: BTreeMap<&str, &memory::ledger::Holding> = BTreeMap::new();
    for holding in previous.iter().filter(|holding| {
        holding.account == wallet.label
            && holding.asset != agents::finance::portfolio::TON
            && matches!(
                &holding.source,
                memory::ledger::HoldingSource::OnChain { .. }
            )
    }) {
        let entry = latest.entry(holding.asset.as_str()).or_insert(holding);
        if holding.date >= entry.date {
            *entry = holding;
        }
    }
    latest
        .into_iter()
        .filter(|(asset, holding)| !held.contains(*asset) && !holding.quantity.is_zero())
        .map(|(_, holding)| memory::ledger::Holding {
            date: today,
            quantity: Decimal::ZERO,
            valuation: None,
            cost_basis: None,
            ..holding.clone()
        })
        .collect()
}

/// The valuation of `from..=to` with its rebalancing plan.
#[derive(Clone, Debug, Serialize)]
pub struct PortfolioView {
    pub report: PortfolioReport,
    pub plan: Vec<RebalanceStep>,
    /// Own validators' APY against tonapi's pools; absent when tonapi could not be read.
    pub staking: Option<StakingComparison>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wallets: Vec<WalletSnapshot>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub fn report(
    store: &Store,
    config: &FinanceConfig,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(PortfolioReport, Vec<RebalanceStep>), FinanceError> {
    let report = valuation(store.ledger(), config, from, to)?;
    let plan = rebalance_plan(&report, &config.portfolio);
    Ok((report, plan))
}

/// Own stake cycles against tonapi's staking pools.
pub async fn staking(store: &Store, sources: &OnchainSources) -> Result<StakingComparison, String> {
    let cycles = stake_cycles(store).map_err(|error| error.to_string())?;
    let pools = sources
        .tonapi
        .staking_pools()
        .await
        .map_err(|error| error.to_string())?
        .value;
    Ok(staking_comparison(&cycles, &pools))
}

/// Snapshot, value, compare: what `finance portfolio` shows and the daily check starts from.
pub async fn view(
    store: &Store,
    config: &FinanceConfig,
    sources: &OnchainSources,
    days: u64,
    today: NaiveDate,
) -> Result<PortfolioView, FinanceError> {
    let wallets = snapshot_wallets(store, config, sources, today).await?;
    let from = today.checked_sub_days(Days::new(days)).unwrap_or(today);
    let (report, plan) = report(store, config, from, today)?;
    let mut problems: Vec<String> = wallets
        .iter()
        .flat_map(|wallet| {
            let balance = wallet
                .error
                .as_ref()
                .map(|error| format!("wallet {}: {error}", wallet.label));
            let jettons = wallet
                .jetton_error
                .as_ref()
                .map(|error| format!("wallet {} jettons: {error}", wallet.label));
            balance.into_iter().chain(jettons)
        })
        .collect();
    let staking = match staking(store, sources).await {
        Ok(comparison) => Some(comparison),
        Err(error) => {
            problems.push(format!("staking pools: {error}"));
            None
        }
    };
    Ok(PortfolioView {
        report,
        plan,
        staking,
        wallets,
        problems,
    })
}

/// Key of the concentration alert of a limit ("asset TON" -> `finance.concentration/asset_TON`).
pub fn alert_key(limit: &str) -> String {
    format!("finance.concentration/{}", limit.replace(' ', "_"))
}

/// What the daily check did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckOutcome {
    /// Alerts that started or ended now.
    pub alerts: Vec<Alert>,
    /// Rebalancing proposals submitted now, with the gate's decision.
    pub proposals: Vec<crate::gate::ProposalRecord>,
}

/// Fires a concentration alert for each newly broken limit (with a `ton_transfer` proposal for
/// each transfer step of the plan, which the policies route), resolves the ones back within
/// their limit. An alert already firing is not repeated, and neither is its proposal.
pub async fn check(
    view: &PortfolioView,
    auditor: &agents::audit::Auditor,
    telemetry: &agents::telemetry::Telemetry,
    gate: Option<&crate::gate::Gatekeeper>,
) -> Result<CheckOutcome, FinanceError> {
    let store = auditor.store();
    let now = Utc::now();
    let mut outcome = CheckOutcome::default();
    let firing: BTreeMap<String, agents::alert::ActiveAlert> = store
        .state()
        .scan_prefix::<agents::alert::ActiveAlert>(&agents::alert::active_key(
            "finance.concentration/",
        ))?
        .into_iter()
        .map(|(_, active)| (active.alert.key.clone(), active))
        .collect();
    let report = &view.report;
    let mut broken = Vec::new();
    for breach in &report.breaches {
        let key = alert_key(&breach.limit);
        broken.push(key.clone());
        if firing.contains_key(&key) {
            continue;
        }
        let steps: Vec<&RebalanceStep> = view
            .plan
            .iter()
            .filter(|step| match step {
                RebalanceStep::Transfer { limit, .. } | RebalanceStep::Reduce { limit, .. } => {
                    *limit == breach.limit
                }
            })
            .collect();
        let alert = Alert {
            key: key.clone(),
            rule: "concentration".to_owned(),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            summary: format!(
                "{} is {:.1}% of the portfolio, above its {:.1}% limit: {:.2} {} over",
                breach.limit,
                breach.share * 100.0,
                breach.max_share * 100.0,
                breach.excess_value,
                report.currency
            ),
            labels: BTreeMap::from([
                ("domain".to_owned(), AGENT.to_owned()),
                ("limit".to_owned(), breach.limit.clone()),
            ]),
            evidence: serde_json::json!({ "breach": breach, "plan": steps, "total": report.total }),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        let alert = agents::alert::record(auditor, telemetry, AGENT, alert, None)
            .await
            .map_err(|error| FinanceError::Invalid(error.to_string()))?;
        outcome.alerts.push(alert);
        let Some(gate) = gate else { continue };
        for (index, step) in steps.iter().enumerate() {
            let RebalanceStep::Transfer {
                quantity,
                value,
                from_label,
                from_address,
                to_address,
                description,
                ..
            } = step
            else {
                continue;
            };
            // An amount no transfer can carry is not proposed at all.
            let (Some(nanoton), Some(cents)) = (
                quantity
                    .checked_mul(Decimal::from(1_000_000_000u64))
                    .and_then(|nanoton| nanoton.trunc().to_u64()),
                value
                    .checked_mul(Decimal::ONE_HUNDRED)
                    .and_then(|cents| cents.round().to_u64()),
            ) else {
                continue;
            };
            let proposal = policies::Proposal {
                id: format!(
                    "rebalance-{}-{}-{index}",
                    now.format("%Y%m%d%H%M%S"),
                    breach.limit.replace(' ', "-")
                ),
                proposer: policies::Proposer::Agent {
                    name: AGENT.to_owned(),
                    domain: AGENT.to_owned(),
                },
                operation: policies::Operation {
                    kind: "ton_transfer".to_owned(),
                    domain: AGENT.to_owned(),
                    risk: policies::Risk::High,
                    amount_nanoton: nanoton,
                    amount_cents: cents,
                    target: to_address.clone(),
                    parameters: serde_json::json!({
                        "destination": to_address,
                        "amount_nanoton": nanoton,
                        "comment": format!("rebalance {}", breach.limit),
                    }),
                },
                rationale: format!(
                    "{description} (from {from_label} {from_address}; the ton_transfer executor sends from its own wallet)"
                ),
                evidence: serde_json::json!({ "breach": breach, "step": step }),
            };
            match gate.submit(proposal).await {
                Ok(record) => outcome.proposals.push(record),
                Err(error) => {
                    tracing::warn!(%error, "finance: the rebalancing proposal was not accepted")
                }
            }
        }
    }
    for (key, active) in firing {
        if broken.contains(&key) {
            continue;
        }
        let mut resolved = active.alert.clone();
        resolved.status = AlertStatus::Resolved;
        resolved.summary = format!("{} is back within its limit", active.alert.label("limit"));
        resolved.at = now;
        resolved.observed_at = now;
        let resolved = agents::alert::record(auditor, telemetry, AGENT, resolved, None)
            .await
            .map_err(|error| FinanceError::Invalid(error.to_string()))?;
        outcome.alerts.push(resolved);
    }
    Ok(outcome)
}

/// The daemon's task: once a day (and on start), snapshot the wallets, value the portfolio,
/// alert on broken limits and propose the rebalancing.
#[allow(clippy::too_many_arguments)]
pub async fn daily(
    store: Store,
    config: std::sync::Arc<FinanceConfig>,
    sources: std::sync::Arc<OnchainSources>,
    auditor: agents::audit::Auditor,
    telemetry: agents::telemetry::Telemetry,
    gate: std::sync::Arc<crate::gate::Gatekeeper>,
    alerts: tokio::sync::mpsc::UnboundedSender<Alert>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = Every::new(std::time::Duration::from_secs(24 * 3600), stop);
    while every.tick().await {
        let today = Utc::now().date_naive();
        let view = match view(&store, &config, &sources, 30, today).await {
            Ok(view) => view,
            Err(error) => {
                tracing::warn!(%error, "finance: portfolio valuation failed");
                continue;
            }
        };
        for problem in &view.problems {
            tracing::warn!(%problem, "finance: portfolio");
        }
        match check(&view, &auditor, &telemetry, Some(&gate)).await {
            Ok(outcome) => {
                for alert in outcome.alerts {
                    let _ = alerts.send(alert);
                }
            }
            Err(error) => tracing::warn!(%error, "finance: concentration check failed"),
        }
    }
}

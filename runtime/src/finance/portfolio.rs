//! The portfolio in the runtime: balance imports, wallet snapshots from toncenter, the daily
//! valuation, concentration alerts with a rebalancing proposal, and the staking comparison.
//! The CLI (`finance balances import`, `finance portfolio`), the API and the daemon's daily
//! check call these.

use std::collections::BTreeMap;

use agents::alert::{Alert, AlertStatus, Severity};
use agents::finance::FinanceConfig;
use agents::finance::portfolio::{
    PortfolioReport, RebalanceStep, StakingComparison, parse_balances, rebalance_plan,
    staking_comparison, valuation, wallet_holding,
};
use chrono::{Days, NaiveDate, Utc};
use memory::Store;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use super::onchain::{OnchainSources, stake_cycles};
use super::{FinanceError, journal};

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
}

/// Reads each `finance.portfolio.wallets` balance and stores it as today's holding.
pub async fn snapshot_wallets(
    store: &Store,
    config: &FinanceConfig,
    sources: &OnchainSources,
    today: NaiveDate,
) -> Result<Vec<WalletSnapshot>, FinanceError> {
    let mut snapshots = Vec::new();
    let mut holdings = Vec::new();
    for wallet in &config.portfolio.wallets {
        match sources
            .toncenter
            .get_address_information(&wallet.address)
            .await
        {
            Ok(information) => {
                let nanoton = information.value.balance_nanoton;
                holdings.push(wallet_holding(wallet, today, nanoton));
                snapshots.push(WalletSnapshot {
                    label: wallet.label.clone(),
                    address: wallet.address.clone(),
                    balance_ton: Some(agents::finance::onchain::ton(nanoton)),
                    error: None,
                });
            }
            Err(error) => snapshots.push(WalletSnapshot {
                label: wallet.label.clone(),
                address: wallet.address.clone(),
                balance_ton: None,
                error: Some(error.to_string()),
            }),
        }
    }
    store.ledger().put_holdings(&holdings)?;
    Ok(snapshots)
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
        .filter_map(|wallet| {
            wallet
                .error
                .as_ref()
                .map(|error| format!("wallet {}: {error}", wallet.label))
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
            let nanoton = (quantity * Decimal::from(1_000_000_000u64))
                .trunc()
                .to_u64()
                .unwrap_or(u64::MAX);
            let cents = (value * Decimal::ONE_HUNDRED)
                .round()
                .to_u64()
                .unwrap_or(u64::MAX);
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
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
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

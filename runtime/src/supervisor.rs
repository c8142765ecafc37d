//! Supervision: each domain agent runs as a task owned by an actix [`AgentSupervisor`], which
//! restarts it after a panic or fatal error with exponential backoff and jitter, counts
//! restarts, and after a crash loop marks it `failed`, raises an alert and leaves it alone.
//!
//! The restart arithmetic lives in the plain [`RestartTracker`]; the actor only schedules.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use agents::audit::Auditor;
use agents::health::HealthRegistry;
use agents::telemetry::Telemetry;
use agents::{AgentError, Alert, AlertStatus, DomainAgent, Severity};
use chrono::Utc;
use futures::FutureExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::SupervisorConfig;

/// What the supervisor decides after a crash.
#[derive(Clone, Debug, PartialEq)]
pub enum RestartDecision {
    RestartAfter(Duration),
    /// Crash loop: too many restarts within the window.
    GiveUp {
        restarts_in_window: usize,
    },
}

/// Restart bookkeeping: pure, driven by the caller's clock and jitter.
#[derive(Clone, Debug)]
pub struct RestartTracker {
    config: SupervisorConfig,
    recent: VecDeque<Instant>,
    total: u64,
}

impl RestartTracker {
    pub fn new(config: SupervisorConfig) -> Self {
        Self {
            config,
            recent: VecDeque::new(),
            total: 0,
        }
    }

    /// Restarts so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Called on each crash; `jitter` in `[0, 1)` spreads restarts of many agents apart.
    pub fn on_crash(&mut self, now: Instant, jitter: f64) -> RestartDecision {
        while let Some(oldest) = self.recent.front() {
            if now.duration_since(*oldest) > self.config.crash_loop_window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let in_window = self.recent.len();
        if in_window >= self.config.crash_loop_restarts as usize {
            return RestartDecision::GiveUp {
                restarts_in_window: in_window,
            };
        }
        self.recent.push_back(now);
        self.total += 1;
        let exponent = u32::try_from(in_window).unwrap_or(u32::MAX).min(20);
        let base = self
            .config
            .backoff_initial
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.config.backoff_max);
        // Equal jitter: half fixed, half random, so restarts never collapse to zero delay.
        let jitter = jitter.clamp(0.0, 1.0);
        RestartDecision::RestartAfter(base.mul_f64(0.5 + 0.5 * jitter))
    }
}

/// Builds a fresh agent instance (after a crash, from durable state in the store).
pub type AgentFactory = Arc<dyn Fn() -> Result<Box<dyn DomainAgent>, AgentError> + Send + Sync>;

/// Where alerts go: the notifier's queue. Unbounded on purpose: an alert is never dropped.
pub type AlertSink = mpsc::UnboundedSender<Alert>;

/// Result of a tick requested through [`TickNow`].
#[derive(Clone, Debug, Serialize)]
pub struct TickSummary {
    pub agent: String,
    pub observations: usize,
    pub alerts: Vec<String>,
}

enum AgentCommand {
    Tick(oneshot::Sender<Result<TickSummary, String>>),
}

/// Why the agent loop ended.
#[derive(Debug)]
enum ExitReason {
    Stopped,
    Fatal(String),
    Panicked(String),
}

/// Ask the agent to tick now (API, CLI, tests); answers when the tick is done.
#[derive(Message)]
#[rtype(result = "Result<TickSummary, String>")]
pub struct TickNow;

/// Stop the agent after its in-flight tick; answers when it has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

#[derive(Message)]
#[rtype(result = "()")]
struct ChildExited {
    generation: u64,
    reason: ExitReason,
}

/// Everything an agent loop shares with the daemon.
#[derive(Clone)]
pub struct AgentContext {
    pub health: HealthRegistry,
    pub telemetry: Telemetry,
    pub auditor: Auditor,
    pub alerts: AlertSink,
}

/// Hosts one domain agent.
pub struct AgentSupervisor {
    name: String,
    factory: AgentFactory,
    interval: Duration,
    /// Tick at once when the agent (re)starts, or only after one interval.
    tick_on_start: bool,
    tracker: RestartTracker,
    context: AgentContext,
    /// Incremented on every start; tests and status read it through [`AgentSupervisor::starts`].
    starts: Arc<AtomicU64>,
    generation: u64,
    commands: Option<mpsc::Sender<AgentCommand>>,
    stop: watch::Sender<bool>,
    stopping: bool,
    failed: bool,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    running: bool,
}

impl AgentSupervisor {
    pub fn new(
        name: &str,
        factory: AgentFactory,
        interval: Duration,
        config: SupervisorConfig,
        context: AgentContext,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            name: name.to_owned(),
            factory,
            interval,
            tick_on_start: true,
            tracker: RestartTracker::new(config),
            context,
            starts: Arc::new(AtomicU64::new(0)),
            generation: 0,
            commands: None,
            stop,
            stopping: false,
            failed: false,
            shutdown_waiters: Vec::new(),
            running: false,
        }
    }

    /// Whether the agent ticks as soon as it (re)starts (default) or waits one interval.
    pub fn with_tick_on_start(mut self, tick_on_start: bool) -> Self {
        self.tick_on_start = tick_on_start;
        self
    }

    /// Shared counter of agent starts (first start included).
    pub fn starts(&self) -> Arc<AtomicU64> {
        self.starts.clone()
    }

    fn start_child(&mut self, ctx: &mut Context<Self>) {
        if self.stopping || self.failed {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.starts.fetch_add(1, Ordering::SeqCst);
        let health = self.context.health.clone();
        health.actor_starting(&self.name);
        let agent = match (self.factory)() {
            Ok(agent) => agent,
            Err(error) => {
                ctx.notify(ChildExited {
                    generation,
                    reason: ExitReason::Fatal(format!("could not build the agent: {error}")),
                });
                return;
            }
        };
        let (commands_tx, commands_rx) = mpsc::channel(16);
        self.commands = Some(commands_tx);
        self.running = true;
        // Export the restart counter at 0 from the first start, so dashboards see the series.
        let _ = self
            .context
            .telemetry
            .actor_restarts
            .get_or_create(&self.context.telemetry.actor(&self.name));
        self.context
            .telemetry
            .actor_up
            .get_or_create(&self.context.telemetry.actor(&self.name))
            .set(1);
        let task = tokio::spawn(run_agent(
            agent,
            self.name.clone(),
            self.interval,
            self.tick_on_start,
            commands_rx,
            self.stop.subscribe(),
            self.context.clone(),
        ));
        let addr = ctx.address();
        tokio::spawn(async move {
            let reason = match task.await {
                Ok(reason) => reason,
                Err(error) if error.is_panic() => {
                    let payload = error.into_panic();
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic with a non-text payload".to_owned());
                    ExitReason::Panicked(message)
                }
                Err(_) => ExitReason::Stopped,
            };
            addr.do_send(ChildExited { generation, reason });
        });
    }

    fn crash_alert(&self, error: &str, restarts_in_window: usize) -> Alert {
        let now = Utc::now();
        Alert {
            key: crash_loop_key(&self.name),
            rule: "crash_loop".to_owned(),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            summary: format!(
                "agent {} is in a crash loop ({restarts_in_window} restarts within {}) and was stopped; last error: {error}",
                self.name,
                agents::duration::format(self.tracker.config.crash_loop_window)
            ),
            labels: [
                ("domain".to_owned(), "runtime".to_owned()),
                ("actor".to_owned(), self.name.clone()),
            ]
            .into_iter()
            .collect(),
            evidence: serde_json::json!({
                "restarts_total": self.tracker.total(),
                "restarts_in_window": restarts_in_window,
                "last_error": error,
            }),
            starts_at: now,
            at: now,
            observed_at: now,
        }
    }
}

fn crash_loop_key(agent: &str) -> String {
    format!("runtime.crash_loop/{agent}")
}

/// After a healthy tick: a crash-loop alert left from an earlier run is resolved.
async fn resolve_crash_loop_alert(context: &AgentContext, name: &str) {
    let key = crash_loop_key(name);
    let state_key = agents::alert::active_key(&key);
    let store = context.auditor.store();
    let active = match store.state().get::<agents::alert::ActiveAlert>(&state_key) {
        Ok(Some(active)) => active,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, agent = %name, "cannot read alert state");
            return;
        }
    };
    let now = Utc::now();
    let alert = Alert {
        status: AlertStatus::Resolved,
        summary: format!("agent {name} is running again after its crash loop"),
        at: now,
        observed_at: now,
        ..active.alert
    };
    match context
        .auditor
        .record(name, "alert.resolved", &key, &alert)
        .await
    {
        Ok(_) => {
            if let Err(error) = store.state().delete(&state_key) {
                tracing::error!(%error, agent = %name, "cannot clear alert state");
            }
            let _ = context.alerts.send(alert);
        }
        Err(error) => tracing::error!(%error, agent = %name, "cannot journal a resolved alert"),
    }
}

async fn run_agent(
    mut agent: Box<dyn DomainAgent>,
    name: String,
    interval: Duration,
    tick_on_start: bool,
    mut commands: mpsc::Receiver<AgentCommand>,
    mut stop: watch::Receiver<bool>,
    context: AgentContext,
) -> ExitReason {
    let first = if tick_on_start {
        tokio::time::Instant::now()
    } else {
        tokio::time::Instant::now() + interval
    };
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    context.health.actor_running(&name);
    let mut healthy_once = false;
    loop {
        if *stop.borrow() {
            return ExitReason::Stopped;
        }
        let reply = tokio::select! {
            biased;
            _ = stop.changed() => return ExitReason::Stopped,
            command = commands.recv() => match command {
                Some(AgentCommand::Tick(reply)) => Some(reply),
                None => return ExitReason::Stopped,
            },
            _ = ticker.tick() => None,
        };
        // An in-flight tick is never interrupted: shutdown waits for it.
        let outcome = std::panic::AssertUnwindSafe(agent.tick())
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(report)) => {
                context.health.actor_ticked(&name, Utc::now());
                if !healthy_once {
                    healthy_once = true;
                    resolve_crash_loop_alert(&context, &name).await;
                }
                context
                    .telemetry
                    .ticks
                    .get_or_create(&context.telemetry.actor(&name))
                    .inc();
                let summary = TickSummary {
                    agent: name.clone(),
                    observations: report.observations,
                    alerts: report
                        .alerts
                        .iter()
                        .map(|alert| alert.key.clone())
                        .collect(),
                };
                for alert in report.alerts {
                    if context.alerts.send(alert).is_err() {
                        tracing::error!(agent = %name, "alert queue closed; alert kept in the journal only");
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(summary));
                }
            }
            Ok(Err(error)) => {
                let message = error.to_string();
                if let Some(reply) = reply {
                    let _ = reply.send(Err(message.clone()));
                }
                return ExitReason::Fatal(message);
            }
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic with a non-text payload".to_owned());
                if let Some(reply) = reply {
                    let _ = reply.send(Err(format!("agent {name} panicked: {message}")));
                }
                return ExitReason::Panicked(message);
            }
        }
    }
}

impl Actor for AgentSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_child(ctx);
    }
}

impl Handler<ChildExited> for AgentSupervisor {
    type Result = ();

    fn handle(&mut self, message: ChildExited, ctx: &mut Self::Context) {
        if message.generation != self.generation {
            return;
        }
        self.running = false;
        self.commands = None;
        self.context
            .telemetry
            .actor_up
            .get_or_create(&self.context.telemetry.actor(&self.name))
            .set(0);
        let error = match message.reason {
            ExitReason::Stopped => {
                for waiter in self.shutdown_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                if self.stopping {
                    // Release the context (store, alert queue) with the actor.
                    ctx.stop();
                }
                return;
            }
            ExitReason::Fatal(error) => error,
            ExitReason::Panicked(error) => format!("panicked: {error}"),
        };
        if self.stopping {
            for waiter in self.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
            ctx.stop();
            return;
        }
        let now = Utc::now();
        self.context.health.actor_crashed(&self.name, &error, now);
        let decision = self.tracker.on_crash(Instant::now(), rand::random::<f64>());
        let auditor = self.context.auditor.clone();
        let name = self.name.clone();
        match decision {
            RestartDecision::RestartAfter(delay) => {
                tracing::error!(actor = %self.name, %error, restart_in = ?delay, restarts = self.tracker.total(), "agent crashed; restarting");
                self.context
                    .telemetry
                    .actor_restarts
                    .get_or_create(&self.context.telemetry.actor(&self.name))
                    .inc();
                self.context.health.actor_restarted(&self.name);
                let body = serde_json::json!({
                    "error": error,
                    "restart_in_ms": delay.as_millis() as u64,
                    "restarts_total": self.tracker.total(),
                });
                // Audit first: the crash is on record before the restart is scheduled.
                let journal = async move {
                    if let Err(error) = auditor.record(&name, "actor.crashed", &name, &body).await {
                        tracing::error!(%error, "could not journal a crash");
                    }
                };
                ctx.spawn(journal.into_actor(self).map(move |_, _, ctx| {
                    ctx.run_later(delay, |actor, ctx| actor.start_child(ctx));
                }));
            }
            RestartDecision::GiveUp { restarts_in_window } => {
                self.failed = true;
                let reason = format!(
                    "crash loop: {restarts_in_window} restarts within {}; last error: {error}",
                    agents::duration::format(self.tracker.config.crash_loop_window)
                );
                tracing::error!(actor = %self.name, %reason, "agent failed; not restarting");
                self.context.health.actor_failed(&self.name, &reason, now);
                let alert = self.crash_alert(&error, restarts_in_window);
                let alerts = self.context.alerts.clone();
                tokio::spawn(async move {
                    // Audit first: the alert is on record before anyone is told.
                    match auditor
                        .record(&name, "alert.firing", &alert.key, &alert)
                        .await
                    {
                        Ok(_) => {
                            // Remembered so status lists it and a later healthy run resolves it.
                            let active = agents::alert::ActiveAlert {
                                alert: alert.clone(),
                                reference: None,
                            };
                            if let Err(error) = auditor
                                .store()
                                .state()
                                .put(&agents::alert::active_key(&alert.key), &active)
                            {
                                tracing::error!(%error, "could not store a crash-loop alert");
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "could not journal a crash-loop alert")
                        }
                    }
                    let _ = alerts.send(alert);
                });
            }
        }
    }
}

impl Handler<TickNow> for AgentSupervisor {
    type Result = ResponseFuture<Result<TickSummary, String>>;

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) -> Self::Result {
        let commands = self.commands.clone();
        let name = self.name.clone();
        let failed = self.failed;
        Box::pin(async move {
            let Some(commands) = commands else {
                return Err(if failed {
                    format!("agent {name} has failed (crash loop) and is not running")
                } else {
                    format!("agent {name} is restarting; try again shortly")
                });
            };
            let (reply, answer) = oneshot::channel();
            commands
                .send(AgentCommand::Tick(reply))
                .await
                .map_err(|_| format!("agent {name} stopped before it could tick"))?;
            answer
                .await
                .map_err(|_| format!("agent {name} crashed during the tick"))?
        })
    }
}

impl Handler<Shutdown> for AgentSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let _ = self.stop.send(true);
        if !self.running {
            ctx.stop();
            return Box::pin(async {});
        }
        let (waiter, done) = oneshot::channel();
        self.shutdown_waiters.push(waiter);
        Box::pin(async move {
            let _ = done.await;
        })
    }
}

#[cfg(test)]
mod tests;

//! The alert router, modelled on Prometheus Alertmanager: it sits between the agents' alert
//! queue and the notifier and decides who hears about what, and when.
//!
//! - [`engine`]: the pure state machine (routing tree, grouping, dedup, repeats, recovery
//!   notices, inhibition, silences, maintenance windows, acknowledgements, escalation);
//! - [`AlertRouter`]: the engine behind a lock, persisting its state in the store and
//!   journaling every dispatch and every silence or acknowledgement before anything is sent;
//! - [`http`]: `/v1/alerts`, `/v1/silences`, `/v1/alerts/{key}/ack`.
//!
//! What it must never do: send before the journal holds the dispatch, or forget a group,
//! silence or acknowledgement across a restart.

use agents::audit::Auditor;
use agents::{Alert, AlertStatus};
use chrono::{DateTime, Utc};
use memory::{JournalQuery, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, watch};

use crate::config::AlertingConfig;

pub mod engine;
pub mod http;
pub mod ingest;
pub mod matcher;
pub mod schedule;

use engine::{
    ACKS_PREFIX, ALERTS_PREFIX, AlertRecord, EngineError, GROUPS_PREFIX, GroupState,
    SILENCES_PREFIX,
};
pub use engine::{Ack, AlertView, Dispatch, DispatchKind, Engine, RouterState, Silence};
use matcher::Matcher;

/// Where dispatches go: the notifier's queue (unbounded: nothing is dropped).
pub type DispatchSink = mpsc::UnboundedSender<Dispatch>;

/// Why a router operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("router state: {0}")]
    Store(#[from] memory::StoreError),
    #[error("journal: {0}")]
    Audit(Box<agents::audit::AuditError>),
}

impl From<agents::audit::AuditError> for RouterError {
    fn from(error: agents::audit::AuditError) -> Self {
        RouterError::Audit(Box::new(error))
    }
}

impl From<EngineError> for RouterError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Invalid(message) => RouterError::InvalidInput(message),
            EngineError::NotFound(message) => RouterError::NotFound(message),
        }
    }
}

/// A request for a new silence.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<String>,
    /// Default: now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Either `ends_at` or `duration` ("2h").
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration: Option<String>,
    pub comment: String,
}

/// `GET /v1/alerts` filters.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AlertQuery {
    /// `firing`: what fires now (with silences and acknowledgements); `resolved`: recoveries
    /// from the history; absent: the history of both.
    #[serde(default)]
    pub status: Option<String>,
    /// History at or after this time.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Comma-separated matchers: `rule=low_efficiency,severity!=info`.
    #[serde(default)]
    pub matchers: Option<String>,
    /// History entries, newest first (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One row of `GET /v1/alerts`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct AlertEntry {
    /// Journal entry of a history row.
    #[serde(default)]
    pub seq: Option<u64>,
    pub alert: Alert,
    /// `firing`, `resolved` (history), or for what fires now: `active`, `silenced`,
    /// `inhibited`, `maintenance`, `acknowledged`.
    pub state: String,
    #[serde(default)]
    pub silenced_by: Vec<String>,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    #[serde(default)]
    pub receivers: Vec<String>,
}

/// A new dispatch id: microseconds since the epoch, strictly increasing within the process,
/// so pending dispatches replay oldest first.
fn next_dispatch_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

/// Runs `futures` together, each first polled in the given order, and returns their outputs in
/// that order. A journal append submits its entry when first polled, so the entries keep this
/// order and the journal's writer commits them under one flush instead of one flush each.
async fn in_order<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures::future::{MaybeDone, maybe_done};
    use std::pin::Pin;
    use std::task::Poll;
    let mut futures: Vec<Pin<Box<MaybeDone<F>>>> = futures
        .into_iter()
        .map(|future| Box::pin(maybe_done(future)))
        .collect();
    std::future::poll_fn(|context| {
        let mut done = true;
        for future in &mut futures {
            done &= future.as_mut().poll(context).is_ready();
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    futures
        .iter_mut()
        .filter_map(|future| future.as_mut().take_output())
        .collect()
}

/// The running router.
pub struct AlertRouter {
    engine: Mutex<Engine>,
    auditor: Auditor,
    deliveries: DispatchSink,
}

fn load_state(store: &Store) -> Result<RouterState, memory::StoreError> {
    let state = store.state();
    Ok(RouterState {
        groups: state
            .scan_prefix::<GroupState>(GROUPS_PREFIX)?
            .into_iter()
            .map(|(_, group)| (group.key.clone(), group))
            .collect(),
        alerts: state
            .scan_prefix::<AlertRecord>(ALERTS_PREFIX)?
            .into_iter()
            .map(|(_, record)| (record.alert.key.clone(), record))
            .collect(),
        silences: state
            .scan_prefix::<Silence>(SILENCES_PREFIX)?
            .into_iter()
            .map(|(_, silence)| (silence.id.clone(), silence))
            .collect(),
        acks: state
            .scan_prefix::<Ack>(ACKS_PREFIX)?
            .into_iter()
            .map(|(_, ack)| (ack.key.clone(), ack))
            .collect(),
    })
}

impl AlertRouter {
    /// Builds the router from a validated `[alerting]` and the state a previous run left.
    pub fn open(
        config: &AlertingConfig,
        auditor: Auditor,
        deliveries: DispatchSink,
    ) -> Result<AlertRouter, RouterError> {
        let state = load_state(auditor.store())?;
        let engine = Engine::new(config, state).map_err(RouterError::InvalidInput)?;
        Ok(AlertRouter {
            engine: Mutex::new(engine),
            auditor,
            deliveries,
        })
    }

    /// Persists what changed, journals events and dispatches, then hands the dispatches on.
    async fn commit(
        &self,
        engine: &mut Engine,
        dispatches: Vec<Dispatch>,
    ) -> Result<(), RouterError> {
        let (changes, events) = engine.take_changes();
        let state = self.auditor.store().state();
        for (key, value) in changes {
            match value {
                Some(value) => state.put(&key, &value)?,
                None => state.delete(&key)?,
            }
        }
        for event in events {
            self.auditor
                .record("router", event.kind, &event.subject, &event.body)
                .await?;
        }
        // Each dispatch is kept until every target has it (a run killed before delivery sends
        // it on start), stored before its journal entry, whose flush makes both durable. The
        // entries go to the journal together, sharing one flush, and a dispatch goes to the
        // notifier only once its own entry is durable.
        let mut dispatches = dispatches;
        for dispatch in &mut dispatches {
            dispatch.id = next_dispatch_id();
            crate::notifier::pending::keep(state, dispatch)?;
        }
        let journaled = in_order(dispatches.iter().map(|dispatch| {
            let keys: Vec<&str> = dispatch
                .alerts
                .iter()
                .map(|alert| alert.key.as_str())
                .collect();
            let body = serde_json::json!({
                "kind": dispatch.kind,
                "receiver": dispatch.receiver,
                "status": dispatch.status,
                "group_labels": dispatch.group_labels,
                "alerts": keys,
                "silence": dispatch.silence.as_ref().map(|silence| &silence.id),
                "dispatch_id": dispatch.id,
            });
            let subject = dispatch.group_key.clone();
            async move {
                self.auditor
                    .record("router", "router.dispatched", &subject, &body)
                    .await
            }
        }))
        .await;
        let mut failed = None;
        for (dispatch, journaled) in dispatches.into_iter().zip(journaled) {
            match journaled {
                Ok(_) => {
                    if self.deliveries.send(dispatch).is_err() {
                        tracing::error!("notifier queue closed; dispatch kept in the journal only");
                    }
                }
                // Not sent: the pending record stays, so the next start delivers it.
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        match failed {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Sends a briefing to one receiver, kept and journaled like every dispatch (so a run
    /// killed before delivery sends it on the next start).
    pub async fn send_briefing(
        &self,
        receiver: &str,
        title: &str,
        text: &str,
        domain: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RouterError> {
        let key = format!("briefing/{domain}/{}", now.date_naive());
        let alert = Alert {
            key: key.clone(),
            rule: "briefing".to_owned(),
            status: AlertStatus::Resolved,
            severity: agents::Severity::Info,
            summary: title.to_owned(),
            labels: [("domain".to_owned(), domain.to_owned())]
                .into_iter()
                .collect(),
            evidence: serde_json::json!({ "text": text }),
            starts_at: now,
            at: now,
            observed_at: now,
        };
        let dispatch = Dispatch {
            id: 0,
            kind: DispatchKind::Briefing,
            receiver: receiver.to_owned(),
            group_key: key.clone(),
            group_labels: alert.labels.clone(),
            status: AlertStatus::Resolved,
            alerts: vec![alert],
            silence: None,
            changed: vec![key],
            at: now,
        };
        let mut engine = self.engine.lock().await;
        self.commit(&mut engine, vec![dispatch]).await
    }

    /// Routes one alert event.
    pub async fn ingest(&self, alert: Alert, now: DateTime<Utc>) -> Result<(), RouterError> {
        let mut engine = self.engine.lock().await;
        let dispatches = engine.ingest(alert, now);
        self.commit(&mut engine, dispatches).await
    }

    /// Routes alerts that came from outside (`POST /api/v2/alerts`), journaling each start
    /// and end as `sender` before routing; refreshes of a firing alert are not journaled.
    pub async fn receive(
        &self,
        alerts: Vec<Alert>,
        sender: &str,
        now: DateTime<Utc>,
    ) -> Result<ingest::Received, RouterError> {
        let mut received = ingest::Received::default();
        let mut engine = self.engine.lock().await;
        // What each alert is, as if the ones before it in the request had been routed already
        // (an alert may come twice in one request).
        let mut firing_now: std::collections::HashMap<String, bool> =
            std::collections::HashMap::new();
        let mut routed = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let firing = firing_now
                .get(&alert.key)
                .copied()
                .unwrap_or_else(|| engine.state().alerts.contains_key(&alert.key));
            let kind = match (alert.status, firing) {
                (AlertStatus::Firing, true) => {
                    received.refreshed += 1;
                    None
                }
                (AlertStatus::Firing, false) => {
                    received.firing += 1;
                    Some("alert.firing")
                }
                (AlertStatus::Resolved, true) => {
                    received.resolved += 1;
                    Some("alert.resolved")
                }
                (AlertStatus::Resolved, false) => {
                    received.ignored += 1;
                    continue;
                }
            };
            firing_now.insert(alert.key.clone(), alert.status == AlertStatus::Firing);
            routed.push((kind, alert));
        }
        // One flush for the request's starts and ends, all durable before any is routed.
        let journaled = in_order(routed.iter().filter_map(|(kind, alert)| {
            kind.map(|kind| self.auditor.record(sender, kind, &alert.key, alert))
        }))
        .await;
        for result in journaled {
            result?;
        }
        let mut dispatches = Vec::new();
        for (_, alert) in routed {
            dispatches.extend(engine.ingest(alert, now));
        }
        self.commit(&mut engine, dispatches).await?;
        Ok(received)
    }

    /// Lets time pass.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<(), RouterError> {
        let mut engine = self.engine.lock().await;
        let dispatches = engine.tick(now);
        self.commit(&mut engine, dispatches).await
    }

    /// Creates a silence as `user`.
    pub async fn add_silence(
        &self,
        request: NewSilence,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence, RouterError> {
        let comment = request.comment.trim().to_owned();
        if comment.is_empty() || comment.len() > 1024 {
            return Err(RouterError::InvalidInput(
                "comment: say why, in 1 to 1024 characters (whoever sees the silence reads it)"
                    .to_owned(),
            ));
        }
        for text in &request.matchers {
            Matcher::parse(text)
                .map_err(|message| RouterError::InvalidInput(format!("matchers: {message}")))?;
        }
        let starts_at = request.starts_at.unwrap_or(now);
        let ends_at = match (request.ends_at, &request.duration) {
            (Some(ends_at), None) => ends_at,
            (None, Some(text)) => {
                let span = agents::duration::parse(text)
                    .map_err(|message| RouterError::InvalidInput(format!("duration: {message}")))?;
                chrono::Duration::from_std(span)
                    .ok()
                    .and_then(|span| starts_at.checked_add_signed(span))
                    .ok_or_else(|| RouterError::InvalidInput("duration: too long".to_owned()))?
            }
            _ => {
                return Err(RouterError::InvalidInput(
                    "give either ends_at (RFC 3339) or duration (\"2h\")".to_owned(),
                ));
            }
        };
        if ends_at <= now {
            return Err(RouterError::InvalidInput(
                "the silence would end in the past".to_owned(),
            ));
        }
        let silence = Silence {
            id: format!(
                "s-{}-{:06x}",
                now.format("%Y%m%d%H%M%S"),
                rand::random::<u32>() & 0xff_ffff
            ),
            matchers: request.matchers,
            starts_at,
            ends_at,
            created_by: user.to_owned(),
            comment,
            created_at: now,
            expired_by: None,
            reminded: false,
            expiry_noted: false,
        };
        let mut engine = self.engine.lock().await;
        let silence = engine.add_silence(silence)?;
        self.auditor
            .record(
                &format!("operator:{user}"),
                "silence.created",
                &silence.id,
                &silence,
            )
            .await?;
        self.commit(&mut engine, Vec::new()).await?;
        Ok(silence)
    }

    /// Ends a silence now, as `user`.
    pub async fn expire_silence(
        &self,
        id: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence, RouterError> {
        let mut engine = self.engine.lock().await;
        let silence = engine.expire_silence(id, user, now)?;
        self.auditor
            .record(&format!("operator:{user}"), "silence.expired", id, &silence)
            .await?;
        // What the silence held back may go out now.
        let dispatches = engine.tick(now);
        self.commit(&mut engine, dispatches).await?;
        Ok(silence)
    }

    /// Every silence, newest first.
    pub async fn silences(&self) -> Vec<Silence> {
        let engine = self.engine.lock().await;
        let mut silences: Vec<Silence> = engine.state().silences.values().cloned().collect();
        silences.sort_by_key(|silence| std::cmp::Reverse(silence.created_at));
        silences
    }

    /// Acknowledges an alert key or a group key, as `user`: no more repeats or escalation
    /// until it fires anew.
    pub async fn ack(
        &self,
        key: &str,
        user: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Ack, RouterError> {
        let mut engine = self.engine.lock().await;
        let ack = engine.ack(key, user, comment, now)?;
        self.auditor
            .record(&format!("operator:{user}"), "ack.created", key, &ack)
            .await?;
        self.commit(&mut engine, Vec::new()).await?;
        Ok(ack)
    }

    /// What fires now, as the router sees it.
    pub async fn firing(&self, now: DateTime<Utc>) -> Vec<AlertView> {
        self.engine.lock().await.views(now)
    }

    /// `GET /v1/alerts`.
    pub async fn query(
        &self,
        query: &AlertQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertEntry>, RouterError> {
        let matchers = match &query.matchers {
            Some(text) => text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(Matcher::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| RouterError::InvalidInput(format!("matchers: {message}")))?,
            None => Vec::new(),
        };
        let status = match query.status.as_deref() {
            None | Some("") => None,
            Some("firing") => Some(AlertStatus::Firing),
            Some("resolved") => Some(AlertStatus::Resolved),
            Some(other) => {
                return Err(RouterError::InvalidInput(format!(
                    "status {other:?}: use firing or resolved"
                )));
            }
        };
        if status == Some(AlertStatus::Firing) && query.since.is_none() {
            return Ok(self
                .firing(now)
                .await
                .into_iter()
                .filter(|view| matcher::all_match(&matchers, &view.alert))
                .map(|view| AlertEntry {
                    seq: None,
                    state: view.state,
                    silenced_by: view.silenced_by,
                    acknowledged_by: view.acknowledged.map(|ack| ack.by),
                    receivers: view.receivers,
                    alert: view.alert,
                })
                .collect());
        }
        let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
        let kind = match status {
            Some(AlertStatus::Firing) => "alert.firing",
            Some(AlertStatus::Resolved) => "alert.resolved",
            None => "alert.*",
        };
        let store = self.auditor.store().clone();
        let journal_query = JournalQuery {
            since: query.since,
            kind: Some(kind.to_owned()),
            newest_first: true,
            ..Default::default()
        };
        let entries = tokio::task::spawn_blocking(move || store.journal().query(&journal_query))
            .await
            .map_err(|error| {
                RouterError::InvalidInput(format!("history query failed: {error}"))
            })??;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let seq = entry.seq;
                serde_json::from_value::<Alert>(entry.body)
                    .ok()
                    .map(|alert| (seq, alert))
            })
            .filter(|(_, alert)| matcher::all_match(&matchers, alert))
            .take(limit)
            .map(|(seq, alert)| AlertEntry {
                seq: Some(seq),
                state: alert.status.to_string(),
                silenced_by: Vec::new(),
                acknowledged_by: None,
                receivers: Vec::new(),
                alert,
            })
            .collect())
    }

    /// Reads the alert queue until `stop`, evaluating the clock every `interval`; then routes
    /// whatever is still queued and returns.
    pub async fn run(
        self: std::sync::Arc<Self>,
        mut queue: mpsc::UnboundedReceiver<Alert>,
        interval: std::time::Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        enum Next {
            Alert(Box<Alert>),
            Tick,
            Stop,
        }
        loop {
            let next = tokio::select! {
                biased;
                alert = queue.recv() => alert.map_or(Next::Stop, |alert| Next::Alert(Box::new(alert))),
                _ = ticker.tick() => Next::Tick,
                stopped = stop.wait_for(|stop| *stop) => {
                    // Either way (stop, or the daemon dropped the sender) we are done.
                    let _ = stopped.is_ok();
                    Next::Stop
                }
            };
            match next {
                Next::Alert(alert) => {
                    let key = alert.key.clone();
                    if let Err(error) = self.ingest(*alert, Utc::now()).await {
                        tracing::error!(%error, alert = %key, "alert router could not route an alert");
                    }
                }
                Next::Tick => {
                    if let Err(error) = self.tick(Utc::now()).await {
                        tracing::error!(%error, "alert router tick failed");
                    }
                }
                Next::Stop => break,
            }
        }
        while let Ok(alert) = queue.try_recv() {
            if let Err(error) = self.ingest(alert, Utc::now()).await {
                tracing::error!(%error, "alert router could not route an alert");
            }
        }
        tracing::debug!("alert router drained");
    }
}

#[cfg(test)]
mod tests;

//! Health of actors and data sources: state, last success, last error, restarts.
//!
//! The registry is shared (cheap clone) between agents, the supervisor and the HTTP server.
//! It is in-memory on purpose: it describes this process, and a restarted process starts
//! `starting` again.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Lifecycle state of an actor or a data source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Starting,
    Healthy,
    Degraded,
    Failed,
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
        })
    }
}

/// What the registry knows about one component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentHealth {
    pub name: String,
    pub state: HealthState,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success (sources) or crashes since the last healthy tick (actors).
    pub consecutive_failures: u32,
    /// Restarts by the supervisor (actors only).
    pub restarts: u64,
}

impl ComponentHealth {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: HealthState::Starting,
            last_success: None,
            last_error: None,
            last_error_at: None,
            consecutive_failures: 0,
            restarts: 0,
        }
    }
}

fn entry<'a>(
    map: &'a mut BTreeMap<String, ComponentHealth>,
    name: &str,
) -> &'a mut ComponentHealth {
    map.entry(name.to_owned())
        .or_insert_with(|| ComponentHealth::new(name))
}

#[derive(Default)]
struct Inner {
    actors: BTreeMap<String, ComponentHealth>,
    sources: BTreeMap<String, ComponentHealth>,
}

/// Shared registry; clone freely.
#[derive(Clone, Default)]
pub struct HealthRegistry {
    inner: Arc<RwLock<Inner>>,
}

/// A copy of the registry at one moment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HealthSnapshot {
    pub actors: Vec<ComponentHealth>,
    pub sources: Vec<ComponentHealth>,
}

impl HealthRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an actor in `starting` state (idempotent: keeps the restart count).
    pub fn actor_starting(&self, name: &str) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        entry.state = HealthState::Starting;
    }

    /// The actor finished a tick.
    pub fn actor_ticked(&self, name: &str, now: DateTime<Utc>) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        entry.state = HealthState::Healthy;
        entry.last_success = Some(now);
        entry.consecutive_failures = 0;
    }

    /// The actor is running (its loop started) even before its first tick completes.
    pub fn actor_running(&self, name: &str) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        if entry.state == HealthState::Starting {
            entry.state = HealthState::Healthy;
        }
    }

    /// The actor crashed (panic or fatal error) and will be restarted.
    pub fn actor_crashed(&self, name: &str, error: &str, now: DateTime<Utc>) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        entry.state = HealthState::Degraded;
        entry.last_error = Some(error.to_owned());
        entry.last_error_at = Some(now);
        entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
    }

    /// The supervisor restarted the actor.
    pub fn actor_restarted(&self, name: &str) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        entry.restarts = entry.restarts.saturating_add(1);
        entry.state = HealthState::Starting;
    }

    /// The supervisor gave up on the actor (crash loop).
    pub fn actor_failed(&self, name: &str, reason: &str, now: DateTime<Utc>) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.actors, name);
        entry.state = HealthState::Failed;
        entry.last_error = Some(reason.to_owned());
        entry.last_error_at = Some(now);
    }

    /// A data source answered.
    pub fn source_succeeded(&self, name: &str, now: DateTime<Utc>) {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.sources, name);
        entry.state = HealthState::Healthy;
        entry.last_success = Some(now);
        entry.consecutive_failures = 0;
    }

    /// A data source failed after its retries; returns the consecutive failure count.
    pub fn source_failed(&self, name: &str, error: &str, now: DateTime<Utc>) -> u32 {
        let mut inner = self.inner.write();
        let entry = entry(&mut inner.sources, name);
        entry.state = HealthState::Degraded;
        entry.last_error = Some(error.to_owned());
        entry.last_error_at = Some(now);
        entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
        entry.consecutive_failures
    }

    pub fn actor(&self, name: &str) -> Option<ComponentHealth> {
        self.inner.read().actors.get(name).cloned()
    }

    pub fn source(&self, name: &str) -> Option<ComponentHealth> {
        self.inner.read().sources.get(name).cloned()
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let inner = self.inner.read();
        HealthSnapshot {
            actors: inner.actors.values().cloned().collect(),
            sources: inner.sources.values().cloned().collect(),
        }
    }

    /// Ready when at least one actor is registered and none is still `starting`.
    pub fn all_actors_started(&self) -> bool {
        let inner = self.inner.read();
        !inner.actors.is_empty()
            && inner
                .actors
                .values()
                .all(|actor| actor.state != HealthState::Starting)
    }
}

#[cfg(test)]
mod tests;

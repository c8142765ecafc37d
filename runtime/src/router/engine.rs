//! The router's state machine: alert events and the clock in, dispatches out. No IO, no
//! clock of its own: every call names `now`, so tests drive it with explicit times and a
//! restart rebuilds it from the persisted state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use agents::{Alert, AlertStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::matcher::{Matcher, all_match, label};
use super::schedule::WeeklyWindow;
use crate::config::{AlertingConfig, DEFAULT_RECEIVER, RouteConfig};

/// State-store prefixes of the router's persisted state.
pub const GROUPS_PREFIX: &str = "router/groups/";
pub const ALERTS_PREFIX: &str = "router/alerts/";
pub const SILENCES_PREFIX: &str = "router/silences/";
pub const ACKS_PREFIX: &str = "router/acks/";

/// Why a notification goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchKind {
    /// New alerts or changed states in a group (firing, or the recovery notice).
    Notification,
    /// The group still fires and nobody acknowledged it: sent again after repeat_interval.
    Repeat,
    /// Nobody acknowledged within escalate_after: sent to the next receiver.
    Escalation,
    /// A silence is about to expire.
    SilenceExpiring,
    /// A domain agent's daily briefing (its one alert carries the text in `evidence.text`).
    Briefing,
}

impl DispatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchKind::Notification => "notification",
            DispatchKind::Repeat => "repeat",
            DispatchKind::Escalation => "escalation",
            DispatchKind::SilenceExpiring => "silence_expiring",
            DispatchKind::Briefing => "briefing",
        }
    }
}

/// One notification for one receiver: what the notifier delivers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Set by the router when it keeps the dispatch for delivery (0 before; journaled as
    /// `dispatch_id` in `router.dispatched`); the notifier's pending record is keyed by it.
    #[serde(default)]
    pub id: u64,
    pub kind: DispatchKind,
    pub receiver: String,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// Firing when any alert in it fires.
    pub status: AlertStatus,
    /// Firing alerts first, then the resolved ones, each sorted by key.
    pub alerts: Vec<Alert>,
    /// The silence of a `silence_expiring` dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<Silence>,
    /// Keys whose news this is (new, or resolved); the rest of `alerts` was sent before.
    #[serde(default)]
    pub changed: Vec<String>,
    pub at: DateTime<Utc>,
}

/// A silence: alerts matching every matcher between `starts_at` and `ends_at` are not sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    /// Who ended it early, if anyone.
    #[serde(default)]
    pub expired_by: Option<String>,
    /// The expiry reminder has gone out.
    #[serde(default)]
    pub reminded: bool,
    /// The expiry has been journaled.
    #[serde(default)]
    pub expiry_noted: bool,
}

impl Silence {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.starts_at {
            "pending"
        } else if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }
}

/// An acknowledgement of an alert (by key) or of a whole group (by group key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub key: String,
    pub by: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

/// An alert inside a group, with what its receiver was last told about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupedAlert {
    pub alert: Alert,
    /// The status last sent to the group's receiver (None: never sent).
    pub sent: Option<AlertStatus>,
}

/// A group: the alerts of one route with the same `group_by` values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub key: String,
    pub route: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    pub alerts: BTreeMap<String, GroupedAlert>,
    pub created_at: DateTime<Utc>,
    pub last_flush: Option<DateTime<Utc>>,
}

/// A firing alert the router knows, with its escalation progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub alert: Alert,
    /// When a receiver was first told (escalation counts from here).
    pub first_sent_at: Option<DateTime<Utc>>,
    /// Indexes of `[[alerting.escalation]]` entries already applied.
    #[serde(default)]
    pub escalated: BTreeSet<usize>,
    /// Receivers that got it by escalation (they get the recovery notice too).
    #[serde(default)]
    pub escalated_to: BTreeSet<String>,
    /// Every receiver that was told it fires.
    #[serde(default)]
    pub receivers: BTreeSet<String>,
}

/// How the router sees one alert now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub alert: Alert,
    /// `active`, `silenced`, `inhibited`, `maintenance` or `acknowledged`.
    pub state: String,
    pub silenced_by: Vec<String>,
    pub maintenance: Option<String>,
    pub acknowledged: Option<Ack>,
    pub groups: Vec<String>,
    pub receivers: Vec<String>,
    pub first_sent_at: Option<DateTime<Utc>>,
}

/// Something that changed without a dispatch, for the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineEvent {
    pub kind: &'static str,
    pub subject: String,
    pub body: serde_json::Value,
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
}

#[derive(Clone, Debug)]
struct Route {
    id: String,
    receiver: String,
    matchers: Vec<Matcher>,
    continue_matching: bool,
    group_by: Vec<String>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    children: Vec<Route>,
}

impl Route {
    fn build(config: &RouteConfig, parent: Option<&Route>, id: String) -> Result<Route, String> {
        let inherited = |own: Option<Duration>, parent: Option<Duration>, fallback: Duration| {
            own.or(parent).unwrap_or(fallback)
        };
        let mut route = Route {
            receiver: config
                .receiver
                .clone()
                .or_else(|| parent.map(|p| p.receiver.clone()))
                .unwrap_or_else(|| DEFAULT_RECEIVER.to_owned()),
            matchers: Matcher::parse_all(&config.matchers)?,
            continue_matching: config.continue_matching,
            group_by: config
                .group_by
                .clone()
                .or_else(|| parent.map(|p| p.group_by.clone()))
                .unwrap_or_else(|| vec!["key".to_owned()]),
            group_wait: inherited(
                config.group_wait,
                parent.map(|p| p.group_wait),
                Duration::ZERO,
            ),
            group_interval: inherited(
                config.group_interval,
                parent.map(|p| p.group_interval),
                Duration::ZERO,
            ),
            repeat_interval: inherited(
                config.repeat_interval,
                parent.map(|p| p.repeat_interval),
                Duration::from_secs(4 * 3600),
            ),
            children: Vec::new(),
            id,
        };
        let mut children = Vec::new();
        for (index, child) in config.routes.iter().enumerate() {
            children.push(Route::build(
                child,
                Some(&route),
                format!("{}.{index}", route.id),
            )?);
        }
        route.children = children;
        Ok(route)
    }

    /// The routes that take `alert`, Alertmanager's way.
    fn matching<'a>(&'a self, alert: &Alert, found: &mut Vec<&'a Route>) {
        let before = found.len();
        for child in &self.children {
            if all_match(&child.matchers, alert) {
                child.matching(alert, found);
                if !child.continue_matching {
                    break;
                }
            }
        }
        if found.len() == before {
            found.push(self);
        }
    }

    fn find(&self, id: &str) -> Option<&Route> {
        if self.id == id {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(id))
    }
}

#[derive(Clone, Debug)]
struct Inhibition {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

#[derive(Clone, Debug)]
struct Escalation {
    matchers: Vec<Matcher>,
    after: Duration,
    receiver: String,
}

#[derive(Clone, Debug)]
struct Window {
    name: String,
    schedule: WeeklyWindow,
    matchers: Vec<Matcher>,
}

/// The persisted state, as loaded at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouterState {
    pub groups: BTreeMap<String, GroupState>,
    pub alerts: BTreeMap<String, AlertRecord>,
    pub silences: BTreeMap<String, Silence>,
    pub acks: BTreeMap<String, Ack>,
}

/// The router's state machine.
pub struct Engine {
    root: Route,
    inhibitions: Vec<Inhibition>,
    escalations: Vec<Escalation>,
    windows: Vec<Window>,
    silence_reminder_before: Duration,
    state: RouterState,
    /// Each silence's matchers, compiled once (regexes are not cheap to build).
    silence_matchers: BTreeMap<String, Vec<Matcher>>,
    /// The groups holding each alert key: `state.groups` seen from the alerts, kept in step
    /// with it here and never persisted, so an alert's groups are found without walking them
    /// all (one per alert with `group_by` a unique label).
    memberships: HashMap<String, BTreeSet<String>>,
    /// State-store keys changed since the last `take_changes`.
    dirty: BTreeSet<String>,
    events: Vec<EngineEvent>,
}

/// `group_key` holds `alert_key` now.
fn hold(memberships: &mut HashMap<String, BTreeSet<String>>, alert_key: &str, group_key: &str) {
    memberships
        .entry(alert_key.to_owned())
        .or_default()
        .insert(group_key.to_owned());
}

/// `group_key` no longer holds `alert_key`.
fn release(memberships: &mut HashMap<String, BTreeSet<String>>, alert_key: &str, group_key: &str) {
    if let Some(groups) = memberships.get_mut(alert_key) {
        groups.remove(group_key);
        if groups.is_empty() {
            memberships.remove(alert_key);
        }
    }
}

fn memberships_of(groups: &BTreeMap<String, GroupState>) -> HashMap<String, BTreeSet<String>> {
    let mut memberships = HashMap::new();
    for (group_key, group) in groups {
        for alert_key in group.alerts.keys() {
            hold(&mut memberships, alert_key, group_key);
        }
    }
    memberships
}

fn plus(time: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| time.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Engine {
    /// Builds the engine from a validated `[alerting]` and the persisted state.
    pub fn new(config: &AlertingConfig, state: RouterState) -> Result<Engine, String> {
        let root = Route::build(&config.route, None, "0".to_owned())?;
        let inhibitions = config
            .inhibit_rules
            .iter()
            .map(|rule| {
                Ok(Inhibition {
                    source: Matcher::parse_all(&rule.source_matchers)?,
                    target: Matcher::parse_all(&rule.target_matchers)?,
                    equal: rule.equal.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        let escalations = config
            .escalation
            .iter()
            .map(|step| {
                Ok(Escalation {
                    matchers: Matcher::parse_all(&step.matchers)?,
                    after: step.escalate_after,
                    receiver: step.receiver.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        let windows = config
            .maintenance_windows
            .iter()
            .map(|window| {
                Ok(Window {
                    name: window.name.clone(),
                    schedule: WeeklyWindow::parse(&window.schedule)?,
                    matchers: Matcher::parse_all(&window.matchers)?,
                })
            })
            .collect::<Result<_, String>>()?;
        // A stored silence whose matchers no longer parse matches nothing (they were checked
        // when it was made; only a change of matcher syntax could do this).
        let silence_matchers = state
            .silences
            .values()
            .map(|silence| {
                (
                    silence.id.clone(),
                    Matcher::parse_all(&silence.matchers).unwrap_or_default(),
                )
            })
            .filter(|(_, matchers)| !matchers.is_empty())
            .collect();
        Ok(Engine {
            root,
            inhibitions,
            escalations,
            windows,
            silence_reminder_before: config.silence_reminder_before,
            memberships: memberships_of(&state.groups),
            state,
            silence_matchers,
            dirty: BTreeSet::new(),
            events: Vec::new(),
        })
    }

    pub fn state(&self) -> &RouterState {
        &self.state
    }

    /// The membership index agrees with the groups.
    #[cfg(test)]
    pub fn memberships_agree(&self) -> bool {
        self.memberships == memberships_of(&self.state.groups)
    }

    /// Changed state-store keys with their new value (None: delete), and the events to journal.
    pub fn take_changes(&mut self) -> (Vec<(String, Option<serde_json::Value>)>, Vec<EngineEvent>) {
        let dirty = std::mem::take(&mut self.dirty);
        let changes = dirty
            .into_iter()
            .map(|key| {
                let value = if let Some(id) = key.strip_prefix(GROUPS_PREFIX) {
                    self.state.groups.get(id).map(serde_json::to_value)
                } else if let Some(id) = key.strip_prefix(ALERTS_PREFIX) {
                    self.state.alerts.get(id).map(serde_json::to_value)
                } else if let Some(id) = key.strip_prefix(SILENCES_PREFIX) {
                    self.state.silences.get(id).map(serde_json::to_value)
                } else if let Some(id) = key.strip_prefix(ACKS_PREFIX) {
                    self.state.acks.get(id).map(serde_json::to_value)
                } else {
                    None
                };
                (key, value.and_then(Result::ok))
            })
            .collect();
        (changes, std::mem::take(&mut self.events))
    }

    /// Ids of the silences muting `alert` at `now`.
    pub fn silenced_by(&self, alert: &Alert, now: DateTime<Utc>) -> Vec<String> {
        self.state
            .silences
            .values()
            .filter(|silence| silence.active(now))
            .filter(|silence| {
                self.silence_matchers
                    .get(&silence.id)
                    .is_some_and(|matchers| all_match(matchers, alert))
            })
            .map(|silence| silence.id.clone())
            .collect()
    }

    /// The maintenance window muting `alert` at `now`.
    pub fn in_maintenance(&self, alert: &Alert, now: DateTime<Utc>) -> Option<String> {
        self.windows
            .iter()
            .find(|window| all_match(&window.matchers, alert) && window.schedule.contains(now))
            .map(|window| window.name.clone())
    }

    /// Another firing alert inhibits `alert`.
    pub fn inhibited(&self, alert: &Alert) -> bool {
        self.inhibitions.iter().any(|rule| {
            all_match(&rule.target, alert)
                && self.state.alerts.values().any(|source| {
                    source.alert.key != alert.key
                        && source.alert.status == AlertStatus::Firing
                        && all_match(&rule.source, &source.alert)
                        && rule
                            .equal
                            .iter()
                            .all(|name| label(&source.alert, name) == label(alert, name))
                })
        })
    }

    fn muted(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        !self.silenced_by(alert, now).is_empty()
            || self.in_maintenance(alert, now).is_some()
            || self.inhibited(alert)
    }

    fn acked(&self, alert_key: &str, group_key: Option<&str>) -> bool {
        // Through the acknowledgements (few), not the groups (one per alert, say): the clock
        // asks this of every firing alert.
        self.state.acks.contains_key(alert_key)
            || group_key.is_some_and(|group| self.state.acks.contains_key(group))
            || self.state.acks.keys().any(|acked| {
                self.state
                    .groups
                    .get(acked)
                    .is_some_and(|group| group.alerts.contains_key(alert_key))
            })
    }

    /// Takes one alert event.
    pub fn ingest(&mut self, alert: Alert, now: DateTime<Utc>) -> Vec<Dispatch> {
        let key = alert.key.clone();
        let mut dispatches = Vec::new();
        match alert.status {
            AlertStatus::Firing => {
                let known = self.state.alerts.contains_key(&key);
                if !known && self.state.acks.remove(&key).is_some() {
                    // A new firing of an acknowledged condition needs a person again.
                    self.dirty.insert(format!("{ACKS_PREFIX}{key}"));
                    self.events.push(EngineEvent {
                        kind: "ack.cleared",
                        subject: key.clone(),
                        body: serde_json::json!({ "reason": "fired again" }),
                    });
                }
                let record = self
                    .state
                    .alerts
                    .entry(key.clone())
                    .or_insert_with(|| AlertRecord {
                        alert: alert.clone(),
                        first_sent_at: None,
                        escalated: BTreeSet::new(),
                        escalated_to: BTreeSet::new(),
                        receivers: BTreeSet::new(),
                    });
                record.alert = alert.clone();
                self.dirty.insert(format!("{ALERTS_PREFIX}{key}"));
            }
            AlertStatus::Resolved => {
                if let Some(record) = self.state.alerts.remove(&key) {
                    self.dirty.insert(format!("{ALERTS_PREFIX}{key}"));
                    for receiver in &record.escalated_to {
                        dispatches.push(Dispatch {
                            id: 0,
                            kind: DispatchKind::Escalation,
                            receiver: receiver.clone(),
                            group_key: format!("escalation:{{key={key}}}"),
                            group_labels: BTreeMap::from([("key".to_owned(), key.clone())]),
                            status: AlertStatus::Resolved,
                            alerts: vec![alert.clone()],
                            silence: None,
                            changed: vec![key.clone()],
                            at: now,
                        });
                    }
                }
            }
        }
        let mut routes = Vec::new();
        self.root.matching(&alert, &mut routes);
        let placements: Vec<(String, String, String, BTreeMap<String, String>)> = routes
            .iter()
            .map(|route| {
                let labels: BTreeMap<String, String> = route
                    .group_by
                    .iter()
                    .map(|name| (name.clone(), label(&alert, name)))
                    .collect();
                let rendered: Vec<String> = labels
                    .iter()
                    .map(|(name, value)| format!("{name}={value:?}"))
                    .collect();
                (
                    format!("{}:{{{}}}", route.id, rendered.join(",")),
                    route.id.clone(),
                    route.receiver.clone(),
                    labels,
                )
            })
            .collect();
        let mut touched = Vec::new();
        // Groups that hold this key but where its labels no longer route it (its severity or
        // a label changed): a resolution still reaches them; a firing moves to the new group.
        let placed: BTreeSet<&String> = placements.iter().map(|(key, ..)| key).collect();
        let elsewhere: Vec<String> = self
            .memberships
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|group_key| !placed.contains(group_key))
            .cloned()
            .collect();
        for group_key in elsewhere {
            let Some(group) = self.state.groups.get_mut(&group_key) else {
                continue;
            };
            match alert.status {
                AlertStatus::Resolved => {
                    if let Some(grouped) = group.alerts.get_mut(&key) {
                        grouped.alert = alert.clone();
                    }
                    touched.push(group_key.clone());
                }
                AlertStatus::Firing => {
                    group.alerts.remove(&key);
                    release(&mut self.memberships, &key, &group_key);
                    if group.alerts.is_empty() {
                        self.state.groups.remove(&group_key);
                    }
                }
            }
            self.dirty.insert(format!("{GROUPS_PREFIX}{group_key}"));
        }
        for (group_key, route, receiver, labels) in placements {
            let existing = self.state.groups.contains_key(&group_key);
            if alert.status == AlertStatus::Resolved && !existing {
                continue;
            }
            let group = self
                .state
                .groups
                .entry(group_key.clone())
                .or_insert_with(|| GroupState {
                    key: group_key.clone(),
                    route,
                    receiver,
                    labels,
                    alerts: BTreeMap::new(),
                    created_at: now,
                    last_flush: None,
                });
            match group.alerts.get_mut(&key) {
                Some(grouped) => grouped.alert = alert.clone(),
                None if alert.status == AlertStatus::Firing => {
                    group.alerts.insert(
                        key.clone(),
                        GroupedAlert {
                            alert: alert.clone(),
                            sent: None,
                        },
                    );
                    hold(&mut self.memberships, &key, &group_key);
                }
                None => continue,
            }
            self.dirty.insert(format!("{GROUPS_PREFIX}{group_key}"));
            touched.push(group_key);
        }
        for group_key in touched {
            dispatches.extend(self.evaluate_group(&group_key, now));
        }
        dispatches
    }

    /// Lets time pass: waits, repeats, escalations, silence reminders and expiries.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Dispatch> {
        let mut dispatches = Vec::new();
        let reminder = chrono::Duration::from_std(self.silence_reminder_before)
            .unwrap_or(chrono::Duration::zero());
        let root_receiver = self.root.receiver.clone();
        let mut expired = Vec::new();
        for silence in self.state.silences.values_mut() {
            if silence.active(now) && !silence.reminded && silence.ends_at - now <= reminder {
                silence.reminded = true;
                self.dirty
                    .insert(format!("{SILENCES_PREFIX}{}", silence.id));
                dispatches.push(Dispatch {
                    id: 0,
                    kind: DispatchKind::SilenceExpiring,
                    receiver: root_receiver.clone(),
                    group_key: format!("silence:{}", silence.id),
                    group_labels: BTreeMap::new(),
                    status: AlertStatus::Firing,
                    alerts: Vec::new(),
                    silence: Some(silence.clone()),
                    changed: Vec::new(),
                    at: now,
                });
            }
            if now >= silence.ends_at && !silence.expiry_noted {
                silence.expiry_noted = true;
                self.dirty
                    .insert(format!("{SILENCES_PREFIX}{}", silence.id));
                self.events.push(EngineEvent {
                    kind: "silence.expired",
                    subject: silence.id.clone(),
                    body: serde_json::json!({ "ends_at": silence.ends_at, "matchers": silence.matchers }),
                });
            }
            // Expired silences stay listed for a week, then go.
            if now - silence.ends_at > chrono::Duration::days(7) {
                expired.push(silence.id.clone());
            }
        }
        for id in expired {
            self.state.silences.remove(&id);
            self.silence_matchers.remove(&id);
            self.dirty.insert(format!("{SILENCES_PREFIX}{id}"));
        }
        let keys: Vec<String> = self.state.groups.keys().cloned().collect();
        for key in keys {
            dispatches.extend(self.evaluate_group(&key, now));
        }
        dispatches.extend(self.escalate(now));
        dispatches
    }

    fn escalate(&mut self, now: DateTime<Utc>) -> Vec<Dispatch> {
        if self.escalations.is_empty() {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (key, record) in &self.state.alerts {
            let Some(first) = record.first_sent_at else {
                continue;
            };
            if self.acked(key, None) || self.muted(&record.alert, now) {
                continue;
            }
            for (index, step) in self.escalations.iter().enumerate() {
                if !record.escalated.contains(&index)
                    && all_match(&step.matchers, &record.alert)
                    && now >= plus(first, step.after)
                {
                    due.push((key.clone(), index, step.receiver.clone()));
                }
            }
        }
        let mut dispatches = Vec::new();
        for (key, index, receiver) in due {
            let Some(record) = self.state.alerts.get_mut(&key) else {
                continue;
            };
            record.escalated.insert(index);
            record.escalated_to.insert(receiver.clone());
            record.receivers.insert(receiver.clone());
            self.dirty.insert(format!("{ALERTS_PREFIX}{key}"));
            dispatches.push(Dispatch {
                id: 0,
                kind: DispatchKind::Escalation,
                receiver,
                group_key: format!("escalation:{{key={key}}}"),
                group_labels: BTreeMap::from([("key".to_owned(), key.clone())]),
                status: AlertStatus::Firing,
                alerts: vec![record.alert.clone()],
                silence: None,
                changed: vec![key.clone()],
                at: now,
            });
        }
        dispatches
    }

    fn evaluate_group(&mut self, group_key: &str, now: DateTime<Utc>) -> Option<Dispatch> {
        let group = self.state.groups.get(group_key)?;
        let route = self.root.find(&group.route).unwrap_or(&self.root);
        let (group_wait, group_interval, repeat_interval) = (
            route.group_wait,
            route.group_interval,
            route.repeat_interval,
        );
        let mut changed = false;
        let mut news = Vec::new();
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        let mut dropped = Vec::new();
        for (key, grouped) in &group.alerts {
            match (grouped.alert.status, grouped.sent) {
                (AlertStatus::Firing, sent) => {
                    if self.muted(&grouped.alert, now) {
                        continue;
                    }
                    if sent != Some(AlertStatus::Firing) {
                        changed = true;
                        news.push(key.clone());
                    }
                    firing.push(grouped.alert.clone());
                }
                // The recovery goes to the receiver that was told it fired, muted or not.
                (AlertStatus::Resolved, Some(AlertStatus::Firing)) => {
                    changed = true;
                    news.push(key.clone());
                    resolved.push(grouped.alert.clone());
                }
                (AlertStatus::Resolved, _) => dropped.push(key.clone()),
            }
        }
        let allowed = match group.last_flush {
            None => now >= plus(group.created_at, group_wait),
            Some(last) => now >= plus(last, group_interval),
        };
        let repeat = !repeat_interval.is_zero()
            && group
                .last_flush
                .is_some_and(|last| now >= plus(last, repeat_interval))
            && firing.iter().any(|alert| {
                !self.acked(&alert.key, Some(group_key))
                    && group
                        .alerts
                        .get(&alert.key)
                        .is_some_and(|grouped| grouped.sent == Some(AlertStatus::Firing))
            });
        let send = (changed && allowed) || repeat;
        let kind = if changed && allowed {
            DispatchKind::Notification
        } else {
            DispatchKind::Repeat
        };
        let receiver = group.receiver.clone();
        let labels = group.labels.clone();
        let group = self.state.groups.get_mut(group_key)?;
        for key in &dropped {
            group.alerts.remove(key);
            release(&mut self.memberships, key, group_key);
        }
        let mut dispatch = None;
        if send {
            for alert in &firing {
                if let Some(grouped) = group.alerts.get_mut(&alert.key) {
                    grouped.sent = Some(AlertStatus::Firing);
                }
            }
            for alert in &resolved {
                group.alerts.remove(&alert.key);
                release(&mut self.memberships, &alert.key, group_key);
            }
            group.last_flush = Some(now);
            let status = if firing.is_empty() {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            };
            let mut alerts = firing.clone();
            alerts.extend(resolved);
            dispatch = Some(Dispatch {
                id: 0,
                kind,
                receiver: receiver.clone(),
                group_key: group_key.to_owned(),
                group_labels: labels,
                status,
                alerts,
                silence: None,
                changed: if kind == DispatchKind::Notification {
                    news
                } else {
                    Vec::new()
                },
                at: now,
            });
        }
        let empty = group.alerts.is_empty();
        if send || !dropped.is_empty() {
            self.dirty.insert(format!("{GROUPS_PREFIX}{group_key}"));
        }
        if empty {
            self.state.groups.remove(group_key);
            self.dirty.insert(format!("{GROUPS_PREFIX}{group_key}"));
            if self.state.acks.remove(group_key).is_some() {
                self.dirty.insert(format!("{ACKS_PREFIX}{group_key}"));
            }
        }
        if send {
            for alert in &firing {
                if let Some(record) = self.state.alerts.get_mut(&alert.key) {
                    record.first_sent_at.get_or_insert(now);
                    record.receivers.insert(receiver.clone());
                    self.dirty.insert(format!("{ALERTS_PREFIX}{}", alert.key));
                }
            }
        }
        dispatch
    }

    /// Adds a silence; `id` is chosen by the caller (unique).
    pub fn add_silence(&mut self, silence: Silence) -> Result<Silence, EngineError> {
        if silence.matchers.is_empty() {
            return Err(EngineError::Invalid(
                "a silence needs at least one matcher (e.g. rule=low_efficiency)".to_owned(),
            ));
        }
        let matchers = Matcher::parse_all(&silence.matchers).map_err(EngineError::Invalid)?;
        if silence.ends_at <= silence.starts_at {
            return Err(EngineError::Invalid(
                "ends_at must be after starts_at".to_owned(),
            ));
        }
        if self.state.silences.contains_key(&silence.id) {
            return Err(EngineError::Invalid(format!(
                "a silence {} exists already",
                silence.id
            )));
        }
        self.dirty
            .insert(format!("{SILENCES_PREFIX}{}", silence.id));
        self.silence_matchers.insert(silence.id.clone(), matchers);
        self.state
            .silences
            .insert(silence.id.clone(), silence.clone());
        Ok(silence)
    }

    /// Ends a silence now.
    pub fn expire_silence(
        &mut self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence, EngineError> {
        let silence = self
            .state
            .silences
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(format!("no silence {id}")))?;
        if now >= silence.ends_at {
            return Err(EngineError::Invalid(format!(
                "silence {id} already expired at {}",
                silence.ends_at.to_rfc3339()
            )));
        }
        silence.ends_at = now;
        silence.expired_by = Some(by.to_owned());
        silence.expiry_noted = true;
        self.dirty.insert(format!("{SILENCES_PREFIX}{id}"));
        Ok(silence.clone())
    }

    /// Acknowledges a firing alert (by key) or a group (by group key).
    pub fn ack(
        &mut self,
        key: &str,
        by: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Ack, EngineError> {
        if !self.state.alerts.contains_key(key) && !self.state.groups.contains_key(key) {
            return Err(EngineError::NotFound(format!(
                "no firing alert or group {key:?}; `command-center alerts --status firing` lists them"
            )));
        }
        let ack = Ack {
            key: key.to_owned(),
            by: by.to_owned(),
            comment: comment.to_owned(),
            at: now,
        };
        self.state.acks.insert(key.to_owned(), ack.clone());
        self.dirty.insert(format!("{ACKS_PREFIX}{key}"));
        Ok(ack)
    }

    /// Every firing alert as the router sees it at `now`.
    pub fn views(&self, now: DateTime<Utc>) -> Vec<AlertView> {
        self.state
            .alerts
            .values()
            .map(|record| {
                let alert = &record.alert;
                let silenced_by = self.silenced_by(alert, now);
                let maintenance = self.in_maintenance(alert, now);
                let groups: Vec<String> = self
                    .memberships
                    .get(&alert.key)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let acknowledged = self.state.acks.get(&alert.key).cloned().or_else(|| {
                    groups
                        .iter()
                        .find_map(|group| self.state.acks.get(group).cloned())
                });
                let state = if !silenced_by.is_empty() {
                    "silenced"
                } else if maintenance.is_some() {
                    "maintenance"
                } else if self.inhibited(alert) {
                    "inhibited"
                } else if acknowledged.is_some() {
                    "acknowledged"
                } else {
                    "active"
                };
                AlertView {
                    alert: alert.clone(),
                    state: state.to_owned(),
                    silenced_by,
                    maintenance,
                    acknowledged,
                    groups,
                    receivers: record.receivers.iter().cloned().collect(),
                    first_sent_at: record.first_sent_at,
                }
            })
            .collect()
    }
}

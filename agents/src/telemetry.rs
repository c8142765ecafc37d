//! Prometheus metric families shared by agents, the supervisor, the notifier and the journal
//! writer. The runtime creates one [`Telemetry`], registers it, and serves it on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    pub actor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceErrorLabels {
    pub source: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub rule: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub receiver: String,
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~33 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Every metric family the daemon exports. Clones share the same counters.
#[derive(Clone)]
pub struct Telemetry {
    pub actor_restarts: Family<ActorLabels, Counter>,
    pub actor_up: Family<ActorLabels, Gauge>,
    pub ticks: Family<ActorLabels, Counter>,
    pub source_requests: Family<SourceLabels, Counter>,
    pub source_errors: Family<SourceErrorLabels, Counter>,
    pub source_latency: Family<SourceLabels, Histogram>,
    pub alerts: Family<AlertLabels, Counter>,
    pub notifications: Family<NotificationLabels, Counter>,
    pub journal_appends: Counter,
    pub journal_append_latency: Histogram,
    /// From a sample's observation time to its alert being delivered to a receiver.
    pub alert_delivery_latency: Histogram,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            actor_restarts: Family::default(),
            actor_up: Family::default(),
            ticks: Family::default(),
            source_requests: Family::default(),
            source_errors: Family::default(),
            source_latency: Family::new_with_constructor(latency_histogram),
            alerts: Family::default(),
            notifications: Family::default(),
            journal_appends: Counter::default(),
            journal_append_latency: latency_histogram(),
            alert_delivery_latency: latency_histogram(),
        }
    }
}

impl Telemetry {
    /// Registers every family under the `command_center` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "actor_restarts",
            "Restarts of supervised actors after a panic or fatal error",
            self.actor_restarts.clone(),
        );
        registry.register(
            "actor_up",
            "1 while the actor runs, 0 when stopped or failed",
            self.actor_up.clone(),
        );
        registry.register("agent_ticks", "Completed agent ticks", self.ticks.clone());
        registry.register(
            "source_requests",
            "Requests to outside data sources (after retries)",
            self.source_requests.clone(),
        );
        registry.register(
            "source_errors",
            "Failed requests to outside data sources, by error kind",
            self.source_errors.clone(),
        );
        registry.register(
            "source_request_duration_seconds",
            "Latency of data source requests including retries",
            self.source_latency.clone(),
        );
        registry.register(
            "alerts",
            "Alert events by rule and status",
            self.alerts.clone(),
        );
        registry.register(
            "notifications",
            "Notifications by receiver and outcome",
            self.notifications.clone(),
        );
        registry.register(
            "journal_appends",
            "Durable journal appends",
            self.journal_appends.clone(),
        );
        registry.register(
            "journal_append_duration_seconds",
            "Time from journal append request to durable acknowledgement",
            self.journal_append_latency.clone(),
        );
        registry.register(
            "alert_delivery_latency_seconds",
            "Time from a sample being observed to its alert reaching a receiver",
            self.alert_delivery_latency.clone(),
        );
    }

    pub fn actor(&self, actor: &str) -> ActorLabels {
        ActorLabels {
            actor: actor.to_owned(),
        }
    }
}

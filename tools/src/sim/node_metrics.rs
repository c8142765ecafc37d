//! `GET /metrics/{validator}`: a node_exporter-style page plus mytonctrl's validator gauges
//! for each scenario validator's node, from `[validators.node]` (defaults when absent).
//! The node's validation efficiency is not on this page: toncenter's QoS scoreboard
//! (`sim::elections_api`) serves it.
//!
//! One page carries both, for simplicity: in production node_exporter serves the host
//! metrics and mytonctrl pushes the `validator_*` gauges to a pushgateway.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::scenario::SimValidator;
use super::world::World;

/// A validator's node as its metrics (and toncenter's QoS scoreboard) show it. TOML, under a
/// `[[validators]]` entry: `[validators.node] disk_used_percent = 62.0 out_of_sync_at = "10m"
/// in_sync_at = "20m" low_efficiency_at = "30m"`.
///
/// Block counters (`validator_blocks_{validated,collated}_{master,shard}_ok`) start at 0 and
/// count the seconds the node was in sync and up: one validated block per 5 sim seconds, one
/// collated block per 60, the same for master and shard; they stand still while the node is
/// out of sync or down.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimNode {
    /// Size of the `/var/ton-work` file system.
    #[serde(default = "default_disk_size_gb")]
    pub disk_size_gb: f64,
    /// Used share at offset 0.
    #[serde(default = "default_disk_used_percent")]
    pub disk_used_percent: f64,
    /// Growth of the used share per sim day (DB growth); capped at 100%.
    #[serde(default)]
    pub disk_growth_percent_per_day: f64,
    /// Masterchain lag while in sync.
    #[serde(default = "default_sync_lag_seconds")]
    pub sync_lag_seconds: f64,
    /// From this offset the node stops syncing: its lag grows by one second per sim second.
    #[serde(default, with = "offset_option")]
    pub out_of_sync_at: Option<Duration>,
    /// From this offset a node that fell out of sync (`out_of_sync_at`) is back in sync: the
    /// lag is `sync_lag_seconds` again. Must be after `out_of_sync_at`.
    #[serde(default, with = "offset_option")]
    pub in_sync_at: Option<Duration>,
    /// From this offset the validator service is down (`validator_console_up 0`).
    #[serde(default, with = "offset_option")]
    pub down_at: Option<Duration>,
    /// In `[html_from, html_until)` the metrics URL answers with an HTML page (a proxy's
    /// login page) instead of metrics.
    #[serde(default, with = "offset_option")]
    pub html_from: Option<Duration>,
    #[serde(default, with = "offset_option")]
    pub html_until: Option<Duration>,
    /// Validation efficiency (percent, 0..=100) the QoS scoreboard reports before
    /// `low_efficiency_at`.
    #[serde(default = "default_efficiency_percent")]
    pub efficiency_percent: f64,
    /// From this offset the scoreboard reports `low_efficiency_percent` instead.
    #[serde(default, with = "offset_option")]
    pub low_efficiency_at: Option<Duration>,
    #[serde(default = "default_low_efficiency_percent")]
    pub low_efficiency_percent: f64,
}

fn default_disk_size_gb() -> f64 {
    1000.0
}

fn default_disk_used_percent() -> f64 {
    40.0
}

fn default_sync_lag_seconds() -> f64 {
    2.0
}

fn default_efficiency_percent() -> f64 {
    98.0
}

fn default_low_efficiency_percent() -> f64 {
    60.0
}

/// Sim seconds per validated block and per collated block while the node works.
const SECONDS_PER_VALIDATED_BLOCK: f64 = 5.0;
const SECONDS_PER_COLLATED_BLOCK: f64 = 60.0;

impl Default for SimNode {
    fn default() -> Self {
        Self {
            disk_size_gb: default_disk_size_gb(),
            disk_used_percent: default_disk_used_percent(),
            disk_growth_percent_per_day: 0.0,
            sync_lag_seconds: default_sync_lag_seconds(),
            out_of_sync_at: None,
            in_sync_at: None,
            down_at: None,
            html_from: None,
            html_until: None,
            efficiency_percent: default_efficiency_percent(),
            low_efficiency_at: None,
            low_efficiency_percent: default_low_efficiency_percent(),
        }
    }
}

impl SimNode {
    /// Problems as (key path under the validator, message).
    pub(crate) fn problems(&self, prefix: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (field, value, max) in [
            ("disk_size_gb", self.disk_size_gb, f64::MAX),
            ("disk_used_percent", self.disk_used_percent, 100.0),
            (
                "disk_growth_percent_per_day",
                self.disk_growth_percent_per_day,
                100.0,
            ),
            ("sync_lag_seconds", self.sync_lag_seconds, f64::MAX),
            ("efficiency_percent", self.efficiency_percent, 100.0),
            ("low_efficiency_percent", self.low_efficiency_percent, 100.0),
        ] {
            if !(value.is_finite() && value >= 0.0 && value <= max) {
                problems.push((
                    format!("{prefix}.{field}"),
                    format!("{field} must be between 0 and {max}, got {value}"),
                ));
            }
        }
        if let (Some(from), Some(until)) = (self.html_from, self.html_until)
            && until <= from
        {
            problems.push((
                format!("{prefix}.html_until"),
                "html_until must be after html_from".to_owned(),
            ));
        }
        match (self.out_of_sync_at, self.in_sync_at) {
            (None, Some(_)) => problems.push((
                format!("{prefix}.in_sync_at"),
                "in_sync_at ends an out-of-sync period; set out_of_sync_at too".to_owned(),
            )),
            (Some(from), Some(until)) if until <= from => problems.push((
                format!("{prefix}.in_sync_at"),
                "in_sync_at must be after out_of_sync_at".to_owned(),
            )),
            _ => {}
        }
        problems
    }

    fn reached(at: Option<Duration>, t: f64) -> bool {
        at.is_some_and(|at| at.as_secs_f64() <= t)
    }

    pub(crate) fn serves_html(&self, t: f64) -> bool {
        Self::reached(self.html_from, t) && !self.html_until.is_some_and(|u| u.as_secs_f64() <= t)
    }

    pub(crate) fn disk_used_percent_at(&self, t: f64) -> f64 {
        (self.disk_used_percent + self.disk_growth_percent_per_day * t / 86_400.0).min(100.0)
    }

    pub(crate) fn sync_lag_at(&self, t: f64) -> f64 {
        match self.out_of_sync_at {
            Some(at) if at.as_secs_f64() <= t && !Self::reached(self.in_sync_at, t) => {
                self.sync_lag_seconds + (t - at.as_secs_f64())
            }
            _ => self.sync_lag_seconds,
        }
    }

    pub(crate) fn up_at(&self, t: f64) -> bool {
        !Self::reached(self.down_at, t)
    }

    /// The efficiency the QoS scoreboard reports at offset `t`, in percent.
    pub(crate) fn efficiency_percent_at(&self, t: f64) -> f64 {
        if Self::reached(self.low_efficiency_at, t) {
            self.low_efficiency_percent
        } else {
            self.efficiency_percent
        }
    }

    /// Sim seconds in `[0, t]` during which the node was in sync and up.
    pub(crate) fn working_seconds_at(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        let mut idle: Vec<(f64, f64)> = Vec::new();
        if let Some(from) = self.out_of_sync_at {
            let until = self.in_sync_at.map_or(f64::INFINITY, |at| at.as_secs_f64());
            idle.push((from.as_secs_f64(), until));
        }
        if let Some(from) = self.down_at {
            idle.push((from.as_secs_f64(), f64::INFINITY));
        }
        idle.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Length of the union of the idle intervals, clipped to [0, t].
        let mut idle_seconds = 0.0;
        let mut covered_until = 0.0_f64;
        for (from, until) in idle {
            let from = from.max(covered_until).min(t);
            let until = until.min(t);
            if until > from {
                idle_seconds += until - from;
                covered_until = until;
            }
        }
        (t - idle_seconds).max(0.0)
    }

    /// (validated, collated) blocks at offset `t`, per chain (master and shard alike).
    pub(crate) fn block_counts_at(&self, t: f64) -> (f64, f64) {
        let working = self.working_seconds_at(t);
        (
            (working / SECONDS_PER_VALIDATED_BLOCK).floor(),
            (working / SECONDS_PER_COLLATED_BLOCK).floor(),
        )
    }
}

pub(crate) fn routes() -> Router<Arc<World>> {
    Router::new()
        .route("/metrics/{validator}", get(node_metrics))
        .route("/cocoon/{name}/metrics", get(cocoon_metrics))
}

/// `GET /cocoon/{name}/metrics`: a `[[cocoon_nodes]]` node's utilization per GPU and its
/// active customers.
async fn cocoon_metrics(State(world): State<Arc<World>>, Path(name): Path<String>) -> Response {
    let Some(node) = world
        .scenario
        .cocoon_nodes
        .iter()
        .find(|node| node.name == name)
    else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no cocoon node named {name:?} in the scenario\n"),
        )
            .into_response();
    };
    let mut page = String::from(
        "# HELP cocoon_worker_utilization_ratio Share of time the GPU ran jobs.\n\
         # TYPE cocoon_worker_utilization_ratio gauge\n",
    );
    for (gpu, value) in node.utilization.iter().enumerate() {
        let _ = writeln!(
            page,
            "cocoon_worker_utilization_ratio{{gpu=\"{gpu}\"}} {value}"
        );
    }
    let _ = writeln!(
        page,
        "# HELP cocoon_active_customers Clients with a job in the last hour.\n\
         # TYPE cocoon_active_customers gauge\ncocoon_active_customers {}",
        node.customers
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
        .into_response()
}

impl super::SimHandle {
    /// The metrics URL of a scenario Cocoon node (by name).
    pub fn cocoon_metrics_url(&self, node: &str) -> String {
        format!("{}/cocoon/{node}/metrics", self.base_url())
    }

    /// The metrics URL of a scenario validator's node (by validator name).
    pub fn metrics_url(&self, validator: &str) -> String {
        format!("{}/metrics/{validator}", self.base_url())
    }
}

async fn node_metrics(State(world): State<Arc<World>>, Path(name): Path<String>) -> Response {
    let Some(validator) = world
        .scenario
        .validators
        .iter()
        .find(|validator| validator.name == name)
    else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no validator named {name:?} in the scenario\n"),
        )
            .into_response();
    };
    let t = world.elapsed_seconds();
    let node = validator.node.clone().unwrap_or_default();
    if node.serves_html(t) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html>\n<html><head><title>Sign in - Grafana</title></head><body><form action=\"/login\">Please sign in</form></body></html>\n",
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition(validator, &node, t),
    )
        .into_response()
}

/// The page for one node at sim offset `t` seconds. Host values other than disk, sync and
/// up are fixed or grow with `t`, so counters increase between scrapes.
pub(crate) fn exposition(validator: &SimValidator, node: &SimNode, t: f64) -> String {
    let mut page = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(page, "# HELP {name} {help}");
        let _ = writeln!(page, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(page, "{name}{labels} {value}");
        }
    };
    let t = t.max(0.0);
    let cores = 8.0;
    let busy = 0.35;
    let cpu: Vec<(String, f64)> = (0..8)
        .flat_map(|cpu| {
            [
                ("idle", (1.0 - busy) * t + 10_000.0),
                ("user", busy * 0.8 * t + 500.0),
                ("system", busy * 0.2 * t + 200.0),
                ("iowait", 2.0),
            ]
            .map(|(mode, value)| (format!("{{cpu=\"{cpu}\",mode=\"{mode}\"}}"), value))
        })
        .collect();
    let cpu_refs: Vec<(&str, f64)> = cpu.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        "node_cpu_seconds_total",
        "counter",
        "Seconds the CPUs spent in each mode.",
        &cpu_refs,
    );
    family(
        "node_load1",
        "gauge",
        "1m load average.",
        &[("", cores * busy)],
    );
    family(
        "node_load5",
        "gauge",
        "5m load average.",
        &[("", cores * busy)],
    );
    family(
        "node_load15",
        "gauge",
        "15m load average.",
        &[("", cores * busy)],
    );
    let memory_total = 128.0 * 1024.0 * 1024.0 * 1024.0;
    family(
        "node_memory_MemTotal_bytes",
        "gauge",
        "Memory information field MemTotal_bytes.",
        &[("", memory_total)],
    );
    family(
        "node_memory_MemAvailable_bytes",
        "gauge",
        "Memory information field MemAvailable_bytes.",
        &[("", memory_total * 0.55)],
    );
    let size = (node.disk_size_gb * 1e9).round();
    let avail = (size * (1.0 - node.disk_used_percent_at(t) / 100.0)).round();
    let work = r#"{device="/dev/nvme0n1p1",fstype="ext4",mountpoint="/var/ton-work"}"#;
    let run = r#"{device="tmpfs",fstype="tmpfs",mountpoint="/run"}"#;
    family(
        "node_filesystem_size_bytes",
        "gauge",
        "Filesystem size in bytes.",
        &[(work, size), (run, 6.7e9)],
    );
    family(
        "node_filesystem_avail_bytes",
        "gauge",
        "Filesystem space available to non-root users in bytes.",
        &[(work, avail), (run, 6.6e9)],
    );
    family(
        "node_network_receive_bytes_total",
        "counter",
        "Network device statistic receive_bytes.",
        &[(r#"{device="eth0"}"#, 12_500_000.0 * t + 1e9)],
    );
    family(
        "node_network_transmit_bytes_total",
        "counter",
        "Network device statistic transmit_bytes.",
        &[(r#"{device="eth0"}"#, 11_000_000.0 * t + 1e9)],
    );
    let up = node.up_at(t);
    family(
        "validator_masterchain_out_of_sync_seconds",
        "gauge",
        "sim: masterchain out of sync, seconds",
        &[("", node.sync_lag_at(t).round())],
    );
    family(
        "validator_console_up",
        "gauge",
        "sim: validator-engine-console answered (1) or not (0)",
        &[("", if up { 1.0 } else { 0.0 })],
    );
    family(
        "validator_stake",
        "gauge",
        "sim: validator stake, TON",
        &[("", validator.stake_ton)],
    );
    let (validated, collated) = node.block_counts_at(t);
    for (name, help, value) in [
        (
            "validator_blocks_collated_master_ok",
            "sim: masterchain blocks collated",
            collated,
        ),
        (
            "validator_blocks_validated_master_ok",
            "sim: masterchain blocks validated",
            validated,
        ),
        (
            "validator_blocks_collated_shard_ok",
            "sim: shardchain blocks collated",
            collated,
        ),
        (
            "validator_blocks_validated_shard_ok",
            "sim: shardchain blocks validated",
            validated,
        ),
    ] {
        family(name, "gauge", help, &[("", value)]);
    }
    page
}

mod offset_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        offset: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match offset {
            Some(offset) => serializer.serialize_str(&super::super::format_offset(*offset)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::super::parse_sim_offset(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

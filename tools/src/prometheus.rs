//! Prometheus text exposition (format 0.0.4): a tolerant parser, a scraper built on the
//! shared HTTP core, and typed views of what the validators agent reads from node_exporter
//! and from mytonctrl's validator gauges.
//!
//! The parser never fails: a line it cannot read is skipped, counted and (up to
//! [`MAX_RECORDED_SKIPS`]) recorded with its line number and the reason, so one broken
//! exporter line does not hide the rest of a node's health.

use std::collections::BTreeMap;

use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Serialize;

use crate::http::{Fetched, HttpAnswer, HttpCore, RetryPolicy, SourceError, redact_url};

const SOURCE: &str = "prometheus";

/// Skipped lines recorded in detail; the rest are only counted.
pub const MAX_RECORDED_SKIPS: usize = 50;

/// Default cap on a scraped page. node_exporter pages are tens of kilobytes; 16 MiB is far
/// beyond any real exporter and well below what would hurt the daemon.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One sample line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `NaN`, `+Inf` and `-Inf` are kept as such.
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the exporter gave one.
    pub timestamp_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "counter" => Some(Self::Counter),
            "gauge" => Some(Self::Gauge),
            "histogram" => Some(Self::Histogram),
            "summary" => Some(Self::Summary),
            // "unknown" is OpenMetrics' name for untyped.
            "untyped" | "unknown" => Some(Self::Untyped),
            _ => None,
        }
    }
}

/// What `# TYPE` and `# HELP` said about one family.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricFamily {
    pub metric_type: Option<MetricType>,
    pub help: Option<String>,
}

/// A line the parser could not read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedLine {
    /// 1-based.
    pub line_number: usize,
    pub reason: String,
    /// The first 80 characters of the line.
    pub excerpt: String,
}

/// Everything read from one exposition.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ParsedMetrics {
    /// In page order.
    pub samples: Vec<MetricSample>,
    /// By family name (`http_request_duration_seconds`, not `..._bucket`).
    pub families: BTreeMap<String, MetricFamily>,
    /// Lines skipped in total.
    pub skipped_count: usize,
    /// The first [`MAX_RECORDED_SKIPS`] skipped lines.
    pub skipped: Vec<SkippedLine>,
}

/// One histogram or summary series: buckets (or quantiles) with sum and count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistogramSeries {
    /// The series' labels without `le` / `quantile`.
    pub labels: BTreeMap<String, String>,
    /// `(upper bound, cumulative count)` sorted by bound; `+Inf` last. Quantiles for a summary.
    pub buckets: Vec<(f64, f64)>,
    pub sum: Option<f64>,
    pub count: Option<f64>,
}

impl ParsedMetrics {
    /// Samples named exactly `name`.
    pub fn samples_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a MetricSample> {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name)
    }

    /// The value of the first sample named `name` (for unlabelled gauges).
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples_named(name).next().map(|sample| sample.value)
    }

    /// The first present of several names (current name first, older names after).
    fn first_value(&self, names: &[&str]) -> Option<f64> {
        names.iter().find_map(|name| self.value(name))
    }

    /// Type of the family a sample name belongs to, resolving `_bucket`, `_sum`, `_count`.
    pub fn type_of(&self, sample_name: &str) -> Option<MetricType> {
        if let Some(family) = self.families.get(sample_name) {
            return family.metric_type;
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = sample_name.strip_suffix(suffix)?;
            let metric_type = self.families.get(base)?.metric_type?;
            matches!(metric_type, MetricType::Histogram | MetricType::Summary)
                .then_some(metric_type)
        })
    }

    /// Every series of histogram or summary family `name`, grouped by labels.
    pub fn histogram(&self, name: &str) -> Vec<HistogramSeries> {
        let bucket_name = format!("{name}_bucket");
        let sum_name = format!("{name}_sum");
        let count_name = format!("{name}_count");
        let mut series: BTreeMap<Vec<(String, String)>, HistogramSeries> = BTreeMap::new();
        for sample in &self.samples {
            let (bound_label, slot) = if sample.name == bucket_name {
                ("le", 0)
            } else if sample.name == name {
                ("quantile", 0)
            } else if sample.name == sum_name {
                ("", 1)
            } else if sample.name == count_name {
                ("", 2)
            } else {
                continue;
            };
            let mut labels = sample.labels.clone();
            let bound = labels.remove(bound_label);
            if slot == 0 && bound.is_none() {
                continue;
            }
            let key: Vec<(String, String)> = labels.clone().into_iter().collect();
            let entry = series.entry(key).or_insert_with(|| HistogramSeries {
                labels,
                buckets: Vec::new(),
                sum: None,
                count: None,
            });
            match slot {
                0 => {
                    if let Some(bound) = bound.as_deref().and_then(parse_float) {
                        entry.buckets.push((bound, sample.value));
                    }
                }
                1 => entry.sum = Some(sample.value),
                _ => entry.count = Some(sample.value),
            }
        }
        series
            .into_values()
            .map(|mut series| {
                series.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                series
            })
            .collect()
    }
}

/// Parses a text exposition. Never fails; see [`ParsedMetrics::skipped`].
pub fn parse_text(text: &str) -> ParsedMetrics {
    let mut parsed = ParsedMetrics::default();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        let result = if let Some(comment) = trimmed.strip_prefix('#') {
            parse_comment(comment, &mut parsed.families)
        } else {
            parse_sample(trimmed).map(|sample| parsed.samples.push(sample))
        };
        if let Err(reason) = result {
            parsed.skipped_count += 1;
            if parsed.skipped.len() < MAX_RECORDED_SKIPS {
                parsed.skipped.push(SkippedLine {
                    line_number,
                    reason,
                    excerpt: trimmed.chars().take(80).collect(),
                });
            }
        }
    }
    parsed
}

/// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
fn parse_comment(
    comment: &str,
    families: &mut BTreeMap<String, MetricFamily>,
) -> Result<(), String> {
    let comment = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_token(comment);
    match keyword {
        "HELP" => {
            let (name, help) = split_token(rest);
            if !is_metric_name(name) {
                return Err(format!("# HELP names an invalid metric name {name:?}"));
            }
            let family = families.entry(name.to_owned()).or_default();
            family.help = Some(unescape(help, false));
            Ok(())
        }
        "TYPE" => {
            let (name, type_text) = split_token(rest);
            if !is_metric_name(name) {
                return Err(format!("# TYPE names an invalid metric name {name:?}"));
            }
            let type_text = type_text.trim();
            let metric_type = MetricType::parse(type_text).ok_or_else(|| {
                format!(
                    "# TYPE {name}: unknown type {type_text:?} (expected counter, gauge, histogram, summary or untyped)"
                )
            })?;
            let family = families.entry(name.to_owned()).or_default();
            if family.metric_type.is_some_and(|known| known != metric_type) {
                return Err(format!(
                    "# TYPE {name}: second TYPE line says {type_text}, the first one is kept"
                ));
            }
            family.metric_type = Some(metric_type);
            Ok(())
        }
        // Plain comments, and OpenMetrics' `# EOF` / `# UNIT`.
        _ => Ok(()),
    }
}

/// Splits off the first whitespace-separated token; the rest starts after one separator run.
fn split_token(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches([' ', '\t']);
    match text.find([' ', '\t']) {
        Some(at) => (&text[..at], text[at..].trim_start_matches([' ', '\t'])),
        None => (text, ""),
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `\\` and `\n` (and `\"` in label values); an unknown escape is kept as written.
fn unescape(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Go's ParseFloat spellings the format allows: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
fn parse_float(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        lower => {
            // Rust also reads "infinity" and "nan" spelled out; the format does not.
            if lower.contains("inf") || lower.contains("nan") {
                return None;
            }
            text.parse::<f64>().ok()
        }
    }
}

fn parse_sample(line: &str) -> Result<MetricSample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("does not start with a metric name".to_owned());
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut tokens = rest.split([' ', '\t']).filter(|token| !token.is_empty());
    let value_text = tokens
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value =
        parse_float(value_text).ok_or_else(|| format!("value {value_text:?} is not a number"))?;
    let timestamp_ms = match tokens.next() {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| format!("timestamp {text:?} is not an integer of milliseconds"))?,
        ),
    };
    if let Some(extra) = tokens.next() {
        return Err(format!("unexpected {extra:?} after value and timestamp"));
    }
    Ok(MetricSample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Reads `a="x",b="y"}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let label_name = &rest[..name_end];
        if !is_label_name(label_name) {
            return Err(format!(
                "expected a label name or '}}' at {:?}",
                rest.chars().take(20).collect::<String>()
            ));
        }
        rest = rest[name_end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("label {label_name} has no '='"))?
            .trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("label {label_name}: value is not quoted"))?;
        let mut end = None;
        let mut escaped = false;
        for (at, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(at);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("label {label_name}: value has no closing quote"))?;
        let value = unescape(&rest[..end], true);
        if labels.insert(label_name.to_owned(), value).is_some() {
            return Err(format!("label {label_name} appears twice"));
        }
        rest = rest[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after label {label_name}, found {:?}",
                rest.chars().take(20).collect::<String>()
            ));
        }
    }
}

/// One scrape: the parsed page and what was fetched.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scrape {
    pub metrics: ParsedMetrics,
    pub content_type: Option<String>,
    pub body_bytes: usize,
}

/// Scrapes exporters (node_exporter, a pushgateway holding mytonctrl's gauges). One
/// scraper serves many targets; the rate limit applies across all of them.
pub struct PrometheusScraper {
    core: HttpCore,
}

impl PrometheusScraper {
    pub fn new(
        requests_per_second: f64,
        retry: RetryPolicy,
        max_body_bytes: usize,
    ) -> Result<Self, SourceError> {
        let mut headers = HeaderMap::new();
        // Ask for the classic text format; exporters that also speak protobuf or
        // OpenMetrics otherwise pick by Accept.
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/plain;version=0.0.4;q=1.0,*/*;q=0.1"),
        );
        let core = HttpCore::new(SOURCE, requests_per_second, retry, headers, None)?
            .with_max_body_bytes(max_body_bytes);
        Ok(Self { core })
    }

    /// GETs `url` (e.g. `http://10.0.0.5:9100/metrics`) and parses the page.
    pub async fn scrape(&self, url: &str) -> Result<Fetched<Scrape>, SourceError> {
        let url = Url::parse(url).map_err(|error| SourceError::InvalidInput {
            detail: format!(
                "{SOURCE}: metrics URL is not a valid absolute URL ({error}); write e.g. http://10.0.0.5:9100/metrics"
            ),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SourceError::InvalidInput {
                detail: format!(
                    "{SOURCE}: metrics URL must be http or https, got {}",
                    redact_url(&url)
                ),
            });
        }
        self.core.get(&url, interpret_scrape).await
    }
}

fn interpret_scrape(answer: HttpAnswer) -> Result<Scrape, SourceError> {
    let message = || {
        format!(
            "{}: HTTP {}; body starts with {:?}",
            answer.origin,
            answer.status,
            answer.snippet()
        )
    };
    match answer.status {
        200 => {}
        429 => {
            return Err(SourceError::RateLimited {
                retry_after: answer.retry_after,
                message: message(),
            });
        }
        500..=599 => {
            return Err(SourceError::Unavailable {
                status: answer.status,
                message: message(),
            });
        }
        400..=499 => {
            return Err(SourceError::Rejected {
                status: answer.status,
                message: format!(
                    "{} (check the metrics URL and that the exporter serves /metrics)",
                    message()
                ),
            });
        }
        status => {
            return Err(SourceError::InvalidResponse {
                detail: format!("{} (unexpected HTTP status {status})", message()),
            });
        }
    }
    if answer.is_html() {
        return Err(SourceError::InvalidResponse {
            detail: format!(
                "{}: got an HTML page instead of Prometheus metrics (a login page, proxy or wrong port?); Content-Type {:?}, body starts with {:?}",
                answer.origin,
                answer.content_type.as_deref().unwrap_or("none"),
                answer.snippet()
            ),
        });
    }
    if let Some(content_type) = &answer.content_type
        && !(content_type.starts_with("text/plain")
            || content_type.starts_with("application/openmetrics-text"))
    {
        return Err(SourceError::InvalidResponse {
            detail: format!(
                "{}: expected text/plain metrics but got Content-Type {content_type}; body starts with {:?}",
                answer.origin,
                answer.snippet()
            ),
        });
    }
    let text = String::from_utf8_lossy(&answer.body);
    Ok(Scrape {
        metrics: parse_text(&text),
        content_type: answer.content_type.clone(),
        body_bytes: answer.body.len(),
    })
}

// ---- typed views ----

/// File systems that do not hold node data: memory-backed, container layers, images.
const SKIPPED_FSTYPES: &[&str] = &[
    "tmpfs", "devtmpfs", "overlay", "squashfs", "ramfs", "nsfs", "autofs",
];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilesystemUsage {
    pub mountpoint: String,
    pub device: String,
    pub fstype: String,
    pub size_bytes: f64,
    pub avail_bytes: f64,
}

impl FilesystemUsage {
    /// Used share in percent as `df` shows it: `(size - avail) / size`.
    pub fn used_percent(&self) -> Option<f64> {
        (self.size_bytes > 0.0)
            .then(|| (self.size_bytes - self.avail_bytes) / self.size_bytes * 100.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkDevice {
    pub device: String,
    pub receive_bytes: Option<f64>,
    pub transmit_bytes: Option<f64>,
}

/// Host health from node_exporter. Names are node_exporter's (>= 0.16); the pre-0.16 names
/// are read as a fallback where noted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeExporterSummary {
    /// Seconds summed over all CPUs by mode (`idle`, `user`, `system`, `iowait`, ...), from
    /// `node_cpu_seconds_total{cpu,mode}` (pre-1.0: `node_cpu`).
    pub cpu_seconds_by_mode: BTreeMap<String, f64>,
    /// Distinct `cpu` label values.
    pub cpu_count: usize,
    pub memory_total_bytes: Option<f64>,
    /// `node_memory_MemAvailable_bytes`; `None` on kernels without MemAvailable.
    pub memory_available_bytes: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    /// Real file systems only (see `SKIPPED_FSTYPES`), by mountpoint.
    pub filesystems: Vec<FilesystemUsage>,
    pub network: Vec<NetworkDevice>,
}

impl NodeExporterSummary {
    pub fn from_metrics(metrics: &ParsedMetrics) -> Self {
        let mut summary = Self::default();
        let cpu_name = if metrics
            .samples_named("node_cpu_seconds_total")
            .next()
            .is_some()
        {
            "node_cpu_seconds_total"
        } else {
            "node_cpu"
        };
        let mut cpus = std::collections::BTreeSet::new();
        for sample in metrics.samples_named(cpu_name) {
            let Some(mode) = sample.labels.get("mode") else {
                continue;
            };
            if let Some(cpu) = sample.labels.get("cpu") {
                cpus.insert(cpu.clone());
            }
            *summary.cpu_seconds_by_mode.entry(mode.clone()).or_default() += sample.value;
        }
        summary.cpu_count = cpus.len();
        summary.memory_total_bytes =
            metrics.first_value(&["node_memory_MemTotal_bytes", "node_memory_MemTotal"]);
        summary.memory_available_bytes =
            metrics.first_value(&["node_memory_MemAvailable_bytes", "node_memory_MemAvailable"]);
        summary.load1 = metrics.value("node_load1");
        summary.load5 = metrics.value("node_load5");
        summary.load15 = metrics.value("node_load15");
        summary.filesystems = filesystems(metrics);
        summary.network = network(metrics);
        summary
    }

    /// The file system mounted at `mountpoint`.
    pub fn filesystem(&self, mountpoint: &str) -> Option<&FilesystemUsage> {
        self.filesystems
            .iter()
            .find(|fs| fs.mountpoint == mountpoint)
    }
}

fn filesystems(metrics: &ParsedMetrics) -> Vec<FilesystemUsage> {
    let (size_name, avail_name) = if metrics
        .samples_named("node_filesystem_size_bytes")
        .next()
        .is_some()
    {
        ("node_filesystem_size_bytes", "node_filesystem_avail_bytes")
    } else {
        ("node_filesystem_size", "node_filesystem_avail")
    };
    let mut found: BTreeMap<String, FilesystemUsage> = BTreeMap::new();
    for sample in metrics.samples_named(size_name) {
        let label = |key: &str| sample.labels.get(key).cloned().unwrap_or_default();
        let (mountpoint, fstype) = (label("mountpoint"), label("fstype"));
        if mountpoint.is_empty() || SKIPPED_FSTYPES.contains(&fstype.as_str()) {
            continue;
        }
        let avail = metrics
            .samples_named(avail_name)
            .find(|avail| {
                avail.labels.get("mountpoint") == Some(&mountpoint)
                    && avail.labels.get("device") == sample.labels.get("device")
            })
            .map(|avail| avail.value);
        let Some(avail_bytes) = avail else { continue };
        // A bind mount shows the same device twice; the first mountpoint wins per mountpoint.
        found.entry(mountpoint.clone()).or_insert(FilesystemUsage {
            mountpoint,
            device: label("device"),
            fstype,
            size_bytes: sample.value,
            avail_bytes,
        });
    }
    found.into_values().collect()
}

fn network(metrics: &ParsedMetrics) -> Vec<NetworkDevice> {
    let mut devices: BTreeMap<String, NetworkDevice> = BTreeMap::new();
    for (names, receive) in [
        (
            [
                "node_network_receive_bytes_total",
                "node_network_receive_bytes",
            ],
            true,
        ),
        (
            [
                "node_network_transmit_bytes_total",
                "node_network_transmit_bytes",
            ],
            false,
        ),
    ] {
        let name = names
            .iter()
            .find(|name| metrics.samples_named(name).next().is_some());
        let Some(name) = name else { continue };
        for sample in metrics.samples_named(name) {
            let Some(device) = sample.labels.get("device") else {
                continue;
            };
            let entry = devices
                .entry(device.clone())
                .or_insert_with(|| NetworkDevice {
                    device: device.clone(),
                    receive_bytes: None,
                    transmit_bytes: None,
                });
            if receive {
                entry.receive_bytes = Some(sample.value);
            } else {
                entry.transmit_bytes = Some(sample.value);
            }
        }
    }
    devices.into_values().collect()
}

/// The validator gauges mytonctrl's `prometheus` module pushes (names from
/// ton-blockchain/mytonctrl `modules/prometheus.py`, as listed in the reference; no captured
/// scrape of them exists, so the values' units are as that module names them). Every field
/// is `None` when the gauge is absent, which is not the same as 0.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ValidatorNodeMetrics {
    /// `validator_masterchain_out_of_sync_seconds`; falls back to
    /// `ton_liteserver_prometheus_exporter_out_of_sync_seconds` (MrEhbr's exporter: the
    /// prefix and the field are documented, the joined name is our inference).
    pub masterchain_out_of_sync_seconds: Option<f64>,
    /// `validator_shardchain_out_of_sync_blocks`.
    pub shardchain_out_of_sync_blocks: Option<f64>,
    /// `validator_out_of_serialization` (blocks since the last state serialization).
    pub out_of_serialization_blocks: Option<f64>,
    /// `validator_console_up` (1 = validator-engine-console answered).
    pub console_up: Option<bool>,
    /// `validator_index`; -1 = not in the current set.
    pub validator_index: Option<i64>,
    /// `validator_stake`.
    pub stake: Option<f64>,
    /// `validator_active_groups_master` / `_shard`.
    pub active_groups_master: Option<f64>,
    pub active_groups_shard: Option<f64>,
    /// `validator_blocks_collated_master_ok` and its siblings: cumulative counts of blocks
    /// the node collated or validated successfully (mytonctrl exports them as gauges; the
    /// `_err` twins are not read). A count that stops growing while the node should be
    /// validating means it is not doing its work.
    pub blocks_collated_master: Option<f64>,
    pub blocks_validated_master: Option<f64>,
    pub blocks_collated_shard: Option<f64>,
    pub blocks_validated_shard: Option<f64>,
}

impl ValidatorNodeMetrics {
    pub fn from_metrics(metrics: &ParsedMetrics) -> Self {
        let finite = |value: Option<f64>| value.filter(|value| value.is_finite());
        Self {
            masterchain_out_of_sync_seconds: finite(metrics.first_value(&[
                "validator_masterchain_out_of_sync_seconds",
                "ton_liteserver_prometheus_exporter_out_of_sync_seconds",
            ])),
            shardchain_out_of_sync_blocks: finite(
                metrics.value("validator_shardchain_out_of_sync_blocks"),
            ),
            out_of_serialization_blocks: finite(metrics.value("validator_out_of_serialization")),
            console_up: finite(metrics.value("validator_console_up")).map(|up| up >= 1.0),
            validator_index: finite(metrics.value("validator_index")).map(|index| index as i64),
            stake: finite(metrics.value("validator_stake")),
            active_groups_master: finite(metrics.value("validator_active_groups_master")),
            active_groups_shard: finite(metrics.value("validator_active_groups_shard")),
            blocks_collated_master: finite(metrics.value("validator_blocks_collated_master_ok")),
            blocks_validated_master: finite(metrics.value("validator_blocks_validated_master_ok")),
            blocks_collated_shard: finite(metrics.value("validator_blocks_collated_shard_ok")),
            blocks_validated_shard: finite(metrics.value("validator_blocks_validated_shard_ok")),
        }
    }
}

#[cfg(test)]
mod tests;

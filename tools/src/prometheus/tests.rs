use std::time::Duration;

use super::*;
use crate::sim::{Scenario, SimHandle, SimWorld};
use crate::test_support::{fast_policy, fixed_server, loopback};

/// Lines retyped from node_exporter's e2e fixture (prometheus/node_exporter
/// `collector/fixtures/e2e-output.txt`, via the shared reference excerpt).
const NODE_EXPORTER_EXCERPT: &str = "\
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 3.831959552e+09
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10870.69
node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 444.9
node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 1.5
";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Name, labels, value and timestamp of the one sample a line should give.
type ExpectedSample<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, Option<i64>);

/// Parses one line and compares the sample, or a fragment of the skip reason.
fn check(line: &str, expected: Result<ExpectedSample<'_>, &str>) {
    let parsed = parse_text(line);
    match expected {
        Ok((name, pairs, value, timestamp_ms)) => {
            assert!(parsed.skipped.is_empty(), "{line:?}: {:?}", parsed.skipped);
            let sample = &parsed.samples[0];
            assert_eq!(sample.name, name, "{line:?}");
            assert_eq!(sample.labels, labels(pairs), "{line:?}");
            assert!(
                sample.value == value || (sample.value.is_nan() && value.is_nan()),
                "{line:?}: {} != {value}",
                sample.value
            );
            assert_eq!(sample.timestamp_ms, timestamp_ms, "{line:?}");
        }
        Err(reason) => {
            assert!(parsed.samples.is_empty(), "{line:?}: {:?}", parsed.samples);
            assert_eq!(parsed.skipped_count, 1, "{line:?}");
            assert!(
                parsed.skipped[0].reason.contains(reason),
                "{line:?}: reason {:?} lacks {reason:?}",
                parsed.skipped[0].reason
            );
        }
    }
}

#[test]
fn sample_lines_parse_values_labels_escapes_and_timestamps() {
    check("up 1", Ok(("up", &[], 1.0, None)));
    check(
        "node_memory_MemTotal_bytes 3.831959552e+09",
        Ok(("node_memory_MemTotal_bytes", &[], 3.831959552e9, None)),
    );
    check("x NaN", Ok(("x", &[], f64::NAN, None)));
    check("x +Inf", Ok(("x", &[], f64::INFINITY, None)));
    check(
        "x -Inf 1395066363000",
        Ok(("x", &[], f64::NEG_INFINITY, Some(1395066363000))),
    );
    check("x{} 2 -5", Ok(("x", &[], 2.0, Some(-5))));
    check(
        "  x\t{ a = \"1\" , b=\"2\", }  3  ",
        Ok(("x", &[("a", "1"), ("b", "2")], 3.0, None)),
    );
    check(
        r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9"#,
        Ok((
            "msdos_file_access_time_seconds",
            &[
                ("path", "C:\\DIR\\FILE.TXT"),
                ("error", "Cannot find file:\n\"FILE.TXT\""),
            ],
            1.458255915e9,
            None,
        )),
    );
    check(r#"x{a="}{,"} 1"#, Ok(("x", &[("a", "}{,")], 1.0, None)));
    check("x 1\r", Ok(("x", &[], 1.0, None)));
}

#[test]
fn garbage_lines_are_skipped_with_a_reason() {
    check("<html>", Err("does not start with a metric name"));
    check("9x 1", Err("does not start with a metric name"));
    check("x", Err("has no value"));
    check("x one", Err("is not a number"));
    check("x infinity", Err("is not a number"));
    check("x 1 1.5", Err("timestamp"));
    check("x 1 2 3", Err("unexpected"));
    check(r#"x{a="1" 1"#, Err("expected ',' or '}'"));
    check(r#"x{a="1} 1"#, Err("no closing quote"));
    check("x{a=1} 1", Err("not quoted"));
    check(r#"x{a="1",a="2"} 1"#, Err("appears twice"));
    check("# TYPE x histogramm", Err("unknown type"));
}

#[test]
fn a_page_with_comments_blank_lines_histograms_and_garbage_keeps_every_good_line() {
    let page = "\
# A plain comment
# HELP http_request_duration_seconds A histogram of latencies. Escaped \\\\ and \\n here.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054

http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_bucket{le=\"0.1\"} 33444
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
this is not a metric line
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
Warning: something went wrong
# EOF
";
    let parsed = parse_text(page);
    assert_eq!(parsed.samples.len(), 8);
    assert_eq!(parsed.skipped_count, 2);
    assert_eq!(
        parsed
            .skipped
            .iter()
            .map(|skip| skip.line_number)
            .collect::<Vec<_>>(),
        [10, 15]
    );
    assert_eq!(parsed.skipped[0].excerpt, "this is not a metric line");
    let family = &parsed.families["http_request_duration_seconds"];
    assert_eq!(family.metric_type, Some(MetricType::Histogram));
    assert_eq!(
        family.help.as_deref(),
        Some("A histogram of latencies. Escaped \\ and \n here.")
    );
    assert_eq!(
        parsed.type_of("http_request_duration_seconds_bucket"),
        Some(MetricType::Histogram)
    );
    assert_eq!(
        parsed.type_of("rpc_duration_seconds_count"),
        Some(MetricType::Summary)
    );
    assert_eq!(parsed.type_of("no_such_metric"), None);
    let histogram = parsed.histogram("http_request_duration_seconds");
    assert_eq!(histogram.len(), 1);
    assert_eq!(
        histogram[0].buckets,
        [(0.05, 24054.0), (0.1, 33444.0), (f64::INFINITY, 144320.0)]
    );
    assert_eq!(histogram[0].sum, Some(53423.0));
    assert_eq!(histogram[0].count, Some(144320.0));
    let summary = parsed.histogram("rpc_duration_seconds");
    assert_eq!(summary[0].buckets, [(0.5, 4773.0)]);
    assert_eq!(summary[0].count, Some(2693.0));
}

#[test]
fn skipped_lines_are_counted_past_the_recording_cap() {
    let page = "garbage\n".repeat(MAX_RECORDED_SKIPS + 25) + "ok 1\n";
    let parsed = parse_text(&page);
    assert_eq!(parsed.skipped_count, MAX_RECORDED_SKIPS + 25);
    assert_eq!(parsed.skipped.len(), MAX_RECORDED_SKIPS);
    assert_eq!(parsed.value("ok"), Some(1.0));
}

#[test]
fn node_exporter_summary_reads_the_reference_excerpt_and_old_names() {
    let summary = NodeExporterSummary::from_metrics(&parse_text(NODE_EXPORTER_EXCERPT));
    assert_eq!(summary.load1, Some(0.21));
    assert_eq!(summary.load5, None);
    assert_eq!(summary.memory_total_bytes, Some(3.831959552e9));
    assert_eq!(summary.memory_available_bytes, None);
    assert_eq!(summary.cpu_count, 2);
    assert_eq!(summary.cpu_seconds_by_mode["idle"], 10870.69 + 1.5);
    assert_eq!(summary.cpu_seconds_by_mode["user"], 444.9);
    // Pre-1.0 names (older copies of the same fixture).
    let old = parse_text(
        "node_cpu{cpu=\"cpu0\",mode=\"idle\"} 5\nnode_memory_MemTotal 100\nnode_filesystem_size{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} 10\nnode_filesystem_avail{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} 4\n",
    );
    let old = NodeExporterSummary::from_metrics(&old);
    assert_eq!(old.cpu_seconds_by_mode["idle"], 5.0);
    assert_eq!(old.memory_total_bytes, Some(100.0));
    assert_eq!(
        old.filesystem("/").and_then(FilesystemUsage::used_percent),
        Some(60.0)
    );
}

#[test]
fn validator_metrics_are_none_when_absent_not_zero() {
    let metrics = ValidatorNodeMetrics::from_metrics(&parse_text(
        "validator_masterchain_out_of_sync_seconds 4\nvalidator_console_up 0\nvalidator_index -1\n",
    ));
    assert_eq!(metrics.masterchain_out_of_sync_seconds, Some(4.0));
    assert_eq!(metrics.console_up, Some(false));
    assert_eq!(metrics.validator_index, Some(-1));
    assert_eq!(metrics.stake, None);
    assert_eq!(metrics.shardchain_out_of_sync_blocks, None);
    let empty = ValidatorNodeMetrics::from_metrics(&parse_text("up 1\n"));
    assert_eq!(empty, ValidatorNodeMetrics::default());
}

#[test]
fn block_counters_are_read_from_the_ok_gauges_only() {
    let metrics = ValidatorNodeMetrics::from_metrics(&parse_text(
        "# TYPE validator_blocks_collated_master_ok gauge\n\
         validator_blocks_collated_master_ok 12\n\
         validator_blocks_collated_master_err 99\n\
         validator_blocks_validated_master_ok 340\n\
         validator_blocks_collated_shard_ok 7\n\
         validator_blocks_validated_shard_ok 2900\n\
         validator_blocks_validated_shard_err 5\n",
    ));
    assert_eq!(metrics.blocks_collated_master, Some(12.0));
    assert_eq!(metrics.blocks_validated_master, Some(340.0));
    assert_eq!(metrics.blocks_collated_shard, Some(7.0));
    assert_eq!(metrics.blocks_validated_shard, Some(2900.0));
    let only_errors = ValidatorNodeMetrics::from_metrics(&parse_text(
        "validator_blocks_collated_master_err 3\nvalidator_blocks_validated_shard_ok NaN\n",
    ));
    assert_eq!(only_errors.blocks_collated_master, None);
    assert_eq!(only_errors.blocks_validated_shard, None);
}

const NODES_SCENARIO: &str = r#"
name = "nodes"
speed = 0.0
start = "2025-01-01T00:00:00Z"

[[validators]]
name = "validator-1"
address = "-1:3333333333333333333333333333333333333333333333333333333333333333"
balance_ton = 10.0
stake_ton = 400000.0
[validators.node]
disk_size_gb = 2000.0
disk_used_percent = 70.0
disk_growth_percent_per_day = 24.0
out_of_sync_at = "10m"
down_at = "1h"
html_from = "2h"
html_until = "3h"

[[validators]]
name = "validator-2"
address = "-1:4444444444444444444444444444444444444444444444444444444444444444"
balance_ton = 10.0
"#;

async fn start_nodes_sim() -> SimHandle {
    crate::http::install_crypto_provider();
    let scenario = Scenario::from_toml(NODES_SCENARIO, "prometheus/tests.rs").unwrap();
    SimWorld::start(scenario, loopback()).await.unwrap()
}

fn scraper() -> PrometheusScraper {
    PrometheusScraper::new(1000.0, fast_policy(), DEFAULT_MAX_BODY_BYTES).unwrap()
}

#[tokio::test]
async fn scraping_the_sim_follows_the_scenario_disk_sync_up_and_html_fault() {
    let sim = start_nodes_sim().await;
    let scraper = scraper();
    let read = |scrape: &Scrape| {
        (
            NodeExporterSummary::from_metrics(&scrape.metrics),
            ValidatorNodeMetrics::from_metrics(&scrape.metrics),
        )
    };

    let first = scraper
        .scrape(&sim.metrics_url("validator-1"))
        .await
        .unwrap();
    assert_eq!(first.attempts, 1);
    assert_eq!(
        first.value.metrics.skipped_count, 0,
        "{:?}",
        first.value.metrics.skipped
    );
    let (host, validator) = read(&first.value);
    assert_eq!(host.cpu_count, 8);
    assert!(host.memory_available_bytes.is_some() && host.memory_total_bytes.is_some());
    // The tmpfs /run is skipped; the node's disk is what the scenario says.
    assert_eq!(host.filesystems.len(), 1, "{:?}", host.filesystems);
    let disk = host.filesystem("/var/ton-work").unwrap();
    assert_eq!(disk.size_bytes, 2e12);
    assert!((disk.used_percent().unwrap() - 70.0).abs() < 1e-6);
    assert_eq!(host.network[0].device, "eth0");
    assert_eq!(validator.masterchain_out_of_sync_seconds, Some(2.0));
    assert_eq!(validator.console_up, Some(true));
    assert_eq!(validator.stake, Some(400000.0));

    // 30 minutes in: out of sync since minute 10, disk grew 0.5 points.
    sim.advance(Duration::from_secs(30 * 60));
    let (host, validator) = read(
        &scraper
            .scrape(&sim.metrics_url("validator-1"))
            .await
            .unwrap()
            .value,
    );
    assert_eq!(validator.masterchain_out_of_sync_seconds, Some(1202.0));
    assert!(
        (host
            .filesystem("/var/ton-work")
            .unwrap()
            .used_percent()
            .unwrap()
            - 70.5)
            .abs()
            < 1e-6
    );

    sim.advance(Duration::from_secs(30 * 60));
    let (_, validator) = read(
        &scraper
            .scrape(&sim.metrics_url("validator-1"))
            .await
            .unwrap()
            .value,
    );
    assert_eq!(validator.console_up, Some(false));

    // In the HTML window: a clear InvalidResponse, after the retries, never parsed metrics.
    sim.advance(Duration::from_secs(3600));
    let error = scraper
        .scrape(&sim.metrics_url("validator-1"))
        .await
        .unwrap_err();
    let SourceError::InvalidResponse { detail } = &error else {
        panic!("expected InvalidResponse, got {error:?}");
    };
    assert!(
        detail.contains("HTML page instead of Prometheus metrics"),
        "{detail}"
    );
    assert!(detail.contains("/metrics/validator-1"), "{detail}");

    // A validator without [validators.node] gets defaults.
    let (host, validator) = read(
        &scraper
            .scrape(&sim.metrics_url("validator-2"))
            .await
            .unwrap()
            .value,
    );
    assert!(
        (host
            .filesystem("/var/ton-work")
            .unwrap()
            .used_percent()
            .unwrap()
            - 40.0)
            .abs()
            < 1e-6
    );
    assert_eq!(validator.masterchain_out_of_sync_seconds, Some(2.0));

    sim.advance(Duration::from_secs(3600));
    let back = scraper
        .scrape(&sim.metrics_url("validator-1"))
        .await
        .unwrap();
    assert!(back.value.metrics.value("node_load1").is_some());
}

#[tokio::test]
async fn unknown_node_is_rejected_not_retried() {
    let sim = start_nodes_sim().await;
    let error = scraper()
        .scrape(&sim.metrics_url("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Rejected { status: 404, message } if message.contains("check the metrics URL")),
        "{error:?}"
    );
}

#[tokio::test]
async fn json_content_type_is_rejected_and_oversized_pages_are_abandoned() {
    let server = fixed_server(200, "application/json", "{\"up\": 1}").await;
    let error = scraper()
        .scrape(&format!("http://{}/metrics", server.addr))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("expected text/plain metrics")),
        "{error:?}"
    );
    let accept = server.last_headers.lock().unwrap().clone().unwrap();
    assert!(
        accept["accept"]
            .to_str()
            .unwrap()
            .starts_with("text/plain;version=0.0.4")
    );

    let big = fixed_server(
        200,
        "text/plain; version=0.0.4",
        "a_metric_with_a_long_name 1\n",
    )
    .await;
    let small_limit = PrometheusScraper::new(1000.0, fast_policy(), 10).unwrap();
    let error = small_limit
        .scrape(&format!("http://{}/metrics", big.addr))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::InvalidResponse { detail } if detail.contains("over the limit of 10 bytes")),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_urls_are_input_errors() {
    for url in ["not a url", "ftp://host/metrics"] {
        let error = scraper().scrape(url).await.unwrap_err();
        assert!(
            matches!(error, SourceError::InvalidInput { .. }),
            "{url}: {error:?}"
        );
    }
}

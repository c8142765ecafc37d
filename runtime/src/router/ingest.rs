//! Alerts from outside: `POST /api/v2/alerts` takes Prometheus Alertmanager's payload, so a
//! Prometheus (or vmalert, Grafana, a script) can send its alerts through the same router,
//! silences and chats as the agents' own.
//!
//! An alert's identity is its label set, as in Alertmanager: the key is
//! `prometheus.<alertname>/<first 12 hex of SHA-256 over the sorted labels>`. An alert whose
//! `endsAt` has passed is a resolution. Prometheus re-sends firing alerts every minute and
//! resolved ones for 15 minutes: a re-sent firing updates the alert without a new journal
//! entry, and the resolution of an alert that is not firing is ignored.

use std::collections::BTreeMap;

use agents::{Alert, AlertStatus, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most alerts one request may carry (Prometheus sends at most 64 by default).
pub const MAX_ALERTS_PER_REQUEST: usize = 1000;
const MAX_LABELS: usize = 64;
const MAX_VALUE_BYTES: usize = 4096;

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "endsAt")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
}

/// What one `POST /api/v2/alerts` did.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Received {
    /// Alerts that started firing (new to the router).
    pub firing: usize,
    /// Firing alerts the router already had (refreshed).
    pub refreshed: usize,
    /// Firing alerts that resolved.
    pub resolved: usize,
    /// Resolutions of alerts that were not firing (ignored).
    pub ignored: usize,
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The router's key for a label set.
pub fn alert_key(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update([0xff]);
        hasher.update(value.as_bytes());
        hasher.update([0xff]);
    }
    let digest = hex::encode(hasher.finalize());
    let name = labels.get("alertname").map_or("", String::as_str);
    format!("prometheus.{name}/{}", &digest[..12])
}

fn severity(labels: &BTreeMap<String, String>) -> Severity {
    match labels
        .get("severity")
        .map(|value| value.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical" | "page" | "error" | "high" | "fatal") => Severity::Critical,
        Some("info" | "informational" | "none" | "low") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Checks a request and turns it into alert events; every problem is named by its place
/// (`alerts[3].labels.alertname`), and one bad alert refuses the whole request so a sender
/// retries it whole.
pub fn convert(
    posted: Vec<PostableAlert>,
    sender: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Alert>, String> {
    if posted.len() > MAX_ALERTS_PER_REQUEST {
        return Err(format!(
            "{} alerts in one request; send at most {MAX_ALERTS_PER_REQUEST}",
            posted.len()
        ));
    }
    let mut problems = Vec::new();
    let mut alerts = Vec::with_capacity(posted.len());
    for (index, alert) in posted.into_iter().enumerate() {
        let place = format!("alerts[{index}]");
        let before = problems.len();
        match alert.labels.get("alertname") {
            Some(name) if !name.trim().is_empty() => {}
            _ => problems.push(format!("{place}.labels.alertname: missing or empty")),
        }
        if alert.labels.len() > MAX_LABELS {
            problems.push(format!(
                "{place}.labels: {} labels, at most {MAX_LABELS}",
                alert.labels.len()
            ));
        }
        for (name, value) in alert.labels.iter().chain(&alert.annotations) {
            if !valid_label_name(name) {
                problems.push(format!(
                    "{place}: {name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                ));
            }
            if value.len() > MAX_VALUE_BYTES {
                problems.push(format!(
                    "{place}.{name}: {} bytes, at most {MAX_VALUE_BYTES}",
                    value.len()
                ));
            }
        }
        if let (Some(starts), Some(ends)) = (alert.starts_at, alert.ends_at)
            && ends < starts
        {
            problems.push(format!("{place}: endsAt is before startsAt"));
        }
        if problems.len() > before {
            continue;
        }
        let status = match alert.ends_at {
            Some(ends) if ends <= now => AlertStatus::Resolved,
            _ => AlertStatus::Firing,
        };
        let name = alert.labels.get("alertname").cloned().unwrap_or_default();
        let summary = alert
            .annotations
            .get("summary")
            .or_else(|| alert.annotations.get("description"))
            .cloned()
            .unwrap_or_else(|| match alert.labels.get("instance") {
                Some(instance) => format!("{name} on {instance}"),
                None => name.clone(),
            });
        let at = match status {
            AlertStatus::Resolved => alert.ends_at.unwrap_or(now),
            AlertStatus::Firing => now,
        };
        alerts.push(Alert {
            key: alert_key(&alert.labels),
            rule: name,
            status,
            severity: severity(&alert.labels),
            summary,
            evidence: serde_json::json!({
                "annotations": alert.annotations,
                "generator_url": alert.generator_url,
                "sent_by": sender,
            }),
            starts_at: alert.starts_at.unwrap_or(now),
            at,
            observed_at: now,
            labels: alert.labels,
        });
    }
    if problems.is_empty() {
        Ok(alerts)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(labels: &[(&str, &str)]) -> PostableAlert {
        PostableAlert {
            labels: labels
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..PostableAlert::default()
        }
    }

    #[test]
    fn label_sets_name_alerts_and_ends_resolve_them() {
        let now = Utc::now();
        let mut cpu = posted(&[
            ("alertname", "HighCPU"),
            ("instance", "node-1:9100"),
            ("severity", "page"),
        ]);
        cpu.annotations
            .insert("summary".into(), "CPU above 90 % for 10 minutes".into());
        let mut disk = posted(&[("alertname", "DiskFull"), ("instance", "node-1:9100")]);
        disk.starts_at = Some(now - chrono::Duration::hours(1));
        disk.ends_at = Some(now - chrono::Duration::minutes(1));
        let alerts = convert(vec![cpu.clone(), disk], "prometheus", now).unwrap();
        assert_eq!(alerts[0].status, AlertStatus::Firing);
        assert_eq!(alerts[0].severity, Severity::Critical);
        assert_eq!(alerts[0].summary, "CPU above 90 % for 10 minutes");
        assert!(
            alerts[0].key.starts_with("prometheus.HighCPU/"),
            "{}",
            alerts[0].key
        );
        assert_eq!(alerts[0].label("instance"), "node-1:9100");
        assert_eq!(alerts[1].status, AlertStatus::Resolved);
        assert_eq!(alerts[1].severity, Severity::Warning);
        assert_eq!(alerts[1].summary, "DiskFull on node-1:9100");
        // Same labels, same key; another label value, another alert.
        let again = convert(vec![cpu.clone()], "prometheus", now).unwrap();
        assert_eq!(again[0].key, alerts[0].key);
        cpu.labels.insert("instance".into(), "node-2:9100".into());
        let other = convert(vec![cpu], "prometheus", now).unwrap();
        assert_ne!(other[0].key, alerts[0].key);
    }

    #[test]
    fn bad_alerts_are_named_by_place() {
        let now = Utc::now();
        let mut backwards = posted(&[("alertname", "X")]);
        backwards.starts_at = Some(now);
        backwards.ends_at = Some(now - chrono::Duration::minutes(5));
        let error = convert(
            vec![
                posted(&[("alertname", "Fine")]),
                posted(&[("instance", "a")]),
                posted(&[("alertname", "Y"), ("bad-name", "v")]),
                backwards,
            ],
            "prometheus",
            now,
        )
        .unwrap_err();
        assert!(
            error.contains("alerts[1].labels.alertname: missing"),
            "{error}"
        );
        assert!(
            error.contains("alerts[2]: \"bad-name\" is not a label name"),
            "{error}"
        );
        assert!(
            error.contains("alerts[3]: endsAt is before startsAt"),
            "{error}"
        );
        assert!(!error.contains("alerts[0]"), "{error}");
        let many = vec![posted(&[("alertname", "A")]); MAX_ALERTS_PER_REQUEST + 1];
        assert!(
            convert(many, "prometheus", now)
                .unwrap_err()
                .contains("at most 1000")
        );
    }
}

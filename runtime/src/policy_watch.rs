//! The policy set in force, and its hot reload.
//!
//! The daemon loads `daemon.policies_dir` at start (a broken set stops the start). Then it
//! re-reads the directory every `daemon.policy_reload_interval`: a changed set that validates
//! replaces the old one; one that does not is rejected, the old set stays in force, an alert
//! fires and the journal says so. A later good set resolves the alert.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agents::alert::{ActiveAlert, active_key};
use agents::audit::Auditor;
use agents::{Alert, AlertStatus, Severity};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use policies::{PolicyEngine, PolicyProblem};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::supervisor::AlertSink;

/// SHA-256 over the names and contents of the schema and every `*.cedar` file.
pub fn fingerprint(dir: &Path) -> std::io::Result<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "cedar" || ext == "cedarschema")
        })
        .collect();
    paths.sort();
    let mut hasher = Sha256::new();
    for path in paths {
        hasher.update(
            path.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hasher.update([0]);
        hasher.update(std::fs::read(&path)?);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What `status` shows about the policies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub dir: String,
    pub policies: usize,
    pub files: usize,
    pub fingerprint: String,
    pub loaded_at: DateTime<Utc>,
    /// Why the newest change on disk was refused, while the older set stays in force.
    pub rejected_change: Option<Vec<String>>,
}

/// What a reload check did.
#[derive(Clone, Debug, PartialEq)]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded { policies: usize },
    Rejected { problems: Vec<String> },
}

struct Current {
    engine: Arc<PolicyEngine>,
    status: PolicyStatus,
    /// Fingerprint of the newest set seen on disk (applied or rejected).
    seen: String,
}

/// The policy set in force; shared by the HTTP API, the gate and the watcher.
pub struct PolicyHolder {
    dir: PathBuf,
    current: RwLock<Current>,
    auditor: Auditor,
    alerts: AlertSink,
    /// One reload at a time (the timer and the API may both ask).
    reloading: tokio::sync::Mutex<()>,
}

fn render(problems: &[PolicyProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

/// A broken policy set at start: the daemon does not run on a set nobody checked.
#[derive(Debug)]
pub struct InvalidPolicies {
    pub dir: PathBuf,
    pub problems: Vec<String>,
}

impl std::fmt::Display for InvalidPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "policies in {} have {} problem{}:",
            self.dir.display(),
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidPolicies {}

impl PolicyHolder {
    /// Reads and validates the set (blocking; at start, before anything else runs).
    pub fn read(dir: &Path) -> Result<(PolicyEngine, String), InvalidPolicies> {
        let seen = fingerprint(dir).unwrap_or_default();
        PolicyEngine::load(dir)
            .map(|engine| (engine, seen))
            .map_err(|problems| InvalidPolicies {
                dir: dir.to_path_buf(),
                problems: render(&problems),
            })
    }

    /// Puts a set read by [`PolicyHolder::read`] in force and journals it.
    pub async fn start(
        dir: &Path,
        (engine, seen): (PolicyEngine, String),
        auditor: Auditor,
        alerts: AlertSink,
    ) -> anyhow::Result<Arc<PolicyHolder>> {
        let status = PolicyStatus {
            dir: dir.display().to_string(),
            policies: engine.summary().policies,
            files: engine.summary().files,
            fingerprint: seen.clone(),
            loaded_at: Utc::now(),
            rejected_change: None,
        };
        auditor
            .record("runtime", "policy.loaded", &status.dir, &status)
            .await?;
        Ok(Arc::new(PolicyHolder {
            dir: dir.to_path_buf(),
            current: RwLock::new(Current {
                engine: Arc::new(engine),
                status,
                seen,
            }),
            auditor,
            alerts,
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// The set in force.
    pub fn engine(&self) -> Arc<PolicyEngine> {
        self.current.read().engine.clone()
    }

    pub fn status(&self) -> PolicyStatus {
        self.current.read().status.clone()
    }

    fn alert_key(&self) -> String {
        "runtime.policy_reload/policies".to_owned()
    }

    /// Re-reads the directory; applies a valid change, rejects an invalid one.
    pub async fn reload(&self) -> ReloadOutcome {
        let _one_at_a_time = self.reloading.lock().await;
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let seen = fingerprint(&dir)
                .map_err(|error| vec![format!("cannot read {}: {error}", dir.display())])?;
            Ok::<_, Vec<String>>((seen, dir))
        })
        .await;
        let (seen, dir) = match loaded {
            Ok(Ok(found)) => found,
            Ok(Err(problems)) => return self.reject(String::new(), problems).await,
            Err(error) => return self.reject(String::new(), vec![error.to_string()]).await,
        };
        if seen == self.current.read().seen {
            return ReloadOutcome::Unchanged;
        }
        let result = tokio::task::spawn_blocking(move || PolicyEngine::load(&dir)).await;
        match result {
            Ok(Ok(engine)) => {
                let policies = engine.summary().policies;
                let status = PolicyStatus {
                    dir: self.dir.display().to_string(),
                    policies,
                    files: engine.summary().files,
                    fingerprint: seen.clone(),
                    loaded_at: Utc::now(),
                    rejected_change: None,
                };
                // Audit first: the change is on record before it takes effect.
                if let Err(error) = self
                    .auditor
                    .record("runtime", "policy.reloaded", &status.dir, &status)
                    .await
                {
                    tracing::error!(%error, "cannot journal a policy reload; keeping the old set");
                    return ReloadOutcome::Rejected {
                        problems: vec![format!("the journal refused the change: {error}")],
                    };
                }
                {
                    let mut current = self.current.write();
                    current.engine = Arc::new(engine);
                    current.status = status;
                    current.seen = seen;
                }
                tracing::info!(policies, dir = %self.dir.display(), "policies reloaded");
                self.resolve_alert().await;
                ReloadOutcome::Reloaded { policies }
            }
            Ok(Err(problems)) => self.reject(seen, render(&problems)).await,
            Err(error) => self.reject(seen, vec![error.to_string()]).await,
        }
    }

    async fn reject(&self, seen: String, problems: Vec<String>) -> ReloadOutcome {
        tracing::error!(dir = %self.dir.display(), problems = ?problems, "policy change rejected; the previous set stays in force");
        {
            let mut current = self.current.write();
            current.seen = seen.clone();
            current.status.rejected_change = Some(problems.clone());
        }
        let body = serde_json::json!({
            "dir": self.dir.display().to_string(),
            "fingerprint": seen,
            "problems": problems,
            "in_force": self.current.read().status.fingerprint,
        });
        if let Err(error) = self
            .auditor
            .record(
                "runtime",
                "policy.reload_rejected",
                &self.dir.display().to_string(),
                &body,
            )
            .await
        {
            tracing::error!(%error, "cannot journal a rejected policy change");
        }
        let now = Utc::now();
        let key = self.alert_key();
        let alert = Alert {
            key: key.clone(),
            rule: "policy_reload".to_owned(),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            summary: format!(
                "policy change in {} rejected ({} problem{}); the previous policies stay in force: {}",
                self.dir.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.first().cloned().unwrap_or_default()
            ),
            labels: [
                ("domain".to_owned(), "runtime".to_owned()),
                ("component".to_owned(), "policies".to_owned()),
            ]
            .into_iter()
            .collect(),
            evidence: body,
            starts_at: now,
            at: now,
            observed_at: now,
        };
        self.raise(alert).await;
        ReloadOutcome::Rejected { problems }
    }

    async fn raise(&self, alert: Alert) {
        let state_key = active_key(&alert.key);
        let kind = match alert.status {
            AlertStatus::Firing => "alert.firing",
            AlertStatus::Resolved => "alert.resolved",
        };
        if let Err(error) = self
            .auditor
            .record("runtime", kind, &alert.key, &alert)
            .await
        {
            tracing::error!(%error, "cannot journal a policy alert");
        }
        let state = self.auditor.store().state();
        let stored = match alert.status {
            AlertStatus::Firing => state.put(
                &state_key,
                &ActiveAlert {
                    alert: alert.clone(),
                    reference: None,
                },
            ),
            AlertStatus::Resolved => state.delete(&state_key),
        };
        if let Err(error) = stored {
            tracing::error!(%error, "cannot store policy alert state");
        }
        let _ = self.alerts.send(alert);
    }

    async fn resolve_alert(&self) {
        let key = self.alert_key();
        let Ok(Some(active)) = self
            .auditor
            .store()
            .state()
            .get::<ActiveAlert>(&active_key(&key))
        else {
            return;
        };
        let now = Utc::now();
        self.raise(Alert {
            status: AlertStatus::Resolved,
            summary: format!(
                "policies in {} are valid again and in force",
                self.dir.display()
            ),
            at: now,
            observed_at: now,
            ..active.alert
        })
        .await;
    }
}

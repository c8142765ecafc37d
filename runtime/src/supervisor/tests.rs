use std::sync::atomic::AtomicU32;

use agents::health::HealthState;
use agents::{TickFuture, TickReport};

use super::*;

fn config() -> SupervisorConfig {
    SupervisorConfig {
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        crash_loop_restarts: 5,
        crash_loop_window: Duration::from_secs(600),
    }
}

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    let mut tracker = RestartTracker::new(SupervisorConfig {
        backoff_max: Duration::from_secs(5),
        crash_loop_restarts: 10,
        ..config()
    });
    let now = Instant::now();
    let delays: Vec<Duration> = (0..5)
        .map(|_| match tracker.on_crash(now, 1.0) {
            RestartDecision::RestartAfter(delay) => delay,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        delays,
        [1, 2, 4, 5, 5].map(Duration::from_secs).to_vec(),
        "full jitter draw gives the capped exponential"
    );
    match tracker.on_crash(now, 0.0) {
        RestartDecision::RestartAfter(delay) => {
            assert_eq!(delay, Duration::from_millis(2500), "zero jitter halves it")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn crash_loop_gives_up_and_old_crashes_age_out() {
    let mut tracker = RestartTracker::new(config());
    let start = Instant::now();
    for i in 0..5 {
        assert!(matches!(
            tracker.on_crash(start + Duration::from_secs(i), 0.5),
            RestartDecision::RestartAfter(_)
        ));
    }
    assert_eq!(
        tracker.on_crash(start + Duration::from_secs(10), 0.5),
        RestartDecision::GiveUp {
            restarts_in_window: 5
        }
    );
    // Eleven minutes later the early crashes no longer count.
    let later = start + Duration::from_secs(660);
    assert!(matches!(
        tracker.on_crash(later, 0.5),
        RestartDecision::RestartAfter(_)
    ));
    assert_eq!(tracker.total(), 6);
}

struct Flaky {
    panics_left: Arc<AtomicU32>,
    ticks: Arc<AtomicU32>,
}

impl DomainAgent for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn tick(&mut self) -> TickFuture<'_> {
        let panics_left = self.panics_left.clone();
        let ticks = self.ticks.clone();
        Box::pin(async move {
            ticks.fetch_add(1, Ordering::SeqCst);
            let left = panics_left.load(Ordering::SeqCst);
            if left > 0 {
                panics_left.store(left - 1, Ordering::SeqCst);
                panic!("injected failure");
            }
            Ok(TickReport::default())
        })
    }
}

struct Harness {
    context: AgentContext,
    alerts: mpsc::UnboundedReceiver<Alert>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(dir.path()).unwrap();
    let telemetry = Telemetry::default();
    let (sink, alerts) = mpsc::unbounded_channel();
    Harness {
        context: AgentContext {
            health: HealthRegistry::new(),
            telemetry: telemetry.clone(),
            auditor: Auditor::new(store, telemetry),
            alerts: sink,
        },
        alerts,
        _dir: dir,
    }
}

fn flaky_factory(panics: u32) -> (AgentFactory, Arc<AtomicU32>) {
    let panics_left = Arc::new(AtomicU32::new(panics));
    let ticks = Arc::new(AtomicU32::new(0));
    let factory_ticks = ticks.clone();
    let factory: AgentFactory = Arc::new(move || {
        Ok(Box::new(Flaky {
            panics_left: panics_left.clone(),
            ticks: factory_ticks.clone(),
        }) as Box<dyn DomainAgent>)
    });
    (factory, ticks)
}

#[test]
fn a_panicking_agent_is_restarted_and_counted() {
    actix_rt::System::new().block_on(async {
        tokio::time::pause();
        let mut harness = harness();
        let (factory, _) = flaky_factory(2);
        let supervisor = AgentSupervisor::new(
            "flaky",
            factory,
            Duration::from_secs(30),
            config(),
            harness.context.clone(),
        );
        let starts = supervisor.starts();
        let addr = supervisor.start();
        // The first tick fires at once and panics; so does the first tick after the restart.
        // Ask for ticks until one succeeds: each request waits for the restarted agent.
        let mut answers = Vec::new();
        loop {
            let answer = addr.send(TickNow).await.unwrap();
            let ok = answer.is_ok();
            answers.push(answer);
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_secs(5)).await; // paused clock: no real wait
        }
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "one start and two restarts"
        );
        let health = harness.context.health.actor("flaky").unwrap();
        assert_eq!(health.restarts, 2);
        assert_eq!(health.state, HealthState::Healthy);
        assert!(
            health
                .last_error
                .as_deref()
                .unwrap()
                .contains("injected failure"),
            "{health:?}"
        );
        assert!(
            harness.alerts.try_recv().is_err(),
            "no alert for restarts that recover"
        );
        addr.send(Shutdown).await.unwrap();
        let crashes = harness
            .context
            .auditor
            .store()
            .journal()
            .query(&memory::JournalQuery {
                kind: Some("actor.crashed".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(crashes.len(), 2, "each crash is journaled");
    });
}

#[test]
fn a_crash_loop_marks_the_agent_failed_and_alerts_once() {
    actix_rt::System::new().block_on(async {
        tokio::time::pause();
        let mut harness = harness();
        let (factory, ticks) = flaky_factory(u32::MAX);
        let supervisor = AgentSupervisor::new(
            "flaky",
            factory,
            Duration::from_secs(30),
            config(),
            harness.context.clone(),
        );
        let starts = supervisor.starts();
        let addr = supervisor.start();
        let alert = harness.alerts.recv().await.unwrap();
        assert_eq!(alert.key, "runtime.crash_loop/flaky");
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(
            starts.load(Ordering::SeqCst),
            6,
            "one start and five restarts"
        );
        assert_eq!(ticks.load(Ordering::SeqCst), 6);
        let health = harness.context.health.actor("flaky").unwrap();
        assert_eq!(health.state, HealthState::Failed);
        assert_eq!(health.restarts, 5);
        // It stays down: an hour later nothing restarted it.
        tokio::time::sleep(Duration::from_secs(3600)).await; // paused clock
        assert_eq!(starts.load(Ordering::SeqCst), 6);
        let answer = addr.send(TickNow).await.unwrap();
        assert!(answer.unwrap_err().contains("crash loop"));
        assert!(harness.alerts.try_recv().is_err(), "alerted once");
        let stored = harness
            .context
            .auditor
            .store()
            .state()
            .get::<agents::alert::ActiveAlert>("alerts/active/runtime.crash_loop/flaky")
            .unwrap();
        assert!(
            stored.is_some(),
            "the firing alert is remembered for status"
        );

        // The next run of the daemon (a healthy agent this time) resolves it.
        let (factory, _) = flaky_factory(0);
        let addr = AgentSupervisor::new(
            "flaky",
            factory,
            Duration::from_secs(30),
            config(),
            harness.context.clone(),
        )
        .start();
        let resolved = harness.alerts.recv().await.unwrap();
        assert_eq!(resolved.key, "runtime.crash_loop/flaky");
        assert_eq!(resolved.status, AlertStatus::Resolved);
        addr.send(Shutdown).await.unwrap();
    });
}

struct Broken;

impl DomainAgent for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    fn tick(&mut self) -> TickFuture<'_> {
        Box::pin(async {
            Err(AgentError::Fatal {
                agent: "broken".into(),
                message: "state is unreadable".into(),
            })
        })
    }
}

#[test]
fn a_fatal_error_is_restarted_like_a_panic() {
    actix_rt::System::new().block_on(async {
        tokio::time::pause();
        let mut harness = harness();
        let factory: AgentFactory = Arc::new(|| Ok(Box::new(Broken) as Box<dyn DomainAgent>));
        let supervisor = AgentSupervisor::new(
            "broken",
            factory,
            Duration::from_secs(30),
            config(),
            harness.context.clone(),
        );
        let starts = supervisor.starts();
        let _addr = supervisor.start();
        let alert = harness.alerts.recv().await.unwrap();
        assert_eq!(alert.key, "runtime.crash_loop/broken");
        assert_eq!(starts.load(Ordering::SeqCst), 6);
        let health = harness.context.health.actor("broken").unwrap();
        assert!(
            health
                .last_error
                .as_deref()
                .unwrap()
                .contains("state is unreadable"),
            "{health:?}"
        );
    });
}

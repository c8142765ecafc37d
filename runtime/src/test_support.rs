//! Test fixtures shared by the runtime's unit tests.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use agents::Alert;
use agents::audit::Auditor;
use agents::telemetry::Telemetry;
use tokio::sync::mpsc;

use crate::config::{AccessConfig, UserConfig};
use crate::executors::{CommandProgramConfig, ExecutorRegistry, ExecutorsConfig};
use crate::gate::Gatekeeper;
use crate::policy_watch::PolicyHolder;

/// A gate over the shipped policies, on a fresh store in a temporary directory.
pub(crate) struct GateFixture {
    pub dir: tempfile::TempDir,
    pub store: memory::Store,
    pub auditor: Auditor,
    pub gate: Gatekeeper,
    /// What the gate and the policy holder alert.
    pub alerts: mpsc::UnboundedReceiver<Alert>,
}

/// `program` run as `program args...` with a 10 s timeout.
pub(crate) fn program(program: &str, args: Vec<String>) -> CommandProgramConfig {
    CommandProgramConfig {
        program: PathBuf::from(program),
        args,
        timeout: Duration::from_secs(10),
        max_output_bytes: 4096,
    }
}

/// The executors are made from the fixture's directory; `users` are the people it knows.
pub(crate) async fn gate_fixture(
    executors: impl FnOnce(&Path) -> ExecutorsConfig,
    users: Vec<UserConfig>,
) -> GateFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = memory::Store::open(&dir.path().join("data")).unwrap();
    let auditor = Auditor::new(store.clone(), Telemetry::default());
    let (sink, alerts) = mpsc::unbounded_channel();
    let policies_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let holder = PolicyHolder::start(
        &policies_dir,
        PolicyHolder::read(&policies_dir).unwrap(),
        auditor.clone(),
        sink.clone(),
    )
    .await
    .unwrap();
    // As the daemon does: the expense executor books into this store's ledger.
    let registry = ExecutorRegistry::new(&executors(dir.path()), sink.clone())
        .unwrap()
        .with(std::sync::Arc::new(crate::executors::ExpenseExecutor::new(
            store.clone(),
            std::sync::Arc::new(agents::finance::FinanceConfig::default()),
        )));
    let access = AccessConfig {
        users,
        ..AccessConfig::default()
    };
    let gate = Gatekeeper::new(
        holder,
        auditor.clone(),
        std::sync::Arc::new(registry),
        access,
        sink,
    );
    GateFixture {
        dir,
        store,
        auditor,
        gate,
        alerts,
    }
}

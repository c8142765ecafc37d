//! Shared helpers: the built binary, child processes that report readiness, configs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use runtime::config::Config;
use tools::sim::{Scenario, SimCoin};

/// Root of the workspace (policies/ and prompts/ live there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of an up-to-date `command-center` binary (built once per test run).
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "runtime",
                    "--bin",
                    "command-center",
                ])
                .current_dir(workspace_root())
                .status()
                .expect("cargo build of command-center");
            assert!(status.success(), "building command-center failed");
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/it-<hash> -> target/<profile>/command-center
            let dir = exe.parent().unwrap().parent().unwrap();
            let path = dir.join("command-center");
            assert!(path.exists(), "{} missing", path.display());
            path
        })
        .clone()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scenario with flat prices and no faults: tests move prices themselves.
pub fn quiet_scenario() -> Scenario {
    let coin = |id: &str, symbol: &str, price: f64| SimCoin {
        id: id.into(),
        symbol: symbol.into(),
        price_usd: price,
        volatility_percent_per_hour: 0.0,
    };
    Scenario {
        name: "quiet".into(),
        seed: 1,
        speed: 1.0,
        start: None,
        coins: vec![
            coin("the-open-network", "TON", 5.0),
            coin("bitcoin", "BTC", 67_000.0),
            coin("ethereum", "ETH", 3_500.0),
        ],
        validators: Vec::new(),
        events: Vec::new(),
        faults: Vec::new(),
        pools: Vec::new(),
        cocoon_nodes: Vec::new(),
        jettons: Vec::new(),
    }
}

/// The embedded defaults pointed at `sim`, with fast retries and a private data directory.
pub fn config_for(sim_coingecko: &str, data_dir: &Path) -> Config {
    let mut config = runtime::config::load(&runtime::config::ConfigSource::Embedded, &[])
        .expect("embedded config");
    config.daemon.data_dir = data_dir.to_path_buf();
    config.daemon.http_listen = "127.0.0.1:0".parse().unwrap();
    config.daemon.policies_dir = workspace_root().join("policies");
    config.daemon.prompts_dir = workspace_root().join("prompts");
    let coingecko = &mut config.sources.coingecko;
    coingecko.base_url = sim_coingecko.to_owned();
    coingecko.requests_per_second = 1000.0;
    coingecko.retry.max_attempts = 2;
    coingecko.retry.timeout = Duration::from_millis(250);
    coingecko.retry.backoff_initial = Duration::from_millis(1);
    coingecko.retry.backoff_max = Duration::from_millis(5);
    // Ticks come from the tests, not the clock.
    config.agents.market.interval = Duration::from_secs(3600);
    config.agents.market.poll_on_start = false;
    config
}

/// Points toncenter (and its operator APIs) and tonapi at `sim`, with fast retries: every chain
/// read of the validators agent goes to the simulated world.
pub fn point_chain_at(config: &mut Config, sim: &tools::sim::SimHandle) {
    let toncenter = &mut config.sources.toncenter;
    toncenter.base_url = sim.toncenter_url();
    toncenter.elections_url = sim.elections_url();
    toncenter.qos_url = sim.qos_url();
    toncenter.requests_per_second = 1000.0;
    toncenter.retry.max_attempts = 1;
    toncenter.retry.timeout = Duration::from_secs(2);
    toncenter.retry.backoff_initial = Duration::from_millis(1);
    toncenter.retry.backoff_max = Duration::from_millis(5);
    config.sources.tonapi.base_url = sim.tonapi_url();
    config.sources.tonapi.retry = config.sources.toncenter.retry.clone();
}

/// A running `command-center` child whose stderr (JSON logs) is read line by line.
pub struct Daemon {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Daemon {
    /// Starts `command-center --log-format json <args>` in `cwd`.
    pub fn spawn(cwd: &Path, args: &[&str]) -> Daemon {
        let mut child = Command::new(binary())
            .arg("--log-format")
            .arg("json")
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn command-center");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (bounded) for a log line whose `message` equals `message`; returns it parsed.
    pub fn wait_for(&mut self, message: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                        && value["message"] == message
                    {
                        return value;
                    }
                }
                Err(_) => panic!(
                    "no {message:?} log line within {timeout:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Waits (bounded) for a log line whose `message` starts with `prefix`.
    pub fn wait_for_prefix(&mut self, prefix: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                        && value["message"]
                            .as_str()
                            .is_some_and(|message| message.starts_with(prefix))
                    {
                        return value;
                    }
                }
                Err(_) => panic!(
                    "no log line starting {prefix:?} within {timeout:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Sends a signal (SIGTERM, SIGKILL).
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        #[allow(unsafe_code)]
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits (bounded) for the process to exit; returns its exit code (None when signalled).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Collect the remaining log lines.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "command-center did not exit within {timeout:?}"
            );
            // Poll the child's state between short waits on its log (no fixed sleep).
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.log.push(line);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command-center <args>` to completion in `cwd`: (exit code, stdout, stderr).
pub fn run_cli(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    run_cli_env(cwd, args, &[])
}

/// [`run_cli`] with extra environment variables.
pub fn run_cli_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run command-center");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A config file for the binary: market agent disabled unless `coingecko_url` is given.
pub fn write_config(dir: &Path, port: u16, coingecko_url: Option<&str>) -> PathBuf {
    let root = workspace_root();
    let market = match coingecko_url {
        Some(url) => format!(
            "[sources.coingecko]\nbase_url = \"{url}\"\nrequests_per_second = 100.0\n\n[sources.coingecko.retry]\ntimeout = \"500ms\"\nmax_attempts = 2\nbackoff_initial = \"1ms\"\nbackoff_max = \"5ms\"\n\n[agents.market]\ninterval = \"200ms\"\n"
        ),
        None => "[agents.market]\nenabled = false\n".to_owned(),
    };
    let text = format!(
        "[daemon]\ndata_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{port}\"\npolicies_dir = \"{}\"\nprompts_dir = \"{}\"\ncheckpoint_interval = \"1s\"\n\n{market}",
        dir.join("data").display(),
        root.join("policies").display(),
        root.join("prompts").display(),
    );
    let path = dir.join("command-center.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A simulated world served from a background thread (for tests that are not async).
pub fn spawn_sim() -> tools::sim::SimHandle {
    spawn_sim_with(quiet_scenario())
}

/// A simulated world of `scenario` served from a background thread.
pub fn spawn_sim_with(scenario: Scenario) -> tools::sim::SimHandle {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let sim = tools::sim::SimWorld::start(scenario, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            sender.send(sim).unwrap();
            futures::future::pending::<()>().await
        });
    });
    receiver.recv_timeout(Duration::from_secs(30)).unwrap()
}

/// One poll of the market agent, a minute of simulated time after the previous one
/// (CoinGecko refreshes simple/price every 60 s; samples are keyed by its timestamp).
pub async fn tick(
    sim: &tools::sim::SimHandle,
    market: &actix::Addr<runtime::supervisor::AgentSupervisor>,
) -> Result<Result<runtime::supervisor::TickSummary, String>, actix::MailboxError> {
    sim.advance(Duration::from_secs(60));
    market.send(runtime::supervisor::TickNow).await
}

/// An actix System on a multi-threaded tokio runtime, as the daemon runs.
pub fn system() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A webhook receiver named "ops" pointing at the simulated world's sink.
pub fn ops_webhook(
    sim: &tools::sim::SimHandle,
    secret: Option<tools::secret::Secret>,
) -> runtime::config::WebhookReceiverConfig {
    runtime::config::WebhookReceiverConfig {
        name: "ops".into(),
        url: sim.webhook_url(),
        secret,
        secret_file: None,
        timeout: Duration::from_secs(2),
        max_attempts: 3,
    }
}

/// A simulated validator with a wallet and (when `stake_ton > 0`) a place in the set.
pub fn sim_validator(
    name: &str,
    address: &str,
    balance_ton: f64,
    stake_ton: f64,
) -> tools::sim::SimValidator {
    tools::sim::SimValidator {
        name: name.into(),
        address: address.into(),
        balance_ton,
        stake_ton,
        seqno: 0,
        wallet_type: None,
        node: None,
        rotate_keys_at: None,
    }
}

/// Allows the command program `name` as a harmless `/bin/echo` of `args`.
pub fn echo_program(config: &mut Config, name: &str, args: &[&str]) {
    config.executors.command.programs.insert(
        name.to_owned(),
        serde_json::from_value(serde_json::json!({ "program": "/bin/echo", "args": args }))
            .expect("a command program"),
    );
}

/// Writes `command-center.toml` for a daemon run as a child: data in `dir/data`, the API on
/// `port`, the market agent off, and two people, alice (operator) and carol (treasurer),
/// whose API tokens are `alice_token` and `carol_token`; `extra` is appended as it is.
pub fn write_team_config(dir: &Path, port: u16, alice_token: &str, carol_token: &str, extra: &str) {
    use sha2::Digest as _;
    let hash = |token: &str| hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let root = workspace_root();
    let text = format!(
        r#"[daemon]
data_dir = "{data}"
http_listen = "127.0.0.1:{port}"
policies_dir = "{policies}"
prompts_dir = "{prompts}"

[agents.market]
enabled = false

[[access.users]]
name = "alice"
roles = ["operator"]
token_sha256 = "{alice}"

[[access.users]]
name = "carol"
roles = ["treasurer"]
token_sha256 = "{carol}"
{extra}"#,
        data = dir.join("data").display(),
        policies = root.join("policies").display(),
        prompts = root.join("prompts").display(),
        alice = hash(alice_token),
        carol = hash(carol_token),
    );
    std::fs::write(dir.join("command-center.toml"), text).expect("write the configuration");
}

/// A person of `[access]`: their roles and, if given, the hash of their API token.
pub fn user(name: &str, roles: &[&str], token: Option<&str>) -> runtime::config::UserConfig {
    runtime::config::UserConfig {
        name: name.into(),
        roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        token_sha256: token.map(|token| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token))),
        telegram_id: None,
        slack_id: None,
    }
}

/// An alert receiver named `name` delivering to the `[[notify.webhooks]]` entry of that name.
pub fn webhook_receiver(name: &str) -> runtime::config::AlertReceiverConfig {
    runtime::config::AlertReceiverConfig {
        name: name.into(),
        kind: runtime::config::ReceiverKind::Webhook,
        webhook: Some(name.into()),
        chat: None,
        channel: None,
        to: Vec::new(),
    }
}

/// The command program `restart_validator`: it touches `marker`, so a test sees whether it ran.
pub fn touch_program(config: &mut Config, marker: &Path) {
    config.executors.command.programs.insert(
        "restart_validator".to_owned(),
        runtime::executors::CommandProgramConfig {
            program: PathBuf::from("/usr/bin/touch"),
            args: vec![marker.display().to_string()],
            timeout: Duration::from_secs(10),
            max_output_bytes: 4096,
        },
    );
}

/// `[reasoner]` on, talking to the scripted model with `api_key`.
pub fn scripted_reasoner(
    config: &mut Config,
    model: &tools::sim::openai::ScriptedOpenAi,
    api_key: &str,
) {
    config.reasoner.enabled = true;
    config.reasoner.base_url = model.base_url();
    config.reasoner.model = "scripted".into();
    config.reasoner.api_key = Some(tools::secret::Secret::new(api_key));
}

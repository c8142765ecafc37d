//! Configuration: embedded defaults, then `command-center.toml`, then environment variables
//! (`COMMAND_CENTER__SECTION__KEY=value`). Secrets come only from the environment or from files
//! named by `*_file` keys. Every problem is reported at once, with its key path and, where the
//! file is at fault, its line.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agents::market::MarketAgentConfig;
use agents::validators::ValidatorsAgentConfig;
use serde::{Deserialize, Serialize};
use tools::coingecko::CoinGeckoPlan;
use tools::secret::Secret;

/// The commented example configuration; also the embedded defaults.
pub const EXAMPLE_CONFIG: &str = include_str!("../command-center.example.toml");
/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "COMMAND_CENTER__";
/// Default file name looked up in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "command-center.toml";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8750))
}
fn default_log_level() -> String {
    "info".to_owned()
}
fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_policy_reload_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_policies_dir() -> PathBuf {
    PathBuf::from("policies")
}
fn default_prompts_dir() -> PathBuf {
    PathBuf::from("prompts")
}

/// `[daemon]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default = "default_checkpoint_interval", with = "agents::duration")]
    pub checkpoint_interval: Duration,
    #[serde(default = "default_shutdown_grace", with = "agents::duration")]
    pub shutdown_grace: Duration,
    #[serde(default = "default_policies_dir")]
    pub policies_dir: PathBuf,
    /// How often the policy directory is re-read; a valid change takes effect, an invalid one
    /// is rejected with an alert while the previous set stays in force.
    #[serde(default = "default_policy_reload_interval", with = "agents::duration")]
    pub policy_reload_interval: Duration,
    #[serde(default = "default_prompts_dir")]
    pub prompts_dir: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            http_listen: default_http_listen(),
            log_format: LogFormat::Text,
            log_level: default_log_level(),
            checkpoint_interval: default_checkpoint_interval(),
            shutdown_grace: default_shutdown_grace(),
            policies_dir: default_policies_dir(),
            policy_reload_interval: default_policy_reload_interval(),
            prompts_dir: default_prompts_dir(),
        }
    }
}

fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(300)
}
fn default_crash_loop_restarts() -> u32 {
    5
}
fn default_crash_loop_window() -> Duration {
    Duration::from_secs(600)
}

/// `[supervisor]`: restart policy of every domain agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    #[serde(default = "default_backoff_initial", with = "agents::duration")]
    pub backoff_initial: Duration,
    #[serde(default = "default_backoff_max", with = "agents::duration")]
    pub backoff_max: Duration,
    /// This many restarts within `crash_loop_window` mark the actor failed.
    #[serde(default = "default_crash_loop_restarts")]
    pub crash_loop_restarts: u32,
    #[serde(default = "default_crash_loop_window", with = "agents::duration")]
    pub crash_loop_window: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            backoff_initial: default_backoff_initial(),
            backoff_max: default_backoff_max(),
            crash_loop_restarts: default_crash_loop_restarts(),
            crash_loop_window: default_crash_loop_window(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_attempts() -> u32 {
    4
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_coingecko_url() -> String {
    "https://api.coingecko.com/api/v3".to_owned()
}
fn default_coingecko_rps() -> f64 {
    // The public API allows roughly 5-15 calls a minute per IP.
    0.1
}
fn default_coingecko_plan() -> CoinGeckoPlan {
    CoinGeckoPlan::Public
}
fn default_toncenter_url() -> String {
    "https://toncenter.com/api/v2".to_owned()
}
fn default_toncenter_rps() -> f64 {
    // Without a key toncenter allows 1 request per second.
    1.0
}

/// Retry settings shared by every HTTP source.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_timeout", with = "agents::duration")]
    pub timeout: Duration,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_retry_initial", with = "agents::duration")]
    pub backoff_initial: Duration,
    #[serde(default = "default_retry_max", with = "agents::duration")]
    pub backoff_max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            max_attempts: default_max_attempts(),
            backoff_initial: default_retry_initial(),
            backoff_max: default_retry_max(),
        }
    }
}

impl RetryConfig {
    pub fn policy(&self) -> tools::http::RetryPolicy {
        tools::http::RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: self.backoff_initial,
            max_delay: self.backoff_max,
            timeout: self.timeout,
        }
    }
}

/// `[sources.coingecko]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinGeckoSourceConfig {
    #[serde(default = "default_coingecko_url")]
    pub base_url: String,
    #[serde(default = "default_coingecko_plan")]
    pub plan: CoinGeckoPlan,
    /// Only from `COMMAND_CENTER__SOURCES__COINGECKO__API_KEY`; never written in the file.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_coingecko_rps")]
    pub requests_per_second: f64,
    #[serde(default)]
    pub retry: RetryConfig,
}

impl Default for CoinGeckoSourceConfig {
    fn default() -> Self {
        Self {
            base_url: default_coingecko_url(),
            plan: default_coingecko_plan(),
            api_key: None,
            api_key_file: None,
            requests_per_second: default_coingecko_rps(),
            retry: RetryConfig::default(),
        }
    }
}

/// `[sources.toncenter]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToncenterSourceConfig {
    #[serde(default = "default_toncenter_url")]
    pub base_url: String,
    /// Only from `COMMAND_CENTER__SOURCES__TONCENTER__API_KEY`; never written in the file.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_toncenter_rps")]
    pub requests_per_second: f64,
    /// toncenter's elections API (rounds, elections, complaints); same key.
    #[serde(default = "default_elections_url")]
    pub elections_url: String,
    /// toncenter's QoS API (per-round efficiency scoreboard); same key.
    #[serde(default = "default_qos_url")]
    pub qos_url: String,
    #[serde(default)]
    pub retry: RetryConfig,
}

impl Default for ToncenterSourceConfig {
    fn default() -> Self {
        Self {
            base_url: default_toncenter_url(),
            api_key: None,
            api_key_file: None,
            requests_per_second: default_toncenter_rps(),
            elections_url: default_elections_url(),
            qos_url: default_qos_url(),
            retry: RetryConfig::default(),
        }
    }
}

fn default_elections_url() -> String {
    tools::elections::DEFAULT_ELECTIONS_URL.to_owned()
}
fn default_qos_url() -> String {
    tools::elections::DEFAULT_QOS_URL.to_owned()
}
fn default_tonapi_url() -> String {
    tools::tonapi::DEFAULT_BASE_URL.to_owned()
}
fn default_tonapi_rps() -> f64 {
    1.0
}

/// `[sources.tonapi]`: tonapi.io v2, an alternative provider (`[agents.validators.providers]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TonapiSourceConfig {
    #[serde(default = "default_tonapi_url")]
    pub base_url: String,
    /// Only from `COMMAND_CENTER__SOURCES__TONAPI__API_KEY`; never written in the file.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// With a key (without one tonapi allows 1 request per 4 s, and that is used).
    #[serde(default = "default_tonapi_rps")]
    pub requests_per_second: f64,
    #[serde(default)]
    pub retry: RetryConfig,
}

impl Default for TonapiSourceConfig {
    fn default() -> Self {
        Self {
            base_url: default_tonapi_url(),
            api_key: None,
            api_key_file: None,
            requests_per_second: default_tonapi_rps(),
            retry: RetryConfig::default(),
        }
    }
}

/// `[sources]`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub coingecko: CoinGeckoSourceConfig,
    #[serde(default)]
    pub toncenter: ToncenterSourceConfig,
    #[serde(default)]
    pub tonapi: TonapiSourceConfig,
}

/// `[agents]`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    #[serde(default)]
    pub market: MarketAgentConfig,
    /// Disabled by default: it needs the validators to watch.
    #[serde(default)]
    pub validators: ValidatorsAgentConfig,
}

fn default_true() -> bool {
    true
}
fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_webhook_attempts() -> u32 {
    5
}

/// `[[notify.webhooks]]`: a JSON POST per alert event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookReceiverConfig {
    pub name: String,
    /// Webhook URLs often carry a token in the path (Slack, Discord): serialized (into the
    /// journal's `daemon.started`, say) with only scheme, host and port.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// HMAC-SHA256 key for the `X-Command-Center-Signature` header; only from the environment
    /// (`COMMAND_CENTER__NOTIFY__WEBHOOKS__<index>__SECRET` is not supported: use `secret_file`).
    #[serde(default, skip_serializing)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_webhook_timeout", with = "agents::duration")]
    pub timeout: Duration,
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
}

/// `https://hooks.example.com/T0/B0/secret?x=1` -> `https://hooks.example.com/***`.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            let port = parsed
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default();
            let rest = if parsed.path() == "/" && parsed.query().is_none() {
                ""
            } else {
                "/***"
            };
            format!("{}://{host}{port}{rest}", parsed.scheme())
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// `[notify]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Write every alert to the log.
    #[serde(default = "default_true")]
    pub log: bool,
    #[serde(default)]
    pub webhooks: Vec<WebhookReceiverConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            log: true,
            webhooks: Vec::new(),
        }
    }
}

fn default_sim_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8751))
}
fn default_demo_data_dir() -> PathBuf {
    PathBuf::from("data/demo")
}
fn default_demo_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_demo_speed() -> f64 {
    4.0
}

/// `[demo]`: what `run --demo` changes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Where the simulated world listens.
    #[serde(default = "default_sim_listen")]
    pub sim_listen: SocketAddr,
    /// Scenario file; the built-in demo scenario when absent.
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (overrides the scenario's `speed`).
    #[serde(default = "default_demo_speed")]
    pub speed: f64,
    #[serde(default = "default_demo_data_dir")]
    pub data_dir: PathBuf,
    /// Market poll interval in the demo.
    #[serde(default = "default_demo_interval", with = "agents::duration")]
    pub interval: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            sim_listen: default_sim_listen(),
            scenario: None,
            speed: default_demo_speed(),
            data_dir: default_demo_data_dir(),
            interval: default_demo_interval(),
        }
    }
}

/// `[[access.users]]`: a person, the roles policies know them by, and how they authenticate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// SHA-256 (hex) of the user's API token; the token itself is never stored
    /// (`command-center token new --user NAME` makes one).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Telegram user id and Slack user id, for the chat channels.
    #[serde(default)]
    pub telegram_id: Option<i64>,
    #[serde(default)]
    pub slack_id: Option<String>,
}

fn default_escalate_after() -> Duration {
    Duration::from_secs(3600)
}
fn default_expiry_check_interval() -> Duration {
    Duration::from_secs(10)
}

/// `[access]`: who may use the API and approve operations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// An approval request nobody answered for this long is escalated once (a critical alert
    /// to the escalation audience).
    #[serde(default = "default_escalate_after", with = "agents::duration")]
    pub escalate_after: Duration,
    /// How often pending approvals are checked for expiry and escalation.
    #[serde(default = "default_expiry_check_interval", with = "agents::duration")]
    pub expiry_check_interval: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            escalate_after: default_escalate_after(),
            expiry_check_interval: default_expiry_check_interval(),
        }
    }
}

impl AccessConfig {
    /// Every role some user holds, sorted.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = self
            .users
            .iter()
            .flat_map(|user| user.roles.iter().cloned())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|user| user.name == name)
    }

    /// The user whose token hashes to the stored hash; compares every user in constant time.
    pub fn user_by_token(&self, token: &str) -> Option<&UserConfig> {
        use sha2::Digest;
        let presented = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        let mut found = None;
        for user in &self.users {
            if let Some(stored) = &user.token_sha256
                && constant_time_eq(stored.to_ascii_lowercase().as_bytes(), presented.as_bytes())
            {
                found = Some(user);
            }
        }
        found
    }
}

/// Compares without an early exit, so timing does not reveal how much of a hash matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub supervisor: SupervisorConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub agents: AgentsConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default)]
    pub executors: crate::executors::ExecutorsConfig,
    #[serde(default)]
    pub demo: DemoConfig,
}

/// One configuration problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigProblem {
    /// `daemon.http_listen`, `agents.market.move_alerts[0].percent`.
    pub path: String,
    /// Where the value came from: `file:line`, an environment variable, or None.
    pub origin: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found while loading.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigErrors {
    pub source_name: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "configuration {} has {} problem{}:",
            self.source_name,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Where the text came from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl ConfigSource {
    /// `--config` if given, else `./command-center.toml` if present, else the embedded defaults.
    pub fn locate(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(path) => ConfigSource::File(path.to_path_buf()),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                ConfigSource::File(PathBuf::from(DEFAULT_CONFIG_FILE))
            }
            None => ConfigSource::Embedded,
        }
    }

    pub fn name(&self) -> String {
        match self {
            ConfigSource::Embedded => "(embedded defaults)".to_owned(),
            ConfigSource::File(path) => path.display().to_string(),
        }
    }
}

/// Secret keys that must never be written in the file, and the `*_file` key to use instead.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("sources.coingecko.api_key", "api_key_file"),
    ("sources.toncenter.api_key", "api_key_file"),
    ("sources.tonapi.api_key", "api_key_file"),
];

mod load;
mod validate;

pub use load::{environment_overrides, load, load_text};

#[cfg(test)]
mod tests;

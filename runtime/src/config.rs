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
    /// The SMTP server `kind = "email"` receivers send through; absent: no email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            log: true,
            webhooks: Vec::new(),
            email: None,
        }
    }
}

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connect, then `STARTTLS` before anything else is sent (port 587); a server that
    /// does not offer it is refused.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (port 25): only for a relay on this machine (a loopback host) unless
    /// `allow_insecure = true`.
    None,
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }

    /// The port a server with this security usually listens on.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

fn default_email_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_email_attempts() -> u32 {
    4
}
fn default_email_backoff_initial() -> Duration {
    Duration::from_secs(2)
}
fn default_email_backoff_max() -> Duration {
    Duration::from_secs(60)
}

/// `[notify.email]`: the SMTP server (submission with STARTTLS or implicit TLS, and AUTH)
/// that `kind = "email"` receivers send through; SMS gateways and paging tools that take
/// mail plug in here.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// 587 for starttls, 465 for tls, 25 for none when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Lets `security = "none"` reach a host that is not loopback (mail and password then
    /// cross the network in clear text).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_insecure: bool,
    /// Login for AUTH (PLAIN or LOGIN); none: send without logging in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Only from `COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD` or `password_file`.
    #[serde(default, skip_serializing)]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The sender: `alerts@example.com` or `Command Center <alerts@example.com>`.
    pub from: String,
    /// PEM file of the CA (or CAs) that signed the server's certificate, trusted besides the
    /// public roots: for a relay with a private CA. Verification is never turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Time allowed for the connection and for each SMTP command.
    #[serde(default = "default_email_timeout", with = "agents::duration")]
    pub timeout: Duration,
    /// Attempts per message, the first one included; only temporary failures (4xx, a lost
    /// connection, a timeout) are tried again.
    #[serde(default = "default_email_attempts")]
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles per attempt (with jitter) up to `backoff_max`.
    #[serde(default = "default_email_backoff_initial", with = "agents::duration")]
    pub backoff_initial: Duration,
    #[serde(default = "default_email_backoff_max", with = "agents::duration")]
    pub backoff_max: Duration,
}

impl EmailConfig {
    /// `port`, or the usual port of `security`.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }

    /// A server on this machine (`localhost`, 127.0.0.0/8, `::1`): mail to it does not cross
    /// the network.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .host
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback())
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
    pub alerting: AlertingConfig,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub reasoner: ReasonerSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub briefings: BriefingsSection,
    /// `[finance]`: streams, categories, reporting currency, opening balance.
    #[serde(default)]
    pub finance: agents::finance::FinanceConfig,
    #[serde(default)]
    pub demo: DemoConfig,
}

/// `[reasoner]`: the language model that answers free questions (OpenAI-compatible: OpenAI,
/// Azure, vLLM, llama.cpp server, Ollama). Off by default: everything but free questions works
/// without it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonerSection {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_reasoner_url")]
    pub base_url: String,
    #[serde(default = "default_reasoner_model")]
    pub model: String,
    /// Only from `COMMAND_CENTER__REASONER__API_KEY` or `api_key_file`.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_reasoner_steps")]
    pub max_steps: u32,
    #[serde(default = "default_reasoner_call_timeout", with = "agents::duration")]
    pub call_timeout: Duration,
    #[serde(default = "default_reasoner_tool_timeout", with = "agents::duration")]
    pub tool_timeout: Duration,
    /// Tokens each agent may use per UTC day (the conversation agent included); 0: no limit.
    #[serde(default)]
    pub daily_token_budget: u64,
}

fn default_reasoner_url() -> String {
    "https://api.openai.com/v1".to_owned()
}
fn default_reasoner_model() -> String {
    "gpt-4o-mini".to_owned()
}
fn default_reasoner_steps() -> u32 {
    6
}
fn default_reasoner_call_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_reasoner_tool_timeout() -> Duration {
    Duration::from_secs(20)
}

impl Default for ReasonerSection {
    fn default() -> Self {
        Self {
            enabled: false,
            base_url: default_reasoner_url(),
            model: default_reasoner_model(),
            api_key: None,
            api_key_file: None,
            max_steps: default_reasoner_steps(),
            call_timeout: default_reasoner_call_timeout(),
            tool_timeout: default_reasoner_tool_timeout(),
            daily_token_budget: 0,
        }
    }
}

impl ReasonerSection {
    /// The reasoner's settings.
    pub fn settings(&self) -> agents::reasoner::ReasonerConfig {
        agents::reasoner::ReasonerConfig {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key: self.api_key.clone(),
            max_steps: self.max_steps,
            call_timeout: self.call_timeout,
            tool_timeout: self.tool_timeout,
            daily_token_budget: (self.daily_token_budget > 0).then_some(self.daily_token_budget),
            ..agents::reasoner::ReasonerConfig::default()
        }
    }
}

/// `[channels]`: where people talk to Command Center.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    #[serde(default)]
    pub slack: SlackChannelConfig,
    #[serde(default)]
    pub telegram: TelegramChannelConfig,
}

fn default_telegram_api_url() -> String {
    crate::channels::telegram::client::TELEGRAM_API_URL.to_owned()
}
fn default_long_poll() -> Duration {
    Duration::from_secs(25)
}

/// `[channels.telegram]`: the Telegram bot (long polling). Telegram user ids map to people
/// through `[[access.users]] telegram_id`; their private chats are served, group chats only
/// when listed in `chats`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramChannelConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Only from `COMMAND_CENTER__CHANNELS__TELEGRAM__BOT_TOKEN` or `bot_token_file`.
    #[serde(default, skip_serializing)]
    pub bot_token: Option<Secret>,
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    #[serde(default = "default_telegram_api_url")]
    pub api_url: String,
    /// Group chat ids served (negative numbers).
    #[serde(default)]
    pub chats: Vec<i64>,
    /// How long one getUpdates waits for news.
    #[serde(default = "default_long_poll", with = "agents::duration")]
    pub long_poll: Duration,
    /// Webhook mode: the public HTTPS URL Telegram posts updates to, forwarded (by your
    /// reverse proxy) to the daemon's `POST /telegram/webhook`. Unset: long polling.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The `X-Telegram-Bot-Api-Secret-Token` every webhook request must carry; only from
    /// `COMMAND_CENTER__CHANNELS__TELEGRAM__WEBHOOK_SECRET` or `webhook_secret_file`.
    #[serde(default, skip_serializing)]
    pub webhook_secret: Option<Secret>,
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
}

impl Default for TelegramChannelConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bot_token: None,
            bot_token_file: None,
            api_url: default_telegram_api_url(),
            chats: Vec::new(),
            long_poll: default_long_poll(),
            webhook_url: None,
            webhook_secret: None,
            webhook_secret_file: None,
        }
    }
}

fn default_slack_api_url() -> String {
    tools::slack::SLACK_API_BASE_URL.to_owned()
}
fn default_slack_rps() -> f64 {
    tools::slack::DEFAULT_REQUESTS_PER_SECOND
}

/// `[channels.slack]`: the Slack app (`/cc` slash command at `POST /slack/commands`, buttons
/// at `POST /slack/actions`, or both over a Socket Mode WebSocket when `socket_mode`). Slack
/// user ids map to people through `[[access.users]] slack_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannelConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Socket Mode: the daemon connects to Slack (no public URL needed); needs `app_token`
    /// instead of `signing_secret`.
    #[serde(default)]
    pub socket_mode: bool,
    /// The app-level token (`xapp-...`, scope `connections:write`) for Socket Mode; only from
    /// `COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN` or `app_token_file`.
    #[serde(default, skip_serializing)]
    pub app_token: Option<Secret>,
    #[serde(default)]
    pub app_token_file: Option<PathBuf>,
    /// For the HTTP endpoints; only from `COMMAND_CENTER__CHANNELS__SLACK__SIGNING_SECRET` or
    /// `signing_secret_file`.
    #[serde(default, skip_serializing)]
    pub signing_secret: Option<Secret>,
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// The Bot User OAuth Token (`xoxb-...`); only from
    /// `COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN` or `bot_token_file`.
    #[serde(default, skip_serializing)]
    pub bot_token: Option<Secret>,
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    #[serde(default = "default_slack_api_url")]
    pub api_base_url: String,
    #[serde(default = "default_slack_rps")]
    pub requests_per_second: f64,
}

impl Default for SlackChannelConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            socket_mode: false,
            app_token: None,
            app_token_file: None,
            signing_secret: None,
            signing_secret_file: None,
            bot_token: None,
            bot_token_file: None,
            api_base_url: default_slack_api_url(),
            requests_per_second: default_slack_rps(),
        }
    }
}

/// The receiver every default route names: the log (when `notify.log`) and every
/// `[[notify.webhooks]]` entry.
pub const DEFAULT_RECEIVER: &str = "default";

fn default_route_receiver() -> Option<String> {
    Some(DEFAULT_RECEIVER.to_owned())
}
fn default_group_by() -> Vec<String> {
    vec!["key".to_owned()]
}
fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_silence_reminder_before() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_evaluation_interval() -> Duration {
    Duration::from_secs(1)
}
fn is_false(value: &bool) -> bool {
    !*value
}

/// `#[serde(with = "option_duration")]` for optional durations ("30s" or absent).
mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| agents::duration::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_str(&agents::duration::format(*value)),
            None => serializer.serialize_none(),
        }
    }
}

/// What a receiver delivers through: a webhook, the log, a Telegram chat (through the bot of
/// `[channels.telegram]`), a Slack channel (through the app of `[channels.slack]`) or email
/// (through the SMTP server of `[notify.email]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    Webhook,
    Log,
    Telegram,
    Slack,
    Email,
}

impl ReceiverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverKind::Webhook => "webhook",
            ReceiverKind::Log => "log",
            ReceiverKind::Telegram => "telegram",
            ReceiverKind::Slack => "slack",
            ReceiverKind::Email => "email",
        }
    }
}

/// `[[alerting.receivers]]`: a named destination routes send to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertReceiverConfig {
    pub name: String,
    pub kind: ReceiverKind,
    /// `kind = "webhook"`: the `name` of a `[[notify.webhooks]]` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// `kind = "telegram"`: the chat id (a person's user id, or a group's negative id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// `kind = "slack"`: the channel id (the app must be in the channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `kind = "email"`: the recipients (`oncall@example.com`, `Ops <ops@example.com>`); the
    /// mail goes through `[notify.email]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// `[alerting.route]` and its nested `[[...routes]]`: the routing tree. An alert walks down
/// from the root into the first child whose matchers all match (and on into further children
/// when that child says `continue = true`); where no child matches, the node itself takes it.
/// Children inherit `receiver`, `group_by` and the three intervals they leave out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// `label=value`, `label!=value`, `label=~regex`, `label!~regex`; all must hold. Besides
    /// the alert's labels, `rule`, `severity`, `key` and `domain` can be matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Keep looking at the following siblings after this route matched.
    #[serde(default, rename = "continue", skip_serializing_if = "is_false")]
    pub continue_matching: bool,
    /// Labels whose values form a group; alerts of one group travel in one notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_wait: Option<Duration>,
    /// How long a group waits after a notification before it sends changes.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_interval: Option<Duration>,
    /// How often a group whose alerts still fire (and nobody acknowledged) is sent again.
    #[serde(
        default,
        with = "option_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            receiver: default_route_receiver(),
            matchers: Vec::new(),
            continue_matching: false,
            group_by: Some(default_group_by()),
            group_wait: Some(Duration::ZERO),
            group_interval: Some(Duration::ZERO),
            repeat_interval: Some(default_repeat_interval()),
            routes: Vec::new(),
        }
    }
}

/// `[[alerting.inhibit_rules]]`: while an alert matching `source_matchers` fires, alerts
/// matching `target_matchers` with the same values of the `equal` labels are not sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// `[[alerting.escalation]]`: a firing alert matching `matchers` that nobody acknowledged
/// within `escalate_after` of its first notification is also sent to `receiver` (once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    #[serde(default)]
    pub matchers: Vec<String>,
    #[serde(with = "agents::duration")]
    pub escalate_after: Duration,
    pub receiver: String,
}

/// `[[alerting.maintenance_windows]]`: a recurring time when matching alerts are muted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindowConfig {
    pub name: String,
    /// `"sat,sun 02:00-04:00 +00:00"`: weekdays (`mon-fri`, `*` for every day), a time range
    /// (past midnight when the end is earlier than the start) and a UTC offset.
    pub schedule: String,
    /// Which alerts it mutes; every alert when empty.
    #[serde(default)]
    pub matchers: Vec<String>,
}

/// `[alerting]`: the alert router between the agents and the receivers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default)]
    pub receivers: Vec<AlertReceiverConfig>,
    #[serde(default)]
    pub route: RouteConfig,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default)]
    pub escalation: Vec<EscalationConfig>,
    #[serde(default)]
    pub maintenance_windows: Vec<MaintenanceWindowConfig>,
    /// A silence about to expire is announced this long before (to the root receiver).
    #[serde(default = "default_silence_reminder_before", with = "agents::duration")]
    pub silence_reminder_before: Duration,
    /// How often waits, repeats, escalations and silence expiry are evaluated.
    #[serde(default = "default_evaluation_interval", with = "agents::duration")]
    pub evaluation_interval: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            receivers: Vec::new(),
            route: RouteConfig::default(),
            inhibit_rules: Vec::new(),
            escalation: Vec::new(),
            maintenance_windows: Vec::new(),
            silence_reminder_before: default_silence_reminder_before(),
            evaluation_interval: default_evaluation_interval(),
        }
    }
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
    ("channels.slack.signing_secret", "signing_secret_file"),
    ("channels.slack.bot_token", "bot_token_file"),
    ("channels.slack.app_token", "app_token_file"),
    ("channels.telegram.bot_token", "bot_token_file"),
    ("channels.telegram.webhook_secret", "webhook_secret_file"),
    ("notify.email.password", "password_file"),
    ("reasoner.api_key", "api_key_file"),
    ("memory.qdrant.api_key", "api_key_file"),
    ("memory.openai.api_key", "api_key_file"),
];

mod load;
mod memory;
mod validate;

pub use memory::{
    BriefingsSection, EmbedderChoice, MemoryBackend, MemorySection, OpenAiEmbedderSection,
    QdrantSection, RetentionSection,
};

pub use load::{environment_overrides, load, load_text};

#[cfg(test)]
mod tests;

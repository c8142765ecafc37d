//! `command-center run`: wires storage, agents, supervisors, the notifier and the HTTP port,
//! then waits for SIGINT/SIGTERM and shuts down in order (agents finish their tick, the
//! notifier drains, the journal records the stop, storage is flushed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use agents::audit::Auditor;
use agents::health::HealthRegistry;
use agents::market::MarketAgent;
use agents::telemetry::Telemetry;
use agents::validators::ValidatorsAgent;
use anyhow::Context as _;
use chrono::Utc;
use memory::Store;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tools::coingecko::CoinGeckoClient;
use tools::github::GithubClient;
use tools::prometheus::{DEFAULT_MAX_BODY_BYTES, PrometheusScraper};
use tools::toncenter::ToncenterClient;

use crate::config::{Config, WebhookReceiverConfig};
use crate::gate::Gatekeeper;
use crate::http::{AppState, router};
use crate::notifier::Notifier;
use crate::policy_watch::PolicyHolder;
use crate::router::AlertRouter;
use crate::supervisor::{AgentContext, AgentFactory, AgentSupervisor, Shutdown};

/// Checkpoints file inside the data directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.jsonl";

/// How `run` was asked to start.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub demo: bool,
}

/// A running daemon, for in-process use (tests, benchmarks) and for `run`.
pub struct Daemon {
    pub state: AppState,
    pub http_addr: SocketAddr,
    pub sim: Option<tools::sim::SimHandle>,
    supervisors: BTreeMap<String, Addr<AgentSupervisor>>,
    notifier: tokio::task::JoinHandle<()>,
    notifier_stop: watch::Sender<bool>,
    router_task: tokio::task::JoinHandle<()>,
    router_stop: watch::Sender<bool>,
    http_stop: watch::Sender<bool>,
    http_task: tokio::task::JoinHandle<()>,
    telegram_task: Option<tokio::task::JoinHandle<()>>,
    slack_socket: Option<crate::channels::slack::socket::SocketModeHandle>,
    checkpoint_task: tokio::task::JoinHandle<()>,
    policy_task: tokio::task::JoinHandle<()>,
    sweep_task: tokio::task::JoinHandle<()>,
    /// Vector memory upkeep and the daily briefings, when on.
    background: Vec<tokio::task::JoinHandle<()>>,
    background_stop: watch::Sender<bool>,
    shutdown_grace: Duration,
}

/// Marks a data directory as the demo's own, so the next demo may replace it.
const DEMO_MARKER: &str = ".command-center-demo";

/// Each demo starts from an empty data directory (its world starts at the wall clock, so old
/// series and alerts would only confuse). A directory the demo did not create is never touched.
/// The demo's fixes go somewhere: when nothing is configured, the validators' programs are
/// harmless `/bin/echo`s and an operator exists whose API token is written to
/// `<demo data dir>/demo-operator.token` (never logged), so proposals wait for an approval
/// that the demo's user can give with `command-center proposals approve`.
fn demo_operations(config: &mut Config) -> anyhow::Result<()> {
    let echo = std::path::Path::new("/bin/echo");
    if config.executors.command.programs.is_empty() && echo.exists() {
        let settings = &config.agents.validators.proposals;
        for (name, args) in [
            (&settings.restart_command, vec!["restart", "{validator}"]),
            (
                &settings.upgrade_command,
                vec!["upgrade", "{validator}", "to", "{version}"],
            ),
            (
                &settings.failover_command,
                vec!["fail", "over", "{validator}", "to", "{standby}"],
            ),
            (
                &settings.recover_command,
                vec!["recover", "stake", "of", "{validator}"],
            ),
            (
                &settings.join_command,
                vec![
                    "stake",
                    "{stake_ton}",
                    "TON",
                    "for",
                    "{validator}",
                    "max",
                    "factor",
                    "{max_factor}",
                ],
            ),
        ] {
            config.executors.command.programs.insert(
                name.clone(),
                crate::executors::CommandProgramConfig {
                    program: echo.to_path_buf(),
                    args: args.into_iter().map(str::to_owned).collect(),
                    timeout: Duration::from_secs(10),
                    max_output_bytes: 4096,
                },
            );
        }
    }
    if config.access.users.is_empty() {
        use sha2::Digest as _;
        let bytes: [u8; 32] = rand::random();
        let token = format!("cc_{}", hex::encode(bytes));
        let path = config.demo.data_dir.join("demo-operator.token");
        std::fs::write(&path, &token)
            .with_context(|| format!("cannot write the demo token to {}", path.display()))?;
        config.access.users.push(crate::config::UserConfig {
            name: "demo-operator".to_owned(),
            roles: vec!["operator".to_owned(), "treasurer".to_owned()],
            token_sha256: Some(hex::encode(sha2::Sha256::digest(token.as_bytes()))),
            telegram_id: None,
            slack_id: None,
        });
        tracing::info!(
            token_file = %path.display(),
            "demo: proposals wait for demo-operator; try `command-center proposals list --token-file {}`",
            path.display()
        );
    }
    Ok(())
}

fn prepare_demo_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let marker = dir.join(DEMO_MARKER);
    if marker.exists() {
        std::fs::remove_dir_all(dir).with_context(|| {
            format!("cannot clear the previous demo's data in {}", dir.display())
        })?;
    } else if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "demo.data_dir {} holds data the demo did not create; point demo.data_dir elsewhere (the demo replaces its data directory on every run)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        &marker,
        "Made by `command-center run --demo`; the next demo run replaces this directory.\n",
    )
    .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}

/// Rewrites `config` to run against a simulated world; returns the world.
pub async fn start_demo_world(config: &mut Config) -> anyhow::Result<tools::sim::SimHandle> {
    let mut scenario = match &config.demo.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read scenario file {}", path.display()))?;
            tools::sim::Scenario::from_toml(&text, &path.display().to_string())?
        }
        None => tools::sim::Scenario::demo(),
    };
    scenario.speed = config.demo.speed;
    let validators = scenario.validators.clone();
    let running_release = scenario
        .events
        .iter()
        .filter_map(|event| match event {
            tools::sim::SimEvent::Release {
                tag,
                published_before_start: Some(before),
                prerelease: false,
                draft: false,
                ..
            } => Some((*before, tag.clone())),
            _ => None,
        })
        .min_by_key(|(before, _)| *before)
        .map(|(_, tag)| tag);
    let sim = tools::sim::SimWorld::start(scenario, config.demo.sim_listen)
        .await
        .with_context(|| {
            format!(
                "cannot start the simulated world on {} (demo.sim_listen); is another demo running?",
                config.demo.sim_listen
            )
        })?;
    config.sources.coingecko.base_url = sim.coingecko_url();
    config.sources.coingecko.requests_per_second = 50.0;
    config.sources.coingecko.retry.backoff_initial = Duration::from_millis(200);
    config.sources.coingecko.retry.backoff_max = Duration::from_secs(2);
    config.sources.coingecko.retry.timeout = Duration::from_secs(2);
    config.sources.toncenter.base_url = sim.toncenter_url();
    config.sources.toncenter.requests_per_second = 50.0;
    config.sources.toncenter.retry.backoff_initial = Duration::from_millis(200);
    config.sources.toncenter.retry.backoff_max = Duration::from_secs(2);
    config.sources.toncenter.retry.timeout = Duration::from_secs(2);
    config.sources.toncenter.elections_url = sim.elections_url();
    config.sources.toncenter.qos_url = sim.qos_url();
    config.sources.tonapi.base_url = sim.tonapi_url();
    config.sources.tonapi.requests_per_second = 50.0;
    prepare_demo_data_dir(&config.demo.data_dir)?;
    config.daemon.data_dir = config.demo.data_dir.clone();
    config.agents.market.interval = config.demo.interval;
    // The scenario's validators, watched through the sim's toncenter and node metrics pages.
    if !validators.is_empty() {
        let watched = &mut config.agents.validators;
        watched.enabled = true;
        watched.interval = config.demo.interval;
        watched.validators = validators
            .iter()
            .map(|validator| agents::validators::WatchedValidator {
                name: validator.name.clone(),
                wallet: validator.address.clone(),
                public_key: Some(tools::sim::sim_public_key(validator)),
                metrics_url: Some(sim.metrics_url(&validator.name)),
                // The nodes run the release that was out when the demo world starts.
                running_version: running_release.clone(),
                ..Default::default()
            })
            .collect();
        // The sim's wallets hold operating funds while the stakes sit in the elector; against
        // param 17's mainnet min_stake (300,000 TON) every demo wallet would be "low" from the
        // first poll, so the demo uses a fixed line instead.
        if watched.min_balance_ton.is_none() {
            watched.min_balance_ton = Some(500.0);
        }
        // Releases come from the sim's GitHub (the scenario's `kind = "release"` events),
        // checked every demo interval so the demo's release shows within minutes.
        watched.github_base_url = sim.github_url();
        watched.release_check_interval = config.demo.interval;
    }
    demo_operations(config)?;
    config.notify.webhooks.push(WebhookReceiverConfig {
        name: "demo-sink".to_owned(),
        url: sim.webhook_url(),
        secret: None,
        secret_file: None,
        timeout: Duration::from_secs(2),
        max_attempts: 3,
    });
    tracing::info!(
        sim = %sim.base_url(),
        speed = config.demo.speed,
        "demo: simulated world started; every source points at it"
    );
    Ok(sim)
}

impl Daemon {
    /// Opens storage, starts agents and the HTTP port. Must run inside an actix System.
    pub async fn start(mut config: Config, options: RunOptions) -> anyhow::Result<Daemon> {
        tools::http::install_crypto_provider();
        let sim = if options.demo {
            Some(start_demo_world(&mut config).await?)
        } else {
            None
        };
        // A broken policy set stops the start before anything runs.
        let policies_dir = config.daemon.policies_dir.clone();
        let policy_set = tokio::task::spawn_blocking(move || PolicyHolder::read(&policies_dir))
            .await
            .context("policy loading thread")??;
        let data_dir = config.daemon.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
            .await
            .context("storage thread")??;
        let telemetry = Telemetry::default();
        let mut registry = Registry::with_prefix("command_center");
        telemetry.register(&mut registry);
        let health = HealthRegistry::new();
        let auditor = Auditor::new(store.clone(), telemetry.clone());
        auditor
            .record(
                "runtime",
                "daemon.started",
                "daemon",
                &serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "demo": options.demo,
                    "pid": std::process::id(),
                    // Secrets are skipped by the config's Serialize impl.
                    "config": &config,
                }),
            )
            .await?;

        // agents -> alert queue -> router (dedup, grouping, silences, ...) -> notifier.
        let (alert_sink, alert_queue) = mpsc::unbounded_channel();
        let (dispatch_sink, dispatch_queue) = mpsc::unbounded_channel();
        // The chat channels' senders exist before the notifier: alerts go to chats too.
        let telegram_settings = match (
            &config.channels.telegram.bot_token,
            config.channels.telegram.enabled,
        ) {
            (Some(token), true) => Some(crate::channels::telegram::TelegramSettings {
                token: token.clone(),
                api_url: config.channels.telegram.api_url.clone(),
                chats: config.channels.telegram.chats.iter().copied().collect(),
                long_poll: config.channels.telegram.long_poll,
                webhook: config
                    .channels
                    .telegram
                    .webhook_url
                    .clone()
                    .zip(config.channels.telegram.webhook_secret.clone()),
            }),
            _ => None,
        };
        let telegram_link = match &telegram_settings {
            Some(settings) => Some(
                crate::channels::telegram::connect(settings)
                    .map_err(|error| anyhow::anyhow!("channels.telegram: {error}"))?,
            ),
            None => None,
        };
        let slack = &config.channels.slack;
        let slack_client = match (slack.enabled, &slack.bot_token) {
            (true, Some(bot_token)) => Some(Arc::new(
                tools::slack::SlackClient::new(
                    &slack.api_base_url,
                    bot_token.clone(),
                    slack.requests_per_second,
                    config.sources.toncenter.retry.policy(),
                )
                .map_err(|error| anyhow::anyhow!("channels.slack: {error}"))?,
            )),
            _ => None,
        };
        let mut notifier = Notifier::new(
            &config.notify,
            &config.alerting,
            auditor.clone(),
            telemetry.clone(),
        )
        .with_chat(crate::notifier::ChatSenders {
            telegram: telegram_link.as_ref().map(|(_, outbox)| outbox.clone()),
            slack: slack_client.clone(),
        });
        // Before the router starts: what a killed run dispatched and did not deliver.
        let unfinished = notifier
            .recover()
            .context("notifier: reading the undelivered dispatches")?;
        if unfinished > 0 {
            tracing::warn!(
                dispatches = unfinished,
                "the previous run stopped before delivering every notification; delivering those first"
            );
        }
        let (notifier_stop, notifier_stop_rx) = watch::channel(false);
        let notifier = tokio::spawn(notifier.run(dispatch_queue, notifier_stop_rx));
        let alert_router = Arc::new(
            AlertRouter::open(&config.alerting, auditor.clone(), dispatch_sink)
                .context("alert router ([alerting])")?,
        );
        let (router_stop, router_stop_rx) = watch::channel(false);
        let router_task = tokio::spawn(alert_router.clone().run(
            alert_queue,
            config.alerting.evaluation_interval,
            router_stop_rx,
        ));

        let policies = PolicyHolder::start(
            &config.daemon.policies_dir,
            policy_set,
            auditor.clone(),
            alert_sink.clone(),
        )
        .await?;
        // One finance configuration for the expense executor, the API and the finance tasks.
        let finance = Arc::new(config.finance.clone());
        let executors =
            crate::executors::ExecutorRegistry::new(&config.executors, alert_sink.clone())
                .map(|registry| {
                    registry.with(Arc::new(crate::executors::ExpenseExecutor::new(
                        store.clone(),
                        Arc::clone(&finance),
                    )))
                })
                .map_err(|problems| {
                    anyhow::anyhow!(
                        "executors: {}",
                        problems
                            .iter()
                            .map(|(path, message)| format!("{path}: {message}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })?;
        let gate = Arc::new(Gatekeeper::new(
            policies.clone(),
            auditor.clone(),
            Arc::new(executors),
            config.access.clone(),
            alert_sink.clone(),
        ));
        // Before anything new is proposed: finish or reconcile what a crash interrupted.
        gate.recover().await?;
        let context = AgentContext {
            health: health.clone(),
            telemetry: telemetry.clone(),
            auditor: auditor.clone(),
            alerts: alert_sink,
        };
        let mut supervisors = BTreeMap::new();
        if config.agents.market.enabled {
            let market = config.agents.market.clone();
            let source = config.sources.coingecko.clone();
            let factory_context = context.clone();
            let factory: AgentFactory = Arc::new(move || {
                let client = CoinGeckoClient::new(
                    &source.base_url,
                    source.plan,
                    source.api_key.clone(),
                    source.requests_per_second,
                    source.retry.policy(),
                )
                .map_err(|error| agents::AgentError::Fatal {
                    agent: agents::market::AGENT.to_owned(),
                    message: error.to_string(),
                })?;
                Ok(Box::new(MarketAgent::new(
                    market.clone(),
                    client,
                    factory_context.auditor.clone(),
                    factory_context.health.clone(),
                    factory_context.telemetry.clone(),
                )) as Box<dyn agents::DomainAgent>)
            });
            let supervisor = AgentSupervisor::new(
                agents::market::AGENT,
                factory,
                config.agents.market.interval,
                config.supervisor.clone(),
                context.clone(),
            )
            .with_tick_on_start(config.agents.market.poll_on_start);
            supervisors.insert(agents::market::AGENT.to_owned(), supervisor.start());
        }

        if config.agents.validators.enabled {
            let validators = config.agents.validators.clone();
            let source = config.sources.toncenter.clone();
            let factory_context = context.clone();
            let factory_gate: Arc<dyn agents::proposals::ProposalGate> = gate.clone();
            let tonapi_source = config.sources.tonapi.clone();
            let factory: AgentFactory = Arc::new(move || {
                let fatal = |error: tools::http::SourceError| agents::AgentError::Fatal {
                    agent: agents::validators::AGENT.to_owned(),
                    message: error.to_string(),
                };
                let toncenter = ToncenterClient::new(
                    &source.base_url,
                    source.api_key.clone(),
                    source.requests_per_second,
                    source.retry.policy(),
                )
                .map_err(fatal)?;
                // Node metrics pages are the operator's own hosts, one scrape each per round:
                // no shared limit to respect, only a cap (one limiter serves every host, so a
                // low cap would space 400 nodes' scrapes over seconds); retries as for toncenter.
                let scraper =
                    PrometheusScraper::new(500.0, source.retry.policy(), DEFAULT_MAX_BODY_BYTES)
                        .map_err(fatal)?;
                let mut agent = ValidatorsAgent::new(
                    validators.clone(),
                    toncenter,
                    scraper,
                    factory_context.auditor.clone(),
                    factory_context.health.clone(),
                    factory_context.telemetry.clone(),
                );
                agent = agent.with_gate(factory_gate.clone());
                if validators.providers.elections_api {
                    // toncenter's operator APIs take toncenter's key; their own limiter runs at
                    // toncenter's rate (one or two requests a round).
                    let elections = tools::elections::ElectionsClient::new(
                        &source.elections_url,
                        &source.qos_url,
                        source.api_key.clone(),
                        source.requests_per_second,
                        source.retry.policy(),
                    )
                    .map_err(fatal)?;
                    agent = agent.with_elections(elections);
                }
                if validators.providers.balances == agents::validators::Provider::Tonapi {
                    let tonapi = tools::tonapi::TonapiClient::new(
                        &tonapi_source.base_url,
                        tonapi_source.api_key.clone(),
                        tonapi_source.requests_per_second,
                        tonapi_source.retry.policy(),
                    )
                    .map_err(fatal)?;
                    agent = agent.with_tonapi(tonapi);
                }
                if validators.check_releases {
                    // Anonymous GitHub allows about 60 requests an hour; the agent makes one
                    // request per check, at most every release_check_interval (1h by default),
                    // so the per-second limiter is only a cap. Retries as for toncenter.
                    let github = GithubClient::new(
                        &validators.github_base_url,
                        None,
                        10.0,
                        source.retry.policy(),
                    )
                    .map_err(fatal)?;
                    agent = agent.with_github(github);
                }
                Ok(Box::new(agent) as Box<dyn agents::DomainAgent>)
            });
            let supervisor = AgentSupervisor::new(
                agents::validators::AGENT,
                factory,
                config.agents.validators.interval,
                config.supervisor.clone(),
                context.clone(),
            )
            .with_tick_on_start(config.agents.validators.poll_on_start);
            supervisors.insert(agents::validators::AGENT.to_owned(), supervisor.start());
        }

        let memory_section = config.memory.clone();
        let memory_dir = config.daemon.data_dir.clone();
        let vector_memory =
            tokio::task::spawn_blocking(move || crate::vectors::open(&memory_section, &memory_dir))
                .await
                .context("memory thread")?
                .map_err(|error| anyhow::anyhow!(error))?
                .map(Arc::new);
        if let Some(memory) = &vector_memory {
            tracing::info!(embedder = %memory.embedder_note, "memory: vector memory is on");
        }
        let onchain = Arc::new(
            crate::finance::onchain::OnchainSources::from_config(&config)
                .map_err(|error| anyhow::anyhow!("finance.onchain: {error}"))?,
        );
        let state = AppState {
            onchain: Arc::clone(&onchain),
            memory: vector_memory.clone(),
            briefings: Arc::new(config.briefings.clone()),
            finance: Arc::clone(&finance),
            store: store.clone(),
            auditor: auditor.clone(),
            health: health.clone(),
            registry: Arc::new(registry),
            started_at: Utc::now(),
            demo: options.demo,
            agents: Arc::new(supervisors.clone()),
            policies: policies.clone(),
            gate: gate.clone(),
            router: alert_router.clone(),
            conversation: crate::assistant::conversation::Conversation::start(
                &config.reasoner,
                &config.daemon.prompts_dir,
                store.clone(),
            )
            .map_err(|error| anyhow::anyhow!("reasoner: {error}"))?
            .map(Arc::new),
        };
        let listener = tokio::net::TcpListener::bind(config.daemon.http_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (daemon.http_listen); is another daemon running?",
                    config.daemon.http_listen
                )
            })?;
        let http_addr = listener.local_addr()?;
        let (http_stop, mut http_stop_rx) = watch::channel(false);
        let mut app = router(state.clone());
        let slack_service = slack_client.clone().map(|client| {
            crate::channels::slack::SlackService::new(state.clone(), client, &config.access.users)
        });
        if let (Some(service), Some(signing_secret)) = (
            slack_service.clone(),
            config.channels.slack.signing_secret.clone(),
        ) {
            app = app.merge(crate::channels::slack::routes(
                service,
                crate::channels::slack::SlackRequestVerifier::new(signing_secret),
            ));
            tracing::info!("slack: /slack/commands and /slack/actions are served");
        }
        let telegram_webhook = match telegram_settings
            .as_ref()
            .and_then(|settings| settings.webhook.as_ref())
        {
            Some((_, secret)) => {
                let (routes, updates) =
                    crate::channels::telegram::webhook::routes(secret, auditor.clone());
                app = app.merge(routes);
                tracing::info!(
                    "telegram: webhook mode; updates are taken at {}",
                    crate::channels::telegram::webhook::WEBHOOK_PATH
                );
                Some(updates)
            }
            None => None,
        };
        let slack_socket = match (
            slack_service,
            &config.channels.slack.app_token,
            config.channels.slack.socket_mode,
        ) {
            (Some(service), Some(app_token), true) => {
                let settings = crate::channels::slack::socket::SocketModeSettings::new(
                    app_token.clone(),
                    &config.channels.slack.api_base_url,
                    config.sources.toncenter.retry.policy(),
                );
                let handle =
                    crate::channels::slack::socket::start(service, settings, http_stop.subscribe())
                        .map_err(|error| anyhow::anyhow!("channels.slack: {error}"))?;
                tracing::info!("slack: Socket Mode is on; connecting to Slack");
                Some(handle)
            }
            _ => None,
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let http_task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = http_stop_rx.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "HTTP server stopped");
            }
        });

        let telegram_task = match (telegram_settings, telegram_link) {
            (Some(settings), Some(link)) => Some(
                crate::channels::telegram::start(
                    state.clone(),
                    settings,
                    link,
                    &config.access.users,
                    telegram_webhook,
                    http_stop.subscribe(),
                )
                .await,
            ),
            _ => None,
        };

        let watched = policies.clone();
        let reload_interval = config.daemon.policy_reload_interval;
        let policy_task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(reload_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                watched.reload().await;
            }
        });

        let swept = gate.clone();
        let sweep_interval = config.access.expiry_check_interval;
        let escalate_after = config.access.escalate_after;
        let sweep_task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(sweep_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(error) = swept.sweep(escalate_after).await {
                    tracing::error!(%error, "approval expiry check failed");
                }
            }
        });

        let checkpoint_store = store.clone();
        let interval = config.daemon.checkpoint_interval;
        let checkpoint_task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                write_checkpoint(&checkpoint_store).await;
            }
        });

        let (background_stop, background_stop_rx) = watch::channel(false);
        let mut background = Vec::new();
        if let Some(memory) = vector_memory {
            background.push(tokio::spawn(memory.maintain(
                store.clone(),
                auditor.clone(),
                background_stop_rx.clone(),
            )));
        }
        background.push(tokio::spawn(crate::finance::monthly_backtests(
            store.clone(),
            Arc::clone(&finance),
            background_stop_rx.clone(),
        )));
        if !config.finance.portfolio.wallets.is_empty()
            || !config.finance.portfolio.limits.is_empty()
        {
            background.push(tokio::spawn(crate::finance::portfolio::daily(
                store.clone(),
                Arc::clone(&finance),
                Arc::clone(&onchain),
                auditor.clone(),
                telemetry.clone(),
                gate.clone(),
                context.alerts.clone(),
                background_stop_rx.clone(),
            )));
        }
        if config.finance.onchain.enabled {
            background.push(tokio::spawn(crate::finance::onchain::hourly(
                store.clone(),
                Arc::clone(&finance),
                Arc::clone(&onchain),
                background_stop_rx.clone(),
            )));
        }
        if config.briefings.enabled {
            background.push(tokio::spawn(crate::briefing::run(
                state.clone(),
                config.briefings.clone(),
                background_stop_rx,
            )));
        }

        Ok(Daemon {
            background,
            background_stop,
            state,
            http_addr,
            sim,
            supervisors,
            notifier,
            notifier_stop,
            router_task,
            router_stop,
            http_stop,
            http_task,
            telegram_task,
            slack_socket,
            checkpoint_task,
            policy_task,
            sweep_task,
            shutdown_grace: config.daemon.shutdown_grace,
        })
    }

    /// The Slack Socket Mode channel, when `channels.slack.socket_mode` is on.
    pub fn slack_socket(&self) -> Option<&crate::channels::slack::socket::SocketModeHandle> {
        self.slack_socket.as_ref()
    }

    /// The supervisor of an agent, by name.
    pub fn agent(&self, name: &str) -> Option<&Addr<AgentSupervisor>> {
        self.supervisors.get(name)
    }

    /// Orderly stop: agents finish their tick, the notifier drains, the journal records the
    /// stop and a final checkpoint, storage is flushed.
    pub async fn shutdown(mut self, reason: &str) -> anyhow::Result<()> {
        tracing::info!(%reason, "shutting down");
        self.policy_task.abort();
        let _ = (&mut self.policy_task).await;
        self.sweep_task.abort();
        let _ = (&mut self.sweep_task).await;
        let _ = self.background_stop.send(true);
        for task in self.background.drain(..) {
            if tokio::time::timeout(self.shutdown_grace, task)
                .await
                .is_err()
            {
                tracing::warn!("a memory or briefing task did not stop within the grace period");
            }
        }
        let grace = self.shutdown_grace;
        let stops = self
            .supervisors
            .values()
            .map(|addr| addr.send(Shutdown))
            .collect::<Vec<_>>();
        if tokio::time::timeout(grace, futures::future::join_all(stops))
            .await
            .is_err()
        {
            tracing::warn!(grace = ?grace, "agents did not stop within the grace period");
        }
        self.supervisors.clear();
        // Agents have stopped: nothing new can be queued. The router routes what is queued,
        // then the notifier delivers what the router dispatched, and each returns.
        self.state.agents = Arc::new(BTreeMap::new());
        let _ = self.router_stop.send(true);
        if tokio::time::timeout(grace, &mut self.router_task)
            .await
            .is_err()
        {
            tracing::warn!("alert router did not drain within the grace period");
            self.router_task.abort();
        }
        let _ = self.notifier_stop.send(true);
        if tokio::time::timeout(grace, &mut self.notifier)
            .await
            .is_err()
        {
            tracing::warn!("notifier did not drain within the grace period");
            self.notifier.abort();
        }
        let _ = self.http_stop.send(true);
        let _ = tokio::time::timeout(grace, &mut self.http_task).await;
        if let Some(socket) = self.slack_socket.take() {
            // Closes the WebSocket; an envelope not acknowledged yet is sent again by Slack.
            socket.join(grace).await;
        }
        if let Some(mut telegram) = self.telegram_task.take() {
            // A long poll in flight is abandoned: the offset is stored after every update.
            if tokio::time::timeout(Duration::from_millis(200), &mut telegram)
                .await
                .is_err()
            {
                telegram.abort();
            }
        }
        self.checkpoint_task.abort();
        let _ = (&mut self.checkpoint_task).await;
        self.state
            .auditor
            .record(
                "runtime",
                "daemon.stopped",
                "daemon",
                &serde_json::json!({ "reason": reason }),
            )
            .await?;
        write_checkpoint(&self.state.store).await;
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .context("storage thread")??;
        if let Some(sim) = &self.sim {
            sim.shutdown();
        }
        tracing::info!("stopped; storage flushed");
        Ok(())
    }
}

async fn write_checkpoint(store: &Store) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.write_checkpoint()).await {
        Ok(Ok(checkpoint)) => tracing::info!(
            count = checkpoint.count,
            head_hash = %checkpoint.head_hash,
            at = %checkpoint.at.to_rfc3339(),
            "journal checkpoint"
        ),
        Ok(Err(error)) => tracing::error!(%error, "could not write a journal checkpoint"),
        Err(error) => tracing::error!(%error, "checkpoint task failed"),
    }
}

/// SIGINT and SIGTERM, listened for from the moment [`ShutdownSignals::listen`] returns: a
/// signal that arrives before [`ShutdownSignals::recv`] is polled is kept, not met by the
/// default action (which would end the process without flushing the store).
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Resolves on SIGINT or SIGTERM with the signal's name.
    pub async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(self.interrupt) => "SIGINT",
                _ = next(self.terminate) => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// `command-center run`.
pub async fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Before anything can announce readiness: whoever waits for "ready" and then stops the
    // daemon must reach the orderly shutdown.
    let signals = ShutdownSignals::listen();
    let daemon = Daemon::start(config, options).await?;
    let state = daemon.state.clone();
    let addr = daemon.http_addr;
    // Announce readiness once every agent has started (tests and scripts wait for this line).
    let ready_state = state.clone();
    let ready = tokio::spawn(async move {
        let mut probe = tokio::time::interval(Duration::from_millis(10));
        loop {
            probe.tick().await;
            if crate::http::is_ready(&ready_state) {
                tracing::info!(
                    listen = %addr,
                    data_dir = %ready_state.store.data_dir().display(),
                    startup_ms = started.elapsed().as_millis() as u64,
                    "ready"
                );
                break;
            }
        }
    });
    if let Some(sim) = &daemon.sim {
        tracing::info!(
            status = %format!("http://{addr}/v1/status"),
            webhooks = %format!("{}/_sim/state", sim.base_url()),
            "demo running: try `command-center status` and `command-center audit tail` in another terminal"
        );
    }
    let reason = signals.recv().await;
    ready.abort();
    daemon.shutdown(reason).await
}

//! Semantic checks that types alone cannot express. Each returns (key path, message).

use std::time::Duration;

use tools::coingecko::CoinGeckoPlan;

use super::{Config, RetryConfig};

fn check_url(problems: &mut Vec<(String, String)>, path: &str, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        Ok(parsed) => problems.push((
            path.to_owned(),
            format!(
                "scheme {:?} is not supported; use http:// or https://",
                parsed.scheme()
            ),
        )),
        Err(error) => problems.push((path.to_owned(), format!("{url:?} is not a URL: {error}"))),
    }
}

fn check_rate(problems: &mut Vec<(String, String)>, path: &str, rate: f64) {
    if !(rate.is_finite() && rate > 0.0) {
        problems.push((
            path.to_owned(),
            format!(
                "must be a positive number of requests per second (0.1 = one every 10s), not {rate}"
            ),
        ));
    }
}

fn check_retry(problems: &mut Vec<(String, String)>, path: &str, retry: &RetryConfig) {
    if retry.max_attempts == 0 {
        problems.push((
            format!("{path}.max_attempts"),
            "must be 1 or more".to_owned(),
        ));
    }
    if retry.timeout.is_zero() {
        problems.push((
            format!("{path}.timeout"),
            "must be longer than 0s".to_owned(),
        ));
    }
    if retry.backoff_initial > retry.backoff_max {
        problems.push((
            format!("{path}.backoff_initial"),
            "must not exceed backoff_max".to_owned(),
        ));
    }
}

/// Every semantic problem of `config`.
pub fn validate(config: &Config) -> Vec<(String, String)> {
    let mut problems = Vec::new();

    if tracing_subscriber::EnvFilter::try_new(&config.daemon.log_level).is_err() {
        problems.push((
            "daemon.log_level".to_owned(),
            format!(
                "{:?} is not a log filter; use error, warn, info, debug, trace or e.g. \"info,runtime=debug\"",
                config.daemon.log_level
            ),
        ));
    }
    if config.daemon.checkpoint_interval < Duration::from_secs(1) {
        problems.push((
            "daemon.checkpoint_interval".to_owned(),
            "must be at least 1s".to_owned(),
        ));
    }

    if config.daemon.policy_reload_interval < Duration::from_millis(100) {
        problems.push((
            "daemon.policy_reload_interval".to_owned(),
            "must be at least 100ms".to_owned(),
        ));
    }

    let supervisor = &config.supervisor;
    if supervisor.backoff_initial.is_zero() || supervisor.backoff_initial > supervisor.backoff_max {
        problems.push((
            "supervisor.backoff_initial".to_owned(),
            "must be longer than 0s and not exceed backoff_max".to_owned(),
        ));
    }
    if supervisor.crash_loop_restarts == 0 {
        problems.push((
            "supervisor.crash_loop_restarts".to_owned(),
            "must be 1 or more".to_owned(),
        ));
    }
    if supervisor.crash_loop_window.is_zero() {
        problems.push((
            "supervisor.crash_loop_window".to_owned(),
            "must be longer than 0s".to_owned(),
        ));
    }

    let coingecko = &config.sources.coingecko;
    check_url(
        &mut problems,
        "sources.coingecko.base_url",
        &coingecko.base_url,
    );
    check_rate(
        &mut problems,
        "sources.coingecko.requests_per_second",
        coingecko.requests_per_second,
    );
    check_retry(&mut problems, "sources.coingecko.retry", &coingecko.retry);
    if coingecko.plan != CoinGeckoPlan::Public
        && coingecko.api_key.is_none()
        && coingecko.api_key_file.is_none()
    {
        problems.push((
            "sources.coingecko.api_key".to_owned(),
            format!(
                "the {} plan needs an API key: set COMMAND_CENTER__SOURCES__COINGECKO__API_KEY or sources.coingecko.api_key_file",
                match coingecko.plan {
                    CoinGeckoPlan::Pro => "pro",
                    _ => "demo",
                }
            ),
        ));
    }

    let toncenter = &config.sources.toncenter;
    check_url(
        &mut problems,
        "sources.toncenter.base_url",
        &toncenter.base_url,
    );
    check_rate(
        &mut problems,
        "sources.toncenter.requests_per_second",
        toncenter.requests_per_second,
    );
    check_retry(&mut problems, "sources.toncenter.retry", &toncenter.retry);
    check_url(
        &mut problems,
        "sources.toncenter.elections_url",
        &toncenter.elections_url,
    );
    check_url(
        &mut problems,
        "sources.toncenter.qos_url",
        &toncenter.qos_url,
    );

    let tonapi = &config.sources.tonapi;
    check_url(&mut problems, "sources.tonapi.base_url", &tonapi.base_url);
    check_rate(
        &mut problems,
        "sources.tonapi.requests_per_second",
        tonapi.requests_per_second,
    );
    check_retry(&mut problems, "sources.tonapi.retry", &tonapi.retry);

    let slack = &config.channels.slack;
    if slack.enabled {
        if slack.socket_mode {
            if slack.app_token.is_none() && slack.app_token_file.is_none() {
                problems.push((
                    "channels.slack.app_token".to_owned(),
                    "Slack Socket Mode (channels.slack.socket_mode = true) needs the app-level token: set COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN or channels.slack.app_token_file (Basic Information, App-Level Tokens, xapp-... with the connections:write scope); the signing secret is not needed in Socket Mode".to_owned(),
                ));
            }
        } else if slack.signing_secret.is_none() && slack.signing_secret_file.is_none() {
            problems.push((
                "channels.slack.signing_secret".to_owned(),
                "Slack is enabled but has no signing secret: set COMMAND_CENTER__CHANNELS__SLACK__SIGNING_SECRET or channels.slack.signing_secret_file (the app's Basic Information page shows it), or set channels.slack.socket_mode = true with an app-level token when the daemon has no public URL".to_owned(),
            ));
        }
        if slack.bot_token.is_none() && slack.bot_token_file.is_none() {
            problems.push((
                "channels.slack.bot_token".to_owned(),
                "Slack is enabled but has no bot token: set COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN or channels.slack.bot_token_file (the Bot User OAuth Token, xoxb-...)".to_owned(),
            ));
        }
    }
    // A token of the wrong kind is a common paste mistake; the value is never repeated.
    if let Some(token) = &slack.app_token
        && !token.expose().trim().starts_with("xapp-")
    {
        let kind = match token.expose().trim().get(..5) {
            Some("xoxb-") => "a bot token (xoxb-...)",
            Some("xoxp-") => "a user token (xoxp-...)",
            _ => "not an app-level token",
        };
        problems.push((
            "channels.slack.app_token".to_owned(),
            format!("the value is {kind}; Socket Mode needs the app-level token, which starts with xapp- (Basic Information, App-Level Tokens)"),
        ));
    }
    check_url(
        &mut problems,
        "channels.slack.api_base_url",
        &slack.api_base_url,
    );
    check_rate(
        &mut problems,
        "channels.slack.requests_per_second",
        slack.requests_per_second,
    );

    let telegram = &config.channels.telegram;
    if telegram.enabled && telegram.bot_token.is_none() && telegram.bot_token_file.is_none() {
        problems.push((
            "channels.telegram.bot_token".to_owned(),
            "Telegram is enabled but has no bot token: set COMMAND_CENTER__CHANNELS__TELEGRAM__BOT_TOKEN or channels.telegram.bot_token_file (from @BotFather)".to_owned(),
        ));
    }
    check_url(
        &mut problems,
        "channels.telegram.api_url",
        &telegram.api_url,
    );
    if let Some(url) = &telegram.webhook_url {
        match reqwest::Url::parse(url) {
            Ok(parsed) => {
                let loopback = parsed.host_str().is_some_and(|host| {
                    host == "localhost"
                        || host
                            .trim_matches(|c| c == '[' || c == ']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
                if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                    problems.push((
                        "channels.telegram.webhook_url".to_owned(),
                        format!("Telegram posts only to https URLs (ports 443, 80, 88 or 8443); got {:?}", parsed.scheme()),
                    ));
                }
            }
            Err(error) => problems.push((
                "channels.telegram.webhook_url".to_owned(),
                format!("not a URL ({error}): the public https address Telegram posts updates to"),
            )),
        }
        match &telegram.webhook_secret {
            None if telegram.webhook_secret_file.is_none() => problems.push((
                "channels.telegram.webhook_secret".to_owned(),
                "webhook mode needs a secret token so forged updates are refused: set COMMAND_CENTER__CHANNELS__TELEGRAM__WEBHOOK_SECRET or channels.telegram.webhook_secret_file (1-256 characters of A-Z, a-z, 0-9, _ and -; e.g. `openssl rand -hex 32`)".to_owned(),
            )),
            Some(secret)
                if !(1..=256).contains(&secret.expose().len())
                    || !secret
                        .expose()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                problems.push((
                    "channels.telegram.webhook_secret".to_owned(),
                    "Telegram accepts 1-256 characters of A-Z, a-z, 0-9, _ and - as a secret token (e.g. `openssl rand -hex 32`)".to_owned(),
                ));
            }
            _ => {}
        }
    }
    let reasoner = &config.reasoner;
    if reasoner.enabled {
        check_url(&mut problems, "reasoner.base_url", &reasoner.base_url);
        if reasoner.model.trim().is_empty() {
            problems.push((
                "reasoner.model".to_owned(),
                "name the model (gpt-4o-mini, or what your server serves)".to_owned(),
            ));
        }
        if !(1..=20).contains(&reasoner.max_steps) {
            problems.push((
                "reasoner.max_steps".to_owned(),
                "must be 1 to 20 model calls per question".to_owned(),
            ));
        }
    }
    if telegram.long_poll > Duration::from_secs(50) {
        problems.push((
            "channels.telegram.long_poll".to_owned(),
            "must be at most 50s".to_owned(),
        ));
    }
    if telegram.enabled
        && !config
            .access
            .users
            .iter()
            .any(|user| user.telegram_id.is_some())
    {
        problems.push((
            "channels.telegram.enabled".to_owned(),
            "the bot would serve nobody: give at least one [[access.users]] a telegram_id"
                .to_owned(),
        ));
    }

    for problem in config.agents.market.validate() {
        problems.push((format!("agents.market.{}", problem.path), problem.message));
    }
    for problem in config.agents.validators.validate() {
        problems.push((
            format!("agents.validators.{}", problem.path),
            problem.message,
        ));
    }

    let mut names = std::collections::BTreeSet::new();
    for (index, webhook) in config.notify.webhooks.iter().enumerate() {
        let at = |key: &str| format!("notify.webhooks[{index}].{key}");
        if webhook.name.trim().is_empty() {
            problems.push((at("name"), "must not be empty".to_owned()));
        } else if !names.insert(webhook.name.clone()) {
            problems.push((
                at("name"),
                format!(
                    "{:?} is used by another webhook; names must be unique",
                    webhook.name
                ),
            ));
        }
        check_url(&mut problems, &at("url"), &webhook.url);
        if webhook.max_attempts == 0 {
            problems.push((at("max_attempts"), "must be 1 or more".to_owned()));
        }
        if webhook.timeout.is_zero() {
            problems.push((at("timeout"), "must be longer than 0s".to_owned()));
        }
    }

    let mut user_names = std::collections::BTreeSet::new();
    for (index, user) in config.access.users.iter().enumerate() {
        let at = |key: &str| format!("access.users[{index}].{key}");
        if user.name.trim().is_empty() || user.name.len() > 64 {
            problems.push((at("name"), "must be 1 to 64 characters".to_owned()));
        } else if !user_names.insert(user.name.clone()) {
            problems.push((at("name"), format!("{:?} is listed twice", user.name)));
        }
        if let Some(hash) = &user.token_sha256
            && !(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        {
            problems.push((
                at("token_sha256"),
                "must be 64 hex characters (the SHA-256 of the token, never the token itself; `command-center token new --user NAME` prints it)".to_owned(),
            ));
        }
    }
    if config.access.expiry_check_interval < Duration::from_millis(100) {
        problems.push((
            "access.expiry_check_interval".to_owned(),
            "must be at least 100ms".to_owned(),
        ));
    }

    if let Some(email) = &config.notify.email {
        validate_email(email, &mut problems);
    }
    validate_alerting(config, &mut problems);
    validate_memory(config, &mut problems);
    for problem in config.finance.problems() {
        let (path, message) = problem.split_once(": ").map_or(
            ("finance".to_owned(), problem.clone()),
            |(path, message)| (path.to_owned(), message.to_owned()),
        );
        problems.push((path, message));
    }
    validate_briefings(config, &mut problems);

    if !(config.demo.speed.is_finite() && config.demo.speed > 0.0) {
        problems.push((
            "demo.speed".to_owned(),
            "must be a positive number of simulated seconds per real second".to_owned(),
        ));
    }
    problems
}

/// `[notify.email]`: an address to send from, a reachable kind of security, a login that
/// is whole, a CA file that holds certificates.
fn validate_email(email: &super::EmailConfig, problems: &mut Vec<(String, String)>) {
    use super::SmtpSecurity;

    let at = |key: &str| format!("notify.email.{key}");
    if email.host.trim().is_empty() {
        problems.push((
            at("host"),
            "must name the SMTP server (smtp.example.com)".to_owned(),
        ));
    }
    if email.port == Some(0) {
        problems.push((at("port"), "must be 1 to 65535".to_owned()));
    }
    if let Err(error) = email.from.trim().parse::<lettre::message::Mailbox>() {
        problems.push((
            at("from"),
            format!(
                "{:?} is not an email address ({error}); write alerts@example.com or \"Command Center <alerts@example.com>\"",
                email.from
            ),
        ));
    }
    if email.security == SmtpSecurity::None && !email.is_loopback() && !email.allow_insecure {
        problems.push((
            at("security"),
            format!(
                "\"none\" sends mail (and the password) in clear text, so it is allowed only for a relay on this machine (localhost, 127.0.0.1, ::1), not {:?}; use \"starttls\" (port 587) or \"tls\" (port 465), or set allow_insecure = true if the network between is trusted",
                email.host
            ),
        ));
    }
    if email.security == SmtpSecurity::None && email.ca_file.is_some() {
        problems.push((
            at("ca_file"),
            "security = \"none\" uses no TLS, so a CA file has nothing to verify; remove it or use \"starttls\" or \"tls\"".to_owned(),
        ));
    }
    let has_password = email.password.is_some() || email.password_file.is_some();
    match (&email.username, has_password) {
        (Some(username), false) => problems.push((
            at("password"),
            format!(
                "username {username:?} is set but no password: set COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD or notify.email.password_file"
            ),
        )),
        (None, true) => problems.push((
            at("username"),
            "a password is set but no username to log in with".to_owned(),
        )),
        (Some(username), true) if username.trim().is_empty() => {
            problems.push((at("username"), "must not be empty".to_owned()))
        }
        _ => {}
    }
    if email.timeout.is_zero() {
        problems.push((at("timeout"), "must be longer than 0s".to_owned()));
    }
    if email.max_attempts == 0 {
        problems.push((at("max_attempts"), "must be 1 or more".to_owned()));
    }
    if email.backoff_initial > email.backoff_max {
        problems.push((
            at("backoff_initial"),
            "must not exceed backoff_max".to_owned(),
        ));
    }
    if email.ca_file.is_some()
        && email.security != SmtpSecurity::None
        && let Err(crate::notifier::email::EmailError::InvalidInput { key, message }) =
            crate::notifier::email::tls_parameters(email)
    {
        problems.push((key, message));
    }
}

fn check_matchers(problems: &mut Vec<(String, String)>, path: &str, matchers: &[String]) {
    for (index, text) in matchers.iter().enumerate() {
        if let Err(message) = crate::router::matcher::Matcher::parse(text) {
            problems.push((format!("{path}[{index}]"), message));
        }
    }
}

/// `[alerting]`: receivers exist and can deliver, matchers and schedules parse.
fn validate_alerting(config: &Config, problems: &mut Vec<(String, String)>) {
    use super::{DEFAULT_RECEIVER, ReceiverKind, RouteConfig};

    let alerting = &config.alerting;
    let mut receivers = std::collections::BTreeSet::from([DEFAULT_RECEIVER.to_owned()]);
    for (index, receiver) in alerting.receivers.iter().enumerate() {
        let at = |key: &str| format!("alerting.receivers[{index}].{key}");
        if receiver.name.trim().is_empty() {
            problems.push((at("name"), "must not be empty".to_owned()));
        } else if receiver.name == DEFAULT_RECEIVER {
            problems.push((
                at("name"),
                format!("{DEFAULT_RECEIVER:?} is built in (the log and every [[notify.webhooks]] entry); choose another name"),
            ));
        } else if !receivers.insert(receiver.name.clone()) {
            problems.push((at("name"), format!("{:?} is listed twice", receiver.name)));
        }
        match receiver.kind {
            ReceiverKind::Log => {}
            ReceiverKind::Webhook => match &receiver.webhook {
                None => problems.push((
                    at("webhook"),
                    "a webhook receiver names a [[notify.webhooks]] entry: webhook = \"<its name>\"".to_owned(),
                )),
                Some(name) if !config.notify.webhooks.iter().any(|hook| &hook.name == name) => {
                    problems.push((
                        at("webhook"),
                        format!(
                            "no [[notify.webhooks]] entry is named {name:?}; known: {}",
                            config
                                .notify
                                .webhooks
                                .iter()
                                .map(|hook| hook.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
                Some(_) => {}
            },
            ReceiverKind::Telegram => {
                if !config.channels.telegram.enabled {
                    problems.push((
                        at("kind"),
                        "telegram receivers send through the bot: enable [channels.telegram] first".to_owned(),
                    ));
                }
                if receiver.chat.as_deref().and_then(|chat| chat.trim().parse::<i64>().ok()).is_none() {
                    problems.push((
                        at("chat"),
                        "a telegram receiver names a chat id: chat = \"-1001234567890\" (a group) or a person's user id".to_owned(),
                    ));
                }
            }
            ReceiverKind::Slack => {
                if !config.channels.slack.enabled {
                    problems.push((
                        at("kind"),
                        "slack receivers post through the Slack app: enable [channels.slack] first".to_owned(),
                    ));
                }
                if receiver.channel.as_deref().is_none_or(|channel| channel.trim().is_empty()) {
                    problems.push((
                        at("channel"),
                        "a slack receiver names a channel id: channel = \"C0123ALERTS\" (invite the app to it)".to_owned(),
                    ));
                }
            }
            ReceiverKind::Email => {
                if config.notify.email.is_none() {
                    problems.push((
                        at("kind"),
                        "email receivers send through an SMTP server: add [notify.email] with host and from (and username, password_file for AUTH)".to_owned(),
                    ));
                }
                if receiver.to.is_empty() {
                    problems.push((
                        at("to"),
                        "an email receiver lists its recipients: to = [\"oncall@example.com\"]".to_owned(),
                    ));
                }
                if let Err(bad) = crate::notifier::email::parse_recipients(&receiver.to) {
                    for (position, message) in bad {
                        problems.push((format!("{}[{position}]", at("to")), message));
                    }
                }
            }
        }
        if receiver.kind != ReceiverKind::Email && !receiver.to.is_empty() {
            problems.push((
                at("to"),
                format!(
                    "only email receivers have recipients; this one is kind = {:?}",
                    receiver.kind.as_str()
                ),
            ));
        }
    }

    fn walk(
        route: &RouteConfig,
        path: &str,
        receivers: &std::collections::BTreeSet<String>,
        problems: &mut Vec<(String, String)>,
    ) {
        if let Some(receiver) = &route.receiver
            && !receivers.contains(receiver)
        {
            problems.push((
                format!("{path}.receiver"),
                format!(
                    "no receiver named {receiver:?}; known: {}",
                    receivers.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        check_matchers(problems, &format!("{path}.matchers"), &route.matchers);
        if let Some(labels) = &route.group_by
            && labels.iter().any(|label| label.trim().is_empty())
        {
            problems.push((
                format!("{path}.group_by"),
                "label names must not be empty".to_owned(),
            ));
        }
        for (index, child) in route.routes.iter().enumerate() {
            walk(
                child,
                &format!("{path}.routes[{index}]"),
                receivers,
                problems,
            );
        }
    }
    walk(&alerting.route, "alerting.route", &receivers, problems);

    for (index, rule) in alerting.inhibit_rules.iter().enumerate() {
        let at = |key: &str| format!("alerting.inhibit_rules[{index}].{key}");
        if rule.source_matchers.is_empty() {
            problems.push((
                at("source_matchers"),
                "needs at least one matcher".to_owned(),
            ));
        }
        if rule.target_matchers.is_empty() {
            problems.push((
                at("target_matchers"),
                "needs at least one matcher".to_owned(),
            ));
        }
        check_matchers(problems, &at("source_matchers"), &rule.source_matchers);
        check_matchers(problems, &at("target_matchers"), &rule.target_matchers);
    }
    for (index, step) in alerting.escalation.iter().enumerate() {
        let at = |key: &str| format!("alerting.escalation[{index}].{key}");
        if !receivers.contains(&step.receiver) {
            problems.push((
                at("receiver"),
                format!("no receiver named {:?}", step.receiver),
            ));
        }
        if step.escalate_after.is_zero() {
            problems.push((at("escalate_after"), "must be longer than 0s".to_owned()));
        }
        check_matchers(problems, &at("matchers"), &step.matchers);
    }
    for (index, window) in alerting.maintenance_windows.iter().enumerate() {
        let at = |key: &str| format!("alerting.maintenance_windows[{index}].{key}");
        if window.name.trim().is_empty() {
            problems.push((at("name"), "must not be empty".to_owned()));
        }
        if let Err(message) = crate::router::schedule::WeeklyWindow::parse(&window.schedule) {
            problems.push((at("schedule"), message));
        }
        check_matchers(problems, &at("matchers"), &window.matchers);
    }
    if alerting.evaluation_interval < Duration::from_millis(100) {
        problems.push((
            "alerting.evaluation_interval".to_owned(),
            "must be at least 100ms".to_owned(),
        ));
    }
}

/// `[memory]`: the chosen backend and embedder have what they need.
fn validate_memory(config: &Config, problems: &mut Vec<(String, String)>) {
    use super::{EmbedderChoice, MemoryBackend};

    let memory = &config.memory;
    if !memory.enabled {
        return;
    }
    if memory.backend == MemoryBackend::Qdrant {
        check_url(problems, "memory.qdrant.url", &memory.qdrant.url);
        if memory.qdrant.collection.trim().is_empty()
            || !memory
                .qdrant
                .collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push((
                "memory.qdrant.collection".to_owned(),
                "use letters, digits, _ and - (e.g. \"command_center_memory\")".to_owned(),
            ));
        }
    }
    if memory.embedder == EmbedderChoice::Local {
        let dir = memory.model_dir(&config.daemon.data_dir);
        if let Some(missing) = ::memory::minilm::MODEL_FILES
            .iter()
            .find(|file| !dir.join(file).is_file())
        {
            problems.push((
                "memory.embedder".to_owned(),
                format!(
                    "\"local\" needs the model, but {} is missing; run `command-center models install` (or use \"auto\", which falls back to hashing)",
                    dir.join(missing).display()
                ),
            ));
        }
    }
    if memory.embedder == EmbedderChoice::Openai {
        check_url(problems, "memory.openai.base_url", &memory.openai.base_url);
        if memory.openai.model.trim().is_empty() {
            problems.push((
                "memory.openai.model".to_owned(),
                "name the embeddings model (text-embedding-3-small, or what your server serves)"
                    .to_owned(),
            ));
        }
    }
    if memory.recency_half_life.is_zero() {
        problems.push((
            "memory.recency_half_life".to_owned(),
            "must be longer than 0s (e.g. \"7d\")".to_owned(),
        ));
    }
    if memory.expire_interval < std::time::Duration::from_secs(60) {
        problems.push((
            "memory.expire_interval".to_owned(),
            "must be at least 1m".to_owned(),
        ));
    }
}

/// `[briefings]`: a time of day, known domains, existing receivers.
fn validate_briefings(config: &Config, problems: &mut Vec<(String, String)>) {
    let briefings = &config.briefings;
    if !briefings.enabled {
        return;
    }
    if let Err(message) = briefings.time() {
        problems.push(("briefings.at".to_owned(), message));
    }
    for (index, domain) in briefings.domains.iter().enumerate() {
        if !crate::briefing::DOMAINS.contains(&domain.as_str()) {
            problems.push((
                format!("briefings.domains[{index}]"),
                format!(
                    "no domain agent {domain:?}; known: {}",
                    crate::briefing::DOMAINS.join(", ")
                ),
            ));
        }
    }
    if briefings.receivers.is_empty() {
        problems.push((
            "briefings.receivers".to_owned(),
            "name at least one receiver of [[alerting.receivers]] (or \"default\")".to_owned(),
        ));
    }
    for (index, name) in briefings.receivers.iter().enumerate() {
        if name != super::DEFAULT_RECEIVER
            && !config
                .alerting
                .receivers
                .iter()
                .any(|receiver| &receiver.name == name)
        {
            problems.push((
                format!("briefings.receivers[{index}]"),
                format!("no receiver named {name:?} in [[alerting.receivers]]"),
            ));
        }
    }
}

#[cfg(test)]
mod validators_tests {
    use crate::config::load_text;

    const WALLET: &str = "-1:3333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn a_bad_validator_wallet_is_reported_with_its_key_path_and_line() {
        let text = "\
[agents.validators]
enabled = true

[[agents.validators.validators]]
name = \"v1\"
wallet = \"EQ-not-an-address\"
";
        let errors = load_text(text, "test.toml", &[]).expect_err("expected problems");
        let found: Vec<String> = errors.problems.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("test.toml:6: agents.validators.validators[0].wallet: "),
            "{found:?}"
        );
    }

    #[test]
    fn validators_thresholds_and_duplicates_are_checked() {
        let text = format!(
            "\
[agents.validators]
enabled = true
disk_warning_percent = 90.0
disk_critical_percent = 85.0

[[agents.validators.validators]]
name = \"v1\"
wallet = \"{WALLET}\"

[[agents.validators.validators]]
name = \"v1\"
wallet = \"{WALLET}\"
"
        );
        let errors = load_text(&text, "test.toml", &[]).expect_err("expected problems");
        let paths: Vec<&str> = errors.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "agents.validators.validators[1].name",
                "agents.validators.disk_critical_percent"
            ]
        );
    }

    #[test]
    fn a_valid_validators_section_loads() {
        let text = format!(
            "[agents.validators]\nenabled = true\n[[agents.validators.validators]]\nname = \"v1\"\nwallet = \"{WALLET}\"\nmetrics_url = \"http://10.0.0.5:9100/metrics\"\n"
        );
        let config = load_text(&text, "test.toml", &[]).unwrap_or_else(|errors| panic!("{errors}"));
        assert!(config.agents.validators.enabled);
        assert_eq!(config.agents.validators.validators.len(), 1);
        assert_eq!(config.agents.validators.max_sync_lag.as_secs(), 120);
    }
}

use super::*;

fn load_ok(text: &str, env: &[(&str, &str)]) -> Config {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match load_text(text, "test.toml", &env) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    }
}

fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_text(text, "test.toml", &env)
        .expect_err("expected problems")
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn embedded_default_loads_and_validates() {
    let config = load(&ConfigSource::Embedded, &[]).unwrap();
    assert_eq!(config.daemon.http_listen.port(), 8750);
    assert_eq!(config.agents.market.move_alerts.len(), 1);
    assert_eq!(config.agents.market.move_alerts[0].percent, 10.0);
    assert_eq!(config.sources.coingecko.plan, CoinGeckoPlan::Public);
}

#[test]
fn the_example_file_states_the_real_defaults() {
    // A file that leaves a key out must behave exactly like the commented example says.
    let from_example = load(&ConfigSource::Embedded, &[]).unwrap();
    let example = toml::to_string(&from_example).unwrap();
    let defaults = toml::to_string(&Config::default()).unwrap();
    assert_eq!(example, defaults);
    let from_empty = load_text("", "empty.toml", &[]).unwrap();
    assert_eq!(toml::to_string(&from_empty).unwrap(), defaults);
}

#[test]
fn empty_file_means_defaults() {
    let config = load_ok("", &[]);
    assert_eq!(config.daemon.data_dir, PathBuf::from("data"));
    assert!(config.agents.market.enabled);
}

#[test]
fn environment_overrides_the_file() {
    let config = load_ok(
        "[daemon]\nhttp_listen = \"127.0.0.1:1\"\n",
        &[
            ("COMMAND_CENTER__DAEMON__HTTP_LISTEN", "127.0.0.1:9999"),
            ("COMMAND_CENTER__AGENTS__MARKET__INTERVAL", "30s"),
            (
                "COMMAND_CENTER__AGENTS__MARKET__SOURCE_FAILURE_ALERT_AFTER",
                "7",
            ),
            ("COMMAND_CENTER__SOURCES__COINGECKO__API_KEY", "12345"),
        ],
    );
    assert_eq!(config.daemon.http_listen.port(), 9999);
    assert_eq!(config.agents.market.interval, Duration::from_secs(30));
    assert_eq!(config.agents.market.source_failure_alert_after, 7);
    assert_eq!(
        config
            .sources
            .coingecko
            .api_key
            .as_ref()
            .map(Secret::expose),
        Some("12345"),
        "an all-digit key stays a string"
    );
}

#[test]
fn every_problem_is_reported_with_path_and_line() {
    let text = "\
[daemon]
http_listen = \"not an address\"
colour = \"blue\"

[supervisor]
crash_loop_restarts = 0

[agents.market]
coins = [\"bitcoin\"]

[[agents.market.move_alerts]]
coin = \"the-open-network\"
percent = 10.0
window = \"1h\"

[surprise]
x = 1
";
    let found = problems(text, &[]);
    let joined = found.join("\n");
    assert!(
        joined.contains("test.toml:2: daemon.http_listen: invalid socket address syntax"),
        "{joined}"
    );
    assert!(
        joined.contains("test.toml:6: supervisor.crash_loop_restarts: must be 1 or more"),
        "{joined}"
    );
    assert!(
        joined.contains("test.toml:12: agents.market.move_alerts[0].coin: coin \"the-open-network\" is not polled"),
        "{joined}"
    );
    assert!(
        joined.contains("test.toml:16: surprise: unknown section"),
        "{joined}"
    );
    assert!(
        joined.contains("test.toml:3: daemon.colour: unknown field `colour`"),
        "{joined}"
    );
    assert_eq!(found.len(), 5, "{joined}");
}

#[test]
fn unknown_key_names_the_key_and_line() {
    let found = problems("[daemon]\n\ncolour = \"blue\"\n", &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("test.toml:3: daemon.colour: unknown field `colour`"),
        "{found:?}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let found = problems("[daemon]\nhttp_listen = \n", &[]);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("test.toml:2: (syntax)"), "{found:?}");
}

#[test]
fn secrets_in_the_file_are_refused_without_echoing_them() {
    let text = "[sources.coingecko]\nplan = \"pro\"\napi_key = \"CG-SECRET-VALUE\"\n";
    let found = problems(text, &[]);
    let joined = found.join("\n");
    assert!(joined.contains("test.toml:3: sources.coingecko.api_key: secrets are not read from the configuration file"), "{joined}");
    assert!(
        !joined.contains("CG-SECRET-VALUE"),
        "the secret leaked: {joined}"
    );
}

#[test]
fn a_paid_plan_without_a_key_is_a_missing_secret() {
    let found = problems("[sources.coingecko]\nplan = \"pro\"\n", &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("sources.coingecko.api_key: the pro plan needs an API key"),
        "{found:?}"
    );
}

#[test]
fn secret_file_is_read_and_a_missing_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cg.key");
    std::fs::write(&key, "from-file\n").unwrap();
    let config = load_ok(
        &format!(
            "[sources.coingecko]\nplan = \"demo\"\napi_key_file = {:?}\n",
            key.display().to_string()
        ),
        &[],
    );
    assert_eq!(
        config
            .sources
            .coingecko
            .api_key
            .as_ref()
            .map(Secret::expose),
        Some("from-file")
    );

    let missing = dir.path().join("absent.key");
    let found = problems(
        &format!(
            "[sources.coingecko]\nplan = \"demo\"\napi_key_file = {:?}\n",
            missing.display().to_string()
        ),
        &[],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .starts_with("test.toml:3: sources.coingecko.api_key_file: cannot read secret file"),
        "{found:?}"
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let found = problems(
        "",
        &[("COMMAND_CENTER__DAEMON__CHECKPOINT_INTERVAL", "often")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("environment variable COMMAND_CENTER__DAEMON__CHECKPOINT_INTERVAL: daemon.checkpoint_interval: invalid duration"),
        "{found:?}"
    );
}

#[test]
fn webhook_urls_are_redacted_when_serialized() {
    assert_eq!(
        redact_url("https://hooks.slack.com/services/T0/B0/XYZsecret"),
        "https://hooks.slack.com/***"
    );
    assert_eq!(
        redact_url("http://127.0.0.1:9000/"),
        "http://127.0.0.1:9000"
    );
    let config = load_ok(
        "[[notify.webhooks]]\nname = \"ops\"\nurl = \"https://hooks.slack.com/services/T0/B0/XYZsecret\"\n",
        &[("COMMAND_CENTER__SOURCES__TONCENTER__API_KEY", "TC-KEY-1")],
    );
    let text = serde_json::to_string(&config).unwrap();
    assert!(!text.contains("XYZsecret"), "{text}");
    assert!(!text.contains("TC-KEY-1"), "{text}");
    assert!(text.contains("hooks.slack.com"), "{text}");
}

const EMAIL_RECEIVER: &str = "
[[alerting.receivers]]
name = \"pager\"
kind = \"email\"
to = [\"oncall@example.com\", \"Ops <ops@example.com>\"]
";

#[test]
fn an_email_receiver_with_an_smtp_server_loads_with_the_password_from_the_environment() {
    let text = format!(
        "[notify.email]\nhost = \"smtp.example.com\"\nusername = \"alerts@example.com\"\nfrom = \"Command Center <alerts@example.com>\"\n{EMAIL_RECEIVER}"
    );
    let config = load_ok(
        &text,
        &[("COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD", "12345678")],
    );
    let email = config.notify.email.as_ref().unwrap();
    assert_eq!(email.security, SmtpSecurity::Starttls);
    assert_eq!(email.port(), 587);
    assert_eq!(email.timeout, Duration::from_secs(10));
    assert_eq!(email.max_attempts, 4);
    assert_eq!(
        email.password.as_ref().map(Secret::expose),
        Some("12345678"),
        "an all-digit password stays a string"
    );
    assert_eq!(config.alerting.receivers[0].to.len(), 2);
    let journaled = serde_json::to_string(&config).unwrap();
    assert!(!journaled.contains("12345678"), "{journaled}");
}

#[test]
fn an_smtp_password_in_the_file_is_refused_without_echoing_it() {
    let found = problems(
        "[notify.email]\nhost = \"smtp.example.com\"\nusername = \"a\"\npassword = \"PW-IN-FILE\"\nfrom = \"a@example.com\"\n",
        &[],
    );
    let joined = found.join("\n");
    assert!(
        joined.contains("test.toml:4: notify.email.password: secrets are not read from the configuration file; set COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD or `password_file`"),
        "{joined}"
    );
    assert!(!joined.contains("PW-IN-FILE"), "{joined}");
}

#[test]
fn email_receivers_without_an_smtp_server_or_with_bad_addresses_are_reported() {
    let found = problems(
        "[[alerting.receivers]]\nname = \"pager\"\nkind = \"email\"\nto = [\"oncall@example.com\", \"not an address\"]\n\n[[alerting.receivers]]\nname = \"empty\"\nkind = \"email\"\n",
        &[],
    );
    let joined = found.join("\n");
    assert_eq!(found.len(), 4, "{joined}");
    assert!(
        joined.contains("test.toml:3: alerting.receivers[0].kind: email receivers send through an SMTP server: add [notify.email] with host and from"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "test.toml:4: alerting.receivers[0].to[1]: \"not an address\" is not an email address"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("alerting.receivers[1].to: an email receiver lists its recipients"),
        "{joined}"
    );
}

#[test]
fn smtp_server_problems_are_all_reported_with_their_keys() {
    let text = format!(
        "[notify.email]\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nusername = \"alerts\"\nfrom = \"alerts at example.com\"\nmax_attempts = 0\n{EMAIL_RECEIVER}"
    );
    let found = problems(&text, &[]);
    let joined = found.join("\n");
    assert_eq!(found.len(), 4, "{joined}");
    for expected in [
        "test.toml:5: notify.email.from: \"alerts at example.com\" is not an email address",
        "test.toml:3: notify.email.security: \"none\" sends mail (and the password) in clear text, so it is allowed only for a relay on this machine (localhost, 127.0.0.1, ::1), not \"smtp.example.com\"; use \"starttls\" (port 587) or \"tls\" (port 465), or set allow_insecure = true",
        "notify.email.password: username \"alerts\" is set but no password: set COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD or notify.email.password_file",
        "test.toml:6: notify.email.max_attempts: must be 1 or more",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in\n{joined}"
        );
    }
}

#[test]
fn plain_smtp_is_fine_to_a_loopback_relay_or_when_explicitly_allowed() {
    let local = load_ok(
        &format!(
            "[notify.email]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nfrom = \"cc@localhost\"\n{EMAIL_RECEIVER}"
        ),
        &[],
    );
    assert_eq!(local.notify.email.as_ref().unwrap().port(), 25);
    load_ok(
        &format!(
            "[notify.email]\nhost = \"relay.internal\"\nsecurity = \"none\"\nallow_insecure = true\nfrom = \"cc@example.com\"\n{EMAIL_RECEIVER}"
        ),
        &[],
    );
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let found = problems(
        &format!(
            "[notify.email]\nhost = \"smtp.example.com\"\nfrom = \"cc@example.com\"\nca_file = {:?}\n",
            ca.display().to_string()
        ),
        &[],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("test.toml:4: notify.email.ca_file: ")
            && found[0].contains("holds no PEM certificate"),
        "{found:?}"
    );
}

#[test]
fn the_commented_email_example_loads_once_uncommented() {
    // The example's [notify.email] block and email receiver, with real files for the paths.
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "pw\n").unwrap();
    let ca = dir.path().join("ca.pem");
    let certificates = tools::sim::SimCertificates::generate(&["localhost"]).unwrap();
    std::fs::write(&ca, &certificates.ca_pem).unwrap();
    let block = |header: &str| -> String {
        let mut lines = EXAMPLE_CONFIG
            .lines()
            .skip_while(|line| !line.starts_with(header))
            .take_while(|line| line.starts_with("# ") && !line.starts_with("# The "));
        let mut out = String::new();
        if let Some(first) = lines.next() {
            out.push_str(&first[2..]);
            out.push('\n');
        }
        for line in lines.take_while(|line| !line.starts_with("# [")) {
            out.push_str(&line[2..]);
            out.push('\n');
        }
        out
    };
    let receivers = EXAMPLE_CONFIG
        .split("# [[alerting.receivers]]\n")
        .nth(2)
        .unwrap()
        .lines()
        .take_while(|line| line.starts_with("# "))
        .map(|line| format!("{}\n", &line[2..]))
        .collect::<String>();
    let text = format!(
        "{}\n[[alerting.receivers]]\n{receivers}",
        block("# [notify.email]")
            .replace(
                "/run/secrets/smtp-password",
                &password.display().to_string()
            )
            .replace("/etc/command-center/smtp-ca.pem", &ca.display().to_string())
    );
    let config = load_ok(&text, &[]);
    let email = config.notify.email.unwrap();
    assert_eq!(email.host, "smtp.example.com");
    assert_eq!(email.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(config.alerting.receivers[0].kind, ReceiverKind::Email);
}

#[test]
fn slack_needs_the_signing_secret_over_http_and_the_app_token_in_socket_mode() {
    // HTTP endpoints: signing secret and bot token; the message points at Socket Mode too.
    let found = problems("[channels.slack]\nenabled = true\n", &[]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0]
            .contains("channels.slack.signing_secret: Slack is enabled but has no signing secret")
            && found[0].contains("socket_mode = true"),
        "{found:?}"
    );
    assert!(found[1].contains("channels.slack.bot_token:"), "{found:?}");

    // Socket Mode: the app-level token instead of the signing secret.
    let found = problems(
        "[channels.slack]\nenabled = true\nsocket_mode = true\n",
        &[("COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN", "xoxb-1")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("channels.slack.app_token: Slack Socket Mode (channels.slack.socket_mode = true) needs the app-level token")
            && found[0].contains("COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN")
            && found[0].contains("signing secret is not needed"),
        "{found:?}"
    );
    let config = load_ok(
        "[channels.slack]\nenabled = true\nsocket_mode = true\n",
        &[
            ("COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN", "xoxb-1"),
            (
                "COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN",
                "xapp-1-APP-SECRET",
            ),
        ],
    );
    let slack = &config.channels.slack;
    assert!(slack.socket_mode);
    assert_eq!(
        slack.app_token.as_ref().map(Secret::expose),
        Some("xapp-1-APP-SECRET")
    );
    assert_eq!(slack.signing_secret, None);
    let serialized = format!("{} {config:?}", serde_json::to_string(&config).unwrap());
    assert!(!serialized.contains("APP-SECRET"), "{serialized}");
}

#[test]
fn the_slack_app_token_comes_from_a_file_is_never_in_the_file_and_must_be_an_app_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("slack-app.token");
    std::fs::write(&token, "xapp-1-FROM-FILE\n").unwrap();
    let config = load_ok(
        &format!(
            "[channels.slack]\nenabled = true\nsocket_mode = true\napp_token_file = {:?}\n",
            token.display().to_string()
        ),
        &[("COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN", "xoxb-1")],
    );
    assert_eq!(
        config.channels.slack.app_token.as_ref().map(Secret::expose),
        Some("xapp-1-FROM-FILE")
    );

    let found = problems(
        "[channels.slack]\napp_token = \"xapp-1-IN-THE-FILE\"\n",
        &[],
    );
    let joined = found.join("\n");
    assert!(
        joined.contains("test.toml:2: channels.slack.app_token: secrets are not read from the configuration file; set COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN or `app_token_file`"),
        "{joined}"
    );
    assert!(!joined.contains("IN-THE-FILE"), "{joined}");

    // The bot token pasted where the app token goes.
    let found = problems(
        "[channels.slack]\nenabled = true\nsocket_mode = true\n",
        &[
            ("COMMAND_CENTER__CHANNELS__SLACK__BOT_TOKEN", "xoxb-1"),
            (
                "COMMAND_CENTER__CHANNELS__SLACK__APP_TOKEN",
                "xoxb-2-PASTED-SECRET",
            ),
        ],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("channels.slack.app_token: the value is a bot token (xoxb-...); Socket Mode needs the app-level token, which starts with xapp-"),
        "{found:?}"
    );
    assert!(!found[0].contains("PASTED-SECRET"), "{found:?}");
}

#[test]
fn telegram_webhook_mode_needs_https_and_a_secret_token() {
    let found = problems(
        "[channels.telegram]\nwebhook_url = \"http://cc.example.com/telegram/webhook\"\n",
        &[],
    );
    let joined = found.join("\n");
    assert!(
        joined.contains("channels.telegram.webhook_url: Telegram posts only to https URLs"),
        "{joined}"
    );
    assert!(
        joined.contains("channels.telegram.webhook_secret: webhook mode needs a secret token"),
        "{joined}"
    );
    let found = problems(
        "[channels.telegram]\nwebhook_url = \"https://cc.example.com/telegram/webhook\"\n",
        &[(
            "COMMAND_CENTER__CHANNELS__TELEGRAM__WEBHOOK_SECRET",
            "has spaces and !",
        )],
    );
    let joined = found.join("\n");
    assert!(
        joined.contains("Telegram accepts 1-256 characters"),
        "{joined}"
    );
    assert!(
        !joined.contains("has spaces"),
        "the secret is not echoed: {joined}"
    );
    let found = problems(
        "[channels.telegram]\nwebhook_secret = \"in-the-file\"\n",
        &[],
    );
    assert!(
        found
            .join("\n")
            .contains("COMMAND_CENTER__CHANNELS__TELEGRAM__WEBHOOK_SECRET"),
        "{found:?}"
    );
    let config = load_ok(
        "[channels.telegram]\nwebhook_url = \"https://cc.example.com/telegram/webhook\"\n",
        &[(
            "COMMAND_CENTER__CHANNELS__TELEGRAM__WEBHOOK_SECRET",
            "0123abcd-_",
        )],
    );
    let telegram = &config.channels.telegram;
    assert_eq!(
        telegram
            .webhook_secret
            .as_ref()
            .map(tools::secret::Secret::expose),
        Some("0123abcd-_")
    );
    assert!(
        !serde_json::to_string(&config)
            .unwrap()
            .contains("0123abcd-_")
    );
}

#[test]
fn the_reasoner_section_is_checked_and_its_key_never_read_from_the_file() {
    let found = problems(
        "[reasoner]\nenabled = true\nbase_url = \"not a url\"\nmodel = \" \"\nmax_steps = 0\napi_key = \"sk-in-the-file\"\n",
        &[],
    );
    let joined = found.join("\n");
    assert!(joined.contains("reasoner.base_url"), "{joined}");
    assert!(
        joined.contains("reasoner.model: name the model"),
        "{joined}"
    );
    assert!(
        joined.contains("reasoner.max_steps: must be 1 to 20"),
        "{joined}"
    );
    assert!(
        joined.contains("COMMAND_CENTER__REASONER__API_KEY"),
        "{joined}"
    );
    assert!(!joined.contains("sk-in-the-file"), "{joined}");
    let config = load_ok(
        "[reasoner]\nenabled = true\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"smollm2\"\ndaily_token_budget = 50000\n",
        &[("COMMAND_CENTER__REASONER__API_KEY", "sk-from-env")],
    );
    let settings = config.reasoner.settings();
    assert_eq!(settings.daily_token_budget, Some(50_000));
    assert_eq!(
        settings.api_key.as_ref().map(tools::secret::Secret::expose),
        Some("sk-from-env")
    );
    assert!(
        !serde_json::to_string(&config)
            .unwrap()
            .contains("sk-from-env")
    );
}

#[test]
fn the_memory_and_briefings_sections_are_checked() {
    let joined = problems(
        "[memory]\nbackend = \"qdrant\"\nembedder = \"local\"\nmodel_dir = \"/nonexistent/model\"\nrecency_half_life = \"0s\"\n\n[memory.qdrant]\nurl = \"grpc://x\"\ncollection = \"bad name\"\napi_key = \"qdrant-in-the-file\"\n\n[briefings]\nenabled = true\nat = \"7am\"\ndomains = [\"weather\"]\nreceivers = [\"nobody\"]\n",
        &[],
    )
    .join("\n");
    for expected in [
        "memory.qdrant.url",
        "memory.qdrant.collection",
        "memory.embedder: \"local\" needs the model, but /nonexistent/model/config.json is missing; run `command-center models install`",
        "memory.recency_half_life",
        "briefings.at: \"7am\" is not a UTC time of day",
        "briefings.domains[0]: no domain agent \"weather\"; known: validators, market",
        "briefings.receivers[0]: no receiver named \"nobody\"",
        "memory.qdrant.api_key",
    ] {
        assert!(joined.contains(expected), "{expected}\n{joined}");
    }
    assert!(!joined.contains("qdrant-in-the-file"), "{joined}");

    let config = load_ok(
        "[memory]\nembedder = \"hashing\"\n\n[memory.retention]\nnews = \"7days\"\nnote = \"0s\"\n",
        &[("COMMAND_CENTER__MEMORY__QDRANT__API_KEY", "from-env")],
    );
    assert_eq!(config.memory.embedder, EmbedderChoice::Hashing);
    assert_eq!(
        config
            .memory
            .qdrant
            .api_key
            .as_ref()
            .map(|key| key.expose()),
        Some("from-env")
    );
    let retention = config.memory.retention.retention();
    assert_eq!(
        retention.per_kind.get(&::memory::vector::Kind::News),
        Some(&Duration::from_secs(7 * 24 * 3600))
    );
    assert!(
        !retention
            .per_kind
            .contains_key(&::memory::vector::Kind::Note)
    );
}

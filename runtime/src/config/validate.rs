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

    if !(config.demo.speed.is_finite() && config.demo.speed > 0.0) {
        problems.push((
            "demo.speed".to_owned(),
            "must be a positive number of simulated seconds per real second".to_owned(),
        ));
    }
    problems
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

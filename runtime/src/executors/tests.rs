use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents::{Alert, AlertStatus, Severity};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tools::secret::Secret;

use super::*;
use crate::notifier::sign;

const SECRET: &str = "hmac-key-for-tests";

fn program(path: &str, args: &[&str]) -> CommandProgramConfig {
    CommandProgramConfig {
        program: path.into(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        timeout: Duration::from_secs(10),
        max_output_bytes: 65536,
    }
}

fn command_config() -> CommandExecutorConfig {
    let mut programs = BTreeMap::new();
    programs.insert("echo".to_owned(), program("/bin/echo", &["hello", "{who}"]));
    programs.insert("list".to_owned(), program("/bin/ls", &["{path}"]));
    programs.insert("fail".to_owned(), program("/bin/false", &[]));
    programs.insert(
        "sleep".to_owned(),
        CommandProgramConfig {
            timeout: Duration::from_millis(100),
            ..program("/bin/sleep", &["5"])
        },
    );
    programs.insert(
        "shout".to_owned(),
        CommandProgramConfig {
            max_output_bytes: 5,
            ..program("/bin/echo", &["{word}"])
        },
    );
    CommandExecutorConfig { programs }
}

struct Fixture {
    registry: ExecutorRegistry,
    alerts: mpsc::UnboundedReceiver<Alert>,
    _secret_dir: tempfile::TempDir,
}

fn fixture(targets: Vec<(&str, String)>) -> anyhow::Result<Fixture> {
    let secret_dir = tempfile::tempdir()?;
    let secret_file = secret_dir.path().join("hmac");
    std::fs::write(&secret_file, format!("{SECRET}\n"))?;
    let config = ExecutorsConfig {
        command: command_config(),
        webhook: WebhookExecutorConfig {
            targets: targets
                .into_iter()
                .map(|(name, url)| WebhookTargetConfig {
                    name: name.to_owned(),
                    url,
                    secret_file: secret_file.clone(),
                    timeout: Duration::from_secs(5),
                    max_attempts: 3,
                })
                .collect(),
        },
        ton_transfer: None,
    };
    let (sink, alerts) = mpsc::unbounded_channel();
    let registry = ExecutorRegistry::new(&config, sink)
        .map_err(|problems| anyhow::anyhow!("registry: {problems:?}"))?;
    Ok(Fixture {
        registry,
        alerts,
        _secret_dir: secret_dir,
    })
}

fn request(kind: &str, parameters: Value, dry_run: bool) -> ExecutionRequest {
    ExecutionRequest {
        proposal_id: "p-42".to_owned(),
        idempotency_key: "idem-p-42".to_owned(),
        kind: kind.to_owned(),
        target: "test".to_owned(),
        parameters,
        dry_run,
    }
}

async fn execute(
    registry: &ExecutorRegistry,
    request: &ExecutionRequest,
) -> anyhow::Result<ExecutionOutcome> {
    Ok(registry.get(&request.kind)?.execute(request).await)
}

/// `kind` refuses `parameters` with a message containing every one of `expected`.
fn check_refused(registry: &ExecutorRegistry, kind: &str, parameters: Value, expected: &[&str]) {
    match registry.validate(kind, &parameters) {
        Ok(()) => panic!("{kind} accepted {parameters}"),
        Err(error) => {
            let message = error.to_string();
            for part in expected {
                assert!(
                    message.contains(part),
                    "{kind} {parameters}: message {message:?} lacks {part:?}"
                );
            }
        }
    }
}

#[test]
fn malformed_parameters_are_refused_with_the_field_named() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let registry = &fixture.registry;
    check_refused(
        registry,
        "notify",
        json!({ "severity": "info" }),
        &["invalid parameters for notify", "missing field `message`"],
    );
    check_refused(
        registry,
        "notify",
        json!({ "message": 5 }),
        &["message: invalid type: integer `5`, expected a string"],
    );
    check_refused(
        registry,
        "notify",
        json!({ "message": "hi", "severity": "loud" }),
        &[
            "severity: unknown variant `loud`",
            "info",
            "warning",
            "critical",
        ],
    );
    check_refused(
        registry,
        "notify",
        json!({ "message": "" }),
        &["message: must not be empty"],
    );
    check_refused(
        registry,
        "notify",
        json!({ "message": "x".repeat(4001) }),
        &["4001 characters is too long; at most 4000"],
    );
    check_refused(
        registry,
        "notify",
        json!({ "message": "hi", "colour": "red" }),
        &["unknown field `colour`"],
    );
    check_refused(
        registry,
        "notify",
        json!("hi"),
        &["parameters must be a JSON object, not a string"],
    );
    check_refused(
        registry,
        "command",
        json!({ "vars": {} }),
        &["invalid parameters for command", "missing field `command`"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": 7 } }),
        &["vars.who: invalid type: integer `7`, expected a string"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "rm", "vars": {} }),
        &[
            "command is not allowed",
            "\"rm\"",
            "allowed: echo, fail, list, shout, sleep",
        ],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "x; rm -rf /" } }),
        &[
            "vars.who = \"x; rm -rf /\" is not allowed",
            "do not start with '-'",
        ],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "-rf" } }),
        &["vars.who = \"-rf\" is not allowed"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "$(id)" } }),
        &["vars.who = \"$(id)\" is not allowed"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "" } }),
        &["vars.who = \"\" is not allowed"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "a".repeat(129) } }),
        &["vars.who", "is not allowed", "1 to 128"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": {} }),
        &["vars.who is missing; \"echo\" needs it"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "echo", "vars": { "who": "world", "extra": "1" } }),
        &["vars.extra is not used by \"echo\" (it takes: who)"],
    );
    check_refused(
        registry,
        "command",
        json!({ "command": "fail", "vars": { "x": "1" } }),
        &["vars.x is not used by \"fail\" (it takes no vars)"],
    );
    check_refused(
        registry,
        "webhook",
        json!({ "target": "pager" }),
        &["invalid parameters for webhook", "missing field `payload`"],
    );
    check_refused(
        registry,
        "webhook",
        json!({ "target": "pager", "payload": {} }),
        &[
            "webhook is not allowed",
            "\"pager\"",
            "no targets are configured",
        ],
    );
    check_refused(
        registry,
        "reboot",
        json!({}),
        &["no executor for operation kind \"reboot\"; known: command, notify, webhook"],
    );

    registry.validate("notify", &json!({ "message": "disk almost full" }))?;
    registry.validate(
        "command",
        &json!({ "command": "echo", "vars": { "who": "validator-1.service" } }),
    )?;
    registry.validate(
        "command",
        &json!({ "command": "list", "vars": { "path": "/var/lib/ton@main:8080/x_y" } }),
    )?;
    Ok(())
}

#[test]
fn every_kind_publishes_a_generated_schema() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    assert_eq!(fixture.registry.kinds(), ["command", "notify", "webhook"]);
    for (kind, fields) in [
        (
            "notify",
            &["message", "severity", "info", "critical", "maxLength"][..],
        ),
        ("command", &["command", "vars"][..]),
        ("webhook", &["target", "payload"][..]),
    ] {
        let schema = fixture.registry.get(kind)?.parameters_schema();
        assert_eq!(schema["type"], "object", "{kind}: {schema}");
        assert_eq!(schema["additionalProperties"], false, "{kind}: {schema}");
        let text = schema.to_string();
        for field in fields {
            assert!(text.contains(field), "{kind} schema lacks {field}: {text}");
        }
    }
    let notify = fixture.registry.get("notify")?.parameters_schema();
    assert_eq!(notify["required"], json!(["message"]));
    let command = fixture.registry.get("command")?.parameters_schema();
    assert_eq!(command["required"], json!(["command"]));
    Ok(())
}

#[tokio::test]
async fn notify_puts_an_alert_on_the_sink() -> anyhow::Result<()> {
    let mut fixture = fixture(Vec::new())?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "notify",
            json!({ "message": "validator 3 restarted\nby the operator", "severity": "warning" }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(!outcome.dry_run);
    let alert = fixture.alerts.try_recv()?;
    assert_eq!(alert.key, "notify/p-42");
    assert_eq!(alert.rule, "notify");
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.severity, Severity::Warning);
    assert_eq!(alert.summary, "validator 3 restarted");
    assert_eq!(alert.label("domain"), "operations");
    assert_eq!(
        alert.evidence["message"],
        "validator 3 restarted\nby the operator"
    );

    let outcome = execute(
        &fixture.registry,
        &request("notify", json!({ "message": "hello" }), true),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    assert!(outcome.dry_run);
    assert_eq!(outcome.summary, "would notify (info): hello");
    assert!(
        fixture.alerts.try_recv().is_err(),
        "a dry run sent an alert"
    );
    Ok(())
}

#[tokio::test]
async fn notify_without_a_notifier_fails() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    drop(fixture.alerts);
    let outcome = execute(
        &fixture.registry,
        &request("notify", json!({ "message": "hello" }), false),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains("notifier is not running"),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn command_runs_the_program_and_captures_its_output() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "command",
            json!({ "command": "echo", "vars": { "who": "validator@1.service" } }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.summary, "echo succeeded (exit code 0)");
    assert_eq!(outcome.details["stdout"], "hello validator@1.service\n");
    assert_eq!(outcome.details["stderr"], "");
    assert_eq!(outcome.details["exit_code"], 0);
    assert_eq!(
        outcome.details["argv"],
        json!(["/bin/echo", "hello", "validator@1.service"])
    );
    Ok(())
}

#[tokio::test]
async fn command_output_is_truncated_to_the_limit() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "command",
            json!({ "command": "shout", "vars": { "word": "abcdefghij" } }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.details["stdout"], "abcde");
    assert_eq!(outcome.details["stdout_truncated"], true);
    assert_eq!(outcome.details["stderr_truncated"], false);
    Ok(())
}

#[tokio::test]
async fn a_failing_program_is_a_failed_outcome_with_its_exit_code() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let outcome = execute(
        &fixture.registry,
        &request("command", json!({ "command": "fail" }), false),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.summary, "fail failed with exit code 1");
    assert_eq!(outcome.details["exit_code"], 1);

    let outcome = execute(
        &fixture.registry,
        &request(
            "command",
            json!({ "command": "list", "vars": { "path": "/nonexistent/cc-executor-test" } }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.details["exit_code"], 2);
    assert!(
        outcome.details["stderr"]
            .as_str()
            .is_some_and(|stderr| stderr.contains("/nonexistent/cc-executor-test")),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_program_that_runs_too_long_is_killed() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let started = Instant::now();
    let outcome = execute(
        &fixture.registry,
        &request("command", json!({ "command": "sleep" }), false),
    )
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(
        outcome.summary,
        "sleep timed out after 100ms and was killed"
    );
    assert_eq!(outcome.details["timed_out"], true);
    Ok(())
}

#[tokio::test]
async fn a_dry_run_runs_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("made-by-the-command");
    let mut config = ExecutorsConfig::default();
    config
        .command
        .programs
        .insert("touch".to_owned(), program("/usr/bin/touch", &["{file}"]));
    let (sink, _alerts) = mpsc::unbounded_channel();
    let registry =
        ExecutorRegistry::new(&config, sink).map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
    let file = marker.display().to_string();
    let outcome = execute(
        &registry,
        &request(
            "command",
            json!({ "command": "touch", "vars": { "file": file } }),
            true,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(outcome.dry_run);
    assert_eq!(outcome.details["argv"], json!(["/usr/bin/touch", file]));
    assert_eq!(
        outcome.summary,
        format!("would run touch: /usr/bin/touch {file}")
    );
    assert!(!marker.exists(), "the dry run ran the program");

    let outcome = execute(
        &registry,
        &request(
            "command",
            json!({ "command": "touch", "vars": { "file": file } }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(marker.exists(), "the real run did not run the program");
    Ok(())
}

#[tokio::test]
async fn invalid_parameters_at_execution_are_a_failed_outcome() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "command",
            json!({ "command": "echo", "vars": { "who": "`id`" } }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("not run: invalid parameters for command"),
        "{outcome:?}"
    );
    Ok(())
}

#[test]
fn argument_templates() -> anyhow::Result<()> {
    let mut config = CommandExecutorConfig::default();
    config.programs.insert(
        "tpl".to_owned(),
        program(
            "/bin/echo",
            &["--unit={unit}.service", "{{literal}}", "{a}{b}"],
        ),
    );
    let mut problems = Vec::new();
    let executor = CommandExecutor::new(&config, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let params: CommandParams = serde_json::from_value(json!({
        "command": "tpl",
        "vars": { "unit": "ton", "a": "x", "b": "y" }
    }))?;
    executor.check(&params)?;
    for (args, expected) in [
        ("{unit", "unclosed '{'"),
        ("unit}", "unmatched '}'"),
        ("{1x}", "placeholder {1x} must be a name"),
        ("{}", "placeholder {} must be a name"),
    ] {
        let mut config = CommandExecutorConfig::default();
        config
            .programs
            .insert("bad".to_owned(), program("/bin/echo", &[args]));
        let mut problems = Vec::new();
        let _ = CommandExecutor::new(&config, &mut problems);
        assert_eq!(problems.len(), 1, "{args}: {problems:?}");
        assert_eq!(problems[0].0, "executors.command.programs.bad.args[0]");
        assert!(problems[0].1.contains(expected), "{args}: {problems:?}");
    }
    Ok(())
}

#[tokio::test]
async fn argument_templates_render_into_argv() -> anyhow::Result<()> {
    let mut config = ExecutorsConfig::default();
    config.command.programs.insert(
        "tpl".to_owned(),
        program(
            "/bin/echo",
            &["--unit={unit}.service", "{{literal}}", "{a}{b}"],
        ),
    );
    let (sink, _alerts) = mpsc::unbounded_channel();
    let registry =
        ExecutorRegistry::new(&config, sink).map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
    let outcome = execute(
        &registry,
        &request(
            "command",
            json!({ "command": "tpl", "vars": { "unit": "ton", "a": "x", "b": "y" } }),
            true,
        ),
    )
    .await?;
    assert_eq!(
        outcome.details["argv"],
        json!(["/bin/echo", "--unit=ton.service", "{literal}", "xy"])
    );
    Ok(())
}

#[test]
fn configuration_problems_are_reported_together_with_key_paths() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let empty_secret = dir.path().join("empty");
    std::fs::write(&empty_secret, "\n")?;
    let config: ExecutorsConfig = toml::from_str(&format!(
        r#"
        [command.programs.restart]
        program = "systemctl"
        args = ["restart", "{{unit"]
        timeout = "0s"

        [command.programs."bad name!"]
        program = "/nonexistent/cc-executor-test"

        [[webhook.targets]]
        name = "pager"
        url = "https://hooks.example.com/T0/secret-token"
        secret_file = "{missing}"

        [[webhook.targets]]
        name = "pager"
        url = "ftp://example.com/x"
        secret_file = "{empty}"
        max_attempts = 0
        "#,
        missing = dir.path().join("missing").display(),
        empty = empty_secret.display(),
    ))?;
    let (sink, _alerts) = mpsc::unbounded_channel();
    let problems = match ExecutorRegistry::new(&config, sink) {
        Ok(_) => anyhow::bail!("a broken configuration was accepted"),
        Err(problems) => problems,
    };
    let expect = [
        ("executors.command.programs.bad name!", "must be 1 to 64"),
        (
            "executors.command.programs.bad name!.program",
            "cannot use /nonexistent/cc-executor-test",
        ),
        (
            "executors.command.programs.restart.program",
            "systemctl is not an absolute path",
        ),
        ("executors.command.programs.restart.args[1]", "unclosed '{'"),
        (
            "executors.command.programs.restart.timeout",
            "must be longer than 0s",
        ),
        (
            "executors.webhook.targets[0].secret_file",
            "cannot read secret file",
        ),
        (
            "executors.webhook.targets[1].name",
            "\"pager\" is used by another target",
        ),
        (
            "executors.webhook.targets[1].url",
            "must be an http:// or https:// URL",
        ),
        ("executors.webhook.targets[1].secret_file", "is empty"),
        (
            "executors.webhook.targets[1].max_attempts",
            "must be 1 or more",
        ),
    ];
    for (path, message) in expect {
        assert!(
            problems
                .iter()
                .any(|(at, text)| at == path && text.contains(message)),
            "no problem {path}: {message} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    assert!(
        !format!("{problems:?}").contains("secret-token"),
        "a URL path reached a message: {problems:?}"
    );
    Ok(())
}

#[test]
fn configuration_rejects_unknown_keys_and_serializes_without_url_paths() -> anyhow::Result<()> {
    let result = toml::from_str::<ExecutorsConfig>(
        r#"
        [command.programs.x]
        program = "/bin/echo"
        shell = true
        "#,
    );
    match result {
        Ok(_) => anyhow::bail!("an unknown key was accepted"),
        Err(error) => assert!(
            error.to_string().contains("unknown field `shell`"),
            "{error}"
        ),
    }
    let config: ExecutorsConfig = toml::from_str(
        r#"
        [[webhook.targets]]
        name = "pager"
        url = "https://hooks.example.com/T0/secret-token"
        secret_file = "/run/secrets/pager"
        "#,
    )?;
    let target = &config.webhook.targets[0];
    assert_eq!(target.timeout, Duration::from_secs(10));
    assert_eq!(target.max_attempts, 3);
    let serialized = serde_json::to_string(&config)?;
    assert!(!serialized.contains("secret-token"), "{serialized}");
    assert!(
        serialized.contains("https://hooks.example.com/***"),
        "{serialized}"
    );
    let default = ExecutorsConfig::default();
    assert!(default.command.programs.is_empty() && default.webhook.targets.is_empty());
    Ok(())
}

#[test]
fn outcomes_serialize_in_snake_case() -> anyhow::Result<()> {
    let outcome = ExecutionOutcome::new(OutcomeStatus::Unknown, "?", Value::Null, false);
    assert_eq!(serde_json::to_value(&outcome)?["status"], "unknown");
    assert_eq!(serde_json::to_value(OutcomeStatus::Succeeded)?, "succeeded");
    Ok(())
}

#[tokio::test]
async fn reconcile_defaults_to_unknown() -> anyhow::Result<()> {
    let fixture = fixture(Vec::new())?;
    for kind in fixture.registry.kinds() {
        let outcome = fixture
            .registry
            .get(kind)?
            .reconcile(&request(kind, json!({}), false))
            .await;
        assert_eq!(outcome.status, OutcomeStatus::Unknown, "{kind}");
    }
    Ok(())
}

/// What the test receiver saw.
#[derive(Default)]
struct Received {
    /// (path, signature valid, idempotency key, body)
    requests: Vec<(String, bool, String, Value)>,
}

type Receiver = Arc<Mutex<Received>>;

fn record(received: &Receiver, path: &str, headers: &HeaderMap, body: &[u8]) -> usize {
    let signature = headers
        .get("x-command-center-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let valid = signature == sign(&Secret::new(SECRET), body);
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut received = received.lock();
    received.requests.push((path.to_owned(), valid, key, body));
    received
        .requests
        .iter()
        .filter(|(seen, ..)| seen == path)
        .count()
}

async fn flaky(
    State(received): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let count = record(&received, "/flaky", &headers, &body);
    if count == 1 {
        // Retry-After: 0 keeps the test free of backoff sleeps.
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("retry-after", "0")],
            "busy",
        )
            .into_response()
    } else {
        (StatusCode::OK, "done").into_response()
    }
}

async fn refusing(
    State(received): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    record(&received, "/refusing", &headers, &body);
    (StatusCode::BAD_REQUEST, "bad payload")
}

async fn start_receiver() -> anyhow::Result<(String, Receiver)> {
    let received = Receiver::default();
    let app = Router::new()
        .route("/flaky", post(flaky))
        .route("/refusing", post(refusing))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{address}"), received))
}

#[tokio::test]
async fn webhook_is_signed_carries_the_idempotency_key_and_retries_a_server_error()
-> anyhow::Result<()> {
    let (base, received) = start_receiver().await?;
    let fixture = fixture(vec![("flaky", format!("{base}/flaky?token=secret-token"))])?;
    let payload = json!({ "action": "page", "who": "on-call" });
    let outcome = execute(
        &fixture.registry,
        &request(
            "webhook",
            json!({ "target": "flaky", "payload": payload }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.details["attempts"], 2);
    assert_eq!(outcome.details["http_status"], 200);
    assert_eq!(outcome.details["response"], "done");
    let requests = &received.lock().requests;
    assert_eq!(requests.len(), 2);
    for (_, signature_valid, key, body) in requests {
        assert!(signature_valid, "bad signature");
        assert_eq!(key, "idem-p-42");
        assert_eq!(body, &payload);
    }
    let shown = serde_json::to_string(&outcome)?;
    assert!(
        !shown.contains("secret-token") && !shown.contains("/flaky"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET), "{shown}");
    Ok(())
}

#[tokio::test]
async fn webhook_client_errors_are_not_retried() -> anyhow::Result<()> {
    let (base, received) = start_receiver().await?;
    let fixture = fixture(vec![("refusing", format!("{base}/refusing"))])?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "webhook",
            json!({ "target": "refusing", "payload": [1, 2] }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.details["attempts"], 1);
    assert_eq!(outcome.details["http_status"], 400);
    assert_eq!(outcome.details["response"], "bad payload");
    assert!(outcome.summary.contains("400"), "{outcome:?}");
    assert_eq!(received.lock().requests.len(), 1);
    Ok(())
}

#[tokio::test]
async fn webhook_dry_run_sends_nothing() -> anyhow::Result<()> {
    let (base, received) = start_receiver().await?;
    let fixture = fixture(vec![("flaky", format!("{base}/flaky"))])?;
    let outcome = execute(
        &fixture.registry,
        &request(
            "webhook",
            json!({ "target": "flaky", "payload": { "a": 1 } }),
            true,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Succeeded, "{outcome:?}");
    assert!(outcome.dry_run);
    assert!(
        outcome
            .summary
            .starts_with("would POST 7 bytes of JSON to webhook target flaky"),
        "{outcome:?}"
    );
    assert!(received.lock().requests.is_empty());
    Ok(())
}

/// A registry with one webhook target `name` at `url`, tried once (no backoff sleeps).
fn single_attempt_registry(
    name: &str,
    url: String,
    timeout: Duration,
) -> anyhow::Result<(ExecutorRegistry, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("hmac");
    std::fs::write(&secret_file, SECRET)?;
    let config = ExecutorsConfig {
        webhook: WebhookExecutorConfig {
            targets: vec![WebhookTargetConfig {
                name: name.to_owned(),
                url,
                secret_file,
                timeout,
                max_attempts: 1,
            }],
        },
        ..ExecutorsConfig::default()
    };
    let (sink, _alerts) = mpsc::unbounded_channel();
    let registry =
        ExecutorRegistry::new(&config, sink).map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
    Ok((registry, dir))
}

#[tokio::test]
async fn webhook_that_cannot_be_reached_fails_without_naming_the_url() -> anyhow::Result<()> {
    // Bind then drop: nothing listens on the port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    drop(listener);
    let (registry, _dir) = single_attempt_registry(
        "gone",
        format!("http://{address}/hook/secret-token"),
        Duration::from_secs(5),
    )?;
    let outcome = execute(
        &registry,
        &request(
            "webhook",
            json!({ "target": "gone", "payload": null }),
            false,
        ),
    )
    .await?;
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{outcome:?}");
    assert!(
        outcome.summary.contains("not reached after 1 attempt"),
        "{outcome:?}"
    );
    let shown = serde_json::to_string(&outcome)?;
    assert!(!shown.contains("secret-token"), "{shown}");
    Ok(())
}

#[tokio::test]
async fn webhook_without_an_answer_is_unknown() -> anyhow::Result<()> {
    // A receiver that accepts the request and never answers: it may have acted.
    let app = Router::new().route("/silent", post(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (registry, _dir) = single_attempt_registry(
        "silent",
        format!("http://{address}/silent"),
        Duration::from_millis(200),
    )?;
    let started = Instant::now();
    let outcome = execute(
        &registry,
        &request(
            "webhook",
            json!({ "target": "silent", "payload": {} }),
            false,
        ),
    )
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, OutcomeStatus::Unknown, "{outcome:?}");
    assert!(
        outcome.summary.contains("no answer within 200ms"),
        "{outcome:?}"
    );
    Ok(())
}

//! `command`: runs one of the programs listed in `[executors.command.programs]`, directly (never
//! through a shell), with arguments built from a template and checked variable values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ExecutionOutcome, ExecutionRequest, ExecutorError, OutcomeStatus, TypedExecutor};

/// Environment variables with this prefix configure the daemon and may carry secrets; a
/// program never inherits them.
const DAEMON_ENV_PREFIX: &str = "COMMAND_CENTER__";
/// Longest variable value.
const MAX_VAR_CHARS: usize = 128;
/// Longest program name.
const MAX_NAME_CHARS: usize = 64;
/// Largest `max_output_bytes`, so a typo cannot make the daemon buffer gigabytes.
const MAX_OUTPUT_BYTES_LIMIT: usize = 16 * 1024 * 1024;

fn default_command_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_output_bytes() -> usize {
    64 * 1024
}

/// `[executors.command]`
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandExecutorConfig {
    /// Name (what a proposal's `command` parameter says) -> program. Empty: nothing may run.
    #[serde(default)]
    pub programs: BTreeMap<String, CommandProgramConfig>,
}

/// `[executors.command.programs.<name>]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandProgramConfig {
    /// Absolute path of the executable; no `PATH` lookup.
    pub program: PathBuf,
    /// Argument templates: `{name}` is replaced by the proposal's `vars.name`; `{{` and `}}`
    /// stand for literal braces.
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_command_timeout", with = "agents::duration")]
    pub timeout: Duration,
    /// Each of stdout and stderr is kept up to this many bytes; the rest is read and dropped.
    #[serde(default = "default_max_output_bytes")]
    pub max_output_bytes: usize,
}

/// Parameters of a `command` operation.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParams {
    /// A program name from `[executors.command.programs]`.
    pub command: String,
    /// Values for the `{name}` placeholders of the program's arguments: every placeholder
    /// needs one, every value must be used. Values match `^[A-Za-z0-9_.:@/-]{1,128}$` and do
    /// not start with `-`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(String),
}

/// One argument template, parsed once at startup.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ArgTemplate(Vec<Piece>);

impl ArgTemplate {
    fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(format!(
                        "{text:?}: unmatched '}}' (write '}}}}' for a literal brace)"
                    ));
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "{text:?}: unclosed '{{' (write '{{{{' for a literal brace)"
                        ));
                    }
                    if !is_var_name(&name) {
                        return Err(format!(
                            "{text:?}: placeholder {{{name}}} must be a name of letters, digits and '_' (not starting with a digit)"
                        ));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self(pieces))
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Var(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// The argument with every placeholder replaced; callers check the vars first.
    fn render(&self, vars: &BTreeMap<String, String>) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Literal(text) => text.as_str(),
                Piece::Var(name) => vars.get(name).map(String::as_str).unwrap_or(""),
            })
            .collect()
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_program_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `^[A-Za-z0-9_.:@/-]{1,128}$`, not starting with `-` (it would read as an option).
fn is_safe_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VAR_CHARS
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '/' | '-'))
}

/// A value for a message: quoted, shortened when long.
fn show_value(value: &str) -> String {
    if value.chars().count() > 40 {
        let head: String = value.chars().take(40).collect();
        format!("{head:?}...")
    } else {
        format!("{value:?}")
    }
}

/// A program as configured, with its templates parsed.
#[derive(Clone, Debug)]
struct Program {
    path: PathBuf,
    args: Vec<ArgTemplate>,
    /// Placeholders the args use.
    vars: BTreeSet<String>,
    timeout: Duration,
    max_output_bytes: usize,
}

/// Runs configured programs.
pub struct CommandExecutor {
    programs: BTreeMap<String, Program>,
}

impl CommandExecutor {
    /// Builds from `[executors.command]`, adding `(key path, message)` for every problem.
    pub fn new(config: &CommandExecutorConfig, problems: &mut Vec<(String, String)>) -> Self {
        let mut programs = BTreeMap::new();
        for (name, program) in &config.programs {
            let at = |key: &str| format!("executors.command.programs.{name}.{key}");
            let before = problems.len();
            if !is_program_name(name) {
                problems.push((
                    format!("executors.command.programs.{name}"),
                    format!(
                        "program name {name:?} must be 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 _ . -"
                    ),
                ));
            }
            check_program_path(&program.program, &at("program"), problems);
            let mut args = Vec::new();
            for (index, arg) in program.args.iter().enumerate() {
                match ArgTemplate::parse(arg) {
                    Ok(template) => args.push(template),
                    Err(message) => problems.push((at(&format!("args[{index}]")), message)),
                }
            }
            if program.timeout.is_zero() {
                problems.push((at("timeout"), "must be longer than 0s".to_owned()));
            }
            if program.max_output_bytes == 0 || program.max_output_bytes > MAX_OUTPUT_BYTES_LIMIT {
                problems.push((
                    at("max_output_bytes"),
                    format!("must be between 1 and {MAX_OUTPUT_BYTES_LIMIT}"),
                ));
            }
            if problems.len() == before {
                let vars = args
                    .iter()
                    .flat_map(|arg| arg.vars().map(str::to_owned))
                    .collect();
                programs.insert(
                    name.clone(),
                    Program {
                        path: program.program.clone(),
                        args,
                        vars,
                        timeout: program.timeout,
                        max_output_bytes: program.max_output_bytes,
                    },
                );
            }
        }
        Self { programs }
    }

    fn not_allowed(&self, name: &str) -> ExecutorError {
        super::not_allowed(
            <Self as TypedExecutor>::KIND,
            "command",
            "programs",
            "[executors.command.programs]",
            &show_value(name),
            self.programs.keys().map(String::as_str),
        )
    }
}

fn check_program_path(path: &std::path::Path, key: &str, problems: &mut Vec<(String, String)>) {
    if !path.is_absolute() {
        problems.push((
            key.to_owned(),
            format!(
                "{} is not an absolute path; write the full path (e.g. /usr/bin/systemctl), programs are not looked up in PATH",
                path.display()
            ),
        ));
        return;
    }
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => {
            problems.push((key.to_owned(), format!("{} is not a file", path.display())))
        }
        Ok(metadata) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if metadata.permissions().mode() & 0o111 == 0 {
                    problems.push((
                        key.to_owned(),
                        format!("{} is not executable", path.display()),
                    ));
                }
            }
            #[cfg(not(unix))]
            let _ = metadata;
        }
        Err(error) => problems.push((
            key.to_owned(),
            format!("cannot use {}: {error}", path.display()),
        )),
    }
}

/// What was read from one pipe.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    total: usize,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }

    fn truncated(&self) -> bool {
        self.total > self.kept.len()
    }
}

/// Reads `reader` to the end, keeping the first `limit` bytes; reading on keeps the program
/// from blocking on a full pipe.
async fn capture<R: AsyncRead + Unpin>(reader: Option<R>, limit: usize, into: &mut Captured) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let room = limit.saturating_sub(into.kept.len());
                into.kept.extend_from_slice(&chunk[..read.min(room)]);
                into.total += read;
            }
        }
    }
}

impl TypedExecutor for CommandExecutor {
    const KIND: &'static str = "command";
    type Params = CommandParams;

    fn check(&self, params: &CommandParams) -> Result<(), ExecutorError> {
        let Some(program) = self.programs.get(&params.command) else {
            return Err(self.not_allowed(&params.command));
        };
        let mut problems = Vec::new();
        for missing in program
            .vars
            .iter()
            .filter(|name| !params.vars.contains_key(*name))
        {
            problems.push(format!(
                "vars.{missing} is missing; {:?} needs it for its arguments",
                params.command
            ));
        }
        for (name, value) in &params.vars {
            if !program.vars.contains(name) {
                let takes = if program.vars.is_empty() {
                    "it takes no vars".to_owned()
                } else {
                    format!(
                        "it takes: {}",
                        program
                            .vars
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                problems.push(format!(
                    "vars.{name} is not used by {:?} ({takes})",
                    params.command
                ));
            } else if !is_safe_value(value) {
                problems.push(format!(
                    "vars.{name} = {} is not allowed: use 1 to {MAX_VAR_CHARS} of A-Z a-z 0-9 _ . : @ / - and do not start with '-'",
                    show_value(value)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExecutorError::InvalidParameters {
                kind: Self::KIND.to_owned(),
                detail: problems.join("; "),
            })
        }
    }

    async fn run(&self, request: &ExecutionRequest, params: CommandParams) -> ExecutionOutcome {
        let Some(program) = self.programs.get(&params.command) else {
            // `check` ran first; kept for the type.
            let error = self.not_allowed(&params.command);
            return ExecutionOutcome::new(
                OutcomeStatus::Failed,
                format!("not run: {error}"),
                serde_json::Value::Null,
                request.dry_run,
            );
        };
        let args: Vec<String> = program
            .args
            .iter()
            .map(|arg| arg.render(&params.vars))
            .collect();
        let mut argv = vec![program.path.display().to_string()];
        argv.extend(args.iter().cloned());
        let name = &params.command;

        if request.dry_run {
            return ExecutionOutcome::new(
                OutcomeStatus::Succeeded,
                format!("would run {name}: {}", argv.join(" ")),
                serde_json::json!({
                    "command": name,
                    "argv": argv,
                    "timeout": agents::duration::format(program.timeout),
                }),
                true,
            );
        }

        let mut command = tokio::process::Command::new(&program.path);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with(DAEMON_ENV_PREFIX) {
                command.env_remove(key);
            }
        }
        let started = Instant::now();
        tracing::info!(proposal_id = %request.proposal_id, command = %name, ?argv, "running command");
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return ExecutionOutcome::new(
                    OutcomeStatus::Failed,
                    format!("{name}: cannot start {}: {error}", argv[0]),
                    serde_json::json!({ "command": name, "argv": argv, "error": error.to_string() }),
                    false,
                );
            }
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut out = Captured::default();
        let mut err = Captured::default();
        let finished = tokio::time::timeout(program.timeout, async {
            let ((), (), status) = tokio::join!(
                capture(stdout, program.max_output_bytes, &mut out),
                capture(stderr, program.max_output_bytes, &mut err),
                child.wait()
            );
            status
        })
        .await;

        let mut details = serde_json::json!({
            "command": name,
            "argv": argv,
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_truncated": out.truncated(),
            "stderr_truncated": err.truncated(),
        });
        let (status, summary) = match finished {
            Err(_elapsed) => {
                // kill_on_drop would do it too, but only once `child` is dropped; reap now so
                // no zombie outlives the outcome.
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                details["timed_out"] = serde_json::Value::Bool(true);
                (
                    OutcomeStatus::Failed,
                    format!(
                        "{name} timed out after {} and was killed",
                        agents::duration::format(program.timeout)
                    ),
                )
            }
            Ok(Err(error)) => {
                details["error"] = serde_json::Value::String(error.to_string());
                (
                    OutcomeStatus::Failed,
                    format!("{name}: cannot wait for the program: {error}"),
                )
            }
            Ok(Ok(exit)) => {
                details["exit_code"] = serde_json::json!(exit.code());
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    details["signal"] = serde_json::json!(exit.signal());
                }
                match exit.code() {
                    Some(0) => (
                        OutcomeStatus::Succeeded,
                        format!("{name} succeeded (exit code 0)"),
                    ),
                    Some(code) => (
                        OutcomeStatus::Failed,
                        format!("{name} failed with exit code {code}"),
                    ),
                    None => (
                        OutcomeStatus::Failed,
                        format!("{name} was ended by a signal ({exit})"),
                    ),
                }
            }
        };
        details["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
        ExecutionOutcome::new(status, summary, details, false)
    }
}

//! The loader behind [`super::load`]: parse, overlay the environment, deserialize section by
//! section (so one bad section does not hide the problems of the others), resolve secret files,
//! validate.

use std::path::Path;

use serde::de::DeserializeOwned;
use tools::secret::Secret;

use super::{
    AgentsConfig, Config, ConfigErrors, ConfigProblem, ConfigSource, DaemonConfig, DemoConfig,
    ENV_PREFIX, EXAMPLE_CONFIG, NotifyConfig, SECRET_KEYS, SourcesConfig, SupervisorConfig,
};

/// The `COMMAND_CENTER__*` variables of this process.
pub fn environment_overrides() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect()
}

/// Loads from `source` with the given environment overrides.
pub fn load(source: &ConfigSource, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    match source {
        ConfigSource::Embedded => load_text(EXAMPLE_CONFIG, &source.name(), env),
        ConfigSource::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => load_text(&text, &source.name(), env),
            Err(error) => Err(ConfigErrors {
                source_name: source.name(),
                problems: vec![ConfigProblem {
                    path: "(file)".to_owned(),
                    origin: None,
                    message: format!(
                        "cannot read {}: {error}; create one with `command-center config init`",
                        path.display()
                    ),
                }],
            }),
        },
    }
}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Maps key paths to lines of the file, and knows which paths the environment set.
struct Locator<'a> {
    text: &'a str,
    document: Option<toml_edit::Document<String>>,
    source_name: &'a str,
    env_paths: Vec<(Vec<Segment>, String)>,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|byte| *byte == b'\n')
            .count()
            + 1
    }

    /// `file:line` of the deepest part of `path` present in the file, or the environment
    /// variable that set it.
    fn origin(&self, path: &[Segment]) -> Option<String> {
        for (env_path, name) in &self.env_paths {
            if path.starts_with(env_path) || (!path.is_empty() && env_path.starts_with(path)) {
                return Some(format!("environment variable {name}"));
            }
        }
        let document = self.document.as_ref()?;
        let span = find_in_item(document.as_item(), path, None)?;
        Some(format!("{}:{}", self.source_name, self.line_of(span.start)))
    }
}

type Span = Option<std::ops::Range<usize>>;

fn find_in_table(table: &dyn toml_edit::TableLike, path: &[Segment], best: Span) -> Span {
    match path.split_first() {
        Some((Segment::Key(key), rest)) => match table.get_key_value(key) {
            Some((found, value)) => find_in_item(value, rest, found.span().or(best)),
            None => best,
        },
        _ => best,
    }
}

fn find_in_item(item: &toml_edit::Item, path: &[Segment], best: Span) -> Span {
    use toml_edit::{Item, Value};
    if path.is_empty() {
        return best;
    }
    match item {
        Item::Table(table) => find_in_table(table, path, best),
        Item::Value(Value::InlineTable(table)) => find_in_table(table, path, best),
        Item::ArrayOfTables(array) => match path.split_first() {
            Some((Segment::Index(index), rest)) => match array.get(*index) {
                Some(table) => find_in_table(table, rest, table.span().or(best)),
                None => best,
            },
            _ => best,
        },
        Item::Value(Value::Array(array)) => match path.split_first() {
            Some((Segment::Index(index), rest)) => match array.get(*index) {
                Some(Value::InlineTable(table)) => {
                    find_in_table(table, rest, table.span().or(best))
                }
                Some(value) => value.span().or(best),
                None => best,
            },
            _ => best,
        },
        _ => best,
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // Numbers, booleans, arrays and inline tables are read as TOML; anything else is a string.
    match toml::from_str::<toml::Table>(&format!("value = {raw}")) {
        Ok(mut table) => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key path".to_owned());
    };
    let mut current = table;
    for (depth, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(format!(
                    "{} is not a section, so it cannot hold {}",
                    path[..=depth].join("."),
                    last
                ));
            }
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Removes the value at `path` (relative to the section) so deserialization can go on and
/// report the next problem; false when there is nothing to remove.
fn remove_at(value: &mut toml::Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match (segment, current) {
            (Segment::Key(key), toml::Value::Table(table)) => match table.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Index(index), toml::Value::Array(array)) => match array.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, current) {
        (Segment::Key(key), toml::Value::Table(table)) => table.remove(key).is_some(),
        _ => false,
    }
}

fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    name: &str,
    locator: &Locator<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> T {
    let Some(value) = table.get(name) else {
        return T::default();
    };
    let mut value = value.clone();
    // serde stops at the first error; drop the offending key and go again, so every
    // problem of the section is listed (bounded: each round removes one key).
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return parsed,
            Err(error) => {
                let mut relative = Vec::new();
                for segment in error.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Seq { index } => {
                            relative.push(Segment::Index(*index))
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            relative.push(Segment::Key(key.clone()))
                        }
                        serde_path_to_error::Segment::Enum { variant } => {
                            relative.push(Segment::Key(variant.clone()))
                        }
                        serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let mut path = vec![Segment::Key(name.to_owned())];
                path.extend(relative.iter().cloned());
                let message = error.into_inner().to_string();
                // toml appends "in `key`" on a second line; the path already says where.
                let message = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .trim_end_matches('.')
                    .to_owned();
                problems.push(ConfigProblem {
                    path: render_path(&path),
                    origin: locator.origin(&path),
                    message,
                });
                if !remove_at(&mut value, &relative) {
                    return T::default();
                }
            }
        }
    }
    T::default()
}

const SECTIONS: &[&str] = &[
    "daemon",
    "supervisor",
    "sources",
    "agents",
    "notify",
    "access",
    "executors",
    "alerting",
    "channels",
    "reasoner",
    "memory",
    "briefings",
    "finance",
    "demo",
];

fn read_secret_file(
    path: &Path,
    key_path: &str,
    locator: &Locator<'_>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_owned())),
        Ok(_) => {
            problems.push(ConfigProblem {
                path: key_path.to_owned(),
                origin: locator.origin(&split_path(key_path)),
                message: format!("secret file {} is empty", path.display()),
            });
            None
        }
        Err(error) => {
            problems.push(ConfigProblem {
                path: key_path.to_owned(),
                origin: locator.origin(&split_path(key_path)),
                message: format!("cannot read secret file {}: {error}", path.display()),
            });
            None
        }
    }
}

fn split_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((key, rest)) => {
                segments.push(Segment::Key(key.to_owned()));
                if let Ok(index) = rest.trim_end_matches(']').parse() {
                    segments.push(Segment::Index(index));
                }
            }
            None => segments.push(Segment::Key(part.to_owned())),
        }
    }
    segments
}

/// Loads configuration text (`source_name` is used in messages).
pub fn load_text(
    text: &str,
    source_name: &str,
    env: &[(String, String)],
) -> Result<Config, ConfigErrors> {
    let fail = |problems: Vec<ConfigProblem>| ConfigErrors {
        source_name: source_name.to_owned(),
        problems,
    };
    let document = match text.parse::<toml_edit::Document<String>>() {
        Ok(document) => document,
        Err(error) => {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = error.message().trim().to_owned();
            return Err(fail(vec![ConfigProblem {
                path: "(syntax)".to_owned(),
                origin: line.map(|line| format!("{source_name}:{line}")),
                message: format!("{message}; the file is not valid TOML"),
            }]));
        }
    };
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            return Err(fail(vec![ConfigProblem {
                path: "(syntax)".to_owned(),
                origin: None,
                message: error.message().to_owned(),
            }]));
        }
    };
    let mut locator = Locator {
        text,
        document: Some(document),
        source_name,
        env_paths: Vec::new(),
    };
    let mut problems = Vec::new();

    // Secrets are never read from the file itself.
    for (secret_path, file_key) in SECRET_KEYS {
        let segments: Vec<String> = secret_path.split('.').map(str::to_owned).collect();
        let mut current = Some(&table);
        for key in &segments[..segments.len() - 1] {
            current = current
                .and_then(|t| t.get(key))
                .and_then(toml::Value::as_table);
        }
        if current.is_some_and(|t| t.contains_key(&segments[segments.len() - 1])) {
            let env_name = format!(
                "{ENV_PREFIX}{}",
                secret_path.replace('.', "__").to_uppercase()
            );
            problems.push(ConfigProblem {
                path: (*secret_path).to_owned(),
                origin: locator.origin(&split_path(secret_path)),
                message: format!(
                    "secrets are not read from the configuration file; set {env_name} or `{file_key}` (a path to a file holding the key), and remove this line"
                ),
            });
        }
    }
    if let Some(webhooks) = table
        .get("notify")
        .and_then(|notify| notify.get("webhooks"))
        .and_then(toml::Value::as_array)
    {
        for (index, webhook) in webhooks.iter().enumerate() {
            if webhook.get("secret").is_some() {
                let path = format!("notify.webhooks[{index}].secret");
                problems.push(ConfigProblem {
                    origin: locator.origin(&split_path(&path)),
                    path,
                    message: "secrets are not read from the configuration file; use `secret_file` (a path to a file holding the key)".to_owned(),
                });
            }
        }
    }

    // Environment overrides: COMMAND_CENTER__SOURCES__COINGECKO__API_KEY -> sources.coingecko.api_key
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest
            .split("__")
            .map(|part| part.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            problems.push(ConfigProblem {
                path: path.join("."),
                origin: Some(format!("environment variable {name}")),
                message: "malformed name: use COMMAND_CENTER__SECTION__KEY".to_owned(),
            });
            continue;
        }
        let is_secret = SECRET_KEYS
            .iter()
            .any(|(secret, _)| *secret == path.join("."));
        let value = if is_secret {
            toml::Value::String(raw.clone())
        } else {
            parse_env_value(raw)
        };
        if let Err(message) = set_path(&mut table, &path, value) {
            problems.push(ConfigProblem {
                path: path.join("."),
                origin: Some(format!("environment variable {name}")),
                message,
            });
            continue;
        }
        locator.env_paths.push((
            path.iter().map(|key| Segment::Key(key.clone())).collect(),
            name.clone(),
        ));
    }

    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(ConfigProblem {
                path: key.clone(),
                origin: locator.origin(&[Segment::Key(key.clone())]),
                message: format!("unknown section; expected one of: {}", SECTIONS.join(", ")),
            });
        }
    }

    let mut config = Config {
        daemon: section::<DaemonConfig>(&table, "daemon", &locator, &mut problems),
        supervisor: section::<SupervisorConfig>(&table, "supervisor", &locator, &mut problems),
        sources: section::<SourcesConfig>(&table, "sources", &locator, &mut problems),
        agents: section::<AgentsConfig>(&table, "agents", &locator, &mut problems),
        notify: section::<NotifyConfig>(&table, "notify", &locator, &mut problems),
        access: section::<super::AccessConfig>(&table, "access", &locator, &mut problems),
        executors: section::<crate::executors::ExecutorsConfig>(
            &table,
            "executors",
            &locator,
            &mut problems,
        ),
        alerting: section::<super::AlertingConfig>(&table, "alerting", &locator, &mut problems),
        channels: section::<super::ChannelsConfig>(&table, "channels", &locator, &mut problems),
        reasoner: section::<super::ReasonerSection>(&table, "reasoner", &locator, &mut problems),
        memory: section::<super::MemorySection>(&table, "memory", &locator, &mut problems),
        briefings: section::<super::BriefingsSection>(&table, "briefings", &locator, &mut problems),
        finance: section::<agents::finance::FinanceConfig>(
            &table,
            "finance",
            &locator,
            &mut problems,
        ),
        demo: section::<DemoConfig>(&table, "demo", &locator, &mut problems),
    };

    // Secret files.
    if let Some(path) = config.sources.coingecko.api_key_file.clone() {
        config.sources.coingecko.api_key = read_secret_file(
            &path,
            "sources.coingecko.api_key_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.sources.toncenter.api_key_file.clone() {
        config.sources.toncenter.api_key = read_secret_file(
            &path,
            "sources.toncenter.api_key_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.channels.slack.signing_secret_file.clone() {
        config.channels.slack.signing_secret = read_secret_file(
            &path,
            "channels.slack.signing_secret_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.channels.slack.app_token_file.clone() {
        config.channels.slack.app_token = read_secret_file(
            &path,
            "channels.slack.app_token_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.channels.slack.bot_token_file.clone() {
        config.channels.slack.bot_token = read_secret_file(
            &path,
            "channels.slack.bot_token_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.channels.telegram.bot_token_file.clone() {
        config.channels.telegram.bot_token = read_secret_file(
            &path,
            "channels.telegram.bot_token_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.channels.telegram.webhook_secret_file.clone() {
        config.channels.telegram.webhook_secret = read_secret_file(
            &path,
            "channels.telegram.webhook_secret_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(path) = config.reasoner.api_key_file.clone() {
        config.reasoner.api_key =
            read_secret_file(&path, "reasoner.api_key_file", &locator, &mut problems);
    }
    if let Some(path) = config.memory.qdrant.api_key_file.clone() {
        config.memory.qdrant.api_key =
            read_secret_file(&path, "memory.qdrant.api_key_file", &locator, &mut problems);
    }
    if let Some(path) = config.memory.openai.api_key_file.clone() {
        config.memory.openai.api_key =
            read_secret_file(&path, "memory.openai.api_key_file", &locator, &mut problems);
    }
    if let Some(path) = config.sources.tonapi.api_key_file.clone() {
        config.sources.tonapi.api_key = read_secret_file(
            &path,
            "sources.tonapi.api_key_file",
            &locator,
            &mut problems,
        );
    }
    if let Some(email) = config.notify.email.as_mut()
        && let Some(path) = email.password_file.clone()
    {
        email.password =
            read_secret_file(&path, "notify.email.password_file", &locator, &mut problems);
    }
    for index in 0..config.notify.webhooks.len() {
        if let Some(path) = config.notify.webhooks[index].secret_file.clone() {
            config.notify.webhooks[index].secret = read_secret_file(
                &path,
                &format!("notify.webhooks[{index}].secret_file"),
                &locator,
                &mut problems,
            );
        }
    }

    for (path, message) in super::validate::validate(&config) {
        problems.push(ConfigProblem {
            origin: locator.origin(&split_path(&path)),
            path,
            message,
        });
    }

    if problems.is_empty() {
        Ok(config)
    } else {
        Err(fail(problems))
    }
}

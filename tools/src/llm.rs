//! Typed tools for a language model: authors implement [`Tool`] (a typed argument struct with a
//! generated JSON Schema, a serializable output); the model's side of the boundary sees the
//! object-safe [`DynTool`] every `Tool` is (`definition()` and `call_json()`), and a
//! [`ToolRegistry`] calls tools by name.
//!
//! Everything a model can get wrong is a value, never an error or a panic: malformed
//! arguments (with the path of the field), an unknown tool name, a tool that fails or takes
//! too long. Results are cut to a byte budget with a marker saying so.
//!
//! Untrusted text stays data: [`untrusted`] wraps text from outside (chat messages, fetched
//! pages, notes people typed) in a labelled `<untrusted source="...">` element whose closing
//! tag cannot be forged from inside, and an output field of type [`Untrusted`] serializes that
//! way, so a tool result says which of its parts are data and not instructions.
//!
//! What this module must never do: execute anything. The tools are read-only; the one that
//! proposes hands a proposal to the policy gate and returns its decision.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

#[cfg(test)]
mod tests;

/// Why a tool call produced no result. The variants are what the model can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the schema or ask for something impossible; fix and retry.
    #[error("arguments: {0}")]
    InvalidArguments(String),
    /// What was asked for does not exist; the message lists what does.
    #[error("not found: {0}")]
    NotFound(String),
    /// The data cannot be read now; retrying later may help.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No tool of that name.
    #[error("unknown tool {name:?}; known tools: {known}")]
    UnknownTool { name: String, known: String },
    /// The tool took longer than its budget.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl ToolError {
    /// `invalid_arguments`, `not_found`, `unavailable`, `unknown_tool` or `timeout`.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::NotFound(_) => "not_found",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::Timeout(_) => "timeout",
        }
    }
}

/// What a model is told about a tool: the shape of an OpenAI `function` definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments: an object at the top, no `$schema`, subschemas inlined.
    pub parameters: serde_json::Value,
}

/// What a call produced: the tool's output, or an error the model reads as
/// `{"error": "...", "kind": "..."}`. Either way a value.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolOutcome {
    Output(serde_json::Value),
    Error(ToolError),
}

impl ToolOutcome {
    pub fn is_error(&self) -> bool {
        matches!(self, ToolOutcome::Error(_))
    }

    /// The value a model reads.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            ToolOutcome::Output(value) => value.clone(),
            ToolOutcome::Error(error) => serde_json::json!({
                "error": error.to_string(),
                "kind": error.kind(),
            }),
        }
    }
}

/// A typed tool. Implement this; [`DynTool`] comes with it.
pub trait Tool: Send + Sync {
    /// The name a model calls it by: lowercase letters, digits and `_`.
    const NAME: &'static str;
    /// What it answers and when to use it, for the model.
    const DESCRIPTION: &'static str;
    type Args: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize;

    fn call(
        &self,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolOutcome> + Send + 'a>>;

/// The object-safe twin of [`Tool`], for registries and model loops.
pub trait DynTool: Send + Sync {
    fn name(&self) -> &'static str;
    fn definition(&self) -> ToolDefinition;
    /// Parses `arguments` (JSON text; empty means `{}`) and calls the tool. Malformed
    /// arguments are an [`ToolError::InvalidArguments`] outcome naming the field.
    fn call_json<'a>(&'a self, arguments: &'a str) -> ToolFuture<'a>;
}

impl<T: Tool> DynTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: T::NAME.to_owned(),
            description: T::DESCRIPTION.to_owned(),
            parameters: parameters_schema::<T::Args>(),
        }
    }

    fn call_json<'a>(&'a self, arguments: &'a str) -> ToolFuture<'a> {
        Box::pin(async move {
            let args = match parse_arguments::<T::Args>(arguments) {
                Ok(args) => args,
                Err(error) => return ToolOutcome::Error(error),
            };
            match self.call(args).await {
                Ok(output) => match serde_json::to_value(&output) {
                    Ok(value) => ToolOutcome::Output(value),
                    Err(error) => ToolOutcome::Error(ToolError::Unavailable(format!(
                        "the result could not be encoded: {error}"
                    ))),
                },
                Err(error) => ToolOutcome::Error(error),
            }
        })
    }
}

/// The arguments' JSON Schema as OpenAI-compatible function parameters: generated by
/// schemars (draft 2020-12, subschemas inlined), without `$schema` and the Rust type's
/// `title`, always an object with `properties`, and `oneOf` written as `anyOf` (OpenAI
/// accepts only the latter; serde's tagged variants exclude each other anyway).
pub fn parameters_schema<A: JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.meta_schema = None;
            settings.inline_subschemas = true;
        })
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<A>().to_value();
    one_of_as_any_of(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        object
            .entry("type")
            .or_insert_with(|| serde_json::Value::from("object"));
        object
            .entry("properties")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    }
    schema
}

fn one_of_as_any_of(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(variants) = object.remove("oneOf") {
                object.insert("anyOf".to_owned(), variants);
            }
            object.values_mut().for_each(one_of_as_any_of);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(one_of_as_any_of),
        _ => {}
    }
}

/// Parses a model's argument text; empty text (some models send it for no arguments) is `{}`.
pub fn parse_arguments<A: DeserializeOwned>(arguments: &str) -> Result<A, ToolError> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ToolError::InvalidArguments(if path == "." {
            format!("{inner}; the tool's parameters schema says what it takes")
        } else {
            format!("at `{path}`: {inner}; the tool's parameters schema says what it takes")
        })
    })
}

/// Text from outside (a chat message, a fetched page, a note), wrapped as labelled data:
/// `<untrusted source="chat:alice">...</untrusted>`. A closing or opening tag inside the text
/// is neutralised, so the text cannot end the element early or open a new one.
pub fn untrusted(text: &str, source: &str) -> String {
    let source: String = source
        .chars()
        .map(|c| match c {
            '"' | '<' | '>' | '&' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    format!(
        "<untrusted source=\"{source}\">{}</untrusted>",
        neutralise_tags(text)
    )
}

/// Replaces `<untrusted` and `</untrusted` (any case) by `&lt;untrusted` / `&lt;/untrusted`.
fn neutralise_tags(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        let rest = &lower[index..];
        if rest.starts_with("<untrusted") || rest.starts_with("</untrusted") {
            out.push_str("&lt;");
            index += 1;
            continue;
        }
        // Lowercasing ASCII keeps byte offsets, so `index` is a char boundary in both.
        let Some(c) = text[index..].chars().next() else {
            break;
        };
        out.push(c);
        index += c.len_utf8();
    }
    out
}

/// An output field holding text from outside. It serializes as [`untrusted`] does, so in a
/// tool result every string that starts with `<untrusted source=` is data to read, never an
/// instruction to follow; all other fields were computed by Command Center itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untrusted {
    pub text: String,
    /// Where it came from: `chat:alice`, `journal:42`, `page:https://...`.
    pub source: String,
}

impl Untrusted {
    pub fn new(text: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            source: source.into(),
        }
    }
}

impl Serialize for Untrusted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&untrusted(&self.text, &self.source))
    }
}

/// One call as the registry ran it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolCall {
    pub name: String,
    /// Whether the content is an error value.
    pub is_error: bool,
    /// The outcome as compact JSON, cut to the registry's byte budget.
    pub content: String,
    pub truncated: bool,
    pub elapsed_ms: u64,
}

/// Default byte budget of one result.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 * 1024;
/// Default time budget of one call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Tools by name; definitions in name order, so a prompt is the same on every run.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<&'static str, Arc<dyn DynTool>>,
    max_result_bytes: usize,
    timeout: Duration,
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolRegistry {
    pub fn new() -> Self {
        Self {
            tools: BTreeMap::new(),
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    pub fn with_max_result_bytes(mut self, bytes: usize) -> Self {
        self.max_result_bytes = bytes;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a tool; one with the same name is replaced.
    pub fn register(&mut self, tool: impl DynTool + 'static) -> &mut Self {
        self.tools.insert(tool.name(), Arc::new(tool));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.tools.keys().copied().collect()
    }

    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.tools.values().map(|tool| tool.definition()).collect()
    }

    /// Calls a tool by name. Unknown names, bad arguments, failures and timeouts are values.
    pub async fn call(&self, name: &str, arguments: &str) -> ToolCall {
        let started = Instant::now();
        let outcome = match self.tools.get(name) {
            None => ToolOutcome::Error(ToolError::UnknownTool {
                name: name.to_owned(),
                known: self.names().join(", "),
            }),
            Some(tool) => {
                match tokio::time::timeout(self.timeout, tool.call_json(arguments)).await {
                    Ok(outcome) => outcome,
                    Err(_) => ToolOutcome::Error(ToolError::Timeout(self.timeout)),
                }
            }
        };
        let (content, truncated) = truncate(&outcome.to_value().to_string(), self.max_result_bytes);
        ToolCall {
            name: name.to_owned(),
            is_error: outcome.is_error(),
            content,
            truncated,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// `text` cut at a character boundary to at most `max_bytes`, plus a marker saying how much
/// was kept; whether it was cut.
pub fn truncate(text: &str, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text.to_owned(), false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (
        format!(
            "{}…[truncated: {end} of {} bytes shown; ask for less, e.g. a smaller limit or range]",
            &text[..end],
            text.len()
        ),
        true,
    )
}

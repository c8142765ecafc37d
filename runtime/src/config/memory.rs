//! `[memory]` (the vector memory: where it lives, which embedder, how long it keeps what) and
//! `[briefings]` (the daily briefing each domain agent writes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use memory::vector::{Kind, Retention};
use serde::{Deserialize, Serialize};
use tools::secret::Secret;

use super::default_true;

/// Where the vectors live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryBackend {
    /// The Qdrant engine in process, under `<data_dir>/vectors`.
    #[default]
    Embedded,
    /// A Qdrant server or cluster over gRPC (`[memory.qdrant]`).
    Qdrant,
}

/// What turns text into vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderChoice {
    /// `local` when the model files are in `model_dir`, else `hashing` (with a warning).
    #[default]
    Auto,
    /// all-MiniLM-L6-v2 on the CPU, from `model_dir` (`command-center models install`).
    Local,
    /// An OpenAI-compatible embeddings endpoint (`[memory.openai]`).
    Openai,
    /// Lexical feature hashing: no files, no network; finds shared words, not meaning.
    Hashing,
}

fn default_half_life() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_expire_interval() -> Duration {
    Duration::from_secs(3600)
}
fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 3600)
}
/// A month and a year as the duration parser counts them (30.44 and 365.25 days), so the
/// defaults read "3months" and "1year" in the example file.
const MONTH: Duration = Duration::from_secs(2_630_016);
const YEAR: Duration = Duration::from_secs(31_557_600);

/// `[memory]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// Off: no vector memory, no memory_search tool, briefings are not remembered.
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub backend: MemoryBackend,
    #[serde(default)]
    pub embedder: EmbedderChoice,
    /// The local model's directory [default: `<data_dir>/models/all-minilm-l6-v2`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// Age at which a record's recency boost halves.
    #[serde(default = "default_half_life", with = "agents::duration")]
    pub recency_half_life: Duration,
    /// How often records past their retention are removed.
    #[serde(default = "default_expire_interval", with = "agents::duration")]
    pub expire_interval: Duration,
    /// Also remember what the journal records: alerts as incidents, answered conversations.
    #[serde(default = "default_true")]
    pub remember_journal: bool,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub qdrant: QdrantSection,
    #[serde(default)]
    pub openai: OpenAiEmbedderSection,
}

impl Default for MemorySection {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: MemoryBackend::Embedded,
            embedder: EmbedderChoice::Auto,
            model_dir: None,
            recency_half_life: default_half_life(),
            expire_interval: default_expire_interval(),
            remember_journal: true,
            retention: RetentionSection::default(),
            qdrant: QdrantSection::default(),
            openai: OpenAiEmbedderSection::default(),
        }
    }
}

impl MemorySection {
    /// The local model's directory for a data directory.
    pub fn model_dir(&self, data_dir: &Path) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("models").join("all-minilm-l6-v2"))
    }
}

/// `[memory.retention]`: how long each kind is kept after it was fetched; `0s` keeps it forever.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default = "RetentionSection::news", with = "agents::duration")]
    pub news: Duration,
    #[serde(default = "RetentionSection::release", with = "agents::duration")]
    pub release: Duration,
    #[serde(default = "RetentionSection::report", with = "agents::duration")]
    pub report: Duration,
    #[serde(default = "RetentionSection::incident", with = "agents::duration")]
    pub incident: Duration,
    #[serde(default = "RetentionSection::conversation", with = "agents::duration")]
    pub conversation: Duration,
    #[serde(default, with = "agents::duration")]
    pub note: Duration,
}

impl RetentionSection {
    fn news() -> Duration {
        MONTH * 3
    }
    fn release() -> Duration {
        YEAR * 2
    }
    fn report() -> Duration {
        YEAR
    }
    fn incident() -> Duration {
        YEAR
    }
    fn conversation() -> Duration {
        days(30)
    }

    /// The store's retention; zero durations keep forever.
    pub fn retention(&self) -> Retention {
        [
            (Kind::News, self.news),
            (Kind::Release, self.release),
            (Kind::Report, self.report),
            (Kind::Incident, self.incident),
            (Kind::Conversation, self.conversation),
            (Kind::Note, self.note),
        ]
        .into_iter()
        .filter(|(_, keep)| !keep.is_zero())
        .fold(Retention::default(), |retention, (kind, keep)| {
            retention.keep(kind, keep)
        })
    }
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            news: Self::news(),
            release: Self::release(),
            report: Self::report(),
            incident: Self::incident(),
            conversation: Self::conversation(),
            note: Duration::ZERO,
        }
    }
}

fn default_qdrant_url() -> String {
    "http://127.0.0.1:6334".to_owned()
}
fn default_collection() -> String {
    "command_center_memory".to_owned()
}
fn default_qdrant_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[memory.qdrant]`: the Qdrant server (gRPC port) when `backend = "qdrant"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantSection {
    #[serde(default = "default_qdrant_url")]
    pub url: String,
    /// Only from `COMMAND_CENTER__MEMORY__QDRANT__API_KEY` or `api_key_file`.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    #[serde(default = "default_collection")]
    pub collection: String,
    #[serde(default = "default_qdrant_timeout", with = "agents::duration")]
    pub timeout: Duration,
}

impl Default for QdrantSection {
    fn default() -> Self {
        Self {
            url: default_qdrant_url(),
            api_key: None,
            api_key_file: None,
            collection: default_collection(),
            timeout: default_qdrant_timeout(),
        }
    }
}

fn default_openai_url() -> String {
    "https://api.openai.com/v1".to_owned()
}
fn default_embedding_model() -> String {
    "text-embedding-3-small".to_owned()
}

/// `[memory.openai]`: an OpenAI-compatible embeddings endpoint when `embedder = "openai"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiEmbedderSection {
    #[serde(default = "default_openai_url")]
    pub base_url: String,
    #[serde(default = "default_embedding_model")]
    pub model: String,
    /// Only from `COMMAND_CENTER__MEMORY__OPENAI__API_KEY` or `api_key_file`.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Vector length to ask for (models that support it); 0: the model's own.
    #[serde(default)]
    pub dimensions: u32,
}

impl Default for OpenAiEmbedderSection {
    fn default() -> Self {
        Self {
            base_url: default_openai_url(),
            model: default_embedding_model(),
            api_key: None,
            api_key_file: None,
            dimensions: 0,
        }
    }
}

fn default_briefing_at() -> String {
    "07:00".to_owned()
}
fn default_briefing_domains() -> Vec<String> {
    vec!["validators".to_owned(), "market".to_owned()]
}

/// `[briefings]`: once a day each listed domain agent writes a briefing (with the reasoner when
/// `[reasoner]` is on, else from a template), remembers it and sends it to `receivers`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BriefingsSection {
    #[serde(default)]
    pub enabled: bool,
    /// UTC time of day, `HH:MM`.
    #[serde(default = "default_briefing_at")]
    pub at: String,
    #[serde(default = "default_briefing_domains")]
    pub domains: Vec<String>,
    /// Names of `[[alerting.receivers]]`.
    #[serde(default)]
    pub receivers: Vec<String>,
}

impl Default for BriefingsSection {
    fn default() -> Self {
        Self {
            enabled: false,
            at: default_briefing_at(),
            domains: default_briefing_domains(),
            receivers: Vec::new(),
        }
    }
}

impl BriefingsSection {
    /// `at` as a time of day.
    pub fn time(&self) -> Result<chrono::NaiveTime, String> {
        chrono::NaiveTime::parse_from_str(self.at.trim(), "%H:%M")
            .map_err(|_| format!("{:?} is not a UTC time of day like \"07:00\"", self.at))
    }
}

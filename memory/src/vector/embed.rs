//! Embedders: text in, unit vectors out.
//!
//! Every embedder names its vector space with [`Embedder::id`]; a store records the id that made
//! its vectors and refuses to mix spaces (see [`super::MemoryStore::reindex`]).

/// Turns texts into dense vectors of [`Embedder::dims`] dimensions.
///
/// Synchronous on purpose: embedding is CPU work (or, for a remote endpoint, a call the caller
/// wraps); async callers run it under `tokio::task::spawn_blocking`. Object safe, so a store
/// holds an `Arc<dyn Embedder>`.
pub trait Embedder: Send + Sync {
    /// Names the vector space, including its version: two embedders with the same id must give
    /// the same vector for the same text (for example `hashing-384-v1`, `minilm-l6-v2`).
    fn id(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dims(&self) -> usize;

    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// What can go wrong while embedding; the variants are what a caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The text cannot be embedded (empty, or nothing the embedder can read); fix the input.
    #[error("cannot embed text #{index}: {reason}")]
    InvalidInput { index: usize, reason: String },

    /// The model or endpoint is not there (missing files, connection refused); retry later or
    /// configure another embedder.
    #[error("embedder {embedder} is unavailable: {message}")]
    Unavailable { embedder: String, message: String },

    /// The embedder answered with something unusable (wrong length, NaN values).
    #[error("embedder {embedder} returned a bad vector: {message}")]
    BadOutput { embedder: String, message: String },
}

/// Lexical feature hashing: no model files, no network, so `run` always has an embedder.
///
/// Features are lowercase word unigrams (weight 1), word bigrams (weight 0.5) and character
/// trigrams of each word with boundary marks (weight 0.25, so `validator` is near
/// `validators`). Each feature is hashed with 64-bit FNV-1a (fixed, so vectors are the same on
/// every run and platform) into one of `dims` buckets with a sign taken from the hash, and the
/// vector is L2-normalized. It captures shared words, not meaning.
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dims: usize,
    id: String,
}

/// Dimensions of the default hashing embedder; the same as all-MiniLM-L6-v2, so a later switch
/// to the local model keeps the store's shape.
pub const HASHING_DIMS: usize = 384;

impl HashingEmbedder {
    /// The default: 384 dimensions, id `hashing-384-v1`.
    pub fn new() -> Self {
        Self::with_dims(HASHING_DIMS)
    }

    /// Another width (at least 8); the id carries the width, so stores notice a change.
    pub fn with_dims(dims: usize) -> Self {
        let dims = dims.max(8);
        Self {
            dims,
            id: format!("hashing-{dims}-v1"),
        }
    }

    fn embed_one(&self, index: usize, text: &str) -> Result<Vec<f32>, EmbedError> {
        let words = words(text);
        if words.is_empty() {
            return Err(EmbedError::InvalidInput {
                index,
                reason: "the text has no letters or digits".to_owned(),
            });
        }
        let mut vector = vec![0f32; self.dims];
        for word in &words {
            self.add_feature(&mut vector, b'u', word.as_bytes(), 1.0);
            let marked: Vec<char> = std::iter::once('<')
                .chain(word.chars())
                .chain(std::iter::once('>'))
                .collect();
            for trigram in marked.windows(3) {
                let trigram: String = trigram.iter().collect();
                self.add_feature(&mut vector, b'c', trigram.as_bytes(), 0.25);
            }
        }
        for pair in words.windows(2) {
            let bigram = format!("{} {}", pair[0], pair[1]);
            self.add_feature(&mut vector, b'b', bigram.as_bytes(), 0.5);
        }
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            for x in &mut vector {
                *x /= norm;
            }
        }
        Ok(vector)
    }

    fn add_feature(&self, vector: &mut [f32], prefix: u8, feature: &[u8], weight: f32) {
        let hash = fnv1a64(prefix, feature);
        // dims is at most usize::MAX, and the remainder is below dims
        let bucket = (hash % self.dims as u64) as usize;
        let sign = if hash >> 63 == 1 { -1.0 } else { 1.0 };
        if let Some(slot) = vector.get_mut(bucket) {
            *slot += sign * weight;
        }
    }
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self::new()
    }
}

impl Embedder for HashingEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| self.embed_one(index, text))
            .collect()
    }
}

/// Lowercase runs of letters and digits.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn fnv1a64(prefix: u8, bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in std::iter::once(&prefix).chain(bytes) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// Checks an embedder's answer: one vector per text, each of `dims` finite values.
pub(crate) fn check_vectors(
    embedder: &dyn Embedder,
    texts: usize,
    vectors: &[Vec<f32>],
) -> Result<(), EmbedError> {
    let bad = |message: String| EmbedError::BadOutput {
        embedder: embedder.id().to_owned(),
        message,
    };
    if vectors.len() != texts {
        return Err(bad(format!("{} vectors for {texts} texts", vectors.len())));
    }
    for (index, vector) in vectors.iter().enumerate() {
        if vector.len() != embedder.dims() {
            return Err(bad(format!(
                "vector #{index} has {} values, expected {}",
                vector.len(),
                embedder.dims()
            )));
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!("vector #{index} holds NaN or infinite values")));
        }
        if vector.iter().all(|x| *x == 0.0) {
            return Err(bad(format!(
                "vector #{index} is all zeros (cosine is undefined)"
            )));
        }
    }
    Ok(())
}

//! The Qdrant server backend: the records, vectors and ranking of [`super::EmbeddedStore`], kept
//! in a collection of a Qdrant server over gRPC (qdrant-client).
//!
//! Layout on the server: the configured collection name is an alias of the live generation
//! `<collection>-gen-<N>`. A generation holds one point per record (see `points`: a dense vector,
//! a BM25 sparse vector with the server applying IDF, the record's fields as payload) and one
//! meta point ([`META_POINT`], no vectors) naming the embedder that made its vectors. The meta
//! point is written last, so a generation without one is unfinished. A reindex fills generation
//! N+1, writes its meta point, moves the alias and drops generation N; a store that finds no
//! alias (a crash between those steps) adopts the newest finished generation.
//!
//! The trait is synchronous: the store owns a one-worker tokio runtime, hands each request to it
//! and waits for the answer on a channel, so it works from plain threads and from
//! `spawn_blocking`, and never blocks on the caller's runtime.
//!
//! The API key is sent as the `api-key` header and never appears in a log line or an error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::qdrant::{
    AliasDescription, Condition, CountPoints, CreateAlias, CreateCollection,
    CreateFieldIndexCollection, DeleteAlias, DeleteCollection, DeletePoints, DenseVector, Distance,
    FieldType, Filter, GetPoints, Modifier, NamedVectors, PointId, PointStruct, PointsSelector,
    Query, QueryPoints, Range, RetrievedPoint, ScoredPoint, ScrollPoints, SparseVectorConfig,
    SparseVectorParams, UpsertPoints, Value, Vector, VectorInput, VectorParams, VectorParamsMap,
    Vectors, VectorsConfig, VectorsSelector, WithPayloadSelector, WithVectorsSelector,
    r#match::MatchValue, vector_output, vectors_config, vectors_output, with_vectors_selector,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use qdrant_edge::SparseVector;
use serde_json::Map;

#[cfg(doc)]
use super::MemoryStore;
use super::generation::{Backend, Generation, KeywordHit, Live, PointData, Store};
use super::points::{
    self, DENSE, INTEGER_FIELDS, KEYWORD_FIELDS, META_FORMAT, Meta, PAGE, RecordFilter, SPARSE,
};
use super::{Embedder, MemoryRecord, VectorError};

/// The collection (an alias on the server) when none is configured.
pub const DEFAULT_COLLECTION: &str = "command_center_memory";
/// The id of each generation's meta point; record ids never map to it (it would take a SHA-256
/// whose first 16 bytes are zero).
const META_POINT: &str = "00000000-0000-0000-0000-000000000000";
/// The meta point's payload field holding [`Meta`].
const META_FIELD: &str = "command_center_memory_meta";

/// Where the Qdrant server is and how to talk to it.
#[derive(Clone)]
pub struct QdrantConfig {
    /// The gRPC endpoint, `http://host:6334` or `https://...`.
    pub url: String,
    /// Sent as the `api-key` header; never logged or put in an error.
    pub api_key: Option<String>,
    /// The name searches use: an alias of the live generation.
    pub collection: String,
    /// For connecting and for each request.
    pub timeout: Duration,
}

impl QdrantConfig {
    /// `url` without a key, the default collection, a 10-second timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            collection: DEFAULT_COLLECTION.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    pub fn with_collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks what would otherwise fail late or leak: the key must be a valid header value
    /// (the client would echo a bad one in its error).
    fn validate(&self) -> Result<(), VectorError> {
        let invalid =
            |field: &'static str, message: String| VectorError::InvalidInput { field, message };
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(invalid(
                "url",
                format!(
                    "{} is not a Qdrant gRPC URL; expected http://host:6334 or https://host:6334",
                    redact_url(&self.url)
                ),
            ));
        }
        let name_ok = !self.collection.is_empty()
            && self.collection.len() <= 200
            && self
                .collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(invalid(
                "collection",
                format!(
                    "{:?} is not a collection name; use 1 to 200 ASCII letters, digits, `_` or `-`",
                    self.collection
                ),
            ));
        }
        if let Some(key) = &self.api_key
            && (key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        {
            return Err(invalid(
                "api_key",
                "the API key is empty or holds characters a header cannot carry (control or \
                 non-ASCII characters); check the variable it is read from"
                    .to_owned(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "a zero timeout".to_owned()));
        }
        Ok(())
    }
}

impl std::fmt::Debug for QdrantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantConfig")
            .field("url", &redact_url(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("collection", &self.collection)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL without user information, for messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://[redacted]@{host}{}", &rest[authority.len()..]),
        None => url.to_owned(),
    }
}

/// The client and the runtime its requests run on.
struct Remote {
    client: Qdrant,
    /// `Some` until drop, which shuts it down without blocking (the store may be dropped inside
    /// an async task, where a blocking shutdown would panic).
    runtime: Option<tokio::runtime::Runtime>,
    /// The URL without credentials, for errors.
    url: String,
    /// Kept only to scrub it from any message a server or library might echo.
    api_key: Option<String>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Remote {
    /// Runs one request on the store's runtime and waits for its answer.
    fn call<T, F, Fut>(&self, action: &'static str, request: F) -> Result<T, VectorError>
    where
        T: Send + 'static,
        F: FnOnce(Qdrant) -> Fut,
        Fut: Future<Output = Result<T, QdrantError>> + Send + 'static,
    {
        let stopped = || VectorError::Engine {
            action,
            location: self.url.clone(),
            message: "the client runtime stopped before the answer came".to_owned(),
        };
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let future = request(self.client.clone());
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            // the receiver only goes away with the caller, who no longer wants the answer
            let _ = sender.send(future.await);
        });
        match receiver.recv() {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(self.error(action, &error)),
            Err(_) => Err(stopped()),
        }
    }

    fn error(&self, action: &'static str, error: &QdrantError) -> VectorError {
        let message = match error {
            QdrantError::ResponseError { status }
            | QdrantError::ResourceExhaustedError { status, .. } => describe_status(status),
            other => other.to_string(),
        };
        VectorError::Engine {
            action,
            location: self.url.clone(),
            message: self.scrub(message),
        }
    }

    fn scrub(&self, message: String) -> String {
        match &self.api_key {
            Some(key) if message.contains(key.as_str()) => {
                message.replace(key.as_str(), "[redacted]")
            }
            _ => message,
        }
    }
}

/// A gRPC status in words, with what to do for the cases an operator can fix.
fn describe_status(status: &tonic::Status) -> String {
    use tonic::Code;
    let detail = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => format!(
            "the Qdrant server refused the request's API key ({detail}); configure the key \
             the server expects"
        ),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => format!(
            "the Qdrant server is not reachable ({detail}); check that it runs and that the URL \
             names its gRPC port (6334 by default)"
        ),
        Code::Internal if status.message().starts_with("Failed to connect") => format!(
            "could not connect to the Qdrant server ({detail}); check that it runs and that the \
             URL names its gRPC port (6334 by default)"
        ),
        _ => detail,
    }
}

/// Vector memory on a Qdrant server.
pub type QdrantStore = Store<QdrantServer>;

/// Where the Qdrant store keeps its generations: collections on a server, behind an alias.
pub struct QdrantServer {
    remote: Remote,
    /// The configured collection name: the alias of the live generation.
    alias: String,
    /// `qdrant <url> collection <alias>`, for errors.
    location: String,
}

impl Store<QdrantServer> {
    /// Connects to the server and opens (or creates) the collection. Like the embedded store, a
    /// collection whose vectors another embedder made opens but refuses search and upsert until
    /// [`MemoryStore::reindex`]; an empty one simply switches to `embedder`.
    pub fn connect(config: QdrantConfig, embedder: Arc<dyn Embedder>) -> Result<Self, VectorError> {
        config.validate()?;
        let url = redact_url(&config.url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("qdrant-memory")
            .enable_all()
            .build()
            .map_err(|error| VectorError::Engine {
                action: "starting the Qdrant client's runtime",
                location: url.clone(),
                message: error.to_string(),
            })?;
        let client = Qdrant::from_url(&config.url)
            .api_key(config.api_key.clone())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .skip_compatibility_check()
            .build()
            .map_err(|error| VectorError::InvalidInput {
                field: "url",
                message: format!("{url} is not a usable gRPC URL: {error}"),
            })?;
        let remote = Remote {
            client,
            runtime: Some(runtime),
            url: url.clone(),
            api_key: config.api_key.clone(),
        };
        remote.call("connecting to the Qdrant server", |client| async move {
            client.health_check().await
        })?;
        let (collection, meta) = open_alias(&remote, &config.collection, embedder.as_ref())?;
        let backend = QdrantServer {
            remote,
            location: format!("qdrant {url} collection {}", config.collection),
            alias: config.collection,
        };
        let live = Live {
            handle: collection,
            meta,
            embedder,
        };
        Store::new(backend, live)
    }

    /// The collection searches use (an alias of the live generation).
    pub fn collection(&self) -> &str {
        &self.backend.alias
    }

    /// Drops every generation of this store's collection and the alias: for tests and for
    /// `memory` commands that start over.
    pub fn drop_collection(self) -> Result<(), VectorError> {
        let _writes = self.writes.lock();
        let server = &self.backend;
        // the alias first (only if it is there: removing a missing alias is an error), so no
        // reader is left on a generation about to go
        if list_aliases(&server.remote)?
            .iter()
            .any(|alias| alias.alias_name == server.alias)
        {
            let delete = DeleteAlias {
                alias_name: server.alias.clone(),
            };
            server
                .remote
                .call("removing the alias", |client| async move {
                    client.delete_alias(delete).await
                })?;
        }
        for name in list_collections(&server.remote)?
            .iter()
            .filter(|name| generation_of(&server.alias, name).is_some())
        {
            delete_collection(&server.remote, name)?;
        }
        Ok(())
    }
}

impl Backend for QdrantServer {
    /// The generation's collection name, `<alias>-gen-<N>`.
    type Handle = String;
    type Id = PointId;
    type Generation<'a> = Collection<'a>;

    const NAME: &'static str = "qdrant";

    fn location(&self) -> &str {
        &self.location
    }

    fn generation<'a>(&'a self, name: &'a String, _meta: &Meta) -> Collection<'a> {
        Collection {
            remote: &self.remote,
            name,
        }
    }

    fn create(&self, meta: &Meta) -> Result<String, VectorError> {
        let name = generation_name(&self.alias, meta.generation);
        create_generation(&self.remote, &name, meta.dims)?;
        Ok(name)
    }

    fn commit(&self, name: &String, meta: &Meta) -> Result<(), VectorError> {
        write_meta(&self.remote, name, meta)?;
        point_alias(&self.remote, &self.alias, name)
    }

    fn retire(&self, name: String, _meta: &Meta) {
        if let Err(error) = delete_collection(&self.remote, &name) {
            tracing::warn!(collection = %name, %error, "could not drop the replaced vector generation");
        }
    }

    fn disk_bytes(&self) -> u64 {
        // the server does not say
        0
    }
}

/// One generation's point operations on the server; every write waits until it is applied.
pub struct Collection<'a> {
    remote: &'a Remote,
    name: &'a str,
}

impl Collection<'_> {
    fn get_points(
        &self,
        action: &'static str,
        ids: Vec<PointId>,
        with_payload: bool,
    ) -> Result<Vec<RetrievedPoint>, VectorError> {
        let request = GetPoints {
            collection_name: self.name.to_owned(),
            ids,
            with_payload: Some(WithPayloadSelector::from(with_payload)),
            with_vectors: Some(WithVectorsSelector::from(false)),
            ..Default::default()
        };
        let answer =
            self.remote.call(
                action,
                |client| async move { client.get_points(request).await },
            )?;
        Ok(answer.result)
    }

    fn query(
        &self,
        input: VectorInput,
        using: &str,
        filter: &RecordFilter,
        limit: usize,
        with_dense: bool,
    ) -> Result<Vec<ScoredPoint>, VectorError> {
        let with_vectors = if with_dense {
            WithVectorsSelector {
                selector_options: Some(with_vectors_selector::SelectorOptions::Include(
                    VectorsSelector {
                        names: vec![DENSE.to_owned()],
                    },
                )),
            }
        } else {
            WithVectorsSelector::from(false)
        };
        let request = QueryPoints {
            collection_name: self.name.to_owned(),
            query: Some(Query::new_nearest(input)),
            using: Some(using.to_owned()),
            filter: Some(grpc_filter(filter)),
            limit: Some(limit as u64),
            with_payload: Some(WithPayloadSelector::from(true)),
            with_vectors: Some(with_vectors),
            ..Default::default()
        };
        let answer =
            self.remote.call(
                "searching",
                |client| async move { client.query(request).await },
            )?;
        Ok(answer.result)
    }
}

impl Generation for Collection<'_> {
    type Id = PointId;

    fn point(&self, record_id: &str) -> Result<PointId, VectorError> {
        points::point_uuid(record_id).map(|uuid| PointId::from(uuid.to_string()))
    }

    fn count(&self) -> Result<usize, VectorError> {
        let request = CountPoints {
            collection_name: self.name.to_owned(),
            filter: Some(records_only()),
            exact: Some(true),
            ..Default::default()
        };
        let answer = self.remote.call("counting records", |client| async move {
            client.count(request).await
        })?;
        Ok(answer.result.map_or(0, |result| result.count) as usize)
    }

    fn count_stored(&self, ids: Vec<PointId>) -> Result<usize, VectorError> {
        Ok(self.get_points("looking up records", ids, false)?.len())
    }

    fn write(&self, points: Vec<PointData<'_>>) -> Result<(), VectorError> {
        let points = points
            .into_iter()
            .map(|point| {
                let mut named = HashMap::new();
                named.insert(DENSE.to_owned(), Vector::new_dense(point.dense));
                named.insert(
                    SPARSE.to_owned(),
                    Vector::new_sparse(point.sparse.indices, point.sparse.values),
                );
                Ok(PointStruct {
                    id: Some(self.point(&point.record.id)?),
                    vectors: Some(Vectors::from(NamedVectors { vectors: named })),
                    payload: Payload::from(points::record_payload(point.record)?).into(),
                })
            })
            .collect::<Result<Vec<_>, VectorError>>()?;
        upsert(self.remote, self.name, points)
    }

    fn remove(&self, ids: Vec<PointId>) -> Result<(), VectorError> {
        if ids.is_empty() {
            return Ok(());
        }
        let request = DeletePoints {
            collection_name: self.name.to_owned(),
            wait: Some(true),
            points: Some(PointsSelector::from(ids)),
            ..Default::default()
        };
        self.remote
            .call("deleting records", |client| async move {
                client.delete_points(request).await
            })
            .map(|_| ())
    }

    fn get(&self, id: PointId) -> Result<Option<MemoryRecord>, VectorError> {
        self.get_points("reading a record", vec![id], true)?
            .into_iter()
            .next()
            .map(|point| from_payload(point.payload))
            .transpose()
    }

    fn page(
        &self,
        offset: Option<PointId>,
    ) -> Result<(Vec<MemoryRecord>, Option<PointId>), VectorError> {
        let request = ScrollPoints {
            collection_name: self.name.to_owned(),
            filter: Some(records_only()),
            offset,
            limit: Some(PAGE as u32),
            with_payload: Some(WithPayloadSelector::from(true)),
            with_vectors: Some(WithVectorsSelector::from(false)),
            ..Default::default()
        };
        let answer = self.remote.call("reading records", |client| async move {
            client.scroll(request).await
        })?;
        let records = answer
            .result
            .into_iter()
            .map(|point| from_payload(point.payload))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, answer.next_page_offset))
    }

    fn nearest_dense(
        &self,
        vector: Vec<f32>,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryRecord, f32)>, VectorError> {
        self.query(VectorInput::new_dense(vector), DENSE, filter, limit, false)?
            .into_iter()
            .map(|point| Ok((from_payload(point.payload)?, point.score)))
            .collect()
    }

    fn nearest_keyword(
        &self,
        query: SparseVector,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<KeywordHit>, VectorError> {
        let input = VectorInput::new_sparse(query.indices, query.values);
        self.query(input, SPARSE, filter, limit, true)?
            .into_iter()
            .map(|point| {
                let stored = dense_of(point.vectors.as_ref());
                Ok((from_payload(point.payload)?, point.score, stored))
            })
            .collect()
    }
}

/// Finds the live generation behind `alias`, adopting the newest finished generation when the
/// alias is missing, or creates generation 1.
fn open_alias(
    remote: &Remote,
    alias: &str,
    embedder: &dyn Embedder,
) -> Result<(String, Meta), VectorError> {
    let aliases = list_aliases(remote)?;
    let names = list_collections(remote)?;
    let live = match aliases.into_iter().find(|a| a.alias_name == alias) {
        Some(found) => {
            let meta =
                read_meta(remote, &found.collection_name)?.ok_or_else(|| VectorError::Corrupt {
                    what: format!("collection {}", found.collection_name),
                    message: format!(
                        "alias {alias} names it but it has no meta point; drop the collection \
                         or point the alias at a finished generation"
                    ),
                })?;
            Some((found.collection_name, meta))
        }
        None => {
            if names.iter().any(|name| name == alias) {
                return Err(VectorError::InvalidInput {
                    field: "collection",
                    message: format!(
                        "{alias} is a collection on {} that this store did not create (it keeps \
                         an alias of that name over its own collections); configure another \
                         collection name",
                        remote.url
                    ),
                });
            }
            let mut generations: Vec<(u64, &String)> = names
                .iter()
                .filter_map(|name| generation_of(alias, name).map(|n| (n, name)))
                .collect();
            generations.sort_unstable_by(|a, b| b.cmp(a));
            let mut adopted = None;
            for (_, name) in generations {
                if let Some(meta) = read_meta(remote, name)? {
                    point_alias(remote, alias, name)?;
                    adopted = Some((name.clone(), meta));
                    break;
                }
            }
            adopted
        }
    };
    let (collection, meta) = match live {
        Some(live) => live,
        None => {
            let meta = Meta::new(1, embedder);
            let collection = generation_name(alias, 1);
            create_generation(remote, &collection, meta.dims)?;
            write_meta(remote, &collection, &meta)?;
            point_alias(remote, alias, &collection)?;
            (collection, meta)
        }
    };
    // generations a crash left behind: an unfinished reindex target or a replaced generation
    for name in names
        .iter()
        .filter(|name| **name != collection && generation_of(alias, name).is_some())
    {
        if let Err(error) = delete_collection(remote, name) {
            tracing::warn!(collection = %name, %error, "could not drop a stale vector generation");
        }
    }
    Ok((collection, meta))
}

fn generation_name(alias: &str, generation: u64) -> String {
    format!("{alias}-gen-{generation}")
}

/// The generation number when `name` is one of `alias`'s generations.
fn generation_of(alias: &str, name: &str) -> Option<u64> {
    name.strip_prefix(alias)?
        .strip_prefix("-gen-")?
        .parse()
        .ok()
}

fn list_aliases(remote: &Remote) -> Result<Vec<AliasDescription>, VectorError> {
    let answer = remote.call("listing aliases", |client| async move {
        client.list_aliases().await
    })?;
    Ok(answer.aliases)
}

fn list_collections(remote: &Remote) -> Result<Vec<String>, VectorError> {
    let answer = remote.call("listing collections", |client| async move {
        client.list_collections().await
    })?;
    Ok(answer.collections.into_iter().map(|c| c.name).collect())
}

fn delete_collection(remote: &Remote, name: &str) -> Result<(), VectorError> {
    let request = DeleteCollection {
        collection_name: name.to_owned(),
        ..Default::default()
    };
    remote
        .call("dropping a collection", |client| async move {
            client.delete_collection(request).await
        })
        .map(|_| ())
}

/// An empty generation (a leftover of the same name is dropped first) with the record vectors
/// and the payload indexes the filters use.
fn create_generation(remote: &Remote, collection: &str, dims: usize) -> Result<(), VectorError> {
    if list_collections(remote)?
        .iter()
        .any(|name| name == collection)
    {
        delete_collection(remote, collection)?;
    }
    let mut dense = HashMap::new();
    dense.insert(
        DENSE.to_owned(),
        VectorParams {
            size: dims as u64,
            distance: Distance::Cosine.into(),
            ..Default::default()
        },
    );
    let mut sparse = HashMap::new();
    sparse.insert(
        SPARSE.to_owned(),
        SparseVectorParams {
            index: None,
            modifier: Some(Modifier::Idf.into()),
        },
    );
    let request = CreateCollection {
        collection_name: collection.to_owned(),
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: dense,
            })),
        }),
        sparse_vectors_config: Some(SparseVectorConfig { map: sparse }),
        ..Default::default()
    };
    remote.call("creating a collection", |client| async move {
        client.create_collection(request).await
    })?;
    let indexes = KEYWORD_FIELDS
        .map(|field| (field, FieldType::Keyword))
        .into_iter()
        .chain(INTEGER_FIELDS.map(|field| (field, FieldType::Integer)));
    for (field, field_type) in indexes {
        let request = CreateFieldIndexCollection {
            collection_name: collection.to_owned(),
            wait: Some(true),
            field_name: field.to_owned(),
            field_type: Some(field_type.into()),
            ..Default::default()
        };
        remote.call("creating a payload index", |client| async move {
            client.create_field_index(request).await
        })?;
    }
    Ok(())
}

fn upsert(remote: &Remote, collection: &str, points: Vec<PointStruct>) -> Result<(), VectorError> {
    let request = UpsertPoints {
        collection_name: collection.to_owned(),
        wait: Some(true),
        points,
        ..Default::default()
    };
    remote
        .call("writing records", |client| async move {
            client.upsert_points(request).await
        })
        .map(|_| ())
}

/// Writes the meta point, which marks the generation finished.
fn write_meta(remote: &Remote, collection: &str, meta: &Meta) -> Result<(), VectorError> {
    let value = serde_json::to_value(meta).map_err(|error| VectorError::Corrupt {
        what: "vector memory metadata".to_owned(),
        message: error.to_string(),
    })?;
    let mut payload = HashMap::new();
    payload.insert(META_FIELD.to_owned(), Value::from(value));
    let point = PointStruct {
        id: Some(PointId::from(META_POINT)),
        vectors: Some(Vectors::from(NamedVectors::default())),
        payload,
    };
    upsert(remote, collection, vec![point])
}

fn read_meta(remote: &Remote, collection: &str) -> Result<Option<Meta>, VectorError> {
    let request = GetPoints {
        collection_name: collection.to_owned(),
        ids: vec![PointId::from(META_POINT)],
        with_payload: Some(WithPayloadSelector::from(true)),
        with_vectors: Some(WithVectorsSelector::from(false)),
        ..Default::default()
    };
    let answer = remote.call("reading the store's metadata", |client| async move {
        client.get_points(request).await
    })?;
    let Some(mut point) = answer.result.into_iter().next() else {
        return Ok(None);
    };
    let corrupt = |message: String| VectorError::Corrupt {
        what: format!("the meta point of collection {collection}"),
        message,
    };
    let value = point
        .payload
        .remove(META_FIELD)
        .ok_or_else(|| corrupt(format!("it has no {META_FIELD} field")))?;
    let meta: Meta =
        serde_json::from_value(value.into_json()).map_err(|error| corrupt(error.to_string()))?;
    if meta.format != META_FORMAT {
        return Err(corrupt(format!(
            "format {} is not the supported format {META_FORMAT}",
            meta.format
        )));
    }
    Ok(Some(meta))
}

/// Points `alias` at `collection`. The server replaces an alias of the same name; a server
/// that refuses is answered by deleting the alias first.
fn point_alias(remote: &Remote, alias: &str, collection: &str) -> Result<(), VectorError> {
    let create = CreateAlias {
        collection_name: collection.to_owned(),
        alias_name: alias.to_owned(),
    };
    let retry = create.clone();
    let first = remote.call(
        "pointing the alias at the live generation",
        |client| async move { client.create_alias(create).await },
    );
    if first.is_ok() {
        return Ok(());
    }
    let delete = DeleteAlias {
        alias_name: alias.to_owned(),
    };
    // the alias may not exist, in which case the first error stands
    let _ = remote.call("removing the alias", |client| async move {
        client.delete_alias(delete).await
    });
    remote
        .call(
            "pointing the alias at the live generation",
            |client| async move { client.create_alias(retry).await },
        )
        .map(|_| ())
        .map_err(|second| first.err().unwrap_or(second))
}

/// Every point but the meta point.
fn records_only() -> Filter {
    Filter::must_not([Condition::has_id([META_POINT])])
}

/// The server filter for a search: the query's filters, records past their own expiry hidden,
/// the meta point left out.
fn grpc_filter(filter: &RecordFilter) -> Filter {
    let mut must = Vec::new();
    // explicit keyword matches: the client's `From<String>` would make a full-text match of a
    // value holding whitespace
    if !filter.domains.is_empty() {
        must.push(Condition::matches(
            "domain",
            MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings {
                strings: filter.domains.clone(),
            }),
        ));
    }
    if !filter.kinds.is_empty() {
        must.push(Condition::matches(
            "kind",
            MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings {
                strings: filter.kinds.iter().map(|k| (*k).to_owned()).collect(),
            }),
        ));
    }
    if let Some(trust) = filter.trust {
        must.push(Condition::matches(
            "trust",
            MatchValue::Keyword(trust.to_owned()),
        ));
    }
    if filter.fetched_since_ms.is_some() || filter.fetched_until_ms.is_some() {
        must.push(Condition::range(
            "fetched_at_ms",
            Range {
                gte: filter.fetched_since_ms.map(|ms| ms as f64),
                lte: filter.fetched_until_ms.map(|ms| ms as f64),
                ..Default::default()
            },
        ));
    }
    Filter {
        must,
        must_not: vec![
            Condition::range(
                "expires_at_ms",
                Range {
                    lte: Some(filter.expired_at_ms as f64),
                    ..Default::default()
                },
            ),
            Condition::has_id([META_POINT]),
        ],
        ..Default::default()
    }
}

fn from_payload(payload: HashMap<String, Value>) -> Result<MemoryRecord, VectorError> {
    let map: Map<String, serde_json::Value> = payload
        .into_iter()
        .map(|(key, value)| (key, value.into_json()))
        .collect();
    points::record_from_payload(map)
}

fn dense_of(vectors: Option<&qdrant_client::qdrant::VectorsOutput>) -> Option<Vec<f32>> {
    let output = match vectors?.vectors_options.as_ref()? {
        vectors_output::VectorsOptions::Vectors(named) => named.vectors.get(DENSE)?.clone(),
        vectors_output::VectorsOptions::Vector(single) => single.clone(),
    };
    match output.into_vector() {
        vector_output::Vector::Dense(DenseVector { data }) => Some(data),
        _ => None,
    }
}

//! A Qdrant-compatible gRPC server for the tests of [`super::QdrantStore`]: the tonic service
//! traits qdrant-client ships, served on 127.0.0.1 over the engine in process (qdrant-edge
//! shards, one per collection, in a temporary directory).
//!
//! It answers what the store uses: health check, collections (create, delete, list, info,
//! exists), aliases, payload indexes, upsert, delete by id, get, scroll, count and nearest
//! queries on a named dense or sparse vector, with filters translated to the engine's own
//! filter types. Everything else answers `unimplemented`. Like a Qdrant server with an API key,
//! it refuses requests without the right `api-key` header, except the health check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use qdrant_client::qdrant::{
    self, AliasDescription, CollectionDescription, CollectionExists, CollectionOperationResponse,
    CountResult, DenseVector, PointsOperationResponse, UpdateResult, UpdateStatus, VectorOutput,
    VectorsOutput, alias_operations,
    collections_server::Collections,
    collections_server::CollectionsServer,
    condition, r#match, points_selector,
    points_server::{Points, PointsServer},
    qdrant_server::{Qdrant, QdrantServer},
    query, vector, vector_input, vector_output, vectors, vectors_config, vectors_output,
    with_payload_selector, with_vectors_selector,
};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    CountRequest, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard,
    EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder, FieldIndexOperations, Filter, JsonPath,
    Modifier, NamedQuery, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, QueryEnum, ScrollRequest,
    SearchRequest, SparseVector, UpdateOperation, VectorInternal, VectorStructInternal,
    VectorStructPersisted, WalOptions, WithPayloadInterface, WithVector,
};
use serde_json::{Value as Json, json};
use tonic::{Request, Response, Status};

/// A running server; dropped, it stops and its data is gone.
pub struct QdrantSim {
    url: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl QdrantSim {
    /// Serves on 127.0.0.1:<free port>; with `api_key`, every request but the health check
    /// must carry it in the `api-key` header.
    pub fn start(api_key: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(State {
            dir: dir.path().to_path_buf(),
            collections: Mutex::new(BTreeMap::new()),
            aliases: Mutex::new(BTreeMap::new()),
            next_shard: AtomicU64::new(1),
            operations: AtomicU64::new(1),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("qdrant-sim")
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = Sim {
            state: state.clone(),
        };
        let expected_key = api_key.map(str::to_owned);
        let check = move |request: Request<()>| check_api_key(expected_key.as_deref(), request);
        let _entered = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tonic::transport::Server::builder()
            .add_service(QdrantServer::new(service.clone()))
            .add_service(CollectionsServer::with_interceptor(
                service.clone(),
                check.clone(),
            ))
            .add_service(PointsServer::with_interceptor(service, check))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        runtime.spawn(server);
        drop(_entered);
        Self {
            url,
            state,
            shutdown: Some(shutdown),
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Collection names, sorted.
    pub fn collections(&self) -> Vec<String> {
        self.state.collections.lock().keys().cloned().collect()
    }

    /// Alias name to collection name.
    pub fn aliases(&self) -> BTreeMap<String, String> {
        self.state.aliases.lock().clone()
    }
}

impl Drop for QdrantSim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn check_api_key(expected: Option<&str>, request: Request<()>) -> Result<Request<()>, Status> {
    let Some(expected) = expected else {
        return Ok(request);
    };
    match request.metadata().get("api-key").map(|v| v.to_str()) {
        Some(Ok(given)) if given == expected => Ok(request),
        Some(_) => Err(Status::permission_denied("Invalid api-key")),
        None => Err(Status::unauthenticated(
            "Must provide an API key or an Authorization bearer token",
        )),
    }
}

struct State {
    dir: PathBuf,
    collections: Mutex<BTreeMap<String, Arc<Collection>>>,
    /// Alias name to collection name.
    aliases: Mutex<BTreeMap<String, String>>,
    next_shard: AtomicU64,
    operations: AtomicU64,
}

struct Collection {
    shard: EdgeShard,
    path: PathBuf,
}

impl State {
    /// A collection by name or alias, as the server resolves them.
    fn collection(&self, name: &str) -> Result<Arc<Collection>, Status> {
        let target = self
            .aliases
            .lock()
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        self.collections
            .lock()
            .get(&target)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))
    }

    fn done(&self) -> Response<PointsOperationResponse> {
        Response::new(PointsOperationResponse {
            result: Some(UpdateResult {
                operation_id: Some(self.operations.fetch_add(1, Ordering::Relaxed)),
                status: UpdateStatus::Completed.into(),
            }),
            time: 0.0,
            usage: None,
        })
    }
}

#[derive(Clone)]
struct Sim {
    state: Arc<State>,
}

fn engine_error(error: qdrant_edge::OperationError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn unsimulated(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not simulated"))
}

/// Stubs in the shape `#[async_trait]` gives the trait's methods.
macro_rules! unsimulated {
    ($($rpc:ident($request:ident) -> $response:ident;)*) => {
        $(
            fn $rpc<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<qdrant::$request>,
            ) -> Pin<
                Box<
                    dyn Future<Output = Result<Response<qdrant::$response>, Status>>
                        + Send
                        + 'async_trait,
                >,
            >
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move { Err(unsimulated(stringify!($rpc))) })
            }
        )*
    };
}

#[tonic::async_trait]
impl Qdrant for Sim {
    async fn health_check(
        &self,
        _request: Request<qdrant::HealthCheckRequest>,
    ) -> Result<Response<qdrant::HealthCheckReply>, Status> {
        Ok(Response::new(qdrant::HealthCheckReply {
            title: "qdrant - vector search engine (simulated over qdrant-edge)".to_owned(),
            version: "1.20.0".to_owned(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Sim {
    async fn get(
        &self,
        request: Request<qdrant::GetCollectionInfoRequest>,
    ) -> Result<Response<qdrant::GetCollectionInfoResponse>, Status> {
        let collection = self.state.collection(&request.get_ref().collection_name)?;
        let points = collection
            .shard
            .count(CountRequest {
                filter: None,
                exact: true,
            })
            .map_err(engine_error)?;
        Ok(Response::new(qdrant::GetCollectionInfoResponse {
            result: Some(qdrant::CollectionInfo {
                status: qdrant::CollectionStatus::Green.into(),
                points_count: Some(points as u64),
                ..Default::default()
            }),
            time: 0.0,
        }))
    }

    async fn list(
        &self,
        _request: Request<qdrant::ListCollectionsRequest>,
    ) -> Result<Response<qdrant::ListCollectionsResponse>, Status> {
        let collections = self
            .state
            .collections
            .lock()
            .keys()
            .map(|name| CollectionDescription { name: name.clone() })
            .collect();
        Ok(Response::new(qdrant::ListCollectionsResponse {
            collections,
            time: 0.0,
        }))
    }

    async fn create(
        &self,
        request: Request<qdrant::CreateCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let request = request.into_inner();
        let name = request.collection_name;
        if self.state.collections.lock().contains_key(&name)
            || self.state.aliases.lock().contains_key(&name)
        {
            return Err(Status::already_exists(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        // small WAL segments: the default 32 MiB each is much more than a test writes
        let mut config = EdgeConfigBuilder::new().wal_options(WalOptions {
            segment_capacity: 1024 * 1024,
            ..WalOptions::default()
        });
        match request.vectors_config.and_then(|c| c.config) {
            Some(vectors_config::Config::ParamsMap(map)) => {
                for (vector_name, params) in map.map {
                    config = config.vector(
                        &vector_name,
                        EdgeVectorParamsBuilder::new(
                            params.size as usize,
                            distance(params.distance)?,
                        )
                        .build(),
                    );
                }
            }
            Some(vectors_config::Config::Params(_)) => {
                return Err(unsimulated("create with an unnamed vector"));
            }
            None => {}
        }
        for (vector_name, params) in request
            .sparse_vectors_config
            .map(|c| c.map)
            .unwrap_or_default()
        {
            let modifier = match params.modifier.map(qdrant::Modifier::try_from) {
                Some(Ok(qdrant::Modifier::Idf)) => Modifier::Idf,
                Some(Ok(qdrant::Modifier::None)) | None => Modifier::None,
                Some(Err(_)) => return Err(Status::invalid_argument("unknown modifier")),
            };
            config = config.sparse_vector(
                &vector_name,
                EdgeSparseVectorParamsBuilder::new()
                    .modifier(modifier)
                    .build(),
            );
        }
        let number = self.state.next_shard.fetch_add(1, Ordering::Relaxed);
        let path = self.state.dir.join(format!("shard-{number}"));
        std::fs::create_dir_all(&path).map_err(|e| Status::internal(e.to_string()))?;
        let shard = EdgeShard::new(&path, config.build()).map_err(engine_error)?;
        self.state
            .collections
            .lock()
            .insert(name, Arc::new(Collection { shard, path }));
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn delete(
        &self,
        request: Request<qdrant::DeleteCollection>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let name = request.into_inner().collection_name;
        let removed = self.state.collections.lock().remove(&name);
        if let Some(collection) = removed {
            // like the server: aliases of a dropped collection go with it
            self.state
                .aliases
                .lock()
                .retain(|_, target| *target != name);
            let path = collection.path.clone();
            drop(collection);
            let _ = std::fs::remove_dir_all(path);
            Ok(Response::new(CollectionOperationResponse {
                result: true,
                time: 0.0,
            }))
        } else {
            Ok(Response::new(CollectionOperationResponse {
                result: false,
                time: 0.0,
            }))
        }
    }

    async fn update_aliases(
        &self,
        request: Request<qdrant::ChangeAliases>,
    ) -> Result<Response<CollectionOperationResponse>, Status> {
        let collections = self.state.collections.lock();
        let mut aliases = self.state.aliases.lock();
        // all actions or none, like the server
        let mut changed = aliases.clone();
        for operation in request.into_inner().actions {
            match operation.action {
                Some(alias_operations::Action::CreateAlias(create)) => {
                    if !collections.contains_key(&create.collection_name) {
                        return Err(Status::not_found(format!(
                            "Collection `{}` doesn't exist!",
                            create.collection_name
                        )));
                    }
                    if collections.contains_key(&create.alias_name) {
                        return Err(Status::already_exists(format!(
                            "Wrong input: Collection `{}` already exists!",
                            create.alias_name
                        )));
                    }
                    changed.insert(create.alias_name, create.collection_name);
                }
                Some(alias_operations::Action::DeleteAlias(delete)) => {
                    if changed.remove(&delete.alias_name).is_none() {
                        return Err(Status::not_found(format!(
                            "Alias {} does not exists!",
                            delete.alias_name
                        )));
                    }
                }
                Some(alias_operations::Action::RenameAlias(rename)) => {
                    let Some(target) = changed.remove(&rename.old_alias_name) else {
                        return Err(Status::not_found(format!(
                            "Alias {} does not exists!",
                            rename.old_alias_name
                        )));
                    };
                    changed.insert(rename.new_alias_name, target);
                }
                None => {
                    return Err(Status::invalid_argument(
                        "an alias operation without action",
                    ));
                }
            }
        }
        *aliases = changed;
        Ok(Response::new(CollectionOperationResponse {
            result: true,
            time: 0.0,
        }))
    }

    async fn list_collection_aliases(
        &self,
        request: Request<qdrant::ListCollectionAliasesRequest>,
    ) -> Result<Response<qdrant::ListAliasesResponse>, Status> {
        let name = request.into_inner().collection_name;
        Ok(Response::new(qdrant::ListAliasesResponse {
            aliases: alias_list(&self.state.aliases.lock(), Some(&name)),
            time: 0.0,
        }))
    }

    async fn list_aliases(
        &self,
        _request: Request<qdrant::ListAliasesRequest>,
    ) -> Result<Response<qdrant::ListAliasesResponse>, Status> {
        Ok(Response::new(qdrant::ListAliasesResponse {
            aliases: alias_list(&self.state.aliases.lock(), None),
            time: 0.0,
        }))
    }

    async fn collection_exists(
        &self,
        request: Request<qdrant::CollectionExistsRequest>,
    ) -> Result<Response<qdrant::CollectionExistsResponse>, Status> {
        let exists = self
            .state
            .collection(&request.get_ref().collection_name)
            .is_ok();
        Ok(Response::new(qdrant::CollectionExistsResponse {
            result: Some(CollectionExists { exists }),
            time: 0.0,
        }))
    }

    unsimulated! {
        update(UpdateCollection) -> CollectionOperationResponse;
        collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
        update_collection_cluster_setup(UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
        create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

fn alias_list(
    aliases: &BTreeMap<String, String>,
    collection: Option<&str>,
) -> Vec<AliasDescription> {
    aliases
        .iter()
        .filter(|(_, target)| collection.is_none_or(|c| c == target.as_str()))
        .map(|(alias, target)| AliasDescription {
            alias_name: alias.clone(),
            collection_name: target.clone(),
        })
        .collect()
}

fn distance(code: i32) -> Result<Distance, Status> {
    match qdrant::Distance::try_from(code) {
        Ok(qdrant::Distance::Cosine) => Ok(Distance::Cosine),
        Ok(qdrant::Distance::Dot) => Ok(Distance::Dot),
        Ok(qdrant::Distance::Euclid) => Ok(Distance::Euclid),
        Ok(qdrant::Distance::Manhattan) => Ok(Distance::Manhattan),
        _ => Err(Status::invalid_argument(format!("unknown distance {code}"))),
    }
}

#[tonic::async_trait]
impl Points for Sim {
    async fn upsert(
        &self,
        request: Request<qdrant::UpsertPoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let request = request.into_inner();
        if request.update_filter.is_some() || request.update_mode.is_some() {
            return Err(unsimulated("conditional upsert"));
        }
        let collection = self.state.collection(&request.collection_name)?;
        let points = request
            .points
            .into_iter()
            .map(point_from_grpc)
            .collect::<Result<Vec<_>, _>>()?;
        collection
            .shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
            .map_err(engine_error)?;
        collection.shard.flush();
        Ok(self.state.done())
    }

    async fn delete(
        &self,
        request: Request<qdrant::DeletePoints>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let request = request.into_inner();
        let collection = self.state.collection(&request.collection_name)?;
        let operation = match request.points.and_then(|p| p.points_selector_one_of) {
            Some(points_selector::PointsSelectorOneOf::Points(list)) => {
                PointOperations::DeletePoints {
                    ids: list
                        .ids
                        .into_iter()
                        .map(id_from_grpc)
                        .collect::<Result<_, _>>()?,
                }
            }
            Some(points_selector::PointsSelectorOneOf::Filter(filter)) => {
                PointOperations::DeletePointsByFilter(filter_from_grpc(&filter)?)
            }
            None => return Err(Status::invalid_argument("no points selected")),
        };
        collection
            .shard
            .update(UpdateOperation::PointOperation(operation))
            .map_err(engine_error)?;
        collection.shard.flush();
        Ok(self.state.done())
    }

    async fn get(
        &self,
        request: Request<qdrant::GetPoints>,
    ) -> Result<Response<qdrant::GetResponse>, Status> {
        let request = request.into_inner();
        let collection = self.state.collection(&request.collection_name)?;
        let ids = request
            .ids
            .into_iter()
            .map(id_from_grpc)
            .collect::<Result<Vec<_>, _>>()?;
        let records = collection
            .shard
            .retrieve(
                &ids,
                Some(with_payload(request.with_payload)?),
                Some(with_vector(request.with_vectors)),
            )
            .map_err(engine_error)?;
        Ok(Response::new(qdrant::GetResponse {
            result: records.into_iter().map(retrieved).collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn create_field_index(
        &self,
        request: Request<qdrant::CreateFieldIndexCollection>,
    ) -> Result<Response<PointsOperationResponse>, Status> {
        let request = request.into_inner();
        let collection = self.state.collection(&request.collection_name)?;
        let schema = match request.field_type.map(qdrant::FieldType::try_from) {
            Some(Ok(qdrant::FieldType::Keyword)) => PayloadSchemaType::Keyword,
            Some(Ok(qdrant::FieldType::Integer)) => PayloadSchemaType::Integer,
            Some(Ok(qdrant::FieldType::Float)) => PayloadSchemaType::Float,
            Some(Ok(qdrant::FieldType::Bool)) => PayloadSchemaType::Bool,
            _ => return Err(unsimulated("this payload index type")),
        };
        let field_name = JsonPath::try_from(request.field_name.as_str())
            .map_err(|()| Status::invalid_argument("not a payload path"))?;
        collection
            .shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name,
                    field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                }),
            ))
            .map_err(engine_error)?;
        collection.shard.flush();
        Ok(self.state.done())
    }

    async fn scroll(
        &self,
        request: Request<qdrant::ScrollPoints>,
    ) -> Result<Response<qdrant::ScrollResponse>, Status> {
        let request = request.into_inner();
        if request.order_by.is_some() {
            return Err(unsimulated("scroll with order_by"));
        }
        let collection = self.state.collection(&request.collection_name)?;
        let (records, next) = collection
            .shard
            .scroll(ScrollRequest {
                offset: request.offset.map(id_from_grpc).transpose()?,
                limit: Some(request.limit.unwrap_or(10) as usize),
                filter: request.filter.as_ref().map(filter_from_grpc).transpose()?,
                with_payload: Some(with_payload(request.with_payload)?),
                with_vector: with_vector(request.with_vectors),
                order_by: None,
            })
            .map_err(engine_error)?;
        Ok(Response::new(qdrant::ScrollResponse {
            next_page_offset: next.map(id_to_grpc),
            result: records.into_iter().map(retrieved).collect(),
            time: 0.0,
            usage: None,
        }))
    }

    async fn count(
        &self,
        request: Request<qdrant::CountPoints>,
    ) -> Result<Response<qdrant::CountResponse>, Status> {
        let request = request.into_inner();
        let collection = self.state.collection(&request.collection_name)?;
        let count = collection
            .shard
            .count(CountRequest {
                filter: request.filter.as_ref().map(filter_from_grpc).transpose()?,
                exact: request.exact.unwrap_or(true),
            })
            .map_err(engine_error)?;
        Ok(Response::new(qdrant::CountResponse {
            result: Some(CountResult {
                count: count as u64,
            }),
            time: 0.0,
            usage: None,
        }))
    }

    async fn query(
        &self,
        request: Request<qdrant::QueryPoints>,
    ) -> Result<Response<qdrant::QueryResponse>, Status> {
        let request = request.into_inner();
        if !request.prefetch.is_empty() {
            return Err(unsimulated("query with prefetch"));
        }
        let collection = self.state.collection(&request.collection_name)?;
        let input = match request.query.and_then(|q| q.variant) {
            Some(query::Variant::Nearest(input)) => input,
            _ => return Err(unsimulated("a query other than nearest")),
        };
        let vector = match input.variant {
            Some(vector_input::Variant::Dense(dense)) => VectorInternal::Dense(dense.data),
            Some(vector_input::Variant::Sparse(sparse)) => VectorInternal::Sparse(SparseVector {
                indices: sparse.indices,
                values: sparse.values,
            }),
            _ => {
                return Err(unsimulated(
                    "a nearest query other than a dense or sparse vector",
                ));
            }
        };
        let points = collection
            .shard
            .search(SearchRequest {
                query: QueryEnum::Nearest(NamedQuery {
                    query: vector,
                    using: request.using,
                }),
                filter: request.filter.as_ref().map(filter_from_grpc).transpose()?,
                params: None,
                limit: request.limit.unwrap_or(10) as usize,
                offset: request.offset.unwrap_or(0) as usize,
                with_payload: Some(with_payload(request.with_payload)?),
                with_vector: Some(with_vector(request.with_vectors)),
                score_threshold: request.score_threshold,
            })
            .map_err(engine_error)?;
        Ok(Response::new(qdrant::QueryResponse {
            result: points
                .into_iter()
                .map(|point| qdrant::ScoredPoint {
                    id: Some(id_to_grpc(point.id)),
                    payload: payload_to_grpc(point.payload),
                    score: point.score,
                    version: point.version,
                    vectors: point.vector.map(vectors_to_grpc),
                    ..Default::default()
                })
                .collect(),
            time: 0.0,
            usage: None,
        }))
    }

    unsimulated! {
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        set_payload(SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search(SearchPoints) -> SearchResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query_batch(QueryBatchPoints) -> QueryBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        facet(FacetCounts) -> FacetResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}

fn id_from_grpc(id: qdrant::PointId) -> Result<PointId, Status> {
    use qdrant::point_id::PointIdOptions;
    match id.point_id_options {
        Some(PointIdOptions::Num(number)) => Ok(PointId::NumId(number)),
        Some(PointIdOptions::Uuid(text)) => Uuid::parse_str(&text)
            .map(PointId::Uuid)
            .map_err(|error| Status::invalid_argument(format!("bad point id {text:?}: {error}"))),
        None => Err(Status::invalid_argument("a point id without a value")),
    }
}

fn id_to_grpc(id: PointId) -> qdrant::PointId {
    match id {
        PointId::NumId(number) => qdrant::PointId::from(number),
        PointId::Uuid(uuid) => qdrant::PointId::from(uuid.to_string()),
    }
}

fn id_json(id: &qdrant::PointId) -> Result<Json, Status> {
    use qdrant::point_id::PointIdOptions;
    match &id.point_id_options {
        Some(PointIdOptions::Num(number)) => Ok(json!(number)),
        Some(PointIdOptions::Uuid(text)) => Ok(json!(text)),
        None => Err(Status::invalid_argument("a point id without a value")),
    }
}

fn payload_from_grpc(payload: HashMap<String, qdrant::Value>) -> Payload {
    Payload(
        payload
            .into_iter()
            .map(|(key, value)| (key, value.into_json()))
            .collect(),
    )
}

fn payload_to_grpc(payload: Option<Payload>) -> HashMap<String, qdrant::Value> {
    payload
        .map(|payload| {
            payload
                .0
                .into_iter()
                .map(|(key, value)| (key, qdrant::Value::from(value)))
                .collect()
        })
        .unwrap_or_default()
}

/// A point's vector as sent: the current `vector` field, or the fields deprecated in 1.16.
fn vector_from_grpc(vector: qdrant::Vector) -> Result<VectorInternal, Status> {
    #[allow(deprecated)]
    let qdrant::Vector {
        data,
        indices,
        vector,
        ..
    } = vector;
    match vector {
        Some(vector::Vector::Dense(dense)) => Ok(VectorInternal::Dense(dense.data)),
        Some(vector::Vector::Sparse(sparse)) => Ok(VectorInternal::Sparse(SparseVector {
            indices: sparse.indices,
            values: sparse.values,
        })),
        Some(_) => Err(unsimulated("multi-dense and inference vectors")),
        None => match indices {
            Some(indices) => Ok(VectorInternal::Sparse(SparseVector {
                indices: indices.data,
                values: data,
            })),
            None => Ok(VectorInternal::Dense(data)),
        },
    }
}

fn point_from_grpc(point: qdrant::PointStruct) -> Result<PointStructPersisted, Status> {
    let id = id_from_grpc(
        point
            .id
            .ok_or_else(|| Status::invalid_argument("a point without id"))?,
    )?;
    let named = match point.vectors.and_then(|v| v.vectors_options) {
        Some(vectors::VectorsOptions::Vectors(named)) => named
            .vectors
            .into_iter()
            .map(|(name, vector)| Ok((name, vector_from_grpc(vector)?)))
            .collect::<Result<HashMap<_, _>, Status>>()?,
        Some(vectors::VectorsOptions::Vector(_)) => {
            return Err(unsimulated("a point with an unnamed vector"));
        }
        None => HashMap::new(),
    };
    Ok(PointStructPersisted {
        id,
        vector: VectorStructPersisted::from(VectorStructInternal::Named(named)),
        payload: Some(payload_from_grpc(point.payload)),
    })
}

fn vectors_to_grpc(vector: VectorStructInternal) -> VectorsOutput {
    let output = |vector: VectorInternal| VectorOutput {
        vector: match vector {
            VectorInternal::Dense(data) => Some(vector_output::Vector::Dense(DenseVector { data })),
            VectorInternal::Sparse(sparse) => {
                Some(vector_output::Vector::Sparse(qdrant::SparseVector {
                    values: sparse.values,
                    indices: sparse.indices,
                }))
            }
            VectorInternal::MultiDense(_) => None,
        },
        ..Default::default()
    };
    VectorsOutput {
        vectors_options: Some(match vector {
            VectorStructInternal::Named(named) => {
                vectors_output::VectorsOptions::Vectors(qdrant::NamedVectorsOutput {
                    vectors: named
                        .into_iter()
                        .map(|(name, vector)| (name, output(vector)))
                        .collect(),
                })
            }
            VectorStructInternal::Single(data) => {
                vectors_output::VectorsOptions::Vector(output(VectorInternal::Dense(data)))
            }
            VectorStructInternal::MultiDense(_) => {
                vectors_output::VectorsOptions::Vector(VectorOutput::default())
            }
        }),
    }
}

fn retrieved(record: qdrant_edge::Record) -> qdrant::RetrievedPoint {
    qdrant::RetrievedPoint {
        id: Some(id_to_grpc(record.id)),
        payload: payload_to_grpc(record.payload),
        vectors: record.vector.map(vectors_to_grpc),
        ..Default::default()
    }
}

fn with_payload(
    selector: Option<qdrant::WithPayloadSelector>,
) -> Result<WithPayloadInterface, Status> {
    match selector.and_then(|s| s.selector_options) {
        Some(with_payload_selector::SelectorOptions::Enable(enable)) => {
            Ok(WithPayloadInterface::Bool(enable))
        }
        None => Ok(WithPayloadInterface::Bool(false)),
        Some(_) => Err(unsimulated("payload field selectors")),
    }
}

fn with_vector(selector: Option<qdrant::WithVectorsSelector>) -> WithVector {
    match selector.and_then(|s| s.selector_options) {
        Some(with_vectors_selector::SelectorOptions::Enable(enable)) => WithVector::Bool(enable),
        Some(with_vectors_selector::SelectorOptions::Include(names)) => {
            WithVector::Selector(names.names)
        }
        None => WithVector::Bool(false),
    }
}

/// A gRPC filter in the engine's own types, through the REST shape they deserialize from. An
/// empty clause is left out: gRPC cannot tell it from a missing one.
fn filter_from_grpc(filter: &qdrant::Filter) -> Result<Filter, Status> {
    let spec = filter_json(filter)?;
    serde_json::from_value(spec.clone())
        .map_err(|error| Status::invalid_argument(format!("bad filter {spec}: {error}")))
}

fn filter_json(filter: &qdrant::Filter) -> Result<Json, Status> {
    let mut spec = serde_json::Map::new();
    for (clause, conditions) in [
        ("must", &filter.must),
        ("should", &filter.should),
        ("must_not", &filter.must_not),
    ] {
        if !conditions.is_empty() {
            let conditions = conditions
                .iter()
                .map(condition_json)
                .collect::<Result<Vec<_>, _>>()?;
            spec.insert(clause.to_owned(), Json::Array(conditions));
        }
    }
    if let Some(min_should) = &filter.min_should {
        let conditions = min_should
            .conditions
            .iter()
            .map(condition_json)
            .collect::<Result<Vec<_>, _>>()?;
        spec.insert(
            "min_should".to_owned(),
            json!({ "conditions": conditions, "min_count": min_should.min_count }),
        );
    }
    Ok(Json::Object(spec))
}

fn condition_json(condition: &qdrant::Condition) -> Result<Json, Status> {
    match &condition.condition_one_of {
        Some(condition::ConditionOneOf::Field(field)) => field_json(field),
        Some(condition::ConditionOneOf::HasId(has_id)) => {
            let ids = has_id
                .has_id
                .iter()
                .map(id_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "has_id": ids }))
        }
        Some(condition::ConditionOneOf::Filter(filter)) => filter_json(filter),
        Some(condition::ConditionOneOf::IsEmpty(is_empty)) => {
            Ok(json!({ "is_empty": { "key": is_empty.key } }))
        }
        Some(condition::ConditionOneOf::IsNull(is_null)) => {
            Ok(json!({ "is_null": { "key": is_null.key } }))
        }
        Some(condition::ConditionOneOf::HasVector(has_vector)) => {
            Ok(json!({ "has_vector": has_vector.has_vector }))
        }
        Some(_) => Err(unsimulated("nested and slice conditions")),
        None => Err(Status::invalid_argument("a condition without a kind")),
    }
}

fn field_json(field: &qdrant::FieldCondition) -> Result<Json, Status> {
    let unsupported = field.geo_bounding_box.is_some()
        || field.geo_radius.is_some()
        || field.geo_polygon.is_some()
        || field.values_count.is_some()
        || field.datetime_range.is_some()
        || field.is_empty.is_some()
        || field.is_null.is_some();
    if unsupported {
        return Err(unsimulated(
            "geo, values-count, datetime, is-empty and is-null field conditions",
        ));
    }
    let mut spec = serde_json::Map::new();
    spec.insert("key".to_owned(), json!(field.key));
    if let Some(matching) = &field.r#match {
        use r#match::MatchValue;
        let matching = match &matching.match_value {
            Some(MatchValue::Keyword(value)) => json!({ "value": value }),
            Some(MatchValue::Integer(value)) => json!({ "value": value }),
            Some(MatchValue::Boolean(value)) => json!({ "value": value }),
            Some(MatchValue::Text(text)) => json!({ "text": text }),
            Some(MatchValue::Keywords(values)) => json!({ "any": values.strings }),
            Some(MatchValue::Integers(values)) => json!({ "any": values.integers }),
            Some(MatchValue::ExceptKeywords(values)) => json!({ "except": values.strings }),
            Some(MatchValue::ExceptIntegers(values)) => json!({ "except": values.integers }),
            Some(MatchValue::Phrase(text)) => json!({ "phrase": text }),
            Some(MatchValue::TextAny(text)) => json!({ "text_any": text }),
            Some(_) => return Err(unsimulated("prefix and substring matches")),
            None => return Err(Status::invalid_argument("a match without a value")),
        };
        spec.insert("match".to_owned(), matching);
    }
    if let Some(range) = &field.range {
        let mut bounds = serde_json::Map::new();
        for (name, bound) in [
            ("lt", range.lt),
            ("gt", range.gt),
            ("gte", range.gte),
            ("lte", range.lte),
        ] {
            if let Some(bound) = bound {
                bounds.insert(name.to_owned(), json!(bound));
            }
        }
        spec.insert("range".to_owned(), Json::Object(bounds));
    }
    if spec.len() == 1 {
        return Err(Status::invalid_argument(format!(
            "the condition on {} has neither a match nor a range",
            field.key
        )));
    }
    Ok(Json::Object(spec))
}

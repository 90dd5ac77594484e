//! The request path: a tower stack of named layers, assembled in [`build_service`].
//!
//! ```text
//! Respond            ProxyError → OpenAI error body; request metrics
//!  └ Route           method + path → endpoint (404 / 405)
//!   └ Authenticate   the current snapshot (503 before the first), one per request;
//!                    gateway key → key entry (401); passthrough provider key
//!     └ Router ─ GET /v1/models → models list
//!              └ POST /v1/chat/completions:
//!                 ResolveModel (body ≤ limit, model → targets) → Policy (hook) → Provider
//!              └ POST /v1/completions, POST /v1/embeddings: the same ResolveModel → Policy,
//!                 then their own provider service (`completions.rs`, `embeddings.rs`)
//! ```
//!
//! Provider services try the request's targets with retries and fallbacks
//! (`adapter::attempt_targets`, the rule is in `adapter`) and name the target that answered
//! in the `x-tollgate-target` response header.

mod adapter;
mod anthropic;
mod auth;
mod bedrock;
mod completions;
mod embeddings;
mod google;
mod json_scan;
mod judge;
mod openai;
mod policy;
mod request_body;
mod resolve;
mod respond;
mod route;
mod scrub;
mod sse;
mod stream;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tower::ServiceBuilder;

use crate::body::RespBody;
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::snapshot::{KeyEntry, RepositoryView, SnapshotCell, Target, Targets};
use crate::usage::Recorder;

pub use auth::AuthenticateLayer;
pub use judge::{Completion, complete, instruction_body, json_object};
pub use policy::PolicyLayer;
pub use request_body::{ChatFields, parse_chat, rewrite};
pub use resolve::ResolveModelLayer;
pub use respond::RespondLayer;
pub use route::RouteLayer;
pub use scrub::scrub;
pub use upstream::{
    Egress, HttpsClient, build_client, collect_answer, unknown_issuer, upstream_tls,
};
#[doc(hidden)] // For `benches/`: hot-path pieces measured in isolation.
pub use {auth::authenticate, sse::OpenAiUsageTap, stream::StreamProcessor};

/// Every response of the stack.
pub type HttpResponse = http::Response<RespBody>;

/// What the request path shares: read-only config and sinks, no lock on config. Each
/// worker thread has its own copy with its own `client` pool and `recorder` shard; the rest
/// is shared.
#[derive(Debug, Clone)]
pub struct Shared {
    pub snapshots: Arc<SnapshotCell>,
    pub client: HttpsClient,
    /// The process's AWS identity, for AWS connections that store no credentials.
    pub aws: Arc<crate::aws_identity::AwsIdentity>,
    /// This worker's shard of usage and metrics.
    pub recorder: Arc<Recorder>,
    pub max_body_bytes: usize,
    /// Longest time to read a request body.
    pub body_read_timeout: Duration,
    /// Longest wait for a provider's response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence from a provider once its answer has started.
    pub idle_timeout: Duration,
    /// First wait before retrying a target already tried (doubles per retry).
    pub retry_backoff: Duration,
}

/// The authenticated caller, as a request extension.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Arc<KeyEntry>,
    pub repository: Option<Arc<RepositoryView>>,
    /// The app's own provider key (passthrough connections); forwarded, never stored.
    pub provider_key: Option<Secret>,
}

/// A routed chat completion, between ResolveModel and the provider adapter. It keeps only
/// the request headers forwarded upstream (never `Authorization`), and its `Debug` shows
/// neither the body nor any credential.
pub struct ChatCall {
    /// The app's `Accept` header, forwarded to OpenAI-format providers.
    pub accept: Option<http::HeaderValue>,
    pub body: Bytes,
    pub fields: ChatFields,
    /// Candidates in the order they are tried, and the retry budget.
    pub targets: Targets,
    pub caller: Caller,
}

impl std::fmt::Debug for ChatCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCall")
            .field("model", &self.fields.model)
            .field("stream", &self.fields.stream)
            .field("body_len", &self.body.len())
            .field(
                "targets",
                &self
                    .targets
                    .iter()
                    .map(|t| &*t.connection.id)
                    .collect::<Vec<_>>(),
            )
            .field("key_id", &self.caller.key.id)
            .field("provider_key", &self.caller.provider_key.is_some())
            .finish_non_exhaustive()
    }
}

impl ChatCall {
    /// The credentials that must not come back to the app in provider text: the
    /// connection's secret and extra key, and the caller's own provider key.
    pub(crate) fn secrets<'a>(&'a self, target: &'a Target) -> [Option<&'a Secret>; 3] {
        [
            Some(&target.connection.secret),
            target.connection.key.as_ref(),
            self.caller.provider_key.as_ref(),
        ]
    }
}

/// The future of a layer that either refuses a request at once or hands it on unchanged:
/// no allocation, unlike a boxed future.
pub type PassOn<S, R> = futures::future::Either<
    futures::future::Ready<Result<HttpResponse, ProxyError>>,
    tower::util::Oneshot<S, R>,
>;

/// Refuses with `e` (see [`PassOn`]).
fn refuse<S, R>(e: ProxyError) -> PassOn<S, R>
where
    S: tower::Service<R>,
{
    futures::future::Either::Left(futures::future::ready(Err(e)))
}

/// Hands `req` to a clone of `inner` (see [`PassOn`]).
fn pass_on<S, R>(inner: &S, req: R) -> PassOn<S, R>
where
    S: tower::Service<R> + Clone,
{
    futures::future::Either::Right(tower::util::Oneshot::new(inner.clone(), req))
}

/// What `ResolveModel` hands a routed call to: `Policy`, then the endpoint's provider service.
pub type ChatService = policy::PolicyService<route::Provider>;

/// The whole request path (see the module docs), ready for `TowerToHyperService`.
/// Concrete, not boxed: hyper clones the service for every request, and cloning this one
/// only bumps reference counts.
pub type ProxyService =
    respond::RespondService<route::RouteService<auth::AuthenticateService<route::Router>>>;

/// Assembles [`ProxyService`] over `shared`.
pub fn build_service(shared: Arc<Shared>) -> ProxyService {
    let router = route::Router::new(&shared);
    ServiceBuilder::new()
        .layer(RespondLayer::new(shared.recorder.clone()))
        .layer(RouteLayer)
        .layer(AuthenticateLayer::new(shared.snapshots.clone()))
        .service(router)
}

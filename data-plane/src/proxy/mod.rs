//! The request path: a tower stack of named layers, assembled in [`build_service`].
//!
//! ```text
//! Respond            ProxyError → OpenAI error body; request metrics
//!  └ LoadSnapshot    one consistent config version per request (503 before the first)
//!   └ Route          method + path → endpoint (404 / 405)
//!    └ Authenticate  gateway key → key entry (401); passthrough provider key
//!     └ Router ─ GET /v1/models → models list
//!              └ POST /v1/chat/completions:
//!                 ResolveModel (body ≤ limit, model → targets) → Policy (hook) → Provider
//! ```

mod adapter;
mod anthropic;
mod auth;
mod google;
mod openai;
mod policy;
mod request_body;
mod resolve;
mod respond;
mod route;
mod snapshot_layer;
mod sse;
mod stream;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::body::RespBody;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::snapshot::{KeyEntry, RepositoryView, SnapshotCell, Target};
use crate::usage::Aggregator;

pub use auth::AuthenticateLayer;
pub use policy::PolicyLayer;
pub use request_body::{ChatFields, parse_chat, rewrite};
pub use resolve::ResolveModelLayer;
pub use respond::RespondLayer;
pub use route::RouteLayer;
pub use snapshot_layer::LoadSnapshotLayer;
pub use upstream::{HttpsClient, build_client};

/// Every response of the stack.
pub type HttpResponse = http::Response<RespBody>;

/// What the request path shares: read-only config and sinks, no lock on config.
#[derive(Debug)]
pub struct Shared {
    pub snapshots: Arc<SnapshotCell>,
    pub client: HttpsClient,
    pub aggregator: Arc<Aggregator>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub idle_timeout: Duration,
}

/// The authenticated caller, as a request extension.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Arc<KeyEntry>,
    pub repository: Option<Arc<RepositoryView>>,
    /// The app's own provider key (passthrough connections); forwarded, never stored.
    pub provider_key: Option<Secret>,
}

/// A routed chat completion, between ResolveModel and the provider adapter.
#[derive(Debug)]
pub struct ChatCall {
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub fields: ChatFields,
    /// Candidates, best first.
    pub targets: Vec<Target>,
    pub caller: Caller,
}

/// The boxed inner chat service.
pub type ChatService = BoxCloneSyncService<ChatCall, HttpResponse, ProxyError>;

/// The whole request path, ready for `TowerToHyperService`.
pub fn build_service(
    shared: Arc<Shared>,
) -> BoxCloneSyncService<http::Request<hyper::body::Incoming>, HttpResponse, std::convert::Infallible>
{
    let chat: ChatService = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(PolicyLayer)
            .service(adapter::ProviderService::new(shared.clone())),
    );
    let router = route::Router::new(chat, shared.max_body_bytes);
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(RespondLayer::new(shared.metrics.clone()))
            .layer(LoadSnapshotLayer::new(shared.snapshots.clone()))
            .layer(RouteLayer)
            .layer(AuthenticateLayer)
            .service(router),
    )
}

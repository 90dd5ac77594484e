//! `Route`: method and path → endpoint (404 unknown route, 405 wrong method), and the
//! `Router` at the bottom of the outer stack that sends each endpoint to its handler.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use http_body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use super::completions::CompletionsService;
use super::embeddings::EmbeddingsService;
use super::policy::PolicyLayer;
use super::resolve::{ResolveModelLayer, ResolveModelService};
use super::{Caller, ChatCall, ChatService, HttpResponse, Shared};
use crate::body::{BoxError, json_response};
use crate::error::ProxyError;

/// The endpoints served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    /// Legacy completions (OPENAI / OTHER connections only).
    Completions,
    Embeddings,
    Models,
}

fn classify(method: &http::Method, path: &str) -> Result<Endpoint, ProxyError> {
    let path_trimmed = path.strip_suffix('/').unwrap_or(path);
    let (endpoint, allowed) = match path_trimmed {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, http::Method::POST),
        "/v1/completions" => (Endpoint::Completions, http::Method::POST),
        "/v1/embeddings" => (Endpoint::Embeddings, http::Method::POST),
        "/v1/models" => (Endpoint::Models, http::Method::GET),
        _ => {
            return Err(ProxyError::UnknownRoute {
                method: method.to_string(),
                path: path.to_owned(),
            });
        }
    };
    if *method != allowed {
        return Err(ProxyError::MethodNotAllowed {
            method: method.to_string(),
            path: path_trimmed.to_owned(),
        });
    }
    Ok(endpoint)
}

/// Layer of [`RouteService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteLayer;

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RouteService { inner }
    }
}

/// See [`RouteLayer`].
#[derive(Debug, Clone)]
pub struct RouteService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for RouteService<S>
where
    S: Service<http::Request<B>, Response = HttpResponse, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = super::PassOn<S, http::Request<B>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match classify(req.method(), req.uri().path()) {
            Err(e) => super::refuse(e),
            Ok(endpoint) => {
                req.extensions_mut().insert(endpoint);
                super::pass_on(&self.inner, req)
            }
        }
    }
}

/// Sends each endpoint to its handler. Chat completions, completions and embeddings all go
/// through `ResolveModel` (body limit, model resolution) and `Policy`, then their own
/// provider service.
/// Cloned by every layer above it for every request, so its boxed handlers sit behind one
/// `Arc`: a request clones (allocates) only the handler it uses.
#[derive(Clone)]
pub struct Router {
    handlers: Arc<Handlers>,
}

struct Handlers {
    chat: ResolveModelService<ChatService>,
    completions: ResolveModelService<ChatService>,
    embeddings: ResolveModelService<ChatService>,
}

impl Router {
    /// `chat` handles routed chat completions; completions and embeddings call providers
    /// with `shared`'s client; bodies are read up to `shared.max_body_bytes`.
    pub fn new(chat: ChatService, shared: &Arc<Shared>) -> Self {
        let resolve = ResolveModelLayer::new(shared.max_body_bytes);
        Self {
            handlers: Arc::new(Handlers {
                chat: resolve.layer(chat),
                completions: resolve.layer(with_policy(CompletionsService::new(shared.clone()))),
                embeddings: resolve.layer(with_policy(EmbeddingsService::new(shared.clone()))),
            }),
        }
    }
}

/// `Policy → svc`, boxed.
fn with_policy<S>(svc: S) -> ChatService
where
    S: Service<ChatCall, Response = HttpResponse, Error = ProxyError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(ServiceBuilder::new().layer(PolicyLayer).service(svc))
}

impl<B> Service<http::Request<B>> for Router
where
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.extensions().get::<Endpoint>() {
            Some(Endpoint::Models) => {
                // Rendered once per snapshot; a key whose repository is gone sees none.
                let body = req
                    .extensions()
                    .get::<Caller>()
                    .and_then(|c| c.repository.as_ref())
                    .map(|r| r.models_body.clone())
                    .unwrap_or_else(|| {
                        bytes::Bytes::from_static(br#"{"object":"list","data":[]}"#)
                    });
                futures::future::ready(Ok(json_response(http::StatusCode::OK, body))).boxed()
            }
            Some(Endpoint::Completions) => self.handlers.completions.clone().oneshot(req).boxed(),
            Some(Endpoint::Embeddings) => self.handlers.embeddings.clone().oneshot(req).boxed(),
            Some(Endpoint::ChatCompletions) | None => {
                self.handlers.chat.clone().oneshot(req).boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, expected: &str) {
        let m = http::Method::from_bytes(method.as_bytes()).expect("method");
        let got = match classify(&m, path) {
            Ok(e) => format!("{e:?}"),
            Err(e) => e.status().as_u16().to_string(),
        };
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn routes() {
        check("POST", "/v1/chat/completions", "ChatCompletions");
        check("POST", "/v1/chat/completions/", "ChatCompletions");
        check("GET", "/v1/models", "Models");
        check("GET", "/v1/chat/completions", "405");
        check("POST", "/v1/models", "405");
        check("GET", "/", "404");
        check("POST", "/v1/embeddings", "Embeddings");
        check("POST", "/v1/embeddings/", "Embeddings");
        check("POST", "/v1/completions", "Completions");
        check("GET", "/v1/embeddings", "405");
        check("GET", "/v1/completions", "405");
        check("POST", "/v1/embedding", "404");
        check("POST", "/v2/embeddings", "404");
    }
}

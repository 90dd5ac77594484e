//! `Route`: method and path → endpoint (404 unknown route, 405 wrong method), and the
//! `Router` at the bottom of the outer stack that sends each endpoint to its handler.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either, Ready, ready};
use http_body::Body;
use tower::{Layer, Service};

use super::adapter::ProviderService;
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
    /// `GET /v1/models/{model}`: one entry of the list.
    Model,
}

fn classify(method: &http::Method, path: &str) -> Result<Endpoint, ProxyError> {
    let path_trimmed = path.strip_suffix('/').unwrap_or(path);
    let (endpoint, allowed) = match path_trimmed {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, http::Method::POST),
        "/v1/completions" => (Endpoint::Completions, http::Method::POST),
        "/v1/embeddings" => (Endpoint::Embeddings, http::Method::POST),
        "/v1/models" => (Endpoint::Models, http::Method::GET),
        p if p.starts_with("/v1/models/") => (Endpoint::Model, http::Method::GET),
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // Only checked here (before authentication); the router classifies again, which
        // costs less than carrying the endpoint as a request extension.
        match classify(req.method(), req.uri().path()) {
            Err(e) => super::refuse(e),
            Ok(_) => super::pass_on(&self.inner, req),
        }
    }
}

/// Sends each endpoint to its handler. Chat completions, completions and embeddings all go
/// through `ResolveModel` (body limit, model resolution) and `Policy`, then their own
/// provider service.
/// Cloned by every layer above it for every request, so its handlers sit behind one `Arc`;
/// a handler is called in place, not cloned.
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
    /// Providers are called with `shared`'s client; bodies are read up to
    /// `shared.max_body_bytes` within `shared.body_read_timeout`.
    pub fn new(shared: &Arc<Shared>) -> Self {
        let resolve = ResolveModelLayer::new(shared.max_body_bytes, shared.body_read_timeout);
        let handler = |provider| resolve.layer(PolicyLayer.layer(provider));
        Self {
            handlers: Arc::new(Handlers {
                chat: handler(Provider::Chat(ProviderService::new(shared.clone()))),
                completions: handler(Provider::Completions(CompletionsService::new(
                    shared.clone(),
                ))),
                embeddings: handler(Provider::Embeddings(EmbeddingsService::new(shared.clone()))),
            }),
        }
    }
}

/// The provider service of each endpoint. One concrete type, so the path to it has no
/// boxed service (each of these already returns one boxed future).
#[derive(Debug, Clone)]
pub enum Provider {
    Chat(ProviderService),
    Completions(CompletionsService),
    Embeddings(EmbeddingsService),
}

impl Provider {
    /// The worker's shared state (its recorder, for the policy layer).
    pub fn shared(&self) -> &Arc<Shared> {
        match self {
            Provider::Chat(s) => s.shared(),
            Provider::Completions(s) => s.shared(),
            Provider::Embeddings(s) => s.shared(),
        }
    }
}

impl Service<ChatCall> for Provider {
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ChatCall) -> Self::Future {
        match self {
            Provider::Chat(s) => s.call(call),
            Provider::Completions(s) => s.call(call),
            Provider::Embeddings(s) => s.call(call),
        }
    }
}

impl<B> Service<http::Request<B>> for Router
where
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = Either<
        Ready<Result<HttpResponse, ProxyError>>,
        BoxFuture<'static, Result<HttpResponse, ProxyError>>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let handler = match classify(req.method(), req.uri().path()) {
            Err(e) => return Either::Left(ready(Err(e))),
            Ok(Endpoint::Models) => {
                // Rendered once per snapshot; a key whose repository is gone sees none.
                let body = req
                    .extensions()
                    .get::<Caller>()
                    .and_then(|c| c.repository.as_ref())
                    .map(|r| r.models_body.clone())
                    .unwrap_or_else(|| {
                        bytes::Bytes::from_static(br#"{"object":"list","data":[]}"#)
                    });
                return Either::Left(ready(Ok(json_response(http::StatusCode::OK, body))));
            }
            Ok(Endpoint::Model) => return Either::Left(ready(one_model(&req))),
            Ok(Endpoint::Completions) => &self.handlers.completions,
            Ok(Endpoint::Embeddings) => &self.handlers.embeddings,
            Ok(Endpoint::ChatCompletions) => &self.handlers.chat,
        };
        Either::Right(handler.handle(req))
    }
}

/// `GET /v1/models/{model}`: the entry of the caller's `/v1/models` list with that id, else
/// 404. A qualified name's `/` may come as it is or percent-encoded, as clients differ.
fn one_model<B>(req: &http::Request<B>) -> Result<HttpResponse, ProxyError> {
    let raw = req.uri().path().strip_prefix("/v1/models/").unwrap_or("");
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    let id = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let listed = req
        .extensions()
        .get::<Caller>()
        .and_then(|c| c.repository.as_ref())
        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.models_body).ok());
    let entry = listed.as_ref().and_then(|list| {
        list["data"]
            .as_array()?
            .iter()
            .find(|m| m["id"].as_str() == Some(id.as_ref()))
    });
    match entry {
        Some(m) => Ok(json_response(http::StatusCode::OK, m.to_string())),
        None => Err(ProxyError::UnknownModel(id.into_owned())),
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
        check("GET", "/v1/models/oa/gpt-4o", "Model");
        check("GET", "/v1/models/gpt-4o/", "Model");
        check("DELETE", "/v1/models/gpt-4o", "405");
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

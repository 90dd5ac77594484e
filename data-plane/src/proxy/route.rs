//! `Route`: method and path → endpoint (404 unknown route, 405 wrong method), and the
//! `Router` at the bottom of the outer stack that sends each endpoint to its handler.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use http_body::Body;
use tower::{Layer, Service, ServiceExt};

use super::resolve::ResolveModelLayer;
use super::{Caller, ChatService, HttpResponse};
use crate::body::{BoxError, json_response};
use crate::error::ProxyError;

/// The endpoints served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Models,
}

fn classify(method: &http::Method, path: &str) -> Result<Endpoint, ProxyError> {
    let path_trimmed = path.strip_suffix('/').unwrap_or(path);
    let (endpoint, allowed) = match path_trimmed {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, http::Method::POST),
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
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match classify(req.method(), req.uri().path()) {
            Err(e) => futures::future::ready(Err(e)).boxed(),
            Ok(endpoint) => {
                req.extensions_mut().insert(endpoint);
                self.inner.clone().oneshot(req).boxed()
            }
        }
    }
}

/// Sends each endpoint to its handler.
#[derive(Clone)]
pub struct Router {
    chat: super::resolve::ResolveModelService<ChatService>,
}

impl Router {
    /// `chat` handles routed chat completions; bodies are read up to `max_body_bytes`.
    pub fn new(chat: ChatService, max_body_bytes: usize) -> Self {
        Self {
            chat: ResolveModelLayer::new(max_body_bytes).layer(chat),
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
            _ => self.chat.clone().oneshot(req).boxed(),
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
        check("POST", "/v1/embeddings", "404");
    }
}

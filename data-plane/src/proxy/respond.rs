//! `Respond`: the outermost layer. Turns every `ProxyError` into its HTTP status and OpenAI
//! error body (mapping in `crate::error`), and records request metrics.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

use super::HttpResponse;
use crate::error::ProxyError;
use crate::usage::Recorder;

/// Where inner layers put the routed model name, for the metrics label (set once).
#[derive(Debug, Clone, Default)]
pub struct ModelLabel(pub Arc<OnceLock<String>>);

/// Layer of [`RespondService`].
#[derive(Debug, Clone)]
pub struct RespondLayer {
    recorder: Arc<Recorder>,
}

impl RespondLayer {
    /// Records into `recorder` (the worker's metrics shard).
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self { recorder }
    }
}

impl<S> Layer<S> for RespondLayer {
    type Service = RespondService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RespondService {
            inner,
            recorder: self.recorder.clone(),
        }
    }
}

/// See [`RespondLayer`].
#[derive(Debug, Clone)]
pub struct RespondService<S> {
    inner: S,
    recorder: Arc<Recorder>,
}

impl<S, B> Service<http::Request<B>> for RespondService<S>
where
    S: Service<http::Request<B>, Response = HttpResponse, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let label = ModelLabel::default();
        req.extensions_mut().insert(label.clone());
        let inner = self.inner.clone();
        let recorder = self.recorder.clone();
        Box::pin(async move {
            let resp = match inner.oneshot(req).await {
                Ok(resp) => resp,
                Err(err) => {
                    if err.status().is_server_error() {
                        tracing::warn!(error = %err, "request failed");
                    } else {
                        tracing::debug!(error = %err, "request refused");
                    }
                    err.into_response()
                }
            };
            let model = label.0.get().map(String::as_str).unwrap_or("");
            recorder.request(
                resp.status().as_u16(),
                model,
                started.elapsed().as_secs_f64(),
            );
            Ok(resp)
        })
    }
}

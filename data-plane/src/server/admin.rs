//! The admin port: `/healthz` (alive), `/readyz` (holds a snapshot and is not draining),
//! `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::future::{Ready, ready};
use hyper::body::Incoming;

use crate::body::{RespBody, full};
use crate::metrics::Metrics;
use crate::snapshot::SnapshotCell;

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    pub snapshots: Arc<SnapshotCell>,
    pub metrics: Arc<Metrics>,
    /// Set once shutdown has begun: load balancers must stop sending new requests while
    /// the open ones drain.
    pub draining: Arc<AtomicBool>,
}

impl tower::Service<http::Request<Incoming>> for AdminService {
    type Response = http::Response<RespBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        ready(Ok(self.respond(req.method(), req.uri().path())))
    }
}

impl AdminService {
    fn respond(&self, method: &http::Method, path: &str) -> http::Response<RespBody> {
        use http::StatusCode;
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
                "text/plain",
            );
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n".into(), "text/plain"),
            "/readyz" if self.draining.load(Ordering::Relaxed) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shutting down, draining open requests\n".into(),
                "text/plain",
            ),
            "/readyz" => match self.snapshots.load().as_ref() {
                Some(s) => text(
                    StatusCode::OK,
                    format!("ready: config version {}\n", s.version),
                    "text/plain",
                ),
                None => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: no config from the control plane yet\n".into(),
                    "text/plain",
                ),
            },
            "/metrics" => {
                let snap = self
                    .snapshots
                    .load()
                    .as_ref()
                    .map(|s| (s.version, s.built_at));
                text(
                    StatusCode::OK,
                    self.metrics.encode(snap),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into(), "text/plain"),
        }
    }
}

fn text(
    status: http::StatusCode,
    body: String,
    content_type: &'static str,
) -> http::Response<RespBody> {
    let mut resp = http::Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

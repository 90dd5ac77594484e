//! `LoadSnapshot`: loads the current snapshot once per request (a lock-free `ArcSwap` load),
//! so every later layer sees the same config version. 503 before the first snapshot.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::HttpResponse;
use crate::error::ProxyError;
use crate::snapshot::SnapshotCell;

/// Layer of [`LoadSnapshotService`].
#[derive(Debug, Clone)]
pub struct LoadSnapshotLayer {
    cell: Arc<SnapshotCell>,
}

impl LoadSnapshotLayer {
    /// Reads snapshots from `cell`.
    pub fn new(cell: Arc<SnapshotCell>) -> Self {
        Self { cell }
    }
}

impl<S> Layer<S> for LoadSnapshotLayer {
    type Service = LoadSnapshotService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LoadSnapshotService {
            inner,
            cell: self.cell.clone(),
        }
    }
}

/// See [`LoadSnapshotLayer`].
#[derive(Debug, Clone)]
pub struct LoadSnapshotService<S> {
    inner: S,
    cell: Arc<SnapshotCell>,
}

impl<S, B> Service<http::Request<B>> for LoadSnapshotService<S>
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
        match self.cell.load_full() {
            None => super::refuse(ProxyError::NoSnapshot),
            Some(snapshot) => {
                req.extensions_mut().insert(snapshot);
                super::pass_on(&self.inner, req)
            }
        }
    }
}

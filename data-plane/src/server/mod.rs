//! The listeners: accept loop with hyper-util's auto builder (HTTP/1.1 and HTTP/2, on
//! cleartext or TLS), graceful shutdown, and the admin port.
//!
//! Slow or idle clients are bounded: an HTTP/1 request head must arrive within
//! [`Limits::header_read_timeout`], HTTP/2 connections are pinged and closed when the peer
//! stops answering, and at most [`Limits::max_connections`] connections are served at once.
//! Beyond the cap, new connections are not accepted: they wait in the kernel's listen
//! backlog until a connection closes (and are refused by the kernel once it is full).
//!
//! Accepted connections run on [`Worker`]s: the gateway gives each of its worker threads
//! (see [`workers`]) its own service, the admin port runs on the current runtime.

pub mod admin;
pub mod tls;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::body::RespBody;

/// How long in-flight requests (streams included) may run after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// A client that does not finish its TLS handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive: a PING after this much silence...
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// ...must be answered within this, or the connection is closed.
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds on what clients may hold open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed to send a complete HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

fn builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    builder
}

/// A service and the runtime its connections run on.
#[derive(Debug, Clone)]
pub struct Worker<S> {
    pub handle: Handle,
    pub service: S,
}

impl<S> Worker<S> {
    /// `service` on the runtime of the caller.
    pub fn current(service: S) -> Self {
        Self {
            handle: Handle::current(),
            service,
        }
    }
}

/// Serves `listener` within `limits` until `shutdown`, handing connections to `workers` in
/// turn (at least one), then drains open connections.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    workers: Vec<Worker<S>>,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<
            http::Request<Incoming>,
            Response = http::Response<RespBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    // One per worker: a connection polls its watcher every time it runs, and the watcher
    // takes its channel's lock; shared, that lock's cache line moved between the workers'
    // CPUs several times per request.
    let graceful: Vec<GracefulShutdown> = workers.iter().map(|_| GracefulShutdown::new()).collect();
    let builder = builder(limits);
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    assert!(!workers.is_empty(), "serve needs at least one worker");
    let mut next = 0usize;
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections stay in the backlog, not in memory.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let i = next % workers.len();
        let worker = &workers[i];
        next = next.wrapping_add(1);
        // Re-registered on the worker's own reactor, so its readiness events wake that
        // worker directly.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "could not hand the connection over");
                continue;
            }
        };
        let svc = TowerToHyperService::new(worker.service.clone());
        let builder = builder.clone();
        let watcher = graceful[i].watcher();
        let tls = tls.clone();
        worker.handle.spawn(async move {
            let _permit = permit;
            let stream = match TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => return tracing::debug!(%peer, error = %e, "connection lost"),
            };
            let Some(acceptor) = tls else {
                return serve_connection(&builder, stream, svc, watcher, peer).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => serve_connection(&builder, s, svc, watcher, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let drained = futures::future::join_all(graceful.into_iter().map(GracefulShutdown::shutdown));
    if tokio::time::timeout(DRAIN_DEADLINE, drained).await.is_err() {
        tracing::warn!("connections still open after {DRAIN_DEADLINE:?}; closing them");
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2) until it ends or the drain deadline.
async fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: TowerToHyperService<S>,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            http::Request<Incoming>,
            Response = http::Response<RespBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

//! The sync API (`tollgate.sync.v1`, port 7071): config snapshots and deltas streamed to data
//! planes, and their usage reports applied exactly once.
//!
//! - `resource`: store records -> sync resources, and what an environment may see.
//! - `snapshot` / `delta`: the full snapshot, and watch events coalesced into one delta.
//! - `subscribe`: one data plane's stream (snapshot or resume, then deltas).
//! - `usage`: `ReportUsage`, one compare-and-swap transaction per report.
//! - `tls`: mTLS, or plaintext on loopback only.
//! - `auth`: the sync token, checked on every call (required when the port is plaintext).
//!
//! Invariant: only this module sends decrypted secrets anywhere, and only over this server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tollgate_proto::sync::sync_service_server::SyncServiceServer;
use tonic::service::interceptor::InterceptedService;

use crate::api::Ctx;

mod auth;
mod delta;
pub(crate) mod resource;
mod service;
mod snapshot;
mod subscribe;
pub mod tls;
pub(crate) mod usage;

pub use auth::TokenCheck;
pub use resource::policy as synced_policy;
pub use service::SyncService;
pub use tls::{SyncTransport, transport_from_flags};

/// Serves the sync API on `listener` until `shutdown` resolves; open subscriptions then end
/// with UNAVAILABLE so that data planes reconnect (to another replica, or after a restart).
/// Every sync call passes `token` first (the command line makes it required on a plaintext
/// transport, see [`TokenCheck::from_flags`]); gRPC health does not.
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    transport: SyncTransport,
    token: TokenCheck,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<SyncServiceServer<SyncService>>()
        .await;
    // Keepalives find data planes that vanished without closing their connection, so their
    // subscriptions (and tasks) end.
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    let mut server = transport.apply(server)?;
    server
        .add_service(health)
        .add_service(InterceptedService::new(
            SyncServiceServer::new(SyncService::new(ctx, stop_rx)),
            token,
        ))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopping)
        .await?;
    Ok(())
}

//! The `SyncService` gRPC handlers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_server;
use tonic::{Request, Response, Status, Streaming};

use super::subscribe::Subscriber;
use super::usage;
use crate::api::Ctx;

/// Time a data plane has to send its `Hello` after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Updates queued per subscriber; past it the subscriber's watch waits (and coalesces).
const UPDATES_BUFFERED: usize = 8;

/// Serves data planes their config and takes their usage reports.
pub struct SyncService {
    ctx: Arc<Ctx>,
    /// Turns true when the server shuts down: open subscriptions end so the server can stop.
    shutdown: watch::Receiver<bool>,
}

impl SyncService {
    pub fn new(ctx: Arc<Ctx>, shutdown: watch::Receiver<bool>) -> Self {
        Self { ctx, shutdown }
    }
}

async fn hello(inbound: &mut Streaming<pb::DataPlaneMessage>) -> Result<pb::Hello, Status> {
    const EXPECTED: &str = "a data plane must send Hello{instance_id, environment, version} first";
    let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded(format!("no Hello within 10 s: {EXPECTED}")))??;
    let Some(pb::DataPlaneMessage {
        message: Some(pb::data_plane_message::Message::Hello(hello)),
    }) = first
    else {
        return Err(Status::invalid_argument(EXPECTED));
    };
    if hello.environment.trim().is_empty() {
        return Err(Status::invalid_argument(
            "Hello.environment is empty: name the environment this data plane serves \
             (--environment, e.g. production)",
        ));
    }
    if hello.instance_id.trim().is_empty() {
        return Err(Status::invalid_argument(
            "Hello.instance_id is empty: send a stable id of this data plane",
        ));
    }
    if hello.version < 0 {
        return Err(Status::invalid_argument(
            "Hello.version is negative: send the last applied version, or 0 for a full snapshot",
        ));
    }
    Ok(hello)
}

#[tonic::async_trait]
impl sync_service_server::SyncService for SyncService {
    type SubscribeStream = ReceiverStream<Result<pb::ConfigUpdate, Status>>;

    async fn subscribe(
        &self,
        req: Request<Streaming<pb::DataPlaneMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let peer = req.remote_addr();
        let mut inbound = req.into_inner();
        let hello = hello(&mut inbound).await?;
        tracing::info!(instance = %hello.instance_id, env = %hello.environment,
            version = hello.version, software = %hello.software_version, peer = ?peer,
            "data plane subscribed");
        let (tx, rx) = mpsc::channel(UPDATES_BUFFERED);
        let subscriber = Subscriber {
            ctx: self.ctx.clone(),
            instance_id: hello.instance_id,
            environment: hello.environment,
            tx,
            shutdown: self.shutdown.clone(),
        };
        // The task ends when the data plane goes away (its receiver is dropped), its stream
        // breaks, or the server shuts down.
        tokio::spawn(subscriber.run(hello.version, inbound));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn report_usage(
        &self,
        req: Request<pb::UsageReport>,
    ) -> Result<Response<pb::UsageAck>, Status> {
        Ok(Response::new(
            usage::report(&self.ctx, req.into_inner()).await?,
        ))
    }
}

//! A control plane that only takes usage reports (its config stream stays silent), so tests
//! see usage whether the reporter already sent it or it still waits in the aggregator.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_stream::wrappers::TcpListenerStream;
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_server::{SyncService, SyncServiceServer};

use super::harness::Running;

type Reports = Arc<Mutex<Vec<pb::UsageRecord>>>;

struct Sink(Reports);

#[tonic::async_trait]
impl SyncService for Sink {
    type SubscribeStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ConfigUpdate, tonic::Status>> + Send>>;

    async fn subscribe(
        &self,
        _: tonic::Request<tonic::Streaming<pb::DataPlaneMessage>>,
    ) -> Result<tonic::Response<Self::SubscribeStream>, tonic::Status> {
        Ok(tonic::Response::new(Box::pin(tokio_stream::pending())))
    }

    async fn report_usage(
        &self,
        request: tonic::Request<pb::UsageReport>,
    ) -> Result<tonic::Response<pb::UsageAck>, tonic::Status> {
        let report = request.into_inner();
        self.0.lock().expect("lock").extend(report.records);
        Ok(tonic::Response::new(pb::UsageAck {
            sequence: report.sequence,
            applied: true,
        }))
    }
}

/// The sink's control plane URL, and the records it received.
pub struct UsageSink {
    pub url: String,
    records: Reports,
}

impl UsageSink {
    /// Starts the sink on an ephemeral port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let records = Reports::default();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SyncServiceServer::new(Sink(records.clone())))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { url, records }
    }

    /// Everything recorded so far by `gw`, reported or not.
    pub fn take(&self, gw: &Running) -> Vec<pb::UsageRecord> {
        let mut all = std::mem::take(&mut *self.records.lock().expect("lock"));
        all.extend(gw.usage.take(32));
        all
    }
}

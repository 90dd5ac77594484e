//! The sync client against an in-process fake of the control plane's SyncService: a full
//! snapshot then a delta; readiness flips; a revoked key stops working; usage is reported.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_server::{SyncService, SyncServiceServer};

use super::harness::{KEY, bearer, call, key_hash, start, test_config};
use crate::snapshot::build::tests::{conn, key, repo};

type UpdateStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ConfigUpdate, tonic::Status>> + Send>>;

/// Sends whatever the test pushes into `updates` to the (single) subscriber.
struct FakeControlPlane {
    updates: Mutex<Option<mpsc::Receiver<pb::ConfigUpdate>>>,
    hellos: Arc<Mutex<Vec<pb::Hello>>>,
    acks: Arc<Mutex<Vec<pb::Ack>>>,
    reports: Arc<Mutex<Vec<pb::UsageReport>>>,
}

#[tonic::async_trait]
impl SyncService for FakeControlPlane {
    type SubscribeStream = UpdateStream;

    async fn subscribe(
        &self,
        request: tonic::Request<tonic::Streaming<pb::DataPlaneMessage>>,
    ) -> Result<tonic::Response<UpdateStream>, tonic::Status> {
        let mut incoming = request.into_inner();
        let (hellos, acks) = (self.hellos.clone(), self.acks.clone());
        tokio::spawn(async move {
            while let Ok(Some(msg)) = incoming.message().await {
                match msg.message {
                    Some(pb::data_plane_message::Message::Hello(h)) => {
                        hellos.lock().expect("lock").push(h)
                    }
                    Some(pb::data_plane_message::Message::Ack(a)) => {
                        acks.lock().expect("lock").push(a)
                    }
                    None => {}
                }
            }
        });
        let rx = self
            .updates
            .lock()
            .expect("lock")
            .take()
            .ok_or_else(|| tonic::Status::unavailable("one subscriber only"))?;
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::StreamExt::map(ReceiverStream::new(rx), Ok),
        )))
    }

    async fn report_usage(
        &self,
        request: tonic::Request<pb::UsageReport>,
    ) -> Result<tonic::Response<pb::UsageAck>, tonic::Status> {
        let report = request.into_inner();
        let sequence = report.sequence;
        self.reports.lock().expect("lock").push(report);
        Ok(tonic::Response::new(pb::UsageAck {
            sequence,
            applied: true,
        }))
    }
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn full_snapshot_then_delta() {
    let (tx, rx) = mpsc::channel(4);
    let fake = FakeControlPlane {
        updates: Mutex::new(Some(rx)),
        hellos: Arc::default(),
        acks: Arc::default(),
        reports: Arc::default(),
    };
    let (hellos, acks, reports) = (fake.hellos.clone(), fake.acks.clone(), fake.reports.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cp = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServiceServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let mut config = test_config(&format!("http://{cp}"));
    config.environment = "staging".into();
    let gw = start(config, None).await;
    let readyz = format!("http://{}/readyz", gw.admin);
    let models = format!("http://{}/v1/models", gw.addr);
    assert_eq!(call("GET", readyz.clone(), &[], "").await.0, 503);

    tx.send(pb::ConfigUpdate {
        version: 5,
        full: true,
        upserts: vec![
            conn("c1", 1, "oa", &["gpt-4o"], "http://127.0.0.1:9/v1"),
            conn("bad", 4, "bedrock", &["claude"], "https://b"),
            repo("r1", &["c1", "bad"], vec![]),
            key("k1", "r1", key_hash(KEY), 0),
        ],
        removals: vec![],
    })
    .await
    .expect("send full");
    wait_for("readyz 200", async || {
        call("GET", readyz.clone(), &[], "").await.0 == 200
    })
    .await;
    assert_eq!(
        call("GET", models.clone(), &[("authorization", &bearer())], "")
            .await
            .0,
        200
    );
    {
        let h = hellos.lock().expect("lock");
        assert_eq!((h[0].environment.as_str(), h[0].version), ("staging", 0));
    }
    wait_for("ack 5", async || !acks.lock().expect("lock").is_empty()).await;
    {
        let a = acks.lock().expect("lock");
        // The AWS connection (no region) is refused by name; the rest applied.
        assert_eq!((a[0].version, a[0].accepted), (5, false));
        assert_eq!(a[0].rejected.len(), 1);
        assert_eq!(a[0].rejected[0].id, "bad");
    }

    // A routed request (upstream down: 502) is still usage, and it reaches the control plane:
    // each of its attempts (the first and the default 2 retries) is a failed call.
    let chat = format!("http://{}/v1/chat/completions", gw.addr);
    let (status, _) = call(
        "POST",
        chat,
        &[("authorization", &bearer())],
        r#"{"model":"gpt-4o"}"#,
    )
    .await;
    assert_eq!(status, 502);
    let attempts = 1 + u64::from(crate::snapshot::DEFAULT_RETRIES);
    let totals = |r: &[pb::UsageReport]| {
        r.iter()
            .flat_map(|r| &r.records)
            .fold((0, 0), |(c, e), x| (c + x.api_calls, e + x.errors))
    };
    wait_for("usage report", async || {
        totals(&reports.lock().expect("lock")).0 >= attempts
    })
    .await;
    {
        let r = reports.lock().expect("lock");
        // Sequences start at the start time in microseconds (they grow across restarts).
        assert!(r[0].sequence > 1_700_000_000_000_000, "{}", r[0].sequence);
        assert_eq!(r[0].environment.as_str(), "staging");
        assert_eq!(r[0].records[0].api_key_id.as_str(), "k1");
        assert_eq!(totals(&r), (attempts, attempts));
    }

    // Revoking the key is a removal in a delta.
    tx.send(pb::ConfigUpdate {
        version: 6,
        full: false,
        upserts: vec![],
        removals: vec![pb::ResourceRef {
            kind: pb::ResourceKind::ApiKey as i32,
            id: "k1".into(),
        }],
    })
    .await
    .expect("send delta");
    wait_for("key revoked", async || {
        call("GET", models.clone(), &[("authorization", &bearer())], "")
            .await
            .0
            == 401
    })
    .await;
    wait_for("ack 6", async || {
        acks.lock()
            .expect("lock")
            .iter()
            .any(|a| a.version == 6 && a.accepted)
    })
    .await;
}

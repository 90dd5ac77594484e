//! `scale`: a real data plane process applies a full snapshot of `connections`
//! configurations and `keys` API keys, sent by a stand-in sync server (this process, speaking
//! `tollgate.sync.v1`). Measured: send → ACK time (decode, apply, build, publish) and the
//! data plane's RSS before, after and at peak. The control plane's own snapshot building from
//! its store is not part of it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tollgate_proto::sync as pb;
use tonic::{Request, Response, Status, Streaming};

use crate::procs::free_port;
use crate::tollgate;

const CONNS_PER_REPO: usize = 10;

/// A full update of `conns` OpenAI connections (10 per repository) and `keys` API keys.
pub fn full_update(version: i64, conns: usize, keys: usize) -> pb::ConfigUpdate {
    let repos = conns.div_ceil(CONNS_PER_REPO).max(1);
    let mut upserts = Vec::with_capacity(conns + repos + keys);
    let res = |r| pb::Resource { resource: Some(r) };
    for i in 0..conns {
        upserts.push(res(pb::resource::Resource::Connection(pb::Connection {
            id: format!("conn-{i}"),
            workspace_id: "ws".into(),
            name: format!("conn-{i}"),
            ai_type: 1,
            endpoint: format!("http://127.0.0.1:9/{i}/v1"),
            secret: format!("sk-bench-secret-{i:08}"),
            routing_id: format!("conn-{i}"),
            models: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
            ..Default::default()
        })));
    }
    for r in 0..repos {
        let first = r * CONNS_PER_REPO;
        upserts.push(res(pb::resource::Resource::Repository(pb::Repository {
            id: format!("repo-{r}"),
            workspace_id: "ws".into(),
            name: format!("repo-{r}"),
            connection_ids: (first..(first + CONNS_PER_REPO).min(conns))
                .map(|i| format!("conn-{i}"))
                .collect(),
            routes: Vec::new(),
        })));
    }
    for k in 0..keys {
        upserts.push(res(pb::resource::Resource::ApiKey(pb::ApiKey {
            id: format!("key-{k}"),
            repository_id: format!("repo-{}", k % repos),
            hash: Sha256::digest(format!("tg_bench-key-{k:08}")).to_vec(),
            expires_at: 0,
        })));
    }
    pb::ConfigUpdate {
        version,
        full: true,
        upserts,
        removals: Vec::new(),
    }
}

/// What the stand-in control plane hands the test: updates to send, ACKs received.
struct Fake {
    updates: tokio::sync::Mutex<Option<mpsc::Receiver<pb::ConfigUpdate>>>,
    acks: mpsc::UnboundedSender<(i64, bool, Instant)>,
}

#[tonic::async_trait]
impl pb::sync_service_server::SyncService for Fake {
    type SubscribeStream = ReceiverStream<Result<pb::ConfigUpdate, Status>>;

    async fn subscribe(
        &self,
        req: Request<Streaming<pb::DataPlaneMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let mut updates = self
            .updates
            .lock()
            .await
            .take()
            .ok_or_else(|| Status::unavailable("one data plane only"))?;
        let mut incoming = req.into_inner();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(u) = updates.recv().await {
                if tx.send(Ok(u)).await.is_err() {
                    break;
                }
            }
        });
        let acks = self.acks.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = incoming.next().await {
                if let Some(pb::data_plane_message::Message::Ack(a)) = msg.message {
                    let _ = acks.send((a.version, a.accepted, Instant::now()));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn report_usage(
        &self,
        req: Request<pb::UsageReport>,
    ) -> Result<Response<pb::UsageAck>, Status> {
        Ok(Response::new(pb::UsageAck {
            sequence: req.into_inner().sequence,
            applied: true,
        }))
    }
}

pub async fn run(
    connections: usize,
    keys: usize,
    bin_dir: Option<PathBuf>,
    out: PathBuf,
) -> Result<Value> {
    let tmp = tempfile::Builder::new()
        .prefix("tollgate-scale-")
        .tempdir()?;
    let (up_tx, up_rx) = mpsc::channel(1);
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
    let fake = Fake {
        updates: tokio::sync::Mutex::new(Some(up_rx)),
        acks: ack_tx,
    };
    let port = free_port()?;
    let listener = tokio::net::TcpListener::bind(crate::procs::loopback(port)).await?;
    // Plays the control plane down to its sync token check, so the data plane sends the
    // token like it does to a real one.
    let (token, token_file) = tollgate::write_sync_token(tmp.path())?;
    let expected = format!("Bearer {token}");
    let check = move |req: Request<()>| match req.metadata().get("authorization") {
        Some(v) if v.as_bytes() == expected.as_bytes() => Ok(req),
        _ => Err(Status::unauthenticated("missing or wrong sync token")),
    };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(tonic::service::interceptor::InterceptedService::new(
                pb::sync_service_server::SyncServiceServer::new(fake)
                    .max_encoding_message_size(usize::MAX),
                check,
            ))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let dp = tollgate::start_data_plane(
        bin_dir.as_deref(),
        tmp.path(),
        "data-plane",
        &format!("http://127.0.0.1:{port}"),
        &token_file,
        false,
        &[],
    )
    .await?;
    // A small first snapshot, so the idle figure is a data plane that holds config.
    up_tx.send(full_update(1, 1, 1)).await?;
    wait_ack(&mut ack_rx, 1).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = dp.proc.usage();
    let big = full_update(2, connections, keys);
    let bytes = prost::Message::encoded_len(&big);
    let sent = Instant::now();
    up_tx.send(big).await?;
    let acked = wait_ack(&mut ack_rx, 2).await?;
    let apply = acked - sent;
    let after = dp.proc.usage();
    let doc = json!({
        "machine": crate::load::machine(),
        "connections": connections,
        "keys": keys,
        "update_bytes": bytes,
        "apply_ms": apply.as_secs_f64() * 1e3,
        "cpu_s": after.cpu_secs - idle.cpu_secs,
        "rss_before_kib": idle.rss_kib,
        "rss_after_kib": after.rss_kib,
        "peak_rss_kib": after.hwm_kib,
    });
    let md = format!(
        "| snapshot | bytes | send → ACK | data-plane CPU | RSS before | RSS after | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|\n| {connections} connections, {keys} keys | {:.1} MiB | {:.0} ms | {:.2} s | {:.1} MiB | {:.1} MiB | {:.1} MiB |\n",
        bytes as f64 / 1048576.0,
        apply.as_secs_f64() * 1e3,
        after.cpu_secs - idle.cpu_secs,
        idle.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0,
        after.hwm_kib as f64 / 1024.0,
    );
    eprint!("{md}");
    crate::load::write(&out, "scale", &doc, &md)?;
    drop(dp);
    server.abort();
    Ok(doc)
}

/// Waits for the data plane's ACK of `version`; when it came.
async fn wait_ack(
    acks: &mut mpsc::UnboundedReceiver<(i64, bool, Instant)>,
    version: i64,
) -> Result<Instant> {
    loop {
        let (v, accepted, at) = tokio::time::timeout(Duration::from_secs(120), acks.recv())
            .await
            .context("no ACK within 120 s")?
            .context("sync stream closed")?;
        if v == version {
            if !accepted {
                bail!("version {version} rejected");
            }
            return Ok(at);
        }
    }
}

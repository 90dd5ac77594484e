//! The sync client: subscribes to the control plane's config stream, turns each update into a
//! new immutable [`Snapshot`] published through `ArcSwap`, and acknowledges every version
//! (naming the resources it could not use). Reconnects with backoff and resumes from the
//! version it holds; while disconnected the last snapshot keeps serving (static stability).

mod channel;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_client::SyncServiceClient;
use tonic::transport::Channel;

use crate::backoff::Backoff;
use crate::snapshot::{Rejected, ResourceSet, Snapshot, SnapshotCell, build_snapshot};

pub use channel::connect_lazy;

/// A full snapshot is one message; the control plane asks clients to accept at least this.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Who this data plane is, sent in `Hello`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub instance_id: String,
    pub environment: String,
}

/// Runs the subscription until `shutdown`, publishing snapshots into `cell`.
pub async fn run_sync(
    channel: Channel,
    identity: Identity,
    cell: Arc<SnapshotCell>,
    shutdown: impl Future<Output = ()>,
) {
    let mut client = SyncServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut set = ResourceSet::default();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    tokio::pin!(shutdown);
    loop {
        let mut progressed = false;
        tokio::select! {
            _ = &mut shutdown => return,
            end = session(&mut client, &identity, &mut set, &cell, &mut progressed) => match end {
                Ok(()) => tracing::info!("control plane closed the config stream; reconnecting"),
                Err(e) => tracing::warn!(error = %e, version = set.version, "config stream to the control plane failed; serving the last snapshot and reconnecting"),
            },
        }
        if progressed {
            backoff.reset();
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// One stream: Hello, then apply + ACK each update until the stream ends.
async fn session(
    client: &mut SyncServiceClient<Channel>,
    identity: &Identity,
    set: &mut ResourceSet,
    cell: &SnapshotCell,
    progressed: &mut bool,
) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(16);
    let hello = pb::Hello {
        instance_id: identity.instance_id.clone(),
        environment: identity.environment.clone(),
        version: set.version,
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    // The receiver lives in `rx` until subscribe takes it, so this send cannot fail.
    let _ = tx
        .send(pb::DataPlaneMessage {
            message: Some(pb::data_plane_message::Message::Hello(hello)),
        })
        .await;
    let mut updates = client
        .subscribe(ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(update) = updates.message().await? {
        let version = update.version;
        let (snapshot, rejected) = apply_off_thread(set, update).await;
        tracing::info!(
            version,
            keys = snapshot.key_count(),
            rejected = rejected.len(),
            "config applied"
        );
        for r in &rejected {
            tracing::warn!(kind = ?r.kind, id = %r.id, reason = %r.reason, "config resource rejected");
        }
        cell.store(Some(Arc::new(snapshot)));
        *progressed = true;
        let ack = ack_for(version, &rejected);
        if tx
            .send(pb::DataPlaneMessage {
                message: Some(pb::data_plane_message::Message::Ack(ack)),
            })
            .await
            .is_err()
        {
            return Err(tonic::Status::unavailable("config stream closed"));
        }
    }
    Ok(())
}

/// Builds the next snapshot on the blocking pool: a snapshot of 100,000 keys takes tens of
/// milliseconds that request handling should not wait behind.
async fn apply_off_thread(
    set: &mut ResourceSet,
    update: pb::ConfigUpdate,
) -> (Snapshot, Vec<Rejected>) {
    let mut owned = std::mem::take(set);
    let joined = tokio::task::spawn_blocking(move || {
        let mut rejected = owned.apply(update);
        let (snapshot, more) = build_snapshot(&owned);
        rejected.extend(more);
        (owned, snapshot, rejected)
    })
    .await;
    match joined {
        Ok((owned, snapshot, rejected)) => {
            *set = owned;
            (snapshot, rejected)
        }
        // Only a panic gets here; start over from a full snapshot rather than guess.
        Err(e) => {
            tracing::error!(error = %e, "building a snapshot failed; asking for a full one");
            let (snapshot, _) = build_snapshot(set);
            (snapshot, Vec::new())
        }
    }
}

fn ack_for(version: i64, rejected: &[Rejected]) -> pb::Ack {
    pb::Ack {
        version,
        accepted: rejected.is_empty(),
        error: rejected
            .iter()
            .map(|r| format!("{:?} {}: {}", r.kind, r.id, r.reason))
            .collect::<Vec<_>>()
            .join("; "),
        rejected: rejected
            .iter()
            .map(|r| pb::Rejection {
                kind: r.kind as i32,
                id: r.id.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    }
}

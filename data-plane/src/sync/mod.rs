//! The sync client: subscribes to the control plane's config stream, turns each update into a
//! new immutable [`Snapshot`] published through `ArcSwap`, and acknowledges every version
//! (naming the resources it could not use). Reconnects with backoff and resumes from the
//! version it holds; while disconnected the last snapshot keeps serving (static stability).

mod channel;
pub mod token;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_client::SyncServiceClient;

use crate::backoff::Backoff;
use crate::snapshot::{Rejected, ResourceSet, Snapshot, SnapshotCell, build_snapshot};

pub use channel::{SyncAuth, SyncChannel, connect_lazy};

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
    channel: SyncChannel,
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
                Err(e) if e.code() == tonic::Code::Unauthenticated => tracing::error!(
                    error = %e.message(),
                    "the control plane refused the sync call: sync token missing or wrong; set --sync-token-file or TOLLGATE_SYNC_TOKEN to the control plane's token (retrying)"
                ),
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
    client: &mut SyncServiceClient<SyncChannel>,
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
        let (snapshot, rejected) = match apply_off_thread(set, update, apply_and_build).await {
            Ok(built) => built,
            Err(panicked) => {
                // The previous snapshot keeps serving; `set` is back at version 0, so the
                // next stream starts with a full snapshot.
                let _ = tx.send(nack(version, &panicked)).await;
                return Err(tonic::Status::internal(panicked));
            }
        };
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

/// Applies an update to the resources and builds their snapshot.
type BuildFn = fn(&mut ResourceSet, pb::ConfigUpdate) -> (Snapshot, Vec<Rejected>);

fn apply_and_build(set: &mut ResourceSet, update: pb::ConfigUpdate) -> (Snapshot, Vec<Rejected>) {
    let mut rejected = set.apply(update);
    let (snapshot, more) = build_snapshot(set);
    rejected.extend(more);
    (snapshot, rejected)
}

/// Builds the next snapshot on the blocking pool: a snapshot of 100,000 keys takes tens of
/// milliseconds that request handling should not wait behind.
///
/// A panic there loses the resources (they were moved to the blocking task): `set` is then
/// empty at version 0 and the error says what happened. Nothing is published.
async fn apply_off_thread(
    set: &mut ResourceSet,
    update: pb::ConfigUpdate,
    build: BuildFn,
) -> Result<(Snapshot, Vec<Rejected>), String> {
    let mut owned = std::mem::take(set);
    let version = update.version;
    let joined = tokio::task::spawn_blocking(move || {
        let (snapshot, rejected) = build(&mut owned, update);
        (owned, snapshot, rejected)
    })
    .await;
    match joined {
        Ok((owned, snapshot, rejected)) => {
            *set = owned;
            Ok((snapshot, rejected))
        }
        Err(e) => {
            *set = ResourceSet::default();
            tracing::error!(version, error = %e, "building a snapshot failed; keeping the previous one and asking for a full snapshot");
            Err(format!(
                "the data plane failed to build config version {version} ({e}); it keeps the previous snapshot and resubscribes for a full one"
            ))
        }
    }
}

/// The NACK of a version the data plane could not build at all.
fn nack(version: i64, error: &str) -> pb::DataPlaneMessage {
    pb::DataPlaneMessage {
        message: Some(pb::data_plane_message::Message::Ack(pb::Ack {
            version,
            accepted: false,
            error: error.to_owned(),
            rejected: Vec::new(),
        })),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::build::tests::key;

    fn update(version: i64) -> pb::ConfigUpdate {
        pb::ConfigUpdate {
            version,
            full: version == 1,
            upserts: vec![key(&format!("k{version}"), "r", [version as u8; 32], 0)],
            removals: vec![],
        }
    }

    fn panicking(_: &mut ResourceSet, _: pb::ConfigUpdate) -> (Snapshot, Vec<Rejected>) {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panic_while_building_publishes_nothing_and_resets_the_version() {
        let mut set = ResourceSet::default();
        let (snap, rejected) = apply_off_thread(&mut set, update(1), apply_and_build)
            .await
            .expect("built");
        assert!(rejected.is_empty());
        assert_eq!((snap.version, set.version), (1, 1));

        let err = apply_off_thread(&mut set, update(2), panicking)
            .await
            .expect_err("a panic is an error, not an empty snapshot");
        assert!(err.contains("version 2"), "{err}");
        // Back to version 0: the next Hello asks for a full snapshot.
        assert_eq!(set.version, 0);
        assert_eq!(build_snapshot(&set).0.key_count(), 0);

        match nack(2, &err).message {
            Some(pb::data_plane_message::Message::Ack(a)) => {
                assert_eq!((a.version, a.accepted), (2, false));
                assert!(a.error.contains("version 2"));
            }
            other => panic!("not an ack: {other:?}"),
        }
    }
}

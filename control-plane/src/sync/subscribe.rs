//! One data plane's subscription: a snapshot (or a resume), then deltas, until the data plane
//! goes away or the control plane shuts down.
//!
//! Each subscriber owns a store watch and a bounded channel to its gRPC stream. The watch is
//! read only as fast as the data plane takes updates, and whatever piled up meanwhile is
//! coalesced by key into the next update, so a slow data plane costs memory proportional to
//! the resources that changed, never to the number of writes, and never slows anyone else.

use std::sync::Arc;

use futures::stream::Fuse;
use futures::{FutureExt as _, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tollgate_proto::sync as pb;
use tonic::{Status, Streaming};

use super::delta::Batch;
use super::snapshot;
use crate::api::Ctx;
use crate::error::ApiError;
use crate::keys;
use crate::store::{Revision, StoreError, WatchEvent, WatchStream};

/// Events folded into one update at most; past it, the batch still completes its revision
/// (a revision is never split across updates, so versions strictly grow).
const MAX_BATCH_EVENTS: usize = 4096;

pub type Updates = mpsc::Sender<Result<pb::ConfigUpdate, Status>>;

/// Why a subscription ended.
enum Stop {
    ClientGone,
    Shutdown,
    Failed(Status),
}

fn store_failed(e: StoreError) -> Stop {
    Stop::Failed(ApiError::from(e).into())
}

pub struct Subscriber {
    pub ctx: Arc<Ctx>,
    pub instance_id: String,
    pub environment: String,
    pub tx: Updates,
    pub shutdown: watch::Receiver<bool>,
}

impl Subscriber {
    /// Serves the subscription; returns when it is over.
    pub async fn run(mut self, version: Revision, mut inbound: Streaming<pb::DataPlaneMessage>) {
        let Err(stop) = self.serve(version, &mut inbound).await;
        let (instance, env) = (&self.instance_id, &self.environment);
        match stop {
            Stop::ClientGone => tracing::info!(instance, env, "data plane disconnected"),
            Stop::Shutdown => {
                let status = Status::unavailable("the control plane is shutting down; reconnect");
                let _ = self.tx.try_send(Err(status));
            }
            Stop::Failed(status) => {
                tracing::warn!(instance, env, error = %status.message(), "sync stream failed");
                let _ = self.tx.try_send(Err(status));
            }
        }
    }

    async fn serve(
        &mut self,
        version: Revision,
        inbound: &mut Streaming<pb::DataPlaneMessage>,
    ) -> Result<std::convert::Infallible, Stop> {
        let mut from = self.start(version).await?;
        let mut inbound_open = true;
        loop {
            // Fused: a store watch must not be polled after it ended.
            let mut watch = match self.ctx.store().watch(keys::CONFIG, from).await {
                Ok(w) => w.fuse(),
                Err(StoreError::Compacted { .. }) => {
                    from = self.send_snapshot("history compacted").await?;
                    continue;
                }
                Err(e) => return Err(store_failed(e)),
            };
            let mut carry: Option<WatchEvent> = None;
            loop {
                let first = match carry.take() {
                    Some(event) => event,
                    None => tokio::select! {
                        _ = self.shutdown.wait_for(|s| *s) => return Err(Stop::Shutdown),
                        _ = self.tx.closed() => return Err(Stop::ClientGone),
                        msg = inbound.message(), if inbound_open => {
                            inbound_open = on_message(&self.instance_id, msg)?;
                            continue;
                        }
                        item = watch.next() => match item {
                            Some(Ok(event)) => event,
                            Some(Err(StoreError::Compacted { .. })) => break,
                            Some(Err(e)) => return Err(store_failed(e)),
                            None => return Err(store_failed(StoreError::Unavailable(
                                "the store watch ended".into(),
                            ))),
                        },
                    },
                };
                let (batch, next) = match drain(first, &mut watch) {
                    Ok(drained) => drained,
                    Err(StoreError::Compacted { .. }) => break,
                    Err(e) => return Err(store_failed(e)),
                };
                carry = next;
                let version = batch.last_revision();
                if let Some(update) = batch.into_update(&self.ctx, &self.environment) {
                    tracing::debug!(
                        instance = %self.instance_id,
                        version,
                        upserts = update.upserts.len(),
                        removals = update.removals.len(),
                        "sending config delta"
                    );
                    self.send(update).await?;
                }
            }
            // The watch lost the history it needed (the data plane fell too far behind):
            // start over from a fresh snapshot.
            from = self.send_snapshot("history compacted").await?;
        }
    }

    /// The first update: the revision to watch from, after sending a snapshot if needed.
    async fn start(&mut self, version: Revision) -> Result<Revision, Stop> {
        if version <= 0 {
            return self.send_snapshot("first connection").await;
        }
        let head = self.ctx.store().revision().await.map_err(store_failed)?;
        if version > head {
            // A data plane ahead of the store: the store was restored or replaced. Its state
            // cannot be trusted, so it gets everything again.
            return self.send_snapshot("data plane is ahead of the store").await;
        }
        tracing::info!(instance = %self.instance_id, env = %self.environment, version,
            "data plane resumes");
        Ok(version)
    }

    async fn send_snapshot(&mut self, why: &str) -> Result<Revision, Stop> {
        let update = snapshot::build(&self.ctx, &self.environment)
            .await
            .map_err(store_failed)?;
        let version = update.version;
        tracing::info!(instance = %self.instance_id, env = %self.environment, version,
            resources = update.upserts.len(), why, "sending full snapshot");
        self.send(update).await?;
        Ok(version)
    }

    /// Queues an update, waiting while the data plane is slow to read.
    async fn send(&mut self, update: pb::ConfigUpdate) -> Result<(), Stop> {
        tokio::select! {
            sent = self.tx.send(Ok(update)) => sent.map_err(|_| Stop::ClientGone),
            _ = self.shutdown.wait_for(|s| *s) => Err(Stop::Shutdown),
        }
    }
}

/// Handles what the data plane sent; returns whether its side of the stream is still open.
fn on_message(
    instance: &str,
    msg: Result<Option<pb::DataPlaneMessage>, Status>,
) -> Result<bool, Stop> {
    match msg {
        Ok(Some(pb::DataPlaneMessage {
            message: Some(pb::data_plane_message::Message::Ack(ack)),
        })) => {
            if ack.accepted {
                tracing::debug!(instance, version = ack.version, "data plane applied config");
            } else {
                tracing::warn!(instance, version = ack.version, error = %ack.error,
                    "data plane rejected config");
            }
            // A data plane may apply a version and still name resources it could not use.
            for r in &ack.rejected {
                tracing::warn!(instance, version = ack.version, kind = ?r.kind(),
                    id = %r.id, reason = %r.reason, "data plane rejected a resource");
            }
            Ok(true)
        }
        Ok(Some(_)) => {
            tracing::warn!(instance, "ignoring an unexpected message after Hello");
            Ok(true)
        }
        // The data plane closed its side; it may still read updates.
        Ok(None) => Ok(false),
        Err(status) => {
            tracing::debug!(instance, error = %status.message(), "data plane stream broke");
            Err(Stop::ClientGone)
        }
    }
}

/// Folds `first` and every event already waiting into one batch. Past
/// [`MAX_BATCH_EVENTS`] the batch stops at the next revision boundary, and the first event
/// of the next revision is returned to start the next batch.
fn drain(
    first: WatchEvent,
    watch: &mut Fuse<WatchStream>,
) -> Result<(Batch, Option<WatchEvent>), StoreError> {
    let mut batch = Batch::default();
    batch.push(first);
    let mut count = 1;
    // Both stores queue a revision's events together, so a revision is never cut short by
    // the stream being momentarily empty.
    while let Some(item) = watch.next().now_or_never() {
        let Some(event) = item.transpose()? else {
            break; // the stream ended: the caller's next read reports it
        };
        if count >= MAX_BATCH_EVENTS && event.kv.mod_revision != batch.last_revision() {
            return Ok((batch, Some(event)));
        }
        batch.push(event);
        count += 1;
    }
    Ok((batch, None))
}

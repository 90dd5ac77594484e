//! Full snapshots: every resource a data plane in one environment may see.

use std::sync::Arc;

use tollgate_proto::sync as pb;

use super::resource::{self, Change};
use crate::api::Ctx;
use crate::keys;
use crate::store::{Revision, StoreError};

/// Builds a full snapshot for `environment`.
///
/// The prefixes are listed one after the other, so each list may be at a later
/// revision than the one before. The snapshot's version is the revision of the FIRST list:
/// whatever changed after it (including what the later lists already show) is replayed by
/// the watch that starts from that version, and replaying the current state of a record is
/// idempotent. So nothing can be missed, at the cost of occasionally sending a record twice.
/// (Listing `""` would be one consistent read but would also read every usage row.)
pub async fn build(ctx: &Arc<Ctx>, environment: &str) -> Result<pb::ConfigUpdate, StoreError> {
    let mut version: Option<Revision> = None;
    let mut kvs = Vec::new();
    for prefix in [keys::LLMS, keys::REPOS, keys::API_KEYS, keys::POLICIES] {
        let (listed, revision) = ctx.store().list(prefix).await?;
        version.get_or_insert(revision);
        kvs.extend(listed);
    }
    // Decoding and decrypting 100,000 records is CPU work: keep it off the async workers.
    let (ctx, environment) = (ctx.clone(), environment.to_owned());
    let upserts = tokio::task::spawn_blocking(move || {
        kvs.iter()
            .filter_map(|kv| {
                match resource::change(&ctx, &environment, &kv.key, Some(&kv.value)) {
                    Some(Change::Upsert(r)) => Some(*r),
                    // Not visible here: a full snapshot simply leaves it out.
                    Some(Change::Remove(_)) | None => None,
                }
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("building a snapshot failed: {e}")))?;
    Ok(pb::ConfigUpdate {
        version: version.unwrap_or_default(),
        full: true,
        upserts,
        removals: Vec::new(),
    })
}

//! Turns a batch of watch events into one delta `ConfigUpdate`.

use std::collections::BTreeMap;

use tollgate_proto::sync as pb;

use super::resource::{self, Change};
use crate::api::Ctx;
use crate::store::{EventKind, Revision, WatchEvent};

/// Watch events coalesced by key: only the last state of each key matters, so a burst of
/// writes to one record costs one resource, whatever its length.
#[derive(Default)]
pub struct Batch {
    /// Synced key -> its last value in the batch (`None`: deleted).
    latest: BTreeMap<String, Option<Vec<u8>>>,
    /// Revision of the last event seen, synced or not.
    last_revision: Revision,
}

impl Batch {
    pub fn push(&mut self, event: WatchEvent) {
        self.last_revision = self.last_revision.max(event.kv.mod_revision);
        if resource::parse_key(&event.kv.key).is_none() {
            return; // usage rows, indexes, tokens, ...: not the data plane's business
        }
        let value = match event.kind {
            EventKind::Put => Some(event.kv.value),
            EventKind::Delete => None,
        };
        self.latest.insert(event.kv.key, value);
    }

    pub fn last_revision(&self) -> Revision {
        self.last_revision
    }

    /// The delta for `environment`, or `None` when nothing in the batch concerns data planes.
    pub fn into_update(self, ctx: &Ctx, environment: &str) -> Option<pb::ConfigUpdate> {
        let mut update = pb::ConfigUpdate {
            version: self.last_revision,
            full: false,
            upserts: Vec::new(),
            removals: Vec::new(),
        };
        for (key, value) in &self.latest {
            match resource::change(ctx, environment, key, value.as_deref()) {
                Some(Change::Upsert(r)) => update.upserts.push(*r),
                Some(Change::Remove(r)) => update.removals.push(r),
                None => {}
            }
        }
        (!update.upserts.is_empty() || !update.removals.is_empty()).then_some(update)
    }
}

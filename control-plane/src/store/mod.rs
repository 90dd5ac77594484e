//! The store: the only state of the control plane. One small trait, two backends (etcd for
//! production, an embedded file-backed store for a single machine), one conformance suite.
//!
//! Keys are relative to the backend's prefix (default `/tollgate/v1/`): callers write
//! `llms/abc`, the backend stores `/tollgate/v1/llms/abc`. Revisions are the store's global,
//! monotonically increasing write counter: every successful transaction that writes bumps it
//! by one, and every key remembers the revision that last wrote it.

use std::pin::Pin;

use futures::Stream;

pub mod conformance;
pub mod embedded;
pub mod etcd;

pub use embedded::EmbeddedStore;
pub use etcd::{EtcdOptions, EtcdStore};

/// A store revision. Revisions start at 1; 0 means "no revision" (a key that does not exist).
pub type Revision = i64;

/// One key and its value as read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// Key relative to the store prefix.
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: Revision,
    /// Revision of the last write of the key.
    pub mod_revision: Revision,
}

/// A condition of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals the given revision; 0 means "the key does not exist".
    ModRevision(String, Revision),
}

/// A write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    /// Deletes one key; deleting a missing key is not an error.
    Delete(String),
}

/// Compare-and-swap: if every compare holds, every op is applied atomically at one new
/// revision; otherwise nothing is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    /// Requires `key` to be unchanged since `revision` (0: to be absent).
    pub fn when(mut self, key: impl Into<String>, revision: Revision) -> Self {
        self.compares
            .push(Compare::ModRevision(key.into(), revision));
        self
    }
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put(key.into(), value.into()));
        self
    }
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete(key.into()));
        self
    }
}

/// Outcome of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether the compares held and the ops were applied.
    pub succeeded: bool,
    /// The store revision after the transaction (the new one when it wrote).
    pub revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For a delete, `kv.value` is empty and `kv.mod_revision` is the
/// revision of the delete. Events of one transaction share a revision and arrive together,
/// in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the request; the message says what to check.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A watch asked for history the store no longer keeps; list again and watch from there.
    #[error("store history before revision {compacted} is compacted (asked for {requested})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The request is not acceptable to the backend (too many ops, too large a value, ...).
    #[error("store rejected the request: {0}")]
    Invalid(String),
    /// The store's data could not be read back.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
}

/// The whole storage contract of the control plane.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Reads every key under `prefix`, sorted by key, with the revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    /// Reads every key `k` with `start <= k < end`, sorted by key (a time-ordered range of
    /// records, without the rest of their prefix).
    async fn list_range(&self, start: &str, end: &str) -> Result<Vec<KeyValue>, StoreError>;
    /// The current store revision.
    async fn revision(&self) -> Result<Revision, StoreError>;
    /// Applies a compare-and-swap transaction.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;
    /// Streams every change under `prefix` with a revision greater than `after`, in revision
    /// order, then live changes. Survives dropped connections (resumes where it was); ends with
    /// `StoreError::Compacted` when the history it needs is gone.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;
}

/// Opens the store named by `url`: `etcd://HOST:PORT[,HOST:PORT...]` or `file://PATH` (the
/// embedded store; the file and its directory are created if missing).
pub async fn open(url: &str, prefix: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(url, prefix, &EtcdOptions::default()).await
}

/// [`open`] with etcd TLS and authentication (ignored for `file://`).
pub async fn open_with(
    url: &str,
    prefix: &str,
    etcd: &EtcdOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(hosts) = url.strip_prefix("etcd://") {
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            // The scheme follows the TLS settings (`EtcdOptions::ca_pem`), whatever is written.
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(StoreError::Invalid(format!(
                "store URL {url:?} names no etcd endpoint: use etcd://HOST:PORT[,HOST:PORT...]"
            )));
        }
        return Ok(std::sync::Arc::new(
            EtcdStore::connect_with(&endpoints, prefix, etcd).await?,
        ));
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(StoreError::Invalid(format!(
                "store URL {url:?} names no file: use file://PATH"
            )));
        }
        let (path, prefix) = (std::path::PathBuf::from(path), prefix.to_owned());
        // Opening checks the whole file's integrity: blocking work.
        let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path, &prefix))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the store failed: {e}")))??;
        return Ok(std::sync::Arc::new(store));
    }
    Err(StoreError::Invalid(format!(
        "unsupported store URL {url:?}: use etcd://HOST:PORT[,HOST:PORT...] or file://PATH"
    )))
}

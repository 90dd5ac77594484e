//! Embedded store: one redb file, for a single machine (`dev` mode, trying it out, small
//! installs).
//!
//! Every transaction is one durable redb write transaction that updates three tables together:
//! `kv` (current values), `meta` (revision counters) and `history` (the events of each
//! revision, so a watch can replay from any retained revision). A crash loses at most the
//! transaction in flight, never half of one.
//!
//! Watchers learn that something was committed through a `tokio::sync::watch` channel that
//! only carries the latest revision, and always read the events themselves from `history`:
//! a slow watcher cannot miss or duplicate an event, it just reads a bigger batch next time.
//!
//! Transactions follow etcd's rules, so code that works here works on etcd: at most
//! [`MAX_TXN_OPS`] compares and ops, a key may not be both put twice or put and deleted in one
//! transaction (rejected with `Invalid`; deleting a key twice is fine), and a transaction
//! that changes nothing does not bump the revision.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use tokio::sync::watch;

use super::{
    Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, Txn, TxnResponse, WatchEvent,
    WatchStream,
};

/// Full key -> (create revision, mod revision, value).
const KV: TableDefinition<&str, (i64, i64, &[u8])> = TableDefinition::new("kv");
/// Counters: [`META_REVISION`] and [`META_COMPACTED`].
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// (revision, full key) -> (event kind, create revision, value). Keyed this way, the events of
/// one revision come back in key order.
const HISTORY: TableDefinition<(i64, &str), (u8, i64, &[u8])> = TableDefinition::new("history");

const META_REVISION: &str = "revision";
/// The highest revision whose history was removed (0: none).
const META_COMPACTED: &str = "compacted";
const KIND_PUT: u8 = 0;
const KIND_DELETE: u8 = 1;

/// Revisions of history kept for watches; older ones are removed as new ones are written.
pub const HISTORY_RETAINED: Revision = 100_000;
/// etcd's default `--max-txn-ops`, enforced here too so both backends accept the same txns.
pub const MAX_TXN_OPS: usize = 128;
/// Revisions a watcher reads per batch, bounding its memory after a long pause.
const WATCH_BATCH_REVISIONS: Revision = 256;

/// The embedded, file-backed [`Store`]. The file stays open (and locked against other
/// processes) until the store and every watch stream from it are dropped.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    /// Prepended to every key.
    prefix: String,
    retained: Revision,
    /// The revision of the last commit; watchers wait on it.
    committed: watch::Sender<Revision>,
}

impl EmbeddedStore {
    /// Opens (or creates, with its parent directory) the store file at `path`, readable by its
    /// owner only.
    pub fn open(path: &Path, prefix: &str) -> Result<Self, StoreError> {
        Self::open_with_retention(path, prefix, HISTORY_RETAINED)
    }

    /// [`EmbeddedStore::open`] keeping `retained` revisions of history (tests use a few).
    pub(crate) fn open_with_retention(
        path: &Path,
        prefix: &str,
        retained: Revision,
    ) -> Result<Self, StoreError> {
        let io = |e: std::io::Error| {
            StoreError::Unavailable(format!("cannot open store file {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        create_private(path).map_err(io)?;
        // The check turns a file damaged outside redb into an error instead of a panic.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
                    "store file {} is in use by another process (another control plane?)",
                    path.display()
                )),
                e => file_error(path, e),
            })?;
        // Creating the tables up front lets readers assume they exist.
        let revision = (|| -> Result<Revision, redb::Error> {
            let write = db.begin_write()?;
            let revision = {
                write.open_table(KV)?;
                write.open_table(HISTORY)?;
                read_meta(&write.open_table(META)?, META_REVISION)?
            };
            write.commit()?;
            Ok(revision)
        })()
        .map_err(|e| file_error(path, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path: path.to_owned(),
                prefix: prefix.to_owned(),
                retained,
                committed: watch::Sender::new(revision),
            }),
        })
    }

    /// Runs blocking redb work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        run_blocking(self.inner.clone(), work).await
    }
}

async fn run_blocking<T: Send + 'static>(
    inner: Arc<Inner>,
    work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(move || work(&inner))
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded store task failed: {e}")))?
}

/// Creates the file if missing and makes it owner-only: it holds encrypted secrets and the
/// whole configuration.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        // A file created earlier by someone else may be wider; tighten it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

fn file_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
        redb::Error::ValueTooLarge(n) => {
            StoreError::Invalid(format!("a value of {n} bytes is too large"))
        }
        e => StoreError::Unavailable(format!("store file {}: {e}", path.display())),
    }
}

fn read_meta(meta: &impl ReadableTable<&'static str, i64>, name: &str) -> redb::Result<i64> {
    Ok(meta.get(name)?.map_or(0, |v| v.value()))
}

/// Applies etcd's request checks (see the module doc).
fn validate(txn: &Txn) -> Result<(), StoreError> {
    if txn.compares.len() > MAX_TXN_OPS || txn.ops.len() > MAX_TXN_OPS {
        return Err(StoreError::Invalid(format!(
            "too many operations in txn request (at most {MAX_TXN_OPS} compares and {MAX_TXN_OPS} ops)"
        )));
    }
    let deleted: HashSet<&str> = txn
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Delete(key) => Some(key.as_str()),
            Op::Put(..) => None,
        })
        .collect();
    let mut put = HashSet::new();
    for op in &txn.ops {
        if let Op::Put(key, _) = op
            && (!put.insert(key.as_str()) || deleted.contains(key.as_str()))
        {
            return Err(StoreError::Invalid(format!(
                "duplicate key given in txn request: {key:?} is written twice"
            )));
        }
    }
    Ok(())
}

impl Inner {
    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        file_error(&self.path, e)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let kv = read.open_table(KV).map_err(|e| self.err(e))?;
        let found = kv.get(self.full(key).as_str()).map_err(|e| self.err(e))?;
        Ok(found.map(|v| {
            let (create_revision, mod_revision, value) = v.value();
            KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision,
            }
        }))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let revision = read_meta(&meta, META_REVISION).map_err(|e| self.err(e))?;
        let kv = read.open_table(KV).map_err(|e| self.err(e))?;
        let start = self.full(prefix);
        let mut out = Vec::new();
        for entry in kv.range(start.as_str()..).map_err(|e| self.err(e))? {
            let (key, v) = entry.map_err(|e| self.err(e))?;
            let key = key.value();
            if !key.starts_with(&start) {
                break;
            }
            let (create_revision, mod_revision, value) = v.value();
            out.push(KeyValue {
                key: key[self.prefix.len()..].to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision,
            });
        }
        Ok((out, revision))
    }

    fn list_range(&self, start: &str, end: &str) -> Result<Vec<KeyValue>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let kv = read.open_table(KV).map_err(|e| self.err(e))?;
        let (start, end) = (self.full(start), self.full(end));
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        for entry in kv
            .range(start.as_str()..end.as_str())
            .map_err(|e| self.err(e))?
        {
            let (key, v) = entry.map_err(|e| self.err(e))?;
            let (create_revision, mod_revision, value) = v.value();
            out.push(KeyValue {
                key: key.value()[self.prefix.len()..].to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision,
            });
        }
        Ok(out)
    }

    fn revision(&self) -> Result<Revision, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        read_meta(&meta, META_REVISION).map_err(|e| self.err(e))
    }

    fn txn(&self, txn: &Txn) -> Result<TxnResponse, StoreError> {
        validate(txn)?;
        let mut write = self.db.begin_write().map_err(|e| self.err(e))?;
        write
            .set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        let (response, wrote) = self.write(&write, txn).map_err(|e| self.err(e))?;
        if wrote {
            write.commit().map_err(|e| self.err(e))?;
            self.committed.send_replace(response.revision);
        } else {
            write.abort().map_err(|e| self.err(e))?;
        }
        Ok(response)
    }

    /// The body of [`Inner::txn`]; returns whether anything changed (and so must be committed).
    fn write(
        &self,
        write: &WriteTransaction,
        txn: &Txn,
    ) -> Result<(TxnResponse, bool), redb::Error> {
        let mut kv = write.open_table(KV)?;
        let mut meta = write.open_table(META)?;
        let mut history = write.open_table(HISTORY)?;
        let current = read_meta(&meta, META_REVISION)?;
        let unchanged = |succeeded| {
            let response = TxnResponse {
                succeeded,
                revision: current,
            };
            Ok((response, false))
        };
        for Compare::ModRevision(key, revision) in &txn.compares {
            let actual = kv.get(self.full(key).as_str())?.map_or(0, |v| v.value().1);
            if actual != *revision {
                return unchanged(false);
            }
        }
        let new = current + 1;
        let mut wrote = false;
        for op in &txn.ops {
            match op {
                Op::Put(key, value) => {
                    let full = self.full(key);
                    let created = kv.get(full.as_str())?.map_or(new, |v| v.value().0);
                    kv.insert(full.as_str(), (created, new, value.as_slice()))?;
                    history.insert((new, full.as_str()), (KIND_PUT, created, value.as_slice()))?;
                    wrote = true;
                }
                Op::Delete(key) => {
                    let full = self.full(key);
                    if kv.remove(full.as_str())?.is_some() {
                        history.insert((new, full.as_str()), (KIND_DELETE, 0, &[][..]))?;
                        wrote = true;
                    }
                }
            }
        }
        if !wrote {
            // Like etcd: compares held, but deleting missing keys (or nothing) is no write.
            return unchanged(true);
        }
        meta.insert(META_REVISION, new)?;
        let compacted = read_meta(&meta, META_COMPACTED)?;
        let cutoff = new - self.retained;
        if cutoff > compacted {
            history.retain_in((compacted + 1, "")..(cutoff + 1, ""), |_, _| false)?;
            meta.insert(META_COMPACTED, cutoff)?;
        }
        let response = TxnResponse {
            succeeded: true,
            revision: new,
        };
        Ok((response, true))
    }

    /// Events under the full key prefix `prefix` with revisions in `(after, up_to]`, where
    /// `up_to` is at most one batch past `after`; returns them, `up_to` and the current
    /// revision.
    fn history(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<(Vec<WatchEvent>, Revision, Revision), StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let current = read_meta(&meta, META_REVISION).map_err(|e| self.err(e))?;
        let compacted = read_meta(&meta, META_COMPACTED).map_err(|e| self.err(e))?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after + 1,
                compacted: compacted + 1,
            });
        }
        let up_to = current.min(after + WATCH_BATCH_REVISIONS);
        let mut events = Vec::new();
        if up_to <= after {
            return Ok((events, after, current));
        }
        let history = read.open_table(HISTORY).map_err(|e| self.err(e))?;
        let range = (after + 1, "")..(up_to + 1, "");
        for entry in history.range(range).map_err(|e| self.err(e))? {
            let (key, v) = entry.map_err(|e| self.err(e))?;
            let (revision, key) = key.value();
            if !key.starts_with(prefix) {
                continue;
            }
            let (kind, create_revision, value) = v.value();
            let kind = match kind {
                KIND_PUT => EventKind::Put,
                KIND_DELETE => EventKind::Delete,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "unknown event kind {other} at revision {revision} in {}",
                        self.path.display()
                    )));
                }
            };
            let kv = KeyValue {
                key: key[self.prefix.len()..].to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision: revision,
            };
            events.push(WatchEvent { kind, kv });
        }
        Ok((events, up_to, current))
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.get(&key)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.list(&prefix)).await
    }

    async fn list_range(&self, start: &str, end: &str) -> Result<Vec<KeyValue>, StoreError> {
        let (start, end) = (start.to_owned(), end.to_owned());
        self.blocking(move |inner| inner.list_range(&start, &end))
            .await
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.blocking(Inner::revision).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.blocking(move |inner| inner.txn(&txn)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let watcher = Watcher {
            prefix: self.inner.full(prefix),
            last: after.max(0),
            committed: self.inner.committed.subscribe(),
            pending: VecDeque::new(),
            inner: self.inner.clone(),
        };
        let stream = futures::stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(event) => Some((Ok(event), Some(watcher))),
                // An error ends the stream: the caller lists again and watches from there.
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Box::pin(stream))
    }
}

/// The state of one watch stream: everything up to `last` has been read from history.
struct Watcher {
    inner: Arc<Inner>,
    prefix: String,
    last: Revision,
    committed: watch::Receiver<Revision>,
    pending: VecDeque<WatchEvent>,
}

impl Watcher {
    async fn next(&mut self) -> Result<WatchEvent, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            // Marked seen before reading, so a commit that lands after the read wakes us.
            self.committed.borrow_and_update();
            let (prefix, after) = (self.prefix.clone(), self.last);
            let (events, up_to, current) = run_blocking(self.inner.clone(), move |inner| {
                inner.history(&prefix, after)
            })
            .await?;
            self.last = up_to;
            self.pending.extend(events);
            if self.pending.is_empty() && up_to >= current {
                // The sender lives in `self.inner`, so this cannot fail while we wait.
                let _ = self.committed.changed().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::store::conformance;

    const PREFIX: &str = "/tollgate/v1/";

    fn open(dir: &tempfile::TempDir) -> EmbeddedStore {
        EmbeddedStore::open(&dir.path().join("data/store.redb"), PREFIX).expect("open store")
    }

    async fn put(store: &EmbeddedStore, key: &str, value: &str) -> Revision {
        let response = store.txn(Txn::new().put(key, value)).await.expect("put");
        response.revision
    }

    async fn next(stream: &mut WatchStream) -> Result<WatchEvent, StoreError> {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
    }

    #[tokio::test]
    async fn store_embedded_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        conformance::run_all(Arc::new(open(&dir))).await;
    }

    #[tokio::test]
    async fn store_embedded_reopen_keeps_data_and_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        put(&store, "a", "1").await;
        let last = put(&store, "b", "2").await;
        drop(store);
        let store = open(&dir);
        assert_eq!(store.revision().await.expect("revision"), last);
        let kv = store.get("b").await.expect("get").expect("b kept");
        assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"2"[..], last));
        assert_eq!(put(&store, "c", "3").await, last + 1);
        // History survives too: a watch from 0 replays all three puts.
        let mut stream = store.watch("", 0).await.expect("watch");
        for key in ["a", "b", "c"] {
            assert_eq!(next(&mut stream).await.expect("event").kv.key, key);
        }
    }

    #[tokio::test]
    async fn store_embedded_watch_resumes_without_loss_or_duplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        for i in 0..5 {
            put(&store, &format!("k{i}"), "v").await;
        }
        let mut stream = store.watch("k", 0).await.expect("watch");
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(next(&mut stream).await.expect("event").kv.mod_revision);
        }
        drop(stream);
        for i in 5..8 {
            put(&store, &format!("k{i}"), "v").await;
        }
        let resume_from = seen[seen.len() - 1];
        let mut stream = store.watch("k", resume_from).await.expect("rewatch");
        for _ in 0..5 {
            seen.push(next(&mut stream).await.expect("event").kv.mod_revision);
        }
        assert_eq!(seen, (1..=8).collect::<Vec<_>>());
        let quiet = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
        assert!(quiet.is_err(), "duplicate or extra event: {quiet:?}");
    }

    /// A watcher that does not read while many revisions land (more than one history batch)
    /// still gets each event once, in order, and then live ones.
    #[tokio::test]
    async fn store_embedded_lagging_watch_reads_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let mut stream = store.watch("", 0).await.expect("watch");
        let total = WATCH_BATCH_REVISIONS * 2 + 10;
        for i in 0..total {
            put(&store, &format!("k{i:04}"), "v").await;
        }
        for expected in 1..=total {
            assert_eq!(
                next(&mut stream).await.expect("event").kv.mod_revision,
                expected
            );
        }
        let live = put(&store, "live", "v").await;
        assert_eq!(
            next(&mut stream).await.expect("event").kv.mod_revision,
            live
        );
    }

    #[tokio::test]
    async fn store_embedded_compaction_ends_old_watches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        let store = EmbeddedStore::open_with_retention(&path, PREFIX, 3).expect("open");
        for i in 0..10 {
            put(&store, &format!("k{i}"), "v").await;
        }
        // Revisions 1..=7 are compacted; 8, 9 and 10 remain.
        let mut old = store.watch("", 6).await.expect("watch");
        match next(&mut old).await {
            Err(StoreError::Compacted {
                requested: 7,
                compacted: 8,
            }) => {}
            other => panic!("expected Compacted, got {other:?}"),
        }
        assert!(old.next().await.is_none(), "stream goes on after Compacted");
        let mut kept = store.watch("", 7).await.expect("watch");
        for expected in 8..=10 {
            assert_eq!(
                next(&mut kept).await.expect("event").kv.mod_revision,
                expected
            );
        }
    }

    #[tokio::test]
    async fn store_open_accepts_file_and_etcd_urls_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dir.path().join("via-url/store.redb").display());
        let store = crate::store::open(&url, PREFIX)
            .await
            .expect("open file URL");
        assert_eq!(store.revision().await.expect("revision"), 0);
        for url in [
            "redis://localhost:6379",
            "etcd://",
            "file://",
            "/var/lib/tollgate",
        ] {
            match crate::store::open(url, PREFIX).await {
                Err(StoreError::Invalid(message)) => assert!(message.contains("://"), "{message}"),
                other => panic!("{url}: expected Invalid, got {:?}", other.map(|_| ())),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn store_embedded_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/store.redb");
        let _store = EmbeddedStore::open(&path, PREFIX).expect("open");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn store_embedded_second_open_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _store = open(&dir);
        match EmbeddedStore::open(&dir.path().join("data/store.redb"), PREFIX) {
            Err(StoreError::Unavailable(message)) => assert!(message.contains("in use")),
            other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
        }
    }
}

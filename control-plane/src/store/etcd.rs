//! etcd store: the production backend (HA, what the Helm chart runs).
//!
//! The trait maps onto etcd almost one to one: our revision is etcd's, a `Txn` is an etcd txn
//! comparing `mod_revision` (etcd reports 0 for a missing key, which is exactly our "absent"),
//! `list` is a prefix range, `watch` an etcd watch. What etcd does not give us we add here:
//! a timeout on every call (so a dead etcd fails writes with `Unavailable` instead of hanging
//! them), and a watch that reconnects and resumes after the revision it last delivered.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, EventType, GetOptions,
    Txn as EtcdTxn, TxnOp, WatchOptions,
};

use super::{
    Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, Txn, TxnResponse, WatchEvent,
    WatchStream,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds every call; etcd answers healthy requests in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Keys per range request in `list`, so a big list stays under gRPC's message size limit.
const LIST_PAGE: i64 = 1000;

/// The etcd-backed [`Store`].
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Prepended to every key.
    prefix: String,
    /// What the store was connected to, for error messages (`http://h:p,http://h:p`).
    endpoints: Arc<str>,
}

/// How to reach etcd beyond its addresses: TLS (server CA, optional client certificate) and
/// etcd's own user authentication.
#[derive(Clone, Default)]
pub struct EtcdOptions {
    /// PEM CA bundle of etcd's server certificates; set, endpoints are dialled with https.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for etcd's `--client-cert-auth`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// etcd user and password.
    pub user: Option<(String, String)>,
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("tls", &self.ca_pem.is_some())
            .field("client_cert", &self.identity.is_some())
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (`host:port` or `http://host:port`) and checks that it
    /// answers, so a wrong address fails at startup.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, prefix, &EtcdOptions::default()).await
    }

    /// [`EtcdStore::connect`] with TLS and authentication.
    pub async fn connect_with(
        endpoints: &[String],
        prefix: &str,
        opts: &EtcdOptions,
    ) -> Result<Self, StoreError> {
        let scheme = if opts.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let urls: Vec<String> = endpoints
            .iter()
            .map(|e| match e.split_once("://") {
                Some((_, rest)) => format!("{scheme}://{rest}"),
                None => format!("{scheme}://{e}"),
            })
            .collect();
        let shown = urls.join(",");
        let unreachable = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!(
                "cannot connect to etcd: is etcd reachable at {shown}? ({e})"
            ))
        };
        if urls.is_empty() {
            return Err(StoreError::Invalid("no etcd endpoint given".into()));
        }
        // Keep-alive notices a silently dead connection (a partition) under an idle watch.
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some(ca) = &opts.ca_pem {
            let mut tls = etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(ca));
            if let Some((cert, key)) = &opts.identity {
                tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &opts.user {
            options = options.with_user(user.clone(), password.clone());
        }
        let client = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            Client::connect(&urls, Some(options)),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(unreachable(&e)),
            Err(_) => return Err(unreachable(&"timed out")),
        };
        let store = Self {
            client,
            prefix: prefix.to_owned(),
            endpoints: shown.as_str().into(),
        };
        // The channel connects lazily: ask something so that a wrong address fails here.
        let mut kv = store.client.kv_client();
        let probe = kv.get(store.probe_key(), Some(GetOptions::new().with_count_only()));
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(unreachable(&e)),
            Err(_) => Err(unreachable(&"no answer within 5s")),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A key to read when only the response header matters (etcd refuses an empty key).
    fn probe_key(&self) -> String {
        match self.prefix.is_empty() {
            true => "\0".to_owned(),
            false => self.prefix.clone(),
        }
    }

    /// Runs one etcd call under [`REQUEST_TIMEOUT`], mapping its errors.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        call_etcd(&self.endpoints, call).await
    }

    /// Every key in `[from, end)`, in pages of [`LIST_PAGE`] read at one revision, and that
    /// revision.
    async fn scan(
        &self,
        mut from: Vec<u8>,
        end: Vec<u8>,
    ) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let mut kv = self.client.kv_client();
        let mut read_at = 0;
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if read_at > 0 {
                // Later pages read at the first page's revision: one consistent snapshot.
                options = options.with_revision(read_at);
            }
            let page = self.call(kv.get(from.clone(), Some(options))).await?;
            if read_at == 0 {
                read_at = header_revision(page.header())?;
            }
            for kv in page.kvs() {
                out.push(self.key_value(kv)?);
            }
            match page.kvs().last() {
                Some(last) if page.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok((out, read_at)),
            }
        }
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: relative_key(&self.prefix, kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }
}

async fn call_etcd<T>(
    endpoints: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(etcd_client::Error::GRpcStatus(status)))
            if matches!(
                status.code(),
                // etcd's "too many operations in txn request", "request is too large",
                // "duplicate key given in txn request"; and a message over the gRPC limit.
                tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted
            ) =>
        {
            Err(StoreError::Invalid(status.message().to_owned()))
        }
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "etcd call failed: {e}; is etcd reachable and healthy at {endpoints}?"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd did not answer within {REQUEST_TIMEOUT:?}; is etcd reachable and healthy at {endpoints}?"
        ))),
    }
}

fn relative_key(prefix: &str, key: &[u8]) -> Result<String, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|k| k.strip_prefix(prefix))
        .map(str::to_owned)
        .ok_or_else(|| {
            let shown = String::from_utf8_lossy(key);
            StoreError::Corrupt(format!("etcd key {shown:?} is not UTF-8 under {prefix:?}"))
        })
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty prefix (or all 0xff): "\0" means "to the end of the keyspace" for etcd.
    vec![0]
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Corrupt("etcd response without a header".into()))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut kv = self.client.kv_client();
        let response = self.call(kv.get(self.full(key), None)).await?;
        response
            .kvs()
            .first()
            .map(|kv| self.key_value(kv))
            .transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let full = self.full(prefix);
        self.scan(full.clone().into_bytes(), prefix_end(&full))
            .await
    }

    async fn list_range(&self, start: &str, end: &str) -> Result<Vec<KeyValue>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let (start, end) = (self.full(start), self.full(end));
        Ok(self.scan(start.into_bytes(), end.into_bytes()).await?.0)
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new().with_count_only();
        let response = self
            .call(kv.get(self.prefix.clone(), Some(options)))
            .await?;
        header_revision(response.header())
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|Compare::ModRevision(key, revision)| {
                EtcdCompare::mod_revision(self.full(key), CompareOp::Equal, *revision)
            })
            .collect();
        let ops: Vec<TxnOp> = txn
            .ops
            .into_iter()
            .map(|op| match op {
                Op::Put(key, value) => TxnOp::put(self.full(&key), value, None),
                Op::Delete(key) => TxnOp::delete(self.full(&key), None),
            })
            .collect();
        let mut kv = self.client.kv_client();
        let request = EtcdTxn::new().when(compares).and_then(ops);
        let response = self.call(kv.txn(request)).await?;
        Ok(TxnResponse {
            succeeded: response.succeeded(),
            revision: header_revision(response.header())?,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let mut watcher = Watcher {
            store: self.clone(),
            key: self.full(prefix),
            // etcd reads a start revision <= 0 as "from now": never ask for one.
            next: after.max(0) + 1,
            stream: None,
            pending: VecDeque::new(),
            backoff: BACKOFF_START,
        };
        // Opened now so that a caller starting up against a dead etcd hears about it.
        watcher.stream = Some(watcher.open().await?);
        let stream = futures::stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(event) => Some((Ok(event), Some(watcher))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Box::pin(stream))
    }
}

/// One watch stream that outlives etcd connections: everything before `next` was delivered.
struct Watcher {
    store: EtcdStore,
    /// Full key prefix watched.
    key: String,
    next: Revision,
    stream: Option<etcd_client::WatchStream>,
    pending: VecDeque<WatchEvent>,
    backoff: Duration,
}

impl Watcher {
    async fn open(&self) -> Result<etcd_client::WatchStream, StoreError> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.next);
        let mut client = self.store.client.watch_client();
        self.store
            .call(client.watch(self.key.clone(), Some(options)))
            .await
    }

    async fn next(&mut self) -> Result<WatchEvent, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.open().await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => self.retry_later(e.to_string()).await,
                }
                continue;
            };
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    self.retry_later("etcd ended the watch".into()).await;
                    continue;
                }
                Err(e) => {
                    self.retry_later(e.to_string()).await;
                    continue;
                }
            };
            if response.compact_revision() > 0 {
                return Err(StoreError::Compacted {
                    requested: self.next,
                    compacted: response.compact_revision(),
                });
            }
            if response.canceled() {
                let reason = format!("etcd canceled the watch: {}", response.cancel_reason());
                self.retry_later(reason).await;
                continue;
            }
            self.backoff = BACKOFF_START;
            self.take_events(&response)?;
        }
    }

    /// Queues the events of one response. etcd never splits a revision across responses (we
    /// do not ask for fragments), so advancing `next` past the last one loses nothing.
    fn take_events(&mut self, response: &etcd_client::WatchResponse) -> Result<(), StoreError> {
        let mut events = Vec::new();
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            if kv.mod_revision() < self.next {
                continue; // already delivered before a reconnect
            }
            let kind = match event.event_type() {
                EventType::Put => EventKind::Put,
                EventType::Delete => EventKind::Delete,
            };
            events.push(WatchEvent {
                kind,
                kv: self.store.key_value(kv)?,
            });
        }
        // etcd orders a txn's events as its ops; the trait promises key order.
        events.sort_by(|a, b| (a.kv.mod_revision, &a.kv.key).cmp(&(b.kv.mod_revision, &b.kv.key)));
        if let Some(last) = events.last() {
            self.next = last.kv.mod_revision + 1;
        }
        self.pending.extend(events);
        Ok(())
    }

    /// Drops the broken stream and waits before the next attempt (100 ms doubling to 2 s).
    async fn retry_later(&mut self, why: String) {
        tracing::warn!(
            prefix = %self.key,
            next_revision = self.next,
            retry_in = ?self.backoff,
            "etcd watch interrupted, resuming: {why}"
        );
        self.stream = None;
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_etcd_prefix_end() {
        assert_eq!(prefix_end("a/"), b"a0");
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80");
        assert_eq!(prefix_end(""), b"\0");
    }

    #[test]
    fn store_etcd_relative_key() {
        assert_eq!(
            relative_key("/p/", b"/p/llms/a").expect("under prefix"),
            "llms/a"
        );
        assert!(matches!(
            relative_key("/p/", b"/q/a"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            relative_key("/p/", b"/p/\xff"),
            Err(StoreError::Corrupt(_))
        ));
    }
}

//! The etcd store against a real etcd: the conformance suite, and a watch that survives etcd
//! being killed and restarted.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tollgate_control_plane::store::{
    EtcdStore, EventKind, Revision, Store, StoreError, Txn, WatchEvent, WatchStream, conformance,
};

const ETCD: &str = "/usr/bin/etcd";

/// One single-member etcd on free loopback ports, killed when dropped.
struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    async fn start() -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: these tests need a real etcd; run `apt-get install etcd-server`"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let (client_port, peer_port) = free_ports();
        let child = spawn(dir.path(), client_port, peer_port);
        let etcd = Etcd {
            child,
            dir,
            client_port,
            peer_port,
        };
        etcd.wait_ready().await;
        etcd
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    async fn connect(&self, prefix: &str) -> EtcdStore {
        EtcdStore::connect(&[self.endpoint()], prefix)
            .await
            .expect("connect to etcd")
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match EtcdStore::connect(&[self.endpoint()], "/ready/").await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self.dir.path().join("etcd.log"));
                    panic!(
                        "etcd did not come up: {e}\netcd log:\n{}",
                        log.unwrap_or_default()
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGKILL: no chance to close connections or flush anything gracefully.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts etcd again on the same data directory and ports.
    async fn restart(&mut self) {
        self.child = spawn(self.dir.path(), self.client_port, self.peer_port);
        self.wait_ready().await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, client_port: u16, peer_port: u16) -> Child {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .expect("etcd log file");
    Command::new(ETCD)
        .args(["--name", "test"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("test={peer}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start etcd")
}

/// Two distinct ports that were free a moment ago (the kernel does not hand them out again
/// right away).
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

fn unique_prefix(test: &str) -> String {
    format!("/tollgate-test/{test}/{}/", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_etcd_conformance() {
    let etcd = Etcd::start().await;
    let store = etcd.connect(&unique_prefix("conformance")).await;
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn store_etcd_connect_error_names_the_endpoint() {
    let (port, _) = free_ports();
    let endpoint = format!("127.0.0.1:{port}");
    match EtcdStore::connect(&[endpoint], "/x/").await {
        Err(StoreError::Unavailable(message)) => assert!(
            message.contains(&format!("is etcd reachable at http://127.0.0.1:{port}")),
            "{message}"
        ),
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within 30s"),
    }
}

async fn put(store: &EtcdStore, key: &str, value: &str) -> Revision {
    let response = store.txn(Txn::new().put(key, value)).await.expect("put");
    assert!(response.succeeded);
    response.revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_etcd_watch_survives_restart() {
    let mut etcd = Etcd::start().await;
    let store = etcd.connect(&unique_prefix("restart")).await;
    let r1 = put(&store, "w/a", "1").await;
    let mut stream = store.watch("w/", r1 - 1).await.expect("watch");
    let r2 = put(&store, "w/b", "2").await;
    let mut seen = vec![next_event(&mut stream).await, next_event(&mut stream).await];

    etcd.kill();
    // etcd down: writes fail with Unavailable rather than hang (design §8).
    match store.txn(Txn::new().put("w/x", "lost")).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable while etcd is down, got {other:?}"),
    }
    etcd.restart().await;
    let r3 = put(&store, "w/c", "3").await;
    let r4 = store
        .txn(Txn::new().delete("w/a"))
        .await
        .expect("delete")
        .revision;
    seen.push(next_event(&mut stream).await);
    seen.push(next_event(&mut stream).await);

    let got: Vec<_> = seen
        .iter()
        .map(|e| (e.kind, e.kv.key.as_str(), e.kv.mod_revision))
        .collect();
    let want = [
        (EventKind::Put, "w/a", r1),
        (EventKind::Put, "w/b", r2),
        (EventKind::Put, "w/c", r3),
        (EventKind::Delete, "w/a", r4),
    ];
    assert_eq!(got, want);
    let extra = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    assert!(extra.is_err(), "duplicate or extra event: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_etcd_watch_of_compacted_history_ends_with_compacted() {
    let etcd = Etcd::start().await;
    let store = etcd.connect(&unique_prefix("compacted")).await;
    let r1 = put(&store, "k", "1").await;
    put(&store, "k", "2").await;
    let r3 = put(&store, "k", "3").await;
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .expect("raw etcd client");
    client.compact(r3, None).await.expect("compact");
    let mut stream = store.watch("", r1 - 1).await.expect("watch");
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Err(StoreError::Compacted {
            requested,
            compacted,
        }))) => assert_eq!((requested, compacted), (r1, r3)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "stream goes on after Compacted"
    );
    // From the compaction point on, history is still there.
    let mut stream = store.watch("", r3 - 1).await.expect("watch");
    assert_eq!(next_event(&mut stream).await.kv.mod_revision, r3);
}

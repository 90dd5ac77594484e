//! Starts a gateway on ephemeral ports and talks HTTP to it.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tollgate_proto::sync as pb;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::snapshot::{ResourceSet, build_snapshot};

pub const KEY: &str = "tg_test_key_0123456789abcdef0123456789abcdef";

pub fn key_hash(k: &str) -> [u8; 32] {
    Sha256::digest(k.as_bytes()).into()
}

/// A running gateway; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub usage: std::sync::Arc<crate::usage::Aggregator>,
    _stop: oneshot::Sender<()>,
}

pub fn test_config(control_plane: &str) -> Config {
    let mut c = Config::new(control_plane);
    c.listen = "127.0.0.1:0".parse().expect("addr");
    c.admin_listen = "127.0.0.1:0".parse().expect("addr");
    c.max_body_bytes = 4096;
    c.upstream_idle_timeout_ms = 300;
    c.upstream_first_byte_timeout_ms = 1500;
    c.upstream_connect_timeout_ms = 500;
    c
}

/// Starts a gateway; with `resources`, publishes a snapshot of them (no control plane).
pub async fn start(config: Config, resources: Option<Vec<pb::Resource>>) -> Running {
    let gw = Gateway::bind(config).await.expect("bind");
    if let Some(upserts) = resources {
        let mut set = ResourceSet::default();
        let rejected = set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts,
            removals: vec![],
        });
        assert!(rejected.is_empty(), "{rejected:?}");
        gw.snapshots()
            .store(Some(std::sync::Arc::new(build_snapshot(&set).0)));
    }
    let (tx, rx) = oneshot::channel();
    let running = Running {
        addr: gw.listen_addr(),
        admin: gw.admin_addr(),
        usage: gw.usage(),
        _stop: tx,
    };
    tokio::spawn(gw.serve(async {
        let _ = rx.await;
    }));
    running
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Sends a request and returns the response with its body still streaming.
pub async fn send(
    method: &str,
    url: String,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> http::Response<Incoming> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client()
        .request(req.body(Full::new(body.into())).expect("request"))
        .await
        .expect("send")
}

/// Sends and reads the whole answer.
pub async fn call(
    method: &str,
    url: String,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (u16, String) {
    let resp = send(method, url, headers, body).await;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub fn bearer() -> String {
    format!("Bearer {KEY}")
}

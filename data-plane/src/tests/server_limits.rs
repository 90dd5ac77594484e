//! The app-facing listener bounds slow and numerous clients.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::{call, start, test_config};

#[tokio::test]
async fn a_slow_request_head_is_cut_off() {
    let mut config = test_config("http://127.0.0.1:9");
    config.header_read_timeout_ms = 200;
    let gw = start(config, None).await;
    let mut conn = TcpStream::connect(gw.addr).await.expect("connect");
    conn.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // Never finish the head: the gateway must close the connection (hyper may answer 408
    // first), not wait forever.
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "connection still open after 3 s");
}

#[tokio::test]
async fn connections_above_the_cap_wait_for_a_free_slot() {
    let mut config = test_config("http://127.0.0.1:9");
    config.max_connections = 1;
    let gw = start(config, None).await;
    let holder = TcpStream::connect(gw.addr).await.expect("connect");
    // Let the accept loop take the first connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("http://{}/v1/models", gw.addr);
    let waiting = tokio::spawn(async move { call("GET", url, &[], "").await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "served above the connection cap");
    drop(holder);
    let (status, _) = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a slot is free")
        .expect("task");
    // Served (no snapshot yet: 503).
    assert_eq!(status, 503);
}

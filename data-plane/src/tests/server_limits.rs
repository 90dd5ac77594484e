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

#[tokio::test]
async fn a_stalled_request_body_gets_408() {
    use crate::snapshot::build::tests::{conn, key, repo};
    let resources = vec![
        conn("c1", 1, "oa", &["gpt-4o"], "http://127.0.0.1:9/v1"),
        repo("r1", &["c1"], vec![]),
        key("k1", "r1", super::harness::key_hash(super::harness::KEY), 0),
    ];
    let mut config = test_config("http://127.0.0.1:9");
    config.body_read_timeout_ms = 200;
    let gw = start(config, Some(resources)).await;
    let mut conn = TcpStream::connect(gw.addr).await.expect("connect");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":",
        super::harness::bearer()
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    // The body stops after 9 of its 100 bytes: the gateway answers 408 and lets go.
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "connection still open after 3 s");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn a_draining_gateway_is_not_ready_and_finishes_open_requests() {
    use super::upstream_safety::{gateway, with_repo};
    let (upstream, _mock) = super::mock_upstream::start().await;
    let resources = with_repo(vec![crate::snapshot::build::tests::conn(
        "c1",
        1,
        "oa",
        &["think"],
        &format!("http://{upstream}/v1"),
    )]);
    let gw = gateway(resources, false).await;
    let readyz = format!("http://{}/readyz", gw.admin);
    assert_eq!(call("GET", readyz.clone(), &[], "").await.0, 200);
    let (app, admin) = (gw.addr, gw.admin);
    // A request the provider answers after 600 ms, then shutdown while it is open.
    let open = tokio::spawn(async move {
        let auth = super::harness::bearer();
        call(
            "POST",
            format!("http://{app}/v1/chat/completions"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            r#"{"model":"oa/think","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(gw);
    let mut readiness = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        readiness = call("GET", readyz.clone(), &[], "").await.0;
        if readiness == 503 {
            break;
        }
    }
    assert_eq!(readiness, 503, "still ready while draining ({admin})");
    assert!(
        TcpStream::connect(app).await.is_err(),
        "new connections are refused while draining"
    );
    let (status, body) = open.await.expect("task");
    assert_eq!(status, 200, "the open request is answered: {body}");
}

#[tokio::test]
async fn the_drain_delay_keeps_taking_requests_while_not_ready() {
    let mut config = test_config("http://127.0.0.1:9");
    config.drain_delay_ms = 500;
    let gw = start(config, None).await;
    let (app, admin) = (gw.addr, gw.admin);
    drop(gw);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        call("GET", format!("http://{admin}/readyz"), &[], "")
            .await
            .0,
        503
    );
    // Not ready, yet still served (no snapshot: 503 from the app port, not a refused
    // connection).
    let url = format!("http://{app}/v1/models");
    assert_eq!(call("GET", url, &[], "").await.0, 503);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        TcpStream::connect(app).await.is_err(),
        "the listener closes after the delay"
    );
}

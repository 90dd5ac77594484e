//! The real server over HTTP with a hand-made snapshot and the mock OpenAI upstream.

use std::time::Duration;

use http_body_util::BodyExt;

use super::harness::{KEY, bearer, call, key_hash, send, start, test_config};
use super::mock_upstream::{self, CHUNK1, CHUNK2, DONE, USAGE};
use super::usage_sink::UsageSink;
use crate::snapshot::build::tests::{conn, key, repo};

/// A gateway whose repository has the mock (`oa`, OpenAI) and a dead endpoint (`down`).
async fn setup() -> (Gateway, std::sync::Arc<mock_upstream::Mock>) {
    let (mock_addr, mock) = mock_upstream::start().await;
    // A port that refuses connections: bound then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let resources = vec![
        conn(
            "c1",
            1,
            "oa",
            &["gpt-4o", "slow", "limited"],
            &format!("http://{mock_addr}/v1"),
        ),
        conn(
            "c2",
            5,
            "down",
            &["gpt-4o", "only-down"],
            &format!("http://{dead}/v1"),
        ),
        repo("r1", &["c1", "c2"], vec![]),
        key("k1", "r1", key_hash(KEY), 0),
    ];
    // Usage goes to a sink: the reporter may send it before the test looks.
    let sink = UsageSink::start().await;
    let gw = start(test_config(&sink.url), Some(resources)).await;
    (Gateway { gw, sink }, mock)
}

/// The gateway under test and where its usage goes.
struct Gateway {
    gw: super::harness::Running,
    sink: UsageSink,
}

impl std::ops::Deref for Gateway {
    type Target = super::harness::Running;
    fn deref(&self) -> &Self::Target {
        &self.gw
    }
}

fn url(gw: &Gateway, path: &str) -> String {
    format!("http://{}{path}", gw.addr)
}

/// The usage recorded so far, waiting a little for a meter still in flight.
async fn usage_records(gw: &Gateway) -> Vec<tollgate_proto::sync::UsageRecord> {
    for _ in 0..40 {
        let recs = gw.sink.take(gw);
        if !recs.is_empty() {
            return recs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn non_stream_rewrites_only_the_model() {
    let (gw, mock) = setup().await;
    let body = r#"{"model":"oa/gpt-4o", "messages":[{"role":"user","content":"say \"model\""}],"x_unknown":{"model":1}}"#;
    let (status, answer) = call(
        "POST",
        url(&gw, "/v1/chat/completions"),
        &[("authorization", &bearer())],
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"Hello\""), "{answer}");
    let seen = mock.requests.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "Bearer sk-c1");
    assert_eq!(
        &seen[0].1[..],
        body.replace("oa/gpt-4o", "gpt-4o").as_bytes()
    );
    // Usage is counted from the provider's answer.
    let recs = usage_records(&gw).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        (
            recs[0].tokens_in,
            recs[0].tokens_out,
            recs[0].api_calls,
            recs[0].errors
        ),
        (9, 1, 1, 0)
    );
    assert_eq!(
        (
            recs[0].ai_llm_id.as_str(),
            recs[0].api_key_id.as_str(),
            recs[0].model.as_str()
        ),
        ("c1", "k1", "gpt-4o")
    );
}

#[tokio::test]
async fn stream_is_forwarded_chunk_by_chunk_without_the_injected_usage_chunk() {
    let (gw, mock) = setup().await;
    let body = r#"{"model":"oa/gpt-4o","stream":true,"messages":[]}"#;
    let resp = send(
        "POST",
        url(&gw, "/v1/chat/completions"),
        &[("authorization", &bearer())],
        body,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The first chunk arrives while the upstream is still holding the rest back.
    let first = tokio::time::timeout(Duration::from_secs(2), body.frame())
        .await
        .expect("first chunk before the stream ends")
        .expect("frame")
        .expect("ok");
    assert_eq!(first.into_data().expect("data"), CHUNK1.as_bytes());
    mock.release.notify_one();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], format!("{CHUNK2}{DONE}").as_bytes());
    // The gateway asked upstream for usage...
    let sent: serde_json::Value =
        serde_json::from_slice(&mock.requests.lock().expect("lock")[0].1).expect("json");
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // ...and counted it.
    let recs = usage_records(&gw).await;
    assert_eq!((recs[0].tokens_in, recs[0].tokens_out), (11, 2));
}

#[tokio::test]
async fn stream_keeps_usage_chunk_the_client_asked_for() {
    let (gw, mock) = setup().await;
    mock.release.notify_one();
    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#;
    // `gpt-4o` is exposed by both connections; when the spread picks the dead one first, the
    // call fails over to the mock.
    let (status, answer) = call(
        "POST",
        url(&gw, "/v1/chat/completions"),
        &[("authorization", &bearer())],
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, format!("{CHUNK1}{CHUNK2}{USAGE}{DONE}"));
}

/// (headers, body, expected status, expected error code)
type Case<'a> = (Vec<(&'a str, &'a str)>, String, u16, &'a str);

#[tokio::test]
async fn client_errors() {
    let (gw, _mock) = setup().await;
    let chat = url(&gw, "/v1/chat/completions");
    let auth = bearer();
    let cases: Vec<Case> = vec![
        (
            vec![],
            r#"{"model":"gpt-4o"}"#.into(),
            401,
            "invalid_api_key",
        ),
        (
            vec![("authorization", "Bearer tg_nope")],
            r#"{"model":"gpt-4o"}"#.into(),
            401,
            "invalid_api_key",
        ),
        (
            vec![("authorization", &auth)],
            r#"{"model":"gpt-9"}"#.into(),
            404,
            "model_not_found",
        ),
        (
            vec![("authorization", &auth)],
            r#"{"model":"oa/only-down"}"#.into(),
            404,
            "model_not_found",
        ),
        (
            vec![("authorization", &auth)],
            r#"{"model": "#.into(),
            400,
            "invalid_json",
        ),
        (
            vec![("authorization", &auth)],
            r#"{"messages":[]}"#.into(),
            400,
            "missing_model",
        ),
        (
            vec![("authorization", &auth)],
            format!(r#"{{"model":"gpt-4o","pad":"{}"}}"#, "x".repeat(5000)),
            413,
            "request_too_large",
        ),
    ];
    for (headers, body, status, code) in cases {
        let (got, answer) = call("POST", chat.clone(), &headers, body).await;
        assert_eq!(
            (got, error_code(&answer).as_str()),
            (status, code),
            "{answer}"
        );
    }
    let (got, answer) = call(
        "POST",
        chat.clone(),
        &[("authorization", &auth)],
        &b"\xff\xfe{"[..],
    )
    .await;
    assert_eq!(got, 400, "{answer}");
    let (got, answer) = call("GET", url(&gw, "/v1/nope"), &[], "").await;
    assert_eq!((got, error_code(&answer).as_str()), (404, "unknown_url"));
    let (got, _) = call("GET", chat, &[], "").await;
    assert_eq!(got, 405);
    assert!(answer.contains("/v1/nope"));
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let (gw, _mock) = setup().await;
    let chat = url(&gw, "/v1/chat/completions");
    let (status, answer) = call(
        "POST",
        chat.clone(),
        &[("authorization", &bearer())],
        r#"{"model":"down/only-down"}"#,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (502, "bad_gateway"),
        "{answer}"
    );
    let (status, answer) = call(
        "POST",
        chat.clone(),
        &[("authorization", &bearer())],
        r#"{"model":"oa/slow"}"#,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (504, "gateway_timeout"),
        "{answer}"
    );
    // A provider error passes through with its status and body.
    let (status, answer) = call(
        "POST",
        chat.clone(),
        &[("authorization", &bearer())],
        r#"{"model":"oa/limited"}"#,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (429, "rate_limit_exceeded"),
        "{answer}"
    );
    // A bare name on both connections fails over from the dead one to the mock.
    for _ in 0..2 {
        let (status, answer) = call(
            "POST",
            chat.clone(),
            &[("authorization", &bearer())],
            r#"{"model":"gpt-4o"}"#,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
}

#[tokio::test]
async fn models_lists_qualified_and_bare_names() {
    let (gw, _mock) = setup().await;
    let (status, answer) = call(
        "GET",
        url(&gw, "/v1/models"),
        &[("authorization", &bearer())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"oa/gpt-4o") && ids.contains(&"gpt-4o") && ids.contains(&"down/only-down"),
        "{ids:?}"
    );
    let (status, _) = call("GET", url(&gw, "/v1/models"), &[], "").await;
    assert_eq!(status, 401);

    // One model: by qualified name (the `/` as it is or encoded) or bare name.
    for path in ["/v1/models/oa/gpt-4o", "/v1/models/oa%2Fgpt-4o"] {
        let (status, answer) =
            call("GET", url(&gw, path), &[("authorization", &bearer())], "").await;
        assert_eq!(status, 200, "{path}: {answer}");
        let m: serde_json::Value = serde_json::from_str(&answer).expect("json");
        assert_eq!(
            (m["id"].as_str(), m["object"].as_str()),
            (Some("oa/gpt-4o"), Some("model"))
        );
    }
    let (status, answer) = call(
        "GET",
        url(&gw, "/v1/models/gpt-4o"),
        &[("authorization", &bearer())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        "GET",
        url(&gw, "/v1/models/nope"),
        &[("authorization", &bearer())],
        "",
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (404, "model_not_found"),
        "{answer}"
    );
    assert_eq!(
        call("GET", url(&gw, "/v1/models/gpt-4o"), &[], "").await.0,
        401
    );
}

#[tokio::test]
async fn admin_port_before_any_snapshot() {
    let gw = start(test_config("http://127.0.0.1:9"), None).await;
    let admin = |p: &str| format!("http://{}{p}", gw.admin);
    assert_eq!(call("GET", admin("/healthz"), &[], "").await.0, 200);
    assert_eq!(call("GET", admin("/readyz"), &[], "").await.0, 503);
    let (status, metrics) = call("GET", admin("/metrics"), &[], "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("tollgate_usage_reports_pending"),
        "{metrics}"
    );
    let (status, answer) = call(
        "POST",
        format!("http://{}/v1/chat/completions", gw.addr),
        &[("authorization", &bearer())],
        "{}",
    )
    .await;
    assert_eq!(
        (status, error_code(&answer).as_str()),
        (503, "no_configuration")
    );
}

#[tokio::test]
async fn client_disconnect_mid_stream_still_records_usage() {
    let (gw, _mock) = setup().await;
    let body = r#"{"model":"oa/gpt-4o","stream":true}"#;
    let resp = send(
        "POST",
        url(&gw, "/v1/chat/completions"),
        &[("authorization", &bearer())],
        body,
    )
    .await;
    let mut body = resp.into_body();
    let first = body.frame().await.expect("frame").expect("ok");
    assert!(first.is_data());
    // The client goes away while the upstream still holds the rest of the stream.
    drop(body);
    for _ in 0..40 {
        let recs = gw.sink.take(&gw);
        if let Some(r) = recs.first() {
            assert_eq!((r.api_calls, r.ai_llm_id.as_str()), (1, "c1"));
            // The usage chunk never came: one token per streamed delta, no prompt count,
            // and the call is an error (client cancelled).
            assert_eq!((r.tokens_in, r.tokens_out, r.errors), (0, 1, 1), "{r:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("usage of the cancelled stream was not recorded");
}

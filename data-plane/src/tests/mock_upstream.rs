//! A mock OpenAI provider. Behaviour is chosen by the upstream model name:
//! `slow` never answers in time; `think` answers after 600 ms; `huge` answers 17 MiB;
//! `huge-error` fails with a 100 KiB body; `echo-key` fails echoing the key it was sent;
//! streams send one chunk, wait for `release`, then the rest (so a test can prove chunks
//! are forwarded before the stream ends).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::body::{RespBody, full};

/// What the mock saw and the knob of its streams.
#[derive(Default)]
pub struct Mock {
    /// (authorization header, body) of every request.
    pub requests: Mutex<Vec<(String, Bytes)>>,
    /// Streams pause after their first chunk until notified.
    pub release: Notify,
}

pub const CHUNK1: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n";
pub const CHUNK2: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n";
pub const USAGE: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n";
pub const DONE: &str = "data: [DONE]\n\n";

/// Starts the mock on an ephemeral port.
pub async fn start() -> (SocketAddr, Arc<Mock>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    let addr = listener.local_addr().expect("addr");
    let mock = Arc::new(Mock::default());
    let m = mock.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let m = m.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(m.clone(), req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, mock)
}

async fn handle(
    mock: Arc<Mock>,
    req: http::Request<Incoming>,
) -> Result<http::Response<RespBody>, Infallible> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    mock.requests
        .lock()
        .expect("lock")
        .push((auth.clone(), body.clone()));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = v["model"].as_str().unwrap_or("").to_owned();
    if model == "slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if model == "think" {
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    if let Some(r) = special(&model, &auth) {
        return Ok(r);
    }
    if model == "limited" {
        let mut r = http::Response::new(full(
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        ));
        *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(r);
    }
    if v["stream"] == serde_json::Value::Bool(true) {
        let with_usage = v["stream_options"]["include_usage"] == serde_json::Value::Bool(true);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, crate::body::BoxError>>(8);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(Frame::data(Bytes::from_static(CHUNK1.as_bytes()))))
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), mock.release.notified()).await;
            let _ = tx
                .send(Ok(Frame::data(Bytes::from_static(CHUNK2.as_bytes()))))
                .await;
            if with_usage {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(USAGE.as_bytes()))))
                    .await;
            }
            let _ = tx
                .send(Ok(Frame::data(Bytes::from_static(DONE.as_bytes()))))
                .await;
        });
        let stream = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut r = http::Response::new(RespBody::stream(stream));
        r.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("text/event-stream"),
        );
        return Ok(r);
    }
    let answer = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    });
    let mut r = http::Response::new(full(answer.to_string()));
    let h = r.headers_mut();
    h.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    h.insert("x-request-id", http::HeaderValue::from_static("req-1"));
    // Real OpenAI echoes the organization the request named.
    h.insert(
        "openai-organization",
        http::HeaderValue::from_static("org-stored-key"),
    );
    Ok(r)
}

/// The oversized and credential-echoing answers.
fn special(model: &str, auth: &str) -> Option<http::Response<RespBody>> {
    let (status, body) = match model {
        "huge" => (200, "x".repeat(17 * 1024 * 1024)),
        "huge-error" => (500, "e".repeat(100 * 1024)),
        "echo-key" => (
            401,
            serde_json::json!({"error": {
                "message": format!("Incorrect API key provided: {}.", auth.trim_start_matches("Bearer ")),
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
            .to_string(),
        ),
        _ => return None,
    };
    let mut r = http::Response::new(full(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    Some(r)
}

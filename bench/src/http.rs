//! A pooled plaintext HTTP/1.1 client for loopback requests of the harness itself.

use std::sync::OnceLock;

use anyhow::{Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector)
    })
}

/// `GET http://127.0.0.1:{port}{path}`; the body of a 200 answer.
pub async fn get(port: u16, path: &str) -> Result<String> {
    let req = http::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .body(Full::new(Bytes::new()))?;
    let resp = client().request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("GET {path}: {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The status of one plain chat completion of `model` to `port` (with `key`, if any).
pub async fn chat_status(port: u16, key: Option<&str>, model: &str) -> Result<http::StatusCode> {
    let req = chat_request(port, key, &crate::wrk::chat_body(model))?;
    Ok(client().request(req).await?.status())
}

/// A chat completion request to `port` (with `key` as the Bearer token, if any).
pub fn chat_request(
    port: u16,
    key: Option<&str>,
    body: &str,
) -> Result<http::Request<Full<Bytes>>> {
    let mut req = http::Request::post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    Ok(req.body(Full::new(Bytes::from(body.to_owned())))?)
}

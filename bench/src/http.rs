//! A pooled HTTP/1.1 client for loopback requests of the harness itself: plain HTTP, and
//! HTTPS to the mock upstream when it serves TLS (`load --upstream-tls`), trusting only the
//! run's CA ([`trust`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The CAs HTTPS requests trust; none unless [`trust`] was called before the first request.
static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();

/// Trusts the CA of `pem` for HTTPS requests (call before the first request).
pub fn trust(pem: &Path) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem).context("the run's CA")? {
        roots.add(cert?)?;
    }
    ROOTS
        .set(roots)
        .map_err(|_| anyhow::anyhow!("trust() after the first request"))
}

pub fn client() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let roots = ROOTS.get_or_init(rustls::RootCertStore::empty).clone();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(https)
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
    let origin = format!("http://127.0.0.1:{port}");
    let req = chat_request(&origin, key, &crate::wrk::chat_body(model))?;
    Ok(client().request(req).await?.status())
}

/// A chat completion request to `origin` (`http(s)://127.0.0.1:PORT`, with `key` as the
/// Bearer token, if any).
pub fn chat_request(
    origin: &str,
    key: Option<&str>,
    body: &str,
) -> Result<http::Request<Full<Bytes>>> {
    let mut req = http::Request::post(format!("{origin}/v1/chat/completions"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    Ok(req.body(Full::new(Bytes::from(body.to_owned())))?)
}

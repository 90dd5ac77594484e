//! The one pooled HTTP client to providers (hyper-util legacy client over hyper-rustls with
//! the ring provider, HTTP/1.1 and HTTP/2 by ALPN), and the timeouts and size caps around its
//! calls. Its connector refuses link-local and metadata addresses (see `crate::net`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::scrub::scrub;
use crate::error::ProxyError;
use crate::net::GuardedConnector;
use crate::secret::Secret;

/// The pooled client; cheap to clone.
pub type HttpsClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// Largest provider error body read; they are short messages (DESIGN §7 memory budget).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest non-streamed provider answer buffered (to read usage or translate it).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Builds the client. TLS roots are the webpki roots (providers use public CAs). Link-local
/// and metadata addresses are reached only when `allow_link_local`.
pub fn build_client(
    connect_timeout: Duration,
    allow_link_local: bool,
) -> anyhow::Result<HttpsClient> {
    let mut connector = GuardedConnector::new(allow_link_local);
    let http = connector.http_mut();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)?
        // On-prem OpenAI-compatible endpoints are often plain http on a private network.
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

/// Sends `req`; the response head must come within `first_byte`.
pub async fn send(
    client: &HttpsClient,
    req: http::Request<Full<Bytes>>,
    first_byte: Duration,
) -> Result<http::Response<Incoming>, ProxyError> {
    match tokio::time::timeout(first_byte, client.request(req)).await {
        Err(_) => Err(ProxyError::UpstreamTimeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) if e.is_connect() => Err(ProxyError::UpstreamConnect(error_chain(&e))),
        Ok(Err(e)) => Err(ProxyError::BadUpstream(error_chain(&e))),
    }
}

/// Reads a whole successful answer (at most [`MAX_ANSWER_BYTES`]), allowing at most `idle`
/// between chunks.
pub async fn collect_answer(body: Incoming, idle: Duration) -> Result<Bytes, ProxyError> {
    collect(body, idle, MAX_ANSWER_BYTES, "answer").await
}

/// Reads a provider error body (at most [`MAX_ERROR_BODY_BYTES`]) and removes the
/// credentials of the call from it: providers sometimes echo the key they were sent.
pub async fn collect_error(
    body: Incoming,
    idle: Duration,
    secrets: &[Option<&Secret>],
) -> Result<Bytes, ProxyError> {
    let bytes = collect(body, idle, MAX_ERROR_BODY_BYTES, "error answer").await?;
    Ok(scrub(bytes, secrets))
}

async fn collect(
    mut body: Incoming,
    idle: Duration,
    limit: usize,
    what: &str,
) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::BadUpstream(format!(
            "the provider's {what} is larger than the gateway's limit of {}",
            human_size(limit)
        ))
    };
    if http_body::Body::size_hint(&body)
        .exact()
        .is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ProxyError::UpstreamTimeout),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(ProxyError::BadUpstream(error_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// "outer: inner: root" — hyper's top-level messages alone ("client error (Connect)") do not
/// say what went wrong. These errors never contain headers, so no secret.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

//! The one pooled HTTP client to providers (hyper-util legacy client over hyper-rustls with
//! the ring provider, HTTP/1.1 and HTTP/2 by ALPN), and the timeouts around its calls.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ProxyError;

/// The pooled client; cheap to clone.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest non-streamed provider answer we buffer (to read usage or translate it).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Builds the client. TLS roots are the webpki roots (providers use public CAs).
pub fn build_client(connect_timeout: Duration) -> anyhow::Result<HttpsClient> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)?
        // On-prem OpenAI-compatible endpoints are often plain http on a private network.
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

/// Sends `req`; the response head must come within `idle`.
pub async fn send(
    client: &HttpsClient,
    req: http::Request<Full<Bytes>>,
    idle: Duration,
) -> Result<http::Response<Incoming>, ProxyError> {
    match tokio::time::timeout(idle, client.request(req)).await {
        Err(_) => Err(ProxyError::UpstreamTimeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) if e.is_connect() => Err(ProxyError::UpstreamConnect(error_chain(&e))),
        Ok(Err(e)) => Err(ProxyError::BadUpstream(error_chain(&e))),
    }
}

/// Reads a whole answer, allowing at most `idle` between chunks.
pub async fn collect(mut body: Incoming, idle: Duration) -> Result<Bytes, ProxyError> {
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ProxyError::UpstreamTimeout),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(ProxyError::BadUpstream(error_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > MAX_RESPONSE_BYTES {
                        return Err(ProxyError::BadUpstream("answer larger than 64 MiB".into()));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
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

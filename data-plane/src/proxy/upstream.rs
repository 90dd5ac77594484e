//! The HTTP client to providers: one pool of connections per worker thread, over
//! hyper-rustls (ring provider, HTTP/1.1 and HTTP/2 by ALPN), and the timeouts and size caps
//! around its calls. Its connector refuses link-local and metadata addresses (see
//! `crate::net`).
//!
//! Why not hyper-util's pooled client: it spawns a task per HTTP/1 request to wait for the
//! connection to become idle again, and takes a pool lock, hashes the origin with SipHash and
//! allocates a checkout twice per request; under load that was 14% of the data plane's user
//! CPU (docs/benchmarks.md). Here each worker's pool is a short list per origin: a request
//! takes the first connection hyper reports ready (an HTTP/1 connection becomes ready again
//! once its previous exchange is over; an HTTP/2 one serves many at once), and the connection
//! stays listed while in use, so nothing has to hand it back.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;

use bytes::Bytes;
use futures::future::Either;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::time::error::Elapsed;
use tower::ServiceExt;

use super::scrub::scrub;
use crate::body::Gathered;
use crate::error::ProxyError;
use crate::net::{EgressProxy, GuardedConnector};
use crate::secret::Secret;

/// Largest provider error body read; they are short messages (DESIGN §7 memory budget).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest non-streamed provider answer buffered (to read usage or translate it).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A worker's pool of provider connections; cheap to clone.
#[derive(Clone)]
pub struct HttpsClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient").finish_non_exhaustive()
    }
}

struct Inner {
    connector: HttpsConnector<GuardedConnector>,
    /// Uncontended: only its worker thread uses a pool.
    origins: Mutex<Vec<Origin>>,
}

/// The connections to one scheme + host + port.
struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header of HTTP/1 requests (the port only when not the scheme's default).
    host: HeaderValue,
    conns: Vec<Pooled>,
}

struct Pooled {
    sender: Sender,
    last_used: Instant,
}

impl Pooled {
    /// Open, and not unused for longer than [`IDLE_TIMEOUT`].
    fn is_alive(&self, now: Instant) -> bool {
        let idle_too_long =
            self.sender.is_ready() && now.duration_since(self.last_used) > IDLE_TIMEOUT;
        !self.sender.is_closed() && !idle_too_long
    }
}

/// A request handed to a pooled connection, or given back when none was ready.
#[allow(clippy::large_enum_variant)] // Lives for one call; boxing would allocate per request.
enum Checkout<F> {
    Sent(F),
    Empty(Request<Full<Bytes>>),
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

type Sent = Result<Response<Incoming>, TrySendError<Request<Full<Bytes>>>>;

impl Sender {
    fn is_ready(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_ready(),
            Sender::H2(s) => s.is_ready(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Puts `req` in the form its protocol wants and hands it to the connection. HTTP/1 gets
    /// origin-form (`/path?query`) and a `Host` header; HTTP/2 takes scheme and authority from
    /// the absolute URI.
    fn send(
        &mut self,
        mut req: Request<Full<Bytes>>,
        host: &HeaderValue,
    ) -> impl Future<Output = Sent> + use<> {
        match self {
            Sender::H1(s) => {
                req.headers_mut()
                    .entry(http::header::HOST)
                    .or_insert_with(|| host.clone());
                let uri = req.uri_mut();
                *uri = uri
                    .path_and_query()
                    .map(|p| Uri::from(p.clone()))
                    .unwrap_or_else(|| Uri::from_static("/"));
                Either::Left(s.try_send_request(req))
            }
            Sender::H2(s) => Either::Right(s.try_send_request(req)),
        }
    }
}

/// The TLS settings of provider connections (rustls, ring): the public roots of
/// `webpki-roots` (hosted providers), plus the CA certificates of the PEM file `ca_file` when
/// given, for endpoints whose certificate a private CA signed (self-hosted models). `flag`
/// names the file's option in errors.
pub fn upstream_tls(flag: &str, ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = ca_file {
        let shown = file.display();
        let certs = CertificateDer::pem_file_iter(file)
            .with_context(|| format!("{flag} {shown}"))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{flag} {shown}: not a PEM file of certificates"))?;
        if certs.is_empty() {
            anyhow::bail!("{flag} {shown}: no PEM certificate (BEGIN CERTIFICATE) in it");
        }
        for (i, cert) in certs.into_iter().enumerate() {
            roots.add(cert).with_context(|| {
                format!(
                    "{flag} {shown}: certificate {} is not usable as a CA",
                    i + 1
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How provider connections leave the process: the TLS trust ([`upstream_tls`]), the egress
/// proxy of the environment (`HTTPS_PROXY`, ...), and whether link-local and metadata
/// addresses may be reached. Built once at start; every worker's client clones it, and the
/// control plane's validation calls use the same.
#[derive(Clone, Debug)]
pub struct Egress {
    pub tls: rustls::ClientConfig,
    pub proxy: Option<EgressProxy>,
    pub allow_link_local: bool,
}

impl Egress {
    /// The public roots plus `ca_file`'s CAs (`flag` names it in errors), and the proxy
    /// variables of this process's environment.
    pub fn new(flag: &str, ca_file: Option<&Path>, allow_link_local: bool) -> anyhow::Result<Self> {
        let proxy = EgressProxy::from_env().map_err(anyhow::Error::msg)?;
        if let Some(proxy) = &proxy {
            tracing::info!(
                "provider connections go through the egress proxy of the environment: {}",
                proxy.summary()
            );
        }
        Ok(Egress {
            tls: upstream_tls(flag, ca_file)?,
            proxy,
            allow_link_local,
        })
    }

    /// The connector of provider calls made as this says: TLS by ALPN (HTTP/2 or
    /// HTTP/1.1; plain `http://` too: on-prem OpenAI-compatible endpoints are often plain
    /// http on a private network), TCP_NODELAY, at most `connect_timeout` to connect (or to
    /// open the proxy's tunnel).
    pub fn connector(&self, connect_timeout: Duration) -> HttpsConnector<GuardedConnector> {
        let mut connector = GuardedConnector::new(self.allow_link_local, self.proxy.clone());
        connector.set_connect_timeout(Some(connect_timeout));
        connector.http_mut().set_nodelay(true);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector)
    }
}

/// Builds a worker's client, its connections made as `egress` says.
pub fn build_client(egress: &Egress, connect_timeout: Duration) -> HttpsClient {
    let https = egress.connector(connect_timeout);
    HttpsClient {
        inner: Arc::new(Inner {
            connector: https,
            origins: Mutex::new(Vec::new()),
        }),
    }
}

impl HttpsClient {
    /// Sends `req` (an absolute URI) on a pooled connection to its origin, or a new one. A
    /// request a pooled connection closed before writing it goes out once more on a new
    /// connection; one already written is not resent (the caller's retry rule decides).
    pub async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let uri = req.uri();
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(ProxyError::BadUpstream(format!(
                "the provider URL {uri} has no scheme or host"
            )));
        };
        let req = match self.checkout(&scheme, &authority, req) {
            Checkout::Sent(sent) => match sent.await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(req) => req,
                    None => return Err(send_error(&e.into_error())),
                },
            },
            Checkout::Empty(req) => req,
        };
        // Boxed: connecting (TLS, HTTP/2 handshake) is rare and its state is kilobytes, which
        // every request's future would otherwise carry and copy.
        let mut sender = Box::pin(self.connect(&scheme, &authority)).await?;
        let sent = {
            let mut origins = self.origins();
            let origin = origin(&mut origins, &scheme, &authority);
            let sent = sender.send(req, &origin.host);
            origin.conns.push(Pooled {
                sender,
                last_used: Instant::now(),
            });
            sent
        };
        sent.await.map_err(|e| send_error(e.error()))
    }

    fn origins(&self) -> MutexGuard<'_, Vec<Origin>> {
        self.inner
            .origins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends on a ready pooled connection, dropping closed and long-unused ones it passes;
    /// gives `req` back when none is ready.
    fn checkout(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        req: Request<Full<Bytes>>,
    ) -> Checkout<impl Future<Output = Sent> + use<>> {
        let now = Instant::now();
        let mut origins = self.origins();
        let origin = origin(&mut origins, scheme, authority);
        // From the most recently added; dead connections met on the way are dropped.
        let mut i = origin.conns.len();
        while i > 0 {
            i -= 1;
            if !origin.conns[i].is_alive(now) {
                origin.conns.swap_remove(i);
                continue;
            }
            let c = &mut origin.conns[i];
            if c.sender.is_ready() {
                c.last_used = now;
                return Checkout::Sent(c.sender.send(req, &origin.host));
            }
        }
        Checkout::Empty(req)
    }

    /// Opens a connection (TLS with ALPN for `https`) and starts its task on this worker.
    async fn connect(&self, scheme: &Scheme, authority: &Authority) -> Result<Sender, ProxyError> {
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| ProxyError::BadUpstream(e.to_string()))?;
        let io = self
            .inner
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(|e| {
                let mut message = error_chain(&*e);
                if unknown_issuer(&*e) {
                    message.push_str(UNKNOWN_ISSUER_HINT);
                }
                ProxyError::UpstreamConnect(message)
            })?;
        let handshake_failed = |e: hyper::Error| ProxyError::UpstreamConnect(error_chain(&e));
        if io.connected().is_negotiated_h2() {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(handshake_failed)?;
            run_connection(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::Builder::new()
                .handshake(io)
                .await
                .map_err(handshake_failed)?;
            run_connection(conn);
            Ok(Sender::H1(sender))
        }
    }
}

/// Drives a provider connection on this worker until it closes.
fn run_connection<C>(conn: C)
where
    C: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "provider connection ended");
        }
    });
}

/// The pool entry of an origin, added on first use.
fn origin<'a>(
    origins: &'a mut Vec<Origin>,
    scheme: &Scheme,
    authority: &Authority,
) -> &'a mut Origin {
    // Compared as written (one `memcmp`), not case-insensitively as `Authority`'s `==` does
    // byte by byte: a connection's URLs all come from one configured endpoint, and a host
    // spelled two ways only gets two pools.
    let i = match origins
        .iter()
        .position(|o| o.authority.as_str() == authority.as_str() && o.scheme == *scheme)
    {
        Some(i) => i,
        None => {
            origins.push(Origin {
                scheme: scheme.clone(),
                authority: authority.clone(),
                host: host_header(scheme, authority),
                conns: Vec::new(),
            });
            origins.len() - 1
        }
    };
    &mut origins[i]
}

/// `host[:port]`, without the scheme's default port (as browsers and curl send it).
fn host_header(scheme: &Scheme, authority: &Authority) -> HeaderValue {
    let default_port = match scheme.as_str() {
        "https" => 443,
        _ => 80,
    };
    let host = authority.host();
    let value = match authority.port_u16() {
        Some(p) if p != default_port => format!("{host}:{p}"),
        _ => host.to_owned(),
    };
    // An authority's host and port are always valid header text.
    HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn send_error(e: &hyper::Error) -> ProxyError {
    ProxyError::BadUpstream(error_chain(e))
}

/// Sends `req`; the response head must come within `first_byte`.
pub async fn send(
    client: &HttpsClient,
    req: http::Request<Full<Bytes>>,
    first_byte: Duration,
) -> Result<http::Response<Incoming>, ProxyError> {
    match tokio::time::timeout(first_byte, client.request(req)).await {
        Err(_) => Err(ProxyError::UpstreamTimeout),
        // Redirects are not followed (they could carry the credentials to another host), and
        // a 3xx passed on would make no sense to an API client.
        Ok(Ok(resp)) if resp.status().is_redirection() => Err(ProxyError::BadUpstream(format!(
            "the provider answered {} (a redirect, which the gateway does not follow): check \
             the configuration's endpoint",
            resp.status()
        ))),
        Ok(result) => result,
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
    let mut gathered = Gathered::default();
    loop {
        match within(idle, body.frame()).await {
            Err(_) => return Err(ProxyError::UpstreamTimeout),
            Ok(None) => return Ok(gathered.into_bytes()),
            Ok(Some(Err(e))) => return Err(ProxyError::BadUpstream(error_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data()
                    && !gathered.push(data, limit)
                {
                    return Err(too_large());
                }
            }
        }
    }
}

/// `fut`'s output, or `Elapsed` after `limit`; a future ready at once (a body frame already
/// read) sets no timer.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    match futures::FutureExt::now_or_never(&mut fut) {
        Some(out) => Ok(out),
        None => tokio::time::timeout(limit, fut).await,
    }
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Said after a refused certificate of an unknown issuer, by the data plane.
const UNKNOWN_ISSUER_HINT: &str = " (no CA the data plane trusts signed the endpoint's \
     certificate: the public roots and the CAs of --upstream-ca-file; give it the CA that did)";

/// Whether `e` is, or was caused by, a server certificate whose issuer no trusted root
/// knows (a private CA's certificate, a self-signed one).
pub fn unknown_issuer(e: &(dyn std::error::Error + 'static)) -> bool {
    // tokio-rustls reports TLS errors as io::Error wrapping the rustls error (hyper-rustls
    // wraps that once more), and io::Error's `source` skips what it wraps: look inside.
    type E = dyn std::error::Error + 'static;
    fn next<'a>(e: &&'a E) -> Option<&'a E> {
        match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &E),
            None => e.source(),
        }
    }
    std::iter::successors(Some(e), next).any(|e| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        )
    })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use hyper_util::server::conn::auto;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A provider stand-in answering `<version> <host header> <uri>` and counting the
    /// connections it accepted; over TLS (ALPN h2 and http/1.1) when `tls` is given.
    async fn provider(tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        let host = req
                            .headers()
                            .get(http::header::HOST)
                            .map(|h| h.to_str().unwrap_or("?").to_owned());
                        let text = format!("{:?} {host:?} {}", req.version(), req.uri());
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            text,
                        ))))
                    });
                    let server = auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(tls) => {
                            let Ok(stream) = tls.accept(tcp).await else {
                                return;
                            };
                            server.serve_connection(TokioIo::new(stream), svc).await
                        }
                        None => server.serve_connection(TokioIo::new(tcp), svc).await,
                    };
                });
            }
        });
        (port, accepted)
    }

    async fn text(client: &HttpsClient, url: &str) -> String {
        let req = Request::post(url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let resp = client.request(req).await.expect("answer");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    /// Egress trusting the public roots plus `ca_file`, through `proxy`.
    fn egress(ca_file: Option<&Path>, proxy: Option<EgressProxy>) -> Egress {
        Egress {
            tls: upstream_tls("--upstream-ca-file", ca_file).expect("tls"),
            proxy,
            allow_link_local: false,
        }
    }

    fn plain_client() -> HttpsClient {
        build_client(&egress(None, None), Duration::from_secs(2))
    }

    #[tokio::test]
    async fn http1_connections_are_reused_with_origin_form_and_host() {
        let (port, accepted) = provider(None).await;
        let client = plain_client();
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions?api-version=1");
        for _ in 0..5 {
            assert_eq!(
                text(&client, &url).await,
                format!("HTTP/1.1 Some(\"127.0.0.1:{port}\") /v1/chat/completions?api-version=1")
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for 5 calls"
        );

        // Concurrent calls open connections as needed; afterwards they are all reused.
        let calls = (0..8).map(|_| text(&client, &url));
        futures::future::join_all(calls).await;
        let opened = accepted.load(Ordering::SeqCst);
        assert!((2..=8).contains(&opened), "{opened} connections");
        for _ in 0..8 {
            text(&client, &url).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), opened, "no new connection");
    }

    /// A server that closes every connection after one answer, without saying so: the
    /// pooled connection is dead by the next call, which must still succeed.
    #[tokio::test]
    async fn a_connection_the_provider_closed_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    let _ = tcp.write_all(answer).await;
                    // Closed while the client keeps it in its pool.
                });
            }
        });
        let client = plain_client();
        let url = format!("http://127.0.0.1:{port}/x");
        for i in 0..4 {
            assert_eq!(text(&client, &url).await, "ok", "call {i}");
            if i % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    /// A private CA (its PEM at `dir/ca.pem`, returned) and an acceptor with a certificate
    /// it signed for `name`.
    fn private_ca(dir: &Path, name: &str) -> (std::path::PathBuf, tokio_rustls::TlsAcceptor) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec![name.into()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, leaf.pem()).expect("write cert");
        std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write ca");
        let acceptor = crate::server::tls::acceptor(&cert, &key).expect("acceptor");
        (ca_file, acceptor)
    }

    #[tokio::test]
    async fn https_negotiates_http2_and_multiplexes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_file, acceptor) = private_ca(dir.path(), "localhost");
        let (port, accepted) = provider(Some(acceptor)).await;

        let url = format!("https://localhost:{port}/v1/embeddings");
        // With the public roots alone, the private CA's certificate is refused.
        let req = Request::get(&url)
            .body(Full::new(Bytes::new()))
            .expect("req");
        let err = plain_client()
            .request(req)
            .await
            .expect_err("unknown issuer");
        let message = err.to_string();
        assert!(message.contains("UnknownIssuer"), "{message}");
        assert!(message.ends_with(UNKNOWN_ISSUER_HINT), "{message}");

        let client = build_client(&egress(Some(&ca_file), None), Duration::from_secs(2));

        let first = text(&client, &url).await;
        assert_eq!(
            first,
            format!("HTTP/2.0 None https://localhost:{port}/v1/embeddings")
        );
        let calls = (0..8).map(|_| text(&client, &url));
        for answer in futures::future::join_all(calls).await {
            assert_eq!(answer, first);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the refused handshake, then one HTTP/2 connection"
        );
    }

    /// A CONNECT proxy stand-in on a free port: records each request head, answers
    /// `status`, and on 200 joins the tunnel to 127.0.0.1:`provider_port`, whatever host was
    /// asked for (so names resolve only here, as at a real proxy).
    async fn connect_proxy(status: u16, provider_port: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    if let Ok(mut s) = seen.lock() {
                        s.push(String::from_utf8_lossy(&head).into_owned());
                    }
                    let line = format!("HTTP/1.1 {status} Proxy says {status}\r\n\r\n");
                    let _ = tcp.write_all(line.as_bytes()).await;
                    if status != 200 {
                        return;
                    }
                    let Ok(mut provider) =
                        tokio::net::TcpStream::connect(("127.0.0.1", provider_port)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut provider).await;
                });
            }
        });
        (port, heads)
    }

    fn proxy_vars(vars: &[(&str, String)]) -> EgressProxy {
        EgressProxy::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("valid")
        .expect("set")
    }

    #[tokio::test]
    async fn providers_are_reached_through_the_egress_proxy_tunnel() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A name only the proxy can resolve: the gateway must not look it up itself.
        let host = "models.example.test";
        let (ca_file, acceptor) = private_ca(dir.path(), host);
        let (tls_port, _) = provider(Some(acceptor)).await;
        let (plain_port, _) = provider(None).await;
        let (tls_proxy, tls_heads) = connect_proxy(200, tls_port).await;
        let (plain_proxy, plain_heads) = connect_proxy(200, plain_port).await;
        let proxy = proxy_vars(&[
            (
                "HTTPS_PROXY",
                format!("http://bob:s3cret@127.0.0.1:{tls_proxy}"),
            ),
            ("HTTP_PROXY", format!("127.0.0.1:{plain_proxy}")),
        ]);
        let client = build_client(&egress(Some(&ca_file), Some(proxy)), Duration::from_secs(2));

        // TLS (and HTTP/2 by ALPN) to the provider inside the tunnel.
        let url = format!("https://{host}:{tls_port}/v1/embeddings");
        assert_eq!(text(&client, &url).await, format!("HTTP/2.0 None {url}"));
        let heads = tls_heads.lock().expect("heads").clone();
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(
            heads[0].starts_with(&format!("CONNECT {host}:{tls_port} HTTP/1.1\r\n")),
            "{heads:?}"
        );
        // bob:s3cret
        assert!(
            heads[0].contains("Proxy-Authorization: Basic Ym9iOnMzY3JldA==\r\n"),
            "{heads:?}"
        );

        // A plain http:// endpoint goes through HTTP_PROXY's tunnel, default port spelled out.
        let url = format!("http://{host}:{plain_port}/v1/x");
        let answer = text(&client, &url).await;
        assert_eq!(
            answer,
            format!("HTTP/1.1 Some(\"{host}:{plain_port}\") /v1/x")
        );
        let heads = plain_heads.lock().expect("heads").clone();
        assert!(
            heads[0].starts_with(&format!("CONNECT {host}:{plain_port} HTTP/1.1\r\n"))
                && !heads[0].contains("Proxy-Authorization"),
            "{heads:?}"
        );
    }

    #[tokio::test]
    async fn egress_proxy_failures_say_what_to_fix() {
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        // Takes connections and never answers a CONNECT.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_port = silent.local_addr().expect("addr").port();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = silent.accept().await {
                held.push(tcp);
            }
        });
        let (auth_proxy, _) = connect_proxy(407, 1).await;
        let (deny_proxy, _) = connect_proxy(403, 1).await;
        let (unreachable_proxy, _) = connect_proxy(502, 1).await;
        for (proxy_port, says) in [
            (
                auth_proxy,
                format!(
                    "the egress proxy 127.0.0.1:{auth_proxy} answered the CONNECT to api.example.test:443 with 407 Proxy says 407 (it wants credentials"
                ),
            ),
            (
                deny_proxy,
                format!(
                    "the egress proxy 127.0.0.1:{deny_proxy} answered the CONNECT to api.example.test:443 with 403 Proxy says 403 (wrong credentials in the proxy URL, or a port or host it does not allow)"
                ),
            ),
            (
                unreachable_proxy,
                format!(
                    "the egress proxy 127.0.0.1:{unreachable_proxy} answered the CONNECT to api.example.test:443 with 502 Proxy says 502 (it could not reach api.example.test:443)"
                ),
            ),
            (
                closed,
                format!("could not connect to the egress proxy 127.0.0.1:{closed}"),
            ),
            (
                silent_port,
                format!(
                    "the egress proxy 127.0.0.1:{silent_port} did not open the tunnel to api.example.test:443 within 0.3s"
                ),
            ),
        ] {
            let proxy = proxy_vars(&[("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))]);
            let client = build_client(&egress(None, Some(proxy)), Duration::from_millis(300));
            let req = Request::post("https://api.example.test/v1/chat/completions")
                .body(Full::new(Bytes::new()))
                .expect("request");
            let err = client.request(req).await.expect_err("proxy failure");
            assert!(err.is_connect_failure(), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&says), "{message}");
        }
    }

    #[test]
    fn upstream_ca_files_that_hold_no_ca_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flag = "--upstream-ca-file";
        let missing = dir.path().join("missing.pem");
        let err = upstream_tls(flag, Some(&missing)).expect_err("missing");
        assert!(format!("{err:#}").starts_with(&format!("{flag} {}", missing.display())));
        for (name, text, says) in [
            ("empty.pem", "", "no PEM certificate"),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no PEM certificate",
            ),
            (
                "broken.pem",
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                "not a PEM file",
            ),
            (
                "junk.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 is not usable as a CA",
            ),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, text).expect("write");
            let err = format!("{:#}", upstream_tls(flag, Some(&file)).expect_err(name));
            assert!(err.contains(says), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn unreachable_providers_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let req = Request::post(format!("http://127.0.0.1:{port}/v1"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let err = plain_client().request(req).await.expect_err("refused");
        assert!(err.is_connect_failure(), "{err:?}");
    }
}

//! The mock upstream: an OpenAI chat completions endpoint that answers as fast as it can, a
//! fixed completion for plain requests and `chunks` SSE events for `"stream":true` ones.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The completion every plain request gets (~450 bytes, like a short real answer).
pub const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France. It is known for the Eiffel Tower, the Louvre and its cafes.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":21,"total_tokens":46}}"#;

const CHUNK: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"token "},"finish_reason":null}]}

"#;
const LAST: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

"#;
const USAGE: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":50,"total_tokens":75}}

"#;

type Body = BoxBody<Bytes, Infallible>;

/// Serves on `port` until killed. `chunks`: content events per stream; `delay`: pause
/// between events (zero: each event is still its own write).
/// Over TLS with `tls`, HTTP/1.1 only (see `crate::tls`).
pub async fn serve(
    port: u16,
    chunks: usize,
    delay: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<()> {
    let listener = TcpListener::bind(crate::procs::loopback(port)).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, chunks, delay));
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                }
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = http.serve_connection(TokioIo::new(tls), svc).await;
                    }
                }
            }
        });
    }
}

async fn handle(
    req: http::Request<Incoming>,
    chunks: usize,
    delay: Duration,
) -> Result<http::Response<Body>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    let stream = contains(&body, b"\"stream\":true") || contains(&body, b"\"stream\": true");
    if !stream {
        return Ok(http::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())).boxed())
            .unwrap_or_default());
    }
    let usage = contains(&body, b"\"include_usage\":true");
    let events = futures::stream::unfold(0usize, move |i| async move {
        let event: &'static str = match i {
            i if i < chunks => CHUNK,
            i if i == chunks => LAST,
            i if i == chunks + 1 && usage => USAGE,
            i if i == chunks + 1 || i == chunks + 2 => "data: [DONE]\n\n",
            _ => return None,
        };
        // End the stream right after [DONE].
        let next = if event.starts_with("data: [DONE]") {
            usize::MAX
        } else {
            i + 1
        };
        if i > 0 {
            if delay.is_zero() {
                // Pending once, so the server writes each event on its own.
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(delay).await;
            }
        }
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(event.as_bytes()))),
            next,
        ))
    });
    Ok(http::Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(events)))
        .unwrap_or_default())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs the mock upstream on a runtime of `threads` workers (the load runs give it 2, like
/// nginx's `worker_processes auto` and the gateway on this machine).
/// `tls`: certificate and key files (PEM) to serve HTTPS with.
pub fn main(
    port: u16,
    chunks: usize,
    delay_us: u64,
    threads: usize,
    tls: Option<(&Path, &Path)>,
) -> Result<()> {
    let tls = tls
        .map(|(cert, key)| crate::tls::acceptor(cert, key))
        .transpose()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(serve(port, chunks, Duration::from_micros(delay_us), tls))
}

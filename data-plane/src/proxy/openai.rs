//! OPENAI / OTHER: the body goes out as received with only `model` rewritten; for streams the
//! gateway asks for the usage chunk when the client did not, and hides it again.

use bytes::Bytes;
use http_body_util::Full;

use super::adapter::secret_header;
use super::request_body::rewrite;
use super::sse::{OpenAiUsageTap, response_tokens};
use super::stream::{MeteredBody, StreamProcessor};
use super::upstream::{collect_answer, collect_error, send};
use super::{ChatCall, HttpResponse, Shared};
use crate::body::full;
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::snapshot::{Connection, Target};
use crate::usage::Meter;

/// Headers of a provider answer worth passing to the client (the retry hints are also read
/// by the retry loop). Not `openai-organization`: it echoes the connection's stored key field.
const PASSED_HEADERS: [http::HeaderName; 4] = [
    http::HeaderName::from_static("x-request-id"),
    http::HeaderName::from_static("openai-processing-ms"),
    http::HeaderName::from_static("retry-after"),
    http::HeaderName::from_static("retry-after-ms"),
];

const ORGANIZATION: http::HeaderName = http::HeaderName::from_static("openai-organization");

pub(super) async fn call(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    meter: Meter,
) -> Result<HttpResponse, ProxyError> {
    let url = target.connection.chat_url.clone();
    let stream = call.fields.stream;
    forward(
        shared,
        call,
        target,
        credential,
        meter,
        (url, stream),
        OpenAiUsageTap::new,
    )
    .await
}

/// Sends the app's body to an OpenAI-format `url` with only `model` rewritten (and, when
/// `stream` and the client did not ask for usage, `stream_options.include_usage` added). A
/// stream is forwarded chunk by chunk through `tap(injected)`; a whole answer is read for
/// its `usage`. Provider errors pass through (OpenAI error bodies already), credentials
/// removed.
pub(super) async fn forward<P: StreamProcessor + 'static>(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    mut meter: Meter,
    (url, stream): (http::Uri, bool),
    tap: impl FnOnce(bool) -> P,
) -> Result<HttpResponse, ProxyError> {
    let inject = stream && !call.fields.client_wants_usage;
    let body = rewrite(&call.body, &call.fields, &target.upstream_model, inject);
    let mut req = request(url, body, &target.connection, credential)?;
    if let Some(accept) = &call.accept {
        req.headers_mut()
            .insert(http::header::ACCEPT, accept.clone());
    }
    let first_byte = target.first_byte_timeout(shared.first_byte_timeout);
    let resp = send(&shared.client, req, first_byte).await?;
    let (mut parts, upstream_body) = resp.into_parts();
    let content_type = parts.headers.remove(http::header::CONTENT_TYPE);
    let headers = passed_headers(parts.headers);
    if !parts.status.is_success() {
        let bytes =
            collect_error(upstream_body, shared.idle_timeout, &call.secrets(target)).await?;
        let (bytes, content_type) = match openai_error_body(parts.status, &bytes) {
            None => (bytes, content_type.unwrap_or_else(json)),
            Some(wrapped) => (wrapped, json()),
        };
        return Ok(answer(parts.status, headers, content_type, full(bytes)));
    }
    meter.succeed();
    if stream {
        let body = MeteredBody::new(upstream_body, tap(inject), meter, shared.idle_timeout);
        return Ok(stream_response(
            parts.status,
            headers,
            crate::body::RespBody::stream(body),
            content_type,
        ));
    }
    let bytes = collect_answer(upstream_body, shared.idle_timeout).await?;
    if let Some(t) = response_tokens(&bytes) {
        meter.set_tokens(t);
    }
    let content_type = content_type.unwrap_or_else(json);
    Ok(answer(parts.status, headers, content_type, full(bytes)))
}

/// The POST of `body` to `url` as every OpenAI-format call is sent: JSON, `credential` in
/// the connection's credential header, and the connection's organization when it has one.
pub(super) fn request(
    url: http::Uri,
    body: Bytes,
    connection: &Connection,
    credential: &Secret,
) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    // Built in place: the request builder copies itself at every step.
    let mut req = http::Request::new(Full::new(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = url;
    let headers = req.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, json());
    headers.insert(
        connection.auth.name.clone(),
        secret_header(connection.auth.prefix, credential)?,
    );
    if let Some(org) = &connection.key {
        headers.insert(ORGANIZATION, secret_header("", org)?);
    }
    Ok(req)
}

/// The [`PASSED_HEADERS`] of a provider answer, in the answer's own map (emptied first:
/// reusing it saves allocating another).
fn passed_headers(mut upstream: http::HeaderMap) -> http::HeaderMap {
    let kept = PASSED_HEADERS.map(|name| upstream.remove(&name).map(|v| (name, v)));
    upstream.clear();
    for (name, value) in kept.into_iter().flatten() {
        upstream.insert(name, value);
    }
    upstream
}

fn json() -> http::HeaderValue {
    http::HeaderValue::from_static("application/json")
}

/// A response built in place (the builder copies itself at every step).
fn answer(
    status: http::StatusCode,
    mut headers: http::HeaderMap,
    content_type: http::HeaderValue,
    body: crate::body::RespBody,
) -> HttpResponse {
    headers.insert(http::header::CONTENT_TYPE, content_type);
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Longest provider text kept in a wrapped error message.
pub(super) const MAX_ERROR_TEXT: usize = 1000;

/// `None` when a provider error body already has OpenAI's shape (`{"error": {...}}`: OpenAI
/// and most compatible servers); else an OpenAI error body carrying the provider's status
/// and text (plain-text errors of proxies, other JSON shapes), so apps always get one shape.
fn openai_error_body(status: http::StatusCode, body: &[u8]) -> Option<bytes::Bytes> {
    let shaped = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_object));
    if shaped {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let text: String = text.chars().take(MAX_ERROR_TEXT).collect();
    let message = if text.is_empty() {
        format!("the provider answered {status} with no error details")
    } else {
        format!("the provider answered {status}: {text}")
    };
    let kind = if status.is_server_error() {
        "upstream_error"
    } else {
        "invalid_request_error"
    };
    let body = serde_json::json!({
        "error": {"message": message, "type": kind, "param": null, "code": status.as_u16().to_string()}
    });
    Some(bytes::Bytes::from(body.to_string()))
}

/// The response head of a stream; chunks follow as the provider sends them.
pub(super) fn stream_response(
    status: http::StatusCode,
    mut headers: http::HeaderMap,
    body: crate::body::RespBody,
    content_type: Option<http::HeaderValue>,
) -> HttpResponse {
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    let content_type = content_type.unwrap_or(http::HeaderValue::from_static("text/event-stream"));
    answer(status, headers, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_passed_headers_of_an_answer_reach_the_app() {
        let mut upstream = http::HeaderMap::new();
        for (name, value) in [
            ("x-request-id", "req-1"),
            ("openai-organization", "org-secret"),
            ("retry-after", "3"),
            ("set-cookie", "a=b"),
            ("openai-processing-ms", "12"),
        ] {
            upstream.append(name, http::HeaderValue::from_static(value));
        }
        upstream.append("x-request-id", http::HeaderValue::from_static("req-2"));
        let kept = passed_headers(upstream);
        let mut got: Vec<_> = kept
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap_or_default()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "openai-processing-ms=12",
                "retry-after=3",
                "x-request-id=req-1"
            ]
        );
    }

    #[test]
    fn provider_errors_always_reach_apps_in_openai_shape() {
        let shaped = br#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        assert_eq!(openai_error_body(http::StatusCode::NOT_FOUND, shaped), None);
        let wrapped = |status: u16, body: &[u8]| {
            let b = openai_error_body(http::StatusCode::from_u16(status).expect("status"), body)
                .expect("wrapped");
            serde_json::from_slice::<serde_json::Value>(&b).expect("json")["error"].clone()
        };
        let e = wrapped(502, b"Bad Gateway\n");
        assert_eq!(
            e["message"],
            "the provider answered 502 Bad Gateway: Bad Gateway"
        );
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("upstream_error"), Some("502"))
        );
        let e = wrapped(400, br#"{"detail":"prompt too long"}"#);
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("prompt too long")
        );
        let e = wrapped(500, b"");
        assert_eq!(
            e["message"],
            "the provider answered 500 Internal Server Error with no error details"
        );
        let long = "x".repeat(5000);
        let e = wrapped(500, long.as_bytes());
        assert!(e["message"].as_str().unwrap_or_default().len() < 1100);
    }
}

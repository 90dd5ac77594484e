//! GOOGLE: the OpenAI request is translated to a Gemini `generateContent` call (translation
//! in `crate::providers::google`), the answer, stream or error translated back.

use bytes::Bytes;
use http_body_util::Full;

use super::adapter::{secret_header, with_retry_hints};
use super::openai::stream_response;
use super::sse::count_text_deltas;
use super::stream::{MeteredBody, StreamProcessor, with_streamed_estimate};
use super::upstream::{collect_answer, collect_error, send};
use super::{ChatCall, HttpResponse, Shared};
use crate::body::json_response;
use crate::error::ProxyError;
use crate::providers::google::{self as translate, StreamTranslator};
use crate::secret::Secret;
use crate::snapshot::{Connection, Target};
use crate::usage::{Meter, Tokens};

pub(super) async fn call(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    mut meter: Meter,
) -> Result<HttpResponse, ProxyError> {
    let req = request(
        &target.connection,
        &target.upstream_model,
        &call.body,
        credential,
        call.fields.stream,
    )?;
    let resp = send(
        &shared.client,
        req,
        target.first_byte_timeout(shared.first_byte_timeout),
    )
    .await?;
    let (parts, upstream_body) = resp.into_parts();
    if !parts.status.is_success() {
        let bytes =
            collect_error(upstream_body, shared.idle_timeout, &call.secrets(target)).await?;
        let (status, body) = translate::translate_error(parts.status.as_u16(), &bytes);
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        return Ok(with_retry_hints(
            json_response(status, body),
            &parts.headers,
        ));
    }
    meter.succeed();
    if call.fields.stream {
        let translator = GoogleStream(
            StreamTranslator::new(&call.fields.model, call.fields.client_wants_usage),
            0,
        );
        let body = MeteredBody::new(upstream_body, translator, meter, shared.idle_timeout);
        return Ok(stream_response(
            http::StatusCode::OK,
            http::HeaderMap::new(),
            crate::body::RespBody::stream(body),
            None,
        ));
    }
    let bytes = collect_answer(upstream_body, shared.idle_timeout).await?;
    let (body, usage) = translate::translate_response(&bytes, &call.fields.model)?;
    meter.set_tokens(Tokens::from(usage));
    Ok(json_response(http::StatusCode::OK, body))
}

/// The `generateContent` (or, for a stream, `streamGenerateContent`) request for the
/// OpenAI-format chat `body`, to `model` of `connection`.
pub(super) fn request(
    connection: &Connection,
    model: &str,
    body: &[u8],
    credential: &Secret,
    stream: bool,
) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    let body = translate::translate_request(body)?;
    let url = method_url(&connection.chat_url, model, stream)?;
    // The key goes in a header, never in the query string (URLs end up in logs).
    http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-goog-api-key", secret_header("", credential)?)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))
}

/// `{models}/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for streams.
/// `models` is the connection's `{endpoint}/v1beta/models`; the model is one path segment
/// (a `models/` prefix, as Gemini lists names, is tolerated; other characters outside
/// `[A-Za-z0-9._~-]` are percent-encoded).
fn method_url(models: &http::Uri, model: &str, stream: bool) -> Result<http::Uri, ProxyError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut encoded = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let base = models.to_string();
    format!("{}/{encoded}:{method}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| ProxyError::BadUpstream(format!("upstream URL: {e}")))
}

/// The translator, and the count of text deltas it produced: the provider reports output
/// tokens only at the end, so a stream cut short counts one token per delta sent.
struct GoogleStream(StreamTranslator, u64);

impl StreamProcessor for GoogleStream {
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        let out = self.0.feed(&chunk).map_err(|e| e.to_string())?;
        self.1 += count_text_deltas(&out);
        Ok(Bytes::from(out))
    }

    fn finish(&mut self) -> Bytes {
        let out = self.0.finish();
        self.1 += count_text_deltas(&out);
        Bytes::from(out)
    }

    fn tokens(&self) -> Option<Tokens> {
        Some(with_streamed_estimate(Tokens::from(self.0.usage()), self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::method_url;

    #[test]
    fn method_urls() {
        let base: http::Uri = "https://generativelanguage.googleapis.com/v1beta/models"
            .parse()
            .expect("uri");
        let check = |model: &str, stream: bool, expected: &str| {
            let got = method_url(&base, model, stream).expect("url").to_string();
            assert_eq!(got, expected, "{model}");
        };
        let prefix = "https://generativelanguage.googleapis.com/v1beta/models";
        check(
            "gemini-2.0-flash",
            false,
            &format!("{prefix}/gemini-2.0-flash:generateContent"),
        );
        check(
            "gemini-2.5-pro",
            true,
            &format!("{prefix}/gemini-2.5-pro:streamGenerateContent?alt=sse"),
        );
        check(
            "models/gemini-2.0-flash",
            false,
            &format!("{prefix}/gemini-2.0-flash:generateContent"),
        );
        check(
            "a/b?c#d é",
            false,
            &format!("{prefix}/a%2Fb%3Fc%23d%20%C3%A9:generateContent"),
        );
        let local: http::Uri = "http://127.0.0.1:9/proxy/v1beta/models"
            .parse()
            .expect("uri");
        assert_eq!(
            method_url(&local, "m", true).expect("url").to_string(),
            "http://127.0.0.1:9/proxy/v1beta/models/m:streamGenerateContent?alt=sse"
        );
    }
}

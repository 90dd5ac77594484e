//! ANTHROPIC: the OpenAI request is translated to a Messages API call (translation in
//! `crate::providers::anthropic`), the answer, stream or error translated back.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::adapter::secret_header;
use super::openai::stream_response;
use super::stream::{MeteredBody, StreamProcessor};
use super::upstream::{collect, send};
use super::{ChatCall, HttpResponse, Shared};
use crate::body::full;
use crate::error::ProxyError;
use crate::providers::anthropic::{self as translate, StreamTranslator, TranslateError};
use crate::secret::Secret;
use crate::snapshot::Target;
use crate::usage::{Meter, Tokens};

/// Anthropic requires `max_tokens`; used when the app did not set one.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const ANTHROPIC_VERSION: &str = "2023-06-01";

impl From<TranslateError> for ProxyError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::InvalidRequest { message, param } => {
                ProxyError::InvalidRequest { message, param }
            }
            TranslateError::BadUpstream(m) => ProxyError::BadUpstream(m),
        }
    }
}

fn tokens(u: translate::Usage) -> Tokens {
    Tokens {
        input: u.input_tokens,
        output: u.output_tokens,
    }
}

pub(super) async fn call(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    mut meter: Meter,
) -> Result<HttpResponse, ProxyError> {
    let body =
        translate::translate_request(&call.body, &target.upstream_model, DEFAULT_MAX_TOKENS)?;
    let req = http::Request::post(target.connection.chat_url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-api-key", secret_header("", credential)?)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))?;
    let resp = send(&shared.client, req, shared.idle_timeout).await?;
    let (parts, upstream_body) = resp.into_parts();
    if !parts.status.is_success() {
        let bytes = collect(upstream_body, shared.idle_timeout).await?;
        let (status, body) = translate::translate_error(parts.status.as_u16(), &bytes);
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        return Ok(crate::body::json_response(status, body));
    }
    meter.succeed();
    let out = http::Response::builder().status(http::StatusCode::OK);
    if call.fields.stream {
        let translator = AnthropicStream(StreamTranslator::new(
            &call.fields.model,
            call.fields.client_wants_usage,
        ));
        let body = MeteredBody::new(upstream_body, translator, meter, shared.idle_timeout);
        return stream_response(out, body.boxed_unsync(), None);
    }
    let bytes = collect(upstream_body, shared.idle_timeout).await?;
    let (body, usage) = translate::translate_response(&bytes, &call.fields.model)?;
    meter.set_tokens(tokens(usage));
    out.header(http::header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))
}

struct AnthropicStream(StreamTranslator);

impl StreamProcessor for AnthropicStream {
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        self.0
            .feed(&chunk)
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    }

    fn finish(&mut self) -> Bytes {
        Bytes::from(self.0.finish())
    }

    fn tokens(&self) -> Option<Tokens> {
        Some(tokens(self.0.usage()))
    }
}

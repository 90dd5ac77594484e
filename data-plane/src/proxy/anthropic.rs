//! ANTHROPIC: the OpenAI request is translated to a Messages API call (translation in
//! `crate::providers::anthropic`), the answer, stream or error translated back.

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
use crate::providers::anthropic::{self as translate, StreamTranslator};
use crate::secret::Secret;
use crate::snapshot::{Connection, Target};
use crate::usage::{Meter, Tokens};

/// Anthropic requires `max_tokens`; used when the app did not set one.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const ANTHROPIC_VERSION: &str = "2023-06-01";

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
        let translator = AnthropicStream(
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

/// The Messages API request for the OpenAI-format chat `body`, to `model` of `connection`.
pub(super) fn request(
    connection: &Connection,
    model: &str,
    body: &[u8],
    credential: &Secret,
) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    let body = translate::translate_request(body, model, DEFAULT_MAX_TOKENS)?;
    http::Request::post(connection.chat_url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-api-key", secret_header("", credential)?)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))
}

/// The translator, and the count of text deltas it produced: the provider reports output
/// tokens only at the end, so a stream cut short counts one token per delta sent.
struct AnthropicStream(StreamTranslator, u64);

impl StreamProcessor for AnthropicStream {
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
    use super::*;

    #[test]
    fn a_stream_cut_short_counts_its_deltas() {
        let mut s = AnthropicStream(StreamTranslator::new("claude", false), 0);
        let events = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        );
        let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
        s.feed(Bytes::from_static(events.as_bytes())).expect("feed");
        for _ in 0..3 {
            s.feed(Bytes::from_static(delta.as_bytes())).expect("feed");
        }
        // The client leaves here: no message_delta with the final count.
        assert_eq!(
            s.tokens(),
            Some(Tokens {
                input: 12,
                output: 3
            })
        );
    }
}

//! AWS: the OpenAI request is translated to a Bedrock Converse call (translation and SigV4 in
//! `crate::providers::bedrock`), signed right before it is sent (or, with a Bedrock API key,
//! sent with it as a bearer token), and the answer, stream or error translated back. The model id and operation go in the URL
//! (`{endpoint}/model/{id}/converse`, `/converse-stream` for streams).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;

use super::adapter::with_retry_hints;
use super::openai::stream_response;
use super::sse::count_text_deltas;
use super::stream::{MeteredBody, StreamProcessor, with_streamed_estimate};
use super::upstream::{collect_answer, collect_error, send};
use super::{ChatCall, HttpResponse, Shared};
use crate::aws_identity::{AwsIdentity, Credentials};
use crate::body::json_response;
use crate::error::ProxyError;
use crate::providers::bedrock::{self as translate, AwsAuth, StreamTranslator, model_path};
use crate::secret::Secret;
use crate::snapshot::{Connection, Target};
use crate::usage::{Meter, Tokens};

/// A response header as text.
fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) async fn call(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    mut meter: Meter,
) -> Result<HttpResponse, ProxyError> {
    let identity = own_identity(&shared.aws, &target.connection).await?;
    let auth = match &identity {
        Some(credentials) => credentials.auth(),
        None => aws_auth(&target.connection, credential),
    };
    let req = request(
        &target.connection,
        &target.upstream_model,
        &call.body,
        &auth,
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
        let mut secrets = call.secrets(target).to_vec();
        if let Some(credentials) = &identity {
            secrets.extend(credentials.secrets());
        }
        let bytes = collect_error(upstream_body, shared.idle_timeout, &secrets).await?;
        let error_type = header(&parts.headers, "x-amzn-errortype");
        let (status, body) = translate::translate_error(parts.status.as_u16(), error_type, &bytes);
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        return Ok(with_retry_hints(
            json_response(status, body),
            &parts.headers,
        ));
    }
    meter.succeed();
    let request_id = header(&parts.headers, "x-amzn-requestid");
    if call.fields.stream {
        let translator = BedrockStream(
            StreamTranslator::new(
                &call.fields.model,
                call.fields.client_wants_usage,
                request_id,
            ),
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
    let (body, usage) = translate::translate_response(&bytes, &call.fields.model, request_id)?;
    meter.set_tokens(Tokens::from(usage));
    Ok(json_response(http::StatusCode::OK, body))
}

/// The Converse (or, for a stream, ConverseStream) request for the OpenAI-format chat
/// `body`, to `model` of `connection`, authorized with `auth`.
pub(super) fn request(
    connection: &Connection,
    model: &str,
    body: &[u8],
    auth: &AwsAuth<'_>,
    stream: bool,
) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    let body = translate::translate_request(body)?;
    let url = converse_url(&connection.chat_url, model, stream);
    authorized_post(
        &url,
        &[("content-type", "application/json")],
        body.into(),
        &connection.region,
        auth,
    )
}

/// The gateway's own AWS credentials, for a connection that stores none (fetched when
/// needed; see `crate::aws_identity`); `None` for the others.
pub(super) async fn own_identity(
    aws: &AwsIdentity,
    connection: &Connection,
) -> Result<Option<Arc<Credentials>>, ProxyError> {
    if !connection.uses_own_aws_identity() {
        return Ok(None);
    }
    let host = connection.chat_url.host().unwrap_or_default();
    if !translate::signs_for_host(host) {
        // The control plane refuses such connections; this guards the signature anyway.
        tracing::warn!(connection = %connection.id, host, "refused to sign for a host that is not AWS's with the gateway's own AWS identity");
        return Err(ProxyError::AwsIdentity);
    }
    aws.credentials()
        .await
        .map(Some)
        .map_err(|_| ProxyError::AwsIdentity)
}

/// How a call through `connection` is authorized: SigV4 with its access key id and
/// `credential`, or `credential` as a Bedrock API key (a managed connection without a key id,
/// or the app's own key on a passthrough connection).
pub(super) fn aws_auth<'a>(connection: &'a Connection, credential: &'a Secret) -> AwsAuth<'a> {
    AwsAuth::of(
        connection.key.as_ref().map(Secret::expose),
        credential.expose(),
    )
}

/// A POST of `body` to `url` with `headers`, then its authorization: signed last, over the
/// exact URL, headers and body sent (AWS allows 5 minutes of skew), or the API key. Secret
/// parts are marked sensitive.
pub(super) fn authorized_post(
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    region: &str,
    auth: &AwsAuth<'_>,
) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ProxyError::BadUpstream(format!("upstream URL: {e}")))?;
    let authorization =
        translate::authorization("POST", url, headers, &body, region, auth, SystemTime::now())
            .map_err(|e| ProxyError::BadUpstream(e.to_string()))?;
    let mut req = http::Request::post(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req
        .body(Full::new(body))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))?;
    for (name, value) in authorization {
        let mut value = http::HeaderValue::try_from(value).map_err(|_| {
            ProxyError::BadUpstream("the AWS credentials cannot be sent in a header".into())
        })?;
        value.set_sensitive(name != "x-amz-date");
        req.headers_mut().insert(name, value);
    }
    Ok(req)
}

/// `{endpoint}/model/{id}/converse` (or `/converse-stream`), the id percent-encoded.
fn converse_url(endpoint: &http::Uri, model: &str, stream: bool) -> String {
    let base = endpoint.to_string();
    format!(
        "{}{}",
        base.trim_end_matches('/'),
        model_path(model, stream)
    )
}

/// The translator, and the count of text deltas it produced: Bedrock reports tokens only in
/// the final `metadata` event, so a stream cut short counts one token per delta sent.
struct BedrockStream(StreamTranslator, u64);

impl StreamProcessor for BedrockStream {
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
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

    use super::*;

    fn frame(kind: &str, payload: &str) -> Bytes {
        let string = |s: &str| HeaderValue::String(s.to_owned().into());
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(":event-type", string(kind)))
            .add_header(Header::new(":message-type", string("event")));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("frame");
        Bytes::from(out)
    }

    #[test]
    fn an_api_key_goes_as_a_bearer_token_and_access_keys_sign() {
        let key = Secret::new("ABSKbedrock-api-key".into());
        let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse";
        let post = |auth: &AwsAuth<'_>| {
            authorized_post(
                url,
                &[("content-type", "application/json")],
                Bytes::from_static(b"{}"),
                "us-east-1",
                auth,
            )
            .expect("request")
        };
        let req = post(&AwsAuth::of(None, key.expose()));
        let auth = &req.headers()["authorization"];
        assert_eq!(auth, "Bearer ABSKbedrock-api-key");
        assert!(auth.is_sensitive());
        assert!(req.headers().get("x-amz-date").is_none());

        let secret = Secret::new("wJalrXUtnFEMI".into());
        let signed = post(&AwsAuth::of(Some("AKID"), secret.expose()));
        let auth = signed.headers()["authorization"].to_str().expect("text");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
            "{auth}"
        );
        assert!(signed.headers()["authorization"].is_sensitive());
        assert!(!signed.headers()["x-amz-date"].is_sensitive());
    }

    #[test]
    fn a_stream_cut_short_counts_its_deltas() {
        let mut s = BedrockStream(StreamTranslator::new("claude", false, None), 0);
        s.feed(frame("messageStart", r#"{"role":"assistant"}"#))
            .expect("feed");
        for _ in 0..3 {
            let delta = r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#;
            s.feed(frame("contentBlockDelta", delta)).expect("feed");
        }
        // The client leaves here: no metadata event with Bedrock's counts.
        assert_eq!(
            s.tokens(),
            Some(Tokens {
                input: 0,
                output: 3
            })
        );
    }

    #[test]
    fn converse_urls() {
        let check = |endpoint: &str, stream: bool, expected: &str| {
            let endpoint: http::Uri = endpoint.parse().expect("uri");
            let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
            assert_eq!(converse_url(&endpoint, model, stream), expected);
        };
        check(
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            true,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream",
        );
        check(
            "http://127.0.0.1:9/proxy/",
            false,
            "http://127.0.0.1:9/proxy/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        );
    }
}

//! The mock provider's AWS Bedrock side: `POST /model/{modelId}/converse` and
//! `/converse-stream`, as the Bedrock runtime answers them. Every request's SigV4 signature is
//! recomputed with `aws-sigv4` (the AWS SDK's own signer, default settings as the SDK uses them
//! for Bedrock) from the request as received and the known secret; a mismatch is Bedrock's 403
//! `InvalidSignatureException`. A request may instead carry the mock's Bedrock API key as
//! `Authorization: Bearer`, as Bedrock API keys are sent. Streams are binary event-stream frames written with
//! `aws-smithy-eventstream`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::mock_provider::{Behavior, Body, Seen, chunked, json_response};

/// The access key id the mock accepts (the secret access key is the mock's secret).
pub const AWS_ACCESS_KEY_ID: &str = "AKIDTOLLGATEE2E00001";
/// The Bedrock API key the mock accepts instead of a signature.
pub const BEDROCK_API_KEY: &str = "ABSKQmVkcm9ja0FQSUtleS10b2xsZ2F0ZS1lMmUtbW9jay1rZXk=";
/// The region the mock expects signatures to be scoped to.
pub const AWS_REGION: &str = "eu-west-3";
/// Usage the mock reports (input, output).
pub const BEDROCK_USAGE: (u64, u64) = (19, 8);
/// The `x-amzn-RequestId` of every answer.
pub const REQUEST_ID: &str = "7f0c2b1e-3d4a-4b5c-9e8f-a1b2c3d4e5f6";

/// A Bedrock error: `{"message"}` with the exception in `x-amzn-ErrorType`.
pub(crate) fn error(status: u16, exception: &str, message: &str) -> hyper::Response<Body> {
    let mut r = json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "message": message }),
    );
    let kind = format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    if let Ok(v) = hyper::header::HeaderValue::from_str(&kind) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static(REQUEST_ID),
    );
    r
}

fn exception_for(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// `20150830T123600Z` → time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let num = |range: std::ops::Range<usize>| s.get(range)?.parse::<i64>().ok();
    if s.len() != 16 || s.as_bytes()[8] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from 1970-01-01 to y-m-d (proleptic Gregorian, Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Checks the request's SigV4 signature, or its Bedrock API key; `Err` is the exception and
/// message of the 403 Bedrock would answer.
pub(crate) fn verify_signature(seen: &Seen, secret: &str) -> Result<(), (&'static str, String)> {
    let deny = |exception: &'static str, message: &str| Err((exception, message.to_owned()));
    let Some(authorization) = seen.header("authorization") else {
        return deny(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    if let Some(api_key) = authorization.strip_prefix("Bearer ") {
        // The refusal quotes the start of the key, as some providers' do: the gateway must
        // not pass it on.
        let quoted: String = api_key.chars().take(16).collect();
        return if api_key == BEDROCK_API_KEY {
            Ok(())
        } else {
            deny(
                "AccessDeniedException",
                &format!(
                    "Authentication failed: Please make sure your API Key is valid ({quoted}...)."
                ),
            )
        };
    }
    let Some(rest) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return deny(
            "IncompleteSignatureException",
            "Authorization header requires AWS4-HMAC-SHA256",
        );
    };
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed_headers)) = (field("Credential"), field("SignedHeaders"))
    else {
        return deny(
            "IncompleteSignatureException",
            "Authorization header requires Credential and SignedHeaders",
        );
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[0] != AWS_ACCESS_KEY_ID {
        return deny(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    if scope[2] != AWS_REGION || scope[3] != "bedrock" {
        return deny(
            "InvalidSignatureException",
            &format!(
                "Credential should be scoped to a valid region and service: {}/{}",
                scope[2], scope[3]
            ),
        );
    }
    let Some(time) = seen.header("x-amz-date").and_then(parse_amz_date) else {
        return deny("IncompleteSignatureException", "X-Amz-Date is missing");
    };
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(300) {
        return deny("InvalidSignatureException", "Signature expired");
    }
    // The headers the client signed, except those the signer adds itself.
    let mut headers = Vec::new();
    for name in signed_headers.split(';') {
        if matches!(
            name,
            "x-amz-date" | "x-amz-security-token" | "x-amz-content-sha256"
        ) {
            continue;
        }
        let Some(value) = seen.header(name) else {
            return deny(
                "InvalidSignatureException",
                &format!("signed header {name} is missing"),
            );
        };
        headers.push((name, value));
    }
    let host = seen.header("host").unwrap_or_default();
    let query = if seen.query.is_empty() {
        String::new()
    } else {
        format!("?{}", seen.query)
    };
    let url = format!("http://{host}{}{query}", seen.path);
    let identity = Credentials::new(
        AWS_ACCESS_KEY_ID,
        secret,
        seen.header("x-amz-security-token").map(str::to_owned),
        None,
        "mock",
    )
    .into();
    let expected = v4::SigningParams::builder()
        .identity(&identity)
        .region(AWS_REGION)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())
        .and_then(|params| {
            let params = params.into();
            let request = SignableRequest::new(
                "POST",
                url.as_str(),
                headers.iter().copied(),
                SignableBody::Bytes(&seen.body),
            )
            .map_err(|e| e.to_string())?;
            let (instructions, _) = sign(request, &params)
                .map_err(|e| e.to_string())?
                .into_parts();
            Ok(instructions
                .headers()
                .find(|(name, _)| *name == "authorization")
                .map(|(_, value)| value.to_owned()))
        });
    match expected {
        Ok(Some(expected)) if expected == authorization => Ok(()),
        _ => deny(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ),
    }
}

/// `POST /model/{modelId}/converse` and `/converse-stream`.
pub(crate) async fn converse(
    seen: &Seen,
    secret: &str,
    behavior: Behavior,
) -> hyper::Response<Body> {
    let rest = seen.path.trim_start_matches("/model/");
    let (model, stream) = match rest.rsplit_once('/') {
        Some((m, "converse")) => (m, false),
        Some((m, "converse-stream")) => (m, true),
        _ => {
            return error(
                404,
                "UnknownOperationException",
                &format!("unknown operation {}", seen.path),
            );
        }
    };
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if let Some(status) = behavior.fail_status {
        return error(
            status,
            exception_for(status),
            &format!("mock upstream failure {status}"),
        );
    }
    if let Err((exception, message)) = verify_signature(seen, secret) {
        return error(403, exception, &message);
    }
    // The model id is one path segment: a `:` arrives percent-encoded.
    if model.contains(':') || model.is_empty() {
        return error(
            400,
            "ValidationException",
            &format!("model id {model:?} is not percent-encoded"),
        );
    }
    let invalid = |m: &str| error(400, "ValidationException", m);
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return invalid("Malformed input request, please reformat your input and try again.");
    };
    // What Converse requires of a request.
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return invalid(
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        );
    };
    if req.get("model").is_some() {
        return invalid("Malformed input request: extraneous key [model] is not permitted");
    }
    if messages.is_empty() {
        return invalid(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        );
    }
    let mut uses_tools = false;
    let mut previous = "";
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").and_then(Value::as_array);
        if !matches!(role, "user" | "assistant") || content.is_none_or(|c| c.is_empty()) {
            return invalid("messages: each message needs a role user or assistant and content");
        }
        if role == previous {
            return invalid("A conversation must alternate between user and assistant roles.");
        }
        previous = role;
        for block in content.into_iter().flatten() {
            if block
                .get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim().is_empty())
            {
                return invalid("The text field in the ContentBlock object is blank.");
            }
            uses_tools |= block.get("toolUse").is_some() || block.get("toolResult").is_some();
        }
    }
    if uses_tools && req.get("toolConfig").is_none() {
        return invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        );
    }
    let tool = req
        .pointer("/toolConfig/tools/0/toolSpec/name")
        .and_then(Value::as_str)
        .filter(|_| {
            // After a tool result, the model answers in text.
            !messages
                .last()
                .and_then(|m| m.get("content"))
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|b| b.get("toolResult").is_some()))
        });
    let (input, output) = BEDROCK_USAGE;
    let usage =
        json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    if !stream {
        // The gateway's own calls (a judge, the policy assistant) get their answer.
        let own =
            crate::mock_provider::own_answer(&req, "/system/0/text", "/messages/0/content/0/text");
        let (content, stop) = match (tool, own) {
            (_, Some(text)) => (json!([{ "text": text }]), "end_turn"),
            (Some(name), None) => (
                json!([{"toolUse": {"toolUseId": "tooluse_mock01", "name": name, "input": {"city": "Paris"}}}]),
                "tool_use",
            ),
            (None, None) => (json!([{"text": "Hello from mock Bedrock"}]), "end_turn"),
        };
        let mut r = json_response(
            StatusCode::OK,
            json!({"output": {"message": {"role": "assistant", "content": content}},
                   "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 42}}),
        );
        r.headers_mut().insert(
            "x-amzn-requestid",
            hyper::header::HeaderValue::from_static(REQUEST_ID),
        );
        return r;
    }
    let p = "abcdefghijklmnopqrstuvwxyzABCDEFGH";
    let mut events = vec![("messageStart", json!({"p": p, "role": "assistant"}))];
    let stop = match tool {
        Some(name) => {
            events.push((
                "contentBlockStart",
                json!({"contentBlockIndex": 0, "p": p,
                "start": {"toolUse": {"toolUseId": "tooluse_mock01", "name": name}}}),
            ));
            for part in ["{\"city\":", " \"Paris\"}"] {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "p": p,
                    "delta": {"toolUse": {"input": part}}}),
                ));
            }
            events.push(("contentBlockStop", json!({"contentBlockIndex": 0, "p": p})));
            "tool_use"
        }
        None => {
            for word in ["Hello", " from", " mock", " Bedrock"] {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "p": p,
                    "delta": {"text": word}}),
                ));
            }
            events.push(("contentBlockStop", json!({"contentBlockIndex": 0, "p": p})));
            "end_turn"
        }
    };
    events.push(("messageStop", json!({"p": p, "stopReason": stop})));
    events.push((
        "metadata",
        json!({"p": p, "usage": usage, "metrics": {"latencyMs": 42}}),
    ));
    let frames = events
        .into_iter()
        .map(|(kind, payload)| event_frame(kind, &payload))
        .collect();
    let mut r = chunked(
        frames,
        behavior.chunk_gap,
        "application/vnd.amazon.eventstream",
    );
    r.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static(REQUEST_ID),
    );
    r
}

/// One `:message-type: event` frame.
fn event_frame(kind: &str, payload: &Value) -> Bytes {
    let string = |s: &str| HeaderValue::String(s.to_owned().into());
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(":event-type", string(kind)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string("event")));
    let mut out = Vec::new();
    // Writing a small frame into a Vec cannot fail.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as a client signs it: content-type, host, x-amz-date, authorization.
    fn signed(secret: &str, body: &[u8], time: SystemTime) -> Seen {
        let url = "http://127.0.0.1:9/model/anthropic.claude-v2%3A1/converse";
        let identity = Credentials::new(AWS_ACCESS_KEY_ID, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(AWS_REGION)
            .name("bedrock")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let headers = [("content-type", "application/json")];
        let request = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(request, &params).expect("signs").into_parts();
        let mut all: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            ("host".into(), "127.0.0.1:9".into()),
        ];
        all.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        Seen {
            method: "POST".into(),
            path: "/model/anthropic.claude-v2%3A1/converse".into(),
            query: String::new(),
            headers: all,
            body: body.to_vec(),
        }
    }

    #[test]
    fn signatures_are_checked() {
        let now = SystemTime::now();
        assert_eq!(
            verify_signature(&signed("s3cret", b"{}", now), "s3cret"),
            Ok(())
        );
        let wrong = verify_signature(&signed("other", b"{}", now), "s3cret");
        assert_eq!(wrong.map_err(|e| e.0), Err("InvalidSignatureException"));
        let mut tampered = signed("s3cret", b"{}", now);
        tampered.body = b"{ }".to_vec();
        assert!(verify_signature(&tampered, "s3cret").is_err());
        let old = now - Duration::from_secs(900);
        assert!(verify_signature(&signed("s3cret", b"{}", old), "s3cret").is_err());
    }

    #[test]
    fn amz_dates() {
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(
            parse_amz_date("20240229T000001Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_164_801))
        );
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
    }
}

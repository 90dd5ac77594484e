//! Anthropic error responses → OpenAI error bodies.

use crate::providers::openai::openai_error_body;
use serde::Deserialize;

/// Anthropic error (HTTP status, body) → (status for the app, OpenAI error body).
///
/// The body `{"type":"error","error":{"type","message"}}` becomes
/// `{"error":{"message","type","param":null,"code":null}}` with Anthropic's message and error
/// type kept verbatim (`rate_limit_error`, `overloaded_error`, ...: already OpenAI-like names
/// that tell the app what happened). Client errors keep their status (400, 401, 403, 404, 413,
/// 429, ...); upstream failures become gateway statuses: 529 `overloaded_error` → 503,
/// 500 `api_error` and other 5xx → 502, 503 and 504 kept. A body that is not Anthropic's JSON
/// (a proxy's HTML page) is not echoed; the type is derived from the status.
pub fn translate_error(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let detail = parsed.as_ref().and_then(|e| e.error.as_ref());
    let kind = detail
        .and_then(|d| d.kind.as_deref())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| kind_for_status(status));
    let message = match detail.and_then(|d| d.message.as_deref()) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => format!("Anthropic returned HTTP {status} ({kind})"),
    };
    let out_status = if status == 529 || kind == "overloaded_error" {
        503
    } else {
        match status {
            400..=499 | 503 | 504 => status,
            _ => 502,
        }
    };
    (out_status, openai_error_body(&message, kind, None, None))
}

/// Anthropic's error type for a status, when the body does not say.
fn kind_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Anthropic's error envelope; every field optional so any JSON parses.
#[derive(Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) message: Option<String>,
}

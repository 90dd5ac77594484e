//! Gemini error responses → OpenAI error bodies.

use crate::providers::openai::openai_error_body;
use serde::Deserialize;
use serde_json::Value;

/// Gemini error (HTTP status, body) → (status for the app, OpenAI error body).
///
/// The body `{"error":{"code","message","status","details"}}` (Google's standard error; the
/// non-SSE stream endpoint wraps it in a one-element array, also accepted) becomes
/// `{"error":{"message","type","param":null,"code"}}`: Gemini's message verbatim, an
/// OpenAI-like `type` from the gRPC status (`RESOURCE_EXHAUSTED` → `rate_limit_error`, ...)
/// and the gRPC status itself as `code`. Client errors keep their status, except an invalid
/// API key (Gemini answers 400 with reason `API_KEY_INVALID`), which becomes 401 as OpenAI
/// does; upstream failures become gateway statuses: 500 and other 5xx → 502, 503 and 504
/// kept. A body that is not Google's JSON (a proxy's HTML page) is not echoed.
pub fn translate_error(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let detail = parsed
        .as_ref()
        .map(|v| match v {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        })
        .and_then(|v| v.get("error"))
        .and_then(|e| serde_json::from_value::<ErrorDetail>(e.clone()).ok());
    let grpc = detail
        .as_ref()
        .and_then(|d| d.status.as_deref())
        .filter(|s| !s.is_empty());
    let key_invalid = detail.as_ref().is_some_and(|d| {
        d.details
            .iter()
            .any(|item| item.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
    });
    let status = if key_invalid { 401 } else { status };
    let kind = grpc.map_or_else(|| kind_for_status(status), kind_for_grpc);
    let kind = if key_invalid {
        "authentication_error"
    } else {
        kind
    };
    let message = match detail.as_ref().and_then(|d| d.message.as_deref()) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => format!("Gemini returned HTTP {status} ({})", grpc.unwrap_or(kind)),
    };
    let out_status = match status {
        400..=499 | 503 | 504 => status,
        _ => 502,
    };
    (out_status, openai_error_body(&message, kind, None, grpc))
}

/// An OpenAI-like error type for a gRPC status name.
fn kind_for_grpc(status: &str) -> &'static str {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request_error",
        "UNAUTHENTICATED" => "authentication_error",
        "PERMISSION_DENIED" => "permission_error",
        "NOT_FOUND" => "not_found_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        "UNAVAILABLE" => "service_unavailable",
        "DEADLINE_EXCEEDED" => "timeout",
        _ => "api_error",
    }
}

/// The error type for a status, when the body does not say.
fn kind_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 => "service_unavailable",
        504 => "timeout",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Google's error object; every field optional so any JSON object parses.
#[derive(Deserialize, Default)]
pub(crate) struct ErrorDetail {
    pub(crate) message: Option<String>,
    pub(crate) status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

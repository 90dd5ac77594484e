//! Bedrock error responses (and stream exceptions) → OpenAI error bodies.

use crate::providers::openai::openai_error_body;
use serde::Deserialize;

/// Bedrock error (HTTP status, `x-amzn-ErrorType` header, body) → (status for the app, OpenAI
/// error body).
///
/// Bedrock answers `{"message": "..."}` and names the exception in the `x-amzn-ErrorType`
/// header (`ValidationException:http://internal.amazon.com/...`; a `__type` field in the body
/// is also read). The result is `{"error":{"message","type","param":null,"code"}}`: Bedrock's
/// message verbatim, an OpenAI-like `type`, and the exception name as `code`. Statuses:
/// `ValidationException` 400, `AccessDeniedException` 403, `ResourceNotFoundException` 404,
/// `ThrottlingException` and `ServiceQuotaExceededException` 429 keep their meaning;
/// `ModelTimeoutException` (408) → 504, `ServiceUnavailableException` and
/// `ModelNotReadyException` → 503, `InternalServerException` (500), `ModelErrorException` and
/// `ModelStreamErrorException` (424) → 502. Unknown exceptions keep a 4xx status (408 → 504),
/// other 5xx become 502 (503 and 504 kept). A body that is not JSON (a proxy's HTML page) is
/// not echoed.
pub fn translate_error(status: u16, error_type: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let name = error_type
        .and_then(exception_name)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|b| b.kind.as_deref())
                .and_then(exception_name)
        })
        .map(str::to_owned);
    let known = name.as_deref().and_then(known_exception);
    let (out_status, kind) = known.unwrap_or_else(|| by_status(status));
    let message = match parsed.as_ref().and_then(ErrorBody::message) {
        Some(m) => m.to_owned(),
        None => format!(
            "Bedrock returned HTTP {status} ({})",
            name.as_deref().unwrap_or(kind)
        ),
    };
    (
        out_status,
        openai_error_body(&message, kind, None, name.as_deref()),
    )
}

/// An exception frame of a stream (`:exception-type`, JSON payload) → (type, message, code),
/// for the error chunk; the code is the exception name with its first letter capitalised, as
/// the non-stream errors name it (`throttlingException` → `ThrottlingException`).
pub(crate) fn stream_exception(
    exception_type: &str,
    payload: &[u8],
) -> (&'static str, String, Option<String>) {
    let name = exception_name(exception_type);
    let code = name.map(|n| {
        let mut chars = n.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_ascii_uppercase().to_string() + chars.as_str()
        })
    });
    let kind = name
        .and_then(known_exception)
        .map_or("api_error", |(_, kind)| kind);
    let message = serde_json::from_slice::<ErrorBody>(payload)
        .ok()
        .and_then(|b| b.message().map(str::to_owned))
        .unwrap_or_else(|| format!("Bedrock stream failed: {exception_type}"));
    (kind, message, code)
}

/// `ValidationException:http://...` or `com.amazon.coral#ValidationException` →
/// `ValidationException`; `None` when nothing is left.
fn exception_name(raw: &str) -> Option<&str> {
    let name = raw.split(':').next().unwrap_or_default();
    let name = name.rsplit('#').next().unwrap_or_default().trim();
    (!name.is_empty()).then_some(name)
}

/// Status for the app and OpenAI-like type of a known exception (any letter case: streams
/// name them `throttlingException`).
fn known_exception(name: &str) -> Option<(u16, &'static str)> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "validationexception" | "conflictexception" => (400, "invalid_request_error"),
        "accessdeniedexception" => (403, "permission_error"),
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception" => (403, "authentication_error"),
        "resourcenotfoundexception" => (404, "not_found_error"),
        "throttlingexception" | "servicequotaexceededexception" => (429, "rate_limit_error"),
        "modeltimeoutexception" => (504, "timeout"),
        "serviceunavailableexception" | "modelnotreadyexception" => (503, "service_unavailable"),
        "internalserverexception" | "modelerrorexception" | "modelstreamerrorexception" => {
            (502, "api_error")
        }
        _ => return None,
    })
}

/// Status for the app and error type when the exception is unknown.
fn by_status(status: u16) -> (u16, &'static str) {
    match status {
        401 => (401, "authentication_error"),
        403 => (403, "permission_error"),
        404 => (404, "not_found_error"),
        408 => (504, "timeout"),
        429 => (429, "rate_limit_error"),
        400..=499 => (status, "invalid_request_error"),
        503 => (503, "service_unavailable"),
        504 => (504, "timeout"),
        _ => (502, "api_error"),
    }
}

/// Bedrock's error body; every field optional so any JSON object parses.
#[derive(Deserialize, Default)]
struct ErrorBody {
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
    #[serde(rename = "__type")]
    kind: Option<String>,
}

impl ErrorBody {
    fn message(&self) -> Option<&str> {
        self.message
            .as_deref()
            .or(self.message_upper.as_deref())
            .filter(|m| !m.is_empty())
    }
}

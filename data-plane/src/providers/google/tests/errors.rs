//! Gemini error responses → status + OpenAI error body.

use std::fmt::Write;

use crate::providers::google::translate_error;
use crate::tests::conformance::{self, Capability, Provider};

/// The errors of Gemini's troubleshooting page, with the status they come with.
#[test]
fn error_types() {
    let cases = [
        (
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
        ),
        (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity).",
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-nope is not found for API version v1beta, or is not supported for generateContent.",
        ),
        (
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        (500, "INTERNAL", "An internal error has occurred."),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        ),
    ];
    let mut table = String::new();
    for (status, grpc, message) in cases {
        let body = serde_json::json!({
            "error": { "code": status, "message": message, "status": grpc },
        });
        let (out_status, out) = translate_error(status, body.to_string().as_bytes());
        let _ = writeln!(
            table,
            "{status} {grpc} -> {out_status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    insta::assert_snapshot!(table);
    conformance::passed(Provider::Google, &[Capability::Errors]);
}

#[test]
fn error_odd_bodies() {
    let key_invalid = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
    let cases: [(u16, &[u8]); 8] = [
        (400, key_invalid),
        (429, br#"[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]"#),
        (413, b"<html><body>413 Request Entity Too Large</body></html>"),
        (502, b""),
        (503, b"upstream connect error"),
        (504, b"{}"),
        (500, br#"{"error":"boom"}"#),
        (418, br#"{"error":{"code":418,"message":"","status":""}}"#),
    ];
    let mut table = String::new();
    for (status, body) in cases {
        let (out_status, out) = translate_error(status, body);
        let _ = writeln!(
            table,
            "{status} -> {out_status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    insta::assert_snapshot!(table);
    conformance::passed(Provider::Google, &[Capability::Errors]);
}

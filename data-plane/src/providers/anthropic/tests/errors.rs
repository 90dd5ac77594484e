//! Anthropic error responses → status + OpenAI error body.

use std::fmt::Write;

use crate::providers::anthropic::translate_error;
use crate::tests::conformance::{self, Capability, Provider};

/// Every error type from Anthropic's errors page, with the status it comes with.
#[test]
fn error_types() {
    let cases = [
        (
            400,
            "invalid_request_error",
            "messages: roles must alternate between \"user\" and \"assistant\"",
        ),
        (401, "authentication_error", "invalid x-api-key"),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        (404, "not_found_error", "model: claude-nonexistent"),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        (500, "api_error", "Internal server error"),
        (529, "overloaded_error", "Overloaded"),
    ];
    let mut table = String::new();
    for (status, kind, message) in cases {
        let body = serde_json::json!({
            "type": "error",
            "error": { "type": kind, "message": message },
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        });
        let (out_status, out) = translate_error(status, body.to_string().as_bytes());
        let _ = writeln!(
            table,
            "{status} {kind} -> {out_status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    insta::assert_snapshot!(table);
    conformance::passed(Provider::Anthropic, &[Capability::Errors]);
}

#[test]
fn error_odd_bodies() {
    let cases: [(u16, &[u8]); 7] = [
        (
            413,
            b"<html><body>413 Request Entity Too Large</body></html>",
        ),
        (502, b""),
        (503, b"upstream connect error"),
        (504, b"{}"),
        (
            529,
            br#"{"type":"error","error":{"type":"overloaded_error"}}"#,
        ),
        (500, br#"{"type":"error","error":"boom"}"#),
        (418, br#"{"type":"error","error":{"type":"","message":""}}"#),
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
    conformance::passed(Provider::Anthropic, &[Capability::Errors]);
}

//! Bedrock error responses → status + OpenAI error body.

use std::fmt::Write;

use crate::providers::bedrock::translate_error;
use crate::tests::conformance::{self, Capability, Provider};

/// The errors of the Converse API reference, with the status they come with.
#[test]
fn error_types() {
    let cases = [
        (
            400,
            "ValidationException",
            "The model returned the following errors: messages: roles must alternate between \"user\" and \"assistant\"",
        ),
        (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ),
        (
            404,
            "ResourceNotFoundException",
            "The provided model identifier is invalid.",
        ),
        (
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        (
            400,
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota for your account.",
        ),
        (
            429,
            "ModelNotReadyException",
            "The model is not ready to serve inference requests.",
        ),
        (
            408,
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        (424, "ModelErrorException", "The model returned an error."),
        (
            500,
            "InternalServerException",
            "An internal server error occurred.",
        ),
        (
            503,
            "ServiceUnavailableException",
            "The service isn't currently available.",
        ),
    ];
    let mut table = String::new();
    for (status, exception, message) in cases {
        let body = serde_json::json!({ "message": message });
        let header = format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/");
        let (out_status, out) = translate_error(status, Some(&header), body.to_string().as_bytes());
        let _ = writeln!(
            table,
            "{status} {exception} -> {out_status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    insta::assert_snapshot!(table);
    conformance::passed(Provider::Aws, &[Capability::Errors]);
}

#[test]
fn error_odd_bodies() {
    let cases: [(u16, Option<&str>, &[u8]); 9] = [
        // The exception named in the body only.
        (
            400,
            None,
            br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Malformed input request"}"#,
        ),
        (403, None, br#"{"Message":"User is not authorized"}"#),
        (408, None, b""),
        (413, None, b"<html><body>413 Request Entity Too Large</body></html>"),
        (502, None, b""),
        (503, Some(""), b"upstream connect error"),
        (504, None, b"{}"),
        (500, Some("SomethingNewException"), br#"{"message":""}"#),
        (418, Some("TeapotException:"), br#"{"message":"short and stout"}"#),
    ];
    let mut table = String::new();
    for (status, header, body) in cases {
        let (out_status, out) = translate_error(status, header, body);
        let _ = writeln!(
            table,
            "{status} {header:?} -> {out_status} {}",
            String::from_utf8_lossy(&out)
        );
    }
    insta::assert_snapshot!(table);
    conformance::passed(Provider::Aws, &[Capability::Errors]);
}

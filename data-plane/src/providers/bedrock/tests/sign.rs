//! SigV4 signing against the AWS signing test suite, and Bedrock's double-encoded paths.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::PercentEncodingMode;

use crate::providers::bedrock::sign::{Request, sign_for};
use crate::providers::bedrock::{AwsCredentials, SignError, model_path, sign_request};

/// The credentials of the AWS SigV4 test suite.
const SUITE: AwsCredentials<'static> = AwsCredentials {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token: None,
};

/// `20150830T123600Z`, the test suite's usual time.
fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn signed(
    url: &str,
    service: &str,
    region: &str,
    credentials: &AwsCredentials<'_>,
    time: SystemTime,
    encoding: PercentEncodingMode,
) -> Vec<(&'static str, String)> {
    let request = Request {
        method: "POST",
        url,
        headers: &[],
        body: b"",
    };
    sign_for(&request, service, region, credentials, time, encoding).expect("signs")
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// The suite's `post-vanilla` vector.
#[test]
fn sign_suite_post_vanilla() {
    let headers = signed(
        "https://example.amazonaws.com/",
        "service",
        "us-east-1",
        &SUITE,
        suite_time(),
        PercentEncodingMode::Double,
    );
    assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(
        header(&headers, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )
    );
    assert_eq!(header(&headers, "x-amz-security-token"), None);
    assert_eq!(header(&headers, "x-amz-content-sha256"), None);
}

/// The suite's `get-vanilla-with-session-token` vector: the token is signed and sent.
#[test]
fn sign_suite_session_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let credentials = AwsCredentials {
        session_token: Some(token),
        ..SUITE
    };
    let request = Request {
        method: "GET",
        url: "https://example.amazonaws.com/",
        headers: &[],
        body: b"",
    };
    let headers = sign_for(
        &request,
        "service",
        "us-east-1",
        &credentials,
        suite_time(),
        PercentEncodingMode::Double,
    )
    .expect("signs");
    assert_eq!(header(&headers, "x-amz-security-token"), Some(token));
    assert!(
        header(&headers, "authorization").is_some_and(|a| a.ends_with(
            "SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        )),
        "{headers:?}"
    );
}

/// The suite's `double-url-encode` vector: a Lambda ARN with `%3A` in the path, which the
/// canonical request encodes again as `%253A`.
#[test]
fn sign_suite_double_url_encode() {
    let time = UNIX_EPOCH + Duration::from_secs(1_620_747_645); // 20210511T154045Z
    let headers = signed(
        "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/\
         arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        "lambda",
        "us-east-2",
        &SUITE,
        time,
        PercentEncodingMode::Double,
    );
    assert_eq!(
        header(&headers, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804"
        )
    );
}

/// The canonical path of `/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse` is
/// `/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse`: signing the sent path
/// with double encoding gives the same signature as signing that canonical path as is.
#[test]
fn sign_bedrock_model_path_is_encoded_twice() {
    let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    let path = model_path(model, false);
    assert_eq!(
        path,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    let host = "https://bedrock-runtime.us-east-1.amazonaws.com";
    let sent = signed(
        &format!("{host}{path}"),
        "bedrock",
        "us-east-1",
        &SUITE,
        suite_time(),
        PercentEncodingMode::Double,
    );
    let canonical = signed(
        &format!("{host}/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"),
        "bedrock",
        "us-east-1",
        &SUITE,
        suite_time(),
        PercentEncodingMode::Single,
    );
    let single = signed(
        &format!("{host}{path}"),
        "bedrock",
        "us-east-1",
        &SUITE,
        suite_time(),
        PercentEncodingMode::Single,
    );
    assert_eq!(sent, canonical);
    assert_ne!(sent, single, "the second encoding changes the signature");
}

#[test]
fn sign_request_is_bedrock_and_signs_body_and_headers() {
    let url = format!(
        "https://bedrock-runtime.eu-west-3.amazonaws.com{}",
        model_path("mistral.mistral-large-2402-v1:0", true)
    );
    let sign = |body: &[u8], content_type: &str| {
        sign_request(
            "POST",
            &url,
            &[("content-type", content_type)],
            body,
            "eu-west-3",
            &SUITE,
            suite_time(),
        )
        .expect("signs")
    };
    let base = sign(b"{}", "application/json");
    let authorization = header(&base, "authorization").expect("authorization");
    assert!(
        authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
        ),
        "{authorization}"
    );
    assert_ne!(base, sign(b"{ }", "application/json"), "the body is signed");
    assert_ne!(base, sign(b"{}", "text/plain"), "headers are signed");
    assert_eq!(base, sign(b"{}", "application/json"), "deterministic");
}

#[test]
fn model_paths() {
    let check = |model: &str, stream: bool, expected: &str| {
        assert_eq!(model_path(model, stream), expected, "{model}");
    };
    check(
        "amazon.nova-lite-v1:0",
        true,
        "/model/amazon.nova-lite-v1%3A0/converse-stream",
    );
    check(
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        false,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
    );
    check("a b?#é~", false, "/model/a%20b%3F%23%C3%A9~/converse");
}

#[test]
fn sign_errors() {
    let sign = |url: &str, region: &str, key: &str| {
        let credentials = AwsCredentials {
            access_key_id: key,
            ..SUITE
        };
        sign_request("POST", url, &[], b"", region, &credentials, suite_time())
    };
    let ok = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse";
    assert!(matches!(
        sign("/model/m/converse", "us-east-1", "AK"),
        Err(SignError::Url(_))
    ));
    assert!(matches!(
        sign("not a url", "us-east-1", "AK"),
        Err(SignError::Url(_))
    ));
    assert_eq!(sign(ok, "", "AK"), Err(SignError::Missing("a region")));
    assert_eq!(
        sign(ok, "us-east-1", ""),
        Err(SignError::Missing("an access key id"))
    );
    let bad_header = sign_request(
        "POST",
        ok,
        &[("x-bad", "line\nbreak")],
        b"",
        "us-east-1",
        &SUITE,
        suite_time(),
    );
    assert!(
        matches!(bad_header, Err(SignError::Signer(_))),
        "{bad_header:?}"
    );
    let debug = format!("{SUITE:?}");
    assert!(!debug.contains("EXAMPLEKEY"), "{debug}");
}

//! Converse response → OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::bedrock::{TranslateError, Usage, translate_response_at};
use crate::tests::conformance::{self, Capability, Provider};

const CREATED: u64 = 1_700_000_000;
const REQUEST_ID: &str = "6a8b2f3e-1c4d-4e5f-8a9b-0c1d2e3f4a5b";

fn golden(name: &str) -> (String, Usage) {
    let (body, usage) = translate_response_at(&fixture(name), "gpt-4o", Some(REQUEST_ID), CREATED)
        .expect("translates");
    (pretty(&body), usage)
}

#[test]
fn response_text() {
    let (body, usage) = golden("bedrock_text.json");
    insta::assert_snapshot!(body);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 125,
            output_tokens: 60
        }
    );
    conformance::passed(Provider::Aws, &[Capability::Chat, Capability::Usage]);
}

#[test]
fn response_tool_use() {
    let (body, usage) = golden("bedrock_tool_use.json");
    insta::assert_snapshot!(body);
    // Cache reads and writes count as prompt tokens.
    assert_eq!(
        usage,
        Usage {
            input_tokens: 375 + 1800 + 200,
            output_tokens: 78
        }
    );
    conformance::passed(Provider::Aws, &[Capability::Tools, Capability::Usage]);
}

#[test]
fn response_only_tool_use_has_null_content() {
    let (body, _) = golden("bedrock_only_tool_use.json");
    insta::assert_snapshot!(body);
    conformance::passed(Provider::Aws, &[Capability::Tools]);
}

fn translate(body: &Value) -> Value {
    let (out, _) =
        translate_response_at(body.to_string().as_bytes(), "m", None, CREATED).expect("translates");
    serde_json::from_slice(&out).expect("JSON")
}

#[test]
fn response_stop_reasons() {
    for (stop_reason, finish_reason) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ] {
        let body = json!({
            "output": { "message": { "role": "assistant", "content": [{ "text": "x" }] } },
            "stopReason": stop_reason,
        });
        let out = translate(&body);
        assert_eq!(
            out["choices"][0]["finish_reason"], finish_reason,
            "{stop_reason}"
        );
    }
}

#[test]
fn response_without_request_id_or_usage() {
    let out = translate(&json!({
        "output": { "message": { "role": "assistant", "content": [] } },
    }));
    assert_eq!(out["id"], "chatcmpl-bedrock");
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["total_tokens"], 0);
}

#[test]
fn response_bad_upstream() {
    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"{}",
        br#"{"output":{}}"#,
        br#"{"output":{"message":{"content":"text"}}}"#,
        br#"{"output":{"message":{"content":[{"toolUse":{"name":"f"}}]}}}"#,
        br#"{"message":"The security token included in the request is invalid."}"#,
    ] {
        match translate_response_at(body, "m", None, CREATED) {
            Err(e @ TranslateError::BadUpstream(_)) => assert_eq!(e.status(), 502),
            other => panic!(
                "expected BadUpstream for {}, got {other:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

//! Gemini response → OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::google::{TranslateError, Usage, translate_response_at};
use crate::tests::conformance::{self, Capability, Provider};

const CREATED: u64 = 1_700_000_000;

fn golden(name: &str) -> (String, Usage) {
    let (body, usage) =
        translate_response_at(&fixture(name), "gpt-4o", CREATED).expect("translates");
    (pretty(&body), usage)
}

#[test]
fn response_text() {
    let (body, usage) = golden("gemini_text.json");
    insta::assert_snapshot!(body);
    // Thinking is billed as output.
    assert_eq!(
        usage,
        Usage {
            input_tokens: 4,
            output_tokens: 9 + 32
        }
    );
    conformance::passed(Provider::Google, &[Capability::Chat, Capability::Usage]);
}

#[test]
fn response_function_calls() {
    let (body, usage) = golden("gemini_function_call.json");
    insta::assert_snapshot!(body);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 2120,
            output_tokens: 44
        }
    );
    conformance::passed(Provider::Google, &[Capability::Tools, Capability::Usage]);
}

#[test]
fn response_only_function_call_has_null_content() {
    let (body, usage) = golden("gemini_only_function_call.json");
    insta::assert_snapshot!(body);
    // Tool-use prompt tokens count as prompt tokens.
    assert_eq!(
        usage,
        Usage {
            input_tokens: 88,
            output_tokens: 5
        }
    );
    conformance::passed(Provider::Google, &[Capability::Tools, Capability::Usage]);
}

#[test]
fn response_prompt_blocked() {
    let (body, usage) = golden("gemini_prompt_blocked.json");
    insta::assert_snapshot!(body);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 12,
            output_tokens: 0
        }
    );
}

fn translate(body: &Value) -> Value {
    let (out, _) =
        translate_response_at(body.to_string().as_bytes(), "m", CREATED).expect("translates");
    serde_json::from_slice(&out).expect("JSON")
}

#[test]
fn response_finish_reasons() {
    for (reason, finish_reason) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("SOMETHING_NEW", "stop"),
    ] {
        let body = json!({
            "candidates": [{
                "content": { "role": "model", "parts": [{ "text": "a" }, { "text": "hm", "thought": true }, { "text": "b" }] },
                "finishReason": reason,
            }],
            "usageMetadata": { "promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3 },
        });
        let out = translate(&body);
        assert_eq!(
            out["choices"][0]["finish_reason"], finish_reason,
            "{reason}"
        );
        assert_eq!(out["choices"][0]["message"]["content"], "ab", "{reason}");
    }
    // A candidate with calls finishes with tool_calls whatever Gemini says.
    let body = json!({ "candidates": [{
        "content": { "role": "model", "parts": [{ "functionCall": { "name": "f", "args": { "a": 1 } } }] },
        "finishReason": "MAX_TOKENS",
    }] });
    assert_eq!(
        translate(&body)["choices"][0]["finish_reason"],
        "tool_calls"
    );
    // No finish reason yet: null (and no usage: zeros).
    let body = json!({ "candidates": [{ "content": { "parts": [{ "text": "x" }] } }] });
    let out = translate(&body);
    assert_eq!(out["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(out["usage"]["total_tokens"], 0);
    assert_eq!(out["id"], "chatcmpl-gemini");
}

#[test]
fn response_several_candidates() {
    let body = json!({
        "candidates": [
            { "content": { "role": "model", "parts": [{ "text": "second" }] }, "finishReason": "STOP", "index": 1 },
            { "content": { "role": "model", "parts": [{ "functionCall": { "name": "f" } }] }, "finishReason": "STOP", "index": 0 },
        ],
        "responseId": "r1",
    });
    let out = translate(&body);
    assert_eq!(out["id"], "chatcmpl-r1");
    assert_eq!(out["choices"][0]["index"], 0);
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"],
        json!([{ "id": "call_0", "type": "function", "function": { "name": "f", "arguments": "{}" } }])
    );
    assert_eq!(out["choices"][1]["index"], 1);
    assert_eq!(out["choices"][1]["message"]["content"], "second");
    assert_eq!(out["choices"][1]["finish_reason"], "stop");
}

#[test]
fn response_bad_upstream() {
    let cases: &[&[u8]] = &[
        b"",
        b"not json",
        b"[]",
        b"{}",
        br#"{"candidates":[]}"#,
        br#"{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}"#,
        br#"{"candidates":"text"}"#,
        br#"{"candidates":[{"content":{"parts":[{"functionCall":{"args":{}}}]}}]}"#,
        br#"{"candidates":[{"index":-1}]}"#,
        br#"{"candidates":[],"usageMetadata":{"promptTokenCount":-1}}"#,
    ];
    for body in cases {
        match translate_response_at(body, "m", CREATED) {
            Err(TranslateError::BadUpstream(_)) => {}
            other => panic!(
                "{}: expected BadUpstream, got {other:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

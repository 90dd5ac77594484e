//! Anthropic response → OpenAI `chat.completion`.

use serde_json::json;

use super::{fixture, pretty};
use crate::providers::anthropic::{TranslateError, Usage, translate_response_at};
use crate::tests::conformance::{self, Capability, Provider};

const CREATED: u64 = 1_700_000_000;

fn golden(name: &str) -> (String, Usage) {
    let (body, usage) =
        translate_response_at(&fixture(name), "gpt-4o", CREATED).expect("translates");
    (pretty(&body), usage)
}

#[test]
fn response_text() {
    let (body, usage) = golden("anthropic_text.json");
    insta::assert_snapshot!(body);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 2095,
            output_tokens: 503
        }
    );
    conformance::passed(Provider::Anthropic, &[Capability::Chat, Capability::Usage]);
}

#[test]
fn response_tool_use() {
    let (body, usage) = golden("anthropic_tool_use.json");
    insta::assert_snapshot!(body);
    // Cache reads count as prompt tokens.
    assert_eq!(
        usage,
        Usage {
            input_tokens: 472 + 1800,
            output_tokens: 89
        }
    );
    conformance::passed(Provider::Anthropic, &[Capability::Tools, Capability::Usage]);
}

#[test]
fn response_only_tool_use_has_null_content() {
    let (body, usage) = golden("anthropic_only_tool_use.json");
    insta::assert_snapshot!(body);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 478,
            output_tokens: 71
        }
    );
    conformance::passed(Provider::Anthropic, &[Capability::Tools, Capability::Usage]);
}

#[test]
fn response_stop_reasons() {
    for (stop_reason, finish_reason) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ] {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [{ "type": "thinking", "thinking": "hm", "signature": "x" }, { "type": "text", "text": "a" }, { "type": "text", "text": "b" }],
            "stop_reason": stop_reason, "usage": { "input_tokens": 1, "output_tokens": 2 },
        });
        let (out, _) =
            translate_response_at(body.to_string().as_bytes(), "m", CREATED).expect("translates");
        let out: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            out["choices"][0]["finish_reason"], finish_reason,
            "{stop_reason}"
        );
        assert_eq!(
            out["choices"][0]["message"]["content"], "ab",
            "{stop_reason}"
        );
    }
}

#[test]
fn response_bad_upstream() {
    let cases: &[&[u8]] = &[
        b"",
        b"not json",
        b"[]",
        b"{}",
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        br#"{"type":"message","id":"m","content":"text"}"#,
        br#"{"type":"message","id":"m","content":[{"type":"tool_use","id":"t"}]}"#,
        br#"{"type":"message","id":"m","content":[],"usage":{"input_tokens":-1}}"#,
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

//! OpenAI request → Anthropic request.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::anthropic::{TranslateError, translate_request};
use crate::tests::conformance::{self, Capability, Provider};

const MODEL: &str = "claude-sonnet-4-5-20250929";

fn golden(name: &str) -> String {
    let out = translate_request(&fixture(name), MODEL, 4096).expect("translates");
    pretty(&out)
}

#[test]
fn request_plain_chat() {
    insta::assert_snapshot!(golden("openai_plain_chat.json"));
    conformance::passed(Provider::Anthropic, &[Capability::Chat]);
}

#[test]
fn request_system_multi_turn() {
    insta::assert_snapshot!(golden("openai_system_multi_turn.json"));
    conformance::passed(Provider::Anthropic, &[Capability::Chat]);
}

#[test]
fn request_tools() {
    insta::assert_snapshot!(golden("openai_tools.json"));
    conformance::passed(Provider::Anthropic, &[Capability::Tools]);
}

#[test]
fn request_tool_results_round_trip() {
    insta::assert_snapshot!(golden("openai_tool_results.json"));
    conformance::passed(Provider::Anthropic, &[Capability::Tools]);
}

#[test]
fn request_image_parts() {
    insta::assert_snapshot!(golden("openai_image_parts.json"));
}

/// Translates `body` (with a one-message conversation added unless it has `messages`) and
/// returns the output field `field`.
fn field(mut body: Value, field: &str) -> Value {
    if body.get("messages").is_none() {
        body["messages"] = json!([{ "role": "user", "content": "Hi" }]);
    }
    let out = translate_request(body.to_string().as_bytes(), MODEL, 4096).expect("translates");
    let out: Value = serde_json::from_slice(&out).expect("JSON");
    out.get(field).cloned().unwrap_or(Value::Null)
}

const TOOL: &str =
    r#"[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;

fn with_tools(mut body: Value) -> Value {
    body["tools"] = serde_json::from_str(TOOL).expect("JSON");
    body
}

#[test]
fn request_field_mappings() {
    let cases: &[(Value, &str, Value)] = &[
        (json!({}), "max_tokens", json!(4096)),
        (json!({ "max_tokens": 7 }), "max_tokens", json!(7)),
        (
            json!({ "max_completion_tokens": 9, "max_tokens": 7 }),
            "max_tokens",
            json!(9),
        ),
        (json!({ "max_tokens": null }), "max_tokens", json!(4096)),
        (json!({ "stop": "END" }), "stop_sequences", json!(["END"])),
        (
            json!({ "stop": ["a", "b"] }),
            "stop_sequences",
            json!(["a", "b"]),
        ),
        (json!({ "stop": [] }), "stop_sequences", Value::Null),
        (json!({ "stop": null }), "stop_sequences", Value::Null),
        (
            json!({ "user": "u1" }),
            "metadata",
            json!({ "user_id": "u1" }),
        ),
        (
            json!({ "safety_identifier": "s1" }),
            "metadata",
            json!({ "user_id": "s1" }),
        ),
        (json!({ "stream": false }), "stream", json!(false)),
        (json!({ "temperature": 0 }), "temperature", json!(0)),
        (json!({ "n": 1 }), "n", Value::Null),
        (
            json!({ "response_format": { "type": "text" } }),
            "response_format",
            Value::Null,
        ),
        (json!({ "model": "gpt-4o" }), "model", json!(MODEL)),
        (
            with_tools(json!({ "tool_choice": "auto" })),
            "tool_choice",
            json!({ "type": "auto" }),
        ),
        (
            with_tools(json!({ "tool_choice": "none" })),
            "tool_choice",
            json!({ "type": "none" }),
        ),
        (
            with_tools(json!({ "tool_choice": "required" })),
            "tool_choice",
            json!({ "type": "any" }),
        ),
        (
            with_tools(
                json!({ "tool_choice": { "type": "function", "function": { "name": "f" } } }),
            ),
            "tool_choice",
            json!({ "type": "tool", "name": "f" }),
        ),
        (
            with_tools(json!({ "parallel_tool_calls": false })),
            "tool_choice",
            json!({ "type": "auto", "disable_parallel_tool_use": true }),
        ),
        (
            with_tools(json!({ "tool_choice": "none", "parallel_tool_calls": false })),
            "tool_choice",
            json!({ "type": "none" }),
        ),
        // Without tools a tool_choice means nothing and Anthropic would reject it.
        (json!({ "tool_choice": "none" }), "tool_choice", Value::Null),
        (json!({ "tools": [] }), "tools", Value::Null),
        // Empty texts are dropped (Anthropic rejects empty text blocks); "" arguments mean {}.
        (
            json!({ "messages": [
                { "role": "user", "content": "" },
                { "role": "user", "content": [{ "type": "text", "text": "" }, { "type": "text", "text": "x" }] },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": "" } }
                ] },
                { "role": "tool", "tool_call_id": "c", "content": "" },
            ] }),
            "messages",
            json!([
                { "role": "user", "content": [{ "type": "text", "text": "x" }] },
                { "role": "assistant", "content": [{ "type": "tool_use", "id": "c", "name": "f", "input": {} }] },
                { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "c" }] },
            ]),
        ),
        // Tool ids Anthropic would refuse are rewritten the same way on both sides.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "call:1.a", "type": "function", "function": { "name": "f", "arguments": "{}" } }
                ] },
                { "role": "tool", "tool_call_id": "call:1.a", "content": "ok" },
            ] }),
            "messages",
            json!([
                { "role": "assistant", "content": [{ "type": "tool_use", "id": "call_1_a", "name": "f", "input": {} }] },
                { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "call_1_a", "content": "ok" }] },
            ]),
        ),
        // Tool results go first in a merged user turn, as Anthropic requires.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{}" } }
                ] },
                { "role": "user", "content": "and also" },
                { "role": "tool", "tool_call_id": "c", "content": "42" },
            ] }),
            "messages",
            json!([
                { "role": "assistant", "content": [{ "type": "tool_use", "id": "c", "name": "f", "input": {} }] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "c", "content": "42" },
                    { "type": "text", "text": "and also" },
                ] },
            ]),
        ),
    ];
    for (body, name, expected) in cases {
        assert_eq!(&field(body.clone(), name), expected, "{name} for {body}");
    }
}

fn check_err(body: &[u8], expected_param: Option<&str>, message_part: &str) {
    match translate_request(body, MODEL, 4096) {
        Err(TranslateError::InvalidRequest { message, param }) => {
            assert_eq!(
                param.as_deref(),
                expected_param,
                "param for {}",
                String::from_utf8_lossy(body)
            );
            assert!(
                message.contains(message_part),
                "message {message:?} should contain {message_part:?}"
            );
        }
        other => panic!(
            "expected InvalidRequest for {}, got {other:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[test]
fn request_bad_input() {
    let m = r#""messages":[{"role":"user","content":"Hi"}]"#;
    let cases: &[(String, Option<&str>, &str)] = &[
        ("{\"messages\": [".into(), None, "not valid JSON"),
        ("".into(), None, "not valid JSON"),
        ("[1,2]".into(), None, "must be a JSON object"),
        ("{}".into(), Some("messages"), "messages is required"),
        (r#"{"messages":"hi"}"#.into(), Some("messages"), "must be an array"),
        (r#"{"messages":[]}"#.into(), Some("messages"), "at least one"),
        (r#"{"messages":[{"role":"system","content":"x"}]}"#.into(), Some("messages"), "at least one"),
        (r#"{"messages":[42]}"#.into(), Some("messages[0]"), "must be an object"),
        (r#"{"messages":[{"content":"x"}]}"#.into(), Some("messages[0].role"), "role is required"),
        (r#"{"messages":[{"role":"bot","content":"x"}]}"#.into(), Some("messages[0].role"), "\"bot\""),
        (r#"{"messages":[{"role":"function","name":"f","content":"x"}]}"#.into(), Some("messages[0].role"), "deprecated"),
        (r#"{"messages":[{"role":"user","content":5}]}"#.into(), Some("messages[0].content"), "string or an array"),
        (r#"{"messages":[{"role":"user","content":[{"text":"x"}]}]}"#.into(), Some("messages[0].content[0].type"), "string type"),
        (r#"{"messages":[{"role":"user","content":[{"type":"text","text":3}]}]}"#.into(), Some("messages[0].content[0].text"), "must be a string"),
        (r#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#.into(), Some("messages[0].content[0].type"), "not supported"),
        (r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#.into(), Some("messages[0].content[0].image_url.url"), "http(s) URL"),
        (r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#.into(), Some("messages[0].content[0].image_url.url"), "base64"),
        (r#"{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]},{"role":"user","content":"x"}]}"#.into(), Some("messages[0].content[0].type"), "only text"),
        (r#"{"messages":[{"role":"tool","content":"x"}]}"#.into(), Some("messages[0].tool_call_id"), "tool_call_id is required"),
        (r#"{"messages":[{"role":"assistant","tool_calls":{}}]}"#.into(), Some("messages[0].tool_calls"), "must be an array"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].id"), "id is required"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.name"), "name is required"),
        (r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}"#.into(), Some("messages[1].tool_calls[0].function.arguments"), "not valid JSON"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.arguments"), "JSON object"),
        (format!(r#"{{{m},"n":2}}"#), Some("n"), "n > 1"),
        (format!(r#"{{{m},"n":"2"}}"#), Some("n"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":0}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_completion_tokens":-5}}"#), Some("max_completion_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":"100"}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"temperature":"hot"}}"#), Some("temperature"), "number"),
        (format!(r#"{{{m},"stop":[1]}}"#), Some("stop"), "array of strings"),
        (format!(r#"{{{m},"stream":"yes"}}"#), Some("stream"), "boolean"),
        (format!(r#"{{{m},"user":5}}"#), Some("user"), "string"),
        (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{}}}}}}"#), Some("response_format"), "json_schema is not supported"),
        (format!(r#"{{{m},"response_format":{{"type":"json_object"}}}}"#), Some("response_format"), "json_object is not supported"),
        (format!(r#"{{{m},"functions":[]}}"#), Some("functions"), "use tools"),
        (format!(r#"{{{m},"tools":{{}}}}"#), Some("tools"), "must be an array"),
        (format!(r#"{{{m},"tools":[{{"type":"custom","custom":{{}}}}]}}"#), Some("tools[0].type"), "function"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{}}}}]}}"#), Some("tools[0].function.name"), "name is required"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","parameters":[]}}}}]}}"#), Some("tools[0].function.parameters"), "JSON Schema"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":"sometimes"}}"#), Some("tool_choice"), "tool_choice must be"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":{{"type":"function"}}}}"#), Some("tool_choice"), "tool_choice must be"),
        (format!(r#"{{{m},"tools":{TOOL},"parallel_tool_calls":1}}"#), Some("parallel_tool_calls"), "boolean"),
    ];
    for (body, param, message) in cases {
        check_err(body.as_bytes(), *param, message);
    }
}

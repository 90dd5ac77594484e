//! OpenAI request → Converse request.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::bedrock::{TranslateError, translate_request};
use crate::tests::conformance::{self, Capability, Provider};

fn golden(name: &str) -> String {
    let out = translate_request(&fixture(name)).expect("translates");
    pretty(&out)
}

#[test]
fn request_plain_chat() {
    insta::assert_snapshot!(golden("openai_plain_chat.json"));
    conformance::passed(Provider::Aws, &[Capability::Chat]);
}

#[test]
fn request_system_multi_turn() {
    insta::assert_snapshot!(golden("openai_system_multi_turn.json"));
    conformance::passed(Provider::Aws, &[Capability::Chat]);
}

#[test]
fn request_tools() {
    insta::assert_snapshot!(golden("openai_tools.json"));
    conformance::passed(Provider::Aws, &[Capability::Tools]);
}

#[test]
fn request_tool_results_round_trip() {
    insta::assert_snapshot!(golden("openai_tool_results.json"));
    conformance::passed(Provider::Aws, &[Capability::Tools]);
}

#[test]
fn request_image_parts() {
    insta::assert_snapshot!(golden("openai_image_parts.json"));
}

/// Translates `body` (with a one-message conversation added unless it has `messages`) and
/// returns the output value at JSON pointer `pointer`.
fn field(mut body: Value, pointer: &str) -> Value {
    if body.get("messages").is_none() {
        body["messages"] = json!([{ "role": "user", "content": "Hi" }]);
    }
    let out = translate_request(body.to_string().as_bytes()).expect("translates");
    let out: Value = serde_json::from_slice(&out).expect("JSON");
    out.pointer(pointer).cloned().unwrap_or(Value::Null)
}

const TOOL: &str =
    r#"[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;

fn with_tools(mut body: Value) -> Value {
    body["tools"] = serde_json::from_str(TOOL).expect("JSON");
    body
}

/// A conversation that already called tool `f` (Bedrock then needs a `toolConfig`).
fn with_tool_history(mut body: Value) -> Value {
    body["messages"] = json!([
        { "role": "user", "content": "Hi" },
        { "role": "assistant", "tool_calls": [
            { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{}" } }
        ] },
        { "role": "tool", "tool_call_id": "c", "content": "ok" },
    ]);
    with_tools(body)
}

#[test]
fn request_field_mappings() {
    let cases: &[(Value, &str, Value)] = &[
        (json!({}), "/inferenceConfig", Value::Null),
        (json!({}), "/system", Value::Null),
        (json!({}), "/toolConfig", Value::Null),
        (json!({ "model": "gpt-4o" }), "/model", Value::Null),
        (
            json!({ "max_tokens": 7 }),
            "/inferenceConfig/maxTokens",
            json!(7),
        ),
        (
            json!({ "max_completion_tokens": 9, "max_tokens": 7 }),
            "/inferenceConfig/maxTokens",
            json!(9),
        ),
        (
            json!({ "max_tokens": null }),
            "/inferenceConfig",
            Value::Null,
        ),
        (
            json!({ "stop": "END" }),
            "/inferenceConfig/stopSequences",
            json!(["END"]),
        ),
        (
            json!({ "stop": ["a", "b"] }),
            "/inferenceConfig/stopSequences",
            json!(["a", "b"]),
        ),
        (json!({ "stop": [] }), "/inferenceConfig", Value::Null),
        (json!({ "stop": "" }), "/inferenceConfig", Value::Null),
        (
            json!({ "temperature": 0 }),
            "/inferenceConfig/temperature",
            json!(0),
        ),
        (json!({ "top_p": 0.5 }), "/inferenceConfig/topP", json!(0.5)),
        (
            json!({ "n": 1, "stream": true }),
            "/inferenceConfig",
            Value::Null,
        ),
        (
            json!({ "response_format": { "type": "text" } }),
            "/inferenceConfig",
            Value::Null,
        ),
        // Dropped: no Converse equivalent.
        (
            json!({ "seed": 1, "user": "u", "presence_penalty": 1, "logprobs": true }),
            "/inferenceConfig",
            Value::Null,
        ),
        (json!({ "tools": [] }), "/toolConfig", Value::Null),
        // auto is Bedrock's default: no toolChoice (some models refuse the field).
        (
            with_tools(json!({ "tool_choice": "auto" })),
            "/toolConfig/toolChoice",
            Value::Null,
        ),
        (
            with_tools(json!({ "tool_choice": "required" })),
            "/toolConfig/toolChoice",
            json!({ "any": {} }),
        ),
        (
            with_tools(
                json!({ "tool_choice": { "type": "function", "function": { "name": "f" } } }),
            ),
            "/toolConfig/toolChoice",
            json!({ "tool": { "name": "f" } }),
        ),
        // none: the tools are not offered at all...
        (
            with_tools(json!({ "tool_choice": "none" })),
            "/toolConfig",
            Value::Null,
        ),
        // ...unless the conversation holds tool blocks, which need a toolConfig.
        (
            with_tool_history(json!({ "tool_choice": "none" })),
            "/toolConfig",
            json!({ "tools": [{ "toolSpec": { "name": "f", "inputSchema": { "json": { "type": "object" } } } }] }),
        ),
        // A tool without parameters gets an empty object schema.
        (
            json!({ "tools": [{ "type": "function", "function": { "name": "g", "description": "" } }] }),
            "/toolConfig/tools/0/toolSpec",
            json!({ "name": "g", "inputSchema": { "json": { "type": "object", "properties": {} } } }),
        ),
        // Blank texts are dropped (Bedrock rejects them); "" arguments mean {}; a JSON
        // object tool result is sent as json, anything else as text.
        (
            json!({ "messages": [
                { "role": "system", "content": "  " },
                { "role": "user", "content": "" },
                { "role": "user", "content": [{ "type": "text", "text": " \n" }, { "type": "text", "text": "x" }] },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": "" } },
                    { "id": "d", "type": "function", "function": { "name": "f", "arguments": "{\"a\":1}" } }
                ] },
                { "role": "tool", "tool_call_id": "c", "content": "{\"temp\": 14.2}" },
                { "role": "tool", "tool_call_id": "d", "content": "[1, 2]" },
            ] }),
            "/messages",
            json!([
                { "role": "user", "content": [{ "text": "x" }] },
                { "role": "assistant", "content": [
                    { "toolUse": { "toolUseId": "c", "name": "f", "input": {} } },
                    { "toolUse": { "toolUseId": "d", "name": "f", "input": { "a": 1 } } },
                ] },
                { "role": "user", "content": [
                    { "toolResult": { "toolUseId": "c", "content": [{ "json": { "temp": 14.2 } }] } },
                    { "toolResult": { "toolUseId": "d", "content": [{ "text": "[1, 2]" }] } },
                ] },
            ]),
        ),
        // Tool ids Bedrock would refuse are rewritten the same way on both sides.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "call:1.a", "type": "function", "function": { "name": "f", "arguments": "{}" } }
                ] },
                { "role": "tool", "tool_call_id": "call:1.a", "content": "ok" },
            ] }),
            "/messages",
            json!([
                { "role": "assistant", "content": [{ "toolUse": { "toolUseId": "call_1_a", "name": "f", "input": {} } }] },
                { "role": "user", "content": [{ "toolResult": { "toolUseId": "call_1_a", "content": [{ "text": "ok" }] } }] },
            ]),
        ),
        // Tool results go first in a merged user message.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{}" } }
                ] },
                { "role": "user", "content": "and also" },
                { "role": "tool", "tool_call_id": "c", "content": "42" },
            ] }),
            "/messages/1/content",
            json!([
                { "toolResult": { "toolUseId": "c", "content": [{ "text": "42" }] } },
                { "text": "and also" },
            ]),
        ),
        (
            json!({ "messages": [{ "role": "user", "content": [
                { "type": "image_url", "image_url": "data:image/webp;base64,UklGRg==" },
                { "type": "image_url", "image_url": { "url": "data:image/gif;base64,R0lGOD==" } },
            ] }] }),
            "/messages/0/content",
            json!([
                { "image": { "format": "webp", "source": { "bytes": "UklGRg==" } } },
                { "image": { "format": "gif", "source": { "bytes": "R0lGOD==" } } },
            ]),
        ),
    ];
    for (body, pointer, expected) in cases {
        assert_eq!(
            &field(body.clone(), pointer),
            expected,
            "{pointer} for {body}"
        );
    }
}

fn check_err(body: &[u8], expected_param: Option<&str>, message_part: &str) {
    match translate_request(body) {
        Err(e @ TranslateError::InvalidRequest { .. }) => {
            assert_eq!(e.status(), 400);
            let TranslateError::InvalidRequest { message, param } = e else {
                unreachable!()
            };
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
    let image = |url: &str| {
        format!(
            r#"{{"messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"{url}"}}}}]}}]}}"#
        )
    };
    let url_param = Some("messages[0].content[0].image_url.url");
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
        (r#"{"messages":[{"role":"user","content":[{"type":"file","file":{}}]}]}"#.into(), Some("messages[0].content[0].type"), "not supported"),
        (image("https://example.com/cat.png"), url_param, "send a base64 data URL"),
        (image("ftp://x"), url_param, "send a base64 data URL"),
        (image("data:image/png,abc"), url_param, "base64"),
        (image("data:image/png;base64,"), url_param, "base64"),
        (image("data:image/tiff;base64,AAAA"), url_param, "png, jpeg, gif or webp"),
        (r#"{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]},{"role":"user","content":"x"}]}"#.into(), Some("messages[0].content[0].type"), "only text"),
        (r#"{"messages":[{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}"#.into(), Some("messages[0].content[0].type"), "assistant message"),
        (r#"{"messages":[{"role":"tool","content":"x"}]}"#.into(), Some("messages[0].tool_call_id"), "tool_call_id is required"),
        (r#"{"messages":[{"role":"assistant","tool_calls":{}}]}"#.into(), Some("messages[0].tool_calls"), "must be an array"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].id"), "id is required"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.name"), "name is required"),
        (r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}"#.into(), Some("messages[1].tool_calls[0].function.arguments"), "not valid JSON"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.arguments"), "JSON object"),
        (format!(r#"{{{m},"n":2}}"#), Some("n"), "n > 1"),
        (format!(r#"{{{m},"n":0}}"#), Some("n"), "positive integer"),
        (format!(r#"{{{m},"n":"2"}}"#), Some("n"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":0}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_completion_tokens":-5}}"#), Some("max_completion_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":"100"}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"temperature":"hot"}}"#), Some("temperature"), "number"),
        (format!(r#"{{{m},"top_p":[]}}"#), Some("top_p"), "number"),
        (format!(r#"{{{m},"stop":[1]}}"#), Some("stop"), "array of strings"),
        (format!(r#"{{{m},"stop":5}}"#), Some("stop"), "array of strings"),
        (format!(r#"{{{m},"stream":"yes"}}"#), Some("stream"), "boolean"),
        (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{}}}}}}"#), Some("response_format"), "json_schema is not supported"),
        (format!(r#"{{{m},"response_format":{{"type":"json_object"}}}}"#), Some("response_format"), "json_object is not supported"),
        (format!(r#"{{{m},"response_format":{{"type":"yaml"}}}}"#), Some("response_format.type"), "must be text"),
        (format!(r#"{{{m},"functions":[]}}"#), Some("functions"), "use tools"),
        (format!(r#"{{{m},"function_call":"auto"}}"#), Some("function_call"), "use tools"),
        (format!(r#"{{{m},"tools":{{}}}}"#), Some("tools"), "must be an array"),
        (format!(r#"{{{m},"tools":[{{"type":"custom","custom":{{}}}}]}}"#), Some("tools[0].type"), "function"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{}}}}]}}"#), Some("tools[0].function.name"), "name is required"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","description":1}}}}]}}"#), Some("tools[0].function.description"), "must be a string"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","parameters":[]}}}}]}}"#), Some("tools[0].function.parameters"), "JSON Schema"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":"sometimes"}}"#), Some("tool_choice"), "tool_choice must be"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":{{"type":"function"}}}}"#), Some("tool_choice"), "tool_choice must be"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":7}}"#), Some("tool_choice"), "tool_choice must be"),
    ];
    for (body, param, message) in cases {
        check_err(body.as_bytes(), *param, message);
    }
}

#[test]
fn request_error_body_is_openai_shaped() {
    let e = translate_request(br#"{"messages":[],"n":2}"#).expect_err("n > 1");
    let body: Value = serde_json::from_slice(&e.to_openai_body()).expect("JSON");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "n");
}

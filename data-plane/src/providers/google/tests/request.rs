//! OpenAI request → Gemini request.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::google::{TranslateError, translate_request};
use crate::tests::conformance::{self, Capability, Provider};

fn golden(name: &str) -> String {
    let out = translate_request(&fixture(name)).expect("translates");
    pretty(&out)
}

#[test]
fn request_plain_chat() {
    insta::assert_snapshot!(golden("openai_plain_chat.json"));
    conformance::passed(Provider::Google, &[Capability::Chat]);
}

#[test]
fn request_system_multi_turn() {
    insta::assert_snapshot!(golden("openai_system_multi_turn.json"));
    conformance::passed(Provider::Google, &[Capability::Chat]);
}

#[test]
fn request_tools() {
    insta::assert_snapshot!(golden("openai_tools.json"));
    conformance::passed(Provider::Google, &[Capability::Tools]);
}

#[test]
fn request_tool_results_round_trip() {
    insta::assert_snapshot!(golden("openai_tool_results.json"));
    conformance::passed(Provider::Google, &[Capability::Tools]);
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

#[test]
fn request_field_mappings() {
    let cases: &[(Value, &str, Value)] = &[
        (json!({}), "/generationConfig", Value::Null),
        (
            json!({ "max_tokens": 7 }),
            "/generationConfig/maxOutputTokens",
            json!(7),
        ),
        (
            json!({ "max_completion_tokens": 9, "max_tokens": 7 }),
            "/generationConfig/maxOutputTokens",
            json!(9),
        ),
        (
            json!({ "max_tokens": null }),
            "/generationConfig",
            Value::Null,
        ),
        (
            json!({ "stop": "END" }),
            "/generationConfig/stopSequences",
            json!(["END"]),
        ),
        (
            json!({ "stop": ["a", "b"] }),
            "/generationConfig/stopSequences",
            json!(["a", "b"]),
        ),
        (json!({ "stop": [] }), "/generationConfig", Value::Null),
        (
            json!({ "temperature": 0 }),
            "/generationConfig/temperature",
            json!(0),
        ),
        (
            json!({ "top_p": 0.5 }),
            "/generationConfig/topP",
            json!(0.5),
        ),
        (
            json!({ "presence_penalty": 1.5 }),
            "/generationConfig/presencePenalty",
            json!(1.5),
        ),
        (json!({ "seed": 7 }), "/generationConfig/seed", json!(7)),
        (json!({ "n": 1 }), "/generationConfig", Value::Null),
        (
            json!({ "n": 3 }),
            "/generationConfig/candidateCount",
            json!(3),
        ),
        (json!({ "stream": true }), "/stream", Value::Null),
        (json!({ "model": "gpt-4o" }), "/model", Value::Null),
        (json!({ "user": "u1" }), "/user", Value::Null),
        (
            json!({ "response_format": { "type": "text" } }),
            "/generationConfig",
            Value::Null,
        ),
        (
            json!({ "response_format": { "type": "json_object" } }),
            "/generationConfig",
            json!({ "responseMimeType": "application/json" }),
        ),
        (
            json!({ "response_format": { "type": "json_schema", "json_schema": { "name": "x", "strict": true, "schema": { "type": "object", "additionalProperties": false } } } }),
            "/generationConfig",
            json!({ "responseMimeType": "application/json", "responseJsonSchema": { "type": "object", "additionalProperties": false } }),
        ),
        (
            with_tools(json!({ "tool_choice": "auto" })),
            "/toolConfig",
            json!({ "functionCallingConfig": { "mode": "AUTO" } }),
        ),
        (
            with_tools(json!({ "tool_choice": "none" })),
            "/toolConfig/functionCallingConfig",
            json!({ "mode": "NONE" }),
        ),
        (
            with_tools(json!({ "tool_choice": "required" })),
            "/toolConfig/functionCallingConfig",
            json!({ "mode": "ANY" }),
        ),
        (
            with_tools(
                json!({ "tool_choice": { "type": "function", "function": { "name": "f" } } }),
            ),
            "/toolConfig/functionCallingConfig",
            json!({ "mode": "ANY", "allowedFunctionNames": ["f"] }),
        ),
        (with_tools(json!({})), "/toolConfig", Value::Null),
        (
            with_tools(json!({ "parallel_tool_calls": false })),
            "/tools",
            json!([{ "functionDeclarations": [{ "name": "f", "parametersJsonSchema": { "type": "object" } }] }]),
        ),
        // Without tools a tool_choice means nothing.
        (json!({ "tool_choice": "none" }), "/toolConfig", Value::Null),
        (json!({ "tools": [] }), "/tools", Value::Null),
        // Only system messages of text make systemInstruction; none means no field.
        (json!({}), "/systemInstruction", Value::Null),
        (
            json!({ "messages": [
                { "role": "system", "content": "" },
                { "role": "developer", "content": "Be brief." },
                { "role": "user", "content": "Hi" },
            ] }),
            "/systemInstruction",
            json!({ "parts": [{ "text": "Be brief." }] }),
        ),
        // Audio input becomes inline data.
        (
            json!({ "messages": [{ "role": "user", "content": [
                { "type": "input_audio", "input_audio": { "data": "UklGRg==", "format": "wav" } },
            ] }] }),
            "/contents/0/parts/0",
            json!({ "inlineData": { "mimeType": "audio/wav", "data": "UklGRg==" } }),
        ),
        // Empty texts are dropped; "" arguments mean {}; non-object results are wrapped.
        (
            json!({ "messages": [
                { "role": "user", "content": "" },
                { "role": "user", "content": [{ "type": "text", "text": "" }, { "type": "text", "text": "x" }] },
                { "role": "assistant", "content": null, "tool_calls": [
                    { "id": "c", "type": "function", "function": { "name": "f", "arguments": "" } }
                ] },
                { "role": "tool", "tool_call_id": "c", "content": "" },
            ] }),
            "/contents",
            json!([
                { "role": "user", "parts": [{ "text": "x" }] },
                { "role": "model", "parts": [{ "functionCall": { "name": "f", "args": {} } }] },
                { "role": "user", "parts": [{ "functionResponse": { "name": "f", "response": { "content": "" } } }] },
            ]),
        ),
        // A JSON object result is sent as the response itself; arrays and numbers are wrapped.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "a", "type": "function", "function": { "name": "f", "arguments": "{}" } },
                    { "id": "b", "type": "function", "function": { "name": "g", "arguments": "{}" } },
                    { "id": "c", "type": "function", "function": { "name": "h", "arguments": "{}" } },
                ] },
                { "role": "tool", "tool_call_id": "a", "content": "{\"temp\": 14.2}" },
                { "role": "tool", "tool_call_id": "b", "content": "[1, 2]" },
                { "role": "tool", "tool_call_id": "c", "content": "42" },
                { "role": "user", "content": "and also" },
            ] }),
            "/contents/1",
            json!({ "role": "user", "parts": [
                { "functionResponse": { "name": "f", "response": { "temp": 14.2 } } },
                { "functionResponse": { "name": "g", "response": { "content": "[1, 2]" } } },
                { "functionResponse": { "name": "h", "response": { "content": "42" } } },
                { "text": "and also" },
            ] }),
        ),
        // Generated ids repeat from one answer to the next: the latest call with the id wins.
        (
            json!({ "messages": [
                { "role": "assistant", "tool_calls": [
                    { "id": "call_0", "type": "function", "function": { "name": "first", "arguments": "{}" } }
                ] },
                { "role": "tool", "tool_call_id": "call_0", "content": "1" },
                { "role": "assistant", "tool_calls": [
                    { "id": "call_0", "type": "function", "function": { "name": "second", "arguments": "{}" } }
                ] },
                { "role": "tool", "tool_call_id": "call_0", "content": "2" },
            ] }),
            "/contents/3/parts/0/functionResponse/name",
            json!("second"),
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
        (r#"{"messages":[{"role":"user","content":[{"type":"file","file":{}}]}]}"#.into(), Some("messages[0].content[0].type"), "not supported"),
        (r#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"opus"}}]}]}"#.into(), Some("messages[0].content[0].input_audio.format"), "wav, mp3"),
        (r#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"format":"wav"}}]}]}"#.into(), Some("messages[0].content[0].input_audio.data"), "base64"),
        (r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#.into(), Some("messages[0].content[0].image_url.url"), "http(s) URL"),
        (r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/photo"}}]}]}"#.into(), Some("messages[0].content[0].image_url.url"), "image type"),
        (r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#.into(), Some("messages[0].content[0].image_url.url"), "base64"),
        (r#"{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]},{"role":"user","content":"x"}]}"#.into(), Some("messages[0].content[0].type"), "only text"),
        (r#"{"messages":[{"role":"tool","content":"x"}]}"#.into(), Some("messages[0].tool_call_id"), "tool_call_id is required"),
        (r#"{"messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]}"#.into(), Some("messages[0].tool_call_id"), "does not match"),
        (r#"{"messages":[{"role":"tool","tool_call_id":"c","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_call_id"), "earlier assistant"),
        (r#"{"messages":[{"role":"assistant","tool_calls":{}}]}"#.into(), Some("messages[0].tool_calls"), "must be an array"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].id"), "id is required"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.name"), "name is required"),
        (r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}"#.into(), Some("messages[1].tool_calls[0].function.arguments"), "not valid JSON"),
        (r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#.into(), Some("messages[0].tool_calls[0].function.arguments"), "JSON object"),
        (format!(r#"{{{m},"n":0}}"#), Some("n"), "positive integer"),
        (format!(r#"{{{m},"n":"2"}}"#), Some("n"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":0}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_completion_tokens":-5}}"#), Some("max_completion_tokens"), "positive integer"),
        (format!(r#"{{{m},"max_tokens":"100"}}"#), Some("max_tokens"), "positive integer"),
        (format!(r#"{{{m},"temperature":"hot"}}"#), Some("temperature"), "number"),
        (format!(r#"{{{m},"seed":1.5}}"#), Some("seed"), "integer"),
        (format!(r#"{{{m},"stop":[1]}}"#), Some("stop"), "array of strings"),
        (format!(r#"{{{m},"stream":"yes"}}"#), Some("stream"), "boolean"),
        (format!(r#"{{{m},"response_format":{{"type":"json_schema","json_schema":{{}}}}}}"#), Some("response_format.json_schema.schema"), "JSON Schema object"),
        (format!(r#"{{{m},"response_format":{{"type":"yaml"}}}}"#), Some("response_format.type"), "text, json_object or json_schema"),
        (format!(r#"{{{m},"functions":[]}}"#), Some("functions"), "use tools"),
        (format!(r#"{{{m},"tools":{{}}}}"#), Some("tools"), "must be an array"),
        (format!(r#"{{{m},"tools":[{{"type":"custom","custom":{{}}}}]}}"#), Some("tools[0].type"), "function"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{}}}}]}}"#), Some("tools[0].function.name"), "name is required"),
        (format!(r#"{{{m},"tools":[{{"type":"function","function":{{"name":"f","parameters":[]}}}}]}}"#), Some("tools[0].function.parameters"), "JSON Schema"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":"sometimes"}}"#), Some("tool_choice"), "tool_choice must be"),
        (format!(r#"{{{m},"tools":{TOOL},"tool_choice":{{"type":"function"}}}}"#), Some("tool_choice"), "tool_choice must be"),
    ];
    for (body, param, message) in cases {
        check_err(body.as_bytes(), *param, message);
    }
}

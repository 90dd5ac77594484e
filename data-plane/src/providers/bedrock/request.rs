//! OpenAI chat request → Bedrock Converse request. See the module docs for the mappings.

use std::borrow::Cow;

use crate::providers::openai::{part_text, part_type, plain_text};
use serde_json::{Map, Value, json};

use super::TranslateError;

/// OpenAI chat request JSON → Converse / ConverseStream request JSON.
///
/// The app's `model` is ignored (routing chose the upstream model, which goes in the URL),
/// and so is `stream` (it picks `/converse` or `/converse-stream`, not the body).
pub fn translate_request(openai: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let request: Value =
        serde_json::from_slice(openai).map_err(|e| TranslateError::InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
    let Value::Object(req) = request else {
        return Err(TranslateError::InvalidRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        });
    };
    reject_unsupported(&req)?;

    let mut out = Map::new();
    let (system, messages, uses_tools) = messages(&req)?;
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let config = inference_config(&req)?;
    if !config.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(config));
    }
    if let Some(tool_config) = tool_config(&req, uses_tools)? {
        out.insert("toolConfig".into(), tool_config);
    }

    serde_json::to_vec(&Value::Object(out)).map_err(|e| TranslateError::InvalidRequest {
        message: format!("the request could not be encoded: {e}"),
        param: None,
    })
}

/// Fields we refuse rather than silently drop: dropping them would change what the app gets.
fn reject_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    match req.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) if n.as_u64().is_some_and(|n| n > 1) => {
            return Err(TranslateError::invalid(
                "n > 1 is not supported for Bedrock models: send one request per choice",
                "n",
            ));
        }
        Some(_) => return Err(TranslateError::invalid("n must be a positive integer", "n")),
    }
    if let Some(format) = req.get("response_format").filter(|v| !v.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some(kind @ ("json_object" | "json_schema")) => {
                return Err(TranslateError::invalid(
                    format!(
                        "response_format {kind} is not supported for Bedrock models: \
                         describe the JSON in the prompt or use a tool"
                    ),
                    "response_format",
                ));
            }
            _ => {
                return Err(TranslateError::invalid(
                    "response_format.type must be text, json_object or json_schema",
                    "response_format.type",
                ));
            }
        }
    }
    for name in ["functions", "function_call"] {
        if req.get(name).is_some_and(|v| !v.is_null()) {
            return Err(TranslateError::invalid(
                format!("{name} is deprecated and not supported for Bedrock models: use tools"),
                name,
            ));
        }
    }
    match req.get("stream") {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(TranslateError::invalid(
            "stream must be a boolean",
            "stream",
        )),
    }
}

fn inference_config(req: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut config = Map::new();
    for name in ["max_completion_tokens", "max_tokens"] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                match v.as_u64() {
                    Some(n) if n > 0 => config.insert("maxTokens".into(), n.into()),
                    _ => {
                        return Err(TranslateError::invalid(
                            format!("{name} must be a positive integer"),
                            name,
                        ));
                    }
                };
                break;
            }
        }
    }
    for (name, bedrock) in [("temperature", "temperature"), ("top_p", "topP")] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                config.insert(bedrock.into(), v.clone());
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{name} must be a number"),
                    name,
                ));
            }
        }
    }
    let invalid_stop =
        || TranslateError::invalid("stop must be a string or an array of strings", "stop");
    let stops = match req.get("stop") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(json!([s])),
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err(invalid_stop());
            }
            (!list.is_empty()).then(|| Value::Array(list.clone()))
        }
        Some(_) => return Err(invalid_stop()),
    };
    if let Some(stops) = stops {
        config.insert("stopSequences".into(), stops);
    }
    Ok(config)
}

/// One Bedrock message being built; consecutive same-role OpenAI messages land in one.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// The `system` blocks, the alternating `messages`, and whether any message holds tool
/// calls or results (Bedrock then requires a `toolConfig`).
fn messages(req: &Map<String, Value>) -> Result<(Vec<Value>, Vec<Value>, bool), TranslateError> {
    let list = match req.get("messages") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            return Err(TranslateError::invalid("messages is required", "messages"));
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "messages must be an array",
                "messages",
            ));
        }
    };
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut uses_tools = false;
    for (i, message) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(message) = message else {
            return Err(TranslateError::invalid(
                format!("{at} must be an object"),
                at,
            ));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) => role.as_str(),
            _ => {
                return Err(TranslateError::invalid(
                    format!("{at}.role is required and must be a string"),
                    format!("{at}.role"),
                ));
            }
        };
        let content = message.get("content").unwrap_or(&Value::Null);
        let content_at = format!("{at}.content");
        match role {
            "system" | "developer" => {
                let text = plain_text(content, &content_at)?;
                if !text.trim().is_empty() {
                    system.push(json!({ "text": text }));
                }
            }
            "user" => push_turn(&mut turns, "user", user_blocks(content, &content_at)?),
            "assistant" => {
                let mut blocks = assistant_blocks(content, &content_at)?;
                let calls = tool_use_blocks(message.get("tool_calls"), &at)?;
                uses_tools |= !calls.is_empty();
                blocks.extend(calls);
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                uses_tools = true;
                push_turn(&mut turns, "user", vec![tool_result(message, &at)?]);
            }
            "function" => {
                return Err(TranslateError::invalid(
                    "the function role is deprecated and not supported: use tool messages",
                    format!("{at}.role"),
                ));
            }
            other => {
                return Err(TranslateError::invalid(
                    format!(
                        "{at}.role {other:?} is not one of system, developer, user, assistant, tool"
                    ),
                    format!("{at}.role"),
                ));
            }
        }
    }
    if turns.is_empty() {
        return Err(TranslateError::invalid(
            "messages must contain at least one user or assistant message with content",
            "messages",
        ));
    }
    let messages = turns
        .into_iter()
        .map(|turn| json!({ "role": turn.role, "content": turn.blocks }))
        .collect();
    Ok((system, messages, uses_tools))
}

/// Appends blocks to the last turn when it has the same role, else starts a new turn.
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => {
            last.blocks.extend(blocks);
            if role == "user" {
                // Claude on Bedrock wants tool results before any other block of a user turn.
                last.blocks.sort_by_key(|b| b.get("toolResult").is_none());
            }
        }
        _ => turns.push(Turn { role, blocks }),
    }
}

fn user_blocks(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(text_block(s).into_iter().collect()),
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => blocks.extend(text_block(part_text(part, &part_at)?)),
                    "image_url" => blocks.push(image_block(part, &part_at)?),
                    other => {
                        return Err(TranslateError::invalid(
                            format!(
                                "{part_at}: content part type {other:?} is not supported for \
                                 Bedrock models (text and image_url are)"
                            ),
                            format!("{part_at}.type"),
                        ));
                    }
                }
            }
            Ok(blocks)
        }
        _ => Err(TranslateError::invalid(
            format!("{at} must be a string or an array of content parts"),
            at,
        )),
    }
}

fn assistant_blocks(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(text_block(s).into_iter().collect()),
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => blocks.extend(text_block(part_text(part, &part_at)?)),
                    "refusal" => {}
                    other => {
                        return Err(TranslateError::invalid(
                            format!(
                                "{part_at}: content part type {other:?} is not allowed in an assistant message"
                            ),
                            format!("{part_at}.type"),
                        ));
                    }
                }
            }
            Ok(blocks)
        }
        _ => Err(TranslateError::invalid(
            format!("{at} must be a string, an array of content parts or null"),
            at,
        )),
    }
}

/// A text block, or nothing for blank text (Bedrock rejects blank text blocks).
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({ "text": text }))
}

fn image_block(part: &Value, at: &str) -> Result<Value, TranslateError> {
    let url_at = format!("{at}.image_url.url");
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(image) => image.get("url").and_then(Value::as_str).unwrap_or_default(),
        None => "",
    };
    let invalid = || {
        TranslateError::invalid(
            format!(
                "{url_at}: Bedrock takes images as bytes: send a base64 data URL \
                 (data:image/png;base64,<data>) of a png, jpeg, gif or webp image"
            ),
            &url_at,
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(invalid)?;
    let (header, data) = rest.split_once(',').ok_or_else(invalid)?;
    let format = match header.strip_suffix(";base64") {
        Some("image/png") => "png",
        Some("image/jpeg" | "image/jpg") => "jpeg",
        Some("image/gif") => "gif",
        Some("image/webp") => "webp",
        _ => return Err(invalid()),
    };
    if data.is_empty() {
        return Err(invalid());
    }
    Ok(json!({ "image": { "format": format, "source": { "bytes": data } } }))
}

/// A tool call id Bedrock accepts (`[a-zA-Z0-9_-]+`): other characters become `_`.
fn tool_use_id(id: &str) -> Cow<'_, str> {
    if id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        )
    }
}

fn tool_use_blocks(tool_calls: Option<&Value>, at: &str) -> Result<Vec<Value>, TranslateError> {
    let calls = match tool_calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{at}.tool_calls must be an array"),
                format!("{at}.tool_calls"),
            ));
        }
    };
    let mut blocks = Vec::with_capacity(calls.len());
    for (k, call) in calls.iter().enumerate() {
        let call_at = format!("{at}.tool_calls[{k}]");
        let string_at = |path: &str| -> Result<&str, TranslateError> {
            let mut v = call;
            for key in path.split('.') {
                v = v.get(key).unwrap_or(&Value::Null);
            }
            v.as_str().ok_or_else(|| {
                TranslateError::invalid(
                    format!("{call_at}.{path} is required and must be a string"),
                    format!("{call_at}.{path}"),
                )
            })
        };
        let id = string_at("id")?;
        let name = string_at("function.name")?;
        let arguments = string_at("function.arguments")?;
        let args_at = format!("{call_at}.function.arguments");
        let input: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                TranslateError::invalid(format!("{args_at} is not valid JSON: {e}"), &args_at)
            })?
        };
        if !input.is_object() {
            return Err(TranslateError::invalid(
                format!("{args_at} must be a JSON object"),
                args_at,
            ));
        }
        blocks.push(json!({
            "toolUse": { "toolUseId": tool_use_id(id), "name": name, "input": input }
        }));
    }
    Ok(blocks)
}

fn tool_result(message: &Map<String, Value>, at: &str) -> Result<Value, TranslateError> {
    let id_at = format!("{at}.tool_call_id");
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::invalid(format!("{id_at} is required and must be a string"), &id_at)
        })?;
    let text = plain_text(
        message.get("content").unwrap_or(&Value::Null),
        &format!("{at}.content"),
    )?;
    let content = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => json!([{ "json": object }]),
        _ => json!([{ "text": text }]),
    };
    Ok(json!({ "toolResult": { "toolUseId": tool_use_id(id), "content": content } }))
}

fn tool_config(
    req: &Map<String, Value>,
    uses_tools: bool,
) -> Result<Option<Value>, TranslateError> {
    let list = match req.get("tools") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) if list.is_empty() => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::invalid("tools must be an array", "tools")),
    };
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(TranslateError::invalid(
                format!("{at}.type must be function (the only tool type Bedrock can run here)"),
                format!("{at}.type"),
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TranslateError::invalid(
                    format!("{at}.function.name is required and must be a string"),
                    format!("{at}.function.name"),
                )
            })?;
        let mut spec = Map::new();
        spec.insert("name".into(), name.into());
        match function.get("description") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) if d.is_empty() => {}
            Some(d @ Value::String(_)) => {
                spec.insert("description".into(), d.clone());
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{at}.function.description must be a string"),
                    format!("{at}.function.description"),
                ));
            }
        }
        let schema = match function.get("parameters") {
            None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{at}.function.parameters must be a JSON Schema object"),
                    format!("{at}.function.parameters"),
                ));
            }
        };
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        tools.push(json!({ "toolSpec": spec }));
    }
    let invalid = || {
        TranslateError::invalid(
            "tool_choice must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}",
            "tool_choice",
        )
    };
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => None,
            "required" => Some(json!({ "any": {} })),
            "none" if uses_tools => None,
            "none" => return Ok(None),
            _ => return Err(invalid()),
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| o.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(invalid)?;
            Some(json!({ "tool": { "name": name } }))
        }
        Some(_) => return Err(invalid()),
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

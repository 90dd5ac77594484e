//! OpenAI chat request → Anthropic Messages request. See the module docs for the mappings.

use std::borrow::Cow;

use crate::providers::openai::{part_text, part_type, plain_text};
use serde_json::{Map, Value, json};

use super::TranslateError;

/// OpenAI chat request JSON → Anthropic Messages request JSON for `upstream_model`.
///
/// `default_max_tokens` is used when the app sets neither `max_completion_tokens` nor
/// `max_tokens` (Anthropic requires one). The app's `model` is ignored: routing chose
/// `upstream_model`.
pub fn translate_request(
    openai: &[u8],
    upstream_model: &str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, TranslateError> {
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
    out.insert("model".into(), upstream_model.into());
    out.insert(
        "max_tokens".into(),
        max_tokens(&req, default_max_tokens)?.into(),
    );

    let (system, messages) = messages(&req)?;
    if !system.is_empty() {
        out.insert("system".into(), system.into());
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(tools) = tools(&req)? {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice(&req)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    if let Some(stops) = stop_sequences(&req)? {
        out.insert("stop_sequences".into(), stops);
    }
    for name in ["temperature", "top_p"] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                out.insert(name.into(), v.clone());
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{name} must be a number"),
                    name,
                ));
            }
        }
    }
    if let Some(user) = user_id(&req)? {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    match req.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            out.insert("stream".into(), (*b).into());
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "stream must be a boolean",
                "stream",
            ));
        }
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
        Some(n) if n.as_u64().is_some() => {
            return Err(TranslateError::invalid(
                "n > 1 is not supported for Anthropic models: send one request per choice",
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
                        "response_format {kind} is not supported for Anthropic models: \
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
                format!("{name} is deprecated and not supported for Anthropic models: use tools"),
                name,
            ));
        }
    }
    Ok(())
}

fn max_tokens(req: &Map<String, Value>, default: u32) -> Result<u64, TranslateError> {
    for name in ["max_completion_tokens", "max_tokens"] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return match v.as_u64() {
                    Some(n) if n > 0 => Ok(n),
                    _ => Err(TranslateError::invalid(
                        format!("{name} must be a positive integer"),
                        name,
                    )),
                };
            }
        }
    }
    Ok(u64::from(default))
}

/// One Anthropic turn being built; consecutive same-role OpenAI messages land in one.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

/// The joined `system` text and the alternating `messages`.
fn messages(req: &Map<String, Value>) -> Result<(String, Vec<Value>), TranslateError> {
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
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
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
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "user" => push_turn(&mut turns, "user", user_blocks(content, &content_at)?),
            "assistant" => {
                let mut blocks = assistant_blocks(content, &content_at)?;
                blocks.extend(tool_use_blocks(message.get("tool_calls"), &at)?);
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => push_turn(&mut turns, "user", vec![tool_result(message, &at)?]),
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
    Ok((system.join("\n\n"), messages))
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
                // Anthropic wants tool results before any other block of a user turn.
                last.blocks
                    .sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
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
                                 Anthropic models (text and image_url are)"
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

/// A text block, or nothing for empty text (Anthropic rejects empty text blocks).
fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

fn image_block(part: &Value, at: &str) -> Result<Value, TranslateError> {
    let url_at = format!("{at}.image_url.url");
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(image) => image.get("url").and_then(Value::as_str).unwrap_or_default(),
        None => "",
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').unwrap_or((rest, ""));
        let media_type = header.strip_suffix(";base64").unwrap_or_default();
        if media_type.is_empty() || data.is_empty() {
            return Err(TranslateError::invalid(
                format!("{url_at}: a data URL must look like data:image/png;base64,<data>"),
                url_at,
            ));
        }
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(TranslateError::invalid(
        format!("{url_at} must be an http(s) URL or a base64 data URL"),
        url_at,
    ))
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
        blocks.push(json!({ "type": "tool_use", "id": tool_id(id), "name": name, "input": input }));
    }
    Ok(blocks)
}

/// Anthropic tool ids must match `^[a-zA-Z0-9_-]+$`; OpenAI ids are free-form. Other
/// characters become `_`, the same way on the call and on its result, so they still pair.
fn tool_id(id: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.chars().all(valid) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(id.chars().map(|c| if valid(c) { c } else { '_' }).collect())
    }
}

fn tool_result(message: &Map<String, Value>, at: &str) -> Result<Value, TranslateError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::invalid(
                format!("{at}.tool_call_id is required and must be a string"),
                format!("{at}.tool_call_id"),
            )
        })?;
    let content_at = format!("{at}.content");
    let mut block = json!({ "type": "tool_result", "tool_use_id": tool_id(id) });
    let content = match message.get("content").unwrap_or(&Value::Null) {
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{content_at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => blocks.extend(text_block(part_text(part, &part_at)?)),
                    other => {
                        return Err(TranslateError::invalid(
                            format!(
                                "{part_at}: content part type {other:?} is not allowed in a tool message, only text"
                            ),
                            format!("{part_at}.type"),
                        ));
                    }
                }
            }
            (!blocks.is_empty()).then_some(Value::Array(blocks))
        }
        other => {
            let text = plain_text(other, &content_at)?;
            (!text.is_empty()).then_some(Value::String(text))
        }
    };
    if let (Some(content), Value::Object(block)) = (content, &mut block) {
        block.insert("content".into(), content);
    }
    Ok(block)
}

fn tools(req: &Map<String, Value>) -> Result<Option<Vec<Value>>, TranslateError> {
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
                format!("{at}.type must be function (the only tool type Anthropic can run here)"),
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
        let mut out = Map::new();
        out.insert("name".into(), name.into());
        match function.get("description") {
            None | Some(Value::Null) => {}
            Some(d @ Value::String(_)) => {
                out.insert("description".into(), d.clone());
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
        out.insert("input_schema".into(), schema);
        tools.push(Value::Object(out));
    }
    Ok(Some(tools))
}

fn tool_choice(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let invalid = || {
        TranslateError::invalid(
            "tool_choice must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}",
            "tool_choice",
        )
    };
    let mut choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({ "type": "auto" })),
            "none" => Some(json!({ "type": "none" })),
            "required" => Some(json!({ "type": "any" })),
            _ => return Err(invalid()),
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| o.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(invalid)?;
            Some(json!({ "type": "tool", "name": name }))
        }
        Some(_) => return Err(invalid()),
    };
    match req.get("parallel_tool_calls") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            let choice = choice.get_or_insert_with(|| json!({ "type": "auto" }));
            if let Some(o) = choice
                .as_object_mut()
                .filter(|o| o.get("type") != Some(&json!("none")))
            {
                o.insert("disable_parallel_tool_use".into(), true.into());
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "parallel_tool_calls must be a boolean",
                "parallel_tool_calls",
            ));
        }
    }
    Ok(choice)
}

fn stop_sequences(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let invalid =
        || TranslateError::invalid("stop must be a string or an array of strings", "stop");
    match req.get("stop") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(json!([s]))),
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err(invalid());
            }
            Ok((!list.is_empty()).then(|| Value::Array(list.clone())))
        }
        Some(_) => Err(invalid()),
    }
}

/// `user`, else `safety_identifier` (its successor in the OpenAI API).
fn user_id(req: &Map<String, Value>) -> Result<Option<String>, TranslateError> {
    for name in ["user", "safety_identifier"] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{name} must be a string"),
                    name,
                ));
            }
        }
    }
    Ok(None)
}

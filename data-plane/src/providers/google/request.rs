//! OpenAI chat request → Gemini `GenerateContentRequest`. See the module docs for the
//! mappings.

use std::collections::HashMap;

use crate::providers::openai::{part_text, part_type, plain_text};
use serde_json::{Map, Value, json};

use super::TranslateError;

/// OpenAI chat request JSON → Gemini `generateContent` / `streamGenerateContent` body.
///
/// The app's `model` is ignored (routing chose the upstream model, which goes in the URL),
/// and so is `stream` (it picks the URL, not the body).
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
    for name in ["functions", "function_call"] {
        if req.get(name).is_some_and(|v| !v.is_null()) {
            return Err(TranslateError::invalid(
                format!("{name} is deprecated and not supported for Gemini models: use tools"),
                name,
            ));
        }
    }
    match req.get("stream") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => {
            return Err(TranslateError::invalid(
                "stream must be a boolean",
                "stream",
            ));
        }
    }

    let mut out = Map::new();
    let (system, contents) = contents(&req)?;
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(declarations) = function_declarations(&req)? {
        out.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
        if let Some(config) = function_calling_config(&req)? {
            out.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": config }),
            );
        }
    }
    let config = generation_config(&req)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }

    serde_json::to_vec(&Value::Object(out)).map_err(|e| TranslateError::InvalidRequest {
        message: format!("the request could not be encoded: {e}"),
        param: None,
    })
}

fn generation_config(req: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut config = Map::new();
    for name in ["max_completion_tokens", "max_tokens"] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                match v.as_u64() {
                    Some(n) if n > 0 => config.insert("maxOutputTokens".into(), n.into()),
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
    for (name, gemini) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        match req.get(name) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                config.insert(gemini.into(), v.clone());
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{name} must be a number"),
                    name,
                ));
            }
        }
    }
    match req.get("seed") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_i64().is_some() => {
            config.insert("seed".into(), v.clone());
        }
        Some(_) => return Err(TranslateError::invalid("seed must be an integer", "seed")),
    }
    match req.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) => match n.as_u64() {
            Some(count) if count > 1 => {
                config.insert("candidateCount".into(), count.into());
            }
            _ => return Err(TranslateError::invalid("n must be a positive integer", "n")),
        },
    }
    if let Some(stops) = stop_sequences(req)? {
        config.insert("stopSequences".into(), stops);
    }
    response_format(req, &mut config)?;
    Ok(config)
}

fn response_format(
    req: &Map<String, Value>,
    config: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let Some(format) = req.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            let schema = match format.pointer("/json_schema/schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                _ => {
                    return Err(TranslateError::invalid(
                        "response_format.json_schema.schema must be a JSON Schema object",
                        "response_format.json_schema.schema",
                    ));
                }
            };
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), schema);
        }
        _ => {
            return Err(TranslateError::invalid(
                "response_format.type must be text, json_object or json_schema",
                "response_format.type",
            ));
        }
    }
    Ok(())
}

/// One Gemini `Content` being built; consecutive same-role OpenAI messages land in one.
struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

/// The `systemInstruction` parts and the `contents`.
fn contents(req: &Map<String, Value>) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
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
    // Tool call id → function name, of the assistant calls seen so far (latest wins, since
    // generated ids like `call_0` repeat from one answer to the next).
    let mut call_names: HashMap<String, String> = HashMap::new();
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
                    system.push(json!({ "text": text }));
                }
            }
            "user" => push_turn(&mut turns, "user", user_parts(content, &content_at)?),
            "assistant" => {
                let mut parts = assistant_parts(content, &content_at)?;
                parts.extend(function_calls(
                    message.get("tool_calls"),
                    &at,
                    &mut call_names,
                )?);
                push_turn(&mut turns, "model", parts);
            }
            "tool" => {
                let part = function_response(message, &at, &call_names)?;
                push_turn(&mut turns, "user", vec![part]);
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
    let contents = turns
        .into_iter()
        .map(|turn| json!({ "role": turn.role, "parts": turn.parts }))
        .collect();
    Ok((system, contents))
}

/// Appends parts to the last turn when it has the same role, else starts a new turn.
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => turns.push(Turn { role, parts }),
    }
}

fn user_parts(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(text_part(s).into_iter().collect()),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => out.extend(text_part(part_text(part, &part_at)?)),
                    "image_url" => out.push(image_part(part, &part_at)?),
                    "input_audio" => out.push(audio_part(part, &part_at)?),
                    other => {
                        return Err(TranslateError::invalid(
                            format!(
                                "{part_at}: content part type {other:?} is not supported for \
                                 Gemini models (text, image_url and input_audio are)"
                            ),
                            format!("{part_at}.type"),
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(TranslateError::invalid(
            format!("{at} must be a string or an array of content parts"),
            at,
        )),
    }
}

fn assistant_parts(content: &Value, at: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(text_part(s).into_iter().collect()),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => out.extend(text_part(part_text(part, &part_at)?)),
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
            Ok(out)
        }
        _ => Err(TranslateError::invalid(
            format!("{at} must be a string, an array of content parts or null"),
            at,
        )),
    }
}

/// A text part, or nothing for empty text (an empty part is useless and may be refused).
fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

fn image_part(part: &Value, at: &str) -> Result<Value, TranslateError> {
    let url_at = format!("{at}.image_url.url");
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(image) => image.get("url").and_then(Value::as_str).unwrap_or_default(),
        None => "",
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').unwrap_or((rest, ""));
        let mime_type = header.strip_suffix(";base64").unwrap_or_default();
        if mime_type.is_empty() || data.is_empty() {
            return Err(TranslateError::invalid(
                format!("{url_at}: a data URL must look like data:image/png;base64,<data>"),
                url_at,
            ));
        }
        return Ok(json!({ "inlineData": { "mimeType": mime_type, "data": data } }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        let Some(mime_type) = image_mime_type(url) else {
            return Err(TranslateError::invalid(
                format!(
                    "{url_at}: Gemini needs the image type; use a URL ending in .png, .jpg, \
                     .jpeg, .webp, .gif, .heic or .heif, or a base64 data URL"
                ),
                url_at,
            ));
        };
        return Ok(json!({ "fileData": { "mimeType": mime_type, "fileUri": url } }));
    }
    Err(TranslateError::invalid(
        format!("{url_at} must be an http(s) URL or a base64 data URL"),
        url_at,
    ))
}

/// The MIME type of an image URL, from the extension of its path.
fn image_mime_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let (_, extension) = path.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

fn audio_part(part: &Value, at: &str) -> Result<Value, TranslateError> {
    let audio = part.get("input_audio").unwrap_or(&Value::Null);
    let data = audio
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if data.is_empty() {
        return Err(TranslateError::invalid(
            format!("{at}.input_audio.data must be base64 audio"),
            format!("{at}.input_audio.data"),
        ));
    }
    let mime_type = match audio.get("format").and_then(Value::as_str) {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mp3",
        Some("flac") => "audio/flac",
        Some("aac") => "audio/aac",
        Some("ogg") => "audio/ogg",
        _ => {
            return Err(TranslateError::invalid(
                format!("{at}.input_audio.format must be wav, mp3, flac, aac or ogg"),
                format!("{at}.input_audio.format"),
            ));
        }
    };
    Ok(json!({ "inlineData": { "mimeType": mime_type, "data": data } }))
}

/// `functionCall` parts of an assistant message; records each call's name by id.
fn function_calls(
    tool_calls: Option<&Value>,
    at: &str,
    names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, TranslateError> {
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
    let mut parts = Vec::with_capacity(calls.len());
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
        let args: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                TranslateError::invalid(format!("{args_at} is not valid JSON: {e}"), &args_at)
            })?
        };
        if !args.is_object() {
            return Err(TranslateError::invalid(
                format!("{args_at} must be a JSON object"),
                args_at,
            ));
        }
        names.insert(id.to_owned(), name.to_owned());
        parts.push(json!({ "functionCall": { "name": name, "args": args } }));
    }
    Ok(parts)
}

fn function_response(
    message: &Map<String, Value>,
    at: &str,
    names: &HashMap<String, String>,
) -> Result<Value, TranslateError> {
    let id_at = format!("{at}.tool_call_id");
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::invalid(format!("{id_at} is required and must be a string"), &id_at)
        })?;
    let name = names.get(id).ok_or_else(|| {
        TranslateError::invalid(
            format!(
                "{id_at} {id:?} does not match a tool call of an earlier assistant message \
                 (Gemini needs the function name of each result)"
            ),
            &id_at,
        )
    })?;
    let text = plain_text(
        message.get("content").unwrap_or(&Value::Null),
        &format!("{at}.content"),
    )?;
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

fn function_declarations(req: &Map<String, Value>) -> Result<Option<Vec<Value>>, TranslateError> {
    let list = match req.get("tools") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) if list.is_empty() => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::invalid("tools must be an array", "tools")),
    };
    let mut declarations = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(TranslateError::invalid(
                format!("{at}.type must be function (the only tool type Gemini can run here)"),
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
        match function.get("parameters") {
            None | Some(Value::Null) => {}
            Some(p @ Value::Object(_)) => {
                out.insert("parametersJsonSchema".into(), p.clone());
            }
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{at}.function.parameters must be a JSON Schema object"),
                    format!("{at}.function.parameters"),
                ));
            }
        }
        declarations.push(Value::Object(out));
    }
    Ok(Some(declarations))
}

fn function_calling_config(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let invalid = || {
        TranslateError::invalid(
            "tool_choice must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}",
            "tool_choice",
        )
    };
    Ok(match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({ "mode": "AUTO" })),
            "none" => Some(json!({ "mode": "NONE" })),
            "required" => Some(json!({ "mode": "ANY" })),
            _ => return Err(invalid()),
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| o.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(invalid)?;
            Some(json!({ "mode": "ANY", "allowedFunctionNames": [name] }))
        }
        Some(_) => return Err(invalid()),
    })
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

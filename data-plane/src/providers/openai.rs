//! The OpenAI side that every translator shares: reading content parts of the app's request,
//! writing error bodies and SSE chunks.

use serde::Serialize;
use serde_json::Value;

use super::TranslateError;

/// Text of a system/developer/tool message: a string or an array of text parts.
pub(crate) fn plain_text(content: &Value, at: &str) -> Result<String, TranslateError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let part_at = format!("{at}[{j}]");
                match part_type(part, &part_at)? {
                    "text" => text.push_str(part_text(part, &part_at)?),
                    other => {
                        return Err(TranslateError::invalid(
                            format!(
                                "{part_at}: content part type {other:?} is not allowed here, only text"
                            ),
                            format!("{part_at}.type"),
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(TranslateError::invalid(
            format!("{at} must be a string or an array of content parts"),
            at,
        )),
    }
}

pub(crate) fn part_type<'a>(part: &'a Value, at: &str) -> Result<&'a str, TranslateError> {
    part.get("type").and_then(Value::as_str).ok_or_else(|| {
        TranslateError::invalid(
            format!("{at} must be an object with a string type"),
            format!("{at}.type"),
        )
    })
}

pub(crate) fn part_text<'a>(part: &'a Value, at: &str) -> Result<&'a str, TranslateError> {
    part.get("text").and_then(Value::as_str).ok_or_else(|| {
        TranslateError::invalid(format!("{at}.text must be a string"), format!("{at}.text"))
    })
}

#[derive(Serialize)]
pub(crate) struct OpenAiErrorBody<'a> {
    pub(crate) error: OpenAiError<'a>,
}

#[derive(Serialize)]
pub(crate) struct OpenAiError<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

/// `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Vec<u8> {
    let body = OpenAiErrorBody {
        error: OpenAiError {
            message,
            kind,
            param,
            code,
        },
    };
    // Serializing borrowed strings into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Appends `data: <json>\n\n`; on the (impossible) serialization failure appends nothing.
pub(crate) fn write_data(out: &mut Vec<u8>, value: &impl Serialize) {
    let mark = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.extend_from_slice(b"\n\n");
    } else {
        out.truncate(mark);
    }
}

//! Anthropic `message` → OpenAI `chat.completion`, plus the OpenAI shapes the stream shares.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{TranslateError, Usage, error::ErrorDetail, unix_now};

/// Anthropic response → OpenAI `chat.completion`; `client_model` is the model name echoed back.
pub fn translate_response(
    anthropic: &[u8],
    client_model: &str,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    translate_response_at(anthropic, client_model, unix_now())
}

/// [`translate_response`] with a given `created` timestamp (deterministic, for tests).
pub fn translate_response_at(
    anthropic: &[u8],
    client_model: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let message: Message = serde_json::from_slice(anthropic)
        .map_err(|e| TranslateError::BadUpstream(format!("not a Messages API response: {e}")))?;
    if message.kind != "message" {
        let detail = message.error.and_then(|e| e.message).unwrap_or_default();
        return Err(TranslateError::BadUpstream(format!(
            "expected type \"message\", got {:?} {detail}",
            message.kind
        )));
    }
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text { text: t } => text.push_str(t),
            Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                index: None,
                id: Some(id),
                kind: Some("function"),
                function: FunctionCall {
                    name: Some(name),
                    arguments: compact_json(input),
                },
            }),
            Block::Other => {}
        }
    }
    let usage = message.usage.unwrap_or_default();
    let completion = ChatCompletion {
        id: format!("chatcmpl-{}", message.id),
        object: "chat.completion",
        created,
        model: client_model,
        choices: [Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                tool_calls,
            },
            logprobs: None,
            finish_reason: message.stop_reason.as_deref().map(finish_reason),
        }],
        usage: OpenAiUsage::from(&usage),
    };
    let body = serde_json::to_vec(&completion)
        .map_err(|e| TranslateError::BadUpstream(format!("response could not be encoded: {e}")))?;
    Ok((body, usage.to_usage()))
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub(crate) fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn (a server tool paused the turn) and the unknown.
        _ => "stop",
    }
}

/// Compact JSON text of a tool input (serializing a `Value` cannot fail).
pub(crate) fn compact_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<AnthropicUsage>,
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// Anthropic `usage`; every field may be absent or null (cache fields often are).
#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct AnthropicUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_creation_input_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// All prompt tokens: uncached input plus cache writes and reads.
    pub(crate) fn prompt_tokens(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(*b))
        })
    }

    fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens().unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
        }
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: ResponseMessage<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct ResponseMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

/// An OpenAI tool call, whole (response) or as a stream delta (index set, parts omitted).
#[derive(Serialize)]
pub(crate) struct ToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) function: FunctionCall<'a>,
}

#[derive(Serialize)]
pub(crate) struct FunctionCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
    pub(crate) arguments: String,
}

/// OpenAI `usage`, cached prompt tokens reported as `prompt_tokens_details.cached_tokens`.
#[derive(Serialize)]
pub(crate) struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
}

#[derive(Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
}

impl OpenAiUsage {
    pub(crate) fn new(usage: Usage, cached_tokens: u64) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: PromptTokensDetails { cached_tokens },
        }
    }
}

impl From<&AnthropicUsage> for OpenAiUsage {
    fn from(u: &AnthropicUsage) -> Self {
        Self::new(u.to_usage(), u.cache_read_input_tokens.unwrap_or(0))
    }
}

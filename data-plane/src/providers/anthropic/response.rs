//! Anthropic `message` → OpenAI `chat.completion`, and the Anthropic shapes the stream shares.

use serde::Deserialize;
use serde_json::Value;

use super::{TranslateError, Usage, error::ErrorDetail, unix_now};
use crate::providers::openai::response::{
    FinishReason, OpenAiUsage, Reply, compact_json, completion_body,
};

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
    let mut reply = Reply::default();
    for block in &message.content {
        match block {
            Block::Text { text } => reply.push_text(text),
            Block::ToolUse { id, name, input } => {
                reply.push_tool_call(id.as_str(), name, compact_json(input));
            }
            Block::Other => {}
        }
    }
    let usage = message.usage.unwrap_or_default();
    let choice = reply.into_choice(0, message.stop_reason.as_deref().map(finish_reason));
    let id = format!("chatcmpl-{}", message.id);
    let body = completion_body(&id, created, client_model, &[choice], &usage.to_openai())?;
    Ok((body, usage.to_usage()))
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub(crate) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn (a server tool paused the turn) and the unknown.
        _ => FinishReason::Stop,
    }
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

    /// OpenAI `usage`, cache reads as `prompt_tokens_details.cached_tokens`.
    fn to_openai(self) -> OpenAiUsage {
        OpenAiUsage::new(self.to_usage(), self.cache_read_input_tokens.unwrap_or(0))
    }
}

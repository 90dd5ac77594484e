//! Bedrock Converse response → OpenAI `chat.completion`, plus the shapes the stream shares.

use serde::Deserialize;
use serde_json::Value;

use super::{TranslateError, Usage, unix_now};
use crate::providers::openai::response::{
    FinishReason, OpenAiUsage, Reply, arguments_json, completion_body, completion_id,
};

/// Converse response → OpenAI `chat.completion`; `client_model` is the model name echoed back
/// and `request_id` the `x-amzn-RequestId` response header (the answer's id).
pub fn translate_response(
    bedrock: &[u8],
    client_model: &str,
    request_id: Option<&str>,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    translate_response_at(bedrock, client_model, request_id, unix_now())
}

/// [`translate_response`] with a given `created` timestamp (deterministic, for tests).
pub fn translate_response_at(
    bedrock: &[u8],
    client_model: &str,
    request_id: Option<&str>,
    created: u64,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let response: ConverseResponse = serde_json::from_slice(bedrock)
        .map_err(|e| TranslateError::BadUpstream(format!("not a Converse response: {e}")))?;
    let message = response
        .output
        .and_then(|o| o.message)
        .ok_or_else(|| TranslateError::BadUpstream("the response has no output.message".into()))?;
    let mut reply = Reply::default();
    for block in &message.content {
        if let Some(t) = block.text.as_deref() {
            reply.push_text(t);
        } else if let Some(call) = &block.tool_use {
            let arguments = arguments_json(call.input.as_ref());
            reply.push_tool_call(call.tool_use_id.as_str(), &call.name, arguments);
        }
    }
    let has_calls = reply.tool_calls() > 0;
    let finish = response
        .stop_reason
        .as_deref()
        .map_or(FinishReason::Stop, |r| finish_reason(r, has_calls));
    let usage = response.usage.unwrap_or_default();
    let choice = reply.into_choice(0, Some(finish));
    let id = completion_id(request_id, "bedrock");
    let body = completion_body(&id, created, client_model, &[choice], &usage.to_openai())?;
    Ok((body, usage.to_usage()))
}

/// Bedrock `stopReason` → OpenAI `finish_reason`; `has_calls`: the answer called tools.
pub(crate) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        _ if has_calls => FinishReason::ToolCalls,
        // end_turn, stop_sequence, and reasons this module does not know.
        _ => FinishReason::Stop,
    }
}

/// A Converse response; every field optional so a partial answer parses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Option<Output>,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Output {
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Vec<ContentBlock>,
}

/// A content block; only the members we translate (a union: one is set).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlock {
    text: Option<String>,
    tool_use: Option<ToolUse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    input: Option<Value>,
}

/// Bedrock `usage` (in a response or a stream's `metadata` event).
#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_read_input_tokens: Option<u64>,
    pub(crate) cache_write_input_tokens: Option<u64>,
}

impl TokenUsage {
    pub(crate) fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
                .saturating_add(self.cache_write_input_tokens.unwrap_or(0)),
            output_tokens: self.output_tokens.unwrap_or(0),
        }
    }

    /// OpenAI `usage`, cache reads as `prompt_tokens_details.cached_tokens`.
    pub(crate) fn to_openai(self) -> OpenAiUsage {
        OpenAiUsage::new(self.to_usage(), self.cache_read_input_tokens.unwrap_or(0))
    }
}

//! Bedrock Converse response → OpenAI `chat.completion`, plus the shapes the stream shares.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{TranslateError, Usage, completion_id, unix_now};

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
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        if let Some(t) = block.text.as_deref() {
            text.push_str(t);
        } else if let Some(call) = &block.tool_use {
            tool_calls.push(ToolCall {
                index: None,
                id: Some(&call.tool_use_id),
                kind: Some("function"),
                function: FunctionCall {
                    name: Some(&call.name),
                    arguments: call.arguments(),
                },
            });
        }
    }
    let finish = response
        .stop_reason
        .as_deref()
        .map_or("stop", |r| finish_reason(r, !tool_calls.is_empty()));
    let usage = response.usage.unwrap_or_default();
    let completion = ChatCompletion {
        id: completion_id(request_id),
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
            finish_reason: finish,
        }],
        usage: OpenAiUsage::from(&usage),
    };
    let body = serde_json::to_vec(&completion)
        .map_err(|e| TranslateError::BadUpstream(format!("response could not be encoded: {e}")))?;
    Ok((body, usage.to_usage()))
}

/// Bedrock `stopReason` → OpenAI `finish_reason`; `has_calls`: the answer called tools.
pub(crate) fn finish_reason(reason: &str, has_calls: bool) -> &'static str {
    match reason {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ if has_calls => "tool_calls",
        // end_turn, stop_sequence, and reasons this module does not know.
        _ => "stop",
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

impl ToolUse {
    /// Compact JSON of `input` (`{}` when absent; serializing a `Value` cannot fail).
    fn arguments(&self) -> String {
        match &self.input {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(input) => serde_json::to_string(input).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
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
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ResponseMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

/// An OpenAI tool call, whole (response, with no index) or as a stream delta.
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

/// OpenAI `usage`, with cache reads in `prompt_tokens_details.cached_tokens`.
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

impl From<&TokenUsage> for OpenAiUsage {
    fn from(u: &TokenUsage) -> Self {
        let usage = u.to_usage();
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: u.cache_read_input_tokens.unwrap_or(0),
            },
        }
    }
}

//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`, plus the Gemini and OpenAI
//! shapes the stream shares.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ErrorDetail;
use super::{TranslateError, Usage, unix_now};

/// Gemini response → OpenAI `chat.completion`; `client_model` is the model name echoed back.
pub fn translate_response(
    gemini: &[u8],
    client_model: &str,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    translate_response_at(gemini, client_model, unix_now())
}

/// [`translate_response`] with a given `created` timestamp (deterministic, for tests).
pub fn translate_response_at(
    gemini: &[u8],
    client_model: &str,
    created: u64,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let response: GenerateContentResponse = serde_json::from_slice(gemini)
        .map_err(|e| TranslateError::BadUpstream(format!("not a GenerateContentResponse: {e}")))?;
    if let Some(error) = &response.error {
        return Err(TranslateError::BadUpstream(format!(
            "Gemini answered with an error: {}",
            error.message.as_deref().unwrap_or("(no message)")
        )));
    }
    let mut choices: Vec<Choice> = Vec::with_capacity(response.candidates.len().max(1));
    let mut candidates: Vec<&Candidate> = response.candidates.iter().collect();
    candidates.sort_by_key(|c| c.index.unwrap_or(0));
    for (position, candidate) in candidates.into_iter().enumerate() {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for part in candidate.parts() {
            match part.kind() {
                PartKind::Text(t) => text.push_str(t),
                PartKind::Call(call) => {
                    let n = tool_calls.len();
                    tool_calls.push(ToolCall {
                        index: None,
                        id: Some(format!("call_{n}")),
                        kind: Some("function"),
                        function: FunctionCall {
                            name: Some(&call.name),
                            arguments: Some(call.arguments()),
                        },
                    });
                }
                PartKind::Other => {}
            }
        }
        let finish = candidate
            .finish_reason
            .as_deref()
            .map(|r| finish_reason(r, !tool_calls.is_empty()));
        choices.push(Choice {
            index: candidate
                .index
                .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX)),
            message: ResponseMessage {
                role: "assistant",
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        });
    }
    if choices.is_empty() {
        if response.block_reason().is_none() {
            return Err(TranslateError::BadUpstream(
                "the response has neither candidates nor a prompt block reason".into(),
            ));
        }
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: None,
                tool_calls: Vec::new(),
            },
            logprobs: None,
            finish_reason: Some("content_filter"),
        });
    }
    let usage = response.usage_metadata.unwrap_or_default();
    let completion = ChatCompletion {
        id: completion_id(response.response_id.as_deref()),
        object: "chat.completion",
        created,
        model: client_model,
        choices,
        usage: OpenAiUsage::from(&usage),
    };
    let body = serde_json::to_vec(&completion)
        .map_err(|e| TranslateError::BadUpstream(format!("response could not be encoded: {e}")))?;
    Ok((body, usage.to_usage()))
}

/// `chatcmpl-<responseId>`, or a fixed id when Gemini sent none.
pub(crate) fn completion_id(response_id: Option<&str>) -> String {
    match response_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("chatcmpl-{id}"),
        None => "chatcmpl-gemini".to_owned(),
    }
}

/// Gemini `finishReason` → OpenAI `finish_reason`; `has_calls`: the candidate called tools.
pub(crate) fn finish_reason(reason: &str, has_calls: bool) -> &'static str {
    if has_calls {
        return "tool_calls";
    }
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, the unknown.
        _ => "stop",
    }
}

/// A `GenerateContentResponse` (one per SSE event when streaming). Every field is optional
/// so a partial chunk parses; an `error` appears when a stream fails midway.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) prompt_feedback: Option<PromptFeedback>,
    pub(crate) usage_metadata: Option<UsageMetadata>,
    pub(crate) response_id: Option<String>,
    pub(crate) error: Option<ErrorDetail>,
}

impl GenerateContentResponse {
    /// Why the prompt was blocked, when it was.
    pub(crate) fn block_reason(&self) -> Option<&str> {
        self.prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "BLOCK_REASON_UNSPECIFIED")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    content: Option<Content>,
    pub(crate) finish_reason: Option<String>,
    pub(crate) index: Option<u32>,
}

impl Candidate {
    pub(crate) fn parts(&self) -> &[Part] {
        self.content.as_ref().map_or(&[], |c| c.parts.as_slice())
    }
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    text: Option<String>,
    thought: Option<bool>,
    function_call: Option<GeminiFunctionCall>,
}

/// What a part means for the OpenAI answer.
pub(crate) enum PartKind<'a> {
    Text(&'a str),
    Call(&'a GeminiFunctionCall),
    Other,
}

impl Part {
    pub(crate) fn kind(&self) -> PartKind<'_> {
        if let Some(call) = &self.function_call {
            return PartKind::Call(call);
        }
        match &self.text {
            // Thought summaries are reasoning, not the answer.
            Some(t) if self.thought != Some(true) && !t.is_empty() => PartKind::Text(t),
            _ => PartKind::Other,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct GeminiFunctionCall {
    pub(crate) name: String,
    args: Option<Value>,
}

impl GeminiFunctionCall {
    /// Compact JSON of `args` (`{}` when absent; serializing a `Value` cannot fail).
    pub(crate) fn arguments(&self) -> String {
        match &self.args {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
}

/// Gemini `usageMetadata`; every field may be absent (streams send it on every chunk, the
/// counts cumulative).
#[derive(Deserialize, Default, Clone, Copy, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    pub(crate) prompt_token_count: Option<u64>,
    pub(crate) candidates_token_count: Option<u64>,
    pub(crate) thoughts_token_count: Option<u64>,
    pub(crate) tool_use_prompt_token_count: Option<u64>,
    pub(crate) cached_content_token_count: Option<u64>,
}

impl UsageMetadata {
    pub(crate) fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self
                .prompt_token_count
                .unwrap_or(0)
                .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0)),
            output_tokens: self
                .candidates_token_count
                .unwrap_or(0)
                .saturating_add(self.thoughts_token_count.unwrap_or(0)),
        }
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
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

/// An OpenAI tool call, whole (response, with no index) or as a stream delta.
#[derive(Serialize)]
pub(crate) struct ToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    pub(crate) function: FunctionCall<'a>,
}

#[derive(Serialize)]
pub(crate) struct FunctionCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) arguments: Option<String>,
}

/// OpenAI `usage`, with cached prompt tokens and thinking tokens in the details.
#[derive(Serialize)]
pub(crate) struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    completion_tokens_details: CompletionTokensDetails,
}

#[derive(Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
}

impl From<&UsageMetadata> for OpenAiUsage {
    fn from(u: &UsageMetadata) -> Self {
        let usage = u.to_usage();
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: u.cached_content_token_count.unwrap_or(0),
            },
            completion_tokens_details: CompletionTokensDetails {
                reasoning_tokens: u.thoughts_token_count.unwrap_or(0),
            },
        }
    }
}

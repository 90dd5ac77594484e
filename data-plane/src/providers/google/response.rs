//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`, plus the Gemini and OpenAI
//! shapes the stream shares.

use serde::Deserialize;
use serde_json::Value;

use super::error::ErrorDetail;
use super::{TranslateError, Usage, unix_now};
use crate::providers::openai::response::{
    Choice, FinishReason, OpenAiUsage, Reply, arguments_json, completion_body, completion_id,
};

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
        let mut reply = Reply::default();
        for part in candidate.parts() {
            match part.kind() {
                PartKind::Text(t) => reply.push_text(t),
                PartKind::Call(call) => {
                    let id = format!("call_{}", reply.tool_calls());
                    reply.push_tool_call(id, &call.name, call.arguments());
                }
                PartKind::Other => {}
            }
        }
        let has_calls = reply.tool_calls() > 0;
        let finish = candidate
            .finish_reason
            .as_deref()
            .map(|r| finish_reason(r, has_calls));
        let index = candidate
            .index
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        choices.push(reply.into_choice(index, finish));
    }
    if choices.is_empty() {
        if response.block_reason().is_none() {
            return Err(TranslateError::BadUpstream(
                "the response has neither candidates nor a prompt block reason".into(),
            ));
        }
        choices.push(Choice::without_content(0, FinishReason::ContentFilter));
    }
    let usage = response.usage_metadata.unwrap_or_default();
    let id = completion_id(response.response_id.as_deref(), "gemini");
    let body = completion_body(&id, created, client_model, &choices, &usage.to_openai())?;
    Ok((body, usage.to_usage()))
}

/// Gemini `finishReason` → OpenAI `finish_reason`; `has_calls`: the candidate called tools.
pub(crate) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    if has_calls {
        return FinishReason::ToolCalls;
    }
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, the unknown.
        _ => FinishReason::Stop,
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
    /// Compact JSON of `args` (`{}` when absent).
    pub(crate) fn arguments(&self) -> String {
        arguments_json(self.args.as_ref())
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

    /// OpenAI `usage`: cached and thinking tokens in the details.
    pub(crate) fn to_openai(self) -> OpenAiUsage {
        OpenAiUsage::new(
            self.to_usage(),
            self.cached_content_token_count.unwrap_or(0),
        )
        .with_reasoning_tokens(self.thoughts_token_count.unwrap_or(0))
    }
}

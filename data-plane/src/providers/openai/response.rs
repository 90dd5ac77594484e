//! OpenAI `chat.completion` output: the body, its choices, tool calls, `finish_reason` and
//! `usage`. Tool calls and usage are shared with the stream chunks.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::providers::{TranslateError, Usage};

/// OpenAI `finish_reason`; each provider maps its own stop reasons onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

/// `chatcmpl-<id>`, or `chatcmpl-<provider>` when the provider gave no id.
pub(crate) fn completion_id(id: Option<&str>, provider: &str) -> String {
    match id.filter(|id| !id.is_empty()) {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-{provider}"),
    }
}

/// Compact JSON text of tool arguments (serializing a `Value` cannot fail).
pub(crate) fn compact_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// [`compact_json`] of arguments a provider may leave out: `{}` when absent or null.
pub(crate) fn arguments_json(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(value) => compact_json(value),
    }
}

/// The `chat.completion` body.
pub(crate) fn completion_body(
    id: &str,
    created: u64,
    model: &str,
    choices: &[Choice<'_>],
    usage: &OpenAiUsage,
) -> Result<Vec<u8>, TranslateError> {
    let completion = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices,
        usage,
    };
    serde_json::to_vec(&completion)
        .map_err(|e| TranslateError::BadUpstream(format!("response could not be encoded: {e}")))
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    usage: &'a OpenAiUsage,
}

/// One choice of a `chat.completion`.
#[derive(Serialize)]
pub(crate) struct Choice<'a> {
    index: u32,
    message: ResponseMessage<'a>,
    logprobs: Option<()>,
    finish_reason: Option<FinishReason>,
}

impl Choice<'_> {
    /// A choice with no message content (`content: null`), e.g. a blocked prompt.
    pub(crate) fn without_content(index: u32, finish_reason: FinishReason) -> Self {
        Self {
            index,
            message: ResponseMessage {
                role: "assistant",
                content: None,
                tool_calls: Vec::new(),
            },
            logprobs: None,
            finish_reason: Some(finish_reason),
        }
    }
}

#[derive(Serialize)]
struct ResponseMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

/// An assistant reply being assembled from the provider's blocks.
#[derive(Default)]
pub(crate) struct Reply<'a> {
    text: String,
    tool_calls: Vec<ToolCallOut<'a>>,
}

impl<'a> Reply<'a> {
    pub(crate) fn push_text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn push_tool_call(
        &mut self,
        id: impl Into<Cow<'a, str>>,
        name: &'a str,
        arguments: String,
    ) {
        self.tool_calls.push(ToolCallOut {
            index: None,
            id: Some(id.into()),
            kind: Some("function"),
            function: FunctionCall {
                name: Some(name),
                arguments: Cow::Owned(arguments),
            },
        });
    }

    /// How many tool calls the reply holds so far.
    pub(crate) fn tool_calls(&self) -> usize {
        self.tool_calls.len()
    }

    /// The choice; the text is concatenated, and `content` is `null` when the reply holds
    /// only tool calls.
    pub(crate) fn into_choice(self, index: u32, finish_reason: Option<FinishReason>) -> Choice<'a> {
        let content = (!self.text.is_empty() || self.tool_calls.is_empty()).then_some(self.text);
        Choice {
            index,
            message: ResponseMessage {
                role: "assistant",
                content,
                tool_calls: self.tool_calls,
            },
            logprobs: None,
            finish_reason,
        }
    }
}

/// An OpenAI tool call: whole (in a response, no index) or a stream delta (with its index;
/// after the first delta of a call, only argument fragments).
#[derive(Serialize)]
pub(crate) struct ToolCallOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: Cow<'a, str>,
}

impl<'a> ToolCallOut<'a> {
    /// The first delta of call `index`: its id, name and `arguments` so far.
    pub(crate) fn start(
        index: u32,
        id: impl Into<Cow<'a, str>>,
        name: &'a str,
        arguments: impl Into<Cow<'a, str>>,
    ) -> Self {
        Self {
            index: Some(index),
            id: Some(id.into()),
            kind: Some("function"),
            function: FunctionCall {
                name: Some(name),
                arguments: arguments.into(),
            },
        }
    }

    /// A later delta of call `index`: a fragment of its arguments.
    pub(crate) fn arguments(index: u32, fragment: impl Into<Cow<'a, str>>) -> Self {
        Self {
            index: Some(index),
            id: None,
            kind: None,
            function: FunctionCall {
                name: None,
                arguments: fragment.into(),
            },
        }
    }
}

/// OpenAI `usage`: cached prompt tokens in `prompt_tokens_details`, and thinking tokens in
/// `completion_tokens_details` for providers that report them apart.
#[derive(Debug, Serialize)]
pub(crate) struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
}

impl OpenAiUsage {
    pub(crate) fn new(usage: Usage, cached_tokens: u64) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            prompt_tokens_details: PromptTokensDetails { cached_tokens },
            completion_tokens_details: None,
        }
    }

    /// With `completion_tokens_details.reasoning_tokens` (already part of the output tokens).
    pub(crate) fn with_reasoning_tokens(mut self, reasoning_tokens: u64) -> Self {
        self.completion_tokens_details = Some(CompletionTokensDetails { reasoning_tokens });
        self
    }
}

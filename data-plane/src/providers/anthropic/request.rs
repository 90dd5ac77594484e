//! OpenAI chat request → Anthropic Messages request. See the module docs for the mappings.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::providers::openai::messages::{
    Blocks, Content, ImageSource, Part, PartBody, ToolCall, ToolResult, Turn, conversation,
    safe_tool_id,
};
use crate::providers::openai::request::{
    ChatRequest, RequestBody, Schema, Stop, ToolChoice, encode,
};

use super::TranslateError;

const PROVIDER: &str = "Anthropic";

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
    let body = RequestBody::parse(openai)?;
    let req = body.chat(PROVIDER);
    // Refused rather than silently dropped: dropping them would change what the app gets.
    if req.n()? != 1 {
        return Err(req.several_choices());
    }
    req.refuse_json_output()?;
    req.refuse_functions()?;

    let max_tokens = req
        .max_tokens()?
        .unwrap_or_else(|| u64::from(default_max_tokens));
    let mut blocks = Messages { system: Vec::new() };
    let messages = conversation(&req, &mut blocks)?
        .finish_results_first(|b| matches!(b, Block::ToolResult { .. }))?;
    // System and developer messages, wherever they are, joined in order.
    let system = blocks.system.join("\n\n");
    let tools = req.tools(|tool| Tool {
        name: tool.name,
        description: tool.description,
        input_schema: tool.schema(),
    })?;
    let tool_choice = match tools {
        Some(_) => tool_choice(&req)?,
        None => None,
    };
    let stop_sequences = req.stop()?;
    let temperature = req.temperature()?;
    let top_p = req.top_p()?;
    let metadata = req.user()?.map(|user_id| Metadata { user_id });
    let stream = req.stream()?;

    encode(&Request {
        model: upstream_model,
        max_tokens,
        system: (!system.is_empty()).then_some(system),
        messages,
        tools,
        tool_choice,
        stop_sequences,
        temperature,
        top_p,
        metadata,
        stream,
    })
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<Block<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<AnthropicToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Stop<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// A content block of an Anthropic message.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: Source<'a>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ResultContent<'a>>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResultContent<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Schema<'a>,
}

#[derive(Serialize)]
struct AnthropicToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disable_parallel_tool_use: bool,
}

/// The conversation as Anthropic content blocks; system texts are set aside.
struct Messages<'a> {
    system: Vec<Cow<'a, str>>,
}

impl<'a> Blocks<'a> for Messages<'a> {
    type Block = Block<'a>;
    const ASSISTANT: &'static str = "assistant";

    fn system(&mut self, text: Cow<'a, str>) {
        if !text.is_empty() {
            self.system.push(text);
        }
    }

    /// Nothing for empty text (Anthropic rejects empty text blocks).
    fn text(&self, text: &'a str) -> Option<Block<'a>> {
        text_block(text)
    }

    fn user_part(&mut self, part: Part<'a>) -> Result<Block<'a>, TranslateError> {
        let PartBody::Image(image) = part.body else {
            return Err(part.not_supported(PROVIDER, "text and image_url"));
        };
        let source = match image.source()? {
            ImageSource::Base64 { media_type, data } => Source::Base64 { media_type, data },
            ImageSource::Url(url) => Source::Url { url },
        };
        Ok(Block::Image { source })
    }

    fn tool_call(&mut self, call: ToolCall<'a>) -> Block<'a> {
        Block::ToolUse {
            id: safe_tool_id(call.id),
            name: call.name,
            input: call.arguments,
        }
    }

    fn tool_result(&mut self, result: ToolResult<'a>) -> Result<Block<'a>, TranslateError> {
        let content = match result.content()? {
            content @ Content::Parts(..) => {
                let mut blocks = Vec::new();
                for part in content.parts() {
                    blocks.extend(text_block(part?.text_only("in a tool message, only text")?));
                }
                (!blocks.is_empty()).then_some(ResultContent::Blocks(blocks))
            }
            content => {
                let text = content.plain_text()?;
                (!text.is_empty()).then_some(ResultContent::Text(text))
            }
        };
        Ok(Block::ToolResult {
            tool_use_id: safe_tool_id(result.tool_call_id),
            content,
        })
    }
}

/// A text block, or nothing for empty text.
fn text_block(text: &str) -> Option<Block<'_>> {
    (!text.is_empty()).then_some(Block::Text { text })
}

fn tool_choice<'a>(
    req: &ChatRequest<'a>,
) -> Result<Option<AnthropicToolChoice<'a>>, TranslateError> {
    let make = |kind, name| AnthropicToolChoice {
        kind,
        name,
        disable_parallel_tool_use: false,
    };
    let mut choice = req.tool_choice()?.map(|c| match c {
        ToolChoice::Auto => make("auto", None),
        ToolChoice::None => make("none", None),
        ToolChoice::Required => make("any", None),
        ToolChoice::Function(name) => make("tool", Some(name)),
    });
    if !req.parallel_tool_calls()? {
        let choice = choice.get_or_insert_with(|| make("auto", None));
        choice.disable_parallel_tool_use = choice.kind != "none";
    }
    Ok(choice)
}

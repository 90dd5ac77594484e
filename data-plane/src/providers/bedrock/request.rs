//! OpenAI chat request → Bedrock Converse request. See the module docs for the mappings.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::providers::openai::messages::{
    Blocks, Part, PartBody, ToolCall, ToolResult, Turn, conversation, safe_tool_id,
};
use crate::providers::openai::request::{
    ChatRequest, RequestBody, Schema, Stop, ToolChoice, encode, n_not_positive,
};

use super::TranslateError;

const PROVIDER: &str = "Bedrock";

/// OpenAI chat request JSON → Converse / ConverseStream request JSON.
///
/// The app's `model` is ignored (routing chose the upstream model, which goes in the URL),
/// and so is `stream` (it picks `/converse` or `/converse-stream`, not the body).
pub fn translate_request(openai: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let body = RequestBody::parse(openai)?;
    let req = body.chat(PROVIDER);
    // Refused rather than silently dropped: dropping them would change what the app gets.
    match req.n()? {
        0 => return Err(n_not_positive()),
        1 => {}
        _ => return Err(req.several_choices()),
    }
    req.refuse_json_output()?;
    req.refuse_functions()?;
    req.stream()?;

    let mut blocks = Messages {
        system: Vec::new(),
        uses_tools: false,
    };
    let messages = conversation(&req, &mut blocks)?
        .finish_results_first(|b| matches!(b, Block::ToolResult { .. }))?;
    let Messages { system, uses_tools } = blocks;
    let inference_config = InferenceConfig {
        max_tokens: req.max_tokens()?,
        temperature: req.temperature()?,
        top_p: req.top_p()?,
        stop_sequences: req.stop()?,
    };
    encode(&Request {
        messages,
        system: (!system.is_empty()).then_some(system),
        inference_config,
        tool_config: tool_config(&req, uses_tools)?,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    messages: Vec<Turn<Block<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Vec<Block<'a>>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Stop<'a>>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A Converse `ContentBlock` (a union: one member set).
#[derive(Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
enum Block<'a> {
    Text(Cow<'a, str>),
    Image {
        format: &'static str,
        source: ImageBytes<'a>,
    },
    ToolUse {
        tool_use_id: Cow<'a, str>,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: [ResultContent<'a>; 1],
    },
}

#[derive(Serialize)]
struct ImageBytes<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ResultContent<'a> {
    Json(Value),
    Text(Cow<'a, str>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<BedrockToolChoice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: Schema<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum BedrockToolChoice<'a> {
    Any {},
    Tool { name: &'a str },
}

/// The conversation as Converse content blocks; system texts are set aside, and whether any
/// message holds tool calls or results (Bedrock then requires a `toolConfig`) is noted.
struct Messages<'a> {
    system: Vec<Block<'a>>,
    uses_tools: bool,
}

impl<'a> Blocks<'a> for Messages<'a> {
    type Block = Block<'a>;
    const ASSISTANT: &'static str = "assistant";

    fn system(&mut self, text: Cow<'a, str>) {
        if !text.trim().is_empty() {
            self.system.push(Block::Text(text));
        }
    }

    /// Nothing for blank text (Bedrock rejects blank text blocks).
    fn text(&self, text: &'a str) -> Option<Block<'a>> {
        (!text.trim().is_empty()).then_some(Block::Text(Cow::Borrowed(text)))
    }

    /// Converse takes image bytes, not URLs: only base64 data URLs of the formats it knows.
    fn user_part(&mut self, part: Part<'a>) -> Result<Block<'a>, TranslateError> {
        let PartBody::Image(image) = part.body else {
            return Err(part.not_supported(PROVIDER, "text and image_url"));
        };
        let invalid = || {
            image.invalid(
                "Bedrock takes images as bytes: send a base64 data URL \
                 (data:image/png;base64,<data>) of a png, jpeg, gif or webp image",
            )
        };
        let (media_type, data) = image.base64().ok_or_else(invalid)?;
        let format = match media_type {
            "image/png" => "png",
            "image/jpeg" | "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            _ => return Err(invalid()),
        };
        if data.is_empty() {
            return Err(invalid());
        }
        Ok(Block::Image {
            format,
            source: ImageBytes { bytes: data },
        })
    }

    fn tool_call(&mut self, call: ToolCall<'a>) -> Block<'a> {
        self.uses_tools = true;
        Block::ToolUse {
            tool_use_id: safe_tool_id(call.id),
            name: call.name,
            input: call.arguments,
        }
    }

    /// A `toolResult`: the tool's JSON object when its text is one, else the text.
    fn tool_result(&mut self, result: ToolResult<'a>) -> Result<Block<'a>, TranslateError> {
        self.uses_tools = true;
        let text = result.text()?;
        let content = match serde_json::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => ResultContent::Json(object),
            _ => ResultContent::Text(text),
        };
        Ok(Block::ToolResult {
            tool_use_id: safe_tool_id(result.tool_call_id),
            content: [content],
        })
    }
}

fn tool_config<'a>(
    req: &ChatRequest<'a>,
    uses_tools: bool,
) -> Result<Option<ToolConfig<'a>>, TranslateError> {
    let tools = req.tools(|tool| ToolEntry {
        tool_spec: ToolSpec {
            name: tool.name,
            description: tool.description.filter(|d| !d.is_empty()),
            input_schema: InputSchema {
                json: tool.schema(),
            },
        },
    })?;
    let Some(tools) = tools else {
        return Ok(None);
    };
    let tool_choice = match req.tool_choice()? {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Required) => Some(BedrockToolChoice::Any {}),
        Some(ToolChoice::Function(name)) => Some(BedrockToolChoice::Tool { name }),
        // Bedrock accepts tool calls and results in the conversation only with a toolConfig:
        // then the tools go without a choice.
        Some(ToolChoice::None) if uses_tools => None,
        Some(ToolChoice::None) => return Ok(None),
    };
    Ok(Some(ToolConfig { tools, tool_choice }))
}

//! OpenAI chat request → Gemini `GenerateContentRequest`. See the module docs for the
//! mappings.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::providers::openai::messages::{
    Blocks, ImageSource, ImageUrl, Part, PartBody, ToolCall, ToolResult, conversation,
};
use crate::providers::openai::request::{
    ChatRequest, RequestBody, ResponseFormat, Stop, ToolChoice, encode, n_not_positive,
};

use super::TranslateError;

const PROVIDER: &str = "Gemini";

/// OpenAI chat request JSON → Gemini `generateContent` / `streamGenerateContent` body.
///
/// The app's `model` is ignored (routing chose the upstream model, which goes in the URL),
/// and so is `stream` (it picks the URL, not the body).
pub fn translate_request(openai: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let body = RequestBody::parse(openai)?;
    let req = body.chat(PROVIDER);
    req.refuse_functions()?;
    req.stream()?;

    let (system, contents) = contents(&req)?;
    let declarations = req.tools(|tool| FunctionDeclaration {
        name: tool.name,
        description: tool.description,
        parameters_json_schema: tool.parameters,
    })?;
    let tool_config = match declarations {
        Some(_) => function_calling_config(&req)?,
        None => None,
    };
    let tools = declarations.map(|function_declarations| {
        [Tools {
            function_declarations,
        }]
    });
    encode(&Request {
        contents,
        system_instruction: (!system.is_empty()).then_some(SystemInstruction { parts: system }),
        tools,
        tool_config,
        generation_config: generation_config(&req)?,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<[Tools<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
}

/// A Gemini `Content`: one turn.
#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<GeminiPart<'a>>,
}

#[derive(Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<GeminiPart<'a>>,
}

/// A Gemini `Part` (a union: one member set).
#[derive(Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
enum GeminiPart<'a> {
    Text(Cow<'a, str>),
    InlineData {
        mime_type: &'a str,
        data: &'a str,
    },
    FileData {
        mime_type: &'a str,
        file_uri: &'a str,
    },
    FunctionCall {
        name: &'a str,
        args: Value,
    },
    FunctionResponse {
        name: &'a str,
        response: FunctionResult<'a>,
    },
}

/// A `functionResponse.response`: the tool's JSON object, else `{"content": <text>}`.
#[derive(Serialize)]
#[serde(untagged)]
enum FunctionResult<'a> {
    Object(Value),
    Text { content: Cow<'a, str> },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tools<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Stop<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a Value>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn generation_config<'a>(req: &ChatRequest<'a>) -> Result<GenerationConfig<'a>, TranslateError> {
    let mut config = GenerationConfig {
        max_output_tokens: req.max_tokens()?,
        temperature: req.temperature()?,
        top_p: req.top_p()?,
        presence_penalty: req.presence_penalty()?,
        frequency_penalty: req.frequency_penalty()?,
        seed: req.seed()?,
        candidate_count: match req.n()? {
            0 => return Err(n_not_positive()),
            1 => None,
            count => Some(count),
        },
        stop_sequences: req.stop()?,
        ..GenerationConfig::default()
    };
    match req.response_format()? {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => config.response_mime_type = Some("application/json"),
        Some(ResponseFormat::JsonSchema(schema)) => {
            let Some(schema @ Value::Object(_)) = schema else {
                return Err(TranslateError::invalid(
                    "response_format.json_schema.schema must be a JSON Schema object",
                    "response_format.json_schema.schema",
                ));
            };
            config.response_mime_type = Some("application/json");
            config.response_json_schema = Some(schema);
        }
    }
    Ok(config)
}

/// The `systemInstruction` parts and the `contents`.
fn contents<'a>(
    req: &ChatRequest<'a>,
) -> Result<(Vec<GeminiPart<'a>>, Vec<Content<'a>>), TranslateError> {
    let mut parts = Parts {
        system: Vec::new(),
        call_names: HashMap::new(),
    };
    let contents = conversation(req, &mut parts)?
        .finish()?
        .into_iter()
        .map(|turn| Content {
            role: turn.role,
            parts: turn.blocks,
        })
        .collect();
    Ok((parts.system, contents))
}

/// The conversation as Gemini parts; system texts are set aside.
struct Parts<'a> {
    system: Vec<GeminiPart<'a>>,
    /// Tool call id → function name, of the assistant calls seen so far (latest wins, since
    /// generated ids like `call_0` repeat from one answer to the next).
    call_names: HashMap<&'a str, &'a str>,
}

impl<'a> Blocks<'a> for Parts<'a> {
    type Block = GeminiPart<'a>;
    const ASSISTANT: &'static str = "model";

    fn system(&mut self, text: Cow<'a, str>) {
        if !text.is_empty() {
            self.system.push(GeminiPart::Text(text));
        }
    }

    /// Nothing for empty text (an empty part is useless and may be refused).
    fn text(&self, text: &'a str) -> Option<GeminiPart<'a>> {
        (!text.is_empty()).then_some(GeminiPart::Text(Cow::Borrowed(text)))
    }

    fn user_part(&mut self, part: Part<'a>) -> Result<GeminiPart<'a>, TranslateError> {
        match part.body {
            PartBody::Image(image) => image_part(image),
            PartBody::Audio { data, format } => audio_part(&part, data, format),
            _ => Err(part.not_supported(PROVIDER, "text, image_url and input_audio")),
        }
    }

    fn tool_call(&mut self, call: ToolCall<'a>) -> GeminiPart<'a> {
        self.call_names.insert(call.id, call.name);
        GeminiPart::FunctionCall {
            name: call.name,
            args: call.arguments,
        }
    }

    /// A `functionResponse`, named after the call it answers (Gemini pairs by name, not id).
    fn tool_result(&mut self, result: ToolResult<'a>) -> Result<GeminiPart<'a>, TranslateError> {
        let (at, id) = (result.at, result.tool_call_id);
        let name = self.call_names.get(id).ok_or_else(|| {
            TranslateError::invalid(
                format!(
                    "{at}.tool_call_id {id:?} does not match a tool call of an earlier \
                     assistant message (Gemini needs the function name of each result)"
                ),
                format!("{at}.tool_call_id"),
            )
        })?;
        let text = result.text()?;
        let response = match serde_json::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => FunctionResult::Object(object),
            _ => FunctionResult::Text { content: text },
        };
        Ok(GeminiPart::FunctionResponse { name, response })
    }
}

fn image_part(image: ImageUrl<'_>) -> Result<GeminiPart<'_>, TranslateError> {
    match image.source()? {
        ImageSource::Base64 { media_type, data } => Ok(GeminiPart::InlineData {
            mime_type: media_type,
            data,
        }),
        ImageSource::Url(url) => match image_mime_type(url) {
            Some(mime_type) => Ok(GeminiPart::FileData {
                mime_type,
                file_uri: url,
            }),
            None => Err(image.invalid(
                "Gemini needs the image type; use a URL ending in .png, .jpg, .jpeg, .webp, \
                 .gif, .heic or .heif, or a base64 data URL",
            )),
        },
    }
}

/// The MIME type of an image URL, from the extension of its path.
fn image_mime_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let (_, extension) = path.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

fn audio_part<'a>(
    part: &Part<'a>,
    data: &'a str,
    format: Option<&str>,
) -> Result<GeminiPart<'a>, TranslateError> {
    if data.is_empty() {
        return Err(part.invalid("input_audio.data", "must be base64 audio"));
    }
    let mime_type = match format {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mp3",
        Some("flac") => "audio/flac",
        Some("aac") => "audio/aac",
        Some("ogg") => "audio/ogg",
        _ => {
            return Err(part.invalid("input_audio.format", "must be wav, mp3, flac, aac or ogg"));
        }
    };
    Ok(GeminiPart::InlineData { mime_type, data })
}

fn function_calling_config<'a>(
    req: &ChatRequest<'a>,
) -> Result<Option<ToolConfig<'a>>, TranslateError> {
    let mode = |mode, allowed_function_names| ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names,
        },
    };
    Ok(req.tool_choice()?.map(|choice| match choice {
        ToolChoice::Auto => mode("AUTO", None),
        ToolChoice::None => mode("NONE", None),
        ToolChoice::Required => mode("ANY", None),
        ToolChoice::Function(name) => mode("ANY", Some([name])),
    }))
}

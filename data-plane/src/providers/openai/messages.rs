//! The conversation of an OpenAI chat request: messages normalized by role, their content
//! parts, tool calls and tool results, each checked as it is read (parts and tool calls
//! lazily, in order, so a provider's own refusals interleave with these checks exactly as the
//! request is laid out). Error paths (`messages[2].content[0].type`) are formatted only when
//! there is an error.
//!
//! [`conversation`] walks the messages into provider turns: a translator implements
//! [`Blocks`] (what each piece becomes), the walk and the merging of turns are done here.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::ChatRequest;
use crate::providers::TranslateError;

/// Where a message is in the request: `messages[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageAt(pub(crate) usize);

impl fmt::Display for MessageAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "messages[{}]", self.0)
    }
}

/// Where a content part is: `messages[i].content[j]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartAt {
    message: MessageAt,
    part: usize,
}

impl fmt::Display for PartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.content[{}]", self.message, self.part)
    }
}

/// A message of the conversation, by role.
#[derive(Debug)]
pub(crate) enum Message<'a> {
    /// A `system` or `developer` message: its text (text parts joined).
    System(Cow<'a, str>),
    User(Content<'a>),
    Assistant(Assistant<'a>),
    /// A `tool` message: the result of a tool call.
    Tool(ToolResult<'a>),
}

/// "a string or an array of content parts", what `content` must be.
const TEXT_OR_PARTS: &str = "a string or an array of content parts";

impl<'a> Message<'a> {
    pub(super) fn read(message: &'a Value, at: MessageAt) -> Result<Self, TranslateError> {
        let Value::Object(message) = message else {
            return Err(TranslateError::invalid(
                format!("{at} must be an object"),
                at.to_string(),
            ));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) => role.as_str(),
            _ => {
                return Err(TranslateError::invalid(
                    format!("{at}.role is required and must be a string"),
                    format!("{at}.role"),
                ));
            }
        };
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => Ok(Self::System(
                Content::read(content, at, TEXT_OR_PARTS)?.plain_text()?,
            )),
            "user" => Ok(Self::User(Content::read(content, at, TEXT_OR_PARTS)?)),
            "assistant" => Ok(Self::Assistant(Assistant {
                content: Content::read(content, at, "a string, an array of content parts or null")?,
                tool_calls: message.get("tool_calls"),
                at,
            })),
            "tool" => {
                let tool_call_id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::invalid(
                            format!("{at}.tool_call_id is required and must be a string"),
                            format!("{at}.tool_call_id"),
                        )
                    })?;
                Ok(Self::Tool(ToolResult {
                    tool_call_id,
                    content,
                    at,
                }))
            }
            "function" => Err(TranslateError::invalid(
                "the function role is deprecated and not supported: use tool messages",
                format!("{at}.role"),
            )),
            other => Err(TranslateError::invalid(
                format!(
                    "{at}.role {other:?} is not one of system, developer, user, assistant, tool"
                ),
                format!("{at}.role"),
            )),
        }
    }
}

/// A message's `content`: nothing (absent or null), a string, or content parts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    Empty,
    Text(&'a str),
    Parts(&'a [Value], MessageAt),
}

impl<'a> Content<'a> {
    /// `expected` completes "`content` must be ..." when it is none of those.
    fn read(content: &'a Value, at: MessageAt, expected: &str) -> Result<Self, TranslateError> {
        match content {
            Value::Null => Ok(Self::Empty),
            Value::String(s) => Ok(Self::Text(s)),
            Value::Array(parts) => Ok(Self::Parts(parts, at)),
            _ => Err(TranslateError::invalid(
                format!("{at}.content must be {expected}"),
                format!("{at}.content"),
            )),
        }
    }

    /// The parts, each checked as it is read; a string content is one text part.
    pub(crate) fn parts(self) -> impl Iterator<Item = Result<Part<'a>, TranslateError>> {
        let (text, parts, message) = match self {
            Self::Empty => (None, &[][..], MessageAt(0)),
            Self::Text(text) => (Some(text), &[][..], MessageAt(0)),
            Self::Parts(parts, at) => (None, parts, at),
        };
        let text = text.map(|text| {
            Ok(Part {
                kind: "text",
                body: PartBody::Text(text),
                at: PartAt { message, part: 0 },
            })
        });
        text.into_iter().chain(
            parts
                .iter()
                .enumerate()
                .map(move |(part, value)| Part::read(value, PartAt { message, part })),
        )
    }

    /// The text of a content that may hold text only (system and tool messages).
    pub(crate) fn plain_text(self) -> Result<Cow<'a, str>, TranslateError> {
        match self {
            Self::Empty => Ok(Cow::Borrowed("")),
            Self::Text(text) => Ok(Cow::Borrowed(text)),
            Self::Parts(..) => {
                let mut text = String::new();
                for part in self.parts() {
                    text.push_str(part?.text_only("here, only text")?);
                }
                Ok(Cow::Owned(text))
            }
        }
    }
}

/// A content part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Part<'a> {
    /// Its `type`.
    pub(crate) kind: &'a str,
    pub(crate) body: PartBody<'a>,
    pub(crate) at: PartAt,
}

/// What a content part holds, for the types some provider can take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PartBody<'a> {
    Text(&'a str),
    /// `image_url`: its URL (`""` when missing; the translator says what it accepts).
    Image(ImageUrl<'a>),
    /// `input_audio`: `data` (`""` when missing) and `format`.
    Audio {
        data: &'a str,
        format: Option<&'a str>,
    },
    /// Any other type (`refusal`, `file`, ...).
    Other,
}

impl<'a> Part<'a> {
    fn read(part: &'a Value, at: PartAt) -> Result<Self, TranslateError> {
        let kind = part.get("type").and_then(Value::as_str).ok_or_else(|| {
            TranslateError::invalid(
                format!("{at} must be an object with a string type"),
                format!("{at}.type"),
            )
        })?;
        let body = match kind {
            "text" => {
                PartBody::Text(part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::invalid(
                        format!("{at}.text must be a string"),
                        format!("{at}.text"),
                    )
                })?)
            }
            "image_url" => PartBody::Image(ImageUrl {
                url: match part.get("image_url") {
                    Some(Value::String(url)) => url,
                    Some(image) => image.get("url").and_then(Value::as_str).unwrap_or_default(),
                    None => "",
                },
                at,
            }),
            "input_audio" => {
                let audio = part.get("input_audio").unwrap_or(&Value::Null);
                PartBody::Audio {
                    data: audio
                        .get("data")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    format: audio.get("format").and_then(Value::as_str),
                }
            }
            _ => PartBody::Other,
        };
        Ok(Self { kind, body, at })
    }

    /// The text of a text part; any other part is refused as not allowed `place`.
    pub(crate) fn text_only(&self, place: &str) -> Result<&'a str, TranslateError> {
        match self.body {
            PartBody::Text(text) => Ok(text),
            _ => Err(self.not_allowed(place)),
        }
    }

    /// "content part type ... is not allowed `place`" (`"in an assistant message"`).
    pub(crate) fn not_allowed(&self, place: &str) -> TranslateError {
        let at = self.at;
        TranslateError::invalid(
            format!(
                "{at}: content part type {:?} is not allowed {place}",
                self.kind
            ),
            format!("{at}.type"),
        )
    }

    /// A user content part `provider` cannot take; `supported` lists what it can
    /// (`"text and image_url"`).
    pub(crate) fn not_supported(&self, provider: &str, supported: &str) -> TranslateError {
        let at = self.at;
        TranslateError::invalid(
            format!(
                "{at}: content part type {:?} is not supported for {provider} models \
                 ({supported} are)",
                self.kind
            ),
            format!("{at}.type"),
        )
    }

    /// "`<path>.<field>` `<must>`", about `field` of this part (`"input_audio.data"`).
    pub(crate) fn invalid(&self, field: &str, must: &str) -> TranslateError {
        let at = self.at;
        TranslateError::invalid(format!("{at}.{field} {must}"), format!("{at}.{field}"))
    }
}

/// The URL of an `image_url` part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageUrl<'a> {
    pub(crate) url: &'a str,
    at: PartAt,
}

/// Where an image comes from, for providers that take both forms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ImageSource<'a> {
    /// `data:<media type>;base64,<data>`.
    Base64 { media_type: &'a str, data: &'a str },
    /// An `http(s)://` URL.
    Url(&'a str),
}

impl<'a> ImageUrl<'a> {
    /// `data:<media type>;base64,<data>` → (media type, data), each `""` when the URL lacks
    /// it; `None` for any other URL.
    pub(crate) fn base64(&self) -> Option<(&'a str, &'a str)> {
        let rest = self.url.strip_prefix("data:")?;
        let (header, data) = rest.split_once(',').unwrap_or((rest, ""));
        Some((header.strip_suffix(";base64").unwrap_or_default(), data))
    }

    /// A whole base64 data URL or an http(s) URL; anything else is refused.
    pub(crate) fn source(&self) -> Result<ImageSource<'a>, TranslateError> {
        if let Some((media_type, data)) = self.base64() {
            if media_type.is_empty() || data.is_empty() {
                return Err(self.invalid("a data URL must look like data:image/png;base64,<data>"));
            }
            return Ok(ImageSource::Base64 { media_type, data });
        }
        if self.url.starts_with("https://") || self.url.starts_with("http://") {
            return Ok(ImageSource::Url(self.url));
        }
        let at = self.at;
        Err(TranslateError::invalid(
            format!("{at}.image_url.url must be an http(s) URL or a base64 data URL"),
            format!("{at}.image_url.url"),
        ))
    }

    /// "`<path>.image_url.url`: `<message>`", about this URL.
    pub(crate) fn invalid(&self, message: &str) -> TranslateError {
        let at = self.at;
        TranslateError::invalid(
            format!("{at}.image_url.url: {message}"),
            format!("{at}.image_url.url"),
        )
    }
}

/// An assistant message: text, then tool calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assistant<'a> {
    content: Content<'a>,
    tool_calls: Option<&'a Value>,
    at: MessageAt,
}

impl<'a> Assistant<'a> {
    /// The texts of `content`, in order (refusal parts are skipped).
    pub(crate) fn texts(&self) -> impl Iterator<Item = Result<&'a str, TranslateError>> + use<'a> {
        self.content.parts().filter_map(|part| match part {
            Ok(part) if part.kind == "refusal" => None,
            Ok(part) => Some(part.text_only("in an assistant message")),
            Err(e) => Some(Err(e)),
        })
    }

    /// `tool_calls`, each checked as it is read. Read them after [`Assistant::texts`].
    pub(crate) fn tool_calls(
        &self,
    ) -> Result<impl Iterator<Item = Result<ToolCall<'a>, TranslateError>> + use<'a>, TranslateError>
    {
        let at = self.at;
        let calls = match self.tool_calls {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(calls)) => calls,
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{at}.tool_calls must be an array"),
                    format!("{at}.tool_calls"),
                ));
            }
        };
        Ok(calls
            .iter()
            .enumerate()
            .map(move |(k, call)| ToolCall::read(call, at, k)))
    }
}

/// A tool call of an assistant message, its arguments parsed.
#[derive(Debug)]
pub(crate) struct ToolCall<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    /// `function.arguments`, parsed: always a JSON object (`{}` for an empty string).
    pub(crate) arguments: Value,
}

impl<'a> ToolCall<'a> {
    fn read(call: &'a Value, at: MessageAt, k: usize) -> Result<Self, TranslateError> {
        let string = |value: Option<&'a Value>, path: &str| {
            value.and_then(Value::as_str).ok_or_else(|| {
                TranslateError::invalid(
                    format!("{at}.tool_calls[{k}].{path} is required and must be a string"),
                    format!("{at}.tool_calls[{k}].{path}"),
                )
            })
        };
        let function = call.get("function");
        let id = string(call.get("id"), "id")?;
        let name = string(function.and_then(|f| f.get("name")), "function.name")?;
        let raw = string(
            function.and_then(|f| f.get("arguments")),
            "function.arguments",
        )?;
        let args_at = || format!("{at}.tool_calls[{k}].function.arguments");
        let arguments = if raw.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(raw).map_err(|e| {
                TranslateError::invalid(format!("{} is not valid JSON: {e}", args_at()), args_at())
            })?
        };
        if !arguments.is_object() {
            return Err(TranslateError::invalid(
                format!("{} must be a JSON object", args_at()),
                args_at(),
            ));
        }
        Ok(Self {
            id,
            name,
            arguments,
        })
    }
}

/// A tool call id for providers that take only `[a-zA-Z0-9_-]` (Claude's rule, on Anthropic
/// and Bedrock alike): other characters become `_`, the same way on a call and on its result,
/// so they still pair.
pub(crate) fn safe_tool_id(id: &str) -> Cow<'_, str> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.chars().all(valid) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(id.chars().map(|c| if valid(c) { c } else { '_' }).collect())
    }
}

/// A `tool` message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToolResult<'a> {
    pub(crate) tool_call_id: &'a str,
    content: &'a Value,
    pub(crate) at: MessageAt,
}

impl<'a> ToolResult<'a> {
    /// Its `content`.
    pub(crate) fn content(&self) -> Result<Content<'a>, TranslateError> {
        Content::read(self.content, self.at, TEXT_OR_PARTS)
    }

    /// Its text (text parts joined).
    pub(crate) fn text(&self) -> Result<Cow<'a, str>, TranslateError> {
        self.content()?.plain_text()
    }
}

/// What a provider makes of each piece of the conversation, for [`conversation`].
pub(crate) trait Blocks<'a> {
    /// A content block (Gemini: a part) of a provider message.
    type Block;
    /// The provider's name of the assistant role (`"assistant"`; Gemini's `"model"`).
    const ASSISTANT: &'static str;

    /// The text of a system or developer message.
    fn system(&mut self, text: Cow<'a, str>);
    /// A block of user or assistant text; `None` drops text the provider refuses (empty).
    fn text(&self, text: &'a str) -> Option<Self::Block>;
    /// A user content part other than text, or the refusal of its type.
    fn user_part(&mut self, part: Part<'a>) -> Result<Self::Block, TranslateError>;
    /// A tool call of an assistant message.
    fn tool_call(&mut self, call: ToolCall<'a>) -> Self::Block;
    /// A `tool` message (it goes in a user turn).
    fn tool_result(&mut self, result: ToolResult<'a>) -> Result<Self::Block, TranslateError>;
}

/// Walks the messages into provider turns, in order: system text aside, user content parts,
/// assistant text then tool calls, tool results as user blocks. Finish the turns with
/// [`Turns::finish`] (or [`Turns::finish_results_first`]).
pub(crate) fn conversation<'a, B: Blocks<'a>>(
    req: &ChatRequest<'a>,
    blocks: &mut B,
) -> Result<Turns<B::Block>, TranslateError> {
    let mut turns = Turns::default();
    for message in req.messages()? {
        match message? {
            Message::System(text) => blocks.system(text),
            Message::User(content) => {
                for part in content.parts() {
                    let part = part?;
                    match part.body {
                        PartBody::Text(text) => turns.extend("user", blocks.text(text)),
                        _ => turns.push("user", blocks.user_part(part)?),
                    }
                }
            }
            Message::Assistant(message) => {
                for text in message.texts() {
                    turns.extend(B::ASSISTANT, blocks.text(text?));
                }
                for call in message.tool_calls()? {
                    turns.push(B::ASSISTANT, blocks.tool_call(call?));
                }
            }
            Message::Tool(result) => turns.push("user", blocks.tool_result(result)?),
        }
    }
    Ok(turns)
}

/// Builds provider turns from messages: consecutive blocks of the same role land in one turn
/// (providers want user/assistant alternation, and the results of parallel calls together).
#[derive(Debug)]
pub(crate) struct Turns<B> {
    turns: Vec<Turn<B>>,
}

/// One provider message: a role and its blocks (serialized as `{"role","content"}`).
#[derive(Debug, Serialize)]
pub(crate) struct Turn<B> {
    pub(crate) role: &'static str,
    #[serde(rename = "content")]
    pub(crate) blocks: Vec<B>,
}

impl<B> Default for Turns<B> {
    fn default() -> Self {
        Self { turns: Vec::new() }
    }
}

impl<B> Turns<B> {
    /// Adds a block to the last turn when it has this role, else starts a turn.
    pub(crate) fn push(&mut self, role: &'static str, block: B) {
        match self.turns.last_mut() {
            Some(last) if last.role == role => last.blocks.push(block),
            _ => self.turns.push(Turn {
                role,
                blocks: vec![block],
            }),
        }
    }

    /// [`Turns::push`] for each block.
    pub(crate) fn extend(&mut self, role: &'static str, blocks: impl IntoIterator<Item = B>) {
        for block in blocks {
            self.push(role, block);
        }
    }

    /// The turns; an error when no message had anything to send.
    pub(crate) fn finish(self) -> Result<Vec<Turn<B>>, TranslateError> {
        if self.turns.is_empty() {
            return Err(TranslateError::invalid(
                "messages must contain at least one user or assistant message with content",
                "messages",
            ));
        }
        Ok(self.turns)
    }

    /// [`Turns::finish`], with tool results first in each user turn (Claude wants them before
    /// any other block; the rest keep their order).
    pub(crate) fn finish_results_first(
        self,
        is_result: impl Fn(&B) -> bool,
    ) -> Result<Vec<Turn<B>>, TranslateError> {
        let mut turns = self.finish()?;
        for turn in turns.iter_mut().filter(|t| t.role == "user") {
            turn.blocks.sort_by_key(|b| !is_result(b));
        }
        Ok(turns)
    }
}

//! A typed view of an OpenAI chat request (`POST /v1/chat/completions`), borrowed from the
//! parsed body: strings are `&str` into it, schemas and numbers are references to it.
//!
//! Nothing is checked until a translator asks. Each accessor ([`ChatRequest::max_tokens`],
//! [`ChatRequest::stop`], ...) checks its field and gives the same error every provider gives
//! for it; [`ChatRequest::messages`] yields the conversation (see [`super::messages`]). A
//! translator asks in the order it has always checked, so the first error a request gets
//! stays the same, and fields a provider drops are never checked for it.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value};

use super::messages::{Message, MessageAt};
use crate::providers::TranslateError;

/// The app's request body: a JSON object, parsed once, that [`ChatRequest`] borrows from.
#[derive(Debug)]
pub(crate) struct RequestBody(Map<String, Value>);

impl RequestBody {
    /// Parses the body; it must be a JSON object.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, TranslateError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| TranslateError::InvalidRequest {
                message: format!("the request body is not valid JSON: {e}"),
                param: None,
            })?;
        match value {
            Value::Object(fields) => Ok(Self(fields)),
            _ => Err(TranslateError::InvalidRequest {
                message: "the request body must be a JSON object".into(),
                param: None,
            }),
        }
    }

    /// The view for a translation to `provider` (its name in error messages: `"Gemini"`).
    pub(crate) fn chat(&self, provider: &'static str) -> ChatRequest<'_> {
        ChatRequest {
            fields: &self.0,
            provider,
        }
    }
}

/// Serializes a translated request body.
pub(crate) fn encode(body: &impl Serialize) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(body).map_err(|e| TranslateError::InvalidRequest {
        message: format!("the request could not be encoded: {e}"),
        param: None,
    })
}

/// An OpenAI chat request, seen through typed accessors that check as they read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatRequest<'a> {
    fields: &'a Map<String, Value>,
    provider: &'static str,
}

impl<'a> ChatRequest<'a> {
    /// A top-level field; `null` counts as absent everywhere.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    /// Refuses the deprecated `functions` / `function_call`.
    pub(crate) fn refuse_functions(&self) -> Result<(), TranslateError> {
        for name in ["functions", "function_call"] {
            if self.get(name).is_some() {
                return Err(TranslateError::invalid(
                    format!(
                        "{name} is deprecated and not supported for {} models: use tools",
                        self.provider
                    ),
                    name,
                ));
            }
        }
        Ok(())
    }

    /// `n`, the number of choices asked for: 1 when absent. Any other integer is returned
    /// as is (0 too: the provider says what it refuses, [`n_not_positive`] or
    /// [`ChatRequest::several_choices`]).
    pub(crate) fn n(&self) -> Result<u64, TranslateError> {
        match self.get("n") {
            None => Ok(1),
            Some(n) => n.as_u64().ok_or_else(n_not_positive),
        }
    }

    /// The refusal of `n` > 1 by a provider that answers with one choice.
    pub(crate) fn several_choices(&self) -> TranslateError {
        TranslateError::invalid(
            format!(
                "n > 1 is not supported for {} models: send one request per choice",
                self.provider
            ),
            "n",
        )
    }

    /// `response_format`.
    pub(crate) fn response_format(&self) -> Result<Option<ResponseFormat<'a>>, TranslateError> {
        let Some(format) = self.get("response_format") else {
            return Ok(None);
        };
        Ok(Some(match format.get("type").and_then(Value::as_str) {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => {
                ResponseFormat::JsonSchema(format.pointer("/json_schema/schema"))
            }
            _ => {
                return Err(TranslateError::invalid(
                    "response_format.type must be text, json_object or json_schema",
                    "response_format.type",
                ));
            }
        }))
    }

    /// Refuses a JSON `response_format`, for a provider that cannot constrain its output:
    /// ignoring it would hand the app prose where it parses JSON.
    pub(crate) fn refuse_json_output(&self) -> Result<(), TranslateError> {
        let kind = match self.response_format()? {
            None | Some(ResponseFormat::Text) => return Ok(()),
            Some(ResponseFormat::JsonObject) => "json_object",
            Some(ResponseFormat::JsonSchema(_)) => "json_schema",
        };
        Err(TranslateError::invalid(
            format!(
                "response_format {kind} is not supported for {} models: describe the JSON in \
                 the prompt or use a tool",
                self.provider
            ),
            "response_format",
        ))
    }

    /// `stream`.
    pub(crate) fn stream(&self) -> Result<Option<bool>, TranslateError> {
        match self.get("stream") {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(TranslateError::invalid(
                "stream must be a boolean",
                "stream",
            )),
        }
    }

    /// The output token limit: `max_completion_tokens`, else `max_tokens`.
    pub(crate) fn max_tokens(&self) -> Result<Option<u64>, TranslateError> {
        for name in ["max_completion_tokens", "max_tokens"] {
            if let Some(v) = self.get(name) {
                return match v.as_u64() {
                    Some(n) if n > 0 => Ok(Some(n)),
                    _ => Err(TranslateError::invalid(
                        format!("{name} must be a positive integer"),
                        name,
                    )),
                };
            }
        }
        Ok(None)
    }

    pub(crate) fn temperature(&self) -> Result<Option<&'a Number>, TranslateError> {
        self.number("temperature")
    }

    pub(crate) fn top_p(&self) -> Result<Option<&'a Number>, TranslateError> {
        self.number("top_p")
    }

    pub(crate) fn presence_penalty(&self) -> Result<Option<&'a Number>, TranslateError> {
        self.number("presence_penalty")
    }

    pub(crate) fn frequency_penalty(&self) -> Result<Option<&'a Number>, TranslateError> {
        self.number("frequency_penalty")
    }

    /// A sampling parameter, sent on as the app wrote it.
    fn number(&self, name: &'static str) -> Result<Option<&'a Number>, TranslateError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            Some(_) => Err(TranslateError::invalid(
                format!("{name} must be a number"),
                name,
            )),
        }
    }

    /// `seed`: an integer.
    pub(crate) fn seed(&self) -> Result<Option<&'a Number>, TranslateError> {
        match self.get("seed") {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(Some(n)),
            Some(_) => Err(TranslateError::invalid("seed must be an integer", "seed")),
        }
    }

    /// `stop` (a string or an array of strings); `None` when it holds no sequence.
    pub(crate) fn stop(&self) -> Result<Option<Stop<'a>>, TranslateError> {
        let invalid =
            || TranslateError::invalid("stop must be a string or an array of strings", "stop");
        match self.get("stop") {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(Stop::One(s))),
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
                Ok((!list.is_empty()).then_some(Stop::Many(list)))
            }
            Some(_) => Err(invalid()),
        }
    }

    /// `user`, else `safety_identifier` (its successor in the OpenAI API); empty is absent.
    pub(crate) fn user(&self) -> Result<Option<&'a str>, TranslateError> {
        for name in ["user", "safety_identifier"] {
            match self.get(name) {
                None => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(Value::String(s)) => return Ok(Some(s)),
                Some(_) => {
                    return Err(TranslateError::invalid(
                        format!("{name} must be a string"),
                        name,
                    ));
                }
            }
        }
        Ok(None)
    }

    /// `parallel_tool_calls`: whether the model may call several tools at once (the default).
    pub(crate) fn parallel_tool_calls(&self) -> Result<bool, TranslateError> {
        match self.get("parallel_tool_calls") {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(TranslateError::invalid(
                "parallel_tool_calls must be a boolean",
                "parallel_tool_calls",
            )),
        }
    }

    /// `tools`, each checked, then made into the provider's tool by `map`; `None` when
    /// absent or empty.
    pub(crate) fn tools<T>(
        &self,
        mut map: impl FnMut(Tool<'a>) -> T,
    ) -> Result<Option<Vec<T>>, TranslateError> {
        let list = match self.get("tools") {
            None => return Ok(None),
            Some(Value::Array(list)) if list.is_empty() => return Ok(None),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(TranslateError::invalid("tools must be an array", "tools")),
        };
        list.iter()
            .enumerate()
            .map(|(i, tool)| Tool::read(tool, i, self.provider).map(&mut map))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// `tool_choice` (only meaningful with tools: translators read it only then).
    pub(crate) fn tool_choice(&self) -> Result<Option<ToolChoice<'a>>, TranslateError> {
        let invalid = || {
            TranslateError::invalid(
                "tool_choice must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":...}}",
                "tool_choice",
            )
        };
        Ok(Some(match self.get("tool_choice") {
            None => return Ok(None),
            Some(Value::String(s)) => match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                _ => return Err(invalid()),
            },
            Some(Value::Object(o)) => ToolChoice::Function(
                o.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .filter(|_| o.get("type").and_then(Value::as_str) == Some("function"))
                    .ok_or_else(invalid)?,
            ),
            Some(_) => return Err(invalid()),
        }))
    }

    /// The messages, normalized and checked one at a time, in order (most translators walk
    /// them with [`super::messages::conversation`]).
    pub(crate) fn messages(
        &self,
    ) -> Result<impl Iterator<Item = Result<Message<'a>, TranslateError>> + use<'a>, TranslateError>
    {
        match self.get("messages") {
            Some(Value::Array(list)) => Ok(list
                .iter()
                .enumerate()
                .map(|(i, message)| Message::read(message, MessageAt(i)))),
            None => Err(TranslateError::invalid("messages is required", "messages")),
            Some(_) => Err(TranslateError::invalid(
                "messages must be an array",
                "messages",
            )),
        }
    }
}

/// The error for an `n` that is not a positive integer.
pub(crate) fn n_not_positive() -> TranslateError {
    TranslateError::invalid("n must be a positive integer", "n")
}

/// `response_format`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ResponseFormat<'a> {
    Text,
    JsonObject,
    /// `json_schema`, with `json_schema.schema` as sent (the translator checks it).
    JsonSchema(Option<&'a Value>),
}

/// `stop` sequences (at least one); serializes as an array of strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stop<'a> {
    One(&'a str),
    /// An array of strings, as sent.
    Many(&'a [Value]),
}

impl Serialize for Stop<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(stop) => [stop].serialize(s),
            Self::Many(list) => list.serialize(s),
        }
    }
}

/// A function tool (`tools[].function`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool<'a> {
    pub(crate) name: &'a str,
    pub(crate) description: Option<&'a str>,
    /// The JSON Schema object of the arguments, when given.
    pub(crate) parameters: Option<&'a Value>,
}

impl<'a> Tool<'a> {
    fn read(tool: &'a Value, i: usize, provider: &str) -> Result<Self, TranslateError> {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(TranslateError::invalid(
                format!(
                    "tools[{i}].type must be function (the only tool type {provider} can run here)"
                ),
                format!("tools[{i}].type"),
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TranslateError::invalid(
                    format!("tools[{i}].function.name is required and must be a string"),
                    format!("tools[{i}].function.name"),
                )
            })?;
        let description = match function.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.as_str()),
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("tools[{i}].function.description must be a string"),
                    format!("tools[{i}].function.description"),
                ));
            }
        };
        let parameters = match function.get("parameters") {
            None | Some(Value::Null) => None,
            Some(p @ Value::Object(_)) => Some(p),
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("tools[{i}].function.parameters must be a JSON Schema object"),
                    format!("tools[{i}].function.parameters"),
                ));
            }
        };
        Ok(Self {
            name,
            description,
            parameters,
        })
    }

    /// `parameters`, or the schema of a function without arguments when absent.
    pub(crate) fn schema(&self) -> Schema<'a> {
        Schema(self.parameters)
    }
}

/// A tool's JSON Schema: `{"type":"object","properties":{}}` when it has none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a>(Option<&'a Value>);

impl Serialize for Schema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(schema) => schema.serialize(s),
            None => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("properties", &Map::new())?;
                map.serialize_entry("type", "object")?;
                map.end()
            }
        }
    }
}

/// `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    /// `{"type":"function","function":{"name"}}`: this function must be called.
    Function(&'a str),
}

//! Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE, sans-IO.

use crate::providers::openai::write_data;
use serde::{Deserialize, Serialize};

use super::error::{ErrorDetail, OpenAiError, OpenAiErrorBody};
use super::response::{AnthropicUsage, FunctionCall, OpenAiUsage, ToolCall, finish_reason};
use super::{TranslateError, Usage, unix_now};
use crate::providers::sse::SseParser;

/// Translates an Anthropic event stream into OpenAI SSE as bytes arrive.
///
/// Each [`feed`](Self::feed) returns the bytes to forward now: one `data: {chunk}\n\n` per
/// upstream event that carries something (pings and block stops carry nothing). The first
/// chunk has `delta.role = "assistant"`; `message_stop` produces the usage chunk (when
/// `include_usage`) and `data: [DONE]`; an upstream `error` event produces
/// `data: {"error":{...}}` and `data: [DONE]`. After that, input is ignored.
///
/// If `feed` returns an error (the upstream sent something that is not the Messages event
/// stream), the stream is over: call [`finish`](Self::finish) for the bytes still owed to the
/// app (chunks translated before the bad event, an error chunk and `[DONE]`).
#[derive(Debug)]
pub struct StreamTranslator {
    parser: SseParser,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// The role chunk was sent.
    started: bool,
    /// The finish_reason chunk was sent.
    finished: bool,
    /// `[DONE]` was sent (or is in `pending`): nothing more may follow.
    done: bool,
    /// Why the stream broke, for the error chunk `finish` sends.
    broken: Option<String>,
    /// Bytes translated in a `feed` that then failed, owed to the app by `finish`.
    pending: Vec<u8>,
    /// Anthropic content block index → OpenAI tool call index, in order of appearance.
    tools: Vec<(u64, u32)>,
    prompt_tokens: u64,
    cached_tokens: u64,
    output_tokens: u64,
}

impl StreamTranslator {
    /// A translator for one response; `client_model` is echoed in every chunk, and
    /// `include_usage` is the app's `stream_options.include_usage`.
    pub fn new(client_model: &str, include_usage: bool) -> Self {
        Self::with_created(client_model, include_usage, unix_now())
    }

    /// [`StreamTranslator::new`] with a given `created` timestamp (deterministic, for tests).
    pub fn with_created(client_model: &str, include_usage: bool, created: u64) -> Self {
        Self {
            parser: SseParser::default(),
            id: "chatcmpl-anthropic".to_owned(),
            created,
            model: client_model.to_owned(),
            include_usage,
            started: false,
            finished: false,
            done: false,
            broken: None,
            pending: Vec::new(),
            tools: Vec::new(),
            prompt_tokens: 0,
            cached_tokens: 0,
            output_tokens: 0,
        }
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::new();
        if self.done || self.broken.is_some() {
            return Ok(out);
        }
        self.parser.push(bytes);
        loop {
            let data = match self.parser.next_event() {
                Ok(Some(data)) => data,
                Ok(None) => return Ok(out),
                Err(_) => return Err(self.break_off(out, "an SSE event exceeded 4 MiB".into())),
            };
            if let Err(reason) = self.event(&data, &mut out) {
                return Err(self.break_off(out, reason));
            }
            if self.done {
                return Ok(out);
            }
        }
    }

    /// At upstream end: the final usage chunk (if `include_usage`) and `data: [DONE]`. If the
    /// upstream ended before `message_delta`/`message_stop` or broke, an error chunk comes
    /// first so the app can tell a cut-off answer from a complete one. Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        if self.done {
            return out;
        }
        if self.broken.is_none() {
            // A last event without its closing blank line still counts; a half one (cut off
            // mid-JSON) is what "ended early" below reports.
            if let Ok(Some(data)) = self.parser.finish() {
                let _ = self.event(&data, &mut out);
            }
            if self.done {
                return out;
            }
        }
        let cut_off = if self.finished {
            None
        } else {
            Some("the upstream stream ended before the message was complete".to_owned())
        };
        match self.broken.take().or(cut_off) {
            Some(reason) => self.error_chunk(&mut out, &reason, "upstream_error"),
            None => self.end(&mut out),
        }
        out
    }

    /// Tokens seen so far: prompt tokens from `message_start`, output tokens from the latest
    /// `message_delta` (cumulative), so a stream cut short still gets counted.
    pub fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
        }
    }

    fn break_off(&mut self, out: Vec<u8>, reason: String) -> TranslateError {
        self.pending = out;
        self.broken = Some(reason.clone());
        TranslateError::BadUpstream(reason)
    }

    /// Translates one event's data into `out`.
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let event: Event = serde_json::from_slice(data)
            .map_err(|e| format!("the upstream sent an invalid stream event: {e}"))?;
        match event {
            Event::MessageStart { message } => {
                if !message.id.is_empty() {
                    self.id = format!("chatcmpl-{}", message.id);
                }
                if let Some(usage) = message.usage {
                    self.add_usage(&usage);
                }
                self.start(out);
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => {
                self.start(out);
                match content_block {
                    StartBlock::Text { text } if !text.is_empty() => {
                        self.chunk(out, Delta::content(&text), None, None);
                    }
                    StartBlock::ToolUse { id, name } => {
                        let tool_index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                        self.tools.push((index, tool_index));
                        let call = ToolCall {
                            index: Some(tool_index),
                            id: Some(&id),
                            kind: Some("function"),
                            function: FunctionCall {
                                name: Some(&name),
                                arguments: String::new(),
                            },
                        };
                        self.chunk(out, Delta::tool_call(call), None, None);
                    }
                    StartBlock::Text { .. } | StartBlock::Other => {}
                }
            }
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    self.start(out);
                    self.chunk(out, Delta::content(&text), None, None);
                }
                BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    // Deltas of blocks we did not announce (server tools) are not forwarded.
                    if let Some(&(_, tool_index)) = self.tools.iter().find(|(i, _)| *i == index) {
                        let call = ToolCall {
                            index: Some(tool_index),
                            id: None,
                            kind: None,
                            function: FunctionCall {
                                name: None,
                                arguments: partial_json,
                            },
                        };
                        self.chunk(out, Delta::tool_call(call), None, None);
                    }
                }
                _ => {}
            },
            Event::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.add_usage(&usage);
                }
                if let Some(reason) = delta.stop_reason.as_deref()
                    && !self.finished
                {
                    self.start(out);
                    self.finished = true;
                    self.chunk(out, Delta::default(), Some(finish_reason(reason)), None);
                }
            }
            Event::MessageStop {} => {
                if !self.finished {
                    // message_stop without a stop_reason: still a complete message.
                    self.start(out);
                    self.finished = true;
                    self.chunk(out, Delta::default(), Some("stop"), None);
                }
                self.end(out);
            }
            Event::Error { error } => {
                let kind = error.kind.as_deref().unwrap_or("api_error");
                let message = error.message.as_deref().unwrap_or("upstream error");
                self.error_chunk(out, message, kind);
            }
            Event::Other => {}
        }
        Ok(())
    }

    /// Takes the counts an Anthropic `usage` carries; absent fields keep what we have.
    fn add_usage(&mut self, usage: &AnthropicUsage) {
        if let Some(prompt) = usage.prompt_tokens() {
            self.prompt_tokens = prompt;
        }
        if let Some(cached) = usage.cache_read_input_tokens {
            self.cached_tokens = cached;
        }
        if let Some(output) = usage.output_tokens {
            self.output_tokens = output;
        }
    }

    /// Sends the role chunk once, before anything else.
    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let delta = Delta {
                role: Some("assistant"),
                content: Some(""),
                tool_calls: None,
            };
            self.chunk(out, delta, None, None);
        }
    }

    /// The usage chunk (when asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            let usage = OpenAiUsage::new(self.usage(), self.cached_tokens);
            self.write(out, &[], Some(Some(usage)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    /// `data: {"error":{...}}` and `[DONE]`, the way OpenAI reports an error mid-stream.
    fn error_chunk(&mut self, out: &mut Vec<u8>, message: &str, kind: &str) {
        let body = OpenAiErrorBody {
            error: OpenAiError {
                message,
                kind,
                param: None,
                code: None,
            },
        };
        write_data(out, &body);
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    fn chunk(
        &self,
        out: &mut Vec<u8>,
        delta: Delta<'_>,
        finish_reason: Option<&'static str>,
        usage: Option<Option<OpenAiUsage>>,
    ) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.write(out, &[choice], usage);
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        choices: &[ChunkChoice<'_>],
        usage: Option<Option<OpenAiUsage>>,
    ) {
        // With include_usage, OpenAI puts `"usage": null` on every chunk but the last.
        let usage = match usage {
            Some(u) => Some(u),
            None if self.include_usage => Some(None),
            None => None,
        };
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        write_data(out, &chunk);
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<OpenAiUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

impl<'a> Delta<'a> {
    fn content(text: &'a str) -> Self {
        Self {
            content: Some(text),
            ..Self::default()
        }
    }

    fn tool_call(call: ToolCall<'a>) -> Self {
        Self {
            tool_calls: Some([call]),
            ..Self::default()
        }
    }
}

/// The Anthropic stream events; unknown ones (`ping`, `content_block_stop`, future types)
/// are [`Event::Other`] and ignored.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<AnthropicUsage>,
    },
    MessageStop {},
    Error {
        error: ErrorDetail,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

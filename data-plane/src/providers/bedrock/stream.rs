//! Bedrock ConverseStream (`application/vnd.amazon.eventstream`) → OpenAI
//! `chat.completion.chunk` SSE, sans-IO.

use crate::providers::openai::write_data;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use super::error::{OpenAiError, OpenAiErrorBody, stream_exception};
use super::response::{FunctionCall, OpenAiUsage, TokenUsage, ToolCall, finish_reason};
use super::{TranslateError, Usage, completion_id, unix_now};

/// The largest event-stream frame accepted (the format's own limit is 16 MiB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Translates a ConverseStream body into OpenAI SSE as bytes arrive.
///
/// The body is a sequence of binary event-stream frames (prelude, CRCs, headers, JSON
/// payload), decoded with `aws-smithy-eventstream`. Each [`feed`](Self::feed) returns the
/// bytes to forward now: the role chunk at `messageStart`, one chunk per text delta, a
/// `tool_calls` delta with id and name at a tool's `contentBlockStart` and one per
/// `toolUse.input` fragment, the `finish_reason` chunk at `messageStop`, and at `metadata`
/// (which follows `messageStop`) the usage chunk (when `include_usage`) and `data: [DONE]`.
/// An `exception` frame (`:message-type: exception`) or an `error` frame produces
/// `data: {"error":{...}}` and `data: [DONE]`. After that, input is ignored.
///
/// If `feed` returns an error (a bad frame: wrong CRC, bad lengths, a payload that is not
/// JSON), the stream is over: call [`finish`](Self::finish) for the bytes still owed to the
/// app (chunks translated before the bad frame, an error chunk and `[DONE]`).
#[derive(Debug)]
pub struct StreamTranslator {
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// The role chunk was sent.
    started: bool,
    /// The finish_reason chunk was sent (`messageStop` seen).
    finished: bool,
    /// `[DONE]` was sent (or is in `pending`): nothing more may follow.
    done: bool,
    /// Why the stream broke, for the error chunk `finish` sends.
    broken: Option<String>,
    /// Bytes translated in a `feed` that then failed, owed to the app by `finish`.
    pending: Vec<u8>,
    /// Bedrock content block index → OpenAI tool call index, in order of appearance.
    tools: Vec<(u64, u32)>,
    usage: TokenUsage,
}

impl StreamTranslator {
    /// A translator for one response; `client_model` is echoed in every chunk,
    /// `include_usage` is the app's `stream_options.include_usage`, and `request_id` the
    /// `x-amzn-RequestId` response header (the chunks' id).
    pub fn new(client_model: &str, include_usage: bool, request_id: Option<&str>) -> Self {
        Self::with_created(client_model, include_usage, request_id, unix_now())
    }

    /// [`StreamTranslator::new`] with a given `created` timestamp (deterministic, for tests).
    pub fn with_created(
        client_model: &str,
        include_usage: bool,
        request_id: Option<&str>,
        created: u64,
    ) -> Self {
        Self {
            decoder: MessageFrameDecoder::new(),
            buffer: BytesMut::new(),
            id: completion_id(request_id),
            created,
            model: client_model.to_owned(),
            include_usage,
            started: false,
            finished: false,
            done: false,
            broken: None,
            pending: Vec::new(),
            tools: Vec::new(),
            usage: TokenUsage::default(),
        }
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::new();
        if self.done || self.broken.is_some() {
            return Ok(out);
        }
        self.buffer.extend_from_slice(bytes);
        loop {
            let message = match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => message,
                Ok(DecodedFrame::Incomplete) if self.buffer.len() > MAX_FRAME => {
                    return Err(self.break_off(out, "an event-stream frame exceeded 16 MiB".into()));
                }
                Ok(DecodedFrame::Incomplete) => return Ok(out),
                Err(e) => {
                    let reason = format!("the upstream sent an invalid event-stream frame: {e}");
                    return Err(self.break_off(out, reason));
                }
            };
            if let Err(reason) = self.message(&message, &mut out) {
                return Err(self.break_off(out, reason));
            }
            if self.done {
                return Ok(out);
            }
        }
    }

    /// At upstream end: the usage chunk (if `include_usage`) and `data: [DONE]`, when
    /// `metadata` did not already send them. If the upstream ended before `messageStop` or
    /// broke, an error chunk comes first so the app can tell a cut-off answer from a complete
    /// one. Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        if self.done {
            return out;
        }
        let cut_off = (!self.finished)
            .then(|| "the upstream stream ended before the message was complete".to_owned());
        match self.broken.take().or(cut_off) {
            Some(reason) => self.error_chunk(&mut out, &reason, "upstream_error", None),
            None => self.end(&mut out),
        }
        out
    }

    /// Tokens seen so far (from the `metadata` event, which comes last), so a stream cut short
    /// still gets counted as far as Bedrock told.
    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    fn break_off(&mut self, out: Vec<u8>, reason: String) -> TranslateError {
        self.pending = out;
        self.broken = Some(reason.clone());
        TranslateError::BadUpstream(reason)
    }

    /// Translates one frame into `out`.
    fn message(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), String> {
        match header(message, ":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                let exception = header(message, ":exception-type").unwrap_or("exception");
                let (kind, text, code) = stream_exception(exception, message.payload());
                self.error_chunk(out, &text, kind, code.as_deref());
                return Ok(());
            }
            "error" => {
                let code = header(message, ":error-code");
                let text = header(message, ":error-message")
                    .filter(|m| !m.is_empty())
                    .unwrap_or("the upstream stream failed");
                self.error_chunk(out, text, "api_error", code);
                return Ok(());
            }
            _ => return Ok(()),
        }
        let event_type = header(message, ":event-type").unwrap_or_default();
        let payload = message.payload();
        let parse = || -> Result<Event, String> {
            serde_json::from_slice(payload)
                .map_err(|e| format!("the upstream sent an invalid {event_type} event: {e}"))
        };
        match event_type {
            "messageStart" => {
                parse()?;
                self.start(out);
            }
            "contentBlockStart" => {
                let event = parse()?;
                self.start(out);
                if let Some(tool) = event.start.and_then(|s| s.tool_use) {
                    let index = event.content_block_index.unwrap_or(0);
                    let tool_index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push((index, tool_index));
                    let call = ToolCall {
                        index: Some(tool_index),
                        id: Some(&tool.tool_use_id),
                        kind: Some("function"),
                        function: FunctionCall {
                            name: Some(&tool.name),
                            arguments: String::new(),
                        },
                    };
                    self.chunk(out, Delta::tool_call(call), None);
                }
            }
            "contentBlockDelta" => {
                let event = parse()?;
                let Some(delta) = event.delta else {
                    return Ok(());
                };
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    self.start(out);
                    self.chunk(out, Delta::content(text), None);
                } else if let Some(input) = delta.tool_use.and_then(|t| t.input)
                    && !input.is_empty()
                {
                    let index = event.content_block_index.unwrap_or(0);
                    // Input for a block never announced as a tool is not forwarded.
                    if let Some(&(_, tool_index)) = self.tools.iter().find(|(i, _)| *i == index) {
                        let call = ToolCall {
                            index: Some(tool_index),
                            id: None,
                            kind: None,
                            function: FunctionCall {
                                name: None,
                                arguments: input,
                            },
                        };
                        self.chunk(out, Delta::tool_call(call), None);
                    }
                }
            }
            "messageStop" => {
                let event = parse()?;
                if !self.finished {
                    self.start(out);
                    self.finished = true;
                    let reason = event
                        .stop_reason
                        .as_deref()
                        .map_or("stop", |r| finish_reason(r, !self.tools.is_empty()));
                    self.chunk(out, Delta::default(), Some(reason));
                }
            }
            "metadata" => {
                let event = parse()?;
                if let Some(usage) = event.usage {
                    self.usage = usage;
                }
                if self.finished {
                    self.end(out);
                }
            }
            // contentBlockStop, and event types this module does not know.
            _ => {}
        }
        Ok(())
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
            self.chunk(out, delta, None);
        }
    }

    /// The usage chunk (when asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            let usage = OpenAiUsage::from(&self.usage);
            self.write(out, &[], Some(Some(usage)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    /// `data: {"error":{...}}` and `[DONE]`, the way OpenAI reports an error mid-stream.
    fn error_chunk(&mut self, out: &mut Vec<u8>, message: &str, kind: &str, code: Option<&str>) {
        let body = OpenAiErrorBody {
            error: OpenAiError {
                message,
                kind,
                param: None,
                code,
            },
        };
        write_data(out, &body);
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Delta<'_>, finish_reason: Option<&'static str>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.write(out, &[choice], None);
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

/// A string header of a frame.
fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
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

/// The payload of any ConverseStream event: the members of all of them, each optional (the
/// `:event-type` header says which event it is; Bedrock pads payloads with a `p` field).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    content_block_index: Option<u64>,
    start: Option<BlockStart>,
    delta: Option<BlockDelta>,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    text: Option<String>,
    tool_use: Option<ToolUseDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    input: Option<String>,
}

//! Bedrock ConverseStream (`application/vnd.amazon.eventstream`) → OpenAI
//! `chat.completion.chunk` SSE, sans-IO.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use serde::Deserialize;

use super::error::stream_exception;
use super::response::{TokenUsage, finish_reason};
use super::{TranslateError, Usage, unix_now};
use crate::providers::openai::response::{FinishReason, ToolCallOut, completion_id};
use crate::providers::openai::stream::ChunkStream;

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
    out: ChunkStream,
    /// The role chunk was sent.
    started: bool,
    /// The finish_reason chunk was sent (`messageStop` seen).
    finished: bool,
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
            out: ChunkStream::new(
                completion_id(request_id, "bedrock"),
                client_model,
                include_usage,
                created,
            ),
            started: false,
            finished: false,
            tools: Vec::new(),
            usage: TokenUsage::default(),
        }
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::new();
        if self.out.is_over() {
            return Ok(out);
        }
        self.buffer.extend_from_slice(bytes);
        loop {
            let message = match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => message,
                Ok(DecodedFrame::Incomplete) if self.buffer.len() > MAX_FRAME => {
                    let reason = "an event-stream frame exceeded 16 MiB".to_owned();
                    return Err(self.out.break_off(out, reason));
                }
                Ok(DecodedFrame::Incomplete) => return Ok(out),
                Err(e) => {
                    let reason = format!("the upstream sent an invalid event-stream frame: {e}");
                    return Err(self.out.break_off(out, reason));
                }
            };
            if let Err(reason) = self.message(&message, &mut out) {
                return Err(self.out.break_off(out, reason));
            }
            if self.out.is_done() {
                return Ok(out);
            }
        }
    }

    /// At upstream end: the usage chunk (if `include_usage`) and `data: [DONE]`, when
    /// `metadata` did not already send them. If the upstream ended before `messageStop` or
    /// broke, an error chunk comes first so the app can tell a cut-off answer from a complete
    /// one. Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.out.take_pending();
        if !self.out.is_done() {
            self.out
                .close(&mut out, self.finished, self.usage.to_openai());
        }
        out
    }

    /// Tokens seen so far (from the `metadata` event, which comes last), so a stream cut short
    /// still gets counted as far as Bedrock told.
    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    /// Translates one frame into `out`.
    fn message(&mut self, message: &Message, out: &mut Vec<u8>) -> Result<(), String> {
        match header(message, ":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                let exception = header(message, ":exception-type").unwrap_or("exception");
                let (kind, text, code) = stream_exception(exception, message.payload());
                self.out.error(out, &text, kind, code.as_deref());
                return Ok(());
            }
            "error" => {
                let code = header(message, ":error-code");
                let text = header(message, ":error-message")
                    .filter(|m| !m.is_empty())
                    .unwrap_or("the upstream stream failed");
                self.out.error(out, text, "api_error", code);
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
                    let call =
                        ToolCallOut::start(tool_index, tool.tool_use_id.as_str(), &tool.name, "");
                    self.out.tool_call(out, 0, call);
                }
            }
            "contentBlockDelta" => {
                let event = parse()?;
                let Some(delta) = event.delta else {
                    return Ok(());
                };
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    self.start(out);
                    self.out.content(out, 0, text);
                } else if let Some(input) = delta.tool_use.and_then(|t| t.input)
                    && !input.is_empty()
                {
                    let index = event.content_block_index.unwrap_or(0);
                    // Input for a block never announced as a tool is not forwarded.
                    if let Some(&(_, tool_index)) = self.tools.iter().find(|(i, _)| *i == index) {
                        let call = ToolCallOut::arguments(tool_index, input);
                        self.out.tool_call(out, 0, call);
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
                        .map_or(FinishReason::Stop, |r| {
                            finish_reason(r, !self.tools.is_empty())
                        });
                    self.out.finish_reason(out, 0, reason);
                }
            }
            "metadata" => {
                let event = parse()?;
                if let Some(usage) = event.usage {
                    self.usage = usage;
                }
                if self.finished {
                    self.out.end(out, self.usage.to_openai());
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
            self.out.role(out, 0);
        }
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

//! OpenAI `chat.completion.chunk` SSE output and the lifecycle every stream translator
//! shares.
//!
//! A translator feeds upstream bytes and returns the OpenAI bytes to forward at once. The
//! stream ends exactly once with `data: [DONE]`: after the usage chunk (when the app asked
//! for `stream_options.include_usage`), or after an error chunk when the upstream failed,
//! broke or ended early. When `feed` fails, the bytes it had translated before the bad event
//! are kept for `finish`, which also sends the error chunk.

use std::borrow::Cow;

use serde::Serialize;

use super::response::{FinishReason, OpenAiUsage, ToolCallOut};
use super::{OpenAiError, OpenAiErrorBody, write_data};
use crate::providers::TranslateError;
use crate::providers::sse::SseParser;

/// The OpenAI side of one translated stream: writes chunks and tracks how the stream ends.
#[derive(Debug)]
pub(crate) struct ChunkStream {
    id: Cow<'static, str>,
    created: u64,
    model: String,
    include_usage: bool,
    /// `[DONE]` was sent (or is in `pending`): nothing more may follow.
    done: bool,
    /// Why the stream broke, for the error chunk `close` sends.
    broken: Option<String>,
    /// Bytes translated in a `feed` that then failed, owed to the app by `finish`.
    pending: Vec<u8>,
}

impl ChunkStream {
    /// `id` is every chunk's id until [`ChunkStream::set_id`]; `client_model` is echoed in
    /// every chunk; `include_usage` is the app's `stream_options.include_usage`.
    pub(crate) fn new(
        id: impl Into<Cow<'static, str>>,
        client_model: &str,
        include_usage: bool,
        created: u64,
    ) -> Self {
        Self {
            id: id.into(),
            created,
            model: client_model.to_owned(),
            include_usage,
            done: false,
            broken: None,
            pending: Vec::new(),
        }
    }

    pub(crate) fn set_id(&mut self, id: String) {
        self.id = Cow::Owned(id);
    }

    /// `[DONE]` was written: the stream is over.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Over, or broken: further input is ignored.
    pub(crate) fn is_over(&self) -> bool {
        self.done || self.broken.is_some()
    }

    /// The upstream broke: keeps `out` (the bytes translated so far in this `feed`) for
    /// `finish`, and returns the error `feed` reports.
    pub(crate) fn break_off(&mut self, out: Vec<u8>, reason: String) -> TranslateError {
        self.pending = out;
        self.broken = Some(reason.clone());
        TranslateError::BadUpstream(reason)
    }

    /// The start of what `finish` returns: bytes a failed `feed` still owes the app.
    pub(crate) fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// At upstream end (not done yet): the error chunk when the upstream broke or the answer
    /// is not `complete`, so the app can tell a cut-off answer from a whole one; else the
    /// usage chunk (when asked for) and `[DONE]`.
    pub(crate) fn close(&mut self, out: &mut Vec<u8>, complete: bool, usage: OpenAiUsage) {
        let cut_off = (!complete)
            .then(|| "the upstream stream ended before the message was complete".to_owned());
        match self.broken.take().or(cut_off) {
            Some(reason) => self.error(out, &reason, "upstream_error", None),
            None => self.end(out, usage),
        }
    }

    /// The usage chunk (when asked for) and `[DONE]`.
    pub(crate) fn end(&mut self, out: &mut Vec<u8>, usage: OpenAiUsage) {
        if self.include_usage {
            self.write(out, &[], Some(Some(usage)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    /// `data: {"error":{...}}` and `[DONE]`, the way OpenAI reports an error mid-stream.
    pub(crate) fn error(
        &mut self,
        out: &mut Vec<u8>,
        message: &str,
        kind: &str,
        code: Option<&str>,
    ) {
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

    /// The first chunk of choice `index`: `delta.role = "assistant"`.
    pub(crate) fn role(&self, out: &mut Vec<u8>, index: u32) {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: None,
        };
        self.chunk(out, index, delta, None);
    }

    /// A `delta.content` chunk.
    pub(crate) fn content(&self, out: &mut Vec<u8>, index: u32, text: &str) {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.chunk(out, index, delta, None);
    }

    /// A `delta.tool_calls` chunk of one call.
    pub(crate) fn tool_call(&self, out: &mut Vec<u8>, index: u32, call: ToolCallOut<'_>) {
        let delta = Delta {
            tool_calls: Some([call]),
            ..Delta::default()
        };
        self.chunk(out, index, delta, None);
    }

    /// The `finish_reason` chunk of choice `index`.
    pub(crate) fn finish_reason(&self, out: &mut Vec<u8>, index: u32, reason: FinishReason) {
        self.chunk(out, index, Delta::default(), Some(reason));
    }

    fn chunk(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: Delta<'_>,
        finish_reason: Option<FinishReason>,
    ) {
        let choice = ChunkChoice {
            index,
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
    finish_reason: Option<FinishReason>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

/// A provider stream of SSE events whose `data` is JSON: what [`SseStream`] drives.
pub(crate) trait SseEvents {
    /// Translates one event's data into `out`; an error is why the stream broke.
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
    fn stream(&mut self) -> &mut ChunkStream;
    /// The upstream sent everything a whole answer ends with.
    fn complete(&self) -> bool;
    /// The usage chunk's content.
    fn usage(&self) -> OpenAiUsage;
}

/// An SSE upstream translated event by event (the Anthropic and Gemini streams).
#[derive(Debug)]
pub(crate) struct SseStream<E> {
    parser: SseParser,
    pub(crate) events: E,
}

impl<E: SseEvents> SseStream<E> {
    pub(crate) fn new(events: E) -> Self {
        Self {
            parser: SseParser::default(),
            events,
        }
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::new();
        if self.events.stream().is_over() {
            return Ok(out);
        }
        self.parser.push(bytes);
        loop {
            let data = match self.parser.next_event() {
                Ok(Some(data)) => data,
                Ok(None) => return Ok(out),
                Err(_) => {
                    let reason = "an SSE event exceeded 4 MiB".to_owned();
                    return Err(self.events.stream().break_off(out, reason));
                }
            };
            if let Err(reason) = self.events.event(&data, &mut out) {
                return Err(self.events.stream().break_off(out, reason));
            }
            if self.events.stream().is_done() {
                return Ok(out);
            }
        }
    }

    /// At upstream end: what is still owed to the app, ending in `[DONE]`. Idempotent.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = self.events.stream().take_pending();
        if self.events.stream().is_done() {
            return out;
        }
        if !self.events.stream().is_over() {
            // A last event without its closing blank line still counts; a half one (cut off
            // mid-JSON) is what "ended early" reports.
            if let Ok(Some(data)) = self.parser.finish() {
                let _ = self.events.event(&data, &mut out);
            }
            if self.events.stream().is_done() {
                return out;
            }
        }
        let (complete, usage) = (self.events.complete(), self.events.usage());
        self.events.stream().close(&mut out, complete, usage);
        out
    }
}

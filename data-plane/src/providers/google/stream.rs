//! Gemini `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` SSE, sans-IO.

use crate::providers::openai::write_data;
use serde::Serialize;

use super::error::{OpenAiError, OpenAiErrorBody};
use super::response::{
    FunctionCall, GenerateContentResponse, OpenAiUsage, PartKind, ToolCall, UsageMetadata,
    completion_id, finish_reason,
};
use super::{TranslateError, Usage, unix_now};
use crate::providers::sse::SseParser;

/// Translates a Gemini event stream into OpenAI SSE as bytes arrive.
///
/// Each [`feed`](Self::feed) returns the bytes to forward now: for every upstream event (a
/// `GenerateContentResponse`), a role chunk the first time a candidate appears, one chunk
/// per text part, one complete `tool_calls` delta per `functionCall` part, and a
/// `finish_reason` chunk when the candidate has one. Gemini has no end event, so the usage
/// chunk (when `include_usage`) and `data: [DONE]` come from [`finish`](Self::finish) at the
/// end of the upstream body. An upstream `{"error":{...}}` event produces
/// `data: {"error":{...}}` and `data: [DONE]` at once; after that, input is ignored.
///
/// If `feed` returns an error (the upstream sent something that is not a Gemini stream),
/// the stream is over: call [`finish`](Self::finish) for the bytes still owed to the app
/// (chunks translated before the bad event, an error chunk and `[DONE]`).
#[derive(Debug)]
pub struct StreamTranslator {
    parser: SseParser,
    id: Option<String>,
    created: u64,
    model: String,
    include_usage: bool,
    /// `[DONE]` was sent (or is in `pending`): nothing more may follow.
    done: bool,
    /// Why the stream broke, for the error chunk `finish` sends.
    broken: Option<String>,
    /// Bytes translated in a `feed` that then failed, owed to the app by `finish`.
    pending: Vec<u8>,
    /// The candidates seen, in order of appearance.
    candidates: Vec<CandidateState>,
    usage: UsageMetadata,
}

#[derive(Debug)]
struct CandidateState {
    index: u32,
    /// Tool calls sent so far (the next call's index).
    calls: u32,
    finished: bool,
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
            id: None,
            created,
            model: client_model.to_owned(),
            include_usage,
            done: false,
            broken: None,
            pending: Vec::new(),
            candidates: Vec::new(),
            usage: UsageMetadata::default(),
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
    /// upstream ended before every candidate had a `finishReason`, or broke, an error chunk
    /// comes first so the app can tell a cut-off answer from a complete one. Idempotent.
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
        let complete = !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished);
        let cut_off = (!complete)
            .then(|| "the upstream stream ended before the message was complete".to_owned());
        match self.broken.take().or(cut_off) {
            Some(reason) => self.error_chunk(&mut out, &reason, "upstream_error", None),
            None => self.end(&mut out),
        }
        out
    }

    /// Tokens seen so far (Gemini's counts are cumulative; the latest `usageMetadata` wins),
    /// so a stream cut short still gets counted.
    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }

    fn break_off(&mut self, out: Vec<u8>, reason: String) -> TranslateError {
        self.pending = out;
        self.broken = Some(reason.clone());
        TranslateError::BadUpstream(reason)
    }

    /// Translates one event's data into `out`.
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let event: GenerateContentResponse = serde_json::from_slice(data)
            .map_err(|e| format!("the upstream sent an invalid stream event: {e}"))?;
        if let Some(error) = &event.error {
            let message = error.message.as_deref().unwrap_or("upstream error");
            let status = error.status.as_deref();
            self.error_chunk(out, message, "upstream_error", status);
            return Ok(());
        }
        if self.id.is_none() {
            self.id = Some(completion_id(event.response_id.as_deref()));
        }
        if let Some(usage) = event.usage_metadata {
            self.add_usage(&usage);
        }
        for candidate in &event.candidates {
            let index = candidate.index.unwrap_or(0);
            let slot = self.candidate(index, out);
            if self.candidates[slot].finished {
                continue;
            }
            for part in candidate.parts() {
                match part.kind() {
                    PartKind::Text(text) => {
                        self.chunk(out, index, Delta::content(text), None);
                    }
                    PartKind::Call(call) => {
                        let n = self.candidates[slot].calls;
                        self.candidates[slot].calls = n.saturating_add(1);
                        let delta = Delta::tool_call(ToolCall {
                            index: Some(n),
                            id: Some(format!("call_{n}")),
                            kind: Some("function"),
                            function: FunctionCall {
                                name: Some(&call.name),
                                arguments: Some(call.arguments()),
                            },
                        });
                        self.chunk(out, index, delta, None);
                    }
                    PartKind::Other => {}
                }
            }
            if let Some(reason) = candidate
                .finish_reason
                .as_deref()
                .filter(|r| !r.is_empty() && *r != "FINISH_REASON_UNSPECIFIED")
            {
                let state = &mut self.candidates[slot];
                state.finished = true;
                let reason = finish_reason(reason, state.calls > 0);
                self.chunk(out, index, Delta::default(), Some(reason));
            }
        }
        if event.candidates.is_empty() && event.block_reason().is_some() {
            let slot = self.candidate(0, out);
            if !self.candidates[slot].finished {
                self.candidates[slot].finished = true;
                self.chunk(out, 0, Delta::default(), Some("content_filter"));
            }
        }
        Ok(())
    }

    /// The slot of candidate `index`; the first time it appears, its role chunk is sent.
    fn candidate(&mut self, index: u32, out: &mut Vec<u8>) -> usize {
        if let Some(slot) = self.candidates.iter().position(|c| c.index == index) {
            return slot;
        }
        self.candidates.push(CandidateState {
            index,
            calls: 0,
            finished: false,
        });
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: None,
        };
        self.chunk(out, index, delta, None);
        self.candidates.len() - 1
    }

    /// Takes the counts a `usageMetadata` carries; absent fields keep what we have.
    fn add_usage(&mut self, usage: &UsageMetadata) {
        let fields = [
            (&mut self.usage.prompt_token_count, usage.prompt_token_count),
            (
                &mut self.usage.candidates_token_count,
                usage.candidates_token_count,
            ),
            (
                &mut self.usage.thoughts_token_count,
                usage.thoughts_token_count,
            ),
            (
                &mut self.usage.tool_use_prompt_token_count,
                usage.tool_use_prompt_token_count,
            ),
            (
                &mut self.usage.cached_content_token_count,
                usage.cached_content_token_count,
            ),
        ];
        for (held, new) in fields {
            if new.is_some() {
                *held = new;
            }
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

    fn chunk(
        &self,
        out: &mut Vec<u8>,
        index: u32,
        delta: Delta<'_>,
        finish_reason: Option<&'static str>,
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
            id: self.id.as_deref().unwrap_or("chatcmpl-gemini"),
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

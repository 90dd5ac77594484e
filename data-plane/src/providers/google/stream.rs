//! Gemini `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` SSE, sans-IO.

use super::response::{GenerateContentResponse, PartKind, UsageMetadata, finish_reason};
use super::{TranslateError, Usage, unix_now};
use crate::providers::openai::response::{FinishReason, OpenAiUsage, ToolCallOut, completion_id};
use crate::providers::openai::stream::{ChunkStream, SseEvents, SseStream};

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
pub struct StreamTranslator(SseStream<Events>);

/// What the translation of one Gemini stream tracks.
#[derive(Debug)]
struct Events {
    out: ChunkStream,
    /// The chunk id was taken from the first event.
    has_id: bool,
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
        let out = ChunkStream::new("chatcmpl-gemini", client_model, include_usage, created);
        Self(SseStream::new(Events {
            out,
            has_id: false,
            candidates: Vec::new(),
            usage: UsageMetadata::default(),
        }))
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.0.feed(bytes)
    }

    /// At upstream end: the final usage chunk (if `include_usage`) and `data: [DONE]`. If the
    /// upstream ended before every candidate had a `finishReason`, or broke, an error chunk
    /// comes first so the app can tell a cut-off answer from a complete one. Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish()
    }

    /// Tokens seen so far (Gemini's counts are cumulative; the latest `usageMetadata` wins),
    /// so a stream cut short still gets counted.
    pub fn usage(&self) -> Usage {
        self.0.events.usage.to_usage()
    }
}

impl SseEvents for Events {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let event: GenerateContentResponse = serde_json::from_slice(data)
            .map_err(|e| format!("the upstream sent an invalid stream event: {e}"))?;
        if let Some(error) = &event.error {
            let message = error.message.as_deref().unwrap_or("upstream error");
            let status = error.status.as_deref();
            self.out.error(out, message, "upstream_error", status);
            return Ok(());
        }
        if !self.has_id {
            self.has_id = true;
            self.out
                .set_id(completion_id(event.response_id.as_deref(), "gemini"));
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
                    PartKind::Text(text) => self.out.content(out, index, text),
                    PartKind::Call(call) => {
                        let n = self.candidates[slot].calls;
                        self.candidates[slot].calls = n.saturating_add(1);
                        let call = ToolCallOut::start(
                            n,
                            format!("call_{n}"),
                            &call.name,
                            call.arguments(),
                        );
                        self.out.tool_call(out, index, call);
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
                self.out.finish_reason(out, index, reason);
            }
        }
        if event.candidates.is_empty() && event.block_reason().is_some() {
            let slot = self.candidate(0, out);
            if !self.candidates[slot].finished {
                self.candidates[slot].finished = true;
                self.out.finish_reason(out, 0, FinishReason::ContentFilter);
            }
        }
        Ok(())
    }

    fn stream(&mut self) -> &mut ChunkStream {
        &mut self.out
    }

    fn complete(&self) -> bool {
        !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished)
    }

    fn usage(&self) -> OpenAiUsage {
        self.usage.to_openai()
    }
}

impl Events {
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
        self.out.role(out, index);
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
}

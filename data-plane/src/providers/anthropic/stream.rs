//! Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE, sans-IO.

use serde::Deserialize;

use super::error::ErrorDetail;
use super::response::{AnthropicUsage, finish_reason};
use super::{TranslateError, Usage, unix_now};
use crate::providers::openai::response::{FinishReason, OpenAiUsage, ToolCallOut};
use crate::providers::openai::stream::{ChunkStream, SseEvents, SseStream};

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
pub struct StreamTranslator(SseStream<Events>);

/// What the translation of one Anthropic stream tracks.
#[derive(Debug)]
struct Events {
    out: ChunkStream,
    /// The role chunk was sent.
    started: bool,
    /// The finish_reason chunk was sent.
    finished: bool,
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
        let out = ChunkStream::new("chatcmpl-anthropic", client_model, include_usage, created);
        Self(SseStream::new(Events {
            out,
            started: false,
            finished: false,
            tools: Vec::new(),
            prompt_tokens: 0,
            cached_tokens: 0,
            output_tokens: 0,
        }))
    }

    /// Feeds upstream bytes (any chunking); returns OpenAI SSE bytes to forward immediately.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.0.feed(bytes)
    }

    /// At upstream end: the final usage chunk (if `include_usage`) and `data: [DONE]`. If the
    /// upstream ended before `message_delta`/`message_stop` or broke, an error chunk comes
    /// first so the app can tell a cut-off answer from a complete one. Idempotent.
    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish()
    }

    /// Tokens seen so far: prompt tokens from `message_start`, output tokens from the latest
    /// `message_delta` (cumulative), so a stream cut short still gets counted.
    pub fn usage(&self) -> Usage {
        self.0.events.tokens()
    }
}

impl SseEvents for Events {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let event: Event = serde_json::from_slice(data)
            .map_err(|e| format!("the upstream sent an invalid stream event: {e}"))?;
        match event {
            Event::MessageStart { message } => {
                if !message.id.is_empty() {
                    self.out.set_id(format!("chatcmpl-{}", message.id));
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
                        self.out.content(out, 0, &text);
                    }
                    StartBlock::ToolUse { id, name } => {
                        let tool_index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                        self.tools.push((index, tool_index));
                        let call = ToolCallOut::start(tool_index, id.as_str(), &name, "");
                        self.out.tool_call(out, 0, call);
                    }
                    StartBlock::Text { .. } | StartBlock::Other => {}
                }
            }
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    self.start(out);
                    self.out.content(out, 0, &text);
                }
                BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    // Deltas of blocks we did not announce (server tools) are not forwarded.
                    if let Some(&(_, tool_index)) = self.tools.iter().find(|(i, _)| *i == index) {
                        let call = ToolCallOut::arguments(tool_index, partial_json);
                        self.out.tool_call(out, 0, call);
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
                    self.out.finish_reason(out, 0, finish_reason(reason));
                }
            }
            Event::MessageStop {} => {
                if !self.finished {
                    // message_stop without a stop_reason: still a complete message.
                    self.start(out);
                    self.finished = true;
                    self.out.finish_reason(out, 0, FinishReason::Stop);
                }
                let usage = self.usage();
                self.out.end(out, usage);
            }
            Event::Error { error } => {
                let kind = error.kind.as_deref().unwrap_or("api_error");
                let message = error.message.as_deref().unwrap_or("upstream error");
                self.out.error(out, message, kind, None);
            }
            Event::Other => {}
        }
        Ok(())
    }

    fn stream(&mut self) -> &mut ChunkStream {
        &mut self.out
    }

    fn complete(&self) -> bool {
        self.finished
    }

    fn usage(&self) -> OpenAiUsage {
        OpenAiUsage::new(self.tokens(), self.cached_tokens)
    }
}

impl Events {
    fn tokens(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
        }
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
            self.out.role(out, 0);
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

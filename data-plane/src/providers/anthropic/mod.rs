//! OpenAI Chat Completions ⇄ Anthropic Messages API translation.
//!
//! Pure and sans-IO: bytes in, bytes out. The caller owns HTTP, routing, retries and the
//! upstream headers (`x-api-key`, `anthropic-version: 2023-06-01`, `content-type`).
//!
//! | direction | entry point |
//! |---|---|
//! | request  | [`translate_request`]: OpenAI `chat.completions` body → `POST /v1/messages` body |
//! | response | [`translate_response`]: Anthropic `message` → OpenAI `chat.completion` + [`Usage`] |
//! | error    | [`translate_error`]: Anthropic status + error body → status + OpenAI error body |
//! | stream   | [`StreamTranslator`]: Anthropic SSE bytes → OpenAI `chat.completion.chunk` SSE bytes |
//!
//! # Mappings where the formats differ
//!
//! * `system` / `developer` messages, wherever they appear, are lifted into the top-level
//!   `system` string, joined with a blank line, in order.
//! * Anthropic needs user/assistant alternation: consecutive messages of the same role are
//!   merged into one message whose content blocks are concatenated. `tool` messages become
//!   `tool_result` blocks of a user message (so they merge with neighbouring tool and user
//!   messages). Content is always sent as an array of blocks; empty text parts are dropped
//!   (Anthropic rejects empty text blocks) and a message left without blocks is dropped.
//! * Assistant `tool_calls` become `tool_use` blocks; `function.arguments` (a JSON string) is
//!   parsed and must be a JSON object (an empty string means `{}`). Tool call ids keep their
//!   value, except characters Anthropic refuses (outside `[a-zA-Z0-9_-]`) become `_`, on the
//!   call and its `tool_call_id` alike.
//! * `image_url` parts: `data:<media type>;base64,<data>` → a `base64` image source,
//!   `http(s)://` → a `url` image source; `detail` is dropped.
//! * `max_completion_tokens` (preferred) or `max_tokens` → `max_tokens`, else the connection's
//!   `default_max_tokens` (Anthropic requires it).
//! * `stop` (string or array) → `stop_sequences`; `user` (else `safety_identifier`) →
//!   `metadata.user_id`; `temperature`, `top_p`, `stream` are copied as is (Anthropic accepts
//!   temperature 0–1 only and rejects the rest with a 400, which [`translate_error`] relays).
//! * `tools[].function{name, description, parameters}` → `tools[]{name, description,
//!   input_schema}` (`{"type":"object"}` when `parameters` is absent; `strict` is dropped).
//! * `tool_choice`: `"auto"` → `auto`, `"none"` → `none`, `"required"` → `any`,
//!   `{type:function, function:{name}}` → `{type:tool, name}`. `parallel_tool_calls: false`
//!   → `disable_parallel_tool_use: true` on the tool choice.
//! * Response: text blocks are concatenated (exactly what the stream delivers), `content` is
//!   `null` when the reply holds only tool calls; `tool_use` → `tool_calls` with `arguments`
//!   the compact JSON of `input`; `stop_reason` `end_turn`/`stop_sequence`/`pause_turn` →
//!   `stop`, `max_tokens`/`model_context_window_exceeded` → `length`, `tool_use` →
//!   `tool_calls`, `refusal` → `content_filter`; the id is `chatcmpl-<anthropic id>`.
//! * Usage: see [`Usage`]: prompt tokens include cache reads and cache writes.
//!
//! # Not translated
//!
//! * Rejected with [`TranslateError::InvalidRequest`]: `n` > 1, `response_format` of type
//!   `json_object` / `json_schema` (Anthropic has no equivalent on this API version; silently
//!   ignoring it would hand the app prose where it parses JSON), the deprecated `functions` /
//!   `function_call` and `function` role, audio and file content parts, tools other than
//!   `function`.
//! * Dropped without error (no Anthropic equivalent): `frequency_penalty`,
//!   `presence_penalty`, `logit_bias`, `logprobs`, `top_logprobs`, `seed`, `service_tier`,
//!   `store`, `metadata`, `modalities`, `audio`, `prediction`, `reasoning_effort`,
//!   `verbosity`, `web_search_options`, `prompt_cache_key`, `stream_options` (the caller reads
//!   `include_usage` for [`StreamTranslator::new`]), message `name`, assistant `refusal`, and
//!   any field this module does not know.
//! * From responses: `thinking`, `redacted_thinking`, server tool blocks and citations are
//!   dropped (the request never enables them); `stop_sequence` (which one matched) is dropped.

mod error;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

use super::unix_now;
pub use super::{TranslateError, Usage};
pub use error::translate_error;
pub use request::translate_request;
pub use response::{translate_response, translate_response_at};
pub use stream::StreamTranslator;

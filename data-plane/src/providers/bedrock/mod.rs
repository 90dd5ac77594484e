//! OpenAI Chat Completions ⇄ AWS Bedrock Converse API translation, and SigV4 signing.
//!
//! Pure and sans-IO: bytes in, bytes out. The caller owns HTTP, routing and the upstream
//! request: `POST {endpoint}/model/{modelId}/converse`, or `/converse-stream` for streams (the
//! body is the same), with `content-type: application/json` and the SigV4 headers of
//! [`sign_request`] computed over the final URL and body right before sending. The model id
//! is one percent-encoded path segment ([`model_path`]: `anthropic.claude-3-5-sonnet-20240620-v1:0`
//! becomes `...v1%3A0`); the signature encodes that path once more, as AWS does for every
//! service but S3.
//!
//! | direction | entry point |
//! |---|---|
//! | request  | [`translate_request`]: OpenAI `chat.completions` body → Converse request body |
//! | response | [`translate_response`]: Converse response → OpenAI `chat.completion` + [`Usage`] |
//! | error    | [`translate_error`]: Bedrock status + `x-amzn-ErrorType` + body → status + OpenAI error body |
//! | stream   | [`StreamTranslator`]: ConverseStream `application/vnd.amazon.eventstream` bytes → OpenAI `chat.completion.chunk` SSE |
//! | signing  | [`sign_request`]: SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) |
//! | embeddings | [`translate_embed_request`] → [`EmbedPlan`] (`InvokeModel` calls for Titan / Cohere Embed), [`EmbedPlan::translate_response`] → OpenAI embeddings (see `embed.rs`) |
//!
//! # Mappings where the formats differ
//!
//! * `system` / `developer` messages, wherever they appear, become `system` blocks
//!   (`[{"text": ...}]`, one per message, in order).
//! * Roles: `user` → `user`, `assistant` → `assistant`; `tool` messages become `toolResult`
//!   blocks of a `user` message. Consecutive messages of the same role are merged into one
//!   (Bedrock wants user/assistant alternation, and the results of parallel calls travel
//!   together). Empty text parts are dropped (Bedrock rejects blank text blocks) and a message
//!   left without blocks is dropped.
//! * Assistant `tool_calls` → `toolUse {toolUseId, name, input}`; `function.arguments` (a JSON
//!   string) must parse to a JSON object (an empty string means `{}`). Tool call ids keep their
//!   value, except characters Bedrock refuses (outside `[a-zA-Z0-9_-]`) become `_`, on the
//!   call and its `tool_call_id` alike.
//! * A `tool` message → `toolResult {toolUseId, content: [{json}]}` when its text parses to a
//!   JSON object, else `[{text}]`; no `status` (OpenAI has no error flag on tool results).
//! * `image_url` parts: only `data:image/{png,jpeg,gif,webp};base64,<data>` URLs →
//!   `image {format, source: {bytes}}` (Converse takes the bytes, not a URL).
//! * `inferenceConfig`: `max_completion_tokens` (preferred) or `max_tokens` → `maxTokens`,
//!   `temperature`, `top_p` → `topP`, `stop` (string or array) → `stopSequences`. Without a
//!   limit Bedrock uses the model's own maximum.
//! * `tools[].function{name, description, parameters}` →
//!   `toolConfig.tools[].toolSpec{name, description, inputSchema: {json}}`
//!   (`{"type":"object","properties":{}}` when `parameters` is absent; `strict` is dropped).
//! * `tool_choice`: `"auto"` → no `toolChoice` (auto is Bedrock's default, and only some
//!   models accept the field at all), `"required"` → `{any: {}}`,
//!   `{type:function, function:{name}}` → `{tool: {name}}`, `"none"` → no `toolConfig` at
//!   all, unless the conversation already holds tool calls or results, which Bedrock only
//!   accepts alongside a `toolConfig`: then the tools are sent without a choice (the model may
//!   still call one).
//! * Response: text blocks are concatenated, `toolUse` → `tool_calls` (id `toolUseId`,
//!   `arguments` the compact JSON of `input`); `content` is `null` when the reply holds only
//!   tool calls. `stopReason` `end_turn`/`stop_sequence` → `stop`, `tool_use` → `tool_calls`,
//!   `max_tokens`/`model_context_window_exceeded` → `length`,
//!   `guardrail_intervened`/`content_filtered` → `content_filter`. Converse answers carry no
//!   id: the caller passes the `x-amzn-RequestId` header, giving `chatcmpl-<request id>`.
//! * Usage: see [`Usage`].
//! * Streams: `messageStart` → the role chunk, `contentBlockStart` of a `toolUse` → a
//!   `tool_calls` delta with id and name, `contentBlockDelta` text → a content chunk,
//!   `toolUse.input` (partial JSON) → an `arguments` delta, `messageStop` → the
//!   `finish_reason` chunk, `metadata` (which Bedrock sends after `messageStop`) → the usage
//!   chunk (when `include_usage`) and `[DONE]`. An `exception` frame mid-stream →
//!   `data: {"error":{...}}` and `[DONE]`.
//!
//! # Not translated
//!
//! * Rejected with [`TranslateError::InvalidRequest`]: `n` > 1, `response_format` of type
//!   `json_object` / `json_schema` (no Converse equivalent; silently ignoring it would hand the
//!   app prose where it parses JSON), the deprecated `functions` / `function_call` and
//!   `function` role, image URLs other than base64 data URLs of png/jpeg/gif/webp, audio and
//!   file content parts, tools other than `function`.
//! * Dropped without error: `frequency_penalty`, `presence_penalty`, `seed`, `logit_bias`,
//!   `logprobs`, `top_logprobs`, `user`, `safety_identifier`, `parallel_tool_calls`,
//!   `service_tier`, `store`, `metadata`, `modalities`, `audio`, `prediction`,
//!   `reasoning_effort`, `verbosity`, `web_search_options`, `prompt_cache_key`, `stream` and
//!   `stream_options` (the caller picks the URL from `stream` and reads `include_usage` for
//!   [`StreamTranslator::new`]), message `name`, assistant `refusal`, image `detail`, and any
//!   field this module does not know. Bedrock's `guardrailConfig`,
//!   `additionalModelRequestFields`, `promptVariables` and cache points are never sent.
//! * From responses: `reasoningContent`, `citationsContent`, `document`, `image`, `video`,
//!   `guardContent` blocks, `trace`, `metrics`, `performanceConfig` and
//!   `additionalModelResponseFields` are dropped.

mod embed;
mod error;
mod request;
mod response;
pub(crate) mod sign;
mod stream;

#[cfg(test)]
mod tests;

use super::unix_now;
pub use super::{TranslateError, Usage};
pub use embed::{COHERE_MAX_TEXTS, EmbedPlan, InvokeAnswer, invoke_path, translate_embed_request};
pub use error::translate_error;

/// Whether the gateway may sign a request to `host` with its own AWS identity: an AWS host
/// (`*.amazonaws.com`, `*.amazonaws.com.cn`, `*.api.aws`, VPC endpoints included) or this
/// machine's loopback. Anywhere else a signed request (valid for minutes, with its session
/// token) would hand the platform's role to whoever runs that host.
pub fn signs_for_host(host: &str) -> bool {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    crate::net::is_loopback_host(host)
        || [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}
pub use request::translate_request;
pub use response::{translate_response, translate_response_at};
pub use sign::{AwsAuth, AwsCredentials, SignError, authorization, model_path, sign_request};
pub use stream::StreamTranslator;

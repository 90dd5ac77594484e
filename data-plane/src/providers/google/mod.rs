//! OpenAI Chat Completions ⇄ Google Gemini API (`generateContent`) translation.
//!
//! Pure and sans-IO: bytes in, bytes out. The caller owns HTTP, routing and the upstream
//! request: `POST {endpoint}/v1beta/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for streams (the body is the same), with the key in the
//! `x-goog-api-key` header (never in the query string) and `content-type: application/json`.
//!
//! | direction | entry point |
//! |---|---|
//! | request  | [`translate_request`]: OpenAI `chat.completions` body → `GenerateContentRequest` |
//! | response | [`translate_response`]: `GenerateContentResponse` → OpenAI `chat.completion` + [`Usage`] |
//! | error    | [`translate_error`]: Gemini status + error body → status + OpenAI error body |
//! | stream   | [`StreamTranslator`]: Gemini SSE (one `GenerateContentResponse` per `data:`) → OpenAI `chat.completion.chunk` SSE |
//! | embeddings | [`translate_embed_request`] → [`EmbedPlan`] (`embedContent` / `batchEmbedContents` calls), [`EmbedPlan::translate_response`] → OpenAI embeddings (see `embed.rs`) |
//!
//! # Mappings where the formats differ
//!
//! * `system` / `developer` messages, wherever they appear, become the parts of
//!   `systemInstruction` (one text part each, in order).
//! * Roles: `user` → `user`, `assistant` → `model`; `tool` messages become `functionResponse`
//!   parts of a `user` turn. Consecutive messages of the same Gemini role are merged into one
//!   `Content` (so the responses to parallel calls travel together, as Gemini expects). Empty
//!   text parts are dropped and a turn left without parts is dropped.
//! * Assistant `tool_calls` → `functionCall` parts `{name, args}`; `function.arguments` (a
//!   JSON string) must parse to a JSON object (an empty string means `{}`).
//! * A `tool` message → `functionResponse {name, response}`: `name` is the function of the
//!   latest earlier assistant tool call with that `tool_call_id` (Gemini pairs by name, not
//!   id); `response` is the content parsed as JSON when that gives an object, else
//!   `{"content": <the text>}`.
//! * `image_url` parts: `data:<mime>;base64,<data>` → `inlineData {mimeType, data}`;
//!   `http(s)://` URLs → `fileData {mimeType, fileUri}` with the MIME type taken from the
//!   file extension (png, jpg/jpeg, webp, gif, heic, heif; anything else is refused: send a
//!   data URL). `input_audio {data, format}` → `inlineData` (`audio/wav`, `audio/mp3`, ...).
//! * `generationConfig`: `max_completion_tokens` (preferred) or `max_tokens` →
//!   `maxOutputTokens`; `temperature`, `top_p` → `topP`, `stop` → `stopSequences`, `n` →
//!   `candidateCount` (each candidate is a choice), `presence_penalty` → `presencePenalty`,
//!   `frequency_penalty` → `frequencyPenalty`, `seed`; `response_format` `json_object` →
//!   `responseMimeType: application/json`, `json_schema` → that plus `responseJsonSchema`.
//! * `tools[].function{name, description, parameters}` → one `tools[].functionDeclarations`
//!   list, `parameters` sent as `parametersJsonSchema` (full JSON Schema, so OpenAI schemas
//!   with `additionalProperties` pass unchanged).
//! * `tool_choice`: `"auto"` → `AUTO`, `"none"` → `NONE`, `"required"` → `ANY`,
//!   `{type:function, function:{name}}` → `ANY` with `allowedFunctionNames: [name]`.
//! * Response: per candidate, text parts are concatenated (`thought` parts are not: they are
//!   the model's reasoning summary), `functionCall` parts → `tool_calls` with generated ids
//!   `call_<n>` (Gemini has none; n counts calls within the candidate) and `arguments` the
//!   compact JSON of `args`. `content` is `null` when a candidate holds only calls.
//!   `finishReason` → `tool_calls` when the candidate has calls, else `STOP` → `stop`,
//!   `MAX_TOKENS` → `length`, `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`,
//!   `SPII`, `IMAGE_SAFETY` (and other image refusals) → `content_filter`, anything else →
//!   `stop`. A prompt blocked before any candidate (`promptFeedback.blockReason`) is one
//!   choice with `content: null` and `content_filter`. The id is `chatcmpl-<responseId>`.
//! * Usage: see [`Usage`].
//! * Streams: Gemini sends whole `functionCall` parts, so each becomes one complete
//!   `tool_calls` delta (id, name and all the arguments at once). Gemini has no end event:
//!   the stream is complete when every candidate has a `finishReason`, and `[DONE]` is sent
//!   when the upstream body ends ([`StreamTranslator::finish`]).
//!
//! # Not translated
//!
//! * Rejected with [`TranslateError::InvalidRequest`]: the deprecated `functions` /
//!   `function_call` and `function` role, `file` content parts, image URLs of unknown type,
//!   tools other than `function`.
//! * Dropped without error (no Gemini equivalent on this path): `logit_bias`, `logprobs`,
//!   `top_logprobs`, `user`, `safety_identifier`, `parallel_tool_calls`, `service_tier`,
//!   `store`, `metadata`, `modalities`, `audio`, `prediction`, `reasoning_effort`,
//!   `verbosity`, `web_search_options`, `prompt_cache_key`, `stream` and `stream_options`
//!   (the caller picks the URL from `stream` and reads `include_usage` for
//!   [`StreamTranslator::new`]), message `name`, assistant `refusal`, image `detail`, and any
//!   field this module does not know. Gemini's `safetySettings` keep their defaults.
//! * From responses: `thought` parts and `thoughtSignature`s (so Gemini 3 models, which want
//!   the signature of a function call sent back with it, may refuse a multi-turn tool
//!   conversation), `executableCode`, `codeExecutionResult`, `inlineData` outputs,
//!   `safetyRatings`, `citationMetadata`, `groundingMetadata` and `logprobsResult` are
//!   dropped; `finishMessage` is dropped.

mod embed;
mod error;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

use super::unix_now;
pub use super::{TranslateError, Usage};
pub use embed::{EmbedPlan, MAX_BATCH, translate_embed_request};
pub use error::translate_error;
pub use request::translate_request;
pub use response::{translate_response, translate_response_at};
pub use stream::StreamTranslator;

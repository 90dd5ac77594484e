//! The OpenAI side that every translator shares, so that each provider module maps from one
//! model of the app's request and writes through one set of builders:
//!
//! * [`request`]: a typed view of an OpenAI chat request that borrows from the parsed body.
//!   Each accessor checks its field and gives the one error message for it. Checks run when
//!   a translator asks, so each provider keeps its own order of checks and fields it drops
//!   stay unchecked.
//! * [`messages`]: the conversation, normalized (system text, user content parts, assistant
//!   text and tool calls with parsed arguments, tool results), and the walk that turns it
//!   into a provider's alternating turns.
//! * [`response`]: `chat.completion` bodies, tool calls and `usage`.
//! * [`stream`]: `chat.completion.chunk` SSE output and the lifecycle every stream translator
//!   shares: role chunk, deltas, `finish_reason`, usage chunk, `[DONE]`, error chunks, and what
//!   is still owed to the app after a broken upstream.
//! * here: OpenAI error bodies and the SSE `data:` framing.

pub(crate) mod messages;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct OpenAiErrorBody<'a> {
    pub(crate) error: OpenAiError<'a>,
}

#[derive(Serialize)]
pub(crate) struct OpenAiError<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

/// `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Vec<u8> {
    let body = OpenAiErrorBody {
        error: OpenAiError {
            message,
            kind,
            param,
            code,
        },
    };
    // Serializing borrowed strings into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Appends `data: <json>\n\n`; on the (impossible) serialization failure appends nothing.
pub(crate) fn write_data(out: &mut Vec<u8>, value: &impl Serialize) {
    let mark = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.extend_from_slice(b"\n\n");
    } else {
        out.truncate(mark);
    }
}

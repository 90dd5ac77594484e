//! Provider adapters: translations between the OpenAI format apps send and each provider's
//! own wire format. Pure functions and sans-IO stream translators, golden-tested.

pub mod anthropic;
pub mod bedrock;
pub mod embeddings;
pub mod google;
pub(crate) mod openai;
pub(crate) mod sse;

/// Tokens as the provider reported them, for usage accounting. `input_tokens` is the whole
/// prompt (cached parts included, as OpenAI's `prompt_tokens`); each translator documents
/// how it adds up its provider's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached parts included.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// Why a body could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The app's OpenAI request is malformed or asks for something the provider cannot do:
    /// answer 400 `invalid_request_error` with this message and `param`.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for the app.
        message: String,
        /// The offending field, as a path (`messages[2].tool_calls[0].function.arguments`).
        param: Option<String>,
    },
    /// The provider sent something that is not a valid response of its API: answer 502.
    #[error("upstream sent an invalid response: {0}")]
    BadUpstream(String),
}

impl TranslateError {
    pub(crate) fn invalid(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status the gateway should answer with: 400 or 502.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest { .. } => 400,
            Self::BadUpstream(_) => 502,
        }
    }

    /// The OpenAI error body (`{"error":{"message","type","param","code"}}`) for this error.
    pub fn to_openai_body(&self) -> Vec<u8> {
        let (kind, param) = match self {
            Self::InvalidRequest { param, .. } => ("invalid_request_error", param.as_deref()),
            Self::BadUpstream(_) => ("upstream_error", None),
        };
        openai::openai_error_body(&self.to_string(), kind, param, None)
    }
}

/// Seconds since the Unix epoch, for `created`; 0 if the clock is before 1970.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

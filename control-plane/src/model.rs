//! Domain types of the control plane. Wire types (prost) are converted at the service edge;
//! these are what the store holds (as JSON, on purpose part of the stored format).

use serde::{Deserialize, Serialize};

/// Provider compatibility type of an AI LLM configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AiType {
    Openai,
    Google,
    Anthropic,
    Aws,
    Other,
}

impl AiType {
    /// The provider's base URL as its own SDK takes it.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            AiType::Openai | AiType::Other => "https://api.openai.com/v1",
            AiType::Anthropic => "https://api.anthropic.com",
            AiType::Google => "https://generativelanguage.googleapis.com",
            AiType::Aws => "https://bedrock-runtime.us-east-1.amazonaws.com",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AiType::Openai => "OPENAI",
            AiType::Google => "GOOGLE",
            AiType::Anthropic => "ANTHROPIC",
            AiType::Aws => "AWS",
            AiType::Other => "OTHER",
        }
    }
}

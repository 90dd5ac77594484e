//! Provider adapters: translations between the OpenAI format apps send and each provider's
//! own wire format. Pure functions and sans-IO stream translators, golden-tested.

pub mod anthropic;
pub mod bedrock;
pub mod google;
pub(crate) mod sse;

//! Tollgate data plane: the OpenAI-compatible gateway.
//!
//! [`run`] starts everything from a [`Config`]; [`Gateway::bind`] then [`Gateway::serve`] do
//! the same in two steps, so embedders and tests can learn the bound addresses (port 0).
#![forbid(unsafe_code)]

pub mod aws_identity;
pub mod backoff;
pub mod body;
pub mod bucket;
pub mod config;
pub mod error;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod providers;
pub mod proxy;
pub mod secret;
pub mod server;
pub mod snapshot;
pub mod sync;
pub mod usage;

mod gateway;
#[cfg(test)]
mod tests;

pub use config::{Config, ConfigError};
pub use error::ProxyError;
pub use gateway::{Gateway, run};

//! Tollgate SDK: a typed async client of the admin API (`tollgate.admin.v1`), proto3 JSON
//! rendering of its messages, and declarative `apply` of a YAML file.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate_sdk::Error> {
//! use tollgate_sdk::{proto, Client};
//! let client = Client::connect("http://127.0.0.1:7070", "tgadm_...").await?;
//! let llms = client.list_ai_llms(proto::ListAiLlmsRequest::default()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod apply;
mod client;
mod error;
pub mod json;
pub mod route;
mod rpc;
pub mod secret;

pub use client::{Auth, AuthChannel, Client, ConnectOptions};
pub use error::{Error, code_name};
pub use secret::{Secret, SecretError, SecretSource};
/// The generated admin API types (`tollgate.admin.v1`).
pub use tollgate_proto::admin as proto;

/// An RFC 3339 time (`2027-01-31T00:00:00Z`), as the admin API takes times; the error names
/// the text and the form expected.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not an RFC 3339 time such as 2027-01-31T00:00:00Z"))
}

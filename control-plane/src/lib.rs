//! Tollgate control plane: the admin API, the store, secrets and snapshots for data planes.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod error;
pub mod keys;
pub mod model;
pub mod retention;
pub mod rotate;
pub mod server;
pub mod store;
pub mod sync;
pub mod validate;

pub use api::Ctx;
pub use error::{ApiError, ApiResult};
pub use store::{Store, StoreError};

//! Tollgate control plane: the admin API, the store, secrets and snapshots for data planes.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod model;
pub mod store;
pub mod validate;

//! End-to-end tests: real etcd, the real `tollgate-control-plane` and `tollgatectl` binaries,
//! mock providers speaking each provider's wire format. Build the binaries first:
//! `cargo build --workspace --bins`.

mod admin;
mod apply;
mod azure;
mod bedrock;
mod dev;
mod embeddings;
mod gateway;
mod google;
mod other;
mod permissions;
mod policies;
mod restart;
mod routes;
mod secrets;
mod sync_auth;
mod transport;

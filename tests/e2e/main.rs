//! End-to-end tests: real etcd, the real `tollgate-control-plane` and `tollgatectl` binaries,
//! mock providers speaking each provider's wire format. Build the binaries first:
//! `cargo build --workspace --bins`.

mod admin;
mod apply;
mod bedrock;
mod dev;
mod gateway;
mod google;
mod permissions;
mod restart;
mod secrets;
mod transport;

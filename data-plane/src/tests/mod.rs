//! In-process tests of the whole data plane over real HTTP on 127.0.0.1: a mock OpenAI
//! upstream, a hand-made snapshot or a fake control plane, and the real server.

pub(crate) mod conformance;
mod harness;
mod mock_upstream;
mod proxy_http;
mod routing_modes;
mod server_limits;
mod sync_client;
mod upstream_safety;
mod usage_sink;

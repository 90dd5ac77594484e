//! Test harness: starts real etcd, the real binaries and mock providers, each owned by a
//! value that kills its process when dropped.
#![forbid(unsafe_code)]

#[path = "harness/bins.rs"]
pub mod bins;
#[path = "harness/chat.rs"]
pub mod chat;
#[path = "harness/conformance.rs"]
pub mod conformance;
#[path = "harness/control_plane.rs"]
pub mod control_plane;
#[path = "harness/ctl.rs"]
pub mod ctl;
#[path = "harness/data_plane.rs"]
pub mod data_plane;
#[path = "harness/egress_proxy.rs"]
pub mod egress_proxy;
#[path = "harness/etcd.rs"]
pub mod etcd;
#[path = "harness/http.rs"]
pub mod http;
#[path = "harness/mock_bedrock.rs"]
pub mod mock_bedrock;
#[path = "harness/mock_embeddings.rs"]
pub mod mock_embeddings;
#[path = "harness/mock_provider.rs"]
pub mod mock_provider;
#[path = "harness/mock_sts.rs"]
pub mod mock_sts;
#[path = "harness/tls.rs"]
pub mod tls;

pub use control_plane::{Backend, ControlPlane, ControlPlaneBuilder, SyncTls};
pub use ctl::{Ctl, CtlOutput};
pub use data_plane::{DataPlane, DataPlaneBuilder};
pub use etcd::Etcd;
pub use mock_provider::MockProvider;

/// The proxy variables a binary would take from the test's own environment.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The AWS identity variables a binary would take from the test's own environment.
const AWS_VARIABLES: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// `cmd` without the test's own proxy and AWS identity variables: a CI machine's proxy must
/// not carry the mock providers' traffic, nor its AWS role sign for the mocks, nor a value a
/// binary refuses stop it.
pub fn without_proxy(cmd: &mut tokio::process::Command) -> &mut tokio::process::Command {
    for name in PROXY_VARIABLES.into_iter().chain(AWS_VARIABLES) {
        cmd.env_remove(name);
    }
    cmd.env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
}

/// A binary's environment: [`without_proxy`], plus `env`.
pub(crate) fn process_env(cmd: &mut tokio::process::Command, env: &[(String, String)]) {
    without_proxy(cmd).envs(env.iter().map(|(k, v)| (k, v)));
}

/// A free loopback port (bound, then released for the child process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Waits until `check` is true, polling every 50 ms, or panics after `secs` with `what`.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out after {secs}s waiting for {what}");
}

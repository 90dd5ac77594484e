//! The gRPC channel to the control plane: mTLS (rustls) for https://, plaintext only for a
//! loopback http:// address (checked by `Config::validate`).

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::Config;

/// A channel that connects on first use and reconnects by itself; shared by the config
/// stream and the usage reporter.
pub fn connect_lazy(config: &Config) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(config.control_plane.clone())
        .with_context(|| format!("--control-plane {:?}", config.control_plane))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Detects a vanished control plane on an idle stream, so we reconnect elsewhere.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if config.sync_uses_tls() {
        let read = |flag: &str, path: &Option<std::path::PathBuf>| -> anyhow::Result<Vec<u8>> {
            let path = path
                .as_ref()
                .with_context(|| format!("{flag} is required"))?;
            std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
        };
        let ca = read("--control-plane-ca", &config.control_plane_ca)?;
        let cert = read("--client-cert", &config.client_cert)?;
        let key = zeroize::Zeroizing::new(read("--client-key", &config.client_key)?);
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key.as_slice()));
        endpoint = endpoint
            .tls_config(tls)
            .context("control plane TLS settings")?;
    }
    Ok(endpoint.connect_lazy())
}

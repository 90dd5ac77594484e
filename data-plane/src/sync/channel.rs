//! The gRPC channel to the control plane: mTLS (rustls) for https://, plaintext only for a
//! loopback http:// address (checked by `Config::validate`), and the sync token on every
//! call when one is configured.

use std::time::Duration;

use anyhow::Context;
use tollgate_proto::sync::sync_service_client::SyncServiceClient;
use tollgate_proto::sync::{UsageAck, UsageReport};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::Config;
use crate::usage::UsageSender;

/// The channel to the control plane, with the sync token added to every call.
pub type SyncChannel = InterceptedService<Channel, SyncAuth>;

/// Adds `authorization: Bearer <sync token>` to each call, when a token is configured.
#[derive(Clone, Default)]
pub struct SyncAuth {
    /// Marked sensitive: HTTP/2 never indexes it in its header tables.
    header: Option<AsciiMetadataValue>,
}

impl SyncAuth {
    /// Sends `token`, or nothing when `None`.
    pub fn new(token: Option<&crate::secret::Secret>) -> anyhow::Result<Self> {
        let header = token
            .map(|t| {
                let mut v = MetadataValue::try_from(format!("Bearer {}", t.expose()))
                    .map_err(|_| anyhow::anyhow!("the sync token cannot be sent in a header"))?;
                v.set_sensitive(true);
                anyhow::Ok(v)
            })
            .transpose()?;
        Ok(Self { header })
    }
}

impl std::fmt::Debug for SyncAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncAuth")
            .field("token", &self.header.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Interceptor for SyncAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.header {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

impl UsageSender for SyncServiceClient<SyncChannel> {
    async fn send(&mut self, report: UsageReport) -> Result<UsageAck, tonic::Status> {
        self.report_usage(report)
            .await
            .map(tonic::Response::into_inner)
    }
}

/// A channel that connects on first use and reconnects by itself; shared by the config
/// stream and the usage reporter.
pub fn connect_lazy(config: &Config) -> anyhow::Result<SyncChannel> {
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
    let token = config.load_sync_token().map_err(anyhow::Error::msg)?;
    let auth = SyncAuth::new(token.as_ref())?;
    Ok(InterceptedService::new(endpoint.connect_lazy(), auth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_token_goes_in_authorization_and_debug_hides_it() {
        let token = Secret::new("tgsync-0123456789abcdef".into());
        let mut auth = SyncAuth::new(Some(&token)).expect("auth");
        assert!(!format!("{auth:?}").contains("0123456789"));
        let req = auth.call(tonic::Request::new(())).expect("call");
        let v = req.metadata().get("authorization").expect("header");
        assert_eq!(v.to_str().ok(), Some("Bearer tgsync-0123456789abcdef"));
        assert!(v.is_sensitive());
        let req = SyncAuth::default()
            .call(tonic::Request::new(()))
            .expect("call");
        assert!(req.metadata().get("authorization").is_none());
    }
}

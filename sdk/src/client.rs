//! The connection to the control plane: one tonic `Channel` and an interceptor that adds the
//! admin token to every call.

use std::fmt;
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{self, Error};
use crate::proto;
use crate::secret::Secret;

/// How to connect; [`ConnectOptions::default`] is what [`Client::connect`] uses.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Time allowed to establish the connection (default 5 s).
    pub connect_timeout: Duration,
    /// Deadline of each call (default 60 s; validation calls a provider).
    pub request_timeout: Option<Duration>,
    /// PEM CA bundle to trust for `https://` instead of the public web roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(60)),
            ca_pem: None,
        }
    }
}

/// Adds `authorization: Bearer <token>` to every request; the header is marked sensitive.
#[derive(Clone)]
pub struct Auth {
    header: AsciiMetadataValue,
}

impl Auth {
    fn new(token: &Secret) -> Result<Self, Error> {
        let mut header: AsciiMetadataValue =
            MetadataValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                Error::Config(
                    "the admin token contains characters not allowed in a header".to_string(),
                )
            })?;
        header.set_sensitive(true);
        Ok(Self { header })
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Auth(Bearer ***)")
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(req)
    }
}

/// The transport every service client uses.
pub type AuthChannel = InterceptedService<Channel, Auth>;

/// A typed client of every admin service. Cheap to clone; calls take `&self`.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    auth: Auth,
    addr: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

impl Client {
    /// Connects to `addr` (`http://host:7070` or `https://...`) with the admin `token`.
    pub async fn connect(addr: &str, token: &str) -> Result<Self, Error> {
        Self::connect_with(addr, &Secret::new(token), ConnectOptions::default()).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        addr: &str,
        token: &Secret,
        options: ConnectOptions,
    ) -> Result<Self, Error> {
        let endpoint = endpoint(addr, &options)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| error::transport(addr, &e))?;
        Self::from_channel(channel, addr, token)
    }

    /// Wraps an existing channel (e.g. an in-memory one in tests).
    pub fn from_channel(channel: Channel, addr: &str, token: &Secret) -> Result<Self, Error> {
        Ok(Self {
            channel,
            auth: Auth::new(token)?,
            addr: addr.to_string(),
        })
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn map_err(&self, status: tonic::Status) -> Error {
        Error::from_status(status, &self.addr)
    }

    fn intercepted(&self) -> AuthChannel {
        InterceptedService::new(self.channel.clone(), self.auth.clone())
    }

    pub(crate) fn llms(&self) -> proto::ai_llm_service_client::AiLlmServiceClient<AuthChannel> {
        proto::ai_llm_service_client::AiLlmServiceClient::new(self.intercepted())
    }

    pub(crate) fn workspaces(
        &self,
    ) -> proto::workspace_service_client::WorkspaceServiceClient<AuthChannel> {
        proto::workspace_service_client::WorkspaceServiceClient::new(self.intercepted())
    }

    pub(crate) fn repositories(
        &self,
    ) -> proto::repository_service_client::RepositoryServiceClient<AuthChannel> {
        proto::repository_service_client::RepositoryServiceClient::new(self.intercepted())
    }

    pub(crate) fn api_keys(
        &self,
    ) -> proto::api_key_service_client::ApiKeyServiceClient<AuthChannel> {
        proto::api_key_service_client::ApiKeyServiceClient::new(self.intercepted())
    }

    pub(crate) fn policies(
        &self,
    ) -> proto::policy_service_client::PolicyServiceClient<AuthChannel> {
        proto::policy_service_client::PolicyServiceClient::new(self.intercepted())
    }

    pub(crate) fn tokens(
        &self,
    ) -> proto::admin_token_service_client::AdminTokenServiceClient<AuthChannel> {
        proto::admin_token_service_client::AdminTokenServiceClient::new(self.intercepted())
    }

    pub(crate) fn stats(&self) -> proto::stats_service_client::StatsServiceClient<AuthChannel> {
        proto::stats_service_client::StatsServiceClient::new(self.intercepted())
    }
}

fn endpoint(addr: &str, options: &ConnectOptions) -> Result<Endpoint, Error> {
    let bad = |why: String| Error::Config(format!("invalid control plane address {addr:?}: {why}"));
    if !(addr.starts_with("http://") || addr.starts_with("https://")) {
        return Err(bad("it must start with http:// or https://".to_string()));
    }
    let mut endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(options.connect_timeout);
    if let Some(timeout) = options.request_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    if addr.starts_with("https://") {
        let tls = match &options.ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_enabled_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn auth_adds_bearer_header_and_redacts_debug() -> Result<(), Box<dyn std::error::Error>> {
        let mut auth = Auth::new(&Secret::new("tgadm_abc"))?;
        assert_eq!(format!("{auth:?}"), "Auth(Bearer ***)");
        let req = auth.call(tonic::Request::new(()))?;
        let value = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        assert_eq!(value, Some("Bearer tgadm_abc"));
        Ok(())
    }

    #[test]
    fn token_with_newline_is_a_config_error() {
        assert!(matches!(
            Auth::new(&Secret::new("a\nb")),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn address_must_have_a_scheme() {
        let opts = ConnectOptions::default();
        assert!(matches!(
            endpoint("127.0.0.1:7070", &opts),
            Err(Error::Config(_))
        ));
        assert!(endpoint("http://127.0.0.1:7070", &opts).is_ok());
        assert!(endpoint("https://cp.example.com", &opts).is_ok());
    }
}

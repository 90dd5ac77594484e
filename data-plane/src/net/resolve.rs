//! DNS for provider calls: resolve with tokio, then drop the addresses provider traffic must
//! not reach, so a host name cannot be used to reach a metadata service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
// `tower::Service` is `tower_service::Service` re-exported (the trait hyper-util's connector
// takes).
use tower::Service;

use super::is_forbidden;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolver whose answers never include forbidden addresses (unless allowed).
#[derive(Clone, Debug)]
pub struct FilteringResolver {
    allow_link_local: bool,
}

/// Every address a host resolved to was forbidden.
#[derive(Debug, thiserror::Error)]
#[error("endpoint host {host} resolves only to link-local/metadata addresses; refused")]
pub struct ResolveRefused {
    /// The host name that was refused.
    pub host: String,
}

impl FilteringResolver {
    /// A resolver that keeps link-local/metadata answers only when `allow_link_local`.
    pub fn new(allow_link_local: bool) -> Self {
        Self { allow_link_local }
    }

    /// The addresses `host` resolves to, without the forbidden ones; an error when only
    /// forbidden ones were found.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        // Port 0: the connector sets the URI's port on each address.
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if self.allow_link_local {
            return Ok(all);
        }
        let allowed: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| !is_forbidden(a.ip()))
            .collect();
        if allowed.is_empty() && !all.is_empty() {
            return Err(ResolveRefused {
                host: host.to_owned(),
            }
            .into());
        }
        if allowed.len() < all.len() {
            tracing::debug!(
                host,
                "dropped link-local/metadata addresses from DNS answer"
            );
        }
        Ok(allowed)
    }
}

impl Service<Name> for FilteringResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.resolve(name.as_str()).await?.into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_names_that_resolve_only_to_forbidden_addresses() {
        // Numeric names resolve locally (no DNS traffic) through the same code path.
        let strict = FilteringResolver::new(false);
        for host in ["169.254.169.254", "fe80::1", "fd00:ec2::254"] {
            let err = strict.resolve(host).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "endpoint host {host} resolves only to link-local/metadata addresses; refused"
                )
            );
        }
        let addrs = strict.resolve("127.0.0.1").await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:0".parse().unwrap()]);

        let lenient = FilteringResolver::new(true);
        assert_eq!(lenient.resolve("169.254.169.254").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn works_as_a_tower_service() {
        let mut resolver = FilteringResolver::new(false);
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = resolver.call(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        let name: Name = "169.254.169.254".parse().unwrap();
        assert!(resolver.call(name).await.is_err());
    }
}

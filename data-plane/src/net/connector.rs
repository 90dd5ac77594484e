//! The TCP connector of provider calls: hyper-util's `HttpConnector` over the
//! [`FilteringResolver`], plus a check of IP-literal hosts, which `HttpConnector` connects to
//! without asking the resolver; through an [`EgressProxy`]'s CONNECT tunnel when one is set
//! for the destination (the proxy then resolves the destination's name).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

use super::egress::{TunnelFailed, open_tunnel, with_port};
use super::{EgressProxy, FilteringResolver, host_literal, is_forbidden, is_metadata_name};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An IP-literal endpoint host that is link-local or a metadata address.
#[derive(Debug, thiserror::Error)]
#[error("endpoint host {host} is a link-local or cloud metadata address; refused")]
pub struct ForbiddenHost {
    /// The host as the URI spells it.
    pub host: String,
}

/// Connects only to addresses [`is_forbidden`] allows (unless `allow_link_local`).
#[derive(Clone, Debug)]
pub struct GuardedConnector {
    inner: HttpConnector<FilteringResolver>,
    allow_link_local: bool,
    proxy: Option<EgressProxy>,
    /// Bounds a tunnel's opening (TCP connect to the proxy and its CONNECT answer).
    connect_timeout: Option<Duration>,
}

impl GuardedConnector {
    /// A connector for `http` and `https` URIs (TLS is layered on top by the caller), through
    /// `proxy` where it applies.
    pub fn new(allow_link_local: bool, proxy: Option<EgressProxy>) -> Self {
        let mut inner = HttpConnector::new_with_resolver(FilteringResolver::new(allow_link_local));
        inner.enforce_http(false);
        Self {
            inner,
            allow_link_local,
            proxy,
            connect_timeout: None,
        }
    }

    /// Longest wait for a connection: the TCP connect, or through the egress proxy, the
    /// tunnel's opening (a proxy that cannot reach the provider may hold its answer for a
    /// minute).
    pub fn set_connect_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_connect_timeout(timeout);
        self.connect_timeout = timeout;
    }

    /// The wrapped connector, to set timeouts and socket options.
    pub fn http_mut(&mut self) -> &mut HttpConnector<FilteringResolver> {
        &mut self.inner
    }

    fn refused(&self, uri: &http::Uri) -> Option<ForbiddenHost> {
        let host = uri.host()?;
        let forbidden = host_literal(host).is_some_and(is_forbidden) || is_metadata_name(host);
        (!self.allow_link_local && forbidden).then(|| ForbiddenHost {
            host: host.to_owned(),
        })
    }
}

impl Service<http::Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        if let Some(refused) = self.refused(&uri) {
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        if let Some(via) = self.proxy.as_ref().and_then(|p| p.intercept(&uri)) {
            let proxy = via.uri().clone();
            let auth = via.basic_auth().cloned();
            let dst = with_port(uri);
            let connecting = self.inner.call(proxy.clone());
            let limit = self.connect_timeout;
            return Box::pin(async move {
                let opening = async {
                    let mut io = connecting
                        .await
                        .map_err(|e| TunnelFailed::connect(&proxy, &dst, e))?
                        .into_inner();
                    open_tunnel(&mut io, &proxy, &dst, auth.as_ref()).await?;
                    Ok::<_, TunnelFailed>(TokioIo::new(io))
                };
                let opened = match limit {
                    Some(limit) => tokio::time::timeout(limit, opening)
                        .await
                        .unwrap_or_else(|_| Err(TunnelFailed::timeout(&proxy, &dst, limit))),
                    None => opening.await,
                };
                opened.map_err(Into::into)
            });
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_forbidden_literals_and_names() {
        let mut strict = GuardedConnector::new(false, None);
        for uri in [
            "http://169.254.169.254/latest",
            "http://[fe80::1]:8080/v1",
            "http://[::ffff:169.254.169.254]/",
            "https://100.100.100.200/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://Instance-Data./latest/",
            // Not an IP literal to `HttpConnector`: goes through the filtering resolver.
            "http://2852039166/",
        ] {
            let err = strict.call(uri.parse().expect("uri")).await.expect_err(uri);
            let mut text = err.to_string();
            let mut source = err.source();
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            assert!(text.contains("refused"), "{uri}: {text}");
        }
        let lenient = GuardedConnector::new(true, None);
        assert!(
            lenient
                .refused(&"http://169.254.169.254/".parse().expect("uri"))
                .is_none()
        );
    }
}

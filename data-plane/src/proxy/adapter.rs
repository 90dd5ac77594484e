//! `Provider`: sends a routed call to its first target, failing over to the next target only
//! when a connection could not be opened (nothing reached the provider), and meters it.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::Service;

use super::{ChatCall, HttpResponse, Shared, anthropic, bedrock, google, openai};
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::snapshot::{Provider, Target};
use crate::usage::{Meter, UsageKey};

/// The innermost service.
#[derive(Debug, Clone)]
pub struct ProviderService {
    shared: Arc<Shared>,
}

impl ProviderService {
    /// Calls providers with `shared`'s client and meters into its aggregator.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Service<ChatCall> for ProviderService {
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ChatCall) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut last = ProxyError::UnknownModel(call.fields.model.clone());
            for target in &call.targets {
                match call_target(&shared, &call, target).await {
                    Err(e) if e.is_connect_failure() => {
                        tracing::warn!(connection = %target.connection.id, error = %e, "provider unreachable; trying the next target");
                        last = e;
                    }
                    other => return other,
                }
            }
            Err(last)
        })
    }
}

/// The credential sent upstream: the stored secret, or the app's own key (passthrough).
/// AWS has no passthrough: a SigV4 signature needs an access key id and a secret access key.
pub(super) fn credential<'a>(
    call: &'a ChatCall,
    target: &'a Target,
) -> Result<&'a Secret, ProxyError> {
    if target.connection.passthrough && target.connection.provider == Provider::Bedrock {
        return Err(ProxyError::InvalidRequest {
            message: bedrock::NO_PASSTHROUGH.into(),
            param: None,
        });
    }
    if target.connection.passthrough {
        call.caller
            .provider_key
            .as_ref()
            .ok_or(ProxyError::MissingProviderKey)
    } else {
        Ok(&target.connection.secret)
    }
}

async fn call_target(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
) -> Result<HttpResponse, ProxyError> {
    let credential = credential(call, target)?;
    let key = UsageKey {
        connection_id: target.connection.id.clone(),
        repository_id: call.caller.key.repository_id.clone(),
        key_id: call.caller.key.id.clone(),
        model: target.upstream_model.to_string(),
    };
    let meter = Meter::new(shared.aggregator.clone(), shared.metrics.clone(), key);
    let started = Instant::now();
    let result = match target.connection.provider {
        Provider::OpenAi => openai::call(shared, call, target, credential, meter).await,
        Provider::Anthropic => anthropic::call(shared, call, target, credential, meter).await,
        Provider::Google => google::call(shared, call, target, credential, meter).await,
        Provider::Bedrock => bedrock::call(shared, call, target, credential, meter).await,
    };
    shared.metrics.upstream(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        shared.metrics.upstream_error(match e {
            ProxyError::UpstreamConnect(_) => "connect",
            ProxyError::UpstreamTimeout => "timeout",
            _ => "bad_answer",
        });
    }
    result
}

/// A header value for a credential; the value is marked sensitive so hyper's HTTP/2 HPACK
/// never indexes it.
pub(super) fn secret_header(
    prefix: &str,
    secret: &Secret,
) -> Result<http::HeaderValue, ProxyError> {
    let mut v =
        http::HeaderValue::try_from(format!("{prefix}{}", secret.expose())).map_err(|_| {
            ProxyError::InvalidRequest {
                message: "the provider key contains invalid characters".into(),
                param: None,
            }
        })?;
    v.set_sensitive(true);
    Ok(v)
}

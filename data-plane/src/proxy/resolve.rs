//! `ResolveModel`: reads the body (bounded: 413 above the limit, 408 when it does not arrive
//! in time), takes only what routing
//! needs from it (`model`, `stream`, `stream_options.include_usage`) and resolves the model
//! in the caller's repository (404 naming it) to its candidates and retry budget.

use std::borrow::Cow;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Body;
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::{Layer, Service, ServiceExt};

use super::request_body::parse_chat;
use super::respond::ModelLabel;
use super::{Caller, ChatCall, HttpResponse};
use crate::body::{BoxError, Gathered};
use crate::error::ProxyError;
use crate::snapshot::{Targets, Unroutable};

/// Layer of [`ResolveModelService`].
#[derive(Debug, Clone, Copy)]
pub struct ResolveModelLayer {
    limits: BodyLimits,
}

/// How much of a request body is read, and for how long.
#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    max_bytes: usize,
    read_timeout: Duration,
}

impl ResolveModelLayer {
    /// Reads bodies up to `max_body_bytes`, within `read_timeout` of the request head.
    pub fn new(max_body_bytes: usize, read_timeout: Duration) -> Self {
        Self {
            limits: BodyLimits {
                max_bytes: max_body_bytes,
                read_timeout,
            },
        }
    }
}

impl<S> Layer<S> for ResolveModelLayer {
    type Service = ResolveModelService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ResolveModelService {
            inner,
            limits: self.limits,
        }
    }
}

/// See [`ResolveModelLayer`].
#[derive(Debug, Clone)]
pub struct ResolveModelService<S> {
    inner: S,
    limits: BodyLimits,
}

impl<S, B> Service<http::Request<B>> for ResolveModelService<S>
where
    S: Service<ChatCall, Response = HttpResponse, Error = ProxyError> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.handle(req)
    }
}

impl<S> ResolveModelService<S>
where
    S: Service<ChatCall, Response = HttpResponse, Error = ProxyError> + Clone + Send + 'static,
    S::Future: Send,
{
    /// [`Service::call`] through a shared reference: the service is stateless (always
    /// ready), so the router calls it in place instead of cloning it first.
    pub fn handle<B>(
        &self,
        req: http::Request<B>,
    ) -> BoxFuture<'static, Result<HttpResponse, ProxyError>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let inner = self.inner.clone();
        let limits = self.limits;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let caller = parts
                .extensions
                .remove::<Caller>()
                .ok_or(ProxyError::MissingKey)?;
            let body = read_limited(&parts.headers, body, limits).await?;
            let fields = parse_chat(&body)?;
            let targets = resolve_targets(&caller, &fields.model, &body)?;
            if let Some(label) = parts.extensions.get::<ModelLabel>() {
                let _ = label.0.set(fields.model.clone());
            }
            inner
                .oneshot(ChatCall {
                    accept: parts.headers.get(http::header::ACCEPT).cloned(),
                    body,
                    fields,
                    targets,
                    caller,
                })
                .await
        })
    }
}

/// The targets of `model` for this caller (its repository, its credential mode, and for an
/// experiment route who it is: see [`experiment_unit`]), in the order they are tried, with
/// the retry budget. Never empty.
pub(super) fn resolve_targets(
    caller: &Caller,
    model: &str,
    body: &[u8],
) -> Result<Targets, ProxyError> {
    let repository = caller
        .repository
        .as_ref()
        .ok_or_else(|| ProxyError::UnknownModel(model.to_owned()))?;
    let unit = || experiment_unit(body, &caller.key.id);
    match repository
        .models
        .resolve_for(model, caller.provider_key.is_some(), unit)
    {
        Ok(targets) if !targets.is_empty() => Ok(targets),
        Ok(_) | Err(Unroutable::Unknown) => Err(ProxyError::UnknownModel(model.to_owned())),
        Err(Unroutable::Ambiguous { reason, choices }) => Err(ProxyError::AmbiguousModel {
            model: model.to_owned(),
            reason,
            choices,
        }),
    }
}

/// Who an experiment route assigns a target to: the end user the app names in the OpenAI
/// `user` field (a string, chat and embeddings alike), else the API key. Read only for
/// experiment routes, with a second parse of the body.
fn experiment_unit(body: &[u8], key_id: &str) -> String {
    #[derive(Deserialize)]
    struct User<'a> {
        #[serde(borrow, default)]
        user: Option<Cow<'a, str>>,
    }
    match serde_json::from_slice::<User<'_>>(body) {
        Ok(User { user: Some(user) }) if !user.is_empty() => format!("user:{user}"),
        _ => format!("key:{key_id}"),
    }
}

/// Reads the whole body, refusing early on a declared length above the limit. A body that
/// has already arrived (the usual case: it came with the head) is read without arming the
/// timer: `timeout` polls the read first.
async fn read_limited<B>(
    headers: &http::HeaderMap,
    body: B,
    limits: BodyLimits,
) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    tokio::time::timeout(limits.read_timeout, gather(headers, body, limits.max_bytes))
        .await
        .map_err(|_| ProxyError::BodyTimeout {
            after: limits.read_timeout,
        })?
}

async fn gather<B>(headers: &http::HeaderMap, body: B, limit: usize) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let mut body = std::pin::pin!(body);
    let mut gathered = Gathered::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProxyError::ReadBody(e.into().to_string()))?;
        if let Ok(data) = frame.into_data()
            && !gathered.push(data, limit)
        {
            return Err(ProxyError::BodyTooLarge { limit });
        }
    }
    Ok(gathered.into_bytes())
}

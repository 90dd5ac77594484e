//! `POST /v1/embeddings`, per provider type:
//!
//! * OPENAI / OTHER: the body goes to `{endpoint}/embeddings` as received with only `model`
//!   rewritten; `usage.prompt_tokens` is metered.
//! * GOOGLE: translated to Gemini `embedContent` (one input) or `batchEmbedContents` (several;
//!   batches of at most 100), translation in `crate::providers::google`.
//! * AWS: Bedrock `InvokeModel` (`/model/{id}/invoke`, SigV4-signed per call) for Titan (one
//!   call per input) and Cohere Embed v3 (batches of 96), translation in
//!   `crate::providers::bedrock`.
//! * ANTHROPIC: no embeddings API, a 400.
//!
//! Targets are tried with the chat path's retries and fallbacks (`adapter::attempt_targets`).
//! A translated request may take several upstream calls per attempt: they run at most
//! [`CONCURRENCY`] at a time, the first failure ends the attempt (its error translated as for
//! chat, so a 429 or 5xx is retried as a whole), and the attempt is metered once, with the
//! token counts summed.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use http_body_util::Full;
use tower::Service;

use super::adapter::{
    RetryPolicy, attempt_targets, credential, finish_attempt, meter, secret_header,
    with_retry_hints,
};
use super::bedrock::{authorized_post, aws_auth, own_identity};
use super::completions::openai_urls;
use super::openai::forward;
use super::sse::OpenAiUsageTap;
use super::upstream::{collect_answer, collect_error, send};
use super::{ChatCall, HttpResponse, Shared};
use crate::body::json_response;
use crate::error::ProxyError;
use crate::providers::bedrock::{self, InvokeAnswer};
use crate::providers::embeddings::EmbedCall;
use crate::providers::google;
use crate::secret::Secret;
use crate::snapshot::{Provider, Target, Targets};
use crate::usage::Tokens;

/// Upstream calls of one translated request in flight at once.
const CONCURRENCY: usize = 4;

/// The innermost service of `POST /v1/embeddings`.
#[derive(Debug, Clone)]
pub struct EmbeddingsService {
    shared: Arc<Shared>,
}

impl EmbeddingsService {
    /// What this service shares with the rest of the worker's request path.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Service<ChatCall> for EmbeddingsService {
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut call: ChatCall) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            // A route mixing provider types uses the targets that can embed.
            call.targets = serving(std::mem::take(&mut call.targets), |p| {
                p != Provider::Anthropic
            })
            .map_err(|p| no_embeddings(&call.fields.model, p))?;
            let policy = RetryPolicy::new(call.targets.retries(), shared.retry_backoff);
            attempt_targets(&call.targets, policy, |target| {
                call_target(&shared, &call, target)
            })
            .await
        })
    }
}

/// The 400 of an embeddings request routed to a provider without embeddings.
fn no_embeddings(model: &str, provider: Provider) -> ProxyError {
    ProxyError::InvalidRequest {
        message: format!(
            "the model `{model}` is served by an {} connection, and Anthropic has no \
             embeddings API: use an embedding model of an OPENAI, OTHER, GOOGLE or AWS \
             connection",
            provider_name(provider)
        ),
        param: Some("model".into()),
    }
}

/// The connection type as the admin API names it.
pub(super) fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::OpenAi => "OPENAI/OTHER",
        Provider::Anthropic => "ANTHROPIC",
        Provider::Google => "GOOGLE",
        Provider::Bedrock => "AWS",
    }
}

/// `targets` without those whose provider type does not `serve` the endpoint (no copy when
/// all do); `Err` with the first target's provider type when none does.
pub(super) fn serving(
    targets: Targets,
    serves: impl Fn(Provider) -> bool,
) -> Result<Targets, Provider> {
    if targets.iter().all(|t| serves(t.connection.provider)) {
        return Ok(targets);
    }
    let kept: Vec<Target> = targets
        .iter()
        .filter(|t| serves(t.connection.provider))
        .cloned()
        .collect();
    if kept.is_empty() {
        let first = targets.first().map(|t| t.connection.provider);
        return Err(first.unwrap_or(Provider::Anthropic));
    }
    Ok(Targets::new(kept.into(), targets.retries()))
}

/// One embeddings request to one target: the per-target call of the route loop. Requests a
/// provider cannot take are refused before anything is sent or metered.
pub(super) async fn call_target(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
) -> Result<HttpResponse, ProxyError> {
    let provider = target.connection.provider;
    if provider == Provider::Anthropic {
        return Err(no_embeddings(&call.fields.model, provider));
    }
    let credential = credential(call, target)?;
    let started = Instant::now();
    let result = match provider {
        Provider::OpenAi => {
            let url = openai_urls(target)?.embeddings.clone();
            let meter = meter(shared, call, target);
            forward(
                shared,
                call,
                target,
                credential,
                meter,
                (url, false),
                OpenAiUsageTap::new,
            )
            .await
        }
        Provider::Google => {
            let plan = google::translate_embed_request(&call.body, &target.upstream_model)?;
            gemini(shared, call, target, credential, &plan).await
        }
        Provider::Bedrock => {
            let plan = bedrock::translate_embed_request(&call.body, &target.upstream_model)?;
            invoke(shared, call, target, credential, &plan).await
        }
        Provider::Anthropic => Err(no_embeddings(&call.fields.model, provider)),
    };
    finish_attempt(shared, started, target, result)
}

/// A successful upstream answer, read whole.
struct Answer {
    headers: http::HeaderMap,
    body: Bytes,
}

/// Why an upstream call failed: the provider's error answer (translated by the caller) or
/// the gateway's own failure (no connection, timeout, unreadable answer).
enum Failure {
    Provider {
        status: http::StatusCode,
        headers: http::HeaderMap,
        body: Bytes,
    },
    Gateway(ProxyError),
}

impl From<ProxyError> for Failure {
    fn from(e: ProxyError) -> Self {
        Failure::Gateway(e)
    }
}

/// Sends `req` and reads the answer (an error answer scrubbed of the call's credentials).
async fn exchange(
    shared: &Shared,
    target: &Target,
    req: http::Request<Full<Bytes>>,
    secrets: &[Option<&Secret>],
) -> Result<Answer, Failure> {
    let first_byte = target.first_byte_timeout(shared.first_byte_timeout);
    let resp = send(&shared.client, req, first_byte).await?;
    let (parts, body) = resp.into_parts();
    if !parts.status.is_success() {
        let body = collect_error(body, shared.idle_timeout, secrets).await?;
        return Err(Failure::Provider {
            status: parts.status,
            headers: parts.headers,
            body,
        });
    }
    let body = collect_answer(body, shared.idle_timeout).await?;
    Ok(Answer {
        headers: parts.headers,
        body,
    })
}

/// Runs the calls [`CONCURRENCY`] at a time; answers in call order, or the first failure
/// (the calls still in flight are dropped, which cancels them).
/// The answers of one attempt's calls, or the first provider failure as the client's
/// OpenAI-shaped answer (`translate`: status, headers, body → status, body), retry hints kept.
async fn answers_of<Fut>(
    calls: Vec<Fut>,
    translate: impl FnOnce(u16, &http::HeaderMap, &[u8]) -> (u16, Vec<u8>),
) -> Result<Result<Vec<Answer>, HttpResponse>, ProxyError>
where
    Fut: Future<Output = Result<Answer, Failure>>,
{
    match run_all(calls).await {
        Ok(answers) => Ok(Ok(answers)),
        Err(Failure::Gateway(e)) => Err(e),
        Err(Failure::Provider {
            status,
            headers,
            body,
        }) => {
            let (status, body) = translate(status.as_u16(), &headers, &body);
            let status =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            Ok(Err(with_retry_hints(json_response(status, body), &headers)))
        }
    }
}

async fn run_all<Fut>(calls: Vec<Fut>) -> Result<Vec<Answer>, Failure>
where
    Fut: Future<Output = Result<Answer, Failure>>,
{
    futures::stream::iter(calls)
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

fn body_of(call: &EmbedCall) -> Full<Bytes> {
    Full::new(Bytes::copy_from_slice(&call.body))
}

fn upstream_url(base: &http::Uri, call: &EmbedCall) -> String {
    let base = base.to_string();
    format!("{}{}", base.trim_end_matches('/'), call.path)
}

/// GOOGLE: the Gemini calls of `plan`, the key in `x-goog-api-key`.
async fn gemini(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    plan: &google::EmbedPlan,
) -> Result<HttpResponse, ProxyError> {
    let mut meter = meter(shared, call, target);
    // The key goes in a header, never in the query string (URLs end up in logs).
    let key = secret_header("", credential)?;
    let secrets = call.secrets(target);
    // Collected first: the futures, not an iterator adapter, live across the await.
    let requests: Vec<_> = plan
        .calls
        .iter()
        .map(|c| gemini_call(shared, target, &key, &secrets, c))
        .collect();
    let answers = match answers_of(requests, |status, _, body| {
        google::translate_error(status, body)
    })
    .await?
    {
        Ok(answers) => answers,
        Err(provider_error) => return Ok(provider_error),
    };
    let bodies: Vec<&[u8]> = answers.iter().map(|a| &a.body[..]).collect();
    let (body, usage) = plan.translate_response(&bodies, &call.fields.model)?;
    meter.succeed();
    meter.set_tokens(Tokens::from(usage));
    Ok(json_response(http::StatusCode::OK, body))
}

/// One Gemini call.
async fn gemini_call(
    shared: &Shared,
    target: &Target,
    key: &http::HeaderValue,
    secrets: &[Option<&Secret>],
    c: &EmbedCall,
) -> Result<Answer, Failure> {
    let uri: http::Uri = upstream_url(&target.connection.chat_url, c)
        .parse()
        .map_err(|e| ProxyError::BadUpstream(format!("upstream URL: {e}")))?;
    let req = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-goog-api-key", key.clone())
        .body(body_of(c))
        .map_err(|e| ProxyError::BadUpstream(e.to_string()))?;
    exchange(shared, target, req, secrets).await
}

/// A response header as text.
fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// AWS: the InvokeModel calls of `plan`, each authorized right before it is sent.
async fn invoke(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
    credential: &Secret,
    plan: &bedrock::EmbedPlan,
) -> Result<HttpResponse, ProxyError> {
    let identity = own_identity(&shared.aws, &target.connection).await?;
    let auth = match &identity {
        Some(credentials) => credentials.auth(),
        None => aws_auth(&target.connection, credential),
    };
    let mut meter = meter(shared, call, target);
    let mut secrets = call.secrets(target).to_vec();
    if let Some(credentials) = &identity {
        secrets.extend(credentials.secrets());
    }
    // Collected first: the futures, not an iterator adapter, live across the await.
    let requests: Vec<_> = plan
        .calls
        .iter()
        .map(|c| invoke_call(shared, target, &auth, &secrets, c))
        .collect();
    let answers = match answers_of(requests, |status, headers, body| {
        bedrock::translate_error(status, header(headers, "x-amzn-errortype"), body)
    })
    .await?
    {
        Ok(answers) => answers,
        Err(provider_error) => return Ok(provider_error),
    };
    let invoked: Vec<InvokeAnswer<'_>> = answers
        .iter()
        .map(|a| InvokeAnswer {
            body: &a.body,
            input_token_count: header(&a.headers, "x-amzn-bedrock-input-token-count")
                .and_then(|v| v.trim().parse().ok()),
        })
        .collect();
    let (body, usage) = plan.translate_response(&invoked, &call.fields.model)?;
    meter.succeed();
    meter.set_tokens(Tokens::from(usage));
    Ok(json_response(http::StatusCode::OK, body))
}

/// One InvokeModel call, authorized right before it is sent.
async fn invoke_call(
    shared: &Shared,
    target: &Target,
    auth: &bedrock::AwsAuth<'_>,
    secrets: &[Option<&Secret>],
    c: &EmbedCall,
) -> Result<Answer, Failure> {
    let connection = &target.connection;
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    let req = authorized_post(
        &upstream_url(&connection.chat_url, c),
        &headers,
        Bytes::copy_from_slice(&c.body),
        &connection.region,
        auth,
    )?;
    exchange(shared, target, req, secrets).await
}

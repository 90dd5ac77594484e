//! `Provider`: sends a routed call to its targets with retries and fallbacks
//! ([`attempt_targets`]), meters every attempt, and names the target that answered in the
//! `x-tollgate-target` response header (`<routing_id>/<upstream model>`).
//!
//! # Retries and fallbacks
//!
//! A request makes at most `1 + retries` attempts in all, whatever targets they go to
//! (`retries`: its route's, else [`DEFAULT_RETRIES`](crate::snapshot::DEFAULT_RETRIES), for
//! bare and qualified names too).
//!
//! - **What is retried**: an attempt that failed before anything reached the client: the
//!   provider could not be reached (connect error or connect timeout), answered 429 or 5xx,
//!   or did not send its response head within the route target's `timeout_ms`. Everything
//!   else is final: a success (a 200 stream is committed as soon as its head arrives and is
//!   never retried, even if it breaks later), a 4xx other than 429, a malformed answer, and
//!   the data plane's own first-byte timeout (`--upstream-first-byte-timeout-ms`, minutes by
//!   default: retrying would multiply a wait that long; give route targets a `timeout_ms`
//!   to fail over sooner).
//! - **Where a retry goes**: to the next candidate in order, wrapping around (see
//!   `snapshot::model_index`): the next target of a `fallback` route, the target after the
//!   picked one of a `weighted` route, the next connection exposing a bare name, and the
//!   same target again for a `direct` route, a qualified name or a single connection.
//! - **When**: a retry to a candidate this request has not tried yet goes at once (failing
//!   over costs no wait); a retry to a candidate already tried first waits the backoff:
//!   `--retry-backoff-ms` (500 ms), doubled at each such wait, at most 16 times that (8 s),
//!   minus up to 20 % jitter.
//! - **Retry-After**: a retried answer's `retry-after-ms` or `Retry-After` (seconds or an
//!   HTTP date) is honoured when the retry goes back to the same candidate (the wait is the
//!   longer of it and the backoff) if it is within that cap; a longer one takes the candidate
//!   out of this request, and when no candidate is left the client gets that answer (a 429
//!   with its `Retry-After`).
//! - **Refused credentials**: a provider answering 401 or 403 to a managed connection has
//!   refused the gateway's own credentials (the app's key was fine: it got this far). The
//!   app gets a 502 `upstream_credentials_refused` naming the connection's routing id, with
//!   the provider's message (never its 401/403, which would read as "your key is wrong");
//!   the candidate is out of this request (retrying it cannot help) and the others are tried.
//!   Passthrough connections carry the app's own provider key: their 401/403 pass through.
//! - **The final answer**: when no attempt succeeded, the client gets the last answer a
//!   provider gave (its status and OpenAI-style error body, credentials scrubbed), else the
//!   gateway's error for the last attempt (502 unreachable, 504 timed out).
//!
//! Every attempt is metered on its own connection (a failed one as an error), so each
//! connection's usage shows the calls it received and the failures it had.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use http::HeaderName;
use rand::Rng;
use tower::Service;

use super::{ChatCall, HttpResponse, Shared, anthropic, bedrock, google, openai};
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::snapshot::{Provider, Target, Targets};
use crate::usage::{Meter, UsageKey};

/// Names the target that answered: `<routing_id>/<upstream model>`.
pub const TARGET_HEADER: HeaderName = HeaderName::from_static("x-tollgate-target");

/// The longest backoff (and honoured `Retry-After`), as a multiple of the first backoff.
const CAP_FACTOR: u32 = 16;

/// The innermost service.
#[derive(Debug, Clone)]
pub struct ProviderService {
    shared: Arc<Shared>,
}

impl ProviderService {
    /// What this service shares with the rest of the worker's request path.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

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
            let policy = RetryPolicy::new(call.targets.retries(), shared.retry_backoff);
            attempt_targets(&call.targets, policy, |target| {
                call_target(&shared, &call, target)
            })
            .await
        })
    }
}

/// How many extra attempts a request may make and how long it waits between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first, across all candidates.
    pub retries: u32,
    /// The first backoff; each later one doubles, up to [`RetryPolicy::cap`].
    pub backoff: Duration,
}

impl RetryPolicy {
    pub fn new(retries: u32, backoff: Duration) -> Self {
        Self { retries, backoff }
    }

    /// The longest backoff, and the longest `Retry-After` honoured.
    pub fn cap(&self) -> Duration {
        self.backoff.saturating_mul(CAP_FACTOR)
    }

    /// The nominal wait before the `step`-th backoff (0-based): base × 2^step, capped.
    pub fn nominal_backoff(&self, step: u32) -> Duration {
        let factor = 1u32.checked_shl(step.min(31)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.cap())
    }

    /// The wait before the `step`-th backoff: the nominal one minus up to 20 % jitter, so
    /// requests that failed together do not come back in lockstep.
    pub fn backoff(&self, step: u32) -> Duration {
        let nominal = self.nominal_backoff(step);
        nominal.mul_f64(rand::thread_rng().gen_range(0.8..=1.0))
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand this outcome to the client.
    Final,
    /// Nothing reached the client and another attempt may succeed; the provider's
    /// `Retry-After` hint, if any.
    Retry(Option<Duration>),
    /// This candidate cannot succeed in this request (its credentials were refused); the
    /// others may.
    FailOver,
}

/// Marks an answer whose target is out of the request (see [`Verdict::FailOver`]).
#[derive(Debug, Clone, Copy)]
struct LeaveOut;

/// Whether an attempt's outcome may be retried (see the module doc). `target`: where the
/// attempt went (its route timeout makes a timeout retryable).
pub fn judge(outcome: &Result<HttpResponse, ProxyError>, target: &Target) -> Verdict {
    match outcome {
        Ok(resp) if resp.extensions().get::<LeaveOut>().is_some() => Verdict::FailOver,
        Ok(resp) if is_retryable_status(resp.status()) => {
            Verdict::Retry(retry_after(resp.headers()))
        }
        Ok(_) => Verdict::Final,
        Err(ProxyError::UpstreamConnect(_)) => Verdict::Retry(None),
        // Its own failures are remembered for a few seconds: another target, not again.
        Err(ProxyError::AwsIdentity) => Verdict::FailOver,
        Err(ProxyError::UpstreamTimeout) if target.timeout.is_some() => Verdict::Retry(None),
        Err(_) => Verdict::Final,
    }
}

/// 429 and every 5xx.
pub fn is_retryable_status(status: http::StatusCode) -> bool {
    status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A provider's hint: `retry-after-ms` (OpenAI, Azure), else `Retry-After` in seconds or as
/// an HTTP date (RFC 9110 §10.2.3; a date already past means now).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] as seen at `now`.
fn retry_after_at(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| Some(headers.get(name)?.to_str().ok()?.trim());
    let number = |name: &str, scale: f64| {
        let v: f64 = text(name)?.parse().ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64((v * scale).min(1e9)))
    };
    let date = || {
        let at = httpdate::parse_http_date(text("retry-after")?).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    };
    number("retry-after-ms", 1e-3)
        .or_else(|| number("retry-after", 1.0))
        .or_else(date)
}

/// Sends one request to `targets` with retries and fallbacks (the rule is in the module
/// doc): `attempt` makes one call to one target and meters it; its `Ok` answers must have
/// their body buffered unless they are final (a success). The answer handed back names its
/// target in `x-tollgate-target`. Reusable by every endpoint; `targets` is never empty when
/// it comes from `ResolveModel`.
pub async fn attempt_targets<'a, F, Fut>(
    targets: &'a Targets,
    policy: RetryPolicy,
    mut attempt: F,
) -> Result<HttpResponse, ProxyError>
where
    F: FnMut(&'a Target) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ProxyError>>,
{
    let n = targets.len();
    // Bit `i`: the `i`-th candidate was tried / is out of this request (Retry-After too long).
    let bit = |i: usize| if i < 64 { 1u64 << i } else { 0 };
    let (mut tried, mut out) = (0u64, 0u64);
    let (mut position, mut attempts, mut waits) = (0usize, 0u32, 0u32);
    let mut answered: Option<(HttpResponse, &'a Target)> = None;
    let mut last_error = None;
    while let Some(target) = targets.get(position) {
        tried |= bit(position);
        attempts += 1;
        let outcome = attempt(target).await;
        let (hint, leave_out) = match judge(&outcome, target) {
            Verdict::Final => return labelled(outcome, target),
            Verdict::Retry(hint) => (hint, false),
            Verdict::FailOver => (None, true),
        };
        let failure = match outcome {
            Ok(resp) => {
                let status = resp.status().as_u16();
                answered = Some((resp, target));
                status.to_string()
            }
            Err(e) => {
                let kind = e.to_string();
                last_error = Some(e);
                kind
            }
        };
        if leave_out || hint.is_some_and(|h| h > policy.cap()) {
            out |= bit(position);
        }
        let next = (1..=n)
            .map(|k| position + k)
            .find(|&p| out & bit(p % n) == 0)
            .map(|p| p % n);
        let (Some(next), true) = (next, attempts <= policy.retries) else {
            tracing::warn!(connection = %target.connection.id, model = %target.upstream_model, attempts, failure = %failure, "provider attempt failed; no retry left");
            break;
        };
        let delay = if tried & bit(next) == 0 {
            Duration::ZERO
        } else {
            let backoff = policy.backoff(waits);
            waits += 1;
            match hint {
                Some(h) if next == position => backoff.max(h),
                _ => backoff,
            }
        };
        tracing::warn!(connection = %target.connection.id, model = %target.upstream_model, attempt = attempts, failure = %failure, delay_ms = delay.as_millis() as u64, "provider attempt failed; retrying");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        position = next;
    }
    match answered {
        Some((resp, target)) => labelled(Ok(resp), target),
        None => Err(last_error
            .unwrap_or_else(|| ProxyError::BadUpstream("the model has no upstream target".into()))),
    }
}

/// `outcome` with `x-tollgate-target` naming `target` when it is a provider's answer.
fn labelled(
    outcome: Result<HttpResponse, ProxyError>,
    target: &Target,
) -> Result<HttpResponse, ProxyError> {
    outcome.map(|mut resp| {
        resp.headers_mut()
            .insert(TARGET_HEADER, target.label.clone());
        resp
    })
}

/// A provider error answer with the provider's retry hints kept (`Retry-After`,
/// `retry-after-ms`): the retry loop reads them, and a 429 handed to the client keeps them.
pub(super) fn with_retry_hints(mut resp: HttpResponse, upstream: &http::HeaderMap) -> HttpResponse {
    for name in [
        http::header::RETRY_AFTER,
        HeaderName::from_static("retry-after-ms"),
    ] {
        if let Some(v) = upstream.get(&name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp
}

/// The credential sent upstream: the stored secret, or the app's own key (passthrough; for
/// AWS, a Bedrock API key).
pub(super) fn credential<'a>(
    call: &'a ChatCall,
    target: &'a Target,
) -> Result<&'a Secret, ProxyError> {
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
    let meter = meter(shared, call, target);
    let started = meter.started();
    let result = match target.connection.provider {
        Provider::OpenAi => openai::call(shared, call, target, credential, meter).await,
        Provider::Anthropic => anthropic::call(shared, call, target, credential, meter).await,
        Provider::Google => google::call(shared, call, target, credential, meter).await,
        Provider::Bedrock => bedrock::call(shared, call, target, credential, meter).await,
    };
    finish_attempt(shared, started, target, result)
}

/// The meter of one call to `target` (recorded when dropped): shares the snapshot's ids.
pub(super) fn meter(shared: &Shared, call: &ChatCall, target: &Target) -> Meter {
    let key = UsageKey {
        connection_id: target.connection.id.clone(),
        repository_id: call.caller.key.repository_id.clone(),
        key_id: call.caller.key.id.clone(),
        model: target.upstream_model.clone(),
    };
    Meter::new(shared.recorder.clone(), key)
}

/// The end of one call to a target: its upstream latency and failure metrics, and the
/// outcome the retry loop judges, with a managed connection's refused credentials made a 502
/// (see the module doc).
pub(super) fn finish_attempt(
    shared: &Shared,
    started: Instant,
    target: &Target,
    result: Result<HttpResponse, ProxyError>,
) -> Result<HttpResponse, ProxyError> {
    let refused = |resp: &HttpResponse| {
        !target.connection.passthrough
            && matches!(
                resp.status(),
                http::StatusCode::UNAUTHORIZED | http::StatusCode::FORBIDDEN
            )
    };
    match result {
        Ok(resp) if refused(&resp) => {
            record_upstream(shared, started, &Ok(()));
            shared.recorder.upstream_error("credentials");
            Ok(refused_credentials(&resp, target))
        }
        result => {
            record_upstream(shared, started, &result);
            result
        }
    }
}

/// The 502 an app gets when the provider refused a managed connection's credentials: the
/// provider's status, error code and message (already scrubbed of credentials) inside.
fn refused_credentials(resp: &HttpResponse, target: &Target) -> HttpResponse {
    let provider = match resp.body() {
        crate::body::RespBody::Full(Some(bytes)) => {
            serde_json::from_slice::<serde_json::Value>(bytes).ok()
        }
        _ => None,
    };
    let field = |name: &str| {
        provider
            .as_ref()
            .and_then(|v| v["error"][name].as_str())
            .map(|s| s.chars().take(openai::MAX_ERROR_TEXT).collect::<String>())
    };
    let mut said = resp.status().as_u16().to_string();
    if let Some(code) = field("code") {
        said = format!("{said} {code}");
    }
    if let Some(text) = field("message") {
        said = format!("{said}: {text}");
    }
    let message = format!(
        "the provider refused the credentials of the gateway's connection '{}' ({said}); the \
         gateway's operator must fix that connection's key",
        target.connection.routing_id
    );
    let body = serde_json::json!({"error": {
        "message": message,
        "type": "upstream_error",
        "param": null,
        "code": "upstream_credentials_refused",
    }});
    let mut out = crate::body::json_response(http::StatusCode::BAD_GATEWAY, body.to_string());
    out.extensions_mut().insert(LeaveOut);
    out
}

/// Upstream latency and failure metrics of one call to a target.
fn record_upstream<T>(shared: &Shared, started: Instant, result: &Result<T, ProxyError>) {
    shared.recorder.upstream(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        shared.recorder.upstream_error(match e {
            ProxyError::UpstreamConnect(_) => "connect",
            ProxyError::UpstreamTimeout => "timeout",
            _ => "bad_answer",
        });
    }
}

/// A header value for a credential (see [`Secret::header`]).
pub(super) fn secret_header(
    prefix: &'static str,
    secret: &Secret,
) -> Result<http::HeaderValue, ProxyError> {
    secret
        .header(prefix)
        .map_err(|_| ProxyError::InvalidRequest {
            message: "the provider key contains invalid characters".into(),
            param: None,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::time::Instant as TokioInstant;
    use tollgate_proto::sync as pb;

    use super::*;
    use crate::body::json_response;
    use crate::snapshot::build::tests::{conn, repo};
    use crate::snapshot::{ResourceSet, build_snapshot};

    const BASE: Duration = Duration::from_millis(500);

    /// Connections `a`, `b`, `c` exposing `m`, and `route` (if any) in repository `r`; the
    /// candidates of `model`.
    fn resolve(model: &str, route: Option<pb::Route>) -> Targets {
        let mut set = ResourceSet::default();
        let rejected = set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts: vec![
                conn("a", 1, "a", &["m"], "http://127.0.0.1:1/v1"),
                conn("b", 1, "b", &["m"], "http://127.0.0.1:2/v1"),
                conn("c", 1, "c", &["m"], "http://127.0.0.1:3/v1"),
                repo("r", &["a", "b", "c"], route.into_iter().collect()),
            ],
            removals: vec![],
        });
        assert!(rejected.is_empty(), "{rejected:?}");
        let snap = build_snapshot(&set).0;
        snap.repository("r")
            .expect("repo")
            .models
            .resolve(model, false)
            .expect("routable")
    }

    /// A route over `targets` ((target, timeout ms)) with `retries`.
    fn route(strategy: i32, targets: &[(&str, u32)], retries: Option<u32>) -> pb::Route {
        pb::Route {
            name: "smart".into(),
            strategy,
            targets: targets
                .iter()
                .map(|(t, timeout_ms)| pb::RouteTarget {
                    target: t.to_string(),
                    weight: 1,
                    timeout_ms: *timeout_ms,
                })
                .collect(),
            retries,
        }
    }

    const DIRECT: i32 = 1;
    const WEIGHTED: i32 = 2;
    const FALLBACK: i32 = 3;

    fn answer(status: u16, headers: &[(&'static str, &'static str)]) -> Outcome {
        let mut resp = json_response(
            http::StatusCode::from_u16(status).expect("status"),
            format!(r#"{{"error":{{"message":"upstream {status}"}}}}"#),
        );
        for (k, v) in headers {
            resp.headers_mut()
                .insert(*k, http::HeaderValue::from_static(v));
        }
        Ok(resp)
    }

    fn refused() -> Outcome {
        Err(ProxyError::UpstreamConnect("connection refused".into()))
    }

    type Outcome = Result<HttpResponse, ProxyError>;

    /// What a run did: (target label, ms since the start) per attempt, and the outcome as
    /// (status, x-tollgate-target) or the error's status.
    #[derive(Debug, PartialEq)]
    struct Run {
        calls: Vec<(String, u64)>,
        status: u16,
        target: Option<String>,
    }

    /// Runs the loop over `targets` answering with `script` in order (200 once it is empty).
    async fn run(targets: &Targets, policy: RetryPolicy, script: Vec<Outcome>) -> Run {
        let mut script = VecDeque::from(script);
        let mut calls = Vec::new();
        let started = TokioInstant::now();
        let result = attempt_targets(targets, policy, |t| {
            calls.push((
                t.label.to_str().expect("label").to_owned(),
                started.elapsed().as_millis() as u64,
            ));
            let outcome = script.pop_front().unwrap_or_else(|| answer(200, &[]));
            async move { outcome }
        })
        .await;
        let (status, target) = match result {
            Ok(r) => (
                r.status().as_u16(),
                r.headers()
                    .get(TARGET_HEADER)
                    .map(|v| v.to_str().expect("ascii").to_owned()),
            ),
            Err(e) => (e.status().as_u16(), None),
        };
        Run {
            calls,
            status,
            target,
        }
    }

    /// Labels of the calls.
    fn labels(r: &Run) -> Vec<&str> {
        r.calls.iter().map(|(l, _)| l.as_str()).collect()
    }

    /// Waits between calls, in ms.
    fn gaps(r: &Run) -> Vec<u64> {
        r.calls.windows(2).map(|w| w[1].1 - w[0].1).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_fail_over_and_reach_the_app_as_a_502() {
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0)], None)),
        );
        let a = targets.first().expect("target");
        let refusal = || Ok(refused_credentials(&answer(401, &[]).expect("answer"), a));
        let resp = refusal().expect("502");
        assert_eq!(resp.status(), 502);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        let err: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(err["error"]["code"], "upstream_credentials_refused");
        assert_eq!(err["error"]["type"], "upstream_error");
        assert_eq!(
            err["error"]["message"],
            "the provider refused the credentials of the gateway's connection 'a' (401: \
             upstream 401); the gateway's operator must fix that connection's key"
        );
        let policy = RetryPolicy::new(targets.retries(), BASE);
        // The next candidate at once; the refused one is not tried again.
        let r = run(&targets, policy, vec![refusal()]).await;
        assert_eq!(labels(&r), ["a/m", "b/m"]);
        assert_eq!((r.status, r.target.as_deref()), (200, Some("b/m")));
        assert_eq!(gaps(&r), [0]);
        let r = run(&targets, policy, vec![refusal(), refusal()]).await;
        assert_eq!(labels(&r), ["a/m", "b/m"]);
        assert_eq!(r.status, 502, "no candidate left: the app gets the 502");
        // A single target: the 502 at once, no backoff and retry of the same target.
        let targets = resolve("a/m", None);
        let r = run(&targets, policy, vec![refusal()]).await;
        assert_eq!((labels(&r), r.status), (vec!["a/m"], 502));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_a_little_jitter() {
        let p = RetryPolicy::new(10, BASE);
        let nominal: Vec<u64> = (0..7)
            .map(|s| p.nominal_backoff(s).as_millis() as u64)
            .collect();
        assert_eq!(nominal, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(p.cap(), Duration::from_secs(8));
        assert_eq!(p.nominal_backoff(u32::MAX), Duration::from_secs(8));
        for step in 0..6 {
            for _ in 0..50 {
                let (d, n) = (p.backoff(step), p.nominal_backoff(step));
                assert!(d <= n && d >= n.mul_f64(0.8), "{step}: {d:?} of {n:?}");
            }
        }
        // The base scales everything (tests use a small one).
        let fast = RetryPolicy::new(2, Duration::from_millis(20));
        assert_eq!(
            (fast.nominal_backoff(1), fast.cap()),
            (Duration::from_millis(40), Duration::from_millis(320))
        );
    }

    #[test]
    fn what_is_retried() {
        let plain = resolve("a/m", None);
        let plain = plain.first().expect("target");
        let timed = resolve("smart", Some(route(DIRECT, &[("a/m", 300)], None)));
        let timed = timed.first().expect("target");
        assert_eq!(timed.timeout, Some(Duration::from_millis(300)));
        for status in [429, 500, 502, 503, 504, 529] {
            assert_eq!(
                judge(&answer(status, &[]), plain),
                Verdict::Retry(None),
                "{status}"
            );
        }
        for status in [200, 400, 401, 403, 404, 413, 422] {
            assert_eq!(
                judge(&answer(status, &[]), plain),
                Verdict::Final,
                "{status}"
            );
        }
        assert_eq!(judge(&refused(), plain), Verdict::Retry(None));
        assert_eq!(
            judge(&Err(ProxyError::AwsIdentity), plain),
            Verdict::FailOver
        );
        // A timeout is retried only when the route bounds that target's wait.
        assert_eq!(
            judge(&Err(ProxyError::UpstreamTimeout), timed),
            Verdict::Retry(None)
        );
        assert_eq!(
            judge(&Err(ProxyError::UpstreamTimeout), plain),
            Verdict::Final
        );
        for e in [
            ProxyError::BadUpstream("not json".into()),
            ProxyError::MissingProviderKey,
        ] {
            assert_eq!(judge(&Err(e), plain), Verdict::Final);
        }
        // Retry hints: retry-after-ms first, then Retry-After in seconds or as a date.
        let hint = |h: &[(&'static str, &'static str)]| judge(&answer(429, h), plain);
        assert_eq!(
            hint(&[("retry-after", "2")]),
            Verdict::Retry(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            hint(&[("retry-after", "2"), ("retry-after-ms", "150")]),
            Verdict::Retry(Some(Duration::from_millis(150)))
        );
        assert_eq!(
            hint(&[("retry-after", "0.5")]),
            Verdict::Retry(Some(Duration::from_millis(500)))
        );
        assert_eq!(
            hint(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            Verdict::Retry(Some(Duration::ZERO)),
            "a date already past"
        );
        for bad in ["-1", "soon", "NaN"] {
            let h = [("retry-after", bad)];
            assert_eq!(hint(&h), Verdict::Retry(None), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_target_is_retried_with_backoff() {
        let targets = resolve("a/m", None);
        assert_eq!(targets.retries(), crate::snapshot::DEFAULT_RETRIES);
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let r = run(&targets, policy, vec![answer(503, &[]), answer(503, &[])]).await;
        assert_eq!(labels(&r), ["a/m", "a/m", "a/m"]);
        assert_eq!((r.status, r.target.as_deref()), (200, Some("a/m")));
        let g = gaps(&r);
        assert!(
            (400..=500).contains(&g[0]) && (800..=1000).contains(&g[1]),
            "{g:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_budget() {
        for (retries, calls) in [(None, 3), (Some(0), 1), (Some(1), 2), (Some(4), 5)] {
            let targets = resolve("smart", Some(route(DIRECT, &[("b/m", 0)], retries)));
            let policy = RetryPolicy::new(targets.retries(), BASE);
            let failing = (0..10).map(|_| answer(500, &[])).collect();
            let r = run(&targets, policy, failing).await;
            assert_eq!(r.calls.len(), calls, "retries {retries:?}");
            // The last provider answer reaches the client, naming its target.
            assert_eq!((r.status, r.target.as_deref()), (500, Some("b/m")));
        }
        // Unreachable every time: the gateway's 502.
        let targets = resolve("a/m", None);
        let r = run(
            &targets,
            RetryPolicy::new(2, BASE),
            vec![refused(), refused(), refused()],
        )
        .await;
        assert_eq!((r.calls.len(), r.status, r.target), (3, 502, None));
    }

    #[tokio::test(start_paused = true)]
    async fn fallback_moves_on_at_once_then_backs_off_on_a_second_round() {
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0), ("c/m", 0)], None)),
        );
        let policy = RetryPolicy::new(targets.retries(), BASE);
        // Dead, failing, live: two fallbacks, no wait.
        let r = run(&targets, policy, vec![refused(), answer(503, &[])]).await;
        assert_eq!(labels(&r), ["a/m", "b/m", "c/m"]);
        assert_eq!(gaps(&r), [0, 0]);
        assert_eq!((r.status, r.target.as_deref()), (200, Some("c/m")));
        // Two targets, three retries: a b a b, waiting only before the second round.
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0)], Some(3))),
        );
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let failing = (0..4).map(|_| answer(502, &[])).collect();
        let r = run(&targets, policy, failing).await;
        assert_eq!(labels(&r), ["a/m", "b/m", "a/m", "b/m"]);
        let g = gaps(&r);
        assert_eq!(g[0], 0);
        assert!(
            (400..=500).contains(&g[1]) && (800..=1000).contains(&g[2]),
            "{g:?}"
        );
        assert_eq!((r.status, r.target.as_deref()), (502, Some("b/m")));
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_provider_answer_wins_over_a_gateway_error() {
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0)], Some(1))),
        );
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let r = run(&targets, policy, vec![answer(429, &[]), refused()]).await;
        assert_eq!(labels(&r), ["a/m", "b/m"]);
        assert_eq!((r.status, r.target.as_deref()), (429, Some("a/m")));
    }

    #[tokio::test(start_paused = true)]
    async fn final_answers_are_not_retried() {
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0)], Some(5))),
        );
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let r = run(&targets, policy, vec![answer(400, &[])]).await;
        assert_eq!(
            (r.calls.len(), r.status, r.target.as_deref()),
            (1, 400, Some("a/m"))
        );
        let r = run(
            &targets,
            policy,
            vec![Err(ProxyError::BadUpstream("garbage".into()))],
        )
        .await;
        assert_eq!((r.calls.len(), r.status, r.target), (1, 502, None));
        // Without a route timeout, the data plane's own first-byte timeout is final.
        let targets = resolve("a/m", None);
        let r = run(&targets, policy, vec![Err(ProxyError::UpstreamTimeout)]).await;
        assert_eq!((r.calls.len(), r.status), (1, 504));
    }

    #[tokio::test(start_paused = true)]
    async fn route_timeouts_are_retried_then_504() {
        let targets = resolve("smart", Some(route(DIRECT, &[("a/m", 200)], Some(1))));
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let timeouts = vec![
            Err(ProxyError::UpstreamTimeout),
            Err(ProxyError::UpstreamTimeout),
        ];
        let r = run(&targets, policy, timeouts).await;
        assert_eq!((r.calls.len(), r.status, r.target), (2, 504, None));
        // A timed-out target falls back to the next one at once.
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 200), ("b/m", 0)], None)),
        );
        let r = run(&targets, policy, vec![Err(ProxyError::UpstreamTimeout)]).await;
        assert_eq!(labels(&r), ["a/m", "b/m"]);
        assert_eq!((r.status, r.target.as_deref()), (200, Some("b/m")));
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hint = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (n, v) in pairs {
                h.insert(*n, http::HeaderValue::from_static(v));
            }
            retry_after_at(&h, now)
        };
        assert_eq!(hint(&[]), None);
        assert_eq!(
            hint(&[("retry-after-ms", "1500"), ("retry-after", "9")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            hint(&[("retry-after", " 3 ")]),
            Some(Duration::from_secs(3))
        );
        // 1,700,000,000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            hint(&[("retry-after", "Tue, 14 Nov 2023 22:13:27 GMT")]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            hint(&[("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(hint(&[("retry-after", "soon")]), None);
        assert_eq!(hint(&[("retry-after", "-1")]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_up_to_the_cap() {
        let targets = resolve("a/m", None);
        let policy = RetryPolicy::new(targets.retries(), BASE);
        // 3 s is within the 8 s cap: waited instead of the 500 ms backoff.
        let r = run(&targets, policy, vec![answer(429, &[("retry-after", "3")])]).await;
        assert_eq!((r.status, r.target.as_deref()), (200, Some("a/m")));
        assert_eq!(gaps(&r), [3000]);
        // 60 s is beyond it: the 429 goes to the client at once, its hint kept.
        let r = run(
            &targets,
            policy,
            vec![answer(429, &[("retry-after", "60")])],
        )
        .await;
        assert_eq!(
            (r.calls.len(), r.status, r.target.as_deref()),
            (1, 429, Some("a/m"))
        );
        // With a fallback, the limited target is left out and the others carry on.
        let targets = resolve(
            "smart",
            Some(route(FALLBACK, &[("a/m", 0), ("b/m", 0)], None)),
        );
        let r = run(
            &targets,
            policy,
            vec![answer(429, &[("retry-after", "60")]), answer(503, &[])],
        )
        .await;
        assert_eq!(labels(&r), ["a/m", "b/m", "b/m"]);
        assert_eq!((r.status, r.target.as_deref()), (200, Some("b/m")));
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_and_bare_names_go_round_their_targets() {
        let targets = resolve(
            "smart",
            Some(route(WEIGHTED, &[("a/m", 0), ("b/m", 0), ("c/m", 0)], None)),
        );
        let first = targets.first().expect("target").label.clone();
        let policy = RetryPolicy::new(targets.retries(), BASE);
        let r = run(&targets, policy, vec![answer(503, &[]), answer(503, &[])]).await;
        // The picked target, then the following ones in route order.
        let order: Vec<String> = targets
            .iter()
            .map(|t| t.label.to_str().expect("ascii").to_owned())
            .collect();
        assert_eq!(
            labels(&r),
            order.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(r.calls[0].0, first.to_str().expect("ascii"));
        assert_eq!(gaps(&r), [0, 0]);
        // A bare name fails over between the connections exposing it.
        let targets = resolve("m", None);
        let r = run(&targets, policy, vec![refused(), refused()]).await;
        assert_eq!(r.calls.len(), 3);
        let mut seen = labels(&r);
        seen.sort_unstable();
        assert_eq!(seen, ["a/m", "b/m", "c/m"]);
        assert_eq!(r.status, 200);
    }
}

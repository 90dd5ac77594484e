//! `Policy`: evaluates the policies of the caller's repository on a routed call (see
//! [`crate::policy`]). Each policy that fires is counted and queued as a violation event;
//! a BLOCK refuses the call (403 `policy_blocked`) before any provider sees it. A repository
//! without policies costs one emptiness check.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::{BoxFuture, ready};
use tollgate_proto::sync as pb;
use tower::{Layer, Service};

use super::route::Provider;
use super::{ChatCall, HttpResponse};
use super::{Shared, judge};
use crate::error::ProxyError;
use crate::policy::{Action, Candidate, Hit, Pending, Subject};
use crate::usage::{Counters, Recorder, Tokens, UsageKey};

/// Layer of [`PolicyService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyLayer;

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PolicyService { inner }
    }
}

/// See [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyService<S> {
    inner: S,
}

impl Service<ChatCall> for PolicyService<Provider> {
    type Response = HttpResponse;
    type Error = ProxyError;
    // The provider's own (boxed) future: a refusal is boxed too, so this layer adds nothing
    // to the size of the futures above it.
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ChatCall) -> Self::Future {
        let governed = call
            .caller
            .repository
            .as_ref()
            .is_some_and(|r| !r.policies.is_empty());
        if !governed {
            return self.inner.call(call);
        }
        self.enforce(call)
    }
}

impl PolicyService<Provider> {
    /// Evaluates the repository's policies on `call`, then refuses it or hands it on. Out of
    /// line: most repositories have no policies, and their path stays as short as before.
    #[inline(never)]
    fn enforce(&mut self, call: ChatCall) -> BoxFuture<'static, Result<HttpResponse, ProxyError>> {
        let Some(repo) = call.caller.repository.clone() else {
            return self.inner.call(call);
        };
        let candidates: Vec<Candidate<'_>> = call
            .targets
            .iter()
            .map(|t| Candidate {
                model: &t.upstream_model,
                qualified: t.label.to_str().unwrap_or(""),
            })
            .collect();
        let (hits, text) = repo.policies.evaluate_with_text(&Subject {
            model: &call.fields.model,
            candidates: &candidates,
            key_id: &call.caller.key.id,
            body: &call.body,
        });
        let shared = self.inner.shared().clone();
        let facts = Facts::of(&call);
        // A request a rule already blocks is not worth a judge's time.
        let judges = if hits.iter().any(|h| h.policy.action == Action::Block) {
            Vec::new()
        } else {
            repo.policies.judges(&hits)
        };
        // LOG and ALERT judges do not hold the request up: they decide in the background.
        let (blocking, background): (Vec<_>, Vec<_>) = judges
            .into_iter()
            .partition(|j| j.policy.action == Action::Block);
        // Read by the evaluation: a judge's policy reads the text, and fires if it cannot.
        let text: Arc<str> = if blocking.is_empty() && background.is_empty() {
            Arc::from("")
        } else {
            text.unwrap_or_default().into()
        };
        if !background.is_empty() {
            let (shared, facts, text) = (shared.clone(), facts.clone(), text.clone());
            tokio::spawn(async move {
                let (hits, tokens) = run_judges(&shared, &background, &text).await;
                record(&shared.recorder, &facts, &hits, tokens);
            });
        }
        if blocking.is_empty() {
            return match record(&shared.recorder, &facts, &hits, Tokens::default()) {
                Some(hit) => refuse(hit),
                None => self.inner.call(call),
            };
        }
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let (judged, tokens) = run_judges(&shared, &blocking, &text).await;
            let mut all = hits;
            all.extend(judged);
            match record(&shared.recorder, &facts, &all, tokens) {
                Some(hit) => Err(blocked_error(hit)),
                None => inner.call(call).await,
            }
        })
    }
}

fn blocked_error(hit: &Hit) -> ProxyError {
    let (policy, explanation) = (hit.policy.name.to_string(), hit.explanation.clone());
    match hit.retry_after {
        Some(retry_after) => ProxyError::PolicyRateLimited {
            policy,
            explanation,
            retry_after,
        },
        None => ProxyError::PolicyBlocked {
            policy,
            explanation,
        },
    }
}

fn refuse(hit: &Hit) -> BoxFuture<'static, Result<HttpResponse, ProxyError>> {
    Box::pin(ready(Err(blocked_error(hit))))
}

/// Asks each judge (all at once) about `text`: the policies they find violated, and the
/// tokens they spent. A judge that fails is logged and counted, and finds nothing, unless
/// its policy fails closed: then it finds a violation.
async fn run_judges(shared: &Shared, judges: &[Pending], text: &str) -> (Vec<Hit>, Tokens) {
    let asks = judges.iter().map(|j| async move {
        let Some(spec) = &j.policy.judge else {
            return (j, Err("no judge".to_string()));
        };
        let Some(connection) = &j.connection else {
            return (
                j,
                Err(format!(
                    "its configuration {} is not active in this environment",
                    spec.connection_id
                )),
            );
        };
        let verdict = judge::ask(shared, connection, &spec.model, &spec.content, text).await;
        (j, verdict)
    });
    let mut hits = Vec::new();
    let mut tokens = Tokens::default();
    for (j, verdict) in futures::future::join_all(asks).await {
        match verdict {
            Ok(v) => {
                tokens.input += v.tokens.input;
                tokens.output += v.tokens.output;
                if v.violation {
                    let mut explanation = format!("the policy's judge found: {}", v.reason);
                    if v.reason.is_empty() {
                        explanation = "the policy's judge found a violation".into();
                    }
                    hits.push(Hit {
                        policy: j.policy.clone(),
                        explanation,
                        retry_after: None,
                    });
                }
            }
            Err(e) => {
                shared.recorder.upstream_error("judge");
                let fail_closed = j.policy.judge.as_ref().is_some_and(|s| s.fail_closed);
                tracing::warn!(policy = %j.policy.name, error = %e, fail_closed,
                    "policy judge failed (fail_closed: a violation; else the request is let through)");
                // What failed stays in the log: the app and the event only learn that the
                // judge could not decide (its error may name the judge's configuration).
                if fail_closed {
                    hits.push(Hit {
                        policy: j.policy.clone(),
                        explanation: "the policy's judge could not decide, and the policy fails \
                        closed"
                            .into(),
                        retry_after: None,
                    });
                }
            }
        }
    }
    (hits, tokens)
}

/// What recording a request's violations needs, owned (judges may finish after the request
/// has moved on).
#[derive(Debug, Clone)]
struct Facts {
    model: String,
    workspace_id: Arc<str>,
    repository_id: String,
    key_id: Arc<str>,
    key_repository_id: Arc<str>,
    /// The connection the call was for (its first candidate): id, AiType number, model there.
    first: Option<(Arc<str>, i32, Arc<str>)>,
}

impl Facts {
    fn of(call: &ChatCall) -> Facts {
        let (repository_id, workspace_id) = match &call.caller.repository {
            Some(r) => (r.id.clone(), r.workspace_id.clone()),
            None => (String::new(), Arc::from("")),
        };
        Facts {
            model: call.fields.model.clone(),
            workspace_id,
            repository_id,
            key_id: call.caller.key.id.clone(),
            key_repository_id: call.caller.key.repository_id.clone(),
            first: call.targets.iter().next().map(|t| {
                (
                    t.connection.id.clone(),
                    t.connection.ai_type,
                    t.upstream_model.clone(),
                )
            }),
        }
    }
}

/// Counts and queues the violations of a request, and its judges' tokens; returns the
/// first BLOCK, if any (the call is then refused, and counted here as a call: it never
/// reaches a provider's meter).
fn record<'a>(recorder: &Recorder, f: &Facts, hits: &'a [Hit], judged: Tokens) -> Option<&'a Hit> {
    // A BLOCK on what the request holds (403) before one on the key's budget (429).
    let blocked = hits
        .iter()
        .filter(|h| h.policy.action == Action::Block)
        .min_by_key(|h| h.retry_after.is_some());
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    // A refused call counts as a call (it never reaches a provider's meter) and one block.
    let mut counters = Counters {
        api_calls: u64::from(blocked.is_some()),
        blocks: u64::from(blocked.is_some()),
        llm_tokens_in: judged.input,
        llm_tokens_out: judged.output,
        ..Default::default()
    };
    for hit in hits {
        let p = &hit.policy;
        counters.policy_violations += 1;
        counters.alerts += u64::from(p.action == Action::Alert);
        recorder.metrics.policy_violation(p.action.name());
        tracing::info!(
            policy = %p.name,
            action = p.action.name(),
            repository = %f.repository_id,
            key = %f.key_id,
            model = %f.model,
            explanation = %hit.explanation,
            "policy violation"
        );
        let queued = recorder.aggregator.add_violation(pb::Violation {
            id: format!("vio_{}", uuid::Uuid::new_v4().simple()),
            policy_id: p.id.to_string(),
            policy_name: p.name.to_string(),
            time_ms,
            explanation: hit.explanation.clone(),
            workspace_id: f.workspace_id.to_string(),
            repository_id: f.repository_id.clone(),
            api_key_id: f.key_id.to_string(),
            severity: p.severity,
            // Whether the call was refused (by this policy or another that fired with it).
            blocked: blocked.is_some(),
            action: p.action.number(),
            ai_llm_id: f
                .first
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            ai_type: f.first.as_ref().map_or(0, |t| t.1),
            model: f.model.clone(),
            // Filled in by the reporter (the data plane's instance id).
            host: String::new(),
        });
        if !queued {
            recorder.metrics.policy_event_suppressed();
        }
    }
    if let Some((connection_id, _, upstream_model)) = &f.first
        && counters != Counters::default()
    {
        let minute = time_ms.div_euclid(60_000);
        let key = UsageKey {
            connection_id: connection_id.clone(),
            repository_id: f.key_repository_id.clone(),
            key_id: f.key_id.clone(),
            model: upstream_model.clone(),
        };
        recorder
            .aggregator
            .add(recorder.shard, key, minute, counters);
    }
    blocked
}

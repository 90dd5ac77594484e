//! `Policy`: evaluates the policies of the caller's repository on a routed call (see
//! [`crate::policy`]). Each policy that fires is counted and queued as a violation event;
//! a BLOCK refuses the call (403 `policy_blocked`) before any provider sees it. A repository
//! without policies costs one emptiness check.

use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::{BoxFuture, ready};
use tollgate_proto::sync as pb;
use tower::{Layer, Service};

use super::route::Provider;
use super::{ChatCall, HttpResponse};
use crate::error::ProxyError;
use crate::policy::{Action, Hit};
use crate::usage::{Counters, Recorder, UsageKey};

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
        let hits = match &call.caller.repository {
            Some(repo) => repo.policies.evaluate(&call.fields.model, &call.body),
            None => Vec::new(),
        };
        if hits.is_empty() {
            return self.inner.call(call);
        }
        match record(&self.inner.shared().recorder, &call, &hits) {
            Some(hit) => Box::pin(ready(Err(ProxyError::PolicyBlocked {
                policy: hit.policy.name.to_string(),
                explanation: hit.explanation.clone(),
            }))),
            None => self.inner.call(call),
        }
    }
}

/// Counts and queues the violations of `call`; returns the first BLOCK, if any (the call
/// is then refused, and counted here as a call: it never reaches a provider's meter).
fn record<'a>(recorder: &Recorder, call: &ChatCall, hits: &'a [Hit]) -> Option<&'a Hit> {
    let blocked = hits.iter().find(|h| h.policy.action == Action::Block);
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    // Counted on the connection the call was for: its first candidate.
    let first = call.targets.iter().next();
    let (repository_id, workspace_id) = match &call.caller.repository {
        Some(r) => (r.id.as_str(), &*r.workspace_id),
        None => ("", ""),
    };
    // A refused call counts as a call (it never reaches a provider's meter) and one block.
    let mut counters = Counters {
        api_calls: u64::from(blocked.is_some()),
        blocks: u64::from(blocked.is_some()),
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
            repository = repository_id,
            key = %call.caller.key.id,
            model = %call.fields.model,
            explanation = %hit.explanation,
            "policy violation"
        );
        recorder.aggregator.add_violation(pb::Violation {
            id: format!("vio_{}", uuid::Uuid::new_v4().simple()),
            policy_id: p.id.to_string(),
            policy_name: p.name.to_string(),
            time_ms,
            explanation: hit.explanation.clone(),
            workspace_id: workspace_id.to_owned(),
            repository_id: repository_id.to_owned(),
            api_key_id: call.caller.key.id.to_string(),
            severity: p.severity,
            // Whether the call was refused (by this policy or another that fired with it).
            blocked: blocked.is_some(),
            action: p.action.number(),
            ai_llm_id: first
                .map(|t| t.connection.id.to_string())
                .unwrap_or_default(),
            ai_type: first.map_or(0, |t| t.connection.ai_type),
            model: call.fields.model.clone(),
            // Filled in by the reporter (the data plane's instance id).
            host: String::new(),
        });
    }
    if let Some(t) = first {
        let minute = time_ms.div_euclid(60_000);
        let key = UsageKey {
            connection_id: t.connection.id.clone(),
            repository_id: call.caller.key.repository_id.clone(),
            key_id: call.caller.key.id.clone(),
            model: t.upstream_model.clone(),
        };
        recorder
            .aggregator
            .add(recorder.shard, key, minute, counters);
    }
    blocked
}

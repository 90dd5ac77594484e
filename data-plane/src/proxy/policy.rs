//! `Policy`: where policies will be enforced (deterministic detectors, LLM judges, BLOCK →
//! 403). Empty for now: it hands every call on unchanged.

use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::ChatCall;

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

impl<S: Service<ChatCall>> Service<ChatCall> for PolicyService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ChatCall) -> Self::Future {
        self.inner.call(call)
    }
}

//! The usage of one request, recorded exactly once: when the request finishes, or when it is
//! dropped (client gone mid-stream, future cancelled), so tokens already streamed count.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{Aggregator, Counters, UsageKey};
use crate::metrics::Metrics;

/// Where one worker thread counts its finished requests: its shard of the usage aggregator
/// and of the metrics. Each worker has its own, so the reference every request takes to it
/// is counted on that worker's cache line, not on one all workers share.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub aggregator: Arc<Aggregator>,
    pub metrics: Arc<Metrics>,
    /// The worker's shard index in both.
    pub shard: usize,
}

impl Recorder {
    /// A finished request: status, routed model ("" before routing), time to response head.
    pub fn request(&self, status: u16, model: &str, seconds: f64) {
        self.metrics.request(self.shard, status, model, seconds);
    }

    /// A provider's time to its response head.
    pub fn upstream(&self, seconds: f64) {
        self.metrics.upstream(self.shard, seconds);
    }

    /// A failed provider call, by kind (`connect`, `timeout`, `bad_answer`).
    pub fn upstream_error(&self, kind: &'static str) {
        self.metrics.upstream_error(kind);
    }
}

/// Tokens reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// Most tokens one call counts, each way: ten times the largest context window there is. A
/// provider reporting more is wrong, and would push the connection's totals to their limit.
pub const MAX_TOKENS_PER_CALL: u64 = 100_000_000;

impl Tokens {
    /// These counts, each at most [`MAX_TOKENS_PER_CALL`].
    pub fn plausible(self) -> Self {
        Self {
            input: self.input.min(MAX_TOKENS_PER_CALL),
            output: self.output.min(MAX_TOKENS_PER_CALL),
        }
    }
}

impl From<crate::providers::Usage> for Tokens {
    fn from(u: crate::providers::Usage) -> Self {
        Self {
            input: u.input_tokens,
            output: u.output_tokens,
        }
    }
}

/// Records one request's usage on drop.
#[derive(Debug)]
pub struct Meter {
    recorder: Arc<Recorder>,
    /// Taken (moved into the aggregator) on drop.
    key: Option<UsageKey>,
    started: Instant,
    tokens: Tokens,
    error: bool,
}

impl Meter {
    /// Starts metering a request to `key`'s connection and model.
    pub fn new(recorder: Arc<Recorder>, key: UsageKey) -> Self {
        Self {
            recorder,
            key: Some(key),
            started: Instant::now(),
            tokens: Tokens::default(),
            error: true,
        }
    }

    /// When the call began (latency is measured from here).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The provider's token counts (the last report wins: streams report a running total).
    pub fn set_tokens(&mut self, tokens: Tokens) {
        self.tokens = tokens.plausible();
    }

    /// The request completed as far as the gateway can tell (not counted as an error).
    pub fn succeed(&mut self) {
        self.error = false;
    }

    /// The request failed after it was routed.
    pub fn fail(&mut self) {
        self.error = true;
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0);
        let counters = Counters {
            api_calls: 1,
            errors: u64::from(self.error),
            tokens_in: self.tokens.input,
            tokens_out: self.tokens.output,
            latency_ms_sum: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..Counters::default()
        };
        let Some(key) = self.key.take() else {
            return;
        };
        let r = &self.recorder;
        r.metrics
            .tokens(r.shard, &key.model, self.tokens.input, self.tokens.output);
        r.aggregator.add(
            r.shard,
            key,
            i64::try_from(minute).unwrap_or(i64::MAX),
            counters,
        );
    }
}

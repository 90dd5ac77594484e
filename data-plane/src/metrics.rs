//! Prometheus metrics of the data plane, served on the admin port.
//!
//! What every request records (its latency, the provider's, 200s and tokens per model) goes
//! to the [`Shard`] of the worker thread that served it, and the shards are summed when
//! /metrics is read: with one set of counters, every worker wrote the same cache lines (and
//! took the same histogram locks) on every request, each write fetching the line from
//! another CPU first, a cost that grows with the worker count (about 1% on the 2-vCPU
//! machine of docs/benchmarks.md). Rare outcomes (error statuses, provider failures) share
//! one set.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::snapshot::FastMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    direction: &'static str,
    model: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// Upper bounds of the latency histograms: 0.5 ms doubling to ~65 s (gateway overhead is
/// sub-millisecond, LLM calls take seconds), then +Inf.
const BOUNDS: [f64; 18] = {
    let mut b = [0.0005; 18];
    let mut i = 1;
    while i < b.len() {
        b[i] = b[i - 1] * 2.0;
        i += 1;
    }
    b
};

/// A latency histogram of one shard.
#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last is +Inf.
    counts: [AtomicU64; BOUNDS.len() + 1],
    /// The sum of observations, an `f64`'s bits.
    sum: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        let i = BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BOUNDS.len());
        self.counts[i].fetch_add(1, Relaxed);
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + seconds).to_bits())
        });
    }
}

/// 200s and tokens of one model in one shard.
#[derive(Debug, Default)]
struct ModelCounters {
    ok: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
}

/// One worker thread's counters. Aligned so two shards never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    models: RwLock<FastMap<Arc<str>, ModelCounters>>,
    request_seconds: Histogram,
    upstream_seconds: Histogram,
}

impl Shard {
    fn with_model(&self, model: &str, f: impl FnOnce(&ModelCounters)) {
        if let Some(c) = self
            .models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(model)
        {
            return f(c);
        }
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        f(models.entry(model.into()).or_default());
    }
}

/// The per-request metrics: every shard, and the rare statuses. Summed when encoded.
#[derive(Debug)]
struct Traffic {
    shards: Box<[Shard]>,
    /// Requests answered other than 200 with a model, by (status, model).
    other: Mutex<FastMap<(u16, Arc<str>), u64>>,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    traffic: Arc<Traffic>,
    upstream_errors: Family<ErrorLabels, Counter>,
    policy_violations: Family<ActionLabels, Counter>,
    policy_events_suppressed: Counter,
    snapshot_version: Gauge,
    snapshot_age: Gauge<f64, AtomicU64>,
    /// Usage reports waiting for the control plane.
    pub usage_reports_pending: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Metrics {
    /// Metrics for `shards` worker threads (at least one); shard `i` is written by worker
    /// `i` (any index is accepted, taken modulo the count).
    pub fn new(shards: usize) -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let traffic = Arc::new(Traffic {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            other: Mutex::default(),
        });
        let upstream_errors = Family::<ErrorLabels, Counter>::default();
        let policy_violations = Family::<ActionLabels, Counter>::default();
        let policy_events_suppressed = Counter::default();
        let snapshot_version = Gauge::default();
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        let usage_reports_pending = Gauge::default();
        registry.register_collector(Box::new(traffic.clone()));
        registry.register(
            "upstream_errors",
            "Failed provider calls by kind",
            upstream_errors.clone(),
        );
        registry.register(
            "policy_violations",
            "Policy violations by the policy's action (log, alert, block)",
            policy_violations.clone(),
        );
        registry.register(
            "policy_events_suppressed",
            "Policy violations counted but not kept as events (over their policy's event budget)",
            policy_events_suppressed.clone(),
        );
        registry.register(
            "snapshot_version",
            "Config version served",
            snapshot_version.clone(),
        );
        registry.register(
            "snapshot_age_seconds",
            "Seconds since the served config was built",
            snapshot_age.clone(),
        );
        registry.register(
            "usage_reports_pending",
            "Usage reports not yet acknowledged",
            usage_reports_pending.clone(),
        );
        Self {
            registry,
            traffic,
            upstream_errors,
            policy_violations,
            policy_events_suppressed,
            snapshot_version,
            snapshot_age,
            usage_reports_pending,
        }
    }

    fn shard(&self, shard: usize) -> &Shard {
        let shards = &self.traffic.shards;
        &shards[shard % shards.len()]
    }

    /// A finished request: its status, routed model ("" before routing) and time to the
    /// response head.
    pub fn request(&self, shard: usize, status: u16, model: &str, seconds: f64) {
        let shard = self.shard(shard);
        if status == 200 && !model.is_empty() {
            shard.with_model(model, |c| {
                c.ok.fetch_add(1, Relaxed);
            });
        } else {
            *self
                .traffic
                .other
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((status, model.into()))
                .or_default() += 1;
        }
        shard.request_seconds.observe(seconds);
    }

    /// A provider's time to its response head.
    pub fn upstream(&self, shard: usize, seconds: f64) {
        self.shard(shard).upstream_seconds.observe(seconds);
    }

    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    /// A request violated a policy whose action is `action`.
    pub fn policy_violation(&self, action: &'static str) {
        self.policy_violations
            .get_or_create(&ActionLabels { action })
            .inc();
    }

    /// A violation event left out by its policy's event budget.
    pub fn policy_event_suppressed(&self) {
        self.policy_events_suppressed.inc();
    }

    pub fn tokens(&self, shard: usize, model: &str, input: u64, output: u64) {
        self.shard(shard).with_model(model, |c| {
            c.tokens_in.fetch_add(input, Relaxed);
            c.tokens_out.fetch_add(output, Relaxed);
        });
    }

    /// Prometheus text of everything; `snapshot` is the served config's version and build time.
    pub fn encode(&self, snapshot: Option<(i64, std::time::SystemTime)>) -> String {
        if let Some((version, built_at)) = snapshot {
            self.snapshot_version.set(version);
            self.snapshot_age
                .set(built_at.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

impl Collector for Traffic {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut requests: BTreeMap<(u16, Arc<str>), u64> = self
            .other
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        let mut tokens: BTreeMap<Arc<str>, (u64, u64)> = BTreeMap::new();
        // A series appears once it counts something (a model's entry is shared by its 200s
        // and its tokens, which are labelled with the routed and upstream name respectively).
        for shard in &self.shards {
            let models = shard.models.read().unwrap_or_else(|p| p.into_inner());
            for (model, c) in models.iter() {
                let ok = c.ok.load(Relaxed);
                if ok > 0 {
                    *requests.entry((200, model.clone())).or_default() += ok;
                }
                let (input, output) = (c.tokens_in.load(Relaxed), c.tokens_out.load(Relaxed));
                if input > 0 || output > 0 {
                    let t = tokens.entry(model.clone()).or_default();
                    t.0 += input;
                    t.1 += output;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "requests",
            "Requests by status and model.",
            None,
            MetricType::Counter,
        )?;
        for ((status, model), n) in requests {
            let labels = RequestLabels { status, model };
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "tokens",
            "Tokens by direction (in/out) and model.",
            None,
            MetricType::Counter,
        )?;
        for (model, (input, output)) in tokens {
            for (direction, n) in [("in", input), ("out", output)] {
                let labels = TokenLabels {
                    direction,
                    model: model.clone(),
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        self.encode_histogram(
            &mut encoder,
            "request_duration_seconds",
            "Time to the response head.",
            |s| &s.request_seconds,
        )?;
        self.encode_histogram(
            &mut encoder,
            "upstream_duration_seconds",
            "Provider time to the response head.",
            |s| &s.upstream_seconds,
        )
    }
}

impl Traffic {
    /// The histogram `pick` of every shard, summed.
    fn encode_histogram(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: impl Fn(&Shard) -> &Histogram,
    ) -> fmt::Result {
        let mut sum = 0.0;
        let mut buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .chain([&f64::INFINITY])
            .map(|b| (*b, 0))
            .collect();
        for shard in &self.shards {
            let h = pick(shard);
            sum += f64::from_bits(h.sum.load(Relaxed));
            for (bucket, n) in buckets.iter_mut().zip(&h.counts) {
                bucket.1 += n.load(Relaxed);
            }
        }
        let count = buckets.iter().map(|b| b.1).sum();
        encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_counters_are_the_families_own() {
        let m = Metrics::new(2);
        m.tokens(0, "oa/gpt-4o", 3, 5); // creates the model's counters
        m.tokens(1, "oa/gpt-4o", 1, 1);
        // Sums of powers of two: exact, so the text is too.
        m.request(0, 200, "oa/gpt-4o", 0.0625);
        m.request(1, 200, "oa/gpt-4o", 0.25);
        m.request(1, 404, "", 0.125);
        m.upstream(0, 0.001953125);
        let text = m.encode(None);
        for line in [
            r#"tollgate_requests_total{status="200",model="oa/gpt-4o"} 2"#,
            r#"tollgate_requests_total{status="404",model=""} 1"#,
            r#"tollgate_tokens_total{direction="in",model="oa/gpt-4o"} 4"#,
            r#"tollgate_tokens_total{direction="out",model="oa/gpt-4o"} 6"#,
            "# TYPE tollgate_request_duration_seconds histogram",
            "tollgate_request_duration_seconds_count 3",
            "tollgate_request_duration_seconds_sum 0.4375",
            r#"tollgate_request_duration_seconds_bucket{le="0.032"} 0"#,
            r#"tollgate_request_duration_seconds_bucket{le="0.064"} 1"#,
            r#"tollgate_request_duration_seconds_bucket{le="0.128"} 2"#,
            r#"tollgate_request_duration_seconds_bucket{le="0.256"} 3"#,
            r#"tollgate_request_duration_seconds_bucket{le="+Inf"} 3"#,
            "tollgate_upstream_duration_seconds_count 1",
            r#"tollgate_upstream_duration_seconds_bucket{le="0.002"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}

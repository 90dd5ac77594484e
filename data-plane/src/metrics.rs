//! Prometheus metrics of the data plane, served on the admin port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

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

/// The counters a successful request of one model touches, taken from the families once:
/// afterwards a request bumps them without building labels or hashing them in a family.
#[derive(Debug)]
struct ModelCounters {
    ok: Counter,
    tokens_in: Counter,
    tokens_out: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

/// Every metric, registered once at start.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histogram,
    upstream_seconds: Histogram,
    tokens: Family<TokenLabels, Counter>,
    upstream_errors: Family<ErrorLabels, Counter>,
    snapshot_version: Gauge,
    snapshot_age: Gauge<f64, AtomicU64>,
    /// Usage reports waiting for the control plane (in flight + not yet sent).
    pub usage_reports_pending: Gauge,
    /// Per routed model name (names come from the config, so the map stays small).
    models: RwLock<HashMap<Arc<str>, ModelCounters, foldhash::fast::RandomState>>,
}

/// The counter of `labels` in `family`, shared with it.
fn counter_of<L>(family: &Family<L, Counter>, labels: L) -> Counter
where
    L: Clone + std::hash::Hash + Eq,
{
    family.get_or_create(&labels).clone()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `tollgate_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<RequestLabels, Counter>::default();
        // 0.5 ms .. ~65 s: gateway overhead is sub-millisecond, LLM calls take seconds.
        let request_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 18));
        let upstream_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 18));
        let tokens = Family::<TokenLabels, Counter>::default();
        let upstream_errors = Family::<ErrorLabels, Counter>::default();
        let snapshot_version = Gauge::default();
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        let usage_reports_pending = Gauge::default();
        registry.register("requests", "Requests by status and model", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time to the response head",
            request_seconds.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Provider time to the response head",
            upstream_seconds.clone(),
        );
        registry.register(
            "tokens",
            "Tokens by direction (in/out) and model",
            tokens.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed provider calls by kind",
            upstream_errors.clone(),
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
            requests,
            request_seconds,
            upstream_seconds,
            tokens,
            upstream_errors,
            snapshot_version,
            snapshot_age,
            usage_reports_pending,
            models: RwLock::default(),
        }
    }

    /// Runs `f` on the counters of `model`, creating them on first use.
    fn with_model<R>(&self, model: &str, f: impl FnOnce(&ModelCounters) -> R) -> R {
        if let Some(c) = self
            .models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(model)
        {
            return f(c);
        }
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        let model: Arc<str> = model.into();
        if let Some(c) = models.get(&*model) {
            return f(c);
        }
        // One statement per counter: a family's read guard lives to the end of the
        // statement that took it, and taking the same family again there would deadlock.
        let ok = counter_of(
            &self.requests,
            RequestLabels {
                status: 200,
                model: model.clone(),
            },
        );
        let tokens_in = counter_of(
            &self.tokens,
            TokenLabels {
                direction: "in",
                model: model.clone(),
            },
        );
        let tokens_out = counter_of(
            &self.tokens,
            TokenLabels {
                direction: "out",
                model: model.clone(),
            },
        );
        let c = models.entry(model).or_insert(ModelCounters {
            ok,
            tokens_in,
            tokens_out,
        });
        f(c)
    }

    /// One finished request (its response head).
    pub fn request(&self, status: u16, model: &str, seconds: f64) {
        if status == 200 && !model.is_empty() {
            self.with_model(model, |c| c.ok.inc());
        } else {
            self.requests
                .get_or_create(&RequestLabels {
                    status,
                    model: model.into(),
                })
                .inc();
        }
        self.request_seconds.observe(seconds);
    }

    /// Provider time to its response head.
    pub fn upstream(&self, seconds: f64) {
        self.upstream_seconds.observe(seconds);
    }

    /// A failed provider call (`connect`, `timeout`, `bad_answer`, `status`).
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    /// Tokens counted for `model`.
    pub fn tokens(&self, model: &str, input: u64, output: u64) {
        self.with_model(model, |c| {
            c.tokens_in.inc_by(input);
            c.tokens_out.inc_by(output);
        });
    }

    /// The Prometheus text exposition, with snapshot gauges as of now.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_counters_are_the_families_own() {
        let m = Metrics::new();
        m.tokens("oa/gpt-4o", 3, 5); // creates the model's counters
        m.tokens("oa/gpt-4o", 1, 1);
        m.request(200, "oa/gpt-4o", 0.001);
        m.request(404, "", 0.001);
        let text = m.encode(None);
        for line in [
            r#"tollgate_requests_total{status="200",model="oa/gpt-4o"} 1"#,
            r#"tollgate_requests_total{status="404",model=""} 1"#,
            r#"tollgate_tokens_total{direction="in",model="oa/gpt-4o"} 4"#,
            r#"tollgate_tokens_total{direction="out",model="oa/gpt-4o"} 6"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}

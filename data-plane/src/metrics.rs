//! Prometheus metrics of the data plane, served on the admin port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    direction: &'static str,
    model: String,
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
        }
    }

    /// One finished request (its response head).
    pub fn request(&self, status: u16, model: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                status,
                model: model.to_owned(),
            })
            .inc();
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
        self.tokens
            .get_or_create(&TokenLabels {
                direction: "in",
                model: model.to_owned(),
            })
            .inc_by(input);
        self.tokens
            .get_or_create(&TokenLabels {
                direction: "out",
                model: model.to_owned(),
            })
            .inc_by(output);
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

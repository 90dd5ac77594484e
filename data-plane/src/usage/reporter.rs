//! Delivers usage to the control plane: one report in flight at a time, in sequence order,
//! retried as is (same sequence, same records) until acknowledged, so the control plane can
//! apply each exactly once. Unsent usage waits in the [`Aggregator`], which bounds itself.
//!
//! The control plane keeps, per instance id, the highest sequence it applied and treats any
//! report at or below it as a duplicate. Sequences therefore start at the process's start
//! time in microseconds, not at 1: a restarted process that reuses its `--instance-id`
//! continues above its previous run (which would need a million reports per second of
//! uptime to catch up).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate_proto::sync::{UsageAck, UsageReport};

use super::Aggregator;
use crate::backoff::Backoff;
use crate::metrics::Metrics;

/// The control plane's limit on records and violation events together per report.
pub const MAX_RECORDS: usize = 32;
/// Most violation events per report, so that usage records always travel too.
const MAX_VIOLATIONS: usize = MAX_RECORDS / 2;
/// How often collected usage is sent.
const PERIOD: Duration = Duration::from_secs(1);
/// How long shutdown waits for the last reports.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Sends one report (the tonic client in production, a fake in tests).
pub trait UsageSender: Send + 'static {
    /// Sends `report` and waits for its acknowledgement.
    fn send(
        &mut self,
        report: UsageReport,
    ) -> impl Future<Output = Result<UsageAck, tonic::Status>> + Send;
}

impl UsageSender
    for tollgate_proto::sync::sync_service_client::SyncServiceClient<tonic::transport::Channel>
{
    async fn send(&mut self, report: UsageReport) -> Result<UsageAck, tonic::Status> {
        self.report_usage(report)
            .await
            .map(tonic::Response::into_inner)
    }
}

struct Reporter<S> {
    sender: S,
    aggregator: Arc<Aggregator>,
    metrics: Arc<Metrics>,
    instance_id: String,
    environment: String,
    next_sequence: u64,
    /// The report sent but not acknowledged: it is resent unchanged.
    in_flight: Option<UsageReport>,
}

/// Runs until `shutdown`, then tries to deliver what is left for a few seconds.
pub async fn run_reporter<S: UsageSender>(
    sender: S,
    aggregator: Arc<Aggregator>,
    metrics: Arc<Metrics>,
    instance_id: String,
    environment: String,
    shutdown: impl Future<Output = ()>,
) {
    let mut r = Reporter {
        sender,
        aggregator,
        metrics,
        instance_id,
        environment,
        next_sequence: first_sequence(),
        in_flight: None,
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = r.drain() => {}
        }
    }
    let flush = async {
        r.drain().await;
        // Requests that finished during the first pass.
        while !r.aggregator.is_empty() {
            r.drain().await;
        }
    };
    if tokio::time::timeout(FLUSH_DEADLINE, flush).await.is_err() {
        tracing::warn!(
            unsent_records =
                r.aggregator.len() + r.in_flight.as_ref().map_or(0, |x| x.records.len()),
            "control plane unreachable at shutdown: usage not delivered"
        );
    }
}

/// The first sequence of this process: unix time in microseconds, so it grows across
/// restarts (at least 1, should the clock be before 1970).
fn first_sequence() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(0)
        .max(1)
}

impl<S: UsageSender> Reporter<S> {
    /// Sends what was collected when called, one report at a time; retries with backoff while
    /// the control plane is unreachable (cancelled by shutdown, keeping `in_flight`). Usage
    /// arriving meanwhile waits for the next call: chasing it sent a report per round trip
    /// under load (hundreds a second, each a store write on the control plane) instead of
    /// one per [`PERIOD`].
    async fn drain(&mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut left = self.aggregator.len();
        let mut left_violations = self.aggregator.violations_len();
        loop {
            self.publish_pending();
            let report = match &self.in_flight {
                Some(r) => r.clone(),
                None => {
                    let mut violations = self
                        .aggregator
                        .take_violations(MAX_VIOLATIONS.min(left_violations));
                    left_violations = left_violations.saturating_sub(violations.len());
                    let records = self
                        .aggregator
                        .take((MAX_RECORDS - violations.len()).min(left));
                    if records.is_empty() && violations.is_empty() {
                        return;
                    }
                    left = left.saturating_sub(records.len());
                    for v in &mut violations {
                        v.host.clone_from(&self.instance_id);
                    }
                    let report = UsageReport {
                        instance_id: self.instance_id.clone(),
                        sequence: self.next_sequence,
                        environment: self.environment.clone(),
                        records,
                        violations,
                    };
                    self.next_sequence += 1;
                    self.in_flight = Some(report.clone());
                    report
                }
            };
            let sequence = report.sequence;
            match self.sender.send(report).await {
                // `applied: false` means a retry of a report already counted: delivered too.
                Ok(ack) if ack.sequence == sequence => {
                    self.in_flight = None;
                    backoff.reset();
                }
                Ok(ack) => {
                    tracing::warn!(
                        sent = sequence,
                        acked = ack.sequence,
                        "usage ack for another sequence; resending"
                    );
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    // Resending the same report can never succeed; drop it loudly.
                    tracing::error!(sequence, error = %status.message(), "control plane refused a usage report");
                    self.in_flight = None;
                }
                Err(status) => {
                    tracing::debug!(sequence, error = %status, "usage report not delivered; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    fn publish_pending(&self) {
        let queued = self
            .aggregator
            .len()
            .div_ceil(MAX_RECORDS)
            .max(self.aggregator.violations_len().div_ceil(MAX_VIOLATIONS));
        let pending = queued + usize::from(self.in_flight.is_some());
        self.metrics
            .usage_reports_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{Counters, UsageKey};
    use std::sync::Mutex;

    /// Fails the first `fail` calls, then acks; records every report it saw.
    struct Fake {
        fail: usize,
        seen: Arc<Mutex<Vec<UsageReport>>>,
    }

    impl UsageSender for Fake {
        async fn send(&mut self, report: UsageReport) -> Result<UsageAck, tonic::Status> {
            self.seen.lock().expect("lock").push(report.clone());
            if self.fail > 0 {
                self.fail -= 1;
                return Err(tonic::Status::unavailable("down"));
            }
            Ok(UsageAck {
                sequence: report.sequence,
                applied: true,
            })
        }
    }

    /// Acks like the control plane: applied iff the sequence is above the instance's
    /// high-water mark.
    struct HighWater {
        last: Arc<Mutex<std::collections::HashMap<String, u64>>>,
        applied_calls: Arc<Mutex<u64>>,
    }

    impl UsageSender for HighWater {
        async fn send(&mut self, report: UsageReport) -> Result<UsageAck, tonic::Status> {
            let mut last = self.last.lock().expect("lock");
            let mark = last.entry(report.instance_id.clone()).or_insert(0);
            let applied = report.sequence > *mark;
            if applied {
                *mark = report.sequence;
                *self.applied_calls.lock().expect("lock") +=
                    report.records.iter().map(|r| r.api_calls).sum::<u64>();
            }
            Ok(UsageAck {
                sequence: report.sequence,
                applied,
            })
        }
    }

    /// `run_reporter` over `agg` as instance `id`, until the returned sender fires.
    fn start<S: UsageSender + Send + 'static>(
        sender: S,
        agg: &Arc<Aggregator>,
        id: &str,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_reporter(
            sender,
            agg.clone(),
            Arc::new(Metrics::new(1)),
            id.into(),
            "prod".into(),
            async {
                let _ = rx.await;
            },
        ));
        (tx, task)
    }

    fn fill(agg: &Aggregator, n: i64) {
        for m in 0..n {
            let key = UsageKey {
                connection_id: "c".into(),
                repository_id: "r".into(),
                key_id: "k".into(),
                model: "m".into(),
            };
            agg.add(
                0,
                key,
                m,
                Counters {
                    api_calls: 1,
                    ..Default::default()
                },
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_with_the_same_instance_id_is_not_taken_for_duplicates() {
        let last = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let applied_calls = Arc::new(Mutex::new(0));
        for run in 0..2 {
            let agg = Arc::new(Aggregator::new(10_000));
            fill(&agg, 40);
            let sender = HighWater {
                last: last.clone(),
                applied_calls: applied_calls.clone(),
            };
            let (tx, task) = start(sender, &agg, "dp-fixed-id");
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = tx.send(());
            task.await.expect("reporter");
            assert!(agg.is_empty(), "run {run}");
            // The next "process" starts later on the wall clock.
            std::thread::sleep(Duration::from_millis(2));
        }
        // Both runs' usage (2 × 40 calls) was applied, none taken for a duplicate.
        assert_eq!(*applied_calls.lock().expect("lock"), 80);
    }

    /// Acks at once, but traffic (until `stopped`) adds new usage while each report is in
    /// flight.
    struct Busy {
        agg: Arc<Aggregator>,
        sent: Arc<Mutex<usize>>,
        stopped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl UsageSender for Busy {
        async fn send(&mut self, report: UsageReport) -> Result<UsageAck, tonic::Status> {
            *self.sent.lock().expect("lock") += 1;
            if !self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                fill(&self.agg, 1);
            }
            Ok(UsageAck {
                sequence: report.sequence,
                applied: true,
            })
        }
    }

    /// A busy gateway sends one report per period, not one per round trip; nothing is lost.
    #[tokio::test(start_paused = true)]
    async fn usage_arriving_during_a_report_waits_for_the_next_period() {
        let agg = Arc::new(Aggregator::new(10_000));
        fill(&agg, 1);
        let sent = Arc::new(Mutex::new(0));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = Busy {
            agg: agg.clone(),
            sent: sent.clone(),
            stopped: stopped.clone(),
        };
        let (tx, task) = start(sender, &agg, "dp-busy");
        tokio::time::sleep(PERIOD * 5 + PERIOD / 2).await;
        // Ticks at 0, 1, ..., 5 periods: one report each.
        assert_eq!(*sent.lock().expect("lock"), 6);
        assert!(!agg.is_empty(), "the usage of the last report waits");
        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = tx.send(());
        task.await.expect("reporter");
        assert_eq!(
            *sent.lock().expect("lock"),
            7,
            "the shutdown flush sends it"
        );
        assert!(agg.is_empty());
    }

    /// Every report a reporter over `agg` sent in `run` when its first `fail` sends failed.
    async fn reports_of(
        agg: &Arc<Aggregator>,
        id: &str,
        fail: usize,
        run: Duration,
    ) -> Vec<UsageReport> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            fail,
            seen: seen.clone(),
        };
        let (tx, task) = start(fake, agg, id);
        tokio::time::sleep(run).await;
        let _ = tx.send(());
        task.await.expect("reporter");
        seen.lock().expect("lock").clone()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_in_order_same_sequence_until_acked() {
        let agg = Arc::new(Aggregator::new(10_000));
        fill(&agg, 40);
        let seen = reports_of(&agg, "dp-1", 3, Duration::from_secs(30)).await;
        let seqs: Vec<u64> = seen.iter().map(|r| r.sequence - seen[0].sequence).collect();
        // Three failed tries of the first report (same content), then it and the next.
        assert_eq!(seqs, vec![0, 0, 0, 0, 1]);
        assert!(seen[..4].iter().all(|r| r == &seen[0]));
        assert_eq!(seen[0].records.len(), 32);
        let calls: u64 = seen[3..]
            .iter()
            .flat_map(|r| &r.records)
            .map(|r| r.api_calls)
            .sum();
        assert_eq!(calls, 40);
        assert!(agg.is_empty());
    }

    /// Violation events travel with the records (at most half a report each time), carry
    /// the instance id as their host, and are delivered once like the records.
    #[tokio::test(start_paused = true)]
    async fn violations_travel_in_reports() {
        let agg = Arc::new(Aggregator::new(10_000));
        fill(&agg, 40);
        for i in 0..20 {
            let queued = agg.add_violation(tollgate_proto::sync::Violation {
                id: format!("v{i}"),
                ..Default::default()
            });
            assert!(queued);
        }
        let seen = reports_of(&agg, "dp-v", 1, Duration::from_secs(10)).await;
        // The failed first report was resent as is, violations included.
        assert_eq!(seen[0], seen[1]);
        let delivered = &seen[1..];
        assert!(
            delivered
                .iter()
                .all(|r| r.violations.len() <= MAX_VIOLATIONS
                    && r.records.len() + r.violations.len() <= MAX_RECORDS)
        );
        let ids: Vec<&str> = delivered
            .iter()
            .flat_map(|r| &r.violations)
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(ids, (0..20).map(|i| format!("v{i}")).collect::<Vec<_>>());
        assert!(
            delivered
                .iter()
                .flat_map(|r| &r.violations)
                .all(|v| v.host == "dp-v")
        );
        let calls: u64 = delivered
            .iter()
            .flat_map(|r| &r.records)
            .map(|r| r.api_calls)
            .sum();
        assert_eq!(calls, 40);
        assert!(agg.is_empty());
    }
}

//! Counters per (connection, repository, key, model, minute). The map is the buffer of
//! everything not yet handed to the reporter; it is bounded by merging old windows into
//! coarser ones (hour, then day), which keeps totals exact instead of dropping anything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tollgate_proto::sync::{UsageRecord, Violation};

use crate::bucket::TokenBuckets;

/// Violation events kept while the control plane is unreachable. Events cannot be merged
/// like counters: beyond this the oldest are dropped (and counted in the log); the
/// violation, alert and block counters of the usage records stay exact.
pub const VIOLATION_CAP: usize = 10_000;

/// Who and what a usage record is about. The ids are the snapshot's own strings, shared:
/// metering a request copies no text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub connection_id: Arc<str>,
    pub repository_id: Arc<str>,
    pub key_id: Arc<str>,
    pub model: Arc<str>,
}

/// Additive counters of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub api_calls: u64,
    pub errors: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub latency_ms_sum: u64,
    pub policy_violations: u64,
    pub alerts: u64,
    pub blocks: u64,
    /// Tokens spent by policy judges on the requests counted here.
    pub llm_tokens_in: u64,
    pub llm_tokens_out: u64,
}

impl Counters {
    /// Saturating: counts that came from providers must not wrap (release builds) or panic
    /// (debug builds) whatever they report.
    fn add(&mut self, o: &Counters) {
        for (a, b) in [
            (&mut self.api_calls, o.api_calls),
            (&mut self.errors, o.errors),
            (&mut self.tokens_in, o.tokens_in),
            (&mut self.tokens_out, o.tokens_out),
            (&mut self.latency_ms_sum, o.latency_ms_sum),
            (&mut self.policy_violations, o.policy_violations),
            (&mut self.alerts, o.alerts),
            (&mut self.blocks, o.blocks),
            (&mut self.llm_tokens_in, o.llm_tokens_in),
            (&mut self.llm_tokens_out, o.llm_tokens_out),
        ] {
            *a = a.saturating_add(b);
        }
    }
}

/// (window start minute, window width in minutes)
type Window = (i64, u32);

/// Counters per key and window. Hashed with foldhash: one lookup per request, and the keys
/// are config ids, not app input.
type UsageMap = HashMap<(UsageKey, Window), Counters, foldhash::fast::RandomState>;

/// The unsent usage, in one shard per worker thread (each worker adds to its own, so the
/// workers never wait for each other or pull each other's cache lines); `take` merges them.
/// A short critical section per finished request (not per byte).
#[derive(Debug)]
pub struct Aggregator {
    shards: Box<[Shard]>,
    /// Entries of a shard above which its old windows are merged.
    cap: usize,
    /// Policy violation events not yet reported, oldest first (rare: one lock is enough).
    violations: Mutex<Violations>,
}

#[derive(Debug)]
struct Violations {
    queue: VecDeque<Violation>,
    /// Dropped since the last warning.
    dropped: u64,
    /// Events each policy may still send (see [`EVENTS_PER_POLICY`]), by policy id.
    budgets: TokenBuckets<String>,
    /// Events over their policy's budget since the last warning.
    suppressed: u64,
}

impl Default for Violations {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            dropped: 0,
            budgets: TokenBuckets::new(EVENTS_PER_POLICY, EVENTS_PER_POLICY_PER_MINUTE, 10_000),
            suppressed: 0,
        }
    }
}

/// Violation events one policy may send from one data plane: a burst of this many, then
/// [`EVENTS_PER_POLICY_PER_MINUTE`]. A flood of violating requests (a loop in an app, an
/// attack with a valid key) must not fill the store: at most ~1,460 events a day per policy
/// and data plane, ~130,000 over the default 90 days of retention. The counters stay exact
/// and say how many violations there were; the events are examples of them.
pub const EVENTS_PER_POLICY: f64 = 20.0;
pub const EVENTS_PER_POLICY_PER_MINUTE: f64 = 1.0;

/// One worker's records. Aligned so two shards' locks never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    map: UsageMap,
    /// Size that triggers the next merge: above `cap`, and doubled when merging could not
    /// get under it, so a huge backlog does not cost a merge per request.
    threshold: usize,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn add(&mut self, key: (UsageKey, Window), c: &Counters, cap: usize) {
        // Looked up first: `entry` would take (and then drop) the key even when the record
        // exists, which is every request but the first of a minute.
        match self.map.get_mut(&key) {
            Some(counters) => counters.add(c),
            None => self.map.entry(key).or_default().add(c),
        }
        if self.map.len() > self.threshold {
            coarsen(&mut self.map, cap);
            self.threshold = cap.max(self.map.len() * 2);
        }
    }
}

impl Aggregator {
    /// One shard; `cap`: entries above which old windows are merged.
    pub fn new(cap: usize) -> Self {
        Self::with_shards(cap, 1)
    }

    /// `shards` shards (at least one) sharing `cap` (each merges above its part of it).
    pub fn with_shards(cap: usize, shards: usize) -> Self {
        let shards = shards.max(1);
        let cap = (cap / shards).max(1);
        Self {
            shards: (0..shards)
                .map(|_| {
                    Shard(Mutex::new(Inner {
                        map: HashMap::default(),
                        threshold: cap,
                    }))
                })
                .collect(),
            cap,
            violations: Mutex::default(),
        }
    }

    /// Queues a policy violation event for the reporter, if its policy has budget left
    /// (see [`EVENTS_PER_POLICY`]); whether it was queued.
    #[must_use]
    pub fn add_violation(&self, v: Violation) -> bool {
        self.add_violation_at(v, std::time::Instant::now())
    }

    fn add_violation_at(&self, v: Violation, now: std::time::Instant) -> bool {
        let mut q = self.lock_violations();
        if q.budgets.take(&v.policy_id, now).is_err() {
            q.suppressed += 1;
            if q.suppressed.is_power_of_two() {
                tracing::warn!(
                    suppressed = q.suppressed,
                    policy = %v.policy_name,
                    "policy violations faster than their events are kept; counted, not listed"
                );
            }
            return false;
        }
        if q.queue.len() >= VIOLATION_CAP {
            q.queue.pop_front();
            q.dropped += 1;
            if q.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = q.dropped,
                    "control plane unreachable: oldest policy violation events dropped \
                     (their counters are kept)"
                );
            }
        }
        q.queue.push_back(v);
        true
    }

    /// Removes and returns at most `max` violation events, oldest first.
    pub fn take_violations(&self, max: usize) -> Vec<Violation> {
        let mut q = self.lock_violations();
        let n = max.min(q.queue.len());
        if q.queue.len() == n {
            q.dropped = 0;
        }
        q.queue.drain(..n).collect()
    }

    /// Number of unsent violation events.
    pub fn violations_len(&self) -> usize {
        self.lock_violations().queue.len()
    }

    fn lock_violations(&self) -> MutexGuard<'_, Violations> {
        self.violations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one request's counters to its minute window, in shard `shard` (modulo the
    /// shard count).
    pub fn add(&self, shard: usize, key: UsageKey, minute: i64, c: Counters) {
        self.shards[shard % self.shards.len()]
            .lock()
            .add((key, (minute, 1)), &c, self.cap);
    }

    /// Removes and returns at most `max` records, oldest windows first.
    pub fn take(&self, max: usize) -> Vec<UsageRecord> {
        let mut map = UsageMap::default();
        for shard in &self.shards {
            let mut inner = shard.lock();
            if map.is_empty() {
                std::mem::swap(&mut map, &mut inner.map);
            } else {
                for (k, c) in inner.map.drain() {
                    map.entry(k).or_default().add(&c);
                }
            }
        }
        let mut keys: Vec<(UsageKey, Window)> = map.keys().cloned().collect();
        keys.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        keys.truncate(max);
        let records = keys
            .into_iter()
            .filter_map(|k| map.remove(&k).map(|c| (k, c)))
            .map(|((key, (minute, width)), c)| UsageRecord {
                minute,
                ai_llm_id: key.connection_id.to_string(),
                repository_id: key.repository_id.to_string(),
                api_key_id: key.key_id.to_string(),
                model: key.model.to_string(),
                api_calls: c.api_calls,
                errors: c.errors,
                tokens_in: c.tokens_in,
                tokens_out: c.tokens_out,
                latency_ms_sum: c.latency_ms_sum,
                policy_violations: c.policy_violations,
                alerts: c.alerts,
                blocks: c.blocks,
                llm_tokens_in: c.llm_tokens_in,
                llm_tokens_out: c.llm_tokens_out,
                window_minutes: if width > 1 { width } else { 0 },
            })
            .collect();
        if !map.is_empty() {
            // The rest waits in the first shard, merged with what arrived meanwhile.
            let mut inner = self.shards[0].lock();
            for (k, c) in map {
                inner.add(k, &c, self.cap);
            }
        }
        records
    }

    /// Number of unsent records (a record of two shards counts twice until taken).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether nothing is waiting (records or violation events).
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().map.is_empty()) && self.violations_len() == 0
    }
}

/// Merges windows into hours, then days, until at most `cap` entries remain (or nothing
/// coarser exists). The newest hour (then day) keeps its resolution while that suffices.
fn coarsen(map: &mut UsageMap, cap: usize) {
    for (width, keep_newest) in [(60u32, true), (60, false), (1440, true), (1440, false)] {
        if map.len() <= cap {
            return;
        }
        let w64 = i64::from(width);
        let newest = map.keys().map(|(_, (m, _))| *m).max().unwrap_or(0);
        let newest_bucket = newest.div_euclid(w64) * w64;
        let old = std::mem::take(map);
        for ((key, (minute, w)), c) in old {
            let start = minute.div_euclid(w64) * w64;
            let merge = w < width && !(keep_newest && start >= newest_bucket);
            let window = if merge { (start, width) } else { (minute, w) };
            map.entry((key, window)).or_default().add(&c);
        }
    }
    if map.len() > cap {
        tracing::warn!(
            records = map.len(),
            cap,
            "usage backlog over its cap even at day windows; keeping it all"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(k: &str) -> UsageKey {
        UsageKey {
            connection_id: "c".into(),
            repository_id: "r".into(),
            key_id: k.into(),
            model: "m".into(),
        }
    }

    #[test]
    fn absurd_counts_neither_wrap_nor_fill_the_totals() {
        let mut c = Counters {
            tokens_in: u64::MAX - 1,
            ..Default::default()
        };
        c.add(&Counters {
            tokens_in: 5,
            api_calls: 1,
            ..Default::default()
        });
        assert_eq!((c.tokens_in, c.api_calls), (u64::MAX, 1), "saturates");
        let reported = crate::usage::Tokens {
            input: u64::MAX,
            output: 42,
        };
        assert_eq!(
            reported.plausible(),
            crate::usage::Tokens {
                input: crate::usage::MAX_TOKENS_PER_CALL,
                output: 42
            }
        );
    }

    fn one(tokens_in: u64) -> Counters {
        Counters {
            api_calls: 1,
            tokens_in,
            tokens_out: 2,
            latency_ms_sum: 5,
            ..Default::default()
        }
    }

    #[test]
    fn aggregates_per_key_and_minute_across_shards() {
        let agg = Aggregator::with_shards(100, 2);
        agg.add(0, key("a"), 10, one(3));
        agg.add(1, key("a"), 10, one(4));
        agg.add(0, key("a"), 11, one(1));
        agg.add(0, key("b"), 10, one(1));
        let recs = agg.take(32);
        assert_eq!(recs.len(), 3);
        let a10 = recs
            .iter()
            .find(|r| r.api_key_id == "a" && r.minute == 10)
            .expect("a10");
        assert_eq!(
            (
                a10.api_calls,
                a10.tokens_in,
                a10.tokens_out,
                a10.latency_ms_sum
            ),
            (2, 7, 4, 10)
        );
        assert!(agg.is_empty());
    }

    #[test]
    fn take_is_bounded_and_oldest_first() {
        let agg = Aggregator::with_shards(1000, 2);
        for m in (0..40).rev() {
            agg.add(m as usize, key("a"), m, one(1));
        }
        let first = agg.take(32);
        assert_eq!(first.len(), 32);
        assert_eq!(first[0].minute, 0);
        // The rest was kept (in the first shard) and merges with later usage.
        agg.add(1, key("a"), 39, one(1));
        let rest = agg.take(32);
        assert_eq!(rest.len(), 8);
        assert_eq!(rest.iter().map(|r| r.api_calls).sum::<u64>(), 9);
        assert!(agg.is_empty());
    }

    #[test]
    fn over_cap_merges_old_windows_keeping_totals() {
        let agg = Aggregator::new(10);
        // Three hours of minutes, two keys: 360 windows, far over the cap of 10.
        for m in 0..180 {
            agg.add(0, key("a"), m, one(1));
            agg.add(0, key("b"), m, one(1));
        }
        assert!(agg.len() <= 10, "{}", agg.len());
        let recs = agg.take(100);
        let calls: u64 = recs.iter().map(|r| r.api_calls).sum();
        let tokens: u64 = recs.iter().map(|r| r.tokens_in).sum();
        assert_eq!((calls, tokens), (360, 360));
        assert!(recs.iter().any(|r| r.window_minutes >= 60));
    }

    #[test]
    fn violation_events_have_a_budget_per_policy() {
        let agg = Aggregator::new(100);
        let event = |policy: &str| Violation {
            policy_id: policy.into(),
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let queued = (0..25)
            .filter(|_| agg.add_violation_at(event("p1"), t0))
            .count();
        assert_eq!(queued, EVENTS_PER_POLICY as usize, "a burst, then nothing");
        // Another policy has its own budget.
        assert!(agg.add_violation_at(event("p2"), t0));
        // Refilled at one a minute.
        assert!(!agg.add_violation_at(event("p1"), t0 + Duration::from_secs(50)));
        assert!(agg.add_violation_at(event("p1"), t0 + Duration::from_secs(61)));
        assert_eq!(agg.violations_len(), 22);
    }
}

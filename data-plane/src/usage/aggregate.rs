//! Counters per (connection, repository, key, model, minute). The map is the buffer of
//! everything not yet handed to the reporter; it is bounded by merging old windows into
//! coarser ones (hour, then day), which keeps totals exact instead of dropping anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tollgate_proto::sync::UsageRecord;

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
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.api_calls += o.api_calls;
        self.errors += o.errors;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.latency_ms_sum += o.latency_ms_sum;
    }
}

/// (window start minute, window width in minutes)
type Window = (i64, u32);

/// Counters per key and window. Hashed with foldhash: one lookup per request, and the keys
/// are config ids, not app input.
type UsageMap = HashMap<(UsageKey, Window), Counters, foldhash::fast::RandomState>;

/// The unsent usage. A short critical section per finished request (not per byte).
#[derive(Debug)]
pub struct Aggregator {
    inner: Mutex<Inner>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: UsageMap,
    /// Size that triggers the next merge: above `cap`, and doubled when merging could not
    /// get under it, so a huge backlog does not cost a merge per request.
    threshold: usize,
}

impl Aggregator {
    /// `cap`: entries above which old windows are merged.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::default(),
                threshold: cap,
            }),
            cap,
        }
    }

    /// Adds one request's counters to its minute window.
    pub fn add(&self, key: UsageKey, minute: i64, c: Counters) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let map_key = (key, (minute, 1));
        // Looked up first: `entry` would take (and then drop) the key even when the record
        // exists, which is every request but the first of a minute.
        match inner.map.get_mut(&map_key) {
            Some(counters) => counters.add(&c),
            None => inner.map.entry(map_key).or_default().add(&c),
        }
        if inner.map.len() > inner.threshold {
            coarsen(&mut inner.map, self.cap);
            inner.threshold = self.cap.max(inner.map.len() * 2);
        }
    }

    /// Removes and returns at most `max` records, oldest windows first.
    pub fn take(&self, max: usize) -> Vec<UsageRecord> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let map = &mut inner.map;
        let mut keys: Vec<(UsageKey, Window)> = map.keys().cloned().collect();
        keys.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        keys.truncate(max);
        keys.into_iter()
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
                window_minutes: if width > 1 { width } else { 0 },
                ..Default::default()
            })
            .collect()
    }

    /// Number of unsent records.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    fn key(k: &str) -> UsageKey {
        UsageKey {
            connection_id: "c".into(),
            repository_id: "r".into(),
            key_id: k.into(),
            model: "m".into(),
        }
    }

    fn one(tokens_in: u64) -> Counters {
        Counters {
            api_calls: 1,
            errors: 0,
            tokens_in,
            tokens_out: 2,
            latency_ms_sum: 5,
        }
    }

    #[test]
    fn aggregates_per_key_and_minute() {
        let agg = Aggregator::new(100);
        agg.add(key("a"), 10, one(3));
        agg.add(key("a"), 10, one(4));
        agg.add(key("a"), 11, one(1));
        agg.add(key("b"), 10, one(1));
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
        let agg = Aggregator::new(1000);
        for m in (0..40).rev() {
            agg.add(key("a"), m, one(1));
        }
        let first = agg.take(32);
        assert_eq!(first.len(), 32);
        assert_eq!(first[0].minute, 0);
        assert_eq!(agg.take(32).len(), 8);
    }

    #[test]
    fn over_cap_merges_old_windows_keeping_totals() {
        let agg = Aggregator::new(10);
        // Three hours of minutes, two keys: 360 windows, far over the cap of 10.
        for m in 0..180 {
            agg.add(key("a"), m, one(1));
            agg.add(key("b"), m, one(1));
        }
        assert!(agg.len() <= 10, "{}", agg.len());
        let recs = agg.take(100);
        let calls: u64 = recs.iter().map(|r| r.api_calls).sum();
        let tokens: u64 = recs.iter().map(|r| r.tokens_in).sum();
        assert_eq!((calls, tokens), (360, 360));
        assert!(recs.iter().any(|r| r.window_minutes >= 60));
    }
}

//! Token buckets by key: bursts up to a capacity, refilled evenly over time. What the
//! policies' request budgets (per API key) and the violation events' budget (per policy)
//! count with.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// One bucket per key, all of the same capacity and refill rate.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    capacity: f64,
    per_second: f64,
    /// Keys held above which buckets that have refilled to full are forgotten.
    max_keys: usize,
    /// Tokens left, and when that was computed.
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// Buckets of `capacity` tokens, refilled at `per_minute`.
    pub fn new(capacity: f64, per_minute: f64, max_keys: usize) -> Self {
        Self {
            capacity,
            per_second: per_minute / 60.0,
            max_keys,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token of `key`'s bucket at `now`; when it is empty, how long until the next.
    pub fn take(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        let (capacity, per_second) = (self.capacity, self.per_second);
        let level = |tokens: f64, last: Instant| {
            (tokens + now.saturating_duration_since(last).as_secs_f64() * per_second).min(capacity)
        };
        if self.buckets.len() > self.max_keys {
            // A full bucket is the same as none.
            self.buckets
                .retain(|_, (tokens, last)| level(*tokens, *last) < capacity);
        }
        let (tokens, last) = match self.buckets.get_mut(key) {
            Some(b) => b,
            None => self.buckets.entry(key.clone()).or_insert((capacity, now)),
        };
        *tokens = level(*tokens, *last);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_per_key() {
        let mut b = TokenBuckets::new(2.0, 2.0, 100);
        let t0 = Instant::now();
        assert!(b.take(&"a", t0).is_ok());
        assert!(b.take(&"a", t0).is_ok());
        // Empty: the next token comes in 30 s (2 a minute).
        assert_eq!(b.take(&"a", t0).expect_err("empty").as_secs(), 30);
        // Another key has its own bucket.
        assert!(b.take(&"b", t0).is_ok());
        assert!(b.take(&"a", t0 + Duration::from_secs(31)).is_ok());
    }

    #[test]
    fn full_buckets_are_forgotten_past_the_key_limit() {
        let mut b = TokenBuckets::new(1.0, 60.0, 2);
        let t0 = Instant::now();
        for k in 0..3 {
            assert!(b.take(&k, t0).is_ok());
        }
        assert_eq!(b.len(), 3);
        // A second later all three are full again: the next take forgets them.
        assert!(b.take(&9, t0 + Duration::from_secs(1)).is_ok());
        assert_eq!(b.len(), 1);
    }
}

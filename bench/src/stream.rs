//! Streaming: `concurrency` clients each open streams back to back for `duration`,
//! recording the time to the first body byte and how fast the SSE events arrive.

use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::http::{chat_request, client};
use crate::report::percentile;

/// What the clients of one or more runs against one target saw.
#[derive(Default)]
pub struct Tally {
    ttfb_us: Vec<u64>,
    /// Events per second within each stream (first to last byte).
    stream_rates: Vec<f64>,
    events: u64,
    streams: u64,
    errors: u64,
    last_error: Option<String>,
    /// Seconds the runs took.
    wall: f64,
    /// Time-to-first-byte p50 of each run, in run order.
    round_ttfb_p50_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, t: Tally) {
        self.ttfb_us.extend(t.ttfb_us);
        self.stream_rates.extend(t.stream_rates);
        self.events += t.events;
        self.streams += t.streams;
        self.errors += t.errors;
        self.last_error = self.last_error.take().or(t.last_error);
        self.wall += t.wall;
        self.round_ttfb_p50_us.extend(t.round_ttfb_p50_us);
    }

    /// The tally as a result point: rates over the runs' total time, percentiles over every
    /// stream, and each run's TTFB p50 (for the budget's paired comparison).
    pub fn summary(mut self, concurrency: usize) -> Value {
        let wall = self.wall.max(1e-9);
        self.ttfb_us.sort_unstable();
        self.stream_rates.sort_by(f64::total_cmp);
        json!({
            "concurrency": concurrency,
            "streams": self.streams,
            "errors": self.errors,
            "last_error": self.last_error,
            "streams_per_s": self.streams as f64 / wall,
            "events_per_s": self.events as f64 / wall,
            "ttfb_p50_us": percentile(&self.ttfb_us, 50.0),
            "ttfb_p99_us": percentile(&self.ttfb_us, 99.0),
            "stream_events_per_s_p50": self.stream_rates.get(self.stream_rates.len() / 2).copied().unwrap_or(0.0),
            "rounds_ttfb_p50_us": self.round_ttfb_p50_us,
        })
    }
}

/// Runs the streaming measurement against `origin` (`http(s)://127.0.0.1:PORT`) once and
/// adds it to `into`; `chunks` is what the mock sends per stream.
pub async fn run(
    origin: &str,
    key: Option<String>,
    model: &str,
    chunks: usize,
    concurrency: usize,
    duration: Duration,
    into: &mut Tally,
) -> Result<()> {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Count to fifty."}],
        "stream": true
    })
    .to_string();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (key, body, origin) = (key.clone(), body.clone(), origin.to_string());
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    match one(&origin, key.as_deref(), &body).await {
                        Ok((ttfb, events, span)) if events as usize > chunks => {
                            t.ttfb_us.push(ttfb.as_micros() as u64);
                            if !span.is_zero() {
                                t.stream_rates.push(events as f64 / span.as_secs_f64());
                            }
                            t.events += events;
                            t.streams += 1;
                        }
                        Ok((_, events, _)) => {
                            t.errors += 1;
                            t.last_error =
                                Some(format!("{events} events, expected {}", chunks + 1));
                        }
                        Err(e) => {
                            t.errors += 1;
                            t.last_error = Some(format!("{e:#}"));
                        }
                    }
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        all.merge(task.await?);
    }
    all.wall = started.elapsed().as_secs_f64();
    all.ttfb_us.sort_unstable();
    all.round_ttfb_p50_us = vec![percentile(&all.ttfb_us, 50.0)];
    into.merge(all);
    Ok(())
}

/// One stream: (time to first body byte, `data:` events other than `[DONE]`, first to last
/// byte).
async fn one(origin: &str, key: Option<&str>, body: &str) -> Result<(Duration, u64, Duration)> {
    let start = Instant::now();
    let resp = client().request(chat_request(origin, key, body)?).await?;
    anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
    let mut body = resp.into_body();
    let (mut first, mut last) = (None, start);
    // Events may be split across frames: count them in the whole body at the end.
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
            all.extend_from_slice(data);
        }
    }
    anyhow::ensure!(
        count(&all, b"data: [DONE]") == 1,
        "stream ended without [DONE]"
    );
    let events = count(&all, b"data: ") - 1;
    let first = first.unwrap_or(last);
    Ok((first - start, events, last - first))
}

fn count(haystack: &[u8], needle: &[u8]) -> u64 {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count() as u64
}

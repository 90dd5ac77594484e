//! Streaming: `concurrency` clients each open streams back to back for `duration`,
//! recording the time to the first body byte and how fast the SSE events arrive.

use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::http::{chat_request, client};
use crate::report::percentile;

#[derive(Default)]
struct Tally {
    ttfb_us: Vec<u64>,
    /// Events per second within each stream (first to last byte).
    stream_rates: Vec<f64>,
    events: u64,
    streams: u64,
    errors: u64,
    last_error: Option<String>,
}

/// Runs the streaming measurement against `port`; `chunks` is what the mock sends per stream.
pub async fn run(
    port: u16,
    key: Option<String>,
    model: &str,
    chunks: usize,
    concurrency: usize,
    duration: Duration,
) -> Result<Value> {
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
            let (key, body) = (key.clone(), body.clone());
            tokio::spawn(async move {
                let mut t = Tally::default();
                while Instant::now() < deadline {
                    match one(port, key.as_deref(), &body).await {
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
        let t = task.await?;
        all.ttfb_us.extend(t.ttfb_us);
        all.stream_rates.extend(t.stream_rates);
        all.events += t.events;
        all.streams += t.streams;
        all.errors += t.errors;
        all.last_error = all.last_error.or(t.last_error);
    }
    let wall = started.elapsed().as_secs_f64();
    all.ttfb_us.sort_unstable();
    all.stream_rates.sort_by(f64::total_cmp);
    Ok(json!({
        "concurrency": concurrency,
        "streams": all.streams,
        "errors": all.errors,
        "last_error": all.last_error,
        "streams_per_s": all.streams as f64 / wall,
        "events_per_s": all.events as f64 / wall,
        "ttfb_p50_us": percentile(&all.ttfb_us, 50.0),
        "ttfb_p99_us": percentile(&all.ttfb_us, 99.0),
        "stream_events_per_s_p50": all.stream_rates.get(all.stream_rates.len() / 2).copied().unwrap_or(0.0),
    }))
}

/// One stream: (time to first body byte, `data:` events other than `[DONE]`, first to last
/// byte).
async fn one(port: u16, key: Option<&str>, body: &str) -> Result<(Duration, u64, Duration)> {
    let start = Instant::now();
    let resp = client().request(chat_request(port, key, body)?).await?;
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

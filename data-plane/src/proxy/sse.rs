//! OpenAI stream tap: forwards server-sent events as they complete, reads the usage chunk,
//! and drops it when the gateway (not the client) asked for it. Until the usage chunk comes
//! (it is the last one), output tokens are estimated at one per content or tool-arguments
//! delta, OpenAI's streaming granularity, so a stream cut short still counts what it sent.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;

use super::json_scan::{members, top_level_value};
use super::stream::StreamProcessor;
use crate::usage::Tokens;

/// A partial event larger than this is flushed as is (a misbehaving upstream must not make
/// us buffer without bound; the usage chunk is small and never this large).
const MAX_PENDING: usize = 1024 * 1024;

/// The processor of OpenAI-format streams.
#[derive(Debug, Default)]
pub struct OpenAiUsageTap {
    pending: BytesMut,
    drop_usage_chunk: bool,
    tokens: Option<Tokens>,
    /// Events carrying generated text or tool arguments seen so far.
    deltas: u64,
}

impl OpenAiUsageTap {
    /// `drop_usage_chunk`: the gateway injected `include_usage`, so the client must not see it.
    pub fn new(drop_usage_chunk: bool) -> Self {
        Self {
            pending: BytesMut::new(),
            drop_usage_chunk,
            tokens: None,
            deltas: 0,
        }
    }

    fn filter(&mut self, events: Bytes) -> Bytes {
        self.deltas += count_text_deltas(&events);
        if USAGE_KEY.find(&events).is_none() {
            return events;
        }
        let mut out = BytesMut::with_capacity(events.len());
        let mut dropped = false;
        let mut start = 0;
        for end in event_ends(&events).chain(std::iter::once(events.len())) {
            let Some(ev) = events.get(start..end) else {
                break;
            };
            start = end;
            if ev.is_empty() {
                continue;
            }
            if USAGE_KEY.find(ev).is_some()
                && let Some((tokens, no_choices)) = parse_usage(ev)
            {
                self.tokens = Some(tokens);
                if self.drop_usage_chunk && no_choices {
                    dropped = true;
                    continue;
                }
            }
            out.extend_from_slice(ev);
        }
        if dropped { out.freeze() } else { events }
    }
}

impl StreamProcessor for OpenAiUsageTap {
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        // Fast path: a chunk that is exactly whole events goes out without a copy.
        if self.pending.is_empty() && ends_with_boundary(&chunk) {
            return Ok(self.filter(chunk));
        }
        self.pending.extend_from_slice(&chunk);
        match event_ends(&self.pending).last() {
            Some(end) => {
                let complete = self.pending.split_to(end).freeze();
                Ok(self.filter(complete))
            }
            None if self.pending.len() > MAX_PENDING => Ok(self.pending.split().freeze()),
            None => Ok(Bytes::new()),
        }
    }

    fn finish(&mut self) -> Bytes {
        let rest = self.pending.split().freeze();
        self.filter(rest)
    }

    fn tokens(&self) -> Option<Tokens> {
        self.tokens.or_else(|| {
            (self.deltas > 0).then_some(Tokens {
                input: 0,
                output: self.deltas,
            })
        })
    }
}

/// How many of the OpenAI-format `events` carry generated text or tool-call arguments (a
/// non-empty `"content"` or `"arguments"` string): a cheap byte scan, no JSON parsing.
pub fn count_text_deltas(events: &[u8]) -> u64 {
    let mut count = 0;
    let mut start = 0;
    for end in event_ends(events).chain(std::iter::once(events.len())) {
        let Some(ev) = events.get(start..end) else {
            break;
        };
        start = end;
        if has_text_value(ev, &CONTENT_KEY) || has_text_value(ev, &ARGUMENTS_KEY) {
            count += 1;
        }
    }
    count
}

/// Whether `key` (quoted) occurs as a JSON key whose value is a non-empty string.
fn has_text_value(ev: &[u8], key: &Finder<'static>) -> bool {
    let mut from = 0;
    while let Some(at) = ev.get(from..).and_then(|rest| key.find(rest)) {
        let at = from + at;
        from = at + key.needle().len();
        // `\"content\"` inside a string value is text, not a key.
        if at > 0 && ev.get(at - 1) == Some(&b'\\') {
            continue;
        }
        let mut rest = ev.get(from..).unwrap_or_default().trim_ascii_start();
        let Some(after_colon) = rest.strip_prefix(b":") else {
            continue;
        };
        rest = after_colon.trim_ascii_start();
        if let Some(value) = rest.strip_prefix(b"\"")
            && value.first().is_some_and(|b| *b != b'"')
        {
            return true;
        }
    }
    false
}

/// The top-level `usage` of an OpenAI-format chunk or answer (`None` when absent, null, or
/// a count is not a whole number); a missing count is 0. Only scanned, like the answer
/// around it (see `json_scan`).
fn usage_of(json: &[u8]) -> Option<Tokens> {
    let usage = top_level_value(json, b"usage")?;
    let mut tokens = Tokens {
        input: 0,
        output: 0,
    };
    for (key, value) in members(usage)? {
        let count = match key {
            b"prompt_tokens" => &mut tokens.input,
            b"completion_tokens" => &mut tokens.output,
            _ => continue,
        };
        *count = std::str::from_utf8(value).ok()?.parse().ok()?;
    }
    Some(tokens)
}

/// Tokens of an event carrying `usage`, and whether it has no choices (the extra chunk).
fn parse_usage(event: &[u8]) -> Option<(Tokens, bool)> {
    let data = event
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(|d| d.trim_ascii())
        .find(|d| d.first() == Some(&b'{'))?;
    let tokens = usage_of(data)?;
    let no_choices = match top_level_value(data, b"choices") {
        None => true,
        Some(c) => {
            c == b"null"
                || c.strip_prefix(b"[")
                    .and_then(|c| c.strip_suffix(b"]"))
                    .is_some_and(|inner| inner.trim_ascii().is_empty())
        }
    };
    Some((tokens, no_choices))
}

/// The token counts of a whole (non-streamed) OpenAI-format answer.
pub fn response_tokens(body: &[u8]) -> Option<Tokens> {
    usage_of(body)
}

/// Offsets just past each blank line (`\n\n` or `\r\n\r\n`) ending an event.
fn event_ends(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    buf.iter().enumerate().filter_map(|(i, b)| {
        if *b != b'\n' {
            return None;
        }
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

fn ends_with_boundary(buf: &[u8]) -> bool {
    buf.ends_with(b"\n\n") || buf.ends_with(b"\r\n\r\n")
}

/// The quoted keys looked for in every event, with their searchers built once (building
/// one per call cost more than the search).
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static CONTENT_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"content\""));
static ARGUMENTS_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"arguments\""));

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn usage_counts_of_an_answer() {
        let tokens = |json: &str| response_tokens(json.as_bytes()).map(|t| (t.input, t.output));
        assert_eq!(
            tokens(
                r#"{"choices":[],"usage":{"prompt_tokens":25,"completion_tokens":21,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":3}}}"#
            ),
            Some((25, 21))
        );
        assert_eq!(
            tokens(r#"{"usage":{"completion_tokens": 4 },"x":1}"#),
            Some((0, 4))
        );
        assert_eq!(tokens(r#"{"usage":null}"#), None);
        assert_eq!(tokens(r#"{"choices":[]}"#), None);
        assert_eq!(tokens(r#"{"usage":{"prompt_tokens":2.5}}"#), None);
        assert_eq!(tokens(r#"{"usage":{"prompt_tokens":-1}}"#), None);
        assert_eq!(tokens(r#"{"usage":{"prompt_tokens":null}}"#), None);
        assert_eq!(tokens(r#"{"usage":[1]}"#), None);
    }

    fn run(tap: &mut OpenAiUsageTap, pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for p in pieces {
            out.extend_from_slice(&tap.feed(Bytes::copy_from_slice(p)).expect("feed"));
        }
        out.extend_from_slice(&tap.finish());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn drops_injected_usage_chunk_even_when_split() {
        let all = format!("{CHUNK}{CHUNK}{USAGE}{DONE}");
        // Every split point: the result is the same.
        for cut in 0..all.len() {
            let mut tap = OpenAiUsageTap::new(true);
            let (a, b) = all.as_bytes().split_at(cut);
            assert_eq!(
                run(&mut tap, &[a, b]),
                format!("{CHUNK}{CHUNK}{DONE}"),
                "cut at {cut}"
            );
            assert_eq!(
                tap.tokens(),
                Some(Tokens {
                    input: 7,
                    output: 3
                })
            );
        }
    }

    #[test]
    fn keeps_usage_chunk_the_client_asked_for() {
        let mut tap = OpenAiUsageTap::new(false);
        let all = format!("{CHUNK}{USAGE}{DONE}");
        assert_eq!(run(&mut tap, &[all.as_bytes()]), all);
        assert_eq!(
            tap.tokens(),
            Some(Tokens {
                input: 7,
                output: 3
            })
        );
    }

    #[test]
    fn whole_events_pass_without_copy() {
        let mut tap = OpenAiUsageTap::new(true);
        let chunk = Bytes::from_static(CHUNK.as_bytes());
        assert_eq!(
            tap.feed(chunk.clone()).expect("feed").as_ptr(),
            chunk.as_ptr()
        );
    }

    #[test]
    fn counts_deltas_until_the_usage_chunk() {
        let mut tap = OpenAiUsageTap::new(true);
        let (head, tail) = CHUNK.as_bytes().split_at(20);
        for piece in [CHUNK.as_bytes(), head] {
            tap.feed(Bytes::copy_from_slice(piece)).expect("feed");
        }
        assert_eq!(
            tap.tokens(),
            Some(Tokens {
                input: 0,
                output: 1
            })
        );
        run(&mut tap, &[tail, USAGE.as_bytes()]);
        assert_eq!(
            tap.tokens(),
            Some(Tokens {
                input: 7,
                output: 3
            })
        );
    }

    #[test]
    fn text_delta_cases() {
        let check = |ev: &str, n: u64| assert_eq!(count_text_deltas(ev.as_bytes()), n, "{ev}");
        check(CHUNK, 1);
        check(&format!("{CHUNK}{CHUNK}{DONE}"), 2);
        check(USAGE, 0);
        check(DONE, 0);
        check(
            r#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
            0,
        );
        check(r#"data: {"choices":[{"delta":{"content":null}}]}"#, 0);
        check(r#"data: {"choices":[{"delta":{"content" : "x"}}]}"#, 1);
        check(
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]}}]}"#,
            1,
        );
        check(
            r#"data: {"choices":[{"delta":{"reasoning":"say \"content\": \"x\""}}]}"#,
            0,
        );
        check("data: \"content\"", 0);
        check("", 0);
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut tap = OpenAiUsageTap::new(true);
        let out = run(
            &mut tap,
            &[
                b"\xff\xfe\n\ndata: {\"usage\": 5}\r\n\r\ndata: {\"usage\"",
                b"\n",
            ],
        );
        assert!(out.contains("\"usage\": 5"));
        assert_eq!(tap.tokens(), None);
    }
}

//! Property-style checks: arbitrary bytes never panic, and the stream always closes.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::providers::bedrock::{
    AwsCredentials, StreamTranslator, sign_request, translate_error, translate_request,
    translate_response,
};

use super::{event_stream, fixture, frame};

/// xorshift64*: deterministic, no dependency, good enough to shake parsers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Random bytes biased toward JSON syntax and event-stream lengths.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"{}[]\":,\\ \n\r0123456789-.eEtruefalsnl:\x00\x00\x00\x10\x20";
        let len = self.below(max);
        (0..len)
            .map(|_| {
                if self.below(4) == 0 {
                    self.next() as u8
                } else {
                    ALPHABET[self.below(ALPHABET.len())]
                }
            })
            .collect()
    }

    /// A copy of `input` with a few bytes replaced, inserted or removed.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(3) {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.insert(at, b"{}\":,\n"[self.below(6)]),
                _ if at < out.len() => {
                    out.remove(at);
                }
                _ => {}
            }
        }
        out
    }

    /// A stream fixture whose JSON payloads are mutated, then framed correctly (so the
    /// mutations reach the event parsing, past the CRCs).
    fn mutated_stream(&mut self, name: &str) -> Vec<u8> {
        let events: Vec<Map<String, Value>> =
            serde_json::from_slice(&fixture(name)).expect("fixture");
        let mut body = Vec::new();
        for event in events {
            for (kind, payload) in event {
                let payload = serde_json::to_vec(&payload).expect("JSON");
                let payload = if self.below(3) == 0 {
                    self.mutate(&payload)
                } else {
                    payload
                };
                let (message_type, header) = if kind.starts_with("exception:") {
                    ("exception", ":exception-type")
                } else {
                    ("event", ":event-type")
                };
                body.extend(frame(message_type, header, &kind, &payload));
            }
        }
        body
    }
}

const JSON_FIXTURES: [&str; 8] = [
    "openai_plain_chat.json",
    "openai_system_multi_turn.json",
    "openai_tools.json",
    "openai_tool_results.json",
    "openai_image_parts.json",
    "bedrock_text.json",
    "bedrock_tool_use.json",
    "bedrock_only_tool_use.json",
];

const STREAM_FIXTURES: [&str; 3] = [
    "bedrock_stream_text.json",
    "bedrock_stream_tool_use.json",
    "bedrock_stream_exception.json",
];

#[test]
fn fuzz_random_and_mutated_input_never_panics() {
    let fixtures: Vec<Vec<u8>> = JSON_FIXTURES.iter().map(|name| fixture(name)).collect();
    let streams: Vec<Vec<u8>> = STREAM_FIXTURES
        .iter()
        .map(|name| event_stream(name))
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let input = match round % 4 {
            0 => rng.bytes(300),
            1 => {
                let source = &fixtures[rng.below(fixtures.len())];
                rng.mutate(source)
            }
            2 => {
                let source = &streams[rng.below(streams.len())];
                rng.mutate(source)
            }
            _ => {
                let name = STREAM_FIXTURES[rng.below(STREAM_FIXTURES.len())];
                rng.mutated_stream(name)
            }
        };
        let _ = translate_request(&input);
        let _ = translate_response(&input, "gpt-4o", None);
        let header = String::from_utf8_lossy(&input[..input.len().min(40)]).into_owned();
        let (status, body) = translate_error(400 + rng.below(200) as u16, Some(&header), &input);
        assert!((400..600).contains(&status));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());

        let mut t = StreamTranslator::new("gpt-4o", round % 3 == 0, None);
        let mut out = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(rng.below(rest.len()) + 1);
            if let Ok(bytes) = t.feed(piece) {
                out.extend(bytes);
            }
            rest = tail;
        }
        out.extend(t.finish());
        assert!(out.ends_with(b"data: [DONE]\n\n"), "stream always closes");
        assert_eq!(out.windows(12).filter(|w| w == b"data: [DONE]").count(), 1);
    }
}

#[test]
fn fuzz_signing_never_panics() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let pieces = [
        "https://",
        "http://",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "127.0.0.1:9",
        "/model/",
        "a%3Ab",
        "%",
        "%zz",
        "?",
        "#",
        "x=1&y",
        "/converse",
        "@",
        ":",
        " ",
        "\n",
        "é",
        "..",
        "/./",
        "//",
    ];
    let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for _ in 0..2000 {
        let mut url = String::new();
        for _ in 0..rng.below(8) {
            url.push_str(pieces[rng.below(pieces.len())]);
        }
        let value = String::from_utf8_lossy(&rng.bytes(20)).into_owned();
        let name = String::from_utf8_lossy(&rng.bytes(8)).into_owned();
        let headers = [
            ("content-type", "application/json"),
            (&name[..], &value[..]),
        ];
        let credentials = AwsCredentials {
            access_key_id: &value,
            secret_access_key: &name,
            session_token: (rng.below(2) == 0).then_some(&value[..]),
        };
        let region = pieces[rng.below(pieces.len())];
        let _ = sign_request("POST", &url, &headers, &[], region, &credentials, time);
    }
}

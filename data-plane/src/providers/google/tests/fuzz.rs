//! Property-style checks: arbitrary bytes never panic, and the stream always closes.

use crate::providers::google::{
    StreamTranslator, translate_error, translate_request, translate_response,
};

use super::fixture;

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

    /// Random bytes biased toward JSON and SSE syntax.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"{}[]\":,\\ \n\r0123456789-.eEtruefalsnl:data event type";
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
}

const FIXTURES: [&str; 12] = [
    "openai_plain_chat.json",
    "openai_system_multi_turn.json",
    "openai_tools.json",
    "openai_tool_results.json",
    "openai_image_parts.json",
    "gemini_text.json",
    "gemini_function_call.json",
    "gemini_only_function_call.json",
    "gemini_prompt_blocked.json",
    "gemini_stream_text.sse",
    "gemini_stream_function_call.sse",
    "gemini_stream_error.sse",
];

#[test]
fn fuzz_random_and_mutated_input_never_panics() {
    let fixtures: Vec<Vec<u8>> = FIXTURES.iter().map(|name| fixture(name)).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let input = if round % 2 == 0 {
            rng.bytes(300)
        } else {
            let source = &fixtures[rng.below(fixtures.len())];
            rng.mutate(source)
        };
        let _ = translate_request(&input);
        let _ = translate_response(&input, "gpt-4o");
        let (status, body) = translate_error(400 + rng.below(200) as u16, &input);
        assert!((400..600).contains(&status));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());

        let mut t = StreamTranslator::new("gpt-4o", round % 3 == 0);
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

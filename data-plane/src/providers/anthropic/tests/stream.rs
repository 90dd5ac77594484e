//! Anthropic SSE → OpenAI SSE.

use serde_json::Value;

use super::fixture;
use crate::providers::anthropic::{StreamTranslator, TranslateError, Usage};
use crate::tests::conformance::{self, Capability, Provider};

const CREATED: u64 = 1_700_000_000;

fn translator(include_usage: bool) -> StreamTranslator {
    StreamTranslator::with_created("gpt-4o", include_usage, CREATED)
}

/// Feeds `input` in the given pieces, then finishes; returns all output as text.
fn run(t: &mut StreamTranslator, pieces: &[&[u8]]) -> String {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(t.feed(piece).expect("valid stream"));
    }
    out.extend(t.finish());
    String::from_utf8(out).expect("UTF-8 output")
}

fn whole(name: &str, include_usage: bool) -> String {
    run(&mut translator(include_usage), &[&fixture(name)])
}

/// The JSON payloads of an OpenAI SSE output (without `[DONE]`).
fn chunks(output: &str) -> Vec<Value> {
    output
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("chunk is JSON"))
        .collect()
}

#[test]
fn stream_text() {
    let mut t = translator(true);
    let out = run(&mut t, &[&fixture("anthropic_stream_text.sse")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 25,
            output_tokens: 15
        }
    );
    conformance::passed(
        Provider::Anthropic,
        &[Capability::Stream, Capability::Usage],
    );
}

#[test]
fn stream_text_split_at_every_byte_boundary() {
    let input = fixture("anthropic_stream_text.sse");
    let expected = whole("anthropic_stream_text.sse", true);
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(
            run(&mut translator(true), &[a, b]),
            expected,
            "split at byte {i}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        run(&mut translator(true), &bytes),
        expected,
        "one byte at a time"
    );
    for size in [2, 3, 7, 64] {
        let pieces: Vec<&[u8]> = input.chunks(size).collect();
        assert_eq!(
            run(&mut translator(true), &pieces),
            expected,
            "chunks of {size}"
        );
    }
}

#[test]
fn stream_line_endings_crlf_and_cr() {
    let input = String::from_utf8(fixture("anthropic_stream_text.sse")).expect("UTF-8");
    let expected = whole("anthropic_stream_text.sse", true);
    for ending in ["\r\n", "\r"] {
        let converted = input.replace('\n', ending).into_bytes();
        for i in 0..=converted.len() {
            let (a, b) = converted.split_at(i);
            assert_eq!(
                run(&mut translator(true), &[a, b]),
                expected,
                "{ending:?} split at {i}"
            );
        }
    }
}

#[test]
fn stream_text_without_include_usage() {
    let out = whole("anthropic_stream_text.sse", false);
    assert!(!out.contains("usage"), "{out}");
    let chunks = chunks(&out);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        serde_json::json!({ "role": "assistant", "content": "" })
    );
    assert_eq!(
        chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some("stop".into())
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_tool_use() {
    let mut t = translator(true);
    let input = fixture("anthropic_stream_tool_use.sse");
    let out = run(&mut t, &[&input]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 472,
            output_tokens: 89
        }
    );

    // What a client accumulates per tool index is the tool's input JSON.
    let mut arguments = vec![String::new(); 2];
    for chunk in chunks(&out) {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().expect("index") as usize;
            arguments[i].push_str(call["function"]["arguments"].as_str().expect("arguments"));
        }
    }
    let first: Value = serde_json::from_str(&arguments[0]).expect("JSON");
    assert_eq!(
        first,
        serde_json::json!({ "location": "San Francisco, CA", "unit": "fahrenheit" })
    );
    assert_eq!(arguments[1], "{}");

    let pieces: Vec<&[u8]> = input.chunks(5).collect();
    assert_eq!(run(&mut translator(true), &pieces), out);
    conformance::passed(
        Provider::Anthropic,
        &[Capability::StreamedTools, Capability::Usage],
    );
}

#[test]
fn stream_error_event_mid_stream() {
    let mut t = translator(true);
    let out = run(&mut t, &[&fixture("anthropic_stream_error.sse")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 12,
            output_tokens: 1
        }
    );
    conformance::passed(Provider::Anthropic, &[Capability::Errors]);
}

#[test]
fn stream_upstream_ended_early() {
    let input = String::from_utf8(fixture("anthropic_stream_tool_use.sse")).expect("UTF-8");
    // Cut in the middle of the tool input, inside an event.
    let cut = input.find("renheit").expect("fixture has it");
    let mut t = translator(true);
    let out = run(&mut t, &[&input.as_bytes()[..cut]]);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 472,
            output_tokens: 2
        }
    );
    let mut tail: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
    tail.reverse();
    assert_eq!(tail[0], "data: [DONE]");
    assert_eq!(
        tail[1],
        r#"data: {"error":{"message":"the upstream stream ended before the message was complete","type":"upstream_error","param":null,"code":null}}"#
    );
    // Ended right after the stop reason: a complete answer, closed normally.
    let cut = input.find("event: message_stop").expect("fixture has it");
    let out = run(&mut translator(false), &[&input.as_bytes()[..cut]]);
    assert!(
        out.ends_with("\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n"),
        "{out}"
    );
    // Nothing at all: still a well-formed close.
    let out = run(&mut translator(false), &[]);
    assert!(
        out.ends_with("data: [DONE]\n\n") && out.contains("\"error\""),
        "{out}"
    );
}

#[test]
fn stream_last_event_without_blank_line() {
    let input = whole("anthropic_stream_text.sse", true);
    let raw = String::from_utf8(fixture("anthropic_stream_text.sse")).expect("UTF-8");
    let trimmed = raw.trim_end();
    assert_eq!(run(&mut translator(true), &[trimmed.as_bytes()]), input);
}

#[test]
fn stream_bad_event_then_finish() {
    let input = String::from_utf8(fixture("anthropic_stream_text.sse")).expect("UTF-8");
    let cut = input.find("event: ping").expect("fixture has it");
    let mut bad = input[..cut].to_owned();
    bad.push_str("data: {not json\n\n");
    bad.push_str(&input[cut..]);

    let mut t = translator(false);
    let err = t.feed(bad.as_bytes()).expect_err("garbage is reported");
    assert!(
        matches!(err, TranslateError::BadUpstream(ref m) if m.contains("invalid stream event")),
        "{err:?}"
    );
    // Later bytes are ignored; finish owes the chunks before the bad event, an error, [DONE].
    assert_eq!(t.feed(b"data: {\"type\":\"ping\"}\n\n"), Ok(Vec::new()));
    let rest = String::from_utf8(t.finish()).expect("UTF-8");
    let chunks = chunks(&rest);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.last().is_some_and(|c| {
        c["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid stream event"))
    }));
    assert!(rest.ends_with("data: [DONE]\n\n"));
    assert!(t.finish().is_empty(), "finish is idempotent");
}

#[test]
fn stream_ignores_input_after_done() {
    let input = fixture("anthropic_stream_text.sse");
    let mut t = translator(false);
    let first = t.feed(&input).expect("valid");
    assert!(first.ends_with(b"data: [DONE]\n\n"));
    assert_eq!(t.feed(&input), Ok(Vec::new()));
    assert!(t.finish().is_empty());
}

#[test]
fn stream_cache_tokens_and_comments() {
    let input = concat!(
        ": a comment line\n",
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\n",
        "data: \"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let mut t = translator(true);
    let out = run(&mut t, &[input.as_bytes()]);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 2105,
            output_tokens: 7
        }
    );
    let chunks = chunks(&out);
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
    let usage = &chunks[2]["usage"];
    assert_eq!(usage["prompt_tokens"], 2105);
    assert_eq!(usage["total_tokens"], 2112);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2000);
    assert_eq!(chunks[2]["choices"], serde_json::json!([]));
    conformance::passed(Provider::Anthropic, &[Capability::Usage]);
}

//! Gemini SSE → OpenAI SSE.

use serde_json::{Value, json};

use super::fixture;
use crate::providers::google::{StreamTranslator, TranslateError, Usage};
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
    let out = run(&mut t, &[&fixture("gemini_stream_text.sse")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 9,
            output_tokens: 12
        }
    );
    conformance::passed(Provider::Google, &[Capability::Stream, Capability::Usage]);
}

#[test]
fn stream_split_at_every_byte_boundary() {
    for name in [
        "gemini_stream_text.sse",
        "gemini_stream_function_call.sse",
        "gemini_stream_error.sse",
    ] {
        let input = fixture(name);
        let expected = whole(name, true);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(
                run(&mut translator(true), &[a, b]),
                expected,
                "{name} split at byte {i}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            run(&mut translator(true), &bytes),
            expected,
            "{name} one byte at a time"
        );
        for size in [2, 3, 7, 64] {
            let pieces: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(
                run(&mut translator(true), &pieces),
                expected,
                "{name} chunks of {size}"
            );
        }
    }
}

#[test]
fn stream_line_endings() {
    let input = String::from_utf8(fixture("gemini_stream_function_call.sse")).expect("UTF-8");
    let expected = whole("gemini_stream_function_call.sse", true);
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
    let out = whole("gemini_stream_text.sse", false);
    assert!(!out.contains("usage"), "{out}");
    let chunks = chunks(&out);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({ "role": "assistant", "content": "" })
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
fn stream_function_calls() {
    let mut t = translator(true);
    let out = run(&mut t, &[&fixture("gemini_stream_function_call.sse")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 61,
            output_tokens: 25 + 34
        }
    );
    // Each call arrives whole, in one delta.
    let calls: Vec<Value> = chunks(&out)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(
        calls,
        vec![
            json!({ "index": 0, "id": "call_0", "type": "function", "function": { "name": "get_current_weather", "arguments": "{\"location\":\"Boston, MA\",\"unit\":\"fahrenheit\"}" } }),
            json!({ "index": 1, "id": "call_1", "type": "function", "function": { "name": "get_time", "arguments": "{}" } }),
        ]
    );
    conformance::passed(
        Provider::Google,
        &[Capability::StreamedTools, Capability::Usage],
    );
}

#[test]
fn stream_error_event_mid_stream() {
    let mut t = translator(true);
    let out = run(&mut t, &[&fixture("gemini_stream_error.sse")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 5,
            output_tokens: 2
        }
    );
    conformance::passed(Provider::Google, &[Capability::Errors]);
}

#[test]
fn stream_upstream_ended_early() {
    let input = String::from_utf8(fixture("gemini_stream_function_call.sse")).expect("UTF-8");
    // Cut inside the last event (the one with the calls and the finish reason).
    let cut = input.find("fahrenheit").expect("fixture has it");
    let mut t = translator(true);
    let out = run(&mut t, &[&input.as_bytes()[..cut]]);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 61,
            output_tokens: 0
        }
    );
    let mut tail: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
    tail.reverse();
    assert_eq!(tail[0], "data: [DONE]");
    assert_eq!(
        tail[1],
        r#"data: {"error":{"message":"the upstream stream ended before the message was complete","type":"upstream_error","param":null,"code":null}}"#
    );
    // The last event without its closing blank line still completes the answer.
    let trimmed = input.trim_end();
    let out = run(&mut translator(false), &[trimmed.as_bytes()]);
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
fn stream_bad_event_then_finish() {
    let input = String::from_utf8(fixture("gemini_stream_text.sse")).expect("UTF-8");
    let cut = input
        .find("data: ")
        .and_then(|first| input[first + 1..].find("data: ").map(|i| i + first + 1))
        .expect("two events");
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
    assert_eq!(t.feed(input.as_bytes()), Ok(Vec::new()));
    let rest = String::from_utf8(t.finish()).expect("UTF-8");
    let chunks = chunks(&rest);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "The");
    assert!(chunks.last().is_some_and(|c| {
        c["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid stream event"))
    }));
    assert!(rest.ends_with("data: [DONE]\n\n"));
    assert!(t.finish().is_empty(), "finish is idempotent");
}

#[test]
fn stream_prompt_blocked_and_several_candidates() {
    let blocked = "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8}}\n\n";
    let out = run(&mut translator(false), &[blocked.as_bytes()]);
    let c = chunks(&out);
    assert_eq!(c.len(), 2, "{out}");
    assert_eq!(c[1]["choices"][0]["finish_reason"], "content_filter");
    assert!(
        out.ends_with("data: [DONE]\n\n") && !out.contains("error"),
        "{out}"
    );

    // n = 2: each candidate is a choice; the answer is complete when both have finished.
    let first = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}],\"role\":\"model\"},\"index\":0},",
        "{\"content\":{\"parts\":[{\"text\":\"B\"}],\"role\":\"model\"},\"index\":1}]}\n\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}]}\n\n",
    );
    let last = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"x\":1}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":1}]}\n\n";
    let out = run(&mut translator(false), &[first.as_bytes()]);
    assert!(
        out.contains("\"error\""),
        "candidate 1 never finished: {out}"
    );
    let out = run(&mut translator(false), &[first.as_bytes(), last.as_bytes()]);
    let c = chunks(&out);
    let summary: Vec<String> = c
        .iter()
        .map(|c| {
            let choice = &c["choices"][0];
            format!(
                "{} {} {}",
                choice["index"], choice["delta"], choice["finish_reason"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            r#"0 {"content":"","role":"assistant"} null"#,
            r#"0 {"content":"A"} null"#,
            r#"1 {"content":"","role":"assistant"} null"#,
            r#"1 {"content":"B"} null"#,
            r#"0 {"content":"!"} null"#,
            r#"0 {} "stop""#,
            r#"1 {"tool_calls":[{"function":{"arguments":"{\"x\":1}","name":"f"},"id":"call_0","index":0,"type":"function"}]} null"#,
            r#"1 {} "tool_calls""#,
        ]
    );
}

//! ConverseStream event-stream frames → OpenAI SSE.

use serde_json::{Value, json};

use super::{event_stream, frame};
use crate::providers::bedrock::{StreamTranslator, TranslateError, Usage};
use crate::tests::conformance::{self, Capability, Provider};

const CREATED: u64 = 1_700_000_000;
const REQUEST_ID: &str = "6a8b2f3e-1c4d-4e5f-8a9b-0c1d2e3f4a5b";

fn translator(include_usage: bool) -> StreamTranslator {
    StreamTranslator::with_created("gpt-4o", include_usage, Some(REQUEST_ID), CREATED)
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
    run(&mut translator(include_usage), &[&event_stream(name)])
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
    let out = run(&mut t, &[&event_stream("bedrock_stream_text.json")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 9,
            output_tokens: 12
        }
    );
    conformance::passed(Provider::Aws, &[Capability::Stream, Capability::Usage]);
}

#[test]
fn stream_split_at_every_byte_boundary() {
    for name in [
        "bedrock_stream_text.json",
        "bedrock_stream_tool_use.json",
        "bedrock_stream_exception.json",
    ] {
        let input = event_stream(name);
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
fn stream_text_without_include_usage() {
    let out = whole("bedrock_stream_text.json", false);
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
fn stream_tool_use() {
    let mut t = translator(true);
    let out = run(&mut t, &[&event_stream("bedrock_stream_tool_use.json")]);
    insta::assert_snapshot!(out);
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 475,
            output_tokens: 48
        }
    );
    // What a client accumulates per tool index is the tool's input JSON.
    let mut arguments = String::new();
    for chunk in chunks(&out) {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0);
            arguments.push_str(call["function"]["arguments"].as_str().expect("arguments"));
        }
    }
    let input: Value = serde_json::from_str(&arguments).expect("JSON");
    assert_eq!(input, json!({ "sign": "WZPZ" }));
    conformance::passed(
        Provider::Aws,
        &[Capability::StreamedTools, Capability::Usage],
    );
}

#[test]
fn stream_exception_mid_stream() {
    let mut t = translator(true);
    let out = run(&mut t, &[&event_stream("bedrock_stream_exception.json")]);
    insta::assert_snapshot!(out);
    assert!(!out.contains("never sent"));
    assert_eq!(t.usage(), Usage::default());
    conformance::passed(Provider::Aws, &[Capability::Errors]);
}

#[test]
fn stream_error_frame() {
    let string = |s: &str| aws_smithy_types::event_stream::HeaderValue::String(s.to_owned().into());
    let message = aws_smithy_types::event_stream::Message::new(Vec::new())
        .add_header(aws_smithy_types::event_stream::Header::new(
            ":message-type",
            string("error"),
        ))
        .add_header(aws_smithy_types::event_stream::Header::new(
            ":error-code",
            string("InternalFailure"),
        ))
        .add_header(aws_smithy_types::event_stream::Header::new(
            ":error-message",
            string("the stream broke"),
        ));
    let mut input = frame(
        "event",
        ":event-type",
        "messageStart",
        br#"{"role":"assistant"}"#,
    );
    aws_smithy_eventstream::frame::write_message_to(&message, &mut input).expect("encodes");
    let out = run(&mut translator(false), &[&input]);
    let chunks = chunks(&out);
    assert_eq!(
        chunks.last().map(|c| c["error"].clone()),
        Some(json!({
            "message": "the stream broke", "type": "api_error", "param": null, "code": "InternalFailure"
        }))
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_upstream_ended_early() {
    let input = event_stream("bedrock_stream_tool_use.json");
    // Cut inside a frame.
    let mut t = translator(true);
    let out = run(&mut t, &[&input[..input.len() / 2]]);
    let mut tail: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
    tail.reverse();
    assert_eq!(tail[0], "data: [DONE]");
    assert_eq!(
        tail[1],
        r#"data: {"error":{"message":"the upstream stream ended before the message was complete","type":"upstream_error","param":null,"code":null}}"#
    );
    // Ended after messageStop but before metadata: a complete answer, closed normally.
    let rebuilt = event_stream("bedrock_stream_text.json");
    let without_metadata = &rebuilt[..rebuilt.len() - frame_len(&rebuilt, 6)];
    let out = run(&mut translator(true), &[without_metadata]);
    assert!(
        out.ends_with("\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\ndata: [DONE]\n\n"),
        "{out}"
    );
    // Nothing at all: still a well-formed close.
    let out = run(&mut translator(false), &[]);
    assert!(
        out.ends_with("data: [DONE]\n\n") && out.contains("\"error\""),
        "{out}"
    );
}

/// The length of frame `n` (0-based) of an event-stream body.
fn frame_len(body: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        at += u32::from_be_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
    }
    u32::from_be_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize
}

#[test]
fn stream_bad_frame_then_finish() {
    let input = event_stream("bedrock_stream_text.json");
    let second = frame_len(&input, 0);
    let mut bad = input.clone();
    // Flip a payload byte of the second frame: its message CRC no longer matches.
    let at = second + frame_len(&input, 1) - 10;
    bad[at] ^= 0xFF;

    let mut t = translator(false);
    let err = t.feed(&bad).expect_err("a corrupt frame is reported");
    assert!(
        matches!(err, TranslateError::BadUpstream(ref m) if m.contains("invalid event-stream frame")),
        "{err:?}"
    );
    // Later bytes are ignored; finish owes the chunks before the bad frame, an error, [DONE].
    assert_eq!(t.feed(&input), Ok(Vec::new()));
    let rest = String::from_utf8(t.finish()).expect("UTF-8");
    let chunks = chunks(&rest);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.last().is_some_and(|c| {
        c["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid event-stream frame"))
    }));
    assert!(rest.ends_with("data: [DONE]\n\n"));
    assert!(t.finish().is_empty(), "finish is idempotent");

    // A well-framed event whose payload is not JSON is just as fatal.
    let mut t = translator(false);
    let not_json = frame("event", ":event-type", "contentBlockDelta", b"{not json");
    let err = t.feed(&not_json).expect_err("bad payload");
    assert!(
        matches!(err, TranslateError::BadUpstream(ref m) if m.contains("invalid contentBlockDelta event")),
        "{err:?}"
    );
}

#[test]
fn stream_oversized_frame_is_refused() {
    let mut t = translator(false);
    // A prelude announcing a 1 GiB frame (its CRC is checked only once the frame is whole).
    let mut input = (1u32 << 30).to_be_bytes().to_vec();
    input.extend_from_slice(&[0; 8]);
    let mut fed = t.feed(&input);
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..17 {
        if fed.is_err() {
            break;
        }
        fed = t.feed(&chunk);
    }
    assert!(
        matches!(fed, Err(TranslateError::BadUpstream(ref m)) if m.contains("16 MiB")),
        "{fed:?}"
    );
}

#[test]
fn stream_ignores_input_after_done() {
    let input = event_stream("bedrock_stream_text.json");
    let mut t = translator(false);
    let first = t.feed(&input).expect("valid");
    assert!(first.ends_with(b"data: [DONE]\n\n"));
    assert_eq!(t.feed(&input), Ok(Vec::new()));
    assert!(t.finish().is_empty());
}

#[test]
fn stream_unknown_events_and_reasoning_are_skipped() {
    let mut input = frame(
        "event",
        ":event-type",
        "messageStart",
        br#"{"role":"assistant"}"#,
    );
    for (kind, payload) in [
        (
            "contentBlockDelta",
            &br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"thinking"}}}"#[..],
        ),
        ("somethingNew", b"not even JSON"),
        (
            "contentBlockDelta",
            br#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#,
        ),
        ("contentBlockDelta", br#"{"contentBlockIndex":1,"delta":{"text":"Hi"}}"#),
        ("messageStop", br#"{"stopReason":"max_tokens"}"#),
        (
            "metadata",
            br#"{"usage":{"inputTokens":5,"outputTokens":7,"cacheReadInputTokens":10,"cacheWriteInputTokens":1}}"#,
        ),
    ] {
        input.extend(frame("event", ":event-type", kind, payload));
    }
    let mut t = translator(true);
    let out = run(&mut t, &[&input]);
    assert!(!out.contains("thinking"), "{out}");
    let chunks = chunks(&out);
    assert_eq!(chunks.len(), 4, "{out}");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        chunks[3]["usage"],
        json!({
            "prompt_tokens": 16, "completion_tokens": 7, "total_tokens": 23,
            "prompt_tokens_details": { "cached_tokens": 10 }
        })
    );
    assert_eq!(
        t.usage(),
        Usage {
            input_tokens: 16,
            output_tokens: 7
        }
    );
}

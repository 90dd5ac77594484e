//! Golden tests: fixtures from the Bedrock and OpenAI documentation in `../fixtures/`,
//! expected output as `insta` snapshots in `snapshots/` (review changes with
//! `cargo insta review`, or run with `INSTA_UPDATE=always` and read the diff).
//!
//! Stream fixtures are JSON lists of `{"<event type>": payload}` (or
//! `{"exception:<type>": payload}`), encoded here into event-stream frames with
//! `aws-smithy-eventstream`'s own writer, as Bedrock frames them.

mod embed;
mod errors;
mod fuzz;
mod request;
mod response;
mod sign;
mod stream;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Map, Value};

/// A fixture file's bytes.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/providers/bedrock/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A stream fixture encoded as the event-stream body Bedrock sends.
fn event_stream(name: &str) -> Vec<u8> {
    let events: Vec<Map<String, Value>> =
        serde_json::from_slice(&fixture(name)).expect("stream fixture is a JSON list");
    let mut body = Vec::new();
    for event in events {
        for (kind, payload) in event {
            let payload = serde_json::to_vec(&payload).expect("JSON prints");
            body.extend(match kind.strip_prefix("exception:") {
                Some(exception) => frame("exception", ":exception-type", exception, &payload),
                None => frame("event", ":event-type", &kind, &payload),
            });
        }
    }
    body
}

/// One event-stream frame with Bedrock's headers.
fn frame(message_type: &str, type_header: &str, kind: &str, payload: &[u8]) -> Vec<u8> {
    let string = |s: &str| HeaderValue::String(s.to_owned().into());
    let message = Message::new(payload.to_vec())
        .add_header(Header::new(type_header.to_owned(), string(kind)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string(message_type)));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("frame encodes");
    out
}

/// JSON bytes pretty-printed with sorted keys, so snapshots do not depend on map order.
fn pretty(json: &[u8]) -> String {
    let value: Value = serde_json::from_slice(json).expect("output is JSON");
    serde_json::to_string_pretty(&sorted(value)).expect("JSON prints")
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

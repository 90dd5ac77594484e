//! Golden tests: fixtures from the providers' own documentation in `../fixtures/`, expected
//! output as `insta` snapshots in `snapshots/` (review changes with `cargo insta review`, or
//! run with `INSTA_UPDATE=always` and read the diff).

mod embed;
mod errors;
mod fuzz;
mod request;
mod response;
mod stream;

use serde_json::{Map, Value};

/// A fixture file's bytes.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/providers/google/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
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

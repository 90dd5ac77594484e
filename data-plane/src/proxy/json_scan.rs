//! Finding one top-level value in a provider's JSON answer without parsing the rest.
//!
//! Reading `usage` from a whole chat completion with serde walks (and checks) every byte of
//! every field; under load that was 5-9% of the data plane's user CPU. Provider answers are
//! not ours to validate, so this scanner only tracks structure: strings are skipped with
//! `memchr` (a backslash skips the byte after it), brackets counted, and at depth 1 each
//! string followed by `:` is a key. Since `usage` comes last in provider answers, the key is
//! first looked for from the end, and only the text after it is scanned. Only the value
//! found is then parsed with serde. Malformed input gives `None`, a slice serde then
//! refuses, or a plausible member: never a panic.

/// The raw text of the value of `key` in the JSON object `json`, if `key` is one of its
/// own (depth 1) keys. Keys are compared as written (an escaped key never matches). A key
/// given twice (not valid for any provider) yields one of the two values.
///
/// Providers put `usage` last or nearly last, so the text is first searched backwards for
/// the key (see [`trailing_value`]); only when that cannot prove the match top-level is
/// the object scanned from its start.
pub fn top_level_value<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    trailing_value(json, key).or_else(|| leading_value(json, key))
}

/// The value of the last `"key"` in `json` that is followed by `:`, when the rest of the
/// text after that value closes the root object: the object holding a member closes at the
/// very end of the text only if it is the root. A quoted `key` can only occur inside a
/// string after an escaped quote, which is checked for; any doubt gives `None`.
fn trailing_value<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    // Each quote, from the end, as the closing quote of the key: a few dozen steps for a
    // key near the end, without building a substring searcher per call.
    let mut quotes = memchr::memrchr_iter(b'"', json);
    let quoted_at = loop {
        let close = quotes.next()?;
        let open = close.checked_sub(key.len() + 1)?;
        if json[open] != b'"' || &json[open + 1..close] != key {
            continue;
        }
        let escapes = json[..open]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if escapes % 2 == 1 {
            return None;
        }
        let colon = skip_ws(json, close + 1);
        if json.get(colon) == Some(&b':') {
            break colon;
        }
        // A string value equal to the key: look further back.
    };
    let start = skip_ws(json, quoted_at + 1);
    let value_end = value_end(json, start)?;
    closes_root(json, value_end).then(|| &json[start..value_end])
}

/// Whether the members after `from` are well nested and the `}` closing their object is the
/// last non-blank byte of `json`.
fn closes_root(json: &[u8], mut i: usize) -> bool {
    let mut depth = 0usize;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => match string_end(json, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'{' | b'[' => depth += 1,
            b'}' if depth == 0 => return skip_ws(json, i + 1) == json.len(),
            b'}' | b']' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
        i += 1;
    }
    false
}

/// The members of the JSON object `json`, in order: each key's text as written and its
/// raw value. `None` when `json` is not an object; iteration stops at the first malformed
/// member. One pass over the object, for reading several members of a small one.
pub fn members(json: &[u8]) -> Option<impl Iterator<Item = (&[u8], &[u8])>> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    Some(std::iter::from_fn(move || {
        i = skip_ws(json, i);
        if json.get(i) == Some(&b',') {
            i = skip_ws(json, i + 1);
        }
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, i + 1)?;
        let key = &json[i + 1..key_end];
        let colon = skip_ws(json, key_end + 1);
        if json.get(colon) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, colon + 1);
        let end = value_end(json, start)?;
        i = end;
        Some((key, &json[start..end]))
    }))
}

/// [`top_level_value`] by a scan from the start; the first occurrence wins.
fn leading_value<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    members(json)?
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The index of the quote closing the string whose text starts at `from`.
fn string_end(json: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', json.get(from..)?)?;
        if json[at] == b'"' {
            return Some(at);
        }
        from = at + 2;
    }
}

/// The index just past the value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => string_end(json, start + 1).map(|e| e + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = json.get(i) {
                match b {
                    b'"' => i = string_end(json, i + 1)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        // A number or a literal: up to the next delimiter.
        _ => {
            let len = json[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(json.len() - start);
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(json: &'a str, key: &str) -> Option<&'a str> {
        top_level_value(json.as_bytes(), key.as_bytes())
            .map(|v| std::str::from_utf8(v).expect("utf-8"))
    }

    #[test]
    fn finds_only_top_level_keys() {
        let answer = r#"{"id":"c","choices":[{"message":{"content":"the \"usage\": 5 }","usage":1}}],
            "usage" : {"prompt_tokens":7,"completion_tokens":3,"details":{"a":[1,2]}} ,"x":null}"#;
        assert_eq!(
            value(answer, "usage"),
            Some(r#"{"prompt_tokens":7,"completion_tokens":3,"details":{"a":[1,2]}}"#)
        );
        assert_eq!(value(answer, "id"), Some(r#""c""#));
        assert_eq!(value(answer, "x"), Some("null"));
        assert_eq!(
            value(answer, "content"),
            None,
            "nested keys are not top-level"
        );
        assert_eq!(value(r#"{"usage":null}"#, "usage"), Some("null"));
        assert_eq!(value(r#"{"n": 12 }"#, "n"), Some("12"));
        assert_eq!(value(r#"{"a":"\\","usage":1}"#, "usage"), Some("1"));
        assert_eq!(value(r#"{"choices":[]}"#, "choices"), Some("[]"));
    }

    #[test]
    fn members_in_order() {
        let all = |json: &str| {
            members(json.as_bytes()).map(|m| {
                m.map(|(k, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            all(r#" { "a" : 1 ,"b":{"c":[1,"}"]}, "d":"x\"y" } "#),
            Some(vec![
                "a=1".into(),
                r#"b={"c":[1,"}"]}"#.into(),
                r#"d="x\"y""#.into()
            ])
        );
        assert_eq!(all("{}"), Some(vec![]));
        assert_eq!(all("[1]"), None);
        assert_eq!(
            all(r#"{"a":1,"b" 2}"#),
            Some(vec!["a=1".into()]),
            "stops at a bad one"
        );
        assert_eq!(all(r#"{"a":"#), Some(vec![]));
    }

    #[test]
    fn a_late_match_counts_only_when_it_is_top_level() {
        // The last "usage" is nested: the scan from the start finds the top-level one.
        let nested_last = r#"{"usage":{"a":1},"more":{"usage":2}}"#;
        assert_eq!(value(nested_last, "usage"), Some(r#"{"a":1}"#));
        // A string value equal to the key is not a key.
        assert_eq!(value(r#"{"usage":3,"k":"usage"}"#, "usage"), Some("3"));
        // Inside a string, after an escaped quote.
        assert_eq!(
            value(r#"{"usage":4,"k":"a \"usage":"}"#, "usage"),
            Some("4")
        );
        assert_eq!(value(r#"{"k":"a \"usage\": 5"}"#, "usage"), None);
        // Not a whole key.
        assert_eq!(value(r#"{"usage":6,"usage_x":7}"#, "usage"), Some("6"));
        assert_eq!(value(r#"{"k":1, "usage" : 8 }  "#, "usage"), Some("8"));
        assert_eq!(
            trailing_value(br#"{"a":[1,{"b":"}"}],"usage":9,"c":{"d":[]}}"#, b"usage"),
            Some(&b"9"[..]),
            "found from the end"
        );
        assert_eq!(
            trailing_value(br#"{"usage":9,"c":{"d":[]}"#, b"usage"),
            None
        );
    }

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"usage""#,
            r#"{"usage":"#,
            r#"{"usage":{"a":1"#,
            r#"{"a":"\"#,
            r#"{"a" 1,"usage":2}"#,
            "}}}",
            r#"{"usage":"x"#,
            "{\"a\":\"\\",
        ] {
            let _ = top_level_value(bad.as_bytes(), b"usage");
        }
        // Not valid JSON: the scan from the start stops at the early close, while the
        // search from the end reads the member before the last brace. Either is harmless.
        assert_eq!(leading_value(br#"{"a":1}} ,"usage":2}"#, b"usage"), None);
    }

    /// Every prefix and every one-byte corruption of a real answer: never a panic, and
    /// whenever serde reads a top-level `usage`, the scanner finds the same value.
    #[test]
    fn agrees_with_serde_on_mutations() {
        let answer = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\" {[","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11},"system_fingerprint":"fp"}"#;
        let serde_usage = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b)
                .ok()
                .and_then(|v| v.get("usage").cloned())
        };
        let scanned = |b: &[u8]| {
            top_level_value(b, b"usage")
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
        };
        for n in 0..=answer.len() {
            let _ = top_level_value(&answer[..n], b"usage");
        }
        for i in 0..answer.len() {
            for byte in [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'x'] {
                let mut m = answer.to_vec();
                m[i] = byte;
                if let Some(expected) = serde_usage(&m) {
                    assert_eq!(
                        scanned(&m),
                        Some(expected),
                        "{}",
                        String::from_utf8_lossy(&m)
                    );
                }
            }
        }
    }
}

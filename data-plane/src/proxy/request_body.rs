//! What routing needs from a chat request body, and the byte-level edits made to it.
//!
//! The body is forwarded as received: only the `model` value is replaced (and, for streams,
//! `stream_options.include_usage` turned on so the provider reports usage). Every other byte,
//! unknown fields included, is untouched; `serde_json` validates the whole document once and
//! borrows the spans we edit.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    // `present` keeps an explicit `null` as Some("null"): its span must be replaced, not
    // duplicated by an inserted key.
    #[serde(borrow, default, deserialize_with = "present")]
    stream_options: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The routing view of a chat completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFields {
    pub model: String,
    pub stream: bool,
    /// The client asked for the usage chunk itself (so it must not be dropped).
    pub client_wants_usage: bool,
    model_span: Range<usize>,
    /// Span of a present, non-null `stream_options` value.
    stream_options_span: Option<Range<usize>>,
    /// Offset just after the top-level `{`.
    object_start: usize,
}

/// Validates `body` as a JSON object and extracts the routing fields.
pub fn parse_chat(body: &[u8]) -> Result<ChatFields, ProxyError> {
    // serde would read a top-level array into the fields by position.
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(object_start) = first.filter(|&i| body[i] == b'{').map(|i| i + 1) else {
        return Err(ProxyError::InvalidJson(
            "the request body must be a JSON object".into(),
        ));
    };
    // JSON is UTF-8, and fields serde skips are not checked by it: the whole body is checked
    // once here, and serde reads the checked text without checking it again.
    let text = std::str::from_utf8(body).map_err(|e| {
        ProxyError::InvalidJson(format!(
            "the request body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let fields: Fields<'_> =
        serde_json::from_str(text).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let model_raw = fields.model.ok_or(ProxyError::MissingModel)?;
    let model: String =
        serde_json::from_str(model_raw.get()).map_err(|_| ProxyError::InvalidRequest {
            message: "`model` must be a string".into(),
            param: Some("model".into()),
        })?;
    if model.is_empty() {
        return Err(ProxyError::MissingModel);
    }
    let model_span = span_of(body, model_raw)?;
    let (client_wants_usage, stream_options_span) = match fields.stream_options {
        None => (false, None),
        Some(raw) => {
            let opts: Option<StreamOptions> =
                serde_json::from_str(raw.get()).map_err(|e| ProxyError::InvalidRequest {
                    message: format!("`stream_options` is invalid: {e}"),
                    param: Some("stream_options".into()),
                })?;
            (
                opts.and_then(|o| o.include_usage) == Some(true),
                Some(span_of(body, raw)?),
            )
        }
    };
    Ok(ChatFields {
        model,
        stream: fields.stream.unwrap_or(false),
        client_wants_usage,
        model_span,
        stream_options_span,
        object_start,
    })
}

/// Where `raw` (borrowed from `body` by serde) sits in `body`.
fn span_of(body: &[u8], raw: &RawValue) -> Result<Range<usize>, ProxyError> {
    let start = (raw.get().as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    let end = start.wrapping_add(raw.get().len());
    // Always true when serde borrowed from `body`; checked so an unexpected copy can never
    // make us splice at a wrong place.
    match body.get(start..end) {
        Some(slice) if slice == raw.get().as_bytes() => Ok(start..end),
        _ => Err(ProxyError::InvalidJson(
            "could not locate a field in the body".into(),
        )),
    }
}

/// The body to send upstream: `model` replaced by `upstream_model` and, when
/// `inject_usage`, `stream_options.include_usage` set to true. Returns `body` itself (no copy)
/// when nothing changes.
pub fn rewrite(
    body: &Bytes,
    fields: &ChatFields,
    upstream_model: &str,
    inject_usage: bool,
) -> Bytes {
    let model_unchanged = fields.model == upstream_model;
    if model_unchanged && !inject_usage {
        return body.clone();
    }
    // At most two edits, in a fixed array: the hot path (a model rename) allocates only
    // the output.
    let mut edits: [Option<(Range<usize>, Edit)>; 2] = [None, None];
    if !model_unchanged {
        edits[0] = Some((fields.model_span.clone(), Edit::Model));
    }
    if inject_usage {
        edits[1] = Some(match &fields.stream_options_span {
            Some(span) => {
                let mut opts: serde_json::Map<String, serde_json::Value> = body
                    .get(span.clone())
                    .and_then(|s| serde_json::from_slice(s).ok())
                    .unwrap_or_default();
                opts.insert("include_usage".into(), serde_json::Value::Bool(true));
                (
                    span.clone(),
                    Edit::Text(serde_json::Value::Object(opts).to_string()),
                )
            }
            None => (
                fields.object_start..fields.object_start,
                Edit::Text(r#""stream_options":{"include_usage":true},"#.to_owned()),
            ),
        });
    }
    edits.sort_by_key(|e| e.as_ref().map(|(r, _)| r.start));
    let mut out = Vec::with_capacity(body.len() + upstream_model.len() + 64);
    let mut at = 0;
    for (range, edit) in edits.into_iter().flatten() {
        out.extend_from_slice(body.get(at..range.start).unwrap_or_default());
        match edit {
            // Writing a &str to a Vec cannot fail; it is a quoted, escaped JSON string.
            Edit::Model => {
                let _ = serde_json::to_writer(&mut out, upstream_model);
            }
            Edit::Text(text) => out.extend_from_slice(text.as_bytes()),
        }
        at = range.end;
    }
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    Bytes::from(out)
}

/// A replacement made by [`rewrite`].
enum Edit {
    /// The upstream model name, as a JSON string.
    Model,
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites the model of `input` to `gw-up` and compares with `expected` byte for byte.
    fn check(input: &str, expected: &str) {
        let body = Bytes::copy_from_slice(input.as_bytes());
        let fields = parse_chat(&body).unwrap_or_else(|e| panic!("{input}: {e}"));
        let out = rewrite(&body, &fields, "gw-up", false);
        assert_eq!(std::str::from_utf8(&out).expect("utf8"), expected);
    }

    fn check_err(input: &[u8], status: u16) {
        let err = parse_chat(input).expect_err("must fail");
        assert_eq!(err.status().as_u16(), status, "{err}");
    }

    #[test]
    fn model_rewrite_keeps_every_other_byte() {
        check(
            r#"{"model":"oa/gpt","messages":[]}"#,
            r#"{"model":"gw-up","messages":[]}"#,
        );
        check(
            "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"\\\"model\\\": \\\"x\\\"\"} ] ,\n \"model\" :\t\"a\" }",
            "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"\\\"model\\\": \\\"x\\\"\"} ] ,\n \"model\" :\t\"gw-up\" }",
        );
        check(
            r#"{"metadata":{"model":"nested"},"model":"m","tools":[{"type":"function","function":{"name":"model","parameters":{"model":{"type":"string"}}}}]}"#,
            r#"{"metadata":{"model":"nested"},"model":"gw-up","tools":[{"type":"function","function":{"name":"model","parameters":{"model":{"type":"string"}}}}]}"#,
        );
        check(
            r#"{"model":"caf\u00e9/\"q\"","x_unknown":1.5e3}"#,
            r#"{"model":"gw-up","x_unknown":1.5e3}"#,
        );
        check(
            r#"{"\u006dodel":"m","n":null}"#,
            r#"{"\u006dodel":"gw-up","n":null}"#,
        );
        check(
            "{\"messages\":[{\"content\":\"日本語 🚀\"}],\"model\":\"m\"}",
            "{\"messages\":[{\"content\":\"日本語 🚀\"}],\"model\":\"gw-up\"}",
        );
        // Unchanged model: the very same bytes.
        let body = Bytes::from_static(br#"{"model":"gw-up", "z":[1,2]}"#);
        let f = parse_chat(&body).expect("ok");
        assert_eq!(rewrite(&body, &f, "gw-up", false).as_ptr(), body.as_ptr());
    }

    #[test]
    fn escapes_the_upstream_name() {
        let body = Bytes::from_static(br#"{"model":"a"}"#);
        let f = parse_chat(&body).expect("ok");
        assert_eq!(
            &rewrite(&body, &f, "we\"ird", false)[..],
            br#"{"model":"we\"ird"}"#
        );
    }

    #[test]
    fn include_usage_injection() {
        let inject = |input: &str| {
            let body = Bytes::copy_from_slice(input.as_bytes());
            let f = parse_chat(&body).expect("ok");
            (
                f.client_wants_usage,
                String::from_utf8(rewrite(&body, &f, "up", true).to_vec()).expect("utf8"),
            )
        };
        assert_eq!(
            inject(r#"{"model":"m","stream":true}"#),
            (
                false,
                r#"{"stream_options":{"include_usage":true},"model":"up","stream":true}"#.into()
            )
        );
        assert_eq!(
            inject(r#" {"model":"m","stream":true,"stream_options":null}"#),
            (
                false,
                r#" {"model":"up","stream":true,"stream_options":null}"#
                    .replace("null", r#"{"include_usage":true}"#)
            )
        );
        assert_eq!(
            inject(r#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#),
            (
                false,
                r#"{"model":"up","stream":true,"stream_options":{"include_usage":true}}"#.into()
            )
        );
        let f =
            parse_chat(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
                .expect("ok");
        assert!(f.client_wants_usage && f.stream);
    }

    #[test]
    fn bad_bodies_are_400() {
        check_err(b"", 400);
        check_err(b"{", 400);
        check_err(b"[1,2]", 400);
        check_err(b"{\"messages\":[]}", 400);
        check_err(b"{\"model\":5}", 400);
        check_err(b"{\"model\":\"\"}", 400);
        check_err(b"{\"model\":\"m\",\"stream\":\"yes\"}", 400);
        check_err(b"{\"model\":\"m\",\"stream_options\":3}", 400);
        check_err(b"{\"model\":\"m\",\"model\":\"n\"}", 400);
        check_err(b"{\"model\":\"\xff\xfe\"}", 400);
        check_err(b"\xff\xff\xff", 400);
        check_err(b"{\"model\":\"m\"} trailing", 400);
        // serde fills the fields from an array by position; the body must be an object.
        check_err(br#"["m", false, {"include_usage":true}]"#, 400);
        check_err(br#" ["m"]"#, 400);
        // Invalid UTF-8 in a field routing skips.
        check_err(b"{\"model\":\"m\",\"user\":\"\xff\"}", 400);
    }
}

//! The OpenAI side of embeddings, shared by the translators: reading an OpenAI
//! `POST /v1/embeddings` request and writing its response.
//!
//! Request (OpenAI reference, "Create embeddings"): `model`, `input` (a string, an array of
//! strings, an array of token ids or an array of token-id arrays), `encoding_format`
//! (`float`, the default, or `base64`), `dimensions` (a positive integer), `user`.
//! Response: `{"object":"list","data":[{"object":"embedding","index","embedding"}],"model",
//! "usage":{"prompt_tokens","total_tokens"}}`; with `base64`, `embedding` is the base64 of
//! the vector's little-endian `f32` bytes (what OpenAI sends and its SDKs decode).

use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::Value;

use super::TranslateError;

/// How the app wants its vectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncodingFormat {
    /// JSON numbers (OpenAI's default).
    #[default]
    Float,
    /// Base64 of the little-endian `f32` bytes.
    Base64,
}

/// An OpenAI embeddings request, as the translators need it: text inputs only (providers
/// other than OpenAI take text, not token ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    /// The inputs, in order (one for a string `input`).
    pub texts: Vec<String>,
    pub encoding_format: EncodingFormat,
    pub dimensions: Option<u32>,
}

/// One upstream request of a translated embeddings call: a translation may need several
/// (a batch limit, or a provider that embeds one text per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedCall {
    /// Appended to the connection's base URL (the provider module says which base).
    pub path: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// How many of the request's inputs this call embeds (they follow the previous call's).
    pub inputs: usize,
}

/// Reads an OpenAI embeddings request for a provider that takes text only; `provider` names
/// it in error messages (`"Gemini"`). The body is already known to be a JSON object with a
/// string `model` (routing read it); `user` and unknown fields are ignored.
pub(crate) fn parse_request(
    body: &[u8],
    provider: &str,
) -> Result<EmbeddingsRequest, TranslateError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| TranslateError::InvalidRequest {
            message: format!("request body is not valid JSON: {e}"),
            param: None,
        })?;
    let texts = texts(value.get("input"), provider)?;
    let encoding_format = match value.get("encoding_format") {
        None | Some(Value::Null) => EncodingFormat::Float,
        Some(Value::String(s)) if s == "float" => EncodingFormat::Float,
        Some(Value::String(s)) if s == "base64" => EncodingFormat::Base64,
        Some(_) => {
            return Err(TranslateError::invalid(
                "`encoding_format` must be \"float\" or \"base64\"",
                "encoding_format",
            ));
        }
    };
    let dimensions = match value.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    TranslateError::invalid("`dimensions` must be a positive integer", "dimensions")
                })?,
        ),
    };
    Ok(EmbeddingsRequest {
        texts,
        encoding_format,
        dimensions,
    })
}

fn texts(input: Option<&Value>, provider: &str) -> Result<Vec<String>, TranslateError> {
    let tokens = || {
        TranslateError::invalid(
            format!(
                "{provider} embeds text only: `input` as token ids (arrays of integers) is \
                 supported only through OpenAI-compatible connections; send the text"
            ),
            "input",
        )
    };
    let non_empty = |s: &str, at: String| {
        if s.is_empty() {
            Err(TranslateError::invalid(
                format!("`{at}` must not be an empty string"),
                at,
            ))
        } else {
            Ok(s.to_owned())
        }
    };
    match input {
        None | Some(Value::Null) => Err(TranslateError::invalid(
            "you must provide an `input`: a string or an array of strings",
            "input",
        )),
        Some(Value::String(s)) => Ok(vec![non_empty(s, "input".into())?]),
        Some(Value::Array(items)) if items.is_empty() => Err(TranslateError::invalid(
            "`input` must not be an empty array",
            "input",
        )),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => non_empty(s, format!("input[{i}]")),
                Value::Number(_) | Value::Array(_) => Err(tokens()),
                _ => Err(TranslateError::invalid(
                    format!("`input[{i}]` must be a string"),
                    format!("input[{i}]"),
                )),
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            "`input` must be a string or an array of strings",
            "input",
        )),
    }
}

/// The OpenAI response for `vectors` (in input order), echoing `model` (the name the app
/// asked for). `prompt_tokens` is what the provider reported (0 when it reports nothing).
pub(crate) fn write_response(
    vectors: &[Vec<f32>],
    model: &str,
    encoding_format: EncodingFormat,
    prompt_tokens: u64,
) -> Vec<u8> {
    let body = Response {
        object: "list",
        data: Data(vectors, encoding_format),
        model,
        usage: UsageOut {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    // Serializing strings, numbers and floats into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Serialize)]
struct Response<'a> {
    object: &'static str,
    data: Data<'a>,
    model: &'a str,
    usage: UsageOut,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The `data` list, serialized straight from the vectors.
struct Data<'a>(&'a [Vec<f32>], EncodingFormat);

#[derive(Serialize)]
struct Item<'a, E: Serialize> {
    object: &'static str,
    index: usize,
    embedding: &'a E,
}

impl Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (index, vector) in self.0.iter().enumerate() {
            match self.1 {
                EncodingFormat::Float => seq.serialize_element(&Item {
                    object: "embedding",
                    index,
                    embedding: vector,
                })?,
                EncodingFormat::Base64 => seq.serialize_element(&Item {
                    object: "embedding",
                    index,
                    embedding: &base64_f32(vector),
                })?,
            }
        }
        seq.end()
    }
}

/// Base64 (standard alphabet, padded) of the little-endian `f32` bytes, as OpenAI encodes.
pub(crate) fn base64_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    aws_smithy_types::base64::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<EmbeddingsRequest, TranslateError> {
        parse_request(body.as_bytes(), "Gemini")
    }

    fn param(body: &str) -> Option<String> {
        match parse(body) {
            Err(TranslateError::InvalidRequest { param, .. }) => param,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn inputs() {
        let r = parse(r#"{"model":"m","input":"hi"}"#).expect("ok");
        assert_eq!(r.texts, ["hi"]);
        assert_eq!(r.encoding_format, EncodingFormat::Float);
        assert_eq!(r.dimensions, None);
        let r = parse(
            r#"{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":256,"user":"u"}"#,
        )
        .expect("ok");
        assert_eq!(r.texts, ["a", "b"]);
        assert_eq!(r.encoding_format, EncodingFormat::Base64);
        assert_eq!(r.dimensions, Some(256));
    }

    #[test]
    fn refusals() {
        assert_eq!(param(r#"{"model":"m"}"#).as_deref(), Some("input"));
        assert_eq!(
            param(r#"{"model":"m","input":[]}"#).as_deref(),
            Some("input")
        );
        assert_eq!(
            param(r#"{"model":"m","input":""}"#).as_deref(),
            Some("input")
        );
        assert_eq!(
            param(r#"{"model":"m","input":["a",""]}"#).as_deref(),
            Some("input[1]")
        );
        assert_eq!(
            param(r#"{"model":"m","input":["a",{}]}"#).as_deref(),
            Some("input[1]")
        );
        assert_eq!(
            param(r#"{"model":"m","input":5}"#).as_deref(),
            Some("input")
        );
        // Token ids: OpenAI only.
        for tokens in [r#"[1,2,3]"#, r#"[[1,2],[3]]"#] {
            let body = format!(r#"{{"model":"m","input":{tokens}}}"#);
            let err = parse(&body).expect_err("tokens");
            assert!(err.to_string().contains("token ids"), "{err}");
        }
        for bad in [r#""f16""#, "1"] {
            let body = format!(r#"{{"model":"m","input":"a","encoding_format":{bad}}}"#);
            assert_eq!(param(&body).as_deref(), Some("encoding_format"));
        }
        for bad in ["0", "-1", "1.5", r#""256""#, "4294967296"] {
            let body = format!(r#"{{"model":"m","input":"a","dimensions":{bad}}}"#);
            assert_eq!(param(&body).as_deref(), Some("dimensions"), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let vectors = vec![vec![0.5f32, -1.25], vec![0.013_168_523]];
        let out = write_response(&vectors, "gem/e", EncodingFormat::Float, 0);
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.25]},{"object":"embedding","index":1,"embedding":[0.013168523]}],"model":"gem/e","usage":{"prompt_tokens":0,"total_tokens":0}}"#
        );
        let out = write_response(&vectors[..1], "m", EncodingFormat::Base64, 7);
        let v: Value = serde_json::from_slice(&out).expect("json");
        // 0.5 = 0x3F000000, -1.25 = 0xBFA00000, little-endian.
        assert_eq!(v["data"][0]["embedding"], "AAAAPwAAoL8=");
        assert_eq!(v["usage"]["prompt_tokens"], 7);
        assert_eq!(v["usage"]["total_tokens"], 7);
    }
}

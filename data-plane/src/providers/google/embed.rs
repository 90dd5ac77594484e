//! OpenAI embeddings ⇄ Gemini API `models.embedContent` / `models.batchEmbedContents`.
//!
//! Pure and sans-IO. The caller sends each [`EmbedCall`] of the plan as
//! `POST {endpoint}/v1beta/models{path}` with the key in `x-goog-api-key`, and hands the
//! answers back, in order, to [`EmbedPlan::translate_response`].
//!
//! * One input → `{model}:embedContent` with
//!   `{"model":"models/{model}","content":{"parts":[{"text"}]},"outputDimensionality"?}`;
//!   the answer is `{"embedding":{"values":[...]}}`.
//! * Several inputs → `{model}:batchEmbedContents` with `{"requests":[...]}`, one
//!   `EmbedContentRequest` (as above, `model` included: Gemini requires it to match the
//!   URL's) per input, at most [`MAX_BATCH`] per call (more inputs make more calls); the
//!   answer is `{"embeddings":[{"values":[...]}, ...]}` in request order.
//! * `dimensions` → `outputDimensionality` (Gemini truncates the vector).
//! * `encoding_format: base64` is applied by the gateway to Gemini's float values.
//! * Usage: Gemini reports no token counts for embeddings; `prompt_tokens` is 0.
//!
//! Not translated: token-id inputs (400: Gemini embeds text), `user` (dropped). Gemini's
//! `taskType` and `title` have no OpenAI equivalent and are not sent.

use serde::{Deserialize, Serialize};

use super::{TranslateError, Usage};
use crate::providers::embeddings::{
    EmbedCall, EmbeddingsRequest, EncodingFormat, parse_request, write_response,
};

/// Most requests in one `batchEmbedContents` call (Gemini refuses larger batches).
pub const MAX_BATCH: usize = 100;

/// The Gemini calls of one OpenAI embeddings request, and what the answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedPlan {
    /// To send in order; each `path` goes after `{endpoint}/v1beta/models`.
    pub calls: Vec<EmbedCall>,
    encoding_format: EncodingFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedContentRequest<'a> {
    model: &'a str,
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: [Part<'a>; 1],
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct BatchEmbedContentsRequest<'a> {
    requests: Vec<EmbedContentRequest<'a>>,
}

/// OpenAI embeddings request body → the Gemini calls for `model` (the upstream name; a
/// `models/` prefix, as Gemini lists names, is tolerated).
pub fn translate_embed_request(body: &[u8], model: &str) -> Result<EmbedPlan, TranslateError> {
    let EmbeddingsRequest {
        texts,
        encoding_format,
        dimensions,
    } = parse_request(body, "Gemini")?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    let name = format!("models/{model}");
    let segment = path_segment(model);
    let calls = if let [text] = texts.as_slice() {
        vec![EmbedCall {
            path: format!("/{segment}:embedContent"),
            body: to_json(&embed_request(&name, text, dimensions))?,
            inputs: 1,
        }]
    } else {
        texts
            .chunks(MAX_BATCH)
            .map(|chunk| {
                let batch = BatchEmbedContentsRequest {
                    requests: chunk
                        .iter()
                        .map(|t| embed_request(&name, t, dimensions))
                        .collect(),
                };
                Ok(EmbedCall {
                    path: format!("/{segment}:batchEmbedContents"),
                    body: to_json(&batch)?,
                    inputs: chunk.len(),
                })
            })
            .collect::<Result<_, TranslateError>>()?
    };
    Ok(EmbedPlan {
        calls,
        encoding_format,
    })
}

fn embed_request<'a>(
    name: &'a str,
    text: &'a str,
    dimensions: Option<u32>,
) -> EmbedContentRequest<'a> {
    EmbedContentRequest {
        model: name,
        content: Content {
            parts: [Part { text }],
        },
        output_dimensionality: dimensions,
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(value).map_err(|e| TranslateError::InvalidRequest {
        message: format!("cannot write the Gemini request: {e}"),
        param: None,
    })
}

/// The model as one URL path segment: bytes outside `[A-Za-z0-9._~-]` percent-encoded.
fn path_segment(model: &str) -> String {
    let mut out = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct EmbedAnswer {
    /// `embedContent`.
    #[serde(default)]
    embedding: Option<ContentEmbedding>,
    /// `batchEmbedContents`.
    #[serde(default)]
    embeddings: Option<Vec<ContentEmbedding>>,
}

#[derive(Deserialize)]
struct ContentEmbedding {
    values: Vec<f32>,
}

impl EmbedPlan {
    /// The Gemini answers (one per call, in order) → the OpenAI response echoing `model`
    /// (the name the app asked for), and the usage (none: Gemini reports no tokens).
    pub fn translate_response(
        &self,
        answers: &[&[u8]],
        model: &str,
    ) -> Result<(Vec<u8>, Usage), TranslateError> {
        if answers.len() != self.calls.len() {
            return Err(TranslateError::BadUpstream(format!(
                "{} Gemini answers for {} calls",
                answers.len(),
                self.calls.len()
            )));
        }
        let mut vectors = Vec::new();
        for (call, answer) in self.calls.iter().zip(answers) {
            let parsed: EmbedAnswer = serde_json::from_slice(answer).map_err(|e| {
                TranslateError::BadUpstream(format!("Gemini embedding answer: {e}"))
            })?;
            let got: Vec<Vec<f32>> = match (parsed.embedding, parsed.embeddings) {
                (Some(one), None) => vec![one.values],
                (None, Some(many)) => many.into_iter().map(|e| e.values).collect(),
                _ => {
                    return Err(TranslateError::BadUpstream(
                        "Gemini embedding answer without `embedding` or `embeddings`".into(),
                    ));
                }
            };
            if got.len() != call.inputs {
                return Err(TranslateError::BadUpstream(format!(
                    "Gemini returned {} embeddings for {} inputs",
                    got.len(),
                    call.inputs
                )));
            }
            vectors.extend(got);
        }
        let body = write_response(&vectors, model, self.encoding_format, 0);
        Ok((body, Usage::default()))
    }
}

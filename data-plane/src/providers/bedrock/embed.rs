//! OpenAI embeddings ⇄ Bedrock `InvokeModel` for Amazon Titan Text Embeddings and Cohere
//! Embed v3.
//!
//! Pure and sans-IO. The caller sends each [`EmbedCall`] of the plan as
//! `POST {endpoint}{path}` (`path` is `/model/{modelId}/invoke`, the id percent-encoded as
//! for Converse) with `content-type` and `accept` `application/json`, SigV4-signed like
//! Converse, and hands the answers back, in order, to [`EmbedPlan::translate_response`] with
//! the `x-amzn-bedrock-input-token-count` header Bedrock adds to InvokeModel answers.
//!
//! * Titan (`amazon.titan-embed-text-v1`, `amazon.titan-embed-text-v2:0`): one input per call,
//!   `{"inputText"}`; v2 adds `"dimensions"` (from `dimensions`: Bedrock accepts 256, 512 or
//!   1024) and `"normalize": true` (unit vectors, as OpenAI's). The answer is
//!   `{"embedding":[...],"inputTextTokenCount"}`; prompt tokens are the sum of the counts.
//! * Cohere (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`): up to
//!   [`COHERE_MAX_TEXTS`] inputs per call, `{"texts":[...],"input_type":"search_document"}`
//!   (documents: OpenAI has no query/document distinction). The answer is
//!   `{"id","response_type":"embeddings_floats","texts","embeddings":[[...]]}` (or
//!   `"embeddings":{"float":[[...]]}` when typed); Cohere's body has no token count, so prompt
//!   tokens come from the header when Bedrock sends it, else 0.
//! * The model id may be a cross-region inference profile (`us.cohere.embed-english-v3`) or
//!   a foundation-model ARN; the family is read from the id after its last `/`.
//!
//! Not translated (400): other embedding families (Titan Multimodal, Cohere Embed v4, ...),
//! token-id inputs, `dimensions` for models of fixed size (Titan v1, Cohere v3). Dropped:
//! `user`.

use serde::{Deserialize, Serialize};

use super::{TranslateError, Usage, model_path};
use crate::providers::embeddings::{
    EmbedCall, EmbeddingsRequest, EncodingFormat, parse_request, write_response,
};

/// Most texts in one Cohere Embed call (Bedrock's limit).
pub const COHERE_MAX_TEXTS: usize = 96;

/// The embedding model families translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    TitanV1,
    TitanV2,
    Cohere,
}

/// The family of a Bedrock model id, if it is one the gateway translates.
fn family(model_id: &str) -> Option<Family> {
    let id = model_id.rsplit('/').next().unwrap_or(model_id);
    // A cross-region inference profile puts a geography first: `us.`, `eu.`, `apac.`...
    let id = match id.split_once('.') {
        Some((_, rest)) if rest.starts_with("amazon.") || rest.starts_with("cohere.") => rest,
        _ => id,
    };
    if id.starts_with("amazon.titan-embed-text-v2") {
        Some(Family::TitanV2)
    } else if id.starts_with("amazon.titan-embed-text-v1") {
        Some(Family::TitanV1)
    } else if id.starts_with("cohere.embed-english-v3")
        || id.starts_with("cohere.embed-multilingual-v3")
    {
        Some(Family::Cohere)
    } else {
        None
    }
}

/// The InvokeModel calls of one OpenAI embeddings request, and what the answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedPlan {
    /// To send in order (or concurrently; answers go back in this order).
    pub calls: Vec<EmbedCall>,
    family: Family,
    encoding_format: EncodingFormat,
}

/// One InvokeModel answer: its body and its `x-amzn-bedrock-input-token-count` header.
#[derive(Debug, Clone, Copy)]
pub struct InvokeAnswer<'a> {
    pub body: &'a [u8],
    pub input_token_count: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanRequest<'a> {
    input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<bool>,
}

#[derive(Serialize)]
struct CohereRequest<'a> {
    texts: &'a [String],
    input_type: &'static str,
}

/// OpenAI embeddings request body → the InvokeModel calls for `model_id` (the upstream id).
pub fn translate_embed_request(body: &[u8], model_id: &str) -> Result<EmbedPlan, TranslateError> {
    let Some(family) = family(model_id) else {
        return Err(TranslateError::invalid(
            format!(
                "`{model_id}` is not an embedding model the gateway can call on Bedrock: \
                 supported are Amazon Titan Text Embeddings (amazon.titan-embed-text-v1, \
                 amazon.titan-embed-text-v2:0) and Cohere Embed v3 (cohere.embed-english-v3, \
                 cohere.embed-multilingual-v3)"
            ),
            "model",
        ));
    };
    let EmbeddingsRequest {
        texts,
        encoding_format,
        dimensions,
    } = parse_request(body, "Bedrock")?;
    let fixed_size = |what: &str| {
        TranslateError::invalid(
            format!(
                "{what} returns vectors of a fixed size: `dimensions` is supported on Bedrock \
                 only by amazon.titan-embed-text-v2:0 (256, 512 or 1024)"
            ),
            "dimensions",
        )
    };
    let path = invoke_path(model_id);
    let calls = match family {
        Family::TitanV1 | Family::TitanV2 => {
            if family == Family::TitanV1 && dimensions.is_some() {
                return Err(fixed_size("amazon.titan-embed-text-v1"));
            }
            let normalize = (family == Family::TitanV2).then_some(true);
            texts
                .iter()
                .map(|text| {
                    let request = TitanRequest {
                        input_text: text,
                        dimensions,
                        normalize,
                    };
                    Ok(EmbedCall {
                        path: path.clone(),
                        body: to_json(&request)?,
                        inputs: 1,
                    })
                })
                .collect::<Result<_, TranslateError>>()?
        }
        Family::Cohere => {
            if dimensions.is_some() {
                return Err(fixed_size("Cohere Embed v3"));
            }
            texts
                .chunks(COHERE_MAX_TEXTS)
                .map(|chunk| {
                    let request = CohereRequest {
                        texts: chunk,
                        input_type: "search_document",
                    };
                    Ok(EmbedCall {
                        path: path.clone(),
                        body: to_json(&request)?,
                        inputs: chunk.len(),
                    })
                })
                .collect::<Result<_, TranslateError>>()?
        }
    };
    Ok(EmbedPlan {
        calls,
        family,
        encoding_format,
    })
}

/// `/model/{modelId}/invoke`, the id percent-encoded as one path segment (as for Converse:
/// `amazon.titan-embed-text-v2:0` → `amazon.titan-embed-text-v2%3A0`).
pub fn invoke_path(model_id: &str) -> String {
    let converse = model_path(model_id, false);
    let base = converse.strip_suffix("/converse").unwrap_or(&converse);
    format!("{base}/invoke")
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(value).map_err(|e| TranslateError::InvalidRequest {
        message: format!("cannot write the Bedrock request: {e}"),
        param: None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanAnswer {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: Option<u64>,
}

#[derive(Deserialize)]
struct CohereAnswer {
    embeddings: CohereEmbeddings,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CohereEmbeddings {
    /// `response_type: embeddings_floats` (no `embedding_types` asked).
    Floats(Vec<Vec<f32>>),
    /// `response_type: embeddings_by_type`.
    ByType { float: Vec<Vec<f32>> },
}

impl EmbedPlan {
    /// The InvokeModel answers (one per call, in order) → the OpenAI response echoing `model`
    /// (the name the app asked for), and the usage (prompt tokens only).
    pub fn translate_response(
        &self,
        answers: &[InvokeAnswer<'_>],
        model: &str,
    ) -> Result<(Vec<u8>, Usage), TranslateError> {
        if answers.len() != self.calls.len() {
            return Err(TranslateError::BadUpstream(format!(
                "{} Bedrock answers for {} calls",
                answers.len(),
                self.calls.len()
            )));
        }
        let mut vectors = Vec::new();
        let mut tokens = 0u64;
        for (call, answer) in self.calls.iter().zip(answers) {
            let bad = |e: serde_json::Error| {
                TranslateError::BadUpstream(format!("Bedrock embedding answer: {e}"))
            };
            let (got, count) = match self.family {
                Family::TitanV1 | Family::TitanV2 => {
                    let t: TitanAnswer = serde_json::from_slice(answer.body).map_err(bad)?;
                    let count = t.input_text_token_count.or(answer.input_token_count);
                    (vec![t.embedding], count)
                }
                Family::Cohere => {
                    let c: CohereAnswer = serde_json::from_slice(answer.body).map_err(bad)?;
                    let got = match c.embeddings {
                        CohereEmbeddings::Floats(v) | CohereEmbeddings::ByType { float: v } => v,
                    };
                    (got, answer.input_token_count)
                }
            };
            if got.len() != call.inputs {
                return Err(TranslateError::BadUpstream(format!(
                    "Bedrock returned {} embeddings for {} inputs",
                    got.len(),
                    call.inputs
                )));
            }
            vectors.extend(got);
            tokens = tokens.saturating_add(count.unwrap_or(0));
        }
        let body = write_response(&vectors, model, self.encoding_format, tokens);
        Ok((
            body,
            Usage {
                input_tokens: tokens,
                output_tokens: 0,
            },
        ))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn families() {
        for (id, want) in [
            ("amazon.titan-embed-text-v1", Some(Family::TitanV1)),
            ("amazon.titan-embed-text-v1:2:8k", Some(Family::TitanV1)),
            ("amazon.titan-embed-text-v2:0", Some(Family::TitanV2)),
            ("cohere.embed-english-v3", Some(Family::Cohere)),
            ("cohere.embed-multilingual-v3", Some(Family::Cohere)),
            ("us.cohere.embed-english-v3", Some(Family::Cohere)),
            (
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
                Some(Family::TitanV2),
            ),
            ("amazon.titan-embed-image-v1", None),
            ("cohere.embed-v4:0", None),
            ("anthropic.claude-3-haiku-20240307-v1:0", None),
            ("", None),
        ] {
            assert_eq!(family(id), want, "{id}");
        }
    }

    #[test]
    fn invoke_paths() {
        assert_eq!(
            invoke_path("amazon.titan-embed-text-v2:0"),
            "/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
        assert_eq!(
            invoke_path("cohere.embed-english-v3"),
            "/model/cohere.embed-english-v3/invoke"
        );
    }
}

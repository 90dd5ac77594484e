//! A mock upstream for embeddings and legacy completions, speaking each provider's documented
//! wire format:
//!
//! - OpenAI `POST /v1/embeddings` (string, string array and token inputs, `dimensions`,
//!   `encoding_format: base64`) and `POST /v1/completions` (streamed or not, the usage chunk
//!   with `stream_options.include_usage`), `Authorization: Bearer` checked;
//! - Gemini `POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`,
//!   `x-goog-api-key` checked, the request shape checked as Gemini does (`content.parts`,
//!   each batch request's `model` matching the URL's);
//! - Bedrock `POST /model/{modelId}/invoke` for Titan Text Embeddings (`inputText`,
//!   `dimensions` and `normalize` on v2 only) and Cohere Embed v3 (`texts`, `input_type`),
//!   every SigV4 signature recomputed (`mock_bedrock::verify_signature`) and the model id
//!   required percent-encoded in the path.
//!
//! Vectors are a function of the text ([`vector`]), so tests can check that every input got
//! its own vector, in order.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use crate::mock_bedrock::{error as bedrock_error, verify_signature};
use crate::mock_provider::{Body, Seen, chunked, json_response};

/// OpenAI `usage.prompt_tokens` per input.
pub const OPENAI_TOKENS_PER_INPUT: u64 = 5;
/// OpenAI legacy completions usage (prompt, completion).
pub const COMPLETIONS_USAGE: (u64, u64) = (23, 4);
/// The legacy completion's text.
pub const COMPLETION_TEXT: &str = "Hello from mock completions";

/// The vector of `text`: its length in bytes, its first byte / 100, then a fixed tail;
/// `dimensions` long when asked (at least 2).
pub fn vector(text: &str, dimensions: Option<usize>) -> Vec<f32> {
    let first = text.bytes().next().map_or(0.0, |b| f32::from(b) / 100.0);
    let mut v = vec![text.len() as f32, first, 0.25, -0.5];
    if let Some(n) = dimensions {
        v.resize(n.max(2), 0.125);
    }
    v
}

/// Titan's and Cohere's token count of `text`: its words.
pub fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

pub struct MockEmbeddings {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    fail: Arc<Mutex<Option<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

fn openai_error(status: u16, message: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

fn gemini_error(status: u16, message: &str) -> Response<Body> {
    let grpc = match status {
        400 => "INVALID_ARGUMENT",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"code": status, "message": message, "status": grpc}}),
    )
}

/// `POST /v1/embeddings`, as OpenAI answers it.
pub(crate) fn openai_embeddings(req: &Value) -> Response<Body> {
    let model = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let dimensions = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d as usize);
    let texts: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        // Token ids: one input per array (or the whole array of integers).
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => {
            vec![format!("tokens{}", items.len())]
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_array) => items
            .iter()
            .map(|t| format!("tokens{}", t.as_array().map_or(0, Vec::len)))
            .collect(),
        _ => return openai_error(400, "'input' is a required property"),
    };
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = vector(t, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(aws_smithy_types::base64::encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = OPENAI_TOKENS_PER_INPUT * texts.len() as u64;
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// `POST /v1/completions`, as OpenAI answers it.
pub(crate) fn openai_completions(req: &Value) -> Response<Body> {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if req.get("prompt").is_none() {
        return openai_error(400, "'prompt' is a required property");
    }
    let (p, c) = COMPLETIONS_USAGE;
    let usage = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    if !req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return json_response(
            StatusCode::OK,
            json!({"id": "cmpl-mock1", "object": "text_completion", "created": 1_700_000_000,
                   "model": model, "system_fingerprint": "fp_mock",
                   "choices": [{"text": COMPLETION_TEXT, "index": 0, "logprobs": null, "finish_reason": "stop"}],
                   "usage": usage}),
        );
    }
    let chunk = |text: &str, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "cmpl-mock1", "object": "text_completion", "created": 1_700_000_000,
                   "model": model, "system_fingerprint": "fp_mock",
                   "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut events: Vec<String> = ["Hello", " from", " mock", " completions"]
        .iter()
        .map(|w| chunk(w, Value::Null))
        .collect();
    events.push(chunk("", json!("stop")));
    if req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "cmpl-mock1", "object": "text_completion", "created": 1_700_000_000,
                   "model": model, "choices": [], "usage": usage})
        ));
    }
    events.push("data: [DONE]\n\n".into());
    chunked(
        events.into_iter().map(Bytes::from).collect(),
        Duration::ZERO,
        "text/event-stream",
    )
}

/// One Gemini `EmbedContentRequest`'s text, checked as Gemini checks it.
fn gemini_text(req: &Value) -> Result<String, String> {
    let parts = req
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("* EmbedContentRequest.content: contents is not specified")?;
    if req.get("input").is_some() || req.get("text").is_some() {
        return Err("Invalid JSON payload received. Unknown name \"input\"".into());
    }
    let mut text = String::new();
    for part in parts {
        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
    }
    if text.is_empty() {
        return Err("* EmbedContentRequest.content: text is empty".into());
    }
    Ok(text)
}

/// `POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`.
fn gemini(seen: &Seen, secret: &str) -> Response<Body> {
    let rest = seen.path.trim_start_matches("/v1beta/models/");
    let Some((model, method)) = rest.rsplit_once(':') else {
        return gemini_error(404, &format!("unknown method in {}", seen.path));
    };
    // Like Gemini: a missing or wrong key is a 400 with reason API_KEY_INVALID.
    if seen.header("x-goog-api-key") != Some(secret) || seen.query.contains("key=") {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                   "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return gemini_error(400, "Invalid JSON payload received.");
    };
    let name = format!("models/{model}");
    let dims = |r: &Value| {
        r.get("outputDimensionality")
            .and_then(Value::as_u64)
            .map(|d| d as usize)
    };
    match method {
        "embedContent" => {
            if req.get("model").is_some_and(|m| m.as_str() != Some(&name)) {
                return gemini_error(400, "the request's model does not match the URL's");
            }
            match gemini_text(&req) {
                Ok(text) => json_response(
                    StatusCode::OK,
                    json!({"embedding": {"values": vector(&text, dims(&req))}}),
                ),
                Err(m) => gemini_error(400, &m),
            }
        }
        "batchEmbedContents" => {
            let Some(requests) = req.get("requests").and_then(Value::as_array) else {
                return gemini_error(400, "* BatchEmbedContentsRequest.requests: is required");
            };
            if requests.len() > 100 {
                return gemini_error(
                    400,
                    "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
                );
            }
            let mut embeddings = Vec::new();
            for (i, r) in requests.iter().enumerate() {
                if r.get("model").and_then(Value::as_str) != Some(name.as_str()) {
                    return gemini_error(
                        400,
                        &format!(
                            "* BatchEmbedContentsRequest.requests[{i}].model: the model must be {name}"
                        ),
                    );
                }
                match gemini_text(r) {
                    Ok(text) => embeddings.push(json!({"values": vector(&text, dims(r))})),
                    Err(m) => return gemini_error(400, &m),
                }
            }
            json_response(StatusCode::OK, json!({ "embeddings": embeddings }))
        }
        other => gemini_error(404, &format!("unknown method {other}")),
    }
}

/// `POST /model/{modelId}/invoke` for Titan and Cohere embedding models.
fn invoke(seen: &Seen, secret: &str) -> Response<Body> {
    let rest = seen.path.trim_start_matches("/model/");
    let Some(model) = rest.strip_suffix("/invoke") else {
        return bedrock_error(
            404,
            "UnknownOperationException",
            &format!("unknown operation {}", seen.path),
        );
    };
    if let Err((exception, message)) = verify_signature(seen, secret) {
        return bedrock_error(403, exception, &message);
    }
    // The model id is one path segment: a `:` arrives percent-encoded.
    if model.contains(':') || model.is_empty() {
        return bedrock_error(
            400,
            "ValidationException",
            &format!("model id {model:?} is not percent-encoded"),
        );
    }
    let model = model.replace("%3A", ":");
    let invalid = |m: &str| bedrock_error(400, "ValidationException", m);
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return invalid("Malformed input request, please reformat your input and try again.");
    };
    let keys: Vec<&str> = req
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if model.starts_with("amazon.titan-embed-text-v") {
        let v2 = model.starts_with("amazon.titan-embed-text-v2");
        let allowed: &[&str] = if v2 {
            &["inputText", "dimensions", "normalize", "embeddingTypes"]
        } else {
            &["inputText"]
        };
        if let Some(extra) = keys.iter().find(|k| !allowed.contains(k)) {
            return invalid(&format!(
                "Malformed input request: extraneous key [{extra}] is not permitted"
            ));
        }
        let Some(text) = req.get("inputText").and_then(Value::as_str) else {
            return invalid("Malformed input request: required key [inputText] not found");
        };
        let dims = req.get("dimensions").and_then(Value::as_u64);
        if dims.is_some_and(|d| ![256, 512, 1024].contains(&d)) {
            return invalid("Malformed input request: dimensions must be 256, 512 or 1024");
        }
        let v = vector(text, dims.map(|d| d as usize));
        let mut r = json_response(
            StatusCode::OK,
            json!({"embedding": v, "inputTextTokenCount": words(text), "embeddingsByType": {"float": v}}),
        );
        if let Ok(h) = hyper::header::HeaderValue::from_str(&words(text).to_string()) {
            r.headers_mut()
                .insert("x-amzn-bedrock-input-token-count", h);
        }
        return r;
    }
    if model.starts_with("cohere.embed-") {
        if let Some(extra) = keys
            .iter()
            .find(|k| !["texts", "input_type", "truncate", "embedding_types"].contains(k))
        {
            return invalid(&format!(
                "Malformed input request: extraneous key [{extra}] is not permitted"
            ));
        }
        let Some(texts) = req.get("texts").and_then(Value::as_array) else {
            return invalid("Malformed input request: required key [texts] not found");
        };
        let input_type = req.get("input_type").and_then(Value::as_str);
        if !matches!(
            input_type,
            Some("search_document" | "search_query" | "classification" | "clustering")
        ) {
            return invalid("Malformed input request: input_type is required");
        }
        if texts.len() > 96 {
            return invalid("Malformed input request: texts can hold at most 96 texts");
        }
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        let embeddings: Vec<Vec<f32>> = texts.iter().map(|t| vector(t, None)).collect();
        let tokens: u64 = texts.iter().map(|t| words(t)).sum();
        let mut r = json_response(
            StatusCode::OK,
            json!({"id": "2ec4e5b5-2ad1-4a1c-8a4e-0a7b3c5d1f22", "texts": texts,
                   "embeddings": embeddings, "response_type": "embeddings_floats"}),
        );
        if let Ok(h) = hyper::header::HeaderValue::from_str(&tokens.to_string()) {
            r.headers_mut()
                .insert("x-amzn-bedrock-input-token-count", h);
        }
        return r;
    }
    invalid(&format!(
        "The provided model identifier is invalid: {model}"
    ))
}

fn answer(seen: &Seen, secret: &str, fail: Option<u16>) -> Response<Body> {
    let path = seen.path.as_str();
    if seen.method != "POST" {
        return openai_error(404, &format!("unknown path {path}"));
    }
    if let Some(status) = fail {
        return if path.starts_with("/v1beta/") {
            gemini_error(status, &format!("mock upstream failure {status}"))
        } else if path.starts_with("/model/") {
            let exception = match status {
                400 => "ValidationException",
                429 => "ThrottlingException",
                _ => "InternalServerException",
            };
            bedrock_error(
                status,
                exception,
                &format!("mock upstream failure {status}"),
            )
        } else {
            openai_error(status, &format!("mock upstream failure {status}"))
        };
    }
    if path.starts_with("/v1beta/models/") {
        return gemini(seen, secret);
    }
    if path.starts_with("/model/") {
        return invoke(seen, secret);
    }
    if !matches!(path, "/v1/embeddings" | "/v1/completions") {
        return openai_error(404, &format!("unknown path {path}"));
    }
    if seen.header("authorization") != Some(format!("Bearer {secret}").as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return openai_error(400, "body is not JSON");
    };
    if path == "/v1/embeddings" {
        openai_embeddings(&req)
    } else {
        openai_completions(&req)
    }
}

impl MockEmbeddings {
    /// Serves on a free loopback port, accepting `secret` as every provider's key (the AWS
    /// secret access key, with `mock_bedrock::AWS_ACCESS_KEY_ID`).
    pub async fn start(secret: &str) -> MockEmbeddings {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(Mutex::new(None));
        let secret = secret.to_string();
        let (seen2, fail2) = (seen.clone(), fail.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (secret, seen, fail) = (secret.clone(), seen2.clone(), fail2.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (secret, seen, fail) = (secret.clone(), seen.clone(), fail.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let record = Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or("").to_string(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or("").to_string())
                                    })
                                    .collect(),
                                body,
                            };
                            if let Ok(mut s) = seen.lock() {
                                s.push(record.clone());
                            }
                            let fail = fail.lock().map(|f| *f).unwrap_or(None);
                            Ok::<_, Infallible>(answer(&record, &secret, fail))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MockEmbeddings {
            addr,
            seen,
            fail,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests to `path` seen so far.
    pub fn calls(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|s| s.iter().filter(|r| r.path == path).cloned().collect())
            .unwrap_or_default()
    }

    /// Answer every request with this status and the provider's error body (`None`: serve).
    pub fn fail_with(&self, status: Option<u16>) {
        if let Ok(mut f) = self.fail.lock() {
            *f = status;
        }
    }
}

impl Drop for MockEmbeddings {
    fn drop(&mut self) {
        self.task.abort();
    }
}

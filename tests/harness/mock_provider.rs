//! A mock provider speaking the documented wire formats of OpenAI (`/v1/models`,
//! `/v1/chat/completions`, streaming included, and `/v1/embeddings` and `/v1/completions` as
//! `mock_embeddings` answers them, so one mock is a whole OpenAI-compatible server),
//! Anthropic (`/v1/models`, `/v1/messages`, its SSE events) and Gemini (`/v1beta/models`,
//! `/v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`) and AWS
//! Bedrock (`/model/{id}/converse` and `/converse-stream`, in `mock_bedrock.rs`, SigV4
//! signatures verified). It checks each provider's auth headers, records what it saw, and can
//! be told to fail or to be slow.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How the mock misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Behavior {
    /// Wait this long before answering chat calls.
    pub delay: Duration,
    /// Answer chat calls (every POST: embeddings and legacy completions too) with this status
    /// and the provider's error body.
    pub fail_status: Option<u16>,
    /// Pause between streamed events.
    pub chunk_gap: Duration,
    /// With `fail_status`: only the next this many chat calls (POSTs) fail, the later ones
    /// are answered normally. `None`: every call fails.
    pub fail_times: Option<usize>,
    /// Headers added to the failed answers (e.g. `retry-after`).
    pub fail_headers: Vec<(String, String)>,
    /// Streamed answers send this many events, then the connection breaks: the response
    /// declares a length it never reaches, so the client sees the body cut short.
    pub break_stream_after: Option<usize>,
}

impl Behavior {
    /// The behavior of one request, counting down `fail_times` for chat calls.
    fn take(&mut self, chat: bool) -> Behavior {
        let mut now = self.clone();
        if chat && self.fail_status.is_some() {
            match self.fail_times.as_mut() {
                Some(0) => now.fail_status = None,
                Some(n) => *n -= 1,
                None => {}
            }
        }
        now
    }

    /// `resp` with the failure headers (on a failed chat call) and the broken stream.
    fn shape(&self, resp: Response<Body>, chat: bool) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        if chat && self.fail_status.is_some_and(|s| s == parts.status.as_u16()) {
            for (k, v) in &self.fail_headers {
                if let (Ok(k), Ok(v)) = (
                    hyper::header::HeaderName::try_from(k.as_str()),
                    hyper::header::HeaderValue::try_from(v.as_str()),
                ) {
                    parts.headers.insert(k, v);
                }
            }
        }
        let streamed = parts
            .headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        match self.break_stream_after {
            Some(events) if streamed => {
                parts.headers.insert(
                    "content-length",
                    hyper::header::HeaderValue::from_static("1000000"),
                );
                // A pause first, so what was sent is flushed before the connection breaks.
                let pause = futures::StreamExt::filter_map(
                    futures::stream::once(tokio::time::sleep(Duration::from_millis(100))),
                    |()| async { None::<Result<Frame<Bytes>, Infallible>> },
                );
                let cut = futures::StreamExt::chain(
                    futures::StreamExt::take(http_body_util::BodyStream::new(body), events),
                    pause,
                );
                Response::from_parts(parts, BodyExt::boxed(StreamBody::new(cut)))
            }
            _ => Response::from_parts(parts, body),
        }
    }
}

pub struct MockProvider {
    pub addr: SocketAddr,
    scheme: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    behavior: Arc<Mutex<Behavior>>,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Usage the mock reports, so tests can check the gateway counted exactly this.
pub const OPENAI_USAGE: (u64, u64) = (11, 7);
pub const ANTHROPIC_USAGE: (u64, u64) = (13, 5);
pub const GOOGLE_USAGE: (u64, u64) = (17, 9);

fn full(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut r = Response::new(http_body_util::Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert("content-type", v);
    }
    r
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    full(status, "application/json", body.to_string())
}

/// An SSE response sending `events` with `gap` between them.
fn sse(events: Vec<String>, gap: Duration) -> Response<Body> {
    let events = events.into_iter().map(Bytes::from).collect();
    chunked(events, gap, "text/event-stream")
}

/// A streamed response sending `chunks` with `gap` between them.
pub(crate) fn chunked(chunks: Vec<Bytes>, gap: Duration, content_type: &str) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        for e in chunks {
            if tx.send(Ok(Frame::data(e))).await.is_err() {
                return;
            }
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut r = Response::new(BodyExt::boxed(body));
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert("content-type", v);
    }
    r
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn wants_tool(req: &Value) -> Option<String> {
    let tools = req.get("tools")?.as_array()?;
    let first = tools.first()?;
    // OpenAI tools: {type, function: {name}}; Anthropic tools: {name, input_schema}.
    let name = first
        .pointer("/function/name")
        .or_else(|| first.get("name"))?
        .as_str()?
        .to_string();
    // After a tool result, the model answers in text.
    let messages = req.get("messages")?.as_array()?;
    let last = messages.last()?;
    let is_result = last.get("role").and_then(Value::as_str) == Some("tool")
        || last
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            });
    (!is_result).then_some(name)
}

fn openai_error(status: u16) -> Response<Body> {
    let (kind, code) = match status {
        401 => ("invalid_request_error", "invalid_api_key"),
        404 => ("invalid_request_error", "model_not_found"),
        429 => ("requests", "rate_limit_exceeded"),
        _ => ("server_error", "server_error"),
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"message": format!("mock upstream failure {status}"), "type": kind, "param": null, "code": code}}),
    )
}

/// Tokens a policy judge's verdict costs (prompt, completion).
pub const JUDGE_USAGE: (u64, u64) = (50, 12);

/// What the mock answers the gateway's own calls, by their system prompt: a policy judge's
/// verdict, a policy review, or policy proposals (`None`: not such a call).
pub(crate) fn gateway_answer(system: &str, user: &str) -> Option<String> {
    if system.starts_with("You decide whether a request sent to an AI model violates a policy") {
        return Some(verdict(user));
    }
    if system.starts_with("You review policies") {
        return Some(review(user));
    }
    if system.starts_with("You write policies") {
        // In a code fence, as models often answer.
        return Some(format!("```json\n{}\n```", proposals(user)));
    }
    None
}

/// [`gateway_answer`] for a request whose system prompt and first user text are at JSON
/// pointers `system` and `user`.
pub(crate) fn own_answer(req: &Value, system: &str, user: &str) -> Option<String> {
    let text = |at: &str| req.pointer(at).and_then(Value::as_str);
    gateway_answer(text(system)?, text(user)?)
}

/// A policy judge's verdict on the judged `text`: a violation when it mentions "launch
/// codes", said without quoting it.
fn verdict(text: &str) -> String {
    let violation = text.contains("launch codes");
    json!({"violation": violation,
        "reason": if violation { "The request asks for restricted codes." } else { "Nothing restricted." }})
    .to_string()
}

/// A review of the policy in `text`: a short text (under 60 characters) is vague, a longer
/// one scores well.
fn review(text: &str) -> String {
    let policy = text
        .trim_start_matches("<policy>")
        .trim_end_matches("</policy>")
        .trim();
    if policy.chars().count() < 60 {
        json!({"score": 35, "summary": "Too short to apply consistently.",
            "issues": [{"kind": "ambiguity", "message": "Say which data is meant."},
                       {"kind": "actionability", "message": "Say what a request must not contain."}]})
    } else {
        json!({"score": 88, "summary": "Clear and scoped.", "issues": []})
    }
    .to_string()
}

/// Two proposals for the need in `text` (one named after its first word).
fn proposals(text: &str) -> String {
    let need = text
        .trim_start_matches("<need>")
        .trim_end_matches("</need>")
        .trim();
    let first = need
        .split_whitespace()
        .next()
        .unwrap_or("need")
        .to_lowercase();
    json!({"policies": [
        {"name": format!("no-{first}"), "content": format!("Requests must not include {need}."),
         "risk": "high", "action": "block"},
        {"name": "watch-usage", "content": "Log requests that mention internal projects.",
         "risk": "low", "action": "log"}
    ]})
    .to_string()
}

/// A call of the gateway's own asked in the OpenAI format (system message first).
fn judge_verdict(req: &Value) -> Option<Response<Body>> {
    let system = req.pointer("/messages/0/content")?.as_str()?;
    let text = req.pointer("/messages/1/content")?.as_str()?;
    let content = gateway_answer(system, text)?;
    let (p, c) = JUDGE_USAGE;
    Some(json_response(
        StatusCode::OK,
        json!({"id": "chatcmpl-judge", "object": "chat.completion", "created": 1_700_000_000,
               "model": req["model"], "choices": [{"index": 0, "finish_reason": "stop",
               "message": {"role": "assistant", "content": content}}],
               "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}),
    ))
}

/// A call of the gateway's own asked through the Messages API (the system prompt at the top
/// level).
fn anthropic_judge_verdict(req: &Value) -> Option<Response<Body>> {
    let system = req.get("system")?.as_str()?;
    let content = req.pointer("/messages/0/content")?;
    let text = match content.as_str() {
        Some(t) => t.to_string(),
        None => content.pointer("/0/text")?.as_str()?.to_string(),
    };
    let answer = gateway_answer(system, &text)?;
    let (input, output) = JUDGE_USAGE;
    Some(json_response(
        StatusCode::OK,
        json!({"id": "msg_judge", "type": "message", "role": "assistant", "model": req["model"],
               "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
               "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": output}}),
    ))
}

fn openai_chat(req: &Value, gap: Duration) -> Response<Body> {
    if let Some(verdict) = judge_verdict(req) {
        return verdict;
    }
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let tool = wants_tool(req);
    let (p, c) = OPENAI_USAGE;
    let usage = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    if !stream {
        let (message, finish) = match &tool {
            Some(name) => (
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_abc123", "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}
                ]}),
                "tool_calls",
            ),
            None => (
                json!({"role": "assistant", "content": "Hello from mock OpenAI"}),
                "stop",
            ),
        };
        return json_response(
            StatusCode::OK,
            json!({"id": "chatcmpl-mock1", "object": "chat.completion", "created": 1_700_000_000,
                   "model": model, "system_fingerprint": "fp_mock",
                   "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                   "usage": usage}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                   "model": model, "system_fingerprint": "fp_mock",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    match &tool {
        Some(name) => {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_abc123", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            for part in ["{\"city\":", "\"Paris\"}"] {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            events.push(chunk(json!({}), json!("tool_calls")));
        }
        None => {
            for word in ["Hello", " from", " mock", " OpenAI"] {
                events.push(chunk(json!({"content": word}), Value::Null));
            }
            events.push(chunk(json!({}), json!("stop")));
        }
    }
    if include_usage {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": 1_700_000_000,
                   "model": model, "choices": [], "usage": usage})
        ));
    }
    events.push("data: [DONE]\n\n".to_string());
    sse(events, gap)
}

fn anthropic_error(status: u16) -> Response<Body> {
    let kind = match status {
        401 => "authentication_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"type": "error", "error": {"type": kind, "message": format!("mock upstream failure {status}")}}),
    )
}

fn anthropic_messages(req: &Value, gap: Duration) -> Response<Body> {
    if let Some(verdict) = anthropic_judge_verdict(req) {
        return verdict;
    }
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // What the Messages API requires of a request.
    let invalid = |m: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": m}}),
        )
    };
    if req.get("max_tokens").and_then(Value::as_u64).is_none() {
        return invalid("max_tokens: Field required");
    }
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return invalid("messages: Field required");
    };
    if messages
        .iter()
        .any(|m| m.get("role").and_then(Value::as_str) == Some("system"))
    {
        return invalid("messages: Unexpected role \"system\"");
    }
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let tool = wants_tool(req);
    let (input, output) = ANTHROPIC_USAGE;
    if !stream {
        let (content, stop) = match &tool {
            Some(name) => (
                json!([{"type": "tool_use", "id": "toolu_01A", "name": name, "input": {"city": "Paris"}}]),
                "tool_use",
            ),
            None => (
                json!([{"type": "text", "text": "Hello from mock Claude"}]),
                "end_turn",
            ),
        };
        return json_response(
            StatusCode::OK,
            json!({"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": model,
                   "content": content, "stop_reason": stop, "stop_sequence": null,
                   "usage": {"input_tokens": input, "output_tokens": output}}),
        );
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    let stop = match &tool {
        Some(name) => {
            events.push(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_01A", "name": name, "input": {}}})));
            for part in ["{\"city\":", " \"Paris\"}"] {
                events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": part}})));
            }
            events.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            "tool_use"
        }
        None => {
            events.push(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
            for word in ["Hello", " from", " mock", " Claude"] {
                events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}})));
            }
            events.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            "end_turn"
        }
    };
    events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output}})));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(events, gap)
}

fn gemini_error(status: u16, message: &str) -> Response<Body> {
    let grpc = match status {
        400 => "INVALID_ARGUMENT",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"code": status, "message": message, "status": grpc}}),
    )
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
async fn gemini(seen: &Seen, secret: &str, behavior: Behavior) -> Response<Body> {
    let rest = seen.path.trim_start_matches("/v1beta/models/");
    let (model, stream) = match rest.rsplit_once(':') {
        Some((m, "generateContent")) => (m, false),
        Some((m, "streamGenerateContent")) => (m, true),
        _ => return gemini_error(404, &format!("unknown method in {}", seen.path)),
    };
    if stream && !seen.query.split('&').any(|p| p == "alt=sse") {
        return gemini_error(400, "this mock streams only with alt=sse");
    }
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if let Some(status) = behavior.fail_status {
        return gemini_error(status, &format!("mock upstream failure {status}"));
    }
    // Like Gemini: a missing or wrong key is a 400 with reason API_KEY_INVALID.
    let key_in_query = seen.query.split('&').any(|p| p.starts_with("key="));
    if header(&seen.headers, "x-goog-api-key") != secret || key_in_query {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                   "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return gemini_error(400, "Invalid JSON payload received.");
    };
    // What generateContent requires of a request.
    let Some(contents) = req.get("contents").and_then(Value::as_array) else {
        return gemini_error(
            400,
            "* GenerateContentRequest.contents: contents is not specified",
        );
    };
    if req.get("model").is_some() || req.get("messages").is_some() {
        return gemini_error(
            400,
            "Invalid JSON payload received. Unknown name \"messages\"",
        );
    }
    for c in contents {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        let parts = c.get("parts").and_then(Value::as_array);
        if !matches!(role, "user" | "model") || parts.is_none_or(|p| p.is_empty()) {
            return gemini_error(400, "Please use a valid role: user, model.");
        }
    }
    let tool = req
        .pointer("/tools/0/functionDeclarations/0/name")
        .and_then(Value::as_str)
        .filter(|_| {
            // After a function response, the model answers in text.
            !contents
                .last()
                .and_then(|c| c.get("parts"))
                .and_then(Value::as_array)
                .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()))
        });
    let (p, c) = GOOGLE_USAGE;
    let usage = json!({"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c});
    let response = |parts: Value, finish: Option<&str>, usage: Value| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "mockGeminiResponse1"})
    };
    let call = |name: &str| json!([{"functionCall": {"name": name, "args": {"city": "Paris"}}}]);
    if !stream {
        // The gateway's own calls (a judge, the policy assistant) get their answer.
        let own = own_answer(
            &req,
            "/systemInstruction/parts/0/text",
            "/contents/0/parts/0/text",
        );
        let parts = match (tool, own) {
            (_, Some(text)) => json!([{ "text": text }]),
            (Some(name), None) => call(name),
            (None, None) => json!([{"text": "Hello from mock Gemini"}]),
        };
        return json_response(StatusCode::OK, response(parts, Some("STOP"), usage));
    }
    let early = json!({"promptTokenCount": p, "totalTokenCount": p});
    let ev = |v: Value| format!("data: {v}\r\n\r\n");
    let events = match tool {
        Some(name) => vec![ev(response(call(name), Some("STOP"), usage))],
        None => vec![
            ev(response(json!([{"text": "Hello"}]), None, early.clone())),
            ev(response(json!([{"text": " from mock"}]), None, early)),
            ev(response(json!([{"text": " Gemini"}]), Some("STOP"), usage)),
        ],
    };
    sse(events, behavior.chunk_gap)
}

fn models(path: &str, headers: &[(String, String)], secret: &str) -> Response<Body> {
    if path == "/v1beta/models" {
        if header(headers, "x-goog-api-key") != secret {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}),
            );
        }
        return json_response(
            StatusCode::OK,
            json!({"models": [
                {"name": "models/gemini-2.0-flash", "displayName": "Gemini 2.0 Flash"},
                {"name": "models/text-embedding-004", "displayName": "Text Embedding 004"}
            ]}),
        );
    }
    if !header(headers, "x-api-key").is_empty() {
        if header(headers, "x-api-key") != secret || header(headers, "anthropic-version").is_empty()
        {
            return anthropic_error(401);
        }
        return json_response(
            StatusCode::OK,
            json!({"data": [
                {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4", "created_at": "2025-05-14T00:00:00Z"}
            ], "has_more": false, "first_id": "claude-sonnet-4-20250514", "last_id": "claude-sonnet-4-20250514"}),
        );
    }
    let got = header(headers, "authorization");
    if got != format!("Bearer {secret}") {
        // Like OpenAI, the error echoes part of the key.
        let shown = got.strip_prefix("Bearer ").unwrap_or("");
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": format!("Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
        );
    }
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
            {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"}
        ]}),
    )
}

async fn answer(seen: Seen, secret: &str, behavior: Behavior) -> Response<Body> {
    let path = seen.path.as_str();
    let headers = &seen.headers;
    if seen.method == "GET" && (path == "/v1/models" || path == "/v1beta/models") {
        return models(path, headers, secret);
    }
    if seen.method == "POST" && path.starts_with("/v1beta/models/") {
        return gemini(&seen, secret, behavior).await;
    }
    if seen.method == "POST" && path.starts_with("/model/") {
        return crate::mock_bedrock::converse(&seen, secret, behavior).await;
    }
    // A webhook receiver (alerts): takes anything, answers 204.
    if seen.method == "POST" && path.starts_with("/hooks/") {
        let mut resp = Response::new(Body::default());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    let anthropic = path == "/v1/messages";
    let openai_paths = ["/v1/chat/completions", "/v1/embeddings", "/v1/completions"];
    if seen.method != "POST" || !(anthropic || openai_paths.contains(&path)) {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("unknown path {path}"), "type": "invalid_request_error"}}),
        );
    }
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if let Some(status) = behavior.fail_status {
        return if anthropic {
            anthropic_error(status)
        } else {
            openai_error(status)
        };
    }
    let authorized = if anthropic {
        header(headers, "x-api-key") == secret && !header(headers, "anthropic-version").is_empty()
    } else {
        header(headers, "authorization") == format!("Bearer {secret}")
    };
    if !authorized {
        return if anthropic {
            anthropic_error(401)
        } else {
            openai_error(401)
        };
    }
    let Ok(req) = serde_json::from_slice::<Value>(&seen.body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}),
        );
    };
    match path {
        "/v1/messages" => anthropic_messages(&req, behavior.chunk_gap),
        "/v1/embeddings" => crate::mock_embeddings::openai_embeddings(&req),
        "/v1/completions" => crate::mock_embeddings::openai_completions(&req),
        _ => openai_chat(&req, behavior.chunk_gap),
    }
}

impl MockProvider {
    /// Serves on a free loopback port, accepting `secret` as the valid key.
    pub async fn start(secret: &str) -> MockProvider {
        Self::serve(secret, None).await
    }

    /// [`MockProvider::start`] over HTTPS with `acceptor`'s certificate; [`MockProvider::url`]
    /// is then `https://`.
    pub async fn start_tls(secret: &str, acceptor: tokio_rustls::TlsAcceptor) -> MockProvider {
        Self::serve(secret, Some(acceptor)).await
    }

    async fn serve(secret: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> MockProvider {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behavior = Arc::new(Mutex::new(Behavior::default()));
        let secret = secret.to_string();
        let (seen2, behavior2) = (seen.clone(), behavior.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (secret, seen, behavior) = (secret.clone(), seen2.clone(), behavior2.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (secret, seen, behavior) =
                            (secret.clone(), seen.clone(), behavior.clone());
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
                            let chat = record.method == "POST";
                            let b = behavior
                                .lock()
                                .map(|mut b| b.take(chat))
                                .unwrap_or_default();
                            let resp = answer(record, &secret, b.clone()).await;
                            Ok::<_, Infallible>(b.shape(resp, chat))
                        }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A client refusing the certificate ends the handshake here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        MockProvider {
            addr,
            scheme,
            seen,
            behavior,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests to `path` seen so far.
    pub fn calls(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn set_behavior(&self, b: Behavior) {
        if let Ok(mut cur) = self.behavior.lock() {
            *cur = b;
        }
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

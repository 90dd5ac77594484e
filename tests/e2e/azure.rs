//! Azure OpenAI as an OTHER/OPENAI connection, configured without code: the endpoint's
//! `?api-version=` query stays on every call and the key goes in `api-key`, never in
//! `Authorization`; validation checks the key and names the deployment. An OpenAI-compatible
//! server on the same mock (an OpenRouter-style `/api/v1`) still gets `Authorization:
//! Bearer`. Through the real binaries and a real client (`async-openai`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, collect_stream};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::{Backend, ControlPlane, DataPlane, http};

const AZURE_KEY: &str = "azure-e2e-key-0123456789abcdef";
const BYOK_KEY: &str = "azure-e2e-byok-key-fedcba9876543210";
const ROUTER_KEY: &str = "sk-or-e2e-router-key-0123456789";
const API_VERSION: &str = "2024-10-21";
const DEPLOYMENT: &str = "gpt-4o-prod";

/// One request the mock saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: String,
    headers: hyper::HeaderMap,
    body: Value,
}

/// Answers like Azure OpenAI under `/openai/` (key in `api-key`, `api-version` required,
/// `Authorization` refused) and like an OpenAI-compatible router under `/api/v1/`.
struct AzureMock {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AzureMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AzureMock {
    async fn start() -> AzureMock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let record = record.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let seen = Seen {
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or("").to_string(),
                                headers: parts.headers,
                                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            };
                            record.lock().expect("lock").push(seen.clone());
                            Ok::<_, Infallible>(answer(&seen))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        AzureMock { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn calls(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

fn azure_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"error": {"code": status.as_u16().to_string(), "message": message}});
    respond(status, "application/json", body.to_string())
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|v| v.to_str().ok())
}

fn answer(seen: &Seen) -> Response<Full<Bytes>> {
    if seen.path.starts_with("/openai/") {
        if seen.headers.contains_key("authorization") {
            return azure_error(
                StatusCode::UNAUTHORIZED,
                "Authorization is for Microsoft Entra ID tokens; send the key in api-key",
            );
        }
        if !matches!(header(seen, "api-key"), Some(AZURE_KEY | BYOK_KEY)) {
            return azure_error(
                StatusCode::UNAUTHORIZED,
                "Access denied due to invalid subscription key or wrong API endpoint.",
            );
        }
        if seen.query != format!("api-version={API_VERSION}") {
            return azure_error(StatusCode::NOT_FOUND, "Resource not found");
        }
        return match seen.path.as_str() {
            "/openai/models" => respond(
                StatusCode::OK,
                "application/json",
                json!({"object": "list", "data": [{"id": "gpt-4o-2024-08-06", "object": "model"}]})
                    .to_string(),
            ),
            p if p == format!("/openai/deployments/{DEPLOYMENT}/chat/completions") => {
                completion(seen, "Hello from mock Azure")
            }
            _ => azure_error(
                StatusCode::NOT_FOUND,
                "The API deployment for this resource does not exist.",
            ),
        };
    }
    if seen.path == "/api/v1/chat/completions" {
        let bearer = format!("Bearer {ROUTER_KEY}");
        if header(seen, "authorization") != Some(bearer.as_str())
            || seen.headers.contains_key("api-key")
        {
            return respond(
                StatusCode::UNAUTHORIZED,
                "application/json",
                json!({"error": {"message": "No auth credentials found", "code": 401}}).to_string(),
            );
        }
        return completion(seen, "Hello from mock router");
    }
    azure_error(StatusCode::NOT_FOUND, "no such route")
}

/// A chat completion (or its stream, with the usage chunk when asked for).
fn completion(seen: &Seen, text: &str) -> Response<Full<Bytes>> {
    let model = seen.body["model"].as_str().unwrap_or("");
    let usage = json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13});
    if seen.body["stream"] == true {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1,
                   "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut events = vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": text}), Value::Null),
            chunk(json!({}), json!("stop")),
        ];
        if seen.body["stream_options"]["include_usage"] == true {
            events.push(
                json!({"id": "chatcmpl-az", "object": "chat.completion.chunk",
                               "created": 1, "model": model, "choices": [], "usage": usage}),
            );
        }
        let mut sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        sse.push_str("data: [DONE]\n\n");
        return respond(StatusCode::OK, "text/event-stream", sse);
    }
    let body = json!({
        "id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": usage,
    });
    respond(StatusCode::OK, "application/json", body.to_string())
}

/// The upstream call: the API version kept, the key in `api-key`, no `Authorization`.
fn assert_azure_call(call: &Seen, key: &str) {
    assert_eq!(call.query, format!("api-version={API_VERSION}"));
    assert_eq!(header(call, "api-key"), Some(key));
    assert!(!call.headers.contains_key("authorization"), "{call:?}");
}

async fn create(
    client: &tollgate_sdk::Client,
    name: &str,
    ai_type: proto::AiType,
    endpoint: String,
    secret: &str,
    models: &[&str],
) -> Result<String, tollgate_sdk::Error> {
    client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: ai_type as i32,
            endpoint,
            secret: secret.into(),
            credential_mode: if secret.is_empty() {
                proto::CredentialMode::Passthrough as i32
            } else {
                proto::CredentialMode::Managed as i32
            },
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        })
        .await
        .map(|r| r.ai_llm_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_openai_through_an_openai_client() {
    let mock = AzureMock::start().await;
    let cp = ControlPlane::start(Backend::Embedded).await;
    let client = cp.client().await;
    let deployment = mock.url(&format!(
        "/openai/deployments/{DEPLOYMENT}/?api-version={API_VERSION}"
    ));

    // Endpoint rules: a deployments URL needs its api-version; no credentials in the URL;
    // only OPENAI/OTHER endpoints take a query.
    for (ai_type, endpoint, expected) in [
        (
            proto::AiType::Other,
            mock.url(&format!("/openai/deployments/{DEPLOYMENT}")),
            "needs its API version",
        ),
        (
            proto::AiType::Openai,
            mock.url("/openai/v1?api-key=abc"),
            "looks like a credential",
        ),
        (
            proto::AiType::Anthropic,
            mock.url("/anthropic?api-version=1"),
            "only OPENAI and OTHER endpoints take a query",
        ),
    ] {
        let err = create(&client, "refused", ai_type, endpoint, AZURE_KEY, &[])
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
    }

    // Created without models: validation checks the key and finds the deployment.
    let id = create(
        &client,
        "azure",
        proto::AiType::Other,
        deployment,
        AZURE_KEY,
        &[],
    )
    .await
    .expect("create the Azure connection");
    let llm = client
        .get_ai_llm(proto::GetAiLlmRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("get");
    assert_eq!(
        llm.endpoint,
        mock.url(&format!(
            "/openai/deployments/{DEPLOYMENT}?api-version={API_VERSION}"
        )),
        "stored without the trailing slash, with its query"
    );
    let v = client
        .validate_ai_llm(proto::ValidateAiLlmRequest {
            id,
            ..Default::default()
        })
        .await
        .expect("validate");
    assert!(v.success, "{}", v.message);
    assert_eq!(v.discovered_models, [DEPLOYMENT]);
    assert!(!v.message.contains(AZURE_KEY));
    let check = mock.calls("/openai/models");
    assert_eq!(check.len(), 1);
    assert_azure_call(&check[0], AZURE_KEY);

    // BYOK: the app's own Azure key goes upstream in `api-key` too.
    create(
        &client,
        "azure-byok",
        proto::AiType::Openai,
        mock.url(&format!(
            "/openai/deployments/{DEPLOYMENT}?api-version={API_VERSION}"
        )),
        "",
        &[DEPLOYMENT],
    )
    .await
    .expect("create the passthrough connection");
    // An OpenAI-compatible router (OpenRouter, vLLM, Ollama style): Bearer, as before.
    create(
        &client,
        "router",
        proto::AiType::Other,
        mock.url("/api/v1"),
        ROUTER_KEY,
        &["meta-llama/llama-3.1-8b"],
    )
    .await
    .expect("create the router connection");

    let ctl = cp.ctl();
    ctl.run(&["repo", "create", "--workspace", "default", "--name", "app"])
        .await
        .ok();
    for llm in ["azure", "azure-byok", "router"] {
        ctl.run(&["repo", "attach", "app", llm]).await.ok();
    }
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "app", "--name", "k",
        ])
        .await
        .ok()
        .json()["secret"]
        .as_str()
        .expect("key")
        .to_string();
    let dp = DataPlane::start(&cp, "production").await;
    let openai = dp.openai(&key);

    let model = format!("azure/{DEPLOYMENT}");
    let resp = openai
        .chat()
        .create(chat(&model, "Say hello"))
        .await
        .expect("chat through Azure");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from mock Azure")
    );
    let path = format!("/openai/deployments/{DEPLOYMENT}/chat/completions");
    let calls = mock.calls(&path);
    assert_eq!(calls.len(), 1);
    assert_azure_call(&calls[0], AZURE_KEY);
    assert_eq!(calls[0].body["model"], DEPLOYMENT);

    let (text, _, usage, _) = collect_stream(
        &openai,
        async_openai::types::chat::CreateChatCompletionRequest {
            stream: Some(true),
            ..chat(&model, "Say hello")
        },
    )
    .await;
    assert_eq!(text, "Hello from mock Azure");
    assert_eq!(
        usage, None,
        "the usage chunk the gateway asked for is hidden"
    );
    let calls = mock.calls(&path);
    assert_eq!(calls.len(), 2);
    assert_azure_call(&calls[1], AZURE_KEY);
    assert_eq!(calls[1].body["stream_options"]["include_usage"], true);

    let (status, body) = http::request(
        "POST",
        &format!("{}/v1/chat/completions", dp.url),
        &[
            ("content-type", "application/json"),
            ("x-tollgate-key", &key),
            ("authorization", &format!("Bearer {BYOK_KEY}")),
        ],
        json!({"model": format!("azure-byok/{DEPLOYMENT}"), "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
            .into_bytes(),
    )
    .await
    .expect("passthrough call");
    assert_eq!(status, 200, "{body}");
    let calls = mock.calls(&path);
    assert_eq!(calls.len(), 3);
    assert_azure_call(&calls[2], BYOK_KEY);

    let resp = openai
        .chat()
        .create(chat("router/meta-llama/llama-3.1-8b", "Say hello"))
        .await
        .expect("chat through the router");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from mock router")
    );
    let routed = mock.calls("/api/v1/chat/completions");
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].body["model"], "meta-llama/llama-3.1-8b");

    for text in [cp.logs(), dp.logs()] {
        for secret in [AZURE_KEY, BYOK_KEY, ROUTER_KEY] {
            assert!(
                !text.contains(secret),
                "a provider key leaked into the logs"
            );
        }
    }
    conformance::passed(Provider::Other, &[Capability::Chat, Capability::Stream]);
}

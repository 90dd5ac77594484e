//! Validation against a local mock that answers like each provider and checks the auth
//! headers it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use super::*;

const OPENAI_SECRET: &str = "sk-openai-test-0123456789";
const OPENAI_ORG: &str = "org-test-abcdef";
const OTHER_SECRET: &str = "local-secret-token";
const ANTHROPIC_SECRET: &str = "sk-ant-test-0123456789";
const GOOGLE_SECRET: &str = "AIza-test-0123456789";
const AZURE_SECRET: &str = "azure-key-0123456789abcdef";

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A mock provider on 127.0.0.1; `hits` records every path it was asked for.
struct Mock {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
}

/// An HTTP/1 server on 127.0.0.1 answering each request with `handler(request, its own
/// address)`.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(http::Request<Incoming>, SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let svc = service_fn(move |req| {
                let answer = handler(req, addr);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    addr
}

impl Mock {
    async fn start() -> Mock {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = hits.clone();
        let addr = serve(move |req, addr| handle(req, addr, state.clone())).await;
        Mock { addr, hits }
    }

    fn endpoint(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(headers: &HeaderMap) -> &str {
    header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

async fn handle(
    req: http::Request<Incoming>,
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    hits.lock().unwrap().push(path.clone());
    let h = req.headers();
    let unauthorized = |message: &str| {
        json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": message, "type": "invalid_request_error"}}),
        )
    };
    match path.as_str() {
        "/openai/v1/models" => {
            if bearer(h) != OPENAI_SECRET || header(h, "openai-organization") != Some(OPENAI_ORG) {
                return unauthorized("Incorrect API key provided: sk-op***789.");
            }
            json_response(
                StatusCode::OK,
                json!({"object": "list", "data": [
                    {"id": "gpt-4o", "object": "model"},
                    {"id": "gpt-4o-mini", "object": "model"},
                ]}),
            )
        }
        "/other/v1/models" => {
            if bearer(h) != OTHER_SECRET || h.contains_key("openai-organization") {
                return unauthorized("bad token");
            }
            json_response(StatusCode::OK, json!({"data": [{"id": "llama3.1:8b"}]}))
        }
        "/anthropic/v1/models" => {
            if header(h, "x-api-key") != Some(ANTHROPIC_SECRET)
                || header(h, "anthropic-version") != Some("2023-06-01")
                || h.contains_key("authorization")
                || !query.contains("limit=")
            {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
                );
            }
            json_response(
                StatusCode::OK,
                json!({"data": [
                    {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5"},
                    {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5"},
                ], "has_more": false}),
            )
        }
        "/google/v1beta/models" => {
            if header(h, "x-goog-api-key") != Some(GOOGLE_SECRET) || h.contains_key("authorization")
            {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}),
                );
            }
            json_response(
                StatusCode::OK,
                json!({"models": [
                    {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro"},
                    {"name": "models/gemini-2.5-flash"},
                ]}),
            )
        }
        "/azure/openai/models" => {
            // Azure OpenAI: the key in `api-key`, never Authorization; api-version required.
            if header(h, "api-key") != Some(AZURE_SECRET)
                || h.contains_key("authorization")
                || h.contains_key("openai-organization")
            {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}),
                );
            }
            if query != "api-version=2024-10-21" {
                return json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"code": "404", "message": "Resource not found"}}),
                );
            }
            json_response(
                StatusCode::OK,
                json!({"object": "list", "data": [{"id": "gpt-4o-2024-08-06", "object": "model"}]}),
            )
        }
        "/query/v1/models" => {
            if query != "tenant=a" || bearer(h) != OTHER_SECRET {
                return unauthorized("the query or the token is wrong");
            }
            json_response(StatusCode::OK, json!({"data": [{"id": "qwen3"}]}))
        }
        "/redirect/models" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", format!("http://{addr}/openai/v1/models"))
            .body(Full::new(Bytes::new()).boxed_unsync())
            .unwrap(),
        "/echo/v1/models" => unauthorized(&format!(
            "Incorrect API key provided: {}. Organization {} not found.",
            bearer(h),
            header(h, "openai-organization").unwrap_or("")
        )),
        "/echo-model/v1/models" => json_response(
            StatusCode::OK,
            json!({"data": [{"id": "ok-model"}, {"id": format!("leak-{}", bearer(h))}]}),
        ),
        "/slow/v1/models" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            json_response(StatusCode::OK, json!({"data": []}))
        }
        "/slow-body/v1/models" => {
            // Headers at once, then a body that never ends.
            let first =
                futures::stream::iter([Ok(Frame::data(Bytes::from_static(b"{\"data\":[")))]);
            let body = StreamBody::new(first.chain(futures::stream::pending()));
            Response::new(body.boxed_unsync())
        }
        "/big/v1/models" => {
            let body = vec![b' '; MAX_BODY_BYTES + 1];
            Response::new(Full::new(Bytes::from(body)).boxed_unsync())
        }
        "/big-chunked/v1/models" => {
            let chunks = (0..5).map(|_| Ok(Frame::data(Bytes::from(vec![b' '; 1024 * 1024]))));
            Response::new(StreamBody::new(futures::stream::iter(chunks)).boxed_unsync())
        }
        "/html/v1/models" => Response::builder()
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(b"<html>welcome</html>")).boxed_unsync())
            .unwrap(),
        "/error-text/v1/models" => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from_static(b"upstream exploded")).boxed_unsync())
            .unwrap(),
        "/long-error/v1/models" => json_response(
            StatusCode::FORBIDDEN,
            json!({"error": {"message": "x".repeat(1000)}}),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": "no such route"}}),
        ),
    }
}

fn validator() -> Validator {
    Validator::new(Duration::from_secs(5), false)
}

fn request<'a>(
    ai_type: AiType,
    endpoint: &'a str,
    key: Option<&'a str>,
    secret: Option<&'a str>,
) -> ValidationRequest<'a> {
    ValidationRequest {
        ai_type,
        endpoint,
        key,
        secret,
        region: None,
        model: None,
    }
}

#[track_caller]
fn assert_failure(outcome: &ValidationOutcome, needle: &str) {
    assert!(!outcome.success, "{outcome:?}");
    assert!(outcome.models.is_empty(), "{outcome:?}");
    assert!(
        outcome.message.contains(needle),
        "{:?} lacks {needle:?}",
        outcome.message
    );
}

#[tokio::test]
async fn success_per_provider_type() {
    let mock = Mock::start().await;
    let v = validator();
    type Case<'a> = (AiType, String, Option<&'a str>, &'a str, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            AiType::Openai,
            mock.endpoint("/openai/v1/"),
            Some(OPENAI_ORG),
            OPENAI_SECRET,
            &["gpt-4o", "gpt-4o-mini"],
        ),
        (
            AiType::Other,
            mock.endpoint("/other/v1"),
            Some("ignored-key"),
            OTHER_SECRET,
            &["llama3.1:8b"],
        ),
        (
            AiType::Anthropic,
            mock.endpoint("/anthropic"),
            None,
            ANTHROPIC_SECRET,
            &["claude-sonnet-4-5", "claude-haiku-4-5"],
        ),
        (
            AiType::Google,
            mock.endpoint("/google"),
            None,
            GOOGLE_SECRET,
            &["gemini-2.5-pro", "gemini-2.5-flash"],
        ),
    ];
    for (ai_type, endpoint, key, secret, models) in cases {
        let outcome = v
            .validate(request(ai_type, &endpoint, key, Some(secret)))
            .await;
        assert!(outcome.success, "{ai_type:?}: {outcome:?}");
        assert_eq!(outcome.models, models, "{ai_type:?}");
        assert!(
            outcome.message.contains(" available"),
            "{}",
            outcome.message
        );
    }
}

#[tokio::test]
async fn azure_key_check_and_endpoint_query() {
    let mock = Mock::start().await;
    let v = validator();
    // A deployments endpoint (any host with Azure's path): the key goes in `api-key`, the
    // deployment becomes the model.
    let deployment = mock.endpoint("/azure/openai/deployments/gpt4o-prod?api-version=2024-06-01");
    let outcome = v
        .validate(request(
            AiType::Other,
            &deployment,
            Some("org-ignored"),
            Some(AZURE_SECRET),
        ))
        .await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.models, ["gpt4o-prod"]);
    assert!(
        outcome.message.contains("deployment gpt4o-prod"),
        "{}",
        outcome.message
    );
    assert_eq!(mock.hits("/azure/openai/models"), 1);

    let outcome = v
        .validate(request(
            AiType::Openai,
            &deployment,
            None,
            Some("wrong-azure-key-000"),
        ))
        .await;
    assert_failure(
        &outcome,
        "provider rejected the credentials (401 Unauthorized): Access denied due to invalid subscription key",
    );

    // A non-Azure endpoint with a query keeps it after the path.
    let query = mock.endpoint("/query/v1?tenant=a");
    let outcome = v
        .validate(request(AiType::Other, &query, None, Some(OTHER_SECRET)))
        .await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.models, ["qwen3"]);
}

#[test]
fn azure_without_a_deployment_says_to_set_models() {
    let outcome = azure_outcome("res.openai.azure.com", &None);
    assert!(outcome.success);
    assert!(outcome.models.is_empty());
    assert!(
        outcome
            .message
            .contains("set the connection's models to your deployment names"),
        "{}",
        outcome.message
    );
}

/// A Bedrock runtime stand-in answering every call with `status` and, when given, the
/// exception Bedrock names in `x-amzn-ErrorType`; keeps the method, path and headers of the
/// last request.
async fn bedrock(
    status: u16,
    exception: Option<&'static str>,
) -> (String, Arc<Mutex<Option<(String, String, HeaderMap)>>>) {
    let seen = Arc::new(Mutex::new(None));
    let state = seen.clone();
    let addr = serve(move |req: http::Request<Incoming>, _| {
        *state.lock().unwrap() = Some((
            req.method().to_string(),
            req.uri().path().to_owned(),
            req.headers().clone(),
        ));
        let mut resp = json_response(
            StatusCode::from_u16(status).unwrap(),
            json!({"message": format!("mock says {}", exception.unwrap_or("ok"))}),
        );
        if let Some(e) = exception {
            resp.headers_mut().insert(
                "x-amzn-errortype",
                format!("{e}:http://internal.amazon.com/coral/com.amazon.coral.service/")
                    .parse()
                    .unwrap(),
            );
        }
        std::future::ready(resp)
    })
    .await;
    (format!("http://{addr}"), seen)
}

fn aws<'a>(endpoint: &'a str, model: Option<&'a str>) -> ValidationRequest<'a> {
    ValidationRequest {
        ai_type: AiType::Aws,
        endpoint,
        key: Some("AKIAEXAMPLE"),
        secret: Some("aws-secret-access-key-0123"),
        region: Some("eu-west-1"),
        model,
    }
}

#[tokio::test]
async fn aws_credentials_are_checked_with_a_signed_empty_converse_call() {
    // Past authentication, Bedrock refuses the empty request: the credentials work.
    let (endpoint, seen) = bedrock(400, Some("ValidationException")).await;
    let outcome = validator()
        .validate(aws(
            &endpoint,
            Some("anthropic.claude-3-haiku-20240307-v1:0"),
        ))
        .await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(
        outcome.message,
        "AWS accepted the credentials for Bedrock in eu-west-1; model \
         anthropic.claude-3-haiku-20240307-v1:0 can be called"
    );
    let (method, path, headers) = seen.lock().unwrap().clone().expect("called");
    assert_eq!(method, "POST");
    assert_eq!(
        path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    let auth = header(&headers, "authorization").unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/")
            && auth.contains("/eu-west-1/bedrock/aws4_request"),
        "{auth}"
    );
    assert!(!auth.contains("aws-secret-access-key-0123"));

    // A Bedrock API key alone is sent as a bearer token, not signed.
    let (endpoint, seen) = bedrock(400, Some("ValidationException")).await;
    let outcome = validator()
        .validate(ValidationRequest {
            key: None,
            secret: Some("ABSKbedrock-api-key"),
            ..aws(&endpoint, None)
        })
        .await;
    assert!(outcome.success, "{outcome:?}");
    let (_, _, headers) = seen.lock().unwrap().clone().expect("called");
    assert_eq!(
        header(&headers, "authorization"),
        Some("Bearer ABSKbedrock-api-key")
    );
    assert!(!outcome.message.contains("ABSKbedrock-api-key"));

    // Without models, the probe names a model every region has.
    let (endpoint, seen) = bedrock(404, Some("ResourceNotFoundException")).await;
    let outcome = validator().validate(aws(&endpoint, None)).await;
    assert!(outcome.success, "{outcome:?}");
    let (_, path, _) = seen.lock().unwrap().clone().expect("called");
    assert_eq!(path, format!("/model/{AWS_PROBE_MODEL}/converse"));
}

#[tokio::test]
async fn aws_rejections_say_what_to_fix() {
    for exception in ["UnrecognizedClientException", "InvalidSignatureException"] {
        let (endpoint, _) = bedrock(403, Some(exception)).await;
        let outcome = validator().validate(aws(&endpoint, None)).await;
        assert_failure(&outcome, "AWS rejected the credentials");
        assert!(outcome.message.contains(exception), "{}", outcome.message);
        assert!(outcome.message.contains("mock says"), "{}", outcome.message);
    }
    // Access denied to the connection's own model fails; to the probe model it does not.
    let (endpoint, _) = bedrock(403, Some("AccessDeniedException")).await;
    let outcome = validator()
        .validate(aws(&endpoint, Some("amazon.nova-pro-v1:0")))
        .await;
    assert_failure(&outcome, "denied access to model amazon.nova-pro-v1:0");
    let outcome = validator().validate(aws(&endpoint, None)).await;
    assert!(outcome.success, "{outcome:?}");
    assert!(
        outcome.message.contains("says nothing of yours"),
        "{}",
        outcome.message
    );
    // Bedrock failing is not a verdict on the credentials.
    let (endpoint, _) = bedrock(500, Some("InternalServerException")).await;
    assert_failure(
        &validator().validate(aws(&endpoint, None)).await,
        "InternalServerException",
    );
    // Missing credentials are named before anything is sent.
    let (endpoint, seen) = bedrock(400, Some("ValidationException")).await;
    let outcome = validator()
        .validate(ValidationRequest {
            secret: None,
            ..aws(&endpoint, None)
        })
        .await;
    assert_failure(&outcome, "secret access key");
    assert!(seen.lock().unwrap().is_none(), "nothing sent");
}

#[tokio::test]
async fn rejected_credentials_quote_the_provider() {
    let mock = Mock::start().await;
    let v = validator();
    let openai = mock.endpoint("/openai/v1");
    let outcome = v
        .validate(request(
            AiType::Openai,
            &openai,
            Some(OPENAI_ORG),
            Some("sk-wrong-secret-000"),
        ))
        .await;
    assert_failure(
        &outcome,
        "provider rejected the credentials (401 Unauthorized): Incorrect API key provided",
    );
    assert!(outcome.message.contains("check the secret"));

    let anthropic = mock.endpoint("/anthropic");
    let outcome = v
        .validate(request(
            AiType::Anthropic,
            &anthropic,
            None,
            Some("sk-ant-wrong"),
        ))
        .await;
    assert_failure(&outcome, "(401 Unauthorized): invalid x-api-key");

    let google = mock.endpoint("/google");
    let outcome = v
        .validate(request(AiType::Google, &google, None, None))
        .await;
    assert_failure(&outcome, "(400 Bad Request): API key not valid.");

    let long = mock.endpoint("/long-error/v1");
    let outcome = v
        .validate(request(AiType::Other, &long, None, Some("s")))
        .await;
    assert_failure(&outcome, "(403 Forbidden): xxx");
    assert!(
        outcome.message.contains(&format!("{}…", "x".repeat(300))),
        "{}",
        outcome.message
    );
    assert!(!outcome.message.contains(&"x".repeat(301)));

    let text = mock.endpoint("/error-text/v1");
    let outcome = v.validate(request(AiType::Other, &text, None, None)).await;
    assert_failure(
        &outcome,
        "provider failed (502 Bad Gateway); try again later",
    );

    let missing = mock.endpoint("/nowhere");
    let outcome = v
        .validate(request(AiType::Other, &missing, None, None))
        .await;
    assert_failure(
        &outcome,
        "(404 Not Found): no such route; check the endpoint",
    );
}

#[tokio::test]
async fn redirect_is_reported_not_followed() {
    let mock = Mock::start().await;
    let endpoint = mock.endpoint("/redirect");
    let outcome = validator()
        .validate(request(
            AiType::Openai,
            &endpoint,
            Some(OPENAI_ORG),
            Some(OPENAI_SECRET),
        ))
        .await;
    assert_failure(
        &outcome,
        &format!(
            "provider answered with a redirect (302 Found) to http://{}/openai/v1/models; set the endpoint to the final URL",
            mock.addr
        ),
    );
    assert_eq!(mock.hits("/redirect/models"), 1);
    assert_eq!(
        mock.hits("/openai/v1/models"),
        0,
        "the redirect must not be followed"
    );
}

#[tokio::test]
async fn timeout_covers_answer_and_body() {
    let mock = Mock::start().await;
    let v = Validator::new(Duration::from_millis(300), false);
    for prefix in ["/slow/v1", "/slow-body/v1"] {
        let endpoint = mock.endpoint(prefix);
        let started = std::time::Instant::now();
        let outcome = v
            .validate(request(AiType::Other, &endpoint, None, Some("s")))
            .await;
        assert_failure(&outcome, "provider did not answer within 0.3s");
        assert!(started.elapsed() < Duration::from_secs(5), "{prefix}");
    }
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let mock = Mock::start().await;
    for prefix in ["/big/v1", "/big-chunked/v1"] {
        let endpoint = mock.endpoint(prefix);
        let outcome = validator()
            .validate(request(AiType::Other, &endpoint, None, None))
            .await;
        assert_failure(&outcome, "larger than 4 MiB");
    }
}

#[tokio::test]
async fn answer_that_is_not_a_model_list() {
    let mock = Mock::start().await;
    let endpoint = mock.endpoint("/html/v1");
    let outcome = validator()
        .validate(request(AiType::Other, &endpoint, None, None))
        .await;
    assert_failure(&outcome, "not with a model list");
}

#[tokio::test]
async fn echoed_credentials_are_scrubbed() {
    let mock = Mock::start().await;
    let endpoint = mock.endpoint("/echo/v1");
    let outcome = validator()
        .validate(request(
            AiType::Openai,
            &endpoint,
            Some(OPENAI_ORG),
            Some(OPENAI_SECRET),
        ))
        .await;
    assert_failure(
        &outcome,
        "Incorrect API key provided: [redacted]. Organization [redacted] not found.",
    );
    assert!(!outcome.message.contains(OPENAI_SECRET));
    assert!(!outcome.message.contains(OPENAI_ORG));

    let endpoint = mock.endpoint("/echo-model/v1");
    let outcome = validator()
        .validate(request(AiType::Other, &endpoint, None, Some(OTHER_SECRET)))
        .await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.models, ["ok-model"]);
}

#[tokio::test]
async fn metadata_endpoints_are_refused_without_connecting() {
    let v = Validator::new(Duration::from_secs(30), false);
    for endpoint in [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/latest",
    ] {
        let started = std::time::Instant::now();
        let outcome = v
            .validate(request(AiType::Other, endpoint, None, Some("s")))
            .await;
        assert_failure(
            &outcome,
            "is a link-local or cloud metadata address; refused",
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{endpoint} took a network round"
        );
    }
    let lenient = Validator::new(Duration::from_secs(30), true);
    assert!(
        lenient
            .check_endpoint(AiType::Other, "http://169.254.169.254/")
            .is_ok()
    );
    assert!(
        lenient
            .check_endpoint(AiType::Other, "http://[fd00:ec2::254]/")
            .is_ok()
    );
    assert!(
        v.check_endpoint(AiType::Other, "http://169.254.169.254/")
            .is_err()
    );
}

#[tokio::test]
async fn connection_refused_names_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = format!("http://{addr}/v1");
    let outcome = validator()
        .validate(request(AiType::Other, &endpoint, None, None))
        .await;
    assert_failure(&outcome, &format!("connection to {addr} refused"));
}

#[tokio::test]
async fn unresolvable_host_is_named() {
    let outcome = validator()
        .validate(request(
            AiType::Other,
            "http://no-such-host.invalid/v1",
            None,
            None,
        ))
        .await;
    assert_failure(&outcome, "could not resolve host no-such-host.invalid");
}

#[tokio::test]
async fn bad_endpoint_and_bad_header_values_fail_cleanly() {
    let v = validator();
    let outcome = v
        .validate(request(
            AiType::Openai,
            "api.openai.com/v1",
            None,
            Some("s"),
        ))
        .await;
    assert_failure(&outcome, "endpoint must start with https:// or http://");
    let outcome = v
        .validate(request(
            AiType::Openai,
            "http://127.0.0.1:1/v1",
            None,
            Some("sk\r\nx-evil: 1"),
        ))
        .await;
    assert_failure(
        &outcome,
        "the secret contains characters that cannot be sent",
    );
    assert!(!outcome.message.contains("x-evil"));
}

#[test]
fn debug_output_hides_credentials() {
    let req = request(
        AiType::Openai,
        "https://api.openai.com/v1",
        Some("org-secret"),
        Some("sk-secret"),
    );
    let dbg = format!("{req:?}");
    assert!(
        !dbg.contains("org-secret") && !dbg.contains("sk-secret"),
        "{dbg}"
    );
    assert!(dbg.contains("[redacted]"));
}

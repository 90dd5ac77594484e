//! AWS connections end to end: the real binaries, a mock Bedrock runtime that verifies every
//! SigV4 signature (or Bedrock API key), and the `async-openai` client talking to the gateway's OpenAI front.

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestSystemMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, FinishReason,
};
use serde_json::{Value, json};
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, collect_stream, weather_tool};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_bedrock::{
    AWS_ACCESS_KEY_ID, AWS_REGION, BEDROCK_API_KEY, BEDROCK_USAGE, REQUEST_ID,
};
use tollgate_tests::mock_provider::Behavior;
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, http, wait_until};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYTOLLGATEKEY";
/// A Bedrock model id with the `:` that must be percent-encoded in the URL.
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const CONVERSE: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
const STREAM: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream";

struct Setup {
    cp: ControlPlane,
    dp: DataPlane,
    mock: MockProvider,
    key: String,
}

/// An AWS connection `name` to the mock with the given secret access key.
async fn create_aws(cp: &ControlPlane, name: &str, endpoint: String, secret: &str) {
    cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: proto::AiType::Aws as i32,
            endpoint,
            key: AWS_ACCESS_KEY_ID.into(),
            secret: secret.into(),
            region: AWS_REGION.into(),
            models: vec![MODEL.into()],
            ..Default::default()
        })
        .await
        .expect("create AWS llm");
}

/// Repository `repo` with connection `llm` attached, and a key on it (its secret).
async fn repo_key(cp: &ControlPlane, repo: &str, llm: &str) -> String {
    let ctl = cp.ctl();
    ctl.run(&["repo", "create", "--workspace", "default", "--name", repo])
        .await
        .ok();
    ctl.run(&["repo", "attach", repo, llm]).await.ok();
    ctl.run(&[
        "-o", "json", "key", "create", "--repo", repo, "--name", "app",
    ])
    .await
    .ok()
    .json()["secret"]
        .as_str()
        .expect("key")
        .to_string()
}

async fn setup() -> Setup {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    create_aws(&cp, "bedrock", mock.url(), SECRET).await;
    let key = repo_key(&cp, "b-app", "bedrock").await;
    let dp = DataPlane::start(&cp, "production").await;
    Setup { cp, dp, mock, key }
}

async fn stats(cp: &ControlPlane, id: &str) -> (u64, u64, u64) {
    let stats = cp
        .client()
        .await
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: id.into(),
            ..Default::default()
        })
        .await
        .expect("stats");
    let s = &stats.stats[0];
    (s.total_api_calls, s.total_tokens_in, s.total_tokens_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_chat_streaming_and_tools() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    let mut served = 0u64;

    // Plain chat, qualified and bare model names; a system message becomes `system`.
    for model in [format!("bedrock/{MODEL}"), MODEL.to_owned()] {
        let mut req = chat(&model, "Say hello");
        req.messages.insert(
            0,
            ChatCompletionRequestSystemMessage::from("Be brief.").into(),
        );
        let resp = client
            .chat()
            .create(req)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        served += 1;
        assert_eq!(
            resp.choices[0].message.content.as_deref(),
            Some("Hello from mock Bedrock")
        );
        assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(resp.model, model, "the client's model name is echoed");
        assert_eq!(resp.id, format!("chatcmpl-{REQUEST_ID}"));
        let usage = resp.usage.expect("usage");
        assert_eq!(
            (usage.prompt_tokens as u64, usage.completion_tokens as u64),
            BEDROCK_USAGE
        );
    }
    // The mock verified each signature; check what was signed and sent.
    let calls = s.mock.calls(CONVERSE);
    assert_eq!(calls.len(), 2, "{:?}", s.mock.seen());
    let sent = &calls[1];
    let authorization = sent.header("authorization").expect("signed");
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/"))
            && authorization.contains(&format!("/{AWS_REGION}/bedrock/aws4_request")),
        "{authorization}"
    );
    assert!(sent.header("x-amz-date").is_some());
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = sent.json();
    assert_eq!(body["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"text": "Say hello"}]}])
    );

    // Streaming: no usage chunk unless asked, then the provider's numbers.
    let streamed = CreateChatCompletionRequest {
        stream: Some(true),
        ..chat(MODEL, "hi")
    };
    let (text, _, usage, _) = collect_stream(&client, streamed.clone()).await;
    served += 1;
    assert_eq!(text, "Hello from mock Bedrock");
    assert_eq!(usage, None);
    let (text, _, usage, chunks) = collect_stream(
        &client,
        CreateChatCompletionRequest {
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..streamed
        },
    )
    .await;
    served += 1;
    assert_eq!(text, "Hello from mock Bedrock");
    assert_eq!(usage, Some(BEDROCK_USAGE));
    assert!(chunks >= 7, "role, four texts, finish, usage: {chunks}");
    assert_eq!(s.mock.calls(STREAM).len(), 2);

    // Tools, streamed: the arguments arrive in pieces and add up to the JSON input.
    let (_, args, _, _) = collect_stream(
        &client,
        CreateChatCompletionRequest {
            stream: Some(true),
            tools: Some(vec![weather_tool()]),
            ..chat(MODEL, "weather in Paris?")
        },
    )
    .await;
    served += 1;
    let parsed: Value = serde_json::from_str(&args).expect("arguments are JSON");
    assert_eq!(parsed, json!({"city": "Paris"}));
    let declared = s.mock.calls(STREAM).last().expect("call").json();
    assert_eq!(
        declared["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );

    // Tools, not streamed.
    let resp = client
        .chat()
        .create(CreateChatCompletionRequest {
            tools: Some(vec![weather_tool()]),
            ..chat(MODEL, "weather in Paris?")
        })
        .await
        .expect("tool call");
    served += 1;
    let tool_calls = resp.choices[0].message.tool_calls.as_ref().expect("calls");
    let ChatCompletionMessageToolCalls::Function(call) = &tool_calls[0] else {
        panic!("a function call");
    };
    assert_eq!(call.id, "tooluse_mock01");
    assert_eq!(call.function.name, "get_weather");
    let parsed: Value = serde_json::from_str(&call.function.arguments).expect("json");
    assert_eq!(parsed, json!({"city": "Paris"}));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));

    // The round trip: the call and its result go back as toolUse and toolResult blocks.
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let round_trip = json!({
        "model": MODEL,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "tooluse_mock01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "tooluse_mock01", "content": "{\"celsius\": 21}"}
        ]
    });
    let (status, answer) = http::post_json(&url, Some(&s.key), &round_trip.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    served += 1;
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from mock Bedrock"
    );
    let sent = s.mock.calls(CONVERSE).last().expect("call").json();
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_mock01", "name": "get_weather", "input": {"city": "Paris"}}}]})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_mock01", "content": [{"json": {"celsius": 21}}]}}]})
    );

    // Usage of every call reaches the control plane, with Bedrock's token counts.
    let (ti, to) = BEDROCK_USAGE;
    let cp = &s.cp;
    wait_until(20, "Bedrock usage to be reported", || async move {
        stats(cp, "bedrock").await == (served, served * ti, served * to)
    })
    .await;
    for text in [s.dp.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "an AWS secret key leaked into logs");
    }
    conformance::passed(
        Provider::Aws,
        &[
            Capability::Chat,
            Capability::Stream,
            Capability::Tools,
            Capability::StreamedTools,
            Capability::Usage,
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_errors_bad_signature_and_api_keys() {
    let s = setup().await;
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).to_string();

    // A request Bedrock cannot take is refused before any upstream call, as an OpenAI 400.
    let bad = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]}]});
    let (status, j) = http::post_json(&url, Some(&s.key), &bad.to_string()).await;
    assert_eq!(status, 400, "{j}");
    assert_eq!(
        j["error"]["param"], "messages[0].content[0].image_url.url",
        "{j}"
    );
    assert!(s.mock.calls(CONVERSE).is_empty());

    // Bedrock's errors come back OpenAI-shaped, with the right status.
    for (upstream, want, kind, code) in [
        (429, 429, "rate_limit_error", "ThrottlingException"),
        (408, 504, "timeout", "ModelTimeoutException"),
        (500, 502, "api_error", "InternalServerException"),
        (
            503,
            503,
            "service_unavailable",
            "ServiceUnavailableException",
        ),
    ] {
        s.mock.set_behavior(Behavior {
            fail_status: Some(upstream),
            ..Default::default()
        });
        let (status, j) = http::post_json(&url, Some(&s.key), &body).await;
        assert_eq!(status, want, "{upstream}: {j}");
        assert_eq!(j["error"]["type"], kind, "{upstream}: {j}");
        assert_eq!(j["error"]["code"], code, "{upstream}: {j}");
        assert_eq!(
            j["error"]["message"],
            format!("mock upstream failure {upstream}")
        );
    }
    s.mock.set_behavior(Behavior::default());

    // A connection with the wrong secret: the mock's signature check fails, and the app
    // gets a 502 naming the connection, Bedrock's exception inside (a 403 would read as
    // "your key is refused", and the app's key was fine).
    create_aws(&s.cp, "wrong", s.mock.url(), "not-the-secret-access-key").await;
    s.cp.ctl()
        .run(&["repo", "attach", "b-app", "wrong"])
        .await
        .ok();
    let wrong =
        json!({"model": format!("wrong/{MODEL}"), "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let mut answer = (0, Value::Null);
    for _ in 0..40 {
        answer = http::post_json(&url, Some(&s.key), &wrong).await;
        if answer.0 != 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, j) = answer;
    assert_eq!(status, 502, "{j}");
    assert_eq!(j["error"]["code"], "upstream_credentials_refused", "{j}");
    assert_eq!(j["error"]["type"], "upstream_error", "{j}");
    let message = j["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("connection 'wrong' (403 InvalidSignatureException: "),
        "{j}"
    );

    // Validation signs a real (empty) Converse call: the mock checks the signature.
    let ctl = s.cp.ctl();
    let v = ctl
        .run(&["-o", "json", "llm", "validate", "bedrock"])
        .await
        .ok()
        .json();
    assert_eq!(v["success"], true, "{v}");
    let v = ctl
        .run(&["-o", "json", "llm", "validate", "wrong"])
        .await
        .ok()
        .json();
    assert!(v.get("success").is_none_or(|ok| ok == false), "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("AWS rejected the credentials (InvalidSignatureException)"),
        "{v}"
    );
    assert!(!v.to_string().contains("not-the-secret-access-key"), "{v}");
    let available = ctl
        .run(&["-o", "json", "llm", "available"])
        .await
        .ok()
        .json();
    let names: Vec<_> = available
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"bedrock") && !names.contains(&"wrong"),
        "{names:?}"
    );

    // Passthrough AWS connections forward the app's Bedrock API key as a bearer token.
    s.cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "byok".into(),
            ai_type: proto::AiType::Aws as i32,
            endpoint: s.mock.url(),
            region: AWS_REGION.into(),
            credential_mode: proto::CredentialMode::Passthrough as i32,
            models: vec![MODEL.into()],
            ..Default::default()
        })
        .await
        .expect("create passthrough llm");
    s.cp.ctl()
        .run(&["repo", "attach", "b-app", "byok"])
        .await
        .ok();
    let byok =
        json!({"model": format!("byok/{MODEL}"), "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let send_byok = async |app_key: &str| {
        let bearer = format!("Bearer {app_key}");
        let headers = [
            ("content-type", "application/json"),
            ("x-tollgate-key", s.key.as_str()),
            ("authorization", bearer.as_str()),
        ];
        http::request("POST", &url, &headers, byok.clone().into_bytes())
            .await
            .expect("request")
    };
    let mut answer = (0, String::new());
    for _ in 0..40 {
        answer = send_byok(BEDROCK_API_KEY).await;
        if answer.0 != 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, text) = answer;
    assert_eq!(status, 200, "{text}");
    let last = s.mock.seen().pop().expect("sent upstream");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {BEDROCK_API_KEY}").as_str())
    );
    assert!(last.header("x-tollgate-key").is_none(), "gateway key kept");
    // A key Bedrock refuses is the app's to fix: Bedrock's 403, OpenAI-shaped, scrubbed.
    let (status, text) = send_byok("ABSK-not-a-valid-key").await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("Please make sure your API Key is valid"),
        "{text}"
    );
    // The mock quotes the key's first 16 characters; the gateway redacts them.
    assert!(
        !text.contains("ABSK-not-a-valid") && text.contains("[redacted]"),
        "{text}"
    );

    // A managed connection whose secret is a Bedrock API key (no access key id).
    let created =
        s.cp.client()
            .await
            .create_ai_llm(proto::CreateAiLlmRequest {
                workspace_id: "default".into(),
                name: "apikey".into(),
                ai_type: proto::AiType::Aws as i32,
                endpoint: s.mock.url(),
                secret: BEDROCK_API_KEY.into(),
                region: AWS_REGION.into(),
                models: vec![MODEL.into()],
                ..Default::default()
            })
            .await
            .expect("create API-key llm");
    assert!(!created.ai_llm.expect("llm").key_set);
    let v =
        s.cp.ctl()
            .run(&["-o", "json", "llm", "validate", "apikey"])
            .await
            .ok()
            .json();
    assert_eq!(v["success"], true, "{v}");
    assert!(!v.to_string().contains(BEDROCK_API_KEY), "{v}");
    s.cp.ctl()
        .run(&["repo", "attach", "b-app", "apikey"])
        .await
        .ok();
    let managed =
        json!({"model": format!("apikey/{MODEL}"), "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let mut answer = (0, Value::Null);
    for _ in 0..40 {
        answer = http::post_json(&url, Some(&s.key), &managed).await;
        if answer.0 != 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(
        s.mock.seen().pop().expect("sent").header("authorization"),
        Some(format!("Bearer {BEDROCK_API_KEY}").as_str())
    );
    conformance::passed(Provider::Aws, &[Capability::Errors]);
}

/// Judges and the policy assistant through a Bedrock configuration (signed calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_judges_and_reviews_policies() {
    let s = setup().await;
    tollgate_tests::chat::judge_and_review_with(&s.cp, &s.dp, &s.key, "bedrock", MODEL, MODEL)
        .await;
}

/// An AWS connection storing no credentials signs with the gateway's own AWS identity: on
/// EKS an IAM role for the service account, exchanged at STS (`AssumeRoleWithWebIdentity`,
/// here a mock at `AWS_ENDPOINT_URL_STS`) for temporary credentials. The control plane
/// validates with its identity, the data plane signs chats with its own (session token
/// included) and exchanges once while the credentials are fresh; a data plane without an
/// identity answers 502 saying what to set; no log shows the token or the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_credentials_sign_with_the_gateways_aws_identity() {
    use tollgate_tests::mock_sts::{Issued, MockSts};
    const ROLE: &str = "arn:aws:iam::123456789012:role/tollgate-gateway";
    const WEB_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.e2e-web-identity-token.sig";
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEE2E-session-token-0123456789";
    let sts = MockSts::start(Issued {
        access_key_id: AWS_ACCESS_KEY_ID,
        secret_access_key: SECRET.into(),
        session_token: SESSION_TOKEN,
        role_arn: ROLE,
        token: WEB_TOKEN,
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{WEB_TOKEN}\n")).expect("token file");
    let token_file = token_file.display().to_string();
    let identity = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.as_str()),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_REGION", AWS_REGION),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
    ];
    let mut cp = ControlPlane::builder(Backend::Embedded);
    for (k, v) in identity {
        cp = cp.env(k, v);
    }
    let cp = cp.start().await;
    let mock = MockProvider::start(SECRET).await;
    let client = cp.client().await;
    let created = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "irsa".into(),
            ai_type: proto::AiType::Aws as i32,
            endpoint: mock.url(),
            region: AWS_REGION.into(),
            models: vec![MODEL.into()],
            ..Default::default()
        })
        .await
        .expect("an AWS connection without credentials is accepted");
    let validated = client
        .validate_ai_llm(proto::ValidateAiLlmRequest {
            id: created.ai_llm_id.clone(),
            workspace_id: "default".into(),
        })
        .await
        .expect("validate");
    assert!(validated.success, "{}", validated.message);
    assert_eq!(sts.calls(), 1, "the control plane exchanged its token");
    // An access key id without its secret is still refused.
    let err = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "half".into(),
            ai_type: proto::AiType::Aws as i32,
            region: AWS_REGION.into(),
            key: AWS_ACCESS_KEY_ID.into(),
            ..Default::default()
        })
        .await
        .expect_err("key id without secret");
    assert!(err.to_string().contains("secret access key"), "{err}");
    // The gateway's role signs only for AWS's hosts, and only an org admin may hand it out.
    let err = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "elsewhere".into(),
            ai_type: proto::AiType::Aws as i32,
            endpoint: "https://bedrock.attacker.example".into(),
            region: AWS_REGION.into(),
            ..Default::default()
        })
        .await
        .expect_err("not an AWS host");
    assert!(err.to_string().contains("is not an AWS host"), "{err}");
    let writer = cp
        .ctl()
        .run(&[
            "-o",
            "json",
            "token",
            "create",
            "--name",
            "ws-writer",
            "--workspace",
            "default",
            "--role",
            "write",
        ])
        .await
        .ok()
        .json()["secret"]
        .as_str()
        .expect("token")
        .to_string();
    let err = cp
        .client_with(&writer)
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "by-writer".into(),
            ai_type: proto::AiType::Aws as i32,
            region: AWS_REGION.into(),
            ..Default::default()
        })
        .await
        .expect_err("a workspace token cannot use the gateway's role");
    assert!(
        err.to_string()
            .contains("needs an organization OWNER or ADMIN token"),
        "{err}"
    );

    let key = repo_key(&cp, "app", "irsa").await;
    let mut dp = DataPlane::builder(&cp, "production");
    for (k, v) in identity {
        dp = dp.env(k, v);
    }
    let dp = dp.start().await;
    let body =
        json!({"model": format!("irsa/{MODEL}"), "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    for _ in 0..3 {
        let (status, answer) = http::post_json(
            &format!("{}/v1/chat/completions", dp.url),
            Some(&key),
            &body,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        sts.calls(),
        2,
        "one exchange by the data plane for three calls"
    );
    // The control plane's validation probe (a Converse call) and the three chats.
    let calls = mock.calls(CONVERSE);
    assert_eq!(calls.len(), 4);
    for c in &calls {
        assert_eq!(c.header("x-amz-security-token"), Some(SESSION_TOKEN));
        assert!(
            c.header("authorization")
                .is_some_and(|a| a.contains(&format!("Credential={AWS_ACCESS_KEY_ID}/"))),
            "{:?}",
            c.header("authorization")
        );
    }

    let bare = DataPlane::start(&cp, "production").await;
    let (status, answer) = http::post_json(
        &format!("{}/v1/chat/completions", bare.url),
        Some(&key),
        &body,
    )
    .await;
    assert_eq!(status, 502, "{answer}");
    // The app learns that, the operator why (the log names variables, roles, files).
    assert_eq!(
        answer["error"]["code"], "aws_identity_unavailable",
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("AWS_"), "{message}");
    wait_until(5, "the bare data plane's log says what to set", || async {
        bare.logs()
            .contains("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN")
    })
    .await;
    assert_eq!(mock.calls(CONVERSE).len(), 4, "nothing unsigned was sent");

    for (what, logs) in [("control plane", cp.logs()), ("data plane", dp.logs())] {
        assert!(
            logs.contains(&format!("web identity: role {ROLE}")),
            "{what} does not say which identity it uses"
        );
        for secret in [WEB_TOKEN, SESSION_TOKEN, SECRET] {
            assert!(!logs.contains(secret), "{what} logged {secret}");
        }
    }
}

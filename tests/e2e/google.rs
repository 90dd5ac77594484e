//! GOOGLE connections end to end: the real binaries, a mock Gemini API and the `async-openai`
//! client talking to the gateway's OpenAI-compatible front.

use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestSystemMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, FinishReason,
};
use serde_json::{Value, json};
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, collect_stream, create_llm, weather_tool};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_provider::{Behavior, GOOGLE_USAGE};
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, http, wait_until};

const SECRET: &str = "AIza-gateway-e2e-gemini-key-7c3d";
const MODEL: &str = "gemini-2.0-flash";
const GENERATE: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent";

struct Setup {
    cp: ControlPlane,
    dp: DataPlane,
    mock: MockProvider,
    key: String,
}

async fn setup() -> Setup {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    create_llm(
        &cp,
        "gemini",
        proto::AiType::Google,
        mock.url(),
        MODEL,
        SECRET,
    )
    .await;
    let ctl = cp.ctl();
    ctl.run(&[
        "repo",
        "create",
        "--workspace",
        "default",
        "--name",
        "g-app",
    ])
    .await
    .ok();
    ctl.run(&["repo", "attach", "g-app", "gemini"]).await.ok();
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "g-app", "--name", "app",
        ])
        .await
        .ok()
        .json()["secret"]
        .as_str()
        .expect("key")
        .to_string();
    let dp = DataPlane::start(&cp, "production").await;
    Setup { cp, dp, mock, key }
}

async fn stats(cp: &ControlPlane) -> (u64, u64, u64) {
    let stats = cp
        .client()
        .await
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: "gemini".into(),
            ..Default::default()
        })
        .await
        .expect("stats");
    let s = &stats.stats[0];
    (s.total_api_calls, s.total_tokens_in, s.total_tokens_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_chat_streaming_and_tools() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    let mut served = 0u64;

    // Plain chat, qualified and bare model names; a system message becomes systemInstruction.
    for model in ["gemini/gemini-2.0-flash", MODEL] {
        let mut req = chat(model, "Say hello");
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
            Some("Hello from mock Gemini")
        );
        assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(resp.model, model, "the client's model name is echoed");
        let usage = resp.usage.expect("usage");
        assert_eq!(
            (usage.prompt_tokens as u64, usage.completion_tokens as u64),
            GOOGLE_USAGE
        );
    }
    let calls = s.mock.calls(GENERATE);
    assert_eq!(calls.len(), 2);
    let sent = &calls[1];
    assert_eq!(sent.header("x-goog-api-key"), Some(SECRET));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.query, "", "the key never goes in the query string");
    let body = sent.json();
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Say hello"}]}])
    );

    // Streaming: no usage chunk unless asked, then the provider's numbers.
    let streamed = CreateChatCompletionRequest {
        stream: Some(true),
        ..chat(MODEL, "hi")
    };
    let (text, _, usage, _) = collect_stream(&client, streamed.clone()).await;
    served += 1;
    assert_eq!(text, "Hello from mock Gemini");
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
    assert_eq!(text, "Hello from mock Gemini");
    assert_eq!(usage, Some(GOOGLE_USAGE));
    assert!(chunks >= 5, "role, three texts, finish, usage: {chunks}");
    let stream_calls = s.mock.calls(STREAM);
    assert_eq!(stream_calls.len(), 2);
    assert_eq!(stream_calls[0].query, "alt=sse");
    assert_eq!(stream_calls[0].header("x-goog-api-key"), Some(SECRET));

    // Tools, streamed: Gemini sends the whole call, the client gets it in one delta.
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
        declared["tools"][0]["functionDeclarations"][0]["name"],
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
    assert_eq!(call.id, "call_0");
    assert_eq!(call.function.name, "get_weather");
    let parsed: Value = serde_json::from_str(&call.function.arguments).expect("json");
    assert_eq!(parsed, json!({"city": "Paris"}));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));

    // The round trip: the tool result goes back as a functionResponse named after the call.
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let round_trip = json!({
        "model": MODEL,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_0", "content": "{\"celsius\": 21}"}
        ]
    });
    let (status, answer) = http::post_json(&url, Some(&s.key), &round_trip.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    served += 1;
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from mock Gemini"
    );
    let sent = s.mock.calls(GENERATE).last().expect("call").json();
    assert_eq!(
        sent["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
    );
    assert_eq!(
        sent["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"celsius": 21}}}]})
    );

    // Usage of every call reaches the control plane, with Gemini's token counts.
    let (ti, to) = GOOGLE_USAGE;
    let cp = &s.cp;
    wait_until(20, "Gemini usage to be reported", || async move {
        stats(cp).await == (served, served * ti, served * to)
    })
    .await;
    conformance::passed(
        Provider::Google,
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
async fn gemini_errors_and_passthrough() {
    let s = setup().await;
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).to_string();

    // A request Gemini cannot take is refused before any upstream call, as an OpenAI 400.
    let bad = json!({"model": MODEL, "messages": [
        {"role": "tool", "tool_call_id": "call_9", "content": "x"}
    ]});
    let (status, j) = http::post_json(&url, Some(&s.key), &bad.to_string()).await;
    assert_eq!(status, 400, "{j}");
    assert_eq!(j["error"]["param"], "messages[0].tool_call_id", "{j}");
    assert!(s.mock.calls(GENERATE).is_empty());

    // Gemini's errors come back OpenAI-shaped, with the right status.
    for (upstream, want, kind) in [
        (429, 429, "rate_limit_error"),
        (500, 502, "api_error"),
        (503, 503, "service_unavailable"),
    ] {
        s.mock.set_behavior(Behavior {
            fail_status: Some(upstream),
            ..Default::default()
        });
        let (status, j) = http::post_json(&url, Some(&s.key), &body).await;
        assert_eq!(status, want, "{upstream}: {j}");
        assert_eq!(j["error"]["type"], kind, "{upstream}: {j}");
        assert_eq!(
            j["error"]["message"],
            format!("mock upstream failure {upstream}")
        );
    }
    s.mock.set_behavior(Behavior::default());

    // Passthrough: the app's own Gemini key goes upstream in x-goog-api-key.
    s.cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "byok".into(),
            ai_type: proto::AiType::Google as i32,
            endpoint: s.mock.url(),
            credential_mode: proto::CredentialMode::Passthrough as i32,
            models: vec![MODEL.into()],
            ..Default::default()
        })
        .await
        .expect("create passthrough llm");
    s.cp.ctl()
        .run(&["repo", "attach", "g-app", "byok"])
        .await
        .ok();
    let byok =
        json!({"model": "byok/gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let send = |provider_key: &'static str| {
        let (url, key, byok) = (url.clone(), s.key.clone(), byok.clone());
        async move {
            let auth = format!("Bearer {provider_key}");
            let headers = [
                ("content-type", "application/json"),
                ("x-tollgate-key", key.as_str()),
                ("authorization", auth.as_str()),
            ];
            http::request("POST", &url, &headers, byok.into_bytes())
                .await
                .expect("request")
        }
    };
    let mut status = 0;
    for _ in 0..40 {
        status = send(SECRET).await.0;
        if status != 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "passthrough with the right key");
    let sent = s.mock.calls(GENERATE);
    let last = sent.last().expect("call");
    assert_eq!(last.header("x-goog-api-key"), Some(SECRET));
    assert_eq!(last.header("authorization"), None);
    // A wrong key: Gemini's 400 API_KEY_INVALID reaches the app as a 401.
    let (status, text) = send("AIza-wrong").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("API key not valid"), "{text}");
    for text in [s.dp.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "a Gemini key leaked into logs");
    }
    conformance::passed(Provider::Google, &[Capability::Errors]);
}

/// Judges and the policy assistant through a Gemini configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_judges_and_reviews_policies() {
    let s = setup().await;
    tollgate_tests::chat::judge_and_review_with(&s.cp, &s.dp, &s.key, "gemini", MODEL, MODEL).await;
}

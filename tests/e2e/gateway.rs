//! The data plane end to end: the real binaries, mock OpenAI and Anthropic upstreams, and a
//! real third-party client (`async-openai`).

use std::time::{Duration, Instant};

use async_openai::types::chat::CreateChatCompletionRequest;
use futures::StreamExt;
use serde_json::json;
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, collect_stream, create_llm, weather_tool};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_provider::{ANTHROPIC_USAGE, Behavior, OPENAI_USAGE};
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, http};

const SECRET: &str = "sk-gateway-e2e-provider-secret-9f8e";

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
        "openai",
        proto::AiType::Openai,
        format!("{}/v1", mock.url()),
        "gpt-4o-mini",
        SECRET,
    )
    .await;
    create_llm(
        &cp,
        "claude",
        proto::AiType::Anthropic,
        mock.url(),
        "claude-sonnet-4-20250514",
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
        "chat-app",
    ])
    .await
    .ok();
    ctl.run(&["repo", "attach", "chat-app", "openai"])
        .await
        .ok();
    ctl.run(&["repo", "attach", "chat-app", "claude"])
        .await
        .ok();
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "chat-app", "--name", "app",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_openai_client() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    for (model, upstream, text, path) in [
        (
            "openai/gpt-4o-mini",
            "gpt-4o-mini",
            "Hello from mock OpenAI",
            "/v1/chat/completions",
        ),
        (
            "gpt-4o-mini",
            "gpt-4o-mini",
            "Hello from mock OpenAI",
            "/v1/chat/completions",
        ),
        (
            "claude/claude-sonnet-4-20250514",
            "claude-sonnet-4-20250514",
            "Hello from mock Claude",
            "/v1/messages",
        ),
        (
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-20250514",
            "Hello from mock Claude",
            "/v1/messages",
        ),
    ] {
        let before = s.mock.calls(path).len();
        let resp = client
            .chat()
            .create(chat(model, "Say hello"))
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(
            resp.choices[0].message.content.as_deref(),
            Some(text),
            "{model}"
        );
        let usage = resp.usage.expect("usage");
        let want = if path == "/v1/messages" {
            ANTHROPIC_USAGE
        } else {
            OPENAI_USAGE
        };
        assert_eq!(
            (usage.prompt_tokens as u64, usage.completion_tokens as u64),
            want,
            "{model}"
        );
        let calls = s.mock.calls(path);
        assert_eq!(calls.len(), before + 1, "{model}");
        let sent = calls.last().expect("call").json();
        assert_eq!(
            sent["model"], upstream,
            "{model}: the upstream gets its own model name"
        );
    }
    // Anthropic gets a translated request: system lifted, max_tokens defaulted, its headers.
    let messages = s.mock.calls("/v1/messages");
    let last = messages.last().expect("anthropic call");
    assert_eq!(last.header("x-api-key"), Some(SECRET));
    assert!(last.header("anthropic-version").is_some());
    assert!(last.json()["max_tokens"].as_u64().is_some());

    // OpenAI gets the body as sent: unknown fields and their formatting survive.
    let body = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x_vendor_field":{"keep":[1, 2.50, "é"]}}"#;
    let (status, _) = http::post_json(
        &format!("{}/v1/chat/completions", s.dp.url),
        Some(&s.key),
        body,
    )
    .await;
    assert_eq!(status, 200);
    let sent = s
        .mock
        .calls("/v1/chat/completions")
        .last()
        .expect("call")
        .body
        .clone();
    let sent = String::from_utf8(sent).expect("utf8");
    assert_eq!(
        sent,
        body.replace("openai/gpt-4o-mini", "gpt-4o-mini"),
        "only the model name is rewritten"
    );
    conformance::passed(Provider::Openai, &[Capability::Chat, Capability::Usage]);
    conformance::passed(Provider::Anthropic, &[Capability::Chat, Capability::Usage]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_and_tools() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    for (model, want_text, want_usage) in [
        ("openai/gpt-4o-mini", "Hello from mock OpenAI", OPENAI_USAGE),
        (
            "claude/claude-sonnet-4-20250514",
            "Hello from mock Claude",
            ANTHROPIC_USAGE,
        ),
    ] {
        // Without include_usage the client sees no usage chunk (the gateway still counts).
        let (text, _, usage, _) = collect_stream(
            &client,
            CreateChatCompletionRequest {
                stream: Some(true),
                ..chat(model, "hi")
            },
        )
        .await;
        assert_eq!(text, want_text, "{model}");
        assert_eq!(usage, None, "{model}: no usage chunk unless asked");
        // With include_usage the last chunk carries the provider's numbers.
        let req = CreateChatCompletionRequest {
            stream: Some(true),
            stream_options: Some(async_openai::types::chat::ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..chat(model, "hi")
        };
        let (text, _, usage, _) = collect_stream(&client, req).await;
        assert_eq!(text, want_text);
        assert_eq!(usage, Some(want_usage), "{model}");
        // Tools, streamed: the argument deltas add up to the call's JSON.
        let req = CreateChatCompletionRequest {
            stream: Some(true),
            tools: Some(vec![weather_tool()]),
            ..chat(model, "weather in Paris?")
        };
        let (_, args, _, _) = collect_stream(&client, req).await;
        let parsed: serde_json::Value = serde_json::from_str(&args)
            .unwrap_or_else(|e| panic!("{model}: arguments {args:?}: {e}"));
        assert_eq!(parsed, json!({"city": "Paris"}), "{model}");
        // Tools, not streamed.
        let resp = client
            .chat()
            .create(CreateChatCompletionRequest {
                tools: Some(vec![weather_tool()]),
                ..chat(model, "weather in Paris?")
            })
            .await
            .expect("tool call");
        let call = &resp.choices[0]
            .message
            .tool_calls
            .as_ref()
            .expect("tool calls")[0];
        let async_openai::types::chat::ChatCompletionMessageToolCalls::Function(call) = call else {
            panic!("a function call");
        };
        assert_eq!(call.function.name, "get_weather");
        let parsed: serde_json::Value =
            serde_json::from_str(&call.function.arguments).expect("json arguments");
        assert_eq!(parsed, json!({"city": "Paris"}));
        assert_eq!(
            resp.choices[0].finish_reason,
            Some(async_openai::types::chat::FinishReason::ToolCalls)
        );
    }
    // The gateway asked OpenAI for usage even when the client did not.
    let first_stream = s
        .mock
        .calls("/v1/chat/completions")
        .into_iter()
        .find(|c| c.json()["stream"] == true)
        .expect("stream call");
    assert_eq!(first_stream.json()["stream_options"]["include_usage"], true);

    // Chunks are forwarded as they arrive, not after the whole stream.
    s.mock.set_behavior(Behavior {
        chunk_gap: Duration::from_millis(300),
        ..Default::default()
    });
    let started = Instant::now();
    let mut stream = client
        .chat()
        .create_stream(CreateChatCompletionRequest {
            stream: Some(true),
            ..chat("openai/gpt-4o-mini", "hi")
        })
        .await
        .expect("stream");
    let first = stream.next().await.expect("first chunk");
    assert!(first.is_ok());
    let ttfb = started.elapsed();
    while stream.next().await.is_some() {}
    let total = started.elapsed();
    eprintln!("stream with 300 ms gaps: first chunk after {ttfb:?}, whole stream {total:?}");
    assert!(
        ttfb < total / 2,
        "first chunk {ttfb:?} should arrive well before the end {total:?}"
    );
    let proved = [
        Capability::Stream,
        Capability::Tools,
        Capability::StreamedTools,
        Capability::Usage,
    ];
    conformance::passed(Provider::Openai, &proved);
    conformance::passed(Provider::Anthropic, &proved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_openai_shaped() {
    let s = setup().await;
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let body = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let check = |status: u16, want: u16, json: &serde_json::Value, what: &str| {
        assert_eq!(status, want, "{what}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: OpenAI error body: {json}"
        );
    };
    let (st, j) = http::post_json(&url, None, body).await;
    check(st, 401, &j, "missing key");
    let (st, j) = http::post_json(&url, Some("tg_wrong"), body).await;
    check(st, 401, &j, "wrong key");
    let (st, j) =
        http::post_json(&url, Some(&s.key), r#"{"model":"nope/none","messages":[]}"#).await;
    check(st, 404, &j, "unknown model");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nope/none"),
        "names the model: {j}"
    );
    let (st, j) = http::post_json(
        &url,
        Some(&s.key),
        r#"{"model": "openai/gpt-4o-mini", "messages": [}"#,
    )
    .await;
    check(st, 400, &j, "malformed JSON");
    let (st, j) = http::post_json(&url, Some(&s.key), "\u{0}\u{1}not json at all \u{fffd}").await;
    check(st, 400, &j, "garbage");
    // Over the body limit (10 MiB by default): refused before the body is read.
    let (st, text) = http::early_answer(&url, &s.key, 11 * 1024 * 1024).await;
    let j: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    check(st, 413, &j, "over the body limit");

    // A provider error reaches the client as an OpenAI error with the provider's status.
    s.mock.set_behavior(Behavior {
        fail_status: Some(429),
        ..Default::default()
    });
    let (st, j) = http::post_json(&url, Some(&s.key), body).await;
    check(st, 429, &j, "provider rate limit");
    let (st, j) = http::post_json(
        &url,
        Some(&s.key),
        &body.replace("openai/gpt-4o-mini", "claude/claude-sonnet-4-20250514"),
    )
    .await;
    check(st, 429, &j, "anthropic rate limit, translated");
    s.mock.set_behavior(Behavior::default());

    // Upstream down: 502.
    create_llm(
        &s.cp,
        "down",
        proto::AiType::Openai,
        format!("http://127.0.0.1:{}/v1", tollgate_tests::free_port()),
        "m-down",
        SECRET,
    )
    .await;
    s.cp.ctl()
        .run(&["repo", "attach", "chat-app", "down"])
        .await
        .ok();
    let down = body.replace("openai/gpt-4o-mini", "down/m-down");
    let mut st = 0;
    for _ in 0..40 {
        let (status, j) = http::post_json(&url, Some(&s.key), &down).await;
        st = status;
        if status != 404 {
            check(status, 502, &j, "upstream down");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st, 502);
    conformance::passed(Provider::Openai, &[Capability::Errors]);
    conformance::passed(Provider::Anthropic, &[Capability::Errors]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_times_out() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    create_llm(
        &cp,
        "openai",
        proto::AiType::Openai,
        format!("{}/v1", mock.url()),
        "gpt-4o-mini",
        SECRET,
    )
    .await;
    let ctl = cp.ctl();
    ctl.run(&["repo", "create", "--workspace", "default", "--name", "r"])
        .await
        .ok();
    ctl.run(&["repo", "attach", "r", "openai"]).await.ok();
    let key = ctl
        .run(&["-o", "json", "key", "create", "--repo", "r", "--name", "k"])
        .await
        .ok()
        .json()["secret"]
        .as_str()
        .expect("key")
        .to_string();
    let dp = DataPlane::start_with(
        &cp,
        "production",
        &[
            "--upstream-first-byte-timeout-ms",
            "300",
            "--upstream-idle-timeout-ms",
            "300",
        ],
    )
    .await;
    mock.set_behavior(Behavior {
        delay: Duration::from_secs(3),
        ..Default::default()
    });
    let started = Instant::now();
    let (st, j) = http::post_json(
        &format!("{}/v1/chat/completions", dp.url),
        Some(&key),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(st, 504, "{j}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
}

/// A new connection and a revoked key take effect in under a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_propagate_within_a_second() {
    let s = setup().await;
    let url = format!("{}/v1/chat/completions", s.dp.url);
    let body = r#"{"model":"fresh/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let (st, _) = http::post_json(&url, Some(&s.key), body).await;
    assert_eq!(st, 404);
    let started = Instant::now();
    create_llm(
        &s.cp,
        "fresh",
        proto::AiType::Openai,
        format!("{}/v1", s.mock.url()),
        "gpt-4o-mini",
        SECRET,
    )
    .await;
    s.cp.ctl()
        .run(&["repo", "attach", "chat-app", "fresh"])
        .await
        .ok();
    let written = started.elapsed();
    loop {
        let (st, _) = http::post_json(&url, Some(&s.key), body).await;
        if st == 200 {
            break;
        }
        assert!(
            started.elapsed() < written + Duration::from_secs(1),
            "a new connection took over 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "new connection routable {:?} after the attach returned",
        started.elapsed() - written
    );

    let keys =
        s.cp.client()
            .await
            .list_api_keys(proto::ListApiKeysRequest {
                repository_id: "chat-app".into(),
                ..Default::default()
            })
            .await
            .expect("keys");
    let revoked_at = Instant::now();
    s.cp.ctl()
        .run(&["key", "revoke", &keys.api_keys[0].id])
        .await
        .ok();
    let written = revoked_at.elapsed();
    loop {
        let (st, _) = http::post_json(&url, Some(&s.key), body).await;
        if st == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < written + Duration::from_secs(1),
            "a revoked key still worked after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "revoked key refused {:?} after the revoke returned",
        revoked_at.elapsed() - written
    );
}

async fn total_calls(cp: &ControlPlane) -> (u64, u64, u64) {
    let stats = cp
        .client()
        .await
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: "openai".into(),
            ..Default::default()
        })
        .await
        .expect("stats");
    let s = &stats.stats[0];
    (s.total_api_calls, s.total_tokens_in, s.total_tokens_out)
}

/// `kill -9` of the control plane while traffic flows: the data plane keeps serving, and the
/// usage of every request arrives exactly once after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_outage_loses_no_usage() {
    let mut s = setup().await;
    let client = s.dp.openai(&s.key);
    let mut served = 0u64;
    for _ in 0..5 {
        client
            .chat()
            .create(chat("openai/gpt-4o-mini", "hi"))
            .await
            .expect("chat");
        served += 1;
    }
    s.cp.kill9().await;
    let mut during = 0u64;
    for i in 0..10 {
        let req = if i % 2 == 0 {
            chat("openai/gpt-4o-mini", "hi")
        } else {
            CreateChatCompletionRequest {
                stream: Some(true),
                ..chat("openai/gpt-4o-mini", "hi")
            }
        };
        if i % 2 == 0 {
            client
                .chat()
                .create(req)
                .await
                .expect("served while the control plane is down");
        } else {
            collect_stream(&client, req).await;
        }
        during += 1;
    }
    served += during;
    eprintln!("requests served while the control plane was down: {during}");
    s.cp.restart().await;
    let (ti, to) = OPENAI_USAGE;
    let started = Instant::now();
    loop {
        let (calls, tin, tout) = total_calls(&s.cp).await;
        if calls == served {
            assert_eq!((tin, tout), (served * ti, served * to));
            break;
        }
        assert!(calls < served, "usage counted twice: {calls} > {served}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "usage did not arrive: {calls} of {served}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "usage delivered {:?} after the control plane came back",
        started.elapsed()
    );
    // Nothing arrives twice later either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(total_calls(&s.cp).await.0, served);
    // The key's last use is known from the reports.
    let keys =
        s.cp.client()
            .await
            .list_api_keys(proto::ListApiKeysRequest {
                repository_id: "chat-app".into(),
                ..Default::default()
            })
            .await
            .expect("keys");
    let last = keys.api_keys[0].last_used_at.expect("last_used_at set");
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        - last.seconds;
    assert!((0..180).contains(&age), "last used {age} s ago");
    // Kept to the minute, yet never before the key existed.
    let created = keys.api_keys[0].created_at.expect("created_at");
    assert!(
        (last.seconds, last.nanos) >= (created.seconds, created.nanos),
        "{last:?} before {created:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_environments_and_secrets() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    let models = client.models().list().await.expect("models");
    let ids: Vec<_> = models.data.iter().map(|m| m.id.as_str()).collect();
    for want in [
        "openai/gpt-4o-mini",
        "gpt-4o-mini",
        "claude/claude-sonnet-4-20250514",
        "claude-sonnet-4-20250514",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
        // The OpenAI client's retrieve (`GET /v1/models/{id}`, the `/` unencoded).
        let one = client.models().retrieve(want).await.expect("retrieve");
        assert_eq!(one.id, want);
    }
    let missing = client.models().retrieve("openai/gpt-4o").await;
    assert!(
        matches!(&missing, Err(async_openai::error::OpenAIError::ApiError(e)) if e.api_error.code.as_deref() == Some("model_not_found")),
        "{missing:?}"
    );
    // A model the connection does not expose is not routable, qualified or not.
    let (st, _) = http::post_json(
        &format!("{}/v1/chat/completions", s.dp.url),
        Some(&s.key),
        r#"{"model":"openai/gpt-4o","messages":[]}"#,
    )
    .await;
    assert_eq!(st, 404);
    // A data plane in another environment does not see production connections.
    let staging = DataPlane::start(&s.cp, "staging").await;
    let (st, j) = http::post_json(
        &format!("{}/v1/chat/completions", staging.url),
        Some(&s.key),
        r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(st, 404, "{j}");
    // Traffic happened; no secret in the data plane's logs or metrics.
    client
        .chat()
        .create(chat("gpt-4o-mini", "hi"))
        .await
        .expect("chat");
    // Each request on a new connection goes to the next worker thread; /metrics sums the
    // workers' shards.
    for _ in 0..4 {
        let (st, j) = http::post_json(
            &format!("{}/v1/chat/completions", s.dp.url),
            Some(&s.key),
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(st, 200, "{j}");
    }
    let metrics = s.dp.metrics().await;
    for line in [
        r#"tollgate_requests_total{status="200",model="gpt-4o-mini"} 5"#,
        // The models list and the 4 retrieves; the 404s: a model retrieved, one asked for.
        r#"tollgate_requests_total{status="200",model=""} 5"#,
        r#"tollgate_requests_total{status="404",model=""} 2"#,
        "tollgate_request_duration_seconds_count 12",
        "tollgate_upstream_duration_seconds_count 5",
        r#"tollgate_tokens_total{direction="in",model="gpt-4o-mini"} "#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // Moved to staging, then out of every environment: each data plane follows.
    let status_on = |url: String| {
        let key = s.key.clone();
        async move {
            let body =
                r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
            http::post_json(&format!("{url}/v1/chat/completions"), Some(&key), body)
                .await
                .0
        }
    };
    let settle = |want_prod: u16, want_staging: u16| {
        let (prod, stag) = (s.dp.url.clone(), staging.url.clone());
        async move {
            let mut got = (0, 0);
            for _ in 0..100 {
                got = (status_on(prod.clone()).await, status_on(stag.clone()).await);
                if got == (want_prod, want_staging) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("production, staging: {got:?}, want ({want_prod}, {want_staging})");
        }
    };
    let ctl = s.cp.ctl();
    ctl.run(&["llm", "update", "openai", "--environments", "staging"])
        .await
        .ok();
    settle(404, 200).await;
    ctl.run(&["llm", "update", "openai", "--environments", ""])
        .await
        .ok();
    settle(404, 404).await;
    let llm = ctl
        .run(&["-o", "json", "llm", "get", "openai"])
        .await
        .ok()
        .json();
    assert!(
        llm.get("environments")
            .is_none_or(|e| e == &serde_json::json!([])),
        "{llm}"
    );
    // proto3 JSON leaves out a false `available`.
    assert!(
        llm.get("available").is_none_or(|a| a == false),
        "active nowhere, so not available: {llm}"
    );
    for text in [s.dp.logs(), metrics, staging.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "a provider secret leaked");
        assert!(!text.contains(&s.key), "an app key leaked");
    }
}

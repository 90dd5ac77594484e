//! An OTHER connection (any OpenAI-compatible server: vLLM, Ollama, OpenRouter, ...) end to
//! end: created with `tollgatectl llm create --type other`, in front of one mock server that
//! answers `/v1/chat/completions`, `/v1/embeddings` and `/v1/completions` as OpenAI does, and
//! driven by the `async-openai` client through the real binaries. Tools (and tool results
//! sent back), streamed tool calls, embeddings, legacy completions, usage (in the answers and
//! in the control plane's statistics) and errors (the provider's and the gateway's own).

use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    FinishReason, Prompt,
};
use async_openai::types::completions::CreateCompletionRequest;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use futures::StreamExt;
use serde_json::{Value, json};
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, collect_stream, weather_tool};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_embeddings::{
    COMPLETION_TEXT, COMPLETIONS_USAGE, OPENAI_TOKENS_PER_INPUT, vector,
};
use tollgate_tests::mock_provider::{Behavior, OPENAI_USAGE};
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, http, wait_until};

const SECRET: &str = "sk-other-e2e-vllm-api-key-5c1d";
/// The connection's routing id (from its name).
const ROUTING: &str = "vllm";
/// Model names as an OpenAI-compatible server (vLLM, Ollama) has them: slashes included.
const CHAT_MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
const EMBED_MODEL: &str = "BAAI/bge-m3";
const BASE_MODEL: &str = "Qwen/Qwen2.5-1.5B";

const CHAT: &str = "/v1/chat/completions";
const EMBEDDINGS: &str = "/v1/embeddings";
const COMPLETIONS: &str = "/v1/completions";

struct Setup {
    cp: ControlPlane,
    dp: DataPlane,
    mock: MockProvider,
    /// The OTHER connection's id.
    id: String,
    key: String,
}

/// `<routing id>/<model>`: the name an app uses.
fn qualified(model: &str) -> String {
    format!("{ROUTING}/{model}")
}

/// A control plane with one OTHER connection to the mock (created by `tollgatectl`), a
/// repository and key using it, and a data plane started with `dp_args`.
async fn setup(dp_args: &[&str]) -> Setup {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    let ctl = cp.ctl();
    let endpoint = format!("{}/v1", mock.url());
    let models = [CHAT_MODEL, EMBED_MODEL, BASE_MODEL].join(",");
    let created = ctl
        .run_stdin(
            &[
                "-o",
                "json",
                "llm",
                "create",
                "--workspace",
                "default",
                "--name",
                ROUTING,
                "--type",
                "other",
                "--endpoint",
                &endpoint,
                "--models",
                &models,
                "--secret-stdin",
            ],
            Some(SECRET),
        )
        .await
        .ok()
        .json();
    let id = created["aiLlmId"]
        .as_str()
        .or(created["id"].as_str())
        .expect("id")
        .to_owned();
    let got = ctl
        .run(&["-o", "json", "llm", "get", &id])
        .await
        .ok()
        .json();
    assert_eq!(got["aiType"], "OTHER", "{got}");
    assert_eq!(got["routingId"], ROUTING, "{got}");
    ctl.run(&["repo", "create", "--workspace", "default", "--name", "app"])
        .await
        .ok();
    ctl.run(&["repo", "attach", "app", &id]).await.ok();
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "app", "--name", "k",
        ])
        .await
        .ok()
        .json()["secret"]
        .as_str()
        .expect("key")
        .to_owned();
    let dp = DataPlane::start_with(&cp, "production", dp_args).await;
    Setup {
        cp,
        dp,
        mock,
        id,
        key,
    }
}

/// The connection's lifetime usage: (calls, tokens in, tokens out).
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

/// The status and OpenAI error of a failed call, as the `async-openai` client parsed them
/// (it parses `{"error":{...}}` bodies of 4xx answers).
#[track_caller]
fn api_error<T: std::fmt::Debug>(
    result: Result<T, OpenAIError>,
    what: &str,
) -> (u16, async_openai::error::ApiError) {
    match result {
        Err(OpenAIError::ApiError(e)) => (e.status_code.as_u16(), e.api_error),
        other => panic!("{what}: an OpenAI error answer, got {other:?}"),
    }
}

/// Streams a legacy completion to the end: (text, usage if a usage chunk came).
async fn collect_completion(
    client: &async_openai::Client<async_openai::config::OpenAIConfig>,
    req: CreateCompletionRequest,
) -> (String, Option<(u64, u64)>) {
    let mut stream = client
        .completions()
        .create_stream(req)
        .await
        .expect("completion stream");
    let (mut text, mut usage) = (String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        if let Some(u) = chunk.usage {
            usage = Some((u64::from(u.prompt_tokens), u64::from(u.completion_tokens)));
        }
        for c in chunk.choices {
            text.push_str(&c.text);
        }
    }
    (text, usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_server() {
    let s = setup(&[]).await;
    let client = s.dp.openai(&s.key);
    let model = qualified(CHAT_MODEL);

    // Tools, not streamed: the call comes back as `tool_calls` with JSON arguments.
    let resp = client
        .chat()
        .create(CreateChatCompletionRequest {
            tools: Some(vec![weather_tool()]),
            ..chat(&model, "weather in Paris?")
        })
        .await
        .expect("tool call");
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.as_ref().expect("tool_calls");
    assert_eq!(calls.len(), 1);
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("a function call: {calls:?}");
    };
    assert_eq!(call.id, "call_abc123");
    assert_eq!(call.function.name, "get_weather");
    let args: Value = serde_json::from_str(&call.function.arguments).expect("JSON arguments");
    assert_eq!(args, json!({"city": "Paris"}));
    let usage = resp.usage.expect("usage");
    assert_eq!(
        (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens)
        ),
        OPENAI_USAGE
    );
    let sent = s.mock.calls(CHAT);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let body = sent[0].json();
    assert_eq!(body["model"], CHAT_MODEL, "the server gets its own name");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");

    // The tool result goes back to the server as sent; the model answers in text.
    let follow_up: CreateChatCompletionRequest = serde_json::from_value(json!({
        "model": model,
        "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": call.id, "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\":21}"},
        ],
    }))
    .expect("a chat request");
    let resp = client
        .chat()
        .create(follow_up)
        .await
        .expect("answer to the tool result");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from mock OpenAI")
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let sent = s.mock.calls(CHAT)[1].json();
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_abc123");
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temp_c\":21}"})
    );

    // Tools, streamed: the call's id and name come first, the argument deltas add up to its
    // JSON; no usage chunk unless asked, though the gateway asked the server for one.
    let mut stream = client
        .chat()
        .create_stream(CreateChatCompletionRequest {
            stream: Some(true),
            tools: Some(vec![weather_tool()]),
            ..chat(&model, "weather in Paris?")
        })
        .await
        .expect("stream");
    let (mut ids, mut names, mut args, mut finish, mut usage_chunks) =
        (Vec::new(), Vec::new(), String::new(), None, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        usage_chunks += usize::from(chunk.usage.is_some());
        for c in chunk.choices {
            finish = c.finish_reason.or(finish);
            for tc in c.delta.tool_calls.unwrap_or_default() {
                assert_eq!(tc.index, 0);
                ids.extend(tc.id);
                if let Some(f) = tc.function {
                    names.extend(f.name);
                    args.push_str(f.arguments.as_deref().unwrap_or_default());
                }
            }
        }
    }
    assert_eq!(ids, ["call_abc123"]);
    assert_eq!(names, ["get_weather"]);
    let parsed: Value =
        serde_json::from_str(&args).unwrap_or_else(|e| panic!("arguments {args:?}: {e}"));
    assert_eq!(parsed, json!({"city": "Paris"}));
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        usage_chunks, 0,
        "the usage chunk the gateway asked for is hidden"
    );
    let sent = s.mock.calls(CHAT)[2].json();
    assert_eq!(sent["stream_options"]["include_usage"], true);

    // A text stream with include_usage: the last chunk carries the server's numbers.
    let (text, _, usage, _) = collect_stream(
        &client,
        CreateChatCompletionRequest {
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..chat(&model, "hi")
        },
    )
    .await;
    assert_eq!(text, "Hello from mock OpenAI");
    assert_eq!(usage, Some(OPENAI_USAGE));

    // Embeddings: one vector per input, in input order; the body forwarded with only the
    // model rewritten.
    let texts = ["The food was delicious", "and the waiter...", "x"];
    let resp = client
        .embeddings()
        .create(CreateEmbeddingRequest {
            model: qualified(EMBED_MODEL),
            input: EmbeddingInput::StringArray(texts.iter().map(|t| (*t).to_owned()).collect()),
            dimensions: Some(8),
            ..Default::default()
        })
        .await
        .expect("embeddings");
    assert_eq!(resp.data.len(), texts.len());
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(resp.data[i].index as usize, i);
        assert_eq!(resp.data[i].embedding, vector(t, Some(8)), "input {i}");
    }
    let embed_tokens = OPENAI_TOKENS_PER_INPUT * texts.len() as u64;
    assert_eq!(u64::from(resp.usage.prompt_tokens), embed_tokens);
    let sent = s.mock.calls(EMBEDDINGS);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let body = sent[0].json();
    assert_eq!(body["model"], EMBED_MODEL, "the server gets its own name");
    assert_eq!(body["input"], json!(texts));
    assert_eq!(body["dimensions"], 8);

    // Legacy completions, not streamed.
    let request = CreateCompletionRequest {
        model: qualified(BASE_MODEL),
        prompt: Prompt::String("Say this is a test".into()),
        max_tokens: Some(7),
        ..Default::default()
    };
    let resp = client
        .completions()
        .create(request.clone())
        .await
        .expect("completion");
    assert_eq!(resp.choices[0].text, COMPLETION_TEXT);
    let usage = resp.usage.expect("usage");
    assert_eq!(
        (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens)
        ),
        COMPLETIONS_USAGE
    );
    // Streamed: the usage chunk only when the app asks for it (the gateway always asks).
    let (text, usage) = collect_completion(
        &client,
        CreateCompletionRequest {
            stream: Some(true),
            ..request.clone()
        },
    )
    .await;
    assert_eq!(text, COMPLETION_TEXT);
    assert_eq!(usage, None, "the gateway's own usage request stays hidden");
    let (text, usage) = collect_completion(
        &client,
        CreateCompletionRequest {
            stream: Some(true),
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..request
        },
    )
    .await;
    assert_eq!(text, COMPLETION_TEXT);
    assert_eq!(usage, Some(COMPLETIONS_USAGE));
    let sent = s.mock.calls(COMPLETIONS);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].json()["model"], BASE_MODEL);
    assert_eq!(sent[0].json()["max_tokens"], 7);
    assert_eq!(
        sent[1].json()["stream_options"],
        json!({"include_usage": true})
    );

    // Usage: every call's tokens reach the control plane's statistics of the connection,
    // the streams whose usage chunk the app did not see included.
    let (p, c) = OPENAI_USAGE;
    let (cp_, cc) = COMPLETIONS_USAGE;
    let want = (8, 4 * p + embed_tokens + 3 * cp_, 4 * c + 3 * cc);
    let what = format!("the usage of {} to be {want:?}", s.id);
    wait_until(20, &what, || async { stats(&s.cp, &s.id).await == want }).await;

    for text in [s.dp.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "the provider key leaked into logs");
        assert!(!text.contains(&s.key), "the app key leaked into logs");
    }
    conformance::passed(
        Provider::Other,
        &[
            Capability::Chat,
            Capability::Stream,
            Capability::Tools,
            Capability::StreamedTools,
            Capability::Embeddings,
            Capability::Usage,
            Capability::Completions,
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_server_errors() {
    // Fast retries: a 5xx is retried DEFAULT_RETRIES (2) times.
    let s = setup(&["--retry-backoff-ms", "1"]).await;
    let client = s.dp.openai(&s.key);
    let model = qualified(CHAT_MODEL);
    let embed = |model: &str| CreateEmbeddingRequest {
        model: model.into(),
        input: EmbeddingInput::String("a".into()),
        ..Default::default()
    };
    let complete = |model: &str| CreateCompletionRequest {
        model: model.into(),
        prompt: Prompt::String("a".into()),
        ..Default::default()
    };
    let posts = |mock: &MockProvider| {
        mock.seen()
            .into_iter()
            .filter(|c| c.method == "POST")
            .count()
    };

    // A model the connection does not expose: the gateway's 404, naming it, nothing sent.
    let unknown = qualified("not-served");
    let (status, e) = api_error(
        client.chat().create(chat(&unknown, "hi")).await,
        "unknown chat model",
    );
    assert_eq!(status, 404, "{e:?}");
    assert!(e.message.contains(&unknown), "names the model: {e:?}");
    assert!(e.r#type.is_some(), "{e:?}");
    let (status, e) = api_error(
        client.embeddings().create(embed(&unknown)).await,
        "unknown embedding model",
    );
    assert_eq!(status, 404, "{e:?}");
    assert!(e.message.contains(&unknown), "{e:?}");
    let (status, e) = api_error(
        client.completions().create(complete(&unknown)).await,
        "unknown completion model",
    );
    assert_eq!(status, 404, "{e:?}");
    assert!(e.message.contains(&unknown), "{e:?}");
    assert_eq!(posts(&s.mock), 0, "nothing was sent upstream");

    // The server does not have the model (Ollama before `ollama pull`): its 404 and error
    // body reach the app, not retried.
    s.mock.set_behavior(Behavior {
        fail_status: Some(404),
        ..Default::default()
    });
    let (status, e) = api_error(
        client.chat().create(chat(&model, "hi")).await,
        "the server's 404",
    );
    assert_eq!(status, 404, "{e:?}");
    assert_eq!(e.message, "mock upstream failure 404");
    assert_eq!(e.code.as_deref(), Some("model_not_found"));
    assert_eq!(posts(&s.mock), 1);

    // A 400 of embeddings and of legacy completions: status and body kept.
    s.mock.set_behavior(Behavior {
        fail_status: Some(400),
        ..Default::default()
    });
    let (status, e) = api_error(
        client
            .embeddings()
            .create(embed(&qualified(EMBED_MODEL)))
            .await,
        "embeddings 400",
    );
    assert_eq!(status, 400, "{e:?}");
    assert_eq!(e.message, "mock upstream failure 400");
    assert_eq!(e.r#type.as_deref(), Some("server_error"));
    let (status, e) = api_error(
        client
            .completions()
            .create(complete(&qualified(BASE_MODEL)))
            .await,
        "completions 400",
    );
    assert_eq!(status, 400, "{e:?}");
    assert_eq!(e.message, "mock upstream failure 400");
    assert_eq!(posts(&s.mock), 3);

    // 429 and 5xx through raw HTTP: the `async-openai` client retries those itself (3 times,
    // honouring `Retry-After`), which would hide what the gateway did.
    let url = format!("{}{CHAT}", s.dp.url);
    let request = |stream: bool| {
        json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
    };
    let provider_error = |status: u16, kind: &str, code: &str| {
        json!({"error": {"message": format!("mock upstream failure {status}"), "type": kind,
                         "param": null, "code": code}})
    };

    // A 429 asking for a wait longer than the retry cap: the app gets it at once, for a
    // stream request too (an error answer, not a stream).
    s.mock.set_behavior(Behavior {
        fail_status: Some(429),
        fail_headers: vec![("retry-after".into(), "60".into())],
        ..Default::default()
    });
    for stream in [false, true] {
        let (status, j) = http::post_json(&url, Some(&s.key), &request(stream)).await;
        assert_eq!(status, 429, "stream {stream}: {j}");
        assert_eq!(
            j,
            provider_error(429, "requests", "rate_limit_exceeded"),
            "stream {stream}"
        );
    }
    assert_eq!(
        posts(&s.mock),
        5,
        "a 429 with a long Retry-After is not retried"
    );

    // A 503: retried, then the last answer.
    s.mock.set_behavior(Behavior {
        fail_status: Some(503),
        ..Default::default()
    });
    let (status, j) = http::post_json(&url, Some(&s.key), &request(false)).await;
    assert_eq!(status, 503, "{j}");
    assert_eq!(j, provider_error(503, "server_error", "server_error"));
    assert_eq!(posts(&s.mock), 8, "1 attempt + 2 retries");

    // The server recovers: so does the connection.
    s.mock.set_behavior(Behavior::default());
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        client.chat().create(chat(&model, "hi")),
    )
    .await
    .expect("in time")
    .expect("chat after recovery");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from mock OpenAI")
    );
    conformance::passed(Provider::Other, &[Capability::Errors]);
}

//! Driving the gateway as an app would: connections created through the admin API, chat
//! requests, a tool and stream collection with the `async-openai` client.

use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, FunctionObject,
};
use futures::StreamExt;
use serde_json::json;
use tollgate_sdk::proto;

use crate::ControlPlane;

/// Creates a managed AI LLM configuration in the `default` workspace exposing `model`.
pub async fn create_llm(
    cp: &ControlPlane,
    name: &str,
    ai_type: proto::AiType,
    endpoint: String,
    model: &str,
    secret: &str,
) {
    cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: ai_type as i32,
            endpoint,
            secret: secret.into(),
            models: vec![model.into()],
            ..Default::default()
        })
        .await
        .expect("create llm");
}

/// A one-message chat request.
pub fn chat(model: &str, text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: model.into(),
        messages: vec![ChatCompletionRequestUserMessage::from(text).into()],
        ..Default::default()
    }
}

/// `get_weather(city)`, the tool the mock providers call with `{"city":"Paris"}`.
pub fn weather_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "get_weather".into(),
            description: Some("Weather of a city".into()),
            parameters: Some(
                json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            ),
            strict: None,
        },
    })
}

/// Streams `req` to the end: (text, concatenated tool call arguments, usage as (prompt,
/// completion) if a usage chunk came, number of chunks).
pub async fn collect_stream(
    client: &async_openai::Client<async_openai::config::OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> (String, String, Option<(u64, u64)>, usize) {
    let mut stream = client.chat().create_stream(req).await.expect("stream");
    let (mut text, mut args, mut usage, mut chunks) = (String::new(), String::new(), None, 0);
    while let Some(item) = stream.next().await {
        let chunk = item.expect("chunk");
        chunks += 1;
        if let Some(u) = chunk.usage {
            assert!(chunk.choices.is_empty(), "the usage chunk has no choices");
            usage = Some((u.prompt_tokens as u64, u.completion_tokens as u64));
        }
        for c in chunk.choices {
            if let Some(t) = c.delta.content {
                text.push_str(&t);
            }
            for tc in c.delta.tool_calls.unwrap_or_default() {
                if let Some(f) = tc.function
                    && let Some(a) = f.arguments
                {
                    args.push_str(&a);
                }
            }
        }
    }
    (text, args, usage, chunks)
}

/// The gateway's own model calls through configuration `llm` (its `model`), end to end: a
/// BLOCK policy judged by it refuses a request about launch codes and lets another through
/// (`app_model` is what the app asks for, `key` its API key), and it reviews that policy.
/// The mock provider recognises the judge's and the reviewer's prompts on every API.
pub async fn judge_and_review_with(
    cp: &ControlPlane,
    dp: &crate::DataPlane,
    key: &str,
    llm: &str,
    model: &str,
    app_model: &str,
) {
    let ctl = cp.ctl();
    ctl.run(&[
        "policy",
        "create",
        "--workspace",
        "default",
        "--name",
        "no-launch-codes",
        "--risk",
        "high",
        "--action",
        "block",
        "--content",
        "Never discuss launch codes.",
        "--judge",
        llm,
        "--judge-model",
        model,
    ])
    .await
    .ok();
    let url = format!("{}/v1/chat/completions", dp.url);
    let ask = |text: &str| {
        json!({"model": app_model, "messages": [{"role": "user", "content": text}]}).to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let (status, body) =
            crate::http::post_json(&url, Some(key), &ask("the launch codes?")).await;
        if status == 403 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        refused["error"]["message"],
        "blocked by policy 'no-launch-codes': the policy's judge found: The request asks for restricted codes."
    );
    let (status, body) = crate::http::post_json(&url, Some(key), &ask("say hello")).await;
    assert_eq!(status, 200, "{body}");
    let review = ctl
        .run(&[
            "-o",
            "json",
            "policy",
            "review",
            "no-launch-codes",
            "--llm",
            llm,
            "--model",
            model,
        ])
        .await
        .ok()
        .json();
    assert_eq!(review["score"], 35, "{review}");
    assert_eq!(review["issues"][0]["kind"], "AMBIGUITY", "{review}");
}

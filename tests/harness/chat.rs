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

//! `POST /v1/embeddings` and `POST /v1/completions` end to end: the real binaries, a mock
//! upstream speaking OpenAI, Gemini and Bedrock InvokeModel (SigV4 verified), and the
//! `async-openai` client talking to the gateway.

use async_openai::types::chat::{ChatCompletionStreamOptions, Prompt};
use async_openai::types::completions::CreateCompletionRequest;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput, EncodingFormat};
use futures::StreamExt;
use serde_json::{Value, json};
use tollgate_sdk::proto;
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_bedrock::{AWS_ACCESS_KEY_ID, AWS_REGION};
use tollgate_tests::mock_embeddings::{
    COMPLETION_TEXT, COMPLETIONS_USAGE, MockEmbeddings, OPENAI_TOKENS_PER_INPUT, vector, words,
};
use tollgate_tests::{Backend, ControlPlane, DataPlane, http, wait_until};

/// Every provider's key at the mock (the AWS secret access key too).
const SECRET: &str = "sk-embed-e2e-SECRET/K7MDENG+bPxRfiCYTOLLGATE";
const OPENAI_EMBED: &str = "text-embedding-3-small";
const INSTRUCT: &str = "gpt-3.5-turbo-instruct";
const GEMINI_EMBED: &str = "gemini-embedding-001";
const TITAN: &str = "amazon.titan-embed-text-v2:0";
const COHERE: &str = "cohere.embed-english-v3";
const TITAN_IMAGE: &str = "amazon.titan-embed-image-v1";
const CLAUDE: &str = "claude-sonnet-4-20250514";

struct Setup {
    cp: ControlPlane,
    dp: DataPlane,
    mock: MockEmbeddings,
    key: String,
}

async fn create(
    cp: &ControlPlane,
    name: &str,
    ai_type: proto::AiType,
    endpoint: String,
    models: &[&str],
) {
    let aws = ai_type == proto::AiType::Aws;
    cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: ai_type as i32,
            endpoint,
            secret: SECRET.into(),
            key: if aws {
                AWS_ACCESS_KEY_ID.into()
            } else {
                String::new()
            },
            region: if aws {
                AWS_REGION.into()
            } else {
                String::new()
            },
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

async fn setup() -> Setup {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockEmbeddings::start(SECRET).await;
    let url = mock.url();
    create(
        &cp,
        "oa",
        proto::AiType::Openai,
        format!("{url}/v1"),
        &[OPENAI_EMBED, INSTRUCT],
    )
    .await;
    create(
        &cp,
        "gem",
        proto::AiType::Google,
        url.clone(),
        &[GEMINI_EMBED],
    )
    .await;
    create(
        &cp,
        "aws",
        proto::AiType::Aws,
        url.clone(),
        &[TITAN, COHERE, TITAN_IMAGE],
    )
    .await;
    create(&cp, "claude", proto::AiType::Anthropic, url, &[CLAUDE]).await;
    let ctl = cp.ctl();
    ctl.run(&[
        "repo",
        "create",
        "--workspace",
        "default",
        "--name",
        "e-app",
    ])
    .await
    .ok();
    for llm in ["oa", "gem", "aws", "claude"] {
        ctl.run(&["repo", "attach", "e-app", llm]).await.ok();
    }
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "e-app", "--name", "app",
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

fn embed(model: &str, input: EmbeddingInput) -> CreateEmbeddingRequest {
    CreateEmbeddingRequest {
        model: model.into(),
        input,
        ..Default::default()
    }
}

fn strings(texts: &[&str]) -> EmbeddingInput {
    EmbeddingInput::StringArray(texts.iter().map(|t| (*t).to_owned()).collect())
}

fn base64_floats(b64: async_openai::types::embeddings::Base64EmbeddingVector) -> Vec<f32> {
    Vec::<f32>::from(b64)
}

/// Waits for `id`'s lifetime usage to be exactly `want` (calls, tokens in, tokens out).
async fn usage_is(cp: &ControlPlane, id: &str, want: (u64, u64, u64)) {
    let what = format!("usage of {id} to be {want:?}");
    wait_until(20, &what, || async move { stats(cp, id).await == want }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_on_every_provider() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);

    // OPENAI: forwarded with only the model rewritten; the upstream's answer as is.
    let texts = ["The food was delicious", "and the waiter..."];
    let resp = client
        .embeddings()
        .create(CreateEmbeddingRequest {
            dimensions: Some(8),
            ..embed("oa/text-embedding-3-small", strings(&texts))
        })
        .await
        .expect("openai embeddings");
    assert_eq!(resp.data.len(), 2);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(resp.data[i].index as usize, i);
        assert_eq!(resp.data[i].embedding, vector(t, Some(8)));
    }
    assert_eq!(
        u64::from(resp.usage.prompt_tokens),
        2 * OPENAI_TOKENS_PER_INPUT
    );
    let sent = s.mock.calls("/v1/embeddings");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(sent[0].json()["model"], OPENAI_EMBED);
    // Byte for byte, but the model: unknown fields, spacing and order kept.
    let raw = r#"{ "input" : [[1,2,3],[4]], "x_extra": {"k": [1.50]},"model":"text-embedding-3-small" ,"encoding_format":"float"}"#;
    let url = format!("{}/v1/embeddings", s.dp.url);
    let (status, j) = http::post_json(&url, Some(&s.key), raw).await;
    assert_eq!(status, 200, "{j}");
    let second: Vec<f32> =
        serde_json::from_value(j["data"][1]["embedding"].clone()).expect("floats");
    assert_eq!(second, vector("tokens1", None));
    let sent = s.mock.calls("/v1/embeddings");
    assert_eq!(String::from_utf8_lossy(&sent[1].body), raw);
    // base64, decoded by the client.
    let resp = client
        .embeddings()
        .create_base64(CreateEmbeddingRequest {
            encoding_format: Some(EncodingFormat::Base64),
            ..embed(OPENAI_EMBED, EmbeddingInput::String("hi".into()))
        })
        .await
        .expect("base64");
    assert_eq!(
        base64_floats(resp.data[0].embedding.clone()),
        vector("hi", None)
    );
    usage_is(&s.cp, "oa", (3, 5 * OPENAI_TOKENS_PER_INPUT, 0)).await;

    // GOOGLE: one input → embedContent, several → batchEmbedContents.
    let resp = client
        .embeddings()
        .create(embed(
            "gem/gemini-embedding-001",
            EmbeddingInput::String("What is the meaning of life?".into()),
        ))
        .await
        .expect("gemini single");
    assert_eq!(resp.data.len(), 1);
    assert_eq!(
        resp.data[0].embedding,
        vector("What is the meaning of life?", None)
    );
    assert_eq!(
        resp.model, "gem/gemini-embedding-001",
        "the app's name echoed"
    );
    assert_eq!(resp.usage.prompt_tokens, 0, "Gemini reports no tokens");
    let single = s
        .mock
        .calls("/v1beta/models/gemini-embedding-001:embedContent");
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].header("x-goog-api-key"), Some(SECRET));
    assert_eq!(single[0].header("authorization"), None);
    assert_eq!(single[0].query, "");
    assert_eq!(
        single[0].json(),
        json!({"model": "models/gemini-embedding-001",
               "content": {"parts": [{"text": "What is the meaning of life?"}]}})
    );
    let batch_texts = ["first", "second text", "third one here"];
    let resp = client
        .embeddings()
        .create(CreateEmbeddingRequest {
            dimensions: Some(6),
            ..embed(GEMINI_EMBED, strings(&batch_texts))
        })
        .await
        .expect("gemini batch");
    let got: Vec<Vec<f32>> = resp.data.iter().map(|d| d.embedding.clone()).collect();
    let want: Vec<Vec<f32>> = batch_texts.iter().map(|t| vector(t, Some(6))).collect();
    assert_eq!(got, want);
    let batch = s
        .mock
        .calls("/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert_eq!(batch.len(), 1);
    let sent = batch[0].json();
    assert_eq!(sent["requests"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        sent["requests"][1],
        json!({"model": "models/gemini-embedding-001",
               "content": {"parts": [{"text": "second text"}]},
               "outputDimensionality": 6})
    );
    // base64 from Gemini's floats.
    let resp = client
        .embeddings()
        .create_base64(CreateEmbeddingRequest {
            encoding_format: Some(EncodingFormat::Base64),
            ..embed(GEMINI_EMBED, strings(&["a", "bc"]))
        })
        .await
        .expect("gemini base64");
    assert_eq!(
        base64_floats(resp.data[1].embedding.clone()),
        vector("bc", None)
    );
    usage_is(&s.cp, "gem", (3, 0, 0)).await;

    // AWS Titan: one signed InvokeModel per input, token counts summed.
    let titan_texts = ["one two three", "four five", "six"];
    let resp = client
        .embeddings()
        .create(CreateEmbeddingRequest {
            dimensions: Some(256),
            ..embed(&format!("aws/{TITAN}"), strings(&titan_texts))
        })
        .await
        .expect("titan");
    let got: Vec<Vec<f32>> = resp.data.iter().map(|d| d.embedding.clone()).collect();
    let want: Vec<Vec<f32>> = titan_texts.iter().map(|t| vector(t, Some(256))).collect();
    assert_eq!(got, want, "vectors in input order");
    assert_eq!(resp.usage.prompt_tokens, 6);
    let invoked = s.mock.calls("/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(invoked.len(), 3);
    let mut sent_texts: Vec<String> = invoked
        .iter()
        .map(|c| {
            c.json()["inputText"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    sent_texts.sort();
    let mut expected: Vec<String> = titan_texts.iter().map(|t| (*t).to_owned()).collect();
    expected.sort();
    assert_eq!(sent_texts, expected);
    for call in &invoked {
        let auth = call.header("authorization").unwrap_or_default();
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/"))
                && auth.contains(&format!(
                    "/{AWS_REGION}/bedrock/aws4_request, SignedHeaders="
                ))
                && auth.contains(", Signature="),
            "{auth}"
        );
        assert!(call.header("x-amz-date").is_some());
        assert_eq!(call.json()["dimensions"], 256);
        assert_eq!(call.json()["normalize"], true);
    }

    // AWS Cohere: one call for the batch, tokens from Bedrock's header.
    let cohere_texts = ["search me", "and me too"];
    let resp = client
        .embeddings()
        .create(embed(COHERE, strings(&cohere_texts)))
        .await
        .expect("cohere");
    let got: Vec<Vec<f32>> = resp.data.iter().map(|d| d.embedding.clone()).collect();
    let want: Vec<Vec<f32>> = cohere_texts.iter().map(|t| vector(t, None)).collect();
    assert_eq!(got, want);
    assert_eq!(resp.usage.prompt_tokens, 5);
    let invoked = s.mock.calls("/model/cohere.embed-english-v3/invoke");
    assert_eq!(invoked.len(), 1);
    assert_eq!(
        invoked[0].json(),
        json!({"texts": cohere_texts, "input_type": "search_document"})
    );
    let titan_tokens: u64 = titan_texts.iter().map(|t| words(t)).sum();
    let cohere_tokens: u64 = cohere_texts.iter().map(|t| words(t)).sum();
    usage_is(&s.cp, "aws", (2, titan_tokens + cohere_tokens, 0)).await;

    for text in [s.dp.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "a provider secret leaked into logs");
    }
    conformance::passed(
        Provider::Openai,
        &[Capability::Embeddings, Capability::Usage],
    );
    // Gemini reports no tokens for embeddings: the 0 above is not a usage proof.
    conformance::passed(Provider::Google, &[Capability::Embeddings]);
    conformance::passed(Provider::Aws, &[Capability::Embeddings, Capability::Usage]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_completions() {
    let s = setup().await;
    let client = s.dp.openai(&s.key);
    let request = |model: &str| CreateCompletionRequest {
        model: model.into(),
        prompt: Prompt::String("Say this is a test".into()),
        max_tokens: Some(7),
        ..Default::default()
    };

    // Not streamed, qualified and bare names.
    for model in ["oa/gpt-3.5-turbo-instruct", INSTRUCT] {
        let resp = client
            .completions()
            .create(request(model))
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(resp.choices[0].text, COMPLETION_TEXT);
        let usage = resp.usage.expect("usage");
        assert_eq!(
            (
                u64::from(usage.prompt_tokens),
                u64::from(usage.completion_tokens)
            ),
            COMPLETIONS_USAGE
        );
    }
    let sent = s.mock.calls("/v1/completions");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].json()["model"], INSTRUCT);
    assert_eq!(sent[0].json()["max_tokens"], 7);

    // Streamed: the usage chunk only when the client asks for it, metered either way.
    let collect = async |req: CreateCompletionRequest| {
        let mut stream = client
            .completions()
            .create_stream(req)
            .await
            .expect("stream");
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
    };
    let (text, usage) = collect(CreateCompletionRequest {
        stream: Some(true),
        ..request(INSTRUCT)
    })
    .await;
    assert_eq!(text, COMPLETION_TEXT);
    assert_eq!(usage, None, "the gateway's own usage request stays hidden");
    let streamed = s.mock.calls("/v1/completions");
    assert_eq!(
        streamed[2].json()["stream_options"],
        json!({"include_usage": true})
    );
    let (text, usage) = collect(CreateCompletionRequest {
        stream: Some(true),
        stream_options: Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        ..request(INSTRUCT)
    })
    .await;
    assert_eq!(text, COMPLETION_TEXT);
    assert_eq!(usage, Some(COMPLETIONS_USAGE));

    let (p, c) = COMPLETIONS_USAGE;
    usage_is(&s.cp, "oa", (4, 4 * p, 4 * c)).await;
    conformance::passed(Provider::Openai, &[Capability::Completions]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_errors() {
    let s = setup().await;
    let embeddings = format!("{}/v1/embeddings", s.dp.url);
    let completions = format!("{}/v1/completions", s.dp.url);
    let check = |(status, j): (u16, Value), want: u16, has: &str| {
        assert_eq!(status, want, "{j}");
        let message = j["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(has), "{has:?} in {j}");
        assert!(j["error"]["type"].is_string(), "an OpenAI error body: {j}");
    };
    let post = |url: &str, key: Option<&str>, body: Value| {
        let (url, key, body) = (url.to_owned(), key.map(str::to_owned), body.to_string());
        async move { http::post_json(&url, key.as_deref(), &body).await }
    };

    // The same key authentication and model resolution as chat.
    check(
        post(
            &embeddings,
            None,
            json!({"model": GEMINI_EMBED, "input": "a"}),
        )
        .await,
        401,
        "API key",
    );
    check(
        post(
            &embeddings,
            Some("tg_wrong"),
            json!({"model": GEMINI_EMBED, "input": "a"}),
        )
        .await,
        401,
        "API key",
    );
    check(
        post(
            &embeddings,
            Some(&s.key),
            json!({"model": "nope/none", "input": "a"}),
        )
        .await,
        404,
        "nope/none",
    );
    check(
        post(&completions, Some(&s.key), json!({"prompt": "a"})).await,
        400,
        "model",
    );
    let (status, text) = http::early_answer(&embeddings, &s.key, 11 * 1024 * 1024).await;
    assert_eq!(status, 413, "{text}");

    // What a provider cannot do is a clear 400, before anything is sent upstream.
    for (body, needle) in [
        (
            json!({"model": CLAUDE, "input": "a"}),
            "Anthropic has no embeddings API",
        ),
        (
            json!({"model": TITAN_IMAGE, "input": "a"}),
            "not an embedding model",
        ),
        (
            json!({"model": GEMINI_EMBED, "input": [[1, 2], [3]]}),
            "token ids",
        ),
        (
            json!({"model": COHERE, "input": "a", "dimensions": 256}),
            "fixed size",
        ),
    ] {
        check(post(&embeddings, Some(&s.key), body).await, 400, needle);
    }
    for model in [GEMINI_EMBED, TITAN, CLAUDE] {
        check(
            post(
                &completions,
                Some(&s.key),
                json!({"model": model, "prompt": "a"}),
            )
            .await,
            400,
            "legacy completions",
        );
    }
    for path in [
        "/v1beta/models/gemini-embedding-001:embedContent",
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        "/model/amazon.titan-embed-image-v1/invoke",
        "/model/cohere.embed-english-v3/invoke",
        "/v1/completions",
        "/v1/messages",
    ] {
        assert!(s.mock.calls(path).is_empty(), "{path} was called");
    }

    // Provider errors come back OpenAI-shaped, with the right status (after the retries).
    s.mock.fail_with(Some(400));
    for model in [GEMINI_EMBED, COHERE, OPENAI_EMBED] {
        let body = json!({"model": model, "input": ["a", "b"]});
        check(
            post(&embeddings, Some(&s.key), body).await,
            400,
            "mock upstream failure 400",
        );
    }
    s.mock.fail_with(None);

    // Passthrough: the app's own provider key goes upstream.
    s.cp.client()
        .await
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "byok".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: format!("{}/v1", s.mock.url()),
            credential_mode: proto::CredentialMode::Passthrough as i32,
            models: vec![OPENAI_EMBED.into()],
            ..Default::default()
        })
        .await
        .expect("create passthrough llm");
    s.cp.ctl()
        .run(&["repo", "attach", "e-app", "byok"])
        .await
        .ok();
    let body = json!({"model": "byok/text-embedding-3-small", "input": "a"}).to_string();
    let auth = format!("Bearer {SECRET}");
    let headers = [
        ("content-type", "application/json"),
        ("x-tollgate-key", s.key.as_str()),
        ("authorization", auth.as_str()),
    ];
    let before = s.mock.calls("/v1/embeddings").len();
    let mut answer = (0, String::new());
    for _ in 0..40 {
        answer = http::request("POST", &embeddings, &headers, body.clone().into_bytes())
            .await
            .expect("request");
        if answer.0 != 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    let sent = s.mock.calls("/v1/embeddings");
    assert_eq!(sent.len(), before + 1);
    assert_eq!(sent[before].header("authorization"), Some(auth.as_str()));

    // Environments: a staging data plane sees none of these production connections.
    let staging = DataPlane::start(&s.cp, "staging").await;
    check(
        post(
            &format!("{}/v1/embeddings", staging.url),
            Some(&s.key),
            json!({"model": GEMINI_EMBED, "input": "a"}),
        )
        .await,
        404,
        GEMINI_EMBED,
    );
    for text in [s.dp.logs(), staging.logs(), s.cp.logs()] {
        assert!(!text.contains(SECRET), "a provider secret leaked into logs");
    }
    // Provider errors of OPENAI, Gemini and Cohere embeddings came back OpenAI-shaped.
    for provider in [Provider::Openai, Provider::Google, Provider::Aws] {
        conformance::passed(provider, &[Capability::Errors]);
    }
    conformance::refused(
        Provider::Anthropic,
        Capability::Embeddings,
        "Anthropic has no embeddings API",
    );
    for provider in [Provider::Anthropic, Provider::Google, Provider::Aws] {
        conformance::refused(
            provider,
            Capability::Completions,
            "not translated: legacy completions are served by OPENAI and OTHER connections \
             only; use `/v1/chat/completions`",
        );
    }
}

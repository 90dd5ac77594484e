//! OpenAI embeddings request → Bedrock InvokeModel (Titan Text Embeddings, Cohere Embed v3),
//! and back.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::bedrock::{
    COHERE_MAX_TEXTS, EmbedPlan, InvokeAnswer, TranslateError, Usage, translate_embed_request,
};
use crate::tests::conformance::{self, Capability, Provider};

const TITAN_V2: &str = "amazon.titan-embed-text-v2:0";
const TITAN_V1: &str = "amazon.titan-embed-text-v1";
const COHERE: &str = "cohere.embed-english-v3";

fn plan(body: &[u8], model: &str) -> EmbedPlan {
    translate_embed_request(body, model).expect("translates")
}

/// Each call as `POST <path>` and its pretty body.
fn render(plan: &EmbedPlan) -> String {
    plan.calls
        .iter()
        .map(|c| format!("POST {} ({} inputs)\n{}", c.path, c.inputs, pretty(&c.body)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn answer(plan: &EmbedPlan, answers: &[InvokeAnswer<'_>]) -> (Value, Usage) {
    let (body, usage) = plan
        .translate_response(answers, "aws/embed")
        .expect("translates");
    (serde_json::from_slice(&body).expect("JSON"), usage)
}

fn body(json: &[u8]) -> InvokeAnswer<'_> {
    InvokeAnswer {
        body: json,
        input_token_count: None,
    }
}

#[test]
fn embed_request_titan_v2() {
    // Titan v2 takes 256, 512 or 1024 dimensions.
    let mut request: Value =
        serde_json::from_slice(&fixture("openai_embeddings_batch.json")).expect("JSON");
    request["dimensions"] = json!(512);
    insta::assert_snapshot!(render(&plan(request.to_string().as_bytes(), TITAN_V2)));
    conformance::passed(Provider::Aws, &[Capability::Embeddings]);
}

#[test]
fn embed_request_titan_v1() {
    insta::assert_snapshot!(render(&plan(
        &fixture("openai_embeddings_single.json"),
        TITAN_V1
    )));
    conformance::passed(Provider::Aws, &[Capability::Embeddings]);
}

#[test]
fn embed_request_cohere() {
    let mut request: Value =
        serde_json::from_slice(&fixture("openai_embeddings_batch.json")).expect("JSON");
    request
        .as_object_mut()
        .expect("object")
        .remove("dimensions");
    insta::assert_snapshot!(render(&plan(request.to_string().as_bytes(), COHERE)));
    conformance::passed(Provider::Aws, &[Capability::Embeddings]);
}

#[test]
fn embed_response_titan_sums_token_counts() {
    let request = json!({"model": "m", "input": ["a", "b"]});
    let plan = plan(request.to_string().as_bytes(), TITAN_V2);
    let v2 = fixture("titan_v2_embedding.json");
    let v1 = fixture("titan_v1_embedding.json");
    let (out, usage) = answer(&plan, &[body(&v2), body(&v1)]);
    insta::assert_snapshot!(pretty(out.to_string().as_bytes()));
    assert_eq!(
        usage,
        Usage {
            input_tokens: 20,
            output_tokens: 0
        }
    );
    conformance::passed(Provider::Aws, &[Capability::Embeddings, Capability::Usage]);
}

#[test]
fn embed_response_cohere() {
    let request = json!({"model": "m", "input": ["a", "b", "c"]});
    let plan = plan(request.to_string().as_bytes(), COHERE);
    let cohere = fixture("cohere_embed.json");
    // Cohere's body has no token count: the InvokeModel header is used when present.
    let (out, usage) = answer(
        &plan,
        &[InvokeAnswer {
            body: &cohere,
            input_token_count: Some(21),
        }],
    );
    insta::assert_snapshot!(pretty(out.to_string().as_bytes()));
    assert_eq!(usage.input_tokens, 21);
    let (_, usage) = answer(&plan, &[body(&cohere)]);
    assert_eq!(usage, Usage::default(), "no header: 0, nothing invented");
    // Typed embeddings (`embedding_types`) are read too.
    let plan = translate_embed_request(br#"{"model":"m","input":"a"}"#, COHERE).expect("ok");
    let typed = fixture("cohere_embed_by_type.json");
    let (out, _) = answer(&plan, &[body(&typed)]);
    assert_eq!(out["data"][0]["embedding"][0].as_f64(), Some(-0.0116119385));
    conformance::passed(Provider::Aws, &[Capability::Embeddings, Capability::Usage]);
}

#[test]
fn embed_base64() {
    let request = json!({"model": "m", "input": "hi", "encoding_format": "base64"});
    let plan = plan(request.to_string().as_bytes(), TITAN_V2);
    let (out, _) = answer(
        &plan,
        &[body(
            br#"{"embedding":[0.5,-1.25,3],"inputTextTokenCount":1}"#,
        )],
    );
    assert_eq!(out["data"][0]["embedding"], "AAAAPwAAoL8AAEBA");
}

#[test]
fn embed_cohere_batches_are_split() {
    let inputs: Vec<String> = (0..COHERE_MAX_TEXTS + 4).map(|i| format!("t{i}")).collect();
    let plan = plan(
        json!({"model": "m", "input": inputs})
            .to_string()
            .as_bytes(),
        COHERE,
    );
    let sizes: Vec<usize> = plan.calls.iter().map(|c| c.inputs).collect();
    assert_eq!(sizes, [COHERE_MAX_TEXTS, 4]);
    let second: Value = serde_json::from_slice(&plan.calls[1].body).expect("JSON");
    assert_eq!(second["texts"], json!(["t96", "t97", "t98", "t99"]));
    // Titan embeds one text per call.
    let plan = translate_embed_request(
        json!({"model": "m", "input": ["a", "b", "c"]})
            .to_string()
            .as_bytes(),
        "us.amazon.titan-embed-text-v2:0",
    )
    .expect("ok");
    assert_eq!(plan.calls.len(), 3);
    assert_eq!(
        plan.calls[2].path,
        "/model/us.amazon.titan-embed-text-v2%3A0/invoke"
    );
}

#[test]
fn embed_refusals() {
    let refused = |body: Value, model: &str| match translate_embed_request(
        body.to_string().as_bytes(),
        model,
    ) {
        Err(TranslateError::InvalidRequest { message, param }) => (message, param),
        other => panic!("{body} {model}: {other:?}"),
    };
    let (message, param) = refused(
        json!({"model": "m", "input": "a"}),
        "amazon.titan-embed-image-v1",
    );
    assert!(message.contains("not an embedding model"), "{message}");
    assert!(message.contains("cohere.embed-english-v3"), "{message}");
    assert_eq!(param.as_deref(), Some("model"));
    let (_, param) = refused(
        json!({"model": "m", "input": "a"}),
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    );
    assert_eq!(param.as_deref(), Some("model"));
    for model in [TITAN_V1, COHERE] {
        let (message, param) = refused(
            json!({"model": "m", "input": "a", "dimensions": 256}),
            model,
        );
        assert!(message.contains("fixed size"), "{message}");
        assert_eq!(param.as_deref(), Some("dimensions"));
    }
    let (message, _) = refused(json!({"model": "m", "input": [1, 2, 3]}), COHERE);
    assert!(message.contains("Bedrock embeds text only"), "{message}");
}

#[test]
fn embed_bad_answers_are_upstream_errors() {
    let titan = plan(br#"{"model":"m","input":"a"}"#, TITAN_V2);
    let cohere = plan(br#"{"model":"m","input":["a","b"]}"#, COHERE);
    let bad = |plan: &EmbedPlan, answer: &[u8]| match plan.translate_response(&[body(answer)], "m")
    {
        Err(e @ TranslateError::BadUpstream(_)) => e.to_string(),
        other => panic!("{}: {other:?}", String::from_utf8_lossy(answer)),
    };
    assert!(bad(&titan, b"{}").contains("Bedrock"));
    assert!(bad(&titan, br#"{"message":"x"}"#).contains("Bedrock"));
    assert!(bad(&cohere, br#"{"embeddings":[[1]]}"#).contains("1 embeddings for 2 inputs"));
    assert!(titan.translate_response(&[], "m").is_err());
    let full = fixture("cohere_embed.json");
    for cut in 0..full.len() {
        let _ = cohere.translate_response(&[body(&full[..cut])], "m");
    }
}

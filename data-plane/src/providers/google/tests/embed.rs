//! OpenAI embeddings request → Gemini `embedContent` / `batchEmbedContents`, and back.

use serde_json::{Value, json};

use super::{fixture, pretty};
use crate::providers::google::{
    EmbedPlan, MAX_BATCH, TranslateError, Usage, translate_embed_request,
};
use crate::tests::conformance::{self, Capability, Provider};

const MODEL: &str = "gemini-embedding-001";

fn plan(body: &[u8]) -> EmbedPlan {
    translate_embed_request(body, MODEL).expect("translates")
}

/// Each call as `POST <path>` and its pretty body.
fn render(plan: &EmbedPlan) -> String {
    plan.calls
        .iter()
        .map(|c| format!("POST {} ({} inputs)\n{}", c.path, c.inputs, pretty(&c.body)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn answer(plan: &EmbedPlan, answers: &[&[u8]]) -> (Value, Usage) {
    let (body, usage) = plan
        .translate_response(answers, "gem/gemini-embedding-001")
        .expect("translates");
    (serde_json::from_slice(&body).expect("JSON"), usage)
}

#[test]
fn embed_request_single() {
    insta::assert_snapshot!(render(&plan(&fixture("openai_embeddings_single.json"))));
    conformance::passed(Provider::Google, &[Capability::Embeddings]);
}

#[test]
fn embed_request_batch() {
    insta::assert_snapshot!(render(&plan(&fixture("openai_embeddings_batch.json"))));
    conformance::passed(Provider::Google, &[Capability::Embeddings]);
}

#[test]
fn embed_response_single() {
    let plan = plan(&fixture("openai_embeddings_single.json"));
    let (body, usage) = answer(&plan, &[&fixture("gemini_embed_content.json")]);
    insta::assert_snapshot!(pretty(body.to_string().as_bytes()));
    // Gemini reports no tokens for embeddings: nothing is invented.
    assert_eq!(usage, Usage::default());
    conformance::passed(Provider::Google, &[Capability::Embeddings]);
}

#[test]
fn embed_response_batch() {
    let plan = plan(&fixture("openai_embeddings_batch.json"));
    let (body, usage) = answer(&plan, &[&fixture("gemini_batch_embed_contents.json")]);
    insta::assert_snapshot!(pretty(body.to_string().as_bytes()));
    assert_eq!(usage, Usage::default());
    conformance::passed(Provider::Google, &[Capability::Embeddings]);
}

#[test]
fn embed_base64_is_little_endian_f32() {
    let request = json!({"model": "m", "input": "hi", "encoding_format": "base64"});
    let plan = plan(request.to_string().as_bytes());
    // The encoding is the gateway's business: Gemini is asked for plain values.
    assert_eq!(
        serde_json::from_slice::<Value>(&plan.calls[0].body).expect("JSON")["content"],
        json!({"parts": [{"text": "hi"}]})
    );
    let (body, _) = answer(&plan, &[br#"{"embedding":{"values":[0.5,-1.25,3]}}"#]);
    // 0.5 = 0x3F000000, -1.25 = 0xBFA00000, 3 = 0x40400000, little-endian.
    assert_eq!(body["data"][0]["embedding"], "AAAAPwAAoL8AAEBA");
    assert_eq!(body["data"][0]["object"], "embedding");
}

#[test]
fn embed_large_batches_are_split() {
    let inputs: Vec<String> = (0..2 * MAX_BATCH + 50)
        .map(|i| format!("text {i}"))
        .collect();
    let plan = plan(
        json!({"model": "m", "input": inputs})
            .to_string()
            .as_bytes(),
    );
    let sizes: Vec<usize> = plan.calls.iter().map(|c| c.inputs).collect();
    assert_eq!(sizes, [MAX_BATCH, MAX_BATCH, 50]);
    let last: Value = serde_json::from_slice(&plan.calls[2].body).expect("JSON");
    assert_eq!(
        last["requests"][49]["content"]["parts"][0]["text"],
        format!("text {}", 2 * MAX_BATCH + 49)
    );
    // Answers are put back in input order, with indexes across the calls.
    let batch = |n: usize, from: usize| {
        let embeddings: Vec<Value> = (from..from + n)
            .map(|i| json!({"values": [i as f32]}))
            .collect();
        json!({ "embeddings": embeddings }).to_string()
    };
    let answers = [
        batch(MAX_BATCH, 0),
        batch(MAX_BATCH, MAX_BATCH),
        batch(50, 2 * MAX_BATCH),
    ];
    let refs: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
    let (body, _) = answer(&plan, &refs);
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 2 * MAX_BATCH + 50);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"], json!([i as f32]));
    }
}

#[test]
fn embed_model_names() {
    let plan =
        translate_embed_request(br#"{"model":"x","input":"a"}"#, "models/text-embedding-004")
            .expect("translates");
    assert_eq!(plan.calls[0].path, "/text-embedding-004:embedContent");
    let body: Value = serde_json::from_slice(&plan.calls[0].body).expect("JSON");
    assert_eq!(body["model"], "models/text-embedding-004");
    let plan =
        translate_embed_request(br#"{"model":"x","input":"a"}"#, "tuned/a b").expect("translates");
    assert_eq!(plan.calls[0].path, "/tuned%2Fa%20b:embedContent");
}

#[test]
fn embed_refusals() {
    let refused = |body: Value| match translate_embed_request(body.to_string().as_bytes(), MODEL) {
        Err(TranslateError::InvalidRequest { message, param }) => (message, param),
        other => panic!("{body}: {other:?}"),
    };
    let (message, param) = refused(json!({"model": "m", "input": [[1, 2], [3]]}));
    assert!(message.contains("Gemini embeds text only"), "{message}");
    assert_eq!(param.as_deref(), Some("input"));
    let (_, param) = refused(json!({"model": "m", "input": ["a", ""]}));
    assert_eq!(param.as_deref(), Some("input[1]"));
    let (_, param) = refused(json!({"model": "m", "input": "a", "dimensions": 0}));
    assert_eq!(param.as_deref(), Some("dimensions"));
}

#[test]
fn embed_bad_answers_are_upstream_errors() {
    let single = plan(br#"{"model":"m","input":"a"}"#);
    let batch = plan(br#"{"model":"m","input":["a","b"]}"#);
    let bad = |plan: &EmbedPlan, answer: &[u8]| match plan.translate_response(&[answer], "m") {
        Err(e @ TranslateError::BadUpstream(_)) => e.to_string(),
        other => panic!("{}: {other:?}", String::from_utf8_lossy(answer)),
    };
    assert!(bad(&single, b"<html>").contains("Gemini"));
    assert!(bad(&single, br#"{}"#).contains("without"));
    assert!(bad(&single, br#"{"embedding":{"values":["x"]}}"#).contains("Gemini"));
    let short = bad(&batch, br#"{"embeddings":[{"values":[1]}]}"#);
    assert!(short.contains("1 embeddings for 2 inputs"), "{short}");
    assert!(single.translate_response(&[], "m").is_err());
    // Arbitrary bytes never panic.
    for cut in 0..fixture("gemini_batch_embed_contents.json").len() {
        let answer = fixture("gemini_batch_embed_contents.json");
        let _ = batch.translate_response(&[&answer[..cut]], "m");
    }
}

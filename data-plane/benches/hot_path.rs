//! Micro benchmarks of the request path, piece by piece (`cargo bench -p tollgate-data-plane`).
//!
//! Each group measures one thing a request (or a snapshot update) pays for, through the data
//! plane's public API; `docs/benchmarks.md` has the numbers and the load benchmark that puts
//! them together.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tollgate_data_plane::metrics::Metrics;
use tollgate_data_plane::policy::detect::{Pii, find_pii, find_secret, request_text};
use tollgate_data_plane::providers::anthropic::{StreamTranslator, translate_request};
use tollgate_data_plane::proxy::{
    OpenAiUsageTap, StreamProcessor, authenticate, parse_chat, rewrite,
};
use tollgate_data_plane::snapshot::{ResourceSet, Snapshot, build_snapshot};
use tollgate_data_plane::usage::{Aggregator, Meter, Recorder, Tokens, UsageKey};
use tollgate_proto::sync as pb;

/// Connections per repository in the generated snapshots.
const CONNS_PER_REPO: usize = 10;

/// A full update of `conns` OpenAI connections (10 per repository, each exposing two models)
/// and `keys` API keys spread over the repositories. Key `i`'s secret is [`key_secret`]`(i)`.
fn full_update(conns: usize, keys: usize) -> pb::ConfigUpdate {
    let repos = conns.div_ceil(CONNS_PER_REPO).max(1);
    let mut upserts = Vec::with_capacity(conns + repos + keys);
    for i in 0..conns {
        upserts.push(pb::Resource {
            resource: Some(pb::resource::Resource::Connection(pb::Connection {
                id: format!("conn-{i}"),
                workspace_id: "ws".into(),
                name: format!("conn-{i}"),
                ai_type: 1,
                endpoint: format!("http://127.0.0.1:9/{i}/v1"),
                secret: format!("sk-bench-secret-{i:08}"),
                routing_id: format!("conn-{i}"),
                models: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
                ..Default::default()
            })),
        });
    }
    for r in 0..repos {
        let first = r * CONNS_PER_REPO;
        let connection_ids = (first..(first + CONNS_PER_REPO).min(conns))
            .map(|i| format!("conn-{i}"))
            .collect();
        upserts.push(pb::Resource {
            resource: Some(pb::resource::Resource::Repository(pb::Repository {
                id: format!("repo-{r}"),
                workspace_id: "ws".into(),
                name: format!("repo-{r}"),
                connection_ids,
                routes: Vec::new(),
            })),
        });
    }
    for k in 0..keys {
        upserts.push(pb::Resource {
            resource: Some(pb::resource::Resource::ApiKey(pb::ApiKey {
                id: format!("key-{k}"),
                repository_id: format!("repo-{}", k % repos),
                hash: Sha256::digest(key_secret(k)).to_vec(),
                expires_at: 0,
            })),
        });
    }
    pb::ConfigUpdate {
        version: 1,
        full: true,
        upserts,
        removals: Vec::new(),
    }
}

fn key_secret(k: usize) -> String {
    format!("tg_bench-key-{k:08}-0123456789abcdef0123456789abcdef")
}

fn snapshot(conns: usize, keys: usize) -> Snapshot {
    let mut set = ResourceSet::default();
    let rejected = set.apply(full_update(conns, keys));
    assert!(rejected.is_empty(), "{rejected:?}");
    let (snap, rejected) = build_snapshot(&set);
    assert!(rejected.is_empty(), "{rejected:?}");
    snap
}

/// A typical chat request: a system prompt and a short conversation (~1 KiB), and a long
/// one (~32 KiB of prompt), to show how the body scan scales with size.
fn chat_body(model: &str, stream: bool, prompt_bytes: usize) -> Bytes {
    let long = "lorem ipsum dolor sit amet ".repeat(prompt_bytes / 27 + 1);
    Bytes::from(
        serde_json::json!({
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant. Answer briefly and cite sources when you can."},
                {"role": "user", "content": "What is the capital of France, and why is it famous?"},
                {"role": "assistant", "content": "Paris. It is famous for its art, history and the Eiffel Tower."},
                {"role": "user", "content": &long[..prompt_bytes]}
            ],
            "temperature": 0.2,
            "max_tokens": 256,
            "stream": stream,
            "user": "bench"
        })
        .to_string(),
    )
}

fn key_lookup(c: &mut Criterion) {
    let snap = snapshot(1_000, 100_000);
    let secret = key_secret(4242);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {secret}").parse().expect("header"),
    );
    let mut g = c.benchmark_group("key_lookup");
    g.bench_function("sha256_and_map_100k_keys", |b| {
        b.iter(|| {
            let hash: [u8; 32] = Sha256::digest(black_box(secret.as_bytes())).into();
            black_box(snap.key(&hash).is_some())
        })
    });
    g.bench_function("authenticate_100k_keys", |b| {
        b.iter(|| black_box(authenticate(&snap, black_box(&headers), 1_800_000_000).is_ok()))
    });
    g.finish();
}

fn model_resolution(c: &mut Criterion) {
    let snap = snapshot(10, 1);
    let repo = snap.repository("repo-0").expect("repo");
    let mut g = c.benchmark_group("model_resolution");
    g.bench_function("qualified", |b| {
        b.iter(|| black_box(repo.models.resolve(black_box("conn-3/gpt-4o-mini"), false)))
    });
    g.bench_function("bare_10_connections", |b| {
        b.iter(|| black_box(repo.models.resolve(black_box("gpt-4o-mini"), false)))
    });
    g.finish();
}

fn request_body(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_body");
    for (name, size) in [("1k", 700), ("32k", 32 * 1024)] {
        let body = chat_body("conn-3/gpt-4o-mini", true, size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("parse_chat_{name}"), |b| {
            b.iter(|| black_box(parse_chat(black_box(&body)).is_ok()))
        });
        let fields = parse_chat(&body).expect("parse");
        g.bench_function(format!("rewrite_model_and_usage_{name}"), |b| {
            b.iter(|| black_box(rewrite(black_box(&body), &fields, "gpt-4o-mini", true)))
        });
        g.bench_function(format!("parse_and_rewrite_{name}"), |b| {
            b.iter(|| {
                let f = parse_chat(black_box(&body)).expect("parse");
                black_box(rewrite(&body, &f, "gpt-4o-mini", true))
            })
        });
    }
    g.finish();
}

fn anthropic_request(c: &mut Criterion) {
    let body = chat_body("claude/claude-sonnet-4", false, 700);
    let mut g = c.benchmark_group("anthropic");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("translate_request_1k", |b| {
        b.iter(|| black_box(translate_request(black_box(&body), "claude-sonnet-4", 4096)))
    });
    g.finish();
}

const ANTHROPIC_START: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    "\n\n"
);
const ANTHROPIC_DELTA: &str = concat!(
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, world"}}"#,
    "\n\n"
);
const OPENAI_CHUNK: &str = concat!(
    "data: ",
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello, world"},"finish_reason":null}]}"#,
    "\n\n"
);

fn sse(c: &mut Criterion) {
    let mut g = c.benchmark_group("sse_per_chunk");
    g.throughput(Throughput::Elements(1));
    let mut translator = StreamTranslator::new("claude/claude-sonnet-4", false);
    translator.feed(ANTHROPIC_START.as_bytes()).expect("start");
    g.bench_function("anthropic_translate_delta_event", |b| {
        b.iter(|| black_box(translator.feed(black_box(ANTHROPIC_DELTA.as_bytes()))))
    });
    let mut tap = OpenAiUsageTap::new(true);
    let chunk = Bytes::from_static(OPENAI_CHUNK.as_bytes());
    g.bench_function("openai_passthrough_tap_event", |b| {
        b.iter(|| black_box(tap.feed(black_box(chunk.clone()))))
    });
    g.finish();
}

fn usage(c: &mut Criterion) {
    let recorder = Arc::new(Recorder {
        aggregator: Arc::new(Aggregator::new(10_000)),
        metrics: Arc::new(Metrics::new(1)),
        shard: 0,
    });
    let key = UsageKey {
        connection_id: "conn-3".into(),
        repository_id: "repo-0".into(),
        key_id: "key-4242".into(),
        model: "gpt-4o-mini".into(),
    };
    c.bench_function("usage/record_one_request", |b| {
        b.iter(|| {
            let mut meter = Meter::new(recorder.clone(), key.clone());
            meter.set_tokens(Tokens {
                input: 25,
                output: 15,
            });
            meter.succeed();
            drop(black_box(meter));
        })
    });
}

fn snapshot_apply(c: &mut Criterion) {
    let update = full_update(10_000, 100_000);
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.bench_function("apply_and_build_10k_connections_100k_keys", |b| {
        b.iter_batched(
            || update.clone(),
            |u| {
                let mut set = ResourceSet::default();
                set.apply(u);
                black_box(build_snapshot(&set))
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The content detectors of a policy on a ~2 KiB chat request with nothing to find (the
/// common case): extract the text, then scan it for credentials and every kind of PII.
fn policy_scan(c: &mut Criterion) {
    let user = "Our release 4.2.1 shipped on 2026-11-23 at 14:05 UTC to 3 regions; build 20261123 \
        passed 1,284 tests in 97.5 s. Summarise the changelog below for the support team in five \
        bullet points, keep version numbers, and flag anything that changes the public API. \
        Changelog: the scheduler now retries failed jobs up to 5 times with exponential backoff \
        (base 250 ms, cap 30 s); the task-manager service exposes a /v2/jobs endpoint; config key \
        `queue.max_inflight` defaults to 64 instead of 32; std::time::Instant replaces the old \
        clock helper; the dashboard shows p50/p95/p99 latency per tenant; logs rotate at 100 MB \
        and keep 7 files; the CLI gains `--dry-run` and `--since 2026-10-01T00:00:00Z`; fixed a \
        race in the cache eviction path (issue #4821) and a memory leak when clients disconnect \
        mid-stream. Deprecated: the v1 webhook format, removed in 5.0 (planned for Q2 2027). \
        Audience: about 40 support engineers in Lisbon and Toronto who answer tickets from \
        customers on plans Team and Enterprise; most know the product well but not the code. \
        Keep it under 300 words, put breaking changes first, and link to docs/upgrading.md for \
        the migration steps. Mention that the retry change affects billing for jobs that fail \
        repeatedly (each attempt counts as one run), that the new limit can be raised to 256 per \
        worker, and that the 3 regions are eu-west-1, us-east-2 and ap-southeast-1.";
    let body = Bytes::from(
        serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a careful technical writer. Use plain English, short sentences and no marketing language. When unsure, say so."},
                {"role": "user", "content": "Hi! Can you help me write release notes for our job scheduler?"},
                {"role": "assistant", "content": "Of course. Paste the changelog and tell me who will read the notes and how long they should be."},
                {"role": "user", "content": user}
            ],
            "temperature": 0.3,
            "max_tokens": 512,
            "stream": true
        })
        .to_string(),
    );
    let scan = |body: &[u8]| {
        let text = request_text(body).expect("json");
        find_secret(&text).or_else(|| find_pii(&text, &Pii::ALL))
    };
    assert_eq!(
        scan(&body),
        None,
        "the benchmark body must have no findings"
    );
    let mut g = c.benchmark_group("policy_scan");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(format!("chat_{}b_no_findings", body.len()), |b| {
        b.iter(|| black_box(scan(black_box(&body))))
    });
    g.finish();
}

/// Reading a request body that arrived with the head, as `ResolveModel` does: the cost of
/// the body-read timeout around it (`tokio::time::timeout` polls the read first, so no timer
/// is registered) against the read alone.
fn body_read(c: &mut Criterion) {
    use http_body_util::{BodyExt, Full};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let body = Bytes::from(vec![b'x'; 1024]);
    let mut g = c.benchmark_group("body_read");
    g.bench_function("ready_1k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let read = Full::new(body.clone()).collect().await;
                black_box(read.expect("body").to_bytes())
            })
        })
    });
    g.bench_function("ready_1k_with_timeout", |b| {
        b.iter(|| {
            rt.block_on(async {
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    Full::new(body.clone()).collect(),
                )
                .await;
                black_box(read.expect("in time").expect("body").to_bytes())
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    body_read,
    key_lookup,
    model_resolution,
    request_body,
    anthropic_request,
    sse,
    usage,
    snapshot_apply,
    policy_scan
);
criterion_main!(benches);

//! Routes end to end: retries with backoff, `Retry-After`, fallbacks, per-target timeouts, the
//! retry budget and `x-tollgate-target`, with the real binaries and mock OpenAI upstreams
//! that fail on demand. The data plane runs with `--retry-backoff-ms 50` so backoffs take
//! 50 ms, 100 ms, ... (cap and honoured `Retry-After`: 800 ms).

use std::time::{Duration, Instant};

use async_openai::types::chat::CreateChatCompletionRequest;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, create_llm};
use tollgate_tests::conformance::{self, Capability, Provider};
use tollgate_tests::mock_provider::Behavior;
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, free_port};

const SECRET: &str = "sk-routes-e2e-provider-secret-5c1d";
const MODEL: &str = "gpt-4o-mini";
const BACKOFF_MS: u64 = 50;

/// A control plane, a data plane and a key of repository `r`.
struct World {
    cp: ControlPlane,
    dp: DataPlane,
    key: String,
}

/// Connections named after `live` (one mock each, exposing `gpt-4o-mini`) and `dead` (a
/// port nothing listens on) attached to repository `r`; `routes` are `tollgatectl route
/// set` arguments after the repository; `timed` routes are set through the SDK.
async fn world(
    live: &[&str],
    dead: &[&str],
    routes: &[&[&str]],
    timed: Vec<proto::Route>,
) -> (World, Vec<MockProvider>) {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mut mocks = Vec::new();
    for name in live {
        let mock = MockProvider::start(SECRET).await;
        let endpoint = format!("{}/v1", mock.url());
        create_llm(&cp, name, proto::AiType::Openai, endpoint, MODEL, SECRET).await;
        mocks.push(mock);
    }
    for name in dead {
        let endpoint = format!("http://127.0.0.1:{}/v1", free_port());
        create_llm(&cp, name, proto::AiType::Openai, endpoint, MODEL, SECRET).await;
    }
    let ctl = cp.ctl();
    ctl.run(&["repo", "create", "--workspace", "default", "--name", "r"])
        .await
        .ok();
    for name in live.iter().chain(dead) {
        ctl.run(&["repo", "attach", "r", name]).await.ok();
    }
    for args in routes {
        let mut all = vec!["route", "set", "--repo", "r"];
        all.extend_from_slice(args);
        ctl.run(&all).await.ok();
    }
    let client = cp.client().await;
    for route in timed {
        client
            .set_route(proto::SetRouteRequest {
                repository_id: "r".into(),
                workspace_id: "default".into(),
                route: Some(route),
            })
            .await
            .expect("set route");
    }
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
        &["--retry-backoff-ms", &BACKOFF_MS.to_string()],
    )
    .await;
    (World { cp, dp, key }, mocks)
}

/// A route target `<name>/gpt-4o-mini` with a timeout.
fn timed_target(name: &str, timeout_ms: u32) -> proto::RouteTarget {
    proto::RouteTarget {
        target: format!("{name}/{MODEL}"),
        weight: 1,
        timeout_ms,
    }
}

/// What the app got: status, the headers it cares about, the JSON body, the time taken.
#[derive(Debug)]
struct Answer {
    status: u16,
    target: Option<String>,
    retry_after: Option<String>,
    body: serde_json::Value,
    took: Duration,
}

impl World {
    /// `POST /v1/chat/completions` of a one-message chat to `model`.
    async fn chat(&self, model: &str) -> Answer {
        self.chat_as(model, None).await
    }

    /// [`World::chat`] with the OpenAI `user` field (the app's end user) when given.
    async fn chat_as(&self, model: &str, user: Option<&str>) -> Answer {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut body = serde_json::json!({"model": model,
            "messages": [{"role": "user", "content": "hi"}]});
        if let Some(user) = user {
            body["user"] = user.into();
        }
        let body = body.to_string();
        let req = hyper::Request::post(format!("{}/v1/chat/completions", self.dp.url))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let started = Instant::now();
        let resp = client.request(req).await.expect("response");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, target, retry_after) = (
            resp.status().as_u16(),
            header("x-tollgate-target"),
            header("retry-after"),
        );
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Answer {
            status,
            target,
            retry_after,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            took: started.elapsed(),
        }
    }
}

/// Chat calls the mock received so far.
fn calls(mock: &MockProvider) -> usize {
    mock.calls("/v1/chat/completions").len()
}

/// The mock fails the next `times` chat calls with `status` (and `headers`).
fn fail(mock: &MockProvider, status: u16, times: Option<usize>, headers: &[(&str, &str)]) {
    mock.set_behavior(Behavior {
        fail_status: Some(status),
        fail_times: times,
        fail_headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    });
}

/// An OpenAI error body.
#[track_caller]
fn assert_openai_error(a: &Answer) {
    assert!(
        a.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "OpenAI error body: {a:?}"
    );
}

fn target(name: &str) -> Option<String> {
    Some(format!("{name}/{MODEL}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_recover_and_stop_at_the_budget() {
    let alpha = format!("alpha/{MODEL}");
    let (w, mocks) = world(
        &["alpha"],
        &[],
        &[
            &["smart", "--target", &alpha],
            &["once", "--target", &alpha, "--retries", "0"],
            &["many", "--target", &alpha, "--retries", "4"],
        ],
        vec![],
    )
    .await;
    let mock = &mocks[0];

    // 503 twice, then an answer: the app (a stock OpenAI client) just gets its completion.
    fail(mock, 503, Some(2), &[]);
    let resp =
        w.dp.openai(&w.key)
            .chat()
            .create(chat("smart", "hi"))
            .await
            .expect("completion after two retries");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("Hello from mock OpenAI")
    );
    assert_eq!(calls(mock), 3, "two 503s, then the answer");
    // Again over plain HTTP, to see the header and the backoff (50 ms, then 100 ms, -20 %).
    fail(mock, 503, Some(2), &[]);
    let a = w.chat("smart").await;
    assert_eq!(
        (a.status, a.target.clone()),
        (200, target("alpha")),
        "{a:?}"
    );
    assert!(a.took >= Duration::from_millis(120), "{a:?}");
    eprintln!("503, 503, 200: answered 200 in {:?}", a.took);

    // A 429 whose retry-after-ms (300 ms) is under the cap: waited, then the answer.
    fail(mock, 429, Some(1), &[("retry-after-ms", "300")]);
    let a = w.chat("smart").await;
    assert_eq!(
        (a.status, a.target.clone()),
        (200, target("alpha")),
        "{a:?}"
    );
    assert!(a.took >= Duration::from_millis(300), "{a:?}");
    eprintln!(
        "429 (retry-after-ms 300), 200: answered 200 in {:?}",
        a.took
    );
    // A Retry-After beyond the cap: the 429 goes to the app at once, hint included.
    let before = calls(mock);
    fail(mock, 429, None, &[("retry-after", "30")]);
    let a = w.chat("smart").await;
    assert_eq!(
        (a.status, a.target.clone()),
        (429, target("alpha")),
        "{a:?}"
    );
    assert_eq!(a.retry_after.as_deref(), Some("30"));
    assert_openai_error(&a);
    assert_eq!(calls(mock) - before, 1, "not retried");
    assert!(a.took < Duration::from_millis(500), "{a:?}");

    // Failing every time: 1 + retries attempts (2 by default), then the provider's error.
    fail(mock, 500, None, &[]);
    for (route, attempts) in [("smart", 3), ("once", 1), ("many", 5)] {
        let before = calls(mock);
        let a = w.chat(route).await;
        assert_eq!(
            (a.status, a.target.clone()),
            (500, target("alpha")),
            "{a:?}"
        );
        assert_openai_error(&a);
        assert_eq!(calls(mock) - before, attempts, "{route}");
        eprintln!("{route}: {attempts} attempts, 500 after {:?}", a.took);
    }
    // A qualified name gets the default budget too.
    let before = calls(mock);
    assert_eq!(w.chat(&alpha).await.status, 500);
    assert_eq!(calls(mock) - before, 3);
    conformance::passed(Provider::Openai, &[Capability::Errors]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_broke_is_not_retried() {
    let alpha = format!("alpha/{MODEL}");
    let (w, mocks) = world(&["alpha"], &[], &[&["smart", "--target", &alpha]], vec![]).await;
    let mock = &mocks[0];
    mock.set_behavior(Behavior {
        break_stream_after: Some(2),
        ..Default::default()
    });
    let mut stream =
        w.dp.openai(&w.key)
            .chat()
            .create_stream(CreateChatCompletionRequest {
                stream: Some(true),
                ..chat("smart", "hi")
            })
            .await
            .expect("stream");
    let (mut chunks, mut text, mut failed) = (0, String::new(), false);
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                chunks += 1;
                for c in chunk.choices {
                    text.push_str(c.delta.content.as_deref().unwrap_or(""));
                }
            }
            Err(e) => {
                eprintln!("the stream broke after {chunks} chunks: {e}");
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the app sees the stream fail ({chunks} chunks, {text:?})"
    );
    assert_eq!((chunks, text.as_str()), (2, "Hello"), "what came through");
    assert_eq!(calls(mock), 1, "a started stream is never retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_and_target_timeouts() {
    let timed = |name: &str,
                 strategy: proto::RouteStrategy,
                 targets: Vec<proto::RouteTarget>,
                 retries: Option<u32>| proto::Route {
        name: name.into(),
        strategy: strategy as i32,
        targets,
        retries,
    };
    let (w, mocks) = world(
        &["alpha", "slow"],
        &["dead"],
        &[&[
            "fb",
            "--strategy",
            "fallback",
            "--target",
            &format!("dead/{MODEL}"),
            "--target",
            &format!("alpha/{MODEL}"),
        ]],
        vec![
            timed(
                "timed",
                proto::RouteStrategy::Fallback,
                vec![timed_target("slow", 200), timed_target("alpha", 0)],
                None,
            ),
            timed(
                "slow-only",
                proto::RouteStrategy::Direct,
                vec![timed_target("slow", 200)],
                Some(1),
            ),
        ],
    )
    .await;
    let (alpha, slow) = (&mocks[0], &mocks[1]);
    slow.set_behavior(Behavior {
        delay: Duration::from_secs(3),
        ..Default::default()
    });

    // A dead first target: the live one answers, without a backoff.
    let a = w.chat("fb").await;
    assert_eq!(
        (a.status, a.target.clone()),
        (200, target("alpha")),
        "{a:?}"
    );
    assert_eq!(calls(alpha), 1);
    eprintln!("fallback from a dead target: 200 in {:?}", a.took);

    // A target slower than its 200 ms timeout: the next one answers.
    let a = w.chat("timed").await;
    assert_eq!(
        (a.status, a.target.clone()),
        (200, target("alpha")),
        "{a:?}"
    );
    assert!(
        a.took >= Duration::from_millis(200) && a.took < Duration::from_millis(1500),
        "{a:?}"
    );
    assert_eq!((calls(slow), calls(alpha)), (1, 2));
    eprintln!(
        "fallback after a 200 ms target timeout: 200 in {:?}",
        a.took
    );

    // Nothing else to try: timed out twice (1 retry), then a 504 well before the 3 s answer.
    let a = w.chat("slow-only").await;
    assert_eq!((a.status, a.target.clone()), (504, None), "{a:?}");
    assert_openai_error(&a);
    assert_eq!(calls(slow), 3);
    assert!(a.took < Duration::from_millis(1500), "{a:?}");
    eprintln!("two 200 ms timeouts: 504 in {:?}", a.took);

    // A bare name spanning dead and live connections always reaches a live one.
    slow.set_behavior(Behavior::default());
    for _ in 0..6 {
        let a = w.chat(MODEL).await;
        assert_eq!(a.status, 200, "{a:?}");
        assert!(
            a.target == target("alpha") || a.target == target("slow"),
            "{a:?}"
        );
    }
}

/// An experiment route keeps each end user (the OpenAI `user` field; without one, the API
/// key) on one arm, spreads users across the arms by weight, and fails a user over to the
/// other arm while theirs is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiments_keep_each_user_on_one_arm() {
    let (a, b) = (format!("a/{MODEL}"), format!("b/{MODEL}"));
    let ab = [
        "ab",
        "--strategy",
        "experiment",
        "--target",
        &a,
        "--target",
        &b,
    ];
    let (w, mocks) = world(&["a", "b"], &[], &[&ab], vec![]).await;
    let mut users_of = std::collections::HashMap::<Option<String>, Vec<String>>::new();
    for i in 0..40 {
        let user = format!("user-{i}");
        let first = w.chat_as("ab", Some(&user)).await;
        assert_eq!(first.status, 200, "{first:?}");
        for _ in 0..2 {
            assert_eq!(w.chat_as("ab", Some(&user)).await.target, first.target);
        }
        users_of.entry(first.target).or_default().push(user);
    }
    // Both arms have users (1:1 over 40 users: all on one arm has odds of 2^-39).
    let on_a = users_of.get(&target("a")).cloned().unwrap_or_default();
    let on_b = users_of.get(&target("b")).cloned().unwrap_or_default();
    assert_eq!(on_a.len() + on_b.len(), 40, "{users_of:?}");
    assert!(!on_a.is_empty() && !on_b.is_empty(), "{users_of:?}");
    assert_eq!(
        (calls(&mocks[0]), calls(&mocks[1])),
        (3 * on_a.len(), 3 * on_b.len())
    );
    // Without a user, the key decides: one arm, every time.
    let keyed = w.chat("ab").await.target;
    assert!(keyed.is_some());
    for _ in 0..5 {
        assert_eq!(w.chat("ab").await.target, keyed);
    }
    // Arm a down: its users are served by b; its recovery brings them back.
    fail(&mocks[0], 500, None, &[]);
    let answer = w.chat_as("ab", Some(&on_a[0])).await;
    assert_eq!((answer.status, answer.target), (200, target("b")));
    mocks[0].set_behavior(Behavior::default());
    assert_eq!(w.chat_as("ab", Some(&on_a[0])).await.target, target("a"));
}

/// A provider's redirect is not followed (it could take the credentials elsewhere) nor
/// passed on: the app gets a 502 that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_redirects_are_502() {
    let (w, mocks) = world(&["a"], &[], &[], vec![]).await;
    fail(
        &mocks[0],
        302,
        None,
        &[("location", "http://elsewhere.example/v1")],
    );
    let answer = w.chat(&format!("a/{MODEL}")).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.body["error"]["type"], "upstream_error");
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("302 Found") && m.contains("does not follow")),
        "{answer:?}"
    );
    assert_eq!(calls(&mocks[0]), 1, "a redirect is final, not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_point_only_at_served_models_and_keep_them() {
    let (w, _mocks) = world(&["a"], &[], &[], vec![]).await;
    let ctl = w.cp.ctl();
    let set = |name: &'static str, target: &'static str| {
        let ctl = w.cp.ctl();
        async move {
            ctl.run(&["route", "set", "--repo", "r", name, "--target", target])
                .await
        }
    };
    // A target the configuration does not expose, which data planes could not serve.
    set("fast", "a/gpt-5")
        .await
        .fails_with("configuration 'a' does not expose model 'gpt-5'");
    // An alias that would hide a configuration's qualified names.
    set("a/gpt-4o-mini", "a/gpt-4o-mini")
        .await
        .fails_with("would hide the models of configuration 'a'");
    set("fast", "a/gpt-4o-mini").await.ok();
    // The configuration cannot take the model from under the route.
    ctl.run(&["llm", "update", "a", "--routing-id", "b"])
        .await
        .fails_with("route 'fast' of repository 'r' sends traffic to 'a/gpt-4o-mini'");
    ctl.run(&["llm", "update", "a", "--models", "gpt-4o"])
        .await
        .fails_with("route 'fast' of repository 'r'");
    ctl.run(&["llm", "update", "a", "--models", "gpt-4o-mini,gpt-4o"])
        .await
        .ok();
    let answer = w.chat("fast").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // A route named like another configuration's models keeps that one out of the
    // repository.
    set("b/fast", "a/gpt-4o-mini").await.ok();
    create_llm(
        &w.cp,
        "b",
        proto::AiType::Openai,
        "http://127.0.0.1:9/v1".into(),
        MODEL,
        SECRET,
    )
    .await;
    ctl.run(&["repo", "attach", "r", "b"])
        .await
        .fails_with("route 'b/fast' would hide the models of 'b'");
}

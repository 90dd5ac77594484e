//! Policies enforced end to end: rules set with `tollgatectl`, synced to a real data plane,
//! a BLOCK refusing an `async-openai` request before the provider sees it, an ALERT letting
//! one through, both listed as violations and counted in the connection's stats.

use std::time::{Duration, Instant};

use async_openai::error::OpenAIError;
use tollgate_sdk::proto;
use tollgate_tests::chat::{chat, create_llm};
use tollgate_tests::{Backend, ControlPlane, DataPlane, MockProvider, http};

const SECRET: &str = "sk-policy-e2e-provider-secret-51c2";
/// AWS's documented example key id: what the secrets rule must catch and never repeat.
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// Sends `text` to gpt-4o-mini until the answer's status is `want` (the policy change has
/// reached the data plane), or fails after 10 s. Returns the last body.
async fn until_status(dp: &DataPlane, key: &str, text: &str, want: u16) -> serde_json::Value {
    let body = serde_json::json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": text}]})
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, json) =
            http::post_json(&format!("{}/v1/chat/completions", dp.url), Some(key), &body).await;
        if status == want {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} instead of {want}: {json}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stats(cp: &ControlPlane) -> proto::AiLlmStats {
    cp.client()
        .await
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: "openai".into(),
            ..Default::default()
        })
        .await
        .expect("stats")
        .stats
        .remove(0)
}

/// A control plane (with `extra` flags) whose `default` workspace has the mock's OpenAI
/// endpoint as connection `openai`, attached to repository `chat-app`.
async fn setup(mock: &MockProvider, extra: &[&str]) -> ControlPlane {
    let cp = ControlPlane::start_with(Backend::Embedded, extra).await;
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
    cp
}

/// The violations of workspace `default` once there are `n` (fails after 10 s).
async fn violations_reach(cp: &ControlPlane, n: usize) -> Vec<serde_json::Value> {
    let args = [
        "-o",
        "json",
        "policy",
        "violations",
        "--workspace",
        "default",
        "--take",
        "100",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = cp.ctl().run(&args).await.ok().json();
        let items = v.as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(Instant::now() < deadline, "violations so far: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new key of `chat-app`: (secret, id).
async fn new_key(cp: &ControlPlane, name: &str) -> (String, String) {
    let out = cp
        .ctl()
        .run(&[
            "-o", "json", "key", "create", "--repo", "chat-app", "--name", name,
        ])
        .await
        .ok()
        .json();
    let field = |v: &serde_json::Value| v.as_str().expect("key field").to_string();
    (field(&out["secret"]), field(&out["apiKey"]["id"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_alert_and_log_end_to_end() {
    let mock = MockProvider::start(SECRET).await;
    let hook = format!("{}/hooks/alerts", mock.url());
    let cp = setup(&mock, &["--alert-webhook-url", &hook]).await;
    let ctl = cp.ctl();
    let (key, key_id) = new_key(&cp, "app").await;

    // Bad rules are refused with the field that is wrong.
    ctl.run(&[
        "policy",
        "create",
        "--workspace",
        "default",
        "--name",
        "bad",
        "--content",
        "x",
        "--risk",
        "low",
        "--action",
        "log",
        "--pattern",
        "ok",
        "--pattern",
        "(unclosed",
    ])
    .await
    .fails_with("rules.patterns[1]");

    // A workspace BLOCK on credentials, a repository ALERT on email addresses, an
    // organization LOG on a model family.
    for args in [
        &[
            "--workspace",
            "default",
            "--name",
            "no-secrets",
            "--risk",
            "high",
            "--action",
            "block",
            "--secrets",
        ][..],
        &[
            "--workspace",
            "default",
            "--repo",
            "chat-app",
            "--name",
            "no-email",
            "--risk",
            "medium",
            "--action",
            "alert",
            "--pii",
            "email",
        ][..],
        &[
            "--name",
            "watch-mini",
            "--risk",
            "low",
            "--action",
            "log",
            "--deny-model",
            "gpt-4o-mini*",
        ][..],
    ] {
        let mut full = vec!["policy", "create", "--content", "what, why, examples"];
        full.extend_from_slice(args);
        ctl.run(&full).await.ok();
    }
    // A name used at two scopes is never picked silently: an organization policy named like
    // the workspace's (disabled, no rules: it changes nothing below).
    let org_twin = ctl
        .run(&[
            "-o",
            "json",
            "policy",
            "create",
            "--name",
            "no-secrets",
            "--content",
            "twin",
            "--risk",
            "low",
            "--action",
            "log",
            "--disabled",
        ])
        .await
        .ok()
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for verb in ["get", "delete"] {
        ctl.run(&["policy", verb, "no-secrets"])
            .await
            .fails_with("is both an organization policy");
    }
    ctl.run(&["policy", "test", "no-secrets", "--text", "hi"])
        .await
        .fails_with("is both an organization policy");
    let ws_one = ctl
        .run(&[
            "-o",
            "json",
            "policy",
            "get",
            "no-secrets",
            "--workspace",
            "default",
        ])
        .await
        .ok()
        .json();
    assert_eq!(ws_one["rules"]["secrets"], true, "{ws_one}");
    ctl.run(&["policy", "delete", &org_twin]).await.ok();
    ctl.run(&["policy", "get", "no-secrets"]).await.ok();
    // Rules can be tried on samples first, with the data planes' code.
    let tried = ctl
        .run(&[
            "policy",
            "test",
            "no-secrets",
            "--text",
            &format!("use {AWS_KEY} here"),
        ])
        .await
        .ok()
        .stdout;
    assert_eq!(
        tried,
        "fires: the request text contains an AWS access key id\n"
    );
    let clean = ctl
        .run(&[
            "-o",
            "json",
            "policy",
            "test",
            "no-email",
            "--text",
            "nothing personal",
        ])
        .await
        .ok()
        .json();
    assert_eq!(clean["fired"], false, "{clean}");
    ctl.run(&["policy", "test", "watch-mini", "--text", "hi"])
        .await
        .fails_with("model rules");
    let model = ctl
        .run(&[
            "policy",
            "test",
            "watch-mini",
            "--text",
            "hi",
            "--model",
            "gpt-4o-mini",
        ])
        .await
        .ok()
        .stdout;
    assert!(
        model.starts_with("fires: the request asks for model 'gpt-4o-mini'"),
        "{model}"
    );
    let listed = ctl.run(&["policy", "list"]).await.ok().stdout;
    assert!(
        listed.contains("secrets") && listed.contains("pii:email"),
        "{listed}"
    );
    // Started after the policies exist, so its first snapshot holds them and every count
    // below is exact.
    let dp = DataPlane::start(&cp, "production").await;

    // The BLOCK: refused with 403 `policy_blocked`, naming the policy, never the key; the
    // provider never sees the request.
    let refused = until_status(&dp, &key, &format!("deploy with {AWS_KEY}"), 403).await;
    assert_eq!(refused["error"]["code"], "policy_blocked");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("no-secrets") && message.contains("AWS access key id"),
        "{message}"
    );
    assert!(!refused.to_string().contains(AWS_KEY));
    let upstream_calls = mock.calls("/v1/chat/completions").len();
    // The same through a real OpenAI client: an API error it understands.
    let err = dp
        .openai(&key)
        .chat()
        .create(chat("gpt-4o-mini", &format!("my key is {AWS_KEY}")))
        .await
        .expect_err("blocked");
    match err {
        OpenAIError::ApiError(e) => {
            let e = e.api_error;
            assert_eq!(e.code.as_deref(), Some("policy_blocked"));
            assert!(e.message.contains("no-secrets"), "{}", e.message);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(mock.calls("/v1/chat/completions").len(), upstream_calls);

    // The ALERT (and the LOG on the model) let the request through.
    let resp = dp
        .openai(&key)
        .chat()
        .create(chat("gpt-4o-mini", "write to ada@example.com"))
        .await
        .expect("alert does not block");
    assert!(resp.choices[0].message.content.is_some());
    assert_eq!(mock.calls("/v1/chat/completions").len(), upstream_calls + 1);

    // Violations reach the control plane: each names its policy, severity, key and model.
    // 2 blocked requests × (no-secrets + watch-mini), 1 alert × (no-email + watch-mini).
    let violations = violations_reach(&cp, 6).await;
    assert_eq!(violations.len(), 6, "{violations:?}");
    // Time ranges read only their stretch of the events; no --workspace reads every
    // workspace the token can see.
    let count = |extra: &'static [&'static str]| {
        let ctl = cp.ctl();
        async move {
            let mut args = vec!["-o", "json", "policy", "violations", "--take", "100"];
            args.extend_from_slice(extra);
            ctl.run(&args)
                .await
                .ok()
                .json()
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    assert_eq!(count(&[]).await, 6);
    assert_eq!(
        count(&[
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2999-01-01T00:00:00Z"
        ])
        .await,
        6
    );
    assert_eq!(count(&["--from", "2999-01-01T00:00:00Z"]).await, 0);
    assert_eq!(count(&["--to", "2000-01-01T00:00:00Z"]).await, 0);
    let named = |name: &str| -> Vec<&serde_json::Value> {
        violations
            .iter()
            .filter(|v| v["policyName"] == name)
            .collect()
    };
    let blocks = named("no-secrets");
    assert_eq!(blocks.len(), 2);
    for b in &blocks {
        assert_eq!(b["blocked"], true);
        assert_eq!(b["severity"], "HIGH");
        assert_eq!(b["apiKeyId"], key_id);
        assert_eq!(b["model"], "gpt-4o-mini");
        assert_eq!(b["modelType"], "OPENAI");
        assert!(b["host"].as_str().is_some_and(|h| !h.is_empty()), "{b}");
        assert_eq!(
            b["explanation"],
            "the request text contains an AWS access key id"
        );
    }
    assert_eq!(named("watch-mini").len(), 3);
    let alert = named("no-email");
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0]["blocked"], false);
    assert!(!violations.iter().any(|v| v.to_string().contains(AWS_KEY)));
    // Alerts: the ALERT policy's violation only, with its message.
    let alerts = ctl
        .run(&["-o", "json", "policy", "alerts", "--workspace", "default"])
        .await
        .ok()
        .json();
    let alerts = alerts.as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-email")),
        "{alerts:?}"
    );
    // The alert was also POSTed to the webhook, alone (LOG and BLOCK are not alerts).
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.calls("/hooks/alerts").is_empty() {
        assert!(Instant::now() < deadline, "no webhook call");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hooks = mock.calls("/hooks/alerts");
    assert_eq!(hooks.len(), 1);
    let posted = hooks[0].json();
    assert_eq!(posted["type"], "tollgate.policy.alert");
    assert_eq!(posted["alert"]["policyName"], "no-email");
    assert_eq!(posted["alert"]["severity"], "MEDIUM");
    assert_eq!(posted["alert"]["apiKeyId"], key_id);
    assert_eq!(hooks[0].header("content-type"), Some("application/json"));
    let blocked_only = ctl
        .run(&[
            "-o",
            "json",
            "policy",
            "violations",
            "--policy",
            "no-secrets",
            "--blocked",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        blocked_only.as_array().map(Vec::len),
        Some(2),
        "{blocked_only}"
    );
    // By provider type and by the data plane that saw them.
    let host = blocks[0]["host"].as_str().expect("host").to_string();
    let count = |filter: [&str; 2]| {
        let (ctl, filter) = (ctl.clone(), filter.map(str::to_string));
        async move {
            let mut args = vec!["-o", "json", "policy", "violations"];
            args.extend(filter.iter().map(String::as_str));
            ctl.run(&args)
                .await
                .ok()
                .json()
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    assert_eq!(count(["--model-type", "openai"]).await, 6);
    assert_eq!(count(["--model-type", "anthropic"]).await, 0);
    assert_eq!(count(["--host", &host]).await, 6);
    assert_eq!(count(["--host", "another-data-plane"]).await, 0);

    // Counted in the connection's stats: 3 calls (2 refused), 6 violations, 1 alert, 2 blocks.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats(&cp).await;
        let got = (
            s.total_api_calls,
            s.total_policy_violations,
            s.total_alerts,
            s.total_blocks,
        );
        if got == (3, 6, 1, 2) {
            break;
        }
        assert!(Instant::now() < deadline, "stats: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = dp.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_policy_violations_total{action="block"} 2"#),
        "{metrics}"
    );

    // An unpaired surrogate escape makes the text unreadable: the BLOCK refuses the request
    // rather than let the key beside it through unread.
    let hidden = format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"deploy with {AWS_KEY}"}},{{"role":"user","content":"\ud800"}}]}}"#
    );
    let url = format!("{}/v1/chat/completions", dp.url);
    let (status, refused) = http::post_json(&url, Some(&key), &hidden).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be read")),
        "{refused}"
    );

    // Disabling the BLOCK lets the same request through.
    ctl.run(&["policy", "update", "no-secrets", "--disabled"])
        .await
        .ok();
    until_status(&dp, &key, &format!("deploy with {AWS_KEY}"), 200).await;

    // A BLOCK on a model holds by any name that reaches it, and hides it from the list.
    ctl.run(&[
        "policy",
        "create",
        "--workspace",
        "default",
        "--name",
        "no-mini",
        "--risk",
        "low",
        "--action",
        "block",
        "--content",
        "Use the bigger model.",
        "--deny-model",
        "gpt-4o-mini*",
    ])
    .await
    .ok();
    let refused = until_status(&dp, &key, "hello", 403).await;
    assert!(refused.to_string().contains("no-mini"), "{refused}");
    let body = serde_json::json!({"model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}]})
    .to_string();
    let (status, _) = http::post_json(
        &format!("{}/v1/chat/completions", dp.url),
        Some(&key),
        &body,
    )
    .await;
    assert_eq!(status, 403, "the qualified name is the same model");
    let auth = format!("Bearer {key}");
    let (status, models) = http::request(
        "GET",
        &format!("{}/v1/models", dp.url),
        &[("authorization", auth.as_str())],
        Vec::new(),
    )
    .await
    .expect("models");
    assert_eq!(status, 200);
    assert!(!models.contains("gpt-4o-mini"), "{models}");

    // The key never reached a log.
    for logs in [dp.logs(), cp.logs()] {
        assert!(!logs.contains(AWS_KEY), "a log holds the detected key");
    }
}

/// A policy only a model can decide: the judge (the mock's OpenAI endpoint, recognising the
/// gateway's judge prompt) blocks a request, lets another through, and its tokens count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_judge_decides_what_rules_cannot() {
    let mock = MockProvider::start(SECRET).await;
    let cp = setup(&mock, &[]).await;
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
    let (key, _) = new_key(&cp, "app").await;
    let create = |name: &'static str, action: &'static str, judge: [&'static str; 2]| {
        let ctl = ctl.clone();
        async move {
            ctl.run(&[
                "policy",
                "create",
                "--workspace",
                "default",
                "--name",
                name,
                "--risk",
                "high",
                "--action",
                action,
                "--content",
                "Never discuss launch codes.",
                "--judge",
                judge[0],
                "--judge-model",
                judge[1],
            ])
            .await
        }
    };
    // Judges of any provider: the BLOCK one asks Claude (the Messages API), the LOG one an
    // OpenAI model.
    let claude = ["claude", "claude-sonnet-4-20250514"];
    create("no-launch-codes", "block", claude).await.ok();
    create("watch-codes", "log", ["openai", "gpt-4o-mini"])
        .await
        .ok();
    let dp = DataPlane::start(&cp, "production").await;
    let is_judge = |s: Option<&str>| s.is_some_and(|s| s.starts_with("You decide whether"));
    // Calls to the OpenAI endpoint: (judges, forwarded requests); every Messages API call
    // is a judge's.
    let openai_calls = |mock: &MockProvider| {
        let calls = mock.calls("/v1/chat/completions");
        let judges = calls
            .iter()
            .filter(|c| is_judge(c.json()["messages"][0]["content"].as_str()))
            .count();
        (judges, calls.len() - judges)
    };
    let judged = |mock: &MockProvider| {
        let claude = mock.calls("/v1/messages");
        assert!(claude.iter().all(|c| is_judge(c.json()["system"].as_str())));
        openai_calls(mock).0 + claude.len()
    };

    let refused = until_status(&dp, &key, "what are the launch codes?", 403).await;
    let message = refused["error"]["message"].as_str().expect("message");
    assert_eq!(
        message,
        "blocked by policy 'no-launch-codes': the policy's judge found: The request asks for restricted codes."
    );
    // Two judges asked (the BLOCK one waited for, the LOG one in the background); the
    // request itself never forwarded.
    assert_eq!(openai_calls(&mock).1, 0);

    let ok = dp
        .openai(&key)
        .chat()
        .create(chat("gpt-4o-mini", "what is the capital of France?"))
        .await
        .expect("a request the judge finds fine goes through");
    assert_eq!(
        ok.choices[0].message.content.as_deref(),
        Some("Hello from mock OpenAI")
    );
    assert_eq!(openai_calls(&mock).1, 1);

    // Violations: the BLOCK (blocked) and the LOG judge's own finding, each with the reason.
    let violations = violations_reach(&cp, 2).await;
    assert_eq!(violations.len(), 2, "{violations:?}");
    for v in &violations {
        assert_eq!(
            v["explanation"],
            "the policy's judge found: The request asks for restricted codes."
        );
    }
    assert!(
        violations
            .iter()
            .any(|v| v["policyName"] == "no-launch-codes" && v["blocked"] == true)
    );
    assert!(violations.iter().any(|v| v["policyName"] == "watch-codes"));

    // Every judge call's tokens count as the policy judges' tokens of the connection the
    // requests were for.
    let asked = judged(&mock) as u64;
    assert_eq!(asked, 4, "two judges per request");
    assert_eq!(
        mock.calls("/v1/messages").len(),
        2,
        "the BLOCK judge is Claude"
    );
    let (p, c) = tollgate_tests::mock_provider::JUDGE_USAGE;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats(&cp).await;
        if (s.total_llm_tokens_in, s.total_llm_tokens_out) == (asked * p, asked * c) {
            assert_eq!(s.total_blocks, 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "judge tokens: {} / {}",
            s.total_llm_tokens_in,
            s.total_llm_tokens_out
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A judge that cannot be reached lets requests through, unless its policy fails closed.
    create_llm(
        &cp,
        "judge-down",
        proto::AiType::Other,
        "http://127.0.0.1:9/v1".into(),
        "gpt-4o-mini",
        SECRET,
    )
    .await;
    let judge_down = ["--judge", "judge-down", "--judge-model", "gpt-4o-mini"];
    let closed = [
        &[
            "policy",
            "create",
            "--workspace",
            "default",
            "--name",
            "must-judge",
        ][..],
        &[
            "--risk",
            "high",
            "--action",
            "block",
            "--content",
            "Judge every request.",
        ],
        &judge_down,
        &["--judge-fail-closed"],
    ]
    .concat();
    ctl.run(&closed).await.ok();
    let refused = until_status(&dp, &key, "what is the capital of France?", 403).await;
    assert_eq!(
        refused["error"]["message"],
        "blocked by policy 'must-judge': the policy's judge could not decide, and the policy fails closed"
    );
    let open = [&["policy", "update", "must-judge"][..], &judge_down].concat();
    ctl.run(&open).await.ok();
    until_status(&dp, &key, "what is the capital of France?", 200).await;
    // Failing closed needs a judge to fail.
    let status = cp
        .client()
        .await
        .create_policy(proto::CreatePolicyRequest {
            workspace_id: "default".into(),
            name: "closed-without-judge".into(),
            content: "Judge every request.".into(),
            risk_type: proto::RiskType::High as i32,
            action: proto::PolicyAction::Block as i32,
            rules: Some(proto::PolicyRules {
                judge_fail_closed: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("no judge");
    assert_eq!(status.code(), Some(tonic::Code::InvalidArgument));
    assert!(
        status.to_string().contains("rules.judge_fail_closed"),
        "{status}"
    );
}

/// A request budget per API key: a BLOCK answers 429 with `rate_limit_exceeded` once the key
/// has spent it; another key of the repository is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_per_key() {
    let mock = MockProvider::start(SECRET).await;
    let cp = setup(&mock, &[]).await;
    let ctl = cp.ctl();
    let ((a, _), (b, _)) = (new_key(&cp, "a").await, new_key(&cp, "b").await);
    ctl.run(&[
        "policy",
        "create",
        "--workspace",
        "default",
        "--name",
        "three-a-minute",
        "--risk",
        "low",
        "--action",
        "block",
        "--content",
        "Keep batch jobs off the shared quota.",
        "--max-requests-per-minute",
        "3",
    ])
    .await
    .ok();
    let dp = DataPlane::start(&cp, "production").await;
    let send = |key: String| {
        let url = format!("{}/v1/chat/completions", dp.url);
        async move {
            let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
            http::post_json(&url, Some(&key), body).await
        }
    };
    for _ in 0..3 {
        assert_eq!(send(a.clone()).await.0, 200);
    }
    let (status, body) = send(a.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("three-a-minute") && m.contains("retry after")),
        "{body}"
    );
    assert_eq!(send(b).await.0, 200, "each key has its own budget");
    assert_eq!(mock.calls("/v1/chat/completions").len(), 4);

    // A flood of refused requests: 25 violations, kept as at most 20 events (the burst of
    // the event budget), all 25 counted.
    for _ in 0..24 {
        assert_eq!(send(a.clone()).await.0, 429);
    }
    let metrics = dp.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_policy_violations_total{action="block"} 25"#)
            && metrics.contains("tollgate_policy_events_suppressed_total 5"),
        "{metrics}"
    );
    assert_eq!(violations_reach(&cp, 20).await.len(), 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(&cp).await.total_policy_violations != 25 {
        assert!(
            Instant::now() < deadline,
            "the counters keep every violation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Policy texts reviewed and policies proposed by a model of the workspace (the mock
/// recognises the control plane's prompts), through its OpenAI and Messages APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_reviewed_and_recommended_by_a_model() {
    let mock = MockProvider::start(SECRET).await;
    let cp = setup(&mock, &[]).await;
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
    let openai = ["--llm", "openai", "--model", "gpt-4o-mini"];
    let claude = ["--llm", "claude", "--model", "claude-sonnet-4-20250514"];

    // A text not stored, reviewed by an OpenAI model.
    let review = ctl
        .run(
            &[
                &["policy", "review", "--content", "Be careful."][..],
                &openai,
            ]
            .concat(),
        )
        .await
        .ok()
        .stdout;
    assert_eq!(
        review,
        "score 35/100: Too short to apply consistently.\n  ambiguity: Say which data is meant.\n  \
         actionability: Say what a request must not contain.\n(50 input and 12 output tokens)\n"
    );
    // A stored policy, reviewed by Claude.
    ctl.run(&[
        "policy",
        "create",
        "--workspace",
        "default",
        "--name",
        "no-customer-data",
        "--risk",
        "high",
        "--action",
        "block",
        "--content",
        "Requests must not include customer names, emails or account numbers, because ...",
    ])
    .await
    .ok();
    let stored = ctl
        .run(
            &[
                &["-o", "json", "policy", "review", "no-customer-data"][..],
                &claude,
            ]
            .concat(),
        )
        .await
        .ok()
        .json();
    assert_eq!(stored["score"], 88, "{stored}");
    // uint64 is a string in proto3 JSON.
    assert_eq!(stored["inputTokens"], "50", "{stored}");
    assert!(mock.calls("/v1/messages").iter().any(|c| {
        c.json()["system"]
            .as_str()
            .is_some_and(|s| s.starts_with("You review policies"))
    }));

    // Proposals, read out of the model's code fence; nothing is created.
    let proposed = ctl
        .run(
            &[
                &[
                    "-o",
                    "json",
                    "policy",
                    "recommend",
                    "customer emails in prompts",
                ][..],
                &openai,
            ]
            .concat(),
        )
        .await
        .ok()
        .json();
    let policies = proposed["policies"].as_array().expect("policies");
    assert_eq!(policies.len(), 2, "{proposed}");
    assert_eq!(policies[0]["name"], "no-customer");
    assert_eq!(
        (
            policies[0]["riskType"].as_str(),
            policies[0]["action"].as_str()
        ),
        (Some("HIGH"), Some("BLOCK")),
        "{proposed}"
    );
    let one = ctl
        .run(
            &[
                &["policy", "recommend", "secrets", "--count", "1"][..],
                &openai,
            ]
            .concat(),
        )
        .await
        .ok()
        .stdout;
    assert!(
        one.starts_with("NAME") && one.contains("no-secrets") && !one.contains("watch-usage"),
        "{one}"
    );
    let listed = ctl.run(&["-o", "json", "policy", "list"]).await.ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // The calls' tokens count as the gateway's own model use (one review and two
    // recommendations of 50 + 12 tokens on `openai`), not as app calls.
    let used = stats(&cp).await;
    assert_eq!(
        (
            used.total_llm_tokens_in,
            used.total_llm_tokens_out,
            used.total_api_calls
        ),
        (150, 36, 0)
    );

    // The model must be named, and exist; the secret never shows.
    ctl.run(
        &[&[
            "policy",
            "review",
            "--content",
            "x",
            "--llm",
            "nope",
            "--model",
            "m",
        ][..]]
        .concat(),
    )
    .await
    .fails_with("NOT_FOUND");
    ctl.run(&[
        "policy",
        "recommend",
        " ",
        "--llm",
        "openai",
        "--model",
        "m",
    ])
    .await
    .fails_with("prompt");
    assert!(!review.contains(SECRET) && !proposed.to_string().contains(SECRET));
}

//! `tollgatectl apply -f`: declarative and idempotent, secrets only from env or file.

use tollgate_tests::{Backend, ControlPlane};

const FILE: &str = r#"
workspaces:
  - name: team-a
    llms:
      - name: openai-prod
        type: openai
        endpoint: http://127.0.0.1:9/v1
        secretEnv: E2E_OPENAI_SECRET
        routingId: openai
        environments: [production, staging]
        models: [gpt-4o-mini]
      - name: claude
        type: anthropic
        secretFile: claude.secret
        models: [claude-sonnet-4-20250514]
    repositories:
      - name: chat-app
        llms: [openai-prod, claude]
        keys: [{name: web}, {name: batch, expiresAt: "2099-01-31T00:00:00Z"}]
        routes:
          - name: smart
            strategy: fallback
            targets: [openai/gpt-4o-mini, claude/claude-sonnet-4-20250514=2]
            retries: 1
    policies:
      - name: no-pii
        content: "Never send personal data to a provider."
        risk: high
        action: block
        repository: chat-app
        rules:
          pii: [email, credit_card, email]
          patterns: ['(?i)\bproject\s+falcon\b']
          maxOutputTokens: 4096
          judge: {llm: openai-prod, model: gpt-4o-mini, failClosed: true}
policies:
  - name: no-credentials
    content: "Never include passwords or API keys in prompts."
    risk: medium
    action: alert
    rules: {secrets: true, deniedModels: ["gpt-3.5*"]}
tokens:
  - name: ci
    workspace: team-a
    role: write
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_is_idempotent() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let dir = cp.dir().join("apply");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tollgate.yaml");
    std::fs::write(&file, FILE).expect("write");
    std::fs::write(dir.join("claude.secret"), "sk-ant-e2e-file-secret-0001\n").expect("secret");
    let ctl = cp
        .ctl()
        .with_env("E2E_OPENAI_SECRET", "sk-e2e-env-secret-0002");
    let path = file.to_string_lossy().to_string();

    let first = ctl.run(&["apply", "-f", &path]).await.ok();
    assert!(first.stdout.contains("created"), "{}", first.stdout);
    assert!(
        !first.stdout.contains("sk-e2e-env-secret-0002")
            && !first.stdout.contains("sk-ant-e2e-file-secret-0001")
    );
    let before = ctl
        .run(&["-o", "json", "llm", "list", "--workspace", "team-a"])
        .await
        .ok()
        .json();
    assert_eq!(before.as_array().map(Vec::len), Some(2));

    let second = ctl.run(&["apply", "-f", &path]).await.ok();
    for line in second.stdout.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("unchanged"),
            "second apply changed something: {line}\n{}",
            second.stdout
        );
    }
    let after = ctl
        .run(&["-o", "json", "llm", "list", "--workspace", "team-a"])
        .await
        .ok()
        .json();
    assert_eq!(
        before, after,
        "applying twice changes nothing, versions included"
    );
    let judge_id = before
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == "openai-prod"))
        .map(|l| l["id"].clone())
        .expect("openai-prod");
    let policy = ctl
        .run(&["-o", "json", "policy", "get", "no-pii"])
        .await
        .ok()
        .json();
    assert_eq!(
        policy["rules"],
        serde_json::json!({"pii": ["EMAIL", "CREDIT_CARD"],
            "patterns": ["(?i)\\bproject\\s+falcon\\b"], "maxOutputTokens": 4096,
            "secrets": false, "allowedModels": [], "deniedModels": [], "maxInputChars": 0,
            "judgeAiLlmId": judge_id, "judgeModel": "gpt-4o-mini", "maxRequestsPerMinute": 0,
            "judgeFailClosed": true}),
        "{policy}"
    );
    let keys = ctl
        .run(&["-o", "json", "key", "list", "--repo", "chat-app"])
        .await
        .ok()
        .json();
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(2),
        "one key per entry, not one per apply: {keys}"
    );
    let expiry = |name: &str| {
        keys.as_array()
            .and_then(|k| k.iter().find(|k| k["name"] == name))
            .map(|k| k["expiresAt"].clone())
    };
    assert_eq!(
        expiry("batch"),
        Some("2099-01-31T00:00:00Z".into()),
        "{keys}"
    );
    assert_eq!(expiry("web"), Some(serde_json::Value::Null), "{keys}");
    let routes = ctl
        .run(&["-o", "json", "route", "list", "--repo", "chat-app"])
        .await
        .ok()
        .json();
    assert_eq!(routes[0]["name"], "smart", "{routes}");
    assert_eq!(routes[0]["strategy"], "FALLBACK");
    assert_eq!(routes[0]["targets"][1]["weight"], 2);
    // A route added by hand is not in the file: the next apply removes it.
    ctl.run(&[
        "route",
        "set",
        "--repo",
        "chat-app",
        "extra",
        "--target",
        "openai/gpt-4o-mini",
    ])
    .await
    .ok();

    // A changed secret is an update; the others stay unchanged.
    let third = cp
        .ctl()
        .with_env("E2E_OPENAI_SECRET", "sk-e2e-env-secret-0003")
        .run(&["apply", "-f", &path])
        .await
        .ok();
    let updated: Vec<_> = third
        .stdout
        .lines()
        .filter(|l| l.contains("updated"))
        .collect();
    assert_eq!(updated.len(), 2, "{}", third.stdout);
    assert!(
        updated.iter().any(|l| l.contains("openai-prod")),
        "{}",
        third.stdout
    );
    assert!(
        updated
            .iter()
            .any(|l| l.contains("chat-app") && l.contains("route extra deleted")),
        "{}",
        third.stdout
    );
    let routes = ctl
        .run(&["-o", "json", "route", "list", "--repo", "chat-app"])
        .await
        .ok()
        .json();
    assert_eq!(routes.as_array().map(Vec::len), Some(1), "{routes}");

    // Inline secrets and missing variables are refused before anything is sent.
    std::fs::write(
        &file,
        FILE.replace("secretEnv: E2E_OPENAI_SECRET", "secret: sk-inline"),
    )
    .expect("write");
    cp.ctl()
        .run(&["apply", "-f", &path])
        .await
        .fails_with("secret");
    std::fs::write(&file, FILE.replace("E2E_OPENAI_SECRET", "E2E_MISSING_VAR")).expect("write");
    cp.ctl()
        .run(&["apply", "-f", &path])
        .await
        .fails_with("E2E_MISSING_VAR");

    // A file that fails half-way says what it did before the failure.
    let partial = FILE.replace(
        "            retries: 1\n",
        "            retries: 1\n          - name: broken\n            targets: [openai/not-listed]\n",
    );
    assert_ne!(partial, FILE);
    std::fs::write(&file, partial).expect("write");
    let failed = cp
        .ctl()
        .with_env("E2E_OPENAI_SECRET", "sk-e2e-env-secret-0003")
        .run(&["apply", "-f", &path])
        .await;
    failed.fails_with("does not expose model 'not-listed'");
    assert!(
        failed.stdout.contains("llm team-a/openai-prod: unchanged"),
        "{}",
        failed.stdout
    );
    assert!(
        failed
            .stdout
            .contains("repository team-a/chat-app: unchanged"),
        "the repository is reported before the error: {}",
        failed.stdout
    );
}

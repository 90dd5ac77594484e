use std::path::Path;

use super::*;

const GOOD: &str = r#"
workspaces:
  - name: team-a
    llms:
      - name: openai-prod
        type: openai
        endpoint: https://api.openai.com/v1
        secretEnv: OPENAI_API_KEY
        passthrough: false
        routingId: openai
        environments: [production]
        models: [gpt-4o-mini]
      - name: byok
        type: ANTHROPIC
        passthrough: true
    repositories:
      - name: chat-app
        llms: [openai-prod]
        keys: [{name: web}]
    policies:
      - name: no-pii
        content: "Never send personal data"
        risk: high
        action: block
        repository: chat-app
policies:
  - name: org-wide
    content: "No secrets in prompts"
    risk: medium
    action: alert
    enabled: false
tokens:
  - name: ci
    workspace: team-a
    role: write
"#;

fn env(name: &str) -> Option<String> {
    (name == "OPENAI_API_KEY").then(|| "sk-test-1234".to_string())
}

fn parse(text: &str) -> Result<Plan, String> {
    Plan::from_yaml(text, Path::new("."), env)
}

fn err(text: &str) -> String {
    parse(text).err().unwrap_or_default()
}

#[test]
fn parses_the_documented_shape() -> Result<(), String> {
    let plan = parse(GOOD)?;
    let ws = &plan.file.workspaces[0];
    assert_eq!(ws.llms[0].ai_type, AiTypeSpec::Openai);
    assert_eq!(ws.llms[1].ai_type, AiTypeSpec::Anthropic);
    assert_eq!(
        ws.repositories[0].llms,
        Some(vec!["openai-prod".to_string()])
    );
    assert_eq!(ws.policies[0].risk, RiskSpec::High);
    assert!(ws.policies[0].enabled);
    assert!(!plan.file.policies[0].enabled);
    assert_eq!(plan.file.tokens[0].role, Some(WorkspaceRoleSpec::Write));
    let secret = plan.credentials[0][0].secret.as_ref().map(|s| s.expose());
    assert_eq!(secret, Some("sk-test-1234"));
    assert_eq!(plan.credentials[0][1], LlmCredentials::default());
    Ok(())
}

#[test]
fn the_apply_md_example_parses() -> Result<(), String> {
    let doc = include_str!("../../APPLY.md");
    let example = doc
        .split("```yaml")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .ok_or("no yaml block in APPLY.md")?;
    let file = ApplyFile::from_yaml(example)?;
    assert_eq!(file.workspaces[0].llms.len(), 2);
    assert_eq!(file.tokens.len(), 2);
    Ok(())
}

#[test]
fn key_expiry_is_an_rfc3339_time() {
    let key = |line: &str| {
        format!(
            "workspaces:\n  - name: a\n    repositories:\n      - name: r\n        keys: [{line}]\n"
        )
    };
    let file = ApplyFile::from_yaml(&key(r#"{name: k, expiresAt: "2027-01-31T12:00:00Z"}"#));
    let file = file.expect("parses");
    let k = &file.workspaces[0].repositories[0].keys[0];
    assert_eq!(
        k.expires_at.as_ref().map(|t| t.seconds),
        Some(1_801_396_800)
    );
    let file = ApplyFile::from_yaml(&key("{name: k}")).expect("parses");
    assert_eq!(file.workspaces[0].repositories[0].keys[0].expires_at, None);
    let e = err(&key("{name: k, expiresAt: next-week}"));
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn inline_secret_is_rejected_with_a_clear_message() {
    let e = err(
        "workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: openai\n        secret: sk-live\n",
    );
    assert!(e.contains("inline `secret` is not allowed"), "{e}");
    assert!(e.contains("secretEnv"), "{e}");
    assert!(!e.contains("sk-live"), "the secret must not be echoed: {e}");
}

#[test]
fn unknown_field_is_rejected_with_its_line() {
    let e = err(
        "workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: openai\n        endpont: https://x\n",
    );
    assert!(e.contains("unknown field `endpont`"), "{e}");
    assert!(e.contains("line 6"), "{e}");
}

#[test]
fn bad_enum_and_missing_fields_are_rejected() {
    let e = err("workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: azure\n");
    assert!(e.contains("unknown variant `azure`"), "{e}");
    let e = err(
        "workspaces:\n  - name: a\n    policies:\n      - name: p\n        risk: low\n        action: log\n",
    );
    assert!(e.contains("missing field `content`"), "{e}");
}

#[test]
fn zero_limits_are_refused_not_dropped() -> Result<(), String> {
    let policy = |rules: &str| {
        format!(
            "policies:\n  - name: p\n    content: c\n    risk: low\n    action: block\n    rules: {{{rules}}}\n"
        )
    };
    for field in ["maxInputChars", "maxOutputTokens", "maxRequestsPerMinute"] {
        let e = err(&policy(&format!("{field}: 0")));
        assert!(e.contains("nonzero"), "{field}: {e}");
    }
    let plan = parse(&policy("maxRequestsPerMinute: 60"))?;
    let rules = plan.file.policies[0].rules.to_proto();
    assert_eq!(
        (rules.max_requests_per_minute, rules.max_input_chars),
        (60, 0)
    );
    Ok(())
}

#[test]
fn missing_secret_env_fails_before_anything_is_sent() {
    let e = err(
        "workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: openai\n        secretEnv: NOPE\n",
    );
    assert!(e.contains("llm a/x") && e.contains("NOPE"), "{e}");
    let e = err(
        "workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: openai\n        secretFile: /nonexistent/key\n",
    );
    assert!(e.contains("/nonexistent/key"), "{e}");
}

#[test]
fn secret_file_is_relative_to_the_apply_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("key.txt"), "sk-from-file\n")?;
    let text = "workspaces:\n  - name: a\n    llms:\n      - name: x\n        type: aws\n        secretFile: key.txt\n        keyEnv: OPENAI_API_KEY\n";
    let plan = Plan::from_yaml(text, dir.path(), env)?;
    let c = &plan.credentials[0][0];
    assert_eq!(c.secret.as_ref().map(|s| s.expose()), Some("sk-from-file"));
    assert_eq!(c.key.as_deref(), Some("sk-test-1234"));
    Ok(())
}

#[test]
fn semantic_problems_are_all_reported() {
    let e = err(concat!(
        "workspaces:\n",
        "  - name: a\n",
        "    llms:\n",
        "      - {name: x, type: openai, secretEnv: OPENAI_API_KEY, secretFile: f}\n",
        "      - {name: x, type: openai, passthrough: true, secretEnv: OPENAI_API_KEY}\n",
        "tokens:\n",
        "  - {name: t, orgRole: owner, workspace: a}\n",
    ));
    assert!(e.contains("not both"), "{e}");
    assert!(e.contains("appears twice"), "{e}");
    assert!(e.contains("passthrough"), "{e}");
    assert!(e.contains("token t"), "{e}");
}

#[test]
fn empty_file_is_valid() -> Result<(), String> {
    let plan = parse("{}")?;
    assert!(plan.file.workspaces.is_empty());
    Ok(())
}

#[test]
fn outcome_lines() {
    let mut o = Outcome::new("repository", "a/chat".into(), Change::Updated);
    o.detail = Some("attached x".into());
    assert_eq!(o.line(), "repository a/chat: updated (attached x)");
    let mut k = Outcome::new("key", "a/chat/web".into(), Change::Created);
    k.secret = Some(Secret::new("tg_abc"));
    assert_eq!(
        k.line(),
        "key a/chat/web: created; secret, shown once: tg_abc"
    );
    assert!(!format!("{k:?}").contains("tg_abc"));
}

use super::*;
use tollgate_proto::admin::PolicyRules;

fn policy(id: &str, action: i32, rules: PolicyRules) -> pb::Policy {
    pb::Policy {
        id: id.into(),
        workspace_id: "ws".into(),
        repository_id: String::new(),
        name: id.into(),
        risk_type: 3,
        action,
        rules: Some(rules),
        content: String::new(),
    }
}

fn set(policies: Vec<pb::Policy>) -> PolicySet {
    PolicySet::new(
        policies
            .into_iter()
            .map(|p| Entry {
                policy: Arc::new(Policy::try_from(p).expect("valid policy")),
                judge: None,
            })
            .collect(),
    )
}

/// `set` evaluated on a request of API key `key-1`.
fn eval(set: &PolicySet, model: &str, candidates: &[Candidate<'_>], body: &[u8]) -> Vec<Hit> {
    let key: Arc<str> = Arc::from("key-1");
    set.evaluate(&Subject {
        model,
        candidates,
        key_id: &key,
        body,
    })
}

fn chat(text: &str) -> Vec<u8> {
    serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        .to_string()
        .into_bytes()
}

fn fired(set: &PolicySet, model: &str, body: &[u8]) -> Vec<(String, String)> {
    eval(set, model, &[], body)
        .into_iter()
        .map(|h| (h.policy.id.to_string(), h.explanation))
        .collect()
}

#[test]
fn each_rule_fires_and_names_what_not_the_text() {
    let aws_key = "AKIAIOSFODNN7EXAMPLE";
    let s = set(vec![
        policy(
            "secrets",
            3,
            PolicyRules {
                secrets: true,
                ..Default::default()
            },
        ),
        policy(
            "pii",
            1,
            PolicyRules {
                pii: vec![1],
                ..Default::default()
            },
        ),
        policy(
            "falcon",
            2,
            PolicyRules {
                patterns: vec!["nothing".into(), "(?i)project\\s+falcon".into()],
                ..Default::default()
            },
        ),
    ]);
    let body = chat(&format!(
        "key {aws_key}, mail ada@example.com about Project  Falcon"
    ));
    let hits = fired(&s, "gpt-4o", &body);
    assert_eq!(
        hits,
        [
            (
                "secrets".into(),
                "the request text contains an AWS access key id".into()
            ),
            (
                "pii".into(),
                "the request text contains an email address".into()
            ),
            ("falcon".into(), "the request text matches pattern 2".into()),
        ]
    );
    for (_, why) in &hits {
        assert!(!why.contains(aws_key) && !why.contains("ada@"), "{why}");
    }
    assert!(fired(&s, "gpt-4o", &chat("an ordinary question")).is_empty());
}

#[test]
fn model_and_size_rules() {
    let s = set(vec![
        policy(
            "models",
            3,
            PolicyRules {
                allowed_models: vec!["gpt-4o*".into(), "claude-3-haiku".into()],
                denied_models: vec!["gpt-4o-audio*".into()],
                ..Default::default()
            },
        ),
        policy(
            "limits",
            1,
            PolicyRules {
                max_input_chars: 10,
                max_output_tokens: 100,
                ..Default::default()
            },
        ),
    ]);
    let short = chat("hi");
    assert!(fired(&s, "gpt-4o-mini", &short).is_empty());
    assert!(fired(&s, "claude-3-haiku", &short).is_empty());
    assert_eq!(
        fired(&s, "o1", &short)[0].1,
        "the request asks for model 'o1', which is not among the allowed models"
    );
    assert_eq!(
        fired(&s, "gpt-4o-audio-preview", &short)[0].1,
        "the request asks for model 'gpt-4o-audio-preview', which is denied ('gpt-4o-audio*')"
    );
    // Characters, not bytes: ten accented letters are within a limit of 10.
    assert!(fired(&s, "gpt-4o", &chat("éééééééééé")).is_empty());
    assert_eq!(
        fired(&s, "gpt-4o", &chat("eleven chars"))[0].1,
        "the request sends 12 characters of text; the limit is 10"
    );
    for (field, value) in [
        ("max_tokens", serde_json::json!(101)),
        ("max_completion_tokens", serde_json::json!(5000)),
        // A float or an exponent cannot slip past the limit.
        ("max_tokens", serde_json::json!(1e9)),
        ("max_tokens", serde_json::json!(100.5)),
    ] {
        let body = serde_json::json!({"model": "gpt-4o", "messages": [], field: value});
        let hits = fired(&s, "gpt-4o", body.to_string().as_bytes());
        assert_eq!(hits.len(), 1, "{field}: {value}");
        assert!(
            hits[0].1.contains("output tokens; the limit is 100"),
            "{}",
            hits[0].1
        );
    }
    let within = serde_json::json!({"model": "gpt-4o", "messages": [], "max_tokens": 100});
    assert!(fired(&s, "gpt-4o", within.to_string().as_bytes()).is_empty());
}

#[test]
fn bad_policies_are_rejected_with_a_reason() {
    let reason = |p: pb::Policy| Policy::try_from(p).expect_err("rejected").reason;
    assert!(
        reason(policy(
            "p",
            3,
            PolicyRules {
                patterns: vec!["ok".into(), "(unclosed".into()],
                ..Default::default()
            }
        ))
        .contains("pattern 2")
    );
    assert!(reason(policy("p", 9, Default::default())).contains("action 9"));
    assert!(
        reason(policy(
            "p",
            1,
            PolicyRules {
                pii: vec![42],
                ..Default::default()
            }
        ))
        .contains("42")
    );
}

#[test]
fn scope_decides_which_repositories_answer() {
    let scoped = |ws: &str, repo: &str| {
        let mut p = policy("p", 1, Default::default());
        p.workspace_id = ws.into();
        p.repository_id = repo.into();
        Policy::try_from(p).expect("valid")
    };
    assert!(scoped("", "").applies_to("ws", "r1"));
    assert!(scoped("ws", "").applies_to("ws", "r1"));
    assert!(!scoped("other", "").applies_to("ws", "r1"));
    assert!(scoped("ws", "r1").applies_to("ws", "r1"));
    assert!(!scoped("ws", "r2").applies_to("ws", "r1"));
}

#[test]
fn long_explanations_are_capped_on_a_character_boundary() {
    let model = "é".repeat(2000);
    let s = set(vec![policy(
        "models",
        1,
        PolicyRules {
            denied_models: vec!["é*".into()],
            ..Default::default()
        },
    )]);
    let hits = eval(&s, &model, &[], b"{}");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].explanation.len() <= MAX_EXPLANATION);
    assert!(hits[0].explanation.ends_with('…'));
}

/// A rule on a model also holds when the app asks for it by its qualified name or by a
/// route alias that reaches it.
#[test]
fn model_rules_see_where_the_request_goes() {
    let s = set(vec![
        policy(
            "deny-mini",
            3,
            PolicyRules {
                denied_models: vec!["gpt-4o-mini*".into()],
                ..Default::default()
            },
        ),
        policy(
            "only-4o",
            3,
            PolicyRules {
                allowed_models: vec!["gpt-4o*".into()],
                ..Default::default()
            },
        ),
    ]);
    let mini = Candidate {
        model: "gpt-4o-mini",
        qualified: "oa/gpt-4o-mini",
    };
    let claude = Candidate {
        model: "claude-3-haiku",
        qualified: "anthropic/claude-3-haiku",
    };
    let four = Candidate {
        model: "gpt-4o",
        qualified: "oa/gpt-4o",
    };
    let ids = |model: &str, c: &[Candidate<'_>]| -> Vec<(String, String)> {
        eval(&s, model, c, b"{}")
            .into_iter()
            .map(|h| (h.policy.id.to_string(), h.explanation))
            .collect()
    };
    assert_eq!(
        ids("oa/gpt-4o-mini", &[mini]),
        [(
            "deny-mini".to_string(),
            "the request asks for model 'oa/gpt-4o-mini', which reaches 'gpt-4o-mini', denied ('gpt-4o-mini*')".to_string()
        )]
    );
    // An alias over gpt-4o only is allowed by its targets; one that may fall back to a
    // model outside the list is not.
    assert!(ids("smart", &[four]).is_empty());
    let fallback = ids("smart", &[four, claude]);
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0].0, "only-4o");
    assert!(s.0[0].policy.blocks_model("oa/gpt-4o-mini", &[mini]));
    assert!(!s.0[0].policy.blocks_model("oa/gpt-4o", &[four]));
}

#[test]
fn request_budgets_are_per_key() {
    // The third request of a key fires, with when to retry (the buckets' refill is tested
    // in `bucket.rs`).
    let fresh = set(vec![policy(
        "rpm",
        3,
        PolicyRules {
            max_requests_per_minute: 2,
            ..Default::default()
        },
    )]);
    let body = chat("hi");
    assert!(eval(&fresh, "m", &[], &body).is_empty());
    assert!(eval(&fresh, "m", &[], &body).is_empty());
    let hits = eval(&fresh, "m", &[], &body);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].explanation,
        "the API key made more than 2 requests in a minute"
    );
    assert!(
        hits[0]
            .retry_after
            .is_some_and(|w| w <= Duration::from_secs(30))
    );
    // Another key has its own budget.
    let other: Arc<str> = Arc::from("key-2");
    let subject = Subject {
        model: "m",
        candidates: &[],
        key_id: &other,
        body: &body,
    };
    assert!(fresh.evaluate(&subject).is_empty());
}

/// Text the rules cannot read fires them instead of passing unread: an unpaired surrogate
/// escape (valid JSON that no string can hold) hides nothing, anywhere in the text.
#[test]
fn unreadable_text_fires_the_rules_that_read_text() {
    let s = set(vec![
        policy(
            "secrets",
            3,
            PolicyRules {
                secrets: true,
                ..Default::default()
            },
        ),
        policy(
            "models",
            3,
            PolicyRules {
                denied_models: vec!["o1*".into()],
                ..Default::default()
            },
        ),
    ]);
    let hidden = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"AKIAIOSFODNN7EXAMPLE"},{"role":"user","content":"\ud800"}]}"#;
    assert_eq!(
        fired(&s, "gpt-4o", hidden),
        vec![("secrets".to_string(), UNREADABLE.to_string())]
    );
    let raw = b"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"AKIAIOSFODNN7EXAMPLE \xff\"}]}";
    assert_eq!(fired(&s, "gpt-4o", raw).len(), 1);
    // A readable request is judged on what it says; escapes of real characters are fine.
    assert!(fired(&s, "gpt-4o", &chat("caf\u{e9} \u{1f600}")).is_empty());
    let pair = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"\ud83d\ude00"}]}"#;
    assert!(fired(&s, "gpt-4o", pair).is_empty());
}

#[test]
fn output_limits_that_are_not_numbers_fire() {
    let s = set(vec![policy(
        "out",
        3,
        PolicyRules {
            max_output_tokens: 100,
            ..Default::default()
        },
    )]);
    let body = |limits: &str| format!(r#"{{"model":"gpt-4o","messages":[]{limits}}}"#);
    for limits in [
        r#","max_tokens":"5000""#,
        r#","max_completion_tokens":"5000""#,
        r#","max_tokens":[5000]"#,
    ] {
        let hits = fired(&s, "gpt-4o", body(limits).as_bytes());
        assert_eq!(hits.len(), 1, "{limits}");
        assert!(hits[0].1.contains("is not a number"), "{hits:?}");
    }
    for limits in ["", r#","max_tokens":null"#, r#","max_tokens":100"#] {
        assert!(
            fired(&s, "gpt-4o", body(limits).as_bytes()).is_empty(),
            "{limits}"
        );
    }
}

/// The limit counts the app's characters, not the separators between its pieces.
#[test]
fn input_size_counts_only_the_apps_characters() {
    let s = set(vec![policy(
        "size",
        3,
        PolicyRules {
            max_input_chars: 60,
            ..Default::default()
        },
    )]);
    let thirty = "a".repeat(30);
    let two = serde_json::json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": thirty}, {"role": "user", "content": thirty}]});
    assert!(fired(&s, "gpt-4o", two.to_string().as_bytes()).is_empty());
    let parts = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": thirty}, {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": thirty}]}]});
    assert!(fired(&s, "gpt-4o", parts.to_string().as_bytes()).is_empty());
    let over = serde_json::json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": thirty}, {"role": "user", "content": format!("{thirty}b")}]});
    assert_eq!(
        fired(&s, "gpt-4o", over.to_string().as_bytes())[0].1,
        "the request sends 61 characters of text; the limit is 60"
    );
}

//! AI LLM configurations, repositories and keys through `tollgatectl` and the SDK.

use tollgate_sdk::proto;
use tollgate_tests::{Backend, ControlPlane, MockProvider};

const SECRET: &str = "sk-e2e-provider-secret-ABCDEFGH1234";

async fn llm_lifecycle(backend: Backend) {
    let cp = ControlPlane::start(backend).await;
    let mock = MockProvider::start(SECRET).await;
    let ctl = cp.ctl();
    let endpoint = format!("{}/v1", mock.url());

    // Create, with the secret from stdin.
    let out = ctl
        .run_stdin(
            &[
                "-o",
                "json",
                "llm",
                "create",
                "--workspace",
                "default",
                "--name",
                "Prod OpenAI",
                "--type",
                "openai",
                "--endpoint",
                &endpoint,
                "--secret-stdin",
            ],
            Some(SECRET),
        )
        .await
        .ok();
    let created = out.json();
    let text = created.to_string();
    assert!(
        !text.contains(SECRET),
        "create must not return the secret: {text}"
    );
    let id = created["aiLlmId"]
        .as_str()
        .or(created["id"].as_str())
        .expect("id")
        .to_string();

    // Duplicate name: ALREADY_EXISTS.
    ctl.run_stdin(
        &[
            "llm",
            "create",
            "--workspace",
            "default",
            "--name",
            "Prod OpenAI",
            "--type",
            "openai",
            "--endpoint",
            &endpoint,
            "--secret-stdin",
        ],
        Some(SECRET),
    )
    .await
    .fails_with("already exists");

    // A bad endpoint names the field.
    ctl.run_stdin(
        &[
            "llm",
            "create",
            "--workspace",
            "default",
            "--name",
            "bad",
            "--type",
            "openai",
            "--endpoint",
            "ftp://example.com",
            "--secret-stdin",
        ],
        Some(SECRET),
    )
    .await
    .fails_with("endpoint");
    // Cloud metadata addresses are refused.
    ctl.run_stdin(
        &[
            "llm",
            "create",
            "--workspace",
            "default",
            "--name",
            "meta",
            "--type",
            "openai",
            "--endpoint",
            "http://169.254.169.254/v1",
            "--secret-stdin",
        ],
        Some(SECRET),
    )
    .await
    .fails_with("endpoint");

    // Get by name shows the proto3 JSON mapping and only a hint of the secret.
    let got = ctl
        .run(&["-o", "json", "llm", "get", "Prod OpenAI"])
        .await
        .ok()
        .json();
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["aiType"], "OPENAI");
    assert_eq!(got["routingId"], "prod-openai");
    assert_eq!(got["secretSet"], true);
    assert_eq!(got["secretHint"], "…1234");
    assert!(!got.to_string().contains(SECRET));

    // Validate: a real call to the provider, which discovers its models.
    let v = ctl
        .run(&["-o", "json", "llm", "validate", &id])
        .await
        .ok()
        .json();
    assert_eq!(v["success"], true, "{v}");
    let seen = mock.seen();
    let call = seen
        .iter()
        .find(|s| s.path == "/v1/models")
        .expect("provider was called");
    assert!(
        call.headers
            .iter()
            .any(|(k, val)| k == "authorization" && val == &format!("Bearer {SECRET}"))
    );
    let got = ctl
        .run(&["-o", "json", "llm", "get", &id])
        .await
        .ok()
        .json();
    assert_eq!(
        got["discoveredModels"],
        serde_json::json!(["gpt-4o-mini", "text-embedding-3-small"])
    );
    assert_eq!(got["validationSuccess"], true);
    let available = ctl
        .run(&["-o", "json", "llm", "available"])
        .await
        .ok()
        .json();
    assert!(
        available
            .as_array()
            .is_some_and(|a| a.iter().any(|l| l["id"] == id.as_str()))
    );

    // Partial update through the SDK with a stale version: ABORTED.
    let client = cp.client().await;
    let version: i64 = got["version"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("version");
    let err = client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: id.clone(),
            models: Some(proto::StringList {
                values: vec!["gpt-4o-mini".into()],
            }),
            expected_version: version - 1,
            ..Default::default()
        })
        .await
        .expect_err("stale version must be refused");
    assert_eq!(err.code(), Some(tonic::Code::Aborted), "{err:?}");
    let updated = client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: id.clone(),
            models: Some(proto::StringList {
                values: vec!["gpt-4o-mini".into()],
            }),
            expected_version: version,
            ..Default::default()
        })
        .await
        .expect("update at the current version")
        .ai_llm
        .expect("ai_llm");
    assert_eq!(updated.models, ["gpt-4o-mini"]);
    assert_eq!(updated.endpoint, endpoint, "fields not named stay");
    assert!(updated.version > version);
    // The same update again changes nothing, not even the version.
    let again = client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: id.clone(),
            models: Some(proto::StringList {
                values: vec!["gpt-4o-mini".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("no-op update")
        .ai_llm
        .expect("ai_llm");
    assert_eq!(again.version, updated.version);

    // A wrong secret: validation answers OK with success=false and the provider's reason,
    // without echoing the secret back.
    let wrong = "sk-wrong-secret-ZZZZ9999";
    ctl.run_stdin(&["llm", "update", &id, "--secret-stdin"], Some(wrong))
        .await
        .ok();
    // The check ran: the RPC (and tollgatectl) succeed, and the result says it failed.
    let v = ctl
        .run(&["-o", "json", "llm", "validate", &id])
        .await
        .ok()
        .json();
    assert_eq!(v["success"], false, "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("401") || msg.to_lowercase().contains("incorrect api key"),
        "{msg}"
    );
    assert!(
        !msg.contains(wrong),
        "the provider's echo of the key must be scrubbed: {msg}"
    );
    let available = ctl
        .run(&["-o", "json", "llm", "available"])
        .await
        .ok()
        .json();
    assert!(
        !available
            .as_array()
            .is_some_and(|a| a.iter().any(|l| l["id"] == id.as_str()))
    );

    // Repositories: attach, then delete is refused naming the repository.
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
    ctl.run(&["repo", "attach", "chat-app", "Prod OpenAI"])
        .await
        .ok();
    let got = ctl
        .run(&["-o", "json", "llm", "get", &id])
        .await
        .ok()
        .json();
    assert_eq!(got["repos"][0]["name"], "chat-app");
    ctl.run(&["llm", "delete", &id])
        .await
        .fails_with("chat-app");

    // Keys: the secret is shown once, stored hashed, revoke keeps the record.
    let key = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "chat-app", "--name", "web",
        ])
        .await
        .ok()
        .json();
    let key_secret = key["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    assert!(
        key_secret.starts_with("tg_") && key_secret.len() >= 46,
        "{key_secret}"
    );
    let key_id = key["apiKey"]["id"]
        .as_str()
        .or(key["id"].as_str())
        .expect("key id")
        .to_string();
    let list = ctl
        .run(&["-o", "json", "key", "list", "--repo", "chat-app"])
        .await
        .ok();
    assert!(!list.stdout.contains(&key_secret));
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    // By name within --repo, as by id. An active key's name is its repository's alone.
    ctl.run(&["key", "rename", "web", "website", "--repo", "chat-app"])
        .await
        .ok();
    ctl.run(&["key", "create", "--repo", "chat-app", "--name", "batch"])
        .await
        .ok();
    ctl.run(&["key", "create", "--repo", "chat-app", "--name", "batch"])
        .await
        .fails_with("already has an active API key named 'batch'");
    ctl.run(&["key", "rename", "batch", "website", "--repo", "chat-app"])
        .await
        .fails_with("already has an active API key named 'website'");
    ctl.run(&["key", "revoke", "nope", "--repo", "chat-app"])
        .await
        .fails_with("no active key with the id or name 'nope'");
    ctl.run(&["key", "revoke", "batch", "--repo", "chat-app"])
        .await
        .ok();
    // A revoked key's name is free again.
    ctl.run(&["key", "create", "--repo", "chat-app", "--name", "batch"])
        .await
        .ok();
    ctl.run(&["key", "revoke", "batch", "--repo", "chat-app"])
        .await
        .ok();
    // So is an expired key's; by name, the live key is meant.
    let mut soon = tollgate_sdk::parse_time("2000-01-01T00:00:00Z").expect("time");
    soon.seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        + 1;
    let expiring = client
        .create_api_key(proto::CreateApiKeyRequest {
            repository_id: "chat-app".into(),
            name: "nightly".into(),
            expires_at: Some(soon),
            ..Default::default()
        })
        .await
        .expect("create expiring key")
        .api_key
        .expect("key");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let live = ctl
        .run(&[
            "-o", "json", "key", "create", "--repo", "chat-app", "--name", "nightly",
        ])
        .await
        .ok()
        .json();
    let revoked = ctl
        .run(&[
            "-o", "json", "key", "revoke", "nightly", "--repo", "chat-app",
        ])
        .await
        .ok()
        .json();
    assert_eq!(revoked["id"], live["apiKey"]["id"], "{revoked}");
    ctl.run(&["key", "revoke", &expiring.id]).await.ok();
    ctl.run(&["key", "revoke", "website", "--repo", "chat-app"])
        .await
        .ok();
    let list = ctl
        .run(&["-o", "json", "key", "list", "--repo", "chat-app"])
        .await
        .ok()
        .json();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "revoked keys leave the active list"
    );
    let all = client
        .list_api_keys(proto::ListApiKeysRequest {
            repository_id: "chat-app".into(),
            include_revoked: true,
            ..Default::default()
        })
        .await
        .expect("list with revoked");
    // website, two batch keys and two nightly keys.
    assert_eq!(all.api_keys.len(), 5);
    let website = all
        .api_keys
        .iter()
        .find(|k| k.id == key_id)
        .expect("the renamed key");
    assert_eq!(website.name, "website");
    assert!(all.api_keys.iter().all(|k| k.revoked_at.is_some()));

    // Admin tokens are revoked by name too.
    ctl.run(&[
        "token",
        "create",
        "--name",
        "ci-bot",
        "--workspace",
        "default",
        "--role",
        "read",
    ])
    .await
    .ok();
    ctl.run(&["token", "revoke", "ci-bot"]).await.ok();
    let tokens = ctl.run(&["-o", "json", "token", "list"]).await.ok().json();
    let bot = tokens
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "ci-bot"))
        .expect("listed");
    assert!(bot.get("revokedAt").is_some(), "{bot}");
    ctl.run(&["token", "revoke", "ci-bot"])
        .await
        .fails_with("no active admin token with the id or name 'ci-bot'");

    // Detach, then delete works and the name is free again.
    ctl.run(&["repo", "detach", "chat-app", &id]).await.ok();
    ctl.run(&["llm", "delete", "Prod OpenAI"]).await.ok();
    ctl.run(&["llm", "get", &id])
        .await
        .fails_with("no AI LLM configuration");

    // Stats exist for every configuration, zero until traffic flows.
    let stats = client
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest::default())
        .await
        .expect("stats");
    assert!(stats.stats.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_lifecycle_embedded() {
    llm_lifecycle(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_lifecycle_etcd() {
    llm_lifecycle(Backend::Etcd).await;
}

/// Each provider type is validated with its own call and auth headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_per_provider_type() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    let client = cp.client().await;
    let cases = [
        (
            proto::AiType::Anthropic,
            mock.url(),
            vec!["claude-sonnet-4-20250514"],
        ),
        (
            proto::AiType::Google,
            mock.url(),
            vec!["gemini-2.0-flash", "text-embedding-004"],
        ),
        (
            proto::AiType::Other,
            format!("{}/v1", mock.url()),
            vec!["gpt-4o-mini", "text-embedding-3-small"],
        ),
    ];
    for (i, (ai_type, endpoint, models)) in cases.into_iter().enumerate() {
        let created = client
            .create_ai_llm(proto::CreateAiLlmRequest {
                workspace_id: "default".into(),
                name: format!("p{i}"),
                ai_type: ai_type as i32,
                endpoint,
                secret: SECRET.into(),
                ..Default::default()
            })
            .await
            .expect("create");
        let v = client
            .validate_ai_llm(proto::ValidateAiLlmRequest {
                id: created.ai_llm_id,
                ..Default::default()
            })
            .await
            .expect("validate answers OK");
        assert!(v.success, "{ai_type:?}: {}", v.message);
        assert_eq!(v.discovered_models, models, "{ai_type:?}");
    }
    let seen = mock.seen();
    assert!(
        seen.iter()
            .any(|s| s.path == "/v1/models"
                && s.headers.iter().any(|(k, _)| k == "anthropic-version"))
    );
    assert!(seen.iter().any(|s| {
        s.path == "/v1beta/models"
            && s.headers
                .iter()
                .any(|(k, v)| k == "x-goog-api-key" && v == SECRET)
    }));

    // AWS without an endpoint defaults to the region's Bedrock runtime.
    let aws = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "bedrock-default".into(),
            ai_type: proto::AiType::Aws as i32,
            key: "AKIAEXAMPLE".into(),
            secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("create aws");
    let llm = aws.ai_llm.expect("llm");
    assert_eq!(llm.region, "us-east-1");
    assert_eq!(
        llm.endpoint,
        "https://bedrock-runtime.us-east-1.amazonaws.com"
    );
    // Validation signs an empty Converse call, which the mock's Bedrock checks and refuses
    // as Bedrock does (ValidationException): the credentials work.
    let aws = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "bedrock".into(),
            ai_type: proto::AiType::Aws as i32,
            endpoint: mock.url(),
            key: tollgate_tests::mock_bedrock::AWS_ACCESS_KEY_ID.into(),
            region: tollgate_tests::mock_bedrock::AWS_REGION.into(),
            secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("create aws");
    let v = client
        .validate_ai_llm(proto::ValidateAiLlmRequest {
            id: aws.ai_llm.expect("llm").id,
            ..Default::default()
        })
        .await
        .expect("validate");
    assert!(
        v.success && v.message.contains("AWS accepted the credentials"),
        "{}",
        v.message
    );
    // A provider that is down gives success=false.
    let down = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "down".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: format!("http://127.0.0.1:{}/v1", tollgate_tests::free_port()),
            secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let v = client
        .validate_ai_llm(proto::ValidateAiLlmRequest {
            id: down.ai_llm_id,
            ..Default::default()
        })
        .await
        .expect("validation failures are not RPC errors");
    assert!(!v.success);
    assert!(!v.message.is_empty());
}

/// gRPC health and reflection are served, so generic tools work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let cp = ControlPlane::start(Backend::Embedded).await;
    let channel = tonic::transport::Endpoint::from_shared(cp.admin_addr.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tollgate.admin.v1.AiLlmService".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let resp = stream.next().await.expect("one answer").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for svc in [
        "AiLlmService",
        "WorkspaceService",
        "RepositoryService",
        "ApiKeyService",
        "PolicyService",
        "AdminTokenService",
        "StatsService",
    ] {
        assert!(
            names.contains(&format!("tollgate.admin.v1.{svc}").as_str()),
            "{names:?}"
        );
    }
}

/// A stored secret never follows a connection to another host unless given again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_an_endpoint_needs_the_secret_again() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let client = cp.client().await;
    let id = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "o".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: "http://127.0.0.1:9/v1".into(),
            secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .ai_llm_id;
    let moved = |secret: Option<&str>| proto::UpdateAiLlmRequest {
        id: id.clone(),
        endpoint: Some("http://127.0.0.2:9/v1".into()),
        secret: secret.map(str::to_string),
        ..Default::default()
    };
    let err = client
        .update_ai_llm(moved(None))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("secret"), "{err}");
    // Same origin, other path: fine without the secret.
    client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: id.clone(),
            endpoint: Some("http://127.0.0.1:9/openai/v1".into()),
            ..Default::default()
        })
        .await
        .expect("same host");
    client
        .update_ai_llm(moved(Some(SECRET)))
        .await
        .expect("with the secret again");
}

/// Deleting a repository with more keys than one store transaction holds still works, and
/// keeps every key as revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_repository_with_many_keys() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let client = cp.client().await;
    client
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "default".into(),
            name: "big".into(),
        })
        .await
        .expect("repo");
    let repo_id = client
        .get_repository(proto::GetRepositoryRequest {
            id: "big".into(),
            ..Default::default()
        })
        .await
        .expect("get")
        .id;
    for i in 0..140 {
        client
            .create_api_key(proto::CreateApiKeyRequest {
                repository_id: "big".into(),
                name: format!("k{i}"),
                ..Default::default()
            })
            .await
            .expect("key");
    }
    client
        .delete_repository(proto::DeleteRepositoryRequest {
            id: "big".into(),
            ..Default::default()
        })
        .await
        .expect("delete with 140 keys");
    let err = client
        .get_repository(proto::GetRepositoryRequest {
            id: repo_id,
            ..Default::default()
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Some(tonic::Code::NotFound));
    // The workspace can now be emptied and deleted: no active key is left behind.
    client
        .create_workspace(proto::CreateWorkspaceRequest { name: "tmp".into() })
        .await
        .expect("ws");
    client
        .delete_workspace(proto::DeleteWorkspaceRequest { id: "tmp".into() })
        .await
        .expect("empty workspace deletes");
}

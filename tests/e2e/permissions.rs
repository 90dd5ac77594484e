//! Every RPC's permission: org roles, workspace roles, cross-workspace denial, list filtering.

use tollgate_sdk::{Client, proto};
use tollgate_tests::{Backend, ControlPlane};
use tonic::Code;

/// Asserts the outcome of one call: `Ok` or the given code.
macro_rules! expect {
    ($what:expr, $call:expr, ok) => {
        match $call.await {
            Ok(v) => v,
            Err(e) => panic!("{}: expected OK, got {:?}", $what, e),
        }
    };
    ($what:expr, $call:expr, $code:expr) => {
        match $call.await {
            Ok(_) => panic!("{}: expected {:?}, got OK", $what, $code),
            Err(e) => assert_eq!(e.code(), Some($code), "{}: {}", $what, e),
        }
    };
}

async fn token(owner: &Client, name: &str, ws: &str, role: proto::Role) -> String {
    owner
        .create_admin_token(proto::CreateAdminTokenRequest {
            name: name.into(),
            roles: vec![proto::RoleBinding {
                workspace_id: ws.into(),
                role: role as i32,
            }],
        })
        .await
        .expect("create token")
        .secret
}

fn llm(ws: &str, name: &str) -> proto::CreateAiLlmRequest {
    proto::CreateAiLlmRequest {
        workspace_id: ws.into(),
        name: name.into(),
        ai_type: proto::AiType::Openai as i32,
        endpoint: "http://127.0.0.1:9/v1".into(),
        secret: "sk-permission-test-secret".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_matrix() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let owner = cp.client().await;
    for ws in ["w1", "w2"] {
        owner
            .create_workspace(proto::CreateWorkspaceRequest { name: ws.into() })
            .await
            .expect("workspace");
    }
    let l2 = owner
        .create_ai_llm(llm("w2", "l2"))
        .await
        .expect("l2")
        .ai_llm_id;
    owner
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "w2".into(),
            name: "r2".into(),
        })
        .await
        .expect("r2");

    let read = cp
        .client_with(&token(&owner, "w1-read", "w1", proto::Role::Read).await)
        .await;
    let write = cp
        .client_with(&token(&owner, "w1-write", "w1", proto::Role::Write).await)
        .await;
    let ws_admin = cp
        .client_with(&token(&owner, "w1-admin", "w1", proto::Role::Admin).await)
        .await;
    let org_admin = cp
        .client_with(&token(&owner, "org-admin", "", proto::Role::Admin).await)
        .await;

    // Workspaces.
    expect!(
        "ws admin creates a workspace",
        ws_admin.create_workspace(proto::CreateWorkspaceRequest { name: "x".into() }),
        Code::PermissionDenied
    );
    expect!(
        "org admin creates a workspace",
        org_admin.create_workspace(proto::CreateWorkspaceRequest { name: "w3".into() }),
        ok
    );
    let seen = expect!(
        "read lists workspaces",
        read.list_workspaces(proto::ListWorkspacesRequest {}),
        ok
    );
    assert_eq!(
        seen.workspaces
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["w1"]
    );
    expect!(
        "read gets another workspace",
        read.get_workspace(proto::GetWorkspaceRequest { id: "w2".into() }),
        Code::PermissionDenied
    );
    expect!(
        "ws admin deletes its workspace",
        ws_admin.delete_workspace(proto::DeleteWorkspaceRequest { id: "w1".into() }),
        Code::PermissionDenied
    );
    expect!(
        "org admin deletes an empty workspace",
        org_admin.delete_workspace(proto::DeleteWorkspaceRequest { id: "w3".into() }),
        ok
    );
    expect!(
        "owner deletes a workspace in use",
        owner.delete_workspace(proto::DeleteWorkspaceRequest { id: "w2".into() }),
        Code::FailedPrecondition
    );

    // AI LLM configurations.
    expect!(
        "read creates",
        read.create_ai_llm(llm("w1", "l1")),
        Code::PermissionDenied
    );
    expect!(
        "write creates in another workspace",
        write.create_ai_llm(llm("w2", "lx")),
        Code::PermissionDenied
    );
    let l1 = expect!("write creates", write.create_ai_llm(llm("w1", "l1")), ok).ai_llm_id;
    let listed = expect!(
        "read lists",
        read.list_ai_llms(proto::ListAiLlmsRequest::default()),
        ok
    );
    assert_eq!(
        listed
            .ai_llms
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["l1"],
        "cross-workspace configurations are left out"
    );
    expect!(
        "read lists another workspace",
        read.list_ai_llms(proto::ListAiLlmsRequest {
            workspace_id: "w2".into()
        }),
        Code::PermissionDenied
    );
    expect!(
        "read lists available",
        read.list_available_ai_llms(proto::ListAvailableAiLlmsRequest::default()),
        ok
    );
    expect!(
        "read gets",
        read.get_ai_llm(proto::GetAiLlmRequest {
            id: l1.clone(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "ws admin gets another workspace's by id",
        ws_admin.get_ai_llm(proto::GetAiLlmRequest {
            id: l2.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    expect!(
        "ws admin gets another workspace's by name",
        ws_admin.get_ai_llm(proto::GetAiLlmRequest {
            id: "l2".into(),
            ..Default::default()
        }),
        Code::NotFound
    );
    let upd = |id: &str| proto::UpdateAiLlmRequest {
        id: id.into(),
        models: Some(proto::StringList {
            values: vec!["m".into()],
        }),
        ..Default::default()
    };
    expect!(
        "read updates",
        read.update_ai_llm(upd(&l1)),
        Code::PermissionDenied
    );
    expect!("write updates", write.update_ai_llm(upd(&l1)), ok);
    expect!(
        "write updates another workspace's",
        write.update_ai_llm(upd(&l2)),
        Code::PermissionDenied
    );
    expect!(
        "read validates",
        read.validate_ai_llm(proto::ValidateAiLlmRequest {
            id: l1.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    expect!(
        "write validates",
        write.validate_ai_llm(proto::ValidateAiLlmRequest {
            id: l1.clone(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read reads stats",
        read.get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: l1.clone(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read reads another workspace's stats",
        read.get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: l2.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    let all_stats = expect!(
        "read reads all stats",
        read.get_ai_llm_stats(proto::GetAiLlmStatsRequest::default()),
        ok
    );
    assert_eq!(all_stats.stats.len(), 1);

    // Repositories.
    expect!(
        "read creates a repository",
        read.create_repository(proto::CreateRepositoryRequest {
            workspace_id: "w1".into(),
            name: "r1".into()
        }),
        Code::PermissionDenied
    );
    expect!(
        "write creates a repository",
        write.create_repository(proto::CreateRepositoryRequest {
            workspace_id: "w1".into(),
            name: "r1".into()
        }),
        ok
    );
    expect!(
        "read lists repositories",
        read.list_repositories(proto::ListRepositoriesRequest::default()),
        ok
    );
    expect!(
        "read gets a repository",
        read.get_repository(proto::GetRepositoryRequest {
            id: "r1".into(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read gets another workspace's repository",
        read.get_repository(proto::GetRepositoryRequest {
            id: "r2".into(),
            ..Default::default()
        }),
        Code::NotFound
    );
    let att = |llm: &str| proto::AttachAiLlmRequest {
        repository_id: "r1".into(),
        ai_llm_id: llm.into(),
        ..Default::default()
    };
    expect!(
        "read attaches",
        read.attach_ai_llm(att(&l1)),
        Code::PermissionDenied
    );
    expect!("write attaches", write.attach_ai_llm(att(&l1)), ok);
    expect!(
        "write attaches another workspace's configuration",
        write.attach_ai_llm(att(&l2)),
        Code::PermissionDenied
    );
    expect!(
        "read detaches",
        read.detach_ai_llm(proto::DetachAiLlmRequest {
            repository_id: "r1".into(),
            ai_llm_id: l1.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    let route = proto::SetRouteRequest {
        repository_id: "r1".into(),
        route: Some(proto::Route {
            name: "smart".into(),
            strategy: proto::RouteStrategy::Fallback as i32,
            targets: vec![proto::RouteTarget {
                target: "l1/m".into(),
                weight: 1,
                timeout_ms: 0,
            }],
            retries: Some(2),
        }),
        ..Default::default()
    };
    expect!(
        "read sets a route",
        read.set_route(route.clone()),
        Code::PermissionDenied
    );
    expect!("write sets a route", write.set_route(route), ok);
    expect!(
        "read deletes a route",
        read.delete_route(proto::DeleteRouteRequest {
            repository_id: "r1".into(),
            name: "smart".into(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    expect!(
        "write deletes a route",
        write.delete_route(proto::DeleteRouteRequest {
            repository_id: "r1".into(),
            name: "smart".into(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "write deletes an attached configuration",
        write.delete_ai_llm(proto::DeleteAiLlmRequest {
            id: l1.clone(),
            ..Default::default()
        }),
        Code::FailedPrecondition
    );
    expect!(
        "read deletes",
        read.delete_ai_llm(proto::DeleteAiLlmRequest {
            id: l1.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );

    // API keys.
    let key = |repo: &str| proto::CreateApiKeyRequest {
        repository_id: repo.into(),
        name: "k".into(),
        ..Default::default()
    };
    expect!(
        "read creates a key",
        read.create_api_key(key("r1")),
        Code::PermissionDenied
    );
    let k = expect!("write creates a key", write.create_api_key(key("r1")), ok);
    let key_id = k.api_key.expect("key").id;
    expect!(
        "read lists keys",
        read.list_api_keys(proto::ListApiKeysRequest {
            repository_id: "r1".into(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read renames a key",
        read.rename_api_key(proto::RenameApiKeyRequest {
            id: key_id.clone(),
            name: "n".into()
        }),
        Code::PermissionDenied
    );
    expect!(
        "read revokes a key",
        read.revoke_api_key(proto::RevokeApiKeyRequest { id: key_id.clone() }),
        Code::PermissionDenied
    );
    let other_key = owner
        .create_api_key(key("r2"))
        .await
        .expect("r2 key")
        .api_key
        .expect("key")
        .id;
    expect!(
        "ws admin revokes another workspace's key",
        ws_admin.revoke_api_key(proto::RevokeApiKeyRequest { id: other_key }),
        Code::PermissionDenied
    );
    expect!(
        "write revokes a key",
        write.revoke_api_key(proto::RevokeApiKeyRequest { id: key_id }),
        ok
    );
    expect!(
        "read deletes a repository",
        read.delete_repository(proto::DeleteRepositoryRequest {
            id: "r1".into(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );

    // Policies.
    let pol = |ws: &str, name: &str| proto::CreatePolicyRequest {
        workspace_id: ws.into(),
        name: name.into(),
        content: "Never send customer personal data to a model.".into(),
        risk_type: proto::RiskType::High as i32,
        action: proto::PolicyAction::Block as i32,
        ..Default::default()
    };
    expect!(
        "ws admin creates an org policy",
        ws_admin.create_policy(pol("", "org-p")),
        Code::PermissionDenied
    );
    let org_p = expect!(
        "org admin creates an org policy",
        org_admin.create_policy(pol("", "org-p")),
        ok
    )
    .id;
    expect!(
        "read creates a policy",
        read.create_policy(pol("w1", "p1")),
        Code::PermissionDenied
    );
    let p1 = expect!(
        "write creates a policy",
        write.create_policy(pol("w1", "p1")),
        ok
    )
    .id;
    expect!(
        "write creates in another workspace",
        write.create_policy(pol("w2", "p2")),
        Code::PermissionDenied
    );
    let listed = expect!(
        "read lists policies",
        read.list_policies(proto::ListPoliciesRequest::default()),
        ok
    );
    assert_eq!(
        listed.policies.len(),
        2,
        "its workspace's and the organization's"
    );
    expect!(
        "read gets an org policy",
        read.get_policy(proto::GetPolicyRequest {
            id: org_p.clone(),
            ..Default::default()
        }),
        ok
    );
    let upd = |id: &str| proto::UpdatePolicyRequest {
        id: id.into(),
        enabled: Some(false),
        ..Default::default()
    };
    expect!(
        "write updates an org policy",
        write.update_policy(upd(&org_p)),
        Code::PermissionDenied
    );
    expect!(
        "read updates a policy",
        read.update_policy(upd(&p1)),
        Code::PermissionDenied
    );
    expect!("write updates a policy", write.update_policy(upd(&p1)), ok);
    let p1b = expect!(
        "write creates a second policy",
        write.create_policy(pol("w1", "p1b")),
        ok
    )
    .id;
    expect!(
        "a rename onto a name taken in the workspace",
        write.update_policy(proto::UpdatePolicyRequest {
            id: p1b.clone(),
            name: Some("p1".into()),
            ..Default::default()
        }),
        Code::AlreadyExists
    );
    expect!(
        "a rename onto a free name",
        write.update_policy(proto::UpdatePolicyRequest {
            id: p1b.clone(),
            name: Some("p1c".into()),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "write deletes the second policy",
        write.delete_policy(proto::DeletePolicyRequest {
            id: p1b,
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read deletes a policy",
        read.delete_policy(proto::DeletePolicyRequest {
            id: p1.clone(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );
    expect!(
        "write deletes a policy",
        write.delete_policy(proto::DeletePolicyRequest {
            id: p1,
            ..Default::default()
        }),
        ok
    );
    let v = expect!(
        "read lists violations",
        read.list_policy_violations(proto::ListPolicyViolationsRequest::default()),
        ok
    );
    assert!(v.violations.is_empty());
    expect!(
        "read lists alerts",
        read.list_alerts(proto::ListPolicyViolationsRequest::default()),
        ok
    );
    expect!(
        "take over 100",
        read.list_alerts(proto::ListPolicyViolationsRequest {
            take: 101,
            ..Default::default()
        }),
        Code::InvalidArgument
    );

    // Usage.
    expect!(
        "read gets usage",
        read.get_usage(proto::GetUsageRequest {
            workspace_id: "w1".into(),
            ..Default::default()
        }),
        ok
    );
    expect!(
        "read gets another workspace's usage",
        read.get_usage(proto::GetUsageRequest {
            workspace_id: "w2".into(),
            ..Default::default()
        }),
        Code::PermissionDenied
    );

    // Admin tokens: a token grants only what it holds.
    let grant = |ws: &str, role: proto::Role| proto::CreateAdminTokenRequest {
        name: "t".into(),
        roles: vec![proto::RoleBinding {
            workspace_id: ws.into(),
            role: role as i32,
        }],
    };
    expect!(
        "ws admin grants read on its workspace",
        ws_admin.create_admin_token(grant("w1", proto::Role::Read)),
        ok
    );
    expect!(
        "ws admin grants on another workspace",
        ws_admin.create_admin_token(grant("w2", proto::Role::Read)),
        Code::PermissionDenied
    );
    expect!(
        "ws admin grants org admin",
        ws_admin.create_admin_token(grant("", proto::Role::Admin)),
        Code::PermissionDenied
    );
    expect!(
        "write grants",
        write.create_admin_token(grant("w1", proto::Role::Read)),
        Code::PermissionDenied
    );
    expect!(
        "org admin grants owner",
        org_admin.create_admin_token(grant("", proto::Role::Owner)),
        Code::PermissionDenied
    );
    let second_owner = expect!(
        "owner grants owner",
        owner.create_admin_token(grant("", proto::Role::Owner)),
        ok
    );
    expect!(
        "workspace OWNER is invalid",
        owner.create_admin_token(grant("w1", proto::Role::Owner)),
        Code::InvalidArgument
    );
    let listed = expect!(
        "ws admin lists tokens",
        ws_admin.list_admin_tokens(proto::ListAdminTokensRequest {}),
        ok
    );
    assert!(
        listed
            .tokens
            .iter()
            .all(|t| t.roles.iter().all(|r| !r.workspace_id.is_empty())),
        "no org tokens shown to a workspace admin"
    );
    let all = expect!(
        "owner lists tokens",
        owner.list_admin_tokens(proto::ListAdminTokensRequest {}),
        ok
    );
    assert!(all.tokens.len() > listed.tokens.len());
    let me = expect!("who am i", read.who_am_i(proto::WhoAmIRequest {}), ok);
    assert_eq!(me.name, "w1-read");
    assert!(all.tokens.iter().all(|t| !t.hint.is_empty()));
    expect!(
        "ws admin revokes an org admin token",
        ws_admin.revoke_admin_token(proto::RevokeAdminTokenRequest {
            id: all
                .tokens
                .iter()
                .find(|t| t.name == "org-admin")
                .expect("org-admin")
                .id
                .clone()
        }),
        Code::PermissionDenied
    );
    expect!(
        "owner revokes the read token",
        owner.revoke_admin_token(proto::RevokeAdminTokenRequest { id: me.id }),
        ok
    );
    expect!(
        "a revoked token",
        read.who_am_i(proto::WhoAmIRequest {}),
        Code::Unauthenticated
    );
    // The organization keeps an owner: the last one cannot be revoked.
    let first_owner = expect!(
        "owner who am i",
        owner.who_am_i(proto::WhoAmIRequest {}),
        ok
    );
    expect!(
        "owner revokes the other owner",
        owner.revoke_admin_token(proto::RevokeAdminTokenRequest {
            id: second_owner.token.expect("token").id
        }),
        ok
    );
    expect!(
        "the last owner revokes itself",
        owner.revoke_admin_token(proto::RevokeAdminTokenRequest { id: first_owner.id }),
        Code::FailedPrecondition
    );
    expect!(
        "the last owner still works",
        owner.who_am_i(proto::WhoAmIRequest {}),
        ok
    );
    let nobody = cp.client_with("tgadm_not-a-real-token-000000000000").await;
    expect!(
        "an unknown token",
        nobody.list_workspaces(proto::ListWorkspacesRequest {}),
        Code::Unauthenticated
    );
}

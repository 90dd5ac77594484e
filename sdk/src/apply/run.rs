//! Executes a [`Plan`] against the control plane: workspaces, then their llms, repositories
//! (attachments and keys) and policies, then organization policies and admin tokens.

use std::collections::HashMap;

use super::credentials::LlmCredentials;
use super::spec::{LlmSpec, PolicySpec, RepositorySpec, TokenSpec, WorkspaceSpec};
use super::{ApplyError, Change, Outcome, Plan};
use crate::proto;
use crate::{Client, Secret};

/// Applies `plan`, calling `report` once per item as it is done.
pub async fn apply(
    client: &Client,
    plan: &Plan,
    report: &mut dyn FnMut(&Outcome),
) -> Result<(), ApplyError> {
    let mut workspaces = client
        .list_workspaces(proto::ListWorkspacesRequest {})
        .await?
        .workspaces;
    for (ws_spec, creds) in plan.file.workspaces.iter().zip(&plan.credentials) {
        let ws = match workspaces.iter().find(|w| w.name == ws_spec.name) {
            Some(ws) => {
                report(&Outcome::new(
                    "workspace",
                    ws_spec.name.clone(),
                    Change::Unchanged,
                ));
                ws.clone()
            }
            None => {
                let ws = client
                    .create_workspace(proto::CreateWorkspaceRequest {
                        name: ws_spec.name.clone(),
                    })
                    .await?;
                report(&Outcome::new(
                    "workspace",
                    ws_spec.name.clone(),
                    Change::Created,
                ));
                workspaces.push(ws.clone());
                ws
            }
        };
        apply_workspace(client, &ws, ws_spec, creds, report).await?;
    }
    apply_policies(
        client,
        None,
        &HashMap::new(),
        &HashMap::new(),
        &plan.file.policies,
        report,
    )
    .await?;
    apply_tokens(client, &plan.file.tokens, report).await
}

async fn apply_workspace(
    client: &Client,
    ws: &proto::Workspace,
    spec: &WorkspaceSpec,
    creds: &[LlmCredentials],
    report: &mut dyn FnMut(&Outcome),
) -> Result<(), ApplyError> {
    let mut llm_ids: HashMap<String, String> = HashMap::new();
    let existing = client
        .list_ai_llms(proto::ListAiLlmsRequest {
            workspace_id: ws.id.clone(),
        })
        .await?
        .ai_llms;
    for llm in &existing {
        llm_ids.insert(llm.name.clone(), llm.id.clone());
    }
    for (llm, cred) in spec.llms.iter().zip(creds) {
        let current = existing.iter().find(|l| l.name == llm.name);
        let (id, change) = apply_llm(client, ws, llm, cred, current).await?;
        report(&Outcome::new(
            "llm",
            format!("{}/{}", ws.name, llm.name),
            change,
        ));
        llm_ids.insert(llm.name.clone(), id);
    }

    let mut repo_ids: HashMap<String, String> = HashMap::new();
    let repos = client
        .list_repositories(proto::ListRepositoriesRequest {
            workspace_id: ws.id.clone(),
        })
        .await?
        .repositories;
    for r in &repos {
        repo_ids.insert(r.name.clone(), r.id.clone());
    }
    for repo in &spec.repositories {
        let current = repos.iter().find(|r| r.name == repo.name).cloned();
        let id = apply_repository(client, ws, repo, current, &llm_ids, report).await?;
        repo_ids.insert(repo.name.clone(), id);
    }
    apply_policies(
        client,
        Some(ws),
        &repo_ids,
        &llm_ids,
        &spec.policies,
        report,
    )
    .await
}

fn llm_mode(passthrough: bool) -> i32 {
    if passthrough {
        proto::CredentialMode::Passthrough as i32
    } else {
        proto::CredentialMode::Managed as i32
    }
}

async fn apply_llm(
    client: &Client,
    ws: &proto::Workspace,
    llm: &LlmSpec,
    cred: &LlmCredentials,
    current: Option<&proto::AiLlm>,
) -> Result<(String, Change), ApplyError> {
    let ai_type = proto::AiType::from(llm.ai_type) as i32;
    let secret = cred.secret.as_ref().map(|s| s.expose().to_string());
    let Some(current) = current else {
        let created = client
            .create_ai_llm(proto::CreateAiLlmRequest {
                workspace_id: ws.id.clone(),
                name: llm.name.clone(),
                ai_type,
                endpoint: llm.endpoint.clone().unwrap_or_default(),
                key: cred.key.clone().unwrap_or_default(),
                secret: secret.unwrap_or_default(),
                credential_mode: llm_mode(llm.passthrough),
                routing_id: llm.routing_id.clone().unwrap_or_default(),
                environments: llm.environments.clone().unwrap_or_default(),
                models: llm.models.clone().unwrap_or_default(),
                region: llm.region.clone().unwrap_or_default(),
            })
            .await?;
        return Ok((created.ai_llm_id, Change::Created));
    };
    // Everything the file says is sent; the server keeps the version when nothing changes.
    let list = |v: &Option<Vec<String>>| {
        v.as_ref().map(|values| proto::StringList {
            values: values.clone(),
        })
    };
    let updated = client
        .update_ai_llm(proto::UpdateAiLlmRequest {
            id: current.id.clone(),
            workspace_id: ws.id.clone(),
            name: None,
            ai_type,
            endpoint: llm.endpoint.clone(),
            key: cred.key.clone(),
            secret,
            credential_mode: llm_mode(llm.passthrough),
            routing_id: llm.routing_id.clone(),
            environments: list(&llm.environments),
            models: list(&llm.models),
            region: llm.region.clone(),
            update_mask: None,
            expected_version: current.version,
        })
        .await?;
    let change = match updated.ai_llm {
        Some(after) if after.version == current.version => Change::Unchanged,
        _ => Change::Updated,
    };
    Ok((current.id.clone(), change))
}

/// Brings `repo`'s attached configurations and routes to `spec`, saying each change in
/// `detail` as it is made.
async fn sync_repository(
    client: &Client,
    ws: &proto::Workspace,
    spec: &RepositorySpec,
    repo: &proto::Repository,
    llm_ids: &HashMap<String, String>,
    name: &str,
    detail: &mut Vec<String>,
) -> Result<(), ApplyError> {
    if let Some(wanted) = &spec.llms {
        let mut wanted_ids = Vec::new();
        for w in wanted {
            let id = llm_ids
                .get(w)
                .or_else(|| llm_ids.values().find(|id| *id == w))
                .ok_or_else(|| {
                    ApplyError::Invalid(format!(
                        "repository {name}: llm {w:?} is not in workspace {}",
                        ws.name
                    ))
                })?;
            wanted_ids.push(id.clone());
        }
        let names: HashMap<&String, &String> = llm_ids.iter().map(|(n, i)| (i, n)).collect();
        let label = |id: &String| names.get(id).map_or(id.clone(), |n| (*n).clone());
        for id in wanted_ids.iter().filter(|id| !repo.ai_llm_ids.contains(id)) {
            client
                .attach_ai_llm(proto::AttachAiLlmRequest {
                    repository_id: repo.id.clone(),
                    ai_llm_id: id.clone(),
                    workspace_id: ws.id.clone(),
                })
                .await?;
            detail.push(format!("attached {}", label(id)));
        }
        for id in repo.ai_llm_ids.iter().filter(|id| !wanted_ids.contains(id)) {
            client
                .detach_ai_llm(proto::DetachAiLlmRequest {
                    repository_id: repo.id.clone(),
                    ai_llm_id: id.clone(),
                    workspace_id: ws.id.clone(),
                })
                .await?;
            detail.push(format!("detached {}", label(id)));
        }
    }
    if let Some(routes) = &spec.routes {
        let wanted = routes
            .iter()
            .map(|r| {
                r.to_proto()
                    .map_err(|e| ApplyError::Invalid(format!("repository {name}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for route in &wanted {
            if !repo.routes.contains(route) {
                client
                    .set_route(proto::SetRouteRequest {
                        repository_id: repo.id.clone(),
                        workspace_id: ws.id.clone(),
                        route: Some(route.clone()),
                    })
                    .await?;
                detail.push(format!("route {} set", route.name));
            }
        }
        for route in repo
            .routes
            .iter()
            .filter(|r| !wanted.iter().any(|w| w.name == r.name))
        {
            client
                .delete_route(proto::DeleteRouteRequest {
                    repository_id: repo.id.clone(),
                    workspace_id: ws.id.clone(),
                    name: route.name.clone(),
                })
                .await?;
            detail.push(format!("route {} deleted", route.name));
        }
    }
    Ok(())
}

async fn apply_repository(
    client: &Client,
    ws: &proto::Workspace,
    spec: &RepositorySpec,
    current: Option<proto::Repository>,
    llm_ids: &HashMap<String, String>,
    report: &mut dyn FnMut(&Outcome),
) -> Result<String, ApplyError> {
    let name = format!("{}/{}", ws.name, spec.name);
    let (repo, mut change) = match current {
        Some(r) => (r, Change::Unchanged),
        None => {
            let r = client
                .create_repository(proto::CreateRepositoryRequest {
                    workspace_id: ws.id.clone(),
                    name: spec.name.clone(),
                })
                .await?;
            (r, Change::Created)
        }
    };
    let mut detail = Vec::new();
    // Reported even when a later step fails: what was done stays said.
    let synced = sync_repository(client, ws, spec, &repo, llm_ids, &name, &mut detail).await;
    if change == Change::Unchanged && !detail.is_empty() {
        change = Change::Updated;
    }
    let mut outcome = Outcome::new("repository", name.clone(), change);
    outcome.detail = (!detail.is_empty()).then(|| detail.join(", "));
    report(&outcome);
    synced?;

    if !spec.keys.is_empty() {
        let keys = client
            .list_api_keys(proto::ListApiKeysRequest {
                repository_id: repo.id.clone(),
                workspace_id: ws.id.clone(),
                include_revoked: false,
            })
            .await?
            .api_keys;
        for key in &spec.keys {
            let key_name = format!("{name}/{}", key.name);
            let active = keys
                .iter()
                .any(|k| k.name == key.name && k.revoked_at.is_none());
            if active {
                report(&Outcome::new("key", key_name, Change::Unchanged));
                continue;
            }
            let created = client
                .create_api_key(proto::CreateApiKeyRequest {
                    repository_id: repo.id.clone(),
                    workspace_id: ws.id.clone(),
                    name: key.name.clone(),
                    expires_at: key.expires_at,
                })
                .await?;
            let mut outcome = Outcome::new("key", key_name, Change::Created);
            outcome.secret = Some(Secret::new(created.secret));
            report(&outcome);
        }
    }
    Ok(repo.id)
}

async fn apply_policies(
    client: &Client,
    ws: Option<&proto::Workspace>,
    repo_ids: &HashMap<String, String>,
    llm_ids: &HashMap<String, String>,
    specs: &[PolicySpec],
    report: &mut dyn FnMut(&Outcome),
) -> Result<(), ApplyError> {
    let ws_id = ws.map(|w| w.id.clone()).unwrap_or_default();
    let mut cache: HashMap<String, Vec<proto::Policy>> = HashMap::new();
    for spec in specs {
        let repo_id = match &spec.repository {
            None => String::new(),
            Some(r) if ws.is_none() => {
                return Err(ApplyError::Invalid(format!(
                    "organization policy {}: repository {r:?} needs a workspace; move the policy under it",
                    spec.name
                )));
            }
            Some(r) => repo_ids
                .get(r)
                .or_else(|| repo_ids.values().find(|id| *id == r))
                .cloned()
                .ok_or_else(|| {
                    ApplyError::Invalid(format!(
                        "policy {}: repository {r:?} is not in workspace {}",
                        spec.name,
                        ws.map_or("", |w| w.name.as_str())
                    ))
                })?,
        };
        if !cache.contains_key(&repo_id) {
            let listed = client
                .list_policies(proto::ListPoliciesRequest {
                    workspace_id: ws_id.clone(),
                    repository_id: repo_id.clone(),
                })
                .await?
                .policies;
            cache.insert(repo_id.clone(), listed);
        }
        let current = cache.get(&repo_id).and_then(|ps| {
            ps.iter().find(|p| {
                // A repository id is unique on its own; the workspace id is checked only for
                // workspace and organization scope.
                p.name == spec.name
                    && p.repository_id == repo_id
                    && (!repo_id.is_empty() || p.workspace_id == ws_id)
            })
        });
        let name = match (ws, &spec.repository) {
            (None, _) => spec.name.clone(),
            (Some(w), None) => format!("{}/{}", w.name, spec.name),
            (Some(w), Some(r)) => format!("{}/{}/{}", w.name, r, spec.name),
        };
        let change = apply_policy(client, &ws_id, &repo_id, llm_ids, spec, current).await?;
        report(&Outcome::new("policy", name, change));
    }
    Ok(())
}

async fn apply_policy(
    client: &Client,
    ws_id: &str,
    repo_id: &str,
    llm_ids: &HashMap<String, String>,
    spec: &PolicySpec,
    current: Option<&proto::Policy>,
) -> Result<Change, ApplyError> {
    let risk = proto::RiskType::from(spec.risk) as i32;
    let action = proto::PolicyAction::from(spec.action) as i32;
    let mut rules = spec.rules.to_proto();
    // The control plane stores the judge by id: compare (and send) it as one.
    if let Some(id) = llm_ids.get(&rules.judge_ai_llm_id) {
        rules.judge_ai_llm_id = id.clone();
    }
    let Some(current) = current else {
        client
            .create_policy(proto::CreatePolicyRequest {
                workspace_id: ws_id.to_string(),
                repository_id: repo_id.to_string(),
                name: spec.name.clone(),
                content: spec.content.clone(),
                risk_type: risk,
                action,
                enabled: Some(spec.enabled),
                rules: Some(rules),
            })
            .await?;
        return Ok(Change::Created);
    };
    let same = current.content == spec.content
        && current.risk_type == risk
        && current.action == action
        && current.enabled == spec.enabled
        && current.rules.clone().unwrap_or_default() == rules;
    if same {
        return Ok(Change::Unchanged);
    }
    client
        .update_policy(proto::UpdatePolicyRequest {
            id: current.id.clone(),
            name: None,
            content: Some(spec.content.clone()),
            risk_type: risk,
            action,
            enabled: Some(spec.enabled),
            expected_version: current.version,
            rules: Some(rules),
            // By id: no name to disambiguate.
            workspace_id: String::new(),
        })
        .await?;
    Ok(Change::Updated)
}

fn wanted_roles(spec: &TokenSpec) -> Vec<proto::RoleBinding> {
    match (&spec.org_role, &spec.workspace, &spec.role) {
        (Some(r), _, _) => vec![proto::RoleBinding {
            workspace_id: String::new(),
            role: proto::Role::from(*r) as i32,
        }],
        (None, Some(ws), Some(r)) => vec![proto::RoleBinding {
            workspace_id: ws.clone(),
            role: proto::Role::from(*r) as i32,
        }],
        _ => Vec::new(),
    }
}

async fn apply_tokens(
    client: &Client,
    specs: &[TokenSpec],
    report: &mut dyn FnMut(&Outcome),
) -> Result<(), ApplyError> {
    if specs.is_empty() {
        return Ok(());
    }
    let tokens = client
        .list_admin_tokens(proto::ListAdminTokensRequest {})
        .await?
        .tokens;
    for spec in specs {
        let active = tokens
            .iter()
            .any(|t| t.name == spec.name && t.revoked_at.is_none());
        if active {
            // Roles of a token cannot change: revoke it and apply again to get new roles.
            report(&Outcome::new("token", spec.name.clone(), Change::Unchanged));
            continue;
        }
        let created = client
            .create_admin_token(proto::CreateAdminTokenRequest {
                name: spec.name.clone(),
                roles: wanted_roles(spec),
            })
            .await?;
        let mut outcome = Outcome::new("token", spec.name.clone(), Change::Created);
        outcome.secret = Some(Secret::new(created.secret));
        report(&outcome);
    }
    Ok(())
}

//! `RepositoryService`: repositories group configurations, routes and keys of a workspace.

use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::repository_service_server::RepositoryService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::Access;
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{self, AiLlm, ApiKey, Repository, now_ms};
use crate::store::Txn;

pub struct Service(pub Arc<Ctx>);

impl Ctx {
    pub fn repo_to_pb(&self, v: &Versioned<Repository>) -> pb::Repository {
        let r = &v.value;
        pb::Repository {
            id: r.id.clone(),
            org_id: self.org_id.clone(),
            workspace_id: r.workspace_id.clone(),
            name: r.name.clone(),
            ai_llm_ids: r.ai_llm_ids.clone(),
            routes: r
                .routes
                .iter()
                .map(|route| pb::Route {
                    name: route.name.clone(),
                    strategy: convert::strategy_to_pb(route.strategy) as i32,
                    targets: route
                        .targets
                        .iter()
                        .map(|t| pb::RouteTarget {
                            target: t.target.clone(),
                            weight: t.weight,
                            timeout_ms: t.timeout_ms,
                        })
                        .collect(),
                    retries: route.retries,
                })
                .collect(),
            created_at: convert::ts(r.created_at),
            updated_at: convert::ts(r.updated_at),
            version: v.revision,
        }
    }

    /// Revokes a repository's keys (they stay for the audit trail) and deletes it. Keys are
    /// revoked in batches that fit one store transaction; a key created meanwhile changes the
    /// repository's children marker, and the delete starts over.
    async fn delete_repo(&self, repo: &Repository) -> ApiResult<()> {
        const BATCH: usize = 100;
        let children = keys::children(&keys::repo(&repo.id));
        for _ in 0..3 {
            let children_rev = db::revision_of(self.store(), &children).await?;
            let Some(cur) = db::get::<Repository>(self.store(), &keys::repo(&repo.id)).await?
            else {
                return Ok(());
            };
            let now = now_ms();
            let active: Vec<_> = db::list::<ApiKey>(self.store(), keys::API_KEYS)
                .await?
                .into_iter()
                .filter(|k| k.value.repository_id == repo.id && k.value.revoked_at.is_none())
                .collect();
            for batch in active.chunks(BATCH) {
                let mut txn = Txn::new();
                for k in batch {
                    let mut key = k.value.clone();
                    key.revoked_at = Some(now);
                    txn = txn
                        .when(keys::api_key(&key.id), k.revision)
                        .put(keys::api_key(&key.id), db::encode(&key));
                }
                // A key changed meanwhile: the next round revokes what is still active.
                self.store().txn(txn).await?;
            }
            let txn = Txn::new()
                .when(keys::repo(&repo.id), cur.revision)
                .when(children.clone(), children_rev)
                .delete(keys::repo(&repo.id))
                .delete(keys::repo_name(&repo.workspace_id, &repo.name))
                .delete(children.clone());
            let still_active = db::list::<ApiKey>(self.store(), keys::API_KEYS)
                .await?
                .iter()
                .any(|k| k.value.repository_id == repo.id && k.value.revoked_at.is_none());
            if !still_active && self.store().txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(ApiError::Aborted(format!(
            "repository '{}' kept changing (keys created or configurations attached) while deleting it; retry",
            repo.name
        )))
    }

    /// After a failed create: the name is taken, or the parent changed (was deleted).
    pub async fn name_conflict(&self, name_key: &str, taken: &str) -> ApiError {
        match db::get_string(self.store(), name_key).await {
            Ok(Some(_)) => ApiError::AlreadyExists(taken.to_string()),
            Ok(None) => ApiError::Aborted(
                "the workspace changed at the same time (was it deleted?); retry".into(),
            ),
            Err(e) => e,
        }
    }

    /// The repository (which the caller must be able to change) and a configuration named
    /// in its workspace, for attach and detach.
    async fn repo_and_llm(
        &self,
        p: &crate::auth::Principal,
        repository: &str,
        workspace: &str,
        llm: &str,
    ) -> ApiResult<(Versioned<Repository>, Versioned<AiLlm>)> {
        let repo = self
            .resolve::<Repository>(p, "repository_id", repository, workspace, Access::Write)
            .await?;
        let llm = self
            .resolve::<AiLlm>(p, "ai_llm_id", llm, &repo.value.workspace_id, Access::Read)
            .await?;
        Ok((repo, llm))
    }

    /// Writes a changed repository if it is still at the version read.
    async fn save_repo(
        &self,
        cur: &Versioned<Repository>,
        mut repo: Repository,
        extra: Txn,
    ) -> ApiResult<pb::Repository> {
        if repo == cur.value {
            return Ok(self.repo_to_pb(cur));
        }
        repo.updated_at = now_ms();
        let mut txn = extra.when(keys::repo(&repo.id), cur.revision);
        txn = txn.put(keys::repo(&repo.id), db::encode(&repo));
        let revision = db::commit(
            self.store(),
            txn,
            format!(
                "repository '{}' (or what it refers to) changed at the same time; retry",
                repo.name
            ),
        )
        .await?;
        Ok(self.repo_to_pb(&Versioned {
            value: repo,
            revision,
        }))
    }
}

fn check_route(route: &pb::Route, attached: &[AiLlm]) -> ApiResult<model::Route> {
    let name = route.name.trim();
    if name.is_empty()
        || name.len() > 200
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid(
            "route.name",
            "a route name (the model alias apps send) is 1 to 200 characters without spaces",
        ));
    }
    let strategy = convert::strategy("route.strategy", route.strategy)?;
    if route.targets.is_empty() {
        return Err(ApiError::invalid(
            "route.targets",
            "a route needs at least one target",
        ));
    }
    if let Some(l) = attached
        .iter()
        .find(|l| model::route_name_hides(name, &l.routing_id))
    {
        return Err(ApiError::invalid(
            "route.name",
            format!(
                "route name '{name}' would hide the models of configuration '{}' (routing id '{}'); choose a name that does not start with '{}/'",
                l.name, l.routing_id, l.routing_id
            ),
        ));
    }
    let mut targets = Vec::new();
    for t in &route.targets {
        let Some((rid, model)) = t.target.split_once('/') else {
            return Err(ApiError::invalid(
                "route.targets",
                format!("target '{}' must be <routing_id>/<model>", t.target),
            ));
        };
        // Against what data planes get: the configuration's model list, or without one the
        // models its validation discovered.
        if let Some(l) = attached.iter().find(|l| l.routing_id == rid)
            && !model.is_empty()
            && !l.serves(model)
        {
            let served = l.served_models();
            return Err(ApiError::invalid(
                "route.targets",
                format!(
                    "target '{}': configuration '{}' does not expose model '{model}' (it exposes: {}); add it to its models first",
                    t.target,
                    l.name,
                    if served.is_empty() {
                        "none yet: list its models, or validate it to discover them".to_string()
                    } else {
                        served.join(", ")
                    }
                ),
            ));
        }
        if model.is_empty() || !attached.iter().any(|l| l.routing_id == rid) {
            return Err(ApiError::invalid(
                "route.targets",
                format!(
                    "target '{}' names routing id '{rid}', which no configuration attached to this repository has (attached: {})",
                    t.target,
                    attached
                        .iter()
                        .map(|l| l.routing_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        targets.push(model::RouteTarget {
            target: t.target.clone(),
            weight: if t.weight == 0 { 1 } else { t.weight },
            timeout_ms: t.timeout_ms,
        });
    }
    if route.retries.is_some_and(|r| r > 10) {
        return Err(ApiError::invalid("route.retries", "at most 10 retries"));
    }
    Ok(model::Route {
        name: name.to_string(),
        strategy,
        targets,
        retries: route.retries,
    })
}

#[tonic::async_trait]
impl RepositoryService for Service {
    async fn create_repository(
        &self,
        req: Request<pb::CreateRepositoryRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let ws = ctx.workspace(&p, &r.workspace_id, Access::Write).await?;
        let name = input::name("name", &r.name)?;
        let now = now_ms();
        let repo = Repository {
            id: new_id("repo"),
            workspace_id: ws.value.id.clone(),
            name: name.clone(),
            ai_llm_ids: vec![],
            routes: vec![],
            created_at: now,
            updated_at: now,
        };
        let name_key = keys::repo_name(&ws.value.id, &name);
        let txn = Txn::new()
            .when(keys::workspace(&ws.value.id), ws.revision)
            .when(name_key.clone(), 0)
            .put(name_key.clone(), repo.id.clone())
            .put(keys::repo(&repo.id), db::encode(&repo))
            .put(keys::children(&keys::workspace(&ws.value.id)), Vec::new());
        let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
        if !resp.succeeded {
            return Err(ctx
                .name_conflict(
                    &name_key,
                    &format!(
                        "a repository named '{name}' already exists in workspace '{}'",
                        ws.value.name
                    ),
                )
                .await
                .into());
        }
        Ok(Response::new(ctx.repo_to_pb(&Versioned {
            value: repo,
            revision: resp.revision,
        })))
    }

    async fn list_repositories(
        &self,
        req: Request<pb::ListRepositoriesRequest>,
    ) -> Result<Response<pb::ListRepositoriesResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let ws = &req.get_ref().workspace_id;
        let ws_filter = if ws.trim().is_empty() {
            None
        } else {
            Some(ctx.workspace(&p, ws, Access::Read).await?.value.id)
        };
        let mut repos: Vec<_> = db::list::<Repository>(ctx.store(), keys::REPOS)
            .await?
            .into_iter()
            .filter(|r| p.can(&r.value.workspace_id, Access::Read))
            .filter(|r| {
                ws_filter
                    .as_ref()
                    .is_none_or(|w| &r.value.workspace_id == w)
            })
            .collect();
        repos.sort_by(|a, b| a.value.name.cmp(&b.value.name));
        Ok(Response::new(pb::ListRepositoriesResponse {
            repositories: repos.iter().map(|r| ctx.repo_to_pb(r)).collect(),
        }))
    }

    async fn get_repository(
        &self,
        req: Request<pb::GetRepositoryRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let repo = ctx
            .resolve::<Repository>(&p, "id", &r.id, &r.workspace_id, Access::Read)
            .await?;
        Ok(Response::new(ctx.repo_to_pb(&repo)))
    }

    async fn delete_repository(
        &self,
        req: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .resolve::<Repository>(&p, "id", &r.id, &r.workspace_id, Access::Write)
            .await?;
        let repo = &cur.value;
        ctx.delete_repo(repo).await?;
        tracing::info!(repo = %repo.id, by = %p.name, "repository deleted");
        Ok(Response::new(pb::DeleteRepositoryResponse {
            success: true,
        }))
    }

    async fn attach_ai_llm(
        &self,
        req: Request<pb::AttachAiLlmRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let (cur, llm) = ctx
            .repo_and_llm(&p, &r.repository_id, &r.workspace_id, &r.ai_llm_id)
            .await?;
        if llm.value.workspace_id != cur.value.workspace_id {
            return Err(ApiError::invalid(
                "ai_llm_id",
                "a repository can only use configurations of its own workspace",
            )
            .into());
        }
        let mut repo = cur.value.clone();
        if let Some(route) = repo
            .routes
            .iter()
            .find(|r| model::route_name_hides(&r.name, &llm.value.routing_id))
        {
            return Err(ApiError::FailedPrecondition(format!(
                "route '{}' would hide the models of '{}' (routing id '{}'); rename the route first",
                route.name, llm.value.name, llm.value.routing_id
            ))
            .into());
        }
        if !repo.ai_llm_ids.contains(&llm.value.id) {
            repo.ai_llm_ids.push(llm.value.id.clone());
        }
        // The configuration must still exist when the attach lands, and a delete that raced
        // with it sees its children marker change.
        let extra = Txn::new()
            .when(keys::llm(&llm.value.id), llm.revision)
            .put(keys::children(&keys::llm(&llm.value.id)), Vec::new());
        Ok(Response::new(ctx.save_repo(&cur, repo, extra).await?))
    }

    async fn detach_ai_llm(
        &self,
        req: Request<pb::DetachAiLlmRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let (cur, llm) = ctx
            .repo_and_llm(&p, &r.repository_id, &r.workspace_id, &r.ai_llm_id)
            .await?;
        let mut repo = cur.value.clone();
        repo.ai_llm_ids.retain(|id| id != &llm.value.id);
        let rid = format!("{}/", llm.value.routing_id);
        if let Some(route) = repo
            .routes
            .iter()
            .find(|route| route.targets.iter().any(|t| t.target.starts_with(&rid)))
        {
            return Err(ApiError::FailedPrecondition(format!(
                "route '{}' sends traffic to '{}'; change or delete the route first",
                route.name, llm.value.routing_id
            ))
            .into());
        }
        Ok(Response::new(ctx.save_repo(&cur, repo, Txn::new()).await?))
    }

    async fn set_route(
        &self,
        req: Request<pb::SetRouteRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .resolve::<Repository>(
                &p,
                "repository_id",
                &r.repository_id,
                &r.workspace_id,
                Access::Write,
            )
            .await?;
        let route = r
            .route
            .as_ref()
            .ok_or_else(|| ApiError::invalid("route", "a route is required"))?;
        let mut attached = Vec::new();
        // The route is checked against the configurations as read: it lands only if none
        // changed meanwhile (a routing id or a model list).
        let mut unchanged = Txn::new();
        for id in &cur.value.ai_llm_ids {
            if let Some(l) = db::get::<AiLlm>(ctx.store(), &keys::llm(id)).await? {
                unchanged = unchanged.when(keys::llm(id), l.revision);
                attached.push(l.value);
            }
        }
        let route = check_route(route, &attached)?;
        let mut repo = cur.value.clone();
        match repo.routes.iter_mut().find(|x| x.name == route.name) {
            Some(existing) => *existing = route,
            None => repo.routes.push(route),
        }
        Ok(Response::new(ctx.save_repo(&cur, repo, unchanged).await?))
    }

    async fn delete_route(
        &self,
        req: Request<pb::DeleteRouteRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .resolve::<Repository>(
                &p,
                "repository_id",
                &r.repository_id,
                &r.workspace_id,
                Access::Write,
            )
            .await?;
        let mut repo = cur.value.clone();
        let before = repo.routes.len();
        repo.routes.retain(|x| x.name != r.name);
        if repo.routes.len() == before {
            return Err(ApiError::NotFound(format!(
                "repository '{}' has no route '{}'",
                repo.name, r.name
            ))
            .into());
        }
        Ok(Response::new(ctx.save_repo(&cur, repo, Txn::new()).await?))
    }
}

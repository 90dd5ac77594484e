//! `WorkspaceService`.

use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::workspace_service_server::WorkspaceService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::Access;
use crate::db;
use crate::error::ApiError;
use crate::keys;
use crate::model::{AiLlm, ApiKey, Policy, Repository, Workspace, now_ms};
use crate::store::Txn;

pub struct Service(pub Arc<Ctx>);

#[tonic::async_trait]
impl WorkspaceService for Service {
    async fn create_workspace(
        &self,
        req: Request<pb::CreateWorkspaceRequest>,
    ) -> Result<Response<pb::Workspace>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        p.require_org_admin("creating a workspace")?;
        let name = input::name("name", &req.get_ref().name)?;
        let ws = Workspace {
            id: new_id("ws"),
            name: name.clone(),
            created_at: now_ms(),
        };
        let txn = Txn::new()
            .when(keys::ws_name(&name), 0)
            .put(keys::ws_name(&name), ws.id.clone())
            .put(keys::workspace(&ws.id), db::encode(&ws));
        if !ctx
            .store()
            .txn(txn)
            .await
            .map_err(ApiError::from)?
            .succeeded
        {
            return Err(ApiError::AlreadyExists(format!(
                "a workspace named '{name}' already exists"
            ))
            .into());
        }
        Ok(Response::new(convert::workspace(&ws, &ctx.org_id)))
    }

    async fn list_workspaces(
        &self,
        req: Request<pb::ListWorkspacesRequest>,
    ) -> Result<Response<pb::ListWorkspacesResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let workspaces = ctx
            .workspaces()
            .await?
            .into_iter()
            .filter(|w| p.can(&w.value.id, Access::Read))
            .map(|w| convert::workspace(&w.value, &ctx.org_id))
            .collect();
        Ok(Response::new(pb::ListWorkspacesResponse { workspaces }))
    }

    async fn get_workspace(
        &self,
        req: Request<pb::GetWorkspaceRequest>,
    ) -> Result<Response<pb::Workspace>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let ws = ctx.workspace(&p, &req.get_ref().id, Access::Read).await?;
        Ok(Response::new(convert::workspace(&ws.value, &ctx.org_id)))
    }

    async fn delete_workspace(
        &self,
        req: Request<pb::DeleteWorkspaceRequest>,
    ) -> Result<Response<pb::DeleteWorkspaceResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        p.require_org_admin("deleting a workspace")?;
        let current = ctx.workspace(&p, &req.get_ref().id, Access::Admin).await?;
        let ws = &current.value;
        // Read before listing: any child created after this point changes it.
        let children = keys::children(&keys::workspace(&ws.id));
        let children_rev = db::revision_of(ctx.store(), &children).await?;
        let mut held = Vec::new();
        let llms = db::list::<AiLlm>(ctx.store(), keys::LLMS).await?;
        let n = llms
            .iter()
            .filter(|l| l.value.workspace_id == ws.id)
            .count();
        if n > 0 {
            held.push(format!("{n} AI LLM configuration(s)"));
        }
        let repos = db::list::<Repository>(ctx.store(), keys::REPOS).await?;
        let n = repos
            .iter()
            .filter(|r| r.value.workspace_id == ws.id)
            .count();
        if n > 0 {
            held.push(format!("{n} repositories"));
        }
        let policies = db::list::<Policy>(ctx.store(), keys::POLICIES).await?;
        let n = policies
            .iter()
            .filter(|x| x.value.workspace_id.as_deref() == Some(&ws.id))
            .count();
        if n > 0 {
            held.push(format!("{n} policies"));
        }
        let api_keys = db::list::<ApiKey>(ctx.store(), keys::API_KEYS).await?;
        let n = api_keys
            .iter()
            .filter(|k| k.value.workspace_id == ws.id && k.value.revoked_at.is_none())
            .count();
        if n > 0 {
            held.push(format!("{n} active API keys"));
        }
        if !held.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "workspace '{}' still holds {}; delete them first",
                ws.name,
                held.join(", ")
            ))
            .into());
        }
        let txn = Txn::new()
            .when(keys::workspace(&ws.id), current.revision)
            .when(children.clone(), children_rev)
            .delete(keys::workspace(&ws.id))
            .delete(keys::ws_name(&ws.name))
            .delete(children);
        db::commit(
            ctx.store(),
            txn,
            format!("workspace '{}' changed while deleting it; retry", ws.name),
        )
        .await?;
        Ok(Response::new(pb::DeleteWorkspaceResponse { success: true }))
    }
}

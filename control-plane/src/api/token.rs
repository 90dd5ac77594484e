//! `AdminTokenService`: who may administer what. A caller grants only what it holds itself.

use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::admin_token_service_server::AdminTokenService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::{self, Access, Principal};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{AdminToken, Role, RoleBinding, now_ms};
use crate::store::Txn;

pub struct Service(pub Arc<Ctx>);

fn to_pb(t: &AdminToken) -> pb::AdminToken {
    pb::AdminToken {
        id: t.id.clone(),
        name: t.name.clone(),
        roles: t
            .roles
            .iter()
            .map(|r| pb::RoleBinding {
                workspace_id: r.workspace_id.clone().unwrap_or_default(),
                role: convert::role_to_pb(r.role) as i32,
            })
            .collect(),
        created_at: convert::ts(t.created_at),
        revoked_at: convert::opt_ts(t.revoked_at),
        hint: t.hint.clone(),
    }
}

/// Holds the organization's OWNER role.
fn is_owner(t: &AdminToken) -> bool {
    t.roles
        .iter()
        .any(|b| b.workspace_id.is_none() && b.role == Role::Owner)
}

fn visible_to(p: &Principal, t: &AdminToken) -> bool {
    t.id == p.token_id || t.roles.iter().all(|b| p.may_grant(b))
}

/// Writes a new token record and its hash index.
pub async fn insert_token(
    ctx: &Ctx,
    name: &str,
    secret: &str,
    roles: Vec<RoleBinding>,
) -> ApiResult<AdminToken> {
    let hash = auth::hash_secret(secret);
    let token = AdminToken {
        id: new_id("tok"),
        name: name.to_string(),
        hash: hash.clone(),
        hint: auth::secret_hint(secret),
        roles,
        created_at: now_ms(),
        revoked_at: None,
    };
    let txn = Txn::new()
        .when(keys::token_hash(&hash), 0)
        .put(keys::token_hash(&hash), token.id.clone())
        .put(keys::token(&token.id), db::encode(&token));
    db::commit(ctx.store(), txn, "this token secret is already in use").await?;
    Ok(token)
}

#[tonic::async_trait]
impl AdminTokenService for Service {
    async fn create_admin_token(
        &self,
        req: Request<pb::CreateAdminTokenRequest>,
    ) -> Result<Response<pb::CreateAdminTokenResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let name = input::name("name", &r.name)?;
        if r.roles.is_empty() {
            return Err(ApiError::invalid(
                "roles",
                "a token needs at least one role (--org-role owner|admin, or --workspace W --role admin|write|read)",
            )
            .into());
        }
        let mut roles = Vec::new();
        for b in &r.roles {
            let role = convert::role("roles.role", b.role)?;
            let binding = if b.workspace_id.trim().is_empty() {
                if !matches!(role, Role::Owner | Role::Admin) {
                    return Err(ApiError::invalid(
                        "roles.role",
                        "organization roles are OWNER and ADMIN; WRITE and READ need a workspace",
                    )
                    .into());
                }
                RoleBinding {
                    workspace_id: None,
                    role,
                }
            } else {
                if role == Role::Owner {
                    return Err(ApiError::invalid(
                        "roles.role",
                        "workspace roles are ADMIN, WRITE and READ; OWNER is an organization role",
                    )
                    .into());
                }
                let ws = ctx.workspace(&p, &b.workspace_id, Access::Read).await?;
                RoleBinding {
                    workspace_id: Some(ws.value.id),
                    role,
                }
            };
            if !p.may_grant(&binding) {
                return Err(ApiError::PermissionDenied(format!(
                    "token '{}' cannot grant {:?} {}; a token grants only what it holds",
                    p.name,
                    binding.role,
                    binding
                        .workspace_id
                        .as_deref()
                        .map(|w| format!("on workspace {w}"))
                        .unwrap_or_else(|| "on the organization".into())
                ))
                .into());
            }
            if !roles.contains(&binding) {
                roles.push(binding);
            }
        }
        let secret = auth::new_secret("tgadm_");
        let token = insert_token(ctx, &name, &secret, roles).await?;
        tracing::info!(token = %token.id, by = %p.name, "admin token created");
        Ok(Response::new(pb::CreateAdminTokenResponse {
            token: Some(to_pb(&token)),
            secret,
        }))
    }

    async fn list_admin_tokens(
        &self,
        req: Request<pb::ListAdminTokensRequest>,
    ) -> Result<Response<pb::ListAdminTokensResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let mut tokens: Vec<AdminToken> = db::list::<AdminToken>(ctx.store(), keys::TOKENS)
            .await?
            .into_iter()
            .map(|t| t.value)
            .filter(|t| visible_to(&p, t))
            .collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(Response::new(pb::ListAdminTokensResponse {
            tokens: tokens.iter().map(to_pb).collect(),
        }))
    }

    async fn revoke_admin_token(
        &self,
        req: Request<pb::RevokeAdminTokenRequest>,
    ) -> Result<Response<pb::AdminToken>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let id = req.get_ref().id.trim();
        let cur = db::get::<AdminToken>(ctx.store(), &keys::token(id))
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no admin token with id '{id}'")))?;
        if !cur.value.roles.iter().all(|b| p.may_grant(b)) {
            return Err(ApiError::PermissionDenied(format!(
                "token '{}' cannot revoke token '{}': it holds roles this token cannot grant",
                p.name, cur.value.name
            ))
            .into());
        }
        if cur.value.revoked_at.is_some() {
            return Ok(Response::new(to_pb(&cur.value)));
        }
        let mut t = cur.value.clone();
        t.revoked_at = Some(now_ms());
        let mut txn = Txn::new()
            .when(keys::token(&t.id), cur.revision)
            .put(keys::token(&t.id), db::encode(&t));
        if is_owner(&t) {
            // The organization keeps an owner: nobody else could grant one again. The other
            // owners are compared too, so two owners revoking each other at once cannot
            // both succeed.
            let others: Vec<_> = db::list::<AdminToken>(ctx.store(), keys::TOKENS)
                .await?
                .into_iter()
                .filter(|o| {
                    o.value.id != t.id && o.value.revoked_at.is_none() && is_owner(&o.value)
                })
                .collect();
            if others.is_empty() {
                return Err(ApiError::FailedPrecondition(format!(
                    "token '{}' is the organization's last owner token: create another with `tollgatectl token create --org-role owner` before revoking it",
                    t.name
                ))
                .into());
            }
            for o in others {
                txn = txn.when(keys::token(&o.value.id), o.revision);
            }
        }
        db::commit(ctx.store(), txn, "the token changed meanwhile; retry").await?;
        tracing::info!(token = %t.id, by = %p.name, "admin token revoked");
        Ok(Response::new(to_pb(&t)))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::AdminToken>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let t = db::get::<AdminToken>(ctx.store(), &keys::token(&p.token_id))
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked admin token".into()))?;
        Ok(Response::new(to_pb(&t.value)))
    }
}

//! `ApiKeyService`: the keys apps send to the data plane. The secret is shown once; only its
//! SHA-256 is stored; revoking keeps the record for the audit trail.

use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::api_key_service_server::ApiKeyService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::{self, Access, Principal};
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{ApiKey, Repository, now_ms};
use crate::store::Txn;

pub struct Service(pub Arc<Ctx>);

fn to_pb(k: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.clone(),
        repository_id: k.repository_id.clone(),
        workspace_id: k.workspace_id.clone(),
        name: k.name.clone(),
        hint: k.hint.clone(),
        created_at: convert::ts(k.created_at),
        last_used_at: convert::opt_ts(k.last_used_at),
        expires_at: convert::opt_ts(k.expires_at),
        revoked_at: convert::opt_ts(k.revoked_at),
    }
}

impl Ctx {
    async fn api_key(&self, p: &Principal, id: &str, need: Access) -> ApiResult<Versioned<ApiKey>> {
        let id = id.trim();
        if id.is_empty() {
            return Err(ApiError::invalid("id", "the API key id is required"));
        }
        let k = db::get::<ApiKey>(self.store(), &keys::api_key(id))
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no API key with id '{id}'; `tollgatectl key list --repo R` shows them"
                ))
            })?;
        let ws = k.value.workspace_id.clone();
        p.require(&ws, &self.workspace_name(&ws).await, need)?;
        Ok(k)
    }

    /// When the data planes last reported use of this key.
    async fn last_used(&self, key_id: &str) -> ApiResult<Option<crate::model::Millis>> {
        Ok(self
            .store()
            .get(&keys::api_key_last_used(key_id))
            .await?
            .and_then(|kv| std::str::from_utf8(&kv.value).ok()?.parse::<i64>().ok())
            .map(|minute| minute * 60_000))
    }

    async fn save_key(&self, cur: &Versioned<ApiKey>, key: ApiKey) -> ApiResult<pb::ApiKey> {
        let txn = Txn::new()
            .when(keys::api_key(&key.id), cur.revision)
            .put(keys::api_key(&key.id), db::encode(&key));
        db::commit(self.store(), txn, "the API key changed meanwhile; retry").await?;
        Ok(to_pb(&key))
    }

    /// Refuses `name` when another active key of `repository_id` has it, so an app's key can
    /// be named without ambiguity (revoked and expired keys keep theirs, for the audit trail,
    /// and block nothing). Returns
    /// the revision of the repository's children marker: a create or rename commits only if
    /// it is unchanged, and each bumps it, so two writes of one name cannot both pass.
    async fn check_key_name(
        &self,
        repository_id: &str,
        repository_name: &str,
        name: &str,
        own_id: Option<&str>,
    ) -> ApiResult<crate::store::Revision> {
        let marker = keys::children(&keys::repo(repository_id));
        let revision = db::revision_of(self.store(), &marker).await?;
        let now = now_ms();
        let taken = db::list::<ApiKey>(self.store(), keys::API_KEYS)
            .await?
            .into_iter()
            .map(|k| k.value)
            .find(|k| {
                k.repository_id == repository_id
                    && k.revoked_at.is_none()
                    && k.expires_at.is_none_or(|e| e > now)
                    && k.name == name
                    && Some(k.id.as_str()) != own_id
            });
        if let Some(k) = taken {
            return Err(ApiError::AlreadyExists(format!(
                "repository '{repository_name}' already has an active API key named '{name}' ({}); choose another name, or revoke that key first",
                k.id
            )));
        }
        Ok(revision)
    }
}

#[tonic::async_trait]
impl ApiKeyService for Service {
    async fn create_api_key(
        &self,
        req: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let repo = ctx
            .resolve::<Repository>(
                &p,
                "repository_id",
                &r.repository_id,
                &r.workspace_id,
                Access::Write,
            )
            .await?;
        let name = input::name("name", &r.name)?;
        let now = now_ms();
        let expires_at = r.expires_at.as_ref().map(convert::from_ts);
        if expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::invalid("expires_at", "the expiry must be in the future").into());
        }
        let marker = ctx
            .check_key_name(&repo.value.id, &repo.value.name, &name, None)
            .await?;
        let secret = auth::new_secret("tg_");
        let key = ApiKey {
            id: new_id("key"),
            repository_id: repo.value.id.clone(),
            workspace_id: repo.value.workspace_id.clone(),
            name,
            hash: auth::hash_secret(&secret),
            hint: auth::secret_hint(&secret),
            created_at: now,
            last_used_at: None,
            expires_at,
            revoked_at: None,
        };
        let txn = Txn::new()
            .when(keys::repo(&repo.value.id), repo.revision)
            .when(keys::children(&keys::repo(&repo.value.id)), marker)
            .put(keys::api_key(&key.id), db::encode(&key))
            .put(keys::children(&keys::repo(&repo.value.id)), Vec::new());
        db::commit(
            ctx.store(),
            txn,
            format!("repository '{}' changed meanwhile; retry", repo.value.name),
        )
        .await?;
        tracing::info!(key = %key.id, repo = %repo.value.id, by = %p.name, "API key created");
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(to_pb(&key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let repo = ctx
            .resolve::<Repository>(
                &p,
                "repository_id",
                &r.repository_id,
                &r.workspace_id,
                Access::Read,
            )
            .await?;
        let mut list: Vec<ApiKey> = db::list::<ApiKey>(ctx.store(), keys::API_KEYS)
            .await?
            .into_iter()
            .map(|k| k.value)
            .filter(|k| k.repository_id == repo.value.id)
            .filter(|k| r.include_revoked || k.revoked_at.is_none())
            .collect();
        list.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        for k in &mut list {
            // Kept to the minute: a key used in the minute it was created would otherwise
            // seem used before it existed.
            k.last_used_at = ctx.last_used(&k.id).await?.map(|t| t.max(k.created_at));
        }
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: list.iter().map(to_pb).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let cur = ctx.api_key(&p, &req.get_ref().id, Access::Write).await?;
        if cur.value.revoked_at.is_some() {
            return Ok(Response::new(to_pb(&cur.value)));
        }
        let mut key = cur.value.clone();
        key.revoked_at = Some(now_ms());
        tracing::info!(key = %key.id, by = %p.name, "API key revoked");
        Ok(Response::new(ctx.save_key(&cur, key).await?))
    }

    async fn rename_api_key(
        &self,
        req: Request<pb::RenameApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx.api_key(&p, &r.id, Access::Write).await?;
        let mut key = cur.value.clone();
        key.name = input::name("name", &r.name)?;
        if key == cur.value {
            return Ok(Response::new(to_pb(&key)));
        }
        if key.revoked_at.is_some() {
            // A revoked key's name is history: it blocks no one, and nothing checks it.
            return Ok(Response::new(ctx.save_key(&cur, key).await?));
        }
        let repo_name =
            match db::get::<Repository>(ctx.store(), &keys::repo(&key.repository_id)).await? {
                Some(repo) => repo.value.name,
                None => key.repository_id.clone(),
            };
        let marker_key = keys::children(&keys::repo(&key.repository_id));
        let marker = ctx
            .check_key_name(&key.repository_id, &repo_name, &key.name, Some(&key.id))
            .await?;
        let txn = Txn::new()
            .when(keys::api_key(&key.id), cur.revision)
            .when(marker_key.clone(), marker)
            .put(keys::api_key(&key.id), db::encode(&key))
            .put(marker_key, Vec::new());
        db::commit(
            ctx.store(),
            txn,
            "the repository's keys changed meanwhile; retry",
        )
        .await?;
        Ok(Response::new(to_pb(&key)))
    }
}

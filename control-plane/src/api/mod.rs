//! The admin API (`tollgate.admin.v1`): one module per service, sharing a `Ctx` that holds
//! the store, the keyring and the validator, and resolves ids or names with permissions.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Request;

use crate::auth::{self, Access, Principal};
use crate::crypto::Keyring;
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{AiLlm, Policy, Repository, Workspace};
use crate::store::Store;
use crate::validate::Validator;

pub mod ai_llm;
pub mod api_key;
pub mod convert;
pub mod input;
pub mod policy;
pub mod policy_assist;
pub mod repository;
pub mod stats;
pub mod token;
pub mod workspace;

/// What every service shares.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
    pub validator: Validator,
    /// The organization this control plane serves (created at bootstrap).
    pub org_id: String,
    /// Where ALERT violations are posted, if anywhere.
    pub alerts: Option<crate::alerts::Webhook>,
}

/// A record that lives in a workspace and has a name unique there.
pub trait Named: Serialize + DeserializeOwned {
    /// What users call it, for messages.
    const KIND: &'static str;
    fn key(id: &str) -> String;
    fn name_key(workspace_id: &str, name: &str) -> String;
    fn workspace_id(&self) -> &str;
}

impl Named for AiLlm {
    const KIND: &'static str = "AI LLM configuration";
    fn key(id: &str) -> String {
        keys::llm(id)
    }
    fn name_key(ws: &str, name: &str) -> String {
        keys::llm_name(ws, name)
    }
    fn workspace_id(&self) -> &str {
        &self.workspace_id
    }
}

impl Named for Repository {
    const KIND: &'static str = "repository";
    fn key(id: &str) -> String {
        keys::repo(id)
    }
    fn name_key(ws: &str, name: &str) -> String {
        keys::repo_name(ws, name)
    }
    fn workspace_id(&self) -> &str {
        &self.workspace_id
    }
}

impl Named for Policy {
    const KIND: &'static str = "policy";
    fn key(id: &str) -> String {
        keys::policy(id)
    }
    fn name_key(ws: &str, name: &str) -> String {
        keys::policy_name(Some(ws), name)
    }
    fn workspace_id(&self) -> &str {
        self.workspace_id.as_deref().unwrap_or("")
    }
}

impl Ctx {
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub async fn auth<T>(&self, req: &Request<T>) -> ApiResult<Principal> {
        auth::authenticate(self.store(), req.metadata()).await
    }

    /// Every workspace, by name.
    pub async fn workspaces(&self) -> ApiResult<Vec<Versioned<Workspace>>> {
        db::list(self.store(), keys::WORKSPACES).await
    }

    /// A workspace by id or name, which the caller must reach with `need`.
    pub async fn workspace(
        &self,
        p: &Principal,
        id_or_name: &str,
        need: Access,
    ) -> ApiResult<Versioned<Workspace>> {
        let id_or_name = id_or_name.trim();
        if id_or_name.is_empty() {
            return Err(ApiError::invalid(
                "workspace_id",
                "a workspace is required (its id or name)",
            ));
        }
        let ws = match db::get::<Workspace>(self.store(), &keys::workspace(id_or_name)).await? {
            Some(ws) => Some(ws),
            None => match db::get_string(self.store(), &keys::ws_name(id_or_name)).await? {
                Some(id) => db::get::<Workspace>(self.store(), &keys::workspace(&id)).await?,
                None => None,
            },
        };
        let ws = ws.ok_or_else(|| {
            ApiError::NotFound(format!(
                "no workspace with id or name '{id_or_name}'; `tollgatectl workspace list` shows them"
            ))
        })?;
        p.require(&ws.value.id, &ws.value.name, need)?;
        Ok(ws)
    }

    /// Name of a workspace id, for messages.
    pub async fn workspace_name(&self, id: &str) -> String {
        match db::get::<Workspace>(self.store(), &keys::workspace(id)).await {
            Ok(Some(ws)) => ws.value.name,
            _ => id.to_string(),
        }
    }

    /// Finds a record by id or name: the id first; a name in `workspace_hint` when given, else
    /// in every workspace the caller can read (ambiguity is an error that asks for the
    /// workspace). The caller must reach the record's workspace with `need`.
    pub async fn resolve<T: Named>(
        &self,
        p: &Principal,
        field: &str,
        id_or_name: &str,
        workspace_hint: &str,
        need: Access,
    ) -> ApiResult<Versioned<T>> {
        let x = id_or_name.trim();
        if x.is_empty() {
            return Err(ApiError::invalid(
                field,
                format!("the {} is required (its id or name)", T::KIND),
            ));
        }
        if let Some(found) = db::get::<T>(self.store(), &T::key(x)).await? {
            let ws = found.value.workspace_id().to_string();
            p.require(&ws, &self.workspace_name(&ws).await, need)?;
            return Ok(found);
        }
        let candidates: Vec<Workspace> = if workspace_hint.trim().is_empty() {
            self.workspaces()
                .await?
                .into_iter()
                .map(|w| w.value)
                .filter(|w| p.can(&w.id, Access::Read))
                .collect()
        } else {
            vec![self.workspace(p, workspace_hint, Access::Read).await?.value]
        };
        let mut matches = Vec::new();
        for ws in &candidates {
            if let Some(id) = db::get_string(self.store(), &T::name_key(&ws.id, x)).await?
                && let Some(found) = db::get::<T>(self.store(), &T::key(&id)).await?
            {
                matches.push((ws.clone(), found));
            }
        }
        match matches.len() {
            0 => Err(ApiError::NotFound(format!(
                "no {} with id or name '{x}' in the workspaces this token can see",
                T::KIND
            ))),
            1 => {
                let (ws, found) = matches.remove(0);
                p.require(&ws.id, &ws.name, need)?;
                Ok(found)
            }
            _ => Err(ApiError::invalid(
                "workspace_id",
                format!(
                    "{} name '{x}' exists in several workspaces ({}); say which workspace",
                    T::KIND,
                    matches
                        .iter()
                        .map(|(w, _)| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

/// A new id: a type prefix and 128 random bits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

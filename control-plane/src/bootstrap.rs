//! First start on an empty store: the organization, a `default` workspace and an owner token.

use crate::api::{Ctx, new_id, token::insert_token};
use crate::auth;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{AdminToken, Org, Role, RoleBinding, Workspace, now_ms};
use crate::store::{Store, Txn};

/// What bootstrapping found or did.
pub struct Bootstrapped {
    pub org_id: String,
    /// The owner token generated on this first start; shown once, stored only hashed.
    pub generated_token: Option<String>,
}

pub fn check_bootstrap_token(token: &str) -> ApiResult<()> {
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            "bootstrap_token",
            "the bootstrap token needs at least 16 characters without spaces",
        ));
    }
    Ok(())
}

/// Moves policies stored by earlier versions (under `policies/`) to where data planes see
/// them. Each move is one compare-and-swap (the old record unchanged, the new key absent),
/// so replicas starting together move each record once. Returns how many this call moved.
pub async fn move_policies(store: &dyn Store) -> ApiResult<usize> {
    let (old, _) = store.list(keys::OLD_POLICIES).await?;
    let mut moved = 0;
    for kv in old {
        let Some(id) = kv.key.strip_prefix(keys::OLD_POLICIES) else {
            continue;
        };
        let new_key = keys::policy(id);
        let txn = Txn::new()
            .when(kv.key.clone(), kv.mod_revision)
            .when(new_key.clone(), 0)
            .put(new_key, kv.value)
            .delete(kv.key.clone());
        if store.txn(txn).await?.succeeded {
            moved += 1;
        }
    }
    if moved > 0 {
        tracing::info!(
            policies = moved,
            "moved policies to the synced config prefix"
        );
    }
    Ok(moved)
}

/// Creates the organization once (replicas race safely: one wins, the others read its
/// result). A given bootstrap token is made sure to exist as an owner token on every start,
/// so an operator can regain access by restarting with a new one.
pub async fn bootstrap(
    store: &dyn Store,
    bootstrap_token: Option<&str>,
) -> ApiResult<Bootstrapped> {
    if let Some(t) = bootstrap_token {
        check_bootstrap_token(t)?;
    }
    let mut generated_token = None;
    let org = match db::get::<Org>(store, keys::ORG).await? {
        Some(org) => org.value,
        None => {
            let now = now_ms();
            let org = Org {
                id: new_id("org"),
                name: "default".into(),
                created_at: now,
            };
            let ws = Workspace {
                id: new_id("ws"),
                name: "default".into(),
                created_at: now,
            };
            let secret = match bootstrap_token {
                Some(t) => t.to_string(),
                None => auth::new_secret("tgadm_"),
            };
            let hash = auth::hash_secret(&secret);
            let token = AdminToken {
                id: new_id("tok"),
                name: "bootstrap".into(),
                hash: hash.clone(),
                hint: auth::secret_hint(&secret),
                roles: vec![RoleBinding {
                    workspace_id: None,
                    role: Role::Owner,
                }],
                created_at: now,
                revoked_at: None,
            };
            let txn = Txn::new()
                .when(keys::ORG, 0)
                .put(keys::ORG, db::encode(&org))
                .put(keys::workspace(&ws.id), db::encode(&ws))
                .put(keys::ws_name(&ws.name), ws.id.clone())
                .put(keys::token(&token.id), db::encode(&token))
                .put(keys::token_hash(&hash), token.id.clone());
            if store.txn(txn).await?.succeeded {
                tracing::info!(org = %org.id, "bootstrapped the organization, workspace 'default' and an owner token");
                if bootstrap_token.is_none() {
                    generated_token = Some(secret);
                }
                org
            } else {
                db::get::<Org>(store, keys::ORG)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Internal("bootstrap raced and lost the organization".into())
                    })?
                    .value
            }
        }
    };
    Ok(Bootstrapped {
        org_id: org.id,
        generated_token,
    })
}

/// Makes sure the given bootstrap token exists as an owner token.
pub async fn ensure_bootstrap_token(ctx: &Ctx, token: &str) -> ApiResult<()> {
    let hash = auth::hash_secret(token);
    if let Some(id) = db::get_string(ctx.store(), &keys::token_hash(&hash)).await? {
        if let Some(t) = db::get::<AdminToken>(ctx.store(), &keys::token(&id)).await?
            && t.value.revoked_at.is_some()
        {
            tracing::warn!("the configured bootstrap token was revoked; it stays revoked");
        }
        return Ok(());
    }
    insert_token(
        ctx,
        "bootstrap",
        token,
        vec![RoleBinding {
            workspace_id: None,
            role: Role::Owner,
        }],
    )
    .await?;
    tracing::info!("added the configured bootstrap token as an owner token");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    #[tokio::test]
    async fn policies_of_earlier_versions_move_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb"), "/t/").expect("store");
        let txn = Txn::new()
            .put(
                format!("{}pol_1", keys::OLD_POLICIES),
                b"{\"a\":1}".to_vec(),
            )
            .put(
                format!("{}pol_2", keys::OLD_POLICIES),
                b"{\"b\":2}".to_vec(),
            );
        store.txn(txn).await.expect("write");
        assert_eq!(move_policies(&store).await.expect("move"), 2);
        assert_eq!(move_policies(&store).await.expect("again"), 0);
        let (old, _) = store.list(keys::OLD_POLICIES).await.expect("list");
        assert!(old.is_empty());
        let moved = store.get(&keys::policy("pol_1")).await.expect("get");
        assert_eq!(moved.map(|kv| kv.value), Some(b"{\"a\":1}".to_vec()));
    }
}

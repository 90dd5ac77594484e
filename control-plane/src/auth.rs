//! Admin tokens and permissions. Tokens are stored as SHA-256 hashes and looked up by hash;
//! roles reach the organization (OWNER, ADMIN) or one workspace (ADMIN, WRITE, READ).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{AdminToken, Role, RoleBinding};
use crate::store::Store;

/// What an operation needs on a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }
}

/// The caller of an admin RPC, as its token says.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub roles: Vec<RoleBinding>,
}

impl Principal {
    pub fn is_owner(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r.workspace_id.is_none() && r.role == Role::Owner)
    }

    /// OWNER or ADMIN of the organization.
    pub fn is_org_admin(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r.workspace_id.is_none() && matches!(r.role, Role::Owner | Role::Admin))
    }

    pub fn can(&self, workspace_id: &str, need: Access) -> bool {
        self.is_org_admin()
            || self.roles.iter().any(|r| {
                r.workspace_id.as_deref() == Some(workspace_id)
                    && match r.role {
                        Role::Owner | Role::Admin => true,
                        Role::Write => need <= Access::Write,
                        Role::Read => need == Access::Read,
                    }
            })
    }

    pub fn require(&self, workspace_id: &str, workspace_name: &str, need: Access) -> ApiResult<()> {
        if self.can(workspace_id, need) {
            Ok(())
        } else {
            // A workspace the token cannot even read is not named: an id of one of its
            // records must not tell the caller what the workspace is called.
            let which = if self.can(workspace_id, Access::Read) {
                format!("workspace '{workspace_name}'")
            } else {
                "its workspace".to_string()
            };
            Err(ApiError::PermissionDenied(format!(
                "token '{}' has no {} access to {which}; ask an organization admin for a role on it",
                self.name,
                need.as_str(),
            )))
        }
    }

    pub fn require_org_admin(&self, what: &str) -> ApiResult<()> {
        if self.is_org_admin() {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "{what} needs an organization OWNER or ADMIN token; token '{}' has none",
                self.name
            )))
        }
    }

    /// Whether this principal may grant `binding` to a new token (or revoke a token holding it).
    pub fn may_grant(&self, binding: &RoleBinding) -> bool {
        match &binding.workspace_id {
            None => match binding.role {
                Role::Owner => self.is_owner(),
                _ => self.is_org_admin(),
            },
            Some(ws) => self.can(ws, Access::Admin),
        }
    }
}

/// SHA-256 of a token or key, hex. Secrets are 256-bit random, so a fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random secret: `prefix` + 32 random bytes, base64url.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// `tg_…abcd`: the prefix and the last 4 characters.
pub fn secret_hint(secret: &str) -> String {
    let prefix_end = secret.find('_').map(|i| i + 1).unwrap_or(0);
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}…{tail}", &secret[..prefix_end])
}

/// Reads `authorization: Bearer <token>` and finds the token.
pub async fn authenticate(store: &dyn Store, metadata: &MetadataMap) -> ApiResult<Principal> {
    let header = metadata
        .get("authorization")
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "missing `authorization: Bearer <admin token>` (tollgatectl: --token or TOLLGATE_TOKEN)"
                    .into(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the authorization header is not ASCII".into()))?;
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "the authorization header must be `Bearer <admin token>`".into(),
            )
        })?;
    let hash = hash_secret(secret);
    let unknown = || ApiError::Unauthenticated("unknown or revoked admin token".into());
    let id = db::get_string(store, &keys::token_hash(&hash))
        .await?
        .ok_or_else(unknown)?;
    let token = db::get::<AdminToken>(store, &keys::token(&id))
        .await?
        .ok_or_else(unknown)?
        .value;
    if !bool::from(token.hash.as_bytes().ct_eq(hash.as_bytes())) || token.revoked_at.is_some() {
        return Err(unknown());
    }
    Ok(Principal {
        token_id: token.id,
        name: token.name,
        roles: token.roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(roles: &[(Option<&str>, Role)]) -> Principal {
        Principal {
            token_id: "t".into(),
            name: "t".into(),
            roles: roles
                .iter()
                .map(|(ws, role)| RoleBinding {
                    workspace_id: ws.map(str::to_string),
                    role: *role,
                })
                .collect(),
        }
    }

    type Roles<'a> = &'a [(Option<&'a str>, Role)];

    #[test]
    fn role_matrix() {
        use Access::*;
        let cases: &[(Roles, &str, Access, bool)] = &[
            (&[(None, Role::Owner)], "w1", Admin, true),
            (&[(None, Role::Admin)], "w1", Admin, true),
            (&[(Some("w1"), Role::Admin)], "w1", Admin, true),
            (&[(Some("w1"), Role::Admin)], "w2", Read, false),
            (&[(Some("w1"), Role::Write)], "w1", Write, true),
            (&[(Some("w1"), Role::Write)], "w1", Admin, false),
            (&[(Some("w1"), Role::Read)], "w1", Read, true),
            (&[(Some("w1"), Role::Read)], "w1", Write, false),
            (&[], "w1", Read, false),
        ];
        for (roles, ws, need, want) in cases {
            assert_eq!(p(roles).can(ws, *need), *want, "{roles:?} {ws} {need:?}");
        }
    }

    #[test]
    fn refusals_name_only_workspaces_the_token_can_read() {
        let reader = p(&[(Some("w1"), Role::Read)]);
        let message = |ws: &str| match reader.require(ws, "team-secret", Access::Write) {
            Err(ApiError::PermissionDenied(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(message("w1").contains("write access to workspace 'team-secret'"));
        let elsewhere = message("w2");
        assert!(
            elsewhere.contains("access to its workspace") && !elsewhere.contains("team-secret"),
            "{elsewhere}"
        );
    }

    #[test]
    fn grants() {
        let owner = p(&[(None, Role::Owner)]);
        let admin = p(&[(None, Role::Admin)]);
        let ws_admin = p(&[(Some("w1"), Role::Admin)]);
        let b = |ws: Option<&str>, role| RoleBinding {
            workspace_id: ws.map(str::to_string),
            role,
        };
        assert!(owner.may_grant(&b(None, Role::Owner)));
        assert!(!admin.may_grant(&b(None, Role::Owner)));
        assert!(admin.may_grant(&b(None, Role::Admin)));
        assert!(ws_admin.may_grant(&b(Some("w1"), Role::Write)));
        assert!(!ws_admin.may_grant(&b(Some("w2"), Role::Read)));
        assert!(!ws_admin.may_grant(&b(None, Role::Admin)));
    }

    #[test]
    fn secrets_and_hints() {
        let s = new_secret("tg_");
        assert!(s.starts_with("tg_") && s.len() >= 3 + 43);
        assert_ne!(s, new_secret("tg_"));
        let hint = secret_hint(&s);
        assert!(hint.starts_with("tg_…") && hint.ends_with(&s[s.len() - 4..]));
        assert_eq!(hash_secret("abc").len(), 64);
    }
}

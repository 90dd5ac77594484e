//! Store records to sync resources, and which of them a data plane may see.
//!
//! One function, [`change`], decides for any store key what a data plane in a given
//! environment must hold for it: the full snapshot and the deltas both go through it, so they
//! can never disagree.

use tollgate_proto::sync as pb;
use tollgate_proto::sync::ResourceKind;

use crate::api::{Ctx, convert};
use crate::keys;
use crate::model::{AiLlm, ApiKey, CredentialMode, Policy, Repository};

/// What a data plane must do about one store key.
#[derive(Clone, PartialEq)]
pub enum Change {
    /// Hold this resource (replacing what it had under the same kind and id).
    Upsert(Box<pb::Resource>),
    /// Forget the resource (unknown ids are fine: removals are idempotent).
    Remove(pb::ResourceRef),
}

// Deliberately no derived `Debug`: an upsert of a connection carries decrypted secrets.
impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Upsert(_) => f.write_str("Upsert(..)"),
            Change::Remove(r) => write!(f, "Remove({:?} {})", r.kind(), r.id),
        }
    }
}

/// The kind and id of a key that is synced to data planes; `None` for every other key
/// (usage, indexes, tokens, violations, ...).
pub fn parse_key(key: &str) -> Option<(ResourceKind, &str)> {
    let (kind, id) = if let Some(id) = key.strip_prefix(keys::LLMS) {
        (ResourceKind::Connection, id)
    } else if let Some(id) = key.strip_prefix(keys::REPOS) {
        (ResourceKind::Repository, id)
    } else if let Some(id) = key.strip_prefix(keys::API_KEYS) {
        (ResourceKind::ApiKey, id)
    } else if let Some(id) = key.strip_prefix(keys::POLICIES) {
        (ResourceKind::Policy, id)
    } else {
        return None;
    };
    (!id.is_empty()).then_some((kind, id))
}

/// What a data plane in `environment` must hold for `key`, whose current value is `value`
/// (`None`: deleted). `None` when the key is not synced at all.
///
/// A record that cannot be read or decrypted becomes a removal (logged, without its
/// content): a data plane must rather lose a connection or key than serve a stale one.
pub fn change(ctx: &Ctx, environment: &str, key: &str, value: Option<&[u8]>) -> Option<Change> {
    let (kind, id) = parse_key(key)?;
    let remove = || {
        Some(Change::Remove(pb::ResourceRef {
            kind: kind as i32,
            id: id.to_string(),
        }))
    };
    let Some(value) = value else {
        return remove();
    };
    let upsert = match kind {
        ResourceKind::Connection => decode::<AiLlm>(key, value).and_then(|llm| {
            if !llm.environments.iter().any(|e| e == environment) {
                return None;
            }
            connection(ctx, &llm).map(pb::resource::Resource::Connection)
        }),
        ResourceKind::Repository => decode::<Repository>(key, value)
            .map(|r| pb::resource::Resource::Repository(repository(&r))),
        ResourceKind::ApiKey => decode::<ApiKey>(key, value).and_then(|k| {
            if k.revoked_at.is_some() {
                return None;
            }
            api_key(&k).map(pb::resource::Resource::ApiKey)
        }),
        // Every environment answers to the same policies; a disabled one, or one without
        // rules, has nothing for data planes to enforce.
        ResourceKind::Policy => decode::<Policy>(key, value).and_then(|p| {
            (p.enabled && !p.rules.is_empty()).then(|| pb::resource::Resource::Policy(policy(&p)))
        }),
        ResourceKind::Unspecified => None,
    };
    match upsert {
        Some(r) => Some(Change::Upsert(Box::new(pb::Resource { resource: Some(r) }))),
        None => remove(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(key, error = %e, "stored record is unreadable; not sent to data planes");
            None
        }
    }
}

/// The connection with its credentials decrypted (`None`, logged, when they cannot be).
pub(crate) fn connection(ctx: &Ctx, llm: &AiLlm) -> Option<pb::Connection> {
    let open = |field: &str| match ctx.open_credential(llm, field) {
        Ok(s) => Some(s.map(|s| s.expose().to_string()).unwrap_or_default()),
        Err(e) => {
            // The error names the key id and the cause, never the secret.
            tracing::error!(llm = %llm.id, field, error = %e,
                "cannot decrypt a credential; the connection is withheld from data planes");
            None
        }
    };
    let passthrough = llm.credential_mode == CredentialMode::Passthrough;
    Some(pb::Connection {
        id: llm.id.clone(),
        workspace_id: llm.workspace_id.clone(),
        name: llm.name.clone(),
        ai_type: convert::ai_type_to_pb(llm.ai_type) as i32,
        endpoint: llm.endpoint.clone(),
        key: open("key")?,
        // A passthrough connection has no stored secret: the app sends the provider key.
        secret: if passthrough {
            String::new()
        } else {
            open("secret")?
        },
        passthrough,
        routing_id: llm.routing_id.clone(),
        models: llm.served_models().to_vec(),
        region: llm.region.clone(),
    })
}

fn repository(r: &Repository) -> pb::Repository {
    pb::Repository {
        id: r.id.clone(),
        workspace_id: r.workspace_id.clone(),
        name: r.name.clone(),
        connection_ids: r.ai_llm_ids.clone(),
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
    }
}

/// The policy as data planes receive it.
pub fn policy(p: &Policy) -> pb::Policy {
    let r = &p.rules;
    pb::Policy {
        id: p.id.clone(),
        workspace_id: p.workspace_id.clone().unwrap_or_default(),
        repository_id: p.repository_id.clone().unwrap_or_default(),
        name: p.name.clone(),
        risk_type: convert::risk_to_pb(p.risk_type) as i32,
        action: convert::action_to_pb(p.action) as i32,
        rules: Some(crate::api::policy::rules_to_pb(r)),
        content: if r.judge_ai_llm_id.is_empty() {
            String::new()
        } else {
            p.content.clone()
        },
    }
}

/// The key with its hash as raw bytes (the store keeps hex); `None`, logged, when the stored
/// hash is malformed, since such a key could never match anyway.
fn api_key(k: &ApiKey) -> Option<pb::ApiKey> {
    let Some(hash) = hex32(&k.hash) else {
        tracing::error!(api_key = %k.id, "stored API key hash is not 64 hex digits; key withheld");
        return None;
    };
    Some(pb::ApiKey {
        id: k.id.clone(),
        repository_id: k.repository_id.clone(),
        hash: hash.to_vec(),
        // 0 means "never expires", so an expiry within the first second of 1970 becomes 1.
        expires_at: k.expires_at.map_or(0, |ms| ms.div_euclid(1000).max(1)),
    })
}

/// Decodes exactly 64 hex digits.
fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_keys_parse() {
        fn check(key: &str, want: Option<(ResourceKind, &str)>) {
            assert_eq!(parse_key(key), want, "{key}");
        }
        check(&keys::llm("l1"), Some((ResourceKind::Connection, "l1")));
        check(&keys::repo("r1"), Some((ResourceKind::Repository, "r1")));
        check(&keys::api_key("k1"), Some((ResourceKind::ApiKey, "k1")));
        check(keys::API_KEYS, None);
        check("usage/total/l1", None);
        check("idx/llm-name/ws/x", None);
        check("tokens/t1", None);
        check(&keys::policy("p1"), Some((ResourceKind::Policy, "p1")));
        check("policies/p1", None);
        check("idx/policy-name/_org/p", None);
        check("violations/ws/1/v1", None);
    }

    #[test]
    fn sync_hex_hash_decodes() {
        let hex = "00ff10".repeat(10) + "abcd";
        let bytes = hex32(&hex).expect("valid");
        assert_eq!(
            (bytes[0], bytes[1], bytes[2], bytes[31]),
            (0, 255, 16, 0xcd)
        );
        assert_eq!(hex32("zz"), None);
        assert_eq!(hex32(&"g".repeat(64)), None);
        assert_eq!(hex32(&"é".repeat(32)), None);
    }
}

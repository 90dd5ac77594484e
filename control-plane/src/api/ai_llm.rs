//! `AiLlmService`: provider connections, with the product's semantics (unique names,
//! field-masked partial updates with optimistic concurrency, delete refused while in use,
//! real validation calls).

use std::collections::HashMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tollgate_proto::admin as pb;
use tollgate_proto::admin::ai_llm_service_server::AiLlmService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::Access;
use crate::crypto;
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{AiLlm, AiType, CredentialMode, Repository, now_ms};
use crate::store::Txn;
use crate::validate::{self, ValidationRequest};

/// Where a configuration created without `environments` is active (data planes default to
/// it too).
const DEFAULT_ENVIRONMENT: &str = "production";

pub struct Service(pub Arc<Ctx>);

/// The fields a user sets, before they are checked and encrypted.
/// No `Debug`: it holds decrypted credentials.
#[derive(Clone, Default)]
struct Spec {
    name: String,
    ai_type: Option<AiType>,
    endpoint: String,
    key: Option<String>,
    secret: Option<String>,
    credential_mode: CredentialMode,
    routing_id: String,
    environments: Vec<String>,
    models: Vec<String>,
    region: String,
}

/// A checked spec, ready to store.
struct Checked {
    name: String,
    ai_type: AiType,
    endpoint: String,
    key: Option<String>,
    secret: Option<String>,
    credential_mode: CredentialMode,
    routing_id: String,
    environments: Vec<String>,
    models: Vec<String>,
    region: String,
}

/// What needs an organization OWNER or ADMIN token: the gateway's AWS role is the
/// platform's, not one workspace's.
const OWN_IDENTITY: &str =
    "an AWS connection without credentials (it signs with the gateway's own AWS identity)";

impl Checked {
    /// A managed AWS connection storing no credentials (the gateway's own AWS identity).
    fn uses_own_aws_identity(&self) -> bool {
        self.ai_type == AiType::Aws
            && self.credential_mode == CredentialMode::Managed
            && self.key.is_none()
            && self.secret.is_none()
    }
}

/// An AWS secret access key: 40 characters of base64 (a Bedrock API key is much longer).
fn looks_like_secret_access_key(secret: &str) -> bool {
    secret.len() == 40
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
}

/// A Bedrock API key: long-term ones start `ABSK` (base64 of "BedrockAPIKey-"), short-term
/// ones `bedrock-api-key-`.
fn looks_like_bedrock_api_key(secret: &str) -> bool {
    secret.starts_with("ABSK") || secret.starts_with("bedrock-api-key-")
}

/// AWS region from `bedrock-runtime.<region>.amazonaws.com` (or `bedrock.<region>...`).
fn region_from_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    let service = parts.next()?;
    let region = parts.next()?;
    (service.starts_with("bedrock") && host.ends_with(".amazonaws.com") && !region.is_empty())
        .then(|| region.to_string())
}

/// `scheme://host:port` of an endpoint, the port made explicit.
fn origin(endpoint: &str) -> String {
    match endpoint.parse::<http::Uri>() {
        Ok(u) => {
            let scheme = u.scheme_str().unwrap_or("");
            let port = u
                .port_u16()
                .unwrap_or(if scheme == "http" { 80 } else { 443 });
            format!("{scheme}://{}:{port}", u.host().unwrap_or(""))
        }
        Err(_) => endpoint.to_string(),
    }
}

fn check(spec: Spec, validator: &validate::Validator) -> ApiResult<Checked> {
    let name = input::name("name", &spec.name)?;
    let ai_type = spec.ai_type.ok_or_else(|| {
        ApiError::invalid(
            "ai_type",
            "an AI type is required: OPENAI, GOOGLE, ANTHROPIC, AWS or OTHER",
        )
    })?;
    let endpoint = if spec.endpoint.trim().is_empty() {
        match spec.region.trim() {
            // The region's own Bedrock endpoint, so requests go where they are signed for.
            r if ai_type == AiType::Aws && !r.is_empty() => format!(
                "https://bedrock-runtime.{}.amazonaws.com",
                input::slug("region", r)?
            ),
            _ => ai_type.default_endpoint().to_string(),
        }
    } else {
        let uri = validator
            .check_endpoint(ai_type, spec.endpoint.trim())
            .map_err(|e| ApiError::invalid("endpoint", e.to_string()))?;
        validate::endpoint_to_string(&uri)
    };
    let key = spec
        .key
        .filter(|k| !k.trim().is_empty())
        .map(|k| input::credential("key", &k))
        .transpose()?;
    let secret = spec
        .secret
        .filter(|s| !s.trim().is_empty())
        .map(|s| input::credential("secret", &s))
        .transpose()?;
    match spec.credential_mode {
        // AWS with neither: the gateway's own AWS identity (IRSA, EKS Pod Identity, ...).
        CredentialMode::Managed if secret.is_none() && ai_type == AiType::Aws && key.is_some() => {
            return Err(ApiError::invalid(
                "secret",
                "an AWS access key id needs its secret access key as the secret; or give neither, and the gateways sign with their own AWS identity (IAM role for the service account, EKS Pod Identity)",
            ));
        }
        CredentialMode::Managed if secret.is_none() && ai_type != AiType::Aws => {
            return Err(ApiError::invalid(
                "secret",
                "a secret is required for a managed connection (tollgatectl: --secret-stdin, --secret-file or --secret-env), or use --passthrough",
            ));
        }
        CredentialMode::Passthrough if secret.is_some() || key.is_some() => {
            return Err(ApiError::invalid(
                "secret",
                "a passthrough connection stores no credentials: each request brings the provider key; remove the secret and key",
            ));
        }
        _ => {}
    }
    // AWS: an access key id in `key` and its secret access key in `secret` (SigV4), or a
    // Bedrock API key alone in `secret`. A secret access key without its id is refused.
    if ai_type == AiType::Aws
        && key.is_none()
        && secret.as_deref().is_some_and(looks_like_secret_access_key)
    {
        return Err(ApiError::invalid(
            "key",
            "the secret looks like an AWS secret access key: give its access key id in `key` (tollgatectl: --key); a Bedrock API key alone needs no key",
        ));
    }
    if ai_type == AiType::Aws
        && key.is_some()
        && secret.as_deref().is_some_and(looks_like_bedrock_api_key)
    {
        return Err(ApiError::invalid(
            "key",
            "the secret is a Bedrock API key, which is sent alone: clear the access key id (tollgatectl: --key '')",
        ));
    }
    // Signing with the gateway's own identity: only for AWS's hosts (or loopback), so the
    // platform's role never signs a request bound for someone else's server.
    if ai_type == AiType::Aws
        && spec.credential_mode == CredentialMode::Managed
        && key.is_none()
        && secret.is_none()
    {
        let host = endpoint
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_string))
            .unwrap_or_default();
        if !tollgate_data_plane::providers::bedrock::signs_for_host(&host) {
            return Err(ApiError::invalid(
                "endpoint",
                format!(
                    "{host} is not an AWS host: a connection without credentials signs with the gateway's own AWS identity, which goes only to *.amazonaws.com, *.amazonaws.com.cn or *.api.aws; store credentials for this endpoint"
                ),
            ));
        }
    }
    let routing_id = if spec.routing_id.trim().is_empty() {
        input::slugify(&name)
    } else {
        input::slug("routing_id", &spec.routing_id)?
    };
    // Empty: active nowhere (an update may take a connection out of every environment);
    // a create without environments gets `production` before this check.
    let environments = input::environments("environments", &spec.environments)?;
    let models = input::models("models", &spec.models)?;
    let region = spec.region.trim().to_string();
    let region = if ai_type == AiType::Aws {
        if region.is_empty() {
            region_from_endpoint(&endpoint).ok_or_else(|| {
                ApiError::invalid(
                    "region",
                    "AWS needs a region: set it, or use an endpoint like https://bedrock-runtime.<region>.amazonaws.com",
                )
            })?
        } else {
            let region = input::slug("region", &region)?;
            if let Some(host_region) = region_from_endpoint(&endpoint).filter(|r| *r != region) {
                return Err(ApiError::invalid(
                    "region",
                    format!(
                        "the endpoint is AWS's {host_region} endpoint but the region is {region}: requests would be signed for one region and sent to the other; set the region to {host_region}, or the endpoint to https://bedrock-runtime.{region}.amazonaws.com"
                    ),
                ));
            }
            region
        }
    } else if !region.is_empty() {
        return Err(ApiError::invalid(
            "region",
            "region applies to AWS connections only",
        ));
    } else {
        region
    };
    Ok(Checked {
        name,
        ai_type,
        endpoint,
        key,
        secret,
        credential_mode: spec.credential_mode,
        routing_id,
        environments,
        models,
        region,
    })
}

impl Ctx {
    fn seal(&self, record_key: &str, field: &str, plaintext: &str) -> String {
        self.keyring
            .encrypt_to_string(plaintext.as_bytes(), &crypto::aad(record_key, field))
    }

    /// Decrypts a credential of a stored configuration.
    pub fn open_credential(
        &self,
        llm: &AiLlm,
        field: &str,
    ) -> ApiResult<Option<crypto::SecretString>> {
        let sealed = match field {
            "secret" => llm.secret.as_deref(),
            _ => llm.key.as_deref(),
        };
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        Ok(Some(self.keyring.decrypt_secret(
            sealed,
            &crypto::aad(&keys::llm(&llm.id), field),
        )?))
    }

    /// Whether `plain` equals the stored credential, compared in constant time.
    fn same_credential(&self, llm: &AiLlm, field: &str, plain: Option<&str>) -> ApiResult<bool> {
        let stored = self.open_credential(llm, field)?;
        Ok(match (stored.as_ref().map(|s| s.expose()), plain) {
            (None, None) => true,
            (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
            _ => false,
        })
    }

    pub fn llm_to_pb(&self, v: &Versioned<AiLlm>, repos: &[pb::RepositoryRef]) -> pb::AiLlm {
        let l = &v.value;
        pb::AiLlm {
            id: l.id.clone(),
            org_id: self.org_id.clone(),
            workspace_id: l.workspace_id.clone(),
            name: l.name.clone(),
            ai_type: convert::ai_type_to_pb(l.ai_type) as i32,
            endpoint: l.endpoint.clone(),
            key_hint: l.key_hint.clone(),
            key_set: l.key.is_some(),
            secret_set: l.secret.is_some(),
            secret_hint: l.secret_hint.clone(),
            credential_mode: convert::credential_mode_to_pb(l.credential_mode) as i32,
            routing_id: l.routing_id.clone(),
            environments: l.environments.clone(),
            models: l.models.clone(),
            discovered_models: l.discovered_models.clone(),
            region: l.region.clone(),
            last_validated_at: convert::opt_ts(l.last_validated_at),
            validation_success: l.validation_success,
            validation_message: l.validation_message.clone(),
            created_at: convert::ts(l.created_at),
            updated_at: convert::ts(l.updated_at),
            version: v.revision,
            repos: repos.to_vec(),
        }
    }

    /// Refuses an update of `old` to `new` that would take a model from under a route of a
    /// repository using it (a routing id change, or a model no longer served: dropped from
    /// its list, or the list emptied so that only discovered models are served), or whose
    /// new routing id an existing route name
    /// would hide: data planes would stop serving that route target. Returns what the
    /// update must find unchanged to commit: the using repositories, and the configuration's
    /// children marker (a repository attaching it meanwhile bumps it).
    async fn routes_still_served(
        &self,
        old: &AiLlm,
        new: &AiLlm,
    ) -> ApiResult<Vec<(String, crate::store::Revision)>> {
        if new.routing_id == old.routing_id && new.served_models() == old.served_models() {
            return Ok(Vec::new());
        }
        let children = keys::children(&keys::llm(&old.id));
        let children_rev = db::revision_of(self.store(), &children).await?;
        let mut guards = vec![(children, children_rev)];
        let prefix = format!("{}/", old.routing_id);
        for repo in db::list::<Repository>(self.store(), keys::REPOS).await? {
            if !repo.value.ai_llm_ids.contains(&old.id) {
                continue;
            }
            for route in &repo.value.routes {
                let lost = route.targets.iter().find(|t| {
                    t.target.strip_prefix(&prefix).is_some_and(|model| {
                        old.serves(model)
                            && (new.routing_id != old.routing_id || !new.serves(model))
                    })
                });
                if let Some(t) = lost {
                    return Err(ApiError::FailedPrecondition(format!(
                        "route '{}' of repository '{}' sends traffic to '{}', which this change would remove; change or delete the route first",
                        route.name, repo.value.name, t.target
                    )));
                }
                if new.routing_id != old.routing_id
                    && crate::model::route_name_hides(&route.name, &new.routing_id)
                {
                    return Err(ApiError::FailedPrecondition(format!(
                        "route '{}' of repository '{}' would hide the models of routing id '{}'; rename the route or pick another routing id",
                        route.name, repo.value.name, new.routing_id
                    )));
                }
            }
            guards.push((keys::repo(&repo.value.id), repo.revision));
        }
        Ok(guards)
    }

    /// Which repositories use each configuration.
    async fn repo_refs(&self) -> ApiResult<HashMap<String, Vec<pb::RepositoryRef>>> {
        let mut map: HashMap<String, Vec<pb::RepositoryRef>> = HashMap::new();
        for r in db::list::<Repository>(self.store(), keys::REPOS).await? {
            for llm in &r.value.ai_llm_ids {
                map.entry(llm.clone()).or_default().push(pb::RepositoryRef {
                    id: r.value.id.clone(),
                    name: r.value.name.clone(),
                });
            }
        }
        Ok(map)
    }

    /// Configurations the caller can read, optionally in one workspace, sorted by name.
    async fn visible_llms(
        &self,
        p: &crate::auth::Principal,
        workspace: &str,
    ) -> ApiResult<Vec<Versioned<AiLlm>>> {
        let ws_filter = if workspace.trim().is_empty() {
            None
        } else {
            Some(self.workspace(p, workspace, Access::Read).await?.value.id)
        };
        let mut llms: Vec<_> = db::list::<AiLlm>(self.store(), keys::LLMS)
            .await?
            .into_iter()
            .filter(|l| p.can(&l.value.workspace_id, Access::Read))
            .filter(|l| {
                ws_filter
                    .as_ref()
                    .is_none_or(|w| &l.value.workspace_id == w)
            })
            .collect();
        llms.sort_by(|a, b| a.value.name.cmp(&b.value.name));
        Ok(llms)
    }

    /// Explains which unique index a failed create or update ran into.
    async fn conflict(&self, ws: &str, name: &str, routing_id: &str, own_id: &str) -> ApiError {
        let taken = |key: String| async move {
            matches!(db::get_string(self.store(), &key).await, Ok(Some(id)) if id != own_id)
        };
        if taken(keys::llm_name(ws, name)).await {
            ApiError::AlreadyExists(format!(
                "an AI LLM configuration named '{name}' already exists in this workspace; pick another name"
            ))
        } else if taken(keys::llm_routing(ws, routing_id)).await {
            ApiError::AlreadyExists(format!(
                "routing id '{routing_id}' is already used in this workspace; set another --routing-id"
            ))
        } else {
            ApiError::Aborted(
                "the configuration or its workspace changed at the same time; get it again and retry"
                    .into(),
            )
        }
    }
}

fn hint(plain: Option<&str>) -> String {
    plain.map(crypto::mask_hint).unwrap_or_default()
}

#[tonic::async_trait]
impl AiLlmService for Service {
    async fn create_ai_llm(
        &self,
        req: Request<pb::CreateAiLlmRequest>,
    ) -> Result<Response<pb::CreateAiLlmResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.into_inner();
        let ws = ctx.workspace(&p, &r.workspace_id, Access::Write).await?;
        let c = check(
            Spec {
                name: r.name,
                ai_type: convert::ai_type("ai_type", r.ai_type)?,
                endpoint: r.endpoint,
                key: Some(r.key),
                secret: Some(r.secret),
                credential_mode: convert::credential_mode("credential_mode", r.credential_mode)?
                    .unwrap_or_default(),
                routing_id: r.routing_id,
                environments: if r.environments.is_empty() {
                    vec![DEFAULT_ENVIRONMENT.to_string()]
                } else {
                    r.environments
                },
                models: r.models,
                region: r.region,
            },
            &ctx.validator,
        )?;
        if c.uses_own_aws_identity() {
            p.require_org_admin(OWN_IDENTITY)?;
        }
        let id = new_id("llm");
        let rk = keys::llm(&id);
        let now = now_ms();
        let llm = AiLlm {
            id: id.clone(),
            workspace_id: ws.value.id.clone(),
            name: c.name.clone(),
            ai_type: c.ai_type,
            endpoint: c.endpoint,
            key: c.key.as_deref().map(|k| ctx.seal(&rk, "key", k)),
            key_hint: hint(c.key.as_deref()),
            secret: c.secret.as_deref().map(|s| ctx.seal(&rk, "secret", s)),
            secret_hint: hint(c.secret.as_deref()),
            credential_mode: c.credential_mode,
            routing_id: c.routing_id.clone(),
            environments: c.environments,
            models: c.models,
            discovered_models: vec![],
            region: c.region,
            last_validated_at: None,
            validation_success: None,
            validation_message: String::new(),
            created_at: now,
            updated_at: now,
        };
        let name_key = keys::llm_name(&ws.value.id, &c.name);
        let routing_key = keys::llm_routing(&ws.value.id, &c.routing_id);
        let txn = Txn::new()
            .when(keys::workspace(&ws.value.id), ws.revision)
            .when(name_key.clone(), 0)
            .when(routing_key.clone(), 0)
            .put(rk.clone(), db::encode(&llm))
            .put(name_key, id.clone())
            .put(routing_key, id.clone())
            .put(keys::children(&keys::workspace(&ws.value.id)), Vec::new());
        let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
        if !resp.succeeded {
            return Err(ctx
                .conflict(&ws.value.id, &c.name, &c.routing_id, "")
                .await
                .into());
        }
        tracing::info!(llm = %id, workspace = %ws.value.id, ai_type = llm.ai_type.as_str(), by = %p.name, "AI LLM configuration created");
        let v = Versioned {
            value: llm,
            revision: resp.revision,
        };
        Ok(Response::new(pb::CreateAiLlmResponse {
            success: true,
            ai_llm_id: id,
            ai_llm: Some(ctx.llm_to_pb(&v, &[])),
        }))
    }

    async fn list_ai_llms(
        &self,
        req: Request<pb::ListAiLlmsRequest>,
    ) -> Result<Response<pb::ListAiLlmsResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let llms = ctx.visible_llms(&p, &req.get_ref().workspace_id).await?;
        let refs = ctx.repo_refs().await?;
        let ai_llms = llms
            .iter()
            .map(|l| ctx.llm_to_pb(l, refs.get(&l.value.id).map_or(&[], |v| v)))
            .collect();
        Ok(Response::new(pb::ListAiLlmsResponse { ai_llms }))
    }

    async fn list_available_ai_llms(
        &self,
        req: Request<pb::ListAvailableAiLlmsRequest>,
    ) -> Result<Response<pb::ListAiLlmsResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let mut llms: Vec<_> = ctx
            .visible_llms(&p, &req.get_ref().workspace_id)
            .await?
            .into_iter()
            .filter(|l| l.value.is_available())
            .collect();
        llms.sort_by_key(|l| std::cmp::Reverse(l.value.created_at));
        let refs = ctx.repo_refs().await?;
        let ai_llms = llms
            .iter()
            .map(|l| ctx.llm_to_pb(l, refs.get(&l.value.id).map_or(&[], |v| v)))
            .collect();
        Ok(Response::new(pb::ListAiLlmsResponse { ai_llms }))
    }

    async fn get_ai_llm(
        &self,
        req: Request<pb::GetAiLlmRequest>,
    ) -> Result<Response<pb::AiLlm>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let llm = ctx
            .resolve::<AiLlm>(&p, "id", &r.id, &r.workspace_id, Access::Read)
            .await?;
        let refs = ctx.repo_refs().await?;
        Ok(Response::new(ctx.llm_to_pb(
            &llm,
            refs.get(&llm.value.id).map_or(&[], |v| v),
        )))
    }

    async fn update_ai_llm(
        &self,
        req: Request<pb::UpdateAiLlmRequest>,
    ) -> Result<Response<pb::UpdateAiLlmResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.into_inner();
        let cur = ctx
            .resolve::<AiLlm>(&p, "id", &r.id, &r.workspace_id, Access::Write)
            .await?;
        if r.expected_version != 0 && r.expected_version != cur.revision {
            return Err(ApiError::Aborted(format!(
                "AI LLM configuration '{}' is at version {}, not {}: someone changed it; get it again and retry",
                cur.value.name, cur.revision, r.expected_version
            ))
            .into());
        }
        let old = &cur.value;
        let rk = keys::llm(&old.id);
        let stored_key = ctx.open_credential(old, "key")?;
        let stored_secret = ctx.open_credential(old, "secret")?;
        let mut spec = Spec {
            name: old.name.clone(),
            ai_type: Some(old.ai_type),
            endpoint: old.endpoint.clone(),
            key: stored_key.as_ref().map(|s| s.expose().to_string()),
            secret: stored_secret.as_ref().map(|s| s.expose().to_string()),
            credential_mode: old.credential_mode,
            routing_id: old.routing_id.clone(),
            environments: old.environments.clone(),
            models: old.models.clone(),
            region: old.region.clone(),
        };
        let new_ai_type = convert::ai_type("ai_type", r.ai_type)?;
        let new_mode = convert::credential_mode("credential_mode", r.credential_mode)?;
        let masked: Option<Vec<String>> = r.update_mask.map(|m| m.paths);
        let given = |path: &str, present: bool| match &masked {
            Some(paths) => paths.iter().any(|p| p == path),
            None => present,
        };
        if let Some(paths) = &masked {
            const KNOWN: &[&str] = &[
                "name",
                "ai_type",
                "endpoint",
                "key",
                "secret",
                "credential_mode",
                "routing_id",
                "environments",
                "models",
                "region",
            ];
            if let Some(bad) = paths.iter().find(|p| !KNOWN.contains(&p.as_str())) {
                return Err(ApiError::invalid(
                    "update_mask",
                    format!("unknown field '{bad}'; updatable: {}", KNOWN.join(", ")),
                )
                .into());
            }
        }
        if given("name", r.name.is_some()) {
            spec.name = r.name.unwrap_or_default();
        }
        if given("ai_type", new_ai_type.is_some()) {
            let t = new_ai_type;
            // An endpoint left at the old type's default follows the type.
            if t.is_some()
                && spec.endpoint == old.ai_type.default_endpoint()
                && r.endpoint.is_none()
            {
                spec.endpoint = String::new();
            }
            spec.ai_type = t;
        }
        if given("endpoint", r.endpoint.is_some()) {
            spec.endpoint = r.endpoint.unwrap_or_default();
        }
        if given("key", r.key.is_some()) {
            spec.key = r.key;
        }
        let secret_given = r.secret.is_some();
        if given("secret", secret_given) {
            spec.secret = r.secret;
        }
        if given("credential_mode", new_mode.is_some()) {
            spec.credential_mode = new_mode.unwrap_or_default();
            if spec.credential_mode == CredentialMode::Passthrough
                && old.credential_mode == CredentialMode::Managed
            {
                // Switching to passthrough drops the stored credentials.
                spec.secret = None;
                spec.key = None;
            }
        }
        if given("routing_id", r.routing_id.is_some()) {
            spec.routing_id = r.routing_id.unwrap_or_default();
        }
        if given("environments", r.environments.is_some()) {
            spec.environments = r.environments.map(|l| l.values).unwrap_or_default();
        }
        if given("models", r.models.is_some()) {
            spec.models = r.models.map(|l| l.values).unwrap_or_default();
        }
        if given("region", r.region.is_some()) {
            spec.region = r.region.unwrap_or_default();
        }
        let c = check(spec, &ctx.validator)?;
        let was_own_identity = old.ai_type == AiType::Aws
            && old.credential_mode == CredentialMode::Managed
            && stored_key.is_none()
            && stored_secret.is_none();
        if c.uses_own_aws_identity()
            && (!was_own_identity || origin(&c.endpoint) != origin(&old.endpoint))
        {
            p.require_org_admin(OWN_IDENTITY)?;
        }
        // A stored secret is only ever sent to the host it was given for: moving a managed
        // connection to another origin needs the secret again in the same update.
        if c.credential_mode == CredentialMode::Managed
            && old.credential_mode == CredentialMode::Managed
            && !c.uses_own_aws_identity()
            && origin(&c.endpoint) != origin(&old.endpoint)
            && !given("secret", secret_given)
        {
            return Err(ApiError::invalid(
                "secret",
                format!(
                    "moving '{}' from {} to {} needs its secret again in the same update (tollgatectl: --secret-stdin, --secret-file or --secret-env), so a stored secret never goes to a host it was not given for",
                    old.name,
                    origin(&old.endpoint),
                    origin(&c.endpoint)
                ),
            )
            .into());
        }

        let same_key = ctx.same_credential(old, "key", c.key.as_deref())?;
        let same_secret = ctx.same_credential(old, "secret", c.secret.as_deref())?;
        let credentials_changed = !same_key
            || !same_secret
            || c.ai_type != old.ai_type
            || c.endpoint != old.endpoint
            || c.region != old.region
            || c.credential_mode != old.credential_mode;
        let unchanged = !credentials_changed
            && c.name == old.name
            && c.routing_id == old.routing_id
            && c.environments == old.environments
            && c.models == old.models;
        let refs = ctx.repo_refs().await?;
        let repo_refs = refs.get(&old.id).map_or(&[][..], |v| v);
        if unchanged {
            return Ok(Response::new(pb::UpdateAiLlmResponse {
                success: true,
                ai_llm: Some(ctx.llm_to_pb(&cur, repo_refs)),
            }));
        }
        let mut llm = old.clone();
        llm.name = c.name.clone();
        if c.ai_type != old.ai_type || c.endpoint != old.endpoint {
            llm.discovered_models.clear();
        }
        llm.ai_type = c.ai_type;
        llm.endpoint = c.endpoint;
        if !same_key {
            llm.key = c.key.as_deref().map(|k| ctx.seal(&rk, "key", k));
            llm.key_hint = hint(c.key.as_deref());
        }
        if !same_secret {
            llm.secret = c.secret.as_deref().map(|s| ctx.seal(&rk, "secret", s));
            llm.secret_hint = hint(c.secret.as_deref());
        }
        llm.credential_mode = c.credential_mode;
        llm.routing_id = c.routing_id.clone();
        llm.environments = c.environments;
        llm.models = c.models;
        llm.region = c.region;
        if credentials_changed {
            llm.validation_success = None;
            llm.last_validated_at = None;
            llm.validation_message = String::new();
        }
        llm.updated_at = now_ms();
        let route_guards = ctx.routes_still_served(old, &llm).await?;
        let ws = &old.workspace_id;
        let mut txn = Txn::new().when(rk.clone(), cur.revision);
        for (repo_key, revision) in route_guards {
            txn = txn.when(repo_key, revision);
        }
        if llm.name != old.name {
            let k = keys::llm_name(ws, &llm.name);
            txn = txn
                .when(k.clone(), 0)
                .put(k, old.id.clone())
                .delete(keys::llm_name(ws, &old.name));
        }
        if llm.routing_id != old.routing_id {
            let k = keys::llm_routing(ws, &llm.routing_id);
            txn = txn
                .when(k.clone(), 0)
                .put(k, old.id.clone())
                .delete(keys::llm_routing(ws, &old.routing_id));
        }
        txn = txn.put(rk, db::encode(&llm));
        let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
        if !resp.succeeded {
            return Err(ctx
                .conflict(ws, &llm.name, &llm.routing_id, &old.id)
                .await
                .into());
        }
        tracing::info!(llm = %old.id, by = %p.name, "AI LLM configuration updated");
        let v = Versioned {
            value: llm,
            revision: resp.revision,
        };
        Ok(Response::new(pb::UpdateAiLlmResponse {
            success: true,
            ai_llm: Some(ctx.llm_to_pb(&v, repo_refs)),
        }))
    }

    async fn delete_ai_llm(
        &self,
        req: Request<pb::DeleteAiLlmRequest>,
    ) -> Result<Response<pb::DeleteAiLlmResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .resolve::<AiLlm>(&p, "id", &r.id, &r.workspace_id, Access::Write)
            .await?;
        let llm = &cur.value;
        // Read before listing: an attach after this point changes it.
        let children = keys::children(&keys::llm(&llm.id));
        let children_rev = db::revision_of(ctx.store(), &children).await?;
        let repos: Vec<_> = db::list::<Repository>(ctx.store(), keys::REPOS)
            .await?
            .into_iter()
            .filter(|r| r.value.workspace_id == llm.workspace_id)
            .collect();
        let users: Vec<&str> = repos
            .iter()
            .filter(|r| r.value.ai_llm_ids.contains(&llm.id))
            .map(|r| r.value.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::FailedPrecondition(format!(
                "AI LLM configuration '{}' is used by repositories {}; detach it first (tollgatectl repo detach REPO {})",
                llm.name,
                users.join(", "),
                llm.name
            ))
            .into());
        }
        let txn = Txn::new()
            .when(keys::llm(&llm.id), cur.revision)
            .when(children.clone(), children_rev)
            .delete(keys::llm(&llm.id))
            .delete(keys::llm_name(&llm.workspace_id, &llm.name))
            .delete(keys::llm_routing(&llm.workspace_id, &llm.routing_id))
            .delete(children);
        db::commit(
            ctx.store(),
            txn,
            "the configuration changed or was attached to a repository meanwhile; retry",
        )
        .await?;
        tracing::info!(llm = %llm.id, by = %p.name, "AI LLM configuration deleted");
        Ok(Response::new(pb::DeleteAiLlmResponse { success: true }))
    }

    async fn validate_ai_llm(
        &self,
        req: Request<pb::ValidateAiLlmRequest>,
    ) -> Result<Response<pb::ValidateAiLlmResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .resolve::<AiLlm>(&p, "id", &r.id, &r.workspace_id, Access::Write)
            .await?;
        let llm = &cur.value;
        let outcome = if llm.credential_mode == CredentialMode::Passthrough {
            validate::ValidationOutcome {
                success: true,
                message: "passthrough connection: each request brings the provider key, which is checked on first use".into(),
                models: vec![],
            }
        } else {
            let key = ctx.open_credential(llm, "key")?;
            let secret = ctx.open_credential(llm, "secret")?;
            ctx.validator
                .validate(ValidationRequest {
                    ai_type: llm.ai_type,
                    endpoint: &llm.endpoint,
                    key: key.as_ref().map(|s| s.expose()),
                    secret: secret.as_ref().map(|s| s.expose()),
                    region: Some(llm.region.as_str()).filter(|s| !s.is_empty()),
                    model: llm.models.first().map(String::as_str),
                })
                .await
        };
        // Store the result on the latest version; an edit meanwhile is kept.
        let mut stored = None;
        for _ in 0..5 {
            let Some(mut latest) = db::get::<AiLlm>(ctx.store(), &keys::llm(&llm.id)).await? else {
                return Err(ApiError::NotFound(format!(
                    "AI LLM configuration '{}' was deleted during validation",
                    llm.name
                ))
                .into());
            };
            latest.value.last_validated_at = Some(now_ms());
            latest.value.validation_success = Some(outcome.success);
            latest.value.validation_message = outcome.message.clone();
            if outcome.success && !outcome.models.is_empty() {
                latest.value.discovered_models = outcome.models.clone();
            }
            let txn = Txn::new()
                .when(keys::llm(&llm.id), latest.revision)
                .put(keys::llm(&llm.id), db::encode(&latest.value));
            let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
            if resp.succeeded {
                latest.revision = resp.revision;
                stored = Some(latest);
                break;
            }
        }
        let stored = stored.ok_or_else(|| {
            ApiError::Aborted("the configuration kept changing during validation; retry".into())
        })?;
        tracing::info!(llm = %llm.id, success = outcome.success, "AI LLM configuration validated");
        let refs = ctx.repo_refs().await?;
        Ok(Response::new(pb::ValidateAiLlmResponse {
            success: outcome.success,
            message: outcome.message,
            discovered_models: outcome.models,
            ai_llm: Some(ctx.llm_to_pb(&stored, refs.get(&llm.id).map_or(&[], |v| v))),
        }))
    }

    async fn get_ai_llm_stats(
        &self,
        req: Request<pb::GetAiLlmStatsRequest>,
    ) -> Result<Response<pb::GetAiLlmStatsResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let llms = if r.ai_llm_id.trim().is_empty() {
            ctx.visible_llms(&p, &r.workspace_id).await?
        } else {
            vec![
                ctx.resolve::<AiLlm>(&p, "ai_llm_id", &r.ai_llm_id, &r.workspace_id, Access::Read)
                    .await?,
            ]
        };
        let mut stats = Vec::with_capacity(llms.len());
        for l in &llms {
            stats.push(super::stats::llm_stats(ctx, &l.value).await?);
        }
        Ok(Response::new(pb::GetAiLlmStatsResponse { stats }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_endpoints() {
        let check = |e: &str, want: Option<&str>| {
            assert_eq!(region_from_endpoint(e).as_deref(), want, "{e}");
        };
        check(
            "https://bedrock-runtime.eu-west-1.amazonaws.com",
            Some("eu-west-1"),
        );
        check(
            "https://bedrock-runtime.us-east-1.amazonaws.com/",
            Some("us-east-1"),
        );
        check(
            "https://bedrock.ap-south-1.amazonaws.com:443/x",
            Some("ap-south-1"),
        );
        check("https://proxy.internal/bedrock", None);
        check("https://api.openai.com/v1", None);
    }

    fn validator() -> validate::Validator {
        validate::Validator::new(std::time::Duration::from_secs(1), false)
    }

    fn spec() -> Spec {
        Spec {
            name: "Prod OpenAI".into(),
            ai_type: Some(AiType::Openai),
            secret: Some("sk-test-1234567890".into()),
            ..Spec::default()
        }
    }

    #[test]
    fn aws_endpoint_follows_the_region() {
        let aws = |endpoint: &str, region: &str| {
            check(
                Spec {
                    ai_type: Some(AiType::Aws),
                    key: Some("AKIAEXAMPLE".into()),
                    endpoint: endpoint.into(),
                    region: region.into(),
                    ..spec()
                },
                &validator(),
            )
            .map(|c| (c.endpoint, c.region))
        };
        let (endpoint, region) = aws("", "eu-west-1").expect("region only");
        assert_eq!(
            (endpoint.as_str(), region.as_str()),
            (
                "https://bedrock-runtime.eu-west-1.amazonaws.com",
                "eu-west-1"
            )
        );
        let (_, region) = aws("", "").expect("defaults");
        assert_eq!(region, "us-east-1");
        match aws(
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "eu-west-1",
        ) {
            Err(ApiError::InvalidArgument { field, .. }) => assert_eq!(field, "region"),
            other => panic!("a region mismatch must be refused: {:?}", other.map(|_| ())),
        }
        let (_, region) = aws("https://proxy.internal/bedrock", "eu-west-1").expect("proxy");
        assert_eq!(region, "eu-west-1");
    }

    #[test]
    fn defaults() {
        let c = check(spec(), &validator()).unwrap();
        assert_eq!(c.endpoint, "https://api.openai.com/v1");
        assert_eq!(c.routing_id, "prod-openai");
        assert!(c.environments.is_empty(), "active nowhere until given");
    }

    #[test]
    fn rejections_name_the_field() {
        let field_of = |s: Spec| match check(s, &validator()) {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("expected invalid argument, got {:?}", other.err()),
        };
        assert_eq!(
            field_of(Spec {
                name: "".into(),
                ..spec()
            }),
            "name"
        );
        assert_eq!(
            field_of(Spec {
                ai_type: None,
                ..spec()
            }),
            "ai_type"
        );
        assert_eq!(
            field_of(Spec {
                endpoint: "ftp://x".into(),
                ..spec()
            }),
            "endpoint"
        );
        assert_eq!(
            field_of(Spec {
                endpoint: "not a url".into(),
                ..spec()
            }),
            "endpoint"
        );
        assert_eq!(
            field_of(Spec {
                secret: None,
                ..spec()
            }),
            "secret"
        );
        assert_eq!(
            field_of(Spec {
                credential_mode: CredentialMode::Passthrough,
                ..spec()
            }),
            "secret"
        );
        assert_eq!(
            field_of(Spec {
                routing_id: "Bad Id".into(),
                ..spec()
            }),
            "routing_id"
        );
        assert_eq!(
            field_of(Spec {
                region: "us-east-1".into(),
                ..spec()
            }),
            "region"
        );
        assert_eq!(
            field_of(Spec {
                ai_type: Some(AiType::Aws),
                key: Some("AKIA".into()),
                endpoint: "https://proxy.local".into(),
                ..spec()
            }),
            "region"
        );
        // A secret access key without its id; a Bedrock API key alone is fine.
        assert_eq!(
            field_of(Spec {
                ai_type: Some(AiType::Aws),
                secret: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
                ..spec()
            }),
            "key"
        );
        let api_key = check(
            Spec {
                ai_type: Some(AiType::Aws),
                secret: Some(format!("ABSK{}", "QmVkcm9ja0FQSUtleS".repeat(6))),
                ..spec()
            },
            &validator(),
        )
        .expect("a Bedrock API key alone");
        assert!(api_key.key.is_none());
        // With an access key id, the API key would be used to sign: refused.
        assert_eq!(
            field_of(Spec {
                ai_type: Some(AiType::Aws),
                key: Some("AKIAEXAMPLE".into()),
                secret: Some("ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl".into()),
                ..spec()
            }),
            "key"
        );
        assert_eq!(
            field_of(Spec {
                models: vec!["a b".into()],
                ..spec()
            }),
            "models"
        );
    }
}

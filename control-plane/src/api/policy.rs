//! `PolicyService`: governance rules scoped to the organization, a workspace or a repository
//! (lower scopes add to higher ones), and the violation and alert listings.

use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::policy_service_server::PolicyService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, input, new_id};
use crate::auth::{Access, Principal};
use crate::db::{self, Versioned};
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::{
    AiLlm, CredentialMode, PiiKind, Policy, PolicyRules, Repository, Violation, now_ms,
};
use crate::store::Txn;

pub struct Service(pub Arc<Ctx>);

fn to_pb(v: &Versioned<Policy>, org_id: &str) -> pb::Policy {
    let x = &v.value;
    pb::Policy {
        id: x.id.clone(),
        org_id: org_id.to_string(),
        workspace_id: x.workspace_id.clone().unwrap_or_default(),
        repository_id: x.repository_id.clone().unwrap_or_default(),
        name: x.name.clone(),
        content: x.content.clone(),
        risk_type: convert::risk_to_pb(x.risk_type) as i32,
        action: convert::action_to_pb(x.action) as i32,
        enabled: x.enabled,
        created_at: convert::ts(x.created_at),
        updated_at: convert::ts(x.updated_at),
        created_by: x.created_by.clone(),
        last_updated_by: x.last_updated_by.clone(),
        version: v.revision,
        rules: Some(rules_to_pb(&x.rules)),
    }
}

/// The rules on the wire: the admin API's answer and the data planes' sync resource alike.
pub fn rules_to_pb(r: &PolicyRules) -> pb::PolicyRules {
    pb::PolicyRules {
        patterns: r.patterns.clone(),
        pii: r
            .pii
            .iter()
            .map(|k| convert::pii_to_pb(*k) as i32)
            .collect(),
        secrets: r.secrets,
        allowed_models: r.allowed_models.clone(),
        denied_models: r.denied_models.clone(),
        max_input_chars: r.max_input_chars,
        max_output_tokens: r.max_output_tokens,
        judge_ai_llm_id: r.judge_ai_llm_id.clone(),
        judge_model: r.judge_model.clone(),
        max_requests_per_minute: r.max_requests_per_minute,
        judge_fail_closed: r.judge_fail_closed,
    }
}

/// Most patterns, model names per list, and bytes per pattern or name, in one policy.
const MAX_RULE_ITEMS: usize = 64;
const MAX_RULE_LEN: usize = 1024;
/// Largest compiled size of one policy's patterns (the data plane compiles them with the
/// same limit, so a pattern accepted here is never rejected there).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Checks `r` as the data planes will use it: patterns compile within the size limit, PII
/// kinds are known, model names are names (a `*` only at the end).
fn rules(field: &str, r: &pb::PolicyRules) -> ApiResult<PolicyRules> {
    let list = |name: &str, items: &[String]| -> ApiResult<Vec<String>> {
        let f = format!("{field}.{name}");
        if items.len() > MAX_RULE_ITEMS {
            return Err(ApiError::invalid(
                &f,
                format!("at most {MAX_RULE_ITEMS} entries"),
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if item.trim().is_empty() || item.len() > MAX_RULE_LEN {
                return Err(ApiError::invalid(
                    &format!("{f}[{i}]"),
                    format!("entries are non-empty and at most {MAX_RULE_LEN} bytes"),
                ));
            }
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        Ok(out)
    };
    let patterns = list("patterns", &r.patterns)?;
    if !patterns.is_empty() {
        regex::RegexSetBuilder::new(&patterns)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // Name the pattern that fails on its own, when one does.
                let which = patterns.iter().position(|p| {
                    regex::RegexBuilder::new(p)
                        .size_limit(PATTERN_SIZE_LIMIT)
                        .build()
                        .is_err()
                });
                let f = match which {
                    Some(i) => format!("{field}.patterns[{i}]"),
                    None => format!("{field}.patterns"),
                };
                ApiError::invalid(&f, format!("not a usable regular expression: {e}"))
            })?;
    }
    let models = |name: &str, items: &[String]| -> ApiResult<Vec<String>> {
        let items = list(name, items)?;
        for (i, m) in items.iter().enumerate() {
            if m.trim() != m || m.trim_end_matches('*').contains('*') {
                return Err(ApiError::invalid(
                    &format!("{field}.{name}[{i}]"),
                    "a model name, without surrounding spaces; a `*` only at the end matches a prefix",
                ));
            }
        }
        Ok(items)
    };
    let mut pii = Vec::with_capacity(r.pii.len());
    for (i, k) in r.pii.iter().enumerate() {
        let kind = match pb::PiiKind::try_from(*k) {
            Ok(pb::PiiKind::Email) => PiiKind::Email,
            Ok(pb::PiiKind::Phone) => PiiKind::Phone,
            Ok(pb::PiiKind::CreditCard) => PiiKind::CreditCard,
            Ok(pb::PiiKind::UsSsn) => PiiKind::UsSsn,
            Ok(pb::PiiKind::Iban) => PiiKind::Iban,
            Ok(pb::PiiKind::IpAddress) => PiiKind::IpAddress,
            Ok(pb::PiiKind::Unspecified) | Err(_) => {
                return Err(ApiError::invalid(
                    &format!("{field}.pii[{i}]"),
                    format!(
                        "unknown kind {k}; use EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN or IP_ADDRESS"
                    ),
                ));
            }
        };
        if !pii.contains(&kind) {
            pii.push(kind);
        }
    }
    Ok(PolicyRules {
        patterns,
        pii,
        secrets: r.secrets,
        allowed_models: models("allowed_models", &r.allowed_models)?,
        denied_models: models("denied_models", &r.denied_models)?,
        max_input_chars: r.max_input_chars,
        max_output_tokens: r.max_output_tokens,
        judge_ai_llm_id: r.judge_ai_llm_id.trim().to_string(),
        judge_model: r.judge_model.trim().to_string(),
        max_requests_per_minute: r.max_requests_per_minute,
        judge_fail_closed: r.judge_fail_closed,
    })
}

/// Longest policy content, and prompt of a recommendation.
const MAX_CONTENT: usize = 32 * 1024;

fn content(field: &str, v: &str) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(
            field,
            "the policy content is required: what is prohibited or required, why, examples, exceptions",
        ));
    }
    if v.len() > MAX_CONTENT {
        return Err(ApiError::invalid(
            field,
            "the policy content has at most 32 KiB",
        ));
    }
    Ok(v.to_string())
}

impl Ctx {
    /// Checks a judge and stores its configuration by id: a configuration with managed
    /// credentials (the gateway calls it itself), in the policy's workspace (any the caller
    /// can read for an organization policy), and a model.
    async fn judge(
        &self,
        p: &Principal,
        rules: &mut PolicyRules,
        workspace: Option<&str>,
    ) -> ApiResult<()> {
        let (llm, model) = (&rules.judge_ai_llm_id, &rules.judge_model);
        match (llm.is_empty(), model.is_empty()) {
            (true, true) if rules.judge_fail_closed => {
                return Err(ApiError::invalid(
                    "rules.judge_fail_closed",
                    "fails closed applies to a judge; give the policy a judge (its configuration and model) or leave it out",
                ));
            }
            (true, true) => return Ok(()),
            (false, false) => {}
            (true, false) => {
                return Err(ApiError::invalid(
                    "rules.judge_ai_llm_id",
                    "a judge needs its AI LLM configuration as well as its model",
                ));
            }
            (false, true) => {
                return Err(ApiError::invalid(
                    "rules.judge_model",
                    "a judge needs the model it asks, as well as its configuration",
                ));
            }
        }
        if model.len() > 256 {
            return Err(ApiError::invalid("rules.judge_model", "at most 256 bytes"));
        }
        let found = self
            .resolve::<AiLlm>(
                p,
                "rules.judge_ai_llm_id",
                llm,
                workspace.unwrap_or(""),
                Access::Read,
            )
            .await?
            .value;
        if workspace.is_some_and(|ws| ws != found.workspace_id) {
            return Err(ApiError::invalid(
                "rules.judge_ai_llm_id",
                format!(
                    "the judge '{}' is in another workspace; use a configuration of the policy's workspace",
                    found.name
                ),
            ));
        }
        if found.credential_mode == CredentialMode::Passthrough {
            return Err(ApiError::invalid(
                "rules.judge_ai_llm_id",
                format!(
                    "the judge '{}' uses the caller's provider keys; a judge needs stored credentials",
                    found.name
                ),
            ));
        }
        rules.judge_ai_llm_id = found.id;
        Ok(())
    }

    fn require_policy(
        &self,
        p: &Principal,
        x: &Policy,
        ws_name: &str,
        need: Access,
    ) -> ApiResult<()> {
        match &x.workspace_id {
            None if need == Access::Read => Ok(()),
            None => p.require_org_admin("changing an organization policy"),
            Some(ws) => p.require(ws, ws_name, need),
        }
    }

    /// A policy by id, else by name: in workspace `workspace_hint` when given, else among
    /// the organization's policies and those of every workspace the caller can read. A name
    /// found at more than one scope is an error naming each, never a silent pick.
    async fn policy(
        &self,
        p: &Principal,
        id_or_name: &str,
        workspace_hint: &str,
        need: Access,
    ) -> ApiResult<Versioned<Policy>> {
        let x = id_or_name.trim();
        let found = match db::get::<Policy>(self.store(), &keys::policy(x)).await? {
            Some(v) => v,
            None => {
                let org = if workspace_hint.trim().is_empty() {
                    match db::get_string(self.store(), &keys::policy_name(None, x)).await? {
                        Some(id) => db::get::<Policy>(self.store(), &keys::policy(&id)).await?,
                        None => None,
                    }
                } else {
                    None
                };
                let in_workspace = match self
                    .resolve::<Policy>(p, "id", x, workspace_hint, Access::Read)
                    .await
                {
                    Ok(found) => Some(found),
                    Err(ApiError::NotFound(_)) if org.is_some() => None,
                    Err(e) => return Err(e),
                };
                match (org, in_workspace) {
                    (Some(o), Some(w)) => {
                        let ws = w.value.workspace_id.clone().unwrap_or_default();
                        return Err(ApiError::invalid(
                            "id",
                            format!(
                                "policy name '{x}' is both an organization policy ({}) and a policy of workspace '{}' ({}); name the organization policy by its id, the workspace's by the workspace",
                                o.value.id,
                                self.workspace_name(&ws).await,
                                w.value.id
                            ),
                        ));
                    }
                    (Some(f), None) | (None, Some(f)) => f,
                    (None, None) => unreachable!("resolve found nothing and said so"),
                }
            }
        };
        let ws_name = match &found.value.workspace_id {
            Some(ws) => self.workspace_name(ws).await,
            None => String::new(),
        };
        self.require_policy(p, &found.value, &ws_name, need)?;
        Ok(found)
    }
}

#[tonic::async_trait]
impl PolicyService for Service {
    async fn create_policy(
        &self,
        req: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let (workspace, repo) = if !r.repository_id.trim().is_empty() {
            let repo = ctx
                .resolve::<Repository>(
                    &p,
                    "repository_id",
                    &r.repository_id,
                    &r.workspace_id,
                    Access::Write,
                )
                .await?;
            let ws = ctx
                .workspace(&p, &repo.value.workspace_id, Access::Write)
                .await?;
            (Some(ws), Some(repo.value.id))
        } else if !r.workspace_id.trim().is_empty() {
            (
                Some(ctx.workspace(&p, &r.workspace_id, Access::Write).await?),
                None,
            )
        } else {
            p.require_org_admin("creating an organization policy")?;
            (None, None)
        };
        let name = input::name("name", &r.name)?;
        let risk_type = convert::risk("risk_type", r.risk_type)?.ok_or_else(|| {
            ApiError::invalid("risk_type", "a risk type is required: LOW, MEDIUM or HIGH")
        })?;
        let action = convert::action("action", r.action)?.ok_or_else(|| {
            ApiError::invalid("action", "an action is required: LOG, ALERT or BLOCK")
        })?;
        let now = now_ms();
        let ws_id = workspace.as_ref().map(|w| w.value.id.clone());
        let mut policy = Policy {
            id: new_id("pol"),
            workspace_id: ws_id.clone(),
            repository_id: repo,
            name: name.clone(),
            content: content("content", &r.content)?,
            risk_type,
            action,
            enabled: r.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
            created_by: p.name.clone(),
            last_updated_by: p.name.clone(),
            rules: match &r.rules {
                Some(x) => rules("rules", x)?,
                None => PolicyRules::default(),
            },
        };
        ctx.judge(&p, &mut policy.rules, ws_id.as_deref()).await?;
        let name_key = keys::policy_name(ws_id.as_deref(), &name);
        let mut txn = Txn::new().when(name_key.clone(), 0);
        if let Some(ws) = &workspace {
            txn = txn
                .when(keys::workspace(&ws.value.id), ws.revision)
                .put(keys::children(&keys::workspace(&ws.value.id)), Vec::new());
        }
        txn = txn
            .put(name_key.clone(), policy.id.clone())
            .put(keys::policy(&policy.id), db::encode(&policy));
        let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
        if !resp.succeeded {
            return Err(ctx
                .name_conflict(
                    &name_key,
                    &format!("a policy named '{name}' already exists in this scope"),
                )
                .await
                .into());
        }
        Ok(Response::new(to_pb(
            &Versioned {
                value: policy,
                revision: resp.revision,
            },
            &ctx.org_id,
        )))
    }

    async fn list_policies(
        &self,
        req: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let ws = if r.workspace_id.trim().is_empty() {
            None
        } else {
            Some(
                ctx.workspace(&p, &r.workspace_id, Access::Read)
                    .await?
                    .value
                    .id,
            )
        };
        let repo = if r.repository_id.trim().is_empty() {
            None
        } else {
            Some(
                ctx.resolve::<Repository>(
                    &p,
                    "repository_id",
                    &r.repository_id,
                    &r.workspace_id,
                    Access::Read,
                )
                .await?
                .value,
            )
        };
        let mut list: Vec<_> = db::list::<Policy>(ctx.store(), keys::POLICIES)
            .await?
            .into_iter()
            .filter(|x| match &x.value.workspace_id {
                None => true,
                Some(w) => p.can(w, Access::Read),
            })
            // With a scope filter: the policies that apply there (higher scopes add to it).
            .filter(|x| match (&ws, &x.value.workspace_id) {
                (Some(w), Some(xw)) => w == xw,
                _ => true,
            })
            .filter(|x| match (&repo, &x.value.repository_id) {
                (Some(r), Some(xr)) => &r.id == xr,
                (Some(r), None) => x
                    .value
                    .workspace_id
                    .as_ref()
                    .is_none_or(|w| w == &r.workspace_id),
                (None, _) => true,
            })
            .collect();
        list.sort_by(|a, b| a.value.name.cmp(&b.value.name));
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: list.iter().map(|x| to_pb(x, &ctx.org_id)).collect(),
        }))
    }

    async fn get_policy(
        &self,
        req: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let x = ctx.policy(&p, &r.id, &r.workspace_id, Access::Read).await?;
        Ok(Response::new(to_pb(&x, &ctx.org_id)))
    }

    async fn update_policy(
        &self,
        req: Request<pb::UpdatePolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .policy(&p, &r.id, &r.workspace_id, Access::Write)
            .await?;
        if r.expected_version != 0 && r.expected_version != cur.revision {
            return Err(ApiError::Aborted(format!(
                "policy '{}' is at version {}, not {}: get it again and retry",
                cur.value.name, cur.revision, r.expected_version
            ))
            .into());
        }
        let mut x = cur.value.clone();
        if let Some(n) = &r.name {
            x.name = input::name("name", n)?;
        }
        if let Some(c) = &r.content {
            x.content = content("content", c)?;
        }
        if let Some(risk) = convert::risk("risk_type", r.risk_type)? {
            x.risk_type = risk;
        }
        if let Some(a) = convert::action("action", r.action)? {
            x.action = a;
        }
        if let Some(e) = r.enabled {
            x.enabled = e;
        }
        if let Some(rl) = &r.rules {
            x.rules = rules("rules", rl)?;
            ctx.judge(&p, &mut x.rules, x.workspace_id.as_deref())
                .await?;
        }
        if x == cur.value {
            return Ok(Response::new(to_pb(&cur, &ctx.org_id)));
        }
        x.updated_at = now_ms();
        x.last_updated_by = p.name.clone();
        let ws = x.workspace_id.clone();
        let mut txn = Txn::new().when(keys::policy(&x.id), cur.revision);
        if x.name != cur.value.name {
            let k = keys::policy_name(ws.as_deref(), &x.name);
            txn = txn
                .when(k.clone(), 0)
                .put(k, x.id.clone())
                .delete(keys::policy_name(ws.as_deref(), &cur.value.name));
        }
        txn = txn.put(keys::policy(&x.id), db::encode(&x));
        let resp = ctx.store().txn(txn).await.map_err(ApiError::from)?;
        if !resp.succeeded {
            let name_key = keys::policy_name(ws.as_deref(), &x.name);
            let taken = x.name != cur.value.name
                && matches!(db::get_string(ctx.store(), &name_key).await, Ok(Some(id)) if id != x.id);
            return Err(if taken {
                ApiError::AlreadyExists(format!(
                    "a policy named '{}' already exists in this scope; pick another name",
                    x.name
                ))
            } else {
                ApiError::Aborted(format!(
                    "policy '{}' changed at the same time; get it again and retry",
                    cur.value.name
                ))
            }
            .into());
        }
        Ok(Response::new(to_pb(
            &Versioned {
                value: x,
                revision: resp.revision,
            },
            &ctx.org_id,
        )))
    }

    async fn delete_policy(
        &self,
        req: Request<pb::DeletePolicyRequest>,
    ) -> Result<Response<pb::DeletePolicyResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let cur = ctx
            .policy(&p, &r.id, &r.workspace_id, Access::Write)
            .await?;
        let x = &cur.value;
        let txn = Txn::new()
            .when(keys::policy(&x.id), cur.revision)
            .delete(keys::policy(&x.id))
            .delete(keys::policy_name(x.workspace_id.as_deref(), &x.name));
        db::commit(ctx.store(), txn, "the policy changed meanwhile; retry").await?;
        Ok(Response::new(pb::DeletePolicyResponse { success: true }))
    }

    async fn list_policy_violations(
        &self,
        req: Request<pb::ListPolicyViolationsRequest>,
    ) -> Result<Response<pb::ListPolicyViolationsResponse>, Status> {
        let p = self.0.auth(&req).await?;
        Ok(Response::new(
            violations(&self.0, &p, req.get_ref(), false).await?,
        ))
    }

    async fn list_alerts(
        &self,
        req: Request<pb::ListPolicyViolationsRequest>,
    ) -> Result<Response<pb::ListPolicyViolationsResponse>, Status> {
        let p = self.0.auth(&req).await?;
        Ok(Response::new(
            violations(&self.0, &p, req.get_ref(), true).await?,
        ))
    }

    async fn test_policy(
        &self,
        req: Request<pb::TestPolicyRequest>,
    ) -> Result<Response<pb::TestPolicyResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let x = ctx
            .policy(&p, &r.id, &r.workspace_id, Access::Read)
            .await?
            .value;
        Ok(Response::new(test(&x, r)?))
    }

    async fn review_policy(
        &self,
        req: Request<pb::ReviewPolicyRequest>,
    ) -> Result<Response<pb::PolicyReview>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        let content = match (r.policy_id.trim().is_empty(), r.content.trim().is_empty()) {
            (false, true) => {
                ctx.policy(&p, &r.policy_id, &r.policy_workspace_id, Access::Read)
                    .await?
                    .value
                    .content
            }
            (true, false) => content("content", &r.content)?,
            _ => {
                return Err(ApiError::invalid(
                    "content",
                    "review either a stored policy (policy_id) or a text (content), one of the two",
                )
                .into());
            }
        };
        let assistant = ctx.assistant(&p, r.assistant.as_ref()).await?;
        Ok(Response::new(ctx.review(&assistant, &content).await?))
    }

    async fn recommend_policies(
        &self,
        req: Request<pb::RecommendPoliciesRequest>,
    ) -> Result<Response<pb::RecommendPoliciesResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.get_ref();
        if r.prompt.trim().is_empty() || r.prompt.len() > MAX_CONTENT {
            return Err(ApiError::invalid(
                "prompt",
                "describe what the policies should prevent or require (at most 32 KiB)",
            )
            .into());
        }
        let assistant = ctx.assistant(&p, r.assistant.as_ref()).await?;
        Ok(Response::new(
            ctx.recommend(&assistant, &r.prompt, r.count).await?,
        ))
    }
}

/// Runs `x`'s rules on the sample of `r` with the data planes' own code.
fn test(x: &Policy, r: &pb::TestPolicyRequest) -> ApiResult<pb::TestPolicyResponse> {
    use std::sync::Arc;
    use tollgate_data_plane::policy::{self as dp, Entry, PolicySet, Subject};

    if r.text.len() > 1024 * 1024 {
        return Err(ApiError::invalid("text", "a sample has at most 1 MiB"));
    }
    let rules = &x.rules;
    let model = r.model.trim();
    if model.is_empty() && !(rules.allowed_models.is_empty() && rules.denied_models.is_empty()) {
        return Err(ApiError::invalid(
            "model",
            "this policy has model rules: give the model the request would ask for",
        ));
    }
    // The budget is left out: a test must not spend (or be refused by) a real key's budget.
    let mut synced = crate::sync::synced_policy(x);
    if let Some(rules) = &mut synced.rules {
        rules.max_requests_per_minute = 0;
        rules.judge_ai_llm_id.clear();
        rules.judge_model.clear();
        rules.judge_fail_closed = false;
    }
    let compiled = dp::Policy::try_from(synced).map_err(|e| {
        ApiError::Internal(format!(
            "the policy does not compile as data planes compile it: {}",
            e.reason
        ))
    })?;
    let set = PolicySet::new(vec![Entry {
        policy: Arc::new(compiled),
        judge: None,
    }]);
    let mut body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": r.text}],
    });
    if r.max_tokens > 0 {
        body["max_tokens"] = r.max_tokens.into();
    }
    let body = body.to_string();
    let key: Arc<str> = Arc::from("policy-test");
    let hit = set
        .evaluate(&Subject {
            model,
            candidates: &[],
            key_id: &key,
            body: body.as_bytes(),
        })
        .into_iter()
        .next();
    let mut not_tested = Vec::new();
    if !rules.judge_ai_llm_id.is_empty() {
        not_tested.push("the LLM judge (tests do not call models)".to_string());
    }
    if rules.max_requests_per_minute > 0 {
        not_tested.push("the request budget (per API key, over time)".to_string());
    }
    Ok(pb::TestPolicyResponse {
        fired: hit.is_some(),
        explanation: hit.map(|h| h.explanation).unwrap_or_default(),
        not_tested,
    })
}

/// Violations (or alerts) the caller can see, newest first, paged. No access gives an empty
/// list, not an error, as the product does.
async fn violations(
    ctx: &Ctx,
    p: &Principal,
    r: &pb::ListPolicyViolationsRequest,
    alerts: bool,
) -> ApiResult<pb::ListPolicyViolationsResponse> {
    let take = if r.take == 0 { 25 } else { r.take };
    if take > 100 {
        return Err(ApiError::invalid("take", "take is at most 100"));
    }
    let severity = convert::risk("severity", r.severity)?;
    let model_type = convert::ai_type("model_type", r.model_type)?;
    let from = r.from.as_ref().map(convert::from_ts).unwrap_or(i64::MIN);
    let to = r.to.as_ref().map(convert::from_ts).unwrap_or(i64::MAX);
    // Filters take ids or names. One the caller may not read gives an empty list, as the
    // product does; one that does not exist is NOT_FOUND (a typo is not "no violations").
    let empty = || pb::ListPolicyViolationsResponse {
        violations: Vec::new(),
        total: 0,
    };
    let given = |s: &str| !s.trim().is_empty();
    let workspace = if given(&r.workspace_id) {
        match ctx.workspace(p, &r.workspace_id, Access::Read).await {
            Ok(ws) => Some(ws.value.id),
            Err(ApiError::PermissionDenied(_)) => return Ok(empty()),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let repository = if given(&r.repository_id) {
        match ctx
            .resolve::<Repository>(
                p,
                "repository_id",
                &r.repository_id,
                &r.workspace_id,
                Access::Read,
            )
            .await
        {
            Ok(repo) => Some(repo.value.id),
            Err(ApiError::PermissionDenied(_)) => return Ok(empty()),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let policy = if given(&r.policy_id) {
        // Not narrowed to the workspace filter: an organization policy fires in every
        // workspace, and its events are listed under each.
        match ctx.policy(p, &r.policy_id, "", Access::Read).await {
            Ok(x) => Some(x.value.id),
            Err(ApiError::PermissionDenied(_)) => return Ok(empty()),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    // Events are kept per workspace in time order: only the workspaces asked for (else
    // those the caller can read) are read, and only their stretch of the time range.
    let workspaces: Vec<String> = match &workspace {
        Some(ws) => vec![ws.clone()],
        None => ctx
            .workspaces()
            .await?
            .into_iter()
            .map(|w| w.value.id)
            .filter(|ws| p.can(ws, Access::Read))
            .collect(),
    };
    let mut read = Vec::new();
    for ws in &workspaces {
        let (start, end) = keys::violation_range(ws, from, to);
        read.extend(db::list_range::<Violation>(ctx.store(), &start, &end).await?);
    }
    let mut all: Vec<Violation> = read
        .into_iter()
        .filter(|v| p.can(&v.workspace_id, Access::Read))
        .filter(|v| !alerts || v.message.is_some())
        .filter(|v| workspace.as_ref().is_none_or(|w| &v.workspace_id == w))
        .filter(|v| repository.as_ref().is_none_or(|x| &v.repository_id == x))
        .filter(|v| policy.as_ref().is_none_or(|x| &v.policy_id == x))
        .filter(|v| r.model.is_empty() || v.model == r.model)
        .filter(|v| severity.is_none_or(|s| v.severity == s))
        .filter(|v| r.blocked.is_none_or(|b| v.blocked == b))
        .filter(|v| model_type.is_none_or(|t| v.model_type == Some(t)))
        .filter(|v| r.host.is_empty() || v.host == r.host)
        .filter(|v| v.time >= from && v.time < to)
        .collect();
    all.sort_by_key(|v| std::cmp::Reverse(v.time));
    let total = all.len() as u64;
    let violations = all
        .into_iter()
        .skip(r.skip as usize)
        .take(take as usize)
        .map(|v| pb::PolicyViolation {
            id: v.id,
            policy_id: v.policy_id,
            policy_name: v.policy_name,
            time: convert::ts(v.time),
            explanation: v.explanation,
            workspace_id: v.workspace_id,
            repository_id: v.repository_id,
            api_key_id: v.api_key_id,
            severity: convert::risk_to_pb(v.severity) as i32,
            blocked: v.blocked,
            model_type: v
                .model_type
                .map(|t| convert::ai_type_to_pb(t) as i32)
                .unwrap_or(0),
            model: v.model,
            host: v.host,
            message: v.message.unwrap_or_default(),
        })
        .collect();
    Ok(pb::ListPolicyViolationsResponse { violations, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: pb::PolicyRules) -> String {
        match rules("rules", &r) {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn rules_are_checked_as_data_planes_use_them() {
        let ok = rules(
            "rules",
            &pb::PolicyRules {
                patterns: vec!["(?i)falcon".into(), "(?i)falcon".into()],
                pii: vec![pb::PiiKind::Email as i32, pb::PiiKind::Email as i32],
                secrets: true,
                allowed_models: vec!["gpt-4o*".into()],
                denied_models: vec!["gpt-4o-audio-preview".into()],
                max_input_chars: 10,
                max_output_tokens: 20,
                ..Default::default()
            },
        )
        .expect("valid");
        // Duplicates dropped, order kept.
        assert_eq!(ok.patterns, ["(?i)falcon"]);
        assert_eq!(ok.pii, [PiiKind::Email]);
        assert!(!ok.is_empty());
        assert!(
            rules("rules", &pb::PolicyRules::default())
                .expect("empty")
                .is_empty()
        );

        let pattern = |p: Vec<&str>| pb::PolicyRules {
            patterns: p.into_iter().map(String::from).collect(),
            ..Default::default()
        };
        assert_eq!(
            field_of(pattern(vec!["ok", "(unclosed"])),
            "rules.patterns[1]"
        );
        assert_eq!(field_of(pattern(vec![" "])), "rules.patterns[0]");
        // Too large to compile within the data planes' limit.
        assert_eq!(
            field_of(pattern(vec![r"\w{1000}{1000}"])),
            "rules.patterns[0]"
        );
        assert_eq!(
            field_of(pattern((0..65).map(|_| "x").collect())),
            "rules.patterns"
        );
        assert_eq!(
            field_of(pb::PolicyRules {
                pii: vec![pb::PiiKind::Phone as i32, 99],
                ..Default::default()
            }),
            "rules.pii[1]"
        );
        assert_eq!(
            field_of(pb::PolicyRules {
                denied_models: vec!["gpt-*-mini".into()],
                ..Default::default()
            }),
            "rules.denied_models[0]"
        );
        assert_eq!(
            field_of(pb::PolicyRules {
                allowed_models: vec![" gpt-4o".into()],
                ..Default::default()
            }),
            "rules.allowed_models[0]"
        );
    }
}

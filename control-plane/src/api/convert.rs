//! Domain records to wire messages and wire enums to domain enums, at the service edge.

use prost_types::Timestamp;
use tollgate_proto::admin as pb;

use crate::error::{ApiError, ApiResult};
use crate::model::{
    self, AiType, CredentialMode, Millis, PiiKind, PolicyAction, RiskType, Role, RouteStrategy,
};

pub fn ts(ms: Millis) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub fn opt_ts(ms: Option<Millis>) -> Option<Timestamp> {
    ms.and_then(ts)
}

/// Saturates instead of overflowing on absurd timestamps (they then compare as far past or
/// far future, which is what such a filter means).
pub fn from_ts(t: &Timestamp) -> Millis {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos) / 1_000_000)
}

pub fn ai_type_to_pb(t: AiType) -> pb::AiType {
    match t {
        AiType::Openai => pb::AiType::Openai,
        AiType::Google => pb::AiType::Google,
        AiType::Anthropic => pb::AiType::Anthropic,
        AiType::Aws => pb::AiType::Aws,
        AiType::Other => pb::AiType::Other,
    }
}

/// `None` for UNSPECIFIED; an error for a number no enum value has.
pub fn ai_type(field: &str, v: i32) -> ApiResult<Option<AiType>> {
    match pb::AiType::try_from(v) {
        Ok(pb::AiType::Unspecified) => Ok(None),
        Ok(pb::AiType::Openai) => Ok(Some(AiType::Openai)),
        Ok(pb::AiType::Google) => Ok(Some(AiType::Google)),
        Ok(pb::AiType::Anthropic) => Ok(Some(AiType::Anthropic)),
        Ok(pb::AiType::Aws) => Ok(Some(AiType::Aws)),
        Ok(pb::AiType::Other) => Ok(Some(AiType::Other)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown AI type {v}; use OPENAI, GOOGLE, ANTHROPIC, AWS or OTHER"),
        )),
    }
}

pub fn credential_mode(field: &str, v: i32) -> ApiResult<Option<CredentialMode>> {
    match pb::CredentialMode::try_from(v) {
        Ok(pb::CredentialMode::Unspecified) => Ok(None),
        Ok(pb::CredentialMode::Managed) => Ok(Some(CredentialMode::Managed)),
        Ok(pb::CredentialMode::Passthrough) => Ok(Some(CredentialMode::Passthrough)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown credential mode {v}; use MANAGED or PASSTHROUGH"),
        )),
    }
}

pub fn credential_mode_to_pb(m: CredentialMode) -> pb::CredentialMode {
    match m {
        CredentialMode::Managed => pb::CredentialMode::Managed,
        CredentialMode::Passthrough => pb::CredentialMode::Passthrough,
    }
}

pub fn risk(field: &str, v: i32) -> ApiResult<Option<RiskType>> {
    match pb::RiskType::try_from(v) {
        Ok(pb::RiskType::Unspecified) => Ok(None),
        Ok(pb::RiskType::Low) => Ok(Some(RiskType::Low)),
        Ok(pb::RiskType::Medium) => Ok(Some(RiskType::Medium)),
        Ok(pb::RiskType::High) => Ok(Some(RiskType::High)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown risk type {v}; use LOW, MEDIUM or HIGH"),
        )),
    }
}

pub fn risk_to_pb(r: RiskType) -> pb::RiskType {
    match r {
        RiskType::Low => pb::RiskType::Low,
        RiskType::Medium => pb::RiskType::Medium,
        RiskType::High => pb::RiskType::High,
    }
}

pub fn action(field: &str, v: i32) -> ApiResult<Option<PolicyAction>> {
    match pb::PolicyAction::try_from(v) {
        Ok(pb::PolicyAction::Unspecified) => Ok(None),
        Ok(pb::PolicyAction::Log) => Ok(Some(PolicyAction::Log)),
        Ok(pb::PolicyAction::Alert) => Ok(Some(PolicyAction::Alert)),
        Ok(pb::PolicyAction::Block) => Ok(Some(PolicyAction::Block)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown action {v}; use LOG, ALERT or BLOCK"),
        )),
    }
}

pub fn action_to_pb(a: PolicyAction) -> pb::PolicyAction {
    match a {
        PolicyAction::Log => pb::PolicyAction::Log,
        PolicyAction::Alert => pb::PolicyAction::Alert,
        PolicyAction::Block => pb::PolicyAction::Block,
    }
}

pub fn pii_to_pb(k: PiiKind) -> pb::PiiKind {
    match k {
        PiiKind::Email => pb::PiiKind::Email,
        PiiKind::Phone => pb::PiiKind::Phone,
        PiiKind::CreditCard => pb::PiiKind::CreditCard,
        PiiKind::UsSsn => pb::PiiKind::UsSsn,
        PiiKind::Iban => pb::PiiKind::Iban,
        PiiKind::IpAddress => pb::PiiKind::IpAddress,
    }
}

pub fn role(field: &str, v: i32) -> ApiResult<Role> {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Owner) => Ok(Role::Owner),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Write) => Ok(Role::Write),
        Ok(pb::Role::Read) => Ok(Role::Read),
        _ => Err(ApiError::invalid(
            field,
            "a role is required: OWNER or ADMIN on the organization, ADMIN, WRITE or READ on a workspace",
        )),
    }
}

pub fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Owner => pb::Role::Owner,
        Role::Admin => pb::Role::Admin,
        Role::Write => pb::Role::Write,
        Role::Read => pb::Role::Read,
    }
}

pub fn strategy(field: &str, v: i32) -> ApiResult<RouteStrategy> {
    match pb::RouteStrategy::try_from(v) {
        Ok(pb::RouteStrategy::Unspecified | pb::RouteStrategy::Direct) => Ok(RouteStrategy::Direct),
        Ok(pb::RouteStrategy::Weighted) => Ok(RouteStrategy::Weighted),
        Ok(pb::RouteStrategy::Fallback) => Ok(RouteStrategy::Fallback),
        Ok(pb::RouteStrategy::Experiment) => Ok(RouteStrategy::Experiment),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown strategy {v}; use DIRECT, WEIGHTED, FALLBACK or EXPERIMENT"),
        )),
    }
}

pub fn strategy_to_pb(s: RouteStrategy) -> pb::RouteStrategy {
    match s {
        RouteStrategy::Direct => pb::RouteStrategy::Direct,
        RouteStrategy::Weighted => pb::RouteStrategy::Weighted,
        RouteStrategy::Fallback => pb::RouteStrategy::Fallback,
        RouteStrategy::Experiment => pb::RouteStrategy::Experiment,
    }
}

pub fn workspace(ws: &model::Workspace, org_id: &str) -> pb::Workspace {
    pb::Workspace {
        id: ws.id.clone(),
        org_id: org_id.to_string(),
        name: ws.name.clone(),
        created_at: ts(ws.created_at),
    }
}

pub fn usage_totals(t: &model::UsageTotals) -> pb::UsageTotals {
    pb::UsageTotals {
        api_calls: t.api_calls,
        errors: t.errors,
        tokens_in: t.tokens_in,
        tokens_out: t.tokens_out,
        llm_tokens_in: t.llm_tokens_in,
        llm_tokens_out: t.llm_tokens_out,
        policy_violations: t.policy_violations,
        alerts: t.alerts,
        blocks: t.blocks,
        latency_ms_sum: t.latency_ms_sum,
    }
}

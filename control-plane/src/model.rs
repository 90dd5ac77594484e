//! Domain types of the control plane. Wire types (prost) are converted at the service edge;
//! these are what the store holds (as JSON, on purpose part of the stored format).

use serde::{Deserialize, Serialize};

/// Provider compatibility type of an AI LLM configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AiType {
    Openai,
    Google,
    Anthropic,
    Aws,
    Other,
}

impl AiType {
    /// The provider's base URL as its own SDK takes it.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            AiType::Openai | AiType::Other => "https://api.openai.com/v1",
            AiType::Anthropic => "https://api.anthropic.com",
            AiType::Google => "https://generativelanguage.googleapis.com",
            AiType::Aws => "https://bedrock-runtime.us-east-1.amazonaws.com",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AiType::Openai => "OPENAI",
            AiType::Google => "GOOGLE",
            AiType::Anthropic => "ANTHROPIC",
            AiType::Aws => "AWS",
            AiType::Other => "OTHER",
        }
    }
}

impl std::str::FromStr for AiType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_uppercase().as_str() {
            "OPENAI" => Ok(AiType::Openai),
            "GOOGLE" => Ok(AiType::Google),
            "ANTHROPIC" => Ok(AiType::Anthropic),
            "AWS" => Ok(AiType::Aws),
            "OTHER" => Ok(AiType::Other),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CredentialMode {
    #[default]
    Managed,
    Passthrough,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Owner,
    Admin,
    Write,
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RiskType {
    Low,
    Medium,
    High,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PolicyAction {
    Log,
    Alert,
    Block,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RouteStrategy {
    #[default]
    Direct,
    Weighted,
    Fallback,
    Experiment,
}

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// An AI LLM configuration as stored. `key` and `secret` hold AES-256-GCM frames (base64),
/// bound to this record's key and field; only hints are ever shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AiLlm {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub ai_type: AiType,
    pub endpoint: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_hint: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_hint: String,
    #[serde(default)]
    pub credential_mode: CredentialMode,
    pub routing_id: String,
    #[serde(default)]
    pub environments: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub discovered_models: Vec<String>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub last_validated_at: Option<Millis>,
    #[serde(default)]
    pub validation_success: Option<bool>,
    #[serde(default)]
    pub validation_message: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl AiLlm {
    /// The models data planes get: the list, or without one the discovered models.
    pub fn served_models(&self) -> &[String] {
        if self.models.is_empty() {
            &self.discovered_models
        } else {
            &self.models
        }
    }

    /// Whether data planes get `model` from it.
    pub fn serves(&self, model: &str) -> bool {
        self.served_models().iter().any(|m| m == model)
    }
}

impl AiLlm {
    /// Ready for use: validated (or, for AWS and passthrough connections, not validated
    /// yet and not failed) and active in some environment.
    pub fn is_available(&self) -> bool {
        let validated = match self.validation_success {
            Some(ok) => ok,
            None => {
                self.ai_type == AiType::Aws || self.credential_mode == CredentialMode::Passthrough
            }
        };
        validated && !self.environments.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTarget {
    pub target: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub timeout_ms: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    #[serde(default)]
    pub strategy: RouteStrategy,
    pub targets: Vec<RouteTarget>,
    #[serde(default)]
    pub retries: Option<u32>,
}

/// Whether a route alias `name` would hide the qualified names (`<routing_id>/<model>`) of a
/// configuration with `routing_id`.
pub fn route_name_hides(name: &str, routing_id: &str) -> bool {
    name.strip_prefix(routing_id)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    #[serde(default)]
    pub ai_llm_ids: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An app key. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub repository_id: String,
    pub workspace_id: String,
    pub name: String,
    pub hash: String,
    pub hint: String,
    pub created_at: Millis,
    #[serde(default)]
    pub last_used_at: Option<Millis>,
    #[serde(default)]
    pub expires_at: Option<Millis>,
    #[serde(default)]
    pub revoked_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    /// `None` for an organization role.
    pub workspace_id: Option<String>,
    pub role: Role,
}

/// An admin token. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub hint: String,
    pub roles: Vec<RoleBinding>,
    pub created_at: Millis,
    #[serde(default)]
    pub revoked_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    /// `None` for an organization policy.
    pub workspace_id: Option<String>,
    pub repository_id: Option<String>,
    pub name: String,
    pub content: String,
    pub risk_type: RiskType,
    pub action: PolicyAction,
    pub enabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub created_by: String,
    pub last_updated_by: String,
    /// What enforces it on the data planes; none: documented, not enforced.
    #[serde(default)]
    pub rules: PolicyRules,
}

/// The deterministic rules of a policy (see `PolicyRules` in `admin.proto`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyRules {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pii: Vec<PiiKind>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secrets: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_models: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_input_chars: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_output_tokens: u32,
    /// The judge's AI LLM configuration (an id) and model; empty: no judge.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub judge_ai_llm_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub judge_model: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_requests_per_minute: u32,
    /// A judge that fails counts as a violation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub judge_fail_closed: bool,
}

impl PolicyRules {
    /// No rule at all: the policy enforces nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiKind {
    Email,
    Phone,
    CreditCard,
    UsSsn,
    Iban,
    IpAddress,
}

/// Usage counters, as the data plane reports them and the control plane adds them up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    #[serde(default)]
    pub api_calls: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub tokens_in: u64,
    #[serde(default)]
    pub tokens_out: u64,
    #[serde(default)]
    pub llm_tokens_in: u64,
    #[serde(default)]
    pub llm_tokens_out: u64,
    #[serde(default)]
    pub policy_violations: u64,
    #[serde(default)]
    pub alerts: u64,
    #[serde(default)]
    pub blocks: u64,
    #[serde(default)]
    pub latency_ms_sum: u64,
}

impl UsageTotals {
    pub fn add(&mut self, o: &UsageTotals) {
        self.api_calls += o.api_calls;
        self.errors += o.errors;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.llm_tokens_in += o.llm_tokens_in;
        self.llm_tokens_out += o.llm_tokens_out;
        self.policy_violations += o.policy_violations;
        self.alerts += o.alerts;
        self.blocks += o.blocks;
        self.latency_ms_sum += o.latency_ms_sum;
    }
}

/// A policy violation event (an alert when `message` is set), written by the enforcement
/// path under `violations/{workspace}/{time}/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub time: Millis,
    pub explanation: String,
    pub workspace_id: String,
    pub repository_id: String,
    pub api_key_id: String,
    pub severity: RiskType,
    pub blocked: bool,
    pub model_type: Option<AiType>,
    pub model: String,
    pub host: String,
    #[serde(default)]
    pub message: Option<String>,
}

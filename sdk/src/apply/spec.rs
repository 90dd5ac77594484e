//! The apply file format (see `sdk/APPLY.md`). Every struct denies unknown fields, so a typo is
//! an error with its line and column.

use std::num::NonZeroU32;

use serde::{Deserialize, Deserializer};

use crate::proto;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplyFile {
    #[serde(default)]
    pub workspaces: Vec<WorkspaceSpec>,
    /// Organization-scoped policies.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// Admin tokens, created when no active token of that name exists.
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
}

/// A workspace and what it holds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkspaceSpec {
    pub name: String,
    #[serde(default)]
    pub llms: Vec<LlmSpec>,
    #[serde(default)]
    pub repositories: Vec<RepositorySpec>,
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
}

/// An AI LLM configuration. Omitted optional fields are left as they are on the server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ai_type: AiTypeSpec,
    pub endpoint: Option<String>,
    /// Rejected on purpose: secrets never live in the file.
    #[serde(default, deserialize_with = "reject_inline_secret")]
    pub secret: Option<()>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    /// The non-secret extra access key (e.g. an AWS access key id), inline.
    pub key: Option<String>,
    pub key_env: Option<String>,
    pub key_file: Option<String>,
    #[serde(default)]
    pub passthrough: bool,
    pub routing_id: Option<String>,
    pub environments: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub region: Option<String>,
}

/// A repository, its attached configurations and its keys.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepositorySpec {
    pub name: String,
    /// The attached set (names or ids); omitted leaves attachments alone.
    pub llms: Option<Vec<String>>,
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// The repository's routes; omitted leaves them alone, a list is the whole set.
    pub routes: Option<Vec<RouteSpec>>,
}

/// A route: an alias apps send as the model, and its targets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteSpec {
    pub name: String,
    /// direct (default), weighted or fallback.
    pub strategy: Option<String>,
    /// `<routing_id>/<model>[=WEIGHT]`, in fallback order.
    pub targets: Vec<String>,
    pub retries: Option<u32>,
}

impl RouteSpec {
    /// The route as the API takes it, or what is wrong with it.
    pub fn to_proto(&self) -> Result<crate::proto::Route, String> {
        let strategy = match &self.strategy {
            Some(s) => crate::route::parse_strategy(s)?,
            None => crate::proto::RouteStrategy::Direct,
        };
        let targets = self
            .targets
            .iter()
            .map(|t| crate::route::parse_target(t))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(format!("route {}: needs at least one target", self.name));
        }
        Ok(crate::proto::Route {
            name: self.name.clone(),
            strategy: strategy as i32,
            targets,
            retries: self.retries,
        })
    }
}

/// An API key of a repository.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeySpec {
    pub name: String,
    /// When a key created for this entry stops working, RFC 3339; never if omitted. Read
    /// when the key is created: an existing key keeps its expiry.
    #[serde(default, deserialize_with = "rfc3339")]
    pub expires_at: Option<prost_types::Timestamp>,
}

/// An apply file's time, read with [`crate::parse_time`].
fn rfc3339<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<prost_types::Timestamp>, D::Error> {
    let text = String::deserialize(d)?;
    crate::parse_time(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    pub name: String,
    pub content: String,
    pub risk: RiskSpec,
    pub action: ActionSpec,
    /// Repository scope (name or id, in the enclosing workspace).
    pub repository: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What enforces it on the data planes (none: documented, not enforced).
    #[serde(default)]
    pub rules: RulesSpec,
}

/// A policy's rules (`PolicyRules` in `admin.proto`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RulesSpec {
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub pii: Vec<PiiSpec>,
    #[serde(default)]
    pub secrets: bool,
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default)]
    pub denied_models: Vec<String>,
    /// At least 1 when given: 0 is refused, not read as "no limit".
    pub max_input_chars: Option<NonZeroU32>,
    /// At least 1 when given: 0 is refused, not read as "no limit".
    pub max_output_tokens: Option<NonZeroU32>,
    /// An LLM judge: an AI LLM configuration of the workspace and its model.
    pub judge: Option<JudgeSpec>,
    /// At least 1 when given: 0 is refused, not read as "no limit".
    pub max_requests_per_minute: Option<NonZeroU32>,
}

/// A policy's LLM judge.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JudgeSpec {
    /// The AI LLM configuration (name in the workspace, or id).
    pub llm: String,
    pub model: String,
    /// A judge that fails counts as a violation.
    #[serde(default)]
    pub fail_closed: bool,
}

impl RulesSpec {
    /// The rules as the API takes them, duplicates dropped (as the control plane does); the
    /// judge's configuration as given (a name or an id).
    pub fn to_proto(&self) -> proto::PolicyRules {
        fn unique<T: Clone + PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
            let mut out = Vec::new();
            for i in items {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            out
        }
        proto::PolicyRules {
            patterns: unique(self.patterns.iter().cloned()),
            pii: unique(self.pii.iter().map(|k| proto::PiiKind::from(*k) as i32)),
            secrets: self.secrets,
            allowed_models: unique(self.allowed_models.iter().cloned()),
            denied_models: unique(self.denied_models.iter().cloned()),
            max_input_chars: self.max_input_chars.map_or(0, NonZeroU32::get),
            max_output_tokens: self.max_output_tokens.map_or(0, NonZeroU32::get),
            judge_ai_llm_id: self
                .judge
                .as_ref()
                .map(|j| j.llm.clone())
                .unwrap_or_default(),
            judge_model: self
                .judge
                .as_ref()
                .map(|j| j.model.clone())
                .unwrap_or_default(),
            max_requests_per_minute: self.max_requests_per_minute.map_or(0, NonZeroU32::get),
            judge_fail_closed: self.judge.as_ref().is_some_and(|j| j.fail_closed),
        }
    }
}

/// An admin token: `orgRole`, or `workspace` with `role`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenSpec {
    pub name: String,
    pub org_role: Option<OrgRoleSpec>,
    pub workspace: Option<String>,
    pub role: Option<WorkspaceRoleSpec>,
}

fn dup(problems: &mut Vec<String>, kind: &str, scope: &str, names: Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.trim().is_empty() {
            problems.push(format!("{scope}: a {kind} has an empty name"));
        } else if !seen.insert(n) {
            problems.push(format!("{scope}: {kind} {n:?} appears twice"));
        }
    }
}

fn yes() -> bool {
    true
}

fn reject_inline_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    let _ = serde::de::IgnoredAny::deserialize(d)?;
    Err(serde::de::Error::custom(
        "inline `secret` is not allowed: secrets never go in the file; use `secretEnv: VAR` or `secretFile: PATH`",
    ))
}

macro_rules! spec_enum {
    ($(#[$m:meta])* $name:ident => $proto:ident { $($variant:ident = $yaml:literal | $upper:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
        pub enum $name {
            $(#[serde(rename = $yaml, alias = $upper)] $variant,)*
        }
        impl From<$name> for proto::$proto {
            fn from(v: $name) -> Self {
                match v { $($name::$variant => proto::$proto::$variant,)* }
            }
        }
    };
}

spec_enum!(/// Provider type.
    AiTypeSpec => AiType {
    Openai = "openai" | "OPENAI",
    Google = "google" | "GOOGLE",
    Anthropic = "anthropic" | "ANTHROPIC",
    Aws = "aws" | "AWS",
    Other = "other" | "OTHER",
});
spec_enum!(/// Policy risk.
    RiskSpec => RiskType {
    Low = "low" | "LOW",
    Medium = "medium" | "MEDIUM",
    High = "high" | "HIGH",
});
spec_enum!(/// Policy action.
    ActionSpec => PolicyAction {
    Log = "log" | "LOG",
    Alert = "alert" | "ALERT",
    Block = "block" | "BLOCK",
});
spec_enum!(/// Personal data a policy detects.
    PiiSpec => PiiKind {
    Email = "email" | "EMAIL",
    Phone = "phone" | "PHONE",
    CreditCard = "credit_card" | "CREDIT_CARD",
    UsSsn = "us_ssn" | "US_SSN",
    Iban = "iban" | "IBAN",
    IpAddress = "ip_address" | "IP_ADDRESS",
});
spec_enum!(/// Organization role.
    OrgRoleSpec => Role {
    Owner = "owner" | "OWNER",
    Admin = "admin" | "ADMIN",
});
spec_enum!(/// Workspace role.
    WorkspaceRoleSpec => Role {
    Admin = "admin" | "ADMIN",
    Write = "write" | "WRITE",
    Read = "read" | "READ",
});

impl ApplyFile {
    /// Parses YAML; errors carry the line and column.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: Self = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        Ok(file)
    }

    /// Checks what the types cannot: every problem at once, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        dup(
            &mut problems,
            "workspace",
            "file",
            self.workspaces.iter().map(|w| w.name.as_str()).collect(),
        );
        dup(
            &mut problems,
            "policy",
            "organization",
            self.policies.iter().map(|p| p.name.as_str()).collect(),
        );
        dup(
            &mut problems,
            "token",
            "file",
            self.tokens.iter().map(|t| t.name.as_str()).collect(),
        );
        for ws in &self.workspaces {
            let scope = format!("workspace {}", ws.name);
            dup(
                &mut problems,
                "llm",
                &scope,
                ws.llms.iter().map(|l| l.name.as_str()).collect(),
            );
            dup(
                &mut problems,
                "repository",
                &scope,
                ws.repositories.iter().map(|r| r.name.as_str()).collect(),
            );
            for r in &ws.repositories {
                let scope = format!("repository {}/{}", ws.name, r.name);
                dup(
                    &mut problems,
                    "key",
                    &scope,
                    r.keys.iter().map(|k| k.name.as_str()).collect(),
                );
            }
            let mut seen = std::collections::HashSet::new();
            for p in &ws.policies {
                if !seen.insert((p.repository.as_deref(), p.name.as_str())) {
                    problems.push(format!(
                        "{scope}: policy {:?} appears twice in one scope",
                        p.name
                    ));
                }
            }
        }
        for ws in &self.workspaces {
            for l in &ws.llms {
                let at = format!("llm {}/{}", ws.name, l.name);
                if l.secret_env.is_some() && l.secret_file.is_some() {
                    problems.push(format!("{at}: give secretEnv or secretFile, not both"));
                }
                if l.passthrough && (l.secret_env.is_some() || l.secret_file.is_some()) {
                    problems.push(format!(
                        "{at}: a passthrough configuration stores no secret"
                    ));
                }
                let keys = [&l.key, &l.key_env, &l.key_file]
                    .iter()
                    .filter(|k| k.is_some())
                    .count();
                if keys > 1 {
                    problems.push(format!("{at}: give one of key, keyEnv, keyFile"));
                }
            }
        }
        for ws in &self.workspaces {
            for r in &ws.repositories {
                for route in r.routes.iter().flatten() {
                    if let Err(e) = route.to_proto() {
                        problems.push(format!(
                            "repository {}/{}: route {}: {e}",
                            ws.name, r.name, route.name
                        ));
                    }
                }
            }
        }
        for t in &self.tokens {
            match (&t.org_role, &t.workspace, &t.role) {
                (Some(_), None, None) | (None, Some(_), Some(_)) => {}
                _ => problems.push(format!(
                    "token {}: give either orgRole, or workspace and role",
                    t.name
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

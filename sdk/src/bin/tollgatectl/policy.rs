//! `policy create|list|get|update|delete|violations|alerts|test` (`review` and `recommend`
//! in `policy_assist`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use prost_types::Timestamp;
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::llm::AiTypeArg;
use crate::output::{Row, enum_name, or_dash, ts, yes_no};

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Create a policy (organization scope unless --workspace/--repo).
    Create(CreateArgs),
    /// List policies.
    List {
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long)]
        repo: Option<String>,
    },
    /// Show one policy.
    Get(IdArgs),
    /// Change only the fields whose flags are given.
    Update(UpdateArgs),
    /// Delete a policy.
    Delete(IdArgs),
    /// List policy violations, newest first.
    Violations(ViolationFilter),
    /// List alerts, newest first.
    Alerts(ViolationFilter),
    /// Run a policy's rules on sample text, as data planes would (nothing is recorded).
    Test(TestArgs),
    /// Have a model rate a policy's text (score, and issues: ambiguity, verbosity, clarity,
    /// scope, actionability).
    Review(crate::policy_assist::ReviewArgs),
    /// Have a model propose policies for a need described in plain words (nothing is
    /// created).
    Recommend(crate::policy_assist::RecommendArgs),
}

/// A policy by id or name.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Policy id or name.
    pub id: String,
    /// Look for the name only in this workspace (id or name), for a name used at several
    /// scopes; an organization policy is then named by its id.
    #[arg(long)]
    pub workspace: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub policy: IdArgs,
    /// The text a request would send.
    #[arg(
        long,
        required_unless_present = "text_file",
        conflicts_with = "text_file"
    )]
    pub text: Option<String>,
    /// Read the text from a file.
    #[arg(long, value_name = "FILE")]
    pub text_file: Option<PathBuf>,
    /// The model the request would ask for (needed when the policy has model rules).
    #[arg(long)]
    pub model: Option<String>,
    /// The `max_tokens` the request would ask for.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
}

pub fn test_request(a: TestArgs) -> Result<proto::TestPolicyRequest, CliError> {
    let text = read_content(a.text, a.text_file)?.unwrap_or_default();
    Ok(proto::TestPolicyRequest {
        id: a.policy.id,
        workspace_id: a.policy.workspace.unwrap_or_default(),
        text,
        model: a.model.unwrap_or_default(),
        max_tokens: a.max_tokens.unwrap_or(0),
    })
}

/// What `policy test` prints in a table.
fn test_text(r: &proto::TestPolicyResponse) -> String {
    let mut out = if r.fired {
        format!("fires: {}\n", r.explanation)
    } else {
        "does not fire\n".to_string()
    };
    for part in &r.not_tested {
        out.push_str(&format!("not tested: {part}\n"));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl From<Risk> for proto::RiskType {
    fn from(r: Risk) -> Self {
        match r {
            Risk::Low => Self::Low,
            Risk::Medium => Self::Medium,
            Risk::High => Self::High,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    Log,
    Alert,
    Block,
}

impl From<Action> for proto::PolicyAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Log => Self::Log,
            Action::Alert => Self::Alert,
            Action::Block => Self::Block,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pii {
    Email,
    Phone,
    CreditCard,
    UsSsn,
    Iban,
    IpAddress,
}

impl From<Pii> for proto::PiiKind {
    fn from(p: Pii) -> Self {
        match p {
            Pii::Email => Self::Email,
            Pii::Phone => Self::Phone,
            Pii::CreditCard => Self::CreditCard,
            Pii::UsSsn => Self::UsSsn,
            Pii::Iban => Self::Iban,
            Pii::IpAddress => Self::IpAddress,
        }
    }
}

/// What enforces the policy on the data planes. A request violates it when any rule fires.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A regular expression the request text must not match (repeatable).
    #[arg(long = "pattern", value_name = "REGEX", help_heading = "Rules")]
    pub patterns: Vec<String>,
    /// Personal data the request text must not contain (repeatable, or comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "KIND",
        help_heading = "Rules"
    )]
    pub pii: Vec<Pii>,
    /// The request text must not contain credentials (API keys, tokens, private keys).
    #[arg(long, help_heading = "Rules")]
    pub secrets: bool,
    /// Only these models may be asked for; `name*` matches a prefix (repeatable).
    #[arg(long = "allow-model", value_name = "MODEL", help_heading = "Rules")]
    pub allowed_models: Vec<String>,
    /// These models may not be asked for; `name*` matches a prefix (repeatable).
    #[arg(long = "deny-model", value_name = "MODEL", help_heading = "Rules")]
    pub denied_models: Vec<String>,
    /// Most characters of text a request may send.
    #[arg(long, value_name = "N", value_parser = at_least_one(), help_heading = "Rules")]
    pub max_input_chars: Option<u32>,
    /// Most output tokens a request may ask for (`max_tokens`, `max_completion_tokens`).
    #[arg(long, value_name = "N", value_parser = at_least_one(), help_heading = "Rules")]
    pub max_output_tokens: Option<u32>,
    /// Most requests one API key may make per minute (per data plane); a BLOCK answers 429.
    #[arg(long, value_name = "N", value_parser = at_least_one(), help_heading = "Rules")]
    pub max_requests_per_minute: Option<u32>,
    /// An LLM judge: this AI LLM configuration (id or name, managed credentials) reads the
    /// content and each request. With --judge-model.
    #[arg(
        long = "judge",
        value_name = "LLM",
        requires = "judge_model",
        help_heading = "Rules"
    )]
    pub judge_llm: Option<String>,
    /// The model the judge asks.
    #[arg(
        long,
        value_name = "MODEL",
        requires = "judge_llm",
        help_heading = "Rules"
    )]
    pub judge_model: Option<String>,
    /// A judge that fails (unreachable, no verdict) counts as a violation: a BLOCK policy
    /// refuses the request. Without it the request is let through.
    #[arg(long, requires = "judge_llm", help_heading = "Rules")]
    pub judge_fail_closed: bool,
}

/// Limits are at least 1: 0 would be sent as "no limit" (proto3's unset), not as a limit.
fn at_least_one() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

impl RulesArgs {
    /// Whether any rule flag was given.
    fn given(&self) -> bool {
        !self.patterns.is_empty()
            || !self.pii.is_empty()
            || self.secrets
            || !self.allowed_models.is_empty()
            || !self.denied_models.is_empty()
            || self.max_input_chars.is_some()
            || self.max_output_tokens.is_some()
            || self.judge_llm.is_some()
            || self.max_requests_per_minute.is_some()
    }

    fn into_proto(self) -> proto::PolicyRules {
        proto::PolicyRules {
            patterns: self.patterns,
            pii: self
                .pii
                .into_iter()
                .map(|k| proto::PiiKind::from(k) as i32)
                .collect(),
            secrets: self.secrets,
            allowed_models: self.allowed_models,
            denied_models: self.denied_models,
            max_input_chars: self.max_input_chars.unwrap_or(0),
            max_output_tokens: self.max_output_tokens.unwrap_or(0),
            judge_ai_llm_id: self.judge_llm.unwrap_or_default(),
            judge_model: self.judge_model.unwrap_or_default(),
            max_requests_per_minute: self.max_requests_per_minute.unwrap_or(0),
            judge_fail_closed: self.judge_fail_closed,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    /// The rule in natural language.
    #[arg(
        long,
        required_unless_present = "content_file",
        conflicts_with = "content_file"
    )]
    pub content: Option<String>,
    /// Read the rule from a file.
    #[arg(long, value_name = "FILE")]
    pub content_file: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub risk: Risk,
    #[arg(long, value_enum)]
    pub action: Action,
    #[arg(long)]
    pub workspace: Option<String>,
    /// Repository scope.
    #[arg(long)]
    pub repo: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub rules: RulesArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub policy: IdArgs,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "content_file")]
    pub content: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub content_file: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub risk: Option<Risk>,
    #[arg(long, value_enum)]
    pub action: Option<Action>,
    /// Enable the policy.
    #[arg(long, conflicts_with = "disabled")]
    pub enabled: bool,
    /// Disable the policy.
    #[arg(long)]
    pub disabled: bool,
    /// Rule flags replace all of the policy's rules (those not given are cleared).
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Remove every rule (the policy is then documented, not enforced).
    #[arg(long, conflicts_with_all = ["patterns", "pii", "secrets", "allowed_models", "denied_models", "max_input_chars", "max_output_tokens", "judge_llm", "max_requests_per_minute"])]
    pub clear_rules: bool,
}

#[derive(Debug, Args)]
pub struct ViolationFilter {
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub repo: Option<String>,
    /// Policy id or name.
    #[arg(long)]
    pub policy: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    /// The provider type of the configuration the request was for.
    #[arg(long, value_enum)]
    pub model_type: Option<AiTypeArg>,
    /// The data plane that saw the request (its instance id).
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long, value_enum)]
    pub severity: Option<Risk>,
    /// Only blocked (or with =false, only not blocked) requests.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub blocked: Option<bool>,
    /// RFC 3339 start time.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// RFC 3339 end time.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
    #[arg(long, default_value_t = 0)]
    pub skip: u32,
    /// At most 100.
    #[arg(long, default_value_t = 25)]
    pub take: u32,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2025-01-31T12:00:00Z"))
}

/// A text given inline or in a file (`None`: neither).
pub(crate) fn read_content(
    text: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<String>, CliError> {
    match (text, file) {
        (Some(t), _) => Ok(Some(t)),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(Some)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", f.display()))),
        (None, None) => Ok(None),
    }
}

pub fn create_request(a: CreateArgs) -> Result<proto::CreatePolicyRequest, CliError> {
    Ok(proto::CreatePolicyRequest {
        workspace_id: a.workspace.unwrap_or_default(),
        repository_id: a.repo.unwrap_or_default(),
        name: a.name,
        content: read_content(a.content, a.content_file)?.unwrap_or_default(),
        risk_type: proto::RiskType::from(a.risk) as i32,
        action: proto::PolicyAction::from(a.action) as i32,
        enabled: Some(!a.disabled),
        rules: Some(a.rules.into_proto()),
    })
}

pub fn update_request(a: UpdateArgs) -> Result<proto::UpdatePolicyRequest, CliError> {
    Ok(proto::UpdatePolicyRequest {
        id: a.policy.id,
        workspace_id: a.policy.workspace.unwrap_or_default(),
        name: a.name,
        content: read_content(a.content, a.content_file)?,
        risk_type: a.risk.map_or(0, |r| proto::RiskType::from(r) as i32),
        action: a.action.map_or(0, |r| proto::PolicyAction::from(r) as i32),
        enabled: match (a.enabled, a.disabled) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        expected_version: 0,
        rules: if a.clear_rules {
            Some(proto::PolicyRules::default())
        } else if a.rules.given() {
            Some(a.rules.into_proto())
        } else {
            None
        },
    })
}

pub fn violation_request(v: ViolationFilter) -> proto::ListPolicyViolationsRequest {
    proto::ListPolicyViolationsRequest {
        workspace_id: v.workspace.unwrap_or_default(),
        repository_id: v.repo.unwrap_or_default(),
        policy_id: v.policy.unwrap_or_default(),
        from: v.from,
        to: v.to,
        model: v.model.unwrap_or_default(),
        severity: v.severity.map_or(0, |r| proto::RiskType::from(r) as i32),
        blocked: v.blocked,
        skip: v.skip,
        take: v.take,
        model_type: v.model_type.map_or(0, |t| proto::AiType::from(t) as i32),
        host: v.host.unwrap_or_default(),
    }
}

impl Row for proto::Policy {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "WORKSPACE",
        "REPOSITORY",
        "RISK",
        "ACTION",
        "ENABLED",
        "RULES",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            or_dash(&self.workspace_id),
            or_dash(&self.repository_id),
            enum_name(self.risk_type, proto::RiskType::as_str_name),
            enum_name(self.action, proto::PolicyAction::as_str_name),
            yes_no(self.enabled),
            rules_summary(self.rules.as_ref()),
        ]
    }
}

/// One line for the RULES column: what fires the policy ("none": it enforces nothing).
fn rules_summary(r: Option<&proto::PolicyRules>) -> String {
    let Some(r) = r else {
        return "none".into();
    };
    let mut parts = Vec::new();
    if r.secrets {
        parts.push("secrets".to_string());
    }
    if !r.pii.is_empty() {
        let kinds: Vec<_> = r
            .pii
            .iter()
            .map(|k| enum_name(*k, proto::PiiKind::as_str_name).to_lowercase())
            .collect();
        parts.push(format!("pii:{}", kinds.join("+")));
    }
    if !r.patterns.is_empty() {
        parts.push(format!("patterns:{}", r.patterns.len()));
    }
    if !r.allowed_models.is_empty() {
        parts.push(format!("allow:{}", r.allowed_models.join("+")));
    }
    if !r.denied_models.is_empty() {
        parts.push(format!("deny:{}", r.denied_models.join("+")));
    }
    if r.max_input_chars > 0 {
        parts.push(format!("input<={}", r.max_input_chars));
    }
    if r.max_output_tokens > 0 {
        parts.push(format!("output<={}", r.max_output_tokens));
    }
    if r.max_requests_per_minute > 0 {
        parts.push(format!("rpm<={}", r.max_requests_per_minute));
    }
    if !r.judge_model.is_empty() {
        let closed = if r.judge_fail_closed {
            "(fail-closed)"
        } else {
            ""
        };
        parts.push(format!("judge:{}{closed}", r.judge_model));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

impl Row for proto::PolicyViolation {
    const HEADERS: &'static [&'static str] = &[
        "TIME",
        "POLICY",
        "SEVERITY",
        "BLOCKED",
        "REPOSITORY",
        "MODEL",
        "DETAIL",
    ];
    fn row(&self) -> Vec<String> {
        let detail = if self.message.is_empty() {
            &self.explanation
        } else {
            &self.message
        };
        vec![
            ts(&self.time),
            or_dash(&self.policy_name),
            enum_name(self.severity, proto::RiskType::as_str_name),
            yes_no(self.blocked),
            or_dash(&self.repository_id),
            or_dash(&self.model),
            or_dash(detail),
        ]
    }
}

fn violations(ctx: &Ctx, r: proto::ListPolicyViolationsResponse) -> Result<String, CliError> {
    let mut text = ctx.format.list(&r.violations)?;
    let shown = r.violations.len() as u64;
    if ctx.format == crate::output::Format::Table && r.total > shown {
        text.push_str(&format!(
            "({shown} of {}; use --skip/--take for more)\n",
            r.total
        ));
    }
    Ok(text)
}

pub async fn run(cmd: PolicyCmd, ctx: &Ctx) -> Result<String, CliError> {
    let f = ctx.format;
    match cmd {
        PolicyCmd::Create(a) => {
            let req = create_request(a)?;
            f.one(&ctx.client().await?.create_policy(req).await?)
        }
        PolicyCmd::Update(a) => {
            let req = update_request(a)?;
            f.one(&ctx.client().await?.update_policy(req).await?)
        }
        PolicyCmd::List { workspace, repo } => {
            let req = proto::ListPoliciesRequest {
                workspace_id: workspace.unwrap_or_default(),
                repository_id: repo.unwrap_or_default(),
            };
            f.list(&ctx.client().await?.list_policies(req).await?.policies)
        }
        PolicyCmd::Get(IdArgs { id, workspace }) => f.one(
            &ctx.client()
                .await?
                .get_policy(proto::GetPolicyRequest {
                    id,
                    workspace_id: workspace.unwrap_or_default(),
                })
                .await?,
        ),
        PolicyCmd::Delete(IdArgs { id, workspace }) => {
            let req = proto::DeletePolicyRequest {
                id: id.clone(),
                workspace_id: workspace.unwrap_or_default(),
            };
            let resp = ctx.client().await?.delete_policy(req).await?;
            f.message(&resp, || format!("policy {id} deleted\n"))
        }
        PolicyCmd::Violations(v) => {
            let resp = ctx
                .client()
                .await?
                .list_policy_violations(violation_request(v))
                .await?;
            violations(ctx, resp)
        }
        PolicyCmd::Alerts(v) => {
            let resp = ctx
                .client()
                .await?
                .list_alerts(violation_request(v))
                .await?;
            violations(ctx, resp)
        }
        PolicyCmd::Test(a) => {
            let req = test_request(a)?;
            let resp = ctx.client().await?.test_policy(req).await?;
            f.message(&resp, || test_text(&resp))
        }
        PolicyCmd::Review(a) => crate::policy_assist::review(a, ctx).await,
        PolicyCmd::Recommend(a) => crate::policy_assist::recommend(a, ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn policy(args: &[&str]) -> Result<PolicyCmd, clap::Error> {
        let mut full = vec!["policy"];
        full.extend_from_slice(args);
        match parse(&full)?.command {
            Command::Policy(p) => Ok(p),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn create_with_inline_content() -> Result<(), Box<dyn std::error::Error>> {
        let PolicyCmd::Create(a) = policy(&[
            "create",
            "--name",
            "no-pii",
            "--content",
            "Never send PII",
            "--risk",
            "high",
            "--action",
            "block",
            "--workspace",
            "team-a",
            "--repo",
            "chat-app",
            "--disabled",
        ])?
        else {
            panic!("not create");
        };
        let req = create_request(a).map_err(|e| e.render())?;
        assert_eq!(req.risk_type, proto::RiskType::High as i32);
        assert_eq!(req.action, proto::PolicyAction::Block as i32);
        assert_eq!(req.enabled, Some(false));
        assert_eq!(req.repository_id, "chat-app");
        assert_eq!(req.rules, Some(proto::PolicyRules::default()));
        Ok(())
    }

    #[test]
    fn rule_flags() -> Result<(), Box<dyn std::error::Error>> {
        let PolicyCmd::Create(a) = policy(&[
            "create",
            "--name",
            "guard",
            "--content",
            "No secrets or PII",
            "--risk",
            "high",
            "--action",
            "block",
            "--secrets",
            "--pii",
            "email,credit-card",
            "--pii",
            "us-ssn",
            "--pattern",
            "(?i)project\\s+falcon",
            "--deny-model",
            "gpt-4o*",
            "--max-output-tokens",
            "4096",
        ])?
        else {
            panic!("not create");
        };
        let rules = create_request(a)
            .map_err(|e| e.render())?
            .rules
            .expect("rules");
        assert!(rules.secrets);
        assert_eq!(
            rules.pii,
            [
                proto::PiiKind::Email,
                proto::PiiKind::CreditCard,
                proto::PiiKind::UsSsn
            ]
            .map(|k| k as i32)
        );
        assert_eq!(rules.patterns, ["(?i)project\\s+falcon"]);
        assert_eq!(rules.denied_models, ["gpt-4o*"]);
        assert_eq!((rules.max_input_chars, rules.max_output_tokens), (0, 4096));
        assert_eq!(
            rules_summary(Some(&rules)),
            "secrets pii:email+credit_card+us_ssn patterns:1 deny:gpt-4o* output<=4096"
        );
        // Update: no rule flag keeps the rules, rule flags replace them, --clear-rules clears.
        let update =
            |args: &[&str]| -> Result<Option<proto::PolicyRules>, Box<dyn std::error::Error>> {
                let PolicyCmd::Update(a) = policy(args)? else {
                    panic!("not update");
                };
                Ok(update_request(a).map_err(|e| e.render())?.rules)
            };
        assert_eq!(update(&["update", "guard", "--risk", "low"])?, None);
        let replaced = update(&["update", "guard", "--allow-model", "gpt-4o-mini"])?.expect("set");
        assert_eq!(replaced.allowed_models, ["gpt-4o-mini"]);
        assert!(!replaced.secrets);
        assert_eq!(
            update(&["update", "guard", "--clear-rules"])?,
            Some(proto::PolicyRules::default())
        );
        assert!(policy(&["update", "guard", "--clear-rules", "--secrets"]).is_err());
        let judge = [
            "update",
            "guard",
            "--judge",
            "openai",
            "--judge-model",
            "gpt-4o",
        ];
        let judged = update(&judge)?.expect("set");
        assert_eq!(
            (judged.judge_ai_llm_id.as_str(), judged.judge_model.as_str()),
            ("openai", "gpt-4o")
        );
        assert_eq!(rules_summary(Some(&judged)), "judge:gpt-4o");
        assert!(!judged.judge_fail_closed);
        let closed = update(&[&judge[..], &["--judge-fail-closed"]].concat())?.expect("set");
        assert!(closed.judge_fail_closed);
        assert_eq!(rules_summary(Some(&closed)), "judge:gpt-4o(fail-closed)");
        assert!(policy(&["update", "guard", "--judge-fail-closed"]).is_err());
        // A judge needs both its configuration and its model.
        assert!(policy(&["update", "guard", "--judge", "openai"]).is_err());
        assert!(policy(&["update", "guard", "--judge-model", "gpt-4o"]).is_err());
        assert!(policy(&["update", "guard", "--pii", "passport"]).is_err());
        // 0 would reach the API as "no limit": refused instead.
        for flag in [
            "--max-input-chars",
            "--max-output-tokens",
            "--max-requests-per-minute",
        ] {
            assert!(policy(&["update", "guard", flag, "0"]).is_err(), "{flag}");
            assert!(policy(&["update", "guard", flag, "1"]).is_ok(), "{flag}");
        }
        Ok(())
    }

    #[test]
    fn create_needs_exactly_one_content_source() {
        let base = ["create", "--name", "p", "--risk", "low", "--action", "log"];
        assert!(policy(&base).is_err());
        let mut both = base.to_vec();
        both.extend(["--content", "x", "--content-file", "f"]);
        assert!(policy(&both).is_err());
    }

    #[test]
    fn content_file_is_read() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("rule.txt");
        std::fs::write(&path, "No secrets.")?;
        let p = path.to_string_lossy().to_string();
        let PolicyCmd::Update(a) =
            policy(&["update", "no-pii", "--content-file", &p, "--enabled"])?
        else {
            panic!("not update");
        };
        let req = update_request(a).map_err(|e| e.render())?;
        assert_eq!(req.content.as_deref(), Some("No secrets."));
        assert_eq!(req.enabled, Some(true));
        assert_eq!(req.risk_type, 0);
        Ok(())
    }

    #[test]
    fn test_takes_text_or_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let PolicyCmd::Test(a) = policy(&[
            "test",
            "no-secrets",
            "--text",
            "hi",
            "--model",
            "gpt-4o",
            "--max-tokens",
            "9",
        ])?
        else {
            panic!("not test");
        };
        let req = test_request(a).map_err(|e| e.render())?;
        assert_eq!(
            (req.text.as_str(), req.model.as_str(), req.max_tokens),
            ("hi", "gpt-4o", 9)
        );
        assert!(
            policy(&["test", "no-secrets"]).is_err(),
            "a sample is required"
        );
        assert_eq!(
            test_text(&proto::TestPolicyResponse {
                fired: true,
                explanation: "the request text contains an email address".into(),
                not_tested: vec!["the LLM judge (tests do not call models)".into()],
            }),
            "fires: the request text contains an email address\nnot tested: the LLM judge (tests do not call models)\n"
        );
        Ok(())
    }

    #[test]
    fn violation_filters() -> Result<(), clap::Error> {
        let PolicyCmd::Alerts(v) = policy(&[
            "alerts",
            "--blocked",
            "--severity",
            "high",
            "--from",
            "2025-01-01T00:00:00Z",
            "--take",
            "50",
            "--model-type",
            "anthropic",
            "--host",
            "dp-0",
        ])?
        else {
            panic!("not alerts");
        };
        let req = violation_request(v);
        assert_eq!(req.blocked, Some(true));
        assert_eq!(req.take, 50);
        assert_eq!(req.model_type, proto::AiType::Anthropic as i32);
        assert_eq!(req.host, "dp-0");
        assert_eq!(req.from.map(|t| t.seconds), Some(1_735_689_600));
        assert!(policy(&["violations", "--from", "yesterday"]).is_err());
        Ok(())
    }
}

//! `policy review|recommend`: a model of the workspace rates a policy's text or proposes
//! policies (the control plane calls it with the configuration's stored credentials).

use std::path::PathBuf;

use clap::Args;
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{enum_name, table};

/// The model that does it.
#[derive(Debug, Args)]
pub struct AssistantArgs {
    /// The AI LLM configuration (id or name) the control plane calls.
    #[arg(long = "llm", value_name = "LLM")]
    pub llm: String,
    /// The model it asks.
    #[arg(long)]
    pub model: String,
    /// Workspace of a configuration given by name (disambiguates).
    #[arg(long = "llm-workspace", value_name = "WORKSPACE")]
    pub workspace: Option<String>,
}

impl AssistantArgs {
    fn into_proto(self) -> proto::PolicyAssistant {
        proto::PolicyAssistant {
            ai_llm_id: self.llm,
            model: self.model,
            workspace_id: self.workspace.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// A stored policy (id or name); or --content / --content-file for a text not stored.
    #[arg(required_unless_present_any = ["content", "content_file"], conflicts_with_all = ["content", "content_file"])]
    pub policy: Option<String>,
    /// Look for the policy's name only in this workspace (for a name used at several
    /// scopes), as `policy get` does.
    #[arg(long = "workspace", requires = "policy")]
    pub policy_workspace: Option<String>,
    /// The policy text to review.
    #[arg(long, conflicts_with = "content_file")]
    pub content: Option<String>,
    /// Read the policy text from a file.
    #[arg(long, value_name = "FILE")]
    pub content_file: Option<PathBuf>,
    #[command(flatten)]
    pub assistant: AssistantArgs,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// What the policies should prevent or require, in plain words.
    pub prompt: String,
    /// Most policies proposed (1 to 10).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub count: u32,
    #[command(flatten)]
    pub assistant: AssistantArgs,
}

pub fn review_request(a: ReviewArgs) -> Result<proto::ReviewPolicyRequest, CliError> {
    let content = crate::policy::read_content(a.content, a.content_file)?.unwrap_or_default();
    Ok(proto::ReviewPolicyRequest {
        policy_id: a.policy.unwrap_or_default(),
        policy_workspace_id: a.policy_workspace.unwrap_or_default(),
        content,
        assistant: Some(a.assistant.into_proto()),
    })
}

pub fn recommend_request(a: RecommendArgs) -> proto::RecommendPoliciesRequest {
    proto::RecommendPoliciesRequest {
        prompt: a.prompt,
        assistant: Some(a.assistant.into_proto()),
        count: a.count,
    }
}

/// What `policy review` prints in a table.
fn review_text(r: &proto::PolicyReview) -> String {
    let mut out = format!("score {}/100: {}\n", r.score, r.summary);
    for i in &r.issues {
        let kind = match proto::PolicyIssueKind::try_from(i.kind) {
            Ok(proto::PolicyIssueKind::Unspecified) | Err(_) => "other".to_string(),
            Ok(k) => k.as_str_name().to_lowercase(),
        };
        out.push_str(&format!("  {kind}: {}\n", i.message));
    }
    out.push_str(&format!(
        "({} input and {} output tokens)\n",
        r.input_tokens, r.output_tokens
    ));
    out
}

/// What `policy recommend` prints in a table.
fn recommend_text(r: &proto::RecommendPoliciesResponse) -> String {
    let rows: Vec<Vec<String>> = r
        .policies
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                enum_name(p.risk_type, proto::RiskType::as_str_name),
                enum_name(p.action, proto::PolicyAction::as_str_name),
                p.content.clone(),
            ]
        })
        .collect();
    table(&["NAME", "RISK", "ACTION", "CONTENT"], &rows)
}

pub async fn review(a: ReviewArgs, ctx: &Ctx) -> Result<String, CliError> {
    let req = review_request(a)?;
    let resp = ctx.client().await?.review_policy(req).await?;
    ctx.format.message(&resp, || review_text(&resp))
}

pub async fn recommend(a: RecommendArgs, ctx: &Ctx) -> Result<String, CliError> {
    let resp = ctx
        .client()
        .await?
        .recommend_policies(recommend_request(a))
        .await?;
    ctx.format.message(&resp, || recommend_text(&resp))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::policy::PolicyCmd;

    fn policy(args: &[&str]) -> Result<PolicyCmd, clap::Error> {
        let cli = Cli::try_parse_from([&["tollgatectl", "policy"], args].concat())?;
        match cli.command {
            Command::Policy(c) => Ok(c),
            _ => panic!("not a policy command"),
        }
    }

    #[test]
    fn review_takes_a_policy_or_a_text() -> Result<(), Box<dyn std::error::Error>> {
        let model = ["--llm", "openai", "--model", "gpt-4o"];
        let PolicyCmd::Review(a) = policy(&[&["review", "no-pii"][..], &model].concat())? else {
            panic!("not review");
        };
        let req = review_request(a).map_err(|e| e.render())?;
        assert_eq!(
            (req.policy_id.as_str(), req.content.as_str()),
            ("no-pii", "")
        );
        let assistant = req.assistant.expect("assistant");
        assert_eq!(
            (assistant.ai_llm_id.as_str(), assistant.model.as_str()),
            ("openai", "gpt-4o")
        );
        let PolicyCmd::Review(a) =
            policy(&[&["review", "--content", "Be nice"][..], &model].concat())?
        else {
            panic!("not review");
        };
        assert_eq!(
            review_request(a).map_err(|e| e.render())?.content,
            "Be nice"
        );
        // One of the two, and the model is required.
        assert!(policy(&[&["review"][..], &model].concat()).is_err());
        assert!(policy(&[&["review", "p", "--content", "x"][..], &model].concat()).is_err());
        assert!(policy(&["review", "p", "--llm", "openai"]).is_err());
        Ok(())
    }

    #[test]
    fn recommend_counts_one_to_ten() -> Result<(), clap::Error> {
        let base = [
            "recommend",
            "no customer data",
            "--llm",
            "o",
            "--model",
            "m",
        ];
        let PolicyCmd::Recommend(a) = policy(&base)? else {
            panic!("not recommend");
        };
        assert_eq!(recommend_request(a).count, 3);
        assert!(policy(&[&base[..], &["--count", "0"]].concat()).is_err());
        assert!(policy(&[&base[..], &["--count", "11"]].concat()).is_err());
        let text = recommend_text(&proto::RecommendPoliciesResponse {
            policies: vec![proto::RecommendedPolicy {
                name: "no-pii".into(),
                content: "Never send personal data.".into(),
                risk_type: proto::RiskType::High as i32,
                action: proto::PolicyAction::Block as i32,
            }],
            input_tokens: 1,
            output_tokens: 2,
        });
        assert!(
            text.contains("no-pii  HIGH  BLOCK   Never send personal data."),
            "{text}"
        );
        Ok(())
    }
}

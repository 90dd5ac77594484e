//! `llm create|list|available|get|update|delete|validate|stats`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tollgate_sdk::{Secret, SecretSource, proto};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Row, enum_name, join, or_dash};

#[derive(Debug, Subcommand)]
pub enum LlmCmd {
    /// Create a configuration.
    Create(CreateArgs),
    /// List configurations.
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List the configurations ready for use.
    Available {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Show one configuration (id or name).
    Get(IdArgs),
    /// Change only the fields whose flags are given.
    Update(UpdateArgs),
    /// Delete a configuration no repository uses.
    Delete(IdArgs),
    /// Call the provider and record the result (`success` says how it went).
    Validate(IdArgs),
    /// Usage totals per configuration.
    Stats {
        id: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Id or name.
    pub id: String,
    /// Disambiguates a name used in several workspaces.
    #[arg(long)]
    pub workspace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AiTypeArg {
    Openai,
    Google,
    Anthropic,
    Aws,
    Other,
}

impl From<AiTypeArg> for proto::AiType {
    fn from(t: AiTypeArg) -> Self {
        match t {
            AiTypeArg::Openai => Self::Openai,
            AiTypeArg::Google => Self::Google,
            AiTypeArg::Anthropic => Self::Anthropic,
            AiTypeArg::Aws => Self::Aws,
            AiTypeArg::Other => Self::Other,
        }
    }
}

/// Where the secret comes from; never the command line itself.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct SecretArgs {
    /// Read the secret from standard input.
    #[arg(long)]
    pub secret_stdin: bool,
    /// Read the secret from a file.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Read the secret from an environment variable.
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
}

impl SecretArgs {
    pub fn source(&self) -> Option<SecretSource> {
        if self.secret_stdin {
            Some(SecretSource::Stdin)
        } else if let Some(f) = &self.secret_file {
            Some(SecretSource::File(f.clone()))
        } else {
            self.secret_env.clone().map(SecretSource::Env)
        }
    }
}

/// Flags shared by create and update.
#[derive(Debug, Args)]
pub struct LlmFields {
    /// Provider base URL (defaults from the provider catalog).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Extra access key (the AWS access key id, with its secret access key as the secret; an
    /// AWS connection whose secret is a Bedrock API key has none); not the secret.
    #[arg(long)]
    pub key: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Slug used in model names (defaults from the name).
    #[arg(long)]
    pub routing_id: Option<String>,
    /// Environments where it is active, comma-separated (create: production when omitted;
    /// update: "" takes it out of every environment).
    #[arg(long, value_delimiter = ',')]
    pub environments: Option<Vec<String>>,
    /// Models it exposes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// AWS region.
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub workspace: String,
    #[arg(long)]
    pub name: String,
    #[arg(long = "type", value_enum)]
    pub ai_type: AiTypeArg,
    #[command(flatten)]
    pub fields: LlmFields,
    /// Bring your own key: nothing stored, requests carry the provider key (for AWS, a
    /// Bedrock API key).
    #[arg(long)]
    pub passthrough: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Id or name.
    pub id: String,
    /// Workspace of the configuration (disambiguates a name).
    #[arg(long)]
    pub workspace: Option<String>,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long = "type", value_enum)]
    pub ai_type: Option<AiTypeArg>,
    #[command(flatten)]
    pub fields: LlmFields,
    /// Switch to passthrough (`--passthrough=false` switches back to managed).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub passthrough: Option<bool>,
}

fn list(v: &Option<Vec<String>>) -> Option<Vec<String>> {
    v.as_ref()
        .map(|v| v.iter().filter(|s| !s.is_empty()).cloned().collect())
}

fn mode(passthrough: bool) -> i32 {
    if passthrough {
        proto::CredentialMode::Passthrough as i32
    } else {
        proto::CredentialMode::Managed as i32
    }
}

pub fn create_request(a: &CreateArgs, secret: Option<Secret>) -> proto::CreateAiLlmRequest {
    let f = &a.fields;
    proto::CreateAiLlmRequest {
        workspace_id: a.workspace.clone(),
        name: a.name.clone(),
        ai_type: proto::AiType::from(a.ai_type) as i32,
        endpoint: f.endpoint.clone().unwrap_or_default(),
        key: f.key.clone().unwrap_or_default(),
        secret: secret.map(|s| s.expose().to_string()).unwrap_or_default(),
        credential_mode: mode(a.passthrough),
        routing_id: f.routing_id.clone().unwrap_or_default(),
        environments: list(&f.environments).unwrap_or_default(),
        models: list(&f.models).unwrap_or_default(),
        region: f.region.clone().unwrap_or_default(),
    }
}

/// Only the given flags are present in the request; the server changes exactly those.
pub fn update_request(a: &UpdateArgs, secret: Option<Secret>) -> proto::UpdateAiLlmRequest {
    let f = &a.fields;
    let strings = |v| list(v).map(|values| proto::StringList { values });
    proto::UpdateAiLlmRequest {
        id: a.id.clone(),
        workspace_id: a.workspace.clone().unwrap_or_default(),
        name: a.name.clone(),
        ai_type: a.ai_type.map_or(0, |t| proto::AiType::from(t) as i32),
        endpoint: f.endpoint.clone(),
        key: f.key.clone(),
        secret: secret.map(|s| s.expose().to_string()),
        credential_mode: a.passthrough.map_or(0, mode),
        routing_id: f.routing_id.clone(),
        environments: strings(&f.environments),
        models: strings(&f.models),
        region: f.region.clone(),
        update_mask: None,
        expected_version: 0,
    }
}

fn read_secret(s: &SecretArgs) -> Result<Option<Secret>, CliError> {
    Ok(s.source().map(|src| src.read()).transpose()?)
}

impl Row for proto::AiLlm {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "TYPE",
        "ENDPOINT",
        "WORKSPACE",
        "VALIDATED",
        "MODELS",
    ];
    fn row(&self) -> Vec<String> {
        let validated = match self.validation_success {
            Some(true) => "yes",
            Some(false) => "failed",
            None => "-",
        };
        let models = if self.models.is_empty() {
            &self.discovered_models
        } else {
            &self.models
        };
        vec![
            self.id.clone(),
            self.name.clone(),
            enum_name(self.ai_type, proto::AiType::as_str_name),
            or_dash(&self.endpoint),
            self.workspace_id.clone(),
            validated.to_string(),
            join(models),
        ]
    }
}

impl Row for proto::AiLlmStats {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "WORKSPACE",
        "CALLS",
        "ERRORS",
        "TOKENS_IN",
        "TOKENS_OUT",
        "VIOLATIONS",
        "ALERTS",
        "BLOCKS",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.ai_llm_id.clone(),
            self.name.clone(),
            self.workspace_id.clone(),
            self.total_api_calls.to_string(),
            self.total_errors.to_string(),
            self.total_tokens_in.to_string(),
            self.total_tokens_out.to_string(),
            self.total_policy_violations.to_string(),
            self.total_alerts.to_string(),
            self.total_blocks.to_string(),
        ]
    }
}

fn missing(what: &str, resp: Option<proto::AiLlm>) -> Result<proto::AiLlm, CliError> {
    resp.ok_or_else(|| CliError::Local(format!("the server's {what} response has no ai_llm")))
}

pub async fn run(cmd: LlmCmd, ctx: &Ctx) -> Result<String, CliError> {
    let f = ctx.format;
    let ws = Option::unwrap_or_default;
    match cmd {
        LlmCmd::Create(a) => {
            let req = create_request(&a, read_secret(&a.fields.secret)?);
            let resp = ctx.client().await?.create_ai_llm(req).await?;
            f.one(&missing("create", resp.ai_llm)?)
        }
        LlmCmd::Update(a) => {
            let req = update_request(&a, read_secret(&a.fields.secret)?);
            let resp = ctx.client().await?.update_ai_llm(req).await?;
            f.one(&missing("update", resp.ai_llm)?)
        }
        LlmCmd::List { workspace } => {
            let req = proto::ListAiLlmsRequest {
                workspace_id: ws(workspace),
            };
            f.list(&ctx.client().await?.list_ai_llms(req).await?.ai_llms)
        }
        LlmCmd::Available { workspace } => {
            let req = proto::ListAvailableAiLlmsRequest {
                workspace_id: ws(workspace),
            };
            f.list(
                &ctx.client()
                    .await?
                    .list_available_ai_llms(req)
                    .await?
                    .ai_llms,
            )
        }
        LlmCmd::Get(IdArgs { id, workspace }) => {
            let req = proto::GetAiLlmRequest {
                id,
                workspace_id: ws(workspace),
            };
            f.one(&ctx.client().await?.get_ai_llm(req).await?)
        }
        LlmCmd::Delete(IdArgs { id, workspace }) => {
            let req = proto::DeleteAiLlmRequest {
                id: id.clone(),
                workspace_id: ws(workspace),
            };
            let resp = ctx.client().await?.delete_ai_llm(req).await?;
            f.message(&resp, || format!("llm {id} deleted\n"))
        }
        LlmCmd::Validate(IdArgs { id, workspace }) => {
            let req = proto::ValidateAiLlmRequest {
                id: id.clone(),
                workspace_id: ws(workspace),
            };
            // Always OK at the RPC level: the verdict is in `success` and the exit code is 0.
            let resp = ctx.client().await?.validate_ai_llm(req).await?;
            f.message(&resp, || validate_text(&id, &resp))
        }
        LlmCmd::Stats { id, workspace } => {
            let req = proto::GetAiLlmStatsRequest {
                ai_llm_id: ws(id),
                workspace_id: ws(workspace),
            };
            f.list(&ctx.client().await?.get_ai_llm_stats(req).await?.stats)
        }
    }
}

fn validate_text(id: &str, r: &proto::ValidateAiLlmResponse) -> String {
    let verdict = if r.success { "succeeded" } else { "failed" };
    let mut s = format!("validation of llm {id} {verdict}");
    if !r.message.is_empty() {
        s.push_str(&format!(": {}", r.message));
    }
    s.push('\n');
    if !r.discovered_models.is_empty() {
        s.push_str(&format!(
            "discovered models: {}\n",
            r.discovered_models.join(", ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn llm(args: &[&str]) -> Result<LlmCmd, clap::Error> {
        match parse(args)?.command {
            Command::Llm(c) => Ok(c),
            other => panic!("not an llm command: {other:?}"),
        }
    }

    #[test]
    fn create_parses_every_flag() -> Result<(), clap::Error> {
        let LlmCmd::Create(a) = llm(&[
            "llm",
            "create",
            "--workspace",
            "team-a",
            "--name",
            "openai-prod",
            "--type",
            "openai",
            "--endpoint",
            "https://api.openai.com/v1",
            "--key",
            "org-1",
            "--secret-env",
            "OPENAI_API_KEY",
            "--routing-id",
            "openai",
            "--environments",
            "staging,production",
            "--models",
            "gpt-4o-mini",
            "--region",
            "us-east-1",
        ])?
        else {
            panic!("not create");
        };
        assert_eq!(
            a.fields.secret.source(),
            Some(SecretSource::Env("OPENAI_API_KEY".into()))
        );
        let req = create_request(&a, Some(Secret::new("sk-1")));
        assert_eq!(req.ai_type, proto::AiType::Openai as i32);
        assert_eq!(req.environments, vec!["staging", "production"]);
        assert_eq!(req.models, vec!["gpt-4o-mini"]);
        assert_eq!(req.secret, "sk-1");
        assert_eq!(req.credential_mode, proto::CredentialMode::Managed as i32);
        Ok(())
    }

    #[test]
    fn there_is_no_secret_value_flag() {
        let r = llm(&[
            "llm",
            "create",
            "--workspace",
            "w",
            "--name",
            "n",
            "--type",
            "openai",
            "--secret",
            "sk",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn secret_sources_are_exclusive_and_type_is_checked() {
        let both = [
            "llm",
            "create",
            "--workspace",
            "w",
            "--name",
            "n",
            "--type",
            "aws",
            "--secret-stdin",
            "--secret-env",
            "X",
        ];
        assert!(llm(&both).is_err());
        assert!(
            llm(&[
                "llm",
                "create",
                "--workspace",
                "w",
                "--name",
                "n",
                "--type",
                "azure"
            ])
            .is_err()
        );
        assert!(llm(&["llm", "create", "--name", "n", "--type", "aws"]).is_err());
    }

    #[test]
    fn update_sends_only_given_flags() -> Result<(), clap::Error> {
        let LlmCmd::Update(a) = llm(&[
            "llm",
            "update",
            "openai-prod",
            "--models",
            "a,b",
            "--passthrough",
        ])?
        else {
            panic!("not update");
        };
        let req = update_request(&a, None);
        assert_eq!(req.id, "openai-prod");
        assert_eq!(
            req.models.map(|m| m.values),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            req.credential_mode,
            proto::CredentialMode::Passthrough as i32
        );
        assert!(req.endpoint.is_none() && req.secret.is_none() && req.environments.is_none());
        assert_eq!(req.ai_type, 0);

        let LlmCmd::Update(a) =
            llm(&["llm", "update", "x", "--models", "", "--passthrough=false"])?
        else {
            panic!("not update");
        };
        let req = update_request(&a, Some(Secret::new("s")));
        assert_eq!(req.models.map(|m| m.values), Some(vec![]));
        assert_eq!(req.credential_mode, proto::CredentialMode::Managed as i32);
        assert_eq!(req.secret.as_deref(), Some("s"));
        Ok(())
    }

    #[test]
    fn stats_id_is_optional() -> Result<(), clap::Error> {
        assert!(matches!(
            llm(&["llm", "stats"])?,
            LlmCmd::Stats { id: None, .. }
        ));
        assert!(matches!(
            llm(&["llm", "stats", "x", "--workspace", "w"])?,
            LlmCmd::Stats { id: Some(_), .. }
        ));
        Ok(())
    }

    #[test]
    fn table_row() {
        let l = proto::AiLlm {
            id: "llm_1".into(),
            name: "openai-prod".into(),
            ai_type: proto::AiType::Openai as i32,
            workspace_id: "ws_1".into(),
            discovered_models: vec!["gpt-4o".into()],
            validation_success: Some(true),
            ..Default::default()
        };
        assert_eq!(
            l.row(),
            vec![
                "llm_1",
                "openai-prod",
                "OPENAI",
                "-",
                "ws_1",
                "yes",
                "gpt-4o"
            ]
        );
    }
}

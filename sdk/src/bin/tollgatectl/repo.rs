//! `repo create|list|get|delete|attach|detach`.

use clap::Subcommand;
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Row, join};

#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    /// Create a repository.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        name: String,
    },
    /// List repositories.
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Show one repository (id or name).
    Get {
        id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete a repository (revokes its keys).
    Delete {
        id: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Attach an AI LLM configuration to a repository.
    Attach {
        repo: String,
        llm: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Detach an AI LLM configuration from a repository.
    Detach {
        repo: String,
        llm: String,
        #[arg(long)]
        workspace: Option<String>,
    },
}

impl Row for proto::Repository {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "WORKSPACE", "LLMS", "ROUTES"];
    fn row(&self) -> Vec<String> {
        let routes: Vec<String> = self.routes.iter().map(|r| r.name.clone()).collect();
        vec![
            self.id.clone(),
            self.name.clone(),
            self.workspace_id.clone(),
            join(&self.ai_llm_ids),
            join(&routes),
        ]
    }
}

pub async fn run(cmd: RepoCmd, ctx: &Ctx) -> Result<String, CliError> {
    let c = ctx.client().await?;
    let f = ctx.format;
    let ws = Option::unwrap_or_default;
    match cmd {
        RepoCmd::Create { workspace, name } => f.one(
            &c.create_repository(proto::CreateRepositoryRequest {
                workspace_id: workspace,
                name,
            })
            .await?,
        ),
        RepoCmd::List { workspace } => f.list(
            &c.list_repositories(proto::ListRepositoriesRequest {
                workspace_id: ws(workspace),
            })
            .await?
            .repositories,
        ),
        RepoCmd::Get { id, workspace } => f.one(
            &c.get_repository(proto::GetRepositoryRequest {
                id,
                workspace_id: ws(workspace),
            })
            .await?,
        ),
        RepoCmd::Delete { id, workspace } => {
            let resp = c
                .delete_repository(proto::DeleteRepositoryRequest {
                    id: id.clone(),
                    workspace_id: ws(workspace),
                })
                .await?;
            f.message(&resp, || format!("repository {id} deleted\n"))
        }
        RepoCmd::Attach {
            repo,
            llm,
            workspace,
        } => f.one(
            &c.attach_ai_llm(proto::AttachAiLlmRequest {
                repository_id: repo,
                ai_llm_id: llm,
                workspace_id: ws(workspace),
            })
            .await?,
        ),
        RepoCmd::Detach {
            repo,
            llm,
            workspace,
        } => f.one(
            &c.detach_ai_llm(proto::DetachAiLlmRequest {
                repository_id: repo,
                ai_llm_id: llm,
                workspace_id: ws(workspace),
            })
            .await?,
        ),
    }
}

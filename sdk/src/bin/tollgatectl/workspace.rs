//! `workspace create|list|get|delete`.

use clap::Subcommand;
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Row, ts};

#[derive(Debug, Subcommand)]
pub enum WorkspaceCmd {
    /// Create a workspace.
    Create { name: String },
    /// List workspaces.
    List,
    /// Show one workspace (id or name).
    Get { id: String },
    /// Delete an empty workspace (id or name).
    Delete { id: String },
}

impl Row for proto::Workspace {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "CREATED"];
    fn row(&self) -> Vec<String> {
        vec![self.id.clone(), self.name.clone(), ts(&self.created_at)]
    }
}

pub async fn run(cmd: WorkspaceCmd, ctx: &Ctx) -> Result<String, CliError> {
    let c = ctx.client().await?;
    let f = ctx.format;
    match cmd {
        WorkspaceCmd::Create { name } => f.one(
            &c.create_workspace(proto::CreateWorkspaceRequest { name })
                .await?,
        ),
        WorkspaceCmd::List => f.list(
            &c.list_workspaces(proto::ListWorkspacesRequest {})
                .await?
                .workspaces,
        ),
        WorkspaceCmd::Get { id } => {
            f.one(&c.get_workspace(proto::GetWorkspaceRequest { id }).await?)
        }
        WorkspaceCmd::Delete { id } => {
            let resp = c
                .delete_workspace(proto::DeleteWorkspaceRequest { id: id.clone() })
                .await?;
            f.message(&resp, || format!("workspace {id} deleted\n"))
        }
    }
}

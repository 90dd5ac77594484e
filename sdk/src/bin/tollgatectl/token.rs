//! `token create|list|revoke|whoami`: admin tokens.

use clap::{Args, Subcommand, ValueEnum};
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Row, enum_name, join, or_dash, table, ts};

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token; its secret is printed once (JSON field "secret").
    Create(CreateArgs),
    /// List tokens.
    List,
    /// Revoke a token, by id or by name (a name several active tokens share needs the id).
    Revoke {
        /// The token's id or name.
        #[arg(value_name = "TOKEN")]
        which: String,
    },
    /// Show the token in use.
    Whoami,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrgRole {
    Owner,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkspaceRole {
    Admin,
    Write,
    Read,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    /// A role on the organization.
    #[arg(long, value_enum, conflicts_with_all = ["workspace", "role"], required_unless_present = "workspace")]
    pub org_role: Option<OrgRole>,
    /// The workspace of a workspace role.
    #[arg(long, requires = "role")]
    pub workspace: Option<String>,
    /// A role on --workspace.
    #[arg(long, value_enum, requires = "workspace")]
    pub role: Option<WorkspaceRole>,
}

pub fn create_request(a: &CreateArgs) -> proto::CreateAdminTokenRequest {
    let binding = match (a.org_role, &a.workspace, a.role) {
        (Some(r), _, _) => Some(proto::RoleBinding {
            workspace_id: String::new(),
            role: match r {
                OrgRole::Owner => proto::Role::Owner,
                OrgRole::Admin => proto::Role::Admin,
            } as i32,
        }),
        (None, Some(ws), Some(r)) => Some(proto::RoleBinding {
            workspace_id: ws.clone(),
            role: match r {
                WorkspaceRole::Admin => proto::Role::Admin,
                WorkspaceRole::Write => proto::Role::Write,
                WorkspaceRole::Read => proto::Role::Read,
            } as i32,
        }),
        _ => None,
    };
    proto::CreateAdminTokenRequest {
        name: a.name.clone(),
        roles: binding.into_iter().collect(),
    }
}

impl Row for proto::AdminToken {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "ROLES", "HINT", "CREATED", "REVOKED"];
    fn row(&self) -> Vec<String> {
        let roles: Vec<String> = self
            .roles
            .iter()
            .map(|b| {
                let scope = if b.workspace_id.is_empty() {
                    "org"
                } else {
                    &b.workspace_id
                };
                format!("{scope}:{}", enum_name(b.role, proto::Role::as_str_name))
            })
            .collect();
        vec![
            self.id.clone(),
            self.name.clone(),
            join(&roles),
            or_dash(&self.hint),
            ts(&self.created_at),
            ts(&self.revoked_at),
        ]
    }
}

fn created_text(r: &proto::CreateAdminTokenResponse) -> String {
    let token = r.token.clone().unwrap_or_default();
    format!(
        "{}\nsecret (shown once, store it now): {}\n",
        table(proto::AdminToken::HEADERS, &[token.row()]).trim_end(),
        r.secret
    )
}

pub async fn run(cmd: TokenCmd, ctx: &Ctx) -> Result<String, CliError> {
    let c = ctx.client().await?;
    let f = ctx.format;
    match cmd {
        TokenCmd::Create(a) => {
            let resp = c.create_admin_token(create_request(&a)).await?;
            f.message(&resp, || created_text(&resp))
        }
        TokenCmd::List => f.list(
            &c.list_admin_tokens(proto::ListAdminTokensRequest {})
                .await?
                .tokens,
        ),
        TokenCmd::Revoke { which } => {
            let active: Vec<proto::AdminToken> = c
                .list_admin_tokens(proto::ListAdminTokensRequest {})
                .await?
                .tokens
                .into_iter()
                .filter(|t| t.revoked_at.is_none())
                .collect();
            let id = crate::byname::pick(
                &active,
                &which,
                ("admin token", "in the organization"),
                |t| &t.id,
                |t| &t.name,
            )?;
            f.one(
                &c.revoke_admin_token(proto::RevokeAdminTokenRequest { id })
                    .await?,
            )
        }
        TokenCmd::Whoami => f.one(&c.who_am_i(proto::WhoAmIRequest {}).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn create(args: &[&str]) -> Result<CreateArgs, clap::Error> {
        let mut full = vec!["token", "create"];
        full.extend_from_slice(args);
        match parse(&full)?.command {
            Command::Token(TokenCmd::Create(a)) => Ok(a),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn revoke_takes_an_id_or_a_name_beside_the_global_token() -> Result<(), clap::Error> {
        // The positional argument must not share an id with the global --token.
        let cli = parse(&["--token", "tga_x", "token", "revoke", "ci-bot"])?;
        assert!(cli.token.is_some());
        let Command::Token(TokenCmd::Revoke { which }) = cli.command else {
            panic!("not token revoke");
        };
        assert_eq!(which, "ci-bot");
        Ok(())
    }

    #[test]
    fn org_role() -> Result<(), clap::Error> {
        let req = create_request(&create(&["--name", "ops", "--org-role", "owner"])?);
        assert_eq!(req.roles.len(), 1);
        assert_eq!(req.roles[0].workspace_id, "");
        assert_eq!(req.roles[0].role, proto::Role::Owner as i32);
        Ok(())
    }

    #[test]
    fn workspace_role() -> Result<(), clap::Error> {
        let req = create_request(&create(&[
            "--name",
            "ci",
            "--workspace",
            "team-a",
            "--role",
            "read",
        ])?);
        assert_eq!(req.roles[0].workspace_id, "team-a");
        assert_eq!(req.roles[0].role, proto::Role::Read as i32);
        Ok(())
    }

    #[test]
    fn role_combinations_are_checked() {
        assert!(create(&["--name", "x"]).is_err());
        assert!(create(&["--name", "x", "--workspace", "w"]).is_err());
        assert!(create(&["--name", "x", "--role", "read"]).is_err());
        assert!(
            create(&[
                "--name",
                "x",
                "--org-role",
                "admin",
                "--workspace",
                "w",
                "--role",
                "read"
            ])
            .is_err()
        );
        assert!(create(&["--name", "x", "--org-role", "write"]).is_err());
        assert!(create(&["--name", "x", "--workspace", "w", "--role", "owner"]).is_err());
    }

    #[test]
    fn whoami_parses() -> Result<(), clap::Error> {
        assert!(matches!(
            parse(&["token", "whoami"])?.command,
            Command::Token(TokenCmd::Whoami)
        ));
        Ok(())
    }
}

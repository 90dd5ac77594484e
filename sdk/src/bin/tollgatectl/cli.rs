//! The grammar: `tollgatectl [--addr URL] [--token T] [-o table|json|yaml] NOUN VERB ...`.

use clap::{Parser, Subcommand};
use tokio::sync::OnceCell;
use tollgate_sdk::{Client, ConnectOptions, Secret};

use crate::exit::{CliError, EXIT_CODES};
use crate::output::{Format, write_stdout};
use crate::{apply, key, llm, policy, repo, route, token, workspace};

/// Administer a Tollgate AI gateway through its admin API.
#[derive(Debug, Parser)]
#[command(name = "tollgatectl", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Admin API address of the control plane.
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_ADDR",
        default_value = "http://127.0.0.1:7070"
    )]
    pub addr: String,
    /// Admin token (prefer the environment variable: command lines are visible to others).
    #[arg(long, global = true, env = "TOLLGATE_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<Secret>,
    /// PEM CA bundle that signed the control plane's certificate (for an https:// --addr with
    /// a private CA).
    #[arg(long, global = true, env = "TOLLGATE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, env = "TOLLGATE_OUTPUT", value_enum, default_value_t = Format::Table)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// The nouns.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Workspaces.
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCmd),
    /// AI LLM configurations (provider connections).
    #[command(subcommand)]
    Llm(llm::LlmCmd),
    /// Repositories.
    #[command(subcommand)]
    Repo(repo::RepoCmd),
    /// Routes of repositories: model aliases with direct, weighted or fallback targets.
    #[command(subcommand)]
    Route(route::RouteCmd),
    /// API keys of repositories.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Policies, their violations and alerts.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Admin tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Apply a declarative YAML file (see APPLY.md); idempotent.
    Apply(apply::ApplyArgs),
}

/// What every command gets: the output format and a connection made on first use, so local
/// inputs (secrets, files) are checked before anything is sent.
pub struct Ctx {
    addr: String,
    token: Option<Secret>,
    ca_file: Option<std::path::PathBuf>,
    pub format: Format,
    client: OnceCell<Client>,
}

impl Ctx {
    /// The connected client.
    pub async fn client(&self) -> Result<&Client, CliError> {
        self.client
            .get_or_try_init(|| async {
                let token = self.token.as_ref().ok_or_else(|| {
                    CliError::Usage(
                        "no admin token: pass --token or set TOLLGATE_TOKEN".to_string(),
                    )
                })?;
                let mut options = ConnectOptions::default();
                if let Some(path) = &self.ca_file {
                    options.ca_pem = Some(std::fs::read(path).map_err(|e| {
                        CliError::Usage(format!("cannot read --ca-file {}: {e}", path.display()))
                    })?);
                }
                Client::connect_with(&self.addr, token, options)
                    .await
                    .map_err(CliError::Api)
            })
            .await
    }
}

/// Runs a parsed command line and prints its result.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx {
        addr: cli.addr,
        token: cli.token,
        ca_file: cli.ca_file,
        format: cli.output,
        client: OnceCell::new(),
    };
    let text = match cli.command {
        Command::Workspace(c) => workspace::run(c, &ctx).await?,
        Command::Llm(c) => llm::run(c, &ctx).await?,
        Command::Repo(c) => repo::run(c, &ctx).await?,
        Command::Route(c) => route::run(c, &ctx).await?,
        Command::Key(c) => key::run(c, &ctx).await?,
        Command::Policy(c) => policy::run(c, &ctx).await?,
        Command::Token(c) => token::run(c, &ctx).await?,
        Command::Apply(a) => apply::run(a, &ctx).await?,
    };
    write_stdout(&text)
}

#[cfg(test)]
pub fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("tollgatectl").chain(args.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere_and_defaults() -> Result<(), clap::Error> {
        let cli = parse(&[
            "workspace",
            "list",
            "-o",
            "json",
            "--addr",
            "https://cp:7070",
        ])?;
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.addr, "https://cp:7070");
        assert!(matches!(cli.command, Command::Workspace(_)));
        let cli = parse(&["--token", "t0k", "workspace", "create", "team-a"])?;
        assert_eq!(cli.token.as_ref().map(Secret::expose), Some("t0k"));
        assert!(!format!("{cli:?}").contains("t0k"));
        Ok(())
    }

    #[test]
    fn rejects_unknown_nouns_and_formats() {
        assert!(parse(&["route", "list"]).is_err());
        assert!(parse(&["-o", "xml", "workspace", "list"]).is_err());
    }
}

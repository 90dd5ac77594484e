//! `route set|list|delete`: model aliases of a repository and where they send traffic.

use clap::{Subcommand, ValueEnum};
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::Row;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Strategy {
    Direct,
    Weighted,
    Fallback,
    /// An A/B experiment: each end user (OpenAI `user` field, else API key) keeps one target.
    Experiment,
}

impl From<Strategy> for proto::RouteStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Direct => proto::RouteStrategy::Direct,
            Strategy::Weighted => proto::RouteStrategy::Weighted,
            Strategy::Fallback => proto::RouteStrategy::Fallback,
            Strategy::Experiment => proto::RouteStrategy::Experiment,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// Create or replace a route: an alias apps send as the model, and its targets.
    Set {
        /// Repository (id or name).
        #[arg(long)]
        repo: String,
        /// Workspace of the repository (disambiguates a name).
        #[arg(long)]
        workspace: Option<String>,
        /// The alias apps send as `model`.
        name: String,
        #[arg(long, value_enum, default_value_t = Strategy::Direct)]
        strategy: Strategy,
        /// `<routing_id>/<model>[=WEIGHT]`, repeatable; order is the fallback order.
        #[arg(long = "target", required = true, value_parser = parse_target)]
        targets: Vec<proto::RouteTarget>,
        /// Retries on connect errors, 429 and 5xx (default 2).
        #[arg(long)]
        retries: Option<u32>,
    },
    /// List a repository's routes.
    List {
        #[arg(long)]
        repo: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete a route.
    Delete {
        #[arg(long)]
        repo: String,
        #[arg(long)]
        workspace: Option<String>,
        name: String,
    },
}

fn parse_target(s: &str) -> Result<proto::RouteTarget, String> {
    tollgate_sdk::route::parse_target(s)
}

impl Row for proto::Route {
    const HEADERS: &'static [&'static str] = &["NAME", "STRATEGY", "TARGETS", "RETRIES"];
    fn row(&self) -> Vec<String> {
        let strategy = proto::RouteStrategy::try_from(self.strategy)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| self.strategy.to_string());
        let targets = self
            .targets
            .iter()
            .map(|t| format!("{}={}", t.target, t.weight))
            .collect::<Vec<_>>()
            .join(",");
        let retries = self
            .retries
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into());
        vec![self.name.clone(), strategy, targets, retries]
    }
}

pub async fn run(cmd: RouteCmd, ctx: &Ctx) -> Result<String, CliError> {
    let c = ctx.client().await?;
    let f = ctx.format;
    match cmd {
        RouteCmd::Set {
            repo,
            workspace,
            name,
            strategy,
            targets,
            retries,
        } => {
            let r = c
                .set_route(proto::SetRouteRequest {
                    repository_id: repo,
                    workspace_id: workspace.unwrap_or_default(),
                    route: Some(proto::Route {
                        name: name.clone(),
                        strategy: proto::RouteStrategy::from(strategy) as i32,
                        targets,
                        retries,
                    }),
                })
                .await?;
            let route = r
                .routes
                .into_iter()
                .find(|x| x.name == name)
                .unwrap_or_default();
            f.one(&route)
        }
        RouteCmd::List { repo, workspace } => f.list(
            &c.get_repository(proto::GetRepositoryRequest {
                id: repo,
                workspace_id: workspace.unwrap_or_default(),
            })
            .await?
            .routes,
        ),
        RouteCmd::Delete {
            repo,
            workspace,
            name,
        } => {
            let resp = c
                .delete_route(proto::DeleteRouteRequest {
                    repository_id: repo,
                    workspace_id: workspace.unwrap_or_default(),
                    name: name.clone(),
                })
                .await?;
            f.message(&resp, || format!("route {name} deleted\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grammar() {
        use crate::cli::parse;
        assert!(
            parse(&[
                "route",
                "set",
                "--repo",
                "r",
                "smart",
                "--strategy",
                "fallback",
                "--target",
                "a/m",
                "--target",
                "b/m=2",
                "--retries",
                "3"
            ])
            .is_ok()
        );
        assert!(
            parse(&["route", "set", "--repo", "r", "smart"]).is_err(),
            "a target is required"
        );
        assert!(parse(&["route", "list", "--repo", "r"]).is_ok());
        assert!(parse(&["route", "delete", "--repo", "r", "smart"]).is_ok());
    }
}

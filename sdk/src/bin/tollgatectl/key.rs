//! `key create|list|revoke|rename`: API keys apps send to the data plane.

use clap::Subcommand;
use tollgate_sdk::proto;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Row, or_dash, table, ts};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create a key; its secret is printed once (JSON field "secret").
    Create {
        #[arg(long)]
        repo: String,
        #[arg(long)]
        name: String,
        /// Workspace of the repository (disambiguates a name).
        #[arg(long)]
        workspace: Option<String>,
        /// When the key stops working, RFC 3339 (e.g. 2027-01-31T00:00:00Z); never if omitted.
        #[arg(long, value_parser = tollgate_sdk::parse_time)]
        expires_at: Option<prost_types::Timestamp>,
    },
    /// List a repository's keys.
    List {
        #[arg(long)]
        repo: String,
        #[arg(long)]
        workspace: Option<String>,
        /// Also list revoked keys.
        #[arg(long)]
        include_revoked: bool,
    },
    /// Revoke a key (kept for the audit trail).
    Revoke(KeyRef),
    /// Rename a key.
    Rename {
        #[command(flatten)]
        key: KeyRef,
        /// The new name.
        name: String,
    },
}

/// A key: its id, or its name within `--repo` (the control plane keeps active keys' names
/// unique per repository; keys named alike before it did must be given as ids).
#[derive(Debug, clap::Args)]
pub struct KeyRef {
    /// The key's id, or its name with --repo.
    pub key: String,
    /// The repository of a key given by name.
    #[arg(long)]
    pub repo: Option<String>,
    /// Workspace of the repository (disambiguates a name).
    #[arg(long, requires = "repo")]
    pub workspace: Option<String>,
}

impl KeyRef {
    /// The key's id: as given, or looked up among the repository's active keys.
    async fn id(self, c: &tollgate_sdk::Client) -> Result<String, CliError> {
        let Some(repo) = self.repo else {
            return Ok(self.key);
        };
        let keys = c
            .list_api_keys(proto::ListApiKeysRequest {
                repository_id: repo.clone(),
                workspace_id: self.workspace.unwrap_or_default(),
                include_revoked: false,
            })
            .await?
            .api_keys;
        // An expired key keeps its name but frees it: a live key of that name is meant.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let live = |k: &proto::ApiKey| k.expires_at.as_ref().is_none_or(|e| e.seconds > now);
        let keys = if keys.iter().any(|k| k.name == self.key && live(k)) {
            keys.into_iter()
                .filter(|k| live(k) || k.id == self.key)
                .collect()
        } else {
            keys
        };
        crate::byname::pick(
            &keys,
            &self.key,
            ("key", &format!("in repository '{repo}'")),
            |k| &k.id,
            |k| &k.name,
        )
    }
}

impl Row for proto::ApiKey {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "NAME",
        "REPOSITORY",
        "HINT",
        "CREATED",
        "LAST_USED",
        "EXPIRES",
        "REVOKED",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.repository_id.clone(),
            or_dash(&self.hint),
            ts(&self.created_at),
            ts(&self.last_used_at),
            ts(&self.expires_at),
            ts(&self.revoked_at),
        ]
    }
}

/// The table text of a created key: the key, then its one-time secret.
pub fn created_text(r: &proto::CreateApiKeyResponse) -> String {
    let key = r.api_key.clone().unwrap_or_default();
    format!(
        "{}\nsecret (shown once, store it now): {}\n",
        table(proto::ApiKey::HEADERS, &[key.row()]).trim_end(),
        r.secret
    )
}

pub async fn run(cmd: KeyCmd, ctx: &Ctx) -> Result<String, CliError> {
    let c = ctx.client().await?;
    let f = ctx.format;
    match cmd {
        KeyCmd::Create {
            repo,
            name,
            workspace,
            expires_at,
        } => {
            let resp = c
                .create_api_key(proto::CreateApiKeyRequest {
                    repository_id: repo,
                    workspace_id: workspace.unwrap_or_default(),
                    name,
                    expires_at,
                })
                .await?;
            f.message(&resp, || created_text(&resp))
        }
        KeyCmd::List {
            repo,
            workspace,
            include_revoked,
        } => f.list(
            &c.list_api_keys(proto::ListApiKeysRequest {
                repository_id: repo,
                workspace_id: workspace.unwrap_or_default(),
                include_revoked,
            })
            .await?
            .api_keys,
        ),
        KeyCmd::Revoke(key) => {
            let id = key.id(c).await?;
            f.one(&c.revoke_api_key(proto::RevokeApiKeyRequest { id }).await?)
        }
        KeyCmd::Rename { key, name } => {
            let id = key.id(c).await?;
            f.one(
                &c.rename_api_key(proto::RenameApiKeyRequest { id, name })
                    .await?,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};
    use crate::output::Format;

    #[test]
    fn create_requires_repo_and_name() -> Result<(), clap::Error> {
        assert!(parse(&["key", "create", "--name", "web"]).is_err());
        let cli = parse(&["key", "create", "--repo", "chat-app", "--name", "web"])?;
        assert!(matches!(cli.command, Command::Key(KeyCmd::Create { .. })));
        let cli = parse(&[
            "key",
            "create",
            "--repo",
            "chat-app",
            "--name",
            "web",
            "--expires-at",
            "2027-01-31T12:00:00Z",
        ])?;
        let Command::Key(KeyCmd::Create { expires_at, .. }) = cli.command else {
            panic!("not key create");
        };
        assert_eq!(
            expires_at.map(|t| t.seconds),
            Some(1_801_396_800),
            "2027-01-31T12:00:00Z"
        );
        let bad = parse(&[
            "key",
            "create",
            "--repo",
            "r",
            "--name",
            "n",
            "--expires-at",
            "soon",
        ]);
        assert!(bad.is_err_and(|e| e.to_string().contains("RFC 3339")));
        let cli = parse(&["key", "revoke", "web", "--repo", "chat-app"])?;
        let Command::Key(KeyCmd::Revoke(key)) = cli.command else {
            panic!("not key revoke");
        };
        assert_eq!(
            (key.key.as_str(), key.repo.as_deref()),
            ("web", Some("chat-app"))
        );
        assert!(
            parse(&["key", "revoke", "web", "--workspace", "w"]).is_err(),
            "needs --repo"
        );
        let cli = parse(&["key", "rename", "key_1", "mobile"])?;
        assert!(matches!(cli.command, Command::Key(KeyCmd::Rename { .. })));
        Ok(())
    }

    #[test]
    fn created_key_json_has_the_secret_field() -> Result<(), CliError> {
        let resp = proto::CreateApiKeyResponse {
            api_key: Some(proto::ApiKey {
                id: "key_1".into(),
                name: "web".into(),
                ..Default::default()
            }),
            secret: "tg_abc".into(),
        };
        let json = Format::Json.message(&resp, || created_text(&resp))?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| CliError::Local(e.to_string()))?;
        assert_eq!(v["secret"], "tg_abc");
        assert_eq!(v["apiKey"]["name"], "web");
        assert!(created_text(&resp).contains("tg_abc"));
        Ok(())
    }
}

//! Declarative, idempotent apply of a YAML file (format in `sdk/APPLY.md`): create what is
//! missing, update what differs, report one line per item.

mod credentials;
mod run;
mod spec;

use std::path::{Path, PathBuf};

pub use credentials::LlmCredentials;
pub use run::apply;
pub use spec::*;

use crate::secret::Secret;

/// A parsed file whose credentials were all read: nothing is sent before this succeeds.
#[derive(Debug)]
pub struct Plan {
    pub file: ApplyFile,
    /// `credentials[w][l]` belongs to `file.workspaces[w].llms[l]`.
    pub credentials: Vec<Vec<LlmCredentials>>,
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Api(#[from] crate::Error),
}

impl Plan {
    /// Reads `path`, parses it and reads every secret from the process environment and files
    /// (relative `secretFile`/`keyFile` paths are relative to the apply file's folder).
    pub fn load(path: &Path) -> Result<Self, ApplyError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApplyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, base, |name| std::env::var(name).ok())
            .map_err(|e| ApplyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parses `text` and reads credentials with the given environment.
    pub fn from_yaml(
        text: &str,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let file = ApplyFile::from_yaml(text)?;
        let credentials = credentials::resolve(&file, base_dir, env)?;
        Ok(Self { file, credentials })
    }
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One reported item.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `workspace`, `llm`, `repository`, `key`, `policy`, `token`.
    pub kind: &'static str,
    /// Qualified name, e.g. `team-a/chat-app/web`.
    pub name: String,
    pub change: Change,
    /// Extra words, e.g. `attached openai-prod`.
    pub detail: Option<String>,
    /// The one-time secret of a created key or token.
    pub secret: Option<Secret>,
}

impl Outcome {
    pub(crate) fn new(kind: &'static str, name: String, change: Change) -> Self {
        Self {
            kind,
            name,
            change,
            detail: None,
            secret: None,
        }
    }

    /// The line printed for this item; includes a one-time secret when there is one.
    pub fn line(&self) -> String {
        let mut s = format!("{} {}: {}", self.kind, self.name, self.change.as_str());
        if let Some(d) = &self.detail {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(secret) = &self.secret {
            s.push_str(&format!("; secret, shown once: {}", secret.expose()));
        }
        s
    }
}

#[cfg(test)]
mod tests;

//! Secrets held in memory with a redacted `Debug`/`Display`, and the places a secret may be
//! read from. Secrets never come from the command line or from an apply file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A secret value (admin token, provider key). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call only where it leaves the process on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Standard input, read to its end.
    Stdin,
    /// A file; its content with trailing line breaks removed.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (or not valid UTF-8)")]
    MissingEnv(String),
    #[error("cannot read secret file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the secret from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("the secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret, taking standard input from the process.
    pub fn read(&self) -> Result<Secret, SecretError> {
        self.read_with(std::io::stdin().lock(), |name| std::env::var(name).ok())
    }

    /// Reads the secret with the given stdin and environment (for tests and embedding).
    pub fn read_with(
        &self,
        mut stdin: impl Read,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        let raw = match self {
            Self::Stdin => {
                let mut s = String::new();
                stdin.read_to_string(&mut s).map_err(SecretError::Stdin)?;
                s
            }
            Self::File(path) => read_file(path)?,
            Self::Env(name) => env(name).ok_or_else(|| SecretError::MissingEnv(name.clone()))?,
        };
        let value = raw.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(SecretError::Empty(self.describe()));
        }
        Ok(Secret::new(value))
    }

    /// A short description for messages ("file /x", "$VAR", "stdin").
    pub fn describe(&self) -> String {
        match self {
            Self::Stdin => "standard input".to_string(),
            Self::File(p) => format!("file {}", p.display()),
            Self::Env(v) => format!("${v}"),
        }
    }
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    std::fs::read_to_string(path).map_err(|source| SecretError::File {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "from-env\n".to_string())
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn reads_env_and_trims_newline() {
        let s = SecretSource::Env("SET".into()).read_with(&b""[..], env);
        assert_eq!(
            s.ok().map(|s| s.expose().to_string()),
            Some("from-env".into())
        );
        let err = SecretSource::Env("UNSET".into()).read_with(&b""[..], env);
        assert!(matches!(err, Err(SecretError::MissingEnv(v)) if v == "UNSET"));
    }

    #[test]
    fn reads_file_and_reports_missing_file() -> Result<(), Box<dyn std::error::Error>> {
        let mut f = tempfile::NamedTempFile::new()?;
        f.write_all(b"sk-file\r\n")?;
        let s = SecretSource::File(f.path().into()).read_with(&b""[..], env)?;
        assert_eq!(s.expose(), "sk-file");
        let missing = SecretSource::File("/nonexistent/secret".into()).read_with(&b""[..], env);
        let msg = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("/nonexistent/secret"), "{msg}");
        Ok(())
    }

    #[test]
    fn reads_given_stdin_and_rejects_empty() {
        let s = SecretSource::Stdin.read_with(&b"sk-stdin\n"[..], env);
        assert_eq!(
            s.ok().map(|s| s.expose().to_string()),
            Some("sk-stdin".into())
        );
        let empty = SecretSource::Stdin.read_with(&b"\n"[..], env);
        assert!(matches!(empty, Err(SecretError::Empty(_))));
    }
}

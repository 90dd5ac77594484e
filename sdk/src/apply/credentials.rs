//! Reads every llm's secret and key before anything is sent.

use std::path::Path;

use super::spec::{ApplyFile, LlmSpec};
use crate::secret::{Secret, SecretSource};

/// The values read for one llm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmCredentials {
    pub secret: Option<Secret>,
    /// The extra access key (not secret, but may come from the environment or a file).
    pub key: Option<String>,
}

pub(super) fn resolve(
    file: &ApplyFile,
    base_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Vec<LlmCredentials>>, String> {
    let mut problems = Vec::new();
    let out = file
        .workspaces
        .iter()
        .map(|ws| {
            ws.llms
                .iter()
                .map(|llm| {
                    one(llm, base_dir, &env).unwrap_or_else(|e| {
                        problems.push(format!("llm {}/{}: {e}", ws.name, llm.name));
                        LlmCredentials::default()
                    })
                })
                .collect()
        })
        .collect();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

fn one(
    llm: &LlmSpec,
    base_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<LlmCredentials, String> {
    let source = |env_var: &Option<String>, file: &Option<String>| match (env_var, file) {
        (Some(v), _) => Some(SecretSource::Env(v.clone())),
        (None, Some(f)) => Some(SecretSource::File(base_dir.join(f))),
        (None, None) => None,
    };
    // Standard input is not a source here: the file is what the operator reviews.
    let read = |s: SecretSource| {
        s.read_with(std::io::empty(), env)
            .map_err(|e| e.to_string())
    };
    let secret = source(&llm.secret_env, &llm.secret_file)
        .map(read)
        .transpose()?;
    let key = match source(&llm.key_env, &llm.key_file) {
        Some(s) => Some(read(s)?.expose().to_string()),
        None => llm.key.clone(),
    };
    Ok(LlmCredentials { secret, key })
}

//! LiteLLM's proxy (from PyPI: `pip install 'litellm[proxy]'`) as an optional fourth target
//! of `load`, the alternative most users know: the same mock upstream behind it as an
//! OpenAI-compatible model, its master key required on every request.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::http::chat_status;
use crate::procs::{Proc, free_port, wait_until};

/// The key apps send (LiteLLM's `master_key`; without a database it is the only key).
pub const KEY: &str = "sk-litellm-bench";
/// The model of the paced upstream.
pub const PACED_MODEL: &str = "paced-gpt-4o-mini";

/// A running LiteLLM proxy.
pub struct LiteLlm {
    pub proc: Proc,
    pub port: u16,
}

/// Starts `bin` (the `litellm` command) with `gpt-4o-mini` on the mock upstream at
/// `upstream` and, when given, [`PACED_MODEL`] on the paced one; waits until it answers.
pub async fn start(bin: &Path, dir: &Path, upstream: u16, paced: Option<u16>) -> Result<LiteLlm> {
    let model = |name: &str, port: u16| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: http://127.0.0.1:{port}/v1\n      api_key: sk-bench\n"
        )
    };
    let mut config = String::from("model_list:\n");
    config.push_str(&model("gpt-4o-mini", upstream));
    if let Some(p) = paced {
        config.push_str(&model(PACED_MODEL, p));
    }
    config.push_str(&format!("general_settings:\n  master_key: {KEY}\n"));
    let file = dir.join("litellm.yaml");
    std::fs::write(&file, config)?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&file)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_DOCS", "True");
    let mut proc = Proc::spawn("litellm", cmd, &dir.join("litellm.log"))?;
    // Python imports take seconds; ready once it answers a chat completion.
    wait_until(&mut proc, Duration::from_secs(120), || async move {
        chat_status(port, Some(KEY), "gpt-4o-mini")
            .await
            .is_ok_and(|s| s.is_success())
    })
    .await?;
    Ok(LiteLlm { proc, port })
}

/// Returns once the proxy answers a chat completion (within 2 minutes): after a run at high
/// concurrency it is still working through the requests wrk left behind, and whatever runs
/// next would share the CPUs with that backlog.
pub async fn wait_idle(port: u16) -> Result<()> {
    let status = tokio::time::timeout(
        Duration::from_secs(120),
        chat_status(port, Some(KEY), "gpt-4o-mini"),
    )
    .await
    .map_err(|_| anyhow::anyhow!("LiteLLM did not answer within 2 minutes"))??;
    anyhow::ensure!(status.is_success(), "LiteLLM answered {status}");
    Ok(())
}

/// `litellm --version`'s first line, for the report.
pub fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&o.stderr).lines())
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_default()
}

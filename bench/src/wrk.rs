//! The load generator: wrk (Debian's package), POSTing one chat request over keep-alive
//! connections; a Lua `done` hook prints the summary and latency percentiles as JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The request every load run sends (non-streaming, ~300 bytes).
pub fn chat_body(model: &str) -> String {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France, and what is it known for?"}
        ],
        "temperature": 0.2,
        "max_tokens": 128
    })
    .to_string()
}

/// Writes the Lua script of one target.
pub fn script(dir: &Path, name: &str, body: &str, key: Option<&str>) -> Result<PathBuf> {
    let auth = key
        .map(|k| format!("wrk.headers[\"Authorization\"] = \"Bearer {k}\"\n"))
        .unwrap_or_default();
    let lua = format!(
        r#"wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"errors\":%d,\"status_errors\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"#
    );
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// One wrk run at `connections` for `duration` against `origin` (`http://127.0.0.1:PORT`);
/// the summary JSON of the Lua hook.
pub async fn run(
    script: &Path,
    origin: &str,
    connections: usize,
    duration: Duration,
) -> Result<Value> {
    let threads = connections.clamp(1, 2);
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(script)
        .arg(format!("{origin}/v1/chat/completions"))
        .kill_on_drop(true)
        .output()
        .await
        .context("run wrk: apt-get install -y wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCHJSON "))
        .with_context(|| {
            format!(
                "wrk printed no summary ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line)?;
    if v["requests"].as_u64().unwrap_or(0) == 0 {
        bail!("wrk completed no request:\n{stdout}");
    }
    Ok(v)
}

//! The gateway under test: `tollgate-control-plane serve` on the embedded store and separate
//! `tollgate-data-plane` processes synced over plaintext loopback (with the sync token that
//! plaintext sync requires), configured through the admin API (tollgate-sdk) like an
//! operator would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use rand::RngCore;
use tollgate_sdk::proto;

use crate::procs::{Proc, bin, free_port, port_open, wait_until};

pub const ADMIN_TOKEN: &str = "tgadm_bench-owner-token-0123456789abcdef";
/// Model name apps send: qualified, so routing picks the connection and rewrites the model.
pub const MODEL: &str = "mock/gpt-4o-mini";
/// The connection to the paced upstream, and its model.
pub const PACED: &str = "paced";
pub const PACED_MODEL: &str = "paced/gpt-4o-mini";

pub struct ControlPlane {
    pub proc: Proc,
    pub admin_url: String,
    pub sync_url: String,
    /// The sync token data planes send (`--sync-token-file`).
    pub sync_token_file: PathBuf,
}

/// Writes a new random sync token to `dir/sync-token` (mode 0600); returns the token and
/// the file.
pub fn write_sync_token(dir: &Path) -> Result<(String, PathBuf)> {
    use std::io::Write as _;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!(
        "tgsync_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let file = dir.join("sync-token");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(&file)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .with_context(|| format!("write {}", file.display()))?;
    Ok((token, file))
}

/// Starts the control plane on an embedded store under `dir`.
pub async fn start_control_plane(bin_dir: Option<&Path>, dir: &Path) -> Result<ControlPlane> {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let key_file = dir.join("master.key");
    std::fs::write(
        &key_file,
        base64::engine::general_purpose::STANDARD.encode(key),
    )?;
    let (_, sync_token_file) = write_sync_token(dir)?;
    let (admin, sync) = (free_port()?, free_port()?);
    let mut cmd = Command::new(bin(bin_dir, "tollgate-control-plane")?);
    cmd.arg("serve")
        .arg("--store")
        .arg(format!("file://{}", dir.join("store.redb").display()))
        .arg("--master-key-file")
        .arg(&key_file)
        .args(["--bootstrap-token", ADMIN_TOKEN])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(["--sync-listen", &format!("127.0.0.1:{sync}")])
        .arg("--sync-insecure")
        .arg("--sync-token-file")
        .arg(&sync_token_file)
        .env("TOLLGATE_LOG", "warn");
    let mut proc = Proc::spawn("control plane", cmd, &dir.join("control-plane.log"))?;
    wait_until(&mut proc, Duration::from_secs(30), || port_open(admin)).await?;
    wait_until(&mut proc, Duration::from_secs(30), || port_open(sync)).await?;
    Ok(ControlPlane {
        proc,
        admin_url: format!("http://127.0.0.1:{admin}"),
        sync_url: format!("http://127.0.0.1:{sync}"),
        sync_token_file,
    })
}

pub struct DataPlane {
    pub proc: Proc,
    pub port: u16,
    pub admin_port: u16,
}

/// Starts a data plane synced from `sync_url` with the token in `sync_token_file` (and
/// `extra` flags); returns once `/readyz` says it holds a snapshot (`wait_ready`) or once its
/// admin port is open.
pub async fn start_data_plane(
    bin_dir: Option<&Path>,
    dir: &Path,
    name: &str,
    sync_url: &str,
    sync_token_file: &Path,
    wait_ready: bool,
    extra: &[&std::ffi::OsStr],
) -> Result<DataPlane> {
    let (port, admin_port) = (free_port()?, free_port()?);
    let mut cmd = Command::new(bin(bin_dir, "tollgate-data-plane")?);
    cmd.args(["--control-plane", sync_url])
        .arg("--sync-token-file")
        .arg(sync_token_file)
        .args(["--environment", "production"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(extra)
        .env("TOLLGATE_LOG", "warn");
    let log: PathBuf = dir.join(format!("{name}.log"));
    let mut proc = Proc::spawn(name, cmd, &log)?;
    if wait_ready {
        wait_until(&mut proc, Duration::from_secs(30), || async move {
            readyz_version(admin_port).await.is_some()
        })
        .await?;
    } else {
        wait_until(&mut proc, Duration::from_secs(30), || port_open(admin_port)).await?;
    }
    Ok(DataPlane {
        proc,
        port,
        admin_port,
    })
}

/// The config version a data plane holds, from `/readyz` ("ready: config version N").
pub async fn readyz_version(admin_port: u16) -> Option<i64> {
    let body = crate::http::get(admin_port, "/readyz").await.ok()?;
    body.trim()
        .strip_prefix("ready: config version ")?
        .parse()
        .ok()
}

/// Creates connection `mock` (OpenAI type, managed secret, endpoint the mock upstream at
/// `origin`), repository `bench` with it attached and one key; returns the key's secret and
/// the repository id.
pub async fn configure(admin_url: &str, origin: &str) -> Result<(String, String)> {
    let client = tollgate_sdk::Client::connect(admin_url, ADMIN_TOKEN).await?;
    let repo = client
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "default".into(),
            name: "bench".into(),
        })
        .await
        .context("create the repository")?;
    add_connection(admin_url, &repo.id, "mock", origin).await?;
    let key = new_key(&client, &repo.id, "load").await?;
    Ok((key, repo.id))
}

/// Adds the OpenAI connection `name` to the upstream at `origin` (`http://127.0.0.1:PORT`)
/// and attaches it to `repo`: its model is `<name>/gpt-4o-mini` for the same key.
pub async fn add_connection(admin_url: &str, repo: &str, name: &str, origin: &str) -> Result<()> {
    let client = tollgate_sdk::Client::connect(admin_url, ADMIN_TOKEN).await?;
    let llm = client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: format!("{origin}/v1"),
            secret: "sk-bench-upstream-secret-0123456789".into(),
            models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        })
        .await
        .with_context(|| format!("create the connection {name}"))?;
    client
        .attach_ai_llm(proto::AttachAiLlmRequest {
            repository_id: repo.into(),
            ai_llm_id: llm.ai_llm_id,
            workspace_id: "default".into(),
        })
        .await
        .with_context(|| format!("attach {name}"))?;
    Ok(())
}

/// Creates an API key in `repo`; returns its secret.
pub async fn new_key(client: &tollgate_sdk::Client, repo: &str, name: &str) -> Result<String> {
    Ok(client
        .create_api_key(proto::CreateApiKeyRequest {
            repository_id: repo.into(),
            workspace_id: "default".into(),
            name: name.into(),
            expires_at: None,
        })
        .await
        .context("create a key")?
        .secret)
}

/// Total API calls the control plane has recorded for `connections` (usage reports applied),
/// polled until it reaches `at_least` and stops growing (reports are sent in the background).
pub async fn recorded_calls(admin_url: &str, connections: &[&str], at_least: u64) -> Result<u64> {
    let client = tollgate_sdk::Client::connect(admin_url, ADMIN_TOKEN).await?;
    let mut last = 0;
    for _ in 0..50 {
        let mut calls = 0;
        for name in connections {
            let stats = client
                .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
                    ai_llm_id: (*name).into(),
                    workspace_id: "default".into(),
                })
                .await?;
            calls += stats.stats.iter().map(|s| s.total_api_calls).sum::<u64>();
        }
        if calls >= at_least && calls == last {
            return Ok(calls);
        }
        last = calls;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(last)
}

//! The real `tollgate-data-plane` binary, fed by a control plane's sync API.

use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::ControlPlane;

pub struct DataPlane {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`: the OpenAI-compatible API.
    pub url: String,
    /// `http://127.0.0.1:PORT`: /healthz, /readyz, /metrics.
    pub admin_url: String,
    args: Vec<String>,
    log_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl DataPlane {
    /// Starts a data plane in `environment` against `cp`'s plaintext loopback sync port and
    /// waits until it holds a snapshot.
    pub async fn start(cp: &ControlPlane, environment: &str) -> DataPlane {
        Self::start_with(cp, environment, &[]).await
    }

    pub async fn start_with(cp: &ControlPlane, environment: &str, extra: &[&str]) -> DataPlane {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, admin_port) = (crate::free_port(), crate::free_port());
        let mut args = vec![
            "--control-plane".to_string(),
            cp.sync_url(),
            "--environment".into(),
            environment.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin_port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut dp = DataPlane {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            args,
            log_file: dir.path().join("data-plane.log"),
            _dir: dir,
        };
        dp.spawn().await;
        dp
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("log file");
        let child = Command::new(crate::bins::path("tollgate-data-plane"))
            .args(&self.args)
            .env("TOLLGATE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tollgate-data-plane");
        self.child = Some(child);
        let ready = format!("{}/readyz", self.admin_url);
        let log_file = self.log_file.clone();
        let child = &mut self.child;
        crate::wait_until(30, "the data plane to be ready", || {
            if let Some(c) = child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "the data plane exited with {status}:\n{}",
                    std::fs::read_to_string(&log_file).unwrap_or_default()
                );
            }
            let ready = ready.clone();
            async move { crate::http::get(&ready).await.is_ok_and(|(s, _)| s == 200) }
        })
        .await;
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    pub async fn metrics(&self) -> String {
        crate::http::get(&format!("{}/metrics", self.admin_url))
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// An `async-openai` client with the gateway as base URL and `key` as the API key.
    pub fn openai(&self, key: &str) -> async_openai::Client<async_openai::config::OpenAIConfig> {
        crate::http::install_crypto_provider();
        async_openai::Client::with_config(
            async_openai::config::OpenAIConfig::new()
                .with_api_base(format!("{}/v1", self.url))
                .with_api_key(key),
        )
    }
}

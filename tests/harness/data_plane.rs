//! The real `tollgate-data-plane` binary, fed by a control plane's sync API.

use std::path::{Path, PathBuf};
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
    /// Environment variables set for the process (see [`crate::process_env`]).
    env: Vec<(String, String)>,
    log_file: std::path::PathBuf,
    wait_ready: bool,
    _dir: tempfile::TempDir,
}

/// Options of a data plane; [`DataPlane::builder`].
#[must_use]
pub struct DataPlaneBuilder {
    control_plane: String,
    environment: String,
    args: Vec<String>,
    /// `--sync-token-file`: the control plane's by default.
    sync_token_file: Option<PathBuf>,
    /// A token to write to a file of the data plane's own (see [`Self::sync_token`]).
    own_token: Option<String>,
    app_tls: bool,
    wait_ready: bool,
    env: Vec<(String, String)>,
}

impl DataPlaneBuilder {
    /// An environment variable for the process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Another `--control-plane` URL than the control plane's own sync URL.
    pub fn control_plane(mut self, url: &str) -> Self {
        self.control_plane = url.to_string();
        self
    }

    /// `--control-plane-ca --client-cert --client-key`: mTLS to the control plane.
    pub fn client_tls(mut self, ca: &Path, cert: &Path, key: &Path) -> Self {
        for (flag, path) in [
            ("--control-plane-ca", ca),
            ("--client-cert", cert),
            ("--client-key", key),
        ] {
            self.args.push(flag.into());
            self.args.push(path.display().to_string());
        }
        self
    }

    /// `--tls-cert --tls-key`: apps talk HTTPS (and [`DataPlane::url`] is `https://`).
    pub fn app_tls(mut self, cert: &Path, key: &Path) -> Self {
        self.app_tls = true;
        for (flag, path) in [("--tls-cert", cert), ("--tls-key", key)] {
            self.args.push(flag.into());
            self.args.push(path.display().to_string());
        }
        self
    }

    /// Sync with `token` instead of the control plane's (`None`: no token at all).
    pub fn sync_token(mut self, token: Option<&str>) -> Self {
        self.sync_token_file = None;
        self.own_token = token.map(str::to_string);
        self
    }

    /// Extra flags.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self
    }

    /// Returns once the process runs (its admin port answers), without waiting for a snapshot.
    pub fn no_wait_ready(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// Starts the process; by default waits until it holds a snapshot (`/readyz` is 200).
    pub async fn start(self) -> DataPlane {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, admin_port) = (crate::free_port(), crate::free_port());
        let mut args = vec![
            "--control-plane".to_string(),
            self.control_plane,
            "--environment".into(),
            self.environment,
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin_port}"),
        ];
        let own_token = self.own_token.map(|t| {
            let file = dir.path().join("sync-token");
            crate::control_plane::write_private(&file, &format!("{t}\n"));
            file
        });
        if let Some(file) = own_token.or(self.sync_token_file) {
            args.push("--sync-token-file".into());
            args.push(file.display().to_string());
        }
        args.extend(self.args);
        let scheme = if self.app_tls { "https" } else { "http" };
        let mut dp = DataPlane {
            child: None,
            url: format!("{scheme}://127.0.0.1:{port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            args,
            env: self.env,
            log_file: dir.path().join("data-plane.log"),
            wait_ready: self.wait_ready,
            _dir: dir,
        };
        dp.spawn().await;
        dp
    }
}

impl DataPlane {
    /// Starts a data plane in `environment` against `cp`'s plaintext loopback sync port and
    /// waits until it holds a snapshot.
    pub async fn start(cp: &ControlPlane, environment: &str) -> DataPlane {
        Self::start_with(cp, environment, &[]).await
    }

    pub async fn start_with(cp: &ControlPlane, environment: &str, extra: &[&str]) -> DataPlane {
        Self::builder(cp, environment).args(extra).start().await
    }

    /// A data plane with options, subscribed to `cp` by default.
    pub fn builder(cp: &ControlPlane, environment: &str) -> DataPlaneBuilder {
        DataPlaneBuilder {
            control_plane: cp.sync_url(),
            environment: environment.into(),
            args: Vec::new(),
            sync_token_file: cp.sync_token_file().map(Path::to_path_buf),
            own_token: None,
            app_tls: false,
            wait_ready: true,
            env: Vec::new(),
        }
    }

    /// Whether `/readyz` answers 200 (the data plane holds a snapshot).
    pub async fn is_ready(&self) -> bool {
        crate::http::get(&format!("{}/readyz", self.admin_url))
            .await
            .is_ok_and(|(s, _)| s == 200)
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("log file");
        let mut cmd = Command::new(crate::bins::path("tollgate-data-plane"));
        crate::process_env(&mut cmd, &self.env);
        let child = cmd
            .args(&self.args)
            .env("TOLLGATE_LOG", "debug")
            .env_remove("TOLLGATE_SYNC_TOKEN")
            .env_remove("TOLLGATE_SYNC_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tollgate-data-plane");
        self.child = Some(child);
        let ready = format!("{}/readyz", self.admin_url);
        let log_file = self.log_file.clone();
        let wait_ready = self.wait_ready;
        let child = &mut self.child;
        let what = if wait_ready {
            "the data plane to be ready"
        } else {
            "the data plane to answer on its admin port"
        };
        crate::wait_until(30, what, || {
            if let Some(c) = child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "the data plane exited with {status}:\n{}",
                    std::fs::read_to_string(&log_file).unwrap_or_default()
                );
            }
            let ready = ready.clone();
            async move {
                crate::http::get(&ready)
                    .await
                    .is_ok_and(|(s, _)| s == 200 || !wait_ready)
            }
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

//! The real `tollgate-control-plane serve` binary, on etcd or on the embedded store.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{Ctl, Etcd};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

pub struct ControlPlane {
    child: Option<Child>,
    pub backend: Backend,
    pub admin_addr: String,
    sync_port: u16,
    pub token: String,
    pub etcd: Option<Etcd>,
    store_url: String,
    key_file: PathBuf,
    log_file: PathBuf,
    extra_args: Vec<String>,
    /// Environment variables set for the process (see [`crate::process_env`]).
    env: Vec<(String, String)>,
    sync_tls: Option<SyncTls>,
    /// `--sync-token-file`: always with plaintext sync (required), with mTLS on request.
    sync_token_file: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// The files of mTLS on the sync port (`--sync-tls-cert --sync-tls-key --sync-client-ca`).
#[derive(Clone, Debug)]
pub struct SyncTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Options of a control plane; [`ControlPlane::builder`].
#[must_use]
pub struct ControlPlaneBuilder {
    backend: Backend,
    sync_tls: Option<SyncTls>,
    sync_token: bool,
    shared: Option<Shared>,
    etcd: Option<Etcd>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What replicas share: the store, the master key file and the sync token file.
struct Shared {
    store_url: String,
    key_file: PathBuf,
    sync_token_file: Option<PathBuf>,
}

impl ControlPlaneBuilder {
    /// mTLS on the sync port instead of `--sync-insecure` (without a sync token, unless
    /// [`Self::sync_token`] asks for one).
    pub fn sync_tls(mut self, tls: SyncTls) -> Self {
        self.sync_tls = Some(tls);
        self
    }

    /// A sync token even with mTLS (plaintext sync always has one).
    pub fn sync_token(mut self) -> Self {
        self.sync_token = true;
        self
    }

    /// Another replica: same store (etcd), master key file and sync token as `other`,
    /// which keeps owning the etcd process.
    pub fn replica_of(mut self, other: &ControlPlane) -> Self {
        self.backend = other.backend;
        self.shared = Some(Shared {
            store_url: other.store_url.clone(),
            key_file: other.key_file.clone(),
            sync_token_file: other.sync_token_file.clone(),
        });
        self
    }

    /// Runs against this etcd (owned by the control plane from now on).
    pub fn etcd(mut self, etcd: Etcd) -> Self {
        self.backend = Backend::Etcd;
        self.etcd = Some(etcd);
        self
    }

    /// Extra `serve` flags.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts the process and waits until its admin API answers.
    pub async fn start(self) -> ControlPlane {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared_token = self.shared.as_ref().map(|s| s.sync_token_file.clone());
        let (etcd, store_url, key_file) = match self.shared {
            Some(Shared {
                store_url,
                key_file,
                ..
            }) => (None, store_url, key_file),
            None => {
                let key_file = dir.path().join("master.key");
                tollgate_control_plane::crypto::Keyring::generate_file(&key_file)
                    .expect("master key");
                match self.backend {
                    Backend::Embedded => (
                        None,
                        format!("file://{}", dir.path().join("store.redb").display()),
                        key_file,
                    ),
                    Backend::Etcd => {
                        let etcd = match self.etcd {
                            Some(e) => e,
                            None => Etcd::start().await,
                        };
                        let url = etcd.store_url();
                        (Some(etcd), url, key_file)
                    }
                }
            }
        };
        let port = crate::free_port();
        let sync_token_file = match shared_token {
            Some(file) => file,
            None if self.sync_tls.is_none() || self.sync_token => {
                let file = dir.path().join("sync-token");
                write_private(&file, &format!("tgsync_e2e-sync-token-{port}-0123456789\n"));
                Some(file)
            }
            None => None,
        };
        let mut cp = ControlPlane {
            child: None,
            backend: self.backend,
            admin_addr: format!("http://127.0.0.1:{port}"),
            sync_port: crate::free_port(),
            token: BOOTSTRAP_TOKEN.to_string(),
            etcd,
            store_url,
            log_file: dir.path().join("control-plane.log"),
            key_file,
            extra_args: self.extra_args,
            env: self.env,
            sync_tls: self.sync_tls,
            sync_token_file,
            dir,
        };
        cp.spawn().await;
        cp
    }
}

/// A bootstrap token that tests recognise in logs and files.
pub const BOOTSTRAP_TOKEN: &str = "tgadm_e2e-bootstrap-token-0123456789";

/// Writes `contents` to a new file of mode 0600.
pub fn write_private(path: &std::path::Path, contents: &str) {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl ControlPlane {
    pub async fn start(backend: Backend) -> ControlPlane {
        Self::start_with(backend, &[]).await
    }

    /// Starts with extra `serve` flags.
    pub async fn start_with(backend: Backend, extra_args: &[&str]) -> ControlPlane {
        Self::builder(backend).args(extra_args).start().await
    }

    /// A control plane with options (sync mTLS, a replica on a shared store, flags).
    pub fn builder(backend: Backend) -> ControlPlaneBuilder {
        ControlPlaneBuilder {
            backend,
            sync_tls: None,
            sync_token: false,
            shared: None,
            etcd: None,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the sync API (plaintext on loopback), or
    /// `https://127.0.0.1:PORT` with sync mTLS.
    pub fn sync_url(&self) -> String {
        let scheme = if self.sync_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.sync_port)
    }

    /// The mTLS files of the sync port, when it runs mTLS.
    pub fn sync_tls(&self) -> Option<&SyncTls> {
        self.sync_tls.as_ref()
    }

    /// The file of the sync token data planes must send, when the control plane has one.
    pub fn sync_token_file(&self) -> Option<&std::path::Path> {
        self.sync_token_file.as_deref()
    }

    /// The sync token itself (tests check that it never shows up in output).
    pub fn sync_token(&self) -> Option<String> {
        self.sync_token_file.as_ref().map(|f| {
            std::fs::read_to_string(f)
                .expect("sync token file")
                .trim()
                .to_string()
        })
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn key_file(&self) -> &std::path::Path {
        &self.key_file
    }

    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// Files that hold the store's bytes: the redb file, or etcd's data dir.
    pub fn store_files(&self) -> Vec<PathBuf> {
        let root = match &self.etcd {
            Some(e) => e.data_dir().to_path_buf(),
            None => self.dir.path().join("store.redb"),
        };
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    stack.push(e.path());
                }
            } else if p.is_file() {
                out.push(p);
            }
        }
        out
    }

    /// Everything the control plane printed, across restarts.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .expect("log file");
        let port = self
            .admin_addr
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut cmd = Command::new(crate::bins::path("tollgate-control-plane"));
        cmd.arg("serve")
            .args(["--store", &self.store_url])
            .arg("--master-key-file")
            .arg(&self.key_file)
            .args(["--bootstrap-token", BOOTSTRAP_TOKEN])
            .args(["--admin-listen", &format!("127.0.0.1:{port}")])
            .args(["--sync-listen", &format!("127.0.0.1:{}", self.sync_port)]);
        match &self.sync_tls {
            Some(tls) => cmd
                .arg("--sync-tls-cert")
                .arg(&tls.cert)
                .arg("--sync-tls-key")
                .arg(&tls.key)
                .arg("--sync-client-ca")
                .arg(&tls.client_ca),
            None => cmd.arg("--sync-insecure"),
        };
        if let Some(file) = &self.sync_token_file {
            cmd.arg("--sync-token-file").arg(file);
        }
        crate::process_env(&mut cmd, &self.env);
        let child = cmd
            .args(&self.extra_args)
            .env("TOLLGATE_LOG", "debug")
            .env_remove("TOLLGATE_MASTER_KEY")
            .env_remove("TOLLGATE_SYNC_TOKEN")
            .env_remove("TOLLGATE_SYNC_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tollgate-control-plane");
        self.child = Some(child);
        let addr = self.admin_addr.clone();
        let token = self.token.clone();
        let log_file = self.log_file.clone();
        crate::wait_until(30, "the control plane to answer", || {
            let (addr, token) = (addr.clone(), token.clone());
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "the control plane exited with {status}:\n{}",
                    std::fs::read_to_string(&log_file).unwrap_or_default()
                );
            }
            async move {
                match tollgate_sdk::Client::connect(&addr, &token).await {
                    Ok(c) => c
                        .who_am_i(tollgate_sdk::proto::WhoAmIRequest {})
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    /// `kill -9`.
    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// Kills (`-9`) and starts again with the same store, key and flags.
    pub async fn restart(&mut self) {
        self.kill9().await;
        self.spawn().await;
    }

    /// Replaces the master key file (for rotation tests) before a restart.
    pub fn set_master_keys(&self, lines: &[&str]) {
        std::fs::write(&self.key_file, lines.join("\n")).expect("write key file");
    }

    pub async fn client(&self) -> tollgate_sdk::Client {
        self.client_with(&self.token).await
    }

    pub async fn client_with(&self, token: &str) -> tollgate_sdk::Client {
        tollgate_sdk::Client::connect(&self.admin_addr, token)
            .await
            .expect("connect to the control plane")
    }

    /// `tollgatectl` pointed at this control plane with the owner token.
    pub fn ctl(&self) -> Ctl {
        Ctl::new(&self.admin_addr, &self.token)
    }
}

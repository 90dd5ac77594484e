//! A real etcd (Debian's `etcd-server`) on free loopback ports, in a temporary data dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Etcd {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    /// Server certificate, key and client CA: clients must speak TLS with a certificate.
    tls: Option<(crate::tls::CertFiles, PathBuf)>,
    _tmp: Option<tempfile::TempDir>,
}

const ETCD: &str = "/usr/bin/etcd";

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        Self::start_inner(None).await
    }

    /// Starts etcd serving clients over TLS with `server`'s certificate and requiring client
    /// certificates signed by `client_ca`.
    pub async fn start_tls(server: crate::tls::CertFiles, client_ca: PathBuf) -> Etcd {
        Self::start_inner(Some((server, client_ca))).await
    }

    async fn start_inner(tls: Option<(crate::tls::CertFiles, PathBuf)>) -> Etcd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut etcd = Etcd {
            child: None,
            data_dir: tmp.path().join("etcd"),
            client_port: crate::free_port(),
            peer_port: crate::free_port(),
            tls,
            _tmp: Some(tmp),
        };
        // A port picked free can be taken by another test before etcd binds it: etcd then
        // exits at once, and gets other ports.
        for _ in 0..3 {
            if etcd.spawn().await {
                return etcd;
            }
            etcd.client_port = crate::free_port();
            etcd.peer_port = crate::free_port();
        }
        panic!("etcd exited at start three times:\n{}", etcd.log_tail());
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The store URL the control plane takes.
    pub fn store_url(&self) -> String {
        format!("etcd://{}", self.endpoint())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Starts etcd and waits until it answers; false if it exited first.
    async fn spawn(&mut self) -> bool {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install it with `apt-get install -y etcd-server`"
        );
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.data_dir.with_extension("log")).expect("etcd log");
        let mut cmd = Command::new(ETCD);
        if let Some((server, ca)) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&server.cert)
                .arg("--key-file")
                .arg(&server.key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", "t"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
        let addr = self.endpoint();
        let tls = self.tls.is_some();
        // Slow under a full parallel test run on 2 cores: a generous deadline.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && matches!(c.try_wait(), Ok(Some(_)))
            {
                self.child = None;
                return false;
            }
            let answered = match tokio::net::TcpStream::connect(&addr).await {
                // Over TLS the listening port is the sign; clients retry until ready.
                Ok(_) if tls => true,
                Ok(_) => etcd_healthy(&addr).await,
                Err(_) => false,
            };
            if answered {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out after 60s waiting for etcd to answer:\n{}",
            self.log_tail()
        );
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same data dir and ports.
    pub async fn restart(&mut self) {
        self.kill();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            self.spawn().await,
            "etcd exited at restart:\n{}",
            self.log_tail()
        );
    }
}

/// etcd's `/health` over plain HTTP/1.1.
async fn etcd_healthy(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).contains("\"health\":\"true\"")
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

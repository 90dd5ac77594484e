//! Transport security of the sync port: mTLS, or plaintext on loopback only.
//!
//! The sync stream carries decrypted provider secrets, so a data plane must prove who it is
//! (a client certificate signed by the configured CA) before it gets anything. Plaintext is
//! for one machine: the address must be loopback, so nothing leaves the host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// How the sync server talks to data planes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncTransport {
    /// mTLS: the server's certificate and key, and the CA that signs data-plane certificates.
    Tls {
        cert: PathBuf,
        key: PathBuf,
        client_ca: PathBuf,
    },
    /// Plaintext; only ever built for a loopback address.
    Insecure,
}

/// Checks the sync flags together; the error says what to pass instead.
pub fn transport_from_flags(
    listen: SocketAddr,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    insecure: bool,
) -> anyhow::Result<SyncTransport> {
    const ALL_THREE: &str = "--sync-tls-cert FILE --sync-tls-key FILE --sync-client-ca FILE";
    let given = [&cert, &key, &client_ca]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if insecure {
        if given > 0 {
            anyhow::bail!(
                "--sync-insecure and the --sync-tls-* flags exclude each other: pass either {ALL_THREE} (mTLS) or --sync-insecure (plaintext, loopback only)"
            );
        }
        if !listen.ip().to_canonical().is_loopback() {
            anyhow::bail!(
                "--sync-insecure is accepted only on a loopback address (such as \
                 127.0.0.1:7071), because the sync stream carries decrypted provider secrets; \
                 to serve data planes on {listen}, pass {ALL_THREE} instead"
            );
        }
        return Ok(SyncTransport::Insecure);
    }
    match (cert, key, client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Ok(SyncTransport::Tls {
            cert,
            key,
            client_ca,
        }),
        (None, None, None) => anyhow::bail!(
            "the sync API on {listen} needs mTLS: pass {ALL_THREE} (data planes must present a \
             certificate signed by that CA), or --sync-insecure with a loopback --sync-listen \
             (such as 127.0.0.1:7071) for a single machine"
        ),
        (cert, key, ca) => {
            let missing: Vec<&str> = [
                (cert.is_none(), "--sync-tls-cert"),
                (key.is_none(), "--sync-tls-key"),
                (ca.is_none(), "--sync-client-ca"),
            ]
            .iter()
            .filter(|(m, _)| *m)
            .map(|(_, f)| *f)
            .collect();
            anyhow::bail!(
                "mTLS of the sync API needs all three of {ALL_THREE}; missing: {}",
                missing.join(", ")
            )
        }
    }
}

impl SyncTransport {
    /// Sets up `server` for this transport (TLS files are read and parsed here).
    pub fn apply(&self, server: Server) -> anyhow::Result<Server> {
        let SyncTransport::Tls {
            cert,
            key,
            client_ca,
        } = self
        else {
            return Ok(server);
        };
        server
            .tls_config(server_tls_config(cert, key, client_ca)?)
            .context(
                "cannot set up TLS for the sync API: --sync-tls-cert, --sync-tls-key and \
                 --sync-client-ca must be PEM files (a certificate chain, its private key, a CA)",
            )
    }

    /// Reads and parses the TLS files now, so that a bad file stops the start before the
    /// store is touched.
    pub fn check(&self) -> anyhow::Result<()> {
        self.apply(Server::builder()).map(drop)
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// The tonic TLS config: the server identity, and a client certificate signed by `client_ca`
/// REQUIRED on every connection (a handshake without one fails before any RPC).
pub fn server_tls_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> anyhow::Result<ServerTlsConfig> {
    let identity = Identity::from_pem(
        read(cert, "sync TLS certificate (--sync-tls-cert)")?,
        read(key, "sync TLS private key (--sync-tls-key)")?,
    );
    let ca = Certificate::from_pem(read(client_ca, "data-plane client CA (--sync-client-ca)")?);
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(ca)
        .client_auth_optional(false)
        .timeout(std::time::Duration::from_secs(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn sync_insecure_only_on_loopback() {
        let check = |listen: &str, ok: bool| {
            let r = transport_from_flags(addr(listen), None, None, None, true);
            assert_eq!(r.is_ok(), ok, "{listen}: {r:?}");
        };
        check("127.0.0.1:7071", true);
        check("127.9.9.9:7071", true);
        check("[::1]:7071", true);
        check("[::ffff:127.0.0.1]:7071", true);
        check("0.0.0.0:7071", false);
        check("10.0.0.5:7071", false);
        check("[::]:7071", false);
    }

    #[test]
    fn sync_tls_flags_all_or_none() {
        let p = |s: &str| Some(PathBuf::from(s));
        let a = addr("0.0.0.0:7071");
        let err = |r: anyhow::Result<SyncTransport>| format!("{:#}", r.expect_err("refused"));
        assert!(err(transport_from_flags(a, None, None, None, false)).contains("needs mTLS"));
        let partial = err(transport_from_flags(a, p("c"), None, p("ca"), false));
        assert!(partial.contains("missing: --sync-tls-key"), "{partial}");
        let both = err(transport_from_flags(
            addr("127.0.0.1:1"),
            p("c"),
            p("k"),
            p("ca"),
            true,
        ));
        assert!(both.contains("exclude each other"), "{both}");
        assert_eq!(
            transport_from_flags(a, p("c"), p("k"), p("ca"), false).expect("tls"),
            SyncTransport::Tls {
                cert: "c".into(),
                key: "k".into(),
                client_ca: "ca".into()
            }
        );
    }

    #[test]
    fn sync_tls_files_are_checked_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem file").expect("write");
        let tls = |cert: &Path| SyncTransport::Tls {
            cert: cert.to_owned(),
            key: junk.clone(),
            client_ca: junk.clone(),
        };
        let missing = format!(
            "{:#}",
            tls(Path::new("/nonexistent/cp.pem"))
                .check()
                .expect_err("missing")
        );
        assert!(
            missing.contains("--sync-tls-cert") && missing.contains("/nonexistent/cp.pem"),
            "{missing}"
        );
        let garbage = format!("{:#}", tls(&junk).check().expect_err("garbage"));
        assert!(garbage.contains("PEM"), "{garbage}");
        assert!(SyncTransport::Insecure.check().is_ok());
    }
}

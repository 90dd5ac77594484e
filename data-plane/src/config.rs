//! Command line and environment configuration (DESIGN 5). Every flag also reads
//! `TOLLGATE_` + its name in upper snake case.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Default body limit: large enough for long multi-turn prompts, small enough to bound memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default wait for a provider's response headers.
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 300_000;
/// Default time for an app to send a request head.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// Default of `--body-read-timeout-ms`.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 60_000;
/// Default cap on concurrent app connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default first wait before a retry to a provider already tried.
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 500;

/// Configuration of one data plane process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tollgate-data-plane",
    version,
    about = "Tollgate data plane: the OpenAI-compatible gateway"
)]
pub struct Config {
    /// Control plane sync address: https://cp:7071 (http:// only on a loopback address).
    #[arg(long, env = "TOLLGATE_CONTROL_PLANE")]
    pub control_plane: String,
    /// CA certificate (PEM) that signed the control plane's certificate.
    #[arg(long, env = "TOLLGATE_CONTROL_PLANE_CA")]
    pub control_plane_ca: Option<PathBuf>,
    /// This data plane's client certificate (PEM) for mTLS to the control plane.
    #[arg(long, env = "TOLLGATE_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, env = "TOLLGATE_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// File holding the sync token the control plane requires (the same as its own
    /// --sync-token-file); else the token itself may come from TOLLGATE_SYNC_TOKEN. Needed
    /// with a plaintext (http://) control plane, optional with mTLS.
    #[arg(long, env = "TOLLGATE_SYNC_TOKEN_FILE")]
    pub sync_token_file: Option<PathBuf>,
    /// The sync token, set by embedders (the control plane's `dev`); wins over
    /// --sync-token-file and TOLLGATE_SYNC_TOKEN.
    #[arg(skip)]
    pub sync_token: Option<crate::secret::Secret>,
    /// The environment whose connections this data plane serves.
    #[arg(long, env = "TOLLGATE_ENVIRONMENT", default_value = "production")]
    pub environment: String,
    /// Address of the OpenAI-compatible API.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", default_value = "0.0.0.0:8081")]
    pub admin_listen: SocketAddr,
    /// Certificate chain (PEM) to serve apps over TLS (with --tls-key).
    #[arg(long, env = "TOLLGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "TOLLGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body accepted (413 above).
    #[arg(long, env = "TOLLGATE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Time allowed to open a connection to a provider (502 after).
    #[arg(
        long,
        env = "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub upstream_connect_timeout_ms: u64,
    /// Longest wait for a provider's response headers (504 after): models may think for
    /// minutes before their first byte.
    #[arg(
        long,
        env = "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
        default_value_t = DEFAULT_FIRST_BYTE_TIMEOUT_MS
    )]
    pub upstream_first_byte_timeout_ms: u64,
    /// Longest silence from a provider once its answer has started (504 after).
    #[arg(
        long,
        env = "TOLLGATE_UPSTREAM_IDLE_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub upstream_idle_timeout_ms: u64,
    /// First wait before retrying a provider already tried for a request (429, 5xx,
    /// unreachable); it doubles at each retry, up to 16 times this. Retries per request:
    /// the route's `retries`, else 2.
    #[arg(long, env = "TOLLGATE_RETRY_BACKOFF_MS", default_value_t = DEFAULT_RETRY_BACKOFF_MS)]
    pub retry_backoff_ms: u64,
    /// Let providers be reached at link-local and cloud metadata addresses (169.254.0.0/16,
    /// fe80::/10, fd00:ec2::254, 100.100.100.200), by IP or by a name resolving there. Through
    /// an egress proxy (HTTPS_PROXY, ...) the proxy resolves names: then IP literals and the
    /// metadata services' names are refused here, and the proxy's rules decide the rest.
    #[arg(
        long,
        env = "TOLLGATE_ALLOW_LINK_LOCAL_UPSTREAMS",
        default_value_t = false
    )]
    pub allow_link_local_upstreams: bool,
    /// CA certificates (PEM) trusted for https:// provider endpoints besides the public
    /// roots: the CA of a self-hosted endpoint's certificate. Read at start.
    #[arg(long, env = "TOLLGATE_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// Time an app connection has to send a complete HTTP/1 request head (slowloris guard).
    #[arg(
        long,
        env = "TOLLGATE_HEADER_READ_TIMEOUT_MS",
        default_value_t = DEFAULT_HEADER_READ_TIMEOUT_MS
    )]
    pub header_read_timeout_ms: u64,
    /// Time an app has to send the whole request body once its head has arrived (408
    /// after): a client that stalls mid-body does not hold a connection and a buffer.
    #[arg(
        long,
        env = "TOLLGATE_BODY_READ_TIMEOUT_MS",
        default_value_t = DEFAULT_BODY_READ_TIMEOUT_MS
    )]
    pub body_read_timeout_ms: u64,
    /// On shutdown, how long to keep accepting new requests while `/readyz` already answers
    /// 503, so load balancers stop sending before the listener closes (Kubernetes before
    /// 1.30 has no native preStop sleep; 0: close at once).
    #[arg(long, env = "TOLLGATE_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,
    /// Most app connections served at once; further ones wait in the listen backlog until
    /// one closes.
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Threads serving app connections, each with its own single-threaded runtime and
    /// provider connection pool (0: one per available CPU).
    #[arg(long, env = "TOLLGATE_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Id of this process in usage reports; a fresh one per start by default. Reusing an id
    /// across restarts is safe (report sequences start from the start time in microseconds,
    /// so they keep growing), but two processes running at once must not share one.
    #[arg(long, env = "TOLLGATE_INSTANCE_ID", default_value_t = uuid::Uuid::new_v4().to_string())]
    pub instance_id: String,
}

impl Config {
    /// A configuration with every default, for embedding (the control plane's `dev` mode).
    pub fn new(control_plane: impl Into<String>) -> Self {
        Self {
            control_plane: control_plane.into(),
            control_plane_ca: None,
            client_cert: None,
            client_key: None,
            sync_token_file: None,
            sync_token: None,
            environment: "production".into(),
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            upstream_connect_timeout_ms: 10_000,
            upstream_first_byte_timeout_ms: DEFAULT_FIRST_BYTE_TIMEOUT_MS,
            upstream_idle_timeout_ms: 60_000,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            allow_link_local_upstreams: false,
            upstream_ca_file: None,
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            body_read_timeout_ms: DEFAULT_BODY_READ_TIMEOUT_MS,
            drain_delay_ms: 0,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            workers: 0,
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Checks everything at once, so an operator fixes all problems in one round.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        match control_plane_scheme(&self.control_plane) {
            Err(p) => problems.push(p),
            Ok(Scheme::Https) => {
                for (flag, v) in [
                    ("--control-plane-ca", &self.control_plane_ca),
                    ("--client-cert", &self.client_cert),
                    ("--client-key", &self.client_key),
                ] {
                    match v {
                        None => problems.push(format!(
                            "{flag} is required with an https:// control plane (mTLS: the control plane sends secrets only to data planes that prove who they are)"
                        )),
                        Some(p) => check_readable(flag, p, &mut problems),
                    }
                }
            }
            Ok(Scheme::HttpLoopback) => {}
        }
        if let Err(p) = self.load_sync_token() {
            problems.push(p);
        }
        if self.environment.trim().is_empty() {
            problems.push("--environment must not be empty".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => {
                check_readable("--tls-cert", c, &mut problems);
                check_readable("--tls-key", k, &mut problems);
            }
            (None, None) => {}
            _ => problems.push("--tls-cert and --tls-key go together: give both or neither".into()),
        }
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            problems.push(format!(
                "--listen and --admin-listen are both {}",
                self.listen
            ));
        }
        if self.max_body_bytes == 0 {
            problems.push("--max-body-bytes must be above 0".into());
        }
        if self.upstream_connect_timeout_ms == 0 {
            problems.push("--upstream-connect-timeout-ms must be above 0".into());
        }
        for (flag, value) in [
            ("--upstream-idle-timeout-ms", self.upstream_idle_timeout_ms),
            (
                "--upstream-first-byte-timeout-ms",
                self.upstream_first_byte_timeout_ms,
            ),
            ("--header-read-timeout-ms", self.header_read_timeout_ms),
            ("--body-read-timeout-ms", self.body_read_timeout_ms),
        ] {
            if value == 0 {
                problems.push(format!("{flag} must be above 0"));
            }
        }
        if self.drain_delay_ms > 300_000 {
            problems.push("--drain-delay-ms must be at most 300000 (5 minutes)".into());
        }
        if self.max_connections == 0 {
            problems.push("--max-connections must be above 0".into());
        }
        if !(1..=60_000).contains(&self.retry_backoff_ms) {
            problems.push("--retry-backoff-ms must be between 1 and 60000".into());
        }
        if self.instance_id.trim().is_empty() {
            problems.push("--instance-id must not be empty".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Connect timeout to providers.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_connect_timeout_ms)
    }

    /// Longest silence from a provider.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_idle_timeout_ms)
    }

    /// Longest wait for a provider's response headers.
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_first_byte_timeout_ms)
    }

    /// How long new requests are still accepted once shutdown has begun.
    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }

    /// Longest time to read a request body.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// First wait before retrying a provider already tried.
    pub fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }

    /// Limits of the app-facing listener.
    pub fn server_limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_connections: self.max_connections,
        }
    }

    /// The sync token sent to the control plane: the embedder's, else the one of
    /// --sync-token-file or TOLLGATE_SYNC_TOKEN (`None`: none configured).
    pub fn load_sync_token(&self) -> Result<Option<crate::secret::Secret>, String> {
        match &self.sync_token {
            Some(token) => Ok(Some(token.clone())),
            None => crate::sync::token::load(
                self.sync_token_file.as_deref(),
                crate::sync::token::from_env(),
            ),
        }
    }

    /// Whether sync runs over mTLS (else plaintext on loopback).
    pub fn sync_uses_tls(&self) -> bool {
        matches!(control_plane_scheme(&self.control_plane), Ok(Scheme::Https))
    }
}

/// Every problem found by [`Config::validate`].
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

enum Scheme {
    Https,
    HttpLoopback,
}

fn control_plane_scheme(url: &str) -> Result<Scheme, String> {
    let uri: http::Uri = url.parse().map_err(|e| {
        format!("--control-plane {url:?} is not a URL ({e}); expected https://HOST:7071")
    })?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(Scheme::Https),
        Some("http") if is_loopback(host) => Ok(Scheme::HttpLoopback),
        Some("http") => Err(format!(
            "--control-plane {url:?}: plaintext http:// is accepted only on a loopback address (127.0.0.1, ::1, localhost); use https:// with --control-plane-ca, --client-cert and --client-key"
        )),
        _ => Err(format!(
            "--control-plane {url:?}: expected https://HOST:PORT"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_readable(flag: &str, path: &PathBuf, problems: &mut Vec<String>) {
    if let Err(e) = std::fs::metadata(path) {
        problems.push(format!("{flag} {}: {e}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["tollgate-data-plane"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).expect("parse")
    }

    #[test]
    fn defaults_match_design() {
        let c = parse(&["--control-plane", "http://127.0.0.1:7071"]);
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.admin_listen.to_string(), "0.0.0.0:8081");
        assert_eq!(c.environment, "production");
        assert_eq!(c.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(c.upstream_idle_timeout_ms, 60_000);
        assert!(!c.instance_id.is_empty());
        assert_eq!(c.upstream_first_byte_timeout_ms, 300_000);
        assert_eq!(c.header_read_timeout_ms, 30_000);
        assert_eq!(c.body_read_timeout_ms, 60_000);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.retry_backoff_ms, 500);
        assert!(!c.allow_link_local_upstreams);
        c.validate().expect("valid");
        let n = Config::new("http://127.0.0.1:7071");
        assert_eq!(
            (n.listen, n.admin_listen, n.max_body_bytes),
            (c.listen, c.admin_listen, c.max_body_bytes)
        );
    }

    #[test]
    fn new_flags_parse() {
        let c = parse(&[
            "--control-plane",
            "http://127.0.0.1:7071",
            "--allow-link-local-upstreams",
            "--header-read-timeout-ms",
            "500",
            "--body-read-timeout-ms",
            "700",
            "--max-connections",
            "3",
            "--upstream-first-byte-timeout-ms",
            "9",
        ]);
        assert!(c.allow_link_local_upstreams);
        assert_eq!(c.body_read_timeout_ms, 700);
        assert_eq!(
            (
                c.header_read_timeout_ms,
                c.max_connections,
                c.upstream_first_byte_timeout_ms
            ),
            (500, 3, 9)
        );
        let mut z = c.clone();
        z.max_connections = 0;
        z.header_read_timeout_ms = 0;
        z.body_read_timeout_ms = 0;
        z.upstream_first_byte_timeout_ms = 0;
        z.retry_backoff_ms = 0;
        assert_eq!(z.validate().expect_err("zeros").problems.len(), 5);
    }

    #[test]
    fn plaintext_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:7071",
            "http://localhost:7071",
            "http://[::1]:7071",
        ] {
            assert!(control_plane_scheme(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:7071",
            "http://cp:7071",
            "ftp://cp",
            "not a url",
        ] {
            assert!(control_plane_scheme(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut c = Config::new("https://cp:7071");
        c.tls_cert = Some("/nonexistent/cert.pem".into());
        c.max_body_bytes = 0;
        let err = c.validate().expect_err("invalid");
        // Three missing mTLS files, the lone --tls-cert, the zero body limit.
        assert_eq!(err.problems.len(), 5, "{err}");
    }
}

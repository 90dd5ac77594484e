//! Command line of `tollgate-control-plane`: `serve`, `dev` and `reencrypt`. Every flag also
//! reads `TOLLGATE_<FLAG>`; the master key itself may come from `TOLLGATE_MASTER_KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tollgate_data_plane::sync::token as sync_token;

use crate::api::Ctx;
use crate::bootstrap;
use crate::crypto::Keyring;
use crate::store::{self, EmbeddedStore, Store};
use crate::sync::{SyncTransport, TokenCheck};
use crate::validate::Validator;

#[derive(Parser, Debug)]
#[command(
    name = "tollgate-control-plane",
    version,
    about = "Tollgate control plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, env = "TOLLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at startup: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the control plane against etcd or a store file.
    Serve(ServeArgs),
    /// One process for a single machine: the embedded store and the control plane, with
    /// defaults that need no setup.
    Dev(DevArgs),
    /// Re-encrypt every stored secret with the active (first) master key, after a rotation.
    Reencrypt(StoreArgs),
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// `etcd://HOST:PORT[,HOST:PORT...]` or `file://PATH`.
    #[arg(long, env = "TOLLGATE_STORE")]
    pub store: String,
    /// Prefix of every key in the store.
    #[arg(long, env = "TOLLGATE_STORE_PREFIX", default_value = "/tollgate/v1/")]
    pub store_prefix: String,
    /// File with the base64 master key(s), one per line, the active one first. Without it,
    /// `TOLLGATE_MASTER_KEY` holds them (comma-separated).
    #[arg(long, env = "TOLLGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// PEM CA bundle of etcd's server certificates; given, etcd is dialled over TLS.
    #[arg(long, env = "TOLLGATE_ETCD_CA_FILE")]
    pub etcd_ca_file: Option<PathBuf>,
    /// PEM client certificate for etcd (`--client-cert-auth`); needs --etcd-key-file.
    #[arg(long, env = "TOLLGATE_ETCD_CERT_FILE", requires_all = ["etcd_key_file", "etcd_ca_file"])]
    pub etcd_cert_file: Option<PathBuf>,
    /// PEM private key of --etcd-cert-file.
    #[arg(long, env = "TOLLGATE_ETCD_KEY_FILE", requires = "etcd_cert_file")]
    pub etcd_key_file: Option<PathBuf>,
    /// etcd user (its password from TOLLGATE_ETCD_PASSWORD).
    #[arg(long, env = "TOLLGATE_ETCD_USERNAME")]
    pub etcd_username: Option<String>,
}

impl StoreArgs {
    /// Opens the store with the etcd TLS and user settings.
    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let mut etcd = store::EtcdOptions {
            ca_pem: self.etcd_ca_file.as_ref().map(read).transpose()?,
            ..Default::default()
        };
        if let (Some(cert), Some(key)) = (&self.etcd_cert_file, &self.etcd_key_file) {
            etcd.identity = Some((read(cert)?, read(key)?));
        }
        if let Some(user) = &self.etcd_username {
            let password = std::env::var("TOLLGATE_ETCD_PASSWORD").map_err(|_| {
                anyhow::anyhow!("--etcd-username needs the password in TOLLGATE_ETCD_PASSWORD")
            })?;
            etcd.user = Some((user.clone(), password));
        }
        Ok(store::open_with(&self.store, &self.store_prefix, &etcd).await?)
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Owner token created on first start (and re-added if missing); else one is generated
    /// and printed once.
    #[arg(long, env = "TOLLGATE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Address of the admin gRPC API.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", default_value = "0.0.0.0:7070")]
    pub admin_listen: SocketAddr,
    /// PEM certificate (chain) of the admin API; with --admin-tls-key, the admin API speaks
    /// TLS. Without, it is plaintext (a warning is logged unless it listens on loopback).
    #[arg(long, env = "TOLLGATE_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of the admin API.
    #[arg(long, env = "TOLLGATE_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub validation: ValidationArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
}

/// The sync API that data planes connect to: mTLS, or plaintext on loopback.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Address of the sync gRPC API (config streams and usage reports of data planes).
    #[arg(long, env = "TOLLGATE_SYNC_LISTEN", default_value = "0.0.0.0:7071")]
    pub sync_listen: SocketAddr,
    /// PEM certificate (chain) of the sync server.
    #[arg(long, env = "TOLLGATE_SYNC_TLS_CERT")]
    pub sync_tls_cert: Option<PathBuf>,
    /// PEM private key of the sync server.
    #[arg(long, env = "TOLLGATE_SYNC_TLS_KEY")]
    pub sync_tls_key: Option<PathBuf>,
    /// PEM CA that signs data-plane client certificates; a data plane without one is refused.
    #[arg(long, env = "TOLLGATE_SYNC_CLIENT_CA")]
    pub sync_client_ca: Option<PathBuf>,
    /// Serve the sync API in plaintext; accepted only on a loopback --sync-listen, and only
    /// with a sync token.
    #[arg(long, env = "TOLLGATE_SYNC_INSECURE")]
    pub sync_insecure: bool,
    /// File holding the sync token data planes must send (their --sync-token-file);
    /// without it, TOLLGATE_SYNC_TOKEN holds the token. Required with --sync-insecure;
    /// with mTLS optional, and checked too when set.
    #[arg(long, env = "TOLLGATE_SYNC_TOKEN_FILE")]
    pub sync_token_file: Option<PathBuf>,
}

impl SyncArgs {
    fn transport(&self) -> anyhow::Result<SyncTransport> {
        crate::sync::transport_from_flags(
            self.sync_listen,
            self.sync_tls_cert.clone(),
            self.sync_tls_key.clone(),
            self.sync_client_ca.clone(),
            self.sync_insecure,
        )
    }

    /// The token check for `transport` (a token is required when it is plaintext).
    fn token_check(&self, transport: &SyncTransport) -> anyhow::Result<TokenCheck> {
        TokenCheck::from_flags(
            transport,
            self.sync_token_file.as_deref(),
            sync_token::from_env(),
        )
    }
}

#[derive(Args, Debug)]
pub struct ValidationArgs {
    /// Let provider endpoints resolve to link-local and cloud metadata addresses
    /// (169.254.0.0/16, fe80::/10, fd00:ec2::254). Off: such endpoints are refused. Through
    /// an egress proxy (HTTPS_PROXY, ...) the proxy resolves names: then IP literals and the
    /// metadata services' names are refused here, and the proxy's rules decide the rest.
    #[arg(long, env = "TOLLGATE_ALLOW_LINK_LOCAL_ENDPOINTS")]
    pub allow_link_local_endpoints: bool,
    /// CA certificates (PEM) trusted for https:// provider endpoints besides the public
    /// roots (a self-hosted endpoint's private CA), for validation and policy-assistant
    /// calls; give data planes the same file (`tollgate-data-plane --upstream-ca-file`).
    /// `dev` passes it to its gateway.
    #[arg(long, env = "TOLLGATE_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// Time limit of a validation call to a provider, in seconds.
    #[arg(long, env = "TOLLGATE_VALIDATION_TIMEOUT_SECS", default_value_t = 10)]
    pub validation_timeout_secs: u64,
}

#[derive(Args, Debug)]
pub struct AlertArgs {
    /// URL that each ALERT policy violation is POSTed to as JSON (best effort, 3 attempts;
    /// alerts are listed by `tollgatectl policy alerts` either way). A URL holding a secret
    /// is better given in the environment variable than on the command line.
    #[arg(long, env = "TOLLGATE_ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,
}

impl AlertArgs {
    fn webhook(&self) -> anyhow::Result<Option<crate::alerts::Webhook>> {
        self.alert_webhook_url
            .as_deref()
            .map(crate::alerts::Webhook::new)
            .transpose()
            .map_err(anyhow::Error::msg)
    }
}

#[derive(Args, Debug)]
pub struct RetentionArgs {
    /// Hours minute-level usage rows are kept (day rows and lifetime totals stay).
    #[arg(
        long,
        env = "TOLLGATE_USAGE_MINUTE_RETENTION_HOURS",
        default_value_t = 48
    )]
    pub usage_minute_retention_hours: u64,
    /// Days policy violation events are kept (their counts in usage rows stay).
    #[arg(long, env = "TOLLGATE_VIOLATION_RETENTION_DAYS", default_value_t = 90)]
    pub violation_retention_days: u64,
}

impl RetentionArgs {
    fn spawn(&self, ctx: &Ctx) {
        let keep = crate::retention::Keep {
            usage_minutes: Duration::from_secs(self.usage_minute_retention_hours.max(1) * 3600),
            violations: Duration::from_secs(self.violation_retention_days.max(1) * 24 * 3600),
        };
        tokio::spawn(crate::retention::run(
            ctx.store.clone(),
            keep,
            Duration::from_secs(600),
        ));
    }
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Holds the store, the master key and the admin token file.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./.tollgate")]
    pub data_dir: PathBuf,
    /// Address of the admin gRPC API.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN", default_value = "127.0.0.1:7070")]
    pub admin_listen: SocketAddr,
    /// Address of the sync API (plaintext, so it must be a loopback address).
    #[arg(long, env = "TOLLGATE_SYNC_LISTEN", default_value = "127.0.0.1:7071")]
    pub sync_listen: SocketAddr,
    /// Address of the in-process data plane (the OpenAI-compatible gateway).
    #[arg(
        long,
        env = "TOLLGATE_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub gateway_listen: SocketAddr,
    /// Address of the in-process data plane's /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "TOLLGATE_GATEWAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub gateway_admin_listen: SocketAddr,
    /// Owner token; else one is generated on first start, printed once and saved (0600).
    #[arg(long, env = "TOLLGATE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// File holding the sync token of the sync API (extra data planes pass the same with
    /// their --sync-token-file); without it and TOLLGATE_SYNC_TOKEN, <data dir>/sync-token,
    /// generated on the first start (0600).
    #[arg(long, env = "TOLLGATE_SYNC_TOKEN_FILE")]
    pub sync_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub validation: ValidationArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(cli: Cli) -> ExitCode {
    init_tracing(cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve(a).await,
            Command::Dev(a) => dev(a).await,
            Command::Reencrypt(a) => reencrypt(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_keyring(file: Option<&Path>) -> anyhow::Result<Keyring> {
    let env = std::env::var("TOLLGATE_MASTER_KEY").ok();
    Ok(Keyring::load(file, env.as_deref())?)
}

fn validator(a: &ValidationArgs) -> anyhow::Result<Validator> {
    let egress = tollgate_data_plane::proxy::Egress::new(
        "--upstream-ca-file",
        a.upstream_ca_file.as_deref(),
        a.allow_link_local_endpoints,
    )?;
    let aws = tollgate_data_plane::aws_identity::AwsIdentity::from_env(&egress)
        .map_err(anyhow::Error::msg)?;
    if aws.is_configured() {
        tracing::info!(
            "AWS connections without stored credentials are validated with {}",
            aws.describe()
        );
    }
    Ok(Validator::with_egress(
        &egress,
        std::sync::Arc::new(aws),
        Duration::from_secs(a.validation_timeout_secs.max(1)),
    ))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// Bootstraps, then serves the admin API until a signal.
async fn start(
    store: Arc<dyn Store>,
    keyring: Keyring,
    validator: Validator,
    alerts: Option<crate::alerts::Webhook>,
    bootstrap_token: Option<&str>,
    admin_listen: SocketAddr,
) -> anyhow::Result<(Arc<Ctx>, Option<String>, TcpListener)> {
    let boot = bootstrap::bootstrap(store.as_ref(), bootstrap_token).await?;
    bootstrap::move_policies(store.as_ref()).await?;
    let ctx = Arc::new(Ctx {
        store,
        keyring: Arc::new(keyring),
        validator,
        org_id: boot.org_id,
        alerts,
    });
    if let Some(t) = bootstrap_token {
        bootstrap::ensure_bootstrap_token(&ctx, t).await?;
    }
    let listener = TcpListener::bind(admin_listen).await.with_context(|| {
        format!("cannot listen on {admin_listen} (is another process using it?)")
    })?;
    Ok((ctx, boot.generated_token, listener))
}

async fn bind_sync(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the sync API (is another process using it?)")
    })
}

/// Runs the admin and sync servers (and, in `dev`, the data plane) until a signal stops them
/// all (or one fails).
async fn run_servers(
    ctx: Arc<Ctx>,
    admin: TcpListener,
    admin_tls: Option<tonic::transport::ServerTlsConfig>,
    sync: TcpListener,
    transport: SyncTransport,
    token: TokenCheck,
    gateway: Option<tollgate_data_plane::Gateway>,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tracing::info!(addr = %sync.local_addr()?, tls = matches!(transport, SyncTransport::Tls { .. }),
        token = token.is_enabled(), "sync API listening");
    let admin = crate::server::serve_admin(
        ctx.clone(),
        admin,
        admin_tls,
        until_stopped(stopped.clone()),
    );
    let gateway = {
        let stopped = until_stopped(stopped.clone());
        async move {
            match gateway {
                Some(g) => g.serve(stopped).await,
                None => Ok(()),
            }
        }
    };
    let sync = crate::sync::serve(ctx, sync, transport, token, until_stopped(stopped));
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
        Ok(())
    };
    tokio::try_join!(admin, sync, gateway, signal)?;
    Ok(())
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    // Flag mistakes first, before touching the store.
    let transport = a.sync.transport()?;
    transport.check()?;
    let token = a.sync.token_check(&transport)?;
    let alerts = a.alerts.webhook()?;
    let keyring = load_keyring(a.store.master_key_file.as_deref())?;
    let store = a.store.open().await?;
    let (ctx, generated, listener) = start(
        store,
        keyring,
        validator(&a.validation)?,
        alerts,
        a.bootstrap_token.as_deref(),
        a.admin_listen,
    )
    .await?;
    a.retention.spawn(&ctx);
    if let Some(token) = generated {
        println!("Admin token (shown once, store it now): {token}");
    }
    let sync = bind_sync(a.sync.sync_listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "admin API listening");
    let admin_tls = admin_tls(&a)?;
    let addr = listener.local_addr()?;
    if admin_tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin API is plaintext on a non-loopback address: admin tokens and provider secrets cross the network in clear; pass --admin-tls-cert/--admin-tls-key unless a mesh encrypts it");
    }
    run_servers(ctx, listener, admin_tls, sync, transport, token, None).await
}

fn admin_tls(a: &ServeArgs) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&a.admin_tls_cert, &a.admin_tls_key) else {
        return Ok(None);
    };
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    Ok(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

async fn dev(a: DevArgs) -> anyhow::Result<()> {
    // The in-process data plane connects over loopback; plaintext is refused anywhere else.
    let transport = crate::sync::transport_from_flags(a.sync_listen, None, None, None, true)?;
    let alerts = a.alerts.webhook()?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create the data dir {}", a.data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&a.data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let key_file = a.data_dir.join("master.key");
    if !key_file.exists() {
        Keyring::generate_file(&key_file)?;
    }
    let keyring = Keyring::load(Some(&key_file), None)?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(
        &a.data_dir.join("store.redb"),
        "/tollgate/v1/",
    )?);
    let (ctx, generated, listener) = start(
        store,
        keyring,
        validator(&a.validation)?,
        alerts,
        a.bootstrap_token.as_deref(),
        a.admin_listen,
    )
    .await?;
    a.retention.spawn(&ctx);
    let token_file = a.data_dir.join("admin-token");
    if let Some(token) = &generated {
        write_private(&token_file, &format!("{token}\n"))?;
    }
    let admin = listener.local_addr()?;
    let sync = bind_sync(a.sync_listen).await?;
    let sync_addr = sync.local_addr()?;
    let (token, token_source) = dev_sync_token(&a)?;
    let mut gw = tollgate_data_plane::Config::new(format!("http://{sync_addr}"));
    gw.sync_token = Some(token.clone());
    gw.listen = a.gateway_listen;
    gw.admin_listen = a.gateway_admin_listen;
    // One machine, one setting: endpoints the control plane accepts, its gateway can reach.
    gw.allow_link_local_upstreams = a.validation.allow_link_local_endpoints;
    gw.upstream_ca_file = a.validation.upstream_ca_file.clone();
    let gateway = tollgate_data_plane::Gateway::bind(gw).await?;
    let (gateway_addr, gateway_admin) = (gateway.listen_addr(), gateway.admin_addr());
    let token_line = match (&generated, a.bootstrap_token.is_some()) {
        (Some(t), _) => format!("{t} (shown once; saved in {})", token_file.display()),
        (None, true) => "the --bootstrap-token you passed".to_string(),
        (None, false) => format!("in {}", token_file.display()),
    };
    let token_env = if a.bootstrap_token.is_some() {
        "<your token>".to_string()
    } else {
        format!("$(cat {})", token_file.display())
    };
    println!(
        "Tollgate dev is running (state in {data_dir}).
  admin API:      http://{admin}   (tollgatectl)
  gateway:        http://{gateway_addr}/v1   (OpenAI-compatible)
  gateway admin:  http://{gateway_admin}/metrics
  sync API:       http://{sync_addr}   (data planes; plaintext on loopback, token {token_source})
  admin token:    {token_line}

Try it:
  export TOLLGATE_ADDR=http://{admin} TOLLGATE_TOKEN={token_env}
  printf %s \"$OPENAI_API_KEY\" | tollgatectl llm create --workspace default --name openai \\
      --type openai --secret-stdin --models gpt-4o-mini
  tollgatectl repo create --workspace default --name demo
  tollgatectl repo attach demo openai
  KEY=$(tollgatectl -o json key create --repo demo --name try | sed -n 's/.*\"secret\": \"\\(.*\\)\".*/\\1/p')
  curl -s http://{gateway_addr}/v1/chat/completions -H \"Authorization: Bearer $KEY\" \\
      -H 'content-type: application/json' \\
      -d '{{\"model\":\"openai/gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'",
        data_dir = a.data_dir.display(),
    );
    run_servers(
        ctx,
        listener,
        None,
        sync,
        transport,
        TokenCheck::new(&token),
        Some(gateway),
    )
    .await
}

/// `dev`'s sync token: the one given (--sync-token-file, TOLLGATE_SYNC_TOKEN), else
/// `<data dir>/sync-token`, generated on the first start; and where it is, for the banner.
fn dev_sync_token(a: &DevArgs) -> anyhow::Result<(tollgate_data_plane::secret::Secret, String)> {
    let given = sync_token::load(a.sync_token_file.as_deref(), sync_token::from_env())
        .map_err(anyhow::Error::msg)?;
    Ok(match (given, &a.sync_token_file) {
        (Some(t), Some(file)) => (t, format!("in {}", file.display())),
        (Some(t), None) => (t, format!("from {}", sync_token::SYNC_TOKEN_ENV)),
        (None, _) => {
            let file = a.data_dir.join("sync-token");
            if !file.exists() {
                let token = crate::auth::new_secret("tgsync_");
                write_private(&file, &format!("{token}\n"))?;
            }
            let token = sync_token::load(Some(&file), None)
                .map_err(anyhow::Error::msg)?
                .ok_or_else(|| anyhow::anyhow!("{} holds no sync token", file.display()))?;
            (token, format!("in {}", file.display()))
        }
    })
}

async fn reencrypt(a: StoreArgs) -> anyhow::Result<()> {
    let keyring = load_keyring(a.master_key_file.as_deref())?;
    let store = a.open().await?;
    let n = crate::rotate::reencrypt_all(store.as_ref(), &keyring).await?;
    println!("re-encrypted {n} configuration(s) with the active master key");
    Ok(())
}

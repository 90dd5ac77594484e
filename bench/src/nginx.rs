//! The reference proxy: Debian's nginx with a bare `proxy_pass` to the mock upstream, run in
//! the foreground as the current user from a config in a temporary directory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::procs::{Proc, port_open, wait_until};

/// Keepalive to the upstream (as the gateway pools its connections), no access log,
/// unbuffered so streamed chunks go out as they arrive (as the gateway forwards them). With
/// `upstream_ca`, HTTPS to the upstream, its certificate verified against that CA and TLS
/// sessions reused (as the gateway does).
fn config(dir: &Path, port: u16, upstream: u16, upstream_ca: Option<&Path>) -> String {
    let d = dir.display();
    let (scheme, tls) = match upstream_ca {
        None => ("http", String::new()),
        Some(ca) => (
            "https",
            format!(
                r#"
            proxy_ssl_trusted_certificate {};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;"#,
                ca.display()
            ),
        ),
    };
    format!(
        r#"worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    upstream mock {{
        server 127.0.0.1:{upstream};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {scheme}://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;{tls}
        }}
    }}
}}
"#
    )
}

/// Starts nginx on `port` in front of `upstream` (over HTTPS trusting `upstream_ca`, if
/// given); returns once it accepts connections.
pub async fn start(
    dir: &Path,
    port: u16,
    upstream: u16,
    upstream_ca: Option<&Path>,
) -> Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(dir, port, upstream, upstream_ca))?;
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("nginx not found: apt-get install -y nginx-light (or nginx)")?;
    let mut cmd = Command::new(nginx);
    cmd.args(["-p"])
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"]);
    let mut proc = Proc::spawn("nginx", cmd, &dir.join("nginx.log"))?;
    wait_until(&mut proc, Duration::from_secs(10), || port_open(port)).await?;
    Ok(proc)
}

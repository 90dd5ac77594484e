//! An egress proxy for provider traffic: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` (upper case first, then lower case; hyper-util's `Matcher`, curl's `NO_PROXY`
//! rules), and an HTTP CONNECT tunnel through the proxy for every matched provider
//! connection (our own handshake: hyper-util's `Tunnel` drops the proxy's status, which is
//! what tells an operator what to fix). TLS to the provider runs inside the tunnel, so the
//! proxy sees only the host and port.
//!
//! Loopback and link-local destinations never go through the proxy (its loopback is not
//! ours; a link-local address is on our link). Only `http://` proxies are supported (the
//! tunnel's first hop is plain TCP); credentials go in the URL
//! (`http://user:password@proxy:3128`) and are sent as `Proxy-Authorization: Basic`.

use std::fmt;
use std::sync::Arc;

use http::Uri;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

use super::{host_literal, is_aws_credentials_agent, is_forbidden, is_loopback_host};

/// Which provider connections go through which proxy. Cheap to clone.
#[derive(Clone)]
pub struct EgressProxy {
    matcher: Arc<Matcher>,
    /// What the startup log says: each variable set, proxy URLs without credentials.
    summary: String,
}

impl fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl EgressProxy {
    /// From the process environment; `None` when no proxy variable is set.
    pub fn from_env() -> Result<Option<EgressProxy>, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var` (a variable's value by name); `None` when no proxy is set. A proxy URL in
    /// effect that is not `http://host[:port]` is an error naming the variable (`ALL_PROXY`
    /// is in effect only for a scheme without its own variable).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let first = |upper: &'static str, lower: &'static str| {
            [upper, lower].into_iter().find_map(|n| {
                var(n)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (n, v))
            })
        };
        let https = first("HTTPS_PROXY", "https_proxy");
        let http = first("HTTP_PROXY", "http_proxy");
        let all = first("ALL_PROXY", "all_proxy").filter(|_| https.is_none() || http.is_none());
        let no = first("NO_PROXY", "no_proxy");
        if https.is_none() && http.is_none() && all.is_none() {
            return Ok(None);
        }
        let mut summary = Vec::new();
        for (name, value) in [&https, &http, &all].into_iter().flatten() {
            summary.push(format!("{name}={}", shown(name, value)?));
        }
        if let Some((name, value)) = &no {
            summary.push(format!("{name}={value}"));
        }
        let matcher = |no: Option<&str>| {
            let mut b = Matcher::builder();
            if let Some((_, v)) = &all {
                b = b.all(v.clone());
            }
            if let Some((_, v)) = &https {
                b = b.https(v.clone());
            }
            if let Some((_, v)) = &http {
                b = b.http(v.clone());
            }
            if let Some(no) = no {
                b = b.no(no);
            }
            b.build()
        };
        // What the matcher cannot parse it drops, and traffic would go out directly while
        // the log names a proxy: check that each scheme with a variable is proxied.
        let without_exceptions = matcher(None);
        for (scheme, set) in [("https", https.as_ref()), ("http", http.as_ref())] {
            let Some((name, _)) = set.or(all.as_ref()) else {
                continue;
            };
            let probe: Uri = format!("{scheme}://probe.invalid/")
                .parse()
                .expect("probe URI");
            if without_exceptions.intercept(&probe).is_none() {
                return Err(format!(
                    "{name}: not a usable proxy URL (want http://host:port)"
                ));
            }
        }
        Ok(Some(EgressProxy {
            matcher: Arc::new(matcher(no.as_ref().map(|(_, v)| v.as_str()))),
            summary: summary.join(" "),
        }))
    }

    /// The proxy `dst` goes through, if any.
    pub fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        let host = dst.host()?;
        // Loopback is ours alone; link-local addresses and the AWS container credentials
        // agents are on our link or node, where a proxy cannot reach.
        let local = is_loopback_host(host)
            || host_literal(host)
                .is_some_and(|ip| is_forbidden(ip) || is_aws_credentials_agent(ip));
        if local {
            return None;
        }
        self.matcher.intercept(dst)
    }

    /// The variables in effect, proxy credentials left out (for the startup log).
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// `value` of variable `name` as the log shows it: scheme, host and port. Refuses what the
/// tunnel cannot use.
fn shown(name: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    // Like curl, a proxy without a scheme is http.
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|_| format!("{name}: not a proxy URL (want http://host:port)"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{name}: the {} proxy scheme is not supported; use an http:// proxy (TLS to the provider runs inside its CONNECT tunnel)",
            uri.scheme_str().unwrap_or("")
        ));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{name}: the proxy URL has no host"))?;
    // `Uri::port` hides a port that is not a u16: look at the text after the host.
    let host_port = uri
        .authority()
        .map(|a| a.as_str().rsplit('@').next().unwrap_or_default())
        .unwrap_or_default();
    let port_text = host_port
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix(':'));
    if port_text.is_some_and(|p| p.parse::<u16>().is_err() || p == "0") {
        return Err(format!(
            "{name}: the proxy URL's port is not a port (1-65535)"
        ));
    }
    Ok(match uri.port_u16() {
        Some(port) => format!("http://{host}:{port}"),
        None => format!("http://{host}"),
    })
}

/// `dst` with its port spelled out (80 or 443 by scheme), as the CONNECT line needs it.
pub(super) fn with_port(dst: Uri) -> Uri {
    if dst.port().is_some() {
        return dst;
    }
    let port = if dst.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    // `host()` keeps an IPv6 address's brackets.
    let Some(host) = dst.host() else { return dst };
    let authority = format!("{host}:{port}");
    let mut parts = dst.clone().into_parts();
    match authority.parse() {
        Ok(a) => {
            parts.authority = Some(a);
            Uri::from_parts(parts).unwrap_or(dst)
        }
        Err(_) => dst,
    }
}

/// Opens an HTTP CONNECT tunnel to `dst` (its port spelled out, see [`with_port`]) on `io`,
/// a connection to the proxy `proxy`, with `auth` as `Proxy-Authorization`. The proxy's
/// answer is read byte by byte up to its blank line, so nothing of the tunnel is consumed.
pub(super) async fn open_tunnel<IO>(
    io: &mut IO,
    proxy: &Uri,
    dst: &Uri,
    auth: Option<&http::HeaderValue>,
) -> Result<(), TunnelFailed>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = dst.authority().map_or_else(String::new, |a| a.to_string());
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = auth {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(auth.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let broken = |e: std::io::Error| TunnelFailed::broken(proxy, dst, e.into());
    io.write_all(&head).await.map_err(broken)?;
    io.flush().await.map_err(broken)?;
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= 8192 {
            return Err(TunnelFailed::broken(
                proxy,
                dst,
                "an answer head over 8 KiB".into(),
            ));
        }
        if io.read(&mut byte).await.map_err(broken)? == 0 {
            return Err(TunnelFailed::broken(
                proxy,
                dst,
                "closed before answering".into(),
            ));
        }
        answer.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    match (version, code.and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            if (200..300).contains(&code) {
                Ok(())
            } else {
                Err(TunnelFailed::status(proxy, dst, code, reason.trim()))
            }
        }
        _ => Err(TunnelFailed::broken(
            proxy,
            dst,
            "an answer that is not HTTP".into(),
        )),
    }
}

/// A failed tunnel through the egress proxy, said in terms of what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TunnelFailed {
    message: String,
    #[source]
    source: Option<BoxError>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl TunnelFailed {
    /// The proxy could not be reached.
    pub(super) fn connect(proxy: &Uri, dst: &Uri, source: impl Into<BoxError>) -> Self {
        let (proxy, _) = names(proxy, dst);
        TunnelFailed {
            message: format!("could not connect to the egress proxy {proxy}"),
            source: Some(source.into()),
        }
    }

    /// The proxy answered the CONNECT with `code`.
    pub(super) fn status(proxy: &Uri, dst: &Uri, code: u16, reason: &str) -> Self {
        let (proxy, target) = names(proxy, dst);
        let what = match code {
            407 => {
                " (it wants credentials: put them in the proxy URL, http://user:password@host:port)"
                    .to_string()
            }
            401 | 403 => {
                " (wrong credentials in the proxy URL, or a port or host it does not allow)"
                    .to_string()
            }
            502..=504 => format!(" (it could not reach {target})"),
            _ => String::new(),
        };
        TunnelFailed {
            message: format!(
                "the egress proxy {proxy} answered the CONNECT to {target} with {code} {reason}{what}"
            ),
            source: None,
        }
    }

    /// The exchange with the proxy broke off.
    pub(super) fn broken(proxy: &Uri, dst: &Uri, source: BoxError) -> Self {
        let (proxy, target) = names(proxy, dst);
        TunnelFailed {
            message: format!("the egress proxy {proxy} broke off the tunnel to {target}"),
            source: Some(source),
        }
    }

    /// The tunnel was not open within `limit`.
    pub(super) fn timeout(proxy: &Uri, dst: &Uri, limit: std::time::Duration) -> Self {
        let (proxy, target) = names(proxy, dst);
        TunnelFailed {
            message: format!(
                "the egress proxy {proxy} did not open the tunnel to {target} within {:.1}s",
                limit.as_secs_f64()
            ),
            source: None,
        }
    }
}

/// The proxy's `host:port` and the destination's authority, as messages name them (the
/// proxy URL's credentials left out).
fn names(proxy: &Uri, dst: &Uri) -> (String, String) {
    let proxy = match (proxy.host(), proxy.port_u16()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "(the proxy)".to_string(),
    };
    (
        proxy,
        dst.authority().map_or_else(String::new, |a| a.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(vars: &[(&str, &str)]) -> Result<Option<EgressProxy>, String> {
        EgressProxy::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn target(p: &EgressProxy, dst: &str) -> Option<String> {
        p.intercept(&dst.parse().expect("uri"))
            .map(|i| i.uri().to_string())
    }

    #[test]
    fn variables_pick_the_proxy_per_scheme_and_no_proxy_and_loopback_bypass_it() {
        assert!(proxy(&[]).expect("none").is_none());
        assert!(proxy(&[("NO_PROXY", "*")]).expect("none").is_none());
        let p = proxy(&[
            ("https_proxy", "http://user:pa55@proxy.corp:3128"),
            ("HTTP_PROXY", "proxy.corp:8080"),
            ("no_proxy", "internal.corp,10.0.0.0/8"),
        ])
        .expect("valid")
        .expect("set");
        // Credentials never reach the log.
        assert_eq!(
            p.summary(),
            "https_proxy=http://proxy.corp:3128 HTTP_PROXY=http://proxy.corp:8080 no_proxy=internal.corp,10.0.0.0/8"
        );
        assert!(!format!("{p:?}").contains("pa55"));
        assert_eq!(
            target(&p, "https://api.openai.com/v1").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        let auth = p
            .intercept(&"https://api.openai.com/v1".parse().expect("uri"))
            .and_then(|i| i.basic_auth().cloned())
            .expect("basic auth");
        assert_eq!(auth, "Basic dXNlcjpwYTU1");
        assert_eq!(
            target(&p, "http://models.example.com:8000/v1").as_deref(),
            Some("http://proxy.corp:8080/")
        );
        for bypass in [
            "https://vllm.internal.corp/v1",
            "http://10.1.2.3:8000/v1",
            "http://127.0.0.1:11434/v1",
            "http://localhost:11434/v1",
            "https://[::1]:8443/v1",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert_eq!(target(&p, bypass), None, "{bypass}");
        }
    }

    #[test]
    fn values_are_trimmed_and_all_proxy_counts_only_where_it_applies() {
        // A Secret written from a file keeps its newline; the proxy must still be used.
        let p = proxy(&[("HTTPS_PROXY", "http://u:p@proxy.corp:3128\n")])
            .expect("valid")
            .expect("set");
        assert_eq!(
            target(&p, "https://api.openai.com/v1").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(target(&p, "http://models.corp/v1"), None, "no HTTP_PROXY");
        // Both schemes have their own: an unusable ALL_PROXY is not in effect.
        let p = proxy(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("HTTP_PROXY", "http://proxy.corp:3128"),
            ("ALL_PROXY", "socks5://old-proxy:1080"),
        ])
        .expect("ALL_PROXY ignored")
        .expect("set");
        assert!(!p.summary().contains("ALL_PROXY"), "{}", p.summary());
        // ALL_PROXY stands in for the missing one.
        let p = proxy(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("all_proxy", "http://fallback.corp:8080"),
        ])
        .expect("valid")
        .expect("set");
        assert_eq!(
            target(&p, "http://models.corp/v1").as_deref(),
            Some("http://fallback.corp:8080/")
        );
    }

    #[test]
    fn unusable_proxy_urls_are_refused_naming_the_variable() {
        for (vars, says) in [
            (
                vec![("HTTPS_PROXY", "socks5://proxy:1080")],
                "HTTPS_PROXY: the socks5 proxy scheme",
            ),
            (
                vec![("ALL_PROXY", "https://proxy:443")],
                "ALL_PROXY: the https proxy scheme",
            ),
            (vec![("http_proxy", "http://")], "http_proxy: "),
            (
                vec![("HTTPS_PROXY", "http://proxy:93055")],
                "HTTPS_PROXY: the proxy URL's port",
            ),
            (
                vec![("HTTPS_PROXY", "http://proxy:0")],
                "HTTPS_PROXY: the proxy URL's port",
            ),
        ] {
            let err = proxy(&vars).expect_err(says);
            assert!(err.starts_with(says), "{err}");
        }
    }

    #[test]
    fn connect_targets_spell_out_the_port() {
        for (dst, want) in [
            ("https://api.openai.com/v1", "api.openai.com:443"),
            ("http://models.corp/v1", "models.corp:80"),
            ("https://models.corp:8443/v1", "models.corp:8443"),
            ("https://[2001:db8::1]/v1", "[2001:db8::1]:443"),
        ] {
            let uri = with_port(dst.parse().expect("uri"));
            assert_eq!(uri.authority().map(|a| a.as_str()), Some(want), "{dst}");
        }
    }
}

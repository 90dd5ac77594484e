//! The process's own AWS identity, for AWS connections that store no credentials: on EKS an
//! IAM role for the service account (web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` and
//! `AWS_ROLE_ARN`, exchanged at STS with `AssumeRoleWithWebIdentity`) or EKS Pod Identity /
//! ECS (container credentials: `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`, with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), or static keys in `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`. Read from the environment at start, in
//! the AWS SDKs' order (static keys, web identity, container). Temporary credentials are
//! kept in memory only, shared by every worker, and fetched again five minutes before they
//! expire; the web identity token file is read at each exchange (the kubelet rotates it).
//! No EC2 instance metadata (IMDS): on Kubernetes the pod's role is the one to use.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::Full;

use crate::net::{host_literal, is_aws_credentials_agent, is_loopback_host};
use crate::providers::bedrock::{AwsAuth, AwsCredentials};
use crate::proxy::{Egress, HttpsClient, build_client};
use crate::secret::Secret;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Longest wait for STS or the container credentials endpoint.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// ECS's container credentials host, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// A failed fetch is answered again, without a new attempt, for this long: requests waiting
/// on an STS outage do not queue one timeout each.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// A set of AWS credentials; the secret parts zeroized on drop, never printed.
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    /// When temporary credentials stop working.
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// SigV4 with these credentials.
    pub fn auth(&self) -> AwsAuth<'_> {
        AwsAuth::SigV4(AwsCredentials {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            session_token: self.session_token.as_ref().map(Secret::expose),
        })
    }

    /// The secret parts, to scrub from provider errors.
    pub fn secrets(&self) -> [Option<&Secret>; 2] {
        [Some(&self.secret_access_key), self.session_token.as_ref()]
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|t| now + REFRESH_BEFORE < t)
    }
}

/// Where the identity comes from.
enum Source {
    Static(Arc<Credentials>),
    WebIdentity {
        token_file: PathBuf,
        role_arn: String,
        session_name: String,
        sts_url: String,
    },
    Container {
        url: String,
        token: Option<Secret>,
        token_file: Option<PathBuf>,
    },
}

/// The process's AWS identity (see the module). Cheap to share behind an `Arc`.
pub struct AwsIdentity {
    source: Option<Source>,
    client: HttpsClient,
    cached: ArcSwapOption<Credentials>,
    refresh: tokio::sync::Mutex<()>,
    /// The last failed fetch: when, and why.
    failed: std::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// Whether "no identity" was logged already.
    told_missing: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for AwsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl AwsIdentity {
    /// From the process environment; connections to STS and the container endpoint are
    /// made as `egress` says (proxy, TLS trust), the link-local container endpoints allowed.
    pub fn from_env(egress: &Egress) -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok(), egress)
    }

    /// From `var` (a variable's value by name).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        egress: &Egress,
    ) -> Result<Self, String> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let source = if let Some(access_key_id) = var("AWS_ACCESS_KEY_ID") {
            let secret = var("AWS_SECRET_ACCESS_KEY")
                .ok_or("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY")?;
            Some(Source::Static(Arc::new(Credentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
                expires: None,
            })))
        } else if let Some(token_file) = var("AWS_WEB_IDENTITY_TOKEN_FILE") {
            let role_arn = var("AWS_ROLE_ARN")
                .ok_or("AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN")?;
            let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
            let sts_url = match (var("AWS_ENDPOINT_URL_STS"), region) {
                (Some(url), _) => sts_endpoint(&url)?,
                (None, Some(region)) if region.starts_with("cn-") => {
                    format!("https://sts.{region}.amazonaws.com.cn")
                }
                (None, Some(region)) => format!("https://sts.{region}.amazonaws.com"),
                (None, None) => "https://sts.amazonaws.com".to_string(),
            };
            Some(Source::WebIdentity {
                token_file: token_file.into(),
                role_arn,
                session_name: var("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| "tollgate".to_string()),
                sts_url,
            })
        } else if let Some(half) = ["AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN"]
            .into_iter()
            .find(|n| var(n).is_some())
            .filter(|_| {
                var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none()
                    && var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_none()
            })
        {
            let missing = if half == "AWS_ROLE_ARN" {
                "AWS_WEB_IDENTITY_TOKEN_FILE"
            } else {
                "AWS_ACCESS_KEY_ID"
            };
            return Err(format!("{half} is set without {missing}"));
        } else {
            var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .or_else(|| {
                    var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                        .map(|p| format!("{ECS_CREDENTIALS_HOST}{p}"))
                })
                .map(|url| {
                    container_url_allowed(&url)?;
                    Ok::<_, String>(Source::Container {
                        url,
                        token: var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Secret::new),
                        token_file: var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                            .map(PathBuf::from),
                    })
                })
                .transpose()?
        };
        // Its own client: the container endpoints are link-local, which provider traffic
        // may not reach.
        let egress = Egress {
            allow_link_local: true,
            ..egress.clone()
        };
        Ok(AwsIdentity {
            source,
            client: build_client(&egress, FETCH_TIMEOUT),
            cached: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(()),
            failed: std::sync::Mutex::new(None),
            told_missing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the environment names an identity.
    pub fn is_configured(&self) -> bool {
        self.source.is_some()
    }

    /// What the startup log says (no secret).
    pub fn describe(&self) -> String {
        match &self.source {
            None => "no AWS identity in the environment".into(),
            Some(Source::Static(c)) => format!(
                "static AWS credentials from AWS_ACCESS_KEY_ID ({})",
                c.access_key_id
            ),
            Some(Source::WebIdentity {
                role_arn, sts_url, ..
            }) => format!("web identity: role {role_arn} through {sts_url}"),
            Some(Source::Container { url, .. }) => format!("container credentials from {url}"),
        }
    }

    /// Credentials valid for at least five more minutes (or static ones), fetched when
    /// needed; one fetch at a time, the others wait for it. A failure is logged once and
    /// answered for [`FAILURE_MEMORY`] without a new attempt; credentials in their last
    /// minutes are used while a renewal fails.
    pub async fn credentials(&self) -> Result<Arc<Credentials>, String> {
        let Some(source) = self.source.as_ref() else {
            let e = "this AWS connection stores no credentials, so it uses the gateway's own AWS identity, and there is none: set AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (IAM roles for service accounts), AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
            if !self
                .told_missing
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!("{e}");
            }
            return Err(e.to_string());
        };
        if let Source::Static(c) = source {
            return Ok(c.clone());
        }
        if let Some(answer) = self.without_fetch() {
            return answer;
        }
        let _one = self.refresh.lock().await;
        // Another caller may have fetched (or failed) while this one waited.
        if let Some(answer) = self.without_fetch() {
            return answer;
        }
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.fetch(source))
            .await
            .map_err(|_| {
                format!(
                    "{} did not answer within {}s",
                    self.describe(),
                    FETCH_TIMEOUT.as_secs()
                )
            })
            .and_then(|r| r);
        let e = match fetched {
            Ok(c) => {
                let c = Arc::new(c);
                self.cached.store(Some(c.clone()));
                self.set_failed(None);
                return Ok(c);
            }
            Err(e) => e,
        };
        let still_valid = self.still_valid();
        tracing::warn!(error = %e, still_valid = still_valid.is_some(), "could not get AWS credentials from {}", self.describe());
        self.set_failed(Some(e.clone()));
        still_valid.ok_or(e)
    }

    /// The answer when no fetch is needed: the cached credentials while fresh, or within
    /// [`FAILURE_MEMORY`] of a failed fetch, the current credentials while they still sign,
    /// else that failure.
    fn without_fetch(&self) -> Option<Result<Arc<Credentials>, String>> {
        if let Some(c) = self
            .cached
            .load_full()
            .filter(|c| c.fresh(SystemTime::now()))
        {
            return Some(Ok(c));
        }
        let failed = self.failed.lock().ok()?;
        let (at, e) = failed.as_ref()?;
        if at.elapsed() >= FAILURE_MEMORY {
            return None;
        }
        Some(self.still_valid().ok_or_else(|| e.clone()))
    }

    /// The current credentials if they sign for 30 s more: credentials in their last
    /// minutes keep serving while a renewal fails, rather than fail requests early.
    fn still_valid(&self) -> Option<Arc<Credentials>> {
        let now = SystemTime::now();
        self.cached
            .load_full()
            .filter(|c| c.expires.is_some_and(|t| now + Duration::from_secs(30) < t))
    }

    fn set_failed(&self, e: Option<String>) {
        if let Ok(mut failed) = self.failed.lock() {
            *failed = e.map(|e| (std::time::Instant::now(), e));
        }
    }

    async fn fetch(&self, source: &Source) -> Result<Credentials, String> {
        match source {
            Source::Static(_) => unreachable!("static credentials are not fetched"),
            Source::WebIdentity {
                token_file,
                role_arn,
                session_name,
                sts_url,
            } => {
                let token = read_token(token_file, "AWS_WEB_IDENTITY_TOKEN_FILE").await?;
                let form = form_urlencoded([
                    ("Action", "AssumeRoleWithWebIdentity"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", role_arn),
                    ("RoleSessionName", session_name),
                    ("WebIdentityToken", token.expose()),
                ]);
                let req = http::Request::post(format!("{sts_url}/"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("accept", "application/xml")
                    .body(Full::new(Bytes::from(form)))
                    .map_err(|e| format!("STS request: {e}"))?;
                let (status, body) = self.exchange(req, &[&token]).await?;
                let text = String::from_utf8_lossy(&body);
                if !(200..300).contains(&status) {
                    let code = xml_text(&text, "Code").unwrap_or_default();
                    let message = xml_text(&text, "Message").unwrap_or_default();
                    return Err(format!(
                        "STS refused AssumeRoleWithWebIdentity for {role_arn} ({status} {code}): {message}"
                    ));
                }
                sts_credentials(&text)
            }
            Source::Container {
                url,
                token,
                token_file,
            } => {
                let token = match (token_file, token) {
                    (Some(file), _) => {
                        Some(read_token(file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").await?)
                    }
                    (None, token) => token.clone(),
                };
                let mut req = http::Request::get(url.as_str());
                if let Some(token) = &token {
                    let value = token
                        .header("")
                        .map_err(|_| "the container authorization token is not a header value")?;
                    req = req.header(http::header::AUTHORIZATION, value);
                }
                let req = req
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| format!("container credentials request: {e}"))?;
                let secrets: Vec<&Secret> = token.iter().collect();
                let (status, body) = self.exchange(req, &secrets).await?;
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "the container credentials endpoint {url} answered {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ));
                }
                container_credentials(&body)
            }
        }
    }

    /// Sends `req`, reads the whole answer; errors name no secret in `secrets`.
    async fn exchange(
        &self,
        req: http::Request<Full<Bytes>>,
        secrets: &[&Secret],
    ) -> Result<(u16, Bytes), String> {
        let target = req.uri().to_string();
        let resp = self.client.request(req).await.map_err(|e| {
            let why = match e {
                crate::error::ProxyError::UpstreamConnect(m)
                | crate::error::ProxyError::BadUpstream(m) => m,
                other => other.to_string(),
            };
            format!("could not reach {target}: {why}")
        })?;
        let status = resp.status().as_u16();
        let body = crate::proxy::collect_answer(resp.into_body(), FETCH_TIMEOUT)
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let secrets: Vec<Option<&Secret>> = secrets.iter().map(|s| Some(*s)).collect();
        Ok((status, crate::proxy::scrub(body, &secrets)))
    }
}

/// `AWS_ENDPOINT_URL_STS`, checked: the web identity token is a credential, so https, or
/// http on loopback only (a local test STS).
fn sts_endpoint(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("AWS_ENDPOINT_URL_STS {url:?} is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = is_loopback_host(host);
    match uri.scheme_str() {
        _ if host.is_empty() => Err(format!("AWS_ENDPOINT_URL_STS {url:?} has no host")),
        Some("https") => Ok(url.trim_end_matches('/').to_string()),
        Some("http") if loopback => Ok(url.trim_end_matches('/').to_string()),
        _ => Err(format!(
            "AWS_ENDPOINT_URL_STS {url}: use https (http only on loopback): the web identity token must not travel in clear"
        )),
    }
}

/// The AWS SDKs send the container authorization token only to an https URL, a loopback
/// address, or the ECS and EKS Pod Identity agents' addresses; so does this.
fn container_url_allowed(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {url:?} is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let agent = host_literal(host).is_some_and(is_aws_credentials_agent);
    if uri.scheme_str() == Some("https") || is_loopback_host(host) || agent {
        Ok(())
    } else {
        Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {url}: an http URL must be a loopback address or the ECS or EKS Pod Identity agent (169.254.170.2, 169.254.170.23, [fd00:ec2::23]); the authorization token goes nowhere else"
        ))
    }
}

async fn read_token(file: &PathBuf, variable: &str) -> Result<Secret, String> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| format!("{variable} {}: {e}", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{variable} {}: the file is empty", file.display()));
    }
    Ok(Secret::new(token.to_string()))
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_urlencoded<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>...</tag>` in `xml`, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn expiration(text: &str) -> Result<SystemTime, String> {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
        .ok_or_else(|| format!("an Expiration that is not a date: {text:?}"))
}

/// The credentials of an `AssumeRoleWithWebIdentity` answer.
fn sts_credentials(xml: &str) -> Result<Credentials, String> {
    let field =
        |tag: &str| xml_text(xml, tag).ok_or_else(|| format!("STS answered without <{tag}>"));
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Some(Secret::new(field("SessionToken")?)),
        expires: Some(expiration(&field("Expiration")?)?),
    })
}

/// The credentials of a container credentials endpoint's JSON answer.
fn container_credentials(body: &[u8]) -> Result<Credentials, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
        expiration: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the container credentials endpoint answered unreadable JSON: {e}"))?;
    Ok(Credentials {
        access_key_id: a.access_key_id,
        secret_access_key: Secret::new(a.secret_access_key),
        session_token: a.token.map(Secret::new),
        expires: a.expiration.as_deref().map(expiration).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::proxy::upstream_tls;

    fn egress() -> Egress {
        Egress {
            tls: upstream_tls("--upstream-ca-file", None).expect("tls"),
            proxy: None,
            allow_link_local: false,
        }
    }

    fn identity(vars: &[(&str, String)]) -> Result<AwsIdentity, String> {
        AwsIdentity::from_vars(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            },
            &egress(),
        )
    }

    /// A web identity for role `arn:aws:iam::1:role/x`, its token `token` in a file under
    /// `dir` (returned), exchanged at `sts_url` (the default STS without one).
    fn web_identity(
        dir: &std::path::Path,
        token: &str,
        sts_url: Option<String>,
    ) -> (AwsIdentity, PathBuf) {
        let token_file = dir.join("token");
        std::fs::write(&token_file, token).expect("token");
        let mut vars = vec![
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x".to_string()),
        ];
        vars.extend(sts_url.map(|u| ("AWS_ENDPOINT_URL_STS", u)));
        (identity(&vars).expect("valid"), token_file)
    }

    /// A server answering every request with `status` and `body` (`{EXP}` replaced by a
    /// time `valid_for` from now), recording each request's method, headers and body.
    async fn endpoint(
        status: u16,
        body: &'static str,
        valid_for: Duration,
    ) -> (String, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (seen2, count2) = (seen.clone(), count.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (seen, count) = (seen2.clone(), count2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (seen, count) = (seen.clone(), count.clone());
                        async move {
                            let head = format!("{} {:?}", req.method(), req.headers());
                            let body_in = req.into_body().collect().await.expect("body").to_bytes();
                            seen.lock()
                                .expect("seen")
                                .push(format!("{head} {}", String::from_utf8_lossy(&body_in)));
                            count.fetch_add(1, Ordering::SeqCst);
                            let expires =
                                aws_smithy_types::DateTime::from(SystemTime::now() + valid_for)
                                    .fmt(aws_smithy_types::date_time::Format::DateTime)
                                    .expect("date");
                            let text = body.replace("{EXP}", &expires);
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        (url, seen, count)
    }

    const STS_OK: &str = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>FwoG&amp;token</SessionToken><SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey><Expiration>{EXP}</Expiration><AccessKeyId>ASIAMOCK</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

    #[tokio::test]
    async fn no_identity_says_how_to_give_one() {
        let id = identity(&[]).expect("none is valid");
        assert!(!id.is_configured());
        let err = id.credentials().await.expect_err("no identity");
        assert!(
            err.contains("AWS_WEB_IDENTITY_TOKEN_FILE")
                && err.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            "{err}"
        );
        let err = identity(&[("AWS_ACCESS_KEY_ID", "AKID".into())]).expect_err("half");
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        let err = identity(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t".into())]).expect_err("half");
        assert!(err.contains("AWS_ROLE_ARN"), "{err}");
        for (var, missing) in [
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ] {
            let err = identity(&[(var, "x".into())]).expect_err(var);
            assert_eq!(err, format!("{var} is set without {missing}"));
        }
        for (url, says) in [
            ("not a url", "is not a URL"),
            ("http://sts.example.com", "use https"),
            ("ftp://sts.example.com", "use https"),
        ] {
            let err = identity(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t".into()),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x".into()),
                ("AWS_ENDPOINT_URL_STS", url.into()),
            ])
            .expect_err(url);
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn static_keys_come_first_and_carry_their_session_token() {
        let id = identity(&[
            ("AWS_ACCESS_KEY_ID", "AKIDSTATIC".into()),
            ("AWS_SECRET_ACCESS_KEY", "static-secret".into()),
            ("AWS_SESSION_TOKEN", "static-token".into()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/never/read".into()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x".into()),
        ])
        .expect("valid");
        assert!(id.describe().contains("AKIDSTATIC"), "{}", id.describe());
        let c = id.credentials().await.expect("static");
        let AwsAuth::SigV4(sig) = c.auth() else {
            panic!("not SigV4")
        };
        assert_eq!(
            (sig.access_key_id, sig.secret_access_key, sig.session_token),
            ("AKIDSTATIC", "static-secret", Some("static-token"))
        );
        assert!(!format!("{c:?} {id:?}").contains("static-secret"));
    }

    #[tokio::test]
    async fn web_identity_is_exchanged_at_sts_once_while_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "eyJ.web+identity/token=\n").expect("token");
        let (url, seen, count) = endpoint(200, STS_OK, Duration::from_secs(3600)).await;
        let id = identity(&[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/gateway".into(),
            ),
            ("AWS_REGION", "eu-west-3".into()),
            ("AWS_ENDPOINT_URL_STS", url.clone()),
        ])
        .expect("valid");
        assert_eq!(
            id.describe(),
            format!("web identity: role arn:aws:iam::123456789012:role/gateway through {url}")
        );
        let (a, b) = tokio::join!(id.credentials(), id.credentials());
        let c = a.expect("credentials");
        assert!(
            Arc::ptr_eq(&c, &b.expect("second")),
            "one exchange for both"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let AwsAuth::SigV4(sig) = c.auth() else {
            panic!("not SigV4")
        };
        assert_eq!(
            (sig.access_key_id, sig.secret_access_key, sig.session_token),
            ("ASIAMOCK", "wJalrXUtnFEMI/K7MDENG", Some("FwoG&token"))
        );
        let request = seen.lock().expect("seen")[0].clone();
        assert!(request.starts_with("POST "), "{request}");
        assert!(
            request.contains("Action=AssumeRoleWithWebIdentity&Version=2011%2D06%2D15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fgateway&RoleSessionName=tollgate&WebIdentityToken=eyJ%2Eweb%2Bidentity%2Ftoken%3D"),
            "{request}"
        );
        id.credentials().await.expect("cached");
        assert_eq!(count.load(Ordering::SeqCst), 1, "cached while fresh");
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_fetched_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Valid for 4 more minutes: under the 5-minute margin.
        let (url, _, count) = endpoint(200, STS_OK, Duration::from_secs(240)).await;
        let (id, _) = web_identity(dir.path(), "tok", Some(url));
        id.credentials().await.expect("first");
        id.credentials().await.expect("second");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_credentials_that_still_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Valid for 4 more minutes: renewed at each call, and the renewal fails once the
        // token file is gone.
        let (url, _, count) = endpoint(200, STS_OK, Duration::from_secs(240)).await;
        let (id, token_file) = web_identity(dir.path(), "tok", Some(url));
        let first = id.credentials().await.expect("first");
        std::fs::remove_file(&token_file).expect("remove");
        let kept = id.credentials().await.expect("the current ones");
        assert!(Arc::ptr_eq(&first, &kept));
        // Within a few seconds of the failure, no new attempt: the same credentials.
        std::fs::write(&token_file, "tok").expect("token back");
        let again = id.credentials().await.expect("the current ones again");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "the renewal failed before STS"
        );
    }

    #[tokio::test]
    async fn refusals_quote_sts_and_never_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, _, _) = endpoint(
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token secret-web-identity-token is expired</Message></Error></ErrorResponse>",
            Duration::ZERO,
        )
        .await;
        let (id, token_file) = web_identity(dir.path(), "secret-web-identity-token", Some(url));
        let err = id.credentials().await.expect_err("refused");
        assert!(
            err.contains("STS refused AssumeRoleWithWebIdentity for arn:aws:iam::1:role/x (400 InvalidIdentityToken)"),
            "{err}"
        );
        assert!(!err.contains("secret-web-identity-token"), "{err}");
        std::fs::write(&token_file, "").expect("empty");
        // A new identity: the first one remembers its failure for a few seconds.
        let id = identity(&[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x".into()),
        ])
        .expect("valid");
        let err = id.credentials().await.expect_err("empty token file");
        assert!(
            err.contains("AWS_WEB_IDENTITY_TOKEN_FILE") && err.contains("empty"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failure_is_answered_again_for_a_few_seconds_without_asking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, _, count) = endpoint(503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>down</Message></Error></ErrorResponse>", Duration::ZERO).await;
        let (id, _) = web_identity(dir.path(), "tok", Some(url));
        let (a, b, c) = tokio::join!(id.credentials(), id.credentials(), id.credentials());
        for e in [a, b, c] {
            assert!(e.expect_err("down").contains("ServiceUnavailable"));
        }
        assert_eq!(count.load(Ordering::SeqCst), 1, "one attempt for the three");
    }

    #[test]
    fn sources_follow_the_sdks_rules() {
        let sts = |region: &str| match identity(&[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t".into()),
            ("AWS_ROLE_ARN", "arn:aws-cn:iam::1:role/x".into()),
            ("AWS_REGION", region.into()),
        ])
        .expect("valid")
        .source
        {
            Some(Source::WebIdentity { sts_url, .. }) => sts_url,
            _ => panic!("not web identity"),
        };
        assert_eq!(sts("cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
        assert_eq!(sts("eu-west-3"), "https://sts.eu-west-3.amazonaws.com");
        for (url, ok) in [
            ("http://169.254.170.23/v1/credentials", true),
            ("http://169.254.170.2/v2/credentials/x", true),
            ("http://[fd00:ec2::23]/v1/credentials", true),
            ("http://127.0.0.1:9000/creds", true),
            ("https://creds.example.com/v1", true),
            ("http://creds.example.com/v1", false),
            ("http://10.0.0.5/v1/credentials", false),
        ] {
            let id = identity(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.into())]);
            assert_eq!(id.is_ok(), ok, "{url}");
        }
        let id = identity(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc".into(),
        )])
        .expect("ecs");
        assert_eq!(
            id.describe(),
            "container credentials from http://169.254.170.2/v2/credentials/abc"
        );
    }

    #[test]
    fn the_gateways_role_signs_only_for_aws_hosts() {
        use crate::providers::bedrock::signs_for_host;
        for host in [
            "bedrock-runtime.eu-west-3.amazonaws.com",
            "vpce-0abc.bedrock-runtime.us-east-1.vpce.amazonaws.com",
            "bedrock-runtime.cn-north-1.amazonaws.com.cn",
            "bedrock-runtime.us-east-1.api.aws",
            "127.0.0.1",
            "localhost",
            "[::1]",
        ] {
            assert!(signs_for_host(host), "{host}");
        }
        for host in [
            "bedrock.attacker.example",
            "amazonaws.com.attacker.example",
            "evilamazonaws.com",
            "10.0.0.1",
        ] {
            assert!(!signs_for_host(host), "{host}");
        }
    }

    #[tokio::test]
    async fn container_credentials_send_the_token_of_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("eks-pod-identity-token");
        std::fs::write(&token_file, "pod-identity-token\n").expect("token");
        let (url, seen, _) = endpoint(
            200,
            r#"{"AccessKeyId":"ASIAPOD","SecretAccessKey":"pod-secret","Token":"pod-session","AccountId":"123456789012","Expiration":"{EXP}"}"#,
            Duration::from_secs(3600),
        )
        .await;
        let id = identity(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{url}/v1/credentials"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ])
        .expect("valid");
        let c = id.credentials().await.expect("credentials");
        let AwsAuth::SigV4(sig) = c.auth() else {
            panic!("not SigV4")
        };
        assert_eq!(
            (sig.access_key_id, sig.session_token),
            ("ASIAPOD", Some("pod-session"))
        );
        let request = seen.lock().expect("seen")[0].clone();
        assert!(request.starts_with("GET "), "{request}");
        assert!(
            request.contains(r#""authorization": "pod-identity-token""#),
            "{request}"
        );
        assert!(c.expires.is_some());
    }
}

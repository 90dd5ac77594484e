//! Provider validation: the real call `ValidateAiLlm` makes to check a connection's endpoint
//! and credentials and to discover its models.
//!
//! Endpoints are user input, so the call is fenced in (DESIGN §6): link-local and cloud
//! metadata addresses are refused unless the operator allows them, both as IP literals
//! ([`check_endpoint`]) and after DNS (a filtering resolver), the whole call is bounded by a
//! timeout, redirects are reported, never followed, answers are capped at 4 MiB, and no
//! message ever contains the credentials, even when the provider echoes them.

mod endpoint;
mod provider;
#[cfg(test)]
mod tests;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, LOCATION};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub use endpoint::{
    EndpointError, MAX_ENDPOINT_LEN, check_endpoint, check_endpoint_allowing, endpoint_to_string,
};
/// The address rules live in the data plane (which applies them to every provider call);
/// validation uses the same ones.
pub use tollgate_data_plane::net::is_forbidden;

use crate::model::AiType;
use provider::{Listing, MAX_PROVIDER_TEXT, scrub, truncate};
use tollgate_data_plane::aws_identity::AwsIdentity;
use tollgate_data_plane::net::{EgressProxy, GuardedConnector, ResolveRefused, TunnelFailed};
use tollgate_data_plane::providers::bedrock;
use tollgate_data_plane::proxy::Egress;

/// Largest provider answer read, in bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Credentials shorter than this are not scrubbed from messages (see `scrubbed`).
const MIN_SCRUBBED_LEN: usize = 4;

/// What to validate: one connection's type, endpoint and (decrypted) credentials.
#[derive(Clone, Copy)]
pub struct ValidationRequest<'a> {
    pub ai_type: AiType,
    /// Base URL; empty means the type's default endpoint.
    pub endpoint: &'a str,
    pub key: Option<&'a str>,
    pub secret: Option<&'a str>,
    /// AWS region.
    pub region: Option<&'a str>,
    /// A model the connection exposes; AWS is probed with it (else [`AWS_PROBE_MODEL`]).
    pub model: Option<&'a str>,
}

impl fmt::Debug for ValidationRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationRequest")
            .field("ai_type", &self.ai_type)
            .field("endpoint", &self.endpoint)
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("secret", &self.secret.map(|_| "[redacted]"))
            .field("region", &self.region)
            .field("model", &self.model)
            .finish()
    }
}

/// Result of a validation: never an error, a failure is `success == false` with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationOutcome {
    pub success: bool,
    pub message: String,
    /// Models the provider listed (empty on failure and for AWS).
    pub models: Vec<String>,
}

impl ValidationOutcome {
    fn ok(message: impl Into<String>, models: Vec<String>) -> Self {
        ValidationOutcome {
            success: true,
            message: message.into(),
            models,
        }
    }

    fn fail(message: impl Into<String>) -> Self {
        ValidationOutcome {
            success: false,
            message: message.into(),
            models: Vec::new(),
        }
    }

    /// Removes the credentials from everything the outcome says. Credentials shorter than
    /// [`MIN_SCRUBBED_LEN`] are left alone: they are no secret, and scrubbing them would
    /// garble every word that contains them.
    fn scrubbed(mut self, credentials: &[&str]) -> Self {
        let credentials: Vec<&str> = credentials
            .iter()
            .copied()
            .filter(|c| c.chars().count() >= MIN_SCRUBBED_LEN)
            .collect();
        self.message = scrub(&self.message, &credentials);
        if credentials.iter().any(|c| self.message.contains(c)) {
            // Only possible for a credential that is part of our own wording.
            self.message = if self.success {
                "ok"
            } else {
                "validation failed"
            }
            .to_owned();
        }
        self.models
            .retain(|m| !credentials.iter().any(|c| m.contains(c)));
        self
    }
}

type HttpsClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// Makes validation calls through one pooled HTTPS client. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    client: HttpsClient,
    /// The data planes' provider client, for calls that go through their translations (a
    /// model asked to review or recommend policies).
    models: tollgate_data_plane::proxy::HttpsClient,
    /// The control plane's own AWS identity, for AWS connections that store no credentials.
    aws: Arc<AwsIdentity>,
    /// The egress proxy its calls go through, to name it when it does not answer.
    proxy: Option<EgressProxy>,
    timeout: Duration,
    allow_link_local: bool,
}

/// Longest wait for a model's answer to start (review, recommendation).
const MODEL_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest silence once it has.
const MODEL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("timeout", &self.timeout)
            .field("allow_link_local", &self.allow_link_local)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator whose calls take at most `timeout` (connect, answer and body), and which
    /// reaches link-local/metadata addresses only when `allow_link_local`. It trusts the
    /// public TLS roots and uses no proxy; [`Validator::with_egress`] for more.
    pub fn new(timeout: Duration, allow_link_local: bool) -> Self {
        let egress = Egress {
            tls: tollgate_data_plane::proxy::upstream_tls("--upstream-ca-file", None)
                .expect("the ring provider supports TLS 1.2 and 1.3"),
            proxy: None,
            allow_link_local,
        };
        let aws = AwsIdentity::from_vars(|_| None, &egress).expect("no identity is valid");
        Self::with_egress(&egress, Arc::new(aws), timeout)
    }

    /// [`Validator::new`] making its connections as `egress` says (TLS trust, egress proxy,
    /// link-local policy): the data planes' rules, so an endpoint a gateway reaches validates
    /// too.
    pub fn with_egress(egress: &Egress, aws: Arc<AwsIdentity>, timeout: Duration) -> Self {
        // The overall timeout decides; this only bounds a connect left running in the pool.
        let https = egress.connector(timeout.saturating_add(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(2)
            .build(https);
        let models = tollgate_data_plane::proxy::build_client(egress, timeout);
        Validator {
            client,
            models,
            aws,
            proxy: egress.proxy.clone(),
            timeout,
            allow_link_local: egress.allow_link_local,
        }
    }

    /// Asks `connection`'s `model` one OpenAI-format chat `body`, through the data planes'
    /// translation for its provider; the error reads after "the model".
    pub async fn ask_model(
        &self,
        connection: &tollgate_data_plane::snapshot::Connection,
        model: &str,
        body: Vec<u8>,
    ) -> Result<tollgate_data_plane::proxy::Completion, String> {
        // A model writing a review takes longer than a listing call to answer.
        let timeouts = (MODEL_FIRST_BYTE_TIMEOUT, MODEL_IDLE_TIMEOUT);
        tollgate_data_plane::proxy::complete(
            &self.models,
            &self.aws,
            timeouts,
            connection,
            model,
            body,
        )
        .await
    }

    /// [`check_endpoint`] of an `ai_type` endpoint, with this validator's link-local policy.
    pub fn check_endpoint(&self, ai_type: AiType, url: &str) -> Result<Uri, EndpointError> {
        check_endpoint_allowing(ai_type, url, self.allow_link_local)
    }

    /// Calls the provider's model listing with the credentials and reports what happened.
    pub async fn validate(&self, req: ValidationRequest<'_>) -> ValidationOutcome {
        let credentials = [req.secret.unwrap_or(""), req.key.unwrap_or("")];
        self.validate_unscrubbed(req).await.scrubbed(&credentials)
    }

    async fn validate_unscrubbed(&self, req: ValidationRequest<'_>) -> ValidationOutcome {
        let endpoint = match req.endpoint.trim() {
            "" => req.ai_type.default_endpoint(),
            e => e,
        };
        let base = match self.check_endpoint(req.ai_type, endpoint) {
            Ok(uri) => uri,
            Err(e) => return ValidationOutcome::fail(e.to_string()),
        };
        if req.ai_type == AiType::Aws {
            let host = base.authority().map(|a| a.to_string()).unwrap_or_default();
            return match tokio::time::timeout(self.timeout, self.probe_aws(&base, &host, req)).await
            {
                Ok(outcome) => outcome,
                Err(_) => ValidationOutcome::fail(format!(
                    "AWS did not answer within {}s{}",
                    self.timeout.as_secs_f64(),
                    self.through_proxy(&base)
                )),
            };
        }
        let call = match provider::list_call(req.ai_type, &base, req.key, req.secret) {
            Ok(call) => call,
            Err(message) => return ValidationOutcome::fail(message),
        };
        let mut builder = Request::get(call.url.as_str());
        for (name, value) in call.headers {
            builder = builder.header(name, value);
        }
        let request = match builder.body(Full::new(Bytes::new())) {
            Ok(r) => r,
            Err(e) => return ValidationOutcome::fail(format!("could not build the request: {e}")),
        };
        // Authority has no userinfo (checked), so it is safe to show.
        let host = base.authority().map(|a| a.to_string()).unwrap_or_default();
        match tokio::time::timeout(self.timeout, self.call(&call.listing, &host, request)).await {
            Ok(outcome) => outcome,
            Err(_) => ValidationOutcome::fail(format!(
                "provider did not answer within {}s{}",
                self.timeout.as_secs_f64(),
                self.through_proxy(&base)
            )),
        }
    }

    /// " (through the egress proxy host:port)" when `uri` goes through one, else "".
    fn through_proxy(&self, uri: &Uri) -> String {
        let Some(via) = self.proxy.as_ref().and_then(|p| p.intercept(uri)) else {
            return String::new();
        };
        let proxy = via.uri();
        match (proxy.host(), proxy.port_u16()) {
            (Some(h), Some(p)) => format!(" (through the egress proxy {h}:{p})"),
            (Some(h), None) => format!(" (through the egress proxy {h})"),
            _ => String::new(),
        }
    }

    /// AWS has no call that only checks credentials and that a Bedrock-only IAM policy
    /// allows, so the probe is a Converse call with no messages, signed (an access key id
    /// and its secret) or with the Bedrock API key (a secret alone): AWS checks the
    /// credentials, then the caller's access to the model, then the request, which it
    /// refuses (`ValidationException`) without running (or billing) anything.
    async fn probe_aws(
        &self,
        base: &Uri,
        host: &str,
        req: ValidationRequest<'_>,
    ) -> ValidationOutcome {
        let key = req.key.filter(|k| !k.trim().is_empty());
        let secret = req.secret.filter(|s| !s.trim().is_empty());
        if secret.is_none() && key.is_some() {
            return ValidationOutcome::fail(
                "AWS needs the secret access key of the access key id given as the key",
            );
        }
        let Some(region) = req.region.filter(|r| !r.trim().is_empty()) else {
            return ValidationOutcome::fail("AWS needs the connection's region");
        };
        // No credentials stored: the control plane's own AWS identity (the data planes sign
        // with theirs, the same role when they share the service account).
        let identity = match secret {
            Some(_) => None,
            None => match self.aws.credentials().await {
                Ok(c) => Some(c),
                Err(e) => {
                    return ValidationOutcome::fail(format!(
                        "the control plane's AWS identity: {e}"
                    ));
                }
            },
        };
        let model = req.model.unwrap_or(AWS_PROBE_MODEL);
        let url = format!(
            "{}{}",
            base.to_string().trim_end_matches('/'),
            bedrock::model_path(model, false)
        );
        let body: &[u8] = br#"{"messages":[]}"#;
        let headers = [("content-type", "application/json")];
        let auth = match (&identity, secret) {
            (Some(credentials), _) => credentials.auth(),
            (None, secret) => bedrock::AwsAuth::of(key, secret.unwrap_or_default()),
        };
        let authorization = match bedrock::authorization(
            "POST",
            &url,
            &headers,
            body,
            region,
            &auth,
            std::time::SystemTime::now(),
        ) {
            Ok(h) => h,
            Err(e) => return ValidationOutcome::fail(e.to_string()),
        };
        let mut builder = Request::post(url.as_str()).header("content-type", "application/json");
        for (name, value) in authorization {
            let Ok(mut value) = HeaderValue::try_from(value) else {
                return ValidationOutcome::fail(
                    "the secret contains characters that cannot be sent in an HTTP header (e.g. a line break); set it again",
                );
            };
            value.set_sensitive(true);
            builder = builder.header(name, value);
        }
        let request = match builder.body(Full::new(Bytes::from_static(body))) {
            Ok(r) => r,
            Err(e) => return ValidationOutcome::fail(format!("could not build the request: {e}")),
        };
        let (status, headers, body) = match self.fetch(host, request).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        let outcome = aws_outcome(status, &headers, &body, region, req.model);
        match &identity {
            Some(credentials) => {
                let secrets: Vec<&str> = credentials
                    .secrets()
                    .iter()
                    .flatten()
                    .map(|s| s.expose())
                    .collect();
                outcome.scrubbed(&secrets)
            }
            None => outcome,
        }
    }

    /// Sends `request` and reads the whole answer (redirects reported, never followed; at
    /// most [`MAX_BODY_BYTES`]); `Err` is the failed outcome to report.
    /// POSTs a JSON `body` to `url` (the operator's alert webhook) within this validator's
    /// timeout; the status, or why there is none.
    pub async fn post_json(&self, url: &Uri, body: Bytes) -> Result<StatusCode, String> {
        let request = Request::post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("tollgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| format!("could not build the request: {e}"))?;
        let host = url.authority().map(|a| a.to_string()).unwrap_or_default();
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| request_error_message(&e, &host, e.is_connect()))?;
            let status = response.status();
            // Read (and drop) a bounded answer, so the connection can be reused.
            let _ = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await;
            Ok(status)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                format!(
                    "{host} did not answer within {}s",
                    self.timeout.as_secs_f64()
                )
            })?
    }

    async fn fetch(
        &self,
        host: &str,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), ValidationOutcome> {
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                return Err(ValidationOutcome::fail(request_error_message(
                    &e,
                    host,
                    e.is_connect(),
                )));
            }
        };
        let status = response.status();
        tracing::debug!(host, status = status.as_u16(), "validation call answered");

        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| truncate(v, MAX_PROVIDER_TEXT))
                .unwrap_or_else(|| "an unspecified location".to_owned());
            return Err(ValidationOutcome::fail(format!(
                "provider answered with a redirect ({status}) to {to}; set the endpoint to the final URL"
            )));
        }

        let declared_len = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let (parts, body) = response.into_parts();
        match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => Ok((status, parts.headers, collected.to_bytes())),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(e) => Err(ValidationOutcome::fail(format!(
                "connection to {host} broke while reading the answer ({status}): {}",
                error_chain(e.as_ref())
            ))),
        }
    }

    async fn call(
        &self,
        listing: &Listing,
        host: &str,
        request: Request<Full<Bytes>>,
    ) -> ValidationOutcome {
        let (status, _, body) = match self.fetch(host, request).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        if !status.is_success() {
            return ValidationOutcome::fail(status_message(status, provider::error_message(&body)));
        }
        let ai_type = match listing {
            Listing::Models(ai_type) => *ai_type,
            Listing::AzureKeyCheck { deployment } => return azure_outcome(host, deployment),
        };
        match provider::parse_models(ai_type, &body) {
            Ok(models) => {
                let message = match models.len() {
                    0 => format!("connected to {host}; the provider listed no models"),
                    1 => format!("connected to {host}; 1 model available"),
                    n => format!("connected to {host}; {n} models available"),
                };
                ValidationOutcome::ok(message, models)
            }
            Err(message) => ValidationOutcome::fail(message),
        }
    }
}

/// The model the AWS probe names when the connection lists none. Where a region does not
/// have it, AWS still checks the credentials first (then answers `ResourceNotFound` or
/// `Validation`); access to it may be denied, which then says nothing of the credentials.
pub const AWS_PROBE_MODEL: &str = "amazon.titan-text-express-v1";

/// What Bedrock's answer to the probe (see `probe_aws`) says of the credentials.
fn aws_outcome(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
    region: &str,
    model: Option<&str>,
) -> ValidationOutcome {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    // `x-amzn-ErrorType: ValidationException:http://internal.amazon.com/...`, or `__type`.
    let exception = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("__type"))
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .map(|t| {
            let t = t.split(':').next().unwrap_or_default();
            t.rsplit('#').next().unwrap_or(t).to_owned()
        })
        .unwrap_or_default();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(|m| m.as_str())
        .map(|m| truncate(m, MAX_PROVIDER_TEXT))
        .unwrap_or_default();
    let accepted = |detail: String| {
        ValidationOutcome::ok(
            format!("AWS accepted the credentials for Bedrock in {region}{detail}"),
            Vec::new(),
        )
    };
    match exception.as_str() {
        // Past authentication: the empty request itself was refused, as intended.
        "ValidationException"
        | "ResourceNotFoundException"
        | "ThrottlingException"
        | "ServiceQuotaExceededException"
        | "ModelNotReadyException" => accepted(match model {
            Some(m) => format!("; model {m} can be called"),
            None => "; set the connection's models to have access to them checked too".into(),
        }),
        "AccessDeniedException" => match model {
            Some(m) => ValidationOutcome::fail(format!(
                "AWS accepted the credentials but denied access to model {m}: {message}; allow                  bedrock:InvokeModel on it and enable the model in the Bedrock console"
            )),
            None => accepted(format!(
                "; access to the probe model {AWS_PROBE_MODEL} was denied ({message}), which                  says nothing of yours: set the connection's models to have them checked"
            )),
        },
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException" => ValidationOutcome::fail(format!(
            "AWS rejected the credentials ({exception}): {message}; check the access key id              and the secret access key"
        )),
        _ if status.is_success() => accepted(String::new()),
        _ => {
            let text = match (exception.is_empty(), message.is_empty()) {
                (false, false) => Some(format!("{exception}: {message}")),
                (false, true) => Some(exception),
                (true, false) => Some(message),
                (true, true) => None,
            };
            ValidationOutcome::fail(status_message(status, text))
        }
    }
}

/// A successful Azure key check: the key works; the models are the endpoint's deployment,
/// since an API key cannot list deployments.
fn azure_outcome(host: &str, deployment: &Option<String>) -> ValidationOutcome {
    match deployment {
        Some(d) => ValidationOutcome::ok(
            format!(
                "connected to {host}; the API key works. This endpoint serves the Azure \
                 deployment {d}, so it is the connection's model (Azure does not list \
                 deployments to an API key)"
            ),
            vec![d.clone()],
        ),
        None => ValidationOutcome::ok(
            format!(
                "connected to {host}; the API key works, but Azure OpenAI does not list \
                 deployments to an API key: set the connection's models to your deployment \
                 names (they are the model names requests use)"
            ),
            Vec::new(),
        ),
    }
}

fn too_large() -> ValidationOutcome {
    ValidationOutcome::fail(format!(
        "provider answer is larger than {} MiB; is the endpoint the provider's API base URL?",
        MAX_BODY_BYTES / (1024 * 1024)
    ))
}

/// A non-2xx answer: what it means, the provider's own words, and what to do.
fn status_message(status: StatusCode, provider_text: Option<String>) -> String {
    let (lead, hint) = match status.as_u16() {
        401 => ("provider rejected the credentials", "; check the secret"),
        403 => (
            "provider refused access",
            "; check the credentials' permissions",
        ),
        404 => (
            "provider has no model listing at this endpoint",
            "; check the endpoint (the API base URL, e.g. https://api.openai.com/v1)",
        ),
        429 => ("provider rate-limited the call", "; try again later"),
        500..=599 => ("provider failed", "; try again later"),
        _ => ("provider refused the call", ""),
    };
    let quoted = provider_text
        .map(|t| format!(": {}", truncate(&t, MAX_PROVIDER_TEXT)))
        .unwrap_or_default();
    format!("{lead} ({status}){quoted}{hint}")
}

/// A failed request as a sentence naming the host.
fn request_error_message(err: &(dyn StdError + 'static), host: &str, connect: bool) -> String {
    let mut chain = std::iter::successors(Some(err), |&e| e.source());
    if let Some(refused) = chain.find_map(|e| e.downcast_ref::<ResolveRefused>()) {
        return refused.to_string();
    }
    // Through an egress proxy: what the proxy did, not what the provider seemed to do.
    if let Some(tunnel) = std::iter::successors(Some(err), |&e| e.source())
        .find_map(|e| e.downcast_ref::<TunnelFailed>())
    {
        return format!("could not connect to {host}: {tunnel}");
    }
    let causes: Vec<&(dyn StdError + 'static)> =
        std::iter::successors(Some(err), |&e| e.source()).collect();
    let io_kind = causes
        .iter()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(|e| e.kind());
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        return format!(
            "connection to {host} refused; is the endpoint right and the provider running?"
        );
    }
    let detail = error_chain(err);
    if causes.iter().any(|e| e.to_string() == "dns error") {
        let host_only = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        return format!("could not resolve host {host_only}: {detail}");
    }
    if tollgate_data_plane::proxy::unknown_issuer(err) {
        return format!(
            "could not connect to {host}: {detail} (no CA the control plane trusts signed the endpoint's certificate: the public roots and the CAs of --upstream-ca-file; give the control plane and the data planes the CA that did)"
        );
    }
    if connect {
        format!("could not connect to {host}: {detail}")
    } else {
        format!("request to {host} failed: {detail}")
    }
}

/// The error and its causes joined with `: `, leaving out hyper's generic wrappers.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in std::iter::successors(Some(err), |&e| e.source()) {
        let text = e.to_string();
        if text.starts_with("client error (") || text == "dns error" {
            continue;
        }
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        truncate(&parts.join(": "), MAX_PROVIDER_TEXT)
    }
}

//! AWS Signature Version 4 for Bedrock requests, with `aws-sigv4` (the AWS SDK's signer).

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;

/// The signing name of the Bedrock runtime (`bedrock-runtime.<region>.amazonaws.com`).
const SERVICE: &str = "bedrock";

/// The AWS credentials of a connection, borrowed for one signature. `Debug` shows only the
/// access key id.
#[derive(Clone, Copy)]
pub struct AwsCredentials<'a> {
    /// The access key id (`AKIA...`, or `ASIA...` for temporary credentials).
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary (STS) credentials.
    pub session_token: Option<&'a str>,
}

impl fmt::Debug for AwsCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &self.session_token.map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a request could not be signed (a configuration problem: answer 502, tell the operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The URL is not an absolute `http(s)://host/...` URL.
    #[error("cannot sign a request to {0:?}: the URL needs a scheme and a host")]
    Url(String),
    /// The region or the access key id is empty.
    #[error("cannot sign a Bedrock request: the connection needs {0}")]
    Missing(&'static str),
    /// `aws-sigv4` refused the request (a header value it cannot canonicalize, ...).
    #[error("cannot sign a Bedrock request: {0}")]
    Signer(String),
}

/// SigV4 headers for a Bedrock request: `(name, value)` pairs to add to it, always
/// `x-amz-date` and `authorization`, plus `x-amz-security-token` with a session token.
///
/// `url` is the URL as sent, already percent-encoded (see [`model_path`]); the canonical
/// request encodes its path once more (`%3A` → `%253A`), as AWS expects from every service but
/// S3, and normalizes it. `headers` are the other headers sent (they are signed; `host` is
/// taken from the URL when absent, without a default port), `body` the exact bytes sent (its
/// SHA-256 is signed; Bedrock needs no `x-amz-content-sha256` header). `time` is the signing
/// time; AWS refuses signatures more than 5 minutes off.
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    region: &str,
    credentials: &AwsCredentials<'_>,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let request = Request {
        method,
        url,
        headers,
        body,
    };
    sign_for(
        &request,
        SERVICE,
        region,
        credentials,
        time,
        PercentEncodingMode::Double,
    )
}

/// How a Bedrock call proves who sends it.
#[derive(Debug, Clone, Copy)]
pub enum AwsAuth<'a> {
    /// SigV4 with an access key id and its secret access key.
    SigV4(AwsCredentials<'a>),
    /// A Bedrock API key, sent as `Authorization: Bearer` (no signature).
    ApiKey(&'a str),
}

impl<'a> AwsAuth<'a> {
    /// SigV4 when there is an access key id (`secret` is then its secret access key), else
    /// `secret` is a Bedrock API key.
    pub fn of(access_key_id: Option<&'a str>, secret: &'a str) -> Self {
        match access_key_id {
            Some(access_key_id) => AwsAuth::SigV4(AwsCredentials {
                access_key_id,
                secret_access_key: secret,
                session_token: None,
            }),
            None => AwsAuth::ApiKey(secret),
        }
    }
}

/// The headers that authorize a request under `auth`: [`sign_request`]'s, or the API key's
/// `authorization`. All but `x-amz-date` hold a secret.
pub fn authorization(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    region: &str,
    auth: &AwsAuth<'_>,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, SignError> {
    match auth {
        AwsAuth::SigV4(credentials) => {
            sign_request(method, url, headers, body, region, credentials, time)
        }
        AwsAuth::ApiKey(key) => Ok(vec![("authorization", format!("Bearer {key}"))]),
    }
}

/// A request to sign, as sent.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: &'a [u8],
}

/// [`sign_request`] for any service and encoding mode (the test suite's vectors sign for
/// other services; single encoding shows what the double encoding does).
pub(crate) fn sign_for(
    request: &Request<'_>,
    service: &str,
    region: &str,
    credentials: &AwsCredentials<'_>,
    time: SystemTime,
    encoding: PercentEncodingMode,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let url = request.url;
    // aws-sigv4 panics on a URL without a host: check first.
    let uri: http::Uri = url.parse().map_err(|_| SignError::Url(url.to_owned()))?;
    if uri.scheme().is_none() || uri.host().is_none_or(str::is_empty) {
        return Err(SignError::Url(url.to_owned()));
    }
    if region.is_empty() {
        return Err(SignError::Missing("a region"));
    }
    if credentials.access_key_id.is_empty() {
        return Err(SignError::Missing("an access key id"));
    }
    let identity = Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token.map(str::to_owned),
        None,
        "tollgate",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = encoding;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| SignError::Signer(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into_parts();
    let (signed, _params) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}

/// `/model/{modelId}/converse` (or `/converse-stream`), the model id percent-encoded as one
/// path segment: every byte outside `[A-Za-z0-9._~-]` is escaped, so
/// `anthropic.claude-3-5-sonnet-20240620-v1:0` → `anthropic.claude-3-5-sonnet-20240620-v1%3A0`
/// and an inference profile ARN keeps its `/` inside the segment (`%2F`), as the AWS SDKs send
/// them.
pub fn model_path(model_id: &str, stream: bool) -> String {
    let mut path = String::with_capacity(model_id.len() + 32);
    path.push_str("/model/");
    for b in model_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push_str(if stream {
        "/converse-stream"
    } else {
        "/converse"
    });
    path
}

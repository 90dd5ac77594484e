//! The one place where request failures become an HTTP status and an OpenAI error body
//! `{"error":{"message","type","param","code"}}`.

use http::StatusCode;

use crate::body::{RespBody, json_response};

/// Why a request was not forwarded, or failed upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the gateway has no configuration from the control plane yet; retry shortly")]
    NoSnapshot,
    #[error(
        "missing API key: send it as `Authorization: Bearer <key>` (or `X-Tollgate-Key` for passthrough connections)"
    )]
    MissingKey,
    #[error("incorrect, revoked or expired API key")]
    InvalidKey,
    #[error(
        "this connection uses the caller's provider key: send the gateway key as `X-Tollgate-Key` and the provider key as `Authorization: Bearer <provider key>`"
    )]
    MissingProviderKey,
    #[error("unknown route {method} {path}")]
    UnknownRoute { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("could not read the request body: {0}")]
    ReadBody(String),
    #[error("the request body did not arrive within {}s", after.as_secs_f64())]
    BodyTimeout { after: std::time::Duration },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("you must provide a model parameter")]
    MissingModel,
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("the model `{0}` does not exist or you do not have access to it")]
    UnknownModel(String),
    #[error("the model `{model}` {reason}{}", choices_text(choices))]
    AmbiguousModel {
        model: String,
        reason: &'static str,
        /// The qualified names the caller may use instead.
        choices: Vec<String>,
    },
    #[error("could not reach the provider: {0}")]
    UpstreamConnect(String),
    #[error("bad answer from the provider: {0}")]
    BadUpstream(String),
    #[error("the provider did not answer in time")]
    UpstreamTimeout,
    /// The gateway could not get its own AWS credentials; why goes to its log only (it names
    /// roles, endpoints and files, which are the operator's business).
    #[error(
        "the gateway could not get AWS credentials for this connection; its operator finds why in the gateway's log"
    )]
    AwsIdentity,
    #[error("blocked by policy '{policy}': {explanation}")]
    PolicyBlocked { policy: String, explanation: String },
    #[error("rate limited by policy '{policy}': {explanation}; retry after {}s", retry_after.as_secs().max(1))]
    PolicyRateLimited {
        policy: String,
        explanation: String,
        retry_after: std::time::Duration,
    },
}

impl ProxyError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ProxyError::*;
        match self {
            NoSnapshot => StatusCode::SERVICE_UNAVAILABLE,
            MissingKey | InvalidKey | MissingProviderKey => StatusCode::UNAUTHORIZED,
            UnknownRoute { .. } | UnknownModel(_) | AmbiguousModel { .. } => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ReadBody(_) | InvalidJson(_) | MissingModel | InvalidRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            UpstreamConnect(_) | BadUpstream(_) | AwsIdentity => StatusCode::BAD_GATEWAY,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            PolicyBlocked { .. } => StatusCode::FORBIDDEN,
            PolicyRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// (`type`, `code`, `param`) of the OpenAI error body, as OpenAI itself uses them.
    fn kind(&self) -> (&'static str, Option<&'static str>, Option<&str>) {
        use ProxyError::*;
        match self {
            NoSnapshot => ("service_unavailable", Some("no_configuration"), None),
            MissingKey | InvalidKey | MissingProviderKey => {
                ("invalid_request_error", Some("invalid_api_key"), None)
            }
            UnknownRoute { .. } => ("invalid_request_error", Some("unknown_url"), None),
            MethodNotAllowed { .. } => ("invalid_request_error", Some("method_not_allowed"), None),
            BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large"), None),
            BodyTimeout { .. } => ("invalid_request_error", Some("request_timeout"), None),
            ReadBody(_) | InvalidJson(_) => ("invalid_request_error", Some("invalid_json"), None),
            MissingModel => (
                "invalid_request_error",
                Some("missing_model"),
                Some("model"),
            ),
            InvalidRequest { param, .. } => ("invalid_request_error", None, param.as_deref()),
            UnknownModel(_) | AmbiguousModel { .. } => (
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            UpstreamConnect(_) | BadUpstream(_) => ("upstream_error", Some("bad_gateway"), None),
            AwsIdentity => ("upstream_error", Some("aws_identity_unavailable"), None),
            UpstreamTimeout => ("upstream_error", Some("gateway_timeout"), None),
            PolicyBlocked { .. } => ("invalid_request_error", Some("policy_blocked"), None),
            PolicyRateLimited { .. } => ("requests", Some("rate_limit_exceeded"), None),
        }
    }

    /// Whether another target may succeed where this one failed (nothing was sent upstream
    /// that could have been acted on).
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, ProxyError::UpstreamConnect(_))
    }

    /// The OpenAI error body.
    pub fn body(&self) -> String {
        let (ty, code, param) = self.kind();
        serde_json::json!({"error": {"message": self.to_string(), "type": ty, "param": param, "code": code}})
            .to_string()
    }

    /// The response sent to the client.
    pub fn into_response(self) -> http::Response<RespBody> {
        let mut resp = json_response(self.status(), self.body());
        if let ProxyError::PolicyRateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up (RFC 9110 §10.2.3).
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(secs.max(1)),
            );
        }
        if let ProxyError::MethodNotAllowed { path, .. } = &self {
            let allow = if path.starts_with("/v1/models") {
                "GET"
            } else {
                "POST"
            };
            resp.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
        }
        resp
    }
}

fn choices_text(choices: &[String]) -> String {
    if choices.is_empty() {
        String::new()
    } else {
        format!(" (qualified names: {})", choices.join(", "))
    }
}

/// A translation failure: the app's request (400) or the provider's answer (502).
impl From<crate::providers::TranslateError> for ProxyError {
    fn from(e: crate::providers::TranslateError) -> Self {
        use crate::providers::TranslateError;
        match e {
            TranslateError::InvalidRequest { message, param } => {
                ProxyError::InvalidRequest { message, param }
            }
            TranslateError::BadUpstream(m) => ProxyError::BadUpstream(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        err: ProxyError,
        status: u16,
        ty: &str,
        code: Option<&str>,
        param: Option<&str>,
        msg_has: &str,
    ) {
        let body: serde_json::Value = serde_json::from_str(&err.body()).expect("json");
        let e = &body["error"];
        assert_eq!(err.status().as_u16(), status, "{err}");
        assert_eq!(e["type"], ty);
        assert_eq!(e["code"].as_str(), code);
        assert_eq!(e["param"].as_str(), param);
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(msg_has)),
            "{e}"
        );
    }

    #[test]
    fn error_mapping_table() {
        check(
            ProxyError::InvalidJson("eof".into()),
            400,
            "invalid_request_error",
            Some("invalid_json"),
            None,
            "eof",
        );
        check(
            ProxyError::MissingModel,
            400,
            "invalid_request_error",
            Some("missing_model"),
            Some("model"),
            "model",
        );
        check(
            ProxyError::InvalidKey,
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            None,
            "API key",
        );
        check(
            ProxyError::MissingKey,
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            None,
            "Bearer",
        );
        check(
            ProxyError::UnknownModel("gpt-9".into()),
            404,
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
            "`gpt-9`",
        );
        check(
            ProxyError::UnknownRoute {
                method: "GET".into(),
                path: "/x".into(),
            },
            404,
            "invalid_request_error",
            Some("unknown_url"),
            None,
            "/x",
        );
        check(
            ProxyError::MethodNotAllowed {
                method: "GET".into(),
                path: "/v1/chat/completions".into(),
            },
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            None,
            "GET",
        );
        check(
            ProxyError::BodyTooLarge { limit: 10 },
            413,
            "invalid_request_error",
            Some("request_too_large"),
            None,
            "10 bytes",
        );
        check(
            ProxyError::InvalidRequest {
                message: "bad tools".into(),
                param: Some("tools".into()),
            },
            400,
            "invalid_request_error",
            None,
            Some("tools"),
            "bad tools",
        );
        check(
            ProxyError::UpstreamConnect("refused".into()),
            502,
            "upstream_error",
            Some("bad_gateway"),
            None,
            "refused",
        );
        check(
            ProxyError::BadUpstream("not json".into()),
            502,
            "upstream_error",
            Some("bad_gateway"),
            None,
            "not json",
        );
        check(
            ProxyError::NoSnapshot,
            503,
            "service_unavailable",
            Some("no_configuration"),
            None,
            "control plane",
        );
        check(
            ProxyError::UpstreamTimeout,
            504,
            "upstream_error",
            Some("gateway_timeout"),
            None,
            "in time",
        );
        check(
            ProxyError::PolicyBlocked {
                policy: "no-secrets".into(),
                explanation: "the request text contains an AWS access key id".into(),
            },
            403,
            "invalid_request_error",
            Some("policy_blocked"),
            None,
            "blocked by policy 'no-secrets': the request text contains an AWS access key id",
        );
        let limited = ProxyError::PolicyRateLimited {
            policy: "rpm".into(),
            explanation: "the API key made more than 2 requests in a minute".into(),
            retry_after: std::time::Duration::from_millis(29_200),
        };
        let resp = limited.into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(
            resp.headers()
                .get(http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"30"[..]),
            "whole seconds, rounded up"
        );
        check(
            ProxyError::PolicyRateLimited {
                policy: "rpm".into(),
                explanation: "the API key made more than 2 requests in a minute".into(),
                retry_after: std::time::Duration::from_secs(30),
            },
            429,
            "requests",
            Some("rate_limit_exceeded"),
            None,
            "rate limited by policy 'rpm': the API key made more than 2 requests in a minute; retry after 30s",
        );
    }
}

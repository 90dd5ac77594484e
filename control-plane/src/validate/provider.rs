//! What each provider's model listing looks like: the request to send and how to read the
//! answer (model list or error message).

use http::Uri;
use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use serde_json::Value;
use tollgate_data_plane::snapshot::AuthHeader;
use tollgate_data_plane::snapshot::endpoint::{
    AZURE_DEPLOYMENTS_SEGMENT, is_azure_openai, join_endpoint,
};

use super::endpoint_to_string;
use crate::model::AiType;

/// Longest provider-supplied text quoted in a message, in characters.
pub(super) const MAX_PROVIDER_TEXT: usize = 300;

const USER_AGENT_VALUE: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// The Azure OpenAI API version of the key check: the GA version of "Models - List".
pub(super) const AZURE_CHECK_API_VERSION: &str = "2024-10-21";

/// What a successful answer to a [`ListCall`] means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Listing {
    /// A model list in the format of this provider type.
    Models(AiType),
    /// Azure OpenAI: an API key cannot list deployments (only the management API can), so
    /// the call only proves that the key works. `deployment`: the one the endpoint names
    /// (`/openai/deployments/{name}`), which is then the connection's model.
    AzureKeyCheck { deployment: Option<String> },
}

/// The model-listing call for a connection: full URL, headers, and how to read the answer.
pub(super) struct ListCall {
    pub(super) url: String,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) listing: Listing,
}

/// Builds the call for `endpoint` (checked, normalized); errors (already user-facing) when
/// a credential cannot go in a header. Not for AWS, which has no listing call here.
pub(super) fn list_call(
    ai_type: AiType,
    endpoint: &Uri,
    key: Option<&str>,
    secret: Option<&str>,
) -> Result<ListCall, String> {
    let mut headers = vec![
        (ACCEPT, HeaderValue::from_static("application/json")),
        (USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)),
    ];
    let mut add = |name: HeaderName, value: String, what: &str| -> Result<(), String> {
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            format!(
                "the {what} contains characters that cannot be sent in an HTTP header \
                 (e.g. a line break); set it again"
            )
        })?;
        value.set_sensitive(true);
        headers.push((name, value));
        Ok(())
    };
    let base = endpoint_to_string(endpoint);
    let (url, listing) = match ai_type {
        AiType::Openai | AiType::Other if is_azure_openai(endpoint) => {
            // The same header as the data plane's calls.
            let auth = AuthHeader::api_key();
            if let Some(secret) = secret {
                add(auth.name, format!("{}{secret}", auth.prefix), "secret")?;
            }
            let deployment = endpoint
                .path()
                .split_once(AZURE_DEPLOYMENTS_SEGMENT)
                .and_then(|(_, rest)| rest.split('/').next())
                .filter(|d| !d.is_empty())
                .map(str::to_owned);
            (
                azure_models_url(endpoint),
                Listing::AzureKeyCheck { deployment },
            )
        }
        AiType::Openai | AiType::Other | AiType::Aws => {
            if let Some(secret) = secret {
                add(AUTHORIZATION, format!("Bearer {secret}"), "secret")?;
            }
            if let (AiType::Openai, Some(key)) = (ai_type, key) {
                add(
                    HeaderName::from_static("openai-organization"),
                    key.to_owned(),
                    "key",
                )?;
            }
            (join_endpoint(&base, "/models"), Listing::Models(ai_type))
        }
        AiType::Anthropic => {
            if let Some(secret) = secret {
                add(
                    HeaderName::from_static("x-api-key"),
                    secret.to_owned(),
                    "secret",
                )?;
            }
            headers.push((
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            ));
            // The listing is paged (20 by default); one large page is enough here.
            (
                format!("{base}/v1/models?limit=1000"),
                Listing::Models(ai_type),
            )
        }
        AiType::Google => {
            if let Some(secret) = secret {
                add(
                    HeaderName::from_static("x-goog-api-key"),
                    secret.to_owned(),
                    "secret",
                )?;
            }
            (
                format!("{base}/v1beta/models?pageSize=1000"),
                Listing::Models(ai_type),
            )
        }
    };
    Ok(ListCall {
        url,
        headers,
        listing,
    })
}

/// Azure's model listing, `{origin}{prefix}/openai/models?api-version=...`: `prefix` is the
/// path before the endpoint's `/openai/` segment (a gateway's base path), if any.
fn azure_models_url(endpoint: &Uri) -> String {
    let scheme = endpoint.scheme_str().unwrap_or("https");
    let authority = endpoint.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = endpoint.path();
    let prefix = format!("{path}/")
        .find("/openai/")
        .map_or("", |i| &path[..i]);
    format!("{scheme}://{authority}{prefix}/openai/models?api-version={AZURE_CHECK_API_VERSION}")
}

/// Model names from a successful listing, in the provider's order, without duplicates.
pub(super) fn parse_models(ai_type: AiType, body: &[u8]) -> Result<Vec<String>, String> {
    let (list_field, name_field, expected) = match ai_type {
        AiType::Google => ("models", "name", r#"{"models":[{"name":"models/..."}]}"#),
        _ => ("data", "id", r#"{"data":[{"id":"..."}]}"#),
    };
    let not_a_list = || {
        format!(
            "provider answered but not with a model list (expected JSON like {expected}); \
             is the endpoint the provider's API base URL?"
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| not_a_list())?;
    let items = value
        .get(list_field)
        .and_then(Value::as_array)
        .ok_or_else(not_a_list)?;
    let mut models: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Some(name) = item.get(name_field).and_then(Value::as_str) else {
            continue;
        };
        let name = name.strip_prefix("models/").unwrap_or(name);
        if !name.is_empty() && !models.iter().any(|m| m == name) {
            models.push(name.to_owned());
        }
    }
    Ok(models)
}

/// The provider's own error message from a JSON error body: `{"error":{"message"}}`
/// (OpenAI, Anthropic, Google), or the common variants `{"error":"..."}`,
/// `{"message":"..."}` and `{"detail":"..."}` of OpenAI-compatible servers.
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = value
        .pointer("/error/message")
        .or_else(|| value.get("error"))
        .or_else(|| value.get("message"))
        .or_else(|| value.get("detail"))
        .and_then(Value::as_str)?
        .trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Replaces every exact occurrence of the credentials in `text`.
pub(super) fn scrub(text: &str, credentials: &[&str]) -> String {
    let mut out = text.to_owned();
    for c in credentials.iter().filter(|c| !c.is_empty()) {
        if out.contains(c) {
            out = out.replace(c, "[redacted]");
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_per_provider() {
        let check = |ai_type: AiType, body: &str, expected: Result<&[&str], &str>| match (
            parse_models(ai_type, body.as_bytes()),
            expected,
        ) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{body}"),
            (Err(e), Err(msg)) => assert!(e.contains(msg), "{body}: {e}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        };
        let openai =
            r#"{"object":"list","data":[{"id":"gpt-4o"},{"id":"gpt-4o-mini"},{"id":"gpt-4o"}]}"#;
        check(AiType::Openai, openai, Ok(&["gpt-4o", "gpt-4o-mini"]));
        check(AiType::Other, openai, Ok(&["gpt-4o", "gpt-4o-mini"]));
        check(
            AiType::Anthropic,
            r#"{"data":[{"type":"model","id":"claude-sonnet-4-5"}],"has_more":false}"#,
            Ok(&["claude-sonnet-4-5"]),
        );
        check(
            AiType::Google,
            r#"{"models":[{"name":"models/gemini-2.5-pro"},{"name":"models/gemini-2.5-flash"}]}"#,
            Ok(&["gemini-2.5-pro", "gemini-2.5-flash"]),
        );
        check(AiType::Openai, r#"{"data":[]}"#, Ok(&[]));
        check(
            AiType::Openai,
            r#"{"data":[{"id":7},{"x":1},{"id":"m"}]}"#,
            Ok(&["m"]),
        );
        check(
            AiType::Openai,
            "<html>hi</html>",
            Err(r#"expected JSON like {"data":[{"id":"..."}]}"#),
        );
        check(
            AiType::Google,
            r#"{"data":[]}"#,
            Err(r#"{"models":[{"name""#),
        );
        check(
            AiType::Openai,
            r#"{"data":{}}"#,
            Err("not with a model list"),
        );
    }

    #[test]
    fn provider_error_messages() {
        let check = |body: &str, expected: Option<&str>| {
            assert_eq!(
                error_message(body.as_bytes()).as_deref(),
                expected,
                "{body}"
            );
        };
        check(
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
            Some("Incorrect API key provided"),
        );
        check(
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            Some("invalid x-api-key"),
        );
        check(
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#,
            Some("API key not valid."),
        );
        check(r#"{"error":"model not found"}"#, Some("model not found"));
        check(
            r#"{"detail":"Not authenticated"}"#,
            Some("Not authenticated"),
        );
        check(r#"{"error":{"code":1}}"#, None);
        check(r#"{"error":{"message":"  "}}"#, None);
        check("Unauthorized", None);
        check("", None);
    }

    #[test]
    fn scrub_and_truncate() {
        assert_eq!(
            scrub("key sk-1 and sk-1", &["sk-1", ""]),
            "key [redacted] and [redacted]"
        );
        assert_eq!(scrub("nothing here", &["sk-1"]), "nothing here");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    fn uri(s: &str) -> Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn listing_urls_and_headers() {
        let check = |ai_type: AiType, endpoint: &str, url: &str, header: &str, listing: Listing| {
            let call = list_call(ai_type, &uri(endpoint), Some("org"), Some("sk-1")).expect("call");
            assert_eq!(call.url, url, "{endpoint}");
            assert_eq!(call.listing, listing, "{endpoint}");
            let auth = call
                .headers
                .iter()
                .find(|(n, _)| n == header)
                .unwrap_or_else(|| panic!("{endpoint}: no {header}"));
            assert!(auth.1.is_sensitive());
            let names: Vec<&str> = call.headers.iter().map(|(n, _)| n.as_str()).collect();
            for other in ["authorization", "api-key", "x-api-key", "x-goog-api-key"] {
                if other != header {
                    assert!(!names.contains(&other), "{endpoint}: also sends {other}");
                }
            }
        };
        let models = Listing::Models;
        check(
            AiType::Openai,
            "https://api.openai.com/v1",
            "https://api.openai.com/v1/models",
            "authorization",
            models(AiType::Openai),
        );
        check(
            AiType::Other,
            "http://vllm:8000/v1?tenant=a",
            "http://vllm:8000/v1/models?tenant=a",
            "authorization",
            models(AiType::Other),
        );
        check(
            AiType::Other,
            "https://openrouter.ai/api/v1",
            "https://openrouter.ai/api/v1/models",
            "authorization",
            models(AiType::Other),
        );
        check(
            AiType::Other,
            "https://res.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-06-01",
            "https://res.openai.azure.com/openai/models?api-version=2024-10-21",
            "api-key",
            Listing::AzureKeyCheck {
                deployment: Some("gpt-4o".into()),
            },
        );
        check(
            AiType::Openai,
            "https://res.cognitiveservices.azure.com/openai/v1",
            "https://res.cognitiveservices.azure.com/openai/models?api-version=2024-10-21",
            "api-key",
            Listing::AzureKeyCheck { deployment: None },
        );
        check(
            AiType::Other,
            "https://apim.example/team/openai/deployments/d1?api-version=2024-10-21",
            "https://apim.example/team/openai/models?api-version=2024-10-21",
            "api-key",
            Listing::AzureKeyCheck {
                deployment: Some("d1".into()),
            },
        );
        check(
            AiType::Anthropic,
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1/models?limit=1000",
            "x-api-key",
            models(AiType::Anthropic),
        );
        check(
            AiType::Google,
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000",
            "x-goog-api-key",
            models(AiType::Google),
        );
        // No OpenAI organization header for Azure.
        let call = list_call(
            AiType::Openai,
            &uri("https://r.openai.azure.com/openai/v1"),
            Some("org"),
            Some("k"),
        )
        .expect("call");
        assert!(!call.headers.iter().any(|(n, _)| n == "openai-organization"));
    }

    #[test]
    fn credentials_that_cannot_be_headers() {
        let endpoint = uri("https://api.openai.com/v1");
        let err = list_call(AiType::Openai, &endpoint, None, Some("sk\nevil"))
            .err()
            .unwrap();
        assert!(err.contains("the secret contains characters"), "{err}");
        assert!(!err.contains("evil"));
        let err = list_call(AiType::Openai, &endpoint, Some("org\r\n"), Some("sk"))
            .err()
            .unwrap();
        assert!(err.contains("the key contains characters"), "{err}");
        let call = list_call(
            AiType::Anthropic,
            &uri("https://api.anthropic.com"),
            None,
            Some("sk-ant"),
        )
        .ok()
        .unwrap();
        assert!(
            call.headers
                .iter()
                .any(|(n, v)| n == "x-api-key" && v.is_sensitive())
        );
    }
}

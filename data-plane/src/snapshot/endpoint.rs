//! Upstream URLs and the credential header of a connection, derived once per snapshot from
//! its endpoint (never per request). Shared with the control plane's validation, so both
//! planes read an endpoint the same way.
//!
//! - A query on the endpoint stays on every URL built from it, after the appended path:
//!   `https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21` gives
//!   `.../openai/deployments/d/chat/completions?api-version=2024-10-21`.
//! - Azure OpenAI takes the key in `api-key`, not `Authorization: Bearer`
//!   ([`is_azure_openai`] says when).

use http::header::{AUTHORIZATION, HeaderName};

/// Host suffixes of Azure OpenAI and Azure AI Foundry resources.
const AZURE_HOST_SUFFIXES: [&str; 3] = [
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
];

/// The path segment of Azure OpenAI's per-deployment API (also kept by gateways in front of
/// it, such as Azure API Management, whatever their host).
pub const AZURE_DEPLOYMENTS_SEGMENT: &str = "/openai/deployments/";

/// `endpoint` with `path` appended to its path: trailing slashes of the endpoint's path are
/// dropped, and its query, if any, comes after `path`.
pub fn join_endpoint(endpoint: &str, path: &str) -> String {
    let endpoint = endpoint.trim();
    let (base, query) = match endpoint.split_once('?') {
        Some((base, query)) => (base, query),
        None => (endpoint, ""),
    };
    let base = base.trim_end_matches('/');
    if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    }
}

/// Whether an OpenAI-format endpoint is Azure OpenAI's: an Azure resource host
/// (`*.openai.azure.com`, `*.cognitiveservices.azure.com`, `*.services.ai.azure.com`), or any
/// host with Azure's `/openai/deployments/` path.
pub fn is_azure_openai(endpoint: &http::Uri) -> bool {
    let host = endpoint
        .host()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    AZURE_HOST_SUFFIXES.iter().any(|s| host.ends_with(s))
        || endpoint.path().contains(AZURE_DEPLOYMENTS_SEGMENT)
}

/// How an OPENAI/OTHER connection sends its credential upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub name: HeaderName,
    /// Written before the credential in the header value.
    pub prefix: &'static str,
}

impl AuthHeader {
    /// `Authorization: Bearer <secret>` (OpenAI and OpenAI-compatible servers).
    pub fn bearer() -> Self {
        Self {
            name: AUTHORIZATION,
            prefix: "Bearer ",
        }
    }

    /// `api-key: <secret>` (Azure OpenAI).
    pub fn api_key() -> Self {
        Self {
            name: HeaderName::from_static("api-key"),
            prefix: "",
        }
    }

    /// The header an OpenAI-format `endpoint` expects.
    pub fn for_openai_endpoint(endpoint: &http::Uri) -> Self {
        if is_azure_openai(endpoint) {
            Self::api_key()
        } else {
            Self::bearer()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_the_query_after_the_path() {
        let check = |endpoint: &str, path: &str, want: &str| {
            assert_eq!(join_endpoint(endpoint, path), want, "{endpoint} + {path}");
        };
        check(
            "https://api.openai.com/v1",
            "/chat/completions",
            "https://api.openai.com/v1/chat/completions",
        );
        check(
            " https://api.openai.com/v1/ ",
            "/models",
            "https://api.openai.com/v1/models",
        );
        check(
            "https://r.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21",
            "/chat/completions",
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        );
        check(
            "https://r.openai.azure.com/openai/deployments/gpt-4o/?api-version=2024-10-21&x=1",
            "/chat/completions",
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&x=1",
        );
        check(
            "https://r.openai.azure.com/openai/v1/",
            "/chat/completions",
            "https://r.openai.azure.com/openai/v1/chat/completions",
        );
        check("http://h:8000/v1?", "/models", "http://h:8000/v1/models");
        check(
            "http://localhost:11434/v1",
            "/chat/completions",
            "http://localhost:11434/v1/chat/completions",
        );
        check(
            "https://openrouter.ai/api/v1",
            "/chat/completions",
            "https://openrouter.ai/api/v1/chat/completions",
        );
        check("https://h", "", "https://h");
    }

    #[test]
    fn azure_endpoints_take_api_key() {
        let check = |endpoint: &str, azure: bool| {
            let uri: http::Uri = endpoint.parse().expect("uri");
            assert_eq!(is_azure_openai(&uri), azure, "{endpoint}");
            let want = if azure {
                AuthHeader::api_key()
            } else {
                AuthHeader::bearer()
            };
            assert_eq!(AuthHeader::for_openai_endpoint(&uri), want, "{endpoint}");
        };
        check(
            "https://my-res.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21",
            true,
        );
        check("https://my-res.openai.azure.com/openai/v1", true);
        check("https://My-Res.OpenAI.Azure.com./openai/v1", true);
        check("https://my-res.cognitiveservices.azure.com/openai/v1", true);
        check("https://my-proj.services.ai.azure.com/openai/v1", true);
        // Azure API Management (or any gateway) in front of Azure OpenAI keeps its path.
        check(
            "https://apim.azure-api.net/ai/openai/deployments/gpt-4o?api-version=2024-10-21",
            true,
        );
        check("http://127.0.0.1:9/openai/deployments/d", true);

        check("https://api.openai.com/v1", false);
        check("https://openrouter.ai/api/v1", false);
        check("http://host:8000/v1", false);
        check("http://localhost:11434/v1", false);
        check("https://api.groq.com/openai/v1", false);
        // Look-alikes are not Azure.
        check("https://openai.azure.com.evil.example/v1", false);
        check("https://evilopenai.azure.com.example/v1", false);
    }
}

//! Checking user-supplied provider endpoints, and which addresses are off limits.

use http::Uri;
use tollgate_data_plane::net::{host_literal, is_forbidden, is_metadata_name};
use tollgate_data_plane::snapshot::endpoint::AZURE_DEPLOYMENTS_SEGMENT;

use crate::model::AiType;

/// Longest endpoint accepted, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Why an endpoint is refused; each message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint is empty; give the provider base URL, e.g. https://api.openai.com/v1")]
    Empty,
    #[error("endpoint is {0} bytes long; at most {MAX_ENDPOINT_LEN} are allowed")]
    TooLong(usize),
    #[error("endpoint must start with https:// or http://, got {0:?}")]
    Scheme(String),
    #[error(
        "endpoint must not contain a query (?...) for {0}; give only the base URL \
         (only OPENAI and OTHER endpoints take a query, such as Azure's ?api-version=)"
    )]
    Query(&'static str),
    #[error(
        "endpoint query parameter {0:?} looks like a credential; put credentials in the \
         secret (sent in a header), never in the URL"
    )]
    CredentialInQuery(String),
    #[error(
        "an Azure OpenAI deployments endpoint needs its API version: add \
         ?api-version=2024-10-21 (or the version you use), or use the v1 API \
         https://<resource>.openai.azure.com/openai/v1"
    )]
    AzureApiVersion,
    #[error("endpoint must not contain a fragment (#...); give only the base URL")]
    Fragment,
    #[error(
        "endpoint must not contain a user name or password (user:pass@host); \
         put credentials in the key and secret fields"
    )]
    UserInfo,
    #[error("endpoint is not a valid URL ({0}); expected e.g. https://api.openai.com/v1")]
    Invalid(String),
    #[error("endpoint has no host; expected e.g. https://api.openai.com/v1")]
    NoHost,
    #[error("endpoint port must be a number from 1 to 65535")]
    BadPort,
    #[error(
        "endpoint host {0} is a link-local or cloud metadata address; refused \
         (an operator can allow link-local endpoints if this is intended)"
    )]
    Forbidden(String),
}

/// Checks an endpoint of `ai_type` given at create/update time, refusing link-local and
/// metadata hosts.
///
/// Accepts an absolute `http`/`https` URL with a host and no userinfo or fragment, at most
/// [`MAX_ENDPOINT_LEN`] bytes; surrounding whitespace and trailing slashes of the path are
/// trimmed. OPENAI and OTHER endpoints may carry a query, which the gateway keeps on every
/// call (Azure OpenAI's `?api-version=`), without credentials in it; an Azure
/// `/openai/deployments/` endpoint must have its `api-version`. Host names are checked again
/// when they are resolved (see `Validator`).
pub fn check_endpoint(ai_type: AiType, url: &str) -> Result<Uri, EndpointError> {
    check_endpoint_allowing(ai_type, url, false)
}

/// [`check_endpoint`], with link-local and metadata hosts allowed when `allow_link_local`.
pub fn check_endpoint_allowing(
    ai_type: AiType,
    url: &str,
    allow_link_local: bool,
) -> Result<Uri, EndpointError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(EndpointError::Empty);
    }
    if url.len() > MAX_ENDPOINT_LEN {
        return Err(EndpointError::TooLong(url.len()));
    }
    let lower_prefix = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower_prefix.starts_with("https://") || lower_prefix.starts_with("http://")) {
        return Err(EndpointError::Scheme(for_message(url)));
    }
    let after_scheme = &url[url.find("://").map_or(0, |i| i + 3)..];
    if after_scheme.is_empty() || after_scheme.starts_with('/') {
        return Err(EndpointError::NoHost);
    }
    if url.contains('#') {
        return Err(EndpointError::Fragment);
    }
    let takes_query = matches!(ai_type, AiType::Openai | AiType::Other);
    if url.contains('?') && !takes_query {
        return Err(EndpointError::Query(ai_type.as_str()));
    }
    let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
        // Only the parser's reason: the input itself may hold a password.
        EndpointError::Invalid(e.to_string())
    })?;
    let authority = uri.authority().ok_or(EndpointError::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(EndpointError::UserInfo);
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(EndpointError::NoHost);
    }
    // `Authority::port` hides a port that is not a u16 (the connector would then use the
    // default port), so look at the text after the host.
    let after_host = authority.as_str().get(host.len()..).unwrap_or_default();
    if !after_host.is_empty()
        && !matches!(after_host.strip_prefix(':').map(str::parse::<u16>), Some(Ok(p)) if p != 0)
    {
        return Err(EndpointError::BadPort);
    }
    let forbidden = host_literal(host).is_some_and(is_forbidden) || is_metadata_name(host);
    if !allow_link_local && forbidden {
        return Err(EndpointError::Forbidden(host.to_owned()));
    }
    let query = uri.query().unwrap_or_default();
    check_query(query)?;
    let path = uri.path().trim_end_matches('/');
    if takes_query
        && format!("{path}/").contains(AZURE_DEPLOYMENTS_SEGMENT)
        && !query_names(query).any(|n| n.eq_ignore_ascii_case("api-version"))
    {
        return Err(EndpointError::AzureApiVersion);
    }
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{authority}{path}{query}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| EndpointError::Invalid(e.to_string()))
}

/// The parameter names of a query string.
fn query_names(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
}

/// Refuses parameters that look like credentials: the endpoint is stored and shown in clear,
/// and URLs end up in logs.
fn check_query(query: &str) -> Result<(), EndpointError> {
    for name in query_names(query) {
        let plain: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let credential = ["key", "token", "secret", "password", "auth"]
            .iter()
            .any(|w| plain.contains(w))
            || matches!(plain.as_str(), "sig" | "signature" | "code");
        if credential {
            return Err(EndpointError::CredentialInQuery(
                name.chars().take(40).collect(),
            ));
        }
    }
    Ok(())
}

/// The endpoint as text without a trailing slash on its path, with its query if any (what
/// to store and show).
pub fn endpoint_to_string(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let query = uri
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    format!(
        "{scheme}://{authority}{}{query}",
        uri.path().trim_end_matches('/')
    )
}

/// The input shortened for an error message, with any `user:pass@` cut out.
fn for_message(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_owned(),
    };
    let shown = format!("{scheme}{rest}");
    if shown.chars().count() > 80 {
        format!("{}…", shown.chars().take(80).collect::<String>())
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: Ok(normalized) or Err(substring of the message), for an ANTHROPIC
    /// endpoint (no query allowed).
    fn check(url: &str, expected: Result<&str, &str>) {
        check_typed(AiType::Anthropic, url, expected);
    }

    fn check_typed(ai_type: AiType, url: &str, expected: Result<&str, &str>) {
        let got = check_endpoint(ai_type, url);
        match (&got, expected) {
            (Ok(uri), Ok(norm)) => assert_eq!(endpoint_to_string(uri), norm, "{url:?}"),
            (Err(e), Err(msg)) => {
                let e = e.to_string();
                assert!(e.contains(msg), "{url:?}: {e:?} lacks {msg:?}");
            }
            _ => panic!("{url:?}: got {got:?}, want {expected:?}"),
        }
    }

    #[test]
    fn check_endpoint_cases() {
        check("https://api.openai.com/v1", Ok("https://api.openai.com/v1"));
        check(
            "https://api.openai.com/v1/",
            Ok("https://api.openai.com/v1"),
        );
        check(
            " https://api.anthropic.com/ ",
            Ok("https://api.anthropic.com"),
        );
        check("https://api.anthropic.com", Ok("https://api.anthropic.com"));
        check(
            "HTTPS://Example.com:8443/x//",
            Ok("https://Example.com:8443/x"),
        );
        check("http://127.0.0.1:11434/v1", Ok("http://127.0.0.1:11434/v1"));
        check("http://10.0.0.5/v1", Ok("http://10.0.0.5/v1"));
        check("http://[::1]:8000", Ok("http://[::1]:8000"));
        check(
            "http://localhost:8080/openai/v1",
            Ok("http://localhost:8080/openai/v1"),
        );

        check("", Err("endpoint is empty"));
        check("   ", Err("endpoint is empty"));
        check(
            "api.openai.com/v1",
            Err("must start with https:// or http://, got \"api.openai.com/v1\""),
        );
        check(
            "ftp://example.com",
            Err("must start with https:// or http://"),
        );
        check("https:/example.com", Err("must start with https://"));
        check("file:///etc/passwd", Err("must start with https://"));
        check("https://", Err("endpoint has no host"));
        check("https:///v1", Err("endpoint has no host"));
        check(
            "https://example.com/v1?x=1",
            Err("must not contain a query (?...) for ANTHROPIC"),
        );
        check(
            "https://example.com/v1#frag",
            Err("must not contain a fragment"),
        );
        check(
            "https://user:pw@example.com/v1",
            Err("must not contain a user name or password"),
        );
        check(
            "https://example.com:99999",
            Err("port must be a number from 1 to 65535"),
        );
        check("https://example.com:", Err("port must be"));
        check(
            "https://example.com:0",
            Err("port must be a number from 1 to 65535"),
        );
        check("https://exa mple.com", Err("not a valid URL"));
        check("https://example.com/\u{0}", Err("not a valid URL"));
        check(
            &format!("https://e.com/{}", "a".repeat(2100)),
            Err("at most 2048"),
        );

        check(
            "http://169.254.169.254/",
            Err("169.254.169.254 is a link-local or cloud metadata"),
        );
        check("http://169.254.1.1:80/latest", Err("link-local"));
        check(
            "http://[fd00:ec2::254]/",
            Err("[fd00:ec2::254] is a link-local"),
        );
        check("http://[fe80::1]/", Err("link-local"));
        check("http://[febf::1]/", Err("link-local"));
        check("http://[::ffff:169.254.169.254]/", Err("link-local"));
        check("http://[::ffff:a9fe:a9fe]/", Err("link-local"));
        check("http://[64:ff9b::a9fe:a9fe]/", Err("link-local"));
        check("http://2852039166/", Err("link-local"));
        check("http://0xa9fea9fe/", Err("link-local"));
        check("http://0251.0376.0251.0376/", Err("link-local"));
        check("http://169.254.43518/", Err("link-local"));
        check("http://169.254.169.254./", Err("link-local"));
        check("http://100.100.100.200/", Err("metadata"));
        check(
            "http://metadata.google.internal/computeMetadata/v1",
            Err("metadata.google.internal is a link-local or cloud metadata"),
        );
        check(
            "http://metadata.google.internal.internal/",
            Ok("http://metadata.google.internal.internal"),
        );
        check("http://[fec0::1]/", Ok("http://[fec0::1]"));
        check("http://169.255.0.1/", Ok("http://169.255.0.1"));
    }

    #[test]
    fn error_messages_hide_credentials() {
        let e = check_endpoint(AiType::Other, "ftp://user:hunter2@example.com/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = check_endpoint(AiType::Other, "https://user:hunter2@example.com/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = check_endpoint(AiType::Other, "https://user:hunter2@exa mple.com/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn link_local_allowed_when_operator_allows() {
        for url in [
            "http://169.254.169.254/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]:8080/v1",
        ] {
            assert!(check_endpoint(AiType::Other, url).is_err(), "{url}");
            assert!(
                check_endpoint_allowing(AiType::Other, url, true).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn openai_format_endpoints_keep_their_query() {
        let azure = "https://res.openai.azure.com/openai/deployments/gpt-4o";
        for ai_type in [AiType::Openai, AiType::Other] {
            check_typed(
                ai_type,
                &format!("{azure}?api-version=2024-10-21"),
                Ok(&format!("{azure}?api-version=2024-10-21")),
            );
            check_typed(
                ai_type,
                &format!(" {azure}/?api-version=2024-10-21&x=y "),
                Ok(&format!("{azure}?api-version=2024-10-21&x=y")),
            );
            check_typed(
                ai_type,
                "https://res.openai.azure.com/openai/v1/",
                Ok("https://res.openai.azure.com/openai/v1"),
            );
            check_typed(ai_type, "http://h:8000/v1?", Ok("http://h:8000/v1"));
            check_typed(
                ai_type,
                "https://openrouter.ai/api/v1",
                Ok("https://openrouter.ai/api/v1"),
            );
            check_typed(
                ai_type,
                "http://localhost:11434/v1",
                Ok("http://localhost:11434/v1"),
            );
            check_typed(ai_type, azure, Err("needs its API version"));
            check_typed(
                ai_type,
                "https://apim.example/x/openai/deployments/d?version=1",
                Err("add ?api-version=2024-10-21"),
            );
            for leaky in [
                "https://h/v1?api-key=abc",
                "https://h/v1?api-version=1&key=abc",
                "https://h/v1?access_token=abc",
                "https://h/v1?X-Auth=abc",
                "https://h/v1?sig=abc",
                "https://h/v1?code=abc",
                "https://h/v1?client_secret=abc",
            ] {
                let e = check_endpoint(ai_type, leaky).expect_err(leaky).to_string();
                assert!(e.contains("looks like a credential"), "{leaky}: {e}");
                assert!(!e.contains("abc"), "{leaky}: the value is echoed: {e}");
            }
            check_typed(
                ai_type,
                "https://h/v1?x=1#f",
                Err("must not contain a fragment"),
            );
        }
        for ai_type in [AiType::Anthropic, AiType::Google, AiType::Aws] {
            check_typed(
                ai_type,
                "https://h/v1?api-version=1",
                Err("only OPENAI and OTHER endpoints take a query"),
            );
        }
    }
}

//! What each provider's model listing looks like: the request to send and how to read the
//! answer (model list or error message).

use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use serde_json::Value;

use crate::model::AiType;

/// Longest provider-supplied text quoted in a message, in characters.
pub(super) const MAX_PROVIDER_TEXT: usize = 300;

const USER_AGENT_VALUE: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// The model-listing call for a provider type: path and query after the endpoint, headers.
pub(super) struct ListCall {
    pub(super) path_and_query: &'static str,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
}

/// Builds the call; errors (already user-facing) when a credential cannot go in a header.
/// Not for AWS, which has no listing call here.
pub(super) fn list_call(
    ai_type: AiType,
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
    let path_and_query = match ai_type {
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
            "/models"
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
            "/v1/models?limit=1000"
        }
        AiType::Google => {
            if let Some(secret) = secret {
                add(
                    HeaderName::from_static("x-goog-api-key"),
                    secret.to_owned(),
                    "secret",
                )?;
            }
            "/v1beta/models?pageSize=1000"
        }
    };
    Ok(ListCall {
        path_and_query,
        headers,
    })
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

    #[test]
    fn credentials_that_cannot_be_headers() {
        let err = list_call(AiType::Openai, None, Some("sk\nevil"))
            .err()
            .unwrap();
        assert!(err.contains("the secret contains characters"), "{err}");
        assert!(!err.contains("evil"));
        let err = list_call(AiType::Openai, Some("org\r\n"), Some("sk"))
            .err()
            .unwrap();
        assert!(err.contains("the key contains characters"), "{err}");
        let call = list_call(AiType::Anthropic, None, Some("sk-ant"))
            .ok()
            .unwrap();
        assert!(
            call.headers
                .iter()
                .any(|(n, v)| n == "x-api-key" && v.is_sensitive())
        );
    }
}

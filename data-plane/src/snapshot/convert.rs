//! Wire (`tollgate_proto::sync`) to domain conversion: the only place that sees prost types
//! of resources. A resource that cannot be used becomes a [`Rejected`] (the NACK reason).

use tollgate_proto::sync as pb;

use super::endpoint::join_endpoint;
use super::{AuthHeader, Connection, KeyEntry, OpenAiUrls, Provider};
use crate::secret::Secret;

/// A resource the data plane refused, and why; reported in the ACK of its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub kind: pb::ResourceKind,
    pub id: String,
    pub reason: String,
}

impl Rejected {
    fn new(kind: pb::ResourceKind, id: &str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            reason: reason.into(),
        }
    }
}

// tollgate.admin.v1.AiType numbers.
const AI_OPENAI: i32 = 1;
const AI_GOOGLE: i32 = 2;
const AI_ANTHROPIC: i32 = 3;
const AI_AWS: i32 = 4;
const AI_OTHER: i32 = 5;

/// Route strategies (tollgate.admin.v1.RouteStrategy numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Direct,
    Weighted,
    Fallback,
    /// Weighted, with the target chosen by who sends the request (see
    /// `ModelIndex::resolve_for`).
    Experiment,
}

/// A model alias of a repository, before its targets are resolved.
#[derive(Debug, Clone)]
pub struct RouteDef {
    pub name: String,
    pub strategy: Strategy,
    pub targets: Vec<RouteTargetDef>,
    /// Extra attempts after the first; `None`: the default.
    pub retries: Option<u32>,
}

/// One target of a route.
#[derive(Debug, Clone)]
pub struct RouteTargetDef {
    /// A model name the repository routes (`<routing_id>/<model>`, or a bare name).
    pub target: String,
    pub weight: u32,
    /// Wait for this target's response head, in ms; 0: the data plane's default.
    pub timeout_ms: u32,
}

/// A repository as the control plane describes it.
#[derive(Debug, Clone)]
pub struct RepositoryDef {
    pub id: String,
    pub workspace_id: String,
    pub connection_ids: Vec<String>,
    pub routes: Vec<RouteDef>,
}

impl TryFrom<pb::Connection> for Connection {
    type Error = Rejected;

    fn try_from(mut c: pb::Connection) -> Result<Self, Rejected> {
        let reject = |reason: String| Rejected::new(pb::ResourceKind::Connection, &c.id, reason);
        if c.id.is_empty() {
            return Err(reject("connection without an id".into()));
        }
        let provider = match c.ai_type {
            AI_OPENAI | AI_OTHER => Provider::OpenAi,
            AI_ANTHROPIC => Provider::Anthropic,
            AI_GOOGLE => Provider::Google,
            AI_AWS => Provider::Bedrock,
            other => return Err(reject(format!("unknown provider type {other}"))),
        };
        let region = match provider {
            Provider::Bedrock => aws_region(&c.region, &c.endpoint).ok_or_else(|| {
                reject(
                    "AWS connection without a region: set one, or use an endpoint \
                     https://bedrock-runtime.<region>.amazonaws.com"
                        .into(),
                )
            })?,
            _ => String::new(),
        };
        let default_endpoint;
        let endpoint = match provider {
            Provider::Bedrock if c.endpoint.trim().is_empty() => {
                default_endpoint = format!("https://bedrock-runtime.{region}.amazonaws.com");
                default_endpoint.as_str()
            }
            _ => c.endpoint.as_str(),
        };
        let path = match provider {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/v1/messages",
            Provider::Google => "/v1beta/models",
            Provider::Bedrock => "",
        };
        // Only OpenAI-format URLs end with the endpoint's query; the other providers append
        // more path per request.
        if provider != Provider::OpenAi && endpoint.contains('?') {
            return Err(reject(format!(
                "endpoint {:?} has a query, which only OPENAI/OTHER endpoints may have",
                c.endpoint
            )));
        }
        let chat_url: http::Uri = join_endpoint(endpoint, path)
            .parse()
            .map_err(|e| reject(format!("endpoint {:?} is not a URL: {e}", c.endpoint)))?;
        if !matches!(chat_url.scheme_str(), Some("http" | "https")) || chat_url.host().is_none() {
            return Err(reject(format!(
                "endpoint {:?} must be an http(s) URL",
                c.endpoint
            )));
        }
        let auth = match provider {
            Provider::OpenAi => AuthHeader::for_openai_endpoint(&chat_url),
            _ => AuthHeader::bearer(),
        };
        let openai_url = |path| {
            join_endpoint(endpoint, path)
                .parse::<http::Uri>()
                .map_err(|e| reject(format!("endpoint {:?} is not a URL: {e}", c.endpoint)))
        };
        let openai_urls = match provider {
            Provider::OpenAi => Some(OpenAiUrls {
                completions: openai_url("/completions")?,
                embeddings: openai_url("/embeddings")?,
            }),
            _ => None,
        };
        // An AWS connection with neither a secret nor an access key id uses the gateway's
        // own AWS identity (`crate::aws_identity`).
        let own_aws_identity = provider == Provider::Bedrock && c.key.is_empty();
        if !c.passthrough && c.secret.is_empty() && !own_aws_identity {
            return Err(reject("managed connection without a secret".into()));
        }
        if c.routing_id.is_empty() {
            return Err(reject("connection without a routing id".into()));
        }
        // Move the secrets out of the wire message so the only copies are zeroized ones.
        let secret = Secret::new(std::mem::take(&mut c.secret));
        let key = std::mem::take(&mut c.key);
        Ok(Connection {
            id: c.id.into(),
            name: c.name,
            ai_type: c.ai_type,
            provider,
            chat_url,
            openai_urls,
            auth,
            key: (!key.is_empty()).then(|| Secret::new(key)),
            region,
            secret,
            passthrough: c.passthrough,
            routing_id: c.routing_id,
            models: c.models,
        })
    }
}

/// The AWS region: the connection's own, else the one in a
/// `bedrock-runtime.<region>.amazonaws.com` (or `bedrock-runtime-fips.`) endpoint host.
fn aws_region(region: &str, endpoint: &str) -> Option<String> {
    let region = region.trim();
    if !region.is_empty() {
        return Some(region.to_owned());
    }
    let uri: http::Uri = endpoint.trim().parse().ok()?;
    let mut labels = uri.host()?.split('.');
    let service = labels.next()?;
    let region = labels.next()?;
    (service.starts_with("bedrock-runtime")
        && !region.is_empty()
        && labels.next() == Some("amazonaws"))
    .then(|| region.to_owned())
}

impl TryFrom<pb::ApiKey> for KeyEntry {
    type Error = Rejected;

    fn try_from(k: pb::ApiKey) -> Result<Self, Rejected> {
        let hash: [u8; 32] = k.hash.as_slice().try_into().map_err(|_| {
            Rejected::new(
                pb::ResourceKind::ApiKey,
                &k.id,
                format!("hash must be a 32-byte SHA-256, got {} bytes", k.hash.len()),
            )
        })?;
        if k.id.is_empty() || k.repository_id.is_empty() {
            return Err(Rejected::new(
                pb::ResourceKind::ApiKey,
                &k.id,
                "key without id or repository",
            ));
        }
        Ok(KeyEntry {
            id: k.id.into(),
            repository_id: k.repository_id.into(),
            hash,
            expires_at: (k.expires_at > 0).then_some(k.expires_at),
        })
    }
}

impl TryFrom<pb::Repository> for RepositoryDef {
    type Error = Rejected;

    fn try_from(r: pb::Repository) -> Result<Self, Rejected> {
        if r.id.is_empty() {
            return Err(Rejected::new(
                pb::ResourceKind::Repository,
                "",
                "repository without an id",
            ));
        }
        let routes = r
            .routes
            .into_iter()
            .map(|route| RouteDef {
                name: route.name,
                strategy: match route.strategy {
                    2 => Strategy::Weighted,
                    3 => Strategy::Fallback,
                    4 => Strategy::Experiment,
                    _ => Strategy::Direct,
                },
                targets: route
                    .targets
                    .into_iter()
                    .map(|t| RouteTargetDef {
                        target: t.target,
                        weight: t.weight,
                        timeout_ms: t.timeout_ms,
                    })
                    .collect(),
                retries: route.retries,
            })
            .collect();
        Ok(RepositoryDef {
            id: r.id,
            workspace_id: r.workspace_id,
            connection_ids: r.connection_ids,
            routes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(endpoint: &str, region: &str, key: &str) -> pb::Connection {
        pb::Connection {
            id: "c".into(),
            ai_type: AI_AWS,
            endpoint: endpoint.into(),
            key: key.into(),
            secret: "aws-secret".into(),
            region: region.into(),
            routing_id: "bedrock".into(),
            ..Default::default()
        }
    }

    fn openai(ai_type: i32, endpoint: &str) -> pb::Connection {
        pb::Connection {
            id: "c".into(),
            ai_type,
            endpoint: endpoint.into(),
            secret: "sk".into(),
            routing_id: "r".into(),
            ..Default::default()
        }
    }

    /// `expected`: the chat URL and the credential header, or the rejection's text.
    fn check_openai(ai_type: i32, endpoint: &str, expected: Result<(&str, &str), &str>) {
        let got = Connection::try_from(openai(ai_type, endpoint));
        match (got, expected) {
            (Ok(c), Ok((url, header))) => {
                assert_eq!(c.provider, Provider::OpenAi);
                assert_eq!(c.chat_url.to_string(), url, "{endpoint}");
                assert_eq!(c.auth.name.as_str(), header, "{endpoint}");
            }
            (Err(e), Err(text)) => assert!(e.reason.contains(text), "{endpoint}: {}", e.reason),
            (got, want) => panic!("{endpoint}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn openai_format_urls_and_headers() {
        // OpenAI-compatible servers: vLLM, Ollama, OpenRouter, LM Studio, OpenAI itself.
        for (endpoint, url) in [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://gpu-box:8000/v1",
                "http://gpu-box:8000/v1/chat/completions",
            ),
            (
                "http://localhost:11434/v1/",
                "http://localhost:11434/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
        ] {
            check_openai(AI_OTHER, endpoint, Ok((url, "authorization")));
        }
        let c = Connection::try_from(openai(AI_OTHER, "http://h:8000/v1")).expect("ok");
        assert_eq!(c.auth.prefix, "Bearer ");
        let urls = c.openai_urls.expect("OpenAI-format URLs");
        assert_eq!(urls.completions.to_string(), "http://h:8000/v1/completions");
        assert_eq!(urls.embeddings.to_string(), "http://h:8000/v1/embeddings");
        let azure = "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21";
        let urls = Connection::try_from(openai(AI_OTHER, azure))
            .expect("ok")
            .openai_urls
            .expect("OpenAI-format URLs");
        assert_eq!(
            urls.embeddings.to_string(),
            "https://r.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-10-21"
        );
        assert_eq!(
            urls.completions.to_string(),
            "https://r.openai.azure.com/openai/deployments/d/completions?api-version=2024-10-21"
        );
        // Azure OpenAI: the query stays after the path, the key goes in `api-key`.
        check_openai(
            AI_OTHER,
            "https://res.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21",
            Ok((
                "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                "api-key",
            )),
        );
        check_openai(
            AI_OPENAI,
            "https://res.openai.azure.com/openai/v1/",
            Ok((
                "https://res.openai.azure.com/openai/v1/chat/completions",
                "api-key",
            )),
        );
        check_openai(
            AI_OTHER,
            "http://127.0.0.1:9/openai/deployments/d?api-version=2024-10-21",
            Ok((
                "http://127.0.0.1:9/openai/deployments/d/chat/completions?api-version=2024-10-21",
                "api-key",
            )),
        );
        let c = Connection::try_from(openai(AI_OTHER, "https://r.openai.azure.com/openai/v1"))
            .expect("ok");
        assert_eq!(c.auth.prefix, "");
        // Only OpenAI-format endpoints may carry a query.
        for (ai_type, endpoint) in [
            (AI_ANTHROPIC, "https://api.anthropic.com?x=1"),
            (AI_GOOGLE, "https://generativelanguage.googleapis.com?key=1"),
        ] {
            let e = Connection::try_from(openai(ai_type, endpoint)).expect_err("rejected");
            assert!(e.reason.contains("only OPENAI/OTHER"), "{}", e.reason);
        }
        check_openai(AI_OTHER, "ftp://h/v1", Err("must be an http(s) URL"));
    }

    #[test]
    fn aws_connections() {
        let ok = |c: pb::Connection| Connection::try_from(c).expect("accepted");
        let c = ok(aws("", "eu-west-3", "AKID"));
        assert_eq!(c.provider, Provider::Bedrock);
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(
            c.chat_url.to_string(),
            "https://bedrock-runtime.eu-west-3.amazonaws.com/"
        );
        assert_eq!(c.key.as_ref().map(Secret::expose), Some("AKID"));
        let c = ok(aws(
            "https://bedrock-runtime.ap-south-1.amazonaws.com/",
            "",
            "AKID",
        ));
        assert_eq!(c.region, "ap-south-1");
        let c = ok(aws("http://127.0.0.1:9", "us-west-2", "AKID"));
        assert_eq!(
            (c.region.as_str(), c.chat_url.to_string().as_str()),
            ("us-west-2", "http://127.0.0.1:9/")
        );
        // No access key id: the secret is a Bedrock API key (managed), or the app brings one
        // (passthrough).
        assert!(ok(aws("", "us-east-1", "")).key.is_none());
        let mut passthrough = aws("", "us-east-1", "");
        passthrough.passthrough = true;
        passthrough.secret.clear();
        assert!(ok(passthrough).passthrough);

        let rejected = |c: pb::Connection| Connection::try_from(c).expect_err("rejected").reason;
        assert!(rejected(aws("https://proxy.example", "", "AKID")).contains("region"));
        assert!(rejected(aws("", "", "AKID")).contains("region"));
    }
}

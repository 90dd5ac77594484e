//! Wire (`tollgate_proto::sync`) to domain conversion: the only place that sees prost types
//! of resources. A resource that cannot be used becomes a [`Rejected`] (the NACK reason).

use tollgate_proto::sync as pb;

use super::{Connection, KeyEntry, Provider};
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
}

/// A model alias of a repository, before its targets are resolved.
#[derive(Debug, Clone)]
pub struct RouteDef {
    pub name: String,
    pub strategy: Strategy,
    /// (target model name, weight)
    pub targets: Vec<(String, u32)>,
}

/// A repository as the control plane describes it.
#[derive(Debug, Clone)]
pub struct RepositoryDef {
    pub id: String,
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
        let base = endpoint.trim().trim_end_matches('/');
        let path = match provider {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/v1/messages",
            Provider::Google => "/v1beta/models",
            Provider::Bedrock => "",
        };
        let chat_url: http::Uri = format!("{base}{path}")
            .parse()
            .map_err(|e| reject(format!("endpoint {:?} is not a URL: {e}", c.endpoint)))?;
        if !matches!(chat_url.scheme_str(), Some("http" | "https")) || chat_url.host().is_none() {
            return Err(reject(format!(
                "endpoint {:?} must be an http(s) URL",
                c.endpoint
            )));
        }
        if !c.passthrough && c.secret.is_empty() {
            return Err(reject("managed connection without a secret".into()));
        }
        if provider == Provider::Bedrock && !c.passthrough && c.key.is_empty() {
            return Err(reject(
                "managed AWS connection without an access key id (the connection's key)".into(),
            ));
        }
        if c.routing_id.is_empty() {
            return Err(reject("connection without a routing id".into()));
        }
        // Move the secrets out of the wire message so the only copies are zeroized ones.
        let secret = Secret::new(std::mem::take(&mut c.secret));
        let key = std::mem::take(&mut c.key);
        Ok(Connection {
            id: c.id,
            name: c.name,
            provider,
            chat_url,
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
            id: k.id,
            repository_id: k.repository_id,
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
                    _ => Strategy::Direct,
                },
                targets: route
                    .targets
                    .into_iter()
                    .map(|t| (t.target, t.weight))
                    .collect(),
            })
            .collect();
        Ok(RepositoryDef {
            id: r.id,
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
        // Passthrough needs no key (requests are refused with a 400 instead).
        let mut passthrough = aws("", "us-east-1", "");
        passthrough.passthrough = true;
        passthrough.secret.clear();
        assert!(ok(passthrough).passthrough);

        let rejected = |c: pb::Connection| Connection::try_from(c).expect_err("rejected").reason;
        assert!(rejected(aws("https://proxy.example", "", "AKID")).contains("region"));
        assert!(rejected(aws("", "", "AKID")).contains("region"));
        assert!(rejected(aws("", "us-east-1", "")).contains("access key id"));
    }
}

//! The immutable routing state of one config version, built once per update and read by
//! every request through `ArcSwap` (no lock on the request path).

pub(crate) mod build;
mod convert;
pub mod endpoint;
mod model_index;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::secret::Secret;

pub use build::{ResourceSet, build_snapshot};
pub use convert::Rejected;
pub use endpoint::AuthHeader;
pub use model_index::{DEFAULT_RETRIES, ModelIndex, Target, Targets, Unroutable};

/// Published snapshot holder: `None` until the first snapshot arrives.
pub type SnapshotCell = arc_swap::ArcSwapOption<Snapshot>;

/// The provider API a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OPENAI and OTHER: OpenAI chat completions, forwarded as is.
    OpenAi,
    /// Anthropic Messages API, translated.
    Anthropic,
    /// Google Gemini API (`generateContent`), translated.
    Google,
    /// AWS Bedrock Converse API, translated and SigV4-signed.
    Bedrock,
}

/// One AI LLM configuration, with its secret decrypted.
#[derive(Debug)]
pub struct Connection {
    /// Shared with every usage record of the connection (no copy per request).
    pub id: Arc<str>,
    pub name: String,
    /// The `tollgate.admin.v1.AiType` number (OPENAI and OTHER are both [`Provider::OpenAi`]).
    pub ai_type: i32,
    pub provider: Provider,
    /// Upstream URL of chat completions, computed once from the endpoint (an OPENAI/OTHER
    /// endpoint's query, such as Azure's `?api-version=`, stays after the path). For GOOGLE,
    /// the model collection (`{endpoint}/v1beta/models`): the model and method are appended
    /// per request. For AWS, the endpoint itself (`/model/{id}/converse` is appended).
    pub chat_url: http::Uri,
    /// OPENAI/OTHER: `{endpoint}/completions` and `{endpoint}/embeddings`, the endpoint's
    /// query kept like `chat_url`'s; `None` for other providers.
    pub openai_urls: Option<OpenAiUrls>,
    /// OPENAI/OTHER: the header carrying the credential (`api-key` for Azure OpenAI, else
    /// `Authorization: Bearer`). Other providers set their own headers.
    pub auth: AuthHeader,
    /// The extra access key (OpenAI organization, AWS access key id), if any.
    pub key: Option<Secret>,
    /// AWS: the region requests are signed for; empty for other providers.
    pub region: String,
    pub secret: Secret,
    /// The app sends the provider key with each request (BYOK); `secret` is empty.
    pub passthrough: bool,
    pub routing_id: String,
    pub models: Vec<String>,
}

impl Connection {
    /// A managed AWS connection storing no credentials: it signs with the gateway's own AWS
    /// identity (`crate::aws_identity`).
    pub fn uses_own_aws_identity(&self) -> bool {
        self.provider == Provider::Bedrock
            && !self.passthrough
            && self.secret.is_empty()
            && self.key.is_none()
    }
}

/// The other OpenAI-format endpoints of an OPENAI/OTHER connection, built with its chat URL.
#[derive(Debug, Clone)]
pub struct OpenAiUrls {
    pub completions: http::Uri,
    pub embeddings: http::Uri,
}

/// An API key of a repository, known by the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: Arc<str>,
    pub repository_id: Arc<str>,
    pub hash: [u8; 32],
    /// Unix seconds; `None` when the key does not expire.
    pub expires_at: Option<i64>,
}

/// A repository as requests see it: its model index and the `/v1/models` answer.
#[derive(Debug)]
pub struct RepositoryView {
    pub id: String,
    pub workspace_id: Arc<str>,
    pub models: ModelIndex,
    /// The OpenAI list body of `GET /v1/models`, rendered once per snapshot.
    pub models_body: Bytes,
    /// The policies its requests answer to (organization, workspace, repository).
    pub policies: crate::policy::PolicySet,
}

/// Everything a request needs, for one config version.
#[derive(Debug)]
pub struct Snapshot {
    pub version: i64,
    pub built_at: SystemTime,
    keys: FastMap<[u8; 32], Arc<KeyEntry>>,
    repositories: FastMap<String, Arc<RepositoryView>>,
}

/// The maps every request looks up (keys, repositories, model names): foldhash, seeded per
/// process. SipHash, std's default, was ~5% of the instructions of a proxied request; the
/// keys are the operator's, so a caller's lookups cannot degrade the tables.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl Snapshot {
    /// The key whose secret hashes to `hash`.
    pub fn key(&self, hash: &[u8; 32]) -> Option<&Arc<KeyEntry>> {
        self.keys.get(hash)
    }

    /// A repository by id.
    pub fn repository(&self, id: &str) -> Option<&Arc<RepositoryView>> {
        self.repositories.get(id)
    }

    /// Number of keys, for logs.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

//! Conformance records: the provider matrix of `docs/providers.md` is built from them, so the
//! page says only what a test proved in the last run.
//!
//! A test that asserts a capability of a provider type calls [`passed`] as its last statement
//! (so only a test that got there records); a test that asserts the gateway's 400 for a
//! capability a provider type does not offer calls [`refused`] with the reason. Each call
//! writes one JSON file per (provider, capability) under
//! `<target dir>/conformance/<crate>/`:
//!
//! ```json
//! {"provider":"ANTHROPIC","capability":"chat","outcome":"passed","reason":null,
//!  "test":"gateway::chat_through_openai_client","file":"tests/e2e/gateway.rs"}
//! ```
//!
//! `test` is the name libtest gives the test's thread, `file` the caller's source file
//! (relative to the workspace root). The first record of a test process clears its crate's
//! directory, so the records are always those of the latest run of that crate's tests. The
//! golden tests of the data plane write the same format (`data-plane/src/tests/conformance.rs`);
//! `cargo run -p tollgate-tests --bin conformance-matrix` reads both.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// A connection type, as the admin API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Openai,
    Other,
    Anthropic,
    Google,
    Aws,
}

impl Provider {
    /// In the matrix's row order.
    pub const ALL: [Provider; 5] = [
        Provider::Openai,
        Provider::Other,
        Provider::Anthropic,
        Provider::Google,
        Provider::Aws,
    ];

    /// `OPENAI`, `OTHER`, `ANTHROPIC`, `GOOGLE`, `AWS`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Openai => "OPENAI",
            Provider::Other => "OTHER",
            Provider::Anthropic => "ANTHROPIC",
            Provider::Google => "GOOGLE",
            Provider::Aws => "AWS",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A column of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// A chat completion, not streamed.
    Chat,
    /// A streamed chat completion.
    Stream,
    /// Tool calls in a chat completion, not streamed (and tool results sent back).
    Tools,
    /// Tool calls in a streamed chat completion.
    StreamedTools,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// The provider's token counts reach the app and the usage metering.
    Usage,
    /// Provider errors reach the app as OpenAI error bodies with a matching status.
    Errors,
    /// `POST /v1/completions` (legacy completions).
    Completions,
}

impl Capability {
    /// In the matrix's column order.
    pub const ALL: [Capability; 8] = [
        Capability::Chat,
        Capability::Stream,
        Capability::Tools,
        Capability::StreamedTools,
        Capability::Embeddings,
        Capability::Usage,
        Capability::Errors,
        Capability::Completions,
    ];

    /// The name in records: `chat`, `streamed_tools`, ...
    pub fn key(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Stream => "stream",
            Capability::Tools => "tools",
            Capability::StreamedTools => "streamed_tools",
            Capability::Embeddings => "embeddings",
            Capability::Usage => "usage",
            Capability::Errors => "errors",
            Capability::Completions => "completions",
        }
    }

    /// The column heading.
    pub fn title(self) -> &'static str {
        match self {
            Capability::StreamedTools => "streamed tools",
            Capability::Completions => "`/v1/completions`",
            other => other.key(),
        }
    }

    pub fn parse(key: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.key() == key)
    }
}

/// What a test proved about a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The capability works.
    Passed,
    /// The provider type does not offer it, and the gateway says so with a 400 (the reason).
    Refused(String),
}

/// One record, as written by a test and read by `conformance-matrix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub provider: Provider,
    pub capability: Capability,
    pub outcome: Outcome,
    /// The test's name as libtest reports it (`gateway::chat_through_openai_client`).
    pub test: String,
    /// The test's source file, relative to the workspace root.
    pub file: String,
}

impl Record {
    pub fn to_json(&self) -> Value {
        let (outcome, reason) = match &self.outcome {
            Outcome::Passed => ("passed", None),
            Outcome::Refused(reason) => ("refused", Some(reason.as_str())),
        };
        json!({
            "provider": self.provider.name(),
            "capability": self.capability.key(),
            "outcome": outcome,
            "reason": reason,
            "test": self.test,
            "file": self.file,
        })
    }

    /// Reads a record; the error says which field is wrong.
    pub fn from_json(value: &Value) -> Result<Record, String> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no string `{name}` in {value}"))
        };
        let provider = Provider::parse(field("provider")?)
            .ok_or_else(|| format!("unknown provider in {value}"))?;
        let capability = Capability::parse(field("capability")?)
            .ok_or_else(|| format!("unknown capability in {value}"))?;
        let outcome = match field("outcome")? {
            "passed" => Outcome::Passed,
            "refused" => Outcome::Refused(field("reason")?.to_owned()),
            _ => return Err(format!("unknown outcome in {value}")),
        };
        Ok(Record {
            provider,
            capability,
            outcome,
            test: field("test")?.to_owned(),
            file: field("file")?.to_owned(),
        })
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `<target dir>/conformance`: `CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else the workspace's `target/`.
pub fn records_dir() -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    };
    target.join("conformance")
}

/// Records that this test proved `capabilities` of `provider`. Call it last in the test.
#[track_caller]
pub fn passed(provider: Provider, capabilities: &[Capability]) {
    let file = std::panic::Location::caller().file();
    for &capability in capabilities {
        write(Record {
            provider,
            capability,
            outcome: Outcome::Passed,
            test: test_name(),
            file: relative(file),
        });
    }
}

/// Records that this test proved the gateway refuses `capability` of `provider` with a 400,
/// because the provider type does not offer it (`reason`, shown in the matrix).
#[track_caller]
pub fn refused(provider: Provider, capability: Capability, reason: &str) {
    let file = std::panic::Location::caller().file();
    write(Record {
        provider,
        capability,
        outcome: Outcome::Refused(reason.to_owned()),
        test: test_name(),
        file: relative(file),
    });
}

/// The running test's name: libtest runs each test on a thread named after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" && !name.starts_with("tokio-") => name.to_owned(),
        other => panic!(
            "conformance records are written from the test's own thread (this one is {other:?})"
        ),
    }
}

fn relative(file: &str) -> String {
    let root = workspace_root();
    Path::new(file)
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| file.to_owned())
}

/// Writes `record` to its own file (temporary file, then rename: readers never see half a
/// record); the first write of the process clears the crate's earlier records.
fn write(record: Record) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| {
        let dir = records_dir().join(env!("CARGO_PKG_NAME"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("conformance records: cannot create {dir:?}: {e}"));
        dir
    });
    let name: String = format!(
        "{}.{}.{}",
        record.provider.name(),
        record.capability.key(),
        record.test
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c
        } else {
            '-'
        }
    })
    .collect();
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let text = record.to_json().to_string();
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .unwrap_or_else(|e| panic!("conformance records: cannot write {path:?}: {e}"));
}

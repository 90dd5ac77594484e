//! Conformance records of the golden tests, for the provider matrix in `docs/providers.md`.
//!
//! The writing half of `tests/harness/conformance.rs`, which documents the format and the
//! reader (`cargo run -p tollgate-tests --bin conformance-matrix`); this crate cannot depend
//! on the tests crate. A golden test that asserts a capability calls [`passed`] last.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A connection type with translations in this crate, as the admin API names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Provider {
    Anthropic,
    Google,
    Aws,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Anthropic => "ANTHROPIC",
            Provider::Google => "GOOGLE",
            Provider::Aws => "AWS",
        }
    }
}

/// A column of the matrix (the tests crate's `Capability`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Capability {
    Chat,
    Stream,
    Tools,
    StreamedTools,
    Embeddings,
    Usage,
    Errors,
}

impl Capability {
    fn key(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Stream => "stream",
            Capability::Tools => "tools",
            Capability::StreamedTools => "streamed_tools",
            Capability::Embeddings => "embeddings",
            Capability::Usage => "usage",
            Capability::Errors => "errors",
        }
    }
}

/// Records that this test proved `capabilities` of `provider`. Call it last in the test.
#[track_caller]
pub(crate) fn passed(provider: Provider, capabilities: &[Capability]) {
    let file = std::panic::Location::caller().file();
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        other => panic!("conformance records are written from the test's thread, not {other:?}"),
    };
    for &capability in capabilities {
        write(provider, capability, &test, file);
    }
}

/// `<target dir>/conformance`, as the tests crate computes it.
fn records_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest);
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    };
    target.join("conformance")
}

/// One file per record, written through a temporary file; the first write of the process
/// clears this crate's earlier records.
fn write(provider: Provider, capability: Capability, test: &str, file: &str) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| {
        let dir = records_dir().join(env!("CARGO_PKG_NAME"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("conformance records: cannot create {dir:?}: {e}"));
        dir
    });
    let record = serde_json::json!({
        "provider": provider.name(),
        "capability": capability.key(),
        "outcome": "passed",
        "reason": null,
        "test": test,
        "file": file,
    });
    let name: String = format!("{}.{}.{test}", provider.name(), capability.key())
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
    std::fs::write(&tmp, record.to_string())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .unwrap_or_else(|e| panic!("conformance records: cannot write {path:?}: {e}"));
}

//! Builds the provider conformance matrix of `docs/providers.md` from the records the tests
//! wrote in their last run (`tollgate_tests::conformance` documents them):
//!
//! ```sh
//! cargo run -p tollgate-tests --bin conformance-matrix                    # print the block
//! cargo run -p tollgate-tests --bin conformance-matrix -- --write docs/providers.md
//! cargo run -p tollgate-tests --bin conformance-matrix -- --check docs/providers.md
//! ```
//!
//! The block sits between `<!-- BEGIN conformance-matrix` and `<!-- END conformance-matrix
//! -->` lines; the rest of the page is prose. `--check` fails when a recording crate's tests
//! left no records (not run) or when the page's block differs from the one the records give.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tollgate_tests::conformance::{
    Capability, Outcome, Provider, Record, records_dir, workspace_root,
};

const BEGIN: &str = "<!-- BEGIN conformance-matrix";
const END: &str = "<!-- END conformance-matrix -->";
/// The crates whose tests write records: each must have written some.
const SOURCES: [&str; 2] = ["tollgate-tests", "tollgate-data-plane"];
const USAGE: &str = "usage: conformance-matrix [--write FILE | --check FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance-matrix: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Mode {
    Print,
    Write(PathBuf),
    Check(PathBuf),
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.as_slice() {
        [] => Mode::Print,
        [flag, file] if flag == "--write" => Mode::Write(file.into()),
        [flag, file] if flag == "--check" => Mode::Check(file.into()),
        _ => return Err(USAGE.to_owned()),
    };
    let records = read_records(&records_dir())?;
    match mode {
        Mode::Print => {
            let doc = workspace_root().join("docs/providers.md");
            print!("{}", render(&records, &link_prefix(&doc)?)?);
        }
        Mode::Write(doc) => {
            let block = render(&records, &link_prefix(&doc)?)?;
            let text = read(&doc)?;
            let updated = replace_block(&text, &block, &doc)?;
            if updated == text {
                println!("{} is up to date", doc.display());
            } else {
                std::fs::write(&doc, updated)
                    .map_err(|e| format!("cannot write {}: {e}", doc.display()))?;
                println!("wrote the matrix into {}", doc.display());
            }
        }
        Mode::Check(doc) => {
            let block = render(&records, &link_prefix(&doc)?)?;
            let text = read(&doc)?;
            let (start, end) = block_range(&text, &doc)?;
            let current = &text[start..end];
            if current != block {
                return Err(format!(
                    "{doc} does not match what the tests recorded:\n{diff}\nRun the tests \
                     (`cargo test --workspace`), then `cargo run -p tollgate-tests --bin \
                     conformance-matrix -- --write {doc}` and review the change.",
                    doc = doc.display(),
                    diff = diff(current, &block),
                ));
            }
            println!("{} matches the tests' records", doc.display());
        }
    }
    Ok(())
}

fn read(doc: &Path) -> Result<String, String> {
    std::fs::read_to_string(doc).map_err(|e| format!("cannot read {}: {e}", doc.display()))
}

/// Every record under `dir` (one JSON file each, in one directory per recording crate).
fn read_records(dir: &Path) -> Result<Vec<Record>, String> {
    let run_tests =
        "run the tests first: `cargo build --workspace --bins && cargo test --workspace`";
    let mut records = Vec::new();
    for source in SOURCES {
        let sub = dir.join(source);
        let entries = std::fs::read_dir(&sub).map_err(|e| {
            format!(
                "no conformance records of {source} in {}: {e}; {run_tests}",
                sub.display()
            )
        })?;
        let before = records.len();
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", sub.display()))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
            let mut record =
                Record::from_json(&value).map_err(|e| format!("{}: {e}", path.display()))?;
            record.file = relative_to_root(&record.file);
            records.push(record);
        }
        if records.len() == before {
            return Err(format!(
                "the {source} tests left no conformance records in {}; {run_tests}",
                sub.display()
            ));
        }
    }
    Ok(records)
}

fn relative_to_root(file: &str) -> String {
    Path::new(file)
        .strip_prefix(workspace_root())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| file.to_owned())
}

/// `../` once per directory between the workspace root and `doc`: links in the page are
/// relative to it.
fn link_prefix(doc: &Path) -> Result<String, String> {
    let root = std::fs::canonicalize(workspace_root()).map_err(|e| e.to_string())?;
    let absolute = std::path::absolute(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let dir = absolute.parent().unwrap_or(&absolute);
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let inside = dir.strip_prefix(&root).map_err(|_| {
        format!(
            "{} is outside the workspace {}",
            doc.display(),
            root.display()
        )
    })?;
    Ok("../".repeat(inside.components().count()))
}

/// A test that proved a cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Proof {
    /// A golden test of a translation (data plane), else an end-to-end test (`tests/e2e`).
    golden: bool,
    name: String,
    file: String,
}

impl Proof {
    fn of(record: &Record) -> Proof {
        let golden = !record.file.starts_with("tests/");
        // `providers::anthropic::tests::stream::stream_text` → `anthropic::stream::stream_text`.
        let name = if golden {
            record
                .test
                .split("::")
                .filter(|s| *s != "providers" && *s != "tests")
                .collect::<Vec<_>>()
                .join("::")
        } else {
            record.test.clone()
        };
        Proof {
            golden,
            name,
            file: record.file.clone(),
        }
    }
}

#[derive(Default)]
struct Cell {
    passed: BTreeSet<Proof>,
    /// Reason → the tests that checked the 400.
    refused: BTreeMap<String, BTreeSet<Proof>>,
}

/// The block between the markers (markers included, ending with a newline).
fn render(records: &[Record], links: &str) -> Result<String, String> {
    let mut cells: BTreeMap<(Provider, Capability), Cell> = BTreeMap::new();
    for r in records {
        let cell = cells.entry((r.provider, r.capability)).or_default();
        match &r.outcome {
            Outcome::Passed => {
                cell.passed.insert(Proof::of(r));
            }
            Outcome::Refused(reason) => {
                cell.refused
                    .entry(reason.clone())
                    .or_default()
                    .insert(Proof::of(r));
            }
        }
    }
    for ((provider, capability), cell) in &cells {
        if !cell.passed.is_empty() && !cell.refused.is_empty() {
            return Err(format!(
                "{} {}: recorded as working by {} and as refused by {}; a cell is one or the \
                 other",
                provider.name(),
                capability.key(),
                names(&cell.passed),
                names(cell.refused.values().flatten()),
            ));
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BEGIN}: generated by `cargo run -p tollgate-tests --bin conformance-matrix -- --write \
         docs/providers.md` from what the tests recorded; change the tests, not this block -->"
    );
    out.push('\n');
    out.push_str("| connection type |");
    for c in Capability::ALL {
        let _ = write!(out, " {} |", c.title());
    }
    out.push_str("\n|---|");
    out.push_str(&":-:|".repeat(Capability::ALL.len()));
    out.push('\n');
    for p in Provider::ALL {
        let _ = write!(out, "| {} |", p.name());
        for c in Capability::ALL {
            let mark = match cells.get(&(p, c)) {
                Some(cell) if !cell.passed.is_empty() => "✅",
                Some(cell) if !cell.refused.is_empty() => "—",
                _ => "not tested",
            };
            let _ = write!(out, " {mark} |");
        }
        out.push('\n');
    }
    out.push_str(
        "\n✅ a test asserted it, and passed in the run that generated this block (tests listed \
         below) · — not offered for this connection type: the gateway answers 400 (reason \
         below) · not tested: no test asserts it, so this page does not claim it\n",
    );
    out.push_str("\n### Tests per cell\n");
    out.push_str(
        "\ne2e: `tests/e2e/`, the real binaries and a mock provider, driven by the \
         `async-openai` client or raw HTTP. golden: the translation's unit tests in \
         `data-plane/src/providers/<provider>/tests/`, on fixtures from the provider's \
         documentation, with `insta` snapshots.\n",
    );
    for p in Provider::ALL {
        let _ = write!(out, "\n**{}**\n\n", p.name());
        for c in Capability::ALL {
            let _ = write!(out, "- {}: ", c.title());
            match cells.get(&(p, c)) {
                Some(cell) if !cell.passed.is_empty() => {
                    let _ = writeln!(out, "✅ {}", proofs(&cell.passed, links));
                }
                Some(cell) if !cell.refused.is_empty() => {
                    let reasons: Vec<String> = cell
                        .refused
                        .iter()
                        .map(|(reason, by)| {
                            format!("{reason} (the 400 is checked by {})", proofs(by, links))
                        })
                        .collect();
                    let _ = writeln!(out, "— {}", reasons.join("; "));
                }
                _ => out.push_str("not tested\n"),
            }
        }
    }
    out.push('\n');
    out.push_str(END);
    out.push('\n');
    Ok(out)
}

/// `e2e [a](..), [b](..); golden [c](..)`.
fn proofs<'a>(proofs: impl IntoIterator<Item = &'a Proof>, links: &str) -> String {
    let mut groups: Vec<(bool, Vec<String>)> = Vec::new();
    for p in proofs {
        let link = format!("[`{}`]({links}{})", p.name, p.file);
        match groups.last_mut() {
            Some((golden, list)) if *golden == p.golden => list.push(link),
            _ => groups.push((p.golden, vec![link])),
        }
    }
    groups
        .into_iter()
        .map(|(golden, list)| {
            let kind = if golden { "golden" } else { "e2e" };
            format!("{kind} {}", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn names<'a>(proofs: impl IntoIterator<Item = &'a Proof>) -> String {
    proofs
        .into_iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The byte range of the block in `text`: from the start of the BEGIN line to the end of the
/// END line (its newline included).
fn block_range(text: &str, doc: &Path) -> Result<(usize, usize), String> {
    let missing = |what: &str| {
        format!(
            "{} has no `{what}` line: add the two marker lines where the matrix goes",
            doc.display()
        )
    };
    let start = line_starting(text, BEGIN, 0).ok_or_else(|| missing(BEGIN))?;
    let end_line = line_starting(text, END, start).ok_or_else(|| missing(END))?;
    let end = text[end_line..]
        .find('\n')
        .map_or(text.len(), |i| end_line + i + 1);
    Ok((start, end))
}

/// The offset of the first line at or after `from` that starts with `prefix`.
fn line_starting(text: &str, prefix: &str, from: usize) -> Option<usize> {
    let mut offset = from;
    for line in text[from..].split_inclusive('\n') {
        if line.starts_with(prefix) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

fn replace_block(text: &str, block: &str, doc: &Path) -> Result<String, String> {
    let (start, end) = block_range(text, doc)?;
    Ok(format!("{}{block}{}", &text[..start], &text[end..]))
}

/// The lines to remove (`-`) and add (`+`) to turn `old` into `new` (longest common
/// subsequence; the blocks are short).
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

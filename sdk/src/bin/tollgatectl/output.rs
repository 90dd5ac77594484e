//! Rendering: `-o json` (proto3 JSON), `-o yaml` (the same value) and `-o table`.

use std::io::Write;

use clap::ValueEnum;
use prost_types::Timestamp;
use tollgate_sdk::json::{ProtoName, proto_json, proto_json_list};

use crate::exit::CliError;

/// The `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// A resource that prints as a table row.
pub trait Row: ProtoName {
    const HEADERS: &'static [&'static str];
    fn row(&self) -> Vec<String>;
}

impl Format {
    /// One resource (get, create, update).
    pub fn one<M: Row>(self, m: &M) -> Result<String, CliError> {
        match self {
            Self::Table => Ok(table(M::HEADERS, &[m.row()])),
            _ => self.value(&proto_json(m)?),
        }
    }

    /// A list: a JSON array of the items.
    pub fn list<M: Row>(self, items: &[M]) -> Result<String, CliError> {
        match self {
            Self::Table => Ok(table(
                M::HEADERS,
                &items.iter().map(Row::row).collect::<Vec<_>>(),
            )),
            _ => self.value(&proto_json_list(items)?),
        }
    }

    /// Any message as JSON/YAML, with its own table text.
    pub fn message<M: ProtoName>(
        self,
        m: &M,
        table_text: impl FnOnce() -> String,
    ) -> Result<String, CliError> {
        match self {
            Self::Table => Ok(table_text()),
            _ => self.value(&proto_json(m)?),
        }
    }

    /// A value as JSON or YAML (table callers render themselves).
    pub fn value(self, v: &impl serde::Serialize) -> Result<String, CliError> {
        let render = |e: &dyn std::fmt::Display| CliError::Local(format!("cannot render: {e}"));
        match self {
            Self::Yaml => serde_yaml_ng::to_string(v).map_err(|e| render(&e)),
            _ => serde_json::to_string_pretty(v)
                .map(|s| s + "\n")
                .map_err(|e| render(&e)),
        }
    }
}

/// An aligned table: columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            s.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()),
            ));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A timestamp in RFC 3339, or `-`.
pub fn ts(t: &Option<Timestamp>) -> String {
    t.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// A list joined with commas, or `-`.
pub fn join(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

/// A string, or `-` when empty.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// `yes`/`no`.
pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The name of an enum value (`OPENAI`), or its number when unknown.
pub fn enum_name<E: TryFrom<i32>>(v: i32, name: impl Fn(&E) -> &'static str) -> String {
    E::try_from(v).map_or_else(|_| v.to_string(), |e| name(&e).to_string())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Local(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_trims_trailing_space() {
        let t = table(
            &["ID", "NAME", "TYPE"],
            &[
                vec!["llm_1".into(), "openai-prod".into(), "OPENAI".into()],
                vec!["llm_22".into(), "x".into(), "-".into()],
            ],
        );
        assert_eq!(
            t,
            "ID      NAME         TYPE\nllm_1   openai-prod  OPENAI\nllm_22  x            -\n"
        );
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(table(&["ID", "NAME"], &[]), "ID  NAME\n");
    }

    #[test]
    fn helpers() {
        assert_eq!(join(&[]), "-");
        assert_eq!(join(&["a".into(), "b".into()]), "a,b");
        assert_eq!(or_dash(""), "-");
        assert_eq!(ts(&None), "-");
        let t = Some(Timestamp {
            seconds: 0,
            nanos: 0,
        });
        assert_eq!(ts(&t), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn yaml_is_the_same_value() -> Result<(), CliError> {
        let v = serde_json::json!({"aiType": "OPENAI", "models": ["a"]});
        let y = Format::Yaml.value(&v)?;
        assert_eq!(y, "aiType: OPENAI\nmodels:\n- a\n");
        Ok(())
    }
}

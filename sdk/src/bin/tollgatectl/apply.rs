//! `apply -f FILE`: the file is parsed and every secret read before anything is sent.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use tollgate_sdk::apply::{Change, Outcome, Plan, apply};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output::{Format, write_stdout};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The YAML file (format in APPLY.md).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

fn to_json(o: &Outcome) -> serde_json::Value {
    let change = match o.change {
        Change::Created => "created",
        Change::Updated => "updated",
        Change::Unchanged => "unchanged",
    };
    let mut v = json!({"kind": o.kind, "name": o.name, "change": change});
    if let Some(d) = &o.detail {
        v["detail"] = json!(d);
    }
    if let Some(s) = &o.secret {
        v["secret"] = json!(s.expose());
    }
    v
}

pub async fn run(a: ApplyArgs, ctx: &Ctx) -> Result<String, CliError> {
    let plan = Plan::load(&a.file)?;
    let client = ctx.client().await?;
    let mut outcomes = Vec::new();
    let mut write_err = None;
    let format = ctx.format;
    let result = apply(client, &plan, &mut |o: &Outcome| {
        if format == Format::Table {
            // Lines go out as items are done, so a failure later keeps what was reported.
            if let Err(e) = write_stdout(&(o.line() + "\n")) {
                write_err.get_or_insert(e);
            }
        } else {
            outcomes.push(to_json(o));
        }
    })
    .await;
    let text = match format {
        Format::Table => String::new(),
        f => f.value(&serde_json::Value::Array(outcomes))?,
    };
    if let Err(e) = result {
        // What was done before the failure is said in json/yaml too.
        if !text.is_empty() {
            write_stdout(&text)?;
        }
        return Err(e.into());
    }
    if let Some(e) = write_err {
        return Err(e);
    }
    Ok(text)
}

//! `tollgate-bench`: Tollgate's own load benchmark (see `docs/benchmarks.md`).
//!
//! ```text
//! tollgate-bench load         direct upstream vs nginx vs Tollgate, wrk at 1/16/64/256
//! tollgate-bench scale        a data plane applies 10,000 connections + 100,000 keys
//! tollgate-bench propagation  an admin write reaching 50 data planes
//! tollgate-bench upstream     the mock upstream alone (the others start it themselves)
//! ```
//!
//! Everything runs on loopback; every process it starts is killed when it ends or fails.
#![forbid(unsafe_code)]

mod http;
mod litellm;
mod load;
mod nginx;
mod procs;
mod propagation;
mod report;
mod scale;
mod stream;
mod tls;
mod tollgate;
mod upstream;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

const USAGE: &str = "usage: tollgate-bench <load|scale|propagation|upstream> [options]
  common:      --out DIR (default bench/results)  --bin-dir DIR (default: next to this binary)
  load:        --quick | --duration S (3) --rounds N (5) --concurrency 1,16,64,256
               --chunks N (50) --stream-concurrency 1,16 --stream-duration S per round (1)
               --stream-delay-us N (200; 0: no paced streams)
               --litellm PATH (the `litellm` command: LiteLLM's proxy as a fourth target)
               --upstream-tls (the mock upstreams serve HTTPS with a throwaway CA that
               nginx and Tollgate verify; direct is HTTPS too, streams included)
  scale:       --quick | --connections N (10000) --keys N (100000)
  propagation: --quick | --planes N (50) --writes N (20) --poll-ms N (10)
  upstream:    --port P --chunks N (50) --delay-us N (0) --threads N (2)
               --tls-cert FILE --tls-key FILE (HTTPS, HTTP/1.1 only)";

/// `--flag value` options, after the subcommand.
struct Args(Vec<String>);

impl Args {
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn value(&self, name: &str) -> Option<&str> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).map(String::as_str)
    }
    fn num(&self, name: &str, default: u64) -> Result<u64> {
        match self.value(name) {
            Some(v) => Ok(v
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: not a number: {v}"))?),
            None => Ok(default),
        }
    }
    fn list(&self, name: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.value(name) {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().parse().map_err(|_| anyhow::anyhow!("{name}: {v}")))
                .collect(),
            None => Ok(default.to_vec()),
        }
    }
}

fn main() -> Result<()> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let cmd = argv.remove(0);
    let a = Args(argv);
    if cmd == "upstream" {
        let port = a.num("--port", 0)?;
        if port == 0 {
            bail!("upstream: --port is required");
        }
        let tls = match (a.value("--tls-cert"), a.value("--tls-key")) {
            (Some(cert), Some(key)) => {
                Some((std::path::Path::new(cert), std::path::Path::new(key)))
            }
            (None, None) => None,
            _ => bail!("upstream: --tls-cert and --tls-key go together"),
        };
        return upstream::main(
            port as u16,
            a.num("--chunks", 50)? as usize,
            a.num("--delay-us", 0)?,
            a.num("--threads", 2)? as usize,
            tls,
        );
    }
    let out = PathBuf::from(a.value("--out").unwrap_or("bench/results"));
    let bin_dir = a.value("--bin-dir").map(PathBuf::from);
    let quick = a.flag("--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let work = async move {
        match cmd.as_str() {
            "load" => {
                let secs = |name, full| -> Result<Duration> {
                    Ok(Duration::from_secs(
                        a.num(name, if quick { 1 } else { full })?,
                    ))
                };
                let o = load::Options {
                    duration: secs("--duration", 3)?,
                    rounds: a.num("--rounds", if quick { 1 } else { 5 })? as usize,
                    concurrency: a.list("--concurrency", &[1, 16, 64, 256])?,
                    chunks: a.num("--chunks", 50)? as usize,
                    stream_concurrency: a.list("--stream-concurrency", &[1, 16])?,
                    stream_duration: secs("--stream-duration", 1)?,
                    stream_delay_us: a.num("--stream-delay-us", 200)?,
                    out,
                    bin_dir,
                    litellm: a.value("--litellm").map(PathBuf::from),
                    upstream_tls: a.flag("--upstream-tls"),
                };
                let doc = load::run(o).await?;
                println!("{}", report::markdown(&doc));
            }
            "scale" => {
                let (c, k) = if quick {
                    (1_000, 10_000)
                } else {
                    (10_000, 100_000)
                };
                scale::run(
                    a.num("--connections", c)? as usize,
                    a.num("--keys", k)? as usize,
                    bin_dir,
                    out,
                )
                .await?;
            }
            "propagation" => {
                let (p, w) = if quick { (5, 3) } else { (50, 20) };
                propagation::run(
                    a.num("--planes", p)? as usize,
                    a.num("--writes", w)? as usize,
                    Duration::from_millis(a.num("--poll-ms", 10)?),
                    bin_dir,
                    out,
                )
                .await?;
            }
            other => bail!("unknown command {other}\n{USAGE}"),
        }
        Ok(())
    };
    rt.block_on(async move {
        // On Ctrl-C or SIGTERM the work is dropped, and with it every process guard.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    })
}

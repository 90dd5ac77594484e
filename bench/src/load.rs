//! `load`: direct upstream, nginx and Tollgate under the same wrk load, alternating targets
//! so machine drift cancels; then the streaming measurement; JSON and markdown out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::procs::{Proc, Usage, bin, free_port, port_open, wait_until};
use crate::report::TARGETS;
use crate::{litellm, nginx, stream, tollgate, wrk};

#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    pub rounds: usize,
    pub concurrency: Vec<usize>,
    pub chunks: usize,
    pub stream_concurrency: Vec<usize>,
    pub stream_duration: Duration,
    /// Pause between the events of the paced upstream's streams (0: no paced measurement).
    pub stream_delay_us: u64,
    pub out: PathBuf,
    pub bin_dir: Option<PathBuf>,
    /// The `litellm` command, to measure LiteLLM's proxy as a fourth target.
    pub litellm: Option<PathBuf>,
    /// The mock upstream serves HTTPS (a throwaway CA the proxies verify); no streams.
    pub upstream_tls: bool,
}

struct Target {
    name: &'static str,
    port: u16,
    /// `http://127.0.0.1:PORT`, or `https://` for the upstream over TLS.
    origin: String,
    key: Option<String>,
    model: &'static str,
    script: PathBuf,
    idle: Usage,
}

/// Starts the mock upstream (this binary, `upstream` subcommand) on `port`, its stream events
/// `delay_us` apart, over HTTPS with `tls`'s certificate if given.
pub async fn start_upstream(
    dir: &Path,
    port: u16,
    chunks: usize,
    delay_us: u64,
    tls: Option<&crate::tls::Files>,
) -> Result<Proc> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["upstream", "--port", &port.to_string()])
        .args(["--chunks", &chunks.to_string()])
        .args(["--delay-us", &delay_us.to_string()]);
    if let Some(tls) = tls {
        cmd.arg("--tls-cert").arg(&tls.cert);
        cmd.arg("--tls-key").arg(&tls.key);
    }
    let log = dir.join(format!("upstream-{port}.log"));
    let mut p = Proc::spawn("mock upstream", cmd, &log)?;
    wait_until(&mut p, Duration::from_secs(10), || port_open(port)).await?;
    Ok(p)
}

pub async fn run(o: Options) -> Result<Value> {
    anyhow::ensure!(
        !(o.upstream_tls && o.litellm.is_some()),
        "--upstream-tls and --litellm do not go together (LiteLLM would need the CA)"
    );
    // Fail early, before starting anything, when a binary is missing.
    bin(o.bin_dir.as_deref(), "tollgate-control-plane")?;
    bin(o.bin_dir.as_deref(), "tollgate-data-plane")?;
    let tmp = tempfile::Builder::new()
        .prefix("tollgate-bench-")
        .tempdir()?;
    let dir = tmp.path();
    let tls = o
        .upstream_tls
        .then(|| crate::tls::generate(dir))
        .transpose()?;
    if let Some(tls) = &tls {
        // Direct streams go to the upstream over TLS.
        crate::http::trust(&tls.ca)?;
    }
    let up_port = free_port()?;
    let upstream = start_upstream(dir, up_port, o.chunks, 0, tls.as_ref()).await?;
    let up_scheme = if tls.is_some() { "https" } else { "http" };
    let up_origin = format!("{up_scheme}://127.0.0.1:{up_port}");
    let ng_port = free_port()?;
    let ca = tls.as_ref().map(|t| t.ca.as_path());
    let nginx = nginx::start(&dir.join("nginx"), ng_port, up_port, ca).await?;
    let cp = tollgate::start_control_plane(o.bin_dir.as_deref(), dir).await?;
    let mut dp_flags: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(ca) = ca {
        dp_flags.extend(["--upstream-ca-file".as_ref(), ca.as_os_str()]);
    }
    let dp = tollgate::start_data_plane(
        o.bin_dir.as_deref(),
        dir,
        "data-plane",
        &cp.sync_url,
        &cp.sync_token_file,
        true,
        &dp_flags,
    )
    .await?;
    let (key, repo) = tollgate::configure(&cp.admin_url, &up_origin).await?;
    // The paced upstream, behind its own nginx and its own Tollgate connection.
    let paced = if o.stream_delay_us > 0 {
        let port = free_port()?;
        let upstream = start_upstream(dir, port, o.chunks, o.stream_delay_us, tls.as_ref()).await?;
        let ng = free_port()?;
        let nginx = nginx::start(&dir.join("nginx-paced"), ng, port, ca).await?;
        let origin = format!("{up_scheme}://127.0.0.1:{port}");
        tollgate::add_connection(&cp.admin_url, &repo, tollgate::PACED, &origin).await?;
        Some((port, ng, upstream, nginx))
    } else {
        None
    };
    let litellm = match &o.litellm {
        Some(bin) => {
            let paced_port = paced.as_ref().map(|p| p.0);
            Some(litellm::start(bin, dir, up_port, paced_port).await?)
        }
        None => None,
    };
    // The key reaches the data plane through sync: wait until it is accepted.
    let mut ok = false;
    for _ in 0..250 {
        let status = crate::http::chat_status(dp.port, Some(&key), tollgate::MODEL).await;
        if status.is_ok_and(|s| s.is_success()) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(
        ok,
        "the gateway never answered 200:\n{}",
        dp.proc.log_tail()
    );

    let mut procs: Vec<&Proc> = vec![&upstream, &nginx, &dp.proc];
    if let Some(l) = &litellm {
        procs.push(&l.proc);
    }
    let mut targets: Vec<Target> = Vec::new();
    for (i, name) in TARGETS.into_iter().take(procs.len()).enumerate() {
        let (port, key, model) = match name {
            "direct" => (up_port, None, "gpt-4o-mini"),
            "nginx" => (ng_port, None, "gpt-4o-mini"),
            "litellm" => (
                litellm.as_ref().map_or(0, |l| l.port),
                Some(litellm::KEY.to_owned()),
                "gpt-4o-mini",
            ),
            _ => (dp.port, Some(key.clone()), tollgate::MODEL),
        };
        let script = wrk::script(dir, name, &wrk::chat_body(model), key.as_deref())?;
        let origin = match name {
            "direct" => up_origin.clone(),
            _ => format!("http://127.0.0.1:{port}"),
        };
        targets.push(Target {
            name,
            port,
            origin,
            key,
            model,
            script,
            idle: procs[i].usage(),
        });
    }
    // Warm-up (connection pools, allocator), not recorded.
    let mut warmup_requests = 1; // the readiness probe above
    for t in &targets {
        let r = wrk::run(&t.script, &t.origin, 16, Duration::from_secs(1)).await?;
        if t.name == "tollgate" {
            warmup_requests += r["requests"].as_u64().unwrap_or(0);
        }
    }

    let mut points: Vec<Vec<Value>> = vec![Vec::new(); targets.len()];
    for &c in &o.concurrency {
        let mut runs: Vec<Vec<(Value, f64)>> = vec![Vec::new(); targets.len()];
        for round in 0..o.rounds {
            // ABC then CBA...: each target sees the same average position in time.
            let order = alternate(round, targets.len());
            for i in order {
                let t = &targets[i];
                let before = procs[i].usage();
                let cp_before = cp.proc.usage();
                let mut r = wrk::run(&t.script, &t.origin, c, o.duration).await?;
                let after = procs[i].usage();
                let cpu = after.cpu_secs - before.cpu_secs;
                r["user_cpu_s"] = json!(after.user_secs - before.user_secs);
                if t.name == "litellm" {
                    // Requests wrk left in its queue are still worked on after the run:
                    // wait, so the next target's run does not share the CPUs with them.
                    litellm::wait_idle(t.port).await?;
                }
                if t.name == "tollgate" {
                    r["control_plane_cpu_s"] = json!(cp.proc.usage().cpu_secs - cp_before.cpu_secs);
                }
                eprintln!(
                    "c={c:<3} round {round} {:<8} {:>8.0} req/s p50 {:>6} µs p99 {:>6} µs errors {}/{}",
                    t.name,
                    r["requests"].as_f64().unwrap_or(0.0)
                        / (r["duration_us"].as_f64().unwrap_or(1.0) / 1e6),
                    r["p50_us"],
                    r["p99_us"],
                    r["errors"],
                    r["status_errors"]
                );
                runs[i].push((r, cpu));
            }
        }
        for (i, rs) in runs.into_iter().enumerate() {
            points[i].push(summarize(c, &rs));
        }
    }

    let mut streams = Vec::new();
    // Unpaced: the mock writes a whole stream at once. Paced: events `stream_delay_us` apart,
    // as a model emits tokens, so each is forwarded on its own.
    let mut stream_targets = vec![(0, up_port, ng_port, tollgate::MODEL, "gpt-4o-mini")];
    if let Some((port, ng, _, _)) = &paced {
        stream_targets.push((
            o.stream_delay_us,
            *port,
            *ng,
            tollgate::PACED_MODEL,
            litellm::PACED_MODEL,
        ));
    }
    // In rounds of `stream_duration`, alternating like the load points.
    for (delay_us, up, ng, tg_model, ll_model) in stream_targets {
        for &c in &o.stream_concurrency {
            let mut tallies: Vec<stream::Tally> =
                targets.iter().map(|_| stream::Tally::default()).collect();
            for round in 0..o.rounds.max(1) {
                for i in alternate(round, targets.len()) {
                    let t = &targets[i];
                    let (port, model) = match t.name {
                        "direct" => (up, t.model),
                        "nginx" => (ng, t.model),
                        "litellm" => (t.port, ll_model),
                        _ => (t.port, tg_model),
                    };
                    let scheme = if t.name == "direct" {
                        up_scheme
                    } else {
                        "http"
                    };
                    let key = t.key.clone();
                    stream::run(
                        &format!("{scheme}://127.0.0.1:{port}"),
                        key,
                        model,
                        o.chunks,
                        c,
                        o.stream_duration,
                        &mut tallies[i],
                    )
                    .await?;
                    if t.name == "litellm" {
                        litellm::wait_idle(t.port).await?;
                    }
                }
            }
            for (t, tally) in targets.iter().zip(tallies) {
                let mut r = tally.summary(c);
                r["target"] = json!(t.name);
                r["event_delay_us"] = json!(delay_us);
                streams.push(r);
            }
        }
    }

    // Honesty check: every request Tollgate answered was metered and reached the store (a
    // few more may be: requests in flight when a wrk run stops are cut, yet metered).
    let served: u64 = warmup_requests
        + points[TARGETS.iter().position(|t| *t == "tollgate").unwrap_or(2)]
            .iter()
            .map(|p| p["requests"].as_f64().unwrap_or(0.0) as u64)
            .sum::<u64>()
        + streams
            .iter()
            .filter(|s| s["target"] == "tollgate")
            .map(|s| s["streams"].as_u64().unwrap_or(0))
            .sum::<u64>();
    let connections: &[&str] = if paced.is_some() {
        &["mock", tollgate::PACED]
    } else {
        &["mock"]
    };
    let recorded = tollgate::recorded_calls(&cp.admin_url, connections, served).await?;
    eprintln!("usage: {recorded} API calls recorded for {served} completed requests");

    let mut doc_targets = serde_json::Map::new();
    for (i, t) in targets.iter().enumerate() {
        let after = procs[i].usage();
        doc_targets.insert(
            t.name.into(),
            json!({
                "memory": {
                    "idle_rss_kib": t.idle.rss_kib,
                    "after_rss_kib": after.rss_kib,
                    "peak_rss_kib": after.hwm_kib,
                },
                "points": points[i],
            }),
        );
    }
    let doc = json!({
        "machine": machine(),
        "config": {
            "duration_s": o.duration.as_secs(),
            "rounds": o.rounds,
            "concurrency": o.concurrency,
            "chunks_per_stream": o.chunks,
            "stream_concurrency": o.stream_concurrency,
            "stream_duration_s": o.stream_duration.as_secs(),
            "stream_delay_us": o.stream_delay_us,
            "tollgate": "tollgate-control-plane serve (embedded store) + tollgate-data-plane, sync over loopback; key auth, qualified-model routing with model rewrite, usage reporting on",
            "nginx": "worker_processes auto; keepalive 256 to the upstream; access_log off; proxy_buffering off",
            "upstream_tls": o.upstream_tls.then_some("the mock upstreams serve HTTPS (rustls, HTTP/1.1 only, a throwaway CA): nginx verifies them (proxy_ssl_verify, proxy_ssl_session_reuse), Tollgate with --upstream-ca-file, wrk and the stream client connect to them directly over TLS; apps talk plain HTTP to both proxies"),
            "litellm": o.litellm.as_deref().map(|b| format!("{} (`{}`): its proxy with a config file, master key, no database", litellm::version(b), b.display())),
        },
        "targets": doc_targets,
        "stream": streams,
        "usage_check": {"measured_requests": served, "recorded_api_calls": recorded},
    });
    let control_plane = cp.proc.usage();
    let mut doc = doc;
    doc["control_plane_after"] =
        json!({"cpu_s": control_plane.cpu_secs, "rss_kib": control_plane.rss_kib});
    write(&o.out, "load", &doc, &crate::report::markdown(&doc))?;
    // Processes are killed here, in reverse order of start, by their guards.
    drop((litellm, dp, cp, paced, nginx, upstream, tmp));
    let problems = problems(&doc);
    anyhow::ensure!(
        problems.is_empty(),
        "the run is not valid (results written anyway):\n  {}",
        problems.join("\n  ")
    );
    Ok(doc)
}

/// The order of the targets in `round`: forward, then backward, and so on.
fn alternate(round: usize, targets: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..targets).collect()
    } else {
        (0..targets).rev().collect()
    }
}

/// What makes a run's numbers meaningless: failed requests, broken streams, usage lost.
fn problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for t in TARGETS {
        for p in doc["targets"][t]["points"].as_array().into_iter().flatten() {
            if p["errors"].as_f64().unwrap_or(0.0) > 0.0 {
                out.push(format!(
                    "{t} at {}: {} failed requests (socket errors or non-2xx)",
                    p["concurrency"], p["errors"]
                ));
            }
        }
    }
    for s in doc["stream"].as_array().into_iter().flatten() {
        if s["errors"].as_u64().unwrap_or(0) > 0 {
            out.push(format!(
                "streams to {} at {}: {} failed ({})",
                s["target"], s["concurrency"], s["errors"], s["last_error"]
            ));
        }
    }
    let u = &doc["usage_check"];
    if u["recorded_api_calls"].as_u64() < u["measured_requests"].as_u64() {
        out.push(format!("usage lost: {u}"));
    }
    out
}

/// Mean over the rounds of one (target, concurrency) point; CPU per 1,000 requests from the
/// sums.
fn summarize(c: usize, rs: &[(Value, f64)]) -> Value {
    let n = rs.len().max(1) as f64;
    let mean = |k: &str| {
        rs.iter()
            .map(|(r, _)| r[k].as_f64().unwrap_or(0.0))
            .sum::<f64>()
            / n
    };
    let requests: f64 = rs
        .iter()
        .map(|(r, _)| r["requests"].as_f64().unwrap_or(0.0))
        .sum();
    let secs: f64 = rs
        .iter()
        .map(|(r, _)| r["duration_us"].as_f64().unwrap_or(0.0) / 1e6)
        .sum();
    let cpu: f64 = rs.iter().map(|(_, c)| c).sum();
    let user: f64 = rs
        .iter()
        .map(|(r, _)| r["user_cpu_s"].as_f64().unwrap_or(0.0))
        .sum();
    let errors: f64 = rs
        .iter()
        .map(|(r, _)| {
            r["errors"].as_f64().unwrap_or(0.0) + r["status_errors"].as_f64().unwrap_or(0.0)
        })
        .sum();
    json!({
        "concurrency": c,
        "rps": requests / secs.max(1e-9),
        "requests": requests,
        "errors": errors,
        "p50_us": mean("p50_us"),
        "p90_us": mean("p90_us"),
        "p99_us": mean("p99_us"),
        "p999_us": mean("p999_us"),
        "cpu_s_per_1k": cpu / requests.max(1.0) * 1000.0,
        "user_cpu_s_per_1k": user / requests.max(1.0) * 1000.0,
        "rounds": rs.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
    })
}

/// What the report says about the machine.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

/// Writes `<name>.json` and `<name>.md` under `out`.
pub fn write(out: &Path, name: &str, doc: &Value, md: &str) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(doc)?,
    )?;
    std::fs::write(out.join(format!("{name}.md")), md)?;
    eprintln!("wrote {}/{name}.json and {name}.md", out.display());
    Ok(())
}

//! `propagation`: one control plane, `planes` real data plane processes; each admin write
//! (an API key created through the SDK) is timed until every data plane's `/readyz` reports
//! the new config version. Polling every `poll` bounds the resolution.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::report::percentile;
use crate::tollgate::{self, readyz_version};

pub async fn run(
    planes: usize,
    writes: usize,
    poll: Duration,
    bin_dir: Option<PathBuf>,
    out: PathBuf,
) -> Result<Value> {
    let tmp = tempfile::Builder::new()
        .prefix("tollgate-prop-")
        .tempdir()?;
    let dir = tmp.path();
    let cp = tollgate::start_control_plane(bin_dir.as_deref(), dir).await?;
    tollgate::configure(&cp.admin_url, "http://127.0.0.1:9").await?;
    let mut dps = Vec::with_capacity(planes);
    for i in 0..planes {
        dps.push(
            tollgate::start_data_plane(
                bin_dir.as_deref(),
                dir,
                &format!("data-plane-{i}"),
                &cp.sync_url,
                &cp.sync_token_file,
                true,
                &[],
            )
            .await?,
        );
    }
    let rss_total: u64 = dps.iter().map(|d| d.proc.usage().rss_kib).sum();
    let client = tollgate_sdk::Client::connect(&cp.admin_url, tollgate::ADMIN_TOKEN).await?;
    let ports: Vec<u16> = dps.iter().map(|d| d.admin_port).collect();
    let mut samples_us: Vec<u64> = Vec::with_capacity(planes * writes);
    let mut worst_per_write_ms = Vec::with_capacity(writes);
    for w in 0..writes {
        let mut before = i64::MAX;
        for &p in &ports {
            before = before.min(readyz_version(p).await.unwrap_or(0));
        }
        let start = Instant::now();
        tollgate::new_key(&client, "bench", &format!("prop-{w}")).await?;
        let tasks: Vec<_> = ports
            .iter()
            .map(|&p| {
                tokio::spawn(async move {
                    let deadline = start + Duration::from_secs(10);
                    loop {
                        if readyz_version(p).await.is_some_and(|v| v > before) {
                            return Some(start.elapsed());
                        }
                        if Instant::now() > deadline {
                            return None;
                        }
                        tokio::time::sleep(poll).await;
                    }
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        for t in tasks {
            match t.await? {
                Some(d) => {
                    worst = worst.max(d);
                    samples_us.push(d.as_micros() as u64);
                }
                None => bail!("write {w} did not reach a data plane within 10 s"),
            }
        }
        worst_per_write_ms.push(worst.as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples_us.sort_unstable();
    let ms = |us: u64| us as f64 / 1e3;
    let doc = json!({
        "machine": crate::load::machine(),
        "planes": planes,
        "writes": writes,
        "poll_ms": poll.as_secs_f64() * 1e3,
        "p50_ms": ms(percentile(&samples_us, 50.0)),
        "p99_ms": ms(percentile(&samples_us, 99.0)),
        "max_ms": ms(samples_us.last().copied().unwrap_or(0)),
        "worst_plane_per_write_ms": worst_per_write_ms,
        "data_planes_rss_total_kib": rss_total,
    });
    let md = format!(
        "| admin write → N data planes | samples | p50 | p99 | max | poll interval |\n|---|---:|---:|---:|---:|---:|\n| {planes} data planes, {writes} writes | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
        samples_us.len(),
        ms(percentile(&samples_us, 50.0)),
        ms(percentile(&samples_us, 99.0)),
        ms(samples_us.last().copied().unwrap_or(0)),
        poll.as_secs_f64() * 1e3,
    );
    eprint!("{md}");
    crate::load::write(&out, "propagation", &doc, &md)?;
    drop((dps, cp, tmp));
    Ok(doc)
}

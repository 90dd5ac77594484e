//! Results: the JSON document and its markdown tables, ratios computed within one run.

use std::fmt::Write;

use serde_json::Value;

pub const TARGETS: [&str; 3] = ["direct", "nginx", "tollgate"];

/// The `p`th percentile (nearest rank) of sorted `v`; 0 when empty.
pub fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn point<'a>(doc: &'a Value, target: &str, c: u64) -> Option<&'a Value> {
    doc["targets"][target]["points"]
        .as_array()?
        .iter()
        .find(|p| p["concurrency"].as_u64() == Some(c))
}

fn mib(kib: &Value) -> f64 {
    f(kib) / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

/// The markdown of a `load` result.
pub fn markdown(doc: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| conc. | target | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | CPU s / 1k req | req/s vs direct | req/s vs nginx | errors |"
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let levels: Vec<u64> = doc["config"]["concurrency"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    for &c in &levels {
        let rps = |t: &str| point(doc, t, c).map(|p| f(&p["rps"])).unwrap_or(0.0);
        for t in TARGETS {
            let Some(p) = point(doc, t, c) else { continue };
            let ratio = |base: f64| {
                if base > 0.0 {
                    format!("{:.2}×", f(&p["rps"]) / base)
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                s,
                "| {c} | {t} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.4} | {} | {} | {:.0} |",
                f(&p["rps"]),
                f(&p["p50_us"]),
                f(&p["p90_us"]),
                f(&p["p99_us"]),
                f(&p["p999_us"]),
                f(&p["cpu_s_per_1k"]),
                ratio(rps("direct")),
                ratio(rps("nginx")),
                f(&p["errors"]),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n| target | RSS idle MiB | RSS after load MiB | peak RSS MiB |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for t in TARGETS {
        let m = &doc["targets"][t]["memory"];
        let _ = writeln!(
            s,
            "| {t} | {:.1} | {:.1} | {:.1} |",
            mib(&m["idle_rss_kib"]),
            mib(&m["after_rss_kib"]),
            mib(&m["peak_rss_kib"])
        );
    }
    if let Some(streams) = doc["stream"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(
            s,
            "\n| upstream event gap µs | stream conc. | target | streams/s | TTFB p50 µs | TTFB p99 µs | events/s (all) | events/s per stream (p50) | errors |"
        );
        let _ = writeln!(s, "|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        for r in streams {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.0} | {} |",
                r["event_delay_us"].as_u64().unwrap_or(0),
                r["concurrency"],
                r["target"].as_str().unwrap_or("?"),
                f(&r["streams_per_s"]),
                r["ttfb_p50_us"],
                r["ttfb_p99_us"],
                f(&r["events_per_s"]),
                f(&r["stream_events_per_s_p50"]),
                r["errors"],
            );
        }
    }
    let u = &doc["usage_check"];
    let _ = writeln!(
        s,
        "\nUsage accounting check: the control plane recorded {} API calls for the {} requests Tollgate completed in this run (warm-up included; requests cut off when a wrk run stops are metered too, so a few more is expected).",
        u["recorded_api_calls"], u["measured_requests"]
    );
    s.push_str(&budget(doc));
    s
}

/// DESIGN §7 next to what this run measured.
fn budget(doc: &Value) -> String {
    let mut s = String::from("\n| DESIGN §7 budget | measured | verdict |\n|---|---|---|\n");
    let at = |t: &str, c: u64, k: &str| point(doc, t, c).map(|p| f(&p[k]));
    if let (Some(tg), Some(ng)) = (at("tollgate", 64, "rps"), at("nginx", 64, "rps")) {
        let r = tg / ng;
        let _ = writeln!(
            s,
            "| req/s at 64 conns ≥ 0.9× nginx | {r:.2}× ({tg:.0} vs {ng:.0}) | {} |",
            verdict(r >= 0.9)
        );
    }
    for (k, limit) in [("p50_us", 60.0), ("p99_us", 250.0)] {
        if let (Some(tg), Some(d)) = (at("tollgate", 1, k), at("direct", 1, k)) {
            let added = tg - d;
            let _ = writeln!(
                s,
                "| added {} at conc. 1 ≤ {limit} µs | {added:.0} µs ({tg:.0} vs {d:.0}) | {} |",
                &k[..3],
                verdict(added <= limit)
            );
        }
    }
    // Time to first byte with a paced upstream (a model's tokens come apart, so each event
    // is forwarded on its own): Tollgate's p50 minus the direct path's, one stream at a time.
    let ttfb = |t: &str| {
        doc["stream"].as_array()?.iter().find_map(|r| {
            (r["target"] == t && r["concurrency"] == 1 && r["event_delay_us"].as_u64() > Some(0))
                .then(|| f(&r["ttfb_p50_us"]))
        })
    };
    if let (Some(tg), Some(d)) = (ttfb("tollgate"), ttfb("direct")) {
        let added = tg - d;
        let _ = writeln!(
            s,
            "| stream TTFB added (paced upstream, conc. 1, p50) ≤ 100 µs | {added:.0} µs ({tg:.0} vs {d:.0}) | {} |",
            verdict(added <= 100.0)
        );
    }
    let m = &doc["targets"]["tollgate"]["memory"];
    let (idle, after) = (mib(&m["idle_rss_kib"]), mib(&m["after_rss_kib"]));
    let _ = writeln!(
        s,
        "| RSS idle ≤ 30 MB | {idle:.1} MiB | {} |",
        verdict(idle * 1.048_576 <= 30.0)
    );
    let _ = writeln!(
        s,
        "| RSS after load ≤ 64 MB | {after:.1} MiB | {} |",
        verdict(after * 1.048_576 <= 64.0)
    );
    s
}

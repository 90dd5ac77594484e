//! Results: the JSON document and its markdown tables, ratios computed within one run.

use std::fmt::Write;

use serde_json::Value;

/// Every target `load` knows, in table order; LiteLLM only when asked for.
pub const TARGETS: [&str; 4] = ["direct", "nginx", "tollgate", "litellm"];

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

/// `value` of each round of `target` at concurrency `c`, in round order.
fn per_round(doc: &Value, target: &str, c: u64, value: impl Fn(&Value) -> f64) -> Vec<f64> {
    point(doc, target, c)
        .and_then(|p| p["rounds"].as_array())
        .map(|rs| rs.iter().map(value).collect())
        .unwrap_or_default()
}

fn round_rps(r: &Value) -> f64 {
    f(&r["requests"]) / (f(&r["duration_us"]) / 1e6).max(1e-9)
}

/// The median of `v` (the mean of the middle two when even); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// `pair(a, b)` of the rounds of `a` and `b` with the same index (run next to each other,
/// so they saw the same machine): the budget's statistic is the median of these, which a
/// neighbour's burst during one round does not move.
fn paired(a: &[f64], b: &[f64], pair: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| pair(*x, *y)).collect()
}

fn list(v: &[f64], digits: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    if let Some(tls) = doc["config"]["upstream_tls"].as_str() {
        let _ = writeln!(s, "Upstream over TLS: {tls}.\n");
    }
    let _ = writeln!(
        s,
        "| conc. | target | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | CPU s / 1k req | of it user | req/s vs direct | req/s vs nginx | errors |"
    );
    let _ = writeln!(
        s,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let levels: Vec<u64> = doc["config"]["concurrency"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    for &c in &levels {
        let rps = |t: &str| point(doc, t, c).map(|p| f(&p["rps"])).unwrap_or(0.0);
        for t in TARGETS {
            let Some(p) = point(doc, t, c) else { continue };
            let ratio = |base: f64| {
                let r = f(&p["rps"]) / base;
                if base > 0.0 && r < 0.1 {
                    format!("{r:.4}×")
                } else if base > 0.0 {
                    format!("{r:.2}×")
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                s,
                "| {c} | {t} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.4} | {:.4} | {} | {} | {:.0} |",
                f(&p["rps"]),
                f(&p["p50_us"]),
                f(&p["p90_us"]),
                f(&p["p99_us"]),
                f(&p["p999_us"]),
                f(&p["cpu_s_per_1k"]),
                f(&p["user_cpu_s_per_1k"]),
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
        if m.is_null() {
            continue;
        }
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
    let ratios = paired(
        &per_round(doc, "tollgate", 64, round_rps),
        &per_round(doc, "nginx", 64, round_rps),
        |tg, ng| tg / ng.max(1e-9),
    );
    if let (Some(r), Some(tg), Some(ng)) = (
        median(&ratios),
        at("tollgate", 64, "rps"),
        at("nginx", 64, "rps"),
    ) {
        let _ = writeln!(
            s,
            "| req/s at 64 conns ≥ 0.9× nginx | {r:.2}× (median of rounds: {}; all rounds pooled {:.2}×, {tg:.0} vs {ng:.0}) | {} |",
            list(&ratios, 2),
            tg / ng.max(1e-9),
            verdict(r >= 0.9)
        );
    }
    for (k, limit) in [("p50_us", 60.0), ("p99_us", 250.0)] {
        let added = paired(
            &per_round(doc, "tollgate", 1, |r| f(&r[k])),
            &per_round(doc, "direct", 1, |r| f(&r[k])),
            |tg, d| tg - d,
        );
        if let (Some(a), Some(tg), Some(d)) =
            (median(&added), at("tollgate", 1, k), at("direct", 1, k))
        {
            let _ = writeln!(
                s,
                "| added {} at conc. 1 ≤ {limit} µs | {a:.0} µs (median of rounds: {}; means {tg:.0} vs {d:.0}) | {} |",
                &k[..3],
                list(&added, 0),
                verdict(a <= limit)
            );
        }
    }
    // Time to first byte with a paced upstream (a model's tokens come apart, so each event
    // is forwarded on its own): Tollgate's p50 minus the direct path's, one stream at a time.
    let paced = |t: &str| {
        doc["stream"].as_array()?.iter().find(|r| {
            r["target"] == t && r["concurrency"] == 1 && r["event_delay_us"].as_u64() > Some(0)
        })
    };
    if let (Some(tg), Some(d)) = (paced("tollgate"), paced("direct")) {
        let rounds = |r: &Value| -> Vec<f64> {
            r["rounds_ttfb_p50_us"]
                .as_array()
                .map(|a| a.iter().map(f).collect())
                .unwrap_or_default()
        };
        let added = paired(&rounds(tg), &rounds(d), |tg, d| tg - d);
        if let Some(a) = median(&added) {
            let _ = writeln!(
                s,
                "| stream TTFB added (paced upstream, conc. 1, p50) ≤ 100 µs | {a:.0} µs (median of rounds: {}; all streams {:.0} vs {:.0}) | {} |",
                list(&added, 0),
                f(&tg["ttfb_p50_us"]),
                f(&d["ttfb_p50_us"]),
                verdict(a <= 100.0)
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    /// A point whose rounds ran `rps` req/s (1 s each) with p50 `p50` µs.
    fn pt(c: u64, rps: &[f64], p50: &[f64]) -> Value {
        let rounds: Vec<Value> = rps
            .iter()
            .zip(p50)
            .map(|(r, p)| json!({"requests": r, "duration_us": 1e6, "p50_us": p, "p99_us": p}))
            .collect();
        let n = rps.len() as f64;
        json!({"concurrency": c, "rps": rps.iter().sum::<f64>() / n,
               "p50_us": p50.iter().sum::<f64>() / n, "p99_us": p50.iter().sum::<f64>() / n,
               "rounds": rounds})
    }

    #[test]
    fn budget_pairs_rounds_and_takes_the_median() {
        // Round 1 caught a burst on the machine while Tollgate ran: the pooled ratio fails,
        // the rounds' median does not.
        let doc = json!({"targets": {
            "direct": {"points": [pt(1, &[1.0; 3], &[80.0, 80.0, 80.0])], "memory": {}},
            "nginx": {"points": [pt(64, &[100.0, 100.0, 100.0], &[0.0; 3])], "memory": {}},
            "tollgate": {"points": [
                pt(1, &[1.0; 3], &[130.0, 400.0, 135.0]),
                pt(64, &[95.0, 40.0, 92.0], &[0.0; 3]),
            ], "memory": {}},
        }, "stream": [
            {"target": "direct", "concurrency": 1, "event_delay_us": 200, "ttfb_p50_us": 200,
             "rounds_ttfb_p50_us": [200, 210, 190]},
            {"target": "tollgate", "concurrency": 1, "event_delay_us": 200, "ttfb_p50_us": 300,
             "rounds_ttfb_p50_us": [270, 500, 280]},
        ]});
        let b = budget(&doc);
        assert!(
            b.contains("| req/s at 64 conns ≥ 0.9× nginx | 0.92× (median of rounds: 0.95, 0.40, 0.92; all rounds pooled 0.76×"),
            "{b}"
        );
        assert!(
            b.contains("| added p50 at conc. 1 ≤ 60 µs | 55 µs (median of rounds: 50, 320, 55;"),
            "{b}"
        );
        assert!(
            b.contains("| stream TTFB added (paced upstream, conc. 1, p50) ≤ 100 µs | 90 µs (median of rounds: 70, 290, 90; all streams 300 vs 200) | met |"),
            "{b}"
        );
        assert!(!b.contains("**not met** |"), "{b}");
    }
}

//! `ReportUsage`: adds a data plane's usage report into the usage rows exactly once.
//!
//! A report and its high-water mark (`usage/applied/{instance}`) are written in one
//! compare-and-swap transaction, so a report is either fully counted and marked, or not at
//! all; a retry of a counted report finds the mark and changes nothing. A high-water mark
//! (rather than a set of applied sequences) is enough because a data plane sends its reports
//! one at a time in sequence order (the contract in `sync.proto`).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng as _;
use tollgate_proto::sync as pb;

use crate::api::{Ctx, convert};
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, Bucket, UsageRowKey};
use crate::model::{PolicyAction, UsageTotals, Violation};
use crate::store::{Revision, Txn, embedded::MAX_TXN_OPS};

/// Transactions tried before giving up with `ABORTED` (the data plane retries later).
const ATTEMPTS: u32 = 5;
/// Unix minutes beyond this (about the year 2160) are refused: nothing legitimate is there,
/// and stats turn minutes into milliseconds.
const MAX_MINUTE: i64 = 100_000_000;
/// Longest id, model or environment accepted in a record.
const MAX_FIELD_LEN: usize = 512;

/// Key of a data plane's last applied report sequence.
pub fn applied_key(instance_id: &str) -> String {
    format!("usage/applied/{}", keys::escape_segment(instance_id))
}

/// Applies `report` once; `applied: false` when it had been applied before.
pub async fn report(ctx: &Ctx, report: pb::UsageReport) -> ApiResult<pb::UsageAck> {
    let deltas = plan(&report)?;
    let events = violations(&report)?;
    let mark = applied_key(&report.instance_id);
    let sequence = report.sequence;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Jittered backoff, so racing replicas do not collide again in lockstep.
            let ms = rand::thread_rng().gen_range(5..=20u64 << attempt);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let (applied, mark_rev) = read_mark(ctx, &mark).await?;
        if sequence <= applied {
            tracing::debug!(instance = %report.instance_id, sequence, applied,
                "usage report already applied");
            return Ok(pb::UsageAck {
                sequence,
                applied: false,
            });
        }
        let current =
            futures::future::try_join_all(deltas.keys().map(|k| ctx.store().get(k))).await?;
        let mut txn = Txn::new()
            .when(mark.clone(), mark_rev)
            .put(mark.clone(), sequence.to_string());
        for ((key, delta), kv) in deltas.iter().zip(current) {
            let (mut totals, rev) = match kv {
                Some(kv) => (decode_totals(key, &kv.value), kv.mod_revision),
                None => (UsageTotals::default(), 0),
            };
            add(&mut totals, delta);
            txn = txn
                .when(key.clone(), rev)
                .put(key.clone(), crate::db::encode(&totals));
        }
        for (key, event) in &events {
            txn = txn.put(key.clone(), crate::db::encode(event));
        }
        if ctx.store().txn(txn).await?.succeeded {
            tracing::debug!(instance = %report.instance_id, sequence,
                records = report.records.len(), "usage report applied");
            record_last_used(ctx, &report).await;
            if let Some(webhook) = &ctx.alerts {
                let alerts = events.into_iter().map(|(_, v)| v);
                webhook.send(
                    &ctx.validator,
                    alerts.filter(|v| v.message.is_some()).collect(),
                );
            }
            return Ok(pb::UsageAck {
                sequence,
                applied: true,
            });
        }
    }
    Err(ApiError::Aborted(format!(
        "usage report {sequence} of {} kept conflicting with concurrent writes; retry it",
        report.instance_id
    )))
}

/// Moves each key's last-used minute forward (best effort, outside the exactly-once
/// transaction: it is a timestamp, not a count). Kept under `usage/`, not in the key record,
/// so that it does not resend the key to every data plane on every report.
async fn record_last_used(ctx: &Ctx, report: &pb::UsageReport) {
    let mut latest: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for r in &report.records {
        if !r.api_key_id.is_empty() {
            let m = latest.entry(r.api_key_id.as_str()).or_insert(r.minute);
            *m = (*m).max(r.minute);
        }
    }
    for (key, minute) in latest {
        let k = keys::api_key_last_used(key);
        for _ in 0..3 {
            let cur = match ctx.store().get(&k).await {
                Ok(cur) => cur,
                Err(_) => break,
            };
            let (old, rev) = cur
                .map(|kv| {
                    let m = std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .unwrap_or(0);
                    (m, kv.mod_revision)
                })
                .unwrap_or((0, 0));
            if old >= minute {
                break;
            }
            let txn = Txn::new()
                .when(k.clone(), rev)
                .put(k.clone(), minute.to_string());
            match ctx.store().txn(txn).await {
                Ok(r) if r.succeeded => break,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
}

async fn read_mark(ctx: &Ctx, mark: &str) -> ApiResult<(u64, Revision)> {
    let Some(kv) = ctx.store().get(mark).await? else {
        return Ok((0, 0));
    };
    let applied = std::str::from_utf8(&kv.value)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::Internal(format!("stored usage mark {mark} is not a sequence number"))
        })?;
    Ok((applied, kv.mod_revision))
}

/// An unreadable row is logged and counted from zero: refusing would block every later
/// report of this data plane on a row nobody can read anyway.
fn decode_totals(key: &str, value: &[u8]) -> UsageTotals {
    serde_json::from_slice(value).unwrap_or_else(|e| {
        tracing::error!(key, error = %e, "usage row is unreadable; counting it from zero");
        UsageTotals::default()
    })
}

/// Checks the report and sums its records per store key (lifetime total, minute row, day
/// row), so that one transaction can write them.
fn plan(report: &pb::UsageReport) -> ApiResult<BTreeMap<String, UsageTotals>> {
    let id = report.instance_id.trim();
    if id.is_empty() || id.len() > MAX_FIELD_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "instance_id",
            "a stable, non-empty data plane id of at most 512 printable characters is required",
        ));
    }
    if report.sequence == 0 {
        return Err(ApiError::invalid(
            "sequence",
            "report sequences start at 1 (0 would never be above the applied mark)",
        ));
    }
    check_field("environment", &report.environment)?;
    let mut deltas: BTreeMap<String, UsageTotals> = BTreeMap::new();
    for (i, r) in report.records.iter().enumerate() {
        let field = |name: &str| format!("records[{i}].{name}");
        if r.ai_llm_id.is_empty() || r.ai_llm_id.contains('/') {
            return Err(ApiError::invalid(
                &field("ai_llm_id"),
                "the id of the connection that served the calls is required (no '/')",
            ));
        }
        if !(0..=MAX_MINUTE).contains(&r.minute) {
            return Err(ApiError::invalid(
                &field("minute"),
                format!(
                    "{} is not a Unix minute (seconds since 1970 / 60)",
                    r.minute
                ),
            ));
        }
        for (name, value) in [
            ("ai_llm_id", &r.ai_llm_id),
            ("repository_id", &r.repository_id),
            ("api_key_id", &r.api_key_id),
            ("model", &r.model),
        ] {
            check_field(&field(name), value)?;
        }
        // A record merged over several minutes (`window_minutes`) counts in the minute and
        // the day where its window starts: totals stay exact, only the spread is coarser.
        let t = totals(r);
        let row = |bucket| UsageRowKey {
            llm: r.ai_llm_id.clone(),
            bucket,
            repo: r.repository_id.clone(),
            api_key: r.api_key_id.clone(),
            model: r.model.clone(),
            environment: report.environment.clone(),
        };
        for key in [
            keys::usage_total(&r.ai_llm_id),
            row(Bucket::Minute(r.minute)).key(),
            row(Bucket::Day(r.minute.div_euclid(1440))).key(),
        ] {
            add(deltas.entry(key).or_default(), &t);
        }
    }
    // One key is the applied mark, one per violation event.
    let writes = deltas.len() + 1 + report.violations.len();
    if writes > MAX_TXN_OPS {
        return Err(ApiError::invalid(
            "records",
            format!(
                "this report needs {writes} store writes, more than the {MAX_TXN_OPS} one \
                 transaction may hold; the data plane must split it (32 records and violations \
                 together always fit)"
            ),
        ));
    }
    Ok(deltas)
}

/// The report's violation events with their store keys.
fn violations(report: &pb::UsageReport) -> ApiResult<Vec<(String, Violation)>> {
    report
        .violations
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let field = |name: &str| format!("violations[{i}].{name}");
            for (name, value) in [
                ("id", &v.id),
                ("policy_id", &v.policy_id),
                ("policy_name", &v.policy_name),
                ("workspace_id", &v.workspace_id),
                ("repository_id", &v.repository_id),
                ("api_key_id", &v.api_key_id),
                ("ai_llm_id", &v.ai_llm_id),
                ("model", &v.model),
                ("host", &v.host),
            ] {
                check_field(&field(name), value)?;
            }
            if v.id.is_empty() || v.policy_id.is_empty() || v.workspace_id.is_empty() {
                return Err(ApiError::invalid(
                    &field("id"),
                    "a violation needs its id, its policy's id and its workspace",
                ));
            }
            if v.explanation.len() > 4 * MAX_FIELD_LEN {
                return Err(ApiError::invalid(
                    &field("explanation"),
                    format!("longer than {} bytes", 4 * MAX_FIELD_LEN),
                ));
            }
            if !(0..=MAX_MINUTE * 60_000).contains(&v.time_ms) {
                return Err(ApiError::invalid(
                    &field("time_ms"),
                    format!("{} is not a time in Unix milliseconds", v.time_ms),
                ));
            }
            let severity = convert::risk(&field("severity"), v.severity)?.ok_or_else(|| {
                ApiError::invalid(
                    &field("severity"),
                    "a severity (the policy's risk) is required",
                )
            })?;
            let action = convert::action(&field("action"), v.action)?;
            let event = Violation {
                id: v.id.clone(),
                policy_id: v.policy_id.clone(),
                policy_name: v.policy_name.clone(),
                time: v.time_ms,
                explanation: v.explanation.clone(),
                workspace_id: v.workspace_id.clone(),
                repository_id: v.repository_id.clone(),
                api_key_id: v.api_key_id.clone(),
                severity,
                blocked: v.blocked,
                // An unknown type from a newer data plane is left out, not refused.
                model_type: convert::ai_type("", v.ai_type).ok().flatten(),
                model: v.model.clone(),
                host: v.host.clone(),
                message: (action == Some(PolicyAction::Alert)).then(|| {
                    format!(
                        "policy '{}' ({} risk) fired: {}",
                        v.policy_name,
                        format!("{severity:?}").to_uppercase(),
                        v.explanation
                    )
                }),
            };
            Ok((keys::violation(&v.workspace_id, v.time_ms, &v.id), event))
        })
        .collect()
}

fn check_field(name: &str, value: &str) -> ApiResult<()> {
    if value.len() > MAX_FIELD_LEN {
        return Err(ApiError::invalid(
            name,
            format!("longer than {MAX_FIELD_LEN} bytes"),
        ));
    }
    Ok(())
}

fn totals(r: &pb::UsageRecord) -> UsageTotals {
    UsageTotals {
        api_calls: r.api_calls,
        errors: r.errors,
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        llm_tokens_in: r.llm_tokens_in,
        llm_tokens_out: r.llm_tokens_out,
        policy_violations: r.policy_violations,
        alerts: r.alerts,
        blocks: r.blocks,
        latency_ms_sum: r.latency_ms_sum,
    }
}

/// Saturating, so that absurd counters from a broken data plane cannot overflow.
fn add(t: &mut UsageTotals, o: &UsageTotals) {
    for (a, b) in [
        (&mut t.api_calls, o.api_calls),
        (&mut t.errors, o.errors),
        (&mut t.tokens_in, o.tokens_in),
        (&mut t.tokens_out, o.tokens_out),
        (&mut t.llm_tokens_in, o.llm_tokens_in),
        (&mut t.llm_tokens_out, o.llm_tokens_out),
        (&mut t.policy_violations, o.policy_violations),
        (&mut t.alerts, o.alerts),
        (&mut t.blocks, o.blocks),
        (&mut t.latency_ms_sum, o.latency_ms_sum),
    ] {
        *a = a.saturating_add(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(llm: &str, minute: i64) -> pb::UsageRecord {
        pb::UsageRecord {
            minute,
            ai_llm_id: llm.into(),
            repository_id: "repo".into(),
            api_key_id: "key".into(),
            model: "gpt-4o".into(),
            api_calls: 1,
            tokens_in: u64::MAX,
            ..Default::default()
        }
    }

    fn report(records: Vec<pb::UsageRecord>) -> pb::UsageReport {
        pb::UsageReport {
            instance_id: "dp-1".into(),
            sequence: 1,
            environment: "production".into(),
            records,
            violations: Vec::new(),
        }
    }

    #[test]
    fn sync_usage_plan_merges_rows_and_saturates() {
        let deltas = plan(&report(vec![record("l1", 60), record("l1", 60)])).expect("valid");
        // One total, one minute row, one day row.
        assert_eq!(deltas.len(), 3);
        let total = &deltas[&keys::usage_total("l1")];
        assert_eq!((total.api_calls, total.tokens_in), (2, u64::MAX));
    }

    #[test]
    fn sync_usage_plan_refuses_bad_reports() {
        let bad = |r: pb::UsageReport, field: &str| match plan(&r) {
            Err(ApiError::InvalidArgument { field: f, .. }) => assert!(f.contains(field), "{f}"),
            other => panic!("expected INVALID_ARGUMENT on {field}, got {other:?}"),
        };
        bad(report(vec![record("", 1)]), "ai_llm_id");
        bad(report(vec![record("a/b", 1)]), "ai_llm_id");
        bad(report(vec![record("l1", -1)]), "minute");
        bad(report(vec![record("l1", i64::MAX)]), "minute");
        bad(
            pb::UsageReport {
                sequence: 0,
                ..report(vec![])
            },
            "sequence",
        );
        bad(
            pb::UsageReport {
                instance_id: " ".into(),
                ..report(vec![])
            },
            "instance_id",
        );
        // 64 records over 64 connections: 192 rows, more than one transaction holds.
        let many = (0..64).map(|i| record(&format!("l{i}"), i)).collect();
        bad(report(many), "records");
        // 32 records always fit, however they spread.
        let spread = (0..32)
            .map(|i| record(&format!("l{i}"), i * 1440))
            .collect();
        assert!(plan(&report(spread)).is_ok());
    }

    fn violation(id: &str) -> pb::Violation {
        pb::Violation {
            id: id.into(),
            policy_id: "pol_1".into(),
            policy_name: "no-secrets".into(),
            time_ms: 1_700_000_000_000,
            explanation: "the request text contains an AWS access key id".into(),
            workspace_id: "ws_1".into(),
            severity: 3,
            action: 2,
            ai_type: 1,
            ..Default::default()
        }
    }

    #[test]
    fn sync_usage_violations_become_events() {
        let mut r = report(vec![record("l1", 60)]);
        r.violations = vec![violation("v1")];
        let events = violations(&r).expect("valid");
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].0,
            keys::violation("ws_1", 1_700_000_000_000, "v1")
        );
        let event = &events[0].1;
        assert_eq!(event.severity, crate::model::RiskType::High);
        assert_eq!(event.model_type, Some(crate::model::AiType::Openai));
        // An ALERT carries its message (alerts are listed apart).
        assert!(
            event
                .message
                .as_ref()
                .is_some_and(|m| m.contains("no-secrets"))
        );

        let bad = |v: pb::Violation, field: &str| {
            let mut r = report(vec![]);
            r.violations = vec![v];
            match violations(&r) {
                Err(ApiError::InvalidArgument { field: f, .. }) => {
                    assert!(f.contains(field), "{f}")
                }
                other => panic!("expected INVALID_ARGUMENT on {field}, got {other:?}"),
            }
        };
        bad(
            pb::Violation {
                workspace_id: String::new(),
                ..violation("v")
            },
            "violations[0]",
        );
        bad(
            pb::Violation {
                severity: 0,
                ..violation("v")
            },
            "severity",
        );
        bad(
            pb::Violation {
                time_ms: -1,
                ..violation("v")
            },
            "time_ms",
        );
        // Violations count against the transaction: 32 spread records leave no room for 33.
        let mut full = report(
            (0..32)
                .map(|i| record(&format!("l{i}"), i * 1440))
                .collect(),
        );
        full.violations = (0..32).map(|i| violation(&format!("v{i}"))).collect();
        assert!(plan(&full).is_err());
    }
}

//! Retention of minute usage rows: they are kept for a window (48 h by default) and then
//! deleted, so the store and `GetAiLlmStats` stay bounded. Day rows and lifetime totals stay.
//! Policy violation events are kept for their own window (90 days by default); their
//! counters in the usage rows stay.
//! Every replica may run the sweep; deletes are compare-and-swap, so they never collide with
//! a report being applied to the same row.

use std::time::Duration;

use crate::db;
use crate::error::ApiResult;
use crate::keys::{self, Bucket, UsageRowKey};
use crate::model::{AiLlm, now_ms};
use crate::store::{Store, Txn};

/// Rows deleted per transaction (the store takes at most 128 operations).
const BATCH: usize = 100;

/// Deletes minute rows older than `keep`; returns how many were deleted.
pub async fn sweep_minutes(store: &dyn Store, keep: Duration) -> ApiResult<usize> {
    let cutoff_minute = (now_ms() / 60_000) - (keep.as_secs() / 60) as i64;
    let mut deleted = 0;
    for llm in db::list::<AiLlm>(store, keys::LLMS).await? {
        let (rows, _) = store.list(&keys::usage_minutes(&llm.value.id)).await?;
        let old: Vec<_> = rows
            .into_iter()
            .filter(|kv| {
                matches!(UsageRowKey::parse(&kv.key), Some(UsageRowKey { bucket: Bucket::Minute(m), .. }) if m < cutoff_minute)
            })
            .collect();
        for batch in old.chunks(BATCH) {
            let mut txn = Txn::new();
            for kv in batch {
                txn = txn
                    .when(kv.key.clone(), kv.mod_revision)
                    .delete(kv.key.clone());
            }
            // A row written meanwhile is younger than the cutoff by definition: skip it.
            if store.txn(txn).await?.succeeded {
                deleted += batch.len();
            }
        }
    }
    Ok(deleted)
}

/// Deletes violation events older than `keep`; returns how many were deleted.
pub async fn sweep_violations(store: &dyn Store, keep: Duration) -> ApiResult<usize> {
    let cutoff = now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let (events, _) = store.list(keys::VIOLATIONS).await?;
    // `violations/{workspace}/{time ms}/{id}`: the time is the second segment.
    let old: Vec<_> = events
        .into_iter()
        .filter(|kv| {
            kv.key[keys::VIOLATIONS.len()..]
                .split('/')
                .nth(1)
                .and_then(|t| t.parse::<i64>().ok())
                .is_some_and(|t| t < cutoff)
        })
        .collect();
    let mut deleted = 0;
    for batch in old.chunks(BATCH) {
        let mut txn = Txn::new();
        for kv in batch {
            txn = txn.delete(kv.key.clone());
        }
        store.txn(txn).await?;
        deleted += batch.len();
    }
    Ok(deleted)
}

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub usage_minutes: Duration,
    pub violations: Duration,
}

/// Runs the sweeps every `every` until the process ends.
pub async fn run(store: std::sync::Arc<dyn Store>, keep: Keep, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep_minutes(store.as_ref(), keep.usage_minutes).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "deleted minute usage rows past retention"),
            Err(e) => tracing::warn!(error = %e, "usage retention sweep failed; will retry"),
        }
        match sweep_violations(store.as_ref(), keep.violations).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted policy violations past retention"),
            Err(e) => tracing::warn!(error = %e, "violation retention sweep failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UsageTotals;
    use crate::store::EmbeddedStore;

    #[tokio::test]
    async fn old_violations_go_recent_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb"), "/t/").expect("store");
        let day = 24 * 3600 * 1000;
        let mut txn = Txn::new();
        for (i, age_days) in [100, 91, 89, 1].into_iter().enumerate() {
            let key = keys::violation("ws_1", now_ms() - age_days * day, &format!("v{i}"));
            txn = txn.put(key, b"{}".to_vec());
        }
        store.txn(txn).await.expect("write");
        let keep = Duration::from_secs(90 * 24 * 3600);
        assert_eq!(sweep_violations(&store, keep).await.expect("sweep"), 2);
        let (left, _) = store.list(keys::VIOLATIONS).await.expect("list");
        let ids: Vec<_> = left.iter().map(|kv| kv.key.rsplit('/').next()).collect();
        assert_eq!(ids, [Some("v2"), Some("v3")]);
    }

    #[tokio::test]
    async fn old_minute_rows_go_recent_ones_and_days_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb"), "/t/").expect("store");
        let llm = AiLlm {
            id: "llm_1".into(),
            workspace_id: "ws".into(),
            name: "l".into(),
            ai_type: crate::model::AiType::Openai,
            endpoint: "http://127.0.0.1:9/v1".into(),
            key: None,
            key_hint: String::new(),
            secret: None,
            secret_hint: String::new(),
            credential_mode: Default::default(),
            routing_id: "l".into(),
            environments: vec![],
            models: vec![],
            discovered_models: vec![],
            region: String::new(),
            last_validated_at: None,
            validation_success: None,
            validation_message: String::new(),
            created_at: 0,
            updated_at: 0,
        };
        let now_minute = now_ms() / 60_000;
        let row = |bucket| {
            UsageRowKey {
                llm: "llm_1".into(),
                bucket,
                repo: "r".into(),
                api_key: "k".into(),
                model: "m".into(),
                environment: "production".into(),
            }
            .key()
        };
        let totals = db::encode(&UsageTotals {
            api_calls: 1,
            ..Default::default()
        });
        let mut txn = Txn::new().put(keys::llm("llm_1"), db::encode(&llm));
        // 150 old minutes (more than one batch), 3 recent ones, one old day.
        for m in 0..150 {
            txn = txn.put(
                row(Bucket::Minute(now_minute - 3 * 24 * 60 - m)),
                totals.clone(),
            );
            if txn.ops.len() > 100 {
                store.txn(std::mem::take(&mut txn)).await.expect("write");
            }
        }
        for m in 0..3 {
            txn = txn.put(row(Bucket::Minute(now_minute - m)), totals.clone());
        }
        txn = txn.put(row(Bucket::Day(now_minute / 1440 - 10)), totals.clone());
        store.txn(txn).await.expect("write");

        let deleted = sweep_minutes(&store, Duration::from_secs(48 * 3600))
            .await
            .expect("sweep");
        assert_eq!(deleted, 150);
        let (left, _) = store
            .list(&keys::usage_minutes("llm_1"))
            .await
            .expect("list");
        assert_eq!(left.len(), 3);
        let (days, _) = store.list(&keys::usage_days("llm_1")).await.expect("list");
        assert_eq!(days.len(), 1);
        assert_eq!(
            sweep_minutes(&store, Duration::from_secs(48 * 3600))
                .await
                .expect("again"),
            0
        );
    }
}

//! Usage reads: `GetAiLlmStats` (per configuration) and `StatsService` (time series). The
//! data plane's reports are added into the layout of `keys` (`usage/total`, `usage/m`,
//! `usage/d`); these functions only read it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tollgate_proto::admin as pb;
use tollgate_proto::admin::stats_service_server::StatsService;
use tonic::{Request, Response, Status};

use super::{Ctx, convert};
use crate::auth::Access;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::keys::{self, Bucket, UsageRowKey};
use crate::model::{AiLlm, ApiKey, Repository, UsageTotals};

pub struct Service(pub Arc<Ctx>);

fn bucket_start_ms(b: Bucket) -> i64 {
    match b {
        Bucket::Minute(m) => m * 60_000,
        Bucket::Day(d) => d * 86_400_000,
    }
}

/// Rows under `prefix`, with their parsed dimensions.
async fn rows(ctx: &Ctx, prefix: &str) -> ApiResult<Vec<(UsageRowKey, UsageTotals)>> {
    let (kvs, _) = ctx.store().list(prefix).await?;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs {
        let Some(row) = UsageRowKey::parse(&kv.key) else {
            continue;
        };
        let totals: UsageTotals = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::Internal(format!("usage row {} is unreadable: {e}", kv.key)))?;
        out.push((row, totals));
    }
    Ok(out)
}

fn buckets(rows: &[(UsageRowKey, UsageTotals)]) -> Vec<pb::UsageBucket> {
    let mut by: BTreeMap<i64, UsageTotals> = BTreeMap::new();
    for (row, t) in rows {
        by.entry(bucket_start_ms(row.bucket)).or_default().add(t);
    }
    by.into_iter()
        .map(|(start, t)| pb::UsageBucket {
            start: convert::ts(start),
            totals: Some(convert::usage_totals(&t)),
        })
        .collect()
}

/// Lifetime totals and minute and day buckets of one configuration.
pub async fn llm_stats(ctx: &Ctx, llm: &AiLlm) -> ApiResult<pb::AiLlmStats> {
    let total = db::get::<UsageTotals>(ctx.store(), &keys::usage_total(&llm.id))
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    let minutes = rows(ctx, &keys::usage_minutes(&llm.id)).await?;
    let days = rows(ctx, &keys::usage_days(&llm.id)).await?;
    Ok(pb::AiLlmStats {
        ai_llm_id: llm.id.clone(),
        name: llm.name.clone(),
        workspace_id: llm.workspace_id.clone(),
        total_api_calls: total.api_calls,
        total_tokens_in: total.tokens_in,
        total_tokens_out: total.tokens_out,
        total_llm_tokens_in: total.llm_tokens_in,
        total_llm_tokens_out: total.llm_tokens_out,
        total_policy_violations: total.policy_violations,
        total_alerts: total.alerts,
        total_blocks: total.blocks,
        total_errors: total.errors,
        minute_buckets: buckets(&minutes),
        day_buckets: buckets(&days),
    })
}

#[tonic::async_trait]
impl StatsService for Service {
    async fn get_usage(
        &self,
        req: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::GetUsageResponse>, Status> {
        let ctx = &self.0;
        let p = ctx.auth(&req).await?;
        let r = req.into_inner();
        let repo = if r.repository_id.is_empty() {
            None
        } else {
            Some(
                ctx.resolve::<Repository>(
                    &p,
                    "repository_id",
                    &r.repository_id,
                    &r.workspace_id,
                    Access::Read,
                )
                .await?
                .value
                .id,
            )
        };
        let llms: Vec<AiLlm> = if r.ai_llm_id.is_empty() {
            let ws = if r.workspace_id.is_empty() {
                None
            } else {
                Some(
                    ctx.workspace(&p, &r.workspace_id, Access::Read)
                        .await?
                        .value
                        .id,
                )
            };
            db::list::<AiLlm>(ctx.store(), keys::LLMS)
                .await?
                .into_iter()
                .map(|v| v.value)
                .filter(|l| p.can(&l.workspace_id, Access::Read))
                .filter(|l| ws.as_ref().is_none_or(|w| &l.workspace_id == w))
                .collect()
        } else {
            vec![
                ctx.resolve::<AiLlm>(&p, "ai_llm_id", &r.ai_llm_id, &r.workspace_id, Access::Read)
                    .await?
                    .value,
            ]
        };
        let api_key = if r.api_key_id.is_empty() {
            None
        } else {
            let k = db::get::<ApiKey>(ctx.store(), &keys::api_key(&r.api_key_id))
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("no API key with id '{}'", r.api_key_id))
                })?;
            p.require(
                &k.value.workspace_id,
                &ctx.workspace_name(&k.value.workspace_id).await,
                Access::Read,
            )?;
            Some(k.value.id)
        };
        let minute = r.granularity == pb::Granularity::Minute as i32;
        let from = r.from.as_ref().map(convert::from_ts).unwrap_or(i64::MIN);
        let to = r.to.as_ref().map(convert::from_ts).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for llm in &llms {
            let prefix = if minute {
                keys::usage_minutes(&llm.id)
            } else {
                keys::usage_days(&llm.id)
            };
            for (row, t) in rows(ctx, &prefix).await? {
                let start = bucket_start_ms(row.bucket);
                let keep = start >= from
                    && start < to
                    && repo.as_ref().is_none_or(|x| &row.repo == x)
                    && api_key.as_ref().is_none_or(|x| &row.api_key == x)
                    && (r.model.is_empty() || row.model == r.model);
                if keep {
                    out.push(pb::UsageRow {
                        start: convert::ts(start),
                        ai_llm_id: row.llm,
                        repository_id: row.repo,
                        api_key_id: row.api_key,
                        model: row.model,
                        environment: row.environment,
                        totals: Some(convert::usage_totals(&t)),
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            let ka = a.start.as_ref().map(|t| t.seconds);
            let kb = b.start.as_ref().map(|t| t.seconds);
            ka.cmp(&kb)
        });
        Ok(Response::new(pb::GetUsageResponse { rows: out }))
    }
}

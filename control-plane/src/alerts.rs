//! ALERT policy violations posted to the operator's webhook (`--alert-webhook-url`) as the
//! data planes report them. Delivery is best effort with a few retries: the alert is stored
//! first (`ListAlerts` always has it), the webhook is the push on top.

use std::time::Duration;

use bytes::Bytes;
use http::Uri;

use crate::api::convert;
use crate::model::Violation;
use crate::validate::Validator;

/// Attempts per alert, and the wait before each retry.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];

/// Where alerts go. Its URL may hold a secret (chat webhooks put one in the path): only its
/// host is ever shown.
#[derive(Clone)]
pub struct Webhook {
    url: Uri,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.url.host().unwrap_or(""))
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// `url` must be an absolute http(s) URL.
    pub fn new(url: &str) -> Result<Webhook, String> {
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e| format!("the alert webhook URL is not a URL: {e}"))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(_)) => Ok(Webhook { url: uri }),
            _ => Err("the alert webhook URL must be an absolute http:// or https:// URL".into()),
        }
    }

    /// Posts each alert in the background (one JSON document per alert; see
    /// [`payload`]), retrying failures; gives up with a warning.
    pub fn send(&self, client: &Validator, alerts: Vec<Violation>) {
        if alerts.is_empty() {
            return;
        }
        let (url, client) = (self.url.clone(), client.clone());
        tokio::spawn(async move {
            for alert in alerts {
                deliver(&client, &url, &alert).await;
            }
        });
    }
}

async fn deliver(client: &Validator, url: &Uri, alert: &Violation) {
    let body = payload(alert);
    let mut last = String::new();
    for attempt in 0..=RETRY_DELAYS.len() {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAYS[attempt - 1]).await;
        }
        match client.post_json(url, body.clone()).await {
            Ok(status) if status.is_success() => return,
            Ok(status) => last = format!("answered {status}"),
            Err(e) => last = e,
        }
    }
    tracing::warn!(alert = %alert.id, policy = %alert.policy_name, error = %last,
        "alert webhook failed; the alert stays listed by `policy alerts`");
}

/// The webhook's JSON: `{"type":"tollgate.policy.alert","alert":{...}}`, the alert in the
/// admin API's JSON names (lowerCamelCase, RFC 3339 time, enum names).
pub fn payload(v: &Violation) -> Bytes {
    let time = convert::ts(v.time)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let alert = serde_json::json!({
        "id": v.id,
        "policyId": v.policy_id,
        "policyName": v.policy_name,
        "time": time,
        "severity": convert::risk_to_pb(v.severity).as_str_name(),
        "message": v.message,
        "explanation": v.explanation,
        "workspaceId": v.workspace_id,
        "repositoryId": v.repository_id,
        "apiKeyId": v.api_key_id,
        "blocked": v.blocked,
        "model": v.model,
        "modelType": v.model_type.map(|t| convert::ai_type_to_pb(t).as_str_name()),
        "host": v.host,
    });
    Bytes::from(serde_json::json!({"type": "tollgate.policy.alert", "alert": alert}).to_string())
}

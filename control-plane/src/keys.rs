//! The store's key layout, in one place. Every key is relative to the store prefix.
//!
//! ```text
//! org                                   the organization (exists once bootstrapped)
//! workspaces/{id}                       Workspace
//! cfg/llms/{id}                         AiLlm (secrets encrypted, bound to this key)
//! cfg/repos/{id}                        Repository
//! cfg/apikeys/{id}                      ApiKey (hash only)
//! children/{parent key}                 bumped by every child create/attach; a parent's
//!                                       delete compares it, so no child slips in meanwhile
//! tokens/{id}                           AdminToken (hash only)
//! policies/{id}                         Policy
//! idx/ws-name/{name}                    -> workspace id
//! idx/llm-name/{ws}/{name}              -> llm id
//! idx/llm-routing/{ws}/{routing_id}     -> llm id
//! idx/repo-name/{ws}/{name}             -> repository id
//! idx/policy-name/{ws|_org}/{name}      -> policy id
//! idx/token-hash/{sha256 hex}           -> token id
//! usage/total/{llm}                     UsageTotals, lifetime
//! usage/m/{llm}/{unix minute}/{repo}/{key}/{model}/{env}   UsageTotals of one minute
//! usage/d/{llm}/{unix day}/{repo}/{key}/{model}/{env}      UsageTotals of one day
//! usage/applied/{instance}              last applied report sequence of a data plane
//! usage/last-used/{key}                 unix minute an API key was last used
//! violations/{ws}/{time}/{id}           policy violation events
//! ```

pub const ORG: &str = "org";

pub fn workspace(id: &str) -> String {
    format!("workspaces/{id}")
}
pub fn llm(id: &str) -> String {
    format!("cfg/llms/{id}")
}
pub fn repo(id: &str) -> String {
    format!("cfg/repos/{id}")
}
pub fn api_key(id: &str) -> String {
    format!("cfg/apikeys/{id}")
}
/// The children marker of a parent record (a workspace, repository or configuration key).
pub fn children(parent_key: &str) -> String {
    format!("children/{parent_key}")
}
pub fn token(id: &str) -> String {
    format!("tokens/{id}")
}
pub fn policy(id: &str) -> String {
    format!("{POLICIES}{id}")
}
pub fn ws_name(name: &str) -> String {
    format!("idx/ws-name/{name}")
}
pub fn llm_name(ws: &str, name: &str) -> String {
    format!("idx/llm-name/{ws}/{name}")
}
pub fn llm_routing(ws: &str, routing_id: &str) -> String {
    format!("idx/llm-routing/{ws}/{routing_id}")
}
pub fn repo_name(ws: &str, name: &str) -> String {
    format!("idx/repo-name/{ws}/{name}")
}
pub fn policy_name(ws: Option<&str>, name: &str) -> String {
    format!("idx/policy-name/{}/{name}", ws.unwrap_or("_org"))
}
pub fn token_hash(hash: &str) -> String {
    format!("idx/token-hash/{hash}")
}
/// Unix minute an API key was last used (from usage reports).
pub fn api_key_last_used(key_id: &str) -> String {
    format!("usage/last-used/{}", escape_segment(key_id))
}
pub fn usage_total(llm: &str) -> String {
    format!("usage/total/{llm}")
}
pub fn usage_minutes(llm: &str) -> String {
    format!("usage/m/{llm}/")
}
pub fn usage_days(llm: &str) -> String {
    format!("usage/d/{llm}/")
}

pub const WORKSPACES: &str = "workspaces/";
/// Everything data planes receive lives under this prefix, so the sync watch sees nothing else.
pub const CONFIG: &str = "cfg/";
pub const LLMS: &str = "cfg/llms/";
pub const REPOS: &str = "cfg/repos/";
pub const API_KEYS: &str = "cfg/apikeys/";
pub const TOKENS: &str = "tokens/";
/// Policies are enforced by data planes, so they live under [`CONFIG`] (before 0.2 they
/// were under [`OLD_POLICIES`]; `bootstrap::move_policies` moves them).
pub const POLICIES: &str = "cfg/policies/";
pub const OLD_POLICIES: &str = "policies/";
pub const VIOLATIONS: &str = "violations/";

/// A violation event, listed per workspace in time order (milliseconds zero-padded).
/// The keys of `workspace`'s violation events from `from_ms` (inclusive) to `to_ms`
/// (exclusive), as a `[start, end)` range (`i64::MIN` / `i64::MAX`: unbounded).
pub fn violation_range(workspace: &str, from_ms: i64, to_ms: i64) -> (String, String) {
    let ws = escape_segment(workspace);
    let start = format!("{VIOLATIONS}{ws}/{:015}", from_ms.max(0));
    // '0' is the byte after '/': the end of the workspace's prefix.
    let end = if to_ms == i64::MAX {
        format!("{VIOLATIONS}{ws}0")
    } else {
        format!("{VIOLATIONS}{ws}/{:015}", to_ms.max(0))
    };
    (start, end)
}

pub fn violation(workspace: &str, time_ms: i64, id: &str) -> String {
    format!(
        "{VIOLATIONS}{}/{:015}/{}",
        escape_segment(workspace),
        time_ms.max(0),
        escape_segment(id)
    )
}

/// Escapes `/` and `%` so a value can be one segment of a key (model names hold `/`).
pub fn escape_segment(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

pub fn unescape_segment(s: &str) -> String {
    s.replace("%2F", "/").replace("%25", "%")
}

/// Granularity of a usage row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// Unix minute.
    Minute(i64),
    /// Unix day.
    Day(i64),
}

/// One usage row's dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRowKey {
    pub llm: String,
    pub bucket: Bucket,
    pub repo: String,
    pub api_key: String,
    pub model: String,
    pub environment: String,
}

impl UsageRowKey {
    pub fn key(&self) -> String {
        let (g, n) = match self.bucket {
            Bucket::Minute(m) => ("m", m),
            Bucket::Day(d) => ("d", d),
        };
        format!(
            "usage/{g}/{}/{n:012}/{}/{}/{}/{}",
            self.llm,
            escape_segment(&self.repo),
            escape_segment(&self.api_key),
            escape_segment(&self.model),
            escape_segment(&self.environment)
        )
    }

    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.strip_prefix("usage/")?.split('/');
        let g = parts.next()?;
        let llm = parts.next()?.to_string();
        let n: i64 = parts.next()?.parse().ok()?;
        let bucket = match g {
            "m" => Bucket::Minute(n),
            "d" => Bucket::Day(n),
            _ => return None,
        };
        let repo = unescape_segment(parts.next()?);
        let api_key = unescape_segment(parts.next()?);
        let model = unescape_segment(parts.next()?);
        let environment = unescape_segment(parts.next()?);
        parts.next().is_none().then_some(Self {
            llm,
            bucket,
            repo,
            api_key,
            model,
            environment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_ranges_hold_exactly_their_events() {
        let (start, end) = violation_range("ws_1", 1_000, 2_000);
        let inside = |k: &str| start.as_str() <= k && k < end.as_str();
        assert!(inside(&violation("ws_1", 1_000, "a")));
        assert!(inside(&violation("ws_1", 1_999, "z")));
        assert!(
            !inside(&violation("ws_1", 2_000, "a")),
            "the end is exclusive"
        );
        assert!(!inside(&violation("ws_1", 999, "z")));
        assert!(
            !inside(&violation("ws_10", 1_500, "a")),
            "another workspace"
        );
        let (start, end) = violation_range("ws_1", i64::MIN, i64::MAX);
        let inside = |k: &str| start.as_str() <= k && k < end.as_str();
        assert!(inside(&violation("ws_1", 0, "a")) && inside(&violation("ws_1", i64::MAX, "a")));
        assert!(!inside(&violation("ws_10", 5, "a")) && !inside(&violation("ws_0", 5, "a")));
    }

    #[test]
    fn usage_row_keys_round_trip() {
        let row = UsageRowKey {
            llm: "llm_1".into(),
            bucket: Bucket::Minute(29_000_000),
            repo: "repo_1".into(),
            api_key: "key_1".into(),
            model: "meta/llama-3%".into(),
            environment: "production".into(),
        };
        let k = row.key();
        assert!(k.starts_with(&usage_minutes("llm_1")));
        assert_eq!(UsageRowKey::parse(&k), Some(row));
        assert_eq!(UsageRowKey::parse("usage/x/l/1/a/b/c/d"), None);
        assert_eq!(UsageRowKey::parse("usage/m/l/1/a/b/c/d/e"), None);
    }
}

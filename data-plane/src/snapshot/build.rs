//! The resources held by id (the sync client's state) and the snapshot built from them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tollgate_proto::sync as pb;

use super::convert::{Rejected, RepositoryDef};
use super::{Connection, FastMap, KeyEntry, ModelIndex, RepositoryView, Snapshot};
use crate::policy::{Candidate, Entry, Policy, PolicySet};

/// Every resource the data plane holds, by id. Updates apply here; a [`Snapshot`] is then
/// built from the whole set, so readers only ever see a complete version.
#[derive(Debug, Default)]
pub struct ResourceSet {
    /// The version of the last update applied (0: none).
    pub version: i64,
    connections: HashMap<String, Arc<Connection>>,
    repositories: HashMap<String, RepositoryDef>,
    keys: HashMap<String, KeyEntry>,
    policies: HashMap<String, Arc<Policy>>,
}

impl ResourceSet {
    /// Applies one update (a full replace, or upserts and removals by id). Resources that
    /// cannot be used are left out (an existing copy is removed: it is stale) and returned.
    pub fn apply(&mut self, update: pb::ConfigUpdate) -> Vec<Rejected> {
        if update.full {
            self.connections.clear();
            self.repositories.clear();
            self.keys.clear();
            self.policies.clear();
        }
        for r in update.removals {
            match pb::ResourceKind::try_from(r.kind) {
                Ok(pb::ResourceKind::Connection) => drop(self.connections.remove(&r.id)),
                Ok(pb::ResourceKind::Repository) => drop(self.repositories.remove(&r.id)),
                Ok(pb::ResourceKind::ApiKey) => drop(self.keys.remove(&r.id)),
                Ok(pb::ResourceKind::Policy) => drop(self.policies.remove(&r.id)),
                // Unknown kinds come from newer control planes.
                _ => {}
            }
        }
        let mut rejected = Vec::new();
        for res in update.upserts {
            match res.resource {
                Some(pb::resource::Resource::Connection(c)) => {
                    let id = c.id.clone();
                    match Connection::try_from(c) {
                        Ok(c) => drop(self.connections.insert(id, Arc::new(c))),
                        Err(e) => {
                            self.connections.remove(&id);
                            rejected.push(e);
                        }
                    }
                }
                Some(pb::resource::Resource::Repository(r)) => {
                    let id = r.id.clone();
                    match RepositoryDef::try_from(r) {
                        Ok(r) => drop(self.repositories.insert(id, r)),
                        Err(e) => {
                            self.repositories.remove(&id);
                            rejected.push(e);
                        }
                    }
                }
                Some(pb::resource::Resource::ApiKey(k)) => {
                    let id = k.id.clone();
                    match KeyEntry::try_from(k) {
                        Ok(k) => drop(self.keys.insert(id, k)),
                        Err(e) => {
                            self.keys.remove(&id);
                            rejected.push(e);
                        }
                    }
                }
                Some(pb::resource::Resource::Policy(p)) => {
                    let id = p.id.clone();
                    match Policy::try_from(p) {
                        Ok(p) => drop(self.policies.insert(id, Arc::new(p))),
                        Err(e) => {
                            self.policies.remove(&id);
                            rejected.push(e);
                        }
                    }
                }
                None => {}
            }
        }
        self.version = update.version;
        rejected
    }
}

/// Builds the snapshot of `set`: key hash map, and per repository its model index and
/// `/v1/models` body. Route targets that nothing exposes are reported, the rest is kept.
pub fn build_snapshot(set: &ResourceSet) -> (Snapshot, Vec<Rejected>) {
    let mut rejected = Vec::new();
    let keys = set
        .keys
        .values()
        .map(|k| (k.hash, Arc::new(k.clone())))
        .collect();
    let mut repositories =
        FastMap::with_capacity_and_hasher(set.repositories.len(), Default::default());
    // In a fixed order (scope, then name), so violations list the same way on every replica.
    let mut policies: Vec<&Arc<Policy>> = set.policies.values().collect();
    policies.sort_by(|a, b| {
        let scope = |p: &Policy| (!p.workspace_id.is_empty(), !p.repository_id.is_empty());
        (scope(a), &a.name, &a.id).cmp(&(scope(b), &b.name, &b.id))
    });
    for repo in set.repositories.values() {
        let mut conns: Vec<Arc<Connection>> = repo
            .connection_ids
            .iter()
            // A connection not active in this environment is simply absent.
            .filter_map(|id| set.connections.get(id).cloned())
            .collect();
        conns.sort_by(|a, b| a.id.cmp(&b.id));
        let (models, problems) = ModelIndex::build(&conns, &repo.routes);
        if !problems.is_empty() {
            rejected.push(Rejected {
                kind: pb::ResourceKind::Repository,
                id: repo.id.clone(),
                reason: problems.join("; "),
            });
        }
        let policies = policies_of(&policies, repo, &set.connections);
        let models_body = models_list_body(&models, &policies);
        repositories.insert(
            repo.id.clone(),
            Arc::new(RepositoryView {
                id: repo.id.clone(),
                workspace_id: repo.workspace_id.as_str().into(),
                models,
                models_body,
                policies,
            }),
        );
    }
    let snapshot = Snapshot {
        version: set.version,
        built_at: SystemTime::now(),
        keys,
        repositories,
    };
    (snapshot, rejected)
}

/// The policies `repo`'s requests answer to. Few policies exist (tens, not thousands), so a
/// scan per repository is cheap next to building its model index.
fn policies_of(
    policies: &[&Arc<Policy>],
    repo: &RepositoryDef,
    connections: &HashMap<String, Arc<Connection>>,
) -> PolicySet {
    if policies.is_empty() {
        return PolicySet::default();
    }
    PolicySet::new(
        policies
            .iter()
            .filter(|p| p.applies_to(&repo.workspace_id, &repo.id))
            .map(|p| Entry {
                policy: Arc::clone(p),
                judge: p
                    .judge
                    .as_ref()
                    .and_then(|j| connections.get(&j.connection_id).cloned()),
            })
            .collect(),
    )
}

/// The `/v1/models` answer: the repository's models, less those a BLOCK policy refuses.
fn models_list_body(models: &ModelIndex, policies: &PolicySet) -> Bytes {
    let data: Vec<serde_json::Value> = models
        .names()
        .into_iter()
        .filter(|(id, _)| {
            if policies.is_empty() {
                return true;
            }
            let targets = models.resolve(id, false).unwrap_or_default();
            let candidates: Vec<Candidate<'_>> = targets
                .iter()
                .map(|t| Candidate {
                    model: &t.upstream_model,
                    qualified: t.label.to_str().unwrap_or(""),
                })
                .collect();
            !policies.blocks_model(id, &candidates)
        })
        .map(|(id, owner)| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    Bytes::from(serde_json::json!({"object": "list", "data": data}).to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tollgate_proto::admin::PolicyRules;

    pub(crate) fn conn(
        id: &str,
        ai_type: i32,
        routing_id: &str,
        models: &[&str],
        endpoint: &str,
    ) -> pb::Resource {
        pb::Resource {
            resource: Some(pb::resource::Resource::Connection(pb::Connection {
                id: id.into(),
                name: id.into(),
                ai_type,
                endpoint: endpoint.into(),
                secret: format!("sk-{id}"),
                routing_id: routing_id.into(),
                models: models.iter().map(|m| m.to_string()).collect(),
                ..Default::default()
            })),
        }
    }

    /// `conn` as a passthrough (BYOK) connection.
    pub(crate) fn passthrough(mut res: pb::Resource) -> pb::Resource {
        if let Some(pb::resource::Resource::Connection(c)) = &mut res.resource {
            c.passthrough = true;
            c.secret.clear();
        }
        res
    }

    pub(crate) fn repo(id: &str, conns: &[&str], routes: Vec<pb::Route>) -> pb::Resource {
        pb::Resource {
            resource: Some(pb::resource::Resource::Repository(pb::Repository {
                id: id.into(),
                connection_ids: conns.iter().map(|c| c.to_string()).collect(),
                routes,
                ..Default::default()
            })),
        }
    }

    pub(crate) fn key(id: &str, repo: &str, hash: [u8; 32], expires_at: i64) -> pb::Resource {
        pb::Resource {
            resource: Some(pb::resource::Resource::ApiKey(pb::ApiKey {
                id: id.into(),
                repository_id: repo.into(),
                hash: hash.to_vec(),
                expires_at,
            })),
        }
    }

    fn route(name: &str, strategy: i32, targets: &[(&str, u32)]) -> pb::Route {
        pb::Route {
            name: name.into(),
            strategy,
            targets: targets
                .iter()
                .map(|(t, w)| pb::RouteTarget {
                    target: t.to_string(),
                    weight: *w,
                    timeout_ms: 0,
                })
                .collect(),
            retries: None,
        }
    }

    fn fixture() -> (Snapshot, Vec<Rejected>) {
        let mut set = ResourceSet::default();
        let rejected = set.apply(pb::ConfigUpdate {
            version: 7,
            full: true,
            upserts: vec![
                conn(
                    "c1",
                    1,
                    "oa",
                    &["gpt-4o", "gpt-4o-mini"],
                    "https://api.openai.com/v1/",
                ),
                conn(
                    "c2",
                    5,
                    "local",
                    &["gpt-4o", "meta/llama"],
                    "http://10.0.0.1:8000/v1",
                ),
                conn(
                    "c3",
                    3,
                    "claude",
                    &["claude-3-5-haiku"],
                    "https://api.anthropic.com",
                ),
                conn("c4", 2, "gem", &["gemini"], "https://g/"),
                conn("c6", 4, "bedrock", &["claude"], "https://b"),
                conn("c5", 1, "other-repo", &["gpt-x"], "https://x/v1"),
                repo(
                    "r1",
                    &["c1", "c2", "c3", "c4", "c6", "missing"],
                    vec![
                        route("fast", 1, &[("oa/gpt-4o-mini", 1)]),
                        route(
                            "safe",
                            3,
                            &[("claude/claude-3-5-haiku", 1), ("oa/gpt-4o", 1)],
                        ),
                        // A model its connection lacks: a problem. A routing id that is
                        // not here (another environment's connection): none.
                        route("broken", 1, &[("oa/x", 1)]),
                        route("elsewhere", 1, &[("nope/x", 1)]),
                    ],
                ),
                repo("r2", &["c5"], vec![]),
                key("k1", "r1", [1; 32], 0),
                key("k-bad", "r1", [0; 32], 0),
            ],
            removals: vec![],
        });
        let (snap, mut more) = build_snapshot(&set);
        let mut all = rejected;
        all.append(&mut more);
        (snap, all)
    }

    /// `expected`: the (connection id, upstream model) candidates in order, or "404".
    fn check(snap: &Snapshot, repo: &str, model: &str, expected: &str) {
        let got = match snap
            .repository(repo)
            .and_then(|r| r.models.resolve(model, false).ok())
        {
            None => "404".to_owned(),
            Some(ts) => ts
                .iter()
                .map(|t| format!("{}:{}", t.connection.id, t.upstream_model))
                .collect::<Vec<_>>()
                .join(" "),
        };
        assert_eq!(got, expected, "resolve {model:?} in {repo}");
    }

    #[test]
    fn model_resolution_table() {
        let (snap, _) = fixture();
        check(&snap, "r1", "oa/gpt-4o", "c1:gpt-4o");
        check(&snap, "r1", "local/gpt-4o", "c2:gpt-4o");
        check(&snap, "r1", "gpt-4o-mini", "c1:gpt-4o-mini");
        check(
            &snap,
            "r1",
            "claude/claude-3-5-haiku",
            "c3:claude-3-5-haiku",
        );
        check(&snap, "r1", "meta/llama", "c2:meta/llama"); // bare name with a slash
        check(&snap, "r1", "local/meta/llama", "c2:meta/llama");
        check(&snap, "r1", "fast", "c1:gpt-4o-mini");
        check(&snap, "r1", "safe", "c3:claude-3-5-haiku c1:gpt-4o");
        check(&snap, "r1", "oa/gpt-3.5", "404"); // not in the connection's models
        check(&snap, "r1", "gpt-x", "404"); // another repository's connection
        check(&snap, "r1", "gem/gemini", "c4:gemini");
        check(&snap, "r1", "bedrock/claude", "404"); // rejected provider type
        check(&snap, "r1", "broken", "404");
        check(&snap, "r1", "", "404");
        check(&snap, "r2", "other-repo/gpt-x", "c5:gpt-x");
        check(&snap, "nope", "gpt-4o", "404");
        // A bare name exposed twice spreads over both, each time with the other as fallback.
        let firsts: Vec<String> = (0..2)
            .map(|_| {
                snap.repository("r1")
                    .and_then(|r| r.models.resolve("gpt-4o", false).ok())
                    .expect("routable")
                    .first()
                    .expect("a target")
                    .connection
                    .id
                    .to_string()
            })
            .collect();
        assert_ne!(firsts[0], firsts[1]);
    }

    #[test]
    fn rejections_name_the_resource() {
        let (_, rejected) = fixture();
        let got: Vec<(pb::ResourceKind, &str)> =
            rejected.iter().map(|r| (r.kind, r.id.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (pb::ResourceKind::Connection, "c6"),
                (pb::ResourceKind::Repository, "r1")
            ]
        );
        assert!(
            rejected[1].reason.contains("oa/x") && !rejected[1].reason.contains("nope/x"),
            "{}",
            rejected[1].reason
        );
    }

    #[test]
    fn models_body_lists_qualified_and_bare() {
        let (snap, _) = fixture();
        let body: serde_json::Value =
            serde_json::from_slice(&snap.repository("r2").expect("r2").models_body).expect("json");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, vec!["gpt-x", "other-repo/gpt-x"]);
        assert_eq!(body["object"], "list");
    }

    #[test]
    fn delta_removes_and_upserts() {
        let mut set = ResourceSet::default();
        set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts: vec![key("k1", "r", [1; 32], 0), key("k2", "r", [2; 32], 0)],
            removals: vec![],
        });
        set.apply(pb::ConfigUpdate {
            version: 2,
            full: false,
            upserts: vec![key("k3", "r", [3; 32], 5)],
            removals: vec![pb::ResourceRef {
                kind: pb::ResourceKind::ApiKey as i32,
                id: "k1".into(),
            }],
        });
        let (snap, _) = build_snapshot(&set);
        assert_eq!(snap.version, 2);
        assert!(snap.key(&[1; 32]).is_none());
        assert!(snap.key(&[2; 32]).is_some());
        assert_eq!(snap.key(&[3; 32]).and_then(|k| k.expires_at), Some(5));
        // A bad hash is rejected, the rest of the update still applies.
        let mut bad = match key("k4", "r", [4; 32], 0).resource {
            Some(pb::resource::Resource::ApiKey(k)) => k,
            _ => unreachable!(),
        };
        bad.hash.truncate(3);
        let rejected = set.apply(pb::ConfigUpdate {
            version: 3,
            full: false,
            upserts: vec![
                pb::Resource {
                    resource: Some(pb::resource::Resource::ApiKey(bad)),
                },
                key("k5", "r", [5; 32], 0),
            ],
            removals: vec![],
        });
        assert_eq!(rejected.len(), 1);
        assert!(build_snapshot(&set).0.key(&[5; 32]).is_some());
    }

    fn policy_res(id: &str, ws: &str, repo: &str, patterns: &[&str]) -> pb::Resource {
        pb::Resource {
            resource: Some(pb::resource::Resource::Policy(pb::Policy {
                id: id.into(),
                workspace_id: ws.into(),
                repository_id: repo.into(),
                name: id.into(),
                risk_type: 1,
                action: 3,
                rules: Some(PolicyRules {
                    patterns: patterns.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                }),
                content: String::new(),
            })),
        }
    }

    /// Each repository gets the policies of its organization, workspace and itself; a bad
    /// policy is reported and left out; removals and full updates drop policies.
    #[test]
    fn policies_join_repositories_by_scope() {
        let in_ws = |id: &str, ws: &str| {
            let mut r = repo(id, &[], vec![]);
            if let Some(pb::resource::Resource::Repository(x)) = &mut r.resource {
                x.workspace_id = ws.into();
            }
            r
        };
        let mut set = ResourceSet::default();
        let rejected = set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts: vec![
                in_ws("r1", "w1"),
                in_ws("r2", "w1"),
                in_ws("r3", "w2"),
                policy_res("org", "", "", &["x"]),
                policy_res("w1", "w1", "", &["x"]),
                policy_res("r1-only", "w1", "r1", &["x"]),
                policy_res("broken", "w1", "", &["(unclosed"]),
            ],
            removals: vec![],
        });
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].id, "broken");
        assert!(
            rejected[0].reason.contains("pattern 1"),
            "{}",
            rejected[0].reason
        );
        let names = |set: &ResourceSet, repo: &str| {
            let (snap, _) = build_snapshot(set);
            let view = snap.repository(repo).expect("repo").clone();
            let key: Arc<str> = Arc::from("k");
            view.policies
                .evaluate(&crate::policy::Subject {
                    model: "m",
                    candidates: &[],
                    key_id: &key,
                    body: br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                })
                .into_iter()
                .map(|h| h.policy.id.to_string())
                .collect::<Vec<_>>()
        };
        // Organization first, then workspace, then repository.
        assert_eq!(names(&set, "r1"), ["org", "w1", "r1-only"]);
        assert_eq!(names(&set, "r2"), ["org", "w1"]);
        assert_eq!(names(&set, "r3"), ["org"]);
        set.apply(pb::ConfigUpdate {
            version: 2,
            full: false,
            upserts: vec![],
            removals: vec![pb::ResourceRef {
                kind: pb::ResourceKind::Policy as i32,
                id: "org".into(),
            }],
        });
        assert_eq!(names(&set, "r3"), Vec::<String>::new());
        set.apply(pb::ConfigUpdate {
            version: 3,
            full: true,
            upserts: vec![in_ws("r1", "w1")],
            removals: vec![],
        });
        assert_eq!(names(&set, "r1"), Vec::<String>::new());
    }
}

//! Model name → upstream targets, per repository. Built once per snapshot, so a request does
//! one or two hash lookups.
//!
//! A bare name or a route spreads only over targets of the request's credential mode: with
//! a provider key (passthrough) only passthrough connections, without one only managed
//! connections. A caller's provider key is spread only over connections with the same
//! endpoint origin (scheme, host, port), so it never reaches a host the caller did not pick;
//! otherwise the caller must name the connection (`<routing_id>/<model>`). Qualified names
//! are an explicit choice and are not filtered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Connection;
use super::convert::{RouteDef, Strategy};

/// One place a model name can go: a connection and the model name it knows.
#[derive(Debug, Clone)]
pub struct Target {
    pub connection: Arc<Connection>,
    pub upstream_model: Arc<str>,
}

#[derive(Debug)]
struct Route {
    strategy: Strategy,
    /// Each target's candidates, with its weight.
    targets: Vec<(Vec<Target>, u32)>,
}

/// The connections exposing one bare model name, in connection id order.
#[derive(Debug, Default)]
struct Bare {
    managed: Vec<Target>,
    passthrough: Vec<Target>,
    /// Whether all passthrough targets share one endpoint origin.
    passthrough_one_origin: bool,
}

impl Bare {
    fn all(&self) -> impl Iterator<Item = &Target> {
        self.managed.iter().chain(&self.passthrough)
    }
}

/// Why a known name cannot be routed for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unroutable {
    /// The repository does not route that name.
    Unknown,
    /// The name exists, but the caller must pick a connection: `reason`, and the qualified
    /// names to choose from.
    Ambiguous {
        reason: &'static str,
        choices: Vec<String>,
    },
}

/// The routable model names of one repository.
#[derive(Debug, Default)]
pub struct ModelIndex {
    /// `<routing_id>/<model>` → the one connection and model.
    qualified: HashMap<String, Target>,
    /// `<model>` → every connection exposing it, by credential mode.
    bare: HashMap<String, Bare>,
    /// Route aliases.
    routes: HashMap<String, Route>,
    /// Spreads bare names and weighted routes across their targets.
    next: AtomicUsize,
}

impl ModelIndex {
    /// Indexes the models `connections` expose and the repository's `routes`. Returns the
    /// problems found (a route target nothing exposes), which leave the rest usable.
    pub fn build(connections: &[Arc<Connection>], routes: &[RouteDef]) -> (Self, Vec<String>) {
        let mut index = ModelIndex::default();
        let mut problems = Vec::new();
        for conn in connections {
            for model in &conn.models {
                let target = Target {
                    connection: conn.clone(),
                    upstream_model: Arc::from(model.as_str()),
                };
                index
                    .qualified
                    .entry(format!("{}/{}", conn.routing_id, model))
                    .or_insert_with(|| target.clone());
                let bare = index.bare.entry(model.clone()).or_default();
                if conn.passthrough {
                    bare.passthrough.push(target);
                } else {
                    bare.managed.push(target);
                }
            }
        }
        for bare in index.bare.values_mut() {
            bare.passthrough_one_origin = bare
                .passthrough
                .windows(2)
                .all(|w| same_origin(&w[0], &w[1]));
        }
        for def in routes {
            let mut targets = Vec::new();
            for (name, weight) in &def.targets {
                match index.lookup_model(name) {
                    Some(candidates) => targets.push((candidates, *weight)),
                    None => problems.push(format!(
                        "route {:?}: target {name:?} is not exposed by any attached connection",
                        def.name
                    )),
                }
            }
            if !targets.is_empty() {
                index.routes.insert(
                    def.name.clone(),
                    Route {
                        strategy: def.strategy,
                        targets,
                    },
                );
            }
        }
        (index, problems)
    }

    fn lookup_model(&self, name: &str) -> Option<Vec<Target>> {
        // Qualified first: a bare model name may itself contain a slash ("meta-llama/x").
        if let Some(t) = self.qualified.get(name) {
            return Some(vec![t.clone()]);
        }
        self.bare.get(name).map(|b| b.all().cloned().collect())
    }

    /// The targets to try for `model`, best first (later ones are fallbacks for connect
    /// failures). `passthrough`: the request carries its own provider key.
    pub fn resolve(&self, model: &str, passthrough: bool) -> Result<Vec<Target>, Unroutable> {
        if let Some(route) = self.routes.get(model) {
            return for_mode(self.resolve_route(route), passthrough);
        }
        if let Some(t) = self.qualified.get(model) {
            return Ok(vec![t.clone()]);
        }
        let bare = self.bare.get(model).ok_or(Unroutable::Unknown)?;
        let choices = || {
            bare.all()
                .map(|t| format!("{}/{}", t.connection.routing_id, t.upstream_model))
                .collect()
        };
        let (candidates, reason) = if passthrough {
            if !bare.passthrough_one_origin {
                return Err(Unroutable::Ambiguous {
                    reason: "is exposed by passthrough connections at different hosts and a provider key is sent to one host only: name the connection",
                    choices: choices(),
                });
            }
            (
                &bare.passthrough,
                "is not exposed by a passthrough connection (requests with a provider key use only those): send it without a provider key, or name the connection",
            )
        } else {
            (
                &bare.managed,
                "is exposed only by passthrough connections: send the provider key as `Authorization` and the gateway key as `X-Tollgate-Key`",
            )
        };
        if candidates.is_empty() {
            return Err(Unroutable::Ambiguous {
                reason,
                choices: choices(),
            });
        }
        Ok(self.rotated(candidates))
    }

    fn rotated(&self, all: &[Target]) -> Vec<Target> {
        if all.len() <= 1 {
            return all.to_vec();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % all.len();
        all[start..].iter().chain(&all[..start]).cloned().collect()
    }

    fn resolve_route(&self, route: &Route) -> Vec<Target> {
        match route.strategy {
            Strategy::Direct => route
                .targets
                .first()
                .map(|(c, _)| self.rotated(c))
                .unwrap_or_default(),
            Strategy::Fallback => route
                .targets
                .iter()
                .flat_map(|(c, _)| c.iter().cloned())
                .collect(),
            Strategy::Weighted => {
                let total: u64 = route
                    .targets
                    .iter()
                    .map(|(_, w)| u64::from((*w).max(1)))
                    .sum();
                let mut ticket = (self.next.fetch_add(1, Ordering::Relaxed) as u64) % total.max(1);
                let mut first = 0;
                for (i, (_, w)) in route.targets.iter().enumerate() {
                    let w = u64::from((*w).max(1));
                    if ticket < w {
                        first = i;
                        break;
                    }
                    ticket -= w;
                }
                // The picked target first, the others as fallbacks.
                let mut out: Vec<Target> = route.targets[first].0.clone();
                for (i, (c, _)) in route.targets.iter().enumerate() {
                    if i != first {
                        out.extend(c.iter().cloned());
                    }
                }
                out
            }
        }
    }

    /// Every routable name with the owner shown in `/v1/models`, sorted.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .qualified
            .iter()
            .map(|(n, t)| (n.clone(), t.connection.routing_id.clone()))
            .chain(self.bare.keys().map(|n| (n.clone(), "tollgate".to_owned())))
            .chain(
                self.routes
                    .keys()
                    .map(|n| (n.clone(), "tollgate".to_owned())),
            )
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }
}

/// A route's targets for the request's mode: managed ones without a provider key;
/// passthrough ones sharing the first one's origin with a provider key.
fn for_mode(targets: Vec<Target>, passthrough: bool) -> Result<Vec<Target>, Unroutable> {
    let mut first: Option<Target> = None;
    let kept: Vec<Target> = targets
        .into_iter()
        .filter(|t| {
            if t.connection.passthrough != passthrough {
                return false;
            }
            match &first {
                None => {
                    first = Some(t.clone());
                    true
                }
                Some(f) => !passthrough || same_origin(f, t),
            }
        })
        .collect();
    if kept.is_empty() {
        return Err(Unroutable::Ambiguous {
            reason: if passthrough {
                "is a route without passthrough targets (requests with a provider key use only those): send it without a provider key"
            } else {
                "is a route with only passthrough targets: send the provider key as `Authorization` and the gateway key as `X-Tollgate-Key`"
            },
            choices: Vec::new(),
        });
    }
    Ok(kept)
}

/// Same scheme, host and port (default ports made explicit).
fn same_origin(a: &Target, b: &Target) -> bool {
    origin(&a.connection.chat_url) == origin(&b.connection.chat_url)
}

fn origin(uri: &http::Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let default_port = if scheme == "http" { 80 } else { 443 };
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    (scheme, host, uri.port_u16().unwrap_or(default_port))
}

#[cfg(test)]
mod tests {
    use tollgate_proto::sync as pb;

    use super::Unroutable;
    use crate::snapshot::build::tests::{conn, passthrough, repo};
    use crate::snapshot::{ResourceSet, Snapshot, build_snapshot};

    fn snapshot(upserts: Vec<pb::Resource>) -> Snapshot {
        let mut set = ResourceSet::default();
        let rejected = set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts,
            removals: vec![],
        });
        assert!(rejected.is_empty(), "{rejected:?}");
        build_snapshot(&set).0
    }

    /// Connection ids of the first candidate over `n` calls, or the error's choices.
    fn firsts(snap: &Snapshot, model: &str, passthrough: bool, n: usize) -> String {
        let models = &snap.repository("r").expect("repo").models;
        (0..n)
            .map(|_| match models.resolve(model, passthrough) {
                Ok(ts) => ts
                    .iter()
                    .map(|t| t.connection.id.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                Err(Unroutable::Unknown) => "404".into(),
                Err(Unroutable::Ambiguous { choices, .. }) => {
                    format!("404[{}]", choices.join(" "))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn bare_names_follow_the_credential_mode_and_origin() {
        let snap = snapshot(vec![
            conn(
                "m1",
                1,
                "man1",
                &["gpt", "m-only"],
                "https://api.openai.com/v1",
            ),
            conn("m2", 1, "man2", &["gpt"], "http://10.0.0.1:8000/v1"),
            passthrough(conn(
                "p1",
                1,
                "byok1",
                &["gpt", "same", "p-only"],
                "https://api.openai.com/v1",
            )),
            passthrough(conn("p2", 1, "byok2", &["gpt"], "https://evil.example/v1")),
            passthrough(conn(
                "p3",
                1,
                "byok3",
                &["same"],
                "https://API.openai.com:443/other",
            )),
            repo("r", &["m1", "m2", "p1", "p2", "p3"], vec![]),
        ]);
        // Without a provider key: managed targets only, spread, the other as fallback.
        assert_eq!(firsts(&snap, "gpt", false, 2), "m1+m2 m2+m1");
        assert_eq!(firsts(&snap, "m-only", false, 1), "m1");
        assert_eq!(firsts(&snap, "p-only", false, 1), "404[byok1/p-only]");
        // With one: passthrough targets only, and only within one origin.
        assert_eq!(
            firsts(&snap, "gpt", true, 1),
            "404[man1/gpt man2/gpt byok1/gpt byok2/gpt]"
        );
        assert_eq!(firsts(&snap, "same", true, 2), "p1+p3 p3+p1");
        assert_eq!(firsts(&snap, "p-only", true, 1), "p1");
        assert_eq!(firsts(&snap, "m-only", true, 1), "404[man1/m-only]");
        // Qualified names are an explicit choice.
        assert_eq!(firsts(&snap, "byok2/gpt", true, 1), "p2");
        assert_eq!(firsts(&snap, "man1/gpt", true, 1), "m1");
        assert_eq!(firsts(&snap, "nope", true, 1), "404");
    }
}

//! Model name → upstream targets, per repository. Built once per snapshot, so a request does
//! one or two hash lookups.

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

/// The routable model names of one repository.
#[derive(Debug, Default)]
pub struct ModelIndex {
    /// `<routing_id>/<model>` → the one connection and model.
    qualified: HashMap<String, Target>,
    /// `<model>` → every connection exposing it, in connection id order.
    bare: HashMap<String, Vec<Target>>,
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
                index.bare.entry(model.clone()).or_default().push(target);
            }
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
        self.bare.get(name).cloned()
    }

    /// The targets to try for `model`, best first (later ones are fallbacks for connect
    /// failures). `None`: the repository does not route that name.
    pub fn resolve(&self, model: &str) -> Option<Vec<Target>> {
        if let Some(route) = self.routes.get(model) {
            return Some(self.resolve_route(route));
        }
        if let Some(t) = self.qualified.get(model) {
            return Some(vec![t.clone()]);
        }
        let all = self.bare.get(model)?;
        Some(self.rotated(all))
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

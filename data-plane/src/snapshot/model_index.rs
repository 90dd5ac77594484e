//! Model name → upstream targets, per repository. Built once per snapshot, so a request does
//! one or two hash lookups and gets its candidates as a shared list plus a starting point
//! ([`Targets`]): no allocation, no per-request sorting or filtering.
//!
//! A bare name or a route spreads only over targets of the request's credential mode: with
//! a provider key (passthrough) only passthrough connections, without one only managed
//! connections. A caller's provider key is spread only over connections with the same
//! endpoint origin (scheme, host, port), so it never reaches a host the caller did not pick;
//! otherwise the caller must name the connection (`<routing_id>/<model>`). Qualified names
//! are an explicit choice and are not filtered.
//!
//! Candidates are tried in order, wrapping around (the retry rule is in `proxy::adapter`):
//! - qualified name: its one connection;
//! - bare name: every connection exposing it, starting at the next one in turn (spread);
//! - route `direct`: the candidates of its first target (spread when that target is a bare
//!   name exposed several times);
//! - route `fallback`: every target in route order;
//! - route `weighted`: a target picked by weight first, then the following ones in route
//!   order.
//!
//! Every request may retry [`DEFAULT_RETRIES`] times unless its route sets `retries`; a
//! route target's `timeout_ms` bounds the wait for that target's response head.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::convert::{RouteDef, Strategy};
use super::{Connection, FastMap};

/// Extra attempts a request may make when its route does not say (bare and qualified names
/// included).
pub const DEFAULT_RETRIES: u32 = 2;

/// One place a model name can go: a connection and the model name it knows.
#[derive(Debug, Clone)]
pub struct Target {
    pub connection: Arc<Connection>,
    pub upstream_model: Arc<str>,
    /// The route's bound on the wait for this target's response head; `None`: the data
    /// plane's first-byte timeout.
    pub timeout: Option<Duration>,
    /// `<routing_id>/<upstream model>`, the `x-tollgate-target` header of its answers
    /// (rendered once per snapshot).
    pub label: http::HeaderValue,
}

impl Target {
    fn new(connection: Arc<Connection>, model: &str, qualified: &str) -> Self {
        Self {
            connection,
            upstream_model: Arc::from(model),
            timeout: None,
            label: header_label(qualified),
        }
    }

    /// The wait for this target's response head: the route's timeout, else `default`.
    pub fn first_byte_timeout(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }
}

/// `s` as a header value apps can read as text: unless it is all printable ASCII, the bytes
/// outside it (and `%`) are percent-encoded.
fn header_label(s: &str) -> http::HeaderValue {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && let Ok(v) = http::HeaderValue::from_str(s)
    {
        return v;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    http::HeaderValue::from_str(&out).unwrap_or(http::HeaderValue::from_static("unknown"))
}

/// The candidates of one request in the order they are tried (wrapping around), and how
/// many extra attempts it may make. Cheap to clone: the list is the snapshot's, only the
/// starting point is per request.
#[derive(Debug, Clone)]
pub struct Targets {
    list: Arc<[Target]>,
    start: usize,
    retries: u32,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            list: Arc::from([]),
            start: 0,
            retries: DEFAULT_RETRIES,
        }
    }
}

impl Targets {
    /// `list` tried from its first element, with `retries` extra attempts.
    pub fn new(list: Arc<[Target]>, retries: u32) -> Self {
        Self {
            list,
            start: 0,
            retries,
        }
    }

    /// Number of distinct candidates.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The `i`-th candidate in trial order, wrapping around; `None` only when empty.
    pub fn get(&self, i: usize) -> Option<&Target> {
        match self.list.len() {
            0 => None,
            n => self.list.get((self.start + i % n) % n),
        }
    }

    /// The first candidate.
    pub fn first(&self) -> Option<&Target> {
        self.get(0)
    }

    /// Every candidate once, in trial order.
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        (0..self.list.len()).filter_map(|i| self.get(i))
    }

    /// Extra attempts allowed after the first (across all candidates).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Only the candidates at the first one's endpoint origin (a provider key goes to one
    /// host). Allocates: only for passthrough routes spanning several origins.
    fn same_origin_as_first(&self) -> Targets {
        let Some(first) = self.first() else {
            return self.clone();
        };
        let kept: Vec<Target> = self
            .iter()
            .filter(|t| same_origin(first, t))
            .cloned()
            .collect();
        Targets::new(kept.into(), self.retries)
    }
}

#[derive(Debug)]
struct Route {
    strategy: Strategy,
    retries: u32,
    managed: RouteTargets,
    passthrough: RouteTargets,
}

/// A route's candidates of one credential mode.
#[derive(Debug)]
struct RouteTargets {
    /// Route target by route target, in route order (`direct`: the first target's only).
    list: Arc<[Target]>,
    /// Each route target with candidates here: (offset in `list`, weight ≥ 1).
    groups: Vec<(usize, u64)>,
    total_weight: u64,
    /// Whether all of `list` shares one endpoint origin.
    one_origin: bool,
}

impl RouteTargets {
    fn new(groups: &[(Vec<Target>, u32)], passthrough: bool) -> Self {
        let mut list = Vec::new();
        let mut offsets = Vec::new();
        for (candidates, weight) in groups {
            let start = list.len();
            list.extend(
                candidates
                    .iter()
                    .filter(|t| t.connection.passthrough == passthrough)
                    .cloned(),
            );
            if list.len() > start {
                offsets.push((start, u64::from((*weight).max(1))));
            }
        }
        let one_origin = list.windows(2).all(|w| same_origin(&w[0], &w[1]));
        Self {
            list: list.into(),
            total_weight: offsets.iter().map(|(_, w)| w).sum(),
            groups: offsets,
            one_origin,
        }
    }

    /// The offset of the route target that `ticket` picks by weight.
    fn pick(&self, ticket: usize) -> usize {
        let mut ticket = (ticket as u64) % self.total_weight.max(1);
        for (offset, weight) in &self.groups {
            if ticket < *weight {
                return *offset;
            }
            ticket -= weight;
        }
        0
    }
}

/// The connections exposing one bare model name, in connection id order.
#[derive(Debug)]
struct Bare {
    managed: Arc<[Target]>,
    passthrough: Arc<[Target]>,
    /// Whether all passthrough targets share one endpoint origin.
    passthrough_one_origin: bool,
}

impl Bare {
    fn all(&self) -> impl Iterator<Item = &Target> {
        self.managed.iter().chain(self.passthrough.iter())
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
    qualified: FastMap<String, Arc<[Target]>>,
    /// `<model>` → every connection exposing it, by credential mode.
    bare: FastMap<String, Bare>,
    /// Route aliases.
    routes: FastMap<String, Route>,
    /// Spreads bare names and weighted routes across their targets.
    next: AtomicUsize,
}

impl ModelIndex {
    /// Indexes the models `connections` expose and the repository's `routes`. Returns the
    /// problems found (a route target nothing exposes), which leave the rest usable.
    pub fn build(connections: &[Arc<Connection>], routes: &[RouteDef]) -> (Self, Vec<String>) {
        let mut qualified: FastMap<String, Arc<[Target]>> = FastMap::default();
        let mut bare: HashMap<String, (Vec<Target>, Vec<Target>)> = HashMap::new();
        for conn in connections {
            for model in &conn.models {
                let name = format!("{}/{}", conn.routing_id, model);
                let target = Target::new(conn.clone(), model, &name);
                let (managed, passthrough) = bare.entry(model.clone()).or_default();
                if conn.passthrough {
                    passthrough.push(target.clone());
                } else {
                    managed.push(target.clone());
                }
                qualified.entry(name).or_insert_with(|| Arc::from([target]));
            }
        }
        let bare = bare
            .into_iter()
            .map(|(name, (managed, passthrough))| {
                let passthrough_one_origin =
                    passthrough.windows(2).all(|w| same_origin(&w[0], &w[1]));
                (
                    name,
                    Bare {
                        managed: managed.into(),
                        passthrough: passthrough.into(),
                        passthrough_one_origin,
                    },
                )
            })
            .collect();
        let mut index = ModelIndex {
            qualified,
            bare,
            ..Default::default()
        };
        let mut problems = Vec::new();
        for def in routes {
            let mut groups = Vec::new();
            for t in &def.targets {
                match index.lookup_model(&t.target) {
                    Some(mut candidates) => {
                        let timeout = (t.timeout_ms > 0)
                            .then(|| Duration::from_millis(u64::from(t.timeout_ms)));
                        for c in &mut candidates {
                            c.timeout = timeout;
                        }
                        groups.push((candidates, t.weight));
                    }
                    // A connection of this data plane that lacks the model is a problem; one
                    // that is not here at all serves other environments: nothing to say.
                    None if connections.iter().any(|c| {
                        t.target
                            .strip_prefix(c.routing_id.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                    }) =>
                    {
                        problems.push(format!(
                            "route {:?}: target {:?} is not exposed by any attached connection",
                            def.name, t.target
                        ))
                    }
                    None => {}
                }
            }
            if def.strategy == Strategy::Direct {
                groups.truncate(1);
            }
            if !groups.is_empty() {
                index.routes.insert(
                    def.name.clone(),
                    Route {
                        strategy: def.strategy,
                        retries: def.retries.unwrap_or(DEFAULT_RETRIES),
                        managed: RouteTargets::new(&groups, false),
                        passthrough: RouteTargets::new(&groups, true),
                    },
                );
            }
        }
        (index, problems)
    }

    fn lookup_model(&self, name: &str) -> Option<Vec<Target>> {
        // Qualified first: a bare model name may itself contain a slash ("meta-llama/x").
        if let Some(t) = self.qualified.get(name) {
            return Some(t.to_vec());
        }
        self.bare.get(name).map(|b| b.all().cloned().collect())
    }

    /// The candidates for `model`, in the order they are tried, with the retry budget.
    /// `passthrough`: the request carries its own provider key. An experiment route assigns
    /// everyone the same target (see [`ModelIndex::resolve_for`]).
    pub fn resolve(&self, model: &str, passthrough: bool) -> Result<Targets, Unroutable> {
        self.resolve_for(model, passthrough, String::new)
    }

    /// [`ModelIndex::resolve`] for one sender: an experiment route starts at the target
    /// that `unit` (who sends the request; asked only for experiment routes) is assigned,
    /// by weight, from a hash of the route name and the unit: the same target on every
    /// request, data plane and restart, for as long as the route's targets and weights stay.
    pub fn resolve_for(
        &self,
        model: &str,
        passthrough: bool,
        unit: impl FnOnce() -> String,
    ) -> Result<Targets, Unroutable> {
        if let Some(route) = self.routes.get(model) {
            return self.resolve_route(model, route, passthrough, unit);
        }
        if let Some(t) = self.qualified.get(model) {
            return Ok(Targets::new(t.clone(), DEFAULT_RETRIES));
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
        Ok(Targets {
            list: candidates.clone(),
            start: self.spread(candidates.len()),
            retries: DEFAULT_RETRIES,
        })
    }

    /// A starting point in `0..len`, taking turns.
    fn spread(&self, len: usize) -> usize {
        if len <= 1 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % len
        }
    }

    fn resolve_route(
        &self,
        name: &str,
        route: &Route,
        passthrough: bool,
        unit: impl FnOnce() -> String,
    ) -> Result<Targets, Unroutable> {
        let candidates = if passthrough {
            &route.passthrough
        } else {
            &route.managed
        };
        if candidates.list.is_empty() {
            return Err(Unroutable::Ambiguous {
                reason: if passthrough {
                    "is a route without passthrough targets (requests with a provider key use only those): send it without a provider key"
                } else {
                    "is a route with only passthrough targets: send the provider key as `Authorization` and the gateway key as `X-Tollgate-Key`"
                },
                choices: Vec::new(),
            });
        }
        let start = match route.strategy {
            Strategy::Direct => self.spread(candidates.list.len()),
            Strategy::Fallback => 0,
            Strategy::Weighted => candidates.pick(self.next.fetch_add(1, Ordering::Relaxed)),
            Strategy::Experiment => candidates.pick(arm_ticket(name, &unit())),
        };
        let targets = Targets {
            list: candidates.list.clone(),
            start,
            retries: route.retries,
        };
        if passthrough && !candidates.one_origin {
            return Ok(targets.same_origin_as_first());
        }
        Ok(targets)
    }

    /// Every routable name with the owner shown in `/v1/models`, sorted.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .qualified
            .iter()
            .filter_map(|(n, t)| Some((n.clone(), t.first()?.connection.routing_id.clone())))
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

/// A ticket for [`RouteTargets::pick`] that depends only on the route and the unit: the
/// first 8 bytes of SHA-256(route name, 0, unit), stable across processes and versions.
fn arm_ticket(route: &str, unit: &str) -> usize {
    let digest = Sha256::new()
        .chain_update(route.as_bytes())
        .chain_update([0])
        .chain_update(unit.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Truncated on 32-bit targets: still stable there, and `pick` reduces it anyway.
    u64::from_be_bytes(first) as usize
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
                    .map(|t| &*t.connection.id)
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

    fn route(
        name: &str,
        strategy: i32,
        targets: &[(&str, u32, u32)],
        retries: Option<u32>,
    ) -> pb::Route {
        pb::Route {
            name: name.into(),
            strategy,
            targets: targets
                .iter()
                .map(|(t, weight, timeout_ms)| pb::RouteTarget {
                    target: t.to_string(),
                    weight: *weight,
                    timeout_ms: *timeout_ms,
                })
                .collect(),
            retries,
        }
    }

    /// `label[:timeout ms]` of each candidate in trial order, then `r<retries>`.
    fn plan(snap: &Snapshot, model: &str, passthrough: bool) -> String {
        let ts = snap
            .repository("r")
            .expect("repo")
            .models
            .resolve(model, passthrough)
            .expect("routable");
        let mut out: Vec<String> = ts
            .iter()
            .map(|t| {
                let label = t.label.to_str().expect("ascii");
                match t.timeout {
                    Some(d) => format!("{label}:{}", d.as_millis()),
                    None => label.to_owned(),
                }
            })
            .collect();
        out.push(format!("r{}", ts.retries()));
        out.join(" ")
    }

    #[test]
    fn routes_carry_order_retries_and_timeouts() {
        let snap = snapshot(vec![
            conn("a", 1, "a", &["m", "modèle"], "https://a.example/v1"),
            conn("b", 1, "b", &["m"], "https://b.example/v1"),
            conn("c", 1, "c", &["m"], "https://c.example/v1"),
            passthrough(conn("p1", 1, "p1", &["m"], "https://one.example/v1")),
            passthrough(conn("p2", 1, "p2", &["m"], "https://two.example/v1")),
            repo(
                "r",
                &["a", "b", "c", "p1", "p2"],
                vec![
                    route("direct", 1, &[("b/m", 1, 250), ("c/m", 1, 0)], None),
                    route(
                        "fallback",
                        3,
                        &[("c/m", 1, 0), ("a/m", 1, 1500), ("p1/m", 1, 0)],
                        Some(0),
                    ),
                    route("weighted", 2, &[("a/m", 3, 0), ("b/m", 1, 0)], Some(5)),
                    route("byok", 3, &[("p2/m", 1, 0), ("p1/m", 1, 0)], None),
                ],
            ),
        ]);
        // Names without a route: the default budget, no timeout.
        assert_eq!(plan(&snap, "a/m", false), "a/m r2");
        assert_eq!(plan(&snap, "b/m", true), "b/m r2");
        // A label a header cannot hold is percent-encoded.
        assert_eq!(plan(&snap, "a/modèle", false), "a/mod%C3%A8le r2");
        // Direct: only the first target; its timeout is the route's, not the connection's.
        assert_eq!(plan(&snap, "direct", false), "b/m:250 r2");
        // Fallback: route order, within the request's credential mode; explicit 0 retries.
        assert_eq!(plan(&snap, "fallback", false), "c/m a/m:1500 r0");
        assert_eq!(plan(&snap, "fallback", true), "p1/m r0");
        // Weighted: 3 to 1, the picked target first, then the next ones wrapping around.
        let picks: Vec<String> = (0..8).map(|_| plan(&snap, "weighted", false)).collect();
        let a_first = picks.iter().filter(|p| *p == "a/m b/m r5").count();
        let b_first = picks.iter().filter(|p| *p == "b/m a/m r5").count();
        assert_eq!((a_first, b_first), (6, 2), "{picks:?}");
        // A provider key goes to one origin only: the first target's.
        assert_eq!(plan(&snap, "byok", true), "p2/m r2");
    }

    #[test]
    fn experiments_keep_each_unit_on_one_arm_by_weight() {
        let snap = snapshot(vec![
            conn("a", 1, "a", &["m"], "https://a.example/v1"),
            conn("b", 1, "b", &["m"], "https://b.example/v1"),
            repo(
                "r",
                &["a", "b"],
                vec![
                    route("ab", 4, &[("a/m", 3, 0), ("b/m", 1, 0)], None),
                    route("ab2", 4, &[("a/m", 1, 0), ("b/m", 1, 0)], None),
                ],
            ),
        ]);
        let models = &snap.repository("r").expect("repo").models;
        let arm = |route: &str, unit: &str| {
            let ts = models
                .resolve_for(route, false, || unit.to_owned())
                .expect("routable");
            ts.iter()
                .map(|t| t.connection.id.to_string())
                .collect::<Vec<_>>()
        };
        // The same unit always gets the same arm, the other arm as its fallback.
        for unit in ["user:alice", "user:bob", "key:k1"] {
            let first = arm("ab", unit);
            assert_eq!(first.len(), 2);
            assert_ne!(first[0], first[1]);
            assert!((0..20).all(|_| arm("ab", unit) == first), "{unit}");
        }
        // Units spread by weight: 3 to 1 over many units (binomial, 4 standard deviations).
        let on_a = |route: &str| {
            (0..4000)
                .filter(|i| arm(route, &format!("user:{i}"))[0] == "a")
                .count()
        };
        let a = on_a("ab");
        assert!((2890..=3110).contains(&a), "{a} of 4000 on a");
        // Another route splits the same units by its own weights.
        let a2 = on_a("ab2");
        assert!((1870..=2130).contains(&a2), "{a2} of 4000 on a");
        // The assignment is SHA-256 of route and unit: the same in every process and version
        // (this value is Python's `hashlib.sha256(b"ab\0user:alice")`, first 8 bytes).
        assert_eq!(
            super::arm_ticket("ab", "user:alice"),
            6_975_207_441_612_942_429
        );
    }
}

//! `Authenticate`: loads the current snapshot once per request (a lock-free `ArcSwap` load;
//! 503 before the first), then finds the gateway key (Bearer, or `X-Tollgate-Key` when the
//! app also sends a provider key for passthrough connections) → SHA-256 → its key entry.
//! The `Caller` it hands on holds the key and repository of that one snapshot, so every
//! later layer sees the same config version.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::{Caller, HttpResponse};
use crate::error::ProxyError;
use crate::secret::Secret;
use crate::snapshot::{Snapshot, SnapshotCell};

/// Header carrying the gateway key when `Authorization` carries the provider key.
pub const GATEWAY_KEY_HEADER: &str = "x-tollgate-key";

/// Finds the caller of a request in `snapshot`, at time `now` (unix seconds).
pub fn authenticate(
    snapshot: &Snapshot,
    headers: &http::HeaderMap,
    now: i64,
) -> Result<Caller, ProxyError> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| bearer_token(v.as_bytes()));
    let (gateway_key, provider_key) = match headers.get(GATEWAY_KEY_HEADER) {
        Some(v) => (Some(v.as_bytes().trim_ascii()), bearer),
        None => (bearer, None),
    };
    let gateway_key = gateway_key
        .filter(|k| !k.is_empty())
        .ok_or(ProxyError::MissingKey)?;
    let hash: [u8; 32] = Sha256::digest(gateway_key).into();
    let entry = snapshot.key(&hash).ok_or(ProxyError::InvalidKey)?;
    // The map lookup found it by hash; compare in constant time anyway so this check never
    // depends on a data-dependent shortcut.
    if !hashes_equal(&entry.hash, &hash) {
        return Err(ProxyError::InvalidKey);
    }
    if entry.expires_at.is_some_and(|t| t <= now) {
        return Err(ProxyError::InvalidKey);
    }
    let provider_key = provider_key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .map(|k| Secret::new(k.to_owned()));
    Ok(Caller {
        key: entry.clone(),
        repository: snapshot.repository(&entry.repository_id).cloned(),
        provider_key,
    })
}

/// Constant-time equality of two SHA-256 digests, compared as four words (`subtle`'s slice
/// comparison goes byte by byte behind an optimization barrier: 8x the instructions).
fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let word = |h: &[u8; 32], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    let equal = (0..4).fold(subtle::Choice::from(1), |acc, i| {
        acc & word(a, i).ct_eq(&word(b, i))
    });
    bool::from(equal)
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let prefix = value.get(..7)?;
    prefix
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..).unwrap_or_default().trim_ascii())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Layer of [`AuthenticateService`].
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    cell: Arc<SnapshotCell>,
}

impl AuthenticateLayer {
    /// Reads snapshots from `cell`.
    pub fn new(cell: Arc<SnapshotCell>) -> Self {
        Self { cell }
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = AuthenticateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthenticateService {
            inner,
            cell: self.cell.clone(),
        }
    }
}

/// See [`AuthenticateLayer`].
#[derive(Debug, Clone)]
pub struct AuthenticateService<S> {
    inner: S,
    cell: Arc<SnapshotCell>,
}

impl<S, B> Service<http::Request<B>> for AuthenticateService<S>
where
    S: Service<http::Request<B>, Response = HttpResponse, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = super::PassOn<S, http::Request<B>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // A guard, not a clone of the `Arc`: every worker would count references to the one
        // snapshot on the same cache line. The caller keeps what it needs.
        let caller = match &*self.cell.load() {
            Some(s) => authenticate(s, req.headers(), unix_now()),
            None => Err(ProxyError::NoSnapshot),
        };
        match caller {
            Err(e) => super::refuse(e),
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                super::pass_on(&self.inner, req)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ResourceSet, build_snapshot};
    use tollgate_proto::sync as pb;

    #[test]
    fn digest_comparison() {
        let a = hash("tg_a");
        assert!(hashes_equal(&a, &a.clone()));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!hashes_equal(&a, &b), "byte {i}");
        }
    }

    fn hash(k: &str) -> [u8; 32] {
        Sha256::digest(k.as_bytes()).into()
    }

    fn snapshot() -> Snapshot {
        use crate::snapshot::build::tests::key;
        let mut set = ResourceSet::default();
        set.apply(pb::ConfigUpdate {
            version: 1,
            full: true,
            upserts: vec![
                key("good", "r1", hash("tg_good"), 0),
                key("old", "r1", hash("tg_old"), 1_000),
                key("later", "r1", hash("tg_later"), 5_000),
            ],
            removals: vec![],
        });
        build_snapshot(&set).0
    }

    /// `expected`: the key id and whether a provider key was taken, or the status.
    fn check(headers: &[(&str, &[u8])], expected: &str) {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_bytes(v).expect("value"),
            );
        }
        let got = match authenticate(&snapshot(), &map, 2_000) {
            Ok(c) => format!("{} provider_key={}", c.key.id, c.provider_key.is_some()),
            Err(e) => e.status().as_u16().to_string(),
        };
        assert_eq!(got, expected, "{headers:?}");
    }

    #[test]
    fn auth_cases() {
        check(
            &[("authorization", b"Bearer tg_good")],
            "good provider_key=false",
        );
        check(
            &[("authorization", b"bearer  tg_good ")],
            "good provider_key=false",
        );
        check(
            &[("authorization", b"Bearer tg_later")],
            "later provider_key=false",
        );
        check(&[], "401");
        check(&[("authorization", b"Bearer ")], "401");
        check(&[("authorization", b"Basic dGc6Z29vZA==")], "401");
        check(&[("authorization", b"Bearer tg_wrong")], "401");
        check(&[("authorization", b"Bearer tg_old")], "401"); // expired
        check(&[("authorization", b"Bearer \xfftg")], "401");
        check(
            &[
                ("x-tollgate-key", b"tg_good"),
                ("authorization", b"Bearer sk-provider"),
            ],
            "good provider_key=true",
        );
        check(&[("x-tollgate-key", b"tg_good")], "good provider_key=false");
        check(
            &[
                ("x-tollgate-key", b"tg_wrong"),
                ("authorization", b"Bearer tg_good"),
            ],
            "401",
        );
    }
}

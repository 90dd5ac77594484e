//! The sync token: data planes present `authorization: Bearer <token>` on every sync call.
//!
//! On a plaintext sync port (`dev`, `--sync-insecure` on loopback) it is the only proof of
//! who is calling, so it is required there: without it any local user could subscribe and
//! read the decrypted provider secrets. With mTLS it is optional, and checked when set.
//! The token is compared as SHA-256 digests in constant time, and never logged.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate_data_plane::secret::Secret;
use tollgate_data_plane::sync::token;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::SyncTransport;

/// Why a data plane without the right token is refused, with what to do.
const MISSING: &str = "this control plane requires a sync token: start the data plane with \
    --sync-token-file FILE (or TOLLGATE_SYNC_TOKEN) holding the control plane's token (its \
    --sync-token-file; `tollgate-control-plane dev` keeps it in <data dir>/sync-token)";
const WRONG: &str = "the sync token does not match the control plane's: give the data plane \
    the token of the control plane's --sync-token-file (`tollgate-control-plane dev` keeps it \
    in <data dir>/sync-token)";

/// Checks the sync token of each call; without a configured token every call passes (mTLS
/// then decides alone).
#[derive(Clone, Default)]
pub struct TokenCheck {
    /// SHA-256 of the token: comparing digests takes the same time whatever the length of
    /// what a caller sends.
    expected: Option<[u8; 32]>,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("enabled", &self.expected.is_some())
            .finish()
    }
}

impl TokenCheck {
    /// No token check (mTLS only, or in-process tests).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Requires `token` on every call.
    pub fn new(token: &Secret) -> Self {
        Self {
            expected: Some(Sha256::digest(token.expose().as_bytes()).into()),
        }
    }

    /// Whether calls must carry a token.
    pub fn is_enabled(&self) -> bool {
        self.expected.is_some()
    }

    /// The check for `transport`: the token of `file` or `env_value` (TOLLGATE_SYNC_TOKEN),
    /// REQUIRED when the transport is plaintext.
    pub fn from_flags(
        transport: &SyncTransport,
        file: Option<&Path>,
        env_value: Option<String>,
    ) -> anyhow::Result<Self> {
        let token = token::load(file, env_value).map_err(anyhow::Error::msg)?;
        match (token, transport) {
            (Some(t), _) => Ok(Self::new(&t)),
            (None, SyncTransport::Tls { .. }) => Ok(Self::disabled()),
            (None, SyncTransport::Insecure) => anyhow::bail!(
                "the plaintext sync API (--sync-insecure) needs a sync token, or any local user \
                 could read the provider secrets it sends: pass --sync-token-file FILE (a \
                 random token of at least {} characters, e.g. `openssl rand -hex 32`, in a \
                 file of mode 0600) or set TOLLGATE_SYNC_TOKEN, and give data planes the same",
                token::MIN_TOKEN_LEN
            ),
        }
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(req);
        };
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        match presented {
            None => {
                tracing::warn!(%peer, "sync call without a sync token refused");
                Err(Status::unauthenticated(MISSING))
            }
            Some(t) => {
                let digest: [u8; 32] = Sha256::digest(t.as_bytes()).into();
                if bool::from(digest.ct_eq(expected)) {
                    Ok(req)
                } else {
                    tracing::warn!(%peer, "sync call with a wrong sync token refused");
                    Err(Status::unauthenticated(WRONG))
                }
            }
        }
    }
}

/// The token of an `authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tgsync_0123456789abcdefghij";

    fn call(check: &mut TokenCheck, authorization: Option<&str>) -> Result<(), Status> {
        let mut req = Request::new(());
        if let Some(v) = authorization {
            req.metadata_mut()
                .insert("authorization", v.parse().expect("ascii"));
        }
        check.call(req).map(drop)
    }

    #[test]
    fn only_the_right_token_passes() {
        let mut check = TokenCheck::new(&Secret::new(TOKEN.into()));
        assert!(check.is_enabled());
        assert!(call(&mut check, Some(&format!("Bearer {TOKEN}"))).is_ok());
        assert!(call(&mut check, Some(&format!("bearer  {TOKEN} "))).is_ok());
        for (header, why) in [
            (None, "requires a sync token"),
            (Some("Bearer "), "requires a sync token"),
            (Some(TOKEN), "requires a sync token"),
            (Some("Basic dXNlcjpwYXNz"), "requires a sync token"),
            (Some("Bearer tgsync_0123456789abcdefghiJ"), "does not match"),
            (Some("Bearer x"), "does not match"),
        ] {
            let status = call(&mut check, header).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
            assert!(status.message().contains(why), "{header:?}: {status:?}");
            assert!(!status.message().contains(TOKEN));
            assert!(status.message().contains("--sync-token-file"));
        }
        assert!(!format!("{check:?}").contains(TOKEN));
        // Without a token (mTLS only) everything passes.
        assert!(call(&mut TokenCheck::disabled(), None).is_ok());
    }

    #[test]
    fn plaintext_needs_a_token_tls_does_not() {
        let tls = SyncTransport::Tls {
            cert: "c".into(),
            key: "k".into(),
            client_ca: "ca".into(),
        };
        let err = TokenCheck::from_flags(&SyncTransport::Insecure, None, None).expect_err("none");
        let err = format!("{err:#}");
        assert!(
            err.contains("--sync-insecure") && err.contains("--sync-token-file"),
            "{err}"
        );
        assert!(
            !TokenCheck::from_flags(&tls, None, None)
                .expect("tls")
                .is_enabled()
        );
        for transport in [&tls, &SyncTransport::Insecure] {
            let check = TokenCheck::from_flags(transport, None, Some(TOKEN.into())).expect("ok");
            assert!(check.is_enabled());
        }
        let short = TokenCheck::from_flags(&SyncTransport::Insecure, None, Some("short".into()))
            .expect_err("short");
        assert!(format!("{short:#}").contains("16 to 4096"), "{short:#}");
    }
}

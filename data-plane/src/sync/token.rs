//! The sync token: a shared secret that data planes present on the sync API
//! (`authorization: Bearer <token>`). It is required when the sync port is plaintext (dev,
//! `--sync-insecure` on loopback), where nothing else proves who is calling, and an extra
//! check next to mTLS when configured there.
//!
//! Both planes read it the same way (this module): `--sync-token-file FILE`, or the value in
//! `TOLLGATE_SYNC_TOKEN`; never a command-line value, which other local users could read.

use std::path::Path;

use crate::secret::Secret;

/// Environment variable holding the token itself.
pub const SYNC_TOKEN_ENV: &str = "TOLLGATE_SYNC_TOKEN";

/// Fewest characters of a token.
pub const MIN_TOKEN_LEN: usize = 16;
/// Most characters of a token.
const MAX_TOKEN_LEN: usize = 4096;

/// The token from `file`, else from the value of [`SYNC_TOKEN_ENV`] (`env_value`); `None`
/// when neither is set. Errors say what to fix and never contain the token.
pub fn load(file: Option<&Path>, env_value: Option<String>) -> Result<Option<Secret>, String> {
    let env_value = env_value
        .map(Secret::new)
        .filter(|v| !v.expose().trim().is_empty());
    match (file, env_value) {
        (Some(_), Some(_)) => Err(format!(
            "both --sync-token-file and {SYNC_TOKEN_ENV} are set; use only one"
        )),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map(Secret::new)
                .map_err(|e| format!("--sync-token-file {}: {e}", path.display()))?;
            parse(&text, &format!("--sync-token-file {}", path.display())).map(Some)
        }
        (None, Some(value)) => parse(&value, SYNC_TOKEN_ENV).map(Some),
        (None, None) => Ok(None),
    }
}

/// The token from the environment variable (for [`load`]).
pub fn from_env() -> Option<String> {
    std::env::var(SYNC_TOKEN_ENV).ok()
}

/// A token from its text (surrounding whitespace and a final newline are dropped): at least
/// [`MIN_TOKEN_LEN`] visible ASCII characters, so it fits in a header as is.
pub fn parse(text: &Secret, source: &str) -> Result<Secret, String> {
    let token = text.expose().trim();
    let len = token.chars().count();
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
        return Err(format!(
            "the sync token in {source} must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters \
             long (it has {len}); e.g. `openssl rand -hex 32`"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the sync token in {source} must be visible ASCII characters only (no spaces or \
             control characters)"
        ));
    }
    Ok(Secret::new(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "tgsync-0123456789abcdef";

    #[test]
    fn from_file_or_env_never_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{GOOD}\n")).expect("write");
        let got = load(Some(&file), None).expect("file").expect("some");
        assert_eq!(got.expose(), GOOD);
        let got = load(None, Some(format!("  {GOOD} ")))
            .expect("env")
            .expect("some");
        assert_eq!(got.expose(), GOOD);
        assert!(load(None, None).expect("none").is_none());
        assert!(load(None, Some("  ".into())).expect("blank").is_none());
        let both = load(Some(&file), Some(GOOD.into())).expect_err("both");
        assert!(both.contains("use only one"), "{both}");
        let missing = load(Some(&dir.path().join("nope")), None).expect_err("missing");
        assert!(missing.contains("--sync-token-file"), "{missing}");
    }

    #[test]
    fn bad_tokens_are_refused_without_being_shown() {
        for (bad, why) in [
            ("short-token", "16 to 4096 characters"),
            ("has a space in the middle", "visible ASCII"),
            ("tab\tinside-0123456789", "visible ASCII"),
            ("naïve-0123456789abcdef", "visible ASCII"),
        ] {
            let e = parse(&Secret::new(bad.into()), SYNC_TOKEN_ENV).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains(bad), "the token is echoed: {e}");
        }
    }
}

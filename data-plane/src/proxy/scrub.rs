//! Removing credentials from provider text before it reaches the app: a provider that echoes
//! the key it was sent must not turn the gateway into a way to read the stored secret.

use bytes::{Bytes, BytesMut};

use crate::secret::Secret;

/// Credentials shorter than this are not scrubbed (they would match ordinary text).
const MIN_SCRUBBED_LEN: usize = 4;
const REDACTED: &[u8] = b"[redacted]";

/// `body` with every exact occurrence of each secret replaced by `[redacted]`; the same
/// buffer when none occurs.
pub fn scrub(body: Bytes, secrets: &[Option<&Secret>]) -> Bytes {
    let mut body = body;
    for secret in secrets.iter().flatten() {
        let needle = secret.expose().as_bytes();
        if needle.len() < MIN_SCRUBBED_LEN || find(&body, needle).is_none() {
            continue;
        }
        let mut out = BytesMut::with_capacity(body.len());
        let mut rest = &body[..];
        while let Some(at) = find(rest, needle) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(REDACTED);
            rest = &rest[at + needle.len()..];
        }
        out.extend_from_slice(rest);
        body = out.freeze();
    }
    body
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, secrets: &[&str], expected: &str) {
        let owned: Vec<Secret> = secrets.iter().map(|s| Secret::new(s.to_string())).collect();
        let refs: Vec<Option<&Secret>> = owned.iter().map(Some).chain([None]).collect();
        let got = scrub(Bytes::from(body.to_owned()), &refs);
        assert_eq!(String::from_utf8_lossy(&got), expected, "{body:?}");
    }

    #[test]
    fn scrub_cases() {
        check("no secret here", &["sk-abc"], "no secret here");
        check(
            r#"{"error":{"message":"Incorrect API key provided: sk-abc"}}"#,
            &["sk-abc"],
            r#"{"error":{"message":"Incorrect API key provided: [redacted]"}}"#,
        );
        check(
            "sk-abcsk-abc x sk-abc",
            &["sk-abc"],
            "[redacted][redacted] x [redacted]",
        );
        check(
            "org-1 and sk-x1",
            &["sk-x1", "org-1"],
            "[redacted] and [redacted]",
        );
        check("abc", &["ab", ""], "abc");
        check("", &["sk-abc"], "");
    }
}

//! Removing credentials from provider text before it reaches the app: a provider that echoes
//! the key it was sent must not turn the gateway into a way to read the stored secret.
//!
//! Each secret is looked for as sent, JSON-escaped (`/` as `\/`) and base64-encoded, in
//! any ASCII case, and also when only its start is echoed: a run of [`PREFIX_RUN`] or more
//! of its first bytes ("Incorrect API key provided: sk-proj-abcdefghij…") gives most of it
//! away.

use base64::Engine;
use bytes::{Bytes, BytesMut};

use crate::secret::Secret;

/// Credentials shorter than this are not scrubbed (they would match ordinary text).
const MIN_SCRUBBED_LEN: usize = 4;
/// The shortest start of a secret redacted on its own (a shorter secret: only whole).
const PREFIX_RUN: usize = 12;
const REDACTED: &[u8] = b"[redacted]";

/// `body` with each secret, in each of its forms, replaced by `[redacted]`; the same buffer
/// when none occurs.
pub fn scrub(body: Bytes, secrets: &[Option<&Secret>]) -> Bytes {
    let mut body = body;
    // The body with ASCII letters lower-cased, folded again only after a redaction.
    let mut folded = body.to_ascii_lowercase();
    for secret in secrets.iter().flatten() {
        let plain = secret.expose();
        if plain.len() < MIN_SCRUBBED_LEN {
            continue;
        }
        // The escaped form first: the plain form's start is also its start.
        if plain.contains('/') {
            body = redact(body, &mut folded, plain.replace('/', "\\/").as_bytes());
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
        body = redact(body, &mut folded, encoded.as_bytes());
        body = redact(body, &mut folded, plain.as_bytes());
    }
    body
}

/// `body` with every run of `secret`'s bytes that starts where `secret` starts and is at
/// least [`PREFIX_RUN`] long (the whole of a shorter secret) redacted. ASCII letters match
/// in either case: a provider that echoes a key upper- or lower-cased still gives it away.
/// `folded` is `body` lower-cased, and is kept so.
fn redact(body: Bytes, folded: &mut Vec<u8>, secret: &[u8]) -> Bytes {
    let secret = secret.to_ascii_lowercase();
    let head = &secret[..secret.len().min(PREFIX_RUN)];
    if memchr::memmem::find(folded, head).is_none() {
        return body;
    }
    let mut out = BytesMut::with_capacity(body.len());
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&folded[from..], head).map(|i| from + i) {
        let run = folded[at..]
            .iter()
            .zip(&secret)
            .take_while(|(a, b)| a == b)
            .count();
        out.extend_from_slice(&body[from..at]);
        out.extend_from_slice(REDACTED);
        from = at + run;
    }
    out.extend_from_slice(&body[from..]);
    *folded = out.to_ascii_lowercase();
    out.freeze()
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

    #[test]
    fn echoed_starts_escapes_and_encodings_are_redacted() {
        let key = "sk-proj-0123456789abcdefghijklmnopqrstuv";
        // The start of a long key, cut anywhere past the first 12 bytes.
        check(
            "Incorrect API key provided: sk-proj-0123456789abc****uv.",
            &[key],
            "Incorrect API key provided: [redacted]****uv.",
        );
        // Shorter than that is ordinary text.
        check("prefix sk-proj-01 only", &[key], "prefix sk-proj-01 only");
        // An AWS secret access key with `/`, echoed in JSON with escaped slashes.
        let aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        check(
            r#"{"message":"bad key wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYEXAMPLEKEY"}"#,
            &[aws],
            r#"{"message":"bad key [redacted]"}"#,
        );
        // Echoed in another case.
        check(
            "bad key SK-PROJ-0123456789ABCDEFGHIJKLMNOPQRSTUV",
            &[key],
            "bad key [redacted]",
        );
        // Base64 of the key (as in a Basic header echoed back).
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        check(
            &format!("Authorization: Basic {encoded}"),
            &[key],
            "Authorization: Basic [redacted]",
        );
    }
}

//! Provider credentials in memory: zeroized when dropped, never printed.

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use http::HeaderValue;
use http::header::InvalidHeaderValue;
use zeroize::Zeroizing;

/// A secret string (a provider key). `Debug` and `Display` print `[redacted]`, so a secret
/// can never reach a log line through formatting; the bytes are wiped on drop.
#[derive(Clone, Default)]
pub struct Secret {
    value: Zeroizing<String>,
    /// The header value last built by [`Secret::header`], with its prefix.
    header: OnceLock<(&'static str, HeaderValue)>,
}

impl Secret {
    /// Takes ownership of the string, so no unzeroized copy is left behind by the move.
    pub fn new(value: String) -> Self {
        Self {
            value: Zeroizing::new(value),
            header: OnceLock::new(),
        }
    }

    /// The secret value, to put in an upstream header.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// `prefix` and the secret as a header value, marked sensitive (never indexed by HPACK).
    /// Its bytes live in a zeroizing buffer shared by every clone, wiped when the last is
    /// dropped, so requests leave no copies in freed memory. The value for the first prefix
    /// asked is kept: a connection's credential is built once per snapshot, not per request.
    pub fn header(&self, prefix: &'static str) -> Result<HeaderValue, InvalidHeaderValue> {
        if let Some((p, v)) = self.header.get()
            && *p == prefix
        {
            return Ok(v.clone());
        }
        let mut text = Zeroizing::new(Vec::with_capacity(prefix.len() + self.value.len()));
        text.extend_from_slice(prefix.as_bytes());
        text.extend_from_slice(self.value.as_bytes());
        let mut v = HeaderValue::from_maybe_shared(Bytes::from_owner(text))?;
        v.set_sensitive(true);
        let _ = self.header.set((prefix, v.clone()));
        Ok(v)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("sk-very-secret".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[test]
    fn header_values_are_sensitive_and_kept_per_prefix() {
        let s = Secret::new("sk-1".into());
        let bearer = s.header("Bearer ").expect("valid");
        assert_eq!(bearer, "Bearer sk-1");
        assert!(bearer.is_sensitive());
        assert_eq!(format!("{bearer:?}"), "Sensitive");
        assert_eq!(s.clone().header("Bearer ").expect("valid"), bearer);
        assert_eq!(s.header("").expect("valid"), "sk-1", "another prefix");
        assert!(Secret::new("a\nb".into()).header("").is_err());
    }
}

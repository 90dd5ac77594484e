//! Checks of user input. Each returns `INVALID_ARGUMENT` naming the field and what to fix.

use crate::error::{ApiError, ApiResult};

/// A display name: 1 to 100 characters of letters, digits, spaces and `-_.:()`.
pub fn name(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "a name is required"));
    }
    if v.chars().count() > 100 {
        return Err(ApiError::invalid(
            field,
            "a name has at most 100 characters",
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_alphanumeric() || " -_.:()".contains(*c)))
    {
        return Err(ApiError::invalid(
            field,
            format!(
                "a name may hold letters, digits, spaces and - _ . : ( ); '{}' is not allowed",
                c.escape_default()
            ),
        ));
    }
    Ok(v.to_string())
}

/// A slug: 1 to 63 characters of `a-z0-9-_.`, starting with a letter or digit.
pub fn slug(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "'{v}' is not valid: use 1 to 63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ))
    }
}

/// The slug a name defaults to: lowercase, runs of other characters become one `-`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(63).collect();
    if out.is_empty() {
        "llm".to_string()
    } else {
        out.trim_end_matches('-').to_string()
    }
}

/// Model names: non-empty, at most 200 characters, no whitespace or control characters;
/// duplicates removed, order kept.
pub fn models(field: &str, values: &[String]) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = v.trim();
        if v.is_empty() || v.len() > 200 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::invalid(
                field,
                format!(
                    "model '{}' is not valid: 1 to 200 characters without spaces",
                    v.escape_default()
                ),
            ));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    Ok(out)
}

/// Environment names are slugs; duplicates removed.
pub fn environments(field: &str, values: &[String]) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = slug(field, v)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// A secret or key as sent: no surrounding whitespace, no control characters, ≤ 8 KiB.
pub fn credential(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.len() > 8192 {
        return Err(ApiError::invalid(field, "is longer than 8 KiB"));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "contains control characters (a stray newline in the secret file?)",
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "Production OpenAI",
            "a",
            "prod-openai_gateway.v2",
            "été (eu)",
        ] {
            assert!(name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "a/b", "x\ny", &"n".repeat(101)] {
            assert!(name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        let check = |input: &str, want: &str| assert_eq!(slugify(input), want, "{input}");
        check("Production OpenAI", "production-openai");
        check("  --Weird__Name!! ", "weird-name");
        check("!!!", "llm");
        assert!(slug("routing_id", "openai-prod").is_ok());
        for bad in ["", "-x", "UPPER", "a b", &"a".repeat(64)] {
            assert!(slug("routing_id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_lists() {
        let v = models("models", &["a".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(v, ["a", "b"]);
        assert!(models("models", &["a b".into()]).is_err());
        assert!(models("models", &["".into()]).is_err());
    }

    #[test]
    fn credentials() {
        assert_eq!(credential("secret", " sk-1 \n").unwrap(), "sk-1");
        assert!(credential("secret", "a\u{7}b").is_err());
        assert!(credential("secret", "").is_err());
    }
}

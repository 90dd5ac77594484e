//! Built-in detectors (personal data, credentials) and the text of a request they read.
//!
//! Detectors favour precision: a BLOCK policy that fires on ordinary text refuses legitimate
//! traffic. Each one finds candidates with a regex (compiled once, ASCII-only so the lazy DFA
//! never gives up on non-ASCII text), then checks them the way the format defines them: Luhn
//! for card numbers, ISO 13616 mod-97 and the country's length for IBANs, std's parsers for IP
//! addresses, and that the candidate is not part of a longer word or dotted/dashed number.
//! A [`Finding`] names what was found, never the text that matched.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{LazyLock, OnceLock};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Built-in kinds of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pii {
    Email,
    Phone,
    CreditCard,
    UsSsn,
    Iban,
    IpAddress,
}

impl Pii {
    /// Every kind, in a fixed order.
    pub const ALL: [Pii; 6] = [
        Pii::Email,
        Pii::Phone,
        Pii::CreditCard,
        Pii::UsSsn,
        Pii::Iban,
        Pii::IpAddress,
    ];

    /// Lower-case name used in config and messages.
    pub fn name(self) -> &'static str {
        match self {
            Pii::Email => "email",
            Pii::Phone => "phone",
            Pii::CreditCard => "credit_card",
            Pii::UsSsn => "us_ssn",
            Pii::Iban => "iban",
            Pii::IpAddress => "ip_address",
        }
    }

    /// What it is in a sentence ("an email address").
    pub fn describe(self) -> &'static str {
        match self {
            Pii::Email => "an email address",
            Pii::Phone => "a phone number",
            Pii::CreditCard => "a payment card number",
            Pii::UsSsn => "a US social security number",
            Pii::Iban => "an IBAN",
            Pii::IpAddress => "an IP address",
        }
    }
}

/// What a detector found. Never the matched text (it may be the very secret or personal data
/// the policy protects): only what kind of thing was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The kind of thing, as in a sentence: "an email address", "an AWS access key id".
    pub what: &'static str,
}

/// A candidate regex and the check each candidate `text[start..end]` must pass.
struct Detector {
    kind: Pii,
    regex: Regex,
    check: fn(&str, usize, usize) -> bool,
}

/// An ASCII-only regex: `\b` and classes are ASCII, which keeps the lazy DFA on non-ASCII text.
fn ascii(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in pattern")
}

static PII: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    let d = |kind, pattern, check| Detector {
        kind,
        regex: ascii(pattern),
        check,
    };
    vec![
        // local@domain.tld, each domain label starting and ending with a letter or digit.
        d(
            Pii::Email,
            r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b",
            email,
        ),
        // `+`, a country code, then digit groups, each optionally after one space, dot or dash,
        // or in parentheses; 8 to 15 digits in all (checked in `phone`).
        d(
            Pii::Phone,
            r"\+[1-9][0-9]*(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]+))*",
            phone,
        ),
        // North American: `(415) 555-0132`, `415-555-0132`, `415.555.0132` (`phone` allows a
        // `1 ` before).
        d(
            Pii::Phone,
            r"(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[.-])[2-9][0-9]{2}[.-][0-9]{4}\b",
            phone,
        ),
        // 13-19 digits, or grouped 4-4-4-4 (most brands) or 4-6-5/4-6-4 (Amex, Diners). Issuer
        // numbers start with 2-6, which leaves out millisecond timestamps and zero-padded ids.
        d(
            Pii::CreditCard,
            r"\b(?:[2-6][0-9]{12,18}|[2-6][0-9]{3}(?:[ -][0-9]{4}){3}|[2-6][0-9]{3}[ -][0-9]{6}[ -][0-9]{4,5})\b",
            card,
        ),
        d(Pii::UsSsn, r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", us_ssn),
        // Country, check digits, then the account compact or in groups of four.
        d(
            Pii::Iban,
            r"\b[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)\b",
            iban,
        ),
        d(Pii::IpAddress, r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b", ipv4),
        // A run of hex digits, dots and at least two colons; `Ipv6Addr` decides.
        d(
            Pii::IpAddress,
            r"[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*",
            ipv6,
        ),
    ]
});

/// The detectors of some kinds, and their candidate regexes in one set: one pass over the text
/// tells which detectors have candidates at all (usually none), and only those search again.
/// A set runs one full DFA pass, about what one regex without a prefilter costs (most have one:
/// `@`, `+`, digits), so with one or two detectors they search directly.
struct Gate {
    set: Option<RegexSet>,
    detectors: Vec<&'static Detector>,
}

/// A [`Gate`] per combination of kinds (bit `k as usize` for kind `k`), built on first use.
static GATES: [OnceLock<Gate>; 64] = [const { OnceLock::new() }; 64];

fn gate(kinds: &[Pii]) -> &'static Gate {
    let bit = |k: Pii| 1usize << k as usize;
    let mask = kinds.iter().fold(0, |m, &k| m | bit(k));
    GATES[mask].get_or_init(|| {
        let detectors: Vec<_> = PII.iter().filter(|d| mask & bit(d.kind) != 0).collect();
        let set = (detectors.len() > 2).then(|| {
            RegexSetBuilder::new(detectors.iter().map(|d| d.regex.as_str()))
                .unicode(false)
                .build()
                .expect("built-in patterns")
        });
        Gate { set, detectors }
    })
}

/// The first of `kinds` found in `text` (kinds checked in the order given), if any.
pub fn find_pii(text: &str, kinds: &[Pii]) -> Option<Finding> {
    let gate = gate(kinds);
    let hits = gate.set.as_ref().map(|set| set.matches(text));
    let found = |kind: Pii| {
        let mut detectors = gate.detectors.iter().enumerate();
        detectors.any(|(i, d)| {
            d.kind == kind
                && hits.as_ref().is_none_or(|h| h.matched(i))
                && (d.regex.find_iter(text)).any(|m| (d.check)(text, m.start(), m.end()))
        })
    };
    kinds
        .iter()
        .find(|&&k| found(k))
        .map(|k| Finding { what: k.describe() })
}

/// Whether `text[start..end]` stands alone: no letter, digit or `_` right before or after it,
/// and no `.` or `-` followed by a digit (a longer dotted or dashed number: a version, an id).
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let at = |i: Option<usize>| i.and_then(|i| b.get(i).copied());
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let sep = |c: Option<u8>| matches!(c, Some(b'.' | b'-'));
    let digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    let (before, after) = (at(start.checked_sub(1)), at(Some(end)));
    !(before.is_some_and(word)
        || after.is_some_and(word)
        || sep(before) && digit(at(start.checked_sub(2)))
        || sep(after) && digit(at(Some(end + 1))))
}

fn email(text: &str, _start: usize, end: usize) -> bool {
    // `icon@2x.png`: asset names at several resolutions, not addresses.
    let tld = &text[text[..end].rfind('.').map_or(end, |i| i + 1)..end];
    let files = ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp"];
    !files.iter().any(|f| tld.eq_ignore_ascii_case(f))
}

fn phone(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    if b[start] == b'+' {
        let digits = b[start..end].iter().filter(|c| c.is_ascii_digit()).count();
        return (8..=15).contains(&digits) && standalone(text, start, end);
    }
    // North American, perhaps after the trunk prefix: `1 `, `1-` or `1.`.
    let start = match b.get(start.wrapping_sub(2)..start) {
        Some([b'1', b' ' | b'-' | b'.']) => start - 2,
        _ => start,
    };
    standalone(text, start, end)
}

fn card(text: &str, start: usize, end: usize) -> bool {
    let digits = text[start..end].bytes().filter(u8::is_ascii_digit);
    // Luhn: from the right, double every second digit (subtracting 9 when over 9).
    let sum: u32 = digits
        .rev()
        .map(|c| u32::from(c - b'0'))
        .enumerate()
        .map(|(i, d)| match (i % 2, d * 2) {
            (1, x) if x > 9 => x - 9,
            (1, x) => x,
            _ => d,
        })
        .sum();
    sum.is_multiple_of(10) && standalone(text, start, end)
}

fn us_ssn(text: &str, start: usize, end: usize) -> bool {
    let s = &text.as_bytes()[start..end]; // ddd-dd-dddd
    let (area, group, serial) = (&s[..3], &s[4..6], &s[7..]);
    area != b"000"
        && area != b"666"
        && area[0] != b'9'
        && group != b"00"
        && serial != b"0000"
        && standalone(text, start, end)
}

fn iban(text: &str, start: usize, end: usize) -> bool {
    let chars = || text[start..end].bytes().filter(|&c| c != b' ');
    if Some(chars().count()) != iban_length(&text[start..start + 2]) {
        return false;
    }
    // ISO 13616: move the first four characters to the end, read letters as 10..35, mod 97.
    let rem = chars().skip(4).chain(chars().take(4)).fold(0u32, |r, c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    });
    rem == 1
}

/// IBAN length by country (SWIFT IBAN registry).
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FK" | "FO" | "GL" | "NL" | "SD" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "MN" | "XK" => 20,
        "CH" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "CR" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "OM" | "SO" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "LY" | "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "BI" | "DJ" | "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HN" | "HU" | "LB" | "NI" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" | "YE" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        "RU" => 33,
        _ => return None,
    })
}

fn ipv4(text: &str, start: usize, end: usize) -> bool {
    text[start..end].parse::<Ipv4Addr>().is_ok() && standalone(text, start, end)
}

fn ipv6(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let word = |i: usize| {
        b.get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let addr = text[start..end].trim_end_matches('.'); // a sentence's full stop
    // A digit: `::` alone, `Foo::Bar` or `bad::cafe` are code, not addresses.
    addr.bytes().any(|c| c.is_ascii_digit())
        && !(start > 0 && word(start - 1))
        && !word(end)
        && addr.parse::<Ipv6Addr>().is_ok()
}

/// A kind of credential: its `what`, its regex, and whether a match needs a digit (the classes
/// of some also match hyphenated words and identifiers: `sk-cube-grid-fading-circle`, `xoxo-`).
struct Secret(&'static str, &'static str, bool);

/// Credentials, in the order of the alternation: `sk-ant-` must come before `sk-`.
const SECRETS: [Secret; 10] = [
    Secret(
        "an AWS access key id",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        false,
    ),
    Secret(
        "a private key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        false,
    ),
    Secret(
        "a GitHub token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        false,
    ),
    Secret("an Anthropic API key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", true),
    Secret("an OpenAI API key", r"\bsk-[A-Za-z0-9_-]{20,}", true),
    Secret("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", true),
    Secret("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}", false),
    Secret(
        "a Stripe secret key",
        r"\b[rs]k_live_[A-Za-z0-9]{16,}",
        false,
    ),
    // Header and payload are base64url JSON objects (`{"` encodes as `eyJ`), then a signature.
    Secret(
        "a JSON Web Token",
        r"\beyJ[A-Za-z0-9_-]{7,}\.eyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{10,}",
        false,
    ),
    // `tg_` and 32 or more random bytes in base64url.
    Secret("a Tollgate API key", r"\btg_[A-Za-z0-9_-]{43,}", true),
];

/// All of [`SECRETS`] in one alternation, one capture group each: one pass over the text
/// (its literal prefixes make a fast prefilter); captures are only resolved on a match.
static SECRET_RE: LazyLock<Regex> = LazyLock::new(|| {
    let groups: Vec<String> = SECRETS.iter().map(|s| format!("({})", s.1)).collect();
    ascii(&groups.join("|"))
});

/// The first credential found in `text`, if any.
pub fn find_secret(text: &str) -> Option<Finding> {
    SECRET_RE.captures_iter(text).find_map(|caps| {
        let (Secret(what, _, needs_digit), m) =
            (1..caps.len()).find_map(|i| caps.get(i).map(|m| (&SECRETS[i - 1], m)))?;
        let plausible = !needs_digit || m.as_str().bytes().any(|c| c.is_ascii_digit());
        plausible.then_some(Finding { what })
    })
}

/// User-defined patterns of one policy, compiled once.
#[derive(Debug, Clone)]
pub struct Patterns {
    set: RegexSet,
}

impl Patterns {
    /// Largest compiled size of one policy's patterns.
    pub const SIZE_LIMIT: usize = 1 << 20;

    /// Compiles `patterns` (Rust `regex` syntax) within [`Self::SIZE_LIMIT`]; the error names
    /// the pattern (1-based): "pattern 2: regex parse error: ...". An empty list matches nothing.
    pub fn compile(patterns: &[String]) -> Result<Patterns, String> {
        let set = RegexSetBuilder::new(patterns)
            .size_limit(Self::SIZE_LIMIT)
            .dfa_size_limit(Self::SIZE_LIMIT)
            .build();
        set.map(|set| Patterns { set }).map_err(|err| {
            // The set's error does not say which pattern: compile them one by one to find it.
            patterns
                .iter()
                .enumerate()
                .find_map(|(i, p)| {
                    let one = RegexBuilder::new(p)
                        .size_limit(Self::SIZE_LIMIT)
                        .dfa_size_limit(Self::SIZE_LIMIT)
                        .build();
                    one.err().map(|e| format!("pattern {}: {e}", i + 1))
                })
                .unwrap_or_else(|| format!("patterns together: {err}"))
        })
    }

    /// Index (0-based) of the first pattern that matches `text`, if any.
    pub fn first_match(&self, text: &str) -> Option<usize> {
        self.set.matches(text).iter().next()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// The text an app sends in an OpenAI-format request body, which content detectors read: chat
/// `messages[].content` (a string, or the `{"type":"text"}` parts of an array; image and audio
/// parts are skipped), `messages[].tool_calls[].function.arguments`, the completions `prompt`
/// and the embeddings `input` (a string or an array of strings; token ids are skipped). Pieces
/// are joined by `'\n'`; absent fields, and fields of other shapes, add nothing. A body that is
/// not a JSON object is an error.
pub fn request_text(body: &[u8]) -> Result<String, serde_json::Error> {
    request_text_pieces(body).map(|(text, _)| text)
}

/// [`request_text`], and how many pieces it joined (the separators are not the app's
/// text: `pieces - 1` of its characters are ours).
pub fn request_text_pieces(body: &[u8]) -> Result<(String, usize), serde_json::Error> {
    let mut out = String::new();
    let mut pieces = 0;
    let mut de = serde_json::Deserializer::from_slice(body);
    Extract {
        shape: Shape::Body,
        out: &mut out,
        pieces: &mut pieces,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((out, pieces))
}

/// Where in the body a value sits, which decides what of it is text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Body,
    Messages,
    Message,
    Content,
    Part,
    ToolCalls,
    ToolCall,
    Function,
    /// A string or an array of strings (`prompt`, `input`).
    Strings,
    /// A string.
    Text,
}

/// Appends the text of one value of shape `shape` to `out`, without building the value.
struct Extract<'a> {
    shape: Shape,
    out: &'a mut String,
    pieces: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Extract<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.shape {
            Shape::Body => d.deserialize_map(self),
            _ => d.deserialize_any(self),
        }
    }
}

impl Extract<'_> {
    fn push(self, s: &str) {
        if *self.pieces > 0 {
            self.out.push('\n');
        }
        *self.pieces += 1;
        self.out.push_str(s);
    }
}

impl<'de> Visitor<'de> for Extract<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object") // the body's; other shapes take anything
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if matches!(self.shape, Shape::Content | Shape::Strings | Shape::Text) {
            self.push(v);
        }
        Ok(())
    }
    // Numbers (token ids), booleans and nulls are not text.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let element = match self.shape {
            Shape::Messages => Shape::Message,
            Shape::Content => Shape::Part,
            Shape::ToolCalls => Shape::ToolCall,
            Shape::Strings => Shape::Text,
            _ => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(());
            }
        };
        let (out, pieces) = (self.out, self.pieces);
        while seq
            .next_element_seed(Extract {
                shape: element,
                out: &mut *out,
                pieces: &mut *pieces,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (shape, out, pieces) = (self.shape, self.out, self.pieces);
        let (start, start_pieces) = (out.len(), *pieces);
        let mut text_part = false;
        while let Some(key) = map.next_key::<Key>()? {
            let value = match (shape, key.0) {
                (Shape::Body, "messages") => Shape::Messages,
                (Shape::Body, "prompt" | "input") => Shape::Strings,
                (Shape::Message, "content") => Shape::Content,
                (Shape::Message, "tool_calls") => Shape::ToolCalls,
                (Shape::ToolCall, "function") => Shape::Function,
                (Shape::Function, "arguments") | (Shape::Part, "text") => Shape::Text,
                (Shape::Part, "type") => {
                    text_part = map.next_value::<serde_json::Value>()? == "text";
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(Extract {
                shape: value,
                out: &mut *out,
                pieces: &mut *pieces,
            })?;
        }
        // A part's text counts only in a text part; its "type" may come after its "text".
        if shape == Shape::Part && !text_part {
            out.truncate(start);
            *pieces = start_pieces;
        }
        Ok(())
    }
}

/// An object key: one of [`KEYS`], or "" for any other (keys are not copied).
struct Key(&'static str);

/// The keys [`Extract`] looks at.
const KEYS: [&str; 9] = [
    "messages",
    "prompt",
    "input",
    "content",
    "tool_calls",
    "function",
    "arguments",
    "type",
    "text",
];

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(Key(""))
    }
}

impl Visitor<'_> for Key {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key(KEYS.iter().find(|&&k| k == v).copied().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kind` is found in each of the " | "-separated `yes` texts and in none of the `no` ones,
    /// alone (direct search) and first of all kinds (through a gate set).
    fn assert_pii(kind: Pii, yes: &str, no: &str) {
        let mut all = Pii::ALL.to_vec();
        all.retain(|&k| k != kind);
        all.insert(0, kind);
        let found = |t| {
            [&[kind][..], &all].map(|k| {
                find_pii(t, k)
                    == Some(Finding {
                        what: kind.describe(),
                    })
            })
        };
        for t in yes.split(" | ") {
            assert_eq!(found(t), [true; 2], "{} not in {t:?}", kind.name());
        }
        for t in no.split(" | ") {
            assert_eq!(found(t), [false; 2], "{} in {t:?}", kind.name());
        }
    }

    /// Ordinary text none of the detectors may fire on.
    const ORDINARY: &[&str] = &[
        "Release 2026-11-23 at 2026-11-23T10:00:00+01:00 (or 2026-11-23T09:00:00.123Z).",
        "Upgrade from version 1.2.3.4.5 to 10.2.3 and build 4155550132 on 12345678901234.",
        "use std::io::Result; match x { Foo::Bar => 1 } // x :: Int, a::b, bad::cafe, 12:30:45",
        "The task-manager and skeleton crates, sk-cube-grid-fading-circle, xoxo-hugs-and-kisses.",
        "Ask me anything: AKIA is a prefix; -----BEGIN PUBLIC KEY----- is public; tg_short.",
        "Ship icon@2x.png, lodash@4.17.21 and @types/node; mail root@localhost.",
        "Order 1700000000000 shipped; MAC 00:1a:2b:3c:4d:5e; 0000 0000 0000 0000.",
        "Id 550e8400-e29b-41d4-a716-446655440000, commit 9fceb02d0ae598e95dc970b74767f19372d61af8.",
        "ISBN 978-3-16-148410-0 costs $1,234,567.89; call ext. 4021; see RFC 7231 section 6.5.1.",
    ];

    #[test]
    fn names_descriptions_and_order() {
        let names = Pii::ALL.map(Pii::name).join(" ");
        assert_eq!(names, "email phone credit_card us_ssn iban ip_address");
        assert_eq!(Pii::CreditCard.describe(), "a payment card number");
        let t = "mail jane@example.com from 10.0.0.1";
        let first = |kinds: &[Pii]| find_pii(t, kinds).map(|f| f.what);
        assert_eq!(first(&[Pii::IpAddress, Pii::Email]), Some("an IP address"));
        assert_eq!(first(&Pii::ALL), Some("an email address"));
        assert_eq!(first(&[Pii::Phone, Pii::Iban]), None);
        assert_eq!(first(&[]), None);
    }

    #[test]
    fn ordinary_text_has_no_findings() {
        for t in ORDINARY {
            assert_eq!(find_pii(t, &Pii::ALL), None, "{t:?}");
            assert_eq!(find_secret(t), None, "{t:?}");
        }
    }

    #[test]
    fn email() {
        assert_pii(
            Pii::Email,
            "write to jane.doe+news@mail.example.co.uk. | <bob_1@Example.ORG>",
            "icon@2x.png | lodash@4.17.21 | @types/node | root@localhost | a@b",
        );
    }

    #[test]
    fn phone() {
        assert_pii(
            Pii::Phone,
            "call +1 (415) 555-0132 | +44 20 7946 0958. | +4915112345678 | +33.1.23.45.67.89 \
             | (415) 555-0132 | 415-555-0132 | at 415.555.0132 today | 1-415-555-0132",
            "4155550132 | 12345678901234567 | 2026-11-23 | 2026-11-23T10:00:00+01:00 \
             | 2026-11-23T10:00:00+0100 | v10.2.3 and 1.2.3.4 | +1234567 | +1234567890123456 \
             | x+4915112345678 | id 415-555-0132-7 | 9415-555-0132 | 1.415.555.0132.4",
        );
    }

    #[test]
    fn credit_card_needs_luhn() {
        assert_pii(
            Pii::CreditCard,
            "4111 1111 1111 1111 | card 4111-1111-1111-1111 exp 12/29 | 5555555555554444 \
             | 3782 822463 10005 | 4222222222222 | 4111 1111 1111 1111 123",
            "4111 1111 1111 1112 | 5555555555554445 | 1700000000000 | 0000 0000 0000 0000 \
             | 04111111111111111 | 41111111111111110 | 4111-1111-1111-1111-5 | id4111111111111111",
        );
    }

    #[test]
    fn us_ssn() {
        assert_pii(
            Pii::UsSsn,
            "SSN 123-45-6789. | (078-05-1120)",
            "000-12-3456 | 666-12-3456 | 900-12-3456 | 999-12-3456 | 123-00-4567 | 123-45-0000 \
             | 2026-11-23 | 123-45-67890 | a123-45-6789 | 1-123-45-6789",
        );
    }

    #[test]
    fn iban_needs_mod_97() {
        assert_pii(
            Pii::Iban,
            "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX | GB29NWBK60161331926819 \
             | GB82 WEST 1234 5698 7654 32 | NO9386011117947 | FR1420041010050500013M02606",
            "DE88 3704 0044 0532 0130 00 | GB28NWBK60161331926819 | XX89370400440532013000 \
             | DE8937040044053201300 | de89370400440532013000 | ABCD1234EFGH5678IJKL",
        );
    }

    #[test]
    fn ip_address() {
        assert_pii(
            Pii::IpAddress,
            "server at 10.0.0.1 | connect to 192.168.1.254. | 255.255.255.0 \
             | 2001:db8::8a2e:370:7334 | 2001:0db8:85a3:0000:0000:8a2e:0370:7334 | listen on ::1 \
             | fe80::1%eth0 | http://[2001:db8::1]:443/ | ::ffff:192.0.2.1.",
            "1.2.3.4.5 | version 1.2.3 | 256.1.1.1 | 1.2.3.256 | v1.2.3.4 | std::io::Result \
             | a :: b | :: | 12:30:45 | Foo::Bar | bad::cafe | 00:1a:2b:3c:4d:5e | u8::MAX | x1::2",
        );
    }

    #[test]
    fn secrets() {
        // Built at run time, so that no scanner mistakes this file for a leak.
        let cases = [
            (
                ["AKIA", "IOSFODNN7EXAMPLE"].concat(),
                "an AWS access key id",
            ),
            (
                ["ASIA", "Y34FZKBOKMUTVV7A"].concat(),
                "an AWS access key id",
            ),
            ("-----BEGIN PRIVATE KEY-----\nMIIE".into(), "a private key"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----".into(),
                "a private key",
            ),
            (["ghp_", &"aB3d".repeat(9)].concat(), "a GitHub token"),
            (["ghs_", &"Zx9".repeat(13)].concat(), "a GitHub token"),
            (
                ["github_pat_", &"11AB_cd".repeat(4)].concat(),
                "a GitHub token",
            ),
            (
                ["sk-ant-", "api03-", &"Xy7_".repeat(10)].concat(),
                "an Anthropic API key",
            ),
            (
                ["sk-", "proj-", &"Ab3-".repeat(10)].concat(),
                "an OpenAI API key",
            ),
            (["sk-", &"aZ09".repeat(12)].concat(), "an OpenAI API key"),
            (
                ["xoxb-", "1234567890-0987654321-", "AbCdEf"].concat(),
                "a Slack token",
            ),
            (
                ["AIza", "Sy", &"A1b_c".repeat(6), "D2e"].concat(),
                "a Google API key",
            ),
            (
                ["sk_live_", &"4eC39HqLyjWD".repeat(2)].concat(),
                "a Stripe secret key",
            ),
            (
                ["rk_live_", &"51H8".repeat(5)].concat(),
                "a Stripe secret key",
            ),
            (
                [
                    "eyJhbGciOiJIUzI1NiJ9",
                    ".eyJzdWIiOiIxMjM0In0",
                    ".dozjgNryP4J3jVmNHl0w5N",
                ]
                .concat(),
                "a JSON Web Token",
            ),
            (["tg_", &"Qk3_-x".repeat(8)].concat(), "a Tollgate API key"),
        ];
        for (token, what) in &cases {
            let found = find_secret(&format!("here: \"{token}\" end")).map(|f| f.what);
            assert_eq!(found, Some(*what), "{token}");
            // The finding is the description: never the token or a piece of it.
            assert!(!what.contains(&token[..6]));
            // Glued to a word, a token is part of something else (a PEM header has no word).
            if !token.starts_with('-') {
                assert_eq!(find_secret(&format!("x{token}")), None, "x{token}");
            }
        }
        let no = "task-manager-service-for-everyone | skeleton | sk-cube-grid-fading-circle-bounce \
             | xoxo-hugs-and-kisses-to-everyone | ask-0123456789012345678901 \
             | -----BEGIN CERTIFICATE----- | eyJhbGciOiJIUzI1NiJ9.payload.signature \
             | tg_handler_message_from_user_with_retry_logic | AKIAIOSFODNN7EXAMPLEX";
        for t in no.split(" | ") {
            assert_eq!(find_secret(t), None, "{t}");
        }
    }

    #[test]
    fn patterns() {
        let p = Patterns::compile(&[r"(?i)project\s+falcon".into(), r"\bACME-\d{4}\b".into()])
            .expect("compile");
        assert!(!p.is_empty());
        assert_eq!(p.first_match("about Project  Falcon"), Some(0));
        assert_eq!(
            p.first_match("ticket ACME-1234 and project falcon"),
            Some(0)
        );
        assert_eq!(p.first_match("ticket ACME-1234"), Some(1));
        assert_eq!(p.first_match("nothing here"), None);
        let empty = Patterns::compile(&[]).expect("empty");
        assert!(empty.is_empty());
        assert_eq!(empty.first_match("anything"), None);
    }

    #[test]
    fn pattern_errors_name_the_pattern() {
        let err = Patterns::compile(&["ok".into(), "(unclosed".into()]).unwrap_err();
        assert!(err.starts_with("pattern 2: regex parse error"), "{err}");
        let err = Patterns::compile(&["[z-a]".into()]).unwrap_err();
        assert!(err.starts_with("pattern 1: "), "{err}");
    }

    #[test]
    fn oversized_patterns_are_refused() {
        let started = std::time::Instant::now();
        for big in [r"\w{1000}{1000}", r"(?:a{1000}){1000}", r"[0-9a-f]{200000}"] {
            let err = Patterns::compile(&["fine".into(), big.into()]).unwrap_err();
            assert!(
                err.starts_with("pattern 2: ") && err.contains("size limit"),
                "{err}"
            );
        }
        // Each fits alone (a Unicode `\w` is big), not all together.
        assert!(Patterns::compile(&[r"\w{10}".into()]).is_ok());
        let err = Patterns::compile(&vec![r"\w{10}".to_string(); 8]).unwrap_err();
        assert!(
            err.starts_with("patterns together: ") && err.contains("size limit"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn request_text_chat() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[
                {"type":"text","text":"look at this"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,c2stMTIz"}},
                {"text":"late type","type":"text"},
                {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}
            ]},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":\"x\\ny\"}"}}
            ]},
            {"role":"tool","tool_call_id":"c1","content":"result"}
        ],"temperature":0.2,"stream":true}"#;
        let want = "be brief\nlook at this\nlate type\n{\"q\":\"x\\ny\"}\nresult";
        assert_eq!(request_text(body).unwrap(), want);
    }

    #[test]
    fn request_text_completions_and_embeddings() {
        let text = |b: &str| request_text(b.as_bytes()).unwrap();
        assert_eq!(text(r#"{"model":"m","prompt":"say \"hi\""}"#), "say \"hi\"");
        assert_eq!(text(r#"{"prompt":["one","two"],"n":2}"#), "one\ntwo");
        assert_eq!(text(r#"{"prompt":[1,2,3]}"#), "");
        assert_eq!(text(r#"{"prompt":[[1,2],[3]]}"#), "");
        assert_eq!(text(r#"{"model":"e","input":"embed me"}"#), "embed me");
        assert_eq!(text(r#"{"input":["a","b"],"dimensions":8}"#), "a\nb");
        assert_eq!(text(r#"{"input":[[101,102],[103]]}"#), "");
        assert_eq!(text(r#"{"model":"m"}"#), "");
        // Shapes the API does not define add nothing rather than fail.
        assert_eq!(
            text(r#"{"messages":[{"content":{"a":"b"}},5,"x"],"prompt":{}}"#),
            ""
        );
    }

    #[test]
    fn request_text_needs_an_object() {
        for body in [
            "[]",
            "\"text\"",
            "null",
            "42",
            "",
            "{\"messages\":",
            "{} {}",
        ] {
            assert!(request_text(body.as_bytes()).is_err(), "{body:?}");
        }
    }
}

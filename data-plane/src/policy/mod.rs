//! Policies as the data plane enforces them: the deterministic rules of each enabled policy,
//! compiled once per config version, and their evaluation on a routed request.
//!
//! A repository's requests answer to the organization's policies, their workspace's and
//! their repository's (lower scopes add to higher ones). Each policy that fires is one
//! violation; any BLOCK among them refuses the request (403) before it reaches a provider.
//! Explanations name what fired (a model, a kind of data, a pattern number), never the text
//! that fired it: that text may be the very secret the policy protects.

pub mod detect;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tollgate_proto::admin::PiiKind;
use tollgate_proto::sync as pb;

use crate::bucket::TokenBuckets;
use crate::snapshot::{Connection, Rejected};
use detect::{Patterns, Pii};

/// What a policy does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Log,
    Alert,
    Block,
}

impl Action {
    /// The `tollgate.admin.v1.PolicyAction` number.
    pub fn number(self) -> i32 {
        match self {
            Action::Log => 1,
            Action::Alert => 2,
            Action::Block => 3,
        }
    }

    /// Lower-case name, for metrics.
    pub fn name(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Alert => "alert",
            Action::Block => "block",
        }
    }
}

/// One enabled policy with its rules compiled.
#[derive(Debug)]
pub struct Policy {
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// Empty for an organization policy.
    pub workspace_id: String,
    /// Set for a repository policy.
    pub repository_id: String,
    /// `tollgate.admin.v1.RiskType` number.
    pub severity: i32,
    pub action: Action,
    rules: Rules,
    /// The LLM judge, if the policy has one.
    pub judge: Option<JudgeSpec>,
    /// Request budgets per API key (`max_requests_per_minute`), when the policy has one.
    /// Kept with the compiled policy, so budgets survive new snapshots until the policy
    /// itself changes.
    limiter: Option<Mutex<TokenBuckets<Arc<str>>>>,
}

/// Which configuration and model judge a policy, and what they read.
#[derive(Debug)]
pub struct JudgeSpec {
    /// The judge's connection (joined per snapshot: it may be absent in this environment).
    pub connection_id: String,
    pub model: String,
    /// The policy's natural-language rule.
    pub content: String,
    /// A judge that fails counts as a violation.
    pub fail_closed: bool,
}

#[derive(Debug)]
struct Rules {
    patterns: Patterns,
    pii: Vec<Pii>,
    secrets: bool,
    allowed_models: Vec<String>,
    denied_models: Vec<String>,
    max_input_chars: usize,
    max_output_tokens: u64,
    max_requests_per_minute: u32,
}

impl Rules {
    /// Why the model rules refuse a request for `model` reaching `candidates`, if they do.
    /// Rules are checked against every name the request is known by: the name asked for,
    /// and each candidate's model and qualified name (so `openai/gpt-4o` or a route alias
    /// cannot get around a rule on `gpt-4o`). Allowed: the name asked for is allowed, or
    /// every candidate is. Denied: any of the names is denied.
    fn model_violation(&self, model: &str, candidates: &[Candidate<'_>]) -> Option<String> {
        let names = || {
            std::iter::once(model).chain(
                candidates
                    .iter()
                    .flat_map(|c| [c.model, c.qualified].into_iter()),
            )
        };
        if !self.allowed_models.is_empty() {
            let allowed = |name: &str| self.allowed_models.iter().any(|m| model_matches(m, name));
            let ok = allowed(model)
                || (!candidates.is_empty()
                    && candidates
                        .iter()
                        .all(|c| allowed(c.model) || allowed(c.qualified)));
            if !ok {
                return Some(format!(
                    "the request asks for model '{model}', which is not among the allowed models"
                ));
            }
        }
        for name in names() {
            if let Some(m) = self.denied_models.iter().find(|m| model_matches(m, name)) {
                return Some(if name == model {
                    format!("the request asks for model '{model}', which is denied ('{m}')")
                } else {
                    format!(
                        "the request asks for model '{model}', which reaches '{name}', denied ('{m}')"
                    )
                });
            }
        }
        None
    }

    /// Whether a rule reads the request's text (so it must be extracted).
    fn reads_text(&self) -> bool {
        !self.patterns.is_empty()
            || !self.pii.is_empty()
            || self.secrets
            || self.max_input_chars > 0
    }
}

impl TryFrom<pb::Policy> for Policy {
    type Error = Rejected;

    fn try_from(p: pb::Policy) -> Result<Self, Rejected> {
        let reject = |reason: String| Rejected {
            kind: pb::ResourceKind::Policy,
            id: p.id.clone(),
            reason,
        };
        if p.id.is_empty() {
            return Err(reject("policy without an id".into()));
        }
        let action = match p.action {
            1 => Action::Log,
            2 => Action::Alert,
            3 => Action::Block,
            n => return Err(reject(format!("unknown policy action {n}"))),
        };
        let r = p.rules.clone().unwrap_or_default();
        let patterns = Patterns::compile(&r.patterns).map_err(|e| reject(format!("rules: {e}")))?;
        let mut pii = Vec::with_capacity(r.pii.len());
        for k in &r.pii {
            let kind = match PiiKind::try_from(*k) {
                Ok(PiiKind::Email) => Pii::Email,
                Ok(PiiKind::Phone) => Pii::Phone,
                Ok(PiiKind::CreditCard) => Pii::CreditCard,
                Ok(PiiKind::UsSsn) => Pii::UsSsn,
                Ok(PiiKind::Iban) => Pii::Iban,
                Ok(PiiKind::IpAddress) => Pii::IpAddress,
                Ok(PiiKind::Unspecified) | Err(_) => {
                    return Err(reject(format!("unknown personal data kind {k}")));
                }
            };
            pii.push(kind);
        }
        // Build the built-in detectors now (1-2 ms, once per process and set of kinds), on
        // the config path rather than in the first request that needs them.
        if r.secrets {
            let _ = detect::find_secret("");
        }
        if !pii.is_empty() {
            let _ = detect::find_pii("", &pii);
        }
        let judge = match (r.judge_ai_llm_id.is_empty(), r.judge_model.is_empty()) {
            (true, true) => None,
            (false, false) if !p.content.trim().is_empty() => Some(JudgeSpec {
                connection_id: r.judge_ai_llm_id,
                model: r.judge_model,
                content: p.content,
                fail_closed: r.judge_fail_closed,
            }),
            _ => {
                return Err(reject(
                    "a judge needs its connection, its model and the policy's content".into(),
                ));
            }
        };
        Ok(Policy {
            id: p.id.as_str().into(),
            name: p.name.as_str().into(),
            workspace_id: p.workspace_id,
            repository_id: p.repository_id,
            severity: p.risk_type,
            action,
            judge,
            rules: Rules {
                patterns,
                pii,
                secrets: r.secrets,
                allowed_models: r.allowed_models,
                denied_models: r.denied_models,
                max_input_chars: r.max_input_chars as usize,
                max_output_tokens: u64::from(r.max_output_tokens),
                max_requests_per_minute: r.max_requests_per_minute,
            },
            limiter: (r.max_requests_per_minute > 0).then(|| {
                let n = f64::from(r.max_requests_per_minute);
                Mutex::new(TokenBuckets::new(n, n, 100_000))
            }),
        })
    }
}

impl Policy {
    /// Whether this policy refuses every request for `model`, which reaches `candidates` (a
    /// BLOCK whose model rules exclude it): such models are left out of `/v1/models`.
    pub fn blocks_model(&self, model: &str, candidates: &[Candidate<'_>]) -> bool {
        self.action == Action::Block && self.rules.model_violation(model, candidates).is_some()
    }

    /// Whether requests of repository `repository_id` in workspace `workspace_id` answer to
    /// this policy.
    pub fn applies_to(&self, workspace_id: &str, repository_id: &str) -> bool {
        (self.workspace_id.is_empty() || self.workspace_id == workspace_id)
            && (self.repository_id.is_empty() || self.repository_id == repository_id)
    }
}

/// The policies one repository's requests answer to (empty for most repositories: then
/// nothing is evaluated).
#[derive(Debug, Clone, Default)]
pub struct PolicySet(Arc<[Entry]>);

/// A policy of a [`PolicySet`], with its judge's connection when it has one and the
/// connection is in this snapshot.
#[derive(Debug)]
pub struct Entry {
    pub policy: Arc<Policy>,
    pub judge: Option<Arc<Connection>>,
}

/// A judge to ask about one request.
#[derive(Debug, Clone)]
pub struct Pending {
    pub policy: Arc<Policy>,
    /// `None`: the judge's connection is not active in this environment.
    pub connection: Option<Arc<Connection>>,
}

impl PolicySet {
    pub fn new(entries: Vec<Entry>) -> Self {
        Self(entries.into())
    }

    /// Whether a policy of the set refuses every request for `model` (see
    /// [`Policy::blocks_model`]).
    pub fn blocks_model(&self, model: &str, candidates: &[Candidate<'_>]) -> bool {
        self.0
            .iter()
            .any(|e| e.policy.blocks_model(model, candidates))
    }

    /// The judges to ask about a request: those of policies that have one and did not
    /// already fire on their rules (`hits`).
    pub fn judges(&self, hits: &[Hit]) -> Vec<Pending> {
        self.0
            .iter()
            .filter(|e| e.policy.judge.is_some())
            .filter(|e| !hits.iter().any(|h| Arc::ptr_eq(&h.policy, &e.policy)))
            .map(|e| Pending {
                policy: e.policy.clone(),
                connection: e.judge.clone(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The policies `request` violates, each with why. A policy that reads the request's
    /// text (or has a judge) fires when the text cannot be read (an unpaired surrogate
    /// escape), rather than let it pass unread.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Vec<Hit> {
        self.evaluate_with_text(subject).0
    }

    /// [`PolicySet::evaluate`], and the request's text when a policy read it (always, when a
    /// policy with a judge did not fire: its judge reads the same text).
    pub fn evaluate_with_text(&self, subject: &Subject<'_>) -> (Vec<Hit>, Option<String>) {
        let Subject {
            model,
            candidates,
            key_id,
            body,
        } = *subject;
        let now = Instant::now();
        // Extracted once, when a policy first needs it; `None` inside: unreadable.
        let mut text: Option<Option<(String, usize)>> = None;
        let mut max_output_tokens: Option<Result<Option<u64>, ()>> = None;
        let mut hits = Vec::new();
        for Entry { policy, .. } in self.0.iter() {
            let rules = &policy.rules;
            // Every request evaluated counts against its key's budget, whatever else fires.
            if let Some(limiter) = &policy.limiter
                && let Err(wait) = limiter
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(key_id, now)
            {
                hits.push(Hit {
                    policy: policy.clone(),
                    explanation: format!(
                        "the API key made more than {} requests in a minute",
                        rules.max_requests_per_minute
                    ),
                    retry_after: Some(wait),
                });
                continue;
            }
            let (text, pieces) = if rules.reads_text() || policy.judge.is_some() {
                match text.get_or_insert_with(|| detect::request_text_pieces(body).ok()) {
                    Some((text, pieces)) => (text.as_str(), *pieces),
                    // Text the rules (or a judge) cannot read cannot be cleared by them:
                    // the policy fires rather than let it pass unread.
                    None => {
                        hits.push(Hit {
                            policy: policy.clone(),
                            explanation: UNREADABLE.into(),
                            retry_after: None,
                        });
                        continue;
                    }
                }
            } else {
                ("", 0)
            };
            let request = Request {
                model,
                candidates,
                text,
                separators: pieces.saturating_sub(1),
                max_output_tokens: if rules.max_output_tokens > 0 {
                    *max_output_tokens.get_or_insert_with(|| output_tokens(body))
                } else {
                    Ok(None)
                },
            };
            if let Some(mut explanation) = check(rules, &request) {
                cap(&mut explanation, MAX_EXPLANATION);
                hits.push(Hit {
                    policy: policy.clone(),
                    explanation,
                    retry_after: None,
                });
            }
        }
        (hits, text.flatten().map(|(text, _)| text))
    }
}

/// Why a policy that reads the request's text fired on a request whose text cannot be read.
const UNREADABLE: &str = "the request text cannot be read (an unpaired UTF-16 surrogate escape \
     or invalid UTF-8), so the policy cannot clear it";

/// Longest explanation kept (model names and patterns come from config and could be long;
/// the control plane refuses a report holding an explanation over 2 KiB).
const MAX_EXPLANATION: usize = 1024;

/// Shortens `s` to at most `max` bytes, on a character boundary, marking the cut.
pub(crate) fn cap(s: &mut String, max: usize) {
    if s.len() > max {
        let kept = prefix(s, max - '…'.len_utf8()).len();
        s.truncate(kept);
        s.push('…');
    }
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What policies are evaluated on: one routed request.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The model the app asked for.
    pub model: &'a str,
    /// Where routing may send it.
    pub candidates: &'a [Candidate<'a>],
    /// The API key it came with (request budgets are per key).
    pub key_id: &'a Arc<str>,
    /// The app's OpenAI-format body.
    pub body: &'a [u8],
}

/// A model a request may reach: the provider's name for it, and `<routing id>/<model>`.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub model: &'a str,
    pub qualified: &'a str,
}

/// What the rules read of a request (each part only extracted when a rule needs it).
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    /// The model the app asked for.
    model: &'a str,
    /// Where routing may send it.
    candidates: &'a [Candidate<'a>],
    /// The text the app sends (see [`detect::request_text`]).
    text: &'a str,
    /// How many characters of `text` are the separators between its pieces.
    separators: usize,
    /// The larger of `max_completion_tokens` and `max_tokens`, if the app set either; an
    /// error when one of them is not a number.
    max_output_tokens: Result<Option<u64>, ()>,
}

/// The output tokens a request asks for at most (see [`Request`]); an error when a limit is
/// set to something else than a number or null (`"5000"` is a number to some servers).
fn output_tokens(body: &[u8]) -> Result<Option<u64>, ()> {
    #[derive(serde::Deserialize)]
    struct Limits {
        max_tokens: Option<serde_json::Value>,
        max_completion_tokens: Option<serde_json::Value>,
    }
    // Any number counts, so that `1e9` or `4096.5` cannot slip past as "not a u64".
    let tokens = |v: Option<serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            Ok(Some(n.as_u64().unwrap_or_else(|| {
                n.as_f64().map_or(0, |f| f.max(0.0).ceil() as u64)
            })))
        }
        Some(_) => Err(()),
    };
    let l: Limits = serde_json::from_slice(body).map_err(|_| ())?;
    Ok(tokens(l.max_tokens)?.max(tokens(l.max_completion_tokens)?))
}

/// One policy a request violated.
#[derive(Debug, Clone)]
pub struct Hit {
    pub policy: Arc<Policy>,
    pub explanation: String,
    /// Set when the request budget fired: how long until the key may send again.
    pub retry_after: Option<Duration>,
}

/// Why `rules` fire on the request, if they do (the first rule that fires).
fn check(rules: &Rules, req: &Request<'_>) -> Option<String> {
    let text = req.text;
    if let Some(why) = rules.model_violation(req.model, req.candidates) {
        return Some(why);
    }
    if rules.max_output_tokens > 0 {
        match req.max_output_tokens {
            Err(()) => {
                return Some(
                    "the request's max_tokens or max_completion_tokens is not a number, so \
                     the output limit cannot be checked"
                        .into(),
                );
            }
            Ok(Some(n)) if n > rules.max_output_tokens => {
                return Some(format!(
                    "the request asks for up to {n} output tokens; the limit is {}",
                    rules.max_output_tokens
                ));
            }
            Ok(_) => {}
        }
    }
    if rules.max_input_chars > 0 {
        let chars = text.chars().count().saturating_sub(req.separators);
        if chars > rules.max_input_chars {
            return Some(format!(
                "the request sends {chars} characters of text; the limit is {}",
                rules.max_input_chars
            ));
        }
    }
    if rules.secrets
        && let Some(f) = detect::find_secret(text)
    {
        return Some(format!("the request text contains {}", f.what));
    }
    if let Some(f) = detect::find_pii(text, &rules.pii) {
        return Some(format!("the request text contains {}", f.what));
    }
    if let Some(i) = rules.patterns.first_match(text) {
        return Some(format!("the request text matches pattern {}", i + 1));
    }
    None
}

/// `pattern` is a model name, or a prefix when it ends with `*`.
fn model_matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

#[cfg(test)]
mod tests;

//! `POST /v1/completions` (legacy completions), served by OPENAI / OTHER connections only:
//! the body goes to `{endpoint}/completions` as received with only `model` rewritten (and,
//! for streams, `stream_options.include_usage` turned on, the usage chunk hidden again when
//! the client did not ask for it), exactly as chat completions. Other provider types have no
//! legacy completions API: a 400 pointing to chat completions.
//!
//! The pass-through is chat's (`openai::forward`), with the completions URL and a tap that
//! also counts `text` deltas.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use tower::Service;

use super::adapter::{RetryPolicy, attempt_targets, credential, finish_attempt, meter};
use super::embeddings::{provider_name, serving};
use super::openai::forward;
use super::sse::OpenAiUsageTap;
use super::stream::StreamProcessor;
use super::{ChatCall, HttpResponse, Shared};
use crate::error::ProxyError;
use crate::snapshot::{OpenAiUrls, Provider, Target};
use crate::usage::Tokens;

/// The innermost service of `POST /v1/completions`.
#[derive(Debug, Clone)]
pub struct CompletionsService {
    shared: Arc<Shared>,
}

impl CompletionsService {
    /// What this service shares with the rest of the worker's request path.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Service<ChatCall> for CompletionsService {
    type Response = HttpResponse;
    type Error = ProxyError;
    type Future = BoxFuture<'static, Result<HttpResponse, ProxyError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut call: ChatCall) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            // Only OpenAI-format targets can serve it; a route mixing provider types uses
            // the ones that can.
            call.targets = serving(std::mem::take(&mut call.targets), |p| p == Provider::OpenAi)
                .map_err(|p| unsupported(&call.fields.model, p))?;
            let policy = RetryPolicy::new(call.targets.retries(), shared.retry_backoff);
            attempt_targets(&call.targets, policy, |target| {
                call_target(&shared, &call, target)
            })
            .await
        })
    }
}

/// The 400 of a legacy completion routed to a provider without that API.
fn unsupported(model: &str, provider: Provider) -> ProxyError {
    ProxyError::InvalidRequest {
        message: format!(
            "legacy completions (POST /v1/completions) are served only by OPENAI and OTHER \
             connections; the model `{model}` is served by a {} connection: use POST \
             /v1/chat/completions",
            provider_name(provider)
        ),
        param: Some("model".into()),
    }
}

/// One legacy completion to one target: the per-target call of the route loop.
pub(super) async fn call_target(
    shared: &Shared,
    call: &ChatCall,
    target: &Target,
) -> Result<HttpResponse, ProxyError> {
    let provider = target.connection.provider;
    if provider != Provider::OpenAi {
        return Err(unsupported(&call.fields.model, provider));
    }
    let credential = credential(call, target)?;
    let url = openai_urls(target)?.completions.clone();
    let meter = meter(shared, call, target);
    let started = meter.started();
    let tap = |inject| CompletionsTap {
        tap: OpenAiUsageTap::new(inject),
        deltas: 0,
    };
    let stream = call.fields.stream;
    let result = forward(shared, call, target, credential, meter, (url, stream), tap).await;
    finish_attempt(shared, started, target, result)
}

/// The completions and embeddings URLs of an OPENAI / OTHER target (built per snapshot).
pub(super) fn openai_urls(target: &Target) -> Result<&OpenAiUrls, ProxyError> {
    target.connection.openai_urls.as_ref().ok_or_else(|| {
        ProxyError::BadUpstream(format!(
            "connection {} is not an OpenAI-format connection",
            target.connection.id
        ))
    })
}

/// The chat usage tap (the usage chunk of completions streams has the same shape), and the
/// count of `text` deltas: until the usage chunk (the last one) comes, a stream cut short
/// counts one output token per delta sent.
struct CompletionsTap {
    tap: OpenAiUsageTap,
    deltas: u64,
}

impl StreamProcessor for CompletionsTap {
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        let out = self.tap.feed(chunk)?;
        self.deltas += count_text_values(&out);
        Ok(out)
    }

    fn finish(&mut self) -> Bytes {
        let out = self.tap.finish();
        self.deltas += count_text_values(&out);
        out
    }

    fn tokens(&self) -> Option<Tokens> {
        // The tap's own estimate counts chat `content` deltas, never present here: what it
        // returns is the provider's usage chunk, which is final.
        self.tap.tokens().or_else(|| {
            (self.deltas > 0).then_some(Tokens {
                input: 0,
                output: self.deltas,
            })
        })
    }
}

/// How many `"text"` keys in `events` have a non-empty string value: a cheap byte scan, no
/// JSON parsing (each completions chunk carries its text in `choices[].text`).
fn count_text_values(events: &[u8]) -> u64 {
    const KEY: &[u8] = b"\"text\"";
    let mut count = 0;
    let mut from = 0;
    while let Some(at) = events
        .get(from..)
        .and_then(|rest| rest.windows(KEY.len()).position(|w| w == KEY))
    {
        let at = from + at;
        from = at + KEY.len();
        // `\"text\"` inside a string value is text, not a key.
        if at > 0 && events.get(at - 1) == Some(&b'\\') {
            continue;
        }
        let rest = events.get(from..).unwrap_or_default().trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":").map(<[u8]>::trim_ascii_start) else {
            continue;
        };
        if value
            .strip_prefix(b"\"")
            .and_then(|v| v.first())
            .is_some_and(|b| *b != b'"')
        {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!(
            "data: {{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{{\"text\":{},\"index\":0,\"logprobs\":null,\"finish_reason\":null}}],\"model\":\"m\"}}\n\n",
            serde_json::to_string(text).expect("json")
        )
    }

    #[test]
    fn counts_text_deltas() {
        assert_eq!(count_text_values(chunk("Hello").as_bytes()), 1);
        assert_eq!(count_text_values(chunk("").as_bytes()), 0);
        assert_eq!(
            count_text_values(chunk("say \"text\": \"x\"").as_bytes()),
            1
        );
        assert_eq!(
            count_text_values(format!("{}{}", chunk("a"), chunk("b")).as_bytes()),
            2
        );
        assert_eq!(count_text_values(b"data: [DONE]\n\n"), 0);
        assert_eq!(count_text_values(b"\"text\""), 0);
    }

    #[test]
    fn usage_chunk_wins_and_is_hidden() {
        let usage = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4,\"total_tokens\":9}}\n\n";
        let mut tap = CompletionsTap {
            tap: OpenAiUsageTap::new(true),
            deltas: 0,
        };
        let mut out = Vec::new();
        for piece in [chunk("Hi"), chunk(" there"), chunk("!")] {
            out.extend_from_slice(&tap.feed(Bytes::from(piece)).expect("feed"));
        }
        // Cut short here: one token per delta.
        assert_eq!(
            tap.tokens(),
            Some(Tokens {
                input: 0,
                output: 3
            })
        );
        out.extend_from_slice(&tap.feed(Bytes::from(usage)).expect("feed"));
        out.extend_from_slice(
            &tap.feed(Bytes::from_static(b"data: [DONE]\n\n"))
                .expect("feed"),
        );
        out.extend_from_slice(&tap.finish());
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.contains("\"usage\""), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            tap.tokens(),
            Some(Tokens {
                input: 5,
                output: 4
            })
        );
    }
}

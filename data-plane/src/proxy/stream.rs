//! A streamed upstream response on its way to the client: each upstream chunk is processed
//! (usage tap or translation) and forwarded at once. Silence longer than the idle timeout
//! ends the stream with an error event. Dropping the body (client gone) drops the upstream
//! connection, which cancels the provider call, and the meter still records the tokens
//! streamed so far, as an error (client cancelled).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::error::ProxyError;
use crate::usage::{Meter, Tokens};

/// Turns upstream bytes into client bytes, sans IO.
pub trait StreamProcessor: Send + Unpin + 'static {
    /// Processes one upstream chunk; returns what to send now (possibly nothing).
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes, String>;
    /// The upstream ended: what remains to send.
    fn finish(&mut self) -> Bytes;
    /// Tokens reported so far.
    fn tokens(&self) -> Option<Tokens>;
}

/// `reported`, with the output at least one token per text delta streamed: the provider's
/// count comes at the end of the stream (a delta holds one token or more, so the final
/// count is never below it).
pub fn with_streamed_estimate(reported: Tokens, deltas: u64) -> Tokens {
    Tokens {
        input: reported.input,
        output: reported.output.max(deltas),
    }
}

/// The response body of a stream.
pub struct MeteredBody<P: StreamProcessor> {
    upstream: Incoming,
    processor: P,
    meter: Meter,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl<P: StreamProcessor> MeteredBody<P> {
    /// Streams `upstream` through `processor`, metering into `meter`.
    pub fn new(upstream: Incoming, processor: P, meter: Meter, idle: Duration) -> Self {
        Self {
            upstream,
            processor,
            meter,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            done: false,
        }
    }

    /// Ends the stream with an OpenAI error event, so clients report an error, not a hang.
    fn fail(&mut self, err: ProxyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.meter.fail();
        if let Some(t) = self.processor.tokens() {
            self.meter.set_tokens(t);
        }
        tracing::warn!(error = %err, "stream from the provider ended early");
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(format!(
            "data: {}\n\n",
            err.body()
        ))))))
    }
}

impl<P: StreamProcessor> Drop for MeteredBody<P> {
    fn drop(&mut self) {
        if !self.done {
            // The client went away before the end: what was streamed still counts.
            self.meter.fail();
            if let Some(t) = self.processor.tokens() {
                self.meter.set_tokens(t);
            }
        }
    }
}

impl<P: StreamProcessor> Body for MeteredBody<P> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let next = Instant::now() + this.idle;
                    this.deadline.as_mut().reset(next);
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match this.processor.feed(data) {
                        Ok(out) => {
                            if let Some(t) = this.processor.tokens() {
                                this.meter.set_tokens(t);
                            }
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out))));
                            }
                        }
                        Err(e) => return this.fail(ProxyError::BadUpstream(e)),
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return this.fail(ProxyError::BadUpstream(e.to_string()));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let tail = this.processor.finish();
                    if let Some(t) = this.processor.tokens() {
                        this.meter.set_tokens(t);
                    }
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
                Poll::Pending => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        return this.fail(ProxyError::UpstreamTimeout);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

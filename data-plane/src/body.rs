//! Body types shared by the layers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// Errors of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: bytes already in memory (most answers: no allocation for the body
/// itself) or a stream (an upstream's, boxed).
#[derive(Debug)]
pub enum RespBody {
    /// Sent as one frame; `None` once sent.
    Full(Option<Bytes>),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl RespBody {
    /// A streamed body.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        RespBody::Stream(body.map_err(Into::into).boxed_unsync())
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RespBody::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            RespBody::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            RespBody::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            RespBody::Stream(body) => body.size_hint(),
        }
    }
}

/// A response body from bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> RespBody {
    RespBody::Full(Some(bytes.into()))
}

/// A body read whole from its frames. The first frame is kept as it is: most bodies come in
/// one, and then nothing is copied.
#[derive(Debug, Default)]
pub struct Gathered {
    first: Bytes,
    rest: BytesMut,
}

impl Gathered {
    /// Bytes gathered so far.
    pub fn len(&self) -> usize {
        self.first.len() + self.rest.len()
    }

    /// Nothing gathered yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one frame's data, unless the whole would then be longer than `limit`: then
    /// nothing is appended and the answer is `false`.
    #[must_use]
    pub fn push(&mut self, data: Bytes, limit: usize) -> bool {
        if self.len() + data.len() > limit {
            return false;
        }
        if self.is_empty() {
            self.first = data;
            return true;
        }
        if self.rest.is_empty() {
            let first = std::mem::take(&mut self.first);
            self.rest.reserve(first.len() + data.len());
            self.rest.extend_from_slice(&first);
        }
        self.rest.extend_from_slice(&data);
        true
    }

    /// The whole body.
    pub fn into_bytes(self) -> Bytes {
        if self.rest.is_empty() {
            self.first
        } else {
            self.rest.freeze()
        }
    }
}

/// A JSON response with `status`.
pub fn json_response(status: http::StatusCode, body: impl Into<Bytes>) -> http::Response<RespBody> {
    let mut resp = http::Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_keeps_one_frame_and_joins_several() {
        let one = Bytes::from_static(b"whole");
        let mut g = Gathered::default();
        assert!(g.push(one.clone(), 5));
        let got = g.into_bytes();
        assert_eq!(got, one);
        assert_eq!(got.as_ptr(), one.as_ptr(), "a single frame is not copied");

        let mut g = Gathered::default();
        for part in ["ab", "", "cd", "e"] {
            assert!(g.push(Bytes::from(part), 5));
        }
        assert_eq!(g.len(), 5);
        assert!(!g.push(Bytes::from_static(b"f"), 5), "over the limit");
        assert_eq!(g.len(), 5, "nothing appended");
        assert_eq!(g.into_bytes(), Bytes::from_static(b"abcde"));

        let mut g = Gathered::default();
        assert!(g.push(Bytes::new(), 1));
        assert!(g.push(Bytes::from_static(b"x"), 1));
        assert_eq!(g.into_bytes(), Bytes::from_static(b"x"));
        assert!(Gathered::default().into_bytes().is_empty());
    }

    #[tokio::test]
    async fn full_bodies_send_one_frame_with_their_length() {
        let body = full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"hello"));

        let empty = full(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        assert!(
            empty
                .collect()
                .await
                .expect("collect")
                .to_bytes()
                .is_empty()
        );

        let streamed = RespBody::stream(http_body_util::Full::new(Bytes::from_static(b"s")));
        let bytes = streamed.collect().await.expect("collect").to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"s"));
    }
}

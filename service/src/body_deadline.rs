//! A deadline on reading a request's body, which actix-web does not have.
//!
//! actix-http times the request head (`client_request_timeout`, first request of a
//! connection only), an idle keep-alive connection and a closing one, but nothing once
//! the head is in: a request that announces `Content-Length: 1000` and sends nothing more
//! holds its connection, and the handler waiting for the body, forever. [`middleware`]
//! puts a [`Deadline`] around every request's payload: the whole body must have arrived
//! [`crate::http::BODY_READ_TIMEOUT`] after the head did, else the next read of it fails
//! with an `io::ErrorKind::TimedOut` payload error (the handler answers 408 through
//! [`is_timeout`]), the response says `Connection: close`, and actix-http closes the
//! connection because the body was not read to its end.
//!
//! It is a deadline on the whole body, not an idle timeout between reads, because a
//! client trickling one byte a second would never be idle. Bodies are small (the largest
//! limit of any route is a few hundred KiB), so an honest client sends them in well
//! under the deadline.

use std::cell::Cell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::rt::time::{sleep, Sleep};
use actix_web::web::Bytes;
use futures_core::Stream;

/// The description of the payload error a late body ends with.
pub const TIMED_OUT: &str = "the request body did not arrive in time";

/// A payload stream that fails once its deadline has passed.
pub struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl<S> Deadline<S> {
    /// `inner`, which must end within `limit` from now; `expired` is set when it did not.
    pub fn new(inner: S, limit: Duration, expired: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            sleep: Box::pin(sleep(limit)),
            expired,
        }
    }
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        // Data that is there is taken even at the deadline: only waiting is cut short.
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    TIMED_OUT,
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether an error of reading a body (e.g. from `Payload::to_bytes_limited`) is the
/// deadline's.
pub fn is_timeout(error: &actix_web::Error) -> bool {
    error
        .as_error::<PayloadError>()
        .is_some_and(is_payload_timeout)
}

/// Whether a payload error (e.g. inside the `Json` extractor's error) is the deadline's.
pub fn is_payload_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// The middleware (for `actix_web::middleware::from_fn`): every request's payload gets
/// a [`Deadline`] of [`crate::http::BODY_READ_TIMEOUT`], and a response to a request
/// whose body came too late closes the connection.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    with_limit(req, next, crate::http::BODY_READ_TIMEOUT).await
}

async fn with_limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
    limit: Duration,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expired = Rc::new(Cell::new(false));
    let payload = std::mem::replace(req.parts_mut().1, Payload::None);
    let timed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(Deadline::new(payload, limit, expired.clone()));
    req.set_payload(Payload::from(timed));
    let mut response = next.call(req).await?;
    if expired.get() {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A body that never comes.
    struct Never;

    impl Stream for Never {
        type Item = Result<Bytes, PayloadError>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Pending
        }
    }

    async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
    }

    #[test]
    fn a_body_that_never_comes_fails_at_the_deadline() {
        actix_web::rt::System::new().block_on(async {
            let expired = Rc::new(Cell::new(false));
            let started = std::time::Instant::now();
            let mut body = Deadline::new(Never, Duration::from_millis(50), expired.clone());
            let error = next(&mut body).await.unwrap().unwrap_err();
            assert!(is_timeout(&actix_web::Error::from(error)));
            assert!(started.elapsed() >= Duration::from_millis(50));
            assert!(expired.get());
            assert!(next(&mut body).await.is_none(), "and then it ends");
        });
    }

    #[test]
    fn a_body_that_is_there_is_read_whole() {
        actix_web::rt::System::new().block_on(async {
            let chunks = vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))];
            let expired = Rc::new(Cell::new(false));
            let mut body = Deadline::new(
                Payload::from(Box::pin(Chunks(chunks))
                    as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>),
                Duration::from_secs(5),
                expired.clone(),
            );
            assert_eq!(next(&mut body).await.unwrap().unwrap(), "ab");
            assert_eq!(next(&mut body).await.unwrap().unwrap(), "c");
            assert!(next(&mut body).await.is_none());
            assert!(!expired.get());
        });
    }

    struct Chunks(Vec<Result<Bytes, PayloadError>>);

    impl Stream for Chunks {
        type Item = Result<Bytes, PayloadError>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }
}

//! Requests sent on a connected session, with hyper: [`Connection`] keeps one session open
//! for many requests (HTTP/1.1 keep-alive, so a client asking one peer again pays the
//! handshake once), [`send`] makes one exchange.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::Session;

/// Largest response body [`Connection::send`] reads.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a request over a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// HTTP framing or the connection failed (the peer closed an idle session, say).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response body above {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// An HTTP/1.1 connection over one admitted session, for as many requests as the peer
/// keeps it open (the services close a session idle for 5 s). Requests go one after
/// another; dropping it closes the session.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<Result<(), hyper::Error>>,
}

impl Connection {
    /// Starts HTTP/1.1 on `session` (no request is sent yet). Must run inside a tokio
    /// runtime, which drives the connection.
    pub async fn open<S>(session: Session<S>) -> Result<Self, HttpError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(session)).await?;
        let driver = tokio::spawn(connection);
        Ok(Self { sender, driver })
    }

    /// Sends `request` and reads the whole response (at most [`MAX_RESPONSE_BYTES`] of
    /// body), after the previous exchange has finished.
    pub async fn send(
        &mut self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request.map(Full::new)).await?;
        let (parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| HttpError::TooLarge)?
            .to_bytes();
        Ok(http::Response::from_parts(parts, bytes))
    }

    /// Whether the peer has closed the session (a next request would fail).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Sends one request on `session` and reads the whole response: a [`Connection`] used
/// for this one exchange.
pub async fn send<S>(
    session: Session<S>,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Connection::open(session).await?.send(request).await
}

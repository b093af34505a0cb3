//! Requests sent on a connected session ([`send`]), with hyper.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Session;

/// Largest response body [`send`] reads.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a request over a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// HTTP framing or the connection failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response body above {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// Sends one request on `session` and reads the whole response (HTTP/1.1; the session is
/// used for this one exchange).
pub async fn send<S>(
    session: Session<S>,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(session)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request.map(Full::new)).await?;
    let (parts, body) = response.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| HttpError::TooLarge)?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok(http::Response::from_parts(parts, bytes))
}

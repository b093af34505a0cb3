//! The frames of the key agreement inside the TLS channel.
//!
//! ```text
//! frame = type (1 byte) ‖ length (2 bytes, big-endian) ‖ body (length bytes, ≤ 1024)
//! type 0x01  kex      body: one ECDH/YAK-over-Bitcoin message (anchor::kex wire format)
//! type 0x02  refusal  body: UTF-8 reason; the sender closes the connection after it
//! ```
//!
//! Exactly three kex frames cross, in order: hello (client), reply (server), finished
//! (client). Application data starts after the finished frame; a side that refuses the
//! peer sends one refusal frame instead of its next kex frame.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Largest frame body.
pub const MAX_BODY: usize = 1024;

const KEX: u8 = 0x01;
const REFUSAL: u8 = 0x02;

/// One frame, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A key-agreement message.
    Kex(Vec<u8>),
    /// The peer refused this side, for the reason given.
    Refusal(String),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream failed or closed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An unknown frame type.
    #[error("unknown frame type {0:#04x}")]
    Type(u8),
    /// A body longer than [`MAX_BODY`].
    #[error("frame body of {0} bytes exceeds {MAX_BODY}")]
    TooLong(usize),
    /// A refusal whose reason is not UTF-8.
    #[error("refusal reason is not utf-8")]
    Reason,
}

/// Writes one kex frame and flushes it.
pub(crate) async fn write_kex<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> Result<(), FrameError> {
    write(stream, KEX, message).await
}

/// Writes a refusal frame (the reason cut to [`MAX_BODY`] bytes at a character boundary)
/// and shuts the write side down.
pub(crate) async fn write_refusal<S: AsyncWrite + Unpin>(
    stream: &mut S,
    reason: &str,
) -> Result<(), FrameError> {
    let mut end = reason.len().min(MAX_BODY);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    write(stream, REFUSAL, &reason.as_bytes()[..end]).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    kind: u8,
    body: &[u8],
) -> Result<(), FrameError> {
    let len = u16::try_from(body.len())
        .ok()
        .filter(|&len| usize::from(len) <= MAX_BODY)
        .ok_or(FrameError::TooLong(body.len()))?;
    let mut frame = Vec::with_capacity(3 + body.len());
    frame.push(kind);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads one frame.
pub(crate) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Frame, FrameError> {
    let mut head = [0u8; 3];
    stream.read_exact(&mut head).await?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    if len > MAX_BODY {
        return Err(FrameError::TooLong(len));
    }
    if head[0] != KEX && head[0] != REFUSAL {
        return Err(FrameError::Type(head[0]));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    match head[0] {
        KEX => Ok(Frame::Kex(body)),
        _ => String::from_utf8(body)
            .map(Frame::Refusal)
            .map_err(|_| FrameError::Reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_refused() {
        let mut bytes = Vec::new();
        write_kex(&mut bytes, &[1, 2, 3]).await.unwrap();
        write_refusal(&mut bytes, "not anchored").await.unwrap();
        let mut reader = bytes.as_slice();
        assert_eq!(read(&mut reader).await.unwrap(), Frame::Kex(vec![1, 2, 3]));
        assert_eq!(
            read(&mut reader).await.unwrap(),
            Frame::Refusal("not anchored".into())
        );
        assert!(matches!(read(&mut reader).await, Err(FrameError::Io(_))));

        let unknown = [0x07u8, 0, 0];
        assert!(matches!(
            read(&mut unknown.as_slice()).await,
            Err(FrameError::Type(7))
        ));
        let too_long = [KEX, 0x04, 0x01];
        assert!(matches!(
            read(&mut too_long.as_slice()).await,
            Err(FrameError::TooLong(1025))
        ));
        let truncated = [KEX, 0, 5, 1, 2];
        assert!(matches!(
            read(&mut truncated.as_slice()).await,
            Err(FrameError::Io(_))
        ));
        let bad_reason = [REFUSAL, 0, 1, 0xff];
        assert!(matches!(
            read(&mut bad_reason.as_slice()).await,
            Err(FrameError::Reason)
        ));
        assert!(matches!(
            write_kex(&mut Vec::new(), &[0; MAX_BODY + 1]).await,
            Err(FrameError::TooLong(_))
        ));
        let mut long = Vec::new();
        write_refusal(&mut long, &"é".repeat(MAX_BODY))
            .await
            .unwrap();
        assert!(
            matches!(read(&mut long.as_slice()).await, Ok(Frame::Refusal(r)) if r.len() <= MAX_BODY)
        );
    }
}

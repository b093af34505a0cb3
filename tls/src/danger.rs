//! The steps of [`connect`](crate::connect) and [`accept`](crate::accept) one by one, for
//! tests and protocol experiments: a misbehaving peer is written with these.
//!
//! [`connect_channel`] and [`accept_channel`] pass gates 1 and 2 (TLS with the binding,
//! admission) and stop before the key agreement; the caller then exchanges the kex frames
//! itself with [`write_kex`] and [`read_frame`]. Nothing here skips a check on the peer:
//! what is dangerous is that the caller, not this crate, runs (or does not run) the key
//! agreement before trusting the channel.

use std::sync::Arc;

use milagro_anchor::digest::Digest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server};

pub use crate::frame::Frame;
pub use crate::session::Channel;
use crate::session::{bounded, open_client, open_server};
use crate::{frame, FrameError, LocalIdentity, Options, PeerDirectory, TlsError};

/// Gates 1 and 2 of [`connect`](crate::connect).
pub async fn connect_channel<IO>(
    io: IO,
    local: &LocalIdentity,
    peer: Digest,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Channel<client::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(options, open_client(io, local, peer, directory, options)).await
}

/// Gates 1 and 2 of [`accept`](crate::accept).
pub async fn accept_channel<IO>(
    io: IO,
    local: &LocalIdentity,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Channel<server::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(options, open_server(io, local, directory, options)).await
}

/// Writes one kex frame.
pub async fn write_kex<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> Result<(), FrameError> {
    frame::write_kex(stream, message).await
}

/// Reads one frame.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Frame, FrameError> {
    frame::read(stream).await
}

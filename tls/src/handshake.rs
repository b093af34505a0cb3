//! The key agreement inside the channel: three frames, then an established session.
//!
//! The session context of the agreement is the TLS exporter value of the channel
//! ([`exporter_context`]), so both key-confirmation tags are MACs over it: a tag made in
//! one TLS session (a replay, or a man in the middle who terminates TLS on both sides)
//! fails in any other.

use milagro_anchor::kex::{ecdh, yak, Established, LocalParty, Party, Protocol, SessionContext};
use rand_core::OsRng;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::admission::Refusal;
use crate::frame::{self, Frame};
use crate::TlsError;

/// The exporter label (RFC 8446 §7.5) of the session context.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-milagro-kex-v1";

/// Bytes of exporter output used as the session context.
pub const EXPORTER_LEN: usize = 32;

/// Runs one protocol's initiator: hello out, reply in, finished out.
macro_rules! initiate_with {
    ($protocol:ident, $stream:expr, $local:expr, $peer:expr, $context:expr) => {{
        let (state, hello) = $protocol::Initiator::start(&mut OsRng, $local, $peer, $context)?;
        frame::write_kex($stream, &hello.to_bytes()).await?;
        let reply = $protocol::Reply::from_bytes(&expect_kex($stream).await?)?;
        let (established, finished) = state.finish(&reply)?;
        frame::write_kex($stream, &finished.to_bytes()).await?;
        Ok(established)
    }};
}

/// Runs one protocol's responder: (hello already read), reply out, finished in.
macro_rules! respond_with {
    ($protocol:ident, $stream:expr, $local:expr, $peer:expr, $context:expr, $hello:expr) => {{
        let hello = $protocol::Hello::from_bytes($hello)?;
        let (state, reply) =
            $protocol::Responder::respond(&mut OsRng, $local, $peer, $context, &hello)?;
        frame::write_kex($stream, &reply.to_bytes()).await?;
        let finished = milagro_anchor::kex::Finished::from_bytes(&expect_kex($stream).await?)?;
        Ok(state.finish(&finished)?)
    }};
}

/// The client's side. On failure the server is told why before the error returns.
pub(crate) async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &LocalParty,
    peer: &Party,
    context: &SessionContext,
    protocol: Protocol,
) -> Result<Established, TlsError> {
    let outcome: Result<Established, TlsError> = async {
        match protocol {
            Protocol::YakV1 => initiate_with!(yak, stream, local, peer, context),
            Protocol::EcdhV1 => initiate_with!(ecdh, stream, local, peer, context),
            other => Err(TlsError::Protocol(other)),
        }
    }
    .await;
    tell_peer(stream, outcome).await
}

/// The server's side: the protocol is the client's choice if `accepted` lists it.
pub(crate) async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &LocalParty,
    peer: &Party,
    context: &SessionContext,
    accepted: &[Protocol],
) -> Result<Established, TlsError> {
    let outcome: Result<Established, TlsError> = async {
        let hello = expect_kex(stream).await?;
        match Protocol::of_hello(&hello) {
            Some(protocol) if !accepted.contains(&protocol) => Err(TlsError::Protocol(protocol)),
            Some(Protocol::YakV1) => respond_with!(yak, stream, local, peer, context, &hello),
            Some(Protocol::EcdhV1) => respond_with!(ecdh, stream, local, peer, context, &hello),
            _ => Err(TlsError::Refused(Refusal::KeyAgreement(
                "the first frame is no hello of a known protocol".into(),
            ))),
        }
    }
    .await;
    tell_peer(stream, outcome).await
}

/// Reads the next frame, which must be a kex message.
async fn expect_kex<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, TlsError> {
    match frame::read(stream).await? {
        Frame::Kex(message) => Ok(message),
        Frame::Refusal(reason) => Err(TlsError::RefusedByPeer(reason)),
    }
}

/// Sends a refusal for a failure of this side's (not for one the peer reported), then
/// returns the outcome unchanged.
async fn tell_peer<S: AsyncWrite + Unpin, T>(
    stream: &mut S,
    outcome: Result<T, TlsError>,
) -> Result<T, TlsError> {
    if let Err(error) = &outcome {
        if error.is_ours_to_report() {
            // Best effort: the peer may already be gone, and our error is what matters.
            let _ = frame::write_refusal(stream, &error.to_string()).await;
        }
    }
    outcome
}

//! [`connect`] and [`accept`]: the three gates in order, and the [`Session`] they open.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use milagro_anchor::digest::Digest;
use milagro_anchor::kex::{Established, SessionContext};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::admission::{admit, AdmittedPeer, PeerDirectory};
use crate::certificate::throwaway;
use crate::handshake::{self, EXPORTER_LABEL, EXPORTER_LEN};
use crate::verifier::BindingVerifier;
use crate::{frame, LocalIdentity, Options, TlsError, ALPN};

/// The name the client puts in its hello. Nothing checks it: the peer is identified by
/// its binding, not by a DNS name.
const SERVER_NAME: &str = "milagro.invalid";

/// An established Milagro TLS connection: all three gates passed.
pub struct Session<S> {
    stream: S,
    peer: AdmittedPeer,
    established: Established,
}

impl<S> Session<S> {
    /// The admitted peer: its Birth Certificate and verified anchor.
    pub fn peer(&self) -> &AdmittedPeer {
        &self.peer
    }

    /// The key-agreement session: protocol, session id, both parties, key.
    pub fn established(&self) -> &Established {
        &self.established
    }

    /// The TLS stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The TLS stream, the peer and the key-agreement session.
    pub fn into_parts(self) -> (S, AdmittedPeer, Established) {
        (self.stream, self.peer, self.established)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Session<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Session<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Opens a session to the party whose Birth Certificate has digest `peer`, over `io`
/// (usually a `TcpStream`), looking its anchor up in `directory`.
pub async fn connect<IO>(
    io: IO,
    local: &LocalIdentity,
    peer: Digest,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Session<client::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(options, async {
        let mut channel = open_client(io, local, peer, directory, options).await?;
        let established = handshake::initiate(
            &mut channel.stream,
            local.party(),
            &channel.peer.party(),
            &channel.context,
            options.protocol,
        )
        .await?;
        Ok(channel.into_session(established))
    })
    .await
}

/// Accepts a session from any anchored party over `io`, looking its anchor up in
/// `directory`. The caller decides afterwards what the peer may do
/// ([`Session::peer`]).
pub async fn accept<IO>(
    io: IO,
    local: &LocalIdentity,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Session<server::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    bounded(options, async {
        let mut channel = open_server(io, local, directory, options).await?;
        let established = handshake::respond(
            &mut channel.stream,
            local.party(),
            &channel.peer.party(),
            &channel.context,
            &options.accepted,
        )
        .await?;
        Ok(channel.into_session(established))
    })
    .await
}

/// A TLS channel whose peer was admitted, before the key agreement (gates 1 and 2).
pub struct Channel<S> {
    /// The TLS stream.
    pub stream: S,
    /// The admitted peer.
    pub peer: AdmittedPeer,
    /// The channel's TLS exporter value, the key agreement's session context.
    pub context: SessionContext,
}

impl<S> Channel<S> {
    fn into_session(self, established: Established) -> Session<S> {
        Session {
            stream: self.stream,
            peer: self.peer,
            established,
        }
    }
}

/// Gates 1 and 2 on the client side.
pub(crate) async fn open_client<IO>(
    io: IO,
    local: &LocalIdentity,
    peer: Digest,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Channel<client::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(BindingVerifier::new(
        Some(peer),
        provider.signature_verification_algorithms,
    ));
    let certificate = throwaway(local)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_auth_cert(vec![certificate.certificate], certificate.key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let name = ServerName::try_from(SERVER_NAME)
        .map_err(|e| TlsError::Tls(rustls::Error::General(e.to_string())))?;
    let handshake = TlsConnector::from(Arc::new(config)).connect(name, io).await;
    let stream = handshake.map_err(|e| handshake_error(&verifier, e))?;
    let exported =
        stream
            .get_ref()
            .1
            .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)?;
    admitted_channel(stream, exported, &verifier, directory, options).await
}

/// Gates 1 and 2 on the server side.
pub(crate) async fn open_server<IO>(
    io: IO,
    local: &LocalIdentity,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Channel<server::TlsStream<IO>>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(BindingVerifier::new(
        None,
        provider.signature_verification_algorithms,
    ));
    let certificate = throwaway(local)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![certificate.certificate], certificate.key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let handshake = TlsAcceptor::from(Arc::new(config)).accept(io).await;
    let stream = handshake.map_err(|e| handshake_error(&verifier, e))?;
    let exported =
        stream
            .get_ref()
            .1
            .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)?;
    admitted_channel(stream, exported, &verifier, directory, options).await
}

/// Runs `handshake` within the options' timeout.
pub(crate) async fn bounded<T>(
    options: &Options,
    handshake: impl std::future::Future<Output = Result<T, TlsError>>,
) -> Result<T, TlsError> {
    tokio::time::timeout(options.timeout, handshake)
        .await
        .map_err(|_| TlsError::Timeout(options.timeout))?
}

/// The channel once the peer is admitted, with the exporter value as its session context.
async fn admitted_channel<S: AsyncWrite + Unpin>(
    mut stream: S,
    exported: [u8; EXPORTER_LEN],
    verifier: &BindingVerifier,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Channel<S>, TlsError> {
    let peer = admit_peer(&mut stream, verifier, directory, options).await?;
    Ok(Channel {
        stream,
        peer,
        context: SessionContext::new(exported.to_vec())?,
    })
}

/// The peer's certificate passed the verifier: look its anchor up and decide. A refused
/// peer is told why.
async fn admit_peer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    verifier: &BindingVerifier,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<AdmittedPeer, TlsError> {
    let bound = match verifier.take_verdict() {
        Some(Ok(bound)) => bound,
        Some(Err(refusal)) => return Err(refusal.into()),
        // rustls completes no handshake without calling the verifier.
        None => {
            return Err(TlsError::Tls(rustls::Error::General(
                "handshake completed without a certificate check".into(),
            )))
        }
    };
    let txid = bound.anchor().txid();
    let standing = tokio::task::spawn_blocking(move || directory.standing(txid))
        .await
        .map_err(|e| TlsError::Io(io::Error::other(e)))?;
    match admit(bound, standing, options.min_depth) {
        Ok(admitted) => Ok(admitted),
        Err(refusal) => {
            // Best effort: the refusal is the error either way.
            let _ = frame::write_refusal(stream, &refusal.to_string()).await;
            Err(TlsError::Refused(refusal))
        }
    }
}

/// A failed TLS handshake: this side's typed refusal if the verifier made one, else what
/// rustls or the connection said.
fn handshake_error(verifier: &BindingVerifier, error: io::Error) -> TlsError {
    if let Some(Err(refusal)) = verifier.take_verdict() {
        return TlsError::Refused(refusal);
    }
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => TlsError::Tls(tls.clone()),
        None => TlsError::Io(error),
    }
}

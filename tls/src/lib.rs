//! Milagro TLS: certificate-less TLS between two parties anchored on Bitcoin.
//!
//! No certificate authority takes part. Each side proves who it is with what it already
//! has on chain: a Birth Certificate anchored by a transaction its own key signed. A
//! connection goes through three gates, and application data flows only after all three:
//!
//! 1. **TLS 1.3** (rustls, ring provider) with a throwaway self-signed P-256 certificate
//!    per connection and side. Its extension ([`binding`]) carries the party's
//!    anchor (`txid:input`), its Birth Certificate and a secp256k1 signature by the
//!    certificate's key over both and the TLS key. The custom verifiers accept a
//!    certificate only for that binding, an `active` status and, on the client, the
//!    expected peer (the digest of its Birth Certificate); client authentication is
//!    mandatory. ALPN is [`ALPN`].
//! 2. **Admission**: each side asks a [`PeerDirectory`] (the local registry index, or a
//!    TBS whose answers are SPV-checked) for the claimed anchor: it must be in the chain
//!    with [`Options::min_depth`] confirmations, anchor exactly the presented certificate
//!    with its key, and not be superseded by a later certificate of that key (the
//!    compromised / retired canary). See [`admission`].
//! 3. **ECDH or YAK over Bitcoin** ([`milagro_anchor::kex`]) from the nonces of the two
//!    anchoring signatures, with the TLS exporter value ([`EXPORTER_LABEL`]) as session
//!    context: hello, reply, finished ([`frame`] documents the framing). Both
//!    key-confirmation tags are MACs over the exporter, so a replayed or relayed handshake
//!    fails. YAK is the default and the only protocol a server accepts unless configured:
//!    ECDH has no forward secrecy.
//!
//! A refused peer gets a refusal frame with the reason, and the call returns a typed
//! [`TlsError`].
//!
//! Over TCP, set `TCP_NODELAY` on both sides: the handshake ends with small writes in
//! both directions (the finished frame, then the first application bytes), which Nagle's
//! algorithm and delayed acknowledgements would otherwise hold for about 40 ms.
//!
//! # Main types
//!
//! - [`LocalIdentity`]: this party's key, Birth Certificate and anchoring record with its
//!   recomputed nonce;
//! - [`connect`] / [`accept`] → [`Session`], an `AsyncRead + AsyncWrite` stream that knows
//!   its [`AdmittedPeer`] and its key-agreement [`Established`] session;
//! - [`PeerDirectory`] / [`Standing`]: where anchors are looked up.
//!
//! - [`http`]: an actix-web `App` served on accepted sessions (`http::serve_app`, feature
//!   `server`; handlers read the admitted peer with `http::peer_of`), and HTTP/1.1
//!   requests sent on a connected session with hyper (`http::send`, feature `client`). A
//!   device takes only `client`, so it links no server framework.
//!
//! # What it does not do
//!
//! A party whose certificate is anchored in a batch (no signature of its own on chain)
//! cannot use it: the key agreement needs the nonce of its own signature. The app behind
//! `http::serve_app` authorizes; admission only proves who the peer is.
//!
//! ```no_run
//! # async fn example(
//! #     stream: tokio::net::TcpStream,
//! #     me: milagro_tls::LocalIdentity,
//! #     peer: milagro_anchor::digest::Digest,
//! #     directory: std::sync::Arc<dyn milagro_tls::PeerDirectory>,
//! # ) -> Result<(), milagro_tls::TlsError> {
//! use tokio::io::AsyncWriteExt as _;
//! let mut session =
//!     milagro_tls::connect(stream, &me, peer, directory, &milagro_tls::Options::default()).await?;
//! println!("session {} with {}", session.established().session_id(), session.peer().anchor().txid());
//! session.write_all(b"hello").await?;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod binding;
pub mod certificate;
pub mod danger;
pub mod frame;
mod handshake;
pub mod http;
mod session;
mod verifier;

use std::time::Duration;

use milagro_anchor::anchor_tx::anchor_nonce;
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::kex::{KexError, LocalParty, Protocol};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::nonce::NonceSecret;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::record::TxRecord;

pub use admission::{AdmittedPeer, DirectoryError, PeerDirectory, Refusal, Standing};
pub use certificate::CertificateError;
pub use frame::FrameError;
pub use handshake::{EXPORTER_LABEL, EXPORTER_LEN};
pub use milagro_anchor::kex::Established;
pub use session::{accept, connect, Session};

/// The ALPN protocol id both sides insist on.
pub const ALPN: &[u8] = b"milagro-kex/1";

/// This party: its key, its Birth Certificate and the key-agreement identity of the
/// anchor that certificate was anchored by.
pub struct LocalIdentity {
    key: SecretKey,
    bc: BirthCertificate,
    party: LocalParty,
}

impl LocalIdentity {
    /// The identity of the holder of `key`, whose certificate `bc` is anchored by `record`
    /// (a Birth Certificate record that `key` signed with `nonce`, from
    /// [`anchor_nonce`](milagro_anchor::anchor_tx::anchor_nonce)).
    pub fn new(
        key: SecretKey,
        bc: BirthCertificate,
        record: &TxRecord,
        nonce: NonceSecret,
    ) -> Result<Self, TlsError> {
        let mismatch = |what: &str| Err(TlsError::Identity(what.to_string()));
        if key.public_key() != *bc.public_key() {
            return mismatch("the key is not the birth certificate's key");
        }
        if record.signer != *bc.public_key() {
            return mismatch("the record is signed by another key");
        }
        if record.kind != RecordKind::BirthCertificate || record.digest != bc.digest() {
            return mismatch("the record does not anchor this birth certificate");
        }
        let party = LocalParty::from_record(record, nonce)?;
        Ok(Self { key, bc, party })
    }

    /// The identity of the holder of `key`, whose certificate `bc` is anchored by its own
    /// transaction `anchor_tx` (the nonce of its signature is recomputed; `funding_value`
    /// is the value of the output that transaction spends, which the signature commits to).
    pub fn from_anchor_tx(
        key: SecretKey,
        bc: BirthCertificate,
        anchor_tx: &bitcoin::Transaction,
        funding_value: bitcoin::Amount,
    ) -> Result<Self, TlsError> {
        let nonce = anchor_nonce(&key, anchor_tx, funding_value)
            .map_err(|e| TlsError::Identity(format!("cannot recompute the anchor nonce: {e}")))?;
        let record = TxRecord::from_own_tx(anchor_tx, funding_value)
            .map_err(|e| TlsError::Identity(format!("anchor transaction: {e}")))?;
        Self::new(key, bc, &record, nonce)
    }

    /// The Birth Certificate.
    pub fn birth_certificate(&self) -> &BirthCertificate {
        &self.bc
    }

    /// The role the certificate names.
    pub fn role(&self) -> Role {
        self.bc.role()
    }

    /// The key-agreement identity.
    pub fn party(&self) -> &LocalParty {
        &self.party
    }

    pub(crate) fn key(&self) -> &SecretKey {
        &self.key
    }
}

/// What a connection demands of its peer and how it agrees keys.
#[derive(Debug, Clone)]
pub struct Options {
    /// Confirmations the peer's anchor needs (6 makes it final, as the anchor proofs say).
    pub min_depth: u32,
    /// The protocol [`connect`] runs.
    pub protocol: Protocol,
    /// The protocols [`accept`] agrees to.
    pub accepted: Vec<Protocol>,
    /// The whole handshake (TLS, admission, key agreement) must finish within this.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_depth: 6,
            protocol: Protocol::YakV1,
            accepted: vec![Protocol::YakV1],
            timeout: Duration::from_secs(15),
        }
    }
}

/// Why a connection was not established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// This side refused the peer.
    #[error("peer refused: {0}")]
    Refused(#[from] Refusal),
    /// The peer refused this side, for the reason it gave.
    #[error("the peer refused us: {0}")]
    RefusedByPeer(String),
    /// The TLS layer failed (including a peer's alert refusing our certificate).
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A key-agreement message was refused: bad proof, failed key confirmation, malformed.
    #[error("key agreement: {0}")]
    Kex(#[from] KexError),
    /// The peer asked for a protocol this side does not run.
    #[error("key agreement protocol {0} is not accepted")]
    Protocol(Protocol),
    /// A frame could not be read or written.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The connection failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake took longer than [`Options::timeout`].
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// This side's certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The local identity's parts do not belong together.
    #[error("inconsistent local identity: {0}")]
    Identity(String),
}

impl TlsError {
    /// Whether this side should tell the peer (a refusal frame) before closing: not for
    /// what the peer reported or a dead connection.
    fn is_ours_to_report(&self) -> bool {
        !matches!(
            self,
            Self::RefusedByPeer(_)
                | Self::Io(_)
                | Self::Frame(FrameError::Io(_))
                | Self::Timeout(_)
        )
    }
}

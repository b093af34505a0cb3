//! Envelopes sealed to a public key: ephemeral ECDH on secp256k1, HKDF-SHA256, AES-256-GCM.

use core::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{check_size, EnvelopeError, Purpose, Reader, SenderId, NONCE_LEN, TAG_LEN, VERSION};
use crate::keys::{PublicKey, SecretKey};

/// HKDF salt of the envelope key derivation.
const HKDF_SALT: &[u8] = b"milagro/ecies/v1";

/// First bytes of an envelope's associated data.
const AD_LABEL: &[u8] = b"milagro/envelope/v1";

/// Length of the fixed fields of the wire form: version, purpose, sender length,
/// recipient, ephemeral key, nonce.
const FIXED_LEN: usize = 3 + 2 * PublicKey::LEN + NONCE_LEN;

/// A message sealed to a public key (see the [module docs](super) for the construction and
/// the wire form).
///
/// Only [`seal`] and the decoders make one; holding one says nothing about whether it
/// opens: [`open`] decides that.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedEnvelope {
    purpose: Purpose,
    sender: SenderId,
    recipient: PublicKey,
    ephemeral: k256::PublicKey,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    ciphertext: Vec<u8>,
}

/// The content of an envelope that opened: who it claims to come from, and the plaintext.
#[non_exhaustive]
pub struct Opened {
    /// The sender the envelope was sealed with: bound, not authenticated (see the
    /// [module docs](super)).
    pub sender: SenderId,
    /// The plaintext, wiped when dropped.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("sender", &self.sender)
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .finish()
    }
}

/// Seals `plaintext` to `recipient`, for `purpose`, claiming to come from `sender`.
///
/// Draws the ephemeral key, then the nonce, from `rng`. Fails only if the wire form would
/// exceed [`MAX_SEALED_LEN`](super::MAX_SEALED_LEN).
pub fn seal(
    rng: &mut impl CryptoRngCore,
    recipient: &PublicKey,
    purpose: Purpose,
    sender: &SenderId,
    plaintext: &[u8],
) -> Result<SealedEnvelope, EnvelopeError> {
    let ephemeral = k256::SecretKey::random(rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with(&ephemeral, nonce, recipient, purpose, sender, plaintext)
}

/// [`seal`] with the random choices made: the ephemeral secret and the nonce.
pub(super) fn seal_with(
    ephemeral: &k256::SecretKey,
    nonce: [u8; NONCE_LEN],
    recipient: &PublicKey,
    purpose: Purpose,
    sender: &SenderId,
    plaintext: &[u8],
) -> Result<SealedEnvelope, EnvelopeError> {
    check_size(FIXED_LEN + sender.as_bytes().len() + plaintext.len() + TAG_LEN)?;
    let recipient_point = k256::PublicKey::from_sec1_bytes(&recipient.to_sec1())
        .map_err(|_| EnvelopeError::Internal("re-reading a public key"))?;
    let secret = Zeroizing::new(ephemeral.to_nonzero_scalar());
    let shared = k256::ecdh::diffie_hellman(&*secret, recipient_point.as_affine());
    let mut envelope = SealedEnvelope {
        purpose,
        sender: sender.clone(),
        recipient: *recipient,
        ephemeral: ephemeral.public_key(),
        nonce,
        ciphertext: Vec::with_capacity(plaintext.len() + TAG_LEN),
    };
    let cipher = envelope.cipher(shared.raw_secret_bytes())?;
    // Encrypt in place in a buffer sized for the tag, so the plaintext is never left behind
    // in a reallocated copy.
    envelope.ciphertext.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(
            (&nonce).into(),
            &envelope.associated_data(),
            &mut envelope.ciphertext,
        )
        .map_err(|_| EnvelopeError::Internal("AES-256-GCM encryption"))?;
    envelope.ciphertext.extend_from_slice(&tag);
    Ok(envelope)
}

/// Opens an envelope with the recipient's secret key, if it was sealed for
/// `expected_purpose`.
///
/// The purpose and recipient written in the envelope are checked first (they are public,
/// so saying which one differs reveals nothing); after that every failure is
/// [`EnvelopeError::Decrypt`]. The returned sender is a claim, not a proof: see the
/// [module docs](super).
pub fn open(
    recipient_key: &SecretKey,
    expected_purpose: Purpose,
    envelope: &SealedEnvelope,
) -> Result<Opened, EnvelopeError> {
    if envelope.purpose != expected_purpose {
        return Err(EnvelopeError::WrongPurpose {
            expected: expected_purpose,
            found: envelope.purpose,
        });
    }
    if recipient_key.public_key() != envelope.recipient {
        return Err(EnvelopeError::WrongRecipient {
            found: envelope.recipient,
        });
    }
    let secret = Zeroizing::new(recipient_key.scalar());
    let shared = k256::ecdh::diffie_hellman(&*secret, envelope.ephemeral.as_affine());
    let cipher = envelope.cipher(shared.raw_secret_bytes())?;
    let (ciphertext, tag) = envelope
        .ciphertext
        .split_at(envelope.ciphertext.len().saturating_sub(TAG_LEN));
    let tag = <[u8; TAG_LEN]>::try_from(tag).map_err(|_| EnvelopeError::Decrypt)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place_detached(
            (&envelope.nonce).into(),
            &envelope.associated_data(),
            &mut plaintext,
            (&tag).into(),
        )
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok(Opened {
        sender: envelope.sender.clone(),
        plaintext,
    })
}

impl SealedEnvelope {
    /// What the envelope says it is for (bound: it opens only for this purpose).
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Who the envelope claims to come from (bound, not authenticated).
    pub fn sender(&self) -> &SenderId {
        &self.sender
    }

    /// The public key the envelope is sealed to.
    pub fn recipient(&self) -> &PublicKey {
        &self.recipient
    }

    /// The sender's ephemeral public key, compressed SEC1. Fresh for every honest envelope,
    /// so a recipient that must refuse replays can remember it.
    pub fn ephemeral_key(&self) -> [u8; PublicKey::LEN] {
        sec1(&self.ephemeral)
    }

    /// The wire form (see the [module docs](super)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(FIXED_LEN + self.sender.as_bytes().len() + self.ciphertext.len());
        out.push(VERSION);
        out.push(self.purpose.as_u8());
        self.sender.write_prefixed(&mut out);
        out.extend_from_slice(&self.recipient.to_sec1());
        out.extend_from_slice(&sec1(&self.ephemeral));
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads the wire form: refuses a wrong size, an unknown version or purpose, a key that
    /// is not a compressed curve point, and a ciphertext shorter than its tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        check_size(bytes.len())?;
        let mut reader = Reader(bytes);
        reader.version()?;
        let purpose = Purpose::try_from(reader.byte("purpose")?)?;
        let sender_len = reader.byte("sender length")?;
        let sender = SenderId::new(reader.take(usize::from(sender_len), "sender")?)?;
        let recipient = PublicKey::from_sec1(reader.take(PublicKey::LEN, "recipient key")?)
            .map_err(|_| EnvelopeError::InvalidPoint { field: "recipient" })?;
        let ephemeral = read_point(reader.take(PublicKey::LEN, "ephemeral key")?)?;
        let nonce = reader.array::<NONCE_LEN>("nonce")?;
        let ciphertext = reader.ciphertext()?.to_vec();
        Ok(Self {
            purpose,
            sender,
            recipient,
            ephemeral,
            nonce,
            ciphertext,
        })
    }

    /// The wire form as base64url without padding, the form used in JSON bodies.
    pub fn to_base64(&self) -> String {
        super::to_base64(&self.to_bytes())
    }

    /// Reads the base64url form (no padding, no white space), then the wire form.
    pub fn from_base64(text: &str) -> Result<Self, EnvelopeError> {
        Self::from_bytes(&super::from_base64(text)?)
    }

    /// `AD_LABEL ‖ purpose ‖ len(sender) ‖ sender ‖ recipient ‖ ephemeral`.
    pub(super) fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(AD_LABEL.len() + 2 + 255 + 2 * PublicKey::LEN);
        ad.extend_from_slice(AD_LABEL);
        ad.push(self.purpose.as_u8());
        self.sender.write_prefixed(&mut ad);
        ad.extend_from_slice(&self.recipient.to_sec1());
        ad.extend_from_slice(&sec1(&self.ephemeral));
        ad
    }

    /// The AES-256-GCM cipher keyed by
    /// `HKDF-SHA256(salt, ikm = shared x, info = ephemeral ‖ recipient ‖ purpose)`.
    fn cipher(&self, shared_x: &k256::FieldBytes) -> Result<Aes256Gcm, EnvelopeError> {
        let key = derive_key(
            shared_x,
            &sec1(&self.ephemeral),
            &self.recipient,
            self.purpose,
        )?;
        Ok(Aes256Gcm::new((&*key).into()))
    }
}

/// The envelope key: `HKDF-SHA256(salt, ikm = shared x, info = E ‖ R ‖ purpose)`.
pub(super) fn derive_key(
    shared_x: &k256::FieldBytes,
    ephemeral: &[u8; PublicKey::LEN],
    recipient: &PublicKey,
    purpose: Purpose,
) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
    let mut info = [0u8; 2 * PublicKey::LEN + 1];
    info[..PublicKey::LEN].copy_from_slice(ephemeral);
    info[PublicKey::LEN..2 * PublicKey::LEN].copy_from_slice(&recipient.to_sec1());
    info[2 * PublicKey::LEN] = purpose.as_u8();
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), shared_x)
        .expand(&info, key.as_mut())
        .map_err(|_| EnvelopeError::Internal("HKDF expansion"))?;
    Ok(key)
}

/// Compressed SEC1 encoding of a `k256` point.
fn sec1(point: &k256::PublicKey) -> [u8; PublicKey::LEN] {
    let mut out = [0u8; PublicKey::LEN];
    out.copy_from_slice(point.to_encoded_point(true).as_bytes());
    out
}

/// Reads a 33-byte compressed point (the identity and uncompressed forms are refused).
fn read_point(bytes: &[u8]) -> Result<k256::PublicKey, EnvelopeError> {
    if bytes.len() != PublicKey::LEN {
        return Err(EnvelopeError::InvalidPoint { field: "ephemeral" });
    }
    k256::PublicKey::from_sec1_bytes(bytes)
        .map_err(|_| EnvelopeError::InvalidPoint { field: "ephemeral" })
}

impl fmt::Debug for SealedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedEnvelope")
            .field("purpose", &self.purpose)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .field(
                "ephemeral",
                &format_args!("{}", hex::encode(sec1(&self.ephemeral))),
            )
            .field("nonce", &format_args!("{}", hex::encode(self.nonce)))
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .finish()
    }
}

base64_text_form!(SealedEnvelope);

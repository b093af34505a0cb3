//! Binding an ID token of any OpenID provider to a device's anchored key through the
//! authorization request's `nonce` (ADR 0015), as OpenPubkey does.
//!
//! A third-party provider writes no `cnf.jkt` (ADR 0012) in its ID tokens, but every
//! OpenID provider copies the request's `nonce` into the token it issues (OpenID Connect
//! Core §3.1.2.1, §2). The device sets
//!
//! ```text
//! nonce = base64url(SHA-256(DOMAIN ‖ 0x00 ‖ jkt ‖ salt))
//! ```
//!
//! where `jkt` is the RFC 7638 thumbprint of its anchored key (43 ASCII bytes) and `salt`
//! 32 fresh random bytes, and sends the salt to the D-TA next to the token. The D-TA
//! recomputes the commitment with the thumbprint of the Milagro TLS peer presenting the
//! token: a token got by another device commits to another key, and finding a salt that
//! makes it commit to the thief's key is a SHA-256 second preimage.
//!
//! Why a salted commitment rather than the thumbprint itself as the nonce: the nonce stays
//! fresh per login (its purpose in OpenID Connect, for the device's own replay check), and
//! the provider (and the browser's history, and every log on the front channel the nonce
//! crosses) never sees a stable identifier of the device's key that would link its logins
//! across providers and D-TAs. The salt is not a secret: it only opens the commitment.
//!
//! Pure: the salt's randomness is passed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::dpop::Thumbprint;

/// Domain separation: a hash of this form is never an input of any other commitment.
pub const DOMAIN: &[u8] = b"milagro-trust/id-token-nonce/v1";

/// Length of a salt, in bytes.
pub const SALT_LEN: usize = 32;

/// The salt that opens a nonce commitment: 32 bytes, base64url (no padding) on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceSalt([u8; SALT_LEN]);

/// A salt that is not 32 bytes of canonical base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("a nonce salt is {SALT_LEN} bytes, base64url without padding")]
pub struct MalformedSalt;

impl NonceSalt {
    /// A salt of these bytes (the caller's fresh randomness).
    pub fn from_bytes(bytes: [u8; SALT_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses the wire form: exactly 32 bytes, canonical base64url (one text per salt).
    pub fn parse(text: &str) -> Result<Self, MalformedSalt> {
        let bytes = B64URL.decode(text).map_err(|_| MalformedSalt)?;
        let bytes: [u8; SALT_LEN] = bytes.try_into().map_err(|_| MalformedSalt)?;
        if B64URL.encode(bytes) != text {
            return Err(MalformedSalt);
        }
        Ok(Self(bytes))
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        B64URL.encode(self.0)
    }
}

/// The nonce that commits to the key of thumbprint `jkt` with `salt`: what the device puts
/// in its authorization request, and what the D-TA expects in the token.
pub fn commitment(jkt: &Thumbprint, salt: &NonceSalt) -> String {
    // Every part has a fixed length (the thumbprint is always 43 characters), so the
    // concatenation is unambiguous.
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update([0u8]);
    hash.update(jkt.as_str().as_bytes());
    hash.update(salt.0);
    B64URL.encode(hash.finalize())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn jkt(byte: u8) -> Thumbprint {
        Thumbprint::of(&SecretKey::from_bytes(&[byte; 32]).unwrap().public_key())
    }

    #[test]
    fn the_commitment_depends_on_the_key_and_the_salt_only() {
        let (a, b) = (jkt(1), jkt(2));
        let (s, t) = (
            NonceSalt::from_bytes([7; 32]),
            NonceSalt::from_bytes([8; 32]),
        );
        assert_eq!(commitment(&a, &s), commitment(&a, &s));
        assert_ne!(commitment(&a, &s), commitment(&b, &s));
        assert_ne!(commitment(&a, &s), commitment(&a, &t));
        // A nonce is 43 base64url characters and says nothing readable about the key.
        let nonce = commitment(&a, &s);
        assert_eq!(nonce.len(), 43);
        assert!(!nonce.contains(a.as_str()));
    }

    #[test]
    fn a_known_answer_pins_the_construction() {
        // Recomputed by hand: SHA-256("milagro-trust/id-token-nonce/v1" ‖ 0 ‖ jkt ‖ salt).
        let (a, s) = (jkt(1), NonceSalt::from_bytes([7; 32]));
        let mut input = DOMAIN.to_vec();
        input.push(0);
        input.extend_from_slice(a.as_str().as_bytes());
        input.extend_from_slice(&[7; 32]);
        assert_eq!(commitment(&a, &s), B64URL.encode(Sha256::digest(&input)));
    }

    #[test]
    fn only_canonical_32_byte_salts_parse() {
        let salt = NonceSalt::from_bytes([9; 32]);
        assert_eq!(NonceSalt::parse(&salt.encode()).unwrap(), salt);
        for bad in [
            "",
            "AAAA",
            &B64URL.encode([9u8; 31]),
            &B64URL.encode([9u8; 33]),
            &format!("{}=", salt.encode()),
            &salt.encode().replacen('C', "+", 1),
        ] {
            assert_eq!(NonceSalt::parse(bad), Err(MalformedSalt), "{bad:?}");
        }
    }
}

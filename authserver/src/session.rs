//! Session tokens: compact JWS (JWT) signed with the authentication server's session key,
//! the `session` purpose key its anchored Birth Certificate lists (ADR 0013), so anyone
//! holding the certificate can check one; the anchored key itself signs no token, and a
//! token it signed does not verify. Pure: the time is passed in.
//!
//! ```text
//! header  = {"alg": "ES256K", "typ": "JWT", "kid": <Birth Certificate digest, hex>}
//! claims  = {"iss": public_url, "sub": mpin_id, "iat", "exp", "amr": ["mfa", "pin", "swk"],
//!            "milagro_permit_day": day, "milagro_birth_certificate_digest": digest}
//! token   = b64url(header) "." b64url(claims) "." b64url(r ‖ s)
//! (r, s)  = ECDSA-secp256k1(SHA-256(b64url(header) "." b64url(claims))), RFC 6979, low S
//! ```
//!
//! base64url has no padding (RFC 7515); `ES256K` is RFC 8812's. [`verify`] accepts only
//! that algorithm (never `none`, never a key named by the token), exactly these header
//! and claim members, a low-S signature by the given key, the given certificate digest as
//! `kid` and claim, and `iat <= now < exp` (with [`CLOCK_SKEW_SECS`] for `iat`).

use milagro_anchor::digest::Digest;
use milagro_anchor::jws::{self, JwsError};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_mpin::{Day, MpinId};
pub use milagro_wire::login::SessionClaims;

/// The JWS algorithm: ECDSA over secp256k1 with SHA-256 (RFC 8812).
pub const ALG: &str = jws::ALG;
/// The session token's `typ`.
pub const TYP: &str = "JWT";
/// The authentication methods a session token names (RFC 8176): multi-factor, a PIN,
/// and a software-secured key.
pub const AMR: [&str; 3] = ["mfa", "pin", "swk"];
/// The longest token [`verify`] reads, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// How far in the future `iat` may be (clocks of two verifiers differ a little).
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not three base64url parts of JSON of the expected members, or too long.
    #[error("malformed session token: {0}")]
    Malformed(String),
    /// The header names another algorithm, type or key.
    #[error("session token header refused: {0}")]
    Header(String),
    /// The signature is not a valid low-S signature of this key over the token.
    #[error("the session token's signature does not verify")]
    Signature,
    /// Issued by another authentication server.
    #[error("the session token is for birth certificate {found}, not {expected}")]
    OtherServer {
        /// The digest in the token.
        found: Digest,
        /// The digest expected.
        expected: Digest,
    },
    /// Expired (`exp <= now`) or not yet issued (`iat > now + skew`).
    #[error("the session token is valid from {iat} to {exp}, not at {now}")]
    Expired {
        /// Issued at.
        iat: u64,
        /// Expires at.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
}

/// The claims of a login of `id` with a permit of `day`, at `now` for `lifetime_secs`,
/// by the server `issuer` whose certificate is `digest`.
pub fn claims(
    issuer: &str,
    digest: Digest,
    id: &MpinId,
    day: Day,
    now: u64,
    lifetime_secs: u64,
) -> SessionClaims {
    SessionClaims {
        iss: issuer.to_owned(),
        sub: String::from_utf8_lossy(id.as_bytes()).into_owned(),
        iat: now,
        exp: now.saturating_add(lifetime_secs),
        amr: AMR.iter().map(|m| (*m).to_owned()).collect(),
        milagro_permit_day: day.0,
        milagro_birth_certificate_digest: digest,
    }
}

/// Signs `claims` with `key`: the session key of the certificate `claims` names.
pub fn issue(key: &SecretKey, claims: &SessionClaims) -> String {
    let header = jws::KidHeader::new(TYP, claims.milagro_birth_certificate_digest.to_string());
    jws::sign(key, &header, claims)
}

impl From<JwsError> for SessionError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed(reason) => Self::Malformed(reason),
            JwsError::Header(reason) => Self::Header(reason),
            JwsError::Signature => Self::Signature,
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// Checks `token` as issued by the server with certificate `digest` and session key `key`
/// (both from its anchored Birth Certificate: `key` is
/// `BirthCertificate::purpose_key(KeyPurpose::Session)`, never its `public_key`), at `now`;
/// returns its claims.
pub fn verify(
    token: &str,
    key: &PublicKey,
    digest: &Digest,
    now: u64,
) -> Result<SessionClaims, SessionError> {
    let parts = jws::split(token, MAX_TOKEN_BYTES)?;
    jws::decode_part::<jws::KidHeader>("the header", parts.header)?
        .check(TYP, &digest.to_string())?;
    parts.verify(key)?;
    let claims: SessionClaims = jws::decode_part("the claims", parts.payload)?;
    if claims.milagro_birth_certificate_digest != *digest {
        return Err(SessionError::OtherServer {
            found: claims.milagro_birth_certificate_digest,
            expected: *digest,
        });
    }
    if now >= claims.exp || claims.iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(SessionError::Expired {
            iat: claims.iat,
            exp: claims.exp,
            now,
        });
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine as _;
    use milagro_anchor::keys::Signature;
    use serde_json::{json, Value};

    const NOW: u64 = 1_700_000_000;

    fn server() -> (SecretKey, Digest) {
        (
            SecretKey::from_bytes(&[7; 32]).unwrap(),
            Digest::sha256(b"auth server certificate"),
        )
    }

    fn claims(digest: Digest) -> SessionClaims {
        let id = MpinId::new("ab12").unwrap();
        super::claims("https://auth.test", digest, &id, Day(19_675), NOW, 3600)
    }

    /// `token` with part `index` replaced by `part`.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    fn json_part(value: &Value) -> String {
        B64URL.encode(value.to_string())
    }

    #[test]
    fn a_token_round_trips_and_has_the_documented_shape() {
        let (key, digest) = server();
        let token = issue(&key, &claims(digest));
        let verified = verify(&token, &key.public_key(), &digest, NOW + 10).unwrap();
        assert_eq!(verified, claims(digest));
        assert_eq!(verified.sub, "ab12");
        assert_eq!(verified.exp, NOW + 3600);
        let parts: Vec<&str> = token.split('.').collect();
        let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "ES256K", "typ": "JWT", "kid": digest.to_string()})
        );
        let payload: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["amr"], json!(["mfa", "pin", "swk"]));
        assert_eq!(payload["milagro_permit_day"], 19_675);
        assert_eq!(B64URL.decode(parts[2]).unwrap().len(), 64);
        assert!(!token.contains('='));
        // The signature is low-S ECDSA over SHA-256 of the signing input.
        let signature = Signature::from_compact(&B64URL.decode(parts[2]).unwrap()).unwrap();
        let signed = Digest::sha256(format!("{}.{}", parts[0], parts[1]).as_bytes());
        key.public_key().verify_digest(&signed, &signature).unwrap();
    }

    #[test]
    fn tampered_tokens_and_other_keys_are_refused() {
        let (key, digest) = server();
        let public = key.public_key();
        let token = issue(&key, &claims(digest));
        let mut longer = claims(digest);
        longer.exp += 86_400;
        let mut other_sub = claims(digest);
        other_sub.sub = "cd34".into();
        let other_key = SecretKey::from_bytes(&[8; 32]).unwrap();
        let other_digest = Digest::sha256(b"another server");
        let parts: Vec<&str> = token.split('.').collect();
        let mut flipped = B64URL.decode(parts[2]).unwrap();
        flipped[10] ^= 1;
        let cases = [
            with_part(&token, 1, &jws::encode_part(&longer)),
            with_part(&token, 1, &jws::encode_part(&other_sub)),
            with_part(&token, 2, &B64URL.encode(&flipped)),
            with_part(&token, 2, ""),
            issue(&other_key, &claims(digest)),
        ];
        for (i, forged) in cases.iter().enumerate() {
            assert_eq!(
                verify(forged, &public, &digest, NOW),
                Err(SessionError::Signature),
                "case {i}"
            );
        }
        assert!(matches!(
            verify(&token, &public, &other_digest, NOW),
            Err(SessionError::Header(_))
        ));
        // Signed by the right key with the right kid, but claiming another certificate.
        let mut other_claim = claims(digest);
        other_claim.milagro_birth_certificate_digest = other_digest;
        let header = json!({"alg": "ES256K", "typ": "JWT", "kid": digest.to_string()});
        let signing_input = format!("{}.{}", json_part(&header), jws::encode_part(&other_claim));
        let signature = key.sign_digest(&Digest::sha256(signing_input.as_bytes()));
        let mixed = format!("{signing_input}.{}", B64URL.encode(signature.to_compact()));
        assert!(matches!(
            verify(&mixed, &public, &digest, NOW),
            Err(SessionError::OtherServer { .. })
        ));
    }

    #[test]
    fn other_algorithms_headers_and_shapes_are_refused() {
        let (key, digest) = server();
        let public = key.public_key();
        let token = issue(&key, &claims(digest));
        let kid = digest.to_string();
        let header = |value: Value| with_part(&token, 0, &json_part(&value));
        let unsigned = format!(
            "{}.{}.",
            json_part(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
            token.split('.').nth(1).unwrap()
        );
        // Each forged token, and the refusal it gets.
        let cases = [
            (unsigned, "header"),
            (
                header(json!({"alg": "none", "typ": "JWT", "kid": kid})),
                "header",
            ),
            (
                header(json!({"alg": "ES256", "typ": "JWT", "kid": kid})),
                "header",
            ),
            (
                header(json!({"alg": "HS256", "typ": "JWT", "kid": kid})),
                "header",
            ),
            (
                header(json!({"alg": "ES256K", "typ": "at+jwt", "kid": kid})),
                "header",
            ),
            (
                header(json!({"alg": "ES256K", "typ": "JWT", "kid": kid, "jwk": {}})),
                "malformed",
            ),
            (header(json!({"alg": "ES256K", "typ": "JWT"})), "malformed"),
            (format!("{token}.x"), "malformed"),
            (token.replacen('.', "", 1), "malformed"),
            (with_part(&token, 0, "!!"), "malformed"),
            ("x".repeat(MAX_TOKEN_BYTES + 1), "malformed"),
            (String::new(), "malformed"),
        ];
        for (i, (forged, expected)) in cases.iter().enumerate() {
            let found = match verify(forged, &public, &digest, NOW) {
                Err(SessionError::Header(_)) => "header",
                Err(SessionError::Malformed(_)) => "malformed",
                other => panic!("case {i}: {other:?}"),
            };
            assert_eq!(found, *expected, "case {i}: {forged}");
        }
    }

    #[test]
    fn a_token_is_valid_from_its_issue_to_its_expiry_only() {
        let (key, digest) = server();
        let token = issue(&key, &claims(digest));
        let at = |now| verify(&token, &key.public_key(), &digest, now);
        assert!(at(NOW).is_ok());
        assert!(at(NOW + 3599).is_ok());
        assert!(at(NOW - CLOCK_SKEW_SECS).is_ok());
        for now in [NOW + 3600, NOW + 100_000, NOW - CLOCK_SKEW_SECS - 1] {
            assert!(
                matches!(at(now), Err(SessionError::Expired { .. })),
                "{now}"
            );
        }
    }
}

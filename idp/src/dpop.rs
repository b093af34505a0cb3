//! DPoP (RFC 9449) at the IdP: a `DPoP` proof at the token endpoint binds the tokens it
//! issues to the proof's key (ADR 0012), and a DPoP-bound access token is accepted at
//! `/userinfo` only with a proof by that key.
//!
//! The proof itself is checked by [`milagro_anchor::dpop::verify`] (pure: signature, type,
//! algorithm, `htm`, `htu`, `iat`, `ath`); this module adds what needs state: a proof's
//! `jti` is accepted once ([`SeenProofs`]), in bounded memory.
//!
//! DPoP is optional at the token endpoint, as RFC 9449 lets a server choose: a standard
//! client that sends no proof gets Bearer tokens, as before. A proof that is sent must
//! verify, and a grant bound once (a code or device authorization redeemed with a proof,
//! and the refresh tokens it yields) needs a proof by the same key at every later use.
//! What requires binding is the relying party: a D-TA accepts only ID tokens whose
//! `cnf.jkt` is the key of the device presenting them, so a Milagro device always sends
//! a proof.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use milagro_anchor::dpop::{self, VerifiedProof};
use sha2::{Digest as _, Sha256};

use crate::oauth::OAuthError;

/// How many proofs are remembered at most. A proof is remembered for
/// [`dpop::MAX_AGE_SECS`] after its `iat` (about a minute), so this admits about 1,500
/// proofs a second, above what the IdP's token endpoint serves; past it a proof is
/// refused (503, with `Retry-After`) rather than forgotten early, which would let it be
/// replayed.
pub const SEEN_CAPACITY: usize = 100_000;

/// The `jti`s of the proofs accepted within their window, each keyed with the proof's key
/// (one client's identifiers never collide with another's): a replay is refused.
#[derive(Debug)]
pub struct SeenProofs {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<[u8; 32], u64>,
    order: VecDeque<([u8; 32], u64)>,
}

/// Why a verified proof is still not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeenError {
    /// Its `jti` was accepted before, within its window.
    #[error("the dpop proof {jti:?} was already used")]
    Replayed {
        /// The `jti`.
        jti: String,
    },
    /// The cache is full of proofs still within their window.
    #[error("too many dpop proofs in the last {} s", dpop::MAX_AGE_SECS)]
    Full,
}

impl SeenProofs {
    /// An empty cache of at most `capacity` proofs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Accepts `proof` at `now` if its `jti` was not accepted before within its window.
    pub fn first_use(&self, proof: &VerifiedProof, now: u64) -> Result<(), SeenError> {
        let mut hasher = Sha256::new();
        hasher.update(proof.thumbprint().as_str());
        hasher.update([0]);
        hasher.update(proof.jti());
        let key: [u8; 32] = hasher.finalize().into();
        // A proof whose `iat` is this old is refused by the window check anyway.
        let until = proof.iat().saturating_add(dpop::MAX_AGE_SECS);
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget what lapsed, oldest first (entries lapse in about the order they came).
        while let Some(&(old, lapses)) = seen.order.front() {
            if lapses >= now {
                break;
            }
            seen.order.pop_front();
            if seen.until.get(&old) == Some(&lapses) {
                seen.until.remove(&old);
            }
        }
        if seen.until.get(&key).is_some_and(|&lapses| lapses >= now) {
            return Err(SeenError::Replayed {
                jti: proof.jti().to_owned(),
            });
        }
        if seen.order.len() >= self.capacity {
            return Err(SeenError::Full);
        }
        seen.until.insert(key, until);
        seen.order.push_back((key, until));
        Ok(())
    }
}

/// The request's DPoP proof, if it sent one; two `DPoP` headers are refused (RFC 9449
/// §4.3: exactly one).
pub(crate) fn proof_of(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let mut values = req.headers().get_all(dpop::HEADER);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_proof("more than one DPoP header"));
    }
    let text = first
        .to_str()
        .map_err(|_| invalid_proof("the DPoP header is not text"))?;
    Ok(Some(text.trim().to_owned()))
}

/// `invalid_dpop_proof` (400 at the token endpoint, RFC 9449 §5).
pub(crate) fn invalid_proof(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_dpop_proof", description)
}

/// Checks `proof` for `method` on `uri` (with `access_token`, at a resource) at `now` and
/// remembers its `jti`: the proof, whose key's thumbprint tokens are bound to.
pub(crate) fn check(
    seen: &SeenProofs,
    proof: &str,
    request: &dpop::Request<'_>,
    now: u64,
) -> Result<VerifiedProof, OAuthError> {
    let verified = dpop::verify(proof, request, now).map_err(|e| invalid_proof(e.to_string()))?;
    seen.first_use(&verified, now).map_err(|e| match e {
        SeenError::Full => OAuthError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            e.to_string(),
        ),
        SeenError::Replayed { .. } => invalid_proof(e.to_string()),
    })?;
    Ok(verified)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_anchor::keys::SecretKey;

    const URI: &str = "http://idp.milagro.test/token";

    fn proof(key: &SecretKey, jti: &str, iat: u64) -> VerifiedProof {
        let request = dpop::Request {
            method: "POST",
            uri: URI,
            access_token: None,
        };
        dpop::verify(&dpop::sign(key, &request, jti, iat), &request, iat).unwrap()
    }

    #[test]
    fn a_proof_is_accepted_once_within_its_window_and_memory_stays_bounded() {
        let seen = SeenProofs::new(3);
        let (a, b) = (
            SecretKey::from_bytes(&[1; 32]).unwrap(),
            SecretKey::from_bytes(&[2; 32]).unwrap(),
        );
        let now = 1_900_000_000;
        seen.first_use(&proof(&a, "j1", now), now).unwrap();
        assert_eq!(
            seen.first_use(&proof(&a, "j1", now), now + dpop::MAX_AGE_SECS),
            Err(SeenError::Replayed { jti: "j1".into() })
        );
        // Another key's identical jti is another proof.
        seen.first_use(&proof(&b, "j1", now), now).unwrap();
        seen.first_use(&proof(&a, "j2", now), now).unwrap();
        // Full of live proofs: refused rather than forgetting one early.
        assert_eq!(
            seen.first_use(&proof(&a, "j3", now), now + 1),
            Err(SeenError::Full)
        );
        // Once they lapse (and the window check refuses their replays) they are
        // forgotten, and new proofs come in.
        let later = now + dpop::MAX_AGE_SECS + 1;
        seen.first_use(&proof(&a, "j3", later), later).unwrap();
        assert_eq!(seen.inner.lock().unwrap().order.len(), 1);
    }

    #[test]
    fn a_request_carries_at_most_one_proof() {
        use actix_web::test::TestRequest;
        let none = TestRequest::default().to_http_request();
        assert_eq!(proof_of(&none).unwrap(), None);
        let one = TestRequest::default()
            .insert_header((dpop::HEADER, " a.b.c "))
            .to_http_request();
        assert_eq!(proof_of(&one).unwrap().as_deref(), Some("a.b.c"));
        let two = TestRequest::default()
            .append_header((dpop::HEADER, "a.b.c"))
            .append_header((dpop::HEADER, "d.e.f"))
            .to_http_request();
        assert_eq!(proof_of(&two).unwrap_err().code(), "invalid_dpop_proof");
    }

    #[test]
    fn a_replayed_or_forged_proof_is_an_invalid_dpop_proof() {
        let seen = SeenProofs::new(10);
        let key = SecretKey::from_bytes(&[1; 32]).unwrap();
        let now = 1_900_000_000;
        let request = dpop::Request {
            method: "POST",
            uri: URI,
            access_token: None,
        };
        let signed = dpop::sign(&key, &request, "j1", now);
        let bound = check(&seen, &signed, &request, now).unwrap();
        assert_eq!(bound.key(), &key.public_key());
        assert_eq!(bound.thumbprint(), &dpop::Thumbprint::of(&key.public_key()));
        let again = check(&seen, &signed, &request, now + 1).unwrap_err();
        assert_eq!(again.code(), "invalid_dpop_proof");
        assert!(again.description().contains("already used"), "{again}");
        let elsewhere = dpop::Request {
            uri: "http://idp.milagro.test/userinfo",
            ..request
        };
        let signed = dpop::sign(&key, &request, "j2", now);
        assert_eq!(
            check(&seen, &signed, &elsewhere, now).unwrap_err().code(),
            "invalid_dpop_proof"
        );
    }
}

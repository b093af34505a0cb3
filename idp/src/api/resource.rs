//! What every protected resource of the IdP checks of the access token it is shown: the
//! token is live, and a DPoP-bound token comes with a fresh proof by its key for this
//! very request (RFC 9449 §7), while a bound token presented as a bearer token is refused
//! (§7.2). `/userinfo` and `/v1/devices` both go through [`grant_of`].

use milagro_anchor::dpop::{self, VerifiedProof};

use super::Scheme;
use crate::dpop::check as check_proof;
use crate::grants::Authorization;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// The grant behind `token`, presented with `scheme` (and `proof`) for `method` on
/// `path`; with the checked proof when the token is DPoP-bound. Blocking (sled).
pub(crate) fn grant_of(
    state: &AppState,
    scheme: Scheme,
    token: &str,
    proof: Option<String>,
    method: &str,
    path: &str,
    now: u64,
) -> Result<(Authorization, Option<VerifiedProof>), OAuthError> {
    let auth = state.grants.access(token, now)?;
    let proved = match (&auth.jkt, scheme, proof) {
        (None, Scheme::Bearer, _) => None,
        (None, Scheme::Dpop, _) => {
            return Err(OAuthError::invalid_token(
                "the access token is not DPoP-bound: present it as Bearer",
            ))
        }
        (Some(_), Scheme::Bearer, _) | (Some(_), Scheme::Dpop, None) => {
            return Err(OAuthError::invalid_dpop_token(
                "the access token is DPoP-bound: present it with a DPoP proof by its key",
            ))
        }
        (Some(jkt), Scheme::Dpop, Some(proof)) => {
            let uri = format!("{}{path}", state.issuer());
            let request = dpop::Request {
                method,
                uri: &uri,
                access_token: Some(token),
            };
            let proved = check_proof(&state.seen_proofs, &proof, &request, now)
                .map_err(|e| OAuthError::invalid_dpop_token(e.description()))?;
            if proved.thumbprint() != jkt {
                return Err(OAuthError::invalid_dpop_token(
                    "the DPoP proof is by another key than the token's",
                ));
            }
            Some(proved)
        }
    };
    Ok((auth, proved))
}

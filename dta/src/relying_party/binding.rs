//! Step 4: a token counts only for the device it was issued to, the admitted Milagro TLS
//! peer presenting it, identified by the RFC 7638 thumbprint of its anchored key. Pure.
//!
//! - An anchored IdP writes the key in the token's confirmation claim `cnf.jkt` (RFC 7800,
//!   RFC 9449 §6.1) when the device proves it with DPoP (ADR 0012): [`check_binding`].
//! - A third-party provider knows nothing of DPoP by ES256K, but echoes the authorization
//!   request's `nonce`, which the device sets to a commitment to its key
//!   ([`milagro_anchor::id_token_nonce`], ADR 0015): [`check_nonce_binding`].

use milagro_anchor::dpop::{Confirmation, Thumbprint};
use milagro_anchor::id_token_nonce::{commitment, NonceSalt};
use milagro_anchor::keys::PublicKey;

use super::LoginError;

/// An anchored IdP's token: its confirmation claim `cnf` must name `device`, the anchored
/// key of the Milagro TLS peer presenting it, by its RFC 7638 thumbprint.
pub fn check_binding(cnf: Option<&Confirmation>, device: &PublicKey) -> Result<(), LoginError> {
    let bound = &cnf.ok_or(LoginError::NotBound)?.jkt;
    let presented = Thumbprint::of(device);
    if *bound != presented {
        return Err(LoginError::BoundToAnotherKey {
            bound: bound.clone(),
            presented,
        });
    }
    Ok(())
}

/// A web-PKI IdP's token: its `nonce` must be the commitment to `device`'s thumbprint
/// opened by `salt` (sent by the device with the token).
pub fn check_nonce_binding(
    nonce: Option<&str>,
    salt: Option<&NonceSalt>,
    device: &PublicKey,
) -> Result<(), LoginError> {
    let nonce = nonce.ok_or(LoginError::NonceNotBound(
        "it has no nonce (log in with the nonce committing to the device key)",
    ))?;
    let salt = salt.ok_or(LoginError::NonceNotBound(
        "no nonce_salt was sent with it to open its nonce",
    ))?;
    let presented = Thumbprint::of(device);
    // Not a secret (the nonce travelled through the browser, the salt comes with it), so
    // an ordinary comparison leaks nothing.
    if commitment(&presented, salt) != nonce {
        return Err(LoginError::NonceForAnotherKey { presented });
    }
    Ok(())
}

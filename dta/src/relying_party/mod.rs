//! The D-TA as an OpenID Connect relying party: an ID token counts only if it comes from
//! an IdP the D-TA trusts, by the trust mode the operator chose for that IdP, and only for
//! the device it was issued to.
//!
//! For each token ([`RelyingParty::verify`]), blocking:
//!
//! 1. its `iss` (read before any check) must be a configured trusted IdP;
//! 2. the IdP's token-signing keys are established by its trust mode ([`IdpTrust`]):
//!    - **anchored** ([`anchored`], ADR 0010): the IdP's discovery document must name the
//!      configured Birth Certificate digest, anchored by the certificate's own key in the
//!      D-TA's own index, and the keys are taken only from its JWKS signed with that
//!      anchored key (`signed_jwks_uri`); the channel is not what makes it trusted;
//!    - **web PKI** ([`web_pki`], ADR 0015): a third-party OpenID provider, trusted because
//!      the operator named its `https://` issuer: its discovery document (whose `issuer`
//!      must be the configured one exactly) and the JWK Set at its `jwks_uri` are fetched
//!      over HTTPS verified against `[outbound_http]`'s roots; here the channel *is* the
//!      trust, so nothing but verified HTTPS is accepted;
//! 3. the token must verify with the `openidconnect` crate against those keys: signature
//!    (ES256 for an anchored IdP; RS256 or ES256 for a web-PKI one; never `none` or an
//!    HMAC), the key chosen by `kid`, `iss`, `aud` = the D-TA's client id at that IdP,
//!    `exp`;
//! 4. the token must be bound to the key of the device presenting it ([`binding`]):
//!    - anchored: its `cnf.jkt`, written by the IdP when the device proved its key with
//!      DPoP (ADR 0012), must be the RFC 7638 thumbprint of the admitted Milagro TLS peer's
//!      anchored key;
//!    - web PKI: its `nonce`, which the device chose and every provider echoes, must be the
//!      commitment to that thumbprint opened by the `nonce_salt` sent with the token
//!      ([`milagro_anchor::id_token_nonce`], ADR 0015);
//!
//!    else 401 `token_not_bound` or `token_bound_to_another_key`. A stolen token is worth
//!    nothing on any other device: without this, a token got for one device would get
//!    shares for its subject under the thief's key, which time permits would then renew
//!    without a token.
//!
//! Step 2's fetches are kept for [`CHECKED_FOR`] per IdP ([`CheckedIdps`]), and never past
//! a signed JWKS's own expiry: a token that verifies against the keys of an IdP checked
//! that recently needs no request to it. A token that does not is checked afresh (the IdP
//! may have rotated its keys), so the cache never turns a good token away; the price is
//! that an IdP whose anchor is superseded, or whose key was withdrawn, keeps its standing
//! for at most [`CHECKED_FOR`] more.
//!
//! IdPs are reached over HTTPS verified against `[outbound_http]`'s roots (plain HTTP only
//! to a loopback anchored issuer unless allowed; never for a web-PKI one;
//! [`milagro_http_client`]), one client kept in [`CheckedIdps`] so its connections are
//! reused, with no redirects followed.

mod anchored;
pub mod binding;
mod web_pki;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use milagro_anchor::digest::Digest;
use milagro_anchor::dpop::{Confirmation, Thumbprint};
use milagro_anchor::id_token_nonce::NonceSalt;
use milagro_anchor::keys::PublicKey;
use milagro_http_client::{ClientError, ClientOptions, Outbound};
use milagro_tls::PeerDirectory;
use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClientId, IdToken, IssuerUrl, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use binding::{check_binding, check_nonce_binding};

/// The ID token's claims beyond OpenID Connect's that the D-TA reads: `cnf` (RFC 7800).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BindingClaims {
    #[serde(default)]
    cnf: Option<Confirmation>,
}

impl AdditionalClaims for BindingClaims {}

/// An ID token that may carry `cnf`.
type BoundIdToken = IdToken<
    BindingClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Why the D-TA believes an IdP's signing keys (`trust` in `[[trusted_idps]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdpTrust {
    /// An IdP of this network: its anchored Birth Certificate (this digest) vouches for
    /// its keys by a signed JWKS (ADR 0010), and its tokens carry `cnf.jkt` (ADR 0012).
    Anchored {
        /// The digest of its anchored Birth Certificate.
        bc_digest: Digest,
    },
    /// A third-party OpenID provider: its keys are those its `https://` issuer serves over
    /// verified HTTPS (discovery, then `jwks_uri`), and its tokens are bound to the device
    /// through their `nonce` (ADR 0015).
    WebPki,
}

/// An IdP the D-TA accepts ID tokens from (`[[trusted_idps]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// Its issuer identifier, exactly as in its tokens.
    pub issuer: String,
    /// Why its keys are believed.
    pub trust: IdpTrust,
    /// The D-TA's client id at that IdP: the audience its tokens must name.
    pub client_id: String,
}

/// A verified login: who the IdP says the user is, on the device whose key the token is
/// bound to. Only [`RelyingParty::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogin {
    issuer: String,
    subject: String,
}

impl VerifiedLogin {
    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject (`sub`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// Why an ID token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Not an ID token at all, or a `nonce_salt` that is not one.
    #[error("malformed id token: {0}")]
    Malformed(String),
    /// Its issuer is not a trusted IdP.
    #[error("the issuer {0:?} is not an IdP this D-TA trusts")]
    Untrusted(String),
    /// The IdP is not the anchored party the configuration names.
    #[error("the IdP {issuer} is not the anchored party configured: {reason}")]
    NotAnchored {
        /// The issuer.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// The IdP's token-signing keys are not vouched for by its anchored key: its signed
    /// JWKS is missing, malformed, stale, about another party, or not signed by the key
    /// of its certificate (an on-path attacker serving its own keys).
    #[error("the signing keys served for {issuer} are not bound to its anchored key: {reason}")]
    KeysNotBound {
        /// The issuer.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// A web-PKI IdP's discovery document or key set cannot be used: it names another
    /// issuer, a `jwks_uri` that is not `https://`, or no RS256/ES256 key the D-TA accepts.
    #[error("the signing keys of {issuer} cannot be taken from its discovery document: {reason}")]
    KeysNotUsable {
        /// The issuer.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// The token verifies but is bound to no key (no `cnf.jkt`): the device did not prove
    /// its key with DPoP when it got it, so any device could present it.
    #[error("the id token is not bound to a device key (no cnf.jkt): log in again with dpop")]
    NotBound,
    /// A web-PKI IdP's token verifies but nothing binds it to a device key: it has no
    /// `nonce`, or the request no `nonce_salt` to open it.
    #[error("the id token is not bound to a device key: {0}")]
    NonceNotBound(&'static str),
    /// The token is bound to another key than the presenting device's: got by one device,
    /// presented by another (a stolen token).
    #[error(
        "the id token is bound to key {bound}, not to the presenting device's key {presented}"
    )]
    BoundToAnotherKey {
        /// The thumbprint the token names.
        bound: Thumbprint,
        /// The thumbprint of the device's anchored key.
        presented: Thumbprint,
    },
    /// A web-PKI IdP's token whose `nonce` does not commit to the presenting device's key
    /// with the salt sent: got by another device (a stolen token), or a wrong salt.
    #[error(
        "the id token's nonce does not commit to the presenting device's key {presented} with the nonce_salt sent"
    )]
    NonceForAnotherKey {
        /// The thumbprint of the device's anchored key.
        presented: Thumbprint,
    },
    /// The token does not verify (signature, audience, expiry...).
    #[error("the id token does not verify: {0}")]
    Invalid(String),
    /// The IdP or the node could not be reached (or the IdP's HTTPS did not verify).
    #[error("cannot check the IdP now: {0}")]
    Unavailable(String),
}

/// How long an IdP's checked keys are reused.
pub const CHECKED_FOR: Duration = Duration::from_secs(60);

/// The largest IdP document read (discovery, certificate, JWKS), in bytes.
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024;

/// Keys established for an IdP by its trust mode, and when they stop counting (Unix
/// seconds): a signed JWKS's own expiry, or the end of [`CHECKED_FOR`].
#[derive(Debug, Clone)]
struct CheckedKeys {
    keys: CoreJsonWebKeySet,
    expires: u64,
}

/// The keys of the IdPs checked in the last [`CHECKED_FOR`], by issuer, and the HTTP
/// client the IdPs are fetched with.
#[derive(Debug)]
pub struct CheckedIdps {
    checked: Mutex<HashMap<String, (Instant, CheckedKeys)>>,
    outbound: Outbound,
    http: reqwest::blocking::Client,
}

impl CheckedIdps {
    /// None checked yet; IdPs are fetched under `options` (the CA bundle is read now).
    pub fn new(options: &ClientOptions) -> Result<Self, ClientError> {
        let outbound = Outbound::new(options)?;
        // An IdP's documents are fetched where its issuer says, never elsewhere.
        let http = outbound
            .builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self {
            checked: Mutex::default(),
            outbound,
            http,
        })
    }

    fn fresh(&self, issuer: &str, now: u64) -> Option<CoreJsonWebKeySet> {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked
            .get(issuer)
            .filter(|(at, keys)| at.elapsed() < CHECKED_FOR && now < keys.expires)
            .map(|(_, keys)| keys.keys.clone())
    }

    fn keep(&self, issuer: &str, keys: CheckedKeys) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.insert(issuer.to_owned(), (Instant::now(), keys));
    }
}

/// Verifies ID tokens from the trusted IdPs.
pub struct RelyingParty<'a> {
    /// The trusted IdPs.
    pub idps: &'a [TrustedIdp],
    /// The IdPs checked recently.
    pub checked: &'a CheckedIdps,
    /// Where the IdPs' anchors are looked up.
    pub directory: Arc<dyn PeerDirectory>,
    /// Confirmations an IdP's anchor needs.
    pub min_depth: u32,
}

/// What a verified token says about the device it was issued to.
struct Evidence {
    cnf: Option<Confirmation>,
    nonce: Option<String>,
}

impl RelyingParty<'_> {
    /// Checks `id_token`, presented by the admitted peer whose anchored key is `device`
    /// with `nonce_salt` (the opening of a web-PKI token's nonce; not read for an anchored
    /// IdP, whose tokens carry `cnf.jkt`). See the module documentation. Blocking: call it
    /// on a blocking thread, never inside an async runtime.
    pub fn verify(
        &self,
        id_token: &str,
        nonce_salt: Option<&str>,
        device: &PublicKey,
    ) -> Result<VerifiedLogin, LoginError> {
        let salt = nonce_salt
            .map(NonceSalt::parse)
            .transpose()
            .map_err(|e| LoginError::Malformed(format!("nonce_salt: {e}")))?;
        let (idp, login, evidence) = self.verify_signed(id_token)?;
        match idp.trust {
            IdpTrust::Anchored { .. } => check_binding(evidence.cnf.as_ref(), device)?,
            IdpTrust::WebPki => {
                binding::check_nonce_binding(evidence.nonce.as_deref(), salt.as_ref(), device)?
            }
        }
        Ok(login)
    }

    /// Steps 1 to 3: the IdP, the login and what the token says of its device.
    fn verify_signed(
        &self,
        id_token: &str,
    ) -> Result<(&TrustedIdp, VerifiedLogin, Evidence), LoginError> {
        let token: BoundIdToken = id_token
            .trim()
            .parse()
            .map_err(|e| LoginError::Malformed(format!("{e}")))?;
        // Only to choose the IdP; everything is verified below.
        let unverified = token
            .claims(
                &CoreIdTokenVerifier::new_insecure_without_verification(),
                |_: Option<&Nonce>| Ok(()),
            )
            .map_err(|e| LoginError::Invalid(e.to_string()))?;
        let claimed = unverified.issuer().as_str().to_owned();
        let idp = self
            .idps
            .iter()
            .find(|idp| idp.issuer == claimed)
            .ok_or(LoginError::Untrusted(claimed))?;
        if let Some(keys) = self.checked.fresh(&idp.issuer, milagro_service::unix_now()) {
            if let Ok((login, evidence)) = verify_with(idp, &token, keys) {
                return Ok((idp, login, evidence));
            }
        }
        let keys = match &idp.trust {
            IdpTrust::Anchored { bc_digest } => self.anchored_keys(idp, bc_digest)?,
            IdpTrust::WebPki => self.web_pki_keys(idp)?,
        };
        self.checked.keep(&idp.issuer, keys.clone());
        let (login, evidence) = verify_with(idp, &token, keys.keys)?;
        Ok((idp, login, evidence))
    }
}

/// The signature algorithms accepted from `idp`: what its kind of IdP signs with, and no
/// other (so never `none`, never an HMAC keyed with something public).
fn allowed_algs(idp: &TrustedIdp) -> Vec<CoreJwsSigningAlgorithm> {
    match idp.trust {
        // This project's IdP signs ES256 only (idp/src/keys.rs).
        IdpTrust::Anchored { .. } => vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256],
        // RS256 is the one algorithm every OpenID provider must offer (OpenID Connect
        // Discovery §3), ES256 the common elliptic-curve one.
        IdpTrust::WebPki => vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ],
    }
}

/// Verifies `token` with `keys` (signature by the key its `kid` names, `iss`, `aud`,
/// `exp`); the login and what the token says of its device.
fn verify_with(
    idp: &TrustedIdp,
    token: &BoundIdToken,
    keys: CoreJsonWebKeySet,
) -> Result<(VerifiedLogin, Evidence), LoginError> {
    let issuer = IssuerUrl::new(idp.issuer.clone())
        .map_err(|e| LoginError::Untrusted(format!("{}: {e}", idp.issuer)))?;
    let verifier =
        CoreIdTokenVerifier::new_public_client(ClientId::new(idp.client_id.clone()), issuer, keys)
            .set_allowed_algs(allowed_algs(idp));
    // The nonce is checked against the presenting device's key by the caller (step 4), not
    // against a value kept here: the D-TA never saw the authorization request.
    let claims = token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map_err(|e| LoginError::Invalid(e.to_string()))?;
    Ok((
        VerifiedLogin {
            issuer: idp.issuer.clone(),
            subject: claims.subject().as_str().to_owned(),
        },
        Evidence {
            cnf: claims.additional_claims().cnf.clone(),
            nonce: claims.nonce().map(|n| n.secret().clone()),
        },
    ))
}

/// `error` and its sources, so that a log line says why (say, the certificate an IdP
/// served is not trusted) and not only that a request failed.
fn with_sources(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The body at `url`, at most [`MAX_DOCUMENT_BYTES`].
fn get_body(http: &reqwest::blocking::Client, url: &str) -> Result<Vec<u8>, LoginError> {
    use std::io::Read as _;
    let unavailable = |e: String| LoginError::Unavailable(format!("{url}: {e}"));
    let response = http
        .get(url)
        .send()
        .map_err(|e| unavailable(with_sources(&e)))?;
    if !response.status().is_success() {
        return Err(unavailable(response.status().to_string()));
    }
    let mut body = Vec::new();
    response
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| unavailable(e.to_string()))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(unavailable(format!(
            "longer than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(body)
}

fn get_json(http: &reqwest::blocking::Client, url: &str) -> Result<Value, LoginError> {
    serde_json::from_slice(&get_body(http, url)?)
        .map_err(|e| LoginError::Unavailable(format!("{url}: not JSON: {e}")))
}

#[cfg(test)]
mod tests;

//! The D-TA as an OpenID Connect relying party: an ID token counts only if it comes from
//! an IdP the D-TA trusts, and that IdP is the anchored party the operator named.
//!
//! For each token ([`RelyingParty::verify`]), blocking:
//!
//! 1. its `iss` (read before any check) must be a configured trusted IdP;
//! 2. the IdP's discovery document must name the configured Birth Certificate digest
//!    (`milagro_birth_certificate_digest`), and its anchoring transaction
//!    (`milagro_anchor_txid`) must anchor exactly that digest, signed by its key, at least
//!    `min_peer_depth` deep and not superseded, by the D-TA's own index and node
//!    ([`PeerDirectory`]), and the certificate the IdP serves must be that digest, an
//!    active `idp`, whose key signed the anchor: the IdP's URL alone proves nothing;
//! 3. the token-signing keys are taken only from the IdP's JWKS signed with its anchored
//!    key (`signed_jwks_uri`, under the issuer; [`milagro_anchor::signed_jwks`]): the
//!    signature must verify with the key of the certificate checked in step 2, for this
//!    issuer and digest, and be fresh (ADR 0010). The plain `jwks_uri` is never read: over
//!    plain HTTP anyone on the path could serve their own keys there (else 401
//!    `idp_keys_not_bound`);
//! 4. the token must verify with the `openidconnect` crate against those keys (ES256;
//!    signature, `iss`, `aud` = the D-TA's client id at that IdP, `exp`);
//! 5. the token must be bound to the key of the device presenting it (ADR 0012): its
//!    `cnf.jkt` (RFC 7800, RFC 9449 §6.1), which the IdP writes when the device proved its
//!    key with DPoP at the token endpoint, must be the RFC 7638 thumbprint of the admitted
//!    Milagro TLS peer's anchored key ([`check_binding`]; else 401 `token_not_bound` or
//!    `token_bound_to_another_key`).
//!
//! Nothing else in the discovery document needs a signature: the issuer and digest must
//! equal the configuration, the txid is checked against the D-TA's own index, and the
//! signed JWKS carries its own binding wherever it is fetched from.
//!
//! Steps 2 and 3's fetches are kept for [`CHECKED_FOR`] per IdP ([`CheckedIdps`]), and
//! never past the signed JWKS's own expiry: a token that verifies against the keys of an
//! IdP checked that recently needs no request to it. A token that does not is checked
//! afresh (the IdP may have rotated its keys), so the cache never turns a good token away;
//! the price is that an IdP whose anchor is superseded keeps its standing for at most
//! [`CHECKED_FOR`] more.
//!
//! The token's `nonce` is not checked: the device flow a PAT logs in with carries none.
//! Step 5 makes a stolen token worth nothing on any other device: without it, a token
//! got for one device would get shares for its subject under the thief's key, which time
//! permits would then renew without a token.
//! IdPs are reached over HTTPS verified against `[outbound_http]`'s roots (plain HTTP only
//! to loopback unless allowed; [`milagro_http_client`]), one client kept in
//! [`CheckedIdps`] so its connections are reused. What the D-TA believes of an IdP is
//! still bound to its anchored key, not to the channel: HTTPS keeps the documents private
//! and an on-path attacker out of the exchange, but it is not what makes an IdP trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bitcoin::Txid;
use milagro_anchor::birth_certificate::{BirthCertificate, Role, Status};
use milagro_anchor::digest::Digest;
use milagro_anchor::dpop::{Confirmation, Thumbprint};
use milagro_anchor::keys::PublicKey;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::signed_jwks;
use milagro_http_client::{ClientError, ClientOptions, Outbound};
use milagro_tls::PeerDirectory;
use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClientId, IdToken, IssuerUrl, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// An IdP the D-TA accepts ID tokens from (`[[trusted_idps]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// Its issuer identifier, exactly as in its tokens.
    pub issuer: String,
    /// The digest of its anchored Birth Certificate.
    pub bc_digest: Digest,
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
    /// Not an ID token at all.
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
    /// The token verifies but is bound to no key (no `cnf.jkt`): the device did not prove
    /// its key with DPoP when it got it, so any device could present it.
    #[error("the id token is not bound to a device key (no cnf.jkt): log in again with dpop")]
    NotBound,
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
    /// The token does not verify (signature, audience, expiry...).
    #[error("the id token does not verify: {0}")]
    Invalid(String),
    /// The IdP or the node could not be reached.
    #[error("cannot check the IdP now: {0}")]
    Unavailable(String),
}

/// How long an IdP's checked keys are reused.
pub const CHECKED_FOR: Duration = Duration::from_secs(60);

/// The largest IdP document read (discovery, certificate, signed JWKS), in bytes.
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024;

/// Keys whose signed JWKS verified: the set, and when its signature stops vouching for it
/// (Unix seconds).
#[derive(Debug, Clone)]
struct BoundKeys {
    keys: CoreJsonWebKeySet,
    expires: u64,
}

/// The keys of the IdPs checked in the last [`CHECKED_FOR`], by issuer, and the HTTP
/// client the IdPs are fetched with.
#[derive(Debug)]
pub struct CheckedIdps {
    checked: Mutex<HashMap<String, (Instant, BoundKeys)>>,
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
            .filter(|(at, bound)| at.elapsed() < CHECKED_FOR && now < bound.expires)
            .map(|(_, bound)| bound.keys.clone())
    }

    fn keep(&self, issuer: &str, bound: BoundKeys) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.insert(issuer.to_owned(), (Instant::now(), bound));
    }
}

/// What step 2 established about an IdP: where its signed JWKS is, and the anchored key
/// that must have signed it.
struct AnchoredIdp {
    signed_jwks_uri: String,
    key: PublicKey,
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

/// Step 5: a token's confirmation claim `cnf` must name `device`, the anchored key of the
/// Milagro TLS peer presenting it, by its RFC 7638 thumbprint.
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

impl RelyingParty<'_> {
    /// Checks `id_token`, presented by the admitted peer whose anchored key is `device`
    /// (see the module documentation). Blocking: call it on a blocking thread, never
    /// inside an async runtime.
    pub fn verify(&self, id_token: &str, device: &PublicKey) -> Result<VerifiedLogin, LoginError> {
        let (login, cnf) = self.verify_signed(id_token)?;
        check_binding(cnf.as_ref(), device)?;
        Ok(login)
    }

    /// Steps 1 to 4: the login and the token's confirmation claim.
    fn verify_signed(
        &self,
        id_token: &str,
    ) -> Result<(VerifiedLogin, Option<Confirmation>), LoginError> {
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
            if let Ok(login) = Self::verify_with(idp, &token, keys) {
                return Ok(login);
            }
        }
        let bound = self.check_idp_afresh(idp)?;
        self.checked.keep(&idp.issuer, bound.clone());
        Self::verify_with(idp, &token, bound.keys)
    }

    /// Fetches the IdP's discovery document, served certificate and signed JWKS, and
    /// checks them ([`Self::check_idp`], [`signed_jwks::verify`]); returns the keys.
    fn check_idp_afresh(&self, idp: &TrustedIdp) -> Result<BoundKeys, LoginError> {
        self.checked
            .outbound
            .check_url(&idp.issuer)
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let http = &self.checked.http;
        let discovery: Value = get_json(
            http,
            &format!("{}/.well-known/openid-configuration", idp.issuer),
        )?;
        let served: Value = get_json(
            http,
            &format!("{}/.well-known/milagro/birth-certificate", idp.issuer),
        )?;
        let anchored = self.check_idp(idp, &discovery, &served)?;
        let unbound = |reason: String| LoginError::KeysNotBound {
            issuer: idp.issuer.clone(),
            reason,
        };
        let signed = get_body(http, &anchored.signed_jwks_uri)?;
        let signed = std::str::from_utf8(&signed)
            .map_err(|_| unbound("its signed JWKS is not text".into()))?;
        let verified = signed_jwks::verify(
            signed,
            &anchored.key,
            &idp.bc_digest,
            &idp.issuer,
            milagro_service::unix_now(),
        )
        .map_err(|e| unbound(e.to_string()))?;
        let keys = serde_json::from_value(verified.jwks())
            .map_err(|e| unbound(format!("its signed key set is not a JWK Set: {e}")))?;
        Ok(BoundKeys {
            keys,
            expires: verified.expires(),
        })
    }

    /// Verifies `token` with `keys` (ES256; signature, `iss`, `aud`, `exp`).
    fn verify_with(
        idp: &TrustedIdp,
        token: &BoundIdToken,
        keys: CoreJsonWebKeySet,
    ) -> Result<(VerifiedLogin, Option<Confirmation>), LoginError> {
        let issuer = IssuerUrl::new(idp.issuer.clone())
            .map_err(|e| LoginError::Untrusted(format!("{}: {e}", idp.issuer)))?;
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(idp.client_id.clone()),
            issuer,
            keys,
        )
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
        let claims = token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map_err(|e| LoginError::Invalid(e.to_string()))?;
        Ok((
            VerifiedLogin {
                issuer: idp.issuer.clone(),
                subject: claims.subject().as_str().to_owned(),
            },
            claims.additional_claims().cnf.clone(),
        ))
    }

    /// Checks the discovery document against the configuration and the chain; returns
    /// its `signed_jwks_uri` and the certificate's key.
    fn check_idp(
        &self,
        idp: &TrustedIdp,
        discovery: &Value,
        served: &Value,
    ) -> Result<AnchoredIdp, LoginError> {
        let refuse = |reason: String| LoginError::NotAnchored {
            issuer: idp.issuer.clone(),
            reason,
        };
        let field = |name: &str| discovery.get(name).and_then(Value::as_str);
        if field("issuer") != Some(idp.issuer.as_str()) {
            return Err(refuse("its discovery document names another issuer".into()));
        }
        let named = field("milagro_birth_certificate_digest").unwrap_or_default();
        if named != idp.bc_digest.to_string() {
            return Err(refuse(format!(
                "its discovery document names birth certificate {named:?}, not {}",
                idp.bc_digest
            )));
        }
        let txid: Txid = field("milagro_anchor_txid")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| refuse("its discovery document names no anchoring txid".into()))?;
        let standing = self.directory.standing(txid).map_err(|e| match e {
            milagro_tls::DirectoryError::Unavailable(why) => LoginError::Unavailable(why),
            other => refuse(other.to_string()),
        })?;
        let anchor = &standing.anchor;
        if anchor.kind() != RecordKind::BirthCertificate || anchor.digest() != idp.bc_digest {
            return Err(refuse(format!(
                "{txid} does not anchor its birth certificate"
            )));
        }
        // The certificate itself says whose key must have signed the anchor, and that it
        // is an active IdP.
        let bc = served
            .get("birth_certificate")
            .and_then(|bc| serde_json::to_vec(bc).ok())
            .and_then(|bytes| BirthCertificate::parse(&bytes).ok())
            .filter(|bc| bc.digest() == idp.bc_digest)
            .ok_or_else(|| refuse("it does not serve the configured birth certificate".into()))?;
        if bc.role() != Role::Idp || bc.status() != Status::Active {
            return Err(refuse(format!(
                "its birth certificate is a {} {} one",
                bc.status(),
                bc.role()
            )));
        }
        if anchor.signer() != *bc.public_key() {
            return Err(refuse(format!(
                "{txid} is not signed by the certificate's key"
            )));
        }
        if anchor.depth() < self.min_depth {
            return Err(refuse(format!(
                "its anchor has {} confirmations, {} required",
                anchor.depth(),
                self.min_depth
            )));
        }
        if let Some(later) = standing.superseded_by {
            return Err(refuse(format!("its certificate was superseded by {later}")));
        }
        let unbound = |reason: String| LoginError::KeysNotBound {
            issuer: idp.issuer.clone(),
            reason,
        };
        let signed_jwks_uri = field("signed_jwks_uri")
            .ok_or_else(|| unbound("its discovery document names no signed_jwks_uri".into()))?;
        // Fetched from the anchored issuer itself, not from wherever its document points
        // (the signature would catch a swap; this keeps the D-TA from fetching elsewhere).
        if !signed_jwks_uri.starts_with(&format!("{}/", idp.issuer)) {
            return Err(unbound(format!(
                "its signed_jwks_uri {signed_jwks_uri:?} is not under the issuer"
            )));
        }
        Ok(AnchoredIdp {
            signed_jwks_uri: signed_jwks_uri.to_owned(),
            key: *bc.public_key(),
        })
    }
}

/// The body at `url`, at most [`MAX_DOCUMENT_BYTES`].
fn get_body(http: &reqwest::blocking::Client, url: &str) -> Result<Vec<u8>, LoginError> {
    use std::io::Read as _;
    let unavailable = |e: &dyn std::fmt::Display| LoginError::Unavailable(format!("{url}: {e}"));
    let response = http.get(url).send().map_err(|e| unavailable(&e))?;
    if !response.status().is_success() {
        return Err(unavailable(&response.status()));
    }
    let mut body = Vec::new();
    response
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| unavailable(&e))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(unavailable(&format!(
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

//! Step 2 for an anchored IdP (ADR 0010): its discovery document must name the configured
//! Birth Certificate digest (`milagro_birth_certificate_digest`), and its anchoring
//! transaction (`milagro_anchor_txid`) must anchor exactly that digest, signed by its key,
//! at least `min_peer_depth` deep and not superseded, by the D-TA's own index and node
//! ([`PeerDirectory`](milagro_tls::PeerDirectory)), and the certificate the IdP serves must
//! be that digest, an active `idp`, whose key signed the anchor: the IdP's URL alone proves
//! nothing. The token-signing keys are then taken only from the IdP's JWKS signed with that
//! anchored key (`signed_jwks_uri`, under the issuer; [`signed_jwks`]): the signature must
//! verify with the certificate's key, for this issuer and digest, and be fresh. The plain
//! `jwks_uri` is never read: over plain HTTP anyone on the path could serve their own keys
//! there (else 401 `idp_keys_not_bound`).
//!
//! Nothing else in the discovery document needs a signature: the issuer and digest must
//! equal the configuration, the txid is checked against the D-TA's own index, and the
//! signed JWKS carries its own binding wherever it is fetched from. HTTPS, where the IdP
//! serves it, keeps the documents private and an on-path attacker out of the exchange, but
//! it is not what makes an anchored IdP trusted.

use bitcoin::Txid;
use milagro_anchor::birth_certificate::{BirthCertificate, Role, Status};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::signed_jwks;
use milagro_wire::idp::ProviderMetadata;
use milagro_wire::service::AnchoredBirthCertificate;

use super::{get_body, get_json, CheckedKeys, LoginError, RelyingParty, TrustedIdp};

/// What the chain established about an anchored IdP: where its signed JWKS is, and the
/// anchored key that must have signed it.
struct AnchoredIdp {
    signed_jwks_uri: String,
    key: PublicKey,
}

impl RelyingParty<'_> {
    /// Fetches the IdP's discovery document, served certificate and signed JWKS, and
    /// checks them ([`Self::check_idp`], [`signed_jwks::verify`]); returns the keys.
    pub(super) fn anchored_keys(
        &self,
        idp: &TrustedIdp,
        bc_digest: &Digest,
    ) -> Result<CheckedKeys, LoginError> {
        self.checked
            .outbound
            .check_url(&idp.issuer)
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let http = &self.checked.http;
        let refuse = |reason: String| LoginError::NotAnchored {
            issuer: idp.issuer.clone(),
            reason,
        };
        let discovery: ProviderMetadata = serde_json::from_value(get_json(
            http,
            &format!("{}/.well-known/openid-configuration", idp.issuer),
        )?)
        .map_err(|e| refuse(format!("its discovery document does not read: {e}")))?;
        // Read here, checked after the chain (a bad one is refused as not the one).
        let served: Option<AnchoredBirthCertificate> = serde_json::from_value(get_json(
            http,
            &format!("{}/.well-known/milagro/birth-certificate", idp.issuer),
        )?)
        .ok();
        let anchored = self.check_idp(idp, bc_digest, &discovery, served.as_ref())?;
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
            bc_digest,
            &idp.issuer,
            milagro_service::unix_now(),
        )
        .map_err(|e| unbound(e.to_string()))?;
        let keys = serde_json::from_value(verified.jwks())
            .map_err(|e| unbound(format!("its signed key set is not a JWK Set: {e}")))?;
        Ok(CheckedKeys {
            keys,
            expires: verified.expires(),
        })
    }

    /// Checks the discovery document against the configuration and the chain; returns
    /// its `signed_jwks_uri` and the certificate's key.
    fn check_idp(
        &self,
        idp: &TrustedIdp,
        bc_digest: &Digest,
        discovery: &ProviderMetadata,
        served: Option<&AnchoredBirthCertificate>,
    ) -> Result<AnchoredIdp, LoginError> {
        let refuse = |reason: String| LoginError::NotAnchored {
            issuer: idp.issuer.clone(),
            reason,
        };
        if discovery.issuer != idp.issuer {
            return Err(refuse("its discovery document names another issuer".into()));
        }
        let milagro = &discovery.milagro;
        let named = milagro.milagro_birth_certificate_digest;
        if named != *bc_digest {
            return Err(refuse(format!(
                "its discovery document names birth certificate {named}, not {bc_digest}"
            )));
        }
        let txid: Txid = milagro
            .milagro_anchor_txid
            .as_deref()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| refuse("its discovery document names no anchoring txid".into()))?;
        let standing = self.directory.standing(txid).map_err(|e| match e {
            milagro_tls::DirectoryError::Unavailable(why) => LoginError::Unavailable(why),
            other => refuse(other.to_string()),
        })?;
        let anchor = &standing.anchor;
        if anchor.kind() != RecordKind::BirthCertificate || anchor.digest() != *bc_digest {
            return Err(refuse(format!(
                "{txid} does not anchor its birth certificate"
            )));
        }
        // The certificate itself says whose key must have signed the anchor, and that it
        // is an active IdP.
        let bc = served
            .and_then(|served| serde_json::to_vec(&served.birth_certificate).ok())
            .and_then(|bytes| BirthCertificate::parse(&bytes).ok())
            .filter(|bc| bc.digest() == *bc_digest)
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
        let signed_jwks_uri = discovery
            .signed_jwks_uri
            .as_deref()
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

//! Step 2 for a third-party OpenID provider (`trust = "web_pki"`, ADR 0015): the keys are
//! what its `https://` issuer serves, over HTTPS verified against `[outbound_http]`'s roots.
//!
//! - `GET {issuer}/.well-known/openid-configuration` (OpenID Connect Discovery §4): its
//!   `issuer` must equal the configured issuer exactly (§4.3: otherwise a document of
//!   another provider could be passed off as this one's);
//! - `GET {jwks_uri}`: it must be an `https://` URL; it may be on another host than the
//!   issuer (as at large providers), because the document naming it came from the issuer
//!   over verified HTTPS, and it is fetched with the same verification and no redirects;
//! - only keys the D-TA can use for what it accepts are kept ([`usable_keys`]): RSA keys of
//!   at least 2048 bits for RS256, P-256 keys for ES256, meant for signatures. A symmetric
//!   key is never kept, so no token can be "verified" with a key anyone can read.
//!
//! The keys are kept for [`CHECKED_FOR`](super::CHECKED_FOR), as an anchored IdP's are: a
//! token signed by a key the provider has just added is checked afresh, so rotation works.

use openidconnect::core::CoreJsonWebKeySet;
use serde_json::{json, Value};

use super::{get_json, CheckedKeys, LoginError, RelyingParty, TrustedIdp, CHECKED_FOR};

/// The smallest RSA modulus accepted, in bytes (2048 bits; NIST SP 800-57 part 1 §5.6.1).
pub const MIN_RSA_MODULUS_BYTES: usize = 256;

impl RelyingParty<'_> {
    /// Fetches the provider's discovery document and key set over verified HTTPS; returns
    /// the usable keys.
    pub(super) fn web_pki_keys(&self, idp: &TrustedIdp) -> Result<CheckedKeys, LoginError> {
        let unusable = |reason: String| LoginError::KeysNotUsable {
            issuer: idp.issuer.clone(),
            reason,
        };
        // The configuration already refuses anything else; checked again because here the
        // channel is the only thing that vouches for the keys.
        if !idp.issuer.starts_with("https://") {
            return Err(unusable("a web_pki issuer must be https://".into()));
        }
        let http = &self.checked.http;
        let discovery = get_json(
            http,
            &format!("{}/.well-known/openid-configuration", idp.issuer),
        )?;
        let jwks_uri = jwks_uri(&idp.issuer, &discovery).map_err(unusable)?;
        self.checked
            .outbound
            .check_url(&jwks_uri)
            .map_err(|e| unusable(e.to_string()))?;
        let jwks = get_json(http, &jwks_uri)?;
        let keys = usable_keys(&jwks).map_err(unusable)?;
        Ok(CheckedKeys {
            keys,
            expires: milagro_service::unix_now().saturating_add(CHECKED_FOR.as_secs()),
        })
    }
}

/// The `jwks_uri` of the discovery document of `issuer`, if the document is `issuer`'s and
/// the URI is `https://`.
pub(super) fn jwks_uri(issuer: &str, discovery: &Value) -> Result<String, String> {
    let field = |name: &str| discovery.get(name).and_then(Value::as_str);
    match field("issuer") {
        Some(named) if named == issuer => {}
        named => {
            return Err(format!(
                "its discovery document names issuer {named:?}, not {issuer:?}"
            ))
        }
    }
    let uri = field("jwks_uri").ok_or("its discovery document names no jwks_uri")?;
    if !uri.starts_with("https://") || uri.len() == "https://".len() {
        return Err(format!("its jwks_uri {uri:?} is not an https:// URL"));
    }
    Ok(uri.to_owned())
}

/// The keys of the JWK Set `jwks` the D-TA accepts a web-PKI token's signature from (see
/// the module documentation); an error if there are none.
pub(super) fn usable_keys(jwks: &Value) -> Result<CoreJsonWebKeySet, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("its jwks_uri serves no JWK Set")?;
    let usable: Vec<Value> = keys.iter().filter(|key| is_usable(key)).cloned().collect();
    if usable.is_empty() {
        return Err(format!(
            "none of its {} keys is an RS256 key of at least 2048 bits or an ES256 (P-256) key",
            keys.len()
        ));
    }
    serde_json::from_value(json!({ "keys": usable }))
        .map_err(|e| format!("its key set does not parse: {e}"))
}

fn is_usable(key: &Value) -> bool {
    let text = |name: &str| key.get(name).and_then(Value::as_str);
    // A key published for encryption, or for another algorithm, is not a signing key of
    // what the D-TA accepts, whatever a token's header says.
    let for_signatures = matches!(text("use"), None | Some("sig"));
    match (text("kty"), text("alg")) {
        (Some("RSA"), None | Some("RS256")) => {
            for_signatures && rsa_modulus_bytes(key) >= Some(MIN_RSA_MODULUS_BYTES)
        }
        (Some("EC"), None | Some("ES256")) => for_signatures && text("crv") == Some("P-256"),
        _ => false,
    }
}

/// The length of an RSA key's modulus `n` in bytes, leading zeros not counted.
fn rsa_modulus_bytes(key: &Value) -> Option<usize> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine as _;
    let n = B64URL.decode(key.get("n")?.as_str()?).ok()?;
    Some(n.iter().skip_while(|byte| **byte == 0).count())
}

//! Logging the device's user in at a third-party OpenID provider (ADR 0015): an ordinary
//! provider (a company's Keycloak, say) that the device's D-TAs trust with
//! `trust = "web_pki"`. It has no Birth Certificate, signs no key set with an anchored key
//! and verifies no ES256K DPoP proof, so the device binds the ID token to its anchored key
//! with the one thing every provider hands back: the `nonce`.
//!
//! 1. [`ThirdPartyLogin::discover`] reads `{issuer}/.well-known/openid-configuration` over
//!    verified HTTPS (the device's CA bundle, else the system's roots; never plain HTTP,
//!    not even on loopback: the provider's certificate is the only thing that vouches for
//!    its answers, as at the D-TA). Its `issuer` must be the one asked, exactly (OpenID
//!    Connect Discovery §4.3); its endpoints must be `https://` and may be on other hosts
//!    (large providers serve tokens elsewhere: the document naming them came from the
//!    issuer over verified HTTPS). A provider without a `device_authorization_endpoint`
//!    is refused ([`ProviderFault::NoDeviceGrant`]): see below.
//! 2. [`ThirdPartyLogin::start`] draws a fresh 32-byte salt and asks for a device code
//!    (RFC 8628) with `nonce` = the commitment of [`milagro_anchor::id_token_nonce`] to
//!    the device's key; the verification pages must be `https://` (not the issuer's origin:
//!    Google's is on another host than its issuer).
//! 3. [`ThirdPartyDeviceLogin::wait`] polls the token endpoint ([`crate::device_grant`]).
//!    The ID token it gets is checked before it is kept, and so before any D-TA sees it:
//!    its `iss` is the issuer, its `aud` names the client id, and its `nonce` is the very
//!    commitment the device sent. A token without a nonce, or with another one, is
//!    refused ([`ProviderFault::NonceNotCarried`], [`ProviderFault::NonceMismatch`]).
//!    The result is an [`IdToken`] that keeps the salt, and sends it to each D-TA with the
//!    token ([`IdToken::share_request`]).
//!
//! The device does not verify the token's signature: it got the token straight from the
//! token endpoint over verified TLS, which OpenID Connect Core §3.1.3.7 (6) accepts in
//! place of the signature for the client, and each D-TA verifies it anyway. The D-TAs are
//! what the binding protects: they refuse a token whose nonce does not commit to the key
//! of the Milagro TLS peer presenting it (401 `token_bound_to_another_key`) whatever the
//! device checked. The device's own check is so that a token bound to another key (a
//! provider that lies, or mixes up two logins) is never sent anywhere, and fails where
//! its cause is, naming the provider's URL.
//!
//! # Why the device authorization grant, and what a provider must do for it
//!
//! A PAT may have no browser; RFC 8628 is the grant made for such devices. But OpenID
//! Connect defines the `nonce` for authentication requests at the authorization endpoint,
//! not for RFC 8628, and providers differ: Keycloak copies the device authorization
//! request's nonce into the ID token; `oidc-provider` (by its author's choice) and Entra ID
//! drop it. A token without the nonce can be bound to nothing, so the device refuses it
//! ([`ProviderFault::NonceNotCarried`]) rather than send the D-TAs what they would refuse
//! (`token_not_bound`). At such a provider a device with a browser would need the
//! authorization-code flow with a loopback redirect (RFC 8252 §7.3), where every OpenID
//! provider must echo the nonce; this module does not do that yet.
//!
//! The provider a device logs in at is remembered in its state directory
//! ([`RememberedProvider`], `login-provider.json`), so that the next login goes there
//! again.

use std::path::Path;

use milagro_anchor::dpop::Thumbprint;
use milagro_anchor::id_token_nonce::{commitment, NonceSalt, SALT_LEN};
use milagro_anchor::keys::PublicKey;
use milagro_http_client::Outbound;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device_grant::Pending;
use crate::error::{Error, Step};
use crate::files;
use crate::http::{ServiceClient, DEFAULT_REQUEST_TIMEOUT};
use crate::idp_login::{unverified_claims, IdToken};

/// File name of the remembered provider in the device's state directory.
pub const PROVIDER_FILE: &str = "login-provider.json";

/// Why the device will not use what a third-party provider answered (inside
/// [`Error::Provider`], which names the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderFault {
    /// A URL that is not `https://`: the issuer, an endpoint or a verification page.
    #[error("its {what} {url} is not https://; only a verified certificate vouches for a third-party provider")]
    NotHttps {
        /// Which one (`issuer`, `token_endpoint`, `verification_uri`, …).
        what: &'static str,
        /// The URL.
        url: String,
    },
    /// The discovery document names another issuer than the one asked.
    #[error("its discovery document names the issuer {named:?}, not the one asked")]
    IssuerMismatch {
        /// The issuer the document names.
        named: String,
    },
    /// The provider offers no device authorization grant.
    #[error("it offers no device authorization grant (rfc 8628), the only login this device runs")]
    NoDeviceGrant,
    /// An answer that is not the protocol's (a field missing or of the wrong type, a
    /// token that is not a JWT).
    #[error("not the protocol's answer: {0}")]
    Malformed(String),
    /// The ID token's `iss` is not the issuer.
    #[error("its id token is issued by {found:?}")]
    TokenIssuer {
        /// The `iss` claim.
        found: String,
    },
    /// The ID token's `aud` does not name the client id.
    #[error("its id token is not for client {client_id:?}")]
    TokenAudience {
        /// The client id asked for.
        client_id: String,
    },
    /// The ID token has no `nonce`: the provider did not carry the request's nonce
    /// through the device grant, so nothing binds the token to this device.
    #[error("its id token carries no nonce: the provider drops the device grant's nonce, so the token is bound to no device and every d-ta would refuse it")]
    NonceNotCarried,
    /// The ID token's `nonce` is not the commitment this device sent: it commits to
    /// another key, or to nothing of this device's.
    #[error("its id token's nonce is not the commitment to this device's key that the device sent; refused before any d-ta sees it")]
    NonceMismatch,
}

fn fault(url: &str, fault: ProviderFault) -> Error {
    Error::Provider {
        url: url.to_owned(),
        fault,
    }
}

/// `url` if it is an `https://` URL with a host and no fragment.
fn https(what: &'static str, url: &str) -> Result<reqwest::Url, Error> {
    reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https" && u.host().is_some() && u.fragment().is_none())
        .ok_or_else(|| {
            let named = url.to_owned();
            fault(url, ProviderFault::NotHttps { what, url: named })
        })
}

/// An endpoint of the provider: a client of its origin, and its path (and query).
#[derive(Debug, Clone)]
struct Endpoint {
    url: String,
    client: ServiceClient,
    path: String,
}

impl Endpoint {
    fn new(outbound: &Outbound, what: &'static str, url: &str) -> Result<Self, Error> {
        let parsed = https(what, url)?;
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let origin = parsed.origin().ascii_serialization();
        Ok(Self {
            url: url.to_owned(),
            client: ServiceClient::with_outbound(&origin, outbound, DEFAULT_REQUEST_TIMEOUT)?,
            path,
        })
    }
}

/// The discovery document's fields the device uses; others are ignored.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
}

/// The token answer's field the device uses.
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// The ID token's claims the device checks.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    exp: u64,
    nonce: Option<String>,
}

/// `aud`: one string or several (OpenID Connect Core §2).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, client_id: &str) -> bool {
        match self {
            Self::One(aud) => aud == client_id,
            Self::Many(auds) => auds.iter().any(|aud| aud == client_id),
        }
    }
}

/// A third-party provider whose discovery document was read and checked.
#[derive(Debug, Clone)]
pub struct ThirdPartyLogin {
    issuer: String,
    client_id: String,
    device: Endpoint,
    token: Endpoint,
}

/// A device code waiting for the user's approval at a third-party provider, with the
/// salt of the nonce it was asked with.
pub struct ThirdPartyDeviceLogin {
    login: ThirdPartyLogin,
    pending: Pending,
    salt: NonceSalt,
    nonce: String,
}

impl std::fmt::Debug for ThirdPartyDeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThirdPartyDeviceLogin")
            .field("issuer", &self.login.issuer)
            .field("user_code", &self.pending.user_code())
            .field("verification_uri", &self.pending.verification_uri())
            .finish_non_exhaustive()
    }
}

impl ThirdPartyLogin {
    /// Reads and checks the discovery document of the provider `issuer` under the HTTP
    /// policy `outbound`, for the client id `client_id` (the D-TAs' client id at it:
    /// [`crate::dtas::client_id_for`]).
    pub fn discover(outbound: &Outbound, issuer: &str, client_id: &str) -> Result<Self, Error> {
        https("issuer", issuer)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let at = Endpoint::new(outbound, "issuer", &url)?;
        let body = at.client.get(Step::LogIn, &at.path)?.body;
        let document = Discovery::deserialize(body).map_err(|e| {
            fault(
                &url,
                ProviderFault::Malformed(format!("discovery document: {e}")),
            )
        })?;
        if document.issuer != issuer {
            let named = document.issuer;
            return Err(fault(&url, ProviderFault::IssuerMismatch { named }));
        }
        let device = document
            .device_authorization_endpoint
            .ok_or_else(|| fault(&url, ProviderFault::NoDeviceGrant))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            device: Endpoint::new(outbound, "device_authorization_endpoint", &device)?,
            token: Endpoint::new(outbound, "token_endpoint", &document.token_endpoint)?,
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Asks for a device code (scope `openid`) with a nonce committing to `device_key`
    /// (the device's anchored key, [`crate::Device::key`]) under a fresh salt; refuses an
    /// answer whose verification pages are not `https://`.
    pub fn start(&self, device_key: &PublicKey) -> Result<ThirdPartyDeviceLogin, Error> {
        let mut bytes = [0u8; SALT_LEN];
        rand_core::OsRng.fill_bytes(&mut bytes);
        let salt = NonceSalt::from_bytes(bytes);
        let nonce = commitment(&Thumbprint::of(device_key), &salt);
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", "openid"),
            ("nonce", &nonce),
        ];
        let device = &self.device;
        let answer = device.client.post_form(Step::LogIn, &device.path, &form)?;
        let pending = Pending::read(answer.body).map_err(|e| {
            let reason = format!("device authorization: {e}");
            fault(&device.url, ProviderFault::Malformed(reason))
        })?;
        for uri in pending.verification_uris() {
            https("verification_uri", uri)?;
        }
        Ok(ThirdPartyDeviceLogin {
            login: self.clone(),
            pending,
            salt,
            nonce,
        })
    }
}

impl ThirdPartyDeviceLogin {
    /// The code the user types.
    pub fn user_code(&self) -> &str {
        self.pending.user_code()
    }

    /// Where the user types it.
    pub fn verification_uri(&self) -> &str {
        self.pending.verification_uri()
    }

    /// The same page with the code filled in, if the provider offers one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.pending.verification_uri_complete()
    }

    /// Asks the token endpoint once: `None` while the user has not decided, else the ID
    /// token, checked ([`Self::check`]).
    pub fn poll(&mut self) -> Result<Option<IdToken>, Error> {
        let token = &self.login.token;
        let form = self.pending.token_form(&self.login.client_id)?;
        let answer = token.client.post_form(Step::LogIn, &token.path, &form);
        match self.pending.outcome(answer)? {
            Some(body) => self.check(body).map(Some),
            None => Ok(None),
        }
    }

    /// Polls at the provider's interval until the user approves (the checked ID token),
    /// denies or the code expires (an error).
    pub fn wait(mut self) -> Result<IdToken, Error> {
        loop {
            if let Some(token) = self.poll()? {
                return Ok(token);
            }
            std::thread::sleep(self.pending.interval());
        }
    }

    /// The ID token of the token answer `body`, if its `iss` is the issuer, its `aud`
    /// names the client id and its `nonce` is the one this login sent.
    fn check(&self, body: Value) -> Result<IdToken, Error> {
        let (login, url) = (&self.login, self.login.token.url.as_str());
        let malformed = |reason: &str| fault(url, ProviderFault::Malformed(reason.to_owned()));
        let answer =
            TokenAnswer::deserialize(body).map_err(|e| malformed(&format!("token answer: {e}")))?;
        let claims: Claims = unverified_claims(&answer.id_token)
            .ok_or_else(|| malformed("the id token is not a JWT with iss, aud and exp"))?;
        if claims.iss != login.issuer {
            let found = claims.iss;
            return Err(fault(url, ProviderFault::TokenIssuer { found }));
        }
        if !claims.aud.names(&login.client_id) {
            let client_id = login.client_id.clone();
            return Err(fault(url, ProviderFault::TokenAudience { client_id }));
        }
        match claims.nonce {
            None => return Err(fault(url, ProviderFault::NonceNotCarried)),
            Some(nonce) if nonce != self.nonce => {
                return Err(fault(url, ProviderFault::NonceMismatch))
            }
            Some(_) => {}
        }
        Ok(IdToken::new(
            &login.issuer,
            None,
            &login.client_id,
            claims.exp,
            &answer.id_token,
            Some(self.salt.clone()),
        ))
    }
}

/// The third-party provider a device logs in at, remembered in its state directory
/// ([`PROVIDER_FILE`]) once a login there succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RememberedProvider {
    /// Its issuer URL.
    pub issuer: String,
}

impl RememberedProvider {
    /// Stores it in `dir` (atomically), replacing another.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(PROVIDER_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::corrupt(&path, e))?;
        files::write_atomically(&path, &bytes)
    }

    /// The one stored in `dir`, if any.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(PROVIDER_FILE);
        let Some(bytes) = files::read(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::corrupt(&path, e))
    }

    /// Forgets it: the next login is at the IdP the instructions name.
    pub fn forget(dir: &Path) -> Result<(), Error> {
        files::remove_if_present(&dir.join(PROVIDER_FILE))
    }
}

#[cfg(test)]
mod tests;

//! Logging the device's user in at the IdP its instructions name, with the OAuth 2.0
//! device authorization grant (RFC 8628): the device has no browser, so it shows a short
//! code and the user approves it on any other screen.
//!
//! [`IdpLogin::discover`] reads the IdP's discovery document and checks it names the
//! Birth Certificate digest the instructions (verified by SPV) gave for that IdP, and that
//! its endpoints are the IdP's own: the device sends nothing to an IdP it was not told to
//! use. [`IdpLogin::start`] asks for a code ([`DeviceLogin`]) and refuses a
//! `verification_uri` (or `verification_uri_complete`) off the IdP's origin
//! ([`Error::VerificationUriOffOrigin`]): the page where the user types the code and their
//! password must be the IdP's own, not one a tampered answer names. [`DeviceLogin::wait`]
//! polls the token endpoint at the interval the IdP asks (slowing down when told) until
//! the user approves, denies, or the code expires; every poll carries a fresh DPoP proof
//! (RFC 9449, [`milagro_anchor::dpop`]) by the device's anchored key, so the IdP binds the
//! ID token to that key (`cnf.jkt`) and the D-TAs accept it only from this device
//! (ADR 0012). The result is the ID token ([`IdToken`]), stored in `id-token.json` (mode
//! 0600) until the D-TAs have been asked for shares.
//!
//! The device does not verify the ID token: it is not its audience. Each D-TA does, and
//! also checks the IdP's anchor in its own index.
//!
//! The grant's mechanics (the answer, the polling) are [`crate::device_grant`]'s, shared
//! with the login at a third-party provider ([`crate::third_party_login`]), whose tokens
//! are [`IdToken`]s too, bound by their nonce instead of `cnf.jkt`.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::digest::Digest;
use milagro_anchor::dpop;
use milagro_anchor::id_token_nonce::NonceSalt;
use milagro_anchor::instructions::ServiceAnchor;
use milagro_anchor::keys::SecretKey;
use milagro_wire::idp::{DeviceRegistration, ProviderMetadata, TokenAnswer};
use milagro_wire::shares::ClientShareRequest;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::device_grant::Pending;
use crate::error::{Error, Step};
use crate::files;
use crate::http::{ServiceClient, DEFAULT_REQUEST_TIMEOUT};
use milagro_http_client::Outbound;

/// Where this project's IdP registers a device (`milagro_idp`'s route).
pub const DEVICES_PATH: &str = "/v1/devices";

/// File name of the stored ID token in the device's state directory.
pub const ID_TOKEN_FILE: &str = "id-token.json";

/// An IdP whose discovery document was checked against the instructions.
#[derive(Debug, Clone)]
pub struct IdpLogin {
    client: ServiceClient,
    issuer: String,
    digest: Digest,
    client_id: String,
    device_path: String,
    token_path: String,
}

/// A code waiting for the user's approval.
pub struct DeviceLogin {
    login: IdpLogin,
    pending: Pending,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("issuer", &self.login.issuer)
            .field("user_code", &self.pending.user_code())
            .field("verification_uri", &self.pending.verification_uri())
            .finish_non_exhaustive()
    }
}

/// An ID token for the D-TAs' client id. A bearer credential: never printed by `Debug`,
/// wiped from memory on drop, stored with mode 0600.
#[derive(Clone, PartialEq, Eq)]
pub struct IdToken {
    /// The IdP that issued it.
    pub issuer: String,
    /// The IdP's Birth Certificate digest, as the instructions name it; none for a
    /// third-party provider, which the D-TAs trust by web PKI (ADR 0015).
    pub idp: Option<Digest>,
    /// The client id it was issued to (the D-TAs' audience).
    pub client_id: String,
    /// Its `exp` claim (Unix seconds), read without verification, to tell when a new login
    /// is due.
    pub expires_at: u64,
    token: Zeroizing<String>,
    /// The salt that opens its nonce, for a third-party provider's token (sent to each
    /// D-TA with it); none for an anchored IdP's, bound by `cnf.jkt`.
    nonce_salt: Option<NonceSalt>,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdToken")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `id-token.json`. A file written before third-party providers has `idp` and no
/// `nonce_salt`, and reads as before.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdTokenWire {
    issuer: String,
    #[serde(default)]
    idp: Option<Digest>,
    client_id: String,
    expires_at: u64,
    id_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce_salt: Option<String>,
}

fn login_error(reason: impl std::fmt::Display) -> Error {
    Error::unexpected(Step::LogIn, reason)
}

impl IdpLogin {
    /// Reads the discovery document of the IdP `idp` names (its `url` is the issuer) and
    /// checks it: the issuer is that URL, `milagro_birth_certificate_digest` is the
    /// digest the instructions name, and both endpoints lie under the issuer. `client_id`
    /// is the D-TAs' client id at this IdP ([`crate::dtas::client_id_for`]).
    /// The IdP is reached under the HTTP policy `outbound`.
    pub fn discover(
        outbound: &Outbound,
        idp: &ServiceAnchor,
        client_id: &str,
    ) -> Result<Self, Error> {
        let client = ServiceClient::with_outbound(&idp.url, outbound, DEFAULT_REQUEST_TIMEOUT)?;
        let document: ProviderMetadata = client
            .get(Step::LogIn, "/.well-known/openid-configuration")?
            .read(Step::LogIn)?;
        let issuer = document.issuer.as_str();
        if issuer.trim_end_matches('/') != client.base_url() {
            return Err(login_error(format!(
                "the IdP at {} calls itself {issuer}",
                client.base_url()
            )));
        }
        let named = document.milagro.milagro_birth_certificate_digest;
        if named != idp.birth_certificate {
            return Err(login_error(format!(
                "the IdP at {issuer} names birth certificate {named}, the instructions {}",
                idp.birth_certificate
            )));
        }
        let endpoint = |name: &str, url: Option<&str>| -> Result<String, Error> {
            let url = url.ok_or_else(|| login_error(format!("the IdP names no {name}")))?;
            client
                .path_of(url)
                .map(str::to_owned)
                .ok_or_else(|| login_error(format!("its {name} {url} is not under {issuer}")))
        };
        Ok(Self {
            device_path: endpoint(
                "device_authorization_endpoint",
                document.device_authorization_endpoint.as_deref(),
            )?,
            token_path: endpoint("token_endpoint", Some(&document.token_endpoint))?,
            issuer: issuer.trim_end_matches('/').to_owned(),
            digest: idp.birth_certificate,
            client_id: client_id.to_owned(),
            client,
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Registers `key` as the user's device at the IdP (`POST /v1/devices`, with the
    /// device grant's `access_token`, bound to `key`, and a proof by `key`): the M-Pin
    /// key the D-TAs will issue for this key is then the one the IdP accepts a sign-in
    /// from, and the user's previous device can no longer sign in. Checks the answer
    /// names this key.
    pub fn register_device(
        &self,
        key: &SecretKey,
        access_token: &str,
    ) -> Result<DeviceRegistration, Error> {
        let uri = format!("{}{DEVICES_PATH}", self.issuer);
        let proof = dpop_proof(key, &uri, Some(access_token));
        let authorization = format!("DPoP {access_token}");
        let registered: DeviceRegistration = self
            .client
            .post_with(
                Step::RegisterDevice,
                DEVICES_PATH,
                &[("authorization", &authorization), (dpop::HEADER, &proof)],
                &serde_json::json!({}),
            )?
            .read(Step::RegisterDevice)?;
        let ours = key.public_key().to_string();
        if registered.device_key != ours {
            return Err(Error::unexpected(
                Step::RegisterDevice,
                format!(
                    "the IdP registered key {}, not this device's {ours}",
                    registered.device_key
                ),
            ));
        }
        Ok(registered)
    }

    /// Asks for a device code (scope `openid`); refuses an answer whose verification
    /// URIs are not on the issuer's origin.
    pub fn start(&self) -> Result<DeviceLogin, Error> {
        let answer = self.client.post_form(
            Step::LogIn,
            &self.device_path,
            &[("client_id", &self.client_id), ("scope", "openid")],
        )?;
        let pending = Pending::read(answer.body)
            .map_err(|e| login_error(format!("device authorization: {e}")))?;
        for uri in pending.verification_uris() {
            check_origin(&self.issuer, uri)?;
        }
        Ok(DeviceLogin {
            login: self.clone(),
            pending,
        })
    }
}

impl DeviceLogin {
    /// The code the user types.
    pub fn user_code(&self) -> &str {
        self.pending.user_code()
    }

    /// Where the user types it.
    pub fn verification_uri(&self) -> &str {
        self.pending.verification_uri()
    }

    /// The same page with the code filled in, if the IdP offers one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.pending.verification_uri_complete()
    }

    /// Asks the token endpoint once, with a DPoP proof by `key` (the device's anchored
    /// key, [`crate::Device::key`]): `None` while the user has not decided yet (after a
    /// `slow_down`, the interval grows by 5 seconds, RFC 8628 §3.5).
    pub fn poll(&mut self, key: &SecretKey) -> Result<Option<IdToken>, Error> {
        let login = &self.login;
        let form = self.pending.token_form(&login.client_id)?;
        let proof = dpop_proof(key, &format!("{}{}", login.issuer, login.token_path), None);
        let answer = login.client.post_form_with(
            Step::LogIn,
            &login.token_path,
            &[(dpop::HEADER, &proof)],
            &form,
        );
        let Some(body) = self.pending.outcome(answer)? else {
            return Ok(None);
        };
        // A token the IdP did not bind would be refused by every D-TA.
        let tokens =
            TokenAnswer::deserialize(&body).map_err(|e| Error::unexpected(Step::LogIn, e))?;
        if !tokens.token_type.eq_ignore_ascii_case("DPoP") {
            return Err(login_error(format!(
                "the IdP issued a {} token, not a DPoP-bound one",
                tokens.token_type
            )));
        }
        let token = IdToken::read(&self.login, &tokens.id_token)?;
        self.login.register_device(key, &tokens.access_token)?;
        Ok(Some(token))
    }

    /// Polls at the IdP's interval, each poll proving `key` ([`Self::poll`]), until the
    /// user approves (the ID token, bound to `key`), denies or the code expires (an error).
    pub fn wait(mut self, key: &SecretKey) -> Result<IdToken, Error> {
        loop {
            if let Some(token) = self.poll(key)? {
                return Ok(token);
            }
            std::thread::sleep(self.pending.interval());
        }
    }
}

/// A DPoP proof by `key` for `POST uri` (with `access_token`, at a resource), now, with
/// 128 random bits as its `jti`.
fn dpop_proof(key: &SecretKey, uri: &str, access_token: Option<&str>) -> String {
    dpop_proof_for(key, "POST", uri, access_token)
}

/// A DPoP proof by `key` for `method uri` (with `access_token`, at a resource), now, with
/// 128 random bits as its `jti`.
pub(crate) fn dpop_proof_for(
    key: &SecretKey,
    method: &str,
    uri: &str,
    access_token: Option<&str>,
) -> String {
    let mut jti = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut jti);
    let request = dpop::Request {
        method,
        uri,
        access_token,
    };
    dpop::sign(key, &request, &B64URL.encode(jti), unix_now())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Refuses `uri` unless its origin (scheme, host, port) is the issuer's (RFC 6454).
fn check_origin(issuer: &str, uri: &str) -> Result<(), Error> {
    let origin = |text: &str| {
        reqwest::Url::parse(text)
            .ok()
            .map(|url| url.origin())
            .filter(|origin| origin.is_tuple())
    };
    match (origin(issuer), origin(uri)) {
        (Some(expected), Some(found)) if expected == found => Ok(()),
        _ => Err(Error::VerificationUriOffOrigin {
            uri: uri.to_owned(),
            issuer: issuer.to_owned(),
        }),
    }
}

/// The claims of the compact JWS `token`, read without verification (the device is not
/// the one that must trust them: the D-TAs verify).
pub(crate) fn unverified_claims<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()
}

impl IdToken {
    fn read(login: &IdpLogin, token: &str) -> Result<Self, Error> {
        let claims: Value =
            unverified_claims(token).ok_or_else(|| login_error("the id token is not a JWT"))?;
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| login_error("the id token has no exp"))?;
        Ok(Self::new(
            &login.issuer,
            Some(login.digest),
            &login.client_id,
            expires_at,
            token,
            None,
        ))
    }

    /// An ID token `token` of `issuer` (anchored as `idp`, if it is) for `client_id`,
    /// expiring at `expires_at`, its nonce opened by `nonce_salt` if it is bound by it.
    pub(crate) fn new(
        issuer: &str,
        idp: Option<Digest>,
        client_id: &str,
        expires_at: u64,
        token: &str,
        nonce_salt: Option<NonceSalt>,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            idp,
            client_id: client_id.to_owned(),
            expires_at,
            token: Zeroizing::new(token.to_owned()),
            nonce_salt,
        }
    }

    /// The token itself, to send to the D-TAs.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The salt that opens its nonce (a third-party provider's token), if any.
    pub fn nonce_salt(&self) -> Option<&NonceSalt> {
        self.nonce_salt.as_ref()
    }

    /// What the device sends each D-TA for its shares: the token, and the salt that
    /// opens its nonce when it has one (ADR 0015).
    pub fn share_request(&self) -> ClientShareRequest {
        ClientShareRequest {
            id_token: self.token.to_string(),
            nonce_salt: self.nonce_salt.as_ref().map(NonceSalt::encode),
        }
    }

    /// Whether it has expired at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Stores it in `dir` (atomically, mode 0600), replacing an older one.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let wire = Zeroizing::new(
            serde_json::to_vec_pretty(&IdTokenWire {
                issuer: self.issuer.clone(),
                idp: self.idp,
                client_id: self.client_id.clone(),
                expires_at: self.expires_at,
                id_token: self.token.to_string(),
                nonce_salt: self.nonce_salt.as_ref().map(NonceSalt::encode),
            })
            .map_err(|e| Error::corrupt(dir.join(ID_TOKEN_FILE), e))?,
        );
        files::write_atomically(&dir.join(ID_TOKEN_FILE), &wire)
    }

    /// The stored token, if any.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(ID_TOKEN_FILE);
        let Some(bytes) = files::read_secret(&path)? else {
            return Ok(None);
        };
        let wire: IdTokenWire =
            serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
        let nonce_salt = wire
            .nonce_salt
            .map(|salt| NonceSalt::parse(&salt))
            .transpose()
            .map_err(|e| Error::corrupt(&path, e))?;
        Ok(Some(Self {
            issuer: wire.issuer,
            idp: wire.idp,
            client_id: wire.client_id,
            expires_at: wire.expires_at,
            token: Zeroizing::new(wire.id_token),
            nonce_salt,
        }))
    }

    /// Deletes the stored token (once the shares are collected, it has no further use).
    pub fn forget(dir: &Path) -> Result<(), Error> {
        files::remove_if_present(&dir.join(ID_TOKEN_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> IdpLogin {
        IdpLogin {
            client: ServiceClient::new("https://idp.test").unwrap(),
            issuer: "http://idp.test".into(),
            digest: Digest::from_bytes([7; 32]),
            client_id: "dtas".into(),
            device_path: "/device_authorization".into(),
            token_path: "/token".into(),
        }
    }

    #[test]
    fn a_token_is_stored_privately_and_never_shown_by_debug() {
        let payload = B64URL.encode(br#"{"iss":"http://idp.test","exp":1900000000}"#);
        let token = IdToken::read(&login(), &format!("e30.{payload}.sig")).unwrap();
        assert_eq!(token.expires_at, 1_900_000_000);
        assert!(!token.expired(1_899_999_999) && token.expired(1_900_000_000));
        assert!(!format!("{token:?}").contains("sig"));

        let dir = tempfile::tempdir().unwrap();
        token.save(dir.path()).unwrap();
        assert_eq!(IdToken::load(dir.path()).unwrap(), Some(token.clone()));
        assert_eq!(token.share_request().nonce_salt, None);
        IdToken::forget(dir.path()).unwrap();
        assert_eq!(IdToken::load(dir.path()).unwrap(), None);

        // A third-party provider's token keeps the salt that opens its nonce, and sends it.
        let salt = NonceSalt::from_bytes([5; 32]);
        let bound = IdToken::new("https://op.test", None, "c", 9, "t", Some(salt.clone()));
        bound.save(dir.path()).unwrap();
        let loaded = IdToken::load(dir.path()).unwrap().unwrap();
        assert_eq!((loaded.idp, loaded.nonce_salt()), (None, Some(&salt)));
        assert_eq!(loaded.share_request().nonce_salt, Some(salt.encode()));
    }

    #[test]
    fn a_verification_uri_off_the_issuers_origin_is_refused() {
        for good in [
            "http://idp.test/device",
            "http://idp.test:80/device?user_code=BCDF-GHJK",
            "HTTP://IDP.test/other/page",
        ] {
            assert!(check_origin("http://idp.test", good).is_ok(), "{good}");
        }
        for bad in [
            "https://idp.test/device",
            "http://idp.test:8080/device",
            "http://evil.test/device",
            "http://idp.test.evil.test/device",
            "http://idp.test@evil.test/device",
            "/device",
            "javascript:alert(1)",
            "data:text/html,<form>",
        ] {
            match check_origin("http://idp.test", bad) {
                Err(Error::VerificationUriOffOrigin { uri, issuer }) => {
                    assert_eq!((uri.as_str(), issuer.as_str()), (bad, "http://idp.test"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_token_request_carries_a_fresh_dpop_proof_by_the_device_key() {
        let key = SecretKey::from_bytes(&[3; 32]).unwrap();
        let uri = "http://idp.test/token";
        let (first, second) = (dpop_proof(&key, uri, None), dpop_proof(&key, uri, None));
        let request = dpop::Request {
            method: "POST",
            uri,
            access_token: None,
        };
        let verified = dpop::verify(&first, &request, unix_now()).unwrap();
        assert_eq!(verified.key(), &key.public_key());
        let again = dpop::verify(&second, &request, unix_now()).unwrap();
        assert_ne!(verified.jti(), again.jti(), "a new jti every time");
    }

    #[test]
    fn a_token_that_is_not_a_jwt_with_exp_is_refused() {
        for bad in ["", "a.b.c", &format!("e30.{}.s", B64URL.encode(b"{}"))] {
            assert!(IdToken::read(&login(), bad).is_err(), "{bad}");
        }
    }
}

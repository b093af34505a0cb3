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

use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::digest::Digest;
use milagro_anchor::dpop;
use milagro_anchor::instructions::ServiceAnchor;
use milagro_anchor::keys::SecretKey;
use milagro_wire::idp::{DeviceAuthorization, ProviderMetadata, TokenAnswer};
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{Error, Step};
use crate::files;
use crate::http::{ServiceClient, DEFAULT_REQUEST_TIMEOUT};
use milagro_http_client::Outbound;

/// File name of the stored ID token in the device's state directory.
pub const ID_TOKEN_FILE: &str = "id-token.json";

/// The RFC 8628 grant type.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The longest polling interval accepted from an IdP, so a hostile one cannot park the
/// device.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

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
    device_code: Zeroizing<String>,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    interval: Duration,
    expires_at: Instant,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("issuer", &self.login.issuer)
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

/// An ID token for the D-TAs' client id. A bearer credential: never printed by `Debug`,
/// wiped from memory on drop, stored with mode 0600.
#[derive(Clone, PartialEq, Eq)]
pub struct IdToken {
    /// The IdP that issued it.
    pub issuer: String,
    /// The IdP's Birth Certificate digest, as the instructions name it.
    pub idp: Digest,
    /// The client id it was issued to (the D-TAs' audience).
    pub client_id: String,
    /// Its `exp` claim (Unix seconds), read without verification, to tell when a new login
    /// is due.
    pub expires_at: u64,
    token: Zeroizing<String>,
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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdTokenWire {
    issuer: String,
    idp: Digest,
    client_id: String,
    expires_at: u64,
    id_token: String,
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

    /// Asks for a device code (scope `openid`); refuses an answer whose verification
    /// URIs are not on the issuer's origin.
    pub fn start(&self) -> Result<DeviceLogin, Error> {
        let answer = self.client.post_form(
            Step::LogIn,
            &self.device_path,
            &[("client_id", &self.client_id), ("scope", "openid")],
        )?;
        let started: DeviceAuthorization = answer.read(Step::LogIn)?;
        let verification_uri = started.verification_uri;
        let verification_uri_complete = started.verification_uri_complete;
        for uri in std::iter::once(&verification_uri).chain(&verification_uri_complete) {
            check_origin(&self.issuer, uri)?;
        }
        // RFC 8628 §3.2: 5 seconds when the IdP names no interval.
        let interval = started.interval.unwrap_or(5);
        Ok(DeviceLogin {
            login: self.clone(),
            device_code: Zeroizing::new(started.device_code),
            user_code: started.user_code,
            verification_uri,
            verification_uri_complete,
            interval: Duration::from_secs(interval.clamp(1, MAX_INTERVAL.as_secs())),
            expires_at: Instant::now() + Duration::from_secs(started.expires_in.min(3600)),
        })
    }
}

impl DeviceLogin {
    /// The code the user types.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user types it.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The same page with the code filled in, if the IdP offers one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// Asks the token endpoint once, with a DPoP proof by `key` (the device's anchored
    /// key, [`crate::Device::key`]): `None` while the user has not decided yet (after a
    /// `slow_down`, the interval grows by 5 seconds, RFC 8628 §3.5).
    pub fn poll(&mut self, key: &SecretKey) -> Result<Option<IdToken>, Error> {
        if Instant::now() > self.expires_at {
            return Err(Error::LoginFailed(
                "the device code expired before the user approved it".into(),
            ));
        }
        let login = &self.login;
        let proof = dpop_proof(key, &format!("{}{}", login.issuer, login.token_path));
        let answer = login.client.post_form_with(
            Step::LogIn,
            &login.token_path,
            &[(dpop::HEADER, &proof)],
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", &self.device_code),
                ("client_id", &login.client_id),
            ],
        );
        match answer {
            Ok(answer) => {
                // A token the IdP did not bind would be refused by every D-TA.
                let tokens: TokenAnswer = answer.read(Step::LogIn)?;
                if !tokens.token_type.eq_ignore_ascii_case("DPoP") {
                    return Err(login_error(format!(
                        "the IdP issued a {} token, not a DPoP-bound one",
                        tokens.token_type
                    )));
                }
                Ok(Some(IdToken::read(login, &tokens.id_token)?))
            }
            Err(Error::Server {
                code: Some(code),
                message,
                ..
            }) => match code.as_str() {
                "authorization_pending" => Ok(None),
                "slow_down" => {
                    self.interval = (self.interval + Duration::from_secs(5)).min(MAX_INTERVAL);
                    Ok(None)
                }
                "access_denied" => Err(Error::LoginFailed("the user denied the login".into())),
                "expired_token" => Err(Error::LoginFailed("the device code expired".into())),
                _ => Err(Error::LoginFailed(format!(
                    "the IdP refused: {code}: {message}"
                ))),
            },
            Err(other) => Err(other),
        }
    }

    /// Polls at the IdP's interval, each poll proving `key` ([`Self::poll`]), until the
    /// user approves (the ID token, bound to `key`), denies or the code expires (an error).
    pub fn wait(mut self, key: &SecretKey) -> Result<IdToken, Error> {
        loop {
            if let Some(token) = self.poll(key)? {
                return Ok(token);
            }
            std::thread::sleep(self.interval);
        }
    }
}

/// A DPoP proof by `key` for `POST uri`, now, with 128 random bits as its `jti`.
fn dpop_proof(key: &SecretKey, uri: &str) -> String {
    let mut jti = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut jti);
    let request = dpop::Request {
        method: "POST",
        uri,
        access_token: None,
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

impl IdToken {
    fn read(login: &IdpLogin, token: &str) -> Result<Self, Error> {
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|payload| B64URL.decode(payload).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .ok_or_else(|| login_error("the id token is not a JWT"))?;
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| login_error("the id token has no exp"))?;
        Ok(Self {
            issuer: login.issuer.clone(),
            idp: login.digest,
            client_id: login.client_id.clone(),
            expires_at,
            token: Zeroizing::new(token.to_owned()),
        })
    }

    /// The token itself, to send to the D-TAs.
    pub fn secret(&self) -> &str {
        &self.token
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
        Ok(Some(Self {
            issuer: wire.issuer,
            idp: wire.idp,
            client_id: wire.client_id,
            expires_at: wire.expires_at,
            token: Zeroizing::new(wire.id_token),
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
        assert_eq!(IdToken::load(dir.path()).unwrap(), Some(token));
        IdToken::forget(dir.path()).unwrap();
        assert_eq!(IdToken::load(dir.path()).unwrap(), None);
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
        let (first, second) = (dpop_proof(&key, uri), dpop_proof(&key, uri));
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

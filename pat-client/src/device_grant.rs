//! The OAuth 2.0 device authorization grant (RFC 8628) as the device runs it at any
//! provider: the device authorization endpoint's answer (§3.2) and the polling of the
//! token endpoint (§3.4, §3.5) at the interval the provider asks, slower when told, until
//! the user approves, denies or the code expires.
//!
//! What else a request carries (a DPoP proof at an anchored IdP, a nonce at a third-party
//! provider), which verification pages the device accepts and what a token answer must
//! hold are each caller's: [`crate::idp_login`], [`crate::third_party_login`].

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::http::Answer;

/// The RFC 8628 grant type.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The longest polling interval accepted from a provider, so a hostile one cannot park
/// the device.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// The interval when the answer names none (RFC 8628 §3.2).
const DEFAULT_INTERVAL_SECS: u64 = 5;

/// The longest a code is waited for, whatever the provider says.
const MAX_LIFETIME_SECS: u64 = 3600;

/// The device authorization endpoint's answer (RFC 8628 §3.2); fields a provider adds
/// are ignored.
#[derive(Deserialize)]
struct AuthorizationAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: Option<u64>,
    interval: Option<u64>,
}

/// A device code waiting for its user's decision.
pub(crate) struct Pending {
    device_code: Zeroizing<String>,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    interval: Duration,
    expires_at: Instant,
}

impl Pending {
    /// Reads the device authorization endpoint's answer `body`; what is wrong with it
    /// otherwise (the caller says whose answer it was).
    pub(crate) fn read(body: Value) -> Result<Self, serde_json::Error> {
        let answer = AuthorizationAnswer::deserialize(body)?;
        let interval = answer.interval.unwrap_or(DEFAULT_INTERVAL_SECS);
        let lifetime = answer.expires_in.unwrap_or(600).min(MAX_LIFETIME_SECS);
        Ok(Self {
            device_code: Zeroizing::new(answer.device_code),
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            verification_uri_complete: answer.verification_uri_complete,
            interval: Duration::from_secs(interval.clamp(1, MAX_INTERVAL.as_secs())),
            expires_at: Instant::now() + Duration::from_secs(lifetime),
        })
    }

    /// The code the user types.
    pub(crate) fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user types it.
    pub(crate) fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The same page with the code filled in, if the provider offers one.
    pub(crate) fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// Both verification pages named, for the caller's check of where they are.
    pub(crate) fn verification_uris(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.verification_uri()).chain(self.verification_uri_complete())
    }

    /// How long to wait before the next token request.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// The form of a token request (§3.4) by `client_id`, or an error once the code has
    /// expired (asking again could only be refused).
    pub(crate) fn token_form<'a>(
        &'a self,
        client_id: &'a str,
    ) -> Result<[(&'a str, &'a str); 3], Error> {
        if Instant::now() > self.expires_at {
            return Err(Error::LoginFailed(
                "the device code expired before the user approved it".into(),
            ));
        }
        Ok([
            ("grant_type", GRANT_TYPE),
            ("device_code", &self.device_code),
            ("client_id", client_id),
        ])
    }

    /// What a token request answered: the body of the token answer, `None` while the
    /// user has not decided (after `slow_down` the interval grows by 5 seconds, §3.5), or
    /// why the login failed (§3.5's error codes; anything else as the provider said it).
    pub(crate) fn outcome(
        &mut self,
        answer: Result<Answer, Error>,
    ) -> Result<Option<Value>, Error> {
        match answer {
            Ok(answer) => Ok(Some(answer.body)),
            Err(Error::Server {
                code: Some(code),
                message,
                url,
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
                    "{url} refused: {code}: {message}"
                ))),
            },
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::error::Step;

    fn refusal(code: &str) -> Result<Answer, Error> {
        Err(Error::Server {
            step: Step::LogIn,
            url: "https://op.test/token".into(),
            status: 400,
            code: Some(code.into()),
            message: "m".into(),
            retry_after_secs: None,
        })
    }

    #[test]
    fn an_answer_is_read_with_rfc_8628_defaults_and_bounds() {
        let body =
            json!({"device_code": "d", "user_code": "U", "verification_uri": "https://op/device"});
        let pending = Pending::read(body).unwrap();
        assert_eq!(pending.interval(), Duration::from_secs(5));
        assert_eq!(
            pending.verification_uris().collect::<Vec<_>>(),
            ["https://op/device"]
        );
        let hostile = json!({"device_code": "d", "user_code": "U", "verification_uri": "v",
            "verification_uri_complete": "w", "interval": 86400, "expires_in": 1_000_000});
        let pending = Pending::read(hostile).unwrap();
        assert_eq!(pending.interval(), MAX_INTERVAL);
        assert!(pending.expires_at <= Instant::now() + Duration::from_secs(MAX_LIFETIME_SECS));
        assert_eq!(pending.verification_uris().count(), 2);
        assert!(Pending::read(json!({"user_code": "U"})).is_err());
    }

    #[test]
    fn polling_waits_slows_down_and_stops_on_a_decision() {
        let body = json!({"device_code": "d", "user_code": "U", "verification_uri": "v"});
        let mut pending = Pending::read(body).unwrap();
        assert_eq!(pending.token_form("c").unwrap()[1], ("device_code", "d"));
        assert!(pending
            .outcome(refusal("authorization_pending"))
            .unwrap()
            .is_none());
        assert!(pending.outcome(refusal("slow_down")).unwrap().is_none());
        assert_eq!(pending.interval(), Duration::from_secs(10));
        for code in ["access_denied", "expired_token", "invalid_grant"] {
            assert!(matches!(
                pending.outcome(refusal(code)),
                Err(Error::LoginFailed(_))
            ));
        }
        let token = Answer {
            status: 200,
            body: json!({"id_token": "t"}),
        };
        assert_eq!(
            pending.outcome(Ok(token)).unwrap(),
            Some(json!({"id_token": "t"}))
        );
        pending.expires_at = Instant::now() - Duration::from_secs(1);
        assert!(matches!(
            pending.token_form("c"),
            Err(Error::LoginFailed(_))
        ));
    }
}

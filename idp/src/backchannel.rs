//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a login session
//! ends, every client that got a code in it and registered a `backchannel_logout_uri` is
//! sent a logout token, server to server, so it can end its own session too.
//!
//! The logout token is a JWT signed like ID tokens (ES256, the key ring's signing key,
//! `typ` `logout+jwt`): `iss`, `aud` (the client), `iat`, `exp`, a fresh `jti`, `sub`,
//! `sid`, and `events` with the back-channel logout event; never a `nonce` (§2.4, so it
//! cannot pass for an ID token).
//!
//! Delivery is bounded: a POST per client with a short timeout, no redirect followed
//! (the URI was checked at registration: https, or http to loopback only), at most
//! [`MAX_CLIENTS_PER_LOGOUT`] clients per logout, at most [`MAX_LOGOUTS_IN_FLIGHT`]
//! logouts being delivered at once (more are logged and dropped), on threads of their
//! own, never holding up the person's logout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::clients::{random_token, Client};
use crate::keys::KeyRing;
use crate::sessions::Session;

/// The event a logout token carries.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid (a client checks `exp`; it should arrive at once).
pub const LOGOUT_TOKEN_SECS: u64 = 120;

/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most clients told of one logout.
pub const MAX_CLIENTS_PER_LOGOUT: usize = 32;

/// The most logouts being delivered at once.
pub const MAX_LOGOUTS_IN_FLIGHT: usize = 16;

/// The claims of `session`'s logout token for `client`, issued by `issuer` at `now`.
pub fn logout_claims(issuer: &str, client: &Client, session: &Session, now: u64) -> Value {
    json!({
        "iss": issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now.saturating_add(LOGOUT_TOKEN_SECS),
        "jti": random_token(16).as_str(),
        "sub": session.who.subject,
        "sid": session.sid,
        "events": { LOGOUT_EVENT: {} },
    })
}

/// One logout token on its way to a client.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The client's `backchannel_logout_uri`.
    pub uri: String,
    /// The signed logout token.
    pub token: String,
}

/// The logout tokens of `session` for those of `clients` that registered a back-channel
/// logout URI, signed at `now`.
pub fn deliveries(
    keys: &KeyRing,
    issuer: &str,
    clients: &[Client],
    session: &Session,
    now: u64,
) -> Vec<Delivery> {
    clients
        .iter()
        .take(MAX_CLIENTS_PER_LOGOUT)
        .filter_map(|client| {
            let uri = client.backchannel_logout_uri.clone()?;
            let claims = logout_claims(issuer, client, session, now);
            let token = keys.sign_jwt("logout+jwt", &claims, now)?;
            Some(Delivery { uri, token })
        })
        .collect()
}

/// Sends logout tokens, within the bounds of the module documentation.
#[derive(Debug)]
pub struct Notifier {
    outbound: milagro_http_client::Outbound,
    in_flight: Arc<AtomicUsize>,
}

impl Notifier {
    /// A notifier trusting the system's roots (and plain http to loopback only).
    pub fn new() -> Result<Self, milagro_http_client::ClientError> {
        Ok(Self {
            outbound: milagro_http_client::Outbound::system()?,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Sends `deliveries` on a thread of their own; `false` if too many logouts are
    /// being delivered already (nothing is sent).
    pub fn send(&self, deliveries: Vec<Delivery>) -> bool {
        if deliveries.is_empty() {
            return true;
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_LOGOUTS_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("too many back-channel logouts in flight; this one is dropped");
            return false;
        }
        let outbound = self.outbound.clone();
        let in_flight = self.in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name("backchannel-logout".into())
            .spawn(move || {
                deliver(&outbound, &deliveries);
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(error) = spawned {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(%error, "no thread for back-channel logout");
            return false;
        }
        true
    }
}

/// POSTs each logout token (`logout_token=…`, Back-Channel Logout 1.0 §2.5).
fn deliver(outbound: &milagro_http_client::Outbound, deliveries: &[Delivery]) {
    // Built on this thread, not the server's: a blocking client may not live (or be
    // dropped) on an async runtime's thread.
    let client = match outbound
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "no HTTP client for back-channel logout");
            return;
        }
    };
    for delivery in deliveries {
        if let Err(error) = outbound.check_url(&delivery.uri) {
            tracing::warn!(%error, "a back-channel logout URI is refused");
            continue;
        }
        let body = serde_urlencoded::to_string([("logout_token", delivery.token.as_str())])
            .unwrap_or_default();
        let sent = client
            .post(&delivery.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cache-control", "no-store")
            .body(body)
            .send();
        match sent {
            Ok(answer) if answer.status().is_success() => {}
            Ok(answer) => tracing::warn!(
                status = answer.status().as_u16(),
                uri = delivery.uri,
                "a client refused a back-channel logout"
            ),
            Err(error) => {
                tracing::warn!(%error, uri = delivery.uri, "a back-channel logout failed")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authentication::Authenticated;
    use crate::clients::ClientMetadata;
    use crate::config::KeyRotation;

    #[test]
    fn a_logout_token_names_the_session_and_the_event_and_carries_no_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = KeyRotation {
            rotation: Duration::from_secs(1000),
            prepublish: Duration::from_secs(10),
        };
        let keys = KeyRing::open(dir.path(), rotation, Duration::from_secs(60), 5).unwrap();
        let body =
            br#"{"redirect_uris":["https://rp/cb"],"backchannel_logout_uri":"https://rp/bc"}"#;
        let (with_uri, _) = ClientMetadata::parse(body).unwrap().register(1);
        let plain = br#"{"redirect_uris":["https://rp/cb"]}"#;
        let (without, _) = ClientMetadata::parse(plain).unwrap().register(1);
        let session = Session {
            sid: "sid-1".into(),
            who: Authenticated::by_password("alice", 3),
            expires: 100,
            clients: vec![],
        };
        let sent = deliveries(
            &keys,
            "https://idp",
            &[with_uri.clone(), without],
            &session,
            5,
        );
        assert_eq!(sent.len(), 1, "only the client with a URI");
        assert_eq!(sent[0].uri, "https://rp/bc");
        let claims = keys.verify_own(&sent[0].token).unwrap();
        assert_eq!(claims["iss"], "https://idp");
        assert_eq!(claims["aud"], with_uri.client_id);
        assert_eq!(
            (claims["sub"].as_str(), claims["sid"].as_str()),
            (Some("alice"), Some("sid-1"))
        );
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert_eq!(claims["exp"], 5 + LOGOUT_TOKEN_SECS);
        assert!(claims.get("nonce").is_none());
    }
}

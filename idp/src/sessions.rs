//! Login sessions: what lets a browser that signed in once get codes for other clients
//! without signing in again (single sign-on), until the session expires or the person
//! logs out.
//!
//! A session is made only by a fresh authentication ([`Sessions::create`]), with a new
//! random 256-bit id handed to the browser as a cookie; only the id's SHA-256 is stored
//! (the `sessions` tree), so a copy of the database lets nobody resume a session, and an
//! id a browser brings is never adopted (no session fixation: an unknown id is no
//! session). Each session has a public random `sid` (the one ID and logout tokens carry,
//! Back-Channel Logout 1.0 §2.1) and the clients that got codes in it, so a logout can
//! tell each of them. Expired sessions read as none and are deleted by [`crate::sweep`].
//!
//! Consents a person gave are the `consents` tree ([`Consents`]): per person and client,
//! the scopes they approved, until they expire.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::authentication::Authenticated;
use crate::clients::random_token;
use crate::grants::{hashed, update};
use crate::oauth::OAuthError;

/// The most clients one session remembers (for back-channel logout); a session used with
/// more keeps the first ones.
pub const MAX_CLIENTS_PER_SESSION: usize = 32;

/// A login session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The session's public id (`sid`).
    pub sid: String,
    /// Who signed in, when and how.
    pub who: Authenticated,
    /// Expiry (Unix seconds).
    pub expires: u64,
    /// The clients that got a code in this session, first first.
    pub clients: Vec<String>,
}

/// Whether a cookie value could be a session id (43 base64url characters): anything
/// else is no session, without a lookup.
fn well_formed(cookie: &str) -> bool {
    cookie.len() == 43
        && cookie
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `sessions` tree: SHA-256(session id) → JSON [`Session`].
#[derive(Debug, Clone)]
pub struct Sessions {
    tree: sled::Tree,
}

impl Sessions {
    /// Opens the tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            tree: db.open_tree("sessions")?,
        })
    }

    /// A new session for `who`, who signed in for `client_id`, valid until `expires`: the
    /// secret id to set as the cookie, and the session.
    pub fn create(
        &self,
        who: &Authenticated,
        client_id: &str,
        expires: u64,
    ) -> Result<(Zeroizing<String>, Session), OAuthError> {
        let id = random_token(32);
        let session = Session {
            sid: random_token(16).to_string(),
            who: who.clone(),
            expires,
            clients: vec![client_id.to_owned()],
        };
        let json = serde_json::to_vec(&session).map_err(OAuthError::internal)?;
        self.tree
            .insert(hashed(&id), json)
            .map_err(OAuthError::internal)?;
        self.tree.flush().map_err(OAuthError::internal)?;
        Ok((id, session))
    }

    /// The live session whose id is `cookie`, if any.
    pub fn get(&self, cookie: &str, now: u64) -> Result<Option<Session>, OAuthError> {
        if !well_formed(cookie) {
            return Ok(None);
        }
        let row: Option<Session> = self
            .tree
            .get(hashed(cookie))
            .map_err(OAuthError::internal)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(OAuthError::internal))
            .transpose()?;
        Ok(row.filter(|s| now < s.expires))
    }

    /// Records that `client_id` got a code in the live session `cookie`; the session, or
    /// `None` if it is not live.
    pub fn join(
        &self,
        cookie: &str,
        client_id: &str,
        now: u64,
    ) -> Result<Option<Session>, OAuthError> {
        if !well_formed(cookie) {
            return Ok(None);
        }
        update(&self.tree, &hashed(cookie), |row: Option<Session>| {
            let Some(mut session) = row.filter(|s| now < s.expires) else {
                return Ok((None, None));
            };
            if session.clients.iter().any(|c| c == client_id)
                || session.clients.len() >= MAX_CLIENTS_PER_SESSION
            {
                return Ok((None, Some(session)));
            }
            session.clients.push(client_id.to_owned());
            Ok((Some(session.clone()), Some(session)))
        })
    }

    /// Ends the session `cookie`: deleted, and returned if it was live.
    pub fn end(&self, cookie: &str, now: u64) -> Result<Option<Session>, OAuthError> {
        if !well_formed(cookie) {
            return Ok(None);
        }
        let removed = self
            .tree
            .remove(hashed(cookie))
            .map_err(OAuthError::internal)?;
        self.tree.flush().map_err(OAuthError::internal)?;
        let session: Option<Session> = removed
            .map(|bytes| serde_json::from_slice(&bytes).map_err(OAuthError::internal))
            .transpose()?;
        Ok(session.filter(|s| now < s.expires))
    }
}

/// A consent as stored: the scopes approved, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRow {
    scopes: Vec<String>,
    expires: u64,
}

/// The `consents` tree: SHA-256(subject ‖ 0x00 ‖ client id) → JSON (scopes, expiry).
#[derive(Debug, Clone)]
pub struct Consents {
    tree: sled::Tree,
}

fn consent_key(subject: &str, client_id: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(subject.as_bytes());
    hash.update([0]);
    hash.update(client_id.as_bytes());
    hash.finalize().into()
}

impl Consents {
    /// Opens the tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            tree: db.open_tree("consents")?,
        })
    }

    /// Whether `subject` approved every scope of `scope` (space-separated) for
    /// `client_id`, and the approval is live.
    pub fn covers(
        &self,
        subject: &str,
        client_id: &str,
        scope: &str,
        now: u64,
    ) -> Result<bool, OAuthError> {
        let row: Option<ConsentRow> = self
            .tree
            .get(consent_key(subject, client_id))
            .map_err(OAuthError::internal)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(OAuthError::internal))
            .transpose()?;
        Ok(row.is_some_and(|row| {
            now < row.expires
                && scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .all(|s| row.scopes.iter().any(|g| g == s))
        }))
    }

    /// Remembers that `subject` approved `scope` for `client_id` (added to what they
    /// approved before), until `expires`.
    pub fn remember(
        &self,
        subject: &str,
        client_id: &str,
        scope: &str,
        expires: u64,
    ) -> Result<(), OAuthError> {
        update(
            &self.tree,
            &consent_key(subject, client_id),
            |row: Option<ConsentRow>| {
                let mut scopes = row.map(|r| r.scopes).unwrap_or_default();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|g| g == s) {
                        scopes.push(s.to_owned());
                    }
                }
                Ok((Some(ConsentRow { scopes, expires }), ()))
            },
        )?;
        self.tree.flush().map_err(OAuthError::internal).map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    #[test]
    fn a_session_is_found_by_its_secret_id_until_it_expires_or_ends() {
        let sessions = Sessions::open(&db()).unwrap();
        let alice = Authenticated::by_password("alice", 10);
        let (id, made) = sessions.create(&alice, "rp1", 100).unwrap();
        assert_eq!(sessions.get(&id, 50).unwrap(), Some(made.clone()));
        assert_eq!(sessions.get(&id, 100).unwrap(), None, "expired");
        // Only the hash is stored: the id itself is no key.
        assert!(sessions.tree.get(id.as_bytes()).unwrap().is_none());
        // A guessed or malformed id is no session.
        assert_eq!(sessions.get(&random_token(32), 50).unwrap(), None);
        assert_eq!(sessions.get("short", 50).unwrap(), None);
        let joined = sessions.join(&id, "rp2", 60).unwrap().unwrap();
        assert_eq!(joined.clients, ["rp1", "rp2"]);
        assert_eq!(
            sessions
                .join(&id, "rp2", 61)
                .unwrap()
                .unwrap()
                .clients
                .len(),
            2
        );
        assert_eq!(sessions.end(&id, 70).unwrap().unwrap().sid, made.sid);
        assert_eq!(sessions.get(&id, 71).unwrap(), None);
        assert_eq!(sessions.end(&id, 72).unwrap(), None);
    }

    #[test]
    fn a_consent_covers_the_scopes_approved_until_it_expires() {
        let consents = Consents::open(&db()).unwrap();
        assert!(!consents.covers("alice", "rp", "openid", 1).unwrap());
        consents.remember("alice", "rp", "openid", 100).unwrap();
        assert!(consents.covers("alice", "rp", "openid", 1).unwrap());
        assert!(!consents.covers("alice", "rp", "openid profile", 1).unwrap());
        assert!(!consents.covers("bob", "rp", "openid", 1).unwrap());
        assert!(!consents.covers("alice", "rp2", "openid", 1).unwrap());
        consents.remember("alice", "rp", "profile", 100).unwrap();
        assert!(consents.covers("alice", "rp", "openid profile", 1).unwrap());
        assert!(!consents.covers("alice", "rp", "openid", 100).unwrap());
    }
}

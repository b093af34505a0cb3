//! People who log in: usernames, argon2id password hashes (for those who have a password)
//! and stable subject identifiers.
//!
//! [`UserStore`] is the trait the IdP uses; [`SledUsers`] keeps users in the `users` tree
//! of the IdP database, [`MemoryUsers`] in memory (for tests). A user's `sub` claim is a
//! random identifier drawn once, never the username: renaming cannot re-point tokens, and
//! relying parties learn nothing from it.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's defaults, RFC 9106's second
//! recommended profile: 19 MiB, 2 passes) and a random salt, in PHC string format, in
//! memory that [`crate::passwords::Passwords`] allocates once and reuses. An unknown
//! username costs the same hash as a wrong password, so timing does not tell which
//! usernames exist.
//!
//! A person who registered by proving an e-mail address ([`crate::enrolment_codes`]) has
//! no password at all: their username is the address ([`UserStore::add_by_email`]), their
//! row has no hash, and a password typed for them fails like a wrong one (at the same
//! cost). Rows written before passwords became optional still read: `password_hash` was a
//! string then and is an optional string now.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::passwords::Passwords;

/// The longest username, in bytes.
pub const MAX_USERNAME: usize = 64;
/// The shortest and longest passwords, in bytes.
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=1024;

/// A user as stored (the hash, never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The stable, random subject identifier (`sub`).
    pub subject: String,
    /// What the person types (`preferred_username`).
    pub username: String,
    /// argon2id PHC string; `None` for a person who registered without a password.
    pub password_hash: Option<String>,
    /// The e-mail address the person proved control of (`email` claim), if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When the user was added (Unix seconds).
    pub created: u64,
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The username is taken.
    #[error("user {0:?} exists already")]
    Exists(String),
    /// A username or password the rules refuse.
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed (a bug or exhausted memory).
    #[error("password hashing: {0}")]
    Hash(String),
    /// The storage failed or holds something unreadable.
    #[error("user storage: {0}")]
    Storage(String),
}

/// Where users live.
pub trait UserStore: Send + Sync + std::fmt::Debug {
    /// Adds a user; refuses a taken username.
    fn add(&self, username: &str, password: &str, now: u64) -> Result<User, UserError>;
    /// The user `username` if `password` is theirs; `None` otherwise (same cost either way).
    fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>, UserError>;
    /// The user with subject `subject`.
    fn by_subject(&self, subject: &str) -> Result<Option<User>, UserError>;
    /// The user whose username is `username`.
    fn by_username(&self, username: &str) -> Result<Option<User>, UserError>;
    /// Adds a person without a password, known by the e-mail address they proved
    /// (normalised by [`normalise_email`]; it is also their username). Refuses a taken one.
    fn add_by_email(&self, email: &str, now: u64) -> Result<User, UserError>;
}

/// An e-mail address as the IdP keys it: trimmed and lowercased, one `@` between a
/// non-empty local part and a domain with a dot, within the username rules
/// ([`check_username`]: letters, digits, `.`, `_`, `-`, `@`, at most 64 bytes). `None`
/// for anything else: the address is never stored or compared in another form.
pub fn normalise_email(typed: &str) -> Option<String> {
    let email = typed.trim().to_ascii_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && check_username(&email).is_ok();
    ok.then_some(email)
}

/// The domain of a normalised e-mail address (after its `@`).
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Checks a username: 1 to 64 bytes of letters, digits and `.`, `_`, `-`, `@`.
pub fn check_username(username: &str) -> Result<(), UserError> {
    let ok = !username.is_empty()
        && username.len() <= MAX_USERNAME
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(
            "a username is 1 to 64 of letters, digits and . - _ @".into(),
        ))
    }
}

fn new_user(
    passwords: &Passwords,
    username: &str,
    password: &str,
    now: u64,
) -> Result<User, UserError> {
    check_username(username)?;
    if !PASSWORD_LEN.contains(&password.len()) {
        return Err(UserError::Invalid(
            "a password is 8 to 1024 bytes long".into(),
        ));
    }
    let hash = passwords.hash(password)?;
    Ok(User {
        password_hash: Some(hash),
        ..user_without_password(username, None, now)
    })
}

fn user_without_password(username: &str, email: Option<String>, now: u64) -> User {
    let mut subject = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut subject);
    User {
        subject: B64URL.encode(subject),
        username: username.to_owned(),
        password_hash: None,
        email,
        created: now,
    }
}

fn new_email_user(email: &str, now: u64) -> Result<User, UserError> {
    let email = normalise_email(email)
        .ok_or_else(|| UserError::Invalid("not an e-mail address the IdP accepts".into()))?;
    Ok(user_without_password(&email, Some(email.clone()), now))
}

/// Verifies `password` against `user` (or, for an unknown user, against a fixed hash so
/// that the answer takes as long).
fn verify(
    passwords: &Passwords,
    user: Option<User>,
    password: &str,
) -> Result<Option<User>, UserError> {
    /// argon2id, default parameters, of a password nobody has.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$k7Kg2Wn0Vn3p1jWfO0c3QKqzw9bn6bMmb8mLqZp9wZA";
    // A person without a password costs the same check as an unknown one, and fails.
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY.to_owned());
    let user = user.filter(|u| u.password_hash.is_some());
    let ok = passwords.verify(&stored, password)?;
    Ok(user.filter(|_| ok))
}

/// Users in the `users` tree of a sled database: `u\0 ‖ username` → JSON [`User`],
/// `s\0 ‖ subject` → username, both written in one transaction.
#[derive(Debug, Clone)]
pub struct SledUsers {
    tree: sled::Tree,
    passwords: Arc<Passwords>,
}

fn storage(e: impl std::fmt::Display) -> UserError {
    UserError::Storage(e.to_string())
}

impl SledUsers {
    /// Opens the `users` tree of `db`; hashes run in `passwords`' memory.
    pub fn open(db: &sled::Db, passwords: Arc<Passwords>) -> Result<Self, UserError> {
        Ok(Self {
            tree: db.open_tree("users").map_err(storage)?,
            passwords,
        })
    }

    fn get(&self, username: &str) -> Result<Option<User>, UserError> {
        self.tree
            .get([b"u\0", username.as_bytes()].concat())
            .map_err(storage)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(storage))
            .transpose()
    }
}

impl SledUsers {
    fn insert(&self, user: User) -> Result<User, UserError> {
        let username = user.username.as_str();
        let json = serde_json::to_vec(&user).map_err(storage)?;
        let by_name = [b"u\0", username.as_bytes()].concat();
        let by_subject = [b"s\0", user.subject.as_bytes()].concat();
        let inserted = self
            .tree
            .transaction(|tx| {
                if tx.get(&by_name)?.is_some() {
                    return Ok(false);
                }
                tx.insert(by_name.as_slice(), json.as_slice())?;
                tx.insert(by_subject.as_slice(), username.as_bytes())?;
                Ok(true)
            })
            .map_err(|e: sled::transaction::TransactionError<()>| storage(format!("{e:?}")))?;
        if !inserted {
            return Err(UserError::Exists(username.to_owned()));
        }
        self.tree.flush().map_err(storage)?;
        Ok(user)
    }
}

impl UserStore for SledUsers {
    fn add(&self, username: &str, password: &str, now: u64) -> Result<User, UserError> {
        self.insert(new_user(&self.passwords, username, password, now)?)
    }

    fn add_by_email(&self, email: &str, now: u64) -> Result<User, UserError> {
        self.insert(new_email_user(email, now)?)
    }

    fn by_username(&self, username: &str) -> Result<Option<User>, UserError> {
        if check_username(username).is_err() {
            return Ok(None);
        }
        self.get(username)
    }

    fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>, UserError> {
        let user = if check_username(username).is_ok() {
            self.get(username)?
        } else {
            None
        };
        verify(&self.passwords, user, password)
    }

    fn by_subject(&self, subject: &str) -> Result<Option<User>, UserError> {
        let Some(username) = self
            .tree
            .get([b"s\0", subject.as_bytes()].concat())
            .map_err(storage)?
        else {
            return Ok(None);
        };
        self.get(&String::from_utf8_lossy(&username))
    }
}

/// Users in memory, for tests.
#[derive(Debug)]
pub struct MemoryUsers {
    users: Mutex<BTreeMap<String, User>>,
    passwords: Passwords,
}

impl Default for MemoryUsers {
    fn default() -> Self {
        Self {
            users: Mutex::default(),
            passwords: Passwords::new(crate::passwords::default_slots()),
        }
    }
}

impl MemoryUsers {
    fn insert(&self, user: User) -> Result<User, UserError> {
        let username = user.username.clone();
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if users.contains_key(&username) {
            return Err(UserError::Exists(username));
        }
        users.insert(username, user.clone());
        Ok(user)
    }
}

impl UserStore for MemoryUsers {
    fn add(&self, username: &str, password: &str, now: u64) -> Result<User, UserError> {
        self.insert(new_user(&self.passwords, username, password, now)?)
    }

    fn add_by_email(&self, email: &str, now: u64) -> Result<User, UserError> {
        self.insert(new_email_user(email, now)?)
    }

    fn by_username(&self, username: &str) -> Result<Option<User>, UserError> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(users.get(username).cloned())
    }

    fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>, UserError> {
        let user = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(username)
            .cloned();
        verify(&self.passwords, user, password)
    }

    fn by_subject(&self, subject: &str) -> Result<Option<User>, UserError> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(users.values().find(|u| u.subject == subject).cloned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn the_rules_hold(store: &dyn UserStore) {
        let alice = store.add("alice", "correct horse", 1).unwrap();
        let hash = alice.password_hash.clone().unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert!(matches!(
            store.add("alice", "another password", 2),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            store.add("bad name", "long enough", 2),
            Err(UserError::Invalid(_))
        ));
        assert!(matches!(
            store.add("bob", "short", 2),
            Err(UserError::Invalid(_))
        ));
        assert_eq!(
            store.authenticate("alice", "correct horse").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.authenticate("alice", "wrong horse").unwrap(), None);
        assert_eq!(store.authenticate("nobody", "correct horse").unwrap(), None);
        assert_eq!(store.by_subject(&alice.subject).unwrap(), Some(alice));
        assert_eq!(store.by_subject("unknown").unwrap(), None);

        // A person without a password: found by address, never by a password.
        let carol = store.add_by_email(" Carol@Example.COM ", 3).unwrap();
        assert_eq!(carol.username, "carol@example.com");
        assert_eq!(carol.email.as_deref(), Some("carol@example.com"));
        assert_eq!(carol.password_hash, None);
        assert!(matches!(
            store.add_by_email("carol@example.com", 4),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            store.add_by_email("not-an-address", 4),
            Err(UserError::Invalid(_))
        ));
        assert_eq!(
            store.by_username("carol@example.com").unwrap(),
            Some(carol.clone())
        );
        assert_eq!(store.by_subject(&carol.subject).unwrap(), Some(carol));
        assert_eq!(store.authenticate("carol@example.com", "").unwrap(), None);
        assert_eq!(
            store
                .authenticate("carol@example.com", "any password")
                .unwrap(),
            None
        );
    }

    #[test]
    fn rows_written_with_a_password_string_still_read() {
        let old = r#"{"subject":"s","username":"alice","password_hash":"$argon2id$x","created":1}"#;
        let user: User = serde_json::from_str(old).unwrap();
        assert_eq!(user.password_hash.as_deref(), Some("$argon2id$x"));
        assert_eq!(user.email, None);
    }

    #[test]
    fn addresses_are_normalised_or_refused() {
        assert_eq!(normalise_email("A.B@X.org").as_deref(), Some("a.b@x.org"));
        for bad in [
            "",
            "@x.org",
            "a@",
            "a@b",
            "a@@b.org",
            "a b@x.org",
            "a@.org",
            "a@x.",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
        assert_eq!(email_domain("a@x.org"), "x.org");
    }

    #[test]
    fn the_sled_store_keeps_hashes_and_refuses_duplicates() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        the_rules_hold(&SledUsers::open(&db, Arc::new(Passwords::new(1))).unwrap());
    }

    #[test]
    fn the_memory_store_behaves_the_same() {
        the_rules_hold(&MemoryUsers::default());
    }
}

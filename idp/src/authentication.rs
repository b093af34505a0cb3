//! Who signed in, how and when: what an authentication method (the password form, an
//! M-Pin sign-in from the person's device) hands on to the endpoint that issues the
//! grant, and what the ID token then says of it (`auth_time`, `amr`, `acr`).

use serde::{Deserialize, Serialize};

/// The `acr` of a sign-in with a password: one factor, something the person knows.
pub const ACR_PASSWORD: &str = "urn:milagro:acr:password";

/// RFC 8176's method reference for a password.
pub const AMR_PASSWORD: &str = "pwd";

/// A person who has just authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authenticated {
    /// Their subject identifier (`sub`).
    pub subject: String,
    /// When (Unix seconds).
    pub auth_time: u64,
    /// How: RFC 8176 authentication method references, in the order used.
    pub amr: Vec<String>,
    /// The authentication context class the methods satisfy.
    pub acr: Option<String>,
}

impl Authenticated {
    /// `subject` typed the right password at `now`.
    pub fn by_password(subject: &str, now: u64) -> Self {
        Self {
            subject: subject.to_owned(),
            auth_time: now,
            amr: vec![AMR_PASSWORD.to_owned()],
            acr: Some(ACR_PASSWORD.to_owned()),
        }
    }
}

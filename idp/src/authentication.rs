//! Who signed in, how and when: what an authentication method (the password form, an
//! M-Pin sign-in from the person's device) hands on to the endpoint that issues the
//! grant, and what the ID token then says of it (`auth_time`, `amr`, `acr`).

use serde::{Deserialize, Serialize};

/// The `acr` of a sign-in with a password: one factor, something the person knows.
pub const ACR_PASSWORD: &str = "urn:milagro:acr:password";

/// RFC 8176's method reference for a password.
pub const AMR_PASSWORD: &str = "pwd";

/// The `acr` of a sign-in with M-Pin from the person's registered device: two factors,
/// something the person knows (the PIN) and something they have (the device's M-Pin
/// token and time permit, summed from the D-TAs' shares), proven together in zero
/// knowledge; neither travels to the IdP, and the IdP stores nothing that would let it
/// (or a thief of its database) sign anyone in.
pub const ACR_MPIN: &str = "urn:milagro:acr:mpin";

/// Every `acr` this IdP issues (`acr_values_supported`).
pub const ACR_VALUES: [&str; 2] = [ACR_MPIN, ACR_PASSWORD];

/// RFC 8176 §2: a personal identification number (the M-Pin PIN).
pub const AMR_PIN: &str = "pin";
/// RFC 8176 §2: proof of possession of a *software-secured* key. The M-Pin token and
/// time permit are kept in a file of the device's state directory, not in a hardware
/// module, so `hwk` would overstate it.
pub const AMR_SOFTWARE_KEY: &str = "swk";
/// RFC 8176 §2: more than one factor (the PIN and the key, in one proof).
pub const AMR_MFA: &str = "mfa";

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

    /// `subject`'s registered device proved, at `now`, an M-Pin token with the PIN typed:
    /// `amr` `["pin", "swk", "mfa"]`, `acr` [`ACR_MPIN`].
    pub fn by_mpin(subject: &str, now: u64) -> Self {
        Self {
            subject: subject.to_owned(),
            auth_time: now,
            amr: [AMR_PIN, AMR_SOFTWARE_KEY, AMR_MFA]
                .map(str::to_owned)
                .to_vec(),
            acr: Some(ACR_MPIN.to_owned()),
        }
    }
}

//! The IdP's sign-in API for devices (`/v1/signin/*`): a person's device approves the
//! authorization request a sign-in page shows, by its access number, with the two M-Pin
//! passes.
//!
//! | step | request | answer |
//! |---|---|---|
//! | which client asks | `GET /v1/signin/request?access_number=N` | [`SigninRequest`] |
//! | pass 1 | [`SigninCommit`] `{"access_number", "commitment"}` | the M-Pin challenge answer |
//! | pass 2 | [`SigninProve`] `{"access_number", "proof"}` | [`SigninApproved`] |
//!
//! The M-Pin messages themselves (`commitment`, `proof`, the challenge answer) are
//! `milagro_mpin::wire`'s, carried as the type parameters `C` and `P`.

use serde::{Deserialize, Serialize};

/// The authorization request behind an access number, as the device shows it before the
/// person types the PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninRequest {
    /// The access number, normalised (digits only).
    pub access_number: String,
    /// The client asking.
    pub client_id: String,
    /// Its registered name, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Where the code will go.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scope: String,
    /// Seconds the access number is still good for.
    pub expires_in: u64,
}

/// Pass 1 of a sign-in: the M-Pin commitment, for the request of `access_number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninCommit<C> {
    /// The access number the sign-in page shows.
    pub access_number: String,
    /// The M-Pin commitment (`milagro_mpin::wire::CommitRequest`).
    pub commitment: C,
}

/// Pass 2 of a sign-in: the M-Pin proof for the challenge pass 1 answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninProve<P> {
    /// The same access number as pass 1.
    pub access_number: String,
    /// The M-Pin proof (`milagro_mpin::wire::ProveRequest`).
    pub proof: P,
}

/// A sign-in the device approved: the page that shows the access number now goes on to
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninApproved {
    /// Always `approved`.
    pub status: String,
    /// The client the person is signed in to.
    pub client_id: String,
    /// The person (`sub`).
    pub subject: String,
}

//! The wire format of the Milagro services, as serde types that the handlers answer with
//! and the clients read: one definition of each body, so a server and its clients cannot
//! drift apart, and the OpenAPI documents (checked against real answers by the tests)
//! describe these types.
//!
//! - [`ErrorBody`]: the one error body every service answers with (the OAuth endpoints'
//!   errors have the same two fields, RFC 6749 §5.2);
//! - [`shares`]: the D-TA's share API (over Milagro TLS): the client-share request and
//!   the server-share, client-share and time-permit answers;
//! - [`login`]: the authentication server's answer to a login;
//! - [`health`]: the readiness answer every service gives at `/readyz`.
//!
//! Requests refuse fields they do not know (a client expecting an option the server
//! ignores finds out); answers accept them (a field a newer server adds does not break an
//! older device).
//!
//! What it does not do: check what the fields mean. Points stay hex strings and
//! identities bytes-as-text here; the receiver parses them into checked types (a share's
//! point must be on the curve, an answer must come from the D-TA that was asked). Nor
//! does it do I/O: it depends on serde and the domain's `Digest` only.
//!
//! ```
//! use milagro_wire::shares::ClientShareRequest;
//! let request = ClientShareRequest { id_token: "eyJ...".into(), nonce_salt: None };
//! let text = serde_json::to_string(&request).unwrap();
//! assert_eq!(text, r#"{"id_token":"eyJ..."}"#);
//! ```

pub mod health;
pub mod login;
pub mod shares;

use serde::{Deserialize, Serialize};

/// The body of every error answer: a stable machine-readable code and a sentence for
/// people (`{"error": "not_found", "error_description": "no such record"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code (`bad_request`, `not_found`, `token_bound_to_another_key`, …).
    pub error: String,
    /// What went wrong, for a person.
    pub error_description: String,
}

//! The wire format of the Milagro services, as serde types that the handlers answer with
//! and the clients read: one definition of each body, so a server and its clients cannot
//! drift apart, and the OpenAPI documents (checked against real answers by the tests)
//! describe these types.
//!
//! - [`ErrorBody`]: the one error body every service answers with (the OAuth endpoints'
//!   errors have the same two fields, RFC 6749 §5.2);
//! - [`service`]: what every service serves alike (its anchored Birth Certificate, where
//!   its own anchor stands, its audit log's signed checkpoints);
//! - [`tbs`]: the TBS's status, registry, enrolment, audit and tenant APIs;
//! - [`idp`]: the IdP's discovery document with its Milagro members, the device grant's
//!   and the token endpoint's answers, its admin API and activity log checkpoint;
//! - [`dta`] and [`shares`]: the D-TA's status, and its share API (over Milagro TLS): the
//!   client-share request and the server-share, client-share and time-permit answers;
//! - [`authserver`] and [`login`]: the authentication server's status and revocation
//!   API, and its answer to a login and the session token's claims;
//! - [`health`]: the readiness answer every service gives at `/readyz`.
//!
//! Each service's committed OpenAPI document (`tbs/openapi.json`, `idp/openapi.json`,
//! `dta/openapi.json`, `dta/share-openapi.json`, `authserver/openapi.json`) describes
//! these types; a test of the end-to-end suite (`tests/tests/e2e/wire_documents`)
//! serializes values of every type and checks them against the document's schema, member
//! by member, both ways.
//!
//! Requests refuse fields they do not know (a client expecting an option the server
//! ignores finds out); answers accept them (a field a newer server adds does not break an
//! older device). One exception, said where it is: a session token's claims.
//!
//! What it does not do: check what the fields mean. Points and keys stay hex strings,
//! transaction ids and block hashes hex text, sealed envelopes base64url text, and
//! identities (tenants, groups, M-Pin ids) text here; the receiver parses them into
//! checked types (a share's point must be on the curve, an answer must come from the D-TA
//! that was asked, a sealed offer must open under the device's key). Values whose JSON
//! form the domain crate already defines are its types, not a second definition of it:
//! `Digest`, a party's `Role`, a record's `RecordKind`, an anchor proof's
//! `AnchorProofJson` (hex text too), and the audit log's inclusion and consistency proofs
//! (whose reading checks only their shape: a path as long as the sizes call for;
//! verifying them is the reader's). Nor does it do I/O: it depends on serde, serde_json
//! (for the one member that is a JSON document of its own, a Birth Certificate) and the
//! pure domain crate, `milagro-anchor`.
//!
//! ```
//! use milagro_wire::shares::ClientShareRequest;
//! let request = ClientShareRequest { id_token: "eyJ...".into(), nonce_salt: None };
//! let text = serde_json::to_string(&request).unwrap();
//! assert_eq!(text, r#"{"id_token":"eyJ..."}"#);
//! ```

pub mod authserver;
pub mod ciba;
pub mod dta;
pub mod health;
pub mod idp;
pub mod login;
pub mod service;
pub mod shares;
pub mod signin;
pub mod tbs;

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

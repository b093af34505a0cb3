//! Each service's committed OpenAPI document against the `milagro_wire` types its
//! handlers answer with and its clients read ([`milagro_tests::wire_schema`]): values of
//! every type that has a schema there (a component, or an operation's inline request or
//! answer) are checked against it, member by member, in both directions.
#![allow(clippy::unwrap_used)]

mod authserver;
mod dta;
mod idp;
mod tbs;

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::proof::AnchorProofJson;
use milagro_tests::wire_schema::{component, Documented};
use milagro_wire::service::{AnchorStatus, AnchoredBirthCertificate, SignedCheckpoint};
use milagro_wire::ErrorBody;

/// 32 bytes of `n`, hex: a txid or block hash.
fn hash(n: u8) -> String {
    hex::encode([n; 32])
}

/// A fresh compressed public key, hex.
fn key() -> String {
    SecretKey::generate(&mut rand_core::OsRng)
        .public_key()
        .to_string()
}

/// An anchor proof's JSON form (its members; the proof itself is not checked here).
fn anchor_proof() -> AnchorProofJson {
    AnchorProofJson {
        version: 2,
        tx: "0200".into(),
        funding_tx: "0201".into(),
        coinbase_tx: "0202".into(),
        txoutproof: "0203".into(),
    }
}

/// The anchored certificate document of a fresh party of each role that lists purpose
/// keys (between them, every purpose key a certificate may list).
fn anchored_certificates() -> Vec<AnchoredBirthCertificate> {
    [Role::Tbs, Role::AuthServer]
        .into_iter()
        .map(|role| {
            let (_, bc) = milagro_tests::party(role, "Wire Party");
            AnchoredBirthCertificate {
                birth_certificate: serde_json::from_slice(&bc.to_canonical_json()).unwrap(),
                digest: bc.digest(),
                public_key: bc.public_key().to_string(),
                txid: hash(1),
                vout: 1,
                height: 120,
                block_hash: hash(2),
                depth: 6,
                anchor_proof: anchor_proof(),
            }
        })
        .collect()
}

/// Each state of a service's own anchor.
fn anchor_states() -> Vec<AnchorStatus> {
    vec![
        AnchorStatus::None,
        AnchorStatus::Pending { txid: hash(3) },
        AnchorStatus::Confirmed {
            txid: hash(3),
            height: 101,
            block_hash: hash(4),
        },
    ]
}

/// An error body.
fn errors() -> Vec<ErrorBody> {
    vec![ErrorBody {
        error: "not_found".into(),
        error_description: "no such record".into(),
    }]
}

/// A signed checkpoint of an audit log.
fn signed_checkpoint() -> SignedCheckpoint {
    SignedCheckpoint {
        sequence: 3,
        note: "origin\n4\nroot\n\n— origin sig\n".into(),
        size: 4,
        root: Digest::sha256(b"root"),
        digest: Digest::sha256(b"note"),
        txid: hash(5),
    }
}

/// What every service's document describes alike: its certificate document and errors.
fn common(document: &mut Documented) -> &mut Documented {
    document
        .values(
            &component("AnchoredBirthCertificate"),
            &anchored_certificates(),
        )
        .values(&component("AnchorProof"), &[anchor_proof()])
        .values(&component("Error"), &errors())
}

/// Fails with every problem `document` has, one per line.
fn assert_agrees(name: &str, document: &Documented) {
    let problems = document.problems();
    assert!(
        problems.is_empty(),
        "{name} and the milagro_wire types disagree:\n{}",
        problems.join("\n")
    );
}

//! `authserver/openapi.json` against `milagro_wire::authserver` and `milagro_wire::login`
//! (and the M-Pin passes' bodies, `milagro_mpin::wire`).

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_authserver::api::{
    COMMIT_PATH, OPENAPI_JSON, PROVE_PATH, REVOCATIONS_PATH, SESSION_PATH,
};
use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_tests::openapi::response_schema;
use milagro_tests::wire_schema::{component, request_body, Documented};
use milagro_wire::authserver::{
    DtaShareStatus, Revocation, Revocations, RevokeRequest, SecretState, ServerSecretStatus,
    ShareState, Status,
};
use milagro_wire::login::{SessionAnswer, SessionClaims};
use milagro_wire::service::PartyStatus;

use super::{anchor_states, assert_agrees, common, key};

#[test]
fn the_authentication_server_document_describes_its_wire_types() {
    let mut document = Documented::new(OPENAPI_JSON);
    let answer =
        |method, path, status| response_schema(OPENAPI_JSON, (method, path), status).unwrap();
    let point = format!("03{}", "cd".repeat(48));
    let statuses: Vec<Status> = anchor_states()
        .into_iter()
        .map(|anchor| Status {
            party: PartyStatus {
                role: Role::AuthServer,
                digest: Digest::sha256(b"authserver"),
                public_key: key(),
                anchor,
                index_height: None,
                index_hash: None,
                audit_size: 0,
            },
            server_secret: ServerSecretStatus {
                state: SecretState::Waiting,
                dtas: vec![
                    DtaShareStatus {
                        digest: Digest::sha256(b"dta 1"),
                        state: ShareState::Fetched,
                        reason: None,
                    },
                    DtaShareStatus {
                        digest: Digest::sha256(b"dta 2"),
                        state: ShareState::Waiting,
                        reason: Some("refused with 403".into()),
                    },
                ],
            },
        })
        .collect();
    let revocation = Revocation {
        mpin_id: "id".into(),
        revoked_at: 1_750_000_000,
    };
    common(&mut document)
        .values(&component("AnchorState"), &anchor_states())
        .values(&component("Status"), &statuses)
        .values(
            &request_body(("post", COMMIT_PATH)),
            &[CommitRequest {
                mpin_id: "id".into(),
                day: 20_000,
                u: point.clone(),
            }],
        )
        .values(
            &answer("post", COMMIT_PATH, 200),
            &[ChallengeAnswer {
                login_id: "ab".repeat(16),
                challenge: "cd".repeat(48),
                expires_in: 30,
            }],
        )
        .values(
            &request_body(("post", PROVE_PATH)),
            &[ProveRequest {
                login_id: "ab".repeat(16),
                v: point,
            }],
        )
        .values(
            &answer("post", PROVE_PATH, 200),
            &[SessionAnswer {
                session_token: "a.b.c".into(),
                token_type: "Bearer".into(),
                expires_in: 3600,
                mpin_id: "id".into(),
            }],
        )
        .values(
            &answer("get", SESSION_PATH, 200),
            &[SessionClaims {
                iss: "https://auth.milagro.test".into(),
                sub: "id".into(),
                iat: 1_750_000_000,
                exp: 1_750_003_600,
                amr: vec!["mfa".into(), "pin".into(), "swk".into()],
                milagro_permit_day: 20_000,
                milagro_birth_certificate_digest: Digest::sha256(b"authserver"),
            }],
        )
        .values(
            &request_body(("post", REVOCATIONS_PATH)),
            &[RevokeRequest {
                mpin_id: "id".into(),
            }],
        )
        .values(
            &answer("post", REVOCATIONS_PATH, 201),
            std::slice::from_ref(&revocation),
        )
        .values(
            &answer("post", REVOCATIONS_PATH, 200),
            std::slice::from_ref(&revocation),
        )
        .values(
            &answer("get", REVOCATIONS_PATH, 200),
            &[Revocations {
                revocations: vec![revocation],
            }],
        );
    assert_agrees("authserver/openapi.json", &document);
}

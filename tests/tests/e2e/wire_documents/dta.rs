//! `dta/openapi.json` and `dta/share-openapi.json` against `milagro_wire::dta` and
//! `milagro_wire::shares`.

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_dta::api::{OPENAPI_JSON, SHARE_OPENAPI_JSON};
use milagro_tests::openapi::response_schema;
use milagro_tests::wire_schema::{component, request_body, Documented};
use milagro_wire::dta::{Status, TrustedIdp};
use milagro_wire::service::PartyStatus;
use milagro_wire::shares::{
    ClientShareAnswer, ClientShareRequest, NoOptions, PermitAnswer, PermitShare, ServerShareAnswer,
    ShareKind,
};

use super::{anchor_states, assert_agrees, common, hash, key};

#[test]
fn the_d_ta_documents_describe_the_d_ta_wire_types() {
    let mut public = Documented::new(OPENAPI_JSON);
    let statuses: Vec<Status> = anchor_states()
        .into_iter()
        .map(|anchor| Status {
            party: PartyStatus {
                role: Role::Dta,
                digest: Digest::sha256(b"dta"),
                public_key: key(),
                anchor,
                index_height: Some(120),
                index_hash: Some(hash(2)),
                audit_size: 3,
            },
            share_api: Some("127.0.0.1:7000".into()),
            trusted_idps: vec![TrustedIdp {
                issuer: "https://idp.milagro.test".into(),
                client_id: "dtas".into(),
            }],
        })
        .collect();
    common(&mut public)
        .values(&component("AnchorState"), &anchor_states())
        .values(&component("Status"), &statuses);
    assert_agrees("dta/openapi.json", &public);

    let mut shares = Documented::new(SHARE_OPENAPI_JSON);
    let answer =
        |path, status| response_schema(SHARE_OPENAPI_JSON, ("post", path), status).unwrap();
    let point = |bytes: usize| format!("02{}", "ab".repeat(bytes - 1));
    let permit = PermitShare {
        day: 20_000,
        share: point(49),
    };
    common(&mut shares)
        .values(&component("AnchorState"), &anchor_states())
        .values(
            &request_body(("post", "/v1/shares/server")),
            &[NoOptions {}],
        )
        .values(
            &request_body(("post", "/v1/shares/permit")),
            &[NoOptions {}],
        )
        .values(
            &request_body(("post", "/v1/shares/client")),
            &[ClientShareRequest {
                id_token: "a.b.c".into(),
                nonce_salt: Some("A".repeat(43)),
            }],
        )
        .values(
            &answer("/v1/shares/server", 200),
            &[ServerShareAnswer {
                kind: ShareKind::Server,
                share: point(97),
                dta: Digest::sha256(b"dta"),
                day: 20_000,
            }],
        )
        .values(
            &answer("/v1/shares/client", 200),
            &[ClientShareAnswer {
                kind: ShareKind::Client,
                mpin_id: "id".into(),
                client_share: point(49),
                time_permit: permit.clone(),
                dta: Digest::sha256(b"dta"),
            }],
        )
        .values(
            &answer("/v1/shares/permit", 200),
            &[PermitAnswer {
                kind: ShareKind::TimePermit,
                mpin_id: "id".into(),
                time_permit: permit,
                dta: Digest::sha256(b"dta"),
            }],
        );
    assert_agrees("dta/share-openapi.json", &shares);
}

//! `idp/openapi.json` against `milagro_wire::idp` (the IdP's Milagro extensions and the
//! bodies the device reads; the standard bodies left to `openidconnect` are not here).

use milagro_anchor::digest::Digest;
use milagro_idp::api::ciba::device::{
    COMMIT_PATH as CIBA_COMMIT, DENY_PATH, PROVE_PATH as CIBA_PROVE, REQUESTS_PATH,
};
use milagro_idp::api::ciba::BC_AUTHORIZE_PATH;
use milagro_idp::api::signin::{COMMIT_PATH, PROVE_PATH, REQUEST_PATH};
use milagro_idp::api::OPENAPI_JSON;
use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_tests::openapi::response_schema;
use milagro_tests::wire_schema::{component, request_body, Documented};
use milagro_wire::ciba::{
    BackchannelAuthentication, CibaCommit, CibaDenied, CibaDeny, CibaProve, CibaRequest,
    CibaRequests,
};
use milagro_wire::idp::{
    ActivationCode, Checkpoint, CreatedUser, DeviceAuthorization, DeviceRegistration,
    MilagroMetadata, NewActivationCode, NewUser, ProviderMetadata, TokenAnswer,
};
use milagro_wire::signin::{SigninApproved, SigninCommit, SigninProve, SigninRequest};

use super::{assert_agrees, common, hash, key, signed_checkpoint};

fn metadata(txid: Option<String>) -> ProviderMetadata {
    let issuer = "https://idp.milagro.test";
    let at = |path: &str| Some(format!("{issuer}{path}"));
    let list = |items: &[&str]| Some(items.iter().map(|i| (*i).to_owned()).collect());
    ProviderMetadata {
        issuer: issuer.into(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        userinfo_endpoint: at("/userinfo"),
        jwks_uri: format!("{issuer}/jwks"),
        signed_jwks_uri: at("/jwks.jwt"),
        registration_endpoint: at("/register"),
        revocation_endpoint: at("/revoke"),
        device_authorization_endpoint: at("/device_authorization"),
        scopes_supported: list(&["openid"]),
        response_types_supported: vec!["code".into()],
        response_modes_supported: list(&["query", "form_post"]),
        prompt_values_supported: list(&["none"]),
        end_session_endpoint: at("/logout"),
        backchannel_logout_supported: Some(true),
        backchannel_logout_session_supported: Some(true),
        grant_types_supported: list(&["authorization_code"]),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: vec!["ES256".into()],
        token_endpoint_auth_methods_supported: list(&["none"]),
        revocation_endpoint_auth_methods_supported: list(&["none"]),
        code_challenge_methods_supported: list(&["S256"]),
        dpop_signing_alg_values_supported: list(&["ES256K"]),
        claims_supported: list(&["sub"]),
        acr_values_supported: list(&["urn:milagro:acr:mpin", "urn:milagro:acr:password"]),
        claims_parameter_supported: Some(false),
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        authorization_response_iss_parameter_supported: Some(true),
        backchannel_authentication_endpoint: txid
            .is_some()
            .then(|| format!("{issuer}/bc-authorize")),
        backchannel_token_delivery_modes_supported: txid.is_some().then(|| vec!["poll".into()]),
        backchannel_user_code_parameter_supported: txid.is_some().then_some(false),
        milagro: MilagroMetadata {
            milagro_birth_certificate_uri: format!(
                "{issuer}/.well-known/milagro/birth-certificate"
            ),
            milagro_birth_certificate_digest: Digest::sha256(b"idp"),
            milagro_anchor_txid: txid,
            milagro_public_key: key(),
        },
    }
}

#[test]
fn the_idp_document_describes_the_idp_wire_types() {
    let mut document = Documented::new(OPENAPI_JSON);
    let answer =
        |method, path, status| response_schema(OPENAPI_JSON, (method, path), status).unwrap();
    let tokens = |token_type: &str, refresh_token| TokenAnswer {
        access_token: "at".into(),
        token_type: token_type.into(),
        expires_in: 300,
        id_token: "a.b.c".into(),
        scope: "openid".into(),
        refresh_token,
    };
    let point = format!("03{}", "cd".repeat(48));
    common(&mut document)
        .values(
            &component("ProviderMetadata"),
            &[metadata(Some(hash(1))), metadata(None)],
        )
        .values(
            &component("DeviceAuthorization"),
            &[DeviceAuthorization {
                device_code: "dc".into(),
                user_code: "ABCD-EFGH".into(),
                verification_uri: "https://idp.milagro.test/device".into(),
                verification_uri_complete: Some(
                    "https://idp.milagro.test/device?user_code=ABCD-EFGH".into(),
                ),
                expires_in: 600,
                interval: Some(5),
            }],
        )
        .values(
            &component("TokenResponse"),
            &[tokens("DPoP", Some("rt".into())), tokens("Bearer", None)],
        )
        .values(
            &request_body(("post", "/v1/admin/users")),
            &[NewUser {
                username: "alice".into(),
                password: "correct horse".into(),
            }],
        )
        .values(
            &answer("post", "/v1/admin/users", 201),
            &[CreatedUser {
                username: "alice".into(),
                subject: "s-123".into(),
            }],
        )
        .values(
            &request_body(("post", "/v1/admin/activation-codes")),
            &[NewActivationCode {
                email: "carol@milagro.test".into(),
            }],
        )
        .values(
            &answer("post", "/v1/admin/activation-codes", 201),
            &[ActivationCode {
                email: "carol@milagro.test".into(),
                activation_code: "c2VjcmV0".into(),
                expires_in: 604_800,
            }],
        )
        .values(
            &answer("get", REQUEST_PATH, 200),
            &[true, false].map(|named| SigninRequest {
                access_number: "123456782".into(),
                client_id: "rp".into(),
                client_name: named.then(|| "Thermostat app".into()),
                redirect_uri: "https://rp.test/cb".into(),
                scope: "openid profile".into(),
                expires_in: 290,
            }),
        )
        .values(
            &request_body(("post", COMMIT_PATH)),
            &[SigninCommit {
                access_number: "1234 5678 2".into(),
                commitment: CommitRequest {
                    mpin_id: "id".into(),
                    day: 20_000,
                    u: point.clone(),
                },
            }],
        )
        .values(
            &answer("post", COMMIT_PATH, 200),
            &[ChallengeAnswer {
                login_id: "ab".repeat(16),
                challenge: "cd".repeat(48),
                expires_in: 60,
            }],
        )
        .values(
            &request_body(("post", PROVE_PATH)),
            &[SigninProve {
                access_number: "123456782".into(),
                proof: ProveRequest {
                    login_id: "ab".repeat(16),
                    v: point.clone(),
                },
            }],
        )
        .values(
            &answer("post", PROVE_PATH, 200),
            &[SigninApproved {
                status: "approved".into(),
                client_id: "rp".into(),
                subject: "s-123".into(),
            }],
        )
        .values(
            &answer("post", BC_AUTHORIZE_PATH, 200),
            &[BackchannelAuthentication {
                auth_req_id: "c2VjcmV0".into(),
                expires_in: 300,
                interval: 5,
            }],
        )
        .values(
            &answer("get", REQUESTS_PATH, 200),
            &[CibaRequests {
                requests: [true, false]
                    .map(|named| CibaRequest {
                        request_id: "r-1".into(),
                        client_id: "rp".into(),
                        client_name: named.then(|| "Till".into()),
                        scope: "openid".into(),
                        binding_message: named.then(|| "W4SCT".into()),
                        expires_in: 290,
                    })
                    .to_vec(),
            }],
        )
        .values(
            &request_body(("post", CIBA_COMMIT)),
            &[CibaCommit {
                request_id: "r-1".into(),
                commitment: CommitRequest {
                    mpin_id: "id".into(),
                    day: 20_000,
                    u: point.clone(),
                },
            }],
        )
        .values(
            &request_body(("post", CIBA_PROVE)),
            &[CibaProve {
                request_id: "r-1".into(),
                proof: ProveRequest {
                    login_id: "ab".repeat(16),
                    v: point,
                },
            }],
        )
        .values(
            &answer("post", CIBA_PROVE, 200),
            &[SigninApproved {
                status: "approved".into(),
                client_id: "rp".into(),
                subject: "s-123".into(),
            }],
        )
        .values(
            &request_body(("post", DENY_PATH)),
            &[CibaDeny {
                request_id: "r-1".into(),
                mpin_id: hash(2),
            }],
        )
        .values(
            &answer("post", DENY_PATH, 200),
            &[CibaDenied {
                status: "denied".into(),
                client_id: "rp".into(),
            }],
        )
        .values(
            &component("DeviceRegistration"),
            &[false, true].map(|replaced| DeviceRegistration {
                subject: "s-123".into(),
                device_key: key(),
                mpin_id: hash(2),
                registered: 1_900_000_000,
                replaced_device_key: replaced.then(key),
            }),
        )
        .values(
            &component("Checkpoint"),
            &[Checkpoint {
                signed: signed_checkpoint(),
                log_size: 5,
                origin: "idp.milagro.test/audit".into(),
            }],
        );
    assert_agrees("idp/openapi.json", &document);
}

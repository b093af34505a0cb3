//! The D-TA against a real regtest node and a real TBS, over real Milagro TLS on loopback:
//! it anchors itself and serves its Birth Certificate; an authentication server (its own
//! anchored key) gets the server-secret share over Milagro TLS, logged once per day as a
//! hash; a PAT gets 403, malformed requests get 4xx JSON, the plain HTTP port serves no
//! share, a peer not yet final is refused at admission; the share is sealed at rest, the
//! same after a restart, and a wrong sealing key refuses to start; a key declared
//! compromised is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;

use std::os::unix::fs::PermissionsExt as _;

use dta_common::{call, config, send, wait_for_share_api};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status};
use milagro_dta::issuance::{hashed_identity, issuance_entry, ShareKind};
use milagro_dta::{Dta, StartError};
use milagro_mpin::{Day, G2};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::openapi::{allow_set, allowed, assert_response_matches};
use milagro_tests::tls_parties::TlsParty;
use milagro_tests::{wait_until, Api};
use milagro_tls::TlsError;

#[test]
fn an_authentication_server_gets_the_server_share_over_milagro_tls_and_only_it() {
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sealing.key");
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let sealing_key = hex::encode(secret);
    std::fs::write(&key_file, &sealing_key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state_dir = dir.path().join("dta");
    let by_file = format!("file = {key_file:?}");
    // The operator lists the authentication server; a rogue one anchors a certificate
    // that says authserver too.
    let auth = TlsParty::broadcast(&w, Role::AuthServer, "auth server");
    let rogue = TlsParty::broadcast(&w, Role::AuthServer, "rogue auth server");
    let listed = format!("[shares]\nauthservers = [\"{}\"]\n", auth.bc.digest());
    let dta = Dta::start(config(&w, &state_dir, &by_file, &listed)).unwrap();
    let api = Api::documented(dta.local_url(), milagro_dta::api::OPENAPI_JSON);

    // Not anchored yet: the certificate is refused with a JSON reason, not a broken one.
    let (status, early) = api.get("/.well-known/milagro/birth-certificate");
    assert_eq!(status, 503, "{early}");
    assert_eq!(early["error"], "not_anchored");
    wait_until(
        "the D-TA anchor to be broadcast",
        dta_common::PATIENCE,
        || (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(()),
    );
    let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
    w.mine(6);
    wait_for_share_api(&w, &dta);
    let document = api.ok("/.well-known/milagro/birth-certificate");
    let digest = dta.state().identity.digest();
    assert_eq!(document["digest"], digest.to_string());
    assert_eq!(document["birth_certificate"]["role"], "dta");

    // The authentication server gets s·Q, a canonical G2 point, twice the same.
    let (status, issued) = call(&w, &dta, &auth, "POST", "/v1/shares/server", vec![]).unwrap();
    assert_eq!(status, 200, "{issued}");
    assert_response_matches(
        milagro_dta::api::SHARE_OPENAPI_JSON,
        ("post", "/v1/shares/server"),
        status,
        &issued,
    );
    assert_eq!(issued["kind"], "server");
    assert_eq!(issued["dta"], digest.to_string());
    let share_hex = issued["share"].as_str().unwrap().to_owned();
    let share = G2::from_bytes(&hex::decode(&share_hex).unwrap()).unwrap();
    let (status, again) =
        call(&w, &dta, &auth, "POST", "/v1/shares/server", b"{}".to_vec()).unwrap();
    assert_eq!((status, &again["share"]), (200, &issued["share"]));
    // One session carries many requests (keep-alive): one handshake, three shares.
    let three = vec![("POST", "/v1/shares/server", b"{}".to_vec()); 3];
    let answers = dta_common::call_on_one_session(&w, &dta, &auth, &three).unwrap();
    for (status, answer) in answers {
        assert_eq!((status, &answer["share"]), (200, &issued["share"]));
    }

    // The rogue authentication server is anchored and admitted, but not listed.
    let (status, refused) = call(&w, &dta, &rogue, "POST", "/v1/shares/server", vec![]).unwrap();
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("not in this d-ta's [shares] authservers"),
        "{refused}"
    );

    // Logged once for that day, as the documented hash of the hashed identity.
    let day = Day(u32::try_from(issued["day"].as_u64().unwrap()).unwrap());
    let entry = issuance_entry(
        ShareKind::Server,
        &hashed_identity(auth.bc.digest().as_bytes()),
        day,
    );
    let audit = &dta.state().audit;
    assert_eq!(audit.tree_head().size.get(), 1);
    assert_eq!(audit.entry_of(entry.as_bytes()).unwrap().unwrap().1, entry);
    wait_until(
        "the issuance log's checkpoint to be anchored",
        dta_common::PATIENCE,
        || {
            audit
                .store()
                .latest_checkpoint()
                .unwrap()
                .filter(|c| c.size.get() == 1)
        },
    );

    // Any other role: 403 with a JSON reason; malformed requests: 4xx JSON.
    let (status, refused) = call(&w, &dta, &pat, "POST", "/v1/shares/server", vec![]).unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("role pat"));
    let malformed: [(&str, &str, Vec<u8>, u16); 5] = [
        ("POST", "/v1/shares/server", b"not json".to_vec(), 400),
        (
            "POST",
            "/v1/shares/server",
            br#"{"identity": "x"}"#.to_vec(),
            400,
        ),
        ("POST", "/v1/shares/server", vec![b' '; 20_000], 413),
        ("GET", "/v1/shares/server", vec![], 405),
        ("POST", "/v1/shares/nothing", vec![], 404),
    ];
    for (method, path, body, expected) in malformed {
        let (status, error) = call(&w, &dta, &auth, method, path, body).unwrap();
        assert_eq!(status, expected, "{method} {path}: {error}");
        assert!(error["error"].is_string(), "{method} {path}: {error}");
    }
    assert_eq!(
        audit.tree_head().size.get(),
        1,
        "refused requests log nothing"
    );

    // The plain HTTP port serves no share.
    let (status, _) = api.call("POST", "/v1/shares/server", None, None);
    assert_eq!(status, 404);

    the_share_api_does_what_its_document_says(&w, &dta, &auth);

    // A party whose anchor is not final yet never reaches the app.
    let eve = TlsParty::broadcast(&w, Role::AuthServer, "eve");
    w.mine(1);
    wait_for_share_api(&w, &dta);
    let refused = call(&w, &dta, &eve, "POST", "/v1/shares/server", vec![]).unwrap_err();
    assert!(
        matches!(&refused, TlsError::RefusedByPeer(why) if why.contains("1 confirmations, 6 required")),
        "{refused}"
    );

    // At rest: sealed, owner-only. A wrong key refuses to start; the right one (from the
    // environment this time) opens the same share.
    dta.stop();
    let sealed = state_dir.join(milagro_dta::master::SEALED_FILE);
    let mode = std::fs::metadata(&sealed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let wrong_file = dir.path().join("wrong.key");
    std::fs::write(&wrong_file, hex::encode([7u8; 32])).unwrap();
    std::fs::set_permissions(&wrong_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = Dta::start(config(
        &w,
        &state_dir,
        &format!("file = {wrong_file:?}"),
        &listed,
    ));
    let error = wrong.unwrap_err();
    assert!(matches!(error, StartError::MasterShare(_)), "{error}");
    assert!(error.to_string().contains("sealing key"), "{error}");
    assert!(!error.to_string().contains(&sealing_key));

    let env = "MILAGRO_DTA_TEST_SEALING_KEY";
    std::env::set_var(env, &sealing_key);
    let dta = Dta::start(config(&w, &state_dir, &format!("env = {env:?}"), &listed)).unwrap();
    wait_for_share_api(&w, &dta);
    let (status, after) = call(&w, &dta, &auth, "POST", "/v1/shares/server", vec![]).unwrap();
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["share"], share_hex.as_str());
    assert_eq!(
        G2::from_bytes(&hex::decode(&share_hex).unwrap()).unwrap(),
        share
    );

    // Once the authentication server declares its key compromised (a later certificate of
    // that key, found in the D-TA's own index), its old, final anchor admits it no more:
    // the answer the D-TA's directory kept for it goes with the tip it was given at.
    let fields = BcFields {
        status: Status::Compromised,
        previous: Some(auth.bc.digest()),
        ..auth.bc.fields().clone()
    };
    let compromised = BirthCertificate::sign(fields, &auth.key).unwrap();
    let notice = TlsParty::anchor(&w, auth.key.clone(), compromised);
    let notice_txid = notice.identity.party().party().anchor().txid();
    w.mine(1);
    wait_for_share_api(&w, &dta);
    let refused = call(&w, &dta, &auth, "POST", "/v1/shares/server", vec![]).unwrap_err();
    assert!(
        matches!(&refused, TlsError::RefusedByPeer(why)
            if why.contains("superseded") && why.contains(&notice_txid.to_string())),
        "{refused}"
    );
    dta.stop();
}

/// The share API against its own document, over Milagro TLS as the listed authentication
/// server: it serves `dta/share-openapi.json` at `/openapi.json`, `OPTIONS` is 204 with
/// `Allow`, every other method of a documented path is 405 with `Allow` listing the
/// documented ones (and `HEAD`, `OPTIONS`: [`allowed`]), and a `text/plain`
/// body is 415, in the one error shape. (Schemathesis cannot speak Milagro TLS; the
/// answers of each route are checked above.)
fn the_share_api_does_what_its_document_says(
    w: &EnrolmentWorld,
    dta: &milagro_dta::RunningDta,
    auth: &TlsParty,
) {
    let fetch = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        let response = send(w, dta, auth, (method, path), content_type, body.to_vec()).unwrap();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        (response.status().as_u16(), allow, text)
    };
    let (status, _, served) = fetch("GET", "/openapi.json", "application/json", b"");
    assert_eq!(status, 200);
    assert_eq!(served, milagro_dta::api::SHARE_OPENAPI_JSON);
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    let methods = ["get", "put", "post", "delete", "patch"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: std::collections::BTreeSet<String> = methods
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        let allow = allowed(&documented);
        let (status, advertised, body) = fetch("OPTIONS", path, "application/json", b"");
        assert_eq!((status, body.as_str()), (204, ""), "OPTIONS {path}");
        assert_eq!(allow_set(&advertised.unwrap()), allow, "OPTIONS {path}");
        for method in methods.iter().map(|m| m.to_uppercase()) {
            if documented.contains(&method) {
                continue;
            }
            let (status, named, body) = fetch(&method, path, "application/json", b"");
            assert_eq!(status, 405, "{method} {path}: {body}");
            let named = named.unwrap_or_else(|| panic!("{method} {path}: no Allow"));
            assert_eq!(allow_set(&named), allow, "{method} {path}");
        }
        if item["post"]["requestBody"]["content"]["application/json"].is_object() {
            let (status, _, body) = fetch("POST", path, "text/plain", b"{}");
            // The listed server reaches the body of the server share; other routes refuse
            // its role first (403), which the document lists too.
            let expected = if path == "/v1/shares/server" {
                415
            } else {
                403
            };
            assert_eq!(status, expected, "POST {path} text/plain: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json.as_object().unwrap().len(), 2, "{body}");
            if expected == 415 {
                assert_eq!(json["error"], "unsupported_media_type", "{body}");
            }
        }
    }
}

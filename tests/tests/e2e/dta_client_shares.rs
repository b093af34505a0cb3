//! Client-secret shares for a PAT that proves its user with an ID token, against a real
//! regtest node, a real TBS and real IdPs on loopback: a token of a trusted, anchored IdP
//! gets the client share and today's time permit for the identity binding issuer, `sub`
//! and the PAT's key, logged as hashes; another role, another audience, a tampered
//! signature, a forged issuer, an IdP that is not the anchored party configured, a token
//! bound to no device key, and malformed requests are each refused with a JSON reason. A PAT sums two D-TAs' shares
//! into a key that logs in with its PIN only (`milagro_pat_client::mpin_key`), and refuses
//! a D-TA whose Birth Certificate is not anchored before sending it the ID token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use dta_common::{
    call, config, numbered_config, pat_shares, sealing_key_file, wait_for_anchors_broadcast,
    wait_for_share_api, PATIENCE,
};
use idp_common::{alice_id_token, alice_unbound_id_token, register_client, start_idp_with_alice};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_dta::api::{CLIENT_SHARE_PATH, PERMIT_PATH, SHARE_OPENAPI_JSON};
use milagro_dta::issuance::mpin_id;
use milagro_dta::Dta;
use milagro_idp::RunningIdp;
use milagro_mpin::{Day, G1};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::openapi::assert_response_matches;
use milagro_tests::tls_parties::TlsParty;
use milagro_tests::wait_until;
use serde_json::{json, Value};

fn http() -> reqwest::blocking::Client {
    idp_common::no_redirect_client()
}

/// An IdP on the world's node with user alice; returns it, its issuer and alice's `sub`.
fn start_idp(
    w: &EnrolmentWorld,
    dir: &std::path::Path,
    name: &str,
) -> (RunningIdp, String, String) {
    start_idp_with_alice(w.node(), dir, name)
}

/// `token` with its payload's `iss` replaced (the signature no longer matches).
fn with_issuer(token: &str, issuer: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims["iss"] = json!(issuer);
    let payload = B64URL.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[test]
fn a_pat_with_an_id_token_of_a_trusted_anchored_idp_gets_its_client_share_and_time_permit() {
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (idp, issuer, subject) = start_idp(&w, dir.path(), "idp");
    // Trusted by issuer, but the configured digest is not the certificate it anchored.
    let (rogue, rogue_issuer, _) = start_idp(&w, dir.path(), "rogue");
    let (dta_client, other_client) = (register_client(&issuer), register_client(&issuer));
    let rogue_client = register_client(&rogue_issuer);
    let trusted = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n\
         [[trusted_idps]]\nissuer = {rogue_issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n",
        idp.state().identity.digest(),
        dta_client.0,
        Digest::sha256(b"not the rogue's certificate"),
        rogue_client.0,
    );
    let master_key = sealing_key_file(dir.path());
    let dta = Dta::start(config(&w, &dir.path().join("dta"), &master_key, &trusted)).unwrap();
    wait_for_anchors_broadcast(&[&idp, &rogue], &[dta.local_url()]);
    let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
    let auth = TlsParty::broadcast(&w, Role::AuthServer, "auth server");
    w.mine(6);
    wait_for_share_api(&w, &dta);
    wait_until(
        "both IdPs to serve their anchored certificates",
        PATIENCE,
        || {
            [&issuer, &rogue_issuer]
                .iter()
                .all(|i| {
                    let url = format!("{i}/.well-known/milagro/birth-certificate");
                    http().get(url).send().unwrap().status() == 200
                })
                .then_some(())
        },
    );
    let token = alice_id_token(&issuer, &dta_client, &pat.key);
    let request = |token: &str| json!({ "id_token": token }).to_string().into_bytes();
    let share_as = |who: &TlsParty, body: Vec<u8>| {
        call(&w, &dta, who, "POST", "/v1/shares/client", body).unwrap()
    };

    // No permit renewal for a key the D-TA never gave a client share to.
    let renew = |who: &TlsParty| call(&w, &dta, who, "POST", "/v1/shares/permit", vec![]).unwrap();
    let (status, refused) = renew(&pat);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("no_client_share")),
        "{refused}"
    );
    assert_response_matches(SHARE_OPENAPI_JSON, ("post", PERMIT_PATH), status, &refused);

    // The PAT gets s·H(ID) and s·H(day ‖ H(ID)) for ID = H(issuer, sub, its key).
    let (status, issued) = share_as(&pat, request(&token));
    assert_eq!(status, 200, "{issued}");
    assert_response_matches(
        SHARE_OPENAPI_JSON,
        ("post", CLIENT_SHARE_PATH),
        status,
        &issued,
    );
    let expected = mpin_id(&issuer, &subject, pat.bc.public_key()).unwrap();
    assert_eq!(
        issued["mpin_id"].as_str().unwrap().as_bytes(),
        expected.as_bytes()
    );
    assert_eq!(issued["dta"], dta.state().identity.digest().to_string());
    let point = |v: &Value| G1::from_bytes(&hex::decode(v.as_str().unwrap()).unwrap()).unwrap();
    let client_share = point(&issued["client_share"]);
    assert_ne!(client_share, point(&issued["time_permit"]["share"]));
    let today = Day::from_unix_secs(milagro_service::unix_now());
    assert_eq!(issued["time_permit"]["day"], today.0);
    assert_eq!(
        dta.state().audit.tree_head().size.get(),
        2,
        "client share and permit logged"
    );
    let (status, again) = share_as(&pat, request(&token));
    assert_eq!((status, point(&again["client_share"])), (200, client_share));
    assert_eq!(dta.state().audit.tree_head().size.get(), 2, "once a day");

    // From now on the PAT's key alone renews the permit of the same identity; another
    // role gets none.
    let (status, renewed) = renew(&pat);
    assert_eq!(status, 200, "{renewed}");
    assert_response_matches(SHARE_OPENAPI_JSON, ("post", PERMIT_PATH), status, &renewed);
    assert_eq!(renewed["kind"], "time_permit");
    assert_eq!(renewed["mpin_id"], issued["mpin_id"]);
    assert_eq!(renewed["time_permit"], issued["time_permit"]);
    let (status, refused) = renew(&auth);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );

    // Refusals, each with its JSON reason.
    let forged = with_issuer(&token, "http://evil.milagro.test");
    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    let cases: [(&TlsParty, Vec<u8>, u16, &str); 9] = [
        (&auth, request(&token), 403, "forbidden"),
        // Issue 13, attack 4: a token bound to no key would serve any device.
        (
            &pat,
            request(&alice_unbound_id_token(&issuer, &dta_client)),
            401,
            "token_not_bound",
        ),
        (
            &pat,
            request(&alice_id_token(&issuer, &other_client, &pat.key)),
            401,
            "invalid_token",
        ),
        (&pat, request(&tampered), 401, "invalid_token"),
        (&pat, request(&forged), 403, "untrusted_issuer"),
        (
            &pat,
            request(&alice_id_token(&rogue_issuer, &rogue_client, &pat.key)),
            403,
            "idp_not_anchored",
        ),
        (&pat, request("not a jwt"), 400, "invalid_request"),
        (&pat, b"{}".to_vec(), 400, "invalid_request"),
        (
            &pat,
            br#"{"id_token": "x", "sub": "bob"}"#.to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (i, (who, body, status, code)) in cases.into_iter().enumerate() {
        let (found, error) = share_as(who, body);
        assert_eq!(
            (found, error["error"].as_str()),
            (status, Some(code)),
            "case {i}: {error}"
        );
    }
    assert_eq!(
        dta.state().audit.tree_head().size.get(),
        2,
        "refusals log nothing"
    );
    dta.stop();
    drop((idp, rogue));
}

/// Two D-TAs trust one IdP and share the client id a PAT logs in for (one login, one ID
/// token for both). The PAT asks each over Milagro TLS with `milagro_pat_client`, sums
/// the checked shares and takes its PIN out; an authentication server listed by both
/// sums their server shares. The summed key logs in with its PIN, and not with another
/// PIN or with one D-TA's shares alone.
#[test]
fn a_pat_sums_two_d_tas_shares_into_a_key_that_logs_in_with_its_pin_only() {
    use milagro_mpin::{ClientAwaitingChallenge, Pin, ServerAwaitingProof, ServerSecret, G2};
    use milagro_pat_client::mpin_key::{request_shares, MpinKey};

    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (idp, issuer, _) = start_idp(&w, dir.path(), "idp");
    let group_client = register_client(&issuer);
    let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
    let auth = TlsParty::broadcast(&w, Role::AuthServer, "auth server");
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n\
         [shares]\nauthservers = [\"{}\"]\n",
        idp.state().identity.digest(),
        group_client.0,
        auth.bc.digest(),
    );
    let dtas: Vec<_> = (1..=2u8)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    let urls: Vec<String> = dtas.iter().map(|dta| dta.local_url()).collect();
    wait_for_anchors_broadcast(&[&idp], &urls);
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    wait_until(
        "the IdP to serve its anchored certificate",
        PATIENCE,
        || {
            let url = format!("{issuer}/.well-known/milagro/birth-certificate");
            (http().get(url).send().unwrap().status() == 200).then_some(())
        },
    );
    let token = alice_id_token(&issuer, &group_client, &pat.key);

    // The PAT's side, through the library a device uses.
    let shares = pat_shares(&w, &pat, &dtas.iter().collect::<Vec<_>>(), &token);
    let directory = milagro_tests::tls_parties::directory(&w);
    let pin = Pin::new(2468).unwrap();
    let key = MpinKey::assemble(&shares, pin).unwrap();
    let alone = MpinKey::assemble(&shares[..1], pin).unwrap();

    // The authentication server's side: both server shares, summed.
    let server_shares: Vec<_> = dtas
        .iter()
        .map(|dta| {
            let (status, issued) =
                call(&w, dta, &auth, "POST", "/v1/shares/server", vec![]).unwrap();
            assert_eq!(status, 200, "{issued}");
            let bytes = hex::decode(issued["share"].as_str().unwrap()).unwrap();
            milagro_mpin::ServerSecretShare(G2::from_bytes(&bytes).unwrap())
        })
        .collect();
    let server = ServerSecret::combine(&server_shares).unwrap();

    let today = Day::from_unix_secs(milagro_service::unix_now());
    let login = |key: &MpinKey, typed: u16| {
        let mut rng = rand_core::OsRng;
        let (client, commitment) = ClientAwaitingChallenge::start(
            &mut rng,
            &key.id,
            &key.token,
            Pin::new(typed).unwrap(),
            &key.permit,
        )
        .unwrap();
        let (pending, challenge) =
            ServerAwaitingProof::challenge(&mut rng, commitment, today).unwrap();
        pending.verify(&client.prove(&challenge).unwrap(), &server)
    };
    assert!(login(&key, 2468).is_ok());
    assert!(login(&key, 2469).is_err());
    assert!(login(&alone, 2468).is_err());

    // A D-TA whose Birth Certificate is not anchored (its anchor waits in the mempool),
    // serving a share API that would answer: the PAT refuses it before sending its token.
    let impostor = TlsParty::broadcast(&w, Role::Dta, "impostor D-TA");
    let addr = serve_fake_share_api(&w, impostor.identity.clone());
    let refused = milagro_tests::tls_parties::runtime().block_on(request_shares(
        &pat.identity,
        impostor.bc.digest(),
        &addr.to_string(),
        directory,
        &milagro_tls::Options::default(),
        &milagro_pat_client::mpin_key::ClientShareRequest {
            id_token: token.clone(),
            nonce_salt: None,
        },
    ));
    let error = refused.unwrap_err().to_string();
    assert!(
        error.contains("peer refused: the peer's anchor")
            && error.contains("anchors no record in the chain"),
        "{error}"
    );
}

/// Serves, over Milagro TLS as `identity`, a share API that answers any client-share
/// request with shares of a random master share.
fn serve_fake_share_api(
    w: &EnrolmentWorld,
    identity: std::sync::Arc<milagro_tls::LocalIdentity>,
) -> std::net::SocketAddr {
    use actix_web::{web, App, HttpResponse};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let directory = milagro_tests::tls_parties::directory(w);
    let digest = identity.birth_certificate().digest();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = move || {
                App::new().route(
                    "/v1/shares/client",
                    web::post().to(move || async move {
                        let master = milagro_mpin::MasterShare::generate(&mut rand_core::OsRng);
                        let id = milagro_mpin::MpinId::new("victim").unwrap();
                        let day = Day::from_unix_secs(milagro_service::unix_now());
                        let permit = master.time_permit_share(&id, day).unwrap();
                        HttpResponse::Ok().json(json!({
                            "kind": "client",
                            "mpin_id": "victim",
                            "client_share": hex::encode(master.client_share(&id).unwrap().0.to_bytes()),
                            "time_permit": {"day": day.0, "share": hex::encode(permit.point.to_bytes())},
                            "dta": digest,
                        }))
                    }),
                )
            };
            let options = milagro_tls::Options {
                min_depth: 1,
                ..milagro_tls::Options::default()
            };
            let _ = milagro_tls::http::serve_app(listener, identity, directory, options, app, |_, _| {})
                .await;
        });
    });
    addr
}

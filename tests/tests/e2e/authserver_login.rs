//! M-Pin logins at the authentication server, against a real regtest node, a real TBS,
//! a real IdP and two real D-TAs on loopback. The server sums both D-TAs' server-secret
//! shares (fetched over Milagro TLS once every anchor is final) and is not ready while a
//! D-TA does not list it; a PAT whose key sums both D-TAs' client shares logs in with its
//! PIN over HTTP and gets a session token that verifies with the session key of the
//! server's anchored Birth Certificate (and not with its anchored key, which signs no
//! token the server accepts). A wrong PIN, a key missing a D-TA's share, a lockout, a
//! revoked identity, yesterday's time permit and malformed messages are each refused
//! with a JSON reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use std::time::Duration;

use dta_common::{
    authserver_peers, numbered_config, pat_shares, wait_for_anchors_broadcast, wait_for_share_api,
    PATIENCE,
};
use idp_common::{alice_id_token, register_client, start_idp_with_alice, wait_for_certificate};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_authserver::api::OPENAPI_JSON;
use milagro_authserver::session::SessionError;
use milagro_authserver::AuthServer;
use milagro_dta::Dta;
use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_mpin::{ClientAwaitingChallenge, Day, Pin, TimePermit};
use milagro_pat_client::mpin_key::MpinKey;
use milagro_service::token::ApiToken;
use milagro_tests::authserver_common::AuthServerIdentity;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::openapi::assert_documented_answer;
use milagro_tests::tls_parties::TlsParty;
use milagro_tests::{wait_until, Api};
use serde_json::{json, Value};

const NAME: &str = "Auth server";
const PUBLIC_URL: &str = "https://auth.milagro.test";
const PIN: u16 = 2468;
const MAX_FAILURES: u32 = 3;

/// The authentication server's HTTP API.
struct AuthApi {
    url: String,
    http: reqwest::blocking::Client,
}

/// A response: status, JSON body (`Null` if none) and `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

impl AuthApi {
    fn new(url: String) -> Self {
        Self {
            url,
            http: milagro_http_client::Outbound::system()
                .unwrap()
                .builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Answer {
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}, not JSON ({e}): {text}"));
        Answer {
            status,
            body,
            retry_after,
        }
    }

    /// Every answer of a documented route is checked against `authserver/openapi.json`:
    /// the real logins reach statuses and bodies schemathesis cannot.
    fn post(&self, path: &str, body: impl Into<String>) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.into());
        let answer = self.send(request);
        assert_documented_answer(OPENAPI_JSON, ("post", path), answer.status, &answer.body);
        answer
    }

    fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let answer = self.send(request);
        assert_documented_answer(OPENAPI_JSON, ("get", path), answer.status, &answer.body);
        answer
    }

    /// Pass 1 for `key` with `pin` typed: the client's state and the answer.
    fn commit(&self, key: &MpinKey, pin: u16) -> (ClientAwaitingChallenge, Answer) {
        let (client, commitment) = ClientAwaitingChallenge::start(
            &mut rand_core::OsRng,
            &key.id,
            &key.token,
            Pin::new(pin).unwrap(),
            &key.permit,
        )
        .unwrap();
        (
            client,
            self.post(
                "/v1/login/commit",
                to_json(&CommitRequest::new(&commitment)),
            ),
        )
    }

    /// Both passes: the answer to the proof (or to the commitment, if refused).
    fn login(&self, key: &MpinKey, pin: u16) -> Answer {
        let (client, committed) = self.commit(key, pin);
        if committed.status != 200 {
            return committed;
        }
        let answer: ChallengeAnswer = serde_json::from_value(committed.body).unwrap();
        assert_eq!(answer.expires_in, 60);
        let proof = client.prove(&answer.challenge().unwrap()).unwrap();
        let prove = ProveRequest::new(answer.login_id, &proof);
        self.post("/v1/login/prove", to_json(&prove))
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

/// Asserts a JSON refusal with `status` and `code`.
fn refused(answer: &Answer, status: u16, code: &str, case: &str) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (status, Some(code)),
        "{case}: {}",
        answer.body
    );
    assert!(answer.body["error_description"].is_string(), "{case}");
}

#[test]
fn a_pat_logs_in_with_its_pin_against_two_d_tas_summed_server_secret_and_nothing_else() {
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (idp, issuer, _) = start_idp_with_alice(w.node(), dir.path(), "idp");
    let client = register_client(&issuer);
    // The server's certificate first: each D-TA must list its digest.
    let identity = AuthServerIdentity::create(&dir.path().join("auth"), NAME, PUBLIC_URL);
    let auth_digest = identity.digest;
    let trusted = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n",
        idp.state().identity.digest(),
        client.0,
    );
    let listing = format!("{trusted}{}", identity.listed());
    let dta1 = Dta::start(numbered_config(&w, dir.path(), 1, &listing)).unwrap();
    // D-TA 2 does not list the server yet.
    let dta2 = Dta::start(numbered_config(&w, dir.path(), 2, &trusted)).unwrap();
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let dtas = authserver_peers(&[&dta1, &dta2]);
    let sections = format!(
        "[login]\nmax_failures = {MAX_FAILURES}\n[admin]\ntoken_sha256 = \"{}\"\n",
        admin.hash()
    );
    let config = || identity.config(w.node(), &dtas, &sections);
    let server = AuthServer::start(config()).unwrap();
    assert_eq!(server.state().identity.digest(), auth_digest);
    let status = Api::documented(server.local_url(), OPENAPI_JSON);
    let auth = AuthApi::new(server.local_url());

    let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
    wait_for_anchors_broadcast(
        &[&idp],
        &[dta1.local_url(), dta2.local_url(), server.local_url()],
    );
    w.mine(6);
    wait_for_share_api(&w, &dta1);
    wait_for_share_api(&w, &dta2);
    wait_for_certificate(&issuer);
    let token = alice_id_token(&issuer, &client, &pat.key);
    let shares = pat_shares(&w, &pat, &[&dta1, &dta2], &token);
    let key = MpinKey::assemble(&shares, Pin::new(PIN).unwrap()).unwrap();
    let alone = MpinKey::assemble(&shares[..1], Pin::new(PIN).unwrap()).unwrap();

    // Not ready while D-TA 2 refuses: the status and the refusal say who and why.
    let dta2_digest = dta2.state().identity.digest().to_string();
    let waiting = wait_until("D-TA 1's share, and D-TA 2's refusal", PATIENCE, || {
        let secret = status.ok("/v1/status")["server_secret"].clone();
        let refusal = secret["dtas"][1]["reason"].as_str().unwrap_or_default();
        (secret["dtas"][0]["state"] == "fetched" && refusal.contains("authservers"))
            .then_some(secret)
    });
    assert_eq!(waiting["state"], "waiting");
    assert_eq!(waiting["dtas"][1]["digest"], dta2_digest);
    let reason = waiting["dtas"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("refused with 403"), "{reason}");
    let not_ready = auth.commit(&key, PIN).1;
    refused(
        &not_ready,
        503,
        "not_ready",
        "before D-TA 2 lists the server",
    );
    let description = not_ready.body["error_description"].as_str().unwrap();
    assert!(description.contains(&dta2_digest), "{description}");

    // D-TA 2's operator lists the server and restarts it on the same address.
    let addr = dta2.state().share_listen;
    dta2.stop();
    let mut relisted = numbered_config(&w, dir.path(), 2, &listing);
    relisted.tls_listen = addr;
    let dta2 = Dta::start(relisted).unwrap();
    wait_for_share_api(&w, &dta2);
    wait_until("the server secret to be assembled", PATIENCE, || {
        (status.ok("/v1/status")["server_secret"]["state"] == "ready").then_some(())
    });

    // The right PIN: a session token, checked by the server and by anyone holding its
    // anchored certificate.
    let audit_before = status.ok("/v1/status")["audit_size"].as_u64().unwrap();
    let session = auth.login(&key, PIN);
    assert_eq!(session.status, 200, "{}", session.body);
    let mpin_id = String::from_utf8(key.id.as_bytes().to_vec()).unwrap();
    assert_eq!(session.body["mpin_id"], mpin_id);
    assert_eq!(session.body["token_type"], "Bearer");
    assert_eq!(session.body["expires_in"], 3600);
    let session_token = session.body["session_token"].as_str().unwrap().to_owned();
    let claims = auth.get("/v1/session", Some(&session_token));
    assert_eq!(claims.status, 200, "{}", claims.body);
    assert_eq!(claims.body["sub"], mpin_id);
    assert_eq!(claims.body["iss"], PUBLIC_URL);
    assert_eq!(claims.body["amr"], json!(["mfa", "pin", "swk"]));
    let today = Day::from_unix_secs(milagro_service::unix_now());
    assert_eq!(claims.body["milagro_permit_day"], today.0);
    let document = status.ok("/.well-known/milagro/birth-certificate");
    let bc = BirthCertificate::parse(document["birth_certificate"].to_string().as_bytes()).unwrap();
    assert_eq!((bc.digest(), bc.role()), (auth_digest, Role::AuthServer));
    // The token verifies with the session key the certificate lists, not the anchored key.
    let session_key = *bc.purpose_key(KeyPurpose::Session).unwrap();
    assert_ne!(&session_key, bc.public_key());
    let verified = milagro_authserver::session::verify(
        &session_token,
        &session_key,
        &bc.digest(),
        milagro_service::unix_now(),
    )
    .unwrap();
    assert_eq!(
        milagro_authserver::session::verify(
            &session_token,
            bc.public_key(),
            &bc.digest(),
            milagro_service::unix_now(),
        ),
        Err(SessionError::Signature)
    );
    assert_eq!(verified.sub, mpin_id);
    assert_eq!(
        status.ok("/v1/status")["audit_size"].as_u64().unwrap(),
        audit_before + 1,
        "the login is logged"
    );
    let mut tampered = session_token.clone();
    tampered.insert(tampered.find('.').unwrap() + 2, 'x');
    for bearer in [None, Some("not a token"), Some(tampered.as_str())] {
        refused(
            &auth.get("/v1/session", bearer),
            401,
            "invalid_token",
            "session",
        );
    }
    // Issue 13, attack 9: the same claims signed with the server's anchored key (what a
    // token signer that shares the anchored key would make) are refused by the server:
    // only the session key signs tokens, so holding the anchored key mints none, and a
    // leaked session key gives no coins, certificate or TLS identity.
    let anchored = server.state().identity.secret_key();
    let by_anchored_key = milagro_authserver::session::issue(anchored, &verified);
    refused(
        &auth.get("/v1/session", Some(&by_anchored_key)),
        401,
        "invalid_token",
        "a session token signed with the anchored key",
    );
    // The control: the session key signs the same claims into a token the server takes.
    let session_secret = server
        .state()
        .identity
        .purpose_key(KeyPurpose::Session)
        .unwrap();
    let by_session_key = milagro_authserver::session::issue(session_secret, &verified);
    assert_eq!(auth.get("/v1/session", Some(&by_session_key)).status, 200);

    // Yesterday's permit (relabelled: the point is today's) is refused for its day.
    let mut stale = key.clone();
    stale.permit = TimePermit::from_parts(Day(today.0 - 1), key.permit.point().clone());
    let expired = auth.login(&stale, PIN);
    refused(&expired, 403, "permit_expired", "yesterday's permit");
    let description = expired.body["error_description"].as_str().unwrap();
    let days = [today.0 - 1, today.0].map(|d| d.to_string());
    assert!(
        days.iter().all(|d| description.contains(d.as_str())),
        "{description}"
    );

    // Malformed messages and unknown, used or replayed logins: 4xx with a JSON reason.
    let prove_request = |key: &MpinKey| {
        let (client, committed) = auth.commit(key, PIN);
        assert_eq!(committed.status, 200, "{}", committed.body);
        let answer: ChallengeAnswer = serde_json::from_value(committed.body).unwrap();
        let proof = client.prove(&answer.challenge().unwrap()).unwrap();
        ProveRequest::new(answer.login_id, &proof)
    };
    let (used_up, succeeded) = (prove_request(&key), prove_request(&key));
    let mut commit = CommitRequest::new(
        &ClientAwaitingChallenge::start(
            &mut rand_core::OsRng,
            &key.id,
            &key.token,
            Pin::new(PIN).unwrap(),
            &key.permit,
        )
        .unwrap()
        .1,
    );
    let mut off_curve = hex::decode(&commit.u).unwrap();
    off_curve[20] ^= 1;
    commit.u = hex::encode(off_curve);
    let off_curve_v = ProveRequest {
        v: commit.u.clone(),
        ..used_up.clone()
    };
    let (commit_path, prove_path) = ("/v1/login/commit", "/v1/login/prove");
    let replay = to_json(&succeeded);
    assert_eq!(auth.post(prove_path, replay.clone()).status, 200);
    let cases: [(&str, String, u16, &str); 10] = [
        (commit_path, to_json(&commit), 400, "invalid_request"),
        (commit_path, "{\"mpin_id\": ".into(), 400, "invalid_request"),
        (
            commit_path,
            json!({"mpin_id": mpin_id, "day": today.0, "u": "00", "pin": 1}).to_string(),
            400,
            "invalid_request",
        ),
        (
            commit_path,
            json!({"mpin_id": "", "day": today.0, "u": "00"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            prove_path,
            json!({"login_id": "00", "v": "00"}).to_string(),
            400,
            "unknown_login",
        ),
        (prove_path, to_json(&off_curve_v), 400, "invalid_request"),
        // The bad proof used its login up: the good one comes too late.
        (prove_path, to_json(&used_up), 400, "unknown_login"),
        (prove_path, replay, 400, "unknown_login"),
        (prove_path, "[]".into(), 400, "invalid_request"),
        (prove_path, "x".repeat(20_000), 413, "payload_too_large"),
    ];
    for (i, (path, body, status, code)) in cases.into_iter().enumerate() {
        refused(&auth.post(path, body), status, code, &format!("case {i}"));
    }
    refused(
        &auth.get(commit_path, None),
        405,
        "method_not_allowed",
        "GET commit",
    );
    refused(&auth.get("/v1/nothing", None), 404, "not_found", "no route");

    // A wrong PIN and a key missing D-TA 2's share are refused and counted.
    for (typed, with) in [(PIN + 1, &key), (PIN, &alone)] {
        refused(
            &auth.login(with, typed),
            401,
            "login_refused",
            "wrong secret",
        );
    }
    // Issue 13, attack 5: 200 wrong-PIN logins at once. Each proof is counted before it
    // is checked and one proof per identity is checked at a time, so only the one guess
    // left before the limit is ever checked; every other is refused unchecked.
    let (api, guessed) = (&auth, &key);
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..200u16)
            .map(|i| scope.spawn(move || api.login(guessed, 1000 + i)))
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|a| a.status == 401).count();
    assert_eq!(checked, (MAX_FAILURES - 2) as usize, "guesses checked");
    for answer in answers.iter().filter(|a| a.status != 401) {
        let code = answer.body["error"].as_str().unwrap_or_default();
        assert!(
            answer.status == 429
                && ["too_many_attempts", "proof_in_flight", "too_many_pending"].contains(&code),
            "{} {}",
            answer.status,
            answer.body
        );
    }
    // At the limit the identity is locked out, even with the right PIN ...
    let locked = auth.login(&key, PIN);
    refused(&locked, 429, "too_many_attempts", "locked out");
    let retry_after: u64 = locked.retry_after.unwrap().parse().unwrap();
    assert!((290..=300).contains(&retry_after), "{retry_after}");
    // ... and stays locked across a restart of the server.
    drop((auth, status));
    server.stop();
    let server = AuthServer::start(config()).unwrap();
    let status = Api::documented(server.local_url(), OPENAPI_JSON);
    let auth = AuthApi::new(server.local_url());
    wait_until("the restarted server's secret", PATIENCE, || {
        (status.ok("/v1/status")["server_secret"]["state"] == "ready").then_some(())
    });
    let still = auth.login(&key, PIN);
    refused(&still, 429, "too_many_attempts", "locked after a restart");
    let retry_after: u64 = still.retry_after.unwrap().parse().unwrap();
    assert!((200..=300).contains(&retry_after), "{retry_after}");

    // Revocation through the admin API, which needs the admin token.
    let revocations = format!("{}/v1/admin/revocations", auth.url);
    let revoke = |token: Option<&str>| {
        let mut request = auth
            .http
            .post(&revocations)
            .json(&json!({ "mpin_id": mpin_id }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = auth.send(request);
        let route = ("post", "/v1/admin/revocations");
        assert_documented_answer(OPENAPI_JSON, route, answer.status, &answer.body);
        answer
    };
    let wrong = ApiToken::generate(&mut rand_core::OsRng);
    refused(&revoke(None), 401, "unauthorized", "no admin token");
    refused(
        &revoke(Some(wrong.reveal())),
        401,
        "unauthorized",
        "wrong admin token",
    );
    assert_eq!(revoke(Some(admin.reveal())).status, 201);
    assert_eq!(revoke(Some(admin.reveal())).status, 200, "revoked before");
    let list = auth.send(auth.http.get(&revocations).bearer_auth(admin.reveal()));
    let route = ("get", "/v1/admin/revocations");
    assert_documented_answer(OPENAPI_JSON, route, list.status, &list.body);
    assert_eq!(list.body["revocations"][0]["mpin_id"], mpin_id);
    refused(&auth.login(&key, PIN), 403, "identity_revoked", "revoked");

    // Idle keep-alive connections would hold a graceful stop until they time out.
    drop((auth, status));
    server.stop();
    dta1.stop();
    dta2.stop();
    drop(idp);
}

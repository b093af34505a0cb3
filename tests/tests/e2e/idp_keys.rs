//! ID-token signing key rotation, observed as a relying party sees it: the next key is in
//! the JWKS before any token is signed with it, tokens switch to it at its activation,
//! the old key stays published until its tokens have expired, and every token verifies
//! with the `openidconnect` crate against the JWKS of its time; the JWKS signed with the
//! IdP's anchored key carries the same keys at every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::time::Duration;

use base64::Engine as _;
use idp_common::{query, IdpWorld, PASSWORD, USER};
use milagro_tests::wait_until;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, RedirectUrl,
};
use serde_json::{json, Value};

const REDIRECT: &str = "https://rp.milagro.test/cb";

fn kids_of(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The kids of `/jwks`, which `/jwks.jwt` must carry too, signed by the IdP's anchored key
/// (what a D-TA reads, ADR 0010); read until both are read within one rotation step.
fn kids(w: &IdpWorld) -> Vec<String> {
    let identity = &w.idp.state().identity;
    wait_until(
        "/jwks and /jwks.jwt to agree",
        Duration::from_secs(5),
        || {
            let (_, jwks) = w.get("/jwks");
            let signed = w.http.get(format!("{}/jwks.jwt", w.issuer)).send().unwrap();
            let signed = signed.text().unwrap();
            let verified = milagro_anchor::signed_jwks::verify(
                &signed,
                &identity.public_key(),
                &identity.digest(),
                &w.issuer,
                milagro_service::unix_now(),
            )
            .unwrap();
            let kids = kids_of(&jwks);
            (kids_of(&verified.jwks()) == kids).then_some(kids)
        },
    )
}

/// The `kid` in an ID token's header.
fn kid_of(id_token: &str) -> String {
    let header = id_token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    header["kid"].as_str().unwrap().to_owned()
}

#[test]
fn the_next_key_is_published_before_it_signs_and_the_old_one_outlives_its_tokens() {
    // Keys sign for 4 s, are published 2 s ahead; tokens live 2 s.
    let w = IdpWorld::start("[keys]\nrotation_secs = 4\nprepublish_secs = 2\n[tokens]\nid_token_secs = 2\naccess_secs = 2\n");
    let (status, registered) = w.register(&json!({"redirect_uris": [REDIRECT]}));
    assert_eq!(status, 201);
    let client_id = ClientId::new(registered["client_id"].as_str().unwrap().into());
    let secret = ClientSecret::new(registered["client_secret"].as_str().unwrap().into());
    // A token signed now, and a client that verifies it against the JWKS of this moment.
    let sign = || -> (String, Nonce) {
        let http = w.oidc_http();
        let provider =
            CoreProviderMetadata::discover(&IssuerUrl::new(w.issuer.clone()).unwrap(), &http)
                .unwrap();
        let client =
            CoreClient::from_provider_metadata(provider, client_id.clone(), Some(secret.clone()))
                .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .url();
        let code = query(&w.login(url.as_str(), USER, PASSWORD).unwrap())["code"].clone();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .request(&http)
            .unwrap();
        let id_token = openidconnect::TokenResponse::id_token(&tokens).unwrap();
        id_token
            .claims(&client.id_token_verifier(), &nonce)
            .unwrap();
        (id_token.to_string(), nonce)
    };

    let first = kids(&w);
    assert_eq!(first.len(), 1);
    let (token, _) = sign();
    assert_eq!(kid_of(&token), first[0]);

    // The next key appears in the JWKS while tokens are still signed with the first.
    let both = wait_until(
        "the next key to be published",
        Duration::from_secs(10),
        || {
            let kids = kids(&w);
            (kids.len() == 2).then_some(kids)
        },
    );
    assert_eq!(both[0], first[0]);
    let (token, _) = sign();
    if kid_of(&token) == both[1] {
        // Activation fell between the two reads; the key was still published first.
        eprintln!("the next key activated during the check");
    } else {
        assert_eq!(kid_of(&token), first[0]);
    }

    // Tokens switch to the new key; the old one is still published for its tokens.
    let switched = wait_until(
        "tokens signed with the next key",
        Duration::from_secs(10),
        || {
            let (token, _) = sign();
            (kid_of(&token) == both[1]).then_some(token)
        },
    );
    let published = kids(&w);
    assert!(
        published.contains(&both[1]) && published.contains(&first[0]),
        "{published:?}"
    );
    drop(switched);

    // Once the old key's tokens have expired, the old key leaves the JWKS.
    wait_until("the old key to be dropped", Duration::from_secs(10), || {
        (!kids(&w).contains(&first[0])).then_some(())
    });
}

//! The IdP end to end with the `openidconnect` crate as relying party: a real regtest
//! node, the IdP over HTTP on loopback, and nothing about the IdP known to the client but
//! its issuer URL. Discovery (with the Milagro fields, checked against the anchored
//! Birth Certificate), registration, the code flow with PKCE, ID-token verification
//! (signature, `aud`, `nonce`, `at_hash`), userinfo, refresh, revocation, the activity
//! log's anchored checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use idp_common::{query, IdpWorld, PASSWORD, PATIENCE, USER};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::checkpoint::{KeyName, SignedCheckpoint};
use milagro_tests::wait_until;
use openidconnect::core::CoreGenderClaim;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreClientRegistrationRequest, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, ProviderMetadata, RedirectUrl,
    Scope, SyncHttpClient, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The Milagro members of the discovery document, as `openidconnect` takes extra members.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(transparent)]
struct Milagro(milagro_wire::idp::MilagroMetadata);
impl AdditionalProviderMetadata for Milagro {}

type MilagroMetadata = ProviderMetadata<
    Milagro,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[test]
fn a_standard_relying_party_discovers_registers_logs_in_refreshes_and_revokes() {
    let w = IdpWorld::start("[audit]\ncheckpoint_interval_secs = 1\n");
    let http = w.oidc_http();

    // Discovery, and the Milagro fields match the anchored Birth Certificate.
    let issuer = IssuerUrl::new(w.issuer.clone()).unwrap();
    let provider = MilagroMetadata::discover(&issuer, &http).unwrap();
    let milagro = provider.additional_metadata().0.clone();
    let (status, served) = w.get("/.well-known/milagro/birth-certificate");
    assert_eq!(status, 200, "{served}");
    assert_eq!(
        milagro.milagro_birth_certificate_uri,
        format!("{}/.well-known/milagro/birth-certificate", w.issuer)
    );
    let bc = BirthCertificate::parse(&serde_json::to_vec(&served["birth_certificate"]).unwrap())
        .unwrap();
    assert_eq!(bc.role(), Role::Idp);
    assert_eq!(bc.fields().endpoints, std::slice::from_ref(&w.issuer));
    assert_eq!(bc.digest(), milagro.milagro_birth_certificate_digest);
    assert_eq!(bc.public_key().to_string(), milagro.milagro_public_key);
    assert_eq!(
        served["txid"].as_str(),
        milagro.milagro_anchor_txid.as_deref()
    );
    // The anchor verifies by SPV against the node's headers: this certificate, its key.
    let proof: milagro_anchor::proof::AnchorProofJson =
        serde_json::from_value(served["anchor_proof"].clone()).unwrap();
    let proof = milagro_anchor::proof::AnchorProof::from_json(&proof).unwrap();
    let headers =
        milagro_registry::proofs::headers_from(&w.node.rpc, bitcoin::Network::Regtest, 0).unwrap();
    let verified = bc.verify_anchor(&proof, &headers).unwrap();
    assert_eq!(
        verified.txid().to_string(),
        served["txid"].as_str().unwrap()
    );
    assert_eq!(verified.digest(), bc.digest());

    // Dynamic registration with the crate's registration request (confidential, Basic).
    let registration = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new(REDIRECT.into()).unwrap()],
        Default::default(),
    )
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .register(provider.registration_endpoint().unwrap(), &http)
    .unwrap();
    let client_id = registration.client_id().clone();
    let secret = registration.client_secret().cloned().unwrap();
    let secret_text = secret.secret().clone();
    let client =
        CoreClient::from_provider_metadata(provider.clone(), client_id.clone(), Some(secret))
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    // Code flow with PKCE S256 and a nonce; the login form as a browser posts it.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let location = w.login(url.as_str(), USER, PASSWORD).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let answer = query(&location);
    assert_eq!(answer["state"], *csrf.secret());
    assert_eq!(answer["iss"], w.issuer);
    let tokens = client
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request(&http)
        .unwrap();

    // The ID token: signature (JWKS), iss, aud, exp, nonce, then at_hash.
    let id_token = tokens.id_token().unwrap();
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(
        claims.audiences(),
        &[openidconnect::Audience::new(client_id.to_string())]
    );
    assert_eq!(claims.issuer().as_str(), w.issuer);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.preferred_username().unwrap().as_str(), USER);
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    // Another nonce, or another audience, is refused.
    assert!(id_token
        .claims(&id_verifier, &Nonce::new("other".into()))
        .is_err());
    let wrong_client = CoreClient::from_provider_metadata(
        provider.clone(),
        ClientId::new("someone-else".into()),
        None,
    );
    assert!(id_token
        .claims(&wrong_client.id_token_verifier(), &nonce)
        .is_err());

    // Userinfo.
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request(&http)
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.preferred_username().unwrap().as_str(), USER);

    // Refresh: a new access token, a new refresh token, an ID token for the same user.
    let refresh = tokens.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request(&http)
        .unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret());
    let refreshed_claims = refreshed
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(refreshed_claims.subject(), claims.subject());

    // Revocation (RFC 7009) of the new refresh token: it and its grant's tokens stop.
    // (`openidconnect` refuses to revoke over plain http, so the request is made here.)
    let basic = Some((client_id.as_str(), secret_text.as_str()));
    let (status, _) = w.post_form(
        "/revoke",
        &[
            ("token", new_refresh.secret()),
            ("token_type_hint", "refresh_token"),
        ],
        basic,
    );
    assert_eq!(status, 200);
    assert!(client
        .exchange_refresh_token(&new_refresh)
        .unwrap()
        .request(&http)
        .is_err());
    let after = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request::<EmptyAdditionalClaims, CoreGenderClaim, _>(&http);
    assert!(
        after.is_err(),
        "the revoked grant's access token still works"
    );
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    assert_eq!(
        w.post_form("/revoke", &[("token", "nothing")], basic).0,
        200
    );

    // The same with client_secret_post and a public client (none + PKCE).
    let post = w.register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"})).1;
    let post_client = CoreClient::from_provider_metadata(
        provider.clone(),
        ClientId::new(post["client_id"].as_str().unwrap().into()),
        Some(ClientSecret::new(
            post["client_secret"].as_str().unwrap().into(),
        )),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    .set_auth_type(AuthType::RequestBody);
    code_flow(&w, &post_client, &http);
    let public = w
        .register(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .1;
    assert!(public.get("client_secret").is_none());
    let public_client = CoreClient::from_provider_metadata(
        provider.clone(),
        ClientId::new(public["client_id"].as_str().unwrap().into()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    code_flow(&w, &public_client, &http);

    // The logins are in the activity log, whose checkpoint gets anchored and verifies.
    let checkpoint = wait_until("an activity log checkpoint", PATIENCE, || {
        w.node.mine(1);
        let (status, body) = w.get("/v1/audit/checkpoint");
        (status == 200).then_some(body)
    });
    assert!(checkpoint["size"].as_u64().unwrap() >= 1, "{checkpoint}");
    // Signed by the checkpoint key the certificate lists, not by the anchored key.
    let origin = KeyName::new(checkpoint["origin"].as_str().unwrap()).unwrap();
    let note = checkpoint["note"].as_str().unwrap();
    let signed = SignedCheckpoint::parse_certified(note, &origin, &bc).unwrap();
    assert!(SignedCheckpoint::parse(note, &origin, bc.public_key()).is_err());
    assert_eq!(
        signed.digest().to_string(),
        checkpoint["digest"].as_str().unwrap()
    );
}

/// A client as `from_provider_metadata` and `set_redirect_uri` make it.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The code flow with PKCE for `client`, to a verified ID token.
fn code_flow<H: SyncHttpClient>(w: &IdpWorld, client: &DiscoveredClient, http: &H) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let location = w.login(url.as_str(), USER, PASSWORD).unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(query(&location)["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request(http)
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.audiences()[0].as_str(), client.client_id().as_str());
}

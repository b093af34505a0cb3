//! The token endpoint (RFC 6749 §3.2, OpenID Connect Core §3.1.3): authorization codes
//! (with PKCE, RFC 7636), refresh tokens (rotated at each use), device codes
//! (RFC 8628 §3.4) and approved backchannel authentication requests (CIBA §10.1,
//! `super::ciba::redeem`). Every success returns an access token, an ID token signed with the
//! current ES256 key (`iss sub aud exp iat auth_time amr acr nonce at_hash`), and a refresh
//! token when the client registered that grant.
//!
//! A request with a `DPoP` proof (RFC 9449, [`crate::dpop`]) gets tokens bound to the
//! proof's key: `token_type` `DPoP`, and `cnf: {"jkt"}` in the ID token, which is what a
//! D-TA compares with the key of the device presenting it (ADR 0012). The proof is checked
//! before the code, device code or refresh token is used, so a bad proof spends nothing;
//! a grant bound once needs a proof by the same key at every later use.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{TimeZone as _, Utc};
use milagro_anchor::dpop::{self, Confirmation, Thumbprint};
use milagro_wire::idp::TokenAnswer;
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, EndUserEmail, EndUserUsername, IdToken, IdTokenClaims,
    IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{blocking, ClientForm, Params};
use crate::authentication::Authenticated;
use crate::clients::{Client, GRANT_CIBA, GRANT_CODE, GRANT_DEVICE, GRANT_REFRESH};
use crate::device_grants::DeviceState;
use crate::dpop::{check as check_proof, proof_of};
use crate::grants::{Authorization, CodeRow, TokenKind};
use crate::oauth::OAuthError;
use crate::state::AppState;

/// `POST /token`.
pub(crate) async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let proof = proof_of(&req)?;
    let form = ClientForm::read(&req, body).await?;
    let body = blocking(&state, move |state| {
        let client = form.authenticate(state)?;
        let params = &form.params;
        let now = milagro_service::unix_now();
        let grant_type = params.require("grant_type")?;
        // Before the grant is used: a bad proof must not spend a code.
        let bound = proof
            .map(|proof| {
                let uri = format!("{}/token", state.issuer());
                let request = dpop::Request {
                    method: "POST",
                    uri: &uri,
                    access_token: None,
                };
                check_proof(&state.seen_proofs, &proof, &request, now)
                    .map(|proved| proved.thumbprint().clone())
            })
            .transpose()?;
        let allowed = |grant: &str| {
            if client.allows(grant) {
                Ok(())
            } else {
                Err(OAuthError::bad_request(
                    "unauthorized_client",
                    format!("the client did not register the {grant} grant"),
                ))
            }
        };
        let auth = match grant_type {
            GRANT_CODE => {
                allowed(GRANT_CODE)?;
                redeem_code(state, &client, params, now)?
            }
            GRANT_REFRESH => {
                allowed(GRANT_REFRESH)?;
                let auth = state.grants.use_refresh(
                    params.require("refresh_token")?,
                    &client.client_id,
                    bound.as_ref(),
                    now,
                )?;
                narrow_scope(auth, params.get("scope"))?
            }
            GRANT_DEVICE => {
                allowed(GRANT_DEVICE)?;
                let row =
                    state
                        .devices
                        .poll(params.require("device_code")?, &client.client_id, now)?;
                let DeviceState::Approved { subject, auth_time } = row.state else {
                    return Err(OAuthError::internal("a device poll approved nothing"));
                };
                // The person approved the device code with their password at `/device`.
                let who = Authenticated::by_password(&subject, auth_time);
                let mut auth = Authorization::new(&client.client_id, &who, &row.scope, None);
                auth.device_grant = true;
                auth
            }
            GRANT_CIBA => {
                allowed(GRANT_CIBA)?;
                super::ciba::redeem(state, &client, params, now)?
            }
            other => {
                return Err(OAuthError::bad_request(
                    "unsupported_grant_type",
                    format!("grant_type {other:?} is not supported"),
                ))
            }
        };
        let auth = bind(auth, bound)?;
        // A refreshed ID token carries no nonce (OpenID Connect Core §12.2).
        let nonce = if grant_type == GRANT_CODE {
            auth.nonce.clone()
        } else {
            None
        };
        issue(state, &client, &auth, nonce, now)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body))
}

fn redeem_code(
    state: &AppState,
    client: &Client,
    params: &Params,
    now: u64,
) -> Result<Authorization, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?.to_owned();
    let verifier = params.get("code_verifier").map(str::to_owned);
    if let Some(v) = &verifier {
        if !(43..=128).contains(&v.len())
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(OAuthError::invalid_request(
                "code_verifier is 43 to 128 unreserved characters",
            ));
        }
    }
    state.grants.redeem_code(code, now, |row: &CodeRow| {
        if row.auth.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if row.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&row.code_challenge, &verifier) {
            (None, None) => Ok(()),
            (Some(challenge), Some(verifier)) => {
                let computed = B64URL.encode(Sha256::digest(verifier.as_bytes()));
                if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                    Ok(())
                } else {
                    Err(OAuthError::invalid_grant(
                        "the code_verifier does not match the code_challenge",
                    ))
                }
            }
            (Some(_), None) => Err(OAuthError::invalid_grant("the code_verifier is missing")),
            (None, Some(_)) => Err(OAuthError::invalid_grant(
                "no code_challenge was sent for this code",
            )),
        }
    })
}

/// Binds `auth`'s new tokens to the proof's key `bound`; a grant bound before (a refresh
/// token of a bound grant) needs a proof by the same key.
fn bind(mut auth: Authorization, bound: Option<Thumbprint>) -> Result<Authorization, OAuthError> {
    match (&auth.jkt, bound) {
        (Some(stored), Some(proved)) if *stored == proved => Ok(auth),
        (Some(_), Some(_)) => Err(crate::dpop::invalid_proof(
            "the grant is bound to another key than the proof's",
        )),
        (Some(_), None) => Err(crate::dpop::invalid_proof(
            "the grant is bound to a key: send a DPoP proof by it",
        )),
        (None, proved) => {
            auth.jkt = proved;
            Ok(auth)
        }
    }
}

/// A refresh may ask for fewer scopes, never more (RFC 6749 §6).
fn narrow_scope(mut auth: Authorization, asked: Option<&str>) -> Result<Authorization, OAuthError> {
    if let Some(asked) = asked {
        let scopes: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
        if let Some(extra) = scopes.iter().find(|s| !auth.has_scope(s)) {
            return Err(OAuthError::bad_request(
                "invalid_scope",
                format!("scope {extra} was not granted"),
            ));
        }
        auth.scope = scopes.join(" ");
    }
    Ok(auth)
}

/// Issues the access token, refresh token and ID token of `auth`.
fn issue(
    state: &AppState,
    client: &Client,
    auth: &Authorization,
    nonce: Option<String>,
    now: u64,
) -> Result<TokenAnswer, OAuthError> {
    let lifetimes = state.config.tokens;
    let access = (
        TokenKind::Access,
        now.saturating_add(lifetimes.access.as_secs()),
    );
    // Written and made durable together, with the code or refresh token just used up:
    // one flush per exchange.
    let (access, refresh) = if client.allows(GRANT_REFRESH) {
        let refresh = (
            TokenKind::Refresh,
            now.saturating_add(lifetimes.refresh.as_secs()),
        );
        let [access, refresh] = state.grants.issue_tokens(auth, [access, refresh])?;
        (access, Some(refresh))
    } else {
        let [access] = state.grants.issue_tokens(auth, [access])?;
        (access, None)
    };
    // `sid` whenever the grant came from a login session (Back-Channel Logout 1.0 §2.4
    // requires it for clients that registered `backchannel_logout_session_required`, and
    // allows it for the others): a client that keys its sessions by the ID token's `sid`
    // (mod_auth_openidc does, else by `sub`) then finds the one a logout token names.
    let sid = auth.sid.as_deref();
    let id_token = id_token(state, auth, nonce, sid, &access, now)?;
    Ok(TokenAnswer {
        access_token: access.as_str().to_owned(),
        token_type: if auth.jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
        expires_in: lifetimes.access.as_secs(),
        id_token,
        scope: auth.scope.clone(),
        refresh_token: refresh.map(|refresh| refresh.as_str().to_owned()),
    })
}

/// The ID token's claims beyond OpenID Connect's: `cnf` (RFC 7800) when the grant is
/// bound to a key (RFC 9449 §6.1's `jkt`), and `sid`, the login session (Back-Channel
/// Logout 1.0 §2.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BindingClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

impl AdditionalClaims for BindingClaims {}

/// An ID token that may carry `cnf`.
type BoundIdToken = IdToken<
    BindingClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The signed ID token (`at_hash` of `access`; `cnf.jkt` of a bound grant; `sid`).
pub(crate) fn id_token(
    state: &AppState,
    auth: &Authorization,
    nonce: Option<String>,
    sid: Option<&str>,
    access: &str,
    now: u64,
) -> Result<String, OAuthError> {
    let time = |secs: u64| {
        Utc.timestamp_opt(i64::try_from(secs).unwrap_or(i64::MAX), 0)
            .single()
            .ok_or_else(|| OAuthError::internal("a time out of range"))
    };
    let issuer = IssuerUrl::new(state.issuer().to_owned()).map_err(OAuthError::internal)?;
    let mut standard = StandardClaims::new(SubjectIdentifier::new(auth.subject.clone()));
    if auth.has_scope("profile") || auth.has_scope("email") {
        if let Some(user) = state
            .users
            .by_subject(&auth.subject)
            .map_err(OAuthError::internal)?
        {
            if auth.has_scope("profile") {
                standard =
                    standard.set_preferred_username(Some(EndUserUsername::new(user.username)));
            }
            // Only an address the person proved: registration by e-mail sets it.
            if let (true, Some(email)) = (auth.has_scope("email"), user.email) {
                standard = standard
                    .set_email(Some(EndUserEmail::new(email)))
                    .set_email_verified(Some(true));
            }
        }
    }
    let expires = now.saturating_add(state.config.tokens.id_token.as_secs());
    let binding = BindingClaims {
        cnf: auth.jkt.clone().map(|jkt| Confirmation { jkt }),
        sid: sid.map(str::to_owned),
    };
    let claims = IdTokenClaims::new(
        issuer,
        vec![Audience::new(auth.client_id.clone())],
        time(expires)?,
        time(now)?,
        standard,
        binding,
    )
    .set_nonce(nonce.map(Nonce::new))
    .set_auth_time(Some(time(auth.auth_time)?))
    .set_auth_method_refs((!auth.amr.is_empty()).then(|| {
        auth.amr
            .iter()
            .cloned()
            .map(AuthenticationMethodReference::new)
            .collect()
    }))
    .set_auth_context_ref(auth.acr.clone().map(AuthenticationContextClass::new));
    let key = state
        .keys
        .signer(now)
        .ok_or_else(|| OAuthError::internal("no signing key is active"))?;
    let token = BoundIdToken::new(
        claims,
        key.as_ref(),
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        Some(&AccessToken::new(access.to_owned())),
        None,
    )
    .map_err(OAuthError::internal)?;
    Ok(token.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_anchor::keys::SecretKey;

    fn thumbprint(byte: u8) -> Thumbprint {
        Thumbprint::of(&SecretKey::from_bytes(&[byte; 32]).unwrap().public_key())
    }

    #[test]
    fn a_grant_is_bound_by_its_first_proof_and_then_needs_the_same_key() {
        let auth = Authorization::new(
            "client",
            &Authenticated::by_password("alice", 10),
            "openid",
            None,
        );
        // No proof: a Bearer grant, as before DPoP.
        assert_eq!(bind(auth.clone(), None).unwrap().jkt, None);
        // A proof binds it.
        let bound = bind(auth, Some(thumbprint(1))).unwrap();
        assert_eq!(bound.jkt, Some(thumbprint(1)));
        // Later uses (a refresh) need a proof by the same key: missing or another key is
        // an invalid_dpop_proof.
        assert!(bind(bound.clone(), Some(thumbprint(1))).is_ok());
        for proved in [None, Some(thumbprint(2))] {
            let refused = bind(bound.clone(), proved).unwrap_err();
            assert_eq!(refused.code(), "invalid_dpop_proof", "{refused}");
        }
    }
}

//! The userinfo endpoint (OpenID Connect Core §5.3) and token revocation (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::resource::grant_of;
use super::{access_token, blocking, ClientForm};
use crate::dpop::proof_of;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// `GET` or `POST /userinfo` with a Bearer access token (header only: RFC 6750 §2.1), or
/// a DPoP-bound one with `Authorization: DPoP` and a proof by its key (RFC 9449 §7).
pub(crate) async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (scheme, token) =
        access_token(&req).ok_or_else(|| OAuthError::invalid_token("no access token"))?;
    let proof = proof_of(&req)?;
    let method = req.method().as_str().to_owned();
    let body = blocking(&state, move |state| {
        let now = milagro_service::unix_now();
        let (auth, _) = grant_of(state, scheme, &token, proof, &method, "/userinfo", now)?;
        if !auth.has_scope("openid") {
            return Err(OAuthError::with_status(
                actix_web::http::StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token was not granted the openid scope",
            ));
        }
        let mut claims = json!({ "sub": auth.subject });
        if auth.has_scope("profile") || auth.has_scope("email") {
            if let Some(user) = state
                .users
                .by_subject(&auth.subject)
                .map_err(OAuthError::internal)?
            {
                if auth.has_scope("profile") {
                    claims["preferred_username"] = json!(user.username);
                }
                // Only an address the person proved: registration by e-mail sets it.
                if let (true, Some(email)) = (auth.has_scope("email"), user.email) {
                    claims["email"] = json!(email);
                    claims["email_verified"] = json!(true);
                }
            }
        }
        Ok(claims)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `POST /revoke`: the client revokes one of its tokens; 200 whether or not the token
/// was valid (RFC 7009 §2.2).
pub(crate) async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = ClientForm::read(&req, body).await?;
    blocking(&state, move |state| {
        let client = form.authenticate(state)?;
        let params = &form.params;
        if let Some(hint) = params.get("token_type_hint") {
            if !["access_token", "refresh_token"].contains(&hint) {
                return Err(OAuthError::bad_request(
                    "unsupported_token_type",
                    format!("token_type_hint {hint:?} is not supported"),
                ));
            }
        }
        state.grants.revoke(
            params.require("token")?,
            &client.client_id,
            milagro_service::unix_now(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

//! Discovery: the provider metadata (OpenID Connect Discovery 1.0 §3, with the Milagro
//! fields), WebFinger (RFC 7033), the JWKS, the JWKS signed with the anchored key, and the
//! anchored Birth Certificate.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::signed_jwks;
use milagro_service::own_anchor::AnchorState;
use milagro_service::well_known::{birth_certificate_document, NotServed};
use milagro_wire::idp::{MilagroMetadata, ProviderMetadata};
use serde_json::json;

use super::blocking;
use super::ciba::BC_AUTHORIZE_PATH;
use crate::authentication::{ACR_PASSWORD, ACR_VALUES};
use crate::ciba::DELIVERY_POLL;
use crate::clients::{GRANT_CIBA, GRANT_CODE, GRANT_DEVICE, GRANT_REFRESH};
use crate::oauth::OAuthError;
use crate::state::AppState;

/// The WebFinger relation of an OpenID Connect issuer.
pub const ISSUER_REL: &str = "http://openid.net/specs/connect/1.0/issuer";

/// The path of the Birth Certificate document.
pub const BIRTH_CERTIFICATE_PATH: &str = "/.well-known/milagro/birth-certificate";

/// The path of the JWKS signed with the anchored key (`signed_jwks_uri`).
pub const SIGNED_JWKS_PATH: &str = "/jwks.jwt";

/// How long a signed JWKS vouches for its keys. Short: a relying party fetches a fresh one
/// when a token names a key it lacks, and a replayed old one must stop counting soon after
/// a key is dropped (relying parties refuse more than
/// [`milagro_anchor::signed_jwks::MAX_VALIDITY_SECS`]).
pub const SIGNED_JWKS_SECS: u64 = 300;

/// The provider metadata.
pub fn metadata(state: &AppState) -> ProviderMetadata {
    let issuer = state.issuer();
    let at = |path: &str| Some(format!("{issuer}{path}"));
    let txid = match state.own_anchor.get() {
        AnchorState::None => None,
        AnchorState::Pending { txid } => Some(txid.to_string()),
        AnchorState::Confirmed(served) => Some(served.verified.txid().to_string()),
    };
    let list = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let ciba = state.mpin.is_some();
    ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        userinfo_endpoint: at("/userinfo"),
        jwks_uri: format!("{issuer}/jwks"),
        signed_jwks_uri: at(SIGNED_JWKS_PATH),
        registration_endpoint: at("/register"),
        revocation_endpoint: at("/revoke"),
        device_authorization_endpoint: at("/device_authorization"),
        scopes_supported: Some(list(&crate::scopes::SCOPES)),
        response_types_supported: list(&["code"]),
        response_modes_supported: Some(list(&["query", "form_post"])),
        prompt_values_supported: Some(list(&["none", "login", "consent", "select_account"])),
        end_session_endpoint: at("/logout"),
        backchannel_logout_supported: Some(true),
        backchannel_logout_session_supported: Some(true),
        grant_types_supported: Some(if ciba {
            list(&[GRANT_CODE, GRANT_REFRESH, GRANT_DEVICE, GRANT_CIBA])
        } else {
            list(&[GRANT_CODE, GRANT_REFRESH, GRANT_DEVICE])
        }),
        subject_types_supported: list(&["public"]),
        id_token_signing_alg_values_supported: list(&["ES256"]),
        token_endpoint_auth_methods_supported: Some(list(&auth_methods)),
        revocation_endpoint_auth_methods_supported: Some(list(&auth_methods)),
        code_challenge_methods_supported: Some(list(&["S256"])),
        // RFC 9449 §5.1: proofs by a secp256k1 key, the key a Milagro device anchors.
        dpop_signing_alg_values_supported: Some(list(&[milagro_anchor::dpop::ALG])),
        claims_supported: Some(list(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "amr",
            "acr",
            "nonce",
            "at_hash",
            "cnf",
            "sid",
            "preferred_username",
            "email",
            "email_verified",
        ])),
        // The M-Pin level only where M-Pin sign-in is configured.
        acr_values_supported: Some(list(if state.mpin.is_some() {
            &ACR_VALUES
        } else {
            &[ACR_PASSWORD]
        })),
        claims_parameter_supported: Some(false),
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        authorization_response_iss_parameter_supported: Some(true),
        // CIBA where a device can approve (M-Pin), poll mode only, hinted by
        // `login_hint` (neither `id_token_hint` nor `login_hint_token`, which CIBA lets a
        // provider leave out and which no metadata names).
        backchannel_authentication_endpoint: ciba.then(|| format!("{issuer}{BC_AUTHORIZE_PATH}")),
        backchannel_token_delivery_modes_supported: ciba.then(|| list(&[DELIVERY_POLL])),
        backchannel_user_code_parameter_supported: ciba.then_some(false),
        milagro: MilagroMetadata {
            milagro_birth_certificate_uri: format!("{issuer}{BIRTH_CERTIFICATE_PATH}"),
            milagro_birth_certificate_digest: state.identity.digest(),
            milagro_anchor_txid: txid,
            milagro_public_key: state.identity.public_key().to_string(),
        },
    }
}

/// `GET /.well-known/openid-configuration`.
pub(crate) async fn configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(metadata(&state))
}

/// `GET /jwks`.
pub(crate) async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let body = blocking(&state, |state| {
        Ok(state.keys.jwks(milagro_service::unix_now()))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .json(body))
}

/// `GET /jwks.jwt`: the keys of `GET /jwks`, signed by the anchored key (ES256K,
/// `jwk-set+jwt`, [`milagro_anchor::signed_jwks`]), valid for [`SIGNED_JWKS_SECS`]. Signed
/// per request: one secp256k1 signature, cheaper than caching it safely across rotations.
pub(crate) async fn signed_jwks(state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let body = blocking(&state, |state| {
        let now = milagro_service::unix_now();
        Ok(signed_jwks::sign(
            state.identity.secret_key(),
            state.identity.digest(),
            state.issuer(),
            state.keys.public_keys(now),
            now,
            now.saturating_add(SIGNED_JWKS_SECS),
        ))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(signed_jwks::MEDIA_TYPE)
        .body(body))
}

/// `GET /.well-known/webfinger?resource=acct:user@host&rel=…`: this IdP is the issuer of
/// every `acct:` at its own host (RFC 7033 §4; answering the same for every user at the
/// host tells nobody which users exist).
pub(crate) async fn webfinger(req: HttpRequest) -> Result<HttpResponse, OAuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| OAuthError::internal("no state"))?;
    let params = webfinger_params(req.query_string())?;
    let resource = params.0;
    let host = issuer_host(state.issuer());
    let at_host = resource
        .strip_prefix("acct:")
        .and_then(|acct| acct.rsplit_once('@'))
        .is_some_and(|(user, at)| !user.is_empty() && at.eq_ignore_ascii_case(host));
    if !at_host {
        return Err(OAuthError::with_status(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{resource:?} is not an acct: of {host}"),
        ));
    }
    let links = if params.1.is_empty() || params.1.iter().any(|r| r == ISSUER_REL) {
        json!([{ "rel": ISSUER_REL, "href": state.issuer() }])
    } else {
        json!([])
    };
    Ok(HttpResponse::Ok()
        .content_type("application/jrd+json")
        .json(json!({ "subject": resource, "links": links })))
}

/// `resource` (required, once) and every `rel` (RFC 7033 §4.1 allows several).
fn webfinger_params(query: &str) -> Result<(String, Vec<String>), OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| OAuthError::invalid_request(format!("malformed query: {e}")))?;
    let mut resource = None;
    let mut rels = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "resource" if resource.is_none() => resource = Some(value),
            "resource" => return Err(OAuthError::invalid_request("resource is repeated")),
            "rel" => rels.push(value),
            _ => {}
        }
    }
    let resource = resource
        .filter(|r| !r.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("missing parameter resource"))?;
    Ok((resource, rels))
}

/// `host[:port]` of the issuer URL.
pub(crate) fn issuer_host(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// `GET /.well-known/milagro/birth-certificate`.
pub(crate) async fn birth_certificate(
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let body = blocking(&state, |state| {
        birth_certificate_document(
            &state.identity,
            &state.own_anchor,
            &state.index,
            state.config.party.min_depth,
        )
        .map_err(|e| match e {
            NotServed::NotAnchored(message) => {
                OAuthError::with_status(StatusCode::SERVICE_UNAVAILABLE, "not_anchored", message)
            }
            other => OAuthError::internal(other),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

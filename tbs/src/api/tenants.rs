//! The tenant API: operators create tenants, tenants manage their device groups.
//!
//! Every call carries `Authorization: Bearer <token>`: the operator's admin token (its
//! SHA-256 is in the configuration) or one of a tenant's API tokens. Tenant data is reached
//! only through [`authorize`], so a tenant's token never reads or changes another tenant's
//! groups: such a call gets the same 404 as a tenant that does not exist. Attaching a D-TA
//! or IdP requires its Birth Certificate digest to be anchored (indexed as a certificate
//! record): devices will be told to verify it, so the TBS refuses what cannot verify.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::payload::RecordKind;
use milagro_registry::store::RecordStore;
use milagro_wire::tbs::tenants::{self as wire, CreatedTenant, NewTenant, Tenants, Token};
use zeroize::Zeroizing;

use super::{blocking, ApiError};
use crate::state::AppState;
use crate::tenants::model::{
    ApiToken, DisplayName, Group, GroupId, GroupSpec, ModelError, ServiceRef, TenantId,
};
use crate::tenants::store::{authenticate, authorize, authorize_admin, Principal};

/// The admin web page (static; it calls this API from the browser).
const ADMIN_PAGE: &str = include_str!("../../static/admin.html");

/// `GET /admin`
pub(crate) async fn admin_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(ADMIN_PAGE)
}

/// The bearer token of a request (checked later, off the worker thread).
fn bearer(req: &HttpRequest) -> Result<Zeroizing<String>, ApiError> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| Zeroizing::new(token.trim().to_owned()))
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))
}

/// Who is calling.
fn principal(bearer: &str, state: &AppState) -> Result<Principal, ApiError> {
    Ok(authenticate(
        &state.tenants,
        bearer,
        state.config.admin_token.as_ref(),
    )?)
}

/// A request value the model refuses: a 400 naming it.
fn refused(error: ModelError) -> ApiError {
    ApiError::BadRequest(error.to_string())
}

/// `POST /v1/admin/tenants` (admin): creates a tenant and its first token (shown once).
pub(crate) async fn create_tenant(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = TenantId::new(&body.id).map_err(refused)?;
    let name = DisplayName::new(&body.name).map_err(refused)?;
    let token_text = bearer(&req)?;
    let (tenant, token) = blocking(&state, move |state| {
        let admin = authorize_admin(&principal(&token_text, state)?)?;
        Ok(state
            .tenants
            .create_tenant(&admin, id, name, &mut rand_core::OsRng)?)
    })
    .await?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    Ok(HttpResponse::Created().json(CreatedTenant {
        tenant: tenant.to_wire(),
        token: token.reveal().to_owned(),
    }))
}

/// `GET /v1/admin/tenants` (admin).
pub(crate) async fn list_tenants(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token_text = bearer(&req)?;
    let tenants = blocking(&state, move |state| {
        let admin = authorize_admin(&principal(&token_text, state)?)?;
        Ok(state.tenants.tenants(&admin)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Tenants {
        tenants: tenants.iter().map(|t| t.to_wire()).collect(),
    }))
}

/// `POST /v1/tenants/{tenant}/tokens`: another token for the tenant (shown once).
pub(crate) async fn issue_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let token_text = bearer(&req)?;
    let tenant = path.into_inner();
    let token: ApiToken = blocking(&state, move |state| {
        let scope = authorize(&principal(&token_text, state)?, &tenant)?;
        Ok(state.tenants.issue_token(&scope, &mut rand_core::OsRng)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(Token {
        token: token.reveal().to_owned(),
    }))
}

/// `GET /v1/tenants/{tenant}/groups`
pub(crate) async fn list_groups(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let token_text = bearer(&req)?;
    let tenant = path.into_inner();
    let groups: Vec<Group> = blocking(&state, move |state| {
        let scope = authorize(&principal(&token_text, state)?, &tenant)?;
        state.tenants.tenant(&scope)?;
        Ok(state.tenants.groups(&scope)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(groups.iter().map(Group::to_wire).collect::<Vec<_>>()))
}

/// `GET /v1/tenants/{tenant}/groups/{group}`
pub(crate) async fn get_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, GroupId)>,
) -> Result<HttpResponse, ApiError> {
    let token_text = bearer(&req)?;
    let (tenant, group) = path.into_inner();
    let group = blocking(&state, move |state| {
        let scope = authorize(&principal(&token_text, state)?, &tenant)?;
        Ok(state.tenants.group(&scope, &group)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(group.to_wire()))
}

/// `PUT /v1/tenants/{tenant}/groups/{group}`: creates or replaces a group.
pub(crate) async fn put_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, GroupId)>,
    body: web::Json<wire::GroupSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = GroupSpec::try_from(body.into_inner()).map_err(refused)?;
    let token_text = bearer(&req)?;
    let (tenant, group) = path.into_inner();
    let stored = blocking(&state, move |state| {
        let scope = authorize(&principal(&token_text, state)?, &tenant)?;
        for service in spec.dtas.iter().chain(spec.idp.iter()) {
            check_anchored(state, service)?;
        }
        Ok(state.tenants.put_group(&scope, group, spec)?)
    })
    .await?;
    tracing::info!(tenant = %stored.tenant, group = %stored.id, revision = stored.revision, "group saved");
    Ok(HttpResponse::Ok().json(stored.to_wire()))
}

/// `DELETE /v1/tenants/{tenant}/groups/{group}`
pub(crate) async fn delete_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(TenantId, GroupId)>,
) -> Result<HttpResponse, ApiError> {
    let token_text = bearer(&req)?;
    let (tenant, group) = path.into_inner();
    blocking(&state, move |state| {
        let scope = authorize(&principal(&token_text, state)?, &tenant)?;
        Ok(state.tenants.delete_group(&scope, &group)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A service may be attached only once its certificate digest is anchored.
fn check_anchored(state: &AppState, service: &ServiceRef) -> Result<(), ApiError> {
    let anchored = state
        .store
        .by_digest(&service.birth_certificate)?
        .iter()
        .any(|record| record.kind == RecordKind::BirthCertificate);
    if anchored {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "birth certificate {} of {} is not anchored on chain",
            service.birth_certificate,
            service.url.as_str()
        )))
    }
}

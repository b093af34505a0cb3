//! `GET /.well-known/milagro/birth-certificate`: who this TBS is, and the proof of it.

use actix_web::{web, HttpResponse};
use milagro_service::well_known::{birth_certificate_document, NotServed};

use super::{blocking, ApiError};
use crate::state::AppState;

/// The TBS's Birth Certificate with its anchor proof, once anchored `min_depth` deep
/// (see [`birth_certificate_document`]).
pub(crate) async fn birth_certificate(
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        birth_certificate_document(
            state.identity.as_ref().as_ref(),
            &state.own_anchor,
            &state.store,
            state.config.party.min_depth,
        )
        .map_err(|e| match e {
            NotServed::NotAnchored(message) => ApiError::NotAnchored(message),
            NotServed::Store(error) => error.into(),
            other => ApiError::Internal(other.to_string()),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

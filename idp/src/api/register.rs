//! Dynamic client registration (RFC 7591), optionally behind an initial access token.

use actix_web::{web, HttpRequest, HttpResponse};
use milagro_service::token::ApiToken;
use serde_json::json;

use super::{bearer, blocking, read_body};
use crate::clients::ClientMetadata;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// `POST /register` with client metadata JSON; 201 with the client's id (and secret).
pub(crate) async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    if let Some(required) = state.config.initial_access_token {
        let presented = bearer(&req)
            .and_then(|t| ApiToken::parse(&t).ok())
            .ok_or_else(|| {
                OAuthError::invalid_token("registration needs the initial access token")
            })?;
        if !required.matches(&presented) {
            return Err(OAuthError::invalid_token("wrong initial access token"));
        }
    }
    if !milagro_service::api::is_json(&req) {
        return Err(milagro_service::api::unsupported_media_type().into());
    }
    let metadata = ClientMetadata::parse(&read_body(body).await?)?;
    let (client, secret) = metadata.register(milagro_service::unix_now());
    let stored = client.clone();
    blocking(&state, move |state| state.clients.insert(&stored)).await?;
    tracing::info!(client_id = client.client_id, "client registered");
    let mut answer = client.metadata();
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret.as_str());
        answer["client_secret_expires_at"] = json!(0);
    }
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

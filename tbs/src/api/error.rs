//! The one error type of the HTTP API and its one mapping to status codes.
//!
//! Every error response is `{"error": "<code>", "error_description": "<text>"}` with the
//! status below, the one shape of every service's errors
//! ([`milagro_service::api::ApiError`], which renders it). Codes are stable identifiers
//! for programs; descriptions are for people and may change.
//!
//! | code | status | meaning | class |
//! |---|---|---|---|
//! | `bad_request` | 400 | malformed path, query or body | bad input |
//! | `unauthorized` | 401 | no bearer token, or one nobody holds | bad input |
//! | `forbidden` | 403 | the call needs the admin token | bad input |
//! | `not_found` | 404 | no such route, record or block; or another tenant's data | bad input |
//! | `method_not_allowed` | 405 | the route exists for other methods (`Allow` lists them, [`milagro_service::routes`]) | bad input |
//! | `conflict` | 409 | the tenant already exists | bad input |
//! | `request_timeout` | 408 | the body did not arrive in time ([`milagro_service::body_deadline`]) | bad input |
//! | `offer_expired` | 410 | the enrolment offer lapsed before the device signed it; ask again | wait |
//! | `payload_too_large` | 413 | the body exceeds [`super::MAX_BODY_BYTES`] | bad input |
//! | `unsupported_media_type` | 415 | a JSON route got a body that is not `application/json` | bad input |
//! | `too_many_requests` | 429 | a rate limit or a cap on pending work; `Retry-After` says when | wait |
//! | `busy` | 503 | a bounded queue of expensive work is full (`Retry-After`, [`milagro_service::work_gate`]) | wait |
//! | `node_error` | 502 | the node answered with an error | the node |
//! | `not_anchored` | 503 | the TBS's own anchor is not (yet) confirmed deep enough | wait |
//! | `funding_pool_empty` | 503 | no pool coin is free to pay an offer; `Retry-After` says when | wait |
//! | `node_unreachable` | 503 | the node cannot be reached | the node |
//! | `chain_moved` | 503 | the chain reorganised while answering; retry | wait |
//! | `internal` | 500 | a bug or a storage failure of this server | ours |

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use milagro_registry::chain::ChainError;
use milagro_registry::proofs::AssembleError;
use milagro_registry::store::StoreError;
use milagro_service::work_gate::{Busy, GateError};

use crate::tenants::store::TenantError;

/// An HTTP API failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Malformed path, query or body.
    #[error("{0}")]
    BadRequest(String),
    /// No such route, record or block.
    #[error("{0}")]
    NotFound(String),
    /// No bearer token, a malformed one, or one nobody holds.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The resource already exists.
    #[error("{0}")]
    Conflict(String),
    /// An error of the shared API helpers (405 with `Allow`, 404, 415), answered as is.
    #[error(transparent)]
    Shared(#[from] milagro_service::api::ApiError),
    /// The body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The enrolment offer lapsed before the device signed it.
    #[error("{0}")]
    OfferExpired(String),
    /// A rate limit or a cap on pending work was reached.
    #[error("{message}")]
    TooManyRequests {
        /// What was refused and why.
        message: String,
        /// When to try again, in seconds (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// No pool coin is free to pay an offer (the pool refills once its fan-out confirms).
    #[error("{message}")]
    PoolEmpty {
        /// What was refused and why.
        message: String,
        /// When to try again, in seconds (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// The body did not arrive within the read deadline.
    #[error("{0}")]
    RequestTimeout(String),
    /// A bounded queue of expensive work is full; answered with `Retry-After`.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The TBS's own anchor is not confirmed to the configured depth yet.
    #[error("{0}")]
    NotAnchored(String),
    /// The node cannot be reached.
    #[error("the node is unreachable: {0}")]
    NodeUnreachable(String),
    /// The node answered with an error.
    #[error("the node failed: {0}")]
    Node(String),
    /// The chain reorganised between two reads; the same request will work again.
    #[error("{0}")]
    ChainMoved(String),
    /// A bug or a storage failure of this server.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::Shared(shared) => shared.code(),
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::OfferExpired(_) => "offer_expired",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::PoolEmpty { .. } => "funding_pool_empty",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Busy(_) => "busy",
            Self::NotAnchored(_) => "not_anchored",
            Self::NodeUnreachable(_) => "node_unreachable",
            Self::Node(_) => "node_error",
            Self::ChainMoved(_) => "chain_moved",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Shared(shared) => shared.status_code(),
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OfferExpired(_) => StatusCode::GONE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Node(_) => StatusCode::BAD_GATEWAY,
            Self::NotAnchored(_)
            | Self::NodeUnreachable(_)
            | Self::ChainMoved(_)
            | Self::PoolEmpty { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Shared(shared) = self {
            return shared.error_response();
        }
        let shared =
            milagro_service::api::ApiError::new(self.status_code(), self.code(), self.to_string());
        let retry_after = match self {
            Self::TooManyRequests {
                retry_after_secs, ..
            }
            | Self::PoolEmpty {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::Busy(busy) => Some(busy.retry_after_secs),
            _ => None,
        };
        let shared = match (self, retry_after) {
            (Self::Unauthorized(_), _) => shared.with_header("WWW-Authenticate", "Bearer"),
            (_, Some(secs)) => shared.with_header("Retry-After", secs.to_string()),
            _ => shared,
        };
        shared.error_response()
    }
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> Self {
        match error {
            TenantError::Unauthenticated => Self::Unauthorized(error.to_string()),
            TenantError::Forbidden => Self::Forbidden(error.to_string()),
            TenantError::NotFound(_) => Self::NotFound(error.to_string()),
            TenantError::Conflict(_) => Self::Conflict(error.to_string()),
            TenantError::Invalid(_) => Self::BadRequest(error.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<ChainError> for ApiError {
    fn from(error: ChainError) -> Self {
        match error {
            ChainError::Unreachable(detail) => Self::NodeUnreachable(detail),
            ChainError::NotFound(what) => Self::ChainMoved(format!(
                "{what} is no longer on the node's active chain (a reorg); retry"
            )),
            other => Self::Node(other.to_string()),
        }
    }
}

impl From<AssembleError> for ApiError {
    fn from(error: AssembleError) -> Self {
        match error {
            AssembleError::Chain(chain) => chain.into(),
            other => Self::ChainMoved(format!("{other}; retry")),
        }
    }
}

impl From<GateError> for ApiError {
    /// What a [`milagro_service::work_gate::WorkGate`] refusal or lost job answers: 503
    /// `busy` (with `Retry-After`), or 500.
    fn from(error: GateError) -> Self {
        match error {
            GateError::Busy(busy) => Self::Busy(busy),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn every_error_is_a_json_body_with_its_code_and_status() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                milagro_service::api::unsupported_media_type().into(),
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::PayloadTooLarge("x".into()),
                413,
                "payload_too_large",
            ),
            (ApiError::RequestTimeout("x".into()), 408, "request_timeout"),
            (
                GateError::Busy(Busy {
                    what: "envelopes",
                    retry_after_secs: 1,
                })
                .into(),
                503,
                "busy",
            ),
            (ApiError::Node("x".into()), 502, "node_error"),
            (ApiError::OfferExpired("x".into()), 410, "offer_expired"),
            (
                ApiError::TooManyRequests {
                    message: "x".into(),
                    retry_after_secs: 7,
                },
                429,
                "too_many_requests",
            ),
            (
                ApiError::PoolEmpty {
                    message: "x".into(),
                    retry_after_secs: 7,
                },
                503,
                "funding_pool_empty",
            ),
            (ApiError::NotAnchored("x".into()), 503, "not_anchored"),
            (
                ChainError::Unreachable("down".into()).into(),
                503,
                "node_unreachable",
            ),
            (
                ChainError::NotFound("block".into()).into(),
                503,
                "chain_moved",
            ),
            (StoreError::Backend("disk".into()).into(), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status, "{error}");
            let retry_after = response.headers().get("Retry-After");
            assert_eq!(
                retry_after.is_some(),
                matches!(status, 429) || matches!(code, "funding_pool_empty" | "busy"),
                "{error}"
            );
            let body = response.into_body().try_into_bytes().unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"], code);
            let description = match &error {
                ApiError::Shared(shared) => shared.description().to_owned(),
                other => other.to_string(),
            };
            assert_eq!(json["error_description"], description);
            assert_eq!(json.as_object().unwrap().len(), 2);
        }
    }
}

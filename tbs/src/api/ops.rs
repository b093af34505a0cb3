//! Operations endpoints: `/v1/status`, `/metrics` (`/openapi.json` is
//! [`milagro_service::routes::document_route`]).

use actix_web::{web, HttpResponse};
use milagro_registry::store::RecordStore;
use milagro_service::well_known::anchor_status;
use milagro_wire::service::AnchorStatus;
use milagro_wire::tbs::registry::{FundingPool, Status};

use super::{blocking, ApiError};
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

/// `GET /v1/status`: the index, the node as last seen, and the TBS's own anchor.
pub(crate) async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        let tip = state.store.tip()?;
        let records = state.store.record_count()?;
        let sync = state.chain.status.snapshot();
        let anchor = anchor_status(&state.own_anchor);
        let pool_size = state.config.anchoring.funding_pool;
        let refilling = state
            .enrolments
            .pending_fan_out()
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map(|f| f.txid.to_string());
        Ok(Status {
            name: state.config.party.name.clone(),
            public_url: state.config.party.public_url.clone(),
            network: state.config.party.node.network.to_core_arg().to_owned(),
            digest: state.identity.digest(),
            public_key: state.identity.public_key().to_string(),
            anchored: matches!(anchor, AnchorStatus::Confirmed { .. }),
            anchor,
            index_height: tip.map(|t| t.height),
            index_hash: tip.map(|t| t.hash.to_string()),
            records,
            node_reachable: sync.node_reachable,
            node_height: sync.node_height,
            caught_up: sync.caught_up,
            last_error: sync.last_error,
            anchor_error: sync.anchor_error,
            sync_errors: sync.sync_errors,
            funding_pool: FundingPool {
                size: count(pool_size),
                free: count(state.enrolments.free_coins(pool_size)),
                refilling,
            },
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// A count of coins, as the status shows it.
fn count(coins: usize) -> u64 {
    u64::try_from(coins).unwrap_or(u64::MAX)
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text).
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .encode()
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}

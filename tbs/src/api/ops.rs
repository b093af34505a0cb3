//! Operations endpoints: `/v1/status`, `/metrics` (`/openapi.json` is
//! [`milagro_service::routes::document_route`]).

use actix_web::{web, HttpResponse};
use milagro_registry::store::RecordStore;
use serde_json::json;

use super::{blocking, ApiError};
use crate::metrics::CONTENT_TYPE;
use crate::state::{AnchorState, AppState};

/// `GET /v1/status`: the index, the node as last seen, and the TBS's own anchor.
pub(crate) async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        let tip = state.store.tip()?;
        let records = state.store.record_count()?;
        let sync = state.chain.status.snapshot();
        let anchor = match state.own_anchor.get() {
            AnchorState::None => json!({ "state": "none" }),
            AnchorState::Pending { txid } => json!({ "state": "pending", "txid": txid }),
            AnchorState::Confirmed(served) => json!({
                "state": "confirmed",
                "txid": served.verified.txid(),
                "height": served.verified.height(),
                "block_hash": served.verified.block_hash(),
            }),
        };
        let anchored = anchor["state"] == "confirmed";
        Ok(json!({
            "name": state.config.party.name,
            "public_url": state.config.party.public_url,
            "network": state.config.party.node.network.to_core_arg(),
            "digest": state.identity.digest(),
            "public_key": state.identity.public_key(),
            "anchored": anchored,
            "anchor": anchor,
            "index_height": tip.map(|t| t.height),
            "index_hash": tip.map(|t| t.hash),
            "records": records,
            "node_reachable": sync.node_reachable,
            "node_height": sync.node_height,
            "caught_up": sync.caught_up,
            "last_error": sync.last_error,
            "anchor_error": sync.anchor_error,
            "sync_errors": sync.sync_errors,
            "funding_pool": {
                "size": state.config.anchoring.funding_pool,
                "free": state.enrolments.free_coins(state.config.anchoring.funding_pool),
                "refilling": state.enrolments.pending_fan_out().map_err(|e| ApiError::Internal(e.to_string()))?.map(|f| f.txid),
            },
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text).
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .encode()
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}

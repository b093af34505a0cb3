//! `GET /.well-known/milagro/birth-certificate`: who this TBS is, and the proof of it.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::{blocking, ApiError};
use crate::state::{AnchorState, AppState};
use milagro_registry::store::RecordStore;

/// The TBS's Birth Certificate with its anchor proof, once anchored `min_depth` deep.
///
/// The anchor was verified by SPV when the sync loop found it; here it is served only if
/// its block is still in the index, with the depth of the index's current tip.
pub(crate) async fn birth_certificate(
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        let served = match state.own_anchor.get() {
            AnchorState::Confirmed(served) => served,
            AnchorState::Pending { txid } => {
                return Err(ApiError::NotAnchored(format!(
                    "the TBS birth certificate is being anchored by transaction {txid}, \
                     not yet confirmed; retry after the next block"
                )))
            }
            AnchorState::None => {
                return Err(ApiError::NotAnchored(
                    "the TBS birth certificate is not anchored yet (waiting for the node)".into(),
                ))
            }
        };
        let anchor = served.verified;
        let still_there = state.store.block_hash_at(anchor.height())?;
        let tip = state.store.tip()?;
        let depth = match tip {
            Some(tip) if still_there == Some(anchor.block_hash()) => {
                tip.height.saturating_sub(anchor.height()) + 1
            }
            _ => {
                return Err(ApiError::NotAnchored(format!(
                    "block {} of the TBS anchor left the chain (a reorg); re-anchoring",
                    anchor.block_hash()
                )))
            }
        };
        let min_depth = state.config.anchoring.min_depth;
        if depth < min_depth {
            return Err(ApiError::NotAnchored(format!(
                "the TBS anchor has {depth} confirmation(s), {min_depth} required; retry later"
            )));
        }
        let bc = state.identity.bc();
        let document: Value = serde_json::from_slice(&bc.to_canonical_json())
            .map_err(|e| ApiError::Internal(format!("birth certificate JSON: {e}")))?;
        Ok(json!({
            "birth_certificate": document,
            "digest": bc.digest(),
            "public_key": bc.public_key(),
            "txid": anchor.txid(),
            "vout": anchor.vout(),
            "height": anchor.height(),
            "block_hash": anchor.block_hash(),
            "depth": depth,
            "anchor_proof": served.proof,
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

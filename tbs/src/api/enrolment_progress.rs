//! What `POST /v1/enrolments`, `GET /v1/enrolments/{device}` and the instructions route's
//! `202` say about a device's enrolment, and the offer sealed in it.
//!
//! An offer is never shown in clear: anyone may ask for a device's progress, and anyone on
//! the path could swap a clear PSBT for one paying its change elsewhere. It is sealed under
//! the device's instruction key (which came inside the device's sealed, signed request)
//! with the funding outpoint and change script the TBS meant and the expiry of its coin
//! reservation, so only the device reads it and it signs only what the TBS offered
//! (`milagro_anchor::anchor_offer::OfferTerms`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bitcoin::consensus::encode;
use bitcoin::{OutPoint, Transaction};
use milagro_anchor::anchor_offer::{AnchorOffer, OfferTerms};
use milagro_anchor::anchor_tx::p2wpkh_script;
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::envelope::SealedOffer;
use milagro_wire::tbs::enrolment::{BatchPlace, EnrolmentProgress, EnrolmentStage};

use super::ApiError;
use crate::enrolment::{Enrolment, EnrolmentState, Reservation};
use crate::state::AppState;

/// The progress body of `row`; an offer in it is sealed to the device.
pub(super) fn progress(state: &AppState, row: &Enrolment) -> Result<EnrolmentProgress, ApiError> {
    let stage = match &row.state {
        EnrolmentState::Offered {
            funding_tx,
            offer_psbt,
            reservation,
        } => EnrolmentStage::Offered {
            offer: sealed_offer(state, row, funding_tx, offer_psbt, reservation.as_ref())?
                .to_base64(),
        },
        EnrolmentState::Broadcast { txid, .. } => EnrolmentStage::Broadcast {
            txid: txid.to_string(),
        },
        EnrolmentState::Expired { expired_at } => EnrolmentStage::Expired {
            expired_at: *expired_at,
        },
        EnrolmentState::Queued => EnrolmentStage::Queued,
        EnrolmentState::Batched { batch, index, root } => EnrolmentStage::Batched(BatchPlace {
            batch: *batch,
            index: *index,
            root: *root,
        }),
    };
    Ok(EnrolmentProgress {
        tenant: row.tenant.to_string(),
        group: row.group.to_string(),
        stage,
    })
}

/// `progress` of an anchor indexed at `height`, `depth` deep: what it said of the anchor
/// (its transaction, or its place in a batch) stays.
pub(super) fn confirmed(progress: EnrolmentProgress, height: u32, depth: u32) -> EnrolmentProgress {
    let (txid, batch) = match progress.stage {
        EnrolmentStage::Broadcast { txid } => (Some(txid), None),
        EnrolmentStage::Batched(place) => (None, Some(place)),
        // Only a broadcast or batched device has an anchor to index.
        _ => (None, None),
    };
    EnrolmentProgress {
        stage: EnrolmentStage::Confirmed {
            txid,
            batch,
            height,
            depth,
        },
        ..progress
    }
}

/// The stored offer, sealed under the device's instruction key with its terms: the
/// payment's output 0 (what the offer was built to spend), the pool key's script (where
/// its change was built to go) and the reservation's expiry. A fresh nonce each time: the
/// answer is asked for a few times per offer, far below what one key may seal.
fn sealed_offer(
    state: &AppState,
    row: &Enrolment,
    funding_tx: &str,
    offer_psbt: &str,
    reservation: Option<&Reservation>,
) -> Result<SealedOffer, ApiError> {
    let payment: Transaction = encode::deserialize_hex(funding_tx).map_err(internal)?;
    let bc = BirthCertificate::parse(row.birth_certificate.as_bytes()).map_err(internal)?;
    let psbt = STANDARD.decode(offer_psbt).map_err(internal)?;
    // Checked as the device will check it: a stored offer that fails is our bug, better
    // found here than as a refusal on the device.
    let offer = AnchorOffer::check(&psbt, &bc).map_err(internal)?;
    let change = p2wpkh_script(&state.identity.funding_pool_public_key());
    // Rows of an older TBS hold no reservation: their payment went out with the offer,
    // and they never lapse.
    let expires_at = reservation.map_or(u64::MAX, |r| r.expires_at);
    OfferTerms::new(
        &offer,
        OutPoint::new(payment.compute_txid(), 0),
        change,
        expires_at,
    )
    .seal(
        &mut rand_core::OsRng,
        &row.instruction_key,
        &state.identity.public_key(),
        &row.device,
    )
    .map_err(internal)
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(error.to_string())
}

//! Device enrolment endpoints; the protocol is `docs/enrolment.md`.
//!
//! `POST /v1/enrolments` opens a sealed request, checks its enrolment credential against
//! the group's enrolment keys, and answers with an anchoring offer sealed under the
//! device's instruction key (`enrolment_progress.rs`), holding a pool coin until it lapses
//! (the same offer again for a device that already has a live one), or, in a batch-mode
//! group, queues the device for the next batch; past a rate limit or a cap, `429` with
//! `Retry-After`. `POST /v1/enrolments/signed` accepts the device's signed transaction and
//! broadcasts the payment and the anchor together: nothing is paid before the anchor is
//! checked. `GET /v1/enrolments/{device}` reports progress and depth;
//! `GET /v1/enrolments/{device}/instructions` serves the sealed instructions once the
//! anchor is deep enough (a new group revision gives new instructions: `milagro pat
//! refresh`).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bitcoin::consensus::encode;
use bitcoin::{OutPoint, Transaction, Txid};
use milagro_anchor::anchor_offer::AnchorOffer;
use milagro_anchor::anchor_tx::{p2wpkh_script, single_anchor_funding, FundingUtxo};
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::envelope::SealedEnvelope;
use milagro_anchor::funding_pool::build_device_payment;
use milagro_anchor::instructions::{DeviceAnchor, Instructions, ServiceAnchor};
use milagro_anchor::keys::PublicKey;
use milagro_anchor::payload::RecordKind;
use milagro_registry::proofs::anchor_proof;
use milagro_registry::store::{IndexedRecord, RecordStore};
use milagro_service::attempts::TooManyFailures;
use milagro_wire::tbs::enrolment::{InstructionsAnswer, Ready, SealedBody};

use super::enrolment_progress::{confirmed, progress};
use super::{blocking, gated, ApiError};
use crate::audit::RegistrationLog as _;
use crate::enrolment::{self, Enrolment, EnrolmentState, Reservation, Reserved, WatchError};
use crate::state::AppState;
use crate::tenants::model::{EnrolmentMode, Group, GroupId, ServiceRef, TenantId};

/// How long a device is told to wait when no pool coin is free: the refill's fan-out
/// confirms in about a block.
const POOL_EMPTY_RETRY_SECS: u64 = 60;
/// How many coins an offer tries when concurrent offers keep taking the one it picked.
const COIN_ATTEMPTS: usize = 8;

/// The envelope of a [`SealedBody`], or a 400.
fn envelope_of(body: SealedBody) -> Result<SealedEnvelope, ApiError> {
    body.envelope
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("envelope: {e}")))
}

/// `POST /v1/enrolments`
pub(crate) async fn enrol(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SealedBody>,
) -> Result<HttpResponse, ApiError> {
    // A malformed body is refused before it counts against its address (decoding is
    // cheap): only a well-formed envelope is worth limiting.
    let envelope = envelope_of(body.into_inner())?;
    // Before anything costs: opening the envelope is an ECDH and a decryption.
    let client = milagro_service::proxy::client_ip(&req, &state.config.party.trusted_proxies);
    if let Some(client) = client {
        state
            .enrolment_limits
            .address(client, crate::unix_now())
            .map_err(|e| too_many(e, "enrolment requests from this address"))?;
    }
    let body = gated(&state, move |state| {
        let row = answer_request(state, &envelope)?;
        // Sealed in here too: it parses and checks the stored offer.
        progress(state, &row)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Opens and checks an enrolment request and answers it: the device's live enrolment if
/// it has one, else a new offer (direct mode) or a place in the queue (batch mode).
fn answer_request(state: &AppState, envelope: &SealedEnvelope) -> Result<Enrolment, ApiError> {
    let now = crate::unix_now();
    let request = EnrolmentRequest::open(state.identity.envelope_key(), envelope, now)
        .map_err(|e| ApiError::BadRequest(format!("enrolment refused: {e}")))?;
    let tenant = TenantId::new(&request.tenant).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let group_id = GroupId::new(&request.group).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let group = state.tenants.group_for_device(&tenant, &group_id)?;
    check_credential(&request, &group)?;
    if let Some(existing) = state.enrolments.get(request.device()).map_err(internal)? {
        if !matches!(existing.state, EnrolmentState::Expired { .. }) {
            return Ok(existing);
        }
    }
    if state
        .enrolments
        .remember_nonce(&request.nonce, request.created)
        .map_err(internal)?
        .is_err()
    {
        return Err(ApiError::Conflict(
            "this enrolment request was already used".into(),
        ));
    }
    state
        .enrolment_limits
        .tenant(&tenant, now)
        .map_err(|e| too_many(e, &format!("enrolment requests for tenant {tenant}")))?;
    match group.mode {
        EnrolmentMode::Direct => offer(state, &request, tenant, group_id, now),
        EnrolmentMode::Batch => {
            let limit = state.config.enrolment.max_queued;
            if state.enrolments.queued_count() >= limit {
                return Err(ApiError::TooManyRequests {
                    message: format!(
                        "{limit} devices already wait for the next batch; retry after it"
                    ),
                    retry_after_secs: state.config.anchoring.batch_interval.as_secs(),
                });
            }
            let row = new_row(&request, tenant, group_id, EnrolmentState::Queued);
            let digest = request.birth_certificate.digest();
            let row = state
                .enrolments
                .enqueue(&row, &digest, now)
                .map_err(internal)?;
            tracing::info!(device = %row.device, tenant = %row.tenant, group = %row.group, "enrolment queued for the next batch");
            Ok(row)
        }
    }
}

/// The request's credential must be signed by one of the group's enrolment keys (the
/// request's opening already checked that it names this device, tenant and group).
fn check_credential(request: &EnrolmentRequest, group: &Group) -> Result<(), ApiError> {
    let issuer = request.credential.issuer();
    if group.enrolment_keys.contains(issuer) {
        return Ok(());
    }
    tracing::info!(device = %request.device(), tenant = %group.tenant, group = %group.id, %issuer, "enrolment refused: the credential's issuer is not an enrolment key of the group");
    Err(ApiError::Forbidden(format!(
        "the enrolment credential is signed by {issuer}, which is not an enrolment key of \
         group {}/{}",
        group.tenant, group.id
    )))
}

fn too_many(error: TooManyFailures, what: &str) -> ApiError {
    ApiError::TooManyRequests {
        message: format!("too many {what}; retry in {} s", error.retry_after_secs),
        retry_after_secs: error.retry_after_secs,
    }
}

/// Reserves a pool coin for the device and builds the offer: the pool's payment to the
/// device key, signed and held back, and the anchoring transaction spending it. Nothing
/// is sent: the payment goes out only with the device's signed anchor.
fn offer(
    state: &AppState,
    request: &EnrolmentRequest,
    tenant: TenantId,
    group: GroupId,
    now: u64,
) -> Result<Enrolment, ApiError> {
    let limits = &state.config.enrolment;
    let expiry = limits.offer_expiry.as_secs();
    let pending = state
        .enrolments
        .pending_offers(&tenant, limits.max_pending_offers_per_tenant)
        .map_err(internal)?;
    if pending >= limits.max_pending_offers_per_tenant {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "{pending} offers of tenant {tenant} wait for their devices' signatures; \
                 retry once some are signed or lapse"
            ),
            retry_after_secs: expiry,
        });
    }
    let fee_rate = state.config.party.fee_rate;
    let amount = single_anchor_funding(fee_rate)
        .ok_or_else(|| ApiError::Internal("fee rate overflow".into()))?;
    let device = *request.device();
    let identity = &state.identity;
    let change = p2wpkh_script(&identity.funding_pool_public_key());
    let mut candidate = state.enrolments.free_coin().map_err(internal)?;
    for _ in 0..COIN_ATTEMPTS {
        let Some(coin) = candidate else { break };
        let payment = build_device_payment(identity.funding_pool_key(), &coin, &device, fee_rate)
            .map_err(internal)?;
        let funding = FundingUtxo {
            outpoint: OutPoint::new(payment.compute_txid(), 0),
            value: amount,
        };
        let offer = AnchorOffer::build(
            &request.birth_certificate,
            &funding,
            change.clone(),
            fee_rate,
        )
        .map_err(|e| ApiError::Internal(format!("cannot build the offer: {e}")))?;
        let reservation = Reservation {
            coin: coin.outpoint,
            value_sat: coin.value.to_sat(),
            expires_at: now.saturating_add(expiry),
        };
        let row = new_row(
            request,
            tenant.clone(),
            group.clone(),
            EnrolmentState::Offered {
                funding_tx: encode::serialize_hex(&payment),
                offer_psbt: STANDARD.encode(offer.to_psbt_bytes()),
                reservation: Some(reservation),
            },
        );
        match state
            .enrolments
            .reserve_offer(&row, &reservation)
            .map_err(internal)?
        {
            Reserved::Stored(row) => {
                tracing::info!(%device, %tenant, %group, coin = %coin.outpoint, expires_at = reservation.expires_at, "enrolment offered; its payment waits for the signed anchor");
                return Ok(row);
            }
            Reserved::Existing(row) => return Ok(row),
            Reserved::CoinTaken => {
                candidate = state.enrolments.free_coin_after(&coin).map_err(internal)?;
            }
        }
    }
    tracing::info!(%device, %tenant, "no funding pool coin is free; the device is told to retry");
    Err(ApiError::PoolEmpty {
        message: "no funding pool coin is free to pay an offer; the pool refills within a \
                  block"
            .into(),
        retry_after_secs: POOL_EMPTY_RETRY_SECS,
    })
}

fn new_row(
    request: &EnrolmentRequest,
    tenant: TenantId,
    group: GroupId,
    state: EnrolmentState,
) -> Enrolment {
    Enrolment {
        device: *request.device(),
        tenant,
        group,
        birth_certificate: String::from_utf8_lossy(&request.birth_certificate.to_canonical_json())
            .into_owned(),
        instruction_key: request.instruction_key.clone(),
        state,
    }
}

/// `POST /v1/enrolments/signed`
pub(crate) async fn signed(
    state: web::Data<AppState>,
    body: web::Json<SealedBody>,
) -> Result<HttpResponse, ApiError> {
    let envelope = envelope_of(body.into_inner())?;
    let row = gated(&state, move |state| {
        let signed = SignedAnchor::open(state.identity.envelope_key(), &envelope)
            .map_err(|e| ApiError::BadRequest(format!("signed anchor refused: {e}")))?;
        let row = state
            .enrolments
            .get(&signed.device)
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no enrolment of device {}", signed.device))
            })?;
        let (anchor, funding_tx) = match &row.state {
            EnrolmentState::Broadcast {
                anchor_tx,
                funding_tx,
                ..
            } => (decode_tx(anchor_tx)?, funding_tx.clone()),
            EnrolmentState::Offered {
                offer_psbt,
                funding_tx,
                ..
            } => {
                let bc =
                    BirthCertificate::parse(row.birth_certificate.as_bytes()).map_err(internal)?;
                let psbt = STANDARD.decode(offer_psbt).map_err(internal)?;
                let offer = AnchorOffer::check(&psbt, &bc).map_err(internal)?;
                let anchor = offer
                    .accept(signed.tx)
                    .map_err(|e| ApiError::BadRequest(format!("signed anchor refused: {e}")))?;
                (anchor, funding_tx.clone())
            }
            EnrolmentState::Expired { .. } => return Err(expired(&signed.device)),
            EnrolmentState::Queued | EnrolmentState::Batched { .. } => {
                return Err(ApiError::Conflict(format!(
                    "device {} enrols in batch mode: the TBS anchors it, there is nothing to sign",
                    signed.device
                )))
            }
        };
        let txid = anchor.compute_txid();
        let broadcast = EnrolmentState::Broadcast {
            funding_tx,
            anchor_tx: encode::serialize_hex(&anchor),
            txid,
        };
        // Written before it is sent: a crash after this line re-sends the same transaction.
        let row = state
            .enrolments
            .mark_broadcast(&row.device, broadcast)
            .map_err(internal)?
            .ok_or_else(|| ApiError::Internal("enrolment row vanished".into()))?;
        if matches!(row.state, EnrolmentState::Expired { .. }) {
            // The offer lapsed between reading it and storing the signature.
            return Err(expired(&row.device));
        }
        // The registration is fixed now: log it (once; a retry finds it logged).
        state.audit.register(&row).map_err(internal)?;
        enrolment::send(&state.node, &state.enrolments, &row).map_err(watch_error)?;
        tracing::info!(device = %row.device, %txid, "enrolment anchor broadcast");
        Ok(row)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(progress(&state, &row)?))
}

/// `GET /v1/enrolments/{device}`
pub(crate) async fn status(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = super::parse_device(&path.into_inner())?;
    let body = blocking(&state, move |state| {
        let row = enrolment_of(state, &device)?;
        let body = progress(state, &row)?;
        match indexed_anchor(state, &row)? {
            Some((record, depth)) => Ok(confirmed(body, record.height, depth)),
            None => Ok(body),
        }
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /v1/enrolments/{device}/instructions`: the device's instructions, sealed under its
/// instruction key, once its anchor is `anchoring.min_depth` deep; `202` with progress
/// before that.
pub(crate) async fn instructions(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = super::parse_device(&path.into_inner())?;
    let answer = blocking(&state, move |state| {
        let row = enrolment_of(state, &device)?;
        let deep_enough = indexed_anchor(state, &row)?
            .filter(|(_, depth)| *depth >= state.config.party.min_depth);
        let Some((record, _)) = deep_enough else {
            return Ok(Err(progress(state, &row)?));
        };
        let anchor_proof = anchor_proof(state.node.as_ref(), &record)?.to_json();
        let device_anchor = match &row.state {
            EnrolmentState::Batched { batch, index, root } => DeviceAnchor::Batch {
                txid: record.txid,
                root: *root,
                membership: state
                    .enrolments
                    .membership_proof(*batch, *index)
                    .map_err(internal)?,
                anchor_proof,
            },
            _ => DeviceAnchor::Direct {
                txid: record.txid,
                anchor_proof,
            },
        };
        let group = state.tenants.group_for_device(&row.tenant, &row.group)?;
        let services = |refs: Vec<&ServiceRef>| -> Result<Vec<ServiceAnchor>, ApiError> {
            refs.into_iter()
                .map(|service| service_anchor(state, service))
                .collect()
        };
        let instructions = Instructions {
            tenant: row.tenant.to_string(),
            group: row.group.to_string(),
            revision: group.revision,
            device: device_anchor,
            dtas: services(group.dtas.iter().collect())?,
            idp: services(group.idp.iter().collect())?.pop(),
        };
        let sealed = instructions
            .seal(
                &mut rand_core::OsRng,
                &row.instruction_key,
                &state.identity.public_key(),
                &device,
            )
            .map_err(internal)?;
        Ok(Ok(InstructionsAnswer {
            status: Ready::Ready,
            sequence: group.revision,
            instructions: sealed.to_base64(),
        }))
    })
    .await?;
    Ok(match answer {
        Ok(ready) => HttpResponse::Ok().json(ready),
        Err(progress) => HttpResponse::Accepted().json(progress),
    })
}

/// A service's earliest anchored certificate record and its proof.
fn service_anchor(state: &AppState, service: &ServiceRef) -> Result<ServiceAnchor, ApiError> {
    let record = state
        .store
        .by_digest(&service.birth_certificate)?
        .into_iter()
        .filter(|r| r.kind == RecordKind::BirthCertificate)
        .min_by_key(|r| r.height)
        .ok_or_else(|| {
            ApiError::ChainMoved(format!(
                "the certificate of {} is no longer anchored (a reorg); retry",
                service.url.as_str()
            ))
        })?;
    Ok(ServiceAnchor {
        url: service.url.as_str().to_owned(),
        birth_certificate: service.birth_certificate,
        anchor_proof: anchor_proof(state.node.as_ref(), &record)?.to_json(),
    })
}

/// The device's enrolment row, or a 404.
fn enrolment_of(state: &AppState, device: &PublicKey) -> Result<Enrolment, ApiError> {
    state
        .enrolments
        .get(device)
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no enrolment of device {device}")))
}

/// The transaction anchoring a device: its own once broadcast, its batch's once batched.
fn anchor_txid(state: &AppState, row: &Enrolment) -> Result<Option<Txid>, ApiError> {
    match &row.state {
        EnrolmentState::Broadcast { txid, .. } => Ok(Some(*txid)),
        EnrolmentState::Batched { batch, .. } => Ok(Some(
            state
                .enrolments
                .batch(*batch)
                .map_err(internal)?
                .ok_or_else(|| ApiError::Internal(format!("batch {batch} is missing")))?
                .txid,
        )),
        EnrolmentState::Offered { .. }
        | EnrolmentState::Expired { .. }
        | EnrolmentState::Queued => Ok(None),
    }
}

/// The indexed record of a device's anchor and its depth, if indexed.
fn indexed_anchor(
    state: &AppState,
    row: &Enrolment,
) -> Result<Option<(IndexedRecord, u32)>, ApiError> {
    let Some(txid) = anchor_txid(state, row)? else {
        return Ok(None);
    };
    match state.store.by_txid(&txid)?.into_iter().next() {
        Some(record) => {
            let depth = record.depth_in(state.store.as_ref())?;
            Ok(Some((record, depth)))
        }
        None => Ok(None),
    }
}

fn expired(device: &PublicKey) -> ApiError {
    ApiError::OfferExpired(format!(
        "the offer to device {device} lapsed before its signature arrived; send a new \
         enrolment request"
    ))
}

fn decode_tx(hex: &str) -> Result<Transaction, ApiError> {
    encode::deserialize_hex(hex).map_err(internal)
}

fn watch_error(error: WatchError) -> ApiError {
    match error {
        WatchError::Chain(chain) => ApiError::from(chain),
        other => internal(other),
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(error.to_string())
}

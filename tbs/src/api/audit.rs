//! The audit log API: anchored checkpoints, consistency proofs between them, and the
//! inclusion proof of a device's registration (see [`crate::audit`]).
//!
//! A verifier trusts none of it: it checks each checkpoint note's signature with the key
//! of the TBS's anchored Birth Certificate, the checkpoint's anchor proof by SPV (record
//! kind `audit_log_root`, digest = the note's digest, signer = the TBS key), consistency
//! proofs between the checkpoints it holds, and an inclusion proof of the entry it
//! recomputes itself ([`crate::audit::registration_entry`]) against a checkpoint's root.

use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::audit_log::{LeafIndex, TreeSize};
use milagro_anchor::checkpoint::KeyId;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::{Expected, Headers};
use milagro_registry::chain::ChainSource;
use milagro_registry::proofs::anchor_proof;
use milagro_registry::store::RecordStore;
use milagro_wire::tbs::audit::{
    AuditCheckpoint, AuditCheckpoints, Checkpoint, CheckpointAnchor, ConfirmedCheckpoint,
    ListedCheckpoint, LogSigner, RegistrationProof,
};
use serde::Deserialize;

use super::{blocking, ApiError};
use crate::audit::RegistrationLog as _;
use crate::audit::StoredCheckpoint;
use crate::state::AppState;

/// Most checkpoints one `/v1/audit/checkpoints` request returns.
pub const MAX_CHECKPOINTS: u32 = 100;

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(error.to_string())
}

fn parse_query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))
}

/// A checkpoint with where its anchor stands (no proof).
fn listed(state: &AppState, checkpoint: &StoredCheckpoint) -> Result<Checkpoint, ApiError> {
    Ok(Checkpoint {
        signed: checkpoint.to_wire(),
        anchor: Some(anchor_state(state, checkpoint, false)?),
    })
}

/// Where a checkpoint's anchor stands; with its SPV proof (checked here first) if asked.
fn anchor_state(
    state: &AppState,
    checkpoint: &StoredCheckpoint,
    with_proof: bool,
) -> Result<CheckpointAnchor, ApiError> {
    let Some(record) = state.store.by_txid(&checkpoint.txid)?.into_iter().next() else {
        return Ok(CheckpointAnchor::Pending {
            txid: checkpoint.txid.to_string(),
        });
    };
    let depth = record.depth_in(state.store.as_ref())?;
    let mut confirmed = ConfirmedCheckpoint {
        txid: record.txid.to_string(),
        vout: record.vout,
        height: record.height,
        block_hash: record.block_hash.to_string(),
        depth,
        anchor_proof: None,
    };
    if with_proof {
        let proof = anchor_proof(&*state.node, &record)?;
        let header = state.node.header(&record.block_hash)?;
        let chain = Headers::new(state.config.party.node.network, record.height, header)
            .map_err(|e| ApiError::Node(format!("block {}: {e}", record.block_hash)))?;
        let expected = Expected {
            kind: RecordKind::AuditLogRoot,
            digest: checkpoint.digest,
            signer: Some(state.identity.public_key()),
        };
        proof.verify(&expected, &chain).map_err(|e| {
            ApiError::Node(format!(
                "the node's proof of checkpoint anchor {} does not verify: {e}",
                record.txid
            ))
        })?;
        confirmed.anchor_proof = Some(proof.to_json());
    }
    Ok(CheckpointAnchor::Confirmed(confirmed))
}

/// The log's origin and the checkpoints' signing key (the certificate's `checkpoint`
/// purpose key, not the anchored key: ADR 0013), as a verifier needs them.
fn signer(state: &AppState) -> LogSigner {
    let origin = state.audit.origin();
    let key = state.identity.checkpoint_key().public_key();
    LogSigner {
        origin: origin.as_str().to_owned(),
        key_name: origin.as_str().to_owned(),
        key_id: KeyId::of(origin, &key).to_string(),
        public_key: key.to_string(),
    }
}

/// `GET /v1/audit/checkpoint`: the newest signed checkpoint and where its anchor stands.
pub(crate) async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        let latest = state
            .audit
            .store()
            .latest_checkpoint()
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::NotFound("no checkpoint of the audit log was signed yet".into())
            })?;
        Ok(AuditCheckpoint {
            signer: signer(state),
            checkpoint: Checkpoint {
                signed: latest.to_wire(),
                anchor: None,
            },
            anchor: anchor_state(state, &latest, true)?,
            log_size: state.audit.tree_head().size.get(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The query of `/v1/audit/checkpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointsQuery {
    from: Option<u64>,
    count: Option<u32>,
}

/// `GET /v1/audit/checkpoints?from=S&count=N`: the anchored history from sequence S, each
/// checkpoint with the consistency proof from the one before it.
pub(crate) async fn checkpoints(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: CheckpointsQuery = parse_query(&req)?;
    let count = query.count.unwrap_or(MAX_CHECKPOINTS);
    if !(1..=MAX_CHECKPOINTS).contains(&count) {
        return Err(ApiError::BadRequest(format!(
            "count must be between 1 and {MAX_CHECKPOINTS}"
        )));
    }
    let from = query.from.unwrap_or(0);
    let body = blocking(&state, move |state| {
        // Around the page: the predecessor of the first (for its consistency proof) and
        // the successor of the last (to tell whether there is a next page).
        let wanted = usize::try_from(count).unwrap_or(usize::MAX);
        let rows = state
            .audit
            .store()
            .checkpoints(from.saturating_sub(1), wanted.saturating_add(2))
            .map_err(internal)?;
        let after_page = from.saturating_add(u64::from(count));
        let mut previous: Option<&StoredCheckpoint> = None;
        let mut page = Vec::new();
        for row in &rows {
            if row.sequence >= from && page.len() < wanted {
                let consistency_proof = previous
                    .map(|previous| state.audit.consistency_proof(previous.size, row.size))
                    .transpose()
                    .map_err(internal)?;
                page.push(ListedCheckpoint {
                    checkpoint: listed(state, row)?,
                    consistency_proof,
                });
            }
            previous = Some(row);
        }
        let next = rows
            .iter()
            .any(|row| row.sequence >= after_page)
            .then_some(after_page);
        Ok(AuditCheckpoints {
            signer: signer(state),
            checkpoints: page,
            next,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The query of `/v1/audit/registrations/{device}/proof`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    size: Option<u64>,
}

/// `GET /v1/audit/registrations/{device}/proof?size=N`: the device's entry, its leaf index
/// and its inclusion proof in the tree of N entries (default: the size of the newest
/// checkpoint whose anchor is confirmed).
pub(crate) async fn registration_proof(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let device = super::parse_device(&path.into_inner())?;
    let query: ProofQuery = parse_query(&req)?;
    let body = blocking(&state, move |state| {
        let (index, entry) = state
            .audit
            .registration(&device)
            .map_err(internal)?
            .ok_or_else(|| ApiError::NotFound(format!("no registration of device {device}")))?;
        let (size, checkpoint) = match query.size {
            Some(size) => {
                let size = TreeSize::new(size);
                check_size(index, size, state.audit.tree_head().size)?;
                (size, checkpoint_of_size(state, size)?)
            }
            None => {
                let covering = newest_confirmed(state)?.filter(|c| c.size.get() > index.get());
                let checkpoint = covering.ok_or_else(|| {
                    ApiError::NotAnchored(format!(
                        "registration {index} is not in a confirmed checkpoint yet; retry \
                         after the next one, or ask for a size"
                    ))
                })?;
                (checkpoint.size, Some(checkpoint))
            }
        };
        let proof = state.audit.inclusion_proof(index, size).map_err(internal)?;
        let head = state.audit.tree_head_at(size).map_err(internal)?;
        Ok(RegistrationProof {
            device: device.to_string(),
            entry,
            leaf_index: index.get(),
            tree_size: size.get(),
            root: head.root,
            inclusion_proof: proof,
            checkpoint: checkpoint.map(|c| listed(state, &c)).transpose()?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// A requested tree size must hold the entry and not exceed the log.
fn check_size(index: LeafIndex, size: TreeSize, log_size: TreeSize) -> Result<(), ApiError> {
    if size.get() == 0 {
        return Err(ApiError::BadRequest("size must be at least 1".into()));
    }
    if size > log_size {
        return Err(ApiError::BadRequest(format!(
            "size {size} is beyond the log's {log_size} entries"
        )));
    }
    if size.get() <= index.get() {
        return Err(ApiError::BadRequest(format!(
            "entry {index} is not in the tree of {size} entries (size must exceed {index})"
        )));
    }
    Ok(())
}

/// The newest checkpoint whose anchor is in the index.
fn newest_confirmed(state: &AppState) -> Result<Option<StoredCheckpoint>, ApiError> {
    for checkpoint in state.audit.store().checkpoints_newest_first() {
        let checkpoint = checkpoint.map_err(internal)?;
        if !state.store.by_txid(&checkpoint.txid)?.is_empty() {
            return Ok(Some(checkpoint));
        }
    }
    Ok(None)
}

/// The checkpoint stating exactly `size`, if there is one (sizes grow with sequence).
fn checkpoint_of_size(
    state: &AppState,
    size: TreeSize,
) -> Result<Option<StoredCheckpoint>, ApiError> {
    for checkpoint in state.audit.store().checkpoints_newest_first() {
        let checkpoint = checkpoint.map_err(internal)?;
        if checkpoint.size <= size {
            return Ok(Some(checkpoint).filter(|c| c.size == size));
        }
    }
    Ok(None)
}

//! Batch mode: the queued devices of batch-mode groups anchored as one batch root per
//! `anchoring.batch_interval_secs`, each exactly once, across restarts and reorgs.
//!
//! The chain loop calls [`step`] after every poll that brought the index to the node's tip.
//! The rule, in order:
//!
//! 1. Every batch whose anchor is not final: its members are logged in the audit log (a
//!    no-op for those already logged; it repairs a crash between forming and logging).
//!    Its anchor, if indexed six deep, is final and no longer watched; if indexed or in
//!    the mempool, awaited; otherwise its payment and transaction are sent again, the same
//!    transactions. If the node refuses the anchor for inputs that are gone (the payment
//!    was double-spent in a reorg), the index is synced once more and, if the anchor is
//!    still absent, the *same root* is anchored by a new transaction: members' proofs stay
//!    valid, only the anchor proof they are served changes.
//! 2. Nothing new is formed until the TBS's own Birth Certificate is anchored and
//!    confirmed: devices check that their batch root is signed by the TBS key they
//!    verified, which is only worth something once that key is anchored.
//! 3. A batch is due when the device queued longest has waited the interval: no device
//!    waits longer than that for its batch, and batches are at least an interval apart
//!    (a batch takes every queued device, so the next one's clock starts after it). Up to
//!    [`MAX_BATCH_MEMBERS`] queued devices, oldest first, become its members (a backlog
//!    beyond that is due again at once); their certificate digests, in that order, are
//!    the leaves of an RFC 6962 tree ([`Batch`]). The node wallet pays exactly one anchor's
//!    worth to the TBS key and the anchor's change goes back to the wallet
//!    ([`prepare_wallet_paid_anchor`]), so this lane never spends a coin of the TBS key
//!    that the audit lane might choose. Batch, members and their new state are written in
//!    one atomic write and flushed ([`EnrolmentStore::form_batch`]), the members logged,
//!    and only then are payment and anchor broadcast.
//!
//! A crash between any two steps therefore anchors no device twice and loses none: a
//! device is either still queued (the next batch takes it) or in exactly one stored
//! batch, whose transaction the restart sends again. Failures (node, empty wallet) are
//! logged and retried with the chain loop's backoff.

use bitcoin::consensus::encode;
use bitcoin::Transaction;
use milagro_anchor::batch::{Batch, BatchError};
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::proof::FINAL_DEPTH;
use milagro_registry::anchoring::{prepare_wallet_paid_anchor, PrepareError};
use milagro_registry::bitcoind::{BitcoindRpc, Resent};
use milagro_registry::chain::ChainError;
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::{RecordStore, StoreError};

use super::{EnrolmentStoreError, StoredBatch};
use crate::audit::AuditError;
use crate::audit::RegistrationLog as _;
use crate::state::{AnchorState, AppState};

/// The most devices one batch root covers. A membership proof grows by one hash per
/// doubling (20 hashes, 640 bytes, at this size) and forming a batch costs about two
/// hashes and one stored row per member; more queued devices wait for the next interval.
pub const MAX_BATCH_MEMBERS: usize = 1_000_000;

type ChainFollower = Follower<BitcoindRpc, std::sync::Arc<RedbStore>>;

/// Why a step of the rule failed; it is retried later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchAnchorError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] StoreError),
    /// Syncing the index before a decision failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The enrolment store failed.
    #[error(transparent)]
    Store(#[from] EnrolmentStoreError),
    /// Logging the members failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The batch could not be built (a bug: the queue was not empty).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// No anchoring transaction could be prepared (e.g. the node wallet is empty).
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// Runs the rule once (see the module documentation).
pub(crate) fn step(
    follower: &ChainFollower,
    state: &AppState,
    max_blocks: u32,
) -> Result<(), BatchAnchorError> {
    let node = follower.chain();
    let store = &state.enrolments;
    for batch in store.unsettled_batches()? {
        if !members_logged(state, &batch)? {
            log_members(state, &batch)?;
        }
        watch(follower, state, batch, max_blocks)?;
    }
    if !matches!(state.own_anchor.get(), AnchorState::Confirmed(_)) {
        return Ok(());
    }
    let Some(oldest) = store.oldest_queued()? else {
        return Ok(());
    };
    let interval = state.config.anchoring.batch_interval.as_secs();
    if crate::unix_now() < oldest.saturating_add(interval) {
        return Ok(());
    }
    let members = store.queued(MAX_BATCH_MEMBERS)?;
    let digests: Vec<Digest> = members.iter().map(|q| q.member.digest).collect();
    let root = Batch::build(&digests)?.root();
    let sequence = store
        .latest_batch()?
        .map_or(0, |b| b.sequence.saturating_add(1));
    let (tx, funding_tx) = prepare(state, node, &root)?;
    let batch = StoredBatch {
        sequence,
        root,
        size: members.len() as u64,
        created: crate::unix_now(),
        txid: tx.compute_txid(),
        tx: encode::serialize_hex(&tx),
        funding_tx: encode::serialize_hex(&funding_tx),
    };
    // Written before it is sent: a crash after this line re-sends these transactions.
    store.form_batch(&batch, &members)?;
    log_members(state, &batch)?;
    // Inputs gone this early (a payment the wallet could not relay) are the watch's
    // business at the next step: it anchors the same root anew.
    send(node, &batch)?;
    tracing::info!(sequence, members = batch.size, %root, txid = %batch.txid, "broadcast a batch root anchor");
    Ok(())
}

/// The wallet-paid anchoring transaction of `root` and its payment.
fn prepare(
    state: &AppState,
    node: &BitcoindRpc,
    root: &Digest,
) -> Result<(Transaction, Transaction), BatchAnchorError> {
    let prepared = prepare_wallet_paid_anchor(
        node,
        state.identity.secret_key(),
        &Payload::new(RecordKind::BatchRoot, *root),
        state.config.party.fee_rate,
        node.wallet_new_script()?,
    )?;
    Ok((prepared.anchor.tx, prepared.funding_tx))
}

/// Whether every member of `batch` is logged: members are logged in leaf order, so the
/// last one tells (one lookup per poll instead of one per member).
fn members_logged(state: &AppState, batch: &StoredBatch) -> Result<bool, BatchAnchorError> {
    let Some(last) = batch.size.checked_sub(1) else {
        return Ok(true);
    };
    match state.enrolments.batch_member(batch.sequence, last)? {
        Some(member) => Ok(state.audit.registration(&member.device)?.is_some()),
        None => Ok(false),
    }
}

/// Logs every member of `batch` that is not logged yet.
fn log_members(state: &AppState, batch: &StoredBatch) -> Result<(), BatchAnchorError> {
    for member in state.enrolments.batch_members(batch.sequence)? {
        if let Some(row) = state.enrolments.get(&member.device)? {
            state.audit.register(&row)?;
        }
    }
    Ok(())
}

/// Step 1 of the rule for one batch.
fn watch(
    follower: &ChainFollower,
    state: &AppState,
    mut batch: StoredBatch,
    max_blocks: u32,
) -> Result<(), BatchAnchorError> {
    let node = follower.chain();
    let index = follower.store();
    let tip = index.tip()?.map_or(0, |t| t.height);
    match index.by_txid(&batch.txid)?.first() {
        Some(record) if record.depth(tip) >= FINAL_DEPTH => {
            return Ok(state.enrolments.settle_batch(batch.sequence)?)
        }
        Some(_) => return Ok(()),
        None if node.in_mempool(&batch.txid)? => return Ok(()),
        None => {}
    }
    if !matches!(send(node, &batch)?, Resent::InputsGone(_)) {
        tracing::warn!(sequence = batch.sequence, txid = %batch.txid, "re-broadcast a batch root anchor that had left the chain and the mempool");
        return Ok(());
    }
    follower.sync(max_blocks, |_| {})?;
    if !follower.store().by_txid(&batch.txid)?.is_empty() {
        return Ok(());
    }
    let (tx, funding_tx) = prepare(state, node, &batch.root)?;
    tracing::warn!(sequence = batch.sequence, old = %batch.txid, new = %tx.compute_txid(), "a batch root anchor can never confirm (its inputs are gone); anchoring the same root anew");
    batch.txid = tx.compute_txid();
    batch.tx = encode::serialize_hex(&tx);
    batch.funding_tx = encode::serialize_hex(&funding_tx);
    state.enrolments.replace_batch_anchor(&batch)?;
    send(node, &batch)?;
    Ok(())
}

/// Sends a batch's payment, then its anchor ([`BitcoindRpc::resend_anchor`]).
fn send(node: &BitcoindRpc, batch: &StoredBatch) -> Result<Resent, ChainError> {
    let decode = |hex: &str| -> Result<Transaction, ChainError> {
        encode::deserialize_hex(hex).map_err(|e| ChainError::Decode {
            method: "stored batch",
            detail: format!("batch {}: {e}", batch.sequence),
        })
    };
    node.resend_anchor(Some(&decode(&batch.funding_tx)?), &decode(&batch.tx)?)
}
